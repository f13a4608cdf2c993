/*
 * persist.cc -- the public persistence primitives, statistics and emulator
 * controls; thin wrappers over scm/.
 *
 * Persist points per call (flushed lines are those the range covers):
 *   mnemo_persist        1 fence
 *   mnemo_store64        1 line, 1 fence
 *   mnemo_shadow_update  lines(len) + 1 line, 2 fences
 */
#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "base/export.h"
#include "mnemosyne.h"
#include "scm/scm.h"
#include "tx/stm.h"
#include "tx/txlog.h"


using namespace mnemo;

MNEMO_API void mnemo_flush(const void *addr, size_t len)
{
	scm::flush(addr, len);
}

/*
 * The non-transactional persist points settle the transaction logs first
 * (tx::settle_*): a committed record is replayed at recovery until a pass
 * retires it, and replaying it would undo a plain store made since to the
 * same bytes.  The pass flushes the bytes as they are now (with the plain
 * store) and then retires the record.  It costs nothing when no record is
 * live, which is the case unless transactions and plain stores mix.
 */
namespace {
/* Persist [p, p+n) as a non-transactional persist point (see above). */
void persist_settled(const void *p, size_t n)
{
	scm::flush(p, n);
	tx::settle_at(p);
	scm::fence();
}
} // namespace

MNEMO_API void mnemo_fence(void)
{
	tx::settle_all();
	scm::fence();
}

MNEMO_API void mnemo_persist(const void *addr, size_t len)
{
	persist_settled(addr, len);
}

MNEMO_API void mnemo_write(void *dst, const void *src, size_t len)
{
	if (len)
		memcpy(scm::wr(dst), src, len); /* strict: through the mirror */
}

MNEMO_API int mnemo_store64(uint64_t *dst, uint64_t value)
{
	if (!dst || (uintptr_t)dst % 8)
		return fail(EINVAL, "mnemo_store64: %p is not 8-byte aligned",
			    (void *)dst);
	scm::store64(scm::wr(dst), value); /* strict: through the mirror */
	persist_settled(dst, sizeof(*dst));
	return 0;
}

MNEMO_API int mnemo_shadow_update(void **slot, void *spare, const void *src,
				  size_t len)
{
	if (!slot || (uintptr_t)slot % 8 || !spare || (!src && len))
		return fail(EINVAL, "mnemo_shadow_update: slot must be "
			    "8-byte aligned, spare and src non-NULL");
	const char *s = (const char *)src, *d = (const char *)spare;
	const char *live = (const char *)*slot, *sl = (const char *)slot;
	if (len && s < d + len && d < s + len)
		return fail(EINVAL, "mnemo_shadow_update: spare overlaps src");
	/* Writing into the live copy or over the slot would lose the
	 * all-or-nothing guarantee. */
	if (live && len && live < d + len && d < live + len)
		return fail(EINVAL, "mnemo_shadow_update: spare overlaps the "
			    "live copy *slot");
	if (sl + sizeof(void *) > d && sl < d + len)
		return fail(EINVAL, "mnemo_shadow_update: slot lies inside "
			    "spare");
	/* Order: the copy is durable before the pointer can point at it. */
	memcpy(scm::wr(spare), src, len); /* strict: through the mirror */
	scm::persist(spare, len);
	scm::store64(scm::wr((uint64_t *)slot), (uint64_t)spare);
	persist_settled(slot, sizeof(*slot));
	return 0;
}

MNEMO_API uint64_t mnemo_stat_get(enum mnemo_stat stat)
{
	switch (stat) {
	case MNEMO_STAT_TX_COMMITS:
		return tx::self()->commits;
	case MNEMO_STAT_TX_ABORTS:
		return tx::self()->aborts;
	case MNEMO_STAT_TX_ATOMICS:
		return tx::tl_atomics;
	case MNEMO_STAT_TX_SHARED_LINES:
		return tx::tl_shared_lines;
	case MNEMO_STAT_STRICT_REFS:
		return tx::tl_strict_refs;
	default:
		return scm::stat_get((unsigned)stat);
	}
}

MNEMO_API void mnemo_stat_reset(void)
{
	scm::stat_reset();
	tx::self()->commits = tx::self()->aborts = 0;
	tx::tl_atomics = tx::tl_shared_lines = tx::tl_strict_refs = 0;
}

MNEMO_API void mnemo_emul_set(unsigned flush_ns, unsigned fence_ns)
{
	scm::emul_set(flush_ns, fence_ns);
}

MNEMO_API const char *mnemo_flush_instruction(void)
{
	return scm::flush_instruction();
}
