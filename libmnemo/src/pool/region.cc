/*
 * region.cc -- dynamic regions: extents of the pool named by region slots.
 *
 * Create: pick a free extent (first fit between live extents) and a free
 * slot; zero the extent and persist it; publish the slot (slot.cc).  The
 * zeroing is durable before the slot is, so a region is never seen holding
 * a deleted region's old bytes.  Delete: retire the slot, then make the
 * pages inaccessible.  Free space is derived, never stored, so there is no
 * allocator state to keep consistent.
 */
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>
#include <sys/mman.h>

#include "base/error.h"
#include "base/export.h"
#include "mnemosyne.h"
#include "pool/pool.h"


using namespace mnemo;
using layout::slot;

namespace mnemo {

bool name_user_data(const char *name)
{
	const char *r = layout::kRawlPrefix;
	return !name_reserved(name) && strncmp(name, r, strlen(r)) != 0;
}

namespace {
/* Map extent [off, +size) named `name`; strict mode makes it read-only
 * to the program if it holds user data. */
int map_extent(mnemo_pool *pool, uint64_t off, uint64_t size,
	       const char *name)
{
	int rc = pool->dev->map(off, size);
	if (rc == 0 && name_user_data(name))
		rc = pool->dev->protect(pool->base + off, size);
	return rc;
}
} // namespace

int regions_map_all(mnemo_pool *pool)
{
	for (const auto &e : pool->extents) {
		int rc = map_extent(pool, e.offset, e.size,
				    pool->regions()[e.slot].name);
		if (rc)
			return rc;
	}
	return 0;
}

} // namespace mnemo

namespace {

/* First fit; returns the index in `extents` to insert before, or -1. */
long find_gap(const mnemo_pool *pool, uint64_t size, uint64_t *off)
{
	uint64_t at = pool->hdr.data_off;
	const auto &ex = pool->extents;
	for (size_t i = 0; i <= ex.size(); i++) {
		uint64_t end = i < ex.size() ? ex[i].offset : pool->size.load();
		if (end - at >= size) {
			*off = at;
			return (long)i;
		}
		if (i < ex.size())
			at = ex[i].offset + ex[i].size;
	}
	return -1;
}

long find_free_slot(const mnemo_pool *pool)
{
	const slot *t = pool->regions();
	for (uint32_t i = 0; i < pool->hdr.region_slots; i++)
		if (t[i].state == layout::kSlotFree)
			return i;
	return -1;
}

long find_named(const mnemo_pool *pool, const char *name)
{
	const slot *t = pool->regions();
	for (uint32_t i = 0; i < pool->hdr.region_slots; i++)
		if (t[i].state == layout::kSlotLive && slot_name_is(&t[i], name))
			return i;
	return -1;
}

/* Where the free space at the pool's end begins. */
uint64_t tail_start(const mnemo_pool *pool)
{
	const auto &ex = pool->extents;
	return ex.empty() ? pool->hdr.data_off
			  : ex.back().offset + ex.back().size;
}

/* A free extent of size bytes, growing the pool if no gap has one. */
int reserve_space(mnemo_pool *pool, uint64_t size, uint64_t *off,
		  long *where, long *sl)
{
	*where = find_gap(pool, size, off);
	if (*where < 0) {
		int rc = pool_grow(pool, tail_start(pool) + size);
		if (rc)
			return rc;
		*where = find_gap(pool, size, off);
	}
	*sl = find_free_slot(pool);
	if (*sl < 0)
		return fail(ENOSPC, "pool %s is full: all %u region slots are "
			    "in use", pool->path.c_str(),
			    pool->hdr.region_slots);
	return 0;
}

int create_locked(mnemo_pool *pool, const char *name, uint64_t size,
		  void **addrp)
{
	if (name && *name && find_named(pool, name) >= 0)
		return fail(EEXIST, "a region named \"%s\" already exists",
			    name);
	uint64_t off = 0;
	long where = -1, sl = -1;
	int rc = reserve_space(pool, size, &off, &where, &sl);
	if (rc == 0)
		rc = map_extent(pool, off, size, name ? name : "");
	if (rc)
		return rc;
	char *addr = pool->base + off;
	if (off < pool->zero_above) { /* else fresh from growth: zero */
		memset(scm::wr(addr), 0, size);
		scm::flush(addr, size);
	}
	pool->zero_above = std::max(pool->zero_above, off + size);
	slot body{};
	body.offset = off;
	body.size = size;
	body.gen = pool->next_gen++;
	snprintf(body.name, sizeof(body.name), "%s", name ? name : "");
	slot_publish(&pool->regions()[sl], body); /* fences the zeroing too */
	pool->extents.insert(pool->extents.begin() + where,
			     {off, size, (uint32_t)sl});
	*addrp = addr;
	return 0;
}

long extent_at(const mnemo_pool *pool, const void *addr)
{
	for (size_t i = 0; i < pool->extents.size(); i++)
		if (pool->base + pool->extents[i].offset == addr)
			return (long)i;
	return -1;
}

} // namespace

