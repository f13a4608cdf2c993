/*
 * ycsb.cc -- the driver of the application study (ycsb.h): options, the
 * zipfian request generator, the load, the timed workloads, a check of
 * the records afterwards, and one RESULT line per workload for
 * bench/run-ycsb.
 */
#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "ycsb.h"

void ycsb_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ycsb: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

uint64_t ycsb_key(uint64_t i)
{
	/* splitmix64's finaliser: a bijection, so keys are distinct */
	uint64_t z = i + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void ycsb_key_bytes(uint64_t key, unsigned char out[8])
{
	for (int i = 0; i < 8; i++)
		out[i] = (unsigned char)(key >> (56 - 8 * i));
}

uint64_t ycsb_key_from(const unsigned char in[8])
{
	uint64_t k = 0;
	for (int i = 0; i < 8; i++)
		k = k << 8 | in[i];
	return k;
}

namespace {

/* YCSB's ZipfianGenerator (Gray et al., "Quickly generating billion-record
 * synthetic databases"), theta 0.99, then scrambled by an FNV hash so the
 * popular records are spread over the key space. */
class zipfian {
public:
	explicit zipfian(uint64_t n) : n_(n)
	{
		for (uint64_t i = 1; i <= n; i++)
			zetan_ += 1.0 / std::pow((double)i, kTheta);
		double zeta2 = 1.0 + 1.0 / std::pow(2.0, kTheta);
		alpha_ = 1.0 / (1.0 - kTheta);
		eta_ = (1.0 - std::pow(2.0 / (double)n, 1.0 - kTheta)) /
		       (1.0 - zeta2 / zetan_);
	}
	uint64_t next(uint64_t *rng) const
	{
		double u = (double)(xorshift(rng) >> 11) / (double)(1ull << 53);
		double uz = u * zetan_;
		uint64_t r = uz < 1.0				 ? 0
			     : uz < 1.0 + std::pow(0.5, kTheta) ? 1
				: (uint64_t)((double)n_ *
					     std::pow(eta_ * u - eta_ + 1.0,
						      alpha_));
		return fnv64(r) % n_;
	}
	static uint64_t xorshift(uint64_t *s)
	{
		*s ^= *s >> 12;
		*s ^= *s << 25;
		*s ^= *s >> 27;
		return *s * 0x2545f4914f6cdd1dull;
	}

private:
	static uint64_t fnv64(uint64_t v)
	{
		uint64_t h = 0xcbf29ce484222325ull;
		for (int i = 0; i < 8; i++) {
			h ^= v & 0xff;
			h *= 0x100000001b3ull;
			v >>= 8;
		}
		return h;
	}
	static constexpr double kTheta = 0.99;
	uint64_t n_;
	double zetan_ = 0, alpha_, eta_;
};

enum op_kind : uint8_t { READ, UPDATE, RMW, SCAN, INSERT };

struct op {
	op_kind kind;
	uint8_t scan_len;
	uint64_t key;
};

/* Thread t's share of workload w: ops / threads requests, drawn by its
 * own seeded generator; inserts take fresh record numbers t, t + T, ...
 * past the loaded records (and past earlier E runs: *fresh). */
std::vector<op> make_ops(const ycsb_opts &o, const zipfian &z, char w,
			 unsigned t, uint64_t *fresh)
{
	std::vector<op> v(o.ops / o.threads);
	uint64_t rng = (o.seed * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)w << 40) ^
		       (t + 1) * 0xd1b54a32d192ed03ull;
	for (op &x : v) {
		unsigned pct = (unsigned)(zipfian::xorshift(&rng) % 100);
		x.key = ycsb_key(z.next(&rng));
		x.scan_len = 0;
		switch (w) {
		case 'A': x.kind = pct < 50 ? READ : UPDATE; break;
		case 'B': x.kind = pct < 95 ? READ : UPDATE; break;
		case 'C': x.kind = READ; break;
		case 'F': x.kind = pct < 50 ? READ : RMW; break;
		default:
			x.kind = pct < 95 ? SCAN : INSERT;
			x.scan_len = (uint8_t)(1 + zipfian::xorshift(&rng) % 100);
			if (x.kind == INSERT)
				x.key = ycsb_key(o.records + t +
						 o.threads * (*fresh)++);
		}
	}
	return v;
}

void fill(std::string &v, uint64_t key, uint64_t n)
{
	for (size_t i = 0; i < v.size(); i++)
		v[i] = (char)('a' + (key + n + i) % 26);
}

/* Thread's share of a workload; the requests it ran (all of them, or as
 * many as fit before the deadline: a slow store is measured on part of
 * the work, checked every 64 requests). */
uint64_t run_ops(ycsb_store *s, const std::vector<op> &ops, size_t vsize,
		 std::chrono::steady_clock::time_point deadline)
{
	std::string val(vsize, 'x'), got;
	uint64_t n = 0, done = 0;
	for (const op &x : ops) {
		if (done % 64 == 63 &&
		    std::chrono::steady_clock::now() > deadline)
			break;
		done++;
		switch (x.kind) {
		case READ:
			if (!s->read(x.key, got) || got.size() != vsize)
				ycsb_die("read: key %llx missing or damaged",
					 (unsigned long long)x.key);
			break;
		case SCAN:
			if (s->scan(x.key, x.scan_len) == 0)
				ycsb_die("scan from %llx found nothing",
					 (unsigned long long)x.key);
			break;
		case UPDATE:
		case INSERT:
			fill(val, x.key, ++n);
			s->put(x.key, val.data(), vsize);
			break;
		case RMW:
			fill(val, x.key, ++n);
			s->rmw(x.key, val.data(), vsize);
		}
	}
	return done;
}

/* Workload w on T threads; its wall time in ns, and in *done the
 * requests run. */
uint64_t run_workload(const ycsb_opts &o, ycsb_store *s, const zipfian &z,
		      char w, uint64_t *fresh, uint64_t *done)
{
	std::vector<std::vector<op>> ops;
	uint64_t f0 = *fresh;
	for (unsigned t = 0; t < o.threads; t++) {
		uint64_t f = f0;
		ops.push_back(make_ops(o, z, w, t, &f));
		*fresh = f > *fresh ? f : *fresh; /* past every thread's */
	}
	std::atomic<unsigned> ready{0};
	std::atomic<bool> go{false};
	std::atomic<uint64_t> total{0};
	std::chrono::steady_clock::time_point deadline;
	std::vector<std::thread> th;
	for (unsigned t = 0; t < o.threads; t++)
		th.emplace_back([&, t] {
			ready++;
			while (!go.load())
				std::this_thread::yield();
			total += run_ops(s, ops[t], o.value, deadline);
		});
	while (ready.load() < o.threads)
		std::this_thread::yield();
	auto t0 = std::chrono::steady_clock::now();
	deadline = t0 + std::chrono::duration_cast<
				std::chrono::steady_clock::duration>(
				std::chrono::duration<double>(o.max_seconds));
	go = true;
	for (std::thread &x : th)
		x.join();
	auto t1 = std::chrono::steady_clock::now();
	*done = total.load();
	return (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(
		       t1 - t0)
		.count();
}

void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--dir DIR] [--records N] [--ops N] [--value BYTES]\n"
		"          [--threads N] [--workloads CBAFE] [--kind K] "
		"[--seed N] [--max-seconds S] [--quiet]\n", prog);
	exit(2);
}

