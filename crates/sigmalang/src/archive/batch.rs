//! The batch encoder of [`ArchiveWriter`]: records are planned in order (levels and frames),
//! coded on the worker threads while the next batch fills, and written in order.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{mpsc, Arc, Mutex};

use rayon::prelude::*;

use super::writer::Coder;
use super::{ArchiveOptions, ArchiveWriter};
use crate::bank::Bank;
use crate::codebook::Codebook;
use crate::context::{ContextStack, Dependency, FramePool, GroupOptions};
use crate::error::{Error, Result};
use crate::record::{Encoder, EncoderStats};

/// A worker of the batch encoder: an encoder and its Σ-bank lookup scratch.
pub(super) struct Worker {
    pub(super) encoder: Encoder,
    pub(super) shared: Vec<(u64, usize)>,
}

/// A record waiting in the batch.
pub(super) struct Pending {
    pub(super) context: u32,
    pub(super) record: Vec<u8>,
}

/// How a batch record is coded: planned in order, coded in parallel.
pub(super) struct Plan {
    pub(super) level: Dependency,
    pub(super) own: Vec<u64>,
    pub(super) frames: Vec<Arc<Vec<u8>>>,
    pub(super) refs: Vec<u64>,
    pub(super) payload: Vec<u8>,
    pub(super) result: Result<()>,
}

/// A batch's records and their plans, payloads filled in.
pub(super) type CodedBatch = (Vec<Pending>, Vec<Plan>);

/// What a batch handed to the workers sends back: the Σ-bank it was lent, and the coded batch
/// or what a panicking worker said.
type Report = (Bank, std::result::Result<CodedBatch, String>);

/// A batch handed to the workers: its records and plans come back, coded, on `done`.
pub(super) struct InFlight {
    pub(super) len: u64,
    pub(super) done: mpsc::Receiver<Report>,
}

/// Where the batch encoder's Σ-bank is. A batch reads the bank while it is coded, and roots
/// enter it only between batches: the bank goes with the batch being coded and comes back with
/// its report, so that no two can hold it at once.
pub(super) enum BankSlot {
    /// Here, no batch is being coded.
    Here(Bank),
    /// With the batch being coded.
    Lent(InFlight),
    /// Gone with a batch whose worker stopped without reporting (the writer has failed).
    Lost,
}

/// The batch encoder: workers, their threads, the records waiting, the Σ-bank (with the batch
/// being coded, if any), and the roots waiting to enter it.
pub(super) struct Batches {
    pub(super) workers: Arc<Vec<Mutex<Worker>>>,
    pub(super) threads: Option<rayon::ThreadPool>,
    pub(super) pending: Vec<Pending>,
    /// Bytes of the records in `pending`.
    pub(super) pending_bytes: usize,
    pub(super) bank: BankSlot,
    /// Roots of the batch last written, entering the Σ-bank once no batch is being coded.
    pub(super) new_roots: Vec<(u64, Vec<u8>)>,
}

impl Batches {
    /// A batch encoder for `opts` (`opts.worker_count()` workers) coding with `codebook`.
    pub(super) fn new(codebook: &Arc<Codebook>, opts: &ArchiveOptions) -> Result<Batches> {
        let n = opts.worker_count();
        let workers = (0..n)
            .map(|_| {
                Mutex::new(Worker {
                    encoder: Encoder::with_config(Arc::clone(codebook), opts.encoder),
                    shared: Vec::new(),
                })
            })
            .collect();
        let threads = match n {
            1 => None,
            n => Some(crate::workers::pool(n, "worker")?),
        };
        Ok(Batches {
            workers: Arc::new(workers),
            threads,
            pending: Vec::new(),
            pending_bytes: 0,
            bank: BankSlot::Here(Bank::new(opts.bank)),
            new_roots: Vec::new(),
        })
    }

    /// Records added and not written yet: being coded or waiting.
    pub(super) fn waiting(&self) -> u64 {
        self.in_flight() + self.pending.len() as u64
    }

    /// Records being coded.
    fn in_flight(&self) -> u64 {
        match &self.bank {
            BankSlot::Lent(flight) => flight.len,
            BankSlot::Here(_) | BankSlot::Lost => 0,
        }
    }

    /// Adds the counters of every worker's encoder to `total`.
    pub(super) fn merge_stats(&self, total: &mut EncoderStats) {
        for w in self.workers.iter() {
            let w = w.lock().unwrap_or_else(|e| e.into_inner());
            total.merge(&w.encoder.stats());
        }
    }

    /// Waits for the batch being coded, if any; returns the bank and the coded batch.
    fn take_bank(&mut self) -> Result<(Bank, Option<CodedBatch>)> {
        match std::mem::replace(&mut self.bank, BankSlot::Lost) {
            BankSlot::Here(bank) => Ok((bank, None)),
            BankSlot::Lent(flight) => match flight.done.recv() {
                Ok((bank, Ok(coded))) => Ok((bank, Some(coded))),
                Ok((bank, Err(panic))) => {
                    self.bank = BankSlot::Here(bank);
                    Err(Error::invalid(format!(
                        "a batch worker panicked (a bug; please report it): {panic}"
                    )))
                }
                Err(_) => Err(Error::invalid(
                    "a batch worker stopped before finishing its batch",
                )),
            },
            BankSlot::Lost => Err(Error::invalid(
                "a batch worker stopped before finishing its batch",
            )),
        }
    }

    /// Starts coding the waiting records (planned as `plans`) against `bank`: in the background
    /// on the worker threads, or here and now with one worker.
    fn start(&mut self, mut plans: Vec<Plan>, bank: Bank) {
        let mut pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let (tx, done) = mpsc::channel();
        self.bank = BankSlot::Lent(InFlight {
            len: pending.len() as u64,
            done,
        });
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
                    // finishes a run of a quarter of the batch.
                    plans
                        .par_iter_mut()
                        .with_max_len(4)
                        .enumerate()
                        .for_each(|(j, p)| code(j, p));
                } else {
                    plans.iter_mut().enumerate().for_each(|(j, p)| code(j, p));
                }
            }));
            let coded = match coded {
                Ok(()) => Ok((std::mem::take(&mut pending), plans)),
                Err(panic) => Err(panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned())),
            };
            // The writer may have been dropped meanwhile; then nobody waits for the batch.
            let _ = tx.send((bank, coded));
        };
        match &self.threads {
            Some(pool) => {
                pool.spawn(job);
                // The woken worker may be queued on this thread's core while the other core
                // idles, and the batch would start only when this thread next blocks:
                // yielding lets it start now.
                std::thread::yield_now();
            }
            None => job(),
        }
    }
}

/// Plans the records `pending`, the first of which will be record `base`, in order: level, own
/// frames and frame buffers of each, pushed onto its context's stack.
fn plan_batch(
    pending: &[Pending],
    base: u64,
    copts: &GroupOptions,
    stacks: &mut HashMap<u32, (ContextStack, u64)>,
    frame_bytes: &mut u64,
    frame_pool: &mut FramePool,
) -> Vec<Plan> {
    let mut plans = Vec::with_capacity(pending.len());
    for (j, p) in pending.iter().enumerate() {
        let index = base + j as u64;
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
        let planned = if batches.pending.is_empty() {
            None
        } else {
            Some(plan_batch(
                &batches.pending,
                self.index.len() + batches.in_flight(),
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
            Some(plans) => batches.start(plans, bank),
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
                    self.commit(p.context, plan.level, &plan.refs, &plan.payload, &p.record)
                });
            }
        }
        for p in pending {
            self.record_pool.release(p.record);
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
