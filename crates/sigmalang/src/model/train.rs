//! Training a context model from a corpus of records.
//!
//! Training counts, for every context of order `0..=max_order`, which bytes followed it, and
//! drops contexts seen fewer times than a threshold. A context's listed bytes get frequencies
//! proportional to their counts; its escape frequency (the weight of "a byte not listed") is
//! *calibrated*: the corpus's last tenth is held out, a model is counted on the rest, and the
//! coder's visits are simulated on the held-out records to measure how often each kind of context
//! (order, occurrence count, number of distinct followers) meets a byte it does not list. Those
//! measured escape rates set the escape frequencies of the model counted on the whole corpus, so
//! the model expects as much novelty as new text of the same kind brings.

use super::serial::{cell_of, d_bucket, n_bucket, Counted, ModelCounts, D_BUCKETS, N_BUCKETS};
use super::{key_mask, MAX_ORDER, SEE_CELLS};
use crate::error::{Error, Result};

/// How a model is trained.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TrainOptions {
    /// The longest context, in bytes (1..=7).
    pub(crate) max_order: usize,
    /// A context of order `2..high_order` is kept only if it occurred at least this often.
    pub(crate) min_count: u32,
    /// Contexts of orders at or above this need `min_count_high` occurrences.
    pub(crate) high_order: usize,
    /// The occurrence threshold of high orders (at least `min_count`).
    pub(crate) min_count_high: u32,
    /// Held-out escape rates are trusted for kinds of context visited at least this often;
    /// rarer kinds fall back to coarser ones.
    pub(crate) min_calibration_visits: u32,
    /// At most this many bytes of records are used; larger corpora are sampled evenly. Bounds
    /// training memory (about 10 bytes per training byte).
    pub(crate) max_input: usize,
    /// A context of order 2 or more is kept only if it saves at least this many bits per MiB
    /// of training text against its one-byte-shorter suffix, estimated leave-one-out (each
    /// byte as if it were new text, PPM method C escapes); 0 keeps every context the counts
    /// keep. Relative to the corpus size, so that a level builds models of about the same
    /// size (and speed) from small and large corpora. Contexts that a kept longer context
    /// needs (its prefix and suffix) are always kept.
    pub(crate) min_gain_per_mib: f64,
}

crate::settings! {
    TrainOptions {
        /// The longest context, in bytes (1..=7).
        max_order, get_max_order: max_order: usize;
        /// A context of order `2..high_order` is kept only if it occurred at least this often.
        min_count, get_min_count: min_count: u32;
        /// Contexts of orders at or above this need `min_count_high` occurrences.
        high_order, get_high_order: high_order: usize;
        /// The occurrence threshold of high orders (at least `min_count`).
        min_count_high, get_min_count_high: min_count_high: u32;
        /// Held-out escape rates are trusted for kinds of context visited at least this often;
        /// rarer kinds fall back to coarser ones.
        min_calibration_visits, get_min_calibration_visits: min_calibration_visits: u32;
        /// At most this many bytes of records are used; larger corpora are sampled evenly. Bounds
        /// training memory (about 10 bytes per training byte).
        max_input, get_max_input: max_input: usize;
        /// A context of order 2 or more is kept only if it saves at least this many bits per MiB
        /// of training text against its one-byte-shorter suffix, estimated leave-one-out (each
        /// byte as if it were new text, PPM method C escapes); 0 keeps every context the counts
        /// keep. Relative to the corpus size, so that a level builds models of about the same
        /// size (and speed) from small and large corpora. Contexts that a kept longer context
        /// needs (its prefix and suffix) are always kept.
        min_gain_per_mib, get_min_gain_per_mib: min_gain_per_mib: f64;
    }
}

/// A training preset: how large a model to build, trading compression for speed and size.
///
/// Every level writes the same format and uses the same coder; a level only decides which
/// contexts the codebook keeps. Measured on chat-dev.jsonl, trained on chat-train.jsonl
/// (`cargo run --release -p sigma-bench`; the bench's README has the table):
///
/// | level | max order | pruning | ratio | decode |
/// | --- | --- | --- | --- | --- |
/// | `fast` | 5 | gain >= 7 bits/MiB | 4.33x | 48 MB/s |
/// | `default` | 6 | gain >= 4.5 bits/MiB | 4.47x | 43 MB/s |
/// | `max` | 7 | count >= 3 from order 6, gain >= 0.15 bits/MiB | 4.82x | 20 MB/s |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompressionLevel {
    /// Smallest and fastest.
    Fast,
    /// The built-in codebook's level: at least 40 MB/s decoding on one core.
    #[default]
    Default,
    /// The best compression; larger codebooks, about half the speed.
    Max,
}

