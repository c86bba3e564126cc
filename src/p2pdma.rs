// SPDX-License-Identifier: GPL-2.0

//! The kernel's P2PDMA provider of a BAR and its pool (`drivers/pci/p2pdma.c`), and the two
//! private layouts of that file this module depends on.
//!
//! Both private structs are mirrored here and nowhere else, and both are checked: at build time
//! against the source of the kernel the module is built for (`scripts/check-p2pdma-layout.sh`),
//! and at probe against live kernel objects ([`verify_pagemap_layout`], [`KernelPool::add`]).

use crate::{
    bindings as p2p_bindings,
    pci_bar::as_raw,
    pgmap::{MemoryType, Pagemap, PagemapOwner},
    tracker::Tracker,
};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings, device, pci,
    prelude::*,
    time::{delay::fsleep, Delta, Instant, Monotonic},
};

/// What the build found when it compared the private structs with the kernel's source.
mod build_facts {
    include!("p2pdma_layout_generated.rs");
}

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

/// What the P2PDMA core expects right after the `struct dev_pagemap` of a P2PDMA page.
///
/// This mirrors the private `struct pci_p2pdma_pagemap` of `drivers/pci/p2pdma.c` (7.3):
///
/// ```c
/// struct pci_p2pdma_pagemap {
///         struct dev_pagemap pgmap;
///         struct p2pdma_provider *mem;
/// };
/// ```
///
/// The DMA path (`pci_p2pdma_state()`, `__pci_p2pdma_update_state()`) does `container_of()` on
/// `page_pgmap(page)` to reach `mem`: the owner device and bus offset it maps pages with. Our
/// [`Pagemap`] is `#[repr(C)]` with the `struct dev_pagemap` first and this header second, so
/// the two layouts agree. [`verify_pagemap_layout`] checks it on a live page before any page of
/// ours exists.
#[repr(C)]
pub(crate) struct P2pdmaPagemapHeader {
    mem: NonNull<bindings::p2pdma_provider>,
}

// SAFETY: the provider is read-only plain data (see `Provider`).
unsafe impl Send for P2pdmaPagemapHeader {}
// SAFETY: see `Send`.
unsafe impl Sync for P2pdmaPagemapHeader {}

/// The head of the private `struct pci_p2pdma` of `drivers/pci/p2pdma.c` (7.3), which
/// `pdev->p2pdma` points to:
///
/// ```c
/// struct pci_p2pdma {
///         struct gen_pool *pool;
///         ...
/// };
/// ```
///
/// Only `pool` is read, for the pool's counters; [`KernelPool::add`] checks it against the size
/// just added before trusting it.
#[repr(C)]
struct PciP2pdmaHead {
    pool: *const core::ffi::c_void,
}

// SAFETY: `P2pdmaPagemapHeader` is `#[repr(C)]` over one pointer, `struct p2pdma_provider *mem`,
// exactly the member that follows `pgmap` in `struct pci_p2pdma_pagemap` (see above, checked by
// `verify_pagemap_layout` before registration), and it points to the provider of the BAR the
// range belongs to (`p2p_pagemap`).
unsafe impl PagemapOwner for Tracker {
    type Header = P2pdmaPagemapHeader;
    const TYPE: MemoryType = MemoryType::PciP2pdma;

    fn alloc(&self, n: usize, take: &mut dyn FnMut(usize)) -> Result {
        Tracker::alloc(self, n, take)
    }

    fn page_freed(&self, index: usize) {
        Tracker::page_freed(self, index);
    }
}

/// The Rust-owned region of a BAR as P2PDMA pages.
pub(crate) type P2pPagemap = Pagemap<Tracker>;

/// Registers `len` bytes at `offset` in the BAR of `provider` as P2PDMA pages in folios of
/// `1 << order` pages, tracked by a fresh [`Tracker`]. Call [`verify_pagemap_layout`] first.
pub(crate) fn p2p_pagemap<'a>(
    pdev: &'a pci::Device<device::Bound>,
    provider: &'a Provider<'_>,
    bar: u8,
    offset: u64,
    len: u64,
    order: u32,
) -> Result<impl PinInit<P2pPagemap, Error> + 'a> {
    let start = pdev
        .resource_start(u32::from(bar))?
        .checked_add(offset)
        .ok_or(EINVAL)?;
    let pages = usize::try_from(len / kernel::page::PAGE_SIZE as u64)?;
    let folio_pages = 1usize.checked_shl(order).ok_or(EINVAL)?;
    let header = P2pdmaPagemapHeader { mem: provider.ptr };
    Ok(Pagemap::new(
        start,
        len,
        // SAFETY: `as_raw(pdev)` is a valid `struct pci_dev`.
        unsafe { p2p_bindings::p2pmem_pci_node(as_raw(pdev)) },
        order,
        header,
        Tracker::new(pages / folio_pages, folio_pages)?,
    ))
}

