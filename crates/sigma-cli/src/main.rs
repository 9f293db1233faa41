//! `sigma`: the command-line tool of the SigmaLang codec.
//!
//! It behaves like the usual compression tools (zstd, xz): `sigma FILE...` writes `FILE.sgm`
//! for each FILE, `sigma -d FILE.sgm...` writes `FILE`, standard input goes to standard output,
//! inputs are never touched, outputs are never overwritten without `-f` and never left
//! half-written (not even on SIGINT, SIGTERM or SIGHUP: [`signals`]), and devices, FIFOs and
//! symbolic links are written through, never replaced. A subcommand is recognised only as the
//! first argument ([`parse_args`]).
//!
//! Besides streams it trains codebooks (`sigma train`) and handles record archives of chat
//! text: `sigma pack` turns JSONL into an archive, `sigma unpack` turns it back (or, with
//! `--salvage`, whatever of it is undamaged), `sigma get` reads one record without decoding the
//! others, `sigma ls` lists the records and how they are coded, and `sigma verify` checks every
//! checksum of an archive or a stream. `sigma stats` measures the encoder on a JSONL file: sizes,
//! time per record, buffer pools and heap allocations.
//!
//! This file only parses arguments and dispatches; the work is done in [`commands`], with the
//! input/output plumbing in [`io`], JSON Lines reading in [`jsonl`], codebook loading in
//! [`model`], `--memory` and the input caps in [`limits`], and the counting allocator behind
//! `sigma stats` in [`alloc`].

// The only unsafe code is the global allocator's `GlobalAlloc` impl, allowed in `alloc` alone.
#![deny(unsafe_code)]

mod alloc;
mod commands;
mod error;
mod format;
mod io;
mod jsonl;
mod limits;
mod model;
mod progress;
mod sample;
mod signals;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::CliError;
use crate::limits::MemoryLimit;

/// Lossless glyph codec for LLM text.
///
/// With no subcommand, `sigma [FILE]...` compresses each FILE to FILE.sgm and `sigma -d
/// [FILE.sgm]...` decompresses each, like zstd. Without FILE (or with `-`), standard input is
/// coded to standard output.
///
/// A subcommand is recognised only as the first argument; anywhere else a word is a file
/// (`sigma -k ls` compresses the file `ls`). `--` ends the options, so `sigma -- ls`
/// compresses a file named `ls` too.
#[derive(Parser, Debug)]
#[command(
    name = "sigma",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Exit status: 0 on success, 1 on any error (with several files: if any failed), \
                  128+N when stopped by signal N (130 for Ctrl-C)."
)]
pub struct Cli {
    /// The command to run; compresses (or, with -d, decompresses) when absent.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The options of the default command.
    #[command(flatten)]
    pub top: TopArgs,
}

/// `sigma` without a subcommand: the same options as [`Cli`], and no subcommands, so that a
/// file may be named like one.
#[derive(Parser, Debug)]
#[command(name = "sigma", version)]
struct FileCli {
    #[command(flatten)]
    top: TopArgs,
}

/// The options of `sigma [FILE]...`, without a subcommand.
#[derive(Args, Debug, Clone, Default)]
pub struct TopArgs {
    /// Decompress instead of compressing (same as `sigma decompress`).
    #[arg(short = 'd', long = "decompress", conflicts_with = "compress")]
    pub decompress: bool,

    /// Compress (the default; same as `sigma compress`).
    #[arg(short = 'z', long = "compress")]
    pub compress: bool,

    /// Input, output and behaviour options of the default command.
    #[command(flatten)]
    pub codec: CodecArgs,
}

/// What to run: a subcommand, or the default command with its options.
#[derive(Debug)]
pub enum Invocation {
    /// `sigma SUBCOMMAND ...`.
    Command(Command),
    /// `sigma [-d] [FILE]...`.
    Default(TopArgs),
}

/// The most worker threads `-T` takes (zstd takes at most 200): more only costs thread start-up
/// and memory, never speed.
pub const MAX_THREADS: usize = 256;

/// Parses `-T N`: 0 (one per core) to [`MAX_THREADS`].
fn parse_threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of threads"))?;
    if n > MAX_THREADS {
        return Err(format!("at most {MAX_THREADS} threads (0: one per core)"));
    }
    Ok(n)
}

