//! Where the bits go: `sigma inspect --cost` and `sigma stats --cost`.
//!
//! A record is coded again with the library's cost trace ([`sigmalang::cost`]), which gives
//! the bits the range coder really spent on each byte (the payload is the same, byte for byte),
//! and cut into spans of its semantic tree. `inspect --cost FILE` codes FILE as `sigma compress`
//! does (stream chunks); `inspect --cost ARCHIVE N` codes record N of the archive against the
//! frames the archive's index gives it (its Σ-bank REFERENCEs and the earlier records of its
//! group), and checks that this gives the payload length the archive holds.
//!
//! The output: the text coloured by bits per byte (DELTA and REFERENCE spans underlined), then
//! tables per kind of span, per class (prose, code, JSON, binary) and per JSON field; or
//! `--json`; or `--html OUT.html`, one page with no outside resource.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;

use serde_json::{json, Value};
use sigmalang::cost::{self, CostTrace, RunSource, Span};
use sigmalang::{Encoder, GlyphType};

use super::archive::open_archive;
use crate::error::CliError;
use crate::io::{named_target, Input, Output, Target, BUF_SIZE, STDOUT_LABEL};
use crate::limits::MemoryLimit;
use crate::model::Model;
use crate::InspectArgs;

/// The largest input `inspect --cost` reads: 16 MiB (its glyph tree, cost trace and spans take
/// up to about 110 times their input, most for binary data: 1.7 GiB).
pub const MAX_COST_BYTES: u64 = 16 << 20;

/// The largest input `--html` makes a page of: 8 MiB (the page holds about 60 bytes per
/// span, and a browser lays out every one).
pub const MAX_HTML_BYTES: u64 = 8 << 20;

/// A context frame of an archive record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The record the frame is.
    pub record: u64,
    /// Its length in bytes.
    pub len: usize,
    /// Whether it is a Σ-bank root the record REFERENCEs (else a record of its group).
    pub reference: bool,
    /// Whether it is the archive's primer (FORMAT.md §5.6; `record` is then 0), which every
    /// record of the archive is coded after. Its runs count as REFERENCEs: shared content.
    pub primer: bool,
}

impl Frame {
    /// The frame as JSON: `{"record", "bytes", "reference", "primer"}` (`record` is null for
    /// the primer).
    fn to_json(&self) -> Value {
        json!({"record": (!self.primer).then_some(self.record), "bytes": self.len,
               "reference": self.reference, "primer": self.primer})
    }
}

/// A record (or text) with what coding it cost.
#[derive(Debug)]
pub struct Costed {
    /// What was coded, for headings: the file, or `ARCHIVE record N`.
    pub label: String,
    /// The record's bytes.
    pub input: Vec<u8>,
    /// The coder's trace.
    pub trace: CostTrace,
    /// The spans, tiling the input.
    pub spans: Vec<Span>,
    /// The archive record's number, if it is one.
    pub record: Option<u64>,
    /// Its frames, oldest first (none for a file).
    pub frames: Vec<Frame>,
}

impl Costed {
    /// Codes `input` as `sigma compress` codes a stream: chunk by chunk, each `MODELED` or
    /// `ADAPTIVE2` (variant 3, as the stream's header flag says) as the encoder chooses.
    pub fn of_text(label: String, input: Vec<u8>, model: &Model) -> Costed {
        let mut encoder = Encoder::new(model.codebook.clone());
        encoder.set_chunk_v3(true);
        let mut trace: Option<CostTrace> = None;
        let mut payload = Vec::new();
        let chunks: Vec<&[u8]> = if input.is_empty() {
            vec![&[]]
        } else {
            input
                .chunks(sigmalang::stream::DEFAULT_CHUNK_SIZE)
                .collect()
        };
        for chunk in chunks {
            payload.clear();
            let t = encoder
                .encode_chunk_traced(chunk, &mut payload)
                .expect("a chunk is below the record limit");
            match &mut trace {
                Some(trace) => trace.append(t),
                None => trace = Some(t),
            }
        }
        let trace = trace.expect("at least one chunk");
        Costed::new(label, input, trace, None, Vec::new())
    }

