//! Where the bits of a whole-line archive go, per JSON field: codes every record again with the
//! cost trace, against its frames and the archive's primer as the writer did, and adds up the
//! bits of each byte of its JSON-lines form (FORMAT.md §5.5) by the field path it belongs to
//! (`cargo run --release -p sigmalang --example field_cost -- A.sga [RECORDS]`).
//!
//! A value's bits are those of its bytes (quotes included); `{key}` rows are the bits of the
//! field names of that object (quotes and colon included); `(structure)` the braces, commas and
//! white space between fields; `(not JSON)` lines the scanner did not follow. The `values`
//! column counts the scalar values (a string, number, literal, or a whole nested JSON string).
//! With the environment variable `KEYS` set, field names get one row per key instead.

use std::collections::HashMap;

use sigmalang::{Codebook, Encoder};

#[derive(Default)]
struct Row {
    values: u64,
    bytes: u64,
    bits: f64,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("an archive");
    let limit: u64 = args
        .next()
        .map_or(u64::MAX, |s| s.parse().expect("a count"));
    let mut reader =
        sigmalang::ArchiveReader::open(std::fs::File::open(&path).expect("open")).expect("archive");
    let json_form = reader.archive().json_lines();
    let codebook = Codebook::default_codebook();
    let primer = reader.primer().expect("primer");
    let form = |line: Vec<u8>| {
        if json_form {
            let mut f = Vec::with_capacity(line.len() + 1);
            sigmalang::jsonform::encode(&line, &mut f);
            f
        } else {
            line
        }
    };
    let mut rows: HashMap<String, Row> = HashMap::new();
    let (mut total_bits, mut total_in, mut payload_bytes) = (0f64, 0u64, 0u64);
    let n_records = reader.len().min(limit);
    for n in 0..n_records {
        let input = form(reader.get(n).expect("record"));
        let ids = reader.frames_of(n).expect("frames");
        let frames: Vec<Vec<u8>> = ids
            .iter()
            .map(|&f| form(reader.get(f).expect("frame")))
            .collect();
        let slices: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        // The writer codes a form against its last frame (FORMAT.md §5.5).
        let mut input = input;
        if json_form {
            let mut coded = Vec::new();
            if sigmalang::jsonform::against(&input, frames.last().map(Vec::as_slice), &mut coded) {
                input = coded;
            }
        }
        let mut encoder = Encoder::new(codebook.clone());
        if let Some(p) = &primer {
            let adaptive = matches!(reader.payload_mode(n).expect("mode"), Some(2 | 3));
            encoder.set_primer(Some(p.clone()), adaptive);
        }
        let mut payload = Vec::new();
        let trace = encoder
            .encode_traced(&slices, &input, &mut payload)
            .expect("encode");
        payload_bytes += payload.len() as u64;
        total_in += input.len() as u64;
        let bits = trace.byte_bits();
        let overhead = trace.overhead_bits();
        total_bits += overhead;
        let e = rows.entry("(record header and end)".into()).or_default();
        e.bits += overhead;
        e.values += 1;
        for (field, range, is_value) in fields(&input) {
            let b: f64 = bits[range.clone()].iter().map(|&b| f64::from(b)).sum();
            total_bits += b;
            let e = rows.entry(field).or_default();
            e.bits += b;
            e.bytes += range.len() as u64;
            e.values += u64::from(is_value);
        }
    }
    let mut sorted: Vec<_> = rows.into_iter().collect();
    sorted.sort_by(|a, b| b.1.bits.total_cmp(&a.1.bits));
    println!(
        "{path}: {n_records} records, {total_in} bytes of forms -> {payload_bytes} bytes of payloads ({:.0} bits traced)",
        total_bits
    );
    println!(
        "{:<40} {:>9} {:>10} {:>11} {:>8} {:>10} {:>6}",
        "field", "values", "bytes in", "bits out", "bits/B", "bits/value", "share"
    );
    for (name, r) in sorted.iter().take(40) {
        println!(
            "{:<40} {:>9} {:>10} {:>11.0} {:>8.3} {:>10.2} {:>5.1}%",
            name,
            r.values,
            r.bytes,
            r.bits,
            if r.bytes > 0 {
                r.bits / r.bytes as f64
            } else {
                0.0
            },
            if r.values > 0 {
                r.bits / r.values as f64
            } else {
                0.0
            },
            100.0 * r.bits / total_bits
        );
    }
}

