/*
 * alloc_mnemo.c -- the allocator benchmark on libmnemo's persistent heap,
 * and the heap's recovery time.
 *
 * Workloads (alloc_work.h): pmalloc / pfree outside any transaction on the
 * default pool, which is created on --dir (/dev/shm) with the file backend
 * and named by $MNEMO_POOL; or, with --heap-alloc, mnemo_heap_alloc on the
 * explicitly opened pool.  The durability is what $MNEMO_DURABILITY says
 * (bench/run-alloc runs the default, "process": no CPU flush, a flush only
 * counts; and "pmem": clwb/clflushopt + sfence, the like-for-like peer of
 * PMDK's PMEM_IS_PMEM_FORCE=1).  Each thread reads its own flushed-line and
 * fence counters (mnemo_stat_get) after its timed loop.
 *
 * --recovery: a child process creates a pool, fills it with --fill bytes
 * of live --size-byte blocks linked into a list whose head is the named
 * root "alloc-list", allocates --leak more blocks that nothing points to,
 * and _exit()s without closing the pool (a crash).  The parent then times
 * (b) mnemo_pool_open after the crash, which runs the recovery collection
 * (it must free exactly the leaked blocks and keep the list), checks the
 * list, closes the pool cleanly and times (a) mnemo_pool_open after that
 * clean close.  It prints mnemo_heap_stats() after each open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mnemosyne.h>

#include "alloc_common.h"

#define ROOT "alloc-list"

typedef void *be_obj;

static mnemo_pool *g_pool;
static size_t g_size;
static int g_heap_alloc;

static int be_alloc(struct alloc_thread *t, be_obj *slot)
{
	(void)t;
	*slot = g_heap_alloc ? mnemo_heap_alloc(g_pool, g_size, 0, 0)
			     : pmalloc(g_size);
	return *slot ? 0 : -1;
}

static void be_free(struct alloc_thread *t, be_obj *slot)
{
	(void)t;
	pfree(*slot);
}

static uint64_t *be_ptr(be_obj *slot) { return *slot; }

static void be_count_begin(struct alloc_thread *t)
{
	(void)t;
	mnemo_stat_reset();
}

static void be_count_end(struct alloc_thread *t)
{
	t->lines = (double)mnemo_stat_get(MNEMO_STAT_FLUSHED_LINES);
	t->fences = (double)mnemo_stat_get(MNEMO_STAT_FENCES);
}

#include "alloc_work.h"

/* The durability a file-backend pool runs with, from its backend name. */
static const char *durability_of(const char *backend)
{
	if (strcmp(backend, "file") == 0)
		return "process";
	if (strcmp(backend, "file(pmem)") == 0)
		return "pmem";
	if (strcmp(backend, "file(power)") == 0)
		return "power";
	return backend;
}

static void pool_path(const struct alloc_opts *o, const char *what,
		      char *path, size_t n)
{
	char name[64];
	snprintf(name, sizeof(name), "alloc-mnemo-%s-%ld.pool", what,
		 (long)getpid());
	snprintf(path, n, "%s", bench_path(&o->b, name));
}

static int workload(const struct alloc_opts *o)
{
	char path[4096];
	pool_path(o, "work", path, sizeof(path));
	size_t poolsize = o->pool_size ? o->pool_size : (size_t)256 << 20;
	int rc = mnemo_pool_create(path, poolsize, NULL, MNEMO_BACKEND_FILE,
				   &g_pool);
	if (rc)
		bench_die(&o->b, "mnemo_pool_create %s: %s", path,
			  mnemo_errormsg());
	if (!o->heap_alloc) {
		/* pmalloc's default pool is $MNEMO_POOL: this one, opened
		 * again by mnemo_default_pool() with the file backend. */
		if ((rc = mnemo_pool_close(&g_pool)))
			bench_die(&o->b, "mnemo_pool_close: %s",
				  mnemo_errormsg());
		setenv("MNEMO_POOL", path, 1);
		setenv("MNEMO_BACKEND", "file", 1);
		if (!(g_pool = mnemo_default_pool()))
			bench_die(&o->b, "mnemo_default_pool: %s",
				  mnemo_errormsg());
	}
	const char *backend = mnemo_pool_backend(g_pool);
	const char *env = getenv("MNEMO_DURABILITY");
	printf("INFO backend=%s flush_instruction=%s\n", backend,
	       mnemo_flush_instruction());
	if (!o->b.quiet)
		printf("mnemo: pool %s (%zu MiB, backend %s, "
		       "MNEMO_DURABILITY=%s), %s\n",
		       path, poolsize >> 20, backend, env ? env : "(unset)",
		       o->heap_alloc ? "mnemo_heap_alloc/pfree"
				     : "pmalloc/pfree");

	struct alloc_thread t[64] = {{0}};
	alloc_run(o, t);
	alloc_result(o, "mnemo", durability_of(backend), t);

	if ((rc = mnemo_heap_check(g_pool)))
		bench_die(&o->b, "mnemo_heap_check: %s", mnemo_errormsg());
	if ((rc = mnemo_pool_close(&g_pool)))
		bench_die(&o->b, "mnemo_pool_close: %s", mnemo_errormsg());
	if (!o->b.keep && mnemo_pool_delete(path))
		bench_die(&o->b, "mnemo_pool_delete: %s", mnemo_errormsg());
	return 0;
}

