//! Codebooks: the trained model that the encoder and decoder share.
//!
//! A codebook holds the static context model (counts of byte contexts of orders 0 to 7, trained
//! ahead of time) and the learned tier of primitives: the 128 byte patterns worth most in the
//! training corpus, named `LEARNED_80`..`LEARNED_FF`. Nothing reads the learned patterns today:
//! they are reserved (`docs/FORMAT.md`), and kept because they are part of the codebook file and
//! so of its id. Every stream and archive names the codebook it was made with by
//! its [`CodebookId`] (a hash of the codebook file), and refuses to decode with another.
//!
//! SigmaLang ships a default codebook, trained on chat text, built into the library.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::checksum::crc32c;
use crate::error::{Error, ErrorKind, Result};
use crate::model::serial::{LoadedCounts, ModelCounts};
use crate::model::{ContextModel, TrainOptions};
use crate::varint;

/// The identity of a codebook: a 64-bit hash of its serialized bytes.
///
/// The id `0` is reserved for "no codebook".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodebookId(pub u64);

impl CodebookId {
    /// The id of streams made without a codebook.
    pub const NONE: CodebookId = CodebookId(0);
}

impl fmt::Display for CodebookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Magic bytes of a codebook file: `Σ` in UTF-8, then `CB`.
pub const CODEBOOK_MAGIC: [u8; 4] = [0xCE, 0xA3, b'C', b'B'];
/// The codebook file format version this build writes and reads.
pub const CODEBOOK_VERSION: u8 = 1;

/// How many learned primitives a codebook names.
pub const LEARNED_COUNT: usize = 128;

static DEFAULT_BYTES: &[u8] = include_bytes!("../assets/default.sgcb");

/// A trained codebook. Immutable once built, and always handed around as an `Arc<Codebook>`:
/// [`default_codebook`](Self::default_codebook), [`from_bytes`](Self::from_bytes) and
/// [`train`](Self::train) return one, and every writer, reader, encoder and decoder takes one,
/// so one codebook serves any number of them (cloning the `Arc` is cheap).
#[derive(Debug)]
pub struct Codebook {
    id: CodebookId,
    model: ContextModel,
    learned: Vec<Vec<u8>>,
    bytes: Cow<'static, [u8]>,
}

impl Codebook {
    /// The codebook built into the library: trained at [`CompressionLevel::Default`](crate::CompressionLevel) on chat
    /// messages and chat-request bodies (1.37 MB; `scripts/build-default-codebook.sh` rebuilds
    /// it). Loaded once per process, on first use (about 20 ms).
    pub fn default_codebook() -> Arc<Codebook> {
        static DEFAULT: OnceLock<Arc<Codebook>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Arc::new(
                    Codebook::parse(Cow::Borrowed(DEFAULT_BYTES))
                        .expect("the embedded codebook is valid"),
                )
            })
            .clone()
    }

    /// Trains a codebook on `records`. `progress(done, total)` reports training steps.
    ///
    /// The codebook is built by parsing its own serialized form, so a trained codebook and the
    /// same codebook loaded from its file are the same model.
    ///
    /// # Errors
    /// If the options are out of range or there is nothing to train on.
    pub fn train(
        records: &[&[u8]],
        opts: &TrainOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Arc<Codebook>> {
        let counts = crate::model::train(records, opts, progress)?;
        Codebook::assemble(&learned_patterns(records), &counts).map(Arc::new)
    }

    /// Serializes a model's counts and learned patterns into a codebook file and loads it.
    pub(crate) fn assemble(learned: &[Vec<u8>], counts: &ModelCounts) -> Result<Codebook> {
        let mut out = Vec::new();
        out.extend_from_slice(&CODEBOOK_MAGIC);
        out.push(CODEBOOK_VERSION);
        out.extend_from_slice(&[0, 0, 0]);
        varint::write(&mut out, learned.len() as u64);
        for p in learned {
            varint::write(&mut out, p.len() as u64);
            out.extend_from_slice(p);
        }
        counts.write(&mut out);
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Codebook::parse(Cow::Owned(out))
    }

    /// The codebook's identity.
    pub fn id(&self) -> CodebookId {
        self.id
    }

    /// The context model.
    pub(crate) fn model(&self) -> &ContextModel {
        &self.model
    }

    /// How many contexts the model holds of each order (index: the order).
    pub fn context_counts(&self) -> Vec<usize> {
        self.model.context_counts()
    }

    /// The heap memory the loaded model takes, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.model.heap_bytes()
    }

    /// The patterns of the learned tier: entry `i` is primitive `0x80 + i`. Reserved: nothing
    /// reads them (neither the coder nor the parser); they are kept because they are part of
    /// the codebook file, and so of its id.
    pub fn learned(&self) -> &[Vec<u8>] {
        &self.learned
    }

    /// The size of the codebook file, in bytes.
    pub fn serialized_len(&self) -> usize {
        self.bytes.len()
    }

    /// The codebook file (layout in `docs/FORMAT.md`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.to_vec()
    }

    /// Parses and checks a codebook file (as written by [`to_bytes`](Self::to_bytes) or
    /// `sigma train`).
    ///
    /// # Errors
    /// If the file is damaged, truncated or of an unknown version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Arc<Codebook>> {
        Codebook::parse(Cow::Owned(bytes.to_vec())).map(Arc::new)
    }

    fn parse(bytes: Cow<'static, [u8]>) -> Result<Codebook> {
        let ctx = "codebook";
        if bytes.len() < 4 || bytes[..4] != CODEBOOK_MAGIC {
            return Err(Error::at(
                ErrorKind::BadMagic {
                    found: bytes[..bytes.len().min(4)].to_vec(),
                },
                0,
            )
            .within(ctx));
        }
        if bytes.len() < 12 {
            return Err(Error::truncated("the codebook header", bytes.len() as u64).within(ctx));
        }
        let body_end = bytes.len() - 4;
        let stored = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
        let computed = crc32c(&bytes[..body_end]);
        if stored != computed {
            return Err(Error::at(
                ErrorKind::Checksum {
                    what: "the codebook",
                    expected: stored,
                    found: computed,
                },
                body_end as u64,
            )
            .within(ctx));
        }
        if bytes[4] != CODEBOOK_VERSION {
            return Err(Error::at(
                ErrorKind::UnsupportedVersion {
                    what: "codebook",
                    found: u32::from(bytes[4]),
                    supported: u32::from(CODEBOOK_VERSION),
                },
                4,
            ));
        }
        if bytes[5..8] != [0, 0, 0] {
            return Err(Error::corrupt("reserved codebook header bytes are set", 5).within(ctx));
        }
        let body = &bytes[..body_end];
        let mut pos = 8;
        let count = varint::read(body, &mut pos, 0)?;
        if count > LEARNED_COUNT as u64 {
            return Err(Error::corrupt(
                format!("{count} learned primitives (at most {LEARNED_COUNT})"),
                8,
            )
            .within(ctx));
        }
        let mut learned = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let at = pos;
            let len = varint::read(body, &mut pos, 0)? as usize;
            let p = body
                .get(pos..pos.saturating_add(len))
                .ok_or_else(|| Error::truncated("a learned pattern", at as u64).within(ctx))?;
            learned.push(p.to_vec());
            pos += len;
        }
        let counts = LoadedCounts::read(body, &mut pos, 0).map_err(|e| e.within(ctx))?;
        if pos != body.len() {
            return Err(Error::corrupt("trailing bytes after the model", pos as u64).within(ctx));
        }
        let model = counts
            .build()
            .map_err(|e| Error::corrupt(format!("invalid model: {e}"), 8).within(ctx))?;
        Ok(Codebook {
            id: id_of(&bytes),
            model,
            learned,
            bytes,
        })
    }
}

