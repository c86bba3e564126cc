// SPDX-License-Identifier: GPL-2.0

//! A safe abstraction over `struct dev_pagemap`: device memory as ZONE_DEVICE pages.
//!
//! C header: [`include/linux/memremap.h`](srctree/include/linux/memremap.h).
//!
//! A [`Pagemap`] is a pinned, owned `struct dev_pagemap` over one physical range, as folios of
//! one order: single pages (order 0), or compound folios (`vmemmap_shift`, e.g. 2 MiB ones
//! that a PMD can map). Initialising it calls `memremap_pages()`, which creates a `struct page`
//! for every pfn; dropping it calls `memunmap_pages()`, which waits until every reference on the
//! pagemap is gone. Folios idle at refcount 0 and belong to the owner ([`PagemapOwner`]), which
//! allocates them by index. [`Pagemap::map_into`] has the owner allocate pages and hands them
//! out into a mapping; [`Pagemap::alloc_folios`] hands folios out as [`FolioRef`]s. A folio
//! comes back to the owner through [`PagemapOwner::page_freed`] when its last reference drops
//! (the `folio_free` callback).
//!
//! No other file of the module touches a `struct dev_pagemap`.

use crate::bindings as p2p_bindings;
use core::{marker::PhantomPinned, ptr::NonNull};
use kernel::{
    bindings,
    error::from_err_ptr,
    mm::virt::{VmaMixedMap, VmaNew},
    page::BorrowedPage,
    prelude::*,
    types::Opaque,
};

/// The kind of ZONE_DEVICE memory (`enum memory_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MemoryType {
    /// `MEMORY_DEVICE_PCI_P2PDMA`: PCI BAR memory for peer-to-peer DMA. The DMA path finds the
    /// provider of a page through the structure that contains its `struct dev_pagemap`.
    PciP2pdma,
}

impl MemoryType {
    fn as_raw(self) -> bindings::memory_type {
        match self {
            Self::PciP2pdma => bindings::memory_type_MEMORY_DEVICE_PCI_P2PDMA,
        }
    }
}

/// The owner of the pages of a [`Pagemap`].
///
/// # Safety
///
/// `Header` is what C code of memory type `TYPE` expects to find right after the
/// `struct dev_pagemap` (`#[repr(C)]`, at offset `sizeof(struct dev_pagemap)`): the kernel reaches
/// it with `container_of()` on the pagemap of a page.
pub(crate) unsafe trait PagemapOwner: Send + Sync {
    /// The C data that follows the `struct dev_pagemap`.
    type Header: Send + Sync;
    /// The memory type of the pages.
    const TYPE: MemoryType;

    /// Allocates `n` folios, all or none, calling `take(index)` for each (folio `index` of the
    /// range: its first page is page `index << order`).
    fn alloc(&self, n: usize, take: &mut dyn FnMut(usize)) -> Result;

    /// Folio `index` of the range came back: its refcount dropped to zero (or an allocated
    /// folio was never handed out). Called from any context (IRQ included), exactly once per
    /// folio allocated; must not sleep.
    fn page_freed(&self, index: usize);
}

/// A physical range registered as ZONE_DEVICE pages.
///
/// # Invariants
///
/// - `raw` is a `struct dev_pagemap` registered with `memremap_pages()` over
///   `[start, start + pages * PAGE_SIZE)` as folios of `1 << order` pages
///   (`vmemmap_shift == order`, `pages` a multiple of that, `first_pfn` aligned to it),
///   unregistered only by `PinnedDrop`; it never moves.
/// - `raw.ref` holds the references `memremap_pages()` takes (one per folio: per pfn for
///   order 0; dropped by `memunmap_pages()`), plus exactly one per folio handed out and not yet freed: taken in
///   `Pagemap::hand_out`, dropped in [`Self::folio_free`] after the owner took the folio back.
///   So `memunmap_pages()` returns only after every handed-out folio came back.
/// - A folio is handed out only at refcount 0 and only while `raw.ref` is live.
#[repr(C)]
#[pin_data(PinnedDrop)]
pub(crate) struct Pagemap<O: PagemapOwner> {
    #[pin]
    raw: Opaque<bindings::dev_pagemap>,
    header: O::Header,
    owner: O,
    first_pfn: usize,
    pages: usize,
    order: u32,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: the C side only reads `raw` after registration (and synchronises its own state); the
// rest is `O` and `O::Header`, which are `Send + Sync`, and plain integers.
unsafe impl<O: PagemapOwner> Send for Pagemap<O> {}
// SAFETY: see `Send`; every method takes `&self` and is safe to call concurrently.
unsafe impl<O: PagemapOwner> Sync for Pagemap<O> {}

/// `PAGE_SIZE` as a `u64`.
const PAGE_SIZE: u64 = kernel::page::PAGE_SIZE as u64;

impl<O: PagemapOwner> Pagemap<O> {
    const OPS: bindings::dev_pagemap_ops = bindings::dev_pagemap_ops {
        folio_free: Some(Self::folio_free),
        migrate_to_ram: None,
        memory_failure: None,
        folio_split: None,
    };

