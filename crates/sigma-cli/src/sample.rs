//! The records `sigma pack` makes an archive's primer of when it reads a regular file: runs of
//! consecutive lines at evenly spaced offsets of the whole file, rather than its first lines.
//!
//! Files are often sorted by topic (code by crate, manual pages alphabetically, API documents
//! by service), so the first records teach the coder little about the rest; runs spread over
//! the file do. A first pass reads only the runs (seeking from one to the next), so its time
//! and memory are bounded by the primer's size, whatever the file's: at most
//! `runs × (4 × run + 64 KiB)` bytes are read, and the sample holds at most the primer's size
//! of records. Standard input cannot seek: its primer stays the first records.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use sigmalang::archive::sample::SamplePlan;

use crate::error::CliError;
use crate::jsonl::{FieldPath, JsonlReader, Line, LineReader};

/// A sample of a file.
#[derive(Debug, Default)]
pub struct Sample {
    /// The records: each one's key (the `--context-key` value's JSON text) and bytes, as
    /// `pack` adds them (the field's text with `--field`, else the whole line with its
    /// ending).
    pub records: Vec<(Option<Vec<u8>>, Vec<u8>)>,
    /// The bytes of the lines they were taken from (a `--field` record is a share of its
    /// line's).
    pub line_bytes: u64,
}

impl Sample {
    /// The records' bytes, a newline each (as the primer holds them).
    pub fn record_bytes(&self) -> u64 {
        self.records.iter().map(|(_, r)| r.len() as u64 + 1).sum()
    }
}

/// What `pack` makes of a line: the field's text (`--field`), or the whole line.
#[derive(Clone, Copy, Debug)]
pub enum Take<'a> {
    /// The string field at this path; lines without it are left out of the sample (the pack
    /// itself reports them).
    Field(&'a str),
    /// The whole line, line ending included.
    Lines,
}

/// Samples `primer` bytes of records from the file `path` (named `label`) by the library's
/// rule ([`SamplePlan`]: the one a table's column is sampled by, `sample_runs`): runs of about
/// [`SamplePlan::run`] bytes of records each, consecutive whole lines starting at the first
/// line that begins at or after [`SamplePlan::start`] (`k × len / runs`, the file's bytes) for
/// each run `k`, read through the same line handling `pack` uses (`take`, and the key at
/// `key`). Runs never overlap, so a small file's sample is its first records, as without
/// sampling. A line longer than a run's read budget ([`SamplePlan::budget`]) ends the run.
pub fn sample_file(
    path: &Path,
    label: &str,
    take: Take<'_>,
    key: Option<&FieldPath>,
    primer: usize,
) -> Result<Sample, CliError> {
    let err = |e: io::Error| CliError::new(label, e);
    let mut file = File::open(path).map_err(err)?;
    let len = file.metadata().map_err(err)?.len();
    let plan = SamplePlan::new(primer);
    let run = plan.run();
    let mut sample = Sample::default();
    if primer == 0 || len == 0 || run == 0 {
        return Ok(sample);
    }
    let budget = plan.budget();
    let mut total = 0;
    // Where the previous run ended: a run starts no earlier.
    let mut end = 0u64;
    for k in 0..plan.runs() {
        if total >= primer {
            break;
        }
        let at = plan.start(k, len);
        let mut reader = BufReader::new(Read::by_ref(&mut file).take(budget));
        let mut pos = if at <= end {
            reader
                .get_mut()
                .get_mut()
                .seek(SeekFrom::Start(end))
                .map_err(err)?;
            end
        } else {
            // The run starts at the first line after the one `at` falls in.
            reader
                .get_mut()
                .get_mut()
                .seek(SeekFrom::Start(at - 1))
                .map_err(err)?;
            let mut skipped = Vec::new();
            let n = reader.read_until(b'\n', &mut skipped).map_err(err)?;
            if skipped.last() != Some(&b'\n') {
                // No line starts within the budget (or the file ends): no run here.
                end = end.max(at - 1 + n as u64);
                continue;
            }
            at - 1 + n as u64
        };
        let mut line = Vec::new();
        let mut got = 0;
        while got < run && total < primer {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(err)?;
            let last = pos + n as u64 == len;
            if n == 0 || (line.last() != Some(&b'\n') && !last) {
                break; // the end of the file, or of the run's budget
            }
            pos += n as u64;
            if let Some((key, record)) = take_line(&line, label, take, key) {
                got += record.len() + 1;
                total += record.len() + 1;
                sample.line_bytes += n as u64;
                sample.records.push((key, record));
            }
        }
        end = pos;
    }
    Ok(sample)
}

