//! The stream container: what `sigma compress` writes. A header, then the input cut into chunks
//! that are encoded as independent records, then a trailer with the chunk index and a checksum of
//! the whole content. A reader's memory is bounded by the chunk size however long the stream is;
//! a writer's by the chunk size plus the index it writes at the end (two varints a chunk: a few
//! bytes per MiB of input at the default chunk size).
//!
//! The byte layout is in `docs/FORMAT.md`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{mpsc, Arc, Mutex};

use crate::checksum::{crc32c, Crc32c};
use crate::codebook::{Codebook, CodebookId};
use crate::error::{Error, ErrorKind, Result};
use crate::record::{self, Decoder, Encoder, EncoderConfig};
use crate::varint;

/// The four magic bytes every SigmaLang file starts with: `Σ` in UTF-8, then `LG`.
pub const MAGIC: [u8; 4] = [0xCE, 0xA3, b'L', b'G'];
/// The container format version this build writes and reads. Version 2 (this build) codes
/// first visits of a context with frequencies that sum to exactly 2^16; version 1 files (never
/// released) are refused.
pub const FORMAT_VERSION: u8 = 2;
/// The size of the file header.
pub const HEADER_LEN: usize = 20;
/// The default amount of input coded as one chunk.
pub const DEFAULT_CHUNK_SIZE: usize = 1 << 20;
/// The largest chunk a reader accepts. Bounds a reader's memory, and its work on a hostile
/// chunk (decoding time is proportional to the length a chunk declares).
pub const MAX_CHUNK_SIZE: usize = 16 << 20;

/// What a SigmaLang file holds, as its header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FileKind {
    /// A chunked stream of one input (`sigma compress`).
    Stream = 1,
    /// A record archive with an index (`sigma pack`).
    Archive = 2,
}

/// The fixed header of every SigmaLang file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// What follows the header.
    pub kind: FileKind,
    /// The codebook the file's records were coded with.
    pub codebook: CodebookId,
}

impl FileHeader {
    /// The header's 20 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&MAGIC);
        h[4] = FORMAT_VERSION;
        h[5] = self.kind as u8;
        // h[6..8]: flags, all reserved and zero.
        h[8..16].copy_from_slice(&self.codebook.0.to_le_bytes());
        let crc = crc32c(&h[..16]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Parses and checks a header.
    pub fn parse(h: &[u8]) -> Result<FileHeader> {
        if h.len() < 4 && MAGIC.starts_with(h) {
            return Err(Error::truncated("the file header", h.len() as u64));
        }
        if h.len() < 4 || h[..4] != MAGIC {
            return Err(Error::at(
                ErrorKind::BadMagic {
                    found: h[..h.len().min(4)].to_vec(),
                },
                0,
            ));
        }
        if h.len() < HEADER_LEN {
            return Err(Error::truncated("the file header", h.len() as u64));
        }
        let stored = u32::from_le_bytes(h[16..20].try_into().expect("4 bytes"));
        let computed = crc32c(&h[..16]);
        if stored != computed {
            return Err(Error::at(
                ErrorKind::Checksum {
                    what: "the file header",
                    expected: stored,
                    found: computed,
                },
                16,
            ));
        }
        if h[4] != FORMAT_VERSION {
            return Err(Error::at(
                ErrorKind::UnsupportedVersion {
                    what: "container",
                    found: u32::from(h[4]),
                    supported: u32::from(FORMAT_VERSION),
                },
                4,
            ));
        }
        let kind = match h[5] {
            1 => FileKind::Stream,
            2 => FileKind::Archive,
            k => return Err(Error::corrupt(format!("unknown file kind {k}"), 5)),
        };
        if h[6] != 0 || h[7] != 0 {
            return Err(Error::corrupt("reserved header flags are set", 6));
        }
        let codebook = CodebookId(u64::from_le_bytes(h[8..16].try_into().expect("8 bytes")));
        Ok(FileHeader { kind, codebook })
    }
}

/// A chunk coded by a worker: its raw bytes and its payload.
type CodedChunk = (Vec<u8>, Result<Vec<u8>>);

/// Writes a stream: buffers input, encodes it chunk by chunk, and writes the trailer on
/// [`finish`](StreamWriter::finish). Dropping it without `finish` leaves an incomplete stream,
/// which readers reject.
pub struct StreamWriter<W: Write> {
    inner: W,
    encoder: Encoder,
    chunk_size: usize,
    pending: Vec<u8>,
    /// With several workers: the chunks being coded, oldest first (each reports its raw bytes
    /// and payload when done), the workers' encoders and their threads.
    in_flight: VecDeque<mpsc::Receiver<CodedChunk>>,
    config: EncoderConfig,
    workers: Arc<Vec<Mutex<Encoder>>>,
    threads: Option<rayon::ThreadPool>,
    frame: Vec<u8>,
    /// The chunk index as the trailer encodes it: varint payload length, varint raw length.
    index: Vec<u8>,
    chunks: u64,
    content_crc: Crc32c,
    total_in: u64,
    total_out: u64,
}

impl<W: Write> StreamWriter<W> {
    /// A writer with the default chunk size; writes the file header at once.
    pub fn new(inner: W) -> Result<StreamWriter<W>> {
        StreamWriter::with_chunk_size(inner, DEFAULT_CHUNK_SIZE)
    }

