//! Round trips through every public entry point: `compress`/`decompress`, `StreamWriter` /
//! `StreamReader` with small chunks and arbitrary write splits, and reused record
//! `Encoder`/`Decoder`s. Properties run 256+ cases each; fixed cases pin the edges (every single
//! byte, long zero runs, WTF-8 surrogates, invalid UTF-8, inputs at chunk boundaries).

use std::io::{Read, Write};

use proptest::prelude::*;
use sigmalang::stream::DEFAULT_CHUNK_SIZE;
use sigmalang::{compress, decompress, parse, StreamReader, StreamWriter};
use sigmalang::{Codebook, StreamOptions};
use sigmalang::{Decoder, Encoder};

/// `compress` → `decompress` gives `input` back.
fn assert_roundtrip(input: &[u8]) {
    let packed = compress(input);
    match decompress(&packed) {
        Ok(out) => assert!(
            out == input,
            "round trip changed a {}-byte input (got {} bytes)",
            input.len(),
            out.len()
        ),
        Err(e) => panic!(
            "decompress of a fresh {}-byte stream failed: {e}",
            input.len()
        ),
    }
}

/// Streams `input` through a `StreamWriter` with `chunk_size`, cutting the writes at `cuts`
/// (positions in `input`, any order, out-of-range ones clamped), and returns the stream.
fn stream_with_cuts(input: &[u8], chunk_size: usize, cuts: &[usize]) -> Vec<u8> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.push(0);
    cuts.push(input.len());
    cuts.sort_unstable();
    let mut w = StreamWriter::with_options(
        Vec::new(),
        Codebook::default_codebook(),
        StreamOptions::default().chunk_size(chunk_size),
    )
    .unwrap();
    for pair in cuts.windows(2) {
        w.write_all(&input[pair[0]..pair[1]]).unwrap();
    }
    w.flush().unwrap();
    w.finish().unwrap()
}

