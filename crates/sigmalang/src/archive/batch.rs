//! The batch encoder of [`ArchiveWriter`]: records are planned in order (levels and frames),
//! coded on the worker threads while the next batch fills, and written in order.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use super::writer::Coder;
use super::{ArchiveOptions, ArchiveWriter};
use crate::bank::Bank;
use crate::codebook::Codebook;
use crate::context::{ContextStack, Dependency, FramePool, GroupOptions};
use crate::error::{Error, Result};
use crate::pool::GlyphBufferPool;
use crate::primer::Primer;
use crate::record::{Encoder, EncoderStats};
use crate::workers::{Bound, Workers};

/// Records a worker codes in one job: small pieces, so that a worker done with its jobs does
/// not idle while another finishes a long run of the batch.
const JOB_RECORDS: usize = 4;

/// A worker of the batch encoder: an encoder and its Σ-bank lookup scratch.
pub(super) struct Worker {
    pub(super) encoder: Encoder,
    pub(super) shared: Vec<(u64, usize)>,
}

/// A record waiting in the batch, or a page of records (block mode).
pub(super) struct Pending {
    pub(super) context: u32,
    pub(super) record: Vec<u8>,
    /// A page's records (context id and decoded length of each, in order; `record` holds them
    /// concatenated); empty for a record.
    pub(super) members: Vec<(u32, u64)>,
    /// A page's layout (see `pages.rs`).
    pub(super) layout: u64,
}

impl Pending {
    /// The records it holds.
    pub(super) fn records(&self) -> u64 {
        (self.members.len() as u64).max(1)
    }
}

/// How a batch record is coded: planned in order, coded in parallel.
pub(super) struct Plan {
    pub(super) level: Dependency,
    pub(super) own: Vec<u64>,
    pub(super) frames: Vec<Arc<Vec<u8>>>,
    pub(super) refs: Vec<u64>,
    pub(super) payload: Vec<u8>,
    pub(super) result: Result<()>,
    /// A copy (FORMAT.md §5.8): not coded, written as a copy of this record.
    pub(super) copy_of: Option<u64>,
}

/// Records and their plans, payloads filled in: a job's, or a whole batch's.
pub(super) type CodedBatch = (Vec<Pending>, Vec<Plan>);

/// A batch handed to the workers, in jobs of [`JOB_RECORDS`] records that come back, coded, in
/// order; they read the Σ-bank it was lent.
pub(super) struct InFlight {
    /// The batch's first record, its records and its jobs.
    pub(super) first: u64,
    pub(super) len: u64,
    /// The records it holds (more than `len` if it holds pages), and the first of each job.
    pub(super) records: u64,
    pub(super) job_starts: Vec<u64>,
    pub(super) jobs: usize,
    pub(super) bank: Arc<Bank>,
}

/// Where the batch encoder's Σ-bank is. A batch reads the bank while it is coded, and roots
/// enter it only between batches: the bank goes with the batch being coded and comes back once
/// all its jobs are done, so that no two can hold it at once.
pub(super) enum BankSlot {
    /// Here, no batch is being coded.
    Here(Bank),
    /// With the batch being coded.
    Lent(InFlight),
    /// Gone with a batch that did not give it back (the writer has failed).
    Lost,
}

/// The batch encoder: workers, the records waiting, the Σ-bank (with the batch being coded, if
/// any), and the roots waiting to enter it.
pub(super) struct Batches {
    /// One batch at most is in flight, and batches are bounded by the archive options
    /// (`batch_records`, `batch_bytes`): the pool needs no bound of its own.
    pub(super) workers: Workers<'static, Worker, CodedBatch>,
    pub(super) pending: Vec<Pending>,
    /// Bytes of the records in `pending`.
    pub(super) pending_bytes: usize,
    pub(super) bank: BankSlot,
    /// Roots of the batch last written, entering the Σ-bank once no batch is being coded.
    pub(super) new_roots: Vec<(u64, Vec<u8>)>,
    /// Records are JSON-lines forms (`ArchiveOptions::json_lines`): a fields form is coded
    /// against its last frame (`jsonform::against`).
    pub(super) json_lines: bool,
}

