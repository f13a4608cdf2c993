/*
 * pool.cc -- creating pool files, and loading one at open (lock, check,
 * map, tables, regions); deleting them.  The open and close sequences
 * that attach the layers above are api/pool.cc's.
 *
 * Creation is atomic in the file system: the pool is built and made durable
 * under a temporary name, then renamed into place (RENAME_NOREPLACE).  A pool
 * file therefore either does not exist or has a complete, valid header.
 * Opening never writes: validation failures leave the file untouched.
 */
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <libgen.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/export.h"
#include "mnemosyne.h"
#include "pool/pool.h"

using namespace mnemo;

mnemo_pool::~mnemo_pool()
{
	dev.reset();
	if (fd >= 0)
		close(fd);
}

namespace {

int fsync_parent(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	int dfd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fail_sys("cannot open the directory of", path);
	int rc = fsync(dfd) == 0 ? 0 : fail_sys("cannot fsync dir of", path);
	close(dfd);
	return rc;
}

/* Rename without replacing; falls back to link+unlink where the file
 * system lacks RENAME_NOREPLACE. */
int publish_name(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EINVAL && link(tmp, path) == 0) {
		unlink(tmp);
		return 0;
	}
	if (errno == EEXIST)
		return fail(EEXIST, "cannot create pool %s: it already exists",
			    path);
	return fail_sys("cannot create pool", path);
}

/* The growth limit of a new pool: an explicit address fixes the window
 * at the pool's size unless MNEMO_POOL_MAX asks for more. */
int new_pool_max(int fd, uint64_t size, uint64_t base, uint64_t *max)
{
	const char *env = getenv("MNEMO_POOL_MAX");
	*max = size;
	if (base && !(env && *env))
		return 0;
	int rc = pool_default_max(fd, size, max);
	return rc == 0 && base ? addr_check(base, *max) : rc;
}

int write_new_pool(int fd, const char *path, uint64_t size, uint64_t base)
{
	layout::pool_header h;
	int err = posix_fallocate(fd, 0, (off_t)size);
	if (err)
		return fail(err == EFBIG ? ENOSPC : err,
			    "cannot allocate %llu bytes for pool %s: %s",
			    (unsigned long long)size, path, strerror(err));
	uint64_t max;
	int rc = new_pool_max(fd, size, base, &max);
	if (rc)
		return rc;
	header_init(&h, size, max, base);
	rc = base ? 0 : addr_pick(h.uuid, max, &h.base);
	if (rc)
		return rc;
	header_seal(&h);
	if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return fail_sys("cannot write the header of", path);
	if (fsync(fd) != 0)
		return fail_sys("cannot fsync", path);
	return 0;
}

} // namespace

int mnemo::pool_create_file(const char *path, uint64_t size, uint64_t base)
{
	struct stat st;
	if (stat(path, &st) == 0)
		return fail(EEXIST, "cannot create pool %s: it already exists",
			    path);
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.creating.XXXXXX", path) >=
	    (int)sizeof(tmp))
		return fail(ENAMETOOLONG, "pool path too long: %s", path);
	int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return fail_sys("cannot create pool", path);
	int rc = write_new_pool(fd, path, size, base);
	close(fd);
	if (rc == 0)
		rc = publish_name(tmp, path);
	if (rc) {
		unlink(tmp);
		return rc;
	}
	return fsync_parent(path);
}

namespace {

int lock_fd(int fd, const char *path)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return fail(EBUSY, "pool %s is already open (by another "
			    "process, or by another handle in this one)", path);
	return fail_sys("cannot lock pool", path);
}

/* Read the header, padding a short file with zeros. */
int read_header(int fd, const char *path, layout::pool_header *h,
		uint64_t *file_size)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return fail_sys("cannot stat", path);
	if (!S_ISREG(st.st_mode))
		return fail(EINVAL, "%s is not a regular file", path);
	*file_size = (uint64_t)st.st_size;
	memset(h, 0, sizeof(*h));
	if (pread(fd, h, sizeof(*h), 0) < 0)
		return fail_sys("cannot read", path);
	if (*file_size < sizeof(*h) &&
	    memcmp(h->magic, layout::kMagic, sizeof(layout::kMagic)) == 0)
		return fail(EUCLEAN, "%s is truncated: %llu bytes, shorter "
			    "than a pool header", path,
			    (unsigned long long)*file_size);
	return header_check(h, *file_size, path);
}

/* A window that fits in `room` bytes even as libpmem2 reserves it: it
 * maps ALIGN_UP(w, a) + a bytes for a window of w (a = 2 MiB, or 1 GiB
 * from 2 GiB on; scm_dax.cc), which would overlap what ends the room. */
uint64_t room_for_pmem2(uint64_t room)
{
	uint64_t a = room >= (2ull << 30) ? 1ull << 30 : 2ull << 20;
	return room > 2 * a ? (room - 2 * a) & ~(a - 1) : 0;
}

/* Open the backend `flags` and the environment ask for; "auto" is dax
 * when the file is on a DAX filesystem (open_dax probes it), else file. */
