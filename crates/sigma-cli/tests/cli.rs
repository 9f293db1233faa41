//! End-to-end tests of the `sigma` binary: naming, streams, overwrite rules, damaged input,
//! exit codes and messages.

mod common;

use std::fs;
use std::path::Path;

use common::*;

const TEXT: &[u8] = b"User: How do I reverse a list in Python?\n\n\
Assistant: Use `items.reverse()` to reverse in place, or `items[::-1]` for a copy.\n\n\
```python\nitems = [1, 2, 3]\nprint(items[::-1])  # [3, 2, 1]\n```\n\n\
- fast\n- simple \xF0\x9F\x90\x8D\n";

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("chat.txt"), TEXT).unwrap();
    dir
}

#[test]
fn file_round_trip_with_default_names() {
    let dir = setup();
    let d = dir.path();
    let out = sigma(d, &["chat.txt"], None);
    assert_ok(&out);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(listing(d), names(&["chat.txt", "chat.txt.sgm"]));
    assert_eq!(
        fs::read(d.join("chat.txt")).unwrap(),
        TEXT,
        "input untouched"
    );

    fs::rename(d.join("chat.txt"), d.join("orig.txt")).unwrap();
    let out = sigma(d, &["-d", "chat.txt.sgm"], None);
    assert_ok(&out);
    assert_eq!(fs::read(d.join("chat.txt")).unwrap(), TEXT);
    assert_eq!(listing(d), names(&["chat.txt", "chat.txt.sgm", "orig.txt"]));
}

#[test]
fn subcommands_and_output_option() {
    let dir = setup();
    let d = dir.path();
    assert_ok(&sigma(
        d,
        &["compress", "-o", "packed.bin", "chat.txt"],
        None,
    ));
    assert_ok(&sigma(
        d,
        &["decompress", "-o", "back.txt", "packed.bin"],
        None,
    ));
    assert_eq!(fs::read(d.join("back.txt")).unwrap(), TEXT);
    assert_eq!(listing(d), names(&["back.txt", "chat.txt", "packed.bin"]));
}

#[test]
fn stdin_to_stdout_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let packed = sigma(d, &[], Some(TEXT));
    assert_ok(&packed);
    assert!(!packed.stdout.is_empty());
    let back = sigma(d, &["-d"], Some(&packed.stdout));
    assert_ok(&back);
    assert_eq!(back.stdout, TEXT);
    // `-` names standard input too, for the subcommands as well.
    let packed2 = sigma(d, &["compress", "-"], Some(TEXT));
    assert_ok(&packed2);
    assert_eq!(packed2.stdout, packed.stdout);
    let back2 = sigma(d, &["decompress", "-"], Some(&packed.stdout));
    assert_eq!(back2.stdout, TEXT);
    assert!(listing(d).is_empty(), "no files written");
}

#[test]
fn empty_input_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let packed = sigma(dir.path(), &[], Some(b""));
    assert_ok(&packed);
    let back = sigma(dir.path(), &["-d"], Some(&packed.stdout));
    assert_ok(&back);
    assert!(back.stdout.is_empty());
}

#[test]
fn stdout_flag_writes_no_file() {
    let dir = setup();
    let d = dir.path();
    let out = sigma(d, &["-c", "chat.txt"], None);
    assert_ok(&out);
    assert_eq!(listing(d), names(&["chat.txt"]));
    let back = sigma(d, &["-d"], Some(&out.stdout));
    assert_eq!(back.stdout, TEXT);
    fs::write(d.join("chat.txt.sgm"), &out.stdout).unwrap();
    let text = sigma(d, &["-dc", "chat.txt.sgm"], None);
    assert_ok(&text);
    assert_eq!(text.stdout, TEXT);
}

