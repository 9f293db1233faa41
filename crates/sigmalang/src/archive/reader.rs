//! Reading an archive: [`Archive`], the validated header, index and codebook every reader of
//! one archive shares, and [`ArchiveReader`], which decodes records with random access (a
//! record's chain first, with a cache of recent records).

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, OnceLock};

use super::index::{Index, PrimerSection};
use super::RecordInfo;
use crate::checksum::crc32c;
use crate::codebook::Codebook;
use crate::container::{read_exact_at, read_full, FileHeader, DEFAULT_MEMORY_LIMIT};
use crate::context::{Dependency, GroupOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::model::Variant;
use crate::primer::Primer;
use crate::record::{Decoder, MAX_RECORD_LEN};

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
    /// The most memory decoding one record may need (estimated before decoding).
    pub(super) memory_limit: u64,
    /// The archive's primer, decoded by the first reader that needs it and shared by all.
    pub(super) primer: Arc<OnceLock<std::result::Result<Arc<Primer>, Error>>>,
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
            memory_limit: DEFAULT_MEMORY_LIMIT,
            primer: Arc::new(OnceLock::new()),
        })
    }

    /// The length of the archive's primer in bytes (0: it has none).
    pub fn primer_len(&self) -> u64 {
        self.index.primer.map_or(0, |p| p.len)
    }

    /// The adaptive model of the archive's primer state: `V3` if header flag bit 7 says so
    /// (with bit 4), `V2` if bit 4 alone does (FORMAT.md §5.6), else `V1`.
    pub(super) fn primer_variant(&self) -> Variant {
        if self.index.flags & super::FLAG_PRIMER_V3 != 0 {
            Variant::V3
        } else if self.index.flags & super::FLAG_PRIMER_ADAPTIVE2 != 0 {
            Variant::V2
        } else {
            Variant::V1
        }
    }

    /// The memory the primer takes while records are decoded: the shared primer, one reader's
    /// copy of its state, and its payload while it is decoded (0 without a primer).
    pub(super) fn primer_memory(&self) -> u64 {
        self.index.primer.map_or(0, |p| {
            Primer::memory_for(p.len, self.primer_variant())
                .saturating_mul(2)
                .saturating_add(p.payload_len)
        })
    }

    /// Sets the most memory decoding one record may need, as estimated from the index and
    /// the record headers before anything is allocated: the record's block, the records it is
    /// coded against, about three copies of itself (history, decoded record, the caller's
    /// copy) and the records of its context kept for the next ones. A record that needs more
    /// is refused with [`ErrorKind::MemoryLimit`]. The default is
    /// [`DEFAULT_MEMORY_LIMIT`](crate::container::DEFAULT_MEMORY_LIMIT) (256 MiB). Readers made
    /// afterwards take it.
    pub fn set_memory_limit(&mut self, bytes: u64) {
        self.memory_limit = bytes;
    }

    /// The memory limit of readers made of this archive.
    pub fn memory_limit(&self) -> u64 {
        self.memory_limit
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
            lens: Vec::new(),
            page: None,
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

    /// Records per checksummed block (1 in block mode, where each page is a block).
    pub fn block_records(&self) -> u64 {
        self.index.block_records
    }

    /// Block mode: the page size the writer aimed at (records are grouped into pages of about
    /// this many decoded bytes, each coded as one payload); 0 if every record is coded alone.
    pub fn page_bytes(&self) -> u64 {
        self.index.page_bytes
    }

    /// Block mode: the page record `n` belongs to (`None` if not in block mode, or `n` does
    /// not exist).
    pub fn page_of(&self, n: u64) -> Option<u64> {
        (self.index.paged() && n < self.index.count).then(|| self.index.page_no(n) as u64)
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.index.count
    }

    /// Whether the archive holds no record.
    pub fn is_empty(&self) -> bool {
        self.index.count == 0
    }

    /// What the index says of record `n`.
    pub fn info(&self, n: u64) -> Option<RecordInfo> {
        (n < self.index.count).then(|| self.index.record(n))
    }

    /// The Σ-bank roots record `n` references (empty for most records).
    pub fn references(&self, n: u64) -> &[u64] {
        self.index.refs.get(&n).map_or(&[], |v| &v[..])
    }

    /// The number of records in `n`'s chain ([`chain`](Self::chain)`(n).len()`), without
    /// following the chain (0 if `n` does not exist).
    pub fn chain_len(&self, n: u64) -> usize {
        if self.index.paged() {
            return usize::from(n < self.index.count);
        }
        usize::try_from(n)
            .ok()
            .and_then(|n| self.index.chain_lens.get(n))
            .map_or(0, |&l| l as usize)
    }

    /// The container version the archive was written with (2 or 3).
    pub fn version(&self) -> u8 {
        self.index.version
    }

    /// Whether the records are coded in the JSON-lines form ([`crate::jsonform`],
    /// [`ArchiveOptions::json_lines`](super::ArchiveOptions::json_lines)); readers give back
    /// the records themselves either way.
    pub fn json_lines(&self) -> bool {
        self.index.flags & super::FLAG_JSON_LINES != 0
    }

    /// The key of `group`, as given to [`ArchiveWriter::add_in_group`](super::ArchiveWriter::add_in_group):
    /// `None` for the default group (0), a group without a key, or an archive of version 2,
    /// whose index keeps no keys.
    pub fn group_key(&self, group: u32) -> Option<&[u8]> {
        self.index.key(group)
    }

    /// The key of record `n`'s group (see [`group_key`](Self::group_key)), read from the
    /// index without decoding the record.
    pub fn key(&self, n: u64) -> Option<&[u8]> {
        self.group_key(self.info(n)?.group)
    }

    /// Appends record `n` to `out` from `form`, the bytes its payload decoded to: the record
    /// itself, or its JSON-lines form (whose inverse is taken).
    pub(super) fn unform(&self, n: u64, form: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if !self.json_lines() {
            out.extend_from_slice(form);
            return Ok(());
        }
        crate::jsonform::decode(form, out).map_err(|e| e.within(format!("record {n}")))
    }

    /// The records `n` depends on (its context's root and keyframes since it, and its records
    /// since its keyframe), oldest first, and `n` itself last.
    pub fn chain(&self, n: u64) -> Vec<u64> {
        let mut chain = Vec::with_capacity(self.chain_len(n));
        chain.push(n);
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
    pub(super) cache: HashMap<u64, Arc<Vec<u8>>>,
    pub(super) cache_order: VecDeque<u64>,
    pub(super) cache_bytes: usize,
    /// The most bytes `cache` holds.
    pub(super) cache_limit: usize,
    /// Bytes the last `get` read from the file.
    pub(super) last_read: u64,
    /// Decoded lengths of records, as their headers say (`u64::MAX`: not read yet); empty
    /// until first needed.
    pub(super) lens: Vec<u64>,
    /// Block mode: the page decoded last, by number, so that its next records are sliced
    /// from it rather than decoded again.
    pub(super) page: Option<DecodedPage>,
}

/// Block mode: a decoded page, by number, and where each of its records lies in it.
pub(super) type DecodedPage = (usize, Arc<Vec<u8>>, Vec<(u64, u64)>);

/// What a context's records taken so far (in order, by a walk or along a chain) leave for its
/// records still to come: the frames they may be coded against, and the failures they
/// inherit. It depends only on the chain of the last record taken, so a state built along
/// that chain is the state a walk reaches, and a walk reports the same whichever record it
/// starts at.
#[derive(Default)]
pub(super) struct ContextState {
    /// The last record taken.
    pub(super) last: Option<u64>,
    /// The last keyframe or root taken (decoded or not).
    pub(super) line_last: Option<u64>,
    /// The last keyframe or root decoded: the frame of the next keyframe.
    keyframe: Option<(u64, Arc<Vec<u8>>)>,
    /// The records of the current group (its keyframe or root, then deltas) that later deltas
    /// may still be coded against: the last `max_frames` within `window`, oldest first.
    group: VecDeque<(u64, Arc<Vec<u8>>)>,
    group_bytes: u64,
    /// The first failure of the keyframe line (root, keyframes), which every later record of
    /// the context inherits until the next root: the record that failed and its error.
    line_failed: Option<(u64, Error)>,
    /// The first failure among the current group's deltas, which later deltas inherit.
    group_failed: Option<(u64, Error)>,
}

impl ContextState {
    /// Decoded bytes the state holds (a record both keyframe and in the group counted twice).
    pub(super) fn held(&self) -> u64 {
        self.group_bytes + self.keyframe.as_ref().map_or(0, |(_, b)| b.len() as u64)
    }

    /// Whether record `r` of `level` whose previous record is `prev` may be taken next.
    pub(super) fn continues(&self, level: Dependency, prev: Option<u64>) -> bool {
        match level {
            // A copy leaves its group's state as it is (`take`).
            Dependency::Root | Dependency::Copy => true,
            Dependency::Keyframe => prev.is_some() && self.line_last == prev,
            Dependency::Delta => prev.is_some() && self.last == prev,
        }
    }
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

    /// The key of record `n`'s group, from the index ([`Archive::key`]).
    pub fn key(&self, n: u64) -> Option<&[u8]> {
        self.archive.key(n)
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

    /// The number of records in `n`'s chain, without following it (0 if `n` does not exist).
    pub fn chain_len(&self, n: u64) -> usize {
        self.archive.chain_len(n)
    }

    /// The frames record `n` is coded against: the bank roots it references, then records of
    /// its chain. It reads the headers of the records it considers (remembering their lengths),
    /// at most `max_frames` + 1 of them, so a listing of every record is linear in the archive.
    pub fn frames_of(&mut self, n: u64) -> Result<Vec<u64>> {
        let info = self
            .info(n)
            .ok_or_else(|| Error::invalid(format!("record {n} does not exist")))?;
        let mut frames = self.references(n).to_vec();
        match info.dependency {
            Dependency::Root => {}
            // A copy is decoded as its source is; its one "frame" is the source.
            Dependency::Copy => frames.extend(info.prev),
            Dependency::Keyframe => frames.extend(info.prev),
            Dependency::Delta => {
                // select_frames over the group, from its newest record back.
                let opts = self.archive.index.context;
                let mut picked = Vec::new();
                let mut bytes = 0u64;
                let mut at = info.prev;
                while let Some(p) = at {
                    if picked.len() >= opts.max_frames as usize {
                        break;
                    }
                    let len = self.decoded_len(p)?;
                    if bytes.saturating_add(len) > opts.window {
                        break;
                    }
                    bytes += len;
                    picked.push(p);
                    let pi = self.archive.index.record(p);
                    at = if pi.dependency == Dependency::Delta {
                        pi.prev
                    } else {
                        None
                    };
                }
                picked.reverse();
                frames.extend(picked);
            }
        }
        Ok(frames)
    }

    /// The decoded length of record `n` as its header says (read once, then remembered).
    pub fn decoded_len(&mut self, n: u64) -> Result<u64> {
        let info = self
            .info(n)
            .ok_or_else(|| Error::invalid(format!("record {n} does not exist")))?;
        if self.archive.index.paged() {
            let (_, len) = self.load_page(n, 0)?;
            return Ok(len);
        }
        if let (Dependency::Copy, Some(source)) = (info.dependency, info.prev) {
            return self.decoded_len(source);
        }
        if self.lens.is_empty() {
            self.lens = vec![u64::MAX; self.len() as usize];
        }
        if self.lens[n as usize] != u64::MAX {
            return Ok(self.lens[n as usize]);
        }
        let h = self.payload_header(n, &info)?;
        self.lens[n as usize] = h.raw_len;
        Ok(h.raw_len)
    }

    /// Reads record `n`'s payload header (FORMAT.md §3) from the file, without decoding it.
    fn payload_header(&mut self, n: u64, info: &RecordInfo) -> Result<crate::record::RecordHeader> {
        let mut head = [0u8; crate::varint::MAX_LEN];
        self.inner.seek(SeekFrom::Start(info.offset))?;
        let k = read_full(
            &mut self.inner,
            &mut head[..info.payload_len.min(10) as usize],
        )?;
        crate::record::read_header(&head[..k])
            .map_err(|e| e.shifted(info.offset).within(format!("record {n}")))
    }

    /// The mode of record `n`'s payload, from its header (FORMAT.md §3: 0 `STORED`,
    /// 1 `MODELED`, 2 `ADAPTIVE`); `None` if there is no record `n` or it is a copy (which
    /// has no payload).
    ///
    /// # Errors
    /// A failed read, or a header that is not one.
    pub fn payload_mode(&mut self, n: u64) -> Result<Option<u8>> {
        let Some(info) = self.info(n) else {
            return Ok(None);
        };
        if info.dependency == Dependency::Copy {
            return Ok(None);
        }
        let h = self.payload_header(n, &info)?;
        Ok(Some(h.mode as u8))
    }

    /// Sets the most memory decoding one record may need (see
    /// [`Archive::set_memory_limit`]).
    pub fn set_memory_limit(&mut self, bytes: u64) {
        self.archive.set_memory_limit(bytes);
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
            return Err(self.no_codebook());
        }
        self.last_read = 0;
        let form = match self.archive.index.record(n) {
            // A copy reads its source (which is not a copy).
            RecordInfo {
                dependency: Dependency::Copy,
                prev: Some(source),
                ..
            } => self
                .form_of(source)
                .map_err(|e| e.within(format!("record {n} is a copy of record {source}")))?,
            _ => self.form_of(n)?,
        };
        self.archive.unform(n, &form, out)
    }

    /// Decodes record `n` (not a copy) as it is coded (its JSON-lines form, in such an
    /// archive), taking the records of its chain from the cache where it holds them.
    fn form_of(&mut self, n: u64) -> Result<Arc<Vec<u8>>> {
        // The chain is planned even if its records are cached: the memory limit holds for
        // every read. The chain taken in order through one context state: it holds only the records later
        // ones of the chain are coded against, and the first failure is reported for `n`.
        let chain = self.chain(n);
        self.plan(n, &chain)?;
        let mut state = ContextState::default();
        let mut last = None;
        for r in chain {
            last = Some(self.take(&mut state, r));
        }
        last.expect("a chain holds its record")
    }

    fn no_codebook(&self) -> Error {
        Error::new(ErrorKind::InvalidArgument {
            what: format!(
                "the archive was made with codebook {}; give that codebook to read it",
                self.archive.header.codebook
            ),
        })
    }

    /// Takes record `r` of the context whose state is `st` (`r` may follow it:
    /// [`ContextState::continues`]): decodes it against the frames the state holds, or
    /// inherits the failure of a record it depends on, and updates the state. Returns `r`'s
    /// bytes or the error to report for `r`.
    pub(super) fn take(&mut self, st: &mut ContextState, r: u64) -> Result<Arc<Vec<u8>>> {
        let info = self.archive.index.record(r);
        let level = info.dependency;
        if let (Dependency::Copy, Some(source)) = (level, info.prev) {
            // In no chain: the state stays as it is, and the bytes are the source's.
            return self
                .form_of(source)
                .map_err(|e| e.within(format!("record {r} is a copy of record {source}")));
        }
        st.last = Some(r);
        if level != Dependency::Delta {
            st.line_last = Some(r);
        }
        if level == Dependency::Root {
            *st = ContextState {
                last: Some(r),
                line_last: Some(r),
                ..ContextState::default()
            };
        }
        let inherited = match level {
            Dependency::Root | Dependency::Copy => None,
            Dependency::Keyframe => st.line_failed.as_ref(),
            Dependency::Delta => st.line_failed.as_ref().or(st.group_failed.as_ref()),
        };
        if let Some((f, e)) = inherited {
            return Err(e
                .duplicate()
                .within(format!("record {r} depends on record {f}")));
        }
        match self.decode_in(st, r, level) {
            Ok(bytes) => {
                let len = bytes.len() as u64;
                if level != Dependency::Delta {
                    st.keyframe = Some((r, Arc::clone(&bytes)));
                    st.group.clear();
                    st.group_bytes = 0;
                    st.group_failed = None;
                }
                st.group.push_back((r, Arc::clone(&bytes)));
                st.group_bytes += len;
                let opts = self.archive.index.context;
                while st.group.len() > opts.max_frames as usize || st.group_bytes > opts.window {
                    let (_, old) = st.group.pop_front().expect("non-empty");
                    st.group_bytes -= old.len() as u64;
                }
                Ok(bytes)
            }
            Err((f, e)) => {
                let report = if f == r {
                    e.duplicate()
                } else {
                    e.duplicate()
                        .within(format!("record {r} depends on record {f}"))
                };
                if level == Dependency::Delta {
                    st.group_failed = Some((f, e));
                } else {
                    st.line_failed = Some((f, e));
                }
                Err(report)
            }
        }
    }

    /// Decodes record `r` (of `level`, its context's state `st`) against its references and
    /// the frames `st` holds, or finds it in the cache. An error names the record that failed
    /// (`r`, or a bank root it references).
    fn decode_in(
        &mut self,
        st: &ContextState,
        r: u64,
        level: Dependency,
    ) -> std::result::Result<Arc<Vec<u8>>, (u64, Error)> {
        if let Some(b) = self.cached(r) {
            return Ok(b);
        }
        if self.decoder.is_none() {
            return Err((r, self.no_codebook()));
        }
        let mut banked = Vec::new();
        for &root in self.references(r).to_vec().iter() {
            let b = match self.cached(root) {
                Some(b) => b,
                None => {
                    let b = Arc::new(self.decode_one(root, &[], 0).map_err(|e| (root, e))?);
                    self.remember(root, &b);
                    b
                }
            };
            banked.push(b);
        }
        let mut frames: Vec<&[u8]> = banked.iter().map(|b| &b[..]).collect();
        match level {
            Dependency::Root | Dependency::Copy => {}
            Dependency::Keyframe => frames.extend(st.keyframe.as_ref().map(|(_, b)| &b[..])),
            Dependency::Delta => frames.extend(st.group.iter().map(|(_, b)| &b[..])),
        }
        let held = st.held() + banked.iter().map(|b| b.len() as u64).sum::<u64>();
        let bytes = Arc::new(self.decode_one(r, &frames, held).map_err(|e| (r, e))?);
        self.remember(r, &bytes);
        Ok(bytes)
    }

    /// Record `r`, if the cache holds it (shared, not copied).
    fn cached(&self, r: u64) -> Option<Arc<Vec<u8>>> {
        self.cache.get(&r).cloned()
    }

    fn remember(&mut self, r: u64, bytes: &Arc<Vec<u8>>) {
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

    /// Reads and verifies `r`'s block and decodes `r` against `frames`, while `held` bytes of
    /// decoded records are kept for it and later records. Before allocating, checks the block's
    /// size, the record's length and the frames' against the limits of the format and against
    /// the memory limit.
    fn decode_one(&mut self, r: u64, frames: &[&[u8]], held: u64) -> Result<Vec<u8>> {
        if self.archive.index.paged() {
            return self.decode_member(r, held);
        }
        let ctx = || format!("record {r}");
        let limit = self.archive.memory_limit;
        let over = |needed: u64| Error::new(ErrorKind::MemoryLimit { needed, limit }).within(ctx());
        self.ensure_primer().map_err(|e| e.within(ctx()))?;
        let held = held.saturating_add(self.archive.primer_memory());
        let (start, block_len) = self.load_block(r, held)?;
        let info = self.archive.index.record(r);
        let rs = (info.offset - start) as usize;
        let re = rs + info.payload_len as usize;
        let payload = &self.block[rs..re];
        let header = crate::record::read_header(payload)
            .map_err(|e| e.shifted(info.offset).within(ctx()))?;
        let frames_len: u64 = frames.iter().map(|f| f.len() as u64).sum();
        if frames_len > MAX_RECORD_LEN {
            return Err(Error::corrupt(
                format!(
                    "the record is coded against {frames_len} bytes of frames; \
                     the encoder allows at most {MAX_RECORD_LEN}"
                ),
                info.offset,
            )
            .within(ctx()));
        }
        // The decoder's history (frames and record), its output, and the caller's copy.
        let needed = held
            .saturating_add(block_len)
            .saturating_add(frames_len)
            .saturating_add(3 * header.raw_len);
        if needed > limit {
            return Err(over(needed));
        }
        if !self.lens.is_empty() {
            self.lens[r as usize] = header.raw_len;
        }
        let mut out = Vec::new();
        out.try_reserve_exact(header.raw_len as usize)
            .map_err(|_| over(needed))?;
        self.decoder
            .as_mut()
            .expect("checked by the caller")
            .decode_with_frames(frames, payload, &mut out)
            .map_err(|e| e.shifted(info.offset).within(ctx()))?;
        let flags = self.archive.index.flags;
        if flags & super::FLAG_JSON_VALUES != 0 {
            // Values coded against the last frame's or the record's own (FORMAT.md §5.5).
            crate::jsonform::resolve_all(&mut out, frames.last().copied())
                .map_err(|e| e.shifted(info.offset).within(ctx()))?;
        } else if flags & super::FLAG_JSON_FIELDS != 0 {
            // A fields form's values coded against its last frame's (FORMAT.md §5.5).
            crate::jsonform::resolve(&mut out, frames.last().copied())
                .map_err(|e| e.shifted(info.offset).within(ctx()))?;
        }
        Ok(out)
    }

    /// The archive's primer (FORMAT.md §5.6), decoded and verified if no reader of the archive
    /// has yet; `None` if it has none. Give it to an [`Encoder`](crate::Encoder) with
    /// [`set_primer`](crate::Encoder::set_primer) to code records as the writer did.
    ///
    /// # Errors
    /// As [`get`](Self::get): no codebook, the memory limit, a damaged primer.
    pub fn primer(&mut self) -> Result<Option<Arc<Primer>>> {
        if self.archive.index.primer.is_none() {
            return Ok(None);
        }
        self.ensure_primer()?;
        let cell = self.archive.primer.get().expect("ensure_primer decoded it");
        Ok(Some(Arc::clone(cell.as_ref().map_err(|e| e.duplicate())?)))
    }

    /// Gives the decoder the archive's primer (decoding it first if no reader of the archive
    /// has), if the archive has one and the decoder does not yet.
    fn ensure_primer(&mut self) -> Result<()> {
        let Some(section) = self.archive.index.primer else {
            return Ok(());
        };
        let Some(decoder) = self.decoder.as_ref() else {
            return Err(self.no_codebook());
        };
        if decoder.has_primer() {
            return Ok(());
        }
        let cell = Arc::clone(&self.archive.primer);
        let primer = cell
            .get_or_init(|| self.load_primer(section).map(Arc::new))
            .as_ref()
            .map_err(|e| e.duplicate())?;
        self.decoder
            .as_mut()
            .expect("checked above")
            .set_primer(Some(Arc::clone(primer)));
        Ok(())
    }

    /// Reads, verifies and decodes the primer, once its memory is known to fit in the limit.
    fn load_primer(&mut self, section: PrimerSection) -> Result<Primer> {
        let limit = self.archive.memory_limit;
        let needed = self.archive.primer_memory();
        if needed > limit {
            return Err(Error::new(ErrorKind::MemoryLimit { needed, limit }).within("the primer"));
        }
        let codebook = Arc::clone(
            self.archive
                .codebook
                .as_ref()
                .ok_or_else(|| self.no_codebook())?,
        );
        let mut payload = vec![0u8; section.payload_len as usize];
        self.inner.seek(SeekFrom::Start(section.offset))?;
        read_exact_at(&mut self.inner, &mut payload, section.offset, "the primer")?;
        let computed = crc32c(&payload);
        if computed != section.payload_crc {
            return Err(Error::at(
                ErrorKind::Checksum {
                    what: "the primer",
                    expected: section.payload_crc,
                    found: computed,
                },
                section.offset,
            ));
        }
        let variant = self.archive.primer_variant();
        let primer = Primer::decode(&codebook, &payload, section.len, variant)
            .map_err(|e| e.shifted(section.offset).within("the primer"))?;
        let computed = crc32c(primer.bytes());
        if computed != section.crc {
            return Err(Error::at(
                ErrorKind::Checksum {
                    what: "the decoded primer",
                    expected: section.crc,
                    found: computed,
                },
                section.offset + section.payload_len + 4,
            ));
        }
        Ok(primer)
    }

    /// Block mode: record `r`, sliced from its page (see [`load_page`](Self::load_page)).
    fn decode_member(&mut self, r: u64, held: u64) -> Result<Vec<u8>> {
        let (start, len) = self.load_page(r, held)?;
        let (_, page, _) = self.page.as_ref().expect("loaded");
        Ok(page[start as usize..(start + len) as usize].to_vec())
    }

    /// Block mode: makes `self.page` the page of record `r`, decoding it unless it is the page
    /// decoded last, and returns where `r` lies in it. Before allocating, checks the page's
    /// length from the index against its payload's header and, with its payload and `held`
    /// bytes, against the memory limit; after decoding, that the page holds its records as
    /// the index says.
    fn load_page(&mut self, r: u64, held: u64) -> Result<(u64, u64)> {
        let index = Arc::clone(&self.archive.index);
        let no = index.page_no(r);
        let k = (r - index.pages[no].first) as usize;
        if let Some((at, _, spans)) = &self.page {
            if *at == no {
                return Ok(spans[k]);
            }
        }
        self.page = None;
        if self.decoder.is_none() {
            return Err(self.no_codebook());
        }
        let ctx = || format!("record {r}, in page {no}");
        let limit = self.archive.memory_limit;
        let over = |needed: u64| Error::new(ErrorKind::MemoryLimit { needed, limit }).within(ctx());
        // Pages after a primer (header flag bit 3) need its state, counted as held.
        self.ensure_primer().map_err(|e| e.within(ctx()))?;
        let held = held.saturating_add(self.archive.primer_memory());
        let page = index.pages[no];
        // The page's payload, its decoder's history and output, and the records' spans.
        let needed = held
            .saturating_add(page.payload_len)
            .saturating_add(3 * page.raw_len);
        if needed > limit {
            return Err(over(needed));
        }
        self.load_block(r, held)?;
        let header = crate::record::read_header(&self.block)
            .map_err(|e| e.shifted(page.offset).within(ctx()))?;
        if header.raw_len != page.raw_len {
            return Err(Error::corrupt(
                format!(
                    "the page decodes to {} bytes, but the index says {}",
                    header.raw_len, page.raw_len
                ),
                page.offset,
            )
            .within(ctx()));
        }
        let mut out = Vec::new();
        out.try_reserve_exact(page.raw_len as usize)
            .map_err(|_| over(needed))?;
        self.decoder
            .as_mut()
            .expect("checked above")
            .decode_page(&self.block, &mut out)
            .map_err(|e| e.shifted(page.offset).within(ctx()))?;
        let count = index.page_records(no);
        let spans = super::pages::spans(&out, page.layout, count, index.page_lens(no)).ok_or_else(
            || {
                Error::corrupt(
                    format!("the page does not hold its {count} records as the index says"),
                    page.offset,
                )
                .within(ctx())
            },
        )?;
        let at = spans[k];
        self.page = Some((no, Arc::new(out), spans));
        Ok(at)
    }

    /// Reads `r`'s block into `self.block` (unless it holds it already) and verifies its
    /// checksum, refusing a block that would not fit in the memory limit besides `held` bytes.
    /// Returns the block's offset and length.
    fn load_block(&mut self, r: u64, held: u64) -> Result<(u64, u64)> {
        let ctx = || format!("record {r}");
        let limit = self.archive.memory_limit;
        let over = |needed: u64| Error::new(ErrorKind::MemoryLimit { needed, limit }).within(ctx());
        let block = self.archive.index.block_of(r);
        let (first, last) = self.archive.index.block_span(block);
        let (start, block_len) = self.archive.index.block_bytes(block);
        if held.saturating_add(block_len) > limit {
            return Err(over(held.saturating_add(block_len)));
        }
        if self.block_no != Some(block) {
            self.block_no = None;
            self.block.clear();
            self.block
                .try_reserve_exact(block_len as usize)
                .map_err(|_| over(held.saturating_add(block_len)))?;
            self.block.resize(block_len as usize, 0);
            self.inner.seek(SeekFrom::Start(start))?;
            read_exact_at(&mut self.inner, &mut self.block, start, "a record block")
                .map_err(|e| e.within(ctx()))?;
            self.last_read += block_len;
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
        Ok((start, block_len))
    }

    /// Checks, from the record headers alone and before anything is decoded, that the chain of
    /// `n` is one the encoder can make and that each record fits in the memory limit: its
    /// length, its frames (at most [`MAX_RECORD_LEN`] bytes, as the encoder allows) and the
    /// records kept for it. A header found wrong is reported as its block's checksum error
    /// if the block is damaged.
    fn plan(&mut self, n: u64, chain: &[u64]) -> Result<()> {
        let opts = self.archive.index.context;
        let limit = self.archive.memory_limit;
        let mut keyframe = 0u64;
        let mut group: VecDeque<u64> = VecDeque::new();
        let mut group_bytes = 0u64;
        for &r in chain {
            let level = self.archive.index.record(r).dependency;
            let checked = (|| -> Result<u64> {
                let len = self.decoded_len(r)?;
                let mut refs = 0u64;
                for root in self.references(r).to_vec() {
                    refs = refs.saturating_add(self.decoded_len(root)?);
                }
                let context = match level {
                    Dependency::Root | Dependency::Copy => 0,
                    Dependency::Keyframe => keyframe,
                    Dependency::Delta => group_bytes,
                };
                let frames = refs.saturating_add(context);
                if frames > MAX_RECORD_LEN {
                    return Err(Error::corrupt(
                        format!(
                            "the record is coded against {frames} bytes of frames; \
                             the encoder allows at most {MAX_RECORD_LEN}"
                        ),
                        self.archive.index.record(r).offset,
                    )
                    .within(format!("record {r}")));
                }
                let needed = (keyframe + group_bytes)
                    .saturating_add(self.archive.primer_memory())
                    .saturating_add(refs)
                    .saturating_add(frames)
                    .saturating_add(len.saturating_mul(3));
                if needed > limit {
                    return Err(Error::new(ErrorKind::MemoryLimit { needed, limit })
                        .within(format!("record {r}")));
                }
                Ok(len)
            })();
            let len = match checked {
                Ok(len) => len,
                Err(e) => {
                    // A damaged block is named as such rather than by what its damage says.
                    let e = match self.load_block(r, 0) {
                        Err(damaged) if matches!(damaged.kind(), ErrorKind::Checksum { .. }) => {
                            damaged
                        }
                        _ => e,
                    };
                    return Err(if r == n {
                        e
                    } else {
                        e.within(format!("record {n} depends on record {r}"))
                    });
                }
            };
            if level != Dependency::Delta {
                keyframe = len;
                group.clear();
                group_bytes = 0;
            }
            group.push_back(len);
            group_bytes += len;
            while group.len() > opts.max_frames as usize || group_bytes > opts.window {
                group_bytes -= group.pop_front().expect("non-empty");
            }
        }
        Ok(())
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

    /// Block mode's page size (see [`Archive::page_bytes`]); 0 if records are coded alone.
    pub fn page_bytes(&self) -> u64 {
        self.archive.page_bytes()
    }

    /// Block mode: the page record `n` belongs to (see [`Archive::page_of`]).
    pub fn page_of(&self, n: u64) -> Option<u64> {
        self.archive.page_of(n)
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
