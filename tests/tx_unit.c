/*
 * tx_unit.c -- durable transactions through the C API: semantics (read own
 * writes, flattening, abort, volatile memory, errors), isolation under
 * concurrency, durability across close/open, and flush/fence costs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static const char *g_path; /* of the last fresh() pool */

static mnemo_pool *fresh(const char *tag, void **reg, size_t size)
{
	const char *path = g_path = t_path(tag);
	t_create(path, 16 << 20);
	mnemo_pool *pool = t_open(path, 0);
	cr_assert_eq(mnemo_region_create(pool, "data", size, reg), 0, "%s",
		     mnemo_errormsg());
	return pool;
}

Test(tx, reads_see_own_writes_and_commit_applies)
{
	uint64_t *a;
	mnemo_pool *pool = fresh("own", (void **)&a, 4096);
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&a[0], 42);
	mnemo_tx_set8((uint8_t *)&a[1] + 3, 7);
	cr_assert_eq(mnemo_tx_get64(&a[0]), 42);
	cr_assert_eq(mnemo_tx_get8((uint8_t *)&a[1] + 3), 7);
	cr_assert_eq(a[0], 0, "write-back happens at commit");
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(a[0], 42);
	cr_assert_eq(a[1], 7ull << 24);
	mnemo_pool_close(&pool);
}

Test(tx, ranges_unaligned_and_overlapping)
{
	char *r;
	mnemo_pool *pool = fresh("range", (void **)&r, 8192);
	char src[3000], back[3000];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (char)(i * 7 + 1);
	int rc = -1;
	MNEMO_TX(rc) {
		mnemo_tx_store(r + 5, src, sizeof(src));
		mnemo_tx_load(back, r + 5, sizeof(back));
		cr_assert_eq(memcmp(back, src, sizeof(src)), 0);
		/* overlapping move inside the transaction's own writes */
		mnemo_tx_store(r + 1, r + 5, 100);
		mnemo_tx_memset(r + 4000, 0xab, 33);
	}
	cr_assert_eq(rc, 0, "%s", mnemo_errormsg());
	cr_assert_eq(memcmp(r + 1, src, 100), 0);
	cr_assert_eq(memcmp(r + 105, src + 100, sizeof(src) - 100), 0);
	for (int i = 0; i < 33; i++)
		cr_assert_eq((unsigned char)r[4000 + i], 0xab);
	cr_assert_eq(r[4033], 0);
	mnemo_pool_close(&pool);
}

/* Random ranges (partial and whole chunks, runs that start mid-word and
 * continue over whole chunks) against a plain buffer as the model: reads
 * inside the transaction see its writes, aborted transactions leave
 * nothing, and the region matches after every commit and a reopen. */
Test(tx, random_ranges_match_a_model)
{
	enum { SIZE = 8192 };
	unsigned char *r;
	mnemo_pool *pool = fresh("model", (void **)&r, SIZE);
	static unsigned char model[SIZE], next[SIZE], buf[SIZE];
	memset(model, 0, SIZE);
	uint64_t s = 42;
#define RND() (s ^= s << 13, s ^= s >> 7, s ^= s << 17, s)
	for (int t = 0; t < 2000; t++) {
		memcpy(next, model, SIZE);
		cr_assert_eq(mnemo_tx_begin(), 0);
		for (int k = 0, n = 1 + (int)(RND() % 4); k < n; k++) {
			size_t len = 1 + RND() % 600, off = RND() % (SIZE - len);
			for (size_t i = 0; i < len; i++)
				buf[i] = (unsigned char)RND();
			cr_assert_eq(mnemo_tx_store(r + off, buf, len), 0);
			memcpy(next + off, buf, len);
			size_t rl = 1 + RND() % 700, ro = RND() % (SIZE - rl);
			cr_assert_eq(mnemo_tx_load(buf, r + ro, rl), 0);
			cr_assert_eq(memcmp(buf, next + ro, rl), 0,
				     "tx %d: a read of its own writes", t);
		}
		if (RND() % 5 == 0) {
			mnemo_tx_abort();
		} else {
			cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
			memcpy(model, next, SIZE);
		}
		cr_assert_eq(memcmp(r, model, SIZE), 0, "after tx %d", t);
	}
#undef RND
	mnemo_pool_close(&pool);
	pool = t_open(g_path, 0);
	cr_assert_eq(mnemo_region_find(pool, "data", (void **)&r, NULL), 0);
	cr_assert_eq(memcmp(r, model, SIZE), 0, "after reopening");
	mnemo_pool_close(&pool);
}

