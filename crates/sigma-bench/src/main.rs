//! `sigma-bench`: per-record compression of the development corpus by SigmaLang and by
//! anchor codecs (zstd with and without a trained dictionary, brotli, LZ4, FSST), all in
//! one run on the same records, every record compressed on its own and verified.
//!
//! Run `cargo run --release -p sigma-bench -- --help` for the options; the crate's
//! README.md explains the columns.

mod anchors;
mod archive;
mod codec;
mod columnar;
mod corpus;
mod measure;
mod packs;
mod sigma;
mod whole;

use archive::Access;
use clap::Parser;
use codec::{Brotli, Codec, Fsst, Lz4, Zstd};
use measure::{measure, measure_concat, Row};
use sigma::SigmaCodec;
use sigmalang::Codebook;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The size of the trained zstd dictionary: 110 KiB, zstd's `--maxdict` default.
const DICT_SIZE: usize = 112_640;

/// The most sample bytes zstd's default dictionary trainer (fastCover) accepts on 64-bit
/// targets: it refuses 4 GiB - 1 and more.
const DICT_SAMPLE_CAP: usize = u32::MAX as usize - 1;

/// Each speed is measured over whole passes over the record set lasting at least this.
const MIN_TIME: Duration = Duration::from_millis(500);

/// Codecs of the default mode, on chat messages.
const CHAT_CODECS: &[&str] = &[
    "lz4",
    "fsst",
    "zstd-3",
    "zstd-19",
    "zstd-3-dict",
    "zstd-19-dict",
    "brotli-11",
    "zstd-19-concat",
    "sigma-default",
    "sigma-fast",
    "sigma",
    "sigma-max",
];

/// Codecs of `--histories` mode, on request logs. `sigma-default` and `sigma` code each
/// record on its own; the `sigma-archive` rows pack all records into one archive whose
/// records are coded against their contexts (see `src/archive.rs`).
const HISTORY_CODECS: &[&str] = &[
    "zstd-19",
    "zstd-19-dict",
    "zstd-19-patch-from",
    "zstd-19-concat",
    "sigma-default",
    "sigma",
    archive::PLAIN,
    archive::KEYED,
    archive::INTERLEAVED,
];

/// The most the interleaved keyed archive's ratio may differ from the in-order one's.
const INTERLEAVE_TOLERANCE: f64 = 0.10;

/// The row every other row's ratio is compared with.
const REFERENCE_ROW: &str = "zstd-19-dict";

/// Per-record compression benchmark of SigmaLang against zstd, brotli, LZ4 and FSST.
#[derive(Parser, Debug)]
#[command(name = "sigma-bench", version, args_conflicts_with_subcommands = true)]
struct Args {
    /// Another measurement instead of the per-record one
    #[command(subcommand)]
    command: Option<Command>,
    /// Corpus folder [default: shared/corpus beside the workspace]
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Records to measure [default: DIR/chat-dev.jsonl, or DIR/histories-dev.jsonl with --histories]
    #[arg(long, value_name = "FILE")]
    dev: Option<PathBuf>,
    /// Records to train dictionaries, symbol tables and codebooks on [default: DIR/chat-train.jsonl]
    #[arg(long, value_name = "FILE")]
    train: Option<PathBuf>,
    /// Measure only the first N records (0: all)
    #[arg(long, value_name = "N", default_value_t = 0)]
    limit: usize,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
    /// Run only these codecs (comma-separated names)
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    only: Vec<String>,
    /// Measure the LLM request log (histories-dev.jsonl) with reference-based anchors
    #[arg(long)]
    histories: bool,
}

/// The other measurements.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Every anchor (xz -9e, zstd -19 --long, brotli-11, PPMd, Parquet) beside SigmaLang
    /// (`sigma compress`, `sigma pack`) on the same bytes of each file, in one run
    Anchors(anchors::AnchorArgs),
}

/// Trained state shared by the codecs that need it, built on first use.
struct Training {
    /// The training records.
    records: Vec<Vec<u8>>,
    /// The zstd dictionary and the seconds its training took.
    dictionary: Option<(Vec<u8>, f64)>,
    /// The FSST compressor and the seconds its training took.
    fsst: Option<(fsst::Compressor, f64)>,
    /// SigmaLang codebooks trained so far: level name, codebook, seconds of training.
    codebooks: Vec<(&'static str, Arc<Codebook>, f64)>,
}

impl Training {
    /// The training records the zstd dictionary and the SigmaLang codebooks are trained
    /// on: all of them, up to what zstd's trainer accepts.
    fn samples(&self) -> Vec<&[u8]> {
        let mut total = 0;
        self.records
            .iter()
            .map(Vec::as_slice)
            .take_while(|r| {
                total += r.len();
                total <= DICT_SAMPLE_CAP
            })
            .collect()
    }

