/*
 * kv_file.c -- the file table and the counted write-back of the
 * hand-written kv references (kv_file.h).
 */
#include <cpuid.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kv_file.h"

#define KV_FILE_HDR 4096u
#define KV_PAGE 4096u

static uint64_t extra_offset(uint64_t entries)
{
	uint64_t end = KV_FILE_HDR + 8 * KV_NBUCKETS + entries;
	return (end + KV_PAGE - 1) / KV_PAGE * KV_PAGE;
}

void kv_file_map(struct kv_file *f, const struct bench_opts *o,
		 const char *prefix, uint64_t entries, uint64_t extra)
{
	char name[64];
	snprintf(name, sizeof(name), "%s-%ld.dat", prefix, (long)getpid());
	snprintf(f->path, sizeof(f->path), "%s", bench_path(o, name));
	f->extra = extra_offset(entries);
	f->size = f->extra + extra;
	int fd = open(f->path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || posix_fallocate(fd, 0, (off_t)f->size))
		bench_die(o, "cannot create %s", f->path);
	f->base = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		       0);
	close(fd);
	if (f->base == MAP_FAILED)
		bench_die(o, "mmap %s", f->path);
	f->buckets = (uint64_t *)(f->base + KV_FILE_HDR);
	f->bump = KV_FILE_HDR + 8 * KV_NBUCKETS;
}

char *kv_file_extra(const struct kv_file *f)
{
	return f->base + f->extra;
}

uint64_t kv_file_insert(struct kv_file *f, const struct bench_opts *o,
			uint64_t key, uint64_t size)
{
	size = (size + 15) & ~15ull;
	uint64_t off = f->bump;
	if (off + size > f->extra)
		bench_die(o, "file full");
	f->bump += size;
	struct kv_entry *e = kv_file_at(f, off);
	uint64_t *head = &f->buckets[kv_bucket(key)];
	e->key = key;
	e->next = *head;
	*head = off;
	return off;
}

uint64_t kv_file_find(const struct kv_file *f, uint64_t key)
{
	uint64_t off = f->buckets[kv_bucket(key)];
	while (off && ((const struct kv_entry *)kv_file_at(f, off))->key != key)
		off = ((const struct kv_entry *)kv_file_at(f, off))->next;
	return off;
}

void kv_file_run(struct kv_file *f, const struct bench_opts *o,
		 const struct kv_system *s, const char *name,
		 void (*verify)(void))
{
	kv_wb_init(o);
	kv_flush(f->base, f->bump); /* the preload, made durable once */
	kv_fence(o);
	uint64_t ops;
	double lines, fences;
	uint64_t ns = kv_timed_loop(o, s, &ops, &lines, &fences);
	verify();
	bench_result(o, name, ops, ns, lines, fences, 0);
	printf("COUNTS atomics_per_tx=0 shared_lines_per_tx=0\n");
}

void kv_file_close(struct kv_file *f, const struct bench_opts *o)
{
	munmap(f->base, f->size);
	if (!o->keep)
		unlink(f->path);
}

static int g_clwb;
static __thread uint64_t g_lines, g_fences;

void kv_wb_init(const struct bench_opts *o)
{
	unsigned a, b, c, d;
	__cpuid_count(7, 0, a, b, c, d);
	g_clwb = (b >> 24) & 1;
	if (!g_clwb && !((b >> 23) & 1))
		bench_die(o, "the CPU has neither clwb nor clflushopt");
	printf("INFO flush_instruction=%s\n", g_clwb ? "clwb" : "clflushopt");
}

__attribute__((target("clwb"))) static void wb_clwb(const void *p)
{
	__builtin_ia32_clwb(p);
}

__attribute__((target("clflushopt"))) static void wb_opt(const void *p)
{
	__builtin_ia32_clflushopt((void *)p);
}

void kv_flush(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)63;
	for (; a < (uintptr_t)p + n; a += 64, g_lines++)
		g_clwb ? wb_clwb((void *)a) : wb_opt((void *)a);
}

void kv_count_lines(uint64_t lines)
{
	g_lines += lines;
}

void kv_fence(const struct bench_opts *o)
{
	__builtin_ia32_sfence();
	g_fences++;
	if (o->fence_ns)
		bench_spin_ns(o->fence_ns);
}

void kv_wb_reset(void)
{
	g_lines = g_fences = 0;
}

void kv_wb_read(uint64_t *lines, uint64_t *fences)
{
	*lines = g_lines;
	*fences = g_fences;
}
