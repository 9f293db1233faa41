//! The match model: adaptation to the record being coded and to its context frames.
//!
//! The context model is static; text repeats itself within a record (names, identifiers, whole
//! sentences) and across the records of a conversation (every request repeats the history so
//! far). The match model keeps the *history* — the record's context frames followed by the bytes
//! coded so far — and finds the last earlier occurrence of the current context (the last
//! [`MIN_MATCH`] bytes, via a hash table, verified byte by byte) and predicts that the bytes which
//! followed it follow again.
//!
//! Where a prediction stands, the coder codes a DELTA run: the number `L` of bytes that do follow
//! as predicted (0 when the very next byte differs), Elias-gamma style with adaptive bit
//! probabilities. The `L` bytes are then copied from the history; if the record goes on, its next
//! byte is known to differ from the prediction and the context model codes it with the predicted
//! byte excluded.
//!
//! Encoder and decoder run the same match model over the same bytes, so the source of a copy is
//! never transmitted, and a copy can only reproduce bytes the decoder already holds.

/// The shortest context the match model looks up, in bytes.
pub const MIN_MATCH: usize = 8;
/// The hash table has at most 2^18 slots (1 MiB): memory stays bounded on large records, which
/// then keep only the most recent occurrence per slot.
const MAX_TABLE_BITS: u32 = 18;
/// Match lengths are verified backwards up to this many bytes.
const MAX_VERIFY: usize = 64;
/// The multiplier that hashes the last eight bytes (a word) into a table slot.
const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;
/// Classes of a predicted byte as the caller's context models see it (see
/// [`MatchModel::encode_run`]): the adaptive model's class
/// ([`AdaptiveModel::run_class`](super::AdaptiveModel::run_class)) times 2, plus 1 if the
/// static model expects the byte too.
pub const RUN_CLASSES: usize = 2 * super::adaptive::RUN_CLASSES_ADAPTIVE;
/// Run-start contexts: match-length bucket times the class of the predicted byte.
const FLAG_CONTEXTS: usize = 16 * RUN_CLASSES;
/// Bits of a run length at most (runs are shorter than 2^31 bytes).
const RUN_BITS: usize = 32;
/// The first bytes of a run are coded one continuation flag each (short matches are common and
/// their flags adapt well); the rest of a longer run as one Elias-gamma length.
pub const FLAG_RUN: usize = 16;
/// Initial probability (of 4096) that a prediction is right, by match-length bucket.
const INITIAL: [u16; 16] = [
    2600, 2900, 3100, 3300, 3450, 3550, 3650, 3720, 3780, 3830, 3870, 3900, 3930, 3960, 3990, 4020,
];

use crate::coder::{RangeDecoder, RangeEncoder};

/// Per-record match state and its reusable hash table.
#[derive(Debug)]
pub struct MatchModel {
    table: Vec<u32>,
    bits: u32,
    /// Position (in the history) of the predicted byte; valid while `len > 0`.
    ptr: usize,
    len: usize,
    hash: u64,
    /// Probability (of 4096) that a run is not empty, per run-start context.
    probs: [u16; FLAG_CONTEXTS],
    /// Probability that a run goes on, by match-length bucket and agreement.
    cont: [u16; FLAG_CONTEXTS],
    /// Elias-gamma length: unary bit-length probabilities, then mantissa bits by (length, bit).
    unary: [u16; RUN_BITS],
    mantissa: [[u16; RUN_BITS]; RUN_BITS],
    /// While a primed record is coded: the table's slots it overwrote and their primed values,
    /// so that [`rollback`](Self::rollback) restores the primed table (at most the table's
    /// size; past that the whole table is restored from the primed model).
    journal: Vec<(u32, u32)>,
    journaling: bool,
    overflowed: bool,
}

impl Default for MatchModel {
    fn default() -> Self {
        MatchModel {
            table: Vec::new(),
            bits: 0,
            ptr: 0,
            len: 0,
            hash: 0,
            probs: [2048; FLAG_CONTEXTS],
            cont: [2048; FLAG_CONTEXTS],
            unary: [2048; RUN_BITS],
            mantissa: [[2048; RUN_BITS]; RUN_BITS],
            journal: Vec::new(),
            journaling: false,
            overflowed: false,
        }
    }
}

