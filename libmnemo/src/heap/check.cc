/*
 * check.cc -- mnemo_heap_check(): the durable bits and descs against the
 * volatile state.  The invariants it proves, with no allocation in flight:
 *  - no block is both allocated and free to hand out (vfree or xfree),
 *    nor both in vfree and xfree, nor held by a transaction and free;
 *  - a free page has no bit set and is in its segment's free map;
 *  - a small page's desc names its class and no bit lies past its blocks;
 *  - a large block's desc gives its span, and its other pages point to it;
 *    under a volatile map no other page has a large desc (layout.h);
 *  - no transaction is freeing anything (vpend all clear).
 */
#include <cerrno>

#include "base/error.h"
#include "base/progress.h"
#include "heap/heap.h"
#include "pool/pool.h"

namespace mnemo::heap {
namespace {

bool page_free_in_map(const segment *s, uint64_t i)
{
	return s->freemap[i / 64] >> (i % 64) & 1;
}

const char *check_words(const vpage &pg, bool small)
{
	for (unsigned w = 0; w < kW; w++) {
		uint64_t b = live_word(&pg, w), v = pg.vfree[w].load();
		uint64_t x = pg.xfree[w].load(), f = v | x;
		if (pg.vpend[w].load())
			return "a transactional free is pending";
		if ((b & f) || (v & x))
			return "a block is both allocated and free";
		if (pg.vheld[w].load() & (b | f))
			return "a block held by a transaction is not";
		if (small && (b | f) & ~cap_mask(&pg, w))
			return "bits past the last block";
		if (!small && w > 0 && b)
			return "a large block with extra bits";
	}
	return nullptr;
}

const char *check_page(const segment *s, uint64_t i)
{
	const vpage &pg = s->pages[i];
	uint64_t d = *pg.page_desc;
	if (bits_hint(s->h, &pg) && (d & 0xff) == layout::kHeapLarge)
		return "a large desc off a large block's head";
	switch (pg.cls) {
	case kFree:
		for (unsigned w = 0; w < kW; w++)
			if (pg.bits[w].load() || pg.vfree[w].load() ||
			    pg.xfree[w].load())
				return "a free page with bits set";
		return page_free_in_map(s, i) ? nullptr
					      : "a free page not in the map";
	case kCont:
		for (unsigned w = 0; w < kW; w++)
			if (pg.bits[w].load())
				return "a page inside a large block with bits set";
		if (!pg.head || pg.head->cls != kLarge ||
		    &pg - pg.head >= (long)pg.head->span || &pg <= pg.head)
			return "a page of a large block without its head";
		return page_free_in_map(s, i) ? "a used page in the free map"
					      : nullptr;
	case kLarge:
		if (d != (layout::kHeapLarge | (uint64_t)pg.span << 32) ||
		    pg.span == 0 || i + pg.span > s->npages)
			return "a large block whose desc does not match";
		break;
	default:
		if (d != (layout::kHeapSmall | (uint64_t)pg.cls << 8) ||
		    pg.bsize != layout::heap_class_size(pg.cls))
			return "a small page whose desc does not match";
	}
	if (page_free_in_map(s, i))
		return "a used page in the free map";
	return check_words(pg, pg.cls != kLarge);
}

/* Where page i of s lies in the pool file, from the pool's base. */
uint64_t offset_of(const heap *h, const segment *s, uint64_t i)
{
	return (uint64_t)(s->pages[i].start - h->pool->base);
}

} // namespace

int check(heap *h, check_fn fn, void *arg)
{
	std::lock_guard<std::mutex> g(h->mu);
	uint64_t pages = 0, problems = 0;
	for (const segment *s : h->segs)
		pages += s->npages;
	progress::meter m("check", pages);
	for (const segment *s : h->segs) {
		m.add(s->hdr_pages);
		for (uint64_t i = s->hdr_pages; i < s->npages; i++) {
			const char *why = check_page(s, i);
			if (why) {
				problems++;
				fn(problem{s->index, i, offset_of(h, s, i),
					   why}, arg);
			}
			m.add(1);
		}
	}
	return (int)(problems < INT32_MAX ? problems : INT32_MAX);
}

} // namespace mnemo::heap
