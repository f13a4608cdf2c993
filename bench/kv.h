/*
 * kv.h -- the natural-layout key-value benchmark (bench/kv_*.c): a chained
 * hash table laid out the way a user writes one, durable overwrites of
 * random keys, one transaction (or hand-made durable update) each.
 *
 *   buckets   KV_NBUCKETS words: the first entry of each chain (0: none)
 *   entries   one heap block per key: { key; next; value[V] }, so the value
 *             starts at offset 16 of the block and a 64-byte value
 *             straddles two cache lines
 *
 * The work (identical for every system): --preload keys inserted (not
 * timed), then --ops overwrites of keys drawn uniformly from them by the
 * seeded sequence of common.h (--keyspace is set to --preload: every op
 * overwrites).  Each program verifies afterwards that every key is present
 * with a well-formed value.
 */
#ifndef BENCH_KV_H
#define BENCH_KV_H 1

#include <stdint.h>

#include "common.h"

#define KV_NBUCKETS ((uint64_t)1 << 17)

struct kv_entry {
	uint64_t key;
	uint64_t next; /* address (libmnemo) or offset (others) of the next */
	unsigned char value[];
};

static inline uint64_t kv_bucket(uint64_t key)
{
	key ^= key >> 31;
	key *= 0x7fb5d329728ea185ull;
	key ^= key >> 27;
	return key & (KV_NBUCKETS - 1);
}

/* Parse the options (common.h) with the kv defaults: every op overwrites
 * a preloaded key. */
void kv_parse(int argc, char **argv, struct bench_opts *o, const char *extra);

/*
 * The timed loop on --threads threads with disjoint keys: thread t
 * overwrites only keys whose index is t modulo the thread count, drawn by
 * its own sequence (with one thread: exactly common.h's sequence), and
 * runs ops / threads of them.  Each worker reports its flushes and fences.
 */
struct kv_worker {
	unsigned t;
	uint64_t lines, fences;
};
void kv_seq_init(struct bench_seq *q, const struct bench_opts *o,
		 unsigned t);
uint64_t kv_seq_key(struct bench_seq *q, const struct bench_opts *o,
		    unsigned t);
/* Run fn on w[0 .. threads) (the caller's thread when there is one). */
void kv_run_threads(const struct bench_opts *o, struct kv_worker *w,
		    void *(*fn)(void *));
/* Overwrites the timed loop runs in all. */
uint64_t kv_total_ops(const struct bench_opts *o);

#endif
