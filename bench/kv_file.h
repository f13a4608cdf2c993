/*
 * kv_file.h -- what the hand-written references of the kv benchmark
 * (kv_hand.c, kv_redo.c) share: the table of kv.h in a MAP_SHARED file on
 * --dir, entries bump-allocated 16-byte aligned (as malloc would) and
 * chained by file offset (their first words are kv.h's { key; next }), and
 * cache-line write-back (clwb, else clflushopt) and fences, counted per
 * thread for the RESULT line.
 */
#ifndef BENCH_KV_FILE_H
#define BENCH_KV_FILE_H 1

#include <stddef.h>
#include <stdint.h>

#include "kv.h"

struct kv_file {
	char *base;
	uint64_t *buckets; /* KV_NBUCKETS file offsets (0: none) */
	uint64_t bump;     /* the next entry's offset */
	uint64_t extra;    /* the offset of kv_file_extra's bytes */
	uint64_t size;
	char path[4096];
};

/* Create <dir>/<prefix>-<pid>.dat with room for the buckets, `entries`
 * bytes of entries and `extra` bytes (kv_file_extra), and map it. */
void kv_file_map(struct kv_file *f, const struct bench_opts *o,
		 const char *prefix, uint64_t entries, uint64_t extra);
/* The `extra` bytes: page-aligned, after the entries' room. */
char *kv_file_extra(const struct kv_file *f);
/* A new entry of `size` bytes holding `key`, linked at its chain's head:
 * its offset. */
uint64_t kv_file_insert(struct kv_file *f, const struct bench_opts *o,
			uint64_t key, uint64_t size);
/* The offset of key's entry, 0 if none. */
uint64_t kv_file_find(const struct kv_file *f, uint64_t key);
/* The rest of a reference's main() after its preload: pick the flush
 * instruction, write the preload back (one fence), run the timed loop,
 * verify (the program's own check), and print the RESULT line and a
 * COUNTS line of no locked instruction and no shared line (a thread
 * writes only its own keys' entries and its own log, by construction). */
void kv_file_run(struct kv_file *f, const struct bench_opts *o,
		 const struct kv_system *s, const char *name,
		 void (*verify)(void));
/* Unmap, and delete the file unless --keep. */
void kv_file_close(struct kv_file *f, const struct bench_opts *o);

static inline void *kv_file_at(const struct kv_file *f, uint64_t off)
{
	return f->base + off;
}

/* Pick clwb (else clflushopt; neither: exit) and print it as INFO. */
void kv_wb_init(const struct bench_opts *o);
/* Write back the lines of [p, p+n), counted. */
void kv_flush(const void *p, size_t n);
/* Count `lines` written back by non-temporal stores. */
void kv_count_lines(uint64_t lines);
/* sfence, counted, then the emulated latency (--fence-ns). */
void kv_fence(const struct bench_opts *o);
/* This thread's counts (kv_system's reset_counts and read_counts). */
void kv_wb_reset(void);
void kv_wb_read(uint64_t *lines, uint64_t *fences);

#endif
