//! End-to-end tests of context coding from the command line: `pack --context-key` and the
//! keyframe options, `ls`, `verify`, `get -v` and `unpack --salvage`, on logs of chat requests
//! that repeat their conversation so far (generated here: 3 conversations of 12 requests).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::*;
use serde_json::{json, Value};

/// Conversations in the fixtures.
const CONVERSATIONS: usize = 3;
/// Requests per conversation.
const TURNS: usize = 12;
/// Records in the fixtures.
const RECORDS: usize = CONVERSATIONS * TURNS;

/// Options giving every level in 12 requests: root, 3 deltas, keyframe, 3 deltas, root, ...
const SMALL_GROUPS: [&str; 6] = [
    "--keyframe-interval",
    "4",
    "--keyframes-per-root",
    "2",
    "--frames",
    "2",
];

/// The requests of conversation `c`: request `t` is a chat-completion body holding the
/// conversation's first `t + 1` user messages and the `t` replies between them.
fn conversation(c: usize) -> Vec<String> {
    let topics = ["borrow checker", "async runtimes", "SQL indexes"];
    let mut messages = vec![json!({"role": "system", "content": "You are a helpful assistant."})];
    let mut bodies = Vec::new();
    for t in 0..TURNS {
        messages.push(json!({
            "role": "user",
            "content": format!("Question {t} about {}: why does case {} fail?", topics[c], 7 * t + c),
        }));
        let body = json!({"model": "chat-small", "temperature": 0.2, "messages": messages});
        bodies.push(body.to_string());
        messages.push(json!({
            "role": "assistant",
            "content": format!(
                "Case {} fails because step {t} uses a value after it moved; clone it or borrow it \
                 for shorter.\nExample:\n    let x = y.clone();",
                7 * t + c
            ),
        }));
    }
    bodies
}

/// The records in order, with their conversation: one conversation after another, or (with
/// `interleaved`) round-robin, as a log of concurrent conversations is.
fn records(interleaved: bool) -> Vec<(usize, String)> {
    let convs: Vec<Vec<String>> = (0..CONVERSATIONS).map(conversation).collect();
    let mut out = Vec::with_capacity(RECORDS);
    if interleaved {
        for t in 0..TURNS {
            for (c, conv) in convs.iter().enumerate() {
                out.push((c, conv[t].clone()));
            }
        }
    } else {
        for (c, conv) in convs.iter().enumerate() {
            out.extend(conv.iter().map(|body| (c, body.clone())));
        }
    }
    out
}

/// `records` as JSONL: `{"conversation": "cN", "text": BODY}` per line.
fn jsonl(records: &[(usize, String)]) -> String {
    records
        .iter()
        .map(|(c, text)| {
            format!(
                "{}\n",
                json!({"conversation": format!("c{c}"), "text": text})
            )
        })
        .collect()
}

/// A directory holding `inorder.jsonl` and `interleaved.jsonl`.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, interleaved) in [("inorder.jsonl", false), ("interleaved.jsonl", true)] {
        fs::write(dir.path().join(name), jsonl(&records(interleaved))).unwrap();
    }
    dir
}

/// Packs `input` into `archive` with `extra` options, every record coded alone (`--block 0`,
/// the default, given here because these tests of contexts need it: `--block auto` puts
/// records that do not repeat each other in pages).
fn pack(d: &Path, input: &str, archive: &str, extra: &[&str]) {
    let mut args = vec!["pack", "--block", "0", "--field", "text", "-o", archive];
    args.extend_from_slice(extra);
    args.push(input);
    let out = sigma(d, &args, None);
    assert_ok(&out);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

/// The `text` value of every line of `jsonl`.
fn texts(jsonl: &[u8]) -> Vec<String> {
    std::str::from_utf8(jsonl)
        .expect("JSONL is UTF-8")
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a JSON line");
            v["text"].as_str().expect("a text field").to_string()
        })
        .collect()
}

/// `sigma ls --json ARCHIVE`: the record objects and the summary.
fn ls_json(d: &Path, archive: &str) -> (Vec<Value>, Value) {
    let out = sigma(d, &["ls", "--json", archive], None);
    assert_ok(&out);
    let mut objects: Vec<Value> = stdout_text(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let summary = objects.pop().expect("a summary")["summary"].clone();
    assert!(summary.is_object(), "the last object is the summary");
    (objects, summary)
}

/// The numbers in a JSON array.
fn numbers(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_u64().expect("a number"))
        .collect()
}

