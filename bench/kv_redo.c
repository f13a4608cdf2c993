/*
 * kv_redo.c -- the natural-layout key-value benchmark (kv.h) written by
 * hand as a redo log: about the least any log-based durable update can do,
 * the physical reference for libmnemo's transactions (a redo log) as
 * kv_hand.c is for any durable update.  Same table and layout as libmnemo's
 * (entries { key; next; value[V] }, the value at offset 16), in a file
 * (kv_file.h).
 *
 * Each thread appends to a ring of its own in the file, 1 MiB like
 * libmnemo's default log (MNEMO_TX_LOG_SIZE), one record per overwrite:
 *
 *   [offset | len << 48] [the value, in words, the last one zero-padded] [sum]
 *
 * sum mixes the record's words with the ring's epoch (in the ring's first
 * line).  A record of up to 512 bytes is written with plain stores and
 * written back with clwb, a longer one with non-temporal stores (libmnemo's
 * rule too); one fence; then the value is written in place and not flushed.
 * When the next record does not fit, every value written in place since the
 * last truncation is written back, a fence, then the epoch moves on
 * (flushed, fenced): every record in the ring is dead, and the ring starts
 * again at its beginning.  Recovery would replay, from the ring's start, the
 * records whose sum matches the epoch; it is not written here, as the
 * benchmark never crashes: what this program measures is the work a correct
 * redo log does at each overwrite.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_file.h"

#define RING_BYTES ((uint64_t)1 << 20)
#define SMALL_RECORD 512u
#define MAX_RINGS 64u

struct span {
	uint64_t off, len;
};

struct ring {
	uint64_t *epoch_word; /* the ring's first line */
	uint64_t *w;          /* cap words of records */
	uint64_t cap, tail, epoch;
	struct span *pend; /* values written in place, not yet flushed */
	uint64_t npend;
};

static struct bench_opts O;
static struct kv_file F;
static struct ring g_rings[MAX_RINGS];
static unsigned g_nrings;
static __thread struct ring *tl_ring;

static uint64_t entry_size(void)
{
	return sizeof(struct kv_entry) + O.vsize;
}

/* The calling thread's ring (taken on its first overwrite). */
static struct ring *my_ring(void)
{
	if (tl_ring)
		return tl_ring;
	unsigned i = __atomic_fetch_add(&g_nrings, 1, __ATOMIC_RELAXED);
	if (i >= MAX_RINGS)
		bench_die(&O, "more than %u threads", MAX_RINGS);
	struct ring *r = &g_rings[i];
	char *at = kv_file_extra(&F) + i * RING_BYTES;
	r->epoch_word = (uint64_t *)at;
	r->w = (uint64_t *)(at + 64);
	r->cap = (RING_BYTES - 64) / 8;
	r->pend = malloc(r->cap / 3 * sizeof(*r->pend)); /* 3 words at least */
	if (!r->pend)
		bench_die(&O, "out of memory");
	return tl_ring = r;
}

/* Word i of the value (the last one zero-padded). */
static uint64_t value_word(const unsigned char *val, uint64_t i)
{
	uint64_t x = 0, n = O.vsize - i * 8;
	if (n >= 8)
		memcpy(&x, val + i * 8, 8);
	else
		memcpy(&x, val + i * 8, n);
	return x;
}

/* The record's sum: four independent multiply chains (a kilobyte costs
 * tens of nanoseconds, not a chain of 130 multiplies), then mixed. */
