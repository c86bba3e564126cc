// SPDX-License-Identifier: GPL-2.0

//! What p2pmem needs of a PCI device's BARs beyond `kernel::pci`: their flags, and a claim on
//! the BAR it donates.

use crate::{bindings as p2p_bindings, layout};
use kernel::{bindings, device, pci, prelude::*, str::CStr};

/// The `struct pci_dev` behind a [`pci::Device`].
///
/// `pci::Device::as_raw()` is private to the kernel crate; the layout it relies on is not:
/// `pci::Device<Ctx>` is `#[repr(transparent)]` over `Opaque<bindings::pci_dev>` (its other field
/// is a `PhantomData`), and `Opaque<T>` is `#[repr(transparent)]` over `T`'s storage. A pointer to
/// the one is therefore a pointer to the other. This is the only place that relies on it.
pub(crate) fn as_raw<Ctx: device::DeviceContext>(
    pdev: &pci::Device<Ctx>,
) -> *mut bindings::pci_dev {
    core::ptr::from_ref(pdev).cast_mut().cast()
}

/// Reads what the PCI core recorded about the six standard BARs of `pdev`.
pub(crate) fn bar_infos(pdev: &pci::Device) -> [layout::BarInfo; layout::NUM_BARS] {
    let mut infos = [layout::BarInfo::default(); layout::NUM_BARS];
    for (bar, info) in (0u32..).zip(infos.iter_mut()) {
        // SAFETY: `as_raw(pdev)` is a valid `struct pci_dev` for the lifetime of `pdev`, and
        // `bar` is below `PCI_STD_NUM_BARS`, so `pci_resource_n(pdev, bar)` is in bounds.
        let flags = unsafe { p2p_bindings::p2pmem_pci_resource_flags(as_raw(pdev), bar as i32) };
        *info = layout::BarInfo {
            start: pdev.resource_start(bar).unwrap_or(0),
            len: pdev.resource_len(bar).unwrap_or(0),
            mem: flags & bindings::IORESOURCE_MEM as usize != 0,
            prefetch: flags & bindings::IORESOURCE_PREFETCH as usize != 0,
        };
    }
    infos
}

/// A claim on one BAR of a bound device (`pci_request_region()`), so that no other driver maps
/// the memory p2pmem donates. Released on drop.
///
/// # Invariants
///
/// `pdev` is bound to p2pmem for `'bound`, and `bar` of it was requested by this object.
pub(crate) struct BarClaim<'bound> {
    pdev: &'bound pci::Device<device::Bound>,
    bar: u8,
}

impl<'bound> BarClaim<'bound> {
    /// Requests `bar` of `pdev` under `name`; `-EBUSY` if another driver holds it.
    pub(crate) fn new(
        pdev: &'bound pci::Device<device::Bound>,
        bar: u8,
        name: &'static CStr,
    ) -> Result<Self> {
        // SAFETY:
        // - `as_raw(pdev)` is a valid, bound `struct pci_dev`;
        // - `name` is a NUL-terminated string that outlives the claim (it is `'static`), as
        //   `pci_request_region()` keeps the pointer in the resource tree.
        kernel::error::to_result(unsafe {
            bindings::pci_request_region(as_raw(pdev), i32::from(bar), name.as_char_ptr())
        })?;
        // INVARIANT: the region was requested just above, and `pdev` is bound for `'bound`.
        Ok(Self { pdev, bar })
    }
}

impl Drop for BarClaim<'_> {
    fn drop(&mut self) {
        // SAFETY: by the type invariants, `self.bar` of `self.pdev` was requested by us and is
        // released exactly once, here, while the device is still bound.
        unsafe { bindings::pci_release_region(as_raw(self.pdev), i32::from(self.bar)) };
    }
}

/// Memory decoding of a bound device, enabled for the binding (`pci_enable_device_mem()`) and
/// disabled again on drop. p2pmem's device is a DMA target only: bus mastering stays off.
///
/// # Invariants
///
/// `pdev` is bound for `'bound`, and this object made one `pci_enable_device_mem()` call on it
/// that no one has undone.
pub(crate) struct MemEnabled<'bound> {
    pdev: &'bound pci::Device<device::Bound>,
}

impl<'bound> MemEnabled<'bound> {
    /// Enables memory decoding of `pdev`.
    pub(crate) fn new(pdev: &'bound pci::Device<device::Core<'_>>) -> Result<Self> {
        pdev.enable_device_mem()?;
        // INVARIANT: enabled just above; `pdev` is bound for `'bound`.
        Ok(Self { pdev })
    }
}

impl Drop for MemEnabled<'_> {
    fn drop(&mut self) {
        // SAFETY: balances the `pci_enable_device_mem()` of `new` (type invariants), once.
        unsafe { bindings::pci_disable_device(as_raw(self.pdev)) };
    }
}
