//! JSON lines modeled as JSON: a reversible transform of whole-line records that unescapes the
//! long string values of a JSON line, so that the text model sees the raw characters it was
//! trained on (a line feed, a quote, `é`) instead of their JSON escapes (`\n`, `\"`, `\u00e9`).
//!
//! An archive written with [`ArchiveOptions::json_lines`](crate::ArchiveOptions::json_lines)
//! codes every record in this *form* and gives back the record itself: [`encode`] on the way
//! in, [`decode`] on the way out. The form is lossless for any bytes: `decode(encode(x)) == x`.
//! The unescaped strings give back their bytes by construction (a string is unescaped only if
//! escaping its value again gives its exact bytes); the encoder checks that a fields layout
//! gives back what it was cut from, and otherwise keeps `x` without it (debug builds check the
//! whole round trip).
//!
//! The form of a record `x` (FORMAT.md §5.5):
//!
//! ```text
//! x itself                      if no string of x is unescaped and x[0] > 0x07 (or x is empty)
//! 00 x                          if no string of x is unescaped and x[0] <= 0x07
//! S body                        S = 01 (minimal escapes) or 02 (ASCII escapes)
//! 04|s layout                   the fields layout of x (s = 00) or of the body (s = 01, 02)
//! ```
//!
//! The fields layout (records of at least [`MIN_FIELDS`] member values) is the object's
//! skeleton, its member values cut out, then each value after a space: keys and punctuation
//! repeat from record to record as one block. An archive then codes a fields form against its
//! last context frame ([`against`]: `^` for a value equal to the frame's, `~D` for one whose
//! digits differ by `D`), and its reader resolves them ([`resolve`]) before anything else.
//!
//! The body is `x` with some of its JSON strings `"…"` replaced by `FF content FF`, where
//! `content` is the string's value, every escape resolved, in WTF-8 (UTF-8 that also encodes
//! lone surrogates, as Python's `"\ud800"` makes them, in three bytes). A string is replaced
//! only if escaping its value again in style `S` gives back its exact bytes: otherwise it stays
//! as it is. `FF` never occurs in UTF-8, so it marks the string's two ends unambiguously.
//!
//! This is the coding path's use of the semantic parser's JSON tokens (the `JSON_STRING`
//! leaves of [`parser`](crate::parser)): a single-pass scanner that recognizes the same string
//! tokens, without building the tree.

use crate::error::{Error, Result};

/// First byte of a form that holds the record unchanged after it.
pub const RAW: u8 = 0x00;
/// First byte of a form whose strings are escaped as serde_json, JavaScript's `JSON.stringify`
/// and Python's `json.dumps(ensure_ascii=False)` (almost) do: `\"`, `\\`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, `\u00xx` for the other control characters and `\udxxx` for a lone surrogate;
/// every other character as it is.
pub const MINIMAL: u8 = 0x01;
/// First byte of a form whose strings are escaped as Python's `json.dumps` does by default
/// (`ensure_ascii`): as [`MINIMAL`], and every character from U+007F up as `\uxxxx`, those
/// beyond U+FFFF as a surrogate pair.
pub const ASCII: u8 = 0x02;
/// The highest first byte the form reserves: a record starting with a byte up to this one is
/// stored after a [`RAW`] byte. `03`–`07` are reserved and refused by [`decode`].
pub const RESERVED_MAX: u8 = 0x07;
/// Marks both ends of an unescaped string in the body.
pub const MARK: u8 = 0xFF;
/// Bit of a form's first byte that says its body is in the *fields* layout: the record's
/// skeleton (its JSON object with the values of object members cut out), then those values.
/// The other bits are the style of its strings: [`RAW`] (none unescaped), [`MINIMAL`] or
/// [`ASCII`].
pub const FIELDS: u8 = 0x04;
/// First byte of a fields form whose strings are all as they were.
pub const FIELD_RAW: u8 = FIELDS | RAW;
/// First byte of a fields form whose strings are unescaped as in [`MINIMAL`].
pub const FIELD_MINIMAL: u8 = FIELDS | MINIMAL;
/// First byte of a fields form whose strings are unescaped as in [`ASCII`].
pub const FIELD_ASCII: u8 = FIELDS | ASCII;

/// A record takes the fields layout only if its object has at least this many member values
/// that are not objects or arrays (strings, numbers, literals). Moving a value away from its
/// key costs the value its key as context, and the match model the key as an anchor on the
/// same field of the previous record; it pays where many short values each cost the match
/// model a resynchronization on the next key (8 bytes, `model::matcher::MIN_MATCH`). Measured
/// (DESIGN.md): records of 3 fields (every dev file) lose 0.03-2.8% in the fields layout, the
/// records of 9 values of a request log gain 3.0% (11% of their bytes outside the text).
pub const MIN_FIELDS: usize = 5;
/// Objects and arrays nest at most this deep in a record that takes the fields layout (the
/// decoder refuses a deeper skeleton).
pub const MAX_DEPTH: usize = 64;

/// A string is unescaped only if it holds at least this many backslashes, and its value is
/// JSON text (starts with `{` or `[` after white space): each unescaped string costs its two
/// marks, which the model has never seen, and the model knows one level of escapes (it was
/// trained on chat request bodies), so only a second level (JSON inside a JSON string, as in
/// request logs) gains. Measured on the development corpus (DESIGN.md): unescaping every
/// string with escapes made chat-dev 3.1% and code-dev 1.3% larger.
pub const MIN_ESCAPES: usize = 4;

/// Appends the form of `record` to `out`. Always succeeds: a record that no string of gains
/// from the transform, or that the transform would not give back exactly, is kept as it is
/// (after a [`RAW`] byte if its first byte is at most [`RESERVED_MAX`]).
pub fn encode(record: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    if !record.contains(&MARK) {
        let style = style_of(record);
        let mut unescaped = Vec::with_capacity(record.len());
        let (base, s) = if body(record, style, &mut unescaped) {
            (&unescaped[..], style)
        } else {
            (record, RAW)
        };
        // `base` gives back `record` by construction (see `body`: every marked string's value
        // escapes again to its exact bytes, and neither `record` nor a value holds a mark), so
        // only the fields layout is checked: that it gives back `base`.
        let mut back = Vec::with_capacity(base.len());
        out.push(FIELDS | s);
        if fields(base, out) && unfields(&out[start + 1..], &mut back).is_ok() && back == base {
            debug_assert!(decodes_to(&out[start..], record));
            return;
        }
        out.truncate(start);
        if s != RAW {
            out.push(s);
            out.extend_from_slice(base);
            if !looks_tokened(&out[start..]) {
                debug_assert!(decodes_to(&out[start..], record));
                return;
            }
            out.truncate(start);
        }
    }
    // A line whose member values look like tokens (never JSON) is kept after a RAW byte, which
    // no reader resolves (FORMAT.md §5.5).
    if record.first().is_some_and(|&b| b <= RESERVED_MAX) || looks_tokened(record) {
        out.push(RAW);
    }
    out.extend_from_slice(record);
}

/// Whether `form` decodes to `record` (the encoder's debug check of what it makes).
fn decodes_to(form: &[u8], record: &[u8]) -> bool {
    let mut back = Vec::new();
    decode(form, &mut back).is_ok() && back == record
}

