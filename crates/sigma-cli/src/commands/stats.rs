//! `sigma stats`: encodes a JSONL file as `pack` does, writes nothing, and reports what the
//! encoder did.
//!
//! Every record is coded in its context (`--context-key`) with `pack`'s default context
//! options, but one at a time on this thread (batches of one record, one worker), so the time
//! measured around each record is that record's. The archive goes to [`io::sink`], through a
//! counter of its bytes. Because `pack` codes batches of
//! [`PACK_BATCH_RECORDS`], in which the Σ-bank offers only
//! the roots of batches at least two before, its archives can differ slightly in size from the
//! one measured here.
//!
//! The report: records, input (text) bytes, archive bytes and ratio; the encode time per record
//! (mean, p50, p99, max); the counters of the encoder's buffer pool and of the writer's frame
//! pool; and, from the counting global allocator ([`crate::alloc`]), the heap allocations per
//! record in steady state (allocation calls made while coding the second half of the records,
//! divided by their number) and the peak of live heap bytes, over the whole run (codebook
//! loading included) and while the records were coded.
//!
//! With `--cost`, a second pass (after the measured one, so it changes none of its figures)
//! packs the records as `pack --field` does (its batches, in memory), then codes each record
//! again with the cost trace against the frames the archive gives it, and reports where the
//! bits go: per kind of span, per class and per JSON field of the records (see
//! [`super::cost`]). It reads the file twice and holds its records and archive in memory.

use std::io::{self, Cursor, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sigmalang::EncoderStats;
use sigmalang::FramePoolStats;
use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter, Encoder};

use super::archive::{check_field, metadata, PACK_BATCH_BYTES, PACK_BATCH_RECORDS};
use super::cost::Totals;
use super::encoder_config;
use crate::alloc;
use crate::error::CliError;
use crate::format::{mb_per_s, ratio};
use crate::io::{Input, STDOUT_LABEL};
use crate::jsonl::open_records;
use crate::model::Model;
use crate::StatsArgs;

/// How often (in records) the progress bar's record count is updated.
const COUNT_EVERY: usize = 64;

/// Runs `sigma stats`.
pub fn run(args: &StatsArgs) -> Result<(), CliError> {
    check_field(&args.field)?;
    let input = Input::from_arg(Some(&args.file));
    let model = Model::load_or_builtin(args.model.as_deref())?;
    let in_label = input.label();
    let key = args
        .context_key
        .as_deref()
        .map(|k| crate::jsonl::FieldPath::parse(k, "--context-key"))
        .transpose()?;
    let (mut lines, bar) = open_records(&input, &args.field, key, args.quiet)?;

    let opts = ArchiveOptions::default()
        .batch_records(1)
        .threads(1)
        .coder(encoder_config(args.no_pool));
    let mut archive = ArchiveWriter::with_options(
        ByteCounter::new(io::sink()),
        model.codebook.clone(),
        metadata(&args.field).as_bytes(),
        opts,
    )
    .map_err(|e| CliError::new("stats", e))?;
    // The peak so far is the codebook's loading; the encoding's own peak is measured apart.
    let peak_before = alloc::reset_peak();
    let live_before = alloc::snapshot().live_bytes;
    let mut samples: Vec<Sample> = Vec::new();
    while let Some(text) = lines.next_text()? {
        let key = lines.key().map(str::as_bytes);
        // Nothing but the record's coding happens between the two readings (the allocation
        // counter is process-wide, and this command runs no other thread).
        let allocations = alloc::allocations();
        let started = Instant::now();
        let added = archive.add_in_group(key, text.as_bytes());
        let elapsed = started.elapsed();
        let allocations = alloc::allocations() - allocations;
        added.map_err(|e| CliError::new(lines.position(), e))?;
        samples.push(Sample {
            elapsed,
            allocations,
        });
        if samples.len() % COUNT_EVERY == 0 {
            bar.set_message(samples.len().to_string());
        }
    }
    drop(lines); // clears the progress bar
    let encoder = archive.stats();
    let frames = archive.frame_stats();
    let bytes_in = archive.bytes_in();
    let sink = archive.finish().map_err(|e| CliError::new("stats", e))?;

    let report = Report {
        records: samples.len() as u64,
        file: in_label,
        codebook: model.describe(),
        context_key: args.context_key.clone(),
        pool_enabled: !args.no_pool,
        bytes_in,
        bytes_out: sink.written,
        times: Times::of(&samples),
        encoder,
        frames,
        heap: Heap::of(
            &samples,
            live_before,
            peak_before,
            alloc::snapshot().peak_bytes,
        ),
    };
    let cost = if args.cost {
        Some(cost_pass(args, &model)?)
    } else {
        None
    };
    let text = if args.json {
        let mut v = report.to_json();
        if let Some((totals, differing)) = &cost {
            v["cost"] = totals.to_json();
            v["cost"]["records_coded_differently"] = (*differing).into();
        }
        v.to_string()
    } else {
        let mut text = report.to_text();
        if let Some((totals, differing)) = &cost {
            text.push_str(&format!(
                "\n\nwhere the bits go: {} records, {} bytes -> {} bytes of payloads, {:.0} bits \
                 ({:.0} in spans, the rest headers and ends of code)",
                totals.records,
                totals.bytes,
                totals.coded_bytes,
                totals.total_bits(),
                totals.span_bits
            ));
            if *differing > 0 {
                text.push_str(&format!(
                    "\n{differing} records coded to another length than in the archive"
                ));
            }
            text.push('\n');
            text.push_str(totals.tables(20).trim_end());
        }
        text
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::write(STDOUT_LABEL, e, true))
}

