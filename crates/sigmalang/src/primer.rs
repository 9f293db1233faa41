//! An archive's primer (FORMAT.md §5.6): a sample of the archive's own input, stored once, that
//! every record is coded after.
//!
//! The static model knows its codebook's training text; the primer teaches the coder the
//! archive's own data while every record stays decodable on its own. A record is coded as if it
//! followed the primer: its match model sees the primer as its oldest frame, and an adaptive
//! record's adaptive model starts from the state it reached on the primer instead of from
//! nothing. That state is the adaptive model's variant `V3` (`ADAPTIVE2`, header flag bits 4 and
//! 7) in the archives this build writes, `V2` (`ADAPTIVE2`, bit 4 alone) or `V1` (`ADAPTIVE`) in
//! those written before. Both states are built once (per archive writer worker, per archive reader) and
//! restored after every record from journals of what the record changed, so a record costs what
//! it codes, never a copy of the megabytes of state.

use std::sync::Arc;

use crate::codebook::Codebook;
use crate::error::{Error, Result};
pub use crate::model::Variant;
use crate::model::{table_bits, AdaptiveModel, MatchModel, MIN_MATCH, PRIMED_TABLE_BITS};
use crate::record::{code_record, decode_record, read_header, Encoder, Mode};
use crate::varint;

/// The longest primer an archive may hold: 16 MiB.
pub const MAX_PRIMER_LEN: u64 = 16 << 20;

/// A primer and the model state after it: the adaptive model's (as if the primer had been coded
/// as one record in its variant's mode: `ADAPTIVE2` for [`Variant::V3`], what new archives
/// write, flagged by header bits 4 and 7, and for [`Variant::V2`], bit 4 alone; `ADAPTIVE` for
/// [`Variant::V1`], archives without the bits) and
/// the match model's table holding the primer's positions.
pub struct Primer {
    bytes: Vec<u8>,
    variant: Variant,
    adaptive: AdaptiveModel,
    matcher: MatchModel,
}

impl Primer {
    /// Trains the primer `bytes` (1 to [`MAX_PRIMER_LEN`] bytes) on `codebook`'s model, with
    /// the adaptive model [`Variant::V3`] (what new archives write).
    ///
    /// # Errors
    /// If `bytes` is empty or longer than [`MAX_PRIMER_LEN`].
    pub fn new(codebook: &Codebook, bytes: Vec<u8>) -> Result<Primer> {
        Primer::with_variant(codebook, bytes, Variant::V3)
    }

