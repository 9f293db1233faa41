//! `sigma pack`, `sigma unpack` and `sigma get`: record archives of JSONL chat text.
//!
//! `pack` reads JSONL line by line and stores the string field `--field` of every line as one
//! record; the archive's metadata remembers the field (`field=NAME\n`). `unpack` writes the
//! records back as one JSON object per line, `{"NAME": "TEXT"}`, so every text comes back
//! byte for byte. `get` decodes one record, reading only its block of the archive.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::time::Instant;

use sigmalang::{ArchiveOptions, ContextOptions};
use sigmalang::{ArchiveReader, ArchiveWriter};

use crate::error::CliError;
use crate::format::{mb_per_s, ratio};
use crate::io::{label, named_target, Input, Output, Target, BUF_SIZE, STDOUT_LABEL};
use crate::jsonl::JsonlReader;
use crate::model::Model;
use crate::progress::{self, ProgressReader, SHOW_AFTER};
use crate::{GetArgs, PackArgs, UnpackArgs};

/// The field named when an archive's metadata names none.
pub const DEFAULT_FIELD: &str = "text";

/// How often (in records) `pack` updates the record count on its progress bar.
const COUNT_EVERY: u64 = 64;

/// Runs `sigma pack`.
pub fn pack(args: &PackArgs) -> Result<(), CliError> {
    if args.field.is_empty() || args.field.contains('\n') {
        return Err(CliError::new(
            "--field",
            "the field name must be non-empty and on one line",
        ));
    }
    let input = Input::from_arg(args.file.as_deref());
    let target = named_target(&args.output, input.path(), args.force, true)?;
    let model = Model::load_or_builtin(args.model.as_deref())?;
    let in_label = input.label();

    let opened = input.open()?;
    let started = Instant::now();
    let reader = ProgressReader::new(opened.reader, opened.len, args.quiet).with_records();
    let bar = reader.counter();
    let mut lines = JsonlReader::new(
        BufReader::with_capacity(BUF_SIZE, reader),
        &in_label,
        &args.field,
    )
    .with_key(args.context_key.clone());

    let output = Output::create(&target, args.force, None)?;
    let out_label = output.label().to_string();
    let is_stdout = output.is_stdout();
    let write_err = |e: sigmalang::Error| CliError::write(&out_label, e.into(), is_stdout);
    let metadata = format!("field={}\n", args.field);
    let context = if args.frames == 0 {
        ContextOptions::none()
    } else {
        ContextOptions {
            keyframe_interval: args.keyframe_interval,
            keyframes_per_root: args.keyframes_per_root,
            max_frames: args.frames,
            ..ContextOptions::default()
        }
    };
    let opts = ArchiveOptions {
        context,
        ..ArchiveOptions::default()
    };
    let mut archive =
        ArchiveWriter::with_options(output, model.codebook.clone(), metadata.as_bytes(), opts)
            .map_err(|e| CliError::new("pack", e))?;
    while let Some(text) = lines.next_text()? {
        let key = lines.key().map(str::as_bytes);
        archive
            .add_in_context(key, text.as_bytes())
            .map_err(write_err)?;
        if archive.len() % COUNT_EVERY == 0 {
            bar.set_message(archive.len().to_string());
        }
    }
    drop(lines); // clears the progress bar
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
             ratio {:.2}, {:.1} MB/s (codebook: {})",
            ratio(bytes_in, bytes_out),
            mb_per_s(bytes_in, elapsed),
            model.describe(),
        );
    }
    Ok(())
}

/// An archive opened for reading, with the codebook it needs.
struct Opened {
    reader: ArchiveReader<File>,
    label: String,
    field: String,
    file_len: u64,
}

/// Opens the archive `path` and gives it its codebook: MODEL if given, else the built-in one.
fn open_archive(path: &Path, model: Option<&Path>) -> Result<Opened, CliError> {
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
        .set_codebook(model.codebook)
        .map_err(|e| CliError::codec(&subject, e))?;
    let field = field_of(reader.metadata())
        .unwrap_or(DEFAULT_FIELD)
        .to_string();
    Ok(Opened {
        reader,
        label: subject,
        field,
        file_len: meta.len(),
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
    } = open_archive(&args.archive, args.model.as_deref())?;
    let started = Instant::now();
    let count = reader.len();
    let bar = progress::step_bar(
        count,
        "{pos:>9}/{len} records [{bar:30}] {per_sec:>11}  ETA {eta}",
        progress::allowed(args.quiet) && file_len > SHOW_AFTER,
    );

    let mut output = Output::create(&target, args.force, None)?;
    let out_label = output.label().to_string();
    let is_stdout = output.is_stdout();
    let write_err = |e: io::Error| CliError::write(&out_label, e, is_stdout);
    let key = serde_json::to_string(&field).map_err(|e| CliError::new(&in_label, e))?;
    let mut record = Vec::new();
    let mut bytes_text = 0u64;
    for n in 0..count {
        record.clear();
        reader
            .get_into(n, &mut record)
            .map_err(|e| CliError::codec(&in_label, e))?;
        let text = std::str::from_utf8(&record).map_err(|e| {
            CliError::new(
                &in_label,
                format!(
                    "record {n} is not valid UTF-8 (byte {}), so it cannot be written as JSON \
                     (`sigma get --raw` prints its bytes)",
                    e.valid_up_to()
                ),
            )
        })?;
        bytes_text += record.len() as u64;
        write_line(&mut output, &key, text).map_err(write_err)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let finished = output.finish()?;
    let bytes_out = finished.written();
    finished.persist(false)?;
    if args.verbose {
        eprintln!(
            "sigma: {in_label} -> {out_label}: {count} records, {file_len} -> {bytes_out} bytes \
             ({bytes_text} bytes of text), {:.1} MB/s",
            mb_per_s(bytes_text, started.elapsed()),
        );
    }
    Ok(())
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
    let mut record = reader.get(n).map_err(|e| CliError::codec(&in_label, e))?;
    if !args.raw {
        record.push(b'\n');
    }
    let mut out = io::stdout().lock();
    out.write_all(&record)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::write(STDOUT_LABEL, e, true))
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
