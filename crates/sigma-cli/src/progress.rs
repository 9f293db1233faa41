//! The progress bar shown on standard error during long work.
//!
//! The bar counts input bytes as they are read ([`ProgressReader`]), or, when decompressing,
//! output bytes as they are written ([`OutputMeter`]). It starts hidden and appears only once
//! more than [`SHOW_AFTER`] bytes have gone through, so small inputs never flash a bar; it never
//! appears when standard error is not a terminal or with `-q`.

use std::io::{self, IsTerminal, Read};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Bytes of input after which the progress bar appears.
pub const SHOW_AFTER: u64 = 4 << 20;

/// Whether a progress bar may be drawn at all: standard error is a terminal and not `-q`.
pub fn allowed(quiet: bool) -> bool {
    !quiet && io::stderr().is_terminal()
}

/// A bar counting `total` steps of work, drawn at once (and ticking, so its clock moves during
/// long steps) if `visible`, else hidden. `template` is an indicatif template.
pub fn step_bar(total: u64, template: &str, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(template)
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// A reader that advances a progress bar by the bytes read through it.
pub struct ProgressReader<R: Read> {
    inner: R,
    bar: ProgressBar,
    read: u64,
    /// Whether the bar may be drawn at all (a terminal and not `-q`).
    allowed: bool,
    /// Whether the bar has been made visible.
    shown: bool,
}

impl<R: Read> ProgressReader<R> {
    /// A reader that only counts (see [`counter`](Self::counter)) and never shows a bar.
    pub fn counting(inner: R) -> ProgressReader<R> {
        ProgressReader::new(inner, None, true)
    }

    /// Wraps `inner`, whose total length is `total` if known. `quiet` hides the bar for good.
    pub fn new(inner: R, total: Option<u64>, quiet: bool) -> ProgressReader<R> {
        let bar = match total {
            Some(len) => {
                let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{decimal_bytes:>10}/{decimal_total_bytes:<10} [{bar:30}] {decimal_bytes_per_sec:>11}  ETA {eta}",
                    )
                    .map(|s| s.progress_chars("=> "))
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {decimal_bytes:>10} {decimal_bytes_per_sec:>11}  elapsed {elapsed}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar
            }
        };
        ProgressReader {
            inner,
            bar,
            read: 0,
            allowed: allowed(quiet),
            shown: false,
        }
    }

    /// Shows a count of records (set as the bar's message) before the bytes.
    pub fn with_records(self) -> ProgressReader<R> {
        let template = if self.bar.length().is_some() {
            "{msg:>9} records {decimal_bytes:>10}/{decimal_total_bytes:<10} [{bar:30}] {decimal_bytes_per_sec:>11}  ETA {eta}"
        } else {
            "{spinner} {msg:>9} records {decimal_bytes:>10} {decimal_bytes_per_sec:>11}  elapsed {elapsed}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message("0");
        self
    }

    /// A handle on the bar, whose `position()` is the number of bytes read so far (it stays
    /// valid after the reader is dropped).
    pub fn counter(&self) -> ProgressBar {
        self.bar.clone()
    }
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.bar.inc(n as u64);
        if self.allowed && !self.shown && self.read > SHOW_AFTER {
            self.shown = true;
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        Ok(n)
    }
}

/// The decompression bar: output bytes written and their speed, and how much of the input
/// (if its size is known) has been read.
pub struct OutputMeter {
    bar: ProgressBar,
    written: u64,
    input_len: Option<u64>,
    allowed: bool,
    shown: bool,
}

impl OutputMeter {
    /// A hidden bar for output; `input_len` is the input's size, if known.
    pub fn new(input_len: Option<u64>, quiet: bool) -> OutputMeter {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {decimal_bytes:>10} written {decimal_bytes_per_sec:>11}  elapsed {elapsed}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        OutputMeter {
            bar,
            written: 0,
            input_len,
            allowed: allowed(quiet),
            shown: false,
        }
    }

    /// Counts `n` more bytes written, with `read` bytes of the input read so far.
    pub fn advance(&mut self, n: usize, read: u64) {
        self.written += n as u64;
        self.bar.inc(n as u64);
        if self.allowed && !self.shown && self.written > SHOW_AFTER {
            self.shown = true;
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        if self.shown {
            if let Some(len) = self.input_len.filter(|&l| l > 0) {
                self.bar
                    .set_message(format!("{}% of the input", read.min(len) * 100 / len));
            }
        }
    }
}

impl Drop for OutputMeter {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl<R: Read> Drop for ProgressReader<R> {
    fn drop(&mut self) {
        // An error message must not be printed over a half-drawn bar.
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_bytes_through() {
        let data = vec![7u8; 100_000];
        let mut r = ProgressReader::new(&data[..], Some(data.len() as u64), true);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert!(!r.shown);
    }

    #[test]
    fn the_output_meter_counts_output_bytes() {
        let mut m = OutputMeter::new(Some(100), true);
        m.advance(1000, 10);
        m.advance(500, 100);
        assert_eq!(m.bar.position(), 1500, "bytes written, not read");
        assert!(!m.shown);
    }
}
