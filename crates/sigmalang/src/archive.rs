//! The record archive: what `sigma pack` writes. Many records, each coded on its own and
//! readable on its own, with an index at the end for random access.
//!
//! ```text
//! file header (20 bytes, kind = archive)
//! metadata: varint length, bytes, crc32c
//! record payloads, back to back, in blocks of `block_records` records
//! index: varint count, varint block_records, varint payload length per record,
//!        crc32c per block (over the block's payloads), crc32c of the index
//! footer: u64 LE index offset, 4 bytes end magic
//! ```
//!
//! Reading record `n` reads the footer, the index (once) and `n`'s block only; the block's
//! checksum is verified before the record is decoded. The byte layout is in `docs/FORMAT.md`.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use crate::checksum::{crc32c, Crc32c};
use crate::codebook::Codebook;
use crate::error::{Error, ErrorKind, Result};
use crate::record::{Decoder, Encoder};
use crate::stream::{FileHeader, FileKind, HEADER_LEN};
use crate::varint;

/// The last four bytes of an archive.
pub const END_MAGIC: [u8; 4] = [0xCE, 0xA3, b'L', b'X'];
/// The footer: index offset and end magic.
pub const FOOTER_LEN: usize = 12;
/// Records per checksummed block, by default.
pub const DEFAULT_BLOCK_RECORDS: u32 = 16;
/// The most metadata an archive may carry.
pub const MAX_METADATA: usize = 1 << 20;

/// Writes an archive record by record.
pub struct ArchiveWriter<W: Write> {
    inner: W,
    encoder: Encoder,
    payload: Vec<u8>,
    lens: Vec<u64>,
    block_crcs: Vec<u32>,
    block_crc: Crc32c,
    block_records: u32,
    offset: u64,
    bytes_in: u64,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive on `inner` whose records are modeled with `codebook`. `metadata` is
    /// stored as is (the CLI stores `field=NAME`).
    pub fn new(inner: W, codebook: Arc<Codebook>, metadata: &[u8]) -> Result<ArchiveWriter<W>> {
        ArchiveWriter::with_block_records(inner, codebook, metadata, DEFAULT_BLOCK_RECORDS)
    }

    /// As [`new`](Self::new), with `block_records` records per checksummed block.
    pub fn with_block_records(
        mut inner: W,
        codebook: Arc<Codebook>,
        metadata: &[u8],
        block_records: u32,
    ) -> Result<ArchiveWriter<W>> {
        if block_records == 0 {
            return Err(Error::invalid("block_records must be at least 1"));
        }
        if metadata.len() > MAX_METADATA {
            return Err(Error::invalid("archive metadata is larger than 1 MiB"));
        }
        let header = FileHeader {
            kind: FileKind::Archive,
            codebook: codebook.id(),
        };
        let mut head = header.to_bytes().to_vec();
        varint::write(&mut head, metadata.len() as u64);
        head.extend_from_slice(metadata);
        head.extend_from_slice(&crc32c(metadata).to_le_bytes());
        inner.write_all(&head)?;
        Ok(ArchiveWriter {
            inner,
            encoder: Encoder::new(codebook),
            payload: Vec::new(),
            lens: Vec::new(),
            block_crcs: Vec::new(),
            block_crc: Crc32c::new(),
            block_records,
            offset: head.len() as u64,
            bytes_in: 0,
        })
    }

    /// Encodes and appends one record; returns its index.
    pub fn add(&mut self, record: &[u8]) -> Result<u64> {
        self.payload.clear();
        self.encoder.encode(record, &mut self.payload)?;
        self.inner.write_all(&self.payload)?;
        self.block_crc.update(&self.payload);
        self.lens.push(self.payload.len() as u64);
        self.offset += self.payload.len() as u64;
        self.bytes_in += record.len() as u64;
        if self.lens.len() % self.block_records as usize == 0 {
            self.block_crcs.push(self.block_crc.finish());
            self.block_crc = Crc32c::new();
        }
        Ok(self.lens.len() as u64 - 1)
    }

    /// Records added so far.
    pub fn len(&self) -> u64 {
        self.lens.len() as u64
    }

    /// Whether no record was added yet.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Record bytes taken so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Archive bytes written so far.
    pub fn bytes_out(&self) -> u64 {
        self.offset
    }

