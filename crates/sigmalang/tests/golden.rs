//! Golden vectors: exact compressed bytes, checked in, that pin the stream format.
//!
//! Every `tests/golden/<name>.in` is an input; `tests/golden/<name>.sgm` is what
//! `sigmalang::compress` must make of it. The test asserts `compress(in) == sgm` and
//! `decompress(sgm) == in`.
//!
//! When the format changes on purpose, regenerate the `.sgm` files with
//!
//! ```text
//! SIGMALANG_BLESS=1 cargo test -p sigmalang --test golden
//! ```
//!
//! and review the diff (`git diff --stat crates/sigmalang/tests/golden`) before committing it,
//! together with the `docs/FORMAT.md` change that explains it. To add a vector, drop a new
//! `<name>.in` file in the folder and bless. See `tests/golden/README.md`.
//!
//! `tests/golden/v2/` keeps the vectors of container version 2 (before the adaptive model):
//! this build no longer writes them, but must still decode them. `tests/golden/v3-adaptive2/`
//! keeps the streams and primed archives as written before variant 3 of the adaptive model
//! (stream header flag bit 0, archive header flag bit 7), likewise.

use std::fs;
use std::path::{Path, PathBuf};

use sigmalang::{compress, decompress};

/// The vectors this test insists on (more `.in` files in the folder are checked too).
const REQUIRED: &[&str] = &[
    "empty",
    "a",
    "sentence",
    "chat_request",
    "invalid_utf8",
    "log_lines",
];

/// The chunk modes (FORMAT.md §3) the vectors must exercise: `sentence` stays `MODELED` and
/// `log_lines` is `ADAPTIVE2`, so both coding paths this build writes are pinned (`ADAPTIVE`,
/// which it no longer writes, by `v3-adaptive/`).
const MODES: &[(&str, u64)] = &[("sentence", 1), ("log_lines", 3)];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn blessing() -> bool {
    std::env::var_os("SIGMALANG_BLESS").is_some_and(|v| v == "1")
}

