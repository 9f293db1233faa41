//! End-to-end tests of `-T/--threads`, `--no-pool` and `sigma stats`: the number of threads and
//! buffer pooling never change an archive or a stream, nor what `decompress`, `unpack`, `ls` and
//! `verify` print (intact or damaged input), and `stats` reports sane numbers.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;

/// The fixture: 50 chat lines with unicode, emoji, escapes, NULs and empty strings.
const FIXTURE: &str = include_str!("fixtures/chat.jsonl");

/// The fixture's lines `copies` times over, each with a `conversation` field (one of 7) and the
/// copy's number appended to its text, so that later copies are similar but not identical.
fn many_records(copies: usize) -> String {
    let mut out = String::new();
    let mut n = 0u64;
    for copy in 0..copies {
        for line in FIXTURE.lines() {
            let mut v: Value = serde_json::from_str(line).expect("a JSON line");
            let text = v["text"].as_str().expect("a text field");
            v["text"] = Value::from(format!("{text} ({copy})"));
            v["conversation"] = Value::from(format!("c{}", n % 7));
            out.push_str(&v.to_string());
            out.push('\n');
            n += 1;
        }
    }
    out
}

/// A directory holding `chat.jsonl` (the fixture) and `many.jsonl` (400 records).
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("chat.jsonl"), FIXTURE).unwrap();
    fs::write(dir.path().join("many.jsonl"), many_records(8)).unwrap();
    dir
}

/// Packs `input` to `output` with `extra` options and returns the archive's bytes.
fn pack(d: &Path, input: &str, output: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["pack", "-q", "-o", output];
    args.extend_from_slice(extra);
    args.push(input);
    let out = sigma(d, &args, None);
    assert_ok(&out);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    fs::read(d.join(output)).unwrap()
}

/// Runs `sigma stats --json` with `extra` options on `input` and returns the parsed object.
fn stats_json(d: &Path, input: &str, extra: &[&str]) -> Value {
    let mut args = vec!["stats", "--json"];
    args.extend_from_slice(extra);
    args.push(input);
    let out = sigma(d, &args, None);
    assert_ok(&out);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let text = stdout_text(&out);
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    serde_json::from_str(&text).expect("stats --json prints JSON")
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not an integer in {v}"))
}

fn f64_at(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is not a number in {v}"))
}

#[test]
fn pack_threads_do_not_change_the_archive() {
    let dir = setup();
    let d = dir.path();
    for (input, key) in [
        ("many.jsonl", None),
        ("many.jsonl", Some("conversation")),
        ("chat.jsonl", None),
    ] {
        let key_args: Vec<&str> = key.map_or(vec![], |k| vec!["--context-key", k]);
        let with = |threads: &'static str| {
            let mut extra = vec!["-T", threads];
            extra.extend_from_slice(&key_args);
            extra
        };
        let one = pack(d, input, "t1.sga", &with("1"));
        for threads in ["2", "3", "0"] {
            let name = format!("t{threads}.sga");
            let other = pack(d, input, &name, &with(threads));
            assert!(
                one == other,
                "{input} {key:?}: -T {threads} differs from -T 1"
            );
            fs::remove_file(d.join(&name)).unwrap();
        }
        // The default is all cores, which must give the same archive too.
        let default = pack(d, input, "default.sga", &key_args);
        assert!(one == default, "{input} {key:?}: default -T differs");
        fs::remove_file(d.join("default.sga")).unwrap();

        // And it unpacks to the input's texts.
        let out = sigma(d, &["unpack", "t1.sga"], None);
        assert_ok(&out);
        let texts = |jsonl: &str| -> Vec<String> {
            jsonl
                .lines()
                .map(|l| {
                    let v: Value = serde_json::from_str(l).unwrap();
                    v["text"].as_str().unwrap().to_string()
                })
                .collect()
        };
        let original = fs::read_to_string(d.join(input)).unwrap();
        assert_eq!(texts(&stdout_text(&out)), texts(&original));
        fs::remove_file(d.join("t1.sga")).unwrap();
    }
}

