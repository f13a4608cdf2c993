/*
 * heap_model.h -- shared helpers of the heap tests (heap_unit.c,
 * heap_badinput.c, heap_stress.c): fill patterns, heap statistics, stderr
 * capture, and the model of live blocks that the stress tests run
 * against.
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
#ifndef MNEMO_TEST_HEAP_MODEL_H
#define MNEMO_TEST_HEAP_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define LARGE_MIN (32 * KiB) /* blocks larger than this are "large" */

/* ---- helpers ---------------------------------------------------------- */

/* xorshift64: the next number of the sequence in *s (never 0). */
uint64_t rnd(uint64_t *s);
/* Write the pattern of `seed` into bytes [from, to) of the block at p (p
 * is at least 8-aligned). */
void fill_range(char *p, uint64_t seed, size_t from, size_t to);
/* First offset in [from, to) that does not hold the pattern, or
 * SIZE_MAX. */
size_t check_range(const char *p, uint64_t seed, size_t from, size_t to);
/* First nonzero byte of p[0, n), or SIZE_MAX. */
size_t first_nonzero(const char *p, size_t n);
/* mnemo_heap_stats of pool, asserting success. */
struct mnemo_heap_stats stats_of(mnemo_pool *pool);
uint64_t live_blocks(mnemo_pool *pool);
/* mnemo_heap_check passes. */
void assert_heap_ok(mnemo_pool *pool);
/* A new pool of `size` bytes at t_path(tag), open. */
mnemo_pool *fresh_pool(const char *tag, size_t size);

/* stderr captured through a pipe (pfree reports its errors there). */
struct capture {
	int saved, fd[2];
	char buf[4096];
};

void capture_begin(struct capture *c);
/* Restores stderr; returns what was written meanwhile. */
const char *capture_end(struct capture *c);

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

/* Records the failure in m->err; returns false. */
bool mfail(struct model *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* An empty model of pool for up to maxlive blocks, its rng seeded. */
void model_init(struct model *m, mnemo_pool *pool, uint64_t seed,
		size_t maxlive);
/* Forget every block (they stay allocated in the heap). */
void model_clear(struct model *m);
void model_fini(struct model *m);
/* A random live block (there must be one). */
struct blk *pick(struct model *m);
/* Record a new live block; fails if its usable range overlaps a live one. */
bool model_add(struct model *m, char *p, size_t size, size_t usable,
	       uint64_t seed, struct blk **out);
void model_remove(struct model *m, struct blk *b);
/* The block holds its pattern. */
bool verify(struct model *m, const struct blk *b);
/* Every live block intact, the heap consistent, and (single-threaded)
 * the heap's count of live blocks equal to the model's. */
bool full_verify(struct model *m);
/* One random operation each, checked; false (with m->err) on a fault. */
bool op_alloc(struct model *m);
bool op_free(struct model *m);
bool op_realloc(struct model *m);
/* ops random operations; every verify_every a full verification. */
bool run_stress(struct model *m, long ops, long verify_every);
void log_model(const char *what, const struct model *m);
/* Check every block, then free them all: the heap ends up empty. */
void free_all(struct model *m);

#endif