/// The record `pack` makes of the whole line `line` (its ending included), and its key; `None`
/// for a line without the field `take` names.
fn take_line(
    line: &[u8],
    label: &str,
    take: Take<'_>,
    key: Option<&FieldPath>,
) -> Option<(Option<Vec<u8>>, Vec<u8>)> {
    match take {
        Take::Field(field) => {
            let mut reader = JsonlReader::new(line, label, field).with_key(key.cloned());
            match reader.next_line() {
                Ok(Some(Line::Text(text))) => Some((
                    reader.key().map(|k| k.as_bytes().to_vec()),
                    text.into_bytes(),
                )),
                _ => None,
            }
        }
        Take::Lines => {
            let mut reader = LineReader::new(line, label, key.cloned());
            match reader.next_line() {
                Ok(Some(raw)) => Some((raw.key.map(String::into_bytes), raw.bytes.to_vec())),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn texts(sample: &Sample) -> Vec<String> {
        sample
            .records
            .iter()
            .map(|(_, r)| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    #[test]
    fn runs_are_spread_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut input = String::new();
        for i in 0..20_000 {
            input.push_str(&format!(
                "{{\"text\": \"line {i:05} {}\", \"k\": {}}}\n",
                "x".repeat(i % 40),
                i / 1000
            ));
        }
        let path = write(dir.path(), "a.jsonl", input.as_bytes());
        let primer = 64 << 10;
        let key = FieldPath::parse("k", "--context-key").unwrap();
        let sample =
            sample_file(&path, "a.jsonl", Take::Field("text"), Some(&key), primer).unwrap();
        let total = sample.record_bytes() as usize;
        assert!(total >= primer - 200 && total < primer + 200, "{total}");
        assert!(sample.line_bytes > total as u64 + 20 * sample.records.len() as u64);
        // Every run is whole lines in order, from all over the file, without repeats.
        let numbers: Vec<u32> = texts(&sample)
            .iter()
            .map(|t| t[5..10].parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(numbers[0], 0);
        // The last run starts 31/32 into the file.
        let last = *numbers.last().unwrap();
        assert!(last > 18_500, "{last}");
        let jumps = numbers.windows(2).filter(|w| w[1] > w[0] + 1).count();
        // Runs of at least 4 KiB: 16 of them for 64 KiB.
        assert_eq!(jumps, primer / SamplePlan::new(primer).run() - 1);
        assert_eq!(SamplePlan::new(primer).run(), 4 << 10);
        assert_eq!(sample.records[0].0.as_deref(), Some(&b"0"[..]));
        assert_eq!(
            sample.records.last().unwrap().0.as_deref(),
            Some(&b"18"[..])
        );
        // Whole lines: the lines themselves, endings included.
        let lines = sample_file(&path, "a.jsonl", Take::Lines, None, primer).unwrap();
        assert!(lines
            .records
            .iter()
            .all(|(k, r)| k.is_none() && r.ends_with(b"}\n")));
        assert!(input.starts_with(std::str::from_utf8(&lines.records[0].1).unwrap()));
        // Whole lines are their own records: the line bytes are the records' (no newline
        // added).
        assert_eq!(
            lines.line_bytes,
            lines.record_bytes() - lines.records.len() as u64
        );
    }

    #[test]
    fn small_and_odd_files() {
        let dir = tempfile::tempdir().unwrap();
        // A file smaller than the primer: all of it, in order, once.
        let small = "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\"}";
        let path = write(dir.path(), "s.jsonl", small.as_bytes());
        let sample = sample_file(&path, "s", Take::Field("text"), None, 64 << 10).unwrap();
        assert_eq!(texts(&sample), ["a", "b", "c"]);
        let lines = sample_file(&path, "s", Take::Lines, None, 64 << 10).unwrap();
        let joined: Vec<u8> = lines.records.iter().flat_map(|(_, r)| r.clone()).collect();
        assert_eq!(joined, small.as_bytes());
        // Empty files, and lines that are not JSON objects: whole lines keep them, a field
        // sample leaves them out.
        let empty = write(dir.path(), "e.jsonl", b"");
        assert!(sample_file(&empty, "e", Take::Lines, None, 64 << 10)
            .unwrap()
            .records
            .is_empty());
        let odd = b"not json\n\n[1]\n\xff\xfe\n{\"text\": 5}\n{\"text\": \"ok\"}\n";
        let path = write(dir.path(), "o.jsonl", odd);
        let lines = sample_file(&path, "o", Take::Lines, None, 64 << 10).unwrap();
        let joined: Vec<u8> = lines.records.iter().flat_map(|(_, r)| r.clone()).collect();
        assert_eq!(joined, odd);
        let field = sample_file(&path, "o", Take::Field("text"), None, 64 << 10).unwrap();
        assert_eq!(texts(&field), ["ok"]);
        // A line longer than a run's budget is left out; the runs after it go on.
        let mut long = "{\"text\": \"a\"}\n".repeat(3000);
        long.push_str(&format!("{{\"text\": \"{}\"}}\n", "y".repeat(1 << 20)));
        long.push_str(&"{\"text\": \"b\"}\n".repeat(3000));
        let path = write(dir.path(), "l.jsonl", long.as_bytes());
        let sample = sample_file(&path, "l", Take::Field("text"), None, 64 << 10).unwrap();
        assert!(texts(&sample).iter().all(|t| t == "a" || t == "b"));
        assert!(texts(&sample).iter().any(|t| t == "b"));
    }
}
