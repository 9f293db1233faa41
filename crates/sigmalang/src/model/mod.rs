//! The context model: byte prediction from the preceding bytes, learned from a corpus.
//!
//! The model holds contexts of every order `0..=max_order` (the last `k` bytes before the byte
//! to code; the bytes before a record's start count as zeros, so record openings are learned
//! too). Each context lists the bytes that followed it in training, most frequent first, with
//! frequencies, and an escape frequency: the weight of "a byte not in this list".
//!
//! A byte is coded PPM-style: in the longest context the model holds, either the byte is in the
//! context's list and is coded there, or an escape is coded, the list's bytes are excluded, and
//! the next shorter context is tried. Order 0 lists all 256 bytes, so every byte is codable.
//!
//! The contexts form a tree (as in PPMd): every symbol of a context points to the context that
//! follows it, and every context to its one-byte-shorter suffix, so coding a byte visits one
//! node and follows one link; there is no hashing on the coding path.
//!
//! The model is immutable and shared between threads.

mod matcher;
pub(crate) mod serial;
mod train;

pub use matcher::{MatchModel, FLAG_RUN, MIN_MATCH};

pub(crate) use train::train;
pub use train::{Level, TrainOptions};

use crate::coder::{RangeDecoder, RangeEncoder, MAX_TOTAL};
use crate::error::{Error, Result};

/// The longest context a model may use, in bytes.
pub const MAX_ORDER: usize = 7;

/// Calibration cells per order in the escape table.
pub(crate) const SEE_CELLS: usize = 256;

/// Words of a node before its symbols: totals, shape, suffix link, what the suffix has left.
const NODE_HEADER: usize = 4;
/// The suffix link of the root.
const NO_NODE: u32 = u32::MAX;

#[inline]
fn key_mask(order: usize) -> u64 {
    if order == 0 {
        0
    } else {
        u64::MAX >> (64 - 8 * order)
    }
}

/// A set of bytes.
#[derive(Clone, Copy, Default)]
struct ByteSet([u64; 4]);

impl ByteSet {
    #[inline]
    fn has(&self, s: u32) -> bool {
        self.0[(s >> 6) as usize & 3] >> (s & 63) & 1 != 0
    }

    #[inline]
    fn set(&mut self, s: u32) {
        self.0[(s >> 6) as usize & 3] |= 1u64 << (s & 63);
    }

    /// The set of the bytes a node lists.
    #[inline]
    fn of(syms: &[u32]) -> ByteSet {
        let mut set = ByteSet::default();
        for e in syms.chunks_exact(2) {
            set.set(e[0] >> 16);
        }
        set
    }
}

/// The symbol entries of `node`.
#[inline]
fn node_syms(a: &[u32], node: usize) -> &[u32] {
    let n = (a[node + 1] >> 8 & 0x1ff) as usize;
    &a[node + NODE_HEADER..node + NODE_HEADER + 2 * n]
}

/// The frequency of `x` in the entries `syms` (0 if not listed).
#[inline]
fn freq_of(syms: &[u32], x: u32) -> u32 {
    entry_index(syms, x).map_or(0, |t| syms[2 * t] & 0xffff)
}

/// Which entry of `syms` lists `x`, if one does.
#[inline]
fn entry_index(syms: &[u32], x: u32) -> Option<usize> {
    syms.chunks_exact(2).position(|e| e[0] >> 16 == x)
}

/// A context model: a tree of contexts of every order with their symbol frequencies.
///
/// The contexts live in one arena of `u32` words. A node is
/// `[esc, cell << 24 | n << 8 | order, suffix, rest]` followed by `n` symbol entries
/// `[symbol << 16 | frequency, successor]`, most frequent first. `suffix` is the node of the
/// context one byte shorter; `successor` is the node of the longest context that exists after
/// the symbol is coded.
///
/// `esc` is the escape frequency for a visit with nothing excluded; the frequencies and `esc`
/// sum to exactly 2^16. After an escape, the bytes of the context escaped from (and a wrong
/// match prediction) are excluded and the suffix's remaining total `T'` is smaller (`rest` is
/// that total before the prediction is taken out); the escape frequency is then
/// `T' * see[order][cell] / 256`, from a table calibrated on held-out text (`cell` classifies
/// the context by its training count and number of followers).
#[derive(Clone, Debug)]
pub struct ContextModel {
    max_order: usize,
    arena: Vec<u32>,
    see: Vec<u16>,
    root: u32,
    start: u32,
    counts: Vec<usize>,
}

