/*
 * heap_unit.c -- the persistent heap (pmalloc and friends) through the C
 * API: allocations and frees inside transactions, the statistics, and the
 * pmalloc family on the default pool.  Bad input and full heaps:
 * heap_badinput.c; randomised stress: heap_stress.c (make check-stress).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap_model.h"

/* ---- transactions ----------------------------------------------------- */

/* pfree(p) that must succeed: it reports nothing on stderr. */
static void quiet_pfree(void *p)
{
	struct capture cap;
	capture_begin(&cap);
	pfree(p);
	const char *out = capture_end(&cap);
	cr_assert_eq(out[0], 0, "pfree(%p) reported: %s", p, out);
}

/* Whether the block at p (of `size`) is free: pfree says "double free",
 * and allocating blocks of that size hands it out again. */
static bool handed_out_again(mnemo_pool *pool, void *p, size_t size)
{
	enum { MAX = 4096 };
	static void *v[MAX];
	bool found = false;
	size_t n = 0;
	while (n < MAX && !found) {
		v[n] = mnemo_heap_alloc(pool, size, 0, 0);
		cr_assert_not_null(v[n], "%s", mnemo_errormsg());
		found = v[n++] == p;
	}
	for (size_t i = 0; i < n; i++)
		pfree(v[i]);
	return found;
}

static void expect_not_allocated(void *p)
{
	struct capture cap;
	capture_begin(&cap);
	errno = 0;
	pfree(p);
	int e = errno;
	capture_end(&cap);
	cr_assert_eq(e, EINVAL, "block %p should not be allocated", p);
	cr_assert_not_null(strstr(mnemo_errormsg(), "double free"), "%s",
			   mnemo_errormsg());
}

Test(heap, tx_aborted_allocation_is_undone)
{
	mnemo_pool *pool = fresh_pool("txabort", 64 * MiB);
	void *keep = mnemo_heap_alloc(pool, 100, 0, 0); /* the heap exists */
	cr_assert_not_null(keep);
	uint64_t live0 = live_blocks(pool);

	cr_assert_eq(mnemo_tx_begin(), 0);
	char *p = mnemo_heap_alloc(pool, 100, 0, 0);
	cr_assert_not_null(p, "%s", mnemo_errormsg());
	memset(p, 1, 100);
	char *l = mnemo_heap_alloc(pool, 100 * KiB, 0, MNEMO_HEAP_ZERO);
	cr_assert_not_null(l, "%s", mnemo_errormsg());
	mnemo_tx_abort();
	cr_assert_eq(mnemo_tx_depth(), 0);
	cr_assert_eq(live_blocks(pool), live0);
	assert_heap_ok(pool);
	expect_not_allocated(p);
	expect_not_allocated(l);
	cr_assert(handed_out_again(pool, p, 100));
	cr_assert(handed_out_again(pool, l, 100 * KiB));

	/* the block form */
	int rc = 1;
	char *volatile q = NULL;
	MNEMO_TX(rc) {
		q = mnemo_heap_alloc(pool, 3000, 0, 0);
		cr_assert_not_null(q, "%s", mnemo_errormsg());
		mnemo_tx_abort();
	}
	cr_assert_eq(rc, -ECANCELED);
	cr_assert_eq(live_blocks(pool), live0);
	assert_heap_ok(pool);
	expect_not_allocated(q);
	cr_assert(handed_out_again(pool, q, 3000));

	/* a commit that fails (the transaction also wrote libmnemo's
	 * metadata) */
	cr_assert_eq(mnemo_tx_begin(), 0);
	p = mnemo_heap_alloc(pool, 100, 0, 0);
	cr_assert_not_null(p, "%s", mnemo_errormsg());
	mnemo_tx_set64((uint64_t *)((char *)mnemo_pool_base(pool) + 4096), 1);
	cr_assert_eq(mnemo_tx_commit(), -EINVAL);
	cr_assert_eq(live_blocks(pool), live0);
	assert_heap_ok(pool);
	expect_not_allocated(p);
	cr_assert(handed_out_again(pool, p, 100));

	/* and one that commits */
	cr_assert_eq(mnemo_tx_begin(), 0);
	p = mnemo_heap_alloc(pool, 100, 0, 0);
	cr_assert_not_null(p, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_tx_store(p, "hello", 6), 0);
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(live_blocks(pool), live0 + 1);
	cr_assert_str_eq(p, "hello");
	assert_heap_ok(pool);
	pfree(p);
	pfree(keep);
	cr_assert_eq(live_blocks(pool), live0 - 1);
	mnemo_pool_close(&pool);
}

