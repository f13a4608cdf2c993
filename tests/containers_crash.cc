/*
 * containers_crash.cc -- mnemo::vector at every persist point (sim
 * backend; drop, then torn words and lines): pushes that reallocate,
 * assignments, pops and resizes, each one transaction.  After each crash
 * the vector's invariants hold and it equals the model after the last
 * operation that returned, or the one under way.
 */
#include <criterion/criterion.h>
#include <cstdint>
#include <vector>

#include "mnemosyne_vector.hpp"
#include "util.h"

namespace {

using vec = mnemo::vector<uint64_t>;
constexpr int kOps = 24;

/* Operation i of the script, on the vector or on the model (V is
 * mnemo::vector or std::vector: the same members). */
template <class V> void op(V &v, int i)
{
	if (i % 6 == 5)
		v.pop_back();
	else if (i % 6 == 4)
		v[v.size() / 2] = 1000 + i;
	else if (i == 13)
		v.resize(v.size() + 3);
	else
		v.push_back(i * 11 + 1);
}

/* The model after k operations. */
std::vector<uint64_t> model(int k)
{
	std::vector<uint64_t> m;
	for (int i = 0; i < k; i++)
		op(m, i);
	return m;
}

vec *root(mnemo_pool *pool)
{
	void *v = nullptr;
	if (mnemo_root_get(pool, "v", &v))
		return nullptr;
	return static_cast<vec *>(v);
}

void work(mnemo_pool *pool, struct t_progress *pr)
{
	vec &v = *root(pool);
	for (int i = 0; i < kOps; i++) {
		T_BEGIN(pr);
		op(v, i);
		T_END(pr);
	}
}

bool check(mnemo_pool *pool, int k)
{
	vec *v = root(pool);
	if (!v || v->size() > v->capacity())
		return false;
	if (v->capacity() &&
	    pmalloc_usable_size((void *)v->data()) < v->capacity() * 8)
		return false;
	std::vector<uint64_t> m = model(k);
	return std::vector<uint64_t>(v->begin(), v->end()) == m &&
	       mnemo_heap_check(pool) == 0;
}

} // namespace

Test(containers_crash, vector_at_every_persist_point, .timeout = 600)
{
	const char *base = t_path("vcrash");
	{
		mnemo::pool p = mnemo::pool::create(base, 16 << 20);
		p.root<vec>("v");
		p.close();
	}
	t_crash_modes(base, work, check, 2);
}
