/*
 * containers_map_unit.cc -- mnemo::map (mnemosyne_map.hpp) against
 * std::map as a model: every member; tens of thousands of random
 * operations (a tree several levels deep) with the tree's invariants
 * (mnemo_check: order, fill, depth, leaf chain, size) checked as it goes;
 * ordered iteration both ways and lower/upper_bound; 1 KiB values (out of
 * line), mnemo::string values and keys; values that survive a reopen;
 * an aborted transaction that undoes inserts and erases and frees their
 * nodes; two threads on one map inside transactions; whole-map scans
 * inside transactions while another thread writes.
 *
 * The tests that set a timeout all set the same one: with different
 * ones, Criterion's runner (2.4.1) leaks 48 bytes at exit, which fails
 * the sanitizer build.
 */
#include <criterion/criterion.h>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "mnemosyne_map.hpp"
#include "util.h"

using namespace std::string_view_literals;

namespace {

constexpr size_t kMiB = 1 << 20;

struct blob { /* a 1 KiB value: stored out of line */
	uint64_t tag;
	char fill[1016];
};
bool operator==(const blob &a, const blob &b)
{
	return std::memcmp(&a, &b, sizeof(blob)) == 0;
}
blob make_blob(uint64_t tag)
{
	blob b;
	b.tag = tag;
	std::memset(b.fill, (int)(tag & 0xff), sizeof(b.fill));
	return b;
}

using u64map = mnemo::map<uint64_t, uint64_t>;
using strval = mnemo::map<uint64_t, mnemo::string>;
using strkey = mnemo::map<mnemo::string, uint64_t>;
using blobmap = mnemo::map<uint64_t, blob>;

/* Plain copies of what an entry holds, to compare with the model. */
uint64_t plain(uint64_t x) { return x; }
std::string plain(const mnemo::string &s) { return s.str(); }
blob plain(const blob &b) { return b; }

struct rng {
	uint64_t x;
	uint64_t operator()(uint64_t n)
	{
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		return n ? x % n : 0;
	}
};

uint64_t live_blocks(mnemo_pool *p)
{
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(p, &st, sizeof(st)), 0);
	return st.live_blocks;
}

/* m holds exactly model, in order both ways, and its invariants hold. */
template <class M, class S> void same(const M &m, const S &model, const char *what)
{
	std::string why = m.mnemo_check();
	cr_assert(why.empty(), "%s: %s", what, why.c_str());
	cr_assert_eq(m.size(), model.size(), "%s: size %zu, model %zu", what,
		     m.size(), model.size());
	cr_assert_eq(m.empty(), model.empty());
	auto it = m.begin();
	for (const auto &e : model) {
		cr_assert(it != m.end(), "%s: ends early", what);
		cr_assert(plain(it->first) == e.first, "%s: key", what);
		cr_assert(plain((*it).second) == e.second, "%s: value", what);
		++it;
	}
	cr_assert(it == m.end(), "%s: longer than the model", what);
	auto back = m.end();
	for (auto r = model.rbegin(); r != model.rend(); ++r) {
		--back;
		cr_assert(plain(back->first) == r->first, "%s: backward", what);
	}
	cr_assert(back == m.begin());
}

/* lower_bound and upper_bound of k agree with the model. */
template <class M, class S, class A> void bounds(const M &m, const S &model, const A &k)
{
	auto lo = m.lower_bound(k);
	auto mlo = model.lower_bound(typename S::key_type(k));
	cr_assert_eq(lo == m.end(), mlo == model.end());
	if (mlo != model.end())
		cr_assert(plain(lo->first) == mlo->first);
	auto hi = m.upper_bound(k);
	auto mhi = model.upper_bound(typename S::key_type(k));
	cr_assert_eq(hi == m.end(), mhi == model.end());
	if (mhi != model.end())
		cr_assert(plain(hi->first) == mhi->first);
}

} // namespace

