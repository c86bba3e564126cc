// SPDX-License-Identifier: GPL-2.0

//! Which window of which BAR p2pmem donates, for every kind of parameter and device.

use p2pmem_host_tests::layout::{BarInfo, LayoutError, Request, Split, Window, ALIGN, NUM_BARS};
use proptest::prelude::*;

mod common;
use common::{run, Counter};

const MIB: u64 = 1 << 20;

fn mem(start: u64, len: u64, prefetch: bool) -> BarInfo {
    BarInfo {
        start,
        len,
        mem: true,
        prefetch,
    }
}

/// ivshmem-plain as QEMU builds it: 256 B of registers in BAR 0, shared memory in BAR 2.
fn ivshmem(len: u64) -> [BarInfo; NUM_BARS] {
    let mut bars = [BarInfo::default(); NUM_BARS];
    bars[0] = mem(0xfe00_0000, 256, false);
    bars[2] = mem(0x80_0000_0000, len, true);
    bars
}

/// An NVMe controller with a CMB: 16 KiB of registers in BAR 0, the CMB in BAR 2, an I/O BAR.
fn nvme_cmb(len: u64) -> [BarInfo; NUM_BARS] {
    let mut bars = [BarInfo::default(); NUM_BARS];
    bars[0] = mem(0xfe20_0000, 16 << 10, false);
    bars[2] = mem(0x80_1000_0000, len, true);
    bars[4] = BarInfo {
        start: 0xc000,
        len: 0x100,
        mem: false,
        prefetch: false,
    };
    bars
}

fn auto() -> Request {
    Request::from_params(-1, 0, 0).unwrap()
}

#[test]
fn auto_picks_the_shared_memory_bar_of_ivshmem() {
    assert_eq!(
        auto().choose(&ivshmem(64 * MIB)),
        Ok(Window {
            bar: 2,
            offset: 0,
            size: 64 * MIB
        })
    );
}

#[test]
fn auto_picks_the_cmb_of_nvme() {
    assert_eq!(
        auto().choose(&nvme_cmb(64 * MIB)),
        Ok(Window {
            bar: 2,
            offset: 0,
            size: 64 * MIB
        })
    );
}

#[test]
fn a_device_without_a_2mib_memory_bar_is_no_device() {
    let mut bars = [BarInfo::default(); NUM_BARS];
    bars[0] = mem(0xfe00_0000, MIB, false);
    let err = auto().choose(&bars).unwrap_err();
    assert_eq!(err, LayoutError::NoUsableBar);
    assert!(err.is_no_device());
}

#[test]
fn bar_index_out_of_range_is_refused() {
    for bar in [-2, 6, 9, i64::MAX] {
        assert_eq!(
            Request::from_params(bar, 0, 0),
            Err(LayoutError::BarIndex(bar))
        );
    }
    assert_eq!(
        Request::from_params(9, 0, 0).unwrap_err().to_string(),
        "bar=9 is not a BAR index (0-5, or -1 for auto)"
    );
}

#[test]
fn unaligned_offset_or_size_is_refused() {
    assert_eq!(
        Request::from_params(-1, 4096, 0),
        Err(LayoutError::Unaligned {
            what: "offset",
            value: 4096
        })
    );
    assert_eq!(
        Request::from_params(-1, 0, 12345),
        Err(LayoutError::Unaligned {
            what: "size",
            value: 12345
        })
    );
    assert_eq!(
        Request::from_params(-1, 0, 12345).unwrap_err().to_string(),
        "size=0x3039 is not a multiple of 2 MiB"
    );
}

#[test]
fn explicit_non_memory_or_empty_bar_is_refused() {
    let req = |bar| Request::from_params(bar, 0, 0).unwrap();
    assert_eq!(
        req(4).choose(&nvme_cmb(64 * MIB)),
        Err(LayoutError::NotMemory(4))
    );
    assert_eq!(
        req(5).choose(&nvme_cmb(64 * MIB)),
        Err(LayoutError::NotMemory(5))
    );
    assert!(!LayoutError::NotMemory(4).is_no_device());
}

#[test]
fn explicit_bar_too_small_for_one_granule_is_out_of_bar() {
    let req = Request::from_params(0, 0, 0).unwrap();
    assert_eq!(
        req.choose(&ivshmem(64 * MIB)),
        Err(LayoutError::OutOfBar {
            bar: 0,
            offset: 0,
            size: 0,
            len: 256
        })
    );
}

