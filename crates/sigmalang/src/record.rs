//! One record: the unit SigmaLang encodes and decodes on its own.
//!
//! A record payload starts with a varint header `H = raw_len << 2 | mode`:
//!
//! | mode | body |
//! | --- | --- |
//! | 0 `STORED` | the `raw_len` input bytes as they are |
//! | 1 `MODELED` | the range-coded bytes, modeled by the codebook's context model |
//! | 2 `ADAPTIVE` | the same, with the adaptive model [`Variant::V1`] (learned from the record) in front; stream chunks of container version 3, and records of archives with a `V1` primer (the model then starts from the primer's state) |
//! | 3 `ADAPTIVE2` | the same with [`Variant::V2`], or [`Variant::V3`] where the file says so (stream header flag bit 0, archive header flag bit 7); stream chunks, and records of archives with a `V2` or `V3` primer (header flag bit 4) |
//!
//! The payload's own length comes from the structure around it (a stream chunk, an archive
//! index), so a decoder always knows where a record ends. The encoder picks `STORED` whenever
//! modeling would not make the record smaller, so no record grows by more than its header.
//! [`Encoder::encode_chunk`] chooses between `MODELED` and `ADAPTIVE` per record by coding a
//! sample both ways; [`Encoder::encode`] (archive records) writes an adaptive mode only after a
//! primer ([`Encoder::set_primer`]), which also fixes the mode (the primer's variant's).

use std::sync::Arc;

use crate::codebook::Codebook;
use crate::coder::{RangeDecoder, RangeEncoder};
use crate::cost::{CostTrace, Tracer};
use crate::error::{Error, Result};
use crate::model::{AdaptiveModel, ContextModel, MatchModel, Variant, FLAG_RUN, RUN_CLASSES};
use crate::pool::{GlyphBufferPool, PoolConfig, PoolStats};
use crate::primer::{adaptive_mode, mode_name, Primed, Primer};
use crate::varint;

/// The record modes of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// The input bytes, uncoded.
    Stored = 0,
    /// Range-coded with the codebook's context model.
    Modeled = 1,
    /// Range-coded with the adaptive model ([`Variant::V1`]) in front of the codebook's (stream
    /// chunks of container version 3, and archive records after a `V1` primer).
    Adaptive = 2,
    /// Range-coded with the adaptive model [`Variant::V2`] in front of the codebook's, DELTA
    /// runs flagged by its classes (stream chunks and pages without a primer, and archives with a
    /// `V2` primer, header flag bit 4: what this build writes there).
    Adaptive2 = 3,
}

impl Mode {
    /// The adaptive model variant of an adaptive mode (`None`: the static model alone);
    /// `ADAPTIVE2` is [`Variant::V3`] if `v3` (a stream with header flag bit 0), else `V2`.
    fn variant(self, v3: bool) -> Option<Variant> {
        match self {
            Mode::Stored | Mode::Modeled => None,
            Mode::Adaptive => Some(Variant::V1),
            Mode::Adaptive2 if v3 => Some(Variant::V3),
            Mode::Adaptive2 => Some(Variant::V2),
        }
    }

    fn from_code(code: u8) -> Option<Mode> {
        match code {
            0 => Some(Mode::Stored),
            1 => Some(Mode::Modeled),
            2 => Some(Mode::Adaptive),
            3 => Some(Mode::Adaptive2),
            _ => None,
        }
    }
}

/// A chunk longer than this is sampled before its mode is chosen: its first `SAMPLE` bytes are
/// coded both with and without the adaptive model. A shorter one is coded both ways whole.
pub const SAMPLE: usize = 64 << 10;

/// The largest record this build encodes or decodes: 1 GiB. Larger inputs go through the
/// chunked stream format.
pub const MAX_RECORD_LEN: u64 = 1 << 30;

/// How an encoder or decoder manages its memory.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct CoderConfig {
    /// The buffer pool of the encoder (or decoder).
    pub(crate) pool: PoolConfig,
}

crate::settings! {
    CoderConfig {
        /// The buffer pool of the encoder (or decoder).
        pool, get_pool: pool: PoolConfig;
    }
}

/// What an encoder has done.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EncoderStats {
    /// Records encoded.
    pub records: u64,
    /// Bytes of records taken.
    pub bytes_in: u64,
    /// Bytes of payloads produced.
    pub bytes_out: u64,
    /// Records stored rather than modeled (modeling would not have saved anything).
    pub stored: u64,
    /// The buffer pool's counters.
    pub pool: PoolStats,
}

impl EncoderStats {
    /// Adds another encoder's counters (for totals over several workers).
    pub fn merge(&mut self, other: &EncoderStats) {
        self.records += other.records;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.stored += other.stored;
        self.pool.merge(&other.pool);
    }
}