    /// A writer with the default codebook that codes every `chunk_size` bytes of input as one
    /// chunk.
    pub fn with_chunk_size(inner: W, chunk_size: usize) -> Result<StreamWriter<W>> {
        StreamWriter::with_options(inner, Codebook::default_codebook(), chunk_size)
    }

    /// A writer that models with `codebook` and codes every `chunk_size` bytes as one chunk.
    pub fn with_options(
        mut inner: W,
        codebook: Arc<Codebook>,
        chunk_size: usize,
    ) -> Result<StreamWriter<W>> {
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::invalid(format!(
                "chunk size must be 1..={MAX_CHUNK_SIZE}, got {chunk_size}"
            )));
        }
        let header = FileHeader {
            kind: FileKind::Stream,
            codebook: codebook.id(),
        };
        inner.write_all(&header.to_bytes())?;
        Ok(StreamWriter {
            inner,
            encoder: Encoder::new(codebook),
            chunk_size,
            pending: Vec::with_capacity(chunk_size),
            in_flight: VecDeque::new(),
            config: EncoderConfig::default(),
            workers: Arc::new(Vec::new()),
            threads: None,
            frame: Vec::new(),
            index: Vec::new(),
            chunks: 0,
            content_crc: Crc32c::new(),
            total_in: 0,
            total_out: HEADER_LEN as u64,
        })
    }

    /// Bytes of input taken so far.
    pub fn bytes_in(&self) -> u64 {
        self.total_in
    }

    /// Bytes written to the inner writer so far.
    pub fn bytes_out(&self) -> u64 {
        self.total_out
    }

    /// Sets the memory configuration of the writer's encoders (call before
    /// [`with_threads`](Self::with_threads)). Output never depends on it.
    pub fn with_encoder_config(mut self, config: EncoderConfig) -> StreamWriter<W> {
        let codebook = Arc::clone(self.encoder.codebook());
        self.encoder = Encoder::with_config(codebook, config);
        self.config = config;
        self
    }

    /// Codes chunks on `threads` worker threads (0: one per core) while the caller goes on
    /// writing: each full chunk is handed to the workers, and coded chunks are written in
    /// order as they are done, at most two per thread in flight. The stream's bytes do not
    /// depend on the number of threads; memory grows to about three chunk sizes per thread.
    pub fn with_threads(mut self, threads: usize) -> Result<StreamWriter<W>> {
        let n = crate::workers::count(threads);
        if n > 1 {
            let codebook = Arc::clone(self.encoder.codebook());
            let config = self.config;
            self.workers = Arc::new(
                (0..n)
                    .map(|_| Mutex::new(Encoder::with_config(Arc::clone(&codebook), config)))
                    .collect(),
            );
            self.threads = Some(crate::workers::pool(n, "encoder")?);
        }
        Ok(self)
    }

    /// The counters of the writer's encoders, summed.
    pub fn stats(&self) -> crate::record::EncoderStats {
        let mut total = self.encoder.stats();
        for w in self.workers.iter() {
            total.merge(&w.lock().unwrap_or_else(|e| e.into_inner()).stats());
        }
        total
    }

    fn flush_chunk(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(pool) = &self.threads else {
            let mut payload = std::mem::take(&mut self.frame);
            payload.clear();
            self.encoder.encode(&self.pending, &mut payload)?;
            let raw = std::mem::take(&mut self.pending);
            let r = self.write_chunk(&raw, &payload);
            self.pending = raw;
            self.pending.clear();
            self.frame = payload;
            return r;
        };
        let full = std::mem::replace(&mut self.pending, Vec::with_capacity(self.chunk_size));
        let (tx, rx) = mpsc::channel();
        let workers = Arc::clone(&self.workers);
        pool.spawn(move || {
            // A panic (a bug) becomes the chunk's error instead of aborting the process.
            let coded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let w = rayon::current_thread_index().unwrap_or(0) % workers.len();
                let mut enc = workers[w].lock().unwrap_or_else(|e| e.into_inner());
                let mut payload = Vec::with_capacity(full.len() / 3 + 16);
                enc.encode(&full, &mut payload).map(|()| payload)
            }))
            .unwrap_or_else(|_| {
                Err(Error::invalid(
                    "a stream worker panicked (a bug; please report it)",
                ))
            });
            // The writer may have been dropped meanwhile; then nobody waits for the chunk.
            let _ = tx.send((full, coded));
        });
        self.in_flight.push_back(rx);
        // The woken worker may be queued on this thread's core while the other core idles
        // (see the archive writer): yielding lets it start now.
        std::thread::yield_now();
        self.write_coded(2 * self.workers.len())
    }

    /// Writes the chunks that are coded, in order, waiting for the oldest ones while more than
    /// `keep` are in flight.
    fn write_coded(&mut self, keep: usize) -> Result<()> {
        while let Some(front) = self.in_flight.front() {
            let coded = if self.in_flight.len() > keep {
                front.recv().ok()
            } else {
                match front.try_recv() {
                    Ok(coded) => Some(coded),
                    Err(mpsc::TryRecvError::Empty) => return Ok(()),
                    Err(mpsc::TryRecvError::Disconnected) => None,
                }
            };
            self.in_flight.pop_front();
            let (raw, payload) = coded.ok_or_else(|| {
                Error::invalid("a stream worker stopped before finishing its chunk")
            })?;
            self.write_chunk(&raw, &payload?)?;
        }
        Ok(())
    }

    fn write_chunk(&mut self, raw: &[u8], payload: &[u8]) -> Result<()> {
        let mut head = Vec::with_capacity(varint::MAX_LEN);
        varint::write(&mut head, payload.len() as u64);
        let mut crc = Crc32c::new();
        crc.update(&head);
        crc.update(payload);
        self.inner.write_all(&head)?;
        self.inner.write_all(payload)?;
        self.inner.write_all(&crc.finish().to_le_bytes())?;
        self.total_out += (head.len() + payload.len() + 4) as u64;
        varint::write(&mut self.index, payload.len() as u64);
        varint::write(&mut self.index, raw.len() as u64);
        self.chunks += 1;
        self.content_crc.update(raw);
        Ok(())
    }

    /// Codes what is buffered, writes the end marker and trailer, and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.flush_chunk()?;
        self.write_coded(0)?;
        let mut t = Vec::new();
        varint::write(&mut t, 0); // end marker
        varint::write(&mut t, self.chunks);
        t.extend_from_slice(&self.index);
        varint::write(&mut t, self.total_in);
        t.extend_from_slice(&self.content_crc.finish().to_le_bytes());
        let crc = crc32c(&t);
        t.extend_from_slice(&crc.to_le_bytes());
        let len = t.len() as u32 + 4;
        t.extend_from_slice(&len.to_le_bytes());
        self.inner.write_all(&t)?;
        self.inner.flush()?;
        self.total_out += t.len() as u64;
        Ok(self.inner)
    }
}

