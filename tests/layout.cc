/*
 * layout.cc -- pins the on-media format: every size, offset and constant of
 * layout.h, and the checksum function's output.  A failure here means the
 * format changed: bump kFormatMajor and update mnemosyne-format(5).
 */
#include <criterion/criterion.h>
#include <cstddef>
#include <cstring>
#include <utility>

#include "base/hash.h"
#include "layout.h"

using namespace mnemo;
using namespace mnemo::layout;

#define AT(type, field, off) cr_assert_eq(offsetof(type, field), (size_t)(off), #type "." #field)

Test(layout, pool_header)
{
	cr_assert_eq(sizeof(pool_header), 4096u);
	AT(pool_header, magic, 0);
	AT(pool_header, major, 8);
	AT(pool_header, minor, 12);
	AT(pool_header, uuid, 16);
	AT(pool_header, size, 32);
	AT(pool_header, base, 40);
	AT(pool_header, align, 48);
	AT(pool_header, region_off, 56);
	AT(pool_header, root_off, 64);
	AT(pool_header, region_slots, 72);
	AT(pool_header, root_slots, 76);
	AT(pool_header, data_off, 80);
	AT(pool_header, create_time, 88);
	AT(pool_header, reserved, 96);
	AT(pool_header, checksum, 3960);
	AT(pool_header, grow, 3968);
	cr_assert_eq(kHeaderSum, 3960u);
	cr_assert_eq(kHeaderSum4, 4088u); /* format 4.0's checksum offset */
}

Test(layout, grow_rec)
{
	cr_assert_eq(sizeof(grow_rec), 64u);
	AT(grow_rec, seq, 0);
	AT(grow_rec, size, 8);
	AT(grow_rec, max_size, 16);
	AT(grow_rec, reserved, 24);
	AT(grow_rec, checksum, 56);
	cr_assert_eq(kGrowSeed, 0x6d6e656d6f67726full);
	cr_assert_eq(offsetof(pool_header, grow) % 64, 0u); /* one line each */
}

Test(layout, slot)
{
	cr_assert_eq(sizeof(slot), 128u);
	AT(slot, state, 0);
	AT(slot, value, 8);
	AT(slot, offset, 16);
	AT(slot, size, 24);
	AT(slot, gen, 32);
	AT(slot, flags, 40);
	AT(slot, name, 48);
	AT(slot, reserved, 112);
	AT(slot, checksum, 120);
}

Test(layout, rawl)
{
	cr_assert_eq(sizeof(rawl_desc), 64u);
	AT(rawl_desc, head, 0);
	AT(rawl_desc, seq, 8);
	AT(rawl_desc, checksum, 16);
	cr_assert_eq(kRawlRingOff, 128u);
	cr_assert_eq(kRawlWrap, 1u);
}

Test(layout, constants)
{
	cr_assert_eq(memcmp(kMagic, "MNEMOPL", 8), 0);
	cr_assert_eq(kFormatMajor, 6u);
	cr_assert_eq(kFormatMajor5, 5u);
	cr_assert_eq(kFormatMajorOld, 4u);
	cr_assert_eq(kSlotLive, 0x45564c4f4d454e4dull);
	cr_assert_eq(kSlotFree, 0u);
	cr_assert_eq(kRegionSlots, 256u);
	cr_assert_eq(kRootSlots, 256u);
	cr_assert_eq(kHeaderSeed, 0x6d6e656d6f686472ull);
	cr_assert_eq(kSlotSeed, 0x6d6e656d6f736c74ull);
	cr_assert_eq(kRecordSeed, 0x6d6e656d6f72636eull);
	cr_assert_eq(kDescSeed, 0x6d6e656d6f647363ull);
}

Test(layout, checksum_function)
{
	uint64_t w[4] = {1, 2, 3, 4};
	/* Golden values: the checksum is part of the format. */
	cr_assert_eq(hash64(w, 32, 0), 0x1841232f41d4d583ull, "hash64 changed: %#llx",
		     (unsigned long long)hash64(w, 32, 0));
	cr_assert_eq(hash64(w, 0, kSlotSeed), 0x4cc7bbbadd1febb9ull, "hash64 changed: %#llx",
		     (unsigned long long)hash64(w, 0, kSlotSeed));
	cr_assert_eq(hash64_wide(w, 32, 0), 0x6c1441b2069b4c12ull, "hash64_wide changed: %#llx",
		     (unsigned long long)hash64_wide(w, 32, 0));
	uint64_t v[4] = {1, 2, 4, 3};
	cr_assert_neq(hash64_wide(w, 32, 0), hash64_wide(v, 32, 0), "order must matter");
	uint64_t x[5] = {1, 2, 3, 4, 5};
	cr_assert_neq(hash64_wide(x, 40, 0), hash64_wide(x, 32, 0));
	cr_assert_neq(hash64(w, 32, 0), hash64(v, 32, 0), "order must matter");
	cr_assert_eq(sum64(w, 4, 0), 0xcb8a54a270b47d13ull, "sum64 changed: %#llx",
		     (unsigned long long)sum64(w, 4, 0));
	cr_assert_neq(sum64(w, 4, 0), sum64(v, 4, 0), "order must matter");
	cr_assert_neq(sum64(x, 5, 0), sum64(x, 4, 0));
}

