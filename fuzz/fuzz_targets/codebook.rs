//! Arbitrary codebook files never panic the loader, and a codebook that loads codes losslessly.
//!
//! The input is a codebook file without its checksum: the target appends the right CRC-32C, so
//! the fuzzer explores the model section instead of the checksum (a codebook with a valid
//! checksum can still be crafted). Seed with real codebooks minus their last four bytes
//! (fuzz/README.md).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sigmalang::checksum::crc32c;
use sigmalang::record::{Decoder, Encoder};
use sigmalang::Codebook;

fuzz_target!(|data: &[u8]| {
    let mut file = data.to_vec();
    file.extend_from_slice(&crc32c(data).to_le_bytes());
    let Ok(codebook) = Codebook::from_bytes(&file) else {
        return;
    };
    let codebook = Arc::new(codebook);
    let mut enc = Encoder::new(Arc::clone(&codebook));
    let mut dec = Decoder::new(codebook);
    let texts: [&[u8]; 4] = [
        b"",
        b"The quick brown fox jumps over the lazy dog. {\"role\": \"user\"}",
        &[0, 0, 0, 1, 255, 0, 0, 7, 7, 7, 7, 7, 7, 7, 7],
        "\u{3a3}LANG \u{1F600} caf\u{e9}".as_bytes(),
    ];
    for text in texts {
        let (mut coded, mut back) = (Vec::new(), Vec::new());
        enc.encode(text, &mut coded).expect("a loaded codebook encodes");
        dec.decode(&coded, &mut back).expect("and decodes what it encoded");
        assert_eq!(back, text);
    }
});
