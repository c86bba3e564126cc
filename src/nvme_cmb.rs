// SPDX-License-Identifier: GPL-2.0

//! The Controller Memory Buffer of an NVMe controller bound through `driver_override`.
//!
//! On NVMe 1.4+ controllers (`CAP.CMBS`) the CMB registers read zero until `CMBMSC.CRE` is set,
//! and the controller only treats addresses in its CMB as CMB accesses once `CMBMSC.CMSE` is
//! set together with the CMB's bus address in `CMBMSC.CBA`. This does what the kernel's nvme
//! driver does in `nvme_map_cmb()`, then reports the CMB so that exactly it is donated.

use crate::layout::{self, CmbRegs, NVME_CAP_CMBS, NVME_CMBMSC_CMSE, NVME_CMBMSC_CRE};
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

/// Whether `pdev` is an NVMe controller (class 01:08:02).
pub(crate) fn is_nvme(pdev: &pci::Device) -> bool {
    pdev.pci_class() == pci::Class::STORAGE_EXPRESS
}

/// Enables the CMB of the NVMe controller `pdev` and returns it as a window of its BAR.
///
/// `bus_offset` is what the P2PDMA provider of the CMB's BAR adds to CPU addresses; the
/// controller is told the CMB's bus address. A controller without a CMB gets
/// [`layout::LayoutError::NoCmb`].
pub(crate) fn enable(
    pdev: &pci::Device<device::Bound>,
    bars: &[layout::BarInfo; layout::NUM_BARS],
    bus_offset: impl FnOnce(u8) -> Result<u64>,
) -> Result<Result<layout::Window, layout::LayoutError>> {
    // The registers are mapped only for the time it takes; BAR 0 is not ours to keep.
    let regs = pdev.iomap_region_sized::<REGS_END>(0, c"p2pmem-nvme-regs")?;
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
    let window = match cmb.window(bars) {
        Ok(window) => window,
        Err(err) => return Ok(Err(err)),
    };
    if cmbs {
        let cba = bars[usize::from(window.bar)].start + window.offset + bus_offset(window.bar)?;
        let msc = cba | NVME_CMBMSC_CMSE | NVME_CMBMSC_CRE;
        regs.write32((msc >> 32) as u32, REG_CMBMSC + 4);
        regs.write32(msc as u32, REG_CMBMSC);
    }
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
    Ok(Ok(window))
}
