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
    use crate::checksum::crc32c;
    use crate::codebook::{Codebook, CODEBOOK_MAGIC, CODEBOOK_VERSION};
    use crate::model::{entry_index, node_syms, ByteSet};
    use crate::record::{Decoder, Encoder};
    use crate::workers::TestRng as Rng;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::Arc;

    /// Random models over the whole space the format allows: orders 1..=7, contexts of up to 256
    /// followers, all-zero roots, counts at and near u32::MAX, escape tables of 1 and 65535,
    /// contexts that are not suffix-closed, all-zero chains.
    fn wide_counts(rng: &mut Rng) -> ModelCounts {
        let max_order = 1 + rng.below(7) as usize;
        let alphabet: Vec<u8> = match rng.below(4) {
            0 => (0..=255).collect(),
            1 => vec![0, 1, 255],
            2 => (0..=255u8)
                .filter(|_| rng.below(3) == 0)
                .chain([0])
                .collect(),
            _ => (0..2 + rng.below(12))
                .map(|_| rng.next() as u8)
                .chain([0])
                .collect(),
        };
        let mut alphabet = alphabet;
        alphabet.sort_unstable();
        alphabet.dedup();
        let count_kind = rng.below(4);
        let count = |rng: &mut Rng| -> u32 {
            match (count_kind, rng.below(6)) {
                (0, _) => u32::MAX,
                (1, 0) | (2, 0) => u32::MAX - rng.below(3) as u32,
                (1, _) => 1,
                (_, 1) => 1 + rng.below(1 << 24) as u32,
                _ => 1 + rng.below(40) as u32,
            }
        };
        let root_kind = rng.below(4);
        let mut root = Vec::new();
        for s in 0..=255u8 {
            let c = match root_kind {
                0 => 0,
                1 => u32::MAX,
                _ => {
                    if rng.below(2) == 0 {
                        0
                    } else {
                        count(rng)
                    }
                }
            };
            if c > 0 {
                root.push((s, c));
            }
        }
        let mut orders = vec![vec![Counted {
            key: 0,
            counts: root,
        }]];
        let mut budget: i64 = 40_000; // entries
        for k in 1..=max_order {
            let density = 1 + rng.below(8); // out of 8: how many followers a context keeps
            let keep = rng.below(5); // out of 8: how many extensions become contexts
            let mut ctxs = Vec::new();
            for p in &orders[k - 1] {
                let exts: Vec<u8> = if k == 1 {
                    (0..=255).collect()
                } else {
                    let zero = p.key == 0 && p.counts.first().map(|e| e.0) != Some(0);
                    zero.then_some(0u8)
                        .into_iter()
                        .chain(p.counts.iter().map(|e| e.0))
                        .collect()
                };
                for sym in exts {
                    let key = p.key << 8 | u64::from(sym);
                    let wanted = if key == 0 {
                        rng.below(8) != 0
                    } else {
                        alphabet.contains(&sym) && rng.below(8) <= keep
                    };
                    if !wanted || budget <= 0 {
                        continue;
                    }
                    let mut counts: Vec<(u8, u32)> = alphabet
                        .iter()
                        .filter(|_| rng.below(8) < density)
                        .map(|&s| (s, 0))
                        .collect();
                    if counts.is_empty() {
                        counts.push((alphabet[rng.below(alphabet.len() as u64) as usize], 0));
                    }
                    for e in &mut counts {
                        e.1 = count(rng);
                    }
                    budget -= counts.len() as i64 + 2;
                    ctxs.push(Counted { key, counts });
                }
            }
            orders.push(ctxs);
        }
        let cells = (max_order + 1) * SEE_CELLS;
        let table = |rng: &mut Rng| -> Vec<u16> {
            let kind = rng.below(4);
            (0..cells)
                .map(|_| match kind {
                    0 => 1,
                    1 => 65535,
                    2 => [1, 65535][rng.below(2) as usize],
                    _ => 1 + rng.below(65535) as u16,
                })
                .collect()
        };
        let first = table(rng);
        let after = table(rng);
        ModelCounts {
            max_order,
            first,
            after,
            orders,
        }
    }

    /// Quantization as first written (per context, with vectors): the loader's must agree.
    fn reference_quantize(c: &Counted, p_escape: f64, complete: bool) -> (u16, Vec<(u8, u16)>) {
        let mut weights: Vec<(u8, f64)> = if complete {
            let mut w = vec![0.5f64; 256];
            for &(s, x) in &c.counts {
                w[usize::from(s)] = f64::from(x);
            }
            w.into_iter()
                .enumerate()
                .map(|(s, x)| (s as u8, x))
                .collect()
        } else {
            c.counts.iter().map(|&(s, x)| (s, f64::from(x))).collect()
        };
        let p_escape = if complete {
            0.0
        } else {
            p_escape.clamp(1e-4, 0.98)
        };
        let sum: f64 = weights.iter().map(|w| w.1).sum();
        let scale = f64::from(MAX_TOTAL) - weights.len() as f64 - 1.0;
        for w in weights.iter_mut() {
            w.1 = w.1 / sum * (1.0 - p_escape) * scale;
        }
        let mut list: Vec<(u8, u16)> = weights.iter().map(|&(s, w)| (s, w as u16 + 1)).collect();
        list.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let esc = if complete {
            0
        } else {
            (p_escape * scale) as u16 + 1
        };
        let used: u32 = list.iter().map(|&(_, f)| u32::from(f)).sum::<u32>() + u32::from(esc);
        list[0].1 += (MAX_TOTAL - used) as u16;
        (esc, list)
    }

    /// The tree linking as first written: merge children by key, find every byte by scanning
    /// the node's entries, walk suffix chains for successors. Returns the start state.
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

    /// The model the first-written loader built from `counts` (quantized per context, placed
    /// in key order, linked by `reference_link`), independently of the file format.
    fn reference_model(counts: &ModelCounts) -> ContextModel {
        let mut arena = Vec::new();
        let mut nodes = Vec::new();
        let mut keys = Vec::new();
        for (k, ctxs) in counts.orders.iter().enumerate() {
            let mut offs = Vec::new();
            for c in ctxs {
                let cell = cell_of(c);
                let p = f64::from(counts.first[k * SEE_CELLS + usize::from(cell)]) / 65536.0;
                let (esc, list) = reference_quantize(c, p, k == 0);
                offs.push(arena.len() as u32);
                arena.push(u32::from(esc));
                arena.push(u32::from(cell) << 24 | (list.len() as u32) << 8 | k as u32);
                arena.extend([NO_NODE, 0]);
                for (s, f) in list {
                    arena.extend([u32::from(s) << 16 | u32::from(f), NO_NODE]);
                }
            }
            nodes.push(offs);
            keys.push(ctxs.iter().map(|c| c.key).collect::<Vec<u64>>());
        }
        arena.extend([0; ARENA_PADDING]);
        let start = reference_link(&mut arena, &nodes, &keys);
        ContextModel {
            max_order: counts.max_order,
            arena,
            see: counts.after.clone(),
            root: nodes[0][0],
            start,
            counts: nodes.iter().map(Vec::len).collect(),
        }
    }

    fn assert_same(expected: &ContextModel, got: &ContextModel, what: &str) {
        assert_eq!(expected.max_order, got.max_order, "{what}: max_order");
        assert_eq!(expected.counts, got.counts, "{what}: context counts");
        assert_eq!(expected.root, got.root, "{what}: root");
        assert_eq!(expected.start, got.start, "{what}: start");
        assert_eq!(expected.see, got.see, "{what}: escape table");
        assert_eq!(
            expected.arena.len(),
            got.arena.len(),
            "{what}: arena length"
        );
        let diff = (0..got.arena.len()).find(|&w| expected.arena[w] != got.arena[w]);
        assert_eq!(diff, None, "{what}: first differing arena word");
    }

    /// A codebook file around a model section: no learned patterns, a valid checksum.
    fn codebook_file(section: &[u8]) -> Vec<u8> {
        let mut file = CODEBOOK_MAGIC.to_vec();
        file.push(CODEBOOK_VERSION);
        file.extend_from_slice(&[0, 0, 0, 0]); // reserved, no learned patterns
        file.extend_from_slice(section);
        let crc = crc32c(&file);
        file.extend_from_slice(&crc.to_le_bytes());
        file
    }

    fn load(section: &[u8]) -> Result<ContextModel> {
        let mut pos = 0;
        let loaded = LoadedCounts::read(section, &mut pos, 0)?;
        if pos != section.len() {
            return Err(Error::corrupt("trailing bytes", pos as u64));
        }
        loaded.build()
    }

    /// Texts that reach deep contexts of the model (its own bytes) and repeat spans (DELTA runs,
    /// so the excluded-byte paths `encode_excluding(.., Some(m))` run), with a frame.
    fn round_trip(codebook: Arc<Codebook>, rng: &mut Rng, what: &str) {
        let model_bytes: Vec<u8> = {
            let m = codebook.model();
            let mut b: Vec<u8> = Vec::new();
            let n = (m.arena[m.start as usize + 1] >> 8 & 0x1ff) as usize;
            for t in 0..n {
                b.push((m.arena[m.start as usize + NODE_HEADER + 2 * t] >> 16) as u8);
            }
            b.push(0);
            b
        };
        let mut enc = Encoder::new(Arc::clone(&codebook));
        let mut dec = Decoder::new(codebook);
        for _ in 0..4 {
            let piece = |rng: &mut Rng| -> Vec<u8> {
                (0..1 + rng.below(40))
                    .map(|_| match rng.below(4) {
                        0 => rng.next() as u8,
                        1 => 0,
                        _ => model_bytes[rng.below(model_bytes.len() as u64) as usize],
                    })
                    .collect()
            };
            let frame: Vec<u8> = (0..3).flat_map(|_| piece(rng)).collect();
            let mut text = Vec::new();
            for _ in 0..6 {
                match rng.below(3) {
                    0 => {
                        text.extend_from_slice(&frame[..rng.below(frame.len() as u64 + 1) as usize])
                    }
                    1 => {
                        let p = piece(rng);
                        text.extend_from_slice(&p);
                        text.extend_from_slice(&p); // a repeat inside the record
                        text.push(rng.next() as u8);
                    }
                    _ => text.extend(piece(rng)),
                }
            }
            for frames in [&[][..], &[&frame[..]][..]] {
                let (mut coded, mut back) = (Vec::new(), Vec::new());
                enc.encode_with_frames(frames, &text, &mut coded)
                    .expect("encodes");
                dec.decode_with_frames(frames, &coded, &mut back)
                    .expect("decodes");
                assert!(back == text, "{what}: lossy on {text:?}");
            }
        }
    }

    #[test]
    fn loader_matches_the_reference_on_wide_random_models() {
        let mut rng = Rng(0x7e57_0001_d00d_feed);
        for round in 0..60 {
            let counts = wide_counts(&mut rng);
            let mut section = Vec::new();
            counts.write(&mut section);
            let what = format!("round {round}");
            let model = load(&section).expect("a written model loads");
            assert_same(&reference_model(&counts), &model, &what);
            if round % 4 == 0 {
                round_trip(
                    Arc::new(Codebook::assemble(&[], &counts).expect("loads")),
                    &mut rng,
                    &what,
                );
            }
        }
    }

    /// Mutated model sections (valid checksums): the loader never panics, and what it loads
    /// codes losslessly.
    #[test]
    fn mutated_sections_never_panic_and_code_losslessly() {
        let seed = std::env::var("REVIEW_SEED")
            .ok()
            .and_then(|s| s.parse().ok());
        let rounds = if seed.is_some() { 100_000 } else { 5_000 };
        let mut rng = Rng(seed.unwrap_or(0x0bad_5eed_1234_5678));
        let mut loaded = 0;
        for round in 0..rounds {
            let counts = {
                let mut r = Rng(rng.next() | 1);
                let mut c = wide_counts(&mut r);
                // Small models: many mutations per second.
                c.max_order = c.max_order.min(1 + (round % 4));
                c.orders.truncate(c.max_order + 1);
                for o in c.orders.iter_mut().skip(1) {
                    o.truncate(40);
                }
                c.first.truncate((c.max_order + 1) * SEE_CELLS);
                c.after.truncate((c.max_order + 1) * SEE_CELLS);
                c
            };
            // Truncating an order can orphan children of later orders: drop them.
            let mut counts = counts;
            for k in 1..=counts.max_order {
                let (lo, hi) = counts.orders.split_at_mut(k);
                let parents = &lo[k - 1];
                hi[0].retain(|c| {
                    parents.iter().any(|p| {
                        p.key == c.key >> 8
                            && (k == 1
                                || p.counts.iter().any(|e| u64::from(e.0) == c.key & 0xff)
                                || (p.key == 0 && c.key == 0))
                    })
                });
            }
            let mut section = Vec::new();
            counts.write(&mut section);
            for _ in 0..1 + rng.below(4) {
                let len = section.len() as u64;
                match rng.below(8) {
                    0 => {
                        let i = rng.below(len) as usize;
                        section[i] = rng.next() as u8;
                    }
                    1 => {
                        let i = rng.below(len) as usize;
                        section[i] = [0, 0x7f, 0x80, 0xff, 1][rng.below(5) as usize];
                    }
                    2 => {
                        let i = rng.below(len + 1) as usize;
                        section.insert(i, rng.next() as u8);
                    }
                    3 if len > 1 => {
                        let i = rng.below(len) as usize;
                        section.remove(i);
                    }
                    4 => {
                        // A bit of a presence map or a gap.
                        let i = rng.below(len) as usize;
                        section[i] ^= 1 << rng.below(8);
                    }
                    5 => {
                        let i = rng.below(len + 1) as usize;
                        let big: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0f]; // u32::MAX
                        section.splice(i..i, big.iter().copied());
                    }
                    _ => {
                        let i = rng.below(len) as usize;
                        section[i] = section[i].wrapping_add(1);
                    }
                }
            }
            let new = catch_unwind(AssertUnwindSafe(|| load(&section)))
                .unwrap_or_else(|_| panic!("round {round}: the loader panicked"));
            if new.is_ok() {
                loaded += 1;
                if loaded % 4 == 0 {
                    let cb = Codebook::from_bytes(&codebook_file(&section)).expect("loads");
                    round_trip(cb, &mut rng, &format!("mutated round {round}"));
                }
            }
        }
        assert!(loaded > 100, "only {loaded} mutated sections loaded");
        eprintln!("{loaded} of {rounds} mutated sections loaded");
    }

    /// Hand-made extremes: order 7 chains of all-zero contexts, 256-byte contexts, u32::MAX counts,
    /// escape tables of 1 and 65535, an all-zero root.
    #[test]
    fn extreme_models_load_as_the_reference_and_round_trip() {
        let mut rng = Rng(42);
        for (table_first, table_after, count, root_zero) in [
            (1u16, 1u16, u32::MAX, true),
            (65535, 65535, u32::MAX, false),
            (1, 65535, 1, true),
            (65535, 1, u32::MAX - 1, false),
            (32768, 256, 7, true),
        ] {
            let max_order = MAX_ORDER;
            let mut orders = vec![vec![Counted {
                key: 0,
                counts: if root_zero {
                    Vec::new()
                } else {
                    (0..=255).map(|s| (s, count)).collect()
                },
            }]];
            for k in 1..=max_order {
                let mut ctxs = Vec::new();
                // The all-zero context (never lists byte 0: its child comes from the zero rule),
                // and a full context after byte 0xff at order 1, chained on.
                ctxs.push(Counted {
                    key: 0,
                    counts: (1..=255).map(|s| (s, count)).collect(),
                });
                if k == 1 {
                    ctxs.push(Counted {
                        key: 0xff,
                        counts: (0..=255).map(|s| (s, count)).collect(),
                    });
                } else {
                    ctxs.push(Counted {
                        key: u64::MAX >> (64 - 8 * k),
                        counts: vec![(0, 1), (0xff, count)],
                    });
                    ctxs.sort_by_key(|c| c.key);
                }
                orders.push(ctxs);
            }
            // Order k: key 0xff..: parent key must be key >> 8 listed with its low byte.
            for k in 2..=max_order {
                let want: Vec<u64> = orders[k].iter().map(|c| c.key >> 8).collect();
                let have: Vec<u64> = orders[k - 1].iter().map(|c| c.key).collect();
                for w in want {
                    assert!(have.contains(&w), "order {k}: parent {w:x} missing");
                }
            }
            let cells = (max_order + 1) * SEE_CELLS;
            let counts = ModelCounts {
                max_order,
                first: vec![table_first; cells],
                after: vec![table_after; cells],
                orders,
            };
            let mut section = Vec::new();
            counts.write(&mut section);
            let model = load(&section).expect("loads");
            assert_same(&reference_model(&counts), &model, "extreme");
            let cb = Codebook::from_bytes(&codebook_file(&section)).expect("loads");
            round_trip(cb, &mut rng, "extreme");
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
}
