//! `sigma-bench anchors`: every anchor beside SigmaLang on the same bytes, in one run
//! (README "Anchors, one run").
//!
//! For each file, two groups of columns:
//!
//! * **text**: the `text` field of every line. Its bytes are the *stream*: each text followed by
//!   a newline. Whole-file compressors (and `sigma compress`) code the stream; the Parquet text
//!   column and `sigma pack --field text` store the same texts as records. Every column's ratio
//!   is stream bytes / output bytes.
//! * **file**: the whole JSONL file, every field of every line. Whole-file compressors code the
//!   file; Parquet stores every field as a column; `sigma pack` stores every line whole. Ratio is
//!   file bytes / output bytes.
//!
//! Each (file, column) is one task; tasks run on `--jobs` threads, slowest first. Each anchor
//! compresses once (repeated only while under [`MIN_TIME`] of CPU time) and decompresses the
//! same way; its output is compared with the input. Speeds are MB/s of input bytes (10^6
//! bytes a second) on the measuring thread's CPU time, or the `sigma` child's (see
//! `src/packs.rs`).

use crate::codec::Codec;
use crate::columnar::{self, Table};
use crate::measure::{thread_cpu_time, time_passes};
use crate::packs::{self, Pack};
use crate::whole::{BrotliMax, Ppmd, SigmaStream, Xz, ZstdLong, PPMD_MEM, PPMD_ORDER};
use clap::Args;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// An anchor faster than this is repeated until it has used this much CPU time.
const MIN_TIME: Duration = Duration::from_millis(250);

/// The development files, in table order.
const DEV_FILES: &[&str] = &[
    "chat-dev.jsonl",
    "histories-dev.jsonl",
    "code-dev.jsonl",
    "short-dev.jsonl",
];

/// The files `scripts/extra_files.py` builds from the machine, in table order.
const EXTRA_FILES: &[&str] = &["python-stdlib.jsonl", "man-pages.jsonl", "aws-json.jsonl"];

/// Options of `sigma-bench anchors`.
#[derive(Args, Debug, Clone)]
pub struct AnchorArgs {
    /// Corpus folder holding the dev files [default: shared/corpus beside the workspace]
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Folder of the extra files; those missing are built there by scripts/extra_files.py
    /// [default: TMPDIR/sigma-bench-files]
    #[arg(long, value_name = "DIR")]
    pub extra: Option<PathBuf>,
    /// Measure these JSONL files instead of the dev and extra files
    #[arg(long, value_name = "FILE,...", value_delimiter = ',')]
    pub files: Vec<PathBuf>,
    /// The `sigma` binary [default: `sigma` beside this executable, i.e. target/release/sigma]
    #[arg(long, value_name = "PATH")]
    pub sigma: Option<PathBuf>,
    /// Add a `sigma pack` column: NAME=ARGS (ARGS are added to `sigma pack`; `{key}` is the key
    /// field); repeatable
    #[arg(long = "pack", value_name = "NAME=ARGS")]
    pub packs: Vec<String>,
    /// Measure only the --pack columns, not the built-in pack configurations
    #[arg(long)]
    pub no_default_packs: bool,
    /// The conversation key field for keyed pack columns
    #[arg(long, value_name = "FIELD", default_value = "conversation")]
    pub key: String,
    /// Leave out these columns (names as in the table headers, e.g. "PPMd o16,brotli-11 w24")
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// PPMd's model order (2-64)
    #[arg(long, value_name = "N", default_value_t = PPMD_ORDER,
          value_parser = clap::value_parser!(u32).range(2..=64))]
    pub ppmd_order: u32,
    /// PPMd's model memory in MiB (1-4095)
    #[arg(long, value_name = "MIB", default_value_t = PPMD_MEM >> 20,
          value_parser = clap::value_parser!(u32).range(1..=4095))]
    pub ppmd_mem: u32,
    /// Also write every measurement to FILE as JSON
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Measure on N threads, each task on one
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub jobs: usize,
}

/// Which bytes a column codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// The text fields (the stream).
    Text,
    /// The whole file.
    File,
}

/// How a column's data is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Record,
    Page,
    Whole,
}

