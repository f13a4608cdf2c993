/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mnemo_dev.h -- internals of mnemo.ko shared by its source files.
 *
 * Persistent layout of the SCM (all little endian, page 0 first):
 *
 *   page 0                  struct mnemo_psb (superblock)
 *   pages 1 .. E            MNEMO_SLOTS struct mnemo_pent (region table)
 *   pages E+1 .. D-1        owner map: one __le64 per data frame,
 *                           0 = free, else (slot + 1) << 32 | page index
 *   pages D ..              data frames
 *
 * Crash ordering (each step is flushed with arch_wb_cache_pmem and
 * fenced before the next, see mnemo_persist()):
 *   format:  zero table and owner map; write superblock with magic 0;
 *            write magic.
 *   create:  fill a FREE entry and its checksum; set state LIVE.
 *   delete:  set state DELETING; clear the owner words of its frames;
 *            set state FREE.  Load finishes an interrupted delete.
 *   resize:  grow: truncate the backing file to the old size; store the
 *            new size (one 8-byte store).  shrink: store the new size;
 *            unmap and clear owner words beyond it; truncate the file.
 *   evict:   unmap the page; write it to the backing file and fsync;
 *            clear the owner word.
 *   fault:   fill a free frame (zero or backing file) and flush it; set
 *            the owner word.
 * Load drops owner words that name no LIVE entry or a page beyond its
 * size, so every crash point leaves each page either in one frame or in
 * the backing file (or zero).
 */
#ifndef MNEMO_DEV_H
#define MNEMO_DEV_H

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/xarray.h>
#include "uapi/mnemo.h"

#define MNEMO_MAGIC	0x314f4d454e4d454dULL	/* "MEMNEMO1" */
#define MNEMO_VERSION	1
#define MNEMO_SLOTS	64
/* mmap offset window of one region, in pages: slot << MNEMO_WIN_SHIFT */
#define MNEMO_WIN_SHIFT	24

enum mnemo_state {
	MNEMO_FREE = 0,
	MNEMO_LIVE = 1,
	MNEMO_DELETING = 2,
};

struct mnemo_psb {
	__le64 magic;
	__le32 version;
	__le32 page_size;
	__le64 pages;		/* SCM pages covered by this table */
	__le64 data_start;	/* first data frame, in pages */
	__le64 nframes;		/* data frames */
	__le32 slots;
	__le32 csum;		/* crc32 of the fields above */
};

struct mnemo_pent {
	__le32 state;		/* enum mnemo_state */
	__le32 csum;		/* crc32 of uid .. backing */
	__le64 size;		/* bytes; the only field changed in place */
	__le32 uid;
	__le32 gid;
	__le32 mode;
	__le32 flags;
	char name[MNEMO_KNAME_MAX];
	char backing[MNEMO_KPATH_MAX];
	u8 pad[160];
};

struct mnemo_region {
	unsigned int slot;
	struct mnemo_pent *pent;	/* in SCM */
	u64 npages;
	u64 resident;			/* pages in frames */
	struct xarray pages;		/* page index -> xa_mk_value(frame) */
	struct file *backing;		/* NULL until opened, or none */
	unsigned int users;		/* open file descriptors bound */
};

struct mnemo_dev {
	struct mutex lock;		/* everything below */
	void *base;			/* kernel address of SCM page 0 */
	unsigned long base_pfn;		/* pmem: pfn of page 0 */
	struct page **ram;		/* RAM mode: the reserved pages */
	u64 pages;
	bool persistent;
	struct block_device *bdev;
	struct dax_device *dax;

	struct mnemo_psb *sb;
	struct mnemo_pent *pent;
	__le64 *owner;
	u64 data_start;
	u64 nframes;
	u64 budget;
	u64 used;
	unsigned long *used_map;	/* frame in use */
	unsigned long *ref_map;		/* page faulted again since the hand */
	unsigned long *new_map;		/* frame taken since the hand */
	u64 hand;			/* clock hand */

	struct mnemo_region *regions[MNEMO_SLOTS];
	struct address_space *mapping;	/* of all mnemo mmaps */

	u64 evictions, faultins, evict_ns, faultin_ns;
};

extern struct mnemo_dev mnemo;

/* scm.c */
int mnemo_scm_get(struct mnemo_dev *md, const char *path, unsigned int mb);
void mnemo_scm_put(struct mnemo_dev *md);
void mnemo_persist(const void *addr, size_t len);
void *mnemo_frame_addr(struct mnemo_dev *md, u64 frame);
unsigned long mnemo_frame_pfn(struct mnemo_dev *md, u64 frame);

/* table.c */
int mnemo_table_load(struct mnemo_dev *md, bool format);
void mnemo_table_unload(struct mnemo_dev *md);
struct mnemo_region *mnemo_kregion_find(struct mnemo_dev *md,
				       const char *name);
int mnemo_kregion_create(struct mnemo_dev *md, const struct mnemo_kcreate *c);
int mnemo_kregion_delete(struct mnemo_dev *md, struct mnemo_region *r);
int mnemo_kregion_resize(struct mnemo_dev *md, struct mnemo_region *r,
			u64 size);
void mnemo_owner_set(struct mnemo_dev *md, u64 frame, unsigned int slot,
		     u64 page);
bool mnemo_owner_get(struct mnemo_dev *md, u64 frame, unsigned int *slot,
		     u64 *page);

/* evict.c */
int mnemo_backing_open(struct mnemo_region *r, bool create);
int mnemo_page_read(struct mnemo_dev *md, struct mnemo_region *r, u64 page,
		    u64 frame);
int mnemo_frame_alloc(struct mnemo_dev *md, u64 *frame);
void mnemo_frame_free(struct mnemo_dev *md, struct mnemo_region *r,
		      u64 page, u64 frame);
int mnemo_kregion_sync(struct mnemo_dev *md, struct mnemo_region *r);
void mnemo_writeback_all(struct mnemo_dev *md);
void mnemo_kregion_unmap(struct mnemo_dev *md, struct mnemo_region *r,
			u64 first, u64 count);

/* fault.c */
int mnemo_mmap_region(struct mnemo_dev *md, struct mnemo_region *r,
		      bool writable, struct vm_area_struct *vma);

/* ioctl.c */
long mnemo_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

struct mnemo_file {
	struct mnemo_region *region;	/* bound by MNEMO_IOC_OPEN */
	bool writable;
};

#endif /* MNEMO_DEV_H */
