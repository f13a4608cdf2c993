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
 * A system under test: how it overwrites one key (from any thread when
 * --threads > 1), and optionally its per-thread flush and fence counters
 * (reset before a thread's share, read after it; NULL: not counted here).
 */
struct kv_system {
	void (*overwrite)(uint64_t key, const unsigned char *val);
	void (*reset_counts)(void);
	void (*read_counts)(uint64_t *lines, uint64_t *fences);
};

/*
 * The timed loop, the same for every system: --threads threads on
 * disjoint keys (thread t overwrites only keys whose index is t modulo the
 * thread count, drawn by its own sequence; with one thread it runs in the
 * caller's thread, on exactly common.h's sequence), ops / threads each.
 * Returns its wall time in ns; *ops the overwrites done in all; *lines
 * and *fences the summed counts (-1 if the system counts none).
 */
uint64_t kv_timed_loop(const struct bench_opts *o, const struct kv_system *s,
		       uint64_t *ops, double *lines, double *fences);

#endif