/// A context as training produces it, before it is placed in the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContextEntry {
    pub key: u64,
    /// How often the context occurred in training (places hot contexts together).
    pub weight: u32,
    pub esc: u16,
    /// The context's calibration cell (index into its order's escape table).
    pub cell: u8,
    /// (symbol, frequency), most frequent first.
    pub syms: Vec<(u8, u16)>,
}

impl ContextModel {
    /// Builds a model from per-order context lists (`orders[k]` holds the order-k contexts).
    pub(crate) fn from_entries(
        orders: Vec<Vec<ContextEntry>>,
        see: Vec<u16>,
    ) -> Result<ContextModel> {
        let max_order = orders
            .len()
            .checked_sub(1)
            .ok_or_else(|| Error::invalid("model has no orders"))?;
        if max_order > MAX_ORDER {
            return Err(Error::invalid(format!(
                "model order {max_order} exceeds {MAX_ORDER}"
            )));
        }
        if see.len() != (max_order + 1) * SEE_CELLS || see.contains(&0) {
            return Err(Error::invalid("escape table has the wrong size or a zero"));
        }
        let words: usize = orders
            .iter()
            .flatten()
            .map(|e| NODE_HEADER + 2 * e.syms.len())
            .sum();
        if words >= NO_NODE as usize {
            return Err(Error::invalid("model is too large"));
        }
        let counts = orders.iter().map(Vec::len).collect();
        let mut arena = Vec::with_capacity(words);
        let mut offsets: Vec<Vec<u32>> = Vec::with_capacity(orders.len());
        for (k, es) in orders.iter().enumerate() {
            let mut offs = Vec::with_capacity(es.len());
            for (i, e) in es.iter().enumerate() {
                check_entry(k, e)?;
                if i > 0 && es[i - 1].key >= e.key {
                    return Err(Error::invalid(format!("order-{k} contexts out of order")));
                }
                offs.push(arena.len() as u32);
                arena.push(u32::from(e.esc));
                arena.push(u32::from(e.cell) << 24 | (e.syms.len() as u32) << 8 | k as u32);
                arena.push(NO_NODE);
                arena.push(0);
                for &(s, f) in &e.syms {
                    arena.push(u32::from(s) << 16 | u32::from(f));
                    arena.push(NO_NODE);
                }
            }
            offsets.push(offs);
        }
        if orders[0].len() != 1 || orders[0][0].key != 0 {
            return Err(Error::invalid(
                "model must have exactly one order-0 context",
            ));
        }
        let root = offsets[0][0];
        if (arena[root as usize + 1] >> 8 & 0x1ff) != 256 {
            return Err(Error::invalid(
                "the order-0 context must list all 256 bytes",
            ));
        }
        // The word of `x`'s entry in `node`, if the node lists `x`.
        let entry = |arena: &[u32], node: usize, x: u32| -> Option<usize> {
            entry_index(node_syms(arena, node), x).map(|t| node + NODE_HEADER + 2 * t)
        };
        // Where `x` leads from `node`: its own successor, else its suffix's (final already for
        // shorter contexts; the root lists every byte).
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
        // Orders ascending. Contexts are sorted by key, and the contexts one byte longer that
        // extend context c (keys c << 8 | x) form a run in the next order: a merge finds them,
        // no hashing. The suffix of c·x is the successor of (suffix(c), x).
        for k in 0..=max_order {
            if k < max_order {
                let children = &orders[k + 1];
                let mut ci = 0;
                for (pi, p) in orders[k].iter().enumerate() {
                    let pnode = offsets[k][pi] as usize;
                    while ci < children.len() && children[ci].key >> 8 == p.key {
                        let d = &children[ci];
                        let dnode = offsets[k + 1][ci] as usize;
                        let x = (d.key & 0xff) as u32;
                        if let Some(w) = entry(&arena, pnode, x) {
                            arena[w + 1] = dnode as u32;
                        }
                        arena[dnode + 2] = if k == 0 || d.key == 0 {
                            pnode as u32
                        } else {
                            successor(&arena, arena[pnode + 2] as usize, x)
                        };
                        ci += 1;
                    }
                    if ci < children.len() && children[ci].key >> 8 < p.key {
                        break;
                    }
                }
                if ci != children.len() {
                    return Err(Error::invalid(format!(
                        "order-{} context without the context it extends",
                        k + 1
                    )));
                }
            }
            // Bytes that lead to no longer context: where the suffix leads.
            for &node in &offsets[k] {
                let node = node as usize;
                let n = (arena[node + 1] >> 8 & 0x1ff) as usize;
                for t in 0..n {
                    let w = node + NODE_HEADER + 2 * t;
                    if arena[w + 1] == NO_NODE {
                        arena[w + 1] = match arena[node + 2] {
                            NO_NODE => root,
                            s => successor(&arena, s as usize, arena[w] >> 16),
                        };
                    }
                }
            }
        }
        // What a suffix has left once a node's bytes are excluded: the total of an escape.
        for &node in offsets.iter().flatten() {
            let node = node as usize;
            let sfx = arena[node + 2];
            if sfx == NO_NODE {
                continue;
            }
            let mine = ByteSet::of(node_syms(&arena, node));
            arena[node + 3] = node_syms(&arena, sfx as usize)
                .chunks_exact(2)
                .filter(|e| !mine.has(e[0] >> 16))
                .map(|e| e[0] & 0xffff)
                .sum();
        }
        // Padding: the decoder reads a node's first four entries without checking its length.
        arena.extend_from_slice(&[0; 8]);
        let start = (0..=max_order)
            .rev()
            .find(|&k| orders[k].first().is_some_and(|e| e.key == 0))
            .map_or(root, |k| offsets[k][0]);
        Ok(ContextModel {
            max_order,
            arena,
            see,
            root,
            start,
            counts,
        })
    }

