/*
 * alloc.cc -- allocation and free: thread heaps, size-class pages, large
 * blocks, and the transactional forms (block states in heap.h).
 *
 * Fast path of a small allocation outside a transaction: one scan of the
 * current page's vfree bitmap, then under the volatile map (the default) a
 * plain store of the hint bit (owner_mark); under the durable map
 * (MNEMO_HEAP_GC=off) an atomic or on the durable bit, one flush and one
 * fence.  A free: under the volatile map, plain loads and stores by the
 * page's owner, or one atomic or on xfree from another thread; under the
 * durable map an atomic and on the durable bit and one flush (no fence:
 * layout.h says why), then the same as the volatile map's.
 */
#include <cerrno>
#include <cstring>
#include <pthread.h>

#include "base/error.h"
#include "heap/heap.h"
#include "pool/pool.h"
#include "scm/scm.h"
#include "tx/stm.h"
#include "tx/txlog.h"

namespace mnemo::heap {
namespace {

using layout::kHeapPage;
constexpr auto kRel = std::memory_order_release;
constexpr auto kAcq = std::memory_order_acquire;
constexpr auto kRlx = std::memory_order_relaxed;

/* Live heaps, by id: thread exit hands thread heaps back to them, and
 * thread_heap() forgets dead ones.  (An address finds its heap through
 * its pool: scm::owner_of.)  g_epoch changes whenever one goes, which
 * invalidates every thread's fast-path cache. */
std::mutex g_mu;
std::vector<heap *> g_heaps;
std::atomic<uint64_t> g_epoch{1};

struct tl_fast {
	uint64_t id, epoch;
	uintptr_t lo, hi;
	heap *h;
	theap *t;
	/* The page of h that locate() found last, and its first byte: a
	 * page's address never moves to another vpage while h lives, so
	 * the epoch check covers it too. */
	vpage *pg;
	uintptr_t pg_base;
};
__attribute__((tls_model("initial-exec"))) thread_local tl_fast tl_f;

/* Every thread heap of this thread, handed to spares at thread exit (a
 * pthread key: C++ thread_local destructors run before key destructors). */
struct tl_list {
	std::vector<std::pair<uint64_t, theap *>> v;
};
thread_local tl_list *tl_l;
pthread_key_t g_key;
pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

void thread_exit(void *arg)
{
	auto *l = (tl_list *)arg;
	{
		std::lock_guard<std::mutex> g(g_mu);
		for (auto &[id, t] : l->v)
			for (heap *h : g_heaps)
				if (h->id == id) {
					std::lock_guard<std::mutex> hg(h->mu);
					h->spares.push_back(t);
				}
	}
	tl_f = tl_fast{};
	tl_l = nullptr;
	delete l;
}

void make_key() { pthread_key_create(&g_key, thread_exit); }

uint64_t bit_mask(unsigned bit) { return 1ull << (bit % 64); }

std::atomic<uint64_t> &durable_word(vpage *pg, unsigned bit)
{
	return pg->bits[bit / 64];
}

/* thread_heap() and heap_of() from this thread's cache, when it holds. */
[[gnu::always_inline]] inline theap *cached_theap(heap *h)
{
	if (tl_f.id == h->id && tl_f.epoch == g_epoch.load(kAcq))
		return tl_f.t;
	return thread_heap(h);
}

[[gnu::always_inline]] inline heap *cached_heap_of(uintptr_t a)
{
	if (tl_f.h && tl_f.epoch == g_epoch.load(kAcq) &&
	    a - tl_f.lo < tl_f.hi - tl_f.lo)
		return tl_f.h;
	return heap_of(a);
}

/* ---- small pages ---- */

/* Under a volatile map the owner keeps a small page's durable bits as a
 * hint with plain stores (no flush, no atomic): after a process crash
 * they tell the rebuild what the process had allocated, hence what it
 * reclaimed.  Racing atomic updates from transactions may be lost; only
 * that count depends on them (heap.h). */
inline void owner_mark(vpage *pg, unsigned bit, bool set)
{
	std::atomic<uint64_t> &w = pg->bits[bit / 64];
	uint64_t v = w.load(kRlx), m = 1ull << (bit % 64);
	w.store(set ? v | m : v & ~m, kRlx);
}

[[gnu::always_inline]] inline int scan_bit(vpage *pg)
{
	unsigned nw = nwords(pg);
	for (unsigned k = 0; k < nw; k++) {
		unsigned w = pg->cursor + k < nw ? pg->cursor + k
						 : pg->cursor + k - nw;
		uint64_t v = pg->vfree[w].load(kRlx);
		if (v) {
			unsigned b = (unsigned)__builtin_ctzll(v);
			pg->vfree[w].store(v & (v - 1), kRlx);
			pg->cursor = w;
			return (int)(w * 64 + b);
		}
	}
	return -1;
}

/* Owner: take the blocks other threads freed; false if there were none. */
bool merge_remote(vpage *pg)
{
	bool any = false;
	for (unsigned w = 0; w < nwords(pg); w++)
		if (pg->xfree[w].load(kRlx)) {
			uint64_t x = pg->xfree[w].exchange(0, kAcq);
			pg->vfree[w].store(pg->vfree[w].load(kRlx) | x, kRlx);
			if (pg->seg->h->vmap)
				pg->bits[w].store(pg->bits[w].load(kRlx) & ~x,
						  kRlx);
			any = true;
		}
	return any;
}

/* Owner: reserve a free block of pg, or -1. */
int take_bit(vpage *pg)
{
	int b = scan_bit(pg);
	if (b < 0 && merge_remote(pg))
		b = scan_bit(pg);
	return b;
}

bool any_free(const vpage *pg)
{
	for (unsigned w = 0; w < nwords(pg); w++)
		if (pg->vfree[w].load(kAcq) | pg->xfree[w].load(kAcq))
			return true;
	return false;
}

bool all_free(const vpage *pg)
{
	for (unsigned w = 0; w < kW; w++) {
		if ((pg->vfree[w].load(kAcq) | pg->xfree[w].load(kAcq)) !=
			    cap_mask(pg, w) ||
		    pg->vpend[w].load(kAcq))
			return false;
	}
	return true;
}

void push_returned(vpage *pg)
{
	theap *o = pg->owner.load(kAcq);
	vpage *head = o->returned.load(kRlx);
	do
		pg->rnext = head;
	while (!o->returned.compare_exchange_weak(head, pg, kRel, kRlx));
}

/* Park a page its owner found full; false if it has a free block after
 * all (a free raced with the scan) and stays with the owner. */
bool park(vpage *pg)
{
	pg->full.store(true);
	if (any_free(pg) && pg->full.exchange(false))
		return false;
	return true; /* a free that clears `full` hands it back */
}

/* Whether the calling thread owns pg (its cached thread heap does). */
bool mine(const vpage *pg)
{
	return tl_f.t && pg->owner.load(kRlx) == tl_f.t &&
	       tl_f.epoch == g_epoch.load(kRlx);
}

/* A free into a parked page hands it back to its owner. */
inline void unpark(vpage *pg)
{
	if (pg->full.load(kRlx) && pg->full.exchange(false))
		push_returned(pg);
}

/* A small block becomes allocatable again. */
void give_back(vpage *pg, unsigned bit)
{
	std::atomic<uint64_t> &w = pg->vfree[bit / 64];
	if (mine(pg))
		w.store(w.load(kRlx) | bit_mask(bit), kRlx);
	else
		pg->xfree[bit / 64].fetch_or(bit_mask(bit), kRel);
	unpark(pg);
}

/* Free a small block under a volatile map (heap.h): false if it is not
 * allocated.  The owner takes no atomic; a concurrent double free of one
 * block by two threads may go unnoticed (the check and the store are not
 * one step), a sequential one never does. */
bool vmap_free(vpage *pg, unsigned bit)
{
	unsigned w = bit / 64;
	uint64_t m = bit_mask(bit);
	if (pg->vheld[w].load(kAcq) & m)
		return false;
	if (mine(pg)) {
		uint64_t v = pg->vfree[w].load(kRlx);
		if ((v | pg->xfree[w].load(kRlx)) & m)
			return false;
		pg->vfree[w].store(v | m, kRlx);
		owner_mark(pg, bit, false);
	} else if ((pg->vfree[w].load(kRlx) & m) ||
		   (pg->xfree[w].fetch_or(m, kRel) & m)) {
		return false;
	}
	unpark(pg);
	return true;
}

/* An empty page goes back to its segment.  Its cleared bits are made
 * durable first: another thread may format it at once (layout.h order).
 * pre: h->mu held, pg owned by nobody else and all_free(pg). */
void retire(vpage *pg)
{
	if (pg->seg->h->vmap) /* not kept while open: free pages have none */
		for (unsigned w = 0; w < nwords(pg); w++)
			pg->bits[w].store(0, kRlx);
	scm::persist((const void *)pg->bits, nwords(pg) * 8);
	pg->owner.store(nullptr, kRlx);
	pg->cls = kFree;
	pg->cap = 0;
	build_volatile(pg);
	set_free_page(pg->seg, (uint64_t)(pg - pg->seg->pages.data()), true);
}

/* Move pages handed back by frees into the owner's lists. */
void drain_returned(theap *t)
{
	vpage *pg = t->returned.exchange(nullptr, kAcq);
	while (pg) {
		vpage *next = pg->rnext;
		unsigned c = pg->cls;
		if (all_free(pg) && (t->cur[c] || !t->avail[c].empty())) {
			std::lock_guard<std::mutex> g(t->h->mu);
			retire(pg);
		} else {
			t->avail[c].push_back(pg);
		}
		pg = next;
	}
}

void release_span(vpage *head);

/* pre: h->mu held */
void release_deferred_locked(heap *h)
{
	uint64_t floor = tx::floor_of(h->pool);
	size_t k = 0;
	for (const deferred &d : h->defer) {
		if (d.wv > floor) {
			h->defer[k++] = d;
			continue;
		}
		if (d.pg->cls == kLarge) {
			release_span(d.pg);
		} else {
			d.pg->vheld[d.bit / 64].fetch_and(~bit_mask(d.bit), kRel);
			give_back(d.pg, d.bit);
		}
	}
	h->defer.resize(k);
	h->ndefer.store(k, kRlx);
}

/* Take every page of the spare thread heaps (threads that exited). */
void steal_spares(theap *t)
{
	heap *h = t->h;
	for (theap *s : h->spares) {
		if (s == t)
			continue;
		auto move = [&](vpage *pg) {
			pg->owner.store(t, kRel);
			t->avail[pg->cls].push_back(pg);
		};
		for (unsigned c = 1; c <= layout::kHeapClasses; c++) {
			if (s->cur[c])
				move(s->cur[c]);
			s->cur[c] = nullptr;
			for (vpage *pg : s->avail[c])
				move(pg);
			s->avail[c].clear();
		}
		for (vpage *pg = s->returned.exchange(nullptr, kAcq); pg;) {
			vpage *next = pg->rnext;
			move(pg);
			pg = next;
		}
	}
}

/* First page index of a run of n free pages in s, or 0 (page 0 is always
 * a header page). */
uint64_t find_run(const segment *s, uint64_t n)
{
	uint64_t run = 0;
	for (uint64_t i = s->hdr_pages; i < s->npages; i++) {
		if (!(s->freemap[i / 64] >> (i % 64) & 1)) {
			run = 0;
			if (!s->freemap[i / 64])
				i |= 63;
			continue;
		}
		if (++run == n)
			return i + 1 - n;
	}
	return 0;
}

/* Make room for n more pages: reuse deferred frees (truncating the logs
 * if needed), then grow.  pre: g (on h->mu) held. */
int make_room(heap *h, std::unique_lock<std::mutex> &g, uint64_t n,
	      bool *drained)
{
	if (h->ndefer.load(kRlx) && !*drained) {
		*drained = true;
		g.unlock();
		int rc = tx::drain(h->pool);
		g.lock();
		release_deferred_locked(h);
		if (rc == 0)
			return 0;
	}
	return grow(h, n * kHeapPage);
}

/* A run of n free pages (formatted by the caller).  pre: g held. */
vpage *take_pages(heap *h, std::unique_lock<std::mutex> &g, uint64_t n)
{
	bool drained = false;
	if (h->ndefer.load(kRlx))
		release_deferred_locked(h);
	for (;;) {
		for (segment *s : h->segs) {
			uint64_t i = find_run(s, n);
			if (!i)
				continue;
			for (uint64_t k = 0; k < n; k++)
				set_free_page(s, i + k, false);
			return &s->pages[i];
		}
		if (make_room(h, g, n, &drained))
			return nullptr;
	}
}

vpage *new_page(theap *t, unsigned c)
{
	heap *h = t->h;
	std::unique_lock<std::mutex> g(h->mu);
	if (!h->spares.empty()) {
		steal_spares(t);
		if (!t->avail[c].empty()) {
			vpage *pg = t->avail[c].back();
			t->avail[c].pop_back();
			return pg;
		}
	}
	vpage *pg = take_pages(h, g, 1);
	if (!pg)
		return nullptr;
	set_small(pg, c);
	pg->cursor = 0;
	pg->full.store(false);
	format_page(pg, layout::kHeapSmall, c, 0);
	build_volatile(pg); /* every block free */
	pg->owner.store(t, kRel);
	return pg;
}

/* reserve_small() once the current page has no free block. */
vpage *reserve_small_slow(theap *t, unsigned c, int *bit)
{
	vpage *pg = t->cur[c];
	if (pg && (*bit = take_bit(pg)) >= 0)
		return pg;
	for (;;) {
		if (pg && park(pg))
			t->cur[c] = pg = nullptr;
		if (!pg) {
			drain_returned(t);
			if (!t->avail[c].empty()) {
				pg = t->avail[c].back();
				t->avail[c].pop_back();
			} else if (!(pg = new_page(t, c))) {
				return nullptr;
			}
			t->cur[c] = pg;
		}
		if ((*bit = take_bit(pg)) >= 0)
			return pg;
	}
}

vpage *reserve_large(heap *h, size_t size)
{
	uint64_t n = (size + kHeapPage - 1) / kHeapPage;
	std::unique_lock<std::mutex> g(h->mu);
	vpage *pg = take_pages(h, g, n);
	if (!pg)
		return nullptr;
	pg->cls = kLarge;
	pg->span = (uint32_t)n;
	pg->bsize = n * kHeapPage;
	pg->cap = 1;
	pg->rcp = 0;
	for (uint64_t k = 1; k < n; k++) {
		pg[k].cls = kCont;
		pg[k].head = pg;
	}
	format_page(pg, layout::kHeapLarge, 0, (uint32_t)n);
	build_volatile(pg);
	return pg;
}

/* Its pages become free.  Under a volatile map, a large desc lies only on
 * a live head (layout.h): zero it, with the cleared bit (exact at the next
 * clean open), before any of the pages gets another desc.  (First fit
 * hands out the head page first, which overwrites the desc anyway; this
 * keeps the invariant whatever the page order.)
 * pre: the heap's mu held */
void release_span(vpage *head)
{
	segment *s = head->seg;
	if (s->h->vmap) {
		scm::store64(head->page_desc, 0);
		scm::flush(head->page_desc, 8);
		scm::persist((const void *)head->bits, 8);
	}
	uint64_t i = (uint64_t)(head - s->pages.data());
	for (uint64_t k = 0; k < head->span; k++) {
		vpage &pg = s->pages[i + k];
		pg.cls = kFree;
		pg.head = nullptr;
		set_free_page(s, i + k, true);
	}
	head->span = 0;
	head->cap = 0;
}

/* Undo a reservation that never became durable. */
void unreserve(vpage *pg, unsigned bit)
{
	if (pg->cls == kLarge) {
		std::lock_guard<std::mutex> g(pg->seg->h->mu);
		release_span(pg);
	} else {
		give_back(pg, bit);
	}
}

/* Reserve a block of class c: the page and the bit, or nullptr. */
[[gnu::always_inline]] inline vpage *reserve_small(theap *t, unsigned c,
						   int *bit)
{
	vpage *pg = t->cur[c];
	if (pg && (*bit = scan_bit(pg)) >= 0)
		return pg;
	return reserve_small_slow(t, c, bit);
}

/* Smallest class whose blocks hold size bytes at an `align` boundary
 * (pages start 64 KiB-aligned, so block k starts at k * block size). */
unsigned class_for(size_t size, size_t align)
{
	for (unsigned c = class_of(size); c && c <= layout::kHeapClasses; c++)
		if (layout::heap_class_size(c) % align == 0)
			return c;
	return 0;
}

/* The index of pg's block that starts at a (a in pg's 64 KiB); false if
 * no block starts there.  Small pages and large heads (rcp 0: bit 0). */
[[gnu::always_inline]] inline bool block_index(const vpage *pg, uintptr_t a,
					       uint64_t *bit)
{
	uint64_t off = (uint64_t)(a - (uintptr_t)pg->start); /* < 64 KiB */
	*bit = off * pg->rcp >> 32;
	return *bit * pg->bsize == off && *bit < pg->cap;
}

/* A block in the heap: its page (the head for large ones) and bit, or a
 * negative code with a message. */
[[gnu::always_inline]] inline int locate(const void *p, heap **hp,
					 vpage **pgp, unsigned *bitp,
					 const char *who)
{
	uintptr_t a = (uintptr_t)p;
	heap *h;
	vpage *pg;
	if (tl_f.pg && a - tl_f.pg_base < kHeapPage &&
	    tl_f.epoch == g_epoch.load(kAcq)) { /* frees cluster by page */
		h = tl_f.h;
		pg = tl_f.pg;
	} else {
		h = cached_heap_of(a);
		pg = h ? page_of(h, a) : nullptr;
		if (pg && h == tl_f.h) {
			tl_f.pg = pg;
			tl_f.pg_base = a & ~(uintptr_t)(kHeapPage - 1);
		}
	}
	if (!pg)
		return fail(EINVAL, "%s(%p): not a block of a persistent "
			    "heap of an open pool", who, p);
	if (pg->cls == kFree || pg->cls == kCont)
		return fail(EINVAL, "%s(%p): %s", who, p,
			    pg->cls == kFree ? "not allocated (double free?)"
					     : "points inside a large block");
	uint64_t bit;
	if (!block_index(pg, (uintptr_t)p, &bit))
		return fail(EINVAL, "%s(%p): points inside a block of %llu "
			    "bytes", who, p, (unsigned long long)pg->bsize);
	*hp = h;
	*pgp = pg;
	*bitp = (unsigned)bit;
	return 0;
}

int not_allocated(const void *p, const char *who)
{
	return fail(EINVAL, "%s(%p): the block is not allocated (double "
		    "free?)", who, p);
}

/* pfree inside a transaction: the durable bit clears at commit. */
int tx_free(tx::tx_desc *d, heap *h, vpage *pg, unsigned bit, const void *p)
{
	if (d->status)
		return 0; /* rolled back: no more effects */
	for (size_t i = 0; i < d->hops.size(); i++) {
		tx::bit_op &o = d->hops[i];
		if (o.page == pg && o.bit == bit && o.set) {
			o.set = false; /* ours: it never becomes durable */
			o.fresh = true;
			return 0;
		}
		if (o.page == pg && o.bit == bit && o.fresh)
			return not_allocated(p, "pfree");
	}
	uint64_t m = bit_mask(bit);
	if (!(live_word(pg, bit / 64) & m) ||
	    (pg->vpend[bit / 64].fetch_or(m, kAcq) & m))
		return not_allocated(p, "pfree");
	int rc = tx::heap_pool(d, h->pool);
	if (rc) {
		pg->vpend[bit / 64].fetch_and(~m, kRel);
		return tx::fail_tx(d, rc);
	}
	d->hops.push_back(tx::bit_op{pg, bit, false, false});
	/* The block's stripes, for opacity: see tx::lock_block.  (A block
	 * this transaction allocated, above, was never visible to others.)
	 * On conflict the rollback unreserves the op just pushed. */
	rc = tx::lock_block(d, block_at(pg, bit), pg->bsize);
	return rc ? tx::fail_tx(d, rc) : 0;
}

} // namespace

/* ---- interface ---- */

void heap_register(heap *h)
{
	std::lock_guard<std::mutex> g(g_mu);
	g_heaps.push_back(h);
}

void heap_unregister(heap *h)
{
	std::lock_guard<std::mutex> g(g_mu);
	for (size_t i = 0; i < g_heaps.size(); i++)
		if (g_heaps[i] == h)
			g_heaps.erase(g_heaps.begin() + (long)i);
	g_epoch.fetch_add(1);
}

theap *thread_heap(heap *h)
{
	if (tl_f.id == h->id && tl_f.epoch == g_epoch.load(kAcq))
		return tl_f.t;
	pthread_once(&g_key_once, make_key);
	if (!tl_l) {
		tl_l = new tl_list;
		pthread_setspecific(g_key, tl_l);
	}
	theap *t = nullptr;
	{
		std::lock_guard<std::mutex> g(g_mu); /* forget dead heaps */
		auto &v = tl_l->v;
		for (size_t i = 0; i < v.size();) {
			bool live = false;
			for (heap *o : g_heaps)
				live |= o->id == v[i].first;
			if (live && v[i].first == h->id)
				t = v[i].second;
			if (live)
				i++;
			else
				v.erase(v.begin() + (long)i);
		}
	}
	if (!t) {
		std::lock_guard<std::mutex> g(h->mu);
		if (!h->spares.empty()) {
			t = h->spares.back();
			h->spares.pop_back();
		} else {
			t = new theap;
			t->h = h;
			h->theaps.push_back(t);
		}
		tl_l->v.push_back({h->id, t});
	}
	uintptr_t lo = (uintptr_t)h->pool->base;
	tl_f = tl_fast{h->id, g_epoch.load(kAcq), lo, lo + h->pool->max,
		       h, t, nullptr, 0};
	return t;
}

heap *heap_of(uintptr_t a)
{
	if (tl_f.h && tl_f.epoch == g_epoch.load(kAcq) &&
	    a - tl_f.lo < tl_f.hi - tl_f.lo)
		return tl_f.h;
	uintptr_t lo, hi;
	mnemo_pool *p = scm::owner_of(a, &lo, &hi);
	return p ? p->heap : nullptr;
}

void *alloc(heap *h, size_t size, size_t align, const fill &f)
{
	/* A non-transactional allocation never touches the thread's
	 * descriptor (the interposer allocates from inside libc and
	 * libstdc++ while a transaction may be open or being torn down). */
	tx::tx_desc *d = f.notx ? nullptr : tx::self_if();
	int depth = d ? d->depth : 0;
	if (depth && d->status) { /* rolled back: no more effects */
		errno = -d->status;
		return nullptr;
	}
	if (align > kHeapPage || size > (1ull << 47)) {
		fail(EINVAL, "pmalloc: cannot allocate %zu bytes aligned to "
		     "%zu (alignment up to %llu)", size, align,
		     (unsigned long long)kHeapPage);
		errno = EINVAL;
		return nullptr;
	}
	if (size == 0)
		size = 1;
	unsigned c = align <= 16 ? class_of(size) : class_for(size, align);
	int bit = 0;
	vpage *pg = c ? reserve_small(cached_theap(h), c, &bit)
		      : reserve_large(h, size);
	if (!pg) {
		errno = ENOMEM;
		return nullptr;
	}
	char *p = block_at(pg, (uint64_t)bit);
	if (depth) {
		int rc = tx::heap_pool(d, h->pool);
		if (rc) {
			unreserve(pg, (unsigned)bit);
			errno = -tx::fail_tx(d, rc);
			return nullptr;
		}
		d->hops.push_back(tx::bit_op{pg, (unsigned)bit, true, false});
		if (pg->cls != kLarge)
			pg->vheld[bit / 64].fetch_or(bit_mask((unsigned)bit),
						     kRel);
	}
	/* The contents first: the fence below (or, in a transaction, the
	 * one the commit makes before its record) orders these flushes
	 * before the block is durably allocated. */
	if (f.zero)
		memset(scm::wr(p), 0, size);
	if (f.src && depth) {
		if (tx::load(d, scm::wr(p), f.src, f.n)) { /* rolled back */
			errno = -d->status;
			return nullptr;
		}
	} else if (f.src) {
		memcpy(scm::wr(p), f.src, f.n);
	}
	if (f.zero || f.src)
		scm::flush(p, f.zero ? size : f.n);
	if (depth) /* its contents durable before the record (stm.h) */
		d->fence_first = true;
	if (!depth && bits_hint(h, pg)) {
		owner_mark(pg, (unsigned)bit, true);
	} else if (!depth) {
		std::atomic<uint64_t> &w = durable_word(pg, (unsigned)bit);
		w.fetch_or(bit_mask((unsigned)bit), kRel);
		if (!h->vmap) {
			scm::flush_later(&w); /* one flush with a free's */
			scm::fence();
		}
	}
	return p;
}

namespace {

/* Whether the calling thread has a transaction open (notx: ignore it). */
[[gnu::always_inline]] inline bool in_tx(bool notx)
{
	if (notx)
		return false;
	tx::tx_desc *d = tx::self_if();
	return d && d->depth;
}

[[gnu::noinline]] void *alloc_plain_slow(heap *h, size_t size, bool notx)
{
	unsigned c = class_of(size);
	if (!c || !h->vmap || in_tx(notx))
		return alloc(h, size, 0, fill{false, nullptr, 0, notx});
	int bit = 0;
	vpage *pg = reserve_small(cached_theap(h), c, &bit);
	if (!pg) {
		errno = ENOMEM;
		return nullptr;
	}
	owner_mark(pg, (unsigned)bit, true);
	return block_at(pg, (uint64_t)bit);
}

} // namespace

/* Fast path: the volatile map, the thread's cached heap, a free block in
 * the cursor word of the class's current page (scan_bit's first look). */
void *alloc_plain(heap *h, size_t size, bool notx)
{
	unsigned c = class_of(size);
	if (c && h->vmap && tl_f.id == h->id &&
	    tl_f.epoch == g_epoch.load(kAcq) && !in_tx(notx)) {
		vpage *pg = tl_f.t->cur[c];
		unsigned w = pg ? pg->cursor : 0;
		uint64_t v = pg ? pg->vfree[w].load(kRlx) : 0;
		if (v) {
			pg->vfree[w].store(v & (v - 1), kRlx);
			unsigned bit = w * 64 + (unsigned)__builtin_ctzll(v);
			owner_mark(pg, bit, true);
			return block_at(pg, bit);
		}
	}
	return alloc_plain_slow(h, size, notx);
}

namespace {

/* free_block()'s common case in one pass, without a call: a small block
 * of the page this thread freed into last (tl_f.pg), which it owns and
 * has not parked, under the volatile map, outside a transaction, with no
 * committed record live (settle() has nothing to do), allocated and not
 * held by a transaction.  False: the general path decides (and reports
 * errors). */
[[gnu::always_inline]] inline bool free_owned(void *p, bool notx)
{
	uintptr_t a = (uintptr_t)p;
	vpage *pg = tl_f.pg;
	if (!pg || a - tl_f.pg_base >= kHeapPage ||
	    tl_f.epoch != g_epoch.load(kAcq) || !tl_f.h->vmap ||
	    pg->owner.load(kRlx) != tl_f.t || in_tx(notx))
		return false; /* an owned page is a small one (new_page) */
	uint64_t bit;
	if (!block_index(pg, a, &bit))
		return false;
	unsigned w = (unsigned)(bit / 64);
	uint64_t m = bit_mask((unsigned)bit), v = pg->vfree[w].load(kRlx);
	if ((v | pg->xfree[w].load(kRlx) | pg->vpend[w].load(kAcq) |
	     pg->vheld[w].load(kAcq)) & m ||
	    pg->full.load(kRlx) || !tx::settled(tl_f.h->pool))
		return false;
	pg->vfree[w].store(v | m, kRlx);
	owner_mark(pg, (unsigned)bit, false);
	return true;
}

/* free_block() outside free_owned()'s case. */
[[gnu::noinline]] int free_general(void *p, bool notx)
{
	heap *h = nullptr;
	vpage *pg = nullptr;
	unsigned bit = 0;
	int rc = locate(p, &h, &pg, &bit, "pfree");
	if (rc)
		return rc;
	tx::tx_desc *d = notx ? nullptr : tx::self_if();
	if (d && d->depth)
		return tx_free(d, h, pg, bit, p);
	uint64_t m = bit_mask(bit);
	if (pg->vpend[bit / 64].load(kAcq) & m)
		return fail(EINVAL, "pfree(%p): a transaction is freeing the "
			    "block (double free)", p);
	/* Replayable records must be retired first: one that allocated the
	 * block would allocate it again after this free (or, once the page
	 * is reformatted, another block), and one that wrote into it would
	 * write into its next owner's data.  Free of cost while no
	 * transaction has committed since the last truncation. */
	tx::settle(h->pool);
	if (bits_hint(h, pg))
		return vmap_free(pg, bit) ? 0 : not_allocated(p, "pfree");
	std::atomic<uint64_t> &w = durable_word(pg, bit);
	if (!(w.fetch_and(~m, std::memory_order_acq_rel) & m))
		return not_allocated(p, "pfree");
	if (!h->vmap)
		scm::flush_later(&w); /* durable at this thread's next fence */
	if (pg->cls == kLarge) { /* its pages may be reused at once */
		if (!h->vmap)
			scm::fence();
		std::lock_guard<std::mutex> g(h->mu);
		release_span(pg);
	} else {
		give_back(pg, bit);
	}
	return 0;
}

} // namespace

int free_block(void *p, bool notx)
{
	return free_owned(p, notx) ? 0 : free_general(p, notx);
}

size_t usable_size(const void *p, const char *who, int *err)
{
	heap *h = nullptr;
	vpage *pg = nullptr;
	unsigned bit = 0;
	*err = locate(p, &h, &pg, &bit, who);
	if (*err == 0 && !(live_word(pg, bit / 64) & bit_mask(bit)))
		*err = not_allocated(p, who);
	return *err ? 0 : pg->bsize;
}

void release_deferred(heap *h)
{
	std::lock_guard<std::mutex> g(h->mu);
	release_deferred_locked(h);
}

/* ---- transactions: the hooks tx calls (tx/stm.h, bit_hooks) ---- */

namespace {

uint64_t *hop_word(const tx::bit_op &o)
{
	vpage *pg = (vpage *)o.page;
	return (uint64_t *)&durable_word(pg, o.bit);
}

void tx_unreserve(const tx::bit_op &o)
{
	vpage *pg = (vpage *)o.page;
	uint64_t m = bit_mask(o.bit);
	if (o.set || o.fresh) {
		if (pg->cls != kLarge)
			pg->vheld[o.bit / 64].fetch_and(~m, kRel);
		unreserve(pg, o.bit);
	} else {
		pg->vpend[o.bit / 64].fetch_and(~m, kRel);
	}
}

/* A transactional free at commit; false if a racing plain free of the
 * same block (a double free) took it first. */
bool apply_free(const tx::bit_op &o)
{
	vpage *pg = (vpage *)o.page;
	unsigned w = o.bit / 64;
	uint64_t m = bit_mask(o.bit);
	bool ok;
	if (bits_hint(pg->seg->h, pg)) {
		ok = !((pg->vfree[w].load(kAcq) | pg->xfree[w].load(kAcq)) &
		       m);
		if (ok) { /* deferred: held before vpend lets go */
			pg->vheld[w].fetch_or(m, kRel);
			durable_word(pg, o.bit).fetch_and(~m, kRel);
		}
	} else {
		ok = durable_word(pg, o.bit).fetch_and(~m, kRel) & m;
		if (ok && pg->cls != kLarge)
			pg->vheld[w].fetch_or(m, kRel);
	}
	pg->vpend[w].fetch_and(~m, kRel);
	return ok;
}

void tx_apply(const tx::bit_op &o, uint64_t wv)
{
	vpage *pg = (vpage *)o.page;
	if (o.set) {
		uint64_t m = bit_mask(o.bit);
		durable_word(pg, o.bit).fetch_or(m, kRel);
		if (pg->cls != kLarge)
			pg->vheld[o.bit / 64].fetch_and(~m, kRel);
		return;
	}
	if (!o.fresh && !apply_free(o))
		return;
	heap *h = pg->seg->h;
	std::lock_guard<std::mutex> g(h->mu);
	h->defer.push_back(deferred{pg, o.bit, wv});
	h->ndefer.store(h->defer.size(), kRlx);
}

} // namespace

const tx::bit_hooks kTxHooks = {
	hop_word, tx_apply, tx_unreserve, bitmap_word_ok, protected_ranges,
};

} // namespace mnemo::heap