/// The names of all `<name>.in` files, sorted.
fn vector_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "in"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn golden_vectors() {
    let names = vector_names();
    for required in REQUIRED {
        assert!(
            names.iter().any(|n| n == required),
            "tests/golden/{required}.in is missing"
        );
    }
    let bless = blessing();
    let mut mismatches = Vec::new();
    for name in &names {
        let dir = golden_dir();
        let input = fs::read(dir.join(format!("{name}.in"))).unwrap();
        let sgm_path = dir.join(format!("{name}.sgm"));
        let produced = compress(&input);
        assert_eq!(
            decompress(&produced).unwrap(),
            input,
            "{name}: fresh stream does not round-trip"
        );
        if bless {
            fs::write(&sgm_path, &produced).unwrap();
            eprintln!("blessed {} ({} bytes)", sgm_path.display(), produced.len());
            continue;
        }
        let stored = fs::read(&sgm_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; generate it with SIGMALANG_BLESS=1 cargo test -p sigmalang --test golden",
                sgm_path.display()
            )
        });
        // The stored bytes must decode to the input, whatever the encoder makes today.
        match decompress(&stored) {
            Ok(out) if out == input => {}
            Ok(out) => mismatches.push(format!(
                "{name}: {name}.sgm decodes to {} other bytes",
                out.len()
            )),
            Err(e) => mismatches.push(format!("{name}: {name}.sgm does not decode: {e}")),
        }
        if produced != stored {
            mismatches.push(format!(
                "{name}: compress gives {} bytes, {name}.sgm holds {} (first difference at byte {})",
                produced.len(),
                stored.len(),
                produced
                    .iter()
                    .zip(&stored)
                    .position(|(a, b)| a != b)
                    .unwrap_or(produced.len().min(stored.len()))
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "the golden vectors no longer match (if the format changed on purpose, rerun with \
         SIGMALANG_BLESS=1 and review the diff):\n{}",
        mismatches.join("\n")
    );
}

/// The vectors exercise both modelled chunk modes: the first chunk's record header (after the
/// 20-byte file header and the chunk's length varint) has the expected mode. Every stream has
/// header flag bit 0 (its `ADAPTIVE2` chunks are variant 3, FORMAT.md §3.6).
#[test]
fn vectors_pin_both_chunk_modes() {
    for name in vector_names() {
        let sgm = fs::read(golden_dir().join(format!("{name}.sgm"))).unwrap();
        assert_eq!(sgm[6..8], [1, 0], "{name}: stream header flags");
    }
    for &(name, mode) in MODES {
        let sgm = fs::read(golden_dir().join(format!("{name}.sgm"))).unwrap();
        assert_eq!(sgm[4], 3, "{name}: container version");
        let mut pos = 20;
        let (mut len_bytes, mut h, mut shift) = (0, 0u64, 0);
        for (i, &b) in sgm[pos..].iter().enumerate() {
            if len_bytes == 0 {
                if b & 0x80 == 0 {
                    len_bytes = i + 1;
                    pos += len_bytes;
                    break;
                }
                continue;
            }
        }
        for &b in &sgm[pos..] {
            h |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        assert_eq!(h & 3, mode, "{name}: chunk mode");
    }
}

/// `v3-adaptive/log_lines.sgm`: the `log_lines` stream as written before `ADAPTIVE2` (its chunk
/// `ADAPTIVE`, the adaptive model's variant V1, FORMAT.md §3.4) still decodes; never blessed
/// again.
#[test]
fn adaptive_v1_vector_still_decodes() {
    let dir = golden_dir().join("v3-adaptive");
    let stored = fs::read(dir.join("log_lines.sgm")).unwrap();
    assert_eq!(stored[4], 3, "container version");
    // File header (20 bytes), the chunk's length varint, then the record header's mode bits.
    let pos = 20 + stored[20..].iter().position(|&b| b & 0x80 == 0).unwrap() + 1;
    assert_eq!(stored[pos] & 3, 2, "an ADAPTIVE chunk");
    let input = fs::read(dir.join("log_lines.in")).unwrap();
    assert_eq!(decompress(&stored).unwrap(), input);
}

/// `v3-adaptive2/`: the streams as written before variant 3 (header flags `00 00`, `log_lines`'s
/// chunk `ADAPTIVE2` of variant 2, FORMAT.md §3.5) still decode; never blessed again. A stream
/// of each kind one after the other (`cat old.sgm new.sgm`) decodes too: each its own way.
#[test]
fn adaptive2_vectors_still_decode() {
    let dir = golden_dir().join("v3-adaptive2");
    let mut seen = 0;
    for name in REQUIRED {
        let stored = fs::read(dir.join(format!("{name}.sgm"))).unwrap();
        assert_eq!(
            stored[4..8],
            [3, 1, 0, 0],
            "{name}: version 3 stream, no flags"
        );
        let input = fs::read(dir.join(format!("{name}.in"))).unwrap();
        assert_eq!(decompress(&stored).unwrap(), input, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 6);
    let old = fs::read(dir.join("log_lines.sgm")).unwrap();
    let pos = 20 + old[20..].iter().position(|&b| b & 0x80 == 0).unwrap() + 1;
    assert_eq!(old[pos] & 3, 3, "an ADAPTIVE2 chunk");
    let new = fs::read(golden_dir().join("log_lines.sgm")).unwrap();
    assert_ne!(old[pos..], new[pos..], "variant 3 codes other bytes");
    let input = fs::read(dir.join("log_lines.in")).unwrap();
    for (a, b) in [(&old, &new), (&new, &old)] {
        let both = [a.as_slice(), b.as_slice()].concat();
        assert_eq!(
            decompress(&both).unwrap(),
            [&input[..], &input[..]].concat()
        );
    }
}

/// Streams of container version 2 (`tests/golden/v2/`, written before the adaptive model)
/// still decode to their inputs.
#[test]
fn version_2_vectors_still_decode() {
    let dir = golden_dir().join("v2");
    let mut seen = 0;
    for entry in fs::read_dir(&dir).expect("tests/golden/v2 exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "sgm") {
            let stored = fs::read(&path).unwrap();
            assert_eq!(stored[4], 2, "{}: not a version-2 stream", path.display());
            let input = fs::read(path.with_extension("in")).unwrap();
            assert_eq!(
                decompress(&stored).unwrap(),
                input,
                "{} decodes to other bytes",
                path.display()
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 5, "the five version-2 vectors");
}

/// Every `.sgm` file has its `.in` (a renamed or removed input leaves no stale vector).
#[test]
fn no_orphan_outputs() {
    let names = vector_names();
    for entry in fs::read_dir(golden_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "sgm") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                names.contains(&stem),
                "{} has no matching .in file",
                path.display()
            );
        }
    }
}

/// The archive vector `json_lines_refs.sga` (FORMAT.md §5.5, §8.3): `json_lines.jsonl`
/// (request bodies as JSON strings in both escape styles, CRLF, a blank line, a line that is
/// not JSON, no final newline) packed as `sigma pack --context-key conversation` packs it: whole
/// lines in the JSON-lines form, each line's key the JSON text of its `conversation` field,
/// values by reference allowed (header flag bit 5). The archive is pinned byte for byte, and it
/// reads back every line and key.
#[test]
fn json_lines_archive_vector() {
    use sigmalang::jsonform;
    use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter, Codebook};

    let dir = golden_dir();
    let input = fs::read(dir.join("json_lines.jsonl")).unwrap();
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let keys: Vec<Option<String>> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).ok()?;
            Some(v.get("conversation")?.to_string())
        })
        .collect();
    let opts = ArchiveOptions::default().json_lines(true);
    let meta = b"records=lines\nkey=conversation\n";
    let mut w =
        ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), meta, opts).unwrap();
    for (line, key) in lines.iter().zip(&keys) {
        w.add_line(key.as_deref().map(str::as_bytes), line).unwrap();
    }
    let produced = w.finish().unwrap();
    let path = dir.join("json_lines_refs.sga");
    if blessing() {
        fs::write(&path, &produced).unwrap();
    }
    let stored = fs::read(&path).unwrap();
    assert_eq!(stored[4], 3, "archive version 3");
    assert_eq!(
        &stored[6..8],
        &[0x27, 0],
        "flag bits 0, 1, 2 and 5: the JSON-lines form, fields layout allowed, copies, values \
         by reference"
    );
    let mut r = ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    assert_eq!(r.len(), 5);
    for (n, (line, key)) in lines.iter().zip(&keys).enumerate() {
        assert_eq!(r.get(n as u64).unwrap(), *line, "record {n}");
        assert_eq!(
            r.key(n as u64),
            key.as_deref().map(str::as_bytes),
            "key {n}"
        );
    }
    assert_eq!(r.key(0), Some(&b"\"c1\""[..]));
    assert_eq!(r.key(2), Some(&b"7"[..]));
    // Both escape styles are exercised: minimal (records 0, 1) and Python's ensure_ascii (2).
    let form = |l: &[u8]| {
        let mut f = Vec::new();
        jsonform::encode(l, &mut f);
        f[0]
    };
    assert_eq!(form(lines[0]), jsonform::MINIMAL);
    assert_eq!(form(lines[2]), jsonform::ASCII);
    assert_eq!(form(lines[4]), b'n', "not JSON: kept as it is");
    assert!(
        produced == stored,
        "json_lines_refs.sga: the writer gives {} bytes, the vector holds {} (if the format changed \
         on purpose, rerun with SIGMALANG_BLESS=1 and review the diff)",
        produced.len(),
        stored.len()
    );
}
/// `json_lines.sga` and `json_fields.sga`: `json_lines.jsonl` and `json_fields.jsonl` as the
/// writer packed them before values by reference (header flags `07 00`, FORMAT.md §5.5); never
/// blessed again. They still read, in any order.
#[test]
fn json_archives_before_refs_still_read() {
    let dir = golden_dir();
    for (archive, lines) in [
        ("json_lines.sga", "json_lines.jsonl"),
        ("json_fields.sga", "json_fields.jsonl"),
    ] {
        let input = fs::read(dir.join(lines)).unwrap();
        let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
        let stored = fs::read(dir.join(archive)).unwrap();
        assert_eq!(&stored[6..8], &[7, 0], "{archive}");
        let mut r = sigmalang::ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
        assert_eq!(r.len(), lines.len() as u64);
        for (n, line) in lines.iter().enumerate().rev() {
            assert_eq!(r.get(n as u64).unwrap(), *line, "{archive} record {n}");
        }
    }
}

