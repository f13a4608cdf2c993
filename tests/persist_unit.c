/*
 * persist_unit.c -- the persistence primitives: their effect, and the exact
 * number of flushed lines and fences each costs (the counters are the
 * measurement; timing belongs in bench/).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util.h"

static mnemo_pool *pool;
static char *mem;

static void setup(void)
{
	const char *path = t_path("persist");
	t_create(path, 4 << 20);
	pool = t_open(path, 0);
	cr_assert_eq(mnemo_region_create(pool, "m", 1 << 20, (void **)&mem), 0);
	mnemo_stat_reset();
}

static void teardown(void) { mnemo_pool_close(&pool); }

#define EXPECT_COST(lines, fences)                                                 \
	do {                                                                       \
		cr_assert_eq(mnemo_stat_get(MNEMO_STAT_FLUSHED_LINES), (lines));   \
		cr_assert_eq(mnemo_stat_get(MNEMO_STAT_FENCES), (fences));         \
		mnemo_stat_reset();                                                \
	} while (0)

TestSuite(persist, .init = setup, .fini = teardown);

Test(persist, flush_fence_persist_counts)
{
	mnemo_flush(mem, 1);
	EXPECT_COST(1u, 0u);
	mnemo_flush(mem + 60, 130); /* bytes 60..189: lines 0, 1, 2 */
	EXPECT_COST(3u, 0u);
	mnemo_fence();
	EXPECT_COST(0u, 1u);
	mnemo_persist(mem + 64, 64);
	EXPECT_COST(1u, 1u);
	mnemo_persist(mem, 0);
	EXPECT_COST(0u, 1u);
	cr_assert_eq(mnemo_stat_get((enum mnemo_stat)99), 0u);
}

Test(persist, flush_outside_pools_uses_the_cpu)
{
	char local[256] = {0};
	mnemo_persist(local, sizeof(local));
	EXPECT_COST(4u + ((uintptr_t)local % 64 != 0), 1u);
	const char *insn = mnemo_flush_instruction();
	cr_assert(!strcmp(insn, "clwb") || !strcmp(insn, "clflushopt") || !strcmp(insn, "clflush"));
}

Test(persist, store64_is_one_line_one_fence)
{
	uint64_t *w = (uint64_t *)mem;
	cr_assert_eq(mnemo_store64(w + 3, 0x1122334455667788ull), 0);
	cr_assert_eq(w[3], 0x1122334455667788ull);
	EXPECT_COST(1u, 1u);
}

Test(persist, shadow_update_swings_the_pointer)
{
	struct { void *slot; char a[256], b[256]; } *s = (void *)mem;
	char src[200];
	memset(src, 'x', sizeof(src));
	/* strict-clean (tests/tx_strict.sh): no plain store to the pool */
	cr_assert_eq(mnemo_store64((uint64_t *)&s->slot, (uint64_t)s->a), 0);
	mnemo_stat_reset();
	cr_assert_eq(mnemo_shadow_update(&s->slot, s->b, src, sizeof(src)), 0);
	cr_assert_eq(s->slot, (void *)s->b);
	cr_assert_eq(memcmp(s->b, src, sizeof(src)), 0);
	/* b starts 8 + 256 = 264 bytes in: 200 bytes cover lines 4..7 */
	EXPECT_COST(4u + 1u, 2u);
}

Test(persist, table_operation_costs)
{
	void *r;
	cr_assert_eq(mnemo_region_create(pool, "t", 4096, &r), 0);
	EXPECT_COST(64u + 2u + 1u, 2u); /* zeroing + slot (2 lines) + state */
	cr_assert_eq(mnemo_root_set(pool, "k", r), 0);
	EXPECT_COST(3u, 2u);
	cr_assert_eq(mnemo_root_set(pool, "k", mem), 0);
	EXPECT_COST(1u, 1u);
	cr_assert_eq(mnemo_root_delete(pool, "k"), 0);
	EXPECT_COST(1u, 1u);
	cr_assert_eq(mnemo_region_delete(pool, r), 0);
	EXPECT_COST(1u, 1u);
}

Test(persist, rawl_append_is_one_fence)
{
	mnemo_rawl *l;
	cr_assert_eq(mnemo_rawl_open(pool, "c", 1000, &l), 0);
	mnemo_stat_reset();
	uint64_t w[6] = {1, 2, 3, 4, 5, 6};
	cr_assert_eq(mnemo_rawl_append(l, w, 6), 0); /* 8 words from ring start */
	EXPECT_COST(1u, 1u);
	cr_assert_eq(mnemo_rawl_append(l, w, 1), 0); /* words 8..10 */
	EXPECT_COST(1u, 1u);
	cr_assert_eq(mnemo_rawl_truncate(l, 1), 0);
	EXPECT_COST(1u, 1u);
	mnemo_rawl_close(&l);
}

Test(persist, latency_emulator_charges_fences)
{
	mnemo_emul_set(0, 500000); /* 0.5 ms per fence */
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 20; i++)
		mnemo_fence();
	clock_gettime(CLOCK_MONOTONIC, &b);
	mnemo_emul_set(0, 0);
	double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
	cr_assert_geq(ms, 10.0, "20 fences at 0.5 ms took only %.3f ms", ms);
}

/* ---- RAWL against a model, across wraps, truncations and reopens ---- */

#define MAXREC 40
struct rec { uint64_t w[MAXREC]; size_t n; };
struct walk { struct rec *model; size_t at, len; bool bad; };