/// Appends the record whose form is `form` to `out`. Any bytes are accepted without a panic;
/// a form no encoder makes (a reserved first byte, a string without its closing mark, content
/// that is not WTF-8) is `Corrupt`, with `out` holding what was decoded before it.
pub fn decode(form: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let style = match form.first() {
        None => return Ok(()),
        Some(&RAW) => {
            out.extend_from_slice(&form[1..]);
            return Ok(());
        }
        Some(&b) if b > RESERVED_MAX => {
            out.extend_from_slice(form);
            return Ok(());
        }
        Some(&b @ (MINIMAL | ASCII)) => b,
        Some(&b @ (FIELD_RAW | FIELD_MINIMAL | FIELD_ASCII)) => {
            let mut joined = Vec::with_capacity(form.len() + form.len() / 8);
            unfields(&form[1..], &mut joined)?;
            let style = b & !FIELDS;
            if style == RAW {
                out.extend_from_slice(&joined);
                return Ok(());
            }
            return unmark(&joined, 0, style, out);
        }
        Some(&b) => {
            return Err(Error::corrupt(
                format!("unknown JSON line form {b:#04x}"),
                0,
            ))
        }
    };
    unmark(form, 1, style, out)
}

/// Appends `body[from..]` to `out` with every `FF content FF` string escaped again in `style`;
/// errors count offsets in `body`.
fn unmark(body: &[u8], from: usize, style: u8, out: &mut Vec<u8>) -> Result<()> {
    let form = body;
    out.reserve(form.len() + form.len() / 8);
    let mut i = from;
    while i < form.len() {
        let Some(open) = find(&form[i..], MARK) else {
            out.extend_from_slice(&form[i..]);
            break;
        };
        out.extend_from_slice(&form[i..i + open]);
        let at = i + open + 1;
        let Some(len) = find(&form[at..], MARK) else {
            return Err(Error::corrupt(
                "a JSON string without its closing mark",
                (i + open) as u64,
            ));
        };
        out.push(b'"');
        escape(&form[at..at + len], style, out)
            .map_err(|off| Error::corrupt("a JSON string that is not WTF-8", (at + off) as u64))?;
        out.push(b'"');
        i = at + len + 1;
    }
    Ok(())
}

/// The style a record's strings are most likely escaped in: [`ASCII`] if it holds no byte
/// from 0x7F up and a `\u` escape, else [`MINIMAL`].
fn style_of(record: &[u8]) -> u8 {
    let ascii = record.iter().all(|&b| b < 0x7F);
    if ascii && has_unicode_escape(record) {
        ASCII
    } else {
        MINIMAL
    }
}

/// Appends the body of `record`'s form in `style` (after the style byte) to `out`; returns
/// whether any string was unescaped.
fn body(record: &[u8], style: u8, out: &mut Vec<u8>) -> bool {
    let mut any = false;
    let mut value = Vec::new();
    let mut again = Vec::new();
    let mut i = 0;
    while i < record.len() {
        let Some(q) = find(&record[i..], b'"') else {
            out.extend_from_slice(&record[i..]);
            break;
        };
        out.extend_from_slice(&record[i..i + q]);
        let open = i + q;
        // The string's end: the next quote not escaped by a backslash.
        let mut j = open + 1;
        let mut escapes = 0;
        let close = loop {
            match record.get(j..).and_then(|t| find2(t, b'"', b'\\')) {
                None => break None,
                Some(k) if record[j + k] == b'"' => break Some(j + k),
                Some(k) => {
                    escapes += 1;
                    j += k + 2;
                }
            }
        };
        let Some(close) = close else {
            out.extend_from_slice(&record[open..]);
            break;
        };
        let raw = &record[open + 1..close];
        value.clear();
        again.clear();
        let exact = escapes >= MIN_ESCAPES
            && may_hold_json(raw)
            && unescape(raw, &mut value).is_some()
            && holds_json(&value)
            && escape(&value, style, &mut again).is_ok()
            && again == raw;
        if exact {
            out.push(MARK);
            out.extend_from_slice(&value);
            out.push(MARK);
            any = true;
        } else {
            out.extend_from_slice(&record[open..=close]);
        }
        i = close + 1;
    }
    any
}

/// Appends the fields layout of `body` (a record, or the body of its [`MINIMAL`] or [`ASCII`]
/// form) to `out` and returns true, if `body` is white space, a JSON object with at least
/// [`MIN_FIELDS`] member values to move, then any bytes; else returns false (`out` may then
/// hold part of a layout: the caller truncates it).
///
/// The layout is the skeleton (`body` up to the object's end, every member value that is a
/// string, number or literal cut out: keys, punctuation, white space, nested objects and arrays
/// and the values inside arrays stay), then each cut value after one space, in order, then the
/// rest of `body` (the line ending). Every key sits at the same place in the skeleton of every
/// record of the same shape, where the match model copies it from the previous record as one
/// run; the values follow one another.
fn fields(body: &[u8], out: &mut Vec<u8>) -> bool {
    let mut slots = Vec::with_capacity(16);
    let Some(end) = walk(body, &mut slots, false, Tokens::None) else {
        return false;
    };
    if slots.len() < MIN_FIELDS {
        return false;
    }
    let mut at = 0;
    for &(a, b) in &slots {
        out.extend_from_slice(&body[at..a]);
        at = b;
    }
    out.extend_from_slice(&body[at..end]);
    for &(a, b) in &slots {
        out.push(b' ');
        out.extend_from_slice(&body[a..b]);
    }
    out.extend_from_slice(&body[end..]);
    true
}

/// Appends the bytes whose fields layout is `layout` (see [`fields`]) to `out`.
fn unfields(layout: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut slots = Vec::with_capacity(16);
    let end = walk(layout, &mut slots, true, Tokens::None)
        .ok_or_else(|| Error::corrupt("a fields form whose skeleton is not a JSON object", 1))?;
    let mut values = Vec::with_capacity(slots.len());
    let mut i = end;
    for _ in 0..slots.len() {
        let v = (layout.get(i) == Some(&b' '))
            .then(|| scalar_end(layout, i + 1))
            .flatten()
            .ok_or_else(|| Error::corrupt("a fields form with a missing value", (1 + i) as u64))?;
        values.push(i + 1..v);
        i = v;
    }
    let mut at = 0;
    for (&(a, _), v) in slots.iter().zip(&values) {
        out.extend_from_slice(&layout[at..a]);
        out.extend_from_slice(&layout[v.clone()]);
        at = a;
    }
    out.extend_from_slice(&layout[at..end]);
    out.extend_from_slice(&layout[i..]);
    Ok(())
}

/// A value coded against its frame's: the same bytes as the frame's value in the same slot.
pub const SAME: u8 = b'^';
/// A value coded against its frame's: `~`, then the difference (a decimal integer, `-` first if
/// negative) between its digits and the frame's value's digits.
pub const DELTA: u8 = b'~';
/// A value coded against its own record (header flag bit 5 only): `=`, then the index (decimal)
/// of an earlier slot of the same record whose value has the same bytes.
pub const EQUAL: u8 = b'=';

/// Which value tokens a walk accepts in a slot.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tokens {
    /// None: every value is a string, number or literal (a form as [`encode`] makes it).
    None,
    /// [`SAME`] and [`DELTA`] in the fields layout only (archives with header flag bit 1 and
    /// not bit 5).
    Fields,
    /// [`SAME`], [`DELTA`] and [`EQUAL`], in either layout (header flag bit 5).
    All,
}

