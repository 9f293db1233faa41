//! One record: the unit SigmaLang encodes and decodes on its own.
//!
//! A record payload starts with a varint header `H = raw_len << 2 | mode`:
//!
//! | mode | body |
//! | --- | --- |
//! | 0 `STORED` | the `raw_len` input bytes as they are |
//! | 1 `MODELED` | the range-coded bytes, modeled by the codebook's context model |
//! | 2, 3 | reserved |
//!
//! The payload's own length comes from the structure around it (a stream chunk, an archive
//! index), so a decoder always knows where a record ends. The encoder picks `STORED` whenever
//! modeling would not make the record smaller, so no record grows by more than its header.

use std::sync::Arc;

use crate::codebook::Codebook;
use crate::coder::{RangeDecoder, RangeEncoder};
use crate::error::{Error, Result};
use crate::model::MatchModel;
use crate::varint;

/// The record modes of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// The input bytes, uncoded.
    Stored = 0,
    /// Range-coded with the codebook's context model.
    Modeled = 1,
}

impl Mode {
    fn from_code(code: u8) -> Option<Mode> {
        match code {
            0 => Some(Mode::Stored),
            1 => Some(Mode::Modeled),
            _ => None,
        }
    }
}

/// The largest record this build encodes or decodes: 1 GiB. Larger inputs go through the
/// chunked stream format.
pub const MAX_RECORD_LEN: u64 = 1 << 30;

/// A reusable record encoder over a shared codebook.
///
/// Reusing one encoder across records keeps its buffers warm.
#[derive(Debug)]
pub struct Encoder {
    codebook: Arc<Codebook>,
    body: Vec<u8>,
    matcher: MatchModel,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new(Codebook::default_codebook())
    }
}

impl Encoder {
    /// An encoder that models records with `codebook`.
    pub fn new(codebook: Arc<Codebook>) -> Encoder {
        Encoder {
            codebook,
            body: Vec::new(),
            matcher: MatchModel::new(),
        }
    }

    /// The codebook the encoder uses.
    pub fn codebook(&self) -> &Arc<Codebook> {
        &self.codebook
    }

    /// Appends the payload of the record `input` to `out`.
    ///
    /// # Errors
    /// If `input` is longer than [`MAX_RECORD_LEN`].
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if input.len() as u64 > MAX_RECORD_LEN {
            return Err(Error::invalid(format!(
                "record of {} bytes exceeds the {MAX_RECORD_LEN}-byte limit",
                input.len()
            )));
        }
        self.body.clear();
        let model = self.codebook.model();
        let mut enc = RangeEncoder::new(&mut self.body);
        let mm = &mut self.matcher;
        mm.reset(input.len());
        let mut state = model.start_state();
        for (i, &x) in input.iter().enumerate() {
            state = match mm.predict(&input[..i]) {
                Some((m, bucket)) => {
                    let ctx = bucket * 2 + usize::from(model.expects(state, m));
                    let hit = x == m;
                    enc.encode_bit(mm.p(ctx), hit);
                    mm.learn(ctx, hit);
                    if hit {
                        model.advance(state, x)
                    } else {
                        model.encode_excluding(&mut enc, state, x, Some(m))
                    }
                }
                None => model.encode(&mut enc, state, x),
            };
            mm.update(&input[..=i]);
        }
        enc.finish();
        let raw_len = input.len() as u64;
        if self.body.len() < input.len() {
            varint::write(out, raw_len << 2 | Mode::Modeled as u64);
            out.extend_from_slice(&self.body);
        } else {
            varint::write(out, raw_len << 2 | Mode::Stored as u64);
            out.extend_from_slice(input);
        }
        Ok(())
    }
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
    matcher: MatchModel,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Codebook::default_codebook())
    }
}

impl Decoder {
    /// A decoder for records made with `codebook`.
    pub fn new(codebook: Arc<Codebook>) -> Decoder {
        Decoder {
            codebook,
            matcher: MatchModel::new(),
        }
    }

    /// The codebook the decoder uses.
    pub fn codebook(&self) -> &Arc<Codebook> {
        &self.codebook
    }

    /// Decodes the record `payload` (exactly one payload, nothing after it), appending the
    /// record's bytes to `out`. Offsets in errors are relative to the payload start.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let header = read_header(payload)?;
        let body = &payload[header.body_offset..];
        match header.mode {
            Mode::Stored => {
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
            }
            Mode::Modeled => {
                // A modeled body is never longer than the record (else it would be stored), and
                // a byte costs at least 1/65536 of a bit: bound the work on hostile headers.
                if body.len() as u64 >= header.raw_len.max(1)
                    || header.raw_len > (body.len() as u64 + 8) * 8 * 65536
                {
                    return Err(Error::corrupt(
                        format!(
                            "modeled record of {} bytes cannot have a {}-byte body",
                            header.raw_len,
                            body.len()
                        ),
                        0,
                    ));
                }
                let model = self.codebook.model();
                let mut dec = RangeDecoder::new(body);
                let start = out.len();
                out.reserve(header.raw_len as usize);
                let mm = &mut self.matcher;
                mm.reset(header.raw_len as usize);
                let mut state = model.start_state();
                for _ in 0..header.raw_len {
                    let (x, next) = match mm.predict(&out[start..]) {
                        Some((m, bucket)) => {
                            let ctx = bucket * 2 + usize::from(model.expects(state, m));
                            let hit = dec.decode_bit(mm.p(ctx));
                            mm.learn(ctx, hit);
                            if hit {
                                (m, model.advance(state, m))
                            } else {
                                model.decode_excluding(&mut dec, state, Some(m))
                            }
                        }
                        None => model.decode(&mut dec, state),
                    };
                    state = next;
                    out.push(x);
                    mm.update(&out[start..]);
                }
            }
        }
        Ok(())
    }
}
