/*
 * stm.cc -- concurrency control and commit of transactions (see stm.h).
 *
 * Invariants while a transaction is active (depth > 0, status == 0):
 *  - every stripe in `locks` holds (d | 1), and `locks` records the
 *    unlocked word it replaced;
 *  - every write-set word lies in a stripe d holds;
 *  - every (stripe, version) in `rs` was valid at snapshot rv: no commit
 *    with wv <= rv wrote the stripe after the read;
 *  - busy == kIdle except between taking wv and releasing the locks;
 *  - every stripe version, and every wv taken, is at most the clock + 1
 *    (take_wv, retake_wv), and rv is a value the clock once held.
 * Opacity: a read that cannot be validated at rv (after trying to extend
 * rv) fails instead of returning, so the body never sees inconsistent data.
 * That holds for memory written only by transactions, and for a block a
 * transaction frees: the free locks the block's stripes (lock_block), so
 * its commit moves their versions to its wv before the heap can hand the
 * block out again (after truncation, which waits for the commit to end);
 * a reader still holding a pointer into the block then finds a version
 * above its rv and fails rather than read the next owner's plain stores.
 */
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>
#include <sched.h>

#include "base/error.h"
#include "mnemosyne.h"
#include "pool/pool.h"
#include "scm/scm.h"
#include "tx/txlog.h"