static uint64_t record_sum(uint64_t hdr, const unsigned char *val,
			   uint64_t words, uint64_t epoch)
{
	const uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t a[4] = {epoch ^ hdr, epoch + 1, epoch + 2, epoch + 3};
	for (uint64_t i = 0; i < words; i++)
		a[i & 3] = (a[i & 3] ^ value_word(val, i)) * k;
	uint64_t h = a[0] ^ (a[1] >> 17) ^ (a[2] << 23) ^ (a[3] >> 29) ^ words;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

/* Write back every value written in place since the last truncation,
 * then move the epoch on: every record in the ring is dead. */
static void truncate_ring(struct ring *r)
{
	for (uint64_t i = 0; i < r->npend; i++)
		kv_flush(kv_file_at(&F, r->pend[i].off), r->pend[i].len);
	kv_fence(&O);
	__atomic_store_n(r->epoch_word, ++r->epoch, __ATOMIC_RELEASE);
	kv_flush(r->epoch_word, 8);
	kv_fence(&O);
	r->tail = 0;
	r->npend = 0;
}

/* Non-temporal stores of n words from s (hdr first, sum last) to d, an
 * 8-aligned address: 16 bytes at a time once d is 16-aligned. */
static void stream_record(uint64_t *d, uint64_t hdr, const unsigned char *val,
			  uint64_t words, uint64_t sum)
{
	_mm_stream_si64((long long *)d++, (long long)hdr);
	uint64_t i = 0;
	if (((uintptr_t)d & 15) && i < words)
		_mm_stream_si64((long long *)d++, (long long)value_word(val, i++));
	for (; i + 2 <= words && (i + 2) * 8 <= O.vsize; i += 2, d += 2)
		_mm_stream_si128((__m128i *)d,
				 _mm_loadu_si128((const __m128i *)(val + i * 8)));
	for (; i < words; i++)
		_mm_stream_si64((long long *)d++, (long long)value_word(val, i));
	_mm_stream_si64((long long *)d, (long long)sum);
}

static void append(struct ring *r, uint64_t off, const unsigned char *val)
{
	uint64_t words = (O.vsize + 7) / 8, need = words + 2;
	if (r->tail + need > r->cap)
		truncate_ring(r);
	uint64_t *d = r->w + r->tail, hdr = off | O.vsize << 48;
	uint64_t sum = record_sum(hdr, val, words, r->epoch);
	if (need * 8 <= SMALL_RECORD) {
		d[0] = hdr;
		d[words] = 0; /* the padding of the last word */
		memcpy(d + 1, val, O.vsize);
		d[words + 1] = sum;
		kv_flush(d, need * 8);
	} else {
		stream_record(d, hdr, val, words, sum);
		kv_count_lines(((uintptr_t)(d + need) - 1) / 64 -
			       (uintptr_t)d / 64 + 1);
	}
	r->tail += need;
}

static void overwrite(uint64_t key, const unsigned char *val)
{
	uint64_t off = kv_file_find(&F, key);
	if (!off)
		bench_die(&O, "key %llu missing", (unsigned long long)key);
	struct ring *r = my_ring();
	uint64_t at = off + offsetof(struct kv_entry, value);
	append(r, at, val);
	kv_fence(&O); /* the persist point */
	memcpy(kv_file_at(&F, at), val, O.vsize);
	r->pend[r->npend++] = (struct span){at, O.vsize};
}

static const struct kv_system g_redo = {overwrite, kv_wb_reset, kv_wb_read};

static void verify(void)
{
	for (uint64_t i = 0; i < O.preload; i++) {
		uint64_t key = bench_key(i), off = kv_file_find(&F, key);
		struct kv_entry *e = off ? kv_file_at(&F, off) : NULL;
		if (!e || !bench_value_ok(e->value, O.vsize, key))
			bench_die(&O, "verify: key %llu missing or damaged",
				  (unsigned long long)i);
	}
}

int main(int argc, char **argv)
{
	kv_parse(argc, argv, &O, NULL);
	if (O.threads > MAX_RINGS)
		bench_die(&O, "--threads: at most %u", MAX_RINGS);
	if ((O.vsize + 7) / 8 + 2 > (RING_BYTES - 64) / 8)
		bench_die(&O, "--value: a record must fit the ring");
	kv_file_map(&F, &O, "kv-redo",
		    O.preload * ((entry_size() + 15) & ~15ull),
		    O.threads * RING_BYTES);
	for (uint64_t i = 0; i < O.preload; i++) {
		uint64_t off = kv_file_insert(&F, &O, bench_key(i), entry_size());
		struct kv_entry *e = kv_file_at(&F, off);
		bench_fill_value(e->value, O.vsize, bench_key(i), 0);
	}
	kv_file_run(&F, &O, &g_redo, "redo", verify);
	for (unsigned i = 0; i < g_nrings; i++)
		free(g_rings[i].pend);
	kv_file_close(&F, &O);
	return 0;
}
