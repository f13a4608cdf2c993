/*
 * heap_badinput.c -- the persistent heap refuses bad input (double frees,
 * interior and foreign pointers, freed blocks, bad arguments) with EINVAL,
 * a message naming the problem and the heap as it was, and a full heap or
 * pool with ENOMEM and a message saying which limit was reached.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap_model.h"

/* ---- bad input -------------------------------------------------------- */

/* A pool with one live "witness" block that no bad call may disturb. */
struct bad_ctx {
	mnemo_pool *pool;
	char *witness;
	uint64_t live;
};

static void bad_setup(struct bad_ctx *c, const char *tag)
{
	c->pool = fresh_pool(tag, 64 * MiB);
	c->witness = mnemo_heap_alloc(c->pool, 1000, 0, 0);
	cr_assert_not_null(c->witness, "%s", mnemo_errormsg());
	fill_range(c->witness, 77, 0, 1000);
	c->live = live_blocks(c->pool);
}

/* After a rejected call: errno EINVAL, a message naming the problem, and
 * the heap as it was. */
static void expect_rejected(struct bad_ctx *c, const char *what,
			    const char *needle)
{
	int e = errno;
	const char *msg = mnemo_errormsg();
	cr_assert_eq(e, EINVAL, "%s: errno %d (%s), expected EINVAL", what, e,
		     strerror(e));
	cr_assert_not_null(strstr(msg, needle), "%s: message \"%s\" does not "
			   "mention \"%s\"", what, msg, needle);
	cr_assert_eq(live_blocks(c->pool), c->live, "%s changed the number "
		     "of live blocks", what);
	cr_assert_eq(check_range(c->witness, 77, 0, 1000), SIZE_MAX,
		     "%s changed a live block", what);
	int rc = mnemo_heap_check(c->pool);
	cr_assert_eq(rc, 0, "%s: heap check: %s", what, mnemo_errormsg());
}

/* pfree(p) must be rejected with `needle` in the message, and say so on
 * stderr. */
static void bad_free(struct bad_ctx *c, void *p, const char *what,
		     const char *needle)
{
	struct capture cap;
	capture_begin(&cap);
	errno = 0;
	pfree(p);
	int e = errno;
	const char *out = capture_end(&cap);
	errno = e;
	expect_rejected(c, what, needle);
	cr_assert_not_null(strstr(out, needle), "%s: stderr \"%s\" does not "
			   "mention \"%s\"", what, out, needle);
}

Test(heap, double_free_is_rejected)
{
	struct bad_ctx c;
	bad_setup(&c, "dfree");
	char *s = mnemo_heap_alloc(c.pool, 100, 0, 0);
	char *l = mnemo_heap_alloc(c.pool, 200 * KiB, 0, 0);
	cr_assert(s && l, "%s", mnemo_errormsg());
	pfree(s);
	pfree(l);
	bad_free(&c, s, "double free of a small block", "double free");
	bad_free(&c, l, "double free of a large block", "double free");
	/* The blocks are still usable afterwards. */
	void *again = mnemo_heap_alloc(c.pool, 200 * KiB, 0, 0);
	cr_assert_not_null(again, "%s", mnemo_errormsg());
	pfree(again);
	cr_assert_eq(live_blocks(c.pool), c.live);
	mnemo_pool_close(&c.pool);
}

Test(heap, interior_pointers_are_rejected)
{
	struct bad_ctx c;
	bad_setup(&c, "interior");
	char *s = mnemo_heap_alloc(c.pool, 100, 0, 0);
	char *l = mnemo_heap_alloc(c.pool, 200 * KiB, 0, 0);
	cr_assert(s && l, "%s", mnemo_errormsg());
	fill_range(s, 5, 0, 100);
	fill_range(l, 6, 0, 200 * KiB);
	c.live += 2;
	bad_free(&c, s + 16, "pfree(small block + 16)", "inside");
	bad_free(&c, s + 1, "pfree(small block + 1)", "inside");
	bad_free(&c, c.witness + 8, "pfree(witness + 8)", "inside");
	bad_free(&c, l + 64, "pfree(large block + 64)", "inside");
	bad_free(&c, l + 100 * KiB, "pfree(large block + 100K)", "inside");
	cr_assert_eq(check_range(s, 5, 0, 100), SIZE_MAX);
	cr_assert_eq(check_range(l, 6, 0, 200 * KiB), SIZE_MAX);
	/* prealloc of an interior pointer */
	errno = 0;
	cr_assert_null(prealloc(l + 100 * KiB, 300 * KiB));
	expect_rejected(&c, "prealloc(large block + 100K)", "inside");
	errno = 0;
	cr_assert_null(prealloc(s + 32, 10));
	expect_rejected(&c, "prealloc(small block + 32)", "inside");
	cr_assert_eq(pmalloc_usable_size(s + 16), 0);
	/* The real blocks are untouched and free normally. */
	cr_assert_eq(check_range(s, 5, 0, 100), SIZE_MAX);
	cr_assert_eq(check_range(l, 6, 0, 200 * KiB), SIZE_MAX);
	pfree(s);
	pfree(l);
	cr_assert_eq(live_blocks(c.pool), c.live - 2);
	mnemo_pool_close(&c.pool);
}

