/*
 * heap.h -- the persistent heap: pmalloc and friends (format in layout.h,
 * "The persistent heap").
 *
 * Durable state is one allocation bit per block plus one desc word per page;
 * everything else is volatile and rebuilt at open.  Per 64 KiB page the
 * volatile side keeps bitmaps shaped like the durable one:
 *   vfree  block may be handed out (set by free, cleared by allocation);
 *          only the page's owner writes it (plain loads and stores)
 *   xfree  freed by another thread: the owner moves these into vfree
 *   vpend  a transaction has freed the block and not yet finished
 *   vheld  a transaction holds the block: reserved, or freed at commit
 *          and waiting for truncation (small blocks only).
 * Block states (durable bit, vfree or xfree, vpend, vheld):
 *   free           0 1 0 0
 *   allocated      1 0 0 0
 *   tx-reserved    0 0 0 1  allocated by a running transaction
 *   tx-freeing     1 0 1 0  freed by a running transaction
 *   deferred       0 0 0 1  freed by a committed transaction whose record
 *                           is still replayable; reused after truncation
 *                           (by then that commit has moved the block's
 *                           stripe versions: tx::lock_block, opacity)
 * The durable words, xfree, vpend and vheld change by atomic
 * read-modify-write (any thread may free); vfree by its owner alone.
 *
 * Under a volatile map (heap::vmap, layout.h) the durable bits of small
 * pages are only a hint while the pool is open (alloc.cc, owner_mark): a
 * small block is allocated iff none of vfree, xfree, vheld has its bit
 * (live_word()), so the fast paths take no atomic; detach() writes the
 * exact bits from that.  Large blocks keep their durable bit (atomics, no
 * flush).  Free pages' bits are zero in both modes.
 *
 * Locking: heap::mu guards segments, free pages, abandoned pages, deferred
 * frees and the thread-heap list; it is taken before mnemo_pool::mu
 * (segment creation) and the transaction state's mutex (tx::protect,
 * tx::reserve_log), and never while a transaction log mutex is held.
 */
#ifndef MNEMO_HEAP_HEAP_H
#define MNEMO_HEAP_HEAP_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "layout.h"
#include "tx/stm.h"

struct mnemo_pool;

