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

use std::fs;
use std::path::{Path, PathBuf};

use sigmalang::{compress, decompress};

/// The vectors this test insists on (more `.in` files in the folder are checked too).
const REQUIRED: &[&str] = &["empty", "a", "sentence", "chat_request", "invalid_utf8"];

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
