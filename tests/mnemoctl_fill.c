/*
 * mnemoctl_fill.c -- what tests/mnemoctl.sh inspects with mnemoctl: a
 * pool holding a named region with known bytes, an anonymous region, two
 * roots (one to a heap block holding a string, one into the region) and
 * heap blocks of three size classes.  usage: mnemoctl_fill POOL
 */
#include <stdio.h>
#include <string.h>

#include "mnemosyne.h"

static int die(const char *what)
{
	fprintf(stderr, "mnemoctl_fill: %s: %s\n", what, mnemo_errormsg());
	return 1;
}

int main(int argc, char **argv)
{
	mnemo_pool *p;
	void *r, *anon;
	if (argc != 2)
		return 2;
	if (mnemo_pool_open(argv[1], 0, &p))
		return die("open");
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
