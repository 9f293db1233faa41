//! [`StreamWriter`]: cuts its input into chunks, codes them (on worker threads if asked), and
//! writes the chunks and the trailer.

use std::io::{self, Write};
use std::sync::Arc;

use super::{StreamOptions, MAX_CHUNK_SIZE};
use crate::checksum::{crc32c, Crc32c};
use crate::codebook::Codebook;
use crate::container::{FileHeader, FileKind, HEADER_LEN, STREAM_FLAG_V3};
use crate::error::{Error, Result};
use crate::record::{CoderConfig, Encoder};
use crate::varint;
use crate::workers::{Bound, Workers};

/// A chunk coded by a worker: its raw bytes and its payload.
type CodedChunk = (Vec<u8>, Result<Vec<u8>>);

/// What the writer's workers hold in flight at most: two chunks a worker, and chunks of this
/// many bytes (input and output), so that memory does not grow with the number of threads.
const IN_FLIGHT: Bound = Bound {
    jobs_per_worker: 2,
    bytes: 64 << 20,
};

/// Writes a stream: buffers input, encodes it chunk by chunk, and writes the trailer on
/// [`finish`](StreamWriter::finish).
///
/// **Call `finish`, or use [`auto_finish`](StreamWriter::auto_finish).** Dropping the writer
/// without `finish` loses the input not yet coded (up to a chunk), abandons the chunks being
/// coded on workers and writes no trailer: what the inner writer holds is an incomplete stream
/// (the 20-byte header alone, if less than a chunk was written), whose readers yield the chunks
/// written and then fail with [`ErrorKind::Truncated`](crate::ErrorKind::Truncated). A drop
/// cannot report an error, so the writer does not finish itself unless asked to.
///
/// ```
/// use std::io::Write;
///
/// let mut w = sigmalang::StreamWriter::new(Vec::new())?;
/// w.write_all(b"{\"role\": \"user\", \"content\": \"hello\"}")?;
/// let packed = w.finish()?;
/// assert_eq!(
///     sigmalang::decompress(&packed)?,
///     b"{\"role\": \"user\", \"content\": \"hello\"}"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StreamWriter<W: Write> {
    inner: W,
    encoder: Encoder,
    chunk_size: usize,
    pending: Vec<u8>,
    config: CoderConfig,
    /// With several workers: their encoders and the chunks they are coding (each gives back its
    /// raw bytes and payload, in order).
    workers: Option<Workers<'static, Encoder, CodedChunk>>,
    frame: Vec<u8>,
    /// The chunk index as the trailer encodes it: varint payload length, varint raw length.
    index: Vec<u8>,
    chunks: u64,
    content_crc: Crc32c,
    total_in: u64,
    total_out: u64,
}

impl<W: Write> StreamWriter<W> {
    /// A writer with the built-in codebook and the default options; writes the file header at
    /// once.
    ///
    /// # Errors
    /// If the header cannot be written.
    pub fn new(inner: W) -> Result<StreamWriter<W>> {
        StreamWriter::with_options(
            inner,
            Codebook::default_codebook(),
            StreamOptions::default(),
        )
    }

    /// A writer that models with `codebook`, with the default options.
    ///
    /// # Errors
    /// If the header cannot be written.
    pub fn with_codebook(inner: W, codebook: Arc<Codebook>) -> Result<StreamWriter<W>> {
        StreamWriter::with_options(inner, codebook, StreamOptions::default())
    }

    /// A writer that models with `codebook`, cuts chunks and runs workers as `options` say.
    ///
    /// # Errors
    /// If the chunk size is out of range, the worker threads cannot be started or the header
    /// cannot be written.
    pub fn with_options(
        inner: W,
        codebook: Arc<Codebook>,
        options: StreamOptions,
    ) -> Result<StreamWriter<W>> {
        StreamWriter::start(inner, codebook, options.chunk_size)?
            .with_encoder_config(options.coder)
            .with_threads(options.threads)
    }

    /// A writer with the built-in codebook that codes every `chunk_size` bytes as one chunk.
    #[cfg(test)]
    pub(crate) fn with_chunk_size(inner: W, chunk_size: usize) -> Result<StreamWriter<W>> {
        StreamWriter::start(inner, Codebook::default_codebook(), chunk_size)
    }

