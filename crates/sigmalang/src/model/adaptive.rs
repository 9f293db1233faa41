//! The adaptive context model: statistics learned from the record being coded, in front of the
//! static model (record mode `ADAPTIVE`, FORMAT.md §3.4).
//!
//! The static model knows its training corpus; the adaptive model knows the record. For the
//! orders [`ADAPTIVE_ORDERS`] (the last `k` bytes, highest order first) it keeps a hashed table of
//! contexts, each listing up to [`SLOT_SYMS`] bytes that followed it earlier in the record, with
//! counts. A byte is coded PPM-style: in each adaptive context that exists and still lists a byte
//! not excluded, one binary flag says whether the byte is one of those (an escape if not), then
//! the byte is coded among them by count, blended with the static model's frequency. The flag's
//! probability comes from an adaptive
//! secondary-estimation table whose cell is the context's order, shape (bytes listed, total
//! count), whether anything is excluded, and how likely the static model finds the listed bytes:
//! where the static model already predicts them the flag is cheap, so the static model's
//! knowledge and the record's statistics are blended at the cost of one binary decision. After
//! an escape the context's bytes are excluded; after the last adaptive order the static model
//! codes the byte with all of them excluded, in every static context it visits. Every adaptive
//! context visited learns the byte.
//!
//! Three variants exist ([`Variant`]): `V1`, the model of `ADAPTIVE` records (orders 5, 3, 2,
//! 1); `V2`, the model of `ADAPTIVE2` records (FORMAT.md §3.5), which adds order 4 and
//! order 6, a table twice as large, inherited initial counts, a second escape estimate and
//! [`run_class`](AdaptiveModel::run_class), the adaptive contexts' view of a byte the match
//! model predicts (context for DELTA-run flags); and `V3` (§3.6, `ADAPTIVE2` where the file's
//! header flag says so), which adds order 8, finds a context in either slot of a pair, and
//! learns the bytes of DELTA runs too ([`push`](AdaptiveModel::push)).
//!
//! Encoder and decoder run the same updates over the same bytes, so nothing of the adaptive
//! state is transmitted. The model's memory is bounded by [`MAX_TABLE_BITS`] (`V1`: 16 MiB of
//! contexts; `V2` and `V3`: 32 MiB).

use super::{ByteSet, ContextModel};
use crate::coder::{RangeDecoder, RangeEncoder};

/// The orders of the adaptive contexts of variant `V1`, highest first.
pub const ADAPTIVE_ORDERS: [u8; 4] = [5, 3, 2, 1];
/// The orders of variant `V2`, highest first.
pub const ADAPTIVE2_ORDERS: [u8; 5] = [6, 4, 3, 2, 1];
/// The orders of variant `V3`, highest first.
pub const ADAPTIVE3_ORDERS: [u8; 6] = [8, 6, 4, 3, 2, 1];
/// Bytes a context lists at most; a new byte then replaces the least frequent.
pub const SLOT_SYMS: usize = 16;
/// The table of variant `V1` has at most `2^MAX_TABLE_BITS` contexts (of 64 bytes: 16 MiB);
/// `V2`'s and `V3`'s twice as many.
pub const MAX_TABLE_BITS: u32 = 18;
/// The table has at least `2^MIN_TABLE_BITS` contexts (64 KiB).
const MIN_TABLE_BITS: u32 = 10;
/// The most orders a variant has.
const ORDERS: usize = 6;
/// A context's counts are halved when one passes this.
const COUNT_LIMIT: u16 = 30;
/// How many of the static context's entries (most frequent first) are summed for the static
/// probability of the candidates.
const MASS_SCAN: usize = 8;
/// Secondary-estimation cells of one order: symbols (4), count (8), static mass (8), first
/// visit (2); a variant has as many of these as it has orders.
const SEE_PER_ORDER: usize = 4 * 8 * 8 * 2;
/// The second escape estimate (`V2`, `V3`) of one order: symbols (4), count (8), the previous
/// byte.
const SEE2_PER_ORDER: usize = 4 * 8 * 256;
/// The learning rate of `V1`'s escape estimates (a shift).
const SEE_RATE: u32 = 6;
/// `V2`'s estimates learn at rate `1/(n+2)` after `n` updates, down to `2^-SEE2_RATE`.
const SEE2_RATE: u32 = 7;
/// `V2`, `V3`: a byte's initial count in a new context is its share of the context that coded it
/// times this, rounded, from 1 to [`INHERIT_MAX`] (information inheritance, as in PPMII).
const INHERIT_SCALE: u32 = 4;
/// The largest inherited initial count.
const INHERIT_MAX: u16 = 3;
/// The number of classes [`AdaptiveModel::run_class`] returns.
pub const RUN_CLASSES_ADAPTIVE: usize = 24;

