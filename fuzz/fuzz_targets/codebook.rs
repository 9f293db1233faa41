//! Arbitrary codebook files never panic the loader, and a codebook that loads codes losslessly.
//!
//! The input is a codebook file without its checksum: the target appends the right CRC-32C, so
//! the fuzzer explores the model section instead of the checksum (a codebook with a valid
//! checksum can still be crafted). Seed with real codebooks minus their last four bytes
//! (fuzz/README.md).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sigmalang::internals::checksum::crc32c;
use sigmalang::Codebook;
use sigmalang::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let mut file = data.to_vec();
    file.extend_from_slice(&crc32c(data).to_le_bytes());
    let Ok(codebook) = Codebook::from_bytes(&file) else {
        return;
    };
    let mut enc = Encoder::new(Arc::clone(&codebook));
    let mut dec = Decoder::new(codebook);
    // Repeats of more than 16 bytes (in the record and from the frame) start DELTA runs, so
    // the wrong-prediction paths (`encode_excluding` with a byte excluded) and `state_after`
    // run too.
    let frame: &[u8] = b"User: the same question again, word for word, please.\n";
    let texts: [&[u8]; 5] = [
        b"",
        b"The quick brown fox jumps over the lazy dog. {\"role\": \"user\"}",
        &[0, 0, 0, 1, 255, 0, 0, 7, 7, 7, 7, 7, 7, 7, 7],
        "\u{3a3}LANG \u{1F600} caf\u{e9}".as_bytes(),
        b"User: the same question again, word for word, please!\n\
          repeat repeat repeat repeat repeat repeat repeat repeat repeaT \0\0\0\0\0\0\0\0\0x",
    ];
    for text in texts {
        for frames in [&[][..], &[frame][..]] {
            let (mut coded, mut back) = (Vec::new(), Vec::new());
            enc.encode_with_frames(frames, text, &mut coded)
                .expect("a loaded codebook encodes");
            dec.decode_with_frames(frames, &coded, &mut back)
                .expect("and decodes what it encoded");
            assert_eq!(back, text);
        }
    }
});
