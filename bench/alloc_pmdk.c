/*
 * alloc_pmdk.c -- the allocator benchmark on PMDK libpmemobj's atomic
 * allocator: pmemobj_alloc / pmemobj_free outside any transaction, in a
 * pool on /dev/shm with PMEM_IS_PMEM_FORCE=1 (libpmem flushes with clwb /
 * clflushopt and drains with sfence, as on persistent memory).  The
 * PMEMoid of a live block is kept in volatile memory (as libmnemo's
 * pointers are), so no pmem destination is updated; pmemobj_direct gives
 * the address the window workload writes its tag to.  Workloads in
 * alloc_work.h.
 *
 * Built twice, as txhash_pmdk is: alloc_pmdk measures throughput untouched;
 * alloc_pmdk_count (-DBENCH_PMEM_COUNT, with pmem_count.c) interposes
 * libpmem's flush and drain entry points and reports the lines and fences
 * per pair (each thread counts its own, summed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpmem.h>
#include <libpmemobj.h>

#include "alloc_common.h"
#ifdef BENCH_PMEM_COUNT
#include "pmem_count.h"
#define SYSTEM "pmdk_count"
#else
#define SYSTEM "pmdk"
#endif

typedef PMEMoid be_obj;

static PMEMobjpool *g_pop;
static size_t g_size;

static int be_alloc(struct alloc_thread *t, be_obj *slot)
{
	(void)t;
	return pmemobj_alloc(g_pop, slot, g_size, 0, NULL, NULL);
}

static void be_free(struct alloc_thread *t, be_obj *slot)
{
	(void)t;
	pmemobj_free(slot);
}

static uint64_t *be_ptr(be_obj *slot) { return pmemobj_direct(*slot); }

#ifdef BENCH_PMEM_COUNT
static void be_count_begin(struct alloc_thread *t)
{
	(void)t;
	pmem_count_reset();
}

static void be_count_end(struct alloc_thread *t)
{
	if (pmem_count_msyncs || pmem_count_deep)
		bench_die(&t->o->b, "libpmemobj called pmem_msync %llu times "
			  "and pmem_deep_flush %llu times: not running as on "
			  "pmem", (unsigned long long)pmem_count_msyncs,
			  (unsigned long long)pmem_count_deep);
	if (pmem_count_fences == 0)
		bench_die(&t->o->b, "no pmem_drain seen: the counting wrappers "
			  "are not interposed");
	t->lines = (double)pmem_count_lines;
	t->fences = (double)pmem_count_fences;
}
#else
static void be_count_begin(struct alloc_thread *t) { (void)t; }
static void be_count_end(struct alloc_thread *t) { (void)t; }
#endif

#include "alloc_work.h"

int main(int argc, char **argv)
{
	struct alloc_opts o;
	alloc_parse(argc, argv, &o, 0,
#ifdef BENCH_PMEM_COUNT
		    "  (counts libpmem flushes and fences per pair)\n"
#else
		    "  (throughput only: use alloc_pmdk_count for the counts)\n"
#endif
	);
	/* libpmem reads PMEM_IS_PMEM_FORCE when it initializes: set it and
	 * start again if the caller did not. */
	const char *force = getenv("PMEM_IS_PMEM_FORCE");
	if (!force || strcmp(force, "1") != 0) {
		setenv("PMEM_IS_PMEM_FORCE", "1", 1);
		execv("/proc/self/exe", argv);
		bench_die(&o.b, "re-exec with PMEM_IS_PMEM_FORCE=1: %s",
			  strerror(errno));
	}
	g_size = o.size;

	char name[64];
	snprintf(name, sizeof(name), "alloc-pmdk-%ld.pool", (long)getpid());
	char path[4096];
	snprintf(path, sizeof(path), "%s", bench_path(&o.b, name));
	size_t poolsize = o.pool_size ? o.pool_size : (size_t)256 << 20;
	g_pop = pmemobj_create(path, "alloc", poolsize, 0600);
	if (!g_pop)
		bench_die(&o.b, "pmemobj_create %s: %s", path,
			  pmemobj_errormsg());
	PMEMoid root = pmemobj_root(g_pop, 64);
	if (OID_IS_NULL(root))
		bench_die(&o.b, "pmemobj_root: %s", pmemobj_errormsg());
	if (!pmem_is_pmem(pmemobj_direct(root), 64))
		bench_die(&o.b, "libpmem does not treat the pool as pmem "
			  "(PMEM_IS_PMEM_FORCE=1 not in effect)");
	if (!o.b.quiet)
		printf("%s: pool %s (%zu MiB), PMEM_IS_PMEM_FORCE=1\n", SYSTEM,
		       path, poolsize >> 20);

	struct alloc_thread t[64] = {{0}};
	alloc_run(&o, t);
	alloc_result(&o, SYSTEM, "pmem_force", t);

	pmemobj_close(g_pop);
	if (!o.b.keep)
		unlink(path);
	return 0;
}
