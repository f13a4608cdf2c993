/*
 * txlog.cc -- per-thread redo logs in a pool, their truncation, and
 * recovery at open (format in layout.h, "Durable transactions").
 *
 * Truncation ("a pass") makes a prefix of every log dead at once:
 *   1. W = the watermark: every transaction with wv <= W has appended its
 *      record and finished writing back in place (see watermark());
 *   2. flush in place the entries of every record with wv <= W (commits
 *      write back without flushing), then one fence;
 *   3. durably raise the floor to W: records <= W are now dead;
 *   4. truncate each log's dead prefix (RAWL truncate: one fence each).
 * A crash anywhere leaves either the old floor (replay covers everything)
 * or the new one (everything below it is in place).  Truncating logs one by
 * one without the floor would be wrong: an older record left in one log
 * could be replayed over a newer one already dropped from another.
 *
 * A record up to the documented limit always gets room, wherever the
 * log's ring stands: see "Room for a record" below.
 *
 * Locking: pool_state::mu guards log ownership and creation; each log's mu
 * is held by its owner while appending and by a pass while reading or
 * truncating it; pass_mu serialises passes and rewinds (the truncations).
 * Order: pass_mu, then one log mu at a time; mu is never held with a log
 * mu.  A thread that exits takes the scm window registry's lock, then
 * each pool's mu (desc_unregister, through scm::each_owner); nothing takes
 * the registry's lock holding a pool's mu.
 */
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sched.h>
#include <string>

#include "base/config.h"
#include "base/error.h"
#include "base/spin.h"
#include "mnemosyne.h"
#include "pool/pool.h"
#include "rawl/rawl.h"
#include "tx/txlog.h"

namespace mnemo::tx {

std::atomic<uint64_t> g_clock{0};

/*
 * What a pass must flush, kept beside the log so that passes never read
 * the ring back (it is streamed out of the cache, by non-temporal stores
 * or write-backs: every read would miss).  One entry per record of the
 * log, in the same order, each with the ranges its commit wrote in place.
 * Invariant (under the slot's mu):
 * recs[rec_head..] are the log's records, and their ranges are
 * ranges[range_head..] in order.  Recovery empties the logs at open, so
 * every record at run time was appended through put() or pad().
 */
struct unflushed {
	struct rec {
		uint64_t wv;
		size_t nranges;
		uint64_t end, end_seq; /* rawl_end after the put */
	};
	std::vector<rec> recs;
	std::vector<scm::piece> ranges;
	size_t rec_head = 0, range_head = 0;