static int walk_cb(const uint64_t *w, size_t n, void *arg)
{
	struct walk *k = arg;
	struct rec *r = &k->model[(k->at++) % k->len];
	if (n != r->n || memcmp(w, r->w, n * 8))
		k->bad = true;
	return 0;
}

Test(persist, rawl_matches_model)
{
	uint64_t seed = t_seed();
	enum { SLOTS = 4096 };
	static struct rec model[SLOTS];
	size_t head = 0, tail = 0; /* model indices */
	mnemo_rawl *l;
	cr_assert_eq(mnemo_rawl_open(pool, "m", 300, &l), 0);
	for (int op = 0; op < 3000; op++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned r = (unsigned)(seed >> 33);
		if (r % 7 == 0 || mnemo_rawl_space(l) < MAXREC) {
			size_t n = r % 5 == 0 ? (size_t)-1 : (r / 7) % 4;
			cr_assert_eq(mnemo_rawl_truncate(l, n), 0);
			size_t live = tail - head;
			head += n < live ? n : live;
		} else {
			struct rec *m = &model[tail % SLOTS];
			m->n = (r / 7) % MAXREC;
			for (size_t j = 0; j < m->n; j++)
				m->w[j] = seed ^ (j * 0x9e3779b97f4a7c15ull);
			cr_assert_eq(mnemo_rawl_append(l, m->w, m->n), 0, "%s", mnemo_errormsg());
			tail++;
		}
		if (op % 97 == 0) { /* reopen: recovery must find the same log */
			mnemo_rawl_close(&l);
			cr_assert_eq(mnemo_rawl_open(pool, "m", 0, &l), 0);
		}
		cr_assert_eq(mnemo_rawl_count(l), tail - head);
	}
	struct walk k = {model, head, SLOTS, false};
	cr_assert_eq(mnemo_rawl_foreach(l, walk_cb, &k), 0);
	cr_assert(!k.bad && k.at == tail, "log differs from the model");
	mnemo_rawl_close(&l);
}

/* ---- RAWL edge cases at the end of the ring ---- */

static uint64_t *ring_of(const char *name)
{
	char rname[64];
	void *r;
	snprintf(rname, sizeof(rname), "rawl:%s", name);
	cr_assert_eq(mnemo_region_find(pool, rname, &r, NULL), 0);
	return (uint64_t *)((char *)r + 128);
}

static int count_cb(const uint64_t *w, size_t n, void *arg)
{
	(void)w;
	*(size_t *)arg += n;
	return 0;
}

Test(persist, rawl_tail_one_word_before_ring_end)
{
	mnemo_rawl *l;
	uint64_t w[100] = {0};
	cr_assert_eq(mnemo_rawl_open(pool, "e", 496, &l), 0);
	for (int i = 0; i < 5; i++) /* 5 x 99 words: tail at index 495 of 496 */
		cr_assert_eq(mnemo_rawl_append(l, w, 97), 0);
	mnemo_rawl_close(&l);
	cr_assert_eq(mnemo_rawl_open(pool, "e", 0, &l), 0);
	size_t words = 0;
	cr_assert_eq(mnemo_rawl_foreach(l, count_cb, &words), 0, "%s", mnemo_errormsg());
	cr_assert_eq(words, 5u * 97);
	cr_assert_eq(mnemo_rawl_space(l), 0u);
	cr_assert_eq(mnemo_rawl_truncate(l, SIZE_MAX), 0, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_rawl_count(l), 0u);
	static uint64_t big[496];
	cr_assert_leq(mnemo_rawl_space(l), 496u);
	cr_assert_eq(mnemo_rawl_append(l, big, mnemo_rawl_space(l)), 0, "%s", mnemo_errormsg());
	mnemo_rawl_close(&l);
}

static int last_cb(const uint64_t *w, size_t n, void *arg)
{
	*(uint64_t *)arg = n ? w[0] : 0;
	return 0;
}

/* An append that wrapped left its record R durable at the ring's start but
 * not the WRAP record before it (forged here).  Recovery must not let R
 * reappear when a later record ends exactly at the ring's end. */
Test(persist, rawl_orphan_after_wrap_never_returns)
{
	mnemo_rawl *l;
	uint64_t w[100] = {0};
	cr_assert_eq(mnemo_rawl_open(pool, "o", 496, &l), 0);
	for (int i = 0; i < 4; i++) { /* 4 x 102 words: tail at 408 */
		w[0] = (uint64_t)i;
		cr_assert_eq(mnemo_rawl_append(l, w, 100), 0);
	}
	cr_assert_eq(mnemo_rawl_truncate(l, 1), 0); /* head at 102 */
	w[0] = 666; /* R: WRAP at 408..409, R at 0..101 */
	cr_assert_eq(mnemo_rawl_append(l, w, 100), 0);
	mnemo_rawl_close(&l);
	ring_of("o")[409] ^= 1; /* the WRAP never became durable */
	cr_assert_eq(mnemo_rawl_open(pool, "o", 0, &l), 0);
	cr_assert_eq(mnemo_rawl_count(l), 3u, "R's append never returned");
	w[0] = 777; /* R2 fills 408..495 exactly */
	cr_assert_eq(mnemo_rawl_append(l, w, 86), 0);
	mnemo_rawl_close(&l);
	cr_assert_eq(mnemo_rawl_open(pool, "o", 0, &l), 0);
	uint64_t last = 0;
	mnemo_rawl_foreach(l, last_cb, &last);
	cr_assert_eq(mnemo_rawl_count(l), 4u);
	cr_assert_eq(last, 777u, "an orphan record came back");
	mnemo_rawl_close(&l);
}