/// Parses the command line. A subcommand is recognised only as the first argument, so every
/// other word is a file; `-h`/`--help` and `-V`/`--version` of the default command show the
/// whole tool's help.
pub fn parse_args<I, T>(args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let first = args.get(1).and_then(|a| a.to_str());
    if first.is_some_and(is_subcommand) {
        let cli = Cli::try_parse_from(&args)?;
        return Ok(match cli.command {
            Some(command) => Invocation::Command(command),
            None => Invocation::Default(cli.top),
        });
    }
    match FileCli::try_parse_from(&args) {
        Ok(cli) => Ok(Invocation::Default(cli.top)),
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            let flag = if args.iter().any(|a| a == "--help") {
                "--help"
            } else {
                "-h"
            };
            Cli::try_parse_from(["sigma", flag]).map(|_| Invocation::Default(TopArgs::default()))
        }
        Err(e) => Err(e),
    }
}

/// Whether `word` names a subcommand (or `help`).
fn is_subcommand(word: &str) -> bool {
    use clap::CommandFactory;
    word == "help"
        || Cli::command()
            .get_subcommands()
            .any(|c| c.get_name() == word || c.get_all_aliases().any(|a| a == word))
}

/// The subcommands of `sigma`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compress FILE to FILE.sgm (or standard input to standard output).
    Compress(CodecArgs),
    /// Decompress FILE.sgm to FILE (or standard input to standard output).
    Decompress(CodecArgs),
    /// Print the semantic glyph tree of a text; with --cost, what coding each span of it costs.
    Inspect(InspectArgs),
    /// Compress, decompress and verify a built-in sample (or FILE), and report the numbers.
    Demo(DemoArgs),
    /// Train a codebook (MODEL) on a corpus, for use with -m.
    Train(TrainArgs),
    /// Pack the string field of every JSONL line into a record archive.
    Pack(PackArgs),
    /// Write an archive's records back as JSONL.
    Unpack(UnpackArgs),
    /// Print records of an archive (N, or ranges A-B), decoding only the records they depend on.
    Get(GetArgs),
    /// List an archive's records: context, level, sizes, frames and chain of each.
    Ls(LsArgs),
    /// Decode a whole archive or stream and check every checksum; exit 1 if anything is damaged.
    Verify(VerifyArgs),
    /// Encode a JSONL file as `pack` would, one record at a time on one thread, and report
    /// sizes, time per record, buffer pools and heap allocations (nothing is written).
    Stats(StatsArgs),
}

/// Options shared by `compress` and `decompress`.
#[derive(Args, Debug, Clone, Default)]
pub struct CodecArgs {
    /// Input files, each coded on its own (an error with one does not stop the others); `-` or
    /// nothing reads standard input.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Write the output to OUT (`-` for standard output), with one input only. An existing
    /// device, FIFO or symbolic link is written through, not replaced.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Code with the codebook in MODEL (made by `sigma train`) instead of the built-in one.
    /// Decompressing needs the codebook the stream was made with.
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// Write the output to standard output.
    #[arg(short = 'c', long = "stdout", conflicts_with = "output")]
    pub stdout: bool,

    /// Keep the input file (the default: inputs are never deleted unless --rm is given). Of -k
    /// and --rm, the last one given wins.
    #[arg(short = 'k', long = "keep", overrides_with = "rm")]
    pub keep: bool,

    /// Delete the input file once the output is fully written, synced and (for compression)
    /// verified by decoding it back. Only when the output is a regular file: the input is kept
    /// when writing to standard output, a device (such as /dev/null), a FIFO or a symbolic link.
    #[arg(long = "rm", overrides_with = "keep")]
    pub rm: bool,

    /// Overwrite an existing output file; allow compressed data to or from a terminal.
    #[arg(short = 'f', long = "force")]
    pub force: bool,

    /// Print nothing but errors (no progress bar, no warnings).
    #[arg(short = 'q', long = "quiet", conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print a summary line (sizes, ratio, speed) to standard error.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Work on N threads (0: one per core): compression codes 8 MiB chunks while the input is
    /// read, decompression decodes chunks read ahead while the output is written. The output
    /// does not depend on N.
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0, value_parser = parse_threads)]
    pub threads: usize,

    /// Turn the encoders' buffer pools off (every buffer is allocated and freed per use), for
    /// comparisons; the output is the same.
    #[arg(long)]
    pub no_pool: bool,

    /// Decompress with at most LIMIT bytes of memory (default 256M; 512M, 4G, 1GiB; max: no limit); a
    /// stream that needs more is refused, naming what it needs.
    #[arg(long = "memory", value_name = "LIMIT", default_value_t = MemoryLimit::DEFAULT)]
    pub memory: MemoryLimit,
}