/// `json_lines_flag1.sga`: `json_lines.jsonl` as the writer packed it before the fields layout
/// (header flags `01 00`, FORMAT.md §5.5); never blessed again. It still reads.
#[test]
fn json_lines_archive_before_fields_still_reads() {
    let dir = golden_dir();
    let input = fs::read(dir.join("json_lines.jsonl")).unwrap();
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let stored = fs::read(dir.join("json_lines_flag1.sga")).unwrap();
    assert_eq!(&stored[6..8], &[1, 0]);
    let mut r = sigmalang::ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    assert_eq!(r.len(), lines.len() as u64);
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(r.get(n as u64).unwrap(), *line, "record {n}");
    }
}

/// The archive vector `json_fields_refs.sga` (FORMAT.md §5.5): the request-log lines of
/// `json_fields.jsonl` (9 to 11 member values each: sequential ids and timestamps, token counts,
/// `1.0e+00` and `-0`, a duplicate key, literals, JSON text in a string in both escape styles,
/// CRLF, no final newline) packed as `sigma pack --context-key conversation` packs them. Every
/// line takes the fields layout, in all three string styles, and every line after the first of
/// its conversation is coded against the one before it (`^` and `~` values; header flag bit 5).
/// Pinned byte for byte; it reads back every line.
#[test]
fn json_fields_archive_vector() {
    use sigmalang::jsonform;
    use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter, Codebook};

    let dir = golden_dir();
    let input = fs::read(dir.join("json_fields.jsonl")).unwrap();
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 5);
    let key = |l: &[u8]| {
        let v: serde_json::Value = serde_json::from_slice(l).unwrap();
        v["conversation"].to_string()
    };
    let form = |l: &[u8]| {
        let mut f = Vec::new();
        jsonform::encode(l, &mut f);
        f
    };
    let forms: Vec<Vec<u8>> = lines.iter().map(|l| form(l)).collect();
    let firsts: Vec<u8> = forms.iter().map(|f| f[0]).collect();
    assert_eq!(
        firsts,
        [
            jsonform::FIELD_RAW,
            jsonform::FIELD_MINIMAL,
            jsonform::FIELD_ASCII,
            jsonform::FIELD_RAW,
            jsonform::FIELD_RAW
        ]
    );
    // Record 1 against record 0: the id and the timestamp as differences, the same
    // conversation and model as `^`.
    let mut coded = Vec::new();
    assert!(jsonform::against(&forms[1], Some(&forms[0]), &mut coded));
    let text = String::from_utf8_lossy(&coded);
    assert!(
        text.contains(" ~1 ^ ~40022 \"assistant\" ^ ^ ~1 1.0e+00 "),
        "{text}"
    );
    let mut back = coded.clone();
    jsonform::resolve_all(&mut back, Some(&forms[0])).unwrap();
    assert_eq!(back, forms[1]);
    // Another skeleton (the duplicate key): nothing against it.
    assert!(!jsonform::against(
        &forms[3],
        Some(&forms[2]),
        &mut Vec::new()
    ));
    assert!(!jsonform::against(
        &forms[4],
        Some(&forms[3]),
        &mut Vec::new()
    ));

    let opts = ArchiveOptions::default().json_lines(true);
    let meta = b"records=lines\nkey=conversation\n";
    let mut w =
        ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), meta, opts).unwrap();
    for line in &lines {
        w.add_line(Some(key(line).as_bytes()), line).unwrap();
    }
    let produced = w.finish().unwrap();
    let path = dir.join("json_fields_refs.sga");
    if blessing() {
        fs::write(&path, &produced).unwrap();
    }
    let stored = fs::read(&path).unwrap();
    assert_eq!(&stored[6..8], &[0x27, 0], "flag bits 0, 1, 2 and 5");
    let mut r = ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    assert_eq!(r.len(), 5);
    for (n, line) in lines.iter().enumerate().rev() {
        assert_eq!(r.get(n as u64).unwrap(), *line, "record {n}");
    }
    // In order, as `unpack` reads them (each record's frames from the cache).
    let mut r = ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    assert_eq!(
        r.walk(|n, rec| assert_eq!(rec.unwrap(), lines[n as usize], "walk {n}")),
        0
    );
    assert!(
        produced == stored,
        "json_fields_refs.sga: the writer gives {} bytes, the vector holds {} (if the format changed \
         on purpose, rerun with SIGMALANG_BLESS=1 and review the diff)",
        produced.len(),
        stored.len()
    );
}