Test(heap, tx_free_takes_effect_at_commit)
{
	mnemo_pool *pool = fresh_pool("txfree", 64 * MiB);
	char *p = mnemo_heap_alloc(pool, 500, 0, 0);
	char *l = mnemo_heap_alloc(pool, 70 * KiB, 0, 0);
	cr_assert(p && l, "%s", mnemo_errormsg());
	fill_range(p, 1, 0, 500);
	fill_range(l, 2, 0, 70 * KiB);
	uint64_t live0 = live_blocks(pool);

	/* aborted: still allocated, contents intact */
	cr_assert_eq(mnemo_tx_begin(), 0);
	quiet_pfree(p);
	quiet_pfree(l);
	cr_assert_eq(mnemo_tx_status(), 0);
	mnemo_tx_abort();
	cr_assert_eq(live_blocks(pool), live0);
	assert_heap_ok(pool);
	cr_assert_eq(check_range(p, 1, 0, 500), SIZE_MAX);
	cr_assert_eq(check_range(l, 2, 0, 70 * KiB), SIZE_MAX);
	cr_assert_geq(pmalloc_usable_size(p), 500);

	/* a second pfree of the same block in one transaction is a double
	 * free; the transaction goes on */
	cr_assert_eq(mnemo_tx_begin(), 0);
	quiet_pfree(p);
	struct capture cap;
	capture_begin(&cap);
	errno = 0;
	pfree(p);
	int e = errno;
	capture_end(&cap);
	cr_assert_eq(e, EINVAL);
	cr_assert_not_null(strstr(mnemo_errormsg(), "double free"), "%s",
			   mnemo_errormsg());
	cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
	cr_assert_eq(live_blocks(pool), live0 - 1);
	assert_heap_ok(pool);
	expect_not_allocated(p);

	/* committed: freed */
	cr_assert_eq(mnemo_tx_begin(), 0);
	quiet_pfree(l);
	cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
	cr_assert_eq(live_blocks(pool), live0 - 2);
	assert_heap_ok(pool);
	expect_not_allocated(l);

	/* allocated and freed in one transaction */
	cr_assert_eq(mnemo_tx_begin(), 0);
	char *q = mnemo_heap_alloc(pool, 200, 0, 0);
	cr_assert_not_null(q, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_tx_store(q, "abc", 4), 0);
	quiet_pfree(q);
	cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
	cr_assert_eq(live_blocks(pool), live0 - 2);
	assert_heap_ok(pool);
	expect_not_allocated(q);
	cr_assert(handed_out_again(pool, q, 200));
	mnemo_pool_close(&pool);
}

/* A transaction writes a block it allocated, then frees it: the free hands
 * the block back at once (a large block's pages go back to the segment),
 * so the transaction's buffered writes must not land in it at commit --
 * by then another thread may own those bytes. */
struct other_alloc {
	mnemo_pool *pool;
	void *target;
	void *got[64];
	int n;
};

static void *alloc_until_target(void *arg)
{
	struct other_alloc *o = arg;
	for (o->n = 0; o->n < 64; o->n++) {
		char *p = mnemo_heap_alloc(o->pool, 100 * KiB, 0, 0);
		if (!p)
			break;
		memset(p, 0x55, 100 * KiB);
		o->got[o->n] = p;
		if (p == o->target) {
			o->n++;
			break;
		}
	}
	return NULL;
}

Test(heap, tx_write_then_free_leaves_the_freed_block_alone)
{
	mnemo_pool *pool = fresh_pool("txwf", 64 * MiB);
	void *warm = mnemo_heap_alloc(pool, 100, 0, 0);
	cr_assert_not_null(warm);
	cr_assert_eq(mnemo_tx_begin(), 0);
	char *l = mnemo_heap_alloc(pool, 100 * KiB, 0, 0);
	cr_assert_not_null(l, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_tx_memset(l, 0xaa, 100 * KiB), 0);
	quiet_pfree(l);
	/* meanwhile another thread allocates (outside any transaction) */
	struct other_alloc o = {pool, l, {0}, 0};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, alloc_until_target, &o), 0);
	pthread_join(th, NULL);
	cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
	cr_assert_gt(o.n, 0, "the other thread could not allocate");
	for (int i = 0; i < o.n; i++) {
		const unsigned char *p = o.got[i];
		for (size_t k = 0; k < 100 * KiB; k++)
			cr_assert_eq(p[k], 0x55, "block %p of another thread "
				     "(the freed block %s) was overwritten at "
				     "byte %zu by the committing transaction",
				     (void *)p, p == (void *)l ? "reused" : "not reused", k);
	}
	cr_assert_eq(live_blocks(pool), 1 + (uint64_t)o.n);
	assert_heap_ok(pool);
	mnemo_pool_close(&pool);
}