impl<W: Write> Write for StreamWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.chunk_size - self.pending.len();
        let n = room.min(buf.len());
        self.pending.extend_from_slice(&buf[..n]);
        self.total_in += n as u64;
        if self.pending.len() == self.chunk_size {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a stream, yielding the original bytes. Every chunk's checksum is verified before it is
/// decoded, and the content checksum and index when the trailer is reached.
///
/// A reader yields the chunks it has verified before it reaches a damaged one; the error comes
/// when it reaches the damage. Callers that must not keep partial output (the CLI) write to a
/// temporary file and keep it only when the whole stream has been read without error.
pub struct StreamReader<R: Read> {
    inner: R,
    offset: u64,
    decoder: Decoder,
    header: Option<FileHeader>,
    payload: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// Chunks read so far, and a checksum of their index entries as the trailer encodes them:
    /// the trailer is checked against it without keeping the index in memory.
    chunks: u64,
    index_crc: Crc32c,
    content_crc: Crc32c,
    total: u64,
    done: bool,
    /// Set once an error was returned: a damaged stream never yields more data.
    failed: bool,
    /// How far the chunks taken so far reach in the stream (the read-ahead of a reader with
    /// threads reads further): where a failed reader says it stopped.
    reached: u64,
    /// With worker threads: the chunks read ahead (verified, being decoded), and what ended
    /// the read-ahead (the end marker or an error), in stream order.
    ahead: VecDeque<Ahead>,
    threads: Option<rayon::ThreadPool>,
    decoders: Arc<Vec<Mutex<Decoder>>>,
}

/// What the next chunk of a stream is, once read and verified.
enum Next {
    /// A chunk: its payload (checksum and header checked), where the payload starts in the
    /// stream, and its index.
    Chunk {
        payload: Vec<u8>,
        start: u64,
        number: u64,
    },
    /// The end marker (its bytes, for the trailer's checksum); the trailer follows.
    End(Vec<u8>),
}

/// A chunk read ahead by a reader with worker threads.
enum Ahead {
    /// Being decoded; its payload's length, start and index, and where its output comes.
    Chunk {
        payload_len: u64,
        start: u64,
        number: u64,
        decoded: mpsc::Receiver<Result<Vec<u8>>>,
        /// Where the chunk ends in the stream.
        end: u64,
    },
    /// The end marker: the trailer is read and checked once every chunk before it is taken.
    End(Vec<u8>),
    /// Reading ahead failed here (at the offset reached); the error comes when the reader
    /// gets this far.
    Failed(Error, u64),
}

impl<R: Read> StreamReader<R> {
    /// A reader over `inner` (positioned at the start of a stream) for streams made with the
    /// default codebook.
    pub fn new(inner: R) -> StreamReader<R> {
        StreamReader::with_codebook(inner, Codebook::default_codebook())
    }

    /// A reader for streams made with `codebook`; other streams are refused with
    /// [`ErrorKind::CodebookMismatch`].
    pub fn with_codebook(inner: R, codebook: Arc<Codebook>) -> StreamReader<R> {
        StreamReader {
            inner,
            offset: 0,
            decoder: Decoder::new(codebook),
            header: None,
            payload: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            chunks: 0,
            index_crc: Crc32c::new(),
            content_crc: Crc32c::new(),
            total: 0,
            done: false,
            failed: false,
            reached: 0,
            ahead: VecDeque::new(),
            threads: None,
            decoders: Arc::new(Vec::new()),
        }
    }

    /// Decodes chunks on `threads` worker threads (0: one per core): the reader reads and
    /// verifies up to two chunks a worker ahead, and the workers decode them while the caller
    /// takes the output. What the reader yields, and where it stops with which error on a
    /// damaged stream, do not depend on the number of threads. Memory grows to about three
    /// chunk sizes (and their payloads) per thread.
    ///
    /// # Errors
    /// If the threads cannot be started.
    pub fn with_threads(mut self, threads: usize) -> Result<StreamReader<R>> {
        let n = crate::workers::count(threads);
        if n > 1 {
            let codebook = Arc::clone(self.decoder.codebook());
            self.decoders = Arc::new(
                (0..n)
                    .map(|_| Mutex::new(Decoder::new(Arc::clone(&codebook))))
                    .collect(),
            );
            self.threads = Some(crate::workers::pool(n, "decoder")?);
        }
        Ok(self)
    }

    /// Reads and checks the header (if not done yet) and returns it.
    pub fn header(&mut self) -> Result<FileHeader> {
        if let Some(h) = self.header {
            return Ok(h);
        }
        let mut h = [0u8; HEADER_LEN];
        let n = read_full(&mut self.inner, &mut h)?;
        let header = FileHeader::parse(&h[..n])?;
        if header.kind != FileKind::Stream {
            return Err(Error::corrupt(
                "this is a record archive, not a stream (use `sigma unpack`)",
                5,
            ));
        }
        let given = self.decoder.codebook().id();
        if header.codebook != given {
            return Err(Error::at(
                ErrorKind::CodebookMismatch {
                    stream: header.codebook,
                    given,
                },
                8,
            ));
        }
        self.offset = HEADER_LEN as u64;
        self.header = Some(header);
        Ok(header)
    }

    fn read_exact_at(&mut self, buf: &mut [u8], what: &'static str) -> Result<()> {
        let n = read_full(&mut self.inner, buf)?;
        if n < buf.len() {
            return Err(Error::truncated(what, self.offset + n as u64));
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Reads, verifies and decodes the next chunk into `self.out`; at the end marker, verifies
    /// the trailer and sets `done`. After an error, every call fails.
    fn next_chunk(&mut self) -> Result<()> {
        if self.failed {
            return Err(Error::corrupt(
                "the stream is damaged (an earlier read failed)",
                self.reached,
            ));
        }
        let r = self.read_chunk();
        self.failed = r.is_err();
        r
    }

    fn read_chunk(&mut self) -> Result<()> {
        if self.threads.is_some() {
            return self.take_ahead();
        }
        let r = self.read_and_decode();
        self.reached = self.offset;
        r
    }

    fn read_and_decode(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.payload);
        let (payload, start, number) = match self.read_verified(buf)? {
            Next::End(head) => return self.trailer(head),
            Next::Chunk {
                payload,
                start,
                number,
            } => (payload, start, number),
        };
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.out_pos = 0;
        let decoded = self.decoder.decode(&payload, &mut out);
        let payload_len = payload.len() as u64;
        self.payload = payload;
        decoded.map_err(|e| e.shifted(start).within(format!("chunk {number}")))?;
        self.take_output(payload_len, out);
        Ok(())
    }

    /// With worker threads: reads ahead (handing each chunk to the workers) until two chunks a
    /// worker are in flight or the read-ahead ended, then takes the oldest.
    fn take_ahead(&mut self) -> Result<()> {
        let ended = |a: &Ahead| !matches!(a, Ahead::Chunk { .. });
        while self.ahead.len() < 2 * self.decoders.len() && !self.ahead.back().is_some_and(ended) {
            let next = match self.read_verified(Vec::new()) {
                Ok(Next::Chunk {
                    payload,
                    start,
                    number,
                }) => {
                    let (tx, decoded) = mpsc::channel();
                    let payload_len = payload.len() as u64;
                    let decoders = Arc::clone(&self.decoders);
                    let pool = self.threads.as_ref().expect("threaded reader");
                    pool.spawn(move || {
                        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            let w = rayon::current_thread_index().unwrap_or(0) % decoders.len();
                            let mut dec = decoders[w].lock().unwrap_or_else(|e| e.into_inner());
                            let mut out = Vec::new();
                            dec.decode(&payload, &mut out).map(|()| out)
                        }))
                        .unwrap_or_else(|_| {
                            Err(Error::invalid(
                                "a stream decoder panicked (a bug; please report it)",
                            ))
                        });
                        // The reader may have been dropped meanwhile.
                        let _ = tx.send(out);
                    });
                    // See the archive writer: let the woken worker start now.
                    std::thread::yield_now();
                    Ahead::Chunk {
                        payload_len,
                        start,
                        number,
                        decoded,
                        end: self.offset,
                    }
                }
                Ok(Next::End(head)) => Ahead::End(head),
                Err(e) => Ahead::Failed(e, self.offset),
            };
            self.ahead.push_back(next);
        }
        match self.ahead.pop_front() {
            Some(Ahead::Chunk {
                payload_len,
                start,
                number,
                decoded,
                end,
            }) => {
                self.reached = end;
                let out = decoded
                    .recv()
                    .unwrap_or_else(|_| {
                        Err(Error::invalid(
                            "a stream decoder stopped before finishing its chunk",
                        ))
                    })
                    .map_err(|e| e.shifted(start).within(format!("chunk {number}")))?;
                self.take_output(payload_len, out);
                Ok(())
            }
            Some(Ahead::End(head)) => {
                let r = self.trailer(head);
                self.reached = self.offset;
                r
            }
            Some(Ahead::Failed(e, at)) => {
                self.reached = at;
                Err(e)
            }
            None => unreachable!("the read-ahead always holds a chunk, the end or an error"),
        }
    }

    /// Makes `out`, decoded from a payload of `payload_len` bytes, the next output; counts it
    /// for the trailer's checks.
    fn take_output(&mut self, payload_len: u64, out: Vec<u8>) {
        self.out = out;
        self.out_pos = 0;
        self.content_crc.update(&self.out);
        self.total += self.out.len() as u64;
        let mut entry = Vec::with_capacity(2 * varint::MAX_LEN);
        varint::write(&mut entry, payload_len);
        varint::write(&mut entry, self.out.len() as u64);
        self.index_crc.update(&entry);
    }

    /// Reads the next chunk into `payload` (cleared first) and verifies its checksum and
    /// header, or reads the end marker.
    fn read_verified(&mut self, mut payload: Vec<u8>) -> Result<Next> {
        self.header()?;
        let chunk_start = self.offset;
        let mut head = Vec::with_capacity(varint::MAX_LEN);
        let mut off = self.offset;
        let payload_len = varint::read_from(&mut TeeReader(&mut self.inner, &mut head), &mut off)?;
        self.offset = off;
        if payload_len == 0 {
            return Ok(Next::End(head));
        }
        let chunk_no = self.chunks;
        let ctx = || format!("chunk {chunk_no}");
        if payload_len > (MAX_CHUNK_SIZE + 16) as u64 {
            return Err(Error::corrupt(
                format!("chunk payload of {payload_len} bytes exceeds the limit"),
                chunk_start,
            )
            .within(ctx()));
        }
        // Read what is there rather than allocating what the length field claims.
        payload.clear();
        let got = (&mut self.inner)
            .take(payload_len)
            .read_to_end(&mut payload)?;
        if (got as u64) < payload_len {
            return Err(
                Error::truncated("a chunk payload", self.offset + got as u64).within(ctx()),
            );
        }
        self.offset += payload_len;
        let mut crc_bytes = [0u8; 4];
        self.read_exact_at(&mut crc_bytes, "a chunk checksum")
            .map_err(|e| e.within(ctx()))?;
        let mut crc = Crc32c::new();
        crc.update(&head);
        crc.update(&payload);
        let stored = u32::from_le_bytes(crc_bytes);
        if stored != crc.finish() {
            return Err(Error::at(
                ErrorKind::Checksum {
                    what: "a chunk",
                    expected: stored,
                    found: crc.finish(),
                },
                chunk_start,
            )
            .within(ctx()));
        }
        let payload_start = chunk_start + head.len() as u64;
        let header =
            record::read_header(&payload).map_err(|e| e.shifted(payload_start).within(ctx()))?;
        if header.raw_len > MAX_CHUNK_SIZE as u64 {
            return Err(Error::corrupt("chunk larger than the limit", payload_start).within(ctx()));
        }
        self.chunks += 1;
        Ok(Next::Chunk {
            payload,
            start: payload_start,
            number: chunk_no,
        })
    }

    fn trailer(&mut self, head: Vec<u8>) -> Result<()> {
        let start = self.offset - head.len() as u64;
        let mut trailer_crc = Crc32c::new();
        trailer_crc.update(&head);
        let mut off = self.offset;
        let mut buf = Vec::with_capacity(2 * varint::MAX_LEN);
        let corrupt = |what: &str, at: u64| Error::corrupt(format!("trailer: {what}"), at);
        let count = varint::read_from(&mut TeeReader(&mut self.inner, &mut buf), &mut off)?;
        trailer_crc.update(&buf);
        if count != self.chunks {
            return Err(corrupt(
                &format!(
                    "index names {count} chunks, the stream holds {}",
                    self.chunks
                ),
                self.offset,
            ));
        }
        let entries_at = off;
        let mut entries_crc = Crc32c::new();
        for _ in 0..count {
            buf.clear();
            varint::read_from(&mut TeeReader(&mut self.inner, &mut buf), &mut off)?;
            varint::read_from(&mut TeeReader(&mut self.inner, &mut buf), &mut off)?;
            trailer_crc.update(&buf);
            entries_crc.update(&buf);
        }
        if entries_crc.finish() != self.index_crc.finish() {
            return Err(corrupt(
                "the chunk index does not match the chunks",
                entries_at,
            ));
        }
        let at = off;
        buf.clear();
        let total = varint::read_from(&mut TeeReader(&mut self.inner, &mut buf), &mut off)?;
        trailer_crc.update(&buf);
        if total != self.total {
            return Err(corrupt(
                &format!("total length {total}, decoded {}", self.total),
                at,
            ));
        }
        self.offset = off;
        let mut tail = [0u8; 12];
        self.read_exact_at(&mut tail, "the trailer")?;
        let content = u32::from_le_bytes(tail[0..4].try_into().expect("4"));
        trailer_crc.update(&tail[0..4]);
        let stored = u32::from_le_bytes(tail[4..8].try_into().expect("4"));
        if stored != trailer_crc.finish() {
            return Err(Error::at(
                ErrorKind::Checksum {
                    what: "the trailer",
                    expected: stored,
                    found: trailer_crc.finish(),
                },
                self.offset - 8,
            ));
        }
        if content != self.content_crc.finish() {
            return Err(Error::at(
                ErrorKind::Checksum {
                    what: "the decoded content",
                    expected: content,
                    found: self.content_crc.finish(),
                },
                self.offset - 12,
            ));
        }
        let len = u32::from_le_bytes(tail[8..12].try_into().expect("4"));
        if u64::from(len) != self.offset - start {
            return Err(corrupt("trailer length field is wrong", self.offset - 4));
        }
        let mut extra = [0u8; 1];
        if read_full(&mut self.inner, &mut extra)? != 0 {
            return Err(Error::corrupt(
                "trailing data after the end of the stream",
                self.offset,
            ));
        }
        self.done = true;
        Ok(())
    }

    /// Reads the whole stream, appending the content to `out`.
    pub fn read_all_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        loop {
            if self.out_pos < self.out.len() {
                out.extend_from_slice(&self.out[self.out_pos..]);
                self.out_pos = self.out.len();
            }
            if self.done {
                return Ok(());
            }
            self.next_chunk()?;
        }
    }
}