/// The archive vector `json_refs.sga` (FORMAT.md §5.5, header flag bit 5): `json_refs.jsonl`
/// packed as `sigma pack` packs it without a key. Plain forms of 3 fields whose second value
/// repeats the first (`=0`), fields forms with repeated values and a sequential id (`=`, `~`,
/// `^`), and a line whose value looks like a token (not JSON: kept after a `RAW` byte). Pinned
/// byte for byte; it reads back every line, in any order.
#[test]
fn json_refs_archive_vector() {
    use sigmalang::jsonform;
    use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter, Codebook};

    let dir = golden_dir();
    let input = fs::read(dir.join("json_refs.jsonl")).unwrap();
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 5);
    let forms: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| {
            let mut f = Vec::new();
            jsonform::encode(l, &mut f);
            f
        })
        .collect();
    let coded = |n: usize, frame: Option<&[u8]>| {
        let mut c = Vec::new();
        assert!(jsonform::against(&forms[n], frame, &mut c), "record {n}");
        let mut back = c.clone();
        jsonform::resolve_all(&mut back, frame).unwrap();
        assert_eq!(back, forms[n]);
        String::from_utf8(c).unwrap()
    };
    assert!(coded(0, None).contains("\"package\": =0, "));
    assert!(coded(1, Some(&forms[0])).contains("\"package\": =0, "));
    assert_eq!(forms[2][0], jsonform::FIELD_RAW);
    assert!(coded(2, None).ends_with(" \"r-0001\" =0 5 5 \"alpha\" =4 1\n"));
    assert!(coded(3, Some(&forms[2])).ends_with(" ~1 =0 6 5 ^ ^ 1\n"));
    assert_eq!(forms[4][0], jsonform::RAW);

    let opts = ArchiveOptions::default().json_lines(true);
    let mut w = ArchiveWriter::with_options(
        Vec::new(),
        Codebook::default_codebook(),
        b"records=lines\n",
        opts,
    )
    .unwrap();
    for line in &lines {
        w.add_line(None, line).unwrap();
    }
    let produced = w.finish().unwrap();
    let path = dir.join("json_refs.sga");
    if blessing() {
        fs::write(&path, &produced).unwrap();
    }
    let stored = fs::read(&path).unwrap();
    assert_eq!(&stored[6..8], &[0x27, 0], "flag bits 0, 1, 2 and 5");
    let mut r = ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    for (n, line) in lines.iter().enumerate().rev() {
        assert_eq!(r.get(n as u64).unwrap(), *line, "record {n}");
    }
    assert!(
        produced == stored,
        "json_refs.sga: the writer gives {} bytes, the vector holds {} (if the format changed \
         on purpose, rerun with SIGMALANG_BLESS=1 and review the diff)",
        produced.len(),
        stored.len()
    );
}

