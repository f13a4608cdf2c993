/*
 * layout.h -- the on-media format of a pool (format version 6.0; 5.0 and
 * 4.0 are read and written too, each in its own format).
 *
 * This header is the format's single source of truth; man/mnemosyne-format.5
 * describes it in prose and tests/layout.cc pins every size and offset below.
 * All integers are little-endian (x86-64 native).  A change to any layout here
 * requires a new MNEMO_FORMAT_MAJOR: older libraries then refuse the pool.
 *
 * A pool is one regular file (or DAX file / device) mapped at a fixed virtual
 * address `base`:
 *
 *   offset 0            pool_header        4 KiB: written once at creation,
 *                                          but for its two grow records
 *   region_off          slot[region_slots] the region table
 *   root_off            slot[root_slots]   the named-root table
 *   data_off ... size   region extents     each aligned to `align`
 *
 * A pool grows: its size is the current grow record's, which only grows,
 * up to the record's max_size.  The file is at least `size` bytes; bytes
 * past `size` (a crash during growth) hold nothing and are cut at open.
 * The pool is mapped in a window [base, base + max_size), so growing
 * never moves an address.
 *
 * Glossary:
 *   slot    a 128-byte table entry (two cache lines) naming a region or a
 *           root.  Its first word, `state`, is its commit word.
 *   extent  the byte range [offset, offset+size) of the pool file a region
 *           occupies; extents of live regions never overlap.  Free space is
 *           not recorded: it is whatever live extents do not cover.
 *   gen     a pool-wide creation counter; newer slots have larger gens.
 *   window  the virtual address range [base, base + max_size) reserved for
 *           the pool while it is open; only [0, size) can be mapped.
 *   OS page   4 KiB (scm::kOsPage), the unit of mappings and of `align`.
 *   heap page kHeapPage (64 KiB), the unit the heap hands to a size class
 *             or a large block (see "The persistent heap").  "Page" alone
 *             means a heap page in heap/ and an OS page everywhere else.
 *   page_desc the 8-byte durable descriptor of a heap page (its kind,
 *             class and span); heap::vpage is its volatile companion.
 *   rawl_desc the header of a RAWL region (its ring's geometry and head).
 *   log slot  an entry of a pool's table of transaction logs (tx/): one
 *             RAWL per thread that commits in the pool.
 *   tx_desc   (not on media) a thread's transaction descriptor (tx/stm.h).
 */
#ifndef MNEMO_LAYOUT_H
#define MNEMO_LAYOUT_H

#include <cstddef>
#include <cstdint>

