// SPDX-License-Identifier: GPL-2.0

//! A wait queue for a condition kept in atomics: a waiter sleeps (uninterruptibly, for a bounded
//! time) until the condition holds, and whoever makes it hold wakes it, from any context.
//!
//! The kernel crate's `CondVar` pairs a wait queue with a lock and sleeps interruptibly with a
//! timeout; the unbind gate has no lock to pair (pages come back from interrupt context) and
//! must not return early on a signal. This is `wait_event_timeout()` (in `src/shim.c`) instead.

use crate::bindings as p2p_bindings;
use core::ptr::NonNull;
use kernel::{ffi, prelude::*};

/// A wait queue.
///
/// # Invariants
///
/// `ptr` is a `struct wait_queue_head` from `p2pmem_waitq_new()`, freed only in `Drop`.
pub(crate) struct WaitQueue {
    ptr: NonNull<kernel::bindings::wait_queue_head>,
}

// SAFETY: a wait queue head is internally synchronised; waking and waiting work from any
// thread (waking from any context).
unsafe impl Send for WaitQueue {}
// SAFETY: as above.
unsafe impl Sync for WaitQueue {}

impl WaitQueue {
    /// An empty wait queue.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no preconditions.
        let ptr = unsafe { p2p_bindings::p2pmem_waitq_new() };
        // INVARIANT: from `p2pmem_waitq_new()`.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Wakes every waiter, which then checks its condition again. Any context.
    pub(crate) fn wake_all(&self) {
        // SAFETY: `ptr` is a live wait queue head (type invariants).
        unsafe { p2p_bindings::p2pmem_waitq_wake(self.ptr.as_ptr()) };
    }

    /// Sleeps until `done()` holds, or for at most `ms` milliseconds; returns whether `done()`
    /// held. `done` is called with the task state set, so it must not sleep.
    pub(crate) fn wait_until<F: Fn() -> bool>(&self, ms: u32, done: &F) -> bool {
        /// Calls the closure behind `ctx`.
        ///
        /// # Safety
        ///
        /// `ctx` points to an `F` that is live for the call.
        unsafe extern "C" fn call<F: Fn() -> bool>(ctx: *const ffi::c_void) -> bool {
            // SAFETY: the caller's contract: `ctx` points to a live `F`.
            unsafe { (*ctx.cast::<F>())() }
        }
        let ctx: *const F = done;
        // SAFETY: `ptr` is a live wait queue head (type invariants); `call::<F>` is only called
        // with `ctx`, which points to `done`, borrowed for the whole call.
        unsafe {
            p2p_bindings::p2pmem_waitq_wait(self.ptr.as_ptr(), Some(call::<F>), ctx.cast(), ms)
        }
    }
}

impl Drop for WaitQueue {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `p2pmem_waitq_new()` and is freed once (type invariants); no
        // one waits on it: waiters borrow `self`.
        unsafe { p2p_bindings::p2pmem_waitq_free(self.ptr.as_ptr()) };
    }
}