/// Which adaptive model codes a record: `V1` for `ADAPTIVE` records, `V2` or `V3` (as the file's
/// header says) for `ADAPTIVE2` ones. The two differ in the byte stream they produce, never in what they decode to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Variant {
    /// Orders 5, 3, 2, 1; one escape estimate at a fixed rate; initial counts 1 (container
    /// version 3's `ADAPTIVE`).
    #[default]
    V1,
    /// Orders 6, 4, 3, 2, 1; a table twice as large; inherited initial counts; two escape
    /// estimates averaged, learning at a falling rate; DELTA-run flag classes.
    V2,
    /// `V2` with orders 8, 6, 4, 3, 2, 1, a context found in either of two neighbouring slots
    /// (a new one replaces the weaker), and the bytes of DELTA runs learned as well (streams
    /// with header flag bit 0, archives with header flag bit 7; FORMAT.md §3.6).
    V3,
}

impl Variant {
    #[inline(always)]
    fn orders(self) -> &'static [u8] {
        match self {
            Variant::V1 => &ADAPTIVE_ORDERS,
            Variant::V2 => &ADAPTIVE2_ORDERS,
            Variant::V3 => &ADAPTIVE3_ORDERS,
        }
    }

    /// The cells of the first escape estimate.
    fn see_len(self) -> usize {
        self.orders().len() * SEE_PER_ORDER
    }

    /// The cells of the second escape estimate (none in `V1`).
    fn see2_len(self) -> usize {
        match self {
            Variant::V1 => 0,
            _ => self.orders().len() * SEE2_PER_ORDER,
        }
    }
}

/// The table size of a record of `len` bytes coded by variant `V1`: `2^bits` contexts with
/// `bits = clamp(ceil(log2(max(len, 1))) - 3, 10, 18)`, so at most 8 bytes of table per byte of
/// record (and at least 64 KiB, at most 16 MiB). `V2` and `V3` use `bits + 1`.
pub fn table_bits(len: usize) -> u32 {
    let log = len.max(1).next_power_of_two().trailing_zeros();
    log.saturating_sub(3).clamp(MIN_TABLE_BITS, MAX_TABLE_BITS)
}

#[derive(Clone, Copy, Default, Debug)]
#[repr(C, align(64))]
struct Slot {
    check: u32,
    n: u8,
    /// Whether the slot's primed value is in the journal (see [`AdaptiveModel::begin_record`]).
    journaled: bool,
    _pad: [u8; 2],
    sym: [u8; SLOT_SYMS],
    freq: [u16; SLOT_SYMS],
}

/// The adaptive model of one record: its context table and escape estimates.
#[derive(Debug)]
pub struct AdaptiveModel {
    variant: Variant,
    table: Vec<Slot>,
    bits: u32,
    see: Vec<u16>,
    /// `V2`, `V3`: updates so far of each `see` cell (for its learning rate).
    see_n: Vec<u8>,
    /// `V2`, `V3`: the second escape estimate and its update counts.
    see2: Vec<u16>,
    see2_n: Vec<u8>,
    /// The last eight bytes, the latest lowest.
    hist: u64,
    /// The slot of each order for the byte being coded, and whether its context was there.
    at: [usize; ORDERS],
    check: [u32; ORDERS],
    found: [bool; ORDERS],
    /// The initial count of the byte being coded in the contexts it is new to.
    init: u16,
    /// While a record is coded after a primer: the slots it changed and their primed values,
    /// so that [`rollback`](Self::rollback) restores the primed state (at most a quarter of the
    /// table; past that the whole table is restored from the primed model).
    journal: Vec<Slot>,
    /// The slot index of each [`journal`](Self::journal) entry (kept apart: a `(u32, Slot)`
    /// pair would take two cache lines).
    journal_at: Vec<u32>,
    /// While a record is coded after a primer: the escape-estimate cells it changed (`see`
    /// cells as they are, `see2` cells with [`SEE2_TAG`] set; repeats allowed), so that
    /// [`rollback`](Self::rollback) restores them alone (at most [`SEE_JOURNAL`] of them; past
    /// that the whole estimates are copied back).
    see_journal: Vec<u32>,
    journaling: bool,
    overflowed: bool,
    see_overflowed: bool,
}

