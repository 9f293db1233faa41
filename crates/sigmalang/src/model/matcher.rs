//! The match model: adaptation to the record being coded.
//!
//! The context model is static; text repeats itself within a record (names, identifiers, whole
//! sentences of a long document) in ways no corpus-wide model knows. The match model finds the
//! last earlier occurrence of the current context (the last [`MIN_MATCH`] bytes, via a hash
//! table) in the bytes coded so far and predicts the byte that followed it. The coder then codes
//! one binary flag, "the prediction is right", with a probability that adapts to how often
//! predictions of that match length were right in this record; on a miss the context model codes
//! the byte with the predicted byte excluded.
//!
//! Encoder and decoder run the same match model over the same bytes, so no match information is
//! transmitted.

/// The shortest context the match model looks up, in bytes.
pub const MIN_MATCH: usize = 8;
/// The hash table has at most 2^18 slots (1 MiB): memory stays bounded on large records, which
/// then keep only the most recent occurrence per slot.
const MAX_TABLE_BITS: u32 = 18;
/// Match lengths are verified backwards up to this many bytes.
const MAX_VERIFY: usize = 64;
/// Flag-probability contexts: match-length bucket times "the context model expects it too".
const FLAG_CONTEXTS: usize = 32;
/// Initial probability (of 4096) that a prediction is right, by match-length bucket.
const INITIAL: [u16; 16] = [
    2600, 2900, 3100, 3300, 3450, 3550, 3650, 3720, 3780, 3830, 3870, 3900, 3930, 3960, 3990, 4020,
];

/// Per-record match state and its reusable hash table.
#[derive(Debug, Default)]
pub struct MatchModel {
    table: Vec<u32>,
    bits: u32,
    /// Position (in the history) of the predicted byte; valid while `len > 0`.
    ptr: usize,
    len: usize,
    hash: u64,
    probs: [u16; FLAG_CONTEXTS],
}

impl MatchModel {
    /// A match model with no table yet.
    pub fn new() -> MatchModel {
        MatchModel::default()
    }

    /// Prepares for a record whose history will hold at most `len` bytes.
    pub fn reset(&mut self, len: usize) {
        let bits = (len.max(64).next_power_of_two().trailing_zeros()).clamp(6, MAX_TABLE_BITS);
        let size = 1usize << bits;
        if self.table.len() < size {
            self.table.resize(size, 0);
        }
        self.table[..size].fill(0);
        self.bits = bits;
        self.ptr = 0;
        self.len = 0;
        self.hash = 0;
        for (i, p) in self.probs.iter_mut().enumerate() {
            *p = INITIAL[i % 16];
        }
    }

    /// The predicted next byte and its flag context, if a match is active. `hist` holds the
    /// bytes coded so far.
    #[inline]
    pub fn predict(&self, hist: &[u8]) -> Option<(u8, usize)> {
        if self.len < MIN_MATCH {
            return None;
        }
        let m = *hist.get(self.ptr)?;
        let bucket = ((self.len - MIN_MATCH) / 2).min(15);
        Some((m, bucket))
    }

    /// The probability (of 4096) that the prediction is right in flag context `ctx`, where
    /// `ctx = bucket * 2 + agrees`.
    #[inline]
    pub fn p(&self, ctx: usize) -> u32 {
        u32::from(self.probs[ctx])
    }

    /// Adapts flag context `ctx` to the outcome.
    #[inline]
    pub fn learn(&mut self, ctx: usize, hit: bool) {
        let p = &mut self.probs[ctx];
        if hit {
            *p += (4095 - *p) >> 4;
        } else {
            *p -= *p >> 4;
        }
        *p = (*p).clamp(32, 4064);
    }

    /// Takes in the byte just coded; `hist` holds all bytes coded so far, that byte last.
    #[inline]
    pub fn update(&mut self, hist: &[u8]) {
        let pos = hist.len();
        let x = hist[pos - 1];
        self.hash = (self.hash << 8) | u64::from(x);
        if self.len > 0 && hist[self.ptr] == x {
            self.len += 1;
            self.ptr += 1;
        } else {
            self.len = 0;
        }
        if pos < MIN_MATCH {
            return;
        }
        let slot = (self.hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - self.bits)) as usize;
        if self.len == 0 {
            let cand = self.table[slot] as usize;
            if cand > 0 {
                let n = (1..=MAX_VERIFY.min(cand))
                    .take_while(|&k| hist[cand - k] == hist[pos - k])
                    .count();
                if n >= MIN_MATCH {
                    self.ptr = cand;
                    self.len = n;
                }
            }
        }
        self.table[slot] = pos as u32;
    }
}