/* The sizes mnemosyne-cxx(3) states. */
Test(containers_map, layout)
{
	cr_assert_eq(sizeof(u64map), 48u + 8u, "header and scratch key");
	cr_assert_eq(u64map::kLeafCap, 14u);
	cr_assert_eq(u64map::kInnerCap, 15u);
	cr_assert_eq(blobmap::kLeafCap, 14u, "1 KiB values out of line");
	cr_assert_eq(strval::kLeafCap, 7u);
	cr_assert_eq(u64map::kLeafMin, 7u);
	cr_assert_eq(u64map::kInnerMin, 7u);
	mnemo::pool p = mnemo::pool::create(t_path("layout"), 16 * kMiB);
	auto &m = p.root<u64map>("m");
	for (uint64_t k = 0; k < 2000; k++)
		m[k] = k;
	uint64_t nodes = 0, before = live_blocks(p.get());
	cr_assert(m.mnemo_check(&nodes).empty());
	m.clear();
	cr_assert_eq(live_blocks(p.get()), before - nodes, "a block a node");
	cr_assert_gt(nodes, 2000u / 14);
}

Test(containers_map, members_against_std_map)
{
	mnemo::pool p = mnemo::pool::create(t_path("members"), 16 * kMiB);
	uint64_t base = live_blocks(p.get());
	auto &m = p.root<u64map>("m");
	std::map<uint64_t, uint64_t> model;
	cr_assert(m.empty() && m.size() == 0 && m.height() == 0);
	cr_assert(m.begin() == m.end() && m.find(1) == m.end());
	cr_assert_eq(m.erase(1), 0u);
	cr_assert(m.lower_bound(0) == m.end());
	auto r = m.insert(std::make_pair(10, 100));
	cr_assert(r.second && r.first->first == 10 && r.first->second == 100u);
	r = m.insert(std::make_pair(10, 5));
	cr_assert(!r.second && r.first->second == 100u, "insert keeps");
	r = m.emplace(20, 200);
	cr_assert(r.second);
	r = m.try_emplace(20, 7);
	cr_assert(!r.second && m.at(20) == 200u, "try_emplace keeps");
	r = m.try_emplace(30);
	cr_assert(r.second && m.at(30) == 0u, "value-initialized");
	r = m.insert_or_assign(30, 300);
	cr_assert(!r.second && m.at(30) == 300u, "assigned");
	r = m.insert_or_assign(40, 400);
	cr_assert(r.second);
	m[50] = 500;
	m[50] = 501;
	uint64_t fresh = m[60]; /* reading inserts a zero */
	cr_assert_eq(fresh, 0u);
	m[10] = m[20];
	model = {{10, 200}, {20, 200}, {30, 300}, {40, 400}, {50, 501}, {60, 0}};
	same(m, model, "members");
	cr_assert_eq(m.count(40), 1u);
	cr_assert(m.contains(50) && !m.contains(55) && m.count(55) == 0);
	cr_assert(m.find(55) == m.end());
	cr_assert_eq(m.find(40)->second, 400u);
	m.find(40)->second = 401; /* through an iterator */
	model[40] = 401;
	try {
		(void)m.at(55);
		cr_assert_fail("at() of a missing key did not throw");
	} catch (const std::out_of_range &) {
	}
	try {
		(void)std::as_const(m).at(55);
		cr_assert_fail("const at() of a missing key did not throw");
	} catch (const std::out_of_range &) {
	}
	cr_assert(!m.contains(55), "at() inserts nothing");
	for (uint64_t k = 0; k < 70; k += 5)
		bounds(m, model, k);
	auto it = m.erase(m.find(30));
	cr_assert_eq(it->first, 40u, "erase(it) returns the next");
	model.erase(30);
	it = m.erase(m.find(60));
	cr_assert(it == m.end());
	model.erase(60);
	cr_assert_eq(m.erase(10), 1u);
	cr_assert_eq(m.erase(10), 0u);
	model.erase(10);
	same(m, model, "erased");
	auto last = m.end();
	--last;
	cr_assert_eq(last->first, 50u);
	auto c = m.cbegin(); /* const_iterator from iterator */
	mnemo::map<uint64_t, uint64_t>::const_iterator ci = m.begin();
	cr_assert(c == ci);
	m.clear();
	model.clear();
	same(m, model, "cleared");
	cr_assert_eq(live_blocks(p.get()), base + 1, "clear frees every node");
	/* A map outside any pool cannot take a node. */
	u64map local;
	try {
		local[1] = 2;
		cr_assert_fail("a map on the stack took a node");
	} catch (const mnemo::error &e) {
		cr_assert_eq(e.code(), -EINVAL);
	}
	cr_assert(local.empty() && local.mnemo_check().empty());
}

