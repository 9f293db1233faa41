//! Reading an archive: [`Archive`], the validated header, index and codebook every reader of
//! one archive shares, and [`ArchiveReader`], which decodes records with random access (a
//! record's chain first, with a cache of recent records).

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use super::index::Index;
use super::RecordInfo;
use crate::checksum::crc32c;
use crate::codebook::Codebook;
use crate::container::{read_exact_at, read_full, FileHeader};
use crate::context::{select_frames, Dependency, GroupOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::record::Decoder;

/// An opened archive: its header, metadata and index, validated, and the codebook to decode
/// it with. It does not read records itself: [`reader`](Self::reader) makes a reader of it over
/// a source of the archive's bytes. Cloning it is cheap (the index is shared, not copied), and
/// it is `Sync`, so one `Archive` serves readers on many threads, each with its own source.
#[derive(Clone, Debug)]
pub struct Archive {
    pub(super) header: FileHeader,
    pub(super) index: Arc<Index>,
    /// The codebook records are decoded with, once known.
    pub(super) codebook: Option<Arc<Codebook>>,
}

/// The most decoded bytes a reader keeps for decoding later records of the same contexts.
const CACHE_BYTES: usize = 32 << 20;

impl Archive {
    /// Reads and checks the header, metadata, footer and index of the archive `source` holds
    /// (from its start; it is left positioned anywhere). Records are decoded once a codebook is
    /// given with [`set_codebook`](Self::set_codebook) (the default codebook is used if the
    /// archive names it).
    pub fn open<R: Read + Seek>(source: &mut R) -> Result<Archive> {
        let (header, index) = Index::read(source)?;
        let default = Codebook::default_codebook();
        let codebook = (default.id() == header.codebook).then_some(default);
        Ok(Archive {
            header,
            index: Arc::new(index),
            codebook,
        })
    }

    /// A reader of this archive over `source`, which holds the same bytes as the source the
    /// archive was opened from.
    pub fn reader<R: Read + Seek>(&self, source: R) -> ArchiveReader<R> {
        self.reader_with_cache(source, CACHE_BYTES)
    }

    /// A reader whose record cache holds at most `cache_limit` decoded bytes.
    pub(super) fn reader_with_cache<R: Read + Seek>(
        &self,
        source: R,
        cache_limit: usize,
    ) -> ArchiveReader<R> {
        ArchiveReader {
            inner: source,
            decoder: self.codebook.as_ref().map(|c| Decoder::new(Arc::clone(c))),
            archive: self.clone(),
            block: Vec::new(),
            block_no: None,
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            cache_bytes: 0,
            cache_limit,
            last_read: 0,
        }
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
        self.codebook = Some(codebook);
        Ok(())
    }

    /// The codebook records are decoded with, if it is known.
    pub fn codebook(&self) -> Option<&Arc<Codebook>> {
        self.codebook.as_ref()
    }

    /// The archive's header.
    pub fn header(&self) -> FileHeader {
        self.header
    }

    /// The metadata stored by the writer.
    pub fn metadata(&self) -> &[u8] {
        &self.index.metadata
    }

    /// The group options the archive was written with (`memory` is the writer's own and is
    /// not stored).
    pub fn group_options(&self) -> GroupOptions {
        self.index.context
    }

    /// Records per checksummed block.
    pub fn block_records(&self) -> u64 {
        self.index.block_records
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

    /// The records `n` depends on (its group's root and keyframes since it, and its records
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
}

/// Reads an archive with random access.
pub struct ArchiveReader<R: Read + Seek> {
    pub(super) inner: R,
    /// The archive's header, index and codebook, shared with the readers
    /// [`walk_parallel`](Self::walk_parallel) starts.
    pub(super) archive: Archive,
    pub(super) decoder: Option<Decoder>,
    pub(super) block: Vec<u8>,
    /// The block held in `block` (verified), if any.
    pub(super) block_no: Option<u64>,
    /// Recently decoded records by index, and the order they came in (oldest first, the first
    /// to leave): a lookup is a hash probe, not a scan of the cache.
    /// Shared, not copied, with the chain being decoded.
    pub(super) cache: HashMap<u64, Arc<[u8]>>,
    pub(super) cache_order: VecDeque<u64>,
    pub(super) cache_bytes: usize,
    /// The most bytes `cache` holds.
    pub(super) cache_limit: usize,
    /// Bytes the last `get` read from the file.
    pub(super) last_read: u64,
}

impl<R: Read + Seek> ArchiveReader<R> {
    /// Opens an archive: reads and checks its header, metadata and index. Records are decoded
    /// once a codebook is given with [`set_codebook`](Self::set_codebook) (the default codebook
    /// is used if the archive names it).
    pub fn open(mut inner: R) -> Result<ArchiveReader<R>> {
        Ok(Archive::open(&mut inner)?.reader(inner))
    }

    /// The archive this reader reads: clone it to make more readers of it, e.g. on other
    /// threads.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// Gives the codebook to decode with; refuses one that is not the archive's.
    pub fn set_codebook(&mut self, codebook: Arc<Codebook>) -> Result<()> {
        self.archive.set_codebook(Arc::clone(&codebook))?;
        self.decoder = Some(Decoder::new(codebook));
        Ok(())
    }

    /// The archive's header.
    pub fn header(&self) -> FileHeader {
        self.archive.header()
    }

    /// The metadata stored by the writer.
    pub fn metadata(&self) -> &[u8] {
        self.archive.metadata()
    }

    /// The group options the archive was written with (`memory` is the writer's own and is
    /// not stored).
    pub fn group_options(&self) -> GroupOptions {
        self.archive.group_options()
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.archive.len()
    }

    /// Whether the archive holds no record.
    pub fn is_empty(&self) -> bool {
        self.archive.is_empty()
    }

    /// What the index says of record `n`.
    pub fn info(&self, n: u64) -> Option<RecordInfo> {
        self.archive.info(n)
    }

    /// The Σ-bank roots record `n` references (empty for most records).
    pub fn references(&self, n: u64) -> &[u64] {
        self.archive.references(n)
    }

    /// The coded size of record `n`.
    pub fn payload_len(&self, n: u64) -> Option<u64> {
        self.info(n).map(|r| r.payload_len)
    }

    /// The records `n` depends on (its group's root and keyframes since it, and its records
    /// since its keyframe), oldest first, and `n` itself last.
    pub fn chain(&self, n: u64) -> Vec<u64> {
        self.archive.chain(n)
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
        match info.dependency {
            Dependency::Root => Ok(Vec::new()),
            Dependency::Keyframe => Ok(info.prev.into_iter().collect()),
            Dependency::Delta => {
                let chain = self.chain(n);
                let group_start = chain
                    .iter()
                    .rposition(|&r| {
                        self.archive.index.records[r as usize].dependency != Dependency::Delta
                    })
                    .unwrap_or(0);
                let mut group = Vec::new();
                for &r in &chain[group_start..chain.len() - 1] {
                    let len = self.decoded_len(r)?;
                    group.push((r, len));
                }
                let range = select_frames(&group, &self.archive.index.context);
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
                    self.archive.header.codebook
                ),
            }));
        }
        self.last_read = 0;
        let chain = self.chain(n);
        // Decoded chain records: (index, bytes), oldest first; the current group starts at
        // the last keyframe or root.
        let mut decoded: Vec<(u64, Arc<[u8]>)> = Vec::with_capacity(chain.len());
        let mut group_start = 0;
        for &r in &chain {
            let level = self.archive.index.records[r as usize].dependency;
            if level != Dependency::Delta {
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
                                let b: Arc<[u8]> = self
                                    .decode_one(root, &[])
                                    .map_err(|e| {
                                        e.within(format!("record {n} depends on record {root}"))
                                    })?
                                    .into();
                                self.remember(root, &b);
                                b
                            }
                        };
                        banked.push(b);
                    }
                    let mut frames: Vec<&[u8]> = banked.iter().map(|b| &b[..]).collect();
                    let context_frames: Vec<&[u8]> = match level {
                        Dependency::Root => Vec::new(),
                        Dependency::Keyframe => {
                            decoded.last().map(|(_, b)| &b[..]).into_iter().collect()
                        }
                        Dependency::Delta => {
                            let group: Vec<(u64, u64)> = decoded[group_start..]
                                .iter()
                                .map(|(i, b)| (*i, b.len() as u64))
                                .collect();
                            let range = select_frames(&group, &self.archive.index.context);
                            decoded[group_start + range.start..group_start + range.end]
                                .iter()
                                .map(|(_, b)| &b[..])
                                .collect()
                        }
                    };
                    frames.extend(context_frames);
                    let bytes: Arc<[u8]> = self
                        .decode_one(r, &frames)
                        .map_err(|e| {
                            if r == n {
                                e
                            } else {
                                e.within(format!("record {n} depends on record {r}"))
                            }
                        })?
                        .into();
                    self.remember(r, &bytes);
                    bytes
                }
            };
            decoded.push((r, bytes));
        }
        out.extend_from_slice(&decoded.pop().expect("chain holds n").1);
        Ok(())
    }

    /// Record `r`, if the cache holds it (shared, not copied).
    fn cached(&self, r: u64) -> Option<Arc<[u8]>> {
        self.cache.get(&r).cloned()
    }

    fn remember(&mut self, r: u64, bytes: &Arc<[u8]>) {
        if self.cache.contains_key(&r) {
            return;
        }
        self.cache.insert(r, Arc::clone(bytes));
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
        let block = r / self.archive.index.block_records;
        let first = block * self.archive.index.block_records;
        let last = (first + self.archive.index.block_records).min(self.len());
        let start = self.archive.index.records[first as usize].offset;
        let end = self.archive.index.records[last as usize - 1].offset
            + self.archive.index.records[last as usize - 1].payload_len;
        if self.block_no != Some(block) {
            self.block_no = None;
            self.block.resize((end - start) as usize, 0);
            self.inner.seek(SeekFrom::Start(start))?;
            read_exact_at(&mut self.inner, &mut self.block, start, "a record block")
                .map_err(|e| e.within(ctx()))?;
            self.last_read += end - start;
            let stored = self.archive.index.block_crcs[block as usize].0;
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
        let info = self.archive.index.records[r as usize];
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
        self.archive.block_records()
    }
}

