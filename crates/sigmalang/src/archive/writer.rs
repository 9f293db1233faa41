//! [`ArchiveWriter`]: takes records, codes each against its context (at once, or in batches on
//! the batch encoder), and writes them, then the index and footer.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use super::batch::Batches;
use super::index::{write_head, write_primer_section, IndexWriter};
use super::{
    ArchiveOptions, DEFAULT_CONTEXT, FLAG_CODED_INDEX, FLAG_COPIES, FLAG_JSON_FIELDS,
    FLAG_JSON_LINES, FLAG_JSON_VALUES, FLAG_PRIMED_PAGES, FLAG_PRIMER_ADAPTIVE2,
    MAX_KEYFRAME_INTERVAL, MAX_METADATA, MAX_PAGE_BYTES,
};
use crate::bank::Bank;
use crate::codebook::Codebook;
use crate::context::{ContextStack, Dependency, FramePool, FramePoolStats};
use crate::error::{Error, Result};
use crate::pool::GlyphBufferPool;
use crate::primer::{choose, Choice, Primer, MAX_PRIMER_LEN};
use crate::record::{Encoder, EncoderStats};

/// Writes an archive record by record.
pub struct ArchiveWriter<W: Write> {
    pub(super) inner: W,
    pub(super) encoder: Encoder,
    pub(super) opts: ArchiveOptions,
    pub(super) payload: Vec<u8>,
    /// The index of the records written so far.
    pub(super) index: IndexWriter,
    pub(super) ids: HashMap<Vec<u8>, u32>,
    pub(super) stacks: HashMap<u32, (ContextStack, u64)>,
    pub(super) frame_bytes: u64,
    pub(super) frame_pool: FramePool,
    /// Scratch: the next record's own frames and its bank references.
    pub(super) own: Vec<u64>,
    pub(super) ref_ids: Vec<u64>,
    /// How records are coded, and where the Σ-bank is.
    pub(super) coder: Coder,
    /// The first error, once one happened: the archive is then incomplete, and every later
    /// call fails.
    pub(super) failed: Option<String>,
    pub(super) record_pool: GlyphBufferPool,
    pub(super) offset: u64,
    pub(super) bytes_in: u64,
    /// With `json_lines`: the form of the record being added, and the bytes of the records
    /// added (their forms' lengths are what `bytes_in` counts).
    form: Vec<u8>,
    /// With `json_lines`: a fields form coded against its last frame (`jsonform::against`).
    against: Vec<u8>,
    lines_in: u64,
    /// Self-training: the records held back until they fill the primer, and the archive's head
    /// (written once the primer is known).
    pub(super) primer_wait: Option<PrimerWait>,
    /// Block mode: the records of the page being filled, concatenated, and each one's context
    /// id and length.
    pub(super) page: Vec<u8>,
    pub(super) page_members: Vec<(u32, u64)>,
    /// The groups inferred for records added without a key, and the next free group id.
    pub(super) inference: Option<super::infer::Inference>,
    pub(super) next_id: u32,
    /// Exact repeats: the recent records a record may be a copy of (none when off or in
    /// block mode), the context of the record added last if it had no key (an unkeyed copy
    /// takes it), and the copies waiting in the batch, by record index, with their sources.
    pub(super) repeats: Option<super::repeats::Repeats>,
    pub(super) last_unkeyed: Option<u32>,
    pub(super) copies: std::collections::BTreeMap<u64, u64>,
    /// While an [`ArchiveOptions::auto_pages`] trial codes records alone: their payloads, held
    /// until the archive's head is known.
    pub(super) held: Option<Vec<u8>>,
}

/// The archive's head as the writer started it (the primer section not written yet), and
/// what it is made of, for a head with other flags.
pub(super) struct Head {
    head: Vec<u8>,
    metadata: Vec<u8>,
    flags: u16,
}

