/*
 * containers_unit.cc -- the C++ pool handle and objects (mnemosyne.hpp:
 * pool, root, make_persistent, delete_persistent) and mnemo::vector
 * (mnemosyne_vector.hpp): std::vector's meaning, values that survive a
 * reopen, an exception that rolls a whole transaction back, growth inside
 * one transaction, and isolation between threads.
 */
#include <criterion/criterion.h>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "mnemosyne_vector.hpp"
#include "util.h"

namespace {

constexpr size_t kMiB = 1 << 20;

struct point {
	int64_t x, y;
};

} // namespace

Test(containers, pool_open_or_create_and_root)
{
	const char *path = t_path("root");
	{
		mnemo::pool p = mnemo::pool::open_or_create(path, 8 * kMiB);
		point &pt = p.root<point>("origin");
		cr_assert(pt.x == 0 && pt.y == 0, "a new root is zero");
		mnemo::transaction([&] {
			mnemo::detail::tx_set(&pt.x, (int64_t)3);
			mnemo::detail::tx_set(&pt.y, (int64_t)-4);
		});
		p.close();
	}
	mnemo::pool p = mnemo::pool::open_or_create(path, 8 * kMiB);
	point &pt = p.root<point>("origin");
	cr_assert(pt.x == 3 && pt.y == -4);
	/* Binding a root is not transactional: refused inside one. */
	try {
		mnemo::transaction([&] { p.root<point>("inside"); });
		cr_assert_fail("root<T> inside a transaction did not throw");
	} catch (const mnemo::error &e) {
		cr_assert_eq(e.code(), -EINVAL);
	}
	void *none = nullptr;
	cr_assert_eq(mnemo_root_get(p.get(), "inside", &none), -ENOENT);
	try {
		mnemo::pool::open(t_path("missing"));
		cr_assert_fail("opening a missing pool did not throw");
	} catch (const mnemo::error &e) {
		cr_assert_eq(e.code(), -ENOENT);
	}
}

Test(containers, make_and_delete_persistent)
{
	mnemo::pool p = mnemo::pool::create(t_path("make"), 8 * kMiB);
	point *a = p.make_persistent<point>(point{1, 2});
	cr_assert(a->x == 1 && a->y == 2);
	cr_assert_geq(pmalloc_usable_size(a), sizeof(point));
	mnemo::delete_persistent(a);
	cr_assert_eq(pmalloc_usable_size(a), 0, "freed at commit");

	/* An abort frees what the transaction made. */
	point *b = nullptr;
	try {
		mnemo::transaction([&] {
			b = p.make_persistent<point>(point{5, 6});
			throw std::runtime_error("no");
		});
	} catch (const std::runtime_error &) {
	}
	cr_assert_not_null(b);
	cr_assert_eq(pmalloc_usable_size(b), 0, "an abort frees");
}

Test(containers, vector_behaves_as_std_vector)
{
	const char *path = t_path("vec");
	std::vector<uint64_t> model;
	{
		mnemo::pool p = mnemo::pool::create(path, 16 * kMiB);
		auto &v = p.root<mnemo::vector<uint64_t>>("v");
		cr_assert(v.empty() && v.size() == 0 && v.capacity() == 0);
		for (uint64_t i = 0; i < 1000; i++) {
			v.push_back(i * 7);
			model.push_back(i * 7);
		}
		v[10] = 99;
		model[10] = 99;
		v.pop_back();
		model.pop_back();
		v.resize(1200);
		model.resize(1200);
		v.resize(500);
		model.resize(500);
		v.resize(600); /* zeroes what an earlier resize left */
		model.resize(600);
		cr_assert_geq(v.capacity(), 1000u);
		cr_assert_eq(v.front(), model.front());
		cr_assert_eq(v.back(), model.back());
		try {
			(void)v.at(600);
			cr_assert_fail("at() past the end did not throw");
		} catch (const std::out_of_range &) {
		}
		p.close();
	}
	mnemo::pool p = mnemo::pool::open(path);
	auto &v = p.root<mnemo::vector<uint64_t>>("v");
	cr_assert_eq(v.size(), model.size());
	size_t i = 0;
	for (uint64_t x : v)
		cr_assert_eq(x, model[i++], "element %zu", i - 1);
	v.clear();
	cr_assert(v.empty());
	v.reserve(10000);
	cr_assert_geq(v.capacity(), 10000u);
	cr_assert_eq(v.size(), 0u);
}

/* One transaction pushes past several reallocations (the elements it
 * wrote are still in its write set when it copies them), then throws:
 * nothing of it remains. */
Test(containers, vector_growth_inside_one_transaction)
{
	mnemo::pool p = mnemo::pool::create(t_path("grow"), 16 * kMiB);
	auto &v = p.root<mnemo::vector<uint32_t>>("v");
	v.push_back(1);
	mnemo::transaction([&] {
		for (uint32_t i = 2; i <= 100; i++)
			v.push_back(i);
		cr_assert_eq(v[0], 1u);
		cr_assert_eq(v[57], 58u);
	});
	cr_assert_eq(v.size(), 100u);
	for (uint32_t i = 0; i < 100; i++)
		cr_assert_eq(v[i], i + 1);
	size_t cap = v.capacity();
	try {
		mnemo::transaction([&] {
			for (uint32_t i = 0; i < 1000; i++)
				v.push_back(i);
			throw std::runtime_error("roll back");
		});
	} catch (const std::runtime_error &) {
	}
	cr_assert_eq(v.size(), 100u);
	cr_assert_eq(v.capacity(), cap);
	cr_assert_eq(v[99], 100u);
}

/* Bigger than a transaction log (1 MiB by default): a reallocation's
 * copy is not logged. */
Test(containers, vector_larger_than_the_log)
{
	mnemo::pool p = mnemo::pool::create(t_path("big"), 64 * kMiB);
	auto &v = p.root<mnemo::vector<uint64_t>>("v");
	for (uint64_t i = 0; i < 400000; i++)
		v.push_back(i);
	cr_assert_eq(v.size(), 400000u);
	for (uint64_t i = 0; i < 400000; i += 997)
		cr_assert_eq(v[i], i);
	/* resize beyond capacity: a fresh zeroed block, nothing logged. */
	auto &w = p.root<mnemo::vector<uint64_t>>("w");
	w.resize(300000);
	cr_assert_eq(w.size(), 300000u);
	cr_assert_eq(w[299999], 0u);
	w[299999] = 5;
	cr_assert_eq(w.back(), 5u);
}

/* Two threads push to one vector: every push lands once. */
Test(containers, vector_two_threads)
{
	mnemo::pool p = mnemo::pool::create(t_path("threads"), 32 * kMiB);
	auto &v = p.root<mnemo::vector<uint64_t>>("v");
	auto work = [&](uint64_t tag) {
		for (uint64_t i = 0; i < 2000; i++)
			v.push_back(tag << 32 | i);
	};
	std::thread a(work, 1), b(work, 2);
	a.join();
	b.join();
	cr_assert_eq(v.size(), 4000u);
	uint64_t next[3] = {0, 0, 0};
	for (uint64_t x : v) {
		uint64_t tag = x >> 32, i = x & 0xffffffff;
		cr_assert(tag == 1 || tag == 2);
		cr_assert_eq(i, next[tag]++, "each thread's pushes in order");
	}
}
