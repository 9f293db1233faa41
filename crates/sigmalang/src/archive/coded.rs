//! The coded index (header flag bit 6, FORMAT.md §5.1): the record entries of an archive whose
//! records are coded alone, range-coded as one body with small adaptive bit models instead of
//! plain varints, with each record's decoded length and mode, which its payload then no longer
//! starts with. The writer and the reader run the same function ([`EntryCoder::code`]) over a
//! [`BitCoder`] that either writes the bits it is given or reads them, so the two cannot
//! disagree on what is coded in which context.
//!
//! Also here: [`crc32c_combine`], with which the writer of a coded index merges the checksums of
//! blocks of 16 records into the larger blocks it chooses.

use std::collections::HashMap;

use crate::coder::{RangeDecoder, RangeEncoder};
use crate::record::MAX_RECORD_LEN;

/// Level codes of the index (FORMAT.md §5.1).
pub(super) const DELTA: u8 = 0;
pub(super) const KEYFRAME: u8 = 1;
pub(super) const ROOT: u8 = 2;
pub(super) const COPY: u8 = 3;

/// One record entry as the coded index holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The record's context id.
    pub cid: u32,
    /// Its level code: 0 delta, 1 keyframe, 2 root, 3 copy.
    pub level: u8,
    /// How many bank roots it references (0 to 2).
    pub nrefs: u8,
    /// How far back each reference is (`d`, at least 1; the first `nrefs` count).
    pub refs: [u64; 2],
    /// A copy's distance back to its source (at least 1; 0 for other records).
    pub source: u64,
    /// The record's decoded length (FORMAT.md §3; 0 for a copy).
    pub raw_len: u64,
    /// Its mode (0 `STORED` to 3 `ADAPTIVE2`; 0 for a copy).
    pub mode: u8,
    /// The length of its payload in the file, the body without the header `H` (0 for a copy;
    /// `raw_len` for a `STORED` record).
    pub body_len: u64,
}

/// An adaptive bit probability: `p` of 65536 that the bit is 1, starting at one half.
#[derive(Clone, Copy, Debug)]
pub(super) struct Prob(u32);

impl Default for Prob {
    fn default() -> Self {
        Prob(1 << 15)
    }
}

impl Prob {
    /// The probability the range coder codes with, of 4096.
    #[inline]
    fn p1(self) -> u32 {
        (self.0 >> 4).clamp(1, 4095)
    }

    /// Moves `1/32` of the way towards the bit seen.
    #[inline]
    fn update(&mut self, bit: bool) {
        if bit {
            self.0 += (65536 - self.0) >> 5;
        } else {
            self.0 -= self.0 >> 5;
        }
    }
}

/// Writes or reads one bit with an adaptive probability.
pub(super) trait BitCoder {
    /// Codes `bit` (the encoder) or decodes a bit, ignoring `bit` (the decoder); returns the
    /// bit coded, and updates `p` with it.
    fn bit(&mut self, p: &mut Prob, bit: bool) -> bool;
}

/// The [`BitCoder`] that writes.
pub(super) struct Writing<'a>(pub(super) RangeEncoder<'a>);

impl BitCoder for Writing<'_> {
    #[inline]
    fn bit(&mut self, p: &mut Prob, bit: bool) -> bool {
        self.0.encode_bit(p.p1(), bit);
        p.update(bit);
        bit
    }
}

/// The [`BitCoder`] that reads.
pub(super) struct Reading<'a>(pub(super) RangeDecoder<'a>);

impl BitCoder for Reading<'_> {
    #[inline]
    fn bit(&mut self, p: &mut Prob, _: bool) -> bool {
        let bit = self.0.decode_bit(p.p1());
        p.update(bit);
        bit
    }
}

/// Unary models of an exponent: one per unary position (the last shared by the rest).
const UNARY: usize = 24;
/// Exponents above this share the models of this one.
const EXPONENTS: usize = 64;

/// An Elias-gamma code with adaptive bits, in `ctx` contexts: `v + 1 = 2^k + m` (`m < 2^k`) is
/// coded as `k` in unary (`k` ones, then a zero, each bit with the model of its position), then
/// the `k` bits of `m` from the top, the first two with a bit tree of the exponent's and the
/// rest with one model per exponent.
struct Gamma {
    unary: Vec<[Prob; UNARY]>,
    top: Vec<[[Prob; 4]; EXPONENTS]>,
    low: Vec<[Prob; EXPONENTS]>,
}

