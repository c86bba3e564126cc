// SPDX-License-Identifier: GPL-2.0

//! The page pool: no page handed out twice, every page freed comes back, exact counters, the
//! unbind gate, and how allocations lay out in the region.

use p2pmem_host_tests::region::{words_for, PagePool, PoolError, PoolStats};
use proptest::prelude::*;

mod common;
use common::{run, Counter};
use std::collections::BTreeSet;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn pool(pages: usize) -> PagePool<Vec<AtomicU64>> {
    let bits = (0..words_for(pages)).map(|_| AtomicU64::new(0)).collect();
    PagePool::new(bits, pages).unwrap()
}

fn alloc<S: Deref<Target = [AtomicU64]>>(
    p: &PagePool<S>,
    n: usize,
) -> Result<Vec<usize>, PoolError> {
    let mut got = Vec::new();
    p.alloc(n, |i| got.push(i))?;
    Ok(got)
}

#[test]
fn a_fresh_pool_is_all_free() {
    let p = pool(100);
    assert_eq!(
        p.stats(),
        PoolStats {
            pages: 100,
            free: 100,
            outstanding: 0,
            handed_out: 0,
            freed: 0
        }
    );
}

#[test]
fn storage_must_be_zeroed_and_large_enough() {
    assert!(PagePool::new(Vec::<AtomicU64>::new(), 1).is_none());
    assert!(PagePool::new(vec![AtomicU64::new(1)], 10).is_none());
}

#[test]
fn the_whole_region_can_be_handed_out_and_no_more() {
    let p = pool(130);
    let got = alloc(&p, 130).unwrap();
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>().len(), 130);
    assert!(got.iter().all(|&i| i < 130));
    assert_eq!(alloc(&p, 1), Err(PoolError::NoSpace));
    assert_eq!(p.stats().free, 0);
}

#[test]
fn a_failed_allocation_takes_nothing() {
    let p = pool(64);
    alloc(&p, 60).unwrap();
    assert_eq!(alloc(&p, 5), Err(PoolError::NoSpace));
    assert_eq!(p.stats().free, 4);
    assert_eq!(alloc(&p, 4).unwrap().len(), 4);
}

#[test]
fn a_fresh_pool_hands_out_one_contiguous_run() {
    let p = pool(1024);
    let got = alloc(&p, 300).unwrap();
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    let next = alloc(&p, 10).unwrap();
    assert_eq!(next, (300..310).collect::<Vec<_>>());
}

#[test]
fn double_free_and_bad_index_are_refused_and_change_nothing() {
    let p = pool(10);
    let got = alloc(&p, 3).unwrap();
    p.free(got[0]).unwrap();
    assert_eq!(p.free(got[0]), Err(PoolError::NotAllocated));
    assert_eq!(p.free(10), Err(PoolError::OutOfRange));
    assert_eq!(p.free(9), Err(PoolError::NotAllocated));
    assert_eq!(
        p.stats(),
        PoolStats {
            pages: 10,
            free: 8,
            outstanding: 2,
            handed_out: 3,
            freed: 1
        }
    );
}

#[test]
fn close_stops_hand_outs_and_outstanding_drains() {
    let p = pool(10);
    let got = alloc(&p, 4).unwrap();
    assert_eq!(p.close(), 4);
    assert_eq!(alloc(&p, 1), Err(PoolError::Closed));
    assert_eq!(p.stats().free, 6, "a refused hand-out reserves nothing");
    for i in got {
        p.free(i).unwrap();
    }
    assert_eq!(p.outstanding(), 0);
    assert_eq!(p.stats().free, 10);
}

