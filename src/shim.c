// SPDX-License-Identifier: GPL-2.0
/*
 * C shim for p2pmem: out-of-line copies of the static inline helpers and
 * macros that the Rust side needs. Keep every function here trivial; the
 * logic belongs in Rust.
 */
#include "../include/p2pmem_kernel.h"

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

struct p2pmem_sysfs {
	const void *ctx;
};

static void p2pmem_sysfs_release(struct device *dev, void *res)
{
}

static int p2pmem_sysfs_info(struct device *dev, struct p2pmem_info *info)
{
	struct p2pmem_sysfs *s = devres_find(dev, p2pmem_sysfs_release, NULL, NULL);

	if (!s)
		return -ENODEV;
	return p2pmem_region_info(s->ctx, info);
}

/* A counter of struct p2pmem_info, shown as a decimal. */
struct p2pmem_region_attr {
	struct device_attribute attr;
	size_t offset;
};

static ssize_t p2pmem_region_show(struct device *dev, struct device_attribute *attr,
				  char *buf)
{
	struct p2pmem_region_attr *ra = container_of(attr, struct p2pmem_region_attr, attr);
	struct p2pmem_info info;
	u64 value;
	int ret;

	ret = p2pmem_sysfs_info(dev, &info);
	if (ret)
		return ret;
	memcpy(&value, (u8 *)&info + ra->offset, sizeof(value));
	return sysfs_emit(buf, "%llu\n", value);
}

#define P2PMEM_INFO_OFFSET(member) offsetof(struct p2pmem_info, member)

static struct p2pmem_region_attr p2pmem_region_attr_list[] = {
	{ __ATTR(region_bytes, 0444, p2pmem_region_show, NULL), P2PMEM_INFO_OFFSET(region_bytes) },
	{ __ATTR(pages, 0444, p2pmem_region_show, NULL), P2PMEM_INFO_OFFSET(pages) },
	{ __ATTR(free_pages, 0444, p2pmem_region_show, NULL), P2PMEM_INFO_OFFSET(free_pages) },
	{ __ATTR(outstanding_pages, 0444, p2pmem_region_show, NULL),
	  P2PMEM_INFO_OFFSET(outstanding_pages) },
	{ __ATTR(handed_out_pages, 0444, p2pmem_region_show, NULL),
	  P2PMEM_INFO_OFFSET(handed_out_pages) },
	{ __ATTR(freed_pages, 0444, p2pmem_region_show, NULL), P2PMEM_INFO_OFFSET(freed_pages) },
	{ __ATTR(pool_bytes, 0444, p2pmem_region_show, NULL), P2PMEM_INFO_OFFSET(pool_bytes) },
	{ __ATTR(region_offset, 0444, p2pmem_region_show, NULL),
	  P2PMEM_INFO_OFFSET(region_offset) },
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

/* Revoke registrations (p2pmem_revoke.h); the policy is in src/revoke.rs. */
struct p2pmem_revoke_list {
	struct mutex lock;	/* protects users and revoked */
	struct list_head users;
	bool revoked;
};

struct p2pmem_revoke_list *p2pmem_revoke_list_new(void)
{
	struct p2pmem_revoke_list *list = kzalloc(sizeof(*list), GFP_KERNEL);

	if (!list)
		return NULL;
	mutex_init(&list->lock);
	INIT_LIST_HEAD(&list->users);
	return list;
}

void p2pmem_revoke_list_free(struct p2pmem_revoke_list *list)
{
	struct p2pmem_revoke *r, *tmp;

	list_for_each_entry_safe(r, tmp, &list->users, node)
		list_del_init(&r->node);
	mutex_destroy(&list->lock);
	kfree(list);
}

unsigned int p2pmem_revoke_list_revoke(struct p2pmem_revoke_list *list)
{
	struct p2pmem_revoke *r;
	unsigned int n = 0;

	mutex_lock(&list->lock);
	list->revoked = true;
	list_for_each_entry(r, &list->users, node) {
		r->revoke(r);
		n++;
	}
	mutex_unlock(&list->lock);
	return n;
}

unsigned int p2pmem_revoke_list_wait(struct p2pmem_revoke_list *list, struct pci_dev *pdev,
				     unsigned int ms)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(ms);
	struct p2pmem_revoke *r;
	unsigned int left = 0;
	long timeout;

	mutex_lock(&list->lock);
	list_for_each_entry(r, &list->users, node) {
		timeout = max_t(long, (long)(deadline - jiffies), 1);
		if (!wait_for_completion_timeout(&r->released, timeout)) {
			pci_warn(pdev, "revoke: %s has not released its P2PDMA memory after %u ms\n",
				 r->name, ms);
			left++;
		}
	}
	mutex_unlock(&list->lock);
	return left;
}

/**
 * p2pmem_register_revoke() - be told before a device's P2PDMA memory goes away
 * @pdev: a device bound to p2pmem whose memory the caller holds long-term
 * @r: the caller's registration; @r->name and @r->revoke must be set
 *
 * Context: process context; takes the device lock.
 * Return: 0, or -ENODEV when @pdev is not bound to p2pmem or is being unbound.
 */
int p2pmem_register_revoke(struct pci_dev *pdev, struct p2pmem_revoke *r)
{
	struct p2pmem_revoke_list *list;
	struct p2pmem_sysfs *s;
	int ret = -ENODEV;

	device_lock(&pdev->dev);
	s = devres_find(&pdev->dev, p2pmem_sysfs_release, NULL, NULL);
	if (s) {
		list = p2pmem_region_revoke_list(s->ctx);
		mutex_lock(&list->lock);
		if (!list->revoked) {
			r->pdev = pci_dev_get(pdev);
			init_completion(&r->released);
			list_add_tail(&r->node, &list->users);
			ret = 0;
		}
		mutex_unlock(&list->lock);
	}
	device_unlock(&pdev->dev);
	return ret;
}
EXPORT_SYMBOL_GPL(p2pmem_register_revoke);

/**
 * p2pmem_unregister_revoke() - stop being told
 * @r: a registration made with p2pmem_register_revoke()
 *
 * Context: process context, not from @r->revoke(); takes the device lock.
 */
void p2pmem_unregister_revoke(struct p2pmem_revoke *r)
{
	struct pci_dev *pdev = r->pdev;
	struct p2pmem_revoke_list *list;
	struct p2pmem_sysfs *s;

	device_lock(&pdev->dev);
	s = devres_find(&pdev->dev, p2pmem_sysfs_release, NULL, NULL);
	if (s) {
		list = p2pmem_region_revoke_list(s->ctx);
		mutex_lock(&list->lock);
		list_del_init(&r->node);
		mutex_unlock(&list->lock);
	}
	device_unlock(&pdev->dev);
	pci_dev_put(pdev);
}
EXPORT_SYMBOL_GPL(p2pmem_unregister_revoke);

/**
 * p2pmem_revoke_release() - the caller holds no more memory of the device
 * @r: the registration whose ->revoke() was called
 *
 * Context: any context.
 */
void p2pmem_revoke_release(struct p2pmem_revoke *r)
{
	complete_all(&r->released);
}
EXPORT_SYMBOL_GPL(p2pmem_revoke_release);
