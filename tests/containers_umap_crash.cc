/*
 * containers_umap_crash.cc -- mnemo::unordered_map at every persist point
 * (sim backend; drop, then torn words and lines), under the durable
 * allocation map (MNEMO_HEAP_GC=off: nothing collects a leak).  The
 * scripts insert (the seventeenth key doubles the buckets), assign string
 * values short (logged) and long (a fresh block), erase by key and by
 * iterator, rehash, clear, abort a transaction, and join several changes
 * in one.  After each crash the map's invariants hold (every node in its
 * bucket, size the count of nodes, no key twice), it equals the model
 * after the last operation that returned or the one under way, and the
 * heap checks out holding exactly the blocks the map reaches (no leak).
 */
#include <criterion/criterion.h>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "mnemosyne_unordered_map.hpp"
#include "util.h"

namespace {

using num_str = mnemo::unordered_map<uint64_t, mnemo::string>;
using str_num = mnemo::unordered_map<mnemo::string, uint64_t>;
using num_model = std::unordered_map<uint64_t, std::string>;
using str_model = std::unordered_map<std::string, uint64_t>;
constexpr int kOps = 28;
constexpr int kStrOps = 22;
constexpr int kSeeds = 2;

std::string bytes(size_t n, unsigned from)
{
	std::string b(n, '\0');
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(unsigned char)(from + i * 5);
	return b;
}

template <class M> constexpr bool persistent()
{
	return std::is_same_v<M, num_str> || std::is_same_v<M, str_num>;
}

/* f as a transaction on the persistent side, plainly on the model. */
template <class M, class F> void tx(F f)
{
	if constexpr (persistent<M>())
		mnemo::transaction(f);
	else
		f();
}

/* On the persistent side, f in a transaction that throws: nothing of it
 * stays.  The model does nothing. */
template <class M, class F> void aborted(F f)
{
	if constexpr (persistent<M>()) {
		try {
			mnemo::transaction([&] {
				f();
				throw std::runtime_error("abort");
			});
		} catch (const std::runtime_error &) {
		}
	}
}

/* Operation i of the script (M is num_str or its model). */
template <class M> void op(M &m, int i)
{
	if (i < 17) { /* the seventeenth insertion doubles the buckets */
		std::string v = bytes(3 + 5 * i, i);
		if (i % 2)
			m.try_emplace(i * 7, std::string_view(v));
		else
			m.insert_or_assign(i * 7, std::string_view(v));
		return;
	}
	switch (i) {
	case 17: m.at(14) = std::string_view("short\0val", 9); break;
	case 18: m.at(21) = std::string_view(bytes(5000, 9)); break;
	case 19: m.erase(28); break;
	case 20: m.erase(m.find(35)); break;
	case 21: aborted<M>([&] {
			for (uint64_t k = 200; k < 230; k++)
				m.try_emplace(k, std::string_view("gone"));
			m.erase(0);
			m.at(7) = std::string_view(bytes(3000, 1));
		});
		break;
	case 22: m.rehash(128); break;
	case 23: tx<M>([&] {
			m.insert_or_assign(7, std::string_view(bytes(700, 2)));
			m.erase(42);
			m.try_emplace(1000, std::string_view("joined"));
		});
		break;
	case 24: m.insert_or_assign(1000, std::string_view(bytes(1024, 3))); break;
	case 25: m.clear(); break;
	case 26: m.try_emplace(5, std::string_view("after")); break;
	default: m.erase(5); break;
	}
}

/* Operation i of the string-key script (keys as const char *, which
 * both sides take). */
template <class M> void str_op(M &m, int i)
{
	std::string k = "key" + std::to_string(i % 19) + std::string(i, 'k');
	if (i < 17) {
		m.try_emplace(k.c_str(), (uint64_t)i);
		return;
	}
	switch (i) {
	case 17: m.insert_or_assign("key3kkk", 33u); break;
	case 18: m.erase("key5kkkkk"); break;
	case 19: tx<M>([&] {
			m.erase(m.find("key0"));
			m.try_emplace("new", 1u);
		});
		break;
	case 20: m.rehash(64); break;
	default: m.clear(); break;
	}
}

template <class Mo, class F> Mo model(int k, F f)
{
	Mo m;
	for (int i = 0; i < k; i++)
		f(m, i);
	return m;
}

template <class T> T *root(mnemo_pool *pool, const char *name)
{
	void *v = nullptr;
	if (mnemo_root_get(pool, name, &v))
		return nullptr;
	return static_cast<T *>(v);
}

/* The heap checks out and holds exactly `blocks` blocks. */
bool heap_holds(mnemo_pool *pool, uint64_t blocks)
{
	cr_assert_eq(mnemo_heap_check(pool), 0, "%s", mnemo_errormsg());
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(pool, &st, sizeof(st)), 0);
	cr_assert_eq(st.live_blocks, blocks,
		     "%llu blocks allocated, %llu reachable (a leak)",
		     (unsigned long long)st.live_blocks,
		     (unsigned long long)blocks);
	return true;
}