Test(tx, abort_rolls_back_everything)
{
	uint64_t *a;
	mnemo_pool *pool = fresh("abort", (void **)&a, 4096);
	static uint64_t vol = 5;
	int rc = 1;
	volatile int runs = 0;
	MNEMO_TX(rc) {
		runs++;
		mnemo_tx_set64(&a[0], 1);
		mnemo_tx_set64(&vol, 6);
		void *m = mnemo_tx_malloc(100);
		cr_assert_not_null(m);
		mnemo_tx_abort();
		cr_assert_fail("abort returned");
	}
	cr_assert_eq(rc, -ECANCELED);
	cr_assert_eq(runs, 1);
	cr_assert_eq(a[0], 0);
	cr_assert_eq(vol, 5);
	cr_assert_eq(mnemo_tx_depth(), 0);
	/* plain mode */
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&a[0], 9);
	mnemo_tx_abort();
	cr_assert_eq(mnemo_tx_depth(), 0);
	cr_assert_eq(a[0], 0);
	cr_assert_eq(mnemo_tx_commit(), -EINVAL, "no transaction after abort");
	mnemo_pool_close(&pool);
}

Test(tx, nested_transactions_flatten)
{
	uint64_t *a;
	mnemo_pool *pool = fresh("nest", (void **)&a, 4096);
	int rc = 1, inner = 1;
	MNEMO_TX(rc) {
		mnemo_tx_set64(&a[0], 1);
		MNEMO_TX(inner) {
			mnemo_tx_set64(&a[1], 2);
		}
		cr_assert_eq(inner, 0);
		cr_assert_eq(a[1], 0, "inner commit is not visible yet");
		cr_assert_eq(mnemo_tx_depth(), 1);
	}
	cr_assert_eq(rc, 0);
	cr_assert_eq(a[0], 1);
	cr_assert_eq(a[1], 2);
	/* an inner abort aborts the outer transaction */
	rc = 1;
	MNEMO_TX(rc) {
		mnemo_tx_set64(&a[0], 10);
		MNEMO_TX(inner) {
			mnemo_tx_abort();
		}
	}
	cr_assert_eq(rc, -ECANCELED);
	cr_assert_eq(a[0], 1);
	mnemo_pool_close(&pool);
}

Test(tx, misuse_is_reported)
{
	uint64_t x = 3;
	cr_assert_eq(mnemo_tx_commit(), -EINVAL);
	cr_assert_eq(mnemo_tx_store(&x, &x, 8), -EINVAL);
	cr_assert_eq(mnemo_tx_get64(&x), 3, "loads outside are plain reads");
	mnemo_tx_abort(); /* harmless */
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(NULL, &x, 8), -EINVAL);
	cr_assert_eq(mnemo_tx_commit(), 0);
}

Test(tx, writes_to_two_pools_fail_with_exdev)
{
	uint64_t *a, *b;
	mnemo_pool *p1 = fresh("two1", (void **)&a, 4096);
	mnemo_pool *p2 = fresh("two2", (void **)&b, 4096);
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(a, "x", 1), 0);
	cr_assert_eq(mnemo_tx_store(b, "y", 1), -EXDEV);
	cr_assert(strstr(mnemo_errormsg(), "one pool"));
	cr_assert_eq(mnemo_tx_status(), -EXDEV);
	/* a failed transaction has no effects left: nothing nests, nothing
	 * is allocated */
	cr_assert_eq(mnemo_tx_begin(), -EXDEV);
	cr_assert_eq(mnemo_tx_depth(), 1);
	int inner = 1;
	MNEMO_TX(inner) {
		cr_assert_fail("body of a failed transaction ran");
	}
	cr_assert_eq(inner, -EXDEV);
	cr_assert_eq(mnemo_tx_depth(), 1);
	cr_assert_null(mnemo_tx_malloc(10));
	cr_assert_eq(mnemo_tx_commit(), -EXDEV);
	cr_assert_eq(mnemo_tx_depth(), 0);
	cr_assert_eq(*(char *)a, 0);
	mnemo_pool_close(&p1);
	mnemo_pool_close(&p2);
}

