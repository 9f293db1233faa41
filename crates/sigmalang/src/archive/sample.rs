//! Sampling a primer from all of the input: the rule `sigma pack` samples a regular file by,
//! and [`sample_runs`], which applies it to records already in memory (a table's column).
//!
//! Inputs are often sorted by topic (code by crate, manual pages alphabetically, API documents
//! by service), so a primer of the first records ([`ArchiveOptions::primer`]) teaches the
//! coder little about the rest; runs of consecutive records at evenly spaced points of the
//! whole input do. Give the sample to [`ArchiveWriter::with_primer_sample`].
//!
//! The rule ([`SamplePlan`]): a primer of `P` bytes is sampled in runs of `P / 32` bytes of
//! records ([`SAMPLE_RUNS`]), at least 4 KiB ([`MIN_SAMPLE_RUN`]); run `k` of `n` starts at the
//! first record that begins at or after `k × len / n` (`len`: the input's bytes), or where the
//! previous run ended if that is later, so that runs never overlap (an input not much larger
//! than the primer gives its first records, as without sampling). A record counts its bytes
//! and a newline, as the primer holds it. [`default_primer`] is the size `sigma pack` gives a
//! file's primer: a quarter of its records' bytes, 64 KiB to 1 MiB.
//!
//! [`ArchiveOptions::primer`]: super::ArchiveOptions::primer
//! [`ArchiveWriter::with_primer_sample`]: super::ArchiveWriter::with_primer_sample

use std::ops::Range;

/// How many runs a primer is sampled in, at most. (Of 8, 16, 32, 64 and 128 runs, 32 coded
/// code, man pages and AWS JSON smallest, 64 and 128 Python by 0.3-0.5%.)
pub const SAMPLE_RUNS: usize = 32;
/// The least a run holds: 4 KiB (shorter runs cut too many records in two).
pub const MIN_SAMPLE_RUN: usize = 4 << 10;
/// What a run may cover beyond four times its size before it ends: the record it starts in,
/// and long records (`sigma pack` reads at most this much of a file per run).
const RUN_SLACK: u64 = 64 << 10;

/// The share of the records' bytes [`default_primer`] makes the primer: a quarter. Sampled
/// from the whole input, a larger primer keeps paying (code, Python, man pages and AWS JSON:
/// 1.6-4% smaller at 2 MiB than at 1 MiB), up to [`MAX_DEFAULT_PRIMER`].
pub const PRIMER_SHARE: u64 = 4;
/// The least primer [`default_primer`] makes: 64 KiB.
pub const MIN_DEFAULT_PRIMER: usize = 64 << 10;
/// The largest primer [`default_primer`] makes: 1 MiB. Every reader decodes it at open (about
/// 0.25 s of CPU per MiB, which a one-shot `get` pays) and holds its state twice (a primer
/// over 1 MiB doubles the adaptive table, 16 to 32 MiB: a 2 MiB primer took a `get` about 1.7
/// times the CPU and `sigma pack -T 2` 70-160 MB more memory).
pub const MAX_DEFAULT_PRIMER: usize = 1 << 20;

/// The primer `sigma pack` makes of a file whose records hold `record_bytes` bytes (with
/// `--field`, their text's): a quarter of them ([`PRIMER_SHARE`]), at least
/// [`MIN_DEFAULT_PRIMER`] and at most [`MAX_DEFAULT_PRIMER`].
pub fn default_primer(record_bytes: u64) -> usize {
    (record_bytes / PRIMER_SHARE).clamp(MIN_DEFAULT_PRIMER as u64, MAX_DEFAULT_PRIMER as u64)
        as usize
}

/// How a primer of a given size is sampled: its run size, how many runs, where each starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplePlan {
    primer: usize,
    run: usize,
    runs: usize,
}

impl SamplePlan {
    /// The plan for a primer of `primer` bytes: runs of `primer / SAMPLE_RUNS` bytes, at least
    /// [`MIN_SAMPLE_RUN`] and at most the primer, as many as fill it.
    pub fn new(primer: usize) -> SamplePlan {
        let run = (primer / SAMPLE_RUNS).max(MIN_SAMPLE_RUN).min(primer);
        let runs = if run == 0 { 0 } else { primer.div_ceil(run) };
        SamplePlan { primer, run, runs }
    }

