/*
 * refs.cc -- strict mode's check of "safe references" at commit (the
 * paper's rule: persistent memory must not point into volatile memory,
 * which the next run will not have).
 *
 * Every whole 8-byte word a strict pool's transaction writes durably is
 * compared with the volatile ranges this code can bound cheaply:
 *   - the brk heap, [start, current break), which glibc's main arena
 *     uses (the start read once from /proc/self/maps, the break from the
 *     brk system call, not sbrk(), which the interposer replaces);
 *   - the calling thread's stack (pthread_getattr_np, once per thread).
 * A hit is reported on stderr and counted (MNEMO_STAT_STRICT_REFS); the
 * commit still happens: the store may be deliberate (a cache of a
 * volatile address, cleared at every open), and a report that aborts
 * would make strict mode unusable on such programs.  Not covered:
 * malloc's mmap'd chunks and the arenas of other threads, other threads'
 * stacks, stores outside transactions.
 *
 * Also here: closing the pages that strict mode's SIGSEGV handler opened
 * for a transaction's plain stores into its own new blocks.
 */
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pool/pool.h"
#include "tx/stm.h"

namespace mnemo::tx {

__thread uint64_t tl_strict_refs __attribute__((tls_model("initial-exec")));

namespace {

struct span {
	uintptr_t lo = 0, hi = 0;
	bool has(uintptr_t v) const { return v - lo < hi - lo; }
};

uintptr_t cur_brk() { return (uintptr_t)syscall(SYS_brk, 0); }

/* The start of the brk heap: the [heap] line of /proc/self/maps, or, if
 * there is none yet, the break itself (the heap will start there). */
uintptr_t find_heap_start()
{
	uintptr_t lo = 0, hi;
	char line[256];
	if (FILE *f = fopen("/proc/self/maps", "re")) {
		while (fgets(line, sizeof(line), f))
			if (strstr(line, "[heap]") &&
			    sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2)
				break;
		fclose(f);
	}
	return lo ? lo : cur_brk();
}

/* The brk heap as far as this thread last asked the kernel: a system
 * call per commit would cost more than the check, so the break is read
 * again only for a value past the known end but near it (the heap grows
 * up from start; a value far from it is no heap pointer).  A heap that
 * shrank since is still volatile memory: a hit there is still a bug. */
constexpr uintptr_t kBrkNear = 64ull << 30;
__thread uintptr_t tl_brk_end; /* 0: not read yet */

bool in_brk_heap(uintptr_t v)
{
	static const uintptr_t start = find_heap_start();
	if (v < start || v - start >= kBrkNear)
		return false;
	if (v < tl_brk_end)
		return true;
	tl_brk_end = cur_brk(); /* v is past the known end: read it */
	return v < tl_brk_end;
}

span thread_stack()
{
	static __thread span s;
	static __thread bool known;
	if (!known) {
		pthread_attr_t a;
		void *lo;
		size_t n;
		if (pthread_getattr_np(pthread_self(), &a) == 0) {
			if (pthread_attr_getstack(&a, &lo, &n) == 0)
				s = span{(uintptr_t)lo, (uintptr_t)lo + n};
			pthread_attr_destroy(&a);
		}
		known = true;
	}
	return s;
}

void report(const tx_desc *d, uintptr_t at, uint64_t v, const char *what)
{
	tl_strict_refs++;
	fprintf(stderr, "libmnemo: strict: transaction stored volatile "
		"pointer 0x%" PRIx64 " (%s) at persistent address 0x%" PRIxPTR
		" of pool %s\n", v, what, at, d->pool->path.c_str());
}

} // namespace

void check_refs(tx_desc *d)
{
	span stack = thread_stack();
	for (const wentry &e : d->ws.entries()) {
		if (!e.durable)
			continue;
		for (unsigned w = 0; w < kChunk / 8; w++) {
			if ((e.mask >> (8 * w) & 0xff) != 0xff)
				continue; /* only whole words are pointers */
			uint64_t v;
			memcpy(&v, e.val + 8 * w, 8);
			if (in_brk_heap(v))
				report(d, e.addr + 8 * w, v, "malloc heap");
			else if (stack.has(v))
				report(d, e.addr + 8 * w, v, "thread stack");
		}
	}
}

void strict_close_pages(tx_desc *d)
{
	for (unsigned i = 0; i < d->strict_npages; i++)
		(void)scm::page_protect((void *)d->strict_pages[i], true);
	d->strict_npages = 0;
}

} // namespace mnemo::tx
