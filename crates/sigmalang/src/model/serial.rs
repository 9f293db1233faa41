//! The model section of a codebook file: training counts and calibration tables.
//!
//! The file stores what training measured, not coder frequencies; loading turns counts into
//! frequencies with [`quantize`] (IEEE-754 double arithmetic with only `+ - * /` and truncation,
//! so every machine gets the same frequencies). Context keys are implicit: every order-`k`
//! context is an order-`k-1` context followed by one of its listed bytes, so a presence bit per
//! listed byte of the order below names the contexts of an order.
//!
//! ```text
//! varint max_order
//! first-visit escape table: (max_order + 1) * 256 varints, escape probability * 65536
//! after-escape table:       (max_order + 1) * 256 varints, escape odds * 256
//! order 0: 256 varints, the count of each byte
//! order k = 1..=max_order:
//!   presence bits, one per listed byte of each order k-1 context (contexts in key order, bytes
//!   ascending; order 0 counts as listing all 256, an all-zero context as listing byte 0),
//!   packed LSB first into ceil(bits / 8) bytes
//!   for each present context, in the same order:
//!     varint d - 1 (distinct followers), d bytes (ascending, each as the gap from the previous
//!     plus one, the first as itself), d varints (counts, each >= 1)
//! ```

use super::{ContextModel, ARENA_PADDING, MAX_ORDER, NODE_HEADER, NO_NODE, SEE_CELLS};
use crate::coder::MAX_TOTAL;
use crate::error::{Error, Result};
use crate::varint;
use rayon::prelude::*;

/// A context while training or loading: its key and `(symbol, count)` sorted by symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Counted {
    pub key: u64,
    pub counts: Vec<(u8, u32)>,
}

impl Counted {
    /// The context's occurrences (saturating: counts come from files).
    pub(crate) fn total(&self) -> u32 {
        self.counts
            .iter()
            .fold(0u32, |t, &(_, c)| t.saturating_add(c))
    }
}

/// Everything a model is built from.
#[derive(Clone, Debug)]
pub(crate) struct ModelCounts {
    pub max_order: usize,
    /// First-visit escape probability * 65536, per order and cell.
    pub first: Vec<u16>,
    /// After-escape escape odds * 256, per order and cell.
    pub after: Vec<u16>,
    /// Contexts of each order, sorted by key; order 0 has one context.
    pub orders: Vec<Vec<Counted>>,
}

pub(crate) const N_BUCKETS: usize = 24;
pub(crate) const D_BUCKETS: usize = 8;

pub(crate) fn n_bucket(n: u32) -> usize {
    // 1, 2, 3, then two buckets per power of two.
    if n <= 3 {
        return n as usize;
    }
    let log = 31 - n.leading_zeros() as usize;
    let half = ((n >> (log - 1)) & 1) as usize;
    (2 * log + half).min(N_BUCKETS - 1)
}

pub(crate) fn d_bucket(d: usize) -> usize {
    match d {
        0..=4 => d.saturating_sub(1),
        5..=6 => 4,
        7..=10 => 5,
        11..=20 => 6,
        _ => 7,
    }
}

/// The calibration cell of a context: its count bucket and distinct-followers bucket.
pub(crate) fn cell_of(c: &Counted) -> u8 {
    cell(c.total(), c.counts.len())
}

/// The calibration cell of a context seen `total` times with `distinct` different followers.
fn cell(total: u32, distinct: usize) -> u8 {
    (n_bucket(total) * D_BUCKETS + d_bucket(distinct)) as u8
}

impl ModelCounts {
    /// Appends the model section.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        varint::write(out, self.max_order as u64);
        for &v in self.first.iter().chain(&self.after) {
            varint::write(out, u64::from(v));
        }
        let mut root = [0u32; 256];
        for &(s, c) in &self.orders[0][0].counts {
            root[usize::from(s)] = c;
        }
        for c in root {
            varint::write(out, u64::from(c));
        }
        for k in 1..=self.max_order {
            let mut bits = BitWriter::default();
            let mut present = self.orders[k].iter().peekable();
            for parent in &self.orders[k - 1] {
                for sym in listed(parent, k - 1) {
                    let key = parent.key << 8 | u64::from(sym);
                    let here = present.peek().is_some_and(|c| c.key == key);
                    if here {
                        present.next();
                    }
                    bits.push(here);
                }
            }
            debug_assert!(present.next().is_none(), "every context extends a parent");
            out.extend_from_slice(&bits.bytes);
            for c in &self.orders[k] {
                varint::write(out, c.counts.len() as u64 - 1);
                let mut prev: Option<u8> = None;
                for &(s, _) in &c.counts {
                    out.push(match prev {
                        None => s,
                        Some(p) => s - p - 1,
                    });
                    prev = Some(s);
                }
                for &(_, n) in &c.counts {
                    varint::write(out, u64::from(n));
                }
            }
        }
    }
}

