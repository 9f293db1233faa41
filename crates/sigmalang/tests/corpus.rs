//! Round trips of the development corpus (`shared/corpus/*.jsonl`, outside the repository).
//! Ignored by default, as the corpus is not part of a fresh clone; run them with
//!
//! ```text
//! cargo test -p sigmalang --test corpus -- --ignored
//! ```
//!
//! Each test prints a message and passes when the corpus folder is absent.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sigmalang::{compress, decompress, parse, StreamReader, StreamWriter};
use sigmalang::{Codebook, StreamOptions};
use sigmalang::{Decoder, Encoder};

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
}

/// The corpus files (path, bytes), or `None` (after saying so) when the corpus is absent.
fn corpus_files() -> Option<Vec<(PathBuf, Vec<u8>)>> {
    let dir = corpus_dir();
    let Ok(entries) = fs::read_dir(&dir) else {
        eprintln!("skipped: no corpus at {}", dir.display());
        return None;
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        eprintln!("skipped: no .jsonl files in {}", dir.display());
        return None;
    }
    Some(
        paths
            .into_iter()
            .map(|p| {
                let bytes = fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect(),
    )
}

/// The `text` field of every record of a JSONL file.
fn texts(path: &Path, file: &[u8]) -> Vec<String> {
    let file = std::str::from_utf8(file).expect("the corpus is UTF-8");
    file.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
            v["text"]
                .as_str()
                .unwrap_or_else(|| panic!("{}:{}: no \"text\" string", path.display(), i + 1))
                .to_owned()
        })
        .collect()
}

#[test]
#[ignore = "needs the development corpus; slow"]
fn corpus_records_roundtrip_through_reused_coders() {
    let Some(files) = corpus_files() else { return };
    let mut enc = Encoder::default();
    let mut dec = Decoder::default();
    let mut payload = Vec::new();
    let mut out = Vec::new();
    for (path, bytes) in &files {
        let records = texts(path, bytes);
        assert!(!records.is_empty(), "{}: no records", path.display());
        for (i, text) in records.iter().enumerate() {
            payload.clear();
            enc.encode(text.as_bytes(), &mut payload).unwrap();
            out.clear();
            dec.decode(&payload, &mut out)
                .unwrap_or_else(|e| panic!("{} record {i}: {e}", path.display()));
            assert!(
                out == text.as_bytes(),
                "{} record {i}: round trip changed it",
                path.display()
            );
        }
    }
}

#[test]
#[ignore = "needs the development corpus; slow"]
fn corpus_files_roundtrip_as_streams() {
    let Some(files) = corpus_files() else { return };
    for (path, bytes) in &files {
        let packed = compress(bytes);
        let unpacked = decompress(&packed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            unpacked == *bytes,
            "{}: round trip changed it",
            path.display()
        );

        // The same through the streaming API with many chunks.
        let mut w = StreamWriter::with_options(
            Vec::new(),
            Codebook::default_codebook(),
            StreamOptions::default().chunk_size(64 << 10),
        )
        .unwrap();
        w.write_all(bytes).unwrap();
        let stream = w.finish().unwrap();
        let mut back = Vec::with_capacity(bytes.len());
        StreamReader::new(&stream[..])
            .read_to_end(&mut back)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            back == *bytes,
            "{}: chunked round trip changed it",
            path.display()
        );
    }
}

#[test]
#[ignore = "needs the development corpus; slow"]
fn corpus_records_parse_losslessly() {
    let Some(files) = corpus_files() else { return };
    for (path, bytes) in &files {
        for (i, text) in texts(path, bytes).iter().enumerate() {
            let tree = parse(text.as_bytes());
            if let Err(e) = tree.check() {
                panic!("{} record {i}: tree check failed: {e}", path.display());
            }
            assert!(
                tree.flatten() == text.as_bytes(),
                "{} record {i}: flatten differs from the input",
                path.display()
            );
        }
    }
}

