//! What reading one record of an archive costs, warm (a library reader kept open):
//! `cargo run --release -p sigmalang --example page_latency -- ARCHIVE.sga [GETS]`.
//!
//! Prints the time to open the archive, to decode its primer (once per `Archive` handle; 0
//! without one), and the median and 90th percentile of `GETS` (default 200) `get`s of records
//! at random by one reader (as a server that keeps the archive open: the primer stays decoded;
//! a record of the page read last costs nothing, which random records rarely hit), and the
//! mean CPU time of a `get` (this thread's, from `/proc/thread-self/schedstat`).

use std::time::Instant;

use sigmalang::ArchiveReader;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("an archive");
    let gets: usize = args
        .next()
        .map_or(200, |v| v.parse().expect("a number of gets"));
    let bytes = std::fs::read(&path).expect("read the archive");
    let t = Instant::now();
    let mut reader = ArchiveReader::open(std::io::Cursor::new(&bytes[..])).expect("open");
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let primer = reader.primer().expect("the primer");
    let primer_ms = t.elapsed().as_secs_f64() * 1e3;
    let archive = reader.archive().clone();
    let n = archive.len();
    // The reader's copy of the primer's state is made by its first get: not timed.
    reader.get(0).expect("get");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut times = Vec::with_capacity(gets);
    let mut decoded = 0u64;
    let cpu_start = thread_cpu_ns();
    for _ in 0..gets {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = Instant::now();
        decoded += reader.get(x % n).expect("get").len() as u64;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // CPU time of this thread over all the gets (Linux; absent elsewhere): unlike wall time,
    // it does not grow with the machine's load.
    let cpu_ms = thread_cpu_ns()
        .zip(cpu_start)
        .map(|(end, start)| (end - start) as f64 / 1e6 / gets as f64);
    times.sort_by(f64::total_cmp);
    println!(
        "{path}: {} bytes, {n} records, page size {}, primer {} bytes; open {open_ms:.2} ms, primer {primer_ms:.1} ms; get median {:.2} ms, p90 {:.2} ms, CPU {} ms a get ({gets} gets, {decoded} bytes)",
        bytes.len(),
        archive.page_bytes(),
        primer.map_or(0, |p| p.len()),
        times[gets / 2],
        times[gets * 9 / 10],
        cpu_ms.map_or("?".to_owned(), |c| format!("{c:.3}")),
    );
}

/// This thread's CPU time so far, in ns (`/proc/thread-self/schedstat`, Linux).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