Test(heap, alloc_to_and_free_from)
{
	const char *path = t_pool_with_region("pub", 64 * MiB, "slots", 4096);
	mnemo_pool *pool = t_open(path, 0);
	void **slot = t_region(pool, "slots");
	uint64_t live0 = live_blocks(pool);

	cr_assert_eq(mnemo_heap_alloc_to(&slot[0], 300, MNEMO_HEAP_ZERO), 0,
		     "%s", mnemo_errormsg());
	char *p = slot[0];
	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % 16, 0);
	cr_assert_geq(pmalloc_usable_size(p), 300);
	cr_assert_eq(first_nonzero(p, 300), SIZE_MAX);
	cr_assert_eq(live_blocks(pool), live0 + 1);
	fill_range(p, 9, 0, 300);
	cr_assert_eq(mnemo_heap_alloc_to(&slot[1], 100 * KiB, 0), 0, "%s",
		     mnemo_errormsg());
	cr_assert_not_null(slot[1]);
	cr_assert_eq(live_blocks(pool), live0 + 2);
	assert_heap_ok(pool);

	/* inside a transaction that aborts: neither the slot nor the block */
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_heap_alloc_to(&slot[2], 64, 0), 0, "%s",
		     mnemo_errormsg());
	void *inner = (void *)(uintptr_t)mnemo_tx_get64((uint64_t *)&slot[2]);
	cr_assert_not_null(inner, "the transaction sees its own store");
	cr_assert_eq(mnemo_tx_depth(), 1);
	mnemo_tx_abort();
	cr_assert_null(slot[2]);
	cr_assert_eq(live_blocks(pool), live0 + 2);
	assert_heap_ok(pool);
	expect_not_allocated(inner);
	/* ... and one that commits */
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_heap_alloc_to(&slot[2], 64, 0), 0, "%s",
		     mnemo_errormsg());
	cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
	cr_assert_not_null(slot[2]);
	cr_assert_eq(live_blocks(pool), live0 + 3);

	/* free_from */
	cr_assert_eq(mnemo_heap_free_from(&slot[0]), 0, "%s", mnemo_errormsg());
	cr_assert_null(slot[0]);
	cr_assert_eq(live_blocks(pool), live0 + 2);
	expect_not_allocated(p);
	cr_assert_eq(mnemo_heap_free_from(&slot[1]), 0, "%s", mnemo_errormsg());
	cr_assert_null(slot[1]);
	cr_assert_eq(mnemo_heap_free_from(&slot[2]), 0, "%s", mnemo_errormsg());
	cr_assert_null(slot[2]);
	cr_assert_eq(live_blocks(pool), live0);
	cr_assert_eq(mnemo_heap_free_from(&slot[0]), 0, "a NULL slot");
	assert_heap_ok(pool);
	/* free_from of a slot holding a foreign pointer: an error, the slot
	 * keeps its value */
	uint64_t on_stack = 0;
	slot[3] = &on_stack;
	cr_assert_eq(mnemo_heap_free_from(&slot[3]), -EINVAL);
	cr_assert_eq(slot[3], (void *)&on_stack);
	slot[3] = NULL;

	/* dst or src outside any pool; bad flags */
	void *local = NULL;
	cr_assert_eq(mnemo_heap_alloc_to(&local, 64, 0), -EINVAL);
	cr_assert_null(local);
	cr_assert_eq(mnemo_heap_alloc_to(NULL, 64, 0), -EINVAL);
	cr_assert_eq(mnemo_heap_alloc_to(&slot[4], 64, 4), -EINVAL);
	cr_assert_null(slot[4]);
	cr_assert_eq(mnemo_heap_free_from(&local), -EINVAL);
	cr_assert_eq(mnemo_tx_depth(), 0);
	cr_assert_eq(live_blocks(pool), live0);
	assert_heap_ok(pool);
	mnemo_pool_close(&pool);

	/* the published pointer survives a reopen */
	pool = t_open(path, 0);
	slot = t_region(pool, "slots");
	cr_assert_eq(mnemo_heap_alloc_to(&slot[5], 1000, 0), 0, "%s",
		     mnemo_errormsg());
	p = slot[5];
	fill_range(p, 3, 0, 1000);
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	slot = t_region(pool, "slots");
	cr_assert_eq(slot[5], (void *)p);
	cr_assert_eq(check_range(p, 3, 0, 1000), SIZE_MAX);
	cr_assert_eq(live_blocks(pool), live0 + 1);
	mnemo_pool_close(&pool);
}

