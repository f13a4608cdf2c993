/*
 * gc.cc -- the recovery-time collection (as Makalu and Ralloc do): after a
 * crash, blocks allocated outside a transaction whose pointer never got
 * stored are leaks.  Mark every block reachable from the roots, then free
 * the allocated blocks that are not marked.
 *
 * Roots: the named roots and every word of every user region (anything
 * not "mnemo.*": pmap regions, persistent sections, user logs).  The scan
 * is conservative: any 8-aligned word whose value points into an
 * allocated block (its start or inside it) keeps the block.  Pointers held
 * only in other pools, in files, or as offsets do not count.
 *
 * It runs at open, before any thread can allocate, on the durable bits as
 * replay left them; it clears bits with plain stores, flushes them and
 * fences once.  A crash during it leaves the heap marked open, so the next
 * open collects again (it is idempotent).
 *
 * After a crash under a volatile map (layout.h) the bits mean nothing: the
 * collection rebuilds them.  Every block of every page the descs name is a
 * candidate, the bits become exactly the marks, and an unmarked large
 * head's desc is zeroed (a large desc lies only on a live head).  This too
 * is idempotent: it reads only descs and roots, and the state still says
 * kHeapOpenVolatile until attach() stores the next one.
 */
#include <vector>

#include "base/progress.h"
#include "heap/heap.h"
#include "pool/pool.h"
#include "scm/scm.h"

namespace mnemo::heap {
namespace {

struct marker {
	heap *h;
	bool rebuild; /* every block of a page with a desc is a candidate */
	uintptr_t lo = ~(uintptr_t)0, hi = 0; /* bounds of all segments */
	/* mark bits, kW words per page, pages numbered across segments */
	std::vector<uint64_t> marks;
	std::vector<uint64_t> first; /* first page number of each segment */
	struct span {
		const char *p;
		uint64_t n;
	};
	std::vector<span> stack;
	progress::meter *meter = nullptr; /* "mark": bytes scanned */

	uint64_t *mark_word(const vpage *pg, unsigned bit)
	{
		const segment *s = pg->seg;
		uint64_t page = first[s->index] + (uint64_t)(pg - s->pages.data());
		return &marks[page * kW + bit / 64];
	}

	void consider(uint64_t v)
	{
		if (v - lo >= hi - lo)
			return;
		vpage *pg = page_of(h, (uintptr_t)v);
		if (!pg || pg->cls == kFree)
			return;
		if (pg->cls == kCont)
			pg = pg->head;
		uint64_t bit = ((uintptr_t)v - (uintptr_t)pg->start) / pg->bsize;
		if (bit >= pg->cap)
			return;
		uint64_t m = 1ull << (bit % 64);
		uint64_t *mw = mark_word(pg, (unsigned)bit);
		if ((!rebuild &&
		     !(pg->bits[bit / 64].load(std::memory_order_relaxed) & m)) ||
		    (*mw & m))
			return;
		*mw |= m;
		stack.push_back({block_at(pg, bit), pg->bsize});
	}

	void scan(const char *p, uint64_t n)
	{
		const auto *w = (const uint64_t *)p;
		for (uint64_t i = 0; i < n / 8; i++)
			consider(w[i]);
		meter->add(n);
	}

	void drain()
	{
		while (!stack.empty()) {
			span s = stack.back();
			stack.pop_back();
			scan(s.p, s.n);
		}
	}
};

/* Bits of page pg: clear the unmarked ones (rebuild: set exactly the
 * marked ones); counts what it cleared. */
void sweep_page(marker &mk, vpage &pg, uint64_t *blocks, uint64_t *bytes)
{
	bool live = pg.cls != kFree && pg.cls != kCont;
	for (unsigned w = 0; w < kW; w++) {
		uint64_t b = pg.bits[w].load(std::memory_order_relaxed);
		uint64_t keep = live && w < nwords(&pg)
					? *mk.mark_word(&pg, w * 64)
					: 0;
		uint64_t nb = mk.rebuild ? keep : b & keep;
		if (nb == b)
			continue;
		pg.bits[w].store(nb, std::memory_order_relaxed);
		scm::flush(&pg.bits[w], 8);
		uint64_t dead = (uint64_t)__builtin_popcountll(b & ~nb);
		*blocks += dead;
		*bytes += dead * pg.bsize;
	}
	if (mk.rebuild && pg.cls == kLarge && !(pg.bits[0].load() & 1)) {
		scm::store64(pg.page_desc, 0);
		scm::flush(pg.page_desc, 8);
	}
}

/* What the mark can scan at most: the user regions, and every page that
 * holds a block (a large block once, at its head: it spans its pages). */
uint64_t mark_total(heap *h)
{
	mnemo_pool *p = h->pool;
	uint64_t n = 0;
	for (const mnemo_pool::extent &e : p->extents)
		if (!name_reserved(p->regions()[e.slot].name))
			n += e.size;
	for (segment *s : h->segs)
		for (uint64_t i = s->hdr_pages; i < s->npages; i++)
			if (s->pages[i].cls == kLarge)
				n += s->pages[i].span * layout::kHeapPage;
			else if (s->pages[i].cls != kFree &&
				 s->pages[i].cls != kCont)
				n += layout::kHeapPage;
	return n;
}

void mark(marker &mk)
{
	mnemo_pool *p = mk.h->pool;
	progress::meter m("mark", mark_total(mk.h));
	mk.meter = &m;
	for (uint32_t i = 0; i < p->hdr.root_slots; i++)
		if (p->roots()[i].state == layout::kSlotLive)
			mk.consider(p->roots()[i].value);
	for (const mnemo_pool::extent &e : p->extents) {
		/* the library's own regions (heap, tx logs: old records
		 * hold stale pointers) are not roots */
		if (name_reserved(p->regions()[e.slot].name))
			continue;
		mk.scan(p->base + e.offset, e.size);
		mk.drain();
	}
	mk.drain();
}

void sweep(marker &mk, uint64_t pages, uint64_t *blocks, uint64_t *bytes)
{
	progress::meter m("sweep", pages);
	for (segment *s : mk.h->segs) {
		m.add(s->hdr_pages);
		for (uint64_t i = s->hdr_pages; i < s->npages; i++) {
			sweep_page(mk, s->pages[i], blocks, bytes);
			m.add(1);
		}
	}
	scm::fence();
}

} // namespace

void collect(heap *h, bool rebuild)
{
	marker mk;
	mk.h = h;
	mk.rebuild = rebuild;
	uint64_t pages = 0;
	unsigned maxidx = 0;
	for (segment *s : h->segs)
		maxidx = s->index > maxidx ? s->index : maxidx;
	mk.first.assign(maxidx + 1, 0);
	for (segment *s : h->segs) {
		mk.first[s->index] = pages;
		pages += s->npages;
		uintptr_t a = (uintptr_t)s->start;
		mk.lo = a < mk.lo ? a : mk.lo;
		a += s->npages * layout::kHeapPage;
		mk.hi = a > mk.hi ? a : mk.hi;
	}
	mk.marks.assign(pages * kW, 0);
	mark(mk);
	uint64_t blocks = 0, bytes = 0;
	sweep(mk, pages, &blocks, &bytes);
	h->reclaimed_blocks = blocks;
	h->reclaimed_bytes = bytes;
	h->collected = true;
}

} // namespace mnemo::heap