    /// The longest context order the model uses.
    pub fn max_order(&self) -> usize {
        self.max_order
    }

    /// Number of contexts of each order.
    pub fn context_counts(&self) -> Vec<usize> {
        self.counts.clone()
    }

    /// Bytes of memory the model's tree takes.
    pub fn heap_bytes(&self) -> usize {
        self.arena.len() * 4
    }

    /// The context a record starts in (its history is all zero bytes).
    #[inline]
    pub fn start_state(&self) -> u32 {
        self.start
    }

    /// The escape frequency of a context visited after an escape, with `total` left.
    #[inline]
    fn escape_after(&self, shape: u32, total: u32) -> u32 {
        let order = (shape & 0xff) as usize;
        let cell = (shape >> 24) as usize;
        let r = u32::from(self.see[order * SEE_CELLS + cell]);
        ((total * r) >> 8).clamp(1, MAX_TOTAL.saturating_sub(total).max(1))
    }

    /// The context after `x` is seen in context `state`, without coding anything.
    #[inline]
    pub fn advance(&self, state: u32, x: u8) -> u32 {
        let a = &self.arena[..];
        let x = u32::from(x);
        let mut node = state as usize;
        loop {
            let syms = node_syms(a, node);
            if let Some(t) = entry_index(syms, x) {
                return syms[2 * t + 1];
            }
            node = match a[node + 2] {
                NO_NODE => return self.root,
                s => s as usize,
            };
        }
    }

    /// The context after `prefix`, the start of a record: what coding `prefix` byte by byte from
    /// [`start_state`](Self::start_state) would reach, found from its last `max_order` bytes.
    pub fn state_after(&self, prefix: &[u8]) -> u32 {
        if prefix.len() >= self.max_order {
            let tail = &prefix[prefix.len() - self.max_order..];
            tail.iter().fold(self.root, |s, &b| self.advance(s, b))
        } else {
            prefix.iter().fold(self.start, |s, &b| self.advance(s, b))
        }
    }

    /// Whether `x` is the most likely byte in context `state`.
    #[inline]
    pub fn expects(&self, state: u32, x: u8) -> bool {
        let node = state as usize;
        let n = self.arena[node + 1] >> 8 & 0x1ff;
        n > 0 && self.arena[node + NODE_HEADER] >> 16 == u32::from(x)
    }

    /// Codes byte `x` in context `state`; returns the context of the next byte.
    #[inline]
    pub fn encode(&self, enc: &mut RangeEncoder<'_>, state: u32, x: u8) -> u32 {
        self.encode_excluding(enc, state, x, None)
    }

