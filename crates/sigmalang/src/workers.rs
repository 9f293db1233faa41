//! Worker threads of the batch and stream coders: how many, and their pool.

use crate::error::{Error, Result};

/// The number of workers `threads` asks for: itself, or one per core for 0.
pub(crate) fn count(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// A pool of `n` threads named `sigma-{role}-{i}`.
pub(crate) fn pool(n: usize, role: &'static str) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(move |i| format!("sigma-{role}-{i}"))
        .build()
        .map_err(|e| Error::invalid(format!("cannot start {n} worker threads: {e}")))
}

/// A small deterministic generator for tests (xorshift64*).
#[cfg(test)]
pub(crate) struct TestRng(pub u64);

#[cfg(test)]
impl TestRng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