/// Options of `sigma inspect`.
#[derive(Args, Debug, Clone, Default)]
pub struct InspectArgs {
    /// Text to parse; `-` or nothing reads standard input. With N: an archive.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// With --cost: inspect record N of the archive FILE, coded against its frames.
    #[arg(value_name = "N", requires = "cost")]
    pub record: Option<u64>,

    /// Print the tree as JSON instead of indented lines (with --cost: the spans and their bits
    /// as JSON).
    #[arg(long)]
    pub json: bool,

    /// Show nodes only down to depth N (the root is depth 0).
    #[arg(long, value_name = "N", conflicts_with = "cost")]
    pub max_depth: Option<usize>,

    /// Show where the bits go: the text coloured by what the coder spent on each span, then
    /// the bits per kind of span, class and JSON field.
    #[arg(long)]
    pub cost: bool,

    /// With --cost: also write the cost as a self-contained HTML page (a heat map) to OUT (an
    /// existing file only with -f; `-`: the page on standard output instead of the text).
    #[arg(long, value_name = "OUT.html", requires = "cost")]
    pub html: Option<PathBuf>,

    /// With --cost: no colours (also when NO_COLOR is set, or standard output is no terminal).
    #[arg(long)]
    pub no_color: bool,

    /// With --html: overwrite an existing OUT.html.
    #[arg(short = 'f', long = "force", requires = "html")]
    pub force: bool,

    /// Code with the codebook in MODEL (for an archive: the one it was made with) instead of
    /// the built-in one.
    #[arg(short = 'm', long = "model", value_name = "MODEL", requires = "cost")]
    pub model: Option<PathBuf>,
}

/// Options of `sigma demo`.
#[derive(Args, Debug, Clone, Default)]
pub struct DemoArgs {
    /// Text to run the demo on instead of the built-in sample.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// How `sigma train` cuts its input files into records.
#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecordFormat {
    /// JSON Lines: the string field `--field` of every line is a record.
    #[default]
    Jsonl,
    /// Text: every line (without its newline) is a record.
    Lines,
    /// Every file is one record.
    Files,
}

/// `sigma train --level`: the library's training presets.
#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TrainLevel {
    /// Smallest and fastest codebook.
    Fast,
    /// The built-in codebook's level.
    #[default]
    Default,
    /// Best compression, about half the decoding speed.
    Max,
}

impl From<TrainLevel> for sigmalang::CompressionLevel {
    fn from(l: TrainLevel) -> Self {
        match l {
            TrainLevel::Fast => sigmalang::CompressionLevel::Fast,
            TrainLevel::Default => sigmalang::CompressionLevel::Default,
            TrainLevel::Max => sigmalang::CompressionLevel::Max,
        }
    }
}

/// Options of `sigma train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The corpus; `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Write the codebook to MODEL.
    #[arg(short = 'o', long = "output", value_name = "MODEL", required = true)]
    pub output: PathBuf,

    /// How the files are cut into records.
    #[arg(long, value_enum, default_value_t = RecordFormat::Jsonl)]
    pub format: RecordFormat,

    /// The JSON field holding the text (with --format jsonl).
    #[arg(long, value_name = "NAME", default_value = "text")]
    pub field: String,

    /// Skip JSONL lines that are blank or have no string field NAME, instead of failing.
    #[arg(long)]
    pub skip_missing: bool,

    /// The training preset: fast (smallest, fastest), default (the built-in codebook's level),
    /// max (best compression, about half the speed). The options below override it.
    #[arg(short = 'l', long, value_enum, default_value_t = TrainLevel::Default)]
    pub level: TrainLevel,

    /// The longest context the model uses, in bytes (1 to 7).
    #[arg(long, value_name = "N")]
    pub max_order: Option<usize>,

    /// Keep a context only if it occurs at least N times in the corpus.
    #[arg(long, value_name = "N")]
    pub min_count: Option<u32>,

    /// Contexts of this order and longer need --min-count-high occurrences.
    #[arg(long, value_name = "N")]
    pub high_order: Option<usize>,

    /// Occurrence threshold of contexts of --high-order and longer.
    #[arg(long, value_name = "N")]
    pub min_count_high: Option<u32>,

    /// Keep a context of order 2 or more only if it saves at least BITS per MiB of corpus
    /// against its one-byte-shorter suffix (estimated leave-one-out); 0 turns this off.
    #[arg(long, value_name = "BITS")]
    pub min_gain: Option<f64>,

    /// Overwrite an existing MODEL.
    #[arg(short = 'f', long = "force")]
    pub force: bool,

    /// Print nothing but errors (no progress bar, no summary).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// Options of `sigma pack`.