    /// Codes byte `x` in context `state` knowing it is not `not` (a wrong match prediction).
    #[inline]
    pub fn encode_excluding(
        &self,
        enc: &mut RangeEncoder<'_>,
        state: u32,
        x: u8,
        not: Option<u8>,
    ) -> u32 {
        let a = &self.arena[..];
        let x = u32::from(x);
        let node = state as usize;
        let syms = node_syms(a, node);
        match not {
            None => {
                let esc = a[node];
                let total = MAX_TOTAL - esc;
                let mut cum = 0u32;
                for e in syms.chunks_exact(2) {
                    let f = e[0] & 0xffff;
                    if e[0] >> 16 == x {
                        enc.encode_pow2(cum, f);
                        return e[1];
                    }
                    cum += f;
                }
                enc.encode_pow2(total, esc);
            }
            Some(m) => {
                let mut excl = ByteSet::default();
                excl.set(u32::from(m));
                let total = MAX_TOTAL - a[node] - freq_of(syms, u32::from(m));
                if let Some(next) = self.encode_in(enc, node, total, &excl, x) {
                    return next;
                }
            }
        }
        self.encode_escaped(enc, node, x, not)
    }

    /// Codes `x` in `node` with the bytes of `excl` excluded (`total` is what is left);
    /// codes an escape and returns `None` if the node does not list `x`.
    #[inline]
    fn encode_in(
        &self,
        enc: &mut RangeEncoder<'_>,
        node: usize,
        total: u32,
        excl: &ByteSet,
        x: u32,
    ) -> Option<u32> {
        if total == 0 {
            return None;
        }
        let a = &self.arena[..];
        let esc = self.escape_after(a[node + 1], total);
        let mut cum = 0u32;
        for e in node_syms(a, node).chunks_exact(2) {
            let s = e[0] >> 16;
            if excl.has(s) {
                continue;
            }
            let f = e[0] & 0xffff;
            if s == x {
                enc.encode(cum, f, total + esc);
                return Some(e[1]);
            }
            cum += f;
        }
        enc.encode(total, esc, total + esc);
        None
    }

    /// Codes `x` after an escape from `node`: in each shorter context in turn, with the bytes
    /// of the context escaped from (and `not`) excluded.
    #[cold]
    fn encode_escaped(
        &self,
        enc: &mut RangeEncoder<'_>,
        mut node: usize,
        x: u32,
        not: Option<u8>,
    ) -> u32 {
        loop {
            let (excl, total, sfx) = self.escape_from(node, not);
            // The root lists every byte, so a valid model never escapes from it.
            let Some(sfx) = sfx else {
                return self.root;
            };
            node = sfx;
            if let Some(next) = self.encode_in(enc, node, total, &excl, x) {
                return next;
            }
        }
    }

    /// After an escape from `node`: the bytes excluded in its suffix (the node's own bytes and
    /// `not`), the total the suffix has left, and the suffix.
    #[inline]
    fn escape_from(&self, node: usize, not: Option<u8>) -> (ByteSet, u32, Option<usize>) {
        let a = &self.arena[..];
        let mut excl = ByteSet::of(node_syms(a, node));
        let sfx = match a[node + 2] {
            NO_NODE => return (excl, 0, None),
            s => s as usize,
        };
        let mut total = a[node + 3];
        if let Some(m) = not.map(u32::from) {
            if !excl.has(m) {
                total -= freq_of(node_syms(a, sfx), m);
                excl.set(m);
            }
        }
        (excl, total, Some(sfx))
    }

    /// Decodes a byte in context `state`; returns it and the context of the next byte.
    #[inline(always)]
    pub fn decode(&self, dec: &mut RangeDecoder<'_>, state: u32) -> (u8, u32) {
        self.decode_excluding(dec, state, None)
    }

