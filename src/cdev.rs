// SPDX-License-Identifier: GPL-2.0

//! `/dev/p2pmemN`: userspace maps P2PDMA pages of a bound device and reads its counters.
//!
//! A [`Region`] owns the device's [`P2pPagemap`] and the [`Shared`] state its open files reach;
//! a [`Cdev`] is the misc device that serves it, registered last in probe. Open files keep the
//! `Shared` alive after unbind: once unbind starts, `mmap` and the pin ioctl get `-ENODEV`; the
//! counters stay readable until the region is gone, then every ioctl gets `-ENODEV`.
//!
//! Every file of a device maps through one address space of the module's own (an anonymous
//! inode on an internal filesystem, as DRM does), never through the inode the file was opened
//! by, so unbind reaches every mapping and no user filesystem is kept busy.
//!
//! Mapping rules: `MAP_SHARED` only (`MAP_PRIVATE`: `-EINVAL`), offset 0 only (`-EINVAL`), each
//! `mmap` hands out fresh pages (`-ENOMEM` when fewer are free). Mappings cannot grow
//! (`mremap` to a larger size: `-EFAULT`); they can move. A child of `fork()` shares the pages.
//!
//! A region of 4 KiB pages maps every page at `mmap` time. Pages come back when their last
//! user drops them: `munmap` (whole or partial), `madvise(MADV_DONTNEED)` (the range then
//! raises `SIGBUS` on access), process exit, or the end of an I/O that had pinned them.
//!
//! A region of 2 MiB folios (`huge_pages=1`) gives a mapping that starts and ends on a 2 MiB
//! boundary whole folios, and maps each with a PMD at its first access ([`fault_map`]);
//! mappings of 2 MiB and more are placed on a 2 MiB boundary. Its folios come back when the
//! last piece of the mapping is unmapped, in every process that shares it, and its last I/O
//! ends. Any other mapping gets 4 KiB pages from the region's small part (its last
//! `small_pages_size` bytes, a pagemap of its own), mapped as in a region of 4 KiB pages;
//! `-EINVAL` without one.

use crate::{
    bindings as p2p_bindings,
    fault_map::{self, FolioHolds},
    gup::{PinnedPages, MAX_PIN_PAGES},
    p2pdma::{P2pPagemap, PoolCounters},
    pgmap::vma_pgoff,
    pin_flags::AnyPinFlags,
    region::PoolStats,
    tracker::Tracker,
};
use core::ptr::NonNull;
use kernel::{
    bindings,
    device::Device,
    error::from_err_ptr,
    ffi,
    fs::File,
    ioctl::{_IOR, _IOWR},
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    mm::virt::{flags as vm_flags, VmaNew},
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Full, Relaxed},
        Arc, Mutex,
    },
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

/// `P2PMEM_IOCTL_INFO`.
const IOCTL_INFO: u32 = _IOR::<p2p_bindings::p2pmem_info>(p2p_bindings::P2PMEM_IOCTL_MAGIC, 0);
/// `P2PMEM_IOCTL_INFO` of version 0.2.0, whose `struct p2pmem_info` ended at `pci_dev`.
const IOCTL_INFO_V1: u32 = _IOR::<[u8; INFO_V1_SIZE]>(p2p_bindings::P2PMEM_IOCTL_MAGIC, 0);
/// The size of `struct p2pmem_info` in version 0.2.0: every field up to `pci_dev`.
const INFO_V1_SIZE: usize = core::mem::offset_of!(p2p_bindings::p2pmem_info, folio_size);
/// `P2PMEM_IOCTL_PIN`, a test interface (`include/p2pmem_test_uapi.h`).
const IOCTL_PIN: u32 = _IOWR::<p2p_bindings::p2pmem_pin>(p2p_bindings::P2PMEM_IOCTL_MAGIC, 1);

/// `P2PMEM_IOCTL_TRACKER_TEST`, a test interface (`include/p2pmem_test_uapi.h`).
const IOCTL_TRACKER_TEST: u32 =
    _IOWR::<p2p_bindings::p2pmem_tracker_test>(p2p_bindings::P2PMEM_IOCTL_MAGIC, 2);

