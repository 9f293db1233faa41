//! The fixed 20-byte header every SigmaLang file starts with: magic, format version, file
//! kind, flags, codebook id and a checksum of the header.

use crate::checksum::crc32c;
use crate::codebook::CodebookId;
use crate::error::{Error, ErrorKind, Result};

/// The four magic bytes every SigmaLang file starts with: `Σ` in UTF-8, then `LG`.
pub const MAGIC: [u8; 4] = [0xCE, 0xA3, b'L', b'G'];
/// The container format version this build writes for streams. Version 3 (this build) lets a
/// stream chunk be coded with the adaptive model (record mode `ADAPTIVE`); version 2 streams,
/// whose chunks never are, still decode. Version 1 files (never released) are refused.
pub const FORMAT_VERSION: u8 = 3;
/// The container format version this build writes for archives: version 3, which adds header
/// flags (the JSON-lines form), the primer section (records after a primer may be `ADAPTIVE`),
/// the page size of block mode in the index header, context ids relative to the previous
/// record's, and a key table in the index (FORMAT.md §5). Version 2 archives still read.
pub const ARCHIVE_VERSION: u8 = 3;
/// The oldest archive version a reader accepts.
pub const OLDEST_ARCHIVE_VERSION: u8 = 2;
/// The oldest container version a stream reader accepts.
pub const OLDEST_STREAM_VERSION: u8 = 2;
/// The size of the file header.
pub const HEADER_LEN: usize = 20;
/// Stream header flag bit 0 (FORMAT.md §2): the stream's `ADAPTIVE2` chunks are coded with the
/// adaptive model's variant 3 (§3.6). The only stream flag; readers before it refuse every
/// non-zero stream flag, so they refuse such a stream rather than misread it.
pub const STREAM_FLAG_V3: u16 = 1;

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
        self.to_bytes_with_flags(0)
    }

    /// The header's 20 bytes with `flags` in bytes 6..8 (version-3 archives, and version-3
    /// streams' [`STREAM_FLAG_V3`]: FORMAT.md §2; every other file has none).
    pub fn to_bytes_with_flags(&self, flags: u16) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&MAGIC);
        h[4] = match self.kind {
            FileKind::Stream => FORMAT_VERSION,
            FileKind::Archive => ARCHIVE_VERSION,
        };
        h[5] = self.kind as u8;
        h[6..8].copy_from_slice(&flags.to_le_bytes());
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
        let unsupported = |supported: u8| {
            Error::at(
                ErrorKind::UnsupportedVersion {
                    what: "container",
                    found: u32::from(h[4]),
                    supported: u32::from(supported),
                },
                4,
            )
        };
        if !(OLDEST_STREAM_VERSION..=FORMAT_VERSION).contains(&h[4]) {
            return Err(unsupported(FORMAT_VERSION));
        }
        let kind = match h[5] {
            1 => FileKind::Stream,
            2 => FileKind::Archive,
            k => return Err(Error::corrupt(format!("unknown file kind {k}"), 5)),
        };
        if kind == FileKind::Archive && !(OLDEST_ARCHIVE_VERSION..=ARCHIVE_VERSION).contains(&h[4])
        {
            return Err(unsupported(ARCHIVE_VERSION));
        }
        // A version-3 archive's flags are the archive reader's to check (FORMAT.md §5); a
        // version-3 stream may have bit 0 alone.
        let flags = u16::from_le_bytes([h[6], h[7]]);
        match kind {
            FileKind::Archive if h[4] >= 3 => {}
            FileKind::Stream if h[4] >= 3 && flags & !STREAM_FLAG_V3 != 0 => {
                return Err(Error::corrupt(
                    format!(
                        "unknown stream header flags {flags:#06x} (this build knows bit 0 alone: \
                         chunks coded with variant 3 of the adaptive model)"
                    ),
                    6,
                ));
            }
            FileKind::Stream if h[4] >= 3 => {}
            _ if flags != 0 => return Err(Error::corrupt("reserved header flags are set", 6)),
            _ => {}
        }
        let codebook = CodebookId(u64::from_le_bytes(h[8..16].try_into().expect("8 bytes")));
        Ok(FileHeader { kind, codebook })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Archives of versions 2 and 3 open, others are refused by version; only a version-3
    /// archive may have flags (the archive reader checks which), and a version-3 stream bit 0
    /// alone (any other stream bit is refused by name).
    #[test]
    fn archive_versions_and_flags() {
        let with = |kind: FileKind, version: u8, flags: u16| {
            let mut h = FileHeader {
                kind,
                codebook: CodebookId(7),
            }
            .to_bytes_with_flags(flags);
            h[4] = version;
            let crc = crc32c(&h[..16]);
            h[16..20].copy_from_slice(&crc.to_le_bytes());
            FileHeader::parse(&h)
        };
        assert_eq!(ARCHIVE_VERSION, 3);
        for version in [2, 3] {
            assert!(with(FileKind::Archive, version, 0).is_ok());
        }
        for version in [0, 1, 4, 255] {
            let e = with(FileKind::Archive, version, 0).unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::UnsupportedVersion { supported: 3, .. }),
                "{e}"
            );
        }
        assert!(with(FileKind::Archive, 3, 1).is_ok());
        assert!(
            with(FileKind::Archive, 3, 0x8000).is_ok(),
            "left to the archive reader"
        );
        for (kind, version) in [(FileKind::Archive, 2), (FileKind::Stream, 2)] {
            let e = with(kind, version, 1).unwrap_err();
            assert!(e.to_string().contains("reserved header flags"), "{e}");
        }
        assert!(with(FileKind::Stream, 3, STREAM_FLAG_V3).is_ok());
        for flags in [2, 3, 0x80, 0x100, 0x8001] {
            let e = with(FileKind::Stream, 3, flags).unwrap_err();
            assert!(e.to_string().contains("unknown stream header flags"), "{e}");
            assert!(e.to_string().contains("variant 3"), "{e}");
            assert_eq!(e.offset(), Some(6), "{e}");
        }
    }
}
