//! Archives with a primer (FORMAT.md §5.6): written, read back every way, damaged.

use std::io::Cursor;

use super::{
    ArchiveOptions, ArchiveReader, ArchiveWriter, FLAG_PRIMED_PAGES, FLAG_PRIMER_ADAPTIVE2,
    FLAG_PRIMER_V3,
};
use crate::codebook::Codebook;
use crate::context::GroupOptions;
use crate::error::ErrorKind;

/// Rust-like lines the codebook does not know, in records of a few lines (keyed by `k{i % 4}`).
fn code_records(n: usize) -> Vec<Vec<u8>> {
    let idents = [
        "parse_header",
        "body_offset",
        "raw_len",
        "decode_run",
        "frames",
    ];
    (0..n)
        .map(|i| {
            let mut r = String::new();
            for j in 0..(3 + i % 5) {
                let a = idents[(i * 7 + j) % idents.len()];
                let b = idents[(i + j * 3) % idents.len()];
                r.push_str(&format!(
                    "    let {a}_{j} = self.{b}(&mut pos, {})?; // {i}\n",
                    (i * 31 + j) % 97
                ));
            }
            r.into_bytes()
        })
        .collect()
}

fn build(records: &[Vec<u8>], primer: usize, batch: u32, threads: usize) -> Vec<u8> {
    let opts = ArchiveOptions {
        block_records: 4,
        batch_records: batch,
        threads,
        primer,
        ..ArchiveOptions::default()
    };
    let mut w =
        ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"m", opts).unwrap();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(w.len(), i as u64);
        let key = format!("k{}", i % 4);
        assert_eq!(w.add_in_group(Some(key.as_bytes()), r).unwrap(), i as u64);
    }
    w.finish().unwrap()
}

/// The primer length the archive in `bytes` declares (0: none).
fn primer_len(bytes: &[u8]) -> u64 {
    ArchiveReader::open(Cursor::new(bytes))
        .unwrap()
        .archive()
        .primer_len()
}

