// SPDX-License-Identifier: GPL-2.0
/*
 * table.c -- the persistent region table in SCM: format, load with
 * recovery, and the crash-ordered updates listed in mnemo_dev.h.
 */
#include <linux/crc32.h>
#include <linux/cred.h>
#include <linux/slab.h>
#include <linux/string.h>
#include "mnemo_dev.h"

#define PENT_CSUM_OFF	offsetof(struct mnemo_pent, uid)
#define PENT_CSUM_LEN	(offsetof(struct mnemo_pent, pad) - PENT_CSUM_OFF)

static u32 mnemo_sb_csum(const struct mnemo_psb *sb)
{
	/* the magic is written last, after the checksummed fields */
	const size_t off = offsetof(struct mnemo_psb, version);

	return crc32_le(~0, (const u8 *)sb + off,
			offsetof(struct mnemo_psb, csum) - off);
}

static u32 mnemo_pent_csum(const struct mnemo_pent *pe)
{
	return crc32_le(~0, (const u8 *)pe + PENT_CSUM_OFF, PENT_CSUM_LEN);
}

static void mnemo_geometry(struct mnemo_dev *md)
{
	u64 table = 1 + DIV_ROUND_UP(MNEMO_SLOTS * sizeof(struct mnemo_pent),
				     PAGE_SIZE);
	/* owner words for all pages past the table: a slight overestimate */
	u64 owner = DIV_ROUND_UP((md->pages - table) * sizeof(__le64),
				 PAGE_SIZE);

	md->data_start = table + owner;
	md->nframes = md->pages - md->data_start;
	md->sb = md->base;
	md->pent = md->base + PAGE_SIZE;
	md->owner = md->base + (table << PAGE_SHIFT);
}

static void mnemo_format(struct mnemo_dev *md)
{
	struct mnemo_psb *sb = md->sb;

	WRITE_ONCE(sb->magic, 0);
	mnemo_persist(sb, sizeof(*sb));
	memset(md->pent, 0, (md->data_start - 1) << PAGE_SHIFT);
	mnemo_persist(md->pent, (md->data_start - 1) << PAGE_SHIFT);
	sb->version = cpu_to_le32(MNEMO_VERSION);
	sb->page_size = cpu_to_le32(PAGE_SIZE);
	sb->pages = cpu_to_le64(md->pages);
	sb->data_start = cpu_to_le64(md->data_start);
	sb->nframes = cpu_to_le64(md->nframes);
	sb->slots = cpu_to_le32(MNEMO_SLOTS);
	sb->csum = cpu_to_le32(mnemo_sb_csum(sb));
	mnemo_persist(sb, sizeof(*sb));
	WRITE_ONCE(sb->magic, cpu_to_le64(MNEMO_MAGIC));
	mnemo_persist(sb, sizeof(*sb));
	pr_info("mnemo: formatted %llu pages, %llu data frames\n",
		md->pages, md->nframes);
}

static int mnemo_sb_check(struct mnemo_dev *md)
{
	const struct mnemo_psb *sb = md->sb;

	if (le32_to_cpu(sb->csum) != mnemo_sb_csum(sb))
		return -EUCLEAN;
	if (le32_to_cpu(sb->version) != MNEMO_VERSION ||
	    le32_to_cpu(sb->page_size) != PAGE_SIZE ||
	    le32_to_cpu(sb->slots) != MNEMO_SLOTS ||
	    le64_to_cpu(sb->pages) != md->pages ||
	    le64_to_cpu(sb->data_start) != md->data_start ||
	    le64_to_cpu(sb->nframes) != md->nframes)
		return -EUCLEAN;
	return 0;
}

void mnemo_owner_set(struct mnemo_dev *md, u64 frame, unsigned int slot,
		     u64 page)
{
	u64 v = slot == MNEMO_SLOTS ? 0 : ((u64)(slot + 1) << 32) | page;

	WRITE_ONCE(md->owner[frame], cpu_to_le64(v));
	mnemo_persist(&md->owner[frame], sizeof(__le64));
}

bool mnemo_owner_get(struct mnemo_dev *md, u64 frame, unsigned int *slot,
		     u64 *page)
{
	u64 v = le64_to_cpu(READ_ONCE(md->owner[frame]));

	if (!v)
		return false;
	*slot = (v >> 32) - 1;
	*page = v & 0xffffffffULL;
	return true;
}

static struct mnemo_region *mnemo_kregion_new(struct mnemo_dev *md,
					     unsigned int slot)
{
	struct mnemo_region *r = kzalloc(sizeof(*r), GFP_KERNEL);

	if (!r)
		return NULL;
	r->slot = slot;
	r->pent = &md->pent[slot];
	r->npages = le64_to_cpu(r->pent->size) >> PAGE_SHIFT;
	xa_init(&r->pages);
	md->regions[slot] = r;
	return r;
}