/// A reusable record encoder over a shared codebook.
///
/// Reusing one encoder across records keeps its buffers (from its [`GlyphBufferPool`]) and
/// its match table warm: in steady state encoding a record allocates nothing.
#[derive(Debug)]
pub struct Encoder {
    codebook: Arc<Codebook>,
    pool: GlyphBufferPool,
    matcher: MatchModel,
    adaptive: AdaptiveModel,
    stats: EncoderStats,
    /// The primer records are coded after, if any ([`Encoder::set_primer`]).
    primed: Option<Box<Primed>>,
    /// Whether `ADAPTIVE2` chunks and pages without a primer are coded with [`Variant::V3`]
    /// (else `V2`).
    chunk_v3: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new(Codebook::default_codebook())
    }
}

impl Encoder {
    /// An encoder that models records with `codebook`.
    pub fn new(codebook: Arc<Codebook>) -> Encoder {
        Encoder::with_config(codebook, CoderConfig::default())
    }

    /// An encoder with an explicit memory configuration.
    pub fn with_config(codebook: Arc<Codebook>, config: CoderConfig) -> Encoder {
        Encoder {
            codebook,
            pool: GlyphBufferPool::new(config.pool),
            matcher: MatchModel::new(),
            adaptive: AdaptiveModel::new(),
            stats: EncoderStats::default(),
            primed: None,
            chunk_v3: false,
        }
    }

    /// Codes `ADAPTIVE2` stream chunks ([`encode_chunk`](Self::encode_chunk), and pages
    /// without a primer) with the adaptive model [`Variant::V3`] if `v3`, else `V2` (the
    /// default). A stream says which in its header (flag bit 0, FORMAT.md §2).
    pub fn set_chunk_v3(&mut self, v3: bool) {
        self.chunk_v3 = v3;
    }

    /// Codes every later record ([`encode_with_frames`](Self::encode_with_frames) and the
    /// like; not [`encode_chunk`](Self::encode_chunk)) after `primer` (an archive's primer,
    /// FORMAT.md §5.6): its match model sees the primer as the oldest frame, and if `adaptive`
    /// the record is `ADAPTIVE` or `ADAPTIVE2` (as the primer's [`Primer::variant`]), its
    /// adaptive model starting from the primer's state. `None`:
    /// no primer. The encoder keeps its own copy of the primer's state (about
    /// [`Primer::heap_bytes`]), made here once.
    pub fn set_primer(&mut self, primer: Option<Arc<Primer>>, adaptive: bool) {
        self.primed = primer.map(|p| Box::new(Primed::new(p, adaptive)));
    }

    /// The codebook the encoder uses.
    pub fn codebook(&self) -> &Arc<Codebook> {
        &self.codebook
    }

    /// The encoder's counters, its pool's included.
    pub fn stats(&self) -> EncoderStats {
        EncoderStats {
            pool: self.pool.stats(),
            ..self.stats
        }
    }

    /// The encoder's buffer pool (for resizing by hand).
    pub fn pool_mut(&mut self) -> &mut GlyphBufferPool {
        &mut self.pool
    }

