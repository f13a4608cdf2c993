/*
 * rawl.cc -- the raw word log (RAWL): an append-only ring of 64-bit words
 * with one persist point per append (format in layout.h).
 *
 * Invariants of an open log (one writer; the handle is not thread-safe):
 *  - [head, tail) holds `records` user records and any WRAP records, each
 *    with a valid checksum for its sequence number, head_seq .. tail_seq-1;
 *  - tail - head <= cap;
 *  - desc[cur] is the durable descriptor {head, head_seq}.
 * Recovery (at open) recomputes tail by walking from head: the first record
 * whose checksum does not match its expected sequence number ends the log.
 * Stale records of earlier laps cannot match, since sequence numbers only
 * grow with position.
 */
#include <cerrno>
#include <cstring>
#include <string>

#include "base/error.h"
#include "base/export.h"
#include "base/hash.h"
#include "mnemosyne.h"
#include "pool/pool.h"
#include "rawl/rawl.h"


using namespace mnemo;
using layout::rawl_desc;

struct mnemo_rawl {
	mnemo_pool *pool;
	rawl_desc *desc; /* the two descriptor copies */
	uint64_t *ring;
	uint64_t cap; /* ring words */
	uint64_t head, head_seq, tail, tail_seq, records;
	uint64_t tail_idx; /* tail % cap: the append path divides by nothing */
	int cur; /* index of the newest valid descriptor, -1 if none */
	bool sum6; /* records checksummed by sum64 (format 6 and later) */
};

