//! Instruction counts of the buffer pool: N acquire + release pairs of a 4096-byte buffer from
//! a `GlyphBufferPool` (16 buffers, not adaptive), or N `Vec::with_capacity(4096)` + drop
//! (the system allocator, glibc malloc/free), for running under valgrind:
//!
//! ```sh
//! cargo build --release -p sigma-bench --example pool_count
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.pool target/release/examples/pool_count pool 1000000
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.base target/release/examples/pool_count pool 0
//! ```
//!
//! Instructions per pair = (Ir with N - Ir with 0) / N; the same for `vec`. The pairs run in
//! `#[inline(never)]` functions (`pool_pairs`, `vec_pairs`), so callgrind's inclusive cost of
//! that function is a second reading of the same figure.

use std::hint::black_box;

use sigmalang::{GlyphBufferPool, PoolConfig};

const BUFFER: usize = 4096;

#[inline(never)]
fn pool_pairs(pool: &mut GlyphBufferPool, n: u64) {
    for _ in 0..n {
        let buf = black_box(pool.acquire());
        pool.release(buf);
    }
}

#[inline(never)]
fn vec_pairs(n: u64) {
    for _ in 0..n {
        let buf: Vec<u8> = Vec::with_capacity(BUFFER);
        drop(black_box(buf));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    // The pool exists in both modes, so the N = 0 baseline of either subtracts its creation.
    let mut pool = GlyphBufferPool::new(
        PoolConfig::default()
            .pool_size(16)
            .buffer_size(BUFFER)
            .adaptive(false),
    );
    match mode.as_str() {
        "pool" => pool_pairs(&mut pool, black_box(n)),
        "vec" => vec_pairs(black_box(n)),
        _ => {
            eprintln!("usage: pool_count pool|vec [N]");
            std::process::exit(2);
        }
    }
    let s = pool.stats();
    println!(
        "{mode} {n}: pool acquires {}, overflow allocations {}",
        s.total_acquires, s.overflow_allocations
    );
}
