/*
 * alias.cc -- second mappings of pool pages ("aliases"), and what a fork
 * child does to every mapping of a pool.
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
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "../error.h"
#include "scm.h"

namespace mnemo::scm {

int g_naliases;

namespace {

struct alias {
	std::atomic<uint64_t> seq{0};
	std::atomic<uintptr_t> lo{0}, hi{0};
	std::atomic<intptr_t> delta{0};
	device *dev = nullptr; /* under g_alias_mu */
	uint64_t off = 0;
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

/* A new open file description of fd's file, read-only: private mappings
 * made from it do not hold the pool's lock (flock belongs to the
 * description, and a mapping keeps its description alive). */
static int reopen_unlocked(int fd)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return open(proc, O_RDONLY | O_CLOEXEC);
}

/* Map [p, p+n) privately from fd at off; if that fails, make it
 * inaccessible: a fork child must crash rather than write the pool. */
static void remap_private(void *p, size_t n, int fd, uint64_t off)
{
	if (fd < 0 || mmap(p, n, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_FIXED, fd, (off_t)off) != p)
		mprotect(p, n, PROT_NONE);
}

void device::make_private()
{
	struct stat st;
	int fd = reopen_unlocked(fd_);
	size_t n = window_;
	/* A regular file may be shorter than the window; a device DAX
	 * node reports size 0 and spans it. */
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0 &&
	    (size_t)st.st_size < n)
		n = (size_t)st.st_size;
	remap_private(base_, n, fd, 0);
	if (fd >= 0)
		close(fd);
}

int alias_map(device *d, void *at, uint64_t off, size_t len)
{
	uintptr_t lo = (uintptr_t)at, hi = lo + len;
	if ((lo | len | off) & (kPage - 1) || len == 0 || hi < lo ||
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
	void *t = mmap(nullptr, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		return;
	memcpy(t, p, n);
	if (mremap(t, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, p) == MAP_FAILED)
		munmap(t, n);
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

/*
 * fork: every window and alias of the child becomes a private mapping and
 * the child drops its reference to the pool locks (the lock fd is replaced
 * by /dev/null), so nothing it writes reaches a pool and the parent stays
 * the only writer.  Pages the child has not written may still show the
 * parent's later stores (MAP_PRIVATE): a private view, not a snapshot.  Runs in the child, single-threaded, before
 * fork() returns there; it must not take locks another thread may hold.
 */
void make_all_private(device **windows, int n)
{
	for (int i = 0; i < n; i++)
		if (windows[i])
			windows[i]->make_private();
	for (int i = 0; i < g_high.load(std::memory_order_relaxed); i++) {
		alias &e = g_aliases[i];
		uintptr_t lo = e.lo.load(), hi = e.hi.load();
		if (!hi || !e.dev)
			continue;
		int fd = reopen_unlocked(e.dev->fd());
		remap_private((void *)lo, hi - lo, fd, e.off);
		if (fd >= 0)
			close(fd);
	}
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < n && null >= 0; i++)
		if (windows[i] && windows[i]->fd() >= 0)
			dup3(null, windows[i]->fd(), O_CLOEXEC);
	if (null >= 0)
		close(null);
}

} // namespace mnemo::scm
