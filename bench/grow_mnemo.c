/*
 * grow_mnemo.c -- the cost of pool growth.
 *
 * 1. Growth alone: regions of 256 MiB are created in a pool created at
 *    64 MiB until it holds --gib GiB; space gained by growth needs no
 *    zeroing, so this times the extensions themselves (fallocate,
 *    fdatasync, the grow record) plus the mappings: seconds per GiB grown.
 * 2. In use: --gib GiB in blocks of --block bytes (the first word of each
 *    written) from a pool created at 64 MiB, and from one created at the
 *    size the first reached (no growth, but every heap segment zeroed).
 *
 *   usage: grow_mnemo [--dir DIR] [--gib N] [--block BYTES]
 */
#include <mnemosyne.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Seconds to allocate total bytes in blocks of bs from a pool created at
 * `initial` bytes; *grows counts the size changes seen. */
static double run(const char *path, size_t initial, uint64_t total,
		  size_t bs, unsigned *grows, size_t *final)
{
	mnemo_pool *p;
	unlink(path);
	if (mnemo_pool_create(path, initial, NULL, 0, &p)) {
		fprintf(stderr, "grow_mnemo: %s\n", mnemo_errormsg());
		exit(1);
	}
	size_t last = mnemo_pool_size(p);
	*grows = 0;
	double t0 = now();
	for (uint64_t got = 0; got < total; got += bs) {
		uint64_t *b = mnemo_heap_alloc(p, bs, 0, 0);
		if (!b) {
			fprintf(stderr, "grow_mnemo: %s\n", mnemo_errormsg());
			exit(1);
		}
		*b = got;
		if (mnemo_pool_size(p) != last) {
			last = mnemo_pool_size(p);
			++*grows;
		}
	}
	double t = now() - t0;
	*final = last;
	mnemo_pool_close(&p);
	unlink(path);
	return t;
}

/* Seconds per GiB to grow a 64 MiB pool by regions to total bytes. */
static double grow_regions(const char *path, uint64_t total, unsigned *n)
{
	mnemo_pool *p;
	unlink(path);
	if (mnemo_pool_create(path, 64 << 20, NULL, 0, &p)) {
		fprintf(stderr, "grow_mnemo: %s\n", mnemo_errormsg());
		exit(1);
	}
	size_t first = mnemo_pool_size(p), last = first;
	*n = 0;
	double t0 = now();
	while (mnemo_pool_size(p) < total) {
		void *r;
		if (mnemo_region_create(p, NULL, 256 << 20, &r)) {
			fprintf(stderr, "grow_mnemo: %s\n", mnemo_errormsg());
			exit(1);
		}
		*n += mnemo_pool_size(p) != last;
		last = mnemo_pool_size(p);
	}
	double t = now() - t0;
	mnemo_pool_close(&p);
	unlink(path);
	return t / ((double)(last - first) / (1 << 30));
}

int main(int argc, char **argv)
{
	const char *dir = "/var/tmp";
	uint64_t gib = 1;
	size_t bs = 1 << 20;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--gib"))
			gib = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--block"))
			bs = strtoull(argv[i + 1], NULL, 0);
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/grow-bench-%d.pool", dir,
		 (int)getpid());
	uint64_t total = gib << 30;
	unsigned g, g0, ng;
	double per = grow_regions(path, total, &ng);
	printf("grow: %s: 64 MiB to %llu GiB by 256 MiB regions, %u "
	       "extensions: %.3f s per GiB grown\n", dir,
	       (unsigned long long)gib, ng, per);
	size_t final, final0;
	double grown = run(path, 64 << 20, total, bs, &g, &final);
	double fixed = run(path, final, total, bs, &g0, &final0);
	printf("grow: %s: %llu GiB in %zu-byte blocks: from 64 MiB (to %.2f "
	       "GiB, %u extensions) %.3f s; from a pool created at that size "
	       "%.3f s\n", dir, (unsigned long long)gib, bs,
	       (double)final / (1 << 30), g, grown, fixed);
	return 0;
}
