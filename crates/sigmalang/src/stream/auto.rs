//! [`AutoFinishStreamWriter`]: a [`StreamWriter`] that finishes its stream when dropped.

use std::io::{self, Write};

use super::StreamWriter;
use crate::error::Result;

/// A [`StreamWriter`] that finishes the stream when it is dropped, made by
/// [`StreamWriter::auto_finish`] (as the zstd crate's `AutoFinishEncoder`).
///
/// Dropping it codes the buffered input, writes the trailer and flushes the inner writer; an
/// error then cannot be reported and is ignored. Call [`finish`](Self::finish) where errors
/// matter.
///
/// ```
/// use std::io::Write;
///
/// let mut packed = Vec::new();
/// {
///     let mut w = sigmalang::StreamWriter::new(&mut packed)?.auto_finish();
///     w.write_all(b"finished when it goes out of scope")?;
/// }
/// assert_eq!(sigmalang::decompress(&packed)?, b"finished when it goes out of scope");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AutoFinishStreamWriter<W: Write> {
    /// Always `Some` until `finish` or `drop` takes it.
    writer: Option<StreamWriter<W>>,
}

impl<W: Write> AutoFinishStreamWriter<W> {
    pub(super) fn new(writer: StreamWriter<W>) -> AutoFinishStreamWriter<W> {
        AutoFinishStreamWriter {
            writer: Some(writer),
        }
    }

    fn writer(&mut self) -> &mut StreamWriter<W> {
        self.writer
            .as_mut()
            .expect("only finish and drop take the writer, and both consume self")
    }

    /// The stream writer.
    pub fn get_ref(&self) -> &StreamWriter<W> {
        self.writer
            .as_ref()
            .expect("only finish and drop take the writer, and both consume self")
    }

    /// The stream writer, mutably.
    pub fn get_mut(&mut self) -> &mut StreamWriter<W> {
        self.writer()
    }

    /// Finishes the stream now, as [`StreamWriter::finish`], reporting any error, and returns
    /// the inner writer.
    ///
    /// # Errors
    /// As [`StreamWriter::finish`].
    pub fn finish(mut self) -> Result<W> {
        self.writer
            .take()
            .expect("only finish and drop take the writer, and both consume self")
            .finish()
    }
}

impl<W: Write> Write for AutoFinishStreamWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl<W: Write> Drop for AutoFinishStreamWriter<W> {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            // Nobody is left to report an error to: `finish` is the way to see it.
            let _ = writer.finish();
        }
    }
}