impl<R: Read> Read for StreamReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out.len() {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Reads into `buf` until it is full or the reader ends, retrying interrupted reads; returns
/// how many bytes were read (fewer than `buf.len()` only at the end of the input).
pub fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A reader that copies what it reads into a buffer (for checksumming varints as read).
struct TeeReader<'a, R: Read>(&'a mut R, &'a mut Vec<u8>);

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// Compresses `input` into a complete stream.
///
/// ```
/// let packed = sigmalang::compress(b"hello, hello, hello");
/// assert_eq!(sigmalang::decompress(&packed).unwrap(), b"hello, hello, hello");
/// ```
pub fn compress(input: &[u8]) -> Vec<u8> {
    let mut w = StreamWriter::new(Vec::with_capacity(input.len() / 2 + 64))
        .expect("writing to a Vec cannot fail");
    w.write_all(input).expect("writing to a Vec cannot fail");
    w.finish().expect("writing to a Vec cannot fail")
}

/// Decompresses a complete stream.
///
/// # Errors
/// Any damage to the stream: bad magic or version, checksum mismatch, truncation, trailing data.
pub fn decompress(stream: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    StreamReader::new(stream).read_all_into(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_identical_for_any_number_of_threads() {
        let input: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {} of the log says {}\n", i % 977, i % 13).into_bytes())
            .take(300_000)
            .collect();
        let build = |threads: usize| {
            let w = StreamWriter::with_chunk_size(Vec::new(), 20_000).unwrap();
            let mut w = w.with_threads(threads).unwrap();
            for part in input.chunks(7_777) {
                w.write_all(part).unwrap();
                // Memory in flight stays bounded: at most two chunks per worker.
                assert!(w.in_flight.len() <= 2 * w.workers.len().max(1));
            }
            w.finish().unwrap()
        };
        let one = build(1);
        assert_eq!(one, build(2));
        assert_eq!(one, build(3));
        assert_eq!(decompress(&one).unwrap(), input);
    }

    /// Reads `stream` through `Read` in small steps with `threads` decoder threads: the bytes
    /// yielded before the reader stopped, and its error (as text) if it failed.
    fn read_with(stream: &[u8], threads: usize) -> (Vec<u8>, Option<String>) {
        let mut r = StreamReader::new(stream).with_threads(threads).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 301];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => {
                    // A failed reader stays failed.
                    assert!(r.read(&mut buf).is_err());
                    return (out, Some(e.to_string()));
                }
            }
        }
    }

    #[test]
    fn threaded_reader_yields_and_fails_as_the_sequential_one() {
        let (input, stream) = sample();
        assert!(input.len() / 600 >= 8, "several chunks");
        for threads in [1, 2, 3] {
            assert_eq!(read_with(&stream, threads), (input.clone(), None));
        }
        let mut failures = 0;
        for cut in (0..stream.len()).step_by(3) {
            let one = read_with(&stream[..cut], 1);
            assert!(one.1.is_some(), "a cut at {cut} is an error");
            assert_eq!(one, read_with(&stream[..cut], 2), "cut at {cut}");
        }
        for i in (0..stream.len()).step_by(5) {
            let mut damaged = stream.clone();
            damaged[i] ^= 1 << (i % 8);
            let one = read_with(&damaged, 1);
            failures += usize::from(one.1.is_some());
            assert_eq!(one, read_with(&damaged, 3), "bit flip at {i}");
        }
        assert!(failures > 0);
    }

    #[test]
    fn short_headers_are_truncated_or_bad_magic_never_a_panic() {
        for h in [
            &b""[..],
            b"\xce",
            b"\xce\xa3L",
            b"x",
            b"xy",
            b"abc",
            b"\xce\xa3",
        ] {
            let e = FileHeader::parse(h).unwrap_err();
            let magic_prefix = MAGIC.starts_with(h);
            assert_eq!(
                matches!(e.kind(), ErrorKind::Truncated { .. }),
                magic_prefix,
                "{h:?}: {e}"
            );
            assert_eq!(
                matches!(e.kind(), ErrorKind::BadMagic { .. }),
                !magic_prefix,
                "{h:?}: {e}"
            );
        }
    }

    /// The (start, payload range) of every chunk of a well-formed stream.
    fn chunks_of(stream: &[u8]) -> Vec<(usize, std::ops::Range<usize>)> {
        let mut pos = HEADER_LEN;
        let mut out = Vec::new();
        loop {
            let start = pos;
            let len = varint::read(stream, &mut pos, 0).unwrap() as usize;
            if len == 0 {
                return out;
            }
            out.push((start, pos..pos + len));
            pos += len + 4;
        }
    }

    /// Damages the payload byte `at` of a chunk and fixes the chunk's checksum, so the damage
    /// is met by the decoder, not by the checksum.
    fn damage_past_crc(stream: &[u8], chunk: usize, at: usize, bit: u8) -> Vec<u8> {
        let mut s = stream.to_vec();
        let (start, payload) = chunks_of(stream)[chunk].clone();
        s[payload.start + at] ^= 1 << bit;
        let crc = crc32c(&s[start..payload.end]);
        s[payload.end..payload.end + 4].copy_from_slice(&crc.to_le_bytes());
        s
    }

    /// A stream of 9 or more chunks of 600 bytes, and its input.
    fn sample() -> (Vec<u8>, Vec<u8>) {
        let input: Vec<u8> = (0..400u32)
            .flat_map(|i| format!("turn {} said {}; ", i % 37, i * 7 % 101).into_bytes())
            .collect();
        let mut w = StreamWriter::with_chunk_size(Vec::new(), 600).unwrap();
        w.write_all(&input).unwrap();
        (input, w.finish().unwrap())
    }

    /// A read after a decode error (checksum intact, payload damaged) fails and does not panic:
    /// the sequential reader once kept a stale output position past the failed chunk.
    #[test]
    fn reading_after_a_decode_error_fails_without_panicking() {
        let (_, stream) = sample();
        // Find damage to chunk 1 that its decoder meets (its checksum fixed).
        let plen = chunks_of(&stream)[1].1.len();
        let mut buf = [0u8; 301];
        let mut found = None;
        'search: for at in 0..plen {
            for bit in 0..8 {
                let bad = damage_past_crc(&stream, 1, at, bit);
                let mut r = StreamReader::new(std::io::Cursor::new(bad));
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            if e.to_string().contains("chunk 1") {
                                found = Some(r);
                                break 'search;
                            }
                            break;
                        }
                    }
                }
            }
        }
        let mut r = found.expect("some damage is met by the decoder");
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            r.read(&mut buf).map_err(|e| e.to_string())
        }));
        assert!(
            again.is_ok(),
            "the sequential reader panicked on a read after a decode error"
        );
        assert!(again.unwrap().is_err(), "a failed reader stays failed");
    }

    /// The threaded reader against the sequential one on damage the checksums do not catch:
    /// decode errors of chunks read ahead (bit flips alone are always caught by the chunk
    /// checksum first).
    #[test]
    fn threaded_reader_matches_on_decode_errors() {
        let (_, stream) = sample();
        let chunks = chunks_of(&stream);
        let mut errors = 0;
        for c in [0, 1, chunks.len() / 2, chunks.len() - 1] {
            let plen = chunks[c].1.len();
            for at in (0..plen).step_by(7) {
                let bad = damage_past_crc(&stream, c, at, (at % 8) as u8);
                let one = read_with(&bad, 1);
                errors += usize::from(one.1.is_some());
                assert_eq!(one, read_with(&bad, 2), "chunk {c} byte {at}");
                assert_eq!(one, read_with(&bad, 3), "chunk {c} byte {at}");
            }
        }
        assert!(errors > 0);
    }

    /// After a decode error, the "earlier read failed" error names the same offset with or
    /// without threads (the read-ahead moves the reader's own offset on).
    #[test]
    fn errors_after_a_failure_name_the_same_offset() {
        let (_, stream) = sample();
        // Chunk 1's stored record is cut short (its decoder fails; checksum fixed).
        let bad = damage_past_crc(&stream, 1, 0, 0);
        let after = |threads: usize| {
            let mut r = StreamReader::new(&bad[..]).with_threads(threads).unwrap();
            let mut out = Vec::new();
            let first = r.read_all_into(&mut out).unwrap_err().to_string();
            let second = r.read_all_into(&mut out).unwrap_err().to_string();
            (first, second)
        };
        assert_eq!(after(1), after(2));
    }
}
