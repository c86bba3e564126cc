// SPDX-License-Identifier: GPL-2.0

//! `/dev/p2pmemN`: userspace maps P2PDMA pages of a bound device and reads its counters.
//!
//! A [`Cdev`] owns the device's [`P2pPagemap`] and the misc device that serves it. Open files
//! share a [`Shared`] with it that outlives unbind: once the device is going away the files
//! still exist, but `mmap` and `ioctl` get `-ENODEV`.
//!
//! Mapping rules: `MAP_SHARED` only (`MAP_PRIVATE`: `-EINVAL`), offset 0 only (`-EINVAL`), each
//! `mmap` hands out fresh pages (`-ENOMEM` when fewer are free). Mappings cannot grow
//! (`mremap` to a larger size: `-EFAULT`); they can move. A child of `fork()` shares the pages.
//! Pages come back when their last user drops them: `munmap` (whole or partial),
//! `madvise(MADV_DONTNEED)` (the range then raises `SIGBUS` on access), process exit, or the
//! end of an I/O that had pinned them.

use crate::{
    bindings as p2p_bindings,
    gup::{PinnedPages, MAX_PIN_PAGES},
    p2pdma::P2pPagemap,
    pgmap::vma_pgoff,
    pin_flags::AnyPinFlags,
    revoke::RevokeList,
};
use core::{
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{
    bindings,
    device::Device,
    ffi,
    fs::File,
    ioctl::{_IOR, _IOWR},
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    mm::virt::{flags as vm_flags, VmaNew},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

/// `P2PMEM_IOCTL_INFO`.
const IOCTL_INFO: u32 = _IOR::<p2p_bindings::p2pmem_info>(p2p_bindings::P2PMEM_IOCTL_MAGIC, 0);
/// `P2PMEM_IOCTL_PIN`.
const IOCTL_PIN: u32 = _IOWR::<p2p_bindings::p2pmem_pin>(p2p_bindings::P2PMEM_IOCTL_MAGIC, 1);

// SAFETY: `struct p2pmem_info` is all `__u64`/`__u32` and `char` in an order without padding.
unsafe impl AsBytes for p2p_bindings::p2pmem_info {}
// SAFETY: `struct p2pmem_pin` is all `__u64`/`__u32` in an order without padding.
unsafe impl AsBytes for p2p_bindings::p2pmem_pin {}
// SAFETY: any bit pattern is a valid `struct p2pmem_pin` (integers only).
unsafe impl FromBytes for p2p_bindings::p2pmem_pin {}

/// The misc device names: `/dev/p2pmem0` to `/dev/p2pmem15`.
const NAMES: [&CStr; 16] = [
    c"p2pmem0",
    c"p2pmem1",
    c"p2pmem2",
    c"p2pmem3",
    c"p2pmem4",
    c"p2pmem5",
    c"p2pmem6",
    c"p2pmem7",
    c"p2pmem8",
    c"p2pmem9",
    c"p2pmem10",
    c"p2pmem11",
    c"p2pmem12",
    c"p2pmem13",
    c"p2pmem14",
    c"p2pmem15",
];
/// Which of [`NAMES`] are taken, one bit each.
static NAMES_TAKEN: AtomicU32 = AtomicU32::new(0);

/// One of [`NAMES`], held until drop.
struct DeviceNumber(usize);

impl DeviceNumber {
    fn take() -> Result<Self> {
        let mut taken = NAMES_TAKEN.load(Ordering::Relaxed);
        loop {
            let n = (!taken).trailing_zeros() as usize;
            if n >= NAMES.len() {
                return Err(ENOSPC);
            }
            match NAMES_TAKEN.compare_exchange_weak(
                taken,
                taken | (1 << n),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Self(n)),
                Err(now) => taken = now,
            }
        }
    }
}

impl Drop for DeviceNumber {
    fn drop(&mut self) {
        NAMES_TAKEN.fetch_and(!(1 << self.0), Ordering::AcqRel);
    }
}

/// The parts of [`p2p_bindings::p2pmem_info`] fixed at bind time.
#[derive(Clone, Copy)]
pub(crate) struct StaticInfo {
    /// The BAR.
    pub(crate) bar: u8,
    /// Offset of the region in the BAR.
    pub(crate) region_offset: u64,
    /// Size of the kernel-pool slice.
    pub(crate) pool_bytes: u64,
    /// The provider's bus offset.
    pub(crate) bus_offset: u64,
    /// The PCI device's name, NUL-padded.
    pub(crate) pci_dev: [u8; 16],
}

/// `name` NUL-padded to 16 bytes, cut to 15 if longer (PCI names are 12).
pub(crate) fn pci_name(name: &CStr) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().take(15).zip(name.to_bytes()) {
        *o = *b;
    }
    out
}