#[test]
fn refuses_to_overwrite_without_force() {
    let dir = setup();
    let d = dir.path();
    fs::write(d.join("chat.txt.sgm"), b"precious").unwrap();
    let err = assert_fails(&sigma(d, &["chat.txt"], None));
    assert!(err.contains("chat.txt.sgm") && err.contains("-f"), "{err}");
    assert_eq!(fs::read(d.join("chat.txt.sgm")).unwrap(), b"precious");

    assert_ok(&sigma(d, &["-f", "chat.txt"], None));
    let back = sigma(d, &["-dc", "chat.txt.sgm"], None);
    assert_eq!(back.stdout, TEXT);
    assert_eq!(listing(d), names(&["chat.txt", "chat.txt.sgm"]));

    // Decompressing onto the existing input needs -f too.
    let err = assert_fails(&sigma(d, &["-d", "chat.txt.sgm"], None));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(fs::read(d.join("chat.txt")).unwrap(), TEXT);
}

/// Writes `chat.txt.sgm` and returns its bytes.
fn packed(d: &Path) -> Vec<u8> {
    assert_ok(&sigma(d, &["chat.txt"], None));
    fs::read(d.join("chat.txt.sgm")).unwrap()
}

#[test]
fn corrupted_input_fails_cleanly() {
    let dir = setup();
    let d = dir.path();
    let mut bad = packed(d);
    let mid = bad.len() / 2;
    bad[mid] ^= 0x20;
    fs::write(d.join("bad.sgm"), &bad).unwrap();
    let before = listing(d);

    let err = assert_fails(&sigma(d, &["-d", "bad.sgm"], None));
    assert!(err.starts_with("sigma: bad.sgm: "), "{err}");
    assert!(err.contains("at byte"), "the message says where: {err}");
    assert_eq!(listing(d), before, "no output and no temporary file left");

    let err = assert_fails(&sigma(d, &["decompress", "-o", "out.txt", "bad.sgm"], None));
    assert!(err.contains("bad.sgm"), "{err}");
    assert_eq!(listing(d), before);

    // With -f over an existing file: the existing file survives the failure.
    fs::write(d.join("bad"), b"keep me").unwrap();
    assert_fails(&sigma(d, &["-d", "-f", "bad.sgm"], None));
    assert_eq!(fs::read(d.join("bad")).unwrap(), b"keep me");
}

#[test]
fn truncated_input_fails_cleanly() {
    let dir = setup();
    let d = dir.path();
    let full = packed(d);
    for (i, cut) in [full.len() - 1, full.len() / 2, 10, 0]
        .into_iter()
        .enumerate()
    {
        let name = format!("cut{i}.sgm");
        fs::write(d.join(&name), &full[..cut]).unwrap();
        let before = listing(d);
        let err = assert_fails(&sigma(d, &["-d", &name], None));
        assert!(err.contains(&name), "{err}");
        assert_eq!(listing(d), before, "cut at {cut}: no output left");
        // The same through a pipe.
        let out = sigma(d, &["-d"], Some(&full[..cut]));
        let err = assert_fails(&out);
        assert!(err.contains("<stdin>"), "{err}");
    }
}

#[test]
fn not_a_sigma_file() {
    let dir = setup();
    let d = dir.path();
    fs::copy(d.join("chat.txt"), d.join("plain.sgm")).unwrap();
    let err = assert_fails(&sigma(d, &["-d", "plain.sgm"], None));
    assert_eq!(err, "sigma: plain.sgm: not a SigmaLang stream\n");
    assert_eq!(listing(d), names(&["chat.txt", "plain.sgm"]));
}

