/*
 * alloc_common.c -- options and output shared by bench/alloc_*.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_common.h"

/* A number with an optional K, M or G suffix (powers of 1024). */
static uint64_t parse_size(const struct alloc_opts *o, const char *name,
			   const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		bench_die(&o->b, "--%s: not a number: %s", name, s);
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end || (shift && v > (~0ull >> shift)))
		bench_die(&o->b, "--%s: not a size: %s", name, s);
	return (uint64_t)v << shift;
}

static void usage(const struct alloc_opts *o, unsigned flags,
		  const char *extra, int rc)
{
	FILE *f = rc ? stderr : stdout;
	fprintf(f,
		"usage: %s [options]\n"
		"  Allocator throughput: --ops alloc/free pairs per thread.\n"
		"  --workload W       pairs: alloc then free at once; window: keep\n"
		"                     --window live blocks per thread, replace a\n"
		"                     random one per op (default pairs)\n"
		"  --threads N        threads, each doing --ops pairs (default 1)\n"
		"  --ops N            pairs per thread (default 1000000)\n"
		"  --window N         live blocks per thread (default 1000)\n"
		"  --size BYTES       block size, 8..4096 (default 64)\n"
		"  --seed N           seed of the window's slot sequence (default 1)\n"
		"  --dir DIR          where to put the pool (default /dev/shm)\n"
		"  --pool-size BYTES  pool size, K/M/G suffixes (default: per program)\n"
		"  --keep             do not delete the pool\n"
		"  --quiet            print only the RESULT line\n",
		o->b.prog);
	if (flags & ALLOC_OPT_MNEMO)
		fprintf(f,
			"  --heap-alloc       mnemo_heap_alloc on an explicit pool instead\n"
			"                     of pmalloc on the default pool ($MNEMO_POOL)\n"
			"  --recovery         time mnemo_pool_open of a pool holding --fill\n"
			"                     bytes of live blocks, after a clean close and\n"
			"                     after a crash (the recovery collection)\n"
			"  --fill BYTES       live bytes for --recovery (default 1G)\n"
			"  --leak N           unreachable blocks at the crash (default 10000)\n");
	fprintf(f, "%s", extra ? extra : "");
	exit(rc);
}

