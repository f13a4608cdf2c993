/*
 * kmod_test.c -- guest test program for mnemo.ko (run by tests/vm/kmod.sh
 * as root inside the qemu guest; every check asserts and exits 1 on
 * failure, naming what failed).
 *
 * usage: kmod_test basic | badargs | deny | evict PAGES SEED
 *        | write NAME PAGES SEED | verify NAME PAGES SEED
 *        | hold NAME CMD | keep NAME PAGES SEED | pin NAME PAGES SEED
 *        | list | delete NAME | fuzz SEED COUNT | hot PAGES | race PAGES
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../../kmod/uapi/mnemo.h"

#define DEV "/dev/mnemo"
#define MNEMO_SLOTS_GUESS 64
#define FIXED_ADDR ((void *)0x500000000000UL)

static long page_size;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fprintf(stderr, " (errno %d %s)\n", errno,          \
				strerror(errno));                            \
			exit(1);                                             \
		}                                                            \
	} while (0)

/* ioctl expected to fail with errno @want. */
#define EXPECT_ERR(fd, req, arg, want, what)                                 \
	do {                                                                 \
		errno = 0;                                                   \
		int r_ = ioctl(fd, req, arg);                                \
		CHECK(r_ == -1 && errno == (want), "%s %s: got %d, want %s", \
		      #req, what, r_, #want);                                \
		printf("ok   %-18s %-28s -> %s\n", #req, what, #want);       \
	} while (0)

static int dev_open(int flags)
{
	int fd = open(DEV, flags);

	CHECK(fd >= 0, "open %s", DEV);
	return fd;
}

static int region_create(int fd, const char *name, const char *backing,
			 uint64_t size, uint32_t mode, uint32_t flags)
{
	struct mnemo_kcreate c;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", name);
	snprintf(c.backing, sizeof(c.backing), "%s", backing);
	c.size = size;
	c.mode = mode;
	c.flags = flags;
	return ioctl(fd, MNEMO_IOC_CREATE, &c);
}

static int region_delete(int fd, const char *name)
{
	struct mnemo_kdelete d;

	memset(&d, 0, sizeof(d));
	snprintf(d.name, sizeof(d.name), "%s", name);
	return ioctl(fd, MNEMO_IOC_DELETE, &d);
}

static int region_resize(int fd, const char *name, uint64_t size)
{
	struct mnemo_kresize rs;

	memset(&rs, 0, sizeof(rs));
	snprintf(rs.name, sizeof(rs.name), "%s", name);
	rs.size = size;
	return ioctl(fd, MNEMO_IOC_RESIZE, &rs);
}

/* Open /dev/mnemo, bind it to @name; returns the fd, size in *size. */
static int region_open(const char *name, int write, uint64_t *size)
{
	struct mnemo_kopen o;
	int fd = open(DEV, write ? O_RDWR : O_RDONLY);

	if (fd < 0)
		return -1;
	memset(&o, 0, sizeof(o));
	snprintf(o.name, sizeof(o.name), "%s", name);
	o.flags = write ? MNEMO_OPEN_WRITE : 0;
	if (ioctl(fd, MNEMO_IOC_OPEN, &o)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	if (size)
		*size = o.size;
	return fd;
}

static void *region_map(int fd, uint64_t size, int prot)
{
	void *p = mmap(FIXED_ADDR, size, prot, MAP_SHARED | MAP_FIXED, fd, 0);

	CHECK(p == FIXED_ADDR, "mmap at %p", FIXED_ADDR);
	return p;
}

static uint64_t word(uint64_t seed, uint64_t i)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + i + 1;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x;
}

static void fill(uint64_t *p, uint64_t words, uint64_t seed)
{
	for (uint64_t i = 0; i < words; i++)
		p[i] = word(seed, i);
}

static void verify(const uint64_t *p, uint64_t words, uint64_t seed)
{
	for (uint64_t i = 0; i < words; i++)
		CHECK(p[i] == word(seed, i), "word %llu (page %llu): %#llx != %#llx",
		      (unsigned long long)i,
		      (unsigned long long)(i * 8 / page_size),
		      (unsigned long long)p[i],
		      (unsigned long long)word(seed, i));
}

static struct mnemo_kstat stat_get(void)
{
	struct mnemo_kstat st;
	int fd = dev_open(O_RDONLY);

	CHECK(ioctl(fd, MNEMO_IOC_STAT, &st) == 0, "STAT");
	close(fd);
	return st;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmd_basic(void)
{
	int fd = dev_open(O_RDWR);
	uint64_t size = 16 * page_size, got;
	struct mnemo_kinfo info[8];
	struct mnemo_klist l = { .info = (uintptr_t)info, .capacity = 8 };
	uint64_t *p;
	int rfd;

	CHECK(region_create(fd, "basic", "/tmp/basic.bak", size, 0600, 0) == 0,
	      "create basic");
	CHECK(ioctl(fd, MNEMO_IOC_LIST, &l) == 0, "LIST");
	CHECK(l.count >= 1, "list count %u", l.count);
	int found = 0;
	for (unsigned i = 0; i < l.count && i < 8; i++)
		if (!strcmp(info[i].name, "basic")) {
			found = 1;
			CHECK(info[i].size == size && info[i].mode == 0600 &&
			      info[i].uid == 0 && info[i].resident == 0,
			      "list entry: size %llu mode %o uid %u resident %llu",
			      (unsigned long long)info[i].size, info[i].mode,
			      info[i].uid, (unsigned long long)info[i].resident);
		}
	CHECK(found, "basic not listed");

	rfd = region_open("basic", 1, &got);
	CHECK(rfd >= 0 && got == size, "open basic rw (size %llu)",
	      (unsigned long long)got);
	p = region_map(rfd, size, PROT_READ | PROT_WRITE);
	for (uint64_t i = 0; i < size / 8; i++)
		CHECK(p[i] == 0, "new region not zero at word %llu",
		      (unsigned long long)i);
	fill(p, size / 8, 1);
	CHECK(munmap(p, size) == 0, "munmap");
	/* SYNC: the backing file becomes a full image of the region */
	CHECK(ioctl(rfd, MNEMO_IOC_SYNC) == 0, "SYNC");
	close(rfd);
	uint64_t *img = malloc(size);
	int bak = open("/tmp/basic.bak", O_RDONLY);
	CHECK(img && bak >= 0 && pread(bak, img, size, 0) == (ssize_t)size,
	      "read back /tmp/basic.bak after SYNC");
	verify(img, size / 8, 1);
	close(bak);
	free(img);

	/* read-only binding: data visible, PROT_WRITE refused */
	rfd = region_open("basic", 0, NULL);
	CHECK(rfd >= 0, "open basic ro");
	errno = 0;
	CHECK(mmap(FIXED_ADDR, size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_FIXED, rfd, 0) == MAP_FAILED &&
	      errno == EACCES, "writable map of read-only binding");
	errno = 0;
	CHECK(mmap(NULL, size, PROT_READ, MAP_PRIVATE, rfd, 0) == MAP_FAILED &&
	      errno == EINVAL, "MAP_PRIVATE refused");
	errno = 0;
	CHECK(mmap(NULL, size + page_size, PROT_READ, MAP_SHARED, rfd, 0) ==
	      MAP_FAILED && errno == EINVAL, "map beyond the region refused");
	p = region_map(rfd, size, PROT_READ);
	verify(p, size / 8, 1);

	/* shrink while mapped: the tail is gone (SIGBUS), head intact */
	CHECK(region_resize(fd, "basic", 8 * page_size) == 0, "shrink");
	verify(p, 8 * page_size / 8, 1);
	pid_t pid = fork();
	if (pid == 0) {
		volatile uint64_t x = p[9 * page_size / 8];
		(void)x;
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) &&
	      WTERMSIG(st) == SIGBUS, "access past shrunk end: status %#x", st);
	CHECK(region_resize(fd, "basic", size) == 0, "grow");
	for (uint64_t i = 8 * page_size / 8; i < size / 8; i++)
		CHECK(p[i] == 0, "grown tail not zero at word %llu",
		      (unsigned long long)i);
	verify(p, 8 * page_size / 8, 1);
	CHECK(munmap(p, size) == 0, "munmap");

	errno = 0;
	CHECK(region_delete(fd, "basic") == -1 && errno == EBUSY,
	      "delete while open must be EBUSY");
	close(rfd);
	CHECK(region_delete(fd, "basic") == 0, "delete");
	errno = 0;
	CHECK(region_open("basic", 0, NULL) == -1 && errno == ENOENT,
	      "open deleted region");
	close(fd);
	printf("basic: create/list/map/write/read/resize/delete ok\n");
	return 0;
}

static int cmd_badargs(void)
{
	int fd = dev_open(O_RDWR), rofd, bfd;
	struct mnemo_kcreate c;
	struct mnemo_kopen o;
	struct mnemo_kresize rs;
	struct mnemo_klist l;

	CHECK(region_create(fd, "bad", "", 4 * page_size, 0600, 0) == 0,
	      "create bad");
#define RESET_C()                                                            \
	do {                                                                 \
		memset(&c, 0, sizeof(c));                                    \
		strcpy(c.name, "x");                                         \
		c.size = page_size;                                          \
		c.mode = 0600;                                               \
	} while (0)
	RESET_C(); memset(c.name, 'a', sizeof(c.name));
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EINVAL, "name no NUL");
	RESET_C(); c.name[0] = 0;
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EINVAL, "empty name");
	RESET_C(); c.size = 0;
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EINVAL, "size 0");
	RESET_C(); c.size = page_size + 1;
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EINVAL, "size unaligned");
	RESET_C(); c.size = ~0ULL - page_size + 1;
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EFBIG, "size 2^64-4096");
	RESET_C(); c.size = (MNEMO_REGION_PAGES_MAX + 1) * page_size;
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EFBIG, "size > max");
	RESET_C(); c.mode = 01777;
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EINVAL, "mode sticky");
	RESET_C(); c.flags = 0x80;
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EINVAL, "unknown flag");
	RESET_C(); c.flags = MNEMO_CREATE_KEEP;
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EINVAL, "KEEP, no backing");
	RESET_C(); strcpy(c.backing, "relative/path");
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EINVAL, "relative backing");
	RESET_C(); memset(c.backing, '/', sizeof(c.backing));
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EINVAL, "backing no NUL");
	RESET_C(); strcpy(c.backing, "/nonexistent-dir/f");
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, ENOENT, "backing dir missing");
	RESET_C(); strcpy(c.backing, "/dev/null");
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EINVAL, "backing not regular");
	RESET_C(); strcpy(c.name, "bad");
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, &c, EEXIST, "duplicate name");
	EXPECT_ERR(fd, MNEMO_IOC_CREATE, (void *)8, EFAULT, "bad pointer");
	EXPECT_ERR(fd, MNEMO_IOC_CREATE - 0x10000, &c, ENOTTY, "wrong size in cmd");
	EXPECT_ERR(fd, _IO(MNEMO_IOC_MAGIC, 99), NULL, ENOTTY, "unknown command");

	memset(&o, 0, sizeof(o));
	strcpy(o.name, "nosuch");
	EXPECT_ERR(fd, MNEMO_IOC_OPEN, &o, ENOENT, "no such region");
	strcpy(o.name, "bad"); o.flags = 0x10;
	EXPECT_ERR(fd, MNEMO_IOC_OPEN, &o, EINVAL, "unknown flag");
	o.flags = 0; o.reserved = 1;
	EXPECT_ERR(fd, MNEMO_IOC_OPEN, &o, EINVAL, "reserved != 0");
	o.reserved = 0; memset(o.name, 'b', sizeof(o.name));
	EXPECT_ERR(fd, MNEMO_IOC_OPEN, &o, EINVAL, "name no NUL");
	rofd = dev_open(O_RDONLY);
	memset(&o, 0, sizeof(o));
	strcpy(o.name, "bad"); o.flags = MNEMO_OPEN_WRITE;
	EXPECT_ERR(rofd, MNEMO_IOC_OPEN, &o, EBADF, "write on O_RDONLY fd");
	close(rofd);
	bfd = region_open("bad", 1, NULL);
	CHECK(bfd >= 0, "open bad");
	o.flags = 0;
	EXPECT_ERR(bfd, MNEMO_IOC_OPEN, &o, EBUSY, "fd already bound");
	errno = 0;
	CHECK(mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, 0) ==
	      MAP_FAILED && errno == ENODEV, "mmap of an unbound fd");
	errno = 0;
	CHECK(mmap(NULL, page_size, PROT_READ, MAP_SHARED, bfd,
		   4 * page_size) == MAP_FAILED && errno == EINVAL,
	      "mmap at offset == size");
	EXPECT_ERR(bfd, MNEMO_IOC_SYNC, NULL, ENOENT, "no backing file");
	close(bfd);
	EXPECT_ERR(fd, MNEMO_IOC_SYNC, NULL, ENODEV, "fd not bound");

	memset(&rs, 0, sizeof(rs));
	strcpy(rs.name, "bad"); rs.size = 0;
	EXPECT_ERR(fd, MNEMO_IOC_RESIZE, &rs, EINVAL, "size 0");
	rs.size = 3;
	EXPECT_ERR(fd, MNEMO_IOC_RESIZE, &rs, EINVAL, "size unaligned");
	rs.size = ~0ULL & ~(uint64_t)(page_size - 1);
	EXPECT_ERR(fd, MNEMO_IOC_RESIZE, &rs, EFBIG, "size huge");
	strcpy(rs.name, "nosuch"); rs.size = page_size;
	EXPECT_ERR(fd, MNEMO_IOC_RESIZE, &rs, ENOENT, "no such region");

	memset(&l, 0, sizeof(l));
	l.capacity = 4; l.info = 16;
	EXPECT_ERR(fd, MNEMO_IOC_LIST, &l, EFAULT, "bad info pointer");
	l.capacity = 0; l.info = 0;
	CHECK(ioctl(fd, MNEMO_IOC_LIST, &l) == 0 && l.count >= 1,
	      "LIST with capacity 0 counts");
	l.capacity = 0xffffffff; l.info = 16;
	EXPECT_ERR(fd, MNEMO_IOC_LIST, &l, EFAULT, "huge capacity, bad ptr");
	EXPECT_ERR(fd, MNEMO_IOC_STAT, (void *)8, EFAULT, "bad pointer");

	struct mnemo_kdelete d;
	memset(&d, 'c', sizeof(d));
	EXPECT_ERR(fd, MNEMO_IOC_DELETE, &d, EINVAL, "name no NUL");
	CHECK(region_delete(fd, "bad") == 0, "delete bad");
	errno = 0;
	CHECK(region_delete(fd, "bad") == -1 && errno == ENOENT,
	      "delete twice");

	/* table full: ENOSPC, then all slots freed again */
	struct mnemo_kstat st = stat_get();
	unsigned int made = 0;
	char name[32];
	for (;;) {
		snprintf(name, sizeof(name), "fill%u", made);
		if (region_create(fd, name, "", page_size, 0600, 0))
			break;
		made++;
	}
	CHECK(errno == ENOSPC && made <= st.slots && made > 0,
	      "table full after %u: want ENOSPC", made);
	printf("ok   table full after %u regions -> ENOSPC\n", made);
	while (made--) {
		snprintf(name, sizeof(name), "fill%u", made);
		CHECK(region_delete(fd, name) == 0, "delete %s", name);
	}
	close(fd);
	printf("badargs: every bad argument rejected with its errno\n");
	return 0;
}