Test(heap, tx_allocating_in_one_pool_and_writing_another_fails)
{
	const char *pa = t_pool_with_region("xa", 64 * MiB, "slots", 4096);
	const char *pb = t_pool_with_region("xb", 16 * MiB, "data", 4096);
	mnemo_pool *a = t_open(pa, 0), *b = t_open(pb, 0);
	void **slot = t_region(a, "slots");
	char *data = t_region(b, "data");
	char *keep = mnemo_heap_alloc(a, 400, 0, 0);
	cr_assert_not_null(keep, "%s", mnemo_errormsg());
	fill_range(keep, 4, 0, 400);
	uint64_t live0 = live_blocks(a);

	/* allocate from A, then write B */
	cr_assert_eq(mnemo_tx_begin(), 0);
	void *p = mnemo_heap_alloc(a, 100, 0, 0);
	cr_assert_not_null(p, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_tx_store(data, "x", 1), -EXDEV);
	cr_assert_eq(mnemo_tx_commit(), -EXDEV);
	cr_assert_eq(data[0], 0);
	cr_assert_eq(live_blocks(a), live0);
	assert_heap_ok(a);
	expect_not_allocated(p);

	/* write B, then allocate from A */
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(data, "y", 1), 0);
	errno = 0;
	cr_assert_null(mnemo_heap_alloc(a, 100, 0, 0));
	cr_assert_eq(errno, EXDEV, "errno %d", errno);
	cr_assert_eq(mnemo_tx_commit(), -EXDEV);
	cr_assert_eq(data[0], 0);
	cr_assert_eq(live_blocks(a), live0);

	/* write B, then publish a block of A */
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(data, "z", 1), 0);
	cr_assert_eq(mnemo_heap_alloc_to(&slot[0], 64, 0), -EXDEV);
	cr_assert_eq(mnemo_tx_commit(), -EXDEV);
	cr_assert_null(slot[0]);
	cr_assert_eq(data[0], 0);
	cr_assert_eq(live_blocks(a), live0);

	/* write B, then free a block of A: it stays allocated */
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(data, "w", 1), 0);
	struct capture cap;
	capture_begin(&cap);
	pfree(keep);
	capture_end(&cap);
	cr_assert_eq(mnemo_tx_commit(), -EXDEV);
	cr_assert_eq(live_blocks(a), live0);
	cr_assert_eq(check_range(keep, 4, 0, 400), SIZE_MAX);
	assert_heap_ok(a);
	assert_heap_ok(b);
	pfree(keep);
	cr_assert_eq(live_blocks(a), live0 - 1);
	mnemo_pool_close(&a);
	mnemo_pool_close(&b);
}

/* ---- statistics ------------------------------------------------------- */

enum { MAX_CLASSES = 64 };

/* The size classes of pool's heap into cl; returns their number. */
static int classes_of(mnemo_pool *pool, struct mnemo_heap_class *cl)
{
	int n = mnemo_heap_classes(pool, cl, MAX_CLASSES);
	cr_assert(n > 0 && n <= MAX_CLASSES, "%d: %s", n, mnemo_errormsg());
	return n;
}

static int class_index(const struct mnemo_heap_class *cl, int n,
		       size_t usable)
{
	for (int i = 0; i < n; i++)
		if (cl[i].block_size == usable)
			return i;
	return -1;
}

