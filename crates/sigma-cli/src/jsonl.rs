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
    key_field: Option<FieldPath>,
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

    /// Also reads the field at the path `key` of every line (see [`key`](Self::key)).
    pub fn with_key(mut self, key: Option<FieldPath>) -> JsonlReader<R> {
        self.key_field = key;
        self
    }

    /// The key field's value in the line last read, as its JSON text ([`key_text`]); `None`
    /// when the line has no such field, or it is `null` (or no key field was asked for).
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
        self.key = self
            .key_field
            .as_ref()
            .and_then(|k| k.find(&value))
            .and_then(key_text);
        let Value::Object(mut object) = value else {
            return Err(CliError::new(
                self.position(),
                "not a JSON object (every line must be one)",
            ));
        };
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
            let (take, done) = match memchr::memchr(b'\n', available) {
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
                        human(sigmalang::MAX_RECORD_LEN)
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

/// Why a line of a whole-line archive is stored as it is rather than read as a JSON object.
/// Such lines are kept byte for byte all the same; `pack` counts them in one warning, and
/// `--strict` makes the first one an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Odd {
    /// Empty, or only white space.
    Blank,
    /// Starts with a UTF-8 byte-order mark.
    ByteOrderMark,
    /// Not valid UTF-8, from byte `at` (counting from 1) on.
    NotUtf8 {
        /// The column of the first byte that is not UTF-8.
        at: usize,
    },
    /// Not JSON (for example a lone surrogate escape such as `"\ud800"`, which Python writes).
    NotJson {
        /// What the JSON parser said.
        why: String,
        /// The column (counting bytes from 1) where the parser found the error.
        column: usize,
    },
    /// JSON, but not an object.
    NotObject {
        /// The JSON type it is.
        kind: &'static str,
    },
}

impl Odd {
    /// A short name of the kind, for the summary warning.
    pub fn name(&self) -> &'static str {
        match self {
            Odd::Blank => "blank",
            Odd::ByteOrderMark => "byte-order mark",
            Odd::NotUtf8 { .. } => "not UTF-8",
            Odd::NotJson { .. } => "not JSON",
            Odd::NotObject { .. } => "not a JSON object",
        }
    }

    /// What is wrong, for `--strict`'s error.
    pub fn message(&self) -> String {
        match self {
            Odd::Blank => "blank line (not a JSON object)".to_string(),
            Odd::ByteOrderMark => "the line starts with a byte-order mark".to_string(),
            Odd::NotUtf8 { .. } => "not valid UTF-8".to_string(),
            Odd::NotJson { why, .. } => format!("invalid JSON: {why}"),
            Odd::NotObject { kind } => format!("{kind}, not a JSON object"),
        }
    }

    /// The column (counting bytes from 1) of `--strict`'s `FILE:LINE:COLUMN`: where the line
    /// stops being a JSON object. A blank line, a byte-order mark and JSON that is not an
    /// object are wrong from their first byte (column 1 for a blank line; the value's first
    /// byte for JSON that is not an object).
    pub fn column(&self, line: &[u8]) -> usize {
        match self {
            Odd::Blank | Odd::ByteOrderMark => 1,
            Odd::NotUtf8 { at } => *at,
            Odd::NotJson { column, .. } => *column,
            Odd::NotObject { .. } => line
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .map_or(1, |p| p + 1),
        }
    }
}

/// A field path such as `a.b.c`: the field `c` of the object in the field `b` of the object in
/// the field `a` of the line. Every part must be non-empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    parts: Vec<String>,
}

impl FieldPath {
    /// Parses `a.b.c`; `what` names the option in messages.
    pub fn parse(text: &str, what: &str) -> Result<FieldPath, CliError> {
        let parts: Vec<String> = text.split('.').map(str::to_string).collect();
        if parts.iter().any(String::is_empty) {
            return Err(CliError::new(
                what,
                format!(
                    "{} is not a field path: its parts (between dots) must not be empty",
                    quoted(text)
                ),
            ));
        }
        Ok(FieldPath {
            text: text.to_string(),
            parts,
        })
    }

    /// The path as it was given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path in `value`, if every part names a field of an object.
    pub fn find<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.parts
            .iter()
            .try_fold(value, |v, part| v.as_object()?.get(part))
    }

    /// The value at this path in the JSON line `line`, if it is a JSON object with one.
    pub fn find_in_line(&self, line: &[u8]) -> Option<Value> {
        let value: Value = serde_json::from_slice(line).ok()?;
        self.find(&value).cloned()
    }
}

/// A key value as the archive groups by it: its JSON text, so that the number `5` and the
/// string `"5"` are different keys; `null` is no key.
pub fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        v => Some(v.to_string()),
    }
}

