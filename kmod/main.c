// SPDX-License-Identifier: GPL-2.0
/*
 * main.c -- mnemo.ko: module parameters, the /dev/mnemo misc device and
 * the pseudo filesystem whose inode gives all mnemo mappings one
 * address_space (so eviction can unmap a page wherever it is mapped).
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>
#include "mnemo_dev.h"

#define MNEMO_FS_MAGIC	0x6d6e656d	/* "mnem" */

static char *pmem;
module_param(pmem, charp, 0444);
MODULE_PARM_DESC(pmem,
		 "fsdax pmem block device holding the SCM, e.g. /dev/pmem0: "
		 "table and resident pages survive unload, reboot and power "
		 "loss. Empty: RAM mode, table lost at unload (resident pages "
		 "of backed regions are written to their backing files)");

static unsigned int ram_mb = 64;
module_param(ram_mb, uint, 0444);
MODULE_PARM_DESC(ram_mb,
		 "RAM mode: MiB of memory reserved as SCM (default 64)");

static unsigned long frames;
module_param(frames, ulong, 0444);
MODULE_PARM_DESC(frames,
		 "global budget of SCM data frames in use; beyond it cold "
		 "pages are evicted to backing files (0: all frames)");

static bool format;
module_param(format, bool, 0444);
MODULE_PARM_DESC(format,
		 "erase the pmem device's region table and write an empty one");

struct mnemo_dev mnemo = {
	.lock = __MUTEX_INITIALIZER(mnemo.lock),
};

static struct vfsmount *mnemo_mnt;
static struct inode *mnemo_inode;

static int mnemo_open(struct inode *inode, struct file *file)
{
	struct mnemo_file *mf = kzalloc(sizeof(*mf), GFP_KERNEL);

	if (!mf)
		return -ENOMEM;
	file->private_data = mf;
	file->f_mapping = mnemo_inode->i_mapping;
	return 0;
}

static int mnemo_release(struct inode *inode, struct file *file)
{
	struct mnemo_file *mf = file->private_data;

	if (mf->region) {
		mutex_lock(&mnemo.lock);
		mf->region->users--;
		mutex_unlock(&mnemo.lock);
	}
	kfree(mf);
	return 0;
}

static int mnemo_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct mnemo_file *mf = file->private_data;
	int rc = -ENODEV;

	mutex_lock(&mnemo.lock);
	if (mf->region)
		rc = mnemo_mmap_region(&mnemo, mf->region, mf->writable, vma);
	mutex_unlock(&mnemo.lock);
	return rc;
}

static const struct file_operations mnemo_fops = {
	.owner = THIS_MODULE,
	.open = mnemo_open,
	.release = mnemo_release,
	.mmap = mnemo_mmap,
	.unlocked_ioctl = mnemo_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice mnemo_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "mnemo",
	.fops = &mnemo_fops,
	.mode = 0666,
};

static int mnemo_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, MNEMO_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type mnemo_fs_type = {
	.name = "mnemo",
	.init_fs_context = mnemo_init_fs_context,
	.kill_sb = kill_anon_super,
};

static int mnemo_fs_get(void)
{
	mnemo_mnt = kern_mount(&mnemo_fs_type);
	if (IS_ERR(mnemo_mnt))
		return PTR_ERR(mnemo_mnt);
	mnemo_inode = alloc_anon_inode(mnemo_mnt->mnt_sb);
	if (IS_ERR(mnemo_inode)) {
		kern_unmount(mnemo_mnt);
		return PTR_ERR(mnemo_inode);
	}
	mnemo.mapping = mnemo_inode->i_mapping;
	return 0;
}

static void mnemo_fs_put(void)
{
	iput(mnemo_inode);
	kern_unmount(mnemo_mnt);
}

static int __init mnemo_init(void)
{
	struct mnemo_dev *md = &mnemo;
	int rc;

	rc = mnemo_scm_get(md, pmem, ram_mb);
	if (rc)
		return rc;
	rc = mnemo_table_load(md, format);
	if (rc)
		goto out_scm;
	md->budget = frames && frames < md->nframes ? frames : md->nframes;
	rc = mnemo_fs_get();
	if (rc)
		goto out_table;
	rc = misc_register(&mnemo_misc);
	if (rc)
		goto out_fs;
	pr_info("mnemo: %s, %llu frames, budget %llu, %llu in use\n",
		md->persistent ? pmem : "RAM", md->nframes, md->budget,
		md->used);
	return 0;

out_fs:
	mnemo_fs_put();
out_table:
	mnemo_table_unload(md);
out_scm:
	mnemo_scm_put(md);
	return rc;
}

static void __exit mnemo_exit(void)
{
	misc_deregister(&mnemo_misc);
	mnemo_fs_put();
	if (!mnemo.persistent)
		mnemo_writeback_all(&mnemo);
	mnemo_table_unload(&mnemo);
	mnemo_scm_put(&mnemo);
}

module_init(mnemo_init);
module_exit(mnemo_exit);
MODULE_DESCRIPTION("Mnemosyne SCM regions virtualised by the kernel");
MODULE_LICENSE("GPL");
