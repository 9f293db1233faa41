//! End-to-end tests of how `sigma` treats the user's files (issue 11): outputs written through
//! devices, FIFOs and symbolic links instead of replacing them, `--rm` keeping the input when
//! the output is not a regular file, metadata copied, partial output removed on signals, long
//! names, several files per call, files named like subcommands, `-k`/`--rm` order, inputs of
//! the wrong kind named for what they are, field names that round-trip, capped codebooks and
//! `--memory`.

#![cfg(unix)]

mod common;

use std::fs::{self, File, FileTimes};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;

const A: &[u8] =
    b"User: What is a FIFO?\nAssistant: A named pipe: one process writes, another reads.\n";
const B: &[u8] = b"{\"role\": \"user\", \"content\": \"List three prime numbers.\"}\n2, 3, 5\n";

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), A).unwrap();
    fs::write(dir.path().join("b.txt"), B).unwrap();
    dir
}

/// `sigma -d -c` of `stream`: the text it holds.
fn decoded(dir: &Path, stream: &[u8]) -> Vec<u8> {
    let out = sigma(dir, &["-d", "-c"], Some(stream));
    assert_ok(&out);
    out.stdout
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

/// Asserts success; standard error may hold warnings (returned).
fn assert_success(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        stderr(out)
    );
    stderr(out)
}

#[test]
fn dev_null_stays_a_device_and_rm_keeps_the_input() {
    let dir = setup();
    let d = dir.path();
    for args in [
        &["-f", "--rm", "-o", "/dev/null", "a.txt"][..],
        &["--rm", "-o", "/dev/null", "a.txt"],
    ] {
        let err = assert_success(&sigma(d, args, None));
        assert_eq!(
            err,
            "sigma: warning: --rm ignored: /dev/null is not a regular file; a.txt is kept\n"
        );
        let meta = fs::symlink_metadata("/dev/null").unwrap();
        assert!(meta.file_type().is_char_device(), "/dev/null replaced");
        assert_eq!(fs::read(d.join("a.txt")).unwrap(), A, "input kept");
    }
    assert_ok(&sigma(d, &["a.txt"], None));
    let err = assert_success(&sigma(
        d,
        &["-d", "-f", "--rm", "-o", "/dev/null", "a.txt.sgm"],
        None,
    ));
    assert!(err.contains("--rm ignored"), "{err}");
    assert!(d.join("a.txt.sgm").exists(), "compressed input kept");
    // pack and unpack write into it too.
    fs::write(d.join("in.jsonl"), "{\"text\": \"hello\"}\n").unwrap();
    assert_ok(&sigma(
        d,
        &["pack", "-f", "-o", "/dev/null", "in.jsonl"],
        None,
    ));
    assert_ok(&sigma(d, &["pack", "-o", "x.sga", "in.jsonl"], None));
    assert_ok(&sigma(
        d,
        &["unpack", "-f", "-o", "/dev/null", "x.sga"],
        None,
    ));
    assert!(fs::symlink_metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(
        listing(d),
        names(&["a.txt", "a.txt.sgm", "b.txt", "in.jsonl", "x.sga"])
    );
}

#[test]
fn dev_stdout_is_written_through() {
    let dir = setup();
    let d = dir.path();
    // /dev/stdout is a symbolic link to the pipe the test reads.
    let out = sigma(d, &["-f", "--rm", "-o", "/dev/stdout", "a.txt"], None);
    let err = assert_success(&out);
    assert!(err.contains("--rm ignored: /dev/stdout"), "{err}");
    assert_eq!(decoded(d, &out.stdout), A);
    assert!(fs::symlink_metadata("/dev/stdout")
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(listing(d), names(&["a.txt", "b.txt"]));
}

#[test]
fn fifo_output_is_written_through() {
    let dir = setup();
    let d = dir.path();
    let fifo = d.join("out.fifo");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut data = Vec::new();
            File::open(&fifo).unwrap().read_to_end(&mut data).unwrap();
            data
        })
    };
    let err = assert_success(&sigma(d, &["-f", "--rm", "-o", "out.fifo", "a.txt"], None));
    assert!(
        err.contains("--rm ignored: out.fifo is not a regular file"),
        "{err}"
    );
    let stream = reader.join().unwrap();
    assert_eq!(decoded(d, &stream), A);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(listing(d), names(&["a.txt", "b.txt", "out.fifo"]));
    // Without -f an existing FIFO is not written to.
    let err = assert_fails(&sigma(d, &["-o", "out.fifo", "a.txt"], None));
    assert_eq!(
        err,
        "sigma: out.fifo: already exists; use -f to overwrite it\n"
    );
}

