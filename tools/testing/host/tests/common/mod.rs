// SPDX-License-Identifier: GPL-2.0

//! What the test files share: a property runner that reports how many cases really checked
//! something, so that a property whose generator or filter lets nothing through fails instead
//! of passing on no input.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the cases of one property in which each branch of interest ran.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// One more case took this branch.
    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// How many cases took it.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `test` on the cases of `strategy` as `proptest!` would (same configuration, so
/// `PROPTEST_CASES` applies), panicking with the shrunk failing input. Returns how many cases
/// ran; the caller asserts that the branches it counted were taken.
pub fn run<S>(strategy: S, test: impl Fn(S::Value) -> TestCaseResult) -> u64
where
    S: Strategy,
    S::Value: Debug,
{
    let cases = Counter::default();
    let mut runner = TestRunner::new(Config {
        // No regression files: the inputs that matter are written as plain tests.
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(err) = runner.run(&strategy, |value| {
        cases.hit();
        test(value)
    }) {
        panic!("{err}\n{runner}");
    }
    cases.get()
}
