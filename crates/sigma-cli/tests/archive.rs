//! End-to-end tests of `sigma train`, `pack`, `unpack`, `get` and of `-m` on streams: exact
//! round trips of JSONL text, codebook checks, damaged archives and overwrite rules.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;

/// The fixture: 50 chat lines with unicode, emoji, escapes, NULs and empty strings.
const FIXTURE: &str = include_str!("fixtures/chat.jsonl");

/// The `text` value of every line of `jsonl`.
fn texts(jsonl: &[u8]) -> Vec<String> {
    let jsonl = std::str::from_utf8(jsonl).expect("JSONL is UTF-8");
    jsonl
        .split_terminator('\n')
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a JSON line");
            v["text"].as_str().expect("a text field").to_string()
        })
        .collect()
}

/// A directory holding `chat.jsonl`.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("chat.jsonl"), FIXTURE).unwrap();
    dir
}

/// Trains `name` on the fixture, with `extra` options.
fn train(d: &Path, name: &str, extra: &[&str]) {
    let mut args = vec!["train", "-q", "-o", name];
    args.extend_from_slice(extra);
    args.push("chat.jsonl");
    let out = sigma(d, &args, None);
    assert_ok(&out);
    assert!(out.stderr.is_empty(), "-q prints nothing: {}", stderr(&out));
}

#[test]
fn fixture_is_varied() {
    let t = texts(FIXTURE.as_bytes());
    assert_eq!(t.len(), 50);
    assert!(t.iter().filter(|s| s.is_empty()).count() >= 2);
    for needle in [
        "\0",
        "\n",
        "\t",
        "\"",
        "\\",
        "👋",
        "😀",
        "日本語",
        "\u{2028}",
    ] {
        assert!(t.iter().any(|s| s.contains(needle)), "{needle:?}");
    }
}

#[test]
fn pack_unpack_round_trips_every_text() {
    let dir = setup();
    let d = dir.path();
    let packed = sigma(d, &["pack", "-o", "chat.sga", "chat.jsonl"], None);
    assert_ok(&packed);
    assert!(packed.stdout.is_empty() && packed.stderr.is_empty());

    let out = sigma(d, &["unpack", "-o", "back.jsonl", "chat.sga"], None);
    assert_ok(&out);
    assert!(out.stdout.is_empty());
    // Every line comes back whole, byte for byte.
    let back = fs::read(d.join("back.jsonl")).unwrap();
    assert_eq!(back, FIXTURE.as_bytes());

    // --field: one field of every line, as JSON values.
    let out = sigma(d, &["unpack", "--field", "text", "chat.sga"], None);
    assert_ok(&out);
    let values: Vec<String> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<String>(l).expect("a JSON string a line"))
        .collect();
    assert_eq!(values, texts(FIXTURE.as_bytes()));

    // An archive of the field alone (--field on pack) writes `{"text": ...}` lines.
    assert_ok(&sigma(
        d,
        &["pack", "--field", "text", "-o", "text.sga", "chat.jsonl"],
        None,
    ));
    let out = sigma(d, &["unpack", "text.sga"], None);
    assert_ok(&out);
    assert_eq!(texts(&out.stdout), texts(FIXTURE.as_bytes()));
    for line in std::str::from_utf8(&out.stdout).unwrap().lines() {
        assert!(
            line.starts_with("{\"text\": \"") && line.ends_with("\"}"),
            "{line}"
        );
    }
    let err = assert_fails(&sigma(d, &["unpack", "--field", "id", "text.sga"], None));
    assert!(err.contains("holds only the field \"text\""), "{err}");
    fs::remove_file(d.join("text.sga")).unwrap();

    // Without -o, the JSONL goes to standard output.
    let stdout = sigma(d, &["unpack", "chat.sga"], None);
    assert_ok(&stdout);
    assert_eq!(stdout.stdout, back);

    // Standard input (no FILE, or `-`) packs to the same archive, records alone (`--block
    // 0`): this file fits in its primer, whose records standard input's default trial of 4 KiB
    // pages leaves out (the primer is its first records), while a file's primer is a sample
    // and its trial codes every record (here, in pages: 221 bytes of payloads against 432).
    assert_ok(&sigma(
        d,
        &["pack", "--block", "0", "-o", "chat0.sga", "chat.jsonl"],
        None,
    ));
    let archive = fs::read(d.join("chat0.sga")).unwrap();
    assert_ne!(archive, fs::read(d.join("chat.sga")).unwrap());
    assert_ok(&sigma(
        d,
        &["pack", "--block", "0", "-o", "stdin.sga"],
        Some(FIXTURE.as_bytes()),
    ));
    assert_eq!(fs::read(d.join("stdin.sga")).unwrap(), archive);
    assert_ok(&sigma(
        d,
        &["pack", "--block", "0", "-o", "dash.sga", "-"],
        Some(FIXTURE.as_bytes()),
    ));
    assert_eq!(fs::read(d.join("dash.sga")).unwrap(), archive);
    assert_eq!(
        listing(d),
        names(&[
            "back.jsonl",
            "chat.jsonl",
            "chat.sga",
            "chat0.sga",
            "dash.sga",
            "stdin.sga"
        ])
    );
}

#[test]
fn pack_verbose_reports_sizes_and_codebook() {
    let dir = setup();
    let d = dir.path();
    let out = sigma(d, &["pack", "-v", "-o", "chat.sga", "chat.jsonl"], None);
    assert_ok(&out);
    let err = stderr(&out);
    let total: usize = texts(FIXTURE.as_bytes()).iter().map(String::len).sum();
    let size = fs::metadata(d.join("chat.sga")).unwrap().len();
    assert!(err.contains("50 records"), "{err}");
    // The ratio is on file bytes (JSONL in, archive out).
    let file = FIXTURE.len();
    assert!(err.contains(&format!("{file} -> {size} bytes")), "{err}");
    let ratio = format!("ratio {:.2},", file as f64 / size as f64);
    assert!(err.contains(&ratio), "{err}");
    assert!(err.contains("codebook: default ("), "{err}");

    // With --field, the text's ratio is given too.
    let out = sigma(
        d,
        &["pack", "-v", "--field", "text", "-o", "t.sga", "chat.jsonl"],
        None,
    );
    assert_ok(&out);
    let err = stderr(&out);
    let size = fs::metadata(d.join("t.sga")).unwrap().len();
    let ratio = format!(
        "ratio {:.2} ({total} bytes of text: ratio {:.2})",
        file as f64 / size as f64,
        total as f64 / size as f64
    );
    assert!(err.contains(&ratio), "{err}");
    assert!(
        err.contains("ratio") && err.contains("codebook: default ("),
        "{err}"
    );
}

