//! Reading JSON Lines one line at a time: the string field of every line, with errors that name
//! the file and line.
//!
//! Only one line is held in memory at a time, of at most [`MAX_LINE_BYTES`] bytes (a longer one
//! is an error naming the file, the line and the cap). Every line must be a JSON object; a final newline
//! at the end of the input is allowed, but an empty line anywhere else is an error (or, for
//! callers that skip lines, a line without the field).

use std::io::{self, BufRead};

use serde_json::Value;

use crate::error::CliError;
use crate::limits::{human, MAX_LINE_BYTES};

/// What a line holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The field's string value.
    Text(String),
    /// The line has no string value for the field; says why.
    Missing(String),
}

/// Reads the string field `field` of every line of a JSONL input.
pub struct JsonlReader<R: BufRead> {
    reader: R,
    label: String,
    field: String,
    key_field: Option<String>,
    key: Option<String>,
    line_no: u64,
    buf: Vec<u8>,
    max_line: u64,
}

impl<R: BufRead> JsonlReader<R> {
    /// Reads `reader`, named `label` in messages, for the field `field`.
    pub fn new(reader: R, label: impl Into<String>, field: impl Into<String>) -> JsonlReader<R> {
        JsonlReader {
            reader,
            label: label.into(),
            field: field.into(),
            key_field: None,
            key: None,
            line_no: 0,
            buf: Vec::new(),
            max_line: MAX_LINE_BYTES,
        }
    }

    /// Refuses lines longer than `max` bytes (newline included) instead of [`MAX_LINE_BYTES`].
    #[cfg(test)]
    pub fn with_max_line(mut self, max: u64) -> JsonlReader<R> {
        self.max_line = max;
        self
    }

    /// Also reads the field `key` of every line (see [`key`](Self::key)).
    pub fn with_key(mut self, key: Option<String>) -> JsonlReader<R> {
        self.key_field = key;
        self
    }

    /// The key field's value in the line last read: a string as it is, any other JSON value
    /// as its JSON text; `None` when the line has no such field (or no key field was asked for).
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// `FILE:LINE` of the line last read, for messages.
    pub fn position(&self) -> String {
        format!("{}:{}", self.label, self.line_no)
    }

    /// Reads the next line: `None` at the end of the input. Input that cannot be read, a line
    /// that is not JSON, and a line that is not a JSON object are errors.
    pub fn next_line(&mut self) -> Result<Option<Line>, CliError> {
        self.buf.clear();
        let n = self.read_line()?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(Some(Line::Missing("empty line".to_string())));
        }
        let value: Value = serde_json::from_slice(line)
            .map_err(|e| CliError::new(self.position(), json_error(&e)))?;
        let Value::Object(mut object) = value else {
            return Err(CliError::new(
                self.position(),
                "not a JSON object (every line must be one)",
            ));
        };
        self.key = self.key_field.as_ref().and_then(|k| match object.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        });
        Ok(Some(match object.remove(&self.field) {
            Some(Value::String(text)) => Line::Text(text),
            Some(other) => Line::Missing(format!(
                "field {} is {}, not a string",
                quoted(&self.field),
                kind(&other)
            )),
            None => Line::Missing(format!("no field {}", quoted(&self.field))),
        }))
    }

    /// Reads the next line, newline included, into `buf`; returns its length (0 at the end).
    /// A line over `max_line` bytes is an error: it is not read further.
    fn read_line(&mut self) -> Result<usize, CliError> {
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CliError::new(&self.label, e)),
            };
            if available.is_empty() {
                return Ok(self.buf.len());
            }
            let (take, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if (self.buf.len() + take) as u64 > self.max_line {
                return Err(CliError::new(
                    format!("{}:{}", self.label, self.line_no + 1),
                    format!(
                        "the line is longer than {}, the most a record's line may be (a \
                         record is at most {})",
                        human(self.max_line),
                        human(sigmalang::record::MAX_RECORD_LEN)
                    ),
                ));
            }
            self.buf.extend_from_slice(&available[..take]);
            self.reader.consume(take);
            if done {
                return Ok(self.buf.len());
            }
        }
    }

    /// Reads the next line's text, treating a line without it as an error.
    pub fn next_text(&mut self) -> Result<Option<String>, CliError> {
        match self.next_line()? {
            None => Ok(None),
            Some(Line::Text(text)) => Ok(Some(text)),
            Some(Line::Missing(why)) => Err(CliError::new(self.position(), why)),
        }
    }
}

