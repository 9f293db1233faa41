//! `sigma compress` and `sigma decompress` (also `sigma [FILE]` and `sigma -d [FILE]`).
//!
//! Both stream: memory stays bounded by the library's chunk size (a few chunks per `-T` worker
//! when compressing) and one I/O buffer, however large the input. `-m MODEL` codes with a trained codebook; decompressing picks the codebook
//! from the stream's header (the built-in one, or MODEL, which must be the one it names).

use std::fs::{self, File};
use std::io::{self, BufReader, Cursor, IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sigmalang::internals::io::read_full;
use sigmalang::stream::{FileHeader, FileKind, DEFAULT_CHUNK_SIZE, HEADER_LEN};
use sigmalang::{Codebook, ErrorKind, StreamOptions, StreamReader, StreamWriter};

use crate::error::CliError;
use crate::format;
use crate::io::{plan_output, warn, Input, Mode, Output, Target, BUF_SIZE};
use crate::model::Model;
use crate::progress::ProgressReader;
use crate::CodecArgs;

/// Compresses the input to a SigmaLang stream.
pub fn compress(args: &CodecArgs) -> Result<(), CliError> {
    let input = Input::from_arg(args.file.as_deref());
    let target = plan_output(&input, args, Mode::Compress)?;
    if target == Target::Stdout && !args.force && io::stdout().is_terminal() {
        return Err(CliError::new(
            crate::io::STDOUT_LABEL,
            "refusing to write compressed data to a terminal (use -o OUT, or -f to force)",
        ));
    }
    let model = Model::load_or_builtin(args.model.as_deref())?;
    let remove_input = wants_removal(args, &input, &target);
    let in_label = input.label();

    let opened = input.open()?;
    let started = Instant::now();
    let mut reader = ProgressReader::new(opened.reader, opened.len, args.quiet);
    let output = Output::create(&target, args.force, opened.permissions)?;
    let out_label = output.label().to_string();
    let is_stdout = output.is_stdout();
    let write_err = |e: io::Error| CliError::write(&out_label, e, is_stdout);

    // Chunks are coded on `-T` workers; the stream's bytes do not depend on their number.
    let options = StreamOptions::default()
        .chunk_size(DEFAULT_CHUNK_SIZE)
        .coder(super::encoder_config(args.no_pool))
        .threads(args.threads);
    let mut writer =
        StreamWriter::with_options(output, model.codebook.clone(), options).map_err(|e| match e
            .kind()
        {
            ErrorKind::Io(_) => write_err(e.into()),
            _ => CliError::new("--threads", e),
        })?;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::new(&in_label, e)),
        };
        writer.write_all(&buf[..n]).map_err(write_err)?;
    }
    let bytes_in = writer.bytes_in();
    let output = writer.finish().map_err(|e| write_err(e.into()))?;
    drop(reader); // clears the progress bar
    let finished = output.finish()?;
    let elapsed = started.elapsed();
    let bytes_out = finished.written();

    if remove_input {
        if let (Some(packed), Some(original)) = (finished.temp_path(), input.path()) {
            verify_compressed(packed, original, &model.codebook, args.threads, &in_label)?;
        }
    }
    finished.persist(remove_input)?;
    let summary = || {
        format::summary(
            &in_label, &out_label, bytes_in, bytes_out, bytes_in, bytes_out, elapsed,
        )
    };
    conclude(&input, remove_input, args.verbose, summary)
}

/// Decompresses a SigmaLang stream. Every chunk is checked before its bytes are written, and
/// the output file is put in place only once the whole stream, trailer included, was verified.
pub fn decompress(args: &CodecArgs) -> Result<(), CliError> {
    let input = Input::from_arg(args.file.as_deref());
    let target = plan_output(&input, args, Mode::Decompress)?;
    if input.is_terminal() && !args.force {
        return Err(CliError::new(
            crate::io::STDIN_LABEL,
            "refusing to read compressed data from a terminal (use -f to force)",
        ));
    }
    let remove_input = wants_removal(args, &input, &target);
    let in_label = input.label();

    let opened = input.open()?;
    let started = Instant::now();
    let progress = ProgressReader::new(opened.reader, opened.len, args.quiet);
    let consumed = progress.counter();
    let mut buffered = BufReader::with_capacity(BUF_SIZE, progress);
    // The header says which codebook the stream needs; read it first, then hand it back.
    let mut head = vec![0u8; HEADER_LEN];
    let n = read_full(&mut buffered, &mut head).map_err(|e| CliError::new(&in_label, e))?;
    head.truncate(n);
    let codebook = stream_codebook(&head, args.model.as_deref(), &in_label)?;
    let options = StreamOptions::default().threads(args.threads);
    let mut reader =
        StreamReader::with_options(Cursor::new(head).chain(buffered), codebook, options)
            .map_err(|e| CliError::new("--threads", e))?;
    let mut output = Output::create(&target, args.force, opened.permissions)?;
    let out_label = output.label().to_string();
    let is_stdout = output.is_stdout();

    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::codec_io(&in_label, e)),
        };
        output
            .write_all(&buf[..n])
            .map_err(|e| CliError::write(&out_label, e, is_stdout))?;
    }
    drop(reader); // clears the progress bar
    let finished = output.finish()?;
    let elapsed = started.elapsed();
    let bytes_out = finished.written();
    let bytes_in = consumed.position();
    finished.persist(remove_input)?;
    let summary = || {
        format::summary(
            &in_label, &out_label, bytes_in, bytes_out, bytes_out, bytes_in, elapsed,
        )
    };
    conclude(&input, remove_input, args.verbose, summary)
}

