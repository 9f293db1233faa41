//! `sigma pack`, `sigma unpack` and `sigma get`: record archives of JSON Lines.
//!
//! `pack` stores every line of its input as one record, byte for byte with its line ending
//! (the archive's metadata says `records=lines`, see [`Records`]), so `unpack` writes the input
//! back exactly and `get` prints one line exactly. Lines that are not JSON objects are stored
//! as they are and counted in one warning (`--strict` refuses them). With `--field NAME`, `pack`
//! stores only that string field of every line instead (`field=NAME`, as archives of earlier
//! versions do), and `unpack` writes each record back as `{"NAME": "TEXT"}`.
//!
//! `unpack` decodes the archive in one pass (`ArchiveReader::walk_parallel`, runs of blocks on
//! `-T` threads), which checks every block and, with `--salvage`, goes on past damaged records.
//! `get` decodes one record, reading only the blocks of the records it depends on.
//!
//! `pack` codes records in batches of [`PACK_BATCH_RECORDS`] records or [`PACK_BATCH_BYTES`]
//! bytes on `-T` worker threads; the archive depends on the batch limits, never on the number
//! of threads.
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use indicatif::ProgressBar;
use sigmalang::archive::sample::default_primer;
use sigmalang::internals::io::read_full;
use sigmalang::stream::{FileHeader, FileKind, HEADER_LEN};
use sigmalang::{ArchiveOptions, GroupOptions};
use sigmalang::{ArchiveReader, ArchiveWriter};

use super::encoder_config;

use crate::commands::codec::not_sigmalang;
use crate::error::{one_line, CliError};
use crate::format::{mb_per_s, ratio};
use crate::io::{label, named_target, Input, Output, Target, STDOUT_LABEL};
use crate::jsonl::{open_lines, open_records, FieldPath, InputLines, Odd, RecordLines};
use crate::limits::{limit_archive, BlockSize, MemoryLimit};
use crate::model::Model;
use crate::progress::{self, SHOW_AFTER};
use crate::sample::{sample_file, Take};
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

/// Checks a `--field` name: any non-empty name can be stored (see [`metadata`]).
pub fn check_field(field: &str) -> Result<(), CliError> {
    if field.is_empty() {
        return Err(CliError::new("--field", "the field name must not be empty"));
    }
    Ok(())
}

/// What an archive's records are, as its metadata says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Records {
    /// Whole input lines with their line endings (`records=lines`); `key` is the field path
    /// the records were grouped by (`key=PATH`), if any.
    Lines {
        /// The `--context-key` path.
        key: Option<String>,
    },
    /// The string value of one field of every line (`field=NAME`): archives packed with
    /// `--field`, and every archive of earlier versions (which name `text` or nothing).
    Field(String),
}

impl Records {
    /// The archive's metadata: `records=lines\n` or `field=NAME\n`, then `key=PATH\n` if
    /// records are grouped (see [`meta_line`]).
    pub fn metadata(&self, key: Option<&str>) -> String {
        let mut m = match self {
            Records::Lines { .. } => meta_line("records", "lines"),
            Records::Field(field) => meta_line("field", field),
        };
        if let Some(key) = key {
            m.push_str(&meta_line("key", key));
        }
        m
    }

    /// What the metadata `metadata` says; an archive that names nothing holds the field
    /// [`DEFAULT_FIELD`].
    pub fn of(metadata: &[u8]) -> Records {
        if meta_value(metadata, "records").as_deref() == Some("lines") {
            Records::Lines {
                key: meta_value(metadata, "key"),
            }
        } else {
            Records::Field(field_of(metadata).unwrap_or_else(|| DEFAULT_FIELD.to_string()))
        }
    }
}

/// One line of metadata: `NAME=VALUE\n`, where VALUE is every byte up to the line feed (so
/// `\r`, `=` and any other character are part of it); a value holding a line feed is stored as
/// a JSON string instead, `NAME.json="VALUE"\n`, which has none.
pub fn meta_line(name: &str, value: &str) -> String {
    if value.contains('\n') {
        format!("{name}.json={}\n", serde_json::Value::from(value))
    } else {
        format!("{name}={value}\n")
    }
}

/// The value of `name` in the metadata (see [`meta_line`]), if any. Lines end at a line feed
/// only: a carriage return is part of the value.
pub fn meta_value(metadata: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(metadata).ok()?;
    let plain = format!("{name}=");
    let json = format!("{name}.json=");
    text.split('\n').find_map(|line| {
        if let Some(v) = line.strip_prefix(&json) {
            serde_json::from_str::<String>(v).ok()
        } else {
            line.strip_prefix(&plain).map(str::to_string)
        }
    })
}

