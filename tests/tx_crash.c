/*
 * tx_crash.c -- durable transactions crashed at every persist point under
 * the sim backend (drop, word tearing and line tearing).  After each crash
 * recovery must show exactly the state after the transactions whose commit
 * returned, or after one more (the one under way): never a mix.  Small logs
 * (MNEMO_TX_LOG_SIZE) make truncation passes part of every workload.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SEEDS 2

static uint64_t *region(mnemo_pool *p)
{
	return t_region(p, "data");
}

static void run_modes(const char *base, t_workload w, t_check c)
{
	t_crash_modes(base, w, c, SEEDS);
}

static const char *pool_with_data(const char *tag, size_t size)
{
	setenv("MNEMO_TX_LOG_SIZE", "8K", 1);
	return t_pool_with_region(tag, 4 << 20, "data", size);
}

static uint64_t v(int i, int j)
{
	return 0x0100010001000100ull * (uint64_t)(i + 1) + (uint64_t)j;
}

/* ---- one word per transaction ---- */

#define WORD_OPS 40

static void word_work(mnemo_pool *p, struct t_progress *pr)
{
	uint64_t *d = region(p);
	for (int i = 0; i < WORD_OPS; i++) {
		T_BEGIN(pr);
		cr_assert_eq(mnemo_tx_begin(), 0);
		mnemo_tx_set64(&d[i % 3], v(i, 0));
		cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
		T_END(pr);
	}
}

static bool word_check(mnemo_pool *p, int k)
{
	uint64_t *d = region(p);
	for (int j = 0; j < 3; j++) {
		uint64_t want = 0;
		for (int i = 0; i < k; i++)
			if (i % 3 == j)
				want = v(i, 0);
		if (d[j] != want)
			return false;
	}
	return true;
}

Test(tx_crash, single_word, .timeout = 600)
{
	run_modes(pool_with_data("word", 4096), word_work, word_check);
}

/* ---- many words spread over lines and pages ---- */

#define MULTI_OPS 12
static const unsigned multi_at[] = {0, 1, 9, 64, 511, 512, 700, 1023};

static void multi_work(mnemo_pool *p, struct t_progress *pr)
{
	uint64_t *d = region(p);
	for (int i = 0; i < MULTI_OPS; i++) {
		T_BEGIN(pr);
		int rc;
		MNEMO_TX(rc) {
			for (unsigned j = 0; j < 8; j++)
				mnemo_tx_set64(&d[multi_at[j]], v(i, j));
		}
		cr_assert_eq(rc, 0, "%s", mnemo_errormsg());
		T_END(pr);
	}
}

static bool multi_check(mnemo_pool *p, int k)
{
	uint64_t *d = region(p);
	for (unsigned j = 0; j < 8; j++)
		if (d[multi_at[j]] != (k ? v(k - 1, j) : 0))
			return false;
	return true;
}

Test(tx_crash, multi_word, .timeout = 600)
{
	run_modes(pool_with_data("multi", 8192), multi_work, multi_check);
}

/* ---- byte ranges: unaligned, multi-line, sub-word ---- */

#define RANGE_OPS 8
#define RANGE_LEN 1000
/* Two places: one whose first piece is not whole words (the record's run
 * goes on mid-word), one whose first piece is (whole chunks then extend
 * the run word-aligned, the engine's fast path). */
static const size_t range_at[2] = {3, 2016};

static void fill(char *buf, int i)
{
	for (int b = 0; b < RANGE_LEN; b++)
		buf[b] = (char)(i * 31 + b);
}

static void range_work(mnemo_pool *p, struct t_progress *pr)
{
	char *d = (char *)region(p), buf[RANGE_LEN];
	for (int i = 0; i < RANGE_OPS; i++) {
		fill(buf, i + 1);
		T_BEGIN(pr);
		cr_assert_eq(mnemo_tx_begin(), 0);
		cr_assert_eq(mnemo_tx_store(d + range_at[i % 2], buf,
					    RANGE_LEN), 0);
		mnemo_tx_set8((uint8_t *)d + 4000, (uint8_t)(i + 1));
		cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
		T_END(pr);
	}
}

