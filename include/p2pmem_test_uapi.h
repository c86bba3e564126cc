/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * p2pmem test interface: the ioctls that only tools/testing/selftests/p2pmem
 * uses, in the manner of lib/test_hmm_uapi.h. Not part of the p2pmem uAPI:
 * the module serves them only when loaded with test_interfaces=1; otherwise
 * they get ENOTTY like any unknown ioctl.
 *
 * Shared by the module (its bindgen input) and the selftests.
 */
#ifndef _P2PMEM_TEST_UAPI_H
#define _P2PMEM_TEST_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#include "uapi/linux/p2pmem.h"

/* struct p2pmem_pin flags */
#define P2PMEM_PIN_WRITE	0x1U	/* FOLL_WRITE: the pages will be written */
#define P2PMEM_PIN_P2PDMA	0x2U	/* FOLL_PCI_P2PDMA: accept P2PDMA pages */
#define P2PMEM_PIN_LONGTERM	0x4U	/* FOLL_LONGTERM; never with P2PDMA (EINVAL) */

/**
 * struct p2pmem_pin - pin a user range through the module's GUP layer, then unpin it
 * @addr: start, page-aligned
 * @len: length in bytes, a multiple of the page size, at most 64 MiB
 * @flags: P2PMEM_PIN_*
 * @reserved: zero
 * @pinned: out: pages pinned; GUP stops at the first page it cannot pin, so this can be
 *	less than @len pages (the ioctl fails only when not even the first page pins)
 * @p2pdma: out: how many of them are P2PDMA pages
 * @ours: out: how many of them are pages of this device's region
 *
 * A test of the module's GUP layer in the manner of mm/gup_test.c: the pages are unpinned
 * before the ioctl returns. It can pin any memory of the caller long-term for that time, which
 * is why it is a test interface only.
 */
struct p2pmem_pin {
	__u64 addr;
	__u64 len;
	__u32 flags;
	__u32 reserved;
	__u64 pinned;
	__u64 p2pdma;
	__u64 ours;
};

#define P2PMEM_IOCTL_PIN _IOWR(P2PMEM_IOCTL_MAGIC, 0x01, struct p2pmem_pin)

/**
 * struct p2pmem_tracker_test - build the page tracker of a region of @pages pages
 * @pages: pages of the region, at most 1 << 26 (256 GiB of 4 KiB pages)
 * @bad_frees: then give back a page that is not out this many times, at most 1 << 16: what a
 *	refcounting bug does to the tracker (it complains, and keeps its counts)
 * @bitmap_bytes: out: bytes of the tracker's bitmap
 * @free_pages: out: pages free in it at the end
 *
 * Probe tracks every page of its region in one bitmap, 4 MiB for a region of 128 GiB, more
 * than one kmalloc() can give. This builds the tracker probe would build for a region of
 * @pages pages (no device behind it), takes one page, gives it back, makes the bad frees and
 * frees the tracker. A test interface only: it lets its caller allocate megabytes of kernel
 * memory for a moment, and fill the log with complaints (which are rate-limited).
 */
struct p2pmem_tracker_test {
	__u64 pages;
	__u64 bad_frees;
	__u64 bitmap_bytes;
	__u64 free_pages;
};

#define P2PMEM_IOCTL_TRACKER_TEST _IOWR(P2PMEM_IOCTL_MAGIC, 0x02, struct p2pmem_tracker_test)

#endif /* _P2PMEM_TEST_UAPI_H */

