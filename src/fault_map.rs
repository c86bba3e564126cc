// SPDX-License-Identifier: GPL-2.0

//! Mappings of compound P2PDMA folios, populated at fault time: one PMD per 2 MiB folio.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/huge_mm.h`](srctree/include/linux/huge_mm.h).
//!
//! An `mmap` of a huge-page region allocates the mapping's folios up front ([`map_folios`]) and
//! maps nothing; the huge fault handler inserts one PMD per folio. The folios belong to the
//! mapping, not to its page table entries: every piece of it (after a split, a `fork()`, an
//! `mremap()`) shares one [`FaultMapping`], and the folios go back when the last piece is
//! unmapped, or when the device revokes them ([`FolioHolds::revoke`]); an I/O that pinned a
//! folio keeps it until it ends. Because the mapping keeps its folios, `MADV_DONTNEED` or a
//! split of a PMD only drop page table entries: the next access faults the same folio back in.
//!
//! Folios are only ever mapped whole, by PMDs, never by PTEs: with `vmemmap_shift` the kernel
//! maps the `struct page`s of most tail pages of a folio onto one shared, read-only memmap page
//! (`vmemmap_can_optimize()`, which is what makes the memmap small), so per-page state that PTE mappings keep (the per-page
//! mapcount) cannot be kept for them; device DAX makes the same choice. So a mapping must be a
//! multiple of 2 MiB long and start on a 2 MiB boundary (the kernel places it so), it can only
//! be split on a 2 MiB boundary, and it can only move to one. The VMA is a plain shared file
//! mapping (neither `VM_PFNMAP` nor `VM_MIXEDMAP`): for those "special" VMAs the mm drops a
//! huge PMD without its folio reference.
//!
//! The references that keep the folios are held by the device's [`FolioHolds`], by folio
//! index, so that unbind can drop them all at once; a mapping only records which indices are
//! its own.

use crate::{
    bindings as p2p_bindings,
    pgmap::{FolioRef, Pagemap, PagemapOwner},
};
use kernel::{
    bindings, ffi,
    mm::virt::VmaNew,
    new_spinlock,
    prelude::*,
    sync::{Arc, SpinLock, UniqueArc},
};

/// The folios the mappings of one device keep, by folio index of the region.
///
/// # Invariants
///
/// A slot holds a folio only while exactly one live [`FaultMapping`] lists its index, and only
/// until [`FolioHolds::revoke`]; after that no slot ever holds one again.
#[pin_data]
pub(crate) struct FolioHolds {
    #[pin]
    inner: SpinLock<Holds>,
}

struct Holds {
    revoked: bool,
    slots: KVVec<Option<FolioRef>>,
}

