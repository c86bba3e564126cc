// SPDX-License-Identifier: GPL-2.0
/*
 * C shim for p2pmem: out-of-line copies of the static inline helpers and
 * macros that the Rust side needs. Keep every function here trivial; the
 * logic belongs in Rust.
 */
#include "../include/p2pmem_kernel.h"

/*
 * The module's version, from dkms.conf's PACKAGE_VERSION (Kbuild), and the
 * ids= parameter: a string, which the kernel crate's module! macro cannot
 * declare. Read-only in sysfs (/sys/module/p2pmem/parameters/ids); parsed in
 * src/pci_ids.rs.
 */
MODULE_VERSION(P2PMEM_VERSION);

static char p2pmem_ids[1024];
module_param_string(ids, p2pmem_ids, sizeof(p2pmem_ids), 0444);
MODULE_PARM_DESC(ids, "PCI IDs to bind besides ivshmem: vendor:device[:subvendor[:subdevice[:class[:class_mask]]]][,...] in hex, as vfio-pci takes them");

const char *p2pmem_ids_param(void)
{
	return p2pmem_ids;
}

int p2pmem_pci_add_dynid(u32 vendor, u32 device, u32 subvendor, u32 subdevice,
			 u32 class, u32 class_mask)
{
	struct device_driver *drv = driver_find(KBUILD_MODNAME, &pci_bus_type);

	/* Our driver: the bus has one driver of a name, and only we register this one. */
	if (!drv || drv->owner != THIS_MODULE)
		return -ENODEV;
	return pci_add_dynid(to_pci_driver(drv), vendor, device, subvendor, subdevice,
			     class, class_mask, 0);
}

unsigned long p2pmem_pci_resource_flags(struct pci_dev *pdev, int bar)
{
	return pci_resource_flags(pdev, bar);
}

int p2pmem_pci_node(struct pci_dev *pdev)
{
	return dev_to_node(&pdev->dev);
}

void p2pmem_pgmap_set_range(struct dev_pagemap *pgmap, u64 start, u64 end)
{
	pgmap->range.start = start;
	pgmap->range.end = end;
	pgmap->nr_range = 1;
}

struct dev_pagemap *p2pmem_folio_pgmap(struct folio *folio)
{
	return folio->pgmap;
}

unsigned long p2pmem_folio_pfn(struct folio *folio)
{
	return folio_pfn(folio);
}

struct page *p2pmem_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

unsigned long p2pmem_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

bool p2pmem_is_pci_p2pdma_page(struct page *page)
{
	return is_pci_p2pdma_page(page);
}

int p2pmem_page_count(struct page *page)
{
	return page_ref_count(page);
}

void p2pmem_set_page_count(struct page *page, int v)
{
	set_page_count(page, v);
}

void p2pmem_put_page(struct page *page)
{
	put_page(page);
}

bool p2pmem_percpu_ref_tryget_live(struct percpu_ref *ref)
{
	return percpu_ref_tryget_live(ref);
}

void p2pmem_percpu_ref_put(struct percpu_ref *ref)
{
	percpu_ref_put(ref);
}

u64 p2pmem_pci_bus_address(struct pci_dev *pdev, int bar)
{
	return pci_bus_address(pdev, bar);
}

struct page *p2pmem_virt_to_page(void *addr)
{
	return virt_to_page(addr);
}

struct dev_pagemap *p2pmem_page_pgmap(struct page *page)
{
	return page_pgmap(page);
}

const void *p2pmem_pci_p2pdma(struct pci_dev *pdev)
{
	/* Set once by pcim_p2pdma_init(), freed by devres after the driver let go. */
	return rcu_dereference_raw(pdev->p2pdma);
}

size_t p2pmem_gen_pool_size(const void *pool)
{
	return gen_pool_size((struct gen_pool *)pool);
}

size_t p2pmem_gen_pool_avail(const void *pool)
{
	return gen_pool_avail((struct gen_pool *)pool);
}

void p2pmem_file_set_mapping(struct file *file, struct inode *inode)
{
	file->f_mapping = inode->i_mapping;
}

/*
 * An address space of our own for each bound device, on an internal
 * pseudo-filesystem, as DRM does (drm_fs_inode_new()): every open file of the
 * device maps through it, whatever node it was opened through, so unbind can
 * unmap every mapping at once and no inode of a user's filesystem is kept.
 * The filesystem has no owner module: it is mounted while an inode exists,
 * every inode is freed before the module can go (files hold the module), and
 * the last simple_release_fs() unmounts synchronously (an internal mount).
 */
