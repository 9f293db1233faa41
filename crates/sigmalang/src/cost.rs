//! Where the bits go: what the coder really spent on each byte of a record, and on each span of
//! its semantic tree.
//!
//! [`Encoder::encode_traced`](crate::Encoder::encode_traced) (an archive record, against its
//! frames) and [`Encoder::encode_chunk_traced`](crate::Encoder::encode_chunk_traced) (a stream
//! chunk, `MODELED` or `ADAPTIVE`) code a record exactly as their untraced twins do, byte for
//! byte, and return a [`CostTrace`]: the bits of every input byte, and the DELTA runs with what
//! they copy from. A byte's bits are the range coder's interval shrink while it was coded,
//! `log2(range before / range after)` summed over its symbols (the context model's escapes, the
//! match model's failed-prediction flag and the adaptive model's symbols included). A DELTA run's
//! flags and length are shared evenly by its bytes. [`spans`] then cuts the input into spans
//! that tile it (the leaves of the semantic tree, cut again where runs start and end), each
//! with its kind, its JSON field path and its bits.
//!
//! The sum of the bytes' bits is the information the range coder carries; the payload adds its
//! header varint and the last bytes that close the code ([`CostTrace::overhead_bits`]), a few
//! bytes per record whatever its length.
//!
//! ```
//! use sigmalang::{cost, Encoder};
//!
//! let text = b"{\"role\": \"user\", \"content\": \"Hello, hello, hello world!\"}";
//! let mut payload = Vec::new();
//! let trace = Encoder::default().encode_traced(&[], text, &mut payload).unwrap();
//! let tree = sigmalang::parse(text);
//! let spans = cost::spans(&tree, &trace);
//! assert_eq!(spans.first().unwrap().start, 0);
//! assert_eq!(spans.last().unwrap().end, text.len());
//! let bits: f64 = spans.iter().map(|s| s.bits).sum();
//! assert!((bits + trace.overhead_bits() - 8.0 * payload.len() as f64).abs() < 1e-6);
//! ```

use std::sync::Arc;

use crate::coder::RangeEncoder;
use crate::glyph::GlyphType;
use crate::parser::SemanticTree;
use crate::primitive::{Family, Primitive};
use crate::record::{read_header, Mode};

/// How a record's payload was coded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodedAs {
    /// The bytes as they are: 8 bits each.
    Stored,
    /// Range-coded with the codebook's context model and the match model.
    Modeled,
    /// As `Modeled`, with the adaptive model `V1` in front (`ADAPTIVE`: records after a primer).
    Adaptive,
    /// As `Modeled`, with the adaptive model `V2` in front (`ADAPTIVE2`: stream chunks, pages).
    Adaptive2,
}

impl CodedAs {
    /// The mode's name as FORMAT.md writes it.
    pub fn name(self) -> &'static str {
        match self {
            CodedAs::Stored => "STORED",
            CodedAs::Modeled => "MODELED",
            CodedAs::Adaptive => "ADAPTIVE",
            CodedAs::Adaptive2 => "ADAPTIVE2",
        }
    }
}

/// What a DELTA run copies from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunSource {
    /// Context frame `frame` (0 is the oldest, as given to the encoder), from byte `offset` of
    /// it. A run may go on into the following frames or the record.
    Frame {
        /// The frame's index among the record's frames.
        frame: usize,
        /// Where in the frame the copy starts.
        offset: usize,
    },
    /// An earlier part of the record itself, from byte `offset`.
    Record {
        /// Where in the record the copy starts.
        offset: usize,
    },
}

/// A DELTA run: `len` bytes from `start` that the coder sent as one run length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeltaRun {
    /// The run's first byte in the record.
    pub start: usize,
    /// The run's length in bytes.
    pub len: usize,
    /// The bits its flags and length took.
    pub bits: f64,
    /// What it copies.
    pub source: RunSource,
}

/// What every byte of one record cost the coder (see the [module docs](self)).
#[derive(Clone, Debug, Default)]
pub struct CostTrace {
    frame_starts: Vec<usize>,
    frames_len: usize,
    references: usize,
    bits: Vec<f32>,
    runs: Vec<DeltaRun>,
    spent: f64,
    modes: Vec<CodedAs>,
    header_len: usize,
    payload_len: usize,
}

