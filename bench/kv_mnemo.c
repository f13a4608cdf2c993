/*
 * kv_mnemo.c -- the natural-layout key-value benchmark (kv.h) on libmnemo:
 * the bucket array is a region, each entry a block of the pool's heap
 * (mnemo_heap_alloc inside the preload transactions), pointers are plain
 * addresses.  One overwrite: mnemo_tx_begin; the chain walked with
 * mnemo_tx_get64; the value written with one mnemo_tx_store; mnemo_tx_commit
 * (retried on -EAGAIN).  File backend on --dir with MNEMO_DURABILITY=pmem
 * (clwb/clflushopt + sfence); flushes and fences from mnemo_stat_get().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mnemosyne.h>

#include "kv.h"

static struct bench_opts O;
static uint64_t *g_buckets;

static void must(int rc, const char *what)
{
	if (rc)
		bench_die(&O, "%s: %s", what, mnemo_errormsg());
}

/* The entry of key, walked transactionally (NULL if absent or doomed). */
static struct kv_entry *find_tx(uint64_t key)
{
	uint64_t e = mnemo_tx_get64(&g_buckets[kv_bucket(key)]);
	while (e && mnemo_tx_get64(&((struct kv_entry *)e)->key) != key)
		e = mnemo_tx_get64(&((struct kv_entry *)e)->next);
	return (struct kv_entry *)e;
}

/* Insert keys [i, i + n) in one transaction; -EAGAIN to retry. */
static int insert_batch(mnemo_pool *pool, uint64_t i, uint64_t n,
			unsigned char *val)
{
	must(mnemo_tx_begin(), "mnemo_tx_begin");
	for (uint64_t k = i; k < i + n; k++) {
		uint64_t key = bench_key(k);
		struct kv_entry *e =
			mnemo_heap_alloc(pool, sizeof(*e) + O.vsize, 0, 0);
		if (!e) {
			if (mnemo_tx_status())
				break; /* doomed: commit says why */
			bench_die(&O, "mnemo_heap_alloc: %s", mnemo_errormsg());
		}
		uint64_t *head = &g_buckets[kv_bucket(key)];
		bench_fill_value(val, O.vsize, key, 0);
		mnemo_tx_set64(&e->key, key);
		mnemo_tx_set64(&e->next, mnemo_tx_get64(head));
		mnemo_tx_store(e->value, val, O.vsize);
		mnemo_tx_set64(head, (uint64_t)e);
	}
	int rc = mnemo_tx_commit();
	if (rc && rc != -EAGAIN)
		bench_die(&O, "preload commit: %s", mnemo_errormsg());
	return rc;
}

static void overwrite(uint64_t key, const unsigned char *val)
{
	int rc;
	do {
		must(mnemo_tx_begin(), "mnemo_tx_begin");
		struct kv_entry *e = find_tx(key);
		if (e)
			mnemo_tx_store(e->value, val, O.vsize);
		else if (!mnemo_tx_status())
			bench_die(&O, "key %llu missing",
				  (unsigned long long)key);
		rc = mnemo_tx_commit();
		if (rc && rc != -EAGAIN)
			bench_die(&O, "commit: %s", mnemo_errormsg());
	} while (rc);
}

static void reset_counts(void)
{
	mnemo_stat_reset();
}

/* Summed over the threads as each finishes its share. */
static uint64_t g_atomics, g_shared;

static void read_counts(uint64_t *lines, uint64_t *fences)
{
	*lines = mnemo_stat_get(MNEMO_STAT_FLUSHED_LINES);
	*fences = mnemo_stat_get(MNEMO_STAT_FENCES);
	__atomic_fetch_add(&g_atomics, mnemo_stat_get(MNEMO_STAT_TX_ATOMICS),
			   __ATOMIC_RELAXED);
	__atomic_fetch_add(&g_shared,
			   mnemo_stat_get(MNEMO_STAT_TX_SHARED_LINES),
			   __ATOMIC_RELAXED);
}

static const struct kv_system g_mnemo = {overwrite, reset_counts,
					 read_counts};

static void verify(void)
{
	for (uint64_t i = 0; i < O.preload; i++) {
		uint64_t key = bench_key(i);
		uint64_t e = g_buckets[kv_bucket(key)];
		while (e && ((struct kv_entry *)e)->key != key)
			e = ((struct kv_entry *)e)->next;
		if (!e || !bench_value_ok(((struct kv_entry *)e)->value,
					  O.vsize, key))
			bench_die(&O, "verify: key %llu missing or damaged",
				  (unsigned long long)i);
	}
}

int main(int argc, char **argv)
{
	kv_parse(argc, argv, &O, "  (MNEMO_DURABILITY defaults to pmem)\n");
	setenv("MNEMO_DURABILITY", "pmem", 0);
	char name[64];
	snprintf(name, sizeof(name), "kv-mnemo-%ld.pool", (long)getpid());
	char path[4096];
	snprintf(path, sizeof(path), "%s", bench_path(&O, name));
	size_t size = 2 * O.preload * (64 + O.vsize) + ((size_t)64 << 20);
	size = (size + ((1u << 20) - 1)) & ~(size_t)((1u << 20) - 1);
	mnemo_pool *pool;
	must(mnemo_pool_create(path, size, NULL, MNEMO_BACKEND_FILE, &pool),
	     "mnemo_pool_create");
	void *b;
	must(mnemo_region_create(pool, "buckets", 8 * KV_NBUCKETS, &b),
	     "mnemo_region_create");
	g_buckets = b;
	unsigned char *val = malloc(O.vsize);
	if (!val)
		bench_die(&O, "out of memory");
	for (uint64_t i = 0; i < O.preload;) {
		uint64_t n = O.batch < O.preload - i ? O.batch : O.preload - i;
		if (insert_batch(pool, i, n, val) == 0)
			i += n;
	}
	printf("INFO backend=%s flush_instruction=%s\n",
	       mnemo_pool_backend(pool), mnemo_flush_instruction());

	mnemo_emul_set(0, O.fence_ns);
	uint64_t ops;
	double lines, fences;
	uint64_t ns = kv_timed_loop(&O, &g_mnemo, &ops, &lines, &fences);
	mnemo_emul_set(0, 0);
	must(mnemo_tx_drain(pool), "mnemo_tx_drain");
	verify();
	bench_result(&O, "mnemo", ops, ns, lines, fences, 0);
	printf("COUNTS atomics_per_tx=%.2f shared_lines_per_tx=%.2f\n",
	       (double)g_atomics / (double)ops, (double)g_shared / (double)ops);
	free(val);
	must(mnemo_pool_close(&pool), "mnemo_pool_close");
	if (!O.keep)
		must(mnemo_pool_delete(path), "mnemo_pool_delete");
	return 0;
}
