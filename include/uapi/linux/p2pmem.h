/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * p2pmem userspace ABI: the ioctls of /dev/p2pmemN.
 *
 * Shared by the module, its selftests and samples.
 *
 * mmap(MAP_SHARED) of /dev/p2pmemN at offset 0 hands out fresh P2PDMA pages
 * from the device's region; see Documentation/p2pmem.rst for the rules.
 */
#ifndef _UAPI_LINUX_P2PMEM_H
#define _UAPI_LINUX_P2PMEM_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Unused in Documentation/userspace-api/ioctl/ioctl-number.rst (7.3). */
#define P2PMEM_IOCTL_MAGIC 0xB9

/* The misc device of the Nth bound device is /dev/p2pmemN. */
#define P2PMEM_DEVICE_PREFIX "p2pmem"

/**
 * struct p2pmem_info - what a bound device serves, and its page counters
 * @region_bytes: size of the region /dev/p2pmemN maps pages from
 * @page_size: size of one page of the region
 * @pages: pages in the region
 * @free_pages: pages free now
 * @outstanding_pages: pages handed out and not yet back
 * @handed_out_pages: pages handed out since the device was bound
 * @freed_pages: pages that came back since the device was bound
 * @pool_bytes: size of the slice given to the kernel's P2PDMA pool (0: none)
 * @bar: the BAR the memory is in
 * @reserved: zero
 * @region_offset: offset of the region in the BAR
 * @bus_offset: PCI bus address minus CPU physical address of the BAR
 * @pci_dev: the PCI device, as named in sysfs ("0000:03:00.0"), NUL-terminated
 * @folio_size: bytes of one folio of the region: the unit mappings are served
 *	in (page_size, or 2 MiB with huge_pages=1, which PMDs can map). The
 *	page counters count pages, whatever the folio size.
 * @folio_bytes: bytes of the region in folios of @folio_size, at its start;
 *	the rest, up to @region_bytes, is the small part of 4 KiB pages
 *	(small_pages_size) that serves the mappings folios cannot: a length or
 *	start off a @folio_size boundary. The page counters cover both parts.
 *
 * @folio_size and @folio_bytes were added in 0.3.0: a 0.2.0 caller, whose
 * struct ends at @pci_dev, gets the fields it knows.
 */
struct p2pmem_info {
	__u64 region_bytes;
	__u64 page_size;
	__u64 pages;
	__u64 free_pages;
	__u64 outstanding_pages;
	__u64 handed_out_pages;
	__u64 freed_pages;
	__u64 pool_bytes;
	__u32 bar;
	__u32 reserved;
	__u64 region_offset;
	__u64 bus_offset;
	char pci_dev[16];
	__u64 folio_size;
	__u64 folio_bytes;
};

#define P2PMEM_IOCTL_INFO _IOR(P2PMEM_IOCTL_MAGIC, 0x00, struct p2pmem_info)

#endif /* _UAPI_LINUX_P2PMEM_H */