impl Batches {
    /// A batch encoder for `opts` (`opts.worker_count()` workers) coding with `codebook`.
    /// Each worker codes after `primer` (`ADAPTIVE` if its flag says so), if any, with its own
    /// copy of the primer's state.
    pub(super) fn new(
        codebook: &Arc<Codebook>,
        opts: &ArchiveOptions,
        primer: Option<(Arc<Primer>, bool)>,
    ) -> Result<Batches> {
        let (codebook, config) = (Arc::clone(codebook), opts.encoder);
        let factory = move || {
            let mut encoder = Encoder::with_config(Arc::clone(&codebook), config);
            if let Some((p, adaptive)) = &primer {
                encoder.set_primer(Some(Arc::clone(p)), *adaptive);
            }
            Worker {
                encoder,
                shared: Vec::new(),
            }
        };
        let unbounded = Bound {
            jobs_per_worker: usize::MAX,
            bytes: usize::MAX,
        };
        Ok(Batches {
            workers: Workers::start_helping(opts.worker_count(), "batch", factory, unbounded)?,
            pending: Vec::new(),
            pending_bytes: 0,
            bank: BankSlot::Here(Bank::new(opts.bank)),
            new_roots: Vec::new(),
            json_lines: opts.json_lines,
        })
    }

    /// Queues one record (not a page) of context `context` for the next batch, in a buffer of
    /// `pool`.
    pub(super) fn push_record(&mut self, context: u32, record: &[u8], pool: &mut GlyphBufferPool) {
        let mut buf = pool.acquire();
        buf.extend_from_slice(record);
        self.pending.push(Pending {
            context,
            record: buf,
            members: Vec::new(),
            layout: 0,
        });
        self.pending_bytes += record.len();
    }

    /// Records added and not written yet: being coded or waiting.
    pub(super) fn waiting(&self) -> u64 {
        // A writer holds records or pages, never both: records are counted without a walk
        // (this is asked at every record added).
        let pending = match self.pending.first() {
            Some(p) if !p.members.is_empty() => self.pending.iter().map(Pending::records).sum(),
            _ => self.pending.len() as u64,
        };
        self.in_flight() + pending
    }

    /// Records being coded.
    fn in_flight(&self) -> u64 {
        match &self.bank {
            BankSlot::Lent(flight) => flight.records,
            BankSlot::Here(_) | BankSlot::Lost => 0,
        }
    }

    /// Adds the counters of every worker's encoder to `total`.
    pub(super) fn merge_stats(&self, total: &mut EncoderStats) {
        self.workers
            .for_each_state(|w| total.merge(&w.encoder.stats()));
    }

    /// Waits for the batch being coded, if any; returns the bank and the coded batch.
    fn take_bank(&mut self) -> Result<(Bank, Option<CodedBatch>)> {
        let flight = match std::mem::replace(&mut self.bank, BankSlot::Lost) {
            BankSlot::Here(bank) => return Ok((bank, None)),
            BankSlot::Lent(flight) => flight,
            BankSlot::Lost => {
                return Err(Error::invalid(
                    "a batch worker stopped before finishing its batch",
                ))
            }
        };
        let len = flight.len as usize;
        let (mut pending, mut plans) = (Vec::with_capacity(len), Vec::with_capacity(len));
        let mut outcome = Ok(());
        for job in 0..flight.jobs {
            match self.workers.take() {
                Some(Ok((p, c))) => {
                    pending.extend(p);
                    plans.extend(c);
                }
                Some(Err(e)) => {
                    if outcome.is_ok() {
                        let first = flight.job_starts[job];
                        let last = flight
                            .job_starts
                            .get(job + 1)
                            .copied()
                            .unwrap_or(flight.first + flight.records);
                        outcome = Err(e.within(format!("records {first}..{last}")));
                    }
                }
                None => break,
            }
        }
        // Every job of the batch is done, and the bank it read with it.
        let bank = Arc::try_unwrap(flight.bank)
            .map_err(|_| Error::invalid("a batch worker kept the Σ-bank past its batch"))?;
        match outcome {
            Ok(()) => Ok((bank, Some((pending, plans)))),
            Err(e) => {
                self.bank = BankSlot::Here(bank);
                Err(e)
            }
        }
    }

