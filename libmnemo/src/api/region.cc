/*
 * region.cc -- the region calls that need the transaction logs (a region
 * is deleted only once no log record names it), and the paper's
 * interface on the default pool: mnemo_default_pool(), pmap(), punmap().
 * Creating and finding regions is pool/region.cc's.
 */
#include <atomic>
#include <cerrno>
#include <mutex>
#include <sys/mman.h>

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
