/*
 * alias.cc -- second mappings of pool pages ("aliases"), and their fork
 * snapshots (see fork.cc).
 *
 * An alias maps pages of a region at another address too, e.g. over the
 * `mnemo_persistent` section of a loaded ELF object, so that the object's
 * globals are the region's bytes.  Both addresses reach the same page-cache
 * (or DAX) pages.  Everything that keys on addresses -- the transaction
 * engine's stripes and write set, flushes, settling -- first translates an
 * alias address to its window address with canon(), so there is one name
 * for every persistent byte.
 *
 * Registry invariant: an entry with seq even and hi != 0 describes a live
 * alias [lo, hi) of window address lo + delta; active entries never
 * overlap.  Writers hold g_alias_mu; readers (every canon()) are lock-free
 * and retry while seq is odd or changed under them.
 */
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/error.h"
#include "scm/scm.h"

namespace mnemo::scm {

int g_naliases;

namespace {

struct alias {
	std::atomic<uint64_t> seq{0};
	std::atomic<uintptr_t> lo{0}, hi{0};
	std::atomic<intptr_t> delta{0};
	device *dev = nullptr; /* under g_alias_mu */
	uint64_t off = 0;
	char *snap = nullptr; /* fork: prepare's copy of [lo, hi) */
};

constexpr int kMaxAliases = 256;
alias g_aliases[kMaxAliases];
std::atomic<int> g_high{0}; /* entries [0, g_high) may be active */
std::mutex g_alias_mu;

void set_entry(alias &e, uintptr_t lo, uintptr_t hi, intptr_t delta)
{
	e.seq.fetch_add(1, std::memory_order_acq_rel); /* odd: changing */
	e.hi.store(hi, std::memory_order_relaxed);
	e.lo.store(lo, std::memory_order_relaxed);
	e.delta.store(delta, std::memory_order_relaxed);
	e.seq.fetch_add(1, std::memory_order_release);
}

alias *free_entry()
{
	for (int i = 0; i < kMaxAliases; i++) {
		if (g_aliases[i].hi.load(std::memory_order_relaxed) == 0) {
			if (i >= g_high.load())
				g_high.store(i + 1);
			return &g_aliases[i];
		}
	}
	return nullptr;
}

bool overlaps_alias(uintptr_t lo, uintptr_t hi)
{
	for (int i = 0; i < g_high.load(); i++) {
		alias &e = g_aliases[i];
		uintptr_t h = e.hi.load(std::memory_order_relaxed);
		if (h && lo < h && e.lo.load(std::memory_order_relaxed) < hi)
			return true;
	}
	return false;
}

void drop(alias &e)
{
	set_entry(e, 0, 0, 0);
	e.dev = nullptr;
	__atomic_fetch_sub(&g_naliases, 1, __ATOMIC_RELEASE);
}

} // namespace

uintptr_t canon_slow(uintptr_t a)
{
	int n = g_high.load(std::memory_order_acquire);
	for (int i = 0; i < n; i++) {
		alias &e = g_aliases[i];
		for (;;) {
			uint64_t s = e.seq.load(std::memory_order_acquire);
			uintptr_t lo = e.lo.load(std::memory_order_relaxed);
			uintptr_t hi = e.hi.load(std::memory_order_relaxed);
			intptr_t d = e.delta.load(std::memory_order_relaxed);
			std::atomic_thread_fence(std::memory_order_acquire);
			if ((s & 1) || e.seq.load(std::memory_order_relaxed) != s)
				continue;
			if (a - lo < hi - lo)
				return a + d;
			break;
		}
	}
	return a;
}

int device::map_at(void *at, uint64_t off, size_t len)
{
	int flags = (map_flags_ ? map_flags_ : MAP_SHARED) | MAP_FIXED;
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, flags, fd_, (off_t)off);
	if (p == at)
		return 0;
	return fail(errno, "cannot map %zu pool bytes at %p: %s", len, at,
		    strerror(errno));
}

