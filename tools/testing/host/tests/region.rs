// SPDX-License-Identifier: GPL-2.0

//! The page pool: no page handed out twice, every page freed comes back, exact counters, the
//! unbind gate, and how allocations lay out in the region.

use p2pmem_host_tests::region::{words_for, PagePool, PoolError, PoolStats};
use proptest::prelude::*;

mod common;
use common::{run, Counter};
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

fn pool(pages: usize) -> PagePool<Vec<AtomicU64>> {
    let bits = (0..words_for(pages)).map(|_| AtomicU64::new(0)).collect();
    PagePool::new(bits, pages).unwrap()
}

fn alloc(p: &PagePool<Vec<AtomicU64>>, n: usize) -> Result<Vec<usize>, PoolError> {
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

#[test]
fn concurrent_alloc_and_free_lose_nothing() {
    let p = Arc::new(pool(4096));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for round in 0..2000 {
                    let n = 1 + (round * 7 + t) % 50;
                    if let Ok(got) = alloc(&p, n) {
                        for i in got {
                            p.free(i).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = p.stats();
    assert_eq!(s.free, 4096);
    assert_eq!(s.outstanding, 0);
    assert_eq!(s.handed_out, s.freed);
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(usize),
    Free(usize),
}

/// Any sequence of allocations and frees matches a model: no page is handed out twice, every
/// freed page comes back, and the counters are exact. The run must have checked successful
/// allocations, refused ones and frees, not only empty sequences.
#[test]
fn matches_the_model() {
    let (allocated, refused, freed_ops) =
        (Counter::default(), Counter::default(), Counter::default());
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
}