impl Gamma {
    fn new(contexts: usize) -> Gamma {
        Gamma {
            unary: vec![[Prob::default(); UNARY]; contexts],
            top: vec![[[Prob::default(); 4]; EXPONENTS]; contexts],
            low: vec![[Prob::default(); EXPONENTS]; contexts],
        }
    }

    /// Codes `v` (the encoder; ignored by the decoder) in context `ctx`; `None` if the exponent
    /// read exceeds `max_k` (the value would be at least `2^(max_k + 1) - 1`).
    #[inline]
    fn code(&mut self, io: &mut impl BitCoder, ctx: usize, v: u64, max_k: u32) -> Option<u64> {
        let x = v.saturating_add(1);
        let k_in = 63 - x.leading_zeros();
        let unary = &mut self.unary[ctx];
        let mut k = 0u32;
        while io.bit(&mut unary[(k as usize).min(UNARY - 1)], k < k_in) {
            k += 1;
            if k > max_k {
                return None;
            }
        }
        let e = (k as usize).min(EXPONENTS - 1);
        let top = &mut self.top[ctx][e];
        let low = &mut self.low[ctx][e];
        let mut out = 1u64;
        for j in (0..k).rev() {
            let bit = (x >> j) & 1 == 1;
            // `out` is 1, then 2 or 3, for the first two bits.
            let p = if k - 1 - j < 2 {
                &mut top[out as usize & 3]
            } else {
                &mut *low
            };
            out = out << 1 | u64::from(io.bit(p, bit));
        }
        Some(out - 1)
    }
}

/// The bit length of `v` (0 for 0), at most 31: the context a length gives the next field.
fn bucket(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).min(31)
}

/// The models of the coded index and what they are conditioned on: the entry before.
pub(super) struct EntryCoder {
    copy: [Prob; 2],
    same: [Prob; 2],
    cid: Gamma,
    source: Gamma,
    hit: [Prob; 3],
    alt: [Prob; 3],
    has_refs: [Prob; 3],
    two_refs: Prob,
    ref_d: Gamma,
    raw: Gamma,
    stored: [Prob; 32],
    modeled: [Prob; 4],
    adaptive2: Prob,
    body: Gamma,
    /// Whether the previous entry was a copy, kept its context, its context id, the bucket of
    /// its decoded length and its mode (before the first: none of these, 0, 0, 0).
    prev_copy: bool,
    prev_same: bool,
    prev_cid: u32,
    prev_raw: usize,
    prev_mode: u8,
}

impl EntryCoder {
    pub(super) fn new() -> EntryCoder {
        EntryCoder {
            copy: [Prob::default(); 2],
            same: [Prob::default(); 2],
            cid: Gamma::new(1),
            source: Gamma::new(1),
            hit: [Prob::default(); 3],
            alt: [Prob::default(); 3],
            has_refs: [Prob::default(); 3],
            two_refs: Prob::default(),
            ref_d: Gamma::new(2),
            raw: Gamma::new(32),
            stored: [Prob::default(); 32],
            modeled: [Prob::default(); 4],
            adaptive2: Prob::default(),
            body: Gamma::new(32),
            prev_copy: false,
            prev_same: false,
            prev_cid: 0,
            prev_raw: 0,
            prev_mode: 0,
        }
    }