/* Runs in a child that has dropped to uid/gid 1000. */
static void deny_child(void)
{
	int fd = dev_open(O_RDWR);

	CHECK(getuid() == 1000 && geteuid() == 1000, "still root");
	errno = 0;
	CHECK(region_open("priv", 0, NULL) == -1 && errno == EACCES,
	      "uid 1000 opening a 0600 root region: want EACCES");
	printf("ok   uid 1000: open 0600 root region -> EACCES\n");
	errno = 0;
	CHECK(region_open("shared", 1, NULL) == -1 && errno == EACCES,
	      "uid 1000 opening 0644 region for write: want EACCES");
	printf("ok   uid 1000: open 0644 region for write -> EACCES\n");
	int rfd = region_open("shared", 0, NULL);
	CHECK(rfd >= 0, "uid 1000 opening 0644 region read-only");
	uint64_t *p = region_map(rfd, 4 * page_size, PROT_READ);
	verify(p, 4 * page_size / 8, 7);
	munmap(p, 4 * page_size);
	close(rfd);
	printf("ok   uid 1000: read 0644 region, data verified\n");
	errno = 0;
	CHECK(region_delete(fd, "priv") == -1 && errno == EPERM,
	      "uid 1000 deleting root region: want EPERM");
	errno = 0;
	CHECK(region_resize(fd, "shared", page_size) == -1 && errno == EPERM,
	      "uid 1000 resizing root region: want EPERM");
	printf("ok   uid 1000: delete/resize of root regions -> EPERM\n");
	CHECK(region_create(fd, "mine", "/tmp/mine.bak", page_size, 0600, 0) ==
	      -1 && errno == EACCES, "uid 1000 backing in root's 0700 dir");
	errno = 0;
	CHECK(region_create(fd, "evil", "/dev/shm/rootfile", page_size, 0600,
			    MNEMO_CREATE_KEEP) == -1 && errno == EPERM,
	      "uid 1000 keeping a root-owned (0666) backing file: want EPERM");
	printf("ok   uid 1000: KEEP of a root-owned backing file -> EPERM\n");
	CHECK(region_create(fd, "mine", "", page_size, 0600, 0) == 0,
	      "uid 1000 creates its own region");
	rfd = region_open("mine", 1, NULL);
	CHECK(rfd >= 0, "uid 1000 opens its own region rw");
	close(rfd);
	close(fd);
	_exit(0);
}

