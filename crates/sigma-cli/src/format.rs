//! Small formatting helpers shared by the commands: speeds, ratios and escaped byte strings.

use std::fmt::Write as _;
use std::time::Duration;

/// Throughput in megabytes (10^6 bytes) per second; 0 for a zero duration.
pub fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    bytes as f64 / 1e6 / secs
}

/// Compression ratio `original / compressed` (0 when `compressed` is 0).
pub fn ratio(original: u64, compressed: u64) -> f64 {
    if compressed == 0 {
        return 0.0;
    }
    original as f64 / compressed as f64
}

/// A one-line summary of a compression or decompression: sizes, ratio and speed.
///
/// `original` and `compressed` are the uncompressed and compressed sizes, whichever way the work
/// went; the speed is measured on the uncompressed side, as zstd does.
pub fn summary(
    from: &str,
    to: &str,
    bytes_in: u64,
    bytes_out: u64,
    original: u64,
    compressed: u64,
    elapsed: Duration,
) -> String {
    format!(
        "{from} -> {to}: {bytes_in} -> {bytes_out} bytes, ratio {:.2}, {:.1} MB/s",
        ratio(original, compressed),
        mb_per_s(original, elapsed),
    )
}

/// `bytes` as a quoted, escaped string of at most `max_chars` characters (then `…`).
///
/// Valid UTF-8 is shown as text, with quotes, backslashes, control and invisible characters
/// escaped the way Rust's `{:?}` does; bytes that are not UTF-8 are shown as `\xNN`.
pub fn escape_bytes(bytes: &[u8], max_chars: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(max_chars) + 2);
    out.push('"');
    let mut shown = 0usize;
    let mut truncated = false;
    'outer: for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if shown == max_chars {
                truncated = true;
                break 'outer;
            }
            // escape_debug leaves printable characters (emoji, CJK, ...) as they are; a single
            // quote needs no escape inside double quotes.
            if c == '\'' {
                out.push(c);
            } else {
                let _ = write!(out, "{}", c.escape_debug());
            }
            shown += 1;
        }
        for b in chunk.invalid() {
            if shown == max_chars {
                truncated = true;
                break 'outer;
            }
            let _ = write!(out, "\\x{b:02X}");
            shown += 1;
        }
    }
    out.push('"');
    if truncated {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_truncates() {
        assert_eq!(escape_bytes(b"Hello", 40), "\"Hello\"");
        assert_eq!(escape_bytes(b"a\nb\t\"c\\", 40), r#""a\nb\t\"c\\""#);
        assert_eq!(escape_bytes(b"\xff\xfeok", 40), r#""\xFF\xFEok""#);
        assert_eq!(escape_bytes("héllo 👋".as_bytes(), 40), "\"héllo 👋\"");
        assert_eq!(escape_bytes(b"don't", 40), "\"don't\"");
        assert_eq!(escape_bytes(b"abcdef", 3), "\"abc\"…");
        assert_eq!(escape_bytes(b"", 3), "\"\"");
    }

    #[test]
    fn rates_and_ratios() {
        assert_eq!(ratio(100, 25), 4.0);
        assert_eq!(ratio(100, 0), 0.0);
        assert_eq!(mb_per_s(2_000_000, Duration::from_secs(2)), 1.0);
        assert_eq!(mb_per_s(5, Duration::ZERO), 0.0);
    }
}
