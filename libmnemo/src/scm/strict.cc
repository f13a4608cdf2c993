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
 * The mirror's offset from the window is kept in the registry of windows
 * (scm.cc), where the lookups that translate an address (wr_slow) and
 * the SIGSEGV handler's (strict_device_of) find it with the window.
 */
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>

#include "base/error.h"
#include "scm/scm.h"

namespace mnemo::scm {

int g_nstrict;

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
	if (!set_mirror(this, (char *)m - base_)) {
		munmap(m, window_);
		return fail(EINVAL, "strict mode: the pool's window is not "
			    "registered");
	}
	__atomic_fetch_add(&g_nstrict, 1, __ATOMIC_RELEASE);
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

void strict_forget(device *d, bool child)
{
	if (!d->mirror_)
		return;
	/* Untranslated first: no lookup finds the mirror once it goes. */
	set_mirror(d, 0, child);
	__atomic_fetch_sub(&g_nstrict, 1, __ATOMIC_RELEASE);
	munmap(d->mirror_, d->window_);
	d->mirror_ = nullptr;
}

} // namespace mnemo::scm
