/*
 * scm_sim.cc -- the `sim` backend: strict power-failure simulation.
 *
 * The program sees a private copy-on-write mapping of the pool file (the
 * "cache"); the file itself, mapped shared elsewhere, is the durable image.
 * flush() snapshots each cache line into a per-thread pending list; fence()
 * is a persist point that copies this thread's pending lines to the durable
 * image.  Nothing else ever reaches the file: closing the pool drops every
 * unfenced store, as a power cut right after the close would.
 *
 * Crash injection (environment, read when a sim pool opens):
 *   MNEMO_SIM_CRASH_AT=N  the Nth persist point of the process (counting
 *                         from 1, all threads, fences made while at least
 *                         one sim pool is open) crashes instead of draining:
 *                         the process _exits with MNEMO_SIM_CRASH_EXIT.
 *   MNEMO_SIM_TEAR=SEED   at the crash, each aligned 8-byte word that differs
 *                         between cache and durable image independently
 *                         reaches the image with probability 1/2 (xorshift
 *                         seeded with SEED); unset: nothing unfenced survives.
 *   MNEMO_SIM_TEAR_UNIT=line  decide per 64-byte line instead (a whole line
 *                         written back early, as a cache eviction does).
 *   MNEMO_SIM_POINTS_FILE=PATH  at exit(), write the number of persist
 *                         points counted to PATH (mnemoctl crashtest
 *                         counts a program's points this way).
 *
 * A flush snapshots the line; a store made after the flush but before the
 * fence is not part of that fence (stricter than hardware, which may write
 * the newer value), though a crash may still tear it in.
 *
 * (SQLite's test6.c simulates crashes below its VFS the same way, per
 * sector; this does it per cache line and word.)
 */
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "base/error.h"
#include "mnemosyne.h"
#include "scm/backends.h"

namespace mnemo::scm {
namespace {

class sim_device;

struct pending_line {
	uint64_t dev_id; /* never reused, unlike a device's address */
	uintptr_t line;
	unsigned char data[kLine];
};

__attribute__((tls_model("initial-exec"))) thread_local std::vector<pending_line> tl_pending;

/* Open sim devices and crash settings; guarded by g_sim_mu except the
 * counters, which every fence touches. */
std::mutex g_sim_mu;
std::vector<sim_device *> g_sims;
std::atomic<int> g_sim_open{0};
std::atomic<uint64_t> g_points{0};
uint64_t g_crash_at;
uint64_t g_tear_seed;
bool g_tear;
bool g_tear_lines; /* decide per cache line instead of per word */
std::atomic<uint64_t> g_next_id{1};

class sim_device final : public device {
public:
	sim_device(char *durable, size_t size, int fd, void *base, size_t window)
		: id(g_next_id++), durable_(durable), size_(size)
	{
		fd_ = fd;
		base_ = (char *)base;
		window_ = window;
	}
	~sim_device() override;
	int map_range(uint64_t off, size_t len) override
	{
		void *want = base_ + off;
		void *p = mmap(want, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_FIXED, fd_, (off_t)off);
		if (p != want)
			return fail(errno, "sim mmap failed: %s",
				    strerror(errno));
		return 0;
	}
	int unmap_range(uint64_t off, size_t len) override
	{
		return unreserve_to_none(base_ + off, len);
	}
	void flush(const void *p, size_t n) override;
	const char *name() const override { return "sim"; }
	int map_at(void *, uint64_t, size_t) override
	{
		return fail(ENOTSUP, "the sim backend cannot map pool pages "
			    "at a second address; use the file or dax backend");
	}
	bool power_safe() const override { return false; }
	/* The durable image covers the whole file. */
	int grow(uint64_t size) override
	{
		std::lock_guard<std::mutex> g(g_sim_mu);
		void *d = mremap(durable_, size_, size, MREMAP_MAYMOVE);
		if (d == MAP_FAILED)
			return fail(errno, "sim: cannot grow the durable image "
				    "to %llu bytes: %s",
				    (unsigned long long)size, strerror(errno));
		durable_ = (char *)d;
		size_ = size;
		return 0;
	}
	/* The cache view is private: fork copies it on write. */
	bool shared_window() const override { return false; }
	void snap_child() override
	{
		/* The child's fences must not reach the file: its durable
		 * image becomes private too (a view, as no test needs more). */
		remap_file_private(durable_, size_, 0);
		snapshot_ = true;
	}