#[derive(Args, Debug, Clone)]
pub struct PackArgs {
    /// JSON Lines input, one object per line; `-` or nothing reads standard input.
    #[arg(value_name = "FILE.jsonl")]
    pub file: Option<PathBuf>,

    /// Write the archive to ARCHIVE.
    #[arg(short = 'o', long = "output", value_name = "ARCHIVE", required = true)]
    pub output: PathBuf,

    /// Store only this string field of every line (a path such as `text` or `a.b`), one record
    /// a line, and drop the rest of the line; every line must then be a JSON object with it.
    /// Without it, every line is stored whole, byte for byte.
    #[arg(long, value_name = "PATH")]
    pub field: Option<String>,

    /// Refuse lines that are not JSON objects (blank, byte-order mark, invalid UTF-8, not JSON,
    /// JSON that is not an object), naming the first one's file, line and column, instead of
    /// storing them as they are with one warning.
    #[arg(long)]
    pub strict: bool,

    /// Code with the codebook in MODEL instead of the built-in one.
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// Group records by the value of this JSON field (a path such as `conversation` or
    /// `metadata.session`; the number 5 and the string "5" are different values): each record
    /// is coded against the earlier records of its group. Without it, against the records just
    /// before it.
    #[arg(long, value_name = "PATH")]
    pub context_key: Option<String>,

    /// A context's records since its last keyframe number at most N (bounds `get`'s work).
    #[arg(long, value_name = "N", default_value_t = sigmalang::GroupOptions::default().get_keyframe_interval())]
    pub keyframe_interval: u32,

    /// A context's keyframes since its last root number at most N.
    #[arg(long, value_name = "N", default_value_t = sigmalang::GroupOptions::default().get_keyframes_per_root())]
    pub keyframes_per_root: u32,

    /// Code each record against at most N earlier records of its context (0: no context
    /// coding at all, and no Σ-bank references either).
    #[arg(long, value_name = "N", default_value_t = sigmalang::GroupOptions::default().get_max_frames())]
    pub frames: u32,

    /// Self-training: store KIB KiB of records (joined by newlines) once, as the archive's
    /// primer, and code every record after it, so the coder learns the archive's own data;
    /// kept only where a sample shows it pays (records stay individually readable; the primer
    /// counts in the size, and a reader decodes it once). From a file, the primer is runs of
    /// lines sampled from all over it; from standard input, its first lines. Default: a
    /// quarter of the file's records (with --field, of their text), 64 to 1024 KiB (256 KiB
    /// from standard input).
    #[arg(long, value_name = "KIB", value_parser = clap::value_parser!(u32).range(1..=16384), conflicts_with = "no_primer")]
    pub primer: Option<u32>,

    /// Turn self-training off: no primer, every record coded with the codebook alone (and its
    /// context's frames), as archives of version 2 were.
    #[arg(long)]
    pub no_primer: bool,

    /// Write the index as earlier builds did (plain varints, and every payload starting with
    /// its header) instead of range-coding it (header flag bit 6), for readers older than the
    /// coded index. Costs about 3 bytes a record on short records.
    #[arg(long)]
    pub no_coded_index: bool,

