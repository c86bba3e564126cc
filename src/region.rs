// SPDX-License-Identifier: GPL-2.0

//! The page allocator over the Rust-owned region, with exact per-page accounting.
//!
//! Kernel-independent: this file only uses `core`, so the module and the host test crate
//! (`tools/testing/host`) compile the same code.
//!
//! The allocator is a lock-free bitmap: a page is handed out by setting its bit, and comes back
//! (from the pgmap's `folio_free` callback, in any context, IRQ included) by clearing it. No
//! lock is ever taken, so the free path cannot deadlock against anything.
//!
//! The pool also gates hand-outs for unbind: after [`PagePool::close`] no page is handed out
//! again, and [`PagePool::outstanding`] reaching zero means every page has come back.

use core::ops::Deref;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Why pages could not be handed out or taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// Fewer free pages than asked for; nothing was allocated.
    NoSpace,
    /// The pool is closed (the device is going away); nothing was allocated.
    Closed,
    /// A page index past the end of the region.
    OutOfRange,
    /// A page that is not handed out was freed: a refcounting bug somewhere.
    NotAllocated,
}

/// Counters of a pool, as userspace sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Pages in the region.
    pub pages: u64,
    /// Pages free now.
    pub free: u64,
    /// Pages handed out and not yet back.
    pub outstanding: u64,
    /// Pages handed out since the pool was made.
    pub handed_out: u64,
    /// Pages that came back since the pool was made.
    pub freed: u64,
}

/// The counters of two pools as those of one (a region's parts), each sum saturating.
impl core::ops::Add for PoolStats {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            pages: self.pages.saturating_add(other.pages),
            free: self.free.saturating_add(other.free),
            outstanding: self.outstanding.saturating_add(other.outstanding),
            handed_out: self.handed_out.saturating_add(other.handed_out),
            freed: self.freed.saturating_add(other.freed),
        }
    }
}

impl core::iter::Sum for PoolStats {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |sum, stats| sum + stats)
    }
}

/// A pool of `pages` pages tracked by a bitmap in `S` (one bit per page, set when handed out).
pub struct PagePool<S: Deref<Target = [AtomicU64]>> {
    bits: S,
    pages: usize,
    free: AtomicUsize,
    /// The word the next search starts at: allocations sweep the region instead of piling up at
    /// its start, which keeps runs contiguous while the region is mostly free.
    hint: AtomicUsize,
    open: AtomicBool,
    handed_out: AtomicU64,
    freed: AtomicU64,
}

/// How many times an allocation looks for a contiguous run before it takes scattered pages.
const RUN_ATTEMPTS: usize = 3;

/// The mask of `len` bits from bit `first` of a word (`first + len <= 64`, `len > 0`).
fn run_mask(first: usize, len: usize) -> u64 {
    if len >= 64 {
        !0
    } else {
        ((1u64 << len) - 1) << first
    }
}

/// The words pages `start..end` fall in, each with the mask of those pages' bits.
fn word_masks(start: usize, end: usize) -> impl Iterator<Item = (usize, u64)> {
    let mut at = start;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let (word, first) = (at / 64, at % 64);
        let len = (64 - first).min(end - at);
        at += len;
        Some((word, run_mask(first, len)))
    })
}

/// The number of bitmap words a pool of `pages` pages needs.
pub const fn words_for(pages: usize) -> usize {
    pages.div_ceil(64)
}

impl<S: Deref<Target = [AtomicU64]>> PagePool<S> {
    /// Makes a pool of `pages` free pages over `bits`, which must be zeroed and hold at least
    /// [`words_for`]`(pages)` words (else `None`).
    pub fn new(bits: S, pages: usize) -> Option<Self> {
        if bits.len() < words_for(pages) || bits.iter().any(|w| w.load(Ordering::Relaxed) != 0) {
            return None;
        }
        // Bits past the end are permanently taken, so a search never returns them.
        if let Some(last) = bits.get(pages / 64).filter(|_| pages % 64 != 0) {
            last.store(!0u64 << (pages % 64), Ordering::Relaxed);
        }
        for w in bits.iter().skip(words_for(pages)) {
            w.store(!0, Ordering::Relaxed);
        }
        Some(Self {
            bits,
            pages,
            free: AtomicUsize::new(pages),
            hint: AtomicUsize::new(0),
            open: AtomicBool::new(true),
            handed_out: AtomicU64::new(0),
            freed: AtomicU64::new(0),
        })
    }

