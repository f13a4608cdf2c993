/*
 * alloc_common.h -- shared parts of the allocator benchmark (bench/alloc_*.c):
 * options, per-thread results and the result line bench/run-alloc parses.
 * The workloads themselves are in alloc_work.h.
 *
 * Two workloads, both with blocks of --size bytes (default 64) and --threads
 * threads (pthreads) that each do --ops alloc/free pairs:
 *
 *   pairs   alloc, then at once free the block (outside any transaction);
 *   window  each thread keeps --window live blocks (default 1000) and
 *           replaces a random one per op: check and free the old block,
 *           allocate a new one, write a tag into its first word.  The
 *           slots come from a seeded xorshift, the same for every system.
 */
#ifndef BENCH_ALLOC_COMMON_H
#define BENCH_ALLOC_COMMON_H 1

#include <stdint.h>

#include "common.h"

enum alloc_workload { ALLOC_PAIRS, ALLOC_WINDOW };

struct alloc_opts {
	/* prog, dir, seed, keep and quiet (the txhash fields are unused), so
	 * that bench_die() and bench_path() work */
	struct bench_opts b;
	enum alloc_workload workload;
	unsigned threads;
	uint64_t ops;       /* alloc/free pairs per thread */
	uint64_t window;    /* live blocks per thread (window workload) */
	uint64_t size;      /* bytes per block */
	uint64_t pool_size; /* 0: the program's default */
	/* alloc_mnemo only */
	int heap_alloc;     /* mnemo_heap_alloc on an explicit pool, not pmalloc */
	int recovery;       /* the recovery-time mode instead of a workload */
	uint64_t fill;      /* recovery: bytes of live objects */
	uint64_t leak;      /* recovery: unreachable blocks at the crash */
};

/* Flags of alloc_parse: which program-specific options are accepted. */
#define ALLOC_OPT_MNEMO 1u /* --heap-alloc, --recovery, --fill, --leak */

/* Parse the options; exits with a usage message on error.  `extra` is
 * printed in --help after the common options (may be NULL). */
void alloc_parse(int argc, char **argv, struct alloc_opts *o, unsigned flags,
		 const char *extra);

const char *alloc_workload_name(enum alloc_workload w);

/* What one thread did in its timed loop (one cache line or more each: the
 * threads write their own entries while they run). */
struct __attribute__((aligned(64))) alloc_thread {
	const struct alloc_opts *o;
	unsigned index;
	uint64_t start_ns, end_ns; /* the timed loop */
	double lines, fences;      /* flushed lines and fences counted by
				    * the thread in it; < 0: not measured */
	uint64_t rng;              /* xorshift64* state (window slots) */
};

/*
 * Print the result of one run (all threads) in words unless --quiet, and
 * the one line bench/run-alloc parses:
 *   RESULT system=... mode=... workload=... threads=... size=... ops=...
 *          ns=... ops_per_s=... flushes_per_op=... fences_per_op=...
 * ops: pairs of all threads; ns: from the first thread's start to the last
 * one's end; flushes/fences per pair summed over the threads, n/a if any
 * thread did not count.
 */
void alloc_result(const struct alloc_opts *o, const char *system,
		  const char *mode, const struct alloc_thread *t);

#endif
