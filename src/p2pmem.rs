// SPDX-License-Identifier: GPL-2.0

//! p2pmem: PCI BAR memory as PCI peer-to-peer DMA memory.
//!
//! A PCI driver for devices with memory behind a BAR: ivshmem by ID, anything else (an NVMe
//! controller's CMB, say) through `driver_override`. This file wires the module together; each
//! concern lives in its own module:
//!
//! - [`layout`]: which window of which BAR is donated (kernel-independent, host-tested);
//! - [`pci_bar`]: BAR flags and the claim on the donated BAR;
//! - [`p2pdma`]: the kernel's P2PDMA provider of that BAR;
//! - [`bindings`]: the module's own bindgen output and C shim.

use kernel::{device::Core, driver, pci, prelude::*};

mod bindings;
mod layout;
mod p2pdma;
mod pci_bar;

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
    },
}

/// The window the module parameters ask for.
fn requested_window() -> Result<layout::Request, layout::LayoutError> {
    layout::Request::from_params(
        i64::from(*module_parameters::bar.value()),
        *module_parameters::offset.value(),
        *module_parameters::size.value(),
    )
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

/// What p2pmem holds for a bound device. Dropped after `unbind`, before devres is released.
struct P2pmemDevice<'bound> {
    pdev: &'bound pci::Device,
    window: layout::Window,
    _claim: pci_bar::BarClaim<'bound>,
    _provider: p2pdma::Provider<'bound>,
}

impl pci::Driver for P2pmemDriver {
    type IdInfo = ();
    type Data<'bound> = P2pmemDevice<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let bars = pci_bar::bar_infos(pdev);
        let window = requested_window()
            .and_then(|request| request.choose(&bars))
            .inspect_err(|err| dev_err!(pdev, "cannot donate memory: {}\n", err))
            .map_err(|err| layout_errno(&err))?;
        let bar = bars[usize::from(window.bar)];

        pdev.enable_device_mem()?;
        pdev.set_master();
        let claim = pci_bar::BarClaim::new(pdev, window.bar, c"p2pmem")
            .inspect_err(|err| dev_err!(pdev, "BAR {} is busy: {:?}\n", window.bar, err))?;
        let provider = p2pdma::Provider::new(pdev, window.bar)
            .inspect_err(|err| dev_err!(pdev, "no P2PDMA provider: {:?}\n", err))?;

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

        Ok(P2pmemDevice {
            pdev,
            window,
            _claim: claim,
            _provider: provider,
        })
    }
}

impl Drop for P2pmemDevice<'_> {
    fn drop(&mut self) {
        dev_info!(
            self.pdev,
            "released BAR {} ({} MiB)\n",
            self.window.bar,
            self.window.size >> 20
        );
    }
}

/// The module: checks its parameters, then registers the PCI driver.
#[pin_data]
struct P2pmemModule {
    #[pin]
    driver: driver::Registration<pci::Adapter<P2pmemDriver>>,
}

impl kernel::InPlaceModule for P2pmemModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            driver <- {
                // Parameters that are wrong on any device fail the load itself.
                requested_window()
                    .inspect_err(|err| pr_err!("{}\n", err))
                    .map_err(|err| layout_errno(&err))?;
                driver::Registration::new(c"p2pmem", module)
            },
        })
    }
}
