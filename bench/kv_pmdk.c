/*
 * kv_pmdk.c -- the natural-layout key-value benchmark (kv.h) on PMDK
 * libpmemobj: the bucket array is the root object, each entry a
 * pmemobj_tx_alloc'ed object, links are pool offsets.  One overwrite:
 * TX_BEGIN-style pmemobj_tx_begin; chain walked with plain loads;
 * pmemobj_tx_add_range_direct(value); memcpy; commit/end.  Pool on --dir
 * with PMEM_IS_PMEM_FORCE=1 (clwb/clflushopt + sfence, as on pmem).
 *
 * Built twice, like txhash_pmdk: kv_pmdk for throughput, kv_pmdk_count
 * (-DBENCH_PMEM_COUNT) counting libpmem's flushes and fences and charging
 * --fence-ns at each drain.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpmem.h>
#include <libpmemobj.h>

#include "kv.h"
#ifdef BENCH_PMEM_COUNT
#include "pmem_count.h"
#define SYSTEM "pmdk_count"
#else
#define SYSTEM "pmdk"
#endif

static PMEMobjpool *g_pop;
static uint64_t *g_buckets;
static struct bench_opts O;

static void tx_fail(const char *what)
{
	bench_die(&O, "%s: %s", what, pmemobj_errormsg());
}

static struct kv_entry *at(uint64_t off)
{
	return (struct kv_entry *)((char *)g_pop + off);
}

static void tx_begin(void)
{
	if (pmemobj_tx_begin(g_pop, NULL, TX_PARAM_NONE))
		tx_fail("pmemobj_tx_begin");
}

static void tx_end(void)
{
	pmemobj_tx_commit();
	int rc = pmemobj_tx_end();
	if (rc)
		bench_die(&O, "transaction aborted: %s", strerror(rc));
}

static void insert_in_tx(uint64_t key, const unsigned char *val)
{
	PMEMoid oid = pmemobj_tx_alloc(sizeof(struct kv_entry) + O.vsize, 1);
	if (OID_IS_NULL(oid))
		tx_fail("pmemobj_tx_alloc");
	struct kv_entry *e = pmemobj_direct(oid);
	uint64_t *head = &g_buckets[kv_bucket(key)];
	e->key = key;
	e->next = *head;
	memcpy(e->value, val, O.vsize);
	if (pmemobj_tx_add_range_direct(head, 8))
		tx_fail("pmemobj_tx_add_range_direct(bucket)");
	*head = oid.off;
}

static struct kv_entry *find(uint64_t key)
{
	uint64_t off = g_buckets[kv_bucket(key)];
	while (off && at(off)->key != key)
		off = at(off)->next;
	return off ? at(off) : NULL;
}

static void overwrite(uint64_t key, const unsigned char *val)
{
	tx_begin();
	struct kv_entry *e = find(key);
	if (!e)
		bench_die(&O, "key %llu missing", (unsigned long long)key);
	if (pmemobj_tx_add_range_direct(e->value, O.vsize))
		tx_fail("pmemobj_tx_add_range_direct(value)");
	memcpy(e->value, val, O.vsize);
	tx_end();
}

#ifdef BENCH_PMEM_COUNT
static void read_counts(uint64_t *lines, uint64_t *fences)
{
	*lines = pmem_count_lines;
	*fences = pmem_count_fences;
}

static const struct kv_system g_pmdk = {overwrite, pmem_count_reset,
					read_counts};
#else
static const struct kv_system g_pmdk = {overwrite, NULL, NULL};
#endif

static void verify(void)
{
	for (uint64_t i = 0; i < O.preload; i++) {
		uint64_t key = bench_key(i);
		struct kv_entry *e = find(key);
		if (!e || !bench_value_ok(e->value, O.vsize, key))
			bench_die(&O, "verify: key %llu missing or damaged",
				  (unsigned long long)i);
	}
}

int main(int argc, char **argv)
{
	kv_parse(argc, argv, &O, NULL);
	bench_one_thread(&O);
	/* libpmem reads PMEM_IS_PMEM_FORCE when it initializes. */
	const char *force = getenv("PMEM_IS_PMEM_FORCE");
	if (!force || strcmp(force, "1") != 0) {
		setenv("PMEM_IS_PMEM_FORCE", "1", 1);
		execv("/proc/self/exe", argv);
		bench_die(&O, "re-exec: %s", strerror(errno));
	}
#ifndef BENCH_PMEM_COUNT
	if (O.fence_ns)
		bench_die(&O, "--fence-ns needs kv_pmdk_count");
#endif
	char name[64];
	snprintf(name, sizeof(name), "kv-pmdk-%ld.pool", (long)getpid());
	char path[4096];
	snprintf(path, sizeof(path), "%s", bench_path(&O, name));
	size_t size = 2 * O.preload * (64 + O.vsize) + ((size_t)64 << 20);
	g_pop = pmemobj_create(path, "kv", size, 0600);
	if (!g_pop)
		bench_die(&O, "pmemobj_create %s: %s", path, pmemobj_errormsg());
	PMEMoid root = pmemobj_root(g_pop, 8 * KV_NBUCKETS);
	if (OID_IS_NULL(root))
		bench_die(&O, "pmemobj_root: %s", pmemobj_errormsg());
	g_buckets = pmemobj_direct(root);
	if (!pmem_is_pmem(g_buckets, 8 * KV_NBUCKETS))
		bench_die(&O, "PMEM_IS_PMEM_FORCE=1 not in effect");
	unsigned char *val = malloc(O.vsize);
	if (!val)
		bench_die(&O, "out of memory");
	for (uint64_t i = 0; i < O.preload;) {
		tx_begin();
		for (uint64_t j = 0; j < O.batch && i < O.preload; j++, i++) {
			bench_fill_value(val, O.vsize, bench_key(i), 0);
			insert_in_tx(bench_key(i), val);
		}
		tx_end();
	}

#ifdef BENCH_PMEM_COUNT
	pmem_count_fence_ns = O.fence_ns;
#endif
	uint64_t ops;
	double lines, fences;
	uint64_t ns = kv_timed_loop(&O, &g_pmdk, &ops, &lines, &fences);
#ifdef BENCH_PMEM_COUNT
	pmem_count_fence_ns = 0;
	if (fences == 0)
		bench_die(&O, "no pmem_drain seen: the counting wrappers are "
			  "not interposed");
#endif
	verify();
	bench_result(&O, SYSTEM, ops, ns, lines, fences, 0);
	free(val);
	pmemobj_close(g_pop);
	if (!O.keep)
		unlink(path);
	return 0;
}
