/*
 * pfork.c -- fork under MNEMO_MALLOC: a child's memory is a snapshot taken
 * at the fork, whatever its parent (or its own child) does next.  No
 * libmnemo, no sleeps: processes take turns through pipes, so the output
 * is the same on every run (tests/preload_tree.sh checks its exact text).
 * Blocks are >= 256 bytes, so MNEMO_MALLOC=min=256 routes them too.
 * Exit status: 0 if every process saw what it should.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 1024
#define BIG (1 << 20)

static int bad;

static void check(const char *who, const char *what, const char *got,
		  const char *want)
{
	printf("%s: %s='%s'\n", who, what, got);
	bad |= strcmp(got, want) != 0;
}

static int big_is(const char *p, int c)
{
	for (int i = 0; i < BIG; i++)
		if (p[i] != c)
			return 0;
	return 1;
}

/* Which of fds 0..1023 are open, as a string of 0s and 1s. */
static void fds(char *s)
{
	for (int fd = 0; fd < 1024; fd++)
		s[fd] = fcntl(fd, F_GETFD) < 0 ? '0' : '1';
	s[1024] = '\0';
}

static void wait_for(int fd) /* a byte, or EOF when the writer died */
{
	char c;
	if (read(fd, &c, 1) != 1)
		printf("the other side died\n"), bad = 1;
	close(fd);
}

static int reap(const char *who, pid_t pid)
{
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return printf("%s: no child\n", who), 1;
	if (WIFEXITED(st))
		return printf("%s: child exit %d\n", who, WEXITSTATUS(st)),
		       WEXITSTATUS(st) != 0;
	return printf("%s: child killed by signal %d\n", who, WTERMSIG(st)), 1;
}

static void done(void)
{
	fflush(stdout);
	_exit(bad);
}

/* The parent frees, reallocates and rewrites after the fork; the child
 * must still see what was there at the fork, with the same descriptors. */
static void snapshot(void)
{
	static char before[1025], after[1025];
	char *r = malloc(N), *k = malloc(N), *big = malloc(BIG);
	int p[2];
	if (!r || !k || !big || pipe(p))
		exit(2);
	strcpy(r, "written before fork");
	strcpy(k, "kept before fork");
	memset(big, 'a', BIG);
	fflush(stdout);
	fds(before);
	pid_t pid = fork();
	if (pid == 0) {
		fds(after);
		close(p[1]);
		wait_for(p[0]);
		check("child", "fds", strcmp(before, after) ? "changed" : "same", "same");
		check("child", "reused", r, "written before fork");
		check("child", "kept", k, "kept before fork");
		check("child", "big", big_is(big, 'a') ? "a" : "changed", "a");
		strcpy(k, "CHILD WROTE THIS"); /* its own copy only */
		memset(big, 'c', BIG);
		done();
	}
	close(p[0]);
	free(r);
	r = malloc(N); /* usually the block just freed */
	strcpy(r, "PARENT WROTE THIS AFTER FORK");
	strcpy(k, "PARENT CHANGED THIS");
	memset(big, 'p', BIG);
	if (write(p[1], "x", 1) != 1)
		bad = 1;
	close(p[1]);
	bad |= reap("parent", pid);
	check("parent", "reused", r, "PARENT WROTE THIS AFTER FORK");
	check("parent", "kept", k, "PARENT CHANGED THIS");
	check("parent", "big", big_is(big, 'p') ? "p" : "changed", "p");
	free(r), free(k), free(big);
}

/* A child that allocates 100 MiB in 400-byte blocks, checks, frees, exits. */
static void alloc_child(void)
{
	enum { SZ = 400, COUNT = (100 << 20) / SZ };
	char *keep = malloc(N);
	if (!keep)
		exit(2);
	strcpy(keep, "parent's block");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char **v = malloc(COUNT * sizeof(*v));
		int ok = v != NULL;
		for (int i = 0; ok && i < COUNT; i++) {
			v[i] = malloc(SZ);
			if (!v[i])
				ok = 0;
			else
				memset(v[i], i & 0x7f, SZ);
		}
		for (int i = 0; ok && i < COUNT; i++)
			ok = v[i][0] == (i & 0x7f) && v[i][SZ - 1] == (i & 0x7f);
		for (int i = 0; v && i < COUNT; i++)
			free(v[i]);
		free(v);
		check("alloc child", "100 MiB", ok ? "allocated, checked, freed" : "FAILED",
		      "allocated, checked, freed");
		done();
	}
	bad |= reap("alloc parent", pid);
	check("alloc parent", "block", keep, "parent's block");
	char *more = malloc(N); /* the parent's heap still works */
	check("alloc parent", "malloc", more ? "ok" : "NULL", "ok");
	free(more), free(keep);
}

/* A child changes its copy and forks; the grandchild sees the child's
 * memory at that second fork, not the parent's and not the child's later. */
static void grandchild(void)
{
	char *b = malloc(N);
	int p[2], q[2];
	if (!b || pipe(p))
		exit(2);
	strcpy(b, "parent's text");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[1]);
		wait_for(p[0]);
		check("child", "text", b, "parent's text");
		strcpy(b, "child wrote this before its fork");
		if (pipe(q))
			exit(2);
		fflush(stdout);
		pid_t g = fork();
		if (g == 0) {
			close(q[1]);
			wait_for(q[0]);
			check("grandchild", "text", b, "child wrote this before its fork");
			done();
		}
		close(q[0]);
		free(b);
		b = malloc(N);
		strcpy(b, "CHILD WROTE THIS AFTER ITS FORK");
		if (write(q[1], "x", 1) != 1)
			bad = 1;
		close(q[1]);
		bad |= reap("child", g);
		check("child", "text", b, "CHILD WROTE THIS AFTER ITS FORK");
		done();
	}
	close(p[0]);
	strcpy(b, "PARENT WROTE THIS AFTER FORK");
	if (write(p[1], "x", 1) != 1)
		bad = 1;
	close(p[1]);
	bad |= reap("parent", pid);
	check("parent", "text", b, "PARENT WROTE THIS AFTER FORK");
	free(b);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "all";
	int all = strcmp(what, "all") == 0;
	if (all || strcmp(what, "snapshot") == 0)
		snapshot();
	if (all || strcmp(what, "alloc") == 0)
		alloc_child();
	if (all || strcmp(what, "grandchild") == 0)
		grandchild();
	printf("%s\n", bad ? "FAILED" : "all as expected");
	return bad;
}
