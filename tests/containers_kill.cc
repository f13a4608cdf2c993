/*
 * containers_kill.cc -- mnemo::vector and mnemo::string under kill -9.
 * A child process runs two threads on one pool: each appends its records
 * (thread, seq) in order to a shared vector<uint64_t> and a shared
 * mnemo::string, both in one transaction per record, and now and then
 * rewrites an element of a vector<mnemo::string> it owns; after each
 * commit it acknowledges the record on a pipe.  The parent kills the
 * child with SIGKILL after a random number of acknowledgements (no
 * timing: the count is read from the pipe), reopens the pool, and checks
 * that for each thread the vector and the string hold exactly its records
 * 1..k in order, with k the last acknowledged seq or one more (the
 * transaction in flight may have committed), and that the heap holds
 * exactly the blocks the structures reach.  The next child carries on
 * from what survived; many kills.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "mnemosyne_string.hpp"
#include "mnemosyne_vector.hpp"
#include "util.h"

namespace {

constexpr size_t kMiB = 1 << 20;
constexpr int kKills = 12;

struct shared {
	static constexpr bool mnemo_zero_is_empty = true;
	mnemo::vector<uint64_t> log;             /* (t << 32 | seq) */
	mnemo::string text;                      /* "t:seq;" records */
	mnemo::vector<mnemo::string> mine[2];    /* rewritten by thread t */
};

/* The records of thread t in the string, in order. */
std::vector<uint64_t> text_seqs(const std::string &s, uint64_t t)
{
	std::vector<uint64_t> out;
	size_t at = 0;
	while (at < s.size()) {
		size_t semi = s.find(';', at);
		cr_assert_neq(semi, std::string::npos, "a torn record: %s",
			      s.substr(at).c_str());
		unsigned long long tt, seq;
		cr_assert_eq(sscanf(s.c_str() + at, "%llu:%llu", &tt, &seq), 2);
		if (tt == t)
			out.push_back(seq);
		at = semi + 1;
	}
	return out;
}

/* The last seq of thread t that survived (0: none), after checking
 * that the vector and the string agree and hold 1..k in order. */
uint64_t survived(shared &s, uint64_t t)
{
	std::vector<uint64_t> v;
	for (uint64_t x : s.log)
		if (x >> 32 == t)
			v.push_back(x & 0xffffffff);
	for (size_t i = 0; i < v.size(); i++)
		cr_assert_eq(v[i], i + 1, "thread %llu: record %zu is seq %llu",
			     (unsigned long long)t, i, (unsigned long long)v[i]);
	cr_assert(text_seqs(s.text.str(), t) == v,
		  "thread %llu: the string and the vector disagree",
		  (unsigned long long)t);
	return v.size();
}

/* Thread t of the child: records from `from` on, forever (killed). */
void run(shared &s, uint64_t t, uint64_t from, int ack)
{
	for (uint64_t seq = from;; seq++) {
		mnemo::transaction([&] {
			s.log.push_back(t << 32 | seq);
			s.text.append(std::to_string(t) + ":" +
				      std::to_string(seq) + ";");
			auto &m = s.mine[t];
			if (m.size() < 8)
				m.push_back(std::string(seq % 300, 'a'));
			else
				m[seq % 8] = std::string(seq % 700, 'b');
		});
		uint64_t rec[2] = {t, seq}; /* atomic: under PIPE_BUF */
		if (write(ack, rec, sizeof(rec)) != sizeof(rec))
			_exit(3);
	}
}

[[noreturn]] void child(const char *path, const uint64_t from[2], int ack)
{
	mnemo::pool p = mnemo::pool::open(path);
	auto &s = p.root<shared>("s");
	std::thread a(run, std::ref(s), 0, from[0], ack);
	run(s, 1, from[1], ack);
	a.join();
	_exit(0);
}

/* Blocks the structures reach: the root object, the vectors' arrays
 * and the strings'. */
uint64_t reached(shared &s)
{
	uint64_t n = 1 + (s.log.capacity() > 0) + (s.text.capacity() > 0);
	for (auto &m : s.mine) {
		n += m.capacity() > 0;
		for (size_t i = 0; i < m.size(); i++)
			n += m[i]->capacity() > 0;
	}
	return n;
}

} // namespace

Test(containers_kill, vector_and_string_survive_kill_9, .timeout = 600)
{
	const char *path = t_path("kill");
	mnemo::pool::create(path, 64 * kMiB).root<shared>("s");
	uint64_t seed = t_seed();
	uint64_t acked[2] = {0, 0};
	for (int k = 0; k < kKills; k++) {
		uint64_t from[2];
		{
			mnemo::pool p = mnemo::pool::open(path);
			auto &s = p.root<shared>("s");
			for (uint64_t t = 0; t < 2; t++) {
				uint64_t got = survived(s, t);
				cr_assert(got == acked[t] || got == acked[t] + 1,
					  "kill %d, thread %llu: %llu records, "
					  "%llu acknowledged", k,
					  (unsigned long long)t,
					  (unsigned long long)got,
					  (unsigned long long)acked[t]);
				acked[t] = got;
				from[t] = got + 1;
			}
			cr_assert_eq(mnemo_heap_check(p.get()), 0, "%s",
				     mnemo_errormsg());
			struct mnemo_heap_stats st;
			cr_assert_eq(mnemo_heap_stats(p.get(), &st, sizeof(st)), 0);
			cr_assert_eq(st.live_blocks, reached(s),
				     "kill %d: %llu blocks, %llu reached", k,
				     (unsigned long long)st.live_blocks,
				     (unsigned long long)reached(s));
		}
		int fd[2];
		cr_assert_eq(pipe(fd), 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(fd[0]);
			child(path, from, fd[1]);
		}
		close(fd[1]);
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t want = 50 + (seed >> 33) % 400;
		for (uint64_t n = 0; n < want; n++) {
			uint64_t rec[2];
			cr_assert_eq(read(fd[0], rec, sizeof(rec)),
				     (ssize_t)sizeof(rec), "the child died");
			cr_assert(rec[0] < 2 && rec[1] > acked[rec[0]]);
			acked[rec[0]] = rec[1];
		}
		kill(pid, SIGKILL);
		int st;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		/* acknowledgements written before the kill but not yet read
		 * count as well: a record may be durable unread */
		uint64_t rec[2];
		while (read(fd[0], rec, sizeof(rec)) == (ssize_t)sizeof(rec))
			acked[rec[0]] = rec[1];
		close(fd[0]);
	}
	cr_log_info("records that survived %d kills: %llu and %llu", kKills,
		    (unsigned long long)acked[0], (unsigned long long)acked[1]);
	fprintf(stderr, "records after %d kills: %llu and %llu\n", kKills,
		(unsigned long long)acked[0], (unsigned long long)acked[1]);
}