/// Every record `n` needs decoded to decode itself: its chain (following `prev`) and the bank
/// roots the chain's records reference.
fn dependencies(listing: &[Value], n: usize) -> BTreeSet<u64> {
    let mut deps = BTreeSet::new();
    let mut at = Some(n as u64);
    while let Some(r) = at {
        deps.insert(r);
        deps.extend(numbers(&listing[r as usize]["references"]));
        at = listing[r as usize]["prev"].as_u64();
    }
    deps
}

/// Packs `input` with and without `--context-key` and checks that both archives give back
/// every record, through `unpack`, `unpack --salvage` and `get` of each record.
fn round_trip(input: &str, interleaved: bool) {
    let dir = setup();
    let d = dir.path();
    let expected: Vec<String> = records(interleaved).into_iter().map(|(_, t)| t).collect();
    for (archive, extra) in [
        ("plain.sga", &[][..]),
        ("keyed.sga", &["--context-key", "conversation"][..]),
    ] {
        pack(d, input, archive, extra);
        let out = sigma(d, &["unpack", archive], None);
        assert_ok(&out);
        assert_eq!(texts(&out.stdout), expected, "{archive}");
        // A clean archive salvages to the same output, successfully.
        let salvaged = sigma(d, &["unpack", "--salvage", archive], None);
        assert_ok(&salvaged);
        assert!(salvaged.stderr.is_empty(), "{}", stderr(&salvaged));
        assert_eq!(salvaged.stdout, out.stdout);
        // Every record on its own (each `get` is a fresh reader with nothing cached).
        for (n, text) in expected.iter().enumerate().rev() {
            let got = sigma(d, &["get", "--raw", archive, &n.to_string()], None);
            assert_ok(&got);
            assert_eq!(got.stdout, text.as_bytes(), "{archive} record {n}");
        }
    }
}

#[test]
fn in_order_log_round_trips_with_and_without_context_keys() {
    round_trip("inorder.jsonl", false);
}

#[test]
fn interleaved_log_round_trips_with_and_without_context_keys() {
    round_trip("interleaved.jsonl", true);
}

#[test]
fn keyed_contexts_make_interleaving_cost_nothing() {
    let dir = setup();
    let d = dir.path();
    // Without a primer: on logs this small a primer holds all of them, and every record codes
    // as a copy of its line in it, keyed or not.
    let key = ["--context-key", "conversation", "--no-primer"];
    let plain = ["--no-primer"];
    pack(d, "inorder.jsonl", "inorder.sga", &plain);
    pack(d, "inorder.jsonl", "inorder-keyed.sga", &key);
    pack(d, "interleaved.jsonl", "interleaved.sga", &plain);
    pack(d, "interleaved.jsonl", "interleaved-keyed.sga", &key);
    let size = |name: &str| fs::metadata(d.join(name)).unwrap().len() as f64;
    let keyed = size("interleaved-keyed.sga");
    for in_order in ["inorder.sga", "inorder-keyed.sga"] {
        let reference = size(in_order);
        assert!(
            (keyed - reference).abs() <= reference * 0.10,
            "interleaved keyed {keyed} vs {in_order} {reference}"
        );
    }
    let unkeyed = size("interleaved.sga");
    assert!(keyed < unkeyed, "keyed {keyed} vs unkeyed {unkeyed}");
}

