// SPDX-License-Identifier: GPL-2.0
/*
 * evict.c -- SCM virtualisation: frame allocation under the frame
 * budget, eviction of cold pages to the region's backing file, and
 * reading pages back.
 *
 * Cold pages are found by a clock over frames (mnemo_clock).  A frame's
 * reference bit is set by a fault on its page while it is resident; when
 * the hand finds it set, it clears it and unmaps the page, so that the
 * next access faults again (a minor fault: the page stays in its frame)
 * and sets it anew.  A page not accessed for a whole turn is evicted.
 */
#include <linux/file.h>
#include <linux/ktime.h>
#include <linux/string.h>
#include <linux/uidgid.h>
#include "mnemo_dev.h"

/*
 * Open the backing file of @r with the caller's credentials; @create: at
 * region creation, create or truncate it.  An existing file must belong
 * to the region's owner: a file swapped in under the path later (a
 * reopen after reload runs as whoever faults) is refused.
 */
int mnemo_backing_open(struct mnemo_region *r, bool create)
{
	kuid_t owner = make_kuid(&init_user_ns, le32_to_cpu(r->pent->uid));
	int flags = O_RDWR | O_LARGEFILE | O_NOFOLLOW;
	struct file *f;

	if (r->backing)
		return 0;
	if (!r->pent->backing[0])
		return -ENOENT;
	if (create)
		flags |= O_CREAT | O_TRUNC;
	f = filp_open(r->pent->backing, flags, 0600);
	if (IS_ERR(f))
		return PTR_ERR(f);
	if (!S_ISREG(file_inode(f)->i_mode)) {
		filp_close(f, NULL);
		return -EINVAL;
	}
	if (!create && !uid_eq(file_inode(f)->i_uid, owner)) {
		filp_close(f, NULL);
		return -EPERM;
	}
	r->backing = f;
	return 0;
}

void mnemo_kregion_unmap(struct mnemo_dev *md, struct mnemo_region *r,
			u64 first, u64 count)
{
	loff_t start = (((u64)r->slot << MNEMO_WIN_SHIFT) + first) <<
		       PAGE_SHIFT;

	unmap_mapping_range(md->mapping, start, count << PAGE_SHIFT, 1);
}

/* Fill a free frame with page @page of @r: backing file data or zero. */
int mnemo_page_read(struct mnemo_dev *md, struct mnemo_region *r, u64 page,
		    u64 frame)
{
	void *addr = mnemo_frame_addr(md, frame);
	loff_t pos = page << PAGE_SHIFT;
	u64 t0 = ktime_get_ns();
	ssize_t n = 0;
	int rc;

	rc = mnemo_backing_open(r, false);
	if (rc && rc != -ENOENT)
		return rc;
	if (!rc && pos < i_size_read(file_inode(r->backing))) {
		n = kernel_read(r->backing, addr, PAGE_SIZE, &pos);
		if (n < 0)
			return n;
		md->faultins++;
		md->faultin_ns += ktime_get_ns() - t0;
	}
	memset(addr + n, 0, PAGE_SIZE - n);
	mnemo_persist(addr, PAGE_SIZE);
	return 0;
}

static int mnemo_page_write(struct mnemo_region *r, u64 page, void *addr)
{
	loff_t pos = page << PAGE_SHIFT;
	ssize_t n;
	int rc;

	rc = mnemo_backing_open(r, false);
	if (rc)
		return rc;
	n = kernel_write(r->backing, addr, PAGE_SIZE, &pos);
	if (n != PAGE_SIZE)
		return n < 0 ? n : -EIO;
	pos = page << PAGE_SHIFT;
	return vfs_fsync_range(r->backing, pos, pos + PAGE_SIZE - 1, 1);
}

/*
 * Write every resident page of @r to its backing file, leaving it
 * resident, and fsync the file: the file is then a full image of the
 * region.  -ENOENT if @r has no backing file.
 */
int mnemo_kregion_sync(struct mnemo_dev *md, struct mnemo_region *r)
{
	unsigned long index;
	void *entry;
	loff_t pos;
	ssize_t n;
	int rc;

	rc = mnemo_backing_open(r, false);
	if (rc)
		return rc;
	xa_for_each(&r->pages, index, entry) {
		pos = (loff_t)index << PAGE_SHIFT;
		n = kernel_write(r->backing, mnemo_frame_addr(md,
				 xa_to_value(entry)), PAGE_SIZE, &pos);
		if (n != PAGE_SIZE)
			return n < 0 ? n : -EIO;
	}
	return vfs_fsync(r->backing, 1);
}