    /// The primer's size in bytes.
    pub fn primer(&self) -> usize {
        self.primer
    }

    /// Bytes of records per run (a run ends at the record that reaches it).
    pub fn run(&self) -> usize {
        self.run
    }

    /// The number of runs (0 for no primer).
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// Where run `k` starts in an input of `len` bytes: `k × len / runs`, rounded down (a run
    /// starts at the first record that begins there or after it).
    pub fn start(&self, k: usize, len: u64) -> u64 {
        (k as u128 * u128::from(len) / self.runs.max(1) as u128) as u64
    }

    /// The most a run covers: four times its size and 64 KiB. A record longer than this ends
    /// its run without being taken (`sigma pack` reads no more of a file per run).
    pub fn budget(&self) -> u64 {
        4 * self.run as u64 + RUN_SLACK
    }
}

/// The runs of records, by index, that sample a primer of `primer` bytes from records of the
/// given `sizes` (bytes each, without the newline the primer adds), by the rule of
/// [`SamplePlan`]: in order, disjoint, not empty, together about `primer` bytes (the last
/// record may go past it; the writer cuts the primer to its size). Records that sum to at
/// most the primer are taken whole, as one run. A record longer than the run's
/// [`budget`](SamplePlan::budget) ends its run without being taken.
///
/// ```
/// use sigmalang::archive::sample::sample_runs;
/// // 1,000 records of 99 bytes (100 with a newline): a 64 KiB primer is 16 runs of 4 KiB,
/// // 41 records each, starting every 62 or 63 records.
/// let runs = sample_runs(&[99; 1000], 64 << 10);
/// assert_eq!(runs.len(), 16);
/// assert_eq!(runs[0], 0..41);
/// assert_eq!(runs[1], 63..104);
/// // Few records: all of them.
/// assert_eq!(sample_runs(&[99; 10], 64 << 10), [0..10]);
/// ```
pub fn sample_runs(sizes: &[usize], primer: usize) -> Vec<Range<usize>> {
    let plan = SamplePlan::new(primer);
    let mut runs = Vec::new();
    if plan.runs() == 0 || sizes.is_empty() {
        return runs;
    }
    // Where each record begins, as if they were lines of a file.
    let mut offsets = Vec::with_capacity(sizes.len() + 1);
    let mut at = 0u64;
    offsets.push(0);
    for &s in sizes {
        at += s as u64 + 1;
        offsets.push(at);
    }
    let len = at;
    let budget = plan.budget();
    let mut total = 0;
    // Where the previous run ended (an index into `sizes`): a run starts no earlier.
    let mut end = 0;
    for k in 0..plan.runs() {
        if total >= primer {
            break;
        }
        let at = plan.start(k, len);
        let start = if at <= offsets[end] {
            end
        } else {
            // The first record that begins at or after `at`.
            offsets.partition_point(|&o| o < at)
        };
        let mut i = start;
        let mut got = 0;
        while got < plan.run() && total < primer && i < sizes.len() {
            let bytes = sizes[i] + 1;
            if bytes as u64 > budget {
                break;
            }
            got += bytes;
            total += bytes;
            i += 1;
        }
        if i > start {
            runs.push(start..i);
        }
        end = i;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(runs: &[Range<usize>], sizes: &[usize]) -> usize {
        runs.iter()
            .flat_map(|r| r.clone())
            .map(|i| sizes[i] + 1)
            .sum()
    }

    #[test]
    fn plan_sizes() {
        assert_eq!(SamplePlan::new(64 << 10).run(), MIN_SAMPLE_RUN);
        assert_eq!(SamplePlan::new(64 << 10).runs(), 16);
        assert_eq!(SamplePlan::new(1 << 20).run(), 32 << 10);
        assert_eq!(SamplePlan::new(1 << 20).runs(), 32);
        assert_eq!(SamplePlan::new(1000).run(), 1000);
        assert_eq!(SamplePlan::new(1000).runs(), 1);
        assert_eq!(SamplePlan::new(0).runs(), 0);
        let p = SamplePlan::new(256 << 10);
        assert_eq!((p.run(), p.runs(), p.primer()), (8 << 10, 32, 256 << 10));
        assert_eq!(p.start(0, 3200), 0);
        assert_eq!(p.start(31, 3200), 3100);
        assert_eq!(p.start(31, u64::MAX), u64::MAX / 32 * 31 + 30);
        assert_eq!(p.budget(), 4 * 8192 + 65536);
        assert_eq!(default_primer(0), 64 << 10);
        assert_eq!(default_primer(1 << 20), 256 << 10);
        assert_eq!(default_primer(100 << 20), 1 << 20);
    }

    #[test]
    fn runs_are_spread_over_the_records() {
        // 20,000 records of 10 to 49 bytes.
        let sizes: Vec<usize> = (0..20_000).map(|i| 10 + i % 40).collect();
        let primer = 64 << 10;
        let runs = sample_runs(&sizes, primer);
        assert_eq!(runs.len(), 16);
        let total = taken(&runs, &sizes);
        assert!(total >= primer && total < primer + 50, "{total}");
        assert_eq!(runs[0].start, 0);
        // In order, apart, each about a run (the last one ends with the primer, the runs
        // before it having gone past theirs by a part of a record), the last from 15/16 of the
        // way.
        assert!(runs.windows(2).all(|w| w[0].end < w[1].start));
        for (k, r) in runs.iter().enumerate() {
            let b = taken(std::slice::from_ref(r), &sizes);
            let least = if k == 15 { 4096 - 15 * 50 } else { 4096 };
            assert!((least..4096 + 50).contains(&b), "{k} {b}");
        }
        assert!(runs[15].start > 20_000 * 15 / 16 - 10, "{:?}", runs[15]);
        assert!(runs[15].start <= 20_000 * 15 / 16 + 10, "{:?}", runs[15]);
        // Each run starts at the first record at or after its point.
        let offsets: Vec<u64> = std::iter::once(0)
            .chain(sizes.iter().scan(0u64, |a, &s| {
                *a += s as u64 + 1;
                Some(*a)
            }))
            .collect();
        let len = *offsets.last().unwrap();
        let plan = SamplePlan::new(primer);
        for (k, r) in runs.iter().enumerate() {
            let at = plan.start(k, len);
            assert!(offsets[r.start] >= at);
            assert!(r.start == 0 || offsets[r.start - 1] < at);
        }
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one run of records, not the records
    fn small_empty_and_long() {
        assert!(sample_runs(&[], 64 << 10).is_empty());
        assert!(sample_runs(&[5; 100], 0).is_empty());
        // No more than the primer: every record, once, in one run.
        assert_eq!(sample_runs(&[5; 100], 64 << 10), [0..100]);
        assert_eq!(sample_runs(&[0; 3], 64 << 10), [0..3]);
        // Somewhat more than the primer: runs that meet (start where the last one ended)
        // are still apart in the list, and cover a prefix.
        let sizes = vec![99; 700]; // 70,000 bytes
        let runs = sample_runs(&sizes, 64 << 10);
        assert!(runs.windows(2).all(|w| w[0].end <= w[1].start));
        assert!(taken(&runs, &sizes) >= 64 << 10);
        // A record longer than a run's budget is never taken; runs after it go on.
        let mut sizes = vec![20; 3000];
        sizes.push(1 << 20);
        sizes.extend(vec![20; 3000]);
        let runs = sample_runs(&sizes, 64 << 10);
        assert!(runs.iter().all(|r| !r.contains(&3000)));
        assert!(runs.iter().any(|r| r.start > 3000));
        // A huge primer over few records: all of them but the long one.
        let runs = sample_runs(&[10, 300_000, 10, 10], 1 << 20);
        assert_eq!(runs, [0..1, 2..4]);
    }
}