namespace mnemo::layout {

inline constexpr char kMagic[8] = {'M', 'N', 'E', 'M', 'O', 'P', 'L', '\0'};
/* 2: durable transactions (regions "mnemo.tx*", which a version-1 library
 * would ignore, losing committed transactions) and hash64_wide record
 * checksums.  3: the persistent heap (regions "mnemo.heap.*") and heap
 * entries in transaction records, which a version-2 library would refuse
 * or, worse, leave unapplied.  4: the heap state kHeapOpenVolatile, whose
 * allocation bits lag while a process runs (a version-3 library would
 * trust them after a crash and hand out live blocks again). */
/* 5: pools grow (grow records in the header, which a version-4 library
 * would ignore, refusing a grown pool's regions as corrupt).  6: RAWL
 * records are checksummed by sum64 (a version-5 library would find every
 * record invalid and drop committed transactions). */
inline constexpr uint32_t kFormatMajor = 6; /* incompatible changes */
inline constexpr uint32_t kFormatMajor5 = 5; /* still read and written */
inline constexpr uint32_t kFormatMajorOld = 4; /* still read; cannot grow */
/* A pool keeps the format it was created with: these say what each
 * readable major holds. */
inline constexpr bool major_ok(uint32_t m)
{
	return m == kFormatMajor || m == kFormatMajor5 || m == kFormatMajorOld;
}
inline constexpr bool has_grow_records(uint32_t m) { return m >= 5; }
inline constexpr bool record_sum6(uint32_t m) { return m >= 6; }
inline constexpr uint32_t kFormatMinor = 0; /* compatible additions */
inline constexpr size_t kHeaderSize = 4096;
inline constexpr size_t kSlotSize = 128;
inline constexpr uint32_t kRegionSlots = 256;
inline constexpr uint32_t kRootSlots = 256;
inline constexpr size_t kNameMax = 63;

/* Slot commit words.  A slot is live iff state == kSlotLive.  The word is
 * written with one aligned 8-byte store after the rest of the slot is
 * persisted, so a crash leaves it 0 (free) or kSlotLive, never torn. */
inline constexpr uint64_t kSlotFree = 0;
inline constexpr uint64_t kSlotLive = 0x45564c4f4d454e4dull; /* "MNEMOLVE" */

/*
 * A grow record: the pool's current size and growth limit.  The header has
 * two; the valid one (checksum) with the larger seq is current.  Growth and
 * limit changes write the other one and persist it: a crash leaves the old
 * record current, or the new one whole.  Each record is one cache line.
 * checksum = hash64 of bytes [0, 56) with seed kGrowSeed.
 */
struct grow_rec {
	uint64_t seq;         /* 1 at creation, then +1 per write */
	uint64_t size;        /* bytes of the pool: [0, size) of the file */
	uint64_t max_size;    /* size never exceeds it; the window's size */
	uint64_t reserved[4]; /* zero */
	uint64_t checksum;
};
static_assert(sizeof(grow_rec) == 64);

/*
 * The pool header.  Invariants: written (with its checksum and grow[0]) and
 * made durable before the pool file gets its final name; afterwards only
 * the grow records change.  checksum = hash64 of bytes [0, 3960) with seed
 * kHeaderSeed.  (Format 4.0 had no grow records: reserved ran to byte
 * 4088, where its checksum of [0, 4088) was, and size was fixed.)
 */
struct pool_header {
	char magic[8];          /* kMagic */
	uint32_t major;         /* kFormatMajor of the creating library */
	uint32_t minor;         /* kFormatMinor of the creating library */
	uint8_t uuid[16];       /* random, identifies the pool */
	uint64_t size;          /* pool size at creation (see grow) */
	uint64_t base;          /* virtual address of file offset 0 */
	uint64_t align;         /* region extents are multiples of this */
	uint64_t region_off;    /* file offset of the region table */
	uint64_t root_off;      /* file offset of the root table */
	uint32_t region_slots;  /* entries in the region table */
	uint32_t root_slots;    /* entries in the root table */
	uint64_t data_off;      /* first byte available to regions */
	uint64_t create_time;   /* seconds since the epoch, informational */
	uint8_t reserved[3864]; /* zero */
	uint64_t checksum;
	grow_rec grow[2];       /* mutable: current size and limit */
};
static_assert(sizeof(pool_header) == kHeaderSize);

/*
 * A table slot (region or root).  Concurrency: slots are changed only by
 * the process holding the pool lock, under the pool's mutex.
 * checksum = hash64 of bytes [16, 120) with seed kSlotSeed: it covers
 * everything but `state` (the commit word) and `value` (a root's pointer,
 * updated in place by one atomic 8-byte store).
 */
struct slot {
	uint64_t state;  /* kSlotFree or kSlotLive; written last */
	uint64_t value;  /* root: the bound pointer; region: 0 */
	uint64_t offset; /* region: file offset of its extent; root: 0 */
	uint64_t size;   /* region: extent size (multiple of align); root: 0 */
	uint64_t gen;    /* creation counter, unique among live slots */
	uint64_t flags;  /* zero (reserved) */
	char name[64];   /* NUL-terminated; empty for an anonymous region */
	uint64_t reserved;
	uint64_t checksum;
};
static_assert(sizeof(slot) == kSlotSize);

inline constexpr uint64_t kHeaderSeed = 0x6d6e656d6f686472ull;
inline constexpr uint64_t kGrowSeed = 0x6d6e656d6f67726full;
/* Bytes of the header its checksum covers (format 4.0: kHeaderSum4). */
inline constexpr size_t kHeaderSum = 3960;
inline constexpr size_t kHeaderSum4 = 4088;
inline constexpr uint64_t kSlotSeed = 0x6d6e656d6f736c74ull;

/*
 * A RAWL (raw word log) occupies a whole named region "rawl:<name>":
 *
 *   bytes [0, 64)    head descriptor copy 0   (rawl_desc)
 *   bytes [64, 128)  head descriptor copy 1
 *   bytes [128, end) the ring: capacity 64-bit words
 *
 * A fresh region is all zero, which reads as an empty log (both descriptors
 * invalid means head = 0, seq = 0).  Positions are logical word counts that
 * only grow; ring index = position % capacity.
 *
 * Record at position p with sequence number s:
 *   word 0      header: nwords (low 32 bits) | flags << 32
 *   words 1..n  payload
 *   word n+1    the checksum: format 6, sum64(payload) with seed
 *               kRecordSeed ^ s ^ mix64(header); formats 4 and 5,
 *               hash64_wide(header, payload) with seed kRecordSeed ^ s
 * A record never straddles the ring's end: when it does not fit, a WRAP
 * record (flags = 1, no payload) is written if two or more words remain,
 * and the next record starts at the next lap.  If fewer than two words
 * remain, the wrap is implicit.  WRAP records consume a sequence number.
 *
 * Truncation writes the descriptor copy with the smaller seq (an invalid
 * copy counts as smaller); recovery takes the valid copy with the larger
 * seq.  The stable tail is found by walking from the head while records
 * carry valid checksums for the expected sequence numbers.
 */
struct rawl_desc {
	uint64_t head;     /* logical position of the oldest record */
	uint64_t seq;      /* sequence number of that record */
	uint64_t checksum; /* hash64 of head, seq with seed kDescSeed */
	uint64_t reserved[5];
};
static_assert(sizeof(rawl_desc) == 64);

inline constexpr size_t kRawlRingOff = 128;
inline constexpr uint64_t kRawlWrap = 1;
inline constexpr uint64_t kRecordSeed = 0x6d6e656d6f72636eull;
inline constexpr uint64_t kDescSeed = 0x6d6e656d6f647363ull;
inline constexpr char kRawlPrefix[] = "rawl:";

/*
 * Durable transactions (since format 2.0; a pool without them
 * simply has none of these regions).
 *
 * Region "mnemo.tx" (one page) holds a tx_meta.  Region "rawl:mnemo.tx.<i>"
 * (0 <= i < kTxLogs) is the RAWL of log i; one thread appends to a log at a
 * time.  Each RAWL record is one committed transaction:
 *
 *   word 0     wv, its commit timestamp (larger = later; commits that
 *              write a common byte take different wvs, others may
 *              share one)
 *   then entries, each:
 *     word     addr | len << 48   (absolute address; 1 <= len <= kTxRunMax)
 *     words    the len new bytes, packed, zero-padded to a word
 *   or a heap entry (format 3), each:
 *     word     addr | kTxHeapSet << 48  or  addr | kTxHeapClear << 48
 *     word     mask: replay ORs it into (set) or clears it from (clear)
 *              the 8-aligned allocation-bitmap word at addr
 *
 * Recovery replays, in increasing wv, every record with wv > floor (the
 * heap clears of records sharing a wv after their other entries: a block
 * one allocates, another may free, never the other way round); then
 * raises floor to the largest wv replayed and empties the logs.  At run
 * time floor is raised to W only after every record with wv <= W is
 * durable in place, so records at or below floor are dead whatever logs
 * still hold them.  Entries must lie in [data_off, size) of the pool and
 * outside the "mnemo.*" regions, or the pool is refused as corrupt.
 */
struct tx_meta {
	uint64_t floor; /* stored with one atomic 8-byte store */
	uint64_t reserved[7];
};
static_assert(sizeof(tx_meta) == 64);

inline constexpr unsigned kTxLogs = 64;
inline constexpr uint64_t kTxRunMax = 65528; /* bytes per entry */
inline constexpr uint64_t kTxHeapSet = 0xffff;
inline constexpr uint64_t kTxHeapClear = 0xfffe;
inline constexpr char kTxMetaName[] = "mnemo.tx";
inline constexpr char kTxLogPrefix[] = "mnemo.tx."; /* RAWL name prefix */
inline constexpr char kReservedPrefix[] = "mnemo."; /* library-owned names */

/*
 * The persistent heap (format 3; kHeapOpenVolatile: 4).  Segment n is the
 * region "mnemo.heap.<n>" (n = 0, 1, ...; never deleted).  Its first byte at a
 * kHeapPage-aligned address is the segment start S; the bytes of the region
 * before S are unused.  From S on the segment is npages pages of kHeapPage
 * bytes, npages = (region end - S) / kHeapPage; the first hdr_pages of them
 * hold the header:
 *
 *   S + 0                    heap_seg
 *   S + kHeapDescOff         uint64_t desc[npages]     one word per page
 *   S + heap_bitmap_off(np)  uint64_t bits[npages][kHeapBitmapWords]
 *
 * A page's desc word is kind | cls << 8 | span << 32.  Kinds:
 *   kHeapSmall  blocks of heap_class_size(cls) bytes from the page start;
 *               bit i of the page's bitmap set = block i is allocated
 *   kHeapLarge  one block of span pages; bit 0 set = allocated
 * A page is free iff its bitmap is all zero (its desc then means nothing),
 * and the pages after a live large block up to its span are part of it.
 * Write order: a desc is durable (fence) before the first bit set under
 * it; bits are cleared and made durable (fence) before their page gets
 * another desc.
 *
 * Segment 0's `state` says how far the bits can be trusted:
 *   kHeapClosed        no process has the pool open: the bits are exact.
 *   kHeapOpen          durable map: allocation sets a bit and fences
 *                      before it returns; free clears it and needs no
 *                      fence (a crash before the next fence leaves the
 *                      block allocated: a leak, which the recovery
 *                      collection reclaims).  An open that finds this
 *                      state collects (unless MNEMO_HEAP_GC=off).
 *   kHeapOpenVolatile  volatile map: outside transactions, allocation and
 *                      free change bits with no flush or fence, so after
 *                      a crash they mean nothing.  An open that finds this
 *                      state rebuilds them: every small page's desc and
 *                      every large head's desc (which then owns the next
 *                      span - 1 pages, whatever their descs say) names
 *                      candidate blocks, and exactly the candidates
 *                      reachable from the roots become allocated.  This
 *                      needs: a large desc lies only on the head of a
 *                      reserved or allocated large block (freeing one
 *                      zeroes its desc, fenced, before its pages are
 *                      reused; the open that enters this state zeroes the
 *                      large descs of every other page).  Small descs may
 *                      be stale: they claim only their own page.
 * Every open ends by making its own state durable before any allocation;
 * a clean close flushes every bitmap, fences, then stores kHeapClosed.
 */
struct heap_seg {
	uint64_t magic;     /* kHeapMagic once initialised (else fresh) */
	uint64_t npages;    /* pages from S to the region end */
	uint64_t hdr_pages; /* pages taken by this header */
	uint64_t state;     /* segment 0: kHeapClosed, kHeapOpen(Volatile) */
	uint64_t reserved[4];
};
static_assert(sizeof(heap_seg) == 64);

inline constexpr uint64_t kHeapPage = 64 * 1024;
inline constexpr uint64_t kHeapDescOff = 64;
inline constexpr unsigned kHeapBitmapWords = 64; /* kHeapPage / 16 bits */
inline constexpr unsigned kHeapClasses = 40;     /* cls 1..kHeapClasses */
inline constexpr uint64_t kHeapSmallMax = 32768;  /* largest small block */
inline constexpr uint64_t kHeapSmall = 1, kHeapLarge = 2;
inline constexpr uint64_t kHeapMagic = 0x504145484f4d454eull; /* "NEMOHEAP" */
inline constexpr uint64_t kHeapOpen = 0x4e45504f50414548ull;
inline constexpr uint64_t kHeapClosed = 0;
inline constexpr uint64_t kHeapOpenVolatile = 0x4c4f564f50414548ull;
inline constexpr char kHeapPrefix[] = "mnemo.heap.";

inline constexpr uint64_t heap_bitmap_off(uint64_t npages)
{
	return (kHeapDescOff + 8 * npages + 63) & ~63ull;
}
inline constexpr uint64_t heap_hdr_pages(uint64_t npages)
{
	return (heap_bitmap_off(npages) + npages * kHeapBitmapWords * 8 +
		kHeapPage - 1) / kHeapPage;
}
/* Block size of class c (1 <= c <= kHeapClasses): 16, 32, ..., 128, then
 * four classes per doubling up to kHeapSmallMax. */
inline constexpr uint64_t heap_class_size(unsigned c)
{
	if (c <= 8)
		return 16 * c;
	unsigned k = c - 9;               /* 0.. */
	uint64_t base = 128ull << (k / 4); /* 128, 256, ... */
	return base + (base / 4) * (k % 4 + 1);
}
static_assert(heap_class_size(8) == 128 && heap_class_size(9) == 160 &&
	      heap_class_size(12) == 256 && heap_class_size(kHeapClasses) ==
	      kHeapSmallMax);

} // namespace mnemo::layout

#endif
