/*
 * heap.cc -- the public heap interface: the pmalloc family on the default
 * pool, the pool-explicit and atomic-publish forms, statistics and the
 * consistency check.
 */
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "api/api.h"
#include "base/error.h"
#include "base/export.h"
#include "heap/heap.h"
#include "mnemosyne.h"
#include "pool/pool.h"
#include "tx/stm.h"


using namespace mnemo;
using namespace mnemo::heap;

namespace {

[[gnu::noinline, gnu::cold]] void *fail_null(int err, const char *msg)
{
	fail(err, "%s", msg);
	errno = err;
	return nullptr;
}

/* mnemo_heap_alloc's general case, out of line: the fast path then
 * needs no stack frame. */
[[gnu::noinline]] void *alloc_flags(heap::heap *h, size_t size, size_t align,
				    unsigned flags)
{
	return alloc(h, size, align,
		     fill{(flags & MNEMO_HEAP_ZERO) != 0, nullptr, 0,
			  (flags & MNEMO_HEAP_NOTX) != 0});
}

void *default_alloc(size_t size, size_t align, const fill &f)
{
	mnemo_pool *p = default_pool();
	return p ? alloc(p->heap, size, align, f) : nullptr;
}

bool pow2(size_t a) { return a && !(a & (a - 1)); }

/* pfree cannot return its error: report it where a developer sees it. */
void report(int rc)
{
	errno = -rc;
	fprintf(stderr, "libmnemo: %s\n", mnemo_errormsg());
	const char *a = getenv("MNEMO_HEAP_ABORT");
	if (a && *a && strcmp(a, "0") != 0)
		abort();
}

/* Leave a transaction begun by the caller's helper: the outermost level
 * is rolled back, an inner one only counts down (its outer decides). */
void leave_tx(tx::tx_desc *d, bool nested)
{
	if (nested)
		tx::commit(d);
	else
		tx::user_abort(d);
}

/* Run body() (which returns 0 or a code) as a transaction, or as part of
 * the caller's; retries conflicts of its own transaction. */
template <class F> int in_tx(F &&body)
{
	tx::tx_desc *d = tx::self();
	bool nested = d->depth > 0;
	for (;;) {
		int rc = tx::begin(d, tx::mode::plain, nullptr);
		if (rc)
			return rc;
		if ((rc = body(d)) && !d->status) {
			leave_tx(d, nested);
			return rc;
		}
		rc = tx::commit(d);
		if (rc != -EAGAIN || nested)
			return rc;
	}
}

} // namespace

MNEMO_API void *pmalloc(size_t size)
{
	mnemo_pool *p = default_pool();
	return p ? alloc_plain(p->heap, size, false) : nullptr;
}

MNEMO_API void *pcalloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return fail_null(ENOMEM, "pcalloc: nmemb * size overflows");
	return default_alloc(n * size, 0, fill{true, nullptr, 0});
}

MNEMO_API void *paligned_alloc(size_t align, size_t size)
{
	if (!pow2(align))
		return fail_null(EINVAL, "paligned_alloc: the alignment must "
				 "be a power of two");
	return default_alloc(size, align, fill{});
}

MNEMO_API void pfree(void *ptr)
{
	if (!ptr)
		return;
	int rc = free_block(ptr);
	/* -EAGAIN: a conflict of the enclosing plain-mode transaction (the
	 * free locks the block's stripes), which its commit returns: not a
	 * misuse to report. */
	if (rc && rc != -EAGAIN)
		report(rc);
}

MNEMO_API void *prealloc(void *ptr, size_t size)
{
	if (!ptr)
		return pmalloc(size);
	if (size == 0) {
		pfree(ptr);
		return nullptr;
	}
	int err;
	size_t have = usable_size(ptr, "prealloc", &err);
	if (err) {
		errno = -err;
		return nullptr;
	}
	if (size <= have)
		return ptr;
	void *p = alloc(heap_of((uintptr_t)ptr), size, 0,
			fill{false, ptr, have});
	if (p && (err = free_block(ptr))) { /* freed by a racing thread */
		free_block(p);
		errno = -err;
		return nullptr;
	}
	return p;
}

