//! The one error type of the codec: what went wrong, and where.

use std::fmt;
use std::io;

use crate::codebook::CodebookId;

/// What went wrong while decoding (or, rarely, encoding).
///
/// Every variant that comes from bad input is paired, in [`Error`], with the byte offset in the
/// input where the problem was found.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended before a structure it promised was complete.
    Truncated {
        /// What was being read when the input ended.
        what: &'static str,
    },
    /// The input does not start with the SigmaLang magic bytes.
    BadMagic {
        /// The first bytes found instead (up to four).
        found: Vec<u8>,
    },
    /// The container or codebook says it has a format version this build cannot read.
    UnsupportedVersion {
        /// What was being read.
        what: &'static str,
        /// The version found.
        found: u32,
        /// The one version this build reads.
        supported: u32,
    },
    /// A stored checksum does not match the data it covers.
    Checksum {
        /// The structure the checksum covers.
        what: &'static str,
        /// The checksum stored in the input.
        expected: u32,
        /// The checksum computed over the data.
        found: u32,
    },
    /// A variable-length integer is longer than ten bytes or overflows 64 bits.
    BadVarint,
    /// A value is outside what the format allows (a length past a limit, an unknown tag, ...).
    Corrupt {
        /// What is wrong, in words.
        what: String,
    },
    /// The stream was made with another codebook than the one offered to decode it.
    CodebookMismatch {
        /// The codebook the stream names.
        stream: CodebookId,
        /// The codebook offered for decoding.
        given: CodebookId,
    },
    /// Training or encoding was given arguments it cannot work with.
    InvalidArgument {
        /// What is wrong, in words.
        what: String,
    },
    /// Decoding would need more memory than the reader's limit allows (a record, chunk or
    /// output larger than the caller accepts: see `set_memory_limit` on the readers).
    MemoryLimit {
        /// The bytes the operation needs, as estimated before anything is allocated (for
        /// output limits: at least this many).
        needed: u64,
        /// The limit it was checked against.
        limit: u64,
    },
    /// An I/O error from the underlying reader or writer.
    Io(io::Error),
    /// A worker thread panicked (a bug in this crate) while coding a job; the work it was
    /// given is lost, and the error's context names what it was (`chunk 3`, `record 17`).
    WorkerPanicked {
        /// What the worker does (`encoder`, `decoder`, `walker`, ...).
        role: &'static str,
        /// The job's number among those its worker pool was given, from 0.
        job: u64,
        /// What the panic said.
        message: String,
    },
}

/// `bytes` in binary units with one decimal (`3.0 GiB`, `256.0 MiB`, `512 B`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut v = bytes as f64;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

