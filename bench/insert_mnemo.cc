/*
 * insert_mnemo.cc -- what an insertion into the C++ containers costs:
 * --keys new keys with string values of --value bytes go into a
 * mnemo::unordered_map<uint64_t, mnemo::string> (--kind umap) or a
 * mnemo::map (--kind map), --batch insertions per durable transaction,
 * with the SCM latency emulator charging --fence-ns per fence.  Prints a
 * RESULT line: insertions/s, and fences and flushed lines per insertion
 * (the thread's own counts: mnemo_stat_get(3)); checks every key after.
 *
 *   usage: insert_mnemo [--kind umap|map] [--keys N] [--value BYTES]
 *                       [--batch N] [--fence-ns NS] [--dir DIR]
 */
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unistd.h>

#include "mnemosyne_map.hpp"
#include "mnemosyne_string.hpp"
#include "mnemosyne_unordered_map.hpp"

namespace {

struct opts {
	const char *kind = "umap";
	const char *dir = "/dev/shm";
	uint64_t keys = 100000, value = 100, batch = 1;
	unsigned fence_ns = 0;
};

[[noreturn]] void usage()
{
	fprintf(stderr, "usage: insert_mnemo [--kind umap|map] [--keys N] "
		"[--value BYTES] [--batch N] [--fence-ns NS] [--dir DIR]\n");
	exit(2);
}

opts parse(int argc, char **argv)
{
	opts o;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		const char *a = argv[i], *v = argv[++i];
		if (!strcmp(a, "--kind"))
			o.kind = v;
		else if (!strcmp(a, "--dir"))
			o.dir = v;
		else if (!strcmp(a, "--keys"))
			o.keys = strtoull(v, nullptr, 10);
		else if (!strcmp(a, "--value"))
			o.value = strtoull(v, nullptr, 10);
		else if (!strcmp(a, "--batch"))
			o.batch = strtoull(v, nullptr, 10);
		else if (!strcmp(a, "--fence-ns"))
			o.fence_ns = (unsigned)strtoul(v, nullptr, 10);
		else
			usage();
	}
	if ((strcmp(o.kind, "umap") && strcmp(o.kind, "map")) || !o.keys ||
	    !o.batch || o.value > 65536)
		usage();
	return o;
}

/* Key i, spread over the key space (a map's inserts then land in many
 * leaves, not always at the end). */
uint64_t key_of(uint64_t i) { return i * 0x9e3779b97f4a7c15ull; }

/* Insert the keys, time it, check them; the RESULT line. */
template <class M> void run(const opts &o, mnemo::pool &p)
{
	M &m = p.root<M>("m");
	std::string v(o.value, 'v');
	mnemo_stat_reset();
	mnemo_emul_set(0, o.fence_ns);
	auto t0 = std::chrono::steady_clock::now();
	for (uint64_t i = 0; i < o.keys; i += o.batch)
		mnemo::transaction([&] {
			for (uint64_t k = i; k < i + o.batch && k < o.keys; k++)
				m.insert_or_assign(key_of(k),
						   std::string_view(v));
		});
	double s = std::chrono::duration<double>(
			   std::chrono::steady_clock::now() - t0)
			   .count();
	mnemo_emul_set(0, 0);
	double fences = (double)mnemo_stat_get(MNEMO_STAT_FENCES);
	double lines = (double)mnemo_stat_get(MNEMO_STAT_FLUSHED_LINES);
	if (m.size() != o.keys) {
		fprintf(stderr, "insert_mnemo: %zu keys, not %llu\n", m.size(),
			(unsigned long long)o.keys);
		exit(1);
	}
	for (uint64_t k = 0; k < o.keys; k++)
		if (m.at(key_of(k)).size() != o.value) {
			fprintf(stderr, "insert_mnemo: key %llu damaged\n",
				(unsigned long long)k);
			exit(1);
		}
	double n = (double)o.keys;
	printf("RESULT system=mnemo_%s keys=%llu value=%llu batch=%llu "
	       "emul_fence_ns=%u inserts_per_s=%.0f fences_per_insert=%.2f "
	       "flushes_per_insert=%.2f\n",
	       o.kind, (unsigned long long)o.keys,
	       (unsigned long long)o.value, (unsigned long long)o.batch,
	       o.fence_ns, n / s, fences / n, lines / n);
}

} // namespace

int main(int argc, char **argv)
{
	opts o = parse(argc, argv);
	setenv("MNEMO_DURABILITY", "pmem", 0);
	std::string path = std::string(o.dir) + "/insert-mnemo-" +
			   std::to_string(getpid()) + ".pool";
	try {
		size_t size = o.keys * (o.value + 256) * 2 + ((size_t)64 << 20);
		mnemo::pool p = mnemo::pool::create(path.c_str(), size);
		if (!strcmp(o.kind, "map"))
			run<mnemo::map<uint64_t, mnemo::string>>(o, p);
		else
			run<mnemo::unordered_map<uint64_t, mnemo::string>>(o,
									    p);
	} catch (const std::exception &e) {
		fprintf(stderr, "insert_mnemo: %s\n", e.what());
		unlink(path.c_str());
		return 1;
	}
	unlink(path.c_str());
	return 0;
}