Test(heap, foreign_pointers_are_rejected)
{
	struct bad_ctx c;
	bad_setup(&c, "foreign");
	uint64_t on_stack[4] = {0};
	char *m = malloc(64);
	cr_assert_not_null(m);
	void *reg;
	cr_assert_eq(mnemo_region_create(c.pool, "plain", 64 * KiB, &reg), 0,
		     "%s", mnemo_errormsg());
	bad_free(&c, on_stack, "pfree(stack address)", "not a block");
	bad_free(&c, m, "pfree(malloc'ed address)", "not a block");
	bad_free(&c, reg, "pfree(a region)", "not a block");
	bad_free(&c, (char *)reg + 4096, "pfree(inside a region)",
		 "not a block");
	bad_free(&c, mnemo_pool_base(c.pool), "pfree(the pool header)",
		 "not a block");
	cr_assert_eq(pmalloc_usable_size(m), 0);
	cr_assert_eq(pmalloc_usable_size(reg), 0);
	/* prealloc of foreign pointers */
	errno = 0;
	cr_assert_null(prealloc(m, 100));
	expect_rejected(&c, "prealloc(malloc'ed address)", "not a block");
	errno = 0;
	cr_assert_null(prealloc(reg, 100));
	expect_rejected(&c, "prealloc(a region)", "not a block");
	errno = 0;
	cr_assert_null(prealloc(on_stack, 10));
	expect_rejected(&c, "prealloc(stack address)", "not a block");
	/* pfree(NULL) does nothing */
	pfree(NULL);
	cr_assert_eq(live_blocks(c.pool), c.live);
	free(m);
	/* A block of a pool that was closed is foreign now. */
	char *w = c.witness;
	mnemo_pool_close(&c.pool);
	struct capture cap;
	capture_begin(&cap);
	errno = 0;
	pfree(w);
	int e = errno;
	const char *out = capture_end(&cap);
	cr_assert_eq(e, EINVAL, "pfree after the pool was closed: errno %d",
		     e);
	cr_assert_not_null(strstr(mnemo_errormsg(), "not a block"), "%s",
			   mnemo_errormsg());
	cr_assert_not_null(strstr(out, "not a block"), "stderr: %s", out);
}

/* A freed block is not a block one may realloc: prealloc must not hand it
 * back (or copy from it) as if it were allocated. */
Test(heap, prealloc_of_a_freed_block_is_rejected)
{
	struct bad_ctx c;
	bad_setup(&c, "refree");
	char *s = mnemo_heap_alloc(c.pool, 100, 0, 0);
	cr_assert_not_null(s, "%s", mnemo_errormsg());
	pfree(s);
	errno = 0;
	void *q = prealloc(s, 50);
	cr_assert_null(q, "prealloc(freed block, smaller) = %p: the freed "
		       "block was handed back as allocated", q);
	expect_rejected(&c, "prealloc(freed block, smaller)", "not allocated");
	errno = 0;
	q = prealloc(s, 5000);
	cr_assert_null(q, "prealloc(freed block, larger) = %p", q);
	expect_rejected(&c, "prealloc(freed block, larger)", "not allocated");
	mnemo_pool_close(&c.pool);
}

Test(heap, bad_allocation_arguments_are_rejected)
{
	struct bad_ctx c;
	bad_setup(&c, "badargs");
	static const size_t bad_align[] = {3, 24, 48, 100, 4097,
					   128 * KiB, 1 * MiB};
	for (size_t i = 0; i < sizeof(bad_align) / sizeof(bad_align[0]); i++) {
		errno = 0;
		void *p = mnemo_heap_alloc(c.pool, 64, bad_align[i], 0);
		cr_assert_null(p, "alignment %zu accepted", bad_align[i]);
		char what[64];
		snprintf(what, sizeof(what), "alignment %zu", bad_align[i]);
		expect_rejected(&c, what, "align");
	}
	errno = 0;
	cr_assert_null(mnemo_heap_alloc(c.pool, 64, 0, 4));
	expect_rejected(&c, "flags 4", "flags");
	errno = 0;
	cr_assert_null(mnemo_heap_alloc(c.pool, 64, 16, ~0u));
	expect_rejected(&c, "flags ~0", "flags");
	errno = 0;
	cr_assert_null(mnemo_heap_alloc(NULL, 64, 0, 0));
	expect_rejected(&c, "pool NULL", "pool");
	/* The largest alignment is fine. */
	char *p = mnemo_heap_alloc(c.pool, 10, 64 * KiB, MNEMO_HEAP_ZERO);
	cr_assert_not_null(p, "%s", mnemo_errormsg());
	cr_assert_eq((uintptr_t)p % (64 * KiB), 0);
	pfree(p);
	cr_assert_eq(live_blocks(c.pool), c.live);
	mnemo_pool_close(&c.pool);
}