/// What a column is.
#[derive(Debug, Clone)]
enum Kind {
    /// A whole-input codec: which one.
    Whole(WholeCodec),
    /// Parquet with this codec.
    Parquet(columnar::Codec),
    /// A `sigma pack` configuration.
    Pack(Pack),
    /// zstd -19 frames, one per record (each line, or each text), with a dictionary trained
    /// on the file's own records: the per-record anchor (what a database with per-row zstd
    /// compression and a trained dictionary stores).
    ZstdDict,
}

#[derive(Debug, Clone, Copy)]
enum WholeCodec {
    Sigma,
    Xz,
    Zstd,
    Brotli,
    /// PPMd7 at this order with this many bytes of model memory.
    Ppmd(u32, u32),
}

impl WholeCodec {
    fn make(self) -> Result<Box<dyn Codec>, String> {
        Ok(match self {
            WholeCodec::Sigma => Box::new(SigmaStream),
            WholeCodec::Xz => Box::new(Xz),
            WholeCodec::Zstd => Box::new(ZstdLong::new().map_err(|e| format!("zstd: {e}"))?),
            WholeCodec::Brotli => Box::new(BrotliMax),
            WholeCodec::Ppmd(order, mem) => Box::new(Ppmd::new(order, mem)),
        })
    }

