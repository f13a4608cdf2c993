/*
 * alias_unit.c -- mnemo_region_alias(): stores, transactions and persistence
 * calls through a second mapping of a region; kill -9 during transactions
 * through the alias; bad input; fork snapshots.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnemosyne.h"
#include "util.h"

#define PG 4096
#define NACC 64

/* Fresh inaccessible address space of n bytes for an alias. */
static void *spare(size_t n)
{
	void *p = mmap(NULL, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED);
	return p;
}

Test(alias, stores_and_transactions_reach_the_region)
{
	const char *path = t_pool_with_region("a", 8 << 20, "r", 4 * PG);
	mnemo_pool *pool = t_open(path, 0);
	long *r = t_region(pool, "r");
	r[1] = 7; /* before: visible through the alias */
	long *a = spare(2 * PG);
	cr_assert_eq(mnemo_region_alias(pool, r, 2 * PG, a), 0);
	cr_assert_eq(a[1], 7);
	a[2] = 11; /* plain store through the alias */
	cr_assert_eq(r[2], 11);
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64((uint64_t *)&a[3], 42);
	uint64_t seen = mnemo_tx_get64((uint64_t *)&r[3]);
	cr_assert_eq(seen, 42, "a read at the region address sees the "
		     "transaction's write through the alias");
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(r[3], 42);
	mnemo_persist(&a[2], 8);
	cr_assert_eq(mnemo_store64((uint64_t *)&a[4], 5), 0);
	cr_assert_eq(mnemo_pool_close(&pool), 0);
	/* Closed: the alias is a private copy now, the region unchanged. */
	a[2] = 99;
	pool = t_open(path, 0);
	r = t_region(pool, "r");
	cr_assert(r[1] == 7 && r[2] == 11 && r[3] == 42 && r[4] == 5);
	mnemo_pool_close(&pool);
}

Test(alias, bad_input)
{
	const char *path = t_pool_with_region("b", 8 << 20, "r", 4 * PG);
	mnemo_pool *pool = t_open(path, 0);
	char *r = t_region(pool, "r");
	char *a = spare(8 * PG);
	cr_assert_eq(mnemo_region_alias(NULL, r, PG, a), -EINVAL);
	cr_assert_eq(mnemo_region_alias(pool, r + 1, PG, a), -EINVAL);
	cr_assert_eq(mnemo_region_alias(pool, r, 100, a), -EINVAL);
	cr_assert_eq(mnemo_region_alias(pool, r, 0, a), -EINVAL);
	cr_assert_eq(mnemo_region_alias(pool, r, 5 * PG, a), -EINVAL,
		     "beyond the region");
	cr_assert_eq(mnemo_region_alias(pool, r, PG, r + 8 * PG), -EINVAL,
		     "inside the pool window");
	cr_assert_eq(mnemo_region_alias(pool, r, 2 * PG, a), 0);
	cr_assert_eq(mnemo_region_alias(pool, r, PG, a + PG), -EEXIST);
	cr_assert_eq(mnemo_region_delete(pool, r), -EBUSY);
	cr_assert_eq(mnemo_region_unalias(pool, a + PG), -ENOENT);
	cr_assert_eq(mnemo_region_unalias(pool, a), 0);
	cr_assert_eq(mnemo_region_delete(pool, r), 0);
	mnemo_pool_close(&pool);
}

Test(alias, sim_backend_refuses)
{
	const char *path = t_pool_with_region("s", 8 << 20, "r", PG);
	mnemo_pool *pool = t_open(path, MNEMO_BACKEND_SIM);
	void *r = t_region(pool, "r");
	cr_assert_eq(mnemo_region_alias(pool, r, PG, spare(PG)), -ENOTSUP);
	mnemo_pool_close(&pool);
}

Test(alias, private_pool_refuses)
{
	const char *path = t_pool_with_region("p", 8 << 20, "r", PG);
	mnemo_pool *pool = NULL; /* private: whatever backend the test uses */
	cr_assert_eq(mnemo_pool_open(path, MNEMO_PRIVATE, &pool), 0, "%s",
		     mnemo_errormsg());
	void *r = t_region(pool, "r");
	cr_assert_eq(mnemo_region_alias(pool, r, PG, spare(PG)), -EROFS);
	cr_assert_not_null(strstr(mnemo_errormsg(), "MNEMO_PRIVATE"), "%s",
			   mnemo_errormsg());
	mnemo_pool_close(&pool);
}