impl Clone for MatchModel {
    fn clone(&self) -> Self {
        MatchModel {
            table: self.table.clone(),
            bits: self.bits,
            ptr: self.ptr,
            len: self.len,
            hash: self.hash,
            probs: self.probs,
            cont: self.cont,
            unary: self.unary,
            mantissa: self.mantissa,
            journal: Vec::new(),
            journaling: false,
            overflowed: false,
        }
    }
}

/// The table bits of a primed match model ([`MatchModel::prime`]): `2^18` slots (1 MiB).
pub const PRIMED_TABLE_BITS: u32 = MAX_TABLE_BITS;

/// The bucket of a match length: two lengths a bucket, 16 buckets.
#[inline]
fn bucket(len: usize) -> usize {
    (len.saturating_sub(MIN_MATCH) / 2).min(15)
}

#[inline]
fn adapt(p: &mut u16, bit: bool) {
    if bit {
        *p += (4095 - *p) >> 4;
    } else {
        *p -= *p >> 4;
    }
    *p = (*p).clamp(32, 4064);
}

impl MatchModel {
    /// A match model with no table yet.
    pub fn new() -> MatchModel {
        MatchModel::default()
    }

    /// Prepares for a record whose history (frames and record) will hold at most `len` bytes,
    /// and indexes the frames: `hist` holds them, oldest first (`frame_starts` are their start
    /// positions). The first prediction is the start of the most recent frame: records of a
    /// conversation tend to begin like the one before.
    pub fn reset(&mut self, len: usize, hist: &[u8], last_frame_start: Option<usize>) {
        self.reset_table(len);
        self.index_frames(hist, 0);
        if let Some(start) = last_frame_start.filter(|&s| s < hist.len()) {
            self.ptr = start;
            self.len = MIN_MATCH;
        }
    }

    /// Indexes an archive's primer: a table of [`PRIMED_TABLE_BITS`] bits holding the
    /// primer's positions, as [`reset`](Self::reset) would index it as the only frame. Records
    /// are then coded after it with [`reset_primed`](Self::reset_primed).
    pub fn prime(&mut self, primer: &[u8]) {
        self.journal = Vec::new();
        self.journaling = false;
        self.overflowed = false;
        self.reset_bits(PRIMED_TABLE_BITS);
        self.index_frames(primer, 0);
    }

    /// Bytes of memory the model holds (its table and journal).
    pub fn heap_bytes(&self) -> usize {
        self.table.capacity() * 4 + self.journal.capacity() * 8
    }

    /// Prepares for a record coded after the primer (`hist[..primer_len]`, already in the
    /// table by [`prime`](Self::prime)) and the frames `hist[primer_len..]`: indexes the frames
    /// as [`reset`](Self::reset) does, noting every slot it overwrites, as it will for the
    /// record's bytes, until [`rollback`](Self::rollback). `last_frame_start` as for `reset`
    /// (the primer is not a candidate: records start like the previous record of their group,
    /// not like the primer).
    pub fn reset_primed(
        &mut self,
        hist: &[u8],
        primer_len: usize,
        last_frame_start: Option<usize>,
    ) {
        self.reset_state();
        self.journaling = true;
        self.index_frames(hist, primer_len);
        if let Some(start) = last_frame_start.filter(|&s| s < hist.len()) {
            self.ptr = start;
            self.len = MIN_MATCH;
        }
    }

    /// Restores the primed table after a record (`primed`: the model as
    /// [`prime`](Self::prime) left it).
    pub fn rollback(&mut self, primed: &MatchModel) {
        if self.overflowed || self.table.len() != primed.table.len() {
            self.table.clone_from(&primed.table);
            self.bits = primed.bits;
        } else {
            for &(slot, old) in self.journal.iter().rev() {
                self.table[slot as usize] = old;
            }
        }
        self.journal.clear();
        self.journaling = false;
        self.overflowed = false;
    }