/// The records of a `primer_*.lines` file: its lines, without their line feeds.
fn lines_of(name: &str) -> Vec<Vec<u8>> {
    let text = fs::read(golden_dir().join(format!("{name}.lines"))).unwrap();
    let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    assert_eq!(
        lines.pop().as_deref(),
        Some(&b""[..]),
        "{name}: a final line feed"
    );
    lines
}

/// Every record of the archive `bytes` decodes, by `get` and by `walk`, to `records`.
fn archive_holds(bytes: &[u8], records: &[Vec<u8>]) {
    let mut r = sigmalang::ArchiveReader::open(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(r.len(), records.len() as u64);
    for (n, rec) in records.iter().enumerate().rev() {
        assert_eq!(&r.get(n as u64).unwrap(), rec, "record {n}");
    }
    assert_eq!(
        r.walk(|n, rec| assert_eq!(rec.unwrap(), &records[n as usize][..])),
        0
    );
}

/// The archive `primer_code.lines` makes with a 1600-byte primer and `opts` (blocks of 4
/// records, or pages): what `primer*_code.sga` and `primer*_pages.sga` pin.
fn primer_archive(opts: sigmalang::ArchiveOptions) -> Vec<u8> {
    let records = lines_of("primer_code");
    let mut w = sigmalang::ArchiveWriter::with_options(
        Vec::new(),
        sigmalang::Codebook::default_codebook(),
        b"field=text\n",
        opts.primer(1600),
    )
    .unwrap();
    for r in &records {
        w.add(r).unwrap();
    }
    let produced = w.finish().unwrap();
    archive_holds(&produced, &records);
    produced
}

/// The mode of the primer payload of the archive `stored` (metadata `field=text\n`: the primer
/// section follows the metadata, at 20 + 1 + 11 + 4 bytes), after checking its length.
fn primer_payload_mode(stored: &[u8]) -> sigmalang::internals::record::Mode {
    let r = sigmalang::ArchiveReader::open(std::io::Cursor::new(stored)).unwrap();
    assert!(r.archive().primer_len() >= 1600);
    let mut pos = 36;
    let primer_len = sigmalang::internals::varint::read(stored, &mut pos, 0).unwrap();
    assert_eq!(primer_len, r.archive().primer_len());
    let _payload_len = sigmalang::internals::varint::read(stored, &mut pos, 0).unwrap();
    let header = sigmalang::internals::record::read_header(&stored[pos..]).unwrap();
    assert_eq!(header.raw_len, primer_len);
    header.mode
}

/// How many payloads (records, or pages) of the archive `stored` are coded in `mode`.
fn payloads_in(stored: &[u8], mode: sigmalang::internals::record::Mode) -> usize {
    use sigmalang::internals::record::read_header;
    let r = sigmalang::ArchiveReader::open(std::io::Cursor::new(stored)).unwrap();
    (0..r.len())
        .filter(|&n| {
            let info = r.info(n).unwrap();
            info.payload_len > 0
                && read_header(&stored[info.offset as usize..]).unwrap().mode == mode
        })
        .count()
}

/// `primer3_code.sga`: an archive of version 3 with a primer (FORMAT.md §5.6) whose state is
/// `ADAPTIVE2` of variant 3 (header flag bits 4 and 7), written from the 48 lines of
/// `primer_code.lines` with a 1600-byte primer and blocks of 4 records. Its primer payload and
/// its records are `ADAPTIVE2`. Blessed like the streams.
#[test]
fn primer_archive_vector() {
    use sigmalang::internals::record::Mode;
    let records = lines_of("primer_code");
    let produced = primer_archive(sigmalang::ArchiveOptions::default().block_records(4));
    let path = golden_dir().join("primer3_code.sga");
    if blessing() {
        fs::write(&path, &produced).unwrap();
        eprintln!("blessed {} ({} bytes)", path.display(), produced.len());
    }
    let stored = fs::read(&path).unwrap();
    archive_holds(&stored, &records);
    assert_eq!(stored[4], 3, "archive version");
    let flags = u16::from_le_bytes([stored[6], stored[7]]);
    assert_eq!(flags & 0x98, 0x90, "flag bits 4 and 7, not bit 3");
    assert_eq!(primer_payload_mode(&stored), Mode::Adaptive2);
    let adaptive = payloads_in(&stored, Mode::Adaptive2);
    assert!(adaptive > records.len() / 2, "{adaptive} ADAPTIVE2 records");
    assert_eq!(payloads_in(&stored, Mode::Adaptive), 0);
    assert!(
        produced == stored,
        "primer3_code.sga no longer matches what the writer makes (if the format changed on \
         purpose, rerun with SIGMALANG_BLESS=1 and review the diff)"
    );
}

/// `v3-adaptive2/primer2_code.sga` and `primer2_pages.sga`: the two primed archives as written
/// before header flag bit 7 (flag bit 4 alone: primer state `V2`, primer and records or pages
/// `ADAPTIVE2` of variant 2); never blessed again, they must still read.
#[test]
fn adaptive2_primer_archives_still_read() {
    use sigmalang::internals::record::Mode;
    let records = lines_of("primer_code");
    let dir = golden_dir().join("v3-adaptive2");
    for (name, flags) in [("primer2_code", 0x10), ("primer2_pages", 0x18)] {
        let stored = fs::read(dir.join(format!("{name}.sga"))).unwrap();
        assert_eq!(stored[6] & 0x98, flags, "{name}: flag bit 4 without bit 7");
        archive_holds(&stored, &records);
        assert_eq!(primer_payload_mode(&stored), Mode::Adaptive2);
        assert!(payloads_in(&stored, Mode::Adaptive2) >= 4, "{name}");
    }
}

/// `primer_code.sga`: the same archive as written before header flag bit 4 (primer state `V1`,
/// primer payload and records `ADAPTIVE`); never blessed again, it must still read.
#[test]
fn adaptive_v1_primer_archive_still_reads() {
    use sigmalang::internals::record::Mode;
    let records = lines_of("primer_code");
    let stored = fs::read(golden_dir().join("primer_code.sga")).unwrap();
    assert_eq!(stored[4], 3, "archive version");
    assert_eq!(stored[6] & 0x18, 0, "no flag bit 3 or 4");
    archive_holds(&stored, &records);
    assert_eq!(primer_payload_mode(&stored), Mode::Adaptive);
    let adaptive = payloads_in(&stored, Mode::Adaptive);
    assert!(adaptive > records.len() / 2, "{adaptive} ADAPTIVE records");
    assert_eq!(payloads_in(&stored, Mode::Adaptive2), 0);
}

/// `primer_v2_tiny.sga`: the archive of version 2 that FORMAT.md §8.2 shows (written before the
/// primer, no primer section) still reads.
#[test]
fn version_2_archive_still_reads() {
    let stored = fs::read(golden_dir().join("primer_v2_tiny.sga")).unwrap();
    assert_eq!(stored[4], 2, "archive version");
    archive_holds(&stored, &lines_of("primer_v2_tiny"));
    let r = sigmalang::ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    assert_eq!(r.archive().primer_len(), 0);
}

/// The block-mode archive vector (archive version 3, FORMAT.md §5.7): `block_lines.jsonl`
/// (24 JSON lines, the last without a newline) packed whole-line, grouped by conversation,
/// with pages of 512 bytes, is exactly `block_lines.sga`, which reads back every line. Its
/// pages use both layouts the writer makes for lines (terminated, and separated for the last
/// page, whose last line has no newline) and context runs.
#[test]
fn block_archive_vector() {
    use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter, Codebook};
    let dir = golden_dir();
    let input = fs::read(dir.join("block_lines.jsonl")).unwrap();
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 24);
    let opts = ArchiveOptions::default().page_bytes(512);
    let codebook = Codebook::default_codebook();
    let meta = b"records=lines\nkey=conversation\n";
    let mut w = ArchiveWriter::with_options(Vec::new(), codebook, meta, opts).unwrap();
    for (n, line) in lines.iter().enumerate() {
        let key = format!("c{}", n / 6);
        w.add_in_group(Some(key.as_bytes()), line).unwrap();
    }
    let produced = w.finish().unwrap();
    let path = dir.join("block_lines.sga");
    if blessing() {
        fs::write(&path, &produced).unwrap();
        eprintln!("blessed {} ({} bytes)", path.display(), produced.len());
    }
    let stored = fs::read(&path).unwrap();
    assert_eq!(stored[4], 3, "archive version 3");
    let mut r = ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    assert_eq!(r.page_bytes(), 512);
    assert_eq!(r.len(), 24);
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(r.get(n as u64).unwrap(), *line, "line {n}");
        assert_eq!(
            r.info(n as u64).unwrap().group,
            1 + n as u32 / 6,
            "line {n}"
        );
    }
    assert!(r.page_of(23).unwrap() >= 3, "several pages");
    assert_eq!(r.walk(|_, rec| assert!(rec.is_ok())), 0);
    assert!(
        produced == stored,
        "the block archive vector no longer matches (if the format changed on purpose, rerun \
         with SIGMALANG_BLESS=1 and review the diff)"
    );
}

