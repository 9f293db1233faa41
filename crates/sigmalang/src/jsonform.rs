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
            debug_assert!(decodes_to(&out[start..], record));
            return;
        }
    }
    if record.first().is_some_and(|&b| b <= RESERVED_MAX) {
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
    let Some(end) = walk(body, &mut slots, false) else {
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
    let end = walk(layout, &mut slots, true)
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

/// A value of a fields form coded against its frame's: the same bytes as the frame's value.
pub const SAME: u8 = b'^';
/// A value of a fields form coded against its frame's: `~`, then the difference (a decimal
/// integer, `-` first if negative) between its digits and the frame's value's digits.
pub const DELTA: u8 = b'~';

/// The values of a fields form (first byte `04`-`06`): where its skeleton ends (in `form`),
/// the byte range of each value (a string, number or literal, or a [`SAME`] or [`DELTA`]
/// token), and where the rest starts. `None` if `form` is not a fields form or is malformed.
fn values_of(form: &[u8]) -> Option<(usize, Vec<std::ops::Range<usize>>, usize)> {
    if !matches!(
        form.first(),
        Some(&(FIELD_RAW | FIELD_MINIMAL | FIELD_ASCII))
    ) {
        return None;
    }
    let layout = &form[1..];
    let mut slots = Vec::with_capacity(16);
    let end = walk(layout, &mut slots, true)?;
    let mut values = Vec::with_capacity(slots.len());
    let mut i = end;
    for _ in 0..slots.len() {
        if layout.get(i) != Some(&b' ') {
            return None;
        }
        let v = match *layout.get(i + 1)? {
            SAME => i + 2,
            DELTA => {
                let from = i + 2 + usize::from(layout.get(i + 2) == Some(&b'-'));
                let len = layout[from..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .unwrap_or(layout.len() - from);
                if len == 0 {
                    return None;
                }
                from + len
            }
            _ => scalar_end(layout, i + 1)?,
        };
        values.push(1 + i + 1..1 + v);
        i = v;
    }
    Some((1 + end, values, 1 + i))
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

/// Codes the fields form `form` against `frame`, the last of its context frames, into `out`
/// and returns true, if both are fields forms (first bytes `04`-`06`) with the same skeleton
/// and some value of `form` is cheaper said against the frame's value in the same place:
/// the same bytes ([`SAME`]), or the same bytes but for digits whose number differs by a
/// short difference ([`DELTA`]: sequential ids, timestamps, counters). Else returns false and
/// leaves `out` as it was. [`resolve`] gives the form back from `out` and the same frame.
pub fn against(form: &[u8], frame: &[u8], out: &mut Vec<u8>) -> bool {
    let (Some((end, values, rest)), Some((fend, fvalues, _))) = (values_of(form), values_of(frame))
    else {
        return false;
    };
    if form[1..end] != frame[1..fend] || values.len() != fvalues.len() {
        return false;
    }
    let start = out.len();
    out.extend_from_slice(&form[..end]);
    let mut any = false;
    let mut text = String::new();
    for (v, f) in values.iter().zip(&fvalues) {
        let (v, f) = (&form[v.clone()], &frame[f.clone()]);
        out.push(b' ');
        // A frame's value may itself be a token against its own frame: never referred to.
        if matches!(f.first(), Some(&(SAME | DELTA))) {
            out.extend_from_slice(v);
            continue;
        }
        if v == f && v.len() >= 2 {
            out.push(SAME);
            any = true;
            continue;
        }
        if same_template(v, f) {
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
    out.extend_from_slice(&form[rest..]);
    if any {
        // As the other forms, checked: the reader must get the form back exactly (as
        // `resolve` would, with the frame's values found once).
        let coded = &out[start..];
        let mut back = Vec::with_capacity(form.len());
        let exact = values_of(coded).is_some_and(|(cend, cvalues, crest)| {
            coded[1..cend] == frame[1..fend]
                && cvalues.len() == fvalues.len()
                && resolve_values(coded, &cvalues, cend, crest, frame, &fvalues, &mut back).is_ok()
                && back == form
        });
        if exact {
            return true;
        }
    }
    out.truncate(start);
    false
}

/// Turns `coded`, a record's bytes as its payload decoded them, back into its form: the
/// [`SAME`] and [`DELTA`] values of a fields form are replaced by the values they stand for,
/// read from `frame` (the last of the record's context frames, as the encoder gave them to
/// [`against`]). Any other bytes are left as they are.
///
/// # Errors
/// `Corrupt` if `coded` refers to a frame's value that is not there (no frame, another
/// skeleton, a difference out of range).
pub fn resolve(coded: &mut Vec<u8>, frame: Option<&[u8]>) -> Result<()> {
    let Some((end, values, rest)) = values_of(coded) else {
        return Ok(());
    };
    if !values
        .iter()
        .any(|v| matches!(coded[v.start], SAME | DELTA))
    {
        return Ok(());
    }
    let bad = |what: &str| Error::corrupt(format!("a fields form {what}"), 0);
    let frame = frame.ok_or_else(|| bad("refers to a frame, and the record has none"))?;
    let (fend, fvalues, _) =
        values_of(frame).ok_or_else(|| bad("refers to a frame that is not a fields form"))?;
    if coded[1..end] != frame[1..fend] || fvalues.len() != values.len() {
        return Err(bad("refers to a frame of another skeleton"));
    }
    let mut out = Vec::with_capacity(coded.len() + 64);
    resolve_values(coded, &values, end, rest, frame, &fvalues, &mut out)?;
    *coded = out;
    Ok(())
}

/// The work of [`resolve`] once both forms are parsed (`coded`'s values and the frame's, of
/// the same skeleton ending at `end`, the rest of `coded` from `rest`): appends the form to
/// `out`.
fn resolve_values(
    coded: &[u8],
    values: &[std::ops::Range<usize>],
    end: usize,
    rest: usize,
    frame: &[u8],
    fvalues: &[std::ops::Range<usize>],
    out: &mut Vec<u8>,
) -> Result<()> {
    let bad = |what: &str| Error::corrupt(format!("a fields form {what}"), 0);
    out.extend_from_slice(&coded[..end]);
    for (v, f) in values.iter().zip(fvalues) {
        let (v, f) = (&coded[v.clone()], &frame[f.clone()]);
        out.push(b' ');
        match v[0] {
            SAME => out.extend_from_slice(f),
            DELTA => {
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
            _ => out.extend_from_slice(v),
        }
    }
    out.extend_from_slice(&coded[rest..]);
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
/// than [`MAX_DEPTH`]. Strings are JSON strings (`"…"`, up to the first quote not escaped) or
/// unescaped ones (`FF … FF`); numbers and literals any run of `[A-Za-z0-9+.-]`; the encoder
/// checks that the layout gives back its record, so the walk only needs to be the same both
/// ways, not a validator.
fn walk(b: &[u8], slots: &mut Vec<(usize, usize)>, cut: bool) -> Option<usize> {
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
                let end = scalar_end(b, i)?;
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
    let wa = LANES_LO * u64::from(a);
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for c in chunks.by_ref() {
        let w = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        let z = zero_lanes(w ^ wa);
        if z != 0 {
            return Some(at + (z.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == a)
        .map(|p| at + p)
}

/// The position of the first `a` or `b` in `s`, eight bytes a step (see [`find`]).
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
        assert!(against(&b, &a, &mut coded));
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
        assert!(against(&a, &b, &mut coded));
        assert!(coded.windows(4).any(|w| w == b" ~-1"));
        let mut same = b.clone();
        resolve(&mut same, None).unwrap();
        assert_eq!(same, b);
        // Another skeleton, or a frame that is not a fields form: nothing to code against.
        let c =
            form(b"{\"id\": \"r-0101\", \"ts\": \"13:02\", \"n\": 8, \"m\": \"gpt\", \"y\": 1}\n");
        assert!(!against(&c, &b, &mut Vec::new()));
        assert!(!against(&b, b"plain", &mut Vec::new()));
        // Tokens that refer to no frame, another skeleton, or digits out of range are errors.
        for frame in [None, Some(&c[..]), Some(&b"{}"[..])] {
            let mut x = coded.clone();
            assert!(resolve(&mut x, frame).is_err());
        }
        let mut x = b"\x04{\"a\": , \"b\": , \"c\": , \"d\": , \"e\": } ~9 1 1 1 1".to_vec();
        let f = b"\x04{\"a\": , \"b\": , \"c\": , \"d\": , \"e\": } 5 1 1 1 1";
        assert!(resolve(&mut x, Some(f)).is_err(), "5 + 9 has two digits");
        // Plain decoding refuses frame tokens.
        assert!(decode(&coded, &mut Vec::new()).is_err());
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
            tail in "( (\\^|~-?[0-9]{0,40}|[0-9]{1,5}|\"[a-z]*\"))*",
            frame_tail in "( (\\^|~-?[0-9]{0,3}|[0-9]{1,5}|\"[a-z0-9]*\"))*",
        ) {
            let skeleton = b"\x04{\"a\": , \"b\": , \"c\": , \"d\": , \"e\": }";
            let mut coded = skeleton.to_vec();
            coded.extend_from_slice(tail.as_bytes());
            let mut frame = skeleton.to_vec();
            frame.extend_from_slice(frame_tail.as_bytes());
            let _ = resolve(&mut coded, Some(&frame));
            let mut raw = x.clone();
            let _ = resolve(&mut raw, Some(&x));
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
                if let Some(p) = &prev {
                    let mut coded = Vec::new();
                    if against(&f, p, &mut coded) {
                        resolve(&mut coded, Some(p)).unwrap();
                        prop_assert_eq!(&coded, &f);
                    }
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
