//! `sigma`: the command-line tool of the SigmaLang codec.
//!
//! It behaves like the usual compression tools (zstd, xz): `sigma FILE` writes `FILE.sgm`,
//! `sigma -d FILE.sgm` writes `FILE`, standard input goes to standard output, inputs are never
//! touched, outputs are never overwritten without `-f` and never left half-written.
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
//! [`model`] and the counting allocator behind `sigma stats` in [`alloc`].

// The only unsafe code is the global allocator's `GlobalAlloc` impl, allowed in `alloc` alone.
#![deny(unsafe_code)]

mod alloc;
mod commands;
mod error;
mod format;
mod io;
mod jsonl;
mod model;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::CliError;

/// Lossless glyph codec for LLM text.
///
/// With no subcommand, `sigma [FILE]` compresses FILE to FILE.sgm and `sigma -d [FILE.sgm]`
/// decompresses it, like zstd. Without FILE (or with `-`), standard input is coded to standard
/// output.
#[derive(Parser, Debug)]
#[command(
    name = "sigma",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Exit status: 0 on success, 1 on any error."
)]
pub struct Cli {
    /// The command to run; compresses (or, with -d, decompresses) when absent.
    #[command(subcommand)]
    pub command: Option<Command>,

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

/// The subcommands of `sigma`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compress FILE to FILE.sgm (or standard input to standard output).
    Compress(CodecArgs),
    /// Decompress FILE.sgm to FILE (or standard input to standard output).
    Decompress(CodecArgs),
    /// Print the semantic glyph tree of a text.
    Inspect(InspectArgs),
    /// Compress, decompress and verify a built-in sample (or FILE), and report the numbers.
    Demo(DemoArgs),
    /// Train a codebook (MODEL) on a corpus, for use with -m.
    Train(TrainArgs),
    /// Pack the string field of every JSONL line into a record archive.
    Pack(PackArgs),
    /// Write an archive's records back as JSONL.
    Unpack(UnpackArgs),
    /// Print one record of an archive, decoding only the records it depends on.
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
    /// Input file; `-` or nothing reads standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Write the output to OUT (`-` for standard output).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Code with the codebook in MODEL (made by `sigma train`) instead of the built-in one.
    /// Decompressing needs the codebook the stream was made with.
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// Write the output to standard output.
    #[arg(short = 'c', long = "stdout", conflicts_with = "output")]
    pub stdout: bool,

    /// Keep the input file (the default: inputs are never deleted unless --rm is given).
    #[arg(short = 'k', long = "keep")]
    pub keep: bool,

    /// Delete the input file once the output is fully written, synced and (for compression)
    /// verified by decoding it back.
    #[arg(long = "rm", conflicts_with = "keep")]
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

    /// Work on N threads (0: one per core): compression codes 1 MiB chunks while the input is
    /// read, decompression decodes chunks read ahead while the output is written. The output
    /// does not depend on N.
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Turn the encoders' buffer pools off (every buffer is allocated and freed per use), for
    /// comparisons; the output is the same.
    #[arg(long)]
    pub no_pool: bool,
}

/// Options of `sigma inspect`.
#[derive(Args, Debug, Clone, Default)]
pub struct InspectArgs {
    /// Text to parse; `-` or nothing reads standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Print the tree as JSON instead of indented lines.
    #[arg(long)]
    pub json: bool,

    /// Show nodes only down to depth N (the root is depth 0).
    #[arg(long, value_name = "N")]
    pub max_depth: Option<usize>,
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

    /// The string field of every line that becomes a record.
    #[arg(long, value_name = "NAME", default_value = "text")]
    pub field: String,

    /// Code with the codebook in MODEL instead of the built-in one.
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// Key contexts by this JSON field (e.g. `conversation`): each record is coded against the
    /// earlier records with the same value. Without it, against the records just before it.
    #[arg(long, value_name = "FIELD")]
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

    /// Code records on N worker threads, in batches of 1024 records or 1 MiB (0: one per
    /// core). The archive does not depend on N.
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Turn the encoders' buffer pools off (every buffer is allocated and freed per use), for
    /// comparisons; the archive is the same.
    #[arg(long)]
    pub no_pool: bool,

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
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

/// Options of `sigma get`.
#[derive(Args, Debug, Clone)]
pub struct GetArgs {
    /// The archive (a file: it is read with random access).
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,

