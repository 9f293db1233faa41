//! Buffer pools for the hot path: reusable byte buffers and context frames.
//!
//! An encoder needs a few byte buffers per record (the history its match model reads, the coded
//! body). Allocating them per record costs a malloc/free pair each and touches cold memory; a
//! [`GlyphBufferPool`] keeps released buffers and hands them out again. The pool belongs to one
//! encoder (or decoder): it is a plain vector and plain counters, no locks and no atomics, so an
//! acquire and release cost a few nanoseconds (`sigma-bench`'s `pool` bench measures it).
//!
//! The pool adapts: every `check_every` encodings it looks at the share of acquires it could not
//! serve from its free buffers (overflows) since the last check, grows by `grow_factor` when that
//! share is above `grow_above` (up to `max_size` buffers) and shrinks by `shrink_factor` when it
//! is below `shrink_below` (down to `min_size`). A buffer returned to a full pool is dropped, and
//! so is one that grew past `max_retained_capacity`, so a single huge record does not pin memory.
//!
//! With `enabled: false` every acquire allocates and every release frees: the same code path
//! without reuse, for A/B measurements. Output never depends on pooling.

/// How a [`GlyphBufferPool`] behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Reuse buffers at all (off: allocate on every acquire, free on every release).
    pub(crate) enabled: bool,
    /// Buffers kept, and pre-allocated at creation.
    pub(crate) pool_size: usize,
    /// Capacity of a new buffer.
    pub(crate) buffer_size: usize,
    /// Resize by the overflow rate.
    pub(crate) adaptive: bool,
    /// Encodings between two adaptive checks.
    pub(crate) check_every: u64,
    /// Grow when the overflow rate since the last check is above this.
    pub(crate) grow_above: f64,
    /// Shrink when it is below this.
    pub(crate) shrink_below: f64,
    /// Factor of a growth.
    pub(crate) grow_factor: f64,
    /// Factor of a shrink.
    pub(crate) shrink_factor: f64,
    /// Largest pool size.
    pub(crate) max_size: usize,
    /// Smallest pool size.
    pub(crate) min_size: usize,
    /// Buffers that grew beyond this capacity are dropped on release.
    pub(crate) max_retained_capacity: usize,
}

crate::settings! {
    PoolConfig {
        /// Reuse buffers at all (off: allocate on every acquire, free on every release).
        enabled, get_enabled: enabled: bool;
        /// Buffers kept, and pre-allocated at creation.
        pool_size, get_pool_size: pool_size: usize;
        /// Capacity of a new buffer.
        buffer_size, get_buffer_size: buffer_size: usize;
        /// Resize by the overflow rate.
        adaptive, get_adaptive: adaptive: bool;
        /// Encodings between two adaptive checks.
        check_every, get_check_every: check_every: u64;
        /// Grow when the overflow rate since the last check is above this.
        grow_above, get_grow_above: grow_above: f64;
        /// Shrink when it is below this.
        shrink_below, get_shrink_below: shrink_below: f64;
        /// Factor of a growth.
        grow_factor, get_grow_factor: grow_factor: f64;
        /// Factor of a shrink.
        shrink_factor, get_shrink_factor: shrink_factor: f64;
        /// Largest pool size.
        max_size, get_max_size: max_size: usize;
        /// Smallest pool size.
        min_size, get_min_size: min_size: usize;
        /// Buffers that grew beyond this capacity are dropped on release.
        max_retained_capacity, get_max_retained_capacity: max_retained_capacity: usize;
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            enabled: true,
            pool_size: 16,
            buffer_size: 4096,
            adaptive: true,
            check_every: 100,
            grow_above: 0.05,
            shrink_below: 0.01,
            grow_factor: 1.5,
            shrink_factor: 0.75,
            max_size: 128,
            min_size: 16,
            max_retained_capacity: 64 << 20,
        }
    }
}

impl PoolConfig {
    /// No pooling: every acquire allocates.
    pub fn disabled() -> PoolConfig {
        PoolConfig {
            enabled: false,
            ..PoolConfig::default()
        }
    }
}