#[test]
fn a_contiguous_run_is_preferred_over_scattered_pages() {
    let p = pool(256);
    let got = alloc(&p, 256).unwrap();
    // Every other page of the first two words free, and all of the third word.
    for &i in got[..128].iter().step_by(2) {
        p.free(i).unwrap();
    }
    for &i in &got[128..192] {
        p.free(i).unwrap();
    }
    // The hint is back at word 0: the scattered search would take the lone pages from 0.
    assert_eq!(alloc(&p, 40).unwrap(), (128..168).collect::<Vec<_>>());
    // The rest of that run, to the end of its word.
    assert_eq!(alloc(&p, 24).unwrap(), (168..192).collect::<Vec<_>>());
    // None left that long: scattered pages, lowest first from the hint.
    let scattered = alloc(&p, 3).unwrap();
    assert_eq!(scattered.len(), 3);
    assert!(scattered.iter().all(|i| i % 2 == 0 && *i < 128));
}

#[test]
fn a_run_is_found_after_the_hint_first_then_from_the_start() {
    let p = pool(512);
    let first = alloc(&p, 100).unwrap();
    let second = alloc(&p, 100).unwrap();
    assert_eq!(second, (100..200).collect::<Vec<_>>());
    for i in first {
        p.free(i).unwrap();
    }
    // The hint is at page 192 (word 3): the run after it comes first.
    assert_eq!(alloc(&p, 200).unwrap(), (200..400).collect::<Vec<_>>());
    // 112 free after the hint, 100 at the start: no run of 150 anywhere, so the free pages
    // from the hint on, wrapping to the start.
    assert_eq!(
        alloc(&p, 150).unwrap(),
        (400..512).chain(0..38).collect::<Vec<_>>()
    );
    // And a run that only fits before the hint is found there.
    let p2 = pool(512);
    alloc(&p2, 300).unwrap();
    let tail = alloc(&p2, 100).unwrap();
    for i in 0..300 {
        p2.free(i).unwrap();
    }
    assert_eq!(tail, (300..400).collect::<Vec<_>>());
    assert_eq!(alloc(&p2, 200).unwrap(), (0..200).collect::<Vec<_>>());
}

#[test]
fn fragmentation_still_serves_scattered_pages() {
    let p = pool(256);
    let got = alloc(&p, 256).unwrap();
    // Free every other page: 128 free pages, no two adjacent.
    for &i in got.iter().step_by(2) {
        p.free(i).unwrap();
    }
    let again = alloc(&p, 128).unwrap();
    assert_eq!(again.len(), 128);
    assert!(again.iter().all(|i| i % 2 == 0));
    assert_eq!(p.stats().free, 0);
}