// SAFETY: `struct p2pmem_info` is all `__u64`/`__u32` and `char` in an order without padding
// (the `char[16]` ends at byte 104, where the two last `__u64`s start).
unsafe impl AsBytes for p2p_bindings::p2pmem_info {}
// SAFETY: `struct p2pmem_pin` is all `__u64`/`__u32` in an order without padding.
unsafe impl AsBytes for p2p_bindings::p2pmem_pin {}
// SAFETY: any bit pattern is a valid `struct p2pmem_pin` (integers only).
unsafe impl FromBytes for p2p_bindings::p2pmem_pin {}
// SAFETY: `struct p2pmem_tracker_test` is four `__u64`s: no padding.
unsafe impl AsBytes for p2p_bindings::p2pmem_tracker_test {}
// SAFETY: any bit pattern is a valid `struct p2pmem_tracker_test` (integers only).
unsafe impl FromBytes for p2p_bindings::p2pmem_tracker_test {}

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
static NAMES_TAKEN: Atomic<u32> = Atomic::new(0);

/// One of [`NAMES`], held until drop.
struct DeviceNumber(usize);

impl DeviceNumber {
    fn take() -> Result<Self> {
        let mut taken = NAMES_TAKEN.load(Relaxed);
        loop {
            let n = (!taken).trailing_zeros() as usize;
            if n >= NAMES.len() {
                return Err(ENOSPC);
            }
            match NAMES_TAKEN.cmpxchg(taken, taken | (1 << n), Full) {
                Ok(_) => return Ok(Self(n)),
                Err(now) => taken = now,
            }
        }
    }
}

impl Drop for DeviceNumber {
    fn drop(&mut self) {
        let mut taken = NAMES_TAKEN.load(Relaxed);
        while let Err(now) = NAMES_TAKEN.cmpxchg(taken, taken & !(1 << self.0), Full) {
            taken = now;
        }
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
    /// Whether the test ioctls (`include/p2pmem_test_uapi.h`) are served.
    pub(crate) test_interfaces: bool,
}

/// The pagemaps of a region: the main one (4 KiB pages, or compound folios), and the small
/// part of 4 KiB pages beside folios, if any.
#[derive(Clone, Copy)]
struct Pagemaps<'a> {
    main: &'a P2pPagemap,
    small: Option<&'a P2pPagemap>,
}

impl<'a> Pagemaps<'a> {
    fn iter(self) -> impl Iterator<Item = &'a P2pPagemap> {
        Iterator::chain(core::iter::once(self.main), self.small)
    }
}

/// `name` NUL-padded to 16 bytes, cut to 15 if longer (PCI names are 12).
pub(crate) fn pci_name(name: &CStr) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().take(15).zip(name.to_bytes()) {
        *o = *b;
    }
    out
}

/// An inode of the module's internal filesystem: the address space every file of one device
/// maps through.
///
/// # Invariants
///
/// `ptr` was returned by `p2pmem_anon_inode_new()` and is freed only by `Drop`.
struct AnonInode {
    ptr: NonNull<bindings::inode>,
}

// SAFETY: an inode is a refcounted kernel object usable from any thread; `AnonInode` only reads
// its `i_mapping`, which is set at allocation and never changes.
unsafe impl Send for AnonInode {}
// SAFETY: see `Send`.
unsafe impl Sync for AnonInode {}

impl AnonInode {
    fn new() -> Result<Self> {
        // SAFETY: no preconditions; process context.
        let ptr = from_err_ptr(unsafe { p2p_bindings::p2pmem_anon_inode_new() })?;
        // INVARIANT: from `p2pmem_anon_inode_new()`, not NULL on success.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Makes `file`, being opened, map through this inode's address space.
    fn adopt(&self, file: &File) {
        // SAFETY: `file` is being opened (no mapping of it exists yet) and the inode is alive
        // (type invariants) for as long as the file: the file holds the `Shared` that owns it.
        unsafe { p2p_bindings::p2pmem_file_set_mapping(file.as_ptr(), self.ptr.as_ptr()) };
    }

    /// Unmaps every mapping of every file of the device, private COW copies included.
    fn unmap_all(&self) {
        // SAFETY: the inode is alive (type invariants) and its `i_mapping` is valid;
        // `unmap_mapping_range()` with `holelen == 0` unmaps the whole file, `even_cows` too.
        unsafe { bindings::unmap_mapping_range((*self.ptr.as_ptr()).i_mapping, 0, 0, 1) };
    }
}

impl Drop for AnonInode {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `p2pmem_anon_inode_new()` and is freed once, here (type
        // invariants); every file that used its mapping is gone (they held `Shared`).
        unsafe { p2p_bindings::p2pmem_anon_inode_free(self.ptr.as_ptr()) };
    }
}

/// What an open file may reach of its device.
///
/// # Invariants
///
/// While `pagemap` is `Some`, it points to the main pagemap owned by the [`Region`] this
/// belongs to, and `small` (when `Some`) to its small part; `pool` (when `Some`) was made from
/// the kernel pool of the same binding. The `Region` sets all three to `None` (under the lock)
/// before it drops the pagemaps, and the binding ends after that.
struct Inner {
    pagemap: Option<NonNull<P2pPagemap>>,
    small: Option<NonNull<P2pPagemap>>,
    pool: Option<PoolCounters>,
    /// New mappings and pins are served (false from the start of unbind).
    accepting: bool,
}

// SAFETY: `pagemap` and `small` point to `Sync` objects, and `PoolCounters` is a handle to
// internally synchronised kernel state; all are only used under `Shared::inner`'s lock.
unsafe impl Send for Inner {}

/// The state a device shares with its open files.
#[pin_data]
pub(crate) struct Shared {
    #[pin]
    inner: Mutex<Inner>,
    info: StaticInfo,
    inode: AnonInode,
    /// The folios mappings keep, for a region of compound folios (mapped at fault time).
    holds: Option<Arc<FolioHolds>>,
}

impl Shared {
    /// Unmaps every user mapping of the device and drops the folios mappings keep: their pages
    /// go back when the last other user (an I/O in flight) drops them, and later accesses raise
    /// `SIGBUS`.
    fn zap(&self) {
        // Not under the lock: `mmap` takes it under the mmap lock, and unmapping must not nest
        // inside it.
        self.inode.unmap_all();
        if let Some(holds) = &self.holds {
            holds.revoke();
        }
    }

