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

pub use crate::container::{FileHeader, FileKind, FORMAT_VERSION, HEADER_LEN, MAGIC};
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

/// Decompresses a complete stream.
///
/// # Errors
/// Any damage to the stream: bad magic or version, checksum mismatch, truncation, trailing data.
pub fn decompress(stream: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    StreamReader::new(stream).read_all_into(&mut out)?;
    Ok(out)
}