    /// Codes record `n` of an archive against its frames, as the archive's writer did.
    fn of_record(
        path: &Path,
        n: u64,
        model: Option<&Path>,
        memory: MemoryLimit,
    ) -> Result<Costed, CliError> {
        let opened = open_archive(path, model, memory)?;
        let mut reader = opened.reader;
        let label = opened.label;
        let count = reader.len();
        if n >= count {
            return Err(CliError::new(
                &label,
                format!("there is no record {n}: it holds {count} records"),
            ));
        }
        if reader.page_bytes() > 0 {
            // A page is coded as one payload (FORMAT.md §5.7): the record has no trace of its own.
            return Err(CliError::new(
                &label,
                format!(
                    "record {n} is in a page of a block-mode archive (--block, FORMAT.md §5.7): \
                     --cost traces records coded alone; `sigma get ARCHIVE {n} | sigma inspect \
                     --cost` shows what its bytes cost as a text of their own"
                ),
            ));
        }
        let codec = |e| CliError::codec(&label, e);
        if let Some(info) = reader
            .info(n)
            .filter(|i| i.dependency == sigmalang::Dependency::Copy)
        {
            return Err(CliError::new(
                &label,
                format!(
                    "record {n} is a copy of record {} (FORMAT.md §5.8): it has no payload, only \
                     its index entry; --cost record {} for what its bytes cost",
                    info.prev.unwrap_or(0),
                    info.prev.unwrap_or(0)
                ),
            ));
        }
        // As for a file: checked from the record's header, before it is decoded.
        let len = reader.decoded_len(n).map_err(codec)?;
        if len > MAX_COST_BYTES {
            return Err(CliError::new(
                &label,
                format!(
                    "record {n} is {len} bytes, larger than {}, the most --cost reads (its tree, \
                     cost trace and spans take up to 110 times their input)",
                    crate::limits::human(MAX_COST_BYTES)
                ),
            ));
        }
        // An archive of whole JSON lines codes each line's form (FORMAT.md §5.5): the costs are
        // of the bytes the coder saw, the form, shown as they are.
        let json_form = reader.archive().json_lines();
        let coded = |line: Vec<u8>| {
            if json_form {
                let mut form = Vec::with_capacity(line.len() + 1);
                sigmalang::jsonform::encode(&line, &mut form);
                form
            } else {
                line
            }
        };
        let input = coded(reader.get(n).map_err(codec)?);
        let refs = reader.references(n).len();
        let ids = reader.frames_of(n).map_err(codec)?;
        let primer = reader.primer().map_err(codec)?;
        let mut frames = Vec::with_capacity(ids.len() + 1);
        if let Some(p) = &primer {
            frames.push(Frame {
                record: 0,
                len: p.bytes().len(),
                reference: true,
                primer: true,
            });
        }
        let mut bytes = Vec::with_capacity(ids.len());
        for (i, &f) in ids.iter().enumerate() {
            let b = coded(reader.get(f).map_err(codec)?);
            frames.push(Frame {
                record: f,
                len: b.len(),
                reference: i < refs,
                primer: false,
            });
            bytes.push(b);
        }
        // A form's values are coded against its last frame's (FORMAT.md §5.5), as the writer
        // did.
        let mut input = input;
        if json_form {
            let mut coded = Vec::new();
            if sigmalang::jsonform::against(&input, bytes.last().map(Vec::as_slice), &mut coded) {
                input = coded;
            }
        }
        let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        let mut encoder = Encoder::new(opened.model.codebook.clone());
        if let Some(p) = primer {
            // The writer coded the archive's records all adaptive (ADAPTIVE after a V1 primer,
            // ADAPTIVE2 after a V2 one) or all MODELED after the primer; the stored payload's
            // mode says which.
            let adaptive = matches!(reader.payload_mode(n).map_err(codec)?, Some(2 | 3));
            encoder.set_primer(Some(p), adaptive);
        }
        let mut payload = Vec::new();
        let mut trace = encoder
            .encode_traced(&slices, &input, &mut payload)
            .map_err(codec)?;
        trace.set_references(refs + usize::from(frames.first().is_some_and(|f| f.primer)));
        let stored = reader.payload_len(n).unwrap_or(0);
        if stored != payload.len() as u64 {
            eprintln!(
                "sigma: {label}: note: record {n} codes to {} bytes here, the archive holds {stored} \
                 (it was written by another build or with other frames); the costs are of this coding",
                payload.len()
            );
        }
        Ok(Costed::new(
            format!("{label} record {n}"),
            input,
            trace,
            Some(n),
            frames,
        ))
    }