/// `primer3_pages.sga`: block mode after a primer (FORMAT.md §5.6, §5.7; header flag bits 3,
/// 4 and 7): the 48 lines of `primer_code.lines` with a 1600-byte primer, in pages of 400
/// bytes. Its pages are coded after the primer (`ADAPTIVE2` of variant 3, as records after a
/// variant-3 primer), and it reads back every line. Blessed like the streams.
#[test]
fn primed_pages_archive_vector() {
    use sigmalang::internals::record::Mode;
    use sigmalang::{ArchiveOptions, ArchiveReader};
    let records = lines_of("primer_code");
    let produced = primer_archive(ArchiveOptions::default().page_bytes(400));
    let path = golden_dir().join("primer3_pages.sga");
    if blessing() {
        fs::write(&path, &produced).unwrap();
        eprintln!("blessed {} ({} bytes)", path.display(), produced.len());
    }
    let stored = fs::read(&path).unwrap();
    archive_holds(&stored, &records);
    assert_eq!(
        (stored[4], stored[6], stored[7]),
        (3, 0x98, 0),
        "version 3, flag bits 3, 4 and 7"
    );
    assert_eq!(primer_payload_mode(&stored), Mode::Adaptive2);
    let r = ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    assert_eq!(r.page_bytes(), 400);
    let pages = r.page_of(records.len() as u64 - 1).unwrap() + 1;
    assert!(pages >= 4, "{pages} pages");
    let adaptive = payloads_in(&stored, Mode::Adaptive2) as u64;
    assert_eq!(adaptive, pages, "every page ADAPTIVE2 after the primer");
    assert!(
        produced == stored,
        "primer3_pages.sga no longer matches what the writer makes (if the format changed on \
         purpose, rerun with SIGMALANG_BLESS=1 and review the diff)"
    );
}

