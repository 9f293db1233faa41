//! Codebooks: what the encoder and decoder share. Every stream names the codebook it was made
//! with by its [`CodebookId`], and refuses to decode with another.

use std::fmt;

/// The identity of a codebook: the first 8 bytes of a hash of its serialized content.
///
/// The id `0` is reserved for "no codebook": streams whose records are all stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodebookId(pub u64);

impl CodebookId {
    /// The id of streams made without a codebook.
    pub const NONE: CodebookId = CodebookId(0);
}

impl fmt::Display for CodebookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