Test(heap, stats_are_exact)
{
	mnemo_pool *pool = fresh_pool("stats", 64 * MiB);
	struct mnemo_heap_stats st = stats_of(pool);
	struct mnemo_heap_class cl[MAX_CLASSES];
	int ncl = classes_of(pool, cl);
	cr_assert_eq(st.live_blocks, 0);
	cr_assert_eq(cl[0].block_size, 16);
	for (int i = 1; i < ncl; i++)
		cr_assert_gt(cl[i].block_size, cl[i - 1].block_size);
	cr_assert_eq(cl[ncl - 1].block_size, 32768);

	struct {
		size_t size, n;
	} spec[] = {{16, 10}, {100, 7}, {1000, 5}, {32768, 3},
		    {40000, 2}, {200000, 1}};
	enum { NSPEC = sizeof(spec) / sizeof(spec[0]) };
	void *blk[NSPEC][10];
	size_t usable[NSPEC];
	uint64_t exp_live = 0, exp_bytes = 0, exp_large = 0, exp_pages = 0;
	for (int s = 0; s < NSPEC; s++) {
		for (size_t k = 0; k < spec[s].n; k++) {
			blk[s][k] = mnemo_heap_alloc(pool, spec[s].size, 0, 0);
			cr_assert_not_null(blk[s][k], "%s", mnemo_errormsg());
		}
		usable[s] = pmalloc_usable_size(blk[s][0]);
		exp_live += spec[s].n;
		exp_bytes += spec[s].n * usable[s];
		if (spec[s].size > LARGE_MIN) {
			exp_large += spec[s].n;
			exp_pages += spec[s].n * usable[s];
		} else {
			size_t per = 64 * KiB / usable[s];
			exp_pages += (spec[s].n + per - 1) / per * 64 * KiB;
		}
	}
	cr_assert_eq(usable[0], 16);
	cr_assert_eq(usable[1], 112);
	cr_assert_eq(usable[4], 64 * KiB, "40000 bytes: one 64 KiB page");
	cr_assert_eq(usable[5], 256 * KiB, "200000 bytes: four pages");
	st = stats_of(pool);
	classes_of(pool, cl);
	cr_assert_eq(st.live_blocks, exp_live);
	cr_assert_eq(st.live_bytes, exp_bytes, "live_bytes %llu, expected %llu",
		     (unsigned long long)st.live_bytes,
		     (unsigned long long)exp_bytes);
	cr_assert_eq(st.large_blocks, exp_large);
	cr_assert_eq(st.page_bytes, exp_pages, "page_bytes %llu, expected %llu",
		     (unsigned long long)st.page_bytes,
		     (unsigned long long)exp_pages);
	cr_assert_geq(st.heap_bytes, st.page_bytes);
	double frag = 1.0 - (double)exp_bytes / (double)exp_pages;
	cr_assert_float_eq(st.fragmentation, frag, 1e-9);
	for (int c = 0; c < ncl; c++) {
		uint64_t want = 0;
		for (int s = 0; s < NSPEC; s++)
			if (spec[s].size <= LARGE_MIN &&
			    usable[s] == cl[c].block_size)
				want += spec[s].n;
		cr_assert_eq(cl[c].blocks, want, "class %d (%llu bytes): "
			     "%llu blocks, expected %llu", c,
			     (unsigned long long)cl[c].block_size,
			     (unsigned long long)cl[c].blocks,
			     (unsigned long long)want);
		if (want)
			cr_assert_geq(cl[c].pages, 1);
	}
	int c32k = class_index(cl, ncl, 32768);
	cr_assert_eq(cl[c32k].pages, 2, "3 blocks of 32 KiB: 2 pages");

	/* Frees are counted at once. */
	pfree(blk[0][0]);
	pfree(blk[0][1]);
	pfree(blk[5][0]);
	pfree(blk[3][2]);
	st = stats_of(pool);
	classes_of(pool, cl);
	cr_assert_eq(st.live_blocks, exp_live - 4);
	cr_assert_eq(st.large_blocks, exp_large - 1);
	cr_assert_eq(st.live_bytes, exp_bytes - 2 * 16 - 256 * KiB - 32768);
	cr_assert_eq(cl[0].blocks, 8);
	cr_assert_eq(cl[c32k].blocks, 2);
	assert_heap_ok(pool);
	cr_assert_eq(st.collected, 0);

	/* A block's usable size is the smallest class that holds it. */
	static const size_t probe[] = {1, 16, 17, 100, 128, 129, 1000, 4097,
				       20000, 32767, 32768};
	for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
		void *p = mnemo_heap_alloc(pool, probe[i], 0, 0);
		cr_assert_not_null(p);
		size_t us = pmalloc_usable_size(p);
		int c = class_index(cl, ncl, us);
		cr_assert_geq(c, 0, "usable size %zu of a %zu-byte block is "
			      "no class", us, probe[i]);
		cr_assert_geq(us, probe[i]);
		cr_assert(c == 0 || cl[c - 1].block_size < probe[i],
			  "%zu bytes got class %llu, %llu would do", probe[i],
			  (unsigned long long)cl[c].block_size,
			  (unsigned long long)cl[c - 1].block_size);
		pfree(p);
	}
	mnemo_pool_close(&pool);
}