/// No position known of the coded byte in its coding context (see [`AdaptiveModel::learn`]).
const NO_HINT: usize = usize::MAX;
/// Marks a `see2` cell in [`AdaptiveModel::see_journal`].
const SEE2_TAG: u32 = 1 << 31;
/// The most cell updates a record's escape-estimate journal holds: past this a full copy of the
/// estimates (`V2`: 120 KiB, a few thousand instructions) is cheaper than replaying the journal
/// (about ten instructions an update; callgrind of `sigma pack` on code-dev, whose records of
/// about 4 KiB update some 14,000 cells: replaying them cost 3% of the pack).
const SEE_JOURNAL: usize = 1 << 11;

impl Clone for AdaptiveModel {
    fn clone(&self) -> Self {
        AdaptiveModel {
            variant: self.variant,
            table: self.table.clone(),
            bits: self.bits,
            see: self.see.clone(),
            see_n: self.see_n.clone(),
            see2: self.see2.clone(),
            see2_n: self.see2_n.clone(),
            hist: self.hist,
            at: self.at,
            check: self.check,
            found: self.found,
            init: self.init,
            journal: Vec::new(),
            journal_at: Vec::new(),
            see_journal: Vec::new(),
            journaling: false,
            overflowed: false,
            see_overflowed: false,
        }
    }
}

#[inline]
fn count_bucket(t: u32) -> usize {
    match t {
        0..=1 => 0,
        2 => 1,
        3..=4 => 2,
        5..=8 => 3,
        9..=16 => 4,
        17..=32 => 5,
        33..=64 => 6,
        _ => 7,
    }
}

/// The bucket of the static model's probability (of 2^16) of a context's candidates.
#[inline]
fn static_bucket(p: u32) -> usize {
    match p {
        0 => 0,
        1..=1023 => 1,
        1024..=4095 => 2,
        4096..=8191 => 3,
        8192..=16383 => 4,
        16384..=32767 => 5,
        32768..=49151 => 6,
        _ => 7,
    }
}

#[inline]
fn sym_bucket(cnt: usize) -> usize {
    match cnt {
        0..=1 => 0,
        2 => 1,
        3..=4 => 2,
        _ => 3,
    }
}

#[inline]
fn see_index(j: usize, cnt: usize, tot: u32, sp: u32, first: bool) -> usize {
    (((j * 4 + sym_bucket(cnt)) * 8 + count_bucket(tot)) * 8 + static_bucket(sp)) * 2
        + usize::from(first)
}

/// What an adaptive context shows of the byte being coded, summed over its candidates (the
/// bytes not excluded).
#[derive(Default)]
struct Tally {
    /// Counts summed, candidates, static mass, coding weight summed.
    tot: u32,
    cnt: usize,
    sp: u32,
    wt: u32,
}

impl Default for AdaptiveModel {
    fn default() -> Self {
        AdaptiveModel::new()
    }
}

impl AdaptiveModel {
    /// A `V1` model with no table yet (it is allocated by the first [`reset`](Self::reset)).
    pub fn new() -> AdaptiveModel {
        AdaptiveModel::with_variant(Variant::V1)
    }

    /// A model of `variant` with no table yet.
    pub fn with_variant(variant: Variant) -> AdaptiveModel {
        let v2 = variant != Variant::V1;
        let (see_len, see2_len) = (variant.see_len(), variant.see2_len());
        AdaptiveModel {
            variant,
            table: Vec::new(),
            bits: MIN_TABLE_BITS,
            see: vec![0; see_len],
            see_n: vec![0; if v2 { see_len } else { 0 }],
            see2: vec![0; see2_len],
            see2_n: vec![0; see2_len],
            hist: 0,
            at: [0; ORDERS],
            check: [0; ORDERS],
            found: [false; ORDERS],
            init: 1,
            journal: Vec::new(),
            journal_at: Vec::new(),
            see_journal: Vec::new(),
            journaling: false,
            overflowed: false,
            see_overflowed: false,
        }
    }

