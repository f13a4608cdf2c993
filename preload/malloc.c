/*
 * malloc.c -- the malloc family, routed by MNEMO_MALLOC.
 *
 * New blocks go to the persistent heap of the interposer's pool when the
 * policy says so (route_here()), else to glibc.  A block's owner is known
 * from its address alone: persistent blocks lie in the pool's window, so
 * free/realloc/malloc_usable_size need one subtraction and one compare.
 * A block keeps its owner for life: realloc of a glibc block stays in
 * glibc, realloc of a persistent block stays persistent.
 *
 * Fast path with MNEMO_MALLOC=off (the default): one load of g_route and a
 * call to glibc; free adds the range check.
 */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

/* Whether a new block of n bytes goes to the persistent heap. */
static inline int route_here(size_t n)
{
	enum route r = __atomic_load_n(&g_route, __ATOMIC_RELAXED);
	if (LIKELY(r == ROUTE_OFF) || t_inside)
		return 0;
	return r == ROUTE_ALL || n >= g_min;
}

/* Called with a failed persistent allocation: says once why. */
static void heap_full(size_t n)
{
	static int said;
	if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		preload_say("persistent allocation of %zu bytes failed: %s "
			    "(further failures are not reported)",
			    n, mnemo_errormsg());
	errno = ENOMEM;
}

/* Persistent blocks are allocated and freed outside any transaction the
 * thread has open (MNEMO_HEAP_NOTX): libc allocates between a begin and
 * an abort (a stdio buffer, say), and an abort must not take it back. */
static void *p_alloc(size_t n, size_t align, unsigned flags)
{
	t_inside++;
	void *p = mnemo_heap_alloc(g_pool, n ? n : 1, align,
				   flags | MNEMO_HEAP_NOTX);
	t_inside--;
	if (!p)
		heap_full(n);
	else if (g_verbose) /* a shared counter: only when it is reported */
		__atomic_fetch_add(&g_routed, 1, __ATOMIC_RELAXED);
	return p;
}

PRELOAD_API void *malloc(size_t n)
{
	if (LIKELY(!route_here(n)))
		return __libc_malloc(n);
	return p_alloc(n, 0, 0);
}

PRELOAD_API void free(void *p)
{
	if (LIKELY(!is_pool_ptr(p))) {
		__libc_free(p);
		return;
	}
	if (g_forked) /* the child's copy: nothing to give back */
		return;
	t_inside++;
	if (mnemo_heap_free(p, MNEMO_HEAP_NOTX) != 0)
		preload_say("free(%p): %s", p, mnemo_errormsg());
	t_inside--;
}

PRELOAD_API void *calloc(size_t k, size_t n)
{
	size_t total;
	if (__builtin_mul_overflow(k, n, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (LIKELY(!route_here(total)))
		return __libc_calloc(k, n);
	return p_alloc(total, 0, MNEMO_HEAP_ZERO);
}

PRELOAD_API size_t malloc_usable_size(void *p)
{
	static size_t (*real)(void *);
	if (is_pool_ptr(p)) {
		t_inside++;
		size_t n = pmalloc_usable_size(p);
		t_inside--;
		return n;
	}
	if (!p)
		return 0;
	if (!real) {
		t_inside++;
		real = (size_t (*)(void *))dlsym(RTLD_NEXT,
						 "malloc_usable_size");
		t_inside--;
	}
	return real ? real(p) : 0;
}

/* A forked child never writes the persistent heap: it moves the block to
 * glibc (the private copy stays where it is). */
static void *child_realloc(void *p, size_t n)
{
	size_t have = malloc_usable_size(p);
	void *q = __libc_malloc(n);
	if (q)
		memcpy(q, p, have < n ? have : n);
	return q;
}

/* A persistent block grows into a new persistent block (non-transactional
 * like every interposed call). */
static void *p_realloc(void *p, size_t n)
{
	t_inside++;
	size_t have = pmalloc_usable_size(p);
	t_inside--;
	if (!have) { /* not an allocated block: said by libmnemo */
		preload_say("realloc(%p): %s", p, mnemo_errormsg());
		errno = EINVAL;
		return NULL;
	}
	if (n <= have)
		return p;
	void *q = p_alloc(n, 0, 0);
	if (q) {
		memcpy(q, p, have);
		free(p);
	}
	return q;
}

PRELOAD_API void *realloc(void *p, size_t n)
{
	if (!p)
		return malloc(n);
	if (LIKELY(!is_pool_ptr(p)))
		return __libc_realloc(p, n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	return g_forked ? child_realloc(p, n) : p_realloc(p, n);
}

/* The wrappers' own addresses (whatever the global lookup finds). */
#define OWN(name, ours) \
	extern __typeof__(name) ours __attribute__((alias(#name), copy(name)))
OWN(malloc, preload_malloc);
OWN(calloc, preload_calloc);
OWN(free, preload_free);
OWN(realloc, preload_realloc);

PRELOAD_API void *reallocarray(void *p, size_t k, size_t n)
{
	size_t total;
	if (__builtin_mul_overflow(k, n, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

/* The persistent heap aligns up to 64 KiB; larger alignments (huge-page
 * buffers) stay volatile, which is said once. */
#define PHEAP_ALIGN_MAX ((size_t)64 << 10)

static void *aligned(size_t align, size_t n)
{
	if (LIKELY(!route_here(n)))
		return __libc_memalign(align, n);
	if (align <= PHEAP_ALIGN_MAX)
		return p_alloc(n, align, 0);
	static int said;
	if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		preload_say("alignment %zu is above the persistent heap's "
			    "64 KiB: such blocks are volatile", align);
	return __libc_memalign(align, n);
}

static int pow2(size_t a)
{
	return a && !(a & (a - 1));
}

PRELOAD_API int posix_memalign(void **out, size_t align, size_t n)
{
	if (!pow2(align) || align % sizeof(void *))
		return EINVAL;
	int saved = errno;
	void *p = aligned(align, n);
	if (!p)
		return ENOMEM;
	errno = saved;
	*out = p;
	return 0;
}

PRELOAD_API void *aligned_alloc(size_t align, size_t n)
{
	if (!pow2(align)) /* glibc rounds such alignments up */
		return __libc_memalign(align, n);
	return aligned(align, n);
}

PRELOAD_API void *memalign(size_t align, size_t n)
{
	if (!pow2(align)) /* glibc rounds such alignments up */
		return __libc_memalign(align, n);
	return aligned(align, n);
}

PRELOAD_API void *valloc(size_t n)
{
	return aligned((size_t)sysconf(_SC_PAGESIZE), n);
}

PRELOAD_API void *pvalloc(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t r;
	if (__builtin_add_overflow(n, pg - 1, &r)) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned(pg, (r & ~(pg - 1)) ? r & ~(pg - 1) : pg);
}