    /// Runs `f` on the pagemaps while the device is accepting new users, or fails with
    /// `-ENODEV`. The lock is held throughout, so the pagemaps cannot go away under `f`.
    fn with_accepting_pagemaps<R>(&self, f: impl FnOnce(Pagemaps<'_>) -> Result<R>) -> Result<R> {
        let inner = self.inner.lock();
        if !inner.accepting {
            return Err(ENODEV);
        }
        f(inner.pagemaps()?)
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
        // Refused once unbind started, like `mmap`.
        self.with_accepting_pagemaps(|_| Ok(()))?;
        // Not under our lock: GUP may fault, under the mmap lock, which `mmap` takes first.
        let pinned = PinnedPages::pin(addr, pages as usize, flags)?;
        pin.pinned = pinned.len() as u64;
        pin.p2pdma = pinned.count_p2pdma() as u64;
        pin.ours = self.with_accepting_pagemaps(|pagemaps| {
            Ok(pagemaps
                .iter()
                .map(|pagemap| {
                    let (first, count) = pagemap.pfns();
                    pinned.count_in(first, count) as u64
                })
                .sum())
        })?;
        Ok(())
    }

    /// The counters, region and kernel pool, or `-ENODEV` once the region is gone. They stay
    /// readable while unbind waits for pages to come back.
    pub(crate) fn counters(&self) -> Result<p2p_bindings::p2pmem_counters> {
        let inner = self.inner.lock();
        let stats: PoolStats = inner
            .pagemaps()?
            .iter()
            .map(|pagemap| pagemap.owner().stats())
            .sum();
        let (pool_bytes, pool_free_bytes) = match &inner.pool {
            // SAFETY: `pool` is `Some` only while the binding that made it exists (type
            // invariants of `Inner`), and we hold the lock.
            Some(pool) => unsafe { pool.read() },
            None => (0, 0),
        };
        let page_size = kernel::page::PAGE_SIZE as u64;
        Ok(p2p_bindings::p2pmem_counters {
            region_bytes: stats.pages * page_size,
            pages: stats.pages,
            free_pages: stats.free,
            outstanding_pages: stats.outstanding,
            handed_out_pages: stats.handed_out,
            freed_pages: stats.freed,
            pool_bytes,
            pool_free_bytes,
            region_offset: self.info.region_offset,
        })
    }

    /// `P2PMEM_IOCTL_INFO`: the counters and the fixed facts.
    fn info(&self) -> Result<p2p_bindings::p2pmem_info> {
        let counters = self.counters()?;
        let (folio_size, folio_bytes) = self.with_pagemaps(|pagemaps| {
            let page_size = kernel::page::PAGE_SIZE as u64;
            let main = pagemaps.main;
            Ok((page_size << main.order(), main.pfns().1 as u64 * page_size))
        })?;
        Ok(p2p_bindings::p2pmem_info {
            region_bytes: counters.region_bytes,
            page_size: kernel::page::PAGE_SIZE as u64,
            pages: counters.pages,
            free_pages: counters.free_pages,
            outstanding_pages: counters.outstanding_pages,
            handed_out_pages: counters.handed_out_pages,
            freed_pages: counters.freed_pages,
            pool_bytes: self.info.pool_bytes,
            bar: self.info.bar.into(),
            reserved: 0,
            region_offset: self.info.region_offset,
            bus_offset: self.info.bus_offset,
            pci_dev: self.info.pci_dev.map(|b| b as ffi::c_char),
            folio_size,
            folio_bytes,
        })
    }

    /// Runs `f` on the pagemaps while they exist (also while unbind waits), or fails with
    /// `-ENODEV`.
    fn with_pagemaps<R>(&self, f: impl FnOnce(Pagemaps<'_>) -> Result<R>) -> Result<R> {
        f(self.inner.lock().pagemaps()?)
    }
}

impl Inner {
    /// The pagemaps, borrowed for as long as the lock guarding `self` is held; `-ENODEV` once
    /// the region is gone.
    fn pagemaps(&self) -> Result<Pagemaps<'_>> {
        let main = self.pagemap.ok_or(ENODEV)?;
        // SAFETY: `pagemap` is `Some`, so it and `small` (when `Some`) point to live pagemaps
        // of our `Region` (type invariants), which cannot be dropped while the lock guarding
        // `self` is held; the borrow of `self` lasts no longer than that.
        Ok(unsafe {
            Pagemaps {
                main: main.as_ref(),
                small: self.small.map(|small| small.as_ref()),
            }
        })
    }
}

/// The device's pages: the pagemap, and the state its files share.
///
/// Dropping it revokes and drains first (a no-op after unbind did), so it never tears a
/// pagemap down under a mapping, whatever path drops it.
///
/// # Invariants
///
/// `shared.inner.pagemap` points to `*pagemap`, and `shared.inner.small` to `*small`, until
/// `Drop` clears them.
pub(crate) struct Region<'bound> {
    dev: &'bound Device,
    shared: Arc<Shared>,
    pagemap: Pin<KBox<P2pPagemap>>,
    small: Option<Pin<KBox<P2pPagemap>>>,
}

impl<'bound> Region<'bound> {
    /// The region of `pagemap` and its small part `small` (4 KiB pages beside a `pagemap` of
    /// compound folios), not yet reachable by anyone; `pool` counts the device's kernel pool
    /// alongside.
    pub(crate) fn new(
        dev: &'bound Device,
        pagemap: Pin<KBox<P2pPagemap>>,
        small: Option<Pin<KBox<P2pPagemap>>>,
        pool: Option<PoolCounters>,
        info: StaticInfo,
    ) -> Result<Self> {
        if small.as_ref().is_some_and(|small| small.order() != 0) {
            return Err(EINVAL);
        }
        let pagemap_ptr = NonNull::from(&*pagemap);
        let small_ptr = small.as_deref().map(NonNull::from);
        let holds = match pagemap.order() {
            0 => None,
            order => Some(FolioHolds::new(pagemap.pfns().1 >> order)?),
        };
        let shared = Arc::pin_init(
            try_pin_init!(Shared {
                inner <- new_mutex!(Inner {
                    // INVARIANT: points to the pagemap the `Region` owns from now on.
                    pagemap: Some(pagemap_ptr),
                    small: small_ptr,
                    pool,
                    accepting: true,
                }),
                info,
                inode: AnonInode::new()?,
                holds,
            }),
            GFP_KERNEL,
        )?;
        Ok(Self {
            dev,
            shared,
            pagemap,
            small,
        })
    }

