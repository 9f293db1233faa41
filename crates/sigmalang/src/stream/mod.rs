//! The stream container: what `sigma compress` writes. A header, then the input cut into chunks
//! that are encoded as independent records, then a trailer with the chunk index and a checksum of
//! the whole content. A reader's memory is bounded by the chunk size however long the stream is;
//! a writer's by the chunk size plus the index it writes at the end (two varints a chunk: a few
//! bytes per MiB of input at the default chunk size).
//!
//! The byte layout is in `docs/FORMAT.md`.

use std::io::Write;

use crate::error::Result;

mod reader;
mod writer;

pub use crate::container::{
    read_full, FileHeader, FileKind, ARCHIVE_VERSION, FORMAT_VERSION, HEADER_LEN, MAGIC,
    OLDEST_STREAM_VERSION,
};
pub use reader::StreamReader;
pub use writer::StreamWriter;

/// The default amount of input coded as one chunk: 8 MiB, so that the adaptive model and the
/// matches learn from a long stretch of input; inputs over 8 MiB still code on several threads.
pub const DEFAULT_CHUNK_SIZE: usize = 8 << 20;
/// The largest chunk a reader accepts. Bounds a reader's memory, and its work on a hostile
/// chunk (decoding time is proportional to the length a chunk declares).
pub const MAX_CHUNK_SIZE: usize = 16 << 20;

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

/// Decompresses a complete stream (or several, concatenated).
///
/// # Errors
/// Any damage to the stream: bad magic or version, checksum mismatch, truncation, trailing data.
pub fn decompress(stream: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    StreamReader::new(stream).read_all_into(&mut out)?;
    Ok(out)
}

/// Decompresses a complete stream (or several, concatenated) into at most `limit` bytes of
/// output: a stream that would decode to more is refused with
/// [`ErrorKind::MemoryLimit`](crate::ErrorKind::MemoryLimit) before the output grows past it
/// (a chunk is decoded first, within the reader's default memory limit, then refused). The
/// memory used is the output and one chunk.
///
/// ```
/// let packed = sigmalang::compress(&[b'a'; 100_000]);
/// assert!(sigmalang::stream::decompress_with_limit(&packed, 1000).is_err());
/// assert_eq!(sigmalang::stream::decompress_with_limit(&packed, 100_000).unwrap().len(), 100_000);
/// ```
///
/// # Errors
/// As [`decompress`], and the limit.
pub fn decompress_with_limit(stream: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    StreamReader::new(stream).read_all_limited(&mut out, limit)?;
    Ok(out)
}
