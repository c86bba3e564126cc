// SPDX-License-Identifier: GPL-2.0

//! The kernel's P2PDMA provider of a BAR (`drivers/pci/p2pdma.c`).

use crate::{
    bindings as p2p_bindings,
    pci_bar::as_raw,
    pgmap::{MemoryType, Pagemap, PagemapOwner},
    tracker::Tracker,
};
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
/// the two layouts agree. This is the module's only dependency on a private kernel struct; the
/// O_DIRECT selftests exercise it on every run.
#[repr(C)]
pub(crate) struct P2pdmaPagemapHeader {
    mem: NonNull<bindings::p2pdma_provider>,
}

// SAFETY: the provider is read-only plain data (see `Provider`).
unsafe impl Send for P2pdmaPagemapHeader {}
// SAFETY: see `Send`.
unsafe impl Sync for P2pdmaPagemapHeader {}

// SAFETY: `P2pdmaPagemapHeader` is `#[repr(C)]` over one pointer, `struct p2pdma_provider *mem`,
// exactly the member that follows `pgmap` in `struct pci_p2pdma_pagemap` (see above), and it
// points to the provider of the BAR the range belongs to (`P2pPagemap::new`).
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

/// Registers `len` bytes at `offset` in the BAR of `provider` as P2PDMA pages, tracked by a
/// fresh [`Tracker`].
pub(crate) fn p2p_pagemap<'a>(
    pdev: &'a pci::Device<device::Bound>,
    provider: &'a Provider<'_>,
    bar: u8,
    offset: u64,
    len: u64,
) -> Result<impl PinInit<P2pPagemap, Error> + 'a> {
    let start = pdev.resource_start(u32::from(bar))? + offset;
    let pages = usize::try_from(len / kernel::page::PAGE_SIZE as u64)?;
    let header = P2pdmaPagemapHeader { mem: provider.ptr };
    Ok(Pagemap::new(
        start,
        len,
        // SAFETY: `as_raw(pdev)` is a valid `struct pci_dev`.
        unsafe { p2p_bindings::p2pmem_pci_node(as_raw(pdev)) },
        header,
        Tracker::new(pages)?,
    ))
}

/// Gives `size` bytes at `offset` of `bar` to the kernel's P2PDMA pool of `pdev` and publishes
/// it, so in-kernel users (`pci_p2pmem_find_many()`, nvmet) and sysfs `p2pmem/` see it.
///
/// The pool is device-managed: the kernel releases it after the driver data is dropped.
pub(crate) fn add_kernel_pool(
    pdev: &pci::Device<device::Core<'_>>,
    bar: u8,
    size: u64,
    offset: u64,
) -> Result {
    // SAFETY: `as_raw(pdev)` is a valid `struct pci_dev` whose device lock is held (`Core`);
    // `bar`, `size` and `offset` describe a 2 MiB-aligned window inside the BAR (the caller's
    // validated `layout::Split`), which `pci_p2pdma_add_resource()` checks again.
    kernel::error::to_result(unsafe {
        bindings::pci_p2pdma_add_resource(as_raw(pdev), i32::from(bar), size as usize, offset)
    })?;
    set_published(pdev, true);
    Ok(())
}

/// Publishes (or withdraws) the kernel pool of `pdev` for `pci_p2pmem_find_many()`.
pub(crate) fn set_published(pdev: &pci::Device<device::Bound>, publish: bool) {
    // SAFETY: `as_raw(pdev)` is a valid, bound `struct pci_dev`; `pci_p2pmem_publish()` only
    // flips a flag in `pdev->p2pdma` when the device has a pool.
    unsafe { bindings::pci_p2pmem_publish(as_raw(pdev), publish) };
}
