//! Crafted hostile files, every checksum valid: records and frames larger than the encoder
//! makes, index fields at their extremes, decompression bombs, long chains, concatenated and
//! trailing streams. Each must end in a typed error that names the limit or the problem, quickly
//! and without a panic; legitimate files must still read.

use std::io::{Cursor, Read, Write};
use std::time::{Duration, Instant};

use sigmalang::archive::END_MAGIC;
use sigmalang::container::{FileHeader, FileKind, DEFAULT_MEMORY_LIMIT};
use sigmalang::internals::checksum::crc32c;
use sigmalang::internals::varint;
use sigmalang::{
    ArchiveOptions, ArchiveReader, ArchiveWriter, Codebook, ErrorKind, GroupOptions, StreamOptions,
    StreamReader, StreamWriter,
};

/// One record of a crafted archive: its context, level code (0 delta, 1 keyframe, 2 root) and
/// payload.
struct Crafted {
    context: u32,
    level: u64,
    payload: Vec<u8>,
}

/// The index fields of a crafted archive.
struct Fields {
    block_records: u64,
    keyframe_interval: u64,
    keyframes_per_root: u64,
    max_frames: u64,
    window: u64,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            block_records: 16,
            keyframe_interval: 16,
            keyframes_per_root: 16,
            max_frames: 2,
            window: 1 << 20,
        }
    }
}

/// A `MODELED` record payload claiming `raw_len` bytes with an 8-byte body.
fn claims(raw_len: u64) -> Vec<u8> {
    let mut p = Vec::new();
    varint::write(&mut p, raw_len << 2 | 1);
    p.extend_from_slice(&[0x55; 8]);
    p
}

/// An archive of `records` laid out as the writer lays one out, with valid checksums (the
/// content checksums are of nothing: these records never decode that far).
fn craft(records: &[Crafted], f: &Fields) -> Vec<u8> {
    let header = FileHeader {
        kind: FileKind::Archive,
        codebook: Codebook::default_codebook().id(),
    };
    let mut out = header.to_bytes().to_vec();
    varint::write(&mut out, 0);
    out.extend_from_slice(&crc32c(b"").to_le_bytes());
    // The primer section of version 3 (FORMAT.md §5.6): none.
    varint::write(&mut out, 0);
    let mut block_crcs = Vec::new();
    for block in records.chunks(f.block_records as usize) {
        let mut payloads = Vec::new();
        for r in block {
            payloads.extend_from_slice(&r.payload);
        }
        block_crcs.push((crc32c(&payloads), crc32c(b"")));
        out.extend_from_slice(&payloads);
    }
    let index_off = out.len() as u64;
    let mut idx = Vec::new();
    for v in [
        records.len() as u64,
        f.block_records,
        f.keyframe_interval,
        f.keyframes_per_root,
        f.max_frames,
        f.window,
        0, // version 3: no pages
    ] {
        varint::write(&mut idx, v);
    }
    // Version 3 tags: context 0 is the previous record's, c is context c - 1.
    let mut prev = 0;
    for r in records {
        varint::write(&mut idx, r.payload.len() as u64);
        let code = if r.context == prev {
            0
        } else {
            u64::from(r.context) + 1
        };
        prev = r.context;
        varint::write(&mut idx, code << 3 | r.level);
    }
    for (p, d) in block_crcs {
        idx.extend_from_slice(&p.to_le_bytes());
        idx.extend_from_slice(&d.to_le_bytes());
    }
    // The key table of archive version 3 (FORMAT.md §5.1): no keyed contexts.
    varint::write(&mut idx, 0);
    idx.extend_from_slice(&crc32c(&idx).to_le_bytes());
    out.extend_from_slice(&idx);
    out.extend_from_slice(&index_off.to_le_bytes());
    out.extend_from_slice(&END_MAGIC);
    out
}

