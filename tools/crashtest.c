/*
 * crashtest.c -- `mnemoctl crashtest`: run a user's program under
 * power-failure simulation, crashing it at each persist point, and check
 * the recovered pool with the user's command.
 *
 * The program needs no change: it opens its pool as usual (with the
 * backend left to the environment, MNEMO_BACKEND_AUTO), and the tool
 * sets MNEMO_BACKEND=sim with MNEMO_SIM_CRASH_AT=n (mnemosyne(7)).  One
 * run without a crash counts the points (MNEMO_SIM_POINTS_FILE).  Before
 * each run the pool file is put back as it was (or removed, if there was
 * none); after each crash CMD runs on the normal backend, and the first
 * point where it fails is reported with a command line that repeats it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool_cmds.h"

struct ct {
	const char *check, *pool, *tear; /* tear: NULL, "word" or "line" */
	long seeds, max;
	char **prog;
	char saved[4096]; /* the pool as it was ("" if it did not exist) */
	char out[8192];   /* what CMD printed last */
};

static int ct_usage(const char *why)
{
	fprintf(stderr, "mnemoctl crashtest: %s\nusage: mnemoctl crashtest "
		"--pool POOL --check CMD [--tear word|line] [--seeds N] "
		"[--max N] -- PROG [ARGS...]\n", why);
	return EXIT_USAGE;
}

static int ct_args(int argc, char **argv, struct ct *c)
{
	static const struct option lo[] = {
		{"check", required_argument, NULL, 'c'},
		{"pool", required_argument, NULL, 'p'},
		{"tear", required_argument, NULL, 't'},
		{"seeds", required_argument, NULL, 's'},
		{"max", required_argument, NULL, 'm'},
		{NULL, 0, NULL, 0}};
	int o;
	memset(c, 0, sizeof(*c));
	c->seeds = 1;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
		char *end = NULL;
		switch (o) {
		case 'c': c->check = optarg; break;
		case 'p': c->pool = optarg; break;
		case 't': c->tear = optarg; break;
		case 's': c->seeds = strtol(optarg, &end, 10); break;
		case 'm': c->max = strtol(optarg, &end, 10); break;
		default: return EXIT_USAGE;
		}
		if (end && (*end || end == optarg))
			return ct_usage("--seeds and --max take a number");
	}
	if (!c->check || !c->pool || optind >= argc)
		return ct_usage("--pool, --check and a program are required");
	if (c->tear && strcmp(c->tear, "word") && strcmp(c->tear, "line"))
		return ct_usage("--tear takes word or line");
	if (c->seeds < 1 || c->max < 0 || c->max == 1)
		return ct_usage("--seeds is at least 1, --max 0 (all) or at "
				"least 2");
	c->prog = argv + optind;
	return 0;
}

/* The pool as it was before the first run. */
static int reset_pool(const struct ct *c)
{
	if (!c->saved[0])
		return unlink(c->pool) == 0 || errno == ENOENT ? 0 : -1;
	return file_copy(c->saved, c->pool);
}

/* Run argv with the sim settings (point 0: no crash); its exit status,
 * or -1.  Its output goes to /dev/null: CMD says what broke. */
static int run_prog(const struct ct *c, long point, long seed,
		    const char *points_file)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char n[32], s[32];
		snprintf(n, sizeof(n), "%ld", point);
		snprintf(s, sizeof(s), "%ld", seed);
		setenv("MNEMO_BACKEND", "sim", 1);
		setenv("MNEMO_SIM_CRASH_AT", n, 1);
		if (points_file)
			setenv("MNEMO_SIM_POINTS_FILE", points_file, 1);
		if (c->tear) {
			setenv("MNEMO_SIM_TEAR", s, 1);
			setenv("MNEMO_SIM_TEAR_UNIT", c->tear, 1);
		}
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execvp(c->prog[0], c->prog);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run CMD with sh on the normal backend; its exit status (0: the pool
 * passed), what it printed in c->out. */