/// One line of a whole-line archive: its bytes with their line ending, the key it is grouped
/// by, and why it is not a JSON object, if it is not.
#[derive(Debug)]
pub struct RawLine<'a> {
    /// The line's bytes, `\n` (and a `\r` before it) included; the last line of an input
    /// that does not end with a newline has none.
    pub bytes: &'a [u8],
    /// The key field's value ([`key_text`]), if the line is an object that has one.
    pub key: Option<String>,
    /// Why the line is not a JSON object, if it is not.
    pub odd: Option<Odd>,
}

/// Reads every line of an input as it is, for whole-line archives, with the key at a field path.
pub struct LineReader<R: BufRead> {
    lines: JsonlReader<R>,
    key: Option<FieldPath>,
}

impl<R: BufRead> LineReader<R> {
    /// Reads `reader`, named `label` in messages, grouping by the field at `key`.
    pub fn new(reader: R, label: impl Into<String>, key: Option<FieldPath>) -> LineReader<R> {
        LineReader {
            lines: JsonlReader::new(reader, label, ""),
            key,
        }
    }

    /// `FILE:LINE` of the line last read, for messages.
    pub fn position(&self) -> String {
        self.lines.position()
    }

    /// Reads the next line: `None` at the end of the input. Only input that cannot be read,
    /// or a line over the cap, is an error: any other line is returned as it is.
    pub fn next_line(&mut self) -> Result<Option<RawLine<'_>>, CliError> {
        self.lines.buf.clear();
        if self.lines.read_line()? == 0 {
            return Ok(None);
        }
        self.lines.line_no += 1;
        let bytes = &self.lines.buf[..];
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let (odd, value) = match &self.key {
            Some(_) => classify(body),
            None => (odd_line(body), None),
        };
        let key = match (&self.key, &value) {
            (Some(path), Some(v)) => path.find(v).and_then(key_text),
            _ => None,
        };
        Ok(Some(RawLine { bytes, key, odd }))
    }
}

/// Reads a line (without its `\n`) as JSON: why it is not an object, or the object.
fn classify(body: &[u8]) -> (Option<Odd>, Option<Value>) {
    if body.iter().all(u8::is_ascii_whitespace) {
        return (Some(Odd::Blank), None);
    }
    if body.starts_with(b"\xef\xbb\xbf") {
        return (Some(Odd::ByteOrderMark), None);
    }
    if let Err(e) = std::str::from_utf8(body) {
        return (
            Some(Odd::NotUtf8 {
                at: e.valid_up_to() + 1,
            }),
            None,
        );
    }
    match serde_json::from_slice::<Value>(body) {
        Err(e) => (
            Some(Odd::NotJson {
                why: json_reason(&e),
                column: e.column().max(1),
            }),
            None,
        ),
        Ok(v @ Value::Object(_)) => (None, Some(v)),
        Ok(other) => (Some(Odd::NotObject { kind: kind(&other) }), None),
    }
}

/// Why the line (without its `\n`) is not a JSON object, if it is not: as [`classify`] says,
/// without building the line's value (most of a whole-line pack's reading is that parse).
fn odd_line(body: &[u8]) -> Option<Odd> {
    if body.iter().all(u8::is_ascii_whitespace)
        || body.starts_with(b"\xef\xbb\xbf")
        || std::str::from_utf8(body).is_err()
    {
        return classify(body).0;
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde::Deserialize::deserialize(&mut de).and_then(|shape| de.end().map(|()| shape)) {
        Ok(Shape::Object) => None,
        Ok(Shape::Other(kind)) => Some(Odd::NotObject { kind }),
        // Not JSON, or a map key serde_json's `Value` treats specially: `classify` says it.
        Ok(Shape::Unsure) | Err(_) => classify(body).0,
    }
}

/// What `serde_json::Value` would make of a JSON text: an object, another value (its kind, as
/// [`kind`] names it), or `Unsure`. Parsed as `Value` is (the same calls into the parser, so
/// the same text is accepted: strings checked for lone surrogates, numbers for their syntax,
/// nesting for its depth), without building anything.
enum Shape {
    Object,
    Other(&'static str),
    /// A map whose first key is one of serde_json's private tokens: with `arbitrary_precision`
    /// every number reaches a visitor as a map `{"$serde_json::private::Number": "digits"}`,
    /// which `Value` turns into a number (the only case taken here, checked as `Value` checks
    /// it); any other such map is left to `Value`.
    Unsure,
}

/// serde_json's key for a number of `arbitrary_precision` (`serde_json::number::TOKEN`).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";
/// The prefix of serde_json's private map keys.
const PRIVATE_TOKEN: &str = "$serde_json::private::";

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> serde::de::Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other("a string"))
    }
    fn visit_none<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other("null"))
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other("null"))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut unsure = false;
        while let Some(v) = seq.next_element::<Shape>()? {
            unsure |= matches!(v, Shape::Unsure);
        }
        Ok(if unsure {
            Shape::Unsure
        } else {
            Shape::Other("an array")
        })
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        // The first key as `Value` reads it (a string), then what it does with it.
        let Some(first) = map.next_key::<KeyText>()? else {
            return Ok(Shape::Object);
        };
        if first.0.as_deref() == Some(NUMBER_TOKEN) {
            // As `Value` reads the number: a string that must parse as one.
            let Digits(digits) = map.next_value::<Digits>()?;
            return Ok(match digits.parse::<serde_json::Number>() {
                Ok(_) => Shape::Other("a number"),
                Err(_) => Shape::Unsure,
            });
        }
        let mut unsure = first.0.is_some();
        unsure |= matches!(map.next_value::<Shape>()?, Shape::Unsure);
        while let Some(KeyText(_)) = map.next_key::<KeyText>()? {
            unsure |= matches!(map.next_value::<Shape>()?, Shape::Unsure);
        }
        Ok(if unsure { Shape::Unsure } else { Shape::Object })
    }
}

