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

mod adaptive;
mod matcher;
pub(crate) mod serial;
mod train;

pub use adaptive::{
    table_bits, AdaptiveModel, Variant, ADAPTIVE2_ORDERS, ADAPTIVE3_ORDERS, ADAPTIVE_ORDERS,
    RUN_CLASSES_ADAPTIVE,
};
pub use matcher::{MatchModel, FLAG_RUN, MIN_MATCH, PRIMED_TABLE_BITS, RUN_CLASSES};

pub(crate) use train::train;
pub use train::{CompressionLevel, TrainOptions};

use crate::coder::{RangeDecoder, RangeEncoder, MAX_TOTAL};
use crate::error::{Error, Result};

/// The longest context a model may use, in bytes.
pub const MAX_ORDER: usize = 7;

/// Calibration cells per order in the escape table.
pub(crate) const SEE_CELLS: usize = 256;

/// Words of a node before its symbols: totals, shape, suffix link, what the suffix has left.
const NODE_HEADER: usize = 4;
/// The suffix link of the root (and an unset link while a model is built).
pub(crate) const NO_NODE: u32 = u32::MAX;
/// Zero words after the last node: the decoder reads a node's first four entries without
/// checking its length.
pub(crate) const ARENA_PADDING: usize = 8;

/// Where each byte's entry is in one node of a model being linked: a node's lookups cost one
/// table read instead of a scan of its entries. A slot is trusted only if it points into the
/// node's entries at an entry for that byte, so the table is never cleared.
struct EntryTable {
    slot: [u32; 256],
    node: usize,
    /// The node's frequencies, summed.
    total: u32,
}

impl Default for EntryTable {
    fn default() -> Self {
        EntryTable {
            slot: [0; 256],
            node: usize::MAX,
            total: 0,
        }
    }
}

impl EntryTable {
    /// Points the table at `node` (a no-op if it already is).
    fn fill(&mut self, arena: &[u32], node: usize) {
        if self.node == node {
            return;
        }
        self.node = node;
        self.total = 0;
        for (t, e) in node_syms(arena, node).chunks_exact(2).enumerate() {
            self.slot[(e[0] >> 16) as usize & 0xff] = (node + NODE_HEADER + 2 * t) as u32;
            self.total += e[0] & 0xffff;
        }
    }

    /// The word of `x`'s entry in the table's node, if the node lists `x`.
    #[inline]
    fn find(&self, arena: &[u32], x: u32) -> Option<usize> {
        let w = self.slot[x as usize & 0xff] as usize;
        let first = self.node + NODE_HEADER;
        ((first..first + node_syms(arena, self.node).len()).contains(&w) && arena[w] >> 16 == x)
            .then_some(w)
    }
}

/// Where `x` leads from `node` in a partly linked tree: the successor of `x`'s entry in the
/// longest context of `node`'s suffix chain that lists it with a successor (the root lists
/// every byte).
fn successor(arena: &[u32], root: u32, mut node: u32, x: u32) -> u32 {
    while node != NO_NODE {
        let syms = node_syms(arena, node as usize);
        if let Some(t) = entry_index(syms, x) {
            if syms[2 * t + 1] != NO_NODE {
                return syms[2 * t + 1];
            }
        }
        node = arena[node as usize + 2];
    }
    root
}

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
pub(crate) struct ByteSet([u64; 4]);

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

