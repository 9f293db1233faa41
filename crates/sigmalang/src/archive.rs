//! The record archive: what `sigma pack` writes. Many records, each readable on its own, coded
//! against their contexts (see [`crate::context`]), with an index at the end for random access.
//!
//! ```text
//! file header (20 bytes, kind = archive)
//! metadata: varint length, bytes, crc32c
//! record payloads, back to back, in blocks of `block_records` records
//! index: varint count, varint block_records,
//!        varint keyframe_interval, varint keyframes_per_root, varint max_frames, varint window,
//!        per record: varint payload length, varint (context id << 3 | has_refs << 2 | level),
//!                    if has_refs: varint count, varint (record index - root index) per root,
//!        per block: crc32c of its payloads, crc32c of its records' decoded bytes,
//!        crc32c of the index
//! footer: u64 LE index offset, 4 bytes end magic
//! ```
//!
//! Reading record `n` reads the footer and the index (once), then the blocks of the records `n`
//! depends on (at most `keyframes_per_root` keyframes and `keyframe_interval` records of its
//! context), each block's checksum verified before its records are decoded. The byte layout is in
//! `docs/FORMAT.md`.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{mpsc, Arc, Mutex};

use rayon::prelude::*;

use crate::bank::Bank;
use crate::checksum::{crc32c, Crc32c};
use crate::codebook::Codebook;
use crate::container::{read_exact_at, read_full, FileHeader, FileKind, HEADER_LEN};
use crate::context::{
    select_frames, ContextOptions, ContextStack, FramePool, FramePoolStats, Level,
};
use crate::error::{Error, ErrorKind, Result};
use crate::pool::GlyphBufferPool;
use crate::record::{Decoder, Encoder, EncoderConfig, EncoderStats};
use crate::varint;

/// The last four bytes of an archive.
pub const END_MAGIC: [u8; 4] = [0xCE, 0xA3, b'L', b'X'];
/// The footer: index offset and end magic.
pub const FOOTER_LEN: usize = 12;
/// Records per checksummed block, by default.
pub const DEFAULT_BLOCK_RECORDS: u32 = 16;
/// The most metadata an archive may carry.
pub const MAX_METADATA: usize = 1 << 20;
/// The largest keyframe interval a reader accepts (bounds the work of one `get`).
pub const MAX_KEYFRAME_INTERVAL: u32 = 1 << 16;

/// How an archive is written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchiveOptions {
    /// Records per checksummed block (a `get` reads whole blocks).
    pub block_records: u32,
    /// How records are coded against their contexts.
    pub context: ContextOptions,
    /// Bytes of roots the Σ-bank keeps for REFERENCE across contexts (0: no bank).
    pub bank: usize,
    /// Records are coded in batches of this many (1: one at a time, as added). A batch is coded
    /// while the next one fills and the one before is written, and the Σ-bank offers it the
    /// roots of batches at least two before it, so the archive's bytes depend on the batch size
    /// but never on the number of threads.
    pub batch_records: u32,
    /// A batch is also full once its records hold at least this many bytes (0: no limit), so
    /// that large records keep the memory in flight bounded: at most two batches (one being
    /// coded, one filling) plus one record. Like `batch_records`, it shapes the bytes.
    pub batch_bytes: usize,
    /// Worker threads coding a batch (0: one per core).
    pub threads: usize,
    /// Memory configuration of every worker's encoder.
    pub encoder: EncoderConfig,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            block_records: DEFAULT_BLOCK_RECORDS,
            context: ContextOptions::default(),
            bank: 16 << 20,
            batch_records: 1,
            batch_bytes: 1 << 20,
            threads: 1,
            encoder: EncoderConfig::default(),
        }
    }
}

impl ArchiveOptions {
    /// The number of worker threads these options ask for.
    pub fn worker_count(&self) -> usize {
        crate::workers::count(self.threads)
    }
}

/// A worker of the batch encoder: an encoder and its Σ-bank lookup scratch.
struct Worker {
    encoder: Encoder,
    shared: Vec<(u64, usize)>,
}

/// A record waiting in the batch.
struct Pending {
    context: u32,
    record: Vec<u8>,
}

/// How a batch record is coded: planned in order, coded in parallel.
struct Plan {
    level: Level,
    own: Vec<u64>,
    frames: Vec<Arc<Vec<u8>>>,
    refs: Vec<u64>,
    payload: Vec<u8>,
    result: Result<()>,
}

/// A batch's records and their plans, payloads filled in.
type CodedBatch = (Vec<Pending>, Vec<Plan>);

/// A batch handed to the workers: its records and plans come back, coded, on `done`.
struct InFlight {
    len: u64,
    /// The coded batch, or what a panicking worker said.
    done: mpsc::Receiver<std::result::Result<CodedBatch, String>>,
}

/// The default context: records added without a key.
const DEFAULT_CONTEXT: u32 = 0;

/// Writes an archive record by record.
pub struct ArchiveWriter<W: Write> {
    inner: W,
    encoder: Encoder,
    opts: ArchiveOptions,
    payload: Vec<u8>,
    /// Index entries as the index encodes them.
    entries: Vec<u8>,
    count: u64,
    block_crcs: Vec<(u32, u32)>,
    block_crc: Crc32c,
    content_crc: Crc32c,
    ids: HashMap<Vec<u8>, u32>,
    stacks: HashMap<u32, (ContextStack, u64)>,
    frame_bytes: u64,
    frame_pool: FramePool,
    /// Shared with the batch being coded (read-only there); written only between batches.
    bank: Arc<Bank>,
    /// Scratch: the next record's own frames and its bank references.
    own: Vec<u64>,
    ref_ids: Vec<u64>,
    /// The batch encoder: workers, their threads, the records waiting, and the batch being
    /// coded (written at the next flush).
    workers: Arc<Vec<Mutex<Worker>>>,
    threads: Option<rayon::ThreadPool>,
    pending: Vec<Pending>,
    /// Bytes of the records in `pending`.
    pending_bytes: usize,
    in_flight: Option<InFlight>,
    /// Roots of the batch last written, entering the Σ-bank once no batch is being coded.
    new_roots: Vec<(u64, Vec<u8>)>,
    /// The first error, once one happened: the archive is then incomplete, and every later
    /// call fails.
    failed: Option<String>,
    record_pool: GlyphBufferPool,
    offset: u64,
    bytes_in: u64,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive on `inner` whose records are modeled with `codebook`, with the default
    /// options. `metadata` is stored as is (the CLI stores `field=NAME\n`).
    pub fn new(inner: W, codebook: Arc<Codebook>, metadata: &[u8]) -> Result<ArchiveWriter<W>> {
        ArchiveWriter::with_options(inner, codebook, metadata, ArchiveOptions::default())
    }