namespace {

constexpr uint64_t kMaxWords = 0xffffffffull;

/* The checksum of the record {hdr, w[0..n)} with sequence number seq
 * (layout.h): the header enters sum64's seed, the payload is hashed where
 * it is (in the ring, or the caller's buffer before the append). */
uint64_t rec_sum_of(const mnemo_rawl *l, uint64_t hdr, const uint64_t *w,
		    uint64_t n, uint64_t seq)
{
	if (l->sum6)
		return sum64(w, n, layout::kRecordSeed ^ seq ^ mix64(hdr));
	return hash64_wide_of([&](size_t k) { return k ? w[k - 1] : hdr; },
			      n + 1, layout::kRecordSeed ^ seq);
}

uint64_t rec_sum(const mnemo_rawl *l, const uint64_t *rec, uint64_t n,
		 uint64_t seq)
{
	return rec_sum_of(l, rec[0], rec + 1, n, seq);
}

uint64_t desc_sum(const rawl_desc *d)
{
	return hash64(d, 16, layout::kDescSeed);
}

/* The record at logical position `pos` with sequence `seq`: returns its
 * length in words (including any skipped end-of-ring words), or 0 if
 * invalid.  *user tells whether it is a user record. */
uint64_t rec_parse(const mnemo_rawl *l, uint64_t pos, uint64_t seq, bool *user)
{
	uint64_t idx = pos % l->cap, room = l->cap - idx;
	if (room < 2) /* implicit wrap: not a record, just skipped words */
		return 0;
	const uint64_t *r = l->ring + idx;
	uint64_t n = r[0] & kMaxWords, flags = r[0] >> 32;
	if (flags == layout::kRawlWrap && n == 0 && r[1] == rec_sum(l, r, 0, seq)) {
		*user = false;
		return room;
	}
	if (flags != 0 || n + 2 > room || r[n + 1] != rec_sum(l, r, n, seq))
		return 0;
	*user = true;
	return n + 2;
}

/* Words skipped at `pos` by an implicit wrap (fewer than 2 words left). */
uint64_t implicit_skip(const mnemo_rawl *l, uint64_t pos)
{
	uint64_t room = l->cap - pos % l->cap;
	return room < 2 ? room : 0;
}

/* Step over the record at *pos, which lies in [head, tail): *rec is its
 * first word.  Those records were checksummed when the log was opened or
 * were written by this handle, so only the header is read (walks are on
 * the transaction engine's truncation path); a header that does not fit
 * means the ring changed behind us. */
int rec_step(const mnemo_rawl *l, uint64_t *pos, uint64_t *seq, bool *user,
	     const uint64_t **rec)
{
	*pos += implicit_skip(l, *pos);
	(*seq)++;
	uint64_t idx = *pos % l->cap, room = l->cap - idx;
	const uint64_t *r = l->ring + idx;
	uint64_t n = r[0] & kMaxWords, flags = r[0] >> 32;
	uint64_t len = flags == layout::kRawlWrap && n == 0 ? room
		       : flags == 0 && n + 2 <= room	     ? n + 2
							     : 0;
	*user = flags == 0;
	if (len == 0 || *pos + len > l->tail)
		return fail(EUCLEAN, "log record at %llu (pool offset %#llx) "
			    "is corrupt", (unsigned long long)*pos,
			    (unsigned long long)((const char *)r -
						 l->pool->base));
	*rec = l->ring + *pos % l->cap;
	*pos += len;
	return 0;
}

/* Durably move the head to pos (sequence seq), dropping `dropped` user
 * records: the other descriptor copy is written, then becomes current. */
void set_head(mnemo_rawl *l, uint64_t pos, uint64_t seq, uint64_t dropped)
{
	if (pos == l->head)
		return;
	rawl_desc *d = &l->desc[l->cur == 0 ? 1 : 0];
	d->head = pos;
	d->seq = seq;
	d->checksum = desc_sum(d);
	scm::persist(d, sizeof(*d));
	l->cur = l->cur == 0 ? 1 : 0;
	l->head = pos;
	l->head_seq = seq;
	l->records -= dropped;
}

void load_head(mnemo_rawl *l)
{
	l->cur = -1;
	l->head = l->head_seq = 0;
	for (int i = 0; i < 2; i++) {
		const rawl_desc &d = l->desc[i];
		if (d.checksum == desc_sum(&d) && (l->cur < 0 || d.seq > l->head_seq)) {
			l->cur = i;
			l->head = d.head;
			l->head_seq = d.seq;
		}
	}
}

void find_tail(mnemo_rawl *l)
{
	uint64_t pos = l->head, seq = l->head_seq;
	l->records = 0;
	for (;;) {
		uint64_t at = pos + implicit_skip(l, pos);
		bool user = false;
		uint64_t len = at - l->head < l->cap ? rec_parse(l, at, seq, &user) : 0;
		if (len == 0 || at + len - l->head > l->cap)
			break; /* the tail stays before any skipped words */
		pos = at + len;
		seq++;
		l->records += user;
	}
	l->tail = pos;
	l->tail_idx = pos % l->cap;
	l->tail_seq = seq;
}

/* Move the tail forward to pos, keeping tail_idx. */
void set_tail(mnemo_rawl *l, uint64_t pos)
{
	l->tail_idx += pos - l->tail;
	while (l->tail_idx >= l->cap)
		l->tail_idx -= l->cap;
	l->tail = pos;
}

/* implicit_skip at the tail. */
uint64_t tail_skip(const mnemo_rawl *l)
{
	uint64_t room = l->cap - l->tail_idx;
	return room < 2 ? room : 0;
}

/*
 * The one append that can leave a record beyond a gap: a WRAP at the tail
 * and the record R after it, at the next lap's start, are flushed under one
 * fence, so R may be durable while the WRAP is not.  Recovery then ends the
 * log at the WRAP's position; R would come back to life if a later append
 * ended exactly at the ring's end (R has the sequence number expected
 * there).  Erase it.  No live record can match: live records at index 0
 * have smaller sequence numbers.
 */
void scrub_orphan(mnemo_rawl *l)
{
	uint64_t room = l->cap - l->tail % l->cap;
	if (room < 2 || l->tail - l->head >= l->cap)
		return;
	bool user;
	if (rec_parse(l, l->tail + room, l->tail_seq + 1, &user) == 0)
		return;
	scm::store64(&l->ring[0], ~l->ring[0]);
	scm::persist(&l->ring[0], 8);
}

/* Write a record with sequence number seq at ring index idx and start its
 * write-back, from the caller's words: the ring is never read back, so
 * the device may stream it with non-temporal stores.  Reads only what
 * never changes in an open log (ring, pool, sum6). */
void write_rec(const mnemo_rawl *l, uint64_t idx, uint64_t seq, uint64_t hdr,
	       const uint64_t *w, uint64_t n)
{
	uint64_t sum = rec_sum_of(l, hdr, w, n, seq);
	const scm::piece v[3] = {{&hdr, 8}, {w, n * 8}, {&sum, 8}};
	l->pool->dev->stream(l->ring + idx, v, 3);
}

/* Make room for `need` words at tail, wrapping if needed.  Changes nothing
 * on failure. */
int make_room(mnemo_rawl *l, uint64_t need)
{
	uint64_t skip = tail_skip(l), tail = l->tail + skip;
	uint64_t idx = skip ? 0 : l->tail_idx, room = l->cap - idx;
	uint64_t waste = room < need ? room : 0;
	if (need > l->cap)
		return fail(EINVAL, "record of %llu words exceeds the log's "
			    "capacity", (unsigned long long)(need - 2));
	if (tail - l->head + waste + need > l->cap)
		return fail(ENOSPC, "log is full (%llu of %llu words used); "
			    "truncate it", (unsigned long long)(l->tail - l->head),
			    (unsigned long long)l->cap);
	if (waste)
		write_rec(l, idx, l->tail_seq++, layout::kRawlWrap << 32,
			  nullptr, 0);
	set_tail(l, tail + waste);
	return 0;
}

int open_region(mnemo_pool *pool, const std::string &rname, size_t cap,
		char **reg, size_t *size)
{
	void *p;
	int rc = region_find_internal(pool, rname.c_str(), &p, size);
	if (rc == -ENOENT) {
		if (cap < 4 || cap > (1ull << 40))
			return fail(EINVAL, "log capacity %zu words is out of "
				    "range (4 .. 2^40)", cap);
		/* The region is page-rounded: the ring is all of it, now and
		 * at every later open. */
		rc = region_create_internal(pool, rname.c_str(),
					    layout::kRawlRingOff + cap * 8, &p,
					    size);
	}
	*reg = (char *)p;
	return rc;
}

} // namespace

