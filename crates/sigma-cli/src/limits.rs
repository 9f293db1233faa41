//! Limits on what `sigma` reads and allocates: the `--memory LIMIT` of the decoding commands,
//! and the caps on codebook files and JSON Lines records.
//!
//! `--memory` works like zstd's `--memory` and xz's `--memlimit`: a size with an optional
//! binary suffix (`512M`, `4G`, `1GiB`, `65536K`; `K`, `M`, `G` and `T` are powers of 1024
//! with or without `i` and `B`, as in both tools), or `max` for no limit. The CLI hands it to the
//! library's decoders in one place each: [`limit_stream`] for streams and [`limit_archive`]
//! for archives.

use std::fmt;
use std::io::{Read, Seek};
use std::str::FromStr;

use sigmalang::{ArchiveReader, StreamReader};

/// The largest codebook file `-m` loads: 64 MiB. A `sigma train --level max` codebook of the
/// 16 MB chat training corpus is 5.9 MB (README, "Measured"), and a codebook grows more slowly
/// than its corpus, so this leaves room for corpora ten times larger; `sigma train` refuses
/// to write a larger one, so every codebook it makes loads. zstd caps dictionaries at 32 MB
/// for the same reason: a codebook is read whole into memory, and `-m /dev/zero` must stop.
pub const MAX_CODEBOOK_BYTES: u64 = 64 << 20;

/// The longest JSON Lines line `pack`, `stats` and `train` read: 1 GiB plus 64 KiB of room for
/// the JSON around the text. The library refuses records over
/// [`sigmalang::MAX_RECORD_LEN`] (1 GiB), so a longer line could not be packed anyway
/// (unless escapes shrink it, which only JSON of binary-looking text does).
pub const MAX_LINE_BYTES: u64 = sigmalang::MAX_RECORD_LEN + (64 << 10);

/// A memory limit for decoding, in bytes (`--memory`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimit(u64);

impl MemoryLimit {
    /// The default: the library's, 256 MiB of estimated decoder memory per record or chunk.
    /// Decoding a stream chunk needs at most 48 MiB (16 MiB chunks), and archive records of
    /// chat text are kilobytes, so legitimate files stay far below; a crafted file that claims
    /// gigabytes (issue 11: 1.6 GB from 2 KB, a 1 GiB record from 86 bytes) is refused by name
    /// instead of taking the machine's memory, and every such case peaks far under 512 MB.
    /// Archive records over about 80 MiB, which the encoder accepts up to 1 GiB, need
    /// `--memory` (zstd refuses windows over 128 MiB unless told, for the same reason).
    pub const DEFAULT: MemoryLimit = MemoryLimit(sigmalang::container::DEFAULT_MEMORY_LIMIT);

    /// The smallest limit of whole mebibytes (or gibibytes, from 1 GiB) that covers `needed`
    /// bytes, as `--memory` takes it.
    pub fn covering(needed: u64) -> MemoryLimit {
        let unit = if needed >= 1 << 30 {
            1u64 << 30
        } else {
            1 << 20
        };
        MemoryLimit(needed.div_ceil(unit).saturating_mul(unit))
    }

    /// No limit (`--memory max`).
    pub const NONE: MemoryLimit = MemoryLimit(u64::MAX);

    /// The limit in bytes (`u64::MAX`: none).
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl Default for MemoryLimit {
    fn default() -> MemoryLimit {
        MemoryLimit::DEFAULT
    }
}

impl fmt::Display for MemoryLimit {
    /// The limit as `--memory` takes it back: `max`, or the largest binary unit that divides
    /// it exactly (`512MiB`, `4GiB`, `1000B`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == MemoryLimit::NONE {
            return f.write_str("max");
        }
        let units = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
        for (unit, shift) in units {
            if self.0 != 0 && self.0 % (1u64 << shift) == 0 {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl FromStr for MemoryLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<MemoryLimit, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("max") {
            return Ok(MemoryLimit::NONE);
        }
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, suffix) = s.split_at(digits);
        let number: u64 = number.parse().map_err(|_| {
            format!("{s:?} is not a size (a number with K, M, G or T, like 512M or 4GiB, or max)")
        })?;
        let shift = match suffix.to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => {
                return Err(format!(
                    "unknown unit {suffix:?} in {s:?} (use K, M, G or T, like 512M or 4GiB)"
                ))
            }
        };
        let bytes = number
            .checked_mul(1u64 << shift)
            .ok_or_else(|| format!("{s:?} is too large (use max for no limit)"))?;
        if bytes == 0 {
            return Err("the memory limit must be more than 0 (use max for no limit)".to_string());
        }
        Ok(MemoryLimit(bytes))
    }
}

/// `sigma pack --block`: block mode when a trial on the first records says it pays
/// (`auto`, `auto:SIZE`), or pages of a fixed size (0: every record coded alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockSize {
    /// Pages of this many bytes if a trial codes a sample of the records at least a tenth
    /// smaller that way than alone, and the records average at most a sixteenth of a page
    /// ([`sigmalang::ArchiveOptions::auto_pages`]); else every record coded alone.
    Auto(u64),
    /// Pages of this many bytes; 0: every record coded alone.
    Bytes(u64),
}