/// What a pool has done.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolStats {
    /// Buffers the pool keeps at most, now.
    pub pool_size: usize,
    /// Capacity of a new buffer.
    pub buffer_size: usize,
    /// Free buffers now.
    pub available_buffers: usize,
    /// Acquires so far.
    pub total_acquires: u64,
    /// Acquires that had to allocate.
    pub overflow_allocations: u64,
    /// `overflow_allocations / total_acquires` (0 with no acquire).
    pub overflow_rate: f64,
    /// Resizes made by the adaptive policy.
    pub adaptive_resizes: u64,
    /// Buffers dropped on release (pool full, or grown too large).
    pub dropped_on_release: u64,
}

impl PoolStats {
    /// Adds another pool's counters (for totals over several workers).
    pub fn merge(&mut self, other: &PoolStats) {
        self.pool_size += other.pool_size;
        self.available_buffers += other.available_buffers;
        self.total_acquires += other.total_acquires;
        self.overflow_allocations += other.overflow_allocations;
        self.adaptive_resizes += other.adaptive_resizes;
        self.dropped_on_release += other.dropped_on_release;
        self.buffer_size = self.buffer_size.max(other.buffer_size);
        self.overflow_rate = if self.total_acquires == 0 {
            0.0
        } else {
            self.overflow_allocations as f64 / self.total_acquires as f64
        };
    }
}

/// Reusable byte buffers for one encoder or decoder.
#[derive(Debug)]
pub struct GlyphBufferPool {
    config: PoolConfig,
    free: Vec<Vec<u8>>,
    size: usize,
    acquires: u64,
    overflows: u64,
    resizes: u64,
    dropped: u64,
    encodings: u64,
    window_acquires: u64,
    window_overflows: u64,
}

impl Default for GlyphBufferPool {
    fn default() -> Self {
        GlyphBufferPool::new(PoolConfig::default())
    }
}

impl GlyphBufferPool {
    /// A pool with `config`, its buffers pre-allocated.
    pub fn new(config: PoolConfig) -> GlyphBufferPool {
        let size = config
            .pool_size
            .clamp(config.min_size.min(config.max_size), config.max_size.max(1));
        let mut free = Vec::with_capacity(if config.enabled { config.max_size } else { 0 });
        if config.enabled {
            free.extend((0..size).map(|_| Vec::with_capacity(config.buffer_size)));
        }
        GlyphBufferPool {
            config,
            free,
            size,
            acquires: 0,
            overflows: 0,
            resizes: 0,
            dropped: 0,
            encodings: 0,
            window_acquires: 0,
            window_overflows: 0,
        }
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// An empty buffer: a free one if there is one, else a new one (an overflow).
    #[inline]
    pub fn acquire(&mut self) -> Vec<u8> {
        self.acquires += 1;
        self.window_acquires += 1;
        match self.free.pop() {
            Some(buf) => buf,
            None => {
                self.overflows += 1;
                self.window_overflows += 1;
                Vec::with_capacity(self.config.buffer_size)
            }
        }
    }

    /// Gives a buffer back. It is kept (emptied) unless the pool is full, pooling is off, or
    /// the buffer grew past `max_retained_capacity`.
    #[inline]
    pub fn release(&mut self, mut buf: Vec<u8>) {
        if self.config.enabled
            && self.free.len() < self.size
            && buf.capacity() <= self.config.max_retained_capacity
        {
            buf.clear();
            self.free.push(buf);
        } else {
            self.dropped += 1;
        }
    }

    /// Runs `f` with a buffer from the pool and gives it back afterwards.
    pub fn with_buffer<T>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
        let mut buf = self.acquire();
        let out = f(&mut buf);
        self.release(buf);
        out
    }

