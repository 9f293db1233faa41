//! Reading helpers shared by the stream and archive readers.

use std::io::{self, Read};

use crate::error::{Error, Result};

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

/// Fills `buf` from `r`, whose position is `offset` in the file; a short read is
/// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated) at the offset where the data ends,
/// naming `what` was being read.
pub fn read_exact_at<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    offset: u64,
    what: &'static str,
) -> Result<()> {
    let n = read_full(r, buf)?;
    if n < buf.len() {
        return Err(Error::truncated(what, offset + n as u64));
    }
    Ok(())
}
