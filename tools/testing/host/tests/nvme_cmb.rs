// SPDX-License-Identifier: GPL-2.0

//! The CMBMSC value p2pmem writes to enable an NVMe controller's CMB.

use p2pmem_host_tests::layout::{cmbmsc_enable, NVME_CMBMSC_CMSE, NVME_CMBMSC_CRE};

const ENABLE: u64 = NVME_CMBMSC_CMSE | NVME_CMBMSC_CRE;

#[test]
fn bus_address_of_the_bar_plus_offset() {
    assert_eq!(cmbmsc_enable(0xfe00_0000, 0x20_0000), Some(0xfe20_0000 | ENABLE));
}

#[test]
fn host_bridge_with_a_negative_translation() {
    // A host bridge whose window maps CPU 0x8000_0000_0000 to bus 0x1000_0000: the bus address
    // is below the CPU address, so the provider's bus offset (bus - CPU) is "negative", a wrapped
    // u64. Adding it to a CPU address, as p2pmem once did, overflows (a panic with
    // CONFIG_RUST_OVERFLOW_CHECKS); the bus address of the BAR plus the offset does not.
    let cpu: u64 = 0x8000_0000_0000;
    let bus: u64 = 0x1000_0000;
    let bus_offset = bus.wrapping_sub(cpu);
    assert_eq!((cpu + 0x20_0000).checked_add(bus_offset), None);
    assert_eq!(cmbmsc_enable(bus, 0x20_0000), Some(0x1020_0000 | ENABLE));
}

#[test]
fn overflow_and_misalignment_are_refused() {
    assert_eq!(cmbmsc_enable(u64::MAX - 4095, 8192), None);
    assert_eq!(cmbmsc_enable(0xfe00_0000, 0x800), None);
}
