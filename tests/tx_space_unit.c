/*
 * tx_space_unit.c -- room for transactions: a record up to the documented
 * limit ((log size - 128) / 8 - 4 words, mnemo_tx_begin(3)) commits
 * wherever the log's ring happens to be, one word more fails with a
 * message that names the log, its size, the limit and MNEMO_TX_LOG_SIZE,
 * and a heap that once filled the pool leaves room for a thread's log.
 * A commit that has to bring the ring back to its start is crashed at
 * every persist point.
 *
 * Records are sized exactly: a transaction that stores one run of 8 * k
 * bytes at an aligned address has a record of k + 2 words (wv, the run's
 * header, k words of bytes).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define LIMIT_8K 1004 /* (8192 - 128) / 8 - 4 */

static uint8_t pat(int tag, size_t b)
{
	return (uint8_t)(tag * 29 + b * 7 + (b >> 8));
}

static void fill(uint8_t *buf, size_t n, int tag)
{
	for (size_t b = 0; b < n; b++)
		buf[b] = pat(tag, b);
}

static bool holds(const uint8_t *r, size_t n, int tag)
{
	for (size_t b = 0; b < n; b++)
		if (r[b] != pat(tag, b))
			return false;
	return true;
}

/* One transaction storing n bytes of pattern `tag` at r: 0 or its code.
 * The source buffer is the calling thread's own (threads call this). */
static int put_bytes(uint8_t *r, size_t n, int tag)
{
	uint8_t *buf = malloc(n);
	cr_assert_not_null(buf);
	fill(buf, n, tag);
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(r, buf, n), 0, "%s", mnemo_errormsg());
	int rc = mnemo_tx_commit();
	free(buf);
	return rc;
}

/* A transaction whose record is exactly `words` words (>= 3). */
static int put_record(uint8_t *r, size_t words, int tag)
{
	return put_bytes(r, 8 * (words - 2), tag);
}

static const char *pool_with_data(const char *tag, size_t pool_size,
				  size_t data_size)
{
	return t_pool_with_region(tag, pool_size, "data", data_size);
}

/* The same, at a size it keeps: a pool that can grow (format 5) is
 * limited to its size by MNEMO_POOL_MAX, which older pools ignore. */
static const char *fixed_pool(const char *tag, size_t pool_size,
			      size_t data_size)
{
	char v[32];
	snprintf(v, sizeof(v), "%zu", pool_size);
	setenv("MNEMO_POOL_MAX", v, 1);
	return pool_with_data(tag, pool_size, data_size);
}

static uint8_t *data(mnemo_pool *p)
{
	return t_region(p, "data");
}

/* ---- 1. the ring position does not limit a record ---- */

Test(tx_space, a_record_under_the_limit_commits_at_any_ring_position)
{
	setenv("MNEMO_TX_LOG_SIZE", "8K", 1);
	const char *path = pool_with_data("pos", 4 * MiB, 64 * KiB);
	mnemo_pool *pool = t_open(path, 0);
	uint8_t *r = data(pool);
	cr_assert_eq(put_bytes(r, 4000, 1), 0, "%s", mnemo_errormsg());
	int rc = put_bytes(r, 4800, 2);
	cr_assert_eq(rc, 0, "4,800 bytes after 4,000: %d %s", rc,
		     mnemo_errormsg());
	cr_assert_eq(mnemo_tx_drain(pool), 0);
	cr_assert_eq(put_bytes(r, 4000, 3), 0, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_tx_drain(pool), 0);
	rc = put_bytes(r, 4800, 4);
	cr_assert_eq(rc, 0, "after a drain: %s", mnemo_errormsg());
	cr_assert_eq(put_bytes(r, 4000, 5), 0, "%s", mnemo_errormsg());
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	r = data(pool);
	cr_assert(holds(r, 4000, 5));
	for (size_t b = 4000; b < 4800; b++)
		cr_assert_eq(r[b], pat(4, b));
	rc = put_bytes(r, 4800, 6);
	cr_assert_eq(rc, 0, "after reopening: %s", mnemo_errormsg());
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	cr_assert(holds(data(pool), 4800, 6));
	mnemo_pool_close(&pool);
}