MNEMO_API int mnemo_rawl_open(mnemo_pool *pool, const char *name, size_t capacity,
			      mnemo_rawl **logp)
{
	if (!pool || !logp || !name || !*name)
		return fail(EINVAL, "mnemo_rawl_open: pool, name and logp are "
			    "required");
	int rc = reserved_check("log", name);
	if (rc)
		return rc;
	return rawl_open_internal(pool, std::string(layout::kRawlPrefix) + name,
				  capacity, logp);
}

int mnemo::rawl_open_internal(mnemo_pool *pool, const std::string &rname,
			      size_t capacity, mnemo_rawl **logp)
{
	int rc = name_check(rname.c_str(), false);
	if (rc)
		return rc;
	char *reg = nullptr;
	size_t size = 0;
	rc = open_region(pool, rname, capacity, &reg, &size);
	if (rc)
		return rc;
	auto *l = new mnemo_rawl{};
	l->pool = pool;
	l->desc = (rawl_desc *)reg;
	l->ring = (uint64_t *)(reg + layout::kRawlRingOff);
	l->cap = (size - layout::kRawlRingOff) / 8;
	l->sum6 = layout::record_sum6(pool->hdr.major);
	load_head(l);
	find_tail(l);
	scrub_orphan(l);
	*logp = l;
	return 0;
}

MNEMO_API int mnemo_rawl_append(mnemo_rawl *l, const uint64_t *words, size_t n)
{
	if (!l || (n && !words) || n > kMaxWords - 2)
		return fail(EINVAL, "mnemo_rawl_append: bad arguments");
	int rc = rawl_put(l, words, n);
	if (rc == 0)
		scm::fence(); /* the one persist point of an append */
	return rc;
}