    /// Registers `[start, start + len)` as ZONE_DEVICE pages of `O::TYPE` on NUMA node `nid`
    /// (-1: any), owned by `owner`, in folios of `1 << order` pages: `start` and `len` must be
    /// multiples of the folio size and `len > 0` (else `-EINVAL`); `order` at most
    /// [`MAX_ORDER`].
    pub(crate) fn new(
        start: u64,
        len: u64,
        nid: i32,
        order: u32,
        header: O::Header,
        owner: O,
    ) -> impl PinInit<Self, Error> {
        let folio_size = PAGE_SIZE.checked_shl(order).filter(|_| order <= MAX_ORDER);
        let valid = folio_size.is_some_and(|size| len > 0 && start % size == 0 && len % size == 0);
        let first_pfn = (start / PAGE_SIZE) as usize;
        let pages = (len / PAGE_SIZE) as usize;
        // Inside the initialiser, `order` names the field being initialised.
        let shift = order as usize;
        try_pin_init!(Self {
            header,
            owner,
            first_pfn,
            pages,
            order,
            _pin: PhantomPinned,
            // Last: `memremap_pages()` may call back into the owner once it returns.
            raw <- Opaque::try_ffi_init(move |raw: *mut bindings::dev_pagemap| {
                if !valid {
                    return Err(EINVAL);
                }
                // SAFETY: `raw` is valid for writes of a `struct dev_pagemap`, a C struct of
                // integers, pointers and C structs of those, for which all-zeroes is valid and
                // the documented initial state (`memremap_pages()` initialises the rest).
                unsafe { core::ptr::write_bytes(raw, 0, 1) };
                // SAFETY: `raw` was initialised just above; the shim writes `range` and
                // `nr_range = 1`.
                unsafe { p2p_bindings::p2pmem_pgmap_set_range(raw, start, start + len - 1) };
                // SAFETY: `raw` is initialised, and these fields are the caller's to set.
                unsafe {
                    (*raw).type_ = O::TYPE.as_raw();
                    (*raw).ops = &Self::OPS;
                    (*raw).vmemmap_shift = shift;
                }
                // SAFETY:
                // - `raw` is a zeroed `struct dev_pagemap` with `type`, `ops`, `vmemmap_shift`
                //   (at most `MAX_ORDER`, which `memremap_pages()` checks again) and one range,
                //   as `memremap_pages()` requires; the range is aligned to the folio size and
                //   not RAM (the caller's window of a BAR), which `memremap_pages()` checks;
                // - `raw` is pinned inside `Self` and unregistered in `PinnedDrop` before it is
                //   freed, so the pointer the kernel keeps stays valid;
                // - `header` and `owner`, which `folio_free` reaches, are initialised already.
                from_err_ptr(unsafe { bindings::memremap_pages(raw, nid) })?;
                // INVARIANT: registered, with only `memremap_pages()`'s per-pfn references.
                Ok(())
            }),
        })
    }

    /// The owner of the pages.
    pub(crate) fn owner(&self) -> &O {
        &self.owner
    }

    /// The first pfn of the range and the number of pages.
    pub(crate) fn pfns(&self) -> (usize, usize) {
        (self.first_pfn, self.pages)
    }

    /// The order of the folios: each is `1 << order` pages.
    pub(crate) fn order(&self) -> u32 {
        self.order
    }

    /// Hands out folio `index`: sets its refcount to 1 and takes a pagemap reference.
    /// `-ENODEV` once teardown started, `-EINVAL` for an index past the end or a folio that is
    /// still referenced.
    ///
    /// # Safety
    ///
    /// The owner allocated folio `index` (through [`PagemapOwner::alloc`]) for this call and
    /// has not handed it out since, so nothing else can touch its refcount.
    unsafe fn hand_out(&self, index: usize) -> Result<HandedOutPage<'_, O>> {
        if index >= self.pages >> self.order {
            return Err(EINVAL);
        }
        let raw = self.raw.get();
        let head_pfn = self.first_pfn + (index << self.order);
        // SAFETY: `head_pfn` is a pfn of the registered range (checked above), which has a
        // `struct page` while `self` exists: the head page of folio `index`, which holds the
        // folio's refcount.
        let page = unsafe { p2p_bindings::p2pmem_pfn_to_page(head_pfn) };
        // SAFETY: `page` is a valid `struct page` of this pagemap.
        if unsafe { p2p_bindings::p2pmem_page_count(page) } != 0 {
            return Err(EINVAL);
        }
        // SAFETY: `raw.ref` was initialised by `memremap_pages()` and lives until `PinnedDrop`.
        if !unsafe { p2p_bindings::p2pmem_percpu_ref_tryget_live(&raw mut (*raw).ref_) } {
            return Err(ENODEV);
        }
        // SAFETY: the page is idle (refcount 0, checked above) and the owner allocated it for
        // this call (the function's safety requirements), so nothing else touches its refcount;
        // 1 is the reference `HandedOutPage` owns.
        unsafe { p2p_bindings::p2pmem_set_page_count(page, 1) };
        // INVARIANT: one folio reference and one `raw.ref` reference, owned by the result.
        Ok(HandedOutPage {
            pagemap: self,
            // SAFETY: `pfn_to_page()` of a valid pfn is never NULL.
            page: unsafe { NonNull::new_unchecked(page) },
        })
    }