/// The bytes that may extend a context into a longer one, ascending: all 256 for order 0, and
/// byte 0 first for an all-zero context that does not list it (a record's start is preceded
/// by zeros, so the all-zero contexts of every order exist without their shorter all-zero
/// context listing byte 0). [`Order::extensions`] is the same rule for a loaded model.
fn listed(c: &Counted, order: usize) -> impl Iterator<Item = u8> + '_ {
    let all = order == 0;
    let zero = !all && c.key == 0 && c.counts.first().map(|&(s, _)| s) != Some(0);
    let syms = (!all).then(|| c.counts.iter().map(|&(s, _)| s));
    (0..=255u8)
        .filter(move |_| all)
        .chain(zero.then_some(0))
        .chain(syms.into_iter().flatten())
}

/// A model section as read: the counts of every context in flat arrays, one set per order
/// (loading allocates per order, not per context: a short command spends most of its time
/// loading its codebook).
pub(crate) struct LoadedCounts {
    /// First-visit escape probability * 65536, per order and cell.
    first: Vec<u16>,
    /// After-escape escape odds * 256, per order and cell.
    after: Vec<u16>,
    orders: Vec<Order>,
}

/// The contexts of one order, in key order.
#[derive(Default)]
struct Order {
    keys: Vec<u64>,
    /// Context `i`'s followers are `syms[ends[i]..ends[i + 1]]`, ascending, counted in
    /// `counts` alike. Order 0 lists all 256 bytes, unseen ones with count 0.
    ends: Vec<u32>,
    syms: Vec<u8>,
    counts: Vec<u32>,
    /// Context `i`'s children (the contexts one byte longer that extend it) are
    /// `children[i]..children[i + 1]` of the next order; empty for the longest order.
    children: Vec<u32>,
}

impl Order {
    fn len(&self) -> usize {
        self.keys.len()
    }

    fn span(&self, i: usize) -> std::ops::Range<usize> {
        self.ends[i] as usize..self.ends[i + 1] as usize
    }

    /// The bytes that may extend context `i` into a longer one, ascending: its listed bytes,
    /// and byte 0 first for an all-zero context that does not list it (a record's start is
    /// preceded by zeros, so the all-zero contexts of every order exist without their shorter
    /// all-zero context listing byte 0). Order 0 lists all 256 bytes.
    fn extensions(&self, i: usize) -> (bool, &[u8]) {
        let syms = &self.syms[self.span(i)];
        let zero_first = self.keys[i] == 0 && syms.first() != Some(&0);
        (zero_first, syms)
    }
}