/// The cost pass of `--cost`: packs the file's records in memory as `pack` would, codes each
/// again with the cost trace against its frames, and adds up its spans. Also returns how many
/// records the traced coding gave another payload length than the archive (none, unless the
/// trace and the archive disagree on the frames).
fn cost_pass(args: &StatsArgs, model: &Model) -> Result<(Totals, u64), CliError> {
    let input = Input::from_arg(Some(&args.file));
    if input.path().is_none() {
        return Err(CliError::new(
            input.label(),
            "--cost reads the input twice: give a file, not standard input",
        ));
    }
    let key = args
        .context_key
        .as_deref()
        .map(|k| crate::jsonl::FieldPath::parse(k, "--context-key"))
        .transpose()?;
    let (mut lines, bar) = open_records(&input, &args.field, key, true)?;
    drop(bar);
    let opts = ArchiveOptions::default()
        .batch_records(PACK_BATCH_RECORDS)
        .batch_bytes(PACK_BATCH_BYTES)
        .threads(1)
        .coder(encoder_config(args.no_pool));
    let err = |e| CliError::new("stats --cost", e);
    let mut archive = ArchiveWriter::with_options(
        Cursor::new(Vec::new()),
        model.codebook.clone(),
        metadata(&args.field).as_bytes(),
        opts,
    )
    .map_err(err)?;
    let mut records = Vec::new();
    while let Some(text) = lines.next_text()? {
        let key = lines.key().map(str::as_bytes);
        archive
            .add_in_group(key, text.as_bytes())
            .map_err(|e| CliError::new(lines.position(), e))?;
        records.push(text.into_bytes());
    }
    drop(lines);
    let bytes = archive.finish().map_err(err)?.into_inner();
    let mut reader = ArchiveReader::open(Cursor::new(bytes)).map_err(err)?;
    let mut encoder = Encoder::new(model.codebook.clone());
    let mut totals = Totals::default();
    let mut differing = 0;
    let mut payload = Vec::new();
    for (n, record) in records.iter().enumerate() {
        let n = n as u64;
        if reader
            .info(n)
            .is_some_and(|i| i.dependency == sigmalang::Dependency::Copy)
        {
            // A copy of an earlier record (FORMAT.md §5.8): no payload, nothing coded.
            continue;
        }
        let ids = reader.frames_of(n).map_err(err)?;
        let frames: Vec<&[u8]> = ids
            .iter()
            .map(|&f| records[f as usize].as_slice())
            .collect();
        payload.clear();
        let mut trace = encoder
            .encode_traced(&frames, record, &mut payload)
            .map_err(err)?;
        trace.set_references(reader.references(n).len());
        if reader.payload_len(n) != Some(stored_len(reader.archive(), &payload)) {
            differing += 1;
        }
        let spans = sigmalang::cost::spans(&sigmalang::parse(record), &trace);
        totals.add(&trace, &spans);
    }
    Ok((totals, differing))
}

/// A writer that counts the bytes written through it.
struct ByteCounter<W: Write> {
    inner: W,
    written: u64,
}

impl<W: Write> ByteCounter<W> {
    fn new(inner: W) -> ByteCounter<W> {
        ByteCounter { inner, written: 0 }
    }
}

impl<W: Write> Write for ByteCounter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What coding one record took.
#[derive(Clone, Copy, Debug)]
struct Sample {
    elapsed: Duration,
    allocations: u64,
}

