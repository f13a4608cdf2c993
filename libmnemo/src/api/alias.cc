/*
 * alias.cc -- mnemo_region_alias(): pages of a region mapped a second time
 * at an address the caller chooses (the interposer binds ELF sections with
 * it).  The mapping and the address translation live in scm/alias.cc.
 */
#include <cerrno>
#include <mutex>

#include "base/error.h"
#include "base/export.h"
#include "mnemosyne.h"
#include "pool/pool.h"
#include "tx/txlog.h"

using namespace mnemo;

namespace {

/* The live, user-owned extent holding [a, a+n), or nullptr.  pre: mu. */
const mnemo_pool::extent *user_extent(mnemo_pool *pool, uintptr_t a,
				      size_t n)
{
	for (const auto &e : pool->extents) {
		uintptr_t lo = (uintptr_t)pool->base + e.offset;
		if (a >= lo && n <= e.size && a - lo <= e.size - n)
			return name_reserved(pool->regions()[e.slot].name)
				       ? nullptr
				       : &e;
	}
	return nullptr;
}

} // namespace

MNEMO_API int mnemo_region_alias(mnemo_pool *pool, void *addr, size_t len,
				 void *at)
{
	if (!pool || !addr || !at)
		return fail(EINVAL, "mnemo_region_alias: pool, addr and at are "
			    "required");
	uintptr_t a = (uintptr_t)addr;
	if ((a | len | (uintptr_t)at) & (scm::kPage - 1) || len == 0)
		return fail(EINVAL, "mnemo_region_alias: addr, len and at must "
			    "be page aligned and len non-zero");
	/* A record naming the pages by their old bytes must not replay
	 * over stores made through the alias: retire the live ones. */
	tx::settle(pool);
	std::lock_guard<std::mutex> g(pool->mu);
	if (!user_extent(pool, a, len))
		return fail(EINVAL, "mnemo_region_alias: [%p, +%zu) is not "
			    "inside one user region of pool %s", addr, len,
			    pool->path.c_str());
	return scm::alias_map(pool->dev.get(), at, a - (uintptr_t)pool->base,
			      len);
}

MNEMO_API int mnemo_region_unalias(mnemo_pool *pool, void *at)
{
	if (!pool || !at)
		return fail(EINVAL, "mnemo_region_unalias: pool and at are "
			    "required");
	tx::settle(pool);
	return scm::alias_forget(at);
}