    /// The model's variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Switches to `variant` (takes effect from the next [`reset`](Self::reset)).
    pub fn set_variant(&mut self, variant: Variant) {
        if self.variant != variant {
            *self = AdaptiveModel {
                table: std::mem::take(&mut self.table),
                ..AdaptiveModel::with_variant(variant)
            };
        }
    }

    /// Bytes of memory the model holds (its table, escape estimates and journals).
    pub fn heap_bytes(&self) -> usize {
        (self.table.capacity() + self.journal.capacity()) * std::mem::size_of::<Slot>()
            + self.journal_at.capacity() * 4
            + self.see.capacity() * 2
            + self.see_n.capacity()
            + self.see2.capacity() * 2
            + self.see2_n.capacity()
            + self.see_journal.capacity() * 4
    }

    /// Bytes of memory a model of `variant` holds besides its table: its escape estimates.
    pub fn estimate_bytes(variant: Variant) -> usize {
        match variant {
            Variant::V1 => variant.see_len() * 2,
            _ => variant.see_len() * 3 + variant.see2_len() * 3,
        }
    }

    /// Starts a record coded from this (primed) state: every change to the table is noted, so
    /// that [`rollback`](Self::rollback) can undo it without copying the table.
    pub fn begin_record(&mut self) {
        self.journal.clear();
        self.journal_at.clear();
        self.see_journal.clear();
        self.journaling = true;
        self.overflowed = false;
        self.see_overflowed = false;
    }

    /// Restores the state `primed` (this model's state when
    /// [`begin_record`](Self::begin_record) was called, of which `primed` is a copy): the
    /// slots the record changed, the escape-estimate cells it changed and the history. Without
    /// `begin_record` nothing is journaled: the model must not have coded since.
    pub fn rollback(&mut self, primed: &AdaptiveModel) {
        if self.overflowed || self.table.len() != primed.table.len() {
            self.table.clone_from(&primed.table);
        } else {
            for (&idx, slot) in self.journal_at.iter().zip(&self.journal).rev() {
                self.table[idx as usize] = *slot;
            }
        }
        self.bits = primed.bits;
        if self.see_overflowed {
            // The same variant's estimates: the same lengths (a plain copy, not `clone_from`,
            // which copies element by element).
            self.see.copy_from_slice(&primed.see);
            self.see_n.copy_from_slice(&primed.see_n);
            self.see2.copy_from_slice(&primed.see2);
            self.see2_n.copy_from_slice(&primed.see2_n);
        } else {
            // Restored from the primed copy, so repeats and order do not matter.
            let v2 = self.variant != Variant::V1;
            for &c in &self.see_journal {
                let i = (c & !SEE2_TAG) as usize;
                if c & SEE2_TAG == 0 {
                    self.see[i] = primed.see[i];
                    if v2 {
                        self.see_n[i] = primed.see_n[i];
                    }
                } else {
                    self.see2[i] = primed.see2[i];
                    self.see2_n[i] = primed.see2_n[i];
                }
            }
        }
        self.hist = primed.hist;
        self.journal.clear();
        self.journal_at.clear();
        self.see_journal.clear();
        self.journaling = false;
        self.overflowed = false;
        self.see_overflowed = false;
    }

    /// Notes escape-estimate cell `c` (tagged as in [`see_journal`](Self::see_journal)) before
    /// a record changes it.
    #[inline(always)]
    fn note_see(&mut self, c: u32) {
        if self.see_journal.len() < SEE_JOURNAL {
            self.see_journal.push(c);
        } else {
            self.see_overflowed = true;
        }
    }

    /// Notes the primed value of slot `idx` before its first change in a record.
    #[inline]
    fn note(&mut self, idx: usize) {
        let cap = self.table.len() / 4;
        let s = &mut self.table[idx];
        if s.journaled {
            return;
        }
        if self.journal.len() < cap {
            let old = *s;
            s.journaled = true;
            self.journal.push(old);
            self.journal_at.push(idx as u32);
        } else {
            self.overflowed = true;
        }
    }

    /// Forgets everything: the start of a record of `len` bytes, which sizes the table.
    pub fn reset(&mut self, len: usize) {
        self.bits = table_bits(len) + u32::from(self.variant != Variant::V1);
        let size = 1usize << self.bits;
        if self.table.len() < size {
            self.table.resize(size, Slot::default());
        }
        self.table[..size].fill(Slot::default());
        let reps = [1u32, 2, 4, 7, 12, 24, 48, 96];
        let syms = [1u32, 2, 3, 6];
        for (i, p) in self.see.iter_mut().enumerate() {
            let b = i / 16 % 8;
            let cnt = syms[i / 128 % 4];
            let tot = reps[b].max(cnt);
            *p = (65536 * cnt / (tot + cnt)).clamp(2048, 63488) as u16;
        }
        self.see_n.fill(0);
        self.see2.fill(32768);
        self.see2_n.fill(0);
        self.hist = 0;
    }

