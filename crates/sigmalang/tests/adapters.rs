//! The API's adapters: finishing a stream writer (explicitly, on drop, or not at all), flushing
//! it mid-stream, reaching the inner writer, one-shot coding with a codebook of one's own, the
//! archive's record iterator and the options' setters and getters.

use std::io::{Cursor, Read, Write};

use sigmalang::{
    ArchiveOptions, ArchiveReader, ArchiveWriter, Codebook, CompressionLevel, ErrorKind,
    GroupOptions, StreamOptions, StreamReader, StreamWriter, TrainOptions,
};

fn text(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("turn {i}: the assistant answers question {}\n", i % 37).into_bytes())
        .collect()
}

fn small_chunks(chunk_size: usize, threads: usize) -> StreamOptions {
    StreamOptions::default()
        .chunk_size(chunk_size)
        .threads(threads)
}

#[test]
fn auto_finish_writes_the_same_stream_as_finish() {
    let input = text(500);
    let mut w = StreamWriter::with_options(
        Vec::new(),
        Codebook::default_codebook(),
        small_chunks(4096, 1),
    )
    .unwrap();
    w.write_all(&input).unwrap();
    let finished = w.finish().unwrap();

    let mut dropped = Vec::new();
    {
        let mut w = StreamWriter::with_options(
            &mut dropped,
            Codebook::default_codebook(),
            small_chunks(4096, 1),
        )
        .unwrap()
        .auto_finish();
        w.write_all(&input).unwrap();
        assert_eq!(w.get_ref().bytes_in(), input.len() as u64);
    }
    assert_eq!(dropped, finished);
    assert_eq!(sigmalang::decompress(&dropped).unwrap(), input);

    // Its explicit finish is the writer's.
    let mut w = StreamWriter::with_options(
        Vec::new(),
        Codebook::default_codebook(),
        small_chunks(4096, 1),
    )
    .unwrap()
    .auto_finish();
    w.write_all(&input).unwrap();
    assert_eq!(w.finish().unwrap(), finished);
}

#[test]
fn a_writer_dropped_unfinished_leaves_a_stream_readers_reject_as_truncated() {
    let input = text(50);
    let mut packed = Vec::new();
    {
        let mut w = StreamWriter::new(&mut packed).unwrap();
        w.write_all(&input).unwrap();
    }
    assert_eq!(
        packed.len(),
        20,
        "the header alone: the input was still buffered"
    );
    let err = sigmalang::decompress(&packed).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Truncated { .. }), "{err}");

    // into_inner does not finish either.
    let mut w = StreamWriter::new(Vec::new()).unwrap();
    w.write_all(&input).unwrap();
    let inner = w.into_inner();
    assert_eq!(inner, packed);
}

#[test]
fn flush_writes_the_buffered_input_as_a_short_chunk() {
    for threads in [1, 2] {
        let first = text(40);
        let second = text(60);
        let mut w = StreamWriter::with_options(
            Vec::new(),
            Codebook::default_codebook(),
            small_chunks(1 << 20, threads),
        )
        .unwrap();
        w.write_all(&first).unwrap();
        assert_eq!(w.get_ref().len(), 20, "nothing coded before the flush");
        w.flush().unwrap();
        let flushed = w.get_ref().clone();
        assert!(flushed.len() > 20);

        // A reader of what was flushed gets the flushed input, then reaches the missing end.
        let mut r = StreamReader::new(&flushed[..]);
        let mut got = vec![0u8; first.len()];
        r.read_exact(&mut got).unwrap();
        assert_eq!(got, first);
        assert!(r.read(&mut [0u8; 16]).is_err());
        let err = StreamReader::new(&flushed[..])
            .read_all_into(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Truncated { .. }), "{err}");

        // A flush with nothing buffered writes nothing.
        w.flush().unwrap();
        assert_eq!(w.get_ref().len(), flushed.len());

        w.write_all(&second).unwrap();
        let packed = w.finish().unwrap();
        assert!(packed.starts_with(&flushed));
        let whole = [first.clone(), second.clone()].concat();
        assert_eq!(sigmalang::decompress(&packed).unwrap(), whole);
    }
}

#[test]
fn reader_gives_back_its_inner_reader() {
    let packed = sigmalang::compress(b"hello, hello");
    let mut r = StreamReader::new(Cursor::new(packed.clone()));
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"hello, hello");
    assert_eq!(r.get_ref().position(), packed.len() as u64);
    assert_eq!(r.into_inner().into_inner(), packed);
}

