//! Buffer pool: one acquire + release of a 4096-byte buffer from a `GlyphBufferPool` of 16, 32,
//! 64 and 128 buffers, against `Vec::with_capacity(4096)` + drop (the unpooled path), one thread.
//!
//! `cargo bench -p sigma-bench --bench pool`; figures in the crate's README ("Buffer pool").

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sigmalang::{GlyphBufferPool, PoolConfig};

/// The buffer size of the record encoder's pool (`PoolConfig::default().buffer_size`).
const BUFFER: usize = 4096;

fn pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for size in [16usize, 32, 64, 128] {
        let mut pool = GlyphBufferPool::new(
            PoolConfig::default()
                .pool_size(size)
                .min_size(size)
                .max_size(size)
                .buffer_size(BUFFER)
                .adaptive(false),
        );
        assert_eq!(pool.stats().available_buffers, size);
        g.bench_with_input(BenchmarkId::new("acquire+release", size), &size, |b, _| {
            b.iter(|| {
                let buf = black_box(pool.acquire());
                pool.release(buf);
            })
        });
        let s = pool.stats();
        assert_eq!(
            s.overflow_allocations, 0,
            "every acquire was served by the pool"
        );
    }
    g.bench_function("vec-with-capacity+drop", |b| {
        b.iter(|| {
            let buf: Vec<u8> = Vec::with_capacity(BUFFER);
            drop(black_box(buf));
        })
    });
    g.finish();
}

criterion_group!(benches, pool);
criterion_main!(benches);
