//! Throughput of the batch encoder (README "Batch encoder").
//!
//! 1. Packs the texts of chat-train.jsonl into an in-memory archive with
//!    `ArchiveOptions::default().batch_records(64).threads(T)` (everything else default, the
//!    built-in codebook, metadata `field=text\n` as `sigma pack` writes it), for T = 1 and 2,
//!    and checks that the archives are byte-identical. The codebook is loaded once before any
//!    timing; a timed pack is writer creation, every `add`, `finish`. Passes alternate between
//!    T = 1 and T = 2; MB/s (10^6 bytes of text per wall-clock second) of the best and the
//!    median pass.
//! 2. Encodes every record of chat-dev.jsonl with one reused `record::Encoder` and with a fresh
//!    `Encoder::new` per record (same payloads, checked), whole passes alternating, and reports
//!    the time per record and the speedup; then the cost of `Encoder::new` alone, and the same
//!    comparison per record-size bucket (a fresh encoder's cost is per record, so its share
//!    depends on record length).
//!
//! ```sh
//! cargo run --release -p sigma-bench --example batch -- [--corpus DIR] [--passes N] [--out DIR]
//! ```
//!
//! With `--out DIR` the two archives are also written to DIR/batch-t1.sga and DIR/batch-t2.sga.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sigmalang::Encoder;
use sigmalang::{ArchiveOptions, ArchiveWriter, Codebook};

fn load(path: &Path) -> Vec<Vec<u8>> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(file)
        .lines()
        .map(|l| l.expect("read error"))
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).expect("invalid JSON line");
            v["text"]
                .as_str()
                .expect("no text field")
                .as_bytes()
                .to_vec()
        })
        .collect()
}

fn pack(
    codebook: &Arc<Codebook>,
    records: &[Vec<u8>],
    threads: usize,
    size_hint: usize,
) -> Vec<u8> {
    pack_with(codebook, records, threads, size_hint, false)
}

/// Packs `records`; with `report`, prints the writer's frame pool and encoder pool counters.
fn pack_with(
    codebook: &Arc<Codebook>,
    records: &[Vec<u8>],
    threads: usize,
    size_hint: usize,
    report: bool,
) -> Vec<u8> {
    let opts = ArchiveOptions::default()
        .batch_records(
            std::env::var("BATCH")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(64),
        )
        .threads(threads);
    let mut w = ArchiveWriter::with_options(
        Vec::with_capacity(size_hint),
        codebook.clone(),
        b"field=text\n",
        opts,
    )
    .expect("writer");
    for r in records {
        w.add(r).expect("add");
    }
    if report {
        w.flush().expect("flush");
        let f = w.frame_stats();
        let p = w.stats().pool;
        println!(
            "  threads {threads}: frame pool created {} frames, reused {}, {} free at the end; \
             encoder pools {} acquires, {} overflow allocations",
            f.frames_created,
            f.frames_reused,
            f.available,
            p.total_acquires,
            p.overflow_allocations
        );
    }
    w.finish().expect("finish")
}

