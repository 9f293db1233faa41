//! Estimates what an archive *primer* would save (issue 13, archives): every record coded on its
//! own, against the codebook only, versus with a sample of the same input (the primer) that the
//! decoder holds before any record.
//!
//! `cargo run --release -p sigmalang --example primer_eval -- FILE.jsonl [PRIMER_KIB]` takes the
//! `text` field of every record; the primer is the texts of the first half joined by newlines,
//! cut to `PRIMER_KIB` thousand bytes (default 256); up to 300 records spread over the second half are coded
//! three ways:
//!
//! - `alone`: `Encoder::encode` of the record (an archive root today, without the bank);
//! - `frame`: the record coded against the primer as a context frame (the match model sees the
//!   primer; the context model is still the static one);
//! - `primed`: the stream-chunk cost of the record after the primer, `encode_chunk(primer ‖ record)`
//!   minus `encode_chunk(primer)`: the adaptive model (if the chunk is `ADAPTIVE`) and the
//!   match model both start from the primer. This is what a record would cost if its coder could
//!   start from the state after the primer (an estimate: the coder's end bytes make each
//!   difference uncertain by a byte or two).

use sigmalang::Encoder;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("a JSONL file");
    let kib: usize = args.next().map_or(256, |v| v.parse().expect("primer KiB"));
    let texts: Vec<Vec<u8>> = std::fs::read_to_string(&path)
        .expect("read")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            v["text"]
                .as_str()
                .expect("a text field")
                .as_bytes()
                .to_vec()
        })
        .collect();
    let half = texts.len() / 2;
    let mut primer = Vec::new();
    for t in &texts[..half] {
        primer.extend_from_slice(t);
        primer.push(b'\n');
    }
    // Below a power of two with room for the records, so that primer and primer ‖ record get
    // tables of the same size (the sizes follow the length, FORMAT.md §3.3-3.4).
    primer.truncate(kib * 1000);
    let step = ((texts.len() - half) / 300).max(1);
    let mut enc = Encoder::default();
    let mut p = Vec::new();
    enc.encode_chunk(&primer, &mut p).expect("primer");
    let primer_coded = p.len();
    let (mut raw, mut alone, mut frame, mut primed, mut n) = (0, 0, 0, 0i64, 0);
    let mut buf = primer.clone();
    for t in texts[half..].iter().step_by(step).take(300) {
        raw += t.len();
        p.clear();
        enc.encode(t, &mut p).expect("record");
        alone += p.len();
        p.clear();
        enc.encode_with_frames(&[&primer], t, &mut p)
            .expect("record");
        frame += p.len();
        buf.truncate(primer.len());
        buf.extend_from_slice(t);
        p.clear();
        enc.encode_chunk(&buf, &mut p).expect("chunk");
        primed += p.len() as i64 - primer_coded as i64;
        n += 1;
    }
    let r = |c: i64| raw as f64 / c as f64;
    println!(
        "{path}: {n} records, {raw} bytes; primer {} bytes -> {primer_coded} coded; \
         alone {alone} ({:.2}x), frame {frame} ({:.2}x), primed {primed} ({:.2}x)",
        primer.len(),
        r(alone as i64),
        r(frame as i64),
        r(primed)
    );
}
