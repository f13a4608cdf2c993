/*
 * persist_crash.c -- every primitive and the region/root tables, crashed at
 * every persist point under the sim backend, in drop and tear modes.
 * After each crash, recovery must show exactly the state after the ops that
 * returned, or after one more (the op under way).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define NOPS 8
#define SEEDS 3

static uint64_t *region(mnemo_pool *p, const char *name)
{
	return t_region(p, name);
}

/* Drop mode, then tearing per 8-byte word and per whole cache line (the
 * latter makes "a later line durable, an earlier one not" likely). */
static void run_modes(const char *base, t_workload w, t_check c)
{
	t_crash_modes(base, w, c, SEEDS);
}

static const char *pool_with_region(const char *tag, const char *name, size_t size)
{
	return t_pool_with_region(tag, 1 << 20, name, size);
}

/* ---- mnemo_store64 ---- */

static uint64_t val(int i) { return 0x0101010101010101ull * (uint64_t)(i + 1); }

static void store_work(mnemo_pool *p, struct t_progress *pr)
{
	uint64_t *d = region(p, "data");
	for (int i = 0; i < NOPS; i++) {
		T_BEGIN(pr);
		d[i % 4] = 0xdeadbeef; /* unpersisted noise the crash may tear in */
		mnemo_store64(&d[i % 4], val(i));
		T_END(pr);
	}
}

static bool store_check(mnemo_pool *p, int k)
{
	uint64_t *d = region(p, "data");
	for (int j = 0; j < 4; j++) {
		uint64_t want = 0;
		for (int i = 0; i < k; i++)
			if (i % 4 == j)
				want = val(i);
		if (d[j] != want)
			return false;
	}
	return true;
}

Test(persist_crash, store64)
{
	run_modes(pool_with_region("store", "data", 4096), store_work, store_check);
}

/* ---- mnemo_shadow_update ---- */

#define SHADOW_LEN 200
struct shadow_area {
	void *slot;
	uint64_t pad[7];
	unsigned char buf[2][256];
};

static void fill(unsigned char *b, int i)
{
	for (int j = 0; j < SHADOW_LEN; j++)
		b[j] = (unsigned char)(i * 31 + j);
}

static void shadow_work(mnemo_pool *p, struct t_progress *pr)
{
	struct shadow_area *s = (struct shadow_area *)region(p, "shadow");
	unsigned char src[SHADOW_LEN];
	for (int i = 0; i < NOPS; i++) {
		T_BEGIN(pr);
		void *spare = s->slot == s->buf[0] ? s->buf[1] : s->buf[0];
		fill(src, i);
		mnemo_shadow_update(&s->slot, spare, src, SHADOW_LEN);
		T_END(pr);
	}
}

static bool shadow_check(mnemo_pool *p, int k)
{
	struct shadow_area *s = (struct shadow_area *)region(p, "shadow");
	if (k == 0)
		return s->slot == NULL;
	if (s->slot != s->buf[0] && s->slot != s->buf[1])
		return false;
	unsigned char want[SHADOW_LEN];
	fill(want, k - 1);
	return memcmp(s->slot, want, SHADOW_LEN) == 0;
}

Test(persist_crash, shadow_update)
{
	run_modes(pool_with_region("shadow", "shadow", 4096), shadow_work, shadow_check);
}

/* ---- region and root tables ---- */

static void table_work(mnemo_pool *p, struct t_progress *pr)
{
	void *r0, *r1, *r2;
	T_BEGIN(pr); mnemo_region_create(p, "r0", 8192, &r0); T_END(pr);
	memset(r0, 0xab, 8192); /* not an op: r0's contents are unconstrained */
	mnemo_persist(r0, 8192);
	T_BEGIN(pr); mnemo_region_create(p, "r1", 4096, &r1); T_END(pr);
	T_BEGIN(pr); mnemo_region_delete(p, r0); T_END(pr);
	T_BEGIN(pr); mnemo_region_create(p, "r2", 8192, &r2); T_END(pr);
	T_BEGIN(pr); mnemo_root_set(p, "x", r2); T_END(pr);
	T_BEGIN(pr); mnemo_root_set(p, "x", r1); T_END(pr);
	T_BEGIN(pr); mnemo_root_delete(p, "x"); T_END(pr);
	T_BEGIN(pr); mnemo_region_delete(p, r1); T_END(pr);
}

static bool has(mnemo_pool *p, const char *name, void **a)
{
	size_t sz;
	return mnemo_region_find(p, name, a, &sz) == 0;
}

