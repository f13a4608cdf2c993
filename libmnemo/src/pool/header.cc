/*
 * header.cc -- building, sealing and validating the pool header.
 * Validation reads only the header copy: nothing is written to a pool that
 * fails any check here.
 */
#include <cerrno>
#include <cstring>
#include <ctime>
#include <sys/random.h>

#include "base/error.h"
#include "base/hash.h"
#include "pool/pool.h"

namespace mnemo {

using namespace layout;

uint64_t grow_checksum(const grow_rec *g)
{
	return hash64(g, offsetof(grow_rec, checksum), kGrowSeed);
}

void header_init(pool_header *h, uint64_t size, uint64_t max, uint64_t base)
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
	h->align = scm::kOsPage;
	h->region_slots = kRegionSlots;
	h->root_slots = kRootSlots;
	h->region_off = kHeaderSize;
	h->root_off = h->region_off + (uint64_t)kRegionSlots * kSlotSize;
	uint64_t meta_end = h->root_off + (uint64_t)kRootSlots * kSlotSize;
	h->data_off = (meta_end + h->align - 1) & ~(h->align - 1);
	h->create_time = (uint64_t)time(nullptr);
	h->grow[0].seq = 1;
	h->grow[0].size = size;
	h->grow[0].max_size = max;
	h->grow[0].checksum = grow_checksum(&h->grow[0]);
}

void header_seal(pool_header *h)
{
	h->checksum = hash64(h, kHeaderSum, kHeaderSeed);
}

const grow_rec *grow_current(const pool_header *h)
{
	const grow_rec *best = nullptr;
	for (const grow_rec &g : h->grow)
		if (g.checksum == grow_checksum(&g) && g.seq &&
		    (!best || g.seq > best->seq))
			best = &g;
	return best;
}

namespace {

bool in_range(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
	return off >= lo && off <= hi && len <= hi - off;
}

int geometry_check(const pool_header *h, const char *path)
{
	uint64_t meta_end = h->root_off + (uint64_t)h->root_slots * kSlotSize;
	bool ok = h->align >= scm::kOsPage && (h->align & (h->align - 1)) == 0 &&
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
	if (!major_ok(h->major))
		return fail(ENOTSUP, "%s: pool format version %u.%u, but this "
			    "library reads only versions %u.x to %u.x",
			    path, h->major, h->minor, kFormatMajorOld,
			    kFormatMajor);
	bool old = h->major == kFormatMajorOld;
	uint64_t sum;
	memcpy(&sum, (const char *)h + (old ? kHeaderSum4 : kHeaderSum),
	       sizeof(sum));
	if (sum != hash64(h, old ? kHeaderSum4 : kHeaderSum, kHeaderSeed))
		return fail(EUCLEAN, "%s: pool header checksum mismatch "
			    "(corrupt pool)", path);
	int rc = geometry_check(h, path);
	if (rc)
		return rc;
	uint64_t size, max;
	rc = header_sizes(h, path, &size, &max);
	if (rc)
		return rc;
	if (file_size < size)
		return fail(EUCLEAN, "%s is truncated: %llu bytes, but the pool "
			    "is %llu bytes", path,
			    (unsigned long long)file_size,
			    (unsigned long long)size);
	return 0;
}

int header_sizes(const pool_header *h, const char *path, uint64_t *size,
		 uint64_t *max)
{
	if (!has_grow_records(h->major)) { /* fixed size */
		*size = *max = h->size;
		return 0;
	}
	const grow_rec *g = grow_current(h);
	if (!g || g->size < h->size || g->max_size < g->size ||
	    g->size % h->align || g->max_size % h->align ||
	    addr_check(h->base, g->max_size) != 0)
		return fail(EUCLEAN, "%s: pool header has no valid size record "
			    "(corrupt pool)", path);
	*size = g->size;
	*max = g->max_size;
	return 0;
}

} // namespace mnemo
