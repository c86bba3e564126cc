// SPDX-License-Identifier: GPL-2.0

//! The `ids=` module parameter: PCI IDs the driver binds besides its own table, in vfio-pci's
//! syntax.
//!
//! `ids=` is a comma-separated list of `vendor:device[:subvendor[:subdevice[:class[:class_mask]]]]`,
//! each field hexadecimal (`ffffffff`, `PCI_ANY_ID`, matches anything), the omitted subvendor
//! and subdevice `PCI_ANY_ID`, the omitted class and mask 0 (any class). Empty entries are
//! skipped, as vfio-pci skips them (`ids=1b36:0010,` is one ID). Unlike vfio-pci, which skips
//! what it cannot parse, a malformed entry fails the load: [`IdsError`] says which one and why.
//!
//! Kernel-independent: this file only uses `core`, so the module and the host test crate
//! (`tools/testing/host`) compile the same code.

use core::fmt;

/// `PCI_ANY_ID`: a vendor, device, subvendor or subdevice that matches every value.
pub const PCI_ANY_ID: u32 = !0;

/// The largest class code (24 bits: base class, subclass, programming interface).
pub const CLASS_MAX: u32 = 0xff_ffff;

/// One dynamic ID: the fields of `struct pci_device_id` that `pci_add_dynid()` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DynId {
    /// The vendor, or [`PCI_ANY_ID`].
    pub vendor: u32,
    /// The device, or [`PCI_ANY_ID`].
    pub device: u32,
    /// The subsystem vendor, or [`PCI_ANY_ID`].
    pub subvendor: u32,
    /// The subsystem device, or [`PCI_ANY_ID`].
    pub subdevice: u32,
    /// The class code, compared under `class_mask`.
    pub class: u32,
    /// The class bits that must match; 0 matches every class.
    pub class_mask: u32,
}

/// What is wrong with an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdsErrorKind {
    /// Fewer than two fields: vendor and device are required.
    TooFewFields,
    /// More than six fields.
    TooManyFields,
    /// A field is empty or not 1-8 hexadecimal digits.
    NotHex(&'static str),
    /// A field's value is out of range: over 0xffff (and not `ffffffff`) for an ID, over
    /// 0xffffff for a class or mask.
    OutOfRange(&'static str, u32),
    /// The class has bits the mask does not compare (a class with no mask, say): the class
    /// would be ignored.
    ClassOutsideMask {
        /// The class.
        class: u32,
        /// The mask.
        class_mask: u32,
    },
    /// Vendor and device are both `ffffffff` and the class is not compared: the entry would
    /// bind every PCI device without a driver.
    MatchesEverything,
}

/// A malformed entry of `ids=`: which one (counted from 1, empty entries included) and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdsError<'a> {
    /// The entry's position in the list, from 1.
    pub index: usize,
    /// The entry as given.
    pub entry: &'a str,
    /// What is wrong with it.
    pub kind: IdsErrorKind,
}

impl fmt::Display for IdsError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ids: entry {} \"{}\": ", self.index, self.entry)?;
        match self.kind {
            IdsErrorKind::TooFewFields => f.write_str(
                "too few fields (vendor:device[:subvendor[:subdevice[:class[:class_mask]]]])",
            ),
            IdsErrorKind::TooManyFields => f.write_str(
                "too many fields (vendor:device[:subvendor[:subdevice[:class[:class_mask]]]])",
            ),
            IdsErrorKind::NotHex(what) => {
                write!(f, "{what} is not a hexadecimal number of 1-8 digits")
            }
            IdsErrorKind::OutOfRange(what, value) => {
                let max = if what.starts_with("class") {
                    "0xffffff"
                } else {
                    "0xffff or ffffffff"
                };
                write!(f, "{what} {value:#x} is out of range (at most {max})")
            }
            IdsErrorKind::ClassOutsideMask { class, class_mask } => write!(
                f,
                "class {class:#08x} has bits outside class_mask {class_mask:#08x}"
            ),
            IdsErrorKind::MatchesEverything => f.write_str("matches every PCI device"),
        }
    }
}

/// The names of the fields, in order.
const FIELDS: [&str; 6] = [
    "vendor",
    "device",
    "subvendor",
    "subdevice",
    "class",
    "class_mask",
];

/// One hexadecimal field: 1-8 digits, no prefix, no sign.
fn parse_hex(field: &str, what: &'static str) -> Result<u32, IdsErrorKind> {
    if field.is_empty() || field.len() > 8 || !field.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IdsErrorKind::NotHex(what));
    }
    u32::from_str_radix(field, 16).map_err(|_| IdsErrorKind::NotHex(what))
}

/// Parses one non-empty entry.
fn parse_entry(entry: &str) -> Result<DynId, IdsErrorKind> {
    let mut values = [PCI_ANY_ID, PCI_ANY_ID, PCI_ANY_ID, PCI_ANY_ID, 0, 0];
    let mut count = 0;
    for field in entry.split(':') {
        let what = *FIELDS.get(count).ok_or(IdsErrorKind::TooManyFields)?;
        let value = parse_hex(field, what)?;
        let max = if count < 4 { 0xffff } else { CLASS_MAX };
        if value > max && !(count < 4 && value == PCI_ANY_ID) {
            return Err(IdsErrorKind::OutOfRange(what, value));
        }
        values[count] = value;
        count += 1;
    }
    if count < 2 {
        return Err(IdsErrorKind::TooFewFields);
    }
    let [vendor, device, subvendor, subdevice, class, class_mask] = values;
    if class & !class_mask != 0 {
        return Err(IdsErrorKind::ClassOutsideMask { class, class_mask });
    }
    if vendor == PCI_ANY_ID && device == PCI_ANY_ID && class_mask == 0 {
        return Err(IdsErrorKind::MatchesEverything);
    }
    Ok(DynId {
        vendor,
        device,
        subvendor,
        subdevice,
        class,
        class_mask,
    })
}

/// The entries of an `ids=` value, in order, empty ones skipped.
pub fn parse(ids: &str) -> impl Iterator<Item = Result<DynId, IdsError<'_>>> + '_ {
    ids.split(',')
        .enumerate()
        .filter(|(_, entry)| !entry.is_empty())
        .map(|(i, entry)| {
            parse_entry(entry).map_err(|kind| IdsError {
                index: i + 1,
                entry,
                kind,
            })
        })
}

/// Checks every entry of `ids`: the number of IDs, or the first malformed entry.
pub fn validate(ids: &str) -> Result<usize, IdsError<'_>> {
    parse(ids).try_fold(0, |n, id| id.map(|_| n + 1))
}
