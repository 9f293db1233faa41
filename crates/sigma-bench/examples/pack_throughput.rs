//! Throughput of `sigma pack`'s coding path on a large JSONL file (README "Pack throughput").
//!
//! Packs FILE line by line, streamed (memory does not grow with the file), into a sink that
//! only counts bytes, with the options `sigma pack` uses by default: whole lines in the
//! JSON-lines form, batches of 1024 records or 1 MiB, a primer of an eighth of the file
//! (64 KiB to 1 MiB), inferred groups, the built-in codebook (loaded before the clock starts).
//! Reports, per thread count asked for: bytes in and out, ratio, wall seconds and MB/s
//! (10^6 bytes of input a wall-clock second), user + system CPU seconds and %CPU of the pack,
//! the process's peak RSS so far, the load average before and after, and an FNV-1a digest of
//! the archive: the digests of all thread counts must be equal (checked).
//!
//! ```sh
//! cargo run --release -p sigma-bench --example pack_throughput -- FILE [THREADS...]
//! ```
//!
//! THREADS defaults to `2`; e.g. `-- /work/tmp/mixed1g.jsonl 1 2` runs -T 1 then -T 2. The CLI
//! adds its own line checks (each line read as JSON, for the warning about odd lines) on top.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

use sigmalang::{ArchiveOptions, ArchiveWriter, Codebook};

/// A sink counting the bytes written and folding them into an FNV-1a digest.
struct Counting {
    bytes: u64,
    digest: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            self.digest = (self.digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// User + system CPU seconds of this process so far, and its peak RSS in KiB.
fn usage() -> (f64, u64) {
    // SAFETY: `rusage` is plain data that getrusage fills in.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage for RUSAGE_SELF.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0;
    assert!(ok, "getrusage failed");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime) + secs(u.ru_stime), u.ru_maxrss as u64)
}

/// The 1-minute load average (Linux), for the record.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: pack_throughput FILE [THREADS...]");
        std::process::exit(2);
    };
    let threads: Vec<usize> = if args.len() > 1 {
        args[1..]
            .iter()
            .map(|t| t.parse().expect("THREADS: a number"))
            .collect()
    } else {
        vec![2]
    };
    let size = std::fs::metadata(path).expect("FILE").len();
    let codebook = Codebook::default_codebook();
    let mut digests = Vec::new();
    println!(
        "| threads | input bytes | archive bytes | ratio | wall s | MB/s | CPU s | CPU | peak RSS | load before / after |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for &t in &threads {
        let opts = ArchiveOptions::default()
            .batch_records(1024)
            .batch_bytes(1 << 20)
            .threads(t)
            .json_lines(true)
            .primer((size / 8).clamp(64 << 10, 1 << 20) as usize)
            .infer_groups(true);
        let load_before = load();
        let (cpu0, _) = usage();
        let started = Instant::now();
        let sink = Counting {
            bytes: 0,
            digest: 0xcbf2_9ce4_8422_2325,
        };
        let mut w = ArchiveWriter::with_options(sink, codebook.clone(), b"records=lines\n", opts)
            .expect("writer");
        let mut input = BufReader::with_capacity(1 << 20, File::open(path).expect("FILE"));
        let mut line = Vec::new();
        let mut bytes_in = 0u64;
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line).expect("read") == 0 {
                break;
            }
            bytes_in += line.len() as u64;
            w.add_line(None, &line).expect("add");
        }
        let out = w.finish().expect("finish");
        let wall = started.elapsed().as_secs_f64();
        let (cpu1, rss) = usage();
        let cpu = cpu1 - cpu0;
        println!(
            "| {t} | {bytes_in} | {} | {:.2} | {wall:.2} | {:.1} | {cpu:.1} | {:.0}% | {} MB | {load_before} / {} |",
            out.bytes,
            bytes_in as f64 / out.bytes as f64,
            bytes_in as f64 / 1e6 / wall,
            100.0 * cpu / wall,
            rss / 1024,
            load(),
        );
        digests.push((t, out.digest));
    }
    for (t, d) in &digests {
        assert_eq!(*d, digests[0].1, "-T {t} wrote a different archive");
    }
    println!(
        "archives of every thread count identical (FNV-1a {:016x})",
        digests[0].1
    );
}
