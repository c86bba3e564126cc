// SPDX-License-Identifier: GPL-2.0

//! Which window of which BAR p2pmem donates.
//!
//! Kernel-independent: this file only uses `core`, so the module and the host test crate
//! (`tools/testing/host`) compile the same code, and every rule here is unit-tested on the host.

use core::fmt;

/// The granule of `memremap_pages()` on x86_64 (`memremap_compat_align()`, a section): a
/// donated window starts and ends on a multiple of it.
pub const ALIGN: u64 = 2 << 20;

/// The number of standard BARs (`PCI_STD_NUM_BARS`).
pub const NUM_BARS: usize = 6;

/// What the PCI core says about one BAR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BarInfo {
    /// CPU physical start address.
    pub start: u64,
    /// Length in bytes; 0 for an unimplemented BAR.
    pub len: u64,
    /// Whether the BAR decodes memory (`IORESOURCE_MEM`), as opposed to I/O ports.
    pub mem: bool,
    /// Whether the BAR is prefetchable (`IORESOURCE_PREFETCH`).
    pub prefetch: bool,
}

/// The window the user asked for, from the module parameters, validated on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The BAR, or `None` to pick the largest memory BAR.
    pub bar: Option<u8>,
    /// Offset of the window in the BAR.
    pub offset: u64,
    /// Size of the window, or `None` for the rest of the BAR after `offset`.
    pub size: Option<u64>,
}

/// A window of a BAR, inside the BAR and aligned to [`ALIGN`] at both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The BAR.
    pub bar: u8,
    /// Offset of the window in the BAR.
    pub offset: u64,
    /// Size of the window in bytes, a non-zero multiple of [`ALIGN`].
    pub size: u64,
}

/// Why a request cannot be served. Every variant says which value was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The `bar` parameter is neither -1 nor a BAR index.
    BarIndex(i64),
    /// A parameter is not a multiple of [`ALIGN`].
    Unaligned {
        /// The parameter's name.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// The requested BAR does not decode memory, or is not implemented.
    NotMemory(u8),
    /// No BAR of the device holds an aligned window of at least [`ALIGN`].
    NoUsableBar,
    /// The BAR's start address is not aligned to [`ALIGN`].
    BarUnaligned(u8),
    /// An NVMe controller without a Controller Memory Buffer.
    NoCmb,
    /// The CMB does not start on an [`ALIGN`] boundary of its BAR, or is smaller than [`ALIGN`].
    CmbUnusable {
        /// The BAR the CMB is in.
        bar: u8,
        /// Its offset in the BAR.
        offset: u64,
        /// Its size.
        size: u64,
    },
    /// The CMB's PCI bus address does not fit `CMBMSC.CBA`.
    CmbBusAddress {
        /// The bus address of the CMB's BAR.
        bar_bus_start: u64,
        /// The CMB's offset in it.
        offset: u64,
    },
    /// The `bar` parameter names another BAR than the NVMe controller's CMB.
    NotCmbBar {
        /// The `bar` parameter.
        bar: u8,
        /// The CMB's BAR.
        cmb_bar: u8,
    },
    /// The kernel-pool slice leaves less than [`ALIGN`] of the window to the Rust region.
    PoolTooLarge {
        /// The requested slice.
        pool: u64,
        /// The window's size.
        size: u64,
    },
    /// The 4 KiB part of a region of folios leaves it no folio.
    SmallPagesTooLarge {
        /// The requested part.
        small: u64,
        /// The region's size.
        region: u64,
    },
    /// The window does not fit in the BAR.
    OutOfBar {
        /// The BAR.
        bar: u8,
        /// The requested offset.
        offset: u64,
        /// The requested size (0 when the rest of the BAR was asked for and nothing is left).
        size: u64,
        /// The BAR's length.
        len: u64,
    },
}

impl LayoutError {
    /// Whether the error means "this device has nothing for us" (`-ENODEV`) rather than "the
    /// parameters are wrong" (`-EINVAL`).
    pub fn is_no_device(&self) -> bool {
        matches!(self, Self::NoUsableBar | Self::NoCmb)
    }
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BarIndex(bar) => write!(f, "bar={bar} is not a BAR index (0-5, or -1 for auto)"),
            Self::Unaligned { what, value } => write!(
                f,
                "{what}={value:#x} is not a multiple of {} MiB",
                ALIGN >> 20
            ),
            Self::NotMemory(bar) => write!(f, "BAR {bar} is not an implemented memory BAR"),
            Self::NoUsableBar => {
                write!(f, "no memory BAR of at least {} MiB to donate", ALIGN >> 20)
            }
            Self::BarUnaligned(bar) => write!(
                f,
                "BAR {bar} does not start on a {} MiB boundary",
                ALIGN >> 20
            ),
            Self::NoCmb => write!(f, "NVMe controller without a Controller Memory Buffer"),
            Self::CmbUnusable { bar, offset, size } => write!(
                f,
                "CMB at BAR {bar} offset {offset:#x} size {size:#x} is not {} MiB aligned",
                ALIGN >> 20
            ),
            Self::CmbBusAddress {
                bar_bus_start,
                offset,
            } => write!(
                f,
                "CMB bus address {bar_bus_start:#x} + {offset:#x} does not fit CMBMSC"
            ),
            Self::NotCmbBar { bar, cmb_bar } => {
                write!(f, "bar={bar}, but the CMB is in BAR {cmb_bar}")
            }
            Self::PoolTooLarge { pool, size } => write!(
                f,
                "pool_size={pool:#x} leaves less than {} MiB of the {size:#x} byte window",
                ALIGN >> 20
            ),
            Self::SmallPagesTooLarge { small, region } => write!(
                f,
                "small_pages_size={small:#x} leaves no {} MiB folio of the {region:#x} byte region",
                ALIGN >> 20
            ),
            Self::OutOfBar {
                bar,
                offset,
                size,
                len,
            } => write!(
                f,
                "offset={offset:#x} size={size:#x} does not fit in BAR {bar} of {len:#x} bytes"
            ),
        }
    }
}

