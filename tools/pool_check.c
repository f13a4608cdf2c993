/*
 * pool_check.c -- `mnemoctl check`: verify a pool without writing it.
 *
 * The pool is opened with MNEMO_PRIVATE (its file read-only, mapped
 * privately), so the library's own validation runs as at any open
 * (header, tables, region extents, transaction records and their
 * checksums; recovery replays committed records, in this process's memory
 * only), and then the heap's checker and a collection (also in memory)
 * that finds allocated blocks nothing reaches.  Exit status: 0 healthy,
 * 1 problems found, 2 could not run.  `mnemoctl repair` is here too.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "pool_cmds.h"
#include "progress.h"

/* What check found: the open stops at the first problem it meets (its
 * message says where); the heap check names every damaged page, of which
 * the first kKept are kept and the rest counted. */
enum { kKept = 64 };

struct finding {
	const char *stage; /* "open" or "heap" */
	bool has_offset;
	uint64_t offset; /* in the pool file */
	char what[512];
};

struct report {
	struct finding f[kKept];
	int n, kept;
	uint64_t unreachable_blocks, unreachable_bytes;
};

static struct finding *add(struct report *r)
{
	r->n++;
	return r->kept < kKept ? &r->f[r->kept++] : NULL;
}

static void found(struct report *r, const char *stage)
{
	struct finding *f = add(r);
	if (f) {
		f->stage = stage;
		snprintf(f->what, sizeof(f->what), "%s", mnemo_errormsg());
	}
}

static void found_at(uint64_t offset, const char *what, void *arg)
{
	struct finding *f = add(arg);
	if (f) {
		f->stage = "heap";
		f->has_offset = true;
		f->offset = offset;
		snprintf(f->what, sizeof(f->what), "%s", what);
	}
}

static void print_report(const char *path, const struct report *r,
			 bool json)
{
	if (json) {
		struct json j = {stdout, 0, {0}};
		json_open(&j, NULL, '{');
		json_str(&j, "path", path);
		json_bool(&j, "healthy", r->n == 0);
		json_u64(&j, "problem_count", (uint64_t)r->n);
		json_open(&j, "problems", '[');
		for (int i = 0; i < r->kept; i++) {
			json_open(&j, NULL, '{');
			json_str(&j, "stage", r->f[i].stage);
			if (r->f[i].has_offset)
				json_u64(&j, "offset", r->f[i].offset);
			json_str(&j, "what", r->f[i].what);
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_u64(&j, "unreachable_blocks", r->unreachable_blocks);
		json_u64(&j, "unreachable_bytes", r->unreachable_bytes);
		json_close(&j, '}');
		return;
	}
	for (int i = 0; i < r->kept; i++)
		if (r->f[i].has_offset)
			printf("%s: problem (%s) at offset %#llx: %s\n", path,
			       r->f[i].stage,
			       (unsigned long long)r->f[i].offset,
			       r->f[i].what);
		else
			printf("%s: problem (%s): %s\n", path, r->f[i].stage,
			       r->f[i].what);
	if (r->n > r->kept)
		printf("%s: and %d more problems of the heap\n", path,
		       r->n - r->kept);
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
	progress_start("check");
	int rc = mnemo_pool_open(o.path, MNEMO_PRIVATE, &p);
	if (rc && !damaged(rc)) {
		progress_end();
		fprintf(stderr, "mnemoctl check: %s\n", mnemo_errormsg());
		return EXIT_USAGE;
	}
	if (rc) {
		found(&r, "open");
	} else {
		struct mnemo_heap_stats st;
		if (mnemo_heap_check_each(p, found_at, &r) < 0)
			found(&r, "heap");
		if (mnemo_heap_stats(p, &st, sizeof(st)) == 0) {
			r.unreachable_blocks = st.reclaimed_blocks;
			r.unreachable_bytes = st.reclaimed_bytes;
		}
		mnemo_pool_close(&p);
	}
	progress_end();
	print_report(o.path, &r, o.json);
	return r.n ? EXIT_PROBLEMS : 0;
}

/* ---- repair ---- */

/* Back the pool up next to it, durably: POOL.backup-XXXXXX. */
static int backup(const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s.backup-XXXXXX", path);
	int fd = mkstemp(out);
	if (fd < 0)
		return -1;
	close(fd);
	if (file_copy(path, out) != 0)
		return -1;
	fd = open(out, O_RDONLY | O_CLOEXEC);
	int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
	if (fd >= 0)
		close(fd);
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", out);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rc == 0 && (fd < 0 || fsync(fd) != 0))
		rc = -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Whether the pool opens privately (nothing written) and its heap checks
 * out; if not, *rc is the code and why[] says what is wrong. */
static bool sound(const char *path, int *rc, char *why, size_t len)
{
	mnemo_pool *p = NULL;
	*rc = mnemo_pool_open(path, MNEMO_PRIVATE, &p);
	if (*rc == 0)
		*rc = mnemo_heap_check(p);
	snprintf(why, len, "%s", mnemo_errormsg()); /* before the close */
	if (p)
		mnemo_pool_close(&p);
	return *rc == 0;
}

/* What repair can do without guessing is what an open does (replay
 * committed transactions, cut what a crash during growth left past the
 * pool's size) and the collection of leaked blocks; a structure the
 * library refuses (a bad checksum, overlapping regions, ...) would need a
 * guess, and repair says so and leaves the file as it was. */
int cmd_repair(int argc, char **argv)
{
	struct pool_opts o;
	char saved[4096] = "";
	int rc;
	if (pool_args(argc, argv, "no-backup", &o))
		return EXIT_USAGE;
	/* First in memory only: what needs a guess is refused before the
	 * file is opened for writing (an open trims and replays). */
	char why[512];
	progress_start("repair");
	bool ok = sound(o.path, &rc, why, sizeof(why));
	progress_end();
	if (!ok) {
		printf("%s: cannot repair: %s\n", o.path, why);
		return damaged(rc) ? EXIT_PROBLEMS : EXIT_USAGE;
	}
	if (!o.no_backup && backup(o.path, saved, sizeof(saved)) != 0) {
		fprintf(stderr, "mnemoctl repair: cannot back %s up: %s\n",
			o.path, strerror(errno));
		return EXIT_USAGE;
	}
	if (saved[0])
		printf("%s: backed up to %s\n", o.path, saved);
	setenv("MNEMO_HEAP_GC", "always", 1);
	mnemo_pool *p = NULL;
	progress_start("repair");
	rc = mnemo_pool_open(o.path, 0, &p);
	int bad = rc ? 0 : mnemo_heap_check(p);
	progress_end();
	if (rc) {
		printf("%s: cannot repair: %s\n", o.path, mnemo_errormsg());
		return damaged(rc) ? EXIT_PROBLEMS : EXIT_USAGE;
	}
	struct mnemo_heap_stats st;
	if (bad)
		printf("%s: cannot repair the heap: %s\n", o.path,
		       mnemo_errormsg());
	else if (mnemo_heap_stats(p, &st, sizeof(st)) == 0)
		printf("%s: recovered; %llu leaked blocks (%llu bytes) "
		       "reclaimed; healthy\n", o.path,
		       (unsigned long long)st.reclaimed_blocks,
		       (unsigned long long)st.reclaimed_bytes);
	if (mnemo_pool_close(&p))
		return EXIT_USAGE;
	return bad ? EXIT_PROBLEMS : 0;
}
