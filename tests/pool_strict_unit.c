/*
 * pool_strict_unit.c -- strict mode (MNEMO_CHECK=strict, MNEMO_CHECK_STRICT):
 * a plain store to a pool's user data dies with a report and changes
 * nothing; every store through the library still works; a commit reports
 * stored pointers into volatile memory; bad settings are refused.
 *
 * A store that must die runs in a fork()ed child that opens the pool
 * itself (a fork child's pools are private snapshots, never strict); its
 * stderr comes back through a pipe, read to EOF before waitpid.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnemosyne.h"
#include "util.h"

#define POOL_SIZE (16u << 20)

/* The faulting store; not inlined, so the report's instruction address
 * must lie inside it. */
__attribute__((noinline)) static void raw_store(uint64_t *p, uint64_t v)
{
	*(volatile uint64_t *)p = v;
}

struct died {
	int status;
	char err[4096]; /* the child's stderr */
};

/* Run f(path, arg) in a child with stderr on a pipe; collect both. */
static void run_child(void (*f)(const char *, void *), const char *path,
		      void *arg, struct died *out)
{
	int fd[2];
	cr_assert_eq(pipe(fd), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fd[0]);
		dup2(fd[1], 2);
		f(path, arg);
		_exit(0); /* the store did not fault */
	}
	close(fd[1]);
	size_t n = 0;
	ssize_t k;
	while ((k = read(fd[0], out->err + n, sizeof(out->err) - 1 - n)) > 0)
		n += (size_t)k;
	out->err[n] = '\0';
	close(fd[0]);
	cr_assert_eq(waitpid(pid, &out->status, 0), pid);
}

/* The hex number after `key` in s (asserts it is there). */
static uintptr_t hex_after(const char *s, const char *key)
{
	const char *p = strstr(s, key);
	cr_assert(p, "no \"%s\" in: %s", key, s);
	return (uintptr_t)strtoull(p + strlen(key), NULL, 16);
}

static void assert_report(const struct died *d, uintptr_t addr,
			  const char *where)
{
	cr_assert(WIFSIGNALED(d->status) && WTERMSIG(d->status) == SIGABRT,
		  "status %d, stderr: %s", d->status, d->err);
	char a[64];
	snprintf(a, sizeof(a), "at 0x%lx in pool", (unsigned long)addr);
	cr_assert(strstr(d->err, a), "no \"%s\" in: %s", a, d->err);
	cr_assert(strstr(d->err, where), "no \"%s\" in: %s", where, d->err);
	uintptr_t rip = hex_after(d->err, "instruction at ");
	uintptr_t fn = (uintptr_t)raw_store;
	cr_assert(rip >= fn && rip < fn + 256, "instruction %#lx is not in "
		  "raw_store (%#lx): %s", (unsigned long)rip,
		  (unsigned long)fn, d->err);
}

static void store_strict(const char *path, void *arg)
{
	mnemo_pool *pool = t_open(path, MNEMO_CHECK_STRICT);
	raw_store((uint64_t *)arg, 0x5a5a5a5a5a5a5a5aull);
	mnemo_pool_close(&pool);
}

Test(strict, region_store_dies_and_changes_nothing)
{
	const char *path = t_pool_with_region("reg", POOL_SIZE, "data", 8192);
	mnemo_pool *pool = t_open(path, 0);
	uint64_t *r = t_region(pool, "data");
	mnemo_pool_close(&pool);
	uint64_t before = t_file_hash(path);
	struct died d;
	run_child(store_strict, path, r + 515, &d);
	char where[128];
	snprintf(where, sizeof(where), "region \"data\" [0x%lx, +8192)",
		 (unsigned long)r);
	assert_report(&d, (uintptr_t)(r + 515), where);
	cr_assert(strstr(d.err, path), "no pool path in: %s", d.err);
	cr_assert_eq(t_file_hash(path), before, "the pool file changed");
	pool = t_open(path, 0);
	cr_assert_eq(r[515], 0);
	mnemo_pool_close(&pool);
}