    /// Appends the payload of the record `input` to `out`.
    ///
    /// # Errors
    /// If `input` is longer than [`MAX_RECORD_LEN`].
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.encode_with_frames(&[], input, out)
    }

    /// Appends the payload of `input` coded against context `frames` (earlier records, oldest
    /// first): spans of the frames that recur in `input` are coded as DELTA runs. Decoding
    /// needs the same frames ([`Decoder::decode_with_frames`]).
    ///
    /// # Errors
    /// If `input` or the frames are longer than [`MAX_RECORD_LEN`].
    pub fn encode_with_frames(
        &mut self,
        frames: &[&[u8]],
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.encode_with_frame_iter(frames.iter().copied(), input, out)
    }

    /// As [`encode_with_frames`](Self::encode_with_frames), with the frames from an iterator
    /// (no vector of them needed).
    pub fn encode_with_frame_iter<'f>(
        &mut self,
        frames: impl Iterator<Item = &'f [u8]>,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if self.primed.is_some() {
            return self.encode_primed(frames, input, out, &mut ());
        }
        self.encode_as(frames, input, out, Mode::Modeled)
    }

    /// Encodes `input` against `frames` after the primer, in the primer's mode, telling
    /// `tracer` what each byte cost.
    fn encode_primed<'f>(
        &mut self,
        frames: impl Iterator<Item = &'f [u8]>,
        input: &[u8],
        out: &mut Vec<u8>,
        tracer: &mut impl Tracer,
    ) -> Result<()> {
        let p = self.primed.as_deref_mut().expect("a primer");
        let plen = p.primer.len();
        let mut last_start = None;
        for f in frames {
            last_start = Some(p.hist.len());
            p.hist.extend_from_slice(f);
        }
        let frames_len = p.hist.len() - plen;
        if input.len() as u64 > MAX_RECORD_LEN || frames_len as u64 > MAX_RECORD_LEN {
            p.hist.truncate(plen);
            return Err(Error::invalid(format!(
                "record of {} bytes (with {frames_len} bytes of frames) exceeds the {MAX_RECORD_LEN}-byte limit",
                input.len()
            )));
        }
        p.hist.extend_from_slice(input);
        let mut body = self.pool.acquire();
        let adaptive = p.mode != Mode::Modeled;
        if adaptive {
            p.adaptive.begin_record();
        }
        code_record(
            self.codebook.model(),
            &mut p.matcher,
            adaptive.then_some(&mut p.adaptive),
            &mut body,
            &p.hist,
            plen + frames_len,
            last_start,
            Some(plen),
            tracer,
        );
        p.rollback();
        let mode = p.mode;
        self.emit(input, &body, mode, out);
        self.pool.release(body);
        Ok(())
    }

    /// Appends the payload of `input` coded as `body` in `mode` (or `STORED`, if that is not
    /// shorter) to `out`, and counts it.
    fn emit(&mut self, input: &[u8], body: &[u8], mode: Mode, out: &mut Vec<u8>) {
        let raw_len = input.len() as u64;
        let start = out.len();
        if body.len() < input.len() {
            varint::write(out, raw_len << 2 | mode as u64);
            out.extend_from_slice(body);
        } else {
            varint::write(out, raw_len << 2 | Mode::Stored as u64);
            out.extend_from_slice(input);
            self.stats.stored += 1;
        }
        self.pool.note_encoding();
        self.stats.records += 1;
        self.stats.bytes_in += raw_len;
        self.stats.bytes_out += (out.len() - start) as u64;
    }

    /// Appends the payload of the stream chunk `input` (no frames) to `out`: `ADAPTIVE` if the
    /// adaptive model codes a sample of it smaller than the static model alone (the first
    /// 64 KiB, or all of a shorter chunk), else `MODELED`; `STORED` if neither saves
    /// anything. Decoding needs [`Decoder::decode_chunk`].
    ///
    /// # Errors
    /// If `input` is longer than [`MAX_RECORD_LEN`].
    pub fn encode_chunk(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mode = self.choose_mode(input);
        self.encode_as(std::iter::empty(), input, out, mode)
    }

    /// Appends the payload of an archive page (block mode, FORMAT.md §5.7) to `out`: after
    /// [`set_primer`](Self::set_primer) it is coded as a record after the primer, without
    /// frames, in the primer's mode; without a primer as [`encode_chunk`](Self::encode_chunk)
    /// codes it. Decoding needs [`Decoder::decode_page`].
    ///
    /// # Errors
    /// If `input` is longer than [`MAX_RECORD_LEN`].
    pub fn encode_page(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.primed.is_some() {
            return self.encode_primed(std::iter::empty(), input, out, &mut ());
        }
        self.encode_chunk(input, out)
    }

    /// `ADAPTIVE` or `MODELED`, whichever codes the sample of `input` smaller (ties: `MODELED`,
    /// the faster to decode).
    fn choose_mode(&mut self, input: &[u8]) -> Mode {
        if input.len() as u64 > MAX_RECORD_LEN {
            return Mode::Modeled; // refused by encode_as
        }
        let sample = &input[..input.len().min(SAMPLE)];
        let mut body = self.pool.acquire();
        let model = self.codebook.model();
        let mm = &mut self.matcher;
        code_record(model, mm, None, &mut body, sample, 0, None, None, &mut ());
        let modeled = body.len();
        body.clear();
        let v = Mode::Adaptive2.variant(self.chunk_v3).expect("adaptive");
        self.adaptive.set_variant(v);
        let am = Some(&mut self.adaptive);
        code_record(model, mm, am, &mut body, sample, 0, None, None, &mut ());
        let adaptive = body.len();
        self.pool.release(body);
        if adaptive < modeled {
            Mode::Adaptive2
        } else {
            Mode::Modeled
        }
    }

    /// [`encode_with_frames`](Self::encode_with_frames), and what every byte of `input` cost:
    /// the same payload, byte for byte, with its [`CostTrace`]. After
    /// [`set_primer`](Self::set_primer), the primer is the trace's frame 0 and `frames` follow.
    ///
    /// # Errors
    /// As [`encode_with_frames`](Self::encode_with_frames).
    pub fn encode_traced(
        &mut self,
        frames: &[&[u8]],
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<CostTrace> {
        let start = out.len();
        let primer_len = self.primed.as_ref().map(|p| p.primer.len());
        let lens = primer_len.into_iter().chain(frames.iter().map(|f| f.len()));
        let mut trace = CostTrace::new(lens, input.len());
        if primer_len.is_some() {
            self.encode_primed(frames.iter().copied(), input, out, &mut trace)?;
        } else {
            self.encode_traced_as(
                frames.iter().copied(),
                input,
                out,
                Mode::Modeled,
                &mut trace,
            )?;
        }
        trace.finish(&out[start..]);
        Ok(trace)
    }

    /// [`encode_chunk`](Self::encode_chunk), and what every byte of `input` cost (the mode is
    /// chosen as `encode_chunk` chooses it, and the payload is the same).
    ///
    /// # Errors
    /// As [`encode_chunk`](Self::encode_chunk).
    pub fn encode_chunk_traced(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<CostTrace> {
        let mode = self.choose_mode(input);
        let mut trace = CostTrace::new(std::iter::empty(), input.len());
        let start = out.len();
        self.encode_traced_as(std::iter::empty(), input, out, mode, &mut trace)?;
        trace.finish(&out[start..]);
        Ok(trace)
    }

    /// Encodes `input` against `frames` in `mode` (`MODELED` or `ADAPTIVE`; `STORED` if that
    /// would not be shorter).
    fn encode_as<'f>(
        &mut self,
        frames: impl Iterator<Item = &'f [u8]>,
        input: &[u8],
        out: &mut Vec<u8>,
        mode: Mode,
    ) -> Result<()> {
        self.encode_traced_as(frames, input, out, mode, &mut ())
    }

    /// [`encode_as`](Self::encode_as), telling `tracer` what each byte cost (`()` traces
    /// nothing and compiles to the untraced loop).
    fn encode_traced_as<'f>(
        &mut self,
        frames: impl Iterator<Item = &'f [u8]>,
        input: &[u8],
        out: &mut Vec<u8>,
        mode: Mode,
        tracer: &mut impl Tracer,
    ) -> Result<()> {
        let mut hist = self.pool.acquire();
        let mut last_start = None;
        for f in frames {
            last_start = Some(hist.len());
            hist.extend_from_slice(f);
        }
        let frames_len = hist.len();
        if input.len() as u64 > MAX_RECORD_LEN || frames_len as u64 > MAX_RECORD_LEN {
            self.pool.release(hist);
            return Err(Error::invalid(format!(
                "record of {} bytes (with {frames_len} bytes of frames) exceeds the {MAX_RECORD_LEN}-byte limit",
                input.len()
            )));
        }
        hist.extend_from_slice(input);
        let mut body = self.pool.acquire();
        code_record(
            self.codebook.model(),
            &mut self.matcher,
            mode.variant(self.chunk_v3).map(|v| {
                self.adaptive.set_variant(v);
                &mut self.adaptive
            }),
            &mut body,
            &hist,
            frames_len,
            last_start,
            None,
            tracer,
        );
        self.emit(input, &body, mode, out);
        self.pool.release(body);
        self.pool.release(hist);
        Ok(())
    }
}

