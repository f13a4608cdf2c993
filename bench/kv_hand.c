/*
 * kv_hand.c -- the natural-layout key-value benchmark (kv.h) written by
 * hand with two fences per overwrite: the physical reference, about the
 * least a correct durable update can do.  The table lives in a MAP_SHARED
 * file on --dir; entries are { key; next; sel; value[2][V] }, bump-allocated
 * 16-byte aligned (as malloc would).  An overwrite writes the idle copy,
 * flushes it (clwb, else clflushopt), fences, publishes it by an 8-byte
 * store of sel, flushes that line and fences again.  A crash leaves sel
 * naming a complete copy.  Lines and fences are counted here.
 */
#include <cpuid.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kv.h"

struct hand_entry {
	uint64_t key;
	uint64_t next; /* offset in the file, 0: none */
	uint64_t sel;  /* which copy of the value is current: 0 or 1 */
	unsigned char value[];
};

static struct bench_opts O;
static char *g_base;
static uint64_t *g_buckets;
static uint64_t g_bump, g_size;
static __thread uint64_t g_lines, g_fences; /* this thread's counts */
static int g_clwb;

__attribute__((target("clwb"))) static void wb_clwb(const void *p)
{
	__builtin_ia32_clwb(p);
}

__attribute__((target("clflushopt"))) static void wb_opt(const void *p)
{
	__builtin_ia32_clflushopt((void *)p);
}

static void flush(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)63;
	for (; a < (uintptr_t)p + n; a += 64, g_lines++)
		g_clwb ? wb_clwb((void *)a) : wb_opt((void *)a);
}

static void fence(void)
{
	__builtin_ia32_sfence();
	g_fences++;
	if (O.fence_ns)
		bench_spin_ns(O.fence_ns);
}

static struct hand_entry *at(uint64_t off)
{
	return (struct hand_entry *)(g_base + off);
}

static void insert(uint64_t key, const unsigned char *val)
{
	uint64_t sz = (sizeof(struct hand_entry) + 2 * O.vsize + 15) & ~15ull;
	if (g_bump + sz > g_size)
		bench_die(&O, "file full");
	uint64_t off = g_bump;
	g_bump += sz;
	struct hand_entry *e = at(off);
	e->key = key;
	e->sel = 0;
	memcpy(e->value, val, O.vsize);
	uint64_t *head = &g_buckets[kv_bucket(key)];
	e->next = *head;
	*head = off;
}

static struct hand_entry *find(uint64_t key)
{
	uint64_t off = g_buckets[kv_bucket(key)];
	while (off && at(off)->key != key)
		off = at(off)->next;
	return off ? at(off) : NULL;
}

static void overwrite(uint64_t key, const unsigned char *val)
{
	struct hand_entry *e = find(key);
	if (!e)
		bench_die(&O, "key %llu missing", (unsigned long long)key);
	uint64_t idle = e->sel ^ 1;
	unsigned char *dst = e->value + idle * O.vsize;
	memcpy(dst, val, O.vsize);
	flush(dst, O.vsize);
	fence();
	__atomic_store_n(&e->sel, idle, __ATOMIC_RELEASE);
	flush(&e->sel, 8);
	fence();
}

static void reset_counts(void)
{
	g_lines = g_fences = 0;
}

static void read_counts(uint64_t *lines, uint64_t *fences)
{
	*lines = g_lines;
	*fences = g_fences;
}

static const struct kv_system g_hand = {overwrite, reset_counts,
					read_counts};

static void verify(void)
{
	for (uint64_t i = 0; i < O.preload; i++) {
		uint64_t key = bench_key(i);
		struct hand_entry *e = find(key);
		if (!e || !bench_value_ok(e->value + e->sel * O.vsize, O.vsize,
					  key))
			bench_die(&O, "verify: key %llu missing or damaged",
				  (unsigned long long)i);
	}
}

static void map_file(const char *path)
{
	g_size = 4096 + 8 * KV_NBUCKETS +
		 O.preload * ((sizeof(struct hand_entry) + 2 * O.vsize + 15) &
			      ~15ull);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || posix_fallocate(fd, 0, (off_t)g_size))
		bench_die(&O, "cannot create %s", path);
	g_base = mmap(NULL, g_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (g_base == MAP_FAILED)
		bench_die(&O, "mmap %s", path);
	g_buckets = (uint64_t *)(g_base + 4096);
	g_bump = 4096 + 8 * KV_NBUCKETS;
}

int main(int argc, char **argv)
{
	kv_parse(argc, argv, &O, NULL);
	unsigned a, b, c, d;
	__cpuid_count(7, 0, a, b, c, d);
	g_clwb = (b >> 24) & 1;
	if (!g_clwb && !((b >> 23) & 1))
		bench_die(&O, "the CPU has neither clwb nor clflushopt");
	char name[64];
	snprintf(name, sizeof(name), "kv-hand-%ld.dat", (long)getpid());
	char path[4096];
	snprintf(path, sizeof(path), "%s", bench_path(&O, name));
	map_file(path);
	unsigned char *val = malloc(O.vsize);
	if (!val)
		bench_die(&O, "out of memory");
	for (uint64_t i = 0; i < O.preload; i++) {
		bench_fill_value(val, O.vsize, bench_key(i), 0);
		insert(bench_key(i), val);
	}
	flush(g_base, g_bump); /* the preload, made durable once */
	fence();
	printf("INFO flush_instruction=%s\n", g_clwb ? "clwb" : "clflushopt");

	uint64_t ops;
	double lines, fences;
	uint64_t ns = kv_timed_loop(&O, &g_hand, &ops, &lines, &fences);
	verify();
	bench_result(&O, "hand", ops, ns, lines, fences, 0);
	/* By construction: no locked instruction, and a thread writes only
	 * its own entries (no line of shared state). */
	printf("COUNTS atomics_per_tx=0 shared_lines_per_tx=0\n");
	free(val);
	munmap(g_base, g_size);
	if (!O.keep)
		unlink(path);
	return 0;
}