/// Encode times per record.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Times {
    total: Duration,
    mean: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Times {
    /// The times of `samples` (all zero for none).
    fn of(samples: &[Sample]) -> Times {
        let mut sorted: Vec<Duration> = samples.iter().map(|s| s.elapsed).collect();
        sorted.sort_unstable();
        let total: Duration = sorted.iter().sum();
        let mean = u32::try_from(sorted.len())
            .ok()
            .and_then(|n| total.checked_div(n))
            .unwrap_or_default();
        Times {
            total,
            mean,
            p50: percentile(&sorted, 50),
            p99: percentile(&sorted, 99),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// The `p`th percentile of `sorted` by nearest rank (zero for no values).
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// What the heap did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Heap {
    /// Records of the second half (the steady state).
    steady_records: u64,
    /// Allocation calls made while coding them.
    steady_allocations: u64,
    /// Live heap bytes before the first record (codebook loaded, writer set up).
    live_before: usize,
    /// The most heap bytes live at once while the records were coded.
    encoding_peak: usize,
    /// The most heap bytes live at once over the whole run (codebook loading included).
    peak: usize,
}

impl Heap {
    /// The heap figures of `samples`, given the live bytes before the first record, the peak
    /// before it and the peak since.
    fn of(samples: &[Sample], live_before: usize, peak_before: usize, peak_since: usize) -> Heap {
        let steady = &samples[samples.len() / 2..];
        Heap {
            steady_records: steady.len() as u64,
            steady_allocations: steady.iter().map(|s| s.allocations).sum(),
            live_before,
            encoding_peak: peak_since,
            peak: peak_before.max(peak_since),
        }
    }

    /// Allocations per record in steady state; `None` with no records.
    fn per_record(&self) -> Option<f64> {
        (self.steady_records > 0)
            .then(|| self.steady_allocations as f64 / self.steady_records as f64)
    }
}

/// Everything `sigma stats` reports.
struct Report {
    /// Records added (copies of earlier records among them, FORMAT.md §5.8, which are not
    /// coded: the encoder counts the others).
    records: u64,
    file: String,
    codebook: String,
    context_key: Option<String>,
    pool_enabled: bool,
    bytes_in: u64,
    bytes_out: u64,
    times: Times,
    encoder: EncoderStats,
    frames: FramePoolStats,
    heap: Heap,
}

impl Report {
    /// The report as one JSON object (times in nanoseconds).
    fn to_json(&self) -> Value {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let p = &self.encoder.pool;
        json!({
            "file": self.file,
            "codebook": self.codebook,
            "context_key": self.context_key,
            "pool_enabled": self.pool_enabled,
            "records": self.records,
            "copied_records": self.records.saturating_sub(self.encoder.records),
            "stored_records": self.encoder.stored,
            "input_bytes": self.bytes_in,
            "payload_bytes": self.encoder.bytes_out,
            "output_bytes": self.bytes_out,
            "ratio": ratio(self.bytes_in, self.bytes_out),
            "encode_ns": {
                "total": ns(self.times.total),
                "mean": ns(self.times.mean),
                "p50": ns(self.times.p50),
                "p99": ns(self.times.p99),
                "max": ns(self.times.max),
            },
            "encode_mb_per_s": mb_per_s(self.bytes_in, self.times.total),
            "buffer_pool": {
                "pool_size": p.pool_size,
                "buffer_size": p.buffer_size,
                "available_buffers": p.available_buffers,
                "total_acquires": p.total_acquires,
                "overflow_allocations": p.overflow_allocations,
                "overflow_rate": p.overflow_rate,
                "adaptive_resizes": p.adaptive_resizes,
                "dropped_on_release": p.dropped_on_release,
            },
            "frame_pool": {
                "frames_created": self.frames.frames_created,
                "frames_reused": self.frames.frames_reused,
                "available": self.frames.available,
            },
            "heap": {
                "steady_state_records": self.heap.steady_records,
                "steady_state_allocations": self.heap.steady_allocations,
                "allocations_per_record": self.heap.per_record(),
                "live_bytes_before": self.heap.live_before,
                "encoding_peak_bytes": self.heap.encoding_peak,
                "peak_bytes": self.heap.peak,
            },
        })
    }

    /// The report as an aligned table.
    fn to_text(&self) -> String {
        let e = &self.encoder;
        let p = &e.pool;
        let f = &self.frames;
        let h = &self.heap;
        let t = &self.times;
        let context = match &self.context_key {
            Some(key) => format!("contexts keyed by {key:?}"),
            None => "one context".to_string(),
        };
        let per_record = h
            .per_record()
            .map_or_else(|| "-".to_string(), |a| format!("{a:.2}"));
        let rows = [
            (
                "file",
                format!(
                    "{} (codebook {}; {context}; buffer pool {})",
                    self.file,
                    self.codebook,
                    if self.pool_enabled { "on" } else { "off" }
                ),
            ),
            (
                "records",
                format!(
                    "{} ({} stored, {} copies of earlier records)",
                    self.records,
                    e.stored,
                    self.records.saturating_sub(e.records)
                ),
            ),
            ("input bytes", self.bytes_in.to_string()),
            (
                "output bytes",
                format!("{} ({} of payloads)", self.bytes_out, e.bytes_out),
            ),
            (
                "ratio",
                format!("{:.3}", ratio(self.bytes_in, self.bytes_out)),
            ),
            (
                "encode time",
                format!(
                    "p50 {}, p99 {}, mean {}, max {} per record; {:.1} MB/s",
                    duration(t.p50),
                    duration(t.p99),
                    duration(t.mean),
                    duration(t.max),
                    mb_per_s(self.bytes_in, t.total),
                ),
            ),
            (
                "buffer pool",
                format!(
                    "{} acquires, {} overflow allocations ({:.2}%), {} adaptive resizes, \
                     {} dropped on release; size {}, {} free, buffers of {} bytes",
                    p.total_acquires,
                    p.overflow_allocations,
                    p.overflow_rate * 100.0,
                    p.adaptive_resizes,
                    p.dropped_on_release,
                    p.pool_size,
                    p.available_buffers,
                    p.buffer_size,
                ),
            ),
            (
                "frame pool",
                format!(
                    "{} frames created, {} reused, {} free",
                    f.frames_created, f.frames_reused, f.available
                ),
            ),
            (
                "heap",
                format!(
                    "{per_record} allocations per record in steady state ({} in the last {} \
                     records); peak {} live ({} while encoding, {} before the first record)",
                    h.steady_allocations,
                    h.steady_records,
                    bytes(h.peak),
                    bytes(h.encoding_peak),
                    bytes(h.live_before),
                ),
            ),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A byte count for people: bytes, or MB (10^6 bytes) from 1 MB (`--json` has the exact
/// counts).
fn bytes(n: usize) -> String {
    if n < 1_000_000 {
        format!("{n} bytes")
    } else {
        format!("{:.1} MB", n as f64 / 1e6)
    }
}

/// A duration for people: nanoseconds, microseconds or milliseconds.
fn duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.2} ms", ns as f64 / 1e6)
    }
}

/// The bytes `payload` (a record as the encoder writes it) takes in `archive`: all of it, or
/// without its header `H` when the archive's index is coded (FORMAT.md §5.1), which holds it.
pub fn stored_len(archive: &sigmalang::Archive, payload: &[u8]) -> u64 {
    let header = if archive.coded_index() {
        sigmalang::internals::record::read_header(payload).map_or(0, |h| h.body_offset)
    } else {
        0
    };
    (payload.len() - header) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(micros: &[u64], allocations: &[u64]) -> Vec<Sample> {
        micros
            .iter()
            .zip(allocations)
            .map(|(&us, &a)| Sample {
                elapsed: Duration::from_micros(us),
                allocations: a,
            })
            .collect()
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let us = Duration::from_micros;
        let sorted: Vec<Duration> = (1..=100).map(us).collect();
        assert_eq!(percentile(&sorted, 50), us(50));
        assert_eq!(percentile(&sorted, 99), us(99));
        assert_eq!(percentile(&sorted[..1], 99), us(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
        let t = Times::of(&samples(&[4, 1, 3, 2], &[0; 4]));
        assert_eq!((t.p50, t.p99, t.max), (us(2), us(4), us(4)));
        assert_eq!((t.total, t.mean), (us(10), Duration::from_nanos(2500)));
        assert_eq!(Times::of(&[]), Times::default());
    }

    #[test]
    fn steady_state_is_the_second_half() {
        let h = Heap::of(&samples(&[1; 5], &[9, 9, 1, 0, 0]), 10, 30, 20);
        assert_eq!((h.steady_records, h.steady_allocations), (3, 1));
        assert_eq!(h.per_record(), Some(1.0 / 3.0));
        assert_eq!((h.encoding_peak, h.peak), (20, 30));
        assert_eq!(Heap::of(&[], 0, 0, 0).per_record(), None);
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(duration(Duration::from_nanos(999)), "999 ns");
        assert_eq!(duration(Duration::from_nanos(12_345)), "12.3 µs");
        assert_eq!(duration(Duration::from_micros(1_500)), "1.50 ms");
        assert_eq!(bytes(999_999), "999999 bytes");
        assert_eq!(bytes(2_500_000), "2.5 MB");
    }
}