int open_backend(mnemo_pool *p, unsigned flags)
{
	scm::config cfg;
	bool autodetect;
	int rc = scm::config_from(flags, &cfg, &autodetect);
	if (rc)
		return rc;
	void *base = (void *)p->hdr.base;
	size_t window = window_of(p->max);
	/* Something mapped inside the growth window but past the pool (a
	 * pool or program another process placed there): the pool opens,
	 * and may grow up to it. */
	uint64_t room = addr_room(p->hdr.base, window);
	if (room < window)
		room = room_for_pmem2(room);
	if (room >= p->size.load() && room < window)
		p->max = window = room;
	if (autodetect) {
		scm::config dax = cfg;
		dax.backend = scm::kind::dax;
		rc = scm::open_device(p->fd, dax, base, window, &p->dev);
		if (rc != -ENODEV)
			return rc;
	}
	return scm::open_device(p->fd, cfg, base, window, &p->dev);
}

/* Size, limit and window of a pool whose header checked out; a larger
 * MNEMO_POOL_MAX raises the limit (recorded once the pool is open). */
int load_sizes(mnemo_pool *p, uint64_t file_size, uint64_t *raise)
{
	uint64_t size, max, want = 0;
	int rc = header_sizes(&p->hdr, p->path.c_str(), &size, &max);
	p->size.store(size);
	p->zero_above = size;
	p->max = max;
	p->can_grow = layout::has_grow_records(p->hdr.major);
	const char *env = getenv("MNEMO_POOL_MAX");
	if (rc == 0 && p->can_grow && env && *env)
		rc = pool_default_max(p->fd, size, &want);
	*raise = want > max ? want : 0; /* recorded if the window has room */
	if (rc == 0 && *raise)
		rc = addr_check(p->hdr.base, want);
	if (rc == 0 && *raise)
		p->max = want;
	return rc ? rc : pool_trim(p, file_size);
}

} // namespace

int mnemo::pool_load(mnemo_pool *p, unsigned flags, uint64_t *raise)
{
	uint64_t file_size = 0;
	*raise = 0;
	p->priv = flags & MNEMO_PRIVATE;
	int rc = lock_fd(p->fd, p->path.c_str());
	if (rc == 0)
		rc = read_header(p->fd, p->path.c_str(), &p->hdr, &file_size);
	if (rc == 0)
		rc = load_sizes(p, file_size, raise);
	if (rc == 0)
		rc = open_backend(p, flags);
	if (rc)
		return rc;
	p->base = p->dev->base();
	rc = p->dev->map(0, p->hdr.data_off);
	if (rc == 0)
		rc = tables_load(p);
	return rc ? rc : regions_map_all(p);
}

MNEMO_API int mnemo_pool_delete(const char *path)
{
	if (!path)
		return fail(EINVAL, "mnemo_pool_delete: path is NULL");
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail_sys("cannot open pool", path);
	layout::pool_header h;
	int rc = lock_fd(fd, path);
	ssize_t n = rc ? 0 : pread(fd, &h, sizeof(h.magic), 0);
	if (rc == 0 && (n != (ssize_t)sizeof(h.magic) ||
			memcmp(h.magic, layout::kMagic, sizeof(h.magic)) != 0))
		rc = fail(EMEDIUMTYPE, "%s is not a Mnemosyne pool; refusing "
			  "to delete it", path);
	if (rc == 0 && unlink(path) != 0)
		rc = fail_sys("cannot delete pool", path);
	close(fd);
	return rc;
}

MNEMO_API void *mnemo_pool_base(const mnemo_pool *pool)
{
	return pool ? pool->base : nullptr;
}

MNEMO_API size_t mnemo_pool_size(const mnemo_pool *pool)
{
	return pool ? pool->size.load(std::memory_order_acquire) : 0;
}

MNEMO_API size_t mnemo_pool_max(const mnemo_pool *pool)
{
	return pool ? pool->max : 0;
}

MNEMO_API const char *mnemo_pool_backend(const mnemo_pool *pool)
{
	return pool ? pool->dev->name() : "none";
}

namespace {

/* Live slots of a table of n. */
uint32_t live_slots(const layout::slot *t, uint32_t n)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++)
		k += t[i].state == layout::kSlotLive;
	return k;
}

void pool_info(mnemo_pool *p, struct mnemo_pool_info *in)
{
	const layout::pool_header &h = p->hdr;
	in->format_major = h.major;
	in->format_minor = h.minor;
	memcpy(in->uuid, h.uuid, sizeof(in->uuid));
	in->base = h.base;
	in->size = p->size.load();
	in->max = p->max;
	in->align = h.align;
	std::lock_guard<std::mutex> g(p->mu);
	for (const mnemo_pool::extent &e : p->extents)
		in->region_bytes += e.size;
	in->region_slots = h.region_slots;
	in->regions = (uint32_t)p->extents.size();
	in->root_slots = h.root_slots;
	in->roots = live_slots(p->roots(), h.root_slots);
	in->create_time = h.create_time;
}

} // namespace

MNEMO_API int mnemo_pool_info(mnemo_pool *pool, struct mnemo_pool_info *info,
			      size_t size)
{
	constexpr size_t v01 = sizeof(struct mnemo_pool_info);
	if (!pool || !info || size < v01)
		return fail(EINVAL, "mnemo_pool_info: pool, info and a size of "
			    "at least %zu are required", v01);
	struct mnemo_pool_info mine = {};
	pool_info(pool, &mine);
	memset(info, 0, size);
	memcpy(info, &mine, sizeof(mine));
	return 0;
}
