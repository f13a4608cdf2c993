/*
 * itm.cc -- the GCC transactional memory ABI (libitm's LIBITM_1.0 and 1.1
 * symbols), so that code compiled with gcc -fgnu-tm runs its
 * __transaction_atomic blocks as durable mnemosyne transactions.
 *
 * Every barrier maps to the engine (stm.h) in itm mode: a conflict returns
 * again from _ITM_beginTransaction (itm_x86_64.S) with "restore live
 * variables", an abort with "abort transaction".  Errors that the ABI cannot
 * report (log overflow, writes to two pools) print a message and abort the
 * process; see mnemosyne-tm(7).  Outside a transaction the barriers are
 * plain accesses.
 */
#include <algorithm>
#include <cerrno>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "base/error.h"
#include "base/export.h"
#include "mnemosyne.h"
#include "tx/txlog.h"

using namespace mnemo;
using namespace mnemo::tx;

#define ITM MNEMO_API
#define HIDDEN extern "C" __attribute__((visibility("hidden")))

namespace {

enum : uint32_t {
	a_runInstrumentedCode = 0x01,
	a_saveLiveVariables = 0x04,
	a_restoreLiveVariables = 0x08,
	a_abortTransaction = 0x10,
	userRetry = 2,
	outerAbort = 16,
};

void rd(const void *p, void *out, size_t n)
{
	tx_desc *d = self();
	if (d->depth == 0)
		memcpy(out, p, n);
	else if (load(d, out, p, n))
		memset(out, 0, n); /* plain mode only: the tx is doomed */
}

void wr(void *p, const void *v, size_t n)
{
	tx_desc *d = self();
	if (d->depth == 0)
		memcpy(p, v, n);
	else
		store(d, p, v, n);
}

/* The memcpy/memmove family: Rt/Wt = transactional source/destination. */
void copy(void *dst, const void *src, size_t n, bool rt, bool wt)
{
	tx_desc *d = self();
	if (d->depth == 0 || (!rt && !wt)) {
		memmove(dst, src, n);
		return;
	}
	if (!wt) {
		load(d, dst, src, n);
		return;
	}
	if (!rt) {
		store(d, dst, src, n);
		return;
	}
	char small[256];
	std::vector<char> big(n > sizeof(small) ? n : 0);
	char *tmp = n > sizeof(small) ? big.data() : small;
	if (load(d, tmp, src, n) == 0)
		store(d, dst, tmp, n);
}

struct clone_pair {
	void *orig, *clone;
	void *table;
};
std::mutex g_clone_mu;
std::vector<clone_pair> g_clones; /* sorted by orig */

void *find_clone(void *fn)
{
	std::lock_guard<std::mutex> g(g_clone_mu);
	auto it = std::lower_bound(
		g_clones.begin(), g_clones.end(), fn,
		[](const clone_pair &c, void *f) { return c.orig < f; });
	return it != g_clones.end() && it->orig == fn ? it->clone : nullptr;
}

} // namespace

extern "C" [[noreturn]] void mnemo_itm_longjmp(const itm_jmpbuf *jb,
					       uint32_t actions)
	__attribute__((visibility("hidden")));

HIDDEN uint32_t mnemo_itm_begin(uint32_t props, const itm_jmpbuf *jb)
{
	tx_desc *d = self();
	if (d->depth > 0) { /* flattened: a restart goes to the outermost */
		begin(d, d->m, d->jb);
		return a_runInstrumentedCode;
	}
	(void)props; /* every transaction runs instrumented */
	d->ijb = *jb;
	begin(d, mode::itm, nullptr);
	return a_runInstrumentedCode | a_saveLiveVariables;
}

#ifdef __SANITIZE_ADDRESS__
extern "C" void __asan_handle_no_return(void);
#endif

namespace {

[[noreturn]] void jump_back(tx_desc *d, uint32_t actions)
{
#ifdef __SANITIZE_ADDRESS__
	__asan_handle_no_return(); /* the frames we skip are unpoisoned */
#endif
	mnemo_itm_longjmp(&d->ijb, actions);
}

} // namespace

[[noreturn]] void mnemo::tx::itm_retry(tx_desc *d)
{
	begin(d, mode::itm, nullptr);
	jump_back(d, a_runInstrumentedCode | a_restoreLiveVariables);
}

[[noreturn]] void mnemo::tx::itm_cancel(tx_desc *d)
{
	jump_back(d, a_abortTransaction | a_restoreLiveVariables);
}

ITM void _ITM_commitTransaction(void)
{
	tx_desc *d = self();
	bool outer_itm = d->depth == 1 && d->m == mode::itm;
	int rc = commit(d);
	if (!outer_itm || rc == 0)
		return;
	if (rc != -EAGAIN)
		fatal(rc);
	itm_retry(d);
}

ITM void _ITM_commitTransactionEH(void *)
{
	_ITM_commitTransaction();
}