impl CompressionLevel {
    /// Every level, fastest first.
    pub const ALL: [CompressionLevel; 3] = [
        CompressionLevel::Fast,
        CompressionLevel::Default,
        CompressionLevel::Max,
    ];

    /// The level's name: `fast`, `default` or `max`.
    pub fn name(self) -> &'static str {
        match self {
            CompressionLevel::Fast => "fast",
            CompressionLevel::Default => "default",
            CompressionLevel::Max => "max",
        }
    }
}

impl std::fmt::Display for CompressionLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CompressionLevel {
    type Err = Error;

    fn from_str(s: &str) -> Result<CompressionLevel> {
        CompressionLevel::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| Error::invalid(format!("unknown level {s:?} (fast, default or max)")))
    }
}

impl Default for TrainOptions {
    /// The options of [`CompressionLevel::Default`].
    fn default() -> Self {
        TrainOptions::for_level(CompressionLevel::Default)
    }
}

impl TrainOptions {
    /// The options of a training preset.
    pub fn for_level(level: CompressionLevel) -> TrainOptions {
        let (max_order, high_order, min_count_high, min_gain_per_mib) = match level {
            CompressionLevel::Fast => (5, 3, 2, 7.0),
            CompressionLevel::Default => (6, 3, 2, 4.5),
            CompressionLevel::Max => (7, 6, 3, 0.15),
        };
        TrainOptions {
            max_order,
            min_count: 2,
            high_order,
            min_count_high,
            min_calibration_visits: 32,
            max_input: 256 << 20,
            min_gain_per_mib,
        }
    }

    fn threshold(&self, order: usize) -> u32 {
        match order {
            0 | 1 => 1,
            // Thresholds never fall with the order, so every context's prefix and suffix exist.
            k if k >= self.high_order => self.min_count_high.max(self.min_count).max(1),
            _ => self.min_count.max(1),
        }
    }
}

/// Trains a model on `records`. `progress(done, total)` is called as steps complete.
pub(crate) fn train(
    records: &[&[u8]],
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ModelCounts> {
    if opts.max_order == 0 || opts.max_order > MAX_ORDER {
        return Err(Error::invalid(format!(
            "max order must be 1..={MAX_ORDER}, got {}",
            opts.max_order
        )));
    }
    let records = sample(records, opts.max_input);
    let steps = 2 * (opts.max_order + 1) + 1;
    let split = records.len() - records.len() / 10;
    let calibration = if split > 0 && split < records.len() {
        let held_in = count(&records[..split], opts, &mut |_| {});
        Calibration::measure(&held_in, &records[split..], opts)
    } else {
        Calibration::default()
    };
    progress(1, steps);
    let counted = count(&records, opts, &mut |k| progress(k + 2, steps));
    progress(steps, steps);
    Ok(ModelCounts {
        max_order: opts.max_order,
        first: calibration.first_table(opts),
        after: calibration.after_table(opts),
        orders: counted,
    })
}

/// Counts the contexts of every order in `records`, keeping those above the thresholds.
fn count(records: &[&[u8]], opts: &TrainOptions, done: &mut dyn FnMut(usize)) -> Vec<Vec<Counted>> {
    let total_bytes: usize = records.iter().map(|r| r.len()).sum();
    let mut counted = Vec::with_capacity(opts.max_order + 1);
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
        counted.push(group(&items, k, opts.threshold(k)));
        done(k);
    }
    if opts.min_gain_per_mib > 0.0 {
        let mib = total_bytes as f64 / f64::from(1u32 << 20);
        prune(&mut counted, opts.min_gain_per_mib * mib);
    }
    counted
}

