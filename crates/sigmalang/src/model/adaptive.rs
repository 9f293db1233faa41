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
//! Encoder and decoder run the same updates over the same bytes, so nothing of the adaptive
//! state is transmitted. The model's memory is bounded by [`MAX_TABLE_BITS`]: 16 MiB of contexts.

use super::{ByteSet, ContextModel};
use crate::coder::{RangeDecoder, RangeEncoder};

/// The orders of the adaptive contexts, highest first.
pub const ADAPTIVE_ORDERS: [u8; 4] = [5, 3, 2, 1];
/// Bytes a context lists at most; a new byte then replaces the least frequent.
pub const SLOT_SYMS: usize = 16;
/// The table has at most `2^MAX_TABLE_BITS` contexts (of 64 bytes: 16 MiB).
pub const MAX_TABLE_BITS: u32 = 18;
/// The table has at least `2^MIN_TABLE_BITS` contexts (64 KiB).
const MIN_TABLE_BITS: u32 = 10;
const ORDERS: usize = 6;

/// Experimental knobs (read once from the environment).
#[derive(Clone, Copy, Debug)]
struct Knobs {
    orders: [u8; ORDERS],
    norders: usize,
    limit: u16,
    last: bool,
    adaptive_rate: bool,
    rate: u32,
    inh: u32,
    inh_max: u16,
    tbits: u32,
    stats: bool,
    pushlearn: usize,
    see2: u32,
    wmul: u32,
    wsh: u32,
    inc: u16,
    runcls: u32,
}

thread_local! {
    static STATS: std::cell::RefCell<[f64; 16]> = const { std::cell::RefCell::new([0.0; 16]) };
}

pub(crate) fn stat(i: usize, v: f64) {
    STATS.with(|s| s.borrow_mut()[i] += v);
}

/// Prints and clears the statistics.
pub fn print_stats() {
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        if s[11] == 0.0 && s[0] == 0.0 {
            return;
        }
        eprintln!("bytes by order idx / static: {:?}", &s[0..7]);
        eprintln!("bits: escflag-hit {:.0} escflag-esc {:.0} sym {:.0} static-bytes-bits? n/a pushes {:.0}", s[8]/8.0, s[9]/8.0, s[10]/8.0, s[11]);
        eprintln!("runs {} bytes: start {:.0} flags {:.0} gamma {:.0}", s[13], s[12]/8.0, s[14]/8.0, s[15]/8.0);
        *s = [0.0; 16];
    });
}

fn knobs() -> Knobs {
    static K: std::sync::OnceLock<Knobs> = std::sync::OnceLock::new();
    *K.get_or_init(|| {
        let var = |n: &str, d: u32| -> u32 {
            std::env::var(n).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
        };
        let mut orders = [0u8; ORDERS];
        let list = std::env::var("SG_ORDERS").unwrap_or_else(|_| "5,3,2,1".into());
        let mut norders = 0;
        for (i, o) in list.split(',').enumerate() {
            orders[i] = o.parse().unwrap();
            norders += 1;
        }
        Knobs {
            orders,
            norders,
            limit: var("SG_LIMIT", 30) as u16,
            last: var("SG_LAST", 0) != 0,
            adaptive_rate: var("SG_ARATE", 0) != 0,
            rate: var("SG_RATE", 6),
            inh: var("SG_INH", 0),
            inh_max: var("SG_INHMAX", 1) as u16,
            tbits: var("SG_TBITS", 0),
            stats: var("SG_STATS", 0) != 0,
            pushlearn: var("SG_PUSH", 0) as usize,
            see2: var("SG_SEE2", 0),
            wmul: var("SG_WMUL", 2),
            wsh: var("SG_WSH", 11),
            inc: var("SG_INC", 1) as u16,
            runcls: var("SG_RUNCLS", 2),
        }
    })
}
/// A context's counts are halved when one passes this.
const COUNT_LIMIT: u16 = 30;
/// How many of the static context's entries (most frequent first) are summed for the static
/// probability of the candidates.
const MASS_SCAN: usize = 8;
/// Secondary-estimation cells: order index (4), symbols (4), count (8), static mass (8),
/// first visit (2).
const SEE_LEN: usize = ORDERS * 4 * 8 * 8 * 2 * 4;
const SEE2_LEN: usize = 1 << 16;
/// The learning rate of the escape estimates (a shift).
const SEE_RATE: u32 = 6;