int mnemo::rawl_put(mnemo_rawl *l, const uint64_t *words, size_t n)
{
	rawl_slot at;
	int rc = rawl_reserve(l, n, &at);
	if (rc == 0)
		rawl_write(l, at, words, n);
	return rc;
}

int mnemo::rawl_reserve(mnemo_rawl *l, size_t n, rawl_slot *at)
{
	int rc = make_room(l, n + 2);
	if (rc)
		return rc;
	at->idx = l->tail_idx;
	at->seq = l->tail_seq++;
	set_tail(l, l->tail + n + 2);
	l->records++;
	return 0;
}

void mnemo::rawl_write(const mnemo_rawl *l, const rawl_slot &at,
		       const uint64_t *words, size_t n)
{
	write_rec(l, at.idx, at.seq, n, words, n);
}

MNEMO_API int mnemo_rawl_foreach(mnemo_rawl *l, mnemo_rawl_cb cb, void *arg)
{
	if (!l || !cb)
		return fail(EINVAL, "mnemo_rawl_foreach: log and cb required");
	uint64_t pos = l->head, seq = l->head_seq;
	while (pos < l->tail) {
		const uint64_t *r = nullptr;
		bool user = false;
		int rc = rec_step(l, &pos, &seq, &user, &r);
		if (rc == 0 && user)
			rc = cb(r + 1, r[0] & kMaxWords, arg);
		if (rc)
			return rc;
	}
	return 0;
}

MNEMO_API int mnemo_rawl_truncate(mnemo_rawl *l, size_t nrecords)
{
	if (!l)
		return fail(EINVAL, "mnemo_rawl_truncate: log is NULL");
	uint64_t pos = l->head, seq = l->head_seq, dropped = 0;
	while (pos < l->tail && dropped < nrecords) {
		const uint64_t *r = nullptr;
		bool user = false;
		int rc = rec_step(l, &pos, &seq, &user, &r);
		if (rc)
			return rc;
		dropped += user;
	}
	set_head(l, pos, seq, dropped);
	return 0;
}

void mnemo::rawl_end(const mnemo_rawl *l, uint64_t *pos, uint64_t *seq)
{
	*pos = l->tail;
	*seq = l->tail_seq;
}

uint64_t mnemo::rawl_used(const mnemo_rawl *l)
{
	return l->tail - l->head;
}

int mnemo::rawl_truncate_to(mnemo_rawl *l, uint64_t pos, uint64_t seq,
			    size_t n)
{
	if (pos < l->head || pos > l->tail || n > l->records)
		return fail(EINVAL, "log truncation to %llu lies outside "
			    "[%llu, %llu]", (unsigned long long)pos,
			    (unsigned long long)l->head,
			    (unsigned long long)l->tail);
	set_head(l, pos, seq, n);
	return 0;
}

void mnemo::rawl_range(const mnemo_rawl *l, uint64_t *lo, uint64_t *hi)
{
	*lo = (uint64_t)(uintptr_t)l->desc;
	*hi = (uint64_t)(uintptr_t)(l->ring + l->cap);
}

MNEMO_API size_t mnemo_rawl_count(const mnemo_rawl *l)
{
	return l ? l->records : 0;
}

MNEMO_API size_t mnemo_rawl_space(const mnemo_rawl *l)
{
	if (!l)
		return 0;
	uint64_t skip = tail_skip(l), tail = l->tail + skip;
	if (tail - l->head >= l->cap) /* full; head may rest on a skip */
		return 0;
	uint64_t free = l->cap - (tail - l->head);
	uint64_t room = skip ? l->cap : l->cap - l->tail_idx;
	uint64_t a = room < free ? room : free;
	uint64_t b = free > room ? free - room : 0;
	uint64_t best = a > b ? a : b;
	best = best > 2 ? best - 2 : 0;
	return best < kMaxWords - 2 ? best : kMaxWords - 2;
}

MNEMO_API int mnemo_rawl_close(mnemo_rawl **logp)
{
	if (!logp || !*logp)
		return fail(EINVAL, "mnemo_rawl_close: no log");
	delete *logp;
	*logp = nullptr;
	return 0;
}
