//! Compares the stream coding of this build (8 MiB chunks, each `MODELED` or `ADAPTIVE` as
//! `Encoder::encode_chunk` chooses) with the static path of format version 2 (1 MiB chunks,
//! every chunk `MODELED`), on whole files, in the same run.
//!
//! `cargo run --release -p sigmalang --example adaptive_eval -- FILE...` prints, per file and
//! path, the coded size (the sum of the chunk payloads), the ratio, bits per byte, the chunk
//! modes and the single-thread encode and decode speeds (best of `RUNS`, default 1), and checks
//! that every chunk decodes back. Speeds are per second of the thread's CPU time (Linux
//! `/proc/thread-self/schedstat`; wall time elsewhere), so that other processes on a shared
//! machine inflate them less.

use std::time::Instant;

/// A clock of this thread's CPU time in seconds (wall time if the kernel does not tell).
struct Clock(Option<u64>, Instant);

impl Clock {
    fn cpu_ns() -> Option<u64> {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        s.split_whitespace().next()?.parse().ok()
    }

    fn start() -> Clock {
        Clock(Clock::cpu_ns(), Instant::now())
    }

    fn seconds(&self) -> f64 {
        match (self.0, Clock::cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => self.1.elapsed().as_secs_f64(),
        }
    }
}

use sigmalang::internals::record::read_header;
use sigmalang::{Decoder, Encoder};

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = std::env::var("RUNS").map_or(1, |v| v.parse().expect("RUNS"));
    for f in &files {
        let data = std::fs::read(f).expect("read");
        let paths: Vec<(String, usize, bool)> = match std::env::var("PATHS") {
            // e.g. PATHS=s1,s8,a4,a8: static or chosen (encode_chunk), chunk size in MiB.
            Ok(p) => p
                .split(',')
                .map(|d| {
                    let mib: usize = d[1..].parse().expect("chunk MiB");
                    (format!("{d}M"), mib << 20, d.starts_with('a'))
                })
                .collect(),
            Err(_) => vec![
                ("v2-static-1M".into(), 1 << 20, false),
                ("v3-8M".into(), 8 << 20, true),
            ],
        };
        for (name, chunk, adaptive) in paths {
            let name = name.as_str();
            let (mut te, mut td) = (f64::MAX, f64::MAX);
            let mut payloads = Vec::new();
            for _ in 0..runs {
                let mut enc = Encoder::default();
                let mut dec = Decoder::default();
                let t = Clock::start();
                payloads.clear();
                for c in data.chunks(chunk) {
                    let mut p = Vec::new();
                    if adaptive {
                        enc.encode_chunk(c, &mut p).expect("encode");
                    } else {
                        enc.encode(c, &mut p).expect("encode");
                    }
                    payloads.push(p);
                }
                te = te.min(t.seconds());
                let t = Clock::start();
                let mut out = Vec::with_capacity(data.len());
                for p in &payloads {
                    dec.decode_chunk(p, &mut out).expect("decode");
                }
                td = td.min(t.seconds());
                assert!(out == data, "{f} {name}: round trip failed");
            }
            let size: usize = payloads.iter().map(Vec::len).sum();
            let modes: String = payloads
                .iter()
                .map(|p| match read_header(p).expect("header").mode as u8 {
                    0 => 'S',
                    1 => 'M',
                    2 => 'A',
                    _ => '2',
                })
                .collect();
            let mb = data.len() as f64 / 1e6;
            println!(
                "{:<18} {:<13} {:>9} {:>9} {:>6.2}x {:>5.3} bpb enc {:>5.1} MB/s dec {:>5.1} MB/s {}",
                f.rsplit('/').next().unwrap_or(f),
                name,
                data.len(),
                size,
                data.len() as f64 / size as f64,
                size as f64 * 8.0 / data.len() as f64,
                mb / te,
                mb / td,
                modes
            );
        }
    }
}
