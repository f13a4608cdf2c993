/*
 * heap_model.c -- shared helpers of the heap tests and the model of live
 * blocks (see heap_model.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* tdestroy */
#endif
#include "heap_model.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

uint64_t rnd(uint64_t *s)
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
void fill_range(char *p, uint64_t seed, size_t from, size_t to)
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
size_t check_range(const char *p, uint64_t seed, size_t from, size_t to)
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

size_t first_nonzero(const char *p, size_t n)
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

struct mnemo_heap_stats stats_of(mnemo_pool *pool)
{
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(pool, &st, sizeof(st)), 0, "%s",
		     mnemo_errormsg());
	return st;
}

uint64_t live_blocks(mnemo_pool *pool)
{
	return stats_of(pool).live_blocks;
}

void assert_heap_ok(mnemo_pool *pool)
{
	int rc = mnemo_heap_check(pool);
	cr_assert_eq(rc, 0, "mnemo_heap_check: %d: %s", rc, mnemo_errormsg());
}

mnemo_pool *fresh_pool(const char *tag, size_t size)
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

void capture_begin(struct capture *c)
{
	fflush(stderr);
	cr_assert_eq(pipe(c->fd), 0);
	c->saved = dup(2);
	cr_assert_geq(c->saved, 0);
	cr_assert_geq(dup2(c->fd[1], 2), 0);
	close(c->fd[1]);
}

const char *capture_end(struct capture *c)
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

/* ---- the model -------------------------------------------------------- */

bool mfail(struct model *m, const char *fmt, ...)
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

void model_init(struct model *m, mnemo_pool *pool, uint64_t seed,
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
void model_clear(struct model *m)
{
	tdestroy(m->tree, no_free);
	m->tree = NULL;
	m->nlive = 0;
	for (size_t i = 0; i < m->cap; i++)
		m->free_slot[i] = m->cap - 1 - i;
	m->nfree_slot = m->cap;
}

void model_fini(struct model *m)
{
	tdestroy(m->tree, no_free);
	free(m->slot);
	free(m->free_slot);
	free(m->live);
}

struct blk *pick(struct model *m)
{
	return &m->slot[m->live[rnd(&m->rng) % m->nlive]];
}

/* Record a new live block; fails if its usable range overlaps a live one. */
bool model_add(struct model *m, char *p, size_t size, size_t usable,
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

void model_remove(struct model *m, struct blk *b)
{
	void *r = tdelete(b, &m->tree, range_cmp);
	cr_assert_not_null(r, "model: block %p not in the tree", (void *)b->p);
	size_t i = (size_t)(b - m->slot), last = m->live[--m->nlive];
	m->live[b->pos] = last;
	m->slot[last].pos = b->pos;
	m->free_slot[m->nfree_slot++] = i;
}

bool verify(struct model *m, const struct blk *b)
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
bool full_verify(struct model *m)
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
		if (mnemo_heap_stats(m->pool, &st, sizeof(st)))
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

bool op_alloc(struct model *m)
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

bool op_free(struct model *m)
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

bool op_realloc(struct model *m)
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
bool run_stress(struct model *m, long ops, long verify_every)
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

void log_model(const char *what, const struct model *m)
{
	cr_log_info("%s: %ld allocs (%ld zeroed, %ld aligned), %ld frees, "
		    "%ld reallocs (%ld moved), %zu live", what, m->nalloc,
		    m->nzero, m->naligned, m->nfree, m->nrealloc, m->nmoved,
		    m->nlive);
}

/* Check every block, then free them all: the heap ends up empty. */
void free_all(struct model *m)
{
	while (m->nlive) {
		struct blk *b = &m->slot[m->live[m->nlive - 1]];
		cr_assert(verify(m, b), "%s", m->err);
		char *p = b->p;
		model_remove(m, b);
		pfree(p);
	}
}