/// Every corpus file's texts packed with a primer (FORMAT.md §5.6; 256 KiB, batches on two
/// threads) read back, by a walk and by random `get`s; where the writer keeps the primer the
/// archive is smaller than without one, and on `code-dev` (Rust, far from the codebook's chat)
/// it keeps it and codes the records `ADAPTIVE`.
#[test]
#[ignore = "needs the development corpus; slow"]
fn corpus_archives_with_a_primer_roundtrip() {
    use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter};
    use std::io::Cursor;
    let Some(files) = corpus_files() else { return };
    for (path, bytes) in &files {
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("train"))
        {
            continue; // the codebook's own training text: as chat-dev, only slower
        }
        let records = texts(path, bytes);
        let pack = |primer: usize| {
            let opts = ArchiveOptions::default()
                .primer(primer)
                .batch_records(256)
                .threads(2);
            let mut w =
                ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
                    .unwrap();
            for r in &records {
                w.add(r.as_bytes()).unwrap();
            }
            w.finish().unwrap()
        };
        let primed = pack(256 << 10);
        let plain = pack(0);
        let mut r = ArchiveReader::open(Cursor::new(&primed)).unwrap();
        let kept = r.archive().primer_len() > 0;
        eprintln!(
            "{}: {} records, {} bytes with a primer (kept: {kept}), {} without",
            path.display(),
            records.len(),
            primed.len(),
            plain.len()
        );
        if kept {
            assert!(primed.len() < plain.len(), "{}", path.display());
        } else {
            assert!(primed.len() == plain.len(), "{}", path.display());
        }
        if path.ends_with("code-dev.jsonl") {
            assert!(
                kept && primed.len() * 5 < plain.len() * 4,
                "{}",
                path.display()
            );
        }
        let failed = r.walk(|n, rec| {
            assert!(
                rec.unwrap() == records[n as usize].as_bytes(),
                "{} record {n}",
                path.display()
            )
        });
        assert_eq!(failed, 0);
        let mut fresh = ArchiveReader::open(Cursor::new(&primed)).unwrap();
        for n in (0..records.len()).step_by(97) {
            assert!(fresh.get(n as u64).unwrap() == records[n].as_bytes());
        }
    }
}

/// Every corpus file's texts, packed unkeyed (inferred contexts) and in block mode (pages of
/// 64 KiB and 1 MiB), on two threads, read back exactly by walk and by get; the request log's
/// inferred contexts code it within 5% of the archive keyed by conversation.
#[test]
#[ignore = "needs the development corpus; slow"]
fn corpus_archives_round_trip_in_pages_and_inferred_contexts() {
    use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter};
    let Some(files) = corpus_files() else { return };
    for (path, bytes) in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains("train") {
            continue;
        }
        let records = texts(path, bytes);
        let keys: Vec<Option<String>> = std::str::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["conversation"].as_str().map(str::to_owned)
            })
            .collect();
        let pack = |page_bytes: u64, keyed: bool| {
            let opts = ArchiveOptions::default()
                .page_bytes(page_bytes)
                .batch_records(1024)
                .threads(2);
            let codebook = Codebook::default_codebook();
            let mut w = ArchiveWriter::with_options(Vec::new(), codebook, b"", opts).unwrap();
            for (text, key) in records.iter().zip(&keys) {
                let key = key.as_deref().filter(|_| keyed).map(str::as_bytes);
                w.add_in_group(key, text.as_bytes()).unwrap();
            }
            w.finish().unwrap()
        };
        for page_bytes in [0, 64 << 10, 1 << 20] {
            let archive = pack(page_bytes, false);
            let mut r = ArchiveReader::open(std::io::Cursor::new(&archive)).unwrap();
            assert_eq!(r.len(), records.len() as u64, "{name}");
            let failed = r.walk(|n, rec| {
                assert!(
                    rec.unwrap() == records[n as usize].as_bytes(),
                    "{name}: record {n}"
                )
            });
            assert_eq!(failed, 0, "{name}");
            for n in (0..records.len()).step_by(97) {
                assert!(
                    r.get(n as u64).unwrap() == records[n].as_bytes(),
                    "{name}: {n}"
                );
            }
            eprintln!("{name}: pages of {page_bytes}: {} bytes", archive.len());
        }
        if keys.iter().all(Option::is_some) {
            let (unkeyed, keyed) = (pack(0, false).len(), pack(0, true).len());
            eprintln!("{name}: unkeyed {unkeyed} bytes, keyed {keyed}");
            assert!(unkeyed * 100 <= keyed * 105, "{name}: {unkeyed} vs {keyed}");
        }
    }
}
