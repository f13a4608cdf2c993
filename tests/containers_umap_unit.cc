/*
 * containers_umap_unit.cc -- mnemo::unordered_map
 * (mnemosyne_unordered_map.hpp) against std::unordered_map as a model:
 * every member under thousands of random operations, with uint64_t keys
 * and string values up to 1 KiB, and mnemo::string keys looked up by
 * std::string_view; the map again after a reopen; an aborted transaction
 * that leaves nothing (no node, no block); at() throwing; growth, load
 * factor and rehash; a rehash after erasures, then a kill; iterators and
 * references; two threads on one map; and mnemo::allocator.
 */
#include <criterion/criterion.h>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unordered_map>
#include <unistd.h>
#include <vector>

#include "mnemosyne_unordered_map.hpp"
#include "util.h"

namespace {

constexpr size_t kMiB = 1 << 20;
using num_str = mnemo::unordered_map<uint64_t, mnemo::string>;
using str_num = mnemo::unordered_map<mnemo::string, uint64_t>;

uint64_t live_blocks(mnemo_pool *p)
{
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(p, &st, sizeof(st)), 0);
	return st.live_blocks;
}

/* A value of up to 1 KiB (NUL bytes included). */
std::string value(std::mt19937_64 &rng)
{
	std::string v(rng() % 1025, '\0');
	for (char &c : v)
		c = (char)(rng() % 256);
	return v;
}

/* Key i of a string-keyed map: lengths 1 to 40. */
std::string skey(uint64_t i)
{
	return "k" + std::to_string(i) + std::string(i % 40, 'x');
}

/* Blocks a map reaches: nodes, the bucket array, string blocks. */
template <class M> uint64_t blocks_of(const M &m)
{
	uint64_t n = m.bucket_count() ? 1 : 0;
	for (auto kv : m) {
		n++;
		if constexpr (!std::is_trivially_copyable_v<
				      typename M::key_type>)
			n += kv.first.capacity() > 0;
		if constexpr (!std::is_trivially_copyable_v<
				      typename M::mapped_type>)
			n += kv.second.capacity() > 0;
	}
	return n;
}

/* m holds exactly the model (read through find, at, count and a walk of
 * the iterators), and its invariants hold. */
void same(const num_str &m, const std::unordered_map<uint64_t, std::string> &mo)
{
	cr_assert(m.mnemo_check(), "invariants");
	cr_assert_eq(m.size(), mo.size());
	cr_assert_eq(m.empty(), mo.empty());
	size_t walked = 0;
	for (auto kv : m) {
		auto it = mo.find(kv.first);
		cr_assert(it != mo.end(), "key %llu not in the model",
			  (unsigned long long)kv.first);
		cr_assert(kv.second.str() == it->second);
		walked++;
	}
	cr_assert_eq(walked, mo.size());
	for (auto &[k, v] : mo) {
		cr_assert(m.contains(k) && m.count(k) == 1);
		cr_assert(m.at(k) == v);
		cr_assert(m.find(k)->second.str() == v);
	}
	cr_assert_leq(m.load_factor(), m.max_load_factor());
}

void same(const str_num &m, const std::unordered_map<std::string, uint64_t> &mo)
{
	cr_assert(m.mnemo_check(), "invariants");
	cr_assert_eq(m.size(), mo.size());
	size_t walked = 0;
	for (auto kv : m) {
		auto it = mo.find(kv.first.str());
		cr_assert(it != mo.end());
		cr_assert_eq(kv.second, it->second);
		walked++;
	}
	cr_assert_eq(walked, mo.size());
	for (auto &[k, v] : mo) {
		std::string_view sv(k);
		cr_assert(m.contains(sv) && m.count(sv) == 1);
		cr_assert_eq(m.at(sv), v);
		cr_assert_eq(m.find(sv)->second, v);
	}
}

