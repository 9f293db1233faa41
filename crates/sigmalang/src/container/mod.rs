//! What both kinds of SigmaLang file share: the fixed file header that opens every stream and
//! archive, and reading helpers. The byte layout is in `docs/FORMAT.md`.

mod header;
mod io;

pub use header::{FileHeader, FileKind, FORMAT_VERSION, HEADER_LEN, MAGIC};
pub(crate) use io::read_exact_at;
pub use io::read_full;