    /// The state shared with open files.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The order of the region's folios.
    pub(crate) fn order(&self) -> u32 {
        self.pagemap.order()
    }

    /// Pages of the region out now.
    pub(crate) fn outstanding(&self) -> u64 {
        self.pagemaps()
            .iter()
            .map(|pagemap| pagemap.owner().stats().outstanding)
            .sum()
    }

    fn pagemaps(&self) -> Pagemaps<'_> {
        Pagemaps {
            main: &self.pagemap,
            small: self.small.as_deref(),
        }
    }

    /// Revokes the region: no further `mmap` or pin reaches the pages, every user mapping is
    /// unmapped, and this waits until every page handed out has come back, logging while it
    /// waits. Returns the milliseconds it waited. Idempotent.
    pub(crate) fn revoke(&self) -> u64 {
        self.shared.inner.lock().accepting = false;
        self.pagemaps()
            .iter()
            .map(|pagemap| pagemap.owner().drain(self.dev, || self.shared.zap()))
            .sum()
    }
}

impl Drop for Region<'_> {
    fn drop(&mut self) {
        self.revoke();
        let mut inner = self.shared.inner.lock();
        inner.pagemap = None;
        inner.small = None;
        inner.pool = None;
        // Then the pagemaps are dropped: `memunmap_pages()` finds no page out.
    }
}