/* Many operations, several levels; bounds, invariants, reopen. */
Test(containers_map, random_against_std_map, .timeout = 300)
{
	const char *path = t_path("random");
	std::map<uint64_t, uint64_t> model;
	uint64_t seed = t_seed();
	rng rnd{seed | 1};
	unsigned maxh = 0;
	{
		mnemo::pool p = mnemo::pool::create(path, 64 * kMiB);
		auto &m = p.root<u64map>("m");
		for (int i = 0; i < 40000; i++) {
			uint64_t k = rnd(6000) * 3, v = rnd(1 << 30);
			switch (rnd(10)) {
			case 0: case 1: case 2:
				m.insert(std::make_pair(k, v));
				model.insert({k, v});
				break;
			case 3:
				m.insert_or_assign(k, v);
				model.insert_or_assign(k, v);
				break;
			case 4:
				m[k] = v;
				model[k] = v;
				break;
			case 5: case 6:
				cr_assert_eq(m.erase(k), model.erase(k), "op %d", i);
				break;
			case 7: {
				auto it = m.lower_bound(k);
				auto mt = model.lower_bound(k);
				if (mt == model.end())
					break;
				it = m.erase(it);
				mt = model.erase(mt);
				cr_assert_eq(it == m.end(), mt == model.end());
				if (mt != model.end())
					cr_assert_eq(it->first, mt->first);
				break;
			}
			case 8:
				bounds(m, model, k);
				bounds(m, model, k + 1);
				break;
			default: {
				auto it = m.find(k);
				auto mt = model.find(k);
				cr_assert_eq(it == m.end(), mt == model.end());
				if (mt != model.end())
					cr_assert_eq(it->second, mt->second);
			}
			}
			if (m.height() > maxh)
				maxh = m.height();
			if (i % 4000 == 3999)
				same(m, model, "random");
			/* now and then, shrink a lot: merges up to the root */
			if (i % 10000 == 9999)
				for (uint64_t j = 0; j < 18000; j++)
					if (rnd(4))
						cr_assert_eq(m.erase(j), model.erase(j));
		}
		same(m, model, "random end");
		p.close();
	}
	cr_assert_geq(maxh, 4u, "only %u levels", maxh);
	mnemo::pool p = mnemo::pool::open(path);
	auto &m = p.root<u64map>("m");
	same(m, model, "reopened");
	uint64_t base = live_blocks(p.get());
	while (!model.empty()) { /* erase all in random order */
		auto mt = model.lower_bound(rnd(18000));
		if (mt == model.end())
			mt = model.begin();
		cr_assert_eq(m.erase(mt->first), 1u);
		model.erase(mt);
	}
	same(m, model, "emptied");
	cr_assert_eq(m.height(), 0u);
	cr_assert_lt(live_blocks(p.get()), base, "nodes freed");
}

/* 1 KiB values: each its own block; erase and clear free them. */
Test(containers_map, big_values_out_of_line, .timeout = 300)
{
	mnemo::pool p = mnemo::pool::create(t_path("blob"), 64 * kMiB);
	uint64_t base = live_blocks(p.get());
	auto &m = p.root<blobmap>("m");
	std::map<uint64_t, blob> model;
	rng rnd{t_seed() | 1};
	static_assert(blobmap::kLeafCap >= 10, "a pointer per value");
	for (int i = 0; i < 6000; i++) {
		uint64_t k = rnd(3000);
		if (rnd(3) == 0) {
			cr_assert_eq(m.erase(k), model.erase(k));
		} else {
			blob b = make_blob(rnd(1000));
			m[k] = b;
			model[k] = b;
		}
	}
	same(m, model, "blobs");
	cr_assert(m.at(model.begin()->first) == model.begin()->second);
	cr_assert_gt(live_blocks(p.get()), base + 1 + model.size(),
		     "a block per value, and the nodes");
	m.clear();
	cr_assert_eq(live_blocks(p.get()), base + 1, "every block freed");
}

