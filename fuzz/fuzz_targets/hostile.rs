#![no_main]
//! Crafted archives with valid checksums (the target lays out the header, payloads, index,
//! block checksums and footer from the input, so every input gets past the checksums): records
//! claiming up to 1 GiB, index fields at their extremes (max_frames up to 2^32-1, window up to
//! 2^64-1), chains of up to 65,536 records from a short input. Read with a 1 MiB memory limit,
//! they never panic, every record that needs more than the limit is refused, the parallel walk
//! reports what the sequential walk reports, and a listing's calls agree with the chain. In
//! block mode (when the first byte is a multiple of 4: archive version 3, FORMAT.md §5.7) the
//! records are pages of up to 16 records, with any layout and listed lengths, so that
//! pages claiming more than the limit, lengths or separators that disagree with the page, and
//! records beyond the page's bytes are all met. Otherwise the header allows copies (FORMAT.md
//! §5.8) and a record of level 3 is one, naming any record back (itself, one before the first,
//! another copy: all refused at open) with no payload.

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use sigmalang::archive::END_MAGIC;
use sigmalang::container::{FileHeader, FileKind};
use sigmalang::internals::checksum::crc32c;
use sigmalang::internals::varint;
use sigmalang::primer::Variant;
use sigmalang::{ArchiveReader, Codebook, ErrorKind, Primer};

const LIMIT: u64 = 1 << 20;
/// Decoding time grows with the lengths claimed under the limit (not with those refused):
/// inputs claiming more than this in all are skipped.
const MAX_DECODED: u64 = 2 << 20;

/// Takes the next byte of the input (0 once it is used up).
fn next(data: &mut &[u8]) -> u8 {
    match data.split_first() {
        Some((&b, rest)) => {
            *data = rest;
            b
        }
        None => 0,
    }
}

fn next16(data: &mut &[u8]) -> u64 {
    u64::from(next(data)) << 8 | u64::from(next(data))
}