Test(strict, heap_block_store_dies_and_changes_nothing)
{
	const char *path = t_path("blk");
	t_create(path, POOL_SIZE);
	mnemo_pool *pool = t_open(path, 0);
	uint64_t *b = mnemo_heap_alloc(pool, 100, 0, MNEMO_HEAP_ZERO);
	cr_assert(b);
	cr_assert_eq(mnemo_root_set(pool, "blk", b), 0);
	off_t off = (off_t)((uintptr_t)b - (uintptr_t)mnemo_pool_base(pool));
	mnemo_pool_close(&pool);
	struct died d;
	run_child(store_strict, path, b + 3, &d);
	char where[128];
	snprintf(where, sizeof(where), "heap block 0x%lx of 112 bytes",
		 (unsigned long)b);
	assert_report(&d, (uintptr_t)(b + 3), where);
	/* The open wrote the heap's state, so the block's own bytes in the
	 * file are what must be unchanged (zero). */
	uint64_t now[14] = {1};
	int fd = open(path, O_RDONLY);
	cr_assert_eq(pread(fd, now, sizeof(now), off), (ssize_t)sizeof(now));
	close(fd);
	for (int i = 0; i < 14; i++)
		cr_assert_eq(now[i], 0, "word %d of the block changed", i);
}

/* In the child: a transaction allocates a block and initialises it with
 * plain stores, as a constructor does (allowed); once it has committed,
 * a plain store to the block faults. */
static void construct_then_store(const char *path, void *arg)
{
	mnemo_pool *pool = t_open(path, MNEMO_CHECK_STRICT);
	uint64_t *r = t_region(pool, "r");
	(void)arg;
	if (mnemo_tx_begin() != 0)
		_exit(2);
	uint64_t *b = mnemo_heap_alloc(pool, 64, 0, 0);
	for (int i = 0; i < 8; i++)
		b[i] = 100 + (uint64_t)i;
	mnemo_persist(b, 64);
	mnemo_tx_set64(&r[0], (uint64_t)b);
	if (mnemo_tx_commit() != 0)
		_exit(3);
	fprintf(stderr, "committed %p\n", (void *)b);
	raw_store(&b[1], 0x5a5a5a5a5a5a5a5aull);
}

Test(strict, new_block_of_the_transaction_takes_plain_stores)
{
	const char *path = t_pool_with_region("ctor", POOL_SIZE, "r", 4096);
	struct died d;
	run_child(construct_then_store, path, NULL, &d);
	uintptr_t b = hex_after(d.err, "committed ");
	char where[128];
	snprintf(where, sizeof(where), "heap block 0x%lx of 64 bytes",
		 (unsigned long)b);
	assert_report(&d, b + 8, where);
	mnemo_pool *pool = t_open(path, 0);
	uint64_t *r = t_region(pool, "r");
	cr_assert_eq(r[0], b);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(((uint64_t *)b)[i], 100 + (uint64_t)i);
	mnemo_pool_close(&pool);
}

static void on_segv(int sig)
{
	(void)sig;
	_exit(42);
}

/* In the child: SIGSEGV handled by on_segv (arg: or the default action),
 * then a strict pool opens and a store hits address 16. */
static void store_null(const char *path, void *arg)
{
	signal(SIGSEGV, arg ? on_segv : SIG_DFL);
	mnemo_pool *pool = t_open(path, MNEMO_CHECK_STRICT);
	raw_store((uint64_t *)16, 1);
	mnemo_pool_close(&pool);
}

/* A fault outside strict pools goes on to the handler installed before
 * strict mode's, or to the default action. */
Test(strict, other_faults_are_passed_on)
{
	const char *path = t_pool_with_region("null", POOL_SIZE, "d", 4096);
	struct died d;
	run_child(store_null, path, (void *)1, &d);
	cr_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 42,
		  "status %d: %s", d.status, d.err);
	cr_assert_null(strstr(d.err, "libmnemo"), "%s", d.err);
	run_child(store_null, path, NULL, &d);
	cr_assert(WIFSIGNALED(d.status) && WTERMSIG(d.status) == SIGSEGV,
		  "status %d: %s", d.status, d.err);
	cr_assert_null(strstr(d.err, "libmnemo"), "%s", d.err);
}

/* A fork child's pools are private snapshots: not checked, and its
 * stores, the library's included, never reach the pool (the mirror, a
 * shared mapping of the file, is gone in the child). */
Test(strict, fork_child_writes_its_snapshot_only)
{
	const char *path = t_pool_with_region("fork", POOL_SIZE, "r", 4096);
	mnemo_pool *pool = t_open(path, MNEMO_CHECK_STRICT);
	uint64_t *r = t_region(pool, "r");
	/* The child cannot create the pool's logs: they exist before. */
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&r[3], 3);
	cr_assert_eq(mnemo_tx_commit(), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		r[1] = 5; /* a plain store: the snapshot is writable */
		if (mnemo_tx_begin() == 0)
			mnemo_tx_set64(&r[0], 99);
		int ok = mnemo_tx_commit() == 0 && r[0] == 99 && r[1] == 5 &&
			 mnemo_store64(&r[2], 7) == 0 && r[2] == 7;
		_exit(ok ? 0 : 1);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	cr_assert(r[0] == 0 && r[1] == 0 && r[2] == 0, "the child's stores "
		  "reached the pool: %lu %lu %lu", (unsigned long)r[0],
		  (unsigned long)r[1], (unsigned long)r[2]);
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	cr_assert(r[0] == 0 && r[1] == 0 && r[2] == 0);
	mnemo_pool_close(&pool);
}

