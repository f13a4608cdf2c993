/*
 * heap_map_unit.c -- the heap's two allocation maps (layout.h): the default
 * volatile one, whose bits the open rebuilds after a crash, and the
 * durable one (MNEMO_HEAP_GC=off).  A pool crashes under one and opens
 * under the other, both ways; the check's invariants for the volatile map
 * hold; double frees are caught without the durable bits; flushes and
 * fences per operation are what the man pages say.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define NLIVE 60
#define NLEAK 40
#define NFREED 10

struct node {
	struct node *next;
	uint64_t n;
};

static void set_gc(const char *v)
{
	if (v)
		setenv("MNEMO_HEAP_GC", v, 1);
	else
		unsetenv("MNEMO_HEAP_GC");
}

static const char *new_pool(const char *tag)
{
	const char *path = t_path(tag);
	t_create(path, 32 << 20);
	return path;
}

/* In a child, under map `gc`: NLIVE nodes in a list from root "list",
 * NLEAK blocks nothing points to, NFREED allocated and freed; then a crash
 * (_exit without closing). */
static void crash_with_leaks(const char *path, const char *gc)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		set_gc(gc);
		mnemo_pool *p = NULL;
		if (mnemo_pool_open(path, 0, &p))
			_exit(2);
		struct node *head = NULL;
		for (int i = 0; i < NLIVE + NLEAK + NFREED; i++) {
			struct node *x = mnemo_heap_alloc(p, sizeof(*x), 0, 0);
			if (!x)
				_exit(3);
			if (i >= NLIVE + NLEAK) {
				pfree(x);
				continue;
			}
			x->n = (uint64_t)i;
			x->next = i < NLIVE ? head : NULL;
			mnemo_persist(x, sizeof(*x));
			if (i < NLIVE)
				head = x;
		}
		if (mnemo_root_set(p, "list", head))
			_exit(4);
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %d", st);
}

static struct mnemo_heap_stats stats_of(mnemo_pool *p)
{
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(p, &st, sizeof(st)), 0, "%s", mnemo_errormsg());
	return st;
}

/* The list is whole, and exactly its nodes are allocated. */
static void list_is_all(mnemo_pool *p)
{
	struct node *x = NULL;
	cr_assert_eq(mnemo_root_get(p, "list", (void **)&x), 0);
	for (int i = NLIVE - 1; i >= 0; i--, x = x->next) {
		cr_assert_not_null(x, "the list ends at %d", i);
		cr_assert_eq(x->n, (uint64_t)i);
		cr_assert_gt(pmalloc_usable_size(x), 0, "node %d is free", i);
	}
	cr_assert_null(x);
	cr_assert_eq(mnemo_heap_check(p), 0, "%s", mnemo_errormsg());
	struct mnemo_heap_stats st = stats_of(p);
	cr_assert_eq(st.live_blocks, NLIVE, "live %llu",
		     (unsigned long long)st.live_blocks);
}

/* Reopen under `gc` after a crash under the other map, then again after
 * a clean close. */
static void crash_then_open(const char *tag, const char *crash_gc,
			    const char *open_gc)
{
	const char *path = new_pool(tag);
	crash_with_leaks(path, crash_gc);
	set_gc(open_gc);
	mnemo_pool *p = t_open(path, 0);
	struct mnemo_heap_stats st = stats_of(p);
	cr_assert_eq(st.collected, 1, "no collection after a crash");
	cr_assert_eq(st.reclaimed_blocks, NLEAK, "reclaimed %llu, leaked %d",
		     (unsigned long long)st.reclaimed_blocks, NLEAK);
	list_is_all(p);
	void *q[NLIVE];
	for (int i = 0; i < NLIVE; i++) /* none of them a node */
		cr_assert_not_null(q[i] = mnemo_heap_alloc(p, 16, 0, 0));
	for (int i = 0; i < NLIVE; i++)
		pfree(q[i]);
	list_is_all(p);
	mnemo_pool_close(&p);
	p = t_open(path, 0);
	cr_assert_eq(stats_of(p).collected, 0, "a clean close needs none");
	list_is_all(p);
	mnemo_pool_close(&p);
	set_gc(NULL);
}

Test(heap_map, volatile_crash_is_rebuilt_even_with_the_collection_off)
{
	crash_then_open("v2d", NULL, "off");
}

Test(heap_map, durable_crash_is_collected_by_a_volatile_open)
{
	crash_then_open("d2v", "off", NULL);
}

Test(heap_map, volatile_crash_is_rebuilt_by_a_volatile_open)
{
	crash_then_open("v2v", NULL, NULL);
}

/* A durable-map process leaves a freed large block's desc behind; the
 * volatile map must not (layout.h), so entering it clears such descs. */