    /// Code records on N threads (the one reading the input among them: it codes while it
    /// waits), in batches of 1024 records or 1 MiB (0: one per core). The archive does not
    /// depend on N.
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0, value_parser = parse_threads)]
    pub threads: usize,

    /// Block mode: group consecutive records until they hold SIZE bytes (like 64KiB or 1MiB)
    /// and code each group as one block, so that short records learn from each other; `get`
    /// then decodes the record's block (a few milliseconds per 64 KiB). 0: code every record
    /// alone, against the earlier records of its context and the archive's primer (`get`
    /// decodes a record in well under a millisecond). auto:SIZE: codes about 768 KiB of
    /// records after the primer both ways, blocks of SIZE and records alone (both after the
    /// primer, as they would be written), and packs the file in blocks only if they came out
    /// at least a tenth smaller; records averaging over a sixteenth of SIZE are coded alone
    /// without a trial. auto = auto:64KiB. The default, auto:4KiB, puts short records (lines
    /// under 256 bytes on average) in 4 KiB blocks where those pay (a `get` still decodes
    /// only about 4 KiB) and codes the others alone. Keys are still recorded per record.
    #[arg(long = "block", value_name = "SIZE", default_value_t = limits::BlockSize::DEFAULT, value_parser = limits::parse_block_size)]
    pub block: limits::BlockSize,

    /// Without `--context-key`, put every record in one context (coded against the records
    /// just before it) instead of inferring contexts from content (a record that starts with
    /// most of a recent context's last record continues that context).
    #[arg(long)]
    pub no_infer: bool,

    /// Turn the encoders' buffer pools off (every buffer is allocated and freed per use), for
    /// comparisons; the archive is the same.
    #[arg(long)]
    pub no_pool: bool,

    /// Code whole lines as they are, without the JSON-lines form (strings holding JSON text
    /// unescaped, docs/FORMAT.md §5.5), for comparisons; the lines read back the same.
    #[arg(long, conflicts_with = "field")]
    pub no_json_form: bool,

    /// Overwrite an existing ARCHIVE; allow an archive to be written to a terminal.
    #[arg(short = 'f', long = "force")]
    pub force: bool,

    /// Print nothing but errors (no progress bar).
    #[arg(short = 'q', long = "quiet", conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print a summary (records, sizes, ratio, codebook) to standard error.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

/// Options of `sigma unpack`.
#[derive(Args, Debug, Clone)]
pub struct UnpackArgs {
    /// The archive (a file: it is read with random access).
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,

    /// Write the JSONL to OUT instead of standard output (`-` for standard output).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Write only the value of this field of every record (a path such as `text` or `a.b`), as
    /// one JSON value a line (`null` where a record has none), instead of the whole records.
    #[arg(long, value_name = "PATH")]
    pub field: Option<String>,

    /// The codebook the archive was made with, if not the built-in one.
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// Overwrite an existing OUT.
    #[arg(short = 'f', long = "force")]
    pub force: bool,

    /// Print nothing but errors (no progress bar).
    #[arg(short = 'q', long = "quiet", conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print a summary (records, sizes) to standard error.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Write every record that decodes and skip the damaged ones, naming each skipped record on
    /// standard error. The exit status is still 1 if any record was skipped, but the output is
    /// kept (without --salvage, a damaged record fails the whole unpack and no output is left).
    #[arg(long)]
    pub salvage: bool,

    /// Decode on N threads (0: one per core), runs of blocks each; the output does not depend
    /// on N.
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0, value_parser = parse_threads)]
    pub threads: usize,
    /// Decode with at most LIMIT bytes of memory (default 256M; 512M, 4G, 1GiB; max: no limit); an archive
    /// that needs more is refused, naming what it needs.
    #[arg(long = "memory", value_name = "LIMIT", default_value_t = MemoryLimit::DEFAULT)]
    pub memory: MemoryLimit,
}

/// Options of `sigma get`.
#[derive(Args, Debug, Clone)]
pub struct GetArgs {
    /// The archive (a file: it is read with random access).
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,

    /// The records' numbers, counting from 0: `N`, or `A-B` for records A to B (both
    /// included); several print in the order given. The archive's primer, if it has one, is
    /// decoded once for all of them.
    #[arg(value_name = "N", required = true, num_args = 1.., value_parser = parse_records)]
    pub records: Vec<(u64, u64)>,

    /// Print only the value of this field of the record (a path such as `text` or `a.b`): a
    /// string as its text, any other value as JSON, and `null` if the record has no such field
    /// (as `unpack --field` writes it).
    #[arg(long, value_name = "PATH")]
    pub field: Option<String>,

