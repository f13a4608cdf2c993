/*
 * powerfail.c -- the workload of tests/vm/powerfail.sh: durable
 * transactions on the dax backend, cut by a (virtual) power failure.
 *
 *   powerfail create POOL   create the pool (dax backend) and its region
 *   powerfail run POOL READY
 *                           commit transactions until the power goes;
 *                           after each commit returns, print
 *                           "powerfail: committed N" (N = transactions
 *                           committed so far in the pool); after the
 *                           first, create the file READY (the script
 *                           waits for it before it may cut the power)
 *   powerfail check POOL N  reopen (recovery) and check that at least N
 *                           transactions are there and the state is one
 *                           that committed transactions produce
 *
 * Transaction i appends record i (8 words, each a function of i and the
 * word's index) to an array and sets the counter to i + 1.  A consistent
 * state after a crash therefore has: records 0..count-1 exactly as written,
 * and every record slot from count on still all zero (an uncommitted
 * transaction must leave nothing in place).  Exit 0 ok, 1 check failed,
 * 2 usage or setup error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnemosyne.h"

#define WORDS 8 /* one 64-byte record per transaction */
#define CAP 500000
#define REGION "powerfail"

struct state {
	uint64_t count;
	uint64_t pad[7]; /* records start on their own cache line */
	uint64_t rec[CAP][WORDS];
};

static uint64_t word(uint64_t i, unsigned k)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull + k;
	return x ^ (x >> 29) ^ 0x5555000000000000ull;
}

static int die(const char *what, int rc)
{
	fprintf(stderr, "powerfail: %s: %s (%d)\n", what, mnemo_errormsg(), rc);
	return 2;
}

static int open_dax(const char *path, mnemo_pool **p, struct state **s)
{
	int rc = mnemo_pool_open(path, MNEMO_BACKEND_DAX, p);
	if (rc)
		return die("open (dax backend)", rc);
	if (strcmp(mnemo_pool_backend(*p), "dax") != 0) {
		fprintf(stderr, "powerfail: backend is %s, not dax\n",
			mnemo_pool_backend(*p));
		return 2;
	}
	rc = mnemo_region_find(*p, REGION, (void **)s, NULL);
	return rc ? die("find region", rc) : 0;
}

static int do_create(const char *path)
{
	mnemo_pool *p;
	void *a;
	int rc = mnemo_pool_create(path, 40u << 20, NULL, MNEMO_BACKEND_DAX, &p);
	if (rc)
		return die("create (dax backend)", rc);
	rc = mnemo_region_create(p, REGION, sizeof(struct state), &a);
	if (rc)
		return die("region", rc);
	mnemo_pool_close(&p);
	return 0;
}

/* One transaction: append record n, count = n + 1. */
static int append(struct state *s, uint64_t n)
{
	int rc = mnemo_tx_begin();
	uint64_t rec[WORDS];
	for (unsigned k = 0; k < WORDS; k++)
		rec[k] = word(n, k);
	if (!rc)
		rc = mnemo_tx_store(s->rec[n], rec, sizeof(rec));
	if (!rc)
		mnemo_tx_set64(&s->count, n + 1);
	int crc = mnemo_tx_commit();
	return rc ? rc : crc;
}

static void say_ready(const char *ready)
{
	FILE *f = fopen(ready, "w");
	if (f)
		fclose(f);
}

static int do_run(const char *path, const char *ready)
{
	mnemo_pool *p;
	struct state *s;
	int rc = open_dax(path, &p, &s);
	if (rc)
		return rc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (uint64_t n = s->count; n < CAP; n++) {
		rc = append(s, n);
		if (rc)
			return die("commit", rc);
		printf("powerfail: committed %" PRIu64 "\n", n + 1);
		if (ready) { /* after the first commit */
			say_ready(ready);
			ready = NULL;
		}
	}
	printf("powerfail: array full\n");
	mnemo_pool_close(&p);
	return 0;
}

static int do_check(const char *path, const char *want_s)
{
	char *end;
	errno = 0;
	unsigned long long want = strtoull(want_s, &end, 10);
	if (errno || *end || !*want_s || want == 0) {
		fprintf(stderr, "powerfail: bad committed count '%s' (must be > 0)\n",
			want_s);
		return 2;
	}
	mnemo_pool *p;
	struct state *s;
	int rc = open_dax(path, &p, &s);
	if (rc)
		return rc;
	uint64_t c = s->count;
	printf("powerfail: reported committed %llu, pool holds %" PRIu64 "\n",
	       want, c);
	if (c < want || c > CAP) {
		printf("FAIL: %llu transactions were reported committed, the pool "
		       "holds %" PRIu64 "\n", want, c);
		return 1;
	}
	for (uint64_t i = 0; i < CAP; i++)
		for (unsigned k = 0; k < WORDS; k++) {
			uint64_t exp = i < c ? word(i, k) : 0;
			if (s->rec[i][k] != exp) {
				printf("FAIL: record %" PRIu64 " word %u is %#" PRIx64
				       ", expected %#" PRIx64 " (count %" PRIu64 ")\n",
				       i, k, s->rec[i][k], exp, c);
				return 1;
			}
		}
	printf("powerfail: ok: %" PRIu64 " records intact, nothing after them\n", c);
	mnemo_pool_close(&p);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "create") == 0)
		return do_create(argv[2]);
	if (argc == 4 && strcmp(argv[1], "run") == 0)
		return do_run(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "check") == 0)
		return do_check(argv[2], argv[3]);
	fprintf(stderr, "usage: powerfail create POOL | run POOL READY | "
		"check POOL N\n");
	return 2;
}