/// The end of the value at `b[i]`: a token if `tokens` allows one there, else a string, number
/// or literal.
fn value_end(b: &[u8], i: usize, tokens: Tokens) -> Option<usize> {
    let digits_from = |from: usize| {
        let len = b
            .get(from..)?
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(b.len() - from);
        (len > 0).then_some(from + len)
    };
    match (*b.get(i)?, tokens) {
        (SAME, Tokens::Fields | Tokens::All) => Some(i + 1),
        (DELTA, Tokens::Fields | Tokens::All) => {
            digits_from(i + 1 + usize::from(b.get(i + 1) == Some(&b'-')))
        }
        (EQUAL, Tokens::All) => digits_from(i + 1),
        _ => scalar_end(b, i),
    }
}

/// Where the slots of a form are: its member values (strings, numbers, literals, or tokens).
struct Slots {
    /// Whether the form is in the fields layout (first byte `04`-`06`).
    fields: bool,
    /// Where the object (the skeleton, in the fields layout) starts: after the first byte, if
    /// the form has one.
    body: usize,
    /// Where the object (the skeleton) ends.
    end: usize,
    /// The byte range of each value, in order.
    values: Vec<std::ops::Range<usize>>,
}

/// The slots of `form`: a fields form (first byte `04`-`06`), or, with [`Tokens::All`] or
/// [`Tokens::None`], a plain form that is an object (first byte `01`, `02` or from `08` up; a
/// [`RAW`] form has none: it is how the writer keeps a line whose values look like tokens).
/// `None` if `form` is neither, or is malformed.
fn slots_of(form: &[u8], tokens: Tokens) -> Option<Slots> {
    let first = *form.first()?;
    let fields = matches!(first, FIELD_RAW | FIELD_MINIMAL | FIELD_ASCII);
    if fields {
        let layout = &form[1..];
        let mut cut = Vec::new();
        let end = walk(layout, &mut cut, true, Tokens::None)?;
        let mut values = Vec::with_capacity(cut.len());
        let mut i = end;
        for _ in 0..cut.len() {
            if layout.get(i) != Some(&b' ') {
                return None;
            }
            let v = value_end(layout, i + 1, tokens)?;
            values.push(1 + i + 1..1 + v);
            i = v;
        }
        return Some(Slots {
            fields,
            body: 1,
            end: 1 + end,
            values,
        });
    }
    if tokens == Tokens::Fields || matches!(first, RAW | 0x03 | 0x07) {
        return None;
    }
    let body = usize::from(first <= RESERVED_MAX);
    let mut found = Vec::new();
    let end = body + walk(&form[body..], &mut found, false, tokens)?;
    let values = found.into_iter().map(|(a, b)| body + a..body + b).collect();
    Some(Slots {
        fields,
        body,
        end,
        values,
    })
}

/// Whether two forms' slots sit in the same skeleton: both in the fields layout with the same
/// skeleton bytes, or both plain objects with the same bytes between their values (the first
/// byte, the string style, aside); and the same number of values.
fn same_skeleton(a: &[u8], sa: &Slots, b: &[u8], sb: &Slots) -> bool {
    if sa.fields != sb.fields || sa.values.len() != sb.values.len() {
        return false;
    }
    if sa.fields {
        return a[sa.body..sa.end] == b[sb.body..sb.end];
    }
    // The bytes before each value, and after the last one up to the object's end.
    fn gap<'f>(f: &'f [u8], s: &Slots, k: usize) -> &'f [u8] {
        let from = if k == 0 { s.body } else { s.values[k - 1].end };
        let to = s.values.get(k).map_or(s.end, |v| v.start);
        &f[from..to]
    }
    (0..=sa.values.len()).all(|k| gap(a, sa, k) == gap(b, sb, k))
}

/// Whether a token-free form `form`, as [`encode`] makes it, would be taken for one holding
/// tokens by [`resolve_all`]: a plain object with a member value starting with `^`, `~` or `=`
/// (never JSON). [`encode`] keeps such a line as a [`RAW`] form.
fn looks_tokened(form: &[u8]) -> bool {
    form.iter().any(|&c| matches!(c, SAME | DELTA | EQUAL))
        && slots_of(form, Tokens::All).is_some_and(|s| {
            s.values
                .iter()
                .any(|v| matches!(form[v.start], SAME | DELTA | EQUAL))
        })
}

/// The digits of `token` as one decimal number, if it holds 1 to 38 of them.
fn digits(token: &[u8]) -> Option<u128> {
    let mut n = 0u128;
    let mut count = 0;
    for &c in token.iter().filter(|c| c.is_ascii_digit()) {
        n = n * 10 + u128::from(c - b'0');
        count += 1;
        if count > 38 {
            return None;
        }
    }
    (count > 0).then_some(n)
}

/// Whether `a` and `b` have the same length and the same bytes where either is not a digit.
fn same_template(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_ascii_digit() && y.is_ascii_digit()))
}

/// Codes the form `form` (as [`encode`] made it) against `frame` (the last of its context
/// frames, a form too, if it has one) into `out` and returns true, if some value of `form` is
/// cheaper said by reference (header flag bit 5, FORMAT.md §5.5). A value is a member value of
/// the record's object (a string, number or literal), in the fields layout or in place after
/// its key. In the fields layout, with a frame in the fields layout of the same skeleton
/// (`same_skeleton`): the same bytes as the frame's value in the same slot ([`SAME`]), or the
/// same bytes but for digits whose number differs by a short difference ([`DELTA`]: sequential
/// ids, timestamps, counters). In either layout, with or without a frame: the same bytes as an
/// earlier value of the record ([`EQUAL`]: an id repeated as a name). Else returns false and
/// leaves `out` as it was. [`resolve_all`] gives the form back from `out` and the same frame.
pub fn against(form: &[u8], frame: Option<&[u8]>, out: &mut Vec<u8>) -> bool {
    let Some(s) = slots_of(form, Tokens::None) else {
        return false;
    };
    // Only the fields layout is coded against the frame. In place after its key, a value is
    // mostly predicted by the match model from the frame's record already, up to the bytes that
    // changed; a token there breaks that run, and the next key costs a resynchronization
    // (DESIGN.md: chat-dev +0.56%, histories-dev +2.9%, code-dev -0.4%).
    let frame = frame.filter(|_| s.fields).and_then(|f| {
        let fs = slots_of(f, Tokens::All)?;
        same_skeleton(form, &s, f, &fs).then_some((f, fs))
    });
    let start = out.len();
    let mut any = false;
    let mut text = String::new();
    let mut at = 0;
    for (i, v) in s.values.iter().enumerate() {
        out.extend_from_slice(&form[at..v.start]);
        at = v.end;
        let v = &form[v.clone()];
        // A frame's value may itself be a token (a form no writer makes): never referred to.
        let f = frame
            .as_ref()
            .map(|(f, fs)| &f[fs.values[i].clone()])
            .filter(|f| !matches!(f.first(), Some(&(SAME | DELTA | EQUAL))));
        if f == Some(v) && v.len() >= 2 {
            out.push(SAME);
            any = true;
            continue;
        }
        if let Some(j) = s.values[..i].iter().position(|w| &form[w.clone()] == v) {
            text.clear();
            text.push_str(&j.to_string());
            if v.len() >= text.len() + 3 {
                out.push(EQUAL);
                out.extend_from_slice(text.as_bytes());
                any = true;
                continue;
            }
        }
        if let Some(f) = f.filter(|f| same_template(v, f)) {
            if let (Some(a), Some(b)) = (digits(v), digits(f)) {
                let d = a as i128 - b as i128;
                text.clear();
                text.push_str(&d.to_string());
                let ndigits = v.iter().filter(|c| c.is_ascii_digit()).count();
                if d != 0 && text.len() < ndigits {
                    out.push(DELTA);
                    out.extend_from_slice(text.as_bytes());
                    any = true;
                    continue;
                }
            }
        }
        out.extend_from_slice(v);
    }
    out.extend_from_slice(&form[at..]);
    if any {
        // As the other forms, checked: the reader must get the form back exactly. This is
        // `resolve_all` with the frame's slots, found above, reused.
        let coded = &out[start..];
        let mut back = Vec::with_capacity(form.len());
        let exact = slots_of(coded, Tokens::All).is_some_and(|cs| {
            let frame = match &frame {
                Some((f, fs)) if same_skeleton(coded, &cs, f, fs) => Some((*f, fs)),
                _ => None,
            };
            resolve_slots(coded, &cs, frame, Tokens::All, &mut back).is_ok()
        });
        if exact && back == form {
            return true;
        }
    }
    out.truncate(start);
    false
}