    /// [`new`](Self::new) with the adaptive model `variant` (`V1`: as archives without header
    /// flag bit 4 were written; `V2`: with bit 4 and without bit 7).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_variant(codebook: &Codebook, bytes: Vec<u8>, variant: Variant) -> Result<Primer> {
        Primer::encode_as(codebook, bytes, variant).map(|(p, _)| p)
    }

    /// Trains the primer `bytes` with [`Variant::V3`] and codes it: returns it and its payload
    /// (a record payload, `ADAPTIVE2` or `STORED`, as the archive stores it).
    pub(crate) fn encode(codebook: &Codebook, bytes: Vec<u8>) -> Result<(Primer, Vec<u8>)> {
        Primer::encode_as(codebook, bytes, Variant::V3)
    }

    /// Trains the primer `bytes` with the adaptive model `variant` and codes it: returns it and
    /// its payload (a record payload in the variant's mode, `ADAPTIVE` for `V1` and `ADAPTIVE2`
    /// for `V2`, or `STORED`).
    pub(crate) fn encode_as(
        codebook: &Codebook,
        bytes: Vec<u8>,
        variant: Variant,
    ) -> Result<(Primer, Vec<u8>)> {
        if bytes.is_empty() || bytes.len() as u64 > MAX_PRIMER_LEN {
            return Err(Error::invalid(format!(
                "a primer holds 1 to {MAX_PRIMER_LEN} bytes, not {}",
                bytes.len()
            )));
        }
        let mut adaptive = AdaptiveModel::with_variant(variant);
        let mut body = Vec::new();
        code_record(
            codebook.model(),
            &mut MatchModel::new(),
            Some(&mut adaptive),
            &mut body,
            &bytes,
            0,
            None,
            None,
            &mut (),
        );
        let mut payload = Vec::with_capacity(body.len().min(bytes.len()) + 10);
        let raw = (bytes.len() as u64) << 2;
        if body.len() < bytes.len() {
            varint::write(&mut payload, raw | adaptive_mode(variant) as u64);
            payload.extend_from_slice(&body);
        } else {
            varint::write(&mut payload, raw | Mode::Stored as u64);
            payload.extend_from_slice(&bytes);
        }
        let mut matcher = MatchModel::new();
        matcher.prime(&bytes);
        Ok((
            Primer {
                bytes,
                variant,
                adaptive,
                matcher,
            },
            payload,
        ))
    }

    /// Decodes a primer payload that the archive says holds `len` bytes, its state in the
    /// adaptive model `variant` (the archive's header flag bit 4 says which). Offsets in errors
    /// are relative to the payload.
    pub(crate) fn decode(
        codebook: &Codebook,
        payload: &[u8],
        len: u64,
        variant: Variant,
    ) -> Result<Primer> {
        let header = read_header(payload)?;
        if header.raw_len != len || len == 0 || len > MAX_PRIMER_LEN {
            return Err(Error::corrupt(
                format!(
                    "the primer payload holds {} bytes, the archive says {len}",
                    header.raw_len
                ),
                0,
            ));
        }
        let body = &payload[header.body_offset..];
        let n = len as usize;
        match header.mode {
            Mode::Stored => {
                if body.len() != n {
                    return Err(Error::corrupt(
                        format!("a stored primer of {n} bytes has {} bytes", body.len()),
                        header.body_offset as u64,
                    ));
                }
                Primer::with_variant(codebook, body.to_vec(), variant)
            }
            mode if mode == adaptive_mode(variant) => {
                if body.len() >= n {
                    return Err(Error::corrupt(
                        format!(
                            "a coded primer of {n} bytes cannot have a {}-byte body",
                            body.len()
                        ),
                        header.body_offset as u64,
                    ));
                }
                let mut adaptive = AdaptiveModel::with_variant(variant);
                let mut bytes = Vec::new();
                bytes.reserve_exact(n);
                decode_record(
                    codebook.model(),
                    &mut MatchModel::new(),
                    Some(&mut adaptive),
                    body,
                    &mut bytes,
                    0,
                    n,
                    None,
                    None,
                )
                .map_err(|what| Error::corrupt(what, header.body_offset as u64))?;
                let mut matcher = MatchModel::new();
                matcher.prime(&bytes);
                Ok(Primer {
                    bytes,
                    variant,
                    adaptive,
                    matcher,
                })
            }
            mode => Err(Error::corrupt(
                format!(
                    "a primer of this archive is coded {} or STORED, not {}",
                    mode_name(adaptive_mode(variant)),
                    mode_name(mode)
                ),
                0,
            )),
        }
    }

    /// The adaptive model variant of the primer's state (and of the records coded `ADAPTIVE`
    /// or `ADAPTIVE2` after it).
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The primer's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The primer's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the primer is empty (never, for a primer made by [`new`](Self::new)).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes of memory the primer holds: its bytes and both models' tables. Every encoder or
    /// decoder that codes with it holds about as much again (its own copy of the state).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.adaptive.heap_bytes() + self.matcher.heap_bytes()
    }

    /// [`heap_bytes`](Self::heap_bytes) of a primer of `len` bytes in `variant`, known before
    /// it is decoded (a reader checks it against its memory limit first).
    pub fn memory_for(len: u64, variant: Variant) -> u64 {
        let len = len.min(MAX_PRIMER_LEN);
        let bits = table_bits(len as usize) + u32::from(variant != Variant::V1);
        len + (64u64 << bits)
            + AdaptiveModel::estimate_bytes(variant) as u64
            + (4u64 << PRIMED_TABLE_BITS)
    }
}

impl std::fmt::Debug for Primer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Primer")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// The record mode of a primer coded with the adaptive model `variant` (and of the records
/// coded adaptive after it).
pub(crate) fn adaptive_mode(variant: Variant) -> Mode {
    match variant {
        Variant::V1 => Mode::Adaptive,
        Variant::V2 | Variant::V3 => Mode::Adaptive2,
    }
}

/// A record mode's name in FORMAT.md.
pub(crate) fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Stored => "STORED",
        Mode::Modeled => "MODELED",
        Mode::Adaptive => "ADAPTIVE",
        Mode::Adaptive2 => "ADAPTIVE2",
    }
}