    fn new(
        label: String,
        input: Vec<u8>,
        trace: CostTrace,
        record: Option<u64>,
        frames: Vec<Frame>,
    ) -> Costed {
        let spans = cost::spans(&sigmalang::parse(&input), &trace);
        Costed {
            label,
            input,
            trace,
            spans,
            record,
            frames,
        }
    }

    /// What a run copies, in words: `record 12 +40`, `Σ-bank record 3 +0`, `this record +7`.
    fn source_name(&self, source: RunSource) -> String {
        match source {
            RunSource::Frame { frame, offset } => match self.frames.get(frame) {
                Some(f) if f.primer => format!("the archive's primer +{offset}"),
                Some(f) if f.reference => format!("Σ-bank record {} +{offset}", f.record),
                Some(f) => format!("record {} +{offset}", f.record),
                None => format!("frame {frame} +{offset}"),
            },
            RunSource::Record { offset } => format!("this record +{offset}"),
        }
    }

    /// The source as JSON: `{"frame", "record", "offset"}` or `{"self": true, "offset"}`.
    fn source_json(&self, source: RunSource) -> Value {
        match source {
            RunSource::Frame { frame, offset } => {
                let f = self.frames.get(frame);
                json!({
                    "frame": frame,
                    "record": f.filter(|f| !f.primer).map(|f| f.record),
                    "reference": f.is_some_and(|f| f.reference),
                    "primer": f.is_some_and(|f| f.primer),
                    "offset": offset,
                })
            }
            RunSource::Record { offset } => json!({ "self": true, "offset": offset }),
        }
    }
}

/// Bytes and bits of one row of a table.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Input bytes.
    pub bytes: u64,
    /// Bits the coder spent on them.
    pub bits: f64,
}

impl Tally {
    fn add(&mut self, bytes: usize, bits: f64) {
        self.bytes += bytes as u64;
        self.bits += bits;
    }
}

/// Totals per kind, class and field, over one record or many.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// Records counted.
    pub records: u64,
    /// Input bytes.
    pub bytes: u64,
    /// Payload bytes (what the records take coded).
    pub coded_bytes: u64,
    /// Bits of the spans (the payloads less their headers and code ends).
    pub span_bits: f64,
    /// Per kind of span (`WORD`, `JSON_KEY`, `DELTA`, …).
    pub kinds: HashMap<&'static str, Tally>,
    /// Per class (prose, code, json, binary).
    pub classes: HashMap<&'static str, Tally>,
    /// Per JSON field path (`(not JSON)` outside JSON, `(top level)` for the top value's own
    /// punctuation).
    pub fields: HashMap<String, Tally>,
}

impl Totals {
    /// Adds the spans of one record.
    pub fn add(&mut self, trace: &CostTrace, spans: &[Span]) {
        self.records += 1;
        self.bytes += trace.byte_bits().len() as u64;
        self.coded_bytes += trace.payload_len() as u64;
        for s in spans {
            let len = s.end - s.start;
            self.span_bits += s.bits;
            self.kinds.entry(s.kind()).or_default().add(len, s.bits);
            self.classes
                .entry(s.class.name())
                .or_default()
                .add(len, s.bits);
            let field = match s.field.as_deref() {
                None => "(not JSON)",
                Some("") => "(top level)",
                Some(f) => f,
            };
            match self.fields.get_mut(field) {
                Some(t) => t.add(len, s.bits),
                None => {
                    let mut t = Tally::default();
                    t.add(len, s.bits);
                    self.fields.insert(field.to_string(), t);
                }
            }
        }
    }

    /// All the payloads' bits.
    pub fn total_bits(&self) -> f64 {
        8.0 * self.coded_bytes as f64
    }

    /// Rows sorted by bits, most first (ties by name).
    fn sorted<K: AsRef<str>>(map: &HashMap<K, Tally>) -> Vec<(&str, Tally)> {
        let mut v: Vec<_> = map.iter().map(|(k, t)| (k.as_ref(), *t)).collect();
        v.sort_by(|a, b| b.1.bits.total_cmp(&a.1.bits).then(a.0.cmp(b.0)));
        v
    }

