/*
 * common.c -- options, keys, timing and output shared by bench/txhash_*.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

void bench_die(const struct bench_opts *o, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", o->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t parse_u64(const struct bench_opts *o, const char *name,
			  const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		bench_die(o, "--%s: not a number: %s", name, s);
	return v;
}

static void usage(const struct bench_opts *o, const char *extra, int rc)
{
	FILE *f = rc ? stderr : stdout;
	fprintf(f,
		"usage: %s [options]\n"
		"  One durable transaction per upsert on a hash table with 8-byte keys.\n"
		"  --dir DIR          where to put the pool / environment (default /dev/shm)\n"
		"  --value BYTES      value size, >= 16 (default 64)\n"
		"  --preload N        keys loaded before timing (default 100000)\n"
		"  --keyspace N       upserts draw keys from this many (default 125000)\n"
		"  --ops N            timed upserts, one transaction each (default 200000)\n"
		"  --batch N          preload keys per transaction (default 100)\n"
		"  --seed N           seed of the upsert key sequence (default 1)\n"
		"  --fence-ns NS      emulated extra latency per fence (default 0)\n"
		"  --threads N        threads on disjoint keys (kv_mnemo, kv_hand; default 1)\n"
		"  --keep             do not delete the pool / environment\n"
		"  --quiet            print only the RESULT line\n"
		"%s",
		o->prog, extra ? extra : "");
	exit(rc);
}

void bench_parse(int argc, char **argv, struct bench_opts *o,
		 const char *extra)
{
	static const struct option lo[] = {
		{"dir", required_argument, 0, 'd'},
		{"value", required_argument, 0, 'v'},
		{"preload", required_argument, 0, 'p'},
		{"keyspace", required_argument, 0, 'k'},
		{"ops", required_argument, 0, 'n'},
		{"batch", required_argument, 0, 'b'},
		{"seed", required_argument, 0, 's'},
		{"fence-ns", required_argument, 0, 'f'},
		{"threads", required_argument, 0, 't'},
		{"keep", no_argument, 0, 'K'},
		{"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *slash = strrchr(argv[0], '/');
	*o = (struct bench_opts){
		.prog = slash ? slash + 1 : argv[0],
		.dir = "/dev/shm",
		.vsize = 64,
		.preload = 100000,
		.keyspace = 125000,
		.ops = 200000,
		.batch = 100,
		.seed = 1,
		.threads = 1,
	};
	/* libtool's uninstalled binaries are called lt-NAME. */
	if (strncmp(o->prog, "lt-", 3) == 0)
		o->prog += 3;
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o->dir = optarg; break;
		case 'v': o->vsize = parse_u64(o, "value", optarg); break;
		case 'p': o->preload = parse_u64(o, "preload", optarg); break;
		case 'k': o->keyspace = parse_u64(o, "keyspace", optarg); break;
		case 'n': o->ops = parse_u64(o, "ops", optarg); break;
		case 'b': o->batch = parse_u64(o, "batch", optarg); break;
		case 's': o->seed = parse_u64(o, "seed", optarg); break;
		case 'f': {
			uint64_t ns = parse_u64(o, "fence-ns", optarg);
			if (ns > 1000000)
				bench_die(o, "--fence-ns: at most 1000000");
			o->fence_ns = (unsigned)ns;
			break;
		}
		case 't': {
			uint64_t t = parse_u64(o, "threads", optarg);
			if (t < 1 || t > 64)
				bench_die(o, "--threads: 1 to 64");
			o->threads = (unsigned)t;
			break;
		}
		case 'K': o->keep = 1; break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(o, extra, 0); break;
		default: usage(o, extra, 2);
		}
	}
	if (optind != argc)
		usage(o, extra, 2);
	if (o->vsize < 16 || o->vsize > (1u << 20))
		bench_die(o, "--value: between 16 and 1 MiB");
	if (o->keyspace == 0 || o->preload > o->keyspace)
		bench_die(o, "need 0 < --preload <= --keyspace");
	if (o->keyspace > ((uint64_t)1 << 26))
		bench_die(o, "--keyspace: at most 2^26");
	if (o->batch == 0)
		bench_die(o, "--batch: at least 1");
	if (o->seed == 0)
		o->seed = 1; /* xorshift needs a nonzero state */
}