    /// Files the positions of `hist[from..]` (as ends of their last eight bytes).
    fn index_frames(&mut self, hist: &[u8], from: usize) {
        // Positions `first..=hist.len()` are filed (a position ends eight bytes at least).
        let first = (from + 1).max(MIN_MATCH);
        if first > hist.len() {
            return;
        }
        let count = hist.len() + 1 - first;
        if !self.journaling || self.journal.len() + count <= self.table.len() {
            // The common case, without a test per position: the journal (if any) takes every
            // slot overwritten. The hash of a position is its last eight bytes, as `index`
            // rolls it.
            let (table, journal, journaling) =
                (&mut self.table, &mut self.journal, self.journaling);
            let shift = 64 - self.bits;
            let slots = hist[first - MIN_MATCH..].windows(MIN_MATCH).map(|w| {
                let h = u64::from_be_bytes(w.try_into().expect("eight bytes"));
                (h.wrapping_mul(HASH_MUL) >> shift) as usize
            });
            if journaling {
                journal.extend(slots.zip(first..).map(|(slot, pos)| {
                    let old = std::mem::replace(&mut table[slot], pos as u32);
                    (slot as u32, old)
                }));
            } else {
                for (slot, pos) in slots.zip(first..) {
                    table[slot] = pos as u32;
                }
            }
            return;
        }
        let mut h = 0u64;
        let start = from.saturating_sub(MIN_MATCH);
        for (i, &b) in hist.iter().enumerate().skip(start) {
            h = (h << 8) | u64::from(b);
            if i + 1 >= MIN_MATCH && i >= from {
                let slot = self.slot(h);
                self.file(slot, (i + 1) as u32);
            }
        }
    }

    /// Sets a table slot, noting its old value while journaling.
    #[inline(always)]
    fn file(&mut self, slot: usize, pos: u32) {
        if self.journaling {
            if self.journal.len() < self.table.len() {
                self.journal.push((slot as u32, self.table[slot]));
            } else {
                self.overflowed = true;
            }
        }
        self.table[slot] = pos;
    }

    #[inline]
    fn slot(&self, h: u64) -> usize {
        (h.wrapping_mul(HASH_MUL) >> (64 - self.bits)) as usize
    }

    fn reset_table(&mut self, len: usize) {
        let bits = (len.max(64).next_power_of_two().trailing_zeros()).clamp(6, MAX_TABLE_BITS);
        self.reset_bits(bits);
    }

    fn reset_bits(&mut self, bits: u32) {
        let size = 1usize << bits;
        if self.table.len() < size {
            self.table.resize(size, 0);
        }
        self.table[..size].fill(0);
        self.bits = bits;
        self.reset_state();
    }

    /// Everything but the table: no match, fresh probabilities.
    fn reset_state(&mut self) {
        self.ptr = 0;
        self.len = 0;
        self.hash = 0;
        for (i, p) in self.probs.iter_mut().enumerate() {
            *p = INITIAL[i / RUN_CLASSES];
        }
        for (i, p) in self.cont.iter_mut().enumerate() {
            *p = INITIAL[i / RUN_CLASSES];
        }
        self.unary = [2048; RUN_BITS];
        self.mantissa = [[2048; RUN_BITS]; RUN_BITS];
    }

    /// The predicted next byte and its flag context, if a match is active. `hist` holds the
    /// bytes coded so far.
    #[inline(always)]
    pub fn predict(&self, hist: &[u8]) -> Option<(u8, usize)> {
        if self.len < MIN_MATCH {
            return None;
        }
        let m = *hist.get(self.ptr)?;
        Some((m, bucket(self.len)))
    }

    /// Codes a run of `run` bytes that follow as predicted, in run-start context `ctx`
    /// (`bucket * RUN_CLASSES + class`): continuation flags for the first [`FLAG_RUN`] bytes,
    /// then the rest of a longer run as an Elias-gamma number.
    ///
    /// `agrees(j)` is the class (below [`RUN_CLASSES`]) of the predicted byte after the first
    /// `j` bytes of the run (it is called for `j` in `1..=FLAG_RUN` in order): bit 0 tells
    /// whether the static context model's most likely byte is the predicted one, the rest is
    /// the adaptive model's [`run_class`](super::AdaptiveModel::run_class) (0 without one, so
    /// `MODELED` and `ADAPTIVE` records use classes 0 and 1 only, as before classes existed).
    pub fn encode_run(
        &mut self,
        enc: &mut RangeEncoder<'_>,
        ctx: usize,
        run: usize,
        agrees: &mut dyn FnMut(usize) -> usize,
    ) {
        let nonempty = run > 0;
        enc.encode_bit(u32::from(self.probs[ctx]), nonempty);
        adapt(&mut self.probs[ctx], nonempty);
        for j in 1..=FLAG_RUN {
            if run < j {
                return;
            }
            let c = bucket(self.len + j) * RUN_CLASSES + agrees(j);
            let p = &mut self.cont[c];
            let more = run > j;
            enc.encode_bit(u32::from(*p), more);
            adapt(p, more);
        }
        if run <= FLAG_RUN {
            return;
        }
        let v = (run - FLAG_RUN) as u32;
        let nb = (32 - v.leading_zeros()) as usize;
        for j in 1..RUN_BITS {
            let more = j < nb;
            enc.encode_bit(u32::from(self.unary[j]), more);
            adapt(&mut self.unary[j], more);
            if !more {
                break;
            }
        }
        for k in (0..nb - 1).rev() {
            let bit = v >> k & 1 != 0;
            let p = &mut self.mantissa[nb][k];
            enc.encode_bit(u32::from(*p), bit);
            adapt(p, bit);
        }
    }