#[test]
fn other_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = "{\"content\": \"a\\nb\", \"text\": 1}\n{\"content\": \"\"}\n";
    fs::write(d.join("in.jsonl"), input).unwrap();
    assert_ok(&sigma(
        d,
        &["pack", "--field", "content", "-o", "a.sga", "in.jsonl"],
        None,
    ));
    let out = sigma(d, &["unpack", "a.sga"], None);
    assert_ok(&out);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"content\": \"a\\nb\"}\n{\"content\": \"\"}\n"
    );
}

#[test]
fn get_prints_one_record() {
    let dir = setup();
    let d = dir.path();
    assert_ok(&sigma(d, &["pack", "-o", "chat.sga", "chat.jsonl"], None));
    let t = texts(FIXTURE.as_bytes());
    let lines: Vec<&str> = FIXTURE.split_inclusive('\n').collect();
    for n in [0, 3, 9, 15, 16, 19, 37, 49] {
        // The line exactly, with its newline.
        let out = sigma(d, &["get", "chat.sga", &n.to_string()], None);
        assert_ok(&out);
        assert_eq!(out.stdout, lines[n].as_bytes(), "record {n}");
        // One field's text, with a newline after it (--raw: without).
        let args = ["get", "--field", "text", "chat.sga", &n.to_string()];
        let out = sigma(d, &args, None);
        assert_ok(&out);
        assert_eq!(out.stdout, format!("{}\n", t[n]).into_bytes(), "record {n}");
        let args = [
            "get",
            "--raw",
            "--field",
            "text",
            "chat.sga",
            &n.to_string(),
        ];
        let raw = sigma(d, &args, None);
        assert_ok(&raw);
        assert_eq!(raw.stdout, t[n].as_bytes(), "record {n}");
    }
    // Several records and ranges (both ends included), in the order given, in one process.
    let out = sigma(d, &["get", "chat.sga", "37", "0-2", "49", "5-5"], None);
    assert_ok(&out);
    let want: String = [37, 0, 1, 2, 49, 5].iter().map(|&n| lines[n]).collect();
    assert_eq!(out.stdout, want.as_bytes());
    let out = sigma(d, &["get", "--field", "text", "chat.sga", "3-4"], None);
    assert_ok(&out);
    assert_eq!(out.stdout, format!("{}\n{}\n", t[3], t[4]).into_bytes());
    // A number past the end stops the command before it prints anything.
    let out = sigma(d, &["get", "chat.sga", "0", "48-50"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("no record 50"), "{}", stderr(&out));
    for bad in ["5-2", "1-", "a-b", "3-x"] {
        let usage = sigma(d, &["get", "chat.sga", bad], None);
        assert_eq!(usage.status.code(), Some(1), "{bad}");
        assert!(
            stderr(&usage).contains("invalid value"),
            "{bad}: {}",
            stderr(&usage)
        );
    }
    // A missing field is `null`, as `unpack --field` writes it.
    let out = sigma(d, &["get", "--field", "nope", "chat.sga", "0"], None);
    assert_ok(&out);
    assert_eq!(out.stdout, b"null\n");
    let out = sigma(d, &["unpack", "--field", "nope", "chat.sga"], None);
    assert_ok(&out);
    assert!(out.stdout.starts_with(b"null\nnull\n"));
    let err = assert_fails(&sigma(d, &["get", "chat.sga", "50"], None));
    assert!(
        err.contains("no record 50") && err.contains("50 records"),
        "{err}"
    );
    let usage = sigma(d, &["get", "chat.sga", "x"], None);
    assert_eq!(usage.status.code(), Some(1));
    assert!(
        stderr(&usage).contains("invalid value"),
        "{}",
        stderr(&usage)
    );
    let err = assert_fails(&sigma(d, &["get", "chat.jsonl", "0"], None));
    assert!(
        err.ends_with("chat.jsonl: not a SigmaLang archive\n"),
        "{err}"
    );
}

#[test]
fn trained_model_round_trip() {
    let dir = setup();
    let d = dir.path();
    let out = sigma(d, &["train", "-o", "chat.sgcb", "chat.jsonl"], None);
    assert_ok(&out);
    let summary = stderr(&out);
    let model_len = fs::metadata(d.join("chat.sgcb")).unwrap().len();
    assert!(summary.contains("50 records"), "{summary}");
    assert!(
        summary.contains(&format!("{model_len} bytes, id ")),
        "{summary}"
    );
    assert!(summary.contains("contexts"), "{summary}");

    let out = sigma(
        d,
        &[
            "pack",
            "-v",
            "-m",
            "chat.sgcb",
            "-o",
            "chat.sga",
            "chat.jsonl",
        ],
        None,
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains(&format!("codebook: chat.sgcb ({model_len} bytes)")),
        "{}",
        stderr(&out)
    );
    let out = sigma(d, &["unpack", "-m", "chat.sgcb", "chat.sga"], None);
    assert_ok(&out);
    assert_eq!(out.stdout, FIXTURE.as_bytes());
    let args = [
        "get",
        "-m",
        "chat.sgcb",
        "--field",
        "text",
        "chat.sga",
        "12",
    ];
    let out = sigma(d, &args, None);
    assert_ok(&out);
    assert_eq!(out.stdout, "日本語のテキストも大丈夫です。\n".as_bytes());

    // Without the model the archive cannot be read, and says so.
    let err = assert_fails(&sigma(d, &["unpack", "-o", "x.jsonl", "chat.sga"], None));
    assert!(
        err.contains("chat.sga: this archive was made with codebook")
            && err.contains("pass it with -m"),
        "{err}"
    );
    let err = assert_fails(&sigma(d, &["get", "chat.sga", "0"], None));
    assert!(err.contains("pass it with -m"), "{err}");
    // Nor with another model.
    train(d, "other.sgcb", &["--max-order", "2"]);
    let err = assert_fails(&sigma(
        d,
        &["get", "-m", "other.sgcb", "chat.sga", "0"],
        None,
    ));
    assert!(err.contains("but other.sgcb is codebook"), "{err}");
    assert_eq!(
        listing(d),
        names(&["chat.jsonl", "chat.sga", "chat.sgcb", "other.sgcb"])
    );
}

#[test]
fn streams_need_their_model() {
    let dir = setup();
    let d = dir.path();
    train(d, "a.sgcb", &[]);
    train(d, "b.sgcb", &["--max-order", "3", "--min-count", "1"]);
    assert_ne!(
        fs::read(d.join("a.sgcb")).unwrap(),
        fs::read(d.join("b.sgcb")).unwrap()
    );
    assert_ok(&sigma(d, &["-m", "a.sgcb", "chat.jsonl"], None));
    assert_ok(&sigma(
        d,
        &["compress", "-m", "a.sgcb", "-o", "sub.sgm", "chat.jsonl"],
        None,
    ));

    let err = assert_fails(&sigma(d, &["-d", "-o", "x", "chat.jsonl.sgm"], None));
    assert!(
        err.contains("this stream was made with codebook") && err.contains("pass it with -m"),
        "{err}"
    );
    let err = assert_fails(&sigma(
        d,
        &["-d", "-m", "b.sgcb", "-o", "x", "chat.jsonl.sgm"],
        None,
    ));
    assert!(err.contains("but b.sgcb is codebook"), "{err}");
    // From standard input too.
    let packed = fs::read(d.join("sub.sgm")).unwrap();
    let err = assert_fails(&sigma(d, &["decompress"], Some(&packed)));
    assert!(
        err.contains("<stdin>") && err.contains("pass it with -m"),
        "{err}"
    );
    assert_eq!(
        listing(d),
        names(&[
            "a.sgcb",
            "b.sgcb",
            "chat.jsonl",
            "chat.jsonl.sgm",
            "sub.sgm"
        ])
    );

    let out = sigma(d, &["-dc", "-m", "a.sgcb", "chat.jsonl.sgm"], None);
    assert_ok(&out);
    assert_eq!(out.stdout, FIXTURE.as_bytes());
    let out = sigma(d, &["decompress", "-m", "a.sgcb"], Some(&packed));
    assert_ok(&out);
    assert_eq!(out.stdout, FIXTURE.as_bytes());

    // A stream made with the built-in codebook is refused by a trained one.
    let plain = sigma(d, &["-c", "chat.jsonl"], None);
    assert_ok(&plain);
    let err = assert_fails(&sigma(d, &["-d", "-m", "a.sgcb"], Some(&plain.stdout)));
    assert!(err.contains("but a.sgcb is codebook"), "{err}");
    // A model that is not a codebook.
    let err = assert_fails(&sigma(d, &["-c", "-m", "chat.jsonl", "chat.jsonl"], None));
    assert!(err.contains("chat.jsonl: not a usable codebook"), "{err}");
    let err = assert_fails(&sigma(d, &["-c", "-m", "missing", "chat.jsonl"], None));
    assert!(err.starts_with("sigma: missing: "), "{err}");
}

#[test]
fn damaged_archive_names_the_record() {
    let dir = setup();
    let d = dir.path();
    // Damage to a primer reaches every record (below); without one, only its records.
    assert_ok(&sigma(d, &["pack", "-o", "primed.sga", "chat.jsonl"], None));
    let mut primed = fs::read(d.join("primed.sga")).unwrap();
    let meta_end = 20 + 1 + usize::from(primed[20]) + 4;
    if primed[meta_end] != 0 {
        primed[meta_end + 12] ^= 0x04; // in the primer's payload
        fs::write(d.join("primed.sga"), &primed).unwrap();
        for n in [0, 5] {
            let err = assert_fails(&sigma(d, &["get", "primed.sga", &n.to_string()], None));
            assert!(
                err.contains(&format!("record {n}")) && err.contains("primer"),
                "{err}"
            );
        }
        // verify names the cause once, with every record it breaks.
        let out = sigma(d, &["verify", "primed.sga"], None);
        let err = assert_fails(&out);
        let records = FIXTURE.lines().count();
        assert!(
            err.contains(&format!("{records} of {records} records are damaged")),
            "{err}"
        );
        let report = String::from_utf8(out.stdout).unwrap();
        assert_eq!(report.lines().count(), 1, "{report}");
        assert!(
            report.starts_with(&format!("records 0-{}: ", records - 1))
                && report.contains("primer"),
            "{report}"
        );
    }
    fs::remove_file(d.join("primed.sga")).unwrap();
    assert_ok(&sigma(
        d,
        &[
            "pack",
            "--no-primer",
            "--block",
            "0",
            "-o",
            "chat.sga",
            "chat.jsonl",
        ],
        None,
    ));
    let mut bytes = fs::read(d.join("chat.sga")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x04;
    fs::write(d.join("chat.sga"), &bytes).unwrap();

    let t: Vec<&str> = FIXTURE.split_inclusive('\n').collect();
    let mut damaged = 0;
    for (n, line) in t.iter().enumerate() {
        let out = sigma(d, &["get", "chat.sga", &n.to_string()], None);
        if out.status.success() {
            assert_eq!(out.stdout, line.as_bytes());
        } else {
            let err = assert_fails(&out);
            assert!(err.contains(&format!("record {n}")), "{err}");
            assert!(out.stdout.is_empty());
            damaged += 1;
        }
    }
    assert!(
        damaged > 0 && damaged < t.len(),
        "{damaged} damaged records"
    );

    let err = assert_fails(&sigma(d, &["unpack", "-o", "back.jsonl", "chat.sga"], None));
    assert!(err.contains("record "), "{err}");
    assert_eq!(
        listing(d),
        names(&["chat.jsonl", "chat.sga"]),
        "no output left"
    );

    // A cut archive is refused as a whole.
    fs::write(d.join("chat.sga"), &bytes[..bytes.len() - 3]).unwrap();
    let err = assert_fails(&sigma(d, &["get", "chat.sga", "0"], None));
    assert!(err.contains("chat.sga"), "{err}");
}

#[test]
fn pack_refuses_to_overwrite_without_force() {
    let dir = setup();
    let d = dir.path();
    fs::write(d.join("chat.sga"), b"precious").unwrap();
    let err = assert_fails(&sigma(d, &["pack", "-o", "chat.sga", "chat.jsonl"], None));
    assert!(err.contains("chat.sga") && err.contains("-f"), "{err}");
    assert_eq!(fs::read(d.join("chat.sga")).unwrap(), b"precious");
    let err = assert_fails(&sigma(
        d,
        &["pack", "-f", "-o", "chat.jsonl", "chat.jsonl"],
        None,
    ));
    assert!(err.contains("input file itself"), "{err}");

    assert_ok(&sigma(
        d,
        &["pack", "-f", "-o", "chat.sga", "chat.jsonl"],
        None,
    ));
    let out = sigma(d, &["unpack", "chat.sga"], None);
    assert_eq!(out.stdout, FIXTURE.as_bytes());

    // unpack and train follow the same rule.
    fs::write(d.join("out.jsonl"), b"precious").unwrap();
    let err = assert_fails(&sigma(d, &["unpack", "-o", "out.jsonl", "chat.sga"], None));
    assert!(err.contains("already exists"), "{err}");
    let err = assert_fails(&sigma(d, &["train", "-o", "out.jsonl", "chat.jsonl"], None));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(fs::read(d.join("out.jsonl")).unwrap(), b"precious");
    assert_eq!(listing(d), names(&["chat.jsonl", "chat.sga", "out.jsonl"]));
}

#[test]
fn pack_keeps_odd_lines_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Blank lines, a byte-order mark, CRLF, a lone surrogate escape (Python's json writes
    // them), invalid UTF-8, a line that is not JSON, JSON that is not an object, NUL bytes,
    // and no final newline.
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(b"{\"id\": 1, \"text\": \"a\"}\n\n");
    input.extend_from_slice(b"\xef\xbb\xbf{\"id\": 2}\r\n");
    input.extend_from_slice(b"{\"text\": \"\\ud800\"}\n");
    input.extend_from_slice(b"\xff\xfe not utf-8\n   \n");
    input.extend_from_slice(b"not json\n[1, 2]\n\"just a string\"\n\0\0\n");
    // Request bodies as JSON strings (the JSON-lines form unescapes them), serde_json's and
    // Python's ensure_ascii escapes, a lone surrogate inside.
    input.extend_from_slice(b"{\"t\": \"{\\\"m\\\": \\\"a\\\\nb\\\"}\"}\n");
    input.extend_from_slice(b"{\"t\": \"[\\\"caf\\u00e9 \\ud83d\\ude00 \\ud800\\\"]\"}\r\n");
    // Records of many fields (the fields layout, coded against the line before: ids and
    // timestamps as differences), with -0, 1.0e+00, a duplicate key and \u00e9 vs é.
    input.extend_from_slice(
        b"{\"id\": \"r-0099\", \"ts\": \"12:59:59.990Z\", \"n\": -0, \"x\": 1.0e+00, \"t\": \"caf\\u00e9\"}\n",
    );
    input.extend_from_slice(
        "{\"id\": \"r-0100\", \"ts\": \"13:00:00.012Z\", \"n\": -0, \"x\": 1.0e+00, \"t\": \"café\"}\n"
            .as_bytes(),
    );
    input.extend_from_slice(
        b"{\"id\": \"r-0101\", \"id\": 7, \"ts\": \"13:00:00.020Z\", \"n\": 0, \"x\": 1, \"t\": \"\"}\n",
    );
    input.extend_from_slice(b"{\"id\": 3, \"text\": \"crlf\"}\r\n{\"id\": 4}");
    fs::write(d.join("odd.jsonl"), &input).unwrap();
    let out = sigma(d, &["pack", "-o", "a.sga", "odd.jsonl"], None);
    assert_ok(&out);
    let warning = stderr(&out);
    assert_eq!(
        warning.matches('\n').count(),
        1,
        "one warning for all odd lines: {warning}"
    );
    assert!(
        warning.contains("odd.jsonl: 10 lines are not JSON objects (")
            && warning.contains("2 blank")
            && warning.contains("1 byte-order mark")
            && warning.contains("1 not UTF-8")
            && warning.contains("the first is line 2"),
        "{warning}"
    );
    let out = sigma(d, &["unpack", "a.sga"], None);
    assert_ok(&out);
    assert_eq!(out.stdout, input, "unpack gives back the input exactly");
    // The archive is in the JSON-lines form (header flag bit 0, and bit 1: the fields layout)
    // unless --no-json-form; the lines read back the same either way. (Bit 2 says whether it may
    // hold copies, bit 3 whether its pages follow a primer.)
    let head = fs::read(d.join("a.sga")).unwrap();
    assert_eq!((&head[4..6], head[6] & 3, head[7]), (&[3, 2][..], 3, 0));
    let args = ["pack", "-q", "--no-json-form", "-o", "raw.sga", "odd.jsonl"];
    assert_ok(&sigma(d, &args, None));
    let head = fs::read(d.join("raw.sga")).unwrap();
    assert_eq!((&head[4..6], head[6] & 1, head[7]), (&[3, 2][..], 0, 0));
    assert_eq!(sigma(d, &["unpack", "raw.sga"], None).stdout, input);
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    for (n, line) in lines.iter().enumerate() {
        let out = sigma(d, &["get", "a.sga", &n.to_string()], None);
        assert_ok(&out);
        assert_eq!(out.stdout, *line, "line {n}");
    }
    // -q silences the warning; --strict refuses the first odd line, by file, line and column.
    let out = sigma(d, &["pack", "-q", "-f", "-o", "a.sga", "odd.jsonl"], None);
    assert_ok(&out);
    assert!(out.stderr.is_empty());
    let err = assert_fails(&sigma(
        d,
        &["pack", "--strict", "-o", "b.sga", "odd.jsonl"],
        None,
    ));
    assert!(err.contains("odd.jsonl:2:1: blank line"), "{err}");
    fs::write(d.join("bad.jsonl"), b"{\"a\": 1}\n{\"a\": \xff}\n").unwrap();
    let err = assert_fails(&sigma(
        d,
        &["pack", "--strict", "-o", "b.sga", "bad.jsonl"],
        None,
    ));
    assert!(err.contains("bad.jsonl:2:7: not valid UTF-8"), "{err}");
    fs::write(d.join("bad.jsonl"), b"{\"a\": 1}\n{\"a\": tru}\n").unwrap();
    let err = assert_fails(&sigma(
        d,
        &["pack", "--strict", "-o", "b.sga", "bad.jsonl"],
        None,
    ));
    assert!(
        err.contains("bad.jsonl:2:10: invalid JSON: expected ident"),
        "{err}"
    );
    // Every kind of odd line is named FILE:LINE:COLUMN.
    for (line, expected) in [
        (
            &b"\xef\xbb\xbf{}"[..],
            "bad.jsonl:2:1: the line starts with a byte-order mark",
        ),
        (b"  [1]", "bad.jsonl:2:3: an array, not a JSON object"),
        (b"{\"a\": \"\\ud800\"}", "bad.jsonl:2:"),
        (b"\t ", "bad.jsonl:2:1: blank line"),
    ] {
        let mut input = b"{\"a\": 1}\n".to_vec();
        input.extend_from_slice(line);
        fs::write(d.join("bad.jsonl"), &input).unwrap();
        let args = ["pack", "--strict", "-o", "b.sga", "bad.jsonl"];
        let err = assert_fails(&sigma(d, &args, None));
        assert!(err.contains(expected), "{expected}: {err}");
        let position = err.split("bad.jsonl:").nth(1).unwrap();
        let mut parts = position.splitn(3, ':');
        assert_eq!(parts.next(), Some("2"), "{err}");
        assert!(
            parts.next().unwrap().parse::<u32>().is_ok(),
            "a column: {err}"
        );
    }
    assert!(!d.join("b.sga").exists(), "no output left");
}

/// Block mode (`--block SIZE`): whole lines, odd ones included, and `--field` texts unpack
/// byte for byte and `get` prints each record exactly, whatever the block size and threads;
/// the archive does not depend on the threads; bad sizes are refused by name.
#[test]
fn block_mode_keeps_every_record_exactly() {
    let dir = setup();
    let d = dir.path();
    let mut input: Vec<u8> = FIXTURE.as_bytes().to_vec();
    input.extend_from_slice(b"\n\xef\xbb\xbf{\"id\": 2}\r\n\xff\xfe not utf-8\n\0\0\nnot json\n");
    // Records of many fields (the fields layout, coded against the line before: ids and
    // timestamps as differences), with -0, 1.0e+00, a duplicate key and \u00e9 vs é.
    input.extend_from_slice(
        b"{\"id\": \"r-0099\", \"ts\": \"12:59:59.990Z\", \"n\": -0, \"x\": 1.0e+00, \"t\": \"caf\\u00e9\"}\n",
    );
    input.extend_from_slice(
        "{\"id\": \"r-0100\", \"ts\": \"13:00:00.012Z\", \"n\": -0, \"x\": 1.0e+00, \"t\": \"café\"}\n"
            .as_bytes(),
    );
    input.extend_from_slice(
        b"{\"id\": \"r-0101\", \"id\": 7, \"ts\": \"13:00:00.020Z\", \"n\": 0, \"x\": 1, \"t\": \"\"}\n",
    );
    input.extend_from_slice(b"{\"id\": 3, \"text\": \"crlf\"}\r\n{\"id\": 4}");
    fs::write(d.join("odd.jsonl"), &input).unwrap();
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let want = texts(FIXTURE.as_bytes());
    for block in ["1", "200", "4KiB", "1MiB", "auto", "0"] {
        let pack = |threads: &str, out: &str, extra: &[&str], file: &str| {
            let mut args = vec![
                "pack", "-q", "-f", "-T", threads, "--block", block, "-o", out,
            ];
            args.extend_from_slice(extra);
            args.push(file);
            assert_ok(&sigma(d, &args, None));
            fs::read(d.join(out)).unwrap()
        };
        let one = pack("1", "a.sga", &[], "odd.jsonl");
        assert_eq!(one, pack("2", "b.sga", &[], "odd.jsonl"), "block {block}");
        let out = sigma(d, &["unpack", "-T", "2", "a.sga"], None);
        assert_ok(&out);
        assert!(out.stdout == input, "block {block}: unpack differs");
        for (n, line) in lines.iter().enumerate() {
            let out = sigma(d, &["get", "a.sga", &n.to_string()], None);
            assert_ok(&out);
            assert_eq!(out.stdout, *line, "block {block}, line {n}");
        }
        // -v names the page a record was decoded with (block mode) or its chain (records alone).
        let out = sigma(d, &["get", "-v", "a.sga", "3"], None);
        assert_ok(&out);
        let err = stderr(&out);
        let (page, chain) = (
            err.contains("record 3: in page "),
            err.contains("chain of "),
        );
        match block {
            "0" => assert!(chain && !page, "{err}"),
            "auto" => assert!(chain != page, "{err}"),
            _ => assert!(page && !chain, "block {block}: {err}"),
        }
        pack("2", "t.sga", &["--field", "text"], "chat.jsonl");
        let out = sigma(d, &["unpack", "t.sga"], None);
        assert_ok(&out);
        assert_eq!(texts(&out.stdout), want, "block {block}");
        for n in [0, 7, want.len() - 1] {
            let out = sigma(d, &["get", "--raw", "t.sga", &n.to_string()], None);
            assert_ok(&out);
            assert_eq!(out.stdout, want[n].as_bytes(), "block {block}, text {n}");
        }
    }
    for bad in ["max", "65MiB", "1X"] {
        let args = ["pack", "-f", "--block", bad, "-o", "c.sga", "chat.jsonl"];
        let out = sigma(d, &args, None);
        assert!(!out.status.success(), "{bad}");
        let err = stderr(&out);
        assert!(err.contains("--block <SIZE>"), "{bad}: {err}");
    }
}

#[test]
fn context_keys_are_field_paths_and_keep_types_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = concat!(
        "{\"m\": {\"c\": 5}, \"text\": \"number five\"}\n",
        "{\"m\": {\"c\": \"5\"}, \"text\": \"string five\"}\n",
        "{\"m\": {\"c\": 5}, \"text\": \"number five again\"}\n",
        "{\"text\": \"no key\"}\n",
    );
    fs::write(d.join("k.jsonl"), input).unwrap();
    let args = ["pack", "--context-key", "m.c", "-o", "k.sga", "k.jsonl"];
    assert_ok(&sigma(d, &args, None));
    assert_eq!(
        sigma(d, &["unpack", "k.sga"], None).stdout,
        input.as_bytes()
    );
    let out = sigma(d, &["ls", "--json", "k.sga"], None);
    assert_ok(&out);
    let rows: Vec<Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<&Value> = rows[..4].iter().map(|r| &r["key"]).collect();
    assert_eq!(
        keys,
        [
            &Value::from(5),
            &Value::from("5"),
            &Value::from(5),
            &Value::Null
        ]
    );
    // The text listing has a key column, from the archive's key table.
    let out = sigma(d, &["ls", "k.sga"], None);
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let key_at = lines[0].find(" key ").expect("a key column") + 1;
    let frames_at = lines[0].find("frames").unwrap();
    assert!(key_at < frames_at, "{text}");
    let column: Vec<&str> = lines[1..5]
        .iter()
        .map(|l| l[key_at..].split_whitespace().next().unwrap())
        .collect();
    assert_eq!(column, ["5", "\"5\"", "5", "-"], "{text}");
    let groups: Vec<u64> = rows[..4]
        .iter()
        .map(|r| r["context"].as_u64().unwrap())
        .collect();
    assert_eq!(groups[0], groups[2], "the same key, the same group");
    assert_ne!(groups[0], groups[1], "5 and \"5\" are different keys");
    let err = assert_fails(&sigma(
        d,
        &["pack", "--context-key", "m..c", "-o", "x.sga", "k.jsonl"],
        None,
    ));
    assert!(err.contains("not a field path"), "{err}");

    // An archive of version 2 (no key table, no flags: what earlier builds wrote) still
    // lists its keys, read from the lines.
    let args = [
        "pack",
        "-f",
        "--no-json-form",
        "--no-primer",
        "--no-coded-index",
        "--block",
        "0",
        "--context-key",
        "m.c",
        "-o",
        "k.sga",
        "k.jsonl",
    ];
    assert_ok(&sigma(d, &args, None));
    let v2 = as_version_2(
        &fs::read(d.join("k.sga")).unwrap(),
        b"\x02\x02\x35\x04\x225\x22",
    );
    fs::write(d.join("v2.sga"), v2).unwrap();
    let out = sigma(d, &["ls", "--json", "v2.sga"], None);
    assert_ok(&out);
    let rows: Vec<Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let v2_keys: Vec<&Value> = rows[..4].iter().map(|r| &r["key"]).collect();
    assert_eq!(v2_keys, keys);
    assert_eq!(
        sigma(d, &["unpack", "v2.sga"], None).stdout,
        input.as_bytes()
    );
}

/// A version-3 archive (records coded alone, no primer, no references) made a version-2 one:
/// its primer section (`00`), page size (`00`) and key table (`table`, which ends right before
/// the index CRC) removed, context ids in the tags made absolute, the index CRC, the index
/// offset, the version and the header CRC rewritten (FORMAT.md §5.1).
fn as_version_2(v3: &[u8], table: &[u8]) -> Vec<u8> {
    use sigmalang::internals::checksum::crc32c;
    use sigmalang::internals::varint;
    let n = v3.len();
    assert_eq!(v3[4], 3);
    // Flag bit 2 (copies allowed, FORMAT.md §5.8) at most, and no copy below: cleared.
    assert_eq!(v3[6] & !4, 0, "no flags but copies");
    assert_eq!(v3[7], 0, "no flags");
    let index_off = u64::from_le_bytes(v3[n - 12..n - 4].try_into().unwrap()) as usize;
    let crc_at = n - 16;
    assert_eq!(&v3[crc_at - table.len()..crc_at], table, "the key table");
    // Head: header, metadata (a one-byte length), then the primer section `00`.
    let meta_len = v3[20] as usize;
    assert!(meta_len < 0x80, "a one-byte metadata length");
    let primer_at = 21 + meta_len + 4;
    assert_eq!(v3[primer_at], 0, "no primer");
    let mut b = v3[..primer_at].to_vec();
    b.extend_from_slice(&v3[primer_at + 1..index_off]);
    let new_index_off = b.len() as u64;
    // Index: six header fields, the page size (0), the entries, the block CRCs.
    let idx = &v3[index_off..crc_at - table.len()];
    let mut pos = 0;
    let mut out = Vec::new();
    let mut fields = [0u64; 7];
    for f in &mut fields {
        *f = varint::read(idx, &mut pos, 0).unwrap();
    }
    assert_eq!(fields[6], 0, "records coded alone");
    for f in &fields[..6] {
        varint::write(&mut out, *f);
    }
    let mut prev = 0u64;
    for _ in 0..fields[0] {
        let len = varint::read(idx, &mut pos, 0).unwrap();
        let tag = varint::read(idx, &mut pos, 0).unwrap();
        assert_eq!(tag & 4, 0, "no references");
        assert_ne!(tag & 3, 3, "no copies");
        let cid = match tag >> 3 {
            0 => prev,
            c => c - 1,
        };
        prev = cid;
        varint::write(&mut out, len);
        varint::write(&mut out, cid << 3 | (tag & 3));
    }
    out.extend_from_slice(&idx[pos..]);
    out.extend_from_slice(&crc32c(&out).to_le_bytes());
    b.extend_from_slice(&out);
    b.extend_from_slice(&new_index_off.to_le_bytes());
    b.extend_from_slice(&v3[n - 4..]);
    b[4] = 2;
    b[6] = 0;
    let crc = crc32c(&b[..16]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn pack_field_rejects_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&str, &str); 5] = [
        (
            "{\"text\": \"a\"}\n{\"role\": \"user\"}\n",
            "in.jsonl:2: no field \"text\"",
        ),
        (
            "{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n",
            "in.jsonl:2: empty line",
        ),
        (
            "{\"text\": 5}\n",
            "in.jsonl:1: field \"text\" is a number, not a string",
        ),
        (
            "{\"text\": \"a\"}\n{\"text\": \"a\"\n",
            "in.jsonl:2: invalid JSON",
        ),
        ("[\"text\"]\n", "in.jsonl:1: not a JSON object"),
    ];
    for (input, expected) in cases {
        fs::write(d.join("in.jsonl"), input).unwrap();
        let args = ["pack", "--field", "text", "-o", "a.sga", "in.jsonl"];
        let err = assert_fails(&sigma(d, &args, None));
        assert!(err.contains(expected), "{input:?}: {err}");
        assert_eq!(listing(d), names(&["in.jsonl"]), "no output left");
    }
    // No final newline, and an empty input, are fine.
    fs::write(d.join("in.jsonl"), "{\"text\": \"last\"}").unwrap();
    let args = ["pack", "--field", "text", "-o", "a.sga", "in.jsonl"];
    assert_ok(&sigma(d, &args, None));
    assert_eq!(sigma(d, &["get", "a.sga", "0"], None).stdout, b"last\n");
    assert_ok(&sigma(d, &["pack", "-f", "-o", "a.sga"], Some(b"")));
    let out = sigma(d, &["unpack", "a.sga"], None);
    assert_ok(&out);
    assert!(out.stdout.is_empty());
    let err = assert_fails(&sigma(d, &["get", "a.sga", "0"], None));
    assert!(err.contains("holds no records"), "{err}");
}

