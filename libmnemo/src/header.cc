/*
 * header.cc -- building, sealing and validating the pool header.
 * Validation reads only the header copy: nothing is written to a pool that
 * fails any check here.
 */
#include <cerrno>
#include <cstring>
#include <ctime>
#include <sys/random.h>

#include "error.h"
#include "hash.h"
#include "pool.h"

namespace mnemo {

using namespace layout;

void header_init(pool_header *h, uint64_t size, uint64_t base)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, kMagic, sizeof(kMagic));
	h->major = kFormatMajor;
	h->minor = kFormatMinor;
	if (getrandom(h->uuid, sizeof(h->uuid), 0) != sizeof(h->uuid)) {
		/* No entropy source: time and address still differ per pool. */
		uint64_t t = (uint64_t)time(nullptr) ^ (uintptr_t)h;
		memcpy(h->uuid, &t, sizeof(t));
	}
	h->size = size;
	h->base = base;
	h->align = scm::kPage;
	h->region_slots = kRegionSlots;
	h->root_slots = kRootSlots;
	h->region_off = kHeaderSize;
	h->root_off = h->region_off + (uint64_t)kRegionSlots * kSlotSize;
	uint64_t meta_end = h->root_off + (uint64_t)kRootSlots * kSlotSize;
	h->data_off = (meta_end + h->align - 1) & ~(h->align - 1);
	h->create_time = (uint64_t)time(nullptr);
}

void header_seal(pool_header *h)
{
	h->checksum = hash64(h, offsetof(pool_header, checksum), kHeaderSeed);
}

namespace {

bool in_range(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
	return off >= lo && off <= hi && len <= hi - off;
}

int geometry_check(const pool_header *h, const char *path)
{
	uint64_t meta_end = h->root_off + (uint64_t)h->root_slots * kSlotSize;
	bool ok = h->align >= scm::kPage && (h->align & (h->align - 1)) == 0 &&
		  h->size % h->align == 0 && h->base % h->align == 0 &&
		  h->region_off == kHeaderSize && h->region_slots > 0 &&
		  h->region_slots <= 65536 && h->root_slots <= 65536 &&
		  h->root_off == h->region_off + (uint64_t)h->region_slots *
							 kSlotSize &&
		  h->data_off >= meta_end && h->data_off % h->align == 0 &&
		  in_range(0, h->data_off, 0, h->size);
	if (!ok)
		return fail(EUCLEAN, "%s: pool header geometry is inconsistent "
			    "(corrupt pool)", path);
	if (addr_check(h->base, h->size) != 0)
		return fail(EUCLEAN, "%s: pool header records an impossible "
			    "address %#llx (corrupt pool)", path,
			    (unsigned long long)h->base);
	return 0;
}

} // namespace

int header_check(const pool_header *h, uint64_t file_size, const char *path)
{
	if (file_size < kHeaderSize ||
	    memcmp(h->magic, kMagic, sizeof(kMagic)) != 0)
		return fail(EMEDIUMTYPE, "%s is not a Mnemosyne pool (no pool "
			    "header magic); refusing to touch it", path);
	/* The version comes first: another major may lay out (and checksum)
	 * the rest of the header differently. */
	if (h->major != kFormatMajor)
		return fail(ENOTSUP, "%s: pool format version %u.%u, but this "
			    "library reads only version %u.x",
			    path, h->major, h->minor, kFormatMajor);
	if (h->checksum !=
	    hash64(h, offsetof(pool_header, checksum), kHeaderSeed))
		return fail(EUCLEAN, "%s: pool header checksum mismatch "
			    "(corrupt pool)", path);
	int rc = geometry_check(h, path);
	if (rc)
		return rc;
	if (file_size < h->size)
		return fail(EUCLEAN, "%s is truncated: %llu bytes, but the pool "
			    "is %llu bytes", path,
			    (unsigned long long)file_size,
			    (unsigned long long)h->size);
	return 0;
}

} // namespace mnemo