int alias_map(device *d, void *at, uint64_t off, size_t len)
{
	uintptr_t lo = (uintptr_t)at, hi = lo + len;
	if ((lo | len | off) & (kOsPage - 1) || len == 0 || hi < lo ||
	    off + len > d->window())
		return fail(EINVAL, "alias of %zu bytes at %p: not whole pages "
			    "of the pool", len, at);
	if (lo < (uintptr_t)d->base() + d->window() &&
	    (uintptr_t)d->base() < hi)
		return fail(EINVAL, "alias at %p overlaps the pool window", at);
	std::lock_guard<std::mutex> g(g_alias_mu);
	if (overlaps_alias(lo, hi))
		return fail(EEXIST, "alias at %p overlaps another alias", at);
	alias *e = free_entry();
	if (!e)
		return fail(ENOSPC, "too many aliases (max %d)", kMaxAliases);
	int rc = d->map_at(at, off, len);
	if (rc)
		return rc;
	e->dev = d;
	e->off = off;
	set_entry(*e, lo, hi, (intptr_t)(d->base() + off) - (intptr_t)lo);
	__atomic_fetch_add(&g_naliases, 1, __ATOMIC_RELEASE);
	return 0;
}

int alias_forget(void *at)
{
	std::lock_guard<std::mutex> g(g_alias_mu);
	for (int i = 0; i < g_high.load(); i++) {
		alias &e = g_aliases[i];
		if (e.hi.load() && e.lo.load() == (uintptr_t)at) {
			drop(e);
			return 0;
		}
	}
	return fail(ENOENT, "no alias starts at %p", at);
}

bool alias_into(const device *d, uint64_t off, size_t len)
{
	std::lock_guard<std::mutex> g(g_alias_mu);
	for (int i = 0; i < g_high.load(); i++) {
		alias &e = g_aliases[i];
		uintptr_t n = e.hi.load() - e.lo.load();
		if (e.hi.load() && e.dev == d && off < e.off + n &&
		    e.off < off + len)
			return true;
	}
	return false;
}

/* Replace the mapping [p, p+n) by anonymous memory holding the same
 * bytes (no reference to the pool file is left, so its lock goes with
 * the close). */
static void copy_to_anon(void *p, size_t n)
{
	if (char *c = snap_copy((const char *)p, n)) /* fork.cc's copy */
		snap_move(c, (char *)p, n);
}

/* The pool closes: its aliases stay readable and writable but become
 * private copies, so later stores no longer reach the file. */
void alias_forget_device(const device *d)
{
	std::lock_guard<std::mutex> g(g_alias_mu);
	for (int i = 0; i < g_high.load(); i++) {
		alias &e = g_aliases[i];
		uintptr_t lo = e.lo.load(), hi = e.hi.load();
		if (!hi || e.dev != d)
			continue;
		copy_to_anon((void *)lo, hi - lo);
		drop(e);
	}
}

/* Copy every alias of a shared window; the table stays locked until
 * alias_snap_parent or alias_snap_child (fork.cc's prepare). */
void alias_snap_prepare()
{
	g_alias_mu.lock();
	for (int i = 0; i < g_high.load(); i++) {
		alias &e = g_aliases[i];
		uintptr_t lo = e.lo.load(), hi = e.hi.load();
		if (hi && e.dev && e.dev->shared_window())
			e.snap = snap_copy((const char *)lo, hi - lo);
	}
}

void alias_snap_parent()
{
	for (int i = 0; i < g_high.load(); i++) {
		alias &e = g_aliases[i];
		if (e.snap)
			munmap(e.snap, e.hi.load() - e.lo.load());
		e.snap = nullptr;
	}
	g_alias_mu.unlock();
}

/* The child: each copy replaces its alias; an alias without one (no
 * memory for it) maps the file privately, a view rather than a snapshot. */
void alias_snap_child()
{
	for (int i = 0; i < g_high.load(); i++) {
		alias &e = g_aliases[i];
		uintptr_t lo = e.lo.load(), hi = e.hi.load();
		if (!hi || !e.dev || !e.dev->shared_window())
			continue;
		if (!e.snap || !snap_move(e.snap, (char *)lo, hi - lo))
			e.dev->remap_file_private((void *)lo, hi - lo, e.off);
		e.snap = nullptr;
	}
	g_alias_mu.unlock();
}

} // namespace mnemo::scm
