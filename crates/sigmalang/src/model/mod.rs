//! The context model: byte prediction from the preceding bytes, learned from a corpus.
//!
//! The model is a table of contexts for each order `0..=max_order` (the last `k` bytes before the
//! byte to code; the bytes before a record's start count as zeros, so record openings are
//! learned too). Each context lists the bytes that followed it in training, most frequent first,
//! with frequencies, and an escape frequency: the weight of "a byte not in this list".
//!
//! A byte is coded PPM-style: from the longest context that the table holds down to order 0,
//! either the byte is in the context's list and is coded there, or an escape is coded and the
//! list's bytes are excluded from the lower orders (they cannot be the byte). Order 0 lists all
//! 256 bytes, so every byte is codable.
//!
//! The model is immutable and shared; what adapts to the record being coded lives in the coder.

mod train;

pub(crate) use train::train;
pub use train::TrainOptions;

use crate::coder::{RangeDecoder, RangeEncoder, MAX_TOTAL};
use crate::error::{Error, Result};
use crate::varint;

/// The longest context a model may use, in bytes.
pub const MAX_ORDER: usize = 7;

/// One context of a table.
#[derive(Clone, Copy, Debug, Default)]
struct Ctx {
    /// The context bytes, the most recent in the low byte.
    key: u64,
    /// Index of the first symbol in the model's symbol arrays.
    start: u32,
    /// Sum of the symbols' frequencies.
    total: u16,
    /// Escape frequency.
    esc: u16,
    /// Number of symbols; 0 marks an empty slot.
    n: u16,
}

#[derive(Clone, Debug, Default)]
struct Table {
    slots: Vec<Ctx>,
    mask: usize,
    len: usize,
}

#[inline]
fn key_mask(order: usize) -> u64 {
    if order == 0 {
        0
    } else {
        u64::MAX >> (64 - 8 * order)
    }
}

#[inline]
fn slot_of(key: u64, mask: usize) -> usize {
    let h = key
        .wrapping_add(0x632b_e59b_d9b4_e019)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h ^ (h >> 31)) as usize) & mask
}

/// A set of excluded bytes.
#[derive(Clone, Copy, Default)]
struct Excluded {
    bits: [u64; 4],
    count: u32,
}

impl Excluded {
    #[inline]
    fn has(&self, s: u8) -> bool {
        self.bits[usize::from(s >> 6)] >> (s & 63) & 1 != 0
    }

    #[inline]
    fn add(&mut self, s: u8) {
        let w = &mut self.bits[usize::from(s >> 6)];
        let bit = 1u64 << (s & 63);
        if *w & bit == 0 {
            *w |= bit;
            self.count += 1;
        }
    }
}

/// A context model: contexts of every order with their symbol frequencies.
#[derive(Clone, Debug)]
pub struct ContextModel {
    max_order: usize,
    tables: Vec<Table>,
    /// Symbols of all contexts: `symbol << 16 | frequency`.
    syms: Vec<u32>,
}

/// A context as training produces it, before it is placed in a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContextEntry {
    pub key: u64,
    pub esc: u16,
    /// (symbol, frequency), most frequent first.
    pub syms: Vec<(u8, u16)>,
}

impl ContextModel {
    /// Builds a model from per-order context lists (`orders[k]` holds the order-k contexts).
    pub(crate) fn from_entries(orders: Vec<Vec<ContextEntry>>) -> Result<ContextModel> {
        let max_order = orders
            .len()
            .checked_sub(1)
            .ok_or_else(|| Error::invalid("model has no orders"))?;
        if max_order > MAX_ORDER {
            return Err(Error::invalid(format!(
                "model order {max_order} exceeds {MAX_ORDER}"
            )));
        }
        let mut model = ContextModel {
            max_order,
            tables: Vec::with_capacity(orders.len()),
            syms: Vec::new(),
        };
        for (k, entries) in orders.into_iter().enumerate() {
            let cap = (entries.len() * 4 / 3 + 1).next_power_of_two().max(1);
            let mut table = Table {
                slots: vec![Ctx::default(); cap],
                mask: cap - 1,
                len: entries.len(),
            };
            for e in entries {
                model.check_entry(k, &e)?;
                let ctx = Ctx {
                    key: e.key,
                    start: model.syms.len() as u32,
                    total: e.syms.iter().map(|&(_, f)| f).sum(),
                    esc: e.esc,
                    n: e.syms.len() as u16,
                };
                let mut i = slot_of(e.key, table.mask);
                while table.slots[i].n != 0 {
                    if table.slots[i].key == e.key {
                        return Err(Error::invalid(format!("duplicate order-{k} context")));
                    }
                    i = (i + 1) & table.mask;
                }
                table.slots[i] = ctx;
                model.syms.extend(
                    e.syms
                        .iter()
                        .map(|&(s, f)| u32::from(s) << 16 | u32::from(f)),
                );
            }
            model.tables.push(table);
        }
        if model.find(0, 0).is_none() {
            return Err(Error::invalid("model has no order-0 context"));
        }
        Ok(model)
    }