void parse(int argc, char **argv, ycsb_opts &o)
{
	static const option lo[] = {
		{"dir", required_argument, nullptr, 'd'},
		{"records", required_argument, nullptr, 'r'},
		{"ops", required_argument, nullptr, 'o'},
		{"value", required_argument, nullptr, 'v'},
		{"threads", required_argument, nullptr, 't'},
		{"workloads", required_argument, nullptr, 'w'},
		{"kind", required_argument, nullptr, 'k'},
		{"seed", required_argument, nullptr, 's'},
		{"max-seconds", required_argument, nullptr, 'm'},
		{"quiet", no_argument, nullptr, 'q'},
		{nullptr, 0, nullptr, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, nullptr)) != -1) {
		switch (c) {
		case 'd': o.dir = optarg; break;
		case 'r': o.records = strtoull(optarg, nullptr, 10); break;
		case 'o': o.ops = strtoull(optarg, nullptr, 10); break;
		case 'v': o.value = strtoull(optarg, nullptr, 10); break;
		case 't': o.threads = (unsigned)atoi(optarg); break;
		case 'w': o.workloads = optarg; break;
		case 'k': o.kind = optarg; break;
		case 's': o.seed = strtoull(optarg, nullptr, 10); break;
		case 'm': o.max_seconds = atof(optarg); break;
		case 'q': o.quiet = true; break;
		default: usage(argv[0]);
		}
	}
	if (optind != argc || o.records < 2 || o.ops < o.threads ||
	    o.value < 1 || o.threads < 1 || !(o.max_seconds > 0) ||
	    strspn(o.workloads, "ABCEF") != strlen(o.workloads))
		usage(argv[0]);
}

/* Every 997th record is there with a value of the right size. */
void verify(ycsb_store *s, const ycsb_opts &o)
{
	std::string got;
	for (uint64_t i = 0; i < o.records; i += 997)
		if (!s->read(ycsb_key(i), got) || got.size() != o.value)
			ycsb_die("verify: record %llu missing or damaged",
				 (unsigned long long)i);
}

} // namespace

int main(int argc, char **argv)
{
	ycsb_opts o;
	parse(argc, argv, o);
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/ycsb-%s-%ld", o.dir, ycsb_name(o),
		 (long)getpid());
	if (mkdir(dir, 0700))
		ycsb_die("mkdir %s: %s", dir, strerror(errno));
	ycsb_store *s = ycsb_open(o, dir);
	zipfian z(o.records);
	std::string val(o.value, 'x');
	auto t0 = std::chrono::steady_clock::now();
	for (uint64_t i = 0; i < o.records; i++) {
		fill(val, i, 0);
		s->load(ycsb_key(i), val.data(), o.value);
	}
	s->load_done();
	double load_s = std::chrono::duration<double>(
				std::chrono::steady_clock::now() - t0)
				.count();
	if (!o.quiet)
		fprintf(stderr, "%s: loaded %llu records of %zu B in %.1f s\n",
			ycsb_name(o), (unsigned long long)o.records, o.value,
			load_s);
	uint64_t fresh = 0;
	for (const char *w = o.workloads; *w; w++) {
		if (*w == 'E' && s->scan(ycsb_key(0), 1) == SIZE_MAX)
			continue; /* unordered: no scans */
		uint64_t ops = 0;
		uint64_t ns = run_workload(o, s, z, *w, &fresh, &ops);
		printf("RESULT system=%s workload=%c value=%zu threads=%u "
		       "records=%llu ops=%llu ns=%llu ops_per_s=%.0f\n",
		       ycsb_name(o), *w, o.value, o.threads,
		       (unsigned long long)o.records, (unsigned long long)ops,
		       (unsigned long long)ns, (double)ops * 1e9 / (double)ns);
		fflush(stdout);
	}
	verify(s, o);
	delete s;
	std::string rm = std::string("rm -rf '") + dir + "'";
	if (system(rm.c_str()) != 0)
		ycsb_die("cannot remove %s", dir);
	return 0;
}
