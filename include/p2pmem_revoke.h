/* SPDX-License-Identifier: GPL-2.0 */
/*
 * p2pmem in-kernel API: revoke notification for long-term users of the
 * P2PDMA memory of a device that p2pmem drives.
 *
 * A kernel user that keeps P2PDMA memory of such a device (from
 * pci_alloc_p2pmem() or pci_p2pmem_alloc_sgl() on its published pool) for
 * longer than one I/O registers a struct p2pmem_revoke with the device's
 * current binding. When the device is unbound, p2pmem first withdraws the
 * pool, then calls every registered ->revoke(), one at a time, before
 * anything is torn down; the user must then drop every reference to the
 * device's memory and call p2pmem_revoke_release() (or unregister). p2pmem
 * waits for each, naming the users it still waits for in the kernel log
 * every few seconds; it never proceeds while memory may still be in use.
 *
 * Lock order: p2pmem holds none of its locks while it calls ->revoke(). The
 * driver core holds the device lock of the PCI device during unbind, so
 * ->revoke() must not take that lock, nor bind or unbind devices
 * synchronously. p2pmem_revoke_release() may be called from any context,
 * including from ->revoke() itself; p2pmem_unregister_revoke() from any
 * process context except ->revoke().
 */
#ifndef _P2PMEM_REVOKE_H
#define _P2PMEM_REVOKE_H

#include <linux/list.h>
#include <linux/pci.h>

struct p2pmem_revoke_list;

/**
 * struct p2pmem_revoke - a long-term user of a device's P2PDMA memory
 * @name: who this is, for the kernel log
 * @revoke: called at most once, on unbind, in process context with no lock of
 *	p2pmem held (see the lock order above); may sleep; must arrange for
 *	every reference to be dropped and p2pmem_revoke_release() to be called,
 *	now or later
 * @list: private: the binding registered with
 * @node: private
 * @state: private
 * @released: private
 */
struct p2pmem_revoke {
	const char *name;
	void (*revoke)(struct p2pmem_revoke *r);
	struct p2pmem_revoke_list *list;
	struct list_head node;
	int state;
	bool released;
};

int p2pmem_register_revoke(struct pci_dev *pdev, struct p2pmem_revoke *r);
void p2pmem_unregister_revoke(struct p2pmem_revoke *r);
void p2pmem_revoke_release(struct p2pmem_revoke *r);

#endif /* _P2PMEM_REVOKE_H */
