// SPDX-License-Identifier: GPL-2.0

//! GUP pin flags in which `FOLL_PCI_P2PDMA | FOLL_LONGTERM` cannot be built.
//!
//! Kernel-independent: this file only uses `core`, so the module and the host test crate
//! (`tools/testing/host`) compile the same code.
//!
//! P2PDMA pages live in a BAR that can be hot-unplugged: GUP hands them out only to callers that
//! say they can cope (`FOLL_PCI_P2PDMA`), and never for a long-term pin (`FOLL_LONGTERM`), which
//! would keep the device from going away. `is_valid_gup_args()` in `mm/gup.c` treats the two
//! together as a caller bug (`WARN_ON_ONCE`, `-EINVAL`). Here the combination is not a value:
//!
//! - [`PinFlags<K>`] carries its kind as a type. [`PinFlags::short_term`] can become
//!   [`PinFlags::p2pdma`]:
//!
//! ```
//! use p2pmem_host_tests::pin_flags::{PinFlags, FOLL_PCI_P2PDMA, FOLL_WRITE};
//! let flags = PinFlags::short_term().write().p2pdma();
//! assert_eq!(flags.foll(), FOLL_PCI_P2PDMA | FOLL_WRITE);
//! ```
//!
//!   [`PinFlags::long_term`] has no such method, so this does not compile (E0599, no method
//!   named `p2pdma`; stable rustdoc does not check the code, the host crate's
//!   `tests/pin_flags.rs` does):
//!
//! ```compile_fail,E0599
//! use p2pmem_host_tests::pin_flags::PinFlags;
//! let flags = PinFlags::long_term().p2pdma();
//! ```
//!
//! - Flags decided at run time (an ioctl) go through [`AnyPinFlags::from_uapi`], which refuses the
//!   combination with [`PinFlagsError::P2pdmaLongterm`] before anything reaches C.

use core::marker::PhantomData;

/// `FOLL_WRITE` (`include/linux/mm_types.h`, 7.3); checked against the kernel's at build time.
pub const FOLL_WRITE: u32 = 1 << 0;
/// `FOLL_LONGTERM`.
pub const FOLL_LONGTERM: u32 = 1 << 8;
/// `FOLL_PCI_P2PDMA`.
pub const FOLL_PCI_P2PDMA: u32 = 1 << 10;

/// `P2PMEM_PIN_WRITE` (`include/uapi/linux/p2pmem.h`): the pages will be written.
pub const UAPI_PIN_WRITE: u32 = 1 << 0;
/// `P2PMEM_PIN_P2PDMA`: accept P2PDMA pages.
pub const UAPI_PIN_P2PDMA: u32 = 1 << 1;
/// `P2PMEM_PIN_LONGTERM`: a long-term pin.
pub const UAPI_PIN_LONGTERM: u32 = 1 << 2;

mod sealed {
    pub trait Sealed {}
}

/// What a pin may take and for how long. Sealed: only the three kinds below exist.
pub trait PinKind: sealed::Sealed {
    /// The `FOLL_*` bits of the kind.
    const FOLL: u32;
}

/// A short-term pin of ordinary pages (P2PDMA pages are refused with `-EREMOTEIO`).
#[derive(Clone, Copy, Debug)]
pub struct ShortTerm;
/// A short-term pin that accepts P2PDMA pages (`FOLL_PCI_P2PDMA`).
#[derive(Clone, Copy, Debug)]
pub struct P2pdma;
/// A long-term pin (`FOLL_LONGTERM`) of ordinary pages.
#[derive(Clone, Copy, Debug)]
pub struct LongTerm;

impl sealed::Sealed for ShortTerm {}
impl sealed::Sealed for P2pdma {}
impl sealed::Sealed for LongTerm {}

impl PinKind for ShortTerm {
    const FOLL: u32 = 0;
}
impl PinKind for P2pdma {
    const FOLL: u32 = FOLL_PCI_P2PDMA;
}
impl PinKind for LongTerm {
    const FOLL: u32 = FOLL_LONGTERM;
}

/// The flags of one pinning call, of kind `K`.
#[derive(Clone, Copy, Debug)]
pub struct PinFlags<K: PinKind> {
    write: bool,
    _kind: PhantomData<K>,
}

impl PinFlags<ShortTerm> {
    /// A short-term, read-only pin of ordinary pages.
    pub const fn short_term() -> Self {
        Self {
            write: false,
            _kind: PhantomData,
        }
    }