ITM [[noreturn]] void _ITM_abortTransaction(int reason)
{
	tx_desc *d = self();
	if (reason & userRetry)
		fail_tx(d, -EAGAIN);
	if (d->depth > 1 && !(reason & outerAbort)) {
		/* Closed nesting would roll back the inner block only and go
		 * on with the outer one; flattened transactions cannot. */
		fprintf(stderr, "libmnemo: __transaction_cancel in a nested "
			"transaction is not supported (transactions flatten); "
			"use __transaction_cancel [[outer]]\n");
		abort();
	}
	user_abort(d);
	fatal(-EINVAL); /* not in an itm transaction: GCC never does this */
}

ITM void _ITM_changeTransactionMode(int)
{
	tx_desc *d = self();
	if (d->depth)
		go_irrevocable(d);
}

ITM int _ITM_inTransaction(void)
{
	tx_desc *d = self();
	return d->depth == 0 ? 0 : d->irrevocable ? 2 : 1;
}

ITM uint64_t _ITM_getTransactionId(void)
{
	tx_desc *d = self();
	return d->depth ? 2 + d->commits + d->aborts : 1;
}

ITM const char *_ITM_libraryVersion(void)
{
	return "mnemosyne libmnemo 0.1 (GCC TM ABI 0.90)";
}

ITM int _ITM_versionCompatible(int version)
{
	return version == 90;
}

ITM [[noreturn]] void _ITM_error(const void *, int code)
{
	fprintf(stderr, "libmnemo: _ITM_error %d\n", code);
	abort();
}

ITM void _ITM_addUserCommitAction(void (*fn)(void *), uint64_t, void *arg)
{
	tx_desc *d = self();
	if (d->depth)
		d->on_commit.push_back({fn, arg});
	else
		fn(arg);
}

ITM void _ITM_addUserUndoAction(void (*fn)(void *), void *arg)
{
	tx_desc *d = self();
	if (d->depth)
		d->on_undo.push_back({fn, arg});
}

ITM void _ITM_dropReferences(void *, size_t)
{
}

/* ---- barriers ---- */

typedef uint8_t U1;
typedef uint16_t U2;
typedef uint32_t U4;
typedef uint64_t U8;
typedef float F;
typedef double D;
typedef long double E;
typedef _Complex float CF;
typedef _Complex double CD;
typedef _Complex long double CE;
typedef int M64 __attribute__((vector_size(8), may_alias));
typedef float M128 __attribute__((vector_size(16), may_alias));
typedef float M256 __attribute__((vector_size(32), may_alias));

#define BARRIERS_ATTR(T, attr)                                              \
	ITM attr T _ITM_R##T(const T *p)                                    \
	{                                                                   \
		T v;                                                        \
		rd(p, &v, sizeof(T));                                       \
		return v;                                                   \
	}                                                                   \
	ITM attr T _ITM_RaR##T(const T *p) { return _ITM_R##T(p); }         \
	ITM attr T _ITM_RaW##T(const T *p) { return _ITM_R##T(p); }         \
	ITM attr T _ITM_RfW##T(const T *p) { return _ITM_R##T(p); }         \
	ITM attr void _ITM_W##T(T *p, T v) { wr(p, &v, sizeof(T)); }       \
	ITM attr void _ITM_WaR##T(T *p, T v) { wr(p, &v, sizeof(T)); }     \
	ITM attr void _ITM_WaW##T(T *p, T v) { wr(p, &v, sizeof(T)); }     \
	ITM void _ITM_L##T(const T *p)                                      \
	{                                                                   \
		tx_desc *d = self();                                           \
		if (d->depth)                                               \
			log_undo(d, p, sizeof(T));                          \
	}
#define BARRIERS(T) BARRIERS_ATTR(T, )

BARRIERS(U1)
BARRIERS(U2)
BARRIERS(U4)
BARRIERS(U8)
BARRIERS(F)
BARRIERS(D)
BARRIERS(E)
BARRIERS(CF)
BARRIERS(CD)
BARRIERS(CE)
BARRIERS(M64)
BARRIERS(M128)
BARRIERS_ATTR(M256, __attribute__((target("avx"))))

ITM void _ITM_LB(const void *p, size_t n)
{
	tx_desc *d = self();
	if (d->depth)
		log_undo(d, p, n);
}

#define COPY(op, suffix, rt, wt)                                            \
	ITM void _ITM_##op##suffix(void *dst, const void *src, size_t n)    \
	{                                                                   \
		copy(dst, src, n, rt, wt);                                  \
	}
