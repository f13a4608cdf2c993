/*
 * heap_crash.c -- the persistent heap crashed at every persist point under
 * the sim backend (drop, word tearing, line tearing), with the durable
 * allocation map (MNEMO_HEAP_GC=off) and the default volatile one.  After each crash the
 * reopened pool must hold exactly the published blocks of k or k+1 ops
 * (contents intact), and the heap must agree: mnemo_heap_check passes, the
 * allocated blocks are exactly the published ones (after the recovery
 * collection, or with no collection at all for transactional ops: they
 * never leak), and new allocations never return a published block.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define SEEDS 3
#define NSLOT 8

static void **slots(mnemo_pool *p)
{
	return t_region(p, "slots");
}

/* A pool with a region of NSLOT pointers and a heap already created (the
 * first segment's creation is not part of the workloads, but growth is). */
static const char *heap_pool(const char *tag, size_t pool_size)
{
	setenv("MNEMO_TX_LOG_SIZE", "128K", 1);
	const char *path = t_pool_with_region(tag, pool_size, "slots",
					      NSLOT * sizeof(void *));
	mnemo_pool *p = t_open(path, 0);
	void *b = mnemo_heap_alloc(p, 16, 0, 0);
	cr_assert_not_null(b, "%s", mnemo_errormsg());
	pfree(b);
	mnemo_pool_close(&p);
	return path;
}

static size_t size_of_op(int i)
{
	static const size_t sizes[] = {64, 24, 1000, 40000, 64, 300};
	return sizes[i % 6];
}

static unsigned char pattern(int i, size_t b)
{
	return (unsigned char)(i * 37 + b * 11 + 1);
}

/* The expected slots after k ops of a script where op i < NSLOT fills
 * slot i and op NSLOT + j empties slot 2j. */
static bool slot_live(int k, int s)
{
	return s < k && !(s % 2 == 0 && k > NSLOT + s / 2);
}

static bool contents_ok(const unsigned char *b, int i)
{
	for (size_t x = 0; x < size_of_op(i); x += 7)
		if (b[x] != pattern(i, x))
			return false;
	return true;
}

/* The heap after a crash: consistent, exactly the live slots allocated
 * (exact: leaks were collected, or there are none), no reuse. */
static void heap_agrees(mnemo_pool *p, void **sl, int live)
{
	cr_assert_eq(mnemo_heap_check(p), 0, "%s", mnemo_errormsg());
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(p, &st, sizeof(st)), 0);
	cr_assert_eq(st.live_blocks, (uint64_t)live,
		     "allocated blocks %llu, published %d (reclaimed %llu, collected %d)",
		     (unsigned long long)st.live_blocks, live,
		     (unsigned long long)st.reclaimed_blocks, st.collected);
	for (int i = 0; i < 6; i++) {
		void *q = mnemo_heap_alloc(p, size_of_op(i), 0, 0);
		cr_assert_not_null(q, "%s", mnemo_errormsg());
		for (int s = 0; s < NSLOT; s++)
			cr_assert_neq(q, sl[s], "a published block handed out");
		pfree(q);
	}
}

static bool check_script(mnemo_pool *p, int k)
{
	void **sl = slots(p);
	int live = 0;
	for (int s = 0; s < NSLOT; s++) {
		if (!slot_live(k, s)) {
			if (sl[s])
				return false;
			continue;
		}
		if (!sl[s] || pmalloc_usable_size(sl[s]) < size_of_op(s) ||
		    !contents_ok(sl[s], s))
			return false;
		live++;
	}
	heap_agrees(p, sl, live);
	return true;
}

/* ---- plain pmalloc/pfree, published by the program itself ---- */

static void plain_work(mnemo_pool *p, struct t_progress *pr)
{
	void **sl = slots(p);
	for (int i = 0; i < NSLOT + NSLOT / 2; i++) {
		T_BEGIN(pr);
		if (i < NSLOT) {
			unsigned char *b = mnemo_heap_alloc(p, size_of_op(i), 0, 0);
			cr_assert_not_null(b, "%s", mnemo_errormsg());
			for (size_t x = 0; x < size_of_op(i); x++)
				b[x] = pattern(i, x);
			mnemo_persist(b, size_of_op(i));
			cr_assert_eq(mnemo_store64((uint64_t *)&sl[i],
						   (uint64_t)b), 0);
		} else {
			int s = 2 * (i - NSLOT);
			void *b = sl[s];
			cr_assert_eq(mnemo_store64((uint64_t *)&sl[s], 0), 0);
			pfree(b);
		}
		T_END(pr);
	}
}

