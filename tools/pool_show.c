/*
 * pool_show.c -- mnemoctl's commands that describe a pool: info,
 * regions, roots and stat, each as text or (--json) as one JSON object
 * whose members mnemoctl(1) lists.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "pool_cmds.h"

/* ---- info ---- */

static void uuid_text(const uint8_t u[16], char out[37])
{
	char *o = out;
	for (int i = 0; i < 16; i++)
		o += sprintf(o, "%s%02x", i == 4 || i == 6 || i == 8 || i == 10
					  ? "-" : "", u[i]);
}

static void info_json(const char *path, mnemo_pool *p,
		      const struct mnemo_pool_info *in, const char *uuid)
{
	struct json j = {stdout, 0, {0}};
	char fmt[24];
	snprintf(fmt, sizeof(fmt), "%u.%u", in->format_major, in->format_minor);
	json_open(&j, NULL, '{');
	json_str(&j, "path", path);
	json_str(&j, "format", fmt);
	json_str(&j, "uuid", uuid);
	json_str(&j, "backend", mnemo_pool_backend(p));
	json_u64(&j, "base", in->base);
	json_u64(&j, "size", in->size);
	json_u64(&j, "max", in->max);
	json_u64(&j, "align", in->align);
	json_open(&j, "regions", '{');
	json_u64(&j, "live", in->regions);
	json_u64(&j, "slots", in->region_slots);
	json_u64(&j, "bytes", in->region_bytes);
	json_close(&j, '}');
	json_open(&j, "roots", '{');
	json_u64(&j, "live", in->roots);
	json_u64(&j, "slots", in->root_slots);
	json_close(&j, '}');
	json_u64(&j, "created", in->create_time);
	json_close(&j, '}');
}