    /// The codebook the archive was made with, if not the built-in one.
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// Print the record's exact bytes, without the newline added after it.
    #[arg(long)]
    pub raw: bool,

    /// Also print to standard error the record's level, its chain length, how many bytes of
    /// the archive were read and how long decoding took.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Decode with at most LIMIT bytes of memory (default 256M; 512M, 4G, 1GiB; max: no limit); an archive
    /// that needs more is refused, naming what it needs.
    #[arg(long = "memory", value_name = "LIMIT", default_value_t = MemoryLimit::DEFAULT)]
    pub memory: MemoryLimit,
}

/// Parses a `sigma get` record: `N`, or `A-B` (both included, `A <= B`).
fn parse_records(s: &str) -> Result<(u64, u64), String> {
    let number = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("{t:?} is not a record number (N or A-B)"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            if b < a {
                return Err(format!("the range {a}-{b} ends before it starts"));
            }
            Ok((a, b))
        }
        None => number(s).map(|n| (n, n)),
    }
}

/// Options of `sigma ls`.
#[derive(Args, Debug, Clone)]
pub struct LsArgs {
    /// The archive (a file: it is read with random access).
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,

    /// The codebook the archive was made with, if not the built-in one (the records are
    /// decoded to measure them).
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// Print one JSON object per record and a final `{"summary": {...}}` object.
    #[arg(long)]
    pub json: bool,

    /// Decode on N threads (0: one per core), runs of blocks each; the listing does not depend
    /// on N.
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0, value_parser = parse_threads)]
    pub threads: usize,
    /// Decode with at most LIMIT bytes of memory (default 256M; 512M, 4G, 1GiB; max: no limit); an archive
    /// that needs more is refused, naming what it needs.
    #[arg(long = "memory", value_name = "LIMIT", default_value_t = MemoryLimit::DEFAULT)]
    pub memory: MemoryLimit,
}

/// Options of `sigma verify`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// An archive or a stream (the header says which); `-` reads a stream from standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The codebook the file was made with, if not the built-in one.
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// Print nothing but errors (no `OK` line, no progress bar).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Decode on N threads (0: one per core): a stream's chunks, or an archive's runs of blocks.
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0, value_parser = parse_threads)]
    pub threads: usize,
    /// Decode with at most LIMIT bytes of memory (default 256M; 512M, 4G, 1GiB; max: no limit); an archive
    /// that needs more is refused, naming what it needs.
    #[arg(long = "memory", value_name = "LIMIT", default_value_t = MemoryLimit::DEFAULT)]
    pub memory: MemoryLimit,
}

/// Options of `sigma stats`.
#[derive(Args, Debug, Clone)]
pub struct StatsArgs {
    /// JSON Lines input, one object per line; `-` reads standard input.
    #[arg(value_name = "FILE.jsonl", required = true)]
    pub file: PathBuf,

    /// Code with the codebook in MODEL instead of the built-in one.
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// The string field of every line that is a record.
    #[arg(long, value_name = "NAME", default_value = "text")]
    pub field: String,

    /// Key contexts by this JSON field, as `pack --context-key` does.
    #[arg(long, value_name = "FIELD")]
    pub context_key: Option<String>,

    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Also report where the bits go: what the records cost per kind of span, class and JSON
    /// field, from the coder's cost trace of each record against the frames `pack` gives it.
    #[arg(long)]
    pub cost: bool,

    /// Turn the encoder's buffer pool off (every buffer is allocated and freed per use).
    #[arg(long)]
    pub no_pool: bool,

