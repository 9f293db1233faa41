//! The archive's index: what it says of every record, and the block checksums.

use std::collections::HashMap;

use super::RecordInfo;

/// What an archive reader reads at open and never changes: metadata, record index, Σ-bank
/// references and block checksums.
#[derive(Debug)]
pub(super) struct Index {
    pub(super) metadata: Vec<u8>,
    pub(super) records: Vec<RecordInfo>,
    /// The bank roots each record references (only records that reference any).
    pub(super) refs: HashMap<u64, Vec<u64>>,
    pub(super) block_crcs: Vec<(u32, u32)>,
}

#[cfg(test)]
mod tests {
    use crate::archive::testing::*;
    use crate::archive::ArchiveReader;
    use std::io::Cursor;

    #[test]
    fn every_truncation_and_header_flip_is_an_error() {
        let bytes = build(&[b"alpha", b"beta", b"gamma delta"]);
        for cut in 0..bytes.len() {
            assert!(
                ArchiveReader::open(Cursor::new(&bytes[..cut])).is_err(),
                "cut {cut}"
            );
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let ok = ArchiveReader::open(Cursor::new(&b))
                    .map(|mut r| r.walk(|_, _| {}) == 0 && r.len() == 3);
                assert!(
                    !matches!(ok, Ok(true)),
                    "flip of bit {bit} of byte {i} went unnoticed"
                );
            }
        }
    }
}