    /// The three tables as text: `limit` rows each at most (the rest summed in one row).
    pub fn tables(&self, limit: usize) -> String {
        let mut out = String::new();
        let tables: [(&str, Vec<(&str, Tally)>); 3] = [
            ("kind", Self::sorted(&self.kinds)),
            ("class", Self::sorted(&self.classes)),
            ("JSON field", Self::sorted(&self.fields)),
        ];
        for (title, rows) in tables {
            if title == "JSON field" && rows.len() == 1 && rows[0].0 == "(not JSON)" {
                continue;
            }
            out.push('\n');
            let _ = writeln!(
                out,
                "{:<28} {:>10} {:>7} {:>12} {:>7} {:>7}",
                title, "bytes in", "share", "bits out", "bits/B", "share"
            );
            let mut shown: Vec<(String, Tally)> = rows
                .iter()
                .take(limit)
                .map(|(k, t)| (k.to_string(), *t))
                .collect();
            if rows.len() > limit {
                let mut rest = Tally::default();
                for (_, t) in &rows[limit..] {
                    rest.bytes += t.bytes;
                    rest.bits += t.bits;
                }
                shown.push((format!("({} more)", rows.len() - limit), rest));
            }
            for (name, t) in shown {
                let _ = writeln!(
                    out,
                    "{:<28} {:>10} {:>6.1}% {:>12.0} {:>7.2} {:>6.1}%",
                    clip(&name, 28),
                    t.bytes,
                    percent(t.bytes as f64, self.bytes as f64),
                    t.bits,
                    per_byte(t.bits, t.bytes),
                    percent(t.bits, self.span_bits),
                );
            }
        }
        out
    }

    /// The tables as JSON arrays of `{"name", "bytes", "bits"}`, most bits first.
    pub fn to_json(&self) -> Value {
        let rows = |v: Vec<(&str, Tally)>| -> Value {
            v.into_iter()
                .map(|(k, t)| json!({"name": k, "bytes": t.bytes, "bits": round3(t.bits)}))
                .collect()
        };
        json!({
            "records": self.records,
            "bytes": self.bytes,
            "coded_bytes": self.coded_bytes,
            "total_bits": self.total_bits(),
            "span_bits": round3(self.span_bits),
            "kinds": rows(Self::sorted(&self.kinds)),
            "classes": rows(Self::sorted(&self.classes)),
            "fields": rows(Self::sorted(&self.fields)),
        })
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        0.0
    }
}

fn per_byte(bits: f64, bytes: u64) -> f64 {
    if bytes > 0 {
        bits / bytes as f64
    } else {
        0.0
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Upper bounds of the colour buckets, in bits per byte, and their 256-colour codes (green,
/// cheap, to red, dear).
const BUCKETS: [(f64, u8); 8] = [
    (0.5, 28),
    (1.0, 34),
    (2.0, 70),
    (3.0, 142),
    (4.0, 178),
    (5.0, 208),
    (6.0, 202),
    (f64::INFINITY, 196),
];

fn bucket(bits_per_byte: f64) -> usize {
    BUCKETS
        .iter()
        .position(|&(hi, _)| bits_per_byte < hi)
        .unwrap_or(BUCKETS.len() - 1)
}

/// The span's bytes to show: from the first character that starts in it to the first that
/// starts after it, so a character a run boundary cuts is shown once, whole, and the shown
/// pieces still tile the text.
fn shown(input: &[u8], start: usize, end: usize) -> &[u8] {
    let snap = |mut at: usize| {
        let limit = (at + 3).min(input.len());
        while at < limit && input[at] & 0xC0 == 0x80 {
            at += 1;
        }
        at
    };
    let (s, e) = (snap(start), snap(end));
    &input[s.min(e)..e]
}

/// Text safe to print: control characters (ESC included) as their visible pictures, but for
/// newlines and tabs; invalid UTF-8 as U+FFFD.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if (c as u32) < 0x20 => char::from_u32(0x2400 + c as u32).unwrap_or('?'),
            '\u{7f}' => '␡',
            c if ('\u{80}'..='\u{9f}').contains(&c) => '�',
            c => c,
        })
        .collect()
}

