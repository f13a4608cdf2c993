/*
 * pool_cmds.c -- mnemoctl's pool commands that make, collect, remove or
 * read raw bytes (create, gc, rm, dump), and what every pool command
 * shares: its options and opening the pool.  The listing commands are
 * pool_show.c.
 */
#include "pool_cmds.h"
#include "progress.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "mnemosyne.h"

static const struct option g_long[] = {
	{"json", no_argument, NULL, 'j'},   {"all", no_argument, NULL, 'a'},
	{"raw", no_argument, NULL, 'R'},    {"region", required_argument, NULL, 'r'},
	{"root", required_argument, NULL, 'o'},
	{"offset", required_argument, NULL, 'O'},
	{"length", required_argument, NULL, 'l'},
	{"size", required_argument, NULL, 's'},
	{"max", required_argument, NULL, 'm'},
	{"addr", required_argument, NULL, 'A'},
	{"backend", required_argument, NULL, 'b'},
	{"no-backup", no_argument, NULL, 'N'},
	{NULL, 0, NULL, 0}};

/* "4096", "64K", "64M", "2G", "0x7f0000000000" (powers of 1024). */
static int parse_num(const char *cmd, const char *what, const char *s,
		     uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	int shift = 0;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: break;
	}
	if (errno || end == s || *end || *s == '-' ||
	    (v << shift >> shift) != v) {
		fprintf(stderr, "mnemoctl %s: %s '%s' is not a number such as "
			"4096, 64M or 0x7f0000000000\n", cmd, what, s);
		return EXIT_USAGE;
	}
	*out = (uint64_t)v << shift;
	return 0;
}

/* One option into o; 0 or EXIT_USAGE. */
static int pool_opt(const char *cmd, int c, struct pool_opts *o)
{
	switch (c) {
	case 'j': o->json = true; return 0;
	case 'a': o->all = true; return 0;
	case 'R': o->raw = true; return 0;
	case 'N': o->no_backup = true; return 0;
	case 'r': o->region = optarg; return 0;
	case 'o': o->root = optarg; return 0;
	case 'b': o->backend = optarg; return 0;
	case 'O': return parse_num(cmd, "--offset", optarg, &o->offset);
	case 'l': return parse_num(cmd, "--length", optarg, &o->length);
	case 's': return parse_num(cmd, "--size", optarg, &o->size);
	case 'm': return parse_num(cmd, "--max", optarg, &o->max);
	case 'A': return parse_num(cmd, "--addr", optarg, &o->addr);
	default: return EXIT_USAGE; /* getopt said why */
	}
}

/* Whether `name` is one of the space-separated words of `list`. */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *w = list; (w = strstr(w, name)); w += n)
		if ((w == list || w[-1] == ' ') && (w[n] == ' ' || !w[n]))
			return true;
	return false;
}

int pool_args(int argc, char **argv, const char *allowed,
	      struct pool_opts *o)
{
	const char *cmd = argv[0];
	int c;
	memset(o, 0, sizeof(*o));
	opterr = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", g_long, NULL)) != -1) {
		const char *name = NULL;
		for (const struct option *l = g_long; l->name; l++)
			if (l->val == c)
				name = l->name;
		if (c != '?' && !listed(allowed, name)) {
			fprintf(stderr, "mnemoctl %s: --%s does not apply\n",
				cmd, name);
			return EXIT_USAGE;
		}
		if (pool_opt(cmd, c, o))
			return EXIT_USAGE;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "mnemoctl %s: expected one pool file\n", cmd);
		return EXIT_USAGE;
	}
	o->path = argv[optind];
	return 0;
}

mnemo_pool *pool_open_for(const char *cmd, const struct pool_opts *o)
{
	mnemo_pool *p = NULL;
	if (mnemo_pool_open(o->path, 0, &p)) {
		fprintf(stderr, "mnemoctl %s: %s\n", cmd, mnemo_errormsg());
		return NULL;
	}
	return p;
}

int pool_failed(const char *cmd, mnemo_pool **p)
{
	if (*p) {
		fprintf(stderr, "mnemoctl %s: %s\n", cmd, mnemo_errormsg());
		mnemo_pool_close(p);
	}
	return EXIT_USAGE;
}

const char *human_size(uint64_t n, char *buf, size_t len)
{
	static const char *unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

/* Copy file `from` to `to` (created or truncated); 0 or -1 with errno. */
int file_copy(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), rc = -1;
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	struct stat st;
	if (in >= 0 && out >= 0 && fstat(in, &st) == 0) {
		off_t left = st.st_size;
		ssize_t n = 1;
		while (left > 0 && (n = copy_file_range(in, NULL, out, NULL,
							(size_t)left, 0)) > 0)
			left -= n;
		rc = left == 0 ? 0 : -1;
	}
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0)
		rc = -1;
	return rc;
}