    /// Codes entry `e` (the encoder: `e` as given; the decoder: `e` filled in; whether the
    /// archive may hold copies, header flag bit 2, is the reader's to check). `predict(cid)` is the level the writer rule
    /// gives the next record of context `cid` ([`Levels::predict`]). A decoder's error names
    /// the field that is impossible.
    pub(super) fn code(
        &mut self,
        io: &mut impl BitCoder,
        e: &mut Entry,
        predict: impl FnOnce(u32) -> u8,
    ) -> Result<(), &'static str> {
        let copy = io.bit(&mut self.copy[usize::from(self.prev_copy)], e.level == COPY);
        let same = io.bit(
            &mut self.same[usize::from(self.prev_same)],
            e.cid == self.prev_cid,
        );
        if !same {
            let c = self
                .cid
                .code(io, 0, u64::from(e.cid), 32)
                .and_then(|c| u32::try_from(c).ok())
                .ok_or("context id out of range")?;
            e.cid = c;
        } else {
            e.cid = self.prev_cid;
        }
        self.prev_copy = copy;
        self.prev_same = same;
        self.prev_cid = e.cid;
        if copy {
            e.level = COPY;
            let d = self.source.code(io, 0, e.source.wrapping_sub(1), 62);
            e.source = d.ok_or("copy of a record before the first")? + 1;
            e.nrefs = 0;
            e.raw_len = 0;
            e.mode = 0;
            e.body_len = 0;
            return Ok(());
        }
        e.source = 0;
        let pred = predict(e.cid);
        let p = usize::from(pred);
        e.level = if io.bit(&mut self.hit[p], e.level == pred) {
            pred
        } else {
            // The two other levels, in order.
            let others = match pred {
                DELTA => [KEYFRAME, ROOT],
                KEYFRAME => [DELTA, ROOT],
                _ => [DELTA, KEYFRAME],
            };
            others[usize::from(io.bit(&mut self.alt[p], e.level == others[1]))]
        };
        if io.bit(&mut self.has_refs[usize::from(e.level)], e.nrefs > 0) {
            e.nrefs = 1 + u8::from(io.bit(&mut self.two_refs, e.nrefs == 2));
            for j in 0..usize::from(e.nrefs) {
                let d = self.ref_d.code(io, j, e.refs[j].wrapping_sub(1), 62);
                e.refs[j] = d.ok_or("reference to a record before the first")? + 1;
            }
        } else {
            e.nrefs = 0;
        }
        let len_k = 30;
        e.raw_len = self
            .raw
            .code(io, self.prev_raw, e.raw_len, len_k)
            .filter(|&l| l <= MAX_RECORD_LEN)
            .ok_or("record length over the limit")?;
        let k = bucket(e.raw_len);
        self.prev_raw = k;
        e.mode = if io.bit(&mut self.stored[k], e.mode == 0) {
            0
        } else if io.bit(&mut self.modeled[usize::from(self.prev_mode)], e.mode == 1) {
            1
        } else {
            2 + u8::from(io.bit(&mut self.adaptive2, e.mode == 3))
        };
        self.prev_mode = e.mode;
        e.body_len = if e.mode == 0 {
            e.raw_len
        } else {
            self.body
                .code(io, k, e.body_len, len_k)
                .ok_or("payload length over the limit")?
        };
        Ok(())
    }
}

/// Each context's state as the levels of its records leave it, for the level the writer rule
/// predicts (FORMAT.md §5.2): records in its group so far, and roots and keyframes since its
/// root.
pub(super) struct Levels {
    state: HashMap<u32, (u32, u32)>,
    keyframe_interval: u32,
    keyframes_per_root: u32,
}

impl Levels {
    pub(super) fn new(keyframe_interval: u32, keyframes_per_root: u32) -> Levels {
        Levels {
            state: HashMap::new(),
            keyframe_interval,
            keyframes_per_root,
        }
    }

    /// The level the writer rule gives the next record of context `cid`.
    pub(super) fn predict(&self, cid: u32) -> u8 {
        predict(
            self.state.get(&cid).copied(),
            self.keyframe_interval,
            self.keyframes_per_root,
        )
    }

    /// Notes a record of context `cid` at `level` (not a copy, which changes nothing).
    pub(super) fn note(&mut self, cid: u32, level: u8) {
        let s = self.state.get(&cid).copied().unwrap_or((0, 0));
        let next = match level {
            ROOT => (1, 1),
            KEYFRAME => (1, s.1.saturating_add(1)),
            DELTA => (s.0.saturating_add(1), s.1),
            _ => return,
        };
        self.state.insert(cid, next);
    }
}

/// The writer rule (FORMAT.md §5.2) for a context in `state` (records in its group, roots and
/// keyframes since its root; `None`: no record yet).
pub(super) fn predict(state: Option<(u32, u32)>, keyframe_interval: u32, per_root: u32) -> u8 {
    match state {
        Some((since, _)) if since < keyframe_interval => DELTA,
        Some((_, keys)) if keys < per_root => KEYFRAME,
        _ => ROOT,
    }
}

/// Codes `entries` as the body of a coded index of an archive whose records are coded with
/// `keyframe_interval` and `keyframes_per_root`, padded with zero bytes to at least half as
/// many bytes as entries (FORMAT.md §5.1: a reader refuses more than two entries a byte).
///
/// # Errors
/// An entry with a field the code cannot hold (a decoded or payload length over 2^30, a
/// distance back of 0 or at least 2^63): the name of the field.
pub fn encode(
    entries: impl Iterator<Item = Entry>,
    keyframe_interval: u32,
    keyframes_per_root: u32,
) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    let mut coder = EntryCoder::new();
    let mut levels = Levels::new(keyframe_interval, keyframes_per_root);
    let mut n = 0u64;
    {
        let mut io = Writing(RangeEncoder::new(&mut out));
        for mut e in entries {
            let want = e;
            coder.code(&mut io, &mut e, |c| levels.predict(c))?;
            if e != want {
                // A distance of 0 wraps to a value the code cannot hold: refused above. What
                // remains is a field coded as another value, e.g. a payload length for STORED.
                return Err("an entry the code does not hold as given");
            }
            levels.note(e.cid, e.level);
            n += 1;
        }
        io.0.finish();
    }
    let min = n.div_ceil(2) as usize;
    if out.len() < min {
        out.resize(min, 0);
    }
    Ok(out)
}