/// The archive's metadata for records from the field `field` (see [`meta_line`]); names
/// without a line feed give the same bytes as before the JSON form existed.
pub fn metadata(field: &str) -> String {
    Records::Field(field.to_string()).metadata(None)
}

/// The primer `sigma pack` makes: none with `--no-primer`, `--primer` KiB, or a quarter of the
/// input file (64 KiB to 1 MiB, the library's [`default_primer`]; the default 256 KiB when its
/// size is not known). `pack` then makes it a quarter of the records' bytes once a sample says
/// how much of a line they are.
fn primer_bytes(args: &PackArgs, input: &Input) -> usize {
    if args.no_primer {
        return 0;
    }
    if let Some(kib) = args.primer {
        return kib as usize * 1024;
    }
    let size = input
        .path()
        .and_then(|p| std::fs::metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len());
    match size {
        Some(len) => default_primer(len),
        None => sigmalang::archive::DEFAULT_PRIMER_BYTES,
    }
}

/// Runs `sigma pack`.
pub fn pack(args: &PackArgs) -> Result<(), CliError> {
    if let Some(field) = &args.field {
        check_field(field)?;
    }
    let key = args
        .context_key
        .as_deref()
        .map(|k| FieldPath::parse(k, "--context-key"))
        .transpose()?;
    let input = Input::from_arg(args.file.as_deref());
    let target = named_target(&args.output, input.path(), args.force, true)?;
    let model = Model::load_or_builtin(args.model.as_deref())?;
    let in_label = input.label();
    let records = match &args.field {
        Some(field) => Records::Field(field.clone()),
        None => Records::Lines {
            key: args.context_key.clone(),
        },
    };
    let mut source = match &args.field {
        Some(field) => {
            let (lines, bar) = open_records(&input, field, key, args.quiet)?;
            Source::Field(lines, bar)
        }
        None => {
            let (lines, bar) = open_lines(&input, key, args.quiet)?;
            Source::Lines(lines, bar, OddLines::default())
        }
    };
    // After the codebook is loaded: speeds are the coding's.
    let started = Instant::now();

    let output = Output::create(&target, args.force, None)?;
    let out_label = output.label().to_string();
    let is_stdout = output.is_stdout();
    let write_err = |e: sigmalang::Error| CliError::write(&out_label, e.into(), is_stdout);
    let metadata = records.metadata(args.context_key.as_deref());
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
        .coder(encoder_config(args.no_pool))
        .json_lines(matches!(records, Records::Lines { .. }) && !args.no_json_form)
        .primer(primer_bytes(args, &input))
        .page_bytes(match args.block {
            BlockSize::Bytes(n) => n,
            BlockSize::Auto(_) => 0,
        })
        .auto_pages(match args.block {
            BlockSize::Auto(n) => n,
            BlockSize::Bytes(_) => 0,
        })
        .infer_groups(!args.no_infer)
        .coded_index(!args.no_coded_index);
    let threads = opts.worker_count();
    // A regular file's primer is sampled from all of it (standard input's is its first
    // records, as the writer takes them).
    let mut opts = opts;
    let sample = match input
        .path()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
    {
        Some(path) if opts.get_primer() > 0 => {
            let take = match &args.field {
                Some(field) => Take::Field(field),
                None => Take::Lines,
            };
            let key = args
                .context_key
                .as_deref()
                .map(|k| FieldPath::parse(k, "--context-key"))
                .transpose()?;
            let sample = |primer| sample_file(path, &in_label, take, key.as_ref(), primer);
            let mut got = sample(opts.get_primer())?;
            if args.primer.is_none() {
                // The default share is of the records' bytes: with --field, of the text (the
                // sampled lines say how much of a line it is).
                let len = std::fs::metadata(path).map_or(0, |m| m.len());
                let share = got.record_bytes() as f64 / got.line_bytes.max(1) as f64;
                let primer = default_primer((len as f64 * share.min(1.0)) as u64);
                if primer < opts.get_primer() * 9 / 10 {
                    opts = opts.primer(primer);
                    got = sample(primer)?;
                }
            }
            Some(got.records)
        }
        _ => None,
    };
    let mut archive = match &sample {
        Some(sample) => ArchiveWriter::with_primer_sample(
            output,
            model.codebook.clone(),
            metadata.as_bytes(),
            opts,
            sample.iter().map(|(k, r)| (k.as_deref(), &r[..])),
        ),
        None => {
            ArchiveWriter::with_options(output, model.codebook.clone(), metadata.as_bytes(), opts)
        }
    }
    .map_err(|e| CliError::new("pack", e))?;
    drop(sample);
    let bar = match &mut source {
        Source::Field(lines, bar) => {
            while let Some(text) = lines.next_text()? {
                let key = lines.key().map(str::as_bytes);
                archive
                    .add_in_group(key, text.as_bytes())
                    .map_err(write_err)?;
                if archive.len() % COUNT_EVERY == 0 {
                    bar.set_message(archive.len().to_string());
                }
            }
            bar.clone()
        }
        Source::Lines(lines, bar, odd) => {
            while let Some(line) = lines.next_line()? {
                if let Some(why) = &line.odd {
                    if args.strict {
                        // FILE:LINE:COLUMN for every kind of odd line.
                        let (column, message) = (why.column(line.bytes), why.message());
                        let position = format!("{}:{column}", lines.position());
                        return Err(CliError::new(position, message));
                    }
                    odd.count(why, archive.len() + 1);
                }
                let key = line.key.as_deref().map(str::as_bytes);
                archive.add_in_group(key, line.bytes).map_err(write_err)?;
                if archive.len() % COUNT_EVERY == 0 {
                    bar.set_message(archive.len().to_string());
                }
            }
            bar.clone()
        }
    };
    let odd = match source {
        Source::Lines(_, _, odd) => odd,
        Source::Field(..) => OddLines::default(), // drops the reader: clears the progress bar
    };
    archive.flush().map_err(write_err)?; // codes the last batch: the counts below include it
    let count = archive.len();
    let text_bytes = archive.bytes_in();
    // Every byte of the input went through the bar's counter by now (the reader hit its end).
    let file_bytes = bar.position();
    let output = archive.finish().map_err(write_err)?;
    let finished = output.finish()?;
    let bytes_out = finished.written();
    finished.persist(false)?;
    let elapsed = started.elapsed();

    if odd.total > 0 && !args.quiet {
        eprintln!("sigma: {in_label}: {}", odd.summary());
    }
    if args.verbose {
        let text = match records {
            Records::Field(_) => format!(
                " ({text_bytes} bytes of text: ratio {:.2})",
                ratio(text_bytes, bytes_out)
            ),
            Records::Lines { .. } => String::new(),
        };
        eprintln!(
            "sigma: {in_label} -> {out_label}: {count} records, {file_bytes} -> {bytes_out} \
             bytes, ratio {:.2}{text}, {:.1} MB/s (codebook: {}; {threads} thread{})",
            ratio(file_bytes, bytes_out),
            mb_per_s(file_bytes, elapsed),
            model.describe(),
            if threads == 1 { "" } else { "s" },
        );
    }
    Ok(())
}

