/*
 * txhash_pmdk.c -- the hash-table upsert benchmark on PMDK libpmemobj:
 * one undo-log transaction (pmemobj_tx_begin/commit/end) per upsert, every
 * modified byte snapshotted with pmemobj_tx_add_range_direct, in a pool on
 * /dev/shm with PMEM_IS_PMEM_FORCE=1 (so libpmem flushes with clwb /
 * clflushopt and drains with sfence, as on persistent memory).
 *
 * The table and the work per transaction are those of txhash_mnemo.c (see
 * common.h).  An update snapshots and overwrites the value; an insert
 * snapshots and bumps the arena pointer and the bucket head, and adds the
 * fresh node's value, key and link with POBJ_XADD_NO_SNAPSHOT (they lie
 * beyond the old bump pointer, so there is nothing to undo; they are still
 * flushed at commit).
 *
 * Built twice: txhash_pmdk measures throughput untouched; txhash_pmdk_count
 * (-DBENCH_PMEM_COUNT, with pmem_count.c) interposes libpmem's flush and
 * drain entry points to count cache lines and fences per transaction and to
 * charge an emulated latency per fence (--fence-ns).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpmem.h>
#include <libpmemobj.h>

#include "common.h"
#ifdef BENCH_PMEM_COUNT
#include "pmem_count.h"
#endif

#define SYSTEM "pmdk"

static PMEMobjpool *g_pop;

static struct bench_opts O;

static void tx_fail(const char *what)
{
	bench_die(&O, "%s: %s", what, pmemobj_errormsg());
}

/* Upsert inside the caller's transaction; returns 1 if it inserted. */
static int upsert_in_tx(struct txh_table *t, uint64_t key,
			const unsigned char *val)
{
	uint64_t *slot = &t->buckets[txh_bucket(key)];
	uint64_t head = *slot, off = head;
	while (off && *txh_key_of(t, off) != key)
		off = *txh_next_of(t, off);
	if (off) {
		if (pmemobj_tx_add_range_direct(t->area + off, t->vsize))
			tx_fail("pmemobj_tx_add_range_direct(value)");
		memcpy(t->area + off, val, t->vsize);
		return 0;
	}
	uint64_t b = t->hdr->bump;
	if (b + t->stride > t->size)
		bench_die(&O, "arena full");
	if (pmemobj_tx_add_range_direct(&t->hdr->bump, 8))
		tx_fail("pmemobj_tx_add_range_direct(bump)");
	t->hdr->bump = b + t->stride;
	if (pmemobj_tx_xadd_range_direct(t->area + b, t->vsize,
					 POBJ_XADD_NO_SNAPSHOT) ||
	    pmemobj_tx_xadd_range_direct(txh_key_of(t, b), 16,
					 POBJ_XADD_NO_SNAPSHOT))
		tx_fail("pmemobj_tx_xadd_range_direct(node)");
	memcpy(t->area + b, val, t->vsize);
	*txh_key_of(t, b) = key;
	*txh_next_of(t, b) = head;
	if (pmemobj_tx_add_range_direct(slot, 8))
		tx_fail("pmemobj_tx_add_range_direct(bucket)");
	*slot = b;
	return 1;
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

int main(int argc, char **argv)
{
	bench_parse(argc, argv, &O,
#ifdef BENCH_PMEM_COUNT
		    "  (counts libpmem flushes and fences; --fence-ns charged at each drain)\n"
#else
		    "  (throughput only: use txhash_pmdk_count for counts and --fence-ns)\n"
#endif
	);
	bench_one_thread(&O);
	/* libpmem reads PMEM_IS_PMEM_FORCE when it initializes: set it and
	 * start again if the caller did not. */
	const char *force = getenv("PMEM_IS_PMEM_FORCE");
	if (!force || strcmp(force, "1") != 0) {
		setenv("PMEM_IS_PMEM_FORCE", "1", 1);
		execv("/proc/self/exe", argv);
		bench_die(&O, "re-exec with PMEM_IS_PMEM_FORCE=1: %s",
			  strerror(errno));
	}
#ifndef BENCH_PMEM_COUNT
	if (O.fence_ns)
		bench_die(&O, "--fence-ns needs txhash_pmdk_count");
#endif

	struct txh_table t;
	uint64_t area_size = txh_area_size(&O);
	char name[64];
	snprintf(name, sizeof(name), "txhash-pmdk-%ld.pool", (long)getpid());
	char path[4096];
	snprintf(path, sizeof(path), "%s", bench_path(&O, name));
	size_t poolsize = area_size + area_size / 8 + ((size_t)64 << 20);
	g_pop = pmemobj_create(path, "txhash", poolsize, 0600);
	if (!g_pop)
		bench_die(&O, "pmemobj_create %s: %s", path, pmemobj_errormsg());
	/* The area starts on a cache-line boundary, as the libmnemo region
	 * (page-aligned) does; the root object's data need not. */
	PMEMoid root = pmemobj_root(g_pop, area_size + TXH_LINE);
	if (OID_IS_NULL(root))
		bench_die(&O, "pmemobj_root: %s", pmemobj_errormsg());
	txh_table_init(&t, &O,
		       (char *)(((uintptr_t)pmemobj_direct(root) + TXH_LINE - 1) &
				~(uintptr_t)(TXH_LINE - 1)));
	if (!pmem_is_pmem(t.area, t.size))
		bench_die(&O, "libpmem does not treat the pool as pmem "
			  "(PMEM_IS_PMEM_FORCE=1 not in effect)");
	bench_prefault(t.area, t.size);

	/* Header, then the preload: --batch keys per transaction. */
	tx_begin();
	if (pmemobj_tx_add_range_direct(t.hdr, sizeof(*t.hdr)))
		tx_fail("pmemobj_tx_add_range_direct(hdr)");
	t.hdr->magic = TXH_MAGIC;
	t.hdr->vsize = t.vsize;
	t.hdr->stride = t.stride;
	t.hdr->nbuckets = TXH_NBUCKETS;
	t.hdr->bump = TXH_FIRST_NODE;
	tx_end();
	unsigned char *val = malloc(O.vsize);
	if (!val)
		bench_die(&O, "out of memory");
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < O.preload;) {
		tx_begin();
		for (uint64_t j = 0; j < O.batch && i < O.preload; j++, i++) {
			uint64_t key = bench_key(i);
			bench_fill_value(val, O.vsize, key, 0);
			upsert_in_tx(&t, key, val);
		}
		tx_end();
	}
	uint64_t tpre = bench_now_ns() - t0;
	if (!O.quiet)
		printf("%s: pool %s (%zu MiB), %llu keys preloaded in %.2f s "
		       "(%llu per transaction)\n",
		       SYSTEM, path, poolsize >> 20,
		       (unsigned long long)O.preload, (double)tpre / 1e9,
		       (unsigned long long)O.batch);

	/* The timed loop: one transaction per upsert. */
	struct bench_seq q;
	bench_seq_init(&q, &O);
	uint64_t inserts = 0;
#ifdef BENCH_PMEM_COUNT
	pmem_count_reset();
	pmem_count_fence_ns = O.fence_ns;
#endif
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < O.ops; i++) {
		uint64_t key = bench_key(bench_seq_next(&q));
		bench_fill_value(val, O.vsize, key, i + 1);
		tx_begin();
		inserts += (uint64_t)upsert_in_tx(&t, key, val);
		tx_end();
	}
	uint64_t ns = bench_now_ns() - t0;
	double lines = -1, fences = -1;
#ifdef BENCH_PMEM_COUNT
	pmem_count_fence_ns = 0;
	lines = (double)pmem_count_lines;
	fences = (double)pmem_count_fences;
	if (pmem_count_msyncs || pmem_count_deep)
		bench_die(&O, "libpmemobj called pmem_msync %llu times and "
			  "pmem_deep_flush %llu times: not running as on pmem",
			  (unsigned long long)pmem_count_msyncs,
			  (unsigned long long)pmem_count_deep);
	if (pmem_count_fences == 0)
		bench_die(&O, "no pmem_drain seen: the counting wrappers are "
			  "not interposed");
#endif

	/* Check: every key of the key space is there iff it was loaded or
	 * upserted, with a well-formed value. */
	txh_verify(&O, &t, inserts);

	bench_result(&O, SYSTEM, O.ops, ns, lines, fences, (int64_t)inserts);
	free(val);
	pmemobj_close(g_pop);
	if (!O.keep)
		unlink(path);
	return 0;
}