static int cmd_deny(void)
{
	int fd = dev_open(O_RDWR), rfd, st;
	uint64_t *p;
	pid_t pid;

	CHECK(region_create(fd, "priv", "", 4 * page_size, 0600, 0) == 0,
	      "create priv");
	CHECK(region_create(fd, "shared", "", 4 * page_size, 0644, 0) == 0,
	      "create shared");
	rfd = region_open("shared", 1, NULL);
	CHECK(rfd >= 0, "open shared");
	p = region_map(rfd, 4 * page_size, PROT_READ | PROT_WRITE);
	fill(p, 4 * page_size / 8, 7);
	munmap(p, 4 * page_size);
	close(rfd);
	int rf = open("/dev/shm/rootfile", O_RDWR | O_CREAT | O_TRUNC, 0666);
	CHECK(rf >= 0 && fchmod(rf, 0666) == 0, "root-owned /dev/shm/rootfile");
	close(rf);
	CHECK(chmod("/tmp", 0700) == 0, "chmod /tmp");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		if (setgid(1000) || setuid(1000))
			_exit(2);
		deny_child();
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	      WEXITSTATUS(st) == 0, "uid 1000 child failed: status %#x", st);
	CHECK(chmod("/tmp", 01777) == 0, "chmod /tmp");
	/* root (CAP_SYS_ADMIN) may delete another uid's region */
	CHECK(region_delete(fd, "mine") == 0, "root deletes uid 1000 region");
	CHECK(region_delete(fd, "priv") == 0 && region_delete(fd, "shared") == 0,
	      "cleanup");
	close(fd);
	printf("deny: other uid denied by owner and mode bits\n");
	return 0;
}