    /// Starts coding the waiting records, the first of which is record `first` (planned as
    /// `plans`), against `bank`: in the background on the worker threads, or here and now with
    /// one worker.
    fn start(&mut self, plans: Vec<Plan>, bank: Bank, first: u64) {
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let bank = Arc::new(bank);
        let len = pending.len() as u64;
        let total: u64 = pending.iter().map(Pending::records).sum();
        // A page is a job of its own: pages are large, and coded in parallel.
        let per_job = match pending.first() {
            Some(p) if !p.members.is_empty() => 1,
            _ => JOB_RECORDS,
        };
        let (mut records, mut plans) = (pending.into_iter(), plans.into_iter());
        let mut jobs = 0;
        let mut job_starts = Vec::new();
        let mut at = first;
        loop {
            let group: Vec<Pending> = records.by_ref().take(per_job).collect();
            if group.is_empty() {
                break;
            }
            job_starts.push(at);
            at += group.iter().map(Pending::records).sum::<u64>();
            let mut group_plans: Vec<Plan> = plans.by_ref().take(group.len()).collect();
            let cost = group.iter().map(|p| p.record.len()).sum();
            let bank = Arc::clone(&bank);
            let json_lines = self.json_lines;
            self.workers.submit(cost, move |worker: &mut Worker, _| {
                let mut against = Vec::new();
                for (p, plan) in group.iter().zip(&mut group_plans) {
                    let record = &p.record;
                    if plan.copy_of.is_some() {
                        continue;
                    }
                    if !p.members.is_empty() {
                        plan.result = worker.encoder.encode_page(record, &mut plan.payload);
                        continue;
                    }
                    bank.references_with(&mut worker.shared, &plan.own, record, &mut plan.refs);
                    let frames = plan
                        .refs
                        .iter()
                        .filter_map(|&r| bank.root(r))
                        .chain(plan.frames.iter().map(|b| &b[..]));
                    // A form's values may be coded against its last frame's (§5.5).
                    against.clear();
                    let coded = if json_lines
                        && crate::jsonform::against(record, frames.clone().last(), &mut against)
                    {
                        &against[..]
                    } else {
                        &record[..]
                    };
                    plan.result =
                        worker
                            .encoder
                            .encode_with_frame_iter(frames, coded, &mut plan.payload);
                }
                (group, group_plans)
            });
            jobs += 1;
        }
        self.bank = BankSlot::Lent(InFlight {
            first,
            len,
            records: total,
            job_starts,
            jobs,
            bank,
        });
    }
}

/// Plans the records `pending`, the first of which will be record `base`, in order: level, own
/// frames and frame buffers of each, pushed onto its context's stack.
fn plan_batch(
    pending: &[Pending],
    base: u64,
    copies: &mut std::collections::BTreeMap<u64, u64>,
    copts: &GroupOptions,
    stacks: &mut HashMap<u32, (ContextStack, u64)>,
    frame_bytes: &mut u64,
    frame_pool: &mut FramePool,
) -> Vec<Plan> {
    let mut plans = Vec::with_capacity(pending.len());
    for (j, p) in pending.iter().enumerate() {
        if !p.members.is_empty() {
            // A page depends on nothing.
            plans.push(Plan {
                level: Dependency::Root,
                own: Vec::new(),
                frames: Vec::new(),
                refs: Vec::new(),
                payload: Vec::new(),
                result: Ok(()),
                copy_of: None,
            });
            continue;
        }
        let index = base + j as u64;
        if let Some(source) = copies.remove(&index) {
            // A copy: in no context's chain, not coded.
            plans.push(Plan {
                level: Dependency::Copy,
                own: Vec::new(),
                frames: Vec::new(),
                refs: Vec::new(),
                payload: Vec::new(),
                result: Ok(()),
                copy_of: Some(source),
            });
            continue;
        }
        let (stack, last_use) = stacks.entry(p.context).or_default();
        *last_use = index;
        let level = stack.next_level(copts);
        let mut own = Vec::new();
        stack.frame_indices(copts, &mut own);
        let frames = stack.frame_buffers(copts).cloned().collect();
        *frame_bytes -= stack.bytes();
        stack.push(index, &p.record, level, copts, frame_pool);
        *frame_bytes += stack.bytes();
        plans.push(Plan {
            level,
            own,
            frames,
            refs: Vec::new(),
            payload: Vec::new(),
            result: Ok(()),
            copy_of: None,
        });
    }
    plans
}