/// A JSON syntax error on one line: serde_json's message with the column, without its "line 1".
fn json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match message.strip_suffix(&suffix) {
        Some(m) => format!("invalid JSON at column {}: {m}", e.column()),
        None => format!("invalid JSON: {message}"),
    }
}

/// `s` as a JSON string, for messages.
fn quoted(s: &str) -> String {
    Value::from(s).to_string()
}

/// The JSON type of `v`, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The records of a JSONL input as `pack` and `stats` read them: through a progress bar that
/// counts bytes (and records, set by the caller) and a line reader for `field` and `key`.
pub type RecordLines =
    JsonlReader<io::BufReader<crate::progress::ProgressReader<Box<dyn io::Read>>>>;

/// Opens `input`'s records: the line reader, and the progress bar to report the record count on.
pub fn open_records(
    input: &crate::io::Input,
    field: &str,
    key: Option<String>,
    quiet: bool,
) -> Result<(RecordLines, indicatif::ProgressBar), CliError> {
    let opened = input.open()?;
    let reader =
        crate::progress::ProgressReader::new(opened.reader, opened.len, quiet).with_records();
    let bar = reader.counter();
    let lines = JsonlReader::new(
        io::BufReader::with_capacity(crate::io::BUF_SIZE, reader),
        input.label(),
        field,
    )
    .with_key(key);
    Ok((lines, bar))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &str, field: &str) -> Vec<Result<Line, String>> {
        let mut r = JsonlReader::new(input.as_bytes(), "in.jsonl", field);
        let mut out = Vec::new();
        loop {
            match r.next_line() {
                Ok(None) => return out,
                Ok(Some(line)) => out.push(Ok(line)),
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[test]
    fn reads_the_field_of_every_line() {
        let input = "{\"text\": \"a\\nb\", \"x\": 1}\r\n{\"role\": \"user\", \"text\": \"\"}\n";
        assert_eq!(
            lines(input, "text"),
            vec![Ok(Line::Text("a\nb".into())), Ok(Line::Text(String::new()))]
        );
        // No final newline.
        assert_eq!(
            lines("{\"t\": \"\\u0000\"}", "t"),
            vec![Ok(Line::Text("\0".into()))]
        );
        assert!(lines("", "text").is_empty());
    }

    #[test]
    fn missing_fields_and_bad_lines() {
        let got = lines("{\"a\": 1}\n\n{\"text\": null}\n", "text");
        assert_eq!(
            got,
            vec![
                Ok(Line::Missing("no field \"text\"".into())),
                Ok(Line::Missing("empty line".into())),
                Ok(Line::Missing("field \"text\" is null, not a string".into())),
            ]
        );
        let got = lines("{\"text\": \"ok\"}\n[1]\n", "text");
        assert_eq!(
            got[1],
            Err("in.jsonl:2: not a JSON object (every line must be one)".into())
        );
        let got = lines("{\"text\": \"ok\"}\n{\"text\": \"cut\n", "text");
        assert_eq!(
            got[1],
            Err("in.jsonl:2: invalid JSON at column 13: EOF while parsing a string".into())
        );

        let mut r = JsonlReader::new(&b"{\"text\": \"a\"}\n{}\n"[..], "f", "text");
        assert_eq!(r.next_text().unwrap(), Some("a".into()));
        let e = r.next_text().unwrap_err().to_string();
        assert_eq!(e, "f:2: no field \"text\"");
    }

    #[test]
    fn long_lines_are_refused_by_file_and_line() {
        let input = b"{\"text\": \"a\"}\n{\"text\": \"0123456789\"}\n";
        // The first line is 14 bytes with its newline; the second 23.
        let mut r = JsonlReader::new(&input[..], "f.jsonl", "text").with_max_line(22);
        assert_eq!(r.next_text().unwrap(), Some("a".into()));
        let e = r.next_text().unwrap_err().to_string();
        assert_eq!(
            e,
            "f.jsonl:2: the line is longer than 22 bytes, the most a record's line may be \
             (a record is at most 1 GiB)"
        );
        let mut r = JsonlReader::new(&input[..], "f.jsonl", "text").with_max_line(23);
        assert_eq!(r.next_text().unwrap(), Some("a".into()));
        assert_eq!(r.next_text().unwrap(), Some("0123456789".into()));
        assert_eq!(r.next_text().unwrap(), None);
        assert_eq!(MAX_LINE_BYTES, (1 << 30) + (64 << 10));
    }
}