    /// Rough CPU seconds per MB, to start the slowest tasks first.
    fn cost(self) -> f64 {
        match self {
            WholeCodec::Sigma => 0.1,
            WholeCodec::Xz => 1.5,
            WholeCodec::Zstd => 1.0,
            WholeCodec::Brotli => 2.5,
            WholeCodec::Ppmd(..) => 0.6,
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    group: Group,
    kind: Kind,
}

impl Column {
    fn access(&self) -> Access {
        match self.kind {
            Kind::Whole(_) => Access::Whole,
            Kind::Parquet(_) => Access::Page,
            Kind::Pack(_) | Kind::ZstdDict => Access::Record,
        }
    }

    fn cost(&self) -> f64 {
        match &self.kind {
            Kind::Whole(c) => c.cost(),
            Kind::Parquet(columnar::Codec::Brotli11) => 2.5,
            Kind::Parquet(columnar::Codec::Zstd19) => 1.0,
            Kind::Pack(_) => 0.2,
            Kind::ZstdDict => 1.0,
        }
    }
}

/// The columns, in table order: SigmaLang first, then the whole-file anchors, then Parquet.
fn columns(packs: &[Pack], skip: &[String], (order, mem): (u32, u32)) -> Vec<Column> {
    let whole = |name: &str, group, codec| Column {
        name: name.to_owned(),
        group,
        kind: Kind::Whole(codec),
    };
    let parquet = |name: &str, group, codec| Column {
        name: name.to_owned(),
        group,
        kind: Kind::Parquet(codec),
    };
    let ppmd = format!("PPMd o{order}");
    let mut out = Vec::new();
    for group in [Group::Text, Group::File] {
        out.push(whole("sigma compress", group, WholeCodec::Sigma));
        for p in packs
            .iter()
            .filter(|p| p.text_only() == (group == Group::Text))
        {
            out.push(Column {
                name: p.name.clone(),
                group,
                kind: Kind::Pack(p.clone()),
            });
        }
        out.push(Column {
            name: "zstd -19 dict".to_owned(),
            group,
            kind: Kind::ZstdDict,
        });
        out.push(whole("xz -9e", group, WholeCodec::Xz));
        out.push(whole("zstd -19 --long", group, WholeCodec::Zstd));
        out.push(whole("brotli-11 w24", group, WholeCodec::Brotli));
        out.push(whole(&ppmd, group, WholeCodec::Ppmd(order, mem)));
        let prefix = if group == Group::Text {
            "Parquet"
        } else {
            "Parquet all"
        };
        out.push(parquet(
            &format!("{prefix} brotli-11"),
            group,
            columnar::Codec::Brotli11,
        ));
        out.push(parquet(
            &format!("{prefix} zstd-19"),
            group,
            columnar::Codec::Zstd19,
        ));
    }
    out.retain(|c| !skip.contains(&c.name));
    out
}

/// One file's data.
struct Input {
    /// Short name (the file stem).
    name: String,
    path: PathBuf,
    /// The whole file.
    file: Vec<u8>,
    /// Each line's `text` field.
    texts: Vec<Vec<u8>>,
    /// Each text followed by a newline.
    stream: Vec<u8>,
    /// Whether the lines have the key field.
    keyed: bool,
}

impl Input {
    fn load(path: &Path, key: &str) -> Result<Input, String> {
        let file = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let texts: Vec<Vec<u8>> = crate::corpus::load(path, 0)?
            .into_iter()
            .map(|r| r.text)
            .collect();
        let mut stream = Vec::with_capacity(file.len());
        for t in &texts {
            stream.extend_from_slice(t);
            stream.push(b'\n');
        }
        let keyed = file
            .split(|&b| b == b'\n')
            .find(|l| !l.is_empty())
            .and_then(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
            .is_some_and(|v| v.get(key).is_some());
        Ok(Input {
            name: path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            path: path.to_owned(),
            file,
            texts,
            stream,
            keyed,
        })
    }

    fn bytes(&self, group: Group) -> &[u8] {
        match group {
            Group::Text => &self.stream,
            Group::File => &self.file,
        }
    }

    fn lines(&self) -> Vec<&[u8]> {
        self.file
            .split(|&b| b == b'\n')
            .filter(|l| !l.trim_ascii().is_empty())
            .collect()
    }

    fn text_refs(&self) -> Vec<&[u8]> {
        self.texts.iter().map(|t| &t[..]).collect()
    }
}

/// What one column gave on one file.
#[derive(Debug, Clone)]
struct Cell {
    input: u64,
    output: u64,
    encode_mb_s: f64,
    decode_mb_s: f64,
}

impl Cell {
    fn ratio(&self) -> f64 {
        self.input as f64 / self.output.max(1) as f64
    }
}

/// CPU time of the calling thread (wall-clock where there is none).
fn cpu_now(start: Instant) -> Duration {
    thread_cpu_time().unwrap_or_else(|| start.elapsed())
}

/// Runs `f` once and returns its result and the CPU time it took; if that was under
/// [`MIN_TIME`], times further runs of `f` until [`MIN_TIME`] and returns their mean.
fn timed<T>(mut f: impl FnMut() -> Result<T, String>) -> Result<(T, Duration), String> {
    let epoch = Instant::now();
    let start = cpu_now(epoch);
    let value = f()?;
    let once = cpu_now(epoch).saturating_sub(start);
    if once >= MIN_TIME {
        return Ok((value, once));
    }
    let mut passes = 0u32;
    let start = cpu_now(epoch);
    time_passes(MIN_TIME, || {
        passes += 1;
        f().map(|_| ())
    })?;
    let total = cpu_now(epoch).saturating_sub(start);
    Ok((value, total / passes.max(1)))
}

fn mb_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64().max(1e-9) / 1e6
}

/// Measures `column` on `input`.
fn measure(column: &Column, input: &Input, sigma: &Path, key: &str) -> Result<Cell, String> {
    let data = input.bytes(column.group);
    let fail = |e: String| format!("{} on {}: {e}", column.name, input.name);
    let (output, encode, decode) = match &column.kind {
        Kind::Whole(which) => {
            let mut codec = which.make()?;
            let mut packed = Vec::new();
            let (_, encode) = timed(|| {
                codec
                    .compress(data, &mut packed)
                    .map_err(|e| fail(format!("compression failed: {e}")))
            })?;
            let mut unpacked = Vec::new();
            let (_, decode) = timed(|| {
                codec
                    .decompress(&packed, &mut unpacked)
                    .map_err(|e| fail(format!("decompression failed: {e}")))
            })?;
            if unpacked != data {
                return Err(fail(format!(
                    "decompressed {} bytes differing from the {}-byte input",
                    unpacked.len(),
                    data.len()
                )));
            }
            (packed.len(), encode, decode)
        }
        Kind::Parquet(codec) => {
            let table = match column.group {
                Group::Text => Table::text(&input.text_refs()),
                Group::File => columnar::shred(&input.lines()).map_err(fail)?,
            };
            let (bytes, encode) = timed(|| {
                columnar::write(&table, *codec).map_err(|e| fail(format!("writing: {e}")))
            })?;
            let (back, decode) = timed(|| {
                columnar::read(bytes.clone(), &table).map_err(|e| fail(format!("reading: {e}")))
            })?;
            if back != table {
                return Err(fail(format!(
                    "read back {} rows differing from the {} written",
                    columnar::rows(&back),
                    columnar::rows(&table)
                )));
            }
            (bytes.len(), encode, decode)
        }
        Kind::Pack(pack) => {
            let p = packs::measure(sigma, pack, key, &input.path, &input.text_refs())?;
            (p.bytes as usize, p.encode, p.decode)
        }
        Kind::ZstdDict => {
            let records = match column.group {
                Group::Text => input.text_refs(),
                Group::File => input.lines(),
            };
            per_record_zstd(&records).map_err(fail)?
        }
    };
    Ok(Cell {
        input: data.len() as u64,
        output: output as u64,
        encode_mb_s: mb_s(data.len(), encode),
        decode_mb_s: mb_s(data.len(), decode),
    })
}

/// The largest dictionary the per-record zstd anchor trains (zstd's own default for `--train`).
const ZSTD_DICT_SIZE: usize = 112_640;
/// The most bytes of records the dictionary is trained on (the first ones).
const ZSTD_DICT_SAMPLES: usize = 16 << 20;

/// Codes each of `records` alone with zstd -19 and a dictionary trained on the records
/// themselves (the anchor's best case: it has seen the data it is measured on); returns the
/// bytes (frames, each with its length as a varint, plus the dictionary) and the encode
/// (training included) and decode times. Records too few to train a dictionary on are coded
/// without one.
fn per_record_zstd(records: &[&[u8]]) -> Result<(usize, Duration, Duration), String> {
    let mut coded = Vec::with_capacity(records.len());
    let ((), encode) = timed(|| {
        // `timed` may run this more than once: each run starts afresh.
        coded.clear();
        let mut taken = 0;
        let samples: Vec<&[u8]> = records
            .iter()
            .copied()
            .take_while(|r| {
                taken += r.len();
                taken <= ZSTD_DICT_SAMPLES
            })
            .collect();
        // A dictionary larger than a twentieth of its samples costs a small file more than it
        // saves (zstd's guide: samples about 100 times the dictionary).
        let size = ZSTD_DICT_SIZE.min(taken.min(ZSTD_DICT_SAMPLES) / 20);
        let dictionary = zstd::dict::from_samples(&samples, size).unwrap_or_default();
        let mut codec = crate::codec::Zstd::new("zstd -19 dict", 19, &dictionary)
            .map_err(|e| format!("zstd: {e}"))?;
        coded.push(dictionary);
        for r in records {
            let mut out = Vec::new();
            codec.compress(r, &mut out).map_err(|e| e.to_string())?;
            coded.push(out);
        }
        Ok(())
    })?;
    let ((), decode) = timed(|| {
        let mut codec = crate::codec::Zstd::new("zstd -19 dict", 19, &coded[0])
            .map_err(|e| format!("zstd: {e}"))?;
        let mut out = Vec::new();
        for (n, (frame, want)) in coded[1..].iter().zip(records).enumerate() {
            codec
                .decompress(frame, &mut out)
                .map_err(|e| e.to_string())?;
            if out != *want {
                return Err(format!("record {n} decoded differently"));
            }
        }
        Ok(())
    })?;
    Ok((coded.iter().map(Vec::len).sum(), encode, decode))
}

/// A status line on stderr.
fn progress(message: &str) {
    eprintln!("sigma-bench: {message}");
}

/// The files to measure: `--files`, or the dev files and the extra files (building those
/// missing); absent ones are skipped with a message.
fn files(args: &AnchorArgs) -> Vec<PathBuf> {
    if !args.files.is_empty() {
        return args.files.clone();
    }
    let default_corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let corpus = args.corpus.clone().unwrap_or(default_corpus);
    let corpus = corpus.canonicalize().unwrap_or(corpus);
    let extra = args
        .extra
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("sigma-bench-files"));
    if EXTRA_FILES.iter().any(|f| !extra.join(f).is_file()) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/extra_files.py");
        progress(&format!(
            "building the extra files: python3 {} {}",
            script.display(),
            extra.display()
        ));
        match std::process::Command::new("python3")
            .arg(&script)
            .arg(&extra)
            .status()
        {
            Ok(s) if s.success() => {}
            Ok(s) => progress(&format!("{} exited with {s}", script.display())),
            Err(e) => progress(&format!("cannot run python3: {e}")),
        }
    }
    let mut out = Vec::new();
    for path in DEV_FILES
        .iter()
        .map(|f| corpus.join(f))
        .chain(EXTRA_FILES.iter().map(|f| extra.join(f)))
    {
        if path.is_file() {
            out.push(path);
        } else {
            progress(&format!("{}: not found, skipped", path.display()));
        }
    }
    out
}