#[test]
fn window_past_the_end_is_refused() {
    let req = Request::from_params(2, 62 * MIB, 4 * MIB).unwrap();
    assert_eq!(
        req.choose(&ivshmem(64 * MIB)),
        Err(LayoutError::OutOfBar {
            bar: 2,
            offset: 62 * MIB,
            size: 4 * MIB,
            len: 64 * MIB
        })
    );
    let req = Request::from_params(2, 64 * MIB, 0).unwrap();
    assert!(matches!(
        req.choose(&ivshmem(64 * MIB)),
        Err(LayoutError::OutOfBar { .. })
    ));
    let req = Request::from_params(2, 1 << 40, 0).unwrap();
    assert!(matches!(
        req.choose(&ivshmem(64 * MIB)),
        Err(LayoutError::OutOfBar { .. })
    ));
}

#[test]
fn offset_and_size_select_a_slice() {
    let req = Request::from_params(-1, 8 * MIB, 16 * MIB).unwrap();
    assert_eq!(
        req.choose(&ivshmem(64 * MIB)),
        Ok(Window {
            bar: 2,
            offset: 8 * MIB,
            size: 16 * MIB
        })
    );
    let req = Request::from_params(-1, 8 * MIB, 0).unwrap();
    assert_eq!(
        req.choose(&ivshmem(64 * MIB)),
        Ok(Window {
            bar: 2,
            offset: 8 * MIB,
            size: 56 * MIB
        })
    );
}

#[test]
fn a_bar_starting_off_the_granule_is_refused() {
    let mut bars = ivshmem(64 * MIB);
    bars[2].start += 4096;
    assert_eq!(auto().choose(&bars), Err(LayoutError::BarUnaligned(2)));
}

#[test]
fn a_prefetchable_bar_wins_a_tie() {
    let mut bars = [BarInfo::default(); NUM_BARS];
    bars[1] = mem(0x1000_0000, 8 * MIB, false);
    bars[3] = mem(0x2000_0000, 8 * MIB, true);
    assert_eq!(auto().choose(&bars).unwrap().bar, 3);
}

fn any_bar() -> impl Strategy<Value = BarInfo> {
    (
        0u64..64,
        0u32..40,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(start_mib, len_log2, pow2, mem, prefetch)| {
            let len = if pow2 {
                1u64 << len_log2
            } else {
                (1u64 << len_log2) * 3 / 2
            };
            BarInfo {
                start: start_mib * MIB * 2,
                len,
                mem,
                prefetch,
            }
        })
}

/// Whatever the device and the parameters, a chosen window is a non-empty, aligned slice of a
/// memory BAR, and an explicit request is honoured exactly. Random devices often have no BAR
/// that fits: the run must still have checked some chosen windows, and refused some requests.
#[test]
fn a_chosen_window_always_fits() {
    let (chosen, refused) = (Counter::default(), Counter::default());
    let strategy = (
        proptest::array::uniform6(any_bar()),
        -1i64..6,
        0u64..80,
        0u64..80,
    );
    let cases = run(strategy, |(bars, bar, offset_mib, size_mib)| {
        let req = Request::from_params(bar, offset_mib * 2 * MIB, size_mib * 2 * MIB);
        // Indices in range and 2 MiB multiples are always a valid request.
        let req = req.map_err(|err| TestCaseError::fail(format!("refused: {err:?}")))?;
        match req.choose(&bars) {
            Ok(w) => {
                chosen.hit();
                let info = bars[usize::from(w.bar)];
                prop_assert!(info.mem);
                prop_assert!(w.size > 0);
                prop_assert_eq!(w.size % ALIGN, 0);
                prop_assert_eq!((info.start + w.offset) % ALIGN, 0);
                prop_assert!(w.offset + w.size <= info.len);
                prop_assert_eq!(w.offset, offset_mib * 2 * MIB);
                if bar >= 0 {
                    prop_assert_eq!(i64::from(w.bar), bar);
                }
                if size_mib > 0 {
                    prop_assert_eq!(w.size, size_mib * 2 * MIB);
                }
            }
            Err(_) => refused.hit(),
        }
        Ok(())
    });
    assert!(chosen.get() > 0, "no window chosen in {cases} cases");
    assert!(refused.get() > 0, "no request refused in {cases} cases");
}

fn window(size_mib: u64) -> Window {
    Window {
        bar: 2,
        offset: 4 * MIB,
        size: size_mib * MIB,
    }
}