/* One random operation on a uint64_t -> string map and its model. */
void num_op(num_str &m, std::unordered_map<uint64_t, std::string> &mo,
	    std::mt19937_64 &rng)
{
	uint64_t k = rng() % 600;
	std::string v = value(rng);
	bool had = mo.count(k);
	switch (rng() % 10) {
	case 0: {
		auto r = m.insert(std::pair<uint64_t, std::string_view>(k, v));
		cr_assert_eq(r.second, !had);
		mo.insert({k, v});
		cr_assert(r.first->second.str() == mo[k]);
		break;
	}
	case 1:
		cr_assert_eq(m.try_emplace(k, std::string_view(v)).second, !had);
		mo.try_emplace(k, v);
		break;
	case 2:
		cr_assert_eq(m.emplace(k, std::string_view(v)).second, !had);
		mo.emplace(k, v);
		break;
	case 3:
		cr_assert_eq(m.insert_or_assign(k, std::string_view(v)).second,
			     !had);
		mo.insert_or_assign(k, v);
		break;
	case 4: m[k] = std::string_view(v); mo[k] = v; break;
	case 5: m[k].append(v.substr(0, 30)); mo[k].append(v.substr(0, 30)); break;
	case 6: cr_assert_eq(m.erase(k), mo.erase(k)); break;
	case 7: {
		auto it = m.find(k);
		cr_assert_eq(it != m.end(), had);
		if (had) {
			auto next = std::next(it);
			cr_assert(m.erase(it) == next, "erase gives the next");
			mo.erase(k);
		}
		break;
	}
	case 8:
		if (rng() % 50 == 0) {
			m.clear();
			mo.clear();
		} else if (rng() % 20 == 0) {
			m.rehash(rng() % 2000);
		}
		break;
	default:
		cr_assert_eq(m.count(k), mo.count(k));
		if (had)
			cr_assert(m.at(k) == mo.at(k));
		break;
	}
}

void str_op(str_num &m, std::unordered_map<std::string, uint64_t> &mo,
	    std::mt19937_64 &rng)
{
	std::string k = skey(rng() % 500);
	std::string_view sv(k);
	uint64_t v = rng();
	bool had = mo.count(k);
	switch (rng() % 7) {
	case 0: cr_assert_eq(m.try_emplace(sv, v).second, !had); mo.try_emplace(k, v); break;
	case 1: m.insert_or_assign(sv, v); mo.insert_or_assign(k, v); break;
	case 2: ++m[sv]; ++mo[k]; break;
	case 3: m[k.c_str()] = v; mo[k] = v; break;
	case 4: cr_assert_eq(m.erase(sv), mo.erase(k)); break;
	case 5:
		if (had) {
			m.erase(m.find(sv));
			mo.erase(k);
		}
		break;
	default:
		cr_assert_eq(m.contains(sv), had);
		break;
	}
}

} // namespace

Test(containers_umap, uint64_keys_string_values_against_a_model)
{
	const char *path = t_path("umap_num");
	uint64_t seed = t_seed();
	std::mt19937_64 rng(seed);
	std::unordered_map<uint64_t, std::string> mo;
	{
		mnemo::pool p = mnemo::pool::create(path, 64 * kMiB);
		auto &m = p.root<num_str>("m");
		cr_assert(m.empty() && m.bucket_count() == 0 && m.begin() == m.end());
		for (int i = 0; i < 6000; i++) {
			num_op(m, mo, rng);
			if (i % 1000 == 999)
				same(m, mo);
		}
		same(m, mo);
		cr_assert_eq(live_blocks(p.get()), 1 + blocks_of(m), "no leak");
		p.close();
	}
	mnemo::pool p = mnemo::pool::open(path);
	auto &m = p.root<num_str>("m");
	same(m, mo);
	cr_assert_eq(mnemo_heap_check(p.get()), 0, "%s", mnemo_errormsg());
	cr_assert_eq(live_blocks(p.get()), 1 + blocks_of(m), "no leak");
	m.clear();
	cr_assert(m.empty() && m.begin() == m.end() && m.bucket_count() > 0);
	cr_assert_eq(live_blocks(p.get()), 2, "the root and the buckets");
}

Test(containers_umap, string_keys_looked_up_by_string_view)
{
	const char *path = t_path("umap_str");
	std::mt19937_64 rng(t_seed());
	std::unordered_map<std::string, uint64_t> mo;
	{
		mnemo::pool p = mnemo::pool::create(path, 32 * kMiB);
		auto &m = p.root<str_num>("m");
		for (int i = 0; i < 5000; i++)
			str_op(m, mo, rng);
		same(m, mo);
		cr_assert_eq(live_blocks(p.get()), 1 + blocks_of(m));
		p.close();
	}
	mnemo::pool p = mnemo::pool::open(path);
	auto &m = p.root<str_num>("m");
	same(m, mo);
	cr_assert(!m.contains("no such key"));
	/* A mnemo::string is a key too (hashed by its chars). */
	auto &probe = p.root<mnemo::string>("probe");
	probe = std::string_view(mo.begin()->first);
	cr_assert(m.contains(probe));
	cr_assert_eq(m.at(probe), mo.begin()->second);
	/* A string -> string map, both sides relocatable. */
	auto &ss = p.root<mnemo::unordered_map<mnemo::string, mnemo::string>>("ss");
	ss["a"] = "alpha";
	ss.insert_or_assign("b", std::string_view(std::string(2000, 'b')));
	ss["a"].append("bet");
	cr_assert(ss.at("a") == "alphabet" && ss.at("b").size() == 2000);
	cr_assert(ss.mnemo_check());
}

