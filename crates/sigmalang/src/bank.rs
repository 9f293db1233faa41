//! The Σ-bank: content seen earlier in the archive, for REFERENCE glyphs across contexts.
//!
//! Contexts catch repetition within a conversation's recent records; the bank catches it
//! anywhere else in the archive: the same system prompt in thousands of requests, a document
//! pasted into several conversations, a root of the record's own context outside its frames. The bank
//! holds *roots* (records coded against nothing, so each decodes on its own) and indexes them by
//! the hash of every [`BLOCK`]-byte aligned block. A record whose bytes contain such a block (found
//! with a rolling hash at every position, then compared byte by byte) gets up to [`MAX_REFS`] of
//! those roots as extra frames: its repeats of them become DELTA runs, and the archive's index
//! lists the roots it references. A reference is a record index, verified content is copied, and
//! roots depend on nothing, so no collision can change what a record decodes to and every
//! reference resolves. Memory is bounded: the oldest roots leave the bank once it holds more than
//! its budget, and evicted roots are never referenced again.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// Roots are indexed by blocks of this many bytes; shorter shared spans are not referenced.
pub const BLOCK: usize = 64;
/// A record references at most this many roots.
pub const MAX_REFS: usize = 2;
/// A reference must cover at least this many bytes of the record.
pub const MIN_SHARED: usize = 256;

const BASE: u64 = 0x100_0000_01b3;
/// The filter of indexed block hashes has about this many bits per indexed block (between
/// this and twice it): a position with no indexed block passes it with a chance of 1/16 or less.
const FILTER_BITS_PER_BLOCK: usize = 16;
/// log2 of the smallest filter (8 KiB).
const MIN_FILTER_BITS: u32 = 16;

/// The roots that later records of other contexts may reference.
#[derive(Debug)]
pub struct Bank {
    budget: usize,
    bytes: usize,
    roots: VecDeque<(u64, Vec<u8>)>,
    /// block hash -> (root index, offset of the block in the root); entries of evicted roots
    /// are skipped, and swept out when they outnumber the live ones.
    index: HashMap<u64, (u64, u32), BuildHasherDefault<BlockHasher>>,
    live_blocks: usize,
    /// A bit per slot of hashed block hashes: clear means no indexed block has that hash, so
    /// most positions of a record skip the index (the filter stays in cache; the index does
    /// not). Bits of swept-out blocks stay set until the next sweep rebuilds the filter.
    filter: Vec<u64>,
    /// log2 of the filter's bits.
    filter_bits: u32,
    /// Scratch of `references_into`: (root, shared bytes).
    shared: Vec<(u64, usize)>,
    /// BASE^(BLOCK - 1): the weight of a block's first byte, to roll the hash.
    pow: u64,
}

/// The index's hasher. Its keys are already polynomial hashes of 64 bytes, so one multiply
/// spreads them over the table; the default SipHash cost more than the rest of a lookup, and
/// a lookup happens at every byte of every record.
#[derive(Default)]
struct BlockHasher(u64);

impl Hasher for BlockHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, k: u64) {
        let k = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = k ^ (k >> 29);
    }
}

fn hash_block(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |h, &x| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(x) + 1)
    })
}

impl Bank {
    /// A bank holding at most `budget` bytes of roots.
    pub fn new(budget: usize) -> Bank {
        let pow = (1..BLOCK).fold(1u64, |p, _| p.wrapping_mul(BASE));
        Bank {
            budget,
            bytes: 0,
            roots: VecDeque::new(),
            index: HashMap::default(),
            live_blocks: 0,
            shared: Vec::new(),
            pow,
            filter: vec![0; 1 << (MIN_FILTER_BITS - 6)],
            filter_bits: MIN_FILTER_BITS,
        }
    }