impl<W: Write> ArchiveWriter<W> {
    /// Hands the waiting records to the workers: plans them in order (levels and frames), writes
    /// the batch handed over before (whose coding overlapped the filling of this one), then
    /// starts coding this one. A batch's Σ-bank lookups see every batch written before it, and
    /// planning a batch precedes writing the previous one, whatever the number of workers, so
    /// the output does not depend on it. Records coded one at a time never wait.
    pub(super) fn flush_batch(&mut self) -> Result<()> {
        let Coder::Batches(batches) = &mut self.coder else {
            return Ok(());
        };
        let first = self.index.len() + batches.in_flight();
        let planned = if batches.pending.is_empty() {
            None
        } else {
            Some(plan_batch(
                &batches.pending,
                first,
                &mut self.copies,
                &self.opts.context,
                &mut self.stacks,
                &mut self.frame_bytes,
                &mut self.frame_pool,
            ))
        };
        let (mut bank, coded) = batches.take_bank()?;
        // No batch is being coded now: the roots of the batch written before enter the bank.
        for (index, root) in batches.new_roots.drain(..) {
            bank.add_root(index, &root);
        }
        match planned {
            Some(plans) => batches.start(plans, bank, first),
            None => batches.bank = BankSlot::Here(bank),
        }
        // Written while the workers code the next batch.
        match coded {
            Some((pending, plans)) => self.write_batch(pending, plans),
            None => Ok(()),
        }
    }

    /// Codes and writes every record added so far: the waiting records, and the batch they
    /// become.
    pub(super) fn flush_unchecked(&mut self) -> Result<()> {
        self.flush_batch()?;
        let Coder::Batches(batches) = &mut self.coder else {
            return Ok(());
        };
        // The batch just started: wait for it and write it too.
        let (bank, coded) = batches.take_bank()?;
        batches.bank = BankSlot::Here(bank);
        if let Some((pending, plans)) = coded {
            self.write_batch(pending, plans)?;
        }
        Ok(())
    }

    /// Writes a coded batch in order; its roots wait in `new_roots` for the bank.
    fn write_batch(&mut self, pending: Vec<Pending>, plans: Vec<Plan>) -> Result<()> {
        let mut outcome = Ok(());
        for (p, plan) in pending.iter().zip(plans) {
            if outcome.is_ok() {
                outcome = plan.result.and_then(|()| {
                    if let Some(source) = plan.copy_of {
                        self.commit_copy(p.context, source, &p.record);
                        Ok(())
                    } else if p.members.is_empty() {
                        self.commit(p.context, plan.level, &plan.refs, &plan.payload, &p.record)
                    } else {
                        self.commit_page(&p.members, p.layout, &plan.payload, &p.record)
                    }
                });
            }
        }
        for p in pending {
            if p.members.is_empty() {
                self.record_pool.release(p.record);
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use crate::archive::testing::*;
    use crate::archive::{ArchiveOptions, ArchiveReader, ArchiveWriter};
    use crate::codebook::Codebook;
    use std::io::Cursor;

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
                w.add_in_group(Some(&records[i].0), &records[i].1).unwrap();
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
        let mut r = ArchiveReader::open(Cursor::new(&two)).unwrap();
        // Repeated records are copies (FORMAT.md §5.8), written but not coded.
        let copies = (0..r.len())
            .filter(|&n| r.info(n).unwrap().dependency == crate::Dependency::Copy)
            .count() as u64;
        assert!(copies > 0);
        let coded = records.len() as u64 - copies;
        assert!(stats.records >= coded);
        assert!(stats.pool.total_acquires >= 2 * coded);
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
        // Frames a batch still shares when they are returned must be reused once it is done,
        // or a long pack keeps every record's bytes alive.
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
}
