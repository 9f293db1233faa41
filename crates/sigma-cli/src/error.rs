//! The CLI's error: one line naming the file concerned and what went wrong.

use std::fmt;
use std::io;

/// An error reported as `sigma: <subject>: <message>` on one line of standard error.
#[derive(Debug)]
pub struct CliError {
    /// The file (or `<stdin>`, `<stdout>`) the error is about, if any.
    subject: Option<String>,
    /// What went wrong.
    message: String,
    /// Exit with failure but print nothing (a closed pipe on standard output).
    silent: bool,
}

impl CliError {
    /// An error about `subject` (a file label, see [`crate::io::label`]).
    pub fn new(subject: impl Into<String>, message: impl fmt::Display) -> CliError {
        CliError {
            subject: Some(one_line(&subject.into())),
            message: one_line(&message.to_string()),
            silent: false,
        }
    }

    /// An error from the codec library about `subject`, shown with the library's message (which
    /// says what went wrong and at which byte).
    /// A file that needs more memory than `--memory` allows says what to pass.
    pub fn codec(subject: impl Into<String>, e: sigmalang::Error) -> CliError {
        if let sigmalang::ErrorKind::MemoryLimit { needed, .. } = e.kind() {
            let hint = crate::limits::MemoryLimit::covering(*needed);
            return CliError::new(subject, format!("{e}; pass --memory {hint} to decode it"));
        }
        CliError::new(subject, e)
    }

    /// An I/O error that may carry a codec error inside (from the library's `Read`/`Write`
    /// adapters): the codec error's message is recovered.
    pub fn codec_io(subject: impl Into<String>, e: io::Error) -> CliError {
        CliError::codec(subject, sigmalang::Error::from(e))
    }

    /// An error writing to `subject`; a closed pipe on standard output ends the program quietly
    /// (as `sigma -d big.sgm | head` should).
    pub fn write(subject: impl Into<String>, e: io::Error, is_stdout: bool) -> CliError {
        let silent = is_stdout && is_broken_pipe(&e);
        let mut err = CliError::codec_io(subject, e);
        err.silent = silent;
        err
    }

    /// A failure already reported (each file's error was printed as it happened): exit 1
    /// without another message.
    pub fn silent() -> CliError {
        CliError {
            subject: None,
            message: String::new(),
            silent: true,
        }
    }

    /// Whether the error should exit without a message.
    pub fn is_silent(&self) -> bool {
        self.silent
    }
}

/// Whether `e` is, or wraps a codec error that is, a closed pipe.
fn is_broken_pipe(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return true;
    }
    let inner = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<sigmalang::Error>());
    matches!(
        inner.map(sigmalang::Error::kind),
        Some(sigmalang::ErrorKind::Io(io)) if io.kind() == io::ErrorKind::BrokenPipe
    )
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Some(s) => write!(f, "{s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for CliError {}

/// `s` with line breaks and other control characters escaped, so an error is one line.
pub fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let e = CliError::new("a\nb", "x\ny");
        assert_eq!(e.to_string(), "a\\nb: x\\ny");
    }

    #[test]
    fn broken_pipe_on_stdout_is_silent() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(CliError::write("<stdout>", pipe(), true).is_silent());
        assert!(!CliError::write("f", pipe(), false).is_silent());
        let wrapped = io::Error::from(sigmalang::Error::from(pipe()));
        assert!(CliError::write("<stdout>", wrapped, true).is_silent());
    }
}