void alloc_parse(int argc, char **argv, struct alloc_opts *o, unsigned flags,
		 const char *extra)
{
	static const struct option lo[] = {
		{"workload", required_argument, 0, 'w'},
		{"threads", required_argument, 0, 't'},
		{"ops", required_argument, 0, 'n'},
		{"window", required_argument, 0, 'W'},
		{"size", required_argument, 0, 'z'},
		{"seed", required_argument, 0, 's'},
		{"dir", required_argument, 0, 'd'},
		{"pool-size", required_argument, 0, 'P'},
		{"keep", no_argument, 0, 'K'},
		{"quiet", no_argument, 0, 'q'},
		{"heap-alloc", no_argument, 0, 'H'},
		{"recovery", no_argument, 0, 'R'},
		{"fill", required_argument, 0, 'F'},
		{"leak", required_argument, 0, 'L'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *slash = strrchr(argv[0], '/');
	*o = (struct alloc_opts){
		.b = {.prog = slash ? slash + 1 : argv[0],
		      .dir = "/dev/shm",
		      .seed = 1},
		.workload = ALLOC_PAIRS,
		.threads = 1,
		.ops = 1000000,
		.window = 1000,
		.size = 64,
		.fill = (uint64_t)1 << 30,
		.leak = 10000,
	};
	/* libtool's uninstalled binaries are called lt-NAME. */
	if (strncmp(o->b.prog, "lt-", 3) == 0)
		o->b.prog += 3;
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (strchr("HRFL", c) && !(flags & ALLOC_OPT_MNEMO))
			bench_die(&o->b, "%s: only alloc_mnemo has this option",
				  argv[optind - 1]);
		switch (c) {
		case 'w':
			if (strcmp(optarg, "pairs") == 0)
				o->workload = ALLOC_PAIRS;
			else if (strcmp(optarg, "window") == 0)
				o->workload = ALLOC_WINDOW;
			else
				bench_die(&o->b, "--workload: pairs or window");
			break;
		case 't': {
			uint64_t n = parse_size(o, "threads", optarg);
			if (n < 1 || n > 64)
				bench_die(&o->b, "--threads: 1 to 64");
			o->threads = (unsigned)n;
			break;
		}
		case 'n': o->ops = parse_size(o, "ops", optarg); break;
		case 'W': o->window = parse_size(o, "window", optarg); break;
		case 'z': o->size = parse_size(o, "size", optarg); break;
		case 's': o->b.seed = parse_size(o, "seed", optarg); break;
		case 'd': o->b.dir = optarg; break;
		case 'P': o->pool_size = parse_size(o, "pool-size", optarg); break;
		case 'K': o->b.keep = 1; break;
		case 'q': o->b.quiet = 1; break;
		case 'H': o->heap_alloc = 1; break;
		case 'R': o->recovery = 1; break;
		case 'F': o->fill = parse_size(o, "fill", optarg); break;
		case 'L': o->leak = parse_size(o, "leak", optarg); break;
		case 'h': usage(o, flags, extra, 0); break;
		default: usage(o, flags, extra, 2);
		}
	}
	if (optind != argc)
		usage(o, flags, extra, 2);
	if (o->size < 8 || o->size > 4096)
		bench_die(&o->b, "--size: 8 to 4096 bytes");
	if (o->window == 0 || o->window > ((uint64_t)1 << 24))
		bench_die(&o->b, "--window: 1 to 2^24");
	if (o->b.seed == 0)
		o->b.seed = 1; /* xorshift needs a nonzero state */
}

const char *alloc_workload_name(enum alloc_workload w)
{
	return w == ALLOC_PAIRS ? "pairs" : "window";
}

static void per_op(char *buf, size_t n, double total, uint64_t ops)
{
	if (total < 0 || ops == 0)
		snprintf(buf, n, "n/a");
	else
		snprintf(buf, n, "%.2f", total / (double)ops);
}

void alloc_result(const struct alloc_opts *o, const char *system,
		  const char *mode, const struct alloc_thread *t)
{
	uint64_t start = t[0].start_ns, end = t[0].end_ns;
	double lines = 0, fences = 0;
	for (unsigned i = 0; i < o->threads; i++) {
		start = t[i].start_ns < start ? t[i].start_ns : start;
		end = t[i].end_ns > end ? t[i].end_ns : end;
		lines = lines < 0 || t[i].lines < 0 ? -1 : lines + t[i].lines;
		fences = fences < 0 || t[i].fences < 0 ? -1
						       : fences + t[i].fences;
	}
	uint64_t ops = o->ops * o->threads, ns = end - start;
	double s = (double)ns / 1e9, rate = s > 0 ? (double)ops / s : 0.0;
	char fl[32], fe[32];
	per_op(fl, sizeof(fl), lines, ops);
	per_op(fe, sizeof(fe), fences, ops);
	if (!o->b.quiet)
		printf("%s (%s): %s, %u thread%s, %llu pairs of %llu-byte "
		       "blocks in %.3f s: %.0f pairs/s, flushed lines/pair "
		       "%s, fences/pair %s\n",
		       system, mode, alloc_workload_name(o->workload),
		       o->threads, o->threads == 1 ? "" : "s",
		       (unsigned long long)ops, (unsigned long long)o->size, s,
		       rate, fl, fe);
	printf("RESULT system=%s mode=%s workload=%s threads=%u size=%llu "
	       "ops=%llu ns=%llu ops_per_s=%.0f flushes_per_op=%s "
	       "fences_per_op=%s\n",
	       system, mode, alloc_workload_name(o->workload), o->threads,
	       (unsigned long long)o->size, (unsigned long long)ops,
	       (unsigned long long)ns, rate, fl, fe);
	fflush(stdout);
}