#[test]
fn ls_shows_levels_and_frames_that_follow_the_options() {
    let dir = setup();
    let d = dir.path();
    let mut extra = vec!["--context-key", "conversation"];
    extra.extend_from_slice(&SMALL_GROUPS);
    pack(d, "interleaved.jsonl", "keyed.sga", &extra);
    let recs = records(true);
    let (listing, summary) = ls_json(d, "keyed.sga");
    assert_eq!(listing.len(), RECORDS);

    let mut context_of_conversation = [None; CONVERSATIONS];
    let mut position = [0usize; CONVERSATIONS];
    let mut decoded_total = 0;
    for (n, rec) in listing.iter().enumerate() {
        let (conv, text) = &recs[n];
        assert_eq!(rec["record"], n);
        assert_eq!(rec["decoded_bytes"], text.len(), "record {n}");
        decoded_total += text.len();
        // One context per conversation.
        let context = rec["context"].as_u64().unwrap();
        let known = context_of_conversation[*conv].get_or_insert(context);
        assert_eq!(*known, context, "record {n}");
        // Levels: root, 3 deltas, keyframe, 3 deltas, root, ... in every conversation.
        let p = position[*conv];
        position[*conv] += 1;
        let expected = match (p % 4, (p / 4) % 2) {
            (0, 0) => "root",
            (0, _) => "keyframe",
            _ => "delta",
        };
        assert_eq!(
            rec["level"], expected,
            "record {n} (turn {p} of conversation {conv})"
        );
        let chain = rec["chain_len"].as_u64().unwrap();
        assert!((1..=4 + 2).contains(&chain), "record {n}: chain {chain}");
        let mut walked = 0;
        let mut at = Some(n as u64);
        while let Some(r) = at {
            walked += 1;
            assert_eq!(
                listing[r as usize]["context"], context,
                "chain of record {n}"
            );
            at = listing[r as usize]["prev"].as_u64();
        }
        assert_eq!(walked, chain, "record {n}");
        // Frames: the bank references (earlier roots), then earlier records of the context.
        let references = numbers(&rec["references"]);
        let frames = numbers(&rec["frames"]);
        assert!(frames.starts_with(&references), "record {n}: {frames:?}");
        for &r in &references {
            assert!(r < n as u64, "record {n} references {r}");
            assert_eq!(
                listing[r as usize]["level"], "root",
                "record {n} references {r}"
            );
        }
        let own = &frames[references.len()..];
        match expected {
            "root" => assert!(own.is_empty(), "record {n}: {frames:?}"),
            "keyframe" => assert_eq!(own, [rec["prev"].as_u64().unwrap()], "record {n}"),
            _ => {
                assert!((1..=2).contains(&own.len()), "record {n}: {frames:?}");
                assert_eq!(own.last().copied(), rec["prev"].as_u64(), "record {n}");
                for &f in own {
                    assert_eq!(listing[f as usize]["context"], context, "record {n}");
                }
            }
        }
    }
    let ids: BTreeSet<_> = context_of_conversation.iter().collect();
    assert_eq!(ids.len(), CONVERSATIONS, "{ids:?}");

    assert_eq!(summary["records"], RECORDS);
    assert_eq!(summary["decoded_bytes"], decoded_total);
    assert_eq!(
        summary["archive_bytes"],
        fs::metadata(d.join("keyed.sga")).unwrap().len()
    );
    assert_eq!(
        summary["levels"],
        json!({"root": 6, "keyframe": 3, "delta": 27, "copy": 0})
    );
    assert_eq!(summary["keyframe_interval"], 4);
    assert_eq!(summary["keyframes_per_root"], 2);
    assert_eq!(summary["frames"], 2);
    assert_eq!(summary["damaged"], 0);
    assert!(summary["ratio"].as_f64().unwrap() > 1.0);
    assert_eq!(
        summary["codebook"],
        sigmalang::Codebook::default_codebook().id().to_string()
    );

    // Without a key the whole file is one context, starting with a root.
    pack(d, "interleaved.jsonl", "plain.sga", &SMALL_GROUPS);
    let (listing, _) = ls_json(d, "plain.sga");
    assert!(listing
        .iter()
        .all(|r| r["context"] == listing[0]["context"]));
    assert_eq!(listing[0]["level"], "root");
    assert!(listing
        .iter()
        .all(|r| r["chain_len"].as_u64().unwrap() <= 6));

    // The text listing: a header, a line per record, a summary.
    let out = sigma(d, &["ls", "keyed.sga"], None);
    assert_ok(&out);
    let text = stdout_text(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), RECORDS + 2, "{text}");
    assert!(
        lines[0].contains("level") && lines[0].contains("frames"),
        "{text}"
    );
    assert!(
        lines[1].contains(" root ") && lines[1].trim_end().ends_with('-'),
        "{text}"
    );
    let last = lines[RECORDS + 1];
    assert!(last.starts_with("36 records, "), "{last}");
    for needle in [
        "6 root, 3 keyframe, 27 delta",
        "keyframe interval 4",
        "codebook ",
    ] {
        assert!(last.contains(needle), "{needle}: {last}");
    }
}