/// How a window is shared: a slice at its start for the kernel's P2PDMA pool (nvmet and other
/// in-kernel users, sysfs `p2pmem/allocate`), the rest for the region p2pmem serves itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// Bytes at the start of the window given to the kernel's pool; 0 when disabled.
    pub pool: u64,
    /// Offset in the BAR of the Rust-owned region.
    pub region_offset: u64,
    /// Size of the Rust-owned region, a non-zero multiple of [`ALIGN`].
    pub region_size: u64,
}

impl Window {
    /// Splits the window. `pool_size` is the `pool_size` parameter: negative for the default
    /// (2 MiB or 1/8 of the window, whichever is larger, when that leaves the region at least
    /// 2 MiB; else none), 0 for no pool, else the slice size (a multiple of [`ALIGN`]).
    pub fn split(&self, pool_size: i64) -> Result<Split, LayoutError> {
        let pool = match u64::try_from(pool_size) {
            Err(_) => {
                let eighth = self.size / 8 - (self.size / 8) % ALIGN;
                let pool = eighth.max(ALIGN);
                if self.size - pool >= ALIGN {
                    pool
                } else {
                    0
                }
            }
            Ok(pool) if pool % ALIGN != 0 => {
                return Err(LayoutError::Unaligned {
                    what: "pool_size",
                    value: pool,
                })
            }
            Ok(pool) if pool > self.size || self.size - pool < ALIGN => {
                return Err(LayoutError::PoolTooLarge {
                    pool,
                    size: self.size,
                })
            }
            Ok(pool) => pool,
        };
        Ok(Split {
            pool,
            region_offset: self.offset + pool,
            region_size: self.size - pool,
        })
    }
}

impl Split {
    /// Bytes at the end of a region of 2 MiB folios (`huge_pages=1`) kept as 4 KiB pages, for
    /// the mappings folios cannot serve. `small_pages_size` is the `small_pages_size`
    /// parameter: negative for the default (2 MiB or 1/8 of the region, whichever is larger,
    /// when that leaves at least one folio; else none), 0 for none, else the size (a multiple
    /// of [`ALIGN`] that leaves at least one folio).
    pub fn small_pages(&self, small_pages_size: i64) -> Result<u64, LayoutError> {
        let region = self.region_size;
        match u64::try_from(small_pages_size) {
            Err(_) => {
                let eighth = region / 8 - (region / 8) % ALIGN;
                let small = eighth.max(ALIGN);
                Ok(if region - small >= ALIGN { small } else { 0 })
            }
            Ok(small) if small % ALIGN != 0 => Err(LayoutError::Unaligned {
                what: "small_pages_size",
                value: small,
            }),
            Ok(small) if small > region || region - small < ALIGN => {
                Err(LayoutError::SmallPagesTooLarge { small, region })
            }
            Ok(small) => Ok(small),
        }
    }
}

impl Request {
    /// Validates the module parameters on their own: `bar` is -1 or 0-5, `offset` and `size`
    /// are multiples of [`ALIGN`]; `size == 0` means the rest of the BAR.
    pub fn from_params(bar: i64, offset: u64, size: u64) -> Result<Self, LayoutError> {
        let bar = match bar {
            -1 => None,
            0..=5 => Some(bar as u8),
            _ => return Err(LayoutError::BarIndex(bar)),
        };
        if offset % ALIGN != 0 {
            return Err(LayoutError::Unaligned {
                what: "offset",
                value: offset,
            });
        }
        if size % ALIGN != 0 {
            return Err(LayoutError::Unaligned {
                what: "size",
                value: size,
            });
        }
        Ok(Self {
            bar,
            offset,
            size: if size == 0 { None } else { Some(size) },
        })
    }