/// The `sigma` binary: `--sigma`, or `sigma` beside this executable.
fn sigma_binary(args: &AnchorArgs) -> Result<PathBuf, String> {
    if let Some(path) = &args.sigma {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let path = exe.with_file_name("sigma");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release -p sigma-cli) or pass --sigma PATH",
            path.display()
        ))
    }
}

fn ratio_cell(cell: Option<&Result<Cell, String>>) -> String {
    match cell {
        None => "-".to_owned(),
        Some(Ok(c)) => format!("{:.2}x", c.ratio()),
        Some(Err(_)) => "FAILED".to_owned(),
    }
}

fn speed_cell(cell: Option<&Result<Cell, String>>) -> String {
    match cell {
        None => "-".to_owned(),
        Some(Ok(c)) => format!("{:.1} / {:.1}", c.encode_mb_s, c.decode_mb_s),
        Some(Err(_)) => "FAILED".to_owned(),
    }
}

type Results = HashMap<(usize, usize), Result<Cell, String>>;

/// The Markdown tables of one group: ratios, then speeds.
fn tables(group: Group, columns: &[Column], inputs: &[Input], results: &Results) -> String {
    let cols: Vec<(usize, &Column)> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.group == group)
        .collect();
    let (short, what, bytes) = match group {
        Group::Text => (
            "text",
            "the `text` field of every line (stream: each text and a newline)",
            "stream bytes",
        ),
        Group::File => ("file", "the whole JSONL file, every field", "file bytes"),
    };
    let header = |first: &str| {
        let mut h = format!("| file | {first} |");
        let mut rule = String::from("| --- | ---: |");
        for (_, c) in &cols {
            h += &format!(" {} |", c.name);
            rule += " ---: |";
        }
        format!("{h}\n{rule}\n")
    };
    let mut out = format!("**Ratios, {short}**: {what}; ratio = {bytes} / output bytes\n\n");
    out += &header(bytes);
    for (f, input) in inputs.iter().enumerate() {
        out += &format!(
            "| {} | {} |",
            input.name,
            crate::thousands(input.bytes(group).len() as u64)
        );
        for (c, _) in &cols {
            out += &format!(" {} |", ratio_cell(results.get(&(f, *c))));
        }
        out += "\n";
    }
    let access: Vec<String> = [
        (Access::Record, "record access"),
        (Access::Page, "page access"),
        (Access::Whole, "whole-file, no random access"),
    ]
    .iter()
    .filter_map(|(a, what)| {
        let names: Vec<String> = cols
            .iter()
            .filter(|(_, c)| c.access() == *a)
            .map(|(_, c)| format!("`{}`", c.name))
            .collect();
        (!names.is_empty()).then(|| format!("{what}: {}", names.join(", ")))
    })
    .collect();
    out += &format!("\n{}\n\n", access.join("; "));
    out += &format!("**Speeds, {short}**: encode / decode MB/s of {bytes}, one thread\n\n");
    out += &header("MB");
    for (f, input) in inputs.iter().enumerate() {
        out += &format!(
            "| {} | {:.1} |",
            input.name,
            input.bytes(group).len() as f64 / 1e6
        );
        for (c, _) in &cols {
            out += &format!(" {} |", speed_cell(results.get(&(f, *c))));
        }
        out += "\n";
    }
    out
}