/// `primer_pages.sga`: the same block-mode archive as written before header flag bit 4 (flag
/// bit 3 alone; primer and pages `ADAPTIVE`, state `V1`); never blessed again, it must still
/// read.
#[test]
fn adaptive_v1_primed_pages_still_read() {
    use sigmalang::internals::record::Mode;
    use sigmalang::ArchiveReader;
    let records = lines_of("primer_code");
    let stored = fs::read(golden_dir().join("primer_pages.sga")).unwrap();
    assert_eq!(
        (stored[4], stored[6], stored[7]),
        (3, 8, 0),
        "flag bit 3 alone"
    );
    archive_holds(&stored, &records);
    assert_eq!(primer_payload_mode(&stored), Mode::Adaptive);
    let r = ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    assert_eq!(r.page_bytes(), 400);
    let pages = r.page_of(records.len() as u64 - 1).unwrap() + 1;
    assert_eq!(payloads_in(&stored, Mode::Adaptive) as u64, pages);
}

/// The archive of FORMAT.md §8.2 as version 2 wrote it (`v2/tiny_archive.sga`: no page size,
/// context ids in the tags as they are) still reads.
#[test]
fn version_2_tiny_archive_still_reads() {
    use sigmalang::ArchiveReader;
    let stored = fs::read(golden_dir().join("v2/tiny_archive.sga")).unwrap();
    assert_eq!(stored[4], 2, "a version-2 archive");
    let mut r = ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    assert_eq!(r.page_bytes(), 0);
    let records: Vec<Vec<u8>> = r.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(records, [&b"hi"[..], b"hi there", b"hi"]);
    assert_eq!(r.walk(|_, rec| assert!(rec.is_ok())), 0);
}

