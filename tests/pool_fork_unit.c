/*
 * pool_fork_unit.c -- what a fork child sees of a pool: a snapshot taken at
 * the fork, whatever the parent writes afterwards, through the window, an
 * alias and the heap; the child's writes never reach the pool.
 *
 * Every test orders parent and child with pipes (no sleeps): the child
 * waits until the parent has overwritten what it had before the fork.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnemosyne.h"
#include "util.h"

#define PG 4096

struct sync {
	int go[2];   /* parent -> child: "I have written after the fork" */
	int done[2]; /* child -> parent: its verdict, one byte */
};

static void sync_init(struct sync *s)
{
	cr_assert(pipe(s->go) == 0 && pipe(s->done) == 0);
}

/* Child: wait for the parent's go. */
static void child_wait(struct sync *s)
{
	char c;
	if (read(s->go[0], &c, 1) != 1)
		_exit(3);
}

/* Parent: say go, then collect the child's verdict and exit status. */
static void parent_check(struct sync *s, pid_t pid, const char *what)
{
	char c = 1, verdict = 0;
	cr_assert_eq(write(s->go[1], &c, 1), 1);
	cr_assert_eq(read(s->done[0], &verdict, 1), 1, "%s: the child died",
		     what);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "%s: child status %d", what, st);
	cr_assert_eq(verdict, 'y', "%s: the child saw '%c'", what, verdict);
}

static void child_say(struct sync *s, int ok)
{
	char c = ok ? 'y' : 'n';
	_exit(write(s->done[1], &c, 1) == 1 ? 0 : 4);
}

static void t_child_fail(struct sync *s, const char *what)
{
	fprintf(stderr, "child: %s: %s\n", what, mnemo_errormsg());
	child_say(s, 0);
}

static void *spare(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED);
	return p;
}

Test(pool_fork, region_and_alias_are_a_snapshot)
{
	const char *path = t_pool_with_region("r", 8 << 20, "r", 4 * PG);
	mnemo_pool *pool = t_open(path, 0);
	char *r = t_region(pool, "r");
	char *a = spare(PG);
	cr_assert_eq(mnemo_region_alias(pool, r + PG, PG, a), 0);
	strcpy(r, "before");
	strcpy(a, "alias before");
	strcpy(r + 3 * PG, "untouched page");
	struct sync s;
	sync_init(&s);
	pid_t pid = fork();
	if (pid == 0) {
		child_wait(&s);
		int ok = !strcmp(r, "before") && !strcmp(a, "alias before") &&
			 !strcmp(r + PG, "alias before") &&
			 !strcmp(r + 3 * PG, "untouched page");
		strcpy(r, "child"); /* its own copy */
		child_say(&s, ok && !strcmp(r, "child"));
	}
	strcpy(r, "parent after");
	strcpy(a, "alias after");
	strcpy(r + 3 * PG, "parent after too");
	parent_check(&s, pid, "region");
	cr_assert_str_eq(r, "parent after", "the child's store reached us");
	mnemo_pool_close(&pool);
	pool = t_open(path, 0);
	r = t_region(pool, "r");
	cr_assert_str_eq(r, "parent after");
	cr_assert_str_eq(r + PG, "alias after");
	mnemo_pool_close(&pool);
}

/* The heap reuses a freed block at once: the child keeps the old bytes. */
Test(pool_fork, heap_blocks_are_a_snapshot)
{
	const char *path = t_path("h");
	t_create(path, 64 << 20);
	mnemo_pool *pool = t_open(path, 0);
	enum { N = 2000 };
	char **blk = spare(N * sizeof(char *));
	for (int i = 0; i < N; i++) {
		blk[i] = mnemo_heap_alloc(pool, 24 + (size_t)(i % 300) * 8, 0, 0);
		cr_assert(blk[i], "%s", mnemo_errormsg());
		snprintf(blk[i], 24, "block %d", i);
	}
	struct sync s;
	sync_init(&s);
	pid_t pid = fork();
	if (pid == 0) {
		child_wait(&s);
		int ok = 1;
		char want[24];
		for (int i = 0; i < N; i++) {
			snprintf(want, sizeof(want), "block %d", i);
			ok = ok && !strcmp(blk[i], want);
		}
		child_say(&s, ok);
	}
	for (int i = 0; i < N; i++) {
		size_t n = 24 + (size_t)(i % 300) * 8;
		mnemo_heap_free(blk[i], 0);
		char *p = mnemo_heap_alloc(pool, n, 0, 0);
		cr_assert(p);
		memset(p, 'P', n);
	}
	parent_check(&s, pid, "heap");
	mnemo_pool_close(&pool);
}