/// Codes the record `hist[base..]` (after the frames `hist[..base]`) into `body`, marking on
/// `tracer` where each literal and DELTA run ends. With `primer_len`, the frames start with a
/// primer of that length, which `mm` and `am` already hold (primed, journaling: the caller rolls
/// them back afterwards).
#[allow(clippy::too_many_arguments)]
pub(crate) fn code_record(
    model: &ContextModel,
    mm: &mut MatchModel,
    mut am: Option<&mut AdaptiveModel>,
    body: &mut Vec<u8>,
    hist: &[u8],
    base: usize,
    last_frame_start: Option<usize>,
    primer_len: Option<usize>,
    tracer: &mut impl Tracer,
) {
    let input = &hist[base..];
    let n = input.len();
    let mut enc = RangeEncoder::new(body);
    match primer_len {
        Some(p) => mm.reset_primed(&hist[..base], p, last_frame_start),
        None => {
            mm.reset(hist.len(), &hist[..base], last_frame_start);
            if let Some(am) = am.as_deref_mut() {
                am.reset(n);
            }
        }
    }
    let mut state = model.start_state();
    let mut i = 0;
    while i < n {
        let Some((m, bucket)) = mm.predict(&hist[..base + i]) else {
            state = match am.as_deref_mut() {
                Some(am) => am.encode(&mut enc, model, state, input[i], None),
                None => model.encode(&mut enc, state, input[i]),
            };
            tracer.literal(i, &enc);
            i += 1;
            mm.update_idle(&hist[..base + i]);
            continue;
        };
        // A DELTA run: how many bytes follow as the match predicts.
        let src = mm.source();
        let class = |done: &[u8], m: u8, expects: bool| {
            am.as_deref().map_or(0, |am| am.run_class(done, m)) * 2 + usize::from(expects)
        };
        let ctx = bucket * RUN_CLASSES + class(&[], m, model.expects(state, m));
        let run = (0..n - i)
            .take_while(|&j| hist[src + j] == input[i + j])
            .count();
        // The flagged start of the run walks the context model byte by byte (its expectation
        // is context for the flags); a longer run's state is found from its last bytes.
        let mut walked = state;
        let mut agrees = |j: usize| {
            walked = model.advance(walked, hist[src + j - 1]);
            let m = hist[src + j];
            class(&hist[src..src + j], m, model.expects(walked, m))
        };
        mm.encode_run(&mut enc, ctx, run, &mut agrees);
        tracer.run(i, run, src, &enc);
        if let Some(am) = am.as_deref_mut() {
            for &b in &input[i..i + run] {
                am.push(b);
            }
        }
        for _ in 0..run {
            i += 1;
            mm.update(&hist[..base + i]);
        }
        if run > FLAG_RUN {
            state = model.state_after(&input[..i]);
        } else {
            state = walked;
        }
        if i < n {
            // The run ended on a byte that differs from the prediction.
            let not = mm.predict(&hist[..base + i]).map(|(p, _)| p);
            state = match am.as_deref_mut() {
                Some(am) => am.encode(&mut enc, model, state, input[i], not),
                None => model.encode_excluding(&mut enc, state, input[i], not),
            };
            tracer.literal(i, &enc);
            i += 1;
            mm.update(&hist[..base + i]);
        }
    }
    enc.finish();
}

