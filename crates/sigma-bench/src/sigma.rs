//! The SigmaLang slot: SigmaLang's record codec behind the [`Codec`] trait.
//!
//! Kept on its own so that trained codebooks and levels can be wired in here without
//! touching the anchors or the measuring code.

use crate::codec::{Codec, CodecResult};
use sigmalang::codebook::Codebook;
use sigmalang::record::{Decoder, Encoder};
use std::sync::Arc;

/// SigmaLang records: each record encoded on its own by [`Encoder`], decoded by
/// [`Decoder`], both over the same codebook.
#[derive(Debug)]
pub struct SigmaCodec {
    codebook: Arc<Codebook>,
    encoder: Encoder,
    decoder: Decoder,
}

impl SigmaCodec {
    /// A SigmaLang codec over the codebook built into the library.
    pub fn new() -> SigmaCodec {
        SigmaCodec::with_codebook(Codebook::default_codebook())
    }

    /// A SigmaLang codec over `codebook`.
    pub fn with_codebook(codebook: Arc<Codebook>) -> SigmaCodec {
        SigmaCodec {
            encoder: Encoder::new(codebook.clone()),
            decoder: Decoder::new(codebook.clone()),
            codebook,
        }
    }
}

impl Default for SigmaCodec {
    fn default() -> SigmaCodec {
        SigmaCodec::new()
    }
}

impl Codec for SigmaCodec {
    fn name(&self) -> &str {
        "sigma"
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
        out.clear();
        self.encoder.encode(input, out)?;
        Ok(())
    }

    fn decompress(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> CodecResult {
        out.clear();
        self.decoder.decode(compressed, out)?;
        Ok(())
    }

    fn model_bytes(&self) -> usize {
        self.codebook.serialized_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut codec = SigmaCodec::new();
        let (mut packed, mut unpacked) = (Vec::new(), Vec::new());
        for input in [
            &b""[..],
            b"Sure! Here is the code:\n```rust\nfn main() {}\n```",
        ] {
            codec.compress(input, &mut packed).unwrap();
            codec.decompress(&packed, &mut unpacked).unwrap();
            assert_eq!(unpacked, input);
        }
    }
}