fn check_all(bytes: &[u8], records: &[Vec<u8>]) {
    let mut r = ArchiveReader::open(Cursor::new(bytes)).unwrap();
    assert_eq!(r.len(), records.len() as u64);
    for n in (0..records.len() as u64).rev() {
        assert_eq!(r.get(n).unwrap(), records[n as usize], "record {n}");
    }
    let mut fresh = ArchiveReader::open(Cursor::new(bytes)).unwrap();
    assert_eq!(
        fresh.walk(|n, rec| assert_eq!(rec.unwrap(), &records[n as usize][..])),
        0
    );
    let mut seen = 0;
    let failed = fresh
        .walk_parallel(
            || Ok(Cursor::new(bytes)),
            2,
            |n, rec| {
                assert_eq!(rec.unwrap(), &records[n as usize][..]);
                seen += 1;
                std::ops::ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!((failed, seen), (0, records.len()));
}

#[test]
fn primed_archives_roundtrip_and_do_not_depend_on_threads() {
    let records = code_records(120);
    let plain = build(&records, 0, 1, 1);
    let primed = build(&records, 3000, 1, 1);
    assert_eq!(primed[4], 3, "archive version");
    assert!(
        primed.len() * 10 < plain.len() * 9,
        "{} vs {}",
        primed.len(),
        plain.len()
    );
    check_all(&primed, &records);
    check_all(&plain, &records);
    let mut r = ArchiveReader::open(Cursor::new(&primed)).unwrap();
    assert!(r.archive().primer_len() >= 3000);
    assert_eq!(primer_len(&plain), 0);
    // Flag bit 4: the primer's state is ADAPTIVE2.
    assert_eq!(
        u16::from_le_bytes([primed[6], primed[7]]) & (FLAG_PRIMER_ADAPTIVE2 | FLAG_PRIMED_PAGES),
        FLAG_PRIMER_ADAPTIVE2
    );
    assert_eq!(
        u16::from_le_bytes([plain[6], plain[7]]) & (FLAG_PRIMER_ADAPTIVE2 | FLAG_PRIMED_PAGES),
        0
    );
    // Unfamiliar text: the records after the primer are ADAPTIVE2.
    let adaptive = (0..records.len() as u64)
        .filter(|&n| r.payload_mode(n).unwrap() == Some(crate::record::Mode::Adaptive2 as u8))
        .count();
    assert!(adaptive > records.len() / 2, "{adaptive} ADAPTIVE2 records");
    for batch in [16, 1000] {
        let one = build(&records, 3000, batch, 1);
        assert_eq!(one, build(&records, 3000, batch, 2), "batch {batch}");
        assert_eq!(one, build(&records, 3000, batch, 3), "batch {batch}");
        check_all(&one, &records);
    }
}

#[test]
fn short_archives_and_flushes_before_the_primer_is_full() {
    for n in [0, 1, 3] {
        let records = code_records(n);
        let bytes = build(&records, 1 << 20, 1, 1);
        check_all(&bytes, &records);
    }
    // Empty records only: no primer.
    let empty = vec![Vec::new(); 5];
    let bytes = build(&empty, 100, 1, 1);
    check_all(&bytes, &empty);
    assert_eq!(primer_len(&bytes), 0);
    // A flush makes the primer of what was added so far.
    let records = code_records(30);
    let opts = ArchiveOptions::default().primer(1 << 20).block_records(4);
    let mut w =
        ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts).unwrap();
    for r in &records[..10] {
        w.add(r).unwrap();
    }
    assert_eq!(w.bytes_out(), 0, "records wait for the primer");
    w.flush().unwrap();
    assert!(w.bytes_out() > 0);
    for r in &records[10..] {
        w.add(r).unwrap();
    }
    let bytes = w.finish().unwrap();
    check_all(&bytes, &records);
}

#[test]
fn damage_to_the_primer_is_an_error_never_wrong_output() {
    let records = code_records(16);
    let bytes = build(&records, 600, 1, 1);
    let r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    let records_start = r.info(0).unwrap().offset as usize;
    // The primer section: after the header (20) and the metadata (varint, "m", crc32c).
    for i in 26..records_start {
        for bit in [0, 3, 7] {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let Ok(mut r) = ArchiveReader::open(Cursor::new(&b)) else {
                continue;
            };
            let mut wrong = 0;
            r.walk(|n, rec| {
                if let Ok(rec) = rec {
                    if rec != &records[n as usize][..] {
                        wrong += 1;
                    }
                }
            });
            assert_eq!(wrong, 0, "flip of bit {bit} of byte {i}");
            if i >= records_start - 8 {
                // A checksum byte: every record fails, naming the primer.
                let e = r.get(0).unwrap_err();
                assert!(e.to_string().contains("primer"), "{e}");
            }
        }
    }
}

#[test]
fn the_primer_counts_against_the_memory_limit() {
    let records = code_records(40);
    let bytes = build(&records, 1500, 1, 1);
    let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    r.set_memory_limit(1 << 20);
    let e = r.get(5).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::MemoryLimit { .. }), "{e}");
    r.set_memory_limit(64 << 20);
    // The archive handle is shared: a reader made of it decodes the primer once for all.
    let archive = r.archive().clone();
    let mut a = archive.reader(Cursor::new(&bytes[..]));
    let mut b = archive.reader(Cursor::new(&bytes[..]));
    assert_eq!(a.get(7).unwrap(), records[7]);
    assert_eq!(b.get(8).unwrap(), records[8]);
    assert!(archive.primer.get().is_some_and(|p| p.is_ok()));
}

#[test]
fn group_options_and_the_bank_still_work_after_a_primer() {
    let records = code_records(60);
    let opts = ArchiveOptions::default()
        .primer(2000)
        .group(GroupOptions::none())
        .bank(0);
    let mut w =
        ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts).unwrap();
    for r in &records {
        w.add(r).unwrap();
    }
    let bytes = w.finish().unwrap();
    check_all(&bytes, &records);
}

fn build_paged(
    records: &[Vec<u8>],
    primer: usize,
    page: u64,
    batch: u32,
    threads: usize,
) -> Vec<u8> {
    let opts = ArchiveOptions::default()
        .primer(primer)
        .page_bytes(page)
        .batch_records(batch)
        .threads(threads);
    let mut w =
        ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"m", opts).unwrap();
    for (i, r) in records.iter().enumerate() {
        let key = format!("k{}", i % 4);
        assert_eq!(w.add_in_group(Some(key.as_bytes()), r).unwrap(), i as u64);
    }
    w.finish().unwrap()
}

