// SPDX-License-Identifier: GPL-2.0

//! The kernel-independent modules of p2pmem, compiled for the host, exactly as the module
//! compiles them (same files, no copies).

#[path = "../../../src/layout.rs"]
pub mod layout;

#[path = "../../../src/region.rs"]
pub mod region;

#[path = "../../../src/pin_flags.rs"]
pub mod pin_flags;

#[path = "../../../src/pci_ids.rs"]
pub mod pci_ids;
