/*
 * pool_check.c -- `mnemoctl check`: verify a pool without writing it.
 *
 * The pool is opened with MNEMO_PRIVATE (its file read-only, mapped
 * privately), so the library's own validation runs as at any open
 * (header, tables, region extents, transaction records and their
 * checksums; recovery replays committed records, in this process's memory
 * only), and then the heap's checker and a collection (also in memory)
 * that finds allocated blocks nothing reaches.  Exit status: 0 healthy,
 * 1 problems found, 2 could not run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pool_cmds.h"

/* What check found: at most one problem per stage (each stage stops at
 * the first one it meets). */
struct finding {
	const char *stage; /* "open" or "heap" */
	char what[512];
};

struct report {
	struct finding f[2];
	int n;
	uint64_t unreachable_blocks, unreachable_bytes;
};

static void found(struct report *r, const char *stage)
{
	r->f[r->n].stage = stage;
	snprintf(r->f[r->n].what, sizeof(r->f[0].what), "%s",
		 mnemo_errormsg());
	r->n++;
}

static void print_report(const char *path, const struct report *r,
			 bool json)
{
	if (json) {
		struct json j = {stdout, 0, {0}};
		json_open(&j, NULL, '{');
		json_str(&j, "path", path);
		json_bool(&j, "healthy", r->n == 0);
		json_open(&j, "problems", '[');
		for (int i = 0; i < r->n; i++) {
			json_open(&j, NULL, '{');
			json_str(&j, "stage", r->f[i].stage);
			json_str(&j, "what", r->f[i].what);
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_u64(&j, "unreachable_blocks", r->unreachable_blocks);
		json_u64(&j, "unreachable_bytes", r->unreachable_bytes);
		json_close(&j, '}');
		return;
	}
	for (int i = 0; i < r->n; i++)
		printf("%s: problem (%s): %s\n", path, r->f[i].stage,
		       r->f[i].what);
	if (r->unreachable_blocks)
		printf("%s: %llu allocated blocks (%llu bytes) are reachable "
		       "from no root or region (a crash leaks them; the next "
		       "open after one reclaims them)\n", path,
		       (unsigned long long)r->unreachable_blocks,
		       (unsigned long long)r->unreachable_bytes);
	if (r->n == 0)
		printf("%s: healthy\n", path);
}

/* Whether an open that failed with rc says the pool is damaged (a
 * problem found) rather than that check could not look at it. */
static bool damaged(int rc)
{
	return rc == -EUCLEAN || rc == -ENOTSUP || rc == -EMEDIUMTYPE;
}

int cmd_check(int argc, char **argv)
{
	struct pool_opts o;
	struct report r = {0};
	if (pool_args(argc, argv, "json", &o))
		return EXIT_USAGE;
	setenv("MNEMO_HEAP_GC", "always", 1); /* in memory: MNEMO_PRIVATE */
	mnemo_pool *p = NULL;
	int rc = mnemo_pool_open(o.path, MNEMO_PRIVATE, &p);
	if (rc && !damaged(rc)) {
		fprintf(stderr, "mnemoctl check: %s\n", mnemo_errormsg());
		return EXIT_USAGE;
	}
	if (rc) {
		found(&r, "open");
	} else {
		struct mnemo_heap_stats st;
		if (mnemo_heap_check(p))
			found(&r, "heap");
		if (mnemo_heap_stats(p, &st, sizeof(st)) == 0) {
			r.unreachable_blocks = st.reclaimed_blocks;
			r.unreachable_bytes = st.reclaimed_bytes;
		}
		mnemo_pool_close(&p);
	}
	print_report(o.path, &r, o.json);
	return r.n ? EXIT_PROBLEMS : 0;
}
