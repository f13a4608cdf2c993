/*
 * pmem_count.c -- count libpmemobj's cache-line write-backs and fences.
 *
 * libpmemobj (PMDK 1.12) contains no flush or fence instruction of its own:
 * every one goes through libpmem's exported functions (pmem_flush,
 * pmem_drain, pmem_persist, pmem_memcpy/memmove/memset with flags, ...),
 * which it calls through its GOT/PLT.  This file defines those functions in
 * the executable (linked with -export-dynamic), so the dynamic linker binds
 * libpmemobj's references to them; each one counts and then calls the real
 * libpmem function (dlvsym RTLD_NEXT).  libpmem calls its own exports
 * through the PLT too (pmem_persist -> pmem_flush + pmem_drain), so only the
 * outermost call of a thread counts.
 *
 *  lines:  the 64-byte lines of the range of pmem_flush / pmem_persist, and
 *          of pmem_memcpy/memmove/memset unless PMEM_F_MEM_NOFLUSH (libpmem
 *          writes those back with clwb/clflushopt, or stores them
 *          non-temporally; either way each line goes to memory).
 *  fences: pmem_drain, pmem_persist, and pmem_mem* without
 *          PMEM_F_MEM_NODRAIN / PMEM_F_MEM_NOFLUSH (each ends in
 *          pmem_drain, an sfence where clwb or clflushopt is in use).
 *
 * The counters are per thread (each thread counts its own calls, as
 * libmnemo's mnemo_stat_get() does); pmem_count_fence_ns > 0 busy-waits
 * that long after every counted fence, as libmnemo's latency emulator does
 * at its fences.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <libpmem.h>

#include "common.h"
#include "pmem_count.h"

__thread uint64_t pmem_count_lines, pmem_count_fences;
__thread uint64_t pmem_count_msyncs, pmem_count_deep;
unsigned pmem_count_fence_ns;

static __thread int depth;
static int trace; /* BENCH_PMEM_TRACE=1: log every counted call to stderr */

static void (*real_flush)(const void *, size_t);
static void (*real_drain)(void);
static void (*real_persist)(const void *, size_t);
static void (*real_deep_flush)(const void *, size_t);
static int (*real_msync)(const void *, size_t);
static void *(*real_memcpy)(void *, const void *, size_t, unsigned);
static void *(*real_memmove)(void *, const void *, size_t, unsigned);
static void *(*real_memset)(void *, int, size_t, unsigned);

static void *real(const char *name)
{
	void *p = dlvsym(RTLD_NEXT, name, "LIBPMEM_1.0");
	if (!p) {
		fprintf(stderr, "pmem_count: %s@LIBPMEM_1.0 not found: %s\n",
			name, dlerror());
		abort();
	}
	return p;
}

__attribute__((constructor)) static void resolve(void)
{
	const char *t = getenv("BENCH_PMEM_TRACE");
	trace = t && *t == '1';
	real_flush = (void (*)(const void *, size_t))real("pmem_flush");
	real_drain = (void (*)(void))real("pmem_drain");
	real_persist = (void (*)(const void *, size_t))real("pmem_persist");
	real_deep_flush =
		(void (*)(const void *, size_t))real("pmem_deep_flush");
	real_msync = (int (*)(const void *, size_t))real("pmem_msync");
	real_memcpy = (void *(*)(void *, const void *, size_t,
				 unsigned))real("pmem_memcpy");
	real_memmove = (void *(*)(void *, const void *, size_t,
				  unsigned))real("pmem_memmove");
	real_memset =
		(void *(*)(void *, int, size_t, unsigned))real("pmem_memset");
}

void pmem_count_reset(void)
{
	pmem_count_lines = pmem_count_fences = 0;
	pmem_count_msyncs = pmem_count_deep = 0;
}

static uint64_t lines_of(const void *p, size_t n)
{
	if (n == 0)
		return 0;
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(TXH_LINE - 1);
	uintptr_t e = (uintptr_t)p + n;
	return (e - a + TXH_LINE - 1) / TXH_LINE;
}

static void note(const char *fn, const void *p, size_t n, unsigned flags)
{
	if (trace)
		fprintf(stderr, "pmem_count: %s %p %zu flags 0x%x\n", fn, p, n,
			flags);
}

static void fenced(void)
{
	pmem_count_fences++;
	if (pmem_count_fence_ns)
		bench_spin_ns(pmem_count_fence_ns);
}

void pmem_flush(const void *addr, size_t len)
{
	if (depth == 0) {
		pmem_count_lines += lines_of(addr, len);
		note("pmem_flush", addr, len, 0);
	}
	depth++;
	real_flush(addr, len);
	depth--;
}

void pmem_drain(void)
{
	int outer = depth == 0;
	depth++;
	real_drain();
	depth--;
	if (outer) {
		note("pmem_drain", NULL, 0, 0);
		fenced();
	}
}

void pmem_persist(const void *addr, size_t len)
{
	int outer = depth == 0;
	if (outer) {
		pmem_count_lines += lines_of(addr, len);
		note("pmem_persist", addr, len, 0);
	}
	depth++;
	real_persist(addr, len);
	depth--;
	if (outer)
		fenced();
}

void pmem_deep_flush(const void *addr, size_t len)
{
	if (depth == 0) {
		pmem_count_lines += lines_of(addr, len);
		pmem_count_deep++;
		note("pmem_deep_flush", addr, len, 0);
	}
	depth++;
	real_deep_flush(addr, len);
	depth--;
}

int pmem_msync(const void *addr, size_t len)
{
	if (depth == 0) {
		pmem_count_msyncs++;
		note("pmem_msync", addr, len, 0);
	}
	depth++;
	int rc = real_msync(addr, len);
	depth--;
	return rc;
}

static void count_mem(const char *fn, const void *dst, size_t len,
		      unsigned flags, int outer)
{
	if (!outer)
		return;
	note(fn, dst, len, flags);
	if (flags & PMEM_F_MEM_NOFLUSH)
		return;
	pmem_count_lines += lines_of(dst, len);
}

static void mem_done(unsigned flags, int outer)
{
	if (outer && !(flags & (PMEM_F_MEM_NODRAIN | PMEM_F_MEM_NOFLUSH)))
		fenced();
}

void *pmem_memcpy(void *dst, const void *src, size_t len, unsigned flags)
{
	int outer = depth == 0;
	count_mem("pmem_memcpy", dst, len, flags, outer);
	depth++;
	void *r = real_memcpy(dst, src, len, flags);
	depth--;
	mem_done(flags, outer);
	return r;
}

void *pmem_memmove(void *dst, const void *src, size_t len, unsigned flags)
{
	int outer = depth == 0;
	count_mem("pmem_memmove", dst, len, flags, outer);
	depth++;
	void *r = real_memmove(dst, src, len, flags);
	depth--;
	mem_done(flags, outer);
	return r;
}

void *pmem_memset(void *dst, int c, size_t len, unsigned flags)
{
	int outer = depth == 0;
	count_mem("pmem_memset", dst, len, flags, outer);
	depth++;
	void *r = real_memset(dst, c, len, flags);
	depth--;
	mem_done(flags, outer);
	return r;
}