#[test]
fn rm_keeps_an_input_that_is_not_a_regular_file() {
    let dir = setup();
    let d = dir.path();
    let fifo = d.join("in.fifo");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || File::options().write(true).open(fifo).unwrap().write_all(A))
    };
    let err = assert_success(&sigma(d, &["--rm", "-o", "out.sgm", "in.fifo"], None));
    writer.join().unwrap().unwrap();
    assert_eq!(
        err,
        "sigma: warning: --rm ignored: in.fifo is not a regular file, it is kept\n"
    );
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(decoded(d, &fs::read(d.join("out.sgm")).unwrap()), A);
}

#[test]
fn symlink_output_replaces_the_file_it_leads_to_and_stays_a_link() {
    let dir = setup();
    let d = dir.path();
    fs::write(d.join("target.sgm"), b"old").unwrap();
    std::os::unix::fs::symlink("target.sgm", d.join("link.sgm")).unwrap();
    let err = assert_fails(&sigma(d, &["-o", "link.sgm", "a.txt"], None));
    assert_eq!(
        err,
        "sigma: link.sgm: already exists; use -f to overwrite it\n"
    );
    assert_eq!(fs::read(d.join("target.sgm")).unwrap(), b"old");

    // The file the link leads to is replaced by a complete new file (so --rm may remove the
    // input once it is verified); the link stays a link.
    assert_ok(&sigma(d, &["-f", "--rm", "-o", "link.sgm", "a.txt"], None));
    assert!(fs::symlink_metadata(d.join("link.sgm"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(decoded(d, &fs::read(d.join("target.sgm")).unwrap()), A);
    assert!(!d.join("a.txt").exists(), "--rm removed the input");
    fs::write(d.join("a.txt"), A).unwrap();

    // A failure part-way leaves the file behind the link as it was.
    let mut bad = sigma(d, &["-c", "b.txt"], None).stdout;
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    fs::write(d.join("bad.sgm"), &bad).unwrap();
    fs::write(d.join("precious.txt"), b"precious").unwrap();
    std::os::unix::fs::symlink("precious.txt", d.join("plink")).unwrap();
    assert_fails(&sigma(d, &["-d", "-f", "-o", "plink", "bad.sgm"], None));
    assert_eq!(fs::read(d.join("precious.txt")).unwrap(), b"precious");
    fs::remove_file(d.join("bad.sgm")).unwrap();
    fs::remove_file(d.join("plink")).unwrap();
    fs::remove_file(d.join("precious.txt")).unwrap();

    // The same for unpack and train outputs.
    fs::write(d.join("in.jsonl"), "{\"text\": \"hello\"}\n").unwrap();
    assert_ok(&sigma(d, &["pack", "-o", "x.sga", "in.jsonl"], None));
    fs::write(d.join("target.jsonl"), b"").unwrap();
    std::os::unix::fs::symlink("target.jsonl", d.join("link.jsonl")).unwrap();
    assert_ok(&sigma(
        d,
        &["unpack", "-f", "-o", "link.jsonl", "x.sga"],
        None,
    ));
    assert!(fs::symlink_metadata(d.join("link.jsonl"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_to_string(d.join("target.jsonl")).unwrap(),
        "{\"text\": \"hello\"}\n"
    );
    assert_eq!(
        listing(d),
        names(&[
            "a.txt",
            "b.txt",
            "in.jsonl",
            "link.jsonl",
            "link.sgm",
            "target.jsonl",
            "target.sgm",
            "x.sga"
        ])
    );
}

#[test]
fn an_output_that_is_the_input_under_another_name_is_refused() {
    let dir = setup();
    let d = dir.path();
    // A symbolic link to a hard link of the input, and the hard link itself.
    fs::hard_link(d.join("a.txt"), d.join("h")).unwrap();
    std::os::unix::fs::symlink("h", d.join("l")).unwrap();
    for out in ["l", "h", "./a.txt"] {
        let err = assert_fails(&sigma(d, &["-f", "-o", out, "a.txt"], None));
        assert!(
            err.contains("the output would be the input file itself"),
            "{out}: {err}"
        );
        assert_eq!(fs::read(d.join("a.txt")).unwrap(), A, "{out}");
    }
    fs::write(d.join("in.jsonl"), "{\"text\": \"hello\"}\n").unwrap();
    fs::hard_link(d.join("in.jsonl"), d.join("in2")).unwrap();
    std::os::unix::fs::symlink("in2", d.join("inl")).unwrap();
    let err = assert_fails(&sigma(d, &["pack", "-f", "-o", "inl", "in.jsonl"], None));
    assert!(
        err.contains("the output would be the input file itself"),
        "{err}"
    );
    assert_eq!(
        fs::read(d.join("in.jsonl")).unwrap(),
        b"{\"text\": \"hello\"}\n"
    );
}

#[test]
fn temporary_names_never_appear_in_messages() {
    let dir = setup();
    let d = dir.path();
    for args in [
        &["-o", "nodir/x.sgm", "a.txt"][..],
        &["pack", "-o", "nodir/x.sga", "a.txt"][..],
    ] {
        let err = assert_fails(&sigma(d, args, None));
        assert!(!err.contains('~') && !err.contains("at path"), "{err}");
        assert!(err.contains("nodir/x.sg"), "{err}");
    }
}

#[test]
fn inspect_reads_at_most_64_mib() {
    let dir = setup();
    let d = dir.path();
    let f = File::create(d.join("big.txt")).unwrap();
    f.set_len((64 << 20) + 1).unwrap(); // sparse: nothing is written
    let err = assert_fails(&sigma(d, &["inspect", "big.txt"], None));
    assert!(err.contains("larger than 64 MiB"), "{err}");
}

#[test]
fn threads_are_capped() {
    let dir = setup();
    for args in [
        &["-T", "1000", "-c", "a.txt"][..],
        &["pack", "-T", "257", "-o", "x", "a"][..],
    ] {
        let out = sigma(dir.path(), args, None);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("at most 256 threads"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn metadata_is_copied_both_ways() {
    let dir = setup();
    let d = dir.path();
    let input = d.join("a.txt");
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(978_307_200); // 2001-01-01
    let atime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_009_843_200); // 2002-01-01
    let f = File::options().write(true).open(&input).unwrap();
    f.set_times(FileTimes::new().set_modified(mtime).set_accessed(atime))
        .unwrap();
    drop(f);
    fs::set_permissions(&input, fs::Permissions::from_mode(0o640)).unwrap();
    // As root the owner is copied too; as anyone else chown fails and is not tested.
    let owned = std::os::unix::fs::chown(&input, Some(4321), Some(8765)).is_ok();

    let check = |path: &Path| {
        let m = fs::metadata(path).unwrap();
        assert_eq!(m.modified().unwrap(), mtime, "{path:?}");
        assert_eq!(m.accessed().unwrap(), atime, "{path:?}");
        assert_eq!(m.permissions().mode() & 0o7777, 0o640, "{path:?}");
        if owned {
            assert_eq!((m.uid(), m.gid()), (4321, 8765), "{path:?}");
        }
    };
    assert_ok(&sigma(d, &["--rm", "a.txt"], None));
    check(&d.join("a.txt.sgm"));
    assert_ok(&sigma(d, &["-d", "--rm", "a.txt.sgm"], None));
    check(&input);
    assert_eq!(fs::read(&input).unwrap(), A);
}

/// Starts `sigma ARGS` reading from a FIFO (`in.fifo`) that never closes, feeds it `data`,
/// waits for its temporary output `.OUTPUT.XXXXXX~` (if `output` is given), sends `signal`,
/// and checks that it exits with `128 + number`, leaving nothing behind.
fn interrupted(args: &[&str], data: &[u8], output: Option<&str>, signal: &str, number: i32) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("in.fifo");
    mkfifo(&fifo);
    let child = Command::new(env!("CARGO_BIN_EXE_sigma"))
        .current_dir(d)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Opening blocks until sigma opens its end.
    let mut writer = File::options().write(true).open(&fifo).unwrap();
    writer.write_all(data).unwrap();
    let started = Instant::now();
    let wanted = if output.is_some() { 2 } else { 1 };
    while listing(d).len() < wanted {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no temporary file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let temp = listing(d).into_iter().find(|n| n != "in.fifo");
    if let (Some(temp), Some(output)) = (&temp, output) {
        assert!(
            temp.starts_with(&format!(".{output}.")) && temp.ends_with('~'),
            "{temp}"
        );
    }
    // Let it block on the FIFO (it has read what there is).
    std::thread::sleep(Duration::from_millis(200));
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    drop(writer);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(128 + number), "{signal}: {err}");
    let removed = if output.is_some() {
        "; partial output removed"
    } else {
        ""
    };
    assert_eq!(
        err.trim_start(),
        format!("sigma: interrupted by SIG{signal}{removed}\n")
    );
    if let Some(temp) = temp {
        assert!(!err.contains(&temp));
    }
    assert_eq!(listing(d), names(&["in.fifo"]), "{signal}: left behind");
}

#[test]
fn signals_remove_the_partial_output() {
    let text = A.repeat(40_000);
    let compress = ["-T", "1", "in.fifo"];
    interrupted(&compress, &text, Some("in.fifo.sgm"), "INT", 2);
    interrupted(&compress, &text, Some("in.fifo.sgm"), "TERM", 15);
    interrupted(&compress, &text, Some("in.fifo.sgm"), "HUP", 1);
    let lines = "{\"text\": \"a record\"}\n".repeat(20_000);
    let pack = ["pack", "-T", "1", "-o", "x.sga", "in.fifo"];
    interrupted(&pack, lines.as_bytes(), Some("x.sga"), "TERM", 15);
    // Nothing to remove when writing to standard output.
    interrupted(&["-c", "in.fifo"], &text, None, "INT", 2);
}

#[test]
fn names_near_name_max() {
    let dir = setup();
    let d = dir.path();
    // 251 bytes + ".sgm" = 255, the longest name: the temporary name is shortened to fit.
    let name = format!("{}.txt", "n".repeat(247));
    fs::write(d.join(&name), A).unwrap();
    assert_ok(&sigma(d, &[&name], None));
    let packed = format!("{name}.sgm");
    assert_eq!(packed.len(), 255);
    assert_eq!(decoded(d, &fs::read(d.join(&packed)).unwrap()), A);
    fs::remove_file(d.join(&packed)).unwrap();
    // One byte more cannot be named; the message names the output, not a temporary file.
    let long = format!("{}.txt", "l".repeat(248));
    fs::write(d.join(&long), A).unwrap();
    let err = assert_fails(&sigma(d, &[&long], None));
    assert_eq!(
        err,
        format!("sigma: {long}.sgm: File name too long (os error 36)\n")
    );
    assert_eq!(listing(d), names(&["a.txt", "b.txt", &name, &long]));
}

#[test]
fn several_files_in_one_call() {
    let dir = setup();
    let d = dir.path();
    assert_ok(&sigma(d, &["a.txt", "b.txt"], None));
    fs::create_dir(d.join("orig")).unwrap();
    fs::rename(d.join("a.txt"), d.join("orig/a.txt")).unwrap();
    fs::rename(d.join("b.txt"), d.join("orig/b.txt")).unwrap();
    assert_ok(&sigma(d, &["-d", "a.txt.sgm", "b.txt.sgm"], None));
    assert_eq!(fs::read(d.join("a.txt")).unwrap(), A);
    assert_eq!(fs::read(d.join("b.txt")).unwrap(), B);

    // -c: one after the other on standard output.
    let both = sigma(d, &["-c", "a.txt", "b.txt"], None);
    assert_ok(&both);
    let one = |f: &str| {
        let out = sigma(d, &["-c", f], None);
        assert_ok(&out);
        out.stdout
    };
    assert_eq!(both.stdout, [one("a.txt"), one("b.txt")].concat());
    let text = sigma(d, &["-d", "-c", "a.txt.sgm", "b.txt.sgm"], None);
    assert_ok(&text);
    assert_eq!(text.stdout, [A, B].concat());

    // -o names one output.
    let err = assert_fails(&sigma(d, &["-o", "x.sgm", "a.txt", "b.txt"], None));
    assert!(err.starts_with("sigma: -o: names one output"), "{err}");
    assert!(!d.join("x.sgm").exists());
}

#[test]
fn an_error_with_one_file_does_not_stop_the_others() {
    let dir = setup();
    let d = dir.path();
    fs::create_dir(d.join("sub")).unwrap();
    let out = sigma(d, &["a.txt", "missing.txt", "sub", "b.txt"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("sigma: missing.txt: "), "{err}");
    assert_eq!(lines[1], "sigma: sub: is a directory");
    assert!(d.join("a.txt.sgm").exists() && d.join("b.txt.sgm").exists());

    fs::write(d.join("bad.sgm"), b"plain text").unwrap();
    fs::remove_file(d.join("a.txt")).unwrap();
    let out = sigma(d, &["-d", "bad.sgm", "a.txt.sgm", "sub"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "sigma: bad.sgm: not a SigmaLang stream\nsigma: sub: is a directory\n"
    );
    assert_eq!(fs::read(d.join("a.txt")).unwrap(), A);
    assert!(!d.join("bad").exists());
}

#[test]
fn files_named_like_subcommands() {
    let dir = setup();
    let d = dir.path();
    for name in ["ls", "demo", "pack", "help"] {
        fs::write(d.join(name), A).unwrap();
    }
    // A subcommand only as the first argument; elsewhere, or after `--`, a word is a file.
    assert_ok(&sigma(d, &["-k", "ls"], None));
    assert_ok(&sigma(d, &["--", "demo"], None));
    assert_ok(&sigma(d, &["a.txt", "pack"], None));
    assert_ok(&sigma(d, &["compress", "help"], None));
    for name in ["ls", "demo", "pack", "help"] {
        let packed = fs::read(d.join(format!("{name}.sgm"))).unwrap();
        assert_eq!(decoded(d, &packed), A, "{name}");
        fs::remove_file(d.join(name)).unwrap();
    }
    assert_ok(&sigma(d, &["-d", "ls.sgm", "demo.sgm"], None));
    assert_eq!(fs::read(d.join("ls")).unwrap(), A);
    // First, the word is the subcommand.
    let out = sigma(d, &["pack"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--output"), "{}", stderr(&out));
}

#[test]
fn keep_and_rm_the_last_one_wins() {
    let dir = setup();
    let d = dir.path();
    assert_ok(&sigma(d, &["--rm", "-k", "a.txt"], None));
    assert!(d.join("a.txt").exists());
    assert_ok(&sigma(d, &["-k", "--rm", "b.txt"], None));
    assert!(!d.join("b.txt").exists());
    assert_eq!(listing(d), names(&["a.txt", "a.txt.sgm", "b.txt.sgm"]));
}

#[test]
fn wrong_kinds_of_input_are_named() {
    let dir = setup();
    let d = dir.path();
    fs::create_dir(d.join("dir.sgm")).unwrap();
    let err = assert_fails(&sigma(d, &["-d", "dir.sgm"], None));
    assert_eq!(err, "sigma: dir.sgm: is a directory\n");

    fs::write(d.join("in.jsonl"), "{\"text\": \"hello\"}\n").unwrap();
    assert_ok(&sigma(d, &["pack", "-o", "x.sga", "in.jsonl"], None));
    let err = assert_fails(&sigma(d, &["-d", "-c", "x.sga"], None));
    assert!(
        err.contains("x.sga: is a SigmaLang archive, not a stream") && err.contains("sigma unpack"),
        "{err}"
    );
    assert_ok(&sigma(d, &["a.txt"], None));
    let err = assert_fails(&sigma(d, &["unpack", "a.txt.sgm"], None));
    assert!(
        err.contains("a.txt.sgm: is a SigmaLang stream, not an archive")
            && err.contains("sigma -d"),
        "{err}"
    );

    let foreign: [(&str, &[u8], &str); 4] = [
        (
            "z.zst",
            &[0x28, 0xB5, 0x2F, 0xFD, 0x24, 0x05, 0x29, 0x00],
            "zstd",
        ),
        (
            "z.xz",
            &[0xFD, b'7', b'z', b'X', b'Z', 0x00, 0x00, 0x04],
            "xz",
        ),
        ("z.gz", &[0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00], "gzip"),
        ("z.bz2", b"BZh91AY&SY", "bzip2"),
    ];
    for (name, bytes, format) in foreign {
        fs::write(d.join(name), bytes).unwrap();
        let err = assert_fails(&sigma(d, &["-d", "-c", name], None));
        assert_eq!(
            err,
            format!("sigma: {name}: is {format} compressed data, not a SigmaLang stream (try `{format} -d`)\n")
        );
        let err = assert_fails(&sigma(d, &["-d"], Some(bytes)));
        assert!(
            err.contains(&format!("is {format} compressed data")),
            "{err}"
        );
        let err = assert_fails(&sigma(d, &["verify", name], None));
        assert!(err.contains("not a SigmaLang file"), "{err}");
    }
    fs::write(d.join("empty.sgm"), b"").unwrap();
    let err = assert_fails(&sigma(d, &["-d", "empty.sgm"], None));
    assert_eq!(err, "sigma: empty.sgm: is empty, not a SigmaLang stream\n");
    assert!(!d.join("empty").exists());
}

#[test]
fn any_field_name_round_trips_through_an_archive() {
    let dir = setup();
    let d = dir.path();
    for field in ["body\r", "a\nb", "x=y", "field=z"] {
        let line = serde_json::json!({ field: "text of the record", "other\r": "no" });
        fs::write(d.join("in.jsonl"), format!("{line}\n")).unwrap();
        assert_ok(&sigma(
            d,
            &["pack", "-f", "--field", field, "-o", "x.sga", "in.jsonl"],
            None,
        ));
        let out = sigma(d, &["unpack", "x.sga"], None);
        assert_ok(&out);
        let back: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            back,
            serde_json::json!({ field: "text of the record" }),
            "{field:?}"
        );
    }
}

#[test]
fn codebooks_are_capped() {
    let dir = setup();
    let d = dir.path();
    let started = Instant::now();
    let err = assert_fails(&sigma(d, &["-m", "/dev/zero", "-c", "a.txt"], None));
    assert_eq!(
        err,
        "sigma: /dev/zero: is larger than 64 MiB, the most a codebook may be \
         (`sigma train` makes none larger), so it is not one\n"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // A large regular file is refused by its size, without reading it.
    let big = File::create(d.join("big.sgcb")).unwrap();
    big.set_len((64 << 20) + 1).unwrap();
    let err = assert_fails(&sigma(d, &["-m", "big.sgcb", "-c", "a.txt"], None));
    assert!(err.contains("big.sgcb: is larger than 64 MiB"), "{err}");
    // Decompressing reads -m too (once the stream's header is checked).
    assert_ok(&sigma(d, &["a.txt"], None));
    let err = assert_fails(&sigma(
        d,
        &["-d", "-m", "/dev/zero", "-c", "a.txt.sgm"],
        None,
    ));
    assert!(err.contains("/dev/zero: is larger than 64 MiB"), "{err}");
}

#[test]
fn memory_limit_is_parsed() {
    let dir = setup();
    let d = dir.path();
    assert_ok(&sigma(d, &["a.txt"], None));
    for limit in ["4G", "512M", "1GiB", "max"] {
        let out = sigma(d, &["-d", "-c", "--memory", limit, "a.txt.sgm"], None);
        assert_ok(&out);
        assert_eq!(out.stdout, A);
    }
    let out = sigma(d, &["-d", "--memory", "0", "a.txt.sgm"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("more than 0"), "{}", stderr(&out));
    assert_eq!(listing(d), names(&["a.txt", "a.txt.sgm", "b.txt"]));
}

#[test]
fn memory_limit_is_enforced_and_names_what_to_pass() {
    let dir = setup();
    let d = dir.path();
    // A 2 MiB stream chunk needs about 6 MiB to decode; a 2 MiB archive record needs more.
    let big: Vec<u8> = (0..2u32 << 20)
        .map(|i| b"abcdefgh"[(i % 7) as usize])
        .collect();
    fs::write(d.join("big.txt"), &big).unwrap();
    assert_ok(&sigma(d, &["big.txt"], None));
    let err = assert_fails(&sigma(
        d,
        &["-d", "-c", "--memory", "1M", "big.txt.sgm"],
        None,
    ));
    assert!(
        err.contains("the limit is 1.0 MiB") && err.contains("pass --memory "),
        "{err}"
    );
    let out = sigma(d, &["-d", "-c", "--memory", "64M", "big.txt.sgm"], None);
    assert_ok(&out);
    assert!(out.stdout == big);

    let mut line = b"{\"text\": \"".to_vec();
    line.extend_from_slice(&big);
    line.extend_from_slice(b"\"}\n");
    fs::write(d.join("big.jsonl"), &line).unwrap();
    assert_ok(&sigma(d, &["pack", "-o", "big.sga", "big.jsonl"], None));
    for cmd in [
        &["get", "--memory", "1M", "big.sga", "0"][..],
        &["unpack", "--memory", "1M", "big.sga"][..],
    ] {
        let err = assert_fails(&sigma(d, cmd, None));
        assert!(err.contains("pass --memory "), "{cmd:?}: {err}");
    }
    let out = sigma(d, &["get", "big.sga", "0"], None);
    assert_ok(&out);
    assert!(out.stdout == line);
}
