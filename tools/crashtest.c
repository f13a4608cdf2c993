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
 *
 * SIGINT, SIGTERM or SIGHUP (unless ignored when it started) stops it:
 * the child under test is killed with its process group, the pool is put
 * back as it was, and the signal is raised again.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
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
	long unreached;   /* points PROG finished without reaching */
	long first_unreached;
};

/* Set by the handler: the signal that stops the run, and the process
 * group of the child it kills (0: none running). */
static volatile sig_atomic_t g_stop;
static volatile pid_t g_child;
static const int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};

static void on_stop(int sig)
{
	g_stop = sig;
	if (g_child > 0)
		kill(-g_child, SIGKILL);
}

/* Catch the stop signals that are not ignored (nohup, a background job
 * keep theirs).  No SA_RESTART: waitpid returns EINTR and loops. */
static void catch_stops(void)
{
	for (size_t i = 0; i < sizeof(kStopSignals) / sizeof(int); i++) {
		struct sigaction old, sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_stop;
		sigemptyset(&sa.sa_mask);
		if (sigaction(kStopSignals[i], NULL, &old) == 0 &&
		    old.sa_handler != SIG_IGN)
			sigaction(kStopSignals[i], &sa, NULL);
	}
}

/* Wait for the child pid, which runs in its own process group, so that
 * a stop signal can kill it with everything it started. */
static int wait_child(pid_t pid)
{
	int st;
	g_child = pid;
	if (g_stop)
		kill(-pid, SIGKILL);
	pid_t r;
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	g_child = 0;
	if (r != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Print s for sh(1): as it is if it holds only safe characters, else in
 * single quotes (a quote inside as '\''). */
static void print_quoted(const char *s)
{
	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789_-./:=,+@%") == strlen(s)) {
		fputs(s, stdout);
		return;
	}
	putchar('\'');
	for (; *s; s++)
		if (*s == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*s);
	putchar('\'');
}

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
		setpgid(0, 0);
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
		/* its own process group, so not the terminal's foreground
		 * one: no input from the terminal either */
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execvp(c->prog[0], c->prog);
		_exit(127);
	}
	setpgid(pid, pid); /* both sides: no race with the kill */
	return wait_child(pid);
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
		setpgid(0, 0);
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
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
	setpgid(pid, pid);
	g_child = pid;
	if (g_stop) /* a signal before g_child was set killed nobody */
		kill(-pid, SIGKILL);
	/* Keep what fits, read the rest away: CMD must not die of SIGPIPE. */
	size_t used = 0, room = sizeof(c->out) - 1;
	ssize_t n;
	char sink[4096];
	while ((n = used < room ? read(fd[0], c->out + used, room - used)
				: read(fd[0], sink, sizeof(sink))) > 0 ||
	       (n < 0 && errno == EINTR && !g_stop))
		if (n > 0 && used < room)
			used += (size_t)n;
	c->out[used] = '\0';
	close(fd[0]);
	return wait_child(pid);
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
	if (g_stop)
		st = -1; /* stopped: cmd_crashtest says so */
	else if (st != 0 || !f || fscanf(f, "%ld", &n) != 1)
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
	if (c->saved[0]) {
		printf(".\nrepeat it:\n  cp ");
		print_quoted(c->saved);
	} else {
		printf(".\nrepeat it:\n  rm -f");
	}
	putchar(' ');
	print_quoted(c->pool);
	printf("\n  MNEMO_BACKEND=sim MNEMO_SIM_CRASH_AT=%ld", point);
	if (c->tear)
		printf(" MNEMO_SIM_TEAR=%ld MNEMO_SIM_TEAR_UNIT=%s", seed,
		       c->tear);
	for (char **a = c->prog; *a; a++) {
		putchar(' ');
		print_quoted(*a);
	}
	/* CMD is a shell command already: as the user gave it */
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
		if (g_stop)
			return EXIT_USAGE;
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
		if (st == 0 && seed == 1 && !c->unreached++)
			c->first_unreached = point; /* counted once a point */
		int chk = run_check(c);
		if (g_stop)
			return EXIT_USAGE;
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
	if (c->unreached) {
		printf("crashtest: %s finished without reaching %ld of the %ld "
		       "points (the first: %ld); it made %ld persist points in "
		       "the counting run, fewer in these: a program whose "
		       "persist points vary from run to run cannot be tested "
		       "point by point; the check passed after each run\n",
		       c->prog[0], c->unreached, m, c->first_unreached, n);
		return EXIT_USAGE;
	}
	printf("crashtest: %ld crash points of %ld%s, the check passed "
	       "after each\n", m, n, c->tear ? " (torn)" : "");
	return 0;
}

/* After a stop signal: the pool back as it was, its copy removed, then
 * the signal again with its default action. */
static int stopped(struct ct *c)
{
	int sig = g_stop;
	if (reset_pool(c) == 0) {
		if (c->saved[0])
			unlink(c->saved);
		fprintf(stderr, "\ncrashtest: stopped by signal %d; %s is as it "
			"was before\n", sig, c->pool);
	} else {
		fprintf(stderr, "\ncrashtest: stopped by signal %d; could not "
			"put %s back (%s): the pool as it was is in %s\n", sig,
			c->pool, strerror(errno),
			c->saved[0] ? c->saved : "(none: remove it)");
	}
	signal(sig, SIG_DFL);
	raise(sig);
	return EXIT_USAGE;
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
	catch_stops();
	long n = count_points(&c);
	int rc = n < 0 ? EXIT_USAGE : n == 0 ? 0 : crash_each(&c, n);
	if (g_stop)
		return stopped(&c);
	if (n == 0)
		printf("crashtest: %s made no persist point\n", c.prog[0]);
	if (rc != EXIT_PROBLEMS && reset_pool(&c) == 0 && c.saved[0])
		unlink(c.saved); /* the pool as it was; the copy goes */
	else if (rc == EXIT_PROBLEMS && c.saved[0])
		printf("(the pool as it was before is kept in %s)\n", c.saved);
	return rc;
}