/// Turns `coded`, a record's bytes as its payload decoded them in an archive with header flag
/// bit 1 and not bit 5, back into its form: the [`SAME`] and [`DELTA`] values of a fields form
/// are replaced by the values they stand for, read from `frame` (the last of the record's
/// context frames). Any other bytes are left as they are.
///
/// # Errors
/// `Corrupt` if `coded` refers to a frame's value that is not there (no frame, another
/// skeleton, a difference out of range).
pub fn resolve(coded: &mut Vec<u8>, frame: Option<&[u8]>) -> Result<()> {
    resolve_with(coded, frame, Tokens::Fields)
}

/// As [`resolve`], for an archive with header flag bit 5: the values of any form that is an
/// object (the fields layout, or a plain form but [`RAW`]) may be [`SAME`], [`DELTA`] (against
/// `frame`) or [`EQUAL`] (against an earlier value of the same record), as [`against`] writes
/// them.
///
/// # Errors
/// As [`resolve`]; also `Corrupt` for an [`EQUAL`] that names no earlier slot.
pub fn resolve_all(coded: &mut Vec<u8>, frame: Option<&[u8]>) -> Result<()> {
    resolve_with(coded, frame, Tokens::All)
}

fn resolve_with(coded: &mut Vec<u8>, frame: Option<&[u8]>, tokens: Tokens) -> Result<()> {
    let is_token = |c: u8| matches!(c, SAME | DELTA) || (c == EQUAL && tokens == Tokens::All);
    if tokens == Tokens::All && !coded.iter().any(|&c| is_token(c)) {
        return Ok(());
    }
    let Some(s) = slots_of(coded, tokens) else {
        return Ok(());
    };
    if !s.values.iter().any(|v| is_token(coded[v.start])) {
        return Ok(());
    }
    let bad = |what: &str| Error::corrupt(format!("a JSON line form {what}"), 0);
    let mut frame_slots = None;
    if s.values
        .iter()
        .any(|v| matches!(coded[v.start], SAME | DELTA))
    {
        let f = frame.ok_or_else(|| bad("refers to a frame, and the record has none"))?;
        let fs =
            slots_of(f, tokens).ok_or_else(|| bad("refers to a frame that is not an object"))?;
        if !same_skeleton(coded, &s, f, &fs) {
            return Err(bad("refers to a frame of another skeleton"));
        }
        frame_slots = Some((f, fs));
    }
    let mut out = Vec::with_capacity(coded.len() + 64);
    let frame = frame_slots.as_ref().map(|(f, fs)| (*f, fs));
    resolve_slots(coded, &s, frame, tokens, &mut out)?;
    *coded = out;
    Ok(())
}

/// The work of [`resolve_with`] once `coded` is parsed (`s`) and, if a value refers to it, the
/// frame too (of the same skeleton): appends the form to `out`.
fn resolve_slots(
    coded: &[u8],
    s: &Slots,
    frame_slots: Option<(&[u8], &Slots)>,
    tokens: Tokens,
    out: &mut Vec<u8>,
) -> Result<()> {
    let bad = |what: &str| Error::corrupt(format!("a JSON line form {what}"), 0);
    let mut done: Vec<std::ops::Range<usize>> = Vec::with_capacity(s.values.len());
    let mut at = 0;
    for (i, v) in s.values.iter().enumerate() {
        out.extend_from_slice(&coded[at..v.start]);
        at = v.end;
        let v = &coded[v.clone()];
        let from = out.len();
        // Set above whenever a value is `^` or `~`.
        let f = || {
            frame_slots
                .map(|(f, fs)| &f[fs.values[i].clone()])
                .ok_or_else(|| bad("refers to a frame, and the record has none"))
        };
        match v[0] {
            SAME => out.extend_from_slice(f()?),
            DELTA => {
                let f = f()?;
                let d: i128 = std::str::from_utf8(&v[1..])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| bad("holds a difference out of range"))?;
                let base = digits(f).ok_or_else(|| bad("holds a difference to no number"))?;
                let n = f.iter().filter(|c| c.is_ascii_digit()).count();
                let value = (base as i128)
                    .checked_add(d)
                    .filter(|&x| x >= 0 && (x as u128) < 10u128.pow(n as u32))
                    .ok_or_else(|| bad("holds a difference out of range"))?;
                let text = format!("{value:0n$}");
                let mut ds = text.bytes();
                out.extend(f.iter().map(|&c| {
                    if c.is_ascii_digit() {
                        ds.next().unwrap_or(c)
                    } else {
                        c
                    }
                }));
            }
            EQUAL if tokens == Tokens::All => {
                let j = std::str::from_utf8(&v[1..])
                    .ok()
                    .and_then(|t| t.parse::<usize>().ok())
                    .filter(|&j| j < i)
                    .ok_or_else(|| bad("refers to a value that is not before it"))?;
                let r = done[j].clone();
                out.extend_from_within(r);
            }
            _ => out.extend_from_slice(v),
        }
        done.push(from..out.len());
    }
    out.extend_from_slice(&coded[at..]);
    Ok(())
}

/// What [`walk`] expects next.
#[derive(Clone, Copy)]
enum Expect {
    /// A key, or the end of the object.
    Key,
    /// A member's value (`member`) or an array's element.
    Value { member: bool },
    /// An array's first element, or its end.
    FirstElement,
    /// A comma, or the end of the innermost object or array.
    Next,
}

