/*
 * containers_map_crash.cc -- mnemo::map<uint64_t, mnemo::string> at every
 * persist point (sim backend; drop, then torn words and lines), under the
 * durable allocation map (MNEMO_HEAP_GC=off: nothing collects a leak).
 * The base pool holds a map whose root (an inner node) and last leaf are
 * full; the script then inserts without a split, inserts so that a leaf,
 * the root and so the tree split (height 2 to 3), assigns long (a fresh
 * block) and short (logged) string values, erases without rebalancing,
 * with a borrow, with leaf merges and inner merges down to a root
 * collapse (height 3 to 2), erases through an iterator, aborts a
 * transaction, and clears.  After each crash the tree's invariants hold,
 * the map is exactly the model after the last operation that returned or
 * the one under way, and the heap holds exactly the map's blocks.  A
 * second base, three levels deep, has an insert split a leaf and the
 * inner node above it (not the root).
 *
 * The tests that set a timeout all set the same one: with different
 * ones, Criterion's runner (2.4.1) leaks 48 bytes at exit, which fails
 * the sanitizer build.
 */
#include <criterion/criterion.h>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "mnemosyne_map.hpp"
#include "util.h"

namespace {

using smap = mnemo::map<uint64_t, mnemo::string>;
using model_t = std::map<uint64_t, std::string>;
constexpr int kSeeds = 2;

/* Keys 0, 10, 20, ... below g_full: the root and the last leaf full
 * (found by a dry run, before any fork). */
uint64_t g_full;

std::string val(uint64_t k) { return "v" + std::to_string(k); }

template <class M> void prefill(M &m, uint64_t n)
{
	for (uint64_t k = 0; k < n; k++)
		m[k * 10] = std::string_view(val(k * 10));
}

/* The erase script's keys: from the front, past several merges. */
constexpr int kFirstErase = 6, kErases = 20;

/* Operation i of the script (M is smap or the model). */
template <class M> void op(M &m, int i)
{
	constexpr bool persistent = std::is_same_v<M, smap>;
	uint64_t last = g_full * 10;
	switch (i) {
	case 0: m[5] = std::string_view("five"); break;  /* no split */
	case 1: m[last] = std::string_view("splits"); break; /* leaf, root */
	case 2: m[20] = std::string(2000, 'L'); break;   /* a fresh block */
	case 3: m[20] = std::string_view("short"); break; /* logged */
	case 4: m.insert_or_assign(last + 5, std::string(40, 'x')); break;
	case 5: m.erase(5); break;                        /* no rebalance */
	case kFirstErase + kErases: /* through an iterator */
		m.erase(m.find(last));
		break;
	case kFirstErase + kErases + 1: /* aborted: leaves nothing */
		if constexpr (persistent) {
			try {
				mnemo::transaction([&] {
					for (uint64_t k = 1; k < 200; k += 2)
						m[k] = std::string_view("gone");
					m.erase(last + 5);
					throw std::runtime_error("abort");
				});
			} catch (const std::runtime_error &) {
			}
		}
		break;
	case kFirstErase + kErases + 2: m.clear(); break;
	default: /* 0, 10, 20, ...: a borrow, then merges */
		m.erase((uint64_t)(i - kFirstErase) * 10);
	}
}
constexpr int kOps = kFirstErase + kErases + 3;

model_t model(int k)
{
	model_t m;
	prefill(m, g_full);
	for (int i = 0; i < k; i++)
		op(m, i);
	return m;
}

smap *root(mnemo_pool *pool)
{
	void *v = nullptr;
	if (mnemo_root_get(pool, "m", &v))
		return nullptr;
	return static_cast<smap *>(v);
}

void work(mnemo_pool *pool, struct t_progress *pr)
{
	smap &m = *root(pool);
	for (int i = 0; i < kOps; i++) {
		T_BEGIN(pr);
		op(m, i);
		T_END(pr);
	}
}

/* The tree checks out, equals m, and the heap holds the root object,
 * the nodes and the values' blocks, no more (no leak). */
bool check(mnemo_pool *pool, int k)
{
	smap *m = root(pool);
	uint64_t nodes = 0;
	if (!m || !m->mnemo_check(&nodes).empty())
		return false;
	model_t want = model(k);
	if (m->size() != want.size())
		return false;
	uint64_t blocks = 1 + nodes;
	auto it = want.begin();
	for (auto e : std::as_const(*m)) {
		if (e.first != it->first || e.second.str() != it->second)
			return false;
		blocks += e.second.capacity() > 0;
		++it;
	}
	cr_assert_eq(mnemo_heap_check(pool), 0, "%s", mnemo_errormsg());
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(pool, &st, sizeof(st)), 0);
	cr_assert_eq(st.live_blocks, blocks, "%llu blocks, %llu reachable",
		     (unsigned long long)st.live_blocks,
		     (unsigned long long)blocks);
	return true;
}

