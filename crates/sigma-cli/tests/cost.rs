//! `sigma inspect --cost` and `sigma stats --cost`: the spans tile the input, their bits add
//! up to the coded size, DELTA runs name the records they copy, colours obey `NO_COLOR`, and
//! the `--html` page renders in a real browser (headless Chromium) without console errors.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_fails, assert_ok, sigma, stderr, stdout_text};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `inspect --cost --json ARGS`, parsed, with the schema and tiling checked.
fn cost_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["inspect", "--cost", "--json"];
    all.extend_from_slice(args);
    let out = sigma(dir, &all, None);
    assert_ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let n = v["input_bytes"].as_u64().unwrap();
    let coded = v["coded_bytes"].as_u64().unwrap();
    assert_eq!(v["total_bits"].as_u64(), Some(8 * coded));
    let spans = v["spans"].as_array().unwrap();
    let mut at = 0;
    let mut bits = 0.0;
    for s in spans {
        assert_eq!(s["start"].as_u64(), Some(at), "spans tile the input: {s}");
        let end = s["end"].as_u64().unwrap();
        assert!(end > at, "{s}");
        at = end;
        let b = s["bits"].as_f64().unwrap();
        assert!(b >= 0.0, "{s}");
        bits += b;
        let kind = s["kind"].as_str().unwrap();
        assert!(!kind.is_empty() && s["class"].is_string() && s["primitive"].is_string());
        assert_eq!(
            s["run"].is_u64(),
            kind == "DELTA" || kind == "REFERENCE",
            "{s}"
        );
    }
    assert_eq!(at, n);
    let span_bits = v["span_bits"].as_f64().unwrap();
    assert!((bits - span_bits).abs() < 0.01 * span_bits.max(1.0));
    let overhead = v["overhead_bits"].as_f64().unwrap();
    assert!((span_bits + overhead - (8 * coded) as f64).abs() < 0.01);
    v
}

/// Span bits are within 1% of the coded size.
fn assert_within_one_percent(v: &Value) {
    let total = v["total_bits"].as_f64().unwrap();
    let spans = v["span_bits"].as_f64().unwrap();
    assert!(
        (total - spans).abs() <= 0.01 * total,
        "{spans} bits in spans, {total} coded"
    );
}

/// The first `n` bytes of `s` or fewer, cut at a character boundary.
fn cut(s: &str, mut n: usize) -> &str {
    n = n.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// Prose, JSON and code inputs of a few KB.
fn inputs(dir: &Path) -> Vec<&'static str> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("../../README.md")).unwrap();
    fs::write(dir.join("prose.md"), cut(&readme, 8000)).unwrap();
    let code = fs::read_to_string(root.join("../sigmalang/src/coder.rs")).unwrap();
    fs::write(dir.join("code.rs"), cut(&code, 8000)).unwrap();
    let json = serde_json::json!({
        "model": "chat",
        "messages": [
            {"role": "system", "content": cut(&readme, 3000)},
            {"role": "user", "content": format!("Explain this:\n```rust\n{}\n```", cut(&code, 3000))},
        ],
        "temperature": 0.2,
    });
    fs::write(dir.join("request.json"), json.to_string()).unwrap();
    vec!["prose.md", "code.rs", "request.json"]
}

#[test]
fn span_bits_add_up_to_the_coded_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in inputs(d) {
        let v = cost_json(d, &[name]);
        assert_within_one_percent(&v);
        // `sigma compress` codes it to a payload of the same length: the stream's one chunk
        // (FORMAT.md §4.1: after the 20-byte header, a varint length and the payload).
        let out = sigma(d, &["compress", "-c", name], None);
        assert_ok(&out);
        let (mut len, mut shift, mut at) = (0u64, 0, 20);
        loop {
            let b = out.stdout[at];
            len |= u64::from(b & 0x7f) << shift;
            shift += 7;
            at += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        assert_eq!(Some(len), v["coded_bytes"].as_u64(), "{name}");
    }
    let v = cost_json(d, &["request.json"]);
    let fields: Vec<&str> = v["totals"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"messages[].content"), "{fields:?}");
    assert!(fields.contains(&"temperature"), "{fields:?}");
    let classes = v["totals"]["classes"].to_string();
    assert!(classes.contains("\"code\"") && classes.contains("\"prose\""));
}

/// Packs the histories fixture by conversation (the `text` field of each line), without a
/// primer (on a fixture this small the primer would hold every line).
fn pack_histories(d: &Path) -> PathBuf {
    let archive = d.join("h.sga");
    let src = fixture("histories.jsonl");
    let out = sigma(
        d,
        &[
            "pack",
            "-q",
            "--no-primer",
            "--block",
            "0",
            "--field",
            "text",
            "--context-key",
            "conversation",
            "-o",
            archive.to_str().unwrap(),
            src.to_str().unwrap(),
        ],
        None,
    );
    assert_ok(&out);
    archive
}