impl LoadedCounts {
    /// Reads a model section from `buf` at `*pos`.
    pub(crate) fn read(buf: &[u8], pos: &mut usize, base: u64) -> Result<LoadedCounts> {
        let at = |pos: usize| base + pos as u64;
        let max_order = varint::read(buf, pos, base)? as usize;
        if max_order == 0 || max_order > MAX_ORDER {
            return Err(Error::corrupt(
                format!("model order {max_order} is not 1..={MAX_ORDER}"),
                at(*pos),
            ));
        }
        let cells = (max_order + 1) * SEE_CELLS;
        let mut table = |what: &str| -> Result<Vec<u16>> {
            (0..cells)
                .map(|_| {
                    let v = varint::read(buf, pos, base)?;
                    if v == 0 || v > u64::from(u16::MAX) {
                        return Err(Error::corrupt(
                            format!("{what} value {v} out of range"),
                            at(*pos),
                        ));
                    }
                    Ok(v as u16)
                })
                .collect()
        };
        let first = table("escape table")?;
        let after = table("after-escape table")?;
        let mut root = Order {
            keys: vec![0],
            ends: vec![0, 256],
            syms: (0..=255).collect(),
            counts: Vec::with_capacity(256),
            children: Vec::new(),
        };
        for _ in 0..256 {
            root.counts.push(read_count(buf, pos, base, true)?);
        }
        let mut orders = vec![root];
        for k in 1..=max_order {
            let parents = &orders[k - 1];
            let bit_count: usize = (0..parents.len())
                .map(|i| {
                    let (zero, syms) = parents.extensions(i);
                    usize::from(zero) + syms.len()
                })
                .sum();
            let nbytes = bit_count.div_ceil(8);
            let bits = buf
                .get(*pos..*pos + nbytes)
                .ok_or_else(|| Error::truncated("a context presence map", at(*pos)))?;
            *pos += nbytes;
            let mut order = Order::default();
            let mut children = Vec::with_capacity(parents.len() + 1);
            let mut i = 0usize;
            for p in 0..parents.len() {
                children.push(order.keys.len() as u32);
                let key = parents.keys[p] << 8;
                let (zero, syms) = parents.extensions(p);
                for &sym in (zero.then_some(&0u8)).into_iter().chain(syms) {
                    if bits[i / 8] >> (i % 8) & 1 != 0 {
                        order.keys.push(key | u64::from(sym));
                    }
                    i += 1;
                }
            }
            children.push(order.keys.len() as u32);
            orders[k - 1].children = children;
            order.ends.reserve(order.keys.len() + 1);
            order.ends.push(0);
            for _ in 0..order.keys.len() {
                let start = *pos;
                let d = varint::read(buf, pos, base)?;
                if d > 255 {
                    return Err(Error::corrupt(
                        "context with more than 256 followers",
                        at(start),
                    ));
                }
                let d = d + 1;
                let gaps = buf
                    .get(*pos..*pos + d as usize)
                    .ok_or_else(|| Error::truncated("a context's bytes", at(*pos)))?;
                *pos += d as usize;
                let mut prev: Option<u32> = None;
                for &g in gaps {
                    let s = prev.map_or(u32::from(g), |p| p + 1 + u32::from(g));
                    if s > 255 {
                        return Err(Error::corrupt("context byte past 255", at(start)));
                    }
                    order.syms.push(s as u8);
                    prev = Some(s);
                }
                for _ in 0..d {
                    order.counts.push(read_count(buf, pos, base, false)?);
                }
                order.ends.push(order.syms.len() as u32);
            }
            orders.push(order);
        }
        Ok(LoadedCounts {
            first,
            after,
            orders,
        })
    }

    /// Builds the coding model: counts and calibration become coder frequencies, written
    /// straight into the model's arena, which is then linked into a tree.
    pub(crate) fn build(self) -> Result<ContextModel> {
        let (arena, nodes) = self.quantize()?;
        let (keys, children): (Vec<_>, Vec<_>) = self
            .orders
            .into_iter()
            .map(|o| (o.keys, o.children))
            .unzip();
        ContextModel::link(arena, &nodes, &keys, &children, self.after)
    }

    /// The model's arena with every context's node written but not linked, and where each
    /// order's nodes are.
    fn quantize(&self) -> Result<(Vec<u32>, Vec<Vec<u32>>)> {
        let mut nodes: Vec<Vec<u32>> = Vec::with_capacity(self.orders.len());
        let mut words = 0usize;
        for o in &self.orders {
            let mut offs = Vec::with_capacity(o.len());
            for i in 0..o.len() {
                offs.push(u32::try_from(words).unwrap_or(NO_NODE));
                words += NODE_HEADER + 2 * o.span(i).len();
            }
            nodes.push(offs);
        }
        if words >= NO_NODE as usize - ARENA_PADDING {
            return Err(Error::invalid("model is too large"));
        }
        let mut arena = vec![0u32; words + ARENA_PADDING];
        // Every context is quantized on its own: runs of contexts go to the cores, each
        // writing its own part of the arena.
        const RUN: usize = 2048;
        let mut runs = Vec::new();
        let mut rest = &mut arena[..words];
        for (k, o) in self.orders.iter().enumerate() {
            for i0 in (0..o.len()).step_by(RUN) {
                let i1 = (i0 + RUN).min(o.len());
                let len = (o.ends[i1] - o.ends[i0]) as usize * 2 + (i1 - i0) * NODE_HEADER;
                let (run, tail) = std::mem::take(&mut rest).split_at_mut(len);
                rest = tail;
                runs.push((k, i0..i1, run));
            }
        }
        runs.into_par_iter()
            .try_for_each(|(k, contexts, run)| self.quantize_run(k, contexts, run))?;
        Ok((arena, nodes))
    }

