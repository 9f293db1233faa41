//! The SigmaLang slot: SigmaLang's record codec behind the [`Codec`] trait, and the
//! training presets ("levels") the bench trains codebooks with.
//!
//! Kept on its own so that trained codebooks, levels and (later) reference coding can be
//! wired in here without touching the anchors or the measuring code.

use crate::codec::{Codec, CodecResult};
use sigmalang::codebook::Codebook;
use sigmalang::TrainOptions;
use sigmalang::{Decoder, Encoder};
use std::sync::Arc;

/// The built-in codebook's row.
pub const DEFAULT_NAME: &str = "sigma-default";

/// A SigmaLang level: a row name and the library's training preset it trains with. Each
/// level trains its own codebook on the training records; the record format and coder are the
/// same for every level.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    /// Row name.
    pub name: &'static str,
    /// The library's preset.
    pub level: sigmalang::CompressionLevel,
}

impl Level {
    /// The library's training options for this level.
    pub fn options(&self) -> TrainOptions {
        TrainOptions::for_level(self.level)
    }

    /// The options in a few words, for notes.
    pub fn describe(&self) -> String {
        let o = self.options();
        format!(
            "level {}: order {}, min count {}/{} from order {}, min gain {} bits/MiB",
            self.level,
            o.get_max_order(),
            o.get_min_count(),
            o.get_min_count_high(),
            o.get_high_order(),
            o.get_min_gain_per_mib()
        )
    }
}

/// The training presets, smallest model first.
pub const LEVELS: &[Level] = &[
    Level {
        name: "sigma-fast",
        level: sigmalang::CompressionLevel::Fast,
    },
    Level {
        name: "sigma",
        level: sigmalang::CompressionLevel::Default,
    },
    Level {
        name: "sigma-max",
        level: sigmalang::CompressionLevel::Max,
    },
];

/// The level named `name`, if there is one.
pub fn level(name: &str) -> Option<&'static Level> {
    LEVELS.iter().find(|l| l.name == name)
}

/// SigmaLang records: each record encoded on its own by [`Encoder`], decoded by
/// [`Decoder`], both over the same codebook.
#[derive(Debug)]
pub struct SigmaCodec {
    name: String,
    codebook: Arc<Codebook>,
    encoder: Encoder,
    decoder: Decoder,
}

impl SigmaCodec {
    /// A SigmaLang codec over the codebook built into the library.
    pub fn new() -> SigmaCodec {
        SigmaCodec::with_codebook(DEFAULT_NAME, Codebook::default_codebook())
    }

    /// A SigmaLang codec named `name` over `codebook`.
    pub fn with_codebook(name: &str, codebook: Arc<Codebook>) -> SigmaCodec {
        SigmaCodec {
            name: name.to_owned(),
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
        &self.name
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

    // Reference (context / delta) coding goes here. In `--histories` mode the bench calls
    // this before every compress and decompress with the previous record of the same
    // conversation (`None` for a conversation's first record), exactly as it does for
    // `zstd-19-patch-from`. Once `sigmalang::record` can code a record against earlier
    // content, keep the reference here (or prime the encoder and decoder with it) and
    // add a row such as `sigma-delta` to `HISTORY_CODECS` in main.rs. Until then the
    // SigmaLang rows code every record on its own and ignore the reference.
    fn set_reference(&mut self, _reference: Option<&[u8]>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(codec: &mut SigmaCodec) {
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

    #[test]
    fn round_trips() {
        let mut codec = SigmaCodec::new();
        assert_eq!(codec.name(), DEFAULT_NAME);
        round_trip(&mut codec);
    }

    #[test]
    fn trained_levels_round_trip() {
        let text = b"Sure! Here is the code you asked for. Let me know if it helps!\n".repeat(40);
        let records: Vec<&[u8]> = text.chunks(97).collect();
        for level in LEVELS {
            let codebook = Codebook::train(&records, &level.options(), &mut |_, _| {}).unwrap();
            let mut codec = SigmaCodec::with_codebook(level.name, codebook);
            assert_eq!(codec.name(), level.name);
            round_trip(&mut codec);
        }
        assert!(level("sigma").is_some() && level(DEFAULT_NAME).is_none());
    }
}
