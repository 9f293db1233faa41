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

    // Standard input (no FILE, or `-`) packs to the same archive.
    let archive = fs::read(d.join("chat.sga")).unwrap();
    assert_ok(&sigma(
        d,
        &["pack", "-o", "stdin.sga"],
        Some(FIXTURE.as_bytes()),
    ));
    assert_eq!(fs::read(d.join("stdin.sga")).unwrap(), archive);
    assert_ok(&sigma(
        d,
        &["pack", "-o", "dash.sga", "-"],
        Some(FIXTURE.as_bytes()),
    ));
    assert_eq!(fs::read(d.join("dash.sga")).unwrap(), archive);
    assert_eq!(
        listing(d),
        names(&[
            "back.jsonl",
            "chat.jsonl",
            "chat.sga",
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
    let err = assert_fails(&sigma(
        d,
        &["get", "--field", "nope", "chat.sga", "0"],
        None,
    ));
    assert!(err.contains("record 0 has no field \"nope\""), "{err}");
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
    assert_ok(&sigma(d, &["pack", "-o", "chat.sga", "chat.jsonl"], None));
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
        warning.contains("odd.jsonl: 9 lines are not JSON objects (")
            && warning.contains("2 blank")
            && warning.contains("1 byte-order mark")
            && warning.contains("1 not UTF-8")
            && warning.contains("the first is line 2"),
        "{warning}"
    );
    let out = sigma(d, &["unpack", "a.sga"], None);
    assert_ok(&out);
    assert_eq!(out.stdout, input, "unpack gives back the input exactly");
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
    assert!(err.contains("odd.jsonl:2: blank line"), "{err}");
    fs::write(d.join("bad.jsonl"), b"{\"a\": 1}\n{\"a\": \xff}\n").unwrap();
    let err = assert_fails(&sigma(
        d,
        &["pack", "--strict", "-o", "b.sga", "bad.jsonl"],
        None,
    ));
    assert!(
        err.contains("bad.jsonl:2:7: not valid UTF-8 at column 7"),
        "{err}"
    );
    fs::write(d.join("bad.jsonl"), b"{\"a\": 1}\n{\"a\": tru}\n").unwrap();
    let err = assert_fails(&sigma(
        d,
        &["pack", "--strict", "-o", "b.sga", "bad.jsonl"],
        None,
    ));
    assert!(err.contains("bad.jsonl:2: invalid JSON at column"), "{err}");
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
    input.extend_from_slice(b"{\"id\": 3, \"text\": \"crlf\"}\r\n{\"id\": 4}");
    fs::write(d.join("odd.jsonl"), &input).unwrap();
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let want = texts(FIXTURE.as_bytes());
    for block in ["1", "200", "4KiB", "1MiB"] {
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
