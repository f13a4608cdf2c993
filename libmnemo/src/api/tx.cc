/*
 * tx.cc -- the C API of transactions (mnemosyne.h), over stm.h.
 */
#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "base/export.h"
#include "mnemosyne.h"
#include "tx/txlog.h"


using namespace mnemo;
using namespace mnemo::tx;

MNEMO_API int mnemo_tx_begin(void)
{
	return begin(self(), mode::plain, nullptr);
}

MNEMO_API int mnemo_tx_commit(void)
{
	return commit(self());
}

MNEMO_API void mnemo_tx_abort(void)
{
	user_abort(self());
}

MNEMO_API int mnemo_tx_depth(void)
{
	return self()->depth;
}

MNEMO_API int mnemo_tx_status(void)
{
	return self()->status;
}

MNEMO_API int mnemo_tx_load(void *dst, const void *src, size_t n)
{
	if (n && (!dst || !src))
		return fail(EINVAL, "mnemo_tx_load: NULL buffer");
	return load(self(), dst, src, n);
}

MNEMO_API int mnemo_tx_store(void *dst, const void *src, size_t n)
{
	if (n && (!dst || !src))
		return fail(EINVAL, "mnemo_tx_store: NULL buffer");
	return store(self(), dst, src, n);
}

MNEMO_API int mnemo_tx_memset(void *dst, int c, size_t n)
{
	if (n && !dst)
		return fail(EINVAL, "mnemo_tx_memset: NULL buffer");
	return set(self(), dst, c, n);
}

/* The value forms call the engine directly (not through the exported
 * mnemo_tx_load/store, a call through the PLT): they are the commonest
 * calls of a transaction. */
#define VALUE_FORMS(bits)                                                   \
	MNEMO_API uint##bits##_t mnemo_tx_get##bits(const uint##bits##_t *p) \
	{                                                                   \
		uint##bits##_t v = 0;                                       \
		if (!p)                                                     \
			return mnemo_tx_load(&v, p, sizeof(v)), 0;          \
		return load_value<sizeof(v)>(self(), &v, p) ? 0 : v;        \
	}                                                                   \
	MNEMO_API void mnemo_tx_set##bits(uint##bits##_t *p,               \
					  uint##bits##_t v)                 \
	{                                                                   \
		if (!p)                                                     \
			mnemo_tx_store(p, &v, sizeof(v));                   \
		else                                                        \
			store(self(), p, &v, sizeof(v));                    \
	}
VALUE_FORMS(8)
VALUE_FORMS(16)
VALUE_FORMS(32)
VALUE_FORMS(64)

MNEMO_API void *mnemo_tx_malloc(size_t size)
{
	return tx_malloc(self(), size);
}

MNEMO_API void mnemo_tx_free(void *ptr)
{
	tx_free(self(), ptr);
}

MNEMO_API int mnemo_tx_drain(mnemo_pool *pool)
{
	if (!pool)
		return fail(EINVAL, "mnemo_tx_drain: pool is NULL");
	return drain(pool);
}

/*
 * The MNEMO_TX block.  state 0: begin (or join) and run the body; state 1:
 * the body ended, normally or by a longjmp from a conflict or an abort;
 * state 2: done.  Only the outermost frame registers its jmp_buf, so a
 * conflict anywhere restarts the whole flattened transaction.
 */
MNEMO_API int mnemo_tx_frame_step(struct mnemo_tx_frame *f, int *rc)
{
	tx_desc *d = self();
	if (f->state == 0) {
		f->outer = d->depth == 0;
		int r = begin(d, mode::frame, f->outer ? &f->jb : nullptr);
		if (r) {
			*rc = r;
			return 0;
		}
		f->state = 1;
		return 1;
	}
	if (f->state != 1)
		return 0;
	int r;
	if (f->outer && d->jumped) {
		d->jumped = false;
		r = d->jump_err;
	} else {
		r = commit(d);
	}
	if (r == -EAGAIN && f->outer) {
		begin(d, mode::frame, &f->jb);
		return 1;
	}
	*rc = r;
	f->state = 2;
	return 0;
}