/// Checks that the kernel finds a P2PDMA page's provider where [`P2pdmaPagemapHeader`] puts it.
///
/// With a kernel pool (`pool`), on a live page of it: the word after its `struct dev_pagemap`
/// must be `provider`, the provider the kernel itself registered the pool with. Without one,
/// only the build's comparison with the kernel's source can vouch for the layout; a module
/// built without the source refuses (`-EINVAL`, with a log line saying what to do).
pub(crate) fn verify_pagemap_layout(
    pdev: &pci::Device<device::Bound>,
    provider: &Provider<'_>,
    pool: Option<&KernelPool<'_>>,
) -> Result {
    if pool.is_none() {
        if build_facts::PAGEMAP_LAYOUT_CHECKED_IN_SOURCE {
            return Ok(());
        }
        dev_err!(
            pdev,
            "cannot check struct pci_p2pdma_pagemap: no kernel pool page (pool_size=0) and the \
             module was built without the kernel source; refusing to register P2PDMA pages\n"
        );
        return Err(EINVAL);
    }
    let page_size = kernel::page::PAGE_SIZE;
    // SAFETY: `as_raw(pdev)` is a bound device with a pool (`pool` exists).
    let addr = unsafe { bindings::pci_alloc_p2pmem(as_raw(pdev), page_size) };
    if addr.is_null() {
        dev_err!(
            pdev,
            "cannot check struct pci_p2pdma_pagemap: kernel pool empty\n"
        );
        return Err(ENOMEM);
    }
    // SAFETY: `addr` is the kernel address of a page of the pool, which has a `struct page`.
    let page = unsafe { p2p_bindings::p2pmem_virt_to_page(addr) };
    // SAFETY: `page` is a ZONE_DEVICE page of the pool's pagemap, allocated to us.
    let pgmap = unsafe { p2p_bindings::p2pmem_page_pgmap(page) };
    // SAFETY: `pgmap` is the first member of the kernel's `struct pci_p2pdma_pagemap` (that much
    // is public: `to_p2p_pgmap()` is a `container_of()`), which is at least a `dev_pagemap` and
    // a pointer long by the definition this function checks; reading the pointer-sized word that
    // follows the `dev_pagemap` stays inside that allocation if the definition holds, and inside
    // the same slab object of at least that size if a member was appended. It is read, never
    // dereferenced.
    let found = unsafe {
        pgmap
            .cast::<u8>()
            .add(size_of::<bindings::dev_pagemap>())
            .cast::<*const bindings::p2pdma_provider>()
            .read()
    };
    // SAFETY: `addr` was allocated above from this device's pool with this size.
    unsafe { bindings::pci_free_p2pmem(as_raw(pdev), addr, page_size) };
    if found != provider.ptr.as_ptr().cast_const() {
        dev_err!(
            pdev,
            "struct pci_p2pdma_pagemap is not {{ struct dev_pagemap; struct p2pdma_provider * }} \
             in this kernel; refusing to register P2PDMA pages (DMA would use a wrong provider)\n"
        );
        return Err(EINVAL);
    }
    Ok(())
}

/// Reads the counters of a [`KernelPool`] without borrowing it.
///
/// # Invariants
///
/// `pool` is the `gen_pool` of a binding's kernel pool, holding exactly `size` bytes; it is
/// valid until that binding's devres is released.
#[derive(Clone, Copy)]
pub(crate) struct PoolCounters {
    pool: NonNull<core::ffi::c_void>,
    size: u64,
}

impl PoolCounters {
    /// The pool's size and its free bytes.
    ///
    /// # Safety
    ///
    /// The binding whose [`KernelPool`] made this handle has not ended.
    pub(crate) unsafe fn read(&self) -> (u64, u64) {
        // SAFETY: `pool` is live (the function's safety requirements and the type invariants);
        // `gen_pool_avail()` only walks its chunks under RCU.
        let free = unsafe { p2p_bindings::p2pmem_gen_pool_avail(self.pool.as_ptr()) };
        (self.size, free as u64)
    }
}

/// How often [`KernelPool::drain`] re-checks and how often it logs.
const POOL_DRAIN_TICK_MS: i64 = 1;
const POOL_DRAIN_LOG_EVERY_MS: i64 = 5000;

/// The slice of a BAR given to the kernel's P2PDMA pool (`pci_p2pdma_add_resource()`), which
/// in-kernel users reach through `pci_p2pmem_find_many()` once published.
///
/// # Invariants
///
/// `pool` is the `struct gen_pool` of `pdev->p2pdma`, which lives until the driver's devres is
/// released (after `'bound`), and holds exactly the `size` bytes this added.
pub(crate) struct KernelPool<'bound> {
    pdev: &'bound pci::Device<device::Bound>,
    pool: NonNull<core::ffi::c_void>,
    size: u64,
}

