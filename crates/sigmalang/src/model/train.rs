//! Training a context model from a corpus of records.

use super::{key_mask, ContextEntry, ContextModel, MAX_ORDER};
use crate::coder::MAX_TOTAL;
use crate::error::{Error, Result};

/// How a model is trained.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The longest context, in bytes (1..=7).
    pub max_order: usize,
    /// A context of order `k >= 2` is kept only if it occurred at least this often in training.
    pub min_count: u32,
    /// Contexts of orders at or above this need `min_count_high` occurrences.
    pub high_order: usize,
    /// The occurrence threshold of high orders.
    pub min_count_high: u32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            max_order: 6,
            min_count: 2,
            high_order: 5,
            min_count_high: 2,
        }
    }
}

impl TrainOptions {
    fn threshold(&self, order: usize) -> u32 {
        match order {
            0 | 1 => 1,
            k if k >= self.high_order => self.min_count_high.max(1),
            _ => self.min_count.max(1),
        }
    }
}

/// Trains a model on `records`. `progress(done, total)` is called as orders complete.
pub(crate) fn train(
    records: &[&[u8]],
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ContextModel> {
    if opts.max_order == 0 || opts.max_order > MAX_ORDER {
        return Err(Error::invalid(format!(
            "max order must be 1..={MAX_ORDER}, got {}",
            opts.max_order
        )));
    }
    let total_bytes: usize = records.iter().map(|r| r.len()).sum();
    let mut orders = Vec::with_capacity(opts.max_order + 1);
    let mut items: Vec<u64> = Vec::with_capacity(total_bytes);
    for k in 0..=opts.max_order {
        items.clear();
        let mask = key_mask(k);
        for rec in records {
            let mut hist = 0u64;
            for &b in rec.iter() {
                items.push(((hist & mask) << 8) | u64::from(b));
                hist = (hist << 8) | u64::from(b);
            }
        }
        items.sort_unstable();
        orders.push(contexts_of(&items, k, opts.threshold(k)));
        progress(k + 1, opts.max_order + 1);
    }
    ContextModel::from_entries(orders)
}

/// Groups sorted `(context << 8 | symbol)` items into contexts.
fn contexts_of(items: &[u64], order: usize, min_count: u32) -> Vec<ContextEntry> {
    let mut out = Vec::new();
    let mut counts: Vec<(u8, u32)> = Vec::with_capacity(256);
    let mut i = 0;
    while i < items.len() || (order == 0 && out.is_empty()) {
        let key = if i < items.len() { items[i] >> 8 } else { 0 };
        counts.clear();
        while i < items.len() && items[i] >> 8 == key {
            let sym = items[i] as u8;
            let mut j = i;
            while j < items.len() && items[j] == items[i] {
                j += 1;
            }
            counts.push((sym, (j - i) as u32));
            i = j;
        }
        if order == 0 {
            // Order 0 lists every byte, so that every byte is codable without an order -1.
            let mut all = [1u32; 256];
            for &(s, c) in &counts {
                all[usize::from(s)] += c;
            }
            counts.clear();
            counts.extend((0..=255u8).map(|s| (s, all[usize::from(s)])));
        }
        let n: u32 = counts.iter().map(|&(_, c)| c).sum();
        if order > 0 && n < min_count {
            continue;
        }
        out.push(entry(key, &mut counts, order == 0));
    }
    out
}

/// Turns raw counts into coder frequencies and an escape frequency.
///
/// Frequencies follow PPM method D: a symbol seen `c` times gets `2c - 1`, the escape gets the
/// number of distinct symbols `d`; then all are scaled to fit the coder's total.
fn entry(key: u64, counts: &mut [(u8, u32)], complete: bool) -> ContextEntry {
    counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let d = counts.len() as u64;
    let mut esc = if complete { 0 } else { d };
    let mut freqs: Vec<u64> = counts.iter().map(|&(_, c)| 2 * u64::from(c) - 1).collect();
    let limit = u64::from(MAX_TOTAL) - 1;
    let sum: u64 = freqs.iter().sum::<u64>() + esc;
    if sum > limit {
        // Scale down, keeping every frequency (and a needed escape) at least 1.
        let budget = limit - freqs.len() as u64 - u64::from(!complete);
        for f in freqs.iter_mut() {
            *f = 1 + (*f - 1) * budget / sum;
        }
        if !complete {
            esc = 1 + (esc - 1) * budget / sum;
        }
    }
    ContextEntry {
        key,
        esc: esc as u16,
        syms: counts
            .iter()
            .zip(freqs)
            .map(|(&(s, _), f)| (s, f as u16))
            .collect(),
    }
}