/// Block mode: pages laid out from the input (payload as below, records, layout, lengths,
/// context runs), read as the other archives are.
fn paged(mut data: &[u8]) {
    // Pages: (payload, records, decoded length the index claims, layout, lengths, contexts).
    let mut pages: Vec<(Vec<u8>, u64, u64, u64, Vec<u64>, Vec<(u64, u64)>)> = Vec::new();
    while !data.is_empty() && pages.len() < 1 << 12 {
        let shape = next(&mut data);
        let records = 1 + u64::from(shape % 16);
        let (payload, claimed) = match next(&mut data) {
            k @ 0..=30 => {
                let claimed = (1u64 << k) + u64::from(next(&mut data));
                let mut p = Vec::new();
                varint::write(&mut p, claimed << 2 | 1 + u64::from(shape >> 7));
                for _ in 0..usize::from(next(&mut data) % 16) + 1 {
                    p.push(next(&mut data));
                }
                (p, claimed)
            }
            n => {
                let len = usize::from(n % 64);
                let mut p = Vec::new();
                varint::write(&mut p, (len as u64) << 2);
                for _ in 0..len {
                    p.push(next(&mut data));
                }
                (p, len as u64)
            }
        };
        // The index may claim another length than the payload's header.
        let raw = if shape & 0x40 != 0 { claimed + u64::from(next(&mut data) % 3) } else { claimed };
        let layout = match next(&mut data) % 4 {
            0 => 0,
            1 => 1 + 10,
            2 => 257 + 10,
            _ => next16(&mut data) % 520,
        };
        let lens: Vec<u64> = if layout == 0 {
            let mut left = raw;
            (0..records)
                .map(|i| {
                    let l = if i + 1 == records { left } else { u64::from(next(&mut data)).min(left) };
                    left -= l;
                    l
                })
                .collect()
        } else {
            Vec::new()
        };
        let split = 1 + u64::from(next(&mut data)) % records;
        let mut runs = vec![(u64::from(shape & 3), split)];
        if split < records {
            runs.push((u64::from(next(&mut data) & 7), records - split));
        }
        pages.push((payload, records, raw, layout, lens, runs));
    }
    let decoded: u64 = pages.iter().map(|p| p.2).filter(|&c| 3 * c <= LIMIT).sum();
    if decoded > MAX_DECODED {
        return;
    }
    let header = FileHeader {
        kind: FileKind::Archive,
        codebook: Codebook::default_codebook().id(),
    };
    let mut bytes = header.to_bytes().to_vec();
    varint::write(&mut bytes, 0);
    bytes.extend_from_slice(&crc32c(b"").to_le_bytes());
    // The primer section (FORMAT.md §5.6): none.
    varint::write(&mut bytes, 0);
    for p in &pages {
        bytes.extend_from_slice(&p.0);
    }
    let index_off = bytes.len() as u64;
    let count: u64 = pages.iter().map(|p| p.1).sum();
    let mut idx = Vec::new();
    for v in [count, 1, 16, 16, 2, 1 << 20, 1 << 20] {
        varint::write(&mut idx, v);
    }
    for p in &pages {
        for v in [p.0.len() as u64, p.1, p.2, p.3] {
            varint::write(&mut idx, v);
        }
        for &l in &p.4 {
            varint::write(&mut idx, l);
        }
        varint::write(&mut idx, p.5.len() as u64);
        for &(c, n) in &p.5 {
            varint::write(&mut idx, c);
            varint::write(&mut idx, n);
        }
    }
    for p in &pages {
        idx.extend_from_slice(&crc32c(&p.0).to_le_bytes());
        idx.extend_from_slice(&0u32.to_le_bytes());
    }
    // The key table (FORMAT.md §5.1): no keyed contexts.
    varint::write(&mut idx, 0);
    idx.extend_from_slice(&crc32c(&idx).to_le_bytes());
    bytes.extend_from_slice(&idx);
    bytes.extend_from_slice(&index_off.to_le_bytes());
    bytes.extend_from_slice(&END_MAGIC);
    let Ok(mut reader) = ArchiveReader::open(Cursor::new(&bytes[..])) else {
        return;
    };
    reader.set_memory_limit(LIMIT);
    assert_eq!(reader.len(), count);
    let mut page_of = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        page_of.extend(std::iter::repeat(i).take(p.1 as usize));
    }
    let mut one = Vec::new();
    let failed = reader.walk(|n, r| {
        let page = &pages[page_of[n as usize]];
        if 3 * page.2 > LIMIT {
            assert!(r.is_err(), "record {n}'s page needs more than the limit yet decoded");
        }
        if let Err(e) = &r {
            if let ErrorKind::MemoryLimit { needed, limit } = e.kind() {
                assert!(needed > limit, "{e}");
            }
        }
        one.push((n, r.map(<[u8]>::to_vec).map_err(|e| e.to_string())));
    });
    let mut two = Vec::new();
    let walked = reader.walk_parallel(
        || Ok(Cursor::new(&bytes[..])),
        2,
        |n, r| {
            two.push((n, r.map(<[u8]>::to_vec).map_err(|e| e.to_string())));
            std::ops::ControlFlow::Continue(())
        },
    );
    assert_eq!(walked.ok(), Some(failed));
    assert!(one == two, "the parallel walk differs");
    for n in 0..reader.len() {
        assert_eq!(reader.chain(n), vec![n]);
        assert_eq!(reader.page_of(n), Some(page_of[n as usize] as u64));
        // A page that fails is decoded again by each of its records: a sample of them.
        if n % 7 == 0 || n + 1 == reader.len() {
            let _ = reader.decoded_len(n);
            if let Ok(got) = reader.get(n) {
                assert!(got.len() as u64 <= pages[page_of[n as usize]].2);
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    if input.first().is_some_and(|b| b % 4 == 0) {
        return paged(&input[1..]);
    }
    let mut data = input;
    let block_records = 1 + u64::from(next(&mut data) % 32);
    let keyframe_interval = 1 + next16(&mut data);
    let keyframes_per_root = 1 + next16(&mut data);
    let max_frames = [0, 1, 2, 3, u64::from(u32::MAX), u64::from(next(&mut data))]
        [usize::from(next(&mut data) % 6)];
    let window = [0, 1, 4096, 1 << 20, 1 << 30, u64::MAX][usize::from(next(&mut data) % 6)];
    // A primer section (FORMAT.md §5.6) half the time: claiming up to 32 KiB, its payload
    // ADAPTIVE (a short body) or STORED, the payload checksum valid, the primer's usually not;
    // with bit 5 of its shape an ADAPTIVE2 primer (header flag bit 4), and with bit 6 too one of
    // variant 3 (flag bit 7).
    let primer_shape = next(&mut data);
    let v2 = primer_shape & 0x21 == 0x21;
    let v3 = v2 && primer_shape & 0x40 != 0;
    let primer = (primer_shape & 1 == 1).then(|| {
        let claimed = (1u64 << (primer_shape >> 1) % 16) + u64::from(next(&mut data));
        let mut p = Vec::new();
        if primer_shape & 0x80 != 0 && claimed <= 64 {
            varint::write(&mut p, claimed << 2);
            for _ in 0..claimed {
                p.push(next(&mut data));
            }
        } else {
            varint::write(&mut p, claimed << 2 | if v2 { 3 } else { 2 });
            for _ in 0..usize::from(next(&mut data) % 16) + 1 {
                p.push(next(&mut data));
            }
        }
        let crc = [
            next(&mut data),
            next(&mut data),
            next(&mut data),
            next(&mut data),
        ];
        (claimed, p, crc)
    });
    // Record templates, each repeated: (context, level, payload, claimed length, and for a
    // copy how far back its source is).
    let mut records: Vec<(u32, u64, Vec<u8>, u64, u64)> = Vec::new();
    while !data.is_empty() && records.len() < 1 << 16 {
        let shape = next(&mut data);
        let context = u32::from(shape & 3);
        let level = u64::from((shape >> 2) % 4);
        let repeat = if shape & 0x80 != 0 {
            1 + next16(&mut data)
        } else {
            1
        };
        let back = if level == 3 {
            u64::from(next(&mut data))
        } else {
            0
        };
        let (payload, claimed) = match next(&mut data) {
            // A copy: no payload.
            _ if level == 3 => (Vec::new(), 0),
            k @ 0..=30 => {
                // MODELED (or ADAPTIVE, odd lengths), claiming 2^k bytes (+ a little), with a
                // short body.
                let claimed = (1u64 << k) + u64::from(next(&mut data));
                let mut p = Vec::new();
                varint::write(&mut p, claimed << 2 | 1 + (claimed & 1));
                let body = usize::from(next(&mut data) % 16) + 1;
                for _ in 0..body {
                    p.push(next(&mut data));
                }
                (p, claimed)
            }
            n => {
                // STORED, really holding its bytes.
                let len = usize::from(n % 64);
                let mut p = Vec::new();
                varint::write(&mut p, (len as u64) << 2);
                for _ in 0..len {
                    p.push(next(&mut data));
                }
                (p, len as u64)
            }
        };
        for _ in 0..repeat.min((1 << 16) - records.len() as u64) {
            records.push((context, level, payload.clone(), claimed, back));
        }
    }
    let decoded: u64 = records
        .iter()
        .map(|r| r.3)
        .filter(|&c| 3 * c <= LIMIT)
        .sum();
    if decoded > MAX_DECODED {
        return;
    }
    // The archive, laid out as the writer lays one out.
    let header = FileHeader {
        kind: FileKind::Archive,
        codebook: Codebook::default_codebook().id(),
    };
    let mut bytes = header
        .to_bytes_with_flags(
            sigmalang::archive::FLAG_COPIES
                | if v2 {
                    sigmalang::archive::FLAG_PRIMER_ADAPTIVE2
                } else {
                    0
                }
                | if v3 {
                    sigmalang::archive::FLAG_PRIMER_V3
                } else {
                    0
                },
        )
        .to_vec();
    varint::write(&mut bytes, 0);
    bytes.extend_from_slice(&crc32c(b"").to_le_bytes());
    let mut limit = LIMIT;
    match &primer {
        None => varint::write(&mut bytes, 0),
        Some((claimed, payload, crc)) => {
            varint::write(&mut bytes, *claimed);
            varint::write(&mut bytes, payload.len() as u64);
            bytes.extend_from_slice(payload);
            bytes.extend_from_slice(&crc32c(payload).to_le_bytes());
            bytes.extend_from_slice(crc);
            // The primer's memory comes on top of the records': what they may use is unchanged.
            let variant = match (v2, v3) {
                (_, true) => Variant::V3,
                (true, _) => Variant::V2,
                _ => Variant::V1,
            };
            limit += 2 * Primer::memory_for(*claimed, variant) + payload.len() as u64;
        }
    }
    let mut block_crcs = Vec::new();
    for block in records.chunks(block_records as usize) {
        let start = bytes.len();
        for r in block {
            bytes.extend_from_slice(&r.2);
        }
        block_crcs.push(crc32c(&bytes[start..]));
    }
    let index_off = bytes.len() as u64;
    let mut idx = Vec::new();
    for v in [
        records.len() as u64,
        block_records,
        keyframe_interval,
        keyframes_per_root,
        max_frames,
        window,
        0, // version 3: no pages
    ] {
        varint::write(&mut idx, v);
    }
    // Version 3 tags: context 0 is the previous record's, c is context c - 1.
    let mut prev = 0;
    for r in &records {
        varint::write(&mut idx, r.2.len() as u64);
        let code = if r.0 == prev { 0 } else { u64::from(r.0) + 1 };
        prev = r.0;
        varint::write(&mut idx, code << 3 | r.1);
        if r.1 == 3 {
            varint::write(&mut idx, r.4);
        }
    }
    for c in block_crcs {
        idx.extend_from_slice(&c.to_le_bytes());
        idx.extend_from_slice(&0u32.to_le_bytes());
    }
    // The key table of archive version 3 (FORMAT.md §5.1): no keyed contexts.
    varint::write(&mut idx, 0);
    idx.extend_from_slice(&crc32c(&idx).to_le_bytes());
    bytes.extend_from_slice(&idx);
    bytes.extend_from_slice(&index_off.to_le_bytes());
    bytes.extend_from_slice(&END_MAGIC);

    let Ok(mut reader) = ArchiveReader::open(Cursor::new(&bytes[..])) else {
        return;
    };
    reader.set_memory_limit(limit);
    let mut one = Vec::new();
    let failed = reader.walk(|n, r| {
        // A copy needs what its source needs (the index was read: the source is valid).
        let r_n = &records[n as usize];
        let source = if r_n.1 == 3 { n - r_n.4 } else { n };
        if 3 * records[source as usize].3 > LIMIT {
            assert!(
                r.is_err(),
                "record {n} needs more than the limit yet decoded"
            );
        }
        if let Err(e) = &r {
            if let ErrorKind::MemoryLimit { needed, limit } = e.kind() {
                assert!(needed > limit, "{e}");
            }
        }
        one.push((n, r.map(<[u8]>::to_vec).map_err(|e| e.to_string())));
    });
    let mut two = Vec::new();
    let walked = reader.walk_parallel(
        || Ok(Cursor::new(&bytes[..])),
        2,
        |n, r| {
            two.push((n, r.map(<[u8]>::to_vec).map_err(|e| e.to_string())));
            std::ops::ControlFlow::Continue(())
        },
    );
    assert_eq!(walked.ok(), Some(failed));
    assert!(one == two, "the parallel walk differs");
    for n in 0..reader.len() {
        // chain() is linear in the chain: checked on a sample, so the loop stays linear.
        if n % 257 == 0 || n + 1 == reader.len() {
            assert_eq!(reader.chain_len(n), reader.chain(n).len());
        }
        let _ = reader.frames_of(n);
        let _ = reader.decoded_len(n);
    }
    if !reader.is_empty() {
        let last = reader.len() - 1;
        if let Ok(got) = reader.get(last) {
            // A record that decodes by itself decodes as the walk decoded it (or the walk
            // met the block's content checksum, which this target does not fill in).
            assert!(got.len() as u64 <= LIMIT);
        }
    }
});