/* An insertion in a transaction that throws leaves nothing: no key, no
 * node, no value block, not even the bucket array it grew. */
Test(containers_umap, abort_undoes_an_insert_and_frees_its_node)
{
	mnemo::pool p = mnemo::pool::create(t_path("umap_abort"), 16 * kMiB);
	auto &m = p.root<num_str>("m");
	for (uint64_t k = 0; k < 16; k++)
		m[k] = "v";
	uint64_t before = live_blocks(p.get());
	size_t nb = m.bucket_count();
	try {
		mnemo::transaction([&] {
			m[100] = std::string_view(std::string(900, 'z'));
			cr_assert(m.contains(100) && m.bucket_count() > nb,
				  "the transaction sees its insert and growth");
			m.erase(3);
			throw std::runtime_error("abort");
		});
		cr_assert_fail("no throw");
	} catch (const std::runtime_error &) {
	}
	cr_assert(!m.contains(100) && m.contains(3));
	cr_assert_eq(m.size(), 16u);
	cr_assert_eq(m.bucket_count(), nb);
	cr_assert_eq(live_blocks(p.get()), before, "the node was freed");
	cr_assert(m.mnemo_check());
	cr_assert_eq(mnemo_heap_check(p.get()), 0);
	/* A committed caller's transaction keeps both. */
	mnemo::transaction([&] {
		m[100] = "kept";
		m.erase(3);
	});
	cr_assert(m.contains(100) && !m.contains(3) && m.size() == 16);
}

Test(containers_umap, at_throws_out_of_range)
{
	mnemo::pool p = mnemo::pool::create(t_path("umap_at"), 8 * kMiB);
	auto &m = p.root<mnemo::unordered_map<uint64_t, uint64_t>>("m");
	const auto &c = m;
	m[1] = 10;
	cr_assert_eq(m.at(1), 10u);
	cr_assert_eq(c.at(1), 10u);
	m.at(1) = 11;
	cr_assert_eq(c.at(1), 11u);
	int thrown = 0;
	try {
		(void)m.at(2);
	} catch (const std::out_of_range &) {
		thrown++;
	}
	try {
		(void)c.at(2);
	} catch (const std::out_of_range &) {
		thrown++;
	}
	cr_assert_eq(thrown, 2);
	cr_assert_eq(m.size(), 1u, "at() inserts nothing");
	auto &s = p.root<str_num>("s");
	try {
		(void)s.at("missing");
		cr_assert_fail("no throw");
	} catch (const std::out_of_range &) {
	}
}

/* Growth doubles the buckets, keeps the load factor at most 1, and
 * moves no node: references taken before stay valid. */
Test(containers_umap, growth_rehash_and_stable_references)
{
	mnemo::pool p = mnemo::pool::create(t_path("umap_grow"), 32 * kMiB);
	auto &m = p.root<num_str>("m");
	m[0] = "zero";
	mnemo::string *zero = &m[0];
	const char *chars = zero->data();
	size_t last = m.bucket_count();
	cr_assert_eq(last, 16u);
	for (uint64_t k = 1; k < 5000; k++) {
		m.try_emplace(k, std::string_view(std::to_string(k)));
		size_t nb = m.bucket_count();
		cr_assert((nb & (nb - 1)) == 0 && (nb == last || nb == 2 * last));
		cr_assert_leq(m.size(), nb);
		last = nb;
	}
	cr_assert_eq(&m[0], zero, "a node never moves");
	cr_assert_eq(zero->data(), chars);
	cr_assert(*zero == "zero");
	m.rehash(20000);
	cr_assert_eq(m.bucket_count(), 32768u);
	m.rehash(0); /* down to what the size needs */
	cr_assert_eq(m.bucket_count(), 8192u);
	m.reserve(9000);
	cr_assert_geq(m.bucket_count(), 9000u);
	cr_assert(m.mnemo_check());
	cr_assert_eq(&m[0], zero);
	/* Iteration: every key once, with structured bindings. */
	std::vector<int> seen(5000);
	for (auto [k, v] : m) {
		cr_assert(v == (k ? std::to_string(k) : "zero"));
		seen[k]++;
	}
	for (int s : seen)
		cr_assert_eq(s, 1);
	/* erase(iterator) walks the whole map. */
	for (auto it = m.begin(); it != m.end();)
		it = it->first % 2 ? m.erase(it) : std::next(it);
	cr_assert_eq(m.size(), 2500u);
	cr_assert(m.mnemo_check());
}