/// Every measurement as one JSON object.
fn to_json(columns: &[Column], inputs: &[Input], results: &Results) -> serde_json::Value {
    let files: Vec<_> = inputs
        .iter()
        .map(|i| {
            serde_json::json!({
                "name": i.name,
                "path": i.path.display().to_string(),
                "lines": i.texts.len(),
                "stream_bytes": i.stream.len(),
                "file_bytes": i.file.len(),
            })
        })
        .collect();
    let mut cells = Vec::new();
    for (f, input) in inputs.iter().enumerate() {
        for (c, column) in columns.iter().enumerate() {
            let Some(result) = results.get(&(f, c)) else {
                continue;
            };
            let mut cell = serde_json::json!({
                "file": input.name,
                "column": column.name,
                "group": match column.group { Group::Text => "text", Group::File => "file" },
                "access": match column.access() {
                    Access::Record => "record",
                    Access::Page => "page",
                    Access::Whole => "whole",
                },
            });
            match result {
                Ok(r) => {
                    cell["input_bytes"] = r.input.into();
                    cell["output_bytes"] = r.output.into();
                    cell["ratio"] = r.ratio().into();
                    cell["encode_mb_s"] = r.encode_mb_s.into();
                    cell["decode_mb_s"] = r.decode_mb_s.into();
                }
                Err(e) => cell["error"] = e.clone().into(),
            }
            cells.push(cell);
        }
    }
    serde_json::json!({ "files": files, "cells": cells })
}

