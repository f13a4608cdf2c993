/*
 * progress.c -- the display behind progress.h.  The library calls show()
 * about 66 times a stage; on a terminal only the reports that come a
 * second after the start, and 100 ms after the last one drawn, are drawn,
 * so a quick command never flickers.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mnemosyne.h"
#include "pool_cmds.h"
#include "progress.h"

enum mode { NEVER, AUTO, ALWAYS };

static struct {
	const char *cmd;
	enum mode mode;
	double start, last; /* seconds: when started, when last drawn */
	bool drawn;         /* a line is on the terminal */
} g;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* "1.2 MiB of 3.4 MiB" for bytes, "120 of 340 pages" for pages. */
static void amount(const char *stage, uint64_t done, uint64_t total,
		   char *out, size_t len)
{
	if (strcmp(stage, "mark") == 0) {
		char a[32], b[32];
		snprintf(out, len, "%s of %s", human_size(done, a, sizeof(a)),
			 human_size(total, b, sizeof(b)));
	} else {
		snprintf(out, len, "%" PRIu64 " of %" PRIu64 " pages", done,
			 total);
	}
}

static void show(const char *stage, uint64_t done, uint64_t total, void *arg)
{
	(void)arg;
	char what[96];
	unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
	amount(stage, done, total, what, sizeof(what));
	if (g.mode == ALWAYS) {
		fprintf(stderr, "mnemoctl %s: %s %3u%% (%s)\n", g.cmd, stage,
			pct, what);
		return;
	}
	double t = now();
	if (t - g.start < 1.0 || (g.drawn && t - g.last < 0.1))
		return;
	fprintf(stderr, "\r\033[Kmnemoctl %s: %s %3u%% (%s)", g.cmd, stage,
		pct, what);
	g.drawn = true;
	g.last = t;
}

void progress_start(const char *cmd)
{
	const char *m = getenv("MNEMOCTL_PROGRESS");
	g.cmd = cmd;
	g.drawn = false;
	g.start = now();
	g.mode = m && strcmp(m, "always") == 0 ? ALWAYS
		 : m && strcmp(m, "never") == 0 ? NEVER
		 : isatty(2)			 ? AUTO
						 : NEVER;
	if (g.mode != NEVER)
		mnemo_progress_set(show, NULL);
}

void progress_end(void)
{
	mnemo_progress_set(NULL, NULL);
	if (g.drawn)
		fputs("\r\033[K", stderr);
	g.drawn = false;
}