Test(heap_crash, plain_alloc_free_publish, .timeout = 900)
{
	unsetenv("MNEMO_HEAP_GC"); /* leaks are collected at open */
	t_crash_modes(heap_pool("plain", 16 << 20), plain_work, check_script,
		      SEEDS);
}

/* ---- the atomic forms: mnemo_heap_alloc_to / mnemo_heap_free_from ---- */

static void publish_work(mnemo_pool *p, struct t_progress *pr)
{
	void **sl = slots(p);
	for (int i = 0; i < NSLOT + NSLOT / 2; i++) {
		T_BEGIN(pr);
		if (i < NSLOT) {
			/* contents through a transaction that also publishes */
			cr_assert_eq(mnemo_tx_begin(), 0);
			unsigned char *b = mnemo_heap_alloc(p, size_of_op(i), 0, 0);
			cr_assert_not_null(b, "%s", mnemo_errormsg());
			for (size_t x = 0; x < size_of_op(i); x += 7)
				mnemo_tx_set8(b + x, pattern(i, x));
			mnemo_tx_set64((uint64_t *)&sl[i], (uint64_t)b);
			cr_assert_eq(mnemo_tx_commit(), 0, "%s",
				     mnemo_errormsg());
		} else {
			cr_assert_eq(mnemo_heap_free_from(&sl[2 * (i - NSLOT)]),
				     0, "%s", mnemo_errormsg());
		}
		T_END(pr);
	}
}

Test(heap_crash, transactional_never_leaks, .timeout = 900)
{
	/* No collection: transactional allocations must not leak at all. */
	setenv("MNEMO_HEAP_GC", "off", 1);
	t_crash_modes(heap_pool("txpub", 16 << 20), publish_work,
		      check_script, SEEDS);
	unsetenv("MNEMO_HEAP_GC");
}

/* The same under the default volatile map: the open after each crash
 * rebuilds the bits from the descs and the roots. */
Test(heap_crash, transactional_under_a_volatile_map, .timeout = 900)
{
	unsetenv("MNEMO_HEAP_GC");
	t_crash_modes(heap_pool("txvmap", 16 << 20), publish_work,
		      check_script, SEEDS);
}

/* ---- mnemo_heap_alloc_to, zeroed blocks, and growth by a segment ---- */

#define GROW_OPS 6

static void grow_work(mnemo_pool *p, struct t_progress *pr)
{
	void **sl = slots(p);
	for (int i = 0; i < GROW_OPS; i++) {
		T_BEGIN(pr);
		cr_assert_eq(mnemo_heap_alloc_to(&sl[i], 1200 << 10,
						 MNEMO_HEAP_ZERO), 0, "%s",
			     mnemo_errormsg());
		T_END(pr);
	}
}

static bool grow_check(mnemo_pool *p, int k)
{
	void **sl = slots(p);
	for (int s = 0; s < NSLOT; s++) {
		if ((s < k) != (sl[s] != NULL))
			return false;
		if (sl[s] && (pmalloc_usable_size(sl[s]) < (1200 << 10) ||
			      ((char *)sl[s])[1200 << 9] != 0))
			return false;
	}
	cr_assert_eq(mnemo_heap_check(p), 0, "%s", mnemo_errormsg());
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(p, &st, sizeof(st)), 0);
	cr_assert_eq(st.live_blocks, (uint64_t)k);
	return true;
}

Test(heap_crash, alloc_to_and_growth, .timeout = 900)
{
	setenv("MNEMO_HEAP_GC", "off", 1);
	t_crash_modes(heap_pool("grow", 24 << 20), grow_work, grow_check,
		      SEEDS);
	unsetenv("MNEMO_HEAP_GC");
}

Test(heap_crash, alloc_to_and_growth_under_a_volatile_map, .timeout = 900)
{
	unsetenv("MNEMO_HEAP_GC");
	t_crash_modes(heap_pool("growv", 24 << 20), grow_work, grow_check,
		      SEEDS);
}

/* ---- large blocks freed and their pages reused by small ones ---- */

#define LARGE_OPS 8
#define LARGE_SIZE (200 << 10)