/// Whether to colour the terminal output: not with `--no-color`, not when `NO_COLOR` is set
/// (to anything but the empty string), not when standard output is no terminal.
pub fn use_color(no_color: bool) -> bool {
    color_wanted(
        no_color,
        std::env::var_os("NO_COLOR").as_deref(),
        io::stdout().is_terminal(),
    )
}

/// [`use_color`]'s rule, given the option, the value of `NO_COLOR` and whether the output is a
/// terminal.
fn color_wanted(no_color: bool, env: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    !no_color && !env.is_some_and(|v| !v.is_empty()) && terminal
}

/// Writes the text report: heading, coloured text (if `color`), legend, tables.
pub fn write_text(out: &mut impl Write, c: &Costed, color: bool) -> io::Result<()> {
    let t = &c.trace;
    let mut totals = Totals::default();
    totals.add(t, &c.spans);
    let modes: Vec<&str> = t.chunk_modes().iter().map(|m| m.name()).collect();
    writeln!(
        out,
        "{}: {} bytes -> {} bytes ({}), {:.0} bits: {:.1} in spans, {:.1} header and end of code",
        c.label,
        c.input.len(),
        t.payload_len(),
        modes.join(" "),
        totals.total_bits(),
        totals.span_bits,
        t.overhead_bits(),
    )?;
    if !c.frames.is_empty() {
        let list: Vec<String> = c
            .frames
            .iter()
            .map(|f| {
                if f.primer {
                    return format!("the archive's primer ({} B)", f.len);
                }
                let what = if f.reference {
                    "Σ-bank record"
                } else {
                    "record"
                };
                format!("{what} {} ({} B)", f.record, f.len)
            })
            .collect();
        writeln!(out, "coded against: {}", list.join(", "))?;
    } else if c.record.is_some() {
        writeln!(
            out,
            "coded against: no frames (the first record of its group)"
        )?;
    }
    writeln!(out)?;
    // The text, one colour change per bucket change.
    let mut text = String::new();
    let mut current: Option<(usize, bool)> = None;
    for s in &c.spans {
        let piece = printable(shown(&c.input, s.start, s.end));
        if color {
            let style = (
                bucket(s.bits / (s.end - s.start) as f64),
                s.glyph_type != GlyphType::Primitive,
            );
            if current != Some(style) {
                let _ = write!(
                    text,
                    "\x1b[0;38;5;{}{}m",
                    BUCKETS[style.0].1,
                    if style.1 { ";4" } else { "" }
                );
                current = Some(style);
            }
        }
        text.push_str(&piece);
    }
    if color {
        text.push_str("\x1b[0m");
    }
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        writeln!(out)?;
    }
    // The legend.
    let mut legend = String::from("\nbits per byte:");
    let mut lo = 0.0;
    for &(hi, code) in &BUCKETS {
        let range = if hi.is_finite() {
            format!("{lo}-{hi}")
        } else {
            format!("{lo}+")
        };
        if color {
            let _ = write!(legend, " \x1b[38;5;{code}m■ {range}\x1b[0m");
        } else {
            let _ = write!(legend, " {range}");
        }
        lo = hi;
    }
    if color {
        legend.push_str("; underlined: DELTA/REFERENCE (copied)");
    } else {
        legend.push_str(" (colours on a terminal without --no-color or NO_COLOR)");
    }
    writeln!(out, "{legend}")?;
    out.write_all(totals.tables(15).as_bytes())?;
    write_runs(out, c)
}

