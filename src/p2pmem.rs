// SPDX-License-Identifier: GPL-2.0

//! p2pmem: PCI BAR memory as PCI peer-to-peer DMA memory.
//!
//! A PCI driver for devices with memory behind a BAR: ivshmem by ID, anything else (an NVMe
//! controller's CMB, say) through `driver_override`. This file wires the module together; each
//! concern lives in its own module:
//!
//! - [`layout`] decides which window of which BAR is donated, and how it is split between the
//!   kernel's P2PDMA pool and our own region (kernel-independent, host-tested);
//! - [`pci_bar`] reads BAR flags and claims the donated BAR;
//! - [`pci_ids`] (kernel-independent) parses the `ids=` parameter, [`pci_dynid`] adds those IDs
//!   to the driver;
//! - [`p2pdma`] wraps the kernel's P2PDMA provider of that BAR, its pool, our pagemap's layout;
//! - [`pgmap`] is the safe `struct dev_pagemap` abstraction, [`fault_map`] maps its compound
//!   folios at fault time (PMDs);
//! - [`region`] (kernel-independent) and [`tracker`] allocate pages and gate unbind;
//! - [`nvme_cmb`] finds and enables the Controller Memory Buffer of an NVMe controller;
//! - [`pin_flags`] (kernel-independent) and [`gup`] pin user pages, never with
//!   `FOLL_PCI_P2PDMA | FOLL_LONGTERM`;
//! - [`revoke`] tells long-term in-kernel users to let go before unbind waits;
//! - [`cdev`] serves `/dev/p2pmemN`, [`sysfs`] its counters on the PCI device;
//! - [`unbind_clock`] times each step of an unbind;
//! - [`bindings`] holds the module's own bindgen output for the C shim.

use kernel::{
    device::{self, Core},
    driver, pci,
    prelude::*,
    sync::Arc,
    time::{Instant, Monotonic},
};
use unbind_clock::{Mark, Step, UnbindClock};

mod bindings;
mod cdev;
mod fault_map;
mod gup;
mod nvme_cmb;
mod p2pdma;
mod pci_bar;
mod pci_dynid;
mod pgmap;
mod sysfs;
mod tracker;
mod unbind_clock;
mod waitq;

// Kernel-independent: their items are `pub` for the host test crate (`tools/testing/host`).
#[expect(unreachable_pub)]
mod layout;
#[expect(unreachable_pub)]
mod pci_ids;
#[expect(unreachable_pub)]
mod pin_flags;
#[expect(unreachable_pub)]
mod region;
mod revoke;

module! {
    type: P2pmemModule,
    name: "p2pmem",
    authors: ["p2pmem developers"],
    description: "PCI BAR memory as PCI peer-to-peer DMA memory",
    license: "GPL",
    params: {
        bar: i32 {
            default: -1,
            description: "BAR to donate (0-5); -1 picks the largest memory BAR",
        },
        offset: u64 {
            default: 0,
            description: "Offset of the donated window in the BAR (a multiple of 2 MiB)",
        },
        size: u64 {
            default: 0,
            description: "Size of the donated window (a multiple of 2 MiB); 0 is the rest of the BAR",
        },
        pool_size: i64 {
            default: -1,
            description: "Bytes of the window for the kernel's P2PDMA pool (nvmet, sysfs p2pmem/); -1: 2 MiB or 1/8, 0: none",
        },
        huge_pages: bool {
            default: false,
            description: "Register the region as 2 MiB folios, mapped with PMDs at fault time, for mappings on 2 MiB boundaries; others get 4 KiB pages (small_pages_size)",
        },
        small_pages_size: i64 {
            default: -1,
            description: "With huge_pages: bytes at the end of the region kept as 4 KiB pages, for mappings folios cannot serve; -1: 2 MiB or 1/8, 0: none",
        },
        test_interfaces: bool {
            default: false,
            description: "Serve the selftests' ioctls (include/p2pmem_test_uapi.h); never needed in production",
        },
    },
}

/// The window the module parameters ask for.
fn requested_window() -> Result<layout::Request, layout::LayoutError> {
    layout::Request::from_params(
        i64::from(module_parameters::bar.value()),
        module_parameters::offset.value(),
        module_parameters::size.value(),
    )
}

/// The window and its split on a device with these BARs, inside `cmb` for an NVMe controller,
/// and the bytes at the end of the region kept as 4 KiB pages (`small_pages_size`; 0 when the
/// whole region is 4 KiB pages).
fn layout_for(
    bars: &[layout::BarInfo; layout::NUM_BARS],
    cmb: Option<Result<layout::Window, layout::LayoutError>>,
) -> Result<(layout::Window, layout::Split, u64), layout::LayoutError> {
    let request = requested_window()?;
    let window = match cmb {
        Some(cmb) => request.choose_in_cmb(&cmb?)?,
        None => request.choose(bars)?,
    };
    let split = window.split(module_parameters::pool_size.value())?;
    let small = if module_parameters::huge_pages.value() {
        split.small_pages(module_parameters::small_pages_size.value())?
    } else {
        0
    };
    Ok((window, split, small))
}

