/*
 * util.c -- test helpers (see util.h).
 */
#include "util.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Scratch directories of this test process, removed when it exits. */
static char g_dirs[16][256];
static int g_ndirs;
static pid_t g_owner;

static void remove_dirs(void)
{
	if (getpid() != g_owner) /* a forked child leaves them alone */
		return;
	for (int i = 0; i < g_ndirs; i++) {
		DIR *d = opendir(g_dirs[i]);
		for (struct dirent *e; d && (e = readdir(d));) {
			char p[520];
			if (snprintf(p, sizeof(p), "%.255s/%.255s", g_dirs[i], e->d_name) < 0)
				continue;
			if (e->d_name[0] != '.')
				unlink(p);
		}
		if (d)
			closedir(d);
		rmdir(g_dirs[i]);
	}
}

/* $MNEMO_TEST_DIR (the guest tests put pools on a DAX mount), else /tmp. */
static const char *test_dir(void)
{
	const char *d = getenv("MNEMO_TEST_DIR");
	return d && *d ? d : "/tmp";
}

/* The backend of t_create() and of t_open() without an explicit backend:
 * $MNEMO_TEST_BACKEND=dax forces the dax backend (MAP_SYNC), so that a
 * test on a non-DAX directory fails instead of quietly using files. */
static unsigned test_backend(void)
{
	const char *b = getenv("MNEMO_TEST_BACKEND");
	if (!b || !*b || strcmp(b, "file") == 0)
		return MNEMO_BACKEND_FILE;
	cr_assert_str_eq(b, "dax", "MNEMO_TEST_BACKEND must be file or dax");
	return MNEMO_BACKEND_DAX;
}

const char *t_path(const char *tag)
{
	static char buf[4][512];
	static int next;
	char dir[256];
	cr_assert_lt(snprintf(dir, sizeof(dir), "%s/mnemo-test-XXXXXX", test_dir()),
		     (int)sizeof(dir) - 64, "MNEMO_TEST_DIR too long");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp %s: %s", dir, strerror(errno));
	if (g_ndirs == 0) {
		g_owner = getpid();
		atexit(remove_dirs);
	}
	if (g_ndirs < 16)
		snprintf(g_dirs[g_ndirs++], sizeof(g_dirs[0]), "%s", dir);
	char *out = buf[next++ % 4];
	snprintf(out, sizeof(buf[0]), "%.255s/%.200s.pool", dir, tag);
	return out;
}

void t_create(const char *path, size_t size)
{
	mnemo_pool *p = NULL;
	int rc = mnemo_pool_create(path, size, NULL, test_backend(), &p);
	cr_assert_eq(rc, 0, "create %s: %s", path, mnemo_errormsg());
	cr_assert_eq(mnemo_pool_close(&p), 0);
}

mnemo_pool *t_open(const char *path, unsigned flags)
{
	mnemo_pool *p = NULL;
	if ((flags & MNEMO_BACKEND_MASK) == MNEMO_BACKEND_AUTO &&
	    test_backend() == MNEMO_BACKEND_DAX)
		flags |= MNEMO_BACKEND_DAX;
	int rc = mnemo_pool_open(path, flags, &p);
	cr_assert_eq(rc, 0, "open %s: %s", path, mnemo_errormsg());
	return p;
}

uint64_t t_file_hash(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "fopen %s", path);
	uint64_t h = 1469598103934665603ull;
	int c;
	while ((c = getc(f)) != EOF)
		h = (h ^ (uint64_t)c) * 1099511628211ull;
	fclose(f);
	return h;
}

void t_copy(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(in >= 0 && out >= 0);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

uint64_t t_seed(void)
{
	const char *s = getenv("MNEMO_TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	cr_log_info("seed %llu (replay with MNEMO_TEST_SEED)", (unsigned long long)seed);
	fprintf(stderr, "test seed %llu\n", (unsigned long long)seed);
	return seed;
}

void t_sim_env(int n, bool tear, uint64_t seed)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%d", n);
	setenv("MNEMO_SIM_CRASH_AT", buf, 1);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)seed);
	if (tear)
		setenv("MNEMO_SIM_TEAR", buf, 1);
}

/* Run `work` in a child on the sim backend, crashing at point n. */
static bool run_child(const char *path, t_workload work, int n, bool tear,
		      uint64_t seed, struct t_progress *pr)
{
	pr->started = pr->done = 0;
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		t_sim_env(n, tear, seed);
		mnemo_pool *p = NULL;
		if (mnemo_pool_open(path, MNEMO_BACKEND_SIM, &p) != 0) {
			fprintf(stderr, "child open: %s\n", mnemo_errormsg());
			_exit(2);
		}
		work(p, pr);
		mnemo_pool_close(&p);
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "crash child died by signal %d", WTERMSIG(st));
	int code = WEXITSTATUS(st);
	cr_assert(code == 0 || code == MNEMO_SIM_CRASH_EXIT,
		  "crash child exited %d", code);
	return code == MNEMO_SIM_CRASH_EXIT;
}

