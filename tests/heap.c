/*
 * heap.c -- the persistent heap (pmalloc and friends) through the C API:
 * randomised stress against a model (one thread, across close/reopen and
 * the recovery collection, and several threads freeing each other's
 * blocks), bad input, heap-full conditions, the transactional forms and
 * the statistics.
 *
 * The model keeps every live block's address, requested and usable size
 * and the seed of its fill pattern (a function of the seed and the byte
 * offset, so a block realloc'ed to a larger size just continues it).  The
 * live blocks' usable ranges are kept in a search tree whose comparator
 * calls overlapping ranges equal: inserting a range that overlaps a live
 * block finds that block instead of inserting.
 *
 * Seeds come from t_seed(): replay a failure with MNEMO_TEST_SEED.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* tdestroy */
#endif
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <search.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define LARGE_MIN (32 * KiB) /* blocks larger than this are "large" */

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint64_t rng_init(uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	return s ? s : 1;
}

/* The fill pattern: word w of a block with seed `seed`. */
static inline uint64_t pat_word(uint64_t seed, size_t w)
{
	uint64_t x = seed + (uint64_t)w * 0x9e3779b97f4a7c15ull;
	return x ^ (x >> 29);
}

static inline unsigned char pat_byte(uint64_t seed, size_t i)
{
	return (unsigned char)(pat_word(seed, i / 8) >> (8 * (i % 8)));
}

/* Write the pattern into bytes [from, to) of the block at p (p is at least
 * 8-aligned). */
static void fill_range(char *p, uint64_t seed, size_t from, size_t to)
{
	size_t i = from;
	for (; i < to && (i & 7); i++)
		p[i] = (char)pat_byte(seed, i);
	for (; i + 8 <= to; i += 8)
		*(uint64_t *)(p + i) = pat_word(seed, i / 8);
	for (; i < to; i++)
		p[i] = (char)pat_byte(seed, i);
}

/* First offset in [from, to) that does not hold the pattern, or
 * SIZE_MAX. */
static size_t check_range(const char *p, uint64_t seed, size_t from,
			  size_t to)
{
	size_t i = from;
	for (; i < to && (i & 7); i++)
		if ((unsigned char)p[i] != pat_byte(seed, i))
			return i;
	for (; i + 8 <= to; i += 8)
		if (*(const uint64_t *)(p + i) != pat_word(seed, i / 8))
			break;
	for (; i < to; i++)
		if ((unsigned char)p[i] != pat_byte(seed, i))
			return i;
	return SIZE_MAX;
}

static size_t first_nonzero(const char *p, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		if (*(const uint64_t *)(p + i))
			break;
	for (; i < n; i++)
		if (p[i])
			return i;
	return SIZE_MAX;
}

static struct mnemo_heap_stats stats_of(mnemo_pool *pool)
{
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(pool, &st), 0, "%s", mnemo_errormsg());
	return st;
}

static uint64_t live_blocks(mnemo_pool *pool)
{
	return stats_of(pool).live_blocks;
}

static void assert_heap_ok(mnemo_pool *pool)
{
	int rc = mnemo_heap_check(pool);
	cr_assert_eq(rc, 0, "mnemo_heap_check: %d: %s", rc, mnemo_errormsg());
}

static mnemo_pool *fresh_pool(const char *tag, size_t size)
{
	const char *path = t_path(tag);
	t_create(path, size);
	return t_open(path, 0);
}

/* Sizes: 1..200 bytes mostly, some up to 40 KiB, a few up to 1 MiB. */
static size_t draw_size(uint64_t *r)
{
	unsigned k = (unsigned)(rnd(r) % 1000);
	if (k < 900)
		return 1 + rnd(r) % 200;
	if (k < 997)
		return 201 + rnd(r) % (40 * KiB - 200);
	return 40 * KiB + 1 + rnd(r) % (MiB - 40 * KiB);
}

/* ---- the model -------------------------------------------------------- */

struct blk {
	char *p;
	size_t size;   /* requested */
	size_t usable; /* pmalloc_usable_size at allocation */
	uint64_t seed;
	size_t pos;    /* index in model.live */
};