/* Every way the library writes user data, in a strict pool. */
static void library_writes(mnemo_pool *pool, uint64_t *r)
{
	uint64_t v = 0x1111;
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(&r[0], &v, 8), 0);
	cr_assert_eq(mnemo_tx_memset(&r[16], 0x22, 64), 0);
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(mnemo_store64(&r[1], 0x3333), 0);
	char src[40];
	memset(src, 0x44, sizeof(src));
	cr_assert_eq(mnemo_shadow_update((void **)&r[2], &r[64], src,
					 sizeof(src)), 0);
	uint64_t *z = mnemo_heap_alloc(pool, 256, 0, MNEMO_HEAP_ZERO);
	cr_assert(z);
	cr_assert_eq(mnemo_tx_begin(), 0);
	uint64_t *t = mnemo_heap_alloc(pool, 48, 0, 0);
	mnemo_tx_set64(&t[5], 0x5555);
	mnemo_tx_set64(&r[3], (uint64_t)t);
	mnemo_tx_set64(&r[4], (uint64_t)z);
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(mnemo_heap_alloc_to((void **)&r[5], 64, MNEMO_HEAP_ZERO),
		     0, "%s", mnemo_errormsg());
	/* An aborted transaction writes nothing. */
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&r[0], 0xdead);
	mnemo_tx_abort();
	/* mnemo_write: the library's plain copy, then a persist. */
	uint64_t w[3] = {0x6666, 0x7777, 0x8888};
	mnemo_write(&r[100], w, sizeof(w));
	mnemo_persist(&r[100], sizeof(w));
}

Test(strict, library_stores_work)
{
	const char *path = t_path("lib");
	t_create(path, POOL_SIZE);
	mnemo_pool *pool = t_open(path, MNEMO_CHECK_STRICT);
	uint64_t *r;
	cr_assert_eq(mnemo_region_create(pool, "r", 8192, (void **)&r), 0);
	library_writes(pool, r);
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	cr_assert_eq(r[0], 0x1111);
	cr_assert_eq(r[1], 0x3333);
	cr_assert_eq(r[2], (uint64_t)&r[64]);
	cr_assert_eq(((unsigned char *)&r[16])[63], 0x22);
	cr_assert_eq(((unsigned char *)&r[64])[39], 0x44);
	cr_assert_eq(((uint64_t *)r[3])[5], 0x5555);
	for (int i = 0; i < 32; i++)
		cr_assert_eq(((uint64_t *)r[4])[i], 0);
	cr_assert_neq(r[5], 0);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(((uint64_t *)r[5])[i], 0);
	cr_assert(r[100] == 0x6666 && r[101] == 0x7777 && r[102] == 0x8888);
	cr_assert_eq(mnemo_heap_check(pool), 0);
	mnemo_pool_close(&pool);
}

/* pcalloc and prealloc work on the default pool: strict by environment. */
Test(strict, default_pool_heap_calls_work)
{
	const char *path = t_path("dflt");
	setenv("MNEMO_POOL", path, 1);
	setenv("MNEMO_CHECK", "strict", 1);
	uint64_t *c = pcalloc(10, 8);
	cr_assert(c, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_store64(&c[9], 9), 0);
	uint64_t *g = prealloc(c, 4000);
	cr_assert(g, "%s", mnemo_errormsg());
	mnemo_pool *pool = mnemo_default_pool();
	cr_assert_eq(mnemo_root_set(pool, "g", g), 0);
	void *m = pmap(NULL, 4096, PROT_READ | PROT_WRITE, 0);
	cr_assert(m);
	cr_assert_eq(mnemo_store64(m, 77), 0);
	mnemo_pool_close(&pool);
	unsetenv("MNEMO_CHECK");
	pool = t_open(path, 0);
	cr_assert_eq(g[9], 9);
	for (int i = 0; i < 9; i++)
		cr_assert_eq(g[i], 0);
	cr_assert_eq(*(uint64_t *)m, 77);
	mnemo_pool_close(&pool);
}