/* map<uint64_t, mnemo::string>: values up to 1 KiB assigned from views,
 * changed in place, erased (blocks freed), kept across a reopen. */
Test(containers_map, string_values, .timeout = 300)
{
	const char *path = t_path("strval");
	std::map<uint64_t, std::string> model;
	rng rnd{t_seed() | 1};
	uint64_t base;
	{
		mnemo::pool p = mnemo::pool::create(path, 64 * kMiB);
		base = live_blocks(p.get());
		auto &m = p.root<strval>("m");
		for (int i = 0; i < 8000; i++) {
			uint64_t k = rnd(2000);
			std::string s(rnd(1025), (char)('a' + rnd(26)));
			switch (rnd(6)) {
			case 0: case 1:
				m[k] = std::string_view(s);
				model[k] = s;
				break;
			case 2:
				m.insert_or_assign(k, s);
				model.insert_or_assign(k, s);
				break;
			case 3:
				m.try_emplace(k, s);
				model.try_emplace(k, s);
				break;
			case 4:
				cr_assert_eq(m.erase(k), model.erase(k));
				break;
			default:
				if (model.count(k)) {
					m[k]->append("+\0"sv);
					model[k].append("+\0"sv);
					cr_assert(m[k] == model[k]);
				}
			}
		}
		same(m, model, "string values");
		m[7] = m[8]; /* a value of the map itself */
		model[7] = model[8];
		m.insert_or_assign(9, m.at(8));
		model[9] = model[8];
		same(m, model, "own values");
		p.close();
	}
	mnemo::pool p = mnemo::pool::open(path);
	auto &m = p.root<strval>("m");
	same(m, model, "reopened");
	m.clear();
	cr_assert_eq(live_blocks(p.get()), base + 1, "strings freed too");
}

/* map<mnemo::string, uint64_t>: ordered as std::string. */
Test(containers_map, string_keys, .timeout = 300)
{
	mnemo::pool p = mnemo::pool::create(t_path("strkey"), 64 * kMiB);
	uint64_t base = live_blocks(p.get());
	auto &m = p.root<strkey>("m");
	std::map<std::string, uint64_t> model;
	rng rnd{t_seed() | 1};
	auto key = [&] {
		std::string k = "k" + std::to_string(rnd(3000));
		if (rnd(4) == 0)
			k += std::string(rnd(100), '\0'); /* NUL bytes */
		return k;
	};
	for (int i = 0; i < 8000; i++) {
		std::string k = key();
		switch (rnd(5)) {
		case 0: case 1:
			m[k] = (uint64_t)i;
			model[k] = (uint64_t)i;
			break;
		case 2:
			m.emplace(k, (uint64_t)i);
			model.emplace(k, (uint64_t)i);
			break;
		case 3:
			cr_assert_eq(m.erase(k), model.erase(k));
			break;
		default:
			bounds(m, model, std::string_view(k));
		}
	}
	cr_assert_geq(m.height(), 3u);
	same(m, model, "string keys");
	cr_assert(m.find("k12"sv) == m.end() || model.count("k12"));
	m.clear();
	cr_assert_eq(live_blocks(p.get()), base + 1, "key blocks freed");
}

/* map<mnemo::string, mnemo::string>: both sides own blocks; erase,
 * erase(it) and clear free them all. */
