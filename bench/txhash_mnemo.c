/*
 * txhash_mnemo.c -- the hash-table upsert benchmark on libmnemo: a pool
 * (file backend, MNEMO_DURABILITY=pmem: real clwb/clflushopt + sfence, the
 * analogue of PMDK's PMEM_IS_PMEM_FORCE=1) on /dev/shm, the table in one
 * region, one durable transaction (mnemo_tx_begin ... mnemo_tx_commit,
 * retried on -EAGAIN) per upsert.  Every read of the table goes through
 * mnemo_tx_get64, every write through mnemo_tx_set64 or, for the value, one
 * mnemo_tx_store of the whole value.
 *
 * The table and the work per transaction are those of txhash_pmdk.c (see
 * common.h).  Flushed lines and fences per transaction come from
 * mnemo_stat_get(); --fence-ns sets libmnemo's latency emulator
 * (mnemo_emul_set(0, ns)) for the timed loop only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mnemosyne.h>

#include "common.h"

static struct bench_opts O;

/* Upsert inside the caller's transaction; returns 1 if it inserted.  After
 * a failed call the transaction is doomed and every later call does nothing
 * (value forms return 0, which ends the chain walk); commit reports it. */
static int upsert_in_tx(struct txh_table *t, uint64_t key,
			const unsigned char *val)
{
	uint64_t *slot = &t->buckets[txh_bucket(key)];
	uint64_t head = mnemo_tx_get64(slot), off = head;
	while (off && mnemo_tx_get64(txh_key_of(t, off)) != key)
		off = mnemo_tx_get64(txh_next_of(t, off));
	if (off) {
		mnemo_tx_store(t->area + off, val, t->vsize);
		return 0;
	}
	uint64_t b = mnemo_tx_get64(&t->hdr->bump);
	if (mnemo_tx_status())
		return 0;
	if (b + t->stride > t->size)
		bench_die(&O, "arena full");
	mnemo_tx_set64(&t->hdr->bump, b + t->stride);
	mnemo_tx_store(t->area + b, val, t->vsize);
	mnemo_tx_set64(txh_key_of(t, b), key);
	mnemo_tx_set64(txh_next_of(t, b), head);
	mnemo_tx_set64(slot, b);
	return 1;
}

/* Begin, or die. */
static void tx_begin(void)
{
	int rc = mnemo_tx_begin();
	if (rc)
		bench_die(&O, "mnemo_tx_begin: %s", mnemo_errormsg());
}

/* Commit; returns 0, or -EAGAIN (conflict: run it again), or dies. */
static int tx_commit(void)
{
	int rc = mnemo_tx_commit();
	if (rc && rc != -EAGAIN)
		bench_die(&O, "mnemo_tx_commit: %s (%s)", strerror(-rc),
			  mnemo_errormsg());
	return rc;
}

