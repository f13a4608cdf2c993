/*
 * ledger.c -- a persistence bug that mnemoctl crashtest finds (see
 * mnemoctl(1), EXAMPLES).
 *
 * The ledger keeps a balance and a count of deposits; its invariant is
 * balance == 10 * deposits.  Each deposit updates both.  The buggy
 * version bumps the count inside a transaction but updates the balance
 * afterwards with a plain store and a persist: a crash between the two
 * leaves a ledger that breaks the invariant.  With --fixed both updates
 * are in the one transaction.
 *
 *   usage: ledger POOL [--fixed] [DEPOSITS]   make deposits
 *          ledger POOL --verify                exit 1 if the invariant fails
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mnemosyne.h>

struct ledger {
	uint64_t balance;
	uint64_t deposits;
};

static struct ledger *open_ledger(const char *path, mnemo_pool **pool)
{
	void *a = NULL;
	int rc = mnemo_pool_open(path, MNEMO_CREATE, pool);
	if (rc == 0 && mnemo_region_find(*pool, "ledger", &a, NULL) == -ENOENT)
		rc = mnemo_region_create(*pool, "ledger", sizeof(struct ledger),
					 &a);
	if (rc) {
		fprintf(stderr, "ledger: %s\n", mnemo_errormsg());
		return NULL;
	}
	return a;
}

static int deposit(struct ledger *l, int fixed)
{
	int rc = mnemo_tx_begin();
	if (rc == 0)
		rc = mnemo_tx_store(&l->deposits,
				    &(uint64_t){l->deposits + 1}, 8);
	if (rc == 0 && fixed)
		rc = mnemo_tx_store(&l->balance,
				    &(uint64_t){l->balance + 10}, 8);
	if (rc == 0)
		rc = mnemo_tx_commit();
	if (rc == 0 && !fixed) { /* the bug: outside the transaction */
		l->balance += 10;
		mnemo_persist(&l->balance, sizeof(l->balance));
	}
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: ledger POOL [--fixed] [DEPOSITS] | "
			"ledger POOL --verify\n");
		return 2;
	}
	mnemo_pool *pool;
	struct ledger *l = open_ledger(argv[1], &pool);
	if (!l)
		return 2;
	int verify = argc > 2 && strcmp(argv[2], "--verify") == 0;
	int fixed = argc > 2 && strcmp(argv[2], "--fixed") == 0;
	long n = argc > 2 + fixed ? atol(argv[2 + fixed]) : 5;
	int rc = 0;
	for (long i = 0; !verify && rc == 0 && i < n; i++)
		rc = deposit(l, fixed);
	if (verify && l->balance != 10 * l->deposits) {
		printf("broken: balance %llu after %llu deposits\n",
		       (unsigned long long)l->balance,
		       (unsigned long long)l->deposits);
		rc = 1;
	} else if (verify) {
		printf("ok: balance %llu after %llu deposits\n",
		       (unsigned long long)l->balance,
		       (unsigned long long)l->deposits);
	}
	if (rc < 0)
		fprintf(stderr, "ledger: %s\n", mnemo_errormsg());
	mnemo_pool_close(&pool);
	return rc ? 1 : 0;
}