impl CostTrace {
    /// An empty trace for a record of `len` bytes coded against frames of `frame_lens` bytes.
    pub(crate) fn new(frame_lens: impl Iterator<Item = usize>, len: usize) -> CostTrace {
        let mut frame_starts = Vec::new();
        let mut at = 0;
        for l in frame_lens {
            frame_starts.push(at);
            at += l;
        }
        CostTrace {
            frame_starts,
            frames_len: at,
            bits: vec![0.0; len],
            ..CostTrace::default()
        }
    }

    /// Completes the trace with the record's `payload`: its mode and header. A `STORED` record
    /// costs 8 bits a byte and has no runs, whatever the coder tried first.
    pub(crate) fn finish(&mut self, payload: &[u8]) {
        let header = read_header(payload).expect("the encoder wrote a valid header");
        self.header_len = header.body_offset;
        self.payload_len = payload.len();
        self.modes = vec![match header.mode {
            Mode::Stored => CodedAs::Stored,
            Mode::Modeled => CodedAs::Modeled,
            Mode::Adaptive => CodedAs::Adaptive,
            Mode::Adaptive2 => CodedAs::Adaptive2,
        }];
        if header.mode == Mode::Stored {
            self.bits.iter_mut().for_each(|b| *b = 8.0);
            self.runs.clear();
        }
    }

    /// Says that the first `n` frames are Σ-bank roots the record REFERENCEs (an archive puts
    /// them before its context frames); runs copying from them are REFERENCE spans.
    pub fn set_references(&mut self, n: usize) {
        self.references = n;
    }

    /// How many of the frames are REFERENCEs ([`set_references`](Self::set_references)).
    pub fn references(&self) -> usize {
        self.references
    }

    /// The bits of each byte of the record.
    pub fn byte_bits(&self) -> &[f32] {
        &self.bits
    }

    /// The DELTA runs, in record order (they never overlap).
    pub fn runs(&self) -> &[DeltaRun] {
        &self.runs
    }

    /// How the payload was coded (the first chunk's mode, for [`append`](Self::append)ed
    /// chunks).
    pub fn coded_as(&self) -> CodedAs {
        self.modes.first().copied().unwrap_or(CodedAs::Stored)
    }

    /// The mode of each chunk: one for a record, one per chunk after [`append`](Self::append).
    pub fn chunk_modes(&self) -> &[CodedAs] {
        &self.modes
    }

    /// Appends the trace of the record (stream chunk) that follows this one in the input, so
    /// that one trace covers a stream of several chunks. Its runs' [`RunSource::Record`] offsets
    /// become offsets in the whole input; its frames, if any, are not kept.
    pub fn append(&mut self, next: CostTrace) {
        let at = self.bits.len();
        self.bits.extend_from_slice(&next.bits);
        self.runs.extend(next.runs.iter().map(|r| DeltaRun {
            start: r.start + at,
            source: match r.source {
                RunSource::Record { offset } => RunSource::Record {
                    offset: offset + at,
                },
                frame => frame,
            },
            ..*r
        }));
        self.modes.extend_from_slice(&next.modes);
        self.header_len += next.header_len;
        self.payload_len += next.payload_len;
    }

    /// The payload's length in bytes (header included).
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// The bits of all the bytes: what the symbols took (8 a byte for `STORED`).
    pub fn symbol_bits(&self) -> f64 {
        self.bits.iter().map(|&b| f64::from(b)).sum()
    }

    /// The payload's bits that no byte accounts for: the header varint and the bytes that end
    /// the range code (which can be a fraction of a byte less than the information left in
    /// the coder, so this may be a little below the header's bits).
    pub fn overhead_bits(&self) -> f64 {
        8.0 * self.payload_len as f64 - self.symbol_bits()
    }

    /// The header's bits (the headers', for appended chunks).
    pub fn header_bits(&self) -> f64 {
        8.0 * self.header_len as f64
    }

    /// What a run starting at history position `src` copies.
    fn source(&self, src: usize) -> RunSource {
        if src >= self.frames_len {
            return RunSource::Record {
                offset: src - self.frames_len,
            };
        }
        let frame = self.frame_starts.partition_point(|&s| s <= src) - 1;
        RunSource::Frame {
            frame,
            offset: src - self.frame_starts[frame],
        }
    }
}