/// What a record header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The decoded length of the record.
    pub raw_len: u64,
    /// How its body is coded.
    pub mode: Mode,
    /// Where the body starts in the payload.
    pub body_offset: usize,
}

/// Reads and validates the header of a record payload.
pub fn read_header(payload: &[u8]) -> Result<RecordHeader> {
    let mut pos = 0;
    let h = varint::read(payload, &mut pos, 0)?;
    let raw_len = h >> 2;
    let mode = Mode::from_code((h & 3) as u8)
        .ok_or_else(|| Error::corrupt(format!("unknown record mode {}", h & 3), 0))?;
    if raw_len > MAX_RECORD_LEN {
        return Err(Error::corrupt(
            format!("record length {raw_len} exceeds the {MAX_RECORD_LEN}-byte limit"),
            0,
        ));
    }
    Ok(RecordHeader {
        raw_len,
        mode,
        body_offset: pos,
    })
}

/// A reusable record decoder over a shared codebook.
#[derive(Debug)]
pub struct Decoder {
    codebook: Arc<Codebook>,
    pool: GlyphBufferPool,
    matcher: MatchModel,
    adaptive: AdaptiveModel,
    /// The primer records are decoded after, if any ([`Decoder::set_primer`]).
    primed: Option<Box<Primed>>,
    /// Whether `ADAPTIVE2` chunks and pages without a primer are decoded with [`Variant::V3`]
    /// (else `V2`).
    chunk_v3: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Codebook::default_codebook())
    }
}

impl Decoder {
    /// A decoder for records made with `codebook`.
    pub fn new(codebook: Arc<Codebook>) -> Decoder {
        Decoder::with_config(codebook, CoderConfig::default())
    }

    /// A decoder with an explicit memory configuration.
    pub fn with_config(codebook: Arc<Codebook>, config: CoderConfig) -> Decoder {
        Decoder {
            codebook,
            pool: GlyphBufferPool::new(config.pool),
            matcher: MatchModel::new(),
            adaptive: AdaptiveModel::new(),
            primed: None,
            chunk_v3: false,
        }
    }

    /// Decodes `ADAPTIVE2` stream chunks ([`decode_chunk`](Self::decode_chunk), and pages
    /// without a primer) with the adaptive model [`Variant::V3`] if `v3`, else `V2` (the
    /// default), as [`Encoder::set_chunk_v3`].
    pub fn set_chunk_v3(&mut self, v3: bool) {
        self.chunk_v3 = v3;
    }

    /// Decodes every later record ([`decode`](Self::decode),
    /// [`decode_with_frames`](Self::decode_with_frames); not
    /// [`decode_chunk`](Self::decode_chunk)) as coded after `primer` (see
    /// [`Encoder::set_primer`]); records in the primer's adaptive mode are then accepted
    /// (`ADAPTIVE` after a `V1` primer, `ADAPTIVE2` after a `V2` one). `None`: no primer. The
    /// decoder keeps its own copy of the primer's state, made here once.
    pub fn set_primer(&mut self, primer: Option<Arc<Primer>>) {
        self.primed = primer.map(|p| Box::new(Primed::new(p, true)));
    }

    /// Whether the decoder decodes records after a primer.
    pub fn has_primer(&self) -> bool {
        self.primed.is_some()
    }

    /// The decoder's buffer pool counters.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// The codebook the decoder uses.
    pub fn codebook(&self) -> &Arc<Codebook> {
        &self.codebook
    }