/// CPU time of this process and its waited-for children (the `sigma` runs).
fn process_cpu_time() -> Duration {
    let of = |who| {
        // SAFETY: `rusage` is plain data that getrusage fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a local for the duration of the call.
        if unsafe { libc::getrusage(who, &mut usage) } != 0 {
            return Duration::ZERO;
        }
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        time(usage.ru_utime) + time(usage.ru_stime)
    };
    of(libc::RUSAGE_SELF) + of(libc::RUSAGE_CHILDREN)
}

/// Runs the anchors: prints the tables; fails if any column failed on any file.
pub fn run(args: &AnchorArgs) -> Result<(), String> {
    let start = Instant::now();
    let mut pack_list = if args.no_default_packs {
        Vec::new()
    } else {
        packs::defaults()
    };
    for spec in &args.packs {
        pack_list.push(Pack::parse(spec)?);
    }
    let columns = columns(
        &pack_list,
        &args.skip,
        (args.ppmd_order, args.ppmd_mem << 20),
    );
    let sigma = if columns.iter().any(|c| matches!(c.kind, Kind::Pack(_))) {
        sigma_binary(args)?
    } else {
        PathBuf::new()
    };
    let mut inputs = Vec::new();
    for path in files(args) {
        let input = Input::load(&path, &args.key)?;
        progress(&format!(
            "{}: {} lines, {} bytes, {} text bytes{}",
            input.name,
            input.texts.len(),
            input.file.len(),
            input.stream.len(),
            if input.keyed {
                format!(", keyed by {}", args.key)
            } else {
                String::new()
            }
        ));
        inputs.push(input);
    }
    if inputs.is_empty() {
        return Err("no file to measure".to_owned());
    }

    let mut tasks: Vec<(usize, usize)> = Vec::new();
    for (f, input) in inputs.iter().enumerate() {
        for (c, column) in columns.iter().enumerate() {
            let keyed = matches!(&column.kind, Kind::Pack(p) if p.keyed());
            if !keyed || input.keyed {
                tasks.push((f, c));
            }
        }
    }
    let cost = |&(f, c): &(usize, usize)| {
        columns[c].cost() * inputs[f].bytes(columns[c].group).len() as f64
    };
    // Cheapest last, so `pop` takes the most expensive first.
    tasks.sort_by(|a, b| cost(a).total_cmp(&cost(b)));
    let total = tasks.len();
    let queue = Mutex::new(tasks);
    let results: Mutex<Results> = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(|| loop {
                let Some((f, c)) = queue.lock().expect("queue").pop() else {
                    break;
                };
                let began = Instant::now();
                let result = measure(&columns[c], &inputs[f], &sigma, &args.key);
                let done = {
                    let mut r = results.lock().expect("results");
                    r.insert((f, c), result.clone());
                    r.len()
                };
                match result {
                    Ok(cell) => progress(&format!(
                        "[{done}/{total}] {} / {}: {:.2}x, {:.1} / {:.1} MB/s ({:.1} s)",
                        inputs[f].name,
                        columns[c].name,
                        cell.ratio(),
                        cell.encode_mb_s,
                        cell.decode_mb_s,
                        began.elapsed().as_secs_f64()
                    )),
                    Err(e) => progress(&format!("[{done}/{total}] FAILED: {e}")),
                }
            });
        }
    });
    let results = results.into_inner().expect("results");
    let _ = std::fs::remove_dir(packs::scratch());

    println!(
        "sigma-bench anchors: {} files, {total} measurements in {:.0} s ({:.0} s of CPU time) \
         on {} threads; every output decoded and compared with its input; MB/s = 10^6 input \
         bytes a second of one thread's CPU time (`sigma`: the child's, `-T 1`)\n",
        inputs.len(),
        start.elapsed().as_secs_f64(),
        process_cpu_time().as_secs_f64(),
        args.jobs.max(1)
    );
    for group in [Group::Text, Group::File] {
        println!("{}", tables(group, &columns, &inputs, &results));
    }
    if let Some(path) = &args.json {
        let text = to_json(&columns, &inputs, &results).to_string();
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let failures: Vec<&String> = results.values().filter_map(|r| r.as_ref().err()).collect();
    if failures.is_empty() {
        Ok(())
    } else {
        for f in &failures {
            println!("FAILED: {f}");
        }
        Err(format!("{} measurements failed", failures.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_the_pack_list() {
        let mut packs = packs::defaults();
        packs.push(Pack::new("pack, block", "--block 1MiB"));
        let cols = columns(&packs, &["PPMd o16".to_owned()], (16, 1 << 20));
        let names = |g| {
            cols.iter()
                .filter(|c| c.group == g)
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Group::Text),
            [
                "sigma compress",
                "pack --field text",
                "pack --field text (keyed)",
                "zstd -19 dict",
                "xz -9e",
                "zstd -19 --long",
                "brotli-11 w24",
                "Parquet brotli-11",
                "Parquet zstd-19"
            ]
        );
        assert!(names(Group::File).contains(&"pack, block"));
        assert!(names(Group::File).contains(&"Parquet all zstd-19"));
    }

    #[test]
    fn measures_whole_and_parquet_columns() {
        let dir = std::env::temp_dir().join(format!("sigma-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tiny.jsonl");
        let mut file = String::new();
        for i in 0..200 {
            file += &format!(
                "{{\"id\": {i}, \"conversation\": \"c{}\", \"text\": \"line {i} of the tiny file\"}}\n",
                i % 7
            );
        }
        std::fs::write(&path, &file).unwrap();
        let input = Input::load(&path, "conversation").unwrap();
        assert!(input.keyed);
        assert_eq!(input.texts.len(), 200);
        let cols = columns(&[], &[], (6, 16 << 20));
        let mut results = Results::new();
        for column in &cols {
            let cell = measure(column, &input, Path::new("sigma"), "conversation").unwrap();
            // zstd frames of 25-byte texts, one per record, do not compress: it only has
            // to round-trip (`measure` compared every record).
            if !matches!(column.kind, Kind::ZstdDict) {
                assert!(cell.ratio() > 1.0, "{}: {cell:?}", column.name);
            }
            assert!(cell.encode_mb_s > 0.0 && cell.decode_mb_s > 0.0);
            results.insert((0, results.len()), Ok(cell));
        }
        results.insert((0, 99), Err("broken".to_owned()));
        let json = to_json(&cols, std::slice::from_ref(&input), &results);
        assert_eq!(json["files"][0]["lines"], 200);
        let cells = json["cells"].as_array().unwrap();
        assert_eq!(cells.len(), cols.len());
        assert!(cells
            .iter()
            .filter(|c| c["column"] != "zstd -19 dict")
            .all(|c| c["ratio"].as_f64().unwrap() > 1.0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