    /// The same pin, accepting P2PDMA pages.
    pub const fn p2pdma(self) -> PinFlags<P2pdma> {
        PinFlags {
            write: self.write,
            _kind: PhantomData,
        }
    }
}

impl PinFlags<LongTerm> {
    /// A long-term, read-only pin of ordinary pages. It cannot accept P2PDMA pages.
    pub const fn long_term() -> Self {
        Self {
            write: false,
            _kind: PhantomData,
        }
    }
}

impl<K: PinKind> PinFlags<K> {
    /// The same pin, for pages that will be written.
    pub const fn write(self) -> Self {
        Self {
            write: true,
            _kind: PhantomData,
        }
    }

    /// Whether the pages will be written (and so are dirtied on unpin).
    pub const fn is_write(&self) -> bool {
        self.write
    }

    /// The `gup_flags` for `pin_user_pages*()`: never `FOLL_PCI_P2PDMA | FOLL_LONGTERM`.
    pub const fn foll(&self) -> u32 {
        K::FOLL | if self.write { FOLL_WRITE } else { 0 }
    }
}

/// Any valid set of pin flags, for requests decided at run time.
#[derive(Clone, Copy, Debug)]
pub enum AnyPinFlags {
    /// See [`ShortTerm`].
    ShortTerm(PinFlags<ShortTerm>),
    /// See [`P2pdma`].
    P2pdma(PinFlags<P2pdma>),
    /// See [`LongTerm`].
    LongTerm(PinFlags<LongTerm>),
}

impl From<PinFlags<ShortTerm>> for AnyPinFlags {
    fn from(flags: PinFlags<ShortTerm>) -> Self {
        Self::ShortTerm(flags)
    }
}

impl From<PinFlags<P2pdma>> for AnyPinFlags {
    fn from(flags: PinFlags<P2pdma>) -> Self {
        Self::P2pdma(flags)
    }
}

impl From<PinFlags<LongTerm>> for AnyPinFlags {
    fn from(flags: PinFlags<LongTerm>) -> Self {
        Self::LongTerm(flags)
    }
}

/// Why uapi pin flags were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinFlagsError {
    /// Bits that are not `P2PMEM_PIN_*`.
    Unknown(u32),
    /// `P2PMEM_PIN_P2PDMA | P2PMEM_PIN_LONGTERM`: a P2PDMA page must never be pinned long-term.
    P2pdmaLongterm,
}

impl AnyPinFlags {
    /// Validates `P2PMEM_PIN_*` flags from userspace.
    pub fn from_uapi(flags: u32) -> Result<Self, PinFlagsError> {
        let unknown = flags & !(UAPI_PIN_WRITE | UAPI_PIN_P2PDMA | UAPI_PIN_LONGTERM);
        if unknown != 0 {
            return Err(PinFlagsError::Unknown(unknown));
        }
        let write = flags & UAPI_PIN_WRITE != 0;
        let p2pdma = flags & UAPI_PIN_P2PDMA != 0;
        let long_term = flags & UAPI_PIN_LONGTERM != 0;
        let with_write = |w: bool, f: AnyPinFlags| if w { f.write() } else { f };
        let flags = match (p2pdma, long_term) {
            (true, true) => return Err(PinFlagsError::P2pdmaLongterm),
            (true, false) => Self::P2pdma(PinFlags::short_term().p2pdma()),
            (false, true) => Self::LongTerm(PinFlags::long_term()),
            (false, false) => Self::ShortTerm(PinFlags::short_term()),
        };
        Ok(with_write(write, flags))
    }

    /// The same flags, for pages that will be written.
    pub fn write(self) -> Self {
        match self {
            Self::ShortTerm(f) => Self::ShortTerm(f.write()),
            Self::P2pdma(f) => Self::P2pdma(f.write()),
            Self::LongTerm(f) => Self::LongTerm(f.write()),
        }
    }

    /// The `gup_flags` for `pin_user_pages*()`.
    pub fn foll(&self) -> u32 {
        match self {
            Self::ShortTerm(f) => f.foll(),
            Self::P2pdma(f) => f.foll(),
            Self::LongTerm(f) => f.foll(),
        }
    }

    /// Whether the pages will be written.
    pub fn is_write(&self) -> bool {
        match self {
            Self::ShortTerm(f) => f.is_write(),
            Self::P2pdma(f) => f.is_write(),
            Self::LongTerm(f) => f.is_write(),
        }
    }
}
