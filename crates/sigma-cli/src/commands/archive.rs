//! `sigma pack`, `sigma unpack` and `sigma get`: record archives of JSONL chat text.
//!
//! `pack` reads JSONL line by line and stores the string field `--field` of every line as one
//! record; the archive's metadata remembers the field (`field=NAME\n`). `unpack` writes the
//! records back as one JSON object per line, `{"NAME": "TEXT"}`, so every text comes back
//! byte for byte; it decodes the archive in one pass (`ArchiveReader::walk_parallel`, runs of
//! blocks on `-T` threads), which checks every block and, with `--salvage`, goes on past damaged
//! records. `get` decodes one record, reading
//! only the blocks of the records it depends on.
//!
//! `pack` codes records in batches of [`PACK_BATCH_RECORDS`] records or [`PACK_BATCH_BYTES`]
//! bytes on `-T` worker threads; the archive depends on the batch limits, never on the number
//! of threads.
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use indicatif::ProgressBar;
use sigmalang::{ArchiveOptions, GroupOptions};
use sigmalang::{ArchiveReader, ArchiveWriter};

use super::encoder_config;

use crate::error::{one_line, CliError};
use crate::format::{mb_per_s, ratio};
use crate::io::{label, named_target, Input, Output, Target, STDOUT_LABEL};
use crate::jsonl::open_records;
use crate::model::Model;
use crate::progress::{self, SHOW_AFTER};
use crate::{GetArgs, PackArgs, UnpackArgs};

/// The field named when an archive's metadata names none.
pub const DEFAULT_FIELD: &str = "text";

/// How often (in records) `pack` updates the record count on its progress bar.
const COUNT_EVERY: u64 = 64;

/// Records `pack` codes per batch, whatever the number of threads (so that `-T` never changes
/// the archive).
pub const PACK_BATCH_RECORDS: u32 = 1024;
/// A `pack` batch is also full at this many bytes of text (bounds the memory in flight when
/// records are large).
pub const PACK_BATCH_BYTES: usize = 1 << 20;

/// Checks a `--field` name: it is stored in the archive's metadata as a line `field=NAME`.
pub fn check_field(field: &str) -> Result<(), CliError> {
    if field.is_empty() || field.contains('\n') {
        return Err(CliError::new(
            "--field",
            "the field name must be non-empty and on one line",
        ));
    }
    Ok(())
}

/// The archive's metadata for records from the field `field`.
pub fn metadata(field: &str) -> String {
    format!("field={field}\n")
}

/// Runs `sigma pack`.
pub fn pack(args: &PackArgs) -> Result<(), CliError> {
    check_field(&args.field)?;
    let input = Input::from_arg(args.file.as_deref());
    let target = named_target(&args.output, input.path(), args.force, true)?;
    let model = Model::load_or_builtin(args.model.as_deref())?;
    let in_label = input.label();

    let started = Instant::now();
    let (mut lines, bar) = open_records(&input, &args.field, args.context_key.clone(), args.quiet)?;

    let output = Output::create(&target, args.force, None)?;
    let out_label = output.label().to_string();
    let is_stdout = output.is_stdout();
    let write_err = |e: sigmalang::Error| CliError::write(&out_label, e.into(), is_stdout);
    let metadata = metadata(&args.field);
    let context = if args.frames == 0 {
        GroupOptions::none()
    } else {
        GroupOptions::default()
            .keyframe_interval(args.keyframe_interval)
            .keyframes_per_root(args.keyframes_per_root)
            .max_frames(args.frames)
    };
    let opts = ArchiveOptions::default()
        .group(context)
        .bank(if args.frames == 0 {
            0
        } else {
            ArchiveOptions::default().get_bank()
        })
        .batch_records(PACK_BATCH_RECORDS)
        .batch_bytes(PACK_BATCH_BYTES)
        .threads(args.threads)
        .coder(encoder_config(args.no_pool));
    let threads = opts.worker_count();
    let mut archive =
        ArchiveWriter::with_options(output, model.codebook.clone(), metadata.as_bytes(), opts)
            .map_err(|e| CliError::new("pack", e))?;
    while let Some(text) = lines.next_text()? {
        let key = lines.key().map(str::as_bytes);
        archive
            .add_in_group(key, text.as_bytes())
            .map_err(write_err)?;
        if archive.len() % COUNT_EVERY == 0 {
            bar.set_message(archive.len().to_string());
        }
    }
    drop(lines); // clears the progress bar
    archive.flush().map_err(write_err)?; // codes the last batch: the counts below include it
    let records = archive.len();
    let bytes_in = archive.bytes_in();
    let output = archive.finish().map_err(write_err)?;
    let finished = output.finish()?;
    let bytes_out = finished.written();
    finished.persist(false)?;
    let elapsed = started.elapsed();

    if args.verbose {
        eprintln!(
            "sigma: {in_label} -> {out_label}: {records} records, {bytes_in} -> {bytes_out} bytes, \
             ratio {:.2}, {:.1} MB/s (codebook: {}; {threads} thread{})",
            ratio(bytes_in, bytes_out),
            mb_per_s(bytes_in, elapsed),
            model.describe(),
            if threads == 1 { "" } else { "s" },
        );
    }
    Ok(())
}