static void info_text(const char *path, mnemo_pool *p,
		      const struct mnemo_pool_info *in, const char *uuid)
{
	char a[32], b[32], c[32], when[32];
	time_t t = (time_t)in->create_time;
	struct tm tm;
	if (!gmtime_r(&t, &tm) ||
	    !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(when, sizeof(when), "%llu (seconds since the epoch)",
			 (unsigned long long)in->create_time);
	printf("pool     %s\nformat   %u.%u\nuuid     %s\nbackend  %s\n"
	       "base     0x%llx\nsize     %s (%llu bytes)\nlimit    %s "
	       "(growth up to here)\nregions  %u of %u slots, %s\n"
	       "roots    %u of %u slots\ncreated  %s\n", path,
	       in->format_major, in->format_minor, uuid, mnemo_pool_backend(p),
	       (unsigned long long)in->base, human_size(in->size, a, sizeof(a)),
	       (unsigned long long)in->size, human_size(in->max, b, sizeof(b)),
	       in->regions, in->region_slots,
	       human_size(in->region_bytes, c, sizeof(c)), in->roots,
	       in->root_slots, when);
}

int cmd_info(int argc, char **argv)
{
	struct pool_opts o;
	if (pool_args(argc, argv, "json", &o))
		return EXIT_USAGE;
	mnemo_pool *p = pool_open_for("info", &o);
	struct mnemo_pool_info in;
	if (!p || mnemo_pool_info(p, &in, sizeof(in)))
		return pool_failed("info", &p);
	char uuid[37];
	uuid_text(in.uuid, uuid);
	(o.json ? info_json : info_text)(o.path, p, &in, uuid);
	return mnemo_pool_close(&p) ? EXIT_USAGE : 0;
}

/* ---- regions and roots ---- */

struct lister {
	struct json j;
	bool json;
	unsigned n;
};

static int region_row(const char *name, void *addr, size_t size, void *arg)
{
	struct lister *l = arg;
	char s[32];
	l->n++;
	if (!l->json) {
		printf("%-18p %12zu  %-10s %s\n", addr, size,
		       human_size(size, s, sizeof(s)), *name ? name : "-");
		return 0;
	}
	json_open(&l->j, NULL, '{');
	json_str(&l->j, "name", name);
	json_u64(&l->j, "address", (uint64_t)(uintptr_t)addr);
	json_u64(&l->j, "size", size);
	json_close(&l->j, '}');
	return 0;
}

static int root_row(const char *name, void *ptr, void *arg)
{
	struct lister *l = arg;
	l->n++;
	if (!l->json) {
		printf("%-18p %s\n", ptr, name);
		return 0;
	}
	json_open(&l->j, NULL, '{');
	json_str(&l->j, "name", name);
	json_u64(&l->j, "address", (uint64_t)(uintptr_t)ptr);
	json_close(&l->j, '}');
	return 0;
}

/* regions or roots: a header line or the JSON array around the rows. */
static int list(int argc, char **argv, bool regions)
{
	struct pool_opts o;
	if (pool_args(argc, argv, regions ? "json all" : "json", &o))
		return EXIT_USAGE;
	mnemo_pool *p = pool_open_for(argv[0], &o);
	if (!p)
		return EXIT_USAGE;
	struct lister l = {{stdout, 0, {0}}, o.json, 0};
	if (o.json) {
		json_open(&l.j, NULL, '{');
		json_open(&l.j, argv[0], '[');
	} else if (regions) {
		printf("%-18s %12s  %-10s %s\n", "ADDRESS", "BYTES", "SIZE",
		       "NAME");
	} else {
		printf("%-18s %s\n", "ADDRESS", "NAME");
	}
	int rc = regions ? mnemo_region_foreach(p, o.all ? MNEMO_FOREACH_ALL
							 : 0, region_row, &l)
			 : mnemo_root_foreach(p, root_row, &l);
	if (o.json) {
		json_close(&l.j, ']');
		json_close(&l.j, '}');
	}
	if (rc)
		fprintf(stderr, "mnemoctl %s: %s\n", argv[0], mnemo_errormsg());
	return mnemo_pool_close(&p) || rc ? EXIT_USAGE : 0;
}

int cmd_regions(int argc, char **argv) { return list(argc, argv, true); }
int cmd_roots(int argc, char **argv) { return list(argc, argv, false); }

/* ---- stat ---- */

#define MAX_CLASSES 64

static void stat_json(const struct mnemo_heap_stats *st,
		      const struct mnemo_heap_class *cl, int n)
{
	struct json j = {stdout, 0, {0}};
	json_open(&j, NULL, '{');
	json_u64(&j, "heap_bytes", st->heap_bytes);
	json_u64(&j, "page_bytes", st->page_bytes);
	json_u64(&j, "live_bytes", st->live_bytes);
	json_u64(&j, "live_blocks", st->live_blocks);
	json_u64(&j, "large_blocks", st->large_blocks);
	json_dbl(&j, "fragmentation", st->fragmentation);
	json_bool(&j, "collected", st->collected);
	json_u64(&j, "reclaimed_blocks", st->reclaimed_blocks);
	json_u64(&j, "reclaimed_bytes", st->reclaimed_bytes);
	json_u64(&j, "recovery_ns", st->recovery_ns);
	json_open(&j, "classes", '[');
	for (int i = 0; i < n && i < MAX_CLASSES; i++) {
		if (!cl[i].pages)
			continue;
		json_open(&j, NULL, '{');
		json_u64(&j, "block_size", cl[i].block_size);
		json_u64(&j, "blocks", cl[i].blocks);
		json_u64(&j, "pages", cl[i].pages);
		json_close(&j, '}');
	}
	json_close(&j, ']');
	json_close(&j, '}');
}

static void stat_text(const struct mnemo_heap_stats *st,
		      const struct mnemo_heap_class *cl, int n)
{
	char a[32], b[32], c[32];
	printf("heap           %s in segments, %s in pages with live blocks\n"
	       "live           %llu blocks (%llu large), %s\n"
	       "fragmentation  %.1f%%\n",
	       human_size(st->heap_bytes, a, sizeof(a)),
	       human_size(st->page_bytes, b, sizeof(b)),
	       (unsigned long long)st->live_blocks,
	       (unsigned long long)st->large_blocks,
	       human_size(st->live_bytes, c, sizeof(c)),
	       100 * st->fragmentation);
	if (st->collected)
		printf("collection     at open: %llu blocks (%llu bytes) "
		       "reclaimed\n", (unsigned long long)st->reclaimed_blocks,
		       (unsigned long long)st->reclaimed_bytes);
	for (int i = 0; i < n && i < MAX_CLASSES; i++)
		if (cl[i].pages)
			printf("class %6llu B  %llu blocks in %llu pages\n",
			       (unsigned long long)cl[i].block_size,
			       (unsigned long long)cl[i].blocks,
			       (unsigned long long)cl[i].pages);
}

int cmd_stat(int argc, char **argv)
{
	struct pool_opts o;
	if (pool_args(argc, argv, "json", &o))
		return EXIT_USAGE;
	mnemo_pool *p = pool_open_for("stat", &o);
	struct mnemo_heap_stats st;
	struct mnemo_heap_class cl[MAX_CLASSES];
	int n = p ? mnemo_heap_classes(p, cl, MAX_CLASSES) : -1;
	if (n < 0 || mnemo_heap_stats(p, &st, sizeof(st)))
		return pool_failed("stat", &p);
	(o.json ? stat_json : stat_text)(&st, cl, n);
	return mnemo_pool_close(&p) ? EXIT_USAGE : 0;
}
