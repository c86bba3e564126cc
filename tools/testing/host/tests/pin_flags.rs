// SPDX-License-Identifier: GPL-2.0

//! Pin flags: every valid request maps to GUP flags without FOLL_PCI_P2PDMA | FOLL_LONGTERM, and
//! the bad combination and unknown bits are refused. (That `PinFlags::long_term().p2pdma()` does
//! not compile is a `compile_fail` doctest in `src/pin_flags.rs`.)

use p2pmem_host_tests::pin_flags::*;
use proptest::prelude::*;

#[test]
fn typed_flags_give_the_gup_flags() {
    assert_eq!(PinFlags::short_term().foll(), 0);
    assert_eq!(PinFlags::short_term().write().foll(), FOLL_WRITE);
    assert_eq!(PinFlags::short_term().p2pdma().foll(), FOLL_PCI_P2PDMA);
    assert_eq!(
        PinFlags::short_term().write().p2pdma().foll(),
        FOLL_PCI_P2PDMA | FOLL_WRITE
    );
    assert_eq!(
        PinFlags::long_term().write().foll(),
        FOLL_LONGTERM | FOLL_WRITE
    );
}

#[test]
fn p2pdma_with_longterm_is_refused() {
    for write in [0, UAPI_PIN_WRITE] {
        assert_eq!(
            AnyPinFlags::from_uapi(UAPI_PIN_P2PDMA | UAPI_PIN_LONGTERM | write).unwrap_err(),
            PinFlagsError::P2pdmaLongterm
        );
    }
}

#[test]
fn unknown_bits_are_refused() {
    assert_eq!(
        AnyPinFlags::from_uapi(1 << 3).unwrap_err(),
        PinFlagsError::Unknown(1 << 3)
    );
    assert_eq!(
        AnyPinFlags::from_uapi(UAPI_PIN_P2PDMA | 1 << 31).unwrap_err(),
        PinFlagsError::Unknown(1 << 31)
    );
}

#[test]
fn each_valid_uapi_combination_maps_exactly() {
    let cases = [
        (0, 0),
        (UAPI_PIN_WRITE, FOLL_WRITE),
        (UAPI_PIN_P2PDMA, FOLL_PCI_P2PDMA),
        (
            UAPI_PIN_P2PDMA | UAPI_PIN_WRITE,
            FOLL_PCI_P2PDMA | FOLL_WRITE,
        ),
        (UAPI_PIN_LONGTERM, FOLL_LONGTERM),
        (
            UAPI_PIN_LONGTERM | UAPI_PIN_WRITE,
            FOLL_LONGTERM | FOLL_WRITE,
        ),
    ];
    for (uapi, foll) in cases {
        let flags = AnyPinFlags::from_uapi(uapi).unwrap();
        assert_eq!(flags.foll(), foll, "uapi {uapi:#x}");
        assert_eq!(flags.is_write(), uapi & UAPI_PIN_WRITE != 0);
    }
}

proptest! {
    /// No input, however built, reaches GUP with FOLL_PCI_P2PDMA and FOLL_LONGTERM together.
    #[test]
    fn no_input_yields_p2pdma_with_longterm(uapi in any::<u32>()) {
        if let Ok(flags) = AnyPinFlags::from_uapi(uapi) {
            prop_assert_ne!(flags.foll() & (FOLL_PCI_P2PDMA | FOLL_LONGTERM),
                            FOLL_PCI_P2PDMA | FOLL_LONGTERM);
            prop_assert_eq!(uapi & !(UAPI_PIN_WRITE | UAPI_PIN_P2PDMA | UAPI_PIN_LONGTERM), 0);
        }
    }
}