static int cmd_write(const char *name, uint64_t pages, uint64_t seed,
		     int create)
{
	uint64_t size = pages * page_size;
	char path[128];
	uint64_t *p;
	int fd, rfd;

	if (create) {
		fd = dev_open(O_RDWR);
		snprintf(path, sizeof(path), "/tmp/%s.bak", name);
		CHECK(region_create(fd, name, path, size, 0600, 0) == 0,
		      "create %s", name);
		close(fd);
	}
	rfd = region_open(name, 1, NULL);
	CHECK(rfd >= 0, "open %s", name);
	p = region_map(rfd, size, PROT_READ | PROT_WRITE);
	fill(p, size / 8, seed);
	munmap(p, size);
	close(rfd);
	return 0;
}

static int cmd_verify(const char *name, uint64_t pages, uint64_t seed)
{
	uint64_t size = pages * page_size, got;
	int rfd = region_open(name, 0, &got);
	uint64_t *p;

	CHECK(rfd >= 0 && got == size, "open %s", name);
	p = region_map(rfd, size, PROT_READ);
	verify(p, size / 8, seed);
	munmap(p, size);
	close(rfd);
	printf("verify: %s: %llu pages, every byte as written (seed %llu)\n",
	       name, (unsigned long long)pages, (unsigned long long)seed);
	return 0;
}

