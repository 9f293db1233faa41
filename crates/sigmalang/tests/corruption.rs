//! Damaged streams: every single-bit flip and every truncation of several valid streams must make
//! `decompress` fail with an error that says where; trailing data and concatenated streams are
//! rejected; arbitrary garbage never panics.

use std::io::{Read, Write};

use proptest::prelude::*;
use sigmalang::{compress, decompress, Error, StreamReader, StreamWriter};
use sigmalang::{Codebook, StreamOptions};
use sigmalang::{Decoder, Encoder};

/// Valid streams to damage: (name, stream).
fn valid_streams() -> Vec<(&'static str, Vec<u8>)> {
    let text = b"Hello, world! {\"role\": \"user\"} \xC3\xA9\xFF\n".to_vec();
    let mut w = StreamWriter::with_options(
        Vec::new(),
        Codebook::default_codebook(),
        StreamOptions::default().chunk_size(7),
    )
    .unwrap();
    w.write_all(b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.")
        .unwrap();
    let multi = w.finish().unwrap();
    // One chunk holding a zero-length-varint-sized record and one over 127 bytes (two-byte
    // length varints).
    let long: Vec<u8> = (0..300u32)
        .map(|i| b"abcdefgh "[(i % 9) as usize])
        .collect();
    vec![
        ("empty", compress(b"")),
        ("one byte", compress(b"a")),
        ("short text", compress(&text)),
        ("multi-chunk", multi),
        ("300 bytes", compress(&long)),
    ]
}

/// `decompress` must fail, and say where (at an offset within or just past the stream).
fn expect_located_error(stream: &[u8], what: &str) -> Error {
    match decompress(stream) {
        Ok(out) => panic!("{what}: damaged stream decoded to {} bytes", out.len()),
        Err(e) => {
            let Some(offset) = e.offset() else {
                panic!("{what}: error has no offset: {e}");
            };
            assert!(
                offset <= stream.len() as u64,
                "{what}: offset {offset} is past the end of a {}-byte stream ({e})",
                stream.len()
            );
            e
        }
    }
}

/// The same stream read through `StreamReader`'s `io::Read` must fail too, and the `io::Error`
/// must carry the codec error (kind and offset) back.
fn expect_reader_error(stream: &[u8], what: &str) {
    let mut out = Vec::new();
    match StreamReader::new(stream).read_to_end(&mut out) {
        Ok(n) => panic!("{what}: StreamReader read {n} bytes of a damaged stream without error"),
        Err(e) => {
            let e = Error::from(e);
            assert!(
                e.offset().is_some(),
                "{what}: reader error has no offset: {e}"
            );
        }
    }
}

#[test]
fn every_bit_flip_is_detected() {
    for (name, stream) in valid_streams() {
        assert!(
            decompress(&stream).is_ok(),
            "{name}: the valid stream must decode"
        );
        let mut damaged = stream.clone();
        for pos in 0..stream.len() {
            for bit in 0..8 {
                damaged[pos] ^= 1 << bit;
                let what = format!("{name}: bit {bit} of byte {pos} flipped");
                expect_located_error(&damaged, &what);
                expect_reader_error(&damaged, &what);
                damaged[pos] ^= 1 << bit;
            }
        }
        assert_eq!(damaged, stream);
    }
}

#[test]
fn every_truncation_is_detected() {
    for (name, stream) in valid_streams() {
        for len in 0..stream.len() {
            let what = format!("{name}: cut to {len} of {} bytes", stream.len());
            expect_located_error(&stream[..len], &what);
            expect_reader_error(&stream[..len], &what);
        }
    }
}

#[test]
fn trailing_garbage_is_rejected() {
    for (name, stream) in valid_streams() {
        for tail in [&b"\0"[..], b"\xFF", b"garbage", &[0u8; 64]] {
            let mut s = stream.clone();
            s.extend_from_slice(tail);
            let what = format!("{name} + {} trailing bytes", tail.len());
            let e = expect_located_error(&s, &what);
            assert_eq!(e.offset(), Some(stream.len() as u64), "{what}: {e}");
            expect_reader_error(&s, &what);
        }
    }
}

/// Concatenated streams decode as one (`cat a.sgm b.sgm | sigma -d`, as with zstd, xz and
/// gzip); other bytes after a stream are an error located where they start.
#[test]
fn concatenated_streams_decode_and_other_trailing_data_is_rejected() {
    let streams = valid_streams();
    for (a_name, a) in &streams {
        for (b_name, b) in &streams {
            let s = [a.clone(), b.clone()].concat();
            let expected = [decompress(a).unwrap(), decompress(b).unwrap()].concat();
            assert_eq!(
                decompress(&s).unwrap(),
                expected,
                "{a_name} followed by {b_name}"
            );
            let mut out = Vec::new();
            StreamReader::new(&s[..]).read_to_end(&mut out).unwrap();
            assert_eq!(out, expected, "{a_name} followed by {b_name}");
        }
        for tail in [&b"x"[..], b"\0\0\0\0", b"trailing", b"CE"] {
            let s = [a.clone(), tail.to_vec()].concat();
            let what = format!("{a_name} followed by {tail:?}");
            let e = expect_located_error(&s, &what);
            assert_eq!(e.offset(), Some(a.len() as u64), "{what}: {e}");
            expect_reader_error(&s, &what);
        }
    }
}

#[test]
fn not_a_stream_is_rejected() {
    for input in [
        &b""[..],
        b"\xCE",
        b"\xCE\xA3L",
        b"hello world, this is plain text and no stream at all",
        &[0u8; 64],
    ] {
        expect_located_error(input, "not a stream");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decompress(&input);
        let _ = StreamReader::new(&input[..]).read_to_end(&mut Vec::new());
    }

    #[test]
    fn garbage_after_a_valid_header_never_panics(
        tail in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        // Start with the header of a real stream so the body parser sees the garbage.
        let mut input = compress(b"")[..20].to_vec();
        input.extend_from_slice(&tail);
        let _ = decompress(&input);
    }

    #[test]
    fn record_garbage_never_panics(
        raw_len in 0u64..65536,
        mode in 0u64..4,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        // Records carry no checksum of their own (the container's covers them): garbage may
        // decode to something, but must not panic. The header is a well-formed varint with a
        // modest length: the decoder bounds the work a hostile length causes, but that bound
        // (megabytes of output per body byte) would make each case cost up to seconds.
        let mut payload = Vec::new();
        let mut h = raw_len << 2 | mode;
        while h >= 0x80 {
            payload.push(h as u8 | 0x80);
            h >>= 7;
        }
        payload.push(h as u8);
        payload.extend_from_slice(&body);
        let _ = Decoder::default().decode(&payload, &mut Vec::new());
    }

    #[test]
    fn damaged_record_payloads_never_panic(
        text in "\\PC{0,300}",
        flips in proptest::collection::vec((any::<usize>(), 0u8..8), 0..4),
        cut in any::<Option<usize>>(),
    ) {
        let mut payload = Vec::new();
        Encoder::default().encode(text.as_bytes(), &mut payload).unwrap();
        for (pos, bit) in flips {
            let pos = pos % payload.len();
            payload[pos] ^= 1 << bit;
        }
        if let Some(cut) = cut {
            payload.truncate(cut % (payload.len() + 1));
        }
        let _ = Decoder::default().decode(&payload, &mut Vec::new());
    }

    #[test]
    fn random_damage_never_panics(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<Option<usize>>(),
    ) {
        let mut stream = valid_streams().swap_remove(which).1;
        for (pos, byte) in edits {
            let pos = pos % stream.len();
            stream[pos] = byte;
        }
        if let Some(cut) = cut {
            stream.truncate(cut % (stream.len() + 1));
        }
        let _ = decompress(&stream);
    }
}

/// What a `StreamReader` does when its caller keeps calling `read` after errors.
struct Retried {
    /// Everything it yielded.
    out: Vec<u8>,
    /// Errors seen (at most the retry limit).
    errors: usize,
    /// Bytes it yielded after its first error.
    after_error: usize,
    /// Whether it ended with `Ok(0)`.
    clean_end: bool,
}

/// Reads `stream` with a `StreamReader`, calling `read` again after an error, up to `retries`
/// times.
fn read_through_errors(stream: &[u8], retries: usize) -> Retried {
    let mut r = StreamReader::new(stream);
    let mut res = Retried {
        out: Vec::new(),
        errors: 0,
        after_error: 0,
        clean_end: false,
    };
    let mut buf = [0u8; 64];
    loop {
        match r.read(&mut buf) {
            Ok(0) => {
                res.clean_end = true;
                return res;
            }
            Ok(n) => {
                res.out.extend_from_slice(&buf[..n]);
                if res.errors > 0 {
                    res.after_error += n;
                }
            }
            Err(_) if res.errors < retries => res.errors += 1,
            Err(_) => return res,
        }
    }
}

#[test]
fn reader_errors_are_sticky() {
    // After a `read` has failed, later reads must fail too: a caller that retries must not get
    // the data after a damaged chunk, or a clean end of stream.
    let mut w = StreamWriter::with_options(
        Vec::new(),
        Codebook::default_codebook(),
        StreamOptions::default().chunk_size(4),
    )
    .unwrap();
    w.write_all(b"AAAABBBBCCCC").unwrap();
    let stream = w.finish().unwrap();
    let mut damaged = stream.clone();
    let mut bad = Vec::new();
    for pos in 0..stream.len() {
        damaged[pos] ^= 1;
        let r = read_through_errors(&damaged, 3);
        assert!(r.errors > 0, "flip at byte {pos} went unnoticed");
        if r.after_error > 0 || r.clean_end {
            bad.push(format!(
                "flip at byte {pos}: after {} errors the reader yielded {:?} in all, {} bytes \
                 after the first error, clean end {}",
                r.errors,
                String::from_utf8_lossy(&r.out),
                r.after_error,
                r.clean_end
            ));
        }
        damaged[pos] ^= 1;
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// A stream of another container version (its header CRC intact) is refused by name, not
/// decoded with this version's model: version 1 coded with other frequencies. (Version 2
/// streams still decode: `golden.rs` checks the version-2 vectors.)
#[test]
fn other_container_versions_are_refused() {
    for version in [0u8, 1, 4, 255] {
        let mut stream = compress(b"Hello, world! Hello again.");
        assert_eq!(stream[4], sigmalang::stream::FORMAT_VERSION);
        stream[4] = version;
        let crc = sigmalang::internals::checksum::crc32c(&stream[..16]);
        stream[16..20].copy_from_slice(&crc.to_le_bytes());
        let err = decompress(&stream).expect_err("another version must be refused");
        assert!(
            matches!(
                err.kind(),
                sigmalang::ErrorKind::UnsupportedVersion { what: "container", found, supported: 3 }
                    if *found == u32::from(version)
            ),
            "{err}"
        );
        assert_eq!(err.offset(), Some(4), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("version {version} is not supported")),
            "{err}"
        );
    }
}
