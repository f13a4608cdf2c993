/*
 * pool_badinput.cc -- every kind of bad input gets its own error code and
 * a clear message, never a crash, and leaves the pool file byte-for-byte
 * unchanged.
 * (C++ so that it can forge headers and slots with the library's own layout
 * and checksum.)
 */
#include <cerrno>
#include <csignal>
#include <cstring>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/hash.h"
#include "layout.h"
#include "util.h"

using namespace mnemo;

namespace {

/* Assert that opening `path` fails with `err` and a message containing
 * `words`, and that the file did not change. */
void refused(const char *path, int err, const char *words, unsigned flags = 0)
{
	uint64_t before = t_file_hash(path);
	mnemo_pool *p = nullptr;
	int rc = mnemo_pool_open(path, flags, &p);
	cr_assert_eq(rc, -err, "got %d (%s), want %d", rc, mnemo_errormsg(), -err);
	cr_assert_null(p);
	cr_assert(strstr(mnemo_errormsg(), words), "message \"%s\" lacks \"%s\"",
		  mnemo_errormsg(), words);
	cr_assert_eq(t_file_hash(path), before, "the pool file was modified");
}

layout::pool_header read_hdr(const char *path)
{
	layout::pool_header h;
	int fd = open(path, O_RDONLY);
	cr_assert_eq(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	return h;
}

void write_at(const char *path, const void *buf, size_t n, off_t off)
{
	int fd = open(path, O_WRONLY);
	cr_assert_eq(pwrite(fd, buf, n, off), (ssize_t)n);
	close(fd);
}

void write_hdr(const char *path, layout::pool_header h, bool reseal)
{
	if (reseal)
		h.checksum = hash64(&h, offsetof(layout::pool_header, checksum),
				    layout::kHeaderSeed);
	write_at(path, &h, sizeof(h), 0);
}

const char *pool_1m(const char *tag)
{
	const char *path = t_path(tag);
	t_create(path, 1 << 20);
	return path;
}

/* A pool with one region "r" and slot 0 holding it. */
const char *pool_with_region(const char *tag)
{
	const char *path = pool_1m(tag);
	mnemo_pool *p = t_open(path, 0);
	void *a;
	cr_assert_eq(mnemo_region_create(p, "r", 8192, &a), 0);
	memset(a, 0x5a, 8192);
	mnemo_pool_close(&p);
	return path;
}

layout::slot read_slot(const char *path, int i)
{
	layout::slot s;
	int fd = open(path, O_RDONLY);
	cr_assert_eq(pread(fd, &s, sizeof(s), layout::kHeaderSize + i * 128), 128);
	close(fd);
	return s;
}

void write_slot(const char *path, int i, layout::slot s, bool reseal)
{
	if (reseal)
		s.checksum = hash64((char *)&s + 16, 104, layout::kSlotSeed);
	write_at(path, &s, sizeof(s), layout::kHeaderSize + i * 128);
}

} // namespace

Test(pool_badinput, foreign_file)
{
	const char *path = t_path("foreign");
	FILE *f = fopen(path, "w");
	for (int i = 0; i < 100000; i++)
		fprintf(f, "hello world %d\n", i);
	fclose(f);
	refused(path, EMEDIUMTYPE, "not a Mnemosyne pool");
	cr_assert_eq(mnemo_pool_delete(path), -EMEDIUMTYPE);
	cr_assert_eq(access(path, F_OK), 0, "a foreign file must never be deleted");
}

Test(pool_badinput, empty_file)
{
	const char *path = t_path("empty");
	close(open(path, O_CREAT | O_WRONLY, 0600));
	refused(path, EMEDIUMTYPE, "not a Mnemosyne pool");
}

Test(pool_badinput, corrupt_header)
{
	const char *path = pool_1m("hdr");
	auto h = read_hdr(path);
	h.reserved[100] ^= 1;
	write_hdr(path, h, false);
	refused(path, EUCLEAN, "header checksum mismatch");
}

Test(pool_badinput, inconsistent_geometry)
{
	const char *path = pool_1m("geom");
	auto h = read_hdr(path);
	h.data_off = h.size + 4096;
	write_hdr(path, h, true);
	refused(path, EUCLEAN, "geometry");
}

Test(pool_badinput, wrong_format_version)
{
	const char *path = pool_1m("version");
	auto h = read_hdr(path);
	h.major = 3; /* the previous format: refused, not misread */
	write_hdr(path, h, true);
	refused(path, ENOTSUP, "format version 3.0");
}

/* A pool of format 4.0 (no grow records) opens and works, but cannot
 * grow: a clear message, and its data stays. */
Test(pool_badinput, format_4_pool_opens_but_cannot_grow)
{
	const char *path = pool_with_region("v4");
	auto h = read_hdr(path);
	h.major = layout::kFormatMajorOld;
	memset(h.grow, 0, sizeof(h.grow));
	uint64_t sum = hash64(&h, layout::kHeaderSum4, layout::kHeaderSeed);
	memcpy((char *)&h + layout::kHeaderSum4, &sum, sizeof(sum));
	write_at(path, &h, sizeof(h), 0);
	mnemo_pool *p = t_open(path, 0);
	cr_assert_eq(mnemo_pool_size(p), 1u << 20);
	cr_assert_eq(mnemo_pool_max(p), 1u << 20);
	void *a;
	cr_assert_eq(mnemo_region_find(p, "r", &a, nullptr), 0);
	cr_assert_eq(((unsigned char *)a)[100], 0x5a);
	cr_assert_eq(mnemo_region_create(p, "big", 2 << 20, &a), -ENOSPC);
	cr_assert(strstr(mnemo_errormsg(), "format 4.0"), "%s",
		  mnemo_errormsg());
	mnemo_pool_close(&p);
}

namespace {

int find_ring(const char *name, void *addr, size_t, void *arg)
{
	if (strcmp(name, "rawl:t") != 0)
		return 0;
	*(uint64_t **)arg = (uint64_t *)((char *)addr + layout::kRawlRingOff);
	return 1;
}

/* Append the record {7, 8, 9} to a new RAWL "t" of the pool at path and
 * return the checksum word the ring holds; the record reads back after
 * a reopen. */
uint64_t first_record_sum(const char *path)
{
	mnemo_pool *p = t_open(path, 0);
	mnemo_rawl *l;
	cr_assert_eq(mnemo_rawl_open(p, "t", 64, &l), 0, "%s", mnemo_errormsg());
	const uint64_t w[3] = {7, 8, 9};
	cr_assert_eq(mnemo_rawl_append(l, w, 3), 0);
	uint64_t *ring = nullptr;
	cr_assert_eq(mnemo_region_foreach(p, MNEMO_FOREACH_ALL, find_ring,
					  &ring), 1);
	cr_assert_eq(ring[0], 3u, "the record's header");
	uint64_t sum = ring[4];
	mnemo_rawl_close(&l);
	mnemo_pool_close(&p);
	p = t_open(path, 0);
	cr_assert_eq(mnemo_rawl_open(p, "t", 64, &l), 0, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_rawl_count(l), 1u, "the record is not read back");
	mnemo_rawl_close(&l);
	mnemo_pool_close(&p);
	return sum;
}

} // namespace

/* A pool keeps the record checksum of the format it was created with:
 * hash64_wide in format 5, sum64 in format 6 (layout.h). */
Test(pool_badinput, record_checksum_follows_the_pool_format)
{
	const uint64_t rec[4] = {3, 7, 8, 9}; /* header, payload */
	const char *path6 = pool_1m("sum6");
	cr_assert_eq(read_hdr(path6).major, layout::kFormatMajor);
	cr_assert_eq(first_record_sum(path6),
		     sum64(rec + 1, 3, layout::kRecordSeed ^ mix64(rec[0])));

	const char *path5 = pool_1m("sum5");
	auto h = read_hdr(path5);
	h.major = layout::kFormatMajor5;
	write_hdr(path5, h, true);
	cr_assert_eq(first_record_sum(path5),
		     hash64_wide(rec, sizeof(rec), layout::kRecordSeed));
	mnemo_pool *p = t_open(path5, 0);
	void *a;
	cr_assert_eq(mnemo_region_create(p, "big", 2 << 20, &a), 0,
		     "a format-5 pool grows: %s", mnemo_errormsg());
	mnemo_pool_close(&p);
	cr_assert_eq(read_hdr(path5).major, layout::kFormatMajor5,
		     "the pool's format changed");
}

Test(pool_badinput, truncated_file)
{
	const char *path = pool_1m("trunc");
	cr_assert_eq(truncate(path, 512 << 10), 0);
	refused(path, EUCLEAN, "truncated");
	cr_assert_eq(truncate(path, 100), 0);
	refused(path, EUCLEAN, "truncated");
}

Test(pool_badinput, address_clash)
{
	const char *path = pool_1m("clash");
	void *base = (void *)read_hdr(path).base;
	void *q = mmap(base, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	cr_assert_eq(q, base);
	refused(path, EADDRINUSE, "address clash");
	cr_assert_eq(*(volatile char *)q, 0, "the occupant is untouched");
	munmap(q, 4096);
	mnemo_pool *p = t_open(path, 0);
	mnemo_pool_close(&p);
}

Test(pool_badinput, already_open)
{
	const char *path = pool_1m("busy");
	mnemo_pool *p = t_open(path, 0);
	refused(path, EBUSY, "already open");
	int up[2], down[2]; /* child -> parent, parent -> child */
	cr_assert_eq(pipe(up), 0);
	cr_assert_eq(pipe(down), 0);
	mnemo_pool_close(&p);
	pid_t pid = fork();
	if (pid == 0) { /* another process holds the pool until told to stop */
		mnemo_pool *c = nullptr;
		char b;
		if (mnemo_pool_open(path, 0, &c) == 0 && write(up[1], "k", 1) == 1)
			(void)!read(down[0], &b, 1);
		_exit(0);
	}
	char b;
	cr_assert_eq(read(up[0], &b, 1), 1);
	refused(path, EBUSY, "already open");
	cr_assert_eq(write(down[1], "x", 1), 1);
	waitpid(pid, nullptr, 0);
	p = t_open(path, 0);
	mnemo_pool_close(&p);
}

Test(pool_badinput, full_pool_keeps_data)
{
	const char *path = t_path("full");
	setenv("MNEMO_POOL_MAX", "1M", 1); /* a pool that may not grow */
	t_create(path, 1 << 20);
	unsetenv("MNEMO_POOL_MAX");
	mnemo_pool *p = t_open(path, 0);
	void *a[64];
	int n = 0;
	int rc;
	while ((rc = mnemo_region_create(p, nullptr, 64 << 10, &a[n])) == 0) {
		memset(a[n], n + 1, 64 << 10);
		n++;
	}
	cr_assert_eq(rc, -ENOMEM);
	cr_assert(strstr(mnemo_errormsg(), "its limit is 1048576 bytes"), "%s",
		  mnemo_errormsg());
	cr_assert_gt(n, 10);
	mnemo_pool_close(&p);
	p = t_open(path, 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(((unsigned char *)a[i])[12345], i + 1);
	mnemo_pool_close(&p);
}

Test(pool_badinput, region_slots_exhausted)
{
	const char *path = t_path("slots");
	t_create(path, 4 << 20);
	mnemo_pool *p = t_open(path, 0);
	void *a;
	for (unsigned i = 0; i < layout::kRegionSlots; i++)
		cr_assert_eq(mnemo_region_create(p, nullptr, 4096, &a), 0);
	cr_assert_eq(mnemo_region_create(p, nullptr, 4096, &a), -ENOSPC);
	cr_assert(strstr(mnemo_errormsg(), "region slots"));
	mnemo_pool_close(&p);
}

Test(pool_badinput, corrupt_slot_checksum)
{
	const char *path = pool_with_region("slotsum");
	auto s = read_slot(path, 0);
	s.size += 4096;
	write_slot(path, 0, s, false);
	refused(path, EUCLEAN, "checksum mismatch");
}

Test(pool_badinput, corrupt_slot_state)
{
	const char *path = pool_with_region("slotstate");
	auto s = read_slot(path, 0);
	s.state = 12345;
	write_slot(path, 0, s, false);
	refused(path, EUCLEAN, "invalid state word");
}

Test(pool_badinput, overlapping_regions)
{
	const char *path = pool_with_region("overlap");
	auto s = read_slot(path, 0);
	s.offset += 4096; /* overlaps slot 0's extent */
	s.name[0] = 'q';
	write_slot(path, 1, s, true);
	refused(path, EUCLEAN, "overlap");
}

Test(pool_badinput, extent_outside_pool)
{
	const char *path = pool_with_region("outside");
	auto s = read_slot(path, 0);
	s.offset = 1 << 30;
	write_slot(path, 0, s, true);
	refused(path, EUCLEAN, "outside the pool");
}

Test(pool_badinput, disk_full_at_creation)
{
	const char *path = t_path("diskfull");
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit rl = {1 << 20, 1 << 20};
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	mnemo_pool *p = nullptr;
	cr_assert_eq(mnemo_pool_create(path, 8 << 20, nullptr, 0, &p), -ENOSPC);
	cr_assert(strstr(mnemo_errormsg(), "cannot allocate"));
	cr_assert_eq(access(path, F_OK), -1, "no pool file is left behind");
	char dir[300];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	DIR *d = opendir(dir);
	int entries = 0;
	for (dirent *e; (e = readdir(d));)
		entries += e->d_name[0] != '.';
	closedir(d);
	cr_assert_eq(entries, 0, "no temporary file is left behind");
}

Test(pool_badinput, create_misuse)
{
	const char *path = pool_1m("exists");
	uint64_t before = t_file_hash(path);
	mnemo_pool *p = nullptr;
	cr_assert_eq(mnemo_pool_create(path, 1 << 20, nullptr, 0, &p), -EEXIST);
	cr_assert_eq(t_file_hash(path), before);
	cr_assert_eq(mnemo_pool_create(nullptr, 1 << 20, nullptr, 0, &p), -EINVAL);
	cr_assert_eq(mnemo_pool_create(t_path("small"), 4096, nullptr, 0, &p), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "minimum"));
	cr_assert_eq(mnemo_pool_create(t_path("unaligned"), 1 << 20, (void *)0x300000000123, 0, &p), -EINVAL);
	cr_assert_eq(mnemo_pool_open(t_path("missing"), 0, &p), -ENOENT);
	cr_assert_eq(mnemo_pool_open(path, 0, nullptr), -EINVAL);
	cr_assert_eq(mnemo_pool_close(nullptr), -EINVAL);
}

Test(pool_badinput, api_misuse_on_open_pool)
{
	const char *path = pool_with_region("misuse");
	mnemo_pool *p = t_open(path, 0);
	void *a;
	char longname[100];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[99] = '\0';
	cr_assert_eq(mnemo_region_create(p, "r", 4096, &a), -EEXIST);
	cr_assert_eq(mnemo_region_create(p, longname, 4096, &a), -ENAMETOOLONG);
	cr_assert_eq(mnemo_region_create(p, nullptr, 0, &a), -EINVAL);
	cr_assert_eq(mnemo_region_create(p, nullptr, (size_t)1 << 40, &a),
		     -ENOMEM); /* past the pool's growth limit */
	cr_assert_eq(mnemo_region_delete(p, (void *)0x1000), -EINVAL);
	cr_assert_eq(mnemo_root_set(p, "", nullptr), -EINVAL);
	cr_assert_eq(mnemo_root_set(p, longname, nullptr), -ENAMETOOLONG);
	cr_assert_eq(mnemo_root_delete(p, "absent"), -ENOENT);
	uint64_t w[2];
	cr_assert_eq(mnemo_store64((uint64_t *)((char *)w + 4), 1), -EINVAL);
	cr_assert_eq(mnemo_shadow_update((void **)((char *)w + 1), w, w, 8), -EINVAL);
	char buf[64];
	void *slot = nullptr;
	cr_assert_eq(mnemo_shadow_update(&slot, buf, buf + 8, 16), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "overlaps"));
	char other[16] = {0};
	slot = buf;
	cr_assert_eq(mnemo_shadow_update(&slot, buf, other, 16), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "live copy"));
	void **inside = (void **)(buf + 16);
	*inside = nullptr;
	cr_assert_eq(mnemo_shadow_update(inside, buf, other, 32), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "inside spare"));
	cr_assert_eq(mnemo_pool_create(t_path("huge"), SIZE_MAX - 100, nullptr, 0, &p), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "maximum"));
	mnemo_pool_close(&p);
}