Test(heap, bad_free_aborts_with_mnemo_heap_abort, .signal = SIGABRT)
{
	setenv("MNEMO_HEAP_ABORT", "1", 1);
	int x;
	pfree(&x);
	cr_assert_fail("pfree of a stack address returned");
}

/* ---- a full heap ------------------------------------------------------ */

/* Allocate blocks of `size` until the heap says no: ENOMEM and a message
 * mentioning `needle`.  Returns the count; blocks are patterned. */
static size_t fill_heap(mnemo_pool *pool, size_t size, char **v, size_t max,
			uint64_t seed, const char *needle)
{
	size_t n = 0;
	for (;;) {
		cr_assert_lt(n, max, "the heap never filled up with blocks of "
			     "%zu bytes", size);
		errno = 0;
		char *p = mnemo_heap_alloc(pool, size, 0, 0);
		if (!p)
			break;
		fill_range(p, seed + n, 0, size);
		v[n++] = p;
	}
	int e = errno;
	const char *msg = mnemo_errormsg();
	cr_assert_eq(e, ENOMEM, "heap full (%zu-byte blocks): errno %d (%s)",
		     size, e, strerror(e));
	cr_assert_not_null(strstr(msg, "full"), "message: %s", msg);
	cr_assert_not_null(strstr(msg, needle), "message \"%s\" does not "
			   "mention \"%s\"", msg, needle);
	return n;
}

static void check_blocks(char **v, size_t n, size_t size, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (v[i])
			cr_assert_eq(check_range(v[i], seed + i, 0, size),
				     SIZE_MAX, "block %zu (%p) of %zu bytes "
				     "changed", i, (void *)v[i], size);
}

Test(heap, heap_full_at_mnemo_heap_max)
{
	setenv("MNEMO_HEAP_MAX", "8M", 1);
	mnemo_pool *pool = fresh_pool("max", 64 * MiB);
	unsetenv("MNEMO_HEAP_MAX");
	static char *big[64], *small[16384];
	size_t nbig = fill_heap(pool, MiB, big, 64, 1000, "MNEMO_HEAP_MAX");
	cr_assert_geq(nbig, 4, "only %zu blocks of 1 MiB in 8 MiB", nbig);
	size_t nsmall = fill_heap(pool, 1000, small, 16384, 5000,
				  "MNEMO_HEAP_MAX");
	cr_log_info("8 MiB heap: %zu blocks of 1 MiB, then %zu of 1000 bytes",
		    nbig, nsmall);
	struct mnemo_heap_stats st = stats_of(pool);
	cr_assert_leq(st.heap_bytes, 8 * MiB);
	cr_assert_eq(st.live_blocks, nbig + nsmall);
	check_blocks(big, nbig, MiB, 1000);
	check_blocks(small, nsmall, 1000, 5000);
	assert_heap_ok(pool);
	/* Freeing one block makes room for one of its size. */
	pfree(small[nsmall / 2]);
	small[nsmall / 2] = NULL;
	char *p = mnemo_heap_alloc(pool, 1000, 0, 0);
	cr_assert_not_null(p, "after a free: %s", mnemo_errormsg());
	small[nsmall / 2] = p;
	fill_range(p, 5000 + nsmall / 2, 0, 1000);
	pfree(big[1]);
	big[1] = NULL;
	p = mnemo_heap_alloc(pool, MiB, 0, 0);
	cr_assert_not_null(p, "after freeing 1 MiB: %s", mnemo_errormsg());
	big[1] = p;
	fill_range(p, 1001, 0, MiB);
	errno = 0;
	cr_assert_null(mnemo_heap_alloc(pool, MiB, 0, 0), "full again");
	cr_assert_eq(errno, ENOMEM);
	check_blocks(big, nbig, MiB, 1000);
	check_blocks(small, nsmall, 1000, 5000);
	assert_heap_ok(pool);
	mnemo_pool_close(&pool);
}

