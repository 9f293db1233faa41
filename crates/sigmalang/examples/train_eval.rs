//! Trains a codebook on a JSONL corpus and measures it on another, record by record.
//!
//! `cargo run --release -p sigmalang --example train_eval -- TRAIN.jsonl DEV.jsonl [OUT.sgcb]
//!  [max_order min_count high_order min_count_high]`
//!
//! A development tool: the user-facing equivalents are `sigma train` and `sigma-bench`.

use std::time::Instant;

use sigmalang::{Codebook, TrainOptions};
use sigmalang::{Decoder, Encoder};

/// Extracts the `"text"` string field of each JSONL line (a minimal JSON string decoder).
fn texts(path: &str) -> Vec<Vec<u8>> {
    let data = std::fs::read_to_string(path).expect("read corpus");
    data.lines().filter_map(|l| field(l, "text")).collect()
}

fn field(line: &str, name: &str) -> Option<Vec<u8>> {
    let pat = format!("\"{name}\": \"");
    let start = line.find(&pat)? + pat.len();
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out.into_bytes()),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let mut cp = u32::from_str_radix(&hex, 16).ok()?;
                    if (0xD800..0xDC00).contains(&cp) {
                        let rest: String = chars.by_ref().take(6).collect();
                        let lo = u32::from_str_radix(rest.get(2..)?, 16).ok()?;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                }
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
    None
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // TRAIN may be `default` (the built-in codebook) or a codebook file (`*.sgcb`).
    let preset = match args[0].as_str() {
        "default" => Some(Codebook::default_codebook()),
        p if p.ends_with(".sgcb") => {
            Some(Codebook::from_bytes(&std::fs::read(p).expect("read codebook")).expect("codebook"))
        }
        _ => None,
    };
    let mut train = if preset.is_some() {
        Vec::new()
    } else {
        texts(&args[0])
    };
    // `holdout` measures on the last tenth of the training file (for tuning without touching
    // the test set).
    let dev = if args[1] == "holdout" {
        train.split_off(train.len() * 9 / 10)
    } else {
        texts(&args[1])
    };
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let opts = TrainOptions::default()
        .max_order(num(3, 6))
        .min_count(num(4, 2) as u32)
        .high_order(num(5, 5))
        .min_count_high(num(6, 2) as u32)
        .min_gain_per_mib(args.get(7).and_then(|s| s.parse().ok()).unwrap_or(0.0));
    let refs: Vec<&[u8]> = train.iter().map(|r| &r[..]).collect();
    let t = Instant::now();
    let cb = match preset {
        Some(cb) => cb,
        None => Codebook::train(&refs, &opts, &mut |_, _| {}).expect("train"),
    };
    let train_s = t.elapsed().as_secs_f64();
    let bytes = cb.to_bytes();
    if let Some(out) = args.get(2).filter(|s| *s != "-") {
        std::fs::write(out, &bytes).expect("write codebook");
    }
    let mut enc = Encoder::new(cb.clone());
    let mut dec = Decoder::new(cb.clone());
    let input: usize = dev.iter().map(|r| r.len()).sum();
    let mut payloads = Vec::with_capacity(dev.len());
    let t = Instant::now();
    for r in &dev {
        let mut p = Vec::new();
        enc.encode(r, &mut p).expect("encode");
        payloads.push(p);
    }
    let enc_s = t.elapsed().as_secs_f64();
    // REPEAT=n decodes n times and reports the fastest (for profiling and quieter timings).
    let repeat: usize = std::env::var("REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut dec_s = f64::MAX;
    let mut out = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        for (p, r) in payloads.iter().zip(&dev) {
            out.clear();
            dec.decode(p, &mut out).expect("decode");
            if &out != r {
                let at = out.iter().zip(r.iter()).position(|(a, b)| a != b);
                panic!(
                    "record of {} bytes decoded to {} bytes, first difference at {at:?}",
                    r.len(),
                    out.len()
                );
            }
        }
        dec_s = dec_s.min(t.elapsed().as_secs_f64());
    }
    let output: usize = payloads.iter().map(|p| p.len()).sum();
    println!(
        "{opts:?}\ncontexts {:?}\ncodebook {} bytes (heap {} MB), trained in {train_s:.1}s\n\
         dev: {} records, {input} -> {output} bytes, ratio {:.3}x, {:.3} bits/byte, encode {:.1} MB/s, decode {:.1} MB/s",
        cb.context_counts(),
        bytes.len(),
        cb.heap_bytes() >> 20,
        dev.len(),
        input as f64 / output as f64,
        output as f64 * 8.0 / input as f64,
        input as f64 / enc_s / 1e6,
        input as f64 / dec_s / 1e6,
    );
}