uint64_t bench_key(uint64_t i)
{
	/* splitmix64's finalizer: a bijection of the 64-bit integers. */
	uint64_t z = i + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void bench_seq_init(struct bench_seq *q, const struct bench_opts *o)
{
	q->s = o->seed * 0x9e3779b97f4a7c15ull;
	if (q->s == 0)
		q->s = 1;
	q->keyspace = o->keyspace;
}

uint64_t bench_expected_inserts(const struct bench_opts *o)
{
	unsigned char *present = calloc(o->keyspace, 1);
	if (!present)
		bench_die(o, "out of memory");
	memset(present, 1, o->preload);
	struct bench_seq q;
	bench_seq_init(&q, o);
	uint64_t inserts = 0;
	for (uint64_t i = 0; i < o->ops; i++) {
		uint64_t k = bench_seq_next(&q);
		if (!present[k]) {
			present[k] = 1;
			inserts++;
		}
	}
	free(present);
	return inserts;
}

void bench_fill_value(unsigned char *v, uint64_t vsize, uint64_t key,
		      uint64_t op)
{
	memcpy(v, &op, 8);
	memset(v + 8, (int)(key & 0xff), vsize - 16);
	memcpy(v + vsize - 8, &key, 8);
}

int bench_value_ok(const unsigned char *v, uint64_t vsize, uint64_t key)
{
	uint64_t k;
	memcpy(&k, v + vsize - 8, 8);
	if (k != key)
		return 0;
	for (uint64_t i = 8; i < vsize - 8; i++)
		if (v[i] != (unsigned char)(key & 0xff))
			return 0;
	return 1;
}

uint64_t txh_area_size(const struct bench_opts *o)
{
	return sizeof(struct txh_hdr) + 8 * TXH_NBUCKETS +
	       TXH_STRIDE(o->vsize) * o->keyspace;
}

void txh_table_init(struct txh_table *t, const struct bench_opts *o,
		    char *area)
{
	t->area = area;
	t->size = txh_area_size(o);
	t->hdr = (struct txh_hdr *)area;
	t->buckets = (uint64_t *)(area + sizeof(struct txh_hdr));
	t->vsize = o->vsize;
	t->stride = TXH_STRIDE(o->vsize);
}

uint64_t txh_lookup(const struct txh_table *t, uint64_t key)
{
	uint64_t off = t->buckets[txh_bucket(key)];
	while (off && *txh_key_of(t, off) != key)
		off = *txh_next_of(t, off);
	return off;
}

void txh_verify(const struct bench_opts *o, const struct txh_table *t,
		uint64_t inserts)
{
	uint64_t expect = bench_expected_inserts(o), present = 0;
	for (uint64_t i = 0; i < o->keyspace; i++) {
		uint64_t key = bench_key(i), off = txh_lookup(t, key);
		if (!off)
			continue;
		present++;
		if (!bench_value_ok((unsigned char *)t->area + off, o->vsize,
				    key))
			bench_die(o, "bad value for key %llu",
				  (unsigned long long)i);
	}
	if (inserts != expect || present != o->preload + expect)
		bench_die(o, "inserted %llu (expected %llu), %llu keys present",
			  (unsigned long long)inserts,
			  (unsigned long long)expect,
			  (unsigned long long)present);
}

uint64_t bench_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

void bench_spin_ns(uint64_t ns)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		__builtin_ia32_pause();
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ull +
			 (uint64_t)(t.tv_nsec - t0.tv_nsec) <
		 ns);
}

void bench_prefault(const void *p, size_t len)
{
	const volatile unsigned char *c = p;
	for (size_t i = 0; i < len; i += 4096)
		(void)c[i];
}

const char *bench_path(const struct bench_opts *o, const char *name)
{
	static char buf[4096];
	int n = snprintf(buf, sizeof(buf), "%s/%s", o->dir, name);
	if (n < 0 || (size_t)n >= sizeof(buf))
		bench_die(o, "path too long: %s/%s", o->dir, name);
	return buf;
}

static void fmt_per_tx(char *buf, size_t n, double total, uint64_t ops)
{
	if (total < 0 || ops == 0)
		snprintf(buf, n, "n/a");
	else
		snprintf(buf, n, "%.2f", total / (double)ops);
}

void bench_result(const struct bench_opts *o, const char *system,
		  uint64_t ops, uint64_t ns, double lines, double fences,
		  int64_t inserts)
{
	char fl[32], fe[32], ins[32], upd[32];
	fmt_per_tx(fl, sizeof(fl), lines, ops);
	fmt_per_tx(fe, sizeof(fe), fences, ops);
	if (inserts < 0) {
		snprintf(ins, sizeof(ins), "n/a");
		snprintf(upd, sizeof(upd), "n/a");
	} else {
		snprintf(ins, sizeof(ins), "%lld", (long long)inserts);
		snprintf(upd, sizeof(upd), "%llu",
			 (unsigned long long)(ops - (uint64_t)inserts));
	}
	double s = (double)ns / 1e9;
	if (!o->quiet)
		printf("%s: %llu upserts of %llu-byte values in %.3f s: "
		       "%.0f upserts/s, flushed lines/tx %s, fences/tx %s\n",
		       system, (unsigned long long)ops,
		       (unsigned long long)o->vsize, s,
		       s > 0 ? (double)ops / s : 0.0, fl, fe);
	printf("RESULT system=%s value=%llu emul_fence_ns=%u threads=%u "
	       "ops=%llu ns=%llu ops_per_s=%.0f flushes_per_tx=%s "
	       "fences_per_tx=%s inserts=%s updates=%s\n",
	       system, (unsigned long long)o->vsize, o->fence_ns, o->threads,
	       (unsigned long long)ops, (unsigned long long)ns,
	       s > 0 ? (double)ops / s : 0.0, fl, fe, ins, upd);
	fflush(stdout);
}

void bench_one_thread(const struct bench_opts *o)
{
	if (o->threads != 1)
		bench_die(o, "--threads: this program runs one thread");
}