#[test]
fn unknown_suffix_and_missing_input() {
    let dir = setup();
    let d = dir.path();
    let err = assert_fails(&sigma(d, &["-d", "chat.txt"], None));
    assert!(err.contains("suffix") && err.contains("-o"), "{err}");
    let err = assert_fails(&sigma(d, &["compress", "chat.txt.sgm"], None));
    assert!(err.contains("chat.txt.sgm"), "{err}");
    let err = assert_fails(&sigma(d, &["nope.txt"], None));
    assert!(err.starts_with("sigma: nope.txt: "), "{err}");
    assert_fails(&sigma(d, &["."], None));
    assert_eq!(listing(d), names(&["chat.txt"]));
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let dir = setup();
    let d = dir.path();
    for args in [
        &["--bogus"][..],
        &["--memory", "12X", "chat.txt"],
        &["-c", "-o", "x", "chat.txt"],
        &["inspect", "--max-depth", "many"],
        &["a", "b"],
    ] {
        let out = sigma(d, args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(!out.stderr.is_empty());
    }
    for args in [&["--help"][..], &["--version"], &["inspect", "--help"]] {
        let out = sigma(d, args, None);
        assert_ok(&out);
        assert!(!out.stdout.is_empty());
    }
    assert_eq!(listing(d), names(&["chat.txt"]));
}

#[test]
fn rm_deletes_input_only_after_success() {
    let dir = setup();
    let d = dir.path();
    assert_ok(&sigma(d, &["--rm", "chat.txt"], None));
    assert_eq!(listing(d), names(&["chat.txt.sgm"]));
    assert_ok(&sigma(d, &["-d", "--rm", "chat.txt.sgm"], None));
    assert_eq!(listing(d), names(&["chat.txt"]));
    assert_eq!(fs::read(d.join("chat.txt")).unwrap(), TEXT);

    // A failed decompression keeps its input.
    let mut bad = packed(d);
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    fs::write(d.join("bad.sgm"), &bad).unwrap();
    assert_fails(&sigma(d, &["-d", "--rm", "bad.sgm"], None));
    assert!(d.join("bad.sgm").exists());
    // Refusing to overwrite keeps it too.
    fs::write(d.join("other.txt.sgm"), b"x").unwrap();
    fs::write(d.join("other.txt"), b"y").unwrap();
    assert_fails(&sigma(d, &["--rm", "other.txt"], None));
    assert_eq!(fs::read(d.join("other.txt")).unwrap(), b"y");
    // With -c there is no output file: the input stays.
    assert_ok(&sigma(d, &["-q", "--rm", "-c", "chat.txt"], None));
    assert!(d.join("chat.txt").exists());
}

#[test]
fn verbose_and_quiet() {
    let dir = setup();
    let d = dir.path();
    let out = sigma(d, &["-v", "chat.txt"], None);
    assert_ok(&out);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&TEXT.len().to_string()), "{err}");
    assert!(err.contains("ratio") && err.contains("MB/s"), "{err}");
    let out = sigma(d, &["-q", "-f", "chat.txt"], None);
    assert_ok(&out);
    assert!(out.stderr.is_empty());
}

#[test]
fn inspect_prints_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("t.md"), b"# Title\n\nHello world!\n- item one\n").unwrap();
    let out = sigma(d, &["inspect", "t.md"], None);
    assert_ok(&out);
    let text = stdout_text(&out);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("DOCUMENT COMPOSITE 0..33"), "{text}");
    for want in [
        "HEADING COMPOSITE",
        "PARAGRAPH COMPOSITE",
        "LIST_ITEM COMPOSITE",
        "BLANK_LINE PRIMITIVE",
        "PRIMITIVE 9..14 \"Hello\"",
        "\"\\n\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // Indented by depth.
    assert!(
        text.lines()
            .any(|l| l.starts_with("    HEADING COMPOSITE 0..8")),
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert!(
        last.contains("nodes") && last.contains("leaves") && last.contains("domain"),
        "{last}"
    );

    let shallow = stdout_text(&sigma(d, &["inspect", "--max-depth", "1", "t.md"], None));
    assert!(shallow.lines().all(|l| !l.starts_with("    ")), "{shallow}");

    let json = sigma(d, &["inspect", "--json"], Some(b"Hi \xFF there\n"));
    assert_ok(&json);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["tree"]["primitive"], "DOCUMENT");
    assert_eq!(v["tree"]["end"], 11);
    assert!(
        String::from_utf8_lossy(&json.stdout).contains(r#""hex":"ff""#),
        "non-UTF-8 bytes are given as hex"
    );
    assert!(v["summary"]["leaves"].as_u64().unwrap() >= 3);
}

#[test]
fn demo_runs_and_verifies() {
    let dir = setup();
    let out = sigma(dir.path(), &["demo"], None);
    assert_ok(&out);
    let text = stdout_text(&out);
    for want in [
        "input",
        "compressed",
        "ratio",
        "encode",
        "decode",
        "OK",
        "WORD",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    let out = sigma(dir.path(), &["demo", "chat.txt"], None);
    assert_ok(&out);
    assert!(stdout_text(&out).contains(&format!("{} bytes", TEXT.len())));
}