/// An archive opened for reading, with the codebook it needs.
pub struct Opened {
    /// The reader, with its codebook set.
    pub reader: ArchiveReader<File>,
    /// The archive's name in messages.
    pub label: String,
    /// The JSON field its records came from.
    pub field: String,
    /// The archive's size in bytes.
    pub file_len: u64,
    /// The codebook it is decoded with.
    pub model: Model,
}

/// Opens the archive `path` and gives it its codebook: MODEL if given, else the built-in one.
pub fn open_archive(path: &Path, model: Option<&Path>) -> Result<Opened, CliError> {
    let subject = label(path);
    if path.as_os_str() == "-" {
        return Err(CliError::new(
            crate::io::STDIN_LABEL,
            "an archive must be a file (it is read with random access)",
        ));
    }
    let file = File::open(path).map_err(|e| CliError::new(&subject, e))?;
    let meta = file.metadata().map_err(|e| CliError::new(&subject, e))?;
    if meta.is_dir() {
        return Err(CliError::new(&subject, "is a directory"));
    }
    let mut reader = ArchiveReader::open(file).map_err(|e| CliError::codec(&subject, e))?;
    let model = Model::for_decoding(reader.header().codebook, model, "archive", &subject)?;
    reader
        .set_codebook(model.codebook.clone())
        .map_err(|e| CliError::codec(&subject, e))?;
    let field = field_of(reader.metadata())
        .unwrap_or(DEFAULT_FIELD)
        .to_string();
    Ok(Opened {
        reader,
        label: subject,
        field,
        file_len: meta.len(),
        model,
    })
}

/// The field named by an archive's metadata (`field=NAME` on a line of its own), if any.
pub fn field_of(metadata: &[u8]) -> Option<&str> {
    std::str::from_utf8(metadata)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("field="))
}