    /// Quantizes the order-`k` contexts `contexts` into `run`, their nodes in the arena.
    fn quantize_run(
        &self,
        k: usize,
        contexts: std::ops::Range<usize>,
        mut run: &mut [u32],
    ) -> Result<()> {
        let o = &self.orders[k];
        let mut scratch = [0u32; 256];
        for i in contexts {
            let span = o.span(i);
            let (node, tail) = std::mem::take(&mut run).split_at_mut(NODE_HEADER + 2 * span.len());
            run = tail;
            let (syms, counts) = (&o.syms[span.clone()], &o.counts[span]);
            let total = counts.iter().fold(0u32, |t, &c| t.saturating_add(c));
            let seen = counts.iter().filter(|&&c| c > 0).count();
            let cell = cell(total, seen);
            let p = f64::from(self.first[k * SEE_CELLS + usize::from(cell)]) / 65536.0;
            quantize_into(node, syms, counts, p, k == 0, &mut scratch)
                .map_err(|e| Error::invalid(format!("order-{k} context: {e}")))?;
            node[1] = u32::from(cell) << 24 | (syms.len() as u32) << 8 | k as u32;
        }
        Ok(())
    }
}

fn read_count(buf: &[u8], pos: &mut usize, base: u64, zero_ok: bool) -> Result<u32> {
    let start = *pos;
    let c = varint::read(buf, pos, base)?;
    if (c == 0 && !zero_ok) || c > u64::from(u32::MAX) {
        return Err(Error::corrupt(
            format!("count {c} out of range"),
            base + start as u64,
        ));
    }
    Ok(c as u32)
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    n: usize,
}

impl BitWriter {
    fn push(&mut self, bit: bool) {
        if self.n % 8 == 0 {
            self.bytes.push(0);
        }
        if bit {
            *self.bytes.last_mut().expect("pushed above") |= 1 << (self.n % 8);
        }
        self.n += 1;
    }
}

