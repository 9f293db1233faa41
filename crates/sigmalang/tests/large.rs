//! A 64 MiB input streamed through `StreamWriter` into a temporary file and back through
//! `StreamReader`, never held in memory, with a counting global allocator that checks the heap
//! stays bounded by a few chunk sizes.
//!
//! The tests in this binary measure the process-wide heap, so they take `MEASURE` to run one at a
//! time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, BufReader, Read, Seek, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sigmalang::{compress, decompress, StreamReader, StreamWriter};
use sigmalang::{Codebook, StreamOptions};

/// `System`, counting the bytes currently allocated and the peak since the last reset.
struct CountingAlloc;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl CountingAlloc {
    fn grew(by: usize) {
        let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }

    fn shrank(by: usize) {
        CURRENT.fetch_sub(by, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            CountingAlloc::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            CountingAlloc::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        CountingAlloc::shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Count the new block before the old one goes, as a moving realloc holds both.
            CountingAlloc::grew(new_size);
            CountingAlloc::shrank(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Serializes the tests of this binary: the counters are process-wide.
static MEASURE: Mutex<()> = Mutex::new(());

/// Starts a measurement: returns the bytes allocated now, and resets the peak to it.
fn start_measuring() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// The peak heap above `base` since [`start_measuring`].
fn peak_above(base: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

const MIB: usize = 1 << 20;

/// Deterministic pseudo-text (words, punctuation, UTF-8, JSON-ish bits), generated as it is
/// read, `len` bytes in all.
struct PseudoText {
    state: u64,
    left: u64,
    word: &'static [u8],
}

const WORDS: &[&str] = &[
    "the ",
    "of ",
    "and ",
    "a ",
    "to ",
    "in ",
    "is ",
    "you ",
    "that ",
    "it ",
    "model ",
    "token ",
    "SigmaLang ",
    "compress",
    "ion ",
    "glyph ",
    "42 ",
    "3.14 ",
    "é ",
    "naïve ",
    "日本語 ",
    "😀 ",
    "\n",
    "\n\n",
    ". ",
    ", ",
    "? ",
    "```rust\nfn main() {}\n```\n",
    "{\"role\": \"user\", ",
    "\"content\": \"",
    "\"}",
    "- item ",
    "# Heading\n",
    "User: ",
    "Assistant: ",
];

impl PseudoText {
    fn new(seed: u64, len: u64) -> PseudoText {
        PseudoText {
            state: seed | 1,
            left: len,
            word: b"",
        }
    }

    fn next_word(&mut self) -> &'static [u8] {
        // xorshift64
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        WORDS[(self.state % WORDS.len() as u64) as usize].as_bytes()
    }
}

impl Read for PseudoText {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let mut n = 0;
        while n < want {
            if self.word.is_empty() {
                self.word = self.next_word();
            }
            let k = self.word.len().min(want - n);
            buf[n..n + k].copy_from_slice(&self.word[..k]);
            self.word = &self.word[k..];
            n += k;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// FNV-1a 64, byte by byte, so the hash does not depend on how the data is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A reader adapter that counts and hashes what passes through.
struct HashingReader<R> {
    inner: R,
    hash: Fnv,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A sink that counts, hashes, and compares what it is given with a regenerated copy of the
/// expected text, keeping nothing.
struct VerifyingSink {
    expected: PseudoText,
    scratch: Vec<u8>,
    hash: Fnv,
    count: u64,
    first_mismatch: Option<u64>,
}

impl Write for VerifyingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.scratch.len());
        let got = &buf[..n];
        let want = &mut self.scratch[..n];
        let k = self.expected.read(want)?;
        if self.first_mismatch.is_none() && (k != n || got != &want[..k]) {
            let at = got.iter().zip(&want[..k]).position(|(a, b)| a != b);
            self.first_mismatch = Some(self.count + at.unwrap_or(k) as u64);
        }
        self.hash.update(got);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn sixty_four_mib_streams_in_bounded_memory() {
    let _guard = MEASURE.lock().unwrap_or_else(|e| e.into_inner());
    const LEN: u64 = 64 << 20;
    const CHUNK: usize = MIB;
    const SEED: u64 = 0x5167_6d61_4c61_6e67;

    // Warm up: whatever the codec builds once per process (tables, a shared codebook) is not
    // per-stream memory.
    assert_eq!(decompress(&compress(b"warm up")).unwrap(), b"warm up");
    let mut file = tempfile::tempfile().unwrap();
    let mut sink = VerifyingSink {
        expected: PseudoText::new(SEED, LEN),
        scratch: vec![0u8; 64 << 10],
        hash: Fnv::new(),
        count: 0,
        first_mismatch: None,
    };

    // Encode: generator → StreamWriter → temporary file.
    let base = start_measuring();
    let mut source = HashingReader {
        inner: PseudoText::new(SEED, LEN),
        hash: Fnv::new(),
        count: 0,
    };
    let mut writer = StreamWriter::with_options(
        &mut file,
        Codebook::default_codebook(),
        StreamOptions::default().chunk_size(CHUNK),
    )
    .unwrap();
    io::copy(&mut source, &mut writer).unwrap();
    assert_eq!(writer.bytes_in(), LEN);
    writer.finish().unwrap();
    let encode_peak = peak_above(base);
    assert_eq!(source.count, LEN);
    let compressed_len = file.stream_position().unwrap();

    // Decode: temporary file → StreamReader → verifying sink.
    file.rewind().unwrap();
    let base = start_measuring();
    let mut reader = StreamReader::new(BufReader::new(&mut file));
    let copied = io::copy(&mut reader, &mut sink).unwrap();
    drop(reader);
    let decode_peak = peak_above(base);

    assert_eq!(copied, LEN);
    assert_eq!(sink.count, LEN);
    assert_eq!(
        sink.first_mismatch, None,
        "decoded text differs from the input"
    );
    assert_eq!(sink.hash, source.hash);
    assert!(compressed_len > 0);

    // Per stream, the writer holds a chunk of pending input, the encoded frame, and the coder's
    // body buffer (which grows by doubling, so up to two chunks on an incompressible chunk); the
    // reader an encoded payload and its decoded chunk. That is at most four chunk sizes plus small
    // buffers; the coder's working state adds the match model's hash table (at most 1 MiB) and
    // the adaptive model's context table (16 bytes per chunk byte in `ADAPTIVE2`, at most 32 MiB:
    // FORMAT.md §3.5; 8 bytes in `ADAPTIVE`, which the writer no longer uses). Six chunk sizes
    // (6 MiB) and that table hold all of it and are still 2.9x below the input. A codec that kept
    // the input or output (64 MiB), or a sizable part of it, would fail.
    let bound = 6 * CHUNK + 16 * CHUNK;
    assert!(
        encode_peak < bound,
        "encoding peaked at {encode_peak} bytes of heap (bound {bound})"
    );
    assert!(
        decode_peak < bound,
        "decoding peaked at {decode_peak} bytes of heap (bound {bound})"
    );
}

#[test]
fn many_small_chunks_stay_in_bounded_memory() {
    let _guard = MEASURE.lock().unwrap_or_else(|e| e.into_inner());
    // A legitimate stream of 2 Mi one-byte chunks (`stream.rs` says memory stays bounded by the
    // chunk size however long the input is). A reader must not need memory in proportion to the
    // number of chunks either: a hostile stream of tiny chunks would otherwise make it use
    // about twice the stream's size.
    const LEN: u64 = 2 << 20;
    assert_eq!(decompress(&compress(b"warm up")).unwrap(), b"warm up");
    let mut file = tempfile::tempfile().unwrap();

    let base = start_measuring();
    let mut writer = StreamWriter::with_options(
        &mut file,
        Codebook::default_codebook(),
        StreamOptions::default().chunk_size(1),
    )
    .unwrap();
    io::copy(&mut PseudoText::new(7, LEN), &mut writer).unwrap();
    writer.finish().unwrap();
    let encode_peak = peak_above(base);

    file.rewind().unwrap();
    let base = start_measuring();
    let mut reader = StreamReader::new(BufReader::new(&mut file));
    let copied = io::copy(&mut reader, &mut io::sink()).unwrap();
    drop(reader);
    let decode_peak = peak_above(base);
    assert_eq!(copied, LEN);

    // The reader keeps no per-chunk state. The writer keeps the index it writes at the end,
    // two varints a chunk (here 2 bytes each), as `stream.rs` documents; the vector holding it
    // may have up to twice that capacity.
    let bound = MIB;
    let writer_bound = bound + 2 * 4 * LEN as usize;
    assert!(
        encode_peak < writer_bound && decode_peak < bound,
        "{LEN} one-byte chunks: encoding peaked at {encode_peak} bytes of heap, decoding at \
         {decode_peak} (bound {bound})"
    );
}