MNEMO_API size_t pmalloc_usable_size(void *ptr)
{
	int err;
	return ptr ? usable_size(ptr, "pmalloc_usable_size", &err) : 0;
}

MNEMO_API void *mnemo_heap_alloc(mnemo_pool *pool, size_t size, size_t align,
				 unsigned flags)
{
	if (!pool || (align && !pow2(align)) ||
	    (flags & ~(MNEMO_HEAP_ZERO | MNEMO_HEAP_NOTX)))
		return fail_null(EINVAL, "mnemo_heap_alloc: a pool, an "
				 "alignment of 0 or a power of two, and flags "
				 "from MNEMO_HEAP_ZERO | MNEMO_HEAP_NOTX are "
				 "required");
	if (align <= 16 && !(flags & MNEMO_HEAP_ZERO))
		return alloc_plain(pool->heap, size,
				   (flags & MNEMO_HEAP_NOTX) != 0);
	return alloc_flags(pool->heap, size, align, flags);
}

MNEMO_API int mnemo_heap_free(void *ptr, unsigned flags)
{
	if (flags & ~MNEMO_HEAP_NOTX)
		return fail(EINVAL, "mnemo_heap_free: flags must be 0 or "
			    "MNEMO_HEAP_NOTX");
	return ptr ? free_block(ptr, flags & MNEMO_HEAP_NOTX) : 0;
}

MNEMO_API int mnemo_heap_alloc_to(void **dst, size_t size, unsigned flags)
{
	heap::heap *h = dst ? heap_of((uintptr_t)dst) : nullptr;
	if (!h || (flags & ~MNEMO_HEAP_ZERO))
		return fail(EINVAL, "mnemo_heap_alloc_to: dst must be in an "
			    "open pool and flags 0 or MNEMO_HEAP_ZERO");
	return in_tx([&](tx::tx_desc *d) {
		void *p = alloc(h, size, 0,
				fill{(flags & MNEMO_HEAP_ZERO) != 0, nullptr, 0});
		return p ? tx::store(d, dst, &p, sizeof(p)) : -errno;
	});
}

MNEMO_API int mnemo_heap_free_from(void **src)
{
	if (!src || !heap_of((uintptr_t)src))
		return fail(EINVAL, "mnemo_heap_free_from: src must be in an "
			    "open pool");
	return in_tx([&](tx::tx_desc *d) {
		void *p = nullptr;
		int rc = tx::load(d, &p, src, sizeof(p));
		if (rc || !p)
			return rc;
		if ((rc = free_block(p)))
			return rc;
		p = nullptr;
		return tx::store(d, src, &p, sizeof(p));
	});
}

namespace {

/* Live blocks of pg (0 for a free or continuation page). */
uint64_t live_blocks(const vpage &pg)
{
	uint64_t n = 0;
	if (pg.cls == kFree || pg.cls == kCont)
		return 0;
	for (unsigned w = 0; w < nwords(&pg); w++)
		n += (uint64_t)__builtin_popcountll(live_word(&pg, w));
	return n;
}

/* f(pg, n) for every page of h holding n > 0 live blocks (a page kept
 * empty by a thread heap is skipped).  pre: h->mu held. */
template <typename F> void each_live_page(heap::heap *h, F f)
{
	for (segment *s : h->segs)
		for (vpage &pg : s->pages)
			if (uint64_t n = live_blocks(pg))
				f(pg, n);
}

void heap_stats(heap::heap *h, struct mnemo_heap_stats *st)
{
	std::lock_guard<std::mutex> g(h->mu);
	each_live_page(h, [&](const vpage &pg, uint64_t n) {
		uint64_t pages = pg.cls == kLarge ? pg.span : 1;
		st->page_bytes += pages * layout::kHeapPage;
		st->live_blocks += n;
		st->live_bytes += n * pg.bsize;
		st->large_blocks += pg.cls == kLarge ? n : 0;
	});
	st->heap_bytes = h->bytes;
	st->fragmentation = st->page_bytes
		? 1.0 - (double)st->live_bytes / (double)st->page_bytes : 0.0;
	st->reclaimed_blocks = h->reclaimed_blocks;
	st->reclaimed_bytes = h->reclaimed_bytes;
	st->recovery_ns = h->recovery_ns;
	st->collected = h->collected;
}

} // namespace

