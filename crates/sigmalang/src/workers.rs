//! The one worker pool of the parallel coders (the archive's batch encoder, the stream writer,
//! the stream reader's read-ahead, the archive's parallel walk).
//!
//! A [`Workers`] pool has a state per worker (an encoder, a decoder, a reader), made by a
//! factory and reused from job to job. Jobs are submitted in order and their results are taken
//! back in the same order, so what the caller does with them never depends on the number of
//! workers. What is in flight (submitted and not yet taken) is bounded by the caller: each job
//! declares a cost in bytes, and [`Workers::has_room`] says whether one more fits within the
//! pool's [`Bound`] (bytes, and jobs per worker). A panicking job becomes
//! [`ErrorKind::WorkerPanicked`] naming the job, and its worker's state is made afresh. Dropping
//! the pool (the caller is done, failed, or is unwinding) stops the workers: none is left
//! waiting for a result nobody takes.
//!
//! A job may also hand its result over in pieces ([`Emit::send`]), for results too large to hold
//! whole: a piece waits until the job is the oldest in flight, when the caller is taking its
//! results, so a job that is not yet due holds what it has and no more.
//!
//! With one worker the pool has no thread: a job runs when it is submitted, on the caller's
//! thread.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::error::{Error, ErrorKind, Result};

/// The number of workers `threads` asks for: itself, or one per core for 0.
pub(crate) fn count(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// What a pool holds in flight at most: jobs submitted and not yet taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bound {
    /// Jobs per worker.
    pub(crate) jobs_per_worker: usize,
    /// Bytes, as the jobs declare them; one job is always let in, whatever its cost.
    pub(crate) bytes: usize,
}

/// A job: runs on a worker with the worker's state, may hand pieces of its result over through
/// the [`Emit`], and returns the rest.
type Job<'a, S, T> = Box<dyn FnOnce(&mut S, &Emit<'_, T>) -> T + Send + 'a>;

/// What a job sends back: a piece of its result (`false`) or its last (`true`), or the error of
/// a panic.
type Report<T> = std::result::Result<(T, bool), Error>;

/// A job on its way to a worker: its number and where its results go.
struct Task<'a, S, T> {
    id: u64,
    job: Job<'a, S, T>,
    results: SyncSender<Report<T>>,
}

/// Where a job's results go: to a worker's caller through a channel of one (a piece waits for
/// the caller), or, with no threads, kept until taken.
enum Results<'r, T> {
    Threaded(&'r SyncSender<Report<T>>),
    Here(&'r Sender<Report<T>>),
}

/// A running job's way to hand pieces of its result over before it ends.
pub(crate) struct Emit<'r, T> {
    id: u64,
    results: Results<'r, T>,
    turns: &'r Turns,
}

impl<T> Emit<'_, T> {
    /// Hands `piece` over, first waiting until this job is the oldest in flight (its caller is
    /// taking its results). False if the pool was dropped meanwhile: the job should stop.
    pub(crate) fn send(&self, piece: T) -> bool {
        match &self.results {
            Results::Here(tx) => tx.send(Ok((piece, false))).is_ok(),
            Results::Threaded(tx) => {
                self.turns.wait_for(self.id) && tx.send(Ok((piece, false))).is_ok()
            }
        }
    }
}

/// The oldest job in flight, and whether the pool was dropped.
#[derive(Default)]
struct Turns {
    oldest: Mutex<u64>,
    wake: Condvar,
    stop: AtomicBool,
}

