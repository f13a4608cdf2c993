/*
 * segment.cc -- heap segments: finding them at open, checking and loading
 * their durable state, growing the heap, and the address -> page map.
 */
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/config.h"
#include "base/error.h"
#include "heap/heap.h"
#include "mnemosyne.h"
#include "pool/pool.h"
#include "scm/scm.h"
#include "tx/txlog.h"

namespace mnemo::heap {
namespace {

using layout::kHeapPage;

constexpr uint64_t kSegMin = 4ull << 20;   /* first segment */
constexpr uint64_t kSegMax = 1ull << 30;   /* growth step cap */
constexpr unsigned kMaxSegs = 64;          /* see tx pool_state::own */

std::atomic<uint64_t> g_next_id{1};

struct geometry {
	char *start;
	uint64_t npages, hdr_pages;
};

/* A heap region's segment geometry; false if it holds no data page. */
bool geometry_of(char *addr, uint64_t size, geometry *g)
{
	uintptr_t s = ((uintptr_t)addr + kHeapPage - 1) & ~(kHeapPage - 1);
	uintptr_t end = (uintptr_t)addr + size;
	if (s >= end)
		return false;
	g->start = (char *)s;
	g->npages = (end - s) / kHeapPage;
	g->hdr_pages = layout::heap_hdr_pages(g->npages);
	return g->hdr_pages < g->npages;
}

/* Segment index of a region name, or -1 if it is not a heap segment. */
long seg_index(const char *name)
{
	size_t n = sizeof(layout::kHeapPrefix) - 1;
	if (strncmp(name, layout::kHeapPrefix, n) != 0 || !name[n])
		return -1;
	char *end;
	unsigned long v = strtoul(name + n, &end, 10);
	return *end || v >= kMaxSegs ? -1 : (long)v;
}

/* f(index, addr, size) for every heap region of p. */
template <class F> void each_region(mnemo_pool *p, F &&f)
{
	for (const mnemo_pool::extent &e : p->extents) {
		long i = seg_index(p->regions()[e.slot].name);
		if (i >= 0)
			f((unsigned)i, p->base + e.offset, e.size);
	}
}

int corrupt(heap *h, const segment *s, uint64_t page, const char *why)
{
	uint64_t at = (uint64_t)(s->start - h->pool->base) +
		      page * layout::kHeapPage;
	return fail(EUCLEAN, "pool %s: heap segment %u, page %llu (offset "
		    "%#llx): %s", h->pool->path.c_str(), s->index,
		    (unsigned long long)page, (unsigned long long)at, why);
}

/* No durable bit from from_bit on is set. */
bool bits_zero(const vpage &pg, unsigned from_bit)
{
	for (unsigned w = from_bit / 64; w < kW; w++) {
		uint64_t b = pg.bits[w].load(std::memory_order_relaxed);
		if (w == from_bit / 64)
			b &= ~0ull << (from_bit % 64);
		if (b)
			return false;
	}
	return true;
}

void map_set(heap *h, const vpage *pg, vpage *v)
{
	uint64_t i = ((uintptr_t)pg->start >> 16) - h->base_page;
	vpage **&leaf = h->map[i / kMapLeaf];
	if (!leaf)
		leaf = (vpage **)calloc(kMapLeaf, sizeof(vpage *));
	leaf[i % kMapLeaf] = v;
}

void set_large(segment *s, uint64_t i, uint64_t span)
{
	vpage &pg = s->pages[i];
	pg.cls = kLarge;
	pg.span = (uint32_t)span;
	pg.bsize = span * kHeapPage;
	pg.cap = 1;
	pg.rcp = 0;
	for (uint64_t k = 1; k < span; k++) {
		s->pages[i + k].cls = kCont;
		s->pages[i + k].head = &pg;
	}
}

bool small_desc(uint64_t d)
{
	unsigned cls = (unsigned)(d >> 8 & 0xff);
	return d == (layout::kHeapSmall | (uint64_t)cls << 8) && cls >= 1 &&
	       cls <= layout::kHeapClasses;
}

/* The span of a large desc that fits the segment from page i, or 0. */
uint64_t large_span(const segment *s, uint64_t i, uint64_t d)
{
	uint64_t span = d >> 32;
	return (d & 0xffffffffull) == layout::kHeapLarge && span &&
			       span <= s->npages - i
		       ? span
		       : 0;
}

/* The durable kind of page i (small or large block, or free). */
int load_page(heap *h, segment *s, uint64_t i, uint64_t *next)
{
	vpage &pg = s->pages[i];
	uint64_t d = *pg.page_desc;
	*next = i + 1;
	if (bits_zero(pg, 0))
		return 0;
	if (small_desc(d)) {
		set_small(&pg, (unsigned)(d >> 8 & 0xff));
		return bits_zero(pg, pg.cap)
			       ? 0
			       : corrupt(h, s, i, "bits set past the last block");
	}
	uint64_t span = large_span(s, i, d);
	if (!span)
		return corrupt(h, s, i, "allocated blocks under an invalid "
			       "page descriptor");
	if (!bits_zero(pg, 1))
		return corrupt(h, s, i, "a large block with extra bits set");
	set_large(s, i, span);
	*next = i + span;
	return 0;
}

/* Page i from its desc alone, the bits meaning nothing (a crash under a
 * volatile map, layout.h): the blocks it names are candidates for the
 * rebuilding collection. */
int load_page_desc(heap *h, segment *s, uint64_t i, uint64_t *next)
{
	uint64_t d = *s->pages[i].page_desc, span = large_span(s, i, d);
	*next = i + 1;
	if (d == 0)
		return 0;
	if (small_desc(d)) {
		set_small(&s->pages[i], (unsigned)(d >> 8 & 0xff));
		return 0;
	}
	if (!span)
		return corrupt(h, s, i, "an invalid page descriptor");
	set_large(s, i, span);
	*next = i + span;
	return 0;
}

segment *new_segment(heap *h, unsigned index, const geometry &g)
{
	auto *s = new segment;
	s->h = h;
	s->index = index;
	s->start = g.start;
	s->npages = g.npages;
	s->hdr_pages = g.hdr_pages;
	s->hdr = (layout::heap_seg *)g.start;
	s->pages = std::vector<vpage>(g.npages);
	s->freemap.assign((g.npages + 63) / 64, 0);
	auto *descs = (uint64_t *)(g.start + layout::kHeapDescOff);
	auto *bits = (std::atomic<uint64_t> *)(g.start +
					       layout::heap_bitmap_off(g.npages));
	for (uint64_t i = 0; i < g.npages; i++) {
		vpage &pg = s->pages[i];
		pg.seg = s;
		pg.page_desc = descs + i;
		pg.bits = bits + i * kW;
		pg.start = g.start + i * kHeapPage;
		if (i >= g.hdr_pages)
			map_set(h, &pg, &pg);
	}
	return s;
}

/* Strict mode: the block pages of s are read-only to the program (the
 * header pages stay writable: only the library writes them). */
int protect_blocks(segment *s)
{
	char *lo = s->start + s->hdr_pages * kHeapPage;
	return s->h->pool->dev->protect(lo, (s->npages - s->hdr_pages) *
						    kHeapPage);
}

/* Check the header of segment s and load its pages (from their descs
 * alone if rebuild); a fresh (zero) header is initialised. */
int load_segment(heap *h, segment *s, bool rebuild)
{
	layout::heap_seg *hd = s->hdr;
	if (hd->magic == 0) { /* fresh, or a crash before magic landed */
		hd->npages = s->npages;
		hd->hdr_pages = s->hdr_pages;
		scm::persist(hd, sizeof(*hd));
		scm::store64(&hd->magic, layout::kHeapMagic);
		scm::persist(&hd->magic, 8);
	}
	if (hd->magic != layout::kHeapMagic || hd->npages != s->npages ||
	    hd->hdr_pages != s->hdr_pages)
		return corrupt(h, s, 0, "the segment header is not valid");
	for (uint64_t i = s->hdr_pages, next; i < s->npages; i = next) {
		int rc = rebuild ? load_page_desc(h, s, i, &next)
				 : load_page(h, s, i, &next);
		if (rc)
			return rc;
	}
	return 0;
}

int config_gc(int *mode)
{
	const char *v = getenv("MNEMO_HEAP_GC");
	*mode = 1;
	if (!v || !*v || !strcmp(v, "auto"))
		return 0;
	if (!strcmp(v, "off") || !strcmp(v, "0")) {
		*mode = 0;
		return 0;
	}
	if (!strcmp(v, "always")) {
		*mode = 2;
		return 0;
	}
	return fail(EINVAL, "MNEMO_HEAP_GC=%s: expected auto, off or always",
		    v);
}

/* Flush a used page's bits; a volatile map's small pages get theirs from
 * the volatile state first (no allocation in flight: detach). */
void write_bits(vpage *pg)
{
	if (bits_hint(pg->seg->h, pg))
		for (unsigned w = 0; w < nwords(pg); w++)
			pg->bits[w].store(live_word(pg, w),
					  std::memory_order_relaxed);
	scm::flush(pg->bits, nwords(pg) * 8);
}

void set_state(layout::heap_seg *s0, uint64_t state)
{
	scm::store64(&s0->state, state);
	scm::persist(&s0->state, 8);
}

/* Entering a volatile map: a large desc may lie only on a large head
 * (layout.h).  A durable-map process leaves them on freed heads. */
void clear_stale_large(heap *h)
{
	bool any = false;
	for (segment *s : h->segs)
		for (uint64_t i = s->hdr_pages; i < s->npages; i++) {
			vpage &pg = s->pages[i];
			uint64_t d = *pg.page_desc;
			if (pg.cls == kLarge || (d & 0xff) != layout::kHeapLarge)
				continue;
			scm::store64(pg.page_desc, 0);
			scm::flush(pg.page_desc, 8);
			any = true;
		}
	if (any)
		scm::fence();
}

} // namespace

/* ---- volatile state from the durable one ---- */

void set_free_page(segment *s, uint64_t i, bool is_free)
{
	uint64_t m = 1ull << (i % 64);
	if (is_free)
		s->freemap[i / 64] |= m;
	else
		s->freemap[i / 64] &= ~m;
}

void build_volatile(vpage *pg)
{
	bool small = pg->cls != kLarge && pg->cls != kCont && pg->cls != kFree;
	for (unsigned w = 0; w < kW; w++) {
		uint64_t m = small ? cap_mask(pg, w) : 0;
		uint64_t b = pg->bits[w].load(std::memory_order_relaxed);
		pg->vfree[w].store(m & ~b, std::memory_order_relaxed);
		pg->xfree[w].store(0, std::memory_order_relaxed);
		pg->vpend[w].store(0, std::memory_order_relaxed);
		pg->vheld[w].store(0, std::memory_order_relaxed);
	}
}

void segment_volatile(segment *s)
{
	for (uint64_t i = s->hdr_pages; i < s->npages; i++) {
		vpage &pg = s->pages[i];
		if (pg.cls != kCont && pg.cls != kFree && bits_zero(pg, 0))
			pg.cls = kFree; /* emptied by the collection */
		if (pg.cls == kFree)
			for (uint64_t k = 1; k < pg.span; k++)
				s->pages[i + k].cls = kFree;
	}
	for (uint64_t i = s->hdr_pages; i < s->npages; i++) {
		vpage &pg = s->pages[i];
		if (pg.cls == kFree) {
			pg.span = 0;
			pg.head = nullptr;
		}
		build_volatile(&pg);
		set_free_page(s, i, pg.cls == kFree);
	}
}

/* ---- interface ---- */

void protected_ranges(mnemo_pool *p, void (*add)(void *, uint64_t, uint64_t),
		      void *arg)
{
	each_region(p, [&](unsigned, char *a, uint64_t size) {
		geometry g;
		uint64_t hi = (uint64_t)a + size;
		if (geometry_of(a, size, &g))
			hi = (uint64_t)g.start + g.hdr_pages * kHeapPage;
		add(arg, (uint64_t)a, hi);
	});
}

bool bitmap_word_ok(mnemo_pool *p, uint64_t addr)
{
	bool ok = false;
	each_region(p, [&](unsigned, char *a, uint64_t size) {
		geometry g;
		if (!geometry_of(a, size, &g))
			return;
		uint64_t lo = (uint64_t)g.start +
			      layout::heap_bitmap_off(g.npages);
		uint64_t hi = lo + g.npages * kW * 8;
		ok |= addr >= lo && addr < hi && addr % 8 == 0;
	});
	return ok;
}

void set_small(vpage *pg, unsigned cls)
{
	pg->cls = (uint16_t)cls;
	pg->bsize = layout::heap_class_size(cls);
	pg->cap = (uint32_t)(kHeapPage / pg->bsize);
	pg->rcp = (uint32_t)(((1ull << 32) + pg->bsize - 1) / pg->bsize);
}

void format_page(vpage *pg, uint64_t kind, unsigned cls, uint32_t span)
{
	uint64_t w = kind | (uint64_t)cls << 8 | (uint64_t)span << 32;
	if (*pg->page_desc == w)
		return;
	scm::store64(pg->page_desc, w);
	scm::persist(pg->page_desc, 8);
}

int grow(heap *h, uint64_t need)
{
	if (h->segs.size() >= kMaxSegs)
		return fail(ENOMEM, "heap of pool %s is full: it has the "
			    "maximum of %u segments", h->pool->path.c_str(),
			    kMaxSegs);
	/* data pages + header + alignment slack */
	uint64_t min = need + layout::heap_hdr_pages(need / kHeapPage + 2) *
				      kHeapPage + 2 * kHeapPage;
	uint64_t want = h->bytes < kSegMin ? kSegMin : h->bytes;
	want = want > kSegMax ? kSegMax : want;
	want = want < min ? min : want;
	if (h->max_bytes && h->bytes + want > h->max_bytes)
		want = h->max_bytes > h->bytes ? h->max_bytes - h->bytes : 0;
	if (want < min)
		return fail(ENOMEM, "heap of pool %s is full: %llu bytes in "
			    "use, MNEMO_HEAP_MAX is %llu",
			    h->pool->path.c_str(),
			    (unsigned long long)h->bytes,
			    (unsigned long long)h->max_bytes);
	/* Invariant: once the heap has a segment, the pool has a
	 * transaction log (or had no room for one before the segment).  A
	 * thread's log is a region of the pool and segments are never
	 * returned, so a heap that once filled the pool would otherwise
	 * leave no room for it, and every commit (mnemo_heap_alloc_to and
	 * mnemo_heap_free_from too) would fail for good.  A failure here is
	 * not the heap's: the segment may still fit. */
	tx::reserve_log(h->pool);
	unsigned index = h->segs.empty() ? 0 : h->segs.back()->index + 1;
	std::string name = layout::kHeapPrefix + std::to_string(index);
	void *a = nullptr;
	size_t size = 0;
	int rc;
	/* A full file system (ENOSPC) or the pool's limit (ENOMEM) may
	 * still leave room for a smaller segment. */
	while (((rc = region_create_internal(h->pool, name.c_str(), want, &a,
					     &size)) == -ENOSPC ||
		rc == -ENOMEM) &&
	       want / 2 >= min)
		want /= 2;
	if (rc) {
		std::string why = mnemo_errormsg(); /* fail() overwrites it */
		return fail(ENOMEM, "heap of pool %s is full: no room in the "
			    "pool for a segment of %llu bytes (%s)",
			    h->pool->path.c_str(), (unsigned long long)want,
			    why.c_str());
	}
	geometry g;
	if (!geometry_of((char *)a, size, &g))
		return fail(ENOMEM, "heap segment too small");
	tx::protect(h->pool, (uint64_t)a,
			(uint64_t)g.start + g.hdr_pages * kHeapPage);
	segment *s = new_segment(h, index, g);
	if ((rc = load_segment(h, s, false)) || (rc = protect_blocks(s))) {
		delete s;
		return rc;
	}
	segment_volatile(s);
	h->segs.push_back(s);
	h->bytes += size;
	if (index == 0)
		set_state(s->hdr, h->vmap ? layout::kHeapOpenVolatile
					  : layout::kHeapOpen);
	return 0;
}

namespace {

/* Free blocks among those bitmap word w names: free by the volatile map
 * (vfree, xfree) or by the durable bit, and not held by a transaction. */
uint64_t free_word(const vpage *pg, unsigned w)
{
	constexpr auto r = std::memory_order_relaxed;
	uint64_t f = bits_hint(pg->seg->h, pg)
			     ? pg->vfree[w].load(r) | pg->xfree[w].load(r)
			     : ~pg->bits[w].load(r);
	return f & ~pg->vheld[w].load(r);
}

/* Whether no allocated block of small page pg overlaps [off, off+n). */
bool small_range_free(const vpage *pg, uint64_t off, uint64_t n)
{
	uint64_t b0 = off / pg->bsize, b1 = (off + n - 1) / pg->bsize;
	if (b1 >= pg->cap)
		b1 = pg->cap - 1;
	for (uint64_t b = b0; b <= b1; b = (b | 63) + 1) {
		uint64_t hi = b1 - (b & ~63ull) < 63 ? b1 % 64 : 63;
		uint64_t m = (~0ull >> (63 - hi)) & (~0ull << (b % 64));
		if (m & ~free_word(pg, (unsigned)(b / 64)))
			return false;
	}
	return true;
}

/* fork (scm::device::set_holes): whether the OS page at p holds no block
 * a fork child may read.  Lock-free: the page map never moves, and a block
 * allocated while fork copies races with the fork like any store. */
bool unused_at(void *ctx, const char *p)
{
	vpage *pg = page_of((heap *)ctx, (uintptr_t)p);
	if (!pg)
		return false; /* a segment's header pages */
	segment *s = pg->seg;
	uint64_t i = (uint64_t)(pg - s->pages.data());
	if (__atomic_load_n(&s->freemap[i / 64], __ATOMIC_RELAXED) >> (i % 64) & 1)
		return true;
	uint16_t cls = __atomic_load_n(&pg->cls, __ATOMIC_RELAXED);
	if (cls == kFree || cls == kLarge || cls == kCont)
		return false; /* being formatted, or one large block */
	uint64_t off = (uint64_t)(p - pg->start);
	if (!pg->bsize || !pg->cap)
		return false; /* being formatted */
	return off >= (uint64_t)pg->cap * pg->bsize ||
	       small_range_free(pg, off, scm::kHoleGrain);
}

} // namespace

int attach(mnemo_pool *p)
{
	auto *h = new heap;
	h->pool = p;
	h->id = g_next_id++;
	p->heap = h;
	h->base_page = (uintptr_t)p->base >> 16;
	h->map.assign((p->max >> 16) / kMapLeaf + 2, nullptr); /* window */
	int gc, rc = config_gc(&gc);
	h->vmap = gc != 0; /* the collection is what rebuilds its bits */
	if (rc == 0 && getenv("MNEMO_HEAP_MAX"))
		rc = parse_size("MNEMO_HEAP_MAX", getenv("MNEMO_HEAP_MAX"),
				&h->max_bytes);
	if (rc)
		return rc;
	auto t0 = std::chrono::steady_clock::now();
	each_region(p, [&](unsigned index, char *a, uint64_t size) {
		geometry g;
		if (!geometry_of(a, size, &g))
			return;
		h->segs.push_back(new_segment(h, index, g));
		h->bytes += size;
	});
	std::sort(h->segs.begin(), h->segs.end(),
		  [](segment *a, segment *b) { return a->index < b->index; });
	layout::heap_seg *s0 = h->segs.empty() || h->segs[0]->index != 0
				       ? nullptr
				       : h->segs[0]->hdr;
	uint64_t state = s0 && s0->magic == layout::kHeapMagic
				 ? s0->state
				 : layout::kHeapClosed;
	bool rebuild = state == layout::kHeapOpenVolatile;
	for (segment *s : h->segs)
		if ((rc = load_segment(h, s, rebuild)) ||
		    (rc = protect_blocks(s)))
			return rc;
	if (rebuild || (gc && (gc == 2 || state == layout::kHeapOpen)))
		collect(h, rebuild);
	for (segment *s : h->segs)
		segment_volatile(s);
	if (h->vmap)
		clear_stale_large(h);
	if (s0)
		set_state(s0, h->vmap ? layout::kHeapOpenVolatile
				      : layout::kHeapOpen);
	heap_register(h);
	p->dev->set_holes(unused_at, h);
	h->recovery_ns = (uint64_t)std::chrono::duration_cast<
		std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
		.count();
	return 0;
}

void detach(mnemo_pool *p)
{
	heap *h = p->heap;
	if (!h)
		return;
	if (!h->segs.empty() && h->segs[0]->index == 0) {
		/* Frees are durable at their thread's next fence, which may
		 * not come: flush every bitmap in use before "closed" (which
		 * skips the collection) can be durable.  A volatile map
		 * writes its small pages' bits first. */
		for (segment *s : h->segs)
			for (vpage &pg : s->pages)
				if (pg.cls != kFree && pg.cls != kCont)
					write_bits(&pg);
		scm::fence();
		set_state(h->segs[0]->hdr, layout::kHeapClosed);
	}
	destroy(h);
	p->heap = nullptr;
}

void destroy(heap *h)
{
	h->pool->dev->set_holes(nullptr, nullptr);
	heap_unregister(h);
	for (segment *s : h->segs)
		delete s;
	for (vpage **leaf : h->map)
		free(leaf);
	for (theap *t : h->theaps)
		delete t;
	delete h;
}

/* Strict mode's report of a faulting store (api/strict.cc): the block of
 * h holding a, by plain reads only (async-signal-safe). */
bool block_span(const heap *h, uintptr_t a, uintptr_t *start, uint64_t *size)
{
	const vpage *pg = page_of(h, a);
	if (!pg)
		return false;
	if (pg->cls == kCont && pg->head)
		pg = pg->head;
	if (pg->cls == kFree || pg->cls == kCont || !pg->bsize)
		return false;
	uint64_t bit = pg->cls == kLarge ? 0 : (a - (uintptr_t)pg->start) /
							    pg->bsize;
	*start = (uintptr_t)block_at(pg, bit);
	*size = pg->bsize;
	return true;
}

} // namespace mnemo::heap
