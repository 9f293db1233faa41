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

use super::{ContextEntry, ContextModel, MAX_ORDER, SEE_CELLS};
use crate::coder::MAX_TOTAL;
use crate::error::{Error, Result};
use crate::varint;

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
    (n_bucket(c.total()) * D_BUCKETS + d_bucket(c.counts.len())) as u8
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

    /// Reads a model section from `buf` at `*pos`.
    pub(crate) fn read(buf: &[u8], pos: &mut usize, base: u64) -> Result<ModelCounts> {
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
        let mut root = Vec::with_capacity(256);
        for s in 0..=255u8 {
            let c = read_count(buf, pos, base, true)?;
            if c > 0 {
                root.push((s, c));
            }
        }
        let mut orders = vec![vec![Counted {
            key: 0,
            counts: root,
        }]];
        for k in 1..=max_order {
            let parents = &orders[k - 1];
            let bit_count: usize = parents.iter().map(|p| listed(p, k - 1).count()).sum();
            let nbytes = bit_count.div_ceil(8);
            let bits = buf
                .get(*pos..*pos + nbytes)
                .ok_or_else(|| Error::truncated("a context presence map", at(*pos)))?;
            *pos += nbytes;
            let mut keys = Vec::new();
            let mut i = 0usize;
            for parent in parents {
                for sym in listed(parent, k - 1) {
                    if bits[i / 8] >> (i % 8) & 1 != 0 {
                        keys.push(parent.key << 8 | u64::from(sym));
                    }
                    i += 1;
                }
            }
            let mut ctxs = Vec::with_capacity(keys.len());
            for key in keys {
                let start = *pos;
                let d = varint::read(buf, pos, base)? + 1;
                if d > 256 {
                    return Err(Error::corrupt(
                        "context with more than 256 followers",
                        at(start),
                    ));
                }
                let syms = buf
                    .get(*pos..*pos + d as usize)
                    .ok_or_else(|| Error::truncated("a context's bytes", at(*pos)))?;
                *pos += d as usize;
                let mut counts = Vec::with_capacity(d as usize);
                let mut prev: Option<u32> = None;
                for &g in syms {
                    let s = prev.map_or(u32::from(g), |p| p + 1 + u32::from(g));
                    if s > 255 {
                        return Err(Error::corrupt("context byte past 255", at(start)));
                    }
                    counts.push((s as u8, 0));
                    prev = Some(s);
                }
                for entry in counts.iter_mut() {
                    entry.1 = read_count(buf, pos, base, false)?;
                }
                ctxs.push(Counted { key, counts });
            }
            orders.push(ctxs);
        }
        Ok(ModelCounts {
            max_order,
            first,
            after,
            orders,
        })
    }

    /// Builds the coding model: counts and calibration become coder frequencies.
    pub(crate) fn build(&self) -> Result<ContextModel> {
        use rayon::prelude::*;
        // Every context is quantized on its own: spread over the cores (loading a codebook is
        // what a short command spends most of its time on).
        let entries = self
            .orders
            .iter()
            .enumerate()
            .map(|(k, ctxs)| {
                ctxs.par_iter()
                    .map(|c| {
                        let cell = cell_of(c);
                        let p = f64::from(self.first[k * SEE_CELLS + usize::from(cell)]) / 65536.0;
                        quantize(c, p, cell, k == 0)
                    })
                    .collect()
            })
            .collect();
        ContextModel::from_entries(entries, self.after.clone())
    }
}

/// The bytes that may extend a context into a longer one, ascending: all 256 for order 0, and
/// byte 0 for every all-zero context (a record's start is preceded by zeros, so the all-zero
/// contexts of every order exist without their shorter all-zero context listing byte 0).
fn listed(c: &Counted, order: usize) -> Box<dyn Iterator<Item = u8> + '_> {
    let listed = c.counts.iter().map(|&(s, _)| s);
    if order == 0 {
        Box::new(0..=255u8)
    } else if c.key == 0 && c.counts.first().map(|&(s, _)| s) != Some(0) {
        Box::new(std::iter::once(0).chain(listed))
    } else {
        Box::new(listed)
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
/// precision, none below 1. Order 0 lists every byte (unseen ones weigh half a count) and has
/// no escape.
pub(crate) fn quantize(c: &Counted, p_escape: f64, cell: u8, complete: bool) -> ContextEntry {
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
    // The frequencies and the escape sum to exactly MAX_TOTAL (a power of two: the decoder
    // scales the range with a shift); what truncation left over goes to the likeliest byte.
    let used: u32 = list.iter().map(|&(_, f)| u32::from(f)).sum::<u32>() + u32::from(esc);
    list[0].1 += (MAX_TOTAL - used) as u16;
    ContextEntry {
        key: c.key,
        weight: c.total(),
        esc,
        cell,
        syms: list,
    }
}
