// SPDX-License-Identifier: GPL-2.0

//! Revoke notification for long-term in-kernel users of a device's P2PDMA memory.
//!
//! Other modules register through the C API of `include/p2pmem_revoke.h` (exported by the shim,
//! which also holds the reference-counted registration list and its locking). Each binding of a
//! device owns one [`RevokeList`]: it takes registrations from [`RevokeList::open`] (the end of
//! probe) until unbind, when [`RevokeList::revoke_all`] stops taking them and calls every user's
//! `revoke()` with no lock held, and [`RevokeList::wait_released`] waits until each has released
//! its memory, naming the ones it still waits for every few seconds. It never gives up: memory
//! still in use may still be the target of DMA. Registrations hold their own reference on the list, so a user may unregister
//! at any time, before or after the binding is gone.

use crate::bindings as p2p_bindings;
use core::ptr::NonNull;
use kernel::{pci, prelude::*};

/// How long one round of waiting lasts before the stragglers are named again.
const REPORT_EVERY_MS: u32 = 5000;

/// The revoke registrations of one binding of a device.
///
/// # Invariants
///
/// `ptr` is a list made by `p2pmem_revoke_list_new()` on which this object owns one reference,
/// dropped only by `Drop`.
pub(crate) struct RevokeList {
    ptr: NonNull<p2p_bindings::p2pmem_revoke_list>,
}

// SAFETY: the list is reference-counted and has its own locks; every function of the shim can be
// called from any thread.
unsafe impl Send for RevokeList {}
// SAFETY: see `Send`.
unsafe impl Sync for RevokeList {}

impl RevokeList {
    /// An empty list for a new binding of `pdev`, not yet taking registrations.
    pub(crate) fn new(pdev: &pci::Device) -> Result<Self> {
        // SAFETY: `as_raw(pdev)` is a valid `struct pci_dev`; the list takes its own reference.
        let ptr = unsafe { p2p_bindings::p2pmem_revoke_list_new(crate::pci_bar::as_raw(pdev)) };
        // INVARIANT: a new list, whose one reference is ours.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Starts taking registrations: the last step of probe.
    pub(crate) fn open(&self) {
        // SAFETY: `ptr` is a live list (type invariants).
        unsafe { p2p_bindings::p2pmem_revoke_list_open(self.ptr.as_ptr()) };
    }

    /// Stops taking registrations. Idempotent.
    pub(crate) fn close(&self) {
        // SAFETY: `ptr` is a live list (type invariants).
        unsafe { p2p_bindings::p2pmem_revoke_list_close(self.ptr.as_ptr()) };
    }

    /// Stops taking registrations and calls every registered user's `revoke()`. Returns the
    /// number of users revoked; [`Self::wait_released`] waits for them.
    pub(crate) fn revoke_all(&self) -> u32 {
        // SAFETY: `ptr` is a live list (type invariants); this runs in process context.
        unsafe { p2p_bindings::p2pmem_revoke_list_revoke(self.ptr.as_ptr()) }
    }

    /// Waits until every user revoked by [`Self::revoke_all`] released or unregistered,
    /// logging the stragglers every `REPORT_EVERY_MS`.
    pub(crate) fn wait_released(&self) {
        // SAFETY: `ptr` is a live list (type invariants); this runs in process context.
        while unsafe { p2p_bindings::p2pmem_revoke_list_wait(self.ptr.as_ptr(), REPORT_EVERY_MS) }
            > 0
        {}
    }
}

impl Drop for RevokeList {
    fn drop(&mut self) {
        self.close();
        // SAFETY: drops the reference this object owns (type invariants), once. Registrations
        // still in place hold their own.
        unsafe { p2p_bindings::p2pmem_revoke_list_put(self.ptr.as_ptr()) };
    }
}