/// One encoder's or decoder's working copy of a primer's state, restored after every record.
pub(crate) struct Primed {
    pub(crate) primer: Arc<Primer>,
    pub(crate) adaptive: AdaptiveModel,
    pub(crate) matcher: MatchModel,
    /// The primer's bytes, then (while a record is coded) its frames and the record.
    pub(crate) hist: Vec<u8>,
    /// The mode an encoder codes records in: `MODELED`, or the primer's adaptive mode
    /// (`ADAPTIVE` for a `V1` primer, `ADAPTIVE2` for `V2` and `V3`).
    pub(crate) mode: Mode,
}

impl std::fmt::Debug for Primed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Primed")
            .field("primer", &self.primer)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Primed {
    pub(crate) fn new(primer: Arc<Primer>, adaptive: bool) -> Primed {
        Primed {
            adaptive: primer.adaptive.clone(),
            matcher: primer.matcher.clone(),
            hist: primer.bytes.clone(),
            mode: if adaptive {
                adaptive_mode(primer.variant)
            } else {
                Mode::Modeled
            },
            primer,
        }
    }

    /// Restores the primed state after a record.
    pub(crate) fn rollback(&mut self) {
        self.matcher.rollback(&self.primer.matcher);
        self.adaptive.rollback(&self.primer.adaptive);
        self.hist.truncate(self.primer.len());
    }
}

/// The share of the bytes an adaptive record (`ADAPTIVE2` after this build's primers) must save
/// over a `MODELED` one (both after the primer) for an archive's records to be coded adaptive:
/// 1/16. Adaptive records decode at
/// about a third of the speed, so a small saving does not pay for it.
const ADAPTIVE_MARGIN: u64 = 16;
/// The share of the bytes held-out records after the primer must save over records without it
/// for an archive to keep its primer: 1/50. The primer's model state costs every reader memory
/// and time (its decode at open); whether its own bytes are paid back by the records it holds
/// is tested apart ([`choose`]). The test understates the gain: its trial primer is half the
/// primer, and every tested record has a frame where an archive's roots have none (logs of
/// chat with metadata gain 5.9% in the test and 9% in their archive at 100 MB, 2.6% and 7% at
/// 1 GB). Records of chat and conversation histories (which the codebook and their own frames
/// know) gain -4% to 1% in the test, code and documents a quarter to a half. (When the test
/// was the records right after the first ones, it saw their neighbours in the trial primer
/// and overstated the gain, and this was 1/8.)
const PRIMER_MARGIN: u64 = 50;

/// The most bytes of records [`choose`] codes in its test (three times: without the trial
/// primer, after it `MODELED`, after it adaptive): 128 KiB, a sixteenth of them from each of
/// [`CHOICE_SLICES`] places of the sample, so that the test costs a few tens of milliseconds
/// beyond the trial primer's training.
const CHOICE_SAMPLE: usize = 128 << 10;

/// The slices [`choose`] cuts a sample into: the first three quarters of each go to the trial
/// primer, records from the last quarter are tested, so that both are spread over the sample
/// as the archive's primer and records are over the input.
const CHOICE_SLICES: usize = 8;

/// How the records of an archive are coded, as [`choose`] finds on a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Without a primer.
    Plain,
    /// After the primer, `MODELED` (its match model sees the primer).
    Modeled,
    /// After the primer, in its adaptive mode (`ADAPTIVE2`).
    Adaptive,
}