/// Turns counts and an escape probability into coder frequencies, scaled to the coder's full
/// precision, none below 1, and writes them as a node: `node[0]` the escape frequency, then
/// `(symbol << 16 | frequency, NO_NODE)` per entry, most frequent first (ties: lower byte
/// first); the shape word is left to the caller, the links are unset. The frequencies and the
/// escape sum to exactly [`MAX_TOTAL`] (a power of two: the decoder scales the range with a
/// shift). Order 0 (`complete`) lists every byte, unseen ones weighing half a count, and has
/// no escape.
///
/// The arithmetic is IEEE-754 doubles with only `+ - * /` and truncation, in a fixed order, so
/// every machine turns a codebook into the same frequencies.
pub(crate) fn quantize_into(
    node: &mut [u32],
    syms: &[u8],
    counts: &[u32],
    p_escape: f64,
    complete: bool,
    scratch: &mut [u32; 256],
) -> std::result::Result<(), &'static str> {
    let n = syms.len();
    debug_assert!(n == counts.len() && node.len() == NODE_HEADER + 2 * n);
    if n == 0 {
        return Err("no symbols");
    }
    let weight = |c: u32| {
        if complete && c == 0 {
            0.5
        } else {
            f64::from(c)
        }
    };
    let p_escape = if complete {
        0.0
    } else {
        p_escape.clamp(1e-4, 0.98)
    };
    let sum: f64 = counts.iter().map(|&c| weight(c)).sum();
    let scale = f64::from(MAX_TOTAL) - n as f64 - 1.0;
    // (0xffff - frequency) << 8 | symbol: ascending order is most frequent first.
    let order = scratch;
    let mut used = 0u32;
    for (slot, (&s, &c)) in order.iter_mut().zip(syms.iter().zip(counts)) {
        let f = (weight(c) / sum * (1.0 - p_escape) * scale) as u16 as u32 + 1;
        used += f;
        *slot = (0xffff - f.min(0xffff)) << 8 | u32::from(s);
    }
    let order = &mut order[..n];
    order.sort_unstable();
    let esc = if complete {
        0
    } else {
        (p_escape * scale) as u16 as u32 + 1
    };
    // What truncation left over goes to the likeliest byte.
    let deficit = MAX_TOTAL
        .checked_sub(used + esc)
        .ok_or("frequencies exceed the coder's total")?;
    node[0] = esc;
    for (t, &o) in order.iter().enumerate() {
        let f = 0xffff - (o >> 8) + if t == 0 { deficit } else { 0 };
        if f > 0xffff {
            return Err("frequency exceeds 16 bits");
        }
        node[NODE_HEADER + 2 * t] = (o & 0xff) << 16 | f;
        node[NODE_HEADER + 2 * t + 1] = NO_NODE;
    }
    node[2] = NO_NODE;
    node[3] = 0;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codebook::Codebook;
    use crate::model::{entry_index, node_syms, ByteSet};
    use crate::record::{Decoder, Encoder};
    use std::sync::Arc;

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A random model that the file format can express: contexts extend listed bytes of their
    /// parents (not always suffix-closed), over a small alphabet with zeros, so that contexts
    /// share bytes with their suffixes, list bytes their suffixes do not, and all-zero contexts
    /// appear.
    fn random_counts(rng: &mut Rng) -> ModelCounts {
        let max_order = 1 + rng.below(4) as usize;
        let alphabet: Vec<u8> = {
            let mut a: Vec<u8> = (0..2 + rng.below(12)).map(|_| rng.next() as u8).collect();
            a.push(0);
            a.sort_unstable();
            a.dedup();
            a
        };
        let counted = |rng: &mut Rng, key: u64| {
            let mut counts: Vec<(u8, u32)> = Vec::new();
            for &s in &alphabet {
                if rng.below(3) != 0 {
                    let most = if rng.below(4) == 0 { 100_000 } else { 20 };
                    counts.push((s, 1 + rng.below(most) as u32));
                }
            }
            if counts.is_empty() {
                counts.push((alphabet[rng.below(alphabet.len() as u64) as usize], 1));
            }
            Counted { key, counts }
        };
        let mut orders = vec![vec![counted(rng, 0)]];
        for k in 1..=max_order {
            let mut ctxs = Vec::new();
            for p in &orders[k - 1] {
                let syms: Vec<u8> = listed(p, k - 1).collect();
                for sym in syms {
                    let keep = if k == 1 { 3 } else { 2 };
                    if alphabet.contains(&sym) && rng.below(4) < keep {
                        ctxs.push(counted(rng, p.key << 8 | u64::from(sym)));
                    }
                }
            }
            orders.push(ctxs);
        }
        let cells = (max_order + 1) * SEE_CELLS;
        let mut table = |lo: u64, hi: u64| -> Vec<u16> {
            (0..cells)
                .map(|_| (lo + rng.below(hi - lo)) as u16)
                .collect()
        };
        ModelCounts {
            max_order,
            first: table(1, 60_000),
            after: table(1, 2_000),
            orders,
        }
    }

    /// The tree linking as first written: merge children by key, find every byte by scanning
    /// the node's entries, walk suffix chains for successors. The fast linker must agree.
    fn reference_link(arena: &mut [u32], nodes: &[Vec<u32>], keys: &[Vec<u64>]) -> u32 {
        let root = nodes[0][0];
        let entry = |arena: &[u32], node: usize, x: u32| -> Option<usize> {
            entry_index(node_syms(arena, node), x).map(|t| node + NODE_HEADER + 2 * t)
        };
        let successor = |arena: &[u32], mut node: usize, x: u32| -> u32 {
            loop {
                if let Some(w) = entry(arena, node, x) {
                    if arena[w + 1] != NO_NODE {
                        return arena[w + 1];
                    }
                }
                match arena[node + 2] {
                    NO_NODE => return root,
                    s => node = s as usize,
                }
            }
        };
        let max_order = nodes.len() - 1;
        for k in 0..=max_order {
            if k < max_order {
                let mut ci = 0;
                for (pi, &pkey) in keys[k].iter().enumerate() {
                    let pnode = nodes[k][pi] as usize;
                    while ci < keys[k + 1].len() && keys[k + 1][ci] >> 8 == pkey {
                        let dkey = keys[k + 1][ci];
                        let dnode = nodes[k + 1][ci] as usize;
                        let x = (dkey & 0xff) as u32;
                        if let Some(w) = entry(arena, pnode, x) {
                            arena[w + 1] = dnode as u32;
                        }
                        arena[dnode + 2] = if k == 0 || dkey == 0 {
                            pnode as u32
                        } else {
                            successor(arena, arena[pnode + 2] as usize, x)
                        };
                        ci += 1;
                    }
                }
                assert_eq!(ci, keys[k + 1].len(), "every context extends a parent");
            }
            for &node in &nodes[k] {
                let node = node as usize;
                let n = (arena[node + 1] >> 8 & 0x1ff) as usize;
                for t in 0..n {
                    let w = node + NODE_HEADER + 2 * t;
                    if arena[w + 1] == NO_NODE {
                        arena[w + 1] = match arena[node + 2] {
                            NO_NODE => root,
                            s => successor(arena, s as usize, arena[w] >> 16),
                        };
                    }
                }
            }
        }
        for &node in nodes.iter().flatten() {
            let node = node as usize;
            let sfx = arena[node + 2];
            if sfx == NO_NODE {
                continue;
            }
            let mine = ByteSet::of(node_syms(arena, node));
            arena[node + 3] = node_syms(arena, sfx as usize)
                .chunks_exact(2)
                .filter(|e| !mine.has(e[0] >> 16))
                .map(|e| e[0] & 0xffff)
                .sum();
        }
        (0..=max_order)
            .rev()
            .find(|&k| keys[k].first() == Some(&0))
            .map_or(root, |k| nodes[k][0])
    }

    #[test]
    fn fast_linking_matches_the_reference_on_random_models() {
        let mut rng = Rng(0x5eed_cafe_f00d_1234);
        for round in 0..300 {
            let counts = random_counts(&mut rng);
            let mut file = Vec::new();
            counts.write(&mut file);
            let loaded = LoadedCounts::read(&file, &mut 0, 0).expect("a written model reads");
            let (mut expected, nodes) = loaded.quantize().expect("quantizes");
            let keys: Vec<Vec<u64>> = loaded.orders.iter().map(|o| o.keys.clone()).collect();
            let start = reference_link(&mut expected, &nodes, &keys);
            let model = loaded.build().expect("links");
            let first_diff = (0..expected.len()).find(|&w| model.arena[w] != expected[w]);
            assert_eq!(first_diff, None, "round {round}: trees differ");
            assert_eq!(model.arena.len(), expected.len());
            assert_eq!(model.start, start, "round {round}");
            let sizes: Vec<usize> = counts.orders.iter().map(Vec::len).collect();
            assert_eq!(model.context_counts(), sizes, "round {round}");
        }
    }

    /// A model section with one order-1 context whose follower count is `d_minus_one` (as
    /// stored), followed by `tail`.
    fn one_context_section(d_minus_one: u64, tail: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        varint::write(&mut buf, 1);
        for _ in 0..2 * 2 * SEE_CELLS + 256 {
            varint::write(&mut buf, 1);
        }
        let mut bits = [0u8; 32];
        bits[0] = 1; // the context after byte 0
        buf.extend_from_slice(&bits);
        varint::write(&mut buf, d_minus_one);
        buf.extend_from_slice(tail);
        buf
    }

    #[test]
    fn follower_counts_out_of_range_are_errors() {
        // Found by the codebook fuzz target: a count of u64::MAX overflowed when one was added.
        for d in [256, u64::MAX - 1, u64::MAX] {
            let buf = one_context_section(d, &[0; 8]);
            let e = LoadedCounts::read(&buf, &mut 0, 0).err().expect("refused");
            assert!(e.to_string().contains("more than 256 followers"), "{e}");
        }
        let ok = one_context_section(1, &[7, 0, 3, 4]); // bytes 7 and 8, counts 3 and 4
        let loaded = LoadedCounts::read(&ok, &mut 0, 0).expect("valid");
        assert_eq!(loaded.orders[1].syms, [7, 8]);
        assert_eq!(loaded.orders[1].counts, [3, 4]);
        assert!(loaded.build().is_ok());
    }

    #[test]
    fn random_models_round_trip_random_text() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        for round in 0..60 {
            let counts = random_counts(&mut rng);
            let codebook = Arc::new(Codebook::assemble(&[], &counts).expect("loads"));
            let mut enc = Encoder::new(Arc::clone(&codebook));
            let mut dec = Decoder::new(codebook);
            for _ in 0..8 {
                let len = rng.below(300) as usize;
                let text: Vec<u8> = (0..len)
                    .map(|_| match rng.below(3) {
                        0 => 0,
                        1 => rng.next() as u8,
                        _ => b"ab a\0b"[rng.below(6) as usize],
                    })
                    .collect();
                let (mut coded, mut back) = (Vec::new(), Vec::new());
                enc.encode(&text, &mut coded).expect("encodes");
                dec.decode(&coded, &mut back).expect("decodes");
                assert!(back == text, "round {round}: {text:?}");
            }
        }
    }
}