/* Eviction under a frame budget smaller than the region. */
static int cmd_evict(uint64_t pages, uint64_t seed)
{
	uint64_t size = pages * page_size, ev, fi;
	struct mnemo_kstat s0, s1, s2;
	double t0, t1, t2;
	uint64_t *p;
	int rfd;

	s0 = stat_get();
	CHECK(s0.frames_budget + 16 < pages, "budget %llu not below %llu pages",
	      (unsigned long long)s0.frames_budget, (unsigned long long)pages);
	cmd_write("ev", pages, 0, 1);	/* create; seed 0 pass */
	rfd = region_open("ev", 1, NULL);
	CHECK(rfd >= 0, "open ev");
	p = region_map(rfd, size, PROT_READ | PROT_WRITE);
	s0 = stat_get();
	t0 = now();
	fill(p, size / 8, seed);	/* every page: fault-in + eviction */
	t1 = now();
	s1 = stat_get();
	verify(p, size / 8, seed);	/* again: every page came back */
	t2 = now();
	s2 = stat_get();
	CHECK(s2.frames_used <= s2.frames_budget, "used %llu > budget %llu",
	      (unsigned long long)s2.frames_used,
	      (unsigned long long)s2.frames_budget);
	ev = s1.evictions - s0.evictions;
	fi = s1.faultins - s0.faultins;
	CHECK(ev >= pages - s0.frames_budget && fi >= pages - s0.frames_budget,
	      "write pass: %llu evictions, %llu fault-ins for %llu pages",
	      (unsigned long long)ev, (unsigned long long)fi,
	      (unsigned long long)pages);
	CHECK(s2.evictions - s1.evictions >= pages - s0.frames_budget &&
	      s2.faultins - s1.faultins >= pages - s0.frames_budget,
	      "verify pass: pages did not cycle through the backing file");
	munmap(p, size);
	close(rfd);
	ev = s2.evictions - s0.evictions;
	fi = s2.faultins - s0.faultins;
	printf("evict: %llu pages through a budget of %llu frames; "
	       "%llu evictions, %llu fault-ins, every byte verified\n",
	       (unsigned long long)pages,
	       (unsigned long long)s0.frames_budget,
	       (unsigned long long)ev, (unsigned long long)fi);
	printf("evict: kernel cost per page (TCG guest): eviction %.1f us "
	       "(unmap + write + fsync), fault-in %.1f us (read)\n",
	       (s2.evict_ns - s0.evict_ns) / 1e3 / ev,
	       (s2.faultin_ns - s0.faultin_ns) / 1e3 / fi);
	printf("evict: user-visible cost per page (TCG guest): write pass "
	       "%.1f us, read pass %.1f us (fault + eviction + PTE + touch)\n",
	       (t1 - t0) * 1e6 / pages, (t2 - t1) * 1e6 / pages);
	return 0;
}