/// What the record loop tells a trace: where each literal and each DELTA run ends. The unit
/// type traces nothing, and the loop compiled for it is the untraced one.
pub(crate) trait Tracer {
    /// Byte `i` was coded as a literal (with whatever was coded since the last mark).
    fn literal(&mut self, i: usize, enc: &RangeEncoder<'_>);
    /// A DELTA run of `len` bytes from `start`, copying history position `src`, was coded.
    fn run(&mut self, start: usize, len: usize, src: usize, enc: &RangeEncoder<'_>);
}

impl Tracer for () {
    #[inline(always)]
    fn literal(&mut self, _: usize, _: &RangeEncoder<'_>) {}
    #[inline(always)]
    fn run(&mut self, _: usize, _: usize, _: usize, _: &RangeEncoder<'_>) {}
}

impl Tracer for CostTrace {
    fn literal(&mut self, i: usize, enc: &RangeEncoder<'_>) {
        let now = enc.bits_spent();
        self.bits[i] = (now - self.spent) as f32;
        self.spent = now;
    }

    fn run(&mut self, start: usize, len: usize, src: usize, enc: &RangeEncoder<'_>) {
        // An empty run's flag is part of the literal that follows it.
        if len == 0 {
            return;
        }
        let now = enc.bits_spent();
        let bits = now - self.spent;
        self.spent = now;
        let each = (bits / len as f64) as f32;
        self.bits[start..start + len]
            .iter_mut()
            .for_each(|b| *b = each);
        let source = self.source(src);
        self.runs.push(DeltaRun {
            start,
            len,
            bits,
            source,
        });
    }
}

/// What kind of content a span is, from the primitives above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Text: words, punctuation, whitespace, numbers and names in running text.
    Prose,
    /// Inside a fenced code block or inline code, or a code token.
    Code,
    /// JSON structure: keys, punctuation, numbers, literals, the quotes of strings.
    Json,
    /// Bytes that are not text (`BINARY`, `INVALID_BYTES`).
    Binary,
}

impl Class {
    /// The class's name in output.
    pub fn name(self) -> &'static str {
        match self {
            Class::Prose => "prose",
            Class::Code => "code",
            Class::Json => "json",
            Class::Binary => "binary",
        }
    }
}

/// A span of a record with what it cost. Spans tile the record.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// The bits the coder spent on the span's bytes.
    pub bits: f64,
    /// The leaf of the semantic tree the span is (part of). Inside a JSON string the string's
    /// contents are parsed as text, so a span there is a word, a URL, a code token…; its quotes
    /// are `JSON_STRING`.
    pub primitive: Primitive,
    /// Prose, code, JSON structure or binary.
    pub class: Class,
    /// The JSON field the span belongs to, as a path from the top of the document
    /// (`messages[].content`; the empty path is the top-level value's own punctuation), or
    /// `None` outside JSON.
    pub field: Option<Arc<str>>,
    /// How it was coded: `PRIMITIVE` (by the models, byte by byte), `DELTA` (a run copying
    /// the record itself or a context frame) or `REFERENCE` (a run copying a Σ-bank root).
    pub glyph_type: GlyphType,
    /// The index of its run in [`CostTrace::runs`], for `DELTA` and `REFERENCE` spans.
    pub run: Option<usize>,
}

impl Span {
    /// The span's kind for tables: `DELTA` or `REFERENCE` for copied bytes, else the name of
    /// its primitive.
    pub fn kind(&self) -> &'static str {
        match self.glyph_type {
            GlyphType::Delta | GlyphType::Reference => self.glyph_type.name(),
            _ => self.primitive.name(),
        }
    }
}

/// A leaf with the context the tree gives it.
struct Leaf {
    start: usize,
    end: usize,
    primitive: Primitive,
    class: Class,
    field: Option<Arc<str>>,
}

