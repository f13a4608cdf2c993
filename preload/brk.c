/*
 * brk.c -- sbrk/brk.  With MNEMO_SBRK=pool the program's break lives in
 * a persistent region of the pool (one per program, "brk:<hash of the
 * executable's path>"): memory obtained from sbrk is persistent, and the
 * break itself is durable, so the next run continues where this one left
 * off.  Otherwise both go to glibc unchanged.  (glibc's malloc calls its
 * own internal __sbrk, so it never comes here.)
 *
 * Region layout: page 0 holds struct brk_hdr; the break area is the rest.
 * Invariant: hdr->top <= the area's size, and it is changed only by one
 * atomic durable store (mnemo_store64).
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

#define BRK_MAGIC 0x4b5242304f4d454eull /* "NEMO0BRK" */
#define BRK_HDR 4096u

struct brk_hdr {
	uint64_t magic;
	uint64_t top; /* bytes of the area below the break */
};

static struct brk_hdr *g_brk; /* NULL: the break is glibc's */
static char *g_area;
static size_t g_area_size;
static pthread_mutex_t g_brk_mu = PTHREAD_MUTEX_INITIALIZER;

void *__sbrk(intptr_t incr);

static int brk_region(const char *name, size_t size)
{
	void *addr;
	size_t have;
	if (mnemo_region_find(g_pool, name, &addr, &have) != 0) {
		if (mnemo_region_create(g_pool, name, size, &addr) != 0)
			return -1;
		have = size;
	}
	g_brk = addr;
	if (g_brk->magic == 0 && g_brk->top == 0) /* created, then a crash */
		mnemo_store64(&g_brk->magic, BRK_MAGIC);
	if (g_brk->magic != BRK_MAGIC || have <= BRK_HDR ||
	    g_brk->top > have - BRK_HDR) {
		g_brk = NULL;
		errno = EUCLEAN;
		return -1;
	}
	g_area = (char *)addr + BRK_HDR;
	g_area_size = have - BRK_HDR;
	return 0;
}

void brk_init(void)
{
	const char *s = getenv("MNEMO_SBRK");
	if (!s || strcmp(s, "pool") != 0)
		return;
	const char *m = getenv("MNEMO_SBRK_MAX");
	long long max = m && *m ? preload_parse_size(m) : 16ll << 20;
	if (max <= 0) {
		preload_fail("MNEMO_SBRK_MAX=%s: expected a size such as 64M",
			     m);
		return;
	}
	char exe[PATH_MAX], name[64];
	preload_exe(exe, sizeof(exe));
	snprintf(name, sizeof(name), "brk:%016llx",
		 (unsigned long long)preload_hash(exe));
	t_inside++;
	int rc = brk_region(name, (size_t)max + BRK_HDR);
	t_inside--;
	if (rc)
		preload_fail("MNEMO_SBRK=pool: cannot use region %s: %s", name,
			     errno == EUCLEAN ? "it is not a break region"
					      : mnemo_errormsg());
	else if (g_verbose)
		preload_say("persistent break at %p, %llu of %zu bytes used",
			    (void *)g_area, (unsigned long long)g_brk->top,
			    g_area_size);
}

/* pre: g_brk_mu held.  Move the break to `top` bytes; zero what it
 * uncovers, as the kernel does for a fresh break. */
static int set_top(uint64_t top)
{
	if (top > g_area_size) {
		errno = ENOMEM;
		return -1;
	}
	uint64_t old = g_brk->top;
	if (top > old) {
		memset(g_area + old, 0, top - old);
		mnemo_persist(g_area + old, top - old);
	}
	mnemo_store64(&g_brk->top, top);
	return 0;
}

PRELOAD_API void *sbrk(intptr_t incr)
{
	if (!g_brk || g_forked)
		return __sbrk(incr);
	t_inside++;
	pthread_mutex_lock(&g_brk_mu);
	uint64_t old = g_brk->top;
	int rc = incr < 0 && (uint64_t)-incr > old ? (errno = ENOMEM, -1)
						    : set_top(old + incr);
	pthread_mutex_unlock(&g_brk_mu);
	t_inside--;
	return rc ? (void *)-1 : g_area + old;
}

PRELOAD_API int brk(void *addr)
{
	if (!g_brk || g_forked) {
		static int (*real)(void *);
		if (!real)
			real = (int (*)(void *))dlsym(RTLD_NEXT, "brk");
		return real ? real(addr) : (errno = ENOSYS, -1);
	}
	if ((char *)addr < g_area) {
		errno = ENOMEM;
		return -1;
	}
	t_inside++;
	pthread_mutex_lock(&g_brk_mu);
	int rc = set_top((uint64_t)((char *)addr - g_area));
	pthread_mutex_unlock(&g_brk_mu);
	t_inside--;
	return rc;
}