    fn dictionary(&mut self) -> Result<&(Vec<u8>, f64), String> {
        if self.dictionary.is_none() {
            let samples = self.samples();
            progress(&format!(
                "training a {DICT_SIZE}-byte zstd dictionary on {} records ({} bytes)",
                samples.len(),
                samples.iter().map(|s| s.len()).sum::<usize>()
            ));
            let start = Instant::now();
            let dict = zstd::dict::from_samples(&samples, DICT_SIZE)
                .map_err(|e| format!("zstd dictionary training failed: {e}"))?;
            self.dictionary = Some((dict, start.elapsed().as_secs_f64()));
        }
        Ok(self.dictionary.as_ref().expect("trained above"))
    }

    /// The codebook of SigmaLang level `level`, trained on first use.
    fn codebook(&mut self, level: &sigma::Level) -> Result<(Arc<Codebook>, f64), String> {
        if let Some((_, codebook, secs)) = self.codebooks.iter().find(|c| c.0 == level.name) {
            return Ok((codebook.clone(), *secs));
        }
        let samples = self.samples();
        progress(&format!(
            "training the {} codebook ({}) on {} records ({} bytes)",
            level.name,
            level.describe(),
            samples.len(),
            samples.iter().map(|s| s.len()).sum::<usize>()
        ));
        let start = Instant::now();
        let codebook = Codebook::train(&samples, &level.options(), &mut |_, _| {})
            .map_err(|e| format!("{}: codebook training failed: {e}", level.name))?;
        let secs = start.elapsed().as_secs_f64();
        progress(&format!(
            "{} codebook {} trained in {secs:.1} s, {} bytes",
            level.name,
            codebook.id(),
            codebook.serialized_len()
        ));
        self.codebooks.push((level.name, codebook.clone(), secs));
        Ok((codebook, secs))
    }

    fn fsst(&mut self) -> &(fsst::Compressor, f64) {
        self.fsst.get_or_insert_with(|| {
            progress("training an FSST symbol table");
            let samples: Vec<&[u8]> = self.records.iter().map(Vec::as_slice).collect();
            let start = Instant::now();
            let compressor = Fsst::train(&samples);
            (compressor, start.elapsed().as_secs_f64())
        })
    }
}

/// A status line on stderr.
fn progress(message: &str) {
    eprintln!("sigma-bench: {message}");
}

/// Two instances of one codec: one to encode with, one to decode with.
type CodecPair = (Box<dyn Codec>, Box<dyn Codec>);

/// Builds the encoder and decoder instances of codec `name`, and its note.
fn build(name: &str, training: &mut Training) -> Result<(CodecPair, String), String> {
    let io = |e: std::io::Error| format!("{name}: {e}");
    let pair = |make: &dyn Fn() -> Box<dyn Codec>| (make(), make());
    let codecs = match name {
        "lz4" => pair(&|| Box::new(Lz4)),
        "brotli-11" => pair(&|| Box::new(Brotli::new(11, 22))),
        sigma::DEFAULT_NAME => {
            let codecs = pair(&|| Box::new(SigmaCodec::new()));
            return Ok((codecs, "built-in codebook".to_owned()));
        }
        _ if sigma::level(name).is_some() => {
            let level = sigma::level(name).expect("matched above");
            let (codebook, secs) = training.codebook(level)?;
            let make =
                || Box::new(SigmaCodec::with_codebook(name, codebook.clone())) as Box<dyn Codec>;
            let note = format!("codebook trained in {secs:.1} s ({})", level.describe());
            return Ok(((make(), make()), note));
        }
        "zstd-3" | "zstd-19" => {
            let level = if name == "zstd-3" { 3 } else { 19 };
            let make = || Zstd::new(name, level, &[]).map(|c| Box::new(c) as Box<dyn Codec>);
            (make().map_err(io)?, make().map_err(io)?)
        }
        "zstd-3-dict" | "zstd-19-dict" => {
            let level = if name == "zstd-3-dict" { 3 } else { 19 };
            let (dict, secs) = training.dictionary()?;
            let make = || Zstd::new(name, level, dict).map(|c| Box::new(c) as Box<dyn Codec>);
            let codecs = (make().map_err(io)?, make().map_err(io)?);
            return Ok((codecs, format!("dictionary trained in {secs:.1} s")));
        }
        "zstd-19-patch-from" => {
            let make = || Zstd::patch_from(name, 19).map(|c| Box::new(c) as Box<dyn Codec>);
            let codecs = (make().map_err(io)?, make().map_err(io)?);
            let note = "against the previous record of its conversation".to_owned();
            return Ok((codecs, note));
        }
        "fsst" => {
            let (compressor, secs) = training.fsst();
            let make = || Box::new(Fsst::new(compressor.clone())) as Box<dyn Codec>;
            let note = format!("symbol table trained in {secs:.3} s");
            return Ok(((make(), make()), note));
        }
        _ => return Err(format!("no codec named {name}")),
    };
    Ok((codecs, String::new()))
}

/// Resolves a file option: the given path, or `default_name` in the corpus folder.
fn corpus_file(given: &Option<PathBuf>, corpus: &Path, default_name: &str) -> PathBuf {
    given.clone().unwrap_or_else(|| corpus.join(default_name))
}

/// Checks that `path` is a file; the error says how to point at the corpus.
fn require(path: &Path) -> Result<(), String> {
    if path.is_file() {
        Ok(())
    } else {
        Err(format!(
            "corpus file {} not found; pass --corpus DIR (the folder holding chat-train.jsonl, \
             chat-dev.jsonl and histories-dev.jsonl) or --dev/--train FILE",
            path.display()
        ))
    }
}

/// `n` with thousands separators.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        short => short,
    };
    let mut out = digits[..head].to_owned();
    for group in digits.as_bytes()[head..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).expect("ASCII digits"));
    }
    out
}