/*
 * Cold pages go first: one hot page, read between every two writes of a
 * stream of fresh pages much larger than the budget, is never evicted
 * (it would come back from its backing file: a fault-in), while the
 * stream is.  Fresh pages past the end of the backing file are zeroed,
 * not read, so the stream itself makes no fault-ins.
 */
static int cmd_hot(uint64_t pages)
{
	uint64_t size = pages * page_size, words = page_size / 8;
	struct mnemo_kstat s0, s1;
	int fd = dev_open(O_RDWR), hfd, sfd;
	volatile uint64_t *hot;
	uint64_t *s, sum = 0;

	CHECK(region_create(fd, "hot", "/tmp/hot.bak", page_size, 0600, 0) ==
	      0 && region_create(fd, "stream", "/tmp/stream.bak", size, 0600,
				 0) == 0, "create hot, stream");
	hfd = region_open("hot", 1, NULL);
	sfd = region_open("stream", 1, NULL);
	CHECK(hfd >= 0 && sfd >= 0, "open hot, stream");
	hot = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, hfd, 0);
	s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	CHECK(hot != MAP_FAILED && s != MAP_FAILED, "map hot, stream");
	hot[0] = 42;
	s0 = stat_get();
	CHECK(s0.frames_budget + 16 < pages, "budget too large");
	for (uint64_t p = 0; p < pages; p++) {
		s[p * words] = p;
		sum += hot[0];
	}
	s1 = stat_get();
	CHECK(sum == 42 * pages, "hot page content");
	CHECK(s1.evictions - s0.evictions >= pages - s0.frames_budget,
	      "only %llu evictions for %llu pages",
	      (unsigned long long)(s1.evictions - s0.evictions),
	      (unsigned long long)pages);
	CHECK(s1.faultins == s0.faultins,
	      "the hot page was evicted: %llu fault-ins",
	      (unsigned long long)(s1.faultins - s0.faultins));
	printf("hot: %llu evictions while streaming %llu pages, hot page "
	       "never evicted (0 fault-ins)\n",
	       (unsigned long long)(s1.evictions - s0.evictions),
	       (unsigned long long)pages);
	munmap((void *)hot, page_size);
	munmap(s, size);
	close(hfd);
	close(sfd);
	CHECK(region_delete(fd, "hot") == 0 && region_delete(fd, "stream") == 0,
	      "delete hot, stream");
	close(fd);
	return 0;
}

/*
 * Four processes fill and verify their quarter of one region through a
 * budget far below its size, while a fifth resizes another region and
 * lists: faults, evictions and table updates interleave.
 */
static int cmd_race(uint64_t pages)
{
	uint64_t size = pages * page_size, q = pages / 4 * page_size / 8;
	int fd = dev_open(O_RDWR), st, bad = 0;
	pid_t pid[5];

	CHECK(pages % 4 == 0, "pages not a multiple of 4");
	CHECK(region_create(fd, "race", "/tmp/race.bak", size, 0600, 0) == 0 &&
	      region_create(fd, "side", "/tmp/side.bak", page_size, 0600, 0) ==
	      0, "create race, side");
	for (int k = 0; k < 5; k++) {
		pid[k] = fork();
		CHECK(pid[k] >= 0, "fork");
		if (pid[k])
			continue;
		if (k == 4) {
			for (int i = 0; i < 200; i++) {
				CHECK(region_resize(fd, "side",
						    (1 + i % 8) * page_size) == 0,
				      "resize side");
				stat_get();
			}
			_exit(0);
		}
		int rfd = region_open("race", 1, NULL);
		CHECK(rfd >= 0, "open race");
		uint64_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
				   MAP_SHARED, rfd, 0);
		CHECK(p != MAP_FAILED, "map race");
		for (int round = 0; round < 2; round++) {
			fill(p + k * q, q, 100 + k + round);
			verify(p + k * q, q, 100 + k + round);
		}
		_exit(0);
	}
	for (int k = 0; k < 5; k++)
		if (waitpid(pid[k], &st, 0) != pid[k] || !WIFEXITED(st) ||
		    WEXITSTATUS(st))
			bad++;
	CHECK(!bad, "%d of 5 racing processes failed", bad);
	int rfd = region_open("race", 0, NULL);
	CHECK(rfd >= 0, "open race");
	uint64_t *p = mmap(NULL, size, PROT_READ, MAP_SHARED, rfd, 0);
	CHECK(p != MAP_FAILED, "map race");
	for (int k = 0; k < 4; k++)
		verify(p + k * q, q, 100 + k + 1);
	munmap(p, size);
	close(rfd);
	CHECK(region_delete(fd, "race") == 0 && region_delete(fd, "side") == 0,
	      "delete race, side");
	close(fd);
	printf("race: 4 writers + 1 resizer through the budget: every byte "
	       "verified\n");
	return 0;
}