impl Turns {
    /// Waits until job `id` is the oldest in flight; false if the pool was dropped instead.
    fn wait_for(&self, id: u64) -> bool {
        let mut oldest = self.oldest.lock().unwrap_or_else(PoisonError::into_inner);
        while *oldest != id && !self.stopped() {
            oldest = self
                .wake
                .wait(oldest)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !self.stopped()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Job `id` is now the oldest in flight.
    fn advance(&self, id: u64) {
        *self.oldest.lock().unwrap_or_else(PoisonError::into_inner) = id;
        self.wake.notify_all();
    }

    /// The pool is dropped: workers stop, and those waiting wake.
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        // Taken so that no worker is between its check and its wait.
        drop(self.oldest.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.notify_all();
    }
}

/// What the workers of a pool share with it.
struct Shared<'a, S, T> {
    /// What the workers are (`sigma-{role}-{i}`), for thread names and errors.
    role: &'static str,
    states: Vec<Mutex<S>>,
    /// Makes a worker's state, at the start and after a panic.
    factory: Box<dyn Fn() -> S + Send + Sync + 'a>,
    /// The jobs waiting for a worker, and the idle workers.
    dispatch: Mutex<Dispatch<'a, S, T>>,
    /// Wakes worker `i` (`wake[i]`) when a job comes for it or the pool is dropped.
    wake: Vec<Condvar>,
    turns: Turns,
}

/// Jobs waiting, oldest first, and idle workers, the last to become idle on top: the next job
/// goes to it, so that the workers in use are as few as the jobs in flight (each worker's state
/// grows with what it has coded, and a pool of many workers with few jobs in flight touches
/// only a few of them).
struct Dispatch<'a, S, T> {
    waiting: VecDeque<Task<'a, S, T>>,
    idle: Vec<usize>,
    closed: bool,
}

/// A job submitted and not yet taken back: its number, its declared cost and its results.
struct Slot<T> {
    id: u64,
    cost: usize,
    results: Receiver<Report<T>>,
}

/// A pool of workers, each with a state `S`, running jobs that return `T` (see the module
/// docs). `'a` is what jobs and states may borrow: `'static` for a pool of
/// [`start`](Workers::start), the scope for one of [`scoped`](Workers::scoped).
pub(crate) struct Workers<'a, S, T> {
    shared: Arc<Shared<'a, S, T>>,
    /// Whether the pool has worker threads (with one worker, jobs run here).
    threaded: bool,
    /// Whether the caller is one of the workers ([`start_helping`](Workers::start_helping)):
    /// the last state is its own, and it runs waiting jobs while it waits for a result.
    helping: bool,
    /// Jobs in flight, oldest first.
    queue: VecDeque<Slot<T>>,
    next_id: u64,
    /// The declared cost of the jobs in flight.
    held: usize,
    bound: Bound,
    /// The threads of a pool of [`start`](Workers::start), joined when the pool is dropped so
    /// that none outlives it (a scoped pool's scope joins its own).
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl<S: Send + 'static, T: Send + 'static> Workers<'static, S, T> {
    /// A pool of `n` workers (threads named `sigma-{role}-{i}`, none for `n <= 1`), each with a
    /// state from `factory`, holding at most `bound` in flight.
    pub(crate) fn start(
        n: usize,
        role: &'static str,
        factory: impl Fn() -> S + Send + Sync + 'static,
        bound: Bound,
    ) -> Result<Self> {
        Workers::with_spawn(n, role, Box::new(factory), bound, false, |name, work| {
            std::thread::Builder::new().name(name).spawn(work).map(Some)
        })
    }

    /// As [`start`](Workers::start), with the caller as one of the `n` workers: `n - 1`
    /// threads, and the caller runs waiting jobs (with a state of its own) whenever it waits
    /// for a result in [`take`](Self::take). On `n` cores this keeps every core coding while
    /// the caller has nothing else to do, and no thread competes with the caller for a core
    /// while it prepares the next jobs. Jobs must not hand pieces over ([`Emit::send`]): one
    /// the caller runs could wait for a turn that only the caller gives.
    pub(crate) fn start_helping(
        n: usize,
        role: &'static str,
        factory: impl Fn() -> S + Send + Sync + 'static,
        bound: Bound,
    ) -> Result<Self> {
        Workers::with_spawn(n, role, Box::new(factory), bound, true, |name, work| {
            std::thread::Builder::new().name(name).spawn(work).map(Some)
        })
    }
}

