//! Experiment (issue 13, near repeats; not part of the build): what a near-repeat frame would
//! save per record. For each record of a JSONL file (its "text" field, or whole lines with
//! `lines`), codes it against (a) the two records before it, as an unkeyed context mostly does
//! today (no primer, no Σ-bank), and (b) if at least half its 6-byte shingles occur in one
//! earlier record within WINDOW records (not one of the two before), against that record and
//! the record before it; keeps (b) where it is smaller by more than the 2 bytes an index
//! reference would take (a writer coding both would choose so). Exact repeats count 3 bytes
//! (a copy's entry, about; FORMAT.md §5.8). Prints the payload totals and the saving.
//!
//! `cargo run --release --manifest-path scripts/near-frames/Cargo.toml -- FILE [WINDOW] [lines]`
use std::collections::HashMap;
use std::io::BufRead;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = &args[1];
    let window: usize = args.get(2).map_or(100_000, |s| s.parse().unwrap());
    let whole = args.get(3).is_some_and(|s| s == "lines");
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let recs: Vec<Vec<u8>> = f
        .lines()
        .map(|l| {
            let l = l.unwrap();
            if whole {
                l.into_bytes()
            } else {
                let v: serde_json::Value = serde_json::from_str(&l).unwrap();
                v["text"].as_str().unwrap().as_bytes().to_vec()
            }
        })
        .collect();
    let cb = sigmalang::Codebook::default_codebook();
    let mut enc = sigmalang::Encoder::new(cb);
    let mut payload = Vec::new();
    const K: usize = 6;
    // shingle hash -> records holding it (most recent last, at most 8 kept)
    let mut index: HashMap<u64, Vec<u32>> = HashMap::new();
    let (mut today, mut near, mut chosen, mut exact) = (0u64, 0u64, 0u64, 0u64);
    let mut gain = 0u64;
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for (i, r) in recs.iter().enumerate() {
        let prev: Vec<&[u8]> = (i.saturating_sub(2)..i).map(|j| &recs[j][..]).collect();
        payload.clear();
        enc.encode_with_frame_iter(prev.iter().copied(), r, &mut payload).unwrap();
        let a = payload.len() as u64;
        today += a;
        if seen.contains_key(r) {
            exact += 1;
            near += 3; // a copy entry
            continue;
        }
        seen.insert(r.clone(), i);
        // candidates by shingles
        let mut votes: HashMap<u32, u32> = HashMap::new();
        let hs: Vec<u64> = r
            .windows(K)
            .map(|w| w.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3)))
            .collect();
        for h in &hs {
            if let Some(v) = index.get(h) {
                for &j in v {
                    if (j as usize) + 2 < i && i - (j as usize) <= window {
                        *votes.entry(j).or_default() += 1;
                    }
                }
            }
        }
        let best = votes.iter().max_by_key(|(j, c)| (**c, **j)).map(|(j, c)| (*j as usize, *c));
        let mut b = a;
        if let Some((j, c)) = best {
            if c as usize * 2 >= hs.len().max(1) {
                let frames = [&recs[j][..], &recs[i - 1][..]];
                payload.clear();
                enc.encode_with_frame_iter(frames.iter().copied(), r, &mut payload).unwrap();
                // + ~2 bytes for the reference in the index
                let cand = payload.len() as u64 + 2;
                if cand < a {
                    gain += a - cand;
                    b = cand;
                    chosen += 1;
                }
            }
        }
        near += b;
        for h in hs {
            let v = index.entry(h).or_default();
            v.push(i as u32);
            if v.len() > 8 {
                v.remove(0);
            }
        }
    }
    println!(
        "{path}: {} records, today (2 previous frames) {today} payload bytes; with exact copies (3 B) and a near frame where it pays (+2 B): {near} ({} exact, {chosen} near saving {gain} B)",
        recs.len(), exact
    );
}