    /// Takes in a byte coded by other means (a DELTA run): in `V1` and `V2` history only, no
    /// statistics; `V3` learns it as if the highest context listing it had coded it (every
    /// context above it, and the context itself, learns it with initial count 1).
    #[inline(always)]
    pub fn push(&mut self, x: u8) {
        if self.variant != Variant::V3 {
            self.hist = self.hist << 8 | u64::from(x);
            return;
        }
        // Only the contexts down to the first that lists `x` are looked up: they are all that
        // learn (a run's byte is mostly listed by the highest order already).
        self.init = 1;
        let mut coded = ADAPTIVE3_ORDERS.len();
        let mut pos = NO_HINT;
        for (j, &o) in ADAPTIVE3_ORDERS.iter().enumerate() {
            let (idx, check) = self.locate_in(self.hist, o);
            let (idx, found) = self.probe(idx, check);
            self.at[j] = idx;
            self.check[j] = check;
            self.found[j] = found;
            if found {
                let s = &self.table[idx];
                if let Some(i) = s.sym[..s.n as usize].iter().position(|&c| c == x) {
                    if j == 0 {
                        // The usual case: the highest order lists `x` and alone learns it
                        // (what `learn(x, 0, i)` does, without its loop).
                        if self.journaling {
                            self.note(idx);
                        }
                        self.bump(idx, i);
                        self.hist = self.hist << 8 | u64::from(x);
                        return;
                    }
                    coded = j;
                    pos = i;
                    break;
                }
            }
        }
        self.learn(x, coded, pos);
    }

    /// The class (below [`RUN_CLASSES_ADAPTIVE`]) of byte `m`, predicted by the match model
    /// after the history and then the bytes `done`: how the highest-order adaptive context
    /// present sees it. 0 (no context, or variant `V1`, whose DELTA runs do not use classes);
    /// else by the context's order (highest, second, lower) whether `m` is absent (from a
    /// context of one byte or more), listed but not first, first of several (under half the
    /// count, or at least half), or the only byte (seen once, or more).
    #[inline]
    pub fn run_class(&self, done: &[u8], m: u8) -> usize {
        if self.variant == Variant::V1 {
            return 0;
        }
        let mut h = self.hist;
        for &b in &done[done.len().saturating_sub(8)..] {
            h = h << 8 | u64::from(b);
        }
        for (j, &o) in self.variant.orders().iter().enumerate() {
            let (idx, check) = self.locate_in(h, o);
            let (idx, found) = self.probe(idx, check);
            if !found {
                continue;
            }
            let s = &self.table[idx];
            let n = s.n as usize;
            let c = match s.sym[..n].iter().position(|&c| c == m) {
                None if n == 1 => 1,
                None => 2,
                Some(0) if n == 1 => 6 + usize::from(s.freq[0] >= 2),
                Some(0) => {
                    let tot: u32 = s.freq[..n].iter().map(|&f| u32::from(f)).sum();
                    4 + usize::from(2 * u32::from(s.freq[0]) >= tot)
                }
                Some(_) => 3,
            };
            return c + 8 * j.min(2);
        }
        0
    }

    #[inline(always)]
    fn locate_in(&self, hist: u64, order: u8) -> (usize, u32) {
        let ctx = if order >= 8 {
            hist
        } else {
            hist & ((1u64 << (8 * order)) - 1)
        };
        let k = ctx ^ u64::from(order) << 59;
        let h = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let idx = (h >> (64 - self.bits)) as usize;
        let check = (k.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 32) as u32 | 1;
        (idx, check)
    }