/// The spans of the record `tree` was parsed from, with the costs of `trace` (a trace of the
/// same bytes). They tile the record; their bits add up to [`CostTrace::symbol_bits`].
///
/// # Panics
/// If `trace` is of a record of another length than the tree's input.
pub fn spans(tree: &SemanticTree<'_>, trace: &CostTrace) -> Vec<Span> {
    let input = tree.input();
    assert_eq!(input.len(), trace.bits.len(), "a trace of another record");
    let mut leaves = Vec::new();
    collect_leaves(tree, 0, Class::Prose, None, &mut leaves);
    let mut out = Vec::with_capacity(leaves.len() + 2 * trace.runs.len());
    let runs = &trace.runs;
    let mut r = 0;
    for leaf in leaves {
        let mut at = leaf.start;
        while at < leaf.end {
            while r < runs.len() && runs[r].start + runs[r].len <= at {
                r += 1;
            }
            let (end, run) = match runs.get(r) {
                Some(run) if run.start <= at => (leaf.end.min(run.start + run.len), Some(r)),
                Some(run) => (leaf.end.min(run.start), None),
                None => (leaf.end, None),
            };
            let glyph_type = match run.map(|r| runs[r].source) {
                None => GlyphType::Primitive,
                Some(RunSource::Frame { frame, .. }) if frame < trace.references => {
                    GlyphType::Reference
                }
                Some(_) => GlyphType::Delta,
            };
            out.push(Span {
                start: at,
                end,
                bits: trace.bits[at..end].iter().map(|&b| f64::from(b)).sum(),
                primitive: leaf.primitive,
                class: leaf.class,
                field: leaf.field.clone(),
                glyph_type,
                run,
            });
            at = end;
        }
    }
    out
}

/// The class a leaf of primitive `p` has inside content of class `inherited`.
fn class_of(p: Primitive, inherited: Class) -> Class {
    match p.name() {
        "BINARY" | "INVALID_BYTES" => Class::Binary,
        _ if inherited != Class::Prose => inherited,
        _ if p.family() == Family::Code => Class::Code,
        _ => Class::Prose,
    }
}

/// Appends the leaves under `root` in order, with their class and JSON field.
fn collect_leaves(
    tree: &SemanticTree<'_>,
    root: u32,
    class: Class,
    field: Option<Arc<str>>,
    out: &mut Vec<Leaf>,
) {
    const STRING: Primitive = Primitive::domain("JSON_STRING");
    const KEY: Primitive = Primitive::domain("JSON_KEY");
    const MEMBER: Primitive = Primitive::domain("JSON_MEMBER");
    const ARRAY: Primitive = Primitive::domain("JSON_ARRAY");
    const DOCUMENT: Primitive = Primitive::domain("JSON_DOCUMENT");
    const CODE_BLOCK: Primitive = Primitive::domain("CODE_BLOCK");
    const INLINE_CODE: Primitive = Primitive::domain("INLINE_CODE");
    // Depth-first with an explicit stack; each entry carries its class and field.
    let mut stack = vec![(root, class, field)];
    while let Some((id, class, field)) = stack.pop() {
        let node = tree.node(id);
        let p = node.glyph.primitive;
        if node.glyph.glyph_type != GlyphType::Composite {
            if node.span.is_empty() {
                continue;
            }
            let in_json = field.is_some();
            if p == STRING && node.span.len() > 2 {
                string_leaves(tree, node.span.clone(), class, field, out);
                continue;
            }
            let class = if in_json && class == Class::Prose {
                Class::Json
            } else {
                class_of(p, class)
            };
            out.push(Leaf {
                start: node.span.start,
                end: node.span.end,
                primitive: p,
                class,
                field,
            });
            continue;
        }
        let mut class = class;
        let mut field = field;
        if p == CODE_BLOCK || p == INLINE_CODE {
            class = Class::Code;
        } else if p == DOCUMENT {
            field = Some(Arc::from(""));
        } else if p == MEMBER {
            let key = node
                .children
                .iter()
                .map(|&c| tree.node(c))
                .find(|c| c.glyph.primitive == KEY);
            if let Some(key) = key {
                let raw = tree.bytes(key);
                let name = String::from_utf8_lossy(&raw[1..raw.len() - 1]);
                let parent = field.as_deref().unwrap_or("");
                field = Some(if parent.is_empty() {
                    Arc::from(name.as_ref())
                } else {
                    Arc::from(format!("{parent}.{name}"))
                });
            }
        }
        let element = (p == ARRAY).then(|| {
            let parent = field.as_deref().unwrap_or("");
            Arc::<str>::from(format!("{parent}[]"))
        });
        for &c in node.children.iter().rev() {
            let child = tree.node(c);
            // An array's elements are `path[]`; its brackets, commas and spaces are the array's.
            let f = match &element {
                Some(e)
                    if child.glyph.primitive != Primitive::domain("JSON_PUNCT")
                        && child.glyph.primitive != Primitive::domain("WHITESPACE") =>
                {
                    Some(Arc::clone(e))
                }
                _ => field.clone(),
            };
            stack.push((c, class, f));
        }
    }
}

