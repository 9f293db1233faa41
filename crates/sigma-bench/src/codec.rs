//! The [`Codec`] trait and the anchor codecs SigmaLang is measured against.
//!
//! Every codec compresses one record on its own: [`Codec::decompress`] gets only the
//! compressed bytes of that record plus state built before the run (a trained dictionary
//! or symbol table), never anything left over from compressing. Where a format does not
//! record the original length and its decoder needs it, the codec writes the length as a
//! LEB128 varint prefix, and those bytes count in the compressed size.

use std::error::Error;
use std::io::Cursor;

/// What a codec operation returns.
pub type CodecResult = Result<(), Box<dyn Error>>;

/// A per-record compressor and decompressor.
pub trait Codec {
    /// The short name used in reports and by `--only`.
    fn name(&self) -> &str;

    /// Replaces the contents of `out` with the compressed form of `input`.
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult;

    /// Replaces the contents of `out` with the record that `compressed` holds.
    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult;

    /// Bytes of trained state (dictionary, symbol table, codebook) the decoder needs.
    fn model_bytes(&self) -> usize {
        0
    }

    /// Sets the reference content for the next [`Codec::compress`] or
    /// [`Codec::decompress`] call: in `--histories` mode, the previous record of the same
    /// conversation (which a decoder has already decoded), or `None` for the first one.
    /// Codecs that do not use references ignore it.
    fn set_reference(&mut self, _reference: Option<&[u8]>) {}
}

/// Appends `value` to `out` as a LEB128 varint.
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a LEB128 varint from the start of `input`; returns the value and its length.
pub fn read_varint(input: &[u8]) -> Result<(u64, usize), Box<dyn Error>> {
    let mut value = 0u64;
    for (i, &byte) in input.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err("truncated or overlong length prefix".into())
}

/// Reads the length prefix of `compressed`; returns the length and the rest.
fn split_length(compressed: &[u8]) -> Result<(usize, &[u8]), Box<dyn Error>> {
    let (len, used) = read_varint(compressed)?;
    Ok((usize::try_from(len)?, &compressed[used..]))
}

/// A zstd compressor set up like `zstd --no-check` without a content size or dictionary
/// id in the frame header: the fairest per-record framing zstd offers.
fn zstd_compressor(
    level: i32,
    dictionary: &[u8],
) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::with_dictionary(level, dictionary)?;
    c.include_checksum(false)?;
    c.include_contentsize(false)?;
    c.include_dictid(false)?;
    Ok(c)
}

/// zstd frames, one per record, optionally with a shared dictionary, or (for
/// `--histories`) with the previous record of the conversation as a raw-content
/// dictionary, like `zstd --patch-from`. The frame holds no content size, so the length
/// is a varint prefix.
pub struct Zstd {
    name: String,
    level: i32,
    dictionary_len: usize,
    patch_from: bool,
    reference: Vec<u8>,
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl Zstd {
    /// zstd at `level`, with `dictionary` (may be empty) loaded into both sides.
    pub fn new(name: &str, level: i32, dictionary: &[u8]) -> std::io::Result<Zstd> {
        Ok(Zstd {
            name: name.to_owned(),
            level,
            dictionary_len: dictionary.len(),
            patch_from: false,
            reference: Vec::new(),
            compressor: zstd_compressor(level, dictionary)?,
            decompressor: zstd::bulk::Decompressor::with_dictionary(dictionary)?,
        })
    }

    /// zstd at `level`, each record coded against the reference set by
    /// [`Codec::set_reference`] as a raw-content dictionary.
    pub fn patch_from(name: &str, level: i32) -> std::io::Result<Zstd> {
        let mut codec = Zstd::new(name, level, &[])?;
        codec.patch_from = true;
        Ok(codec)
    }
}

impl Codec for Zstd {
    fn name(&self) -> &str {
        &self.name
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
        if self.patch_from {
            self.compressor
                .set_dictionary(self.level, &self.reference)?;
        }
        out.clear();
        write_varint(out, input.len() as u64);
        let start = out.len();
        out.reserve(zstd::zstd_safe::compress_bound(input.len()));
        let mut cursor = Cursor::new(out);
        cursor.set_position(start as u64);
        self.compressor.compress_to_buffer(input, &mut cursor)?;
        Ok(())
    }

    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult {
        if self.patch_from {
            self.decompressor.set_dictionary(&self.reference)?;
        }
        let (len, frame) = split_length(compressed)?;
        out.clear();
        out.reserve(len);
        let n = self.decompressor.decompress_to_buffer(frame, out)?;
        if n != len {
            return Err(format!("decoded {n} bytes, prefix says {len}").into());
        }
        Ok(())
    }

    fn model_bytes(&self) -> usize {
        self.dictionary_len
    }