    /// The record's number, counting from 0.
    #[arg(value_name = "N")]
    pub index: u64,

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
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0)]
    pub threads: usize,
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
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0)]
    pub threads: usize,
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

    /// Turn the encoder's buffer pool off (every buffer is allocated and freed per use).
    #[arg(long)]
    pub no_pool: bool,

    /// Print nothing on standard error (no progress bar).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    // Every value that owns a temporary file is dropped inside `run`, so temporary files are
    // removed before the process exits.
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_silent() {
                eprintln!("sigma: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs the command `cli` names.
fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Some(Command::Compress(args)) => commands::codec::compress(&args),
        Some(Command::Decompress(args)) => commands::codec::decompress(&args),
        Some(Command::Inspect(args)) => commands::inspect::run(&args),
        Some(Command::Demo(args)) => commands::demo::run(&args),
        Some(Command::Train(args)) => commands::train::run(&args),
        Some(Command::Pack(args)) => commands::archive::pack(&args),
        Some(Command::Unpack(args)) => commands::archive::unpack(&args),
        Some(Command::Get(args)) => commands::archive::get(&args),
        Some(Command::Ls(args)) => commands::ls::run(&args),
        Some(Command::Verify(args)) => commands::verify::run(&args),
        Some(Command::Stats(args)) => commands::stats::run(&args),
        None if cli.decompress => commands::codec::decompress(&cli.codec),
        None => commands::codec::compress(&cli.codec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn top_level_shortcuts() {
        let cli = Cli::try_parse_from(["sigma", "-d", "x.sgm"]).unwrap();
        assert!(cli.command.is_none() && cli.decompress);
        assert_eq!(cli.codec.file, Some(PathBuf::from("x.sgm")));
        let cli = Cli::try_parse_from(["sigma", "compress", "-c", "x"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Compress(ref a)) if a.stdout));
        assert!(Cli::try_parse_from(["sigma", "-k", "--rm", "x"]).is_err());
        assert!(Cli::try_parse_from(["sigma", "-c", "-o", "y", "x"]).is_err());
        let cli = Cli::try_parse_from(["sigma", "-d", "-m", "m.sgcb", "x.sgm"]).unwrap();
        assert_eq!(cli.codec.model, Some(PathBuf::from("m.sgcb")));
    }

    #[test]
    fn archive_commands() {
        let cli = Cli::try_parse_from(["sigma", "pack", "-o", "a.sga", "in.jsonl"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Pack(ref a)) if a.field == "text"));
        assert!(
            Cli::try_parse_from(["sigma", "pack", "in.jsonl"]).is_err(),
            "-o is required"
        );
        let cli = Cli::try_parse_from(["sigma", "get", "--raw", "a.sga", "3"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Get(ref a)) if a.index == 3 && a.raw));
        assert!(Cli::try_parse_from(["sigma", "get", "a.sga", "-1"]).is_err());
        let cli = Cli::try_parse_from(["sigma", "train", "--format", "lines", "-o", "m", "a", "b"])
            .unwrap();
        assert!(
            matches!(cli.command, Some(Command::Train(ref a)) if a.files.len() == 2
                && a.format == RecordFormat::Lines)
        );
        assert!(
            Cli::try_parse_from(["sigma", "train", "-o", "m"]).is_err(),
            "FILE is required"
        );
    }

    #[test]
    fn listing_and_checking_commands() {
        let cli = Cli::try_parse_from(["sigma", "ls", "--json", "-m", "m", "a.sga"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Ls(ref a)) if a.json && a.model.is_some()));
        let cli = Cli::try_parse_from(["sigma", "verify", "-q", "x.sgm"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Verify(ref a)) if a.quiet));
        assert!(
            Cli::try_parse_from(["sigma", "verify"]).is_err(),
            "FILE is required"
        );
        let cli = Cli::try_parse_from(["sigma", "unpack", "--salvage", "a.sga"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Unpack(ref a)) if a.salvage));
        let cli = Cli::try_parse_from(["sigma", "get", "-v", "a.sga", "0"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Get(ref a)) if a.verbose));
    }

    #[test]
    fn threads_pooling_and_stats() {
        let cli = Cli::try_parse_from(["sigma", "-T", "3", "x"]).unwrap();
        assert_eq!(cli.codec.threads, 3);
        let cli = Cli::try_parse_from(["sigma", "x"]).unwrap();
        assert_eq!(cli.codec.threads, 0, "all cores by default");
        let cli = Cli::try_parse_from(["sigma", "compress", "--threads", "2", "x"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Compress(ref a)) if a.threads == 2));
        assert!(Cli::try_parse_from(["sigma", "-T", "-1", "x"]).is_err());
        let cli =
            Cli::try_parse_from(["sigma", "pack", "-T", "1", "--no-pool", "-o", "a", "i"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Pack(ref a)) if a.threads == 1 && a.no_pool));
        let cli = Cli::try_parse_from(["sigma", "pack", "-o", "a", "i"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Pack(ref a)) if a.threads == 0 && !a.no_pool));
        let cli = Cli::try_parse_from([
            "sigma",
            "stats",
            "--json",
            "--no-pool",
            "--context-key",
            "conversation",
            "in.jsonl",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Stats(ref a))
            if a.json && a.no_pool && a.field == "text"
                && a.context_key.as_deref() == Some("conversation")));
        assert!(
            Cli::try_parse_from(["sigma", "stats"]).is_err(),
            "FILE is required"
        );
    }
}