bool mnemo::name_reserved(const char *name)
{
	const char *p = layout::kReservedPrefix, *r = layout::kRawlPrefix;
	if (name && strncmp(name, r, strlen(r)) == 0)
		name += strlen(r);
	return name && strncmp(name, p, strlen(p)) == 0;
}

int mnemo::reserved_check(const char *kind, const char *name)
{
	if (!name_reserved(name))
		return 0;
	return fail(EINVAL, "%s name \"%s\" is reserved: names starting "
		    "with \"%s\" belong to libmnemo", kind, name,
		    layout::kReservedPrefix);
}

int mnemo::region_create_internal(mnemo_pool *pool, const char *name,
				  size_t size, void **addrp, size_t *sizep)
{
	int rc = name_check(name, true);
	if (rc)
		return rc;
	uint64_t align = pool->hdr.align;
	if (size > pool->max - pool->hdr.data_off)
		return pool_cannot_grow(pool, pool->hdr.data_off + size);
	uint64_t sz = (size + align - 1) & ~(align - 1);
	if (sizep)
		*sizep = sz;
	std::lock_guard<std::mutex> g(pool->mu);
	return create_locked(pool, name, sz, addrp);
}

MNEMO_API int mnemo_region_create(mnemo_pool *pool, const char *name,
				  size_t size, void **addrp)
{
	if (!pool || !addrp || size == 0)
		return fail(EINVAL, "mnemo_region_create: pool, addrp and a "
			    "nonzero size are required");
	int rc = reserved_check("region", name);
	return rc ? rc : region_create_internal(pool, name, size, addrp, nullptr);
}

int mnemo::region_find_internal(mnemo_pool *pool, const char *name,
				void **addrp, size_t *sizep)
{
	std::lock_guard<std::mutex> g(pool->mu);
	long i = find_named(pool, name);
	if (i < 0)
		return -ENOENT;
	const slot &s = pool->regions()[i];
	*addrp = pool->base + s.offset;
	*sizep = s.size;
	return 0;
}

MNEMO_API int mnemo_region_find(mnemo_pool *pool, const char *name, void **addrp,
				size_t *sizep)
{
	if (!pool || !addrp)
		return fail(EINVAL, "mnemo_region_find: pool and addrp are "
			    "required");
	int rc = name_check(name, false);
	if (rc)
		return rc;
	size_t size;
	rc = region_find_internal(pool, name, addrp, &size);
	if (rc)
		return fail(ENOENT, "no region named \"%s\" in pool %s", name,
			    pool->path.c_str());
	if (sizep)
		*sizep = size;
	return 0;
}

namespace {

/* Delete the region at addr; `size` 0 accepts any size.  pre: mu held. */
int delete_locked(mnemo_pool *pool, void *addr, size_t size)
{
	long i = extent_at(pool, addr);
	if (i < 0)
		return fail(EINVAL, "%p is not the start of a region of pool %s",
			    addr, pool->path.c_str());
	auto e = pool->extents[i];
	if (name_reserved(pool->regions()[e.slot].name))
		return fail(EINVAL, "region %p (\"%s\") belongs to libmnemo",
			    addr, pool->regions()[e.slot].name);
	if (scm::alias_into(pool->dev.get(), e.offset, e.size))
		return fail(EBUSY, "region %p is mapped at a second address "
			    "too (mnemo_region_alias); unalias it first", addr);
	if (size && size != e.size)
		return fail(EINVAL, "punmap: length %zu does not match the "
			    "region's size %llu", size,
			    (unsigned long long)e.size);
	slot_retire(&pool->regions()[e.slot]);
	pool->extents.erase(pool->extents.begin() + i);
	return pool->dev->unmap(e.offset, e.size);
}

} // namespace

int mnemo::region_delete_internal(mnemo_pool *pool, void *addr, size_t size)
{
	std::lock_guard<std::mutex> g(pool->mu);
	return delete_locked(pool, addr, size);
}

namespace {

struct listed {
	std::string name;
	void *addr;
	size_t size;
};

/* The live regions, by address (extents are sorted by offset).  pre: mu. */
std::vector<listed> list_regions(mnemo_pool *pool, bool all)
{
	std::vector<listed> v;
	for (const auto &e : pool->extents) {
		const slot &s = pool->regions()[e.slot];
		if (all || !name_reserved(s.name))
			v.push_back({s.name, pool->base + e.offset, e.size});
	}
	return v;
}

} // namespace

MNEMO_API int mnemo_region_foreach(mnemo_pool *pool, unsigned flags,
				   mnemo_region_cb cb, void *arg)
{
	if (!pool || !cb || (flags & ~MNEMO_FOREACH_ALL))
		return fail(EINVAL, "mnemo_region_foreach: pool and cb are "
			    "required, flags 0 or MNEMO_FOREACH_ALL");
	std::vector<listed> v;
	{
		std::lock_guard<std::mutex> g(pool->mu);
		v = list_regions(pool, flags & MNEMO_FOREACH_ALL);
	}
	for (const listed &r : v)
		if (int rc = cb(r.name.c_str(), r.addr, r.size, arg))
			return rc;
	return 0;
}
