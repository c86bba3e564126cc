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

#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/percpu-refcount.h>

#include "p2pmem_revoke.h"
#include "uapi/linux/p2pmem.h"

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

/*
 * The p2pmem_region attribute group on the PCI device. The shim keeps @ctx in
 * devres and reads the counters through p2pmem_region_info(), which the Rust
 * side defines; p2pmem_sysfs_remove() must run before @ctx goes away.
 */
int p2pmem_sysfs_add(struct pci_dev *pdev, const void *ctx);
void p2pmem_sysfs_remove(struct pci_dev *pdev);
int p2pmem_region_info(const void *ctx, struct p2pmem_info *info);

/*
 * Revoke registrations of a bound device (p2pmem_revoke.h). The list lives in
 * the shim; Rust owns one per bound device and drives it on unbind.
 */
struct p2pmem_revoke_list;
struct p2pmem_revoke_list *p2pmem_revoke_list_new(void);
void p2pmem_revoke_list_free(struct p2pmem_revoke_list *list);
/* Calls every ->revoke() and refuses new registrations; returns how many. */
unsigned int p2pmem_revoke_list_revoke(struct p2pmem_revoke_list *list);
/* Waits up to @ms for the users not released; logs their names, returns how many hold on. */
unsigned int p2pmem_revoke_list_wait(struct p2pmem_revoke_list *list, struct pci_dev *pdev,
				     unsigned int ms);
/* The list of the device's sysfs context, under the device lock (sysfs.rs). */
struct p2pmem_revoke_list *p2pmem_region_revoke_list(const void *ctx);

#endif /* _P2PMEM_KERNEL_H */