/* Count the lines of what fd (a pipe) holds now. */
static int lines_in(int fd, char *buf, size_t n)
{
	ssize_t k = read(fd, buf, n - 1);
	buf[k > 0 ? k : 0] = '\0';
	int lines = 0;
	for (char *p = buf; (p = strchr(p, '\n')); p++)
		lines++;
	return lines;
}

/* A buffer of glibc's brk heap: malloc's, but ASan's malloc is its own
 * (mmap'd chunks, which strict mode does not bound), so sbrk's there. */
static void *heap_buffer(void)
{
#ifdef __SANITIZE_ADDRESS__
	return sbrk(64);
#else
	return malloc(64);
#endif
}

static void heap_buffer_free(void *p)
{
#ifndef __SANITIZE_ADDRESS__
	free(p);
#else
	(void)p;
#endif
}

Test(strict, volatile_pointers_are_reported)
{
	const char *path = t_pool_with_region("refs", POOL_SIZE, "r", 4096);
	mnemo_pool *pool = t_open(path, MNEMO_CHECK_STRICT);
	uint64_t *r = t_region(pool, "r");
	char *heap = heap_buffer();
	uint64_t local = 1;
	int fd[2], saved = dup(2);
	cr_assert_eq(pipe(fd), 0);
	dup2(fd[1], 2);
	mnemo_stat_reset();
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&r[0], (uint64_t)heap);
	mnemo_tx_set64(&r[1], (uint64_t)&local);
	mnemo_tx_set64(&r[2], (uint64_t)&r[100]); /* into the pool: fine */
	mnemo_tx_set64(&r[3], 12345);
	cr_assert_eq(mnemo_tx_commit(), 0);
	dup2(saved, 2);
	char out[2048];
	int lines = lines_in(fd[0], out, sizeof(out));
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_STRICT_REFS), 2, "%s", out);
	cr_assert_eq(lines, 2, "%s", out);
	char a[64];
	snprintf(a, sizeof(a), "pointer 0x%lx (malloc heap) at persistent "
		 "address 0x%lx", (unsigned long)heap, (unsigned long)&r[0]);
	cr_assert(strstr(out, a), "no \"%s\" in: %s", a, out);
	snprintf(a, sizeof(a), "pointer 0x%lx (thread stack)",
		 (unsigned long)&local);
	cr_assert(strstr(out, a), "no \"%s\" in: %s", a, out);
	cr_assert_eq(r[0], (uint64_t)heap, "the commit must still happen");
	mnemo_pool_close(&pool);
	heap_buffer_free(heap);
}

Test(strict, off_reports_nothing)
{
	const char *path = t_pool_with_region("off", POOL_SIZE, "r", 4096);
	setenv("MNEMO_CHECK", "off", 1);
	mnemo_pool *pool = t_open(path, 0);
	uint64_t *r = t_region(pool, "r");
	uint64_t local = 1;
	mnemo_stat_reset();
	cr_assert_eq(mnemo_tx_begin(), 0);
	mnemo_tx_set64(&r[1], (uint64_t)&local);
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_eq(mnemo_stat_get(MNEMO_STAT_STRICT_REFS), 0);
	r[2] = 7; /* a plain store: allowed when not strict */
	mnemo_pool_close(&pool);
}

Test(strict, bad_settings_are_refused)
{
	const char *path = t_pool_with_region("bad", POOL_SIZE, "r", 4096);
	mnemo_pool *pool = NULL;
	setenv("MNEMO_CHECK", "bogus", 1);
	cr_assert_eq(mnemo_pool_open(path, 0, &pool), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "MNEMO_CHECK=bogus: expected off "
			 "or strict"), "%s", mnemo_errormsg());
	/* a private open (mnemoctl check) ignores the environment */
	cr_assert_eq(mnemo_pool_open(path, MNEMO_PRIVATE, &pool), 0, "%s",
		     mnemo_errormsg());
	mnemo_pool_close(&pool);
	unsetenv("MNEMO_CHECK");
	cr_assert_eq(mnemo_pool_open(path, MNEMO_CHECK_STRICT |
				     MNEMO_BACKEND_SIM, &pool), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "sim backend"), "%s",
		  mnemo_errormsg());
	cr_assert_eq(mnemo_pool_open(path, MNEMO_CHECK_STRICT | MNEMO_PRIVATE,
				     &pool), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "MNEMO_PRIVATE"), "%s",
		  mnemo_errormsg());
	cr_assert_null(pool);
	pool = t_open(path, 0); /* nothing was left open or locked */
	mnemo_pool_close(&pool);
}
