/*
 * kv_hand.c -- the natural-layout key-value benchmark (kv.h) written by
 * hand with two fences per overwrite: the physical reference, about the
 * least a correct durable update can do.  The table lives in a MAP_SHARED
 * file on --dir (kv_file.h); entries are { key; next; sel; value[2][V] }.
 * An overwrite writes the idle copy, flushes it (clwb, else clflushopt),
 * fences, publishes it by an 8-byte store of sel, flushes that line and
 * fences again.  A crash leaves sel naming a complete copy.
 */
#include <stdio.h>
#include <string.h>

#include "kv_file.h"

struct hand_entry {
	uint64_t key;
	uint64_t next; /* offset in the file, 0: none */
	uint64_t sel;  /* which copy of the value is current: 0 or 1 */
	unsigned char value[];
};

static struct bench_opts O;
static struct kv_file F;

static uint64_t entry_size(void)
{
	return sizeof(struct hand_entry) + 2 * O.vsize;
}

static struct hand_entry *find(uint64_t key)
{
	uint64_t off = kv_file_find(&F, key);
	return off ? kv_file_at(&F, off) : NULL;
}

static void overwrite(uint64_t key, const unsigned char *val)
{
	struct hand_entry *e = find(key);
	if (!e)
		bench_die(&O, "key %llu missing", (unsigned long long)key);
	uint64_t idle = e->sel ^ 1;
	unsigned char *dst = e->value + idle * O.vsize;
	memcpy(dst, val, O.vsize);
	kv_flush(dst, O.vsize);
	kv_fence(&O);
	__atomic_store_n(&e->sel, idle, __ATOMIC_RELEASE);
	kv_flush(&e->sel, 8);
	kv_fence(&O);
}

static const struct kv_system g_hand = {overwrite, kv_wb_reset, kv_wb_read};

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

int main(int argc, char **argv)
{
	kv_parse(argc, argv, &O, NULL);
	kv_file_map(&F, &O, "kv-hand", O.preload * ((entry_size() + 15) & ~15ull),
		    0);
	for (uint64_t i = 0; i < O.preload; i++) {
		uint64_t off = kv_file_insert(&F, &O, bench_key(i), entry_size());
		struct hand_entry *e = kv_file_at(&F, off);
		e->sel = 0;
		bench_fill_value(e->value, O.vsize, bench_key(i), 0);
	}
	kv_file_run(&F, &O, &g_hand, "hand", verify);
	kv_file_close(&F, &O);
	return 0;
}
