#![no_main]
//! Archives: arbitrary bytes opened as an archive never panic the reader (open, walk, get), a
//! walk on two threads reports what the sequential walk reports, and
//! an archive written from the input's records (with context keys, frames, the Σ-bank and
//! batches on two threads, in the JSON-lines form when the input's second byte is odd, and a
//! primer for two inputs in three, repeated records as copies, a coded index for four in five;
//! or in block mode, in pages, after the primer if it pays; or in block mode if a trial on the
//! first records says so) reads back exactly, with every record's key from the index.

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter, Codebook, GroupOptions};

/// The readers' memory limit here: records claiming more than about a third of it are refused
/// before decoding, so they are read (and refused) rather than skipped.
const LIMIT: u64 = 16 << 20;
/// Decoding time grows with the lengths claimed under the limit (as for any compressor): inputs
/// whose records claim more than this in all are skipped, so the fuzzer explores structure, not
/// time-outs.
const MAX_DECODED: u64 = 8 << 20;

fn read_as_archive(data: &[u8]) {
    let Ok(mut reader) = ArchiveReader::open(Cursor::new(data)) else {
        return;
    };
    reader.set_memory_limit(LIMIT);
    // A page may claim as many records as it has bytes: looping over them all is the time a
    // walk takes, which the byte limit below bounds only once they are decoded.
    if reader.len() > MAX_DECODED {
        return;
    }
    let mut decoded = 0u64;
    // A coded index (header flag bit 6) holds each record's decoded length; else the payload's
    // header does.
    let coded = data.get(6).is_some_and(|f| f & 0x40 != 0);
    for n in 0..reader.len() {
        if coded {
            match reader.decoded_len(n) {
                Ok(l) if 3 * l <= LIMIT => decoded += l,
                _ => {}
            }
            continue;
        }
        let Some(info) = reader.info(n) else { return };
        let start = info.offset as usize;
        let Some(payload) = data.get(start..start + info.payload_len as usize) else {
            return;
        };
        let mut pos = 0;
        match sigmalang::internals::varint::read(payload, &mut pos, 0) {
            Ok(h) if 3 * (h >> 2) <= LIMIT => decoded += h >> 2,
            _ => {}
        }
    }
    if decoded > MAX_DECODED {
        return;
    }
    // The sequential walk and a walk on two threads (runs of 64 blocks) report the same.
    let mut one = Vec::new();
    let failed =
        reader.walk(|n, r| one.push((n, r.map(<[u8]>::to_vec).map_err(|e| e.to_string()))));
    let mut two = Vec::new();
    let open = || Ok(Cursor::new(data));
    let walked = reader.walk_parallel(open, 2, |n, r| {
        two.push((n, r.map(<[u8]>::to_vec).map_err(|e| e.to_string())));
        std::ops::ControlFlow::Continue(())
    });
    assert_eq!(walked.ok(), Some(failed));
    assert!(one == two, "the parallel walk differs");
    if !reader.is_empty() {
        let _ = reader.get(reader.len() - 1);
        let _ = reader.get(0);
    }
    for n in 0..reader.len() {
        // chain() is linear in the chain: checked on a sample, so the loop stays linear.
        if n % 257 == 0 || n + 1 == reader.len() {
            assert_eq!(reader.chain_len(n), reader.chain(n).len());
        }
        let _ = reader.frames_of(n);
        let _ = reader.key(n);
    }
}

fn round_trip(data: &[u8]) {
    // Records separated by 0xFF; a record's first byte picks its context (or none).
    let records: Vec<&[u8]> = data.split(|&b| b == 0xFF).take(2000).collect();
    // Long chains (one group of up to 2000 records) when the input starts with 0xFE.
    let long = data.first() == Some(&0xFE);
    let group = GroupOptions::default()
        .keyframe_interval(if long { 1 << 16 } else { 4 })
        .keyframes_per_root(3)
        .max_frames(2)
        .window(4096)
        .memory(8192);
    // Block mode, in pages of 1..=4081 bytes, when the second byte is a multiple of 3.
    let page_bytes = match data.get(1) {
        Some(&b) if b % 3 == 0 => u64::from(b) * 16 + 1,
        _ => 0,
    };
    // Block mode if it pays (a trial), in pages of 1..=4081 bytes, when it is 1 more.
    let auto_pages = match data.get(1) {
        Some(&b) if b % 3 == 1 => u64::from(b) * 16 + 1,
        _ => 0,
    };
    let opts = ArchiveOptions::default()
        .block_records(3)
        .group(group)
        .bank(4096)
        .batch_records(5)
        .threads(2)
        .json_lines(data.get(1).is_some_and(|b| b & 1 == 1))
        // A primer (FORMAT.md §5.6) of 64 to 2063 bytes for two inputs in three.
        .primer(if data.len() % 3 == 0 {
            0
        } else {
            64 + data.len() % 2000
        })
        .page_bytes(page_bytes)
        // Repeated records are copies (FORMAT.md §5.8); a table of a few records' room for
        // odd lengths, so that sources are forgotten and repeats coded again.
        .repeats(if data.len() % 2 == 0 { 1 << 20 } else { 300 })
        // A coded index (FORMAT.md §5.1, header flag bit 6) for four inputs in five.
        .coded_index(data.len() % 5 != 0)
        .auto_pages(auto_pages);
    let mut w =
        ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"fuzz", opts)
            .expect("valid options");
    let key_of = |r: &[u8]| r.first().filter(|&&k| k % 4 != 0).map(|k| [k % 4]);
    for r in &records {
        let key = key_of(r);
        w.add_line(key.as_ref().map(|k| &k[..]), r)
            .expect("writing to a Vec");
    }
    let bytes = w.finish().expect("writing to a Vec");
    let mut reader = ArchiveReader::open(Cursor::new(&bytes)).expect("own archive opens");
    assert_eq!(reader.len(), records.len() as u64);
    if auto_pages == 0 {
        assert_eq!(reader.page_bytes(), page_bytes);
    } else {
        assert!([0, auto_pages].contains(&reader.page_bytes()));
    }
    let failed =
        reader.walk(|n, got| assert_eq!(got.expect("own record decodes"), records[n as usize]));
    assert_eq!(failed, 0);
    for (n, r) in records.iter().enumerate() {
        assert_eq!(reader.key(n as u64), key_of(r).as_ref().map(|k| &k[..]));
    }
    if !records.is_empty() {
        let last = records.len() as u64 - 1;
        let mut fresh = ArchiveReader::open(Cursor::new(&bytes)).expect("opens");
        assert_eq!(fresh.get(last).expect("get"), records[last as usize]);
    }
}

fuzz_target!(|data: &[u8]| {
    read_as_archive(data);
    round_trip(data);
});