#[test]
fn pack_verbose_names_the_threads() {
    let dir = setup();
    let d = dir.path();
    let out = sigma(
        d,
        &["pack", "-v", "-T", "2", "-o", "a.sga", "many.jsonl"],
        None,
    );
    assert_ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("400 records") && err.contains("2 threads"),
        "{err}"
    );
    let out = sigma(
        d,
        &["pack", "-v", "-T", "1", "-o", "b.sga", "many.jsonl"],
        None,
    );
    assert!(stderr(&out).contains("; 1 thread)"), "{}", stderr(&out));
}

#[test]
fn compress_threads_do_not_change_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // About 2.8 MB: three chunks of the stream, so several workers have work at once.
    let text = many_records(500);
    assert!(text.len() > (2 << 20), "{} bytes", text.len());
    fs::write(d.join("big.jsonl"), &text).unwrap();

    let compress = |threads: &str| {
        let out = sigma(d, &["-c", "-T", threads, "big.jsonl"], None);
        assert_ok(&out);
        assert!(out.stderr.is_empty());
        out.stdout
    };
    let one = compress("1");
    assert!(one == compress("2"), "-T 2 differs from -T 1");
    assert!(one == compress("0"), "-T 0 differs from -T 1");
    // The subcommand and standard input too.
    let out = sigma(
        d,
        &["compress", "--threads", "3", "-"],
        Some(text.as_bytes()),
    );
    assert_ok(&out);
    assert!(out.stdout == one, "compress -T 3 from stdin differs");

    // It decompresses to the input with any number of threads, and a truncated stream fails
    // after the same output.
    for threads in ["1", "2", "3"] {
        let back = sigma(d, &["-d", "-T", threads], Some(&one));
        assert_ok(&back);
        assert!(back.stdout == text.as_bytes(), "round trip, -T {threads}");
        let cut = &one[..one.len() * 2 / 3];
        let broken = sigma(d, &["-d", "-c", "-T", threads], Some(cut));
        let message = assert_fails(&broken);
        assert!(message.contains("truncated"), "{message}");
        let one_thread = sigma(d, &["-d", "-c", "-T", "1"], Some(cut));
        assert!(
            broken.stdout == one_thread.stdout,
            "partial output, -T {threads}"
        );
    }
    assert_eq!(listing(d), names(&["big.jsonl"]));
}

#[test]
fn archive_readers_threads_do_not_change_their_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 3,000 records coded alone in 188 blocks: several runs of 64 blocks for the workers.
    fs::write(d.join("many.jsonl"), many_records(60)).unwrap();
    let archive = pack(
        d,
        "many.jsonl",
        "many.sga",
        &["--block", "0", "--context-key", "conversation"],
    );
    let run = |args: &[&str]| {
        let out = sigma(d, args, None);
        assert_ok(&out);
        out.stdout
    };
    let unpacked = run(&["unpack", "-T", "1", "many.sga"]);
    let listed = run(&["ls", "--json", "-T", "1", "many.sga"]);
    let verified = run(&["verify", "-T", "1", "many.sga"]);
    for threads in ["2", "3", "0"] {
        assert!(
            run(&["unpack", "-T", threads, "many.sga"]) == unpacked,
            "unpack -T {threads}"
        );
        assert!(
            run(&["ls", "--json", "-T", threads, "many.sga"]) == listed,
            "ls -T {threads}"
        );
        assert!(
            run(&["verify", "-T", threads, "many.sga"]) == verified,
            "verify -T {threads}"
        );
    }
    // Damaged: the same records are skipped and named, the same damage is reported.
    let mut bad = archive.clone();
    for at in [archive.len() / 5, archive.len() / 2, archive.len() * 3 / 4] {
        bad[at] ^= 0x04;
    }
    fs::write(d.join("bad.sga"), &bad).unwrap();
    let salvage = |threads: &str| {
        let out = sigma(d, &["unpack", "--salvage", "-T", threads, "bad.sga"], None);
        assert_eq!(out.status.code(), Some(1));
        (stderr(&out), out.stdout)
    };
    let report = |threads: &str| {
        let out = sigma(d, &["verify", "-T", threads, "bad.sga"], None);
        assert_fails(&out);
        out.stdout
    };
    let (skipped, kept) = salvage("1");
    assert!(skipped.lines().count() > 3, "{skipped}");
    assert!(!kept.is_empty());
    assert!((skipped, kept) == salvage("2"), "unpack --salvage -T 2");
    assert!(!report("1").is_empty());
    assert!(report("1") == report("2"), "verify -T 2");
}