static void mnemo_kregion_free(struct mnemo_dev *md, struct mnemo_region *r)
{
	md->regions[r->slot] = NULL;
	if (r->backing)
		filp_close(r->backing, NULL);
	xa_destroy(&r->pages);
	kfree(r);
}

/* Attach one owner word found at load, or drop it if it is stale. */
static int mnemo_load_frame(struct mnemo_dev *md, u64 frame)
{
	struct mnemo_region *r;
	unsigned int slot;
	u64 page;
	int rc;

	if (!mnemo_owner_get(md, frame, &slot, &page))
		return 0;
	r = slot < MNEMO_SLOTS ? md->regions[slot] : NULL;
	if (!r || page >= r->npages || xa_load(&r->pages, page))
		goto drop;
	rc = xa_err(xa_store(&r->pages, page, xa_mk_value(frame),
			     GFP_KERNEL));
	if (rc)
		return rc;
	__set_bit(frame, md->used_map);
	__set_bit(frame, md->new_map);
	md->used++;
	r->resident++;
	return 0;
drop:
	mnemo_owner_set(md, frame, MNEMO_SLOTS, 0);
	return 0;
}

static int mnemo_load_slots(struct mnemo_dev *md)
{
	struct mnemo_pent *pe;
	unsigned int i;

	for (i = 0; i < MNEMO_SLOTS; i++) {
		pe = &md->pent[i];
		if (le32_to_cpu(pe->state) != MNEMO_LIVE)
			continue;
		if (le32_to_cpu(pe->csum) != mnemo_pent_csum(pe) ||
		    le64_to_cpu(pe->size) >> PAGE_SHIFT >
		    MNEMO_REGION_PAGES_MAX) {
			pr_err("mnemo: slot %u corrupt, ignored\n", i);
			continue;
		}
		if (!mnemo_kregion_new(md, i))
			return -ENOMEM;
	}
	return 0;
}

/* Finish deletes interrupted by a crash (their frames are dropped). */
static void mnemo_load_finish(struct mnemo_dev *md)
{
	unsigned int i;

	for (i = 0; i < MNEMO_SLOTS; i++) {
		if (le32_to_cpu(md->pent[i].state) != MNEMO_DELETING)
			continue;
		WRITE_ONCE(md->pent[i].state, cpu_to_le32(MNEMO_FREE));
		mnemo_persist(&md->pent[i].state, sizeof(__le32));
	}
}

int mnemo_table_load(struct mnemo_dev *md, bool format)
{
	u64 f;
	int rc;

	if (md->pages < 64)
		return -ENOSPC;
	mnemo_geometry(md);
	if (format || le64_to_cpu(md->sb->magic) != MNEMO_MAGIC) {
		if (!format && md->persistent) {
			pr_err("mnemo: no region table; load with format=1\n");
			return -ENODATA;
		}
		mnemo_format(md);
	}
	rc = mnemo_sb_check(md);
	if (rc) {
		pr_err("mnemo: table header invalid; load with format=1\n");
		return rc;
	}
	md->used_map = bitmap_zalloc(md->nframes, GFP_KERNEL);
	md->ref_map = bitmap_zalloc(md->nframes, GFP_KERNEL);
	md->new_map = bitmap_zalloc(md->nframes, GFP_KERNEL);
	if (!md->used_map || !md->ref_map || !md->new_map) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = mnemo_load_slots(md);
	for (f = 0; !rc && f < md->nframes; f++)
		rc = mnemo_load_frame(md, f);
	if (rc)
		goto out_free;
	mnemo_load_finish(md);
	return 0;

out_free:
	mnemo_table_unload(md);
	return rc;
}

void mnemo_table_unload(struct mnemo_dev *md)
{
	unsigned int i;

	for (i = 0; i < MNEMO_SLOTS; i++)
		if (md->regions[i])
			mnemo_kregion_free(md, md->regions[i]);
	bitmap_free(md->used_map);
	bitmap_free(md->ref_map);
	bitmap_free(md->new_map);
	md->used_map = NULL;
	md->ref_map = NULL;
	md->new_map = NULL;
	md->used = 0;
}

struct mnemo_region *mnemo_kregion_find(struct mnemo_dev *md,
				       const char *name)
{
	unsigned int i;

	for (i = 0; i < MNEMO_SLOTS; i++)
		if (md->regions[i] &&
		    !strncmp(md->regions[i]->pent->name, name, MNEMO_KNAME_MAX))
			return md->regions[i];
	return NULL;
}