/// Where `pack` takes its records from.
enum Source {
    /// One string field of every line (`--field`).
    Field(RecordLines, ProgressBar),
    /// Whole lines, and the count of those that are not JSON objects.
    Lines(InputLines, ProgressBar, OddLines),
}

/// The lines `pack` stored although they are not JSON objects, by kind, for one warning.
#[derive(Default)]
struct OddLines {
    total: u64,
    /// (kind, count), in the order first seen.
    kinds: Vec<(&'static str, u64)>,
    /// The first such line's number (from 1).
    first: Option<u64>,
}

impl OddLines {
    fn count(&mut self, why: &Odd, line: u64) {
        self.total += 1;
        self.first.get_or_insert(line);
        match self.kinds.iter_mut().find(|(k, _)| *k == why.name()) {
            Some((_, n)) => *n += 1,
            None => self.kinds.push((why.name(), 1)),
        }
    }

    /// The warning: `3 lines are not JSON objects (2 blank, 1 not JSON; the first is line 7);
    /// they were stored as they are (--strict refuses them)`.
    fn summary(&self) -> String {
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let (lines, are) = if self.total == 1 {
            ("line is", "it was")
        } else {
            ("lines are", "they were")
        };
        format!(
            "{} {lines} not JSON objects ({}; the first is line {}); {are} stored as {} \
             (--strict refuses them)",
            self.total,
            kinds.join(", "),
            self.first.unwrap_or(0),
            if self.total == 1 { "it is" } else { "they are" },
        )
    }
}

/// An archive opened for reading, with the codebook it needs.
pub struct Opened {
    /// The reader, with its codebook set.
    pub reader: ArchiveReader<File>,
    /// The archive's name in messages.
    pub label: String,
    /// What its records are.
    pub records: Records,
    /// The archive's size in bytes.
    pub file_len: u64,
    /// The codebook it is decoded with.
    pub model: Model,
}

/// Opens the archive `path` and gives it its codebook (MODEL if given, else the built-in one)
/// and the memory limit. A file that is not an archive is named for what it is.
pub fn open_archive(
    path: &Path,
    model: Option<&Path>,
    memory: MemoryLimit,
) -> Result<Opened, CliError> {
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
    let mut file = file;
    let mut head = vec![0u8; HEADER_LEN];
    let n = read_full(&mut file, &mut head).map_err(|e| CliError::new(&subject, e))?;
    head.truncate(n);
    if let Some(e) = not_sigmalang(&head, &subject, "archive") {
        return Err(e);
    }
    if FileHeader::parse(&head).is_ok_and(|h| h.kind == FileKind::Stream) {
        return Err(CliError::new(
            &subject,
            "is a SigmaLang stream, not an archive: `sigma -d` decompresses it",
        ));
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| CliError::new(&subject, e))?;
    let reader = ArchiveReader::open(file).map_err(|e| CliError::codec(&subject, e))?;
    let mut reader = limit_archive(reader, memory);
    let model = Model::for_decoding(reader.header().codebook, model, "archive", &subject)?;
    reader
        .set_codebook(model.codebook.clone())
        .map_err(|e| CliError::codec(&subject, e))?;
    let records = Records::of(reader.metadata());
    Ok(Opened {
        reader,
        label: subject,
        records,
        file_len: meta.len(),
        model,
    })
}

/// The field named by an archive's metadata (see [`metadata`]), if any.
pub fn field_of(metadata: &[u8]) -> Option<String> {
    meta_value(metadata, "field")
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
        records,
        file_len,
        ..
    } = open_archive(&args.archive, args.model.as_deref(), args.memory)?;
    let write = Writing::new(&records, args.field.as_deref(), &in_label)?;
    let started = Instant::now();
    let count = reader.len();
    let bar = progress::step_bar(
        count,
        "{pos:>9}/{len} records [{bar:30}] {per_sec:>11}  ETA {eta}",
        progress::allowed(args.quiet) && file_len > SHOW_AFTER,
    );