    /// Decodes the record `payload` (exactly one payload, nothing after it), appending the
    /// record's bytes to `out`. Offsets in errors are relative to the payload start.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.decode_with_frames(&[], payload, out)
    }

    /// Decodes a record that was coded against context `frames` (the same frames, in the same
    /// order, as given to [`Encoder::encode_with_frames`]).
    pub fn decode_with_frames(
        &mut self,
        frames: &[&[u8]],
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.decode_as(frames, payload, out, false)
    }

    /// Decodes a stream chunk of container version 3 (as written by
    /// [`Encoder::encode_chunk`]): any mode, `ADAPTIVE` included.
    pub fn decode_chunk(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.decode_as(&[], payload, out, true)
    }

    /// Decodes an archive page written by [`Encoder::encode_page`]: after
    /// [`set_primer`](Self::set_primer) as a record after the primer (any mode, no frames),
    /// else as a stream chunk.
    pub fn decode_page(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.decode_as(&[], payload, out, self.primed.is_none())
    }

    fn decode_as(
        &mut self,
        frames: &[&[u8]],
        payload: &[u8],
        out: &mut Vec<u8>,
        adaptive: bool,
    ) -> Result<()> {
        let header = read_header(payload)?;
        if self.primed.is_some() && !adaptive {
            return self.decode_primed(frames, payload, header, out);
        }
        if header.mode.variant(false).is_some() && !adaptive {
            // Only stream chunks (of container version 3) may use the adaptive modes; elsewhere
            // they are as unknown as before.
            return Err(Error::corrupt(
                format!("unknown record mode {}", header.mode as u8),
                0,
            ));
        }
        let body = &payload[header.body_offset..];
        match header.mode {
            Mode::Stored => decode_stored(payload, header, out)?,
            Mode::Modeled | Mode::Adaptive | Mode::Adaptive2 => {
                check_body(body, header)?;
                let n = header.raw_len as usize;
                let mut hist = self.pool.acquire();
                let mut last_start = None;
                for f in frames {
                    last_start = Some(hist.len());
                    hist.extend_from_slice(f);
                }
                let base = hist.len();
                // Grow as bytes are decoded: a hostile header cannot reserve its claimed length.
                hist.reserve(n.min(1 << 20));
                let decoded = decode_record(
                    self.codebook.model(),
                    &mut self.matcher,
                    header.mode.variant(self.chunk_v3).map(|v| {
                        self.adaptive.set_variant(v);
                        &mut self.adaptive
                    }),
                    body,
                    &mut hist,
                    base,
                    n,
                    last_start,
                    None,
                );
                if decoded.is_ok() {
                    out.extend_from_slice(&hist[base..]);
                }
                self.pool.release(hist);
                self.pool.note_encoding();
                decoded.map_err(|what| Error::corrupt(what, header.body_offset as u64))?;
            }
        }
        Ok(())
    }

    /// Decodes a record coded after the primer (any mode).
    fn decode_primed(
        &mut self,
        frames: &[&[u8]],
        payload: &[u8],
        header: RecordHeader,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let body = &payload[header.body_offset..];
        if header.mode == Mode::Stored {
            return decode_stored(payload, header, out);
        }
        let p = self.primed.as_deref_mut().expect("a primer");
        let adaptive = adaptive_mode(p.primer.variant());
        if header.mode != Mode::Modeled && header.mode != adaptive {
            // Records after a primer are MODELED or in the primer's adaptive mode: ADAPTIVE
            // after a V1 primer, ADAPTIVE2 after a V2 one (FORMAT.md §5.6).
            return Err(Error::corrupt(
                format!(
                    "a record after this archive's primer is MODELED or {}, not {}",
                    mode_name(adaptive),
                    mode_name(header.mode)
                ),
                0,
            ));
        }
        check_body(body, header)?;
        let plen = p.primer.len();
        let n = header.raw_len as usize;
        let mut last_start = None;
        for f in frames {
            last_start = Some(p.hist.len());
            p.hist.extend_from_slice(f);
        }
        let base = p.hist.len();
        // Grow as bytes are decoded: a hostile header cannot reserve its claimed length.
        p.hist.reserve(n.min(1 << 20));
        let adaptive = header.mode == adaptive;
        if adaptive {
            p.adaptive.begin_record();
        }
        let decoded = decode_record(
            self.codebook.model(),
            &mut p.matcher,
            adaptive.then_some(&mut p.adaptive),
            body,
            &mut p.hist,
            base,
            n,
            last_start,
            Some(plen),
        );
        if decoded.is_ok() {
            out.extend_from_slice(&p.hist[base..]);
        }
        p.rollback();
        decoded.map_err(|what| Error::corrupt(what, header.body_offset as u64))
    }
}

/// Checks that a coded body is shorter than its record (the encoder stores it otherwise).
fn check_body(body: &[u8], header: RecordHeader) -> Result<()> {
    if body.len() as u64 >= header.raw_len.max(1) {
        return Err(Error::corrupt(
            format!(
                "modeled record of {} bytes cannot have a {}-byte body",
                header.raw_len,
                body.len()
            ),
            0,
        ));
    }
    Ok(())
}

/// Appends the body of a `STORED` record.
fn decode_stored(payload: &[u8], header: RecordHeader, out: &mut Vec<u8>) -> Result<()> {
    let body = &payload[header.body_offset..];
    if body.len() as u64 != header.raw_len {
        return Err(if (body.len() as u64) < header.raw_len {
            Error::truncated("a stored record", payload.len() as u64)
        } else {
            Error::corrupt(
                format!(
                    "stored record holds {} bytes, header says {}",
                    body.len(),
                    header.raw_len
                ),
                header.body_offset as u64,
            )
        });
    }
    out.extend_from_slice(body);
    Ok(())
}

/// Decodes `n` bytes onto `hist` (which holds the frames, `base` bytes). With `primer_len`,
/// as for [`code_record`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn decode_record(
    model: &ContextModel,
    mm: &mut MatchModel,
    mut am: Option<&mut AdaptiveModel>,
    body: &[u8],
    hist: &mut Vec<u8>,
    base: usize,
    n: usize,
    last_frame_start: Option<usize>,
    primer_len: Option<usize>,
) -> std::result::Result<(), &'static str> {
    let mut dec = RangeDecoder::new(body);
    match primer_len {
        Some(p) => mm.reset_primed(&hist[..base], p, last_frame_start),
        None => {
            mm.reset(base + n, &hist[..base], last_frame_start);
            if let Some(am) = am.as_deref_mut() {
                am.reset(n);
            }
        }
    }
    let mut state = model.start_state();
    let end = base + n;
    while hist.len() < end {
        let Some((m, bucket)) = mm.predict(hist) else {
            // The hot path: a literal byte from the context model.
            let (x, next) = match am.as_deref_mut() {
                Some(am) => am.decode(&mut dec, model, state, None),
                None => model.decode(&mut dec, state),
            };
            state = next;
            hist.push(x);
            mm.update_idle(hist);
            continue;
        };
        state = decode_run(
            model,
            mm,
            am.as_deref_mut(),
            &mut dec,
            hist,
            state,
            (m, bucket),
            base,
            end,
        )?;
    }
    Ok(())
}