/* ---- create ---- */

static int backend_flag(const char *name, unsigned *flag)
{
	static const struct {
		const char *name;
		unsigned flag;
	} b[] = {{"auto", MNEMO_BACKEND_AUTO}, {"file", MNEMO_BACKEND_FILE},
		 {"dax", MNEMO_BACKEND_DAX},   {"kmod", MNEMO_BACKEND_KMOD}};
	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
		if (strcmp(name, b[i].name) == 0) {
			*flag = b[i].flag;
			return 0;
		}
	fprintf(stderr, "mnemoctl create: --backend %s: expected auto, "
		"file, dax or kmod\n", name);
	return EXIT_USAGE;
}

int cmd_create(int argc, char **argv)
{
	struct pool_opts o;
	unsigned flags = MNEMO_BACKEND_AUTO;
	if (pool_args(argc, argv, "size max addr backend", &o) ||
	    (o.backend && backend_flag(o.backend, &flags)))
		return EXIT_USAGE;
	if (o.max) { /* the growth limit of a new pool: mnemosyne(7) */
		char v[32];
		snprintf(v, sizeof(v), "%llu", (unsigned long long)o.max);
		setenv("MNEMO_POOL_MAX", v, 1);
	}
	mnemo_pool *p = NULL;
	size_t size = o.size ? o.size : (size_t)64 << 20;
	if (mnemo_pool_create(o.path, size, (void *)(uintptr_t)o.addr, flags,
			      &p)) {
		fprintf(stderr, "mnemoctl create: %s\n", mnemo_errormsg());
		return EXIT_USAGE;
	}
	char s1[32], s2[32];
	printf("created %s: %s at %p, growth limit %s, %s backend\n", o.path,
	       human_size(mnemo_pool_size(p), s1, sizeof(s1)),
	       mnemo_pool_base(p), human_size(mnemo_pool_max(p), s2, sizeof(s2)),
	       mnemo_pool_backend(p));
	return mnemo_pool_close(&p) ? EXIT_USAGE : 0;
}

/* ---- set ---- */

/* Raise the growth limit: an open with a larger MNEMO_POOL_MAX records it
 * (mnemosyne(7), "Growth"); a limit is never lowered. */
int cmd_set(int argc, char **argv)
{
	struct pool_opts o;
	if (pool_args(argc, argv, "max", &o))
		return EXIT_USAGE;
	if (!o.max) {
		fprintf(stderr, "mnemoctl set: give --max S\n");
		return EXIT_USAGE;
	}
	char v[32], a[32], b[32];
	snprintf(v, sizeof(v), "%llu", (unsigned long long)o.max);
	setenv("MNEMO_POOL_MAX", v, 1);
	mnemo_pool *p = pool_open_for("set", &o);
	if (!p)
		return EXIT_USAGE;
	uint64_t max = mnemo_pool_max(p);
	int rc = mnemo_pool_close(&p) ? EXIT_USAGE : 0;
	if (rc == 0 && max < o.max) {
		fprintf(stderr, "mnemoctl set: the growth limit is %s: the "
			"address space after the pool has no room for %s\n",
			human_size(max, a, sizeof(a)),
			human_size(o.max, b, sizeof(b)));
		return EXIT_USAGE;
	}
	if (rc == 0 && max > o.max) {
		fprintf(stderr, "mnemoctl set: the growth limit stays %s: a "
			"limit is never lowered\n", human_size(max, a,
							       sizeof(a)));
		return EXIT_USAGE;
	}
	if (rc == 0)
		printf("growth limit of %s: %s\n", o.path,
		       human_size(max, a, sizeof(a)));
	return rc;
}

/* ---- gc ---- */

/* Open the pool with the collection forced (MNEMO_HEAP_GC=always, see
 * mnemosyne(7)) and report what the heap says it reclaimed. */
int cmd_gc(int argc, char **argv)
{
	struct pool_opts o;
	if (pool_args(argc, argv, "json", &o))
		return EXIT_USAGE;
	setenv("MNEMO_HEAP_GC", "always", 1);
	progress_start("gc");
	mnemo_pool *p = pool_open_for("gc", &o);
	progress_end();
	struct mnemo_heap_stats st;
	if (!p || mnemo_heap_stats(p, &st, sizeof(st)))
		return pool_failed("gc", &p);
	if (o.json) {
		struct json j = {stdout, 0, {0}};
		json_open(&j, NULL, '{');
		json_u64(&j, "reclaimed_blocks", st.reclaimed_blocks);
		json_u64(&j, "reclaimed_bytes", st.reclaimed_bytes);
		json_u64(&j, "live_blocks", st.live_blocks);
		json_u64(&j, "recovery_ns", st.recovery_ns);
		json_close(&j, '}');
	} else {
		char b[32];
		printf("reclaimed %llu blocks (%s); %llu blocks live; took "
		       "%.1f ms\n", (unsigned long long)st.reclaimed_blocks,
		       human_size(st.reclaimed_bytes, b, sizeof(b)),
		       (unsigned long long)st.live_blocks,
		       (double)st.recovery_ns / 1e6);
	}
	return mnemo_pool_close(&p) ? EXIT_USAGE : 0;
}

