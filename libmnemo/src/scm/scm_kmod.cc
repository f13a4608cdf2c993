/*
 * scm_kmod.cc -- the `kmod` backend: the pool lives in a region of the
 * kernel module mnemo.ko (/dev/mnemo, see mnemo.ko(4)) whose backing file
 * is the pool file itself.  The module maps SCM frames on fault and, when
 * its frame budget is spent, writes cold pages to the pool file and
 * faults them back on access.
 *
 * The region is named after the pool file's device, inode and birth time,
 * created on first open with MNEMO_CREATE_KEEP (pages not yet in SCM are
 * read from the file) and found again by later opens.  Pages in SCM are
 * the truth; closing the pool writes them to
 * the file with MNEMO_IOC_SYNC, so that after a clean close the file is a
 * complete image any backend can open.  Flushes are CPU flushes: SCM is
 * persistent memory (or the module's RAM, see mnemo.ko(4)).
 *
 * Selected with MNEMO_BACKEND=kmod.  Without /dev/mnemo (module not
 * loaded) open_kmod fails with ENODEV and open_device falls back to the
 * file backend.
 */
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kmod/uapi/mnemo.h"
#include "base/error.h"
#include "scm/backends.h"

namespace mnemo::scm {
namespace {

class kmod_device final : public device {
public:
	kmod_device(int fd, int kfd, const char *region, uint64_t size,
		    void *base, size_t window)
		: kfd_(kfd), size_(size)
	{
		snprintf(region_, sizeof(region_), "%s", region);
		fd_ = fd;
		base_ = (char *)base;
		window_ = window;
	}
	~kmod_device() override
	{
		unregister_window(this);
		munmap(base_, window_);
		/* The pool file becomes a full image.  A failure cannot be
		 * returned from here: it is left in mnemo_errormsg(). */
		if (ioctl(kfd_, MNEMO_IOC_SYNC) != 0)
			fail(errno, "kmod backend: writing the pool file at "
			     "close: %s", strerror(errno));
		close(kfd_);
	}
	int map_range(uint64_t off, size_t len) override
	{
		return map_at(base_ + off, off, len);
	}
	int unmap_range(uint64_t off, size_t len) override
	{
		return unreserve_to_none(base_ + off, len);
	}
	void flush(const void *p, size_t n) override { cpu_flush(p, n); }
	void flush_all(const piece *v, size_t k) override
	{
		cpu_flush_all(v, k);
	}
	void stream(void *dst, const piece *v, unsigned k) override
	{
		nt_stream(dst, v, k);
	}
	const char *name() const override { return "kmod"; }
	int grow(uint64_t size) override;
	int map_at(void *at, uint64_t off, size_t len) override;

private:
	int kfd_;	/* /dev/mnemo, bound to the pool's region */
	uint64_t size_; /* region size */
	char region_[MNEMO_KNAME_MAX];
};

/* The region grows with MNEMO_IOC_RESIZE (one 8-byte store in the module's
 * table: new pages read as zero).  The module cuts the pool file to the
 * region's old size first, so that stale file data past it cannot
 * reappear; the file is then allocated again up to the new size, so that
 * a full disk fails here with ENOSPC rather than when the module evicts a
 * page there.  A crash after the resize leaves a region larger than the
 * pool's recorded size, which the pool never maps. */
int kmod_device::grow(uint64_t size)
{
	if (size <= size_)
		return 0;
	struct mnemo_kresize rs;
	memset(&rs, 0, sizeof(rs));
	snprintf(rs.name, sizeof(rs.name), "%s", region_);
	rs.size = size;
	if (ioctl(kfd_, MNEMO_IOC_RESIZE, &rs) != 0)
		return fail(errno, "kmod backend: growing region %s from %llu "
			    "to %llu bytes: %s", region_,
			    (unsigned long long)size_, (unsigned long long)size,
			    strerror(errno));
	size_ = size;
	int rc = posix_fallocate(fd_, 0, (off_t)size);
	if (rc)
		return fail(rc, "kmod backend: allocating the pool file to "
			    "%llu bytes: %s", (unsigned long long)size,
			    strerror(rc));
	return 0;
}

int kmod_device::map_at(void *at, uint64_t off, size_t len)
{
	if (off > size_ || len > size_ - off)
		return fail(EINVAL, "kmod backend: %zu bytes at offset %llu "
			    "lie past the region (%llu bytes)", len,
			    (unsigned long long)off,
			    (unsigned long long)size_);
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		       kfd_, (off_t)off);
	if (p == at)
		return 0;
	return fail(errno, "kmod backend: mmap of %zu bytes at offset %llu "
		    "failed: %s", len, (unsigned long long)off,
		    strerror(errno));
}

/* "pool-<dev>-<ino>-<birth time>" of the pool file. */
int region_name(int fd, char *name, size_t n, uint64_t *size)
{
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME,
		  &sx) != 0)
		return fail(errno, "kmod backend: statx: %s", strerror(errno));
	unsigned long long dev = ((unsigned long long)sx.stx_dev_major << 32) |
				 sx.stx_dev_minor;
	unsigned long long birth = sx.stx_mask & STATX_BTIME
					   ? (unsigned long long)sx.stx_btime.tv_sec *
						     1000000000ULL +
					     sx.stx_btime.tv_nsec
					   : 0;
	snprintf(name, n, "pool-%llx-%llx-%llx", dev,
		 (unsigned long long)sx.stx_ino, birth);
	*size = (sx.stx_size + kOsPage - 1) & ~(uint64_t)(kOsPage - 1);
	return 0;
}