/// The report as a Markdown table, rows already sorted.
fn table(rows: &[Row]) -> String {
    let speed = |s: Option<f64>| s.map_or("-".to_owned(), |v| format!("{v:.1}"));
    let reference = reference_ratio(rows);
    let mut out = format!(
        "| codec | records | input bytes | output bytes | ratio | vs {REFERENCE_ROW} | encode MB/s | decode MB/s | model bytes | note |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for r in rows {
        let versus = relative(r, reference).map_or("-".to_owned(), |v| format!("{v:.2}x"));
        out += &format!(
            "| {} | {} | {} | {} | {:.2}x | {} | {} | {} | {} | {} |\n",
            r.name,
            thousands(r.records as u64),
            thousands(r.input_bytes),
            thousands(r.output_bytes),
            r.ratio(),
            versus,
            speed(r.encode_mb_s),
            speed(r.decode_mb_s),
            thousands(r.model_bytes as u64),
            r.note
        );
    }
    out
}

/// The ratio of the reference row, if it was measured.
fn reference_ratio(rows: &[Row]) -> Option<f64> {
    rows.iter()
        .find(|r| r.name == REFERENCE_ROW)
        .map(Row::ratio)
}

/// `row`'s ratio relative to the reference row's.
fn relative(row: &Row, reference: Option<f64>) -> Option<f64> {
    reference.map(|base| row.ratio() / base)
}

/// Random access to one archive as JSON.
fn access_json(a: &Access) -> serde_json::Value {
    let sample = |s: &archive::Sample| {
        serde_json::json!({
            "gets": s.gets,
            "get_ms_median": archive::median(&s.get_ms),
            "get_ms_mean": archive::mean(&s.get_ms),
            "get_ms_max": s.get_ms.iter().copied().fold(0.0, f64::max),
            "open_ms_mean": archive::mean(&s.open_ms),
            "read_bytes_mean": archive::mean(&s.read.iter().map(|&r| r as f64).collect::<Vec<_>>()),
            "read_bytes_max": s.read.iter().max(),
            "distinct_block_bytes_mean": archive::mean(&s.distinct.iter().map(|&r| r as f64).collect::<Vec<_>>()),
            "distinct_block_bytes_max": s.distinct.iter().max(),
            "chain_mean": archive::mean(&s.chain.iter().map(|&c| c as f64).collect::<Vec<_>>()),
            "chain_max": s.chain.iter().max(),
            "decoded_mean": archive::mean(&s.decoded.iter().map(|&c| c as f64).collect::<Vec<_>>()),
            "decoded_max": s.decoded.iter().max(),
        })
    };
    let c = a.options.get_group();
    serde_json::json!({
        "archive": a.name,
        "archive_bytes": a.archive_bytes,
        "records": a.records,
        "block_records": a.options.get_block_records(),
        "keyframe_interval": c.get_keyframe_interval(),
        "keyframes_per_root": c.get_keyframes_per_root(),
        "max_frames": c.get_max_frames(),
        "largest_block_bytes": a.largest_block,
        "bank_bytes": a.options.get_bank(),
        "chain_bound": a.chain_bound(),
        "decode_bound": a.decode_bound(),
        "read_bound_bytes": a.read_bound(),
        "random": sample(&a.random),
        "last": sample(&a.last),
        "all": sample(&a.all),
    })
}