impl<'a, S: Send + 'a, T: Send + 'a> Workers<'a, S, T> {
    /// As [`start`](Workers::start), on threads of `scope`: jobs and states may borrow what
    /// outlives the scope. The scope waits for the threads, which stop once the pool is dropped
    /// and their job (if any) is done.
    pub(crate) fn scoped<'scope, 'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        n: usize,
        role: &'static str,
        factory: impl Fn() -> S + Send + Sync + 'a,
        bound: Bound,
    ) -> Result<Self>
    where
        'a: 'scope,
    {
        Workers::with_spawn(n, role, Box::new(factory), bound, false, |name, work| {
            std::thread::Builder::new()
                .name(name)
                .spawn_scoped(scope, work)
                .map(|_| None)
        })
    }

    fn with_spawn(
        n: usize,
        role: &'static str,
        factory: Box<dyn Fn() -> S + Send + Sync + 'a>,
        bound: Bound,
        helping: bool,
        spawn: impl Fn(
            String,
            Box<dyn FnOnce() + Send + 'a>,
        ) -> std::io::Result<Option<std::thread::JoinHandle<()>>>,
    ) -> Result<Self> {
        let n = n.max(1);
        let shared = Arc::new(Shared {
            role,
            states: (0..n).map(|_| Mutex::new(factory())).collect(),
            factory,
            dispatch: Mutex::new(Dispatch {
                waiting: VecDeque::new(),
                idle: Vec::new(),
                closed: false,
            }),
            wake: (0..n).map(|_| Condvar::new()).collect(),
            turns: Turns::default(),
        });
        let mut workers = Workers {
            shared,
            threaded: n > 1,
            helping,
            queue: VecDeque::new(),
            next_id: 0,
            held: 0,
            bound,
            threads: Vec::new(),
        };
        if n > 1 {
            // A helping caller is the last worker: it has no thread.
            for i in 0..n - usize::from(helping) {
                let shared = Arc::clone(&workers.shared);
                // On failure, dropping `workers` stops the threads already started.
                let thread = spawn(
                    format!("sigma-{role}-{i}"),
                    Box::new(move || work(&shared, i)),
                )
                .map_err(|e| Error::invalid(format!("cannot start {n} worker threads: {e}")))?;
                workers.threads.extend(thread);
            }
        }
        Ok(workers)
    }

    /// The number of workers.
    pub(crate) fn len(&self) -> usize {
        self.shared.states.len()
    }

    /// Jobs in flight: submitted and not yet taken back whole.
    pub(crate) fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// The declared cost of the jobs in flight.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Whether a job of `cost` bytes fits within the bound now; with nothing in flight, any
    /// job does.
    pub(crate) fn has_room(&self, cost: usize) -> bool {
        self.queue.is_empty()
            || (self.queue.len() < self.bound.jobs_per_worker.saturating_mul(self.len())
                && self.held.saturating_add(cost) <= self.bound.bytes)
    }

    /// Submits `job`, of declared cost `cost`: it runs on the next free worker (here and now
    /// with one worker). Callers keep to the bound by taking results while
    /// [`has_room`](Self::has_room) says no.
    pub(crate) fn submit(
        &mut self,
        cost: usize,
        job: impl FnOnce(&mut S, &Emit<'_, T>) -> T + Send + 'a,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        self.held += cost;
        if !self.threaded {
            let (tx, results) = mpsc::channel();
            let mut state = self.shared.states[0]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let emit = Emit {
                id,
                results: Results::Here(&tx),
                turns: &self.shared.turns,
            };
            let report = run(&self.shared, &mut state, id, Box::new(job), &emit);
            let _ = tx.send(report);
            drop(state);
            self.queue.push_back(Slot { id, cost, results });
            return;
        }
        let (tx, results) = mpsc::sync_channel(1);
        let task = Task {
            id,
            job: Box::new(job),
            results: tx,
        };
        let mut dispatch = self.shared.lock_dispatch();
        dispatch.waiting.push_back(task);
        if let Some(worker) = dispatch.idle.pop() {
            self.shared.wake[worker].notify_one();
        }
        drop(dispatch);
        self.queue.push_back(Slot { id, cost, results });
        // The woken worker may be queued on this thread's core while another core idles, and
        // the job would start only when this thread next blocks: yielding lets it start now.
        // A helping caller does not: it codes jobs itself when it waits, and yielding at every
        // job of a batch would hand its core away (to other processes too) hundreds of times.
        if !self.helping {
            std::thread::yield_now();
        }
    }

    /// The next result of the oldest job in flight (a piece it handed over, or what it
    /// returned), waiting for it; `None` with nothing in flight. A job that panicked gives
    /// [`ErrorKind::WorkerPanicked`].
    pub(crate) fn take(&mut self) -> Option<Result<T>> {
        if self.helping && self.threaded {
            if let Some(report) = self.help() {
                return Some(self.received(report));
            }
        }
        let front = self.queue.front()?;
        let report = front
            .results
            .recv()
            .unwrap_or_else(|_| Err(self.vanished(front.id)));
        Some(self.received(report))
    }

    /// A helping caller's wait for the oldest job's result: runs waiting jobs (any of them,
    /// oldest first) with the caller's own state until that result is in; `None` once no job
    /// waits (then the result is a worker thread's to send).
    fn help(&mut self) -> Option<Report<T>> {
        let front = self.queue.front()?;
        loop {
            match front.results.try_recv() {
                Ok(report) => return Some(report),
                Err(mpsc::TryRecvError::Disconnected) => return Some(Err(self.vanished(front.id))),
                Err(mpsc::TryRecvError::Empty) => {}
            }
            let task = self.shared.lock_dispatch().waiting.pop_front()?;
            let index = self.shared.states.len() - 1;
            let mut state = self.shared.states[index]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let emit = Emit {
                id: task.id,
                results: Results::Threaded(&task.results),
                turns: &self.shared.turns,
            };
            let report = run(&self.shared, &mut state, task.id, task.job, &emit);
            drop(state);
            let _ = task.results.send(report);
        }
    }

    /// As [`take`](Self::take), without waiting: `None` if the oldest job has no result yet.
    pub(crate) fn try_take(&mut self) -> Option<Result<T>> {
        let front = self.queue.front()?;
        let report = match front.results.try_recv() {
            Ok(report) => report,
            Err(mpsc::TryRecvError::Empty) => return None,
            Err(mpsc::TryRecvError::Disconnected) => Err(self.vanished(front.id)),
        };
        Some(self.received(report))
    }

    /// Calls `f` with each worker's state (waiting for a worker busy with a job).
    pub(crate) fn for_each_state(&self, mut f: impl FnMut(&S)) {
        for state in &self.shared.states {
            f(&state.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }

    /// A result of the oldest job: its last ends it.
    fn received(&mut self, report: Report<T>) -> Result<T> {
        let (out, last) = match report {
            Ok((out, last)) => (Ok(out), last),
            Err(e) => (Err(e), true),
        };
        if last {
            let slot = self.queue.pop_front().expect("a job in flight");
            self.held -= slot.cost;
            if self.threaded {
                self.shared.turns.advance(slot.id + 1);
            }
        }
        out
    }

    /// The error of a job whose worker went away without reporting.
    fn vanished(&self, job: u64) -> Error {
        Error::new(ErrorKind::WorkerPanicked {
            role: self.shared.role,
            job,
            message: "the worker stopped before reporting".to_owned(),
        })
    }
}

impl<S, T> Drop for Workers<'_, S, T> {
    fn drop(&mut self) {
        // Idle workers wake and stop, busy ones find nobody to report to (the result receivers
        // go with the fields), and those waiting for their turn wake.
        self.shared.turns.stop();
        self.shared.lock_dispatch().closed = true;
        for wake in &self.shared.wake {
            wake.notify_one();
        }
        // Nobody takes results any more: a job handing over pieces sees that and stops. A busy
        // worker finishes its job (one chunk or piece of a batch) first. A worker that panicked
        // has already reported it; its thread's result adds nothing.
        self.queue.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl<'a, S, T> Shared<'a, S, T> {
    fn lock_dispatch(&self) -> std::sync::MutexGuard<'_, Dispatch<'a, S, T>> {
        self.dispatch.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A worker thread: runs jobs in the order they come until the pool is dropped.
fn work<S, T>(shared: &Shared<'_, S, T>, index: usize) {
    loop {
        let task = {
            let mut dispatch = shared.lock_dispatch();
            loop {
                if dispatch.closed {
                    return;
                }
                if let Some(task) = dispatch.waiting.pop_front() {
                    break task;
                }
                // Woken without a job (another worker took it first): idle again.
                if !dispatch.idle.contains(&index) {
                    dispatch.idle.push(index);
                }
                dispatch = shared.wake[index]
                    .wait(dispatch)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let mut state = shared.states[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let emit = Emit {
            id: task.id,
            results: Results::Threaded(&task.results),
            turns: &shared.turns,
        };
        let report = run(shared, &mut state, task.id, task.job, &emit);
        drop(state);
        // The pool may have been dropped meanwhile; then nobody waits for the result.
        let _ = task.results.send(report);
    }
}

/// Runs job `id` on `state`; a panic becomes its error, and the state is made afresh.
fn run<S, T>(
    shared: &Shared<'_, S, T>,
    state: &mut S,
    id: u64,
    job: Job<'_, S, T>,
    emit: &Emit<'_, T>,
) -> Report<T> {
    match catch_unwind(AssertUnwindSafe(|| job(state, emit))) {
        Ok(out) => Ok((out, true)),
        Err(panic) => {
            // A job that panicked may have left its state half changed.
            *state = (shared.factory)();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            Err(Error::new(ErrorKind::WorkerPanicked {
                role: shared.role,
                job: id,
                message,
            }))
        }
    }
}

/// A small deterministic generator for tests (xorshift64*).
#[cfg(test)]
pub(crate) struct TestRng(pub u64);

#[cfg(test)]
impl TestRng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    const THREADS: [usize; 4] = [1, 2, 3, 8];

    /// A bound of `n` jobs per worker and no byte bound.
    fn jobs(n: usize) -> Bound {
        Bound {
            jobs_per_worker: n,
            bytes: usize::MAX,
        }
    }

    /// Runs `f` on a thread of its own; fails if it takes longer than 20 s (a hang).
    fn within_20s(f: impl FnOnce() + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            let _ = tx.send(r.is_ok());
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(ok) => assert!(ok, "the test body failed"),
            Err(_) => panic!("hung"),
        }
    }

    /// Some work whose length varies with `x`, so that jobs finish out of order.
    fn busy(x: u64) -> u64 {
        let mut h = x;
        for _ in 0..(x % 7) * 20_000 {
            h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7);
        }
        h
    }

    #[test]
    fn results_come_in_submission_order_and_states_are_reused() {
        let expected: Vec<(u64, u64)> = (0..300).map(|i| (i, busy(i))).collect();
        for n in THREADS {
            let made = Arc::new(AtomicUsize::new(0));
            let m = Arc::clone(&made);
            let factory = move || {
                m.fetch_add(1, Ordering::SeqCst);
                0u64
            };
            let bound = jobs(2);
            let mut w = Workers::start(n, "test", factory, bound).unwrap();
            assert_eq!(w.len(), n);
            let mut got = Vec::new();
            for i in 0..300u64 {
                while !w.has_room(1) {
                    got.push(w.take().unwrap().unwrap());
                }
                w.submit(1, move |jobs_done: &mut u64, _| {
                    *jobs_done += 1;
                    (i, busy(i))
                });
                assert!(w.in_flight() <= 2 * n);
                if let Some(r) = w.try_take() {
                    got.push(r.unwrap());
                }
            }
            while let Some(r) = w.take() {
                got.push(r.unwrap());
            }
            assert_eq!(got, expected, "{n} threads");
            // One state per worker, made once, each used for its jobs.
            assert_eq!(made.load(Ordering::SeqCst), n);
            let mut total = 0;
            w.for_each_state(|s| total += *s);
            assert_eq!(total, 300);
        }
    }

    /// Jobs go to the worker idle last: with one job in flight at a time, a pool of eight
    /// workers codes with few of them (a state grows with what it coded; with jobs handed to
    /// the workers in turn, every state would).
    #[test]
    fn few_jobs_in_flight_use_few_workers() {
        let mut w = Workers::start(8, "test", || 0u32, jobs(1)).unwrap();
        for i in 0..200u64 {
            // Workers go idle when they start and after they report: wait for all of them, so
            // that what is measured is the choice of worker, not the host's scheduling.
            while w.shared.lock_dispatch().idle.len() < 8 {
                std::thread::yield_now();
            }
            w.submit(0, move |uses: &mut u32, _| {
                *uses += 1;
                busy(i);
            });
            w.take().unwrap().unwrap();
        }
        let mut used = 0;
        w.for_each_state(|uses| used += usize::from(*uses > 0));
        // The worker idle last takes the next job: one worker does them all.
        assert_eq!(used, 1, "{used} of 8 workers used");
    }

    /// A helping pool of `n` has `n - 1` threads and the caller: results still come in
    /// submission order, every state codes, and two jobs that need each other to finish (the
    /// first waits for the second) finish although only one thread is started: the caller runs
    /// the second while it waits for the first.
    #[test]
    fn a_helping_caller_runs_jobs_while_it_waits() {
        let expected: Vec<(u64, u64)> = (0..300).map(|i| (i, busy(i))).collect();
        for n in THREADS {
            let mut w = Workers::start_helping(n, "test", || 0u64, jobs(usize::MAX)).unwrap();
            assert_eq!((w.len(), w.threads.len()), (n, n - 1));
            for i in 0..300u64 {
                w.submit(1, move |jobs_done: &mut u64, _| {
                    *jobs_done += 1;
                    (i, busy(i))
                });
            }
            let mut got = Vec::new();
            while let Some(r) = w.take() {
                got.push(r.unwrap());
            }
            assert_eq!(got, expected, "{n} threads");
            let mut total = 0;
            w.for_each_state(|s| total += *s);
            assert_eq!(total, 300);
        }
        within_20s(|| {
            let mut w = Workers::start_helping(2, "test", || (), jobs(usize::MAX)).unwrap();
            let flag = Arc::new(AtomicBool::new(false));
            let (f0, f1) = (Arc::clone(&flag), Arc::clone(&flag));
            w.submit(0, move |_, _| {
                while !f0.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                0
            });
            w.submit(0, move |_, _| {
                f1.store(true, Ordering::SeqCst);
                1
            });
            assert_eq!(w.take().unwrap().unwrap(), 0);
            assert_eq!(w.take().unwrap().unwrap(), 1);
        });
    }

    #[test]
    fn a_panic_is_an_error_naming_the_job_and_the_pool_goes_on() {
        for n in THREADS {
            let bound = jobs(4);
            let mut w = Workers::start(n, "test", || 0u32, bound).unwrap();
            let mut got = Vec::new();
            for i in 0..40u32 {
                while !w.has_room(0) {
                    got.push(w.take().unwrap());
                }
                w.submit(0, move |uses: &mut u32, _| {
                    *uses += 1;
                    assert!(i % 13 != 5, "job {i} panics");
                    *uses
                });
            }
            while let Some(r) = w.take() {
                got.push(r);
            }
            assert_eq!(got.len(), 40);
            for (i, r) in got.iter().enumerate() {
                if i % 13 == 5 {
                    let e = r.as_ref().unwrap_err();
                    match e.kind() {
                        ErrorKind::WorkerPanicked { role, job, message } => {
                            assert_eq!((*role, *job), ("test", i as u64));
                            assert_eq!(message, &format!("job {i} panics"));
                        }
                        other => panic!("{other:?}"),
                    }
                    assert!(e.to_string().contains("panicked"), "{e}");
                } else {
                    assert!(r.is_ok(), "job {i}: {r:?}");
                }
            }
        }
        // A panicking job's state is made afresh: with one worker, the count starts again.
        let mut w = Workers::start(1, "test", || 0u32, jobs(1)).unwrap();
        let count = |w: &mut Workers<'static, u32, u32>, panic: bool| {
            w.submit(0, move |uses, _| {
                *uses += 1;
                assert!(!panic, "asked to");
                *uses
            });
            w.take().unwrap()
        };
        assert_eq!(count(&mut w, false).unwrap(), 1);
        assert_eq!(count(&mut w, false).unwrap(), 2);
        assert!(count(&mut w, true).is_err());
        assert_eq!(count(&mut w, false).unwrap(), 1);
    }

    #[test]
    fn the_byte_bound_is_respected() {
        for n in THREADS {
            for bytes in [1usize, 1000, 5000, 40_000] {
                let bound = Bound {
                    jobs_per_worker: 3,
                    bytes,
                };
                let mut w = Workers::start(n, "test", || (), bound).unwrap();
                let mut rng = TestRng(n as u64 * 31 + bytes as u64);
                // The caller's own count: costs submitted and not yet taken back.
                let (mut costs, mut held, mut max_held, mut max_jobs) = (VecDeque::new(), 0, 0, 0);
                let take = |w: &mut Workers<'static, (), Vec<u8>>,
                            costs: &mut VecDeque<usize>,
                            held: &mut usize| {
                    let out = w.take().unwrap().unwrap();
                    let cost = costs.pop_front().unwrap();
                    assert_eq!(out.len(), cost);
                    *held -= cost;
                };
                for i in 0..200u64 {
                    let cost = rng.below(3000) as usize + 1;
                    while !w.has_room(cost) {
                        take(&mut w, &mut costs, &mut held);
                    }
                    w.submit(cost, move |_, _| {
                        busy(i);
                        vec![0u8; cost]
                    });
                    costs.push_back(cost);
                    held += cost;
                    assert_eq!(held, w.held());
                    max_held = max_held.max(held);
                    max_jobs = max_jobs.max(costs.len());
                    // One job is let in alone, whatever its cost.
                    assert!(held <= bytes || costs.len() == 1, "{held} > {bytes}");
                }
                while !costs.is_empty() {
                    take(&mut w, &mut costs, &mut held);
                }
                assert!(w.take().is_none());
                assert!(max_jobs <= 3 * n);
                if bytes >= 3000 * 3 * n {
                    assert_eq!(max_jobs, 3 * n, "the job bound binds");
                } else if bytes >= 3000 {
                    assert!(max_held <= bytes);
                }
            }
        }
    }

    #[test]
    fn pieces_come_in_order_and_wait_for_their_turn() {
        for n in THREADS {
            let bound = jobs(2);
            let mut w = Workers::start(n, "test", || (), bound).unwrap();
            // Set by each job as it ends: a piece of job j may go only once job j - 1 ended.
            let ended: Arc<Vec<AtomicBool>> =
                Arc::new((0..30).map(|_| AtomicBool::new(false)).collect());
            let mut got = Vec::new();
            for job in 0..30u64 {
                while !w.has_room(0) {
                    got.push(w.take().unwrap().unwrap());
                }
                let ended = Arc::clone(&ended);
                w.submit(0, move |_, emit| {
                    for piece in 0..job % 4 {
                        busy(job + piece);
                        assert!(emit.send((job, piece)));
                        let before = job.checked_sub(1).map(|j| j as usize);
                        assert!(before.is_none_or(|j| ended[j].load(Ordering::SeqCst)));
                    }
                    busy(job * 3);
                    ended[job as usize].store(true, Ordering::SeqCst);
                    (job, 99)
                });
            }
            while let Some(r) = w.take() {
                got.push(r.unwrap());
            }
            let expected: Vec<(u64, u64)> = (0..30)
                .flat_map(|job| (0..job % 4).map(move |p| (job, p)).chain([(job, 99)]))
                .collect();
            assert_eq!(got, expected, "{n} threads");
        }
    }

    #[test]
    fn dropping_the_pool_early_does_not_hang() {
        // With threads: one worker runs its jobs as they are submitted, pieces never wait.
        for n in [2, 3, 8] {
            within_20s(move || {
                let bound = jobs(4);
                let mut w = Workers::start(n, "test", || (), bound).unwrap();
                for job in 0..(4 * n as u64) {
                    // Later jobs hand pieces over: they wait for a turn that never comes.
                    w.submit(0, move |_, emit| {
                        while emit.send(job) {}
                        job
                    });
                    if job == 0 {
                        // The first job's first piece is taken; then the pool is dropped.
                        assert_eq!(w.take().unwrap().unwrap(), 0);
                    }
                }
                drop(w);
            });
        }
    }

    #[test]
    fn a_scoped_pool_stops_when_its_caller_panics() {
        for n in [2, 3, 8] {
            within_20s(move || {
                let borrowed = vec![7u8; 100];
                let r = catch_unwind(AssertUnwindSafe(|| {
                    std::thread::scope(|scope| {
                        let bound = jobs(2);
                        let mut w = Workers::scoped(scope, n, "test", || 0usize, bound).unwrap();
                        for job in 0..(2 * n) {
                            let borrowed = &borrowed;
                            w.submit(0, move |_: &mut usize, emit| {
                                while emit.send(borrowed[job]) {}
                                0
                            });
                        }
                        assert_eq!(w.take().unwrap().unwrap(), 7);
                        panic!("the caller panics");
                    })
                }));
                assert!(r.is_err());
            });
        }
    }
}