/// The DELTA runs grouped by what they copy.
fn write_runs(out: &mut impl Write, c: &Costed) -> io::Result<()> {
    let runs = c.trace.runs();
    if runs.is_empty() {
        return writeln!(out, "\nnothing copied (no DELTA or REFERENCE runs)");
    }
    let mut by: BTreeMap<(usize, &str), (u64, usize, f64)> = BTreeMap::new();
    for r in runs {
        let key = match r.source {
            RunSource::Frame { frame, .. } => (frame, ""),
            RunSource::Record { .. } => (usize::MAX, "this record"),
        };
        let e = by.entry(key).or_default();
        e.0 += r.len as u64;
        e.1 += 1;
        e.2 += r.bits;
    }
    writeln!(out, "\ncopied (DELTA and REFERENCE runs) from:")?;
    for ((frame, name), (bytes, n, bits)) in by {
        let what = if name.is_empty() {
            c.source_name(RunSource::Frame { frame, offset: 0 })
                .trim_end_matches(" +0")
                .to_string()
        } else {
            name.to_string()
        };
        writeln!(
            out,
            "  {what}: {bytes} bytes in {n} runs, {bits:.0} bits ({:.3} bits/B)",
            per_byte(bits, bytes)
        )?;
    }
    Ok(())
}

/// Writes the `--json` object: the sizes, frames, runs, totals and spans, and a newline.
pub fn write_json(out: &mut impl Write, c: &Costed) -> io::Result<()> {
    let t = &c.trace;
    let mut totals = Totals::default();
    totals.add(t, &c.spans);
    let runs: Vec<Value> = t
        .runs()
        .iter()
        .map(|r| {
            let kind = match r.source {
                RunSource::Frame { frame, .. } if frame < t.references() => "REFERENCE",
                _ => "DELTA",
            };
            json!({
                "start": r.start,
                "len": r.len,
                "bits": round3(r.bits),
                "kind": kind,
                "source": c.source_json(r.source),
            })
        })
        .collect();
    let frames: Vec<Value> = c.frames.iter().map(Frame::to_json).collect();
    let modes: Vec<&str> = t.chunk_modes().iter().map(|m| m.name()).collect();
    let head = json!({
        "input": c.label,
        "record": c.record,
        "input_bytes": c.input.len(),
        "coded_bytes": t.payload_len(),
        "total_bits": 8 * t.payload_len(),
        "span_bits": round3(totals.span_bits),
        "overhead_bits": round3(t.overhead_bits()),
        "modes": modes,
        "frames": frames,
        "runs": runs,
        "totals": totals.to_json(),
    });
    // The spans are written one by one: a large input has millions.
    let head = head.to_string();
    out.write_all(&head.as_bytes()[..head.len() - 1])?;
    out.write_all(b",\"spans\":[")?;
    for (i, s) in c.spans.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, &span_json(s)).map_err(io::Error::other)?;
    }
    out.write_all(b"]}\n")
}

/// One span of `--json`.
fn span_json(s: &Span) -> Value {
    let mut v = json!({
        "start": s.start,
        "end": s.end,
        "bits": round3(s.bits),
        "kind": s.kind(),
        "primitive": s.primitive.name(),
        "class": s.class.name(),
    });
    if let Some(f) = &s.field {
        v["field"] = Value::from(f.as_ref());
    }
    if let Some(r) = s.run {
        v["run"] = Value::from(r);
    }
    v
}

/// The HTML page: the template with the data inlined as JSON (`<` escaped, so no text in it can
/// close the script element).
#[cfg(test)]
fn to_html(c: &Costed) -> String {
    let mut page = Vec::new();
    write_html(&mut page, c).expect("writing to memory");
    String::from_utf8(page).expect("the page is UTF-8")
}