/// The leaves of a JSON string `span` (quotes included): its quotes, and its contents parsed as
/// text (escapes and all).
fn string_leaves(
    tree: &SemanticTree<'_>,
    span: std::ops::Range<usize>,
    class: Class,
    field: Option<Arc<str>>,
    out: &mut Vec<Leaf>,
) {
    const STRING: Primitive = Primitive::domain("JSON_STRING");
    let quote = |at: usize, field: Option<Arc<str>>| Leaf {
        start: at,
        end: at + 1,
        primitive: STRING,
        class: Class::Json,
        field,
    };
    out.push(quote(span.start, field.clone()));
    let inner = span.start + 1..span.end - 1;
    let sub = crate::parse(&tree.input()[inner.clone()]);
    let mut leaves = Vec::new();
    // The contents hold no unescaped quote, so they parse to no JSON string: this recurses
    // once at most.
    collect_leaves(&sub, 0, class, None, &mut leaves);
    for mut leaf in leaves {
        leaf.start += inner.start;
        leaf.end += inner.start;
        leaf.field = field.clone();
        out.push(leaf);
    }
    out.push(quote(span.end - 1, field));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Decoder, Encoder};

    fn check(frames: &[&[u8]], input: &[u8]) -> (CostTrace, Vec<Span>) {
        let mut plain = Vec::new();
        Encoder::default()
            .encode_with_frames(frames, input, &mut plain)
            .unwrap();
        let mut traced = Vec::new();
        let trace = Encoder::default()
            .encode_traced(frames, input, &mut traced)
            .unwrap();
        assert_eq!(plain, traced, "tracing changed the payload");
        let mut back = Vec::new();
        Decoder::default()
            .decode_with_frames(frames, &traced, &mut back)
            .unwrap();
        assert_eq!(back, input);
        let tree = crate::parse(input);
        let spans = spans(&tree, &trace);
        let mut at = 0;
        for s in &spans {
            assert_eq!(s.start, at, "spans tile the input");
            assert!(s.end > s.start);
            at = s.end;
        }
        assert_eq!(at, input.len());
        let sum: f64 = spans.iter().map(|s| s.bits).sum();
        assert!((sum - trace.symbol_bits()).abs() < 1e-3 * sum.max(1.0));
        (trace, spans)
    }

    /// The first `n` bytes of `s` or fewer, cut at a character boundary.
    fn cut(s: &str, mut n: usize) -> &str {
        n = n.min(s.len());
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        &s[..n]
    }

    /// Prose, code, and a JSON request whose strings hold both.
    fn inputs() -> Vec<Vec<u8>> {
        let prose = cut(include_str!("../README.md"), 6000);
        let code = cut(include_str!("coder.rs"), 6000);
        let json = format!(
            "{{\"model\": \"chat\", \"messages\": [{{\"role\": \"user\", \"content\": {}}}, {{\"role\": \"assistant\", \"content\": {}}}]}}",
            json_string(cut(prose, 3000)),
            json_string(&format!("```rust\n{}\n```", cut(code, 2000)))
        );
        vec![prose.into(), code.into(), json.into()]
    }

    fn json_string(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn bits_add_up_to_the_payload() {
        for input in inputs() {
            let (trace, _) = check(&[], &input);
            assert_eq!(trace.coded_as(), CodedAs::Modeled);
            let payload = 8.0 * trace.payload_len() as f64;
            let sum = trace.symbol_bits();
            assert!(
                (payload - sum).abs() <= 0.01 * payload,
                "{sum} bits traced, {payload} in the payload"
            );
            // What no byte accounts for is the header and less than two bytes closing the code.
            let tail = trace.overhead_bits() - trace.header_bits();
            assert!((-8.0..16.0).contains(&tail), "{tail}");
        }
    }

    #[test]
    fn runs_point_at_their_frames() {
        let frame = b"{\"messages\": [{\"role\": \"user\", \"content\": \"What is a monad in functional programming?\"}]}";
        let record = b"{\"messages\": [{\"role\": \"user\", \"content\": \"What is a monad in functional programming?\"}, {\"role\": \"assistant\", \"content\": \"A monad is a pattern.\"}]}";
        let (mut trace, spans) = check(&[b"unrelated frame text", frame], record);
        assert!(!trace.runs().is_empty());
        let first = trace.runs()[0];
        assert!(first.len > 60, "{first:?}");
        assert!(matches!(first.source, RunSource::Frame { frame: 1, .. }));
        assert!(spans.iter().any(|s| s.glyph_type == GlyphType::Delta));
        let copied: usize = spans
            .iter()
            .filter(|s| s.run.is_some())
            .map(|s| s.end - s.start)
            .sum();
        assert_eq!(copied, trace.runs().iter().map(|r| r.len).sum::<usize>());
        // As REFERENCEs (frames 0 and 1 are bank roots) the same spans are REFERENCE.
        trace.set_references(2);
        let tree = crate::parse(record);
        assert!(super::spans(&tree, &trace)
            .iter()
            .any(|s| s.glyph_type == GlyphType::Reference));
    }

    #[test]
    fn fields_and_classes() {
        let json = br#"{"a": {"b": [1, "two words"]}, "c": "see `x + 1`"}"#;
        let (_, spans) = check(&[], json);
        let of = |text: &str| {
            let at = json
                .windows(text.len())
                .position(|w| w == text.as_bytes())
                .unwrap();
            spans
                .iter()
                .find(|s| s.start <= at && at < s.end)
                .unwrap()
                .clone()
        };
        assert_eq!(of("1").field.as_deref(), Some("a.b[]"));
        assert_eq!(of("1").class, Class::Json);
        assert_eq!(of("words").field.as_deref(), Some("a.b[]"));
        assert_eq!(of("words").kind(), "WORD");
        assert_eq!(of("words").class, Class::Prose);
        assert_eq!(of("x").class, Class::Code);
        assert_eq!(of("\"c\"").kind(), "JSON_KEY");
        assert_eq!(of("\"c\"").field.as_deref(), Some("c"));
        assert_eq!(spans[0].field.as_deref(), Some(""));
    }

    #[test]
    fn stored_and_empty_records() {
        let (trace, spans) = check(&[], b"");
        assert!(spans.is_empty());
        assert_eq!(trace.coded_as(), CodedAs::Stored);
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let (trace, _) = check(&[], &noise);
        if trace.coded_as() == CodedAs::Stored {
            assert_eq!(trace.symbol_bits(), 8.0 * noise.len() as f64);
        }
    }

    #[test]
    fn chunks_trace_both_modes() {
        let mut wordy = Vec::new();
        for i in 0..3000 {
            wordy.extend_from_slice(format!("zq{} xv{} ", i % 7, i % 5).as_bytes());
        }
        let mut modes = Vec::new();
        let short = b"Thank you! Could you explain how the borrow checker works in Rust?".to_vec();
        for input in inputs().into_iter().chain([wordy, short]) {
            let mut plain = Vec::new();
            Encoder::default().encode_chunk(&input, &mut plain).unwrap();
            let mut traced = Vec::new();
            let trace = Encoder::default()
                .encode_chunk_traced(&input, &mut traced)
                .unwrap();
            assert_eq!(plain, traced);
            modes.push(trace.coded_as());
            let tail = trace.overhead_bits() - trace.header_bits();
            assert!((-8.0..16.0).contains(&tail), "{tail}");
            let payload = 8.0 * traced.len() as f64;
            if payload > 2000.0 {
                let sum = trace.symbol_bits();
                assert!(
                    (sum - payload).abs() <= 0.01 * payload,
                    "{sum} of {payload}"
                );
            }
        }
        assert!(modes.contains(&CodedAs::Adaptive2), "{modes:?}");
        assert!(modes.contains(&CodedAs::Modeled), "{modes:?}");
    }
}