/// Runs `sigma unpack`.
///
/// The archive is decoded in one pass ([`ArchiveReader::walk_parallel`]), which reuses decoded records
/// as the frames of later ones and checks every block. Without `--salvage` the first damaged
/// record fails the command and the output file is removed; with it, damaged records are
/// skipped (each named on standard error), the output is kept, and the command still fails if
/// anything was skipped.
pub fn unpack(args: &UnpackArgs) -> Result<(), CliError> {
    let target = match &args.output {
        Some(out) => named_target(out, [args.archive.as_path()], args.force, false)?,
        None => Target::Stdout,
    };
    let Opened {
        mut reader,
        label: in_label,
        field,
        file_len,
        ..
    } = open_archive(&args.archive, args.model.as_deref())?;
    let started = Instant::now();
    let count = reader.len();
    let bar = progress::step_bar(
        count,
        "{pos:>9}/{len} records [{bar:30}] {per_sec:>11}  ETA {eta}",
        progress::allowed(args.quiet) && file_len > SHOW_AFTER,
    );

    let output = Output::create(&target, args.force, None)?;
    let key = serde_json::to_string(&field).map_err(|e| CliError::new(&in_label, e))?;
    let mut job = Unpacking {
        out_label: output.label().to_string(),
        output,
        key,
        label: in_label.clone(),
        salvage: args.salvage,
        bar: bar.clone(),
        seen: None,
        written: 0,
        bytes_text: 0,
        skipped: 0,
        damaged_after_write: 0,
        not_text: HashSet::new(),
        failure: None,
    };
    let reopen = || File::open(&args.archive);
    reader
        .walk_parallel(reopen, args.threads, |n, record| {
            job.take(n, record);
            // A failure (damage without --salvage, or the output failing) ends the command:
            // no need to decode the rest.
            if job.failure.is_some() {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .map_err(|e| CliError::codec(&in_label, e))?;
    bar.finish_and_clear();
    if let Some(e) = job.failure {
        return Err(e); // dropping the output removes its temporary file
    }
    let Unpacking {
        output,
        out_label,
        written,
        bytes_text,
        skipped,
        damaged_after_write,
        ..
    } = job;
    let finished = output.finish()?;
    let bytes_out = finished.written();
    finished.persist(false)?;
    if args.verbose {
        eprintln!(
            "sigma: {in_label} -> {out_label}: {written} records, {file_len} -> {bytes_out} bytes \
             ({bytes_text} bytes of text), {:.1} MB/s",
            mb_per_s(bytes_text, started.elapsed()),
        );
    }
    if skipped == 0 && damaged_after_write == 0 {
        return Ok(());
    }
    let mut message = format!(
        "{skipped} of {count} records skipped as damaged; the {written} others were written to \
         {out_label}"
    );
    if damaged_after_write > 0 {
        message.push_str(&format!(
            ", {damaged_after_write} of them failing their block's content checksum"
        ));
    }
    Err(CliError::new(&in_label, message))
}

/// The state of `unpack` while the archive is walked.
struct Unpacking {
    output: Output,
    out_label: String,
    /// The field name as a JSON string.
    key: String,
    /// The archive's name in messages.
    label: String,
    salvage: bool,
    bar: ProgressBar,
    /// The highest record reported so far (the walk reports a record twice when its block's
    /// content checksum fails after it decoded).
    seen: Option<u64>,
    written: u64,
    bytes_text: u64,
    skipped: u64,
    /// Records written before their block's content checksum failed (with `--salvage`).
    damaged_after_write: u64,
    /// Records skipped because they are not UTF-8.
    not_text: HashSet<u64>,
    /// The error that ends the command: any damage without `--salvage`, or a write error.
    failure: Option<CliError>,
}

impl Unpacking {
    /// Takes the walk's report on record `n`.
    fn take(&mut self, n: u64, record: sigmalang::Result<&[u8]>) {
        let first_report = self.seen.map_or(true, |s| n > s);
        if first_report {
            self.seen = Some(n);
            self.bar.inc(1);
        }
        if self.failure.is_some() {
            return;
        }
        let record = match record {
            Ok(record) => record,
            Err(e) if first_report || !self.salvage => {
                let why = e.to_string();
                return self.damaged(n, why.clone(), why);
            }
            Err(e) => {
                // Decoded, then its block's content checksum failed: it is already written
                // (unless it was skipped as not UTF-8).
                if !self.not_text.contains(&n) {
                    self.damaged_after_write += 1;
                    self.bar.suspend(|| {
                        eprintln!(
                            "sigma: {}: record {n} was written but is damaged: {e}",
                            self.label
                        );
                    });
                }
                return;
            }
        };
        let text = match std::str::from_utf8(record) {
            Ok(text) => text,
            Err(e) => {
                let why = format!(
                    "not valid UTF-8 (byte {}), so it cannot be written as JSON \
                     (`sigma get --raw` prints its bytes)",
                    e.valid_up_to()
                );
                self.not_text.insert(n);
                return self.damaged(n, format!("record {n} is {why}"), why);
            }
        };
        match write_line(&mut self.output, &self.key, text) {
            Ok(()) => {
                self.written += 1;
                self.bytes_text += record.len() as u64;
            }
            Err(e) => {
                let is_stdout = self.output.is_stdout();
                self.failure = Some(CliError::write(&self.out_label, e, is_stdout));
            }
        }
    }

    /// Record `n` cannot be written: with `--salvage` it is skipped, named with `why`; else
    /// the command ends with the error `message`.
    fn damaged(&mut self, n: u64, message: String, why: String) {
        if self.salvage {
            self.skipped += 1;
            self.bar.suspend(|| {
                eprintln!(
                    "sigma: {}: skipped record {n}: {}",
                    self.label,
                    one_line(&why)
                );
            });
        } else {
            self.failure = Some(CliError::new(&self.label, message));
        }
    }
}

/// Writes `{KEY: "TEXT"}` and a newline, where `key` is already a JSON string.
fn write_line(out: &mut impl Write, key: &str, text: &str) -> io::Result<()> {
    out.write_all(b"{")?;
    out.write_all(key.as_bytes())?;
    out.write_all(b": ")?;
    serde_json::to_writer(&mut *out, text)?;
    out.write_all(b"}\n")
}

/// Runs `sigma get`.
pub fn get(args: &GetArgs) -> Result<(), CliError> {
    let Opened {
        mut reader,
        label: in_label,
        file_len,
        ..
    } = open_archive(&args.archive, args.model.as_deref())?;
    let count = reader.len();
    let n = args.index;
    if n >= count {
        let range = match count {
            0 => "it holds no records".to_string(),
            1 => "it holds 1 record, numbered 0".to_string(),
            _ => format!("it holds {count} records, numbered 0 to {}", count - 1),
        };
        return Err(CliError::new(
            &in_label,
            format!("there is no record {n}: {range}"),
        ));
    }
    let started = Instant::now();
    let mut record = reader.get(n).map_err(|e| CliError::codec(&in_label, e))?;
    let elapsed = started.elapsed();
    let decoded = record.len();
    if !args.raw {
        record.push(b'\n');
    }
    let mut out = io::stdout().lock();
    out.write_all(&record)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::write(STDOUT_LABEL, e, true))?;
    if args.verbose {
        let level = reader.info(n).map_or("?", |info| info.dependency.name());
        let chain = reader.chain(n);
        let mut references: Vec<u64> = chain
            .iter()
            .flat_map(|&r| reader.references(r).iter().copied())
            .collect();
        references.sort_unstable();
        references.dedup();
        eprintln!(
            "sigma: {in_label}: record {n}: {level}, chain of {} records and {} Σ-bank \
             references, {decoded} bytes; read {} bytes of the archive ({file_len} bytes) in {:.3} ms",
            chain.len(),
            references.len(),
            reader.last_read_bytes(),
            elapsed.as_secs_f64() * 1e3,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_from_metadata() {
        assert_eq!(field_of(b"field=text\n"), Some("text"));
        assert_eq!(field_of(b"x=1\nfield=content\n"), Some("content"));
        assert_eq!(field_of(b"field=\n"), Some(""));
        assert_eq!(field_of(b""), None);
        assert_eq!(field_of(b"\xff"), None);
    }

    #[test]
    fn lines_are_exact_json() {
        let text = "a\"b\\c\n\t\u{0}é👋\u{2028}";
        let mut out = Vec::new();
        write_line(&mut out, "\"text\"", text).unwrap();
        assert!(out.ends_with(b"}\n"));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["text"], text);
    }
}