    /// The filter bit of block hash `h`.
    #[inline]
    fn filter_slot(&self, h: u64) -> usize {
        (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.filter_bits)) as usize
    }

    /// Whether a block with hash `h` may be indexed (false: it is not).
    #[inline]
    fn may_hold(&self, h: u64) -> bool {
        let slot = self.filter_slot(h);
        self.filter[slot >> 6] >> (slot & 63) & 1 != 0
    }

    fn filter_add(&mut self, h: u64) {
        let slot = self.filter_slot(h);
        self.filter[slot >> 6] |= 1 << (slot & 63);
    }

    /// Sizes the filter to [`FILTER_BITS_PER_BLOCK`] bits per indexed block and sets the bits
    /// of exactly the indexed blocks.
    fn rebuild_filter(&mut self) {
        let want = (self.index.len() * FILTER_BITS_PER_BLOCK)
            .next_power_of_two()
            .trailing_zeros()
            .max(MIN_FILTER_BITS);
        self.filter_bits = want;
        self.filter.clear();
        self.filter.resize(1 << (want - 6), 0);
        let keys: Vec<u64> = self.index.keys().copied().collect();
        for h in keys {
            self.filter_add(h);
        }
    }

    /// Adds root `index` (a record coded against nothing). Roots are added in index order.
    pub fn add_root(&mut self, index: u64, bytes: &[u8]) {
        if bytes.len() < MIN_SHARED || bytes.len() > self.budget {
            return;
        }
        for (k, block) in bytes.chunks_exact(BLOCK).enumerate() {
            // A newer root takes over the block: it is more likely to be still in the bank.
            let h = hash_block(block);
            self.index.insert(h, (index, (k * BLOCK) as u32));
            self.filter_add(h);
        }
        self.live_blocks += bytes.len() / BLOCK;
        self.bytes += bytes.len();
        self.roots.push_back((index, bytes.to_vec()));
        while self.bytes > self.budget {
            let (_, b) = self.roots.pop_front().expect("over budget means non-empty");
            self.bytes -= b.len();
            self.live_blocks -= b.len() / BLOCK;
        }
        if self.index.len() > 2 * self.live_blocks + 1024 {
            let first = self.roots.front().map_or(u64::MAX, |r| r.0);
            self.index.retain(|_, (r, _)| *r >= first);
            self.rebuild_filter();
        } else if self.index.len() * FILTER_BITS_PER_BLOCK > 1 << self.filter_bits {
            self.rebuild_filter();
        }
    }

    /// The bytes of root `index`, while it is in the bank.
    pub fn root(&self, index: u64) -> Option<&[u8]> {
        let pos = self.roots.binary_search_by_key(&index, |r| r.0).ok()?;
        self.roots.get(pos).map(|(_, b)| &b[..])
    }

    /// The roots, other than those in `exclude`, that share the most verified bytes with
    /// `record` (at least [`MIN_SHARED`] each), oldest first, with their bytes.
    pub fn references(&mut self, exclude: &[u64], record: &[u8]) -> Vec<(u64, &[u8])> {
        let mut ids = Vec::new();
        self.references_into(exclude, record, &mut ids);
        ids.into_iter()
            .filter_map(|r| self.root(r).map(|b| (r, b)))
            .collect()
    }

    /// Writes the indices of the roots [`references`](Self::references) would return into
    /// `out` (cleared first), allocating nothing in steady state.
    pub fn references_into(&mut self, exclude: &[u64], record: &[u8], out: &mut Vec<u64>) {
        let mut shared = std::mem::take(&mut self.shared);
        self.references_with(&mut shared, exclude, record, out);
        self.shared = shared;
    }

    /// As [`references_into`](Self::references_into), with the caller's scratch vector (so
    /// that several threads can look up one bank).
    pub fn references_with(
        &self,
        shared: &mut Vec<(u64, usize)>,
        exclude: &[u64],
        record: &[u8],
        out: &mut Vec<u64>,
    ) {
        out.clear();
        shared.clear();
        if record.len() < BLOCK || self.index.is_empty() {
            return;
        }
        let mut h = hash_block(&record[..BLOCK]);
        let mut i = 0;
        loop {
            if let Some(&(root, off)) = self.may_hold(h).then(|| self.index.get(&h)).flatten() {
                if let Some(bytes) = self.root(root).filter(|_| !exclude.contains(&root)) {
                    let off = off as usize;
                    if bytes[off..off + BLOCK] == record[i..i + BLOCK] {
                        // Verified: extend the match forward and count it once.
                        let n = bytes[off..]
                            .iter()
                            .zip(&record[i..])
                            .take_while(|(a, b)| a == b)
                            .count();
                        match shared.iter_mut().find(|(r, _)| *r == root) {
                            Some((_, total)) => *total += n,
                            None => shared.push((root, n)),
                        }
                        i += n;
                        if i + BLOCK > record.len() {
                            break;
                        }
                        h = hash_block(&record[i..i + BLOCK]);
                        continue;
                    }
                }
            }
            if i + BLOCK >= record.len() {
                break;
            }
            h = h
                .wrapping_sub((u64::from(record[i]) + 1).wrapping_mul(self.pow))
                .wrapping_mul(BASE)
                .wrapping_add(u64::from(record[i + BLOCK]) + 1);
            i += 1;
        }
        shared.retain(|&(_, n)| n >= MIN_SHARED);
        shared.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        shared.truncate(MAX_REFS);
        out.extend(shared.iter().map(|&(r, _)| r));
        out.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_shared_roots_of_other_contexts_only() {
        let prompt: Vec<u8> = (0..600u32)
            .map(|i| b"You are a careful assistant. "[i as usize % 29])
            .collect();
        let mut a = prompt.clone();
        a.extend_from_slice(b" first question");
        let mut bank = Bank::new(1 << 20);
        bank.add_root(0, &a);
        let mut b = b"prefix that shifts alignment: ".to_vec();
        b.extend_from_slice(&prompt);
        b.extend_from_slice(b" second question");
        let refs = bank.references(&[], &b);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].0, 0);
        assert_eq!(refs[0].1, &a[..]);
        assert!(bank.references(&[0], &b).is_empty(), "frames are left out");
        assert!(bank.references(&[], b"short").is_empty());
        let unrelated: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert!(bank.references(&[], &unrelated).is_empty());
    }

    #[test]
    fn eviction_keeps_the_budget_and_forgets_old_roots() {
        let mut bank = Bank::new(2000);
        let root = |k: u8| -> Vec<u8> {
            (0..900u32)
                .map(|i| (i as u8).wrapping_mul(k | 1).wrapping_add(k))
                .collect()
        };
        for k in 0..5u8 {
            bank.add_root(u64::from(k), &root(k));
        }
        assert!(bank.bytes <= 2000);
        assert!(bank.references(&[], &root(0)).is_empty());
        assert_eq!(bank.references(&[], &root(4))[0].0, 4);
    }

    /// The filter never changes a lookup. After every add_root (growth rebuilds,
    /// evictions, sweeps), every indexed hash passes the filter, and lookups with the filter
    /// equal lookups with a filter of all ones (the index alone).
    #[test]
    fn the_filter_never_changes_a_lookup() {
        use crate::workers::TestRng as Rng;
        let (mut sweeps, mut growths, mut hits) = (0, 0, 0);
        for (seed, budget) in [(1u64, 8192usize), (2, 1 << 20), (3, 3000), (4, 40_000)] {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut bank = Bank::new(budget);
            let mut all: Vec<Vec<u8>> = Vec::new();
            for index in 0..400u64 {
                let len = 200 + rng.below(6000) as usize;
                let mut root: Vec<u8> = Vec::with_capacity(len);
                while root.len() < len {
                    if !all.is_empty() && rng.below(3) == 0 {
                        let src = &all[rng.below(all.len() as u64) as usize];
                        let a = rng.below(src.len() as u64) as usize;
                        let b = (a + rng.below(700) as usize).min(src.len());
                        root.extend_from_slice(&src[a..b]);
                    } else {
                        root.push(b"abc "[rng.below(4) as usize]);
                        root.push(rng.next() as u8);
                    }
                }
                let bits = bank.filter_bits;
                let before = bank.index.len();
                bank.add_root(index, &root);
                if bank.index.len() < before {
                    sweeps += 1;
                }
                if bank.filter_bits != bits {
                    growths += 1;
                }
                for &h in bank.index.keys() {
                    assert!(bank.may_hold(h), "an indexed hash fails the filter");
                }
                all.push(root);
                // Lookups: spans of old and recent roots, misaligned, with noise.
                for _ in 0..3 {
                    let mut rec = Vec::new();
                    for _ in 0..1 + rng.below(4) {
                        let src = &all[rng.below(all.len() as u64) as usize];
                        let a = rng.below(src.len() as u64) as usize;
                        let b = (a + 64 + rng.below(2000) as usize).min(src.len());
                        rec.extend_from_slice(&src[a..b]);
                        rec.extend((0..rng.below(100)).map(|_| rng.next() as u8));
                    }
                    let exclude: Vec<u64> =
                        (0..rng.below(3)).map(|_| rng.below(index + 1)).collect();
                    let (mut scratch, mut with, mut without) = (Vec::new(), Vec::new(), Vec::new());
                    bank.references_with(&mut scratch, &exclude, &rec, &mut with);
                    let ones = vec![!0; bank.filter.len()];
                    let saved = std::mem::replace(&mut bank.filter, ones);
                    bank.references_with(&mut scratch, &exclude, &rec, &mut without);
                    bank.filter = saved;
                    assert_eq!(with, without, "root {index}");
                    hits += usize::from(!with.is_empty());
                }
            }
        }
        eprintln!("sweeps {sweeps}, filter resizes {growths}, lookups with references {hits}");
        assert!(sweeps > 0 && growths > 0 && hits > 100);
    }
}