static bool all_zero(const void *a, size_t n)
{
	const unsigned char *b = a;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static bool table_check(mnemo_pool *p, int k)
{
	void *r0, *r1, *r2, *x = NULL;
	bool want_r0 = k >= 1 && k < 3, want_r1 = k >= 2 && k < 8;
	bool want_r2 = k >= 4;
	if (has(p, "r0", &r0) != want_r0 || has(p, "r1", &r1) != want_r1 ||
	    has(p, "r2", &r2) != want_r2)
		return false;
	if (want_r2 && !all_zero(r2, 8192)) /* reuses r0's extent */
		return false;
	int rc = mnemo_root_get(p, "x", &x);
	if (k < 5 || k >= 7)
		return rc == -ENOENT;
	return rc == 0 && x == (k == 5 ? r2 : r1);
}

Test(persist_crash, region_and_root_tables)
{
	const char *path = t_path("tables");
	t_create(path, 1 << 20);
	run_modes(path, table_work, table_check);
}

/* ---- RAWL ---- */

#define LOG_OPS 66
#define LOG_CAP 64 /* the ring fills a page: 496 words */

/* Op i appends a record of 1 + (i * 17) % 41 words; every 3rd op truncates
 * 2.  About 900 words in all: the ring wraps (WRAP records and implicit
 * wraps both occur). */
static bool log_op_is_trunc(int i) { return i % 3 == 2; }
static size_t rec_len(int i) { return 1 + (size_t)(i * 17) % 41; }
static uint64_t rec_word(int i, size_t j) { return ((uint64_t)i << 32) | j; }

static void log_work(mnemo_pool *p, struct t_progress *pr)
{
	mnemo_rawl *l = NULL;
	cr_assert_eq(mnemo_rawl_open(p, "log", LOG_CAP, &l), 0);
	for (int i = 0; i < LOG_OPS; i++) {
		uint64_t w[48];
		for (size_t j = 0; j < rec_len(i); j++)
			w[j] = rec_word(i, j);
		T_BEGIN(pr);
		int rc = log_op_is_trunc(i) ? mnemo_rawl_truncate(l, 2)
					    : mnemo_rawl_append(l, w, rec_len(i));
		if (rc)
			_exit(3);
		T_END(pr);
	}
	mnemo_rawl_close(&l);
}

struct model {
	int ids[LOG_OPS];
	int n, at;
	bool bad;
};

/* Compares the first m->n records with the model; later ones (appended
 * after recovery) are only counted. */
static int cmp_rec(const uint64_t *w, size_t n, void *arg)
{
	struct model *m = arg;
	if (m->at >= m->n)
		return 0;
	int id = m->ids[m->at++];
	if (n != rec_len(id))
		m->bad = true;
	for (size_t j = 0; j < n && !m->bad; j++)
		m->bad = w[j] != rec_word(id, j);
	return m->bad;
}

static bool log_check(mnemo_pool *p, int k)
{
	struct model m = {.n = 0};
	for (int i = 0; i < k; i++) {
		if (!log_op_is_trunc(i)) {
			m.ids[m.n++] = i;
		} else {
			int drop = m.n < 2 ? m.n : 2;
			memmove(m.ids, m.ids + drop, sizeof(int) * (size_t)(m.n - drop));
			m.n -= drop;
		}
	}
	mnemo_rawl *l = NULL;
	cr_assert_eq(mnemo_rawl_open(p, "log", LOG_CAP, &l), 0);
	mnemo_rawl_foreach(l, cmp_rec, &m);
	bool ok = !m.bad && m.at == m.n && mnemo_rawl_count(l) == (size_t)m.n;
	/* The recovered log keeps working: appends after recovery, then a
	 * reopen, must show the model plus exactly those records. */
	uint64_t w[48] = {0};
	for (int i = 0; ok && i < 4; i++) {
		if (mnemo_rawl_space(l) < 40)
			break;
		ok = mnemo_rawl_append(l, w, 20 + (size_t)i * 7) == 0;
	}
	size_t want = mnemo_rawl_count(l);
	mnemo_rawl_close(&l);
	cr_assert_eq(mnemo_rawl_open(p, "log", LOG_CAP, &l), 0);
	ok = ok && mnemo_rawl_count(l) == want;
	m.at = 0;
	mnemo_rawl_foreach(l, cmp_rec, &m);
	mnemo_rawl_close(&l);
	return ok && m.at == m.n;
}

Test(persist_crash, rawl_append_and_truncate)
{
	const char *path = t_path("rawl");
	t_create(path, 1 << 20);
	mnemo_pool *p = t_open(path, 0);
	mnemo_rawl *l = NULL;
	cr_assert_eq(mnemo_rawl_open(p, "log", LOG_CAP, &l), 0);
	mnemo_rawl_close(&l);
	mnemo_pool_close(&p);
	run_modes(path, log_work, log_check);
}
