/*
 * pmem_count.h -- counting wrappers around libpmem's persistence entry
 * points (pmem_count.c), linked into txhash_pmdk_count and
 * alloc_pmdk_count only.
 */
#ifndef BENCH_PMEM_COUNT_H
#define BENCH_PMEM_COUNT_H 1

#include <stdint.h>

/* Cache lines written back (by clwb/clflushopt, or by non-temporal stores
 * inside pmem_memcpy & co.) and fences (drains) by the calling thread since
 * its last pmem_count_reset(): per thread, like mnemo_stat_get(), so that
 * threads count without sharing a cache line (sum them yourself). */
extern __thread uint64_t pmem_count_lines, pmem_count_fences;
/* Calls that should not happen when libpmem treats the pool as pmem
 * (per thread too). */
extern __thread uint64_t pmem_count_msyncs, pmem_count_deep;
/* Emulated extra latency charged after each fence, in ns. */
extern unsigned pmem_count_fence_ns;

/* Zero the calling thread's counters. */
void pmem_count_reset(void);

#endif
