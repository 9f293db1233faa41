//! `sigma compress` and `sigma decompress` (also `sigma [FILE]...` and `sigma -d [FILE]...`).
//!
//! Both stream: memory stays bounded by the library's chunk size (a few chunks per `-T` worker
//! when compressing) and one I/O buffer, however large the input. `-m MODEL` codes with a
//! trained codebook; decompressing picks the codebook from the stream's header (the built-in
//! one, or MODEL, which must be the one it names).
//!
//! Several files are coded one after the other, each to its own output (or all to standard
//! output with `-c`, one after the other); an error with one file is reported and the others
//! are still coded, and the command fails at the end if any did (as zstd does).

use std::fs::{self, File};
use std::io::{self, BufReader, Cursor, IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sigmalang::codebook::CODEBOOK_MAGIC;
use sigmalang::internals::io::read_full;
use sigmalang::stream::{FileHeader, FileKind, DEFAULT_CHUNK_SIZE, HEADER_LEN, MAGIC};
use sigmalang::{Codebook, ErrorKind, StreamOptions, StreamReader, StreamWriter};

use crate::error::CliError;
use crate::format;
use crate::io::{plan_output, warn, Input, Mode, Output, BUF_SIZE};
use crate::limits::limit_stream;
use crate::model::Model;
use crate::progress::{OutputMeter, ProgressReader};
use crate::CodecArgs;

/// Compresses every input to a SigmaLang stream.
pub fn compress(args: &CodecArgs) -> Result<(), CliError> {
    let inputs = inputs_of(args)?;
    // Loaded once for all files, and before any clock starts: speeds are the coding's.
    let model = Model::load_or_builtin(args.model.as_deref())?;
    each_input(&inputs, |input| compress_one(input, args, &model))
}

/// Decompresses every input. Every chunk is checked before its bytes are written, and an
/// output file is put in place only once the whole stream, trailer included, was verified.
pub fn decompress(args: &CodecArgs) -> Result<(), CliError> {
    let inputs = inputs_of(args)?;
    each_input(&inputs, |input| decompress_one(input, args))
}

/// The inputs the arguments name: standard input if none. `-o FILE` names one output, so it
/// takes one input (zstd would concatenate; here that is `-c`).
fn inputs_of(args: &CodecArgs) -> Result<Vec<Input>, CliError> {
    if args.files.is_empty() {
        return Ok(vec![Input::Stdin]);
    }
    let inputs: Vec<Input> = args
        .files
        .iter()
        .map(|f| Input::from_arg(Some(f)))
        .collect();
    if inputs.len() > 1 {
        if args.output.as_ref().is_some_and(|o| o.as_os_str() != "-") {
            return Err(CliError::new(
                "-o",
                "names one output, but several inputs are given: leave -o out (each FILE \
                 gets its own output) or use -c (all to standard output, one after the other)",
            ));
        }
        if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
            return Err(CliError::new(
                crate::io::STDIN_LABEL,
                "standard input (-) is named more than once",
            ));
        }
    }
    Ok(inputs)
}

/// Runs `job` on every input. With one input its error is the command's; with several, each
/// error is printed and the next input is coded, and the command fails at the end if any
/// failed. A closed standard output stops everything (nothing more can be written).
fn each_input(
    inputs: &[Input],
    mut job: impl FnMut(&Input) -> Result<(), CliError>,
) -> Result<(), CliError> {
    if let [input] = inputs {
        return job(input);
    }
    let mut failed = false;
    for input in inputs {
        match job(input) {
            Ok(()) => {}
            Err(e) if e.is_silent() => return Err(e),
            Err(e) => {
                eprintln!("sigma: {e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::silent())
    } else {
        Ok(())
    }
}

/// Compresses one input.
fn compress_one(input: &Input, args: &CodecArgs, model: &Model) -> Result<(), CliError> {
    input.check_not_directory()?;
    let target = plan_output(input, args, Mode::Compress)?;
    if target == crate::io::Target::Stdout && !args.force && io::stdout().is_terminal() {
        return Err(CliError::new(
            crate::io::STDOUT_LABEL,
            "refusing to write compressed data to a terminal (use -o OUT, or -f to force)",
        ));
    }
    let in_label = input.label();
    let opened = input.open()?;
    let output = Output::create(&target, args.force, opened.metadata.as_ref())?;
    let remove_input = wants_removal(args, input, opened.metadata.is_some(), &output);
    let out_label = output.label().to_string();
    let is_stdout = output.is_stdout();
    let write_err = |e: io::Error| CliError::write(&out_label, e, is_stdout);

    let started = Instant::now();
    let mut reader = ProgressReader::new(opened.reader, opened.len, args.quiet);
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
            verify_compressed(packed, original, &model.codebook, args, &in_label)?;
        }
    }
    finished.persist(remove_input)?;
    let summary = || {
        format::summary(
            &in_label, &out_label, bytes_in, bytes_out, bytes_in, bytes_out, elapsed,
        )
    };
    conclude(input, remove_input, args.verbose, summary)
}

/// Decompresses one input.
fn decompress_one(input: &Input, args: &CodecArgs) -> Result<(), CliError> {
    input.check_not_directory()?;
    let target = plan_output(input, args, Mode::Decompress)?;
    if input.is_terminal() && !args.force {
        return Err(CliError::new(
            crate::io::STDIN_LABEL,
            "refusing to read compressed data from a terminal (use -f to force)",
        ));
    }
    let in_label = input.label();
    let opened = input.open()?;
    let counting = ProgressReader::counting(opened.reader);
    let consumed = counting.counter();
    let mut buffered = BufReader::with_capacity(BUF_SIZE, counting);
    // The header says what the file is and which codebook the stream needs; read it first,
    // then hand it back.
    let mut head = vec![0u8; HEADER_LEN];
    let n = read_full(&mut buffered, &mut head).map_err(|e| CliError::new(&in_label, e))?;
    head.truncate(n);
    if let Some(e) = not_sigmalang(&head, &in_label, "stream") {
        return Err(e);
    }
    if FileHeader::parse(&head).is_ok_and(|h| h.kind == FileKind::Archive) {
        return Err(CliError::new(
            &in_label,
            "is a SigmaLang archive, not a stream: `sigma unpack` writes its records back",
        ));
    }
    let codebook = stream_codebook(&head, args.model.as_deref(), &in_label)?;
    let options = StreamOptions::default().threads(args.threads);
    let reader = StreamReader::with_options(Cursor::new(head).chain(buffered), codebook, options)
        .map_err(|e| CliError::new("--threads", e))?;
    let mut reader = limit_stream(reader, args.memory);
    let mut output = Output::create(&target, args.force, opened.metadata.as_ref())?;
    let remove_input = wants_removal(args, input, opened.metadata.is_some(), &output);
    let out_label = output.label().to_string();
    let is_stdout = output.is_stdout();

    // After the codebook is loaded: speeds are the decoding's.
    let started = Instant::now();
    let mut meter = OutputMeter::new(opened.len, args.quiet);
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
        meter.advance(n, consumed.position());
    }
    drop(meter); // clears the progress bar
    drop(reader);
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
    conclude(input, remove_input, args.verbose, summary)
}

