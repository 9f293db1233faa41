//! The `sigma` binary's global allocator: the system allocator, counting.
//!
//! Every heap allocation of the process goes through [`Counting`], which forwards it to
//! [`System`] and keeps three atomic counters: allocation calls (reallocations included, as a
//! realloc may move the block), bytes live now, and the most bytes ever live at once. `sigma
//! stats` reads them (see [`snapshot`]) to report allocations per record and the peak heap.
//!
//! The counting costs a few nanoseconds per allocation, in every command: two relaxed atomic
//! read-modify-writes (count and live bytes) and a relaxed load of the peak, plus a
//! compare-and-swap when a new peak is reached. Frees cost one relaxed atomic subtraction. The
//! counters are shared by all threads, so while several threads allocate they contend on one
//! cache line; the codec's hot path allocates nothing in steady state, so this does not show in
//! its speed.

#![allow(unsafe_code)] // implementing `GlobalAlloc` is unsafe by definition

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The system allocator, with counters.
pub struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocation calls so far (`alloc`, `alloc_zeroed` and `realloc`).
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated and not freed yet.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The most bytes live at once so far (since the last [`reset_peak`]).
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Records `bytes` more bytes live and updates the peak.
#[inline]
fn grow(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Relaxed).wrapping_add(bytes);
    // A load first: the read-modify-write only happens when the peak actually moves.
    if live > PEAK.load(Relaxed) {
        PEAK.fetch_max(live, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the arguments it was given, so the
// allocator's contract is `System`'s; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, passed on unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, that is from `System`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` and `layout` come from this allocator, that is from `System`; the
        // caller upholds the rest of `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            if new_size >= layout.size() {
                grow(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        new
    }
}

/// The allocator's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Allocation calls since the process started (reallocations included).
    pub allocations: u64,
    /// Bytes allocated and not freed yet.
    pub live_bytes: usize,
    /// The most bytes live at once since the process started (or the last [`reset_peak`]).
    pub peak_bytes: usize,
}

/// Reads the counters. Each is read on its own (relaxed), so while other threads allocate the
/// three are only approximately simultaneous.
pub fn snapshot() -> HeapStats {
    HeapStats {
        allocations: ALLOCATIONS.load(Relaxed),
        live_bytes: LIVE.load(Relaxed),
        peak_bytes: PEAK.load(Relaxed),
    }
}

/// Starts a new peak measurement: the peak becomes the bytes live now. Returns the peak
/// until now.
pub fn reset_peak() -> usize {
    PEAK.swap(LIVE.load(Relaxed), Relaxed)
}

/// Allocation calls since the process started (one relaxed load, for tight measurements).
#[inline]
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_allocations_and_bytes() {
        // Other tests run on other threads, so only lower bounds hold.
        let before = snapshot();
        let mut v: Vec<u8> = Vec::with_capacity(8 << 20);
        v.push(1);
        let during = snapshot();
        assert!(during.allocations > before.allocations);
        assert!(during.peak_bytes >= 8 << 20);
        assert!(during.peak_bytes >= during.live_bytes);
        v.reserve(16 << 20);
        assert!(allocations() > during.allocations, "a realloc counts");
        assert!(snapshot().peak_bytes >= 16 << 20);
        drop(v);
        assert!(reset_peak() >= 16 << 20, "the peak until now");
        let z = vec![0u64; 1 << 20];
        assert!(z.iter().all(|&x| x == 0));
        assert!(snapshot().allocations >= during.allocations + 2);
    }
}