Test(tx_space, default_log_takes_600k_after_500k)
{
	unsetenv("MNEMO_TX_LOG_SIZE"); /* 1 MiB logs in a 16 MiB pool */
	const char *path = pool_with_data("def", 16 * MiB, MiB);
	mnemo_pool *pool = t_open(path, 0);
	uint8_t *r = data(pool);
	cr_assert_eq(put_bytes(r, 500 * KiB, 1), 0, "%s", mnemo_errormsg());
	for (int i = 2; i < 5; i++) {
		int rc = put_bytes(r, 600 * KiB, i);
		cr_assert_eq(rc, 0, "600 KiB after 500 KiB (%d): %s", i,
			     mnemo_errormsg());
	}
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	cr_assert(holds(data(pool), 600 * KiB, 4));
	mnemo_pool_close(&pool);
}

/* ---- 2. the documented maximum, everywhere; one word more fails ---- */

/* Small records of many sizes between maximal ones move the ring's tail
 * through every region of the ring. */
static void max_everywhere(uint8_t *r, size_t limit, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		size_t small = 3 + (size_t)(i * 37) % (limit - 3);
		cr_assert_eq(put_record(r + 64 * KiB, small, i), 0, "%s",
			     mnemo_errormsg());
		int rc = put_record(r, limit, i);
		cr_assert_eq(rc, 0, "round %d: a record of %zu words after "
			     "one of %zu: %s", i, limit, small,
			     mnemo_errormsg());
		cr_assert(holds(r, 8 * (limit - 2), i));
	}
}

/* The message of a record one word over `limit` for a log of `bytes`. */
static void assert_over_limit(uint8_t *r, size_t limit, size_t bytes)
{
	cr_assert_eq(put_record(r, limit + 1, 99), -ENOSPC);
	const char *m = mnemo_errormsg();
	char want[160];
	snprintf(want, sizeof(want), "%zu words", limit + 1);
	cr_assert(strstr(m, want), "needs \"%s\": %s", want, m);
	snprintf(want, sizeof(want), "at most %zu words", limit);
	cr_assert(strstr(m, want), "needs \"%s\": %s", want, m);
	snprintf(want, sizeof(want), "%zu bytes", bytes);
	cr_assert(strstr(m, want), "needs \"%s\": %s", want, m);
	cr_assert(strstr(m, "transaction log of pool"), "%s", m);
	cr_assert(strstr(m, "MNEMO_TX_LOG_SIZE"), "%s", m);
	cr_assert_null(strstr(m, "stays full"), "%s", m);
}

Test(tx_space, the_documented_maximum_commits_at_every_ring_position)
{
	setenv("MNEMO_TX_LOG_SIZE", "8K", 1);
	const char *path = pool_with_data("max", 4 * MiB, 128 * KiB);
	mnemo_pool *pool = t_open(path, 0);
	uint8_t *r = data(pool);
	max_everywhere(r, LIMIT_8K, 300);
	uint8_t before = r[0];
	assert_over_limit(r, LIMIT_8K, 8192);
	cr_assert_eq(r[0], before);
	max_everywhere(r, LIMIT_8K, 20);
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	cr_assert(holds(data(pool), 8 * (LIMIT_8K - 2), 19));
	max_everywhere(data(pool), LIMIT_8K, 20);
	mnemo_pool_close(&pool);
}

/* One thread, a fresh log: the message of a record one word too large
 * (the limit, the log and its size, the knob). */
Test(tx_space, one_word_over_the_limit_names_the_limit)
{
	setenv("MNEMO_TX_LOG_SIZE", "8K", 1);
	mnemo_pool *pool = t_open(pool_with_data("over", 4 * MiB, 64 * KiB),
				  0);
	uint8_t *r = data(pool);
	assert_over_limit(r, LIMIT_8K, 8192);
	cr_assert_eq(r[0], 0, "nothing written");
	cr_assert_eq(put_record(r, LIMIT_8K, 1), 0, "%s", mnemo_errormsg());
	mnemo_pool_close(&pool);
}

/* The log's region is rounded up to whole pages; the limit follows the
 * log's real size, which the message names. */
Test(tx_space, the_limit_follows_the_rounded_log_size)
{
	setenv("MNEMO_TX_LOG_SIZE", "10000", 1); /* a log of 12288 bytes */
	const size_t limit = (12288 - 128) / 8 - 4;
	mnemo_pool *pool = t_open(pool_with_data("round", 4 * MiB, 128 * KiB),
				  0);
	uint8_t *r = data(pool);
	max_everywhere(r, limit, 60);
	assert_over_limit(r, limit, 12288);
	max_everywhere(r, limit, 10);
	mnemo_pool_close(&pool);
}

/* ---- messages ---- */