/// The records an [`ArchiveWriter`] holds back until they fill its primer.
pub(super) struct PrimerWait {
    head: Vec<u8>,
    /// The head's metadata and flags (a block-mode archive's head is written again with
    /// `FLAG_PRIMED_PAGES` if it keeps its primer).
    metadata: Vec<u8>,
    flags: u16,
    records: Vec<KeyedRecord>,
    /// Bytes of the primer they make (each record and a newline).
    bytes: usize,
    /// The primer's length ([`ArchiveOptions::primer`], at most `MAX_PRIMER_LEN`; 0: none).
    primer: usize,
    /// How many bytes of records to hold back (each and a newline): the primer's (unless a
    /// sample makes it), and with [`ArchiveOptions::auto_pages`] a trial's sample after it.
    target: usize,
    /// The records the primer is made of, given up front
    /// ([`ArchiveWriter::with_primer_sample`]), as they are coded (JSON-lines forms with
    /// `json_lines`); `None`: the first records added make it.
    sample: Option<Vec<KeyedRecord>>,
}

/// A record held by the writer, with its key (`None`: added without one).
pub(super) type KeyedRecord = (Option<Vec<u8>>, Vec<u8>);

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive on `inner` whose records are modeled with `codebook`, with the default
    /// options. `metadata` is stored as is (the CLI stores `field=NAME\n`).
    pub fn new(inner: W, codebook: Arc<Codebook>, metadata: &[u8]) -> Result<ArchiveWriter<W>> {
        ArchiveWriter::with_options(inner, codebook, metadata, ArchiveOptions::default())
    }

    /// Starts an archive with explicit options, e.g.
    /// `ArchiveOptions::default().batch_records(1024).threads(0)`.
    ///
    /// # Errors
    /// If the options are out of range (no records per block, keyframe options outside
    /// `1..=MAX_KEYFRAME_INTERVAL`), the worker threads cannot be started, or the header
    /// cannot be written.
    pub fn with_options(
        mut inner: W,
        codebook: Arc<Codebook>,
        metadata: &[u8],
        mut opts: ArchiveOptions,
    ) -> Result<ArchiveWriter<W>> {
        if opts.block_records == 0 {
            return Err(Error::invalid("block_records must be at least 1"));
        }
        if opts.page_bytes > 0 {
            opts.auto_pages = 0;
        }
        if opts.page_bytes > MAX_PAGE_BYTES || opts.auto_pages > MAX_PAGE_BYTES {
            return Err(Error::invalid(format!(
                "pages of block mode hold at most {MAX_PAGE_BYTES} bytes"
            )));
        }
        if opts.page_bytes > 0 {
            // Pages are coded alone: no Σ-bank.
            opts.bank = 0;
        }
        let c = &opts.context;
        if !(1..=MAX_KEYFRAME_INTERVAL).contains(&c.keyframe_interval)
            || !(1..=MAX_KEYFRAME_INTERVAL).contains(&c.keyframes_per_root)
        {
            return Err(Error::invalid(format!(
                "keyframe interval and keyframes per root must be 1..={MAX_KEYFRAME_INTERVAL}"
            )));
        }
        if metadata.len() > MAX_METADATA {
            return Err(Error::invalid("archive metadata is larger than 1 MiB"));
        }
        let copies = opts.repeats > 0 && opts.page_bytes == 0;
        let flags = if opts.json_lines {
            FLAG_JSON_LINES | FLAG_JSON_FIELDS | FLAG_JSON_VALUES
        } else {
            0
        } | if copies { FLAG_COPIES } else { 0 }
            | if opts.coded_index && opts.page_bytes == 0 {
                FLAG_CODED_INDEX
            } else {
                0
            };
        let mut head = write_head(codebook.id(), metadata, flags);
        let primer = opts.primer.min(MAX_PRIMER_LEN as usize);
        let trial = super::pages::trial_bytes(opts.auto_pages);
        let primer_wait = (primer > 0 || trial > 0).then(|| PrimerWait {
            head: std::mem::take(&mut head),
            metadata: metadata.to_vec(),
            flags,
            records: Vec::new(),
            bytes: 0,
            primer,
            target: primer + trial,
            sample: None,
        });
        if primer_wait.is_none() {
            write_primer_section(&mut head, None);
            inner.write_all(&head)?;
        }
        let mut writer = ArchiveWriter {
            inner,
            encoder: Encoder::with_config(Arc::clone(&codebook), opts.encoder),
            opts,
            payload: Vec::new(),
            index: IndexWriter::new(opts.block_records, opts.page_bytes, opts.coded_index),
            ids: HashMap::new(),
            stacks: HashMap::new(),
            frame_bytes: 0,
            frame_pool: FramePool::default(),
            own: Vec::new(),
            ref_ids: Vec::new(),
            coder: Coder::Now(Bank::new(opts.bank)),
            failed: None,
            record_pool: GlyphBufferPool::new(opts.encoder.pool),
            offset: head.len() as u64,
            bytes_in: 0,
            form: Vec::new(),
            against: Vec::new(),
            lines_in: 0,
            primer_wait,
            page: Vec::new(),
            page_members: Vec::new(),
            // Inference needs groups that are coded against each other.
            inference: (opts.infer_groups
                && opts.page_bytes == 0
                && opts.context.keyframe_interval > 1
                && opts.context.max_frames > 0)
                .then(|| super::infer::Inference::new(DEFAULT_CONTEXT)),
            next_id: DEFAULT_CONTEXT + 1,
            repeats: copies.then(|| super::repeats::Repeats::new(opts.repeats)),
            last_unkeyed: None,
            copies: std::collections::BTreeMap::new(),
            held: None,
        };
        if opts.batch_records > 1 && writer.primer_wait.is_none() {
            writer.coder = Coder::Batches(Batches::new(&codebook, &opts, None)?);
        }
        Ok(writer)
    }

    /// Starts an archive as [`with_options`](Self::with_options) does, whose primer
    /// ([`ArchiveOptions::primer`], FORMAT.md §5.6) is made of `sample` instead of the first
    /// records added: records given as [`add_in_group`](Self::add_in_group) and
    /// [`add_line`](Self::add_line) take them (a key and the record; with
    /// [`ArchiveOptions::json_lines`], whole lines), joined as the coder sees them and cut to the
    /// primer's size, and the choice whether to keep the primer is tested on them. Every
    /// record is then added as usual, in input order (records that are in the sample code as
    /// matches of the primer whole). A sample spread over the whole input (as `sigma pack`
    /// takes from a file) teaches the coder more than the input's first records when the input
    /// is sorted by topic. The archive's format is the same: a reader cannot tell.
    ///
    /// Without a primer (`primer` 0) the sample is ignored. Unless a block-mode trial
    /// ([`ArchiveOptions::auto_pages`]) holds records back, the head is written at once.
    ///
    /// # Errors
    /// As [`with_options`](Self::with_options), and if the primer cannot be coded.
    pub fn with_primer_sample<'a, I>(
        inner: W,
        codebook: Arc<Codebook>,
        metadata: &[u8],
        opts: ArchiveOptions,
        sample: I,
    ) -> Result<ArchiveWriter<W>>
    where
        I: IntoIterator<Item = (Option<&'a [u8]>, &'a [u8])>,
    {
        let mut writer = ArchiveWriter::with_options(inner, codebook, metadata, opts)?;
        let json_lines = writer.opts.json_lines;
        let auto = writer.opts.auto_pages;
        let Some(wait) = writer.primer_wait.as_mut().filter(|w| w.primer > 0) else {
            return Ok(writer);
        };
        // Held as the coder sees them (as `add_coded` holds records), up to the primer's size.
        let mut records = Vec::new();
        let mut bytes = 0;
        for (key, record) in sample {
            if bytes >= wait.primer {
                break;
            }
            let mut form = Vec::new();
            if json_lines {
                crate::jsonform::encode(record, &mut form);
            } else {
                form.extend_from_slice(record);
            }
            bytes += form.len() + 1;
            records.push((key.map(<[u8]>::to_vec), form));
        }
        // A sample of records too long for pages of `auto` settles the trial now: none, and
        // nothing held back for it (`start_primer` judges the records held back otherwise).
        let no_trial =
            auto > 0 && !records.is_empty() && !super::pages::worth_trying(&records, auto);
        if no_trial {
            wait.target = wait.primer;
        }
        wait.sample = Some(records);
        // Only a trial's records are held back now.
        wait.target -= wait.primer;
        if no_trial {
            writer.opts.auto_pages = 0;
        }
        if wait.target == 0 {
            let started = writer.start_primer(false);
            writer.note(started)?;
        }
        Ok(writer)
    }

    /// Makes the primer of the records held back, writes the archive's head with it, sets the
    /// encoders up to code after it, and codes the records. With
    /// [`ArchiveOptions::auto_pages`] it first decides between records alone and pages
    /// (`choose_paging`). `ended`: no record follows the held-back ones before a flush.
    fn start_primer(&mut self, ended: bool) -> Result<()> {
        let Some(wait) = self.primer_wait.take() else {
            return Ok(());
        };
        let PrimerWait {
            head,
            metadata,
            flags,
            records,
            primer: target,
            sample: given,
            ..
        } = wait;
        // The records the primer is made of: the sample given, or those held back that fill
        // it (all of them without a trial, as the writer held back only these).
        let mut filled = 0;
        let primed = if target == 0 || given.is_some() {
            0
        } else {
            records
                .iter()
                .position(|(_, r)| {
                    filled += r.len() + 1;
                    filled >= target
                })
                .map_or(records.len(), |k| k + 1)
        };
        let (bytes, sample) =
            self.primer_bytes(given.as_deref().unwrap_or(&records[..primed]), target);
        let codebook = Arc::clone(self.encoder.codebook());
        let has_text = target > 0 && bytes.iter().any(|&b| b != b'\n');
        let choose_for = |page_bytes: u64| {
            if has_text {
                choose(&codebook, &sample, page_bytes)
            } else {
                Choice::Plain
            }
        };
        let auto = std::mem::take(&mut self.opts.auto_pages);
        // A page that would hold fewer than `AUTO_MIN_RECORDS` records on average is not
        // tried: records alone, no trial. A sample given was judged by `with_primer_sample`
        // (which cleared `auto_pages` if it fails); else the records held back are judged.
        let sampled = given.as_deref().is_some_and(|g| !g.is_empty());
        let auto = if auto > 0 && !sampled && !super::pages::worth_trying(&records, auto) {
            0
        } else {
            auto
        };
        let choice = choose_for(self.opts.page_bytes);
        let paged_choice = (auto > 0).then(|| choose_for(auto));
        drop(sample);
        drop(given);
        let primer = if choice != Choice::Plain || paged_choice.is_some_and(|c| c != Choice::Plain)
        {
            let (primer, payload) = Primer::encode(&codebook, bytes)?;
            Some((Arc::new(primer), payload))
        } else {
            None
        };
        let head = Head {
            head,
            metadata,
            flags,
        };
        let mut rest = 0;
        if let Some(paged_choice) = paged_choice {
            rest = self.choose_paging(
                &head,
                &records,
                primed,
                primer.as_ref(),
                [choice, paged_choice],
                auto,
                ended,
            )?;
        } else {
            self.write_head(&head, primer.as_ref(), choice)?;
        }
        for (key, record) in &records[rest..] {
            self.add_unchecked(key.as_deref(), record)?;
        }
        Ok(())
    }

    /// The primer made of `records` (the first ones held back) up to `target` bytes: each
    /// record as the coder will see it, and a newline; and the records it holds.
    fn primer_bytes<'a>(
        &self,
        records: &'a [(Option<Vec<u8>>, Vec<u8>)],
        target: usize,
    ) -> (Vec<u8>, Vec<&'a [u8]>) {
        let mut bytes = Vec::with_capacity(target.min(records.iter().map(|r| r.1.len() + 1).sum()));
        let mut sample: Vec<&[u8]> = Vec::new();
        let mut coded = Vec::new();
        let mut last_of_key: HashMap<Option<&[u8]>, &[u8]> = HashMap::new();
        for (key, r) in records {
            if bytes.len() >= target {
                break;
            }
            // The primer holds the records as the coder will see them: a form's values against
            // the last record of its key (`jsonform::against`), as most records after it are
            // coded against their context's last record.
            coded.clear();
            let prev = last_of_key.insert(key.as_deref(), r);
            if self.opts.json_lines && crate::jsonform::against(r, prev, &mut coded) {
                bytes.extend_from_slice(&coded);
            } else {
                bytes.extend_from_slice(r);
            }
            bytes.push(b'\n');
            sample.push(r);
        }
        bytes.truncate(target);
        (bytes, sample)
    }

    /// Sets the writer up for its mode (records alone or pages, `self.opts.page_bytes`) after
    /// `primer` as `choice` says, and writes the archive's head: the flags of that mode (pages
    /// hold no copies; pages after a primer carry `FLAG_PRIMED_PAGES`; a primer is ADAPTIVE2,
    /// `FLAG_PRIMER_ADAPTIVE2`) and the primer section.
    /// The payloads coded so far (a trial's, held in `self.held`) follow the head.
    pub(super) fn write_head(
        &mut self,
        head: &Head,
        primer: Option<&(Arc<Primer>, Vec<u8>)>,
        choice: Choice,
    ) -> Result<()> {
        self.set_primer(primer, choice)?;
        let primer = primer.filter(|_| choice != Choice::Plain);
        let paged = self.opts.page_bytes > 0;
        let mut flags = head.flags;
        if let Some((p, _)) = primer {
            // The primer is ADAPTIVE2 (bit 4), of variant 3 (bit 7) as this build makes them;
            // pages after it say so too (bit 3).
            flags |= FLAG_PRIMER_ADAPTIVE2;
            if p.variant() == crate::model::Variant::V3 {
                flags |= super::FLAG_PRIMER_V3;
            }
        }
        if paged {
            // Pages hold no copies (FORMAT.md §5.8) and their index is not coded (§5.1): the
            // head says so.
            flags &= !(FLAG_COPIES | FLAG_CODED_INDEX);
            if primer.is_some() {
                flags |= FLAG_PRIMED_PAGES;
            }
        }
        let mut bytes = if flags == head.flags {
            head.head.clone()
        } else {
            write_head(self.encoder.codebook().id(), &head.metadata, flags)
        };
        write_primer_section(
            &mut bytes,
            primer.map(|(p, payload)| (p.bytes(), &payload[..])),
        );
        self.inner.write_all(&bytes)?;
        if let Some(held) = self.held.take() {
            self.inner.write_all(&held)?;
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Sets the encoders up to code after `primer` as `choice` says (or without it), for the
    /// writer's mode.
    pub(super) fn set_primer(
        &mut self,
        primer: Option<&(Arc<Primer>, Vec<u8>)>,
        choice: Choice,
    ) -> Result<()> {
        let primer = primer
            .filter(|_| choice != Choice::Plain)
            .map(|(p, _)| (Arc::clone(p), choice == Choice::Adaptive));
        let codebook = Arc::clone(self.encoder.codebook());
        match &primer {
            Some((p, adaptive)) => self.encoder.set_primer(Some(Arc::clone(p)), *adaptive),
            None => self.encoder.set_primer(None, false),
        }
        self.coder = if self.opts.batch_records > 1 {
            Coder::Batches(Batches::new(&codebook, &self.opts, primer)?)
        } else {
            Coder::Now(Bank::new(self.opts.bank))
        };
        Ok(())
    }

    /// Writes `bytes` (payloads) to the archive, or holds them while a trial decides the
    /// archive's head.
    pub(super) fn emit(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.held {
            Some(held) => held.extend_from_slice(bytes),
            None => self.inner.write_all(bytes)?,
        }
        Ok(())
    }

    /// Whether the writer holds records back for its primer, and how many.
    fn held_back(&self) -> u64 {
        self.primer_wait
            .as_ref()
            .map_or(0, |w| w.records.len() as u64)
    }

    /// Encodes and appends one record in the default group (the records added without a
    /// key); returns its index.
    pub fn add(&mut self, record: &[u8]) -> Result<u64> {
        self.add_in_group(None, record)
    }

    /// Encodes and appends one record in the group named `key` (`None`: the default group),
    /// e.g. a conversation id; returns its index. With `batch_records > 1` the record is coded on the
    /// workers once its batch is full, while the next batch fills, and written when that one is
    /// full (or at [`flush`](Self::flush) or [`finish`](Self::finish)); errors surface then,
    /// possibly from a later call than the record's own.
    ///
    /// After an error (a record that cannot be coded, a failed write) the archive is
    /// incomplete: this and every other call of the writer fail from then on.
    ///
    /// With [`ArchiveOptions::json_lines`] the record is a whole line (any bytes), coded in
    /// the JSON-lines form; readers give it back as it is.
    pub fn add_in_group(&mut self, key: Option<&[u8]>, record: &[u8]) -> Result<u64> {
        self.check()?;
        let mut form = std::mem::take(&mut self.form);
        let coded: &[u8] = if self.opts.json_lines {
            form.clear();
            crate::jsonform::encode(record, &mut form);
            self.lines_in += record.len() as u64;
            &form
        } else {
            record
        };
        let added = self.add_coded(key, coded);
        self.form = form;
        self.note(added)
    }

    /// Adds a record as it is coded (its JSON-lines form, with `json_lines`): held back while
    /// the primer fills, else coded now or in the next batch.
    fn add_coded(&mut self, key: Option<&[u8]>, record: &[u8]) -> Result<u64> {
        if let Some(wait) = &mut self.primer_wait {
            let index = wait.records.len() as u64;
            if record.len() as u64 > crate::record::MAX_RECORD_LEN {
                return Err(Error::invalid(format!(
                    "record of {} bytes exceeds the {}-byte limit",
                    record.len(),
                    crate::record::MAX_RECORD_LEN
                )));
            }
            wait.records
                .push((key.map(<[u8]>::to_vec), record.to_vec()));
            wait.bytes += record.len() + 1;
            if wait.bytes >= wait.target {
                self.start_primer(false)?;
            }
            return Ok(index);
        }
        self.add_unchecked(key, record)
    }

    /// Encodes and appends one whole line (any bytes, its line ending included or not) in the
    /// group named `key` (`None`: the default group); returns its index. The same as
    /// [`add_in_group`](Self::add_in_group), for archives of lines: with
    /// [`ArchiveOptions::json_lines`] (as `sigma pack` writes) it is coded in the JSON-lines
    /// form, and the archive's key table keeps `key` for [`Archive::key`](super::Archive::key).
    pub fn add_line(&mut self, key: Option<&[u8]>, line: &[u8]) -> Result<u64> {
        self.add_in_group(key, line)
    }

    /// Fails if an earlier call failed.
    fn check(&self) -> Result<()> {
        match &self.failed {
            Some(first) => Err(Error::invalid(format!(
                "the archive writer failed earlier ({first}); the archive is incomplete"
            ))),
            None => Ok(()),
        }
    }

    /// Remembers the first error.
    fn note<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        r
    }

    pub(super) fn add_unchecked(&mut self, key: Option<&[u8]>, record: &[u8]) -> Result<u64> {
        if let Some(source) = self.repeats.as_ref().and_then(|t| t.find(record)) {
            return self.add_copy(key, source, record);
        }
        let cid = self.context_id(key, record)?;
        self.last_unkeyed = key.is_none().then_some(cid);
        if self.opts.page_bytes > 0 {
            return self.add_to_page(cid, record);
        }
        let bank = match &mut self.coder {
            Coder::Now(bank) => bank,
            Coder::Batches(batches) => {
                if let Some(t) = &mut self.repeats {
                    t.add(self.index.len() + batches.waiting(), record);
                }
                batches.push_record(cid, record, &mut self.record_pool);
                let index = self.index.len() + batches.waiting() - 1;
                let full = batches.pending.len() >= self.opts.batch_records as usize
                    || (self.opts.batch_bytes > 0
                        && batches.pending_bytes >= self.opts.batch_bytes);
                if full {
                    self.flush_batch()?;
                }
                return Ok(index);
            }
        };
        // Coded at once (batches of one): no allocation in steady state.
        let index = self.index.len();
        if let Some(t) = &mut self.repeats {
            t.add(index, record);
        }
        let copts = self.opts.context;
        let (stack, last_use) = self.stacks.entry(cid).or_default();
        *last_use = index;
        let level = stack.next_level(&copts);
        self.payload.clear();
        self.own.clear();
        stack.frame_indices(&copts, &mut self.own);
        bank.references_into(&self.own, record, &mut self.ref_ids);
        let frames = || {
            self.ref_ids
                .iter()
                .filter_map(|&r| bank.root(r))
                .chain(stack.frames(&copts))
        };
        // A form's values may be coded against its last frame's (FORMAT.md §5.5).
        self.against.clear();
        let coded = if self.opts.json_lines
            && crate::jsonform::against(record, frames().last(), &mut self.against)
        {
            &self.against[..]
        } else {
            record
        };
        self.encoder
            .encode_with_frame_iter(frames(), coded, &mut self.payload)?;
        self.frame_bytes -= stack.bytes();
        stack.push(index, record, level, &copts, &mut self.frame_pool);
        self.frame_bytes += stack.bytes();
        let payload = std::mem::take(&mut self.payload);
        let refs = std::mem::take(&mut self.ref_ids);
        let r = self.commit(cid, level, &refs, &payload, record);
        self.payload = payload;
        self.ref_ids = refs;
        r?;
        Ok(index)
    }

    /// Adds `record` as a copy of the earlier record `source`, which holds the same bytes
    /// (FORMAT.md §5.8): in the context of its key, or without one in the previous record's
    /// if that had none either (so its tag takes one byte), else in context 0 (whose records
    /// have no key). A copy is in no chain, and inference does not see it.
    fn add_copy(&mut self, key: Option<&[u8]>, source: u64, record: &[u8]) -> Result<u64> {
        let cid = match key {
            Some(_) => self.context_id(key, record)?,
            None => self.last_unkeyed.unwrap_or(DEFAULT_CONTEXT),
        };
        self.last_unkeyed = key.is_none().then_some(cid);
        match &mut self.coder {
            Coder::Now(_) => {
                let index = self.index.len();
                self.commit_copy(cid, source, record);
                Ok(index)
            }
            Coder::Batches(batches) => {
                let index = self.index.len() + batches.waiting();
                self.copies.insert(index, source);
                batches.push_record(cid, record, &mut self.record_pool);
                if batches.pending.len() >= self.opts.batch_records as usize {
                    self.flush_batch()?;
                }
                Ok(index)
            }
        }
    }

    /// Writes the index entry of a copy of `source` (no payload); feeds the checksums.
    pub(super) fn commit_copy(&mut self, cid: u32, source: u64, record: &[u8]) {
        self.index.add_copy(cid, source, record);
        self.bytes_in += record.len() as u64;
    }

    /// The context of `record`, added with `key`: the key's (ids 1, 2, … in order of first
    /// use, shared with inferred groups), or without a key the inferred group or 0.
    pub(super) fn context_id(&mut self, key: Option<&[u8]>, record: &[u8]) -> Result<u32> {
        let next_id = &mut self.next_id;
        let mut new_id = || {
            let id = *next_id;
            *next_id = next_id
                .checked_add(1)
                .ok_or_else(|| Error::invalid("more than 2^32 contexts"))?;
            Ok(id)
        };
        Ok(match key {
            None => match &mut self.inference {
                Some(inference) => inference.group_of(record, new_id)?,
                None => DEFAULT_CONTEXT,
            },
            Some(k) => match self.ids.get(k) {
                Some(&id) => id,
                None => {
                    let id = new_id()?;
                    self.ids.insert(k.to_vec(), id);
                    id
                }
            },
        })
    }

    /// Codes and writes every record added so far (records are also coded when their batch is
    /// full, and written at the next batch or at [`finish`](Self::finish)). In block mode it
    /// ends the page being filled, so the pages depend on when it is called.
    pub fn flush(&mut self) -> Result<()> {
        self.check()?;
        let flushed = self
            .start_primer(true)
            .and_then(|()| self.flush_page())
            .and_then(|()| self.flush_unchecked());
        self.note(flushed)
    }

    /// Writes a coded record and its index entry; feeds the Σ-bank and the checksums.
    pub(super) fn commit(
        &mut self,
        cid: u32,
        level: Dependency,
        refs: &[u64],
        payload: &[u8],
        record: &[u8],
    ) -> Result<()> {
        let index = self.index.len();
        // A coded index holds each record's header (header flag bit 6): the payload is
        // written without it.
        let (payload, head) = if self.index.coded() {
            let h = crate::record::read_header(payload)?;
            (&payload[h.body_offset..], Some((h.raw_len, h.mode)))
        } else {
            (payload, None)
        };
        self.emit(payload)?;
        self.index.add(cid, level, refs, payload, record, head);
        if level == Dependency::Root && refs.is_empty() {
            match &mut self.coder {
                Coder::Now(bank) => bank.add_root(index, record),
                Coder::Batches(batches) => batches.new_roots.push((index, record.to_vec())),
            }
        }
        self.offset += payload.len() as u64;
        self.bytes_in += record.len() as u64;
        self.evict(cid);
        Ok(())
    }

    /// The counters of every encoder of this writer, summed.
    pub fn stats(&self) -> EncoderStats {
        let mut total = self.encoder.stats();
        if let Coder::Batches(batches) = &self.coder {
            batches.merge_stats(&mut total);
        }
        total
    }

    /// Drops the least recently used contexts' frames while they hold more than the budget.
    fn evict(&mut self, current: u32) {
        while self.frame_bytes > self.opts.context.memory {
            let Some((&cid, _)) = self
                .stacks
                .iter()
                .filter(|(&c, (s, _))| c != current && s.bytes() > 0)
                .min_by_key(|(_, (_, used))| *used)
            else {
                break;
            };
            if let Some((mut stack, _)) = self.stacks.remove(&cid) {
                self.frame_bytes -= stack.bytes();
                stack.clear(&mut self.frame_pool);
            }
            // Evicted frames must not pin memory in the pool either.
            self.frame_pool
                .trim(self.stacks.len() * (self.opts.context.max_frames as usize + 1));
        }
    }

    /// Records added so far (coded or waiting in the batch).
    pub fn len(&self) -> u64 {
        let waiting = match &self.coder {
            Coder::Now(_) => 0,
            Coder::Batches(batches) => batches.waiting(),
        };
        self.index.len() + waiting + self.held_back() + self.page_members.len() as u64
    }

    /// Whether no record was added yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record bytes taken so far (with `json_lines`, the bytes of every record added; else
    /// of the records coded).
    pub fn bytes_in(&self) -> u64 {
        if self.opts.json_lines {
            self.lines_in
        } else {
            self.bytes_in
        }
    }

    /// Archive bytes written so far.
    pub fn bytes_out(&self) -> u64 {
        self.offset
    }

    /// The encoder (for its codebook and statistics).
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The frame pool's counters.
    pub fn frame_stats(&self) -> FramePoolStats {
        self.frame_pool.stats()
    }

    /// Codes what waits in the batch, writes the index and footer; returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.flush()?;
        // Contexts 1..next_id: keyed ones and the inferred ones (which have no key).
        let mut keys: Vec<Option<&[u8]>> = vec![None; (self.next_id - 1) as usize];
        for (k, &id) in &self.ids {
            keys[id as usize - 1] = Some(k);
        }
        let idx = self.index.write(&self.opts.context, self.offset, &keys);
        self.inner.write_all(&idx)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// How an [`ArchiveWriter`] codes records, and where its Σ-bank is.
pub(super) enum Coder {
    /// One at a time, as they are added: the bank is the writer's alone.
    Now(Bank),
    /// In batches on the batch encoder, which holds the bank (and lends it to the batch being
    /// coded).
    Batches(Batches),
}

#[cfg(test)]
mod tests {
    use crate::archive::{ArchiveOptions, ArchiveWriter};
    use crate::codebook::Codebook;
    use std::io::Write;

    /// A sink whose `fail_at`-th write (counting from 1) fails once.
    struct FailingSink {
        writes: usize,
        fail_at: usize,
        out: Vec<u8>,
    }

    impl Write for FailingSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.writes += 1;
            if self.writes == self.fail_at {
                return Err(std::io::Error::other("disk full"));
            }
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// After a failed write the writer is poisoned: the first error is reported once, every
    /// later call fails naming it, and `finish` never claims a complete archive (batches on one
    /// and two threads, and records coded one at a time).
    #[test]
    fn a_failed_write_poisons_the_writer() {
        for (batch_records, threads) in [(1, 1), (4, 1), (4, 2)] {
            let sink = FailingSink {
                writes: 0,
                fail_at: 6,
                out: Vec::new(),
            };
            let opts = ArchiveOptions {
                batch_records,
                threads,
                ..ArchiveOptions::default()
            };
            let mut w = ArchiveWriter::with_options(sink, Codebook::default_codebook(), b"m", opts)
                .unwrap();
            let mut first = None;
            for i in 0..24 {
                let r = w.add(format!("record {i} of a failing archive").as_bytes());
                if let Err(e) = r {
                    if first.is_none() {
                        assert!(e.to_string().contains("disk full"), "{e}");
                        first = Some(i);
                    } else {
                        assert!(e.to_string().contains("failed earlier"), "{e}");
                        assert!(e.to_string().contains("disk full"), "{e}");
                    }
                } else {
                    assert!(first.is_none(), "an add succeeded after the writer failed");
                }
            }
            let first = first.expect("the failing write is reported by some add");
            assert!(first < 24, "batch {batch_records}, threads {threads}");
            let e = w.flush().unwrap_err();
            assert!(e.to_string().contains("failed earlier"), "{e}");
            let e = w.finish().map(|_| ()).unwrap_err();
            assert!(e.to_string().contains("failed earlier"), "{e}");
        }
    }
}