    /// Allocates `n` folios, all or none, and hands each out to `take` with its index, as a
    /// [`FolioRef`] holding the folio's only reference. On error, the folios `take` got so far
    /// are `take`'s: they come back when it drops them. `-ENOMEM` when fewer are free, `-ENODEV`
    /// once teardown started.
    pub(crate) fn alloc_folios(&self, n: usize, take: &mut dyn FnMut(usize, FolioRef)) -> Result {
        let mut result = Ok(());
        self.owner.alloc(n, &mut |index| {
            if result.is_err() {
                self.owner.page_freed(index);
                return;
            }
            // SAFETY: the owner allocated `index` for this callback, just now.
            match unsafe { self.hand_out(index) } {
                Ok(page) => take(index, page.into_folio_ref()),
                Err(err) => {
                    self.owner.page_freed(index);
                    result = Err(err);
                }
            }
        })?;
        result
    }

    /// Fills `vma`, a shared mapping being set up, with freshly allocated pages, one per page
    /// of its range (order-0 pagemaps only: `-EINVAL` otherwise). On error the pages already
    /// mapped come back when the kernel tears the half-built mapping down; the rest are given
    /// back here.
    pub(crate) fn map_into(&self, vma: &VmaNew) -> Result {
        if self.order != 0 {
            return Err(EINVAL);
        }
        // The pages have a `struct page`: a mixed map that `vm_insert_page()` can fill.
        let mixed = vma.set_mixedmap();
        let page_size = kernel::page::PAGE_SIZE;
        let mut address = vma.start();
        let mut result = Ok(());
        self.owner
            .alloc((vma.end() - vma.start()) / page_size, &mut |index| {
                if result.is_err() {
                    self.owner.page_freed(index);
                    return;
                }
                // SAFETY: the owner allocated `index` for this callback, just now.
                result = match unsafe { self.hand_out(index) } {
                    Ok(page) => page.insert_into(mixed, address),
                    Err(err) => {
                        self.owner.page_freed(index);
                        Err(err)
                    }
                };
                address += page_size;
            })?;
        result
    }

    /// The `folio_free` callback: the last reference on one of our pages dropped.
    ///
    /// # Safety
    ///
    /// Called by `free_zone_device_folio()` for a folio of a `Pagemap<O>`'s range.
    unsafe extern "C" fn folio_free(folio: *mut bindings::folio) {
        // SAFETY: `folio` is a valid folio of ours; the shim reads `folio->pgmap`.
        let pgmap = unsafe { p2p_bindings::p2pmem_folio_pgmap(folio) };
        // SAFETY: `pgmap` is the `raw` field of a `Pagemap<O>` (only ours carry `Self::OPS`),
        // which outlives every page reference (type invariants: `memunmap_pages()` waits for the
        // reference this page holds, which is dropped only at the end of this function).
        let this =
            unsafe { &*kernel::container_of!(Opaque::cast_from(pgmap).cast_mut(), Self, raw) };
        // SAFETY: `folio` is valid.
        let pfn = unsafe { p2p_bindings::p2pmem_folio_pfn(folio) };
        this.owner
            .page_freed(pfn.wrapping_sub(this.first_pfn) >> this.order);
        // SAFETY: drops the `raw.ref` reference that `hand_out()` took for this page (type
        // invariants); `this` is not used afterwards.
        unsafe { p2p_bindings::p2pmem_percpu_ref_put(&raw mut (*this.raw.get()).ref_) };
    }
}

#[pinned_drop]
impl<O: PagemapOwner> PinnedDrop for Pagemap<O> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `raw` was registered by `memremap_pages()` (type invariants) and is
        // unregistered exactly once, here. This blocks until every handed-out page came back.
        unsafe { bindings::memunmap_pages(self.raw.get()) };
    }
}