/* ops 0-2 publish large blocks in slots 0-2; ops 3-4 free slots 0 and 1;
 * ops 5-7 publish 1000-byte blocks in slots 3-5, on the freed pages: the
 * rebuild must tell the live small pages from the dead large blocks whose
 * pages they took. */
static size_t large_size(int s)
{
	return s < 3 ? LARGE_SIZE : 1000;
}

static void large_work(mnemo_pool *p, struct t_progress *pr)
{
	void **sl = slots(p);
	for (int i = 0; i < LARGE_OPS; i++) {
		T_BEGIN(pr);
		if (i < 3 || i >= 5) {
			int s = i < 3 ? i : i - 2;
			unsigned char *b = mnemo_heap_alloc(p, large_size(s), 0, 0);
			cr_assert_not_null(b, "%s", mnemo_errormsg());
			memset(b, s + 1, large_size(s));
			mnemo_persist(b, large_size(s));
			cr_assert_eq(mnemo_store64((uint64_t *)&sl[s],
						   (uint64_t)b), 0);
		} else {
			void *b = sl[i - 3];
			cr_assert_eq(mnemo_store64((uint64_t *)&sl[i - 3], 0), 0);
			pfree(b);
		}
		T_END(pr);
	}
}

static bool large_live(int k, int s)
{
	if (s < 3)
		return k > s && !(s < 2 && k > 3 + s);
	return s < 6 && k > s + 2;
}

static bool large_check(mnemo_pool *p, int k)
{
	void **sl = slots(p);
	int live = 0;
	for (int s = 0; s < NSLOT; s++) {
		if (!large_live(k, s)) {
			if (sl[s])
				return false;
			continue;
		}
		const unsigned char *b = sl[s];
		if (!b || pmalloc_usable_size(sl[s]) < large_size(s) ||
		    b[0] != s + 1 || b[large_size(s) - 1] != s + 1)
			return false;
		live++;
	}
	heap_agrees(p, sl, live);
	return true;
}

Test(heap_crash, large_pages_reused_under_a_volatile_map, .timeout = 900)
{
	unsetenv("MNEMO_HEAP_GC");
	t_crash_modes(heap_pool("largev", 16 << 20), large_work, large_check,
		      SEEDS);
}

/* A block allocated zeroed inside a transaction reuses freed blocks that
 * still hold old bytes (0xab); the transaction publishes it.  After any
 * crash, every published block is all zero: the zeroing must be durable
 * before a commit record naming the block can be, even when an early
 * write-back (line tearing) makes the record durable before its fence. */
#define ZBLOCK 256

static const char *stale_pool(void)
{
	const char *path = heap_pool("zero", 8 << 20);
	mnemo_pool *p = t_open(path, 0);
	void *b[NSLOT];
	for (int i = 0; i < NSLOT; i++) {
		b[i] = mnemo_heap_alloc(p, ZBLOCK, 0, 0);
		cr_assert_not_null(b[i]);
		memset(b[i], 0xab, ZBLOCK);
		mnemo_persist(b[i], ZBLOCK);
	}
	for (int i = 0; i < NSLOT; i++)
		cr_assert_eq(mnemo_heap_free(b[i], 0), 0);
	mnemo_fence();
	mnemo_pool_close(&p);
	return path;
}

static void zero_work(mnemo_pool *p, struct t_progress *pr)
{
	void **sl = slots(p);
	for (int i = 0; i < NSLOT; i++) {
		T_BEGIN(pr);
		int rc = mnemo_tx_begin();
		void *b = rc ? NULL : mnemo_heap_alloc(p, ZBLOCK, 0,
						       MNEMO_HEAP_ZERO);
		if (b)
			rc = mnemo_tx_store(&sl[i], &b, sizeof(b));
		if (rc || !b || mnemo_tx_commit())
			_exit(3);
		T_END(pr);
	}
}

static bool zero_check(mnemo_pool *p, int k)
{
	void **sl = slots(p);
	for (int i = 0; i < NSLOT; i++) {
		const unsigned char *b = sl[i];
		if ((b != NULL) != (i < k))
			return false;
		for (int j = 0; b && j < ZBLOCK; j++)
			if (b[j])
				return false;
	}
	return mnemo_heap_check(p) == 0;
}

Test(heap_crash, zeroed_in_a_transaction_stays_zero, .timeout = 900)
{
	t_crash_modes(stale_pool(), zero_work, zero_check, SEEDS);
}
