/* SPDX-License-Identifier: GPL-2.0 */
/*
 * p2pmem in-kernel API: revoke notification for long-term users of the
 * P2PDMA memory of a device that p2pmem drives.
 *
 * A kernel user that keeps P2PDMA memory of such a device (from
 * pci_alloc_p2pmem() or pci_p2pmem_alloc_sgl() on its published pool) for
 * longer than one I/O registers a struct p2pmem_revoke. When the device is
 * unbound, p2pmem calls every registered ->revoke() first, synchronously and
 * before anything else is torn down; the user must then drop every reference
 * to the device's memory and call p2pmem_revoke_release(). p2pmem waits for
 * each release, naming the users it still waits for in the kernel log every
 * few seconds; it never proceeds while memory may still be in use.
 */
#ifndef _P2PMEM_REVOKE_H
#define _P2PMEM_REVOKE_H

#include <linux/completion.h>
#include <linux/list.h>
#include <linux/pci.h>

/**
 * struct p2pmem_revoke - a long-term user of a device's P2PDMA memory
 * @name: who this is, for the kernel log
 * @revoke: called once on unbind, in process context, with the device lock
 *	held (so it must not bind or unbind devices); must arrange for every
 *	reference to be dropped and p2pmem_revoke_release() to be called
 * @pdev: private: the device registered with
 * @released: private
 * @node: private
 */
struct p2pmem_revoke {
	const char *name;
	void (*revoke)(struct p2pmem_revoke *r);
	struct pci_dev *pdev;
	struct completion released;
	struct list_head node;
};

int p2pmem_register_revoke(struct pci_dev *pdev, struct p2pmem_revoke *r);
void p2pmem_unregister_revoke(struct p2pmem_revoke *r);
void p2pmem_revoke_release(struct p2pmem_revoke *r);

#endif /* _P2PMEM_REVOKE_H */