Test(containers_map, string_keys_and_values, .timeout = 300)
{
	mnemo::pool p = mnemo::pool::create(t_path("strstr"), 64 * kMiB);
	uint64_t base = live_blocks(p.get());
	auto &m = p.root<mnemo::map<mnemo::string, mnemo::string>>("m");
	std::map<std::string, std::string> model;
	rng rnd{t_seed() | 1};
	for (int i = 0; i < 5000; i++) {
		std::string k = std::to_string(rnd(1500)) + std::string(rnd(40), 'k');
		std::string v(rnd(300), (char)('a' + rnd(26)));
		if (rnd(4) == 0) {
			cr_assert_eq(m.erase(k), model.erase(k));
		} else if (rnd(8) == 0) {
			auto it = m.lower_bound(k);
			auto mt = model.lower_bound(k);
			if (mt != model.end()) {
				it = m.erase(it);
				mt = model.erase(mt);
				cr_assert_eq(it == m.end(), mt == model.end());
			}
		} else {
			m[k] = v;
			model[k] = v;
		}
	}
	same(m, model, "string to string");
	cr_assert_geq(m.height(), 3u);
	m.clear();
	cr_assert_eq(live_blocks(p.get()), base + 1, "keys, values, nodes freed");
}

/* A caller's transaction that inserts and erases enough to split and
 * merge, then throws: the map and the heap are as before. */
Test(containers_map, abort_undoes_and_frees)
{
	mnemo::pool p = mnemo::pool::create(t_path("abort"), 32 * kMiB);
	auto &m = p.root<strval>("m");
	std::map<uint64_t, std::string> model;
	for (uint64_t k = 0; k < 300; k++) {
		m[k] = std::to_string(k);
		model[k] = std::to_string(k);
	}
	uint64_t blocks = live_blocks(p.get());
	unsigned h = m.height();
	try {
		mnemo::transaction([&] {
			for (uint64_t k = 300; k < 600; k++)
				m[k] = std::string(50, 'n');
			for (uint64_t k = 0; k < 250; k++)
				m.erase(k);
			cr_assert_eq(m.size(), 350u, "its own writes");
			cr_assert(m.mnemo_check().empty());
			throw std::runtime_error("roll back");
		});
		cr_assert_fail("the exception did not pass");
	} catch (const std::runtime_error &) {
	}
	same(m, model, "rolled back");
	cr_assert_eq(m.height(), h);
	cr_assert_eq(live_blocks(p.get()), blocks, "new nodes and strings freed");
	mnemo::transaction([&] { /* and committed, the same changes */
		for (uint64_t k = 300; k < 600; k++)
			m[k] = std::string(50, 'n');
		for (uint64_t k = 0; k < 250; k++)
			m.erase(k);
	});
	for (uint64_t k = 300; k < 600; k++)
		model[k] = std::string(50, 'n');
	for (uint64_t k = 0; k < 250; k++)
		model.erase(k);
	same(m, model, "committed");
}

/* Two threads on one map, disjoint key ranges, a few operations per
 * transaction; each thread's model must match at the end. */
Test(containers_map, two_threads, .timeout = 300)
{
	mnemo::pool p = mnemo::pool::create(t_path("threads"), 64 * kMiB);
	auto &m = p.root<strval>("m");
	std::map<uint64_t, std::string> models[2];
	uint64_t seed = t_seed();
	auto work = [&](int t) {
		rng rnd{(seed + (uint64_t)t * 7919) | 1};
		std::map<uint64_t, std::string> &mod = models[t];
		for (int i = 0; i < 3000; i++) {
			uint64_t k[2] = {rnd(1500) * 2 + (uint64_t)t,
					 rnd(1500) * 2 + (uint64_t)t};
			std::string s(rnd(100), (char)('a' + t));
			bool del = rnd(3) == 0;
			mnemo::transaction([&] {
				m[k[0]] = s;
				/* reads inside see the transaction's writes */
				auto it = m.find(k[0]);
				if (it == m.end() || it->second != s)
					throw std::logic_error("lost a write");
				if (del)
					m.erase(k[1]);
			});
			mod[k[0]] = s;
			if (del)
				mod.erase(k[1]);
		}
	};
	std::thread a(work, 0), b(work, 1);
	a.join();
	b.join();
	std::map<uint64_t, std::string> all = models[0];
	all.insert(models[1].begin(), models[1].end());
	same(m, all, "two threads");
}

/* A writer moves values between keys (an erase and an insert in one
 * transaction, splitting and merging nodes) while a reader scans the
 * whole map inside transactions: every scan sees the same number of
 * entries and the same total, in order, and the tree checks out. */
