// SPDX-License-Identifier: GPL-2.0

//! Binding by ID, as vfio-pci does: the `ids=` module parameter (declared in `src/shim.c`, since
//! the kernel crate's `module!` has no string parameters) and `pci_add_dynid()` on the driver,
//! which the kernel crate does not wrap. The parsing is [`crate::pci_ids`]'s.

use crate::{bindings as p2p_bindings, pci_ids::DynId};
use kernel::{driver, pci, prelude::*};

/// The value of the `ids=` parameter, as given at load (empty when not given).
pub(crate) fn ids_param() -> Result<&'static str> {
    // SAFETY: `p2pmem_ids_param()` returns the parameter's buffer, a `static` of `src/shim.c`:
    // zero-initialised, and filled by `param_set_copystring()`, which always NUL-terminates it
    // within its size. It is never written after the load (permission 0444), and it lives as long
    // as the module, so as long as any `'static` borrow this code can hold.
    let ids = unsafe { CStr::from_char_ptr(p2p_bindings::p2pmem_ids_param()) };
    ids.to_str().map_err(|_| EINVAL)
}

/// Adds `id` to the dynamic IDs of the PCI driver `registration` holds, which binds the devices
/// it matches that have no driver yet (their probe errors are the probe's, logged as usual).
/// The IDs go with the driver when it is unregistered.
///
/// The driver is found by the module's name, the name p2pmem registers it under: `registration`
/// must be that registration (`-ENODEV` otherwise).
pub(crate) fn add<T: pci::Driver + 'static>(
    registration: &driver::Registration<pci::Adapter<T>>,
    id: &DynId,
) -> Result {
    // The borrow is what keeps the driver registered for the call: a `Registration`
    // unregisters only when it is dropped, which this borrow excludes.
    let _ = registration;
    // SAFETY: `p2pmem_pci_add_dynid()` finds the driver by name with `driver_find()`, which
    // needs the caller to keep it registered while it is used: `registration` is borrowed for the
    // call. The driver found is checked to be this module's. The IDs are plain values.
    kernel::error::to_result(unsafe {
        p2p_bindings::p2pmem_pci_add_dynid(
            id.vendor,
            id.device,
            id.subvendor,
            id.subdevice,
            id.class,
            id.class_mask,
        )
    })
}
