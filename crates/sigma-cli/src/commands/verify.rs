//! `sigma verify`: decode a whole archive or stream and check every checksum.
//!
//! The file's header says what it is. An archive is decoded record by record
//! ([`ArchiveReader::walk_parallel`](sigmalang::ArchiveReader::walk_parallel), on `-T`
//! threads), which checks every block's
//! payload and content checksums and goes on past damage: each cause of damage (a damaged
//! block, or the primer) gets a line on standard output naming the records it breaks (`record
//! N: WHAT`, or `records 96-111, 130: WHAT`). A stream is decoded to nowhere, which checks every chunk
//! and the trailer; its first error ends the check. Either way the command prints `OK: ...`
//! (unless `-q`) and exits 0 if everything decoded, and exits 1 otherwise.

use std::collections::HashMap;
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

/// Verifies the archive `path`: one line per cause of damage on standard output.
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
                Err(e) => damage.push((n, e)),
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
    damage_lines(&damage)
        .iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .and_then(|()| out.flush())
        .map_err(|e| CliError::write(STDOUT_LABEL, e, true))?;
    Err(CliError::new(
        label,
        format!("{failed} of {count} records are damaged"),
    ))
}

/// The lines that name the damage: one per cause, so that a damaged primer or block does not
/// print a line for every record that depends on it. Records fail for the same cause when their
/// errors are of the same kind at the same byte (a record's error names the record it depends on
/// in its context, which differs); the line names the records (`record 7: ...`, or `records
/// 96-111, 130: ...` as ranges in record order) and gives the first one's message, which is the
/// damaged record's own unless it is the primer.
fn damage_lines(damage: &[(u64, sigmalang::Error)]) -> Vec<String> {
    let mut causes: Vec<(Vec<u64>, String)> = Vec::new();
    let mut by_cause: HashMap<(String, Option<u64>), usize> = HashMap::new();
    for (n, e) in damage {
        let k = *by_cause
            .entry((e.kind().to_string(), e.offset()))
            .or_insert_with(|| {
                causes.push((Vec::new(), one_line(&e.to_string())));
                causes.len() - 1
            });
        causes[k].0.push(*n);
    }
    causes
        .into_iter()
        .map(|(records, message)| match records[..] {
            [n] => format!("record {n}: {message}"),
            _ => format!("records {}: {message}", ranges(&records)),
        })
        .collect()
}

/// `records` (ascending) as ranges: `3-7, 9, 12-13`.
fn ranges(records: &[u64]) -> String {
    let mut out = String::new();
    let mut k = 0;
    while k < records.len() {
        let mut end = k;
        while end + 1 < records.len() && records[end + 1] == records[end] + 1 {
            end += 1;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&records[k].to_string());
        if end > k {
            out.push_str(&format!("-{}", records[end]));
        }
        k = end + 1;
    }
    out
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