	void clear()
	{
		recs.clear();
		ranges.clear();
		rec_head = range_head = 0;
	}
	/* Forget the first n records (they left the log). */
	void drop(size_t n)
	{
		for (size_t i = 0; i < n; i++)
			range_head += recs[rec_head + i].nranges;
		rec_head += n;
		if (rec_head == recs.size()) {
			clear();
		} else if (rec_head > 1024 && rec_head * 2 > recs.size()) {
			recs.erase(recs.begin(), recs.begin() + (long)rec_head);
			ranges.erase(ranges.begin(),
				     ranges.begin() + (long)range_head);
			rec_head = range_head = 0;
		}
	}
};

/* Lines (an adjacent pair) of its own: owners append concurrently.  mu
 * is a spin lock: the owner takes it at every commit, a pass (any
 * thread) once per pass. */
struct alignas(128) log_slot {
	mnemo_rawl *log = nullptr;
	spin_mutex mu;
	tx_desc *owner = nullptr;
	uint64_t lo = 0, hi = 0; /* the log's region (rawl_range) */
	unflushed pending;
};

struct pool_state {
	log_slot logs[layout::kTxLogs];
	std::mutex mu, pass_mu;
	layout::tx_meta *meta = nullptr;
	/* The library's regions (meta and logs) that transactions must not
	 * write: appended under mu, read without it (entries are written
	 * before the count is published). */
	struct range {
		uint64_t lo, hi;
	} own[layout::kTxLogs + 1 + 64]; /* + heap segment headers */
	std::atomic<unsigned> nown{0};
	/* A pass's list of ranges to flush (under pass_mu). */
	std::vector<scm::piece> to_flush;
	uint64_t log_bytes = 0;
	uint64_t id = 0;
};

void pool_state_free(pool_state *ps)
{
	for (log_slot &s : ps->logs)
		if (s.log)
			mnemo_rawl_close(&s.log);
	delete ps;
}

namespace {

constexpr uint64_t kAddrMask = (1ull << 48) - 1;
std::atomic<uint64_t> g_next_id{1};

std::mutex g_desc_mu;
std::vector<tx_desc *> g_descs;

/* ---- records ---- */

/* A record entry: len bytes at addr (heap == 0), or a heap entry (heap
 * == kTxHeapSet or kTxHeapClear, len 8, data the mask). */
struct entry_ref {
	uint64_t addr, len;
	const void *data;
	uint64_t heap;
};

/* Walk the entries of a record payload; false if malformed. */
template <class F> bool walk_entries(const uint64_t *w, size_t n, F &&f)
{
	for (size_t i = 1; i < n;) {
		uint64_t len = w[i] >> 48, words = (len + 7) / 8, heap = 0;
		if (len == layout::kTxHeapSet || len == layout::kTxHeapClear) {
			heap = len;
			len = 8;
			words = 1;
		}
		if (len == 0 || (len > layout::kTxRunMax && !heap) ||
		    i + 1 + words > n)
			return false;
		if (!f(entry_ref{w[i] & kAddrMask, len, w + i + 1, heap}))
			return false;
		i += 1 + words;
	}
	return n >= 1;
}

/* Every transaction with wv <= result has appended its record and finished
 * writing back.  A committer publishes busy = (clock before its fetch_add)
 * before taking wv, so reading the clock first and busy after cannot miss
 * one (all seq_cst). */
uint64_t watermark()
{
	uint64_t w = g_clock.load();
	counted_guard<std::mutex> g(g_desc_mu);
	for (tx_desc *d : g_descs) {
		uint64_t b = d->busy.load();
		if (b != kIdle && b - 1 < w)
			w = b - 1;
	}
	return w;
}

/* Note the record of wv whose entries are `ranges` (just appended to s's
 * log) in s->pending. */
void note_record(log_slot *s, uint64_t wv,
		 const std::vector<scm::piece> &ranges)
{
	unflushed &u = s->pending;
	for (const scm::piece &x : ranges) /* one or two: no insert() */
		u.ranges.push_back(x);
	uint64_t end, seq;
	rawl_end(s->log, &end, &seq);
	u.recs.push_back({wv, ranges.size(), end, seq});
}

/* Truncate s's first n records, which pending knows the end of.
 * pre: s->mu held, 0 < n <= the records pending lists. */
int truncate_front(log_slot *s, size_t n)
{
	const unflushed &u = s->pending;
	const unflushed::rec &last = u.recs[u.rec_head + n - 1];
	int rc = rawl_truncate_to(s->log, last.end, last.end_seq, n);
	if (rc == 0)
		s->pending.drop(n);
	return rc;
}

/* Append to out the in-place ranges of s's records with wv <= w (those
 * above the floor: the rest were flushed by an earlier pass); returns how
 * many records that is.  The pass flushes them after releasing s->mu:
 * the owner appends meanwhile (its push_backs may move the vectors, so
 * they are copied, not referenced), and no one else drops records (only
 * passes, under pass_mu).  pre: s->mu held. */
size_t ranges_upto(const log_slot *s, uint64_t w, uint64_t floor,
		   std::vector<scm::piece> *out)
{
	const unflushed &u = s->pending;
	size_t n = 0, r = u.range_head, from = r;
	auto copy_run = [&]() { /* ranges [from, r): one insert */
		out->insert(out->end(), u.ranges.begin() + (long)from,
			    u.ranges.begin() + (long)r);
	};
	for (size_t i = u.rec_head; i < u.recs.size() && u.recs[i].wv <= w;
	     i++, n++) {
		const unflushed::rec &rec = u.recs[i];
		if (rec.wv <= floor) { /* flushed already: ends a run */
			copy_run();
			from = r + rec.nranges;
		}
		r += rec.nranges;
	}
	copy_run();
	return n;
}

int raise_floor(pool_state *ps, uint64_t w)
{
	if (w <= ps->meta->floor)
		return 0;
	scm::store64(&ps->meta->floor, w);
	scm::persist(&ps->meta->floor, 8);
	return 0;
}

/* pre: pass_mu held */
int pass_locked(mnemo_pool *p)
{
	pool_state *ps = p->tx;
	/* Finished commits took wvs up to the clock + 1 (take_wv): moving
	 * it lets the watermark cover them. */
	clock_step();
	uint64_t w = watermark(), floor = ps->meta->floor;
	size_t drop[layout::kTxLogs] = {};
	std::vector<scm::piece> &to_flush = ps->to_flush;
	to_flush.clear();
	for (unsigned i = 0; i < layout::kTxLogs; i++) {
		log_slot &s = ps->logs[i];
		counted_guard<spin_mutex> lg(s.mu);
		if (s.log)
			drop[i] = ranges_upto(&s, w, floor, &to_flush);
	}
	/* Records name canonical addresses in the pool's window: its device
	 * flushes them (no window lookup per range), with no log locked. */
	p->dev->flush_all(to_flush.data(), to_flush.size());
	scm::fence();
	raise_floor(ps, w);
	int rc = 0;
	for (unsigned i = 0; i < layout::kTxLogs; i++) {
		log_slot &s = ps->logs[i];
		counted_guard<spin_mutex> lg(s.mu);
		if (drop[i] && rc == 0)
			rc = truncate_front(&s, drop[i]);
	}
	return rc;
}

int pass(mnemo_pool *p)
{
	counted_guard<std::mutex> g(p->tx->pass_mu);
	return pass_locked(p);
}

/* A pass unless one is under way: that one truncates our log too, as far
 * as the watermark allows, and waiting for its write-back would idle
 * this thread for as long (passes run one at a time). */
void pass_if_idle(mnemo_pool *p)
{
	std::mutex &m = p->tx->pass_mu;
	tl_atomics++;
	if (!m.try_lock())
		return;
	tl_atomics++; /* the unlock */
	pass_locked(p);
	m.unlock();
}

/* ---- logs and the meta region ---- */

void add_own(pool_state *ps, uint64_t lo, uint64_t hi)
{
	unsigned n = ps->nown.load();
	ps->own[n] = {lo, hi};
	ps->nown.store(n + 1, std::memory_order_release);
}

int open_meta(mnemo_pool *p, pool_state *ps, bool create)
{
	void *a;
	size_t sz;
	int rc = region_find_internal(p, layout::kTxMetaName, &a, &sz);
	if (rc == -ENOENT && create)
		rc = region_create_internal(p, layout::kTxMetaName,
					    sizeof(layout::tx_meta), &a, &sz);
	if (rc)
		return rc;
	ps->meta = (layout::tx_meta *)a;
	add_own(ps, (uintptr_t)a, (uintptr_t)a + sz);
	return 0;
}

std::string log_name(unsigned i)
{
	return std::string(layout::kRawlPrefix) + layout::kTxLogPrefix +
	       std::to_string(i);
}

int open_log(mnemo_pool *p, log_slot &s, unsigned i, bool create)
{
	std::string name = log_name(i);
	void *a;
	size_t sz;
	if (!create && region_find_internal(p, name.c_str(), &a, &sz) != 0)
		return -ENOENT;
	uint64_t cap = (p->tx->log_bytes - layout::kRawlRingOff) / 8;
	int rc = rawl_open_internal(p, name, cap, &s.log);
	if (rc == 0) {
		rawl_range(s.log, &s.lo, &s.hi);
		add_own(p->tx, s.lo, s.hi);
	}
	return rc;
}

int log_size(mnemo_pool *p, uint64_t *out)
{
	const char *s = getenv("MNEMO_TX_LOG_SIZE");
	uint64_t v = 1 << 20;
	if (s && *s) {
		int rc = parse_size("MNEMO_TX_LOG_SIZE", s, &v);
		if (rc)
			return rc;
		if (v < 8192)
			return fail(EINVAL, "MNEMO_TX_LOG_SIZE=%s: at least 8K",
				    s);
	} else if (v > p->size.load() / 16) {
		v = std::max<uint64_t>(p->size.load() / 16, 8192);
	}
	*out = v;
	return 0;
}

/* Create log i (and the metadata region if it is missing); a failure
 * names what could not be created: usually the pool has no room.
 * pre: ps->mu held. */
int create_log(mnemo_pool *p, unsigned i, const char *whose)
{
	pool_state *ps = p->tx;
	int rc = ps->meta ? 0 : open_meta(p, ps, true);
	if (rc) {
		std::string why = mnemo_errormsg(); /* fail() overwrites it */
		return fail(-rc, "pool %s: cannot create its transaction "
			    "metadata region (one page): %s", p->path.c_str(),
			    why.c_str());
	}
	if ((rc = open_log(p, ps->logs[i], i, true))) {
		std::string why = mnemo_errormsg();
		return fail(-rc, "pool %s: cannot create %s transaction log of "
			    "%llu bytes (MNEMO_TX_LOG_SIZE): %s",
			    p->path.c_str(), whose,
			    (unsigned long long)ps->log_bytes, why.c_str());
	}
	return 0;
}

/* The log of d in d->pool, claimed (and created) if d has none.  The
 * claim is cached in d: a slot stays d's until d's thread exits, and a
 * reopened pool gets a new id. */
int claim_log(tx_desc *d, log_slot **out)
{
	pool_state *ps = d->pool->tx;
	if (d->log_pool_id == ps->id) {
		*out = (log_slot *)d->log_slot;
		return 0;
	}
	std::lock_guard<std::mutex> g(ps->mu);
	log_slot *idle = nullptr;
	unsigned free_i = layout::kTxLogs;
	for (unsigned i = 0; i < layout::kTxLogs; i++) {
		log_slot &s = ps->logs[i];
		if (s.owner == d) {
			*out = &s;
			d->log_pool_id = ps->id;
			d->log_slot = &s;
			return 0;
		}
		if (!s.owner && s.log && !idle)
			idle = &s;
		if (!s.log && free_i == layout::kTxLogs)
			free_i = i;
	}
	if (!idle) {
		if (free_i == layout::kTxLogs)
			return fail(EBUSY, "all %u transaction logs of pool %s "
				    "are in use by other threads",
				    layout::kTxLogs, d->pool->path.c_str());
		int rc = create_log(d->pool, free_i, "this thread's");
		if (rc)
			return rc;
		idle = &ps->logs[free_i];
	}
	idle->owner = d;
	*out = idle;
	d->log_pool_id = ps->id;
	d->log_slot = idle;
	return 0;
}

/* ---- recovery ---- */

struct rec_ref {
	uint64_t wv;
	const uint64_t *w;
	size_t n;
};

struct collect_arg {
	std::vector<rec_ref> *recs;
	uint64_t floor;
};

int collect_cb(const uint64_t *w, size_t n, void *arg)
{
	auto *c = (collect_arg *)arg;
	if (n == 0 || w[0] > c->floor) /* n == 0: malformed, refused later */
		c->recs->push_back({n ? w[0] : 0, w, n});
	return 0;
}

/* [a, a+n) lies inside one live region (so it is mapped). */
bool in_live_region(const mnemo_pool *p, uint64_t a, uint64_t n)
{
	uint64_t off = a - (uint64_t)p->base;
	for (const mnemo_pool::extent &e : p->extents)
		if (off >= e.offset && off - e.offset < e.size &&
		    n <= e.size - (off - e.offset))
			return true;
	return false;
}

int check_record(mnemo_pool *p, const rec_ref &r)
{
	bool ok = r.n >= 1 && walk_entries(r.w, r.n, [&](const entry_ref &e) {
		if (e.heap)
			return hooks()->word_ok(p, e.addr);
		return writable(p, e.addr, e.len) &&
		       in_live_region(p, e.addr, e.len);
	});
	return ok ? 0
		  : fail(EUCLEAN, "pool %s: a committed transaction record "
			 "(wv %llu, offset %#llx) is malformed or writes "
			 "outside user regions", p->path.c_str(),
			 (unsigned long long)r.wv,
			 (unsigned long long)((const char *)r.w - p->base));
}

/* Replay r's entries: its frees (heap clears) or everything else. */
void apply_record(const rec_ref &r, bool clears)
{
	walk_entries(r.w, r.n, [clears](const entry_ref &e) {
		if ((e.heap == layout::kTxHeapClear) != clears)
			return true;
		/* Strict mode: user data is read-only at e.addr. */
		auto *word = scm::wr((uint64_t *)e.addr);
		uint64_t mask = *(const uint64_t *)e.data;
		if (e.heap == layout::kTxHeapSet)
			*word |= mask;
		else if (e.heap == layout::kTxHeapClear)
			*word &= ~mask;
		else
			memcpy(word, e.data, e.len);
		scm::flush((const void *)e.addr, e.len);
		return true;
	});
}

/* Records sorted by wv, replayed in that order.  Records with the same wv
 * write disjoint bytes (take_wv), so their order does not matter, with
 * one exception: a block allocated by one and freed by another (a freed
 * block is reused only once the floor passes the free: heap.h, deferred).
 * So each wv's frees come after its other entries. */
void replay(const std::vector<rec_ref> &recs)
{
	for (size_t i = 0, j; i < recs.size(); i = j) {
		for (j = i; j < recs.size() && recs[j].wv == recs[i].wv; j++)
			apply_record(recs[j], false);
		for (size_t k = i; k < j; k++)
			apply_record(recs[k], true);
	}
}

int recover(mnemo_pool *p, pool_state *ps)
{
	int rc = open_meta(p, ps, false);
	if (rc == -ENOENT)
		return 0; /* no transaction ever ran in this pool */
	for (unsigned i = 0; i < layout::kTxLogs && rc == 0; i++) {
		rc = open_log(p, ps->logs[i], i, false);
		rc = rc == -ENOENT ? 0 : rc;
	}
	if (rc)
		return rc;
	std::vector<rec_ref> recs;
	collect_arg c{&recs, ps->meta->floor};
	for (log_slot &s : ps->logs)
		if (s.log && (rc = mnemo_rawl_foreach(s.log, collect_cb, &c)))
			return rc;
	for (const rec_ref &r : recs)
		if ((rc = check_record(p, r)))
			return rc;
	std::sort(recs.begin(), recs.end(),
		  [](const rec_ref &a, const rec_ref &b) { return a.wv < b.wv; });
	replay(recs);
	scm::fence();
	if (!recs.empty())
		raise_floor(ps, recs.back().wv);
	for (log_slot &s : ps->logs)
		if (s.log && mnemo_rawl_count(s.log) &&
		    (rc = mnemo_rawl_truncate(s.log, SIZE_MAX)))
			return rc;
	return 0; /* every log is empty, as its pending list */
}

} // namespace

uint64_t clock_step()
{
	tl_atomics++;
	tl_shared_lines++;
	return g_clock.fetch_add(1) + 1;
}

void clock_at_least(uint64_t v)
{
	uint64_t c = g_clock.load();
	if (c >= v)
		return;
	tl_atomics++;
	tl_shared_lines++;
	while (c < v && !g_clock.compare_exchange_weak(c, v))
		;
}

/* ---- interface ---- */

std::atomic<const bit_hooks *> g_bit_hooks;

void set_bit_hooks(const bit_hooks *h)
{
	g_bit_hooks.store(h, std::memory_order_release);
}

int pool_attach(mnemo_pool *p)
{
	auto *ps = new pool_state;
	ps->id = g_next_id++;
	p->tx = ps;
	int rc = log_size(p, &ps->log_bytes);
	/* Records may name heap blocks but never heap headers. */
	hooks()->protected_ranges(p, [](void *arg, uint64_t lo,
					    uint64_t hi) {
		add_own((pool_state *)arg, lo, hi);
	}, ps);
	if (rc == 0)
		rc = recover(p, ps);
	if (rc == 0 && ps->meta)
		clock_at_least(ps->meta->floor);
	if (rc == 0)
		scm::set_owner(p->dev.get(), p); /* owner_of() finds it */
	if (rc) {
		pool_state_free(ps);
		p->tx = nullptr;
	}
	return rc;
}

int pool_detach(mnemo_pool *p)
{
	if (!p->tx)
		return 0;
	int rc = drain(p);
	scm::set_owner(p->dev.get(), nullptr);
	pool_state_free(p->tx);
	p->tx = nullptr;
	return rc;
}

int drain(mnemo_pool *p)
{
	if (!p->tx || !p->tx->meta)
		return 0;
	return pass(p);
}

void protect(mnemo_pool *p, uint64_t lo, uint64_t hi)
{
	std::lock_guard<std::mutex> g(p->tx->mu);
	add_own(p->tx, lo, hi);
}

int reserve_log(mnemo_pool *p)
{
	pool_state *ps = p->tx;
	if (!ps)
		return 0;
	std::lock_guard<std::mutex> g(ps->mu);
	for (const log_slot &s : ps->logs)
		if (s.log)
			return 0;
	return create_log(p, 0, "the pool's first");
}

uint64_t floor_of(mnemo_pool *p)
{
	layout::tx_meta *m = p->tx ? p->tx->meta : nullptr;
	return m ? __atomic_load_n(&m->floor, __ATOMIC_ACQUIRE) : 0;
}

/* A pass retires records up to the watermark only: a commit still under
 * way (with a smaller wv) holds it back, so repeat until it is done.  New
 * commits take larger wvs, so the floor reaches `target`. */
void settle_to(mnemo_pool *p, uint64_t target)
{
	pool_state *ps = p->tx;
	if (!ps || !ps->meta)
		return;
	while (floor_of(p) < target) {
		pass(p);
		if (floor_of(p) < target)
			sched_yield();
	}
}

/* Clear the flag first, then move the clock (both seq_cst, as the
 * committer's read of the clock and its test of the flag in log_commit): a
 * commit that tested the flag before the clear read the clock before it
 * moved, so the target (the clock + 1 it read: take_wv) covers it; one
 * that tests it after the clear finds it clear (or set by another such
 * commit) and sets it, for the next settle. */
void settle_now(mnemo_pool *p)
{
	p->tx_dirty.store(false);
	settle_to(p, clock_step());
}

void settle_at(const void *addr)
{
	uintptr_t lo, hi;
	mnemo_pool *p = scm::owner_of(scm::canon((uintptr_t)addr), &lo, &hi);
	if (p)
		settle(p);
}

void settle_all()
{
	mnemo_pool *open[scm::kMaxWindows];
	int n = scm::owners(open, scm::kMaxWindows);
	for (int i = 0; i < n; i++)
		settle(open[i]);
}

bool writable(mnemo_pool *p, uintptr_t a, size_t n)
{
	uintptr_t lo = (uintptr_t)p->base + p->hdr.data_off;
	uintptr_t hi = (uintptr_t)p->base + p->size.load();
	if (a < lo || a > hi || n > hi - a)
		return false;
	pool_state *ps = p->tx;
	unsigned k = ps->nown.load(std::memory_order_acquire);
	for (unsigned i = 0; i < k; i++)
		if (a < ps->own[i].hi && ps->own[i].lo < a + n)
			return false;
	return true;
}

/* Ring words of the log in slot s (its real size: the log may have been
 * created with another MNEMO_TX_LOG_SIZE). */
size_t log_cap(const log_slot *s)
{
	return (s->hi - s->lo - layout::kRawlRingOff) / 8;
}

namespace {

/*
 * Room for a record.  A RAWL record never straddles the ring's end, so in
 * an empty log whose tail is r words before the end the largest record
 * that fits is max(r, cap - r) words (header and checksum included), as
 * little as cap / 2.  The documented limit, cap - 4 payload words, holds
 * wherever the tail is: a record that does not fit (1) waits until passes
 * have emptied its log, then (2) brings the tail to the ring's start (a
 * "rewind"), where every record up to the limit fits.
 *
 * (1) ends: the log holds only finished commits of its owner, all with
 * smaller wvs than the waiting one (which first takes a new wv above them:
 * they may share its first, see take_wv); what holds the watermark below
 * them is commits of other threads that took their wv earlier and are
 * still busy, and those never wait for a later one (the earliest of them
 * can always empty its own log).  With one thread the first pass empties
 * it.
 *
 * (2) appends a padding record and truncates it at once, up to twice (the
 * RAWL has no call that moves an empty log's tail).  A padding record is
 * a dead transaction record: its wv is 0, which no commit takes, so it is
 * at or below every floor, and passes and recovery retire it like any
 * other (the format is unchanged).  mnemo_rawl_space() gives max(r, cap -
 * r) - 2 but not which side is larger: a padding of max(r, cap - r) words
 * ends exactly at the ring's end if r is the larger; otherwise it wraps (a
 * WRAP record over the r words, the padding after it) and ends r words
 * before the end again, and a padding of r = cap - max(r, cap - r) words
 * then ends there.  Each truncation is one fence; a crash anywhere leaves
 * the log holding dead records at most.  Only records larger than half
 * the log pay this, at most one ring of padding.
 */

/* d->rec into s's log, without its fence; -ENOSPC if it does not fit.
 * The lock covers the bookkeeping only (room in the ring, the pending
 * list); the record is written after it is released, so a pass waiting
 * for the lock does not wait for the record's write-back, and no locked
 * instruction comes between that write-back and the commit's fence (a
 * locked instruction waits for every write-back in flight).  No pass
 * truncates the record meanwhile: d is busy with its wv, above the
 * watermark. */
int put(tx_desc *d, log_slot *s)
{
	rawl_slot at;
	int rc;
	{
		counted_guard<spin_mutex> g(s->mu);
		rc = rawl_reserve(s->log, d->rec.size(), &at);
		if (rc == 0)
			note_record(s, d->rec[0], d->ranges);
		d->log_used = rawl_used(s->log);
	}
	if (rc == 0)
		rawl_write(s->log, at, d->rec.data(), d->rec.size());
	return rc;
}

/* Append a padding record of `words` ring words (>= 3) and truncate it.
 * pre: pass_mu and s->mu held; the log is empty. */
int pad(log_slot *s, size_t words)
{
	std::vector<uint64_t> dead(words - 2, 0); /* wv 0, then zeros */
	int rc = rawl_put(s->log, dead.data(), dead.size());
	if (rc)
		return rc;
	note_record(s, 0, {}); /* wv 0, no ranges */
	rc = mnemo_rawl_truncate(s->log, SIZE_MAX);
	if (rc == 0)
		s->pending.clear(); /* it was empty: pre of pad */
	return rc;
}

/* Step (2) if s's log is empty: 0 once every record up to the limit fits,
 * 1 if the log still holds records, or a negative code. */
int rewind(pool_state *ps, log_slot *s)
{
	/* A pass counts the records it drops before truncating them: no
	 * other truncation may come in between. */
	std::lock_guard<std::mutex> pg(ps->pass_mu);
	std::lock_guard<spin_mutex> g(s->mu);
	if (mnemo_rawl_count(s->log))
		return 1;
	/* A WRAP record whose record a crash lost may be left (recovery
	 * truncates only logs with records): drop it. */
	int rc = mnemo_rawl_truncate(s->log, SIZE_MAX);
	size_t cap = log_cap(s);
	for (int i = 0; i < 2 && rc == 0; i++) {
		size_t big = mnemo_rawl_space(s->log) + 2; /* max(r, cap - r) */
		size_t words = i == 0 ? big : cap - big;
		if (big >= cap || words < 3) /* at the start, or r <= 2 */
			break;
		rc = pad(s, words);
	}
	return rc;
}

/* Before a record: settle() must see it from the moment it may be live
 * (see settle_now; the record's wv was taken before this test).  A flag
 * set for a record that never lands costs settle() one pass. */
void mark_dirty(mnemo_pool *p)
{
	if (!p->tx_dirty.load()) {
		p->tx_dirty.store(true);
		tl_atomics++; /* a seq_cst store: xchg */
		tl_shared_lines++;
	}
}

/* d->rec into s's log (see above), without its fence. */
int append(tx_desc *d, log_slot *s)
{
	for (;;) {
		int rc = put(d, s);
		if (rc != -ENOSPC)
			return rc;
		if ((rc = retake_wv(d)))
			return rc;
		mark_dirty(d->pool); /* for the new wv */
		if ((rc = pass(d->pool)) || (rc = put(d, s)) != -ENOSPC)
			return rc;
		if ((rc = rewind(d->pool->tx, s)) < 0)
			return rc;
		if (rc == 0) /* fits: log_commit checked the limit */
			return put(d, s);
		sched_yield(); /* (1): other threads' commits under way */
	}
}

/* The limit of mnemo_tx_begin(3): a record of at most cap - 4 words fits
 * in the log wherever its tail is (2 words for the record's header and
 * checksum, 2 for a WRAP record or an implicit wrap at the ring's end). */
int check_size(const tx_desc *d, const log_slot *s)
{
	size_t limit = log_cap(s) - 4;
	if (d->rec.size() <= limit)
		return 0;
	unsigned long long bytes = s->hi - s->lo;
	return fail(ENOSPC, "a transaction record of %zu words does not fit "
		    "this thread's transaction log of pool %s: a log of %llu "
		    "bytes takes records of at most %zu words ((%llu - 128) / "
		    "8 - 4); split the transaction, or raise MNEMO_TX_LOG_SIZE "
		    "(it sizes logs when they are created)", d->rec.size(),
		    d->pool->path.c_str(), bytes, limit, bytes);
}

} // namespace

int log_commit(tx_desc *d)
{
	log_slot *s = nullptr;
	int rc = claim_log(d, &s);
	if (rc == 0)
		rc = check_size(d, s);
	if (rc)
		return rc;
	mark_dirty(d->pool);
	if (d->fence_first) /* the fresh blocks' contents, before the record */
		scm::fence();
	rc = append(d, s);
	/* The persist point.  After the unlock, which (a locked
	 * instruction) already waits for the record's write-back, so the
	 * fence costs little more; no locked instruction follows it until
	 * the next transaction writes.  A pass cannot retire the record
	 * before it: d is busy (its wv is above the watermark). */
	if (rc == 0)
		scm::fence();
	return rc;
}

void log_done(tx_desc *d)
{
	size_t cap = log_cap((const log_slot *)d->log_slot);
	if (d->log_used > cap / 2)
		pass_if_idle(d->pool);
}

void desc_register(tx_desc *d)
{
	std::lock_guard<std::mutex> g(g_desc_mu);
	g_descs.push_back(d);
}

void wait_others_idle(tx_desc *d)
{
	for (;;) {
		bool busy = false;
		{
			std::lock_guard<std::mutex> g(g_desc_mu);
			for (tx_desc *o : g_descs)
				busy |= o != d && o->busy.load() != kIdle;
		}
		if (!busy)
			return;
		sched_yield();
	}
}

void desc_unregister(tx_desc *d)
{
	{
		std::lock_guard<std::mutex> g(g_desc_mu);
		g_descs.erase(std::find(g_descs.begin(), g_descs.end(), d));
	}
	/* The registry's lock keeps every pool open meanwhile. */
	scm::each_owner([](void *ctx, mnemo_pool *p) {
		std::lock_guard<std::mutex> pg(p->tx->mu);
		for (log_slot &s : p->tx->logs)
			if (s.owner == ctx)
				s.owner = nullptr;
	}, d);
}

} // namespace mnemo::tx