    /// Decodes a byte in context `state` known not to be `not`.
    #[inline(always)]
    pub fn decode_excluding(
        &self,
        dec: &mut RangeDecoder<'_>,
        state: u32,
        not: Option<u8>,
    ) -> (u8, u32) {
        let a = &self.arena[..];
        let node = state as usize;
        match not {
            None => {
                let esc = a[node];
                let total = MAX_TOTAL - esc;
                let (r, code) = dec.decode_scale_pow2();
                if code < r.wrapping_mul(total) {
                    // The frequencies sum to `total`, so the walk ends within the node's list
                    // (a loaded model is checked for that): no need to read its length.
                    // The first four entries are tested without a data-dependent branch
                    // (most bytes are one of them). Entries past the node's own (the next
                    // node, or the arena's padding) are read but never chosen: cumulative
                    // sums only grow, and the byte lies below `total`.
                    let w = node + NODE_HEADER;
                    let q = &a[w..w + 8];
                    let e = [q[0], q[2], q[4], q[6]];
                    let c1 = e[0] & 0xffff;
                    let c2 = c1 + (e[1] & 0xffff);
                    let c3 = c2 + (e[2] & 0xffff);
                    let c4 = c3 + (e[3] & 0xffff);
                    let (r64, code64) = (u64::from(r), u64::from(code));
                    let idx = usize::from(code64 >= r64 * u64::from(c1))
                        + usize::from(code64 >= r64 * u64::from(c2))
                        + usize::from(code64 >= r64 * u64::from(c3))
                        + usize::from(code64 >= r64 * u64::from(c4));
                    if idx < 4 {
                        let cum = [0, c1, c2, c3][idx];
                        dec.decode_update(cum, e[idx] & 0xffff);
                        return ((e[idx] >> 16) as u8, q[2 * idx + 1]);
                    }
                    let mut cum = c4;
                    let mut w = w + 8;
                    loop {
                        let e = a[w];
                        let f = e & 0xffff;
                        if code < r.wrapping_mul(cum + f) {
                            dec.decode_update(cum, f);
                            return ((e >> 16) as u8, a[w + 1]);
                        }
                        cum += f;
                        w += 2;
                    }
                }
                dec.decode_update(total, esc.max(1));
            }
            Some(m) => {
                let syms = node_syms(a, node);
                let mut excl = ByteSet::default();
                excl.set(u32::from(m));
                let total = MAX_TOTAL - a[node] - freq_of(syms, u32::from(m));
                if let Some(hit) = self.decode_in(dec, node, total, &excl) {
                    return hit;
                }
            }
        }
        self.decode_escaped(dec, node, not)
    }

    /// Decodes in `node` with the bytes of `excl` excluded (`total` is what is left); `None`
    /// after an escape.
    #[inline]
    fn decode_in(
        &self,
        dec: &mut RangeDecoder<'_>,
        node: usize,
        total: u32,
        excl: &ByteSet,
    ) -> Option<(u8, u32)> {
        if total == 0 {
            return None;
        }
        let a = &self.arena[..];
        let esc = self.escape_after(a[node + 1], total);
        let (r, code) = dec.decode_scale(total + esc);
        if code < r.wrapping_mul(total) {
            let mut cum = 0u32;
            for e in node_syms(a, node).chunks_exact(2) {
                if excl.has(e[0] >> 16) {
                    continue;
                }
                let f = e[0] & 0xffff;
                if code < r.wrapping_mul(cum + f) {
                    dec.decode_update(cum, f);
                    return Some(((e[0] >> 16) as u8, e[1]));
                }
                cum += f;
            }
        }
        dec.decode_update(total, esc.max(1));
        None
    }

    /// Decodes after an escape from `node` (see [`encode_escaped`](Self::encode_escaped)).
    #[cold]
    fn decode_escaped(
        &self,
        dec: &mut RangeDecoder<'_>,
        mut node: usize,
        not: Option<u8>,
    ) -> (u8, u32) {
        loop {
            let (excl, total, sfx) = self.escape_from(node, not);
            let Some(sfx) = sfx else {
                return (0, self.root); // only reachable on corrupt input
            };
            node = sfx;
            if let Some(hit) = self.decode_in(dec, node, total, &excl) {
                return hit;
            }
        }
    }
}

fn check_entry(order: usize, e: &ContextEntry) -> Result<()> {
    let bad = |what: &str| Err(Error::invalid(format!("order-{order} context: {what}")));
    if e.key & !key_mask(order) != 0 {
        return bad("key longer than the order");
    }
    if e.syms.is_empty() || e.syms.len() > 256 {
        return bad("no symbols");
    }
    let total: u32 = e.syms.iter().map(|&(_, f)| u32::from(f)).sum();
    if e.syms.iter().any(|&(_, f)| f == 0) {
        return bad("zero frequency");
    }
    if total + u32::from(e.esc) != MAX_TOTAL {
        return bad("frequencies and escape do not sum to the coder's total");
    }
    if e.esc == 0 && e.syms.len() < 256 {
        return bad("no escape from an incomplete context");
    }
    let mut seen = ByteSet::default();
    for &(s, _) in &e.syms {
        if seen.has(u32::from(s)) {
            return bad("repeated symbol");
        }
        seen.set(u32::from(s));
    }
    Ok(())
}