/* mnemosyne.h: page_bytes counts "pages holding live blocks" and the
 * fragmentation of an empty heap is 0. */
Test(heap, stats_of_an_emptied_heap)
{
	mnemo_pool *pool = fresh_pool("empty", 64 * MiB);
	static const size_t sizes[] = {100, 5000, 100000};
	void *p[3];
	for (int i = 0; i < 3; i++) {
		p[i] = mnemo_heap_alloc(pool, sizes[i], 0, 0);
		cr_assert_not_null(p[i], "%s", mnemo_errormsg());
	}
	cr_assert_gt(stats_of(pool).page_bytes, 0);
	for (int i = 0; i < 3; i++)
		pfree(p[i]);
	struct mnemo_heap_stats st = stats_of(pool);
	cr_assert_eq(st.live_blocks, 0);
	cr_assert_eq(st.live_bytes, 0);
	cr_assert_eq(st.large_blocks, 0);
	struct mnemo_heap_class cl[MAX_CLASSES];
	int ncl = classes_of(pool, cl);
	for (int c = 0; c < ncl; c++)
		cr_assert_eq(cl[c].blocks, 0);
	cr_assert_gt(st.heap_bytes, 0);
	cr_assert_eq(st.page_bytes, 0, "no page holds a live block, yet "
		     "page_bytes is %llu", (unsigned long long)st.page_bytes);
	cr_assert_float_eq(st.fragmentation, 0.0, 1e-12, "fragmentation "
			   "of an empty heap is %f", st.fragmentation);
	assert_heap_ok(pool);
	mnemo_pool_close(&pool);
}

/* ---- the default pool ------------------------------------------------- */

Test(heap, pmalloc_family_on_the_default_pool)
{
	setenv("MNEMO_POOL", t_path("default"), 1);
	setenv("MNEMO_POOL_SIZE", "32M", 1);
	char *p = pmalloc(100);
	cr_assert_not_null(p, "%s", mnemo_errormsg());
	mnemo_pool *pool = mnemo_default_pool();
	cr_assert_not_null(pool);
	char *base = mnemo_pool_base(pool);
	cr_assert(p >= base && p < base + mnemo_pool_size(pool));
	cr_assert_eq((uintptr_t)p % 16, 0);
	cr_assert_geq(pmalloc_usable_size(p), 100);
	memset(p, 0xff, 100);
	pfree(p);
	char *z = pcalloc(10, 10);
	cr_assert_not_null(z, "%s", mnemo_errormsg());
	cr_assert_eq(first_nonzero(z, 100), SIZE_MAX, "pcalloc zeroes");
	errno = 0;
	cr_assert_null(pcalloc(SIZE_MAX / 2, 4));
	cr_assert_eq(errno, ENOMEM);
	char *a = paligned_alloc(4096, 10);
	cr_assert_not_null(a, "%s", mnemo_errormsg());
	cr_assert_eq((uintptr_t)a % 4096, 0);
	errno = 0;
	cr_assert_null(paligned_alloc(48, 10));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(paligned_alloc(0, 10));
	cr_assert_eq(errno, EINVAL);
	char *r = prealloc(NULL, 50);
	cr_assert_not_null(r, "%s", mnemo_errormsg());
	cr_assert(r >= base && r < base + mnemo_pool_size(pool));
	fill_range(r, 8, 0, 50);
	r = prealloc(r, 5000);
	cr_assert_not_null(r, "%s", mnemo_errormsg());
	cr_assert_eq(check_range(r, 8, 0, 50), SIZE_MAX);
	cr_assert_eq(live_blocks(pool), 3);
	cr_assert_null(prealloc(r, 0));
	expect_not_allocated(r);
	pfree(z);
	pfree(a);
	cr_assert_eq(live_blocks(pool), 0);
	assert_heap_ok(pool);
	mnemo_pool_close(&pool);
}

/* A block freed by a committed transaction stays out of use until the
 * transaction's record is retired: replaying the record after a crash
 * clears the block's bit, which must not belong to a new owner by then. */