    /// Where the context of `check` whose home is `idx` is, and whether it is there. `V1` and
    /// `V2`: at `idx` alone. `V3`: at `idx` or `idx ^ 1` (the two slots of a 128-byte pair);
    /// if at neither, the one a new context would take: the slot whose weight
    /// `4 * (its highest count) + (bytes listed)` is lower (an empty slot weighs 0), `idx` on
    /// a tie.
    #[inline(always)]
    fn probe(&self, idx: usize, check: u32) -> (usize, bool) {
        let a = &self.table[idx];
        if a.check == check {
            return (idx, true);
        }
        if self.variant != Variant::V3 {
            return (idx, false);
        }
        let b = &self.table[idx ^ 1];
        if b.check == check {
            return (idx ^ 1, true);
        }
        let weight = |s: &Slot| u32::from(s.freq[0]) * 4 + u32::from(s.n);
        (if weight(b) < weight(a) { idx ^ 1 } else { idx }, false)
    }

    /// Looks up the contexts of every order for the next byte (together, so that their cache
    /// misses overlap: the probe reads each slot's line); notes where they are and which exist.
    /// The slots are read in place afterwards (not copied: nothing changes the table until
    /// [`learn`](Self::learn)).
    #[inline(always)]
    fn fetch(&mut self) {
        for (j, &o) in self.variant.orders().iter().enumerate() {
            let (idx, check) = self.locate_in(self.hist, o);
            let (idx, found) = self.probe(idx, check);
            self.at[j] = idx;
            self.check[j] = check;
            self.found[j] = found;
        }
    }

    /// The cells of the escape estimates of a context of order index `j` whose candidates are
    /// `t`; `first` if nothing is excluded yet.
    #[inline(always)]
    fn see_cells(&self, j: usize, t: &Tally, first: bool) -> (usize, usize) {
        let si = see_index(j, t.cnt, t.tot, t.sp, first);
        let s2 = match self.variant {
            Variant::V1 => 0,
            Variant::V2 | Variant::V3 => {
                ((j * 4 + sym_bucket(t.cnt)) * 8 + count_bucket(t.tot)) * 256
                    + (self.hist & 0xff) as usize
            }
        };
        (si, s2)
    }

    /// The probability (of 4096) of an escape in cells `(si, s2)`.
    #[inline(always)]
    fn p_escape(&self, (si, s2): (usize, usize)) -> u32 {
        let p = match self.variant {
            Variant::V1 => u32::from(self.see[si]),
            Variant::V2 | Variant::V3 => (u32::from(self.see[si]) + u32::from(self.see2[s2])) / 2,
        };
        (p >> 4).clamp(1, 4095)
    }

    /// Teaches the escape estimates of cells `(si, s2)` the outcome `esc`.
    #[inline(always)]
    fn adapt(&mut self, (si, s2): (usize, usize), esc: bool) {
        if self.journaling {
            self.note_see(si as u32);
            if self.variant != Variant::V1 {
                self.note_see(s2 as u32 | SEE2_TAG);
            }
        }
        match self.variant {
            Variant::V1 => {
                let p = &mut self.see[si];
                if esc {
                    *p += (65535 - *p) >> SEE_RATE;
                } else {
                    *p -= *p >> SEE_RATE;
                }
            }
            Variant::V2 | Variant::V3 => {
                adapt_counted(&mut self.see[si], &mut self.see_n[si], esc);
                adapt_counted(&mut self.see2[s2], &mut self.see2_n[s2], esc);
            }
        }
    }

    /// `V2`, `V3`: the initial count of the coded byte in the contexts above the one that coded it,
    /// from its count `nx` of `tot` there.
    #[inline(always)]
    fn inherit(&mut self, nx: u32, tot: u32) {
        if self.variant != Variant::V1 {
            let v = (nx * INHERIT_SCALE + tot / 2) / tot.max(1);
            self.init = (v as u16).clamp(1, INHERIT_MAX);
        }
    }