impl kernel::fmt::Display for layout::LayoutError {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl kernel::fmt::Display for pci_ids::IdsError<'_> {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// The 4 KiB part of a region of folios, for the bind's log line: nothing when there is none.
struct SmallPart(u64);

impl kernel::fmt::Display for SmallPart {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        match self.0 {
            0 => Ok(()),
            bytes => write!(f, ", {} MiB in 4 KiB pages", bytes >> 20),
        }
    }
}

/// The errno a layout error stands for.
fn layout_errno(err: &layout::LayoutError) -> Error {
    if err.is_no_device() {
        ENODEV
    } else {
        EINVAL
    }
}

/// The PCI vendor of ivshmem (Red Hat, Inc., formerly Qumranet).
const IVSHMEM_VENDOR: pci::Vendor = pci::Vendor::REDHAT_QUMRANET;
/// ivshmem's device ID.
const IVSHMEM_DEVICE: u32 = 0x1110;

kernel::pci_device_table!(
    PCI_TABLE,
    <P2pmemDriver as pci::Driver>::IdInfo,
    [(pci::DeviceId::from_id(IVSHMEM_VENDOR, IVSHMEM_DEVICE), ())]
);

/// The PCI driver.
struct P2pmemDriver;

/// What p2pmem holds for a bound device, built in place by probe and dropped after `unbind`.
///
/// Fields drop in declaration order, the reverse of how probe sets them up: userspace and
/// in-kernel users lose their way in first (`published`, `cdev`, which `unbind()` has withdrawn
/// already), the pages go next (`region`, which drains before `memunmap_pages()`), then the
/// claims on the device. The kernel's P2PDMA state (the provider, the pool) is devres and goes
/// after all of this. Each `_*ed` mark stamps the end of the field's drop before it on `clock`.
#[pin_data(PinnedDrop)]
struct P2pmemDevice<'bound> {
    pdev: &'bound pci::Device<device::Bound>,
    window: layout::Window,
    clock: Arc<UnbindClock>,
    /// The pool published and registrations taken: the last step of probe.
    published: Published<'bound>,
    /// `/dev/p2pmemN`, registered second to last; removed by `unbind()`.
    #[pin]
    cdev: cdev::Cdev,
    _sysfs: sysfs::SysfsGroup<'bound>,
    _sysfs_removed: Mark,
    region: cdev::Region<'bound>,
    _region_unmapped: Mark,
    pool: Option<p2pdma::KernelPool<'bound>>,
    _claim: pci_bar::BarClaim<'bound>,
    _cmb: Option<nvme_cmb::CmbControl<'bound>>,
    _enabled: pci_bar::MemEnabled<'bound>,
    _provider: p2pdma::Provider<'bound>,
    _claims_released: Mark,
}

/// The kernel pool published and revoke registrations taken, from the end of probe until the
/// start of unbind (or drop).
struct Published<'bound> {
    pdev: &'bound pci::Device<device::Bound>,
    pool: bool,
    revoke: revoke::RevokeList,
}

impl<'bound> Published<'bound> {
    /// Publishes the kernel pool of `pdev` (if it has one, `pool`) and opens `revoke` to
    /// registrations. Cannot fail: probe is past every step that can.
    fn new(
        pdev: &'bound pci::Device<device::Bound>,
        pool: bool,
        revoke: revoke::RevokeList,
    ) -> Self {
        if pool {
            p2pdma::set_published(pdev, true);
        }
        revoke.open();
        Self { pdev, pool, revoke }
    }

    /// Withdraws the pool and stops taking registrations. Idempotent.
    fn withdraw(&self) {
        if self.pool {
            p2pdma::set_published(self.pdev, false);
        }
        self.revoke.close();
    }
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        self.withdraw();
    }
}

