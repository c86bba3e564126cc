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