/*
 * Unload must be refused while a region fd is open and while a mapping
 * exists after its fd was closed (the vma holds the file, the file holds
 * the module).  @cmd is the unload command (rmmod mnemo).
 */
static int cmd_hold(const char *name, const char *cmd)
{
	uint64_t size, *p;
	int rfd = region_open(name, 1, &size), st;

	CHECK(rfd >= 0, "open %s", name);
	st = system(cmd);
	CHECK(st != -1 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0),
	      "'%s' succeeded with a region fd open", cmd);
	printf("ok   unload refused with a region fd open\n");
	p = region_map(rfd, size, PROT_READ | PROT_WRITE);
	close(rfd);
	st = system(cmd);
	CHECK(st != -1 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0),
	      "'%s' succeeded with the region mapped", cmd);
	printf("ok   unload refused with the region mapped (fd closed)\n");
	p[0] ^= 1;	/* still mapped and working */
	p[0] ^= 1;
	CHECK(munmap(p, size) == 0, "munmap");
	return 0;
}

static int cmd_keep(const char *name, uint64_t pages, uint64_t seed)
{
	int fd = dev_open(O_RDWR);
	char path[128];

	snprintf(path, sizeof(path), "/tmp/%s.bak", name);
	CHECK(region_create(fd, name, path, pages * page_size, 0600,
			    MNEMO_CREATE_KEEP) == 0, "create %s KEEP", name);
	close(fd);
	return cmd_verify(name, pages, seed);
}

/* Create @name without a backing file (its pages are pinned), fill it. */
static int cmd_pin(const char *name, uint64_t pages, uint64_t seed)
{
	int fd = dev_open(O_RDWR);

	CHECK(region_create(fd, name, "", pages * page_size, 0600, 0) == 0,
	      "create %s", name);
	close(fd);
	return cmd_write(name, pages, seed, 0);
}

static int cmd_list(void)
{
	struct mnemo_kinfo info[MNEMO_SLOTS_GUESS];
	struct mnemo_klist l = { .info = (uintptr_t)info,
				.capacity = MNEMO_SLOTS_GUESS };
	int fd = dev_open(O_RDONLY);

	CHECK(ioctl(fd, MNEMO_IOC_LIST, &l) == 0, "LIST");
	for (unsigned int i = 0; i < l.count && i < l.capacity; i++)
		printf("region %s size %llu resident %llu uid %u mode %o\n",
		       info[i].name, (unsigned long long)info[i].size,
		       (unsigned long long)info[i].resident, info[i].uid,
		       info[i].mode);
	close(fd);
	return 0;
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return rng_state >> 17;
}

static uintptr_t bad_ptr(void)
{
	return rnd() % 2 ? rnd() % 65536 : 0xffff880000000000ULL + rnd();
}

/* One ioctl with random bytes; sometimes a plausible name and size.
 * Returns the index of the command when the ioctl succeeded, else -1. */
