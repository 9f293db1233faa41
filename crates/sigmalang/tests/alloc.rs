//! Heap behaviour of the hot path, measured with a counting global allocator (this test binary
//! only; counts are per thread, so the harness's own work on other threads does not interfere): steady-state encoding and decoding allocate nothing per record, the buffer pool is
//! used, pooling never changes output, and a million round trips leave the heap as it was.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Arc, Mutex};

use sigmalang::archive::ArchiveOptions;
use sigmalang::{ArchiveWriter, Codebook, PoolConfig};
use sigmalang::{CoderConfig, Decoder, Encoder};

struct Counting;

// Counted per thread: the test harness allocates and frees on its own threads while a test
// runs, and must not show up in what a test measures on its thread.
thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn count(allocs: u64, bytes: i64) {
    // `try_with`: during thread teardown the counters may be gone already.
    let _ = ALLOCS.try_with(|a| a.set(a.get() + allocs));
    let _ = LIVE.try_with(|l| l.set(l.get() + bytes));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1, layout.size() as i64);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, -(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(1, new_size as i64 - layout.size() as i64);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Tests measure one at a time (the counters are global).
static SERIAL: Mutex<()> = Mutex::new(());

/// Deterministic chat-like records of 1 to ~3000 bytes, some repeating earlier ones.
fn corpus(n: usize) -> Vec<Vec<u8>> {
    let words = [
        "the",
        "model",
        "returns",
        "a",
        "list",
        "of",
        "tokens",
        "and",
        "you",
        "can",
        "use",
        "python",
        "to",
        "parse",
        "JSON",
        "response",
        "error",
        "in",
        "line",
        "function",
        "```",
        "\n",
        "def",
        "main():",
        "print(",
        "value",
        ")",
        "cache",
        "request",
        "user",
        "assistant",
    ];
    let mut seed = 0x9e37_79b9u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(n);
    for i in 0..n {
        let len = 1 + (next() % 400) as usize * if i % 10 == 0 { 8 } else { 1 };
        let mut r = Vec::with_capacity(len + 16);
        if i > 2 && i % 3 == 0 {
            r.extend_from_slice(&out[i - 2][..out[i - 2].len().min(len)]);
        }
        while r.len() < len {
            r.extend_from_slice(words[(next() % words.len() as u64) as usize].as_bytes());
            r.push(b' ');
        }
        r.truncate(len);
        out.push(r);
    }
    out
}

/// Allocations made by this thread so far.
fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Heap bytes allocated and not freed by this thread.
fn live() -> i64 {
    LIVE.with(Cell::get)
}

#[test]
fn steady_state_encoding_and_decoding_allocate_nothing_per_record() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let records = corpus(2000);
    let cb = Codebook::default_codebook();
    let mut enc = Encoder::new(Arc::clone(&cb));
    let mut dec = Decoder::new(Arc::clone(&cb));
    let mut payloads: Vec<Vec<u8>> = records
        .iter()
        .map(|r| Vec::with_capacity(r.len() + 16))
        .collect();
    let mut out = Vec::with_capacity(64 << 10);
    // Warm-up: buffers and tables grow to the corpus's sizes.
    for (r, p) in records.iter().zip(payloads.iter_mut()) {
        enc.encode(r, p).unwrap();
        out.clear();
        dec.decode(p, &mut out).unwrap();
        assert_eq!(&out, r);
    }
    let acquires_before = enc.stats().pool.total_acquires;
    let before = allocs();
    for (r, p) in records.iter().zip(payloads.iter_mut()) {
        p.clear();
        enc.encode(r, p).unwrap();
    }
    let encode_allocs = allocs() - before;
    let before = allocs();
    for (r, p) in records.iter().zip(&payloads) {
        out.clear();
        dec.decode(p, &mut out).unwrap();
        assert_eq!(&out, r);
    }
    let decode_allocs = allocs() - before;
    assert_eq!(encode_allocs, 0, "steady-state encoding allocated");
    assert_eq!(decode_allocs, 0, "steady-state decoding allocated");
    let stats = enc.stats();
    assert!(
        stats.pool.total_acquires >= acquires_before + 2 * records.len() as u64,
        "{stats:?}"
    );
    assert_eq!(stats.records, 2 * records.len() as u64);
}

#[test]
fn archive_writing_allocates_only_for_growing_output_and_new_roots() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let records = corpus(4000);
    let cb = Codebook::default_codebook();
    let mut w =
        ArchiveWriter::with_options(std::io::sink(), cb, b"", ArchiveOptions::default()).unwrap();
    let keys: Vec<Vec<u8>> = (0..8)
        .map(|k| format!("conversation-{k}").into_bytes())
        .collect();
    for (i, r) in records[..2000].iter().enumerate() {
        w.add_in_group(Some(&keys[i % 8]), r).unwrap();
    }
    let before = allocs();
    for (i, r) in records[2000..].iter().enumerate() {
        w.add_in_group(Some(&keys[i % 8]), r).unwrap();
    }
    let per_record = (allocs() - before) as f64 / 2000.0;
    // What remains: the index vector doubling, and a root's copy in the Σ-bank (a root every
    // 256 records of a context).
    assert!(per_record < 0.05, "{per_record} allocations per record");
    let frames = w.frame_stats();
    assert!(
        frames.frames_reused > 10 * frames.frames_created,
        "{frames:?}"
    );
    w.finish().unwrap();
}

#[test]
fn pooling_never_changes_output() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let records = corpus(500);
    let cb = Codebook::default_codebook();
    let mut pooled = Encoder::new(Arc::clone(&cb));
    let off = CoderConfig::default().pool(PoolConfig::disabled());
    let mut unpooled = Encoder::with_config(Arc::clone(&cb), off);
    let frames: Vec<&[u8]> = records[..2].iter().map(|r| &r[..]).collect();
    for r in &records {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        pooled.encode_with_frames(&frames, r, &mut a).unwrap();
        unpooled.encode_with_frames(&frames, r, &mut b).unwrap();
        assert_eq!(a, b);
    }
    let s = unpooled.stats().pool;
    assert_eq!(
        s.total_acquires, s.overflow_allocations,
        "a disabled pool allocates every time"
    );
    assert!(pooled.stats().pool.overflow_rate < 0.01);
}

#[test]
fn a_million_round_trips_leave_the_heap_as_it_was() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let records = corpus(1000);
    let cb = Codebook::default_codebook();
    let baseline = live();
    {
        let mut enc = Encoder::new(Arc::clone(&cb));
        let mut dec = Decoder::new(Arc::clone(&cb));
        let mut payload = Vec::new();
        let mut out = Vec::new();
        for i in 0..1_000_000usize {
            let r = &records[i % records.len()];
            let r = &r[..r.len().min(48)];
            payload.clear();
            enc.encode(r, &mut payload).unwrap();
            out.clear();
            dec.decode(&payload, &mut out).unwrap();
            assert_eq!(out, r);
        }
        assert_eq!(enc.stats().records, 1_000_000);
    }
    assert_eq!(live(), baseline, "heap bytes after dropping everything");
}