Test(tx, metadata_and_reserved_names_are_protected)
{
	void *r;
	mnemo_pool *pool = fresh("meta", &r, 4096);
	cr_assert_eq(mnemo_region_create(pool, "mnemo.x", 4096, &r), -EINVAL);
	mnemo_rawl *l;
	cr_assert_eq(mnemo_rawl_open(pool, "mnemo.tx.0", 64, &l), -EINVAL);
	char *base = mnemo_pool_base(pool);
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64((uint64_t *)(base + 4096), 1); /* the region table */
	cr_assert_eq(mnemo_tx_commit(), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "metadata"));
	mnemo_pool_close(&pool);
}

Test(tx, committed_data_survives_close_and_costs_one_fence)
{
	const char *path = t_path("dur");
	setenv("MNEMO_TX_LOG_SIZE", "64K", 1); /* truncation passes happen */
	t_create(path, 16 << 20);
	mnemo_pool *pool = t_open(path, 0);
	uint64_t *a;
	cr_assert_eq(mnemo_region_create(pool, "d", 4096, (void **)&a), 0);
	cr_assert_eq(mnemo_tx_begin(), 0); /* first tx creates the log */
	mnemo_tx_set64(&a[0], 1);
	cr_assert_eq(mnemo_tx_commit(), 0);
	mnemo_stat_reset();
	for (int i = 0; i < 20000; i++) {
		cr_assert_eq(mnemo_tx_begin(), 0);
		mnemo_tx_set64(&a[i % 8], mnemo_tx_get64(&a[i % 8]) + 1);
		cr_assert_eq(mnemo_tx_commit(), 0);
	}
	double fences = mnemo_stat_get(MNEMO_STAT_FENCES) / 20000.0;
	cr_log_info("fences/tx %.4f lines/tx %.3f", fences,
		    mnemo_stat_get(MNEMO_STAT_FLUSHED_LINES) / 20000.0);
	cr_assert_gt(fences, 1.0, "truncation passes ran");
	cr_assert_leq(fences, 1.1, "%.3f fences per small transaction", fences);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_COMMITS), 20000);
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	cr_assert_eq(mnemo_region_find(pool, "d", (void **)&a, NULL), 0);
	cr_assert_eq(a[0], 1 + 2500);
	cr_assert_eq(a[7], 2500);
	mnemo_pool_close(&pool);
}

/* A transaction after its pool was closed and opened again writes to the
 * new pool object: the descriptor's cached window lookup (classify's
 * hint) does not outlive the registry state it came from.  Another pool
 * opened in between usually takes the closed pool's memory, so a stale
 * hint would name it (and the commit fail), or under ASan be a use after
 * free. */
Test(tx, a_reopened_pool_is_found_again)
{
	const char *p1 = t_path("reopen1"), *p2 = t_path("reopen2");
	t_create(p1, 16 << 20);
	t_create(p2, 16 << 20);
	mnemo_pool *a = t_open(p1, 0), *b = NULL;
	uint64_t *x;
	cr_assert_eq(mnemo_region_create(a, "d", 4096, (void **)&x), 0);
	for (uint64_t round = 1; round <= 3; round++) {
		cr_assert_eq(mnemo_tx_begin(), 0);
		mnemo_tx_set64(&x[0], round);
		cr_assert_eq(mnemo_tx_commit(), 0, "round %llu: %s",
			     (unsigned long long)round, mnemo_errormsg());
		mnemo_pool_close(&a);
		if (b)
			mnemo_pool_close(&b);
		b = t_open(p2, 0);
		a = t_open(p1, 0);
		cr_assert_eq(mnemo_region_find(a, "d", (void **)&x, NULL), 0);
		cr_assert_eq(x[0], round);
	}
	mnemo_pool_close(&a);
	mnemo_pool_close(&b);
}

/* The counters of locked instructions and shared-line writes count what
 * a commit does: one stripe lock, the publication of its wv (busy, on the
 * descriptor's own line) and the log's spin lock (its unlock is a plain
 * store) for a one-word transaction (no truncation pass in so few); two
 * lock lines for words in stripes eight apart.  Commits do not move the
 * clock, so it takes another locked instruction, and one more shared
 * line, only for a stripe whose version is the clock + 1 (written since
 * the clock last moved), in a read-only transaction too. */