/* The smallest n whose prefill makes the tree 3 levels deep: n - 1
 * keys leave the root and the last leaf full. */
uint64_t find_full()
{
	mnemo::pool p = mnemo::pool::create(t_path("dry"), 16 << 20);
	auto &m = p.root<smap>("m");
	uint64_t n = 0;
	while (m.height() < 3)
		m[n++ * 10] = std::string_view("x");
	return n - 1;
}

/* The script reaches what it is meant to: heights 2, 3, 2. */
void dry_run()
{
	mnemo::pool p = mnemo::pool::create(t_path("dry2"), 16 << 20);
	auto &m = p.root<smap>("m");
	prefill(m, g_full);
	cr_assert_eq(m.height(), 2u);
	unsigned h[kOps];
	for (int i = 0; i < kOps; i++) {
		op(m, i);
		h[i] = m.height();
	}
	cr_assert_eq(h[0], 2u, "no split");
	cr_assert_eq(h[1], 3u, "the root split");
	cr_assert_eq(h[kFirstErase + kErases - 1], 2u, "the root collapsed");
}

/* ---- a split of an inner node that is not the root ---- */

/* Keys below g_deep (ascending, height 3): inserting g_deep * 10 splits
 * the last leaf and its parent, not the root (found by a dry run). */
uint64_t g_deep;

template <class M> void deep_op(M &m, int i)
{
	if (i == 0)
		m[g_deep * 10] = std::string_view("deep");
	else
		m.erase(g_deep * 10);
}

bool deep_check(mnemo_pool *pool, int k)
{
	model_t want;
	prefill(want, g_deep);
	for (int i = 0; i < k; i++)
		deep_op(want, i);
	smap *m = root(pool);
	uint64_t nodes = 0;
	if (!m || !m->mnemo_check(&nodes).empty() || m->size() != want.size())
		return false;
	auto it = want.begin();
	for (auto e : std::as_const(*m))
		if (e.first != it->first || e.second.str() != (it++)->second)
			return false;
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(pool, &st, sizeof(st)), 0);
	cr_assert_eq(st.live_blocks, 1 + nodes + want.size(), "a leak");
	return mnemo_heap_check(pool) == 0;
}

void deep_work(mnemo_pool *pool, struct t_progress *pr)
{
	for (int i = 0; i < 2; i++) {
		T_BEGIN(pr);
		deep_op(*root(pool), i);
		T_END(pr);
	}
}

/* The first n (height 3) whose insertion adds two nodes: a leaf and an
 * inner one below the root. */
uint64_t find_deep()
{
	mnemo::pool p = mnemo::pool::create(t_path("dry3"), 32 << 20);
	auto &m = p.root<smap>("m");
	uint64_t n = 0, before = 0, after = 0;
	for (;; n++) {
		m.mnemo_check(&before);
		unsigned h = m.height();
		m[n * 10] = std::string_view(val(n * 10));
		m.mnemo_check(&after);
		if (h == 3 && m.height() == 3 && after == before + 2)
			return n;
	}
}

} // namespace

Test(containers_map_crash, inner_split_below_the_root, .timeout = 1800)
{
	setenv("MNEMO_HEAP_GC", "off", 1);
	g_deep = find_deep();
	const char *base = t_path("mdeep");
	{
		mnemo::pool p = mnemo::pool::create(base, 32 << 20);
		prefill(p.root<smap>("m"), g_deep);
		p.close();
	}
	t_crash_modes(base, deep_work, deep_check, kSeeds);
	unsetenv("MNEMO_HEAP_GC");
}

Test(containers_map_crash, every_persist_point, .timeout = 1800)
{
	setenv("MNEMO_HEAP_GC", "off", 1); /* a leak would stay */
	g_full = find_full();
	dry_run();
	const char *base = t_path("mcrash");
	{
		mnemo::pool p = mnemo::pool::create(base, 16 << 20);
		prefill(p.root<smap>("m"), g_full);
		p.close();
	}
	t_crash_modes(base, work, check, kSeeds);
	unsetenv("MNEMO_HEAP_GC");
}
