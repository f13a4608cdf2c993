// SPDX-License-Identifier: GPL-2.0
/*
 * scm.c -- where SCM frames come from: a pmem block device reached
 * through the kernel DAX API, or pages reserved by the module (RAM mode,
 * which survives nothing: it is freed at unload).
 */
#include <linux/blkdev.h>
#include <linux/dax.h>
#include <linux/libnvdimm.h>
#include <linux/pfn_t.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include "mnemo_dev.h"

/* Write back [addr, addr + len) to the persistence domain and fence. */
void mnemo_persist(const void *addr, size_t len)
{
	arch_wb_cache_pmem((void *)addr, len);
	wmb();
}

void *mnemo_frame_addr(struct mnemo_dev *md, u64 frame)
{
	return md->base + ((md->data_start + frame) << PAGE_SHIFT);
}

unsigned long mnemo_frame_pfn(struct mnemo_dev *md, u64 frame)
{
	u64 page = md->data_start + frame;

	if (md->ram)
		return page_to_pfn(md->ram[page]);
	return md->base_pfn + page;
}

static int mnemo_pmem_get(struct mnemo_dev *md, const char *path)
{
	const fmode_t fmode = FMODE_READ | FMODE_WRITE | FMODE_EXCL;
	u64 start;
	pfn_t pfn;
	long avail;
	int id, rc;

	md->bdev = blkdev_get_by_path(path, fmode, md);
	if (IS_ERR(md->bdev)) {
		rc = PTR_ERR(md->bdev);
		pr_err("mnemo: %s: cannot open: %d\n", path, rc);
		goto out_nobdev;
	}
	md->dax = fs_dax_get_by_bdev(md->bdev, &start, md, NULL);
	if (!md->dax) {
		pr_err("mnemo: %s: no DAX support (fsdax namespace?)\n", path);
		rc = -EOPNOTSUPP;
		goto out_bdev;
	}
	md->pages = bdev_nr_bytes(md->bdev) >> PAGE_SHIFT;
	id = dax_read_lock();
	avail = dax_direct_access(md->dax, start >> PAGE_SHIFT, md->pages,
				  DAX_ACCESS, &md->base, &pfn);
	dax_read_unlock(id);
	if (avail < 0) {
		rc = avail;
		goto out_dax;
	}
	/* pmem maps the whole device at once; anything else is refused. */
	if (avail < md->pages) {
		pr_err("mnemo: %s: only %ld of %llu pages direct-mapped\n",
		       path, avail, md->pages);
		rc = -EOPNOTSUPP;
		goto out_dax;
	}
	md->base_pfn = pfn_t_to_pfn(pfn);
	md->persistent = true;
	return 0;

out_dax:
	fs_put_dax(md->dax, md);
	md->dax = NULL;
out_bdev:
	blkdev_put(md->bdev, fmode);
out_nobdev:
	md->bdev = NULL;
	return rc;
}

static void mnemo_ram_free(struct mnemo_dev *md, u64 n)
{
	while (n--)
		__free_page(md->ram[n]);
	kvfree(md->ram);
	md->ram = NULL;
}

static int mnemo_ram_get(struct mnemo_dev *md, unsigned int mb)
{
	u64 i;

	md->pages = ((u64)mb << 20) >> PAGE_SHIFT;
	if (md->pages < 64)
		return -EINVAL;
	md->ram = kvcalloc(md->pages, sizeof(*md->ram), GFP_KERNEL);
	if (!md->ram)
		return -ENOMEM;
	for (i = 0; i < md->pages; i++) {
		md->ram[i] = alloc_page(GFP_KERNEL | __GFP_ZERO |
					__GFP_RETRY_MAYFAIL | __GFP_NOWARN);
		if (!md->ram[i])
			goto out_free;
	}
	md->base = vmap(md->ram, md->pages, VM_MAP, PAGE_KERNEL);
	if (!md->base)
		goto out_free;
	md->persistent = false;
	return 0;

out_free:
	mnemo_ram_free(md, i);
	return -ENOMEM;
}

int mnemo_scm_get(struct mnemo_dev *md, const char *path, unsigned int mb)
{
	if (path && path[0])
		return mnemo_pmem_get(md, path);
	return mnemo_ram_get(md, mb);
}

void mnemo_scm_put(struct mnemo_dev *md)
{
	if (md->ram) {
		vunmap(md->base);
		mnemo_ram_free(md, md->pages);
	} else if (md->bdev) {
		fs_put_dax(md->dax, md);
		blkdev_put(md->bdev, FMODE_READ | FMODE_WRITE | FMODE_EXCL);
		md->bdev = NULL;
		md->dax = NULL;
	}
	md->base = NULL;
}