/* Erasures write the live links of the nodes before the erased ones;
 * their records stay in the log (no truncation pass in so few commits).
 * Two rehashes later that link is the free one again, and the second
 * rehash writes it with a plain store: the records must be retired
 * first, or the recovery after a kill replays them over the new chains.
 * (This failed when the rehash only flushed its links.) */
Test(containers_umap, rehash_after_erasures_then_a_kill)
{
	using num_num = mnemo::unordered_map<uint64_t, uint64_t>;
	const char *path = t_path("umap_rekill");
	mnemo::pool::create(path, 32 * kMiB);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		mnemo::pool p = mnemo::pool::open(path);
		auto &m = p.root<num_num>("m");
		for (uint64_t k = 0; k < 16; k++)
			m.insert_or_assign(k, k * 10);
		for (uint64_t k = 0; k < 16; k += 2)
			m.erase(k);
		for (uint64_t k = 16; k < 41; k++) /* rehashes at 17, 33 */
			m.insert_or_assign(k, k * 10);
		_exit(m.bucket_count() == 64 ? 0 : 1); /* no close */
	}
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %d", st);
	mnemo::pool p = mnemo::pool::open(path);
	auto &m = p.root<num_num>("m");
	cr_assert(m.mnemo_check(), "the chains after recovery");
	cr_assert_eq(m.size(), 33u);
	for (uint64_t k = 0; k < 41; k++)
		cr_assert_eq(m.count(k), k < 16 && k % 2 == 0 ? 0u : 1u,
			     "key %llu", (unsigned long long)k);
}

/* Two threads, each in transactions on its own keys and on one shared
 * key (a string that gets a char per transaction): each thread's keys
 * equal its model, and the shared value counts every transaction. */
Test(containers_umap, two_threads_on_one_map)
{
	mnemo::pool p = mnemo::pool::create(t_path("umap_threads"), 64 * kMiB);
	auto &m = p.root<mnemo::unordered_map<uint64_t, mnemo::string>>("m");
	constexpr int kOps = 1500;
	uint64_t seed = t_seed();
	std::unordered_map<uint64_t, std::string> model[2];
	auto work = [&](uint64_t t) {
		std::mt19937_64 rng(seed + t);
		for (int i = 0; i < kOps; i++) {
			uint64_t k = t << 32 | rng() % 300;
			std::string v = std::to_string(rng() % 100000);
			bool erase = rng() % 4 == 0;
			mnemo::transaction([&] {
				if (erase)
					m.erase(k);
				else
					m.insert_or_assign(k, std::string_view(v));
				/* the shared key: one char per transaction */
				m[UINT64_MAX].push_back('+');
			});
			if (erase)
				model[t].erase(k);
			else
				model[t][k] = v;
		}
	};
	std::thread a(work, 0), b(work, 1);
	a.join();
	b.join();
	cr_assert(m.mnemo_check());
	cr_assert_eq(m.at(UINT64_MAX).size(), 2u * kOps);
	cr_assert_eq(m.size(), model[0].size() + model[1].size() + 1);
	for (int t = 0; t < 2; t++)
		for (auto &[k, v] : model[t])
			cr_assert(m.at(k) == v);
}