#[test]
fn the_default_pool_is_an_eighth_or_2mib() {
    let s = window(64).split(-1).unwrap();
    assert_eq!(
        (s.pool, s.region_offset, s.region_size),
        (8 * MIB, 12 * MIB, 56 * MIB)
    );
    let s = window(8).split(-1).unwrap();
    assert_eq!((s.pool, s.region_size), (2 * MIB, 6 * MIB));
    let s = window(18).split(-1).unwrap();
    assert_eq!(s.pool, 2 * MIB, "1/8 of 18 MiB rounds down to 2 MiB");
}

#[test]
fn the_default_pool_never_takes_the_whole_window() {
    let s = window(2).split(-1).unwrap();
    assert_eq!(
        (s.pool, s.region_offset, s.region_size),
        (0, 4 * MIB, 2 * MIB)
    );
}

#[test]
fn pool_size_zero_disables_the_pool() {
    let s = window(64).split(0).unwrap();
    assert_eq!(
        (s.pool, s.region_offset, s.region_size),
        (0, 4 * MIB, 64 * MIB)
    );
}

#[test]
fn an_explicit_pool_is_honoured_or_refused() {
    let s = window(64).split(32 << 20).unwrap();
    assert_eq!(
        (s.pool, s.region_offset, s.region_size),
        (32 * MIB, 36 * MIB, 32 * MIB)
    );
    assert_eq!(
        window(64).split(64 << 20),
        Err(LayoutError::PoolTooLarge {
            pool: 64 * MIB,
            size: 64 * MIB
        })
    );
    assert_eq!(
        window(64).split(1 << 40),
        Err(LayoutError::PoolTooLarge {
            pool: 1 << 40,
            size: 64 * MIB
        })
    );
    assert_eq!(
        window(64).split(4096),
        Err(LayoutError::Unaligned {
            what: "pool_size",
            value: 4096
        })
    );
}

/// A split always leaves an aligned, non-empty region after an aligned pool slice; the run
/// must have checked some splits.
#[test]
fn a_split_always_tiles_the_window() {
    let split = Counter::default();
    let cases = run((1u64..200, -1i64..400), |(size_units, pool)| {
        let w = Window {
            bar: 0,
            offset: 0,
            size: size_units * ALIGN,
        };
        if let Ok(s) = w.split(pool * (ALIGN as i64)) {
            split.hit();
            prop_assert_eq!(s.pool + s.region_size, w.size);
            prop_assert_eq!(s.region_offset, w.offset + s.pool);
            prop_assert!(s.region_size >= ALIGN);
            prop_assert_eq!(s.pool % ALIGN, 0);
        }
        Ok(())
    });
    assert!(split.get() > 0, "no window split in {cases} cases");
}

/// The split of a window of `size_mib` without a pool: a region of all of it.
fn region(size_mib: u64) -> Split {
    window(size_mib).split(0).unwrap()
}

#[test]
fn the_default_small_part_is_an_eighth_or_2mib() {
    assert_eq!(region(64).small_pages(-1), Ok(8 * MIB));
    assert_eq!(region(56).small_pages(-1), Ok(6 * MIB), "7 MiB rounds down to 6");
    assert_eq!(region(8).small_pages(-1), Ok(2 * MIB));
    assert_eq!(region(1024).small_pages(-1), Ok(128 * MIB));
}

#[test]
fn the_default_small_part_always_leaves_a_folio() {
    assert_eq!(region(2).small_pages(-1), Ok(0));
    assert_eq!(region(4).small_pages(-1), Ok(2 * MIB));
}

#[test]
fn an_explicit_small_part_is_honoured_or_refused() {
    assert_eq!(region(64).small_pages(0), Ok(0));
    assert_eq!(region(64).small_pages(62 << 20), Ok(62 * MIB));
    assert_eq!(
        region(64).small_pages(64 << 20),
        Err(LayoutError::SmallPagesTooLarge {
            small: 64 * MIB,
            region: 64 * MIB
        })
    );
    assert_eq!(
        region(64).small_pages(1 << 40),
        Err(LayoutError::SmallPagesTooLarge {
            small: 1 << 40,
            region: 64 * MIB
        })
    );
    assert_eq!(
        region(64).small_pages(4096),
        Err(LayoutError::Unaligned {
            what: "small_pages_size",
            value: 4096
        })
    );
}

/// The small part is aligned and always leaves at least one folio before it.
#[test]
fn the_small_part_always_leaves_a_folio() {
    let carved = Counter::default();
    let cases = run((1u64..200, -1i64..400), |(size_units, small)| {
        let s = region(size_units * 2);
        if let Ok(small) = s.small_pages(small * (ALIGN as i64)) {
            carved.hit();
            prop_assert_eq!(small % ALIGN, 0);
            prop_assert!(small + ALIGN <= s.region_size);
        }
        Ok(())
    });
    assert!(carved.get() > 0, "no small part carved in {cases} cases");
}