    /// Codes `x` in static state `state` knowing it is not `not`; returns the next static state.
    pub fn encode(
        &mut self,
        enc: &mut RangeEncoder<'_>,
        model: &ContextModel,
        state: u32,
        x: u8,
        not: Option<u8>,
    ) -> u32 {
        let mut excl = ByteSet::default();
        if let Some(m) = not {
            excl.set(u32::from(m));
        }
        let mut any = not.is_some();
        let head = Head::of(model, state);
        let orders = self.variant.orders().len();
        let mut coded = orders;
        let mut pos = NO_HINT;
        self.init = 1;
        self.fetch();
        for j in 0..orders {
            if !self.found[j] {
                continue;
            }
            let idx = self.at[j];
            let s = &self.table[idx];
            let mut t = Tally::default();
            let (mut cx, mut fx, mut nx, mut px) = (None, 0, 0u32, NO_HINT);
            for i in 0..s.n as usize {
                let c = s.sym[i];
                if excl.has(u32::from(c)) {
                    continue;
                }
                let f = head.freq(c);
                let w = weight(s.freq[i], f);
                if c == x {
                    cx = Some(t.wt);
                    fx = w;
                    nx = u32::from(s.freq[i]);
                    px = i;
                }
                t.wt += w;
                t.sp += f;
                t.tot += u32::from(s.freq[i]);
                t.cnt += 1;
            }
            if t.cnt == 0 {
                continue;
            }
            let cells = self.see_cells(j, &t, !any);
            let esc = cx.is_none();
            enc.encode_bit(self.p_escape(cells), esc);
            self.adapt(cells, esc);
            if let Some(cum) = cx {
                if t.cnt > 1 {
                    enc.encode(cum, fx, t.wt);
                }
                self.inherit(nx, t.tot);
                coded = j;
                pos = px;
                break;
            }
            let s = &self.table[idx];
            for i in 0..s.n as usize {
                excl.set(u32::from(s.sym[i]));
            }
            any = true;
        }
        let next = if coded < orders {
            model.advance(state, x)
        } else if any {
            model.encode_set(enc, state, x, &excl)
        } else {
            model.encode_excluding(enc, state, x, not)
        };
        self.learn(x, coded, pos);
        next
    }

    /// Decodes a byte in static state `state` known not to be `not`; returns it and the next
    /// static state.
    pub fn decode(
        &mut self,
        dec: &mut RangeDecoder<'_>,
        model: &ContextModel,
        state: u32,
        not: Option<u8>,
    ) -> (u8, u32) {
        let mut excl = ByteSet::default();
        if let Some(m) = not {
            excl.set(u32::from(m));
        }
        let mut any = not.is_some();
        let head = Head::of(model, state);
        let orders = self.variant.orders().len();
        self.init = 1;
        self.fetch();
        for j in 0..orders {
            if !self.found[j] {
                continue;
            }
            let idx = self.at[j];
            let s = &self.table[idx];
            let mut t = Tally::default();
            let mut first = None;
            for i in 0..s.n as usize {
                let c = s.sym[i];
                if excl.has(u32::from(c)) {
                    continue;
                }
                first.get_or_insert(i);
                let f = head.freq(c);
                t.wt += weight(s.freq[i], f);
                t.sp += f;
                t.tot += u32::from(s.freq[i]);
                t.cnt += 1;
            }
            if t.cnt == 0 {
                continue;
            }
            let cells = self.see_cells(j, &t, !any);
            let esc = dec.decode_bit(self.p_escape(cells));
            self.adapt(cells, esc);
            let s = &self.table[idx];
            if !esc {
                let hit = if t.cnt == 1 {
                    first.unwrap_or(0)
                } else {
                    let (r, code) = dec.decode_scale(t.wt);
                    let mut cum = 0u32;
                    let mut hit = 0;
                    for i in 0..s.n as usize {
                        let c = s.sym[i];
                        if excl.has(u32::from(c)) {
                            continue;
                        }
                        let f = weight(s.freq[i], head.freq(c));
                        hit = i;
                        if code < r.wrapping_mul(cum + f) {
                            dec.decode_update(cum, f);
                            break;
                        }
                        cum += f;
                    }
                    // Only on corrupt input does the code lie past the last symbol.
                    hit
                };
                let (x, nx) = (s.sym[hit], u32::from(s.freq[hit]));
                self.inherit(nx, t.tot);
                self.learn(x, j, hit);
                return (x, model.advance(state, x));
            }
            for i in 0..s.n as usize {
                excl.set(u32::from(s.sym[i]));
            }
            any = true;
        }
        let (x, next) = if any {
            model.decode_set(dec, state, &excl)
        } else {
            model.decode_excluding(dec, state, not)
        };
        self.learn(x, orders, NO_HINT);
        (x, next)
    }