#[test]
fn no_pool_changes_nothing() {
    let dir = setup();
    let d = dir.path();
    for key_args in [vec![], vec!["--context-key", "conversation"]] {
        let mut extra = key_args.clone();
        let pooled = pack(d, "many.jsonl", "pooled.sga", &extra);
        extra.push("--no-pool");
        let unpooled = pack(d, "many.jsonl", "unpooled.sga", &extra);
        assert!(
            pooled == unpooled,
            "{key_args:?}: --no-pool changed the archive"
        );
        extra.extend_from_slice(&["-T", "1"]);
        let serial = pack(d, "many.jsonl", "serial.sga", &extra);
        assert!(pooled == serial, "{key_args:?}: --no-pool -T 1 changed it");
        for name in ["pooled.sga", "unpooled.sga", "serial.sga"] {
            fs::remove_file(d.join(name)).unwrap();
        }
    }

    // stats measures the same coding either way; only the pool's counters differ.
    let on = stats_json(d, "many.jsonl", &[]);
    let off = stats_json(d, "many.jsonl", &["--no-pool"]);
    for field in [
        "/records",
        "/input_bytes",
        "/output_bytes",
        "/payload_bytes",
    ] {
        assert_eq!(u64_at(&on, field), u64_at(&off, field), "{field}");
    }
    assert_eq!(on["pool_enabled"], true);
    assert_eq!(off["pool_enabled"], false);
    let acquires = u64_at(&off, "/buffer_pool/total_acquires");
    assert!(acquires > 0);
    assert_eq!(
        u64_at(&off, "/buffer_pool/overflow_allocations"),
        acquires,
        "without pooling every acquire allocates"
    );
    assert_eq!(u64_at(&off, "/buffer_pool/available_buffers"), 0);
    assert!(
        f64_at(&off, "/heap/allocations_per_record") >= 1.0,
        "without pooling records allocate: {off}"
    );
}

