//! What both kinds of SigmaLang file share: the fixed file header that opens every stream and
//! archive, and reading helpers. The byte layout is in `docs/FORMAT.md`.

mod header;
pub(crate) mod io;

pub use header::{
    FileHeader, FileKind, ARCHIVE_VERSION, FORMAT_VERSION, HEADER_LEN, MAGIC,
    OLDEST_ARCHIVE_VERSION, OLDEST_STREAM_VERSION, STREAM_FLAG_V3,
};
pub(crate) use io::{read_exact_at, read_full};

/// The memory a reader may use by default to decode one record or chunk: 256 MiB, as
/// estimated before anything is allocated (`set_memory_limit` on [`crate::StreamReader`],
/// [`crate::Archive`] and [`crate::ArchiveReader`] change it).
///
/// Why 256 MiB: a stream chunk is at most 16 MiB (`MAX_CHUNK_SIZE`), and decoding one needs
/// about three times that (payload, history, output), so no stream a writer makes is refused;
/// an archive record needs its frames plus about three copies of itself (history, decoded
/// record, the caller's copy), so records up to about 80 MiB decode by default, far above the
/// chat turns and request bodies archives are made for, while a hostile header claiming a
/// 1 GiB record (3 GiB to decode) or frames of many GiB is refused before any work, and every
/// such file stays well under 512 MB of memory whatever the number of threads.
pub const DEFAULT_MEMORY_LIMIT: u64 = 256 << 20;

/// The most bytes of decoded records an archive walk holds across contexts for the records
/// still to come (the frames of later records), unless the memory limit is smaller; past it,
/// the least recently used context's records are dropped and decoded again when needed.
pub(crate) const WALK_HOLD_BYTES: u64 = 64 << 20;
