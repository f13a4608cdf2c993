/*
 * scm_dax.cc -- the `dax` backend: a file on a DAX filesystem mapped by
 * libpmem2 with MAP_SYNC, so that flushed and fenced cache lines are
 * power-fail durable without any system call.
 *
 * libpmem2's upstream is archived; it is used here and nowhere else,
 * loaded at the first dax open (pmem2_lib.h).
 */
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <sys/mman.h>

#include "base/error.h"
#include "scm/backends.h"
#include "scm/pmem2_lib.h"

namespace mnemo::scm {
namespace {

const pmem2_lib *P; /* set by open_dax() before any device exists */

int pmem2_fail(int rc, const char *what)
{
	/* libpmem2 returns -errno or its own PMEM2_E_* codes (< -100000). */
	int err = rc > PMEM2_E_UNKNOWN ? -rc : EINVAL;
	if (rc == PMEM2_E_GRANULARITY_NOT_SUPPORTED)
		err = ENODEV;
	return fail(err, "%s: %s", what, P->errormsg());
}

class dax_device final : public device {
public:
	dax_device(pmem2_source *src, pmem2_vm_reservation *rsv)
		: src_(src), rsv_(rsv)
	{
		base_ = (char *)P->vm_reservation_get_address(rsv);
		window_ = P->vm_reservation_get_size(rsv);
		P->source_get_fd(src, &fd_);
		map_flags_ = MAP_SHARED_VALIDATE | MAP_SYNC;
	}
	~dax_device() override
	{
		unregister_window(this);
		for (auto &m : maps_)
			P->map_delete(&m.second);
		P->vm_reservation_delete(&rsv_);
		P->source_delete(&src_);
	}
	int map_range(uint64_t off, size_t len) override;
	bool can_mirror() const override { return true; } /* untested */
	int unmap_range(uint64_t off, size_t len) override
	{
		auto it = maps_.find(off);
		if (it == maps_.end() || P->map_get_size(it->second) != len)
			return fail(EINVAL, "no dax mapping at offset %llu",
				    (unsigned long long)off);
		int rc = P->map_delete(&it->second);
		if (rc)
			return pmem2_fail(rc, "pmem2_map_delete");
		maps_.erase(it);
		return 0;
	}
	void flush(const void *p, size_t n) override
	{
		if (byte_granular_)
			account_flush(p, n); /* eADR: caches are persistent */
		else
			cpu_flush(p, n);
	}
	void flush_all(const piece *v, size_t k) override
	{
		if (byte_granular_)
			device::flush_all(v, k);
		else
			cpu_flush_all(v, k);
	}
	void stream(void *dst, const piece *v, unsigned k) override
	{
		if (byte_granular_) /* eADR: plain stores are durable */
			device::stream(dst, v, k);
		else
			nt_stream(dst, v, k);
	}
	const char *name() const override { return "dax"; }

private:
	pmem2_source *src_;
	pmem2_vm_reservation *rsv_;
	std::map<uint64_t, pmem2_map *> maps_; /* by file offset */
	bool byte_granular_ = false;
};

int dax_device::map_range(uint64_t off, size_t len)
{
	pmem2_config *cfg;
	int rc = P->config_new(&cfg);
	if (rc)
		return pmem2_fail(rc, "pmem2_config_new");
	P->config_set_required_store_granularity(
		cfg, PMEM2_GRANULARITY_CACHE_LINE);
	P->config_set_offset(cfg, off);
	P->config_set_length(cfg, len);
	P->config_set_vm_reservation(cfg, rsv_, off);
	pmem2_map *m;
	rc = P->map_new(&m, cfg, src_);
	P->config_delete(&cfg);
	if (rc)
		return pmem2_fail(rc, "dax mapping (MAP_SYNC) failed");
	byte_granular_ = P->map_get_store_granularity(m) ==
			 PMEM2_GRANULARITY_BYTE;
	maps_[off] = m;
	return 0;
}

/* End of the mapping of /proc/self/maps that contains `p`; nullptr if
 * none does. */
char *mapping_end(const char *p)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char *end = nullptr;
	unsigned long lo, hi;
	char line[512];
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
		    lo <= (unsigned long)p && (unsigned long)p < hi) {
			end = (char *)hi;
			break;
		}
	if (f)
		fclose(f);
	return end;
}

/*
 * libpmem2 1.12 (Debian 12) maps ALIGN_UP(size, align) + align bytes for a
 * reservation even at a fixed address (align: 2 MiB, 1 GiB from 2 GiB on),
 * but pmem2_vm_reservation_delete() unmaps only `size`: the tail stayed
 * mapped after close, and reopening the pool in the same process failed
 * with EEXIST (seen in the qemu guest, tests/vm/backend.c).  libpmem2 never
 * maps anything beyond the reservation's size, so the tail is unmapped at
 * once -- only if the mapping at `base` really extends over it (a
 * libpmem2 that does not over-reserve leaves nothing to trim).
 */
void trim_reservation_tail(char *base, size_t window)
{
	size_t align = window >= (2ul << 30) ? 1ul << 30 : 2ul << 20;
	size_t reserved = (window + align - 1) / align * align + align;
	char *end = mapping_end(base);
	if (end && end >= base + reserved)
		munmap(base + window, reserved - window);
}

/* True if `fd` can be mapped with MAP_SYNC (a DAX file). */
bool fd_supports_map_sync(int fd)
{
	void *p = mmap(nullptr, kOsPage, PROT_READ | PROT_WRITE,
		       MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	if (p == MAP_FAILED)
		return false;
	munmap(p, kOsPage);
	return true;
}

} // namespace

int open_dax(int fd, void *base, size_t window, std::unique_ptr<device> *out)
{
	if (!fd_supports_map_sync(fd))
		return fail(ENODEV,
			    "dax backend: the pool file is not on a DAX "
			    "filesystem (MAP_SYNC unsupported); use the file "
			    "backend");
	/* Refuse to replace anything first: libpmem2 reserves with
	 * MAP_FIXED_NOREPLACE too, but our message names the occupant. */
	int rc = load_pmem2(&P);
	if (rc)
		return rc;
	rc = reserve(base, window);
	if (rc)
		return rc;
	munmap(base, window);
	pmem2_source *src;
	rc = P->source_from_fd(&src, fd);
	if (rc)
		return pmem2_fail(rc, "pmem2_source_from_fd");
	pmem2_vm_reservation *rsv;
	rc = P->vm_reservation_new(&rsv, base, window);
	if (rc) {
		P->source_delete(&src);
		return pmem2_fail(rc, "reserving the pool window");
	}
	trim_reservation_tail((char *)base, window);
	if (P->vm_reservation_get_address(rsv) != base) {
		P->vm_reservation_delete(&rsv);
		P->source_delete(&src);
		return fail(EADDRINUSE, "address clash: the pool window at %p "
			    "was taken while it was being reserved", base);
	}
	out->reset(new dax_device(src, rsv));
	return 0;
}

} // namespace mnemo::scm