#[test]
fn damage_reaches_only_the_records_that_depend_on_it() {
    let dir = setup();
    let d = dir.path();
    let mut extra = vec!["--context-key", "conversation"];
    extra.extend_from_slice(&SMALL_GROUPS);
    pack(d, "interleaved.jsonl", "keyed.sga", &extra);
    let expected: Vec<String> = records(true).into_iter().map(|(_, t)| t).collect();
    let (listing, _) = ls_json(d, "keyed.sga");

    // Flip a byte in the middle of record 20's payload: its whole block is damaged, and so is
    // every record that depends on a record of that block.
    let victim = 20;
    let offset = listing[victim]["offset"].as_u64().unwrap();
    let payload = listing[victim]["payload_bytes"].as_u64().unwrap();
    let mut bytes = fs::read(d.join("keyed.sga")).unwrap();
    bytes[(offset + payload / 2) as usize] ^= 0x20;
    fs::write(d.join("keyed.sga"), &bytes).unwrap();
    let block = u64::from(sigmalang::ArchiveOptions::default().get_block_records());
    let damaged_block = victim as u64 / block;
    let affected: BTreeSet<u64> = (0..RECORDS)
        .filter(|&n| {
            dependencies(&listing, n)
                .iter()
                .any(|r| r / block == damaged_block)
        })
        .map(|n| n as u64)
        .collect();
    let unaffected: Vec<u64> = (0..RECORDS as u64)
        .filter(|n| !affected.contains(n))
        .collect();
    assert!(affected.contains(&(victim as u64)));
    assert!(!unaffected.is_empty(), "{affected:?}");

    // verify names exactly the affected records.
    let out = sigma(d, &["verify", "keyed.sga"], None);
    let err = assert_fails(&out);
    assert!(
        err.contains(&format!(
            "{} of {RECORDS} records are damaged",
            affected.len()
        )),
        "{err}"
    );
    // One line per cause: the damaged block, naming every record it breaks as ranges.
    let report = stdout_text(&out);
    assert_eq!(report.lines().count(), 1, "{report}");
    let named: BTreeSet<u64> = report
        .lines()
        .flat_map(|l| {
            let rest = l
                .strip_prefix("records ")
                .or_else(|| l.strip_prefix("record "))
                .expect("record N: ... or records A-B, C: ...");
            let list = &rest[..rest.find(':').unwrap()];
            list.split(", ")
                .flat_map(|range| {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    a.parse::<u64>().unwrap()..=b.parse::<u64>().unwrap()
                })
                .collect::<Vec<u64>>()
        })
        .collect();
    assert_eq!(named, affected);
    assert!(
        report.contains(&format!(
            "(record {}, in block {damaged_block} (",
            affected.first().unwrap()
        )),
        "the line gives the message of the first record of the damaged block: {report}"
    );
    let quiet = sigma(d, &["verify", "-q", "keyed.sga"], None);
    assert_fails(&quiet);
    assert_eq!(quiet.stdout, out.stdout, "-q still names the damage");

    // get: unaffected records still decode, affected ones fail naming themselves.
    for &n in [unaffected[0], *unaffected.last().unwrap()].iter() {
        let got = sigma(d, &["get", "--raw", "keyed.sga", &n.to_string()], None);
        assert_ok(&got);
        assert_eq!(got.stdout, expected[n as usize].as_bytes());
    }
    let err = assert_fails(&sigma(d, &["get", "keyed.sga", &victim.to_string()], None));
    assert!(err.contains(&format!("record {victim}")), "{err}");

    // unpack is all or nothing.
    let err = assert_fails(&sigma(d, &["unpack", "-o", "out.jsonl", "keyed.sga"], None));
    assert!(err.contains("checksum mismatch"), "{err}");
    assert_eq!(
        common::listing(d),
        names(&["inorder.jsonl", "interleaved.jsonl", "keyed.sga"])
    );

    // unpack --salvage writes every unaffected record, names the others, and still fails.
    let out = sigma(
        d,
        &["unpack", "--salvage", "-o", "out.jsonl", "keyed.sga"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let back = fs::read(d.join("out.jsonl")).unwrap();
    let want: Vec<String> = unaffected
        .iter()
        .map(|&n| expected[n as usize].clone())
        .collect();
    assert_eq!(texts(&back), want);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), affected.len() + 1, "{err}");
    for (line, n) in lines.iter().zip(&affected) {
        assert!(
            line.starts_with(&format!("sigma: keyed.sga: skipped record {n}: ")),
            "{line}"
        );
    }
    let last = lines.last().unwrap();
    assert!(
        last.contains(&format!(
            "{} of {RECORDS} records skipped as damaged; the {} others were written to out.jsonl",
            affected.len(),
            unaffected.len()
        )),
        "{last}"
    );

    // ls still lists everything, marks the damage, and fails.
    let out = sigma(d, &["ls", "--json", "keyed.sga"], None);
    assert_fails(&out);
    let objects: Vec<Value> = stdout_text(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), RECORDS + 1);
    for (n, object) in objects[..RECORDS].iter().enumerate() {
        assert_eq!(
            object["decoded_bytes"].is_null(),
            affected.contains(&(n as u64)),
            "record {n}"
        );
    }
    assert_eq!(objects[RECORDS]["summary"]["damaged"], affected.len());
}