/// Writes the HTML page to `out`: the template with the data inlined as JSON, the spans
/// streamed one by one (a page's data held as one JSON value took about 1 KiB per input byte).
pub fn write_html(out: &mut impl Write, c: &Costed) -> io::Result<()> {
    let t = &c.trace;
    let mut totals = Totals::default();
    totals.add(t, &c.spans);
    let runs: Vec<Value> = t
        .runs()
        .iter()
        .map(|r| json!([r.start, r.len, round3(r.bits), c.source_name(r.source)]))
        .collect();
    let frames: Vec<Value> = c
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (copied, n) = t
                .runs()
                .iter()
                .filter(|r| matches!(r.source, RunSource::Frame { frame, .. } if frame == i))
                .fold((0, 0), |(b, n), r| (b + r.len, n + 1));
            let mut v = f.to_json();
            v["copied"] = json!(copied);
            v["runs"] = json!(n);
            v
        })
        .collect();
    let self_copied: usize = t
        .runs()
        .iter()
        .filter(|r| matches!(r.source, RunSource::Record { .. }))
        .map(|r| r.len)
        .sum();
    let modes: Vec<&str> = t.chunk_modes().iter().map(|m| m.name()).collect();
    let data = json!({
        "label": c.label,
        "record": c.record,
        "input_bytes": c.input.len(),
        "coded_bytes": t.payload_len(),
        "total_bits": 8 * t.payload_len(),
        "span_bits": round3(totals.span_bits),
        "overhead_bits": round3(t.overhead_bits()),
        "modes": modes,
        "runs": runs,
        "frames": frames,
        "self_copied": self_copied,
        "buckets": BUCKETS.iter().map(|b| if b.0.is_finite() { b.0 } else { -1.0 }).collect::<Vec<_>>(),
        "totals": totals.to_json(),
    });
    let title = html_escape(&c.label);
    let template = include_str!("cost.html").replace("__TITLE__", &title);
    let (before, after) = template
        .split_once("__DATA__")
        .expect("the template has a data slot");
    out.write_all(before.as_bytes())?;
    let mut data_out = ScriptSafe(&mut *out);
    let head = data.to_string();
    data_out.write_all(&head.as_bytes()[..head.len() - 1])?;
    // Compact spans: [start, end, bits, kind, class, field, run, text], with names indexed; the
    // text as the terminal shows it (control characters as pictures, which a page would
    // otherwise show as nothing, leaving a span that cannot be seen or hovered).
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut name_id = |s: &str| -> usize {
        if let Some(&i) = index.get(s) {
            return i;
        }
        names.push(s.to_string());
        index.insert(s.to_string(), names.len() - 1);
        names.len() - 1
    };
    data_out.write_all(b",\"spans\":[")?;
    for (i, s) in c.spans.iter().enumerate() {
        if i > 0 {
            data_out.write_all(b",")?;
        }
        let field = s
            .field
            .as_deref()
            .map(|f| if f.is_empty() { "(top level)" } else { f });
        let span = json!([
            s.start,
            s.end,
            round3(s.bits),
            name_id(s.kind()),
            name_id(s.class.name()),
            field.map(&mut name_id),
            s.run,
            printable(shown(&c.input, s.start, s.end)),
        ]);
        serde_json::to_writer(&mut data_out, &span).map_err(io::Error::other)?;
    }
    data_out.write_all(b"],\"names\":")?;
    serde_json::to_writer(&mut data_out, &names).map_err(io::Error::other)?;
    data_out.write_all(b"}")?;
    out.write_all(after.as_bytes())
}

/// A writer of JSON inside a `<script>` element: every `<` (only ever inside a JSON string)
/// is written as `\u003c`, so no text can close the element.
struct ScriptSafe<W>(W);