/// A block-mode archive (FORMAT.md §5.7) of one page: `payload`, holding `records` records of
/// context 0 laid out as `layout` (lengths `lens` if 0), `raw_len` bytes as the index says;
/// `count` records in all as the index header says. Checksums valid.
fn craft_page(
    payload: &[u8],
    count: u64,
    records: u64,
    raw_len: u64,
    layout: u64,
    lens: &[u64],
) -> Vec<u8> {
    let header = FileHeader {
        kind: FileKind::Archive,
        codebook: Codebook::default_codebook().id(),
    };
    let mut out = header.to_bytes().to_vec();
    varint::write(&mut out, 0);
    out.extend_from_slice(&crc32c(b"").to_le_bytes());
    // The primer section (FORMAT.md §5.6): none.
    varint::write(&mut out, 0);
    out.extend_from_slice(payload);
    let index_off = out.len() as u64;
    let mut idx = Vec::new();
    for v in [
        count,
        1,
        16,
        16,
        2,
        1 << 20,
        1 << 20,
        payload.len() as u64,
        records,
        raw_len,
        layout,
    ] {
        varint::write(&mut idx, v);
    }
    for &l in lens {
        varint::write(&mut idx, l);
    }
    for v in [1, 0, records] {
        varint::write(&mut idx, v);
    }
    idx.extend_from_slice(&crc32c(payload).to_le_bytes());
    idx.extend_from_slice(&crc32c(b"").to_le_bytes());
    // The key table (FORMAT.md §5.1): no keyed contexts.
    varint::write(&mut idx, 0);
    idx.extend_from_slice(&crc32c(&idx).to_le_bytes());
    out.extend_from_slice(&idx);
    out.extend_from_slice(&index_off.to_le_bytes());
    out.extend_from_slice(&END_MAGIC);
    out
}

/// A `STORED` payload of `bytes`.
fn stored(bytes: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    varint::write(&mut p, (bytes.len() as u64) << 2);
    p.extend_from_slice(bytes);
    p
}

