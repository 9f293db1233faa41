//! The stream container: what `sigma compress` writes. A header, then the input cut into chunks
//! that are encoded as independent records, then a trailer with the chunk index and a checksum of
//! the whole content. A reader's memory is bounded by the chunk size however long the stream is;
//! a writer's by the chunk size plus the index it writes at the end (two varints a chunk: a few
//! bytes per MiB of input at the default chunk size).
//!
//! The byte layout is in `docs/FORMAT.md`.

use std::io::Write;
use std::sync::Arc;

use crate::codebook::Codebook;
use crate::error::Result;
use crate::record::CoderConfig;

mod auto;
mod reader;
mod writer;

pub use crate::container::{FileHeader, FileKind, FORMAT_VERSION, HEADER_LEN, MAGIC};
pub use auto::AutoFinishStreamWriter;
pub use reader::StreamReader;
pub use writer::StreamWriter;

/// The default amount of input coded as one chunk: 8 MiB, so that the adaptive model and the
/// matches learn from a long stretch of input; inputs over 8 MiB still code on several threads.
pub const DEFAULT_CHUNK_SIZE: usize = 8 << 20;
/// The largest chunk a reader accepts. Bounds a reader's memory, and its work on a hostile
/// chunk (decoding time is proportional to the length a chunk declares).
pub const MAX_CHUNK_SIZE: usize = 16 << 20;

/// How a stream is written and read: `StreamOptions::default().chunk_size(1 << 20).threads(0)`,
/// given to [`StreamWriter::with_options`] and [`StreamReader::with_options`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct StreamOptions {
    pub(crate) chunk_size: usize,
    pub(crate) threads: usize,
    pub(crate) coder: CoderConfig,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            chunk_size: DEFAULT_CHUNK_SIZE,
            threads: 1,
            coder: CoderConfig::default(),
        }
    }
}

crate::settings! {
    StreamOptions {
        /// The writer codes every this many bytes of input as one chunk (`1..=MAX_CHUNK_SIZE`,
        /// default [`DEFAULT_CHUNK_SIZE`]). Larger chunks compress better (the adaptive model
        /// and the matches see more) and hold more memory; a reader takes any chunk size.
        chunk_size, get_chunk_size: chunk_size: usize;
        /// Worker threads (0: one per core; default 1). A writer codes chunks on them while the
        /// caller goes on writing; a reader reads and verifies chunks ahead and has them decoded
        /// there. The stream's bytes, and what a reader yields or reports on damage, never
        /// depend on it. Memory grows to about three chunk sizes per thread.
        threads, get_threads: threads: usize;
        /// Memory configuration of the writer's encoders (readers' decoders use the default);
        /// the bytes never depend on it.
        coder, get_coder: coder: CoderConfig;
    }
}

/// Compresses `input` into a complete stream.
///
/// ```
/// let packed = sigmalang::compress(b"hello, hello, hello");
/// assert_eq!(sigmalang::decompress(&packed).unwrap(), b"hello, hello, hello");
/// ```
pub fn compress(input: &[u8]) -> Vec<u8> {
    compress_with(&Codebook::default_codebook(), input)
}

/// Compresses `input` into a complete stream modeled with `codebook`; only
/// [`decompress_with`] and readers given the same codebook can read it.
///
/// ```
/// use sigmalang::{Codebook, CompressionLevel, TrainOptions};
///
/// let chats: Vec<&[u8]> = vec![b"user: hi there\n", b"assistant: hello! how can I help?\n"];
/// let options = TrainOptions::for_level(CompressionLevel::Fast);
/// let codebook = Codebook::train(&chats, &options, &mut |_, _| {})?;
/// let packed = sigmalang::compress_with(&codebook, b"user: hi again\n");
/// assert_eq!(sigmalang::decompress_with(&codebook, &packed)?, b"user: hi again\n");
/// // The stream names its codebook: another one refuses it.
/// assert!(sigmalang::decompress(&packed).is_err());
/// # Ok::<(), sigmalang::Error>(())
/// ```
pub fn compress_with(codebook: &Arc<Codebook>, input: &[u8]) -> Vec<u8> {
    let mut w = StreamWriter::with_codebook(
        Vec::with_capacity(input.len() / 2 + 64),
        Arc::clone(codebook),
    )
    .expect("writing to a Vec cannot fail");
    w.write_all(input).expect("writing to a Vec cannot fail");
    w.finish().expect("writing to a Vec cannot fail")
}

/// Decompresses a complete stream (or several, concatenated).
///
/// # Errors
/// Any damage to the stream: bad magic or version, checksum mismatch, truncation, trailing data.
pub fn decompress(stream: &[u8]) -> Result<Vec<u8>> {
    decompress_with(&Codebook::default_codebook(), stream)
}

/// Decompresses a complete stream made with `codebook`.
///
/// # Errors
/// As [`decompress`]; a stream made with another codebook is refused with
/// [`ErrorKind::CodebookMismatch`](crate::ErrorKind::CodebookMismatch).
pub fn decompress_with(codebook: &Arc<Codebook>, stream: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    StreamReader::with_codebook(stream, Arc::clone(codebook)).read_all_into(&mut out)?;
    Ok(out)
}

/// Decompresses a complete stream (or several, concatenated) made with `codebook` into at most
/// `limit` bytes, as the zstd crate's `bulk::decompress(data, capacity)` does: for input from
/// elsewhere, whose chunks may each declare up to [`MAX_CHUNK_SIZE`] bytes and whose total
/// nothing else bounds. A stream that would decode to more is refused with
/// [`ErrorKind::MemoryLimit`](crate::ErrorKind::MemoryLimit) before the output grows past the
/// limit; the memory used is the output and one chunk.
///
/// ```
/// let packed = sigmalang::compress(&[b'x'; 10_000]);
/// let codebook = sigmalang::Codebook::default_codebook();
/// assert_eq!(sigmalang::decompress_with_limit(&codebook, &packed, 10_000).unwrap().len(), 10_000);
/// assert!(sigmalang::decompress_with_limit(&codebook, &packed, 9_999).is_err());
/// ```
///
/// # Errors
/// As [`decompress_with`], and the limit.
pub fn decompress_with_limit(
    codebook: &Arc<Codebook>,
    stream: &[u8],
    limit: u64,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    StreamReader::with_codebook(stream, Arc::clone(codebook)).read_all_limited(&mut out, limit)?;
    Ok(out)
}