    fn check_entry(&self, order: usize, e: &ContextEntry) -> Result<()> {
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
        if total + u32::from(e.esc) > MAX_TOTAL {
            return bad("frequencies exceed the coder's total");
        }
        if e.esc == 0 && e.syms.len() < 256 {
            return bad("no escape from an incomplete context");
        }
        let mut seen = Excluded::default();
        for &(s, _) in &e.syms {
            if seen.has(s) {
                return bad("repeated symbol");
            }
            seen.add(s);
        }
        Ok(())
    }

    /// The longest context order the model uses.
    pub fn max_order(&self) -> usize {
        self.max_order
    }

    /// Number of contexts of each order.
    pub fn context_counts(&self) -> Vec<usize> {
        self.tables.iter().map(|t| t.len).collect()
    }

    /// Bytes of memory the model's tables take.
    pub fn heap_bytes(&self) -> usize {
        self.tables
            .iter()
            .map(|t| t.slots.len() * std::mem::size_of::<Ctx>())
            .sum::<usize>()
            + self.syms.len() * 4
    }

    #[inline]
    fn find(&self, order: usize, hist: u64) -> Option<&Ctx> {
        let t = &self.tables[order];
        let key = hist & key_mask(order);
        let mut i = slot_of(key, t.mask);
        loop {
            let c = &t.slots[i];
            if c.n == 0 {
                return None;
            }
            if c.key == key {
                return Some(c);
            }
            i = (i + 1) & t.mask;
        }
    }

    #[inline]
    fn symbols(&self, c: &Ctx) -> &[u32] {
        let s = c.start as usize;
        &self.syms[s..s + usize::from(c.n)]
    }

    /// Codes byte `x`, which follows the bytes in `hist` (most recent in the low byte).
    ///
    /// `start_order` is the highest order worth probing: one more than the order the previous
    /// byte was coded at (a context of order `k` exists only if its prefix, the order `k - 1`
    /// context one byte earlier, does). Returns the order `x` was found at.
    #[inline]
    pub fn encode(
        &self,
        enc: &mut RangeEncoder<'_>,
        hist: u64,
        start_order: usize,
        x: u8,
    ) -> usize {
        let mut excl = Excluded::default();
        let mut found_order = 0;
        for k in (0..=start_order.min(self.max_order)).rev() {
            let Some(c) = self.find(k, hist) else {
                continue;
            };
            found_order = found_order.max(k);
            let syms = self.symbols(c);
            let esc = u32::from(c.esc);
            if excl.count == 0 {
                let total = u32::from(c.total);
                let mut cum = 0u32;
                for &e in syms {
                    let f = e & 0xffff;
                    if (e >> 16) as u8 == x {
                        enc.encode(cum, f, total + esc);
                        return found_order;
                    }
                    cum += f;
                }
                enc.encode(total, esc, total + esc);
            } else {
                let mut total = 0u32;
                let mut hit = None;
                for &e in syms {
                    let s = (e >> 16) as u8;
                    if excl.has(s) {
                        continue;
                    }
                    if s == x {
                        hit = Some((total, e & 0xffff));
                    }
                    total += e & 0xffff;
                }
                if total == 0 {
                    continue;
                }
                if let Some((cum, f)) = hit {
                    enc.encode(cum, f, total + esc);
                    return found_order;
                }
                enc.encode(total, esc, total + esc);
            }
            for &e in syms {
                excl.add((e >> 16) as u8);
            }
        }
        // Order -1: uniform over the bytes no context listed.
        let rank = (0..x).filter(|&s| !excl.has(s)).count() as u32;
        enc.encode(rank, 1, 256 - excl.count);
        found_order
    }

