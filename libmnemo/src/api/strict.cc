/*
 * strict.cc -- strict mode's SIGSEGV handler: the report of a plain store
 * to a strict pool's user data (read-only to the program, scm/strict.cc).
 *
 * Installed when the first strict pool opens, and kept: a fault anywhere
 * else (not a write to a read-only page of a strict pool's user data)
 * goes to the handler that was installed before, or to the default
 * action.  A store it reports is stopped before it happens (the page is
 * read-only), so nothing reaches the pool; the report names the address,
 * the pool, the region (or heap block) and the faulting instruction,
 * then the process aborts.  One kind of plain store is allowed: into a
 * block the thread's running transaction allocated (allow_fresh).
 *
 * Async-signal-safe: write(2), abort(), and plain reads of the pool's
 * tables (in the window, always mapped) and of the heap's page map; no
 * allocation, no lock, no stdio.
 */
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <ucontext.h>
#include <unistd.h>

#include "api/api.h"
#include "heap/heap.h"
#include "pool/pool.h"
#include "tx/stm.h"

using namespace mnemo;

namespace {

struct sigaction g_prev;
std::once_flag g_installed;

/* A fixed buffer and appenders that need no libc formatting. */
struct line {
	char b[1024];
	size_t n = 0;
	void str(const char *s)
	{
		while (*s && n < sizeof(b) - 1)
			b[n++] = *s++;
	}
	void num(uint64_t v, unsigned base)
	{
		char t[24];
		int k = 0;
		do {
			t[k++] = "0123456789abcdef"[v % base];
			v /= base;
		} while (v);
		if (base == 16)
			str("0x");
		while (k > 0 && n < sizeof(b) - 1)
			b[n++] = t[--k];
	}
	void hex(uint64_t v) { num(v, 16); }
};

/* The live slot of the region of p that holds a, or nullptr. */
const layout::slot *region_of(const mnemo_pool *p, uintptr_t a)
{
	uint64_t off = a - (uintptr_t)p->base;
	const layout::slot *t = p->regions();
	for (uint32_t i = 0; i < p->hdr.region_slots; i++)
		if (t[i].state == layout::kSlotLive && off - t[i].offset <
							       t[i].size)
			return &t[i];
	return nullptr;
}

/* What holds a: a user region, a heap block, or (false) neither, then
 * the fault is not a strict one. */
bool describe(line &l, const mnemo_pool *p, uintptr_t a)
{
	const layout::slot *s = region_of(p, a);
	if (!s)
		return false;
	if (name_user_data(s->name)) {
		l.str(", region \"");
		l.str(s->name);
		l.str("\" [");
		l.hex((uintptr_t)p->base + s->offset);
		l.str(", +");
		l.num(s->size, 10);
		l.str(")");
		return true;
	}
	uintptr_t start;
	uint64_t size;
	if (!p->heap || !heap::block_span(p->heap, a, &start, &size))
		return false;
	l.str(", heap block ");
	l.hex(start);
	l.str(" of ");
	l.num(size, 10);
	l.str(" bytes");
	return true;
}

/* A plain store into a block that the calling thread's running
 * transaction allocated is allowed: nothing else can reach the block
 * before the commit, which the library's rules make the place for a
 * constructor's stores (mnemosyne.hpp's make_persistent, the
 * containers).  Its OS page becomes writable until the transaction
 * ends (tx::strict_close_pages); meanwhile plain stores to other blocks
 * sharing that page are not caught. */
bool allow_fresh(uintptr_t a)
{
	tx::tx_desc *d = tx::self_if();
	if (!d || d->depth == 0)
		return false;
	for (const tx::bit_op &o : d->hops) {
		auto *pg = (const heap::vpage *)o.page;
		uintptr_t s = (uintptr_t)heap::block_at(pg, o.bit);
		if (!o.set || a - s >= pg->bsize)
			continue;
		if (d->strict_npages == tx::tx_desc::kStrictPages)
			tx::strict_close_pages(d); /* they fault open again */
		uintptr_t page = a & ~(uintptr_t)(scm::kOsPage - 1);
		/* If the page cannot be opened (ENOMEM: too many mappings),
		 * returning would fault again forever: report the store. */
		if (!scm::page_protect((void *)page, false))
			return false;
		d->strict_pages[d->strict_npages++] = page;
		return true;
	}
	return false;
}

void chain(int sig, siginfo_t *si, void *uc)
{
	if (g_prev.sa_flags & SA_SIGINFO) {
		g_prev.sa_sigaction(sig, si, uc);
		return;
	}
	if (g_prev.sa_handler != SIG_DFL && g_prev.sa_handler != SIG_IGN) {
		g_prev.sa_handler(sig);
		return;
	}
	/* The default action: returning retries the store, which faults
	 * again and kills the process as if we had never been here. */
	signal(sig, SIG_DFL);
}

void on_segv(int sig, siginfo_t *si, void *uc)
{
	int saved = errno; /* mprotect may set it; the store's code runs on */
	uintptr_t a = (uintptr_t)si->si_addr, lo, hi;
	mnemo_pool *p = si->si_code == SEGV_ACCERR &&
				scm::strict_device_of(a)
			? scm::owner_of(a, &lo, &hi)
			: nullptr;
	if (p && allow_fresh(a)) {
		errno = saved;
		return; /* the store runs again, now on a writable page */
	}
	line l;
	l.str("libmnemo: strict: plain store to persistent memory at ");
	l.hex(a);
	if (!p || (l.str(" in pool "), l.str(p->path.c_str()),
		   !describe(l, p, a))) {
		errno = saved;
		chain(sig, si, uc);
		return;
	}
	l.str(", by the instruction at ");
	l.hex((uint64_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP]);
	l.str("; store through a transaction or mnemo_store64 instead "
	      "(MNEMO_CHECK=strict)\n");
	ssize_t rc = write(2, l.b, l.n);
	(void)rc;
	abort();
}

void install()
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &g_prev);
}

} // namespace

void mnemo::strict_handler_install()
{
	std::call_once(g_installed, install);
}