impl<W: Write> Write for ScriptSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for piece in buf.split_inclusive(|&b| b == b'<') {
            match piece.split_last() {
                Some((b'<', rest)) => {
                    self.0.write_all(rest)?;
                    self.0.write_all(b"\\u003c")?;
                }
                _ => self.0.write_all(piece)?,
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Runs `sigma inspect --cost`.
pub fn run(args: &InspectArgs) -> Result<(), CliError> {
    // Where the page goes, checked before any coding, with the rules of every output: an
    // existing file only with -f, never a directory or the input itself; `-` is standard output.
    let html = match &args.html {
        Some(out) => {
            let inputs = args.file.as_deref().filter(|p| p.as_os_str() != "-");
            let target = named_target(out, inputs, args.force, false)?;
            if target == Target::Stdout && args.json {
                return Err(CliError::new(
                    STDOUT_LABEL,
                    "--html - and --json would both write to standard output; name a file for --html",
                ));
            }
            Some(target)
        }
        None => None,
    };
    let too_large = |label: &str, len: usize| {
        CliError::new(
            label,
            format!(
                "{len} bytes: --html makes a page of at most {MAX_HTML_BYTES} bytes of input (a \
                 page of more would be too large for a browser); --json takes any"
            ),
        )
    };
    let costed = match (args.record, &args.file) {
        (Some(n), Some(path)) => {
            Costed::of_record(path, n, args.model.as_deref(), MemoryLimit::DEFAULT)?
        }
        (Some(_), None) => {
            return Err(CliError::new(
                "inspect",
                "a record number needs the archive it is in",
            ))
        }
        (None, file) => {
            let input = Input::from_arg(file.as_deref());
            let data = input.read_all(
                MAX_COST_BYTES,
                "its glyph tree, cost trace and spans take up to 110 times their input",
            )?;
            if html.is_some() && data.len() as u64 > MAX_HTML_BYTES {
                return Err(too_large(&input.label(), data.len()));
            }
            let model = Model::load_or_builtin(args.model.as_deref())?;
            Costed::of_text(input.label(), data, &model)
        }
    };
    if let Some(target) = &html {
        if costed.input.len() as u64 > MAX_HTML_BYTES {
            return Err(too_large(&costed.label, costed.input.len()));
        }
        let mut page = Output::create(target, args.force, None)?;
        write_html(&mut page, &costed)
            .and_then(|()| page.flush())
            .map_err(|e| CliError::write(page.label(), e, page.is_stdout()))?;
        page.finish()?.persist(false)?;
        if *target == Target::Stdout {
            return Ok(());
        }
    }
    let mut out = BufWriter::with_capacity(BUF_SIZE, io::stdout().lock());
    let result = if args.json {
        write_json(&mut out, &costed)
    } else {
        write_text(&mut out, &costed, use_color(args.no_color))
    };
    result
        .and_then(|()| out.flush())
        .map_err(|e| CliError::write(STDOUT_LABEL, e, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costed(text: &str) -> Costed {
        Costed::of_text("t".into(), text.as_bytes().to_vec(), &Model::builtin())
    }

    #[test]
    fn shown_pieces_tile_the_text() {
        let text = "héllo → wörld ✓".as_bytes();
        for cut in 0..text.len() {
            let a = shown(text, 0, cut);
            let b = shown(text, cut, text.len());
            assert_eq!([a, b].concat(), text);
            assert!(std::str::from_utf8(a).is_ok() && std::str::from_utf8(b).is_ok());
        }
    }

    #[test]
    fn text_report_without_color_has_no_escapes() {
        let c = costed("{\"role\": \"user\", \"content\": \"Hello \\u001b[31m world\"}\u{1b}");
        let mut out = Vec::new();
        write_text(&mut out, &c, false).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(!s.contains('\x1b'), "{s}");
        assert!(s.contains("\nkind ") && !s.contains("JSON field"), "{s}");
        let json = costed("{\"role\": \"user\", \"content\": \"Hello world\"}");
        let mut out = Vec::new();
        write_text(&mut out, &json, false).unwrap();
        let j = String::from_utf8(out).unwrap();
        assert!(j.contains("JSON field") && j.contains("\ncontent "), "{j}");
        let mut out = Vec::new();
        write_text(&mut out, &c, true).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("\x1b[0;38;5;"), "{s}");
        // The input's own ESC is shown as a picture, never sent to the terminal.
        assert!(s.contains('␛'));
        assert_eq!(s.matches('\x1b').count(), s.matches("\x1b[").count());
    }

    #[test]
    fn color_only_on_a_terminal_without_no_color() {
        let set = Some(std::ffi::OsStr::new("1"));
        let empty = Some(std::ffi::OsStr::new(""));
        assert!(color_wanted(false, None, true));
        assert!(
            color_wanted(false, empty, true),
            "an empty NO_COLOR is unset"
        );
        assert!(!color_wanted(false, set, true));
        assert!(!color_wanted(true, None, true));
        assert!(!color_wanted(false, None, false));
    }

    #[test]
    fn html_shows_control_characters_as_pictures() {
        let page = to_html(&costed("a\0b\x01c\rd\x1b[31m\n"));
        for hidden in ["\\u0000", "\\u0001", "\\r", "\\u001b"] {
            assert!(!page.contains(hidden), "{hidden} in the page");
        }
        for picture in ['␀', '␁', '␍', '␛'] {
            assert!(page.contains(picture), "{picture} not in the page");
        }
    }

    #[test]
    fn html_cannot_be_closed_by_the_text() {
        let c = costed("a </script><script>alert(1)</script> & more");
        let page = to_html(&c);
        assert_eq!(page.matches("</script>").count(), 2, "the page's own two");
        assert!(!page.contains("http"), "no outside resource");
    }
}