Test(heap_map, entering_a_volatile_map_clears_stale_large_descs)
{
	const char *path = new_pool("stale");
	set_gc("off");
	mnemo_pool *p = t_open(path, 0);
	void *keep = mnemo_heap_alloc(p, 64, 0, 0);
	void *big = mnemo_heap_alloc(p, 300 << 10, 0, 0);
	cr_assert(keep && big, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_heap_free(big, 0), 0);
	mnemo_pool_close(&p);
	set_gc(NULL);
	p = t_open(path, 0);
	cr_assert_eq(mnemo_heap_check(p), 0, "%s", mnemo_errormsg());
	cr_assert_eq(stats_of(p).live_blocks, 1);
	mnemo_pool_close(&p);
}

/* Double frees under the volatile map, where no durable bit can tell. */
struct remote {
	void *p;
	int rc;
};

static void *free_there(void *arg)
{
	struct remote *r = arg;
	r->rc = mnemo_heap_free(r->p, 0);
	return NULL;
}

static int free_in_thread(void *p)
{
	struct remote r = {p, 1};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, free_there, &r), 0);
	pthread_join(t, NULL);
	return r.rc;
}

Test(heap_map, double_frees_are_caught_without_durable_bits)
{
	const char *path = new_pool("dfree");
	mnemo_pool *p = t_open(path, 0);
	void *a = mnemo_heap_alloc(p, 64, 0, 0);
	void *b = mnemo_heap_alloc(p, 64, 0, 0);
	void **slot = mnemo_heap_alloc(p, sizeof(void *), 0, MNEMO_HEAP_ZERO);
	cr_assert(a && b && slot, "%s", mnemo_errormsg());
	/* by the owner, then by another thread */
	cr_assert_eq(mnemo_heap_free(a, 0), 0);
	cr_assert_eq(mnemo_heap_free(a, 0), -EINVAL);
	cr_assert_eq(free_in_thread(a), -EINVAL);
	/* by another thread twice, then by the owner */
	cr_assert_eq(free_in_thread(b), 0);
	cr_assert_eq(free_in_thread(b), -EINVAL);
	cr_assert_eq(mnemo_heap_free(b, 0), -EINVAL);
	cr_assert_eq(pmalloc_usable_size(b), 0);
	/* freed by a committed transaction, its record not yet retired */
	cr_assert_eq(mnemo_heap_alloc_to(slot, 64, 0), 0, "%s", mnemo_errormsg());
	void *c = *slot;
	cr_assert_eq(mnemo_heap_free_from(slot), 0, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_heap_free(c, 0), -EINVAL, "a deferred block freed");
	cr_assert_eq(free_in_thread(c), -EINVAL);
	/* reserved by a running transaction */
	cr_assert_eq(mnemo_tx_begin(), 0);
	void *d = mnemo_heap_alloc(p, 64, 0, 0);
	cr_assert_not_null(d);
	cr_assert_eq(free_in_thread(d), -EINVAL, "a reserved block freed");
	mnemo_tx_abort();
	cr_assert_eq(mnemo_heap_check(p), 0, "%s", mnemo_errormsg());
	cr_assert_eq(stats_of(p).live_blocks, 1, "only the slot is live");
	mnemo_pool_close(&p);
}

/* What pmalloc(3) promises: no flush and no fence outside transactions
 * under the volatile map; one flush and one fence per allocation under
 * the durable one. */
static void count_pairs(const char *gc, uint64_t *lines, uint64_t *fences)
{
	set_gc(gc);
	const char *path = new_pool(gc ? "cntd" : "cntv");
	mnemo_pool *p = t_open(path, 0);
	pfree(mnemo_heap_alloc(p, 64, 0, 0)); /* the first page */
	mnemo_stat_reset();
	for (int i = 0; i < 1000; i++) {
		void *x = mnemo_heap_alloc(p, 64, 0, 0);
		cr_assert_not_null(x);
		cr_assert_eq(mnemo_heap_free(x, 0), 0);
	}
	*lines = mnemo_stat_get(MNEMO_STAT_FLUSHED_LINES);
	*fences = mnemo_stat_get(MNEMO_STAT_FENCES);
	mnemo_pool_close(&p);
	set_gc(NULL);
}

Test(heap_map, flushes_and_fences_per_pair)
{
	uint64_t l, f;
	count_pairs(NULL, &l, &f);
	cr_assert(l == 0 && f == 0, "volatile map: %llu lines, %llu fences",
		  (unsigned long long)l, (unsigned long long)f);
	count_pairs("off", &l, &f);
	cr_assert(l >= 999 && l <= 1001 && f == 1000,
		  "durable map: %llu lines, %llu fences",
		  (unsigned long long)l, (unsigned long long)f);
}
