//! `sigma train`: trains a codebook on a corpus and writes it to MODEL, for `-m`.
//!
//! The corpus is cut into records (`--format`): the string field of every JSONL line, every line
//! of text files, or every file whole. Training needs the whole corpus in memory at once; the
//! records are kept back to back in one buffer.

use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use sigmalang::{Codebook, TrainOptions};

use crate::error::CliError;
use crate::io::{named_target, Input, Output, BUF_SIZE};
use crate::jsonl::{JsonlReader, Line};
use crate::limits::{human, MAX_CODEBOOK_BYTES};
use crate::progress::{self, ProgressReader};
use crate::{RecordFormat, TrainArgs};

/// The records of a corpus, back to back in one buffer.
#[derive(Debug, Default)]
pub struct Corpus {
    data: Vec<u8>,
    ends: Vec<usize>,
    /// JSONL lines skipped for want of the field (with `--skip-missing`).
    pub skipped: u64,
}

impl Corpus {
    /// Appends one record.
    pub fn push(&mut self, record: &[u8]) {
        self.data.extend_from_slice(record);
        self.ends.push(self.data.len());
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Total bytes of all records.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The records, in order.
    pub fn records(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let r = &self.data[start..end];
                start = end;
                r
            })
            .collect()
    }
}

/// Runs `sigma train`.
pub fn run(args: &TrainArgs) -> Result<(), CliError> {
    let inputs: Vec<Input> = args
        .files
        .iter()
        .map(|f| Input::from_arg(Some(f)))
        .collect();
    if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
        return Err(CliError::new(
            crate::io::STDIN_LABEL,
            "standard input (-) can be read only once",
        ));
    }
    if args.field.is_empty() && args.format == RecordFormat::Jsonl {
        return Err(CliError::new("--field", "the field name must not be empty"));
    }
    // Check the output before the (possibly long) work.
    let target = named_target(
        &args.output,
        inputs.iter().filter_map(Input::path),
        args.force,
        true,
    )?;
    let mut opts = TrainOptions::for_level(args.level.into());
    if let Some(bits) = args.min_gain {
        if !(bits.is_finite() && bits >= 0.0) {
            return Err(CliError::new(
                "--min-gain",
                "must be a number of bits, 0 or more",
            ));
        }
        opts = opts.min_gain_per_mib(bits);
    }
    if let Some(n) = args.max_order {
        opts = opts.max_order(n);
    }
    if let Some(n) = args.min_count {
        opts = opts.min_count(n);
    }
    if let Some(n) = args.high_order {
        opts = opts.high_order(n);
    }
    if let Some(n) = args.min_count_high {
        opts = opts.min_count_high(n);
    }

    let started = Instant::now();
    let mut corpus = Corpus::default();
    for input in &inputs {
        read_records(input, args, &mut corpus)?;
    }
    if corpus.is_empty() {
        return Err(CliError::new(
            label_of(&args.files),
            "no records to train on",
        ));
    }

    let steps = opts.get_max_order() as u64 + 1;
    let bar = progress::step_bar(
        steps,
        "training {spinner} order {pos}/{len} [{bar:30}] elapsed {elapsed}",
        progress::allowed(args.quiet),
    );
    let records = corpus.records();
    let trained = Codebook::train(&records, &opts, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let codebook = trained.map_err(|e| CliError::new("training", e))?;
    drop(records);

    let bytes = codebook.to_bytes();
    check_codebook_size(bytes.len(), &label_of(&args.files))?;
    let mut output = Output::create(&target, args.force, None)?;
    let out_label = output.label().to_string();
    let is_stdout = output.is_stdout();
    output
        .write_all(&bytes)
        .map_err(|e| CliError::write(&out_label, e, is_stdout))?;
    output.finish()?.persist(false)?;
    let elapsed = started.elapsed();

    if !args.quiet {
        let contexts = codebook
            .context_counts()
            .iter()
            .enumerate()
            .map(|(order, n)| format!("{order}:{n}"))
            .collect::<Vec<_>>()
            .join(" ");
        let skipped = if corpus.skipped > 0 {
            format!(" ({} skipped)", plural(corpus.skipped as usize, "line"))
        } else {
            String::new()
        };
        eprintln!(
            "sigma: trained {out_label} on {}{skipped}, {} bytes, in {:.2} s\n\
             \x20 codebook  {} bytes, id {}\n\
             \x20 contexts  {} (order:count)",
            plural(corpus.len(), "record"),
            corpus.bytes(),
            elapsed.as_secs_f64(),
            bytes.len(),
            codebook.id(),
            contexts,
        );
    }
    Ok(())
}

/// `n` and the noun, plural unless `n` is 1.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// How the inputs are named in a message about all of them.
/// Refuses a codebook of `len` bytes that `-m` would not load (over [`MAX_CODEBOOK_BYTES`]),
/// trained on `corpus`.
fn check_codebook_size(len: usize, corpus: &str) -> Result<(), CliError> {
    if len as u64 <= MAX_CODEBOOK_BYTES {
        return Ok(());
    }
    Err(CliError::new(
        corpus,
        format!(
            "the codebook would be {len} bytes, over the {} that -m loads; train on less data, \
             or raise --min-count",
            human(MAX_CODEBOOK_BYTES)
        ),
    ))
}

fn label_of(files: &[PathBuf]) -> String {
    match files {
        [one] => Input::from_arg(Some(one)).label(),
        _ => format!("{} inputs", files.len()),
    }
}

/// Reads the records of `input` into `corpus`, as `args.format` says.
fn read_records(input: &Input, args: &TrainArgs, corpus: &mut Corpus) -> Result<(), CliError> {
    let in_label = input.label();
    let opened = input.open()?;
    let reader = ProgressReader::new(opened.reader, opened.len, args.quiet);
    let mut reader = BufReader::with_capacity(BUF_SIZE, reader);
    match args.format {
        RecordFormat::Files => {
            let start = corpus.data.len();
            let read = reader.read_to_end(&mut corpus.data);
            if let Err(e) = read {
                corpus.data.truncate(start);
                return Err(CliError::new(&in_label, e));
            }
            corpus.ends.push(corpus.data.len());
        }
        RecordFormat::Lines => {
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut line)
                    .map_err(|e| CliError::new(&in_label, e))?;
                if n == 0 {
                    break;
                }
                corpus.push(line.strip_suffix(b"\n").unwrap_or(&line));
            }
        }
        RecordFormat::Jsonl => {
            let mut lines = JsonlReader::new(reader, &in_label, &args.field);
            while let Some(line) = lines.next_line()? {
                match line {
                    Line::Text(text) => corpus.push(text.as_bytes()),
                    Line::Missing(_) if args.skip_missing => corpus.skipped += 1,
                    Line::Missing(why) => {
                        return Err(CliError::new(
                            lines.position(),
                            format!("{why} (use --skip-missing to skip such lines)"),
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codebooks_that_could_not_be_loaded_are_refused() {
        assert!(check_codebook_size(64 << 20, "c").is_ok());
        let e = check_codebook_size((64 << 20) + 1, "c.jsonl").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.jsonl: the codebook would be 67108865 bytes, over the 64 MiB that -m loads; \
             train on less data, or raise --min-count"
        );
    }

    #[test]
    fn corpus_keeps_records_apart() {
        let mut c = Corpus::default();
        c.push(b"ab");
        c.push(b"");
        c.push(b"cde");
        assert_eq!(c.len(), 3);
        assert_eq!(c.bytes(), 5);
        assert_eq!(c.records(), vec![&b"ab"[..], b"", b"cde"]);
    }
}