    fn set_reference(&mut self, reference: Option<&[u8]>) {
        if self.patch_from {
            self.reference.clear();
            self.reference
                .extend_from_slice(reference.unwrap_or_default());
        }
    }
}

/// Brotli at quality 11, window 2^22 (what `brotli -q 11 -w 22` does). The brotli stream
/// ends itself, so no length prefix is needed or added.
pub struct Brotli {
    params: brotli::enc::BrotliEncoderParams,
}

impl Brotli {
    /// Brotli with the given quality and window log.
    pub fn new(quality: i32, lgwin: i32) -> Brotli {
        let params = brotli::enc::BrotliEncoderParams {
            quality,
            lgwin,
            ..Default::default()
        };
        Brotli { params }
    }
}

impl Codec for Brotli {
    fn name(&self) -> &str {
        "brotli-11"
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
        out.clear();
        self.params.size_hint = input.len();
        brotli::BrotliCompress(&mut &input[..], out, &self.params)?;
        Ok(())
    }

    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult {
        out.clear();
        brotli::BrotliDecompress(&mut &compressed[..], out)?;
        Ok(())
    }
}

/// LZ4 block format (lz4_flex, safe build), with the length as a varint prefix.
pub struct Lz4;

impl Codec for Lz4 {
    fn name(&self) -> &str {
        "lz4"
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
        out.clear();
        write_varint(out, input.len() as u64);
        let start = out.len();
        out.resize(
            start + lz4_flex::block::get_maximum_output_size(input.len()),
            0,
        );
        let n = lz4_flex::block::compress_into(input, &mut out[start..])?;
        out.truncate(start + n);
        Ok(())
    }

    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult {
        let (len, block) = split_length(compressed)?;
        out.clear();
        out.resize(len, 0);
        let n = lz4_flex::block::decompress_into(block, out)?;
        if n != len {
            return Err(format!("decoded {n} bytes, prefix says {len}").into());
        }
        Ok(())
    }
}

/// FSST (fsst-rs) with a symbol table trained on the training records. Its code stream
/// ends with the record, so no length prefix is needed or added.
pub struct Fsst {
    compressor: fsst::Compressor,
}

impl Fsst {
    /// FSST with a trained compressor.
    pub fn new(compressor: fsst::Compressor) -> Fsst {
        Fsst { compressor }
    }

    /// Trains a symbol table on `records` (fsst-rs itself samples about 16 KB of them).
    pub fn train(records: &[&[u8]]) -> fsst::Compressor {
        fsst::Compressor::train(&records.to_vec())
    }

    /// The size of the symbol table stored compactly: one length byte and the symbol's
    /// bytes for each symbol.
    pub fn table_bytes(compressor: &fsst::Compressor) -> usize {
        let lengths = compressor.symbol_lengths();
        lengths.len() + lengths.iter().map(|&l| usize::from(l)).sum::<usize>()
    }
}

impl Codec for Fsst {
    fn name(&self) -> &str {
        "fsst"
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
        *out = self.compressor.compress(input);
        Ok(())
    }

    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult {
        *out = self.compressor.decompressor().decompress(compressed);
        Ok(())
    }

    fn model_bytes(&self) -> usize {
        Fsst::table_bytes(&self.compressor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(codec: &mut dyn Codec, input: &[u8]) {
        let mut packed = Vec::new();
        let mut unpacked = vec![1, 2, 3];
        codec.compress(input, &mut packed).unwrap();
        codec.decompress(&packed, &mut unpacked).unwrap();
        assert_eq!(unpacked, input, "{}", codec.name());
    }

    #[test]
    fn varint_round_trips() {
        for value in [0, 1, 127, 128, 300, 1 << 40, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(read_varint(&out).unwrap(), (value, out.len()));
        }
        assert!(read_varint(&[0x80]).is_err());
    }

    #[test]
    fn anchors_round_trip() {
        let text = b"Hello! How can I help you today? Hello! How can I help you today?".repeat(20);
        let records: Vec<&[u8]> = vec![&text, b"short", b""];
        let dict = text.clone();
        let mut codecs: Vec<Box<dyn Codec>> = vec![
            Box::new(Zstd::new("zstd-3", 3, &[]).unwrap()),
            Box::new(Zstd::new("zstd-19-dict", 19, &dict).unwrap()),
            Box::new(Brotli::new(11, 22)),
            Box::new(Lz4),
            Box::new(Fsst::new(Fsst::train(&records))),
        ];
        for codec in &mut codecs {
            for input in &records {
                round_trip(codec.as_mut(), input);
            }
        }
    }

    #[test]
    fn patch_from_uses_the_reference() {
        let previous = b"user: tell me a long story about a dragon and a knight. ".repeat(10);
        let mut current = previous.clone();
        current.extend_from_slice(b"assistant: once upon a time...");
        let mut codec = Zstd::patch_from("patch", 19).unwrap();
        let mut alone = Vec::new();
        codec.set_reference(None);
        codec.compress(&current, &mut alone).unwrap();
        codec.set_reference(Some(&previous));
        round_trip(&mut codec, &current);
        let mut patched = Vec::new();
        codec.compress(&current, &mut patched).unwrap();
        assert!(patched.len() < alone.len());
    }
}