/// The interleaved keyed archive's ratio over the in-order one's, if both were measured.
fn interleave_factor(rows: &[Row]) -> Option<(f64, f64)> {
    let ratio = |name: &str| rows.iter().find(|r| r.name == name).map(Row::ratio);
    Some((ratio(archive::INTERLEAVED)?, ratio(archive::KEYED)?))
}

/// The line comparing the interleaved keyed archive with the in-order one.
fn interleave_line(rows: &[Row]) -> Option<String> {
    let (interleaved, in_order) = interleave_factor(rows)?;
    let change = interleaved / in_order - 1.0;
    let verdict = if change.abs() <= INTERLEAVE_TOLERANCE {
        "within"
    } else {
        "NOT within"
    };
    Some(format!(
        "{} vs {}: ratio {interleaved:.2}x vs {in_order:.2}x, {:+.1}% ({verdict} {:.0}%)",
        archive::INTERLEAVED,
        archive::KEYED,
        change * 100.0,
        INTERLEAVE_TOLERANCE * 100.0
    ))
}

/// The random-access report: a bound line per archive and a Markdown table.
fn access_report(accesses: &[Access]) -> String {
    let mut out = String::from(
        "Random access: each get on a reader opened fresh for it (nothing cached). get ms: \
         wall-clock time of the get alone; open ms: ArchiveReader::open (header, metadata, \
         index). read: last_read_bytes (whole blocks; the reader keeps one verified block, so a \
         block is read again only when the get returns to it); distinct: the bytes of the \
         distinct blocks the decoded records lie in. chain: the record's context chain; decoded: the \
         chain plus the Σ-bank roots its records reference.\n\n",
    );
    for a in accesses {
        let c = a.options.get_group();
        let most = a.all.read.iter().copied().max().unwrap_or(0);
        let most_distinct = a.all.distinct.iter().copied().max().unwrap_or(0);
        out += &format!(
            "- {}: {} records, archive {} bytes; keyframe interval {}, {} keyframes per root, \
             {} records a block, {} MiB bank. Bound: a chain holds at most {} records, a get \
             decodes at most {} (each chain record may reference {} bank roots), so reads at \
             most {} x {} (largest block) = {} bytes. Over every record: read at most {} bytes \
             ({:.1}% of the archive), distinct blocks at most {} bytes ({:.1}%), chain at most \
             {} and decoded at most {} records\n",
            a.name,
            thousands(a.records),
            thousands(a.archive_bytes),
            c.get_keyframe_interval(),
            c.get_keyframes_per_root(),
            a.options.get_block_records(),
            a.options.get_bank() >> 20,
            a.chain_bound(),
            a.decode_bound(),
            if a.options.get_bank() == 0 {
                0
            } else {
                sigmalang::archive::MAX_REFERENCES
            },
            a.decode_bound(),
            thousands(a.largest_block),
            thousands(a.read_bound()),
            thousands(most),
            percent(most, a.archive_bytes),
            thousands(most_distinct),
            percent(most_distinct, a.archive_bytes),
            a.all.chain.iter().max().unwrap_or(&0),
            a.all.decoded.iter().max().unwrap_or(&0),
        );
    }
    out += "\n| archive | get of | gets | get ms median | get ms mean | get ms max | \
            open ms mean | read mean | read max | read max / archive | distinct mean | \
            distinct max | chain mean / max | decoded mean / max |\n\
            | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    let as_f64 = |v: &[u64]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let counts = |v: &[usize]| {
        let f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
        format!(
            "{:.1} / {}",
            archive::mean(&f),
            v.iter().max().unwrap_or(&0)
        )
    };
    for a in accesses {
        let last = format!("last record (#{})", a.records.saturating_sub(1));
        let random = format!("{} random records", archive::RANDOM_GETS);
        for (what, s) in [
            (random, &a.random),
            (last, &a.last),
            ("every record once".to_owned(), &a.all),
        ] {
            let most = s.read.iter().copied().max().unwrap_or(0);
            out += &format!(
                "| {} | {what} | {} | {:.2} | {:.2} | {:.2} | {:.3} | {} | {} | {:.1}% | {} | {} | {} | {} |\n",
                a.name,
                s.gets,
                archive::median(&s.get_ms),
                archive::mean(&s.get_ms),
                s.get_ms.iter().copied().fold(0.0, f64::max),
                archive::mean(&s.open_ms),
                thousands(archive::mean(&as_f64(&s.read)).round() as u64),
                thousands(most),
                percent(most, a.archive_bytes),
                thousands(archive::mean(&as_f64(&s.distinct)).round() as u64),
                thousands(s.distinct.iter().copied().max().unwrap_or(0)),
                counts(&s.chain),
                counts(&s.decoded),
            );
        }
    }
    out
}

