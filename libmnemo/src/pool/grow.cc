/*
 * grow.cc -- growing a pool in place (format 5, layout.h "grow records").
 *
 * A pool is mapped in a window reserved for its growth limit, so growth
 * never moves an address.  Growth runs under the pool's mutex, in this
 * order, each step durable before the next:
 *   1. the file is extended and fully allocated (posix_fallocate: a full
 *      file system is ENOSPC now, never a SIGBUS later) and, where the
 *      pool must survive power loss, its new size made durable
 *      (fdatasync; else the page cache keeps it, as it keeps the data);
 *   2. the backend learns the new size (sim: a larger durable image);
 *   3. the grow record that is not current gets {seq + 1, new size, max}
 *      and is persisted: the one persist point of growth.
 * A crash before 3 leaves the old record current and the file longer than
 * the pool: the next open cuts it back (pool_trim).  Regions are mapped
 * when they are created, not here; the new space is durably zero, so a
 * region created there is not zeroed again (mnemo_pool::zero_above).  Other threads keep allocating from
 * what the heap has and committing meanwhile: only region creation waits.
 *
 * Steps add half the pool, at least kStepMin and at most kStepMax at a
 * time (and at least what the caller needs): 1 GiB of small blocks from a
 * 64 MiB pool costs 8 extensions, and a pool is never much more than 1.5
 * times what it holds (the file is fully allocated).
 */
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/config.h"
#include "base/error.h"
#include "mnemosyne.h"
#include "pool/pool.h"

namespace mnemo {
namespace {

constexpr uint64_t kStepMin = 16ull << 20;
constexpr uint64_t kStepMax = 1ull << 30;
constexpr uint64_t kDefaultMax = 64ull << 30;

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/* Bytes the file system of fd can still give us (0 if unknown). */
uint64_t fs_free(int fd)
{
	struct statvfs v;
	if (fstatvfs(fd, &v) != 0)
		return 0;
	return (uint64_t)v.f_bavail * v.f_frsize;
}

int extend_file(mnemo_pool *p, uint64_t from, uint64_t to)
{
	int err = posix_fallocate(p->fd, (off_t)from, (off_t)(to - from));
	if (err == EFBIG)
		return fail(EFBIG, "cannot grow pool %s from %llu to %llu "
			    "bytes: the file may not be that large (a file "
			    "size limit, RLIMIT_FSIZE, or the file system's)",
			    p->path.c_str(), (unsigned long long)from,
			    (unsigned long long)to);
	if (err == ENOSPC)
		return fail(ENOSPC, "cannot grow pool %s from %llu to %llu "
			    "bytes: its file system is full (%llu bytes "
			    "free)", p->path.c_str(), (unsigned long long)from,
			    (unsigned long long)to,
			    (unsigned long long)fs_free(p->fd));
	if (err)
		return fail(err, "cannot grow pool %s to %llu bytes: %s",
			    p->path.c_str(), (unsigned long long)to,
			    strerror(err));
	if (p->dev->power_safe() && fdatasync(p->fd) != 0)
		return fail(errno, "cannot grow pool %s: fdatasync: %s",
			    p->path.c_str(), strerror(errno));
	return 0;
}

/* The recorded limit (the window may be smaller in this process). */
uint64_t recorded_max(mnemo_pool *p)
{
	const layout::grow_rec *g = grow_current((layout::pool_header *)p->base);
	return g ? g->max_size : p->max;
}

/* Write and persist the grow record that is not current (step 3). */
void write_record(mnemo_pool *p, uint64_t size, uint64_t max)
{
	auto *h = (layout::pool_header *)p->base;
	const layout::grow_rec *cur = grow_current(h);
	layout::grow_rec *g = &h->grow[cur == &h->grow[0] ? 1 : 0];
	layout::grow_rec r{};
	r.seq = cur ? cur->seq + 1 : 1;
	r.size = size;
	r.max_size = max;
	r.checksum = grow_checksum(&r);
	memcpy(g, &r, sizeof(r));
	scm::persist(g, sizeof(*g));
}

} // namespace

int pool_cannot_grow(mnemo_pool *p, uint64_t end)
{
	if (p->dev->snapshot())
		return fail(EROFS, "pool %s cannot grow in a fork child: its "
			    "pools are private snapshots", p->path.c_str());
	if (!p->can_grow)
		return fail(ENOSPC, "pool %s is full (%llu bytes): it has "
			    "format 4.0, whose size is fixed; create a new "
			    "pool (format 5, which grows) and copy the data",
			    p->path.c_str(), (unsigned long long)p->max);
	return fail(ENOMEM, "pool %s cannot grow to %llu bytes: its limit is "
		    "%llu bytes (raise it by opening the pool with "
		    "MNEMO_POOL_MAX=SIZE set)", p->path.c_str(),
		    (unsigned long long)end, (unsigned long long)p->max);
}

int pool_grow(mnemo_pool *p, uint64_t end)
{
	uint64_t size = p->size.load(std::memory_order_relaxed);
	end = round_up(end, p->hdr.align);
	if (end <= size)
		return 0;
	if (p->priv)
		return fail(EROFS, "pool %s is open privately (MNEMO_PRIVATE): "
			    "it cannot grow", p->path.c_str());
	if (end > p->max || !p->can_grow || p->dev->snapshot())
		return pool_cannot_grow(p, end);
	uint64_t step = std::clamp(size / 2, kStepMin, kStepMax);
	uint64_t to = std::min(std::max(end, round_up(size + step,
						      p->hdr.align)), p->max);
	int rc = extend_file(p, size, to);
	if (rc == 0)
		rc = p->dev->grow(to);
	if (rc)
		return rc;
	write_record(p, to, recorded_max(p));
	p->size.store(to, std::memory_order_release);
	return 0;
}

int pool_raise_max(mnemo_pool *p, uint64_t max)
{
	if (max <= recorded_max(p))
		return 0; /* nothing to raise */
	if (!p->can_grow || max < p->size.load() || max > p->max)
		return fail(EINVAL, "pool %s: a limit of %llu bytes is not "
			    "possible here", p->path.c_str(),
			    (unsigned long long)max);
	write_record(p, p->size.load(), max);
	return 0;
}

int pool_default_max(int fd, uint64_t size, uint64_t *max)
{
	const char *s = getenv("MNEMO_POOL_MAX");
	if (s && *s) {
		int rc = parse_size("MNEMO_POOL_MAX", s, max);
		if (rc == 0 && (*max < size || *max > MNEMO_POOL_MAX_SIZE))
			rc = fail(EINVAL, "MNEMO_POOL_MAX=%s is outside [%llu, "
				  "%llu] (the pool's size and the largest "
				  "pool)", s, (unsigned long long)size,
				  (unsigned long long)MNEMO_POOL_MAX_SIZE);
		*max = round_up(*max, scm::kOsPage);
		return rc;
	}
	uint64_t room = size + fs_free(fd);
	*max = std::max(size, std::min(kDefaultMax, room) & ~(scm::kOsPage - 1));
	return 0;
}

int pool_trim(mnemo_pool *p, uint64_t file_size)
{
	uint64_t size = p->size.load();
	if (p->priv) /* the bytes past size are harmless to a reader */
		return 0;
	if (file_size > size && ftruncate(p->fd, (off_t)size) != 0)
		return fail(errno, "pool %s: cannot cut the bytes past its "
			    "size left by a crash during growth: %s",
			    p->path.c_str(), strerror(errno));
	return 0;
}

} // namespace mnemo