static bool range_check(mnemo_pool *p, int k)
{
	char *d = (char *)region(p), buf[RANGE_LEN], zero[RANGE_LEN] = {0};
	for (int half = 0; half < 2; half++) {
		int last = -1;
		for (int i = 0; i < k; i++)
			if (i % 2 == half)
				last = i;
		if (last >= 0)
			fill(buf, last + 1);
		if (memcmp(d + range_at[half], last >= 0 ? buf : zero,
			   RANGE_LEN) != 0) {
					return false;
		}
	}
	return (uint8_t)d[4000] == (uint8_t)k;
}

Test(tx_crash, ranges, .timeout = 600)
{
	run_modes(pool_with_data("range", 8192), range_work, range_check);
}

/*
 * ---- allocating: list insertion from a transactional bump arena ----
 * Layout: d[0] = arena top (index of the next free node), d[1] = list
 * head (node index + 1, 0 = empty), d[2] = length; node n at d[8 + 4n]:
 * {next, value}.  Each transaction allocates a node, fills it, links it and
 * counts it; the invariant is that the list length equals the counter and
 * the allocated node count.  (The persistent heap, pmalloc, is a separate
 * piece of work; this uses the transactional allocation pattern it will.)
 */
#define LIST_OPS 12

static void list_work(mnemo_pool *p, struct t_progress *pr)
{
	uint64_t *d = region(p);
	for (int i = 0; i < LIST_OPS; i++) {
		T_BEGIN(pr);
		cr_assert_eq(mnemo_tx_begin(), 0);
		uint64_t n = mnemo_tx_get64(&d[0]);
		mnemo_tx_set64(&d[0], n + 1);
		uint64_t *node = &d[8 + 4 * n];
		mnemo_tx_set64(&node[0], mnemo_tx_get64(&d[1]));
		mnemo_tx_set64(&node[1], v(i, 7));
		mnemo_tx_set64(&d[1], n + 1);
		mnemo_tx_set64(&d[2], mnemo_tx_get64(&d[2]) + 1);
		cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
		T_END(pr);
	}
}

static bool list_check(mnemo_pool *p, int k)
{
	uint64_t *d = region(p);
	if (d[0] != (uint64_t)k || d[2] != (uint64_t)k)
		return false;
	uint64_t len = 0;
	for (uint64_t h = d[1]; h; h = d[8 + 4 * (h - 1)]) {
		if (d[8 + 4 * (h - 1) + 1] != v(k - 1 - (int)len, 7))
			return false;
		if (++len > (uint64_t)k)
			return false;
	}
	return len == (uint64_t)k;
}

Test(tx_crash, allocating_list_insert, .timeout = 600)
{
	run_modes(pool_with_data("list", 8192), list_work, list_check);
}

/*
 * ---- two threads, two logs, the same words ----
 * The threads take turns (semaphores make the order, hence the persist
 * points, deterministic), so records for the same words sit in two logs and
 * recovery must order them by commit timestamp across logs.
 */
#define TWO_OPS 30
static sem_t g_turn[2];
static uint64_t *g_d;
static struct t_progress *g_pr;

static void *side(void *arg)
{
	int me = (int)(intptr_t)arg;
	for (int i = me; i < TWO_OPS; i += 2) {
		sem_wait(&g_turn[me]);
		T_BEGIN(g_pr);
		mnemo_tx_begin();
		mnemo_tx_set64(&g_d[0], v(i, 0));
		mnemo_tx_set64(&g_d[8 + 8 * me], v(i, 1)); /* own line */
		cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
		T_END(g_pr);
		sem_post(&g_turn[!me]);
	}
	return NULL;
}

static void two_work(mnemo_pool *p, struct t_progress *pr)
{
	g_d = region(p);
	g_pr = pr;
	sem_init(&g_turn[0], 0, 1);
	sem_init(&g_turn[1], 0, 0);
	pthread_t t;
	pthread_create(&t, NULL, side, (void *)1);
	side((void *)0);
	pthread_join(t, NULL);
}

static bool two_check(mnemo_pool *p, int k)
{
	uint64_t *d = region(p);
	uint64_t w0 = k ? v(k - 1, 0) : 0;
	int last[2] = {-1, -1};
	for (int i = 0; i < k; i++)
		last[i % 2] = i;
	return d[0] == w0 && d[8] == (last[0] < 0 ? 0 : v(last[0], 1)) &&
	       d[16] == (last[1] < 0 ? 0 : v(last[1], 1));
}

Test(tx_crash, two_logs_same_words, .timeout = 600)
{
	run_modes(pool_with_data("two", 4096), two_work, two_check);
}

