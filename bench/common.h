/*
 * common.h -- shared parts of the transactional hash-table upsert benchmark
 * (bench/txhash_*.c): options, the key sequence, the table layout, timing
 * and the result line that bench/run-txhash parses.
 *
 * The table (identical for libmnemo and libpmemobj; Berkeley DB uses its own
 * DB_HASH) lives in one persistent area:
 *
 *   [0, 64)                      struct txh_hdr
 *   [64, 64 + 8 * TXH_NBUCKETS)  bucket heads: area offsets of the first node
 *   arena                        nodes, TXH_STRIDE(vsize) bytes each, taken
 *                                by bumping hdr->bump (inside the transaction)
 *
 * A node is { value[vsize]; key; next } rounded up to whole cache lines, so
 * the value starts on a line boundary.  Links are offsets from the start of
 * the area (0: none), so the same code runs on a libmnemo region and on a
 * libpmemobj root object.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H 1

#include <stddef.h>
#include <stdint.h>

#define TXH_MAGIC 0x7478686173683031ull /* "txhash01" */
#define TXH_NBUCKETS ((uint64_t)1 << 18)
#define TXH_LINE 64u
#define TXH_STRIDE(vsize) \
	((((uint64_t)(vsize) + 16) + TXH_LINE - 1) / TXH_LINE * TXH_LINE)

struct txh_hdr {
	uint64_t magic;
	uint64_t vsize;
	uint64_t stride;
	uint64_t nbuckets;
	uint64_t bump;  /* area offset of the next free node */
	uint64_t pad[3];
};

/* Offset of the first node: after the buckets, on a line boundary. */
#define TXH_FIRST_NODE                                                       \
	((sizeof(struct txh_hdr) + 8 * TXH_NBUCKETS + TXH_LINE - 1) /       \
	 TXH_LINE * TXH_LINE)

/* A process's view of the table's area (the same in every program). */
struct txh_table {
	char *area;
	uint64_t size;
	struct txh_hdr *hdr;
	uint64_t *buckets;
	uint64_t vsize, stride;
};

static inline uint64_t *txh_key_of(const struct txh_table *t, uint64_t off)
{
	return (uint64_t *)(t->area + off + t->stride - 16);
}

static inline uint64_t *txh_next_of(const struct txh_table *t, uint64_t off)
{
	return (uint64_t *)(t->area + off + t->stride - 8);
}

struct bench_opts {
	const char *prog;
	const char *dir;         /* where the pool / environment goes */
	uint64_t vsize;          /* value size in bytes */
	uint64_t preload;        /* keys loaded before the timed loop */
	uint64_t keyspace;       /* upsert keys are drawn from this many */
	uint64_t ops;            /* timed upserts (one transaction each) */
	uint64_t batch;          /* preload keys per transaction */
	uint64_t seed;           /* of the upsert key sequence */
	unsigned fence_ns;       /* emulated extra latency per fence */
	unsigned threads;        /* timed-loop threads (kv programs only) */
	int keep;                /* leave the pool / environment behind */
	int quiet;
};

/* Parse the common options; exits with a usage message on error.
 * `extra` is printed in --help after the common options (may be NULL). */
void bench_parse(int argc, char **argv, struct bench_opts *o,
		 const char *extra);

/* The i-th key (i < keyspace): a bijective 64-bit mix, so keys are distinct
 * and spread over the whole 64-bit space. */
uint64_t bench_key(uint64_t i);

/* Bucket of a key. */
static inline uint64_t txh_bucket(uint64_t key)
{
	key ^= key >> 31;
	key *= 0x7fb5d329728ea185ull;
	key ^= key >> 27;
	return key & (TXH_NBUCKETS - 1);
}

/* The seeded xorshift64* sequence of key indices for the timed upserts
 * (the same for every system). */
struct bench_seq {
	uint64_t s;
	uint64_t keyspace;
};
void bench_seq_init(struct bench_seq *q, const struct bench_opts *o);
static inline uint64_t bench_seq_next(struct bench_seq *q)
{
	q->s ^= q->s >> 12;
	q->s ^= q->s << 25;
	q->s ^= q->s >> 27;
	return (q->s * 0x2545f4914f6cdd1dull >> 11) % q->keyspace;
}

/* How many of the timed upserts insert a new key (the rest update): a
 * simulation of the key sequence, used to check every system did the same
 * work. */
uint64_t bench_expected_inserts(const struct bench_opts *o);

/* Fill a value: first word = op number, last word = key, the rest a
 * pattern.  vsize >= 16. */
void bench_fill_value(unsigned char *v, uint64_t vsize, uint64_t key,
		      uint64_t op);
/* Does v hold a value written by bench_fill_value for key? */
int bench_value_ok(const unsigned char *v, uint64_t vsize, uint64_t key);

/* Bytes of the table area for these options (header, buckets, a node for
 * every key of the key space). */
uint64_t txh_area_size(const struct bench_opts *o);
/* Point t at an area of txh_area_size(o) bytes starting at `area`. */
void txh_table_init(struct txh_table *t, const struct bench_opts *o,
		    char *area);
/* Node offset of key (plain reads, outside transactions), 0 if absent. */
uint64_t txh_lookup(const struct txh_table *t, uint64_t key);
/* After the timed loop: every key of the key space is present iff it was
 * preloaded or upserted, with a well-formed value, and `inserts` matches
 * the key sequence.  Dies otherwise. */
void txh_verify(const struct bench_opts *o, const struct txh_table *t,
		uint64_t inserts);


uint64_t bench_now_ns(void);
/* Busy-wait ns nanoseconds (the same loop as libmnemo's emulator). */
void bench_spin_ns(uint64_t ns);
/* Read one byte of every page so the timed loop takes no page faults. */
void bench_prefault(const void *p, size_t len);

/* Join dir and name into a static buffer. */
const char *bench_path(const struct bench_opts *o, const char *name);

/*
 * Print the one result line bench/run-txhash parses:
 *   RESULT system=... value=... emul_fence_ns=... threads=... ops=... ns=...
 *          ops_per_s=...
 *          flushes_per_tx=... fences_per_tx=... inserts=... updates=...
 * lines / fences < 0 mean "not measured" (n/a); inserts < 0 likewise.
 */
void bench_result(const struct bench_opts *o, const char *system,
		  uint64_t ops, uint64_t ns, double lines, double fences,
		  int64_t inserts);

/* Die unless --threads is 1 (programs without a threaded loop). */
void bench_one_thread(const struct bench_opts *o);

/* Print "prog: msg" to stderr and exit(1). */
void bench_die(const struct bench_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

#endif
