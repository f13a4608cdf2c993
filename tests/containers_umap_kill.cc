/*
 * containers_umap_kill.cc -- mnemo::unordered_map under kill -9 (file
 * backend).  A child runs two threads on one map, each operation one
 * transaction: thread t applies its operation j (drawn from the seed, t
 * and j alone: insert_or_assign of a value up to 1 KiB, try_emplace,
 * erase, on keys of its own), sets its progress key to j + 1 and adds
 * one to a shared counter key; after the commit it writes {t, j + 1} to
 * a pipe.  The parent reads the pipe until the child has acknowledged a
 * given number of commits, kills it with SIGKILL (no sleep: only the
 * pipe decides when), drains what else it acknowledged, reopens the pool
 * and checks the invariants, the heap, that each thread's progress is
 * what it acknowledged or one more (the commit under way), that each
 * thread's keys equal its replayed operations, and that the counter is
 * the sum of both.  Several rounds, each continuing the last.
 */
#include <criterion/criterion.h>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>

#include "mnemosyne_unordered_map.hpp"
#include "util.h"

namespace {

using umap = mnemo::unordered_map<uint64_t, mnemo::string>;
using model = std::unordered_map<uint64_t, std::string>;
constexpr uint64_t kCounter = UINT64_MAX;
constexpr uint64_t kProgress = UINT64_MAX - 2; /* + thread */
constexpr int kRounds = 6;

/* What a child writes after each commit. */
struct ack {
	uint64_t thread;
	uint64_t done; /* operations of that thread committed */
};

uint64_t num(const mnemo::string &s)
{
	return s.empty() ? 0 : std::stoull(s.str());
}

/* Thread t's operation j, on the map or on its model: fixed by the seed,
 * t and j, whatever the state. */
template <class M> void op(M &m, uint64_t seed, uint64_t t, uint64_t j)
{
	std::mt19937_64 rng(seed ^ (t << 40) ^ (j * 0x9e3779b97f4a7c15u));
	uint64_t k = t << 32 | (rng() % 150 + 1);
	std::string v(rng() % 1025, (char)('a' + j % 26));
	switch (rng() % 5) {
	case 0: m.erase(k); break;
	case 1: m.try_emplace(k, std::string_view(v)); break;
	default: m.insert_or_assign(k, std::string_view(v)); break;
	}
}

/* One committed operation: the op, the progress, the counter. */
void step(umap &m, uint64_t seed, uint64_t t, uint64_t j)
{
	mnemo::transaction([&] {
		op(m, seed, t, j);
		m[kProgress + t] = std::to_string(j + 1);
		mnemo::string &c = m[kCounter];
		c = std::to_string(num(c) + 1);
	});
}

[[noreturn]] void child(const char *path, uint64_t seed, int fd)
{
	try {
		mnemo::pool p = mnemo::pool::open(path);
		umap &m = p.root<umap>("m");
		auto run = [&](uint64_t t) {
			for (uint64_t j = num(m[kProgress + t]);; j++) {
				step(m, seed, t, j);
				ack a = {t, j + 1};
				if (write(fd, &a, sizeof(a)) != sizeof(a))
					_exit(3);
			}
		};
		std::thread a(run, 0), b(run, 1);
		a.join(); /* never: killed */
	} catch (const std::exception &) {
	}
	_exit(2);
}

/* Fork a child, read acks until `want` of them came (a quarter of them
 * at least from each thread), kill it, then read the rest; acked[t]
 * becomes the most thread t acknowledged. */
void kill_round(const char *path, uint64_t seed, int want, uint64_t acked[2])
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		child(path, seed, fds[1]);
	}
	close(fds[1]);
	ack a;
	int got = 0, mine[2] = {0, 0};
	/* Both threads must have committed in this round (on one core the
	 * first may run long before the second starts). */
	while (got < want || mine[0] < want / 4 || mine[1] < want / 4) {
		ssize_t n = read(fds[0], &a, sizeof(a));
		if (n != sizeof(a)) {
			int st = 0;
			waitpid(pid, &st, 0);
			cr_assert_fail("child stopped after %d acks (status %d)",
				       got, st);
		}
		got++;
		mine[a.thread]++;
		acked[a.thread] = a.done > acked[a.thread] ? a.done
							   : acked[a.thread];
	}
	cr_assert_eq(kill(pid, SIGKILL), 0);
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %d", st);
	while (read(fds[0], &a, sizeof(a)) == sizeof(a))
		acked[a.thread] = a.done > acked[a.thread] ? a.done
							   : acked[a.thread];
	close(fds[0]);
}

/* Reopen and check against the acks; returns each thread's progress. */
void verify(const char *path, uint64_t seed, const uint64_t acked[2])
{
	mnemo::pool p = mnemo::pool::open(path);
	cr_assert_eq(mnemo_heap_check(p.get()), 0, "%s", mnemo_errormsg());
	umap &m = p.root<umap>("m");
	cr_assert(m.mnemo_check(), "invariants");
	size_t keys = 1; /* the counter */
	uint64_t total = 0;
	model mo;
	for (uint64_t t = 0; t < 2; t++) {
		uint64_t done = num(m.at(kProgress + t));
		cr_assert(done == acked[t] || done == acked[t] + 1,
			  "thread %llu: %llu committed, %llu acknowledged",
			  (unsigned long long)t, (unsigned long long)done,
			  (unsigned long long)acked[t]);
		for (uint64_t j = 0; j < done; j++)
			op(mo, seed, t, j);
		total += done;
		keys++;
	}
	cr_assert_eq(num(m.at(kCounter)), total, "the shared counter");
	cr_assert_eq(m.size(), keys + mo.size());
	for (auto &[k, v] : mo)
		cr_assert(m.at(k) == v, "key %llx", (unsigned long long)k);
}

} // namespace

Test(containers_umap_kill, two_threads_killed_and_recovered, .timeout = 600)
{
	const char *path = t_path("umkill");
	uint64_t seed = t_seed();
	{
		mnemo::pool p = mnemo::pool::create(path, 64 << 20);
		umap &m = p.root<umap>("m");
		m[kProgress] = "0";
		m[kProgress + 1] = "0";
		m[kCounter] = "0";
		p.close();
	}
	uint64_t acked[2] = {0, 0};
	for (int r = 0; r < kRounds; r++) {
		kill_round(path, seed, 100 + 60 * r, acked);
		verify(path, seed, acked);
	}
	cr_log_info("acknowledged %llu and %llu operations",
		    (unsigned long long)acked[0], (unsigned long long)acked[1]);
	cr_assert_gt(acked[0] + acked[1], 0u);
}
