//! Whole-input anchors of `sigma-bench anchors`: the strongest settings of the general-purpose
//! compressors users already run, each over one input as a single stream (no random access).
//! They implement [`Codec`] so the measuring code treats them like any other codec.

use crate::codec::{read_varint, write_varint, Codec, CodecResult};
use std::io::{Read, Write};

/// xz -9e: liblzma's easy encoder at preset 9 | `PRESET_EXTREME`, CRC64 check (what the `xz`
/// command writes).
pub struct Xz;

/// The preset of `xz -9e`.
pub const XZ_PRESET: u32 = 9 | liblzma::stream::PRESET_EXTREME;

impl Codec for Xz {
    fn name(&self) -> &str {
        "xz -9e"
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
        out.clear();
        let stream =
            liblzma::stream::Stream::new_easy_encoder(XZ_PRESET, liblzma::stream::Check::Crc64)?;
        let mut encoder = liblzma::write::XzEncoder::new_stream(std::mem::take(out), stream);
        encoder.write_all(input)?;
        *out = encoder.finish()?;
        Ok(())
    }

    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult {
        out.clear();
        liblzma::read::XzDecoder::new(compressed).read_to_end(out)?;
        Ok(())
    }
}

/// The window of `zstd -19 --long`: 2^27 bytes (what `--long` without a number sets).
pub const ZSTD_LONG_WINDOW_LOG: u32 = 27;

/// zstd -19 --long: level 19, window 2^27, long-distance matching, content size and checksum
/// in the frame (what the `zstd` command writes).
pub struct ZstdLong {
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl ZstdLong {
    /// The compressor and decompressor, set up.
    pub fn new() -> std::io::Result<ZstdLong> {
        use zstd::zstd_safe::{CParameter, DParameter};
        let mut compressor = zstd::bulk::Compressor::new(19)?;
        compressor.set_parameter(CParameter::WindowLog(ZSTD_LONG_WINDOW_LOG))?;
        compressor.set_parameter(CParameter::EnableLongDistanceMatching(true))?;
        compressor.include_checksum(true)?;
        compressor.include_contentsize(true)?;
        let mut decompressor = zstd::bulk::Decompressor::new()?;
        decompressor.set_parameter(DParameter::WindowLogMax(ZSTD_LONG_WINDOW_LOG))?;
        Ok(ZstdLong {
            compressor,
            decompressor,
        })
    }
}

impl Codec for ZstdLong {
    fn name(&self) -> &str {
        "zstd -19 --long"
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
        *out = self.compressor.compress(input)?;
        Ok(())
    }

    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult {
        let size = zstd::zstd_safe::get_frame_content_size(compressed)
            .map_err(|_| "not a zstd frame")?
            .ok_or("the zstd frame holds no content size")?;
        *out = self
            .decompressor
            .decompress(compressed, usize::try_from(size)?)?;
        Ok(())
    }
}

/// The window of the brotli anchor: 2^24 bytes, the largest standard (non-"large window")
/// brotli window, what `brotli -q 11 -w 24` uses.
pub const BROTLI_LGWIN: i32 = 24;

/// Brotli quality 11, window 2^24.
pub struct BrotliMax;

impl Codec for BrotliMax {
    fn name(&self) -> &str {
        "brotli-11 w24"
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
        out.clear();
        let params = brotli::enc::BrotliEncoderParams {
            quality: 11,
            lgwin: BROTLI_LGWIN,
            size_hint: input.len(),
            ..Default::default()
        };
        brotli::BrotliCompress(&mut &input[..], out, &params)?;
        Ok(())
    }

    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult {
        out.clear();
        brotli::BrotliDecompress(&mut &compressed[..], out)?;
        Ok(())
    }
}

/// PPMd var. H (PPMd7, as in 7-Zip) of the `ppmd-rust` crate, at `order` with `mem` bytes of
/// model memory. The length is written first as a LEB128 varint (counted), as 7-Zip keeps it in
/// the archive's headers; no end marker.
pub struct Ppmd {
    order: u32,
    mem: u32,
    name: String,
}

/// The PPMd order of the anchor: 16, as 7-Zip's `-m0=PPMd:o=16` and the corpus README's figures.
pub const PPMD_ORDER: u32 = 16;
/// The PPMd model memory of the anchor: 512 MiB (7-Zip's largest preset is 192 MiB; 512 MiB
/// keeps the model from being restarted on these inputs).
pub const PPMD_MEM: u32 = 512 << 20;

impl Ppmd {
    /// PPMd7 at `order` with `mem` bytes.
    pub fn new(order: u32, mem: u32) -> Ppmd {
        Ppmd {
            order,
            mem,
            name: format!("PPMd o{order} {} MiB", mem >> 20),
        }
    }
}

impl Codec for Ppmd {
    fn name(&self) -> &str {
        &self.name
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
        out.clear();
        write_varint(out, input.len() as u64);
        let mut encoder = ppmd_rust::Ppmd7Encoder::new(std::mem::take(out), self.order, self.mem)
            .map_err(|e| format!("PPMd: {e:?}"))?;
        encoder.write_all(input)?;
        *out = encoder.finish(false)?;
        Ok(())
    }

    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult {
        let (len, used) = read_varint(compressed)?;
        let len = usize::try_from(len)?;
        let mut decoder = ppmd_rust::Ppmd7Decoder::new(&compressed[used..], self.order, self.mem)
            .map_err(|e| format!("PPMd: {e:?}"))?;
        out.clear();
        out.resize(len, 0);
        decoder.read_exact(out)?;
        Ok(())
    }
}

/// SigmaLang's stream mode at the default level (`sigmalang::compress`, what `sigma compress`
/// writes with the built-in codebook).
pub struct SigmaStream;

impl Codec for SigmaStream {
    fn name(&self) -> &str {
        "sigma compress"
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
        *out = sigmalang::compress(input);
        Ok(())
    }

    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult {
        *out = sigmalang::decompress(compressed)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_anchors_round_trip() {
        let text = b"fn main() {\n    println!(\"hello\");\n}\n".repeat(50);
        let mut codecs: Vec<Box<dyn Codec>> = vec![
            Box::new(Xz),
            Box::new(ZstdLong::new().unwrap()),
            Box::new(BrotliMax),
            Box::new(Ppmd::new(6, 1 << 20)),
            Box::new(SigmaStream),
        ];
        for codec in &mut codecs {
            for input in [&text[..], b"", b"x"] {
                let (mut packed, mut unpacked) = (Vec::new(), vec![7]);
                codec.compress(input, &mut packed).unwrap();
                codec.decompress(&packed, &mut unpacked).unwrap();
                assert_eq!(unpacked, input, "{}", codec.name());
                if input.len() > 1000 {
                    assert!(packed.len() * 5 < input.len(), "{}", codec.name());
                }
            }
        }
    }
}
