// SPDX-License-Identifier: GPL-2.0

//! The `ids=` parameter: vfio-pci's syntax, every malformed entry refused with its position and
//! reason, and a round trip of every well-formed ID through its text.

use p2pmem_host_tests::pci_ids::*;
use proptest::prelude::*;

mod common;
use common::{run, Counter};

fn id(vendor: u32, device: u32, subvendor: u32, subdevice: u32, class: u32, mask: u32) -> DynId {
    DynId {
        vendor,
        device,
        subvendor,
        subdevice,
        class,
        class_mask: mask,
    }
}

fn all(ids: &str) -> Result<Vec<DynId>, IdsError<'_>> {
    parse(ids).collect()
}

#[test]
fn omitted_fields_take_vfio_pcis_defaults() {
    assert_eq!(
        all("1b36:0010"),
        Ok(vec![id(0x1b36, 0x10, PCI_ANY_ID, PCI_ANY_ID, 0, 0)])
    );
    assert_eq!(
        all("1b36:0010:1af4"),
        Ok(vec![id(0x1b36, 0x10, 0x1af4, PCI_ANY_ID, 0, 0)])
    );
    assert_eq!(
        all("1b36:0010:1af4:1100"),
        Ok(vec![id(0x1b36, 0x10, 0x1af4, 0x1100, 0, 0)])
    );
    assert_eq!(
        all("ffffffff:ffffffff:ffffffff:ffffffff:010802:ffffff"),
        Ok(vec![id(
            PCI_ANY_ID, PCI_ANY_ID, PCI_ANY_ID, PCI_ANY_ID, 0x010802, 0xffffff
        )])
    );
    // Upper-case digits, short fields.
    assert_eq!(
        all("1AF4:1110:0:0:0:0"),
        Ok(vec![id(0x1af4, 0x1110, 0, 0, 0, 0)])
    );
}

#[test]
fn lists_keep_their_order_and_skip_empty_entries() {
    assert_eq!(all(""), Ok(vec![]));
    assert_eq!(validate(""), Ok(0));
    assert_eq!(validate(",,"), Ok(0));
    let two = all(",1b36:0010,,1af4:1110,").unwrap();
    assert_eq!(
        two,
        vec![
            id(0x1b36, 0x10, PCI_ANY_ID, PCI_ANY_ID, 0, 0),
            id(0x1af4, 0x1110, PCI_ANY_ID, PCI_ANY_ID, 0, 0)
        ]
    );
    assert_eq!(validate(",1b36:0010,,1af4:1110,"), Ok(2));
}

#[test]
fn malformed_entries_are_named_with_their_reason() {
    let cases: &[(&str, usize, &str, IdsErrorKind)] = &[
        ("1b36", 1, "1b36", IdsErrorKind::TooFewFields),
        (
            "1b36:0010:1:2:3:4:5",
            1,
            "1b36:0010:1:2:3:4:5",
            IdsErrorKind::TooManyFields,
        ),
        ("1b36:zz", 1, "1b36:zz", IdsErrorKind::NotHex("device")),
        ("1b36:", 1, "1b36:", IdsErrorKind::NotHex("device")),
        (":0010", 1, ":0010", IdsErrorKind::NotHex("vendor")),
        ("0x1b36:10", 1, "0x1b36:10", IdsErrorKind::NotHex("vendor")),
        ("+1b36:10", 1, "+1b36:10", IdsErrorKind::NotHex("vendor")),
        (" 1b36:10", 1, " 1b36:10", IdsErrorKind::NotHex("vendor")),
        (
            "1b36:10:1af4:100000000",
            1,
            "1b36:10:1af4:100000000",
            IdsErrorKind::NotHex("subdevice"),
        ),
        (
            "10000:0010",
            1,
            "10000:0010",
            IdsErrorKind::OutOfRange("vendor", 0x10000),
        ),
        (
            "1b36:fffffffe",
            1,
            "1b36:fffffffe",
            IdsErrorKind::OutOfRange("device", 0xffff_fffe),
        ),
        (
            "1b36:10:ffffffff:ffffffff:1000000:ffffff",
            1,
            "1b36:10:ffffffff:ffffffff:1000000:ffffff",
            IdsErrorKind::OutOfRange("class", 0x100_0000),
        ),
        (
            "1b36:10:ffffffff:ffffffff:010802:ffffffff",
            1,
            "1b36:10:ffffffff:ffffffff:010802:ffffffff",
            IdsErrorKind::OutOfRange("class_mask", 0xffff_ffff),
        ),
        (
            "1b36:10:ffffffff:ffffffff:010802",
            1,
            "1b36:10:ffffffff:ffffffff:010802",
            IdsErrorKind::ClassOutsideMask {
                class: 0x010802,
                class_mask: 0,
            },
        ),
        (
            "1b36:10:ffffffff:ffffffff:010802:ffff00",
            1,
            "1b36:10:ffffffff:ffffffff:010802:ffff00",
            IdsErrorKind::ClassOutsideMask {
                class: 0x010802,
                class_mask: 0xffff00,
            },
        ),
        (
            "ffffffff:ffffffff",
            1,
            "ffffffff:ffffffff",
            IdsErrorKind::MatchesEverything,
        ),
        // The position counts empty entries; the first bad entry is the one named.
        (
            "1af4:1110,,1b36:x,zz",
            3,
            "1b36:x",
            IdsErrorKind::NotHex("device"),
        ),
    ];
    for &(ids, index, entry, kind) in cases {
        let want = IdsError { index, entry, kind };
        assert_eq!(validate(ids), Err(want), "{ids}");
        assert_eq!(all(ids), Err(want), "{ids}");
    }
}