/// The copy vector (FORMAT.md §5.8, §8.5): the 6 lines of `repeats.lines`, unkeyed, one record
/// each (no primer, default options): records 2, 4 and 5 repeat records 0, 0 and 1 and are
/// copies, index entries with no payload. Pinned byte for byte; every record reads back, and
/// each copy names its source.
#[test]
fn repeats_archive_vector() {
    use sigmalang::{ArchiveReader, Codebook, Dependency};
    let records = lines_of("repeats");
    let mut w =
        sigmalang::ArchiveWriter::new(Vec::new(), Codebook::default_codebook(), b"").unwrap();
    for r in &records {
        w.add(r).unwrap();
    }
    let produced = w.finish().unwrap();
    let path = golden_dir().join("repeats.sga");
    if blessing() {
        fs::write(&path, &produced).unwrap();
        eprintln!("blessed {} ({} bytes)", path.display(), produced.len());
    }
    let stored = fs::read(&path).unwrap();
    assert_eq!(stored[4], 3, "archive version 3");
    assert_eq!(&stored[6..8], &[4, 0], "flag bit 2: copies");
    archive_holds(&stored, &records);
    let r = ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    let copies: Vec<(u64, Option<u64>)> = (0..r.len())
        .filter(|&n| r.info(n).unwrap().dependency == Dependency::Copy)
        .map(|n| (n, r.info(n).unwrap().prev))
        .collect();
    assert_eq!(copies, [(2, Some(0)), (4, Some(0)), (5, Some(1))]);
    assert!(
        produced == stored,
        "repeats.sga no longer matches what the writer makes (if the format changed on \
         purpose, rerun with SIGMALANG_BLESS=1 and review the diff)"
    );
}

/// `v3-adaptive/block_lines.sga`: the block archive vector as written before `ADAPTIVE2` (its
/// pages' chunks `ADAPTIVE`) still reads back every line; never blessed again.
#[test]
fn adaptive_v1_block_archive_still_reads() {
    use sigmalang::ArchiveReader;
    let input = fs::read(golden_dir().join("block_lines.jsonl")).unwrap();
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let stored = fs::read(golden_dir().join("v3-adaptive/block_lines.sga")).unwrap();
    assert_eq!(stored[4], 3, "archive version 3");
    let mut r = ArchiveReader::open(std::io::Cursor::new(&stored)).unwrap();
    assert_eq!(r.len(), 24);
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(r.get(n as u64).unwrap(), *line, "line {n}");
    }
    assert_eq!(r.walk(|_, rec| assert!(rec.is_ok())), 0);
}
