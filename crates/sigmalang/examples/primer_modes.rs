//! Prints an archive's primer length and how many of its records are coded in each mode
//! (`cargo run --release -p sigmalang --features internals --example primer_modes -- A.sga`).
//! `ADAPTIVE` and `ADAPTIVE2` are counted apart (after a primer, only its variant's mode
//! occurs); copies have no payload and are counted on their own.

use sigmalang::internals::record::Mode;

fn main() {
    let path = std::env::args().nth(1).expect("an archive");
    let mut r =
        sigmalang::ArchiveReader::open(std::fs::File::open(&path).expect("open")).expect("archive");
    const NAMES: [&str; 5] = ["STORED", "MODELED", "ADAPTIVE", "ADAPTIVE2", "copies"];
    let (mut counts, mut bytes) = ([0u64; 5], [0u64; 5]);
    for n in 0..r.len() {
        let payload = r.info(n).expect("record").payload_len;
        // The mode from the payload's header, or with a coded index from the index.
        let m = match r.payload_mode(n).expect("mode") {
            None => 4,
            Some(m) if m == Mode::Stored as u8 => 0,
            Some(m) if m == Mode::Modeled as u8 => 1,
            Some(m) if m == Mode::Adaptive as u8 => 2,
            Some(_) => 3,
        };
        counts[m] += 1;
        bytes[m] += payload;
    }
    let modes: Vec<String> = NAMES
        .iter()
        .zip(counts.iter().zip(&bytes))
        .map(|(name, (c, b))| format!("{name} {c} ({b} B)"))
        .collect();
    println!(
        "{path}: primer {} bytes; {}",
        r.archive().primer_len(),
        modes.join(", ")
    );
}