/// The codebook to decode the stream starting with `head` (up to [`HEADER_LEN`] bytes) with.
///
/// When `head` is not a stream header, any codebook will do: the stream reader reports what is
/// wrong (not a SigmaLang file, an archive, a damaged header) when it reads the same bytes.
pub fn stream_codebook(
    head: &[u8],
    model: Option<&Path>,
    in_label: &str,
) -> Result<Arc<Codebook>, CliError> {
    match FileHeader::parse(head) {
        Ok(header) if header.kind == FileKind::Stream => {
            Model::for_decoding(header.codebook, model, "stream", in_label).map(|m| m.codebook)
        }
        _ => Model::load_or_builtin(model).map(|m| m.codebook),
    }
}

/// Whether `--rm` applies: only to a file input written to a file output.
fn wants_removal(args: &CodecArgs, input: &Input, target: &Target) -> bool {
    if !args.rm {
        return false;
    }
    match (input, target) {
        (Input::File(_), Target::File(_)) => true,
        (Input::Stdin, _) => {
            warn(args.quiet, "--rm ignored: the input is standard input");
            false
        }
        (_, Target::Stdout) => {
            warn(args.quiet, "--rm ignored when writing to standard output");
            false
        }
    }
}

/// Decodes the compressed file `packed` with `codebook` and compares it with `original`, byte
/// for byte.
fn verify_compressed(
    packed: &Path,
    original: &Path,
    codebook: &Arc<Codebook>,
    threads: usize,
    in_label: &str,
) -> Result<(), CliError> {
    let fail =
        |what: String| CliError::new(in_label, format!("verification failed, input kept: {what}"));
    let packed = File::open(packed).map_err(|e| fail(e.to_string()))?;
    let mut decoded = StreamReader::with_options(
        BufReader::with_capacity(BUF_SIZE, packed),
        codebook.clone(),
        StreamOptions::default().threads(threads),
    )
    .map_err(|e| fail(e.to_string()))?;
    let mut original = File::open(original).map_err(|e| fail(e.to_string()))?;
    let mut a = vec![0u8; BUF_SIZE];
    let mut b = vec![0u8; BUF_SIZE];
    let mut at = 0u64;
    loop {
        let na = read_full(&mut decoded, &mut a)
            .map_err(|e| fail(sigmalang::Error::from(e).to_string()))?;
        let nb = read_full(&mut original, &mut b).map_err(|e| fail(e.to_string()))?;
        if a[..na] != b[..nb] {
            let first = a[..na]
                .iter()
                .zip(&b[..nb])
                .position(|(x, y)| x != y)
                .unwrap_or(na.min(nb));
            return Err(fail(format!(
                "the decoded output differs from the input at byte {}",
                at + first as u64
            )));
        }
        if na == 0 {
            return Ok(());
        }
        at += na as u64;
    }
}

/// Deletes the input file (for `--rm`, after the output is in place).
/// After the output is in place: removes the input if asked (`--rm`), prints the summary if
/// verbose.
fn conclude(
    input: &Input,
    remove_input: bool,
    verbose: bool,
    summary: impl FnOnce() -> String,
) -> Result<(), CliError> {
    if remove_input {
        remove(input)?;
    }
    if verbose {
        eprintln!("sigma: {}", summary());
    }
    Ok(())
}

fn remove(input: &Input) -> Result<(), CliError> {
    match input.path() {
        Some(path) => fs::remove_file(path)
            .map_err(|e| CliError::new(input.label(), format!("could not remove the input: {e}"))),
        None => Ok(()),
    }
}
