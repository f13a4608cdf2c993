/*
 * heap_stress.c -- the persistent heap under randomised stress against the
 * model of heap_model.h: one thread, across close/reopen and the recovery
 * collection, and several threads freeing each other's blocks.  Minutes
 * long: run by `make check-stress`, not by `make check`.
 *
 * Seeds come from t_seed(): replay a failure with MNEMO_TEST_SEED.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "heap_model.h"

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
