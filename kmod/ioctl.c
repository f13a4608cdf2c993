// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl.c -- the /dev/mnemo ioctls.  Every argument is copied in whole,
 * validated (NUL-terminated bounded strings, sizes, reserved fields,
 * overflow) and checked against the caller's credentials before the
 * table is touched.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include "mnemo_dev.h"

static int mnemo_name_ok(const char *name, size_t len)
{
	size_t n = strnlen(name, len);

	return n && n < len ? 0 : -EINVAL;
}

static int mnemo_size_ok(u64 size)
{
	if (!size || !PAGE_ALIGNED(size))
		return -EINVAL;
	if (size >> PAGE_SHIFT > MNEMO_REGION_PAGES_MAX)
		return -EFBIG;
	return 0;
}

static bool mnemo_is_owner(const struct mnemo_region *r)
{
	kuid_t uid = make_kuid(&init_user_ns, le32_to_cpu(r->pent->uid));

	return uid_eq(current_fsuid(), uid) || capable(CAP_SYS_ADMIN);
}

/* Permission bits of @r that apply to the caller (0..7). */
static unsigned int mnemo_perm(const struct mnemo_region *r)
{
	const struct mnemo_pent *pe = r->pent;
	unsigned int mode = le32_to_cpu(pe->mode);

	if (uid_eq(current_fsuid(), make_kuid(&init_user_ns,
					      le32_to_cpu(pe->uid))))
		return (mode >> 6) & 7;
	if (in_group_p(make_kgid(&init_user_ns, le32_to_cpu(pe->gid))))
		return (mode >> 3) & 7;
	return mode & 7;
}

static int mnemo_create_check(const struct mnemo_kcreate *c)
{
	size_t n;
	int rc;

	rc = mnemo_name_ok(c->name, sizeof(c->name));
	if (rc)
		return rc;
	n = strnlen(c->backing, sizeof(c->backing));
	if (n == sizeof(c->backing) || (n && c->backing[0] != '/'))
		return -EINVAL;
	if (c->mode & ~0777U || c->flags & ~MNEMO_CREATE_KEEP)
		return -EINVAL;
	if (!n && c->flags)
		return -EINVAL;
	return mnemo_size_ok(c->size);
}

static int mnemo_ioc_create(struct mnemo_dev *md, void __user *arg)
{
	struct mnemo_kcreate *c;
	int rc;

	c = memdup_user(arg, sizeof(*c));
	if (IS_ERR(c))
		return PTR_ERR(c);
	rc = mnemo_create_check(c);
	if (!rc) {
		mutex_lock(&md->lock);
		rc = mnemo_kregion_create(md, c);
		mutex_unlock(&md->lock);
	}
	kfree(c);
	return rc;
}

static int mnemo_do_open(struct mnemo_dev *md, struct mnemo_file *mf,
			 struct file *file, struct mnemo_kopen *o)
{
	bool write = o->flags & MNEMO_OPEN_WRITE;
	struct mnemo_region *r;

	if (mf->region)
		return -EBUSY;
	r = mnemo_kregion_find(md, o->name);
	if (!r)
		return -ENOENT;
	if (write && !(file->f_mode & FMODE_WRITE))
		return -EBADF;
	if (!capable(CAP_DAC_OVERRIDE) &&
	    (mnemo_perm(r) & (write ? 6 : 4)) != (write ? 6 : 4))
		return -EACCES;
	r->users++;
	mf->region = r;
	mf->writable = write;
	o->size = r->npages << PAGE_SHIFT;
	return 0;
}

static int mnemo_ioc_open(struct mnemo_dev *md, struct file *file,
			  void __user *arg)
{
	struct mnemo_kopen o;
	int rc;

	if (copy_from_user(&o, arg, sizeof(o)))
		return -EFAULT;
	rc = mnemo_name_ok(o.name, sizeof(o.name));
	if (rc)
		return rc;
	if (o.flags & ~MNEMO_OPEN_WRITE || o.reserved)
		return -EINVAL;
	mutex_lock(&md->lock);
	rc = mnemo_do_open(md, file->private_data, file, &o);
	mutex_unlock(&md->lock);
	if (rc)
		return rc;
	/* on -EFAULT here the binding stays; the region is still open */
	if (copy_to_user(arg, &o, sizeof(o)))
		return -EFAULT;
	return 0;
}