use p2pmem_host_tests::layout::CmbRegs;

/// CMBSZ for `sz` units of `szu` (0: 4 KiB, 1: 64 KiB, 2: 1 MiB, ...), all data kinds supported.
fn cmbsz(szu: u32, sz: u32) -> u32 {
    (sz << 12) | (szu << 8) | 0x1f
}

#[test]
fn qemu_cmb_decodes_to_all_of_bar_2() {
    // QEMU's nvme with cmb_size_mb=64: BAR 2, offset 0, SZU 1 MiB, SZ 64.
    let regs = CmbRegs {
        cmbloc: 2,
        cmbsz: cmbsz(2, 64),
    };
    assert_eq!(
        regs.window(&nvme_cmb(64 * MIB)),
        Ok(Window {
            bar: 2,
            offset: 0,
            size: 64 * MIB
        })
    );
}

#[test]
fn no_cmb_is_no_device() {
    let err = CmbRegs {
        cmbloc: 0,
        cmbsz: 0,
    }
    .window(&nvme_cmb(64 * MIB))
    .unwrap_err();
    assert_eq!(err, LayoutError::NoCmb);
    assert!(err.is_no_device());
    assert_eq!(
        err.to_string(),
        "NVMe controller without a Controller Memory Buffer"
    );
    // A reserved size unit is no CMB either.
    assert_eq!(
        CmbRegs {
            cmbloc: 2,
            cmbsz: cmbsz(7, 1)
        }
        .window(&nvme_cmb(64 * MIB)),
        Err(LayoutError::NoCmb)
    );
}

#[test]
fn cmb_is_cut_to_its_bar_and_to_the_granule() {
    // 3 MiB CMB at offset 2 MiB of a 4 MiB BAR: 2 MiB remain, all usable.
    let regs = CmbRegs {
        cmbloc: 2 | (2 << 12),
        cmbsz: cmbsz(2, 3),
    };
    assert_eq!(
        regs.window(&nvme_cmb(4 * MIB)),
        Ok(Window {
            bar: 2,
            offset: 2 * MIB,
            size: 2 * MIB
        })
    );
    // 1 MiB CMB: nothing usable.
    let regs = CmbRegs {
        cmbloc: 2,
        cmbsz: cmbsz(2, 1),
    };
    assert!(matches!(
        regs.window(&nvme_cmb(64 * MIB)),
        Err(LayoutError::CmbUnusable { .. })
    ));
    // Offset off the granule (1 MiB).
    let regs = CmbRegs {
        cmbloc: 2 | (1 << 12),
        cmbsz: cmbsz(2, 8),
    };
    assert!(matches!(
        regs.window(&nvme_cmb(64 * MIB)),
        Err(LayoutError::CmbUnusable { .. })
    ));
}

#[test]
fn cmb_in_an_io_or_missing_bar_is_refused() {
    let regs = CmbRegs {
        cmbloc: 4,
        cmbsz: cmbsz(2, 8),
    };
    assert_eq!(
        regs.window(&nvme_cmb(64 * MIB)),
        Err(LayoutError::NotMemory(4))
    );
    let regs = CmbRegs {
        cmbloc: 7,
        cmbsz: cmbsz(2, 8),
    };
    assert_eq!(
        regs.window(&nvme_cmb(64 * MIB)),
        Err(LayoutError::NotMemory(7))
    );
}

#[test]
fn parameters_apply_inside_the_cmb() {
    let cmb = Window {
        bar: 2,
        offset: 8 * MIB,
        size: 32 * MIB,
    };
    assert_eq!(auto().choose_in_cmb(&cmb), Ok(cmb));
    let req = Request::from_params(2, 4 * MIB, 8 * MIB).unwrap();
    assert_eq!(
        req.choose_in_cmb(&cmb),
        Ok(Window {
            bar: 2,
            offset: 12 * MIB,
            size: 8 * MIB
        })
    );
    let req = Request::from_params(0, 0, 0).unwrap();
    assert_eq!(
        req.choose_in_cmb(&cmb),
        Err(LayoutError::NotCmbBar { bar: 0, cmb_bar: 2 })
    );
    let req = Request::from_params(-1, 0, 34 * MIB).unwrap();
    assert!(matches!(
        req.choose_in_cmb(&cmb),
        Err(LayoutError::OutOfBar { .. })
    ));
}