    /// As [`new`](Self::new), with `block_records` records per checksummed block.
    pub fn with_block_records(
        inner: W,
        codebook: Arc<Codebook>,
        metadata: &[u8],
        block_records: u32,
    ) -> Result<ArchiveWriter<W>> {
        let opts = ArchiveOptions {
            block_records,
            ..ArchiveOptions::default()
        };
        ArchiveWriter::with_options(inner, codebook, metadata, opts)
    }

    /// Starts an archive with explicit options.
    pub fn with_options(
        mut inner: W,
        codebook: Arc<Codebook>,
        metadata: &[u8],
        opts: ArchiveOptions,
    ) -> Result<ArchiveWriter<W>> {
        if opts.block_records == 0 {
            return Err(Error::invalid("block_records must be at least 1"));
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
        let header = FileHeader {
            kind: FileKind::Archive,
            codebook: codebook.id(),
        };
        let mut head = header.to_bytes().to_vec();
        varint::write(&mut head, metadata.len() as u64);
        head.extend_from_slice(metadata);
        head.extend_from_slice(&crc32c(metadata).to_le_bytes());
        inner.write_all(&head)?;
        let mut writer = ArchiveWriter {
            inner,
            encoder: Encoder::with_config(Arc::clone(&codebook), opts.encoder),
            opts,
            payload: Vec::new(),
            entries: Vec::new(),
            count: 0,
            block_crcs: Vec::new(),
            block_crc: Crc32c::new(),
            content_crc: Crc32c::new(),
            ids: HashMap::new(),
            stacks: HashMap::new(),
            frame_bytes: 0,
            frame_pool: FramePool::default(),
            bank: Arc::new(Bank::new(opts.bank)),
            own: Vec::new(),
            ref_ids: Vec::new(),
            workers: Arc::new(Vec::new()),
            threads: None,
            pending: Vec::new(),
            pending_bytes: 0,
            in_flight: None,
            new_roots: Vec::new(),
            failed: None,
            record_pool: GlyphBufferPool::new(opts.encoder.pool),
            offset: head.len() as u64,
            bytes_in: 0,
        };
        if opts.batch_records > 1 {
            let n = opts.worker_count();
            writer.workers = Arc::new(
                (0..n)
                    .map(|_| {
                        Mutex::new(Worker {
                            encoder: Encoder::with_config(Arc::clone(&codebook), opts.encoder),
                            shared: Vec::new(),
                        })
                    })
                    .collect(),
            );
            if n > 1 {
                writer.threads = Some(crate::workers::pool(n, "worker")?);
            }
        }
        Ok(writer)
    }

    /// Encodes and appends one record in the default context (the records added without a
    /// key); returns its index.
    pub fn add(&mut self, record: &[u8]) -> Result<u64> {
        self.add_in_context(None, record)
    }

    /// Encodes and appends one record in the context named `key` (`None`: the default
    /// context); returns its index. With `batch_records > 1` the record is coded on the
    /// workers once its batch is full, while the next batch fills, and written when that one is
    /// full (or at [`flush`](Self::flush) or [`finish`](Self::finish)); errors surface then,
    /// possibly from a later call than the record's own.
    ///
    /// After an error (a record that cannot be coded, a failed write) the archive is
    /// incomplete: this and every other call of the writer fail from then on.
    pub fn add_in_context(&mut self, key: Option<&[u8]>, record: &[u8]) -> Result<u64> {
        self.check()?;
        let added = self.add_unchecked(key, record);
        self.note(added)
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

    fn add_unchecked(&mut self, key: Option<&[u8]>, record: &[u8]) -> Result<u64> {
        let cid = self.context_id(key)?;
        if self.opts.batch_records <= 1 {
            return self.add_now(cid, record);
        }
        let mut buf = self.record_pool.acquire();
        buf.extend_from_slice(record);
        self.pending.push(Pending {
            context: cid,
            record: buf,
        });
        let index = self.len() - 1;
        self.pending_bytes += record.len();
        if self.pending.len() >= self.opts.batch_records as usize
            || (self.opts.batch_bytes > 0 && self.pending_bytes >= self.opts.batch_bytes)
        {
            self.flush_batch()?;
        }
        Ok(index)
    }

    fn context_id(&mut self, key: Option<&[u8]>) -> Result<u32> {
        Ok(match key {
            None => DEFAULT_CONTEXT,
            Some(k) => match self.ids.get(k) {
                Some(&id) => id,
                None => {
                    let id = u32::try_from(self.ids.len() + 1)
                        .map_err(|_| Error::invalid("more than 2^32 contexts"))?;
                    self.ids.insert(k.to_vec(), id);
                    id
                }
            },
        })
    }

    /// Codes one record at once (batches of one): no allocation in steady state.
    fn add_now(&mut self, cid: u32, record: &[u8]) -> Result<u64> {
        let index = self.count;
        let copts = self.opts.context;
        let (stack, last_use) = self.stacks.entry(cid).or_default();
        *last_use = index;
        let level = stack.next_level(&copts);
        self.payload.clear();
        self.own.clear();
        stack.frame_indices(&copts, &mut self.own);
        Arc::get_mut(&mut self.bank)
            .expect("no batch is in flight without batches")
            .references_into(&self.own, record, &mut self.ref_ids);
        let bank = &self.bank;
        let frames = self
            .ref_ids
            .iter()
            .filter_map(|&r| bank.root(r))
            .chain(stack.frames(&copts));
        self.encoder
            .encode_with_frame_iter(frames, record, &mut self.payload)?;
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

    /// Hands the waiting records to the workers: plans them in order (levels and frames), writes
    /// the batch handed over before (whose coding overlapped the filling of this one), then
    /// starts coding this one. A batch's Σ-bank lookups see every batch written before it, and
    /// planning a batch precedes writing the previous one, whatever the number of workers, so
    /// the output does not depend on it.
    fn flush_batch(&mut self) -> Result<()> {
        let planned = if self.pending.is_empty() {
            None
        } else {
            Some(self.plan_batch())
        };
        let coded = self.take_in_flight()?;
        // No batch is being coded now: the roots of the batch written before enter the bank.
        let bank = Arc::get_mut(&mut self.bank).expect("no batch is being coded");
        for (index, root) in self.new_roots.drain(..) {
            bank.add_root(index, &root);
        }
        if let Some(plans) = planned {
            self.start_batch(plans);
        }
        // Written while the workers code the next batch.
        match coded {
            Some((pending, plans)) => self.write_batch(pending, plans),
            None => Ok(()),
        }
    }

    /// Plans the waiting records in order: level, own frames, frame buffers.
    fn plan_batch(&mut self) -> Vec<Plan> {
        let copts = self.opts.context;
        let base = self.count + self.in_flight.as_ref().map_or(0, |f| f.len);
        let mut plans = Vec::with_capacity(self.pending.len());
        for (j, p) in self.pending.iter().enumerate() {
            let index = base + j as u64;
            let (stack, last_use) = self.stacks.entry(p.context).or_default();
            *last_use = index;
            let level = stack.next_level(&copts);
            let mut own = Vec::new();
            stack.frame_indices(&copts, &mut own);
            let frames = stack.frame_buffers(&copts).cloned().collect();
            self.frame_bytes -= stack.bytes();
            stack.push(index, &p.record, level, &copts, &mut self.frame_pool);
            self.frame_bytes += stack.bytes();
            plans.push(Plan {
                level,
                own,
                frames,
                refs: Vec::new(),
                payload: Vec::new(),
                result: Ok(()),
            });
        }
        plans
    }

    /// Starts coding the waiting records (planned as `plans`): in the background on the worker
    /// threads, or here and now with one worker.
    fn start_batch(&mut self, mut plans: Vec<Plan>) {
        let mut pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let (tx, done) = mpsc::channel();
        self.in_flight = Some(InFlight {
            len: pending.len() as u64,
            done,
        });
        let bank = Arc::clone(&self.bank);
        let workers = Arc::clone(&self.workers);
        let parallel = self.threads.is_some();
        let job = move || {
            // A panic (a bug) becomes the batch's error instead of aborting the process.
            let coded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let code = |j: usize, plan: &mut Plan| {
                    let w = rayon::current_thread_index().unwrap_or(0) % workers.len();
                    let mut guard = workers[w].lock().unwrap_or_else(|e| e.into_inner());
                    let worker = &mut *guard;
                    let record = &pending[j].record;
                    bank.references_with(&mut worker.shared, &plan.own, record, &mut plan.refs);
                    let frames = plan
                        .refs
                        .iter()
                        .filter_map(|&r| bank.root(r))
                        .chain(plan.frames.iter().map(|b| &b[..]));
                    plan.result =
                        worker
                            .encoder
                            .encode_with_frame_iter(frames, record, &mut plan.payload);
                };
                if parallel {
                    // Small pieces: rayon otherwise splits a batch into one run per thread and
                    // halves once more, and a worker done with its runs idles while another
                    // finishes a run of a quarter of the batch (traced: 3-6 ms of every 15 ms
                    // batch on chat-train, two threads).
                    plans
                        .par_iter_mut()
                        .with_max_len(4)
                        .enumerate()
                        .for_each(|(j, p)| code(j, p));
                } else {
                    plans.iter_mut().enumerate().for_each(|(j, p)| code(j, p));
                }
            }));
            // The bank is written only once every clone is gone: drop ours before reporting.
            drop(bank);
            drop(workers);
            let report = match coded {
                Ok(()) => Ok((std::mem::take(&mut pending), plans)),
                Err(panic) => Err(panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned())),
            };
            // The writer may have been dropped meanwhile; then nobody waits for the batch.
            let _ = tx.send(report);
        };
        match &self.threads {
            Some(pool) => {
                pool.spawn(job);
                // The woken worker may be queued on this thread's core while the other core
                // idles: measured, batches then started 2-3 ms late, until this thread next
                // blocked. Yielding lets it start now.
                std::thread::yield_now();
            }
            None => job(),
        }
    }

    /// Waits for the batch in flight, if any, and returns it coded.
    fn take_in_flight(&mut self) -> Result<Option<CodedBatch>> {
        let Some(flight) = self.in_flight.take() else {
            return Ok(None);
        };
        match flight.done.recv() {
            Ok(Ok(coded)) => Ok(Some(coded)),
            Ok(Err(panic)) => Err(Error::invalid(format!(
                "a batch worker panicked (a bug; please report it): {panic}"
            ))),
            Err(_) => Err(Error::invalid(
                "a batch worker stopped before finishing its batch",
            )),
        }
    }

    /// Writes a coded batch in order; its roots wait in `new_roots` for the bank.
    fn write_batch(&mut self, pending: Vec<Pending>, plans: Vec<Plan>) -> Result<()> {
        let mut outcome = Ok(());
        for (p, plan) in pending.iter().zip(plans) {
            if outcome.is_ok() {
                outcome = plan.result.and_then(|()| {
                    self.commit(p.context, plan.level, &plan.refs, &plan.payload, &p.record)
                });
            }
        }
        for p in pending {
            self.record_pool.release(p.record);
        }
        outcome
    }

    /// Codes and writes every record added so far (records are also coded when their batch is
    /// full, and written at the next batch or at [`finish`](Self::finish)).
    pub fn flush(&mut self) -> Result<()> {
        self.check()?;
        let flushed = self.flush_unchecked();
        self.note(flushed)
    }

    fn flush_unchecked(&mut self) -> Result<()> {
        self.flush_batch()?;
        // The batch just started: wait for it and write it too.
        if let Some((pending, plans)) = self.take_in_flight()? {
            self.write_batch(pending, plans)?;
        }
        Ok(())
    }

    /// Writes a coded record and its index entry; feeds the Σ-bank and the checksums.
    fn commit(
        &mut self,
        cid: u32,
        level: Level,
        refs: &[u64],
        payload: &[u8],
        record: &[u8],
    ) -> Result<()> {
        let index = self.count;
        self.inner.write_all(payload)?;
        self.block_crc.update(payload);
        self.content_crc.update(record);
        varint::write(&mut self.entries, payload.len() as u64);
        let has_refs = !refs.is_empty();
        varint::write(
            &mut self.entries,
            u64::from(cid) << 3 | u64::from(has_refs) << 2 | level as u64,
        );
        if has_refs {
            varint::write(&mut self.entries, refs.len() as u64);
            for &r in refs {
                varint::write(&mut self.entries, index - r);
            }
        }
        if level == Level::Root && !has_refs {
            if self.opts.batch_records > 1 {
                self.new_roots.push((index, record.to_vec()));
            } else {
                Arc::get_mut(&mut self.bank)
                    .expect("no batch is being coded without batches")
                    .add_root(index, record);
            }
        }
        self.count += 1;
        self.offset += payload.len() as u64;
        self.bytes_in += record.len() as u64;
        if self.count % u64::from(self.opts.block_records) == 0 {
            self.end_block();
        }
        self.evict(cid);
        Ok(())
    }

    /// The counters of every encoder of this writer, summed.
    pub fn stats(&self) -> EncoderStats {
        let mut total = self.encoder.stats();
        for w in self.workers.iter() {
            let w = w.lock().unwrap_or_else(|e| e.into_inner());
            total.merge(&w.encoder.stats());
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

    fn end_block(&mut self) {
        self.block_crcs
            .push((self.block_crc.finish(), self.content_crc.finish()));
        self.block_crc = Crc32c::new();
        self.content_crc = Crc32c::new();
    }

    /// Records added so far (coded or waiting in the batch).
    pub fn len(&self) -> u64 {
        self.count + self.in_flight.as_ref().map_or(0, |f| f.len) + self.pending.len() as u64
    }

    /// Whether no record was added yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// The frame pool's counters.
    pub fn frame_stats(&self) -> FramePoolStats {
        self.frame_pool.stats()
    }

    /// Codes what waits in the batch, writes the index and footer; returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.flush()?;
        if self.count % u64::from(self.opts.block_records) != 0 {
            self.end_block();
        }
        let c = &self.opts.context;
        let mut idx = Vec::with_capacity(self.entries.len() + 8 * self.block_crcs.len() + 64);
        varint::write(&mut idx, self.count);
        varint::write(&mut idx, u64::from(self.opts.block_records));
        varint::write(&mut idx, u64::from(c.keyframe_interval));
        varint::write(&mut idx, u64::from(c.keyframes_per_root));
        varint::write(&mut idx, u64::from(c.max_frames));
        varint::write(&mut idx, c.window);
        idx.extend_from_slice(&self.entries);
        for (p, d) in &self.block_crcs {
            idx.extend_from_slice(&p.to_le_bytes());
            idx.extend_from_slice(&d.to_le_bytes());
        }
        idx.extend_from_slice(&crc32c(&idx).to_le_bytes());
        idx.extend_from_slice(&self.offset.to_le_bytes());
        idx.extend_from_slice(&END_MAGIC);
        self.inner.write_all(&idx)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// What the index says of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// Offset of the record's payload in the file.
    pub offset: u64,
    /// Length of the payload.
    pub payload_len: u64,
    /// The record's context (0: the default context).
    pub context: u32,
    /// How the record depends on its context.
    pub level: Level,
    /// The record it depends on directly: for a delta, the previous record of its context; for
    /// a keyframe, the previous keyframe of its context; none for a root.
    pub prev: Option<u64>,
}

/// Reads an archive with random access.
pub struct ArchiveReader<R: Read + Seek> {
    inner: R,
    header: FileHeader,
    /// The index, shared with the readers [`walk_parallel`](Self::walk_parallel) starts.
    index: Arc<Index>,
    block_records: u64,
    context: ContextOptions,
    decoder: Option<Decoder>,
    block: Vec<u8>,
    /// The block held in `block` (verified), if any.
    block_no: Option<u64>,
    /// Recently decoded records by index, and the order they came in (oldest first, the first
    /// to leave): a lookup is a hash probe, not a scan of the cache.
    cache: HashMap<u64, Vec<u8>>,
    cache_order: VecDeque<u64>,
    cache_bytes: usize,
    /// The most bytes `cache` holds.
    cache_limit: usize,
    /// Bytes the last `get` read from the file.
    last_read: u64,
}

/// What an archive reader reads at open and never changes: metadata, record index, Σ-bank
/// references and block checksums.
#[derive(Debug)]
struct Index {
    metadata: Vec<u8>,
    records: Vec<RecordInfo>,
    /// The bank roots each record references (only records that reference any).
    refs: HashMap<u64, Vec<u64>>,
    block_crcs: Vec<(u32, u32)>,
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

    /// Decodes every record in order, calling `each(n, result)`, and checks every block's
    /// checksum of decoded content. Damage is reported per record and does not stop the walk:
    /// the records it does not touch still decode. Returns the number of failed records.
    pub fn walk(&mut self, mut each: impl FnMut(u64, Result<&[u8]>)) -> u64 {
        self.walk_until(|n, r| {
            each(n, r);
            std::ops::ControlFlow::Continue(())
        })
    }

    /// As [`walk`](Self::walk), stopping as soon as `each` returns `Break`.
    pub fn walk_until(
        &mut self,
        mut each: impl FnMut(u64, Result<&[u8]>) -> std::ops::ControlFlow<()>,
    ) -> u64 {
        let mut failed = 0;
        self.walk_blocks(0..self.len(), |n, r| {
            failed += u64::from(r.is_err());
            each(n, r)
        });
        failed
    }

    /// Walks the records `range` (whole blocks: it starts on a block boundary and ends on
    /// one or at the end) as [`walk_until`](Self::walk_until) does.
    fn walk_blocks(
        &mut self,
        range: std::ops::Range<u64>,
        mut each: impl FnMut(u64, Result<&[u8]>) -> std::ops::ControlFlow<()>,
    ) {
        let mut block_content = Crc32c::new();
        let mut block_ok = true;
        let mut block_members: Vec<u64> = Vec::new();
        let mut out = Vec::new();
        let len = self.len();
        for n in range {
            out.clear();
            match self.get_into(n, &mut out) {
                Ok(()) => {
                    block_content.update(&out);
                    block_members.push(n);
                    if each(n, Ok(&out)).is_break() {
                        return;
                    }
                }
                Err(e) => {
                    block_ok = false;
                    if each(n, Err(e)).is_break() {
                        return;
                    }
                }
            }
            let end_of_block = (n + 1) % self.block_records == 0 || n + 1 == len;
            if end_of_block {
                let block = (n / self.block_records) as usize;
                let stored = self.index.block_crcs[block].1;
                if block_ok && stored != block_content.finish() {
                    // Every record decoded, yet the content differs: report each one.
                    for &m in &block_members {
                        let damaged = Error::new(ErrorKind::Checksum {
                            what: "a block's decoded records",
                            expected: stored,
                            found: block_content.finish(),
                        })
                        .within(format!("record {m}, in block {block}"));
                        if each(m, Err(damaged)).is_break() {
                            return;
                        }
                    }
                }
                block_content = Crc32c::new();
                block_ok = true;
                block_members.clear();
            }
        }
    }

    /// As [`walk_until`](Self::walk_until), decoding on `threads` worker threads (0: one per
    /// core). Each worker reads the archive through a source of its own from `open` (the same
    /// bytes as this reader's, e.g. the file opened again) and shares this reader's index and
    /// codebook; the workers' record caches together hold what this reader's holds. Runs of
    /// blocks go to the workers; `each` is called on this thread with the same records and
    /// results, in the same order, as `walk_until` would call it. At most two runs a worker are
    /// decoded ahead of `each`, and a run holds at most 8 MiB of decoded records (plus one
    /// record) until its turn comes; past that its worker waits, then hands its records over as
    /// it goes. A record whose context starts before its run is decoded again
    /// by the run's worker (its chain is bounded by the keyframe options), so the total work
    /// grows a little with the number of threads.
    ///
    /// # Errors
    /// If `open` fails for a worker, or a worker panics; records already reported stay
    /// reported.
    pub fn walk_parallel<S, F>(
        &mut self,
        open: F,
        threads: usize,
        each: impl FnMut(u64, Result<&[u8]>) -> std::ops::ControlFlow<()>,
    ) -> Result<u64>
    where
        S: Read + Seek,
        F: Fn() -> std::io::Result<S> + Sync,
    {
        /// Blocks a worker decodes at a time.
        const RUN_BLOCKS: u64 = 64;
        /// Decoded bytes a run waiting for its turn holds at most (plus one record).
        const RUN_BYTES: usize = 8 << 20;
        self.walk_in_runs(open, threads, (RUN_BLOCKS, RUN_BYTES), each)
    }

    /// [`walk_parallel`](Self::walk_parallel) with runs of `run_blocks` blocks, each holding at
    /// most `run_bytes` of decoded records (plus one record) until its turn comes.
    fn walk_in_runs<S, F>(
        &mut self,
        open: F,
        threads: usize,
        (run_blocks, run_bytes): (u64, usize),
        mut each: impl FnMut(u64, Result<&[u8]>) -> std::ops::ControlFlow<()>,
    ) -> Result<u64>
    where
        S: Read + Seek,
        F: Fn() -> std::io::Result<S> + Sync,
    {
        use std::ops::ControlFlow;
        use std::sync::atomic::{AtomicU64, Ordering};
        let n = crate::workers::count(threads);
        if n <= 1 {
            return Ok(self.walk_until(each));
        }
        let len = self.len();
        let run_len = run_blocks.max(1) * self.block_records;
        let cache_limit = self.cache_limit / n;
        let worker_reader = |source: S| ArchiveReader {
            inner: source,
            header: self.header,
            index: Arc::clone(&self.index),
            block_records: self.block_records,
            context: self.context,
            decoder: self
                .decoder
                .as_ref()
                .map(|d| Decoder::new(Arc::clone(d.codebook()))),
            block: Vec::new(),
            block_no: None,
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            cache_bytes: 0,
            cache_limit,
            last_read: 0,
        };
        let runs = len.div_ceil(run_len);
        let ahead = 2 * n as u64;
        let next_run = AtomicU64::new(0);
        let turns = Turns::default();
        /// Records of a run, in order; the last piece of a run says it is the last.
        type Piece = Vec<(u64, Result<Vec<u8>>)>;
        let (tx, rx) = mpsc::channel::<(u64, Result<Piece>, bool)>();
        let mut failed = 0;
        let mut outcome = Ok(());
        std::thread::scope(|scope| {
            for _ in 0..n {
                let tx = tx.clone();
                let (open, next_run, turns) = (&open, &next_run, &turns);
                let worker_reader = &worker_reader;
                scope.spawn(move || {
                    let mut reader = None;
                    loop {
                        let run = next_run.fetch_add(1, Ordering::Relaxed);
                        if run >= runs {
                            return;
                        }
                        if !turns.wait(|delivered| run < delivered + ahead) {
                            return;
                        }
                        // A run not yet being delivered holds at most RUN_BYTES of decoded
                        // records (plus one record); past that its worker waits for its turn,
                        // then hands its records over as it goes.
                        let mut events = Vec::new();
                        let mut held = 0usize;
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                            || -> Result<()> {
                                if reader.is_none() {
                                    reader = Some(worker_reader(open()?));
                                }
                                let reader = reader.as_mut().expect("opened above");
                                let start = run * run_len;
                                reader.walk_blocks(start..(start + run_len).min(len), |m, r| {
                                    held += r.as_ref().map_or(0, |b| b.len());
                                    events.push((m, r.map(<[u8]>::to_vec)));
                                    if held <= run_bytes {
                                        return ControlFlow::Continue(());
                                    }
                                    held = 0;
                                    let piece = std::mem::take(&mut events);
                                    if !turns.wait(|delivered| delivered == run)
                                        || tx.send((run, Ok(piece), false)).is_err()
                                    {
                                        return ControlFlow::Break(());
                                    }
                                    ControlFlow::Continue(())
                                });
                                Ok(())
                            },
                        ))
                        .unwrap_or_else(|_| {
                            Err(Error::invalid(
                                "an archive worker panicked (a bug; please report it)",
                            ))
                        });
                        let last = result.map(|()| std::mem::take(&mut events));
                        if turns.stopped() || tx.send((run, last, true)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            // However this thread leaves (done, stopped early, or `each` panicking), the
            // workers must stop and be woken, or the scope would wait for them forever.
            struct Release<'a>(&'a Turns);
            impl Drop for Release<'_> {
                fn drop(&mut self) {
                    self.0.stop();
                }
            }
            let _release = Release(&turns);
            let mut waiting: std::collections::BTreeMap<u64, VecDeque<(Result<Piece>, bool)>> =
                std::collections::BTreeMap::new();
            let mut next = 0u64;
            'runs: while next < runs {
                while let Some((result, last)) =
                    waiting.get_mut(&next).and_then(VecDeque::pop_front)
                {
                    match result {
                        Ok(events) => {
                            for (m, r) in events {
                                failed += u64::from(r.is_err());
                                let flow = match r {
                                    Ok(bytes) => each(m, Ok(&bytes[..])),
                                    Err(e) => each(m, Err(e)),
                                };
                                if flow.is_break() {
                                    break 'runs;
                                }
                            }
                        }
                        Err(e) => {
                            outcome = Err(e);
                            break 'runs;
                        }
                    }
                    if last {
                        waiting.remove(&next);
                        next += 1;
                        turns.advance(next);
                    }
                }
                if next >= runs {
                    break;
                }
                match rx.recv() {
                    Ok((run, result, last)) => {
                        waiting.entry(run).or_default().push_back((result, last));
                    }
                    Err(_) => {
                        outcome = Err(Error::invalid("the archive workers stopped before the end"));
                        break;
                    }
                }
            }
            drop(rx);
        });
        outcome.map(|()| failed)
    }
}

/// The hand-over between the workers of [`ArchiveReader::walk_parallel`] and the thread that
/// reports their records: how many runs are delivered, and whether the walk is over.
#[derive(Default)]
struct Turns {
    delivered: Mutex<u64>,
    wake: std::sync::Condvar,
    stop: std::sync::atomic::AtomicBool,
}

impl Turns {
    /// Waits until `ready(runs delivered)` holds; false if the walk stopped instead.
    fn wait(&self, ready: impl Fn(u64) -> bool) -> bool {
        let mut delivered = self.delivered.lock().unwrap_or_else(|e| e.into_inner());
        while !ready(*delivered) && !self.stopped() {
            delivered = self.wake.wait(delivered).unwrap_or_else(|e| e.into_inner());
        }
        !self.stopped()
    }

    fn stopped(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `0..next` are delivered.
    fn advance(&self, next: u64) {
        *self.delivered.lock().unwrap_or_else(|e| e.into_inner()) = next;
        self.wake.notify_all();
    }

    /// Ends the walk: workers stop, and those waiting wake.
    fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Taken so that no worker is between its check and its wait.
        drop(self.delivered.lock().unwrap_or_else(|e| e.into_inner()));
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::ops::ControlFlow;

    fn build_with(records: &[&[u8]], context: ContextOptions) -> Vec<u8> {
        let opts = ArchiveOptions {
            block_records: 3,
            context,
            ..ArchiveOptions::default()
        };
        let mut w = ArchiveWriter::with_options(
            Vec::new(),
            Codebook::default_codebook(),
            b"field=text",
            opts,
        )
        .unwrap();
        for r in records {
            w.add(r).unwrap();
        }
        w.finish().unwrap()
    }

    fn build(records: &[&[u8]]) -> Vec<u8> {
        build_with(records, ContextOptions::default())
    }

    fn history(turns: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut body = String::from(r#"{"messages": ["#);
        for t in 0..turns {
            if t > 0 {
                body.push_str(", ");
            }
            body.push_str(&format!(
                r#"{{"role": "user", "content": "question number {t} about rust lifetimes"}}"#
            ));
            out.push(format!("{body}]}}").into_bytes());
        }
        out
    }

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

    fn system_prompt_logs(conversations: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let prompt =
            "You are SupportBot for the Acme Cloud platform. Always answer in a friendly, \
            concise tone; cite the relevant documentation page; never reveal internal ticket \
            numbers; escalate billing disputes to a human agent; format code with fenced blocks; \
            and when unsure, ask one clarifying question before answering. ";
        (0..conversations)
            .map(|c| {
                let key = format!("conv-{c}").into_bytes();
                let text = format!(
                    r#"{{"messages": [{{"role": "system", "content": "{prompt}{prompt}"}}, {{"role": "user", "content": "ticket {c}: my deployment number {} fails"}}]}}"#,
                    c * 7919 % 1000
                );
                (key, text.into_bytes())
            })
            .collect()
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

    /// What a walk reported, in order: each record's bytes or error text.
    type Events = Vec<(u64, std::result::Result<Vec<u8>, String>)>;

    /// Notes record `n`'s report; stops the walk once `events` holds `stop_at`.
    fn note(events: &mut Events, n: u64, r: Result<&[u8]>, stop_at: usize) -> ControlFlow<()> {
        events.push((n, r.map(<[u8]>::to_vec).map_err(|e| e.to_string())));
        if events.len() == stop_at {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// The sequential walk's reports (stopping after `stop_at`) and failure count.
    fn walked<R: Read + Seek>(r: &mut ArchiveReader<R>, stop_at: usize) -> (Events, u64) {
        let mut events = Events::new();
        let failed = r.walk_until(|n, rec| note(&mut events, n, rec, stop_at));
        (events, failed)
    }

    /// The same through `walk_in_runs` on `threads` workers reading `bytes`.
    fn walked_in_runs<R: Read + Seek>(
        r: &mut ArchiveReader<R>,
        bytes: &[u8],
        threads: usize,
        runs: (u64, usize),
        stop_at: usize,
    ) -> (Events, u64) {
        let mut events = Events::new();
        let failed = r
            .walk_in_runs(
                || Ok(Cursor::new(bytes)),
                threads,
                runs,
                |n, rec| note(&mut events, n, rec, stop_at),
            )
            .unwrap();
        (events, failed)
    }

    #[test]
    fn parallel_walks_report_as_the_sequential_walk() {
        // Interleaved conversations (keyed contexts, keyframes, roots) and repeated system
        // prompts (Σ-bank references across contexts), in blocks of 3 records.
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let turns: Vec<Vec<Vec<u8>>> = (0..6).map(|_| history(14)).collect();
        let logs = system_prompt_logs(30);
        for t in 0..14 {
            for (c, conv) in turns.iter().enumerate() {
                records.push((format!("h{c}").into_bytes(), conv[t].clone()));
            }
            records.extend(logs[2 * t..2 * t + 2].iter().cloned());
        }
        let opts = ArchiveOptions {
            block_records: 3,
            context: ContextOptions {
                keyframe_interval: 4,
                keyframes_per_root: 2,
                ..ContextOptions::default()
            },
            ..ArchiveOptions::default()
        };
        let mut w =
            ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
                .unwrap();
        for (k, t) in &records {
            w.add_in_context(Some(k), t).unwrap();
        }
        let intact = w.finish().unwrap();
        let walks = |bytes: &[u8], stop_at: usize| {
            let mut r = ArchiveReader::open(Cursor::new(bytes)).unwrap();
            let one = walked(&mut r, stop_at);
            for threads in [2, 3] {
                // Runs of 2 and 5 blocks may hold only 100 and 1 bytes until their turn: they
                // hand their records over in pieces.
                for runs in [(1, 1 << 20), (2, 100), (5, 1)] {
                    let many = walked_in_runs(&mut r, bytes, threads, runs, stop_at);
                    assert!(many == one, "threads {threads}, runs {runs:?}");
                }
            }
            one
        };
        let (events, failed) = walks(&intact, usize::MAX);
        assert_eq!(failed, 0);
        assert_eq!(events.len(), records.len());
        for (n, r) in &events {
            assert_eq!(r.as_deref().unwrap(), &records[*n as usize].1[..]);
        }
        // Stopped early, the walks stop at the same record.
        assert_eq!(walks(&intact, 40).0.len(), 40);
        // Damage: a payload byte of records at the start, middle and end of the archive (112
        // records, so runs of 1 to 5 blocks cut it into 8 to 38 runs).
        let reader = ArchiveReader::open(Cursor::new(&intact)).unwrap();
        let index_at = |n: u64| reader.info(n).unwrap().offset as usize;
        let mut damaged_total = 0;
        for at in [
            index_at(0) + 2,
            index_at(37) + 5,
            index_at(71) + 1,
            index_at(100) + 3,
        ] {
            let mut bad = intact.clone();
            bad[at] ^= 0x10;
            let (events, failed) = walks(&bad, usize::MAX);
            assert!(failed > 0, "damage at {at}");
            damaged_total += events.iter().filter(|(_, r)| r.is_err()).count();
        }
        assert!(damaged_total > 4);
    }

    #[test]
    fn batches_are_identical_for_any_number_of_threads() {
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (c, conv) in (0..5).map(|c| (c, history(30))) {
            for r in conv {
                records.push((format!("c{c}").into_bytes(), r));
            }
        }
        records.extend(system_prompt_logs(20));
        // Interleave deterministically.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|&i| (i * 7919) % 131);
        let build_with = |threads: usize, batch_records: u32, batch_bytes: usize| {
            let opts = ArchiveOptions {
                batch_records,
                batch_bytes,
                threads,
                ..ArchiveOptions::default()
            };
            let mut w =
                ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
                    .unwrap();
            for &i in &order {
                w.add_in_context(Some(&records[i].0), &records[i].1)
                    .unwrap();
            }
            assert_eq!(w.len(), records.len() as u64);
            w.flush().unwrap();
            let stats = w.stats();
            let bytes = w.finish().unwrap();
            (bytes, stats)
        };
        let build = |threads: usize, batch_records: u32| build_with(threads, batch_records, 0);
        let (one, _) = build(1, 16);
        let (two, stats) = build(2, 16);
        let (three, _) = build(3, 16);
        assert_eq!(one, two);
        assert_eq!(one, three);
        assert!(stats.records >= records.len() as u64);
        assert!(stats.pool.total_acquires >= 2 * records.len() as u64);
        let mut r = ArchiveReader::open(Cursor::new(&two)).unwrap();
        for (n, &i) in order.iter().enumerate() {
            assert_eq!(r.get(n as u64).unwrap(), records[i].1, "record {n}");
        }
        // Batches cut by bytes (a few records each here): also independent of the threads.
        let (by_bytes, _) = build_with(1, 1000, 700);
        assert_eq!(by_bytes, build_with(2, 1000, 700).0);
        let mut r = ArchiveReader::open(Cursor::new(&by_bytes)).unwrap();
        assert_eq!(
            r.walk(|n, rec| assert_eq!(rec.unwrap(), &records[order[n as usize]].1[..])),
            0
        );
        // Batches of one code exactly as records added one at a time.
        let (single, _) = build(1, 1);
        let mut r = ArchiveReader::open(Cursor::new(&single)).unwrap();
        assert_eq!(
            r.walk(|n, rec| assert_eq!(rec.unwrap(), &records[order[n as usize]].1[..])),
            0
        );
    }

    #[test]
    fn batch_mode_reuses_frames_instead_of_growing() {
        // Regression: frames returned while a batch still shared them were never reused, so a
        // long pack kept every record's bytes alive.
        let opts = ArchiveOptions {
            batch_records: 64,
            threads: 2,
            ..ArchiveOptions::default()
        };
        let mut w =
            ArchiveWriter::with_options(std::io::sink(), Codebook::default_codebook(), b"", opts)
                .unwrap();
        for i in 0..6000u32 {
            w.add(format!("record {i}: some repeated text about frames and pools").as_bytes())
                .unwrap();
        }
        w.flush().unwrap();
        let f = w.frame_stats();
        assert!(f.frames_created < 600, "{f:?}");
        assert!(f.available <= 1024, "{f:?}");
        w.finish().unwrap();
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
                    .map(|mut r| r.walk(|_, _| {}) == 0 && r.len() == 3);
                assert!(
                    !matches!(ok, Ok(true)),
                    "flip of bit {bit} of byte {i} went unnoticed"
                );
            }
        }
    }

    fn small_archive(n: usize, block_records: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
        let texts: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                format!(
                    "record {i}: the weather in town {} is {}",
                    i % 7,
                    i * 13 % 29
                )
                .into_bytes()
            })
            .collect();
        let opts = ArchiveOptions {
            block_records,
            ..ArchiveOptions::default()
        };
        let mut w =
            ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
                .unwrap();
        for (i, t) in texts.iter().enumerate() {
            let key = format!("k{}", i % 3);
            w.add_in_context(Some(key.as_bytes()), t).unwrap();
        }
        (w.finish().unwrap(), texts)
    }

    /// A panic in `each` (a caller's bug, or an `eprintln!` to a closed pipe) comes out of the
    /// parallel walk: the workers waiting for their turn are stopped and woken, or the scope
    /// would wait for them forever.
    #[test]
    fn a_panicking_each_does_not_hang_the_parallel_walk() {
        let (bytes, _) = small_archive(60, 3); // 20 blocks: 20 runs of 1 block
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut r = ArchiveReader::open(Cursor::new(&bytes[..])).unwrap();
                let _ = r.walk_in_runs(
                    || Ok(Cursor::new(&bytes[..])),
                    2,
                    (1, 1 << 20),
                    |_, _| panic!("each panics"),
                );
            }));
            let _ = tx.send(r.is_err());
        });
        match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(panicked) => assert!(panicked),
            Err(_) => panic!("walk_in_runs hung after `each` panicked"),
        }
    }

    /// Edge cases of the parallel walk: zero records, one block, a length not a multiple of the
    /// run, more threads than runs, `open` failing or panicking for one worker, early breaks.
    #[test]
    fn parallel_walk_edge_cases() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for (count, br) in [(0usize, 3u32), (2, 3), (3, 3), (10, 3), (31, 4)] {
            let (bytes, texts) = small_archive(count, br);
            let mut r = ArchiveReader::open(Cursor::new(&bytes[..])).unwrap();
            let one = walked(&mut r, usize::MAX);
            assert_eq!(one.0.len(), texts.len());
            for threads in [2, 3, 8] {
                for run_blocks in [1, 2, 3, 100] {
                    let many =
                        walked_in_runs(&mut r, &bytes, threads, (run_blocks, 200), usize::MAX);
                    assert!(
                        many == one,
                        "{count} records, {threads} threads, runs {run_blocks}"
                    );
                    // Break at each position.
                    for stop in 1..=count.min(7) {
                        let mut got = 0;
                        r.walk_in_runs(
                            || Ok(Cursor::new(&bytes[..])),
                            threads,
                            (run_blocks, 200),
                            |_, _| {
                                got += 1;
                                if got == stop {
                                    ControlFlow::Break(())
                                } else {
                                    ControlFlow::Continue(())
                                }
                            },
                        )
                        .unwrap();
                        assert_eq!(got, stop);
                    }
                }
            }
            if count >= 10 {
                // The second open fails; the third panics.
                let calls = AtomicUsize::new(0);
                let open = || match calls.fetch_add(1, Ordering::SeqCst) {
                    1 => Err(std::io::Error::other("no more files")),
                    2 => panic!("open panics"),
                    _ => Ok(Cursor::new(&bytes[..])),
                };
                let mut seen = 0;
                let res = r.walk_in_runs(open, 3, (1, 1 << 20), |_, _| {
                    seen += 1;
                    ControlFlow::Continue(())
                });
                // Whether this fails depends on scheduling (one worker may take every run
                // with the first open): no hang either way, and an Ok walk saw every record.
                assert!(res.is_err() || seen == count, "{res:?}");
                // Every worker fails to open: an error, no hang.
                let res = r.walk_in_runs(
                    || -> std::io::Result<Cursor<&[u8]>> { Err(std::io::Error::other("x")) },
                    2,
                    (1, 1 << 20),
                    |_, _| ControlFlow::Continue(()),
                );
                assert!(res.is_err());
            }
        }
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

    /// The walk's second check (a block's decoded content against its stored checksum, each
    /// member reported again as an error) alike in parallel and sequential walks (flipped
    /// payload bytes are caught by the payload checksum first).
    #[test]
    fn content_checksum_failures_report_alike_in_parallel() {
        let (bytes, _) = small_archive(40, 3);
        for bad_block in [0usize, 5, 13] {
            let mut r = ArchiveReader::open(Cursor::new(&bytes[..])).unwrap();
            Arc::get_mut(&mut r.index).unwrap().block_crcs[bad_block].1 ^= 1;
            let one = walked(&mut r, usize::MAX);
            assert!(one.1 >= 1);
            for threads in [2, 3] {
                for run_blocks in [1, 2, 4] {
                    let many =
                        walked_in_runs(&mut r, &bytes, threads, (run_blocks, 200), usize::MAX);
                    assert!(many == one);
                }
            }
        }
    }
}