/// What an open file may reach of its device.
///
/// # Invariants
///
/// - While `pagemap` is `Some`, it points to the pagemap owned by the [`Cdev`] this belongs to;
///   the `Cdev` sets it to `None` (under the lock) before it drops the pagemap.
/// - `inode`, when `Some`, is an inode this holds a reference on (`ihold`).
struct Inner {
    pagemap: Option<NonNull<P2pPagemap>>,
    inode: Option<NonNull<bindings::inode>>,
}

// SAFETY: `pagemap` points to a `Sync` object, and `inode` is a refcounted kernel object usable
// from any thread; both are only used under `Shared::inner`'s lock.
unsafe impl Send for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(inode) = self.inode {
            // SAFETY: we hold a reference on `inode` (type invariants) and drop it here, once.
            unsafe { bindings::iput(inode.as_ptr()) };
        }
    }
}

/// The state a device shares with its open files.
#[pin_data]
pub(crate) struct Shared {
    #[pin]
    inner: Mutex<Inner>,
    info: StaticInfo,
    revoke: RevokeList,
}

impl Shared {
    /// The device's revoke registrations.
    pub(crate) fn revoke_list(&self) -> &RevokeList {
        &self.revoke
    }

    /// Makes every file of the device map through one address space, so that [`Self::zap`]
    /// reaches every mapping: the first opener's inode's, whatever node later openers used.
    fn adopt_mapping(&self, file: &File) {
        let mut inner = self.inner.lock();
        let raw = file.as_ptr();
        match inner.inode {
            None => {
                // SAFETY: `raw` is a file being opened; its `f_inode` is valid while it is.
                let inode = unsafe { (*raw).f_inode };
                // SAFETY: `inode` is valid; the reference is dropped in `Inner::drop`.
                unsafe { bindings::ihold(inode) };
                // INVARIANT: we hold a reference on `inode`.
                inner.inode = NonNull::new(inode);
            }
            Some(inode) => {
                // SAFETY: the file is being opened (no mapping exists yet) and `inode` is alive
                // (we hold a reference), so its mapping can serve the file, as DRM does.
                unsafe { (*raw).f_mapping = (*inode.as_ptr()).i_mapping };
            }
        }
    }

    /// Unmaps every user mapping of the device: their pages go back when the last other user
    /// (an I/O in flight) drops them, and later accesses raise `SIGBUS`.
    pub(crate) fn zap(&self) {
        // Not under the lock: `mmap` takes it under the mmap lock, and unmapping must not nest
        // inside it. `inode` is set once and released only when `self` is dropped.
        let inode = self.inner.lock().inode;
        if let Some(inode) = inode {
            // SAFETY: `inode` is alive (we hold a reference until `self` is dropped);
            // `unmap_mapping_range()` with `holelen == 0` unmaps the whole file, private COW
            // copies included (`even_cows`).
            unsafe { bindings::unmap_mapping_range((*inode.as_ptr()).i_mapping, 0, 0, 1) };
        }
    }

    /// Runs `f` on the pagemap, or fails with `-ENODEV` once the device is going away. The lock
    /// is held throughout, so the pagemap cannot be revoked under `f`.
    fn with_pagemap<R>(&self, f: impl FnOnce(&P2pPagemap) -> Result<R>) -> Result<R> {
        let inner = self.inner.lock();
        let pagemap = inner.pagemap.ok_or(ENODEV)?;
        // SAFETY: `pagemap` is `Some`, so it points to the live pagemap of our `Cdev` (type
        // invariants of `Inner`), which cannot be dropped while we hold the lock.
        f(unsafe { pagemap.as_ref() })
    }

    /// `P2PMEM_IOCTL_PIN`: pins the range through [`PinnedPages`], counts, unpins.
    fn pin(&self, pin: &mut p2p_bindings::p2pmem_pin) -> Result {
        let page_size = kernel::page::PAGE_SIZE as u64;
        let pages = pin.len / page_size;
        if pin.reserved != 0
            || pin.len % page_size != 0
            || pages == 0
            || pages > MAX_PIN_PAGES as u64
        {
            return Err(EINVAL);
        }
        // P2PDMA | LONGTERM is refused here, before GUP could WARN about it.
        let flags = AnyPinFlags::from_uapi(pin.flags).map_err(|_| EINVAL)?;
        let addr = usize::try_from(pin.addr).map_err(|_| EINVAL)?;
        // Not under our lock: GUP may fault, under the mmap lock, which `mmap` takes first.
        let pinned = PinnedPages::pin(addr, pages as usize, flags)?;
        pin.pinned = pinned.len() as u64;
        pin.p2pdma = pinned.count_p2pdma() as u64;
        pin.ours = self.with_pagemap(|pagemap| {
            let (first, count) = pagemap.pfns();
            Ok(pinned.count_in(first, count) as u64)
        })?;
        Ok(())
    }

