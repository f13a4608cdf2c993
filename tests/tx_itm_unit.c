/*
 * tx_itm_unit.c -- unmodified GCC transactional-memory code (gcc -fgnu-tm,
 * __transaction_atomic / __transaction_cancel) running on libmnemo's
 * implementation of the TM ABI: durable commits, rollback on cancel,
 * volatile data, isolation between threads, durability across reopen.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "util.h"

struct bank {
	long acct[16];
	long commits;
	char note[100];
};

static struct bank *g_b;
static long g_vol;

__attribute__((noinline)) static void deposit(int i, long amount)
{
	__transaction_atomic {
		g_b->acct[i] += amount;
		g_b->commits++;
	}
}

/* Cancelling undoes every write of the block, locals included. */
__attribute__((noinline)) static void withdraw_or_cancel(int i, long amount)
{
	__transaction_atomic {
		g_b->acct[i] -= amount;
		g_vol++;
		if (g_b->acct[i] < 0)
			__transaction_cancel;
		g_b->commits++;
	}
}

static const char *g_path;

static struct bank *open_bank(mnemo_pool **pool, int create)
{
	if (create) {
		g_path = t_path("itm");
		t_create(g_path, 16 << 20);
	}
	*pool = t_open(g_path, 0);
	void *a;
	if (create)
		cr_assert_eq(mnemo_region_create(*pool, "bank", 4096, &a), 0);
	else
		cr_assert_eq(mnemo_region_find(*pool, "bank", &a, NULL), 0);
	return a;
}

Test(tx_itm, atomic_blocks_are_mnemosyne_transactions)
{
	mnemo_pool *pool;
	g_b = open_bank(&pool, 1);
	mnemo_stat_reset();
	deposit(0, 50);
	cr_assert_eq(g_b->acct[0], 50);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_TX_COMMITS), 1,
		     "the TM ABI in use is libmnemo's");
	withdraw_or_cancel(0, 80);
	cr_assert_eq(g_b->acct[0], 50, "cancel rolls back");
	cr_assert_eq(g_vol, 0, "volatile writes roll back too");
	withdraw_or_cancel(0, 20);
	cr_assert_eq(g_b->acct[0], 30);
	cr_assert_eq(g_vol, 1);
	__transaction_atomic {
		memcpy(g_b->note, "durable note", 13);
	}
	mnemo_pool_close(&pool);
	g_b = open_bank(&pool, 0);
	cr_assert_eq(g_b->acct[0], 30);
	cr_assert_eq(g_b->commits, 2);
	cr_assert_str_eq(g_b->note, "durable note");
	mnemo_pool_close(&pool);
}

__attribute__((noinline)) static void move2(int from, int to)
{
	__transaction_atomic {
		if (g_b->acct[from] >= 2) {
			g_b->acct[from] -= 2;
			g_b->acct[to] += 2;
			g_b->commits++;
		}
	}
}

static void *mover(void *arg)
{
	unsigned s = (unsigned)(uintptr_t)arg * 2654435761u + 1;
	for (int i = 0; i < 20000; i++) {
		s = s * 1103515245u + 12345u;
		move2((s >> 8) % 16, (s >> 16) % 16);
	}
	return NULL;
}

Test(tx_itm, threads_are_isolated)
{
	mnemo_pool *pool;
	g_b = open_bank(&pool, 1);
	for (int i = 0; i < 16; i++)
		deposit(i, 100);
	pthread_t t[3];
	for (long i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, mover, (void *)i);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	long sum = 0;
	for (int i = 0; i < 16; i++)
		sum += g_b->acct[i];
	cr_assert_eq(sum, 1600);
	mnemo_pool_close(&pool);
	g_b = open_bank(&pool, 0);
	sum = 0;
	for (int i = 0; i < 16; i++)
		sum += g_b->acct[i];
	cr_assert_eq(sum, 1600, "after reopening");
	mnemo_pool_close(&pool);
}

/* ---- crashed at every persist point (sim backend) ---- */

#define CRASH_OPS 12
static const unsigned multi_at[] = {0, 1, 9, 64, 511, 512, 700, 1023};

static uint64_t v(int i, int j)
{
	return 0x0100010001000100ull * (uint64_t)(i + 1) + (uint64_t)j;
}

static uint64_t *crash_region(mnemo_pool *p)
{
	return t_region(p, "data");
}

__attribute__((noinline)) static void tm_multi(uint64_t *d, int i)
{
	__transaction_atomic {
		for (unsigned j = 0; j < 8; j++)
			d[multi_at[j]] = v(i, j);
	}
}

static void tm_work(mnemo_pool *p, struct t_progress *pr)
{
	uint64_t *d = crash_region(p);
	for (int i = 0; i < CRASH_OPS; i++) {
		T_BEGIN(pr);
		tm_multi(d, i);
		T_END(pr);
	}
}

static bool tm_check(mnemo_pool *p, int k)
{
	uint64_t *d = crash_region(p);
	for (unsigned j = 0; j < 8; j++)
		if (d[multi_at[j]] != (k ? v(k - 1, j) : 0))
			return false;
	return true;
}

Test(tx_itm, crash_at_every_persist_point, .timeout = 600)
{
	setenv("MNEMO_TX_LOG_SIZE", "8K", 1);
	const char *path = t_pool_with_region("tmcrash", 4 << 20, "data", 8192);
	int points = t_crash_every_point(path, tm_work, tm_check, false, 0);
	cr_assert_gt(points, CRASH_OPS);
	uint64_t seed = t_seed();
	for (uint64_t s = 0; s < 2; s++)
		t_crash_every_point(path, tm_work, tm_check, true, seed + s);
}