/// Reads `stream` back through a `StreamReader` with reads of at most `read_size` bytes.
fn read_in_pieces(stream: &[u8], read_size: usize) -> Vec<u8> {
    let mut r = StreamReader::new(stream);
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// A `char` from any of the 17 planes, surrogates excluded.
fn char_from_every_plane() -> impl Strategy<Value = char> {
    (0u32..=16, 0u32..=0xffff).prop_filter_map("surrogate", |(plane, low)| {
        char::from_u32(plane << 16 | low)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_roundtrip(input in proptest::collection::vec(any::<u8>(), 0..4096)) {
        assert_roundtrip(&input);
    }

    #[test]
    fn printable_unicode_roundtrips(s in "\\PC*") {
        assert_roundtrip(s.as_bytes());
    }

    #[test]
    fn any_char_strings_roundtrip(chars in proptest::collection::vec(any::<char>(), 0..512)) {
        let s: String = chars.into_iter().collect();
        assert_roundtrip(s.as_bytes());
    }

    #[test]
    fn chars_from_every_plane_roundtrip(
        chars in proptest::collection::vec(char_from_every_plane(), 0..512)
    ) {
        let s: String = chars.into_iter().collect();
        assert_roundtrip(s.as_bytes());
    }

    #[test]
    fn stream_small_chunks_and_split_writes_roundtrip(
        input in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk_size in 1usize..64,
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        read_size in 1usize..100,
    ) {
        let stream = stream_with_cuts(&input, chunk_size, &cuts);
        prop_assert_eq!(&decompress(&stream).unwrap(), &input);
        prop_assert_eq!(&read_in_pieces(&stream, read_size), &input);
        let mut all = Vec::new();
        StreamReader::new(&stream[..]).read_to_end(&mut all).unwrap();
        prop_assert_eq!(&all, &input);
    }

    #[test]
    fn chunking_does_not_depend_on_write_splits(
        input in proptest::collection::vec(any::<u8>(), 0..1024),
        chunk_size in 1usize..64,
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        // The same input and chunk size give the same stream however the writes are cut.
        prop_assert_eq!(
            stream_with_cuts(&input, chunk_size, &cuts),
            stream_with_cuts(&input, chunk_size, &[])
        );
    }

    #[test]
    fn reused_record_coders_roundtrip(
        records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..40)
    ) {
        let mut enc = Encoder::default();
        // All payloads appended to one buffer; `spans` remembers where each one is.
        let mut packed = Vec::new();
        let mut spans = Vec::new();
        for r in &records {
            let start = packed.len();
            enc.encode(r, &mut packed).unwrap();
            spans.push(start..packed.len());
        }
        // One reused decoder, in order, appending to a buffer that already holds data.
        let mut dec = Decoder::default();
        for (r, span) in records.iter().zip(&spans) {
            let mut out = b"prefix".to_vec();
            dec.decode(&packed[span.clone()], &mut out).unwrap();
            prop_assert_eq!(&out[..6], b"prefix");
            prop_assert_eq!(&out[6..], &r[..]);
        }
        // Records are independent: reverse order with the same decoder, and fresh decoders.
        for (r, span) in records.iter().zip(&spans).rev() {
            let mut out = Vec::new();
            dec.decode(&packed[span.clone()], &mut out).unwrap();
            prop_assert_eq!(&out, r);
            let mut fresh = Vec::new();
            Decoder::default().decode(&packed[span.clone()], &mut fresh).unwrap();
            prop_assert_eq!(&fresh, r);
        }
        // A reused encoder gives the same payload as a fresh one.
        for (r, span) in records.iter().zip(&spans) {
            let mut alone = Vec::new();
            Encoder::default().encode(r, &mut alone).unwrap();
            prop_assert_eq!(&alone[..], &packed[span.clone()]);
        }
    }

    #[test]
    fn parse_is_lossless(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let tree = parse(&input);
        prop_assert_eq!(tree.check(), Ok(()));
        prop_assert_eq!(tree.flatten(), input);
    }
}

#[test]
fn empty_input() {
    assert_roundtrip(b"");
    let stream = stream_with_cuts(b"", 1, &[]);
    assert_eq!(decompress(&stream).unwrap(), b"");
    assert_eq!(read_in_pieces(&stream, 1), b"");
}

#[test]
fn every_single_byte() {
    for b in 0..=255u8 {
        assert_roundtrip(&[b]);
        let stream = stream_with_cuts(&[b], 1, &[]);
        assert_eq!(decompress(&stream).unwrap(), [b]);
    }
}

#[test]
fn zero_runs() {
    for len in [1, 1000, 1 << 20] {
        assert_roundtrip(&vec![0u8; len]);
    }
}

#[test]
fn lone_surrogates_as_wtf8() {
    let high = b"\xED\xA0\x80"; // U+D800
    let low = b"\xED\xB0\x80"; // U+DC00
    let mut mixed = b"caf\xC3\xA9 ".to_vec();
    mixed.extend_from_slice(high);
    mixed.extend_from_slice(" text 😀 ".as_bytes());
    mixed.extend_from_slice(low);
    mixed.extend_from_slice(high);
    mixed.extend_from_slice(b"\n{\"k\": \"");
    mixed.extend_from_slice(low);
    mixed.extend_from_slice(b"\"}");
    for input in [&high[..], &low[..], b"\xED\xA0\x80\xED\xB0\x80", &mixed] {
        assert_roundtrip(input);
        let tree = parse(input);
        assert_eq!(tree.check(), Ok(()));
        assert_eq!(tree.flatten(), input);
    }
}

#[test]
fn invalid_utf8() {
    let cases: &[&[u8]] = &[
        b"\xFF",
        b"\xFE\xFF",
        b"\xC0\x80",
        b"abc\xC0\x80def",
        b"overlong \xE0\x80\xAF slash",
        b"truncated two-byte \xC3",
        b"truncated three-byte \xE2\x82",
        b"truncated four-byte \xF0\x9F\x98",
        b"\xF4\x90\x80\x80 beyond U+10FFFF",
        b"\x80\x80\x80 stray continuations",
    ];
    for &input in cases {
        assert_roundtrip(input);
        let tree = parse(input);
        assert_eq!(tree.check(), Ok(()));
        assert_eq!(tree.flatten(), input);
    }
}

/// Deterministic text-like bytes (no RNG crate needed).
fn text_like(len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the ",
        "quick ",
        "ünïcode ",
        "😀 ",
        "{\"a\":1} ",
        "\n",
        "x. ",
    ];
    let mut out = Vec::with_capacity(len + 16);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(WORDS[(state % WORDS.len() as u64) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn inputs_at_the_default_chunk_size() {
    for len in [
        DEFAULT_CHUNK_SIZE - 1,
        DEFAULT_CHUNK_SIZE,
        DEFAULT_CHUNK_SIZE + 1,
        2 * DEFAULT_CHUNK_SIZE,
    ] {
        assert_roundtrip(&text_like(len));
    }
}

#[test]
fn inputs_at_small_chunk_sizes() {
    for chunk in [1usize, 2, 7, 64, 4096] {
        for k in [1usize, 3] {
            for len in [k * chunk - 1, k * chunk, k * chunk + 1] {
                let input = text_like(len);
                let stream = stream_with_cuts(&input, chunk, &[len / 2]);
                assert_eq!(
                    decompress(&stream).unwrap(),
                    input,
                    "chunk {chunk}, len {len}"
                );
                assert_eq!(
                    read_in_pieces(&stream, 3),
                    input,
                    "chunk {chunk}, len {len}"
                );
            }
        }
    }
}

#[test]
fn bad_chunk_sizes_are_rejected() {
    assert!(StreamWriter::with_options(
        Vec::new(),
        Codebook::default_codebook(),
        StreamOptions::default().chunk_size(0)
    )
    .is_err());
    assert!(StreamWriter::with_options(
        Vec::new(),
        Codebook::default_codebook(),
        StreamOptions::default().chunk_size(usize::MAX)
    )
    .is_err());
}

/// An archive of `records` (each with an optional key) in pages of `page_bytes` (0: records
/// coded alone, unkeyed ones in inferred contexts; with `auto`, pages only if a trial says so),
/// with a primer of up to `primer` bytes, on `threads` workers.
fn archive_of(
    records: &[(Option<u8>, Vec<u8>)],
    (page_bytes, primer, auto): (u64, usize, bool),
    threads: usize,
) -> Vec<u8> {
    let opts = sigmalang::ArchiveOptions::default()
        .page_bytes(if auto { 0 } else { page_bytes })
        .auto_pages(if auto { page_bytes } else { 0 })
        .primer(primer)
        .batch_records(8)
        .threads(threads);
    let mut w =
        sigmalang::ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
            .unwrap();
    for (key, r) in records {
        w.add_in_group(key.as_ref().map(std::slice::from_ref), r)
            .unwrap();
    }
    w.finish().unwrap()
}

/// Records of any bytes, some empty, some repeating the one before with more (as a request
/// log's do), some keyed.
fn records_strategy() -> impl Strategy<Value = Vec<(Option<u8>, Vec<u8>)>> {
    proptest::collection::vec(
        (
            proptest::option::of(0u8..4),
            proptest::collection::vec(any::<u8>(), 0..300),
            any::<bool>(),
        ),
        0..40,
    )
    .prop_map(|items| {
        let mut out: Vec<(Option<u8>, Vec<u8>)> = Vec::new();
        for (key, bytes, extend) in items {
            let record = match (extend, out.last()) {
                (true, Some((_, prev))) => [&prev[..], &bytes[..]].concat(),
                _ => bytes,
            };
            out.push((key, record));
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Archives in block mode (any page size, chosen by a trial or not, after a primer or
    /// not) and with inferred contexts read back every record exactly, by get in any order, by
    /// walk and by the iterator, and do not depend on the number of threads.
    #[test]
    fn archives_round_trip_in_pages_and_inferred_contexts(
        records in records_strategy(),
        page_bytes in prop_oneof![Just(0u64), 1u64..5000],
        primer in prop_oneof![Just(0usize), 1usize..4000],
        auto in any::<bool>(),
        order in any::<u64>(),
    ) {
        let how = (page_bytes, primer, auto);
        let bytes = archive_of(&records, how, 1);
        prop_assert_eq!(&bytes, &archive_of(&records, how, 2));
        let mut r = sigmalang::ArchiveReader::open(std::io::Cursor::new(&bytes)).unwrap();
        prop_assert_eq!(r.len(), records.len() as u64);
        let n = records.len() as u64;
        for i in 0..n {
            let k = (i.wrapping_mul(order | 1)) % n;
            prop_assert_eq!(r.get(k).unwrap(), records[k as usize].1.clone());
        }
        let mut bad = 0;
        let failed = r.walk(|i, rec| {
            if rec.ok() != Some(&records[i as usize].1[..]) {
                bad += 1;
            }
        });
        prop_assert_eq!((failed, bad), (0, 0));
        let all: Vec<Vec<u8>> = r.records().collect::<Result<_, _>>().unwrap();
        prop_assert!(all.iter().zip(&records).all(|(a, b)| *a == b.1));
    }
}

/// Records drawn from a few short texts and any bytes, so that many repeat an earlier record
/// exactly (copies, FORMAT.md §5.8), some keyed.
fn repeating_records() -> impl Strategy<Value = Vec<(Option<u8>, Vec<u8>)>> {
    proptest::collection::vec(
        (
            proptest::option::of(0u8..4),
            prop_oneof![
                (0usize..6).prop_map(|k| format!("line {k} of the dialogue").into_bytes()),
                proptest::collection::vec(any::<u8>(), 0..40),
            ],
            any::<Option<usize>>(),
        ),
        0..60,
    )
    .prop_map(|items| {
        let mut out: Vec<(Option<u8>, Vec<u8>)> = Vec::new();
        for (key, bytes, again) in items {
            // Now and then an exact repeat of any earlier record.
            let record = match again {
                Some(k) if k % 3 == 0 && !out.is_empty() => out[k % out.len()].1.clone(),
                _ => bytes,
            };
            out.push((key, record));
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Archives whose records repeat each other (copies, with the writer's table of any size,
    /// in batches or one record at a time) read back every record by get in any order and by
    /// walk, do not depend on the number of threads, and every copy names an earlier record
    /// with its bytes that is not a copy.
    #[test]
    fn archives_of_repeated_records_round_trip(
        records in repeating_records(),
        repeats in prop_oneof![Just(0usize), 64usize..400, Just(32usize << 20)],
        batch in prop_oneof![Just(1u32), 2u32..9],
        order in any::<u64>(),
    ) {
        let write = |threads: usize| {
            let opts = sigmalang::ArchiveOptions::default()
                .repeats(repeats)
                .batch_records(batch)
                .threads(threads);
            let mut w = sigmalang::ArchiveWriter::with_options(
                Vec::new(),
                Codebook::default_codebook(),
                b"",
                opts,
            )
            .unwrap();
            for (key, r) in &records {
                w.add_in_group(key.as_ref().map(std::slice::from_ref), r).unwrap();
            }
            w.finish().unwrap()
        };
        let bytes = write(1);
        prop_assert_eq!(&bytes, &write(2));
        let mut r = sigmalang::ArchiveReader::open(std::io::Cursor::new(&bytes)).unwrap();
        let n = records.len() as u64;
        for i in 0..n {
            let k = (i.wrapping_mul(order | 1)) % n;
            prop_assert_eq!(r.get(k).unwrap(), records[k as usize].1.clone());
            let key = records[k as usize].0.map(|b| vec![b]);
            prop_assert_eq!(r.key(k).map(<[u8]>::to_vec), key);
            let info = r.info(k).unwrap();
            if info.dependency == sigmalang::Dependency::Copy {
                prop_assert!(repeats > 0);
                let s = info.prev.unwrap();
                prop_assert!(s < k);
                prop_assert_ne!(r.info(s).unwrap().dependency, sigmalang::Dependency::Copy);
                prop_assert_eq!(&records[s as usize].1, &records[k as usize].1);
            }
        }
        let mut bad = 0;
        let failed = r.walk(|i, rec| {
            if rec.ok() != Some(&records[i as usize].1[..]) {
                bad += 1;
            }
        });
        prop_assert_eq!((failed, bad), (0, 0));
    }
}