/// `part` as a percentage of `whole`.
fn percent(part: u64, whole: u64) -> f64 {
    part as f64 * 100.0 / whole.max(1) as f64
}

/// The report as one JSON object.
fn json(
    args: &Args,
    dev: &Path,
    train: &Path,
    rows: &[Row],
    accesses: &[Access],
    interleaving: Option<&str>,
) -> serde_json::Value {
    let reference = reference_ratio(rows);
    let factor = interleave_factor(rows).map(|(i, o)| i / o);
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "codec": r.name,
                "records": r.records,
                "input_bytes": r.input_bytes,
                "output_bytes": r.output_bytes,
                "ratio": r.ratio(),
                "vs_reference": relative(r, reference),
                "encode_mb_s": r.encode_mb_s,
                "decode_mb_s": r.decode_mb_s,
                "encode_wall_mb_s": r.encode_wall_mb_s,
                "decode_wall_mb_s": r.decode_wall_mb_s,
                "model_bytes": r.model_bytes,
                "note": r.note,
            })
        })
        .collect();
    serde_json::json!({
        "mode": if args.histories { "histories" } else { "chat" },
        "dev": dev.display().to_string(),
        "train": train.display().to_string(),
        "limit": args.limit,
        "min_time_s": MIN_TIME.as_secs_f64(),
        "clock": measure::clock_name(),
        "reference": REFERENCE_ROW,
        "rows": rows,
        "interleaving": interleaving,
        "interleaved_vs_in_order": factor,
        "random_access": accesses.iter().map(access_json).collect::<Vec<_>>(),
    })
}