/// Block mode: a page whose index and header claim 1 GiB is refused by the memory limit
/// before anything is allocated; one whose header disagrees with the index, or whose records
/// are not laid out as the index says, is corrupt; an index claiming 2^60 records (or more
/// records than a page has bytes) is refused at open without allocating for them.
#[test]
fn hostile_pages_are_refused() {
    let bytes = craft_page(&claims(1 << 30), 3, 3, 1 << 30, 1 + u64::from(b'\n'), &[]);
    assert!(bytes.len() < 100, "{}", bytes.len());
    let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    let e = quickly(5, || r.get(1).unwrap_err());
    assert_memory_limit(&e, 3 << 30, DEFAULT_MEMORY_LIMIT);
    assert!(e.to_string().contains("record 1, in page 0"), "{e}");
    assert_eq!(quickly(5, || r.walk(|_, rec| assert!(rec.is_err()))), 3);
    // The header says 5 bytes, the index 6.
    let bytes = craft_page(&stored(b"ab\ncd"), 2, 2, 6, 1 + u64::from(b'\n'), &[]);
    let e = ArchiveReader::open(Cursor::new(&bytes))
        .unwrap()
        .get(0)
        .unwrap_err();
    assert!(e.to_string().contains("index says 6"), "{e}");
    // Three separators where the index says two records.
    let bytes = craft_page(&stored(b"a\nb\nc\n"), 2, 2, 6, 1 + u64::from(b'\n'), &[]);
    let e = ArchiveReader::open(Cursor::new(&bytes))
        .unwrap()
        .get(0)
        .unwrap_err();
    assert!(e.to_string().contains("does not hold its 2 records"), "{e}");
    // Well formed, it reads: separated, terminated, and listed lengths.
    type Case<'a> = (u64, &'a [u64], [&'a [u8]; 2]);
    let cases: [Case; 3] = [
        (1 + 10, &[], [b"a", b"bc"]),
        (257 + 10, &[], [b"a\n", b"bc\n"]),
        (0, &[2, 3], [b"a\n", b"bc\n"]),
    ];
    for (layout, lens, want) in cases {
        let bytes = craft_page(&stored(b"a\nbc\n"), 2, 2, 5, layout, lens);
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        assert_eq!(r.get(1).unwrap(), want[1], "layout {layout}");
        assert_eq!(r.get(0).unwrap(), want[0], "layout {layout}");
    }
    for (count, records, raw_len) in [(1u64 << 60, 1u64 << 60, 1u64 << 29), (4, 4, 3)] {
        let bytes = craft_page(&claims(raw_len), count, records, raw_len, 11, &[]);
        let e = quickly(5, || {
            ArchiveReader::open(Cursor::new(&bytes))
                .map(|_| ())
                .unwrap_err()
        });
        assert!(matches!(e.kind(), ErrorKind::Corrupt { .. }), "{e}");
    }
}

/// A chain in one context: a root, then deltas, each claiming `raw_len` bytes.
fn chain_of(count: usize, raw_len: u64) -> Vec<Crafted> {
    (0..count)
        .map(|i| Crafted {
            context: 0,
            level: if i == 0 { 2 } else { 0 },
            payload: claims(raw_len),
        })
        .collect()
}

/// Runs `f`, which must finish well within `secs` seconds.
fn quickly<T>(secs: u64, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    assert!(
        t.elapsed() < Duration::from_secs(secs),
        "took {:?}",
        t.elapsed()
    );
    r
}

fn assert_memory_limit(e: &sigmalang::Error, at_least: u64, limit: u64) {
    match e.kind() {
        ErrorKind::MemoryLimit { needed, limit: l } => {
            assert!(*needed >= at_least, "{e}");
            assert_eq!(*l, limit, "{e}");
        }
        _ => panic!("expected a memory limit error, got: {e}"),
    }
}

/// An archive of under 100 bytes whose one record claims 1 GiB: refused before decoding,
/// by get and by walks, naming what it needs and the limit.
#[test]
fn a_one_gib_record_is_refused_by_the_memory_limit() {
    let bytes = craft(&chain_of(1, 1 << 30), &Fields::default());
    assert!(bytes.len() < 100, "{}", bytes.len());
    let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    let e = quickly(5, || r.get(0).unwrap_err());
    assert_memory_limit(&e, 3 << 30, DEFAULT_MEMORY_LIMIT);
    let text = e.to_string();
    assert!(text.contains("needs 3.0 GiB"), "{text}");
    assert!(text.contains("the limit is 256.0 MiB"), "{text}");
    assert!(text.contains("record 0"), "{text}");
    let mut errors = Vec::new();
    let failed = quickly(5, || {
        r.walk(|n, rec| errors.push((n, rec.unwrap_err().to_string())))
    });
    assert_eq!(failed, 1);
    assert!(errors[0].1.contains("needs"), "{:?}", errors);
    // The parallel walk refuses it alike.
    let failed = quickly(5, || {
        r.walk_parallel(
            || Ok(Cursor::new(&bytes)),
            3,
            |_, rec| {
                assert!(matches!(
                    rec.unwrap_err().kind(),
                    ErrorKind::MemoryLimit { .. }
                ));
                std::ops::ControlFlow::Continue(())
            },
        )
        .unwrap()
    });
    assert_eq!(failed, 1);
}

/// Sixteen records of 128 MiB in one chain (a few hundred bytes of archive): every get and
/// the walk are refused at once.
#[test]
fn a_chain_of_128_mib_records_is_refused() {
    let bytes = craft(&chain_of(16, 128 << 20), &Fields::default());
    let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    for n in [0, 7, 15] {
        let e = quickly(5, || r.get(n).unwrap_err());
        assert_memory_limit(&e, 3 * (128 << 20), DEFAULT_MEMORY_LIMIT);
        if n > 0 {
            assert!(
                e.to_string()
                    .contains(&format!("record {n} depends on record 0")),
                "{e}"
            );
        }
    }
    assert_eq!(quickly(5, || r.walk(|_, rec| assert!(rec.is_err()))), 16);
}

/// Frames totalling more than 2^32 bytes (the match model stores positions as u32; the
/// encoder refuses frames over 1 GiB) through index fields at their extremes (max_frames
/// 2^32-1, window 2^64-1): even with no memory limit, refused as corrupt before anything is
/// decoded, naming the encoder's limit.
#[test]
fn frames_beyond_what_the_encoder_makes_are_refused_before_decoding() {
    let fields = Fields {
        max_frames: u64::from(u32::MAX),
        window: u64::MAX,
        ..Fields::default()
    };
    let bytes = craft(&chain_of(6, 1 << 30), &fields);
    assert!(bytes.len() < 300, "{}", bytes.len());
    let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    assert_eq!(r.group_options().get_window(), u64::MAX);
    // With the default limit: the memory limit.
    let e = quickly(5, || r.get(5).unwrap_err());
    assert_memory_limit(&e, 3 << 30, DEFAULT_MEMORY_LIMIT);
    // With none: the encoder's frame limit, found in the headers, before decoding.
    r.set_memory_limit(u64::MAX);
    let e = quickly(5, || r.get(5).unwrap_err());
    assert!(matches!(e.kind(), ErrorKind::Corrupt { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("bytes of frames"), "{text}");
    assert!(text.contains("at most 1073741824"), "{text}");
    assert!(text.contains("record 5 depends on record 2"), "{text}");
}

/// A block larger than the memory limit is refused before it is read.
#[test]
fn blocks_and_records_over_a_small_limit_are_refused() {
    let records: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("record {i}: {}", "text to code ".repeat(20)).into_bytes())
        .collect();
    let mut w = ArchiveWriter::new(Vec::new(), Codebook::default_codebook(), b"").unwrap();
    for r in &records {
        w.add(r).unwrap();
    }
    let bytes = w.finish().unwrap();
    let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    assert_eq!(r.get(39).unwrap(), records[39]);
    r.set_memory_limit(200);
    let e = r.get(39).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::MemoryLimit { limit: 200, .. }),
        "{e}"
    );
    let mut a = sigmalang::Archive::open(&mut Cursor::new(&bytes)).unwrap();
    a.set_memory_limit(200);
    let mut r = a.reader(Cursor::new(&bytes));
    assert_eq!(r.walk(|_, rec| assert!(rec.is_err())), 40);
}