/// The CRC-32C of `a ++ b`, from the CRC-32C `crc_a` of `a`, `crc_b` of `b` and `b`'s length
/// (zlib's `crc32_combine`: `crc_a` advanced over `len_b` zero bytes by squaring the matrix
/// of one zero bit, then xored with `crc_b`).
pub(super) fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    fn times(mat: &[u32; 32], mut vec: u32) -> u32 {
        let mut sum = 0;
        let mut i = 0;
        while vec != 0 {
            if vec & 1 != 0 {
                sum ^= mat[i];
            }
            vec >>= 1;
            i += 1;
        }
        sum
    }
    fn square(mat: &[u32; 32]) -> [u32; 32] {
        let mut sq = [0u32; 32];
        for (n, s) in sq.iter_mut().enumerate() {
            *s = times(mat, mat[n]);
        }
        sq
    }
    if len_b == 0 {
        return crc_a;
    }
    // The operator of one zero bit, then of two and four.
    let mut odd = [0u32; 32];
    odd[0] = 0x82f6_3b78;
    for (n, o) in odd.iter_mut().enumerate().skip(1) {
        *o = 1 << (n - 1);
    }
    let mut even = square(&odd);
    odd = square(&even);
    let mut crc = crc_a;
    let mut len = len_b;
    loop {
        even = square(&odd);
        if len & 1 != 0 {
            crc = times(&even, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
        odd = square(&even);
        if len & 1 != 0 {
            crc = times(&odd, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
    }
    crc ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::crc32c;
    use proptest::prelude::*;

    #[test]
    fn combine_matches_one_shot() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for cut in [0usize, 1, 7, 8, 100, 2047, 4999, 5000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(
                crc32c_combine(crc32c(a), crc32c(b), b.len() as u64),
                crc32c(&data),
                "cut {cut}"
            );
        }
    }

    fn entry() -> impl Strategy<Value = Entry> {
        (
            0u32..6,
            0u8..4,
            0u8..3,
            (1u64..50, 1u64..50),
            0u64..3000,
            0u8..4,
            0u64..3000,
        )
            .prop_map(|(cid, level, nrefs, refs, raw_len, mode, body)| {
                let copy = level == COPY;
                Entry {
                    cid: if cid == 5 { u32::MAX } else { cid },
                    level,
                    nrefs: if copy { 0 } else { nrefs },
                    refs: if copy || nrefs == 0 {
                        [0, 0]
                    } else if nrefs == 1 {
                        [refs.0, 0]
                    } else {
                        [refs.0, refs.1]
                    },
                    source: if copy { refs.0 } else { 0 },
                    raw_len: if copy { 0 } else { raw_len },
                    mode: if copy { 0 } else { mode },
                    body_len: match (copy, mode) {
                        (true, _) => 0,
                        (false, 0) => raw_len,
                        _ => body,
                    },
                }
            })
    }

    proptest! {
        /// Any entries (any levels, contexts, references, copies, lengths and modes) decode to
        /// themselves, and the body holds at least one byte per two entries.
        #[test]
        fn entries_round_trip(entries in proptest::collection::vec(entry(), 0..200)) {
            let body = encode(entries.iter().copied(), 3, 2).unwrap();
            prop_assert!(body.len() as u64 >= (entries.len() as u64).div_ceil(2));
            let mut coder = EntryCoder::new();
            let mut levels = Levels::new(3, 2);
            let mut io = Reading(RangeDecoder::new(&body));
            for want in &entries {
                let mut got = Entry::default();
                coder.code(&mut io, &mut got, |c| levels.predict(c)).unwrap();
                levels.note(got.cid, got.level);
                prop_assert_eq!(&got, want);
            }
        }

        /// Garbage decodes to entries or to an error, never a panic.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut coder = EntryCoder::new();
            let mut levels = Levels::new(16, 16);
            let mut io = Reading(RangeDecoder::new(&bytes));
            for _ in 0..200 {
                let mut e = Entry::default();
                match coder.code(&mut io, &mut e, |c| levels.predict(c)) {
                    Ok(()) => levels.note(e.cid, e.level),
                    Err(_) => break,
                }
            }
        }
    }
}