Test(tx, atomic_and_shared_line_counters)
{
	uint64_t *a;
	mnemo_pool *pool = fresh("atomics", (void **)&a, 1 << 20);
	cr_assert_eq(mnemo_tx_begin(), 0); /* creates the log, sets the flag */
	mnemo_tx_set64(&a[0], 1);
	cr_assert_eq(mnemo_tx_commit(), 0);
	mnemo_stat_reset();
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_ATOMICS), 0);
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&a[8 * 32 * 2], 2); /* a stripe no commit wrote */
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_ATOMICS), 3);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_SHARED_LINES), 1);
	mnemo_stat_reset();
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&a[0], 3); /* written at the clock + 1 */
	mnemo_tx_set64(&a[8 * 32], 4); /* 8 stripes (of 256 B) on: the next
					* lock line */
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_ATOMICS), 5);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_SHARED_LINES), 3);
	mnemo_stat_reset();
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_get64(&a[8 * 32 * 2]), 2); /* below the clock */
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_ATOMICS), 0);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_SHARED_LINES), 0);
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_get64(&a[0]), 3); /* at the clock + 1 */
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_ATOMICS), 1);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_SHARED_LINES), 1);
	mnemo_stat_reset();
	/* Zero-length accesses lock, log and fence nothing. */
	uint64_t w = 7;
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(&a[2], &w, 0), 0);
	cr_assert_eq(mnemo_tx_load(&w, &a[2], 0), 0);
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(w, 7);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_ATOMICS), 0);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_FENCES), 0);
	mnemo_pool_close(&pool);
}

Test(tx, big_transaction_beyond_the_log_fails_cleanly)
{
	setenv("MNEMO_TX_LOG_SIZE", "16K", 1);
	char *r;
	mnemo_pool *pool = fresh("big", (void **)&r, 1 << 20);
	static char buf[64 << 10];
	memset(buf, 1, sizeof(buf));
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(r, buf, sizeof(buf)), 0);
	cr_assert_eq(mnemo_tx_commit(), -ENOSPC);
	cr_assert(strstr(mnemo_errormsg(), "MNEMO_TX_LOG_SIZE"));
	cr_assert_eq(r[0], 0);
	/* the pool stays usable */
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(r, buf, 4096), 0);
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(r[4095], 1);
	mnemo_pool_close(&pool);
}

/* ---- isolation ---- */

#define ACCOUNTS 64
#define THREADS 4
#define TRANSFERS 20000

static uint64_t *g_acct;

static int transfer1(int from, int to, uint64_t amt)
{
	int rc;
	MNEMO_TX(rc) {
		uint64_t f = mnemo_tx_get64(&g_acct[from]);
		if (f >= amt) {
			mnemo_tx_set64(&g_acct[from], f - amt);
			mnemo_tx_set64(&g_acct[to],
				       mnemo_tx_get64(&g_acct[to]) + amt);
		}
	}
	return rc;
}

static void *transfer(void *arg)
{
	uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	for (int i = 0; i < TRANSFERS; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		if (transfer1(s % ACCOUNTS, (s >> 20) % ACCOUNTS,
			      (s >> 40) % 10))
			return (void *)1;
	}
	return NULL;
}

/* Counter increments: lost updates would show as a short total. */
static void *increment(void *arg)
{
	(void)arg;
	for (int i = 0; i < TRANSFERS; i++) {
		mnemo_tx_begin();
		mnemo_tx_set64(&g_acct[ACCOUNTS],
			       mnemo_tx_get64(&g_acct[ACCOUNTS]) + 1);
		int rc = mnemo_tx_commit();
		if (rc == -EAGAIN)
			i--;
		else if (rc)
			return (void *)1;
	}
	return NULL;
}

static uint64_t total(void)
{
	uint64_t t = 0;
	for (int i = 0; i < ACCOUNTS; i++)
		t += g_acct[i];
	return t;
}