/// A legitimate archive of 20,000 short records in one chain (keyframe interval 65536): walks
/// and a listing's per-record calls are linear, not quadratic (33 s and 263 s before).
#[test]
fn walks_and_listings_of_a_long_chain_are_linear() {
    let opts = ArchiveOptions::default().group(GroupOptions::default().keyframe_interval(1 << 16));
    let mut w =
        ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts).unwrap();
    let records: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("turn {i}: ok {}", i % 97).into_bytes())
        .collect();
    for r in &records {
        w.add(r).unwrap();
    }
    let bytes = w.finish().unwrap();
    let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    assert_eq!(r.chain_len(19_999), 20_000);
    let failed = quickly(10, || {
        r.walk(|n, rec| assert_eq!(rec.unwrap(), &records[n as usize][..]))
    });
    assert_eq!(failed, 0);
    let failed = quickly(10, || {
        r.walk_parallel(
            || Ok(Cursor::new(&bytes)),
            2,
            |n, rec| {
                assert_eq!(rec.unwrap(), &records[n as usize][..]);
                std::ops::ControlFlow::Continue(())
            },
        )
        .unwrap()
    });
    assert_eq!(failed, 0);
    quickly(10, || {
        for n in 0..20_000u64 {
            assert_eq!(r.chain_len(n), n as usize + 1);
            let frames = r.frames_of(n).unwrap();
            assert_eq!(frames, (n.saturating_sub(2)..n).collect::<Vec<_>>());
            assert_eq!(r.decoded_len(n).unwrap(), records[n as usize].len() as u64);
        }
    });
    assert_eq!(quickly(5, || r.get(19_999).unwrap()), records[19_999]);
}

fn stream_of(input: &[u8], chunk: usize) -> Vec<u8> {
    let options = StreamOptions::default().chunk_size(chunk);
    let mut w =
        StreamWriter::with_options(Vec::new(), Codebook::default_codebook(), options).unwrap();
    w.write_all(input).unwrap();
    w.finish().unwrap()
}

/// Reads `stream` through `Read` on `threads` threads.
fn read_stream(stream: &[u8], threads: usize) -> Result<Vec<u8>, std::io::Error> {
    let options = StreamOptions::default().threads(threads);
    let mut r = StreamReader::with_options(stream, Codebook::default_codebook(), options).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).map(|_| out)
}

/// `cat a.sgm b.sgm | sigma -d`: concatenated streams decode as one, with or without threads;
/// other trailing data is still an error.
#[test]
fn concatenated_streams_decode_as_one() {
    let a: Vec<u8> = (0..3000u32)
        .flat_map(|i| format!("a{i} ").into_bytes())
        .collect();
    let b: Vec<u8> = (0..2000u32)
        .flat_map(|i| format!("b{} ", i * 7).into_bytes())
        .collect();
    let (sa, sb, se) = (
        stream_of(&a, 4000),
        stream_of(&b, 3000),
        stream_of(b"", 100),
    );
    let whole = [a.clone(), b.clone(), a.clone()].concat();
    let cat = [sa.clone(), sb.clone(), se.clone(), sa.clone()].concat();
    for threads in [1, 2, 3] {
        assert_eq!(
            read_stream(&cat, threads).unwrap(),
            whole,
            "threads {threads}"
        );
    }
    assert_eq!(sigmalang::decompress(&cat).unwrap(), whole);
    // Trailing data that is not a stream; a second stream cut short; one damaged.
    for (tail, what) in [
        (b"junk".to_vec(), "trailing data"),
        (vec![0], "trailing data"),
        (sb[..2].to_vec(), "truncated"),
        (sb[..30].to_vec(), "truncated"),
    ] {
        let bad = [sa.clone(), tail].concat();
        for threads in [1, 2] {
            let e = read_stream(&bad, threads).unwrap_err().to_string();
            assert!(e.contains(what), "{what}: {e}");
        }
    }
    let mut bad = [sa.clone(), sb.clone()].concat();
    let at = sa.len() + 40;
    bad[at] ^= 4;
    let e = sigmalang::decompress(&bad).unwrap_err();
    assert!(e.offset().unwrap() >= sa.len() as u64, "{e}");
}