    /// Hands out `n` pages, all or none, calling `take(index)` once for each (in ascending
    /// order within each run): one contiguous run when the pool has one, else the free pages
    /// found first. Fails with [`PoolError::Closed`] once [`Self::close`] ran.
    pub fn alloc(&self, n: usize, mut take: impl FnMut(usize)) -> Result<(), PoolError> {
        if n == 0 {
            return Ok(());
        }
        // Reserve first: between here and the bit search, the pages are counted as taken.
        let mut free = self.free.load(Ordering::Relaxed);
        loop {
            if free < n {
                return Err(PoolError::NoSpace);
            }
            match self.free.compare_exchange_weak(
                free,
                free - n,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => free = now,
            }
        }
        // Count them as outstanding before checking `open`: `close()` stores `open` first and
        // reads `outstanding` second, so one of the two sides sees the other (both SeqCst).
        self.handed_out.fetch_add(n as u64, Ordering::SeqCst);
        if !self.open.load(Ordering::SeqCst) {
            self.handed_out.fetch_sub(n as u64, Ordering::SeqCst);
            self.free.fetch_add(n, Ordering::AcqRel);
            return Err(PoolError::Closed);
        }

        // No division and no indexing that could panic: `words > 0` since `n <= pages`.
        let words = words_for(self.pages);
        let mut word = self
            .hint
            .load(Ordering::Relaxed)
            .checked_rem(words)
            .unwrap_or(0);

        // First choice: one contiguous run, the first at or after the hint (then from the
        // start), so that an I/O into the mapping is one DMA segment. A concurrent allocation
        // can take part of the run between the search and the claim: search again, a few times.
        for _ in 0..RUN_ATTEMPTS {
            let Some(start) = self
                .first_run(word * 64, self.pages, n)
                .or_else(|| self.first_run(0, word * 64, n))
            else {
                break;
            };
            if self.claim_run(start, n) {
                (start..start + n).for_each(&mut take);
                self.hint.store(
                    ((start + n) / 64).checked_rem(words).unwrap_or(0),
                    Ordering::Relaxed,
                );
                return Ok(());
            }
        }

        // Fragmented: the lowest free pages from the hint on, run by run. The reservation
        // guarantees that `n` clear bits exist (a free clears its bit before it counts the page
        // as free), so this terminates.
        let mut want = n;
        while want > 0 {
            let Some(slot) = self.bits.get(word) else {
                word = 0;
                continue;
            };
            let mut cur = slot.load(Ordering::Relaxed);
            while cur != !0 && want > 0 {
                // Take the lowest run of clear bits in this word, up to `want` of them.
                let first = (!cur).trailing_zeros();
                let run = (cur >> first).trailing_zeros().min(64 - first);
                let len = run.min(want as u32);
                let mask = run_mask(first as usize, len as usize);
                match slot.compare_exchange_weak(
                    cur,
                    cur | mask,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        for bit in first..first + len {
                            take(word * 64 + bit as usize);
                        }
                        want -= len as usize;
                        cur |= mask;
                    }
                    Err(now) => cur = now,
                }
            }
            if want > 0 {
                word += 1;
                if word >= words {
                    word = 0;
                }
            }
        }
        self.hint.store(word, Ordering::Relaxed);
        Ok(())
    }

    /// The first start in `lo..hi` of `n` clear bits in a row (the run may end past `hi`, not
    /// past the pool), as the bitmap reads now.
    fn first_run(&self, lo: usize, hi: usize, n: usize) -> Option<usize> {
        let (mut start, mut len, mut i) = (lo, 0, lo);
        while i < self.pages {
            if len == 0 && i >= hi {
                return None;
            }
            // The bits of page `i` and those after it in its word, lowest first.
            let rest = self.bits.get(i / 64)?.load(Ordering::Relaxed) >> (i % 64);
            let avail = 64 - i % 64;
            let clear = (rest.trailing_zeros() as usize).min(avail);
            if clear > 0 && len == 0 {
                start = i;
            }
            len += clear;
            if len >= n {
                return Some(start);
            }
            if clear == avail {
                i += avail;
            } else {
                // Skip the taken pages after the clear ones (at least one).
                let taken = ((!(rest >> clear)).trailing_zeros() as usize).clamp(1, avail - clear);
                i += clear + taken;
                len = 0;
            }
        }
        None
    }

    /// Sets the bits of pages `start..start + n` if all of them are clear; else changes
    /// nothing and returns `false`.
    fn claim_run(&self, start: usize, n: usize) -> bool {
        let end = start + n;
        for (word, mask) in word_masks(start, end) {
            let Some(slot) = self.bits.get(word) else {
                self.unclaim(start, (word * 64).max(start));
                return false;
            };
            let mut cur = slot.load(Ordering::Relaxed);
            loop {
                if cur & mask != 0 {
                    // Back out the words before this one; this one is untouched.
                    self.unclaim(start, (word * 64).max(start));
                    return false;
                }
                match slot.compare_exchange_weak(
                    cur,
                    cur | mask,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => cur = now,
                }
            }
        }
        true
    }

    /// Clears the bits of pages `start..end`, which [`Self::claim_run`] set.
    fn unclaim(&self, start: usize, end: usize) {
        for (word, mask) in word_masks(start, end) {
            if let Some(slot) = self.bits.get(word) {
                let old = slot.fetch_and(!mask, Ordering::AcqRel);
                // A bit already clear was "freed" meanwhile though never handed out (a bad free
                // elsewhere, which `free` counted as a page back): uncount it, so that `free`
                // keeps matching the clear bits and the scattered search terminates.
                let stray = u64::from((!old & mask).count_ones());
                if stray > 0 {
                    self.free.fetch_sub(stray as usize, Ordering::AcqRel);
                    self.freed.fetch_sub(stray, Ordering::SeqCst);
                }
            }
        }
    }

    /// Takes back page `index`; an error means it was not handed out (and nothing changed).
    pub fn free(&self, index: usize) -> Result<(), PoolError> {
        if index >= self.pages {
            return Err(PoolError::OutOfRange);
        }
        let mask = 1u64 << (index % 64);
        let slot = self.bits.get(index / 64).ok_or(PoolError::OutOfRange)?;
        let old = slot.fetch_and(!mask, Ordering::AcqRel);
        if old & mask == 0 {
            return Err(PoolError::NotAllocated);
        }
        self.free.fetch_add(1, Ordering::AcqRel);
        self.freed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Stops all further hand-outs. Returns the pages outstanding at that point; from now on,
    /// [`Self::outstanding`] only goes down.
    pub fn close(&self) -> u64 {
        self.open.store(false, Ordering::SeqCst);
        self.outstanding()
    }

    /// Whether [`Self::close`] was called.
    pub fn is_closed(&self) -> bool {
        !self.open.load(Ordering::SeqCst)
    }

    /// Pages handed out and not back yet.
    pub fn outstanding(&self) -> u64 {
        // Read `freed` first: it never passes `handed_out`, so the difference cannot underflow.
        let freed = self.freed.load(Ordering::SeqCst);
        self.handed_out.load(Ordering::SeqCst).saturating_sub(freed)
    }

    /// A snapshot of the counters (each exact, not taken atomically together).
    pub fn stats(&self) -> PoolStats {
        let freed = self.freed.load(Ordering::SeqCst);
        let handed_out = self.handed_out.load(Ordering::SeqCst);
        PoolStats {
            pages: self.pages as u64,
            free: self.free.load(Ordering::Acquire) as u64,
            outstanding: handed_out.saturating_sub(freed),
            handed_out,
            freed,
        }
    }
}
