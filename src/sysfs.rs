// SPDX-License-Identifier: GPL-2.0

//! The `p2pmem_region/` attributes on the PCI device: the region's page counters (those of
//! `P2PMEM_IOCTL_INFO`) and the kernel pool's bytes, for scripts and people
//! (`cat /sys/bus/pci/devices/*/p2pmem_region/outstanding_pages`).
//!
//! The attribute group and its show functions are C (`src/shim.c`); they call back into
//! [`p2pmem_region_counters`] with the context registered here.

use crate::{bindings as p2p_bindings, cdev::Shared, pci_bar::as_raw};
use kernel::{device, ffi, pci, prelude::*, sync::Arc};

/// The attribute group, registered while this lives.
///
/// # Invariants
///
/// The group is registered on `pdev` with `shared` (a strong reference, leaked to C) as its
/// context; both are released in `Drop`, the group first.
pub(crate) struct SysfsGroup<'bound> {
    pdev: &'bound pci::Device<device::Bound>,
    shared: *const Shared,
}

// SAFETY: `shared` is an `Arc<Shared>` (`Send + Sync`) in raw form; the device is `Sync`.
unsafe impl Send for SysfsGroup<'_> {}

impl<'bound> SysfsGroup<'bound> {
    /// Adds the group to `pdev`, its attributes reading `shared`.
    pub(crate) fn new(
        pdev: &'bound pci::Device<device::Bound>,
        shared: Arc<Shared>,
    ) -> Result<Self> {
        let shared = Arc::into_raw(shared);
        // SAFETY: `as_raw(pdev)` is a bound `struct pci_dev`; `shared` stays valid until
        // `p2pmem_sysfs_remove()` (in `Drop`, or below on failure) returns.
        let ret = unsafe { p2p_bindings::p2pmem_sysfs_add(as_raw(pdev), shared.cast()) };
        if let Err(err) = kernel::error::to_result(ret) {
            // SAFETY: `shared` came from `Arc::into_raw` above and C did not keep it.
            drop(unsafe { Arc::from_raw(shared) });
            return Err(err);
        }
        // INVARIANT: registered with `shared` as its context.
        Ok(Self { pdev, shared })
    }
}

impl Drop for SysfsGroup<'_> {
    fn drop(&mut self) {
        // SAFETY: the group was added by `new` (type invariants); removal waits for every
        // `show()` in flight, so nothing uses `shared` afterwards.
        unsafe { p2p_bindings::p2pmem_sysfs_remove(as_raw(self.pdev)) };
        // SAFETY: `shared` came from `Arc::into_raw` in `new`, and C let go of it just above.
        drop(unsafe { Arc::from_raw(self.shared) });
    }
}

/// Called by the attributes' show functions in `src/shim.c`.
///
/// # Safety
///
/// `ctx` is the context of a registered [`SysfsGroup`] (so a live `Shared`), `counters` is valid
/// for writes.
#[no_mangle]
unsafe extern "C" fn p2pmem_region_counters(
    ctx: *const ffi::c_void,
    counters: *mut p2p_bindings::p2pmem_counters,
) -> ffi::c_int {
    // SAFETY: by the function's safety requirements `ctx` is a live `Shared`.
    let shared = unsafe { &*ctx.cast::<Shared>() };
    match shared.counters() {
        Ok(value) => {
            // SAFETY: `counters` is valid for writes.
            unsafe { counters.write(value) };
            0
        }
        Err(err) => err.to_errno(),
    }
}