fn mb_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort_unstable();
    s[s.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let mut corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let mut passes = 3usize;
    let mut out_dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--corpus" => corpus = args.next().expect("--corpus DIR").into(),
            "--passes" => {
                passes = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--passes N")
            }
            "--out" => out_dir = Some(args.next().expect("--out DIR").into()),
            _ => panic!("unknown argument {a}"),
        }
    }
    println!("load average before: {}", loadavg());
    let train = load(&corpus.join("chat-train.jsonl"));
    let dev = load(&corpus.join("chat-dev.jsonl"));
    let t = Instant::now();
    let codebook = Codebook::default_codebook();
    println!(
        "codebook loaded in {:.0} ms (not timed below)",
        t.elapsed().as_secs_f64() * 1e3
    );

    // 1. Batch encoder, threads 1 vs 2.
    let bytes: usize = train.iter().map(Vec::len).sum();
    println!("chat-train: {} records, {} text bytes", train.len(), bytes);
    let a1 = pack_with(&codebook, &train, 1, bytes / 3, true); // warm-up and reference archives
    let a2 = pack_with(&codebook, &train, 2, bytes / 3, true);
    assert!(a1 == a2, "archives of threads 1 and 2 differ");
    println!(
        "archives: threads 1 and 2 byte-identical, {} bytes (ratio {:.3})",
        a1.len(),
        bytes as f64 / a1.len() as f64
    );
    if let Some(dir) = &out_dir {
        std::fs::write(dir.join("batch-t1.sga"), &a1).expect("write");
        std::fs::write(dir.join("batch-t2.sga"), &a2).expect("write");
    }
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..passes {
        for (k, threads) in [1usize, 2].into_iter().enumerate() {
            let t = Instant::now();
            let a = pack(&codebook, &train, threads, a1.len() + 4096);
            times[k].push(t.elapsed());
            assert!(a == a1, "pass with {threads} threads differs");
        }
    }
    let best = |v: &[Duration]| *v.iter().min().unwrap();
    for (k, threads) in [1, 2].into_iter().enumerate() {
        println!(
            "pack threads {threads}: best {:.2} s = {:.1} MB/s, median {:.2} s = {:.1} MB/s ({} passes)",
            best(&times[k]).as_secs_f64(),
            mb_s(bytes, best(&times[k])),
            median(&times[k]).as_secs_f64(),
            mb_s(bytes, median(&times[k])),
            passes
        );
    }
    println!(
        "speedup threads 2 / threads 1: best {:.2}x, median {:.2}x",
        best(&times[0]).as_secs_f64() / best(&times[1]).as_secs_f64(),
        median(&times[0]).as_secs_f64() / median(&times[1]).as_secs_f64()
    );

    // 2. Reused encoder vs a fresh one per record.
    let dev_bytes: usize = dev.iter().map(Vec::len).sum();
    let mut reused = Encoder::new(codebook.clone());
    let mut expect = Vec::with_capacity(dev.len());
    let mut out = Vec::new();
    for r in &dev {
        out.clear();
        reused.encode(r, &mut out).expect("encode");
        expect.push(out.clone());
    }
    for (r, e) in dev.iter().zip(&expect) {
        let mut fresh = Encoder::new(codebook.clone());
        out.clear();
        fresh.encode(r, &mut out).expect("encode");
        assert!(&out == e, "fresh encoder payload differs");
    }
    let mut rt = Vec::new();
    let mut ft = Vec::new();
    for _ in 0..passes.max(3) {
        let t = Instant::now();
        for r in &dev {
            out.clear();
            reused.encode(r, &mut out).expect("encode");
        }
        rt.push(t.elapsed());
        let t = Instant::now();
        for r in &dev {
            let mut fresh = Encoder::new(codebook.clone());
            out.clear();
            fresh.encode(r, &mut out).expect("encode");
        }
        ft.push(t.elapsed());
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / dev.len() as f64;
    println!(
        "chat-dev: {} records, {} bytes; payloads identical both ways",
        dev.len(),
        dev_bytes
    );
    println!(
        "reused encoder: median {:.1} us/record ({:.1} MB/s); fresh Encoder::new per record: median {:.1} us/record ({:.1} MB/s); speedup {:.2}x (best {:.2}x)",
        per(median(&rt)),
        mb_s(dev_bytes, median(&rt)),
        per(median(&ft)),
        mb_s(dev_bytes, median(&ft)),
        median(&ft).as_secs_f64() / median(&rt).as_secs_f64(),
        best(&ft).as_secs_f64() / best(&rt).as_secs_f64()
    );

    // 2b. The same by record size: what a fresh encoder costs is fixed per record (its pool,
    // its match table), so its share depends on how long records are.
    let t = Instant::now();
    let rounds = 20_000;
    for _ in 0..rounds {
        std::hint::black_box(Encoder::new(codebook.clone()));
    }
    println!(
        "Encoder::new + drop alone: {:.2} us",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
    );
    println!(
        "by record size (chat-dev; bucket: records, reused us/record, fresh us/record, speedup):"
    );
    let buckets: [(usize, usize); 5] = [
        (0, 64),
        (65, 256),
        (257, 1024),
        (1025, 4096),
        (4097, usize::MAX),
    ];
    for (lo, hi) in buckets {
        let recs: Vec<&Vec<u8>> = dev
            .iter()
            .filter(|r| (lo..=hi).contains(&r.len()))
            .collect();
        if recs.is_empty() {
            continue;
        }
        // Enough repetitions that a pass of a bucket takes tens of milliseconds.
        let bucket_bytes: usize = recs.iter().map(|r| r.len() + 64).sum();
        let reps = (4_000_000 / bucket_bytes).max(1);
        let (mut rt, mut ft) = (Vec::new(), Vec::new());
        for _ in 0..passes.max(5) {
            let t = Instant::now();
            for _ in 0..reps {
                for r in &recs {
                    out.clear();
                    reused.encode(r, &mut out).expect("encode");
                }
            }
            rt.push(t.elapsed());
            let t = Instant::now();
            for _ in 0..reps {
                for r in &recs {
                    let mut fresh = Encoder::new(codebook.clone());
                    out.clear();
                    fresh.encode(r, &mut out).expect("encode");
                }
            }
            ft.push(t.elapsed());
        }
        let n = (recs.len() * reps) as f64;
        let us = |d: Duration| d.as_secs_f64() * 1e6 / n;
        let upper = if hi == usize::MAX {
            "".to_string()
        } else {
            hi.to_string()
        };
        println!(
            "  {lo}-{upper} bytes: {} records, {:.2} vs {:.2} us, {:.2}x",
            recs.len(),
            us(median(&rt)),
            us(median(&ft)),
            median(&ft).as_secs_f64() / median(&rt).as_secs_f64()
        );
    }
    println!("load average after: {}", loadavg());
}