namespace mnemo::tx {
namespace {

/* 256-byte stripes, four write-set chunks each: a store of a kilobyte
 * takes 4 or 5 locks, not 16 or 17 (each a locked instruction, ~10 ns),
 * and a 64-byte value across two lines one.  Larger stripes would make
 * neighbouring small objects of different threads conflict more often. */
constexpr unsigned kStripeShift = 8;
constexpr size_t kStripe = (size_t)1 << kStripeShift;
static_assert(kStripe % kChunk == 0, "a chunk lies in one stripe");
constexpr size_t kStripes = (size_t)1 << 16;
std::atomic<uint64_t> g_locks[kStripes];
/* The descriptor in serial-irrevocable mode, if any. */
std::atomic<tx_desc *> g_serial{nullptr};

inline size_t stripe_of(uintptr_t a)
{
	return (a >> kStripeShift) & (kStripes - 1);
}

inline tx_desc *owner_of(uint64_t w)
{
	return (w & 1) ? (tx_desc *)(w & ~1ull) : nullptr;
}

uint64_t rnd(tx_desc *d)
{
	d->seed ^= d->seed << 13;
	d->seed ^= d->seed >> 7;
	d->seed ^= d->seed << 17;
	return d->seed;
}

/* Randomised exponential backoff.  Randomised at every retry: threads
 * that conflict in lockstep (each holding the stripe the other reads next)
 * only fall out of step by chance, and sched_yield() alone returns at once
 * when each has a core of its own. */
void backoff(tx_desc *d)
{
	unsigned r = d->retries < 10 ? d->retries : 10;
	if (r >= 3)
		sched_yield();
	for (uint64_t n = rnd(d) % (64u << r); n; n--)
		__builtin_ia32_pause();
}

/* Remember that the lock word w of stripe s (held by another) made this
 * attempt fail. */
void contend(tx_desc *d, size_t s, uint64_t w)
{
	d->contended = (uint32_t)s;
	d->contended_word = w;
}

bool validate(tx_desc *d)
{
	for (const read_entry &r : d->rs) {
		uint64_t w = g_locks[r.stripe].load(std::memory_order_acquire);
		if (w & 1) {
			/* Ours: it was at a version <= rv when we took it,
			 * and reads of it were validated then (see write). */
			if (owner_of(w) != d)
				return false;
		} else if ((w >> 1) != r.version) {
			return false;
		}
	}
	return true;
}

/* Move the snapshot to the clock, and at least to `seen`, a stripe
 * version newer than rv.  Commits do not move the clock (take_wv), so a
 * version may be the clock + 1: the clock is raised to it first, which
 * makes every commit that took that wv one that read the clock (and so
 * held all its locks) before our validation below. */
bool extend(tx_desc *d, uint64_t seen)
{
	uint64_t now = g_clock.load(std::memory_order_acquire);
	if (now < seen) {
		clock_at_least(seen);
		now = seen;
	}
	if (!validate(d))
		return false;
	d->rv = now;
	return true;
}

/* Politeness only: commits check g_serial themselves (see take_wv). */
void enter(tx_desc *d)
{
	for (tx_desc *s; (s = g_serial.load(std::memory_order_relaxed)) && s != d;)
		sched_yield();
}

/* Another thread is irrevocable: every other transaction must abort
 * rather than commit, and the irrevocable one waits instead of aborting. */
bool serial_other(tx_desc *d)
{
	tx_desc *s = g_serial.load();
	return s && s != d;
}

/* Eight lock words share a cache line: the lines written are counted
 * as runs of stripes in one line (a range's stripes are consecutive). */
void release_locks(tx_desc *d, uint64_t wv)
{
	uint64_t line = ~0ull;
	for (const lock_entry &l : d->locks) {
		g_locks[l.stripe].store(wv ? wv << 1 : l.word,
					std::memory_order_release);
		tl_shared_lines += (l.stripe >> 3) != line;
		line = l.stripe >> 3;
	}
	d->locks.clear();
}

void restore_undo(tx_desc *d)
{
	for (size_t i = d->undo.size(); i-- > 0;) {
		const undo_entry &u = d->undo[i];
		memcpy(scm::wr(u.addr), d->undo_bytes.data() + u.off, u.len);
	}
}

void clear(tx_desc *d)
{
	if (d->strict_npages)
		strict_close_pages(d);
	if (d->rv > d->seen)
		d->seen = d->rv;
	d->ws.clear();
	d->rs.clear();
	d->undo.clear();
	d->undo_bytes.clear();
	d->allocs.clear();
	d->frees.clear();
	d->hops.clear();
	d->fence_first = false;
	d->on_commit.clear();
	d->on_undo.clear();
	d->pool = nullptr;
	d->pool_lo = d->pool_hi = 0;
}

void leave(tx_desc *d)
{
	if (d->irrevocable) {
		d->irrevocable = false;
		g_serial.store(nullptr);
	}
}

} // namespace

[[noreturn]] void fatal(int err)
{
	fprintf(stderr, "libmnemo: transaction failed inside "
		"__transaction_atomic, which cannot report errors: %s (%s)\n",
		mnemo_errormsg(), strerror(-err));
	abort();
}

namespace {

/* Where the durable writes of [a, a+n) go: 1 durable, 0 volatile, or a
 * negative code.  pre: [a, a+n) within one stripe. */
int classify(tx_desc *d, uintptr_t a)
{
	if (a - d->pool_lo < d->pool_hi - d->pool_lo)
		return 1;
	mnemo_pool *p = d->hint_pool;
	if (a - d->hint_lo >= d->hint_hi - d->hint_lo ||
	    d->hint_gen != scm::windows_gen()) {
		/* The generation first: a change during the lookup makes
		 * the next check fail. */
		uint64_t gen = scm::windows_gen();
		uintptr_t lo, hi;
		if (!(p = scm::owner_of(a, &lo, &hi)))
			return 0;
		d->hint_pool = p;
		d->hint_lo = lo;
		d->hint_hi = hi;
		d->hint_gen = gen;
	}
	int rc = heap_pool(d, p);
	return rc ? rc : 1;
}

/* The address a transaction names a byte by: the window address of an
 * alias (mnemo_region_alias).  Addresses in the transaction's pool are
 * never aliases, so they skip the lookup. */
inline uintptr_t canon_of(const tx_desc *d, uintptr_t a)
{
	return a - d->pool_lo < d->pool_hi - d->pool_lo ? a : scm::canon(a);
}

/* Take the stripe of a for writing.  0, or -EAGAIN on conflict. */
int lock_stripe(tx_desc *d, uintptr_t a)
{
	size_t s = stripe_of(a);
	std::atomic<uint64_t> &l = g_locks[s];
	uint64_t w = l.load(std::memory_order_acquire);
	if (owner_of(w) == d)
		return 0;
	for (;;) {
		if ((w & 1) && d->irrevocable) { /* the owner will abort */
			sched_yield();
			w = l.load(std::memory_order_acquire);
			continue;
		}
		if (w & 1) {
			contend(d, s, w);
			return -EAGAIN;
		}
		/* A newer version than the snapshot: any reads of this
		 * stripe must still be valid, which extend() checks. */
		if ((w >> 1) > d->rv && !extend(d, w >> 1))
			return -EAGAIN;
		tl_atomics++;
		if (l.compare_exchange_weak(w, (uint64_t)d | 1,
					    std::memory_order_acq_rel))
			break;
	}
	d->locks.push_back({(uint32_t)s, w});
	return 0;
}

} // namespace

/* One lock per stripe of the block (a block of 16 MiB or more covers them
 * all), about 13 ns each: a small block's free costs little, a 64 KiB one
 * 256 locks and a 1 MiB one 4096 (estimated ~3 us and ~50 us). */
int lock_block(tx_desc *d, const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(kStripe - 1);
	size_t k = n ? ((uintptr_t)p + n - 1 - a) / kStripe + 1 : 0;
	k = k < kStripes ? k : kStripes;
	for (size_t i = 0; i < k; i++) {
		int rc = lock_stripe(d, a + i * kStripe);
		if (rc)
			return rc;
	}
	return 0;
}

namespace {

/* Split [a, a+n) at multiples of unit (kChunk: pieces in one write-set
 * chunk; kStripe: in one stripe, one check of its lock for up to four
 * chunks), calling f(piece address, offset in the range, length). */
template <size_t unit, class F> int each_piece(uintptr_t a, size_t n, F &&f)
{
	for (size_t done = 0; done < n;) {
		uintptr_t p = a + done;
		size_t k = unit - (p & (unit - 1));
		k = k < n - done ? k : n - done;
		int rc = f(p, done, k);
		if (rc)
			return rc;
		done += k;
	}
	return 0;
}

/* Copy [a, a+n) (in one chunk) of a stripe we hold into dst: memory is
 * stable; overlay the bytes we wrote. */
void read_own_chunk(tx_desc *d, uintptr_t a, char *dst, size_t n)
{
	const wentry *e = d->ws.find(a & ~(kChunk - 1));
	size_t off = a & (kChunk - 1);
	uint64_t want = byte_mask(off, n);
	if (e && (e->mask & want) == want) {
		copy_small(dst, e->val + off, n);
		return;
	}
	copy_small(dst, (const void *)a, n);
	if (e)
		for (size_t b = 0; b < n; b++)
			if (e->mask >> (off + b) & 1)
				dst[b] = e->val[off + b];
}

/* Copy [a, a+n) (in one stripe) into dst, consistent at rv.  A stripe we
 * hold is stable; otherwise the version is checked before and after, once
 * for up to a whole stripe (4 chunks). */
int read_piece(tx_desc *d, uintptr_t a, char *dst, size_t n)
{
	size_t s = stripe_of(a);
	std::atomic<uint64_t> &l = g_locks[s];
	for (;;) {
		uint64_t w1 = l.load(std::memory_order_acquire);
		if (owner_of(w1) == d)
			break;
		if ((w1 & 1) && d->irrevocable) {
			sched_yield();
			continue;
		}
		if (w1 & 1) {
			contend(d, s, w1);
			return -EAGAIN;
		}
		if (n <= kChunk)
			copy_small(dst, (const void *)a, n);
		else
			memcpy(dst, (const void *)a, n);
		std::atomic_thread_fence(std::memory_order_acquire);
		if (l.load(std::memory_order_relaxed) != w1)
			continue;
		/* Newer than the snapshot: move the snapshot, then check the
		 * stripe again.  A commit that wrote it after the copy with a
		 * wv <= the new rv took its lock before extend() read the
		 * clock, so the word has changed; without this check the stale
		 * copy would enter rs as valid at rv, and a later write of the
		 * stripe (validate() trusts stripes we hold) would commit an
		 * update lost. */
		if ((w1 >> 1) > d->rv) {
			if (!extend(d, w1 >> 1))
				return -EAGAIN;
			if (l.load(std::memory_order_acquire) != w1)
				continue;
		}
		if (d->rs.empty() || d->rs.back().stripe != s)
			d->rs.push_back({(uint32_t)s, w1 >> 1});
		return 0;
	}
	return each_piece<kChunk>(a, n, [&](uintptr_t p, size_t off, size_t k) {
		read_own_chunk(d, p, dst + off, k); /* ours: chunk by chunk */
		return 0;
	});
}

/* Buffer [a, a+n) (in one chunk of a stripe d holds) in the write set. */
void buffer(tx_desc *d, uintptr_t a, const char *src, size_t n, bool dur)
{
	wentry *e = d->ws.insert(a & ~(kChunk - 1), dur);
	if (e->mask == 0) /* commit writes the line back: fetch it now */
		__builtin_prefetch((const void *)e->addr, 1, 3);
	size_t off = a & (kChunk - 1);
	copy_small(e->val + off, src, n);
	e->mask |= byte_mask(off, n);
}

/* [a, a+n) within one stripe (canonical): one classification and one
 * lock, then chunk by chunk into the write set: a partial head, whole
 * chunks (the inside of every large store), a partial tail. */
int write_stripe(tx_desc *d, uintptr_t a, const char *src, size_t n)
{
	int dur = classify(d, a);
	if (dur < 0)
		return dur;
	int rc = lock_stripe(d, a);
	if (rc)
		return rc;
	size_t head = (kChunk - (a & (kChunk - 1))) & (kChunk - 1);
	head = head < n ? head : n;
	if (head)
		buffer(d, a, src, head, dur);
	size_t done = head;
	for (; n - done >= kChunk; done += kChunk) { /* whole chunks: a
						    * 64-byte move, a full mask */
		wentry *e = d->ws.insert(a + done, dur);
		if (e->mask == 0)
			__builtin_prefetch((const void *)e->addr, 1, 3);
		__builtin_memcpy(e->val, src + done, kChunk);
		e->mask = kFullMask;
	}
	if (done < n)
		buffer(d, a + done, src + done, n - done, dur);
	return 0;
}

/* [a, a+n) across stripes: stripe by stripe (an alias maps whole pages,
 * so a stripe's chunks share their translation). */
int write_range(tx_desc *d, uintptr_t a, const char *src, size_t n)
{
	return each_piece<kStripe>(a, n, [&](uintptr_t p, size_t off, size_t k) {
		return write_stripe(d, canon_of(d, p), src + off, k);
	});
}

int check_active(tx_desc *d, const char *what)
{
	if (d->depth == 0)
		return fail(EINVAL, "%s: no transaction is active", what);
	return d->status;
}

/* ---- commit ---- */

/* f(offset, length) for each maximal run of written bytes of e, found a
 * run at a time (count of trailing zeros and ones), not a bit at a time. */
template <class F> void each_run(const wentry &e, F &&f)
{
	uint64_t m = e.mask;
	if (m == kFullMask) { /* the inside of every large write */
		f(0, kChunk);
		return;
	}
	while (m) {
		unsigned b = (unsigned)__builtin_ctzll(m);
		uint64_t ones = ~(m >> b); /* zeros where the run is */
		unsigned k = ones ? (unsigned)__builtin_ctzll(ones) : 64 - b;
		f(b, k);
		if (b + k >= 64)
			return;
		m &= ~0ull << (b + k); /* runs above this one */
	}
}

struct run {
	uint64_t addr = 0, len = 0;
	size_t hdr = 0; /* index of the entry header in rec */
};

void append_bytes(tx_desc *d, run *r, uint64_t addr, const void *src, size_t n)
{
	word_buf &rec = d->rec;
	if (r->len == 0 || addr != r->addr + r->len ||
	    r->len + n > layout::kTxRunMax) {
		r->addr = addr;
		r->len = 0;
		r->hdr = rec.size();
		rec.push_back(0);
		d->ranges.push_back({(const void *)addr, 0});
	}
	size_t need = r->hdr + 1 + (r->len + n + 7) / 8;
	if (rec.size() < need) {
		/* The words in between are all data; the last one's padding
		 * is zeroed (records are deterministic). */
		rec.grow(need - rec.size());
		rec[need - 1] = 0;
	}
	copy_small((char *)&rec[r->hdr + 1] + r->len, src, n);
	r->len += n;
	rec[r->hdr] = r->addr | r->len << 48;
	d->ranges.back().n = r->len;
}

/* Whether e, fully written, continues run r word-aligned: its bytes are
 * then the next kChunk / 8 words of the record. */
inline bool extends_run(const run &r, const wentry &e)
{
	return e.mask == kFullMask && r.len && e.addr == r.addr + r.len &&
	       r.len % 8 == 0 && r.len + kChunk <= layout::kTxRunMax;
}

/* The redo record of the durable writes, entries sorted by address, and
 * d->ranges, the record's entries in order (note_record's list). */
int build_record(tx_desc *d, uint64_t wv)
{
	/* Entries stay where they are (the index points at them); a vector
	 * of pointers is sorted instead, and usually already is. */
	std::vector<const wentry *> &v = d->sorted;
	v.clear();
	for (const wentry &e : d->ws.entries())
		if (e.durable)
			v.push_back(&e);
	auto by_addr = [](const wentry *x, const wentry *y) {
		return x->addr < y->addr;
	};
	if (!std::is_sorted(v.begin(), v.end(), by_addr))
		std::sort(v.begin(), v.end(), by_addr);
	d->rec.clear();
	d->rec.push_back(wv);
	d->ranges.clear();
	run r;
	for (const wentry *e : v) {
		if (extends_run(r, *e)) { /* the inside of a large write */
			__builtin_memcpy(d->rec.grow(kChunk / 8), e->val, kChunk);
			r.len += kChunk;
			d->rec[r.hdr] = r.addr | r.len << 48;
			d->ranges.back().n = r.len;
			continue;
		}
		each_run(*e, [&](size_t b, size_t k) {
			append_bytes(d, &r, e->addr + b, e->val + b, k);
		});
	}
	for (const scm::piece &x : d->ranges)
		if (!writable(d->pool, (uintptr_t)x.p, x.n))
			return fail(EINVAL, "a transaction wrote to libmnemo's "
				    "own metadata in pool %s",
				    d->pool->path.c_str());
	for (const bit_op &o : d->hops) {
		uint64_t kind = o.set ? layout::kTxHeapSet : layout::kTxHeapClear;
		const void *word = hooks()->word(o);
		d->rec.push_back((uint64_t)word | kind << 48);
		d->rec.push_back(1ull << (o.bit % 64));
		d->ranges.push_back({word, 8});
	}
	return 0;
}

/* Write back in place.  The durable lines are not flushed here: the
 * truncation pass flushes them in bulk before it retires the records
 * (txlog.cc), and the record stays replayable until then.  Flushing here
 * would put a clwb in flight before the next locked instruction, which
 * then waits for it: a second fence per transaction in all but name. */
void write_back(tx_desc *d, uint64_t wv)
{
	for (const wentry &e : d->ws.entries()) {
		char *to = scm::wr((char *)e.addr); /* strict: the mirror */
		each_run(e, [&](size_t b, size_t k) {
			copy_small(to + b, e.val + b, k);
		});
	}
	for (const bit_op &o : d->hops)
		hooks()->apply(o, wv);
}

/*
 * wv = the clock + 1, read with every lock held; the clock does not move
 * (GV5 of TL2), so commits of different threads write no common line.
 * Several commits may take the same wv; they write disjoint stripes: a
 * commit locks a stripe whose version is above its rv only after raising
 * the clock to that version (extend), so its wv is larger.  busy is
 * published (seq_cst: a locked xchg, on our own line) before the clock is
 * read, as watermark() requires; a guess from an earlier read, raised
 * below if the clock moved since (a larger busy is still <= wv).
 */
uint64_t take_wv(tx_desc *d)
{
	uint64_t guess = g_clock.load(std::memory_order_relaxed) + 1;
	d->busy.store(guess);
	tl_atomics++;
	uint64_t wv = g_clock.load() + 1;
	if (wv != guess)
		d->busy.store(wv, std::memory_order_relaxed);
	return wv;
}

} // namespace

__thread tx_desc *tl_desc __attribute__((tls_model("initial-exec")));
__thread uint64_t tl_atomics __attribute__((tls_model("initial-exec")));
__thread uint64_t tl_shared_lines __attribute__((tls_model("initial-exec")));

static void discard(tx_desc *d, int err);

namespace {

/*
 * A descriptor lives until its thread exits: a pthread key's destructor
 * frees it (rolling back a transaction left open, so that its stripe
 * locks are released).  Not a thread_local object: C++ thread_local
 * destructors run before pthread-key destructors and atexit handlers,
 * which may still commit; a key destructor runs after them, and glibc runs
 * it again if a later destructor made a new descriptor (self_create sets
 * the key again).  The main thread's descriptor is never freed (the
 * process ends).
 */
pthread_key_t g_desc_key;
bool g_desc_key_ok;
pthread_once_t g_desc_once = PTHREAD_ONCE_INIT;

void desc_free(void *p)
{
	auto *d = (tx_desc *)p;
	if (d->depth > 0)
		discard(d, 0);
	tl_desc = nullptr;
	desc_unregister(d);
	delete d;
}

void make_desc_key()
{
	/* Without a key (none left) descriptors are never freed: a leak per
	 * thread, not an error. */
	g_desc_key_ok = pthread_key_create(&g_desc_key, desc_free) == 0;
}

} // namespace

tx_desc *self_create()
{
	tx_desc *d = new tx_desc;
	d->seed = (uint64_t)(uintptr_t)d * 0x9e3779b97f4a7c15ull | 1;
	/* First: what follows may allocate (pthread_setspecific does for
	 * high keys), and under the interposer that may come back here. */
	tl_desc = d;
	desc_register(d);
	pthread_once(&g_desc_once, make_desc_key);
	if (g_desc_key_ok)
		pthread_setspecific(g_desc_key, d);
	return d;
}

int begin(tx_desc *d, mode m, std::jmp_buf *jb)
{
	if (d->depth > 0) {
		if (d->status) /* failed: the caller will not commit this level */
			return d->status;
		d->depth++;
		return 0;
	}
	d->depth = 1;
	d->m = m;
	d->jb = jb;
	d->status = 0;
	enter(d);
	d->rv = d->seen ? d->seen : g_clock.load(std::memory_order_acquire);
	return 0;
}

/* Release the transaction's locks and buffers; depth drops to 0 (plain
 * mode keeps it and remembers `err` in status instead). */
static void discard(tx_desc *d, int err)
{
	restore_undo(d);
	release_locks(d, 0);
	for (void *p : d->allocs)
		free(p);
	for (const bit_op &o : d->hops)
		hooks()->unreserve(o);
	for (size_t i = d->on_undo.size(); i-- > 0;)
		d->on_undo[i].fn(d->on_undo[i].arg);
	clear(d);
	if (d->m == mode::plain && err) {
		d->status = err; /* depth kept: later calls fail with err */
	} else {
		d->depth = 0;
		d->status = 0;
	}
	leave(d);
}

namespace {

constexpr unsigned kMaxWaits = 100000; /* yields for one lock, at most */

/* After a conflict, with the attempt rolled back (no locks held): wait
 * until the lock that stopped it changes hands, then back off.  Waiting
 * holding locks would livelock two threads that each hold what the other
 * needs; a waiter holds none, so every owner it waits for can finish. */
void note_conflict(tx_desc *d)
{
	d->aborts++;
	d->retries++;
	if (d->contended_word) {
		/* Bounded: an owner that never lets go (a thread stopped in
		 * a debugger, say) costs a waiter time, never progress. */
		std::atomic<uint64_t> &l = g_locks[d->contended];
		for (unsigned i = 0; i < kMaxWaits; i++) {
			if (l.load(std::memory_order_relaxed) !=
			    d->contended_word)
				break;
			sched_yield();
		}
		d->contended_word = 0;
	}
	backoff(d);
}

/* Frame and itm modes: roll back, then leave the block with err (frame)
 * or go back to _ITM_beginTransaction to run again or skip (itm). */
[[noreturn]] void unwind(tx_desc *d, int err)
{
	std::jmp_buf *jb = d->jb;
	discard(d, 0);
	if (err == -EAGAIN)
		note_conflict(d);
	if (d->m == mode::frame) {
		d->jumped = true;
		d->jump_err = err;
		longjmp(*jb, 1);
	}
	if (err == -ECANCELED)
		itm_cancel(d);
	if (err != -EAGAIN)
		fatal(err);
	itm_retry(d);
}

} // namespace

int retake_wv(tx_desc *d)
{
	uint64_t wv = clock_step() + 1;
	d->busy.store(wv); /* raised: watermarks that read the old one are
			    * below both */
	if (serial_other(d) || !validate(d))
		return -EAGAIN;
	d->rec[0] = wv;
	return 0;
}

int fail_tx(tx_desc *d, int err)
{
	if (d->m != mode::plain)
		unwind(d, err);
	if (d->status == 0) {
		discard(d, err);
		if (err == -EAGAIN)
			note_conflict(d);
	}
	return err;
}

void user_abort(tx_desc *d)
{
	if (d->depth == 0)
		return;
	if (d->m != mode::plain)
		unwind(d, -ECANCELED);
	discard(d, 0);
}

int commit(tx_desc *d)
{
	int rc = check_active(d, "mnemo_tx_commit");
	if (d->depth == 0)
		return rc;
	if (d->depth > 1) {
		d->depth--;
		return rc;
	}
	if (rc) { /* plain mode, already rolled back by discard() */
		clear(d); /* _ITM_addUser*Action may have run since */
		d->depth = 0;
		d->status = 0;
		return rc;
	}
	if (!d->ws.empty() || !d->hops.empty()) {
		uint64_t wv = take_wv(d);
		/* Always validated: commits that took wv meanwhile left the
		 * clock where it was. */
		if (serial_other(d) || !validate(d))
			rc = -EAGAIN;
		if (rc == 0 && d->pool && (rc = build_record(d, wv)) == 0)
			rc = log_commit(d);
		/* A record that did not fit may have taken a larger one. */
		wv = d->busy.load(std::memory_order_relaxed);
		if (rc) {
			d->busy.store(kIdle);
			discard(d, 0); /* the caller decides what next */
			if (rc == -EAGAIN)
				note_conflict(d);
			return rc;
		}
		write_back(d, wv);
		release_locks(d, wv);
		d->seen = wv - 1; /* the clock once read it */
		d->busy.store(kIdle, std::memory_order_release);
		if (d->pool)
			log_done(d);
		if (d->pool && d->pool->dev->strict())
			check_refs(d); /* reports; the commit stands */
	}
	for (void *p : d->frees)
		free(p);
	auto actions = std::move(d->on_commit);
	d->commits++;
	d->retries = 0;
	clear(d);
	d->depth = 0;
	leave(d);
	for (const tx_desc::action &a : actions)
		a.fn(a.arg);
	return 0;
}

/* read_piece's commonest case, inline: [at, at+n) in one chunk of a
 * stripe nobody holds, at a version within the snapshot.  True if read
 * (and noted in rs); false leaves nothing done.  In a chain walk the next
 * address is this read's value, and every instruction between a value's
 * arrival (often after a mispredicted branch on it) and the next load of
 * data is on the walk's critical path. */
[[gnu::always_inline]] inline bool read_fast(tx_desc *d, uintptr_t at,
					     void *dst, size_t n)
{
	uintptr_t a = canon_of(d, at);
	size_t s = stripe_of(a);
	std::atomic<uint64_t> &l = g_locks[s];
	uint64_t w1 = l.load(std::memory_order_acquire);
	if ((w1 & 1) || (w1 >> 1) > d->rv)
		return false;
	copy_small(dst, (const void *)a, n);
	std::atomic_thread_fence(std::memory_order_acquire);
	if (l.load(std::memory_order_relaxed) != w1)
		return false;
	if (d->rs.empty() || d->rs.back().stripe != s)
		d->rs.push_back({(uint32_t)s, w1 >> 1});
	return true;
}

/* load(), inlined into each caller: the value forms get it with a
 * constant n (a plain move of N bytes, no call before the data). */
[[gnu::always_inline]] inline int load_inline(tx_desc *d, void *dst,
					      const void *src, size_t n)
{
	if (d->depth == 0) { /* outside a transaction: a plain read */
		memcpy(dst, src, n);
		return 0;
	}
	if (d->status || n == 0)
		return d->status;
	uintptr_t at = (uintptr_t)src;
	if ((at & (kChunk - 1)) + n <= kChunk) { /* one chunk: most reads */
		if (read_fast(d, at, dst, n))
			return 0;
		int rc = read_piece(d, canon_of(d, at), (char *)dst, n);
		return rc ? fail_tx(d, rc) : 0;
	}
	int rc = each_piece<kStripe>(at, n, [&](uintptr_t a, size_t off,
						size_t k) {
		return read_piece(d, canon_of(d, a), (char *)dst + off, k);
	});
	return rc ? fail_tx(d, rc) : 0;
}

int load(tx_desc *d, void *dst, const void *src, size_t n)
{
	return load_inline(d, dst, src, n);
}

template <size_t N> int load_value(tx_desc *d, void *dst, const void *src)
{
	return load_inline(d, dst, src, N);
}
template int load_value<1>(tx_desc *, void *, const void *);
template int load_value<2>(tx_desc *, void *, const void *);
template int load_value<4>(tx_desc *, void *, const void *);
template int load_value<8>(tx_desc *, void *, const void *);

int store(tx_desc *d, void *dst, const void *src, size_t n)
{
	int rc = check_active(d, "mnemo_tx_store");
	if (rc || n == 0) /* nothing to lock, log or write */
		return rc;
	if (dst < src ? (const char *)dst + n > src
		      : (const char *)src + n > dst) {
		/* Overlap: stage the source first (memmove semantics). */
		std::vector<char> tmp(n);
		rc = load(d, tmp.data(), src, n);
		return rc ? rc : store(d, dst, tmp.data(), n);
	}
	uintptr_t at = (uintptr_t)dst;
	if ((at & (kStripe - 1)) + n <= kStripe) /* one stripe */
		rc = write_stripe(d, canon_of(d, at), (const char *)src, n);
	else
		rc = write_range(d, at, (const char *)src, n);
	return rc ? fail_tx(d, rc) : 0;
}

int set(tx_desc *d, void *dst, int c, size_t n)
{
	char buf[256];
	memset(buf, c, n < sizeof(buf) ? n : sizeof(buf));
	for (size_t done = 0; done < n;) {
		size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
		int rc = store(d, (char *)dst + done, buf, k);
		if (rc)
			return rc;
		done += k;
	}
	return 0;
}

int heap_pool(tx_desc *d, mnemo_pool *p)
{
	if (d->pool == p)
		return 0;
	if (d->pool)
		return fail(EXDEV, "a transaction wrote to pools %s and %s; "
			    "its durable writes must stay in one pool",
			    d->pool->path.c_str(), p->path.c_str());
	d->pool = p;
	d->pool_lo = (uintptr_t)p->base;
	d->pool_hi = d->pool_lo + p->max; /* the window */
	return 0;
}

int go_irrevocable(tx_desc *d)
{
	if (d->irrevocable)
		return 0;
	if (d->status) /* rolled back already (plain mode): stay so */
		return d->status;
	tx_desc *none = nullptr;
	if (!g_serial.compare_exchange_strong(none, d))
		return fail_tx(d, -EAGAIN);
	/* Commits that took a wv before g_serial was set finish; later ones
	 * see it and abort.  Then nothing can change what we read. */
	wait_others_idle(d);
	/* Those commits took wvs up to the clock + 1: the snapshot covers
	 * them all. */
	if (!extend(d, g_clock.load() + 1)) {
		g_serial.store(nullptr);
		return fail_tx(d, -EAGAIN);
	}
	d->irrevocable = true;
	return 0;
}

void *tx_malloc(tx_desc *d, size_t n)
{
	if (d->depth && d->status) { /* rolled back: no more effects */
		errno = -d->status;
		return nullptr;
	}
	void *p = malloc(n);
	if (p && d->depth)
		d->allocs.push_back(p);
	return p;
}

void tx_free(tx_desc *d, void *p)
{
	if (!p)
		return;
	if (!d->depth) {
		free(p);
		return;
	}
	if (!d->status)
		d->frees.push_back(p);
}

void log_undo(tx_desc *d, const void *p, size_t n)
{
	size_t off = d->undo_bytes.size();
	d->undo_bytes.resize(off + n);
	memcpy(d->undo_bytes.data() + off, p, n);
	d->undo.push_back({(void *)p, n, off});
}

} // namespace mnemo::tx
