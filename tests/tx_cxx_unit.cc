/*
 * tx_cxx_unit.cc -- the C++ wrappers (mnemosyne.hpp): lambda transactions with
 * retry and exception rollback, the RAII form, p<T> fields, isolation and
 * durability.
 */
#include <criterion/criterion.h>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "mnemosyne.hpp"
#include "util.h"

namespace {

struct bank {
	mnemo::p<uint64_t> acct[32];
	mnemo::p<uint64_t> transfers;
};

const char *g_path;

bank *open_bank(mnemo_pool **pool, const char *tag)
{
	if (tag) {
		g_path = t_path(tag);
		t_create(g_path, 16 << 20);
	}
	*pool = t_open(g_path, 0);
	void *a;
	if (mnemo_region_find(*pool, "bank", &a, nullptr) == 0)
		return (bank *)a;
	cr_assert_eq(mnemo_region_create(*pool, "bank", sizeof(bank), &a), 0);
	auto *b = (bank *)a;
	mnemo::transaction([&] {
		for (auto &x : b->acct)
			x = 100;
	});
	return b;
}

uint64_t total(const bank *b)
{
	uint64_t t = 0;
	for (const auto &x : b->acct)
		t += x.raw();
	return t;
}

} // namespace

Test(tx_cxx, lambda_commits_and_reads_own_writes)
{
	mnemo_pool *pool;
	bank *b = open_bank(&pool, "lambda");
	mnemo::transaction([&] {
		b->acct[0] -= 7;
		b->acct[1] += 7;
		cr_assert_eq(b->acct[0].get(), 93u);
		cr_assert_eq(b->acct[0].raw(), 100u, "not in place before commit");
		++b->transfers;
	});
	cr_assert_eq(b->acct[0].raw(), 93u);
	cr_assert_eq(uint64_t(b->acct[1]), 107u);
	cr_assert_eq(total(b), 3200u);
	mnemo_pool_close(&pool);
}

Test(tx_cxx, exception_rolls_back_and_is_rethrown)
{
	mnemo_pool *pool;
	bank *b = open_bank(&pool, "exc");
	bool caught = false;
	try {
		mnemo::transaction([&] {
			b->acct[0] = 1;
			mnemo::transaction([&] { b->acct[1] = 2; });
			throw std::runtime_error("boom");
		});
	} catch (const std::runtime_error &e) {
		caught = std::string(e.what()) == "boom";
	}
	cr_assert(caught);
	cr_assert_eq(b->acct[0].raw(), 100u);
	cr_assert_eq(b->acct[1].raw(), 100u);
	cr_assert_eq(mnemo_tx_depth(), 0);
	mnemo_pool_close(&pool);
}

Test(tx_cxx, raii_scope_aborts_unless_committed)
{
	mnemo_pool *pool;
	bank *b = open_bank(&pool, "raii");
	{
		mnemo::tx_scope tx;
		b->acct[2] = 5;
	}
	cr_assert_eq(b->acct[2].raw(), 100u);
	{
		mnemo::tx_scope tx;
		b->acct[2] = 6;
		tx.commit();
	}
	cr_assert_eq(b->acct[2].raw(), 6u);
	mnemo_pool_close(&pool);
}

Test(tx_cxx, assignment_outside_a_transaction_throws)
{
	mnemo_pool *pool;
	bank *b = open_bank(&pool, "outside");
	int code = 0;
	try {
		b->acct[3] = 1;
	} catch (const mnemo::error &e) {
		code = e.code();
	}
	cr_assert_eq(code, -EINVAL);
	cr_assert_eq(uint64_t(b->acct[3]), 100u, "reads outside are plain");
	mnemo_pool_close(&pool);
}

Test(tx_cxx, concurrent_transfers_keep_the_total_across_reopen)
{
	mnemo_pool *pool;
	bank *b = open_bank(&pool, "mt");
	std::atomic<bool> failed{false};
	std::vector<std::thread> ts;
	for (int t = 0; t < 3; t++)
		ts.emplace_back([&, t] {
			uint64_t s = t * 0x9e3779b97f4a7c15ull + 7;
			for (int i = 0; i < 10000; i++) {
				s ^= s << 13, s ^= s >> 7, s ^= s << 17;
				unsigned from = s % 32, to = (s >> 8) % 32;
				try {
					mnemo::transaction([&] {
						if (b->acct[from] < 3)
							return;
						b->acct[from] -= 3;
						b->acct[to] += 3;
						++b->transfers;
					});
				} catch (...) {
					failed = true;
				}
			}
		});
	for (auto &t : ts)
		t.join();
	cr_assert(!failed);
	cr_assert_eq(total(b), 3200u);
	uint64_t n = b->transfers.raw();
	cr_assert_gt(n, 0u);
	mnemo_pool_close(&pool);
	b = open_bank(&pool, nullptr);
	cr_assert_eq(total(b), 3200u);
	cr_assert_eq(b->transfers.raw(), n);
	mnemo_pool_close(&pool);
}

/* ---- crashed at every persist point (sim backend), through the wrappers */

namespace {

constexpr int kCrashOps = 10;

bank *crash_bank(mnemo_pool *p)
{
	void *a = nullptr;
	cr_assert_eq(mnemo_region_find(p, "bank", &a, nullptr), 0);
	return (bank *)a;
}

void cxx_work(mnemo_pool *p, struct t_progress *pr)
{
	bank *b = crash_bank(p);
	for (int i = 0; i < kCrashOps; i++) {
		T_BEGIN(pr);
		mnemo::transaction([&] {
			b->acct[i % 32] -= 10;
			b->acct[(i * 7 + 3) % 32] += 10;
			++b->transfers;
		});
		T_END(pr);
	}
}

bool cxx_check(mnemo_pool *p, int k)
{
	bank *b = crash_bank(p);
	uint64_t want[32];
	for (auto &x : want)
		x = 100;
	for (int i = 0; i < k; i++) {
		want[i % 32] -= 10;
		want[(i * 7 + 3) % 32] += 10;
	}
	for (int j = 0; j < 32; j++)
		if (b->acct[j].raw() != want[j])
			return false;
	return b->transfers.raw() == (uint64_t)k;
}

} // namespace

Test(tx_cxx, crash_at_every_persist_point, .timeout = 600)
{
	setenv("MNEMO_TX_LOG_SIZE", "8K", 1);
	mnemo_pool *pool;
	open_bank(&pool, "crash");
	mnemo_pool_close(&pool);
	int points = t_crash_every_point(g_path, cxx_work, cxx_check, false, 0);
	cr_assert_gt(points, kCrashOps);
	uint64_t seed = t_seed();
	for (uint64_t s = 0; s < 2; s++)
		t_crash_every_point(g_path, cxx_work, cxx_check, true, seed + s);
}