/// A decompression bomb (16 MiB of one byte in a tiny stream) is refused by an output limit
/// before the output grows past it; a stream reader refuses chunks over its memory limit.
#[test]
fn output_and_chunk_limits() {
    let input = vec![b'x'; 16 << 20];
    let packed = sigmalang::compress(&input);
    assert!(packed.len() < 20_000, "{}", packed.len());
    let e = sigmalang::decompress_with_limit(&Codebook::default_codebook(), &packed, 1 << 20)
        .unwrap_err();
    assert_memory_limit(&e, (1 << 20) + 1, 1 << 20);
    assert!(e.to_string().contains("the limit is 1.0 MiB"), "{e}");
    assert_eq!(
        sigmalang::decompress_with_limit(&Codebook::default_codebook(), &packed, 16 << 20).unwrap(),
        input
    );
    for threads in [1, 2] {
        let options = StreamOptions::default().threads(threads);
        let mut r =
            StreamReader::with_options(&packed[..], Codebook::default_codebook(), options).unwrap();
        r.set_memory_limit(4 << 20);
        let mut out = Vec::new();
        let e = r.read_all_into(&mut out).unwrap_err();
        assert_memory_limit(&e, 2 * (8 << 20), 4 << 20);
        assert!(e.to_string().contains("chunk 0"), "{e}");
    }
}

/// An archive whose primer section is `section` (after an empty metadata), then `records` and an
/// index as `craft` lays them out.
fn with_primer_section(section: &[u8], records: &[Crafted]) -> Vec<u8> {
    let plain = craft(records, &Fields::default());
    // The crafted archive's primer section is the byte after the header and empty metadata.
    let at = 20 + 1 + 4;
    assert_eq!(plain[at], 0);
    let mut out = plain[..at].to_vec();
    out.extend_from_slice(section);
    out.extend_from_slice(&plain[at + 1..plain.len() - 12]);
    let index_off =
        u64::from_le_bytes(plain[plain.len() - 12..plain.len() - 4].try_into().unwrap())
            + section.len() as u64
            - 1;
    out.extend_from_slice(&index_off.to_le_bytes());
    out.extend_from_slice(&END_MAGIC);
    out
}

/// Primer sections whose lengths claim more than the format allows or the file holds are
/// refused when the archive is opened, before anything is allocated for them; a primer within
/// the format but over the memory limit is refused before it is read, by every record.
#[test]
fn hostile_primer_lengths_are_refused_before_allocation() {
    let records = chain_of(3, 10);
    for (primer_len, payload_len) in [
        (1u64 << 40, 4u64),
        (u64::MAX >> 1, 4),
        ((16 << 20) + 1, 4),
        (16 << 20, 1 << 40),
        (100, 1000),
        (100, 1),
        (4, 200),
    ] {
        let mut section = Vec::new();
        varint::write(&mut section, primer_len);
        varint::write(&mut section, payload_len);
        section.extend_from_slice(&[0u8; 16]);
        let bytes = with_primer_section(&section, &records);
        let e = quickly(2, || ArchiveReader::open(Cursor::new(&bytes))).err();
        let e = e.unwrap_or_else(|| panic!("primer {primer_len}, payload {payload_len} opened"));
        assert!(matches!(e.kind(), ErrorKind::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("primer"), "{e}");
    }
    // A 16 MiB primer claimed by an 8-byte payload with valid checksums: it opens, and every
    // record is refused by a 1 MiB memory limit before the primer is read.
    let mut payload = Vec::new();
    varint::write(&mut payload, (16u64 << 20) << 2 | 2);
    payload.extend_from_slice(&[0x55; 8]);
    let mut section = Vec::new();
    varint::write(&mut section, 16 << 20);
    varint::write(&mut section, payload.len() as u64);
    section.extend_from_slice(&payload);
    section.extend_from_slice(&crc32c(&payload).to_le_bytes());
    section.extend_from_slice(&0u32.to_le_bytes());
    let bytes = with_primer_section(&section, &records);
    let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    assert_eq!(r.archive().primer_len(), 16 << 20);
    r.set_memory_limit(1 << 20);
    for n in 0..3 {
        let e = quickly(2, || r.get(n)).unwrap_err();
        assert_memory_limit(&e, 16 << 20, 1 << 20);
    }
    let mut failed = 0;
    r.walk(|_, rec| failed += usize::from(rec.is_err()));
    assert_eq!(failed, 3);
    // Under the default limit it is decoded (16 MiB from 8 bytes, in bounded time) and its
    // checksum refuses it: every record fails, naming the primer.
    let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    let e = quickly(60, || r.get(2)).unwrap_err();
    assert!(e.to_string().contains("primer"), "{e}");
}
