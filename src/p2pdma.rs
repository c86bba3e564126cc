// SPDX-License-Identifier: GPL-2.0

//! The kernel's P2PDMA provider of a BAR (`drivers/pci/p2pdma.c`).

use crate::{bindings as p2p_bindings, pci_bar::as_raw};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{bindings, device, pci, prelude::*};

/// The P2PDMA provider of one BAR: the owner device and the offset from CPU physical to PCI
/// bus addresses that the DMA path uses when a peer maps pages of this BAR.
///
/// # Invariants
///
/// `ptr` is the `struct p2pdma_provider` of one memory BAR of a device that stays bound for
/// `'bound`; it lives in `pdev->p2pdma`, which `pcim_p2pdma_init()` allocated with devres, so it
/// is valid until the driver's devres is released, after `'bound` ends.
pub(crate) struct Provider<'bound> {
    ptr: NonNull<bindings::p2pdma_provider>,
    _device: PhantomData<&'bound pci::Device<device::Bound>>,
}

// SAFETY: the provider is plain data that the P2PDMA core writes once in `pcim_p2pdma_init()`
// and only reads afterwards; reading it from any thread is fine.
unsafe impl Send for Provider<'_> {}
// SAFETY: see `Send`; `Provider` offers no mutation.
unsafe impl Sync for Provider<'_> {}

impl<'bound> Provider<'bound> {
    /// Sets up P2PDMA for `pdev` (`pcim_p2pdma_init()`, idempotent) and returns the provider of
    /// `bar`, or `-EINVAL` when `bar` is not a memory BAR.
    ///
    /// Takes the `Core` context: `pcim_p2pdma_init()` publishes `pdev->p2pdma` and must run
    /// under the device lock, which probe holds.
    pub(crate) fn new(pdev: &'bound pci::Device<device::Core<'_>>, bar: u8) -> Result<Self> {
        // SAFETY: `as_raw(pdev)` is a valid `struct pci_dev` whose device lock is held (`Core`).
        kernel::error::to_result(unsafe { p2p_bindings::pcim_p2pdma_init(as_raw(pdev)) })?;
        // SAFETY: `pcim_p2pdma_init()` succeeded just above, as `pcim_p2pdma_provider()` requires
        // (it WARNs otherwise); the device lock is still held.
        let ptr = unsafe { p2p_bindings::pcim_p2pdma_provider(as_raw(pdev), i32::from(bar)) };
        // INVARIANT: a non-NULL result points into `pdev->p2pdma`, which lives until devres
        // release, after the driver data that holds this `Provider` is dropped.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(EINVAL)?,
            _device: PhantomData,
        })
    }

    /// The offset to add to a CPU physical address of the BAR to get its PCI bus address.
    pub(crate) fn bus_offset(&self) -> u64 {
        // SAFETY: by the type invariants `ptr` is valid, and `bus_offset` is not written after
        // `pcim_p2pdma_init()`.
        unsafe { (*self.ptr.as_ptr()).bus_offset }
    }
}