/// Drops the contexts of order 2 and more that save fewer than `min_gain` bits over their
/// suffix, keeping every context a kept longer one needs (longest orders first, so the tree of
/// §3.2 stays whole: a context's prefix `key >> 8` and suffix `key & mask(k - 1)` exist).
fn prune(counted: &mut [Vec<Counted>], min_gain: f64) {
    let max_order = counted.len() - 1;
    // Keys the contexts kept at the order above need, sorted.
    let mut needed: Vec<u64> = Vec::new();
    for k in (2..=max_order).rev() {
        let (lower, upper) = counted.split_at_mut(k);
        let suffixes = &lower[k - 1];
        let keep: Vec<bool> = upper[0]
            .iter()
            .map(|c| {
                needed.binary_search(&c.key).is_ok() || {
                    let sfx = suffixes
                        .binary_search_by_key(&(c.key & key_mask(k - 1)), |s| s.key)
                        .map(|i| &suffixes[i]);
                    sfx.map_or(true, |s| context_gain(c, s) >= min_gain)
                }
            })
            .collect();
        let mut i = 0;
        upper[0].retain(|_| {
            i += 1;
            keep[i - 1]
        });
        needed = upper[0]
            .iter()
            .flat_map(|c| [c.key >> 8, c.key & key_mask(k - 1)])
            .collect();
        needed.sort_unstable();
        needed.dedup();
    }
}

/// Bits that context `c` saves on its own training occurrences against its suffix `s`,
/// estimated leave-one-out: each occurrence is coded with the counts of all the others (PPM
/// method C: a context with `n` occurrences of `d` distinct bytes escapes with probability
/// `d / (n + d)`), so a byte seen once in `c` costs an escape there, and a context seen once
/// saves nothing. Exclusions are ignored.
pub(crate) fn context_gain(c: &Counted, s: &Counted) -> f64 {
    let n = f64::from(c.total());
    let d = c.counts.len() as f64;
    let m = f64::from(s.total());
    let e = s.counts.len() as f64;
    let mut gain = 0.0;
    let mut j = 0;
    for &(x, cx) in &c.counts {
        while j < s.counts.len() && s.counts[j].0 < x {
            j += 1;
        }
        let sx = s.counts.get(j).filter(|t| t.0 == x).map_or(1, |t| t.1);
        let sx = f64::from(sx);
        let cx = f64::from(cx);
        // The suffix, leave-one-out (a byte it saw once: as if it came from an order-0 guess).
        let p_s = if sx > 1.0 {
            (sx - 1.0) / (m - 1.0 + e)
        } else {
            (e - 1.0).max(1.0) / (m - 1.0 + e).max(1.0) / 256.0
        };
        // This context, leave-one-out.
        let p_c = if cx > 1.0 {
            (cx - 1.0) / (n - 1.0 + d)
        } else if n > 1.0 {
            (d - 1.0) / (n - 1.0 + d - 1.0) * p_s
        } else {
            p_s
        };
        gain += cx * (p_c / p_s).log2();
    }
    gain
}

/// Escape rates measured on held-out records, by order and kind of context.
#[derive(Default)]
struct Calibration {
    /// First visits (nothing excluded): `[order][n bucket][d bucket]` -> (visits, escapes)
    cells: Vec<Vec<[(u64, u64); D_BUCKETS]>>,
    /// Visits after an escape: `[order][cell]` -> (visits, escapes)
    after: Vec<Vec<(u64, u64)>>,
}

impl Calibration {
    fn measure(held_in: &[Vec<Counted>], held_out: &[&[u8]], opts: &TrainOptions) -> Calibration {
        use std::collections::HashMap;
        let maps: Vec<HashMap<u64, usize>> = held_in
            .iter()
            .map(|ctxs| ctxs.iter().enumerate().map(|(i, c)| (c.key, i)).collect())
            .collect();
        let mut cells = vec![vec![[(0u64, 0u64); D_BUCKETS]; N_BUCKETS]; opts.max_order + 1];
        let mut after = vec![vec![(0u64, 0u64); SEE_CELLS]; opts.max_order + 1];
        for rec in held_out {
            let mut hist = 0u64;
            for &x in rec.iter() {
                let mut excluded = 0usize;
                for k in (0..=opts.max_order).rev() {
                    let Some(&i) = maps[k].get(&(hist & key_mask(k))) else {
                        continue;
                    };
                    let c = &held_in[k][i];
                    // Lists are nested, so the excluded bytes are the last visited list; a list
                    // with nothing new codes nothing.
                    if c.counts.len() == excluded {
                        continue;
                    }
                    let n: u32 = c.counts.iter().map(|&(_, x)| x).sum();
                    let cell = if excluded == 0 {
                        &mut cells[k][n_bucket(n)][d_bucket(c.counts.len())]
                    } else {
                        &mut after[k][usize::from(cell_of(c))]
                    };
                    cell.0 += 1;
                    if c.counts.binary_search_by_key(&x, |&(s, _)| s).is_ok() {
                        break;
                    }
                    cell.1 += 1;
                    excluded = c.counts.len();
                }
                hist = (hist << 8) | u64::from(x);
            }
        }
        Calibration { cells, after }
    }