    /// Every adaptive context from the highest order down to the one that coded `x` (index
    /// `coded`, or all of them if the static model did) learns `x`; then `x` joins the history.
    /// A byte new to a context enters with count `self.init` (1 in `V1`). `hint` is where the
    /// coding context listed `x` when it was looked up ([`NO_HINT`] if unknown): it saves the
    /// search there, and is used only if the slot still lists `x` at that place (a slot's bytes
    /// are distinct, so then the search would find the same place; a context above may share
    /// the slot and have changed it).
    #[inline]
    fn learn(&mut self, x: u8, coded: usize, hint: usize) {
        let visited = self.variant.orders().len().min(coded + 1);
        let init = self.init;
        for j in 0..visited {
            let (idx, check, found) = (self.at[j], self.check[j], self.found[j]);
            if self.journaling {
                self.note(idx);
            }
            if !found {
                let s = &mut self.table[idx];
                *s = Slot {
                    check,
                    n: 1,
                    journaled: s.journaled,
                    ..Slot::default()
                };
                s.sym[0] = x;
                s.freq[0] = init;
                continue;
            }
            let s = &mut self.table[idx];
            let n = s.n as usize;
            let listed = if j == coded && hint < n && s.sym[hint] == x {
                Some(hint)
            } else {
                s.sym[..n].iter().position(|&c| c == x)
            };
            let i = match listed {
                Some(i) => {
                    s.freq[i] += 1;
                    i
                }
                None if n < SLOT_SYMS => {
                    s.sym[n] = x;
                    s.freq[n] = init;
                    s.n += 1;
                    n
                }
                None => {
                    s.sym[n - 1] = x;
                    s.freq[n - 1] = init;
                    n - 1
                }
            };
            self.settle(idx, i);
        }
        self.hist = self.hist << 8 | u64::from(x);
    }

    /// The byte at place `i` of slot `idx` was seen once more: its count grows by one.
    #[inline(always)]
    fn bump(&mut self, idx: usize, i: usize) {
        self.table[idx].freq[i] += 1;
        self.settle(idx, i);
    }

    /// The count at place `i` of slot `idx` has grown: the byte moves up to keep the list by
    /// count, highest first, and all counts are halved if it passed [`COUNT_LIMIT`].
    #[inline(always)]
    fn settle(&mut self, idx: usize, mut i: usize) {
        let s = &mut self.table[idx];
        while i > 0 && s.freq[i] > s.freq[i - 1] {
            s.freq.swap(i, i - 1);
            s.sym.swap(i, i - 1);
            i -= 1;
        }
        if s.freq[i] > COUNT_LIMIT {
            for f in &mut s.freq[..s.n as usize] {
                *f = (*f + 1) >> 1;
            }
        }
    }
}

/// A `V2` estimate `p` (of 2^16) after `n` updates learns `bit` at rate `1/(n+2)`, down to
/// `2^-SEE2_RATE`.
#[inline(always)]
fn adapt_counted(p: &mut u16, n: &mut u8, bit: bool) {
    let d = (u32::from(*n) + 2).min(1 << SEE2_RATE) as i32;
    let t = if bit { 65535 } else { 0 };
    let v = i32::from(*p) + (t - i32::from(*p)) / d;
    *p = v.clamp(1, 65535) as u16;
    *n = n.saturating_add(1);
}

/// The first [`MASS_SCAN`] entries of a static context: bytes and first-visit frequencies.
struct Head {
    sym: [u8; MASS_SCAN],
    freq: [u16; MASS_SCAN],
    n: usize,
    /// The bytes of `sym[..n]`: most candidates are not among them, and are answered without
    /// the scan.
    set: ByteSet,
}

impl Head {
    #[inline]
    fn of(model: &ContextModel, state: u32) -> Head {
        let mut h = Head {
            sym: [0; MASS_SCAN],
            freq: [0; MASS_SCAN],
            n: 0,
            set: ByteSet::default(),
        };
        for (c, f) in model.head(state, MASS_SCAN) {
            h.set.set(u32::from(c));
            h.sym[h.n] = c;
            h.freq[h.n] = f;
            h.n += 1;
        }
        h
    }

    /// The static frequency of `c` (0 if not among the first entries).
    #[inline]
    fn freq(&self, c: u8) -> u32 {
        if !self.set.has(u32::from(c)) {
            return 0;
        }
        (0..self.n)
            .find(|&i| self.sym[i] == c)
            .map_or(0, |i| u32::from(self.freq[i]))
    }
}

/// The weight of a candidate among an adaptive context's bytes: twice its count, plus the static
/// model's first-visit frequency of it in 2^-11 units (0 to 31), so that among bytes the record
/// has shown about equally often the static model's favourite goes first.
#[inline(always)]
fn weight(count: u16, f: u32) -> u32 {
    2 * u32::from(count) + (f >> 11)
}