static int fuzz_one(int fd)
{
	static const unsigned long cmds[] = {
		MNEMO_IOC_CREATE, MNEMO_IOC_OPEN, MNEMO_IOC_RESIZE,
		MNEMO_IOC_DELETE, MNEMO_IOC_LIST, MNEMO_IOC_STAT,
		_IOW(MNEMO_IOC_MAGIC, 7, struct mnemo_kcreate), 0,
	};
	union {
		struct mnemo_kcreate c;
		struct mnemo_kopen o;
		struct mnemo_kresize r;
		struct mnemo_klist l;
		unsigned char b[512];
	} u;
	unsigned int k = rnd() % 8;
	unsigned long cmd = cmds[k];

	for (size_t i = 0; i < sizeof(u.b); i++)
		u.b[i] = rnd();
	if (rnd() % 2) {
		snprintf(u.c.name, sizeof(u.c.name), "z%u", (unsigned)(rnd() % 8));
		if (cmd == MNEMO_IOC_CREATE) {
			u.c.backing[0] = 0;
			u.c.size = (rnd() % 64) * page_size;
			u.c.mode = rnd() % 01000;
			u.c.flags = rnd() % 8 ? 0 : rnd();
		} else if (cmd == MNEMO_IOC_OPEN) {
			u.o.flags = rnd() % 8 ? rnd() % 2 : rnd();
			u.o.reserved = rnd() % 8 ? 0 : rnd();
		} else if (cmd == MNEMO_IOC_RESIZE) {
			u.r.size = (rnd() % 64) * page_size;
		}
	}
	/* bad pointers: below mmap_min_addr or in the kernel half, never
	 * memory of this process that the kernel could overwrite */
	if (cmd == MNEMO_IOC_LIST) {
		u.l.info = rnd() % 2 ? (uintptr_t)&u.b[64] : bad_ptr();
		u.l.capacity = rnd() % 3;
	}
	if (ioctl(fd, cmd, rnd() % 16 ? (void *)&u : (void *)bad_ptr()))
		return -1;
	return k;
}

static int cmd_fuzz(uint64_t seed, uint64_t n)
{
	int fd = dev_open(O_RDWR);
	unsigned int ok[8] = { 0 };
	char name[8];
	int k;

	printf("fuzz: seed %llu, %llu ioctls\n", (unsigned long long)seed,
	       (unsigned long long)n);
	rng_state = seed;
	for (uint64_t i = 0; i < n; i++) {
		k = fuzz_one(fd);
		if (k >= 0)
			ok[k]++;
		if (rnd() % 64 == 0) {	/* fresh fd: unbinds any region */
			close(fd);
			fd = dev_open(O_RDWR);
		}
	}
	close(fd);
	printf("fuzz: succeeded: %u create, %u open, %u resize, %u delete, "
	       "%u list, %u stat, %u bad cmd\n", ok[0], ok[1], ok[2], ok[3],
	       ok[4], ok[5], ok[6] + ok[7]);
	CHECK(ok[6] + ok[7] == 0, "an unknown command succeeded");
	fd = dev_open(O_RDWR);
	for (unsigned int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "z%u", i);
		errno = 0;
		CHECK(region_delete(fd, name) == 0 || errno == ENOENT,
		      "delete %s after fuzzing", name);
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	page_size = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "basic"))
		return cmd_basic();
	if (argc >= 2 && !strcmp(argv[1], "badargs"))
		return cmd_badargs();
	if (argc >= 2 && !strcmp(argv[1], "deny"))
		return cmd_deny();
	if (argc >= 4 && !strcmp(argv[1], "evict"))
		return cmd_evict(strtoull(argv[2], NULL, 0),
				 strtoull(argv[3], NULL, 0));
	if (argc >= 5 && !strcmp(argv[1], "write"))
		return cmd_write(argv[2], strtoull(argv[3], NULL, 0),
				 strtoull(argv[4], NULL, 0), 1);
	if (argc >= 5 && !strcmp(argv[1], "verify"))
		return cmd_verify(argv[2], strtoull(argv[3], NULL, 0),
				  strtoull(argv[4], NULL, 0));
	if (argc >= 3 && !strcmp(argv[1], "race"))
		return cmd_race(strtoull(argv[2], NULL, 0));
	if (argc >= 3 && !strcmp(argv[1], "hot"))
		return cmd_hot(strtoull(argv[2], NULL, 0));
	if (argc >= 4 && !strcmp(argv[1], "hold"))
		return cmd_hold(argv[2], argv[3]);
	if (argc >= 5 && !strcmp(argv[1], "keep"))
		return cmd_keep(argv[2], strtoull(argv[3], NULL, 0),
				strtoull(argv[4], NULL, 0));
	if (argc >= 5 && !strcmp(argv[1], "pin"))
		return cmd_pin(argv[2], strtoull(argv[3], NULL, 0),
			       strtoull(argv[4], NULL, 0));
	if (argc >= 3 && !strcmp(argv[1], "delete")) {
		int fd = dev_open(O_RDWR);

		CHECK(region_delete(fd, argv[2]) == 0, "delete %s", argv[2]);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "list"))
		return cmd_list();
	if (argc >= 4 && !strcmp(argv[1], "fuzz"))
		return cmd_fuzz(strtoull(argv[2], NULL, 0),
				strtoull(argv[3], NULL, 0));
	fprintf(stderr, "usage: see the comment at the top of kmod_test.c\n");
	return 2;
}