Test(heap, pool_too_small_for_more_segments)
{
	setenv("MNEMO_POOL_MAX", "16M", 1); /* a pool that may not grow */
	mnemo_pool *pool = fresh_pool("small", 16 * MiB);
	unsetenv("MNEMO_POOL_MAX");
	static char *big[64];
	size_t n = fill_heap(pool, MiB, big, 64, 2000, "no room in the pool");
	cr_log_info("16 MiB pool: %zu blocks of 1 MiB", n);
	cr_assert_geq(n, 4);
	check_blocks(big, n, MiB, 2000);
	errno = 0;
	cr_assert_null(mnemo_heap_alloc(pool, 64 * MiB, 0, 0));
	cr_assert_eq(errno, ENOMEM);
	cr_assert_not_null(strstr(mnemo_errormsg(), "full"), "%s",
			   mnemo_errormsg());
	assert_heap_ok(pool);
	check_blocks(big, n, MiB, 2000);
	for (size_t i = 0; i < n; i++)
		pfree(big[i]);
	cr_assert_eq(live_blocks(pool), 0);
	char *p = mnemo_heap_alloc(pool, MiB, 0, 0);
	cr_assert_not_null(p, "after freeing everything: %s", mnemo_errormsg());
	pfree(p);
	assert_heap_ok(pool);
	mnemo_pool_close(&pool);
}

/* ---- what mnemo_heap_check names --------------------------------------- */

struct found {
	int n;
	uint64_t offset[4];
	char what[4][160];
};

static void note_problem(uint64_t offset, const char *what, void *arg)
{
	struct found *f = arg;
	if (f->n < 4) {
		f->offset[f->n] = offset;
		snprintf(f->what[f->n], sizeof(f->what[0]), "%s", what);
	}
	f->n++;
}

/* The durable desc word of the heap page holding block b (layout.h:
 * segment 0 starts at the first 64 KiB boundary of "mnemo.heap.0"). */
static uint64_t *desc_of(mnemo_pool *pool, const char *b)
{
	void *r;
	size_t size;
	cr_assert_eq(mnemo_region_find(pool, "mnemo.heap.0", &r, &size), 0,
		     "%s", mnemo_errormsg());
	uintptr_t s = ((uintptr_t)r + 64 * KiB - 1) & ~(uintptr_t)(64 * KiB - 1);
	cr_assert((uintptr_t)b > s && (uintptr_t)b < (uintptr_t)r + size);
	return (uint64_t *)(s + 64) + ((uintptr_t)b - s) / (64 * KiB);
}

static uint64_t page_offset(mnemo_pool *pool, const char *b)
{
	uintptr_t page = (uintptr_t)b & ~(uintptr_t)(64 * KiB - 1);
	return page - (uintptr_t)mnemo_pool_base(pool);
}

Test(heap, check_names_every_damaged_page_with_its_offset)
{
	mnemo_pool *pool = fresh_pool("checkoff", 64 * MiB);
	char *a = mnemo_heap_alloc(pool, 100, 0, 0);
	char *b = mnemo_heap_alloc(pool, 5000, 0, 0); /* another class */
	cr_assert(a && b, "%s", mnemo_errormsg());
	uint64_t *da = desc_of(pool, a), *db = desc_of(pool, b);
	cr_assert_neq(da, db, "the two classes share a page");
	uint64_t sa = *da, sb = *db;
	*da = sa + (1u << 8); /* the next size class */
	struct found f = {0};
	cr_assert_eq(mnemo_heap_check_each(pool, note_problem, &f), 1);
	cr_assert_eq(f.n, 1);
	cr_assert_eq(f.offset[0], page_offset(pool, a));
	cr_assert_not_null(strstr(f.what[0], "desc does not match"), "%s",
			   f.what[0]);
	char want[64];
	snprintf(want, sizeof(want), "(offset %#llx)",
		 (unsigned long long)page_offset(pool, a));
	cr_assert_eq(mnemo_heap_check(pool), -EUCLEAN);
	cr_assert_not_null(strstr(mnemo_errormsg(), want), "%s",
			   mnemo_errormsg());
	cr_assert_null(strstr(mnemo_errormsg(), "problems"), "%s",
		       mnemo_errormsg());

	*db = sb ^ (1u << 8);
	memset(&f, 0, sizeof(f));
	cr_assert_eq(mnemo_heap_check_each(pool, note_problem, &f), 2);
	cr_assert_eq(f.n, 2);
	cr_assert(f.offset[0] != f.offset[1]);
	cr_assert(f.offset[0] == page_offset(pool, b) ||
		  f.offset[1] == page_offset(pool, b));
	cr_assert_eq(mnemo_heap_check(pool), -EUCLEAN);
	cr_assert_not_null(strstr(mnemo_errormsg(), "the first of 2 problems"),
			   "%s", mnemo_errormsg());

	/* The check wrote nothing: put the words back and all is well. */
	*da = sa;
	*db = sb;
	cr_assert_eq(mnemo_heap_check_each(pool, note_problem, &f), 0);
	cr_assert_eq(mnemo_heap_check(pool), 0, "%s", mnemo_errormsg());
	errno = 0;
	cr_assert_eq(mnemo_heap_check_each(pool, NULL, NULL), -EINVAL);
	pfree(a);
	pfree(b);
	mnemo_pool_close(&pool);
}