impl FolioHolds {
    /// Holds for a region of `folios` folios, none held.
    pub(crate) fn new(folios: usize) -> Result<Arc<Self>> {
        let mut slots = KVVec::with_capacity(folios, GFP_KERNEL)?;
        for _ in 0..folios {
            slots.push(None, GFP_KERNEL)?;
        }
        Arc::pin_init(
            pin_init!(Self {
                inner <- new_spinlock!(Holds {
                    revoked: false,
                    slots,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// Keeps `folio` as folio `index` of the region: `-ENODEV` after [`Self::revoke`], `-EINVAL`
    /// for an index past the end or already held (then `folio` is dropped, and comes back).
    fn hold(&self, index: usize, folio: FolioRef) -> Result {
        let mut refused = Some(folio);
        let result = {
            let mut holds = self.inner.lock();
            if holds.revoked {
                Err(ENODEV)
            } else {
                match holds.slots.get_mut(index) {
                    Some(slot @ None) => {
                        *slot = refused.take();
                        Ok(())
                    }
                    _ => Err(EINVAL),
                }
            }
        };
        // Dropped, if refused, outside the lock.
        drop(refused);
        result
    }

    /// Another reference on folio `index`, for a fault to map; `None` once it is not held.
    fn get(&self, index: usize) -> Option<FolioRef> {
        self.inner.lock().slots.get(index)?.clone()
    }

    /// Gives folio `index` up: it comes back once nothing else references it.
    fn release(&self, index: usize) {
        let folio = self
            .inner
            .lock()
            .slots
            .get_mut(index)
            .and_then(Option::take);
        // Outside the lock: the last reference runs `folio_free`.
        drop(folio);
    }

    /// Gives every folio up, for good: faults find nothing to map from now on (`SIGBUS`), and
    /// new mappings are refused. Idempotent.
    pub(crate) fn revoke(&self) {
        let folios = {
            let mut holds = self.inner.lock();
            holds.revoked = true;
            holds.slots.len()
        };
        for index in 0..folios {
            self.release(index);
        }
    }
}

/// What every piece of one mapping shares: the folios it was given, in mapping order.
struct FaultMapping {
    holds: Arc<FolioHolds>,
    /// The region index of folio `k` of the mapping, for `k` in `0..folios.len()`.
    folios: KVVec<usize>,
    /// Pages of the mapping when it was made: `folios.len() << PMD_ORDER`.
    pages: usize,
}

impl FaultMapping {
    /// Folio `k` of the mapping, with a reference of its own; `None` past the end or once
    /// revoked.
    fn folio(&self, k: usize) -> Option<FolioRef> {
        self.holds.get(*self.folios.get(k)?)
    }
}

impl Drop for FaultMapping {
    fn drop(&mut self) {
        // The last piece of the mapping is gone: its folios come back once unpinned.
        for &index in self.folios.iter() {
            self.holds.release(index);
        }
    }
}

/// `PAGE_SHIFT`.
const PAGE_SHIFT: u32 = kernel::page::PAGE_SHIFT as u32;

/// The order a PMD maps on x86_64: 2 MiB of 4 KiB pages.
pub(crate) const PMD_ORDER: u32 = 21 - PAGE_SHIFT;

/// The bytes a PMD maps.
const PMD_BYTES: usize = 1 << (PMD_ORDER + PAGE_SHIFT);

/// Whether `value` (an address or a length) is a multiple of [`PMD_BYTES`].
fn pmd_aligned(value: usize) -> bool {
    value & (PMD_BYTES - 1) == 0
}

/// Whether [`map_folios`] can serve `vma`: it starts and ends on a 2 MiB boundary.
pub(crate) fn fits_folios(vma: &VmaNew) -> bool {
    pmd_aligned(vma.start()) && pmd_aligned(vma.end())
}

/// Gives `vma`, a shared mapping being set up, fresh folios of `pagemap` (a pagemap of PMD-order
/// folios) for its whole length, kept in `holds`, and the fault handlers that map them.
/// Nothing is mapped until the first access. `-EINVAL` for a mapping that does not start and
/// end on a 2 MiB boundary, `-ENOMEM` when fewer folios are free; on error, every folio taken
/// is given back.
pub(crate) fn map_folios<O: PagemapOwner>(
    vma: &VmaNew,
    pagemap: &Pagemap<O>,
    holds: &Arc<FolioHolds>,
) -> Result {
    let order = pagemap.order();
    if order != PMD_ORDER || !fits_folios(vma) {
        return Err(EINVAL);
    }
    let pages = (vma.end() - vma.start()) >> PAGE_SHIFT;
    let count = pages >> order;
    // A 128 GiB mapping lists 65536 folios: vmalloc when kmalloc cannot.
    let mut folios = KVVec::with_capacity(count, GFP_KERNEL)?;
    let mut held = Ok(());
    let allocated = pagemap.alloc_folios(count, &mut |index, folio| {
        if held.is_ok() {
            held = holds.hold(index, folio);
            if held.is_ok() && folios.push_within_capacity(index).is_err() {
                // Cannot happen (`count` were reserved), but the index must not be lost.
                holds.release(index);
                held = Err(ENOMEM);
            }
        }
        // After an error the folio is dropped here (`hold` did not take it): it comes back.
    });
    // From here the folios are the mapping's: dropping it (on any error below) gives them back.
    let mapping = FaultMapping {
        holds: holds.clone(),
        folios,
        pages,
    };
    allocated?;
    held?;
    let mapping = UniqueArc::new(mapping, GFP_KERNEL)?;
    let mapping: Arc<FaultMapping> = mapping.into();
    // Never merged with a neighbour (`VM_DONTEXPAND` is one of the flags that keep the mm from
    // merging VMAs): a merge would close one VMA and keep only the other's private data.
    vma.set_dontexpand();
    // SAFETY: `vma` is being set up under the mmap lock, so its ops and private data are ours
    // to set; the `Arc` reference leaked into it is the VMA's, taken back by `close` (the VMA
    // is never merged away: `VM_DONTEXPAND`, set just above), and the ops expect exactly that
    // private data. Nothing can fail after this: the kernel calls `close` for the VMA from now
    // on.
    unsafe {
        p2p_bindings::p2pmem_vma_set_fault_ops(
            vma.as_ptr(),
            &VM_OPS,
            Arc::into_raw(mapping).cast_mut().cast(),
        )
    };
    Ok(())
}

/// The fault handlers of every mapping [`map_folios`] sets up.
static VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
    open: Some(vma_open),
    close: Some(vma_close),
    may_split: Some(may_split),
    mremap: Some(vma_mremap),
    fault: Some(fault),
    huge_fault: Some(huge_fault),
    ..pin_init::zeroed()
};

/// The mapping a VMA of ours belongs to.
///
/// # Safety
///
/// `vma` is a VMA with [`VM_OPS`], whose private data holds a reference on its mapping (the
/// VMA is not closed yet), and the returned borrow does not outlive that.
unsafe fn mapping_of<'a>(vma: *mut bindings::vm_area_struct) -> &'a FaultMapping {
    // SAFETY: per the function's safety requirements, the private data is the pointer
    // `Arc::into_raw()` returned for a live `FaultMapping`.
    unsafe { &*p2p_bindings::p2pmem_vma_private(vma).cast::<FaultMapping>() }
}

/// A new VMA shares a mapping (a split, `fork()`, `mremap()`): it takes its own reference.
///
/// # Safety
///
/// Called by the mm for a new copy of a VMA with [`VM_OPS`].
unsafe extern "C" fn vma_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: the copy's private data is the original's: a pointer from `Arc::into_raw()` on
    // which the original holds a reference while it exists, as it does during this call. Not
    // dropped: that reference stays the original's.
    let original = core::mem::ManuallyDrop::new(unsafe {
        Arc::from_raw(p2p_bindings::p2pmem_vma_private(vma).cast::<FaultMapping>())
    });
    // One more reference, for the new VMA, which `vma_close` drops; the pointer is the same.
    let _ = Arc::into_raw(Arc::clone(&original));
}

/// A VMA goes away: it drops its reference; the last one gives the folios back.
///
/// # Safety
///
/// Called by the mm once for each VMA with [`VM_OPS`], after which it is not used.
unsafe extern "C" fn vma_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: the VMA's private data holds one reference (taken in `map_folios` or
    // `vma_open`), which is given back here, once.
    drop(unsafe { Arc::from_raw(p2p_bindings::p2pmem_vma_private(vma).cast::<FaultMapping>()) });
}

/// A mapping of ours may be split only on a 2 MiB boundary: a PMD is never cut in two (a
/// `munmap()` or `mprotect()` elsewhere gets `-EINVAL`).
///
/// # Safety
///
/// Called by the mm for a VMA with [`VM_OPS`].
unsafe extern "C" fn may_split(_vma: *mut bindings::vm_area_struct, addr: usize) -> ffi::c_int {
    if pmd_aligned(addr) {
        0
    } else {
        EINVAL.to_errno()
    }
}

/// A mapping of ours may move only to a 2 MiB boundary, where its PMDs fit (`-EINVAL`, and
/// `mremap()` moves it back, otherwise).
///
/// # Safety
///
/// Called by the mm for the new VMA of a moved mapping with [`VM_OPS`].
unsafe extern "C" fn vma_mremap(vma: *mut bindings::vm_area_struct) -> ffi::c_int {
    // SAFETY: the mm passes a valid VMA, under the mmap lock.
    let start = unsafe { p2p_bindings::p2pmem_vma_start(vma) } as usize;
    if pmd_aligned(start) {
        0
    } else {
        EINVAL.to_errno()
    }
}

/// A fault on one page. Folios are never mapped by PTEs (see the module documentation), and a
/// mapping of ours lies on 2 MiB boundaries, so the mm always asks [`huge_fault`] first and
/// only falls back here when a PMD cannot be used: when transparent huge pages are disabled
/// (`transparent_hugepage=never`), or a page table is left over in the range. `SIGBUS`.
///
/// # Safety
///
/// Called by the mm for a fault in a VMA with [`VM_OPS`].
unsafe extern "C" fn fault(_vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    bindings::vm_fault_reason_VM_FAULT_SIGBUS
}

/// A fault that may map a whole folio: a PMD for the folio under the address.
///
/// # Safety
///
/// Called by the mm for a fault in a VMA with [`VM_OPS`], under the mmap or VMA lock.
unsafe extern "C" fn huge_fault(
    vmf: *mut bindings::vm_fault,
    order: ffi::c_uint,
) -> bindings::vm_fault_t {
    if order != PMD_ORDER {
        // Not a PUD (nor PTEs): the mm tries a PMD next.
        return bindings::vm_fault_reason_VM_FAULT_FALLBACK;
    }
    // SAFETY: the mm calls this with a valid `vmf` whose VMA is ours and not closed while the
    // fault runs (it holds the mmap or VMA lock).
    let (vma, address, write) = unsafe {
        (
            p2p_bindings::p2pmem_vmf_vma(vmf),
            p2p_bindings::p2pmem_vmf_address(vmf) as usize,
            p2p_bindings::p2pmem_vmf_write(vmf),
        )
    };
    // SAFETY: as above: the VMA is ours and open for the whole call.
    let mapping = unsafe { mapping_of(vma) };
    // SAFETY: `vma` is valid (as above).
    let (vm_start, vm_end, vm_pgoff) = unsafe {
        (
            p2p_bindings::p2pmem_vma_start(vma) as usize,
            p2p_bindings::p2pmem_vma_end(vma) as usize,
            p2p_bindings::p2pmem_vma_pgoff(vma) as usize,
        )
    };
    let start = address & !(PMD_BYTES - 1);
    // Cannot fail for a VMA on 2 MiB boundaries (`map_folios`, `may_split`, `vma_mremap`).
    if start < vm_start || start + PMD_BYTES > vm_end || !pmd_aligned(vm_start) {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    }
    let pgoff = vm_pgoff + ((start - vm_start) >> PAGE_SHIFT);
    if pgoff + (1 << PMD_ORDER) > mapping.pages {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    }
    let Some(folio) = mapping.folio(pgoff >> PMD_ORDER) else {
        // Revoked: the device is going away.
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    };
    // SAFETY: `vmf` is valid; the folio is a PMD-order folio (the pagemap's order, checked in
    // `map_folios`) that we hold a reference on until after the call, and the PMD takes its own.
    unsafe { bindings::vmf_insert_folio_pmd(vmf, folio.as_folio_ptr(), write) }
}