impl P2pmemDriver {
    /// Probe: sets up every part of a binding of `pdev`, and returns the initialiser that moves
    /// them into place and publishes the device, last.
    fn setup<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
    ) -> Result<impl PinInit<P2pmemDevice<'bound>, Error> + 'bound> {
        // The devres marks bracket the kernel's P2PDMA teardown: the first one registered is
        // released last, after `pci_p2pdma_release()`.
        let clock = UnbindClock::new()?;
        Mark::register(pdev.as_ref(), &clock, Step::DevresEnd)?;
        // A memory target only: decoding on, bus mastering off.
        let enabled = pci_bar::MemEnabled::new(pdev)?;

        let bars = pci_bar::bar_infos(pdev);
        // An NVMe controller donates exactly its CMB, once enabled; anything else a BAR.
        let (cmb, cmb_window) = if nvme_cmb::is_nvme(pdev) {
            let (control, window) = nvme_cmb::enable(pdev, &bars)?;
            (Some(control), Some(window))
        } else {
            (None, None)
        };
        let (window, split, small) = layout_for(&bars, cmb_window)
            .inspect_err(|err| dev_err!(pdev, "cannot donate memory: {}\n", err))
            .map_err(|err| layout_errno(&err))?;
        let bar = bars[usize::from(window.bar)];

        let claim = pci_bar::BarClaim::new(pdev, window.bar, c"p2pmem")
            .inspect_err(|err| dev_err!(pdev, "BAR {} is busy: {:?}\n", window.bar, err))?;
        let provider = p2pdma::Provider::new(pdev, window.bar)
            .inspect_err(|err| dev_err!(pdev, "no P2PDMA provider: {:?}\n", err))?;
        // Released after the pool's devres (registered next), before `pci_p2pdma_release()`.
        Mark::register(pdev.as_ref(), &clock, Step::PoolUnmapped)?;

        // The kernel pool exists from here, unpublished: nobody can find it yet.
        let pool_start = Instant::<Monotonic>::now();
        let pool = if split.pool > 0 {
            Some(
                p2pdma::KernelPool::add(pdev, window.bar, split.pool, window.offset)
                    .inspect_err(|err| dev_err!(pdev, "kernel P2PDMA pool: {:?}\n", err))?,
            )
        } else {
            None
        };
        let pool_us = pool_start.elapsed().as_micros_ceil();
        // The last devres of the binding: released first.
        Mark::register(pdev.as_ref(), &clock, Step::DevresBegin)?;
        p2pdma::verify_pagemap_layout(pdev, &provider, pool.as_ref())?;
        let order = if module_parameters::huge_pages.value() {
            fault_map::PMD_ORDER
        } else {
            0
        };
        let folio_bytes = split.region_size - small;
        let region_start = Instant::<Monotonic>::now();
        let pagemap = KBox::pin_init(
            p2pdma::p2p_pagemap(
                pdev,
                &provider,
                window.bar,
                split.region_offset,
                folio_bytes,
                order,
            )?,
            GFP_KERNEL,
        )
        .inspect_err(|err| dev_err!(pdev, "memremap_pages: {:?}\n", err))?;
        let small_pagemap = if small > 0 {
            Some(
                KBox::pin_init(
                    p2pdma::p2p_pagemap(
                        pdev,
                        &provider,
                        window.bar,
                        split.region_offset + folio_bytes,
                        small,
                        0,
                    )?,
                    GFP_KERNEL,
                )
                .inspect_err(|err| dev_err!(pdev, "memremap_pages (4 KiB part): {:?}\n", err))?,
            )
        } else {
            None
        };
        let region_us = region_start.elapsed().as_micros_ceil();
        let info = cdev::StaticInfo {
            bar: window.bar,
            region_offset: split.region_offset,
            pool_bytes: split.pool,
            bus_offset: provider.bus_offset(),
            pci_dev: cdev::pci_name(pdev.as_ref().name()),
            test_interfaces: module_parameters::test_interfaces.value(),
        };
        let region = cdev::Region::new(
            pdev.as_ref(),
            pagemap,
            small_pagemap,
            pool.as_ref().map(|pool| pool.counter_handle()),
            info,
        )?;
        let sysfs = sysfs::SysfsGroup::new(pdev, region.shared().clone())?;
        let revoke = revoke::RevokeList::new(pdev)?;
        let (cdev_name, cdev) = cdev::Cdev::new(region.shared().clone())?;
        let has_pool = pool.is_some();
        // Only the `Bound` view of the device goes into the initialiser (it outlives the `Core`
        // one); `try_pin_init!` would also shadow `pdev` with the field being initialised.
        let bound: &'bound pci::Device<device::Bound> = pdev;

        dev_info!(
            pdev,
            "BAR {} [mem {:#x}-{:#x}{}] {} MiB; donating {} MiB at offset {:#x}; provider bus offset {:#x}\n",
            window.bar,
            bar.start,
            bar.start + bar.len - 1,
            if bar.prefetch { " pref" } else { "" },
            bar.len >> 20,
            window.size >> 20,
            window.offset,
            provider.bus_offset(),
        );
        dev_info!(
            pdev,
            "{}: {} MiB of P2PDMA pages in {} KiB folios{}; kernel pool {} MiB{}; registered in {} us (kernel pool {} us)\n",
            cdev_name,
            folio_bytes >> 20,
            (kernel::page::PAGE_SIZE << region.order()) >> 10,
            SmallPart(small),
            split.pool >> 20,
            if has_pool { " (published)" } else { "" },
            region_us,
            pool_us,
        );

        // The fields in the order they are set up; the last two publish.
        let dev = pdev.as_ref();
        let claims_released = Mark::new(dev, &clock, Step::ClaimsReleased);
        let region_unmapped = Mark::new(dev, &clock, Step::RegionUnmapped);
        let sysfs_removed = Mark::new(dev, &clock, Step::SysfsRemoved);
        Ok(try_pin_init!(P2pmemDevice {
            pdev: bound,
            window,
            _claims_released: claims_released,
            _provider: provider,
            _enabled: enabled,
            _cmb: cmb,
            _claim: claim,
            pool,
            _region_unmapped: region_unmapped,
            region,
            _sysfs_removed: sysfs_removed,
            _sysfs: sysfs,
            cdev <- cdev,
            published: Published::new(bound, has_pool, revoke),
            clock,
        }))
    }
}

