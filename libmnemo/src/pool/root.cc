/*
 * root.cc -- named roots: durable name -> pointer bindings.
 *
 * Binding a new name publishes a slot (two persist points); rebinding an
 * existing name replaces `value` with one atomic 8-byte store (one persist
 * point; `value` is outside the slot checksum for exactly this reason);
 * unbinding retires the slot (one persist point).
 */
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/export.h"
#include "mnemosyne.h"
#include "pool/pool.h"


using namespace mnemo;
using layout::slot;

namespace {

/* Index of the live root named `name`, or of a free slot (*live = false),
 * or -1 if neither exists. */
long root_lookup(const mnemo_pool *pool, const char *name, bool *live)
{
	const slot *t = pool->roots();
	long free_slot = -1;
	for (uint32_t i = 0; i < pool->hdr.root_slots; i++) {
		if (t[i].state == layout::kSlotLive) {
			if (slot_name_is(&t[i], name)) {
				*live = true;
				return i;
			}
		} else if (free_slot < 0) {
			free_slot = i;
		}
	}
	*live = false;
	return free_slot;
}

int root_args(mnemo_pool *pool, const char *name)
{
	if (!pool)
		return fail(EINVAL, "root: pool is NULL");
	return name_check(name, false);
}

/* The live slot bound to `name`, or NULL with -ENOENT in *rc.
 * pre: pool->mu held, arguments checked. */
slot *live_root(mnemo_pool *pool, const char *name, int *rc)
{
	bool live;
	long i = root_lookup(pool, name, &live);
	if (live)
		return &pool->roots()[i];
	*rc = fail(ENOENT, "no root named \"%s\" in pool %s", name,
		   pool->path.c_str());
	return nullptr;
}

} // namespace

MNEMO_API int mnemo_root_set(mnemo_pool *pool, const char *name, void *ptr)
{
	int rc = root_args(pool, name);
	if (rc)
		return rc;
	std::lock_guard<std::mutex> g(pool->mu);
	bool live;
	long i = root_lookup(pool, name, &live);
	if (i < 0)
		return fail(ENOSPC, "pool %s: all %u root slots are in use",
			    pool->path.c_str(), pool->hdr.root_slots);
	slot *s = &pool->roots()[i];
	if (live) {
		scm::store64(&s->value, (uint64_t)ptr);
		scm::persist(&s->value, sizeof(s->value));
		return 0;
	}
	slot body{};
	body.value = (uint64_t)ptr;
	body.gen = pool->next_gen++;
	snprintf(body.name, sizeof(body.name), "%s", name);
	slot_publish(s, body);
	return 0;
}

MNEMO_API int mnemo_root_get(mnemo_pool *pool, const char *name, void **ptrp)
{
	int rc = root_args(pool, name);
	if (rc)
		return rc;
	if (!ptrp)
		return fail(EINVAL, "mnemo_root_get: ptrp is NULL");
	std::lock_guard<std::mutex> g(pool->mu);
	slot *s = live_root(pool, name, &rc);
	if (s)
		*ptrp = (void *)__atomic_load_n(&s->value, __ATOMIC_ACQUIRE);
	return rc;
}

MNEMO_API int mnemo_root_delete(mnemo_pool *pool, const char *name)
{
	int rc = root_args(pool, name);
	if (rc)
		return rc;
	std::lock_guard<std::mutex> g(pool->mu);
	slot *s = live_root(pool, name, &rc);
	if (s)
		slot_retire(s);
	return rc;
}

MNEMO_API int mnemo_root_foreach(mnemo_pool *pool, mnemo_root_cb cb,
				 void *arg)
{
	if (!pool || !cb)
		return fail(EINVAL, "mnemo_root_foreach: pool and cb are "
			    "required");
	std::vector<std::pair<std::string, void *>> v;
	{
		std::lock_guard<std::mutex> g(pool->mu);
		const slot *t = pool->roots();
		for (uint32_t i = 0; i < pool->hdr.root_slots; i++)
			if (t[i].state == layout::kSlotLive)
				v.push_back({t[i].name, (void *)t[i].value});
	}
	for (const auto &[name, ptr] : v)
		if (int rc = cb(name.c_str(), ptr, arg))
			return rc;
	return 0;
}
