/*
 * bank_mnemo.c -- contention: --threads threads transfer between --accounts
 * shared accounts (or, with --disjoint, each thread between accounts of its
 * own, on separate cache lines), --transfers in all, one durable
 * transaction each (mnemo_tx_get64/mnemo_tx_set64, commit retried on
 * -EAGAIN).  Prints a RESULT line: transfers/s and aborts per commit;
 * checks that money is conserved.
 *
 *   usage: bank_mnemo [--threads N] [--accounts N] [--transfers N]
 *                     [--disjoint] [--dir DIR]
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mnemosyne.h>

#define LINE_WORDS 8 /* accounts one cache line apart */

static unsigned g_threads = 2, g_accounts = 16, g_disjoint;
static uint64_t g_transfers = 16000;
static uint64_t *g_acct;
static uint64_t g_aborts; /* summed by the workers (stats are per thread) */

static void die(const char *what)
{
	fprintf(stderr, "bank_mnemo: %s: %s\n", what, mnemo_errormsg());
	exit(1);
}

static uint64_t *account(unsigned t, unsigned i)
{
	unsigned a = g_disjoint ? t * g_accounts + i : i;
	return &g_acct[(size_t)a * LINE_WORDS];
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t s = 0x9e3779b97f4a7c15ull * (t + 1);
	uint64_t n = g_transfers / g_threads;
	for (uint64_t k = 0; k < n; k++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		unsigned from = (unsigned)(s % g_accounts);
		unsigned to = (unsigned)((s >> 32) % g_accounts);
		int rc;
		do {
			if (mnemo_tx_begin())
				die("mnemo_tx_begin");
			uint64_t *f = account(t, from), *d = account(t, to);
			uint64_t a = mnemo_tx_get64(f);
			if (a > 0) {
				mnemo_tx_set64(f, a - 1);
				mnemo_tx_set64(d, mnemo_tx_get64(d) + 1);
			}
			rc = mnemo_tx_commit();
		} while (rc == -EAGAIN);
		if (rc)
			die("mnemo_tx_commit");
	}
	__atomic_add_fetch(&g_aborts, mnemo_stat_get(MNEMO_STAT_TX_ABORTS),
			   __ATOMIC_RELAXED);
	return NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	const char *dir = "/dev/shm";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			g_threads = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--accounts") && i + 1 < argc)
			g_accounts = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--transfers") && i + 1 < argc)
			g_transfers = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--disjoint"))
			g_disjoint = 1;
		else {
			fprintf(stderr, "usage: bank_mnemo [--threads N] "
				"[--accounts N] [--transfers N] [--disjoint] "
				"[--dir DIR]\n");
			return 2;
		}
	}
	if (g_threads < 1 || g_threads > 64 || g_accounts < 2) {
		fprintf(stderr, "bank_mnemo: 1..64 threads, >= 2 accounts\n");
		return 2;
	}
	setenv("MNEMO_DURABILITY", "pmem", 0);
	char path[4096];
	snprintf(path, sizeof(path), "%s/bank-mnemo-%ld.pool", dir,
		 (long)getpid());
	mnemo_pool *pool;
	if (mnemo_pool_create(path, 64 << 20, NULL, MNEMO_BACKEND_FILE, &pool))
		die("mnemo_pool_create");
	size_t n = (size_t)g_accounts * (g_disjoint ? g_threads : 1);
	void *a;
	if (mnemo_region_create(pool, "accounts", n * 64, &a))
		die("mnemo_region_create");
	g_acct = a;
	for (size_t i = 0; i < n; i++)
		g_acct[i * LINE_WORDS] = 1000;
	mnemo_persist(g_acct, n * 64);
	mnemo_stat_reset();
	pthread_t th[64];
	uint64_t t0 = now_ns();
	for (unsigned t = 0; t < g_threads; t++)
		pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
	for (unsigned t = 0; t < g_threads; t++)
		pthread_join(th[t], NULL);
	uint64_t ns = now_ns() - t0;
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += g_acct[i * LINE_WORDS];
	if (sum != 1000 * n) {
		fprintf(stderr, "bank_mnemo: money not conserved: %llu, want "
			"%llu\n", (unsigned long long)sum,
			(unsigned long long)(1000 * n));
		return 1;
	}
	uint64_t done = g_transfers / g_threads * g_threads;
	uint64_t aborts = g_aborts;
	printf("RESULT threads=%u accounts=%u disjoint=%u transfers=%llu "
	       "ns=%llu ops_per_s=%.0f aborts_per_commit=%.2f\n", g_threads,
	       g_accounts, g_disjoint, (unsigned long long)done,
	       (unsigned long long)ns, (double)done / ((double)ns / 1e9),
	       (double)aborts / (double)done);
	mnemo_pool_close(&pool);
	mnemo_pool_delete(path);
	return 0;
}
