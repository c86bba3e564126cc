// SPDX-License-Identifier: GPL-2.0

//! Per-page tracking of the Rust-owned region and the unbind gate.
//!
//! Every page handed out is counted until its `folio_free` brings it back ([`Tracker::page_freed`]).
//! Unbind closes the pool, revokes what it can, and waits in [`Tracker::drain`] until the count
//! is zero, saying every few seconds what it still waits for. It never gives up: a page that
//! has not come back may still be the target of DMA, so tearing down would be a use-after-free.

use crate::{
    region::{words_for, PagePool, PoolError, PoolStats},
    waitq::WaitQueue,
};
// The page pool is kernel-independent (host-tested), so its bitmap uses `core`'s atomics.
use core::sync::atomic::AtomicU64;
use kernel::{
    device::Device,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
    time::{Instant, Monotonic},
};

/// How often [`Tracker::drain`] revokes again while it waits; it also re-checks whenever the
/// last page comes back.
const DRAIN_TICK_MS: i64 = 20;
/// How often [`Tracker::drain`] logs the pages it still waits for.
const DRAIN_LOG_EVERY_MS: i64 = 5000;

/// How many refcounting complaints [`Tracker::page_freed`] logs before it goes quiet.
const BAD_FREE_REPORTS: u32 = 10;
/// How many it has logged, over every device.
static BAD_FREES_REPORTED: Atomic<u32> = Atomic::new(0);

/// The most pages [`Tracker::test_build`] builds a tracker for: a region of 256 GiB of 4 KiB
/// pages, whose bitmap (8 MiB) no single `kmalloc()` can give.
pub(crate) const MAX_TEST_PAGES: usize = 1 << 26;

/// The most bad frees [`Tracker::test_build`] makes.
pub(crate) const MAX_TEST_BAD_FREES: usize = 1 << 16;

/// The pages of one region: which are free, and how many are out.
///
/// The region is allocated in units of `unit_pages` pages (one folio: a single page, or a
/// compound folio of 2 MiB); indices are unit indices, every counter is in pages.
pub(crate) struct Tracker {
    pool: PagePool<KVVec<AtomicU64>>,
    unit_pages: u64,
    /// [`Tracker::drain`] sleeps here; woken when the last page comes back after the close.
    drained: WaitQueue,
}

impl Tracker {
    /// A tracker of `units` free units of `unit_pages` pages each. The bitmap is virtually
    /// contiguous: a region of 128 GiB of 4 KiB units needs 4 MiB of it.
    pub(crate) fn new(units: usize, unit_pages: usize) -> Result<Self> {
        let words = words_for(units);
        let mut bits = KVVec::with_capacity(words, GFP_KERNEL)?;
        for _ in 0..words {
            bits.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        if unit_pages == 0 {
            return Err(EINVAL);
        }
        Ok(Self {
            pool: PagePool::new(bits, units).ok_or(EINVAL)?,
            unit_pages: unit_pages as u64,
            drained: WaitQueue::new()?,
        })
    }

    /// The test interface `P2PMEM_IOCTL_TRACKER_TEST`: builds the tracker of a region of `pages`
    /// pages as probe does, takes one page and gives it back, then gives back page 0 (which is
    /// not out) `bad_frees` times, as a refcounting bug would. Returns the bytes of its bitmap
    /// and the pages free at the end; `-EINVAL` for 0 or more than [`MAX_TEST_PAGES`] pages, or
    /// more than [`MAX_TEST_BAD_FREES`] bad frees.
    pub(crate) fn test_build(pages: usize, bad_frees: usize) -> Result<(usize, u64)> {
        if pages == 0 || pages > MAX_TEST_PAGES || bad_frees > MAX_TEST_BAD_FREES {
            return Err(EINVAL);
        }
        let tracker = Self::new(pages, 1)?;
        let mut taken = None;
        tracker.alloc(1, |index| taken = Some(index))?;
        tracker.page_freed(taken.ok_or(EINVAL)?);
        for _ in 0..bad_frees {
            tracker.page_freed(0);
        }
        Ok((
            words_for(pages) * size_of::<AtomicU64>(),
            tracker.stats().free,
        ))
    }

    /// Allocates `n` units, all or none, calling `take` for each. `-ENOMEM` when fewer are free,
    /// `-ENODEV` once the device is going away.
    pub(crate) fn alloc(&self, n: usize, take: impl FnMut(usize)) -> Result {
        self.pool.alloc(n, take).map_err(|err| match err {
            PoolError::Closed => ENODEV,
            _ => ENOMEM,
        })
    }

    /// Unit `index` came back (from `folio_free`, or unused from an allocation). Any context.
    pub(crate) fn page_freed(&self, index: usize) {
        if let Err(err) = self.pool.free(index) {
            // A refcounting bug: loud, but the page stays accounted as it was. This runs in any
            // context, possibly once per page of a huge region: the first few are logged.
            let reported = BAD_FREES_REPORTED.fetch_add(1, Relaxed);
            if reported < BAD_FREE_REPORTS {
                pr_warn!(
                    "page {} freed but not handed out: {:?}\n",
                    (index as u64).saturating_mul(self.unit_pages),
                    err
                );
            } else if reported == BAD_FREE_REPORTS {
                pr_warn!("more pages freed but not handed out; not reporting them\n");
            }
            return;
        }
        // The last page back after the close: unbind need not wait for its next tick.
        if self.pool.is_closed() && self.pool.outstanding() == 0 {
            self.drained.wake_all();
        }
    }

    /// The counters, in pages.
    pub(crate) fn stats(&self) -> PoolStats {
        let units = self.pool.stats();
        let pages = |n: u64| n.saturating_mul(self.unit_pages);
        PoolStats {
            pages: pages(units.pages),
            free: pages(units.free),
            outstanding: pages(units.outstanding),
            handed_out: pages(units.handed_out),
            freed: pages(units.freed),
        }
    }

    /// Pages handed out and not back yet.
    fn outstanding_pages(&self) -> u64 {
        self.pool.outstanding().saturating_mul(self.unit_pages)
    }

    /// The unbind gate: stops hand-outs, then calls `revoke` and waits until every page handed
    /// out has come back, calling `revoke` again every tick (a mapping being set up while the
    /// pool closed becomes visible to it a moment later) and logging the outstanding count
    /// every few seconds. Returns the milliseconds it waited.
    pub(crate) fn drain(&self, dev: &Device, mut revoke: impl FnMut()) -> u64 {
        let at_close = self.pool.close().saturating_mul(self.unit_pages);
        let start = Instant::<Monotonic>::now();
        let mut next_log_ms = DRAIN_LOG_EVERY_MS;
        loop {
            revoke();
            let outstanding = self.outstanding_pages();
            if outstanding == 0 {
                break;
            }
            let waited_ms = start.elapsed().as_millis();
            if waited_ms >= next_log_ms {
                dev_info!(
                    dev,
                    "unbind: waiting for {} of {} pages handed out ({} s)\n",
                    outstanding,
                    at_close,
                    waited_ms / 1000
                );
                next_log_ms += DRAIN_LOG_EVERY_MS;
            }
            self.drained
                .wait_until(DRAIN_TICK_MS as u32, &|| self.pool.outstanding() == 0);
        }
        start.elapsed().as_millis().unsigned_abs()
    }
}