    /// Decodes a run length in run-start context `ctx`; at most `max` (the record's remaining
    /// bytes) is accepted, anything longer is corrupt input.
    ///
    /// `agrees(j)` as for [`encode_run`](Self::encode_run); the decoder's history must already
    /// hold the first `j` bytes of the run when it is called (see `run_byte`).
    pub fn decode_run(
        &mut self,
        dec: &mut RangeDecoder<'_>,
        ctx: usize,
        max: usize,
        agrees: &mut dyn FnMut(usize) -> usize,
    ) -> Option<usize> {
        let nonempty = dec.decode_bit(u32::from(self.probs[ctx]));
        adapt(&mut self.probs[ctx], nonempty);
        if !nonempty {
            return Some(0);
        }
        let mut run = 1;
        while run <= FLAG_RUN {
            if run > max {
                return None;
            }
            let c = bucket(self.len + run) * RUN_CLASSES + agrees(run);
            let p = &mut self.cont[c];
            let more = dec.decode_bit(u32::from(*p));
            adapt(p, more);
            if !more {
                return (run <= max).then_some(run);
            }
            run += 1;
        }
        let mut nb = RUN_BITS;
        for j in 1..RUN_BITS {
            let more = dec.decode_bit(u32::from(self.unary[j]));
            adapt(&mut self.unary[j], more);
            if !more {
                nb = j;
                break;
            }
        }
        if nb >= RUN_BITS {
            return None;
        }
        let mut v: u32 = 1 << (nb - 1);
        for k in (0..nb - 1).rev() {
            let p = &mut self.mantissa[nb][k];
            let bit = dec.decode_bit(u32::from(*p));
            adapt(p, bit);
            v |= u32::from(bit) << k;
        }
        let run = FLAG_RUN + v as usize;
        (run <= max).then_some(run)
    }

    /// The position in the history of the predicted next byte (valid after `predict` said so).
    #[inline]
    pub fn source(&self) -> usize {
        self.ptr
    }

    /// [`update`](Self::update) for a byte coded while no match was active (`predict` said
    /// `None`): the same, minus the continuation test.
    #[inline(always)]
    pub fn update_idle(&mut self, hist: &[u8]) {
        debug_assert!(self.len == 0, "a match is active");
        self.index(hist);
    }

    /// Takes in the byte just coded; `hist` holds all bytes coded so far, that byte last.
    #[inline(always)]
    pub fn update(&mut self, hist: &[u8]) {
        let x = hist[hist.len() - 1];
        if self.len > 0 && hist[self.ptr] == x {
            self.len += 1;
            self.ptr += 1;
        } else {
            self.len = 0;
        }
        self.index(hist);
    }

    /// Hashes the last byte in, looks for a match if none is active, and files the position.
    #[inline(always)]
    fn index(&mut self, hist: &[u8]) {
        let pos = hist.len();
        self.hash = (self.hash << 8) | u64::from(hist[pos - 1]);
        if pos < MIN_MATCH {
            return;
        }
        let slot = self.slot(self.hash);
        if self.len == 0 {
            // Positions in the table are at least MIN_MATCH (= 8): a candidate is a match if
            // its last eight bytes are ours, and then as long as the bytes before agree.
            let cand = self.table[slot] as usize;
            if cand > 0 && last8(&hist[..cand]) == last8(hist) {
                self.ptr = cand;
                self.len =
                    MIN_MATCH + common_suffix(&hist[..cand - 8], &hist[..pos - 8], MAX_VERIFY - 8);
            }
        }
        self.file(slot, pos as u32);
    }
}