/// How records like `sample` (the records a primer is made of, in order) are best coded. The
/// sample is cut into [`CHOICE_SLICES`] slices of equal bytes (fewer if it holds fewer than 8
/// records a slice). The records that start in the first half of a slice make a trial primer
/// (a `V3` one, as the archive's is, half the primer's size); the first records of the third
/// quarter (up to [`CHOICE_SAMPLE`] bytes in all) are held out, and the last quarter is left
/// out of both, so that a run of consecutive records (`sigma pack` samples runs of about a
/// slice's quarter) that continues past the held-out ones does not leak them into the trial
/// primer. Held-out records from all over the sample, tested against a primer of the rest,
/// stand for the archive's records, most of them not in its primer. They are coded without
/// the trial primer, after it `MODELED` and after it `ADAPTIVE2`: each record alone with the
/// record before it in the sample as its frame, as the writer codes a record against its
/// group's last ones (so the primer is credited only with what it adds to the frame). The
/// first records of each slice (up to half as many bytes) are coded the same ways as records
/// the primer holds. A setting keeps the primer if it saves at least 1/[`PRIMER_MARGIN`] on
/// the held-out records and the primer pays for itself: its payload and its own records coded
/// after it cost no more than those records without it, plus what it saves on as many bytes
/// of other records (short records cost a few bytes even as whole matches of the primer).
/// `ADAPTIVE2` is chosen over `MODELED` if it saves a further 1/[`ADAPTIVE_MARGIN`] (not
/// merely because only it would keep the primer: a 100 MB chat log, 2.4% smaller so, took
/// three times the CPU to pack). In block mode (`page_bytes > 0`) each slice's tested records
/// are coded as pages of up to `page_bytes` (each record and a line feed), without a primer
/// as stream chunks and after it as pages after the primer, as the archive's pages would be.
pub(crate) fn choose(codebook: &Arc<Codebook>, sample: &[&[u8]], page_bytes: u64) -> Choice {
    let total: usize = sample.iter().map(|r| r.len() + 1).sum();
    // Fewer slices for a sample of few records: a slice of one record has nothing to test.
    let slices = (sample.len() / 8).clamp(1, CHOICE_SLICES);
    let slice = total.div_ceil(slices).max(1);
    let per_slice = CHOICE_SAMPLE / CHOICE_SLICES;
    let mut trial = Vec::new();
    // The tested records (by index), a run of consecutive records per slice: held out of the
    // trial primer (`held`), and in it (`inside`, the first of each slice's trial records).
    let mut held: Vec<Vec<usize>> = vec![Vec::new(); slices];
    let mut inside: Vec<Vec<usize>> = vec![Vec::new(); slices];
    let mut taken = [vec![0usize; slices], vec![0usize; slices]];
    let mut offset = 0;
    for (j, &r) in sample.iter().enumerate() {
        let (k, within) = (offset / slice, offset % slice);
        offset += r.len() + 1;
        if within * 2 < slice {
            trial.extend_from_slice(r);
            trial.push(b'\n');
            if taken[1][k] < per_slice / 2 {
                taken[1][k] += r.len() + 1;
                inside[k].push(j);
            }
        } else if within * 4 < slice * 3 && taken[0][k] < per_slice {
            taken[0][k] += r.len() + 1;
            held[k].push(j);
        }
    }
    held.retain(|t| !t.is_empty());
    inside.retain(|t| !t.is_empty());
    if trial.len() < MIN_MATCH || held.is_empty() {
        return Choice::Plain;
    }
    let trial_len = trial.len() as u64;
    let Ok((primer, trial_payload)) = Primer::encode(codebook, trial) else {
        return Choice::Plain;
    };
    let primer = Arc::new(primer);
    // sizes[group][setting]: the held-out and inside records coded without the trial primer,
    // after it `MODELED` and after it adaptive.
    let mut sizes = [[0u64; 3]; 2];
    for (g, runs) in [&held, &inside].into_iter().enumerate() {
        for (k, setting) in [None, Some(false), Some(true)].into_iter().enumerate() {
            match code_units(codebook, &primer, setting, sample, runs, page_bytes) {
                Some(n) => sizes[g][k] = n,
                None => return Choice::Plain,
            }
        }
    }
    let [[plain, modeled, adaptive], [plain_in, modeled_in, adaptive_in]] = sizes;
    let inside_bytes: u64 = taken[1].iter().sum::<usize>() as u64;
    if std::env::var_os("SIGMA_PRIMER_DEBUG").is_some() {
        let held_bytes: usize = taken[0].iter().sum();
        eprintln!(
            "primer choice: held out ({held_bytes} bytes): plain {plain}, modeled {modeled}, \
             adaptive {adaptive}; in the primer ({inside_bytes} bytes): plain {plain_in}, \
             modeled {modeled_in}, adaptive {adaptive_in}; trial primer {trial_len} -> {}",
            trial_payload.len()
        );
    }
    // The primer pays for itself if its payload and its own records coded after it cost no
    // more than those records coded without it plus what the primer saves on as many bytes
    // of other records (per byte as on the held-out ones): an archive's primer holds at most
    // half of its records' bytes (`sigma pack`'s, a quarter). Short records cost a few bytes
    // even as a whole match of the primer, so a primer of them may not pay.
    let held_bytes = taken[0].iter().sum::<usize>() as f64;
    let per_byte = |bytes: u64, of: f64| bytes as f64 / of.max(1.0);
    let pays = |with_in: u64, with_held: u64| {
        inside_bytes > 0 && {
            let t = trial_len as f64;
            let cost = trial_payload.len() as f64 + per_byte(with_in, inside_bytes as f64) * t;
            let saved = per_byte(plain_in, inside_bytes as f64) * t
                + (per_byte(plain, held_bytes) - per_byte(with_held, held_bytes)) * t;
            cost <= saved
        }
    };
    // A setting keeps the primer if it pays for itself and saves 1/PRIMER_MARGIN on held-out
    // records. `MODELED` decodes (and codes) about three times faster: `ADAPTIVE2` is chosen
    // only if it saves a further 1/ADAPTIVE_MARGIN.
    let keeps = |held: u64, inside: u64| held + plain / PRIMER_MARGIN < plain && pays(inside, held);
    if adaptive + modeled / ADAPTIVE_MARGIN < modeled {
        if keeps(adaptive, adaptive_in) {
            return Choice::Adaptive;
        }
    } else if keeps(modeled, modeled_in) {
        return Choice::Modeled;
    }
    Choice::Plain
}

