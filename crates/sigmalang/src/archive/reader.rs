//! [`ArchiveReader`]: opens an archive (header, metadata, footer and index, all validated) and
//! decodes records with random access: a record's chain first, with a cache of recent records.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use super::index::Index;
use super::{RecordInfo, END_MAGIC, FOOTER_LEN, MAX_KEYFRAME_INTERVAL, MAX_METADATA};
use crate::checksum::crc32c;
use crate::codebook::Codebook;
use crate::container::{read_exact_at, read_full, FileHeader, FileKind, HEADER_LEN};
use crate::context::{select_frames, ContextOptions, Level};
use crate::error::{Error, ErrorKind, Result};
use crate::record::Decoder;
use crate::varint;

/// Reads an archive with random access.
pub struct ArchiveReader<R: Read + Seek> {
    pub(super) inner: R,
    pub(super) header: FileHeader,
    /// The index, shared with the readers [`walk_parallel`](Self::walk_parallel) starts.
    pub(super) index: Arc<Index>,
    pub(super) block_records: u64,
    pub(super) context: ContextOptions,
    pub(super) decoder: Option<Decoder>,
    pub(super) block: Vec<u8>,
    /// The block held in `block` (verified), if any.
    pub(super) block_no: Option<u64>,
    /// Recently decoded records by index, and the order they came in (oldest first, the first
    /// to leave): a lookup is a hash probe, not a scan of the cache.
    pub(super) cache: HashMap<u64, Vec<u8>>,
    pub(super) cache_order: VecDeque<u64>,
    pub(super) cache_bytes: usize,
    /// The most bytes `cache` holds.
    pub(super) cache_limit: usize,
    /// Bytes the last `get` read from the file.
    pub(super) last_read: u64,
}

/// The most decoded bytes a reader keeps for decoding later records of the same contexts.
const CACHE_BYTES: usize = 32 << 20;

