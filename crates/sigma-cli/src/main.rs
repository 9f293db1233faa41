//! `sigma`: the command-line tool of the SigmaLang codec.
//!
//! It behaves like the usual compression tools (zstd, xz): `sigma FILE` writes `FILE.sgm`,
//! `sigma -d FILE.sgm` writes `FILE`, standard input goes to standard output, inputs are never
//! touched, outputs are never overwritten without `-f` and never left half-written.
//!
//! This file only parses arguments and dispatches; the work is done in [`commands`], with the
//! input/output plumbing in [`io`].

#![forbid(unsafe_code)]

mod commands;
mod error;
mod format;
mod io;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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
    }
}
