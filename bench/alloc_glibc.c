/*
 * alloc_glibc.c -- the allocator benchmark on glibc's malloc/free (volatile
 * memory, no durability: the lower bound a persistent allocator is
 * measured against).  Workloads in alloc_work.h; nothing is flushed or
 * fenced, so the counts are n/a.
 */
#include <stdio.h>
#include <stdlib.h>

#include "alloc_common.h"

typedef void *be_obj;

static size_t g_size;

static int be_alloc(struct alloc_thread *t, be_obj *slot)
{
	(void)t;
	*slot = malloc(g_size);
	return *slot ? 0 : -1;
}

static void be_free(struct alloc_thread *t, be_obj *slot)
{
	(void)t;
	free(*slot);
}

static uint64_t *be_ptr(be_obj *slot) { return *slot; }
static void be_count_begin(struct alloc_thread *t) { (void)t; }
static void be_count_end(struct alloc_thread *t) { (void)t; }

#include "alloc_work.h"

int main(int argc, char **argv)
{
	struct alloc_opts o;
	alloc_parse(argc, argv, &o, 0, "  (glibc malloc/free: no pool)\n");
	g_size = o.size;
	struct alloc_thread t[64] = {{0}};
	alloc_run(&o, t);
	alloc_result(&o, "glibc", "malloc", t);
	return 0;
}