impl<R: Read + Seek> ArchiveReader<R> {
    /// Opens an archive: reads and checks its header, metadata and index. Records are decoded
    /// once a codebook is given with [`set_codebook`](Self::set_codebook) (the default codebook
    /// is used if the archive names it).
    pub fn open(mut inner: R) -> Result<ArchiveReader<R>> {
        let file_len = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(0))?;
        let mut h = [0u8; HEADER_LEN];
        let n = read_full(&mut inner, &mut h)?;
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
        let field = |pos: &mut usize| varint::read(idx, pos, index_off);
        let count = field(&mut pos)?;
        let block_records = field(&mut pos)?;
        let keyframe_interval = field(&mut pos)?;
        let keyframes_per_root = field(&mut pos)?;
        let max_frames = field(&mut pos)?;
        let window = field(&mut pos)?;
        if count > idx.len() as u64
            || block_records == 0
            || block_records > u64::from(u32::MAX)
            || keyframe_interval == 0
            || keyframe_interval > u64::from(MAX_KEYFRAME_INTERVAL)
            || keyframes_per_root == 0
            || keyframes_per_root > u64::from(MAX_KEYFRAME_INTERVAL)
            || max_frames > u64::from(u32::MAX)
        {
            return Err(Error::corrupt("index header is impossible", index_off));
        }
        let context = ContextOptions {
            keyframe_interval: keyframe_interval as u32,
            keyframes_per_root: keyframes_per_root as u32,
            max_frames: max_frames as u32,
            window,
            ..ContextOptions::default()
        };
        let mut records = Vec::with_capacity(count as usize);
        let mut refs: HashMap<u64, Vec<u64>> = HashMap::new();
        // Per context: (last record, records since its keyframe, last keyframe, keyframes
        // since its root).
        let mut last_of: HashMap<u32, (u64, u32, u64, u32)> = HashMap::new();
        let mut at = records_start;
        for i in 0..count {
            let entry_at = index_off + pos as u64;
            let payload_len = field(&mut pos)?;
            let tag = field(&mut pos)?;
            let bad = |what: &str| Error::corrupt(format!("record {i}: {what}"), entry_at);
            let cid = u32::try_from(tag >> 3).map_err(|_| bad("context id out of range"))?;
            let level = Level::from_code(tag & 3).ok_or_else(|| bad("unknown level"))?;
            if tag & 4 != 0 {
                let n = field(&mut pos)?;
                if n == 0 || n > crate::bank::MAX_REFS as u64 {
                    return Err(bad("impossible number of references"));
                }
                let mut ids = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let back = field(&mut pos)?;
                    let root = i
                        .checked_sub(back)
                        .filter(|_| back > 0)
                        .ok_or_else(|| bad("reference to a later record"))?;
                    let target = records.get(root as usize).map(|r: &RecordInfo| r.level);
                    if target != Some(Level::Root) || refs.contains_key(&root) {
                        return Err(bad("reference to a record that is not a bank root"));
                    }
                    ids.push(root);
                }
                refs.insert(i, ids);
            }
            let state = last_of.get(&cid).copied();
            let (prev, next) = match (level, state) {
                (Level::Root, _) => (None, (i, 1, i, 1)),
                (Level::Keyframe, Some((_, _, key, keys))) if keys < context.keyframes_per_root => {
                    (Some(key), (i, 1, i, keys + 1))
                }
                (Level::Delta, Some((last, since, key, keys)))
                    if since < context.keyframe_interval =>
                {
                    (Some(last), (i, since + 1, key, keys))
                }
                _ => return Err(bad("depends on records the index does not allow")),
            };
            last_of.insert(cid, next);
            records.push(RecordInfo {
                offset: at,
                payload_len,
                context: cid,
                level,
                prev,
            });
            at = at.saturating_add(payload_len);
        }
        if at != index_off {
            return Err(Error::corrupt(
                "record lengths do not add up to the index offset",
                index_off,
            ));
        }
        let blocks = count.div_ceil(block_records) as usize;
        if idx.len() - pos != blocks * 8 {
            return Err(Error::corrupt(
                "block checksum table has the wrong size",
                index_off + pos as u64,
            ));
        }
        let block_crcs = idx[pos..]
            .chunks_exact(8)
            .map(|c| {
                (
                    u32::from_le_bytes(c[..4].try_into().expect("4")),
                    u32::from_le_bytes(c[4..].try_into().expect("4")),
                )
            })
            .collect();
        let mut reader = ArchiveReader {
            inner,
            header,
            index: Arc::new(Index {
                metadata,
                records,
                refs,
                block_crcs,
            }),
            block_records,
            context,
            decoder: None,
            block: Vec::new(),
            block_no: None,
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            cache_bytes: 0,
            cache_limit: CACHE_BYTES,
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
        &self.index.metadata
    }

    /// The context options the archive was written with (`memory` is the writer's own and is
    /// not stored).
    pub fn context_options(&self) -> ContextOptions {
        self.context
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.index.records.len() as u64
    }

    /// Whether the archive holds no record.
    pub fn is_empty(&self) -> bool {
        self.index.records.is_empty()
    }

    /// What the index says of record `n`.
    pub fn info(&self, n: u64) -> Option<RecordInfo> {
        self.index.records.get(usize::try_from(n).ok()?).copied()
    }

    /// The Σ-bank roots record `n` references (empty for most records).
    pub fn references(&self, n: u64) -> &[u64] {
        self.index.refs.get(&n).map_or(&[], |v| &v[..])
    }

    /// The coded size of record `n`.
    pub fn payload_len(&self, n: u64) -> Option<u64> {
        self.info(n).map(|r| r.payload_len)
    }

    /// The records `n` depends on (its context's root and keyframes since it, and its records
    /// since its keyframe), oldest first, and `n` itself last.
    pub fn chain(&self, n: u64) -> Vec<u64> {
        let mut chain = vec![n];
        let mut at = n;
        while let Some(p) = self.info(at).and_then(|r| r.prev) {
            chain.push(p);
            at = p;
        }
        chain.reverse();
        chain
    }

    /// The frames record `n` is coded against: the bank roots it references, then records of
    /// its chain.
    pub fn frames_of(&mut self, n: u64) -> Result<Vec<u64>> {
        let info = self
            .info(n)
            .ok_or_else(|| Error::invalid(format!("record {n} does not exist")))?;
        let mut frames = self.references(n).to_vec();
        frames.extend(self.context_frames_of(n, info)?);
        Ok(frames)
    }

    fn context_frames_of(&mut self, n: u64, info: RecordInfo) -> Result<Vec<u64>> {
        match info.level {
            Level::Root => Ok(Vec::new()),
            Level::Keyframe => Ok(info.prev.into_iter().collect()),
            Level::Delta => {
                let chain = self.chain(n);
                let group_start = chain
                    .iter()
                    .rposition(|&r| self.index.records[r as usize].level != Level::Delta)
                    .unwrap_or(0);
                let mut group = Vec::new();
                for &r in &chain[group_start..chain.len() - 1] {
                    let len = self.decoded_len(r)?;
                    group.push((r, len));
                }
                let range = select_frames(&group, &self.context);
                Ok(group[range].iter().map(|&(i, _)| i).collect())
            }
        }
    }

    fn decoded_len(&mut self, n: u64) -> Result<u64> {
        let info = self.info(n).expect("valid index");
        let mut head = [0u8; crate::varint::MAX_LEN];
        self.inner.seek(SeekFrom::Start(info.offset))?;
        let k = read_full(
            &mut self.inner,
            &mut head[..info.payload_len.min(10) as usize],
        )?;
        let h = crate::record::read_header(&head[..k])
            .map_err(|e| e.shifted(info.offset).within(format!("record {n}")))?;
        Ok(h.raw_len)
    }

    /// Bytes the last [`get`](Self::get) read from the file (the blocks of the records it
    /// decoded).
    pub fn last_read_bytes(&self) -> u64 {
        self.last_read
    }

    /// Decodes record `n`, appending it to `out`. Decodes the records `n` depends on first
    /// (reusing recently decoded ones), reading and verifying only their blocks.
    pub fn get_into(&mut self, n: u64, out: &mut Vec<u8>) -> Result<()> {
        let count = self.len();
        if n >= count {
            return Err(Error::invalid(format!(
                "record {n} does not exist (the archive holds {count})"
            )));
        }
        if self.decoder.is_none() {
            return Err(Error::new(ErrorKind::InvalidArgument {
                what: format!(
                    "the archive was made with codebook {}; give that codebook to read it",
                    self.header.codebook
                ),
            }));
        }
        self.last_read = 0;
        let chain = self.chain(n);
        // Decoded chain records: (index, bytes), oldest first; the current group starts at
        // the last keyframe or root.
        let mut decoded: Vec<(u64, Vec<u8>)> = Vec::with_capacity(chain.len());
        let mut group_start = 0;
        for &r in &chain {
            let level = self.index.records[r as usize].level;
            if level != Level::Delta {
                group_start = decoded.len();
            }
            let bytes = match self.cached(r) {
                Some(b) => b,
                None => {
                    let mut banked = Vec::new();
                    for &root in self.references(r).to_vec().iter() {
                        let b = match self.cached(root) {
                            Some(b) => b,
                            None => {
                                let b = self.decode_one(root, &[]).map_err(|e| {
                                    e.within(format!("record {n} depends on record {root}"))
                                })?;
                                self.remember(root, &b);
                                b
                            }
                        };
                        banked.push(b);
                    }
                    let mut frames: Vec<&[u8]> = banked.iter().map(|b| &b[..]).collect();
                    let context_frames: Vec<&[u8]> = match level {
                        Level::Root => Vec::new(),
                        Level::Keyframe => {
                            decoded.last().map(|(_, b)| &b[..]).into_iter().collect()
                        }
                        Level::Delta => {
                            let group: Vec<(u64, u64)> = decoded[group_start..]
                                .iter()
                                .map(|(i, b)| (*i, b.len() as u64))
                                .collect();
                            let range = select_frames(&group, &self.context);
                            decoded[group_start + range.start..group_start + range.end]
                                .iter()
                                .map(|(_, b)| &b[..])
                                .collect()
                        }
                    };
                    frames.extend(context_frames);
                    let bytes = self.decode_one(r, &frames).map_err(|e| {
                        if r == n {
                            e
                        } else {
                            e.within(format!("record {n} depends on record {r}"))
                        }
                    })?;
                    self.remember(r, &bytes);
                    bytes
                }
            };
            decoded.push((r, bytes));
        }
        out.extend_from_slice(&decoded.pop().expect("chain holds n").1);
        Ok(())
    }

    fn cached(&self, r: u64) -> Option<Vec<u8>> {
        self.cache.get(&r).cloned()
    }

    fn remember(&mut self, r: u64, bytes: &[u8]) {
        if self.cache.contains_key(&r) {
            return;
        }
        self.cache.insert(r, bytes.to_vec());
        self.cache_order.push_back(r);
        self.cache_bytes += bytes.len();
        while self.cache_bytes > self.cache_limit && self.cache_order.len() > 1 {
            let old = self.cache_order.pop_front().expect("non-empty");
            if let Some(b) = self.cache.remove(&old) {
                self.cache_bytes -= b.len();
            }
        }
    }

    /// Reads and verifies `r`'s block and decodes `r` against `frames`.
    fn decode_one(&mut self, r: u64, frames: &[&[u8]]) -> Result<Vec<u8>> {
        let ctx = || format!("record {r}");
        let block = r / self.block_records;
        let first = block * self.block_records;
        let last = (first + self.block_records).min(self.len());
        let start = self.index.records[first as usize].offset;
        let end = self.index.records[last as usize - 1].offset
            + self.index.records[last as usize - 1].payload_len;
        if self.block_no != Some(block) {
            self.block_no = None;
            self.block.resize((end - start) as usize, 0);
            self.inner.seek(SeekFrom::Start(start))?;
            read_exact_at(&mut self.inner, &mut self.block, start, "a record block")
                .map_err(|e| e.within(ctx()))?;
            self.last_read += end - start;
            let stored = self.index.block_crcs[block as usize].0;
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
                    "record {r}, in block {block} (records {first}..{last})"
                )));
            }
            self.block_no = Some(block);
        }
        let info = self.index.records[r as usize];
        let rs = (info.offset - start) as usize;
        let re = rs + info.payload_len as usize;
        let mut out = Vec::new();
        self.decoder
            .as_mut()
            .expect("checked by the caller")
            .decode_with_frames(frames, &self.block[rs..re], &mut out)
            .map_err(|e| e.shifted(info.offset).within(ctx()))?;
        Ok(out)
    }

    /// Decodes record `n`.
    pub fn get(&mut self, n: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.get_into(n, &mut out)?;
        Ok(out)
    }

    /// Records per checksummed block.
    pub fn block_records(&self) -> u64 {
        self.block_records
    }
}