int main(int argc, char **argv)
{
	bench_parse(argc, argv, &O,
		    "  (MNEMO_DURABILITY defaults to pmem; --fence-ns uses "
		    "mnemo_emul_set)\n");
	bench_one_thread(&O);
	setenv("MNEMO_DURABILITY", "pmem", 0);

	struct txh_table t;
	uint64_t area_size = txh_area_size(&O);
	char name[64];
	snprintf(name, sizeof(name), "txhash-mnemo-%ld.pool", (long)getpid());
	char path[4096];
	snprintf(path, sizeof(path), "%s", bench_path(&O, name));
	/* The region, plus room for the transaction logs and metadata. */
	size_t poolsize = area_size + area_size / 8 + ((size_t)64 << 20);
	poolsize = (poolsize + ((1u << 20) - 1)) & ~(size_t)((1u << 20) - 1);
	mnemo_pool *pool;
	int rc = mnemo_pool_create(path, poolsize, NULL, MNEMO_BACKEND_FILE,
				   &pool);
	if (rc)
		bench_die(&O, "mnemo_pool_create %s: %s", path,
			  mnemo_errormsg());
	void *area;
	rc = mnemo_region_create(pool, "hash", area_size, &area);
	if (rc)
		bench_die(&O, "mnemo_region_create: %s", mnemo_errormsg());
	txh_table_init(&t, &O, area);
	bench_prefault(t.area, t.size);
	printf("INFO backend=%s flush_instruction=%s\n",
	       mnemo_pool_backend(pool), mnemo_flush_instruction());
	if (strcmp(mnemo_pool_backend(pool), "file(pmem)") != 0)
		fprintf(stderr, "mnemo: warning: backend %s, not file(pmem): "
			"no CPU flushes (MNEMO_DURABILITY=%s)\n",
			mnemo_pool_backend(pool), getenv("MNEMO_DURABILITY"));

	/* Header, then the preload: --batch keys per transaction. */
	do {
		tx_begin();
		mnemo_tx_set64(&t.hdr->magic, TXH_MAGIC);
		mnemo_tx_set64(&t.hdr->vsize, t.vsize);
		mnemo_tx_set64(&t.hdr->stride, t.stride);
		mnemo_tx_set64(&t.hdr->nbuckets, TXH_NBUCKETS);
		mnemo_tx_set64(&t.hdr->bump,
			       TXH_FIRST_NODE);
	} while (tx_commit() == -EAGAIN);
	unsigned char *val = malloc(O.vsize);
	if (!val)
		bench_die(&O, "out of memory");
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < O.preload;) {
		uint64_t j;
		do {
			tx_begin();
			for (j = 0; j < O.batch && i + j < O.preload; j++) {
				uint64_t key = bench_key(i + j);
				bench_fill_value(val, O.vsize, key, 0);
				upsert_in_tx(&t, key, val);
			}
		} while (tx_commit() == -EAGAIN);
		i += j;
	}
	uint64_t tpre = bench_now_ns() - t0;
	if (!O.quiet)
		printf("mnemo: pool %s (%zu MiB, backend %s), %llu keys "
		       "preloaded in %.2f s (%llu per transaction)\n",
		       path, poolsize >> 20, mnemo_pool_backend(pool),
		       (unsigned long long)O.preload, (double)tpre / 1e9,
		       (unsigned long long)O.batch);

	/* The timed loop: one transaction per upsert. */
	struct bench_seq q;
	bench_seq_init(&q, &O);
	uint64_t inserts = 0;
	mnemo_emul_set(0, O.fence_ns);
	mnemo_stat_reset();
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < O.ops; i++) {
		uint64_t key = bench_key(bench_seq_next(&q));
		bench_fill_value(val, O.vsize, key, i + 1);
		int ins;
		do {
			tx_begin();
			ins = upsert_in_tx(&t, key, val);
		} while (tx_commit() == -EAGAIN);
		inserts += (uint64_t)ins;
	}
	uint64_t ns = bench_now_ns() - t0;
	double lines = (double)mnemo_stat_get(MNEMO_STAT_FLUSHED_LINES);
	double fences = (double)mnemo_stat_get(MNEMO_STAT_FENCES);
	uint64_t commits = mnemo_stat_get(MNEMO_STAT_TX_COMMITS);
	uint64_t aborts = mnemo_stat_get(MNEMO_STAT_TX_ABORTS);
	mnemo_emul_set(0, 0);
	if (commits != O.ops || aborts)
		fprintf(stderr, "mnemo: %llu commits, %llu aborts for %llu "
			"upserts\n", (unsigned long long)commits,
			(unsigned long long)aborts,
			(unsigned long long)O.ops);

	rc = mnemo_tx_drain(pool);
	if (rc)
		bench_die(&O, "mnemo_tx_drain: %s", mnemo_errormsg());
	/* Check (outside any transaction, single thread): every key of the
	 * key space is there iff it was loaded or upserted, with a
	 * well-formed value. */
	txh_verify(&O, &t, inserts);

	bench_result(&O, "mnemo", O.ops, ns, lines, fences, (int64_t)inserts);
	free(val);
	rc = mnemo_pool_close(&pool);
	if (rc)
		bench_die(&O, "mnemo_pool_close: %s", mnemo_errormsg());
	if (!O.keep && mnemo_pool_delete(path))
		bench_die(&O, "mnemo_pool_delete: %s", mnemo_errormsg());
	return 0;
}