	void commit(const pending_line &l)
	{
		uintptr_t off = l.line - (uintptr_t)base_;
		if (off < size_) /* always: lines lie in mapped pages */
			memcpy(durable_ + off, l.data, kLine);
	}
	void tear(uint64_t *rng);
	const uint64_t id;

private:
	char *durable_;
	size_t size_;
};

sim_device::~sim_device()
{
	unregister_window(this);
	{
		std::lock_guard<std::mutex> g(g_sim_mu);
		std::erase(g_sims, this);
	}
	g_sim_open--;
	/* This thread's lines of this device go now (other threads' at their
	 * next fence), so a device later allocated at the same address never
	 * receives them. */
	std::erase_if(tl_pending,
		      [this](const pending_line &l) { return l.dev_id == id; });
	munmap(durable_, size_);
	munmap(base_, window_);
}

void sim_device::flush(const void *p, size_t n)
{
	account_flush(p, n);
	if (n == 0)
		return;
	uintptr_t a = (uintptr_t)p & ~(kLine - 1);
	for (uintptr_t e = (uintptr_t)p + n; a < e; a += kLine) {
		pending_line l;
		l.dev_id = id;
		l.line = a;
		memcpy(l.data, (const void *)a, kLine);
		tl_pending.push_back(l);
	}
}

uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

void sim_device::tear(uint64_t *rng)
{
	for (const auto &m : mapped_) {
		const uint64_t *c = (const uint64_t *)(base_ + m.first);
		uint64_t *d = (uint64_t *)(durable_ + m.first);
		bool keep = false;
		for (size_t i = 0; i < m.second / 8; i++) {
			if (!g_tear_lines || i % (kLine / 8) == 0)
				keep = xorshift(rng) & 1;
			if (c[i] != d[i] && keep)
				d[i] = c[i];
		}
	}
}

[[noreturn]] void crash()
{
	if (g_tear) {
		uint64_t rng = g_tear_seed | 1;
		std::lock_guard<std::mutex> g(g_sim_mu);
		for (sim_device *s : g_sims)
			s->tear(&rng);
	}
	_exit(MNEMO_SIM_CRASH_EXIT);
}

int parse_u64_env(const char *name, uint64_t *out, bool *set)
{
	const char *s = getenv(name);
	*set = s && *s;
	*out = 0;
	if (!*set)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || *s == '-')
		return fail(EINVAL, "%s=%s: expected an unsigned integer", name,
			    s);
	*out = v;
	return 0;
}

char g_points_file[4096];

/* atexit: the count of persist points, for mnemoctl crashtest.  A crash
 * (_exit) writes nothing. */
void write_points()
{
	FILE *f = fopen(g_points_file, "w");
	if (f) {
		fprintf(f, "%llu\n", (unsigned long long)g_points.load());
		fclose(f);
	}
}

/* Remember MNEMO_SIM_POINTS_FILE (once per process: the first sim open
 * that names one registers the exit handler). */
void read_points_file()
{
	const char *s = getenv("MNEMO_SIM_POINTS_FILE");
	if (!s || !*s || g_points_file[0])
		return;
	snprintf(g_points_file, sizeof(g_points_file), "%s", s);
	atexit(write_points);
}

int read_crash_settings()
{
	bool set;
	uint64_t at, seed;
	int rc = parse_u64_env("MNEMO_SIM_CRASH_AT", &at, &set);
	if (rc)
		return rc;
	rc = parse_u64_env("MNEMO_SIM_TEAR", &seed, &set);
	if (rc)
		return rc;
	const char *unit = getenv("MNEMO_SIM_TEAR_UNIT");
	bool lines = unit && strcmp(unit, "line") == 0;
	if (unit && *unit && !lines && strcmp(unit, "word") != 0)
		return fail(EINVAL, "MNEMO_SIM_TEAR_UNIT=%s: expected word or line",
			    unit);
	/* All valid: only now replace the process-wide settings. */
	read_points_file();
	g_crash_at = at;
	g_tear = set;
	g_tear_seed = seed;
	g_tear_lines = lines;
	return 0;
}

} // namespace

void sim_drain_thread()
{
	if (g_sim_open.load(std::memory_order_relaxed) == 0) {
		tl_pending.clear(); /* lines of pools closed since */
		return;
	}
	uint64_t n = ++g_points;
	if (n == g_crash_at)
		crash();
	/* A line whose pool was closed (by another thread) since its flush
	 * is dropped, as the close dropped that pool's unfenced stores. */
	std::lock_guard<std::mutex> g(g_sim_mu);
	for (const pending_line &l : tl_pending)
		for (sim_device *s : g_sims)
			if (s->id == l.dev_id)
				s->commit(l);
	tl_pending.clear();
}

int open_sim(int fd, void *base, size_t window, std::unique_ptr<device> *out)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return fail(errno, "fstat: %s", strerror(errno));
	int rc = read_crash_settings();
	if (rc)
		return rc;
	char *durable = (char *)mmap(nullptr, (size_t)st.st_size,
				     PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (durable == MAP_FAILED)
		return fail(errno, "sim: mmap of the durable image failed: %s",
			    strerror(errno));
	rc = reserve(base, window);
	if (rc) {
		munmap(durable, (size_t)st.st_size);
		return rc;
	}
	auto *d = new sim_device(durable, (size_t)st.st_size, fd, base, window);
	{
		std::lock_guard<std::mutex> g(g_sim_mu);
		g_sims.push_back(d);
	}
	g_sim_open++;
	out->reset(d);
	return 0;
}

} // namespace mnemo::scm