/// FNV-1a over the codebook file, never zero.
fn id_of(bytes: &[u8]) -> CodebookId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    CodebookId(h.max(1))
}

/// The learned tier: the words and phrases that cover the most training bytes.
///
/// Candidates are the corpus's word tokens with their following space (`"the "`, `"function"`),
/// ranked by `(occurrences - 1) * (length - 1)`, the bytes a one-glyph reference would save.
fn learned_patterns(records: &[&[u8]]) -> Vec<Vec<u8>> {
    use std::collections::HashMap;
    let mut counts: HashMap<&[u8], u64> = HashMap::new();
    for rec in records {
        let mut i = 0;
        while i < rec.len() {
            if rec[i].is_ascii_alphabetic() {
                let start = i;
                while i < rec.len() && (rec[i].is_ascii_alphanumeric() || rec[i] == b'_') {
                    i += 1;
                }
                let end = if i < rec.len() && rec[i] == b' ' {
                    i + 1
                } else {
                    i
                };
                if end - start >= 3 {
                    *counts.entry(&rec[start..end]).or_default() += 1;
                }
            } else {
                i += 1;
            }
        }
    }
    let mut ranked: Vec<(&[u8], u64)> = counts.into_iter().collect();
    ranked.sort_unstable_by(|a, b| {
        let va = (a.1 - 1) * (a.0.len() as u64 - 1);
        let vb = (b.1 - 1) * (b.0.len() as u64 - 1);
        vb.cmp(&va).then(a.0.cmp(b.0))
    });
    ranked
        .into_iter()
        .take(LEARNED_COUNT)
        .map(|(p, _)| p.to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_loads_and_round_trips_its_bytes() {
        let cb = Codebook::parse(Cow::Borrowed(DEFAULT_BYTES)).expect("embedded codebook");
        assert_eq!(cb.to_bytes(), DEFAULT_BYTES);
        assert_eq!(Codebook::from_bytes(DEFAULT_BYTES).unwrap().id(), cb.id());
        assert!(cb.model().max_order() >= 3);
        assert_eq!(cb.learned().len(), LEARNED_COUNT);
    }

    #[test]
    fn training_is_deterministic_and_reloads_identically() {
        let corpus: Vec<Vec<u8>> = (0..400)
            .map(|i| {
                format!(
                    "record {i}: the quick brown fox {} jumps over the lazy dog.",
                    i % 7
                )
                .into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = corpus.iter().map(|r| &r[..]).collect();
        let opts = TrainOptions {
            max_order: 4,
            ..TrainOptions::default()
        };
        let a = Codebook::train(&refs, &opts, &mut |_, _| {}).unwrap();
        let b = Codebook::train(&refs, &opts, &mut |_, _| {}).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        let c = Codebook::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(c.id(), a.id());
        assert_eq!(c.model().context_counts(), a.model().context_counts());
    }

    #[test]
    fn damaged_codebooks_are_refused() {
        let bytes = DEFAULT_BYTES;
        for cut in [0, 3, 4, 11, 100, bytes.len() / 2, bytes.len() - 1] {
            assert!(Codebook::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in [0, 4, 5, 9, 200, bytes.len() / 3, bytes.len() - 2] {
            let mut b = bytes.to_vec();
            b[at] ^= 0x40;
            let err = Codebook::from_bytes(&b).unwrap_err();
            assert!(
                err.to_string().contains("codebook")
                    || matches!(err.kind(), ErrorKind::UnsupportedVersion { .. }),
                "{err}"
            );
        }
    }
}