fn run(args: &Args) -> Result<(), String> {
    let run_start = Instant::now();
    let default_corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let corpus = args.corpus.clone().unwrap_or(default_corpus);
    let corpus = corpus.canonicalize().unwrap_or(corpus);
    let dev_name = if args.histories {
        "histories-dev.jsonl"
    } else {
        "chat-dev.jsonl"
    };
    let dev = corpus_file(&args.dev, &corpus, dev_name);
    let train = corpus_file(&args.train, &corpus, "chat-train.jsonl");

    let known = if args.histories {
        HISTORY_CODECS
    } else {
        CHAT_CODECS
    };
    if let Some(bad) = args.only.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(format!(
            "unknown codec {bad} for this mode; known: {}",
            known.join(", ")
        ));
    }
    let selected: Vec<&str> = known
        .iter()
        .copied()
        .filter(|n| args.only.is_empty() || args.only.iter().any(|o| o == n))
        .collect();
    let needs_training = selected
        .iter()
        .any(|n| n.ends_with("-dict") || *n == "fsst" || sigma::level(n).is_some());

    require(&dev)?;
    if needs_training {
        require(&train)?;
    }
    let records = corpus::load(&dev, args.limit)?;
    let references = if args.histories {
        corpus::previous_in_conversation(&records)
    } else {
        Vec::new()
    };
    let texts: Vec<&[u8]> = records.iter().map(|r| r.text.as_slice()).collect();
    progress(&format!(
        "{} records, {} bytes from {}",
        texts.len(),
        texts.iter().map(|t| t.len()).sum::<usize>(),
        dev.display()
    ));
    let mut training = Training {
        records: if needs_training {
            corpus::load(&train, 0)?
                .into_iter()
                .map(|r| r.text)
                .collect()
        } else {
            Vec::new()
        },
        dictionary: None,
        fsst: None,
        codebooks: Vec::new(),
    };

    let keys: Vec<Option<&[u8]>> = records
        .iter()
        .map(|r| r.conversation.as_deref().map(str::as_bytes))
        .collect();
    let order = archive::interleave(&keys, archive::INTERLEAVE_SEED);
    let interleaving = selected.contains(&archive::INTERLEAVED).then(|| {
        let (run, open) = archive::mixing(&order.iter().map(|&i| keys[i]).collect::<Vec<_>>());
        let (run0, open0) = archive::mixing(&keys);
        format!(
            "SplitMix64 seed {:#x}, each step the next record of a conversation drawn with \
             weight = its records left: mean run of one conversation {run:.2} records (file \
             order {run0:.2}), up to {open} conversations open at once (file order {open0})",
            archive::INTERLEAVE_SEED
        )
    });

    let mut rows = Vec::new();
    let mut accesses = Vec::new();
    for name in selected {
        progress(&format!("measuring {name}"));
        let row = if name == "zstd-19-concat" {
            measure_concat(name, 19, &texts)?
        } else if [archive::PLAIN, archive::KEYED, archive::INTERLEAVED].contains(&name) {
            let (input, what) = match name {
                archive::PLAIN => (
                    archive::Input {
                        texts: texts.clone(),
                        keys: vec![None; texts.len()],
                    },
                    "no key (context: the preceding records)".to_owned(),
                ),
                archive::KEYED => (
                    archive::Input {
                        texts: texts.clone(),
                        keys: keys.clone(),
                    },
                    "key = conversation, file order".to_owned(),
                ),
                _ => (
                    archive::Input {
                        texts: order.iter().map(|&i| texts[i]).collect(),
                        keys: order.iter().map(|&i| keys[i]).collect(),
                    },
                    format!(
                        "key = conversation, interleaved (seed {:#x})",
                        archive::INTERLEAVE_SEED
                    ),
                ),
            };
            let codebook = Codebook::default_codebook();
            let (mut row, access) = archive::measure_archive(name, &codebook, &input, MIN_TIME)?;
            row.note = format!("{what}; {}", row.note);
            accesses.push(access);
            row
        } else {
            let ((mut encoder, mut decoder), note) = build(name, &mut training)?;
            let mut row = measure(
                encoder.as_mut(),
                decoder.as_mut(),
                &texts,
                &references,
                MIN_TIME,
            )?;
            row.note = note;
            row
        };
        rows.push(row);
    }
    rows.sort_by(|a, b| b.ratio().total_cmp(&a.ratio()));
    progress(&format!(
        "done in {:.1} s",
        run_start.elapsed().as_secs_f64()
    ));

    let interleave_note = interleave_line(&rows);
    if let Some(line) = &interleave_note {
        progress(line);
    }
    if args.json {
        println!(
            "{}",
            json(
                args,
                &dev,
                &train,
                &rows,
                &accesses,
                interleaving.as_deref()
            )
        );
    } else {
        println!(
            "{} ({} records), each record compressed on its own (sigma-archive rows: one \
             archive) and verified; MB/s = 10^6 bytes/s, one thread, on {}\n",
            dev.display(),
            texts.len(),
            measure::clock_name()
        );
        print!("{}", table(&rows));
        if let Some(line) = &interleave_note {
            println!("\n{line}");
        }
        if let Some(how) = &interleaving {
            println!("interleaving: {how}");
        }
        if !accesses.is_empty() {
            println!("\n{}", access_report(&accesses));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Some(Command::Anchors(a)) => anchors::run(a),
        None => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sigma-bench: error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(3_136_000), "3,136,000");
    }

    #[test]
    fn cli_parses() {
        let args = Args::parse_from(["sigma-bench", "--only", "lz4,zstd-3", "--limit", "5"]);
        assert_eq!(args.only, ["lz4", "zstd-3"]);
        assert_eq!(args.limit, 5);
    }
}