/// The last eight bytes of `h` (at least eight long) as one word.
#[inline(always)]
fn last8(h: &[u8]) -> u64 {
    let w: [u8; 8] = h[h.len() - 8..].try_into().expect("eight bytes");
    u64::from_ne_bytes(w)
}

/// How many bytes `a` and `b` have in common at their ends, at most `max` (and at most the
/// shorter length); compares eight bytes at a time.
#[inline]
fn common_suffix(a: &[u8], b: &[u8], max: usize) -> usize {
    let max = max.min(a.len()).min(b.len());
    let (a, b) = (&a[a.len() - max..], &b[b.len() - max..]);
    let mut n = 0;
    while n + 8 <= max {
        let wa = u64::from_le_bytes(a[max - n - 8..max - n].try_into().expect("8 bytes"));
        let wb = u64::from_le_bytes(b[max - n - 8..max - n].try_into().expect("8 bytes"));
        let x = wa ^ wb;
        if x != 0 {
            // Little-endian: the most significant byte is the one nearest the end.
            return n + (x.leading_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + a[..max - n]
        .iter()
        .rev()
        .zip(b[..max - n].iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `index_frames` as it was written first, one position at a time through `file`.
    fn index_frames_by_position(m: &mut MatchModel, hist: &[u8], from: usize) {
        let mut h = 0u64;
        let start = from.saturating_sub(MIN_MATCH);
        for (i, &b) in hist.iter().enumerate().skip(start) {
            h = (h << 8) | u64::from(b);
            if i + 1 >= MIN_MATCH && i >= from {
                let slot = m.slot(h);
                m.file(slot, (i + 1) as u32);
            }
        }
    }

    #[test]
    fn frames_are_indexed_as_one_position_at_a_time() {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 33) as usize
        };
        for _ in 0..300 {
            let len = next() % 200;
            let hist: Vec<u8> = (0..len).map(|_| b"abcab "[next() % 6]).collect();
            let from = next() % (len + 3);
            // A primed table (journaling), with a journal partly full: the fast path takes the
            // positions that fit, the other the rest, flagging the overflow the same way.
            for (bits, journaling, already) in
                [(6, false, 0), (6, true, 0), (6, true, 40), (8, true, 0)]
            {
                let mut fast = MatchModel::new();
                fast.reset_bits(bits);
                for i in 0..fast.table.len() {
                    fast.table[i] = (i * 7 % 50) as u32;
                }
                fast.journaling = journaling;
                fast.journal = vec![(1, 2); already];
                let mut slow = fast.clone();
                slow.journaling = journaling;
                slow.journal = fast.journal.clone();
                fast.index_frames(&hist, from);
                index_frames_by_position(&mut slow, &hist, from);
                assert_eq!(fast.table, slow.table, "{len} {from} {bits}");
                assert_eq!(fast.journal, slow.journal, "{len} {from} {bits}");
                assert_eq!(fast.overflowed, slow.overflowed, "{len} {from} {bits}");
            }
        }
    }

    #[test]
    fn common_suffix_counts_like_a_byte_loop() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 60) as u8 & 3
        };
        for _ in 0..20_000 {
            let la = (next() as usize * 7 + next() as usize * 5) % 40;
            let lb = (next() as usize * 11 + next() as usize) % 40;
            let common: Vec<u8> = (0..(next() as usize * 9)).map(|_| next()).collect();
            let mut a: Vec<u8> = (0..la).map(|_| next()).collect();
            let mut b: Vec<u8> = (0..lb).map(|_| next()).collect();
            a.extend_from_slice(&common);
            b.extend_from_slice(&common);
            for max in [0, 1, 7, 8, 9, 16, 64] {
                let slow = a
                    .iter()
                    .rev()
                    .zip(b.iter().rev())
                    .take(max)
                    .take_while(|(x, y)| x == y)
                    .count();
                assert_eq!(common_suffix(&a, &b, max), slow, "{a:?} {b:?} {max}");
            }
        }
    }
}