#[test]
fn pages_after_a_primer_roundtrip_gain_and_do_not_depend_on_threads() {
    let records = code_records(300);
    for page in [1u64, 700, 4096] {
        let plain = build_paged(&records, 0, page, 1, 1);
        let primed = build_paged(&records, 6000, page, 1, 1);
        // Flag bit 3: the pages are coded after the primer; bits 4 and 7: its state is
        // ADAPTIVE2, variant 3.
        assert_eq!(
            u16::from_le_bytes([primed[6], primed[7]]),
            FLAG_PRIMED_PAGES | FLAG_PRIMER_ADAPTIVE2 | FLAG_PRIMER_V3,
            "pages of {page}"
        );
        assert_eq!(u16::from_le_bytes([plain[6], plain[7]]), 0);
        assert!(
            primed.len() * 20 < plain.len() * 19,
            "pages of {page}: {} vs {}",
            primed.len(),
            plain.len()
        );
        check_all(&primed, &records);
        let mut r = ArchiveReader::open(Cursor::new(&primed)).unwrap();
        assert!(r.archive().primer_len() >= 6000);
        assert_eq!(r.page_bytes(), page);
        assert_eq!(r.get(299).unwrap(), records[299]);
        for (batch, threads) in [(64, 1), (64, 2), (1000, 3)] {
            let other = build_paged(&records, 6000, page, batch, threads);
            assert_eq!(
                primed, other,
                "pages of {page}, batch {batch}, {threads} threads"
            );
        }
    }
    // Pages that hold many records gain less from a primer; it is still chosen by a test.
    let big = build_paged(&records, 6000, 1 << 20, 1, 1);
    check_all(&big, &records);
}

#[test]
fn primed_pages_are_refused_without_their_flag() {
    let records = code_records(80);
    let primed = build_paged(&records, 3000, 2000, 1, 1);
    assert_eq!(primed[6], 0x98);
    // The flag cleared (pages would be decoded without the primer), or set on an archive
    // whose pages are not primed, or on one that is not in block mode: refused at open.
    let plain_pages = build_paged(&records, 0, 2000, 1, 1);
    let primed_records = build(&records, 3000, 1, 1);
    for bad in [
        reflag(&primed, 0x90),
        reflag(&plain_pages, 8),
        reflag(&primed_records, u16::from(primed_records[6] | 0x08)),
    ] {
        let Err(e) = ArchiveReader::open(Cursor::new(&bad)) else {
            panic!("a wrong flag was accepted");
        };
        assert!(matches!(e.kind(), ErrorKind::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("flag bit 3"), "{e}");
    }
    // Damage to the primer of a paged archive: errors naming it, never wrong records.
    let r = ArchiveReader::open(Cursor::new(&primed)).unwrap();
    let records_start = r.info(0).unwrap().offset as usize;
    for i in (records_start - 8)..records_start {
        let mut b = primed.clone();
        b[i] ^= 0x10;
        let mut r = ArchiveReader::open(Cursor::new(&b)).unwrap();
        let e = r.get(3).unwrap_err();
        assert!(e.to_string().contains("primer"), "{e}");
        assert_eq!(r.walk(|_, rec| assert!(rec.is_err())), records.len() as u64);
    }
    // The primer's memory counts when a page is read.
    let mut r = ArchiveReader::open(Cursor::new(&primed)).unwrap();
    r.set_memory_limit(1 << 20);
    let e = r.get(5).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::MemoryLimit { .. }), "{e}");
}

