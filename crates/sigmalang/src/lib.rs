#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

/// Builder-style settings of an options struct: for each field, a setter that takes and returns
/// the options (`ArchiveOptions::default().threads(2).batch_records(256)`) and a getter
/// `get_NAME` (the regex-automata convention: the setter has the plain name).
macro_rules! settings {
    ($ty:ident { $( $(#[doc = $doc:literal])* $set:ident, $get:ident: $field:ident: $t:ty; )* }) => {
        impl $ty {
            $(
                $(#[doc = $doc])*
                #[must_use]
                pub fn $set(mut self, value: $t) -> $ty {
                    self.$field = value;
                    self
                }

                #[doc = concat!("The value set by [`", stringify!($set), "`](", stringify!($ty), "::", stringify!($set), ").")]
                pub fn $get(&self) -> $t {
                    self.$field
                }
            )*
        }
    };
}
pub(crate) use settings;

pub mod archive;
pub mod codebook;
pub mod container;
pub mod cost;
pub mod error;
pub mod glyph;
pub mod jsonform;
pub mod parser;
pub mod pool;
pub mod primer;
pub mod primitive;
pub mod stream;

// The codec's organs: reachable from outside only through the `internals` feature.
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
mod bank;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
mod checksum;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
mod coder;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
mod context;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
mod model;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
mod record;
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
mod varint;
mod workers;

/// The codec's internals, for fuzz targets, benchmarks and tests (cargo feature `internals`).
/// Not a stable API: anything here may change in any release. Hidden from the documentation,
/// which a workspace build would otherwise show it in (the CLI turns the feature on).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    /// The Σ-bank of roots that archive records reference across groups.
    pub mod bank {
        pub use crate::bank::*;
    }
    /// CRC-32C.
    pub mod checksum {
        pub use crate::checksum::*;
    }
    /// The range coder.
    pub mod coder {
        pub use crate::coder::*;
    }
    /// Groups: options, dependencies, the archive writer's frame stacks and frame pool.
    pub mod context {
        pub use crate::context::*;
    }
    /// The context models (static, adaptive, match) and their training.
    pub mod model {
        pub use crate::model::*;
    }
    /// One record's coding: header, modes, encoder and decoder.
    pub mod record {
        pub use crate::record::*;
    }
    /// LEB128 varints.
    pub mod varint {
        pub use crate::varint::*;
    }
    /// The coded index of an archive (header flag bit 6): an entry, and the coding of a list
    /// of them as an index body (for crafted archives in tests and fuzz targets).
    pub mod coded_index {
        pub use crate::archive::coded::{encode, Entry};
    }
    /// Reading helpers of the containers.
    pub mod io {
        pub use crate::container::io::{read_exact_at, read_full};
    }
}

pub use archive::{Archive, ArchiveOptions, ArchiveReader, ArchiveWriter, RecordInfo};
pub use codebook::{Codebook, CodebookId};
pub use context::{Dependency, FramePoolStats, GroupOptions};
pub use error::{Error, ErrorKind, Result};
pub use glyph::{Glyph, GlyphType};
pub use model::{CompressionLevel, TrainOptions};
pub use parser::{parse, Node, NodeId, SemanticTree};
pub use pool::{GlyphBufferPool, PoolConfig, PoolStats};
pub use primer::{Primer, MAX_PRIMER_LEN};
pub use primitive::{Family, Primitive, Tier};
pub use record::{CoderConfig, Decoder, Encoder, EncoderStats, MAX_RECORD_LEN};
pub use stream::{
    compress, compress_with, decompress, decompress_with, decompress_with_limit,
    AutoFinishStreamWriter, StreamOptions, StreamReader, StreamWriter,
};
