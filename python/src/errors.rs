//! SigmaLang errors as Python exceptions: one class per [`ErrorKind`], all under
//! `SigmaLangError`, with the message the Rust `Display` (and so the `sigma` CLI) prints.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use sigmalang::{Error, ErrorKind};

create_exception!(
    sigmalang,
    SigmaLangError,
    PyException,
    "Base class of every SigmaLang error."
);
create_exception!(
    sigmalang,
    TruncatedError,
    SigmaLangError,
    "The input ended too early."
);
create_exception!(
    sigmalang,
    BadMagicError,
    SigmaLangError,
    "Not SigmaLang data."
);
create_exception!(
    sigmalang,
    UnsupportedVersionError,
    SigmaLangError,
    "A format version this build cannot read."
);
create_exception!(
    sigmalang,
    ChecksumError,
    SigmaLangError,
    "A stored checksum does not match."
);
create_exception!(
    sigmalang,
    BadVarintError,
    SigmaLangError,
    "A malformed variable-length integer."
);
create_exception!(
    sigmalang,
    CorruptError,
    SigmaLangError,
    "A value the format does not allow."
);
create_exception!(
    sigmalang,
    CodebookMismatchError,
    SigmaLangError,
    "The data was made with another codebook."
);
create_exception!(
    sigmalang,
    InvalidArgumentError,
    SigmaLangError,
    "Arguments the codec cannot work with."
);
create_exception!(
    sigmalang,
    SigmaLangIOError,
    SigmaLangError,
    "An I/O error while coding."
);

/// The Python exception for `e`: its class follows the kind, its message is `e`'s `Display`, and
/// it carries `offset` (the byte where the problem was found, or None) and `context`.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    let err = match e.kind() {
        ErrorKind::Truncated { .. } => TruncatedError::new_err(msg),
        ErrorKind::BadMagic { .. } => BadMagicError::new_err(msg),
        ErrorKind::UnsupportedVersion { .. } => UnsupportedVersionError::new_err(msg),
        ErrorKind::Checksum { .. } => ChecksumError::new_err(msg),
        ErrorKind::BadVarint => BadVarintError::new_err(msg),
        ErrorKind::Corrupt { .. } => CorruptError::new_err(msg),
        ErrorKind::CodebookMismatch { .. } => CodebookMismatchError::new_err(msg),
        ErrorKind::InvalidArgument { .. } => InvalidArgumentError::new_err(msg),
        ErrorKind::Io(_) => SigmaLangIOError::new_err(msg),
        _ => SigmaLangError::new_err(msg),
    };
    Python::attach(|py| {
        let value = err.value(py);
        // Setting attributes on a fresh exception instance cannot fail in practice; if it did,
        // the exception would still carry its message.
        let _ = value.setattr("offset", e.offset());
        let _ = value.setattr("context", e.context());
    });
    err
}

/// Converts a SigmaLang result into a Python one.
pub trait IntoPy<T> {
    /// The value, or the matching Python exception.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, Error> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Registers the exception classes in the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SigmaLangError", py.get_type::<SigmaLangError>())?;
    m.add("TruncatedError", py.get_type::<TruncatedError>())?;
    m.add("BadMagicError", py.get_type::<BadMagicError>())?;
    m.add(
        "UnsupportedVersionError",
        py.get_type::<UnsupportedVersionError>(),
    )?;
    m.add("ChecksumError", py.get_type::<ChecksumError>())?;
    m.add("BadVarintError", py.get_type::<BadVarintError>())?;
    m.add("CorruptError", py.get_type::<CorruptError>())?;
    m.add(
        "CodebookMismatchError",
        py.get_type::<CodebookMismatchError>(),
    )?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    m.add("SigmaLangIOError", py.get_type::<SigmaLangIOError>())?;
    Ok(())
}