Test(pool_badinput, bad_environment)
{
	const char *path = pool_1m("env");
	setenv("MNEMO_BACKEND", "floppy", 1);
	refused(path, EINVAL, "MNEMO_BACKEND=floppy");
	setenv("MNEMO_BACKEND", "file", 1);
	setenv("MNEMO_DURABILITY", "forever", 1);
	refused(path, EINVAL, "MNEMO_DURABILITY");
	unsetenv("MNEMO_DURABILITY");
	unsetenv("MNEMO_BACKEND");
	setenv("MNEMO_POOL_SIZE", "lots", 1);
	mnemo_pool *p = nullptr;
	cr_assert_eq(mnemo_pool_open(t_path("envsize"), MNEMO_CREATE, &p), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "MNEMO_POOL_SIZE"));
}

Test(pool_badinput, dax_backend_on_non_dax_file)
{
	const char *path = pool_1m("nodax");
	refused(path, ENODEV, "not on a DAX filesystem", MNEMO_BACKEND_DAX);
	mnemo_pool *p = t_open(path, 0); /* auto falls back to the file backend */
	cr_assert_str_eq(mnemo_pool_backend(p), "file");
	mnemo_pool_close(&p);
}

Test(pool_badinput, rawl_misuse)
{
	const char *path = pool_1m("rawl");
	mnemo_pool *p = t_open(path, 0);
	mnemo_rawl *l = nullptr;
	cr_assert_eq(mnemo_rawl_open(p, "l", 2, &l), -EINVAL);
	cr_assert_eq(mnemo_rawl_open(p, "l", 16, &l), 0);
	uint64_t w[600] = {};
	size_t cap = 16 + (4096 - 128 - 16 * 8) / 8; /* the region is a page */
	cr_assert_eq(mnemo_rawl_append(l, w, cap), -EINVAL);
	while (mnemo_rawl_append(l, w, 100) == 0)
		;
	cr_assert(strstr(mnemo_errormsg(), "log is full"));
	size_t n = mnemo_rawl_count(l);
	cr_assert_eq(mnemo_rawl_append(l, nullptr, 3), -EINVAL);
	cr_assert_eq(mnemo_rawl_count(l), n);
	mnemo_rawl_close(&l);
	cr_assert_null(l);
	mnemo_pool_close(&p);
}