/* ---- --recovery ---- */

struct node {
	struct node *next;
	uint64_t index;
};

/* The child: fill, leak, crash.  Sends the fill time down `fd`. */
static void __attribute__((noreturn))
fill_and_crash(const struct alloc_opts *o, const char *path, size_t poolsize,
	       uint64_t n, int fd)
{
	mnemo_pool *pool;
	if (mnemo_pool_create(path, poolsize, NULL, MNEMO_BACKEND_FILE, &pool))
		bench_die(&o->b, "mnemo_pool_create %s: %s", path,
			  mnemo_errormsg());
	struct node *head = NULL;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		struct node *p = mnemo_heap_alloc(pool, o->size, 0, 0);
		if (!p)
			bench_die(&o->b, "mnemo_heap_alloc after %llu blocks: "
				  "%s", (unsigned long long)i,
				  mnemo_errormsg());
		p->next = head;
		p->index = i;
		/* made durable by the next allocation's fence */
		mnemo_flush(p, sizeof(*p));
		head = p;
	}
	mnemo_fence();
	if (mnemo_root_set(pool, ROOT, head))
		bench_die(&o->b, "mnemo_root_set: %s", mnemo_errormsg());
	uint64_t fill_ns = bench_now_ns() - t0;
	for (uint64_t i = 0; i < o->leak; i++)
		if (!mnemo_heap_alloc(pool, o->size, 0, 0))
			bench_die(&o->b, "mnemo_heap_alloc (leak): %s",
				  mnemo_errormsg());
	if (write(fd, &fill_ns, sizeof(fill_ns)) != sizeof(fill_ns))
		bench_die(&o->b, "write to the parent: %s", strerror(errno));
	_exit(0); /* no close: the heap stays marked open, as in a crash */
}

/* Open the pool, timed; print and return its heap's statistics. */
static mnemo_pool *timed_open(const struct alloc_opts *o, const char *path,
			      const char *what, uint64_t objects,
			      struct mnemo_heap_stats *st)
{
	mnemo_pool *pool;
	uint64_t t0 = bench_now_ns();
	int rc = mnemo_pool_open(path, MNEMO_BACKEND_FILE, &pool);
	uint64_t ns = bench_now_ns() - t0;
	if (rc)
		bench_die(&o->b, "mnemo_pool_open %s: %s", path,
			  mnemo_errormsg());
	if ((rc = mnemo_heap_stats(pool, st, sizeof(*st))))
		bench_die(&o->b, "mnemo_heap_stats: %s", mnemo_errormsg());
	if (!o->b.quiet)
		printf("mnemo: open after a %s: %.3f s (heap recovery_ns "
		       "%.3f s), collected %d, reclaimed %llu blocks, "
		       "%llu live blocks\n", what, (double)ns / 1e9,
		       (double)st->recovery_ns / 1e9, st->collected,
		       (unsigned long long)st->reclaimed_blocks,
		       (unsigned long long)st->live_blocks);
	printf("RECOVERY case=%s backend=%s objects=%llu size=%llu "
	       "open_ns=%llu recovery_ns=%llu collected=%d "
	       "reclaimed_blocks=%llu live_blocks=%llu heap_mib=%llu\n",
	       what, mnemo_pool_backend(pool), (unsigned long long)objects,
	       (unsigned long long)o->size, (unsigned long long)ns,
	       (unsigned long long)st->recovery_ns, st->collected,
	       (unsigned long long)st->reclaimed_blocks,
	       (unsigned long long)st->live_blocks,
	       (unsigned long long)(st->heap_bytes >> 20));
	fflush(stdout);
	return pool;
}

