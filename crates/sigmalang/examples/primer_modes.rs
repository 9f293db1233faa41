//! Prints an archive's primer length and how many of its records are coded in each mode
//! (`cargo run --release -p sigmalang --features internals --example primer_modes -- A.sga`).

use sigmalang::internals::record::{read_header, Mode};
use std::io::{Read, Seek, SeekFrom};

fn main() {
    let path = std::env::args().nth(1).expect("an archive");
    let mut f = std::fs::File::open(&path).expect("open");
    let r =
        sigmalang::ArchiveReader::open(std::fs::File::open(&path).expect("open")).expect("archive");
    let (mut counts, mut bytes) = ([0u64; 3], [0u64; 3]);
    let mut head = [0u8; 10];
    for n in 0..r.len() {
        let info = r.info(n).expect("record");
        f.seek(SeekFrom::Start(info.offset)).expect("seek");
        let k = (info.payload_len as usize).min(10);
        f.read_exact(&mut head[..k]).expect("read");
        let h = read_header(&head[..k]).expect("header");
        let m = match h.mode {
            Mode::Stored => 0,
            Mode::Modeled => 1,
            Mode::Adaptive | Mode::Adaptive2 => 2,
        };
        counts[m] += 1;
        bytes[m] += info.payload_len;
    }
    println!(
        "{path}: primer {} bytes; STORED {} ({} B), MODELED {} ({} B), ADAPTIVE {} ({} B)",
        r.archive().primer_len(),
        counts[0],
        bytes[0],
        counts[1],
        bytes[1],
        counts[2],
        bytes[2]
    );
}