Test(alias, fork_child_writes_a_private_copy)
{
	const char *path = t_pool_with_region("f", 8 << 20, "r", 2 * PG);
	mnemo_pool *pool = t_open(path, 0);
	long *r = t_region(pool, "r");
	long *a = spare(PG);
	cr_assert_eq(mnemo_region_alias(pool, r, PG, a), 0);
	r[0] = 1;
	int go[2], done[2];
	cr_assert(pipe(go) == 0 && pipe(done) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		int ok = r[0] == 1 && a[0] == 1;
		r[0] = 2;
		a[1] = 3;
		ok = ok && r[0] == 2 && a[1] == 3;
		char c = 1;
		if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(ok ? 0 : 1); /* alive until the parent reopened */
	}
	char c;
	cr_assert_eq(read(done[0], &c, 1), 1);
	cr_assert_eq(r[0], 1, "the child's store reached the parent");
	cr_assert_eq(a[1], 0, "the child's alias store reached the parent");
	cr_assert_eq(mnemo_pool_close(&pool), 0);
	/* The child is alive and holds no lock: the pool opens again. */
	cr_assert_eq(mnemo_pool_open(path, 0, &pool), 0, "%s",
		     mnemo_errormsg());
	r = t_region(pool, "r");
	cr_assert(r[0] == 1 && r[1] == 0);
	mnemo_pool_close(&pool);
	cr_assert_eq(write(go[1], &c, 1), 1);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* kill -9: transfers between accounts through the alias, in
 * transactions counted in a[NACC]; the total must survive every kill, and
 * the count must grow (each child commits one before it may be killed). */
static long *open_accounts(const char *path, mnemo_pool **pool)
{
	*pool = t_open(path, 0);
	long *r = t_region(*pool, "acc");
	long *a = spare(PG);
	cr_assert_eq(mnemo_region_alias(*pool, r, PG, a), 0);
	return a;
}

static void transfer_child(const char *path, uint64_t seed, int ready_fd)
{
	mnemo_pool *pool;
	long *a = open_accounts(path, &pool);
	for (;;) {
		seed = seed * 6364136223846793005ull + 1;
		int i = (int)(seed >> 33) % NACC, j = (int)(seed >> 45) % NACC;
		mnemo_tx_begin();
		uint64_t *x = (uint64_t *)&a[i], *y = (uint64_t *)&a[j];
		mnemo_tx_set64(x, mnemo_tx_get64(x) - 3);
		mnemo_tx_set64(y, mnemo_tx_get64(y) + 3);
		uint64_t *n = (uint64_t *)&a[NACC];
		mnemo_tx_set64(n, mnemo_tx_get64(n) + 1);
		if (mnemo_tx_commit() != 0)
			_exit(3);
		t_ready(ready_fd);
	}
}

/* Asserts the total; returns the count of committed transfers. */
static uint64_t check_total(const char *path)
{
	mnemo_pool *pool;
	long *a = open_accounts(path, &pool);
	long sum = 0;
	for (int i = 0; i < NACC; i++)
		sum += a[i];
	cr_assert_eq(sum, 1000 * NACC, "total %ld after a kill", sum);
	uint64_t done = (uint64_t)a[NACC];
	mnemo_pool_close(&pool);
	return done;
}

Test(alias, kill_during_transactions_through_the_alias)
{
	const char *path = t_pool_with_region("k", 16 << 20, "acc", PG);
	mnemo_pool *pool = t_open(path, 0);
	long *r = t_region(pool, "acc");
	for (int i = 0; i < NACC; i++)
		r[i] = 1000;
	mnemo_persist(r, NACC * sizeof(long));
	mnemo_pool_close(&pool);
	t_kill_loop(path, 20, transfer_child, check_total);
	/* t_kill_loop saw the count grow with each kill: >= 20 */
	uint64_t done = check_total(path);
	cr_assert_geq(done, 20u, "a committed transfer was lost");
}
