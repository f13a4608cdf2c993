/*
 * kv.c -- options of the natural-layout key-value benchmark (kv.h).
 */
#include "kv.h"

void kv_parse(int argc, char **argv, struct bench_opts *o, const char *extra)
{
	bench_parse(argc, argv, o, extra);
	o->keyspace = o->preload; /* overwrites only */
	if (o->preload == 0)
		bench_die(o, "--preload: at least 1");
}
