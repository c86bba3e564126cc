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

#include <linux/pci.h>
#include <linux/pci-p2pdma.h>

/* pci_resource_flags() is a macro. */
unsigned long p2pmem_pci_resource_flags(struct pci_dev *pdev, int bar);

#endif /* _P2PMEM_KERNEL_H */