    /// Print nothing on standard error (no progress bar).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

fn main() -> ExitCode {
    let invocation = match parse_args(std::env::args_os()) {
        Ok(invocation) => invocation,
        Err(e) => {
            // --help and --version come here too; they print to stdout and succeed.
            let code = if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
            // If even printing fails there is nothing better to do than exit.
            let _ = e.print();
            return code;
        }
    };
    signals::install();
    // Every value that owns a temporary file is dropped inside `run`, so temporary files are
    // removed before the process exits.
    match run(invocation) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_silent() {
                eprintln!("sigma: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs the command `invocation` names.
fn run(invocation: Invocation) -> Result<(), CliError> {
    match invocation {
        Invocation::Command(command) => match command {
            Command::Compress(args) => commands::codec::compress(&args),
            Command::Decompress(args) => commands::codec::decompress(&args),
            Command::Inspect(args) => commands::inspect::run(&args),
            Command::Demo(args) => commands::demo::run(&args),
            Command::Train(args) => commands::train::run(&args),
            Command::Pack(args) => commands::archive::pack(&args),
            Command::Unpack(args) => commands::archive::unpack(&args),
            Command::Get(args) => commands::archive::get(&args),
            Command::Ls(args) => commands::ls::run(&args),
            Command::Verify(args) => commands::verify::run(&args),
            Command::Stats(args) => commands::stats::run(&args),
        },
        Invocation::Default(top) if top.decompress => commands::codec::decompress(&top.codec),
        Invocation::Default(top) => commands::codec::compress(&top.codec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::path::Path;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
        FileCli::command().debug_assert();
    }

    /// The default command's options, or a panic.
    fn top(args: &[&str]) -> TopArgs {
        match parse_args(args.iter().copied()) {
            Ok(Invocation::Default(top)) => top,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    /// The subcommand, or a panic.
    fn sub(args: &[&str]) -> Command {
        match parse_args(args.iter().copied()) {
            Ok(Invocation::Command(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn top_level_shortcuts() {
        let t = top(&["sigma", "-d", "x.sgm"]);
        assert!(t.decompress);
        assert_eq!(t.codec.files, [PathBuf::from("x.sgm")]);
        assert!(matches!(sub(&["sigma", "compress", "-c", "x"]), Command::Compress(a) if a.stdout));
        assert!(parse_args(["sigma", "-c", "-o", "y", "x"]).is_err());
        let t = top(&["sigma", "-d", "-m", "m.sgcb", "x.sgm"]);
        assert_eq!(t.codec.model, Some(PathBuf::from("m.sgcb")));
        assert!(top(&["sigma"]).codec.files.is_empty());
    }

    #[test]
    fn keep_and_rm_the_last_one_wins() {
        let t = top(&["sigma", "-k", "--rm", "x"]);
        assert!(t.codec.rm && !t.codec.keep);
        let t = top(&["sigma", "--rm", "-k", "x"]);
        assert!(!t.codec.rm && t.codec.keep);
        let t = top(&["sigma", "--rm", "x"]);
        assert!(t.codec.rm);
    }

    #[test]
    fn several_files_and_subcommand_names() {
        let t = top(&["sigma", "a.txt", "b.txt"]);
        assert_eq!(
            t.codec.files,
            [PathBuf::from("a.txt"), PathBuf::from("b.txt")]
        );
        // A subcommand only as the first argument; elsewhere its name is a file.
        for args in [
            &["sigma", "-k", "ls"][..],
            &["sigma", "--", "ls"],
            &["sigma", "a", "pack"],
            &["sigma", "-d", "demo"],
            &["sigma", "-T", "1", "verify"],
        ] {
            let t = top(args);
            assert_eq!(
                t.codec.files.last().unwrap(),
                Path::new(args[args.len() - 1])
            );
        }
        assert!(matches!(sub(&["sigma", "ls", "a.sga"]), Command::Ls(_)));
        assert!(
            matches!(sub(&["sigma", "compress", "ls", "demo"]), Command::Compress(a) if a.files.len() == 2)
        );
        // `--` ends the options too: a file named like an option.
        let t = top(&["sigma", "--", "-k"]);
        assert_eq!(t.codec.files, [PathBuf::from("-k")]);
        assert!(!t.codec.keep);
    }

    #[test]
    fn help_of_the_default_command_is_the_whole_tool() {
        for flag in ["-h", "--help"] {
            let e = parse_args(["sigma", "-d", flag]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
            assert!(e.to_string().contains("unpack"), "{e}");
        }
    }

    #[test]
    fn memory_limits() {
        assert_eq!(
            top(&["sigma", "-d", "x"]).codec.memory,
            MemoryLimit::DEFAULT
        );
        let t = top(&["sigma", "-d", "--memory", "4G", "x"]);
        assert_eq!(t.codec.memory.bytes(), 4 << 30);
        assert!(matches!(sub(&["sigma", "unpack", "--memory", "1GiB", "a"]),
            Command::Unpack(a) if a.memory.bytes() == 1 << 30));
        assert!(matches!(sub(&["sigma", "get", "--memory=max", "a", "0"]),
            Command::Get(a) if a.memory == MemoryLimit::NONE));
        assert!(matches!(sub(&["sigma", "verify", "a"]),
            Command::Verify(a) if a.memory == MemoryLimit::DEFAULT));
        assert!(matches!(sub(&["sigma", "ls", "--memory", "512M", "a"]),
            Command::Ls(a) if a.memory.bytes() == 512 << 20));
        let e = parse_args(["sigma", "-d", "--memory", "12X", "x"]).unwrap_err();
        assert!(e.to_string().contains("unknown unit"), "{e}");
    }

    #[test]
    fn archive_commands() {
        let cli = sub(&["sigma", "pack", "-o", "a.sga", "in.jsonl"]);
        assert!(matches!(cli, Command::Pack(ref a) if a.field.is_none() && !a.strict));
        assert!(
            parse_args(["sigma", "pack", "in.jsonl"]).is_err(),
            "-o is required"
        );
        let cli = sub(&["sigma", "get", "--raw", "a.sga", "3"]);
        assert!(matches!(cli, Command::Get(ref a) if a.records == [(3, 3)] && a.raw));
        assert!(parse_args(["sigma", "get", "a.sga", "-1"]).is_err());
        assert!(
            parse_args(["sigma", "get", "a.sga"]).is_err(),
            "N is required"
        );
        let cli = sub(&["sigma", "get", "a.sga", "7", "2-4", "9-9"]);
        assert!(matches!(cli, Command::Get(ref a) if a.records == [(7, 7), (2, 4), (9, 9)]));
        for bad in ["4-2", "x", "1-", "-", "2-y", "18446744073709551616"] {
            assert!(parse_records(bad).is_err(), "{bad}");
        }
        let cli = sub(&["sigma", "train", "--format", "lines", "-o", "m", "a", "b"]);
        assert!(matches!(cli, Command::Train(ref a) if a.files.len() == 2
                && a.format == RecordFormat::Lines));
        assert!(
            parse_args(["sigma", "train", "-o", "m"]).is_err(),
            "FILE is required"
        );
    }

    #[test]
    fn listing_and_checking_commands() {
        let cli = sub(&["sigma", "ls", "--json", "-m", "m", "a.sga"]);
        assert!(matches!(cli, Command::Ls(ref a) if a.json && a.model.is_some()));
        let cli = sub(&["sigma", "verify", "-q", "x.sgm"]);
        assert!(matches!(cli, Command::Verify(ref a) if a.quiet));
        assert!(parse_args(["sigma", "verify"]).is_err(), "FILE is required");
        let cli = sub(&["sigma", "unpack", "--salvage", "a.sga"]);
        assert!(matches!(cli, Command::Unpack(ref a) if a.salvage));
        let cli = sub(&["sigma", "get", "-v", "a.sga", "0"]);
        assert!(matches!(cli, Command::Get(ref a) if a.verbose));
    }

    #[test]
    fn threads_pooling_and_stats() {
        let cli = top(&["sigma", "-T", "3", "x"]);
        assert_eq!(cli.codec.threads, 3);
        let cli = top(&["sigma", "x"]);
        assert_eq!(cli.codec.threads, 0, "all cores by default");
        let cli = sub(&["sigma", "compress", "--threads", "2", "x"]);
        assert!(matches!(cli, Command::Compress(ref a) if a.threads == 2));
        assert!(parse_args(["sigma", "-T", "-1", "x"]).is_err());
        let cli = sub(&["sigma", "pack", "-T", "1", "--no-pool", "-o", "a", "i"]);
        assert!(matches!(cli, Command::Pack(ref a) if a.threads == 1 && a.no_pool));
        let cli = sub(&["sigma", "pack", "-o", "a", "i"]);
        assert!(matches!(cli, Command::Pack(ref a) if a.threads == 0 && !a.no_pool));
        let cli = sub(&[
            "sigma",
            "stats",
            "--json",
            "--no-pool",
            "--context-key",
            "conversation",
            "in.jsonl",
        ]);
        assert!(matches!(cli, Command::Stats(ref a)
            if a.json && a.no_pool && a.field == "text"
                && a.context_key.as_deref() == Some("conversation")));
        assert!(parse_args(["sigma", "stats"]).is_err(), "FILE is required");
    }
}
