// SPDX-License-Identifier: GPL-2.0

//! Where an unbind's time goes: a monotonic timestamp at the end of each step, from the start
//! of `unbind()` to the end of the device's devres teardown, and one line that reports them.
//!
//! The steps p2pmem runs itself are stamped in `unbind()` and by [`Mark`]s interleaved with the
//! fields of the driver data, which drop in declaration order. The steps the kernel runs after
//! the driver data is gone (the P2PDMA pool's `memunmap_pages()`, `pci_p2pdma_release()`) are
//! bracketed by [`Mark`]s registered as devres at the right points of probe: devres releases in
//! the reverse order of registration. The [`Step::DevresEnd`] mark, registered first, reports.
//!
//! Only a completed unbind reports: a probe that fails releases its marks without a start.

use kernel::{
    device::{self, Device},
    devres,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        Arc,
    },
    time::{Instant, Monotonic},
};

/// The stamped steps, in the order they end.
#[derive(Clone, Copy)]
pub(crate) enum Step {
    /// `unbind()` was called.
    Begin,
    /// The kernel pool was withdrawn from `pci_p2pmem_find_many()` and every registered
    /// long-term user's `revoke()` was called.
    Unpublished,
    /// `/dev/p2pmemN` was deregistered.
    CdevRemoved,
    /// Every registered long-term user released its memory.
    UsersRevoked,
    /// Every byte of the kernel pool came back.
    PoolDrained,
    /// Every user mapping was zapped and every page of the region came back.
    RegionDrained,
    /// The driver core dropped the driver data (after `unbind()` returned).
    DataDropped,
    /// The `p2pmem_region/` attributes were removed.
    SysfsRemoved,
    /// The region's `memunmap_pages()` returned.
    RegionUnmapped,
    /// The BAR claim, CMB control and memory decoding were released.
    ClaimsReleased,
    /// Devres teardown started (the mark registered last).
    DevresBegin,
    /// The kernel pool's mappings were revoked and its `memunmap_pages()` returned.
    PoolUnmapped,
    /// `pci_p2pdma_release()` returned (the mark registered first).
    DevresEnd,
}

const STEPS: usize = Step::DevresEnd as usize + 1;

// Checked at build time: `Step::ALL` lists the steps in stamp order.
const _: () = {
    let mut i = 0;
    while i < STEPS {
        assert!(Step::ALL[i] as usize == i);
        i += 1;
    }
};

impl Step {
    /// Every step, in the order they end (the order of the stamps).
    const ALL: [Step; STEPS] = [
        Self::Begin,
        Self::Unpublished,
        Self::CdevRemoved,
        Self::UsersRevoked,
        Self::PoolDrained,
        Self::RegionDrained,
        Self::DataDropped,
        Self::SysfsRemoved,
        Self::RegionUnmapped,
        Self::ClaimsReleased,
        Self::DevresBegin,
        Self::PoolUnmapped,
        Self::DevresEnd,
    ];

    /// The report's name of the time spent in this step, after the step before it.
    fn name(self) -> &'static str {
        match self {
            Self::Begin => "",
            Self::Unpublished => "unpublish",
            Self::CdevRemoved => "cdev",
            Self::UsersRevoked => "revoke_users",
            Self::PoolDrained => "pool_drain",
            Self::RegionDrained => "zap_drain",
            Self::DataDropped => "driver_core",
            Self::SysfsRemoved => "sysfs",
            Self::RegionUnmapped => "memunmap_region",
            Self::ClaimsReleased => "claims",
            Self::DevresBegin => "devres_start",
            Self::PoolUnmapped => "memunmap_pool",
            Self::DevresEnd => "p2pdma_release",
        }
    }
}

/// The timestamps of one binding's unbind, in nanoseconds after the binding's probe.
pub(crate) struct UnbindClock {
    base: Instant<Monotonic>,
    /// Nanoseconds after `base`; 0 for a step not reached.
    stamps: [Atomic<i64>; STEPS],
}

impl UnbindClock {
    /// A clock for a binding being probed.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                base: Instant::now(),
                stamps: [const { Atomic::new(0) }; STEPS],
            },
            GFP_KERNEL,
        )?)
    }

    /// Records the end of `step`, now.
    pub(crate) fn stamp(&self, step: Step) {
        // At least 1: 0 stands for a step not reached.
        let ns = self.base.elapsed().as_nanos().max(1);
        self.stamps[step as usize].store(ns, Relaxed);
    }

    /// Logs, once the whole teardown is stamped, the microseconds of each step and their sum.
    fn report(&self, dev: &Device) {
        let mut at = [0i64; STEPS];
        for (at, stamp) in at.iter_mut().zip(self.stamps.iter()) {
            *at = stamp.load(Relaxed);
        }
        // A failed probe, or an unbind whose data is dropped without `unbind()`: nothing to say.
        if at.contains(&0) {
            return;
        }
        // One line of `name us` pairs, for scripts/bench-guest.sh.
        dev_info!(
            dev,
            "unbind took {} us:{}\n",
            (at[STEPS - 1] - at[0]) / 1000,
            Breakdown(&at)
        );
    }
}

/// The steps' durations in microseconds, as ` name us` pairs.
struct Breakdown<'a>(&'a [i64; STEPS]);

impl kernel::fmt::Display for Breakdown<'_> {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        for (step, pair) in Step::ALL.iter().skip(1).zip(self.0.windows(2)) {
            if let [from, to] = pair {
                write!(f, " {} {}", step.name(), (to - from) / 1000)?;
            }
        }
        Ok(())
    }
}

/// Stamps its step when dropped; the [`Step::DevresEnd`] mark then reports.
pub(crate) struct Mark {
    clock: Arc<UnbindClock>,
    step: Step,
    dev: ARef<Device>,
}

impl Mark {
    /// A mark of `step` on `clock`, for a field of the driver data.
    pub(crate) fn new(dev: &Device, clock: &Arc<UnbindClock>, step: Step) -> Self {
        Self {
            clock: clock.clone(),
            step,
            dev: dev.into(),
        }
    }

    /// Registers a mark of `step` as devres of `dev`: it drops where devres releases it.
    pub(crate) fn register(
        dev: &Device<device::Bound>,
        clock: &Arc<UnbindClock>,
        step: Step,
    ) -> Result {
        devres::register(dev, Self::new(dev, clock, step), GFP_KERNEL)
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        self.clock.stamp(self.step);
        if matches!(self.step, Step::DevresEnd) {
            self.clock.report(&self.dev);
        }
    }
}