/// Decodes a DELTA run predicted to start with byte `m`, and the literal that ends it (if the
/// record goes on); returns the context model's state after them.
#[allow(clippy::too_many_arguments)]
fn decode_run(
    model: &ContextModel,
    mm: &mut MatchModel,
    mut am: Option<&mut AdaptiveModel>,
    dec: &mut RangeDecoder<'_>,
    hist: &mut Vec<u8>,
    state: u32,
    (m, bucket): (u8, usize),
    base: usize,
    end: usize,
) -> std::result::Result<u32, &'static str> {
    let src = mm.source();
    let start = hist.len();
    let amr = am.as_deref();
    let class = |done: &[u8], m: u8, expects: bool| {
        amr.map_or(0, |am| am.run_class(done, m)) * 2 + usize::from(expects)
    };
    let ctx = bucket * RUN_CLASSES + class(&[], m, model.expects(state, m));
    let mut walked = state;
    let mut agrees = |j: usize| {
        let b = hist[src + j - 1];
        hist.push(b);
        walked = model.advance(walked, b);
        let m = hist[src + j];
        class(&hist[start..start + j], m, model.expects(walked, m))
    };
    let run = mm
        .decode_run(dec, ctx, end - start, &mut agrees)
        .ok_or("a DELTA run longer than the record")?;
    for k in hist.len() - start..run {
        let b = hist[src + k];
        hist.push(b);
    }
    for k in 0..run {
        mm.update(&hist[..start + k + 1]);
    }
    if let Some(am) = am.as_deref_mut() {
        for &b in &hist[start..start + run] {
            am.push(b);
        }
    }
    let mut state = if run > FLAG_RUN {
        model.state_after(&hist[base..])
    } else {
        walked
    };
    if hist.len() < end {
        let not = mm.predict(hist).map(|(p, _)| p);
        let (x, next) = match am {
            Some(am) => am.decode(dec, model, state, not),
            None => model.decode_excluding(dec, state, not),
        };
        state = next;
        hist.push(x);
        mm.update(hist);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Codes `input` as an `ADAPTIVE2` record (whatever `encode_chunk` would choose) and
    /// decodes it as a stream chunk.
    fn adaptive_roundtrip(input: &[u8]) -> Vec<u8> {
        adaptive_roundtrip_as(input, Mode::Adaptive2)
    }

    /// Codes `input` as a record of the adaptive `mode` and decodes it as a stream chunk.
    fn adaptive_roundtrip_as(input: &[u8], mode: Mode) -> Vec<u8> {
        let mut enc = Encoder::default();
        let mut payload = Vec::new();
        enc.encode_as(std::iter::empty(), input, &mut payload, mode)
            .unwrap();
        let header = read_header(&payload).unwrap();
        assert!(
            header.mode != Mode::Modeled,
            "an adaptive record came out MODELED"
        );
        let mut out = Vec::new();
        Decoder::default().decode_chunk(&payload, &mut out).unwrap();
        assert_eq!(out, input);
        payload
    }

    /// Codes `input` as an `ADAPTIVE2` chunk of variant 3 (a stream with header flag bit 0) and
    /// decodes it so; returns the payload.
    fn v3_roundtrip(input: &[u8]) -> Vec<u8> {
        let mut enc = Encoder::default();
        enc.set_chunk_v3(true);
        let mut payload = Vec::new();
        enc.encode_as(std::iter::empty(), input, &mut payload, Mode::Adaptive2)
            .unwrap();
        let mut dec = Decoder::default();
        dec.set_chunk_v3(true);
        let mut out = Vec::new();
        dec.decode_chunk(&payload, &mut out).unwrap();
        assert_eq!(out, input);
        payload
    }

    /// Bytes drawn from a few short words, so that adaptive contexts fill, overflow their 16
    /// entries, and matches and DELTA runs interleave with adaptive literals.
    fn wordy(seed: u64, len: usize) -> Vec<u8> {
        let words: [&[u8]; 8] = [
            b"fn ",
            b"let ",
            b"x",
            b"(self)",
            b"\n    ",
            b"{}",
            b"; ",
            b"\xff\x00",
        ];
        let mut s = seed | 1;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if s % 11 == 0 {
                out.push((s >> 24) as u8);
            } else {
                out.extend_from_slice(words[(s >> 32) as usize % 8]);
            }
        }
        out.truncate(len);
        out
    }

    #[test]
    fn adaptive_records_roundtrip_and_learn() {
        for len in [0, 1, 9, 10, 100, 5000, 70_000] {
            adaptive_roundtrip(&wordy(len as u64, len));
            adaptive_roundtrip_as(&wordy(len as u64, len), Mode::Adaptive);
        }
        // Repetitive text the static model does not know: the adaptive model codes it smaller.
        let text = wordy(7, 60_000);
        let adaptive = adaptive_roundtrip(&text).len();
        let mut modeled = Vec::new();
        Encoder::default().encode(&text, &mut modeled).unwrap();
        assert!(
            adaptive < modeled.len() * 9 / 10,
            "{adaptive} vs {}",
            modeled.len()
        );
        // encode_chunk chooses variant 2.
        let mut chosen = Vec::new();
        Encoder::default().encode_chunk(&text, &mut chosen).unwrap();
        assert_eq!(read_header(&chosen).unwrap().mode, Mode::Adaptive2);
        assert_eq!(chosen.len(), adaptive);
    }

    /// Variant 3 round-trips, codes other bytes than variant 2 from the same mode, learns (the
    /// record comes out well under `MODELED`), and `encode_chunk` uses it once told to.
    #[test]
    fn variant_3_chunks_roundtrip_and_differ() {
        for len in [0, 1, 9, 10, 100, 5000, 70_000] {
            v3_roundtrip(&wordy(len as u64 + 5, len));
        }
        let text = wordy(7, 60_000);
        let v3 = v3_roundtrip(&text);
        let v2 = adaptive_roundtrip(&text);
        assert_ne!(v3, v2);
        let mut modeled = Vec::new();
        Encoder::default().encode(&text, &mut modeled).unwrap();
        assert!(
            v3.len() < modeled.len() * 9 / 10,
            "{} vs {}",
            v3.len(),
            modeled.len()
        );
        let mut enc = Encoder::default();
        enc.set_chunk_v3(true);
        let mut chosen = Vec::new();
        enc.encode_chunk(&text, &mut chosen).unwrap();
        assert_eq!(chosen, v3);
        // Read as variant 2 (a stream without the flag), the chunk decodes to other bytes.
        let mut out = Vec::new();
        let _ = Decoder::default().decode_chunk(&v3, &mut out);
        assert_ne!(out, text);
    }

    /// One encoder and one decoder alternate the two variants (and `MODELED`): switching
    /// variants leaves nothing of the other behind.
    #[test]
    fn variants_alternate_on_one_coder() {
        let mut enc = Encoder::default();
        let mut dec = Decoder::default();
        let modes = [
            Mode::Adaptive2,
            Mode::Adaptive,
            Mode::Modeled,
            Mode::Adaptive2,
            Mode::Adaptive,
        ];
        for (k, &mode) in modes.iter().enumerate() {
            // Every other ADAPTIVE2 record is variant 3.
            let v3 = k % 4 == 3;
            enc.set_chunk_v3(v3);
            dec.set_chunk_v3(v3);
            let text = wordy(k as u64, 20_000 + 3000 * k);
            let mut payload = Vec::new();
            enc.encode_as(std::iter::empty(), &text, &mut payload, mode)
                .unwrap();
            assert_eq!(read_header(&payload).unwrap().mode, mode);
            // The same bytes as a fresh encoder's.
            assert_eq!(payload, {
                let mut fresh = Encoder::default();
                fresh.set_chunk_v3(v3);
                let mut bytes = Vec::new();
                fresh
                    .encode_as(std::iter::empty(), &text, &mut bytes, mode)
                    .unwrap();
                bytes
            });
            let mut out = Vec::new();
            dec.decode_chunk(&payload, &mut out).unwrap();
            assert_eq!(out, text);
        }
    }

    #[test]
    fn adaptive_mode_is_refused_outside_stream_chunks() {
        for (mode, name) in [
            (Mode::Adaptive, "unknown record mode 2"),
            (Mode::Adaptive2, "unknown record mode 3"),
        ] {
            let payload = adaptive_roundtrip_as(&wordy(3, 2000), mode);
            let err = Decoder::default()
                .decode(&payload, &mut Vec::new())
                .unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
            let err = Decoder::default()
                .decode_with_frames(&[b"frame"], &payload, &mut Vec::new())
                .unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn garbage_adaptive_bodies_never_panic() {
        let mut s = 99u64;
        for len in [1usize, 2, 5, 40, 300] {
            for k in 0..100 {
                let mut payload = Vec::new();
                varint::write(&mut payload, (len as u64 * 7 + 3) << 2 | (2 + k % 2));
                for _ in 0..len {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    payload.push((s >> 56) as u8);
                }
                let _ = Decoder::default().decode_chunk(&payload, &mut Vec::new());
                let mut v3 = Decoder::default();
                v3.set_chunk_v3(true);
                let _ = v3.decode_chunk(&payload, &mut Vec::new());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_bytes_roundtrip_adaptive(input in proptest::collection::vec(any::<u8>(), 0..3000)) {
            adaptive_roundtrip(&input);
            adaptive_roundtrip_as(&input, Mode::Adaptive);
            v3_roundtrip(&input);
        }

        #[test]
        fn wordy_bytes_roundtrip_adaptive(seed in any::<u64>(), len in 0usize..20_000) {
            adaptive_roundtrip(&wordy(seed, len));
            adaptive_roundtrip_as(&wordy(seed, len), Mode::Adaptive);
            v3_roundtrip(&wordy(seed, len));
        }
    }
}
