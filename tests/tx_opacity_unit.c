/*
 * tx_opacity_unit.c -- opacity across the reuse of a freed block: a
 * transaction B that read a pointer to block X before another transaction
 * A unlinked and freed X never sees X's next owner's data (written with
 * plain stores) as long as B is healthy; it fails instead.
 *
 * The interleaving is forced with pipes, not hoped for: B stops inside its
 * transaction between two reads of X while the main thread commits A,
 * truncates the logs (mnemo_tx_drain: the heap reuses a block freed by a
 * transaction only once its record is retired), allocates X again and
 * writes it.  Every committed state has X[0] == X[1] == 7.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "util.h"

struct reader {
	uint64_t *root;  /* root[0]: the pointer to X */
	int go[2], done[2];
	uint64_t a, b;   /* X[0] and X[1] as B read them */
	int status;      /* B's status right after reading X[1] */
	int rc;          /* B's commit */
};

static void signal_fd(int fd)
{
	cr_assert_eq(write(fd, "x", 1), 1);
}

static void wait_fd(int fd)
{
	char c;
	cr_assert_eq(read(fd, &c, 1), 1);
}

/* B: read the pointer and X[0], let the others free and reuse X, then
 * read X[1] in the same transaction. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	cr_assert_eq(mnemo_tx_begin(), 0);
	uint64_t *x = (uint64_t *)(uintptr_t)mnemo_tx_get64(&r->root[0]);
	r->a = mnemo_tx_get64(&x[0]);
	signal_fd(r->done[1]);
	wait_fd(r->go[0]);
	r->b = mnemo_tx_get64(&x[1]);
	r->status = mnemo_tx_status();
	r->rc = mnemo_tx_commit();
	return NULL;
}

/* X of `size` bytes, X[0] = X[1] = 7 and root[0] = X, all committed. */
static uint64_t *publish(mnemo_pool *pool, uint64_t *root, size_t size)
{
	uint64_t *x = mnemo_heap_alloc(pool, size, 0, 0);
	cr_assert(x, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&x[0], 7);
	mnemo_tx_set64(&x[1], 7);
	mnemo_tx_set64(&root[0], (uint64_t)(uintptr_t)x);
	cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
	return x;
}

/* A: unlink X and free it in one transaction. */
static void unlink_and_free(uint64_t *root, uint64_t *x)
{
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&root[0], 0);
	cr_assert_eq(mnemo_heap_free(x, 0), 0, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
}

/* C: allocate blocks of `size` until X comes back (at most `tries`),
 * then write it with plain stores, as a new owner does. */
static void reuse(mnemo_pool *pool, uint64_t *x, size_t size, int tries)
{
	cr_assert_eq(mnemo_tx_drain(pool), 0, "%s", mnemo_errormsg());
	uint64_t *q = NULL;
	for (int i = 0; i < tries && q != x; i++)
		q = mnemo_heap_alloc(pool, size, 0, 0);
	cr_assert_eq(q, x, "the heap did not hand X out again");
	q[0] = 1;
	q[1] = 99;
}

static void run(const char *tag, size_t size, int tries)
{
	void *reg;
	const char *path = t_path(tag);
	t_create(path, 32 << 20);
	mnemo_pool *pool = t_open(path, 0);
	cr_assert_eq(mnemo_region_create(pool, "root", 4096, &reg), 0, "%s",
		     mnemo_errormsg());
	struct reader r = {.root = reg};
	cr_assert_eq(pipe(r.go), 0);
	cr_assert_eq(pipe(r.done), 0);
	uint64_t *x = publish(pool, r.root, size);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, reader_main, &r), 0);
	wait_fd(r.done[0]); /* B has read root[0] and X[0] */
	unlink_and_free(r.root, x);
	reuse(pool, x, size, tries);
	signal_fd(r.go[1]);
	pthread_join(t, NULL);
	cr_assert_eq(r.a, 7);
	/* While healthy, B saw a committed state (X[1] == X[0]); here it
	 * cannot have (root[0] changed under it), so it fails. */
	cr_assert(r.status != 0 || r.b == r.a,
		  "a healthy transaction read X[1] = %llu after X[0] = %llu "
		  "(its commit returned %d)",
		  (unsigned long long)r.b, (unsigned long long)r.a, r.rc);
	cr_assert_eq(r.status, -EAGAIN);
	cr_assert_eq(r.rc, -EAGAIN);
	mnemo_pool_close(&pool);
}

/* A large block: its pages go back at the next page allocation after the
 * drain, and the first fit hands them out again. */
Test(tx_opacity, large_block_reused_after_a_tx_free)
{
	run("opa_large", 256 << 10, 1);
}

/* A small block: back in its page after the drain; allocations of its
 * class reach it within a page's worth of blocks. */
Test(tx_opacity, small_block_reused_after_a_tx_free)
{
	run("opa_small", 64, 4096);
}

struct holder {
	uint64_t *x;
	int go[2], done[2];
};

/* T: hold a stripe of X in an open transaction until told to commit. */
static void *holder_main(void *arg)
{
	struct holder *h = arg;
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&h->x[3], 5);
	signal_fd(h->done[1]);
	wait_fd(h->go[0]);
	cr_assert_eq(mnemo_tx_commit(), 0, "%s", mnemo_errormsg());
	return NULL;
}

/* The free's stripe locks conflict like writes: a free of a block another
 * transaction is writing fails with -EAGAIN, rolls its transaction back
 * (the block stays allocated) and succeeds when run again. */
Test(tx_opacity, free_conflicts_with_a_writer_of_the_block)
{
	void *reg;
	const char *path = t_path("opa_conflict");
	t_create(path, 16 << 20);
	mnemo_pool *pool = t_open(path, 0);
	cr_assert_eq(mnemo_region_create(pool, "root", 4096, &reg), 0, "%s",
		     mnemo_errormsg());
	struct holder h = {.x = publish(pool, reg, 256)};
	cr_assert_eq(pipe(h.go), 0);
	cr_assert_eq(pipe(h.done), 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, holder_main, &h), 0);
	wait_fd(h.done[0]);
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_heap_free(h.x, 0), -EAGAIN);
	cr_assert_eq(mnemo_tx_commit(), -EAGAIN);
	cr_assert_geq(pmalloc_usable_size(h.x), 256, "still allocated");
	signal_fd(h.go[1]);
	pthread_join(t, NULL);
	cr_assert_eq(h.x[3], 5);
	unlink_and_free(reg, h.x);
	mnemo_pool_close(&pool);
}