    /// Counts one encoding (or decoding); every `check_every` of them the adaptive policy may
    /// resize the pool.
    #[inline]
    pub fn note_encoding(&mut self) {
        self.encodings += 1;
        if self.config.enabled
            && self.config.adaptive
            && self.config.check_every > 0
            && self.encodings % self.config.check_every == 0
        {
            if let Some(size) = self.suggest_resize() {
                self.resize(size);
                self.resizes += 1;
            }
            self.window_acquires = 0;
            self.window_overflows = 0;
        }
    }

    /// The size the adaptive policy would choose now, if it differs from the current one.
    pub fn suggest_resize(&self) -> Option<usize> {
        if self.window_acquires == 0 {
            return None;
        }
        let rate = self.window_overflows as f64 / self.window_acquires as f64;
        let c = &self.config;
        let target = if rate > c.grow_above {
            ((self.size as f64 * c.grow_factor).ceil() as usize).min(c.max_size)
        } else if rate < c.shrink_below {
            ((self.size as f64 * c.shrink_factor).floor() as usize).max(c.min_size)
        } else {
            self.size
        };
        (target != self.size).then_some(target)
    }

    /// Sets how many buffers the pool keeps; frees the surplus free buffers at once.
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(1);
        while self.free.len() > self.size {
            self.free.pop();
        }
    }

    /// The pool's counters.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            pool_size: self.size,
            buffer_size: self.config.buffer_size,
            available_buffers: self.free.len(),
            total_acquires: self.acquires,
            overflow_allocations: self.overflows,
            overflow_rate: if self.acquires == 0 {
                0.0
            } else {
                self.overflows as f64 / self.acquires as f64
            },
            adaptive_resizes: self.resizes,
            dropped_on_release: self.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_buffers_and_counts_overflows() {
        let mut pool = GlyphBufferPool::new(PoolConfig {
            pool_size: 2,
            min_size: 2,
            adaptive: false,
            ..PoolConfig::default()
        });
        assert_eq!(pool.stats().available_buffers, 2);
        let a = pool.acquire();
        let b = pool.acquire();
        let c = pool.acquire(); // overflow
        assert_eq!(a.capacity(), 4096);
        let s = pool.stats();
        assert_eq!(
            (
                s.total_acquires,
                s.overflow_allocations,
                s.available_buffers
            ),
            (3, 1, 0)
        );
        pool.release(a);
        pool.release(b);
        pool.release(c); // the pool is full: dropped
        let s = pool.stats();
        assert_eq!((s.available_buffers, s.dropped_on_release), (2, 1));
        let mut d = pool.acquire();
        d.extend_from_slice(b"data");
        pool.release(d);
        assert!(
            pool.acquire().is_empty(),
            "released buffers come back empty"
        );
    }

    #[test]
    fn adapts_to_the_overflow_rate() {
        let mut pool = GlyphBufferPool::new(PoolConfig::default());
        // 20 buffers held at once per encoding: 4 of 20 acquires overflow (20% > 5%).
        for _ in 0..100 {
            let held: Vec<Vec<u8>> = (0..20).map(|_| pool.acquire()).collect();
            for b in held {
                pool.release(b);
            }
            pool.note_encoding();
        }
        let s = pool.stats();
        assert_eq!((s.pool_size, s.adaptive_resizes), (24, 1));
        // One buffer per encoding: no overflow, shrinks back to the floor (16).
        for _ in 0..300 {
            let b = pool.acquire();
            pool.release(b);
            pool.note_encoding();
        }
        let s = pool.stats();
        assert_eq!(s.pool_size, 16);
        assert!(s.available_buffers <= 16);
        assert_eq!(pool.suggest_resize(), None);
        pool.resize(128);
        assert_eq!(pool.stats().pool_size, 128);
    }

    #[test]
    fn disabled_pools_allocate_every_time() {
        let mut pool = GlyphBufferPool::new(PoolConfig::disabled());
        for _ in 0..10 {
            let b = pool.acquire();
            pool.release(b);
        }
        let s = pool.stats();
        assert_eq!(
            (
                s.total_acquires,
                s.overflow_allocations,
                s.available_buffers
            ),
            (10, 10, 0)
        );
    }
}
