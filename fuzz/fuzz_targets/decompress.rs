//! Arbitrary bytes given to the decoders never panic (errors are fine), a stream that does
//! decode decodes the same through the one-shot and the streaming API, and a reader decoding on
//! two threads yields the same bytes and the same error as one decoding on the calling thread;
//! an output limit refuses exactly the streams that decode to more, and a stream that decodes
//! decodes twice when concatenated with itself.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let one_shot = sigmalang::decompress(data);
    let mut streamed = Vec::new();
    let reader = sigmalang::StreamReader::new(data).read_to_end(&mut streamed);
    // Decoding on two threads yields the same bytes and stops with the same error.
    let mut threaded = Vec::new();
    let options = sigmalang::StreamOptions::default().threads(2);
    let parallel = sigmalang::StreamReader::with_options(
        data,
        sigmalang::Codebook::default_codebook(),
        options,
    )
    .expect("threads start")
    .read_to_end(&mut threaded);
    assert_eq!(threaded, streamed);
    assert_eq!(
        parallel.as_ref().map_err(|e| e.to_string()),
        reader.as_ref().map_err(|e| e.to_string())
    );
    // The output limit: a stream within it decodes as without it, one over it is refused.
    const LIMIT: u64 = 1 << 20;
    match (
        &one_shot,
        sigmalang::decompress_with_limit(&sigmalang::Codebook::default_codebook(), data, LIMIT),
    ) {
        (Ok(out), Ok(limited)) => assert_eq!(out, &limited),
        (Ok(out), Err(e)) => assert!(out.len() as u64 > LIMIT, "{e}"),
        (Err(_), Ok(_)) => panic!("only the limited decompression succeeded"),
        (Err(_), Err(_)) => {}
    }
    // Concatenated, a stream decodes twice.
    if let Ok(out) = &one_shot {
        let twice = [data, data].concat();
        assert_eq!(
            sigmalang::decompress(&twice).unwrap(),
            [&out[..], &out[..]].concat()
        );
    }
    match (one_shot, reader) {
        (Ok(out), Ok(_)) => assert_eq!(out, streamed),
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "decompress and StreamReader disagree: {:?} vs {:?}",
            a.map(|v| v.len()),
            b
        ),
    }
});
