//! Arbitrary bytes given to the decoders never panic (errors are fine), and a stream that does
//! decode decodes the same through the one-shot and the streaming API.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let one_shot = sigmalang::decompress(data);
    let mut streamed = Vec::new();
    let reader = sigmalang::StreamReader::new(data).read_to_end(&mut streamed);
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