/// Sets header flags `flags` on `bytes` (the header checksum made valid again).
fn reflag(bytes: &[u8], flags: u16) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[6..8].copy_from_slice(&flags.to_le_bytes());
    let crc = crate::checksum::crc32c(&b[..16]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn the_adaptive2_primer_flag_must_match_the_archive() {
    let records = code_records(80);
    let primed = build(&records, 3000, 1, 1);
    let flags = u16::from_le_bytes([primed[6], primed[7]]);
    let v3 = FLAG_PRIMER_ADAPTIVE2 | FLAG_PRIMER_V3;
    assert_eq!(flags & v3, v3);
    // Set on an archive without a primer: refused at open, by name.
    let plain = build(&records, 0, 1, 1);
    let plain_flags = u16::from_le_bytes([plain[6], plain[7]]);
    let bad = reflag(&plain, plain_flags | FLAG_PRIMER_ADAPTIVE2);
    let Err(e) = ArchiveReader::open(Cursor::new(&bad)) else {
        panic!("bit 4 without a primer was accepted");
    };
    assert!(matches!(e.kind(), ErrorKind::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("flag bit 4"), "{e}");
    // Bits 4 and 7 on an archive without a primer: refused by bit 4. Bit 7 without bit 4 on one
    // with a primer: refused by name.
    let bad = reflag(&plain, plain_flags | v3);
    let e = ArchiveReader::open(Cursor::new(&bad))
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("flag bit 4"), "{e}");
    let bad = reflag(&primed, flags & !FLAG_PRIMER_ADAPTIVE2);
    let e = ArchiveReader::open(Cursor::new(&bad))
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("flag bit 7"), "{e}");
    // Bit 7 cleared (as if the primer were V2): the primer decodes to other bytes, which its
    // checksum catches: every record an error, none wrong.
    let v2 = reflag(&primed, flags & !FLAG_PRIMER_V3);
    let mut r = ArchiveReader::open(Cursor::new(v2)).unwrap();
    let e = r.get(3).unwrap_err();
    assert!(e.to_string().contains("primer"), "{e}");
    assert_eq!(r.walk(|_, rec| assert!(rec.is_err())), records.len() as u64);
    // Both cleared (as if an old writer's): the primer is then read as ADAPTIVE and refused by
    // name, every record an error, none wrong.
    let old = reflag(&primed, flags & !v3);
    let mut r = ArchiveReader::open(Cursor::new(old)).unwrap();
    let e = r.get(3).unwrap_err();
    assert!(e.to_string().contains("primer"), "{e}");
    assert!(e.to_string().contains("not ADAPTIVE2"), "{e}");
    assert_eq!(r.walk(|_, rec| assert!(rec.is_err())), records.len() as u64);
    // The paged archive's pages likewise.
    let paged = build_paged(&records, 3000, 2000, 1, 1);
    let paged_flags = u16::from_le_bytes([paged[6], paged[7]]);
    let old = reflag(&paged, paged_flags & !v3);
    let mut r = ArchiveReader::open(Cursor::new(old)).unwrap();
    assert!(r.get(3).is_err());
}

/// Records of two topics, sorted: Rust-like code, then JSON documents the codebook does not
/// know either (as files sorted by crate or by service are).
fn two_topics(n: usize) -> Vec<Vec<u8>> {
    let mut records = code_records(n / 2);
    records.extend((0..n - n / 2).map(|i| {
        format!(
            "{{\"Service\": \"svc{}\", \"Operation\": \"DescribeWidgetQuota{}\", \"MaxItems\": {}, \
             \"Paginator\": {{\"InputToken\": \"NextMarker{}\", \"ResultKey\": \"Widgets\"}}}}",
            i % 9,
            i % 13,
            i * 17 % 1000,
            i % 5
        )
        .into_bytes()
    }));
    records
}

/// A writer whose primer is made of `sample` (indices into `records`), with `records` added
/// in order keyed as [`build`] keys them; `opts` as given.
fn build_sampled(records: &[Vec<u8>], sample: &[usize], opts: ArchiveOptions) -> Vec<u8> {
    let keys: Vec<String> = (0..records.len()).map(|i| format!("k{}", i % 4)).collect();
    let mut w = ArchiveWriter::with_primer_sample(
        Vec::new(),
        Codebook::default_codebook(),
        b"m",
        opts,
        sample
            .iter()
            .map(|&i| (Some(keys[i].as_bytes()), &records[i][..])),
    )
    .unwrap();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            w.add_in_group(Some(keys[i].as_bytes()), r).unwrap(),
            i as u64
        );
    }
    w.finish().unwrap()
}

/// Runs of `run` consecutive records at `runs` evenly spaced places of `n` records.
fn spread(n: usize, runs: usize, run: usize) -> Vec<usize> {
    (0..runs)
        .flat_map(|k| (k * n / runs..(k * n / runs + run).min(n)).collect::<Vec<_>>())
        .collect()
}

