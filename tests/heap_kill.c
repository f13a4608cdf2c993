/*
 * heap_kill.c -- kill -9 stress of the persistent heap on the file
 * backend.  The child runs two threads over one table of slots; each op
 * replaces a random slot's block: plain pmalloc + persist + store64 then
 * pfree of the old one, or the same through a transaction, or through
 * mnemo_heap_alloc_to / mnemo_heap_free_from.  Every block starts with a
 * header naming its slot and size, and ends with a checksummed fill.
 * After each kill the parent reopens the pool (recovery and collection)
 * and checks: every published block is intact and distinct, the heap's
 * own check passes, and the allocated blocks are exactly the published
 * ones (leaks were reclaimed, nothing published was lost).  Each thread
 * counts its finished ops in a word after the slots; the child signals
 * readiness after its first, and the sum must grow with every kill.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define KILLS 40
#define NSLOT 512

struct blk {
	uint64_t slot, size, sum;
};

static void **g_slot; /* NSLOT slots, then one op count per thread */
static mnemo_pool *g_pool;
static int g_ready_fd;

#define REGION_SIZE ((NSLOT + 2) * sizeof(void *))

/* Finished ops of thread `half`: only that thread writes it. */
static uint64_t *done_count(void **slots, unsigned half)
{
	return (uint64_t *)&slots[NSLOT + half];
}

static uint64_t step(uint64_t *s)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return *s;
}

static uint64_t fill_sum(const struct blk *b)
{
	const unsigned char *d = (const unsigned char *)(b + 1);
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < b->size - sizeof(*b); i++)
		h = (h ^ d[i]) * 1099511628211ull;
	return h;
}

static size_t pick_size(uint64_t r)
{
	if (r % 50 == 0)
		return 40000 + r % 100000; /* large */
	return sizeof(struct blk) + r % 300;
}

static void init_blk(struct blk *b, unsigned s, size_t size, uint64_t r)
{
	b->slot = s;
	b->size = size;
	memset(b + 1, (int)(r & 0xff), size - sizeof(*b));
	b->sum = fill_sum(b);
}

/* plain: persist the new block, publish, then free the old one */
static void op_plain(unsigned s, size_t size, uint64_t r)
{
	struct blk *b = mnemo_heap_alloc(g_pool, size, 0, 0);
	if (!b)
		_exit(3);
	init_blk(b, s, size, r);
	mnemo_persist(b, size);
	void *old = g_slot[s];
	mnemo_store64((uint64_t *)&g_slot[s], (uint64_t)b);
	if (old)
		pfree(old);
}

static void op_tx(unsigned s, size_t size, uint64_t r)
{
	for (;;) {
		mnemo_tx_begin();
		struct blk *b = mnemo_heap_alloc(g_pool, size, 0, 0);
		if (b) {
			/* the fill is written in place before publication
			 * is logged: a fresh block is private */
			init_blk(b, s, size, r);
			mnemo_persist(b, size);
			void *old = (void *)mnemo_tx_get64((uint64_t *)&g_slot[s]);
			if (old)
				pfree(old);
			mnemo_tx_set64((uint64_t *)&g_slot[s], (uint64_t)b);
		}
		int rc = mnemo_tx_commit();
		if (rc == 0)
			return;
		if (rc != -EAGAIN)
			_exit(4);
	}
}

static void op_publish(unsigned s, size_t size, uint64_t r)
{
	if (g_slot[s] && mnemo_heap_free_from(&g_slot[s]) != 0)
		_exit(5);
	if (mnemo_heap_alloc_to(&g_slot[s], size, MNEMO_HEAP_ZERO) != 0)
		_exit(6);
	struct blk *b = g_slot[s];
	/* published zeroed, then filled: a kill here leaves sum == 0 (stores
	 * reach the file in program order); verify() accepts that */
	init_blk(b, s, size, r);
	mnemo_persist(b, size);
}

static void *worker(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg;
	unsigned half = (unsigned)(seed & 1);
	for (;;) {
		uint64_t r = step(&seed);
		/* each thread owns half the slots: no two threads race on
		 * one slot outside transactions */
		unsigned s = (unsigned)(r >> 20) % (NSLOT / 2) * 2 + half;
		size_t size = pick_size(r >> 8);
		switch (r % 3) {
		case 0:
			op_plain(s, size, r);
			break;
		case 1:
			op_tx(s, size, r);
			break;
		default:
			op_publish(s, size, r);
		}
		uint64_t *n = done_count(g_slot, half);
		mnemo_store64(n, *n + 1);
		t_ready(g_ready_fd);
	}
	return NULL;
}

static void child(const char *path, uint64_t seed, int ready_fd)
{
	g_ready_fd = ready_fd;
	g_pool = t_open(path, 0);
	g_slot = t_region(g_pool, "slots");
	pthread_t t;
	pthread_create(&t, NULL, worker, (void *)(uintptr_t)(seed | 1));
	worker((void *)(uintptr_t)(seed & ~1ull));
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* Asserts the invariants; returns the ops finished so far. */
static uint64_t verify(const char *path)
{
	mnemo_pool *p = t_open(path, 0);
	void **sl = t_region(p, "slots");
	cr_assert_eq(mnemo_heap_check(p), 0, "%s", mnemo_errormsg());
	uintptr_t seen[NSLOT];
	unsigned live = 0;
	for (unsigned s = 0; s < NSLOT; s++) {
		struct blk *b = sl[s];
		if (!b)
			continue;
		seen[live++] = (uintptr_t)b;
		size_t u = pmalloc_usable_size(b);
		cr_assert_gt(u, 0, "slot %u: %p is not an allocated block", s,
			     (void *)b);
		if (b->sum == 0)
			continue; /* op_publish killed during the fill */
		cr_assert_eq(b->slot, s, "slot %u holds slot %llu's block", s,
			     (unsigned long long)b->slot);
		cr_assert_leq(b->size, u);
		cr_assert_eq(b->sum, fill_sum(b), "slot %u: fill damaged", s);
	}
	qsort(seen, live, sizeof(seen[0]), cmp_ptr);
	for (unsigned i = 1; i < live; i++)
		cr_assert_neq(seen[i], seen[i - 1], "one block in two slots");
	struct mnemo_heap_stats st;
	mnemo_heap_stats(p, &st, sizeof(st));
	cr_assert_eq(st.live_blocks, live, "%llu blocks allocated, %u "
		     "published (%llu reclaimed at open)",
		     (unsigned long long)st.live_blocks, live,
		     (unsigned long long)st.reclaimed_blocks);
	uint64_t done = *done_count(sl, 0) + *done_count(sl, 1);
	mnemo_pool_close(&p);
	return done;
}

Test(heap_kill, random_kill9_then_recover, .timeout = 300)
{
	setenv("MNEMO_TX_LOG_SIZE", "16K", 1);
	unsetenv("MNEMO_HEAP_GC");
	const char *path = t_pool_with_region("heapkill", 64 << 20, "slots",
					      REGION_SIZE);
	t_kill_loop(path, KILLS, child, verify);
	/* t_kill_loop saw the count grow with each kill */
	uint64_t done = verify(path);
	cr_assert_geq(done, (uint64_t)KILLS, "a finished op was lost");
}
