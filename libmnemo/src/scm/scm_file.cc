/*
 * scm_file.cc -- the `file` backend: any regular file, MAP_SHARED.
 *
 * durability=process: a store is in the page cache as soon as it retires,
 * and x86 keeps stores in order, so a killed process loses nothing that a
 * fence ordered; flush and fence only count (and keep the compiler from
 * moving stores across the fence).  durability=power: flush remembers the
 * pages it touched and the next fence msyncs them, so every persist point
 * reaches the disk.  durability=pmem: flush runs the CPU's flush instruction
 * and fence its sfence, exactly as on persistent memory (the analogue of
 * PMDK's PMEM_IS_PMEM_FORCE=1, for benchmarks that compare like with like);
 * the file then survives what the page cache survives.  MNEMO_PRIVATE:
 * MAP_PRIVATE on a file opened read-only, so nothing reaches it.
 */
#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include "base/error.h"
#include "scm/backends.h"

namespace mnemo::scm {
namespace {

struct range {
	uintptr_t lo, hi; /* page-aligned */
};

/* Latest msync/fdatasync error, see take_io_error(). */
int g_io_error;

/* Pages flushed by this thread since its last fence (power only). */
__attribute__((tls_model("initial-exec"))) thread_local std::vector<range> tl_dirty;

void note_dirty(const void *p, size_t n)
{
	uintptr_t lo = (uintptr_t)p & ~(kOsPage - 1);
	uintptr_t hi = ((uintptr_t)p + n + kOsPage - 1) & ~(kOsPage - 1);
	if (!tl_dirty.empty() && tl_dirty.back().hi >= lo &&
	    tl_dirty.back().lo <= hi) {
		range &r = tl_dirty.back();
		r.lo = r.lo < lo ? r.lo : lo;
		r.hi = r.hi > hi ? r.hi : hi;
		return;
	}
	tl_dirty.push_back({lo, hi});
}

class file_device final : public device {
public:
	file_device(int fd, const config &cfg, void *base, size_t window)
		: power_(cfg.power), pmem_(cfg.pmem), priv_(cfg.priv)
	{
		fd_ = fd;
		base_ = (char *)base;
		window_ = window;
	}
	~file_device() override
	{
		unregister_window(this);
		/* durability=power: stores flushed but never fenced reach the
		 * disk too before the pool is released. */
		if (power_ && fdatasync(fd_) != 0)
			__atomic_store_n(&g_io_error, errno, __ATOMIC_RELAXED);
		munmap(base_, window_);
	}
	int map_range(uint64_t off, size_t len) override
	{
		void *want = base_ + off;
		int share = priv_ ? MAP_PRIVATE : MAP_SHARED;
		void *p = mmap(want, len, PROT_READ | PROT_WRITE,
			       share | MAP_FIXED, fd_, (off_t)off);
		if (p == want)
			return 0;
		return fail(errno, "mmap of %zu bytes at offset %llu failed: %s",
			    len, (unsigned long long)off, strerror(errno));
	}
	bool power_safe() const override { return power_; }
	bool can_mirror() const override { return !priv_; }
	/* A private mapping is copied on write by fork already. */
	bool shared_window() const override { return !priv_ && !snapshot_; }
	int unmap_range(uint64_t off, size_t len) override
	{
		return unreserve_to_none(base_ + off, len);
	}
	void flush(const void *p, size_t n) override
	{
		if (pmem_) {
			cpu_flush(p, n);
			return;
		}
		account_flush(p, n);
		if (power_ && n)
			note_dirty(p, n);
	}
	void flush_all(const piece *v, size_t k) override
	{
		if (pmem_)
			cpu_flush_all(v, k);
		else
			device::flush_all(v, k);
	}
	void stream(void *dst, const piece *v, unsigned k) override
	{
		if (pmem_)
			nt_stream(dst, v, k);
		else
			device::stream(dst, v, k);
	}
	const char *name() const override
	{
		return priv_    ? "file(private)"
		       : power_ ? "file(power)"
		       : pmem_  ? "file(pmem)"
				: "file";
	}

private:
	bool power_, pmem_;
	bool priv_; /* MAP_PRIVATE: nothing reaches the file */
};

} // namespace

/* An msync failure cannot be returned from a fence; it is remembered and
 * reported by the next mnemo_pool_close() (see take_io_error()). */
int take_io_error()
{
	return __atomic_exchange_n(&g_io_error, 0, __ATOMIC_RELAXED);
}

void file_drain_thread()
{
	if (tl_dirty.empty())
		return;
	/* ENOMEM: the range was unmapped by a close since the flush; the
	 * close synced the file. */
	for (const range &r : tl_dirty)
		if (msync((void *)r.lo, r.hi - r.lo, MS_SYNC) != 0 &&
		    errno != ENOMEM)
			__atomic_store_n(&g_io_error, errno, __ATOMIC_RELAXED);
	tl_dirty.clear();
}

int open_file(int fd, const config &cfg, void *base, size_t window,
	      std::unique_ptr<device> *out)
{
	int rc = reserve(base, window);
	if (rc)
		return rc;
	out->reset(new file_device(fd, cfg, base, window));
	return 0;
}

} // namespace mnemo::scm