#[test]
fn a_record_in_a_page_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = fixture("histories.jsonl");
    let args = [
        "pack",
        "-q",
        "--block",
        "4KiB",
        "-o",
        "p.sga",
        src.to_str().unwrap(),
    ];
    assert_ok(&sigma(d, &args, None));
    let out = sigma(d, &["inspect", "--cost", "p.sga", "1"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("record 1 is in a page of a block-mode archive"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn an_archive_record_is_coded_against_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let archive = pack_histories(d);
    let a = archive.to_str().unwrap();
    let ls = stdout_text(&sigma(d, &["ls", "--json", a], None));
    let listed: Vec<Value> = ls
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["record"].is_u64())
        .collect();
    // Record 4 is the third request of conversation "a", coded against records 0 and 2.
    let v = cost_json(d, &[a, "4"]);
    assert_eq!(v["record"], 4);
    // The archive's index is coded (FORMAT.md §5.1): its payload is the coding without the
    // header `H` the trace counts.
    assert_eq!(
        v["coded_bytes"].as_u64().unwrap(),
        listed[4]["payload_bytes"].as_u64().unwrap() + header_len(&v)
    );
    let frames: Vec<u64> = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["record"].as_u64().unwrap())
        .collect();
    assert_eq!(frames, [0, 2]);
    assert_within_one_percent(&v);
    // Most of it is copied from record 2, the request before it.
    let runs = v["runs"].as_array().unwrap();
    let from_2: u64 = runs
        .iter()
        .filter(|r| r["source"]["record"] == 2)
        .map(|r| r["len"].as_u64().unwrap())
        .sum();
    assert!(from_2 > 400, "{runs:?}");
    let delta: u64 = v["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "DELTA")
        .map(|s| s["end"].as_u64().unwrap() - s["start"].as_u64().unwrap())
        .sum();
    assert_eq!(
        delta,
        runs.iter().map(|r| r["len"].as_u64().unwrap()).sum::<u64>()
    );
    // Alone, the same bytes cost more.
    let record = sigma(d, &["get", "--raw", a, "4"], None);
    assert_ok(&record);
    fs::write(d.join("r4.json"), &record.stdout).unwrap();
    let alone = cost_json(d, &["r4.json"]);
    assert!(alone["coded_bytes"].as_u64() > v["coded_bytes"].as_u64());

    let text = stdout_text(&sigma(d, &["inspect", "--cost", a, "4"], None));
    assert!(
        text.contains("coded against: record 0 (248 B), record 2"),
        "{text}"
    );
    assert!(
        text.contains("copied (DELTA and REFERENCE runs) from:\n  record 2: "),
        "{text}"
    );
    let out = sigma(d, &["inspect", "--cost", a, "5"], None);
    assert!(
        stderr(&out).contains("there is no record 5"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_color_and_pipes_get_no_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("t.txt"), "Hello \u{1b}[31mred\u{1b}[0m world\n").unwrap();
    for (args, env) in [
        (&["inspect", "--cost", "t.txt"][..], None),
        (&["inspect", "--cost", "--no-color", "t.txt"][..], None),
        (&["inspect", "--cost", "t.txt"][..], Some("1")),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigma"));
        cmd.current_dir(d).args(args);
        match env {
            Some(v) => cmd.env("NO_COLOR", v),
            None => cmd.env_remove("NO_COLOR"),
        };
        let out = cmd.output().unwrap();
        assert_ok(&out);
        let text = stdout_text(&out);
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("Hello ␛[31mred"), "{text}");
        assert!(
            text.contains("bits per byte:") && text.contains("kind"),
            "{text}"
        );
    }
}

#[test]
fn stats_reports_where_the_bits_go() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = fixture("histories.jsonl");
    let out = sigma(
        d,
        &[
            "stats",
            "-q",
            "--cost",
            "--json",
            "--context-key",
            "conversation",
            src.to_str().unwrap(),
        ],
        None,
    );
    assert_ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cost = &v["cost"];
    assert_eq!(cost["records"], 5);
    assert_eq!(cost["records_coded_differently"], 0);
    assert_eq!(cost["bytes"], v["input_bytes"]);
    let payload = cost["coded_bytes"].as_u64().unwrap();
    // The records are small: their headers and code ends are a few percent of the bits.
    let spans = cost["span_bits"].as_f64().unwrap();
    assert!(spans < 8.0 * payload as f64 && spans > 0.9 * 8.0 * payload as f64);
    let kinds = cost["kinds"].to_string();
    assert!(kinds.contains("\"DELTA\""), "{kinds}");
    let fields = cost["fields"].to_string();
    assert!(fields.contains("messages[].content"), "{fields}");
    let bytes: u64 = cost["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(Some(bytes), v["input_bytes"].as_u64());

    let text = stdout_text(&sigma(
        d,
        &["stats", "-q", "--cost", src.to_str().unwrap()],
        None,
    ));
    assert!(text.contains("where the bits go: 5 records"), "{text}");
    assert!(text.contains("JSON field"), "{text}");
}

/// The Chromium binary, or `None` (after saying why) when it is absent and not required.
fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        let required = std::env::var("SIGMA_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "SIGMA_REQUIRE_CHROMIUM=1 but no /usr/bin/chromium (apt-get install chromium)"
        );
        eprintln!("skipped: no /usr/bin/chromium (apt-get install chromium to run this test)");
    }
    found
}