#[test]
fn compress_with_binds_the_stream_to_its_codebook() {
    let records: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("{{\"op\": \"lookup\", \"id\": {i}, \"status\": \"ok\"}}\n").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
    let options = TrainOptions::for_level(CompressionLevel::Fast);
    let trained = Codebook::train(&refs, &options, &mut |_, _| {}).unwrap();
    let loaded = Codebook::from_bytes(&trained.to_bytes()).unwrap();
    assert_eq!(loaded.id(), trained.id());

    let input = b"{\"op\": \"lookup\", \"id\": 7, \"status\": \"ok\"}\n";
    let packed = sigmalang::compress_with(&trained, input);
    assert_eq!(sigmalang::decompress_with(&loaded, &packed).unwrap(), input);
    let err = sigmalang::decompress(&packed).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::CodebookMismatch { .. }),
        "{err}"
    );
    let err = sigmalang::decompress_with(&Codebook::default_codebook(), &packed).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::CodebookMismatch { .. }));
}

/// An archive of 64 records, each a root (no group coding) with a payload of its own (the
/// records repeat each other: no copies, FORMAT.md §5.8), so damage to one block reaches
/// exactly that block's records.
fn roots_archive() -> (Vec<Vec<u8>>, Vec<u8>) {
    let records: Vec<Vec<u8>> = (0..64).map(|i| text(3 + i % 5)).collect();
    let options = ArchiveOptions::default()
        .group(GroupOptions::none())
        .bank(0)
        .repeats(0);
    let mut w = ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", options)
        .unwrap();
    for r in &records {
        w.add(r).unwrap();
    }
    (records, w.finish().unwrap())
}

#[test]
fn records_iterates_in_order_and_goes_on_past_damage() {
    let (records, archive) = roots_archive();
    let mut r = ArchiveReader::open(Cursor::new(archive.clone())).unwrap();
    let it = r.records();
    assert_eq!(it.len(), 64);
    let all: Vec<Vec<u8>> = it.map(|x| x.unwrap()).collect();
    assert_eq!(all, records);

    // Damage one payload of the block of record 20 (the second, records 16..32, with blocks
    // of the default 16; a coded index, the default, may make blocks larger).
    let at = r.info(20).unwrap().offset as usize;
    let block = r.block_records() as usize;
    assert!(block >= ArchiveOptions::default().get_block_records() as usize);
    let damaged = 20 / block;
    let mut bad = archive;
    bad[at] ^= 0x40;
    let mut r = ArchiveReader::open(Cursor::new(bad)).unwrap();
    let got: Vec<_> = r.records().collect();
    assert_eq!(got.len(), 64);
    for (n, result) in got.into_iter().enumerate() {
        match result {
            Ok(bytes) => {
                assert!(
                    n / block != damaged,
                    "record {n} in the damaged block decoded"
                );
                assert_eq!(bytes, records[n]);
            }
            Err(e) => {
                assert_eq!(
                    n / block,
                    damaged,
                    "record {n} outside the damaged block failed: {e}"
                );
                assert!(matches!(e.kind(), ErrorKind::Checksum { .. }), "{e}");
            }
        }
    }
}

#[test]
fn options_read_back_what_was_set() {
    let group = GroupOptions::default().keyframe_interval(8).max_frames(3);
    let o = ArchiveOptions::default()
        .threads(3)
        .batch_records(256)
        .batch_bytes(0)
        .group(group);
    assert_eq!(o.get_threads(), 3);
    assert_eq!(o.get_batch_records(), 256);
    assert_eq!(o.get_batch_bytes(), 0);
    assert_eq!(o.get_group().get_keyframe_interval(), 8);
    assert_eq!(o.get_group().get_max_frames(), 3);
    assert_eq!(
        o.get_group().get_keyframes_per_root(),
        GroupOptions::default().get_keyframes_per_root()
    );
    let s = StreamOptions::default().chunk_size(1000).threads(0);
    assert_eq!((s.get_chunk_size(), s.get_threads()), (1000, 0));
    assert_eq!(
        StreamOptions::default().get_chunk_size(),
        sigmalang::stream::DEFAULT_CHUNK_SIZE
    );
    // Out-of-range settings are refused when the writer is made, not silently clamped.
    assert!(
        StreamWriter::with_options(Vec::new(), Codebook::default_codebook(), s.chunk_size(0))
            .is_err()
    );
}

#[test]
fn decompress_with_limit_refuses_output_past_the_limit() {
    let codebook = Codebook::default_codebook();
    let input = text(3000); // several chunks of 4 KiB
    let mut w =
        StreamWriter::with_options(Vec::new(), codebook.clone(), small_chunks(4096, 1)).unwrap();
    w.write_all(&input).unwrap();
    let packed = w.finish().unwrap();
    let n = input.len() as u64;
    assert_eq!(
        sigmalang::decompress_with_limit(&codebook, &packed, n).unwrap(),
        input
    );
    for limit in [0, 1, 4095, 4096, n / 2, n - 1] {
        let err = sigmalang::decompress_with_limit(&codebook, &packed, limit).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::MemoryLimit { .. }),
            "{limit}: {err}"
        );
    }
    // Damage is reported as damage, not as the limit.
    let mut bad = packed.clone();
    bad[30] ^= 1;
    let err = sigmalang::decompress_with_limit(&codebook, &bad, n).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Checksum { .. }), "{err}");
}