#[cfg(test)]
mod tests {
    use crate::archive::testing::*;
    use crate::archive::{Archive, ArchiveOptions, ArchiveReader, ArchiveWriter};
    use crate::codebook::Codebook;
    use crate::context::{Dependency, GroupOptions};
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
        let ctx = GroupOptions {
            keyframe_interval: 8,
            ..GroupOptions::default()
        };
        let with = build_with(&refs, ctx);
        let without = build_with(&refs, GroupOptions::none());
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
            let level = r.info(n).unwrap().dependency;
            let expect = if n == 0 {
                Dependency::Root
            } else if n % 8 == 0 {
                Dependency::Keyframe
            } else {
                Dependency::Delta
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
            w.add_in_group(Some(b"a"), &a[i]).unwrap();
            w.add_in_group(Some(b"b"), &b[i]).unwrap();
        }
        let bytes = w.finish().unwrap();
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        for i in (0..10u64).rev() {
            assert_eq!(r.get(2 * i).unwrap(), a[i as usize]);
            assert_eq!(r.get(2 * i + 1).unwrap(), b[i as usize]);
            assert_eq!(r.info(2 * i + 1).unwrap().group, 2);
        }
        assert_eq!(r.chain(19), vec![1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
    }

    #[test]
    fn damage_is_confined_to_its_block_without_contexts() {
        let records: Vec<Vec<u8>> = (0..9)
            .map(|i| format!("r{i} some text here").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
        let mut bytes = build_with(&refs, GroupOptions::none());
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
        let ctx = GroupOptions {
            keyframe_interval: 6,
            keyframes_per_root: 1,
            ..GroupOptions::default()
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
                w.add_in_group(Some(k), t).unwrap();
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
                let sum: usize = r.cache.values().map(|b| b.len()).sum();
                assert_eq!(sum, r.cache_bytes);
                assert_eq!(r.cache.len(), r.cache_order.len());
                let uniq: std::collections::HashSet<u64> = r.cache_order.iter().copied().collect();
                assert_eq!(uniq.len(), r.cache_order.len());
                assert!(r.cache_bytes <= limit || r.cache.len() == 1);
            }
        }
    }

    /// One opened `Archive` serves readers on several threads, each over its own source.
    #[test]
    fn one_archive_serves_readers_on_many_threads() {
        fn shareable<T: Send + Sync + Clone>() {}
        shareable::<Archive>();
        let (bytes, texts) = small_archive(40, 3);
        let archive = Archive::open(&mut Cursor::new(&bytes[..])).unwrap();
        assert_eq!(archive.len(), 40);
        std::thread::scope(|scope| {
            for t in 0..3u64 {
                let (archive, bytes, texts) = (&archive, &bytes, &texts);
                scope.spawn(move || {
                    let mut r = archive.reader(Cursor::new(&bytes[..]));
                    for n in (t..40).rev().step_by(3) {
                        assert_eq!(r.get(n).unwrap(), texts[n as usize]);
                    }
                });
            }
        });
    }
}