impl BlockSize {
    /// `sigma pack`'s default, `auto:4KiB`: short records (under 256 bytes on average) in
    /// pages of [`sigmalang::archive::SMALL_PAGE_BYTES`] where those pay, others alone.
    pub const DEFAULT: BlockSize = BlockSize::Auto(sigmalang::archive::SMALL_PAGE_BYTES);
}

impl std::fmt::Display for BlockSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            BlockSize::Auto(n) if n == sigmalang::archive::AUTO_PAGE_BYTES => f.write_str("auto"),
            BlockSize::Auto(n) if n % 1024 == 0 => write!(f, "auto:{}KiB", n / 1024),
            BlockSize::Auto(n) => write!(f, "auto:{n}"),
            BlockSize::Bytes(n) => write!(f, "{n}"),
        }
    }
}

/// Parses `sigma pack --block SIZE`: `auto` (pages of
/// [`sigmalang::archive::AUTO_PAGE_BYTES`] where they pay), `auto:SIZE`, a size as `--memory`
/// takes it (`64KiB`, `1M`), or `0` for none (every record coded alone), at most
/// [`sigmalang::archive::MAX_PAGE_BYTES`].
pub fn parse_block_size(s: &str) -> Result<BlockSize, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(BlockSize::Bytes(0));
    }
    if s.eq_ignore_ascii_case("auto") {
        return Ok(BlockSize::Auto(sigmalang::archive::AUTO_PAGE_BYTES));
    }
    let (auto, size) = match s.split_once(':') {
        Some((a, size)) if a.trim().eq_ignore_ascii_case("auto") => (true, size.trim()),
        _ => (false, s),
    };
    if size.eq_ignore_ascii_case("max") || (auto && size == "0") {
        return Err(
            "the block size must be auto, auto:SIZE or a size, like 64KiB or 1MiB (0: none)"
                .to_string(),
        );
    }
    let bytes = size.parse::<MemoryLimit>()?.bytes();
    let max = sigmalang::archive::MAX_PAGE_BYTES;
    if bytes > max {
        return Err(format!("blocks hold at most {}", MemoryLimit(max)));
    }
    Ok(if auto {
        BlockSize::Auto(bytes)
    } else {
        BlockSize::Bytes(bytes)
    })
}

/// The one place a stream decoder gets the memory limit, so that `decompress`, `verify` and
/// `--rm`'s check all obey `--memory`: each chunk is refused before it is decoded if it needs
/// more.
pub fn limit_stream<R: Read>(mut reader: StreamReader<R>, limit: MemoryLimit) -> StreamReader<R> {
    reader.set_memory_limit(limit.bytes());
    reader
}

/// The one place an archive reader gets the memory limit (for `unpack`, `get`, `ls` and
/// `verify`), before any record is decoded; the readers of a parallel walk inherit it.
pub fn limit_archive<R: Read + Seek>(
    mut reader: ArchiveReader<R>,
    limit: MemoryLimit,
) -> ArchiveReader<R> {
    reader.set_memory_limit(limit.bytes());
    reader
}

/// `n` bytes in the largest binary unit that keeps it short, for messages (`64 MiB`).
pub fn human(n: u64) -> String {
    let units = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in units {
        if n >= 1 << shift {
            let value = n as f64 / (1u64 << shift) as f64;
            return if n % (1 << shift) == 0 {
                format!("{} {unit}", n >> shift)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_zstd_and_xz() {
        let p = |s: &str| s.parse::<MemoryLimit>().map(MemoryLimit::bytes);
        assert_eq!(p("512M"), Ok(512 << 20));
        assert_eq!(p("4G"), Ok(4 << 30));
        assert_eq!(p("1GiB"), Ok(1 << 30));
        assert_eq!(p("1gb"), Ok(1 << 30));
        assert_eq!(p("65536K"), Ok(64 << 20));
        assert_eq!(p("1000"), Ok(1000));
        assert_eq!(p("2T"), Ok(2 << 40));
        assert_eq!(p("max"), Ok(u64::MAX));
        assert!(p("0").is_err());
        assert!(p("").is_err());
        assert!(p("1.5G").is_err());
        assert!(p("12X").unwrap_err().contains("unknown unit"));
        assert!(p("-1G").is_err());
        assert!(p("99999999999T").unwrap_err().contains("too large"));
    }

    #[test]
    fn limits_print_as_they_parse() {
        assert_eq!(MemoryLimit::DEFAULT.to_string(), "256MiB");
        assert_eq!(MemoryLimit::covering(389 << 20).to_string(), "389MiB");
        assert_eq!(MemoryLimit::covering((389 << 20) + 1).to_string(), "390MiB");
        assert_eq!(MemoryLimit::covering(3 << 30).to_string(), "3GiB");
        assert_eq!(MemoryLimit::covering((3 << 30) + 5).to_string(), "4GiB");
        assert_eq!(MemoryLimit::NONE.to_string(), "max");
        for s in ["512MiB", "4GiB", "1000B", "3KiB", "max"] {
            assert_eq!(s.parse::<MemoryLimit>().unwrap().to_string(), s);
        }
        assert_eq!(human(MAX_CODEBOOK_BYTES), "64 MiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(12), "12 bytes");
    }
}