/// Runs headless Chromium on `page` with `extra` flags; returns (stdout, stderr), which go
/// through files (a DOM dump fills a pipe). Killed after two minutes.
fn run_chromium(chrome: &Path, page: &Path, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out_path = profile.path().join("stdout");
    let err_path = profile.path().join("stderr");
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium ran for two minutes on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned();
    (read(&out_path), read(&err_path))
}

/// Lines of Chromium's log that report a page error or a console message.
fn page_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("Uncaught") || l.contains(":CONSOLE"))
        .collect()
}

#[test]
fn html_page_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let archive = pack_histories(d);
    let page = d.join("cost.html");
    let out = sigma(
        d,
        &[
            "inspect",
            "--cost",
            archive.to_str().unwrap(),
            "4",
            "--html",
            page.to_str().unwrap(),
        ],
        None,
    );
    assert_ok(&out);
    let html = fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("src="));
    let Some(chrome) = chromium() else { return };

    // The DOM after the page's script ran: the spans, the frames and the tables are there.
    let spans = serde_json::from_str::<Value>(
        html.split("id=\"data\">")
            .nth(1)
            .unwrap()
            .split("</script>")
            .next()
            .unwrap(),
    )
    .unwrap()["spans"]
        .as_array()
        .unwrap()
        .len();
    let (dom, log) = run_chromium(&chrome, &page, &["--dump-dom".to_string()]);
    assert!(
        dom.contains(&format!("data-rendered=\"{spans}\"")),
        "script did not finish: {log}"
    );
    assert_eq!(dom.matches(" data-i=\"").count(), spans);
    assert!(dom.contains("class=\"copied\""));
    assert!(
        dom.contains("Draws from") && dom.contains("record 2 (503 B)"),
        "{dom}"
    );
    assert!(dom.contains("messages[].content"));
    assert!(page_errors(&log).is_empty(), "{log}");

    let shot = d.join("shot.png");
    let (_, log) = run_chromium(
        &chrome,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".to_string(),
            "--hide-scrollbars".to_string(),
        ],
    );
    let png = fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {log}"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    assert!(page_errors(&log).is_empty(), "{log}");

    // The check sees an error when there is one.
    let broken = d.join("broken.html");
    fs::write(
        &broken,
        html.replace("\"use strict\";", "\"use strict\"; undefinedFunction();"),
    )
    .unwrap();
    let (dom, log) = run_chromium(&chrome, &broken, &["--dump-dom".to_string()]);
    assert!(!dom.contains("data-rendered"));
    assert!(!page_errors(&log).is_empty(), "{log}");
}