int create_region(int kfd, int fd, const char *name, uint64_t size)
{
	struct mnemo_kcreate c;
	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", name);
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, c.backing, sizeof(c.backing) - 1);
	if (n < 0 || c.backing[0] != '/')
		return fail(n < 0 ? errno : EINVAL,
			    "kmod backend: cannot name the pool file");
	if ((size_t)n >= sizeof(c.backing) - 1)
		return fail(ENAMETOOLONG, "kmod backend: pool path longer "
			    "than %d bytes", MNEMO_KPATH_MAX - 1);
	c.size = size;
	c.mode = 0600;
	c.flags = MNEMO_CREATE_KEEP;
	if (ioctl(kfd, MNEMO_IOC_CREATE, &c) == 0 || errno == EEXIST)
		return 0;
	return fail(errno, "kmod backend: creating region %s: %s", name,
		    strerror(errno));
}

/* Bind kfd to the pool's region (named in name[MNEMO_KNAME_MAX]),
 * creating it on first use. */
int bind_region(int kfd, int fd, char *name, uint64_t *size)
{
	struct mnemo_kopen o;
	uint64_t file_size = 0;
	memset(&o, 0, sizeof(o));
	int rc = region_name(fd, o.name, sizeof(o.name), &file_size);
	memcpy(name, o.name, sizeof(o.name));
	if (rc)
		return rc;
	o.flags = MNEMO_OPEN_WRITE;
	int r = ioctl(kfd, MNEMO_IOC_OPEN, &o);
	if (r != 0 && errno == ENOENT) {
		rc = create_region(kfd, fd, o.name, file_size);
		if (rc)
			return rc;
		r = ioctl(kfd, MNEMO_IOC_OPEN, &o);
	}
	if (r != 0)
		return fail(errno, "kmod backend: opening region %s: %s",
			    o.name, strerror(errno));
	*size = o.size;
	return 0;
}

} // namespace

int open_kmod(int fd, void *base, size_t window, std::unique_ptr<device> *out)
{
	int kfd = open("/dev/mnemo", O_RDWR | O_CLOEXEC);
	if (kfd < 0)
		return fail(ENODEV, "kmod backend: /dev/mnemo: %s (mnemo.ko "
			    "not loaded?)", strerror(errno));
	uint64_t size = 0;
	char name[MNEMO_KNAME_MAX] = "";
	int rc = bind_region(kfd, fd, name, &size);
	if (rc == 0)
		rc = reserve(base, window);
	if (rc) {
		close(kfd);
		return rc;
	}
	out->reset(new kmod_device(fd, kfd, name, size, base, window));
	return 0;
}

} // namespace mnemo::scm