/* Version 0.1's struct ends after `collected`: a caller's size may be
 * larger (a later header) or exactly that, never smaller. */
MNEMO_API int mnemo_heap_stats(mnemo_pool *pool, struct mnemo_heap_stats *st,
			       size_t size)
{
	constexpr size_t v01 = offsetof(struct mnemo_heap_stats, collected) +
			       sizeof(st->collected);
	if (!pool || !st || size < v01)
		return fail(EINVAL, "mnemo_heap_stats: pool, st and a size of "
			    "at least %zu are required", v01);
	struct mnemo_heap_stats mine = {};
	heap_stats(pool->heap, &mine);
	memset(st, 0, size);
	memcpy(st, &mine, size < sizeof(mine) ? size : sizeof(mine));
	return 0;
}

MNEMO_API int mnemo_heap_classes(mnemo_pool *pool,
				 struct mnemo_heap_class *out, size_t n)
{
	if (!pool || (n && !out))
		return fail(EINVAL, "mnemo_heap_classes: pool and, for n > 0, "
			    "out are required");
	size_t k = n < layout::kHeapClasses ? n : layout::kHeapClasses;
	for (size_t c = 0; c < k; c++)
		out[c] = {layout::heap_class_size((unsigned)c + 1), 0, 0};
	heap::heap *h = pool->heap;
	std::lock_guard<std::mutex> g(h->mu);
	each_live_page(h, [&](const vpage &pg, uint64_t live) {
		if (pg.cls != kLarge && pg.cls <= k) {
			out[pg.cls - 1].blocks += live;
			out[pg.cls - 1].pages++;
		}
	});
	return (int)layout::kHeapClasses;
}

namespace {

/* mnemo_heap_check's report: the first problem, and how many in all. */
struct first_problem {
	heap::problem p{};
	bool seen = false;
};

void keep_first(const heap::problem &p, void *arg)
{
	auto *f = static_cast<first_problem *>(arg);
	if (!f->seen)
		f->p = p;
	f->seen = true;
}

struct user_fn {
	mnemo_check_fn fn;
	void *arg;
};

void to_user(const heap::problem &p, void *arg)
{
	auto *u = static_cast<user_fn *>(arg);
	char what[160];
	snprintf(what, sizeof(what), "heap segment %u page %llu: %s",
		 p.segment, (unsigned long long)p.page, p.what);
	u->fn(p.offset, what, u->arg);
}

} // namespace

MNEMO_API int mnemo_heap_check(mnemo_pool *pool)
{
	if (!pool)
		return fail(EINVAL, "mnemo_heap_check: pool is NULL");
	first_problem f;
	int n = check(pool->heap, keep_first, &f);
	if (n == 0)
		return 0;
	char more[64] = "";
	if (n > 1)
		snprintf(more, sizeof(more), " (the first of %d problems)", n);
	return fail(EUCLEAN, "pool %s: heap check: segment %u page %llu "
		    "(offset %#llx): %s%s", pool->path.c_str(), f.p.segment,
		    (unsigned long long)f.p.page,
		    (unsigned long long)f.p.offset, f.p.what, more);
}

MNEMO_API int mnemo_heap_check_each(mnemo_pool *pool, mnemo_check_fn fn,
				    void *arg)
{
	if (!pool || !fn)
		return fail(EINVAL, "mnemo_heap_check_each: pool and fn are "
			    "required");
	user_fn u{fn, arg};
	return check(pool->heap, to_user, &u);
}