/// Walks the JSON object at the start of `b` (after white space) and returns where it ends;
/// pushes the byte range of every member value that is a string, number or literal to `slots`.
/// With `cut`, `b` is a skeleton: a member value that is not an object or array is not there,
/// and its empty range is pushed. `None` if `b` does not start with an object, or nests deeper
/// than [`MAX_DEPTH`]. Without `cut`, a member value may also be a token that `tokens` allows
/// ([`value_end`]). Strings are JSON strings (`"…"`, up to the first quote not escaped) or
/// unescaped ones (`FF … FF`); numbers and literals any run of `[A-Za-z0-9+.-]`; the encoder
/// checks that the layout gives back its record, so the walk only needs to be the same both
/// ways, not a validator.
fn walk(b: &[u8], slots: &mut Vec<(usize, usize)>, cut: bool, tokens: Tokens) -> Option<usize> {
    let ws = |i: &mut usize| {
        while matches!(b.get(*i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            *i += 1;
        }
    };
    let mut i = 0;
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    // The open objects and arrays, innermost last (at most MAX_DEPTH: no allocation).
    let mut stack = Stack {
        open: [0; MAX_DEPTH],
        len: 1,
    };
    stack.open[0] = b'{';
    let mut expect = Expect::Key;
    loop {
        ws(&mut i);
        let c = *b.get(i)?;
        expect = match expect {
            Expect::Key if c == b'}' => close(&mut stack, &mut i, c)?,
            Expect::Key => {
                i = string_end(b, i)?;
                ws(&mut i);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i += 1;
                Expect::Value { member: true }
            }
            Expect::FirstElement if c == b']' => close(&mut stack, &mut i, c)?,
            Expect::FirstElement => Expect::Value { member: false },
            Expect::Value { .. } if c == b'{' || c == b'[' => {
                if stack.len >= MAX_DEPTH {
                    return None;
                }
                stack.open[stack.len] = c;
                stack.len += 1;
                i += 1;
                if c == b'{' {
                    Expect::Key
                } else {
                    Expect::FirstElement
                }
            }
            Expect::Value { member: true } if cut => {
                slots.push((i, i));
                Expect::Next
            }
            Expect::Value { member } => {
                let end = if member {
                    value_end(b, i, tokens)?
                } else {
                    scalar_end(b, i)?
                };
                if member {
                    slots.push((i, end));
                }
                i = end;
                Expect::Next
            }
            Expect::Next if c == b',' => {
                i += 1;
                if stack.open[stack.len - 1] == b'{' {
                    Expect::Key
                } else {
                    Expect::Value { member: false }
                }
            }
            Expect::Next => close(&mut stack, &mut i, c)?,
        };
        if stack.len == 0 {
            return Some(i);
        }
    }
}

/// The objects and arrays [`walk`] is in: their opening bytes, innermost last.
struct Stack {
    open: [u8; MAX_DEPTH],
    len: usize,
}

/// Closes the innermost object or array if `c` is its end.
fn close(stack: &mut Stack, i: &mut usize, c: u8) -> Option<Expect> {
    stack.len = stack.len.checked_sub(1)?;
    let open = stack.open[stack.len];
    if (open, c) != (b'{', b'}') && (open, c) != (b'[', b']') {
        return None;
    }
    *i += 1;
    Some(Expect::Next)
}

/// The end of the string (`"…"` or `FF … FF`) at `b[i]`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => {
            let mut j = i + 1;
            loop {
                let k = j + find2(b.get(j..)?, b'"', b'\\')?;
                if b[k] == b'"' {
                    return Some(k + 1);
                }
                j = k + 2;
            }
        }
        &MARK => {
            let len = find(b.get(i + 1..)?, MARK)?;
            Some(i + len + 2)
        }
        _ => None,
    }
}

/// The end of the string, number or literal at `b[i]`.
fn scalar_end(b: &[u8], i: usize) -> Option<usize> {
    if let Some(end) = string_end(b, i) {
        return Some(end);
    }
    let len = b
        .get(i..)?
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))
        .unwrap_or(b.len() - i);
    (len > 0).then_some(i + len)
}

/// The value of a JSON string's bytes between its quotes, in WTF-8, or `None` if they are not
/// a valid JSON string's (a bad escape; raw bytes are copied as they are and checked later).
fn unescape(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < raw.len() {
        let Some(b) = find(&raw[i..], b'\\') else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        out.extend_from_slice(&raw[i..i + b]);
        i += b;
        let c = *raw.get(i + 1)?;
        i += 2;
        let unit = match c {
            b'"' | b'\\' | b'/' => {
                out.push(c);
                continue;
            }
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => 0x0A,
            b'r' => 0x0D,
            b't' => 0x09,
            b'u' => {
                let u = hex4(raw.get(i..i + 4)?)?;
                i += 4;
                u
            }
            _ => return None,
        };
        let mut cp = u32::from(unit);
        if (0xD800..0xDC00).contains(&unit) && raw.get(i..i + 2) == Some(b"\\u") {
            if let Some(low) = raw.get(i + 2..i + 6).and_then(hex4) {
                if (0xDC00..0xE000).contains(&low) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    i += 6;
                }
            }
        }
        push_wtf8(cp, out);
    }
    Some(())
}

/// Whether a string's value looks like JSON text (an object or array): the strings whose
/// escapes are a second level, which the codebook's model has not seen.
fn holds_json(value: &[u8]) -> bool {
    let t = value.trim_ascii_start();
    matches!(t.first(), Some(b'{' | b'['))
}

/// False if the value of the string whose bytes between quotes are `raw` fails [`holds_json`],
/// told without unescaping it: its value starts with `raw`'s white space (copied as it is), so
/// a first other byte that is not an escape decides.
fn may_hold_json(raw: &[u8]) -> bool {
    matches!(raw.trim_ascii_start().first(), Some(b'{' | b'[' | b'\\'))
}

fn hex4(h: &[u8]) -> Option<u16> {
    let mut v = 0u16;
    for &c in h {
        let d = (c as char).to_digit(16)?;
        v = v << 4 | d as u16;
    }
    Some(v)
}

/// Appends code point `cp` (a surrogate included) as WTF-8.
fn push_wtf8(cp: u32, out: &mut Vec<u8>) {
    match cp {
        0..=0x7F => out.push(cp as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (cp >> 12) as u8,
            0x80 | (cp >> 6 & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xF0 | (cp >> 18) as u8,
            0x80 | (cp >> 12 & 0x3F) as u8,
            0x80 | (cp >> 6 & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
    }
}

/// Appends the JSON escaping in `style` of the WTF-8 `value` (without quotes) to `out`; `Err`
/// holds the offset of the first byte that is not WTF-8.
fn escape(value: &[u8], style: u8, out: &mut Vec<u8>) -> std::result::Result<(), usize> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let unit = |u: u32, out: &mut Vec<u8>| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[(u >> shift & 0xF) as usize]);
        }
    };
    let mut i = 0;
    while i < value.len() {
        // A run of printable ASCII bytes that stay as they are (most of a string): one copy.
        let run = value[i..]
            .iter()
            .position(|&c| !(0x20..0x7F).contains(&c) || c == b'"' || c == b'\\')
            .unwrap_or(value.len() - i);
        if run > 0 {
            out.extend_from_slice(&value[i..i + run]);
            i += run;
            continue;
        }
        let b = value[i];
        if b < 0x80 {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0C => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..=0x1F => unit(u32::from(b), out),
                0x7F if style == ASCII => unit(0x7F, out),
                _ => out.push(b),
            }
            i += 1;
            continue;
        }
        let (cp, len) = wtf8_at(&value[i..]).ok_or(i)?;
        let surrogate = (0xD800..0xE000).contains(&cp);
        if style == ASCII || surrogate {
            if cp > 0xFFFF {
                let v = cp - 0x10000;
                unit(0xD800 + (v >> 10), out);
                unit(0xDC00 + (v & 0x3FF), out);
            } else {
                unit(cp, out);
            }
        } else {
            out.extend_from_slice(&value[i..i + len]);
        }
        i += len;
    }
    Ok(())
}