Test(containers_umap, allocator_over_the_pool_heap)
{
	mnemo::pool p = mnemo::pool::create(t_path("umap_alloc"), 16 * kMiB);
	mnemo::allocator<uint64_t> a(p.get());
	mnemo::allocator<char> c(a);
	cr_assert(a == c && !(a != c) && c.get_pool() == p.get());
	uint64_t before = live_blocks(p.get());
	uint64_t *x = a.allocate(100);
	cr_assert_geq(pmalloc_usable_size(x), 800u, "a pool block");
	cr_assert_eq(live_blocks(p.get()), before + 1);
	a.deallocate(x, 100);
	cr_assert_eq(live_blocks(p.get()), before);
	/* In a caller's transaction: an abort frees, a deallocation waits
	 * for the commit. */
	try {
		mnemo::transaction([&] {
			x = a.allocate(10);
			throw std::runtime_error("abort");
		});
	} catch (const std::runtime_error &) {
	}
	cr_assert_eq(live_blocks(p.get()), before, "an abort frees");
	x = a.allocate(10);
	mnemo::transaction([&] {
		a.deallocate(x, 10);
		cr_assert_eq(live_blocks(p.get()), before + 1, "not yet");
	});
	cr_assert_eq(live_blocks(p.get()), before);
	{
		std::vector<uint64_t, mnemo::allocator<uint64_t>> v(a);
		for (uint64_t i = 0; i < 1000; i++)
			v.push_back(i);
		cr_assert_eq(v[999], 999u);
		cr_assert_gt(live_blocks(p.get()), before);
	}
	cr_assert_eq(live_blocks(p.get()), before);
	try {
		(void)a.allocate(SIZE_MAX / 4);
		cr_assert_fail("no throw");
	} catch (const std::bad_array_new_length &) {
	}
}

/* A rehash logs no word per node: with a 64 KiB log (8000 words) a map
 * grows to 20000 keys, through rehashes of up to 16384 nodes. */
Test(containers_umap, growth_is_not_bounded_by_the_log)
{
	setenv("MNEMO_TX_LOG_SIZE", "65536", 1);
	mnemo::pool p = mnemo::pool::create(t_path("umap_log"), 64 * kMiB);
	auto &m = p.root<mnemo::unordered_map<uint64_t, uint64_t>>("m");
	for (uint64_t k = 0; k < 20000; k++)
		m.try_emplace(k, k * 3);
	cr_assert_eq(m.bucket_count(), 32768u);
	m.rehash(70000);
	cr_assert(m.mnemo_check());
	for (uint64_t k = 0; k < 20000; k += 7)
		cr_assert_eq(m.at(k), k * 3);
	unsetenv("MNEMO_TX_LOG_SIZE");
}

/* Rehashes in one transaction, with erasures and insertions between
 * them (the second and third rehash relink through a link the first
 * made free, which this transaction wrote before): the map is right
 * in the transaction, after its commit, and after an abort. */
Test(containers_umap, several_rehashes_in_one_transaction)
{
	mnemo::pool p = mnemo::pool::create(t_path("umap_rehash"), 16 * kMiB);
	auto &m = p.root<mnemo::unordered_map<uint64_t, uint64_t>>("m");
	std::unordered_map<uint64_t, uint64_t> mo;
	for (uint64_t k = 0; k < 40; k++)
		m[k] = mo[k] = k;
	auto script = [&](auto &map) {
		for (uint64_t k = 0; k < 40; k += 3)
			map.erase(k);
		map.rehash(256);
		for (uint64_t k = 1; k < 40; k += 3)
			map.erase(k);
		for (uint64_t k = 100; k < 400; k++)
			map[k] = k + 1;
		map.rehash(4096);
		map.erase(101);
		map.rehash(64);
		map.erase(102);
	};
	try {
		mnemo::transaction([&] {
			script(m);
			throw std::runtime_error("abort");
		});
	} catch (const std::runtime_error &) {
	}
	cr_assert(m.mnemo_check());
	cr_assert_eq(m.size(), 40u);
	for (uint64_t k = 0; k < 40; k++)
		cr_assert_eq(m.at(k), k);
	mnemo::transaction([&] {
		script(m);
		cr_assert(m.mnemo_check(), "inside the transaction");
	});
	script(mo);
	cr_assert(m.mnemo_check());
	cr_assert_eq(m.size(), mo.size());
	for (auto &[k, v] : mo)
		cr_assert_eq(m.at(k), v);
	m.rehash(16); /* a rehash in a transaction of its own after it */
	cr_assert(m.mnemo_check());
	for (auto &[k, v] : mo)
		cr_assert_eq(m.at(k), v);
}

/* A reader iterates the whole map in transactions while a writer moves
 * amounts between keys, adds keys (rehashes included) and erases empty
 * ones, in transactions: every walk sees the total and size() nodes. */