#[test]
fn stats_reports_sane_numbers() {
    let dir = setup();
    let d = dir.path();
    let total: u64 = FIXTURE
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap().len() as u64
        })
        .sum();
    for (input, records, bytes, extra) in [
        ("chat.jsonl", 50, total, vec![]),
        ("many.jsonl", 400, 0, vec!["--context-key", "conversation"]),
    ] {
        let s = stats_json(d, input, &extra);
        assert_eq!(u64_at(&s, "/records"), records, "{s}");
        if bytes > 0 {
            assert_eq!(u64_at(&s, "/input_bytes"), bytes);
        }
        let input_bytes = u64_at(&s, "/input_bytes");
        let output_bytes = u64_at(&s, "/output_bytes");
        assert!(
            output_bytes > u64_at(&s, "/payload_bytes"),
            "header and index"
        );
        assert!(output_bytes > 0 && output_bytes < input_bytes, "{s}");
        let ratio = f64_at(&s, "/ratio");
        assert!((ratio - input_bytes as f64 / output_bytes as f64).abs() < 1e-9);
        assert!(u64_at(&s, "/stored_records") <= records);

        let (p50, p99, max) = (
            u64_at(&s, "/encode_ns/p50"),
            u64_at(&s, "/encode_ns/p99"),
            u64_at(&s, "/encode_ns/max"),
        );
        let (mean, total) = (
            u64_at(&s, "/encode_ns/mean"),
            u64_at(&s, "/encode_ns/total"),
        );
        assert!(0 < p50 && p50 <= p99 && p99 <= max, "{s}");
        assert!(mean <= max && mean * records <= total && total <= max * records);
        assert!(f64_at(&s, "/encode_mb_per_s") > 0.0);

        assert!(
            u64_at(&s, "/buffer_pool/total_acquires") > records,
            "the encoder draws its buffers from the pool: {s}"
        );
        assert!(f64_at(&s, "/buffer_pool/overflow_rate") < 0.5, "{s}");
        assert!(u64_at(&s, "/buffer_pool/pool_size") > 0);
        assert!(u64_at(&s, "/buffer_pool/buffer_size") > 0);
        let frames =
            u64_at(&s, "/frame_pool/frames_created") + u64_at(&s, "/frame_pool/frames_reused");
        assert!(frames > 0 && frames <= 2 * records, "{s}");

        assert_eq!(
            u64_at(&s, "/heap/steady_state_records"),
            records - records / 2
        );
        let per_record = f64_at(&s, "/heap/allocations_per_record");
        assert!(
            per_record < 1.0,
            "steady state allocates less than once per record: {s}"
        );
        assert_eq!(
            per_record,
            u64_at(&s, "/heap/steady_state_allocations") as f64
                / u64_at(&s, "/heap/steady_state_records") as f64
        );
        let peak = u64_at(&s, "/heap/peak_bytes");
        let encoding_peak = u64_at(&s, "/heap/encoding_peak_bytes");
        let before = u64_at(&s, "/heap/live_bytes_before");
        assert!(
            0 < before && before <= encoding_peak && encoding_peak <= peak,
            "{s}"
        );
        assert!(peak < 1 << 30, "{s}");
    }
}

#[test]
fn stats_prints_a_table() {
    let dir = setup();
    let d = dir.path();
    let out = sigma(d, &["stats", "chat.jsonl"], None);
    assert_ok(&out);
    assert!(out.stderr.is_empty());
    let text = stdout_text(&out);
    for label in [
        "records       50 ",
        "input bytes",
        "output bytes",
        "ratio",
        "encode time   p50 ",
        "buffer pool",
        "frame pool",
        "allocations per record in steady state",
        "buffer pool on)",
    ] {
        assert!(text.contains(label), "{label:?} in {text}");
    }
    let out = sigma(d, &["stats", "--no-pool", "-"], Some(FIXTURE.as_bytes()));
    assert_ok(&out);
    let text = stdout_text(&out);
    assert!(
        text.contains("<stdin>") && text.contains("buffer pool off)"),
        "{text}"
    );
}

#[test]
fn stats_errors() {
    let dir = setup();
    let d = dir.path();
    fs::write(d.join("bad.jsonl"), "{\"text\": \"a\"}\n{\"other\": 1}\n").unwrap();
    let err = assert_fails(&sigma(d, &["stats", "bad.jsonl"], None));
    assert!(err.contains("bad.jsonl:2: no field \"text\""), "{err}");
    let err = assert_fails(&sigma(d, &["stats", "missing.jsonl"], None));
    assert!(err.contains("missing.jsonl"), "{err}");
    let err = assert_fails(&sigma(d, &["stats", "--field", "", "chat.jsonl"], None));
    assert!(err.contains("--field"), "{err}");
    // An empty input has no records and no steady state.
    fs::write(d.join("empty.jsonl"), "").unwrap();
    let s = stats_json(d, "empty.jsonl", &[]);
    assert_eq!(u64_at(&s, "/records"), 0);
    assert!(s["heap"]["allocations_per_record"].is_null(), "{s}");
    assert_eq!(u64_at(&s, "/encode_ns/p99"), 0);
}
