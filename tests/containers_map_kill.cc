/*
 * containers_map_kill.cc -- kill -9 of a process whose two threads change
 * one mnemo::map<uint64_t, mnemo::string> (file backend).  Each thread
 * owns the keys of its parity and runs a script of inserts, assignments
 * and erases drawn from the round's seed, one transaction each; after
 * each commit it writes (thread, operations committed) to a pipe.  The
 * parent reads until both threads' acknowledgements reach the round's
 * target, then sends SIGKILL (no sleep anywhere: the pipe says when).
 * After recovery the tree's invariants hold, the heap checks out, and
 * each thread's keys are its script replayed to some point at or past
 * what it acknowledged: nothing acknowledged is lost, nothing half done
 * shows.  The next round starts from the recovered map.
 */
#include <criterion/criterion.h>
#include <csignal>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "mnemosyne_map.hpp"
#include "util.h"

namespace {

using smap = mnemo::map<uint64_t, mnemo::string>;
using model_t = std::map<uint64_t, std::string>;
constexpr int kRounds = 10;
constexpr uint64_t kKeys = 1500;     /* per thread */
constexpr uint64_t kSlack = 2000000; /* operations past the last ack */

/* Operation j of thread t in a round with `seed`: a key of t's parity,
 * and a value to assign, or none (erase). */
struct opn {
	uint64_t key;
	bool erase;
	std::string value;
};
opn script(uint64_t seed, int t, uint64_t j)
{
	uint64_t x = (seed ^ (j * 0x9e3779b97f4a7c15ull) ^ (uint64_t)t) | 1;
	for (int i = 0; i < 3; i++)
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
	opn o;
	o.key = (x % kKeys) * 2 + (uint64_t)t;
	o.erase = (x >> 20) % 3 == 0;
	if (!o.erase)
		o.value = std::to_string(seed % 1000) + ":" + std::to_string(j) +
			  std::string((x >> 32) % 60, 'v');
	return o;
}

uint64_t mix(uint64_t k, const std::string &v)
{
	uint64_t h = 1469598103934665603ull ^ k;
	for (unsigned char c : v)
		h = (h ^ c) * 1099511628211ull;
	return h * 0x9e3779b97f4a7c15ull;
}

/* A model with the xor of mix() over its entries, kept as it changes. */
struct hashed {
	model_t m;
	uint64_t h = 0;
	void apply(const opn &o)
	{
		auto it = m.find(o.key);
		if (it != m.end()) {
			h ^= mix(it->first, it->second);
			m.erase(it);
		}
		if (!o.erase) {
			m[o.key] = o.value;
			h ^= mix(o.key, o.value);
		}
	}
};

[[noreturn]] void child(const char *path, uint64_t seed, int fd)
{
	mnemo::pool p = mnemo::pool::open(path);
	smap &m = p.root<smap>("m");
	auto run = [&](int t) {
		for (uint64_t j = 0;; j++) {
			opn o = script(seed, t, j);
			if (o.erase)
				m.erase(o.key);
			else
				m[o.key] = std::string_view(o.value);
			uint64_t rec[2] = {(uint64_t)t, j + 1};
			if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
				_exit(3);
		}
	};
	std::thread a(run, 0), b(run, 1);
	a.join(); /* never: the parent kills the process */
	_exit(4);
}

/* Reads acknowledgements until each thread has `target`; acked[t] gets
 * each thread's count. */
void await_acks(int fd, uint64_t target, uint64_t acked[2])
{
	acked[0] = acked[1] = 0;
	while (acked[0] < target || acked[1] < target) {
		uint64_t rec[2];
		ssize_t n = read(fd, rec, sizeof(rec));
		cr_assert_eq(n, (ssize_t)sizeof(rec),
			     "the child died before %llu acknowledgements",
			     (unsigned long long)target);
		cr_assert(rec[0] < 2 && rec[1] > acked[rec[0]]);
		acked[rec[0]] = rec[1];
	}
}

/* Thread t's part of the recovered map is its script replayed from
 * `start` to some point at or past acked; start becomes it. */
void replay_check(const model_t &got, hashed &start, uint64_t seed, int t,
		  uint64_t acked)
{
	hashed want;
	for (const auto &e : got)
		if (e.first % 2 == (uint64_t)t)
			want.apply({e.first, false, e.second});
	for (uint64_t j = 0; j <= acked + kSlack; j++) {
		if (j >= acked && start.h == want.h && start.m == want.m)
			return;
		start.apply(script(seed, t, j));
	}
	cr_assert_fail("thread %d: no replay of its script from %llu "
		       "acknowledged operations on gives the recovered keys", t,
		       (unsigned long long)acked);
}

model_t recovered(const char *path)
{
	mnemo::pool p = mnemo::pool::open(path);
	const smap &m = p.root<smap>("m");
	std::string why = m.mnemo_check();
	cr_assert(why.empty(), "after the kill: %s", why.c_str());
	cr_assert_eq(mnemo_heap_check(p.get()), 0, "%s", mnemo_errormsg());
	model_t out;
	for (auto e : m)
		out[e.first] = e.second.str();
	return out;
}

} // namespace

Test(containers_map_kill, acknowledged_operations_survive, .timeout = 600)
{
	const char *path = t_path("mkill");
	mnemo::pool::create(path, 64 << 20).close();
	hashed models[2];
	uint64_t seed = t_seed();
	for (int r = 0; r < kRounds; r++) {
		uint64_t rs = seed + (uint64_t)r * 1000003, acked[2];
		uint64_t target = 50 + (rs * 0x9e3779b97f4a7c15ull >> 40) % 1000;
		int fd[2];
		cr_assert_eq(pipe(fd), 0);
		pid_t pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			close(fd[0]);
			child(path, rs, fd[1]);
		}
		close(fd[1]); /* the child's death ends a read */
		await_acks(fd[0], target, acked);
		kill(pid, SIGKILL);
		close(fd[0]);
		int st;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
			  "round %d: the child ended before the kill", r);
		model_t got = recovered(path);
		for (int t = 0; t < 2; t++)
			replay_check(got, models[t], rs, t, acked[t]);
		cr_log_info("round %d: %llu + %llu acknowledged, %zu keys", r,
			    (unsigned long long)acked[0],
			    (unsigned long long)acked[1], got.size());
	}
}
