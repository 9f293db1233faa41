//! `sigma verify`: decode a whole archive or stream and check every checksum.
//!
//! The file's header says what it is. An archive is decoded record by record
//! ([`ArchiveReader::walk_parallel`](sigmalang::ArchiveReader::walk_parallel), on `-T`
//! threads), which checks every block's
//! payload and content checksums and goes on past damage: each damaged record gets a line
//! `record N: WHAT` on standard output. A stream is decoded to nowhere, which checks every chunk
//! and the trailer; its first error ends the check. Either way the command prints `OK: ...`
//! (unless `-q`) and exits 0 if everything decoded, and exits 1 otherwise.

use std::io::{self, BufReader, Cursor, Read, Write};
use std::path::Path;

use sigmalang::internals::io::read_full;
use sigmalang::stream::{FileHeader, FileKind, HEADER_LEN};
use sigmalang::{StreamOptions, StreamReader};

use crate::commands::archive::{open_archive, Opened};
use crate::commands::codec::{not_sigmalang, stream_codebook};
use crate::error::{one_line, CliError};
use crate::io::{Input, BUF_SIZE, STDIN_LABEL, STDOUT_LABEL};
use crate::limits::limit_stream;
use crate::progress::{self, ProgressReader, SHOW_AFTER};
use crate::VerifyArgs;

/// Runs `sigma verify`.
pub fn run(args: &VerifyArgs) -> Result<(), CliError> {
    let input = Input::from_arg(Some(&args.file));
    let label = input.label();
    if input.is_terminal() {
        return Err(CliError::new(
            STDIN_LABEL,
            "refusing to read compressed data from a terminal",
        ));
    }
    let opened = input.open()?;
    let progress = ProgressReader::new(opened.reader, opened.len, args.quiet);
    let consumed = progress.counter();
    let mut buffered = BufReader::with_capacity(BUF_SIZE, progress);
    let mut head = vec![0u8; HEADER_LEN];
    let n = read_full(&mut buffered, &mut head).map_err(|e| CliError::new(&label, e))?;
    head.truncate(n);
    if let Some(e) = not_sigmalang(&head, &label, "file") {
        return Err(e);
    }
    let header = FileHeader::parse(&head).map_err(|e| CliError::codec(&label, e))?;
    match (header.kind, input.path()) {
        (FileKind::Archive, Some(path)) => {
            drop(buffered);
            verify_archive(path, args)
        }
        (FileKind::Archive, None) => Err(CliError::new(
            &label,
            "an archive must be a file (it is read with random access)",
        )),
        (FileKind::Stream, _) => {
            let codebook = stream_codebook(&head, args.model.as_deref(), &label)?;
            let reader = StreamReader::with_options(
                Cursor::new(head).chain(buffered),
                codebook,
                StreamOptions::default().threads(args.threads),
            )
            .map_err(|e| CliError::new("--threads", e))?;
            let mut reader = limit_stream(reader, args.memory);
            let decoded = io::copy(&mut reader, &mut io::sink())
                .map_err(|e| CliError::codec_io(&label, e))?;
            drop(reader); // clears the progress bar
            report_ok(
                args.quiet,
                &format!(
                    "OK: stream, {decoded} bytes decoded from {} bytes",
                    consumed.position()
                ),
            )
        }
    }
}

/// Verifies the archive `path`: one line per damaged record on standard output.
fn verify_archive(path: &Path, args: &VerifyArgs) -> Result<(), CliError> {
    let Opened {
        mut reader,
        label,
        file_len,
        ..
    } = open_archive(path, args.model.as_deref(), args.memory)?;
    let count = reader.len();
    let bar = progress::step_bar(
        count,
        "{pos:>9}/{len} records [{bar:30}] {per_sec:>11}  ETA {eta}",
        progress::allowed(args.quiet) && file_len > SHOW_AFTER,
    );
    let mut seen: Option<u64> = None;
    let mut decoded = 0u64;
    let mut damage = Vec::new();
    let mut refused = None;
    let reopen = || std::fs::File::open(path);
    let failed = reader
        .walk_parallel(reopen, args.threads, |n, record| {
            if seen.map_or(true, |s| n > s) {
                seen = Some(n);
                bar.inc(1);
            }
            match record {
                Ok(bytes) => decoded += bytes.len() as u64,
                // Not damage: the archive needs more memory than --memory allows.
                Err(e) if matches!(e.kind(), sigmalang::ErrorKind::MemoryLimit { .. }) => {
                    refused = Some(e);
                    return std::ops::ControlFlow::Break(());
                }
                Err(e) => damage.push(format!("record {n}: {}", one_line(&e.to_string()))),
            }
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| CliError::codec(&label, e))?;
    bar.finish_and_clear();
    if let Some(e) = refused {
        return Err(CliError::codec(&label, e));
    }
    if failed == 0 {
        return report_ok(
            args.quiet,
            &format!("OK: {count} records, {decoded} bytes decoded from {file_len} archive bytes"),
        );
    }
    let mut out = io::stdout().lock();
    damage
        .iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .and_then(|()| out.flush())
        .map_err(|e| CliError::write(STDOUT_LABEL, e, true))?;
    Err(CliError::new(
        label,
        format!("{failed} of {count} records are damaged"),
    ))
}

/// Prints `line` on standard output unless `quiet`.
fn report_ok(quiet: bool, line: &str) -> Result<(), CliError> {
    if quiet {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::write(STDOUT_LABEL, e, true))
}