#[cfg(test)]
mod tests {
    use crate::archive::testing::*;
    use crate::archive::{ArchiveOptions, ArchiveReader, ArchiveWriter};
    use crate::codebook::Codebook;
    use crate::context::{ContextOptions, Level};
    use crate::error::ErrorKind;
    use std::io::Cursor;

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
        }
        assert!(r.get(20).is_err());
        let empty = build(&[]);
        assert_eq!(ArchiveReader::open(Cursor::new(&empty)).unwrap().len(), 0);
    }

    #[test]
    fn histories_delta_against_their_frames_and_keyframes_bound_chains() {
        let records = history(40);
        let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
        let ctx = ContextOptions {
            keyframe_interval: 8,
            ..ContextOptions::default()
        };
        let with = build_with(&refs, ctx);
        let without = build_with(&refs, ContextOptions::none());
        assert!(
            with.len() * 4 < without.len(),
            "{} vs {}",
            with.len(),
            without.len()
        );
        let mut r = ArchiveReader::open(Cursor::new(&with)).unwrap();
        for n in 0..40u64 {
            let keyframes = n / 8; // keyframes (and the root) before n's group
            assert_eq!(r.chain(n).len() as u64, keyframes + n % 8 + 1);
            let level = r.info(n).unwrap().level;
            let expect = if n == 0 {
                Level::Root
            } else if n % 8 == 0 {
                Level::Keyframe
            } else {
                Level::Delta
            };
            assert_eq!(level, expect, "record {n}");
        }
        assert_eq!(r.frames_of(16).unwrap(), vec![8]);
        // A fresh reader (no cache) decodes the last record reading only its chain's blocks.
        let mut fresh = ArchiveReader::open(Cursor::new(&with)).unwrap();
        assert_eq!(fresh.get(39).unwrap(), records[39]);
        let chain_blocks: std::collections::BTreeSet<u64> =
            fresh.chain(39).iter().map(|c| c / 3).collect();
        assert!(fresh.last_read_bytes() <= chain_blocks.len() as u64 * 3 * 1000);
        assert_eq!(fresh.frames_of(39).unwrap(), vec![37, 38]);
        assert_eq!(
            r.walk(|n, rec| assert_eq!(rec.unwrap(), &records[n as usize][..])),
            0
        );
    }

    #[test]
    fn keyed_contexts_interleave() {
        let a = history(10);
        let b: Vec<Vec<u8>> = history(10)
            .into_iter()
            .map(|r| {
                String::from_utf8(r)
                    .unwrap()
                    .replace("rust", "go")
                    .into_bytes()
            })
            .collect();
        let mut w = ArchiveWriter::new(Vec::new(), Codebook::default_codebook(), b"").unwrap();
        for i in 0..10 {
            w.add_in_context(Some(b"a"), &a[i]).unwrap();
            w.add_in_context(Some(b"b"), &b[i]).unwrap();
        }
        let bytes = w.finish().unwrap();
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        for i in (0..10u64).rev() {
            assert_eq!(r.get(2 * i).unwrap(), a[i as usize]);
            assert_eq!(r.get(2 * i + 1).unwrap(), b[i as usize]);
            assert_eq!(r.info(2 * i + 1).unwrap().context, 2);
        }
        assert_eq!(r.chain(19), vec![1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
    }

    #[test]
    fn damage_is_confined_to_its_block_without_contexts() {
        let records: Vec<Vec<u8>> = (0..9)
            .map(|i| format!("r{i} some text here").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
        let mut bytes = build_with(&refs, ContextOptions::none());
        let target = ArchiveReader::open(Cursor::new(&bytes))
            .unwrap()
            .info(4)
            .unwrap()
            .offset as usize;
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
    fn damage_reaches_exactly_the_records_that_depend_on_it() {
        let records = history(12);
        let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
        let ctx = ContextOptions {
            keyframe_interval: 6,
            keyframes_per_root: 1,
            ..ContextOptions::default()
        };
        let mut bytes = build_with(&refs, ctx);
        let target = ArchiveReader::open(Cursor::new(&bytes))
            .unwrap()
            .info(1)
            .unwrap()
            .offset as usize;
        bytes[target] ^= 0x01; // block 0: records 0..3; records 0..6 form a group
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        let mut failed = Vec::new();
        let n_failed = r.walk(|n, rec| match rec {
            Ok(b) => assert_eq!(b, &records[n as usize][..]),
            Err(e) => {
                assert!(e.to_string().contains(&format!("record {n}")), "{e}");
                failed.push(n);
            }
        });
        assert_eq!(failed, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(n_failed, 6);
    }

    #[test]
    fn the_bank_references_content_of_other_contexts() {
        let logs = system_prompt_logs(12);
        let build = |bank: usize| {
            let opts = ArchiveOptions {
                bank,
                ..ArchiveOptions::default()
            };
            let mut w =
                ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
                    .unwrap();
            for (k, t) in &logs {
                w.add_in_context(Some(k), t).unwrap();
            }
            w.finish().unwrap()
        };
        let with = build(1 << 20);
        let without = build(0);
        assert!(
            with.len() * 2 < without.len(),
            "{} vs {}",
            with.len(),
            without.len()
        );
        let mut r = ArchiveReader::open(Cursor::new(&with)).unwrap();
        assert!(r.references(0).is_empty());
        for n in 1..12 {
            assert_eq!(r.references(n), &[0], "record {n}");
            assert_eq!(r.frames_of(n).unwrap(), vec![0]);
        }
        let mut fresh = ArchiveReader::open(Cursor::new(&with)).unwrap();
        assert_eq!(fresh.get(11).unwrap(), logs[11].1);
        assert_eq!(
            r.walk(|n, rec| assert_eq!(rec.unwrap(), &logs[n as usize].1[..])),
            0
        );
        // Damage to the referenced root reaches every record that references it.
        let mut bad = with.clone();
        bad[r.info(0).unwrap().offset as usize + 3] ^= 0x20;
        let mut r = ArchiveReader::open(Cursor::new(&bad)).unwrap();
        let e = r.get(5).unwrap_err();
        assert!(
            e.to_string().contains("record 5 depends on record 0"),
            "{e}"
        );
    }

    /// The record cache's accounting under eviction and with records above the limit.
    #[test]
    fn record_cache_accounting() {
        let (bytes, texts) = small_archive(200, 5);
        for limit in [0usize, 1, 50, 300, 5_000] {
            let mut r = ArchiveReader::open(Cursor::new(&bytes[..])).unwrap();
            r.cache_limit = limit;
            let mut rng = crate::workers::TestRng(limit as u64 + 7);
            for _ in 0..600 {
                let n = rng.below(200);
                assert_eq!(r.get(n).unwrap(), texts[n as usize]);
                let sum: usize = r.cache.values().map(Vec::len).sum();
                assert_eq!(sum, r.cache_bytes);
                assert_eq!(r.cache.len(), r.cache_order.len());
                let uniq: std::collections::HashSet<u64> = r.cache_order.iter().copied().collect();
                assert_eq!(uniq.len(), r.cache_order.len());
                assert!(r.cache_bytes <= limit || r.cache.len() == 1);
            }
        }
    }
}
