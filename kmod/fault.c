// SPDX-License-Identifier: GPL-2.0
/*
 * fault.c -- mmap of an open region: pages are mapped one at a time on
 * fault from their SCM frame, faulting them in first when they were
 * evicted or never touched.
 */
#include <linux/mm.h>
#include "mnemo_dev.h"

/* Find or make the frame of page @page of @r; md->lock held. */
static int mnemo_page_frame(struct mnemo_dev *md, struct mnemo_region *r,
			    u64 page, u64 *frame)
{
	void *entry = xa_load(&r->pages, page);
	int rc;

	if (entry) {
		*frame = xa_to_value(entry);
		__set_bit(*frame, md->ref_map);
		return 0;
	}
	rc = mnemo_frame_alloc(md, frame);
	if (rc)
		return rc;
	rc = mnemo_page_read(md, r, page, *frame);
	if (!rc)
		rc = xa_err(xa_store(&r->pages, page, xa_mk_value(*frame),
				     GFP_KERNEL));
	if (rc) {
		__clear_bit(*frame, md->used_map);
		__clear_bit(*frame, md->new_map);
		md->used--;
		return rc;
	}
	mnemo_owner_set(md, *frame, r->slot, page);
	r->resident++;
	return 0;
}

static vm_fault_t mnemo_fault(struct vm_fault *vmf)
{
	struct mnemo_region *r = vmf->vma->vm_private_data;
	struct mnemo_dev *md = &mnemo;
	u64 page = vmf->pgoff - ((u64)r->slot << MNEMO_WIN_SHIFT);
	vm_fault_t ret;
	u64 frame;
	int rc;

	mutex_lock(&md->lock);
	if (page >= r->npages) {
		ret = VM_FAULT_SIGBUS;
		goto out;
	}
	rc = mnemo_page_frame(md, r, page, &frame);
	if (rc) {
		pr_warn_ratelimited("mnemo: %s: page %llu: no frame: %d\n",
				    r->pent->name, page, rc);
		ret = rc == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
		goto out;
	}
	ret = vmf_insert_pfn(vmf->vma, vmf->address,
			     mnemo_frame_pfn(md, frame));
out:
	mutex_unlock(&md->lock);
	return ret;
}

static const struct vm_operations_struct mnemo_vm_ops = {
	.fault = mnemo_fault,
};

/*
 * Map the region bound to a file.  The user's offset is an offset into
 * the region; vm_pgoff is moved into the region's window so that
 * unmap_mapping_range() on the shared mapping reaches only its pages.
 */
int mnemo_mmap_region(struct mnemo_dev *md, struct mnemo_region *r,
		      bool writable, struct vm_area_struct *vma)
{
	u64 pages = vma_pages(vma);

	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_pgoff >= r->npages || pages > r->npages - vma->vm_pgoff)
		return -EINVAL;
	if (!writable) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		vma->vm_flags &= ~VM_MAYWRITE;
	}
	vma->vm_pgoff += (u64)r->slot << MNEMO_WIN_SHIFT;
	vma->vm_flags |= VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
	vma->vm_private_data = r;
	vma->vm_ops = &mnemo_vm_ops;
	return 0;
}