#[test]
fn a_sampled_primer_roundtrips_and_beats_the_first_records() {
    let records = two_topics(400);
    let sample = spread(records.len(), 8, 5);
    let sample_bytes: usize = sample.iter().map(|&i| records[i].len() + 1).sum();
    let opts = ArchiveOptions::default()
        .block_records(4)
        .primer(sample_bytes);
    let sampled = build_sampled(&records, &sample, opts);
    check_all(&sampled, &records);
    // The primer is the sample, joined by newlines, in the order given; the format is the
    // same as a primer of the first records (the same flags).
    let mut r = ArchiveReader::open(Cursor::new(&sampled)).unwrap();
    let mut joined = Vec::new();
    for &i in &sample {
        joined.extend_from_slice(&records[i]);
        joined.push(b'\n');
    }
    assert_eq!(r.primer().unwrap().unwrap().bytes(), &joined[..]);
    let prefix = build(&records, sample_bytes, 1, 1);
    assert_eq!(sampled[..8], prefix[..8], "magic, version and flags");
    // Both topics are in the primer: the archive is smaller than with the first records.
    assert!(
        sampled.len() < prefix.len(),
        "{} vs {}",
        sampled.len(),
        prefix.len()
    );
    // A record of the sample codes as a match of the primer: a few bytes.
    for &i in &sample[1..] {
        let info = r.info(i as u64).unwrap();
        assert!(
            info.payload_len * 4 < records[i].len() as u64,
            "record {i}: {} bytes for {}",
            info.payload_len,
            records[i].len()
        );
    }
    // Batches and threads do not change the archive; a block-mode trial reads it back too.
    let batched = build_sampled(&records, &sample, opts.batch_records(16).threads(1));
    check_all(&batched, &records);
    for threads in [2, 3] {
        let opts = opts.batch_records(16).threads(threads);
        assert_eq!(build_sampled(&records, &sample, opts), batched, "{threads}");
    }
    let auto = opts.auto_pages(2048).batch_records(16);
    let one = build_sampled(&records, &sample, auto.threads(1));
    assert_eq!(one, build_sampled(&records, &sample, auto.threads(2)));
    check_all(&one, &records);
}

#[test]
fn sampled_primers_of_lines_and_edge_cases() {
    // Whole JSON lines: the primer holds their JSON-lines forms, and they read back exactly.
    let records: Vec<Vec<u8>> = two_topics(200)
        .into_iter()
        .map(|r| {
            let mut line = if r.starts_with(b"{") {
                r
            } else {
                format!("{{\"text\": {:?}}}", String::from_utf8(r).unwrap()).into_bytes()
            };
            line.push(b'\n');
            line
        })
        .collect();
    let sample = spread(records.len(), 4, 6);
    let lines = ArchiveOptions::default().json_lines(true).primer(4000);
    let bytes = build_sampled(&records, &sample, lines);
    check_all(&bytes, &records);
    assert!(primer_len(&bytes) > 0);
    // Without a primer the sample is ignored: the archive of `with_options`.
    let off = ArchiveOptions::default().block_records(4);
    assert_eq!(
        build_sampled(&records, &sample, off),
        build(&records, 0, 1, 1)
    );
    // An empty sample, or one of empty records: no primer. A sample larger than the primer
    // is cut to it; one of records not in the archive is only a primer.
    for sample in [vec![], vec![0usize; 0]] {
        let bytes = build_sampled(&records, &sample, lines);
        check_all(&bytes, &records);
    }
    let empty: Vec<Vec<u8>> = vec![Vec::new(); 3];
    let bytes = build_sampled(&empty, &[0, 1, 2], lines);
    check_all(&bytes, &empty);
    assert_eq!(primer_len(&bytes), 0);
    let bytes = build_sampled(&records, &spread(records.len(), 4, 50), lines.primer(1000));
    let r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
    assert!(r.archive().primer_len() <= 1000);
    check_all(&bytes, &records);
    let others = code_records(40);
    let opts = ArchiveOptions::default().primer(1 << 20);
    let mut w = ArchiveWriter::with_primer_sample(
        Vec::new(),
        Codebook::default_codebook(),
        b"",
        opts,
        others.iter().map(|r| (None, &r[..])),
    )
    .unwrap();
    assert!(w.bytes_out() > 0, "the head is written at once");
    for r in &records[..5] {
        w.add(r).unwrap();
    }
    check_all(&w.finish().unwrap(), &records[..5]);
}
