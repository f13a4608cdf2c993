/*
 * sysalloc.cc -- libmnemo's own memory comes from glibc's allocator,
 * never through the `malloc` symbol.
 *
 * Under the interposer (preload/), `malloc` may mean "allocate from the
 * persistent heap", which re-enters libmnemo: a vector growing inside a
 * commit would then run a transactional allocation in the middle of the
 * engine.  The link maps every allocation call of libmnemo's objects to
 * these wrappers (-Wl,--wrap=..., libmnemo/Makemodule.am), which call
 * glibc's __libc_* entry points directly.
 */
#include <cstddef>
#include <cstdlib>
#include <new>

namespace std {
[[noreturn]] void __throw_bad_alloc(); /* libstdc++: what new does */
}

extern "C" {
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t k, size_t n);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

void *__wrap_malloc(size_t n) { return __libc_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return __libc_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { return __libc_realloc(p, n); }
void __wrap_free(void *p) { __libc_free(p); }

static void *must_alloc(size_t n)
{
	void *p = __libc_malloc(n ? n : 1);
	if (!p)
		std::__throw_bad_alloc();
	return p;
}

void *__wrap__Znwm(size_t n) { return must_alloc(n); }
void *__wrap__Znam(size_t n) { return must_alloc(n); }
void __wrap__ZdlPv(void *p) { __libc_free(p); }
void __wrap__ZdlPvm(void *p, size_t) { __libc_free(p); }
void __wrap__ZdaPv(void *p) { __libc_free(p); }
void __wrap__ZdaPvm(void *p, size_t) { __libc_free(p); }
}