impl ErrorKind {
    /// A copy of this kind (an I/O error is copied as its kind and message).
    fn duplicate(&self) -> ErrorKind {
        match self {
            ErrorKind::Truncated { what } => ErrorKind::Truncated { what },
            ErrorKind::BadMagic { found } => ErrorKind::BadMagic {
                found: found.clone(),
            },
            ErrorKind::UnsupportedVersion {
                what,
                found,
                supported,
            } => ErrorKind::UnsupportedVersion {
                what,
                found: *found,
                supported: *supported,
            },
            ErrorKind::Checksum {
                what,
                expected,
                found,
            } => ErrorKind::Checksum {
                what,
                expected: *expected,
                found: *found,
            },
            ErrorKind::BadVarint => ErrorKind::BadVarint,
            ErrorKind::Corrupt { what } => ErrorKind::Corrupt { what: what.clone() },
            ErrorKind::CodebookMismatch { stream, given } => ErrorKind::CodebookMismatch {
                stream: *stream,
                given: *given,
            },
            ErrorKind::InvalidArgument { what } => {
                ErrorKind::InvalidArgument { what: what.clone() }
            }
            ErrorKind::MemoryLimit { needed, limit } => ErrorKind::MemoryLimit {
                needed: *needed,
                limit: *limit,
            },
            ErrorKind::WorkerPanicked { role, job, message } => ErrorKind::WorkerPanicked {
                role,
                job: *job,
                message: message.clone(),
            },
            ErrorKind::Io(e) => ErrorKind::Io(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// An error of the SigmaLang codec: a [`ErrorKind`] and, for bad input, the byte offset at which
/// it was detected.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    offset: Option<u64>,
    context: Option<String>,
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` at no particular offset.
    pub fn new(kind: ErrorKind) -> Error {
        Error {
            kind,
            offset: None,
            context: None,
        }
    }

    /// A new error of `kind` detected at byte `offset` of the input.
    pub fn at(kind: ErrorKind, offset: u64) -> Error {
        Error {
            kind,
            offset: Some(offset),
            context: None,
        }
    }

    pub(crate) fn truncated(what: &'static str, offset: u64) -> Error {
        Error::at(ErrorKind::Truncated { what }, offset)
    }

    pub(crate) fn corrupt(what: impl Into<String>, offset: u64) -> Error {
        Error::at(ErrorKind::Corrupt { what: what.into() }, offset)
    }

    pub(crate) fn invalid(what: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument { what: what.into() })
    }

    /// A copy of this error, for reporting one failure again to each record that depends on
    /// it (an I/O error is copied as its kind and message).
    pub(crate) fn duplicate(&self) -> Error {
        Error {
            kind: self.kind.duplicate(),
            offset: self.offset,
            context: self.context.clone(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The byte offset in the input where the problem was detected, if it is known.
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// Where the error happened in a larger structure (for example `record 17`), if known.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// Adds `base` to the offset: used when a part of a larger input is decoded on its own.
    pub fn shifted(mut self, base: u64) -> Error {
        if let Some(off) = self.offset.as_mut() {
            *off += base;
        }
        self
    }

    /// Names the larger structure the error happened in (`record 17`, `chunk 3`).
    pub fn within(mut self, context: impl Into<String>) -> Error {
        let context = context.into();
        self.context = Some(match self.context.take() {
            Some(inner) => format!("{context}, {inner}"),
            None => context,
        });
        self
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Truncated { what } => write!(f, "input truncated while reading {what}"),
            ErrorKind::BadMagic { found } => {
                write!(f, "not a SigmaLang file (magic bytes {found:02x?})")
            }
            ErrorKind::UnsupportedVersion {
                what,
                found,
                supported,
            } => write!(
                f,
                "{what} format version {found} is not supported (this build reads version {supported})"
            ),
            ErrorKind::Checksum {
                what,
                expected,
                found,
            } => write!(
                f,
                "checksum mismatch in {what}: stored {expected:#010x}, computed {found:#010x}"
            ),
            ErrorKind::BadVarint => write!(f, "malformed variable-length integer"),
            ErrorKind::Corrupt { what } => write!(f, "corrupt data: {what}"),
            ErrorKind::CodebookMismatch { stream, given } => write!(
                f,
                "codebook mismatch: the data was encoded with codebook {stream}, \
                 but codebook {given} was given"
            ),
            ErrorKind::InvalidArgument { what } => write!(f, "invalid argument: {what}"),
            ErrorKind::MemoryLimit { needed, limit } => write!(
                f,
                "needs {} of memory; the limit is {}",
                human_bytes(*needed),
                human_bytes(*limit)
            ),
            ErrorKind::Io(e) => write!(f, "I/O error: {e}"),
            ErrorKind::WorkerPanicked { role, job, message } => write!(
                f,
                "a {role} worker panicked on job {job} (a bug; please report it): {message}"
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        match (&self.context, self.offset) {
            (Some(c), Some(o)) => write!(f, " ({c}, at byte {o})"),
            (Some(c), None) => write!(f, " ({c})"),
            (None, Some(o)) => write!(f, " (at byte {o})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        // An io::Error that carries one of ours (from a Read/Write adapter) is unwrapped.
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let inner = e.into_inner().expect("checked above");
            return *inner.downcast::<Error>().expect("checked above");
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return Error::new(ErrorKind::Truncated { what: "input" });
        }
        Error::new(ErrorKind::Io(e))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e.kind {
            ErrorKind::Io(inner) if e.offset.is_none() && e.context.is_none() => inner,
            _ => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}