    /// The encoder (for its codebook and statistics).
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Writes the index and footer; returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        if self.lens.len() % self.block_records as usize != 0 {
            self.block_crcs.push(self.block_crc.finish());
        }
        let mut idx = Vec::with_capacity(self.lens.len() * 2 + 64);
        varint::write(&mut idx, self.lens.len() as u64);
        varint::write(&mut idx, u64::from(self.block_records));
        for &l in &self.lens {
            varint::write(&mut idx, l);
        }
        for c in &self.block_crcs {
            idx.extend_from_slice(&c.to_le_bytes());
        }
        idx.extend_from_slice(&crc32c(&idx).to_le_bytes());
        idx.extend_from_slice(&self.offset.to_le_bytes());
        idx.extend_from_slice(&END_MAGIC);
        self.inner.write_all(&idx)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Reads an archive with random access.
pub struct ArchiveReader<R: Read + Seek> {
    inner: R,
    header: FileHeader,
    metadata: Vec<u8>,
    /// Start offset of every record, and one past the last.
    offsets: Vec<u64>,
    block_crcs: Vec<u32>,
    block_records: u64,
    decoder: Option<Decoder>,
    block: Vec<u8>,
    /// Bytes read from the file by the last `get` (for showing the bound).
    last_read: u64,
}

impl<R: Read + Seek> ArchiveReader<R> {
    /// Opens an archive: reads and checks its header, metadata and index. Records are decoded
    /// once a codebook is given with [`set_codebook`](Self::set_codebook) (the default codebook
    /// is used if the archive names it).
    pub fn open(mut inner: R) -> Result<ArchiveReader<R>> {
        let file_len = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(0))?;
        let mut h = [0u8; HEADER_LEN];
        let n = read_up_to(&mut inner, &mut h)?;
        let header = FileHeader::parse(&h[..n])?;
        if header.kind != FileKind::Archive {
            return Err(Error::corrupt(
                "this is a stream, not a record archive (use `sigma decompress`)",
                5,
            ));
        }
        let mut off = HEADER_LEN as u64;
        let meta_len = varint::read_from(&mut inner, &mut off)?;
        if meta_len > MAX_METADATA as u64 || off + meta_len + 4 > file_len {
            return Err(Error::corrupt(
                format!("metadata length {meta_len} is impossible"),
                HEADER_LEN as u64,
            ));
        }
        let mut metadata = vec![0u8; meta_len as usize + 4];
        read_exact_at(&mut inner, &mut metadata, off, "the archive metadata")?;
        let stored = u32::from_le_bytes(metadata[meta_len as usize..].try_into().expect("4"));
        metadata.truncate(meta_len as usize);
        if stored != crc32c(&metadata) {
            return Err(Error::at(
                ErrorKind::Checksum {
                    what: "the archive metadata",
                    expected: stored,
                    found: crc32c(&metadata),
                },
                off,
            ));
        }
        let records_start = off + meta_len + 4;
        if file_len < records_start + FOOTER_LEN as u64 {
            return Err(Error::truncated("the archive footer", file_len));
        }
        let mut footer = [0u8; FOOTER_LEN];
        inner.seek(SeekFrom::Start(file_len - FOOTER_LEN as u64))?;
        read_exact_at(
            &mut inner,
            &mut footer,
            file_len - FOOTER_LEN as u64,
            "the archive footer",
        )?;
        if footer[8..] != END_MAGIC {
            return Err(Error::truncated(
                "the archive (no end marker: the file is cut short)",
                file_len,
            ));
        }
        let index_off = u64::from_le_bytes(footer[..8].try_into().expect("8"));
        if index_off < records_start || index_off > file_len - FOOTER_LEN as u64 - 4 {
            return Err(Error::corrupt(
                format!("index offset {index_off} is outside the file"),
                file_len - 12,
            ));
        }
        let mut idx = vec![0u8; (file_len - FOOTER_LEN as u64 - index_off) as usize];
        inner.seek(SeekFrom::Start(index_off))?;
        read_exact_at(&mut inner, &mut idx, index_off, "the archive index")?;
        let body_len = idx.len() - 4;
        let stored = u32::from_le_bytes(idx[body_len..].try_into().expect("4"));
        let computed = crc32c(&idx[..body_len]);
        if stored != computed {
            return Err(Error::at(
                ErrorKind::Checksum {
                    what: "the archive index",
                    expected: stored,
                    found: computed,
                },
                index_off + body_len as u64,
            ));
        }
        let idx = &idx[..body_len];
        let mut pos = 0;
        let count = varint::read(idx, &mut pos, index_off)?;
        let block_records = varint::read(idx, &mut pos, index_off)?;
        if count > idx.len() as u64 || block_records == 0 {
            return Err(Error::corrupt("index header is impossible", index_off));
        }
        let mut offsets = Vec::with_capacity(count as usize + 1);
        let mut at = records_start;
        offsets.push(at);
        for _ in 0..count {
            at = at.saturating_add(varint::read(idx, &mut pos, index_off)?);
            offsets.push(at);
        }
        if at != index_off {
            return Err(Error::corrupt(
                "record lengths do not add up to the index offset",
                index_off,
            ));
        }
        let blocks = count.div_ceil(block_records) as usize;
        if idx.len() - pos != blocks * 4 {
            return Err(Error::corrupt(
                "block checksum table has the wrong size",
                index_off + pos as u64,
            ));
        }
        let block_crcs = idx[pos..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
            .collect();
        let mut reader = ArchiveReader {
            inner,
            header,
            metadata,
            offsets,
            block_crcs,
            block_records,
            decoder: None,
            block: Vec::new(),
            last_read: 0,
        };
        let default = Codebook::default_codebook();
        if default.id() == header.codebook {
            reader.decoder = Some(Decoder::new(default));
        }
        Ok(reader)
    }

