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
