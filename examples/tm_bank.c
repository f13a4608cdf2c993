/*
 * tm_bank.c -- durable transactions from unmodified GCC TM code: the
 * accounts live in a pool region and every transfer is a
 * __transaction_atomic block, compiled with gcc -fgnu-tm and linked with
 * libmnemo (which provides the TM ABI).  Kill it at any moment: the next
 * run finds the total intact and resumes.
 *
 *   usage: tm_bank POOL [TRANSFERS]
 * Every 100000 transfers it prints (and flushes) "progress transfers N",
 * N committed, so a test can kill it once work is under way.
 *   build: gcc -fgnu-tm tm_bank.c $(pkg-config --cflags --libs mnemosyne)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <mnemosyne.h>

#define ACCOUNTS 8

struct bank {
	long balance[ACCOUNTS];
	long transfers;
};

static struct bank *bank;

__attribute__((noinline)) static void deposit(int to, long amount)
{
	__transaction_atomic { bank->balance[to] += amount; }
}

__attribute__((noinline)) static void transfer(int from, int to, long amount)
{
	__transaction_atomic {
		if (bank->balance[from] >= amount) {
			bank->balance[from] -= amount;
			bank->balance[to] += amount;
			bank->transfers++;
		}
	}
}

static int open_bank(const char *path, mnemo_pool **pool)
{
	void *a = NULL;
	int rc = mnemo_pool_open(path, MNEMO_CREATE, pool);
	if (rc == 0)
		rc = mnemo_region_find(*pool, "bank", &a, NULL);
	if (rc == -ENOENT) { /* first run */
		rc = mnemo_region_create(*pool, "bank", sizeof(*bank), &a);
		bank = a;
		for (int i = 0; rc == 0 && i < ACCOUNTS; i++)
			deposit(i, 100);
	}
	bank = a;
	if (rc)
		fprintf(stderr, "tm_bank: %s\n", mnemo_errormsg());
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: tm_bank POOL [TRANSFERS]\n");
		return 2;
	}
	long n = argc > 2 ? atol(argv[2]) : 1000;
	mnemo_pool *pool;
	if (open_bank(argv[1], &pool))
		return 1;
	unsigned s = (unsigned)bank->transfers * 2654435761u + 1;
	for (long i = 0; i < n; i++) {
		s = s * 1103515245u + 12345u;
		transfer((s >> 8) % ACCOUNTS, (s >> 16) % ACCOUNTS, (s >> 24) % 20);
		if ((i + 1) % 100000 == 0) {
			printf("progress transfers %ld\n", bank->transfers);
			fflush(stdout);
		}
	}
	long total = 0;
	for (int i = 0; i < ACCOUNTS; i++)
		total += bank->balance[i];
	printf("transfers %ld total %ld\n", bank->transfers, total);
	mnemo_pool_close(&pool);
	return total == 100 * ACCOUNTS ? 0 : 1;
}
