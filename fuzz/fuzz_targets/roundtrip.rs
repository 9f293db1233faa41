//! compress → decompress gives the input back; so do a small-chunk stream, a record, and a stream
//! chunk (which may be coded `ADAPTIVE`).
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use sigmalang::{Codebook, StreamOptions};
use sigmalang::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let packed = sigmalang::compress(data);
    assert_eq!(
        sigmalang::decompress(&packed).expect("fresh stream decodes"),
        data
    );

    // The first byte picks a small chunk size so the fuzzer also explores chunk boundaries.
    let chunk = usize::from(data.first().copied().unwrap_or(0) % 64) + 1;
    let mut w = sigmalang::StreamWriter::with_options(
        Vec::new(),
        Codebook::default_codebook(),
        StreamOptions::default().chunk_size(chunk),
    )
    .expect("valid size");
    w.write_all(data).expect("writing to a Vec");
    let stream = w.finish().expect("writing to a Vec");
    assert_eq!(
        sigmalang::decompress(&stream).expect("fresh stream decodes"),
        data
    );

    let mut payload = Vec::new();
    Encoder::default()
        .encode(data, &mut payload)
        .expect("record within limits");
    let mut out = Vec::new();
    Decoder::default()
        .decode(&payload, &mut out)
        .expect("fresh record decodes");
    assert_eq!(out, data);

    let mut chunk = Vec::new();
    Encoder::default()
        .encode_chunk(data, &mut chunk)
        .expect("chunk within limits");
    let mut out = Vec::new();
    Decoder::default()
        .decode_chunk(&chunk, &mut out)
        .expect("fresh chunk decodes");
    assert_eq!(out, data);
});