int t_crash_every_point(const char *base, t_workload work, t_check check,
			bool tear, uint64_t tear_seed)
{
	struct t_progress *pr = mmap(NULL, sizeof(*pr), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(pr, MAP_FAILED);
	char path[300];
	snprintf(path, sizeof(path), "%s.crash", base);
	int n;
	for (n = 1; n < 100000; n++) {
		t_copy(base, path);
		bool crashed = run_child(path, work, n, tear, tear_seed + (uint64_t)n, pr);
		mnemo_pool *p = NULL;
		int rc = mnemo_pool_open(path, MNEMO_BACKEND_FILE, &p);
		cr_assert_eq(rc, 0, "recovery after crash at point %d: %s", n,
			     mnemo_errormsg());
		bool ok = check(p, pr->done) ||
			  (pr->started > pr->done && check(p, pr->done + 1));
		cr_assert(ok, "crash at persist point %d (tear=%d): state is neither "
			  "after %d ops nor after %d", n, tear, pr->done, pr->done + 1);
		mnemo_pool_close(&p);
		if (!crashed)
			break;
	}
	unlink(path);
	munmap(pr, sizeof(*pr));
	return n;
}

void t_crash_modes(const char *base, t_workload work, t_check check, int seeds)
{
	int points = t_crash_every_point(base, work, check, false, 0);
	cr_assert_gt(points, 1, "workload has no persist points");
	fprintf(stderr, "%s: crashed at each of %d persist points\n", base,
		points - 1);
	uint64_t seed = t_seed();
	for (int s = 0; s < seeds; s++)
		t_crash_every_point(base, work, check, true,
				    seed + (uint64_t)s * 1000003);
	setenv("MNEMO_SIM_TEAR_UNIT", "line", 1);
	for (int s = 0; s < seeds; s++)
		t_crash_every_point(base, work, check, true,
				    seed + (uint64_t)s * 7919 + 1);
	unsetenv("MNEMO_SIM_TEAR_UNIT");
}

const char *t_pool_with_region(const char *tag, size_t pool_size,
			       const char *name, size_t size)
{
	const char *path = t_path(tag);
	t_create(path, pool_size);
	mnemo_pool *p = t_open(path, 0);
	void *a;
	cr_assert_eq(mnemo_region_create(p, name, size, &a), 0, "%s",
		     mnemo_errormsg());
	mnemo_pool_close(&p);
	return path;
}

void *t_region(mnemo_pool *pool, const char *name)
{
	void *a = NULL;
	cr_assert_eq(mnemo_region_find(pool, name, &a, NULL), 0, "%s",
		     mnemo_errormsg());
	return a;
}

/* Set in a kill child once its ready byte is written; t_kill_loop clears
 * it in each new child. */
static int g_ready_sent;

void t_ready(int ready_fd)
{
	if (__atomic_load_n(&g_ready_sent, __ATOMIC_RELAXED) ||
	    __atomic_exchange_n(&g_ready_sent, 1, __ATOMIC_RELAXED))
		return;
	if (write(ready_fd, "r", 1) != 1)
		_exit(7); /* the parent reports "exited 7 before ready" */
}

/* "killed by signal 9", "exited 3": for failure messages. */
static const char *status_str(int st, char *buf, size_t n)
{
	if (WIFSIGNALED(st))
		snprintf(buf, n, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, n, "exited %d", WEXITSTATUS(st));
	return buf;
}

/* Block until child `pid` wrote its ready byte to `fd`; a read of 0 means
 * every write end is closed: the child died without committing. */
static void await_ready(int fd, pid_t pid, int k)
{
	char c, buf[64];
	ssize_t n;
	while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	if (n == 1)
		return;
	if (n < 0) /* a read error says nothing of the child: stop it */
		kill(pid, SIGKILL);
	int st = 0;
	waitpid(pid, &st, 0);
	cr_assert_fail("kill round %d: the child %s before it committed its "
		       "first operation (read of the ready pipe: %zd)", k,
		       status_str(st, buf, sizeof(buf)), n);
}

void t_kill_loop(const char *path, int kills,
		 void (*child)(const char *path, uint64_t seed, int ready_fd),
		 uint64_t (*after)(const char *path))
{
	uint64_t seed = t_seed(), last = after(path);
	for (int k = 0; k < kills; k++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		int fd[2];
		cr_assert_eq(pipe(fd), 0, "pipe: %s", strerror(errno));
		pid_t pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			close(fd[0]);
			g_ready_sent = 0;
			child(path, seed, fd[1]);
			_exit(0); /* not reached: children loop until killed */
		}
		/* only the child holds a write end now: its death ends
		 * the read below */
		close(fd[1]);
		await_ready(fd[0], pid, k);
		close(fd[0]);
		usleep((unsigned)(seed >> 33) % 20001);
		kill(pid, SIGKILL);
		int st;
		char buf[64];
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
			  "kill round %d: the child %s before the kill", k,
			  status_str(st, buf, sizeof(buf)));
		uint64_t now = after(path);
		cr_assert_gt(now, last, "kill round %d: %llu operations committed, "
			     "%llu before it: the child's committed operation "
			     "was lost", k, (unsigned long long)now,
			     (unsigned long long)last);
		last = now;
	}
	cr_log_info("%s: %llu operations committed over %d kills", path,
		    (unsigned long long)last, kills);
}