/// The page offset (`vm_pgoff`) of a mapping being set up.
pub(crate) fn vma_pgoff(vma: &VmaNew) -> usize {
    // SAFETY: `vma` is valid and undergoing setup under the mmap lock, so `vm_pgoff` is stable.
    unsafe { (*vma.as_ptr()).vm_pgoff }
}

/// The most `vmemmap_shift` a [`Pagemap`] takes: 1 GiB folios of 4 KiB pages (the kernel's
/// `MAX_FOLIO_ORDER` is at least that on x86_64, and `memremap_pages()` checks it again).
pub(crate) const MAX_ORDER: u32 = 18;

/// A folio handed out by `Pagemap::hand_out`, not yet given to anyone else.
///
/// Dropping it drops its folio reference, which returns the folio to the owner through
/// `folio_free` like any other last reference would.
///
/// # Invariants
///
/// Owns one reference on the folio whose head is `page`, and one reference on `pagemap`'s
/// `raw.ref`.
pub(crate) struct HandedOutPage<'a, O: PagemapOwner> {
    pagemap: &'a Pagemap<O>,
    page: NonNull<bindings::page>,
}

impl<O: PagemapOwner> HandedOutPage<'_, O> {
    /// The folio reference this holds, as a [`FolioRef`] that is not tied to `pagemap`'s
    /// lifetime: it keeps the pagemap registered instead.
    fn into_folio_ref(self) -> FolioRef {
        let this = core::mem::ManuallyDrop::new(self);
        // INVARIANT: the folio reference moves from `this`, which is not dropped; the `raw.ref`
        // reference the folio holds is dropped by `folio_free` once the folio's last reference
        // goes, so `memunmap_pages()` (in the pagemap's drop) waits for this one too.
        FolioRef { head: this.page }
    }

    /// Maps the page at `address` of `vma` (a shared mapping being set up), handing the page
    /// reference to the mapping: the page comes back when the mapping goes away.
    fn insert_into(self, vma: &VmaMixedMap, address: usize) -> Result {
        // SAFETY: `page` is a valid `struct page` on which `self` holds a reference until it is
        // dropped, after the borrow ends.
        let page = unsafe { BorrowedPage::from_raw(self.page) };
        // `vm_insert_page()` takes its own reference on success.
        vma.vm_insert_page(address, &page)
        // On success and on failure alike, `drop(self)` now drops our reference.
    }
}

impl<O: PagemapOwner> Drop for HandedOutPage<'_, O> {
    fn drop(&mut self) {
        let _ = self.pagemap;
        // SAFETY: drops the page reference this object owns (type invariants). If it was the
        // last, `folio_free` returns the page to the owner and drops the `raw.ref` reference.
        unsafe { p2p_bindings::p2pmem_put_page(self.page.as_ptr()) };
    }
}

/// A reference on a folio of a [`Pagemap`], from [`Pagemap::alloc_folios`] or [`Clone`].
///
/// The pagemap outlives it: while the folio has a reference, its `raw.ref` reference is held
/// (dropped by `folio_free` after the last folio reference), so `memunmap_pages()` in the
/// pagemap's drop waits for it.
///
/// # Invariants
///
/// Owns one reference on the folio whose head page is `head`, a folio of a registered
/// [`Pagemap`] that was handed out.
pub(crate) struct FolioRef {
    head: NonNull<bindings::page>,
}

// SAFETY: a folio reference may be dropped from any thread (and any context: the last one runs
// `folio_free`, which must not sleep).
unsafe impl Send for FolioRef {}
// SAFETY: `&FolioRef` only reads the pointer, fixed for its life.
unsafe impl Sync for FolioRef {}

impl FolioRef {
    /// The folio, for a caller that maps it whole (`vmf_insert_folio_pmd()`).
    pub(crate) fn as_folio_ptr(&self) -> *mut bindings::folio {
        // SAFETY: `head` is the head page of a live folio (type invariants).
        unsafe { p2p_bindings::p2pmem_page_folio(self.head.as_ptr()) }
    }
}

impl Clone for FolioRef {
    fn clone(&self) -> Self {
        // SAFETY: we hold a reference on the folio (type invariants), so taking another cannot
        // race with its last one going.
        unsafe { p2p_bindings::p2pmem_get_page(self.head.as_ptr()) };
        // INVARIANT: owns the reference just taken.
        Self { head: self.head }
    }
}

impl Drop for FolioRef {
    fn drop(&mut self) {
        // SAFETY: drops the folio reference this owns (type invariants). If it was the last,
        // `folio_free` returns the folio to the owner and drops its `raw.ref` reference.
        unsafe { p2p_bindings::p2pmem_put_page(self.head.as_ptr()) };
    }
}