#[test]
fn train_formats_and_skipping() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("a.txt"), "first line\nsecond line\n").unwrap();
    fs::write(d.join("b.txt"), "third line").unwrap();
    let out = sigma(
        d,
        &[
            "train", "--format", "lines", "-o", "l.sgcb", "a.txt", "b.txt",
        ],
        None,
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains("on 3 records, 31 bytes"),
        "{}",
        stderr(&out)
    );
    let out = sigma(
        d,
        &["train", "--format", "files", "-o", "f.sgcb", "a.txt", "-"],
        Some(b"from stdin"),
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains("on 2 records, 33 bytes"),
        "{}",
        stderr(&out)
    );

    let input = "{\"text\": \"kept\"}\n{\"other\": 1}\n\n{\"text\": null}\n";
    fs::write(d.join("in.jsonl"), input).unwrap();
    let err = assert_fails(&sigma(d, &["train", "-o", "j.sgcb", "in.jsonl"], None));
    assert!(
        err.contains("in.jsonl:2: no field \"text\"") && err.contains("--skip-missing"),
        "{err}"
    );
    let out = sigma(
        d,
        &["train", "--skip-missing", "-o", "j.sgcb", "in.jsonl"],
        None,
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains("on 1 record (3 lines skipped)"),
        "{}",
        stderr(&out)
    );

    let err = assert_fails(&sigma(d, &["train", "-o", "e.sgcb", "-"], Some(b"")));
    assert!(err.contains("no records to train on"), "{err}");
    let err = assert_fails(&sigma(
        d,
        &[
            "train",
            "--format",
            "lines",
            "--max-order",
            "99",
            "-o",
            "e.sgcb",
            "a.txt",
        ],
        None,
    ));
    assert!(err.contains("max order"), "{err}");
    assert_eq!(
        listing(d),
        names(&["a.txt", "b.txt", "f.sgcb", "in.jsonl", "j.sgcb", "l.sgcb"])
    );
}

