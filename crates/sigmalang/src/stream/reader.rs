//! [`StreamReader`]: reads and verifies a stream chunk by chunk and decodes it (on worker
//! threads if asked, reading ahead), then checks the trailer.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;

use super::{StreamOptions, MAX_CHUNK_SIZE};
use crate::checksum::Crc32c;
use crate::codebook::Codebook;
use crate::container::{
    read_full, FileHeader, FileKind, DEFAULT_MEMORY_LIMIT, HEADER_LEN, MAGIC, STREAM_FLAG_V3,
};
use crate::error::{Error, ErrorKind, Result};
use crate::record::{self, Decoder};
use crate::varint;
use crate::workers::{Bound, Workers};

/// What a reader with worker threads reads ahead at most: two chunks a worker, and chunks of
/// this many bytes (payload and decoded output) beyond one, so that its memory does not grow
/// with the number of threads.
const READ_AHEAD: Bound = Bound {
    jobs_per_worker: 2,
    bytes: 64 << 20,
};

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
    /// The stream is of container version 3: its chunks may be `ADAPTIVE`.
    adaptive: bool,
    /// Whether the current stream's header has flag bit 0: its `ADAPTIVE2` chunks are coded
    /// with the adaptive model's variant 3.
    v3: bool,
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
    /// With worker threads: their decoders and the chunks they are decoding, in stream order.
    workers: Option<Workers<'static, Decoder, Result<Vec<u8>>>>,
    /// The most memory decoding one chunk may need (payload, history, output).
    memory_limit: u64,
    /// Where the stream being read starts (after the streams before it, when streams are
    /// concatenated).
    stream_start: u64,
    /// The first bytes of the next stream's header, read while looking past a trailer.
    peeked: Vec<u8>,
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
    /// Being decoded (its output is the workers' next result); its payload's length, start
    /// and index.
    Chunk {
        payload_len: u64,
        start: u64,
        number: u64,
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
            adaptive: false,
            v3: false,
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
            workers: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            stream_start: 0,
            peeked: Vec::new(),
        }
    }

    /// Sets the most memory decoding one chunk may need: its payload and twice its decoded
    /// length (the decoder's history and its output), checked before the chunk is decoded. A
    /// chunk that needs more is refused with [`ErrorKind::MemoryLimit`]. The default,
    /// [`DEFAULT_MEMORY_LIMIT`] (256 MiB), refuses no chunk a writer makes (at most 16 MiB).
    /// With worker threads, each chunk in flight is checked on its own.
    pub fn set_memory_limit(&mut self, bytes: u64) {
        self.memory_limit = bytes;
    }

    /// A reader for streams made with `codebook`, running workers as `options` say (its chunk
    /// size is the writer's business: a reader takes chunks of any size up to
    /// [`MAX_CHUNK_SIZE`]).
    ///
    /// # Errors
    /// If the worker threads cannot be started.
    pub fn with_options(
        inner: R,
        codebook: Arc<Codebook>,
        options: StreamOptions,
    ) -> Result<StreamReader<R>> {
        StreamReader::with_codebook(inner, codebook).with_threads(options.threads)
    }

    /// Decodes chunks on `threads` worker threads (0: one per core): the reader reads and
    /// verifies up to two chunks a worker ahead, and at most 64 MiB of payloads and decoded
    /// output beyond one chunk, and the workers decode them while the caller takes the output.
    /// What the reader yields, and where it stops with which error on a damaged stream, do not
    /// depend on the number of threads, and neither does the memory of the chunks read ahead
    /// (each worker's decoder keeps its own tables).
    ///
    /// # Errors
    /// If the threads cannot be started.
    pub(crate) fn with_threads(self, threads: usize) -> Result<StreamReader<R>> {
        self.with_threads_reading_ahead(threads, READ_AHEAD)
    }

    /// [`with_threads`](Self::with_threads), reading ahead at most `bound`.
    fn with_threads_reading_ahead(
        mut self,
        threads: usize,
        bound: Bound,
    ) -> Result<StreamReader<R>> {
        let n = crate::workers::count(threads);
        if n > 1 {
            let codebook = Arc::clone(self.decoder.codebook());
            let factory = move || Decoder::new(Arc::clone(&codebook));
            self.workers = Some(Workers::start(n, "decoder", factory, bound)?);
        }
        Ok(self)
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The inner reader, mutably. Reading from it directly corrupts what this reader yields.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Returns the inner reader. It is positioned after what this reader has read, which with
    /// worker threads includes chunks read ahead but not yet yielded.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads and checks the header (if not done yet) and returns it.
    pub fn header(&mut self) -> Result<FileHeader> {
        if let Some(h) = self.header {
            return Ok(h);
        }
        let mut h = [0u8; HEADER_LEN];
        let k = self.peeked.len();
        h[..k].copy_from_slice(&self.peeked);
        let n = k + read_full(&mut self.inner, &mut h[k..])?;
        self.peeked.clear();
        let base = self.stream_start;
        let header = FileHeader::parse(&h[..n]).map_err(|e| e.shifted(base))?;
        if header.kind != FileKind::Stream {
            return Err(Error::corrupt(
                "this is a record archive, not a stream (use `sigma unpack`)",
                base + 5,
            ));
        }
        let given = self.decoder.codebook().id();
        if header.codebook != given {
            return Err(Error::at(
                ErrorKind::CodebookMismatch {
                    stream: header.codebook,
                    given,
                },
                base + 8,
            ));
        }
        self.offset = base + HEADER_LEN as u64;
        self.header = Some(header);
        self.adaptive = h[4] >= 3;
        self.v3 = u16::from_le_bytes([h[6], h[7]]) & STREAM_FLAG_V3 != 0;
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
        if self.workers.is_some() {
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
        self.decoder.set_chunk_v3(self.v3);
        let decoded = if self.adaptive {
            self.decoder.decode_chunk(&payload, &mut out)
        } else {
            self.decoder.decode(&payload, &mut out)
        };
        let payload_len = payload.len() as u64;
        self.payload = payload;
        decoded.map_err(|e| e.shifted(start).within(format!("chunk {number}")))?;
        self.take_output(payload_len, out);
        Ok(())
    }

    /// With worker threads: reads ahead (handing each chunk to the workers) while the workers
    /// have room (two chunks a worker, [`READ_AHEAD`] bytes beyond the last chunk read) and the
    /// read-ahead has not ended, then takes the oldest.
    fn take_ahead(&mut self) -> Result<()> {
        let ended = |a: &Ahead| !matches!(a, Ahead::Chunk { .. });
        while self.workers.as_ref().is_some_and(|w| w.has_room(0))
            && !self.ahead.back().is_some_and(ended)
        {
            let next = match self.read_verified(Vec::new()) {
                Ok(Next::Chunk {
                    payload,
                    start,
                    number,
                }) => {
                    let payload_len = payload.len() as u64;
                    // The payload and its output (its header is checked, with the size limit).
                    let raw_len = record::read_header(&payload).map_or(0, |h| h.raw_len);
                    let cost = payload.len().saturating_add(raw_len as usize);
                    let (adaptive, v3) = (self.adaptive, self.v3);
                    let workers = self.workers.as_mut().expect("threaded reader");
                    workers.submit(cost, move |dec: &mut Decoder, _| {
                        let mut out = Vec::new();
                        dec.set_chunk_v3(v3);
                        if adaptive {
                            dec.decode_chunk(&payload, &mut out).map(|()| out)
                        } else {
                            dec.decode(&payload, &mut out).map(|()| out)
                        }
                    });
                    Ahead::Chunk {
                        payload_len,
                        start,
                        number,
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
                end,
            }) => {
                self.reached = end;
                let workers = self.workers.as_mut().expect("threaded reader");
                let out = workers
                    .take()
                    .unwrap_or_else(|| Err(Error::invalid("a chunk read ahead was not decoded")))
                    .and_then(|decoded| decoded.map_err(|e| e.shifted(start)))
                    .map_err(|e| e.within(format!("chunk {number}")))?;
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
        if payload_len > self.memory_limit {
            return Err(Error::at(
                ErrorKind::MemoryLimit {
                    needed: payload_len,
                    limit: self.memory_limit,
                },
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
            return Err(Error::corrupt(
                format!(
                    "chunk of {} bytes is larger than the {MAX_CHUNK_SIZE}-byte limit",
                    header.raw_len
                ),
                payload_start,
            )
            .within(ctx()));
        }
        let needed = payload_len + 2 * header.raw_len;
        if needed > self.memory_limit {
            return Err(Error::at(
                ErrorKind::MemoryLimit {
                    needed,
                    limit: self.memory_limit,
                },
                payload_start,
            )
            .within(ctx()));
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
        // Another stream may follow (`cat a.sgm b.sgm`): it is read on as one.
        let mut next = [0u8; 4];
        let k = read_full(&mut self.inner, &mut next)?;
        if k == 0 {
            self.done = true;
            return Ok(());
        }
        if next[..k] != MAGIC[..k] {
            return Err(Error::corrupt(
                "trailing data after the end of the stream (not another stream)",
                self.offset,
            ));
        }
        self.stream_start = self.offset;
        self.peeked = next[..k].to_vec();
        self.header = None;
        self.adaptive = false;
        self.chunks = 0;
        self.index_crc = Crc32c::new();
        self.content_crc = Crc32c::new();
        self.total = 0;
        Ok(())
    }

    /// Reads the whole stream (and the streams concatenated after it), appending the content
    /// to `out`, and fails with [`ErrorKind::MemoryLimit`] before `out` would grow past
    /// `max_out` bytes.
    pub(crate) fn read_all_limited(&mut self, out: &mut Vec<u8>, max_out: u64) -> Result<()> {
        loop {
            let pending = &self.out[self.out_pos..];
            if !pending.is_empty() {
                let needed = out.len() as u64 + pending.len() as u64;
                let over = || {
                    Error::new(ErrorKind::MemoryLimit {
                        needed,
                        limit: max_out,
                    })
                    .within("the decompressed output")
                };
                if needed > max_out {
                    return Err(over());
                }
                out.try_reserve(pending.len()).map_err(|_| over())?;
                out.extend_from_slice(pending);
                self.out_pos = self.out.len();
            }
            if self.done {
                return Ok(());
            }
            self.next_chunk()?;
        }
    }

    /// Reads the whole stream (and the streams concatenated after it), appending the content
    /// to `out`.
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

/// A reader that copies what it reads into a buffer (for checksumming varints as read).
struct TeeReader<'a, R: Read>(&'a mut R, &'a mut Vec<u8>);

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::crc32c;
    use crate::stream::StreamWriter;
    use std::io::Write;

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
    /// the sequential reader must not keep an output position past the failed chunk.
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

    /// The read-ahead holds at most its byte bound beyond one chunk, however many threads.
    #[test]
    fn the_read_ahead_is_bounded_in_bytes() {
        let (input, stream) = sample();
        // A chunk's cost: its payload and its decoded bytes.
        let costs: Vec<usize> = chunks_of(&stream)
            .iter()
            .map(|(_, p)| {
                p.len() + record::read_header(&stream[p.clone()]).unwrap().raw_len as usize
            })
            .collect();
        let (largest, smallest) = (*costs.iter().max().unwrap(), *costs.iter().min().unwrap());
        for threads in [2, 3, 8, 32] {
            for bytes in [1, 2 * largest, 5 * largest] {
                let bound = Bound {
                    jobs_per_worker: 2,
                    bytes,
                };
                let mut r = StreamReader::new(&stream[..])
                    .with_threads_reading_ahead(threads, bound)
                    .unwrap();
                let (mut out, mut buf, mut most) = (Vec::new(), [0u8; 301], 0);
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                    let workers = r.workers.as_ref().unwrap();
                    assert!(workers.held() <= bytes + largest, "{threads} threads");
                    most = most.max(workers.in_flight());
                }
                assert_eq!(out, input);
                assert!(
                    most <= (bytes / smallest + 1).min(2 * threads),
                    "{most} in flight"
                );
            }
        }
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