/* The child may use its snapshot like a pool (it allocates, frees and
 * commits there), but cannot grow it, and nothing reaches the file. */
Test(pool_fork, child_works_on_its_snapshot)
{
	const char *path = t_pool_with_region("c", 16 << 20, "r", PG);
	mnemo_pool *pool = t_open(path, 0);
	uint64_t *r = t_region(pool, "r");
	int rc0;
	MNEMO_TX(rc0) { mnemo_tx_set64(&r[0], 7); } /* the thread's log */
	cr_assert_eq(rc0, 0, "%s", mnemo_errormsg());
	mnemo_heap_free(mnemo_heap_alloc(pool, 100, 0, 0), 0); /* a segment */
	struct sync s;
	sync_init(&s);
	pid_t pid = fork();
	if (pid == 0) {
		child_wait(&s);
		char *b = mnemo_heap_alloc(pool, 100, 0, 0);
		if (!b || mnemo_heap_free(b, 0) != 0)
			t_child_fail(&s, "heap");
		int rc;
		MNEMO_TX(rc) { mnemo_tx_set64(&r[0], 8); }
		if (rc != 0 || r[0] != 8)
			t_child_fail(&s, "transaction");
		void *x;
		if (mnemo_region_create(pool, "new", 1 << 20, &x) != -EROFS)
			t_child_fail(&s, "region create");
		child_say(&s, 1);
	}
	parent_check(&s, pid, "child's own work");
	cr_assert_eq(r[0], 7);
	mnemo_pool_close(&pool);
	pool = t_open(path, 0); /* recovery would replay a child's record */
	r = t_region(pool, "r");
	cr_assert_eq(r[0], 7, "the child's transaction reached the pool");
	void *x;
	cr_assert_eq(mnemo_region_find(pool, "new", &x, NULL), -ENOENT);
	mnemo_pool_close(&pool);
}

/* A grandchild sees its parent's snapshot, not the pool. */
Test(pool_fork, grandchild_sees_the_childs_snapshot)
{
	const char *path = t_pool_with_region("g", 8 << 20, "r", PG);
	mnemo_pool *pool = t_open(path, 0);
	char *r = t_region(pool, "r");
	strcpy(r, "gen0");
	struct sync s;
	sync_init(&s);
	pid_t pid = fork();
	if (pid == 0) {
		child_wait(&s);
		strcpy(r, "gen1");
		pid_t g = fork();
		if (g == 0)
			_exit(strcmp(r, "gen1") == 0 ? 0 : 1);
		strcpy(r, "gen1 after");
		int st;
		waitpid(g, &st, 0);
		child_say(&s, WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	strcpy(r, "parent after");
	parent_check(&s, pid, "grandchild");
	mnemo_pool_close(&pool);
}

/* A heap much bigger than one segment: every block in the child's copy. */
Test(pool_fork, large_heap_snapshot, .timeout = 120)
{
	const char *path = t_path("l");
	t_create(path, 512 << 20);
	mnemo_pool *pool = t_open(path, 0);
	enum { N = 3000 };
	uint64_t **blk = spare(N * sizeof(uint64_t *));
	for (int i = 0; i < N; i++) {
		blk[i] = mnemo_heap_alloc(pool, 64 << 10, 0, 0);
		cr_assert(blk[i], "block %d: %s", i, mnemo_errormsg());
		blk[i][0] = (uint64_t)i;
		blk[i][8191] = ~(uint64_t)i;
	}
	struct sync s;
	sync_init(&s);
	pid_t pid = fork();
	if (pid == 0) {
		child_wait(&s);
		int ok = 1;
		for (int i = 0; i < N; i++)
			ok = ok && blk[i][0] == (uint64_t)i &&
			     blk[i][8191] == ~(uint64_t)i;
		child_say(&s, ok);
	}
	for (int i = 0; i < N; i++)
		blk[i][0] = blk[i][8191] = 0;
	parent_check(&s, pid, "large heap");
	mnemo_pool_close(&pool);
}
