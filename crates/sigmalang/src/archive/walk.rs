//! Walking an archive: every record in order, checking each block's decoded content
//! ([`ArchiveReader::walk`], [`walk_until`](ArchiveReader::walk_until)), and the same on worker
//! threads ([`walk_parallel`](ArchiveReader::walk_parallel)), each worker decoding runs of blocks.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};

use super::reader::ContextState;
use super::ArchiveReader;
use crate::checksum::Crc32c;
use crate::error::{Error, ErrorKind, Result};
use crate::workers::{Bound, Workers};

impl<R: Read + Seek> ArchiveReader<R> {
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
    ///
    /// Linear in the archive: each context keeps its state across the walk (the records its
    /// next ones are coded against, and the failures they inherit), so each record is decoded
    /// once, against frames already at hand. A context whose records before `range` were not
    /// walked (a parallel walk's run), or whose state was dropped to keep the walk's memory
    /// bounded, is brought up to date along its chain, which gives the state a walk from the
    /// first record reaches: what the walk reports does not depend on where it starts.
    pub(super) fn walk_blocks(
        &mut self,
        range: std::ops::Range<u64>,
        mut each: impl FnMut(u64, Result<&[u8]>) -> std::ops::ControlFlow<()>,
    ) {
        let mut block_content = Crc32c::new();
        let mut block_ok = true;
        let mut block_members: Vec<u64> = Vec::new();
        // Context states, each with when it was last used, and the contexts by last use.
        let mut states: HashMap<u32, (ContextState, u64)> = HashMap::new();
        let mut by_use: BTreeMap<u64, u32> = BTreeMap::new();
        let mut held = 0u64;
        let budget = crate::container::WALK_HOLD_BYTES.min(self.archive.memory_limit / 2);
        for n in range {
            let info = self.archive.index.record(n);
            let mut st = match states.remove(&info.group) {
                Some((st, used)) => {
                    by_use.remove(&used);
                    held -= st.held();
                    st
                }
                None => ContextState::default(),
            };
            if !st.continues(info.dependency, info.prev) {
                st = ContextState::default();
                if let Some(p) = info.prev {
                    for r in self.chain(p) {
                        let _ = self.take(&mut st, r);
                    }
                }
            }
            let result = self.take(&mut st, n);
            held += st.held();
            states.insert(info.group, (st, n));
            by_use.insert(n, info.group);
            // Past the budget, drop the least recently used contexts' records.
            while held > budget && by_use.len() > 1 {
                let (_, cid) = by_use.pop_first().expect("non-empty");
                if let Some((old, _)) = states.remove(&cid) {
                    held -= old.held();
                }
            }
            let result = result.and_then(|form| {
                block_content.update(&form);
                if !self.archive.json_lines() {
                    return Ok(form);
                }
                let mut line = Vec::with_capacity(form.len() + form.len() / 8);
                self.archive.unform(n, &form, &mut line)?;
                Ok(std::sync::Arc::new(line))
            });
            match result {
                Ok(bytes) => {
                    block_members.push(n);
                    if each(n, Ok(&bytes)).is_break() {
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
            let block = self.archive.index.block_of(n);
            if n + 1 == self.archive.index.block_span(block).1 {
                let block = block as usize;
                let stored = self.archive.index.block_crcs[block].1;
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
    /// Each worker keeps its reader from run to run (its source is `Send`: the pool holds the
    /// workers' readers).
    ///
    /// # Errors
    /// If `open` fails for a worker, or a worker panics ([`ErrorKind::WorkerPanicked`]);
    /// records already reported stay reported.
    pub fn walk_parallel<S, F>(
        &mut self,
        open: F,
        threads: usize,
        each: impl FnMut(u64, Result<&[u8]>) -> std::ops::ControlFlow<()>,
    ) -> Result<u64>
    where
        S: Read + Seek + Send,
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
    pub(super) fn walk_in_runs<S, F>(
        &mut self,
        open: F,
        threads: usize,
        (run_blocks, run_bytes): (u64, usize),
        mut each: impl FnMut(u64, Result<&[u8]>) -> std::ops::ControlFlow<()>,
    ) -> Result<u64>
    where
        S: Read + Seek + Send,
        F: Fn() -> std::io::Result<S> + Sync,
    {
        use std::ops::ControlFlow;
        let n = crate::workers::count(threads);
        if n <= 1 {
            return Ok(self.walk_until(each));
        }
        let len = self.len();
        // Runs of whole blocks: run `k` starts with block `k * run_blocks`.
        let run_blocks = run_blocks.max(1);
        let runs = self.archive.index.blocks().div_ceil(run_blocks);
        let index = &self.archive.index;
        let run_range = move |run: u64| {
            let next = (run + 1) * run_blocks;
            let end = if next < index.blocks() {
                index.block_span(next).0
            } else {
                len
            };
            index.block_span(run * run_blocks).0..end
        };
        let cache_limit = self.cache_limit / n;
        let archive = &self.archive;
        let open = &open;
        // Two runs a worker in flight, each holding at most `run_bytes` (plus one record) of
        // decoded records until it is the oldest, as each declares.
        let bound = Bound {
            jobs_per_worker: 2,
            bytes: (2 * n).saturating_mul(run_bytes),
        };
        let mut failed = 0;
        std::thread::scope(|scope| {
            // Each worker's state: its reader, opened by its first run. Dropped on the way out
            // however this thread leaves (done, stopped early, or `each` panicking), the pool
            // stops and wakes its workers, and the scope does not wait for them forever.
            let mut workers: Workers<'_, Option<ArchiveReader<S>>, Result<Piece>> =
                Workers::scoped(scope, n, "walker", || None, bound)?;
            let mut next_run = 0;
            loop {
                while next_run < runs && workers.has_room(run_bytes) {
                    let range = run_range(next_run);
                    workers.submit(run_bytes, move |reader, emit| {
                        if reader.is_none() {
                            *reader = Some(archive.reader_with_cache(open()?, cache_limit));
                        }
                        let reader = reader.as_mut().expect("opened above");
                        // Past `run_bytes`, records go over in pieces once the run's turn
                        // comes.
                        let mut events = Vec::new();
                        let mut held = 0usize;
                        reader.walk_blocks(range, |m, r| {
                            held += r.as_ref().map_or(0, |b| b.len());
                            events.push((m, r.map(<[u8]>::to_vec)));
                            if held <= run_bytes {
                                return ControlFlow::Continue(());
                            }
                            held = 0;
                            match emit.send(Ok(std::mem::take(&mut events))) {
                                true => ControlFlow::Continue(()),
                                false => ControlFlow::Break(()),
                            }
                        });
                        Ok(events)
                    });
                    next_run += 1;
                }
                // The oldest run in flight, whose records come next.
                let run = next_run - workers.in_flight() as u64;
                let Some(piece) = workers.take() else {
                    return Ok(());
                };
                let piece = piece.and_then(|p| p).map_err(|e| {
                    let range = run_range(run);
                    e.within(format!("records {}..{}", range.start, range.end))
                })?;
                for (m, r) in piece {
                    failed += u64::from(r.is_err());
                    let flow = match r {
                        Ok(bytes) => each(m, Ok(&bytes[..])),
                        Err(e) => each(m, Err(e)),
                    };
                    if flow.is_break() {
                        return Ok(());
                    }
                }
            }
        })
        .map(|()| failed)
    }
}

/// Records of a run as a worker of [`ArchiveReader::walk_parallel`] hands them over, in order.
type Piece = Vec<(u64, Result<Vec<u8>>)>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::testing::*;
    use crate::archive::{ArchiveOptions, ArchiveReader, ArchiveWriter};
    use crate::codebook::Codebook;
    use crate::context::GroupOptions;
    use std::io::Cursor;
    use std::ops::ControlFlow;
    use std::sync::Arc;

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
            context: GroupOptions {
                keyframe_interval: 4,
                keyframes_per_root: 2,
                ..GroupOptions::default()
            },
            ..ArchiveOptions::default()
        };
        let mut w =
            ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
                .unwrap();
        for (k, t) in &records {
            w.add_in_group(Some(k), t).unwrap();
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

    /// The walk's second check (a block's decoded content against its stored checksum, each
    /// member reported again as an error) alike in parallel and sequential walks (flipped
    /// payload bytes are caught by the payload checksum first).
    #[test]
    fn content_checksum_failures_report_alike_in_parallel() {
        let (bytes, _) = small_archive(40, 3);
        for bad_block in [0usize, 5, 13] {
            let mut r = ArchiveReader::open(Cursor::new(&bytes[..])).unwrap();
            Arc::get_mut(&mut r.archive.index).unwrap().block_crcs[bad_block].1 ^= 1;
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