Test(containers_umap, reader_walks_while_a_writer_rehashes)
{
	mnemo::pool p = mnemo::pool::create(t_path("umap_walk"), 32 * kMiB);
	auto &m = p.root<mnemo::unordered_map<uint64_t, uint64_t>>("m");
	for (uint64_t k = 0; k < 10; k++)
		m[k] = 100;
	uint64_t seed = t_seed();
	auto writer = [&] {
		std::mt19937_64 rng(seed);
		for (uint64_t i = 0; i < 3000; i++) {
			uint64_t a = rng() % (10 + i / 4), b = 10 + i / 4;
			mnemo::transaction([&] {
				m.try_emplace(b, 0u); /* grows the map */
				auto it = m.find(a);
				if (it == m.end() || it->second == 0)
					return;
				it->second -= 1;
				++m[b];
				if (it->second == 0)
					m.erase(it);
			});
		}
	};
	int walks = 0;
	auto reader = [&] {
		for (; walks < 400; walks++)
			mnemo::transaction([&] {
				uint64_t sum = 0, n = 0;
				for (auto kv : m) {
					sum += kv.second;
					n++;
				}
				cr_assert_eq(sum, 1000u, "a torn walk");
				cr_assert_eq(n, m.size());
			});
	};
	std::thread w(writer), r(reader);
	w.join();
	r.join();
	cr_assert_eq(walks, 400);
	cr_assert(m.mnemo_check());
	uint64_t sum = 0;
	for (auto kv : m)
		sum += kv.second;
	cr_assert_eq(sum, 1000u);
	cr_assert_gt(m.bucket_count(), 16u, "the writer rehashed");
}

/* A reader paused in the middle of a walk while two rehashes commit: the
 * second relinks, with plain stores, the very links the reader follows.
 * Its transaction must run again (its second read of the rehash count
 * fails validation) and see every key once, never a mix of two layouts. */
Test(containers_umap, reader_paused_across_two_rehashes_runs_again)
{
	mnemo::pool p = mnemo::pool::create(t_path("paused"), 64 * kMiB);
	auto &m = p.root<mnemo::unordered_map<uint64_t, uint64_t>>("m");
	const uint64_t n = 64;
	for (uint64_t i = 0; i < n; i++)
		m.insert_or_assign(i, i);
	std::atomic<int> phase{0};
	size_t seen = 0, dups = 0, attempts = 0;
	std::thread r([&] {
		mnemo::transaction([&] {
			attempts++;
			std::set<uint64_t> keys;
			seen = dups = 0;
			auto it = m.begin();
			for (int k = 0; k < 3 && it != m.end(); k++, ++it)
				dups += !keys.insert((*it).first).second, seen++;
			if (phase.load() == 0) { /* the first attempt waits */
				phase = 1;
				while (phase.load() != 2)
					std::this_thread::yield();
			}
			for (; it != m.end() && seen < 10 * n; ++it)
				dups += !keys.insert((*it).first).second, seen++;
		});
	});
	while (phase.load() != 1)
		std::this_thread::yield();
	m.rehash(256);
	m.rehash(1024);
	phase = 2;
	r.join();
	cr_assert_eq(seen, n, "the reader walked %zu nodes of %llu", seen,
		     (unsigned long long)n);
	cr_assert_eq(dups, 0u);
	cr_assert_geq(attempts, 2u, "the reader's first attempt committed");
	cr_assert(m.mnemo_check());
}

/* std::vector with mnemo::allocator in a transaction that conflicts: the
 * vector's destructor deallocates while the conflict unwinds, which must
 * not throw (it would terminate the program). */
Test(containers_umap, allocator_deallocate_during_a_conflict)
{
	mnemo::pool p = mnemo::pool::create(t_path("dealloc"), 64 * kMiB);
	auto &x = p.root<uint64_t>("x");
	std::atomic<int> phase{0};
	std::thread b([&] {
		mnemo::transaction([&] {
			mnemo::detail::tx_set(&x, (uint64_t)1); /* x's lock */
			if (phase.load() == 0) {
				phase = 1;
				while (phase.load() != 2)
					std::this_thread::yield();
			}
		});
	});
	while (phase.load() != 1)
		std::this_thread::yield();
	int attempts = 0;
	mnemo::transaction([&] {
		attempts++;
		std::vector<int, mnemo::allocator<int>> v{
			mnemo::allocator<int>(p.get())};
		v.push_back(1);
		if (attempts > 1)
			phase = 2; /* b may finish once we have conflicted */
		(void)mnemo::detail::tx_get(&x); /* b holds it: a conflict */
	});
	b.join();
	cr_assert_geq(attempts, 2);
	cr_assert_eq(x, 1u);
}