namespace mnemo::heap {

struct theap;
struct segment;

inline constexpr unsigned kW = layout::kHeapBitmapWords;
inline constexpr uint64_t kMapLeaf = 4096; /* pages per page-map leaf */
inline constexpr uint16_t kFree = 0, kLarge = 0xff, kCont = 0xfe;

struct vpage {
	std::atomic<uint64_t> *bits = nullptr; /* durable bitmap (SCM) */
	uint64_t *page_desc = nullptr;         /* durable page descriptor */
	char *start = nullptr;                 /* first byte of the page */
	segment *seg = nullptr;
	vpage *head = nullptr;  /* kCont: the large block's first page */
	uint64_t bsize = 0;     /* block size (large: span bytes) */
	uint32_t cap = 0;       /* blocks in the page (large: 1) */
	/* small: ceil(2^32 / bsize), so (off * rcp) >> 32 == off / bsize for
	 * every off < kHeapPage (the error rcp * bsize - 2^32 < bsize <= 2^15
	 * times off < 2^16 stays below 2^32); large: 0 */
	uint32_t rcp = 0;
	uint32_t span = 0;      /* large: pages */
	uint16_t cls = kFree;   /* kFree, 1..kHeapClasses, kLarge, kCont */
	/* Small pages: the thread heap that allocates from it.  A page the
	 * owner found full is parked (full = true, in no list); the free
	 * that clears `full` pushes it onto the owner's `returned` stack. */
	std::atomic<theap *> owner{nullptr};
	std::atomic<bool> full{false};
	vpage *rnext = nullptr;
	uint32_t cursor = 0; /* owner's scan position (bitmap word) */
	std::atomic<uint64_t> vfree[kW];
	std::atomic<uint64_t> xfree[kW];
	std::atomic<uint64_t> vpend[kW];
	std::atomic<uint64_t> vheld[kW];
};

struct heap;

struct segment {
	heap *h;
	unsigned index;
	char *start; /* S */
	uint64_t npages, hdr_pages;
	layout::heap_seg *hdr;
	std::vector<vpage> pages;
	std::vector<uint64_t> freemap; /* bit i: page i is free */
};

/* A block freed by a committed transaction, reusable once the pool's
 * transaction floor reaches wv. */
struct deferred {
	vpage *pg;
	unsigned bit;
	uint64_t wv;
};

struct heap {
	mnemo_pool *pool;
	uint64_t id; /* unique in the process, never reused */
	std::mutex mu;
	std::vector<segment *> segs;
	std::vector<vpage *> abandoned[layout::kHeapClasses + 1];
	std::vector<deferred> defer;
	std::atomic<size_t> ndefer{0};
	std::vector<theap *> theaps; /* all of them, for destroy() */
	std::vector<theap *> spares; /* left by exited threads */
	/* page map: (addr >> 16) - base_page -> vpage, two levels */
	uint64_t base_page = 0;
	std::vector<vpage **> map;
	uint64_t max_bytes = 0, bytes = 0; /* segment bytes: limit, now */
	uint64_t reclaimed_blocks = 0, reclaimed_bytes = 0, recovery_ns = 0;
	bool collected = false; /* the collection ran at the last open */
	/* Volatile allocation map (layout.h, kHeapOpenVolatile): outside
	 * transactions, allocation and free flush and fence nothing. */
	bool vmap = false;
};

/* One thread's allocation state in one heap.  Only its thread touches it
 * (a spare: nobody, or a thread stealing under heap::mu), but `returned`. */
struct theap {
	heap *h;
	vpage *cur[layout::kHeapClasses + 1] = {};
	/* owned, not parked full, not cur */
	std::vector<vpage *> avail[layout::kHeapClasses + 1];
	std::atomic<vpage *> returned{nullptr};
};

/* ---- segment.cc ---- */
/* Called by tx::pool_attach before replay: the library-owned parts of the
 * heap's regions (segment headers), through add(lo, hi). */
void protected_ranges(mnemo_pool *p, void (*add)(void *, uint64_t, uint64_t),
		      void *arg);
/* Whether addr is an allocation-bitmap word of a heap segment of p (a heap
 * entry of a transaction record may name it). */
bool bitmap_word_ok(mnemo_pool *p, uint64_t addr);
/* Pool open, after replay: load the heap, collect leaks if the last
 * process crashed (and MNEMO_HEAP_GC allows; always after a crash under a
 * volatile map), mark the heap open. */
int attach(mnemo_pool *p);
/* Pool close, after the transaction logs are drained. */
void detach(mnemo_pool *p);
/* A new segment with room for `need` bytes of pages.  pre: h->mu held. */
int grow(heap *h, uint64_t need);
/* The page holding addr, or nullptr. */
inline vpage *page_of(const heap *h, uintptr_t addr)
{
	uint64_t i = (addr >> 16) - h->base_page;
	if (i >= h->map.size() * kMapLeaf)
		return nullptr;
	vpage **leaf = h->map[i / kMapLeaf];
	return leaf ? leaf[i % kMapLeaf] : nullptr;
}
/* A small page of class cls: cls, bsize, cap, rcp. */
void set_small(vpage *pg, unsigned cls);
/* Persist a page's new desc (kind, cls, span).  pre: h->mu held. */
void format_page(vpage *pg, uint64_t kind, unsigned cls, uint32_t span);
void set_free_page(segment *s, uint64_t i, bool is_free);
/* The volatile bitmaps of a page from its durable bits. */
void build_volatile(vpage *pg);
void destroy(heap *h);

/* Bitmap words that name blocks of pg. */
inline unsigned nwords(const vpage *pg) { return (pg->cap + 63) / 64; }

/* Bits of bitmap word w that name blocks of pg (cap blocks). */
inline uint64_t cap_mask(const vpage *pg, unsigned w)
{
	unsigned lo = w * 64;
	return pg->cap <= lo ? 0
	       : pg->cap - lo >= 64 ? ~0ull
				    : (1ull << (pg->cap - lo)) - 1;
}

/* Whether pg's durable bits are only a hint while the pool is open: a
 * small page of heap h under a volatile map (see vpage). */
inline bool bits_hint(const heap *h, const vpage *pg)
{
	return h->vmap && pg->cls != kLarge;
}

/* Allocated blocks among those bitmap word w names (see vpage). */
inline uint64_t live_word(const vpage *pg, unsigned w)
{
	constexpr auto r = std::memory_order_acquire;
	if (!bits_hint(pg->seg->h, pg))
		return pg->bits[w].load(r);
	return cap_mask(pg, w) & ~(pg->vfree[w].load(r) | pg->xfree[w].load(r) |
				   pg->vheld[w].load(r));
}

/* ---- alloc.cc ---- */

/* What a new block holds before it is durably allocated. */
struct fill {
	bool zero;       /* all zero */
	const void *src; /* or the first n bytes from src (a transactional
			  * read inside a transaction) */
	size_t n;
	bool notx = false; /* outside any transaction of the thread */
};
/* The class of size, 0 if larger than kHeapSmallMax (layout.h gives the
 * class sizes). */
inline unsigned class_of(size_t n)
{
	if (n <= 128)
		return n <= 16 ? 1 : (unsigned)((n + 15) / 16);
	if (n > layout::kHeapSmallMax)
		return 0;
	unsigned lg = 63 - (unsigned)__builtin_clzll(n - 1);
	uint64_t base = 1ull << lg; /* base < n <= 2 base */
	unsigned q = (unsigned)((n - 1 - base) / (base / 4));
	return 9 + (lg - 7) * 4 + q;
}
/* The first byte of block `bit` of a small page (of a large block: bit 0). */
inline char *block_at(const vpage *pg, uint64_t bit)
{
	return pg->start + bit * pg->bsize;
}
theap *thread_heap(heap *h);
/* The heap of the open pool whose window holds addr, or nullptr. */
heap *heap_of(uintptr_t addr);
/* Allocate: reserve a block (volatile), then prepare it and make it
 * allocated durably.  align is a power of two. */
void *alloc(heap *h, size_t size, size_t align, const fill &f);
/* alloc(h, size, 0, {notx}) without its general cases: a small block
 * outside a transaction under the volatile map is reserved and marked in
 * the hint only; anything else goes to alloc(). */
void *alloc_plain(heap *h, size_t size, bool notx);
/* 0, or -EINVAL with a message (foreign, interior or free block). */
/* notx: at once, even inside a transaction of the calling thread. */
int free_block(void *p, bool notx = false);
/* Usable size of an allocated block; 0 and -EINVAL in *err (with a
 * message naming `who`) for anything else. */
size_t usable_size(const void *p, const char *who, int *err);
/* Return deferred blocks whose transactions are truncated. */
void release_deferred(heap *h);
void heap_register(heap *h);
void heap_unregister(heap *h);

/* ---- transactions (alloc.cc) ---- */
/* What a transaction calls back for the heap bits it changes; api/pool.cc
 * installs it (tx::set_bit_hooks) before the first pool is attached. */
extern const tx::bit_hooks kTxHooks;

/* ---- gc.cc ---- */
/* Mark from the roots, free what is allocated and unreachable.  rebuild:
 * the bits mean nothing (a crash under a volatile map): every block the
 * descs name is a candidate, and the bits become exactly the marks. */
void collect(heap *h, bool rebuild);

/* The block holding a (start, size), or false (a free page, a header);
 * plain reads only: the SIGSEGV handler of strict mode calls it. */
bool block_span(const heap *h, uintptr_t a, uintptr_t *start,
		uint64_t *size);

/* ---- check.cc ---- */
/* One problem check() found: a heap page and what is wrong with it. */
struct problem {
	unsigned segment;
	uint64_t page;   /* in its segment */
	uint64_t offset; /* of the page, in the pool file */
	const char *what;
};
using check_fn = void (*)(const problem &p, void *arg);
/* Check every page (check.cc); fn gets each problem; the count. */
int check(heap *h, check_fn fn, void *arg);

} // namespace mnemo::heap

#endif