/*
 * RAM mode unload: the frames are about to be freed, so every region
 * with a backing file is written to it.
 */
void mnemo_writeback_all(struct mnemo_dev *md)
{
	struct mnemo_region *r;
	unsigned int i;
	int rc;

	for (i = 0; i < MNEMO_SLOTS; i++) {
		r = md->regions[i];
		if (!r || !r->pent->backing[0])
			continue;
		rc = mnemo_kregion_sync(md, r);
		if (rc)
			pr_err("mnemo: %s: pages lost at unload: %d\n",
			       r->pent->name, rc);
	}
}

void mnemo_frame_free(struct mnemo_dev *md, struct mnemo_region *r,
		      u64 page, u64 frame)
{
	xa_erase(&r->pages, page);
	r->resident--;
	mnemo_owner_set(md, frame, MNEMO_SLOTS, 0);
	__clear_bit(frame, md->used_map);
	__clear_bit(frame, md->ref_map);
	__clear_bit(frame, md->new_map);
	md->used--;
}

/* The region and page held by @frame; NULL for a frame that is free. */
static struct mnemo_region *mnemo_frame_owner(struct mnemo_dev *md,
					      u64 frame, u64 *page)
{
	unsigned int slot;

	if (!mnemo_owner_get(md, frame, &slot, page) || slot >= MNEMO_SLOTS)
		return NULL;
	return md->regions[slot];
}

/* Write the page in @frame back to its file and free the frame. */
static int mnemo_evict(struct mnemo_dev *md, struct mnemo_region *r,
		       u64 page, u64 frame)
{
	u64 t0 = ktime_get_ns();
	int rc;

	mnemo_kregion_unmap(md, r, page, 1);
	rc = mnemo_page_write(r, page, mnemo_frame_addr(md, frame));
	if (rc) {
		pr_warn_ratelimited("mnemo: %s: page %llu write-back: %d\n",
				    r->pent->name, page, rc);
		return rc;
	}
	mnemo_frame_free(md, r, page, frame);
	md->evictions++;
	md->evict_ns += ktime_get_ns() - t0;
	return 0;
}

/*
 * Evict one page.  The hand makes at most one turn over the frames in
 * use, passing those of regions without a backing file: a frame whose page faulted since the last
 * turn (ref) or that is new since then (new) loses its bit and its PTEs
 * and is passed; the first frame with neither is evicted.  When every
 * frame had a bit, the first new one passed is evicted, else the first
 * one passed: a page used once is evicted before a page used again.
 */
static int mnemo_clock(struct mnemo_dev *md)
{
	u64 n, f, page, victim = U64_MAX;
	struct mnemo_region *r;
	bool victim_new = false;

	for (n = 0; n < md->used; n++) {
		f = find_next_bit(md->used_map, md->nframes, md->hand);
		if (f >= md->nframes)
			f = find_first_bit(md->used_map, md->nframes);
		md->hand = (f + 1) % md->nframes;
		r = mnemo_frame_owner(md, f, &page);
		if (!r || !r->pent->backing[0])
			continue;	/* free, or pinned */
		if (__test_and_clear_bit(f, md->ref_map)) {
			if (victim == U64_MAX)
				victim = f;
		} else if (__test_and_clear_bit(f, md->new_map)) {
			if (!victim_new)
				victim = f;
			victim_new = true;
		} else if (!mnemo_evict(md, r, page, f)) {
			return 0;
		} else {
			continue;
		}
		mnemo_kregion_unmap(md, r, page, 1);
	}
	if (victim == U64_MAX)
		return -ENOSPC;
	r = mnemo_frame_owner(md, victim, &page);
	return mnemo_evict(md, r, page, victim);
}

/* Take a free frame, evicting until the budget allows one more. */
int mnemo_frame_alloc(struct mnemo_dev *md, u64 *frame)
{
	u64 f;
	int rc;

	while (md->used >= md->budget) {
		rc = mnemo_clock(md);
		if (rc)
			return rc;
	}
	f = find_first_zero_bit(md->used_map, md->nframes);
	if (WARN_ON_ONCE(f >= md->nframes))
		return -ENOSPC;
	__set_bit(f, md->used_map);
	__set_bit(f, md->new_map);
	md->used++;
	*frame = f;
	return 0;
}