    let output = Output::create(&target, args.force, None)?;
    let mut job = Unpacking {
        out_label: output.label().to_string(),
        output,
        write,
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
    /// How a record is written.
    write: Writing,
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
        // A record refused for the memory it needs is not damage: the command stops and says
        // what --memory to pass, with or without --salvage.
        let record = match record {
            Err(e) if matches!(e.kind(), sigmalang::ErrorKind::MemoryLimit { .. }) => {
                self.failure = Some(CliError::codec(&self.label, e));
                return;
            }
            other => other,
        };
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
        let written = match &self.write {
            Writing::Lines => self.output.write_all(record),
            Writing::Value(path) => write_value(&mut self.output, path, record),
            Writing::Field(key) => {
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
                write_line(&mut self.output, key, text)
            }
        };
        match written {
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

/// How `unpack` writes each record.
enum Writing {
    /// As it is: a whole line with its line ending.
    Lines,
    /// The JSON value at a field path of a whole-line record, and a newline (`--field`).
    Value(FieldPath),
    /// `{KEY: "TEXT"}` and a newline, where KEY is the field name as a JSON string: the
    /// records of an archive of one field.
    Field(String),
}

impl Writing {
    /// How to write the records of an archive of `records`, with `--field` if given.
    fn new(records: &Records, field: Option<&str>, label: &str) -> Result<Writing, CliError> {
        match (records, field) {
            (Records::Lines { .. }, None) => Ok(Writing::Lines),
            (Records::Lines { .. }, Some(path)) => {
                Ok(Writing::Value(FieldPath::parse(path, "--field")?))
            }
            (Records::Field(stored), asked) => {
                if let Some(asked) = asked.filter(|a| *a != stored) {
                    return Err(CliError::new(
                        label,
                        format!(
                            "the archive holds only the field {} of every line, not {}",
                            serde_json::Value::from(stored.as_str()),
                            serde_json::Value::from(asked)
                        ),
                    ));
                }
                let key = serde_json::to_string(stored).map_err(|e| CliError::new(label, e))?;
                Ok(Writing::Field(key))
            }
        }
    }
}

/// Writes the JSON text of the value at `path` in the whole-line record `record` and a
/// newline: `null` if the record is not a JSON object with such a field.
fn write_value(out: &mut impl Write, path: &FieldPath, record: &[u8]) -> io::Result<()> {
    match path.find_in_line(record) {
        Some(value) => serde_json::to_writer(&mut *out, &value)?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b"\n")
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
        records,
        ..
    } = open_archive(&args.archive, args.model.as_deref(), args.memory)?;
    let field = args
        .field
        .as_deref()
        .map(|f| FieldPath::parse(f, "--field"))
        .transpose()?;
    let count = reader.len();
    // Every number is checked before anything is printed.
    if let Some(&(_, n)) = args.records.iter().find(|&&(_, last)| last >= count) {
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
    if let Some(asked) = field.as_ref() {
        if let Records::Field(stored) = &records {
            if asked.as_str() != stored {
                return Err(CliError::new(
                    &in_label,
                    format!(
                        "the archive holds only the field {} of every line, not {}",
                        serde_json::Value::from(stored.as_str()),
                        serde_json::Value::from(asked.as_str())
                    ),
                ));
            }
        }
    }
    let mut out = io::stdout().lock();
    for n in args.records.iter().flat_map(|&(a, b)| a..=b) {
        let started = Instant::now();
        let mut record = reader.get(n).map_err(|e| CliError::codec(&in_label, e))?;
        let elapsed = started.elapsed();
        let decoded = record.len();
        match (&records, &field) {
            // A whole line prints as it is, with its own line ending.
            (Records::Lines { .. }, None) => {}
            (Records::Lines { .. }, Some(path)) => {
                record = match path.find_in_line(&record) {
                    Some(serde_json::Value::String(text)) => text.into_bytes(),
                    Some(value) => value.to_string().into_bytes(),
                    // As `unpack --field` writes it: `null` for a record without the field.
                    None => b"null".to_vec(),
                };
                if !args.raw {
                    record.push(b'\n');
                }
            }
            (Records::Field(_), _) => {
                if !args.raw {
                    record.push(b'\n');
                }
            }
        }
        out.write_all(&record)
            .map_err(|e| CliError::write(STDOUT_LABEL, e, true))?;
        if args.verbose {
            out.flush()
                .map_err(|e| CliError::write(STDOUT_LABEL, e, true))?;
            let level = reader.info(n).map_or("?", |info| info.dependency.name());
            let chain = reader.chain(n);
            let mut references: Vec<u64> = chain
                .iter()
                .flat_map(|&r| reader.references(r).iter().copied())
                .collect();
            references.sort_unstable();
            references.dedup();
            // In block mode a record is decoded with its whole page: name the page, not the
            // record's own (empty) chain.
            let coded_with = match reader.page_of(n) {
                Some(page) => format!("in page {page}"),
                None => format!(
                    "{level}, chain of {} records and {} Σ-bank references",
                    chain.len(),
                    references.len()
                ),
            };
            eprintln!(
                "sigma: {in_label}: record {n}: {coded_with}, {decoded} bytes; read {} bytes of \
                 the archive ({file_len} bytes) in {:.3} ms",
                reader.last_read_bytes(),
                elapsed.as_secs_f64() * 1e3,
            );
        }
    }
    out.flush()
        .map_err(|e| CliError::write(STDOUT_LABEL, e, true))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_from_metadata() {
        let field = |m: &[u8]| field_of(m);
        assert_eq!(field(b"field=text\n").as_deref(), Some("text"));
        assert_eq!(field(b"x=1\nfield=content\n").as_deref(), Some("content"));
        assert_eq!(field(b"field=\n").as_deref(), Some(""));
        assert_eq!(field(b""), None);
        assert_eq!(field(b"\xff"), None);
        // A carriage return is part of the name (`str::lines` would drop it).
        assert_eq!(field(b"field=a\r\n").as_deref(), Some("a\r"));
    }

    #[test]
    fn every_field_name_round_trips() {
        for name in [
            "text", "a\r", "a\nb", "x=y", "=", "\r\n", "field=z", "\"q\"", "é👋",
        ] {
            let m = metadata(name);
            assert_eq!(field_of(m.as_bytes()).as_deref(), Some(name), "{m:?}");
            assert!(m.ends_with('\n') && m.matches('\n').count() == 1, "{m:?}");
        }
        assert_eq!(
            metadata("text"),
            "field=text\n",
            "the stored bytes of plain names"
        );
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