    /// Gives the codebook to decode with; refuses one that is not the archive's.
    pub fn set_codebook(&mut self, codebook: Arc<Codebook>) -> Result<()> {
        if codebook.id() != self.header.codebook {
            return Err(Error::at(
                ErrorKind::CodebookMismatch {
                    stream: self.header.codebook,
                    given: codebook.id(),
                },
                8,
            ));
        }
        self.decoder = Some(Decoder::new(codebook));
        Ok(())
    }

    /// The archive's header.
    pub fn header(&self) -> FileHeader {
        self.header
    }

    /// The metadata stored by the writer.
    pub fn metadata(&self) -> &[u8] {
        &self.metadata
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.offsets.len() as u64 - 1
    }

    /// Whether the archive holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The coded size of record `n`.
    pub fn payload_len(&self, n: u64) -> Option<u64> {
        let n = usize::try_from(n).ok()?;
        Some(self.offsets.get(n + 1)? - self.offsets[n])
    }

    /// Bytes the last [`get`](Self::get) read from the file (its block).
    pub fn last_read_bytes(&self) -> u64 {
        self.last_read
    }

    /// Decodes record `n`, appending it to `out`. Reads and verifies only `n`'s block.
    pub fn get_into(&mut self, n: u64, out: &mut Vec<u8>) -> Result<()> {
        let count = self.len();
        if n >= count {
            return Err(Error::invalid(format!(
                "record {n} does not exist (the archive holds {count})"
            )));
        }
        let ctx = || format!("record {n}");
        let block = n / self.block_records;
        let first = block * self.block_records;
        let last = (first + self.block_records).min(count);
        let start = self.offsets[first as usize];
        let end = self.offsets[last as usize];
        self.block.resize((end - start) as usize, 0);
        self.inner.seek(SeekFrom::Start(start))?;
        read_exact_at(&mut self.inner, &mut self.block, start, "a record block")
            .map_err(|e| e.within(ctx()))?;
        self.last_read = end - start;
        let stored = self.block_crcs[block as usize];
        let computed = crc32c(&self.block);
        if stored != computed {
            return Err(Error::at(
                ErrorKind::Checksum {
                    what: "a record block",
                    expected: stored,
                    found: computed,
                },
                start,
            )
            .within(format!(
                "record {n}, block {block} of records {first}..{last}"
            )));
        }
        let rs = (self.offsets[n as usize] - start) as usize;
        let re = (self.offsets[n as usize + 1] - start) as usize;
        let decoder = self.decoder.as_mut().ok_or_else(|| {
            Error::new(ErrorKind::InvalidArgument {
                what: format!(
                    "the archive was made with codebook {}; give that codebook to read it",
                    self.header.codebook
                ),
            })
        })?;
        decoder
            .decode(&self.block[rs..re], out)
            .map_err(|e| e.shifted(start + rs as u64).within(ctx()))
    }

    /// Decodes record `n`.
    pub fn get(&mut self, n: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.get_into(n, &mut out)?;
        Ok(out)
    }
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

fn read_exact_at<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    offset: u64,
    what: &'static str,
) -> Result<()> {
    let n = read_up_to(r, buf)?;
    if n < buf.len() {
        return Err(Error::truncated(what, offset + n as u64));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn build(records: &[&[u8]]) -> Vec<u8> {
        let mut w = ArchiveWriter::with_block_records(
            Vec::new(),
            Codebook::default_codebook(),
            b"field=text",
            3,
        )
        .unwrap();
        for r in records {
            w.add(r).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn random_access_round_trip() {
        let records: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("record number {i} says hello").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
        let bytes = build(&refs);
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        assert_eq!(r.len(), 20);
        assert_eq!(r.metadata(), b"field=text");
        for i in (0..20).rev() {
            assert_eq!(r.get(i).unwrap(), records[i as usize]);
            assert!(r.last_read_bytes() < bytes.len() as u64 / 2);
        }
        assert!(r.get(20).is_err());
        let empty = build(&[]);
        assert_eq!(ArchiveReader::open(Cursor::new(&empty)).unwrap().len(), 0);
    }

    #[test]
    fn damage_is_confined_to_its_block() {
        let records: Vec<Vec<u8>> = (0..9)
            .map(|i| format!("r{i} some text here").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
        let mut bytes = build(&refs);
        let r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        let target = r.offsets[4] as usize; // record 4, block 1 (records 3..6)
        drop(r);
        bytes[target] ^= 0x10;
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        for i in 0..9u64 {
            let got = r.get(i);
            if (3..6).contains(&i) {
                let e = got.unwrap_err();
                assert!(matches!(e.kind(), ErrorKind::Checksum { .. }), "{e}");
                assert!(e.to_string().contains(&format!("record {i}")), "{e}");
            } else {
                assert_eq!(got.unwrap(), records[i as usize]);
            }
        }
    }

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
                    .and_then(|mut r| (0..r.len()).map(|n| r.get(n)).collect::<Result<Vec<_>>>());
                assert!(ok.is_err(), "flip of bit {bit} of byte {i} went unnoticed");
            }
        }
    }
}
