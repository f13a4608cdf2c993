/*
 * slot.cc -- atomic publication and retirement of table slots.
 *
 * Write order (the whole crash-consistency argument of the tables):
 *   publish: 1. write the body (everything but `state`), checksum last;
 *            2. persist the slot                          (persist point);
 *            3. store state = kSlotLive, one 8-byte store; persist it.
 *   retire:  store state = kSlotFree; persist it.
 * A crash before step 3 is durable leaves the slot free (its body is
 * garbage and ignored); after it, the slot is live with a valid body.
 */
#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "base/hash.h"
#include "pool/pool.h"

namespace mnemo {

using layout::slot;

uint64_t slot_checksum(const slot *s)
{
	constexpr size_t lo = offsetof(slot, offset);
	constexpr size_t hi = offsetof(slot, checksum);
	return hash64((const char *)s + lo, hi - lo, layout::kSlotSeed);
}

void slot_publish(slot *dst, const slot &body)
{
	constexpr size_t lo = offsetof(slot, value);
	memcpy((char *)dst + lo, (const char *)&body + lo, sizeof(slot) - lo);
	dst->checksum = slot_checksum(dst);
	scm::persist(dst, sizeof(*dst));
	scm::store64(&dst->state, layout::kSlotLive);
	scm::persist(&dst->state, sizeof(dst->state));
}

void slot_retire(slot *s)
{
	scm::store64(&s->state, layout::kSlotFree);
	scm::persist(&s->state, sizeof(s->state));
}

int name_check(const char *name, bool allow_empty)
{
	if (!name)
		return allow_empty ? 0 : fail(EINVAL, "name is NULL");
	size_t n = strnlen(name, layout::kNameMax + 1);
	if (n == 0 && !allow_empty)
		return fail(EINVAL, "name is empty");
	if (n > layout::kNameMax)
		return fail(ENAMETOOLONG, "name is longer than %zu bytes",
			    layout::kNameMax);
	return 0;
}

bool slot_name_is(const slot *s, const char *name)
{
	return strncmp(s->name, name ? name : "", sizeof(s->name)) == 0;
}

} // namespace mnemo