/// Other formats recognised by their first bytes, to name them in messages: magic bytes, the
/// format's name, and the command that decompresses it.
const FOREIGN: &[(&[u8], &str, &str)] = &[
    (&[0x28, 0xB5, 0x2F, 0xFD], "zstd", "zstd -d"),
    (&[0xFD, b'7', b'z', b'X', b'Z', 0x00], "xz", "xz -d"),
    (&[0x1F, 0x8B], "gzip", "gzip -d"),
    (b"BZh", "bzip2", "bzip2 -d"),
    (&[0x04, 0x22, 0x4D, 0x18], "lz4", "lz4 -d"),
    (&[0x5D, 0x00, 0x00], "lzma", "xz -d"),
];

/// If `head`, the first bytes of the input named `label`, is not the start of a SigmaLang
/// file, the error saying so: an empty input, a codebook, a file of another compressor (named),
/// or anything else, "not a SigmaLang `what`" (`stream`, `archive`, `file`). `None` when the
/// magic bytes are SigmaLang's (the reader checks the rest, and damage there is reported as
/// such).
pub fn not_sigmalang(head: &[u8], label: &str, what: &str) -> Option<CliError> {
    if head.is_empty() {
        return Some(CliError::new(
            label,
            format!("is empty, not a SigmaLang {what}"),
        ));
    }
    if head.starts_with(&MAGIC) || (head.len() < MAGIC.len() && MAGIC.starts_with(head)) {
        return None;
    }
    if head.starts_with(&CODEBOOK_MAGIC) {
        return Some(CliError::new(
            label,
            format!("is a SigmaLang codebook, not a {what} (a codebook is given with -m)"),
        ));
    }
    if let Some((_, name, command)) = FOREIGN.iter().find(|(magic, _, _)| head.starts_with(magic)) {
        return Some(CliError::new(
            label,
            format!("is {name} compressed data, not a SigmaLang {what} (try `{command}`)"),
        ));
    }
    Some(CliError::new(label, format!("not a SigmaLang {what}")))
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

/// Whether `--rm` applies: only to a regular file input (`regular`) whose output is a new
/// regular file. An output that is standard output, a device (/dev/null), a FIFO or a symbolic
/// link keeps the input: the data may not be stored anywhere (zstd 1.5.4 deletes the input
/// with `-o /dev/null`; this is deliberate). An input that is a FIFO or a device is not ours to
/// delete.
fn wants_removal(args: &CodecArgs, input: &Input, regular: bool, output: &Output) -> bool {
    if !args.rm {
        return false;
    }
    match input {
        Input::Stdin => {
            warn(args.quiet, "--rm ignored: the input is standard input");
            false
        }
        Input::File(_) if !regular => {
            warn(
                args.quiet,
                format!(
                    "--rm ignored: {} is not a regular file, it is kept",
                    input.label()
                ),
            );
            false
        }
        Input::File(_) if output.is_stdout() => {
            warn(args.quiet, "--rm ignored when writing to standard output");
            false
        }
        Input::File(_) if !output.is_new_file() => {
            warn(
                args.quiet,
                format!(
                    "--rm ignored: {} is not a regular file; {} is kept",
                    output.label(),
                    input.label()
                ),
            );
            false
        }
        Input::File(_) => true,
    }
}

/// Decodes the compressed file `packed` with `codebook` and compares it with `original`, byte
/// for byte.
fn verify_compressed(
    packed: &Path,
    original: &Path,
    codebook: &Arc<Codebook>,
    args: &CodecArgs,
    in_label: &str,
) -> Result<(), CliError> {
    let fail =
        |what: String| CliError::new(in_label, format!("verification failed, input kept: {what}"));
    let packed = File::open(packed).map_err(|e| fail(e.to_string()))?;
    let decoded = StreamReader::with_options(
        BufReader::with_capacity(BUF_SIZE, packed),
        codebook.clone(),
        StreamOptions::default().threads(args.threads),
    )
    .map_err(|e| fail(e.to_string()))?;
    let mut decoded = limit_stream(decoded, args.memory);
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