static int run_check(struct ct *c)
{
	int fd[2];
	if (pipe(fd) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		static const char *sim[] = {"MNEMO_BACKEND", "MNEMO_SIM_CRASH_AT",
					    "MNEMO_SIM_TEAR", "MNEMO_SIM_TEAR_UNIT",
					    "MNEMO_SIM_POINTS_FILE"};
		for (size_t i = 0; i < sizeof(sim) / sizeof(sim[0]); i++)
			unsetenv(sim[i]);
		dup2(fd[1], 1);
		dup2(fd[1], 2);
		close(fd[0]);
		execl("/bin/sh", "sh", "-c", c->check, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	if (pid < 0) {
		close(fd[0]);
		return -1;
	}
	/* Keep what fits, read the rest away: CMD must not die of SIGPIPE. */
	size_t used = 0, room = sizeof(c->out) - 1;
	ssize_t n;
	char sink[4096];
	while ((n = used < room ? read(fd[0], c->out + used, room - used)
				: read(fd[0], sink, sizeof(sink))) > 0)
		if (used < room)
			used += (size_t)n;
	c->out[used] = '\0';
	close(fd[0]);
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The number of persist points of a run without a crash, or -1 after
 * saying why. */
static long count_points(struct ct *c)
{
	char path[64] = "/tmp/mnemoctl-points-XXXXXX";
	int fd = mkstemp(path);
	long n = -1;
	if (fd >= 0)
		close(fd);
	if (fd < 0 || reset_pool(c) != 0) {
		perror("mnemoctl crashtest");
		if (fd >= 0)
			unlink(path);
		return -1;
	}
	int st = run_prog(c, 0, 0, path);
	FILE *f = fopen(path, "r");
	if (st != 0 || !f || fscanf(f, "%ld", &n) != 1)
		fprintf(stderr, "mnemoctl crashtest: %s %s without a crash "
			"(exit status %d); it must succeed first\n",
			c->prog[0], st ? "fails" : "opened no sim pool", st);
	if (f)
		fclose(f);
	unlink(path);
	return st == 0 ? n : -1;
}

/* The k-th of m points spread evenly over 1..n, first and last included. */
static long sample(long k, long m, long n)
{
	return m >= n ? k + 1 : 1 + (k * (n - 1) + (m - 1) / 2) / (m - 1);
}

static void report(const struct ct *c, long point, long n, long seed)
{
	printf("crashtest: the check failed after a crash at persist point "
	       "%ld of %ld", point, n);
	if (c->tear)
		printf(" (torn by %s, seed %ld)", c->tear, seed);
	if (c->saved[0])
		printf(".\nrepeat it:\n  cp %s %s\n", c->saved, c->pool);
	else
		printf(".\nrepeat it:\n  rm -f %s\n", c->pool);
	printf("  MNEMO_BACKEND=sim MNEMO_SIM_CRASH_AT=%ld", point);
	if (c->tear)
		printf(" MNEMO_SIM_TEAR=%ld MNEMO_SIM_TEAR_UNIT=%s", seed,
		       c->tear);
	for (char **a = c->prog; *a; a++)
		printf(" %s", *a);
	printf("\n  %s\nthe check printed:\n%s", c->check, c->out);
}

/* Crash at `point` (with each seed) and check: 0 passed, 1 failed
 * (reported), 2 could not run. */
static int one_point(struct ct *c, long point, long n)
{
	for (long seed = 1; seed <= c->seeds; seed++) {
		if (reset_pool(c) != 0) {
			perror("mnemoctl crashtest: resetting the pool");
			return EXIT_USAGE;
		}
		int st = run_prog(c, point, seed, NULL);
		if (st < 0) {
			perror("mnemoctl crashtest: running the program");
			return EXIT_USAGE;
		}
		if (st != MNEMO_SIM_CRASH_EXIT && st != 0) {
			fprintf(stderr, "mnemoctl crashtest: %s exited %d at "
				"point %ld instead of crashing\n", c->prog[0],
				st, point);
			return EXIT_USAGE;
		}
		int chk = run_check(c);
		if (chk < 0) {
			perror("mnemoctl crashtest: running the check");
			return EXIT_USAGE;
		}
		if (chk != 0) {
			report(c, point, n, seed);
			return EXIT_PROBLEMS;
		}
		if (!c->tear)
			break;
	}
	return 0;
}

static int crash_each(struct ct *c, long n)
{
	long m = c->max && c->max < n ? c->max : n;
	bool tty = isatty(2);
	for (long k = 0; k < m; k++) {
		long point = sample(k, m, n);
		if (tty)
			fprintf(stderr, "\rcrashtest: point %ld of %ld", point, n);
		int rc = one_point(c, point, n);
		if (rc) {
			if (tty)
				fputc('\n', stderr);
			return rc;
		}
	}
	if (tty)
		fputc('\n', stderr);
	printf("crashtest: %ld crash points of %ld%s, the check passed "
	       "after each\n", m, n, c->tear ? " (torn)" : "");
	return 0;
}

int cmd_crashtest(int argc, char **argv)
{
	struct ct c;
	if (ct_args(argc, argv, &c))
		return EXIT_USAGE;
	if (access(c.pool, F_OK) == 0) {
		snprintf(c.saved, sizeof(c.saved), "%s.crashtest-XXXXXX",
			 c.pool);
		int fd = mkstemp(c.saved);
		if (fd < 0 || (close(fd), file_copy(c.pool, c.saved)) != 0) {
			perror("mnemoctl crashtest: saving the pool");
			return EXIT_USAGE;
		}
	}
	long n = count_points(&c);
	int rc = n < 0 ? EXIT_USAGE : n == 0 ? 0 : crash_each(&c, n);
	if (n == 0)
		printf("crashtest: %s made no persist point\n", c.prog[0]);
	if (rc != EXIT_PROBLEMS && reset_pool(&c) == 0 && c.saved[0])
		unlink(c.saved); /* the pool as it was; the copy goes */
	else if (rc == EXIT_PROBLEMS && c.saved[0])
		printf("(the pool as it was before is kept in %s)\n", c.saved);
	return rc;
}
