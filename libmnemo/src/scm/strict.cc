/*
 * strict.cc -- the mirror of a strict pool (MNEMO_CHECK=strict).
 *
 * A strict pool's window maps its user data read-only (pool/ and heap/
 * call device::protect), so a plain store from the program faults.  The
 * library writes user data through the mirror: a second reservation of
 * the window's size where map() maps every range of the window again,
 * MAP_SHARED and writable (device::map_at, as aliases are mapped).  Both
 * reach the same page-cache (or DAX) pages, so a store through the
 * mirror is a store to the pool, and a flush of the window address
 * flushes the lines the mirror wrote.
 *
 * Registry invariant: an entry with dev != nullptr describes a live
 * strict window [lo, hi) whose mirror is lo + delta.  Writers hold
 * g_strict_mu; readers (wr_slow, the SIGSEGV handler) scan lock-free:
 * an entry is filled before dev is published and dev cleared before the
 * entry is, and nothing writes a pool while it closes (a caller bug).
 */
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sys/mman.h>

#include "base/error.h"
#include "scm/scm.h"

namespace mnemo::scm {

int g_nstrict;

namespace {

struct strict_slot {
	std::atomic<device *> dev{nullptr};
	std::atomic<uintptr_t> lo{0}, hi{0};
	std::atomic<intptr_t> delta{0};
};
strict_slot g_strict[kMaxWindows];
std::mutex g_strict_mu;

constexpr auto kAcq = std::memory_order_acquire;
constexpr auto kRel = std::memory_order_release;

strict_slot *strict_slot_of(uintptr_t a)
{
	for (strict_slot &s : g_strict) {
		if (!s.dev.load(kAcq))
			continue;
		uintptr_t lo = s.lo.load(kAcq), hi = s.hi.load(kAcq);
		if (a - lo < hi - lo)
			return &s;
	}
	return nullptr;
}

bool add_slot(device *d, char *mirror)
{
	std::lock_guard<std::mutex> g(g_strict_mu);
	for (strict_slot &s : g_strict) {
		if (s.dev.load())
			continue;
		s.lo.store((uintptr_t)d->base(), kRel);
		s.hi.store((uintptr_t)d->base() + d->window(), kRel);
		s.delta.store(mirror - d->base(), kRel);
		s.dev.store(d, kRel);
		__atomic_fetch_add(&g_nstrict, 1, __ATOMIC_RELEASE);
		return true;
	}
	return false;
}

} // namespace

char *wr_slow(char *p)
{
	strict_slot *s = strict_slot_of((uintptr_t)p);
	return s ? p + s->delta.load(std::memory_order_relaxed) : p;
}

device *strict_device_of(uintptr_t a)
{
	strict_slot *s = strict_slot_of(a);
	return s ? s->dev.load(kAcq) : nullptr;
}

int check_from_env(bool *strict)
{
	const char *v = getenv("MNEMO_CHECK");
	*strict = false;
	if (!v || !*v || strcmp(v, "off") == 0)
		return 0;
	if (strcmp(v, "strict") == 0) {
		*strict = true;
		return 0;
	}
	return fail(EINVAL, "MNEMO_CHECK=%s: expected off or strict", v);
}

int device::strict_init()
{
	if (!can_mirror())
		return fail(EINVAL, "MNEMO_CHECK=strict (MNEMO_CHECK_STRICT) "
			    "needs the file or dax backend without "
			    "MNEMO_PRIVATE: the %s backend's window cannot "
			    "be mapped a second time", name());
	void *m = mmap(nullptr, window_, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return fail(errno, "strict mode: cannot reserve a mirror of "
			    "%zu bytes: %s", window_, strerror(errno));
	if (!add_slot(this, (char *)m)) {
		munmap(m, window_);
		return fail(EMFILE, "too many strict pools open (max %d)",
			    kMaxWindows);
	}
	mirror_ = (char *)m;
	return 0;
}

int device::protect(void *p, size_t n)
{
	if (!mirror_ || n == 0)
		return 0;
	if (mprotect(p, n, PROT_READ) == 0)
		return 0;
	return fail(errno, "strict mode: cannot make %zu pool bytes at %p "
		    "read-only: %s", n, p, strerror(errno));
}

bool page_protect(void *p, bool ro)
{
	return mprotect(p, kOsPage, ro ? PROT_READ : PROT_READ | PROT_WRITE) ==
	       0;
}

namespace {

/* pre: g_strict_mu held, or the only thread (a fork child). */
void drop(device *d)
{
	for (strict_slot &s : g_strict) {
		if (s.dev.load() != d)
			continue;
		s.dev.store(nullptr, kRel);
		s.delta.store(0, kRel);
		s.hi.store(0, kRel);
		s.lo.store(0, kRel);
		__atomic_fetch_sub(&g_nstrict, 1, __ATOMIC_RELEASE);
	}
}

} // namespace

void strict_forget(device *d, bool child)
{
	if (child) { /* g_strict_mu may have been held at fork */
		drop(d);
	} else {
		std::lock_guard<std::mutex> g(g_strict_mu);
		drop(d);
	}
	if (d->mirror_)
		munmap(d->mirror_, d->window_);
	d->mirror_ = nullptr;
}

} // namespace mnemo::scm