Test(containers_map, consistent_scans_while_writing, .timeout = 300)
{
	mnemo::pool p = mnemo::pool::create(t_path("scan"), 64 * kMiB);
	auto &m = p.root<u64map>("m");
	constexpr uint64_t kN = 600, kTotal = kN * (kN - 1) / 2;
	mnemo::transaction([&] {
		for (uint64_t k = 0; k < kN; k++)
			m[k * 4] = k;
	});
	std::atomic<bool> stop{false}, scanned{false};
	uint64_t seed = t_seed();
	std::thread writer([&] {
		rng rnd{seed | 1};
		while (!scanned) /* a scan first: they overlap from the start */
			std::this_thread::yield();
		for (int i = 0; i < 4000; i++)
			mnemo::transaction([&] {
				auto it = m.lower_bound(rnd(kN * 4));
				if (it == m.end())
					it = m.begin();
				uint64_t k = it->first, v = it->second;
				uint64_t to = rnd(kN * 40); /* may land far away */
				if (m.contains(to))
					return;
				m.erase(k);
				m[to] = v;
			});
		stop = true;
	});
	int scans = 0, during = 0;
	while (!stop || scans < 5) {
		during += !stop;
		uint64_t n = 0, sum = 0, last = 0;
		bool ordered = true;
		std::string why;
		mnemo::transaction([&] {
			n = sum = last = 0;
			ordered = true;
			for (auto it = std::as_const(m).begin(); it != m.end(); ++it) {
				ordered = ordered && (n == 0 || it->first > last);
				last = it->first;
				sum += it->second;
				n++;
			}
			if (scans % 8 == 0)
				why = m.mnemo_check();
		});
		cr_assert(ordered, "scan %d out of order", scans);
		cr_assert_eq(n, kN, "scan %d: %llu entries", scans,
			     (unsigned long long)n);
		cr_assert_eq(sum, kTotal, "scan %d: a torn move", scans);
		cr_assert(why.empty(), "%s", why.c_str());
		scans++;
		scanned = true;
	}
	writer.join();
	cr_log_info("%d scans, %d of them while the writer ran", scans, during);
	cr_assert(m.mnemo_check().empty());
	cr_assert_eq(m.size(), kN);
}

/* A value taken from the map itself while the insertion shifts it in its
 * leaf or splits that leaf (a reference into a leaf moves with its
 * entry): the new key gets the value as it was, for string and plain
 * values.  New keys go just below their source, so it moves. */
Test(containers_map, own_value_across_a_split, .timeout = 300)
{
	mnemo::pool p = mnemo::pool::create(t_path("ownsplit"), 64 * kMiB);
	auto &m = p.root<strval>("m");
	auto &n = p.root<mnemo::map<uint64_t, uint64_t>>("n");
	auto src = [](uint64_t k) { return 1000 * k + 500; };
	auto val = [](uint64_t k) {
		return std::string(20 + k, (char)('a' + k));
	};
	for (uint64_t k = 0; k < 10; k++) {
		m[src(k)] = std::string_view(val(k));
		n[src(k)] = k * 7;
	}
	for (uint64_t j = 1; j <= 60; j++) /* below each source: it moves */
		for (uint64_t k = 0; k < 10; k++) {
			if (j % 3 == 0)
				m.insert_or_assign(src(k) - j, m.at(src(k)));
			else if (j % 3 == 1)
				m.try_emplace(src(k) - j, m.at(src(k)));
			else
				m[src(k) - j] = m[src(k)];
			n.insert_or_assign(src(k) - j, n.at(src(k)));
		}
	for (uint64_t k = 0; k < 10; k++)
		for (uint64_t j = 0; j <= 60; j++) {
			cr_assert(m.at(src(k) - j) == val(k), "key %llu",
				  (unsigned long long)(src(k) - j));
			cr_assert_eq((uint64_t)n.at(src(k) - j), k * 7);
		}
	cr_assert(m.mnemo_check().empty());
	cr_assert(n.mnemo_check().empty());
}