impl ContextModel {
    /// Links a tree whose nodes are written but not connected (suffix links and successors
    /// `NO_NODE`, `rest` 0): `nodes[k][i]` is the word of the `i`-th order-`k` context in key
    /// order, `keys[k][i]` its key, and its children (the contexts one byte longer that extend
    /// it) are `children[k][i]..children[k][i + 1]` of order `k + 1`.
    ///
    /// Orders are linked shortest first, so the suffix of every node is final when the node is
    /// reached. Lookups of a byte in a node go through a 256-slot table of the node's entries,
    /// refilled only when the node changes: linking is linear in the number of entries.
    pub(crate) fn link(
        mut arena: Vec<u32>,
        nodes: &[Vec<u32>],
        keys: &[Vec<u64>],
        children: &[Vec<u32>],
        see: Vec<u16>,
    ) -> Result<ContextModel> {
        let max_order = nodes
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
        if nodes[0].len() != 1 || keys[0] != [0] {
            return Err(Error::invalid(
                "model must have exactly one order-0 context",
            ));
        }
        let root = nodes[0][0];
        if (arena[root as usize + 1] >> 8 & 0x1ff) != 256 {
            return Err(Error::invalid(
                "the order-0 context must list all 256 bytes",
            ));
        }
        let mut own = EntryTable::default();
        let mut sfx = EntryTable::default();
        for k in 0..=max_order {
            for (i, &node) in nodes[k].iter().enumerate() {
                let node = node as usize;
                let s = arena[node + 2];
                if s != NO_NODE {
                    sfx.fill(&arena, s as usize);
                }
                // Where `x` leads from the suffix: its entry's successor (final: shorter
                // contexts are linked), else further down the suffix chain.
                let from_suffix = |arena: &[u32], x: u32| -> u32 {
                    if s == NO_NODE {
                        return root;
                    }
                    match sfx.find(arena, x) {
                        Some(w) => arena[w + 1],
                        None => successor(arena, root, arena[s as usize + 2], x),
                    }
                };
                if let Some(kids) = children.get(k).filter(|c| !c.is_empty()) {
                    let kids = kids[i] as usize..kids[i + 1] as usize;
                    if !kids.is_empty() {
                        own.fill(&arena, node);
                    }
                    for c in kids {
                        let (child, key) = (nodes[k + 1][c], keys[k + 1][c]);
                        let x = (key & 0xff) as u32;
                        if let Some(w) = own.find(&arena, x) {
                            arena[w + 1] = child;
                        }
                        arena[child as usize + 2] = if k == 0 || key == 0 {
                            node as u32
                        } else {
                            from_suffix(&arena, x)
                        };
                    }
                }
                // Bytes that lead to no longer context: where the suffix leads.
                let n = (arena[node + 1] >> 8 & 0x1ff) as usize;
                for w in (node + NODE_HEADER..node + NODE_HEADER + 2 * n).step_by(2) {
                    if arena[w + 1] == NO_NODE {
                        arena[w + 1] = from_suffix(&arena, arena[w] >> 16);
                    }
                }
                // What the suffix has left once this node's bytes are excluded: the total of
                // an escape.
                if s != NO_NODE {
                    let shared: u32 = (node + NODE_HEADER..node + NODE_HEADER + 2 * n)
                        .step_by(2)
                        .filter_map(|w| sfx.find(&arena, arena[w] >> 16))
                        .map(|w| arena[w] & 0xffff)
                        .sum();
                    arena[node + 3] = sfx.total - shared;
                }
            }
        }
        let start = (0..=max_order)
            .rev()
            .find(|&k| keys[k].first() == Some(&0))
            .map_or(root, |k| nodes[k][0]);
        Ok(ContextModel {
            max_order,
            arena,
            see,
            root,
            start,
            counts: nodes.iter().map(Vec::len).collect(),
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

    /// The first `n` entries of context `state` (most frequent first): bytes and first-visit
    /// frequencies.
    #[inline]
    pub(crate) fn head(&self, state: u32, n: usize) -> impl Iterator<Item = (u8, u16)> + '_ {
        node_syms(&self.arena, state as usize)
            .chunks_exact(2)
            .take(n)
            .map(|e| ((e[0] >> 16) as u8, (e[0] & 0xffff) as u16))
    }

    /// The total of the bytes `node` lists that `excl` does not hold.
    #[inline]
    fn total_without(&self, node: usize, excl: &ByteSet) -> u32 {
        node_syms(&self.arena, node)
            .chunks_exact(2)
            .filter(|e| !excl.has(e[0] >> 16))
            .map(|e| e[0] & 0xffff)
            .sum()
    }

    /// Codes `x` (not in `excl`) in context `state` with the bytes of `excl` excluded in every
    /// context visited; after each escape the bytes of the context escaped from join them.
    pub(crate) fn encode_set(
        &self,
        enc: &mut RangeEncoder<'_>,
        state: u32,
        x: u8,
        excl: &ByteSet,
    ) -> u32 {
        let mut node = state as usize;
        let mut excl = *excl;
        loop {
            let total = self.total_without(node, &excl);
            if let Some(next) = self.encode_in(enc, node, total, &excl, u32::from(x)) {
                return next;
            }
            for e in node_syms(&self.arena, node).chunks_exact(2) {
                excl.set(e[0] >> 16);
            }
            node = match self.arena[node + 2] {
                NO_NODE => return self.root,
                s => s as usize,
            };
        }
    }

    /// Decodes what [`encode_set`](Self::encode_set) coded.
    pub(crate) fn decode_set(
        &self,
        dec: &mut RangeDecoder<'_>,
        state: u32,
        excl: &ByteSet,
    ) -> (u8, u32) {
        let mut node = state as usize;
        let mut excl = *excl;
        loop {
            let total = self.total_without(node, &excl);
            if let Some(hit) = self.decode_in(dec, node, total, &excl) {
                return hit;
            }
            for e in node_syms(&self.arena, node).chunks_exact(2) {
                excl.set(e[0] >> 16);
            }
            node = match self.arena[node + 2] {
                NO_NODE => return (0, self.root), // only reachable on corrupt input
                s => s as usize,
            };
        }
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