    /// Picks the window on a device with these BARs.
    ///
    /// Without an explicit BAR, the largest memory BAR wins (a prefetchable one on a tie, then
    /// the lowest index): on an NVMe controller that is the CMB, on ivshmem the shared memory.
    pub fn choose(&self, bars: &[BarInfo; NUM_BARS]) -> Result<Window, LayoutError> {
        let bar = match self.bar {
            Some(bar) => {
                let info = bars[usize::from(bar)];
                if !info.mem || info.len == 0 {
                    return Err(LayoutError::NotMemory(bar));
                }
                bar
            }
            None => {
                let mut best: Option<(u8, BarInfo)> = None;
                for (index, info) in (0u8..).zip(bars.iter()) {
                    if !info.mem || info.len < ALIGN {
                        continue;
                    }
                    let better = match best {
                        None => true,
                        Some((_, b)) => (info.len, info.prefetch) > (b.len, b.prefetch),
                    };
                    if better {
                        best = Some((index, *info));
                    }
                }
                best.ok_or(LayoutError::NoUsableBar)?.0
            }
        };
        let info = bars[usize::from(bar)];
        if info.start % ALIGN != 0 {
            return Err(LayoutError::BarUnaligned(bar));
        }
        self.place(bar, 0, info.len)
    }

    /// Picks the window inside the CMB of an NVMe controller: `offset` and `size` count from
    /// the start of the CMB, and `bar`, if given, must be the CMB's.
    pub fn choose_in_cmb(&self, cmb: &Window) -> Result<Window, LayoutError> {
        match self.bar {
            Some(bar) if bar != cmb.bar => Err(LayoutError::NotCmbBar {
                bar,
                cmb_bar: cmb.bar,
            }),
            _ => self.place(cmb.bar, cmb.offset, cmb.size),
        }
    }

    /// Applies `offset` and `size` to the `len` bytes at `base` of `bar`.
    fn place(&self, bar: u8, base: u64, len: u64) -> Result<Window, LayoutError> {
        let out_of_bar = |size| LayoutError::OutOfBar {
            bar,
            offset: self.offset,
            size,
            len,
        };
        let room = len.checked_sub(self.offset).ok_or_else(|| out_of_bar(0))?;
        let size = match self.size {
            Some(size) if size <= room => size,
            Some(size) => return Err(out_of_bar(size)),
            None => room - room % ALIGN,
        };
        if size == 0 {
            return Err(out_of_bar(0));
        }
        Ok(Window {
            bar,
            offset: base + self.offset,
            size,
        })
    }
}

/// The NVMe registers that describe a Controller Memory Buffer (NVMe 1.4+, section 3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmbRegs {
    /// `CMBLOC`: the BAR (BIR, bits 2:0) and offset (OFST, bits 31:12, in size units).
    pub cmbloc: u32,
    /// `CMBSZ`: size units (SZU, bits 11:8: 4 KiB << 4 * SZU) and size (SZ, bits 31:12).
    pub cmbsz: u32,
}

/// `CAP.CMBS` (bit 57): the controller supports `CMBMSC`, whose `CRE` must be set before
/// `CMBLOC` and `CMBSZ` read non-zero.
pub const NVME_CAP_CMBS: u64 = 1 << 57;
/// `CMBMSC.CRE`: CMB registers enabled.
pub const NVME_CMBMSC_CRE: u64 = 1 << 0;
/// `CMBMSC.CMSE`: CMB memory space enabled; `CMBMSC.CBA` (bits 63:12) holds its bus address.
pub const NVME_CMBMSC_CMSE: u64 = 1 << 1;

/// The `CMBMSC` value that enables a CMB whose BAR starts at PCI bus address `bar_bus_start`
/// (what `pci_bus_address()` returns) at `offset` in that BAR, as `nvme_map_cmb()` writes it:
/// `CBA` is the CMB's bus address, never derived from a CPU address. `None` when that address
/// overflows or is not 4 KiB aligned (`CBA` holds bits 63:12).
pub fn cmbmsc_enable(bar_bus_start: u64, offset: u64) -> Option<u64> {
    let cba = bar_bus_start.checked_add(offset)?;
    if cba % 4096 != 0 {
        return None;
    }
    Some(cba | NVME_CMBMSC_CMSE | NVME_CMBMSC_CRE)
}

impl CmbRegs {
    /// The CMB as a window of its BAR: its offset aligned to [`ALIGN`], its size cut to the BAR
    /// and rounded down to [`ALIGN`], as the kernel's nvme driver reads it (`nvme_map_cmb()`).
    pub fn window(&self, bars: &[BarInfo; NUM_BARS]) -> Result<Window, LayoutError> {
        let szu = (self.cmbsz >> 8) & 0xf;
        if self.cmbsz == 0 || szu > 6 {
            return Err(LayoutError::NoCmb);
        }
        let unit = 4096u64 << (4 * szu);
        let size = u64::from(self.cmbsz >> 12) * unit;
        let offset = u64::from(self.cmbloc >> 12) * unit;
        let bar = (self.cmbloc & 0x7) as u8;
        let info = bars.get(usize::from(bar)).copied().unwrap_or_default();
        if !info.mem || offset >= info.len {
            return Err(LayoutError::NotMemory(bar));
        }
        let size = size.min(info.len - offset);
        let usable = size - size % ALIGN;
        if offset % ALIGN != 0 || (info.start + offset) % ALIGN != 0 || usable == 0 {
            return Err(LayoutError::CmbUnusable { bar, offset, size });
        }
        Ok(Window {
            bar,
            offset,
            size: usable,
        })
    }
}
