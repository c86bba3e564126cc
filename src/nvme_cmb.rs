// SPDX-License-Identifier: GPL-2.0

//! The Controller Memory Buffer of an NVMe controller bound through `driver_override`.
//!
//! On NVMe 1.4+ controllers (`CAP.CMBS`) the CMB registers read zero until `CMBMSC.CRE` is set,
//! and the controller only treats addresses in its CMB as CMB accesses once `CMBMSC.CMSE` is
//! set together with the CMB's bus address in `CMBMSC.CBA`. This does what the kernel's nvme
//! driver does in `nvme_map_cmb()`, then reports the CMB so that exactly it is donated; the
//! returned [`CmbControl`] clears `CMBMSC` again when the binding goes.

use crate::{
    bindings as p2p_bindings,
    layout::{self, CmbRegs, LayoutError, NVME_CAP_CMBS, NVME_CMBMSC_CRE},
    pci_bar::as_raw,
};
use kernel::{device, io::Io, pci, prelude::*};

/// `CAP`: controller capabilities.
const REG_CAP: usize = 0x00;
/// `CMBLOC`: CMB location.
const REG_CMBLOC: usize = 0x38;
/// `CMBSZ`: CMB size.
const REG_CMBSZ: usize = 0x3c;
/// `CMBMSC`: CMB memory space control (64 bits, written high half first).
const REG_CMBMSC: usize = 0x50;
/// The registers this module touches end here.
const REGS_END: usize = 0x60;
/// The name of the register mapping in `/proc/iomem` while it exists.
const REGS_NAME: &CStr = c"p2pmem-nvme-regs";

/// Whether `pdev` is an NVMe controller (class 01:08:02).
pub(crate) fn is_nvme(pdev: &pci::Device) -> bool {
    pdev.pci_class() == pci::Class::STORAGE_EXPRESS
}

/// Writes the 64-bit `CMBMSC` high half first, as `hi_lo_writeq()` does.
fn write_cmbmsc(regs: &pci::Bar<'_, REGS_END>, value: u64) {
    regs.write32((value >> 32) as u32, REG_CMBMSC + 4);
    regs.write32(value as u32, REG_CMBMSC);
}

/// An enabled CMB (`CMBMSC` set by [`enable`]); dropping it clears `CMBMSC`, so the controller
/// goes back to the state the next driver expects.
///
/// Drop it after every claim on BAR 0 is released: the registers are mapped again for it.
pub(crate) struct CmbControl<'bound> {
    pdev: &'bound pci::Device<device::Bound>,
    /// Whether the controller has `CMBMSC` (`CAP.CMBS`) and this wrote it.
    armed: bool,
}

impl Drop for CmbControl<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match self.pdev.iomap_region_sized::<REGS_END>(0, REGS_NAME) {
            Ok(regs) => write_cmbmsc(&regs, 0),
            Err(err) => dev_warn!(
                self.pdev,
                "cannot map the registers to disable the CMB: {:?}\n",
                err
            ),
        }
    }
}

/// Enables the CMB of the NVMe controller `pdev` and returns it as a window of its BAR, with
/// the control that disables it again. A controller without a CMB gets
/// [`LayoutError::NoCmb`]; whatever the outcome, `CMBMSC` is left as it was found unless the
/// window is returned.
pub(crate) fn enable<'bound>(
    pdev: &'bound pci::Device<device::Bound>,
    bars: &[layout::BarInfo; layout::NUM_BARS],
) -> Result<(CmbControl<'bound>, Result<layout::Window, LayoutError>)> {
    // The registers are mapped only for the time it takes; BAR 0 is not ours to keep.
    let regs = pdev.iomap_region_sized::<REGS_END>(0, REGS_NAME)?;
    // 32-bit accesses only: the mapping guarantees no more alignment, and NVMe allows them.
    let cap_hi = u64::from(regs.read32(REG_CAP + 4));
    let cmbs = (cap_hi << 32) & NVME_CAP_CMBS != 0;
    if cmbs {
        regs.write32(NVME_CMBMSC_CRE as u32, REG_CMBMSC);
    }
    let cmb = CmbRegs {
        cmbloc: regs.read32(REG_CMBLOC),
        cmbsz: regs.read32(REG_CMBSZ),
    };
    let window = cmb.window(bars).and_then(|window| {
        if !cmbs {
            return Ok(window);
        }
        // The bus address as the nvme driver computes it: the BAR's PCI bus address (which a
        // host bridge may translate either way) plus the offset, never CPU address + offset.
        // SAFETY: `as_raw(pdev)` is a bound `struct pci_dev`; `window.bar` is a BAR index.
        let bar_bus_start =
            unsafe { p2p_bindings::p2pmem_pci_bus_address(as_raw(pdev), i32::from(window.bar)) };
        let msc = layout::cmbmsc_enable(bar_bus_start, window.offset).ok_or(
            LayoutError::CmbBusAddress {
                bar_bus_start,
                offset: window.offset,
            },
        )?;
        write_cmbmsc(&regs, msc);
        Ok(window)
    });
    if cmbs && window.is_err() {
        write_cmbmsc(&regs, 0);
    }
    drop(regs);
    if let Ok(window) = &window {
        dev_info!(
            pdev,
            "NVMe CMB: BAR {} offset {:#x} size {} MiB (CMBLOC {:#x}, CMBSZ {:#x}{})\n",
            window.bar,
            window.offset,
            window.size >> 20,
            cmb.cmbloc,
            cmb.cmbsz,
            if cmbs { ", CMSE enabled" } else { "" },
        );
    }
    Ok((
        CmbControl {
            pdev,
            armed: cmbs && window.is_ok(),
        },
        window,
    ))
}