static void run_transfers(const char *tag)
{
	mnemo_pool *pool = fresh(tag, (void **)&g_acct, 4096);
	for (int i = 0; i < ACCOUNTS; i++) /* strict-clean: no plain store */
		cr_assert_eq(mnemo_store64(&g_acct[i], 1000), 0);
	pthread_t t[THREADS];
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, i % 2 ? increment : transfer,
			       (void *)i);
	for (int i = 0; i < THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_assert_null(r, "%s", mnemo_errormsg());
	}
	cr_assert_eq(total(), 1000 * ACCOUNTS);
	cr_assert_eq(g_acct[ACCOUNTS], (THREADS / 2) * TRANSFERS);
	mnemo_pool_close(&pool);
	pool = t_open(g_path, 0);
	cr_assert_eq(mnemo_region_find(pool, "data", (void **)&g_acct, NULL), 0);
	cr_assert_eq(total(), 1000 * ACCOUNTS, "after reopening");
	cr_assert_eq(g_acct[ACCOUNTS], (THREADS / 2) * TRANSFERS);
	mnemo_pool_close(&pool);
}

Test(tx, concurrent_transfers_keep_the_total)
{
	run_transfers("bank");
}

/* Logs of 16 KiB: truncation passes run all the time, each by one thread
 * over every thread's log while the others append to theirs. */
Test(tx, concurrent_transfers_under_constant_truncation)
{
	setenv("MNEMO_TX_LOG_SIZE", "16K", 1);
	run_transfers("bank16k");
}

/* ---- transactions in exit destructors ---- */

#define EXITERS 80 /* more threads than a pool has transaction logs (64) */
static pthread_key_t g_exit_key;
static uint64_t *g_exit;
static int g_exit_fails;

/* The test's own pthread-key destructor: a transaction while the thread
 * exits (after its C++ thread_local destructors have run). */
static void commit_at_exit(void *arg)
{
	uint64_t i = (uint64_t)(uintptr_t)arg;
	int rc = mnemo_tx_begin();
	if (rc == 0) {
		mnemo_tx_set64(&g_exit[i], i);
		rc = mnemo_tx_commit();
	}
	if (rc)
		__atomic_add_fetch(&g_exit_fails, 1, __ATOMIC_RELAXED);
}

static void *exiter(void *arg)
{
	pthread_setspecific(g_exit_key, arg);
	int rc = mnemo_tx_begin(); /* the descriptor exists before exit */
	if (rc == 0) {
		mnemo_tx_set64(&g_exit[0], 1);
		rc = mnemo_tx_commit();
	}
	return rc ? (void *)1 : NULL;
}

Test(tx, threads_commit_while_they_exit)
{
	mnemo_pool *pool = fresh("exit", (void **)&g_exit, 8 * (EXITERS + 1));
	cr_assert_eq(pthread_key_create(&g_exit_key, commit_at_exit), 0);
	for (uintptr_t i = 1; i <= EXITERS; i++) {
		pthread_t t;
		void *r;
		cr_assert_eq(pthread_create(&t, NULL, exiter, (void *)i), 0);
		pthread_join(t, &r);
		cr_assert_null(r, "thread %zu: %s", (size_t)i, mnemo_errormsg());
	}
	cr_assert_eq(g_exit_fails, 0, "%d commits in exit destructors failed "
		     "(a freed or leaked descriptor, or a log never released)",
		     g_exit_fails);
	for (uint64_t i = 1; i <= EXITERS; i++)
		cr_assert_eq(g_exit[i], i);
	mnemo_pool_close(&pool);
	pool = t_open(g_path, 0);
	cr_assert_eq(mnemo_region_find(pool, "data", (void **)&g_exit, NULL), 0);
	for (uint64_t i = 1; i <= EXITERS; i++)
		cr_assert_eq(g_exit[i], i, "after reopening");
	mnemo_pool_close(&pool);
}

Test(tx, punmap_drains_the_logs_first)
{
	const char *path = t_path("punmap");
	setenv("MNEMO_POOL", path, 1);
	pid_t pid = fork();
	if (pid == 0) { /* commit, unmap the region, die without closing */
		uint64_t *a = pmap(NULL, 4096, 3 /* PROT_READ|WRITE */, 0);
		if (!a || mnemo_tx_begin())
			_exit(1);
		mnemo_tx_set64(a, 7);
		if (mnemo_tx_commit() || punmap(a, 4096))
			_exit(2);
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* no log record names the deleted region: recovery succeeds */
	mnemo_pool *p = t_open(path, 0);
	mnemo_pool_close(&p);
}