    /// The counters and the fixed facts, or `-ENODEV` once the device is going away.
    pub(crate) fn info(&self) -> Result<p2p_bindings::p2pmem_info> {
        self.with_pagemap(|pagemap| {
            let stats = pagemap.owner().stats();
            let page_size = kernel::page::PAGE_SIZE as u64;
            Ok(p2p_bindings::p2pmem_info {
                region_bytes: stats.pages * page_size,
                page_size,
                pages: stats.pages,
                free_pages: stats.free,
                outstanding_pages: stats.outstanding,
                handed_out_pages: stats.handed_out,
                freed_pages: stats.freed,
                pool_bytes: self.info.pool_bytes,
                bar: self.info.bar.into(),
                reserved: 0,
                region_offset: self.info.region_offset,
                bus_offset: self.info.bus_offset,
                pci_dev: self.info.pci_dev.map(|b| b as ffi::c_char),
            })
        })
    }
}

/// `/dev/p2pmemN` and the pagemap it serves.
///
/// # Invariants
///
/// `shared.inner.pagemap` points to `*pagemap` until `PinnedDrop` clears it.
#[pin_data(PinnedDrop)]
pub(crate) struct Cdev {
    #[pin]
    registration: MiscDeviceRegistration<P2pmemFile>,
    shared: Arc<Shared>,
    pagemap: Pin<KBox<P2pPagemap>>,
    number: DeviceNumber,
}

impl Cdev {
    /// Registers the next free `/dev/p2pmemN` serving `pagemap`.
    pub(crate) fn new(
        pagemap: Pin<KBox<P2pPagemap>>,
        info: StaticInfo,
    ) -> Result<impl PinInit<Self, Error>> {
        let number = DeviceNumber::take()?;
        let pagemap_ptr = NonNull::from(&*pagemap);
        let shared = Arc::pin_init(
            try_pin_init!(Shared {
                inner <- new_mutex!(Inner {
                    // INVARIANT: points to the pagemap the `Cdev` owns from now on.
                    pagemap: Some(pagemap_ptr),
                    inode: None,
                }),
                info,
                revoke: RevokeList::new()?,
            }),
            GFP_KERNEL,
        )?;
        let name = NAMES[number.0];
        Ok(try_pin_init!(Self {
            shared,
            pagemap,
            number,
            registration <- MiscDeviceRegistration::register(MiscDeviceOptions { name }),
        }))
    }

    /// The misc device's name.
    pub(crate) fn name(&self) -> &'static CStr {
        NAMES[self.number.0]
    }

    /// The state shared with open files.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The pagemap this device serves.
    pub(crate) fn pagemap(&self) -> &P2pPagemap {
        &self.pagemap
    }

    /// Revokes the device for unbind: no further `mmap` or `ioctl` reaches the pages, every user
    /// mapping is unmapped, and this waits until every page handed out has come back, logging
    /// on `dev` while it waits. Returns the milliseconds it waited. Idempotent.
    pub(crate) fn revoke(&self, dev: &Device) -> u64 {
        self.shared.inner.lock().pagemap = None;
        self.pagemap.owner().drain(dev, || self.shared.zap())
    }
}

#[pinned_drop]
impl PinnedDrop for Cdev {
    fn drop(self: Pin<&mut Self>) {
        // The driver revokes in `unbind()`; this only matters on a failed probe, where nothing
        // was mapped yet. Either way the pointer is gone before the pagemap is dropped.
        self.shared.inner.lock().pagemap = None;
    }
}

/// An open `/dev/p2pmemN`.
pub(crate) struct P2pmemFile {
    shared: Arc<Shared>,
}

#[vtable]
impl MiscDevice for P2pmemFile {
    type Ptr = KBox<Self>;

    fn open(file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        // SAFETY: every `MiscDeviceRegistration<P2pmemFile>` is the `registration` field of a
        // `Cdev` (it is only registered by `Cdev::new`), and the registration outlives `open`.
        let cdev = unsafe {
            &*kernel::container_of!(core::ptr::from_ref(misc).cast_mut(), Cdev, registration)
        };
        cdev.shared.adopt_mapping(file);
        Ok(KBox::new(
            Self {
                shared: cdev.shared.clone(),
            },
            GFP_KERNEL,
        )?)
    }

    fn mmap(me: &Self, _file: &File, vma: &VmaNew) -> Result {
        if vma.flags() & vm_flags::MAYSHARE == 0 {
            return Err(EINVAL);
        }
        if vma_pgoff(vma) != 0 {
            return Err(EINVAL);
        }
        vma.set_dontexpand();
        vma.set_dontdump();
        me.shared.with_pagemap(|pagemap| pagemap.map_into(vma))
    }

    fn ioctl(me: &Self, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            IOCTL_INFO => {
                let info = me.shared.info()?;
                UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of_val(&info))
                    .writer()
                    .write(&info)?;
                Ok(0)
            }
            IOCTL_PIN => {
                let (mut reader, mut writer) = UserSlice::new(
                    UserPtr::from_addr(arg),
                    size_of::<p2p_bindings::p2pmem_pin>(),
                )
                .reader_writer();
                let mut pin: p2p_bindings::p2pmem_pin = reader.read()?;
                me.shared.pin(&mut pin)?;
                writer.write(&pin)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}