#[test]
fn verify_clean_archives_and_streams() {
    let dir = setup();
    let d = dir.path();
    pack(
        d,
        "interleaved.jsonl",
        "keyed.sga",
        &["--context-key", "conversation"],
    );
    let out = sigma(d, &["verify", "keyed.sga"], None);
    assert_ok(&out);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let text = stdout_text(&out);
    assert!(
        text.starts_with(&format!("OK: {RECORDS} records, ")),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
    let quiet = sigma(d, &["verify", "-q", "keyed.sga"], None);
    assert_ok(&quiet);
    assert!(quiet.stdout.is_empty() && quiet.stderr.is_empty());

    // Streams: decoded to nowhere, from a file or standard input.
    assert_ok(&sigma(d, &["-k", "-q", "inorder.jsonl"], None));
    let original = fs::metadata(d.join("inorder.jsonl")).unwrap().len();
    let out = sigma(d, &["verify", "inorder.jsonl.sgm"], None);
    assert_ok(&out);
    assert_eq!(
        stdout_text(&out),
        format!(
            "OK: stream, {original} bytes decoded from {} bytes\n",
            fs::metadata(d.join("inorder.jsonl.sgm")).unwrap().len()
        )
    );
    let stream = fs::read(d.join("inorder.jsonl.sgm")).unwrap();
    let out = sigma(d, &["verify", "-"], Some(&stream));
    assert_ok(&out);
    assert!(stdout_text(&out).starts_with("OK: stream, "));

    // A damaged stream, an archive on standard input, and a file that is neither.
    let mut bad = stream.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    fs::write(d.join("bad.sgm"), &bad).unwrap();
    let out = sigma(d, &["verify", "bad.sgm"], None);
    let err = assert_fails(&out);
    assert!(err.starts_with("sigma: bad.sgm: "), "{err}");
    assert!(out.stdout.is_empty());
    let archive = fs::read(d.join("keyed.sga")).unwrap();
    let err = assert_fails(&sigma(d, &["verify", "-"], Some(&archive)));
    assert!(err.contains("an archive must be a file"), "{err}");
    let err = assert_fails(&sigma(d, &["verify", "inorder.jsonl"], None));
    assert!(err.contains("not a SigmaLang file"), "{err}");
}

#[test]
fn get_verbose_reports_the_work_done() {
    let dir = setup();
    let d = dir.path();
    let mut extra = vec!["--context-key", "conversation"];
    extra.extend_from_slice(&SMALL_GROUPS);
    pack(d, "interleaved.jsonl", "keyed.sga", &extra);
    let last = RECORDS - 1;
    let out = sigma(d, &["get", "-v", "keyed.sga", &last.to_string()], None);
    assert_ok(&out);
    let expected = &records(true)[last].1;
    assert_eq!(out.stdout, format!("{expected}\n").into_bytes());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "sigma: keyed.sga: record {last}: delta, chain of 4 records"
        )),
        "{err}"
    );
    for needle in [
        &format!("{} bytes;", expected.len()),
        "bytes of the archive (",
        " ms",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // Without -v, nothing on standard error.
    let out = sigma(d, &["get", "keyed.sga", &last.to_string()], None);
    assert_ok(&out);
    assert!(out.stderr.is_empty());
}