/* The largest region that can still be created in pool (0 if none). */
static size_t largest_free(mnemo_pool *pool)
{
	size_t lo = 0, hi = mnemo_pool_size(pool) / 4096 + 1; /* pages */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		void *a;
		if (mnemo_region_create(pool, NULL, mid * 4096, &a) == 0) {
			cr_assert_eq(mnemo_region_delete(pool, a), 0);
			lo = mid;
		} else {
			hi = mid;
		}
	}
	return lo * 4096;
}

/* A pool with room for the transaction metadata but not for a log: the
 * message names the thread's log, its size and MNEMO_TX_LOG_SIZE. */
Test(tx_space, no_room_for_a_log_names_the_log_and_its_size)
{
	setenv("MNEMO_TX_LOG_SIZE", "64K", 1);
	mnemo_pool *pool = t_open(fixed_pool("nolog", 2 * MiB, 4096), 0);
	void *a;
	size_t room = largest_free(pool);
	cr_assert_gt(room, 64 * KiB);
	cr_assert_eq(mnemo_region_create(pool, "fill", room - 32 * KiB, &a),
		     0, "%s", mnemo_errormsg());
	int rc = put_bytes(data(pool), 64, 1);
	/* ENOMEM: a pool that could grow but is at its limit */
	cr_assert(rc == -ENOSPC || rc == -ENOMEM, "%d", rc);
	const char *m = mnemo_errormsg();
	cr_assert(strstr(m, "transaction log"), "%s", m);
	cr_assert(strstr(m, "65536 bytes"), "%s", m);
	cr_assert(strstr(m, "MNEMO_TX_LOG_SIZE"), "%s", m);
	cr_assert_null(strstr(m, "stays full"), "%s", m);
	/* room again: the same thread gets its log */
	cr_assert_eq(mnemo_region_delete(pool, a), 0);
	cr_assert_eq(put_bytes(data(pool), 64, 2), 0, "%s", mnemo_errormsg());
	mnemo_pool_close(&pool);
}

/* ---- 3. a heap that filled the pool once ---- */

#define BLOCKS 16384

/* Fill the heap with 1,000-byte blocks until ENOMEM, free them all. */
static size_t fill_and_empty_heap(mnemo_pool *pool)
{
	static void *b[BLOCKS];
	size_t n = 0;
	while (n < BLOCKS && (b[n] = mnemo_heap_alloc(pool, 1000, 0, 0)))
		n++;
	cr_assert_lt(n, BLOCKS, "the heap never filled");
	cr_assert_gt(n, 1000, "only %zu blocks: %s", n, mnemo_errormsg());
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(mnemo_heap_free(b[i], 0), 0);
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(pool, &st, sizeof(st)), 0);
	cr_assert_eq(st.live_blocks, 0);
	return n;
}

/* A commit, and an allocation and a free that publish through a
 * transaction, all work. */
static void transactions_work(mnemo_pool *pool, int tag)
{
	uint64_t *d = (uint64_t *)data(pool);
	int rc = put_bytes((uint8_t *)&d[8], 64, tag);
	cr_assert_eq(rc, 0, "commit: %s", mnemo_errormsg());
	rc = mnemo_heap_alloc_to((void **)&d[0], 1000, MNEMO_HEAP_ZERO);
	cr_assert_eq(rc, 0, "mnemo_heap_alloc_to: %s", mnemo_errormsg());
	cr_assert_not_null((void *)d[0]);
	rc = mnemo_heap_free_from((void **)&d[0]);
	cr_assert_eq(rc, 0, "mnemo_heap_free_from: %s", mnemo_errormsg());
	cr_assert_eq(d[0], 0);
}

Test(tx_space, an_emptied_full_heap_leaves_room_for_the_log)
{
	unsetenv("MNEMO_TX_LOG_SIZE"); /* 512 KiB logs in an 8 MiB pool */
	const char *path = fixed_pool("heap", 8 * MiB, 4096);
	mnemo_pool *pool = t_open(path, 0);
	size_t n = fill_and_empty_heap(pool);
	cr_log_info("%zu blocks of 1,000 bytes in an 8 MiB pool", n);
	transactions_work(pool, 1);
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	transactions_work(pool, 2);
	/* the same room again, but for the block just freed by a
	 * transaction, which waits for the next truncation pass */
	size_t again = fill_and_empty_heap(pool);
	cr_assert(again + 1 >= n && again <= n, "%zu blocks, then %zu", n,
		  again);
	transactions_work(pool, 3);
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	cr_assert(holds(data(pool) + 64, 64, 3));
	mnemo_pool_close(&pool);
}

/* The heap's first use in a pool where transactions already committed
 * (so the log exists): it may take everything else. */
