//! One record: the unit SigmaLang encodes and decodes on its own.
//!
//! A record payload starts with a varint header `H = raw_len << 2 | mode`:
//!
//! | mode | body |
//! | --- | --- |
//! | 0 `STORED` | the `raw_len` input bytes as they are |
//! | 1-3 | reserved for modeled bodies |
//!
//! The payload's own length comes from the structure around it (a stream chunk, an archive
//! index), so a decoder always knows where a record ends.

use crate::error::{Error, Result};
use crate::varint;

/// The record modes of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// The input bytes, uncoded.
    Stored = 0,
}

impl Mode {
    fn from_code(code: u8) -> Option<Mode> {
        match code {
            0 => Some(Mode::Stored),
            _ => None,
        }
    }
}

/// The largest record this build encodes or decodes: 1 GiB. Larger inputs go through the
/// chunked stream format.
pub const MAX_RECORD_LEN: u64 = 1 << 30;

/// A reusable record encoder. Reusing one across records avoids rebuilding its state.
#[derive(Debug, Default)]
pub struct Encoder {}

impl Encoder {
    /// A new encoder.
    pub fn new() -> Encoder {
        Encoder {}
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
        varint::write(out, (input.len() as u64) << 2 | Mode::Stored as u64);
        out.extend_from_slice(input);
        Ok(())
    }
}

/// A reusable record decoder.
#[derive(Debug, Default)]
pub struct Decoder {}

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

impl Decoder {
    /// A new decoder.
    pub fn new() -> Decoder {
        Decoder {}
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
        }
        Ok(())
    }
}