    /// A writer that models with `codebook` and codes every `chunk_size` bytes as one chunk.
    fn start(mut inner: W, codebook: Arc<Codebook>, chunk_size: usize) -> Result<StreamWriter<W>> {
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::invalid(format!(
                "chunk size must be 1..={MAX_CHUNK_SIZE}, got {chunk_size}"
            )));
        }
        let header = FileHeader {
            kind: FileKind::Stream,
            codebook: codebook.id(),
        };
        inner.write_all(&header.to_bytes_with_flags(STREAM_FLAG_V3))?;
        Ok(StreamWriter {
            inner,
            encoder: chunk_encoder(codebook, CoderConfig::default()),
            chunk_size,
            pending: Vec::with_capacity(chunk_size),
            config: CoderConfig::default(),
            workers: None,
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
    fn with_encoder_config(mut self, config: CoderConfig) -> StreamWriter<W> {
        let codebook = Arc::clone(self.encoder.codebook());
        self.encoder = chunk_encoder(codebook, config);
        self.config = config;
        self
    }

    /// Codes chunks on `threads` worker threads (0: one per core) while the caller goes on
    /// writing: each full chunk is handed to the workers, and coded chunks are written in
    /// order as they are done: at most two per thread in flight, and at most 64 MiB of chunks
    /// (counting each chunk's input twice, for its output) however many threads, beyond one
    /// chunk. The stream's bytes do not depend on the number of threads.
    pub(crate) fn with_threads(mut self, threads: usize) -> Result<StreamWriter<W>> {
        let n = crate::workers::count(threads);
        if n > 1 {
            let codebook = Arc::clone(self.encoder.codebook());
            let config = self.config;
            let factory = move || chunk_encoder(Arc::clone(&codebook), config);
            self.workers = Some(Workers::start(n, "encoder", factory, IN_FLIGHT)?);
        }
        Ok(self)
    }

    /// The counters of the writer's encoders, summed.
    pub fn stats(&self) -> crate::record::EncoderStats {
        let mut total = self.encoder.stats();
        if let Some(workers) = &self.workers {
            workers.for_each_state(|w| total.merge(&w.stats()));
        }
        total
    }

    fn flush_chunk(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.workers.is_none() {
            let mut payload = std::mem::take(&mut self.frame);
            payload.clear();
            self.encoder.encode_chunk(&self.pending, &mut payload)?;
            let raw = std::mem::take(&mut self.pending);
            let r = self.write_chunk(&raw, &payload);
            self.pending = raw;
            self.pending.clear();
            self.frame = payload;
            return r;
        }
        let full = std::mem::replace(&mut self.pending, Vec::with_capacity(self.chunk_size));
        // The chunk's input and, at most about as large, its payload.
        let cost = 2 * full.len();
        while !self.workers.as_ref().is_some_and(|w| w.has_room(cost)) {
            self.write_next(true)?;
        }
        let workers = self.workers.as_mut().expect("checked above");
        workers.submit(cost, move |enc: &mut Encoder, _| {
            let mut payload = Vec::with_capacity(full.len() / 3 + 16);
            let coded = enc.encode_chunk(&full, &mut payload).map(|()| payload);
            (full, coded)
        });
        while self.write_next(false)? {}
        Ok(())
    }

    /// Writes the oldest chunk the workers are coding, waiting for it if `wait`; false if
    /// there is none, or it is not coded yet and `wait` is false.
    fn write_next(&mut self, wait: bool) -> Result<bool> {
        let Some(workers) = self.workers.as_mut() else {
            return Ok(false);
        };
        let coded = if wait {
            workers.take()
        } else {
            workers.try_take()
        };
        let Some(coded) = coded else {
            return Ok(false);
        };
        let number = self.chunks;
        let (raw, payload) = coded.map_err(|e| e.within(format!("chunk {number}")))?;
        self.write_chunk(&raw, &payload?)?;
        Ok(true)
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

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer, mutably. Writing to it directly corrupts the stream.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Returns the inner writer **without finishing the stream**: buffered input, chunks being
    /// coded and the trailer are not written (see the type's docs). Use
    /// [`finish`](Self::finish) to complete the stream.
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// A writer that finishes the stream when dropped, ignoring errors then: see
    /// [`AutoFinishStreamWriter`](super::AutoFinishStreamWriter).
    pub fn auto_finish(self) -> super::AutoFinishStreamWriter<W> {
        super::AutoFinishStreamWriter::new(self)
    }

    /// Codes what is buffered, writes the end marker and trailer, and returns the inner writer.
    ///
    /// # Errors
    /// If coding or writing fails.
    pub fn finish(mut self) -> Result<W> {
        self.flush_chunk()?;
        while self.write_next(true)? {}
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

    /// Codes the input buffered so far as a chunk of its own, writes it and every chunk still
    /// being coded on workers, and flushes the inner writer: what was written so far can then
    /// be read back, up to this point, by a reader of the incomplete stream.
    ///
    /// A flush with input buffered ends a chunk early (readers take chunks of any size). That
    /// costs compression, as the next chunk's adaptive model and matches start afresh, and
    /// makes the stream's bytes depend on where flushes fell. Flush only where the data must
    /// reach the inner writer now (a pipe, a socket); a flush with nothing buffered writes
    /// nothing.
    fn flush(&mut self) -> io::Result<()> {
        self.flush_chunk()?;
        while self.write_next(true)? {}
        self.inner.flush()
    }
}

/// An encoder of this writer's chunks: `ADAPTIVE2` chunks with the adaptive model's variant 3,
/// as the header's flag bit 0 ([`STREAM_FLAG_V3`]) says.
fn chunk_encoder(codebook: Arc<Codebook>, config: CoderConfig) -> Encoder {
    let mut encoder = Encoder::with_config(codebook, config);
    encoder.set_chunk_v3(true);
    encoder
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::decompress;

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
                if let Some(workers) = &w.workers {
                    assert!(workers.in_flight() <= 2 * workers.len());
                    assert!(workers.held() <= IN_FLIGHT.bytes);
                }
            }
            w.finish().unwrap()
        };
        let one = build(1);
        assert_eq!(one, build(2));
        assert_eq!(one, build(3));
        assert_eq!(decompress(&one).unwrap(), input);
    }
}
