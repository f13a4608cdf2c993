/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * mnemo.h -- userspace interface of mnemo.ko (/dev/mnemo).
 *
 * Shared by the kernel module and libmnemo; plain C, fixed-width types,
 * no padding holes.  Every structure is passed by pointer to ioctl(2) on
 * a file descriptor of /dev/mnemo.  See mnemo.ko(4).  Names carry a k
 * (mnemo_k*, MNEMO_K*) where libmnemo's mnemosyne.h has the plain one, so
 * that both headers can be included together.
 */
#ifndef _UAPI_MNEMO_H
#define _UAPI_MNEMO_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MNEMO_KNAME_MAX	64	/* bytes, including the terminating NUL */
#define MNEMO_KPATH_MAX	256	/* bytes, including the terminating NUL */
/* A region holds at most 2^24 pages (64 GiB with 4 KiB pages). */
#define MNEMO_REGION_PAGES_MAX	(1ULL << 24)

/* mnemo_create.flags */
#define MNEMO_CREATE_KEEP	0x1	/* keep backing file contents */

/* mnemo_open.flags */
#define MNEMO_OPEN_WRITE	0x1	/* map writable; needs w permission */

struct mnemo_kcreate {
	char name[MNEMO_KNAME_MAX];
	char backing[MNEMO_KPATH_MAX];	/* absolute path, or "" for none */
	__u64 size;			/* bytes, multiple of the page size */
	__u32 mode;			/* permission bits, 0 .. 0777 */
	__u32 flags;			/* MNEMO_CREATE_* */
};

struct mnemo_kopen {
	char name[MNEMO_KNAME_MAX];
	__u32 flags;			/* MNEMO_OPEN_* */
	__u32 reserved;			/* must be 0 */
	__u64 size;			/* out: region size in bytes */
};

struct mnemo_kresize {
	char name[MNEMO_KNAME_MAX];
	__u64 size;			/* new size in bytes */
};

struct mnemo_kdelete {
	char name[MNEMO_KNAME_MAX];
};

struct mnemo_kinfo {
	char name[MNEMO_KNAME_MAX];
	__u64 size;
	__u64 resident;			/* pages currently in SCM frames */
	__u32 uid;
	__u32 gid;
	__u32 mode;
	__u32 reserved;
};

struct mnemo_klist {
	__u64 info;			/* user pointer: mnemo_kinfo[] */
	__u32 capacity;			/* in: entries at info */
	__u32 count;			/* out: regions in the table */
};

struct mnemo_kstat {
	__u64 frames_total;		/* SCM data frames */
	__u64 frames_budget;		/* frames module parameter, effective */
	__u64 frames_used;
	__u64 evictions;		/* pages written back and unmapped */
	__u64 faultins;			/* pages read back from backing files */
	__u64 evict_ns;			/* total time spent evicting */
	__u64 faultin_ns;		/* total time spent reading back */
	__u32 persistent;		/* 1: pmem device, 0: module RAM */
	__u32 slots;			/* region table capacity */
};

#define MNEMO_IOC_MAGIC		0xB7
#define MNEMO_IOC_CREATE	_IOW(MNEMO_IOC_MAGIC, 1, struct mnemo_kcreate)
#define MNEMO_IOC_OPEN		_IOWR(MNEMO_IOC_MAGIC, 2, struct mnemo_kopen)
#define MNEMO_IOC_RESIZE	_IOW(MNEMO_IOC_MAGIC, 3, struct mnemo_kresize)
#define MNEMO_IOC_DELETE	_IOW(MNEMO_IOC_MAGIC, 4, struct mnemo_kdelete)
#define MNEMO_IOC_LIST		_IOWR(MNEMO_IOC_MAGIC, 5, struct mnemo_klist)
#define MNEMO_IOC_STAT		_IOR(MNEMO_IOC_MAGIC, 6, struct mnemo_kstat)
/* Write the bound region's resident pages to its backing file, fsync. */
#define MNEMO_IOC_SYNC		_IO(MNEMO_IOC_MAGIC, 7)

#endif /* _UAPI_MNEMO_H */