    /// The after-escape table: escape odds `p / (1 - p)` in 1/256 units, per order and cell.
    fn after_table(&self, opts: &TrainOptions) -> Vec<u16> {
        let min = u64::from(opts.min_calibration_visits);
        let mut out = Vec::with_capacity((opts.max_order + 1) * SEE_CELLS);
        for k in 0..=opts.max_order {
            let row = self.after.get(k);
            let order_total = row.map_or((0, 0), |r| {
                r.iter().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1))
            });
            for cell in 0..SEE_CELLS {
                let c = row.map_or((0, 0), |r| r[cell]);
                let (v, e) = if c.0 >= min {
                    c
                } else if order_total.0 >= min {
                    order_total
                } else {
                    (2, 1)
                };
                let p = ((e as f64 + 0.5) / (v as f64 + 1.0)).clamp(0.002, 0.995);
                out.push((p / (1.0 - p) * 256.0).round().clamp(1.0, 65535.0) as u16);
            }
        }
        out
    }

    /// The first-visit table: escape probability * 65536 per order and cell. Cells visited
    /// too rarely take their count bucket's rate, or PPM method C's estimate with a quarter more
    /// escape.
    fn first_table(&self, opts: &TrainOptions) -> Vec<u16> {
        let min = u64::from(opts.min_calibration_visits);
        let rate = |(v, e): (u64, u64)| (e as f64 + 0.5) / (v as f64 + 1.0);
        let mut out = vec![1u16; (opts.max_order + 1) * SEE_CELLS];
        for k in 0..=opts.max_order {
            for nb in 0..N_BUCKETS {
                for db in 0..D_BUCKETS {
                    let p = match self.cells.get(k).map(|r| &r[nb]) {
                        Some(row) if row[db].0 >= min => rate(row[db]),
                        Some(row) if row.iter().map(|c| c.0).sum::<u64>() >= min => {
                            rate(row.iter().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1)))
                        }
                        _ => {
                            let n = f64::from(bucket_floor(nb));
                            let d = ((db + 1) as f64).min(n) * 1.25;
                            d / (n + d)
                        }
                    };
                    out[k * SEE_CELLS + nb * D_BUCKETS + db] =
                        (p * 65536.0).clamp(1.0, 65535.0) as u16;
                }
            }
        }
        out
    }
}

/// The smallest count in bucket `nb`.
fn bucket_floor(nb: usize) -> u32 {
    (1..=1u32 << 24).find(|&n| n_bucket(n) >= nb).unwrap_or(1)
}

/// At most `max_input` bytes of records, taken evenly across the corpus.
fn sample<'a>(records: &[&'a [u8]], max_input: usize) -> Vec<&'a [u8]> {
    let total: usize = records.iter().map(|r| r.len()).sum();
    if total <= max_input {
        return records.to_vec();
    }
    let mut out = Vec::new();
    let mut taken = 0usize;
    let mut seen = 0usize;
    for r in records {
        seen += r.len();
        // Keep the running share of taken bytes at max_input / total.
        if (taken as u128) * (total as u128) <= (seen as u128) * (max_input as u128) {
            out.push(*r);
            taken += r.len();
        }
    }
    out
}