static int mnemo_ioc_resize(struct mnemo_dev *md, void __user *arg)
{
	struct mnemo_kresize rs;
	struct mnemo_region *r;
	int rc;

	if (copy_from_user(&rs, arg, sizeof(rs)))
		return -EFAULT;
	rc = mnemo_name_ok(rs.name, sizeof(rs.name));
	if (!rc)
		rc = mnemo_size_ok(rs.size);
	if (rc)
		return rc;
	mutex_lock(&md->lock);
	r = mnemo_kregion_find(md, rs.name);
	if (!r)
		rc = -ENOENT;
	else if (!mnemo_is_owner(r))
		rc = -EPERM;
	else
		rc = mnemo_kregion_resize(md, r, rs.size);
	mutex_unlock(&md->lock);
	return rc;
}

static int mnemo_ioc_delete(struct mnemo_dev *md, void __user *arg)
{
	struct mnemo_kdelete d;
	struct mnemo_region *r;
	int rc;

	if (copy_from_user(&d, arg, sizeof(d)))
		return -EFAULT;
	rc = mnemo_name_ok(d.name, sizeof(d.name));
	if (rc)
		return rc;
	mutex_lock(&md->lock);
	r = mnemo_kregion_find(md, d.name);
	if (!r)
		rc = -ENOENT;
	else if (!mnemo_is_owner(r))
		rc = -EPERM;
	else
		rc = mnemo_kregion_delete(md, r);
	mutex_unlock(&md->lock);
	return rc;
}

static void mnemo_info_fill(const struct mnemo_region *r,
			    struct mnemo_kinfo *in)
{
	memset(in, 0, sizeof(*in));
	memcpy(in->name, r->pent->name, sizeof(in->name));
	in->size = r->npages << PAGE_SHIFT;
	in->resident = r->resident;
	in->uid = le32_to_cpu(r->pent->uid);
	in->gid = le32_to_cpu(r->pent->gid);
	in->mode = le32_to_cpu(r->pent->mode);
}

static int mnemo_ioc_list(struct mnemo_dev *md, void __user *arg)
{
	struct mnemo_kinfo *info;
	struct mnemo_klist l;
	unsigned int i, n = 0;
	int rc = 0;

	if (copy_from_user(&l, arg, sizeof(l)))
		return -EFAULT;
	if (l.capacity > MNEMO_SLOTS)
		l.capacity = MNEMO_SLOTS;
	info = kcalloc(MNEMO_SLOTS, sizeof(*info), GFP_KERNEL);
	if (!info)
		return -ENOMEM;
	mutex_lock(&md->lock);
	for (i = 0; i < MNEMO_SLOTS; i++)
		if (md->regions[i])
			mnemo_info_fill(md->regions[i], &info[n++]);
	mutex_unlock(&md->lock);
	if (copy_to_user(u64_to_user_ptr(l.info), info,
			 min(n, l.capacity) * sizeof(*info)))
		rc = -EFAULT;
	l.count = n;
	if (!rc && copy_to_user(arg, &l, sizeof(l)))
		rc = -EFAULT;
	kfree(info);
	return rc;
}

static int mnemo_ioc_stat(struct mnemo_dev *md, void __user *arg)
{
	struct mnemo_kstat st = {
		.frames_total = md->nframes,
		.slots = MNEMO_SLOTS,
	};

	mutex_lock(&md->lock);
	st.frames_budget = md->budget;
	st.frames_used = md->used;
	st.evictions = md->evictions;
	st.faultins = md->faultins;
	st.evict_ns = md->evict_ns;
	st.faultin_ns = md->faultin_ns;
	st.persistent = md->persistent;
	mutex_unlock(&md->lock);
	return copy_to_user(arg, &st, sizeof(st)) ? -EFAULT : 0;
}

static int mnemo_ioc_sync(struct mnemo_dev *md, struct mnemo_file *mf)
{
	int rc;

	if (!mf->region)
		return -ENODEV;
	mutex_lock(&md->lock);
	rc = mnemo_kregion_sync(md, mf->region);
	mutex_unlock(&md->lock);
	return rc;
}

long mnemo_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct mnemo_dev *md = &mnemo;

	switch (cmd) {
	case MNEMO_IOC_CREATE:
		return mnemo_ioc_create(md, uarg);
	case MNEMO_IOC_OPEN:
		return mnemo_ioc_open(md, file, uarg);
	case MNEMO_IOC_RESIZE:
		return mnemo_ioc_resize(md, uarg);
	case MNEMO_IOC_DELETE:
		return mnemo_ioc_delete(md, uarg);
	case MNEMO_IOC_LIST:
		return mnemo_ioc_list(md, uarg);
	case MNEMO_IOC_STAT:
		return mnemo_ioc_stat(md, uarg);
	case MNEMO_IOC_SYNC:
		return mnemo_ioc_sync(md, file->private_data);
	default:
		return -ENOTTY;
	}
}
