#![doc = include_str!("../../../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod archive;
pub mod bank;
pub mod checksum;
pub mod codebook;
pub mod coder;
pub mod container;
pub mod context;
pub mod error;
pub mod glyph;
pub mod model;
pub mod parser;
pub mod pool;
pub mod primitive;
pub mod record;
pub mod stream;
pub mod varint;
mod workers;

pub use archive::{Archive, ArchiveOptions, ArchiveReader, ArchiveWriter, RecordInfo};
pub use codebook::{Codebook, CodebookId};
pub use context::GroupOptions;
pub use error::{Error, ErrorKind, Result};
pub use glyph::{Glyph, GlyphType};
pub use model::{CompressionLevel, TrainOptions};
pub use parser::{parse, Node, NodeId, SemanticTree};
pub use pool::{GlyphBufferPool, PoolConfig, PoolStats};
pub use primitive::{Family, Primitive, Tier};
pub use record::{Decoder, Encoder};
pub use stream::{compress, decompress, StreamReader, StreamWriter};