/// `/dev/p2pmemN`, serving a [`Region`]'s shared state until [`Cdev::remove`] or its drop.
///
/// The node is removed at the start of unbind, so that its removal (a `device_del()` and the
/// devtmpfs round trip) runs while revoked users let go and I/O in flight completes, instead of
/// after the last page came back. Open files do not need the node: they keep their own
/// reference to the [`Shared`] state.
#[pin_data]
pub(crate) struct Cdev {
    #[pin]
    node: Mutex<Option<Pin<KBox<CdevNode>>>>,
}

/// The registered misc device and what its `open` gives a new file.
#[pin_data]
struct CdevNode {
    #[pin]
    registration: MiscDeviceRegistration<P2pmemFile>,
    shared: Arc<Shared>,
    number: DeviceNumber,
}

impl Cdev {
    /// Takes the next free name and returns it with the initialiser that registers
    /// `/dev/<name>` serving `shared`: userspace can open it as soon as that has run.
    pub(crate) fn new(shared: Arc<Shared>) -> Result<(&'static CStr, impl PinInit<Self, Error>)> {
        let number = DeviceNumber::take()?;
        let name = NAMES[number.0];
        let node = try_pin_init!(CdevNode {
            shared,
            number,
            registration <- MiscDeviceRegistration::register(MiscDeviceOptions { name }),
        });
        Ok((
            name,
            try_pin_init!(Self {
                node <- new_mutex!(Some(KBox::pin_init(node, GFP_KERNEL)?)),
            }),
        ))
    }

    /// Deregisters `/dev/p2pmemN`: once this returns no `open` runs or will run, and the name
    /// is free for another device. Files already open keep working on their [`Shared`] state.
    pub(crate) fn remove(&self) {
        let node = self.node.lock().take();
        // `misc_deregister()`, outside the lock.
        drop(node);
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
        // pinned `CdevNode` (it is only registered by `Cdev::new`), and the node outlives
        // `open`: `misc_deregister()`, in its drop, waits for `misc_open()` to return.
        let node = unsafe {
            &*kernel::container_of!(core::ptr::from_ref(misc).cast_mut(), CdevNode, registration)
        };
        node.shared.inode.adopt(file);
        if node.shared.holds.is_some() {
            // Mappings of 2 MiB and more start on a PMD boundary.
            // SAFETY: `file` is being opened by `misc_open()`, with our miscdevice's
            // file_operations, which the shim copies.
            kernel::error::to_result(unsafe {
                p2p_bindings::p2pmem_file_align_mappings(file.as_ptr())
            })?;
        }
        Ok(KBox::new(
            Self {
                shared: node.shared.clone(),
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
        me.shared
            .with_accepting_pagemaps(|pagemaps| match (&me.shared.holds, pagemaps.small) {
                (Some(holds), _) if fault_map::fits_folios(vma) => {
                    fault_map::map_folios(vma, pagemaps.main, holds)
                }
                (Some(_), Some(small)) => small.map_into(vma),
                (Some(_), None) => Err(EINVAL),
                (None, _) => pagemaps.main.map_into(vma),
            })
    }

    fn ioctl(me: &Self, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            IOCTL_INFO | IOCTL_INFO_V1 => {
                let info = me.shared.info()?;
                let size = if cmd == IOCTL_INFO {
                    size_of_val(&info)
                } else {
                    INFO_V1_SIZE
                };
                // The first `size` bytes: all of it, or what a 0.2.0 caller knows of.
                let bytes = info.as_bytes().get(..size).ok_or(EINVAL)?;
                UserSlice::new(UserPtr::from_addr(arg), size)
                    .writer()
                    .write_slice(bytes)?;
                Ok(0)
            }
            IOCTL_PIN if me.shared.info.test_interfaces => {
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
            IOCTL_TRACKER_TEST if me.shared.info.test_interfaces => {
                let (mut reader, mut writer) = UserSlice::new(
                    UserPtr::from_addr(arg),
                    size_of::<p2p_bindings::p2pmem_tracker_test>(),
                )
                .reader_writer();
                let mut test: p2p_bindings::p2pmem_tracker_test = reader.read()?;
                let pages = usize::try_from(test.pages).map_err(|_| EINVAL)?;
                let bad_frees = usize::try_from(test.bad_frees).map_err(|_| EINVAL)?;
                let (bitmap_bytes, free_pages) = Tracker::test_build(pages, bad_frees)?;
                test.bitmap_bytes = bitmap_bytes as u64;
                test.free_pages = free_pages;
                writer.write(&test)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}