#define P2PMEM_FS_MAGIC 0x70327032

static int p2pmem_fs_cnt;
static struct vfsmount *p2pmem_fs_mnt;

static int p2pmem_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, P2PMEM_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type p2pmem_fs_type = {
	.name = "p2pmem",
	.init_fs_context = p2pmem_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

struct inode *p2pmem_anon_inode_new(void)
{
	struct inode *inode;
	int ret;

	ret = simple_pin_fs(&p2pmem_fs_type, &p2pmem_fs_mnt, &p2pmem_fs_cnt);
	if (ret < 0)
		return ERR_PTR(ret);
	inode = alloc_anon_inode(p2pmem_fs_mnt->mnt_sb);
	if (IS_ERR(inode))
		simple_release_fs(&p2pmem_fs_mnt, &p2pmem_fs_cnt);
	return inode;
}

void p2pmem_anon_inode_free(struct inode *inode)
{
	iput(inode);
	simple_release_fs(&p2pmem_fs_mnt, &p2pmem_fs_cnt);
}

struct p2pmem_sysfs {
	const void *ctx;
};

static void p2pmem_sysfs_release(struct device *dev, void *res)
{
}

static int p2pmem_sysfs_counters(struct device *dev, struct p2pmem_counters *counters)
{
	struct p2pmem_sysfs *s = devres_find(dev, p2pmem_sysfs_release, NULL, NULL);

	if (!s)
		return -ENODEV;
	return p2pmem_region_counters(s->ctx, counters);
}

/* A counter of struct p2pmem_counters, shown as a decimal. */
struct p2pmem_region_attr {
	struct device_attribute attr;
	size_t offset;
};

static ssize_t p2pmem_region_show(struct device *dev, struct device_attribute *attr,
				  char *buf)
{
	struct p2pmem_region_attr *ra = container_of(attr, struct p2pmem_region_attr, attr);
	struct p2pmem_counters counters;
	u64 value;
	int ret;

	ret = p2pmem_sysfs_counters(dev, &counters);
	if (ret)
		return ret;
	memcpy(&value, (u8 *)&counters + ra->offset, sizeof(value));
	return sysfs_emit(buf, "%llu\n", value);
}

#define P2PMEM_COUNTER(member) offsetof(struct p2pmem_counters, member)

static struct p2pmem_region_attr p2pmem_region_attr_list[] = {
	{ __ATTR(region_bytes, 0444, p2pmem_region_show, NULL), P2PMEM_COUNTER(region_bytes) },
	{ __ATTR(pages, 0444, p2pmem_region_show, NULL), P2PMEM_COUNTER(pages) },
	{ __ATTR(free_pages, 0444, p2pmem_region_show, NULL), P2PMEM_COUNTER(free_pages) },
	{ __ATTR(outstanding_pages, 0444, p2pmem_region_show, NULL),
	  P2PMEM_COUNTER(outstanding_pages) },
	{ __ATTR(handed_out_pages, 0444, p2pmem_region_show, NULL),
	  P2PMEM_COUNTER(handed_out_pages) },
	{ __ATTR(freed_pages, 0444, p2pmem_region_show, NULL), P2PMEM_COUNTER(freed_pages) },
	{ __ATTR(pool_bytes, 0444, p2pmem_region_show, NULL), P2PMEM_COUNTER(pool_bytes) },
	{ __ATTR(pool_free_bytes, 0444, p2pmem_region_show, NULL),
	  P2PMEM_COUNTER(pool_free_bytes) },
	{ __ATTR(region_offset, 0444, p2pmem_region_show, NULL), P2PMEM_COUNTER(region_offset) },
};

static struct attribute *p2pmem_region_attrs[] = {
	&p2pmem_region_attr_list[0].attr.attr,
	&p2pmem_region_attr_list[1].attr.attr,
	&p2pmem_region_attr_list[2].attr.attr,
	&p2pmem_region_attr_list[3].attr.attr,
	&p2pmem_region_attr_list[4].attr.attr,
	&p2pmem_region_attr_list[5].attr.attr,
	&p2pmem_region_attr_list[6].attr.attr,
	&p2pmem_region_attr_list[7].attr.attr,
	&p2pmem_region_attr_list[8].attr.attr,
	NULL,
};

static const struct attribute_group p2pmem_region_group = {
	.name = "p2pmem_region",
	.attrs = p2pmem_region_attrs,
};

int p2pmem_sysfs_add(struct pci_dev *pdev, const void *ctx)
{
	struct p2pmem_sysfs *s;
	int ret;

	s = devres_alloc(p2pmem_sysfs_release, sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	s->ctx = ctx;
	devres_add(&pdev->dev, s);
	ret = sysfs_create_group(&pdev->dev.kobj, &p2pmem_region_group);
	if (ret)
		devres_release(&pdev->dev, p2pmem_sysfs_release, NULL, NULL);
	return ret;
}

void p2pmem_sysfs_remove(struct pci_dev *pdev)
{
	/* Waits for every show() in flight; none starts afterwards. */
	sysfs_remove_group(&pdev->dev.kobj, &p2pmem_region_group);
	devres_release(&pdev->dev, p2pmem_sysfs_release, NULL, NULL);
}

/*
 * Revoke registrations (p2pmem_revoke.h). Each binding of a device has its
 * own p2pmem_revoke_list, reference-counted: the binding holds one reference,
 * every registration another, so a registration can be unregistered after
 * its binding is gone. While the binding takes registrations its list is on
 * p2pmem_bindings, where p2pmem_register_revoke() finds it by device; unbind
 * takes it off first, so a rebind never shares a list with the old binding.
 *
 * Locking: p2pmem_bindings_lock (a mutex) protects p2pmem_bindings and is
 * taken before list->lock (a spinlock, irq-safe since release may be called
 * from any context), which protects list->users, list->closed,
 * list->holding and each user's state and released flag. No lock is held
 * while ->revoke() runs; a user being revoked is in state REVOKING, and
 * unregistration waits until it leaves that state, so ->revoke() never runs
 * on a registration that was freed.
 */
enum {
	P2PMEM_REVOKE_REGISTERED,	/* ->revoke() not called yet */
	P2PMEM_REVOKE_REVOKING,		/* ->revoke() running */
	P2PMEM_REVOKE_REVOKED,		/* ->revoke() returned */
};

struct p2pmem_revoke_list {
	struct kref kref;
	struct list_head node;		/* on p2pmem_bindings while open */
	struct pci_dev *pdev;		/* a reference, for lookup and the log */
	spinlock_t lock;		/* see above */
	struct list_head users;
	bool closed;			/* unbind started: no new registrations */
	unsigned int holding;		/* revoked, neither released nor unregistered */
	wait_queue_head_t wq;		/* holding dropped, a ->revoke() returned */
};

static DEFINE_MUTEX(p2pmem_bindings_lock);
static LIST_HEAD(p2pmem_bindings);

struct p2pmem_revoke_list *p2pmem_revoke_list_new(struct pci_dev *pdev)
{
	struct p2pmem_revoke_list *list = kzalloc(sizeof(*list), GFP_KERNEL);

	if (!list)
		return NULL;
	kref_init(&list->kref);
	INIT_LIST_HEAD(&list->node);
	list->pdev = pci_dev_get(pdev);
	spin_lock_init(&list->lock);
	INIT_LIST_HEAD(&list->users);
	init_waitqueue_head(&list->wq);
	return list;
}

static void p2pmem_revoke_list_release(struct kref *kref)
{
	struct p2pmem_revoke_list *list = container_of(kref, struct p2pmem_revoke_list, kref);

	WARN_ON(!list_empty(&list->users));
	pci_dev_put(list->pdev);
	kfree(list);
}

void p2pmem_revoke_list_put(struct p2pmem_revoke_list *list)
{
	kref_put(&list->kref, p2pmem_revoke_list_release);
}

void p2pmem_revoke_list_open(struct p2pmem_revoke_list *list)
{
	mutex_lock(&p2pmem_bindings_lock);
	list_add_tail(&list->node, &p2pmem_bindings);
	mutex_unlock(&p2pmem_bindings_lock);
}

void p2pmem_revoke_list_close(struct p2pmem_revoke_list *list)
{
	mutex_lock(&p2pmem_bindings_lock);
	list_del_init(&list->node);
	mutex_unlock(&p2pmem_bindings_lock);
	spin_lock_irq(&list->lock);
	list->closed = true;
	spin_unlock_irq(&list->lock);
}

unsigned int p2pmem_revoke_list_revoke(struct p2pmem_revoke_list *list)
{
	struct p2pmem_revoke *r;
	unsigned int n = 0;
	bool found;

	p2pmem_revoke_list_close(list);
	do {
		found = false;
		spin_lock_irq(&list->lock);
		list_for_each_entry(r, &list->users, node) {
			if (r->state == P2PMEM_REVOKE_REGISTERED) {
				WRITE_ONCE(r->state, P2PMEM_REVOKE_REVOKING);
				if (!r->released)
					list->holding++;
				found = true;
				break;
			}
		}
		spin_unlock_irq(&list->lock);
		if (!found)
			break;
		/* No lock: the user may sleep, release, take its own locks. */
		r->revoke(r);
		n++;
		spin_lock_irq(&list->lock);
		WRITE_ONCE(r->state, P2PMEM_REVOKE_REVOKED);
		spin_unlock_irq(&list->lock);
		wake_up_all(&list->wq);
	} while (found);
	return n;
}

unsigned int p2pmem_revoke_list_wait(struct p2pmem_revoke_list *list, unsigned int ms)
{
	struct p2pmem_revoke *r;
	unsigned int left;

	wait_event_timeout(list->wq, !READ_ONCE(list->holding), msecs_to_jiffies(ms));
	spin_lock_irq(&list->lock);
	left = list->holding;
	list_for_each_entry(r, &list->users, node) {
		if (r->state != P2PMEM_REVOKE_REGISTERED && !r->released)
			pci_warn(list->pdev,
				 "unbind: %s has not released its P2PDMA memory after %u ms\n",
				 r->name, ms);
	}
	spin_unlock_irq(&list->lock);
	return left;
}

/**
 * p2pmem_register_revoke() - be told before a device's P2PDMA memory goes away
 * @pdev: a device bound to p2pmem whose memory the caller holds long-term
 * @r: the caller's registration; @r->name and @r->revoke must be set
 *
 * The registration belongs to the current binding of @pdev: after an unbind
 * and a rebind, register again.
 *
 * Context: process context. Takes no device lock.
 * Return: 0, or -ENODEV when @pdev is not bound to p2pmem or its unbind started.
 */
int p2pmem_register_revoke(struct pci_dev *pdev, struct p2pmem_revoke *r)
{
	struct p2pmem_revoke_list *list;
	int ret = -ENODEV;

	mutex_lock(&p2pmem_bindings_lock);
	list_for_each_entry(list, &p2pmem_bindings, node) {
		if (list->pdev != pdev)
			continue;
		spin_lock_irq(&list->lock);
		if (!list->closed) {
			r->list = list;
			r->state = P2PMEM_REVOKE_REGISTERED;
			r->released = false;
			list_add_tail(&r->node, &list->users);
			kref_get(&list->kref);
			ret = 0;
		}
		spin_unlock_irq(&list->lock);
		break;
	}
	mutex_unlock(&p2pmem_bindings_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(p2pmem_register_revoke);

/**
 * p2pmem_unregister_revoke() - stop being told; the caller holds no memory of the device
 * @r: a registration made with p2pmem_register_revoke()
 *
 * Valid whatever happened since registration: the device still bound, being
 * unbound, unbound, or bound again. If @r->revoke() is running, this waits
 * for it to return; an unbind waiting for @r to release stops waiting for it.
 * Once this returns, p2pmem does not touch @r again: it may be freed, and its
 * module unloaded.
 *
 * Context: process context; not from @r->revoke().
 */
void p2pmem_unregister_revoke(struct p2pmem_revoke *r)
{
	struct p2pmem_revoke_list *list = r->list;

	for (;;) {
		spin_lock_irq(&list->lock);
		if (r->state != P2PMEM_REVOKE_REVOKING)
			break;
		spin_unlock_irq(&list->lock);
		wait_event(list->wq, READ_ONCE(r->state) != P2PMEM_REVOKE_REVOKING);
	}
	if (r->state == P2PMEM_REVOKE_REVOKED && !r->released)
		list->holding--;
	list_del_init(&r->node);
	r->list = NULL;
	spin_unlock_irq(&list->lock);
	wake_up_all(&list->wq);
	p2pmem_revoke_list_put(list);
}
EXPORT_SYMBOL_GPL(p2pmem_unregister_revoke);

/**
 * p2pmem_revoke_release() - the caller holds no more memory of the device
 * @r: the registration whose ->revoke() was called (it may call this itself)
 *
 * Context: any context.
 */
void p2pmem_revoke_release(struct p2pmem_revoke *r)
{
	struct p2pmem_revoke_list *list = r->list;
	unsigned long flags;

	spin_lock_irqsave(&list->lock, flags);
	if (!r->released) {
		r->released = true;
		if (r->state != P2PMEM_REVOKE_REGISTERED)
			list->holding--;
	}
	/* Under the lock: an unregistration after this may free @list. */
	wake_up_all(&list->wq);
	spin_unlock_irqrestore(&list->lock, flags);
}
EXPORT_SYMBOL_GPL(p2pmem_revoke_release);

/* The unbind gate's wait queue (src/waitq.rs). */
struct wait_queue_head *p2pmem_waitq_new(void)
{
	struct wait_queue_head *wq = kmalloc(sizeof(*wq), GFP_KERNEL);

	if (wq)
		init_waitqueue_head(wq);
	return wq;
}

void p2pmem_waitq_free(struct wait_queue_head *wq)
{
	kfree(wq);
}

void p2pmem_waitq_wake(struct wait_queue_head *wq)
{
	wake_up_all(wq);
}

bool p2pmem_waitq_wait(struct wait_queue_head *wq, bool (*done)(const void *ctx),
		       const void *ctx, unsigned int ms)
{
	return wait_event_timeout(*wq, done(ctx), msecs_to_jiffies(ms)) > 0;
}

/* Fault-time mappings of compound P2PDMA folios (src/fault_map.rs). */
struct vm_area_struct *p2pmem_vmf_vma(struct vm_fault *vmf)
{
	return vmf->vma;
}

unsigned long p2pmem_vmf_address(struct vm_fault *vmf)
{
	return vmf->address;
}

bool p2pmem_vmf_write(struct vm_fault *vmf)
{
	return vmf->flags & FAULT_FLAG_WRITE;
}

unsigned long p2pmem_vma_start(struct vm_area_struct *vma)
{
	return vma->vm_start;
}

unsigned long p2pmem_vma_end(struct vm_area_struct *vma)
{
	return vma->vm_end;
}

unsigned long p2pmem_vma_pgoff(struct vm_area_struct *vma)
{
	return vma->vm_pgoff;
}

void *p2pmem_vma_private(struct vm_area_struct *vma)
{
	return vma->vm_private_data;
}

void p2pmem_vma_set_fault_ops(struct vm_area_struct *vma,
			      const struct vm_operations_struct *ops, void *data)
{
	vma->vm_ops = ops;
	vma->vm_private_data = data;
	vm_flags_set(vma, VM_HUGEPAGE);
}

void p2pmem_get_page(struct page *page)
{
	get_page(page);
}

struct folio *p2pmem_page_folio(struct page *page)
{
	return page_folio(page);
}

/*
 * The file_operations of /dev/p2pmemN with get_unmapped_area added: a copy
 * of the miscdevice's, made at the first open that needs it and never
 * changed after (the module's own data: nothing to free). Its owner is this
 * module, like the original's, so the module reference misc_open() took for
 * the file is dropped by fput() either way.
 */
static struct file_operations p2pmem_aligned_fops;
static bool p2pmem_aligned_fops_ready;
static DEFINE_MUTEX(p2pmem_aligned_fops_lock);

int p2pmem_file_align_mappings(struct file *file)
{
	mutex_lock(&p2pmem_aligned_fops_lock);
	if (!p2pmem_aligned_fops_ready) {
		p2pmem_aligned_fops = *file->f_op;
		p2pmem_aligned_fops.get_unmapped_area = thp_get_unmapped_area;
		p2pmem_aligned_fops_ready = true;
	}
	mutex_unlock(&p2pmem_aligned_fops_lock);
	/* Only ever one miscdevice file_operations in this module. */
	if (WARN_ON_ONCE(p2pmem_aligned_fops.open != file->f_op->open))
		return -EINVAL;
	file->f_op = &p2pmem_aligned_fops;
	return 0;
}