/* Whether m (its invariants holding) equals mo; counts its blocks. */
bool num_is(const num_str &m, const num_model &mo, uint64_t *blocks)
{
	if (!m.mnemo_check() || m.size() != mo.size())
		return false;
	*blocks += m.bucket_count() > 0;
	for (auto [k, v] : m) {
		auto it = mo.find(k);
		if (it == mo.end() || v.str() != it->second)
			return false;
		*blocks += 1 + (v.capacity() > 0);
	}
	return true;
}

bool str_is(const str_num &m, const str_model &mo, uint64_t *blocks)
{
	if (!m.mnemo_check() || m.size() != mo.size())
		return false;
	*blocks += m.bucket_count() > 0;
	for (auto [k, v] : m) {
		auto it = mo.find(k.str());
		if (it == mo.end() || v != it->second)
			return false;
		*blocks += 1 + (k.capacity() > 0);
	}
	return true;
}

void work(mnemo_pool *pool, struct t_progress *pr)
{
	num_str &m = *root<num_str>(pool, "m");
	for (int i = 0; i < kOps; i++) {
		T_BEGIN(pr);
		op(m, i);
		T_END(pr);
	}
}

bool check(mnemo_pool *pool, int k)
{
	num_str *m = root<num_str>(pool, "m");
	uint64_t blocks = 1; /* the root object */
	return m && num_is(*m, model<num_model>(k, op<num_model>), &blocks) &&
	       heap_holds(pool, blocks);
}

void str_work(mnemo_pool *pool, struct t_progress *pr)
{
	str_num &m = *root<str_num>(pool, "m");
	for (int i = 0; i < kStrOps; i++) {
		T_BEGIN(pr);
		str_op(m, i);
		T_END(pr);
	}
}

bool str_check(mnemo_pool *pool, int k)
{
	str_num *m = root<str_num>(pool, "m");
	uint64_t blocks = 1;
	return m &&
	       str_is(*m, model<str_model>(k, str_op<str_model>), &blocks) &&
	       heap_holds(pool, blocks);
}

template <class T> const char *base_pool(const char *tag)
{
	const char *base = t_path(tag);
	mnemo::pool p = mnemo::pool::create(base, 16 << 20);
	p.root<T>("m");
	p.close();
	return base;
}

} // namespace

Test(containers_umap_crash, uint64_keys_string_values, .timeout = 900)
{
	setenv("MNEMO_HEAP_GC", "off", 1); /* a leak would stay */
	t_crash_modes(base_pool<num_str>("umc"), work, check, kSeeds);
	unsetenv("MNEMO_HEAP_GC");
}

Test(containers_umap_crash, string_keys, .timeout = 900)
{
	setenv("MNEMO_HEAP_GC", "off", 1);
	t_crash_modes(base_pool<str_num>("umcs"), str_work, str_check, kSeeds);
	unsetenv("MNEMO_HEAP_GC");
}