struct model {
	mnemo_pool *pool;
	struct blk *slot; /* cap entries; live ones are named by live[] */
	size_t *free_slot, nfree_slot;
	size_t *live, nlive;
	size_t cap, maxlive;
	void *tree; /* tsearch tree of live blocks' [p, p + usable) */
	uint64_t rng;
	uint64_t extra;   /* allocated blocks the model does not hold */
	bool exact_stats; /* nobody else allocates: stats must match */
	long op;
	long nalloc, nzero, naligned, nfree, nrealloc, nmoved, nverified;
	char err[768];
};

static bool mfail(struct model *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static bool mfail(struct model *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	return false;
}

static int range_cmp(const void *a, const void *b)
{
	const struct blk *x = a, *y = b;
	if (x->p + x->usable <= y->p)
		return -1;
	if (y->p + y->usable <= x->p)
		return 1;
	return 0; /* overlapping */
}

static void model_init(struct model *m, mnemo_pool *pool, uint64_t seed,
		       size_t maxlive)
{
	memset(m, 0, sizeof(*m));
	m->pool = pool;
	m->maxlive = maxlive;
	m->cap = maxlive + 64;
	m->slot = calloc(m->cap, sizeof(*m->slot));
	m->free_slot = calloc(m->cap, sizeof(size_t));
	m->live = calloc(m->cap, sizeof(size_t));
	cr_assert(m->slot && m->free_slot && m->live);
	for (size_t i = 0; i < m->cap; i++)
		m->free_slot[i] = m->cap - 1 - i;
	m->nfree_slot = m->cap;
	m->rng = rng_init(seed);
	snprintf(m->err, sizeof(m->err), "no error");
}

static void no_free(void *p)
{
	(void)p;
}

/* Forget every block (they stay allocated in the heap). */
static void model_clear(struct model *m)
{
	tdestroy(m->tree, no_free);
	m->tree = NULL;
	m->nlive = 0;
	for (size_t i = 0; i < m->cap; i++)
		m->free_slot[i] = m->cap - 1 - i;
	m->nfree_slot = m->cap;
}

static void model_fini(struct model *m)
{
	tdestroy(m->tree, no_free);
	free(m->slot);
	free(m->free_slot);
	free(m->live);
}

static struct blk *pick(struct model *m)
{
	return &m->slot[m->live[rnd(&m->rng) % m->nlive]];
}

/* Record a new live block; fails if its usable range overlaps a live one. */
static bool model_add(struct model *m, char *p, size_t size, size_t usable,
		      uint64_t seed, struct blk **out)
{
	if (!m->nfree_slot)
		return mfail(m, "model full (test bug)");
	size_t i = m->free_slot[--m->nfree_slot];
	struct blk *b = &m->slot[i];
	*b = (struct blk){p, size, usable, seed, m->nlive};
	struct blk **r = tsearch(b, &m->tree, range_cmp);
	if (!r) {
		m->nfree_slot++;
		return mfail(m, "tsearch: out of memory");
	}
	if (*r != b) {
		m->nfree_slot++;
		return mfail(m, "new block %p (%zu usable bytes) overlaps the "
			     "live block %p (%zu usable bytes, %zu requested)",
			     (void *)p, usable, (void *)(*r)->p, (*r)->usable,
			     (*r)->size);
	}
	m->live[m->nlive++] = i;
	if (out)
		*out = b;
	return true;
}

static void model_remove(struct model *m, struct blk *b)
{
	void *r = tdelete(b, &m->tree, range_cmp);
	cr_assert_not_null(r, "model: block %p not in the tree", (void *)b->p);
	size_t i = (size_t)(b - m->slot), last = m->live[--m->nlive];
	m->live[b->pos] = last;
	m->slot[last].pos = b->pos;
	m->free_slot[m->nfree_slot++] = i;
}

static bool verify(struct model *m, const struct blk *b)
{
	size_t at = check_range(b->p, b->seed, 0, b->size);
	m->nverified++;
	if (at != SIZE_MAX)
		return mfail(m, "block %p (%zu bytes, seed %#llx): byte %zu "
			     "is %#x, expected %#x", (void *)b->p, b->size,
			     (unsigned long long)b->seed, at,
			     (unsigned char)b->p[at], pat_byte(b->seed, at));
	return true;
}

/* Every live block intact, the heap consistent, and (single-threaded)
 * the heap's count of live blocks equal to the model's. */
static bool full_verify(struct model *m)
{
	for (size_t i = 0; i < m->nlive; i++)
		if (!verify(m, &m->slot[m->live[i]]))
			return false;
	int rc = mnemo_heap_check(m->pool);
	if (rc)
		return mfail(m, "mnemo_heap_check: %d: %s", rc,
			     mnemo_errormsg());
	if (m->exact_stats) {
		struct mnemo_heap_stats st;
		if (mnemo_heap_stats(m->pool, &st))
			return mfail(m, "mnemo_heap_stats: %s",
				     mnemo_errormsg());
		if (st.live_blocks != m->nlive + m->extra)
			return mfail(m, "mnemo_heap_stats: %llu live blocks, "
				     "the model has %zu (+%llu)",
				     (unsigned long long)st.live_blocks,
				     m->nlive, (unsigned long long)m->extra);
	}
	return true;
}

static bool op_alloc(struct model *m)
{
	size_t size = draw_size(&m->rng);
	unsigned kind = (unsigned)(rnd(&m->rng) % 100);
	size_t align = 0;
	unsigned flags = 0;
	if (kind < 15) {
		flags = MNEMO_HEAP_ZERO;
	} else if (kind < 30) {
		align = (size_t)1 << (4 + rnd(&m->rng) % 13); /* 16..64K */
		if (kind & 1)
			flags = MNEMO_HEAP_ZERO;
	}
	char *p = mnemo_heap_alloc(m->pool, size, align, flags);
	if (!p)
		return mfail(m, "mnemo_heap_alloc(%zu, align %zu, flags %u): "
			     "%s (%s)", size, align, flags, strerror(errno),
			     mnemo_errormsg());
	size_t want = align > 16 ? align : 16;
	if ((uintptr_t)p % want)
		return mfail(m, "mnemo_heap_alloc(%zu, align %zu) = %p: not "
			     "%zu-aligned", size, align, (void *)p, want);
	size_t us = pmalloc_usable_size(p);
	if (us < size)
		return mfail(m, "pmalloc_usable_size(%p) = %zu < %zu requested",
			     (void *)p, us, size);
	if (flags & MNEMO_HEAP_ZERO) {
		size_t at = first_nonzero(p, size);
		if (at != SIZE_MAX)
			return mfail(m, "MNEMO_HEAP_ZERO block %p of %zu "
				     "bytes: byte %zu is %#x", (void *)p, size,
				     at, (unsigned char)p[at]);
		m->nzero++;
	}
	m->naligned += align > 16;
	uint64_t seed = rnd(&m->rng);
	if (!model_add(m, p, size, us, seed, NULL))
		return false;
	fill_range(p, seed, 0, size);
	m->nalloc++;
	return true;
}

static bool op_free(struct model *m)
{
	struct blk *b = pick(m);
	if (!verify(m, b))
		return false;
	char *p = b->p;
	model_remove(m, b);
	pfree(p);
	m->nfree++;
	return true;
}

static bool op_realloc(struct model *m)
{
	struct blk *b = pick(m);
	if (!verify(m, b))
		return false;
	char *p = b->p;
	m->nrealloc++;
	if (rnd(&m->rng) % 100 == 0) { /* size 0: a free */
		model_remove(m, b);
		errno = 0;
		char *q = prealloc(p, 0);
		if (q)
			return mfail(m, "prealloc(%p, 0) = %p, expected NULL",
				     (void *)p, (void *)q);
		return true;
	}
	size_t ns = draw_size(&m->rng), old = b->size;
	char *q = prealloc(p, ns);
	if (!q)
		return mfail(m, "prealloc(%p, %zu): %s (%s)", (void *)p, ns,
			     strerror(errno), mnemo_errormsg());
	if ((uintptr_t)q % 16)
		return mfail(m, "prealloc(%p, %zu) = %p: not 16-aligned",
			     (void *)p, ns, (void *)q);
	size_t us = pmalloc_usable_size(q);
	if (us < ns)
		return mfail(m, "prealloc(%p, %zu) = %p: usable size %zu",
			     (void *)p, ns, (void *)q, us);
	uint64_t seed = b->seed;
	if (q == p) {
		void *r = tdelete(b, &m->tree, range_cmp);
		cr_assert_not_null(r);
		b->size = ns;
		b->usable = us;
		struct blk **t = tsearch(b, &m->tree, range_cmp);
		if (!t || *t != b)
			return mfail(m, "prealloc(%p, %zu) kept the block, "
				     "which now overlaps %p", (void *)p, ns,
				     t ? (void *)(*t)->p : NULL);
	} else {
		/* The new block was allocated while the old one still was:
		 * it must not overlap it either. */
		if (!model_add(m, q, ns, us, seed, NULL))
			return false;
		model_remove(m, b);
		m->nmoved++;
	}
	size_t keep = old < ns ? old : ns;
	size_t at = check_range(q, seed, 0, keep);
	if (at != SIZE_MAX)
		return mfail(m, "prealloc(%p [%zu bytes], %zu) = %p: byte %zu "
			     "not preserved", (void *)p, old, ns, (void *)q,
			     at);
	fill_range(q, seed, keep, ns);
	return true;
}

/* ops random operations; every verify_every a full verification. */
static bool run_stress(struct model *m, long ops, long verify_every)
{
	for (long i = 0; i < ops; i++) {
		m->op = i;
		unsigned r = (unsigned)(rnd(&m->rng) % 100);
		bool ok;
		if (m->nlive == 0 || (r < 45 && m->nlive < m->maxlive))
			ok = op_alloc(m);
		else if (r < 80)
			ok = op_free(m);
		else
			ok = op_realloc(m);
		if (ok && i % 4 == 0 && m->nlive)
			ok = verify(m, pick(m));
		if (ok && (i + 1) % verify_every == 0)
			ok = full_verify(m);
		if (!ok)
			return false;
	}
	return true;
}

static void log_model(const char *what, const struct model *m)
{
	cr_log_info("%s: %ld allocs (%ld zeroed, %ld aligned), %ld frees, "
		    "%ld reallocs (%ld moved), %zu live", what, m->nalloc,
		    m->nzero, m->naligned, m->nfree, m->nrealloc, m->nmoved,
		    m->nlive);
}

/* Check every block, then free them all: the heap ends up empty. */
static void free_all(struct model *m)
{
	while (m->nlive) {
		struct blk *b = &m->slot[m->live[m->nlive - 1]];
		cr_assert(verify(m, b), "%s", m->err);
		char *p = b->p;
		model_remove(m, b);
		pfree(p);
	}
}

/* ---- 1. single-threaded stress ---------------------------------------- */

Test(heap, stress_single_thread_against_a_model, .timeout = 600)
{
	mnemo_pool *pool = fresh_pool("stress", 256 * MiB);
	struct model m;
	model_init(&m, pool, t_seed(), 4000);
	m.exact_stats = true;
	bool ok = run_stress(&m, 200000, 10000);
	cr_assert(ok, "op %ld: %s", m.op, m.err);
	cr_assert(full_verify(&m), "%s", m.err);
	log_model("single thread", &m);
	cr_assert_gt(m.nzero, 0);
	cr_assert_gt(m.naligned, 0);
	cr_assert_gt(m.nmoved, 0);
	cr_assert_gt(m.nfree, 0);
	struct mnemo_heap_stats st = stats_of(pool);
	cr_assert_gt(st.large_blocks, 0, "some blocks are large");
	free_all(&m);
	st = stats_of(pool);
	cr_assert_eq(st.live_blocks, 0);
	cr_assert_eq(st.live_bytes, 0);
	assert_heap_ok(pool);
	model_fini(&m);
	mnemo_pool_close(&pool);
}

/* ---- 2. stress, then close and reopen ---------------------------------- */

struct saved {
	uint64_t n;
	struct {
		uint64_t p, size, seed;
	} b[];
};

/* Rebuild the model from the persistent block list; every block is still
 * allocated, holds its pattern and overlaps no other. */
static void restore(struct model *m, const struct saved *sv)
{
	model_clear(m);
	for (uint64_t i = 0; i < sv->n; i++) {
		char *p = (char *)(uintptr_t)sv->b[i].p;
		size_t size = sv->b[i].size, us = pmalloc_usable_size(p);
		cr_assert_geq(us, size, "after reopening: block %p of %zu "
			      "bytes has usable size %zu", (void *)p, size, us);
		cr_assert(model_add(m, p, size, us, sv->b[i].seed, NULL), "%s",
			  m->err);
	}
}

Test(heap, stress_then_reopen_keeps_every_block, .timeout = 600)
{
	const char *path = t_path("reopen");
	t_create(path, 256 * MiB);
	mnemo_pool *pool = t_open(path, 0);
	struct model m;
	model_init(&m, pool, t_seed(), 4000);
	m.exact_stats = true;
	cr_assert(run_stress(&m, 200000, 20000), "op %ld: %s", m.op, m.err);
	cr_assert(full_verify(&m), "%s", m.err);

	/* The block list, in a block reachable from a named root. */
	uint64_t n = m.nlive;
	size_t len = sizeof(struct saved) + n * sizeof(((struct saved *)0)->b[0]);
	struct saved *sv = mnemo_heap_alloc(pool, len, 0, 0);
	cr_assert_not_null(sv, "%s", mnemo_errormsg());
	sv->n = n;
	for (uint64_t i = 0; i < n; i++) {
		const struct blk *b = &m.slot[m.live[i]];
		sv->b[i].p = (uint64_t)(uintptr_t)b->p;
		sv->b[i].size = b->size;
		sv->b[i].seed = b->seed;
	}
	mnemo_persist(sv, len);
	cr_assert_eq(mnemo_root_set(pool, "blocks", sv), 0, "%s",
		     mnemo_errormsg());
	/* Leaks: allocated, reachable from nowhere persistent. */
	enum { NLEAK = 5 };
	static const size_t leak_size[NLEAK] = {24, 700, 5000, 40000, 300000};
	void *leak[NLEAK];
	for (int i = 0; i < NLEAK; i++) {
		leak[i] = mnemo_heap_alloc(pool, leak_size[i], 0, 0);
		cr_assert_not_null(leak[i], "%s", mnemo_errormsg());
		memset(leak[i], 0x5a, leak_size[i]);
	}
	cr_assert_eq(live_blocks(pool), n + 1 + NLEAK);
	mnemo_pool_close(&pool);

	/* A clean reopen: no collection, everything still allocated. */
	pool = t_open(path, 0);
	m.pool = pool;
	struct mnemo_heap_stats st = stats_of(pool);
	cr_assert_eq(st.collected, 0, "a clean close needs no collection");
	cr_assert_eq(st.live_blocks, n + 1 + NLEAK, "live blocks %llu, "
		     "expected %llu", (unsigned long long)st.live_blocks,
		     (unsigned long long)(n + 1 + NLEAK));
	assert_heap_ok(pool);
	void *r = NULL;
	cr_assert_eq(mnemo_root_get(pool, "blocks", &r), 0);
	cr_assert_eq(r, (void *)sv);
	cr_assert_eq(sv->n, n);
	restore(&m, sv);
	m.extra = 1 + NLEAK;
	cr_assert(full_verify(&m), "after a clean reopen: %s", m.err);
	mnemo_pool_close(&pool);

	/* Reopen with the collection: it frees exactly the leaks. */
	setenv("MNEMO_HEAP_GC", "always", 1);
	pool = t_open(path, 0);
	unsetenv("MNEMO_HEAP_GC");
	m.pool = pool;
	st = stats_of(pool);
	cr_assert_eq(st.collected, 1);
	cr_assert_eq(st.reclaimed_blocks, NLEAK, "reclaimed %llu blocks, "
		     "expected the %d leaks",
		     (unsigned long long)st.reclaimed_blocks, NLEAK);
	cr_assert_eq(st.live_blocks, n + 1, "live blocks %llu after the "
		     "collection, expected %llu",
		     (unsigned long long)st.live_blocks,
		     (unsigned long long)(n + 1));
	assert_heap_ok(pool);
	restore(&m, sv);
	m.extra = 1;
	cr_assert(full_verify(&m), "after the collection: %s", m.err);
	errno = 0;
	pfree(leak[0]);
	cr_assert_eq(errno, EINVAL, "a reclaimed leak is free");

	/* The rebuilt heap never hands out a live block. */
	cr_assert(run_stress(&m, 30000, 10000), "after reopening, op %ld: %s",
		  m.op, m.err);
	cr_assert(full_verify(&m), "%s", m.err);
	log_model("reopened", &m);
	model_fini(&m);
	mnemo_pool_close(&pool);
}

/* ---- 3. multi-threaded stress ------------------------------------------ */

#define NTHREADS 4
#define QCAP 256

struct handoff {
	char *p;
	size_t size, usable;
	uint64_t seed;
};

struct shared {
	pthread_mutex_t mu;
	struct handoff q[QCAP];
	size_t head, n;
	atomic_bool stop;
};

struct worker {
	struct model m;
	struct shared *sh;
	long ops;
	bool ok;
	long handed, taken, adopted;
};

static bool op_hand_over(struct worker *w)
{
	struct model *m = &w->m;
	struct blk *b = pick(m);
	if (!verify(m, b))
		return false;
	struct shared *sh = w->sh;
	pthread_mutex_lock(&sh->mu);
	bool room = sh->n < QCAP;
	if (room) {
		sh->q[(sh->head + sh->n++) % QCAP] =
			(struct handoff){b->p, b->size, b->usable, b->seed};
	}
	pthread_mutex_unlock(&sh->mu);
	if (room) {
		model_remove(m, b);
		w->handed++;
	}
	return true;
}

static bool op_take(struct worker *w)
{
	struct model *m = &w->m;
	struct shared *sh = w->sh;
	struct handoff h;
	pthread_mutex_lock(&sh->mu);
	bool got = sh->n > 0;
	if (got) {
		h = sh->q[sh->head];
		sh->head = (sh->head + 1) % QCAP;
		sh->n--;
	}
	pthread_mutex_unlock(&sh->mu);
	if (!got)
		return true;
	w->taken++;
	size_t at = check_range(h.p, h.seed, 0, h.size);
	if (at != SIZE_MAX)
		return mfail(m, "handed-over block %p (%zu bytes): byte %zu "
			     "changed", (void *)h.p, h.size, at);
	if (rnd(&m->rng) % 2 == 0 || m->nlive >= m->maxlive) {
		pfree(h.p);
		m->nfree++;
		return true;
	}
	w->adopted++; /* freed or realloc'ed later by this thread */
	return model_add(m, h.p, h.size, h.usable, h.seed, NULL);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct model *m = &w->m;
	w->ok = true;
	for (long i = 0; i < w->ops && w->ok; i++) {
		if (i % 256 == 0 && atomic_load(&w->sh->stop))
			break;
		m->op = i;
		unsigned r = (unsigned)(rnd(&m->rng) % 100);
		if (m->nlive == 0 || (r < 40 && m->nlive < m->maxlive))
			w->ok = op_alloc(m);
		else if (r < 62)
			w->ok = op_free(m);
		else if (r < 77)
			w->ok = op_realloc(m);
		else if (r < 88)
			w->ok = op_hand_over(w);
		else
			w->ok = op_take(w);
		if (w->ok && i % 4 == 0 && m->nlive)
			w->ok = verify(m, pick(m));
	}
	if (!w->ok)
		atomic_store(&w->sh->stop, true);
	return NULL;
}

static int addr_cmp(const void *a, const void *b)
{
	const struct handoff *x = a, *y = b;
	return x->p < y->p ? -1 : x->p > y->p;
}

/* With no thread running: every block of every model and of the queue is
 * intact, no two overlap, the heap counts them all and is consistent. */
static size_t global_check(struct worker *w, struct shared *sh,
			   mnemo_pool *pool)
{
	size_t n = sh->n;
	for (int t = 0; t < NTHREADS; t++)
		n += w[t].m.nlive;
	struct handoff *all = calloc(n + 1, sizeof(*all));
	cr_assert_not_null(all);
	size_t k = 0;
	for (int t = 0; t < NTHREADS; t++)
		for (size_t i = 0; i < w[t].m.nlive; i++) {
			const struct blk *b = &w[t].m.slot[w[t].m.live[i]];
			all[k++] = (struct handoff){b->p, b->size, b->usable,
						    b->seed};
		}
	for (size_t i = 0; i < sh->n; i++)
		all[k++] = sh->q[(sh->head + i) % QCAP];
	qsort(all, n, sizeof(*all), addr_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct handoff *h = &all[i];
		cr_assert_eq(check_range(h->p, h->seed, 0, h->size), SIZE_MAX,
			     "block %p (%zu bytes) corrupted", (void *)h->p,
			     h->size);
		cr_assert_geq(pmalloc_usable_size(h->p), h->size);
		if (i + 1 < n)
			cr_assert_leq(h->p + h->usable, all[i + 1].p,
				      "blocks %p (%zu usable) and %p overlap",
				      (void *)h->p, h->usable,
				      (void *)all[i + 1].p);
	}
	free(all);
	cr_assert_eq(live_blocks(pool), n, "the heap has %llu live blocks, "
		     "the threads hold %zu",
		     (unsigned long long)live_blocks(pool), n);
	assert_heap_ok(pool);
	return n;
}

static void run_round(struct worker *w, long ops)
{
	pthread_t th[NTHREADS];
	for (int t = 0; t < NTHREADS; t++) {
		w[t].ops = ops;
		cr_assert_eq(pthread_create(&th[t], NULL, worker_main, &w[t]),
			     0);
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < NTHREADS; t++)
		cr_assert(w[t].ok, "thread %d, op %ld: %s", t, w[t].m.op,
			  w[t].m.err);
}

Test(heap, stress_threads_free_each_others_blocks, .timeout = 600)
{
	mnemo_pool *pool = fresh_pool("threads", 256 * MiB);
	static struct shared sh;
	static struct worker w[NTHREADS];
	pthread_mutex_init(&sh.mu, NULL);
	uint64_t seed = t_seed();
	for (int t = 0; t < NTHREADS; t++) {
		model_init(&w[t].m, pool, seed + (uint64_t)t * 7919, 1500);
		w[t].sh = &sh;
	}
	/* Round 2 runs in new threads: the exited threads' pages (with live
	 * blocks on them) are taken over. */
	for (int round = 0; round < 2; round++) {
		run_round(w, 30000);
		size_t n = global_check(w, &sh, pool);
		cr_log_info("round %d: %zu live blocks", round, n);
	}
	long handed = 0, taken = 0, adopted = 0, moved = 0;
	for (int t = 0; t < NTHREADS; t++) {
		handed += w[t].handed;
		taken += w[t].taken;
		adopted += w[t].adopted;
		moved += w[t].m.nmoved;
	}
	cr_log_info("%ld handed over, %ld taken, %ld adopted, %ld moved",
		    handed, taken, adopted, moved);
	cr_assert_gt(taken, 0);
	cr_assert_gt(adopted, 0);
	/* The main thread frees what is left, whoever allocated it. */
	for (int t = 0; t < NTHREADS; t++) {
		free_all(&w[t].m);
		model_fini(&w[t].m);
	}
	for (; sh.n; sh.n--, sh.head = (sh.head + 1) % QCAP)
		pfree(sh.q[sh.head].p);
	cr_assert_eq(live_blocks(pool), 0);
	assert_heap_ok(pool);
	mnemo_pool_close(&pool);
}

/* ---- 4. bad input ------------------------------------------------------- */

/* stderr captured through a pipe (pfree reports its errors there). */
struct capture {
	int saved, fd[2];
	char buf[4096];
};

static void capture_begin(struct capture *c)
{
	fflush(stderr);
	cr_assert_eq(pipe(c->fd), 0);
	c->saved = dup(2);
	cr_assert_geq(c->saved, 0);
	cr_assert_geq(dup2(c->fd[1], 2), 0);
	close(c->fd[1]);
}

static const char *capture_end(struct capture *c)
{
	fflush(stderr);
	cr_assert_geq(dup2(c->saved, 2), 0);
	close(c->saved);
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(c->buf) - 1 &&
	       (k = read(c->fd[0], c->buf + n, sizeof(c->buf) - 1 - n)) > 0)
		n += (size_t)k;
	c->buf[n] = 0;
	close(c->fd[0]);
	return c->buf;
}