/// The code point (a surrogate allowed) and length of the shortest-form WTF-8 sequence that
/// starts `s` (whose first byte is at least 0x80), or `None`.
fn wtf8_at(s: &[u8]) -> Option<(u32, usize)> {
    let b0 = s[0];
    let (len, init, min) = match b0 {
        0xC2..=0xDF => (2, u32::from(b0 & 0x1F), 0x80),
        0xE0..=0xEF => (3, u32::from(b0 & 0x0F), 0x800),
        0xF0..=0xF4 => (4, u32::from(b0 & 0x07), 0x10000),
        _ => return None,
    };
    let tail = s.get(1..len)?;
    let mut cp = init;
    for &c in tail {
        if c & 0xC0 != 0x80 {
            return None;
        }
        cp = cp << 6 | u32::from(c & 0x3F);
    }
    (cp >= min && cp <= 0x10FFFF).then_some((cp, len))
}

/// Whether `s` holds a backslash followed by `u` (anywhere: escaped or not).
fn has_unicode_escape(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(k) = find(&s[i..], b'\\') {
        if s.get(i + k + 1) == Some(&b'u') {
            return true;
        }
        i += k + 1;
    }
    false
}

/// Bytes `0x01` in every lane of a word.
const LANES_LO: u64 = 0x0101_0101_0101_0101;
/// Bytes `0x80` in every lane of a word.
const LANES_HI: u64 = 0x8080_8080_8080_8080;

/// A word whose lowest set bit is the top bit of the first (lowest) zero byte of `v`, or 0:
/// borrows only run upwards from a zero byte, so the bits above it may be wrong, never the
/// lowest one.
#[inline(always)]
fn zero_lanes(v: u64) -> u64 {
    v.wrapping_sub(LANES_LO) & !v & LANES_HI
}

/// The position of the first `a` in `s`: as `s.iter().position(|&c| c == a)`, eight bytes a
/// step (the strings of a JSON line are long, and scanned several times).
#[inline]
fn find(s: &[u8], a: u8) -> Option<usize> {
    find2(s, a, a)
}