Test(heap, tx_freed_block_waits_for_truncation)
{
	mnemo_pool *pool = fresh_pool("defer", 64 << 20);
	void **slot = mnemo_heap_alloc(pool, sizeof(void *), 0, MNEMO_HEAP_ZERO);
	cr_assert_not_null(slot);
	cr_assert_eq(mnemo_heap_alloc_to(slot, 64, 0), 0, "%s", mnemo_errormsg());
	void *x = *slot;
	cr_assert_eq(mnemo_heap_free_from(slot), 0, "%s", mnemo_errormsg());
	/* enough allocations to refill the thread's 64-byte pages */
	for (int i = 0; i < 3000; i++) {
		void *q = mnemo_heap_alloc(pool, 64, 0, 0);
		cr_assert_not_null(q);
		cr_assert_neq(q, x, "reused before its record was retired");
	}
	cr_assert_eq(mnemo_tx_drain(pool), 0);
	bool reused = false;
	for (int i = 0; i < 3000 && !reused; i++)
		reused = mnemo_heap_alloc(pool, 64, 0, 0) == x;
	cr_assert(reused, "never reused after the logs were drained");
	mnemo_pool_close(&pool);
}

/* Commits do not move the clock, so two may share a wv: here a thread
 * allocates a block and the main thread frees it, with nothing written in
 * common, each in its own log, the free's log (the main thread's, claimed
 * first) before the allocation's.  After a crash, recovery must replay the
 * allocation first (each wv's frees come last), or the block stays
 * allocated and unreachable. */
struct share_arg {
	mnemo_pool *pool;
	void *p;
};

static void *alloc_in_tx(void *arg)
{
	struct share_arg *a = arg;
	if (mnemo_tx_begin() != 0)
		return NULL;
	a->p = mnemo_heap_alloc(a->pool, 64, 0, 0);
	if (mnemo_tx_commit() != 0)
		a->p = NULL;
	return NULL;
}

static void share_a_wv_then_crash(const char *path)
{
	struct share_arg a = {t_open(path, 0), NULL};
	uint64_t *w = t_region(a.pool, "w");
	if (mnemo_tx_begin() != 0) /* claims log 0 */
		_exit(2);
	mnemo_tx_set64(w, 1);
	pthread_t t;
	if (mnemo_tx_commit() != 0 ||
	    pthread_create(&t, NULL, alloc_in_tx, &a) != 0 ||
	    pthread_join(t, NULL) != 0 || !a.p || mnemo_tx_begin() != 0)
		_exit(3);
	mnemo_heap_free(a.p, 0);
	if (mnemo_tx_commit() != 0)
		_exit(4);
	printf("%p\n", a.p);
	fflush(stdout);
	_exit(0); /* a crash: no close, no truncation */
}

Test(heap, alloc_and_free_sharing_a_wv_replay_in_order)
{
	/* below the stripe table's 16 MiB period: no stripe in common */
	const char *path = t_pool_with_region("sharewv", 8 * MiB, "w", 64);
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		share_a_wv_then_crash(path);
	}
	close(fds[1]);
	char buf[64] = {0};
	cr_assert_gt(read(fds[0], buf, sizeof buf - 1), 0);
	close(fds[0]);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %#x", st);
	void *p = NULL;
	cr_assert_eq(sscanf(buf, "%p", &p), 1);
	mnemo_pool *pool = t_open(path, 0);
	struct mnemo_heap_stats hs;
	cr_assert_eq(mnemo_heap_stats(pool, &hs, sizeof hs), 0);
	cr_assert_eq(hs.reclaimed_blocks, 0, "the freed block was leaked");
	cr_assert_eq(hs.live_blocks, 0, "%llu blocks live",
		     (unsigned long long)hs.live_blocks);
	expect_not_allocated(p);
	mnemo_pool_close(&pool);
}

/* MNEMO_HEAP_NOTX: an allocation made inside a transaction that the
 * transaction's abort does not take back, and a free that takes effect at
 * once (what the interposer does for libc's mallocs between a begin and
 * an abort). */