#define COPY_FAMILY(op)                                                     \
	COPY(op, RnWt, false, true)                                         \
	COPY(op, RnWtaR, false, true)                                       \
	COPY(op, RnWtaW, false, true)                                       \
	COPY(op, RtWn, true, false)                                         \
	COPY(op, RtWt, true, true)                                          \
	COPY(op, RtWtaR, true, true)                                        \
	COPY(op, RtWtaW, true, true)                                        \
	COPY(op, RtaRWn, true, false)                                       \
	COPY(op, RtaRWt, true, true)                                        \
	COPY(op, RtaRWtaR, true, true)                                      \
	COPY(op, RtaRWtaW, true, true)                                      \
	COPY(op, RtaWWn, true, false)                                       \
	COPY(op, RtaWWt, true, true)                                        \
	COPY(op, RtaWWtaR, true, true)                                      \
	COPY(op, RtaWWtaW, true, true)
COPY_FAMILY(memcpy)
COPY_FAMILY(memmove)

#define MEMSET(suffix)                                                      \
	ITM void _ITM_memset##suffix(void *dst, int c, size_t n)            \
	{                                                                   \
		tx_desc *d = self();                                           \
		if (d->depth)                                               \
			set(d, dst, c, n);                                  \
		else                                                        \
			memset(dst, c, n);                                  \
	}
MEMSET(W)
MEMSET(WaR)
MEMSET(WaW)

/* ---- allocation ---- */

ITM void *_ITM_malloc(size_t n)
{
	return tx_malloc(self(), n);
}

ITM void *_ITM_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return nullptr;
	void *p = tx_malloc(self(), n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

ITM void _ITM_free(void *p)
{
	tx_free(self(), p);
}

/* Transactional operator new/delete (x86-64 mangling: size_t is m). */
ITM void *_ZGTtnwm(size_t n) { return _ITM_malloc(n ? n : 1); }
ITM void *_ZGTtnam(size_t n) { return _ITM_malloc(n ? n : 1); }
ITM void *_ZGTtnwmRKSt9nothrow_t(size_t n, const void *) { return _ITM_malloc(n ? n : 1); }
ITM void *_ZGTtnamRKSt9nothrow_t(size_t n, const void *) { return _ITM_malloc(n ? n : 1); }
ITM void _ZGTtdlPv(void *p) { _ITM_free(p); }
ITM void _ZGTtdaPv(void *p) { _ITM_free(p); }
ITM void _ZGTtdlPvRKSt9nothrow_t(void *p, const void *) { _ITM_free(p); }
ITM void _ZGTtdaPvRKSt9nothrow_t(void *p, const void *) { _ITM_free(p); }
ITM void _ZGTtdlPvm(void *p, size_t) { _ITM_free(p); }
ITM void _ZGTtdlPvmRKSt9nothrow_t(void *p, size_t, const void *) { _ITM_free(p); }

/* ---- exceptions: an exception leaving the block commits it ---- */

extern "C" {
void *__cxa_allocate_exception(size_t);
void __cxa_free_exception(void *);
[[noreturn]] void __cxa_throw(void *, void *, void (*)(void *));
void *__cxa_begin_catch(void *);
void __cxa_end_catch(void);
}

ITM void *_ITM_cxa_allocate_exception(size_t n) { return __cxa_allocate_exception(n); }
ITM void _ITM_cxa_free_exception(void *e) { __cxa_free_exception(e); }
ITM [[noreturn]] void _ITM_cxa_throw(void *obj, void *tinfo, void (*dest)(void *))
{
	__cxa_throw(obj, tinfo, dest);
}
ITM void *_ITM_cxa_begin_catch(void *e) { return __cxa_begin_catch(e); }
ITM void _ITM_cxa_end_catch(void) { __cxa_end_catch(); }

/* ---- clone tables (registered by crtbegin.o of every TM object) ---- */

ITM void _ITM_registerTMCloneTable(void *table, size_t n)
{
	auto *t = (void **)table;
	std::lock_guard<std::mutex> g(g_clone_mu);
	for (size_t i = 0; i < n; i++)
		g_clones.push_back({t[2 * i], t[2 * i + 1], table});
	std::sort(g_clones.begin(), g_clones.end(),
		  [](const clone_pair &a, const clone_pair &b) {
			  return a.orig < b.orig;
		  });
}

ITM void _ITM_deregisterTMCloneTable(void *table)
{
	std::lock_guard<std::mutex> g(g_clone_mu);
	g_clones.erase(std::remove_if(g_clones.begin(), g_clones.end(),
				      [&](const clone_pair &c) {
					      return c.table == table;
				      }),
		       g_clones.end());
}

ITM void *_ITM_getTMCloneOrIrrevocable(void *fn)
{
	void *c = find_clone(fn);
	if (c)
		return c;
	tx_desc *d = self();
	if (d->depth)
		go_irrevocable(d);
	return fn;
}

ITM void *_ITM_getTMCloneSafe(void *fn)
{
	void *c = find_clone(fn);
	if (!c) {
		fprintf(stderr, "libmnemo: no transactional clone of %p\n", fn);
		abort();
	}
	return c;
}
