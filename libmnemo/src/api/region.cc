/*
 * region.cc -- the region calls that need the transaction logs (a region
 * is deleted only once no log record names it; an alias retires the
 * records naming its pages), and the paper's interface on the default
 * pool: mnemo_default_pool(), pmap(), punmap().  Creating and finding
 * regions is pool/region.cc's; the alias mappings are scm/alias.cc's.
 */
#include <atomic>
#include <cerrno>
#include <mutex>
#include <sys/mman.h>

#include "api/api.h"
#include "base/error.h"
#include "base/export.h"
#include "mnemosyne.h"
#include "pool/pool.h"
#include "tx/txlog.h"

using namespace mnemo;

MNEMO_API int mnemo_region_delete(mnemo_pool *pool, void *addr)
{
	if (!pool)
		return fail(EINVAL, "mnemo_region_delete: pool is NULL");
	/* No log record may name the region's bytes once it is gone. */
	int rc = tx::drain(pool);
	if (rc)
		return rc;
	return region_delete_internal(pool, addr, 0);
}

/* ---- the paper's interface, on the default pool ---- */

namespace {
std::mutex g_default_mu;
/* Read without the mutex on the fast path (pmalloc); set under it. */
std::atomic<mnemo_pool *> g_default;
} // namespace

void mnemo::default_pool_forget(mnemo_pool *pool)
{
	std::lock_guard<std::mutex> g(g_default_mu);
	if (g_default.load() == pool)
		g_default.store(nullptr);
}

mnemo_pool *mnemo::default_pool()
{
	mnemo_pool *p = g_default.load(std::memory_order_acquire);
	return p ? p : mnemo_default_pool();
}

MNEMO_API mnemo_pool *mnemo_default_pool(void)
{
	mnemo_pool *p = g_default.load(std::memory_order_acquire);
	if (p)
		return p;
	std::lock_guard<std::mutex> g(g_default_mu);
	if (!g_default.load()) {
		int rc = mnemo_pool_open(nullptr, MNEMO_CREATE, &p);
		if (rc) {
			errno = -rc;
			return nullptr;
		}
		g_default.store(p, std::memory_order_release);
	}
	return g_default.load();
}

MNEMO_API void *pmap(void *addr, size_t length, int prot, int flags)
{
	if (addr || prot != (PROT_READ | PROT_WRITE) || flags) {
		fail(EINVAL, "pmap: addr must be NULL, prot "
		     "PROT_READ|PROT_WRITE and flags 0");
		errno = EINVAL;
		return nullptr;
	}
	mnemo_pool *pool = mnemo_default_pool();
	void *p = nullptr;
	int rc = pool ? mnemo_region_create(pool, nullptr, length, &p) : -errno;
	if (rc) {
		errno = -rc;
		return nullptr;
	}
	return p;
}

MNEMO_API int punmap(void *addr, size_t length)
{
	mnemo_pool *pool = mnemo_default_pool();
	if (!pool)
		return -errno;
	if (length == 0 || length > pool->max)
		return fail(EINVAL, "punmap: length %zu is 0 or larger than "
			    "the pool", length);
	uint64_t align = pool->hdr.align;
	int rc = tx::drain(pool); /* as mnemo_region_delete */
	if (rc)
		return rc;
	return region_delete_internal(pool, addr,
				      (length + align - 1) & ~(align - 1));
}

/* ---- aliases: pages of a region mapped a second time at an address the
 * caller chooses (the interposer binds ELF sections with them) ---- */

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
	if ((a | len | (uintptr_t)at) & (scm::kOsPage - 1) || len == 0)
		return fail(EINVAL, "mnemo_region_alias: addr, len and at must "
			    "be page aligned and len non-zero");
	/* An alias maps the file's pages a second time; a private pool's
	 * stores live in its own copies, which a second mapping of the file
	 * would not see. */
	if (pool->priv)
		return fail(EROFS, "mnemo_region_alias: pool %s is open with "
			    "MNEMO_PRIVATE (for inspection): its regions cannot "
			    "be aliased", pool->path.c_str());
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