Test(heap, notx_ignores_the_open_transaction)
{
	mnemo_pool *pool = fresh_pool("notx", 64 * MiB);
	char *kept = mnemo_heap_alloc(pool, 64, 0, 0);
	cr_assert_not_null(kept, "%s", mnemo_errormsg());
	uint64_t live = live_blocks(pool);
	cr_assert_eq(mnemo_tx_begin(), 0);
	char *a = mnemo_heap_alloc(pool, 64, 0, MNEMO_HEAP_NOTX);
	char *t = mnemo_heap_alloc(pool, 64, 0, 0);
	cr_assert(a && t, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_heap_free(kept, MNEMO_HEAP_NOTX), 0);
	mnemo_tx_abort();
	cr_assert_eq(live_blocks(pool), live, "a stays, t vanishes, kept is "
		     "freed: one block allocated as before");
	cr_assert_gt(pmalloc_usable_size(a), 0, "the abort freed a");
	cr_assert_eq(mnemo_heap_free(kept, 0), -EINVAL, "kept was not freed");
	memset(a, 7, 64);
	char *b = mnemo_heap_alloc(pool, 64, 0, 0);
	cr_assert(b && b != a, "a handed out twice");
	cr_assert_eq(mnemo_heap_free(a, MNEMO_HEAP_NOTX), 0);
	cr_assert_eq(mnemo_heap_free(a, 0), -EINVAL, "double free accepted");
	cr_assert_eq(mnemo_heap_free(b, 4), -EINVAL, "bad flags accepted");
	cr_assert_eq(mnemo_heap_free(b, 0), 0);
	cr_assert_eq(mnemo_heap_free(NULL, 0), 0);
	assert_heap_ok(pool);
	mnemo_pool_close(&pool);
}

/* ---- progress reports --------------------------------------------------- */

struct stage_log {
	char stage[8][8]; /* the stages in the order they began */
	int nstages, calls, bad;
	uint64_t last_done, last_total;
};

/* Each stage: first done 0, done never falls or passes total, the same
 * total throughout, last done == total (checked when the next begins). */
static void on_progress(const char *stage, uint64_t done, uint64_t total,
			void *arg)
{
	struct stage_log *l = arg;
	int cur = l->nstages - 1;
	l->calls++;
	if (cur < 0 || strcmp(l->stage[cur], stage) != 0) {
		if (cur >= 0 && l->last_done != l->last_total)
			l->bad++;
		if (done != 0 || l->nstages == 8) {
			l->bad++;
			return;
		}
		snprintf(l->stage[l->nstages++], 8, "%s", stage);
	} else if (done < l->last_done || total != l->last_total) {
		l->bad++;
	}
	if (done > total)
		l->bad++;
	l->last_done = done;
	l->last_total = total;
}

Test(heap, long_operations_report_their_progress)
{
	char path[512];
	snprintf(path, sizeof(path), "%s", t_path("progress"));
	t_create(path, 64 * MiB);
	mnemo_pool *pool = t_open(path, 0);
	void **list = NULL;
	for (int i = 0; i < 20000; i++) { /* reachable: the collection scans */
		void **b = mnemo_heap_alloc(pool, 48 + i % 200, 0, 0);
		cr_assert_not_null(b, "%s", mnemo_errormsg());
		b[0] = list;
		list = b;
	}
	cr_assert_eq(mnemo_root_set(pool, "list", list), 0);
	struct stage_log l = {0};
	mnemo_progress_set(on_progress, &l);
	cr_assert_eq(mnemo_heap_check(pool), 0, "%s", mnemo_errormsg());
	cr_assert_eq(l.nstages, 1);
	cr_assert_str_eq(l.stage[0], "check");
	cr_assert_eq(l.last_done, l.last_total);
	cr_assert_gt(l.calls, 2, "a report between the first and the last");
	cr_assert_leq(l.calls, 70, "about every 1/64: %d calls", l.calls);
	mnemo_pool_close(&pool);

	memset(&l, 0, sizeof(l));
	setenv("MNEMO_HEAP_GC", "always", 1);
	cr_assert_eq(mnemo_pool_open(path, 0, &pool), 0, "%s",
		     mnemo_errormsg());
	unsetenv("MNEMO_HEAP_GC");
	cr_assert_eq(l.nstages, 2);
	cr_assert_str_eq(l.stage[0], "mark");
	cr_assert_str_eq(l.stage[1], "sweep");
	cr_assert_eq(l.last_done, l.last_total);
	cr_assert_eq(l.bad, 0, "%d reports out of order", l.bad);
	/* the mark scanned every block: its total covers them */
	cr_assert_eq(live_blocks(pool), 20000);
	mnemo_progress_set(NULL, NULL);
	int calls = l.calls;
	cr_assert_eq(mnemo_heap_check(pool), 0, "%s", mnemo_errormsg());
	cr_assert_eq(l.calls, calls, "no report after the hook is removed");
	mnemo_pool_close(&pool);
}
