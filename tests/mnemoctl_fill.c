/*
 * mnemoctl_fill.c -- what tests/mnemoctl.sh inspects with mnemoctl: a
 * pool holding a named region with known bytes, an anonymous region, two
 * roots (one to a heap block holding a string, one into the region) and
 * heap blocks of three size classes.  usage: mnemoctl_fill POOL
 * With a second argument `crash`, it instead commits transactions into
 * region alpha and exits without closing the pool: the next open finds
 * committed records to replay.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mnemosyne.h"

static int die(const char *what)
{
	fprintf(stderr, "mnemoctl_fill: %s: %s\n", what, mnemo_errormsg());
	return 1;
}

/* Committed transactions, then an exit that leaves the logs as they are. */
static int crash(mnemo_pool *p)
{
	char *r;
	if (mnemo_region_find(p, "alpha", (void **)&r, NULL))
		return die("find");
	for (int i = 0; i < 50; i++) {
		int rc = mnemo_tx_begin();
		if (rc == 0)
			rc = mnemo_tx_store(r + 32, "committed, never closed", 24);
		if (rc == 0)
			rc = mnemo_tx_commit();
		if (rc)
			return die("transaction");
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	mnemo_pool *p;
	void *r, *anon;
	if (argc < 2 || argc > 3)
		return 2;
	if (mnemo_pool_open(argv[1], 0, &p))
		return die("open");
	if (argc == 3)
		return crash(p);
	if (mnemo_region_create(p, "alpha", 100, &r) ||
	    mnemo_region_create(p, NULL, 8192, &anon))
		return die("region");
	strcpy(r, "hello from region alpha");
	mnemo_persist(r, 100);
	char *s = mnemo_heap_alloc(p, 48, 0, 0);
	if (!s)
		return die("heap");
	strcpy(s, "the head block");
	mnemo_persist(s, 48);
	for (int i = 0; i < 10; i++)
		if (!mnemo_heap_alloc(p, 16, 0, 0) || !mnemo_heap_alloc(p, 1000, 0, 0))
			return die("heap");
	if (mnemo_root_set(p, "head", s) ||
	    mnemo_root_set(p, "inside", (char *)r + 6))
		return die("root");
	return mnemo_pool_close(&p) ? die("close") : 0;
}