/// The bytes of the records `runs` (indices into `sample`, runs of consecutive records)
/// coded without `primer` (`setting` `None`), after it `MODELED` (`Some(false)`) or after it
/// adaptive (`Some(true)`): each record alone with the record before it in the sample as its
/// frame, or (`page_bytes > 0`) each run's records in pages of up to `page_bytes` (each record
/// and a line feed) as stream chunks or pages after the primer. `None` if one fails to code.
fn code_units(
    codebook: &Arc<Codebook>,
    primer: &Arc<Primer>,
    setting: Option<bool>,
    sample: &[&[u8]],
    runs: &[Vec<usize>],
    page_bytes: u64,
) -> Option<u64> {
    let mut enc = Encoder::new(Arc::clone(codebook));
    if let Some(adaptive) = setting {
        enc.set_primer(Some(Arc::clone(primer)), adaptive);
    }
    let mut out = Vec::new();
    let mut size = 0;
    for run in runs {
        if page_bytes == 0 {
            for &j in run {
                out.clear();
                let frames: &[&[u8]] = if j > 0 { &sample[j - 1..j] } else { &[] };
                enc.encode_with_frames(frames, sample[j], &mut out).ok()?;
                size += out.len() as u64;
            }
            continue;
        }
        let mut page = Vec::new();
        for (i, &j) in run.iter().enumerate() {
            page.extend_from_slice(sample[j]);
            page.push(b'\n');
            if page.len() as u64 >= page_bytes || i + 1 == run.len() {
                out.clear();
                enc.encode_page(&page, &mut out).ok()?;
                size += out.len() as u64;
                page.clear();
            }
        }
    }
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Decoder;
    use proptest::prelude::*;

    fn sample_text(seed: u64, len: usize) -> Vec<u8> {
        let words: [&[u8]; 10] = [
            b"fn parse_",
            b"(&mut self) -> Result<",
            b"let ",
            b"value",
            b" = ",
            b";\n    ",
            b"match ",
            b"Some(x)",
            b"\xff\x00",
            b"}\n",
        ];
        let mut s = seed | 1;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if s % 13 == 0 {
                out.push((s >> 24) as u8);
            } else {
                out.extend_from_slice(words[(s >> 32) as usize % words.len()]);
            }
        }
        out.truncate(len);
        out
    }

    /// Codes `records` after `primer` (with the previous record as a frame), decodes them with a
    /// decoder primed from the primer's payload, and returns the payload sizes.
    fn roundtrip(primer_bytes: &[u8], records: &[Vec<u8>], adaptive: bool) -> usize {
        roundtrip_as(primer_bytes, records, adaptive, Variant::V3)
    }

    /// [`roundtrip`] with a primer of `variant`; checks the records' modes.
    fn roundtrip_as(
        primer_bytes: &[u8],
        records: &[Vec<u8>],
        adaptive: bool,
        variant: Variant,
    ) -> usize {
        let cb = Codebook::default_codebook();
        let (primer, payload) = Primer::encode_as(&cb, primer_bytes.to_vec(), variant).unwrap();
        let decoded = Primer::decode(&cb, &payload, primer_bytes.len() as u64, variant).unwrap();
        assert_eq!(decoded.bytes(), primer_bytes);
        assert_eq!(decoded.variant(), variant);
        let mode = if adaptive {
            adaptive_mode(variant)
        } else {
            Mode::Modeled
        };
        let mut enc = Encoder::new(Arc::clone(&cb));
        enc.set_primer(Some(Arc::new(primer)), adaptive);
        let mut dec = Decoder::new(Arc::clone(&cb));
        dec.set_primer(Some(Arc::new(decoded)));
        let mut total = 0;
        let mut first = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let frames: Vec<&[u8]> = if i > 0 { vec![&records[i - 1]] } else { vec![] };
            let mut p = Vec::new();
            enc.encode_with_frames(&frames, r, &mut p).unwrap();
            if i == 0 {
                first = p.clone();
            }
            let mut out = Vec::new();
            dec.decode_with_frames(&frames, &p, &mut out).unwrap();
            assert_eq!(&out, r, "record {i}");
            let m = read_header(&p).unwrap().mode;
            assert!(m == mode || m == Mode::Stored, "record {i}: {m:?}");
            total += p.len();
        }
        // The state after each record is the primed state again: the first record codes as before.
        if let Some(r) = records.first() {
            let mut p = Vec::new();
            enc.encode(r, &mut p).unwrap();
            assert_eq!(p, first);
            let mut out = Vec::new();
            dec.decode(&p, &mut out).unwrap();
            assert_eq!(&out, r);
        }
        total
    }

    #[test]
    fn primed_records_roundtrip_and_gain() {
        let primer = sample_text(1, 40_000);
        let records: Vec<Vec<u8>> = (0..12).map(|i| sample_text(100 + i, 700)).collect();
        let modeled = roundtrip(&primer, &records, false);
        let adaptive = roundtrip(&primer, &records, true);
        // Archives without header flag bit 4: a V1 primer, ADAPTIVE records, as before.
        let adaptive1 = roundtrip_as(&primer, &records, true, Variant::V1);
        assert!(adaptive1 * 10 < modeled * 9, "{adaptive1} vs {modeled}");
        roundtrip_as(&primer, &records, false, Variant::V1);
        let mut plain = 0;
        let mut enc = Encoder::default();
        for r in &records {
            let mut p = Vec::new();
            enc.encode(r, &mut p).unwrap();
            plain += p.len();
        }
        assert!(adaptive * 10 < plain * 8, "{adaptive} vs {plain}");
        assert!(modeled < plain, "{modeled} vs {plain}");
        // Short primers and records, stored primers (random bytes), empty records.
        roundtrip(
            b"x",
            &[b"".to_vec(), b"xxxxxxxxxxxxxxxxxxxxx".to_vec()],
            true,
        );
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let (_, payload) = Primer::encode(&Codebook::default_codebook(), noise.clone()).unwrap();
        assert_eq!(read_header(&payload).unwrap().mode, Mode::Stored);
        roundtrip(
            &noise,
            &[noise[100..900].to_vec(), sample_text(3, 500)],
            true,
        );
    }

    #[test]
    fn records_after_a_primer_are_only_in_its_adaptive_mode() {
        // A record in the other adaptive mode than its primer's (ADAPTIVE after a V2 primer,
        // ADAPTIVE2 after a V1 one) is refused by name, never decoded with the wrong model.
        let cb = Codebook::default_codebook();
        let bytes = sample_text(11, 8000);
        let record = sample_text(12, 900);
        for (variant, other) in [(Variant::V2, "ADAPTIVE"), (Variant::V1, "ADAPTIVE2")] {
            let primer = Arc::new(Primer::with_variant(&cb, bytes.clone(), variant).unwrap());
            let mut enc = Encoder::new(Arc::clone(&cb));
            enc.set_primer(Some(Arc::clone(&primer)), true);
            let mut p = Vec::new();
            enc.encode(&record, &mut p).unwrap();
            assert_eq!(read_header(&p).unwrap().mode, adaptive_mode(variant));
            let mut dec = Decoder::new(Arc::clone(&cb));
            dec.set_primer(Some(primer));
            // The header's low two bits are the mode: 2 and 3 swap.
            p[0] ^= 1;
            let e = dec.decode(&p, &mut Vec::new()).unwrap_err();
            let want = format!(
                "MODELED or {}, not {other}",
                mode_name(adaptive_mode(variant))
            );
            assert!(e.to_string().contains(&want), "{e}");
            p[0] ^= 1;
            let mut out = Vec::new();
            dec.decode(&p, &mut out).unwrap();
            assert_eq!(out, record);
        }
    }

    #[test]
    fn journals_overflow_into_a_full_restore() {
        // A record much larger than the primer's tables: the journals overflow and the whole
        // state is restored from the primer.
        let primer = sample_text(5, 2000);
        let big = sample_text(6, 400_000);
        let records = [big.clone(), sample_text(7, 300), big];
        roundtrip(&primer, &records, true);
        roundtrip_as(&primer, &records, true, Variant::V1);
    }

    #[test]
    fn bad_primer_payloads_are_refused() {
        let cb = Codebook::default_codebook();
        let bytes = sample_text(9, 5000);
        let (_, payload) = Primer::encode(&cb, bytes.clone()).unwrap();
        assert_eq!(read_header(&payload).unwrap().mode, Mode::Adaptive2);
        assert!(Primer::decode(&cb, &payload, 4999, Variant::V3).is_err());
        // A cut body decodes to some bytes (the archive's checksums catch it); a cut header not.
        assert!(Primer::decode(&cb, &payload[..1], 5000, Variant::V3).is_err());
        let mut modeled = Vec::new();
        Encoder::new(Arc::clone(&cb))
            .encode(&sample_text(9, 5000), &mut modeled)
            .unwrap();
        for v in [Variant::V1, Variant::V2, Variant::V3] {
            let e = Primer::decode(&cb, &modeled, 5000, v).unwrap_err();
            assert!(e.to_string().contains("not MODELED"), "{e}");
        }
        // A primer in the other variant's mode than the archive's flag says: refused by name.
        let e = Primer::decode(&cb, &payload, 5000, Variant::V1).unwrap_err();
        assert!(
            e.to_string().contains("ADAPTIVE or STORED, not ADAPTIVE2"),
            "{e}"
        );
        let (_, payload1) = Primer::encode_as(&cb, bytes, Variant::V1).unwrap();
        assert_eq!(read_header(&payload1).unwrap().mode, Mode::Adaptive);
        let e = Primer::decode(&cb, &payload1, 5000, Variant::V2).unwrap_err();
        assert!(
            e.to_string().contains("ADAPTIVE2 or STORED, not ADAPTIVE"),
            "{e}"
        );
        assert!(Primer::new(&cb, Vec::new()).is_err());
    }

    #[test]
    fn the_primer_is_kept_for_unfamiliar_text_only() {
        let cb = Codebook::default_codebook();
        let code: Vec<Vec<u8>> = (0..40).map(|i| sample_text(i, 2000)).collect();
        let refs: Vec<&[u8]> = code.iter().map(|r| &r[..]).collect();
        assert_eq!(choose(&cb, &refs, 0), Choice::Adaptive);
        assert_eq!(choose(&cb, &refs[..1], 0), Choice::Plain);
        // Bytes no model predicts: neither mode saves anything, the primer is not kept.
        let mut x = 77u64;
        let noise: Vec<Vec<u8>> = (0..40)
            .map(|_| {
                (0..500)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x >> 24) as u8
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&[u8]> = noise.iter().map(|r| &r[..]).collect();
        assert_eq!(choose(&cb, &refs, 0), Choice::Plain);
        assert_eq!(choose(&cb, &refs, 4096), Choice::Plain);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn arbitrary_records_roundtrip_after_a_primer(
            primer in proptest::collection::vec(any::<u8>(), 1..3000),
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..800), 1..6),
            seed in any::<u64>(),
            adaptive in any::<bool>(),
            variant in 0usize..3,
        ) {
            // Half the records borrow from the primer, so matches into it are exercised.
            let mut records = records;
            for (i, r) in records.iter_mut().enumerate() {
                if (seed >> i) & 1 == 1 && primer.len() > 20 {
                    let a = (seed as usize >> 8) % (primer.len() - 10);
                    r.extend_from_slice(&primer[a..]);
                }
            }
            let variant = [Variant::V1, Variant::V2, Variant::V3][variant];
            roundtrip_as(&primer, &records, adaptive, variant);
        }
    }
}