/// `--html OUT` follows the rules of every output: an existing file is kept unless `-f`, a
/// directory or the input itself is refused, `-` is standard output, and an input too large
/// for a page is refused by its name before anything is coded or written.
#[test]
fn html_output_follows_the_output_rules() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("t.txt"), "Hello world\n").unwrap();
    fs::write(d.join("old.html"), "keep").unwrap();
    let html = |args: &[&str]| {
        let mut all = vec!["inspect", "--cost"];
        all.extend_from_slice(args);
        sigma(d, &all, None)
    };
    let err = assert_fails(&html(&["--html", "old.html", "t.txt"]));
    assert!(err.contains("old.html: already exists; use -f"), "{err}");
    assert_eq!(fs::read_to_string(d.join("old.html")).unwrap(), "keep");
    assert_ok(&html(&["-f", "--html", "old.html", "t.txt"]));
    assert!(fs::read_to_string(d.join("old.html"))
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
    fs::create_dir(d.join("sub")).unwrap();
    let err = assert_fails(&html(&["-f", "--html", "sub", "t.txt"]));
    assert!(err.contains("sub: is a directory"), "{err}");
    let err = assert_fails(&html(&["-f", "--html", "t.txt", "t.txt"]));
    assert!(err.contains("the input file itself"), "{err}");
    assert_eq!(
        fs::read_to_string(d.join("t.txt")).unwrap(),
        "Hello world\n"
    );
    // `-`: the page instead of the text report; with --json, two things for one stream.
    let out = html(&["--html", "-", "t.txt"]);
    assert_ok(&out);
    let page = stdout_text(&out);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.trim_end().ends_with("</html>"), "the page alone");
    let err = assert_fails(&html(&["--json", "--html", "-", "t.txt"]));
    assert!(err.contains("--json"), "{err}");
    // Too large: refused naming the input, and nothing is written.
    fs::write(d.join("big.txt"), vec![b'a'; 9 << 20]).unwrap();
    let started = Instant::now();
    let err = assert_fails(&html(&["--html", "big.html", "big.txt"]));
    assert!(err.contains("big.txt: 9437184 bytes"), "{err}");
    assert!(!d.join("big.html").exists());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "refused before coding"
    );
    // Over 16 MiB: refused, naming the input, before it is held whole (its trace and spans
    // would take up to 110 times its size).
    fs::write(d.join("huge.txt"), vec![b'a'; (16 << 20) + 1]).unwrap();
    let err = assert_fails(&html(&["--json", "huge.txt"]));
    assert!(err.contains("huge.txt: larger than 16"), "{err}");
    // The same for an archive's record, from its header, before it is decoded.
    let line = format!("{{\"text\": \"{}\"}}\n", "a".repeat((16 << 20) + 1));
    fs::write(d.join("huge.jsonl"), line).unwrap();
    assert_ok(&sigma(
        d,
        &[
            "pack",
            "-q",
            "--field",
            "text",
            "-o",
            "huge.sga",
            "huge.jsonl",
        ],
        None,
    ));
    let err = assert_fails(&html(&["--json", "huge.sga", "0"]));
    assert!(
        err.contains("huge.sga: record 0 is 16777217 bytes"),
        "{err}"
    );
    assert!(
        !fs::read_dir(d).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "no temporary file left"
    );
}

/// The page of a 1 MiB binary input is written in bounded memory: its spans are streamed, not
/// held as one JSON value (that took about 1 KiB per input byte, over 1 GiB here).
#[test]
fn html_page_is_written_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect();
    fs::write(d.join("bin"), data).unwrap();
    let out = Command::new("sh")
        .current_dir(d)
        .arg("-c")
        .arg(format!(
            "ulimit -v 700000 && exec '{}' inspect --cost --html p.html bin",
            env!("CARGO_BIN_EXE_sigma")
        ))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&out);
    let page = fs::read_to_string(d.join("p.html")).unwrap();
    assert!(page.trim_end().ends_with("</html>"));
}

/// In an archive of whole lines with a primer (what `sigma pack` writes by default on data
/// unlike chat), a record is traced as the writer coded it: its JSON-lines form, after the
/// primer, which is listed as the first frame; the traced payload is the stored one.
#[test]
fn a_primed_archive_record_is_traced_as_coded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines: String = (0..400)
        .map(|i| {
            format!(
                "{{\"id\": {i}, \"text\": \"fn item_{i}(x: u32) -> u32 {{ let y = x.wrapping_mul({}); y ^ (y >> {}) }}\"}}\n",
                i * 7919 % 1000,
                i % 13
            )
        })
        .collect();
    std::fs::write(d.join("code.jsonl"), lines).unwrap();
    let out = sigma(
        d,
        &[
            "pack",
            "-q",
            "--primer",
            "8",
            "--block",
            "0",
            "-o",
            "c.sga",
            "code.jsonl",
        ],
        None,
    );
    assert_ok(&out);
    let ls = stdout_text(&sigma(d, &["ls", "--json", "c.sga"], None));
    let listed: Vec<Value> = ls
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["record"].is_u64())
        .collect();
    let v = cost_json(d, &["c.sga", "300"]);
    assert_eq!(
        v["coded_bytes"].as_u64().unwrap(),
        listed[300]["payload_bytes"].as_u64().unwrap() + header_len(&v)
    );
    let frames = v["frames"].as_array().unwrap();
    assert_eq!(frames[0]["primer"], true, "{frames:?}");
    // A short record: its header and the code's end are a good part of it; with them, the
    // spans' bits are the payload's (cost_json checks that).
    assert!(v["span_bits"].as_f64().unwrap() > 0.0);
}

/// The length of the payload header `H = raw_len << 2 | mode` (FORMAT.md §3) of the record a
/// `--json` cost object describes: what a coded index (header flag bit 6) stores instead.
fn header_len(v: &Value) -> u64 {
    sigmalang::internals::varint::len(v["input_bytes"].as_u64().unwrap() << 2) as u64
}