/// The position of the first `a` or `b` in `s`, eight bytes a step.
#[inline]
fn find2(s: &[u8], a: u8, b: u8) -> Option<usize> {
    let (wa, wb) = (LANES_LO * u64::from(a), LANES_LO * u64::from(b));
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for c in chunks.by_ref() {
        let w = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        let z = zero_lanes(w ^ wa) | zero_lanes(w ^ wb);
        if z != 0 {
            return Some(at + (z.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == a || c == b)
        .map(|p| at + p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn form(x: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        encode(x, &mut f);
        let mut back = Vec::new();
        decode(&f, &mut back).unwrap();
        assert_eq!(back, x, "round trip of {:?}", String::from_utf8_lossy(x));
        f
    }

    #[test]
    fn strings_holding_json_are_unescaped() {
        let line = br#"{"id": 1, "text": "{\"a\": \"b\\nc\", \"d\": \"\\\\\"}"}"#;
        let f = form(line);
        assert_eq!(f[0], MINIMAL);
        assert_eq!(
            &f[1..],
            b"{\"id\": 1, \"text\": \xff{\"a\": \"b\\nc\", \"d\": \"\\\\\"}\xff}"
        );
        // Python's ensure_ascii: é, an emoji as a surrogate pair, a lone surrogate, DEL.
        let line = br#"{"t": "[\"caf\u00e9 \ud83d\ude00 \ud800 \u007f\n\"]"}"#;
        let f = form(line);
        assert_eq!(f[0], ASCII);
        assert_eq!(
            &f[1..],
            b"{\"t\": \xff[\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xed\xa0\x80 \x7f\n\"]\xff}"
        );
    }

    #[test]
    fn other_records_are_kept() {
        // Few escapes, text that is not JSON, no strings, non-canonical escapes, a mark,
        // reserved first bytes, an unterminated string.
        for x in [
            &b"{\"a\": \"{b\\nc\"}\n"[..],
            b"{\"a\": \"b\\nc\\n\\n\\n\\n\"}\n",
            b"",
            b"plain text\n",
            b"{\"t\": \"{\\/\\/\\/\\/\"}",
            b"{\"t\": \"{\\u00E9\\u00E9\\u00E9\\u00E9\"}",
            b"\xff\"{\\n\\n\\n\\n\"",
            b"\x00\x01\x02",
            b"\x07",
            b"{\"t\": \"{\\n\\n\\n\\n",
        ] {
            let f = form(x);
            if x.first().is_some_and(|&b| b <= RESERVED_MAX) {
                assert_eq!(f[0], RAW);
                assert_eq!(&f[1..], x);
            } else {
                assert_eq!(f, x);
            }
        }
        // A string with raw UTF-8 next to ASCII escapes stays, the other is unescaped.
        let f = form("{\"a\": \"{é\\n\\n\\n\\n\", \"b\": \"{\\u00e9\\n\\n\\n\"}".as_bytes());
        assert_eq!(f[0], MINIMAL);
        assert!(f.windows(2).any(|w| w == b"\xff{"));
    }

    #[test]
    fn bad_forms_are_errors() {
        let mut out = Vec::new();
        for bad in [
            &b"\x03abc"[..],
            b"\x07",
            b"\x01{\xffabc",
            b"\x01\xff\xc3\xff",
            b"\x01\xff\xc0\x80\xff",
        ] {
            assert!(decode(bad, &mut out).is_err(), "{bad:?}");
        }
        out.clear();
        decode(b"\x02\xff\xed\xa0\x80\xff", &mut out).unwrap();
        assert_eq!(out, b"\"\\ud800\"");
    }

    #[test]
    fn records_of_many_fields_take_the_fields_layout() {
        let line = b"{\"a\": 1, \"b\": \"x\", \"c\": [1, 2], \"d\": {\"e\": true}, \"f\": null, \"g\": -0}\n";
        let f = form(line);
        assert_eq!(f[0], FIELD_RAW);
        assert_eq!(
            &f[1..],
            &b"{\"a\": , \"b\": , \"c\": [1, 2], \"d\": {\"e\": }, \"f\": , \"g\": } 1 \"x\" true null -0\n"[..]
        );
        // Four member values are too few; a value the walk cannot cut keeps the record whole.
        for x in [
            &b"{\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4}\n"[..],
            b"{\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4, \"e\": 5 6}\n",
            b"{\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4, \"e\": }",
        ] {
            assert_eq!(form(x), x);
        }
        // White space the skeleton cannot place (before a comma) falls back to the plain form.
        let x = b"{\"a\": 1 , \"b\": 2, \"c\": 3, \"d\": 4, \"e\": 5}";
        assert_eq!(form(x), x);
    }

    #[test]
    fn values_are_coded_against_the_frame() {
        let a =
            form(b"{\"id\": \"r-0099\", \"ts\": \"12:59\", \"n\": 7, \"m\": \"gpt\", \"x\": 1}\n");
        let b =
            form(b"{\"id\": \"r-0100\", \"ts\": \"13:01\", \"n\": 8, \"m\": \"gpt\", \"x\": 1}\n");
        let mut coded = Vec::new();
        assert!(against(&b, Some(&a), &mut coded));
        // `12:59` to `13:01`: the digits 1259 and 1301 differ by 42; one-digit values stay.
        assert_eq!(
            &coded[1..],
            &b"{\"id\": , \"ts\": , \"n\": , \"m\": , \"x\": } ~1 ~42 8 ^ 1\n"[..]
        );
        let mut back = coded.clone();
        resolve(&mut back, Some(&a)).unwrap();
        assert_eq!(back, b);
        // A negative difference, and a record without frame tokens resolves to itself.
        let mut coded = Vec::new();
        assert!(against(&a, Some(&b), &mut coded));
        assert!(coded.windows(4).any(|w| w == b" ~-1"));
        let mut same = b.clone();
        resolve(&mut same, None).unwrap();
        assert_eq!(same, b);
        // Another skeleton, or a frame that is not a fields form: nothing to code against.
        let c =
            form(b"{\"id\": \"r-0101\", \"ts\": \"13:02\", \"n\": 8, \"m\": \"gpt\", \"y\": 1}\n");
        assert!(!against(&c, Some(&b), &mut Vec::new()));
        assert!(!against(&b, Some(b"plain"), &mut Vec::new()));
        // Tokens that refer to no frame, another skeleton, or digits out of range are errors,
        // in both readers.
        for frame in [None, Some(&c[..]), Some(&b"{}"[..])] {
            let mut x = coded.clone();
            assert!(resolve(&mut x, frame).is_err());
            let mut x = coded.clone();
            assert!(resolve_all(&mut x, frame).is_err());
        }
        let mut back = coded.clone();
        resolve_all(&mut back, Some(&b)).unwrap();
        assert_eq!(back, a);
        let mut x = b"\x04{\"a\": , \"b\": , \"c\": , \"d\": , \"e\": } ~9 1 1 1 1".to_vec();
        let f = b"\x04{\"a\": , \"b\": , \"c\": , \"d\": , \"e\": } 5 1 1 1 1";
        assert!(resolve(&mut x, Some(f)).is_err(), "5 + 9 has two digits");
        // Plain decoding refuses frame tokens.
        assert!(decode(&coded, &mut Vec::new()).is_err());
    }

    #[test]
    fn values_equal_to_an_earlier_one_are_coded_by_reference() {
        // A plain form (3 fields): the package that repeats the id is `=0`, without a frame;
        // a plain form is never coded against its frame, even one of the same skeleton.
        let a = form(b"{\"id\": \"0ad-data\", \"package\": \"0ad-data\", \"text\": \"x\"}\n");
        let b = form(b"{\"id\": \"0ad-data\", \"package\": \"0ad\", \"text\": \"x\"}\n");
        let mut coded = Vec::new();
        assert!(against(&a, None, &mut coded));
        assert_eq!(
            coded,
            b"{\"id\": \"0ad-data\", \"package\": =0, \"text\": \"x\"}\n"
        );
        let mut back = coded.clone();
        resolve_all(&mut back, None).unwrap();
        assert_eq!(back, a);
        assert!(!against(&b, Some(&b), &mut Vec::new()), "{b:?}");
        // The earlier layout's reader does not know `=`: it leaves a plain form alone.
        let mut old = coded.clone();
        resolve(&mut old, None).unwrap();
        assert_eq!(old, coded);
        // In the fields layout: `^` against the frame first, then `=`, then `~`; short values
        // stay (`"x"` is not worth `=1`).
        let c = form(
            b"{\"a\": \"k-17\", \"b\": \"y\", \"c\": \"k-17\", \"d\": \"y\", \"e\": \"k-18\"}",
        );
        let d = form(
            b"{\"a\": \"k-18\", \"b\": \"x\", \"c\": \"k-18\", \"d\": \"x\", \"e\": \"k-18\"}",
        );
        assert_eq!(c[0], FIELD_RAW);
        let mut coded = Vec::new();
        assert!(against(&d, Some(&c), &mut coded));
        assert_eq!(
            &coded[1..],
            b"{\"a\": , \"b\": , \"c\": , \"d\": , \"e\": } ~1 \"x\" =0 \"x\" ^"
        );
        let mut back = coded.clone();
        resolve_all(&mut back, Some(&c)).unwrap();
        assert_eq!(back, d);
        // The earlier reader refuses nothing it did not know: `=` is not a value to it.
        assert!(resolve(&mut coded.clone(), Some(&c)).is_ok());
    }

    #[test]
    fn plain_forms_resolve_and_bad_references_are_errors() {
        // The reader takes `^` and `~` in a plain form too (the writer does not make them).
        let frame = b"\x01{\"id\": \"x-09\", \"c\": \"abc\", \"t\": \xffq\xff}";
        let mut x = b"{\"id\": ~1, \"c\": ^, \"t\": =1}".to_vec();
        resolve_all(&mut x, Some(frame)).unwrap();
        assert_eq!(x, b"{\"id\": \"x-10\", \"c\": \"abc\", \"t\": \"abc\"}");
        for (bad, frame) in [
            (&b"{\"a\": =0}"[..], None),
            (b"{\"a\": 1, \"b\": =1}", None),
            (b"{\"a\": 1, \"b\": =99999999999999999999999}", None),
            (b"{\"a\": ^}", None),
            (b"{\"a\": ^}", Some(&b"{\"b\": 1}"[..])),
            (b"{\"a\": ^}", Some(&b"\x04{\"a\": } 1"[..])),
            (b"{\"a\": ~5}", Some(&b"{\"a\": \"z\"}"[..])),
        ] {
            let mut x = bad.to_vec();
            assert!(resolve_all(&mut x, frame).is_err(), "{bad:?}");
        }
        // A RAW form, or one that is not an object, is never resolved.
        for kept in [&b"\x00{\"a\": ^}"[..], b"^", b"[=0]", b"{\"a\": \"^\"}"] {
            let mut x = kept.to_vec();
            resolve_all(&mut x, None).unwrap();
            assert_eq!(x, kept);
        }
        // So a line whose values look like tokens (not JSON) is kept after a RAW byte.
        for line in [
            &b"{\"a\": ^, \"b\": 1}"[..],
            b"{\"a\": =0}\n",
            b"{\"a\": ~-1}",
        ] {
            let f = form(line);
            assert_eq!(f[0], RAW);
            assert_eq!(&f[1..], line);
        }
    }

    /// A JSON value of every kind, its strings from any code points (lone surrogates aside).
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[{\\[\"\\\\\n\t\u{1}é😀 a-z]{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::vec(("[a-z\"\\\\]{0,6}", inner), 0..6)
                    .prop_map(|m| { serde_json::Value::Object(m.into_iter().collect()) }),
            ]
        })
    }

    /// `value` as Python's `json.dumps` writes it by default (ensure_ascii).
    fn python_ascii(value: &serde_json::Value, out: &mut String) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        '\u{8}' => out.push_str("\\b"),
                        '\u{c}' => out.push_str("\\f"),
                        ' '..='~' => out.push(c),
                        _ => {
                            let mut units = [0u16; 2];
                            for u in c.encode_utf16(&mut units) {
                                out.push_str(&format!("\\u{u:04x}"));
                            }
                        }
                    }
                }
                out.push('"');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    python_ascii(v, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    python_ascii(&Value::from(k.as_str()), out);
                    out.push_str(": ");
                    python_ascii(v, out);
                }
                out.push('}');
            }
            v => out.push_str(&v.to_string()),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The word-at-a-time searches find what a byte loop finds, at any alignment, around
        /// bytes that differ from the sought ones by one bit (borrows) or by 0x80.
        #[test]
        fn word_searches_match_a_byte_loop(
            x in prop::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), Just(0xFF), Just(0x7F), Just(b'#'),
                    Just(0x22 ^ 0x80), Just(0x5C ^ 1), Just(0), Just(1), any::<u8>()],
                0..40,
            ),
            from in 0usize..9,
        ) {
            let s = &x[from.min(x.len())..];
            for a in [b'"', b'\\', MARK, 0, 1, 0x80] {
                prop_assert_eq!(find(s, a), s.iter().position(|&c| c == a));
                for b in [b'"', b'\\', MARK, 0x7F] {
                    prop_assert_eq!(find2(s, a, b), s.iter().position(|&c| c == a || c == b));
                }
            }
            prop_assert_eq!(has_unicode_escape(s), s.windows(2).any(|w| w == b"\\u"));
        }

        /// The test before unescaping a string passes every string whose value is JSON text.
        #[test]
        fn the_json_prefilter_passes_every_json_string(
            raw in prop::collection::vec(
                prop_oneof![Just(b' '), Just(b'\t'), Just(0x0C), Just(b'\\'), Just(b'n'), Just(b'f'),
                    Just(b'u'), Just(b'0'), Just(b'a'), Just(b'{'), Just(b'['), any::<u8>()],
                0..14,
            ),
        ) {
            let mut value = Vec::new();
            if unescape(&raw, &mut value).is_some() && holds_json(&value) {
                prop_assert!(may_hold_json(&raw), "{:?}", raw);
            }
        }

        #[test]
        fn any_bytes_round_trip(x in prop::collection::vec(any::<u8>(), 0..300)) {
            form(&x);
        }

        #[test]
        fn any_bytes_decode_without_panic(x in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&x, &mut Vec::new());
            let mut fields = vec![FIELD_MINIMAL];
            fields.extend_from_slice(&x);
            let _ = decode(&fields, &mut Vec::new());
        }

        #[test]
        fn any_bytes_resolve_without_panic(
            x in prop::collection::vec(any::<u8>(), 0..200),
            tail in "( (\\^|~-?[0-9]{0,40}|=[0-9]{1,3}|[0-9]{1,5}|\"[a-z]*\"))*",
            frame_tail in "( (\\^|~-?[0-9]{0,3}|=[0-9]|[0-9]{1,5}|\"[a-z0-9]*\"))*",
            plain in prop::collection::vec("(\\^|~-?[0-9]{0,40}|=[0-9]{1,3}|[0-9]{1,5}|\"[a-z]*\")", 0..6),
            plain_frame in prop::collection::vec("(\\^|=[0-9]|[0-9]{1,5}|\"[a-z0-9]*\")", 0..6),
        ) {
            let skeleton = b"\x04{\"a\": , \"b\": , \"c\": , \"d\": , \"e\": }";
            let mut coded = skeleton.to_vec();
            coded.extend_from_slice(tail.as_bytes());
            let mut frame = skeleton.to_vec();
            frame.extend_from_slice(frame_tail.as_bytes());
            let _ = resolve(&mut coded.clone(), Some(&frame));
            let _ = resolve_all(&mut coded, Some(&frame));
            let mut raw = x.clone();
            let _ = resolve(&mut raw, Some(&x));
            let mut raw = x.clone();
            let _ = resolve_all(&mut raw, Some(&x));
            // Plain objects of tokens, against plain frames of tokens.
            let object = |values: &[String]| {
                let members: Vec<String> =
                    values.iter().enumerate().map(|(i, v)| format!("\"k{i}\": {v}")).collect();
                format!("{{{}}}", members.join(", ")).into_bytes()
            };
            let (mut coded, frame) = (object(&plain), object(&plain_frame));
            let _ = resolve_all(&mut coded.clone(), None);
            let _ = resolve_all(&mut coded, Some(&frame));
        }

        /// Any bytes, and any bytes as a frame: a form coded by reference resolves to itself.
        #[test]
        fn any_bytes_against_round_trip(
            x in prop::collection::vec(any::<u8>(), 0..200),
            y in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let (fx, fy) = (form(&x), form(&y));
            for frame in [None, Some(&fy[..]), Some(&fx[..])] {
                let mut coded = Vec::new();
                if against(&fx, frame, &mut coded) {
                    resolve_all(&mut coded, frame).unwrap();
                    prop_assert_eq!(&coded, &fx);
                } else {
                    prop_assert!(coded.is_empty());
                }
            }
            // A form as encode makes it resolves to itself.
            let mut same = fx.clone();
            resolve_all(&mut same, Some(&fy)).unwrap();
            prop_assert_eq!(same, fx);
        }

        /// Request-log lines of many fields, in any spacing, with odd numbers, duplicate keys,
        /// nested values and JSON text in strings, round-trip through the form and through
        /// coding against the line before them.
        #[test]
        fn field_records_round_trip(
            rows in prop::collection::vec(
                prop::collection::vec(
                    (
                        "(id|ts|role|n|x|id)",
                        prop_oneof![
                            "\"req-[0-9]{6}\"",
                            "\"req-00000[0-2]\"",
                            "\"20[0-9]{2}-12-0[1-9]T1[0-9]:[0-5][0-9]:[0-5][0-9]\\.[0-9]{3}Z\"",
                            "-?[0-9]{1,6}",
                            "(1\\.0e\\+00|-0|0\\.5E-3|true|false|null)",
                            "\"(user|assistant|caf\\\\u00e9|é|\\\\ud800|\\\\n)\"",
                            json_value().prop_map(|v| v.to_string()),
                            json_value().prop_map(|v| serde_json::Value::from(v.to_string()).to_string()),
                        ],
                    ),
                    0..12,
                ),
                1..4,
            ),
            sep in "(, |,|,  )",
            end in "(\n|\r\n|)",
        ) {
            let mut prev: Option<Vec<u8>> = None;
            for row in rows {
                let members: Vec<String> =
                    row.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                let line = format!("{{{}}}{end}", members.join(&sep));
                let f = form(line.as_bytes());
                let scalars = row
                    .iter()
                    .filter(|(_, v)| !v.starts_with('{') && !v.starts_with('['))
                    .count();
                if scalars >= MIN_FIELDS {
                    prop_assert!(f[0] & FIELDS != 0, "{line}");
                }
                let mut coded = Vec::new();
                if against(&f, prev.as_deref(), &mut coded) {
                    resolve_all(&mut coded, prev.as_deref()).unwrap();
                    prop_assert_eq!(&coded, &f);
                }
                prev = Some(f);
            }
        }

        /// serde_json's and Python's lines, with a string holding the value as JSON text (a
        /// request body in a log line), round-trip; the JSON text strings are unescaped.
        #[test]
        fn json_lines_round_trip(v in json_value(), id in any::<u32>()) {
            let inner = serde_json::json!({"body": v});
            let minimal = serde_json::json!({"id": id, "text": inner.to_string()}).to_string();
            let f = form(minimal.as_bytes());
            // The text's escapes (those of its quotes, 2, and of the value's); only the text
            // field can hold enough, and it holds JSON text.
            let unescaped = |f: &[u8], line: &str| {
                line.matches('\\').count() < MIN_ESCAPES
                    || (matches!(f[0], MINIMAL | ASCII) && f.contains(&MARK))
            };
            prop_assert!(unescaped(&f, &minimal));
            let mut body = String::new();
            python_ascii(&inner, &mut body);
            let mut line = String::new();
            python_ascii(&serde_json::json!({"id": id, "text": body}), &mut line);
            line.push('\n');
            let f = form(line.as_bytes());
            prop_assert!(unescaped(&f, &line));
        }
    }
}