/// The table size of a record of `len` bytes: `2^bits` contexts with
/// `bits = clamp(ceil(log2(max(len, 1))) - 3, 10, 18)`, so at most 8 bytes of table per byte of
/// record (and at least 64 KiB, at most 16 MiB).
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
    table: Vec<Slot>,
    bits: u32,
    see: Vec<u16>,
    see_n: Vec<u8>,
    see2: Vec<u16>,
    see2_n: Vec<u8>,
    k: Knobs,
    /// The SEE bucket of how the previous byte was coded.
    last: usize,
    /// The initial count of a byte in a new context.
    init: u16,
    /// The last eight bytes, the latest lowest.
    hist: u64,
    /// The slot of each order for the byte being coded, and whether its context was there.
    at: [usize; ORDERS],
    check: [u32; ORDERS],
    found: [bool; ORDERS],
    /// While a record is coded after a primer: the slots it changed and their primed values,
    /// so that [`rollback`](Self::rollback) restores the primed state (at most a quarter of the
    /// table; past that the whole table is restored from the primed model).
    journal: Vec<(u32, Slot)>,
    journaling: bool,
    overflowed: bool,
}

impl Clone for AdaptiveModel {
    fn clone(&self) -> Self {
        AdaptiveModel {
            table: self.table.clone(),
            bits: self.bits,
            see: self.see.clone(),
            see_n: self.see_n.clone(),
            see2: self.see2.clone(),
            see2_n: self.see2_n.clone(),
            k: self.k,
            last: self.last,
            init: self.init,
            hist: self.hist,
            at: self.at,
            check: self.check,
            found: self.found,
            journal: Vec::new(),
            journaling: false,
            overflowed: false,
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
fn see_index(j: usize, cnt: usize, tot: u32, sp: u32, first: bool, last: usize) -> usize {
    ((((j * 4 + sym_bucket(cnt)) * 8 + count_bucket(tot)) * 8 + static_bucket(sp)) * 2
        + usize::from(first))
        * 4
        + last
}

impl Default for AdaptiveModel {
    fn default() -> Self {
        AdaptiveModel::new()
    }
}

impl AdaptiveModel {
    /// A model with no table yet (it is allocated by the first [`reset`](Self::reset)).
    pub fn new() -> AdaptiveModel {
        AdaptiveModel {
            table: Vec::new(),
            bits: MIN_TABLE_BITS,
            see: vec![0; SEE_LEN],
            see_n: vec![0; SEE_LEN],
            see2: vec![32768; SEE2_LEN],
            see2_n: vec![0; SEE2_LEN],
            k: knobs(),
            last: 0,
            init: 1,
            hist: 0,
            at: [0; ORDERS],
            check: [0; ORDERS],
            found: [false; ORDERS],
            journal: Vec::new(),
            journaling: false,
            overflowed: false,
        }
    }

    /// Bytes of memory the model holds (its table, escape estimates and journal).
    pub fn heap_bytes(&self) -> usize {
        (self.table.capacity() + self.journal.capacity()) * std::mem::size_of::<Slot>()
            + self.see.capacity() * 2
    }

    /// Starts a record coded from this (primed) state: every change to the table is noted, so
    /// that [`rollback`](Self::rollback) can undo it without copying the table.
    pub fn begin_record(&mut self) {
        self.journal.clear();
        self.journaling = true;
        self.overflowed = false;
    }

    /// Restores the state `primed` (this model's state when
    /// [`begin_record`](Self::begin_record) was called, of which `primed` is a copy): the
    /// slots the record changed, the escape estimates and the history.
    pub fn rollback(&mut self, primed: &AdaptiveModel) {
        if self.overflowed || self.table.len() != primed.table.len() {
            self.table.clone_from(&primed.table);
        } else {
            for &(idx, slot) in self.journal.iter().rev() {
                self.table[idx as usize] = slot;
            }
        }
        self.bits = primed.bits;
        self.see.copy_from_slice(&primed.see);
        self.see_n.copy_from_slice(&primed.see_n);
        self.see2.copy_from_slice(&primed.see2);
        self.see2_n.copy_from_slice(&primed.see2_n);
        self.last = primed.last;
        self.hist = primed.hist;
        self.journal.clear();
        self.journaling = false;
        self.overflowed = false;
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
            self.journal.push((idx as u32, old));
        } else {
            self.overflowed = true;
        }
    }

    /// Forgets everything: the start of a record of `len` bytes, which sizes the table.
    pub fn reset(&mut self, len: usize) {
        self.bits = table_bits(len) + self.k.tbits;
        let size = 1usize << self.bits;
        if self.table.len() < size {
            self.table.resize(size, Slot::default());
        }
        self.table[..size].fill(Slot::default());
        let reps = [1u32, 2, 4, 7, 12, 24, 48, 96];
        let syms = [1u32, 2, 3, 6];
        for (i, p) in self.see.iter_mut().enumerate() {
            let i = i / 4;
            let b = i / 16 % 8;
            let cnt = syms[i / 128 % 4];
            let tot = reps[b].max(cnt);
            *p = (65536 * cnt / (tot + cnt)).clamp(2048, 63488) as u16;
        }
        self.see_n.fill(0);
        self.see2.fill(32768);
        self.see2_n.fill(0);
        self.last = 0;
        self.hist = 0;
    }

    /// Takes in a byte coded by other means (a DELTA run): history only, no statistics.
    #[inline(always)]
    pub fn push(&mut self, x: u8) {
        if self.k.stats {
            stat(11, 1.0);
        }
        if self.k.pushlearn > 0 {
            let slots = self.fetch();
            let lim = self.k.pushlearn.min(self.k.norders);
            let mut coded = lim;
            for (j, s) in slots.iter().enumerate().take(lim) {
                if self.found[j] && s.sym[..s.n as usize].contains(&x) {
                    coded = j;
                    break;
                }
            }
            self.init = 1;
            self.learn(x, coded.min(lim - 1), 0);
            if self.k.last {
                self.last = 0;
            }
            return;
        }
        if self.k.last {
            self.last = 0;
        }
        self.hist = self.hist << 8 | u64::from(x);
    }

    /// The class (below [`RUN_CLASSES`](super::RUN_CLASSES) / 2) of byte `m` predicted by the
    /// match model after the history and then `done`: how the highest-order adaptive context
    /// present sees it.
    #[inline]
    pub fn run_class(&self, done: &[u8], m: u8) -> usize {
        if self.k.runcls == 0 {
            return 0;
        }
        let mut h = self.hist;
        for &b in &done[done.len().saturating_sub(8)..] {
            h = h << 8 | u64::from(b);
        }
        for (j, &o) in self.k.orders[..self.k.norders].iter().enumerate() {
            let (idx, check) = self.locate_in(h, o);
            let s = &self.table[idx];
            if s.check != check {
                continue;
            }
            let n = s.n as usize;
            let c = match s.sym[..n].iter().position(|&c| c == m) {
                None => 1,
                Some(0) if n == 1 => 4,
                Some(0) => {
                    let tot: u32 = s.freq[..n].iter().map(|&f| u32::from(f)).sum();
                    if 2 * u32::from(s.freq[0]) >= tot {
                        5
                    } else {
                        3
                    }
                }
                Some(_) => 2,
            };
            return if j == 0 || self.k.runcls == 1 { c } else { c + 6 };
        }
        0
    }

    #[inline(always)]
    fn locate(&self, order: u8) -> (usize, u32) {
        self.locate_in(self.hist, order)
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

    /// The contexts of every order for the next byte (loaded together, so that their cache
    /// misses overlap); notes where they are and which exist.
    #[inline(always)]
    fn fetch(&mut self) -> [Slot; ORDERS] {
        let mut slots = [Slot::default(); ORDERS];
        let k = self.k;
        for (j, &o) in k.orders[..k.norders].iter().enumerate() {
            let (idx, check) = self.locate(o);
            self.at[j] = idx;
            self.check[j] = check;
            slots[j] = self.table[idx];
            self.found[j] = slots[j].check == check;
        }
        slots
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
        let orders = self.k.norders;
        let mut coded = orders;
        let mut nesc = 0usize;
        self.init = 1;
        let slots = self.fetch();
        for (j, s) in slots.iter().enumerate().take(orders) {
            let s = *s;
            if !self.found[j] {
                continue;
            }
            let (mut tot, mut cnt, mut sp, mut wt, mut cx, mut fx, mut nx) =
                (0u32, 0usize, 0u32, 0u32, None, 0, 0u32);
            let mut maxf = 0u16;
            for i in 0..s.n as usize {
                let c = s.sym[i];
                if excl.has(u32::from(c)) {
                    continue;
                }
                let f = head.freq(c);
                let w = weight(s.freq[i], f);
                if c == x {
                    cx = Some(wt);
                    fx = w;
                    nx = u32::from(s.freq[i]);
                }
                wt += w;
                maxf = maxf.max(s.freq[i]);
                sp += f;
                tot += u32::from(s.freq[i]);
                cnt += 1;
            }
            if cnt == 0 {
                continue;
            }
            let si = see_index(j, cnt, tot, sp, !any, self.last);
            let s2 = self.see2_index(j, cnt, tot, maxf, sp, !any);
            let p = self.p_esc(si, s2);
            let esc = cx.is_none();
            enc.encode_bit(u32::from(p >> 4).clamp(1, 4095), esc);
            if self.k.stats {
                let q = f64::from(u32::from(p >> 4).clamp(1, 4095)) / 4096.0;
                if esc {
                    stat(9, -q.log2());
                } else {
                    stat(8, -(1.0 - q).log2());
                    if cnt > 1 {
                        stat(10, (f64::from(wt) / f64::from(fx)).log2());
                    }
                }
            }
            self.adapt(si, s2, esc);
            if let Some(cum) = cx {
                if cnt > 1 {
                    enc.encode(cum, fx, wt);
                }
                self.inherit(nx, tot);
                coded = j;
                break;
            }
            nesc += 1;
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
        if self.k.stats {
            stat(coded.min(6), 1.0);
        }
        self.learn(x, coded, nesc);
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
        let orders = self.k.norders;
        let mut nesc = 0usize;
        self.init = 1;
        let slots = self.fetch();
        for (j, s) in slots.iter().enumerate().take(orders) {
            let s = *s;
            if !self.found[j] {
                continue;
            }
            let (mut tot, mut cnt, mut sp, mut wt, mut first) = (0u32, 0usize, 0u32, 0u32, None);
            let mut maxf = 0u16;
            for i in 0..s.n as usize {
                let c = s.sym[i];
                if excl.has(u32::from(c)) {
                    continue;
                }
                first.get_or_insert(i);
                let f = head.freq(c);
                wt += weight(s.freq[i], f);
                maxf = maxf.max(s.freq[i]);
                sp += f;
                tot += u32::from(s.freq[i]);
                cnt += 1;
            }
            if cnt == 0 {
                continue;
            }
            let si = see_index(j, cnt, tot, sp, !any, self.last);
            let s2 = self.see2_index(j, cnt, tot, maxf, sp, !any);
            let p = self.p_esc(si, s2);
            let esc = dec.decode_bit(u32::from(p >> 4).clamp(1, 4095));
            self.adapt(si, s2, esc);
            if !esc {
                let hit = if cnt == 1 {
                    first.unwrap_or(0)
                } else {
                    let (r, code) = dec.decode_scale(wt);
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
                let x = s.sym[hit];
                self.inherit(u32::from(s.freq[hit]), tot);
                self.learn(x, j, nesc);
                return (x, model.advance(state, x));
            }
            nesc += 1;
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
        self.learn(x, orders, nesc);
        (x, next)
    }

    /// The initial count of the coded byte in the new contexts above the one that coded it,
    /// from its count `nx` among `tot` there.
    #[inline]
    fn inherit(&mut self, nx: u32, tot: u32) {
        if self.k.inh > 0 {
            let v = (nx * self.k.inh + tot / 2) / tot.max(1);
            self.init = (v as u16).clamp(1, self.k.inh_max);
        }
    }

    #[inline]
    fn see2_index(&self, j: usize, cnt: usize, tot: u32, maxf: u16, sp: u32, first: bool) -> usize {
        let last = (self.hist & 0xff) as usize;
        let share = (u32::from(maxf) * 4 / tot.max(1)).min(3) as usize;
        match self.k.see2 {
            1 => ((j * 4 + sym_bucket(cnt)) * 8 + count_bucket(tot)) * 256 + last,
            2 => (((j * 4 + sym_bucket(cnt)) * 4 + share) * 8 + static_bucket(sp)) * 2 + usize::from(first),
            3 => ((((j * 4 + sym_bucket(cnt)) * 4 + share) * 8 + count_bucket(tot)) * 2 + usize::from(first)) * 8 + (last >> 5),
            _ => 0,
        }
    }

    #[inline]
    fn p_esc(&self, si: usize, s2: usize) -> u16 {
        if self.k.see2 == 0 {
            self.see[si]
        } else {
            ((u32::from(self.see[si]) + u32::from(self.see2[s2])) / 2) as u16
        }
    }

    #[inline]
    fn adapt(&mut self, si: usize, s2: usize, bit: bool) {
        if self.k.see2 != 0 {
            let p = &mut self.see2[s2];
            let n = &mut self.see2_n[s2];
            let d = (u32::from(*n) + 2).min(1 << self.k.rate) as i32;
            let t = if bit { 65535 } else { 0 };
            let v = i32::from(*p) + (t - i32::from(*p)) / d;
            *p = v.clamp(1, 65535) as u16;
            *n = n.saturating_add(1);
        }
        let p = &mut self.see[si];
        if self.k.adaptive_rate {
            let n = &mut self.see_n[si];
            let d = (u32::from(*n) + 2).min(1 << self.k.rate) as i32;
            let t = if bit { 65535 } else { 0 };
            let v = i32::from(*p) + (t - i32::from(*p)) / d;
            *p = v.clamp(1, 65535) as u16;
            *n = n.saturating_add(1);
        } else if bit {
            *p += (65535 - *p) >> self.k.rate;
        } else {
            *p -= *p >> self.k.rate;
        }
    }

    /// Every adaptive context from the highest order down to the one that coded `x` (index
    /// `coded`, or all of them if the static model did) learns `x`; then `x` joins the history.
    #[inline]
    fn learn(&mut self, x: u8, coded: usize, nesc: usize) {
        let visited = self.k.norders.min(coded + 1);
        let (at, checks, founds) = (self.at, self.check, self.found);
        let init = self.init;
        let limit = self.k.limit;
        for ((&idx, &check), &found) in at.iter().zip(&checks).zip(&founds).take(visited) {
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
            match s.sym[..n].iter().position(|&c| c == x) {
                Some(mut i) => {
                    s.freq[i] += self.k.inc;
                    while i > 0 && s.freq[i] > s.freq[i - 1] {
                        s.freq.swap(i, i - 1);
                        s.sym.swap(i, i - 1);
                        i -= 1;
                    }
                    if s.freq[i] > limit {
                        for f in &mut s.freq[..n] {
                            *f = (*f + 1) >> 1;
                        }
                    }
                }
                None if n < SLOT_SYMS => {
                    s.sym[n] = x;
                    s.freq[n] = init;
                    s.n += 1;
                    let mut i = n;
                    while i > 0 && s.freq[i] > s.freq[i - 1] {
                        s.freq.swap(i, i - 1);
                        s.sym.swap(i, i - 1);
                        i -= 1;
                    }
                }
                None => {
                    s.sym[n - 1] = x;
                    s.freq[n - 1] = init;
                    let mut i = n - 1;
                    while i > 0 && s.freq[i] > s.freq[i - 1] {
                        s.freq.swap(i, i - 1);
                        s.sym.swap(i, i - 1);
                        i -= 1;
                    }
                }
            }
        }
        if self.k.last {
            self.last = if coded >= self.k.norders { 3 } else { nesc.min(2) };
        }
        self.hist = self.hist << 8 | u64::from(x);
    }
}

/// The first [`MASS_SCAN`] entries of a static context: bytes and first-visit frequencies.
struct Head {
    sym: [u8; MASS_SCAN],
    freq: [u16; MASS_SCAN],
    n: usize,
}

impl Head {
    #[inline]
    fn of(model: &ContextModel, state: u32) -> Head {
        let mut h = Head {
            sym: [0; MASS_SCAN],
            freq: [0; MASS_SCAN],
            n: 0,
        };
        for (c, f) in model.head(state, MASS_SCAN) {
            h.sym[h.n] = c;
            h.freq[h.n] = f;
            h.n += 1;
        }
        h
    }

    /// The static frequency of `c` (0 if not among the first entries).
    #[inline]
    fn freq(&self, c: u8) -> u32 {
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
    let k = knobs();
    k.wmul * u32::from(count) + (f >> k.wsh)
}