/* ---- rm ---- */

int cmd_rm(int argc, char **argv)
{
	struct pool_opts o;
	if (pool_args(argc, argv, "", &o))
		return EXIT_USAGE;
	if (mnemo_pool_delete(o.path)) {
		fprintf(stderr, "mnemoctl rm: %s\n", mnemo_errormsg());
		return EXIT_USAGE;
	}
	return 0;
}

/* ---- dump ---- */

/* hexdump -C's layout: offset, 16 bytes in hex, the printable ones. */
static void hex_lines(const unsigned char *p, uint64_t n, uint64_t off)
{
	for (uint64_t i = 0; i < n; i += 16) {
		printf("%08llx ", (unsigned long long)(off + i));
		for (uint64_t k = i; k < i + 16; k++) {
			if (k % 16 == 8)
				putchar(' ');
			if (k < n)
				printf(" %02x", p[k]);
			else
				printf("   ");
		}
		printf("  |");
		for (uint64_t k = i; k < i + 16 && k < n; k++)
			putchar(isprint(p[k]) ? p[k] : '.');
		printf("|\n");
	}
}

struct span {
	uintptr_t lo, hi;
	bool inside;
};

static int in_region(const char *name, void *addr, size_t size, void *arg)
{
	struct span *s = arg;
	uintptr_t a = (uintptr_t)addr;
	(void)name;
	s->inside |= s->lo >= a && s->hi <= a + size && s->lo <= s->hi;
	return 0;
}

/* Whether [p, p + n) lies inside one region of pool (mapped memory). */
static bool inside_region(mnemo_pool *pool, const void *p, uint64_t n)
{
	struct span s = {(uintptr_t)p, (uintptr_t)p + n, false};
	return mnemo_region_foreach(pool, MNEMO_FOREACH_ALL, in_region, &s) ==
		       0 && s.inside;
}

/* The bytes o names: [*p, *p + *n), or EXIT_USAGE after saying why.  A
 * region has its size; a root's object is the heap block it points to,
 * or --length bytes that must lie inside a region. */
static int dump_range(mnemo_pool *pool, const struct pool_opts *o,
		      unsigned char **p, uint64_t *n)
{
	void *a = NULL;
	size_t size = 0;
	int rc = o->region ? mnemo_region_find(pool, o->region, &a, &size)
			   : mnemo_root_get(pool, o->root, &a);
	if (rc)
		return fprintf(stderr, "mnemoctl dump: %s\n",
			       mnemo_errormsg()), EXIT_USAGE;
	if (o->root)
		size = a ? pmalloc_usable_size(a) : 0;
	if (o->root && size == 0) {
		size = o->offset + o->length;
		if (!o->length || !inside_region(pool, a, size))
			return fprintf(stderr, "mnemoctl dump: root %s points "
				       "to %p, not to a heap block: give a "
				       "--length that stays in its region\n",
				       o->root, a), EXIT_USAGE;
	}
	if (o->offset > size || (o->length && o->length > size - o->offset))
		return fprintf(stderr, "mnemoctl dump: --offset/--length "
			       "reach past the %zu bytes there\n", size),
		       EXIT_USAGE;
	*p = (unsigned char *)a + o->offset;
	*n = o->length ? o->length : size - o->offset;
	return 0;
}

int cmd_dump(int argc, char **argv)
{
	struct pool_opts o;
	if (pool_args(argc, argv, "region root offset length raw", &o))
		return EXIT_USAGE;
	if (!o.region == !o.root) {
		fprintf(stderr, "mnemoctl dump: give --region NAME or "
			"--root NAME\n");
		return EXIT_USAGE;
	}
	mnemo_pool *pool = pool_open_for("dump", &o);
	unsigned char *p;
	uint64_t n;
	int rc = pool ? dump_range(pool, &o, &p, &n) : EXIT_USAGE;
	if (rc == 0 && o.raw)
		rc = fwrite(p, 1, n, stdout) == n ? 0 : EXIT_USAGE;
	else if (rc == 0)
		hex_lines(p, n, o.offset);
	if (pool)
		mnemo_pool_close(&pool);
	return rc;
}
