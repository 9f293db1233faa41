//! What both kinds of SigmaLang file share: the fixed file header that opens every stream and
//! archive, and reading helpers. The byte layout is in `docs/FORMAT.md`.

mod header;
pub(crate) mod io;

pub use header::{
    FileHeader, FileKind, ARCHIVE_VERSION, FORMAT_VERSION, HEADER_LEN, MAGIC, OLDEST_STREAM_VERSION,
};
pub(crate) use io::{read_exact_at, read_full};