/// The form's bytes cut by field: (field path, byte range, whether the range is one value).
fn fields(form: &[u8]) -> Vec<(String, std::ops::Range<usize>, bool)> {
    let mut out = Vec::new();
    let body_start = usize::from(matches!(form.first(), Some(0..=7)));
    // The fields layout (first byte 04-06): the skeleton, then its cut values after a space.
    let layout = matches!(form.first(), Some(4..=6));
    let body_start = if layout { 1 } else { body_start };
    let mut slots = Vec::new();
    let mut s = Scanner {
        b: form,
        i: body_start,
        out: &mut out,
        slots: layout.then_some(&mut slots),
    };
    s.skip_ws("(structure)");
    if s.peek() == Some(b'{') && s.value("") {
        let paths = s.slots.as_deref_mut().map(std::mem::take);
        if let Some(paths) = paths {
            for path in paths {
                s.out.push(("(structure)".into(), s.i..s.i + 1, false));
                s.i += 1;
                let start = s.i;
                if !s.value(&path) || s.i == start {
                    return vec![("(not JSON)".into(), 0..form.len(), true)];
                }
            }
        }
        s.skip_ws("(structure)");
        if s.i == form.len() {
            if body_start > 0 {
                out.push(("(structure)".into(), 0..1, false));
            }
            return out;
        }
    }
    vec![("(not JSON)".into(), 0..form.len(), true)]
}

struct Scanner<'a, 'o> {
    b: &'a [u8],
    i: usize,
    out: &'o mut Vec<(String, std::ops::Range<usize>, bool)>,
    /// In a skeleton: the paths of its cut values, in order.
    slots: Option<&'o mut Vec<String>>,
}

impl Scanner<'_, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_ws(&mut self, name: &str) {
        let start = self.i;
        while matches!(
            self.peek(),
            Some(b' ' | b'\n' | b'\r' | b'\t' | b',' | b':')
        ) {
            self.i += 1;
        }
        if self.i > start {
            self.out.push((name.into(), start..self.i, false));
        }
    }

    /// Scans a string (quoted or FF-marked); returns whether it was one.
    fn string(&mut self) -> bool {
        match self.peek() {
            Some(b'"') => {
                let mut j = self.i + 1;
                while j < self.b.len() {
                    match self.b[j] {
                        b'\\' => j += 2,
                        b'"' => {
                            self.i = j + 1;
                            return true;
                        }
                        _ => j += 1,
                    }
                }
                false
            }
            Some(0xFF) => match self.b[self.i + 1..].iter().position(|&c| c == 0xFF) {
                Some(p) => {
                    self.i += p + 2;
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// Scans one value at field path `path`; returns whether it was valid.
    fn value(&mut self, path: &str) -> bool {
        let start = self.i;
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                self.out.push(("(structure)".into(), start..self.i, false));
                loop {
                    self.skip_ws("(structure)");
                    match self.peek() {
                        Some(b'}') => {
                            self.out
                                .push(("(structure)".into(), self.i..self.i + 1, false));
                            self.i += 1;
                            return true;
                        }
                        Some(b'"') => {
                            let k0 = self.i;
                            if !self.string() {
                                return false;
                            }
                            let key = String::from_utf8_lossy(&self.b[k0 + 1..self.i - 1]);
                            let sub = if path.is_empty() {
                                key.to_string()
                            } else {
                                format!("{path}.{key}")
                            };
                            while matches!(self.peek(), Some(b' ' | b':')) {
                                self.i += 1;
                            }
                            let name = if std::env::var_os("KEYS").is_some() {
                                format!("{{key {sub}}}")
                            } else if path.is_empty() {
                                "{key}".to_string()
                            } else {
                                format!("{path}.{{key}}")
                            };
                            self.out.push((name, k0..self.i, false));
                            let cut = matches!(self.peek(), Some(b',' | b'}'));
                            if let (true, Some(slots)) = (cut, self.slots.as_deref_mut()) {
                                slots.push(sub);
                            } else if !self.value(&sub) {
                                return false;
                            }
                        }
                        _ => return false,
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.out.push(("(structure)".into(), start..self.i, false));
                let sub = format!("{path}[]");
                loop {
                    self.skip_ws("(structure)");
                    match self.peek() {
                        Some(b']') => {
                            self.out
                                .push(("(structure)".into(), self.i..self.i + 1, false));
                            self.i += 1;
                            return true;
                        }
                        None => return false,
                        _ => {
                            if !self.value(&sub) {
                                return false;
                            }
                        }
                    }
                }
            }
            Some(b'"' | 0xFF) => {
                if !self.string() {
                    return false;
                }
                self.out.push((path.into(), start..self.i, true));
                true
            }
            Some(_) => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r'))
                {
                    self.i += 1;
                }
                if self.i == start {
                    return false;
                }
                self.out.push((path.into(), start..self.i, true));
                true
            }
            None => false,
        }
    }
}
