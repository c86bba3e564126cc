/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel C interfaces that p2pmem calls from Rust.
 *
 * This header is the input of the module's own bindgen run (see Kbuild):
 * the exported functions it allowlists, and the prototypes of the C shim
 * (src/shim.c) that wraps static inline helpers and macros, which bindgen
 * cannot bind. Types come from the kernel crate's bindings.
 */
#ifndef _P2PMEM_KERNEL_H
#define _P2PMEM_KERNEL_H

#include <linux/fs.h>
#include <linux/genalloc.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/percpu-refcount.h>
#include <linux/wait.h>

#include "p2pmem_revoke.h"
#include "p2pmem_test_uapi.h"
#include "uapi/linux/p2pmem.h"

/* The ids= module parameter's value: NUL-terminated, fixed after load. */
const char *p2pmem_ids_param(void);
/*
 * pci_add_dynid() on this module's PCI driver, found by name: the caller
 * keeps the driver registered for the call. Binds the matching devices that
 * have no driver. 0, -ENOMEM, or -ENODEV when the driver is not registered.
 */
int p2pmem_pci_add_dynid(u32 vendor, u32 device, u32 subvendor, u32 subdevice,
			 u32 class, u32 class_mask);

/* pci_resource_flags() is a macro. */
unsigned long p2pmem_pci_resource_flags(struct pci_dev *pdev, int bar);
/* dev_to_node() is a static inline. */
int p2pmem_pci_node(struct pci_dev *pdev);

/* struct dev_pagemap: the range is in a union with a flexible array. */
void p2pmem_pgmap_set_range(struct dev_pagemap *pgmap, u64 start, u64 end);

/* Static inline page and folio helpers (include/linux/mm.h, page_ref.h). */
struct dev_pagemap *p2pmem_folio_pgmap(struct folio *folio);
unsigned long p2pmem_folio_pfn(struct folio *folio);
struct page *p2pmem_pfn_to_page(unsigned long pfn);
unsigned long p2pmem_page_to_pfn(struct page *page);
bool p2pmem_is_pci_p2pdma_page(struct page *page);
int p2pmem_page_count(struct page *page);
void p2pmem_set_page_count(struct page *page, int v);
void p2pmem_put_page(struct page *page);

/* Static inline percpu_ref helpers. */
bool p2pmem_percpu_ref_tryget_live(struct percpu_ref *ref);
void p2pmem_percpu_ref_put(struct percpu_ref *ref);

/* pci_bus_address(), virt_to_page(), page_pgmap() are static inlines. */
u64 p2pmem_pci_bus_address(struct pci_dev *pdev, int bar);
struct page *p2pmem_virt_to_page(void *addr);
struct dev_pagemap *p2pmem_page_pgmap(struct page *page);
/* pdev->p2pdma, a private struct (src/p2pdma.rs mirrors its head), or NULL. */
const void *p2pmem_pci_p2pdma(struct pci_dev *pdev);
/* gen_pool_size() and gen_pool_avail() of a pool reached through it. */
size_t p2pmem_gen_pool_size(const void *pool);
size_t p2pmem_gen_pool_avail(const void *pool);

/*
 * An anonymous inode on the module's internal filesystem, as an address
 * space every open file of a device maps through (src/cdev.rs).
 */
struct inode *p2pmem_anon_inode_new(void);
void p2pmem_anon_inode_free(struct inode *inode);
void p2pmem_file_set_mapping(struct file *file, struct inode *inode);

/* What the p2pmem_region attributes show; filled by p2pmem_region_counters(). */
struct p2pmem_counters {
	u64 region_bytes;
	u64 pages;
	u64 free_pages;
	u64 outstanding_pages;
	u64 handed_out_pages;
	u64 freed_pages;
	u64 pool_bytes;
	u64 pool_free_bytes;
	u64 region_offset;
};

/*
 * The p2pmem_region attribute group on the PCI device. The shim keeps @ctx in
 * devres and reads the counters through p2pmem_region_counters(), which the
 * Rust side defines; p2pmem_sysfs_remove() must run before @ctx goes away.
 */
int p2pmem_sysfs_add(struct pci_dev *pdev, const void *ctx);
void p2pmem_sysfs_remove(struct pci_dev *pdev);
int p2pmem_region_counters(const void *ctx, struct p2pmem_counters *counters);

/*
 * Revoke registrations of a binding (p2pmem_revoke.h), reference-counted; the
 * policy (when to revoke, how long to wait) is in src/revoke.rs.
 */
struct p2pmem_revoke_list *p2pmem_revoke_list_new(struct pci_dev *pdev);
/* Drops a reference; the binding's is dropped when it goes. */
void p2pmem_revoke_list_put(struct p2pmem_revoke_list *list);
/* Takes registrations for the device from now on. */
void p2pmem_revoke_list_open(struct p2pmem_revoke_list *list);
/* Stops taking registrations (unbind started, or the binding goes). Idempotent. */
void p2pmem_revoke_list_close(struct p2pmem_revoke_list *list);
/* Closes, then calls every ->revoke() with no lock held; returns how many. */
unsigned int p2pmem_revoke_list_revoke(struct p2pmem_revoke_list *list);
/* Waits up to @ms for every revoked user to release; logs who holds on, returns how many. */
unsigned int p2pmem_revoke_list_wait(struct p2pmem_revoke_list *list, unsigned int ms);

/*
 * A wait queue (src/waitq.rs): p2pmem_waitq_wait() sleeps uninterruptibly for
 * up to @ms until @done(@ctx), which must not sleep; p2pmem_waitq_wake() may
 * be called from any context. Returns whether @done(@ctx) held.
 */
struct wait_queue_head *p2pmem_waitq_new(void);
void p2pmem_waitq_free(struct wait_queue_head *wq);
void p2pmem_waitq_wake(struct wait_queue_head *wq);
bool p2pmem_waitq_wait(struct wait_queue_head *wq, bool (*done)(const void *ctx),
		       const void *ctx, unsigned int ms);

/*
 * Fault-time mappings of compound P2PDMA folios (src/fault_map.rs): the
 * struct vm_fault and vm_area_struct fields the handlers read, folio_get(),
 * and the vm_ops/private data of a mapping being set up (also marks it
 * VM_HUGEPAGE, so the fault path offers PMD faults).
 */
struct vm_area_struct *p2pmem_vmf_vma(struct vm_fault *vmf);
unsigned long p2pmem_vmf_address(struct vm_fault *vmf);
bool p2pmem_vmf_write(struct vm_fault *vmf);
unsigned long p2pmem_vma_start(struct vm_area_struct *vma);
unsigned long p2pmem_vma_end(struct vm_area_struct *vma);
unsigned long p2pmem_vma_pgoff(struct vm_area_struct *vma);
void *p2pmem_vma_private(struct vm_area_struct *vma);
void p2pmem_vma_set_fault_ops(struct vm_area_struct *vma,
			      const struct vm_operations_struct *ops, void *data);
void p2pmem_get_page(struct page *page);
struct folio *p2pmem_page_folio(struct page *page);
/*
 * Makes @file, being opened, use a copy of its file_operations whose
 * get_unmapped_area is thp_get_unmapped_area(), so that mappings of 2 MiB
 * and more start on a PMD boundary. The kernel crate's miscdevice builds
 * its file_operations without that hook. 0, or -EINVAL for another file.
 */
int p2pmem_file_align_mappings(struct file *file);

#endif /* _P2PMEM_KERNEL_H */