/// A map key read as a string (as `Value` reads keys): kept only if it is one of serde_json's
/// private tokens (see [`Shape::Unsure`]).
struct KeyText(Option<String>);

impl<'de> serde::Deserialize<'de> for KeyText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KeyText, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> serde::de::Visitor<'de> for KeyVisitor {
    type Value = KeyText;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, s: &str) -> Result<KeyText, E> {
        Ok(KeyText(s.starts_with(PRIVATE_TOKEN).then(|| s.to_owned())))
    }
}

/// The digits of an `arbitrary_precision` number (see [`Shape::Unsure`]), read as `Value`
/// reads them (a string).
struct Digits(String);

impl<'de> serde::Deserialize<'de> for Digits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digits, D::Error> {
        d.deserialize_str(DigitsVisitor)
    }
}

struct DigitsVisitor;

impl<'de> serde::de::Visitor<'de> for DigitsVisitor {
    type Value = Digits;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number as a string")
    }
    fn visit_str<E>(self, s: &str) -> Result<Digits, E> {
        Ok(Digits(s.to_owned()))
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

/// serde_json's message for a one-line document, without its position.
fn json_reason(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    message
        .strip_suffix(&suffix)
        .map_or(message.clone(), str::to_string)
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
    key: Option<FieldPath>,
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

/// The lines of an input as `pack` reads them for a whole-line archive: through a progress bar
/// that counts bytes (and records, set by the caller).
pub type InputLines = LineReader<io::BufReader<crate::progress::ProgressReader<Box<dyn io::Read>>>>;

/// Opens `input`'s lines: the line reader, and the progress bar to report the record count on.
pub fn open_lines(
    input: &crate::io::Input,
    key: Option<FieldPath>,
    quiet: bool,
) -> Result<(InputLines, indicatif::ProgressBar), CliError> {
    let opened = input.open()?;
    let reader =
        crate::progress::ProgressReader::new(opened.reader, opened.len, quiet).with_records();
    let bar = reader.counter();
    let lines = LineReader::new(
        io::BufReader::with_capacity(crate::io::BUF_SIZE, reader),
        input.label(),
        key,
    );
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
    fn odd_lines_are_found_as_value_finds_them() {
        let deep = format!("{}{}", "{\"a\":[".repeat(70), "]}".repeat(70));
        let mut lines: Vec<Vec<u8>> = [
            "{}",
            "{\"a\": 1, \"b\": [1.5e3, -0, true, null, \"x\"], \"c\": {\"d\": \"\\u00e9\"}}",
            "  {\"a\": 1}  ",
            "{\"a\": 1} x",
            "{\"a\": 1,}",
            "{\"a\": \"\\ud800\"}",
            "{\"\\udc00\": 1}",
            "[1, 2]",
            "\"text\"",
            "12.5",
            "1e999",
            "true",
            "null",
            "",
            "   ",
            "\u{feff}{}",
            "{\"a\": 01}",
            "{\"a\": 1.}",
            "{\"$serde_json::private::Number\": \"12\"}",
            "{\"$serde_json::private::Number\": \"12\", \"b\": 1}",
            "{\"$serde_json::private::Number\": \"x\"}",
            "{\"$serde_json::private::Number\": 12}",
            "{\"a\": {\"$serde_json::private::Number\": \"1e5\"}}",
            "{\"a\": [{\"$serde_json::private::Number\": \"-\"}]}",
            "{\"$serde_json::private::RawValue\": \"1\"}",
            "{\"b\": 1, \"$serde_json::private::Number\": \"x\"}",
            &deep,
        ]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
        lines.push(b"{\"a\": \"\xff\"}".to_vec());
        // Every prefix of a valid line: all kinds of truncation errors.
        let full = b"{\"id\": \"r-1\", \"n\": [1, {\"x\": -2.5E+3}], \"t\": \"a\\nb\\u00e9\", \"z\": null}";
        for end in 0..=full.len() {
            lines.push(full[..end].to_vec());
        }
        for line in &lines {
            let (odd, _) = classify(line);
            assert_eq!(
                format!("{:?}", odd_line(line)),
                format!("{odd:?}"),
                "{}",
                String::from_utf8_lossy(line)
            );
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