/* sum64 (format 6 records): the vector code computes the portable
 * function, and a change of any one word, or a swap of two, changes the
 * sum, at every length and position (blocks and tails). */
Test(layout, sum64_detects_changed_and_swapped_words)
{
	uint64_t w[70];
	uint64_t r = 88172645463325252ull;
	for (uint64_t &x : w) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		x = r;
	}
	for (size_t n = 0; n <= 70; n++) {
		uint64_t s = sum64(w, n, kRecordSeed);
		cr_assert_eq(s, sum64_portable(w, n, kRecordSeed), "n=%zu", n);
		for (size_t i = 0; i < n; i++) {
			w[i] ^= 1ull << (i % 64);
			cr_assert_neq(sum64(w, n, kRecordSeed), s, "n=%zu i=%zu",
				      n, i);
			w[i] ^= 1ull << (i % 64);
			if (i + 1 < n && w[i] != w[i + 1]) {
				std::swap(w[i], w[i + 1]);
				cr_assert_neq(sum64(w, n, kRecordSeed), s,
					      "swap n=%zu i=%zu", n, i);
				std::swap(w[i], w[i + 1]);
			}
		}
	}
}

Test(layout, transactions)
{
	cr_assert_eq(sizeof(tx_meta), 64u);
	cr_assert_eq(offsetof(tx_meta, floor), 0u);
	cr_assert_eq(kTxLogs, 64u);
	cr_assert_eq(kTxRunMax, 65528u);
	cr_assert_eq(kTxRunMax % 8, 0u, "runs split on word boundaries");
	cr_assert_lt(kTxRunMax, 1u << 16, "len fits the 16 bits above addr");
	cr_assert_str_eq(kTxMetaName, "mnemo.tx");
	cr_assert_str_eq(kTxLogPrefix, "mnemo.tx.");
	cr_assert_str_eq(kReservedPrefix, "mnemo.");
}

Test(layout, heap)
{
	cr_assert_eq(sizeof(heap_seg), 64u);
	cr_assert_eq(offsetof(heap_seg, magic), 0u);
	cr_assert_eq(offsetof(heap_seg, npages), 8u);
	cr_assert_eq(offsetof(heap_seg, hdr_pages), 16u);
	cr_assert_eq(offsetof(heap_seg, state), 24u);
	cr_assert_eq(kHeapPage, 65536u);
	cr_assert_eq(kHeapDescOff, 64u);
	cr_assert_eq(kHeapBitmapWords * 64 * 16, kHeapPage, "a bit per 16 B");
	cr_assert_eq(heap_bitmap_off(63), 576u);
	cr_assert_eq(heap_hdr_pages(63), 1u);
	cr_assert_eq(heap_hdr_pages(16384), 131u);
	cr_assert_eq(kHeapSmall, 1u);
	cr_assert_eq(kHeapLarge, 2u);
	cr_assert_eq(kHeapMagic, 0x504145484f4d454eull);
	cr_assert_eq(kHeapOpen, 0x4e45504f50414548ull);
	cr_assert_eq(kHeapClosed, 0u);
	cr_assert_eq(kHeapOpenVolatile, 0x4c4f564f50414548ull);
	cr_assert_str_eq(kHeapPrefix, "mnemo.heap.");
	static const uint64_t sizes[] = {16, 32, 48, 64, 80, 96, 112, 128, 160,
		192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024};
	for (unsigned c = 1; c <= 20; c++)
		cr_assert_eq(heap_class_size(c), sizes[c - 1], "class %u", c);
	cr_assert_eq(heap_class_size(kHeapClasses), kHeapSmallMax);
	cr_assert_eq(kHeapClasses, 40u);
	cr_assert_eq(kTxHeapSet, 0xffffu);
	cr_assert_eq(kTxHeapClear, 0xfffeu);
	cr_assert_gt(kTxHeapClear, kTxRunMax, "heap entries never look like runs");
}
