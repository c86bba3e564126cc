// SPDX-License-Identifier: GPL-2.0

//! Pin flags: every valid request maps to GUP flags without FOLL_PCI_P2PDMA | FOLL_LONGTERM, and
//! the bad combination and unknown bits are refused. That `PinFlags::long_term().p2pdma()` does
//! not compile, with E0599, is checked here and by a doctest in `src/pin_flags.rs`.

use p2pmem_host_tests::pin_flags::*;
use proptest::prelude::*;

mod common;
use common::{run, Counter};

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

/// No input, however built, reaches GUP with FOLL_PCI_P2PDMA and FOLL_LONGTERM together, and
/// every refusal names exactly the bits that are not `P2PMEM_PIN_*`. Half the inputs are made of
/// known bits only: random `u32`s alone almost never are, and would check the accepted side on
/// no input at all.
#[test]
fn no_input_yields_p2pdma_with_longterm() {
    let known = UAPI_PIN_WRITE | UAPI_PIN_P2PDMA | UAPI_PIN_LONGTERM;
    let (accepted, unknown) = (Counter::default(), Counter::default());
    let cases = run(prop_oneof![0..=known, any::<u32>()], |uapi| {
        match AnyPinFlags::from_uapi(uapi) {
            Ok(flags) => {
                accepted.hit();
                prop_assert_ne!(
                    flags.foll() & (FOLL_PCI_P2PDMA | FOLL_LONGTERM),
                    FOLL_PCI_P2PDMA | FOLL_LONGTERM
                );
                prop_assert_eq!(uapi & !known, 0);
            }
            Err(PinFlagsError::Unknown(bits)) => {
                unknown.hit();
                prop_assert_eq!(bits, uapi & !known);
                prop_assert_ne!(bits, 0);
            }
            Err(PinFlagsError::P2pdmaLongterm) => {
                prop_assert_eq!(uapi & !UAPI_PIN_WRITE, UAPI_PIN_P2PDMA | UAPI_PIN_LONGTERM);
            }
        }
        Ok(())
    });
    assert!(accepted.get() > 0, "no accepted input in {cases} cases");
    assert!(
        unknown.get() > 0,
        "no input with unknown bits in {cases} cases"
    );
}

/// That `PinFlags::long_term().p2pdma()` does not compile, for the right reason: rustc's E0599
/// (no such method). The `compile_fail,E0599` doctest in `src/pin_flags.rs` says the same, but
/// stable rustdoc does not check a doctest's error code (only nightly does), so this compiles
/// the module's own file with rustc and reads the code. The same program with
/// `short_term()` must compile, or the failure would prove nothing.
#[test]
fn long_term_p2pdma_does_not_compile_with_e0599() {
    let compile = |kind: &str| {
        let src = format!(
            "#[path = {:?}]\nmod pin_flags;\nfn main() {{\n    \
             let flags = pin_flags::PinFlags::{kind}().p2pdma();\n    \
             assert_ne!(flags.foll(), 0);\n}}\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../../src/pin_flags.rs"),
        );
        let dir =
            std::env::temp_dir().join(format!("p2pmem-compile-fail-{}-{kind}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let main = dir.join("main.rs");
        std::fs::write(&main, src).unwrap();
        // $RUSTC, else the rustc beside the cargo that runs the tests, else the one on $PATH.
        let rustc = std::env::var_os("RUSTC")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                let cargo = std::path::PathBuf::from(std::env::var_os("CARGO")?);
                Some(cargo.with_file_name("rustc")).filter(|p| p.exists())
            })
            .unwrap_or_else(|| "rustc".into());
        let out = std::process::Command::new(rustc)
            .args([
                "--edition=2021",
                "--crate-type=bin",
                "--error-format=short",
                "-A",
                "dead_code",
            ])
            .arg("--out-dir")
            .arg(&dir)
            .arg(&main)
            .output()
            .expect("rustc runs");
        std::fs::remove_dir_all(&dir).unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = compile("short_term");
    assert!(ok, "the valid program does not compile:\n{stderr}");
    let (ok, stderr) = compile("long_term");
    assert!(!ok, "PinFlags::long_term().p2pdma() compiles");
    assert!(
        stderr.contains("error[E0599]") && stderr.contains("p2pdma"),
        "not E0599 on p2pdma:\n{stderr}"
    );
}