/* The list from the root holds exactly blocks n-1 .. 0, in that order. */
static void check_list(const struct alloc_opts *o, mnemo_pool *pool,
		       uint64_t n)
{
	void *head;
	if (mnemo_root_get(pool, ROOT, &head))
		bench_die(&o->b, "mnemo_root_get: %s", mnemo_errormsg());
	uint64_t k = n;
	for (const struct node *p = head; p; p = p->next)
		if (k == 0 || p->index != --k)
			bench_die(&o->b, "the list is broken at block %llu",
				  (unsigned long long)k);
	if (k)
		bench_die(&o->b, "the list lost %llu blocks",
			  (unsigned long long)k);
}

static int recovery(const struct alloc_opts *o)
{
	if (o->size < sizeof(struct node))
		bench_die(&o->b, "--recovery needs --size >= %zu",
			  sizeof(struct node));
	uint64_t n = o->fill / o->size;
	if (n == 0)
		bench_die(&o->b, "--fill: at least one block");
	char path[4096];
	pool_path(o, "recovery", path, sizeof(path));
	/* Room for the heap's segments, which double up to 1 GiB each. */
	size_t poolsize = o->pool_size ? o->pool_size
				       : (2 * o->fill + ((size_t)64 << 20) +
					  ((1u << 20) - 1)) & ~(((size_t)1 << 20) - 1);
	if (!o->b.quiet)
		printf("mnemo: recovery: pool %s (%zu MiB), %llu live blocks "
		       "of %llu bytes (%llu MiB), %llu leaked at the crash\n",
		       path, poolsize >> 20, (unsigned long long)n,
		       (unsigned long long)o->size,
		       (unsigned long long)((n * o->size) >> 20),
		       (unsigned long long)o->leak);
	fflush(stdout);

	int fds[2];
	if (pipe(fds))
		bench_die(&o->b, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		bench_die(&o->b, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		fill_and_crash(o, path, poolsize, n, fds[1]);
	}
	close(fds[1]);
	uint64_t fill_ns = 0;
	ssize_t got = read(fds[0], &fill_ns, sizeof(fill_ns));
	close(fds[0]);
	int status;
	if (waitpid(pid, &status, 0) != pid)
		bench_die(&o->b, "waitpid: %s", strerror(errno));
	if (got != sizeof(fill_ns) || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		unlink(path);
		bench_die(&o->b, "the filling child failed (status 0x%x)",
			  status);
	}
	if (!o->b.quiet)
		printf("mnemo: filled in %.2f s (%.0f allocations/s), then "
		       "crashed (_exit without close)\n", (double)fill_ns / 1e9,
		       (double)n / ((double)fill_ns / 1e9));
	printf("INFO fill_ns=%llu fill_ops_per_s=%.0f\n",
	       (unsigned long long)fill_ns, (double)n / ((double)fill_ns / 1e9));

	/* (b) after the crash: the collection frees exactly the leaks. */
	struct mnemo_heap_stats st;
	mnemo_pool *pool = timed_open(o, path, "crash", n, &st);
	if (!st.collected || st.reclaimed_blocks != o->leak ||
	    st.live_blocks != n)
		bench_die(&o->b, "recovery: collected %d, reclaimed %llu "
			  "blocks (expected %llu), %llu live (expected %llu)",
			  st.collected, (unsigned long long)st.reclaimed_blocks,
			  (unsigned long long)o->leak,
			  (unsigned long long)st.live_blocks,
			  (unsigned long long)n);
	check_list(o, pool, n);
	if (mnemo_pool_close(&pool))
		bench_die(&o->b, "mnemo_pool_close: %s", mnemo_errormsg());

	/* (a) after a clean close: no collection. */
	pool = timed_open(o, path, "clean", n, &st);
	if (st.collected || st.live_blocks != n)
		bench_die(&o->b, "clean open: collected %d, %llu live blocks "
			  "(expected %llu)", st.collected,
			  (unsigned long long)st.live_blocks,
			  (unsigned long long)n);
	if (mnemo_pool_close(&pool))
		bench_die(&o->b, "mnemo_pool_close: %s", mnemo_errormsg());
	if (!o->b.keep && mnemo_pool_delete(path))
		bench_die(&o->b, "mnemo_pool_delete: %s", mnemo_errormsg());
	return 0;
}

int main(int argc, char **argv)
{
	struct alloc_opts o;
	alloc_parse(argc, argv, &o, ALLOC_OPT_MNEMO,
		    "  (durability from $MNEMO_DURABILITY: unset = process, "
		    "or pmem)\n");
	g_size = o.size;
	g_heap_alloc = o.heap_alloc;
	return o.recovery ? recovery(&o) : workload(&o);
}
