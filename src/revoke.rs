// SPDX-License-Identifier: GPL-2.0

//! Revoke notification for long-term in-kernel users of a device's P2PDMA memory.
//!
//! Other modules register through the C API of `include/p2pmem_revoke.h` (exported by the shim);
//! the registrations of a bound device are a [`RevokeList`]. On unbind, before anything is torn
//! down, [`RevokeList::revoke_all`] calls every user's `revoke()` and waits until each has
//! released its memory, naming the ones it still waits for every few seconds. It never gives up:
//! memory still in use may still be the target of DMA.

use crate::{bindings as p2p_bindings, pci_bar::as_raw};
use core::ptr::NonNull;
use kernel::{device, pci, prelude::*};

/// How long one round of waiting lasts before the stragglers are named again.
const REPORT_EVERY_MS: u32 = 5000;

/// The revoke registrations of one bound device.
///
/// # Invariants
///
/// `ptr` is a list made by `p2pmem_revoke_list_new()`, freed only by `Drop`.
pub(crate) struct RevokeList {
    ptr: NonNull<p2p_bindings::p2pmem_revoke_list>,
}

// SAFETY: the list has its own mutex; every function of the shim can be called from any thread.
unsafe impl Send for RevokeList {}
// SAFETY: see `Send`.
unsafe impl Sync for RevokeList {}

impl RevokeList {
    /// An empty list.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no preconditions.
        let ptr = unsafe { p2p_bindings::p2pmem_revoke_list_new() };
        // INVARIANT: a list from `p2pmem_revoke_list_new()`.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// The list, for the shim's registration functions.
    pub(crate) fn as_ptr(&self) -> *mut p2p_bindings::p2pmem_revoke_list {
        self.ptr.as_ptr()
    }

    /// Calls every registered user's `revoke()`, refuses new registrations, and waits until
    /// every user released. Returns (users, milliseconds waited).
    pub(crate) fn revoke_all(&self, pdev: &pci::Device<device::Bound>) -> (u32, u64) {
        // SAFETY: `ptr` is a live list (type invariants).
        let users = unsafe { p2p_bindings::p2pmem_revoke_list_revoke(self.ptr.as_ptr()) };
        let mut waited = 0u64;
        if users == 0 {
            return (0, 0);
        }
        loop {
            // SAFETY: `ptr` is a live list; `as_raw(pdev)` a bound device, used for logging.
            let left = unsafe {
                p2p_bindings::p2pmem_revoke_list_wait(
                    self.ptr.as_ptr(),
                    as_raw(pdev),
                    REPORT_EVERY_MS,
                )
            };
            if left == 0 {
                break;
            }
            waited += u64::from(REPORT_EVERY_MS);
        }
        (users, waited)
    }
}

impl Drop for RevokeList {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a live list, freed once, here (type invariants).
        unsafe { p2p_bindings::p2pmem_revoke_list_free(self.ptr.as_ptr()) };
    }
}