/// Threads allocating (runs and scattered pages, racing for the same runs) and freeing lose
/// nothing: afterwards every bit of the bitmap is clear and the counters are whole. Each thread
/// keeps its last few allocations, so that the pool stays fragmented and busy.
#[test]
fn concurrent_alloc_and_free_lose_nothing() {
    const PAGES: usize = 4096;
    let bits: Arc<[AtomicU64]> = (0..words_for(PAGES)).map(|_| AtomicU64::new(0)).collect();
    let p = Arc::new(PagePool::new(Arc::clone(&bits), PAGES).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                let mut held = std::collections::VecDeque::new();
                for round in 0..20000 {
                    let n = 1 + (round * 7 + t) % 120;
                    if let Ok(got) = alloc(&p, n) {
                        held.push_back(got);
                    }
                    if held.len() > 6 || round % 5 == 0 {
                        for i in held.pop_front().unwrap_or_default() {
                            p.free(i).unwrap();
                        }
                    }
                }
                for i in held.into_iter().flatten() {
                    p.free(i).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = p.stats();
    assert_eq!(s.free as usize, PAGES);
    assert_eq!(s.outstanding, 0);
    assert_eq!(s.handed_out, s.freed);
    let set: u32 = bits
        .iter()
        .map(|w| w.load(Ordering::Relaxed).count_ones())
        .sum();
    assert_eq!(set, 0, "{set} pages' bits stayed set with every page back");
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(usize),
    Free(usize),
}

/// Any sequence of allocations and frees matches a model: no page is handed out twice, every
/// freed page comes back, the counters are exact, and an allocation that fits in one run of
/// free pages gets one. The run must have checked successful allocations, refused ones, frees
/// and runs, not only empty sequences.
#[test]
fn matches_the_model() {
    let (allocated, refused, freed_ops, runs) = (
        Counter::default(),
        Counter::default(),
        Counter::default(),
        Counter::default(),
    );
    let strategy = (
        1usize..300,
        proptest::collection::vec(
            prop_oneof![
                (0usize..80).prop_map(Op::Alloc),
                any::<usize>().prop_map(Op::Free)
            ],
            0..200,
        ),
    );
    let cases = run(strategy, |(pages, ops)| {
        let p = pool(pages);
        let mut held: Vec<usize> = Vec::new();
        let (mut handed, mut freed) = (0u64, 0u64);
        for op in ops {
            match op {
                Op::Alloc(n) => match alloc(&p, n) {
                    Ok(got) => {
                        allocated.hit();
                        prop_assert_eq!(got.len(), n);
                        // When the model has a run of n free pages, the pool hands out a run.
                        let free: Vec<bool> = (0..pages).map(|i| !held.contains(&i)).collect();
                        if n > 1 && free.windows(n).any(|w| w.iter().all(|&f| f)) {
                            runs.hit();
                            prop_assert!(
                                got.windows(2).all(|w| w[1] == w[0] + 1),
                                "{:?} is not one run",
                                got
                            );
                        }
                        for i in got {
                            prop_assert!(i < pages);
                            prop_assert!(!held.contains(&i), "page {} handed out twice", i);
                            held.push(i);
                        }
                        handed += n as u64;
                    }
                    Err(e) => {
                        refused.hit();
                        prop_assert_eq!(e, PoolError::NoSpace);
                        prop_assert!(pages - held.len() < n);
                    }
                },
                Op::Free(k) if !held.is_empty() => {
                    freed_ops.hit();
                    let i = held.swap_remove(k % held.len());
                    prop_assert_eq!(p.free(i), Ok(()));
                    freed += 1;
                }
                Op::Free(_) => {}
            }
            let s = p.stats();
            prop_assert_eq!(s.free as usize, pages - held.len());
            prop_assert_eq!(s.outstanding as usize, held.len());
            prop_assert_eq!((s.handed_out, s.freed), (handed, freed));
        }
        for i in held {
            prop_assert_eq!(p.free(i), Ok(()));
        }
        prop_assert_eq!(p.stats().free as usize, pages);
        Ok(())
    });
    assert!(
        allocated.get() > 0,
        "no allocation succeeded in {cases} cases"
    );
    assert!(
        refused.get() > 0,
        "no allocation was refused in {cases} cases"
    );
    assert!(freed_ops.get() > 0, "nothing was freed in {cases} cases");
    assert!(
        runs.get() > 0,
        "no allocation had a run to find in {cases} cases"
    );
}

/// A region's parts count as one: every counter is the sum of the parts', saturating.
#[test]
fn the_counters_of_two_parts_add_up() {
    let a = PoolStats {
        pages: 512,
        free: 0,
        outstanding: 512,
        handed_out: 1024,
        freed: 512,
    };
    let b = PoolStats {
        pages: 16,
        free: 15,
        outstanding: 1,
        handed_out: 3,
        freed: 2,
    };
    let sum: PoolStats = [a, b].into_iter().sum();
    assert_eq!(
        sum,
        PoolStats {
            pages: 528,
            free: 15,
            outstanding: 513,
            handed_out: 1027,
            freed: 514,
        }
    );
    assert_eq!([a].into_iter().sum::<PoolStats>(), a);
    assert_eq!(
        (PoolStats {
            handed_out: u64::MAX,
            ..a
        } + b)
            .handed_out,
        u64::MAX
    );
}
