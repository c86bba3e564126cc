// SPDX-License-Identifier: GPL-2.0

//! Pinning user pages (`pin_user_pages_fast()`), with flags from [`crate::pin_flags`] (see
//! [`crate::pin_flags::PinFlags`]), so that
//! this module can never ask GUP for `FOLL_PCI_P2PDMA | FOLL_LONGTERM`.

use crate::{
    bindings as p2p_bindings,
    pin_flags::{self, AnyPinFlags},
};
use kernel::{bindings, prelude::*};

// The kernel-independent copies of the `FOLL_*` bits are the kernel's.
const _: () = assert!(pin_flags::FOLL_WRITE == bindings::FOLL_WRITE);
const _: () = assert!(pin_flags::FOLL_LONGTERM == bindings::FOLL_LONGTERM);
const _: () = assert!(pin_flags::FOLL_PCI_P2PDMA == bindings::FOLL_PCI_P2PDMA);
// The same for the uapi bits.
const _: () = assert!(pin_flags::UAPI_PIN_WRITE == p2p_bindings::P2PMEM_PIN_WRITE);
const _: () = assert!(pin_flags::UAPI_PIN_P2PDMA == p2p_bindings::P2PMEM_PIN_P2PDMA);
const _: () = assert!(pin_flags::UAPI_PIN_LONGTERM == p2p_bindings::P2PMEM_PIN_LONGTERM);

/// The most pages one call pins (the array of page pointers is allocated up front).
pub(crate) const MAX_PIN_PAGES: usize = 16384;

/// Pages of the current process pinned with `FOLL_PIN`; unpinned (and dirtied, when pinned for
/// writing) on drop.
///
/// # Invariants
///
/// Every entry of `pages` is a page pinned by `pin_user_pages_fast()` for this object, and is
/// unpinned only by `Drop`.
pub(crate) struct PinnedPages {
    pages: KVVec<*mut bindings::page>,
    dirty: bool,
}

impl PinnedPages {
    /// Pins up to `nr` pages from `start` (page-aligned) of the current process with `flags`.
    ///
    /// GUP pins until the first page it cannot pin: the result may hold fewer than `nr` pages.
    /// If it cannot pin the first one, its error is returned (`-EREMOTEIO` for a P2PDMA page
    /// without [`pin_flags::P2pdma`], `-EFAULT` for an unmapped address, ...).
    ///
    /// `flags` is a typed [`PinFlags`] or an [`AnyPinFlags`] built from one: either way it can
    /// not be `FOLL_PCI_P2PDMA | FOLL_LONGTERM`.
    pub(crate) fn pin(start: usize, nr: usize, flags: impl Into<AnyPinFlags>) -> Result<Self> {
        let flags = flags.into();
        let (foll, write) = (flags.foll(), flags.is_write());
        if nr == 0 || nr > MAX_PIN_PAGES || start % kernel::page::PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        let mut pages = KVVec::with_capacity(nr, GFP_KERNEL)?;
        // SAFETY: `pages` has room for `nr` pointers; `pin_user_pages_fast()` fills at most `nr`
        // and returns how many (or -errno). `foll` is a valid combination (see above), and this
        // runs in process context without the mmap lock held, as GUP-fast requires.
        let ret =
            unsafe { bindings::pin_user_pages_fast(start, nr as i32, foll, pages.as_mut_ptr()) };
        let pinned = usize::try_from(ret).map_err(|_| Error::from_errno(ret as i32))?;
        // SAFETY: the first `pinned <= nr` entries were written by `pin_user_pages_fast()`.
        // INVARIANT: they are pinned for this object.
        unsafe { pages.inc_len(pinned.min(nr)) };
        Ok(Self {
            pages,
            dirty: write,
        })
    }

    /// How many pages are pinned.
    pub(crate) fn len(&self) -> usize {
        self.pages.len()
    }

    /// How many of them are P2PDMA pages.
    pub(crate) fn count_p2pdma(&self) -> usize {
        self.pages
            .iter()
            // SAFETY: each entry is a pinned, so valid, page (type invariants).
            .filter(|&&page| unsafe { p2p_bindings::p2pmem_is_pci_p2pdma_page(page) })
            .count()
    }

    /// How many of them lie in the pfn range `[first, first + count)`.
    pub(crate) fn count_in(&self, first: usize, count: usize) -> usize {
        self.pages
            .iter()
            // SAFETY: each entry is a pinned, so valid, page (type invariants).
            .map(|&page| unsafe { p2p_bindings::p2pmem_page_to_pfn(page) })
            .filter(|pfn| pfn.wrapping_sub(first) < count)
            .count()
    }
}

impl Drop for PinnedPages {
    fn drop(&mut self) {
        if self.pages.is_empty() {
            return;
        }
        // SAFETY: every entry is pinned by us and unpinned only here (type invariants).
        unsafe {
            bindings::unpin_user_pages_dirty_lock(
                self.pages.as_mut_ptr(),
                self.pages.len(),
                self.dirty,
            )
        };
    }
}