/// Groups sorted `(context << 8 | symbol)` items into contexts with at least `min_count`
/// occurrences.
fn group(items: &[u64], order: usize, min_count: u32) -> Vec<Counted> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let key = items[i] >> 8;
        let mut counts = Vec::new();
        while i < items.len() && items[i] >> 8 == key {
            let mut j = i;
            while j < items.len() && items[j] == items[i] {
                j += 1;
            }
            counts.push((items[i] as u8, (j - i) as u32));
            i = j;
        }
        let n: u32 = counts.iter().map(|&(_, c)| c).sum();
        if order <= 1 || n >= min_count {
            out.push(Counted { key, counts });
        }
    }
    if order == 0 && out.is_empty() {
        out.push(Counted {
            key: 0,
            counts: Vec::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codebook;

    fn counted(key: u64, counts: &[(u8, u32)]) -> Counted {
        Counted {
            key,
            counts: counts.to_vec(),
        }
    }

    #[test]
    fn levels_parse_and_name_themselves() {
        for level in CompressionLevel::ALL {
            assert_eq!(level.name().parse::<CompressionLevel>().unwrap(), level);
            assert_eq!(level.to_string(), level.name());
        }
        assert_eq!(CompressionLevel::default(), CompressionLevel::Default);
        assert!("medium"
            .parse::<CompressionLevel>()
            .unwrap_err()
            .to_string()
            .contains("medium"));
        let (fast, default, max) = (
            TrainOptions::for_level(CompressionLevel::Fast),
            TrainOptions::default(),
            TrainOptions::for_level(CompressionLevel::Max),
        );
        assert!(fast.max_order < default.max_order && default.max_order < max.max_order);
        assert!(fast.min_gain_per_mib > default.min_gain_per_mib);
        assert!(default.min_gain_per_mib > max.min_gain_per_mib);
    }

    #[test]
    fn gain_rewards_contexts_that_predict_better_than_their_suffix() {
        // The suffix sees 'a' and 'b' equally often; the context sees only 'a'.
        let suffix = counted(1, &[(b'a', 500), (b'b', 500)]);
        let sharp = counted(0x0201, &[(b'a', 100)]);
        let g = context_gain(&sharp, &suffix);
        // About one bit saved per occurrence (1/2 -> ~1), minus the leave-one-out cost.
        assert!((90.0..=101.0).contains(&g), "{g}");
        // A context that predicts what its suffix predicts saves (almost) nothing.
        let same = counted(0x0301, &[(b'a', 50), (b'b', 50)]);
        assert!(context_gain(&same, &suffix) < 1.0);
        // A context seen once saves nothing, whatever it saw.
        let once = counted(0x0401, &[(b'a', 1)]);
        assert!(context_gain(&once, &suffix) <= 1e-9);
        // A byte the context saw once costs an escape there.
        let mixed = counted(0x0501, &[(b'a', 20), (b'c', 1)]);
        let suffix_c = counted(1, &[(b'a', 500), (b'b', 500), (b'c', 5)]);
        assert!(
            context_gain(&mixed, &suffix_c)
                < context_gain(&counted(0x0501, &[(b'a', 21)]), &suffix_c)
        );
    }

    /// Pruning by gain shrinks the model, keeps the tree whole (every kept context's prefix and
    /// suffix: the loader checks), and the smaller model still codes every record.
    #[test]
    fn pruning_keeps_the_tree_whole() {
        let corpus: Vec<Vec<u8>> = (0..400)
            .map(|i| {
                format!(
                    "user {}: please summarize the report on {} and list {} action items.",
                    i % 13,
                    ["sales", "hiring", "the outage", "pricing"][i % 4],
                    i % 7
                )
                .into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = corpus.iter().map(|r| &r[..]).collect();
        let unpruned = TrainOptions {
            min_gain_per_mib: 0.0,
            ..TrainOptions::default()
        };
        let pruned = TrainOptions {
            min_gain_per_mib: 50_000.0,
            ..TrainOptions::default()
        };
        let a = Codebook::train(&refs, &unpruned, &mut |_, _| {}).unwrap();
        let b = Codebook::train(&refs, &pruned, &mut |_, _| {}).unwrap();
        let (ca, cb) = (a.model().context_counts(), b.model().context_counts());
        assert_eq!(ca[..2], cb[..2], "orders 0 and 1 are never pruned");
        assert!(
            cb.iter().sum::<usize>() < ca.iter().sum::<usize>(),
            "{ca:?} {cb:?}"
        );
        let reloaded = Codebook::from_bytes(&b.to_bytes()).unwrap();
        assert_eq!(reloaded.model().context_counts(), cb);
        let codebook = b;
        let mut enc = crate::Encoder::new(codebook.clone());
        let mut dec = crate::Decoder::new(codebook);
        for r in refs.iter().take(50) {
            let (mut p, mut out) = (Vec::new(), Vec::new());
            enc.encode(r, &mut p).unwrap();
            dec.decode(&p, &mut out).unwrap();
            assert_eq!(&out[..], *r);
        }
    }
}
