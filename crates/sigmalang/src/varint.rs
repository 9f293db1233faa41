//! LEB128 variable-length unsigned integers: 7 bits a byte, low bits first, high bit set on every
//! byte but the last. A u64 takes at most ten bytes; anything longer, or a tenth byte with bits
//! beyond the 64th, is rejected, so lengths never wrap or truncate silently.

use crate::error::{Error, ErrorKind, Result};

/// The most bytes a varint of a u64 takes.
pub const MAX_LEN: usize = 10;

/// Appends `value` as a varint to `out`.
#[inline]
pub fn write(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// How many bytes [`write()`](fn@write) takes for `value`.
#[inline]
pub fn len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a varint from `buf` at `*pos`, advancing `*pos` past it.
///
/// `base` is added to offsets in errors (the position of `buf` in a larger input).
#[inline]
pub fn read(buf: &[u8], pos: &mut usize, base: u64) -> Result<u64> {
    let start = *pos;
    // Most varints are one byte.
    if let Some(&byte) = buf.get(start) {
        if byte < 0x80 {
            *pos = start + 1;
            return Ok(u64::from(byte));
        }
    }
    let mut value: u64 = 0;
    for i in 0..MAX_LEN {
        let Some(&byte) = buf.get(start + i) else {
            return Err(Error::truncated(
                "a variable-length integer",
                base + start as u64,
            ));
        };
        let bits = u64::from(byte & 0x7f);
        if i == MAX_LEN - 1 && byte > 1 {
            return Err(Error::at(ErrorKind::BadVarint, base + start as u64));
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            *pos = start + i + 1;
            return Ok(value);
        }
    }
    Err(Error::at(ErrorKind::BadVarint, base + start as u64))
}

/// Reads a varint from a byte reader; `offset` is the reader's position, advanced past it.
pub fn read_from<R: std::io::Read>(reader: &mut R, offset: &mut u64) -> Result<u64> {
    let start = *offset;
    let mut value: u64 = 0;
    for i in 0..MAX_LEN {
        let mut byte = [0u8; 1];
        if let Err(e) = reader.read_exact(&mut byte) {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                return Err(Error::truncated("a variable-length integer", start));
            }
            return Err(e.into());
        }
        *offset += 1;
        let byte = byte[0];
        if i == MAX_LEN - 1 && byte > 1 {
            return Err(Error::at(ErrorKind::BadVarint, start));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Error::at(ErrorKind::BadVarint, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        for v in [
            0u64,
            1,
            127,
            128,
            255,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            write(&mut buf, v);
            assert_eq!(buf.len(), len(v), "len of {v}");
            let mut pos = 0;
            assert_eq!(read(&buf, &mut pos, 0).unwrap(), v);
            assert_eq!(pos, buf.len());
            let mut off = 0;
            assert_eq!(read_from(&mut &buf[..], &mut off).unwrap(), v);
        }
    }

    #[test]
    fn rejects_overlong_and_overflowing() {
        let overlong = [0x80u8; 11];
        assert!(matches!(
            read(&overlong, &mut 0, 0).unwrap_err().kind(),
            ErrorKind::BadVarint
        ));
        let mut overflow = vec![0xffu8; 9];
        overflow.push(0x02);
        assert!(matches!(
            read(&overflow, &mut 0, 5).unwrap_err().kind(),
            ErrorKind::BadVarint
        ));
        let err = read(&[0x80, 0x80], &mut 0, 7).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Truncated { .. }));
        assert_eq!(err.offset(), Some(7));
    }
}