Test(tx_space, a_heap_after_transactions_keeps_the_log)
{
	unsetenv("MNEMO_TX_LOG_SIZE");
	mnemo_pool *pool = t_open(fixed_pool("heap2", 8 * MiB, 4096), 0);
	transactions_work(pool, 1);
	fill_and_empty_heap(pool);
	transactions_work(pool, 2);
	mnemo_pool_close(&pool);
}

/* ---- threads: each commits maximal records into its own log ---- */

#define THREADS 4
#define ROUNDS 150
#define SLICE (16 * KiB)

static uint8_t *g_r;

static void *maximal(void *arg)
{
	int me = (int)(intptr_t)arg;
	uint8_t *r = g_r + (size_t)me * SLICE;
	for (int i = 0; i < ROUNDS; i++) {
		size_t words = i % 2 ? LIMIT_8K : 3 + (size_t)(i * 53 + me) % 900;
		int rc;
		while ((rc = put_record(r, words, me * 1000 + i)) == -EAGAIN)
			;
		if (rc) {
			fprintf(stderr, "thread %d round %d: %s\n", me, i,
				mnemo_errormsg());
			return (void *)1;
		}
	}
	return NULL;
}

Test(tx_space, threads_commit_maximal_records_concurrently)
{
	setenv("MNEMO_TX_LOG_SIZE", "8K", 1);
	const char *path = pool_with_data("thr", 4 * MiB, THREADS * SLICE);
	mnemo_pool *pool = t_open(path, 0);
	g_r = data(pool);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, maximal, (void *)(intptr_t)i);
	void *res[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], &res[i]);
	for (int i = 0; i < THREADS; i++)
		cr_assert_null(res[i], "thread %d failed", i);
	for (int i = 0; i < THREADS; i++)
		cr_assert(holds(g_r + (size_t)i * SLICE, 8 * (LIMIT_8K - 2),
				i * 1000 + ROUNDS - 1), "thread %d", i);
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	for (int i = 0; i < THREADS; i++)
		cr_assert(holds(data(pool) + (size_t)i * SLICE,
				8 * (LIMIT_8K - 2), i * 1000 + ROUNDS - 1),
			  "thread %d, after reopening", i);
	mnemo_pool_close(&pool);
}

/* ---- crash: commits that must bring the ring back to its start ---- */

/* Record sizes (words): after the first, each needs the ring's start
 * (the tail is past both max(tail, capacity - tail)). */
static const size_t crash_words[] = {502, 602, LIMIT_8K, 300, LIMIT_8K, 602};
#define CRASH_OPS (int)(sizeof(crash_words) / sizeof(crash_words[0]))

/* Runs the ops; 0, or the failing commit's code. */
static int crash_ops(mnemo_pool *p, struct t_progress *pr)
{
	uint8_t *r = data(p);
	for (int i = 0; i < CRASH_OPS; i++) {
		T_BEGIN(pr);
		int rc = put_record(r, crash_words[i], i + 1);
		if (rc)
			return rc;
		T_END(pr);
	}
	return 0;
}

static void crash_work(mnemo_pool *p, struct t_progress *pr)
{
	if (crash_ops(p, pr)) { /* the harness reports the exit code */
		fprintf(stderr, "crash workload: %s\n", mnemo_errormsg());
		_exit(3);
	}
}

/* The region after k ops: each byte from the last op that wrote it. */
static bool crash_check(mnemo_pool *p, int k)
{
	const uint8_t *r = data(p);
	for (size_t b = 0; b < 8 * (LIMIT_8K - 2); b++) {
		uint8_t want = 0;
		for (int i = 0; i < k; i++)
			if (b < 8 * (crash_words[i] - 2))
				want = pat(i + 1, b);
		if (r[b] != want)
			return false;
	}
	return true;
}

Test(tx_space, crash_in_a_commit_that_rewinds_the_ring, .timeout = 600)
{
	setenv("MNEMO_TX_LOG_SIZE", "8K", 1);
	const char *base = pool_with_data("crash", 4 * MiB, 16 * KiB);
	/* Without a crash first (a failing commit would make every run of
	 * the harness end in a crash point of its retries). */
	char copy[300];
	snprintf(copy, sizeof(copy), "%s.nocrash", base);
	t_copy(base, copy);
	mnemo_pool *p = t_open(copy, 0);
	struct t_progress pr = {0, 0};
	cr_assert_eq(crash_ops(p, &pr), 0, "%s", mnemo_errormsg());
	cr_assert(crash_check(p, CRASH_OPS));
	mnemo_pool_close(&p);
	unlink(copy);
	t_crash_modes(base, crash_work, crash_check, 2);
}