/* pfree(p) that must succeed: it reports nothing on stderr. */
static void quiet_pfree(void *p)
{
	struct capture cap;
	capture_begin(&cap);
	pfree(p);
	const char *out = capture_end(&cap);
	cr_assert_eq(out[0], 0, "pfree(%p) reported: %s", p, out);
}

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

/* ---- 5. transactions -------------------------------------------------- */

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

/* ---- 6. statistics ---------------------------------------------------- */

static int class_index(const struct mnemo_heap_stats *st, size_t usable)
{
	for (int i = 0; i < MNEMO_HEAP_NCLASSES; i++)
		if (st->classes[i].block_size == usable)
			return i;
	return -1;
}

Test(heap, stats_are_exact)
{
	mnemo_pool *pool = fresh_pool("stats", 64 * MiB);
	struct mnemo_heap_stats st = stats_of(pool);
	cr_assert_eq(st.live_blocks, 0);
	cr_assert_eq(st.classes[0].block_size, 16);
	for (int i = 1; i < MNEMO_HEAP_NCLASSES; i++)
		cr_assert_gt(st.classes[i].block_size,
			     st.classes[i - 1].block_size);
	cr_assert_eq(st.classes[MNEMO_HEAP_NCLASSES - 1].block_size, 32768);

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
	for (int c = 0; c < MNEMO_HEAP_NCLASSES; c++) {
		uint64_t want = 0;
		for (int s = 0; s < NSPEC; s++)
			if (spec[s].size <= LARGE_MIN &&
			    usable[s] == st.classes[c].block_size)
				want += spec[s].n;
		cr_assert_eq(st.classes[c].blocks, want, "class %d (%u bytes): "
			     "%llu blocks, expected %llu", c,
			     st.classes[c].block_size,
			     (unsigned long long)st.classes[c].blocks,
			     (unsigned long long)want);
		if (want)
			cr_assert_geq(st.classes[c].pages, 1);
	}
	int c32k = class_index(&st, 32768);
	cr_assert_eq(st.classes[c32k].pages, 2, "3 blocks of 32 KiB: 2 pages");

	/* Frees are counted at once. */
	pfree(blk[0][0]);
	pfree(blk[0][1]);
	pfree(blk[5][0]);
	pfree(blk[3][2]);
	st = stats_of(pool);
	cr_assert_eq(st.live_blocks, exp_live - 4);
	cr_assert_eq(st.large_blocks, exp_large - 1);
	cr_assert_eq(st.live_bytes, exp_bytes - 2 * 16 - 256 * KiB - 32768);
	cr_assert_eq(st.classes[0].blocks, 8);
	cr_assert_eq(st.classes[c32k].blocks, 2);
	assert_heap_ok(pool);
	cr_assert_eq(st.collected, 0);

	/* A block's usable size is the smallest class that holds it. */
	static const size_t probe[] = {1, 16, 17, 100, 128, 129, 1000, 4097,
				       20000, 32767, 32768};
	for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
		void *p = mnemo_heap_alloc(pool, probe[i], 0, 0);
		cr_assert_not_null(p);
		size_t us = pmalloc_usable_size(p);
		int c = class_index(&st, us);
		cr_assert_geq(c, 0, "usable size %zu of a %zu-byte block is "
			      "no class", us, probe[i]);
		cr_assert_geq(us, probe[i]);
		cr_assert(c == 0 || st.classes[c - 1].block_size < probe[i],
			  "%zu bytes got class %u, %u would do", probe[i],
			  st.classes[c].block_size,
			  st.classes[c - 1].block_size);
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
	for (int c = 0; c < MNEMO_HEAP_NCLASSES; c++)
		cr_assert_eq(st.classes[c].blocks, 0);
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