impl pci::Driver for P2pmemDriver {
    type IdInfo = ();
    type Data<'bound> = P2pmemDevice<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        // Everything runs in the initialiser, in the memory the driver core keeps the data in:
        // once it runs, no allocation can fail after `/dev/p2pmemN` and the pool are published.
        pin_init::pin_init_scope(move || Self::setup(pdev))
    }

    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        let clock = &this.clock;
        clock.stamp(Step::Begin);
        // In-kernel users find the pool no more, and long-term ones are told to let go.
        this.published.withdraw();
        let users = this.published.revoke.revoke_all();
        clock.stamp(Step::Unpublished);
        // Userspace finds `/dev/p2pmemN` no more (files already open keep their state), while
        // the users let go and I/O in flight completes.
        this.cdev.remove();
        clock.stamp(Step::CdevRemoved);
        this.published.revoke.wait_released();
        clock.stamp(Step::UsersRevoked);
        let pool_ms = this.pool.as_ref().map_or(0, |pool| pool.drain());
        clock.stamp(Step::PoolDrained);
        if users > 0 || pool_ms > 0 {
            dev_info!(
                pdev,
                "unbind: revoked {} in-kernel users; kernel pool whole after {} ms\n",
                users,
                pool_ms
            );
        }
        // Then userspace: no new mappings, every mapping zapped, every page back.
        let outstanding = this.region.outstanding();
        let waited_ms = this.region.revoke();
        clock.stamp(Step::RegionDrained);
        dev_info!(
            pdev,
            "unbind: {} pages were out, all back after {} ms\n",
            outstanding,
            waited_ms
        );
    }
}

#[pinned_drop]
impl PinnedDrop for P2pmemDevice<'_> {
    fn drop(self: Pin<&mut Self>) {
        self.clock.stamp(Step::DataDropped);
        dev_info!(
            self.pdev,
            "released BAR {} ({} MiB)\n",
            self.window.bar,
            self.window.size >> 20
        );
    }
}

/// The module: checks its parameters, registers the PCI driver, then adds the `ids=` IDs to it.
#[pin_data]
struct P2pmemModule {
    #[pin]
    driver: driver::Registration<pci::Adapter<P2pmemDriver>>,
}

impl kernel::InPlaceModule for P2pmemModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            driver <- {
                // Parameters that are wrong on any device fail the load itself, before the
                // driver exists.
                requested_window()
                    .inspect_err(|err| pr_err!("{}\n", err))
                    .map_err(|err| layout_errno(&err))?;
                let ids = pci_dynid::ids_param()
                    .inspect_err(|_| pr_err!("ids: not ASCII\n"))?;
                pci_ids::validate(ids)
                    .inspect_err(|err| pr_err!("{}\n", err))
                    .map_err(|_| EINVAL)?;
                driver::Registration::new(c"p2pmem", module)
            },
        })
        // The IDs, in order: each binds the devices it matches that have no driver. A failure
        // (ENOMEM) drops the registration, and with it the IDs added so far.
        .pin_chain(|this| {
            for id in pci_ids::parse(pci_dynid::ids_param()?) {
                let id = id.map_err(|_| EINVAL)?;
                pci_dynid::add(&this.driver, &id).inspect_err(|err| {
                    pr_err!(
                        "ids: cannot add {:04x}:{:04x}: {:?}\n",
                        id.vendor,
                        id.device,
                        err
                    )
                })?;
            }
            Ok(())
        })
    }
}