#[test]
fn records_that_are_not_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Only the library can put bytes that are not UTF-8 in an archive.
    let file = fs::File::create(d.join("bin.sga")).unwrap();
    let codebook = sigmalang::Codebook::default_codebook();
    let mut w = sigmalang::ArchiveWriter::new(file, codebook, b"field=body\n").unwrap();
    w.add(b"fine").unwrap();
    w.add(b"\xff\xfe bytes").unwrap();
    w.finish().unwrap();

    let err = assert_fails(&sigma(d, &["unpack", "-o", "out.jsonl", "bin.sga"], None));
    assert!(err.contains("record 1 is not valid UTF-8"), "{err}");
    assert_eq!(listing(d), names(&["bin.sga"]));
    let raw = sigma(d, &["get", "--raw", "bin.sga", "1"], None);
    assert_ok(&raw);
    assert_eq!(raw.stdout, b"\xff\xfe bytes");
    let first = sigma(d, &["get", "bin.sga", "0"], None);
    assert_eq!(first.stdout, b"fine\n");
}

/// `--level` picks a preset (a larger level keeps more contexts); explicit options override
/// it; a bad `--min-gain` or level is refused before any work.
#[test]
fn train_levels_and_min_gain() {
    let dir = setup();
    let d = dir.path();
    train(d, "fast.sgcb", &["--level", "fast"]);
    train(d, "max.sgcb", &["-l", "max"]);
    train(d, "all.sgcb", &["--level", "fast", "--min-gain", "0"]);
    let len = |n: &str| fs::metadata(d.join(n)).unwrap().len();
    assert!(
        len("fast.sgcb") < len("max.sgcb"),
        "{} {}",
        len("fast.sgcb"),
        len("max.sgcb")
    );
    assert!(
        len("fast.sgcb") < len("all.sgcb"),
        "--min-gain 0 keeps every counted context"
    );
    // Each codebook codes the records.
    for m in ["fast.sgcb", "max.sgcb", "all.sgcb"] {
        let out = sigma(
            d,
            &["pack", "-q", "-m", m, "-o", "x.sga", "-f", "chat.jsonl"],
            None,
        );
        assert_ok(&out);
        let out = sigma(d, &["unpack", "-m", m, "x.sga"], None);
        assert_ok(&out);
        assert_eq!(texts(&out.stdout), texts(FIXTURE.as_bytes()), "{m}");
    }
    let err = assert_fails(&sigma(
        d,
        &["train", "-o", "bad.sgcb", "--min-gain=-1", "chat.jsonl"],
        None,
    ));
    assert!(err.contains("--min-gain"), "{err}");
    // A usage error: clap's message (with the possible values), exit 1.
    let out = sigma(
        d,
        &["train", "-o", "bad.sgcb", "--level", "medium", "chat.jsonl"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("medium") && stderr(&out).contains("fast"),
        "{}",
        stderr(&out)
    );
    assert!(!d.join("bad.sgcb").exists());
}

/// Every dev corpus file (`../shared/corpus`, beside the repository; skipped when it is not
/// there) packs whole and unpacks byte for byte, and `get` prints its lines exactly: chat,
/// the request log grouped by conversation, code and short lines.
#[test]
#[ignore = "reads the development corpus; run with --ignored"]
fn dev_corpus_round_trips_whole_lines() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if !corpus.is_dir() {
        eprintln!("no corpus at {}: skipped", corpus.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, key, block) in [
        ("chat-dev.jsonl", None, "0"),
        ("histories-dev.jsonl", Some("conversation"), "0"),
        ("histories-dev.jsonl", None, "0"),
        ("code-dev.jsonl", None, "0"),
        ("short-dev.jsonl", None, "0"),
        ("chat-dev.jsonl", None, "64KiB"),
        ("histories-dev.jsonl", Some("conversation"), "1MiB"),
        ("code-dev.jsonl", None, "1MiB"),
        ("short-dev.jsonl", None, "16KiB"),
    ] {
        let input = corpus.join(name);
        let original = fs::read(&input).unwrap();
        let mut args = vec!["pack", "-q", "-f", "--block", block, "-o", "a.sga"];
        if let Some(key) = key {
            args.extend(["--context-key", key]);
        }
        let input_arg = input.to_str().unwrap();
        args.push(input_arg);
        assert_ok(&sigma(d, &args, None));
        let out = sigma(d, &["unpack", "a.sga"], None);
        assert_ok(&out);
        assert!(
            out.stdout == original,
            "{name}: unpack differs from the input"
        );
        let lines: Vec<&[u8]> = original.split_inclusive(|&b| b == b'\n').collect();
        for n in [0, lines.len() / 3, lines.len() / 2, lines.len() - 1] {
            let out = sigma(d, &["get", "a.sga", &n.to_string()], None);
            assert_ok(&out);
            assert!(out.stdout == lines[n], "{name}: line {n} differs");
        }
    }
}

/// JSON lines of two topics the codebook does not know, sorted (as files sorted by crate or
/// service are): Rust-like code, then API documents; `n` lines in all.
fn two_topics(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let text = if i < n / 2 {
            format!(
                "    let parse_header_{} = self.body_offset(&mut pos, {})?; // decode_run {}",
                i % 11,
                i * 31 % 97,
                i % 7
            )
        } else {
            format!(
                "{{\"Service\": \"svc{}\", \"Operation\": \"DescribeWidgetQuota{}\", \"MaxItems\": {}}}",
                i % 9,
                i % 13,
                i * 17 % 1000
            )
        };
        let line = serde_json::json!({"id": i, "group": i % 5, "text": text});
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// `sigma pack` of a file samples the primer from all of it (runs of lines at evenly spaced
/// offsets); the archive is the same on any number of threads, reads back exactly, and with a
/// sorted file is smaller than the same primer size of its first lines (standard input).
#[test]
fn a_file_primer_is_sampled_from_all_of_it() {
    let d = tempfile::tempdir().unwrap();
    let input = two_topics(6000);
    fs::write(d.path().join("t.jsonl"), &input).unwrap();
    let read = |name: &str| fs::read(d.path().join(name)).unwrap();
    // `sigma unpack NAME` gives the input back (its texts, with `--field`).
    let unpacks_exactly = |name: &str, field: bool| {
        let out = sigma(d.path(), &["unpack", name], None);
        assert_ok(&out);
        if field {
            assert_eq!(texts(&out.stdout), texts(input.as_bytes()));
        } else {
            assert_eq!(out.stdout, input.as_bytes());
        }
    };
    for field in [true, false] {
        let mut packed = Vec::new();
        for threads in ["1", "2"] {
            let mut args = vec!["pack", "-q", "-f", "-T", threads, "--primer", "64"];
            if field {
                args.extend(["--field", "text"]);
            }
            args.extend(["t.jsonl", "-o", "a.sga"]);
            assert_ok(&sigma(d.path(), &args, None));
            packed.push(read("a.sga"));
        }
        assert_eq!(packed[0], packed[1], "--field {field}: -T 1 and -T 2");
        unpacks_exactly("a.sga", field);
        let line = input.lines().nth(4321).unwrap();
        let got = sigma(d.path(), &["get", "a.sga", "4321", "--field", "text"], None);
        assert_ok(&got);
        let want: Value = serde_json::from_str(line).unwrap();
        assert_eq!(stdout_text(&got).trim_end(), want["text"].as_str().unwrap());
        // Standard input: the first lines make the primer, which knows one topic only.
        let mut args = vec!["pack", "-q", "-f", "--primer", "64"];
        if field {
            args.extend(["--field", "text"]);
        }
        args.extend(["-o", "s.sga"]);
        let out = sigma(d.path(), &args, Some(input.as_bytes()));
        assert_ok(&out);
        let stdin = read("s.sga");
        assert!(
            packed[0].len() < stdin.len(),
            "--field {field}: file {} vs standard input {}",
            packed[0].len(),
            stdin.len()
        );
        unpacks_exactly("s.sga", field);
    }
    // The default primer (a quarter of the records' bytes) and a context key: still exact.
    let out = sigma(
        d.path(),
        &[
            "pack",
            "-q",
            "-f",
            "--context-key",
            "group",
            "t.jsonl",
            "-o",
            "k.sga",
        ],
        None,
    );
    assert_ok(&out);
    let out = sigma(d.path(), &["unpack", "k.sga"], None);
    assert_ok(&out);
    assert_eq!(out.stdout, input.as_bytes());
}

/// Sampling a file of one line, an empty file, and a file of lines that are not JSON objects.
#[test]
fn sampled_primers_of_tiny_and_odd_files() {
    let d = tempfile::tempdir().unwrap();
    let mut odd = String::new();
    for i in 0..3000 {
        odd.push_str(match i % 4 {
            0 => "not json at all, line of plain text\n",
            1 => "\n",
            2 => "[1, 2, 3]\n",
            _ => "{\"text\": \"an object among odd lines\"}\n",
        });
    }
    odd.push_str("last line without a newline");
    for (name, body) in [
        ("one.jsonl", "{\"text\": \"only line\"}\n".to_string()),
        ("empty.jsonl", String::new()),
        ("odd.jsonl", odd),
    ] {
        fs::write(d.path().join(name), &body).unwrap();
        let out = sigma(d.path(), &["pack", "-q", "-f", name, "-o", "x.sga"], None);
        assert_ok(&out);
        let out = sigma(d.path(), &["unpack", "x.sga"], None);
        assert_ok(&out);
        assert_eq!(out.stdout, body.as_bytes(), "{name}");
    }
    let out = sigma(
        d.path(),
        &[
            "pack",
            "-q",
            "-f",
            "--field",
            "text",
            "one.jsonl",
            "-o",
            "y.sga",
        ],
        None,
    );
    assert_ok(&out);
    let out = sigma(d.path(), &["get", "y.sga", "0"], None);
    assert_ok(&out);
    assert_eq!(stdout_text(&out), "only line\n");
}
