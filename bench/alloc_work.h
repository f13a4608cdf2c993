/*
 * alloc_work.h -- the two workloads of the allocator benchmark and their
 * threads, compiled into each alloc_*.c with that program's allocator
 * inlined (no call through a pointer between the loop and the allocator).
 *
 * Include it once, after defining:
 *
 *   typedef ... be_obj;      what the program keeps per live block (a
 *                            pointer, or libpmemobj's PMEMoid)
 *   static int be_alloc(struct alloc_thread *t, be_obj *slot);
 *                            allocate o->size bytes into *slot; 0 or -1
 *   static void be_free(struct alloc_thread *t, be_obj *slot);
 *   static uint64_t *be_ptr(be_obj *slot);
 *                            the block's first word
 *   static void be_count_begin(struct alloc_thread *t);
 *   static void be_count_end(struct alloc_thread *t);
 *                            zero the calling thread's flush and fence
 *                            counters before its timed loop; store what
 *                            they counted in t->lines and t->fences after
 *                            it (-1: not counted)
 *
 * alloc_run() then starts o->threads threads; each one does its untimed
 * setup (one alloc/free pair; the window workload allocates its --window
 * blocks instead), waits for the others, runs o->ops pairs timed, and
 * tears down untimed.
 */
#ifndef BENCH_ALLOC_WORK_H
#define BENCH_ALLOC_WORK_H 1

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_common.h"

/* The start line: threads spin (not sleep) until all have arrived, so that
 * none of them starts its timed loop late because its CPU was idle (waking
 * an idle virtual CPU can take a millisecond). */
static unsigned alloc_arrived, alloc_nthreads;

static void alloc_start(void)
{
	__atomic_add_fetch(&alloc_arrived, 1, __ATOMIC_ACQ_REL);
	for (unsigned spins = 0;
	     __atomic_load_n(&alloc_arrived, __ATOMIC_ACQUIRE) < alloc_nthreads;
	     spins++) {
		__builtin_ia32_pause();
		if (spins > 1000000) /* more threads than CPUs */
			sched_yield();
	}
}

/* Keep the compiler from dropping an alloc/free pair whose block is not
 * otherwise used (gcc removes malloc+free of an unused pointer). */
static inline void alloc_escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static inline uint64_t alloc_rand(struct alloc_thread *t)
{
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return t->rng * 0x2545f4914f6cdd1dull;
}

/* The tag written into the first word of a block of the window. */
static inline uint64_t alloc_tag(const struct alloc_thread *t, uint64_t op)
{
	return (uint64_t)t->index << 48 | op;
}

static void alloc_pairs(struct alloc_thread *t)
{
	const struct alloc_opts *o = t->o;
	/* One untimed pair first: the thread's allocator state (and for
	 * libmnemo the heap's first segment) is set up outside the loop,
	 * as the window workload's setup does it. */
	be_obj b0;
	if (be_alloc(t, &b0))
		bench_die(&o->b, "thread %u: first allocation failed",
			  t->index);
	be_free(t, &b0);
	alloc_start();
	be_count_begin(t);
	t->start_ns = bench_now_ns();
	for (uint64_t i = 0; i < o->ops; i++) {
		be_obj b;
		if (be_alloc(t, &b))
			bench_die(&o->b, "thread %u: allocation %llu failed",
				  t->index, (unsigned long long)i);
		alloc_escape(&b);
		be_free(t, &b);
	}
	t->end_ns = bench_now_ns();
	be_count_end(t);
}

static void alloc_window(struct alloc_thread *t)
{
	const struct alloc_opts *o = t->o;
	uint64_t n = o->window;
	be_obj *win = calloc(n, sizeof(*win));
	uint64_t *tags = calloc(n, sizeof(*tags));
	if (!win || !tags)
		bench_die(&o->b, "out of memory");
	for (uint64_t j = 0; j < n; j++) {
		if (be_alloc(t, &win[j]))
			bench_die(&o->b, "thread %u: window allocation %llu "
				  "failed", t->index, (unsigned long long)j);
		*be_ptr(&win[j]) = tags[j] = alloc_tag(t, j);
	}
	alloc_start();
	be_count_begin(t);
	t->start_ns = bench_now_ns();
	for (uint64_t i = 0; i < o->ops; i++) {
		uint64_t j = alloc_rand(t) % n;
		if (*be_ptr(&win[j]) != tags[j])
			bench_die(&o->b, "thread %u, op %llu: block %p was "
				  "overwritten", t->index,
				  (unsigned long long)i, (void *)be_ptr(&win[j]));
		be_free(t, &win[j]);
		if (be_alloc(t, &win[j]))
			bench_die(&o->b, "thread %u: allocation %llu failed",
				  t->index, (unsigned long long)i);
		*be_ptr(&win[j]) = tags[j] = alloc_tag(t, n + i);
	}
	t->end_ns = bench_now_ns();
	be_count_end(t);
	for (uint64_t j = 0; j < n; j++) {
		if (*be_ptr(&win[j]) != tags[j])
			bench_die(&o->b, "thread %u: block %p was overwritten",
				  t->index, (void *)be_ptr(&win[j]));
		be_free(t, &win[j]);
	}
	free(tags);
	free(win);
}

static void *alloc_thread_main(void *arg)
{
	struct alloc_thread *t = arg;
	if (t->o->workload == ALLOC_PAIRS)
		alloc_pairs(t);
	else
		alloc_window(t);
	return NULL;
}

/* Run the workload of o on o->threads threads; t[] (o->threads entries)
 * receives their results.  Thread i
 * is pinned to the i-th CPU the process may use (modulo their number):
 * otherwise the scheduler may leave two threads on one CPU for the first
 * tens of milliseconds, which serializes short runs. */
static void alloc_run(const struct alloc_opts *o, struct alloc_thread *t)
{
	pthread_t tid[64];
	cpu_set_t allowed;
	int ncpu = 0, cpus[CPU_SETSIZE];
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &allowed))
				cpus[ncpu++] = c;
	alloc_arrived = 0;
	alloc_nthreads = o->threads;
	int rc;
	for (unsigned i = 0; i < o->threads; i++) {
		t[i].o = o;
		t[i].index = i;
		t[i].lines = t[i].fences = -1;
		/* a distinct nonzero xorshift state per thread and seed */
		t[i].rng = bench_key(o->b.seed * 64 + i) | 1;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		if (ncpu) {
			cpu_set_t one;
			CPU_ZERO(&one);
			CPU_SET(cpus[i % (unsigned)ncpu], &one);
			pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
		}
		rc = pthread_create(&tid[i], &attr, alloc_thread_main, &t[i]);
		pthread_attr_destroy(&attr);
		if (rc)
			bench_die(&o->b, "pthread_create: %s", strerror(rc));
	}
	for (unsigned i = 0; i < o->threads; i++)
		pthread_join(tid[i], NULL);
}

#endif