#[test]
fn errors_read_as_one_clear_line() {
    let text = |ids: &str| validate(ids).unwrap_err().to_string();
    assert_eq!(
        text("1b36:zz"),
        "ids: entry 1 \"1b36:zz\": device is not a hexadecimal number of 1-8 digits"
    );
    assert_eq!(
        text("1af4:1110,10000:10"),
        "ids: entry 2 \"10000:10\": vendor 0x10000 is out of range (at most 0xffff or ffffffff)"
    );
    assert_eq!(
        text("1:2:3:4:1000000:0"),
        "ids: entry 1 \"1:2:3:4:1000000:0\": class 0x1000000 is out of range (at most 0xffffff)"
    );
    assert_eq!(
        text("1:2:3:4:010802:ffff00"),
        "ids: entry 1 \"1:2:3:4:010802:ffff00\": class 0x010802 has bits outside class_mask 0xffff00"
    );
    assert_eq!(
        text("ffffffff:ffffffff"),
        "ids: entry 1 \"ffffffff:ffffffff\": matches every PCI device"
    );
    assert!(text("1").contains("too few fields"));
    assert!(text("1:2:3:4:5:6:7").contains("too many fields"));
}

/// Any ID field: 16 bits or `PCI_ANY_ID`.
fn id_field() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..=0xffff, Just(PCI_ANY_ID)]
}

/// A well-formed ID, and how many of its fields to write (2-6; defaults fill the rest).
fn written_id() -> impl Strategy<Value = (DynId, usize)> {
    (
        id_field(),
        id_field(),
        id_field(),
        id_field(),
        0u32..=CLASS_MAX,
        0u32..=CLASS_MAX,
        2usize..=6,
    )
        .prop_map(|(v, d, sv, sd, class, mask, n)| {
            let mut id = id(v, d, sv, sd, class & mask, mask);
            if n < 3 {
                id.subvendor = PCI_ANY_ID;
            }
            if n < 4 {
                id.subdevice = PCI_ANY_ID;
            }
            if n < 6 {
                id.class = 0;
                id.class_mask = 0;
            }
            (id, n)
        })
}

fn text_of(id: &DynId, n: usize) -> String {
    let fields = [
        id.vendor,
        id.device,
        id.subvendor,
        id.subdevice,
        id.class,
        id.class_mask,
    ];
    fields[..n]
        .iter()
        .map(|f| format!("{f:x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Every well-formed list parses back to the IDs it was written from, in order, or (for an ID
/// that would match every device) is refused at that entry.
#[test]
fn well_formed_lists_round_trip() {
    let (parsed, refused) = (Counter::default(), Counter::default());
    run(proptest::collection::vec(written_id(), 0..8), |ids| {
        let text = ids
            .iter()
            .map(|(id, n)| text_of(id, *n))
            .collect::<Vec<_>>()
            .join(",");
        let everything = ids.iter().position(|(id, _)| {
            id.vendor == PCI_ANY_ID && id.device == PCI_ANY_ID && id.class_mask == 0
        });
        match everything {
            None => {
                parsed.hit();
                let want: Vec<DynId> = ids.iter().map(|(id, _)| *id).collect();
                prop_assert_eq!(all(&text), Ok(want));
                prop_assert_eq!(validate(&text), Ok(ids.len()));
            }
            Some(i) => {
                refused.hit();
                let err = validate(&text).unwrap_err();
                prop_assert_eq!(err.index, i + 1);
                prop_assert_eq!(err.kind, IdsErrorKind::MatchesEverything);
            }
        }
        Ok(())
    });
    // Both branches ran: the property checked lists that parse and lists refused.
    assert!(parsed.get() > 0 && refused.get() > 0);
}