static int mnemo_slot_free(struct mnemo_dev *md)
{
	unsigned int i;

	for (i = 0; i < MNEMO_SLOTS; i++)
		if (!md->regions[i] &&
		    le32_to_cpu(md->pent[i].state) == MNEMO_FREE)
			return i;
	return -ENOSPC;
}

static void mnemo_pent_fill(struct mnemo_pent *pe,
			    const struct mnemo_kcreate *c)
{
	memset(pe, 0, sizeof(*pe));
	pe->size = cpu_to_le64(c->size);
	pe->uid = cpu_to_le32(from_kuid(&init_user_ns, current_fsuid()));
	pe->gid = cpu_to_le32(from_kgid(&init_user_ns, current_fsgid()));
	pe->mode = cpu_to_le32(c->mode);
	pe->flags = cpu_to_le32(c->flags);
	strscpy(pe->name, c->name, sizeof(pe->name));
	strscpy(pe->backing, c->backing, sizeof(pe->backing));
	pe->csum = cpu_to_le32(mnemo_pent_csum(pe));
}

int mnemo_kregion_create(struct mnemo_dev *md, const struct mnemo_kcreate *c)
{
	struct mnemo_region *r;
	struct mnemo_pent *pe;
	int slot, rc;

	if (mnemo_kregion_find(md, c->name))
		return -EEXIST;
	slot = mnemo_slot_free(md);
	if (slot < 0)
		return slot;
	pe = &md->pent[slot];
	mnemo_pent_fill(pe, c);
	r = mnemo_kregion_new(md, slot);
	if (!r)
		return -ENOMEM;
	if (c->backing[0]) {
		rc = mnemo_backing_open(r, !(c->flags & MNEMO_CREATE_KEEP));
		if (rc)
			goto out_free;
	}
	mnemo_persist(pe, sizeof(*pe));
	WRITE_ONCE(pe->state, cpu_to_le32(MNEMO_LIVE));
	mnemo_persist(&pe->state, sizeof(pe->state));
	return 0;

out_free:
	mnemo_kregion_free(md, r);
	memset(pe, 0, sizeof(*pe));
	return rc;
}

/* Drop the frames of pages [first, npages) of r; their PTEs are gone. */
static void mnemo_kregion_drop(struct mnemo_dev *md, struct mnemo_region *r,
			      u64 first)
{
	unsigned long index;
	void *entry;

	xa_for_each_start(&r->pages, index, entry, first)
		mnemo_frame_free(md, r, index, xa_to_value(entry));
}

int mnemo_kregion_delete(struct mnemo_dev *md, struct mnemo_region *r)
{
	struct mnemo_pent *pe = r->pent;

	if (r->users)
		return -EBUSY;
	WRITE_ONCE(pe->state, cpu_to_le32(MNEMO_DELETING));
	mnemo_persist(&pe->state, sizeof(pe->state));
	mnemo_kregion_unmap(md, r, 0, r->npages);
	mnemo_kregion_drop(md, r, 0);
	WRITE_ONCE(pe->state, cpu_to_le32(MNEMO_FREE));
	mnemo_persist(&pe->state, sizeof(pe->state));
	mnemo_kregion_free(md, r);
	return 0;
}

static int mnemo_backing_truncate(struct mnemo_region *r, u64 size)
{
	int rc = mnemo_backing_open(r, false);

	if (rc == -ENOENT && !r->pent->backing[0])
		return 0;
	if (rc)
		return rc;
	if (i_size_read(file_inode(r->backing)) <= size)
		return 0;
	return vfs_truncate(&r->backing->f_path, size);
}

int mnemo_kregion_resize(struct mnemo_dev *md, struct mnemo_region *r,
			u64 size)
{
	u64 old = r->npages << PAGE_SHIFT;
	int rc;

	if (size >= old) {
		/* stale file data past the old end must not reappear */
		rc = mnemo_backing_truncate(r, old);
		if (rc)
			return rc;
	}
	WRITE_ONCE(r->pent->size, cpu_to_le64(size));
	mnemo_persist(&r->pent->size, sizeof(r->pent->size));
	r->npages = size >> PAGE_SHIFT;
	if (size >= old)
		return 0;
	mnemo_kregion_unmap(md, r, r->npages, (old - size) >> PAGE_SHIFT);
	mnemo_kregion_drop(md, r, r->npages);
	rc = mnemo_backing_truncate(r, size);
	if (rc)
		pr_warn("mnemo: %s: backing truncate failed: %d\n",
			r->pent->name, rc);
	return 0;
}