    /// Decodes the byte that follows the bytes in `hist`; `start_order` as for
    /// [`encode`](Self::encode). Returns the byte and the order it was found at.
    #[inline]
    pub fn decode(&self, dec: &mut RangeDecoder<'_>, hist: u64, start_order: usize) -> (u8, usize) {
        let mut excl = Excluded::default();
        let mut found_order = 0;
        for k in (0..=start_order.min(self.max_order)).rev() {
            let Some(c) = self.find(k, hist) else {
                continue;
            };
            found_order = found_order.max(k);
            let syms = self.symbols(c);
            let esc = u32::from(c.esc);
            if excl.count == 0 {
                let total = u32::from(c.total);
                let target = dec.decode_freq(total + esc);
                if target < total {
                    let mut cum = 0u32;
                    for &e in syms {
                        let f = e & 0xffff;
                        if target < cum + f {
                            dec.decode_update(cum, f);
                            return ((e >> 16) as u8, found_order);
                        }
                        cum += f;
                    }
                }
                dec.decode_update(total, esc.max(1));
            } else {
                let total: u32 = syms
                    .iter()
                    .filter(|&&e| !excl.has((e >> 16) as u8))
                    .map(|&e| e & 0xffff)
                    .sum();
                if total == 0 {
                    continue;
                }
                let target = dec.decode_freq(total + esc);
                if target < total {
                    let mut cum = 0u32;
                    for &e in syms {
                        if excl.has((e >> 16) as u8) {
                            continue;
                        }
                        let f = e & 0xffff;
                        if target < cum + f {
                            dec.decode_update(cum, f);
                            return ((e >> 16) as u8, found_order);
                        }
                        cum += f;
                    }
                }
                dec.decode_update(total, esc.max(1));
            }
            for &e in syms {
                excl.add((e >> 16) as u8);
            }
        }
        let count = 256 - excl.count;
        if count == 0 {
            return (0, found_order); // only reachable on corrupt input
        }
        let rank = dec.decode_freq(count);
        dec.decode_update(rank, 1);
        let mut seen = 0;
        for s in 0..=255u8 {
            if !excl.has(s) {
                if seen == rank {
                    return (s, found_order);
                }
                seen += 1;
            }
        }
        (0, found_order)
    }

    /// Serializes the model (see `docs/FORMAT.md`, codebook model section).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        varint::write(out, self.max_order as u64);
        for t in &self.tables {
            let mut ctxs: Vec<&Ctx> = t.slots.iter().filter(|c| c.n != 0).collect();
            ctxs.sort_unstable_by_key(|c| c.key);
            varint::write(out, ctxs.len() as u64);
            let mut prev = 0u64;
            for c in ctxs {
                varint::write(out, c.key - prev);
                prev = c.key;
                varint::write(out, u64::from(c.n) - 1);
                varint::write(out, u64::from(c.esc));
                for &e in self.symbols(c) {
                    out.push((e >> 16) as u8);
                    varint::write(out, u64::from(e & 0xffff));
                }
            }
        }
    }

    /// Reads a model written by [`write`](Self::write) from `buf` at `*pos`.
    pub(crate) fn read(buf: &[u8], pos: &mut usize, base: u64) -> Result<ContextModel> {
        let at = |pos: usize| base + pos as u64;
        let max_order = varint::read(buf, pos, base)? as usize;
        if max_order > MAX_ORDER {
            return Err(Error::corrupt(
                format!("model order {max_order} exceeds {MAX_ORDER}"),
                at(*pos),
            ));
        }
        let mut orders = Vec::with_capacity(max_order + 1);
        for k in 0..=max_order {
            let count = varint::read(buf, pos, base)?;
            // Every context takes at least 4 bytes: a cheap bound against hostile counts.
            if count > (buf.len() - *pos) as u64 / 4 + 1 {
                return Err(Error::corrupt(
                    format!("order-{k} context count {count} is impossible"),
                    at(*pos),
                ));
            }
            let mut entries = Vec::with_capacity(count as usize);
            let mut key = 0u64;
            for i in 0..count {
                let start = *pos;
                let delta = varint::read(buf, pos, base)?;
                if i > 0 && delta == 0 {
                    return Err(Error::corrupt("contexts out of order", at(start)));
                }
                key = key
                    .checked_add(delta)
                    .ok_or_else(|| Error::corrupt("context key overflows", at(start)))?;
                let n = varint::read(buf, pos, base)? + 1;
                let esc = varint::read(buf, pos, base)?;
                if n > 256 || esc > u64::from(u16::MAX) {
                    return Err(Error::corrupt("context header out of range", at(start)));
                }
                let mut syms = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let s = *buf
                        .get(*pos)
                        .ok_or_else(|| Error::truncated("a context symbol", at(*pos)))?;
                    *pos += 1;
                    let f = varint::read(buf, pos, base)?;
                    if f == 0 || f > u64::from(u16::MAX) {
                        return Err(Error::corrupt("symbol frequency out of range", at(*pos)));
                    }
                    syms.push((s, f as u16));
                }
                entries.push(ContextEntry {
                    key,
                    esc: esc as u16,
                    syms,
                });
            }
            orders.push(entries);
        }
        ContextModel::from_entries(orders)
            .map_err(|e| Error::corrupt(format!("invalid model: {e}"), at(*pos)))
    }
}
