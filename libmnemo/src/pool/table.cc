/*
 * table.cc -- loading and validating the region and root tables at open.
 *
 * Read-only: a pool that fails validation is refused with EUCLEAN and left
 * exactly as it was.  Checked: every state word is free or live; every live
 * slot's checksum; names are terminated and unique per table; region
 * extents are aligned, inside the data area and disjoint.
 */
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "pool/pool.h"

namespace mnemo {

using layout::slot;

namespace {

/* Where slot s lies in the pool file. */
unsigned long long off(const mnemo_pool *pool, const slot *s)
{
	return (unsigned long long)((const char *)s - pool->base);
}

int slot_check(mnemo_pool *pool, const slot *s, const char *table,
	       uint32_t i)
{
	if (s->state == layout::kSlotFree)
		return 0;
	if (s->state != layout::kSlotLive)
		return fail(EUCLEAN, "%s: %s slot %u (offset %#llx) has an "
			    "invalid state word (corrupt pool)",
			    pool->path.c_str(), table, i, off(pool, s));
	if (s->checksum != slot_checksum(s))
		return fail(EUCLEAN, "%s: %s slot %u (offset %#llx) checksum "
			    "mismatch (corrupt pool)", pool->path.c_str(),
			    table, i, off(pool, s));
	if (memchr(s->name, '\0', sizeof(s->name)) == nullptr)
		return fail(EUCLEAN, "%s: %s slot %u (offset %#llx) name is not "
			    "terminated (corrupt pool)", pool->path.c_str(),
			    table, i, off(pool, s));
	pool->next_gen = std::max(pool->next_gen, s->gen + 1);
	return 0;
}

int extent_check(mnemo_pool *pool, const slot *s, uint32_t i)
{
	const auto &h = pool->hdr;
	uint64_t size = pool->size.load();
	if (s->size == 0 || s->offset % h.align || s->size % h.align ||
	    s->offset < h.data_off || s->offset > size ||
	    s->size > size - s->offset)
		return fail(EUCLEAN, "%s: region slot %u (offset %#llx) has an "
			    "extent outside the pool (corrupt pool)",
			    pool->path.c_str(), i, off(pool, s));
	pool->extents.push_back({s->offset, s->size, i});
	return 0;
}

int overlap_check(mnemo_pool *pool)
{
	auto &e = pool->extents;
	std::sort(e.begin(), e.end(), [](const auto &a, const auto &b) {
		return a.offset < b.offset;
	});
	for (size_t i = 1; i < e.size(); i++)
		if (e[i - 1].offset + e[i - 1].size > e[i].offset)
			return fail(EUCLEAN, "%s: regions in slots %u and %u "
				    "(offsets %#llx and %#llx) overlap (corrupt "
				    "pool)", pool->path.c_str(), e[i - 1].slot,
				    e[i].slot,
				    off(pool, &pool->regions()[e[i - 1].slot]),
				    off(pool, &pool->regions()[e[i].slot]));
	return 0;
}

int unique_names(mnemo_pool *pool, const slot *t, uint32_t n,
		 const char *table)
{
	std::vector<std::string> names;
	for (uint32_t i = 0; i < n; i++)
		if (t[i].state == layout::kSlotLive && t[i].name[0])
			names.emplace_back(t[i].name);
	std::sort(names.begin(), names.end());
	auto dup = std::adjacent_find(names.begin(), names.end());
	if (dup != names.end())
		return fail(EUCLEAN, "%s: two %s slots are named \"%s\" (corrupt "
			    "pool)", pool->path.c_str(), table, dup->c_str());
	return 0;
}

int load_one(mnemo_pool *pool, const slot *t, uint32_t n, const char *table,
	     bool extents)
{
	for (uint32_t i = 0; i < n; i++) {
		int rc = slot_check(pool, &t[i], table, i);
		if (rc == 0 && extents && t[i].state == layout::kSlotLive)
			rc = extent_check(pool, &t[i], i);
		if (rc)
			return rc;
	}
	return unique_names(pool, t, n, table);
}

} // namespace

int tables_load(mnemo_pool *pool)
{
	pool->extents.clear();
	int rc = load_one(pool, pool->regions(), pool->hdr.region_slots,
			  "region", true);
	if (rc == 0)
		rc = load_one(pool, pool->roots(), pool->hdr.root_slots, "root",
			      false);
	if (rc == 0)
		rc = overlap_check(pool);
	return rc;
}

} // namespace mnemo