// SAFETY: `gen_pool` is internally synchronised; the device reference is `Sync`.
unsafe impl Send for KernelPool<'_> {}
// SAFETY: see `Send`.
unsafe impl Sync for KernelPool<'_> {}

impl<'bound> KernelPool<'bound> {
    /// Gives `size` bytes at `offset` of `bar` to the kernel's P2PDMA pool of `pdev`, not yet
    /// published. The kernel releases the pool after the driver data is dropped (devres).
    pub(crate) fn add(
        pdev: &'bound pci::Device<device::Core<'_>>,
        bar: u8,
        size: u64,
        offset: u64,
    ) -> Result<Self> {
        // SAFETY: `as_raw(pdev)` is a valid `struct pci_dev` whose device lock is held (`Core`);
        // `bar`, `size` and `offset` describe a 2 MiB-aligned window inside the BAR (the caller's
        // validated `layout::Split`), which `pci_p2pdma_add_resource()` checks again.
        kernel::error::to_result(unsafe {
            bindings::pci_p2pdma_add_resource(
                as_raw(pdev),
                i32::from(bar),
                usize::try_from(size)?,
                offset,
            )
        })?;
        // SAFETY: `as_raw(pdev)` is valid; `pdev->p2pdma` is set (the call above succeeded).
        let state = unsafe { p2p_bindings::p2pmem_pci_p2pdma(as_raw(pdev)) };
        let state = NonNull::new(state.cast::<PciP2pdmaHead>().cast_mut()).ok_or(EINVAL)?;
        // SAFETY: `state` points to the kernel's `struct pci_p2pdma`, whose first member is a
        // pointer (`PciP2pdmaHead`; checked against the source at build time, and its value is
        // checked below before anything else uses it).
        let pool = unsafe { state.as_ref().pool };
        let pool = NonNull::new(pool.cast_mut()).ok_or(EINVAL)?;
        // SAFETY: `pool` is the `gen_pool` that `pci_p2pdma_add_resource()` just grew.
        let pool_size = unsafe { p2p_bindings::p2pmem_gen_pool_size(pool.as_ptr()) };
        if pool_size as u64 != size {
            dev_err!(
                pdev,
                "struct pci_p2pdma does not start with its gen_pool in this kernel ({} bytes \
                 where {} were added)\n",
                pool_size,
                size
            );
            return Err(EINVAL);
        }
        // INVARIANT: `pool` is `pdev->p2pdma->pool`, holding exactly `size` bytes.
        Ok(Self { pdev, pool, size })
    }

    /// The pool's size and its free bytes.
    pub(crate) fn counters(&self) -> (u64, u64) {
        // SAFETY: the binding that made `self` lasts at least as long as `self` (`'bound`).
        unsafe { self.counter_handle().read() }
    }

    /// A handle that reads the same counters, for state that may outlive the binding.
    pub(crate) fn counter_handle(&self) -> PoolCounters {
        // INVARIANT: `pool` holds exactly `size` bytes (type invariants of `KernelPool`).
        PoolCounters {
            pool: self.pool,
            size: self.size,
        }
    }

    /// Waits until every byte of the pool is free again, logging what is still out every few
    /// seconds. Called on unbind after the pool was withdrawn and its users were revoked; the
    /// kernel's own teardown would wait for the same memory, silently. Returns the milliseconds
    /// it waited.
    pub(crate) fn drain(&self) -> u64 {
        let start = Instant::<Monotonic>::now();
        let mut next_log_ms = POOL_DRAIN_LOG_EVERY_MS;
        loop {
            let (size, free) = self.counters();
            let waited_ms = start.elapsed().as_millis();
            if free >= size {
                return waited_ms.unsigned_abs();
            }
            if waited_ms >= next_log_ms {
                dev_info!(
                    self.pdev,
                    "unbind: waiting for {} KiB of the kernel P2PDMA pool ({} s)\n",
                    (size - free) >> 10,
                    waited_ms / 1000
                );
                next_log_ms += POOL_DRAIN_LOG_EVERY_MS;
            }
            // `gen_pool_free()` tells nobody: poll, finely enough that the unbind returns
            // within about a millisecond of the last free.
            fsleep(Delta::from_millis(POOL_DRAIN_TICK_MS));
        }
    }
}

/// Publishes the kernel pool of `pdev` for `pci_p2pmem_find_many()` (nvmet, ...), or withdraws
/// it. Does nothing for a device without a pool.
pub(crate) fn set_published(pdev: &pci::Device<device::Bound>, publish: bool) {
    // SAFETY: `as_raw(pdev)` is a valid, bound `struct pci_dev`; `pci_p2pmem_publish()` only
    // flips a flag in `pdev->p2pdma` when the device has a pool.
    unsafe { bindings::pci_p2pmem_publish(as_raw(pdev), publish) };
}
