//! Exact repeats (FORMAT.md §5.8): the writer's table of recent records, by their bytes, so
//! that a record equal to one of them is written as a copy of it (an index entry, no payload).
//!
//! Memory is bounded by [`ArchiveOptions::repeats`](super::ArchiveOptions::repeats): the table
//! holds the most recent records (never copies) whose lengths, plus [`ENTRY_OVERHEAD`] bytes
//! each, add up to at most that budget, and forgets the oldest first, a chunk of them at a time
//! (1 MiB of the budget, or an eighth of it if less; the chunks' unused room adds at most two
//! chunks to the memory). With the default 32 MiB, that is about 236 000 records of 46 bytes (short lines) or the last 32 MiB of long ones; a
//! record repeated after it left the table is coded again, and becomes the source of the
//! repeats after it. The table finds a record by the hash of its bytes and compares the bytes
//! whole, so a copy is only ever written for equal bytes.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

/// What the budget counts for each record beyond its bytes: its slot in the hash table (hash,
/// index, place: about 40 bytes at the table's load) and its place in its chunk's list (16
/// bytes), with room to spare, so that the budget bounds the table's memory.
pub(super) const ENTRY_OVERHEAD: usize = 96;

/// The shortest record written as a copy: a copy's entry takes a byte more than a record's
/// (the distance to its source) and saves the payload, which for a record of a byte or two is
/// about as short.
pub(super) const MIN_COPY_LEN: usize = 3;

/// The records' bytes lie in chunks that count at most this much against the budget (or an
/// eighth of the budget, if smaller), forgotten a chunk at a time and reused, so that
/// remembering a record allocates nothing in steady state.
const CHUNK_BYTES: usize = 1 << 20;

/// A chunk of remembered records: their bytes back to back, and each one's hash and index.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    entries: Vec<(u64, u64)>,
}

/// Where a remembered record is: its index, chunk (by sequence number) and span in it.
#[derive(Clone, Copy)]
struct Place {
    index: u64,
    chunk: u64,
    start: usize,
    len: usize,
}

/// Recent records by the hash of their bytes (compared whole before a copy is made).
pub(super) struct Repeats {
    budget: usize,
    bytes: usize,
    chunk_bytes: usize,
    by_hash: HashMap<u64, Place>,
    /// The chunks, oldest first; the first one's sequence number; a forgotten chunk to reuse.
    chunks: VecDeque<Chunk>,
    first: u64,
    spare: Option<Chunk>,
    hasher: BuildHasherDefault<DefaultHasher>,
}

impl Repeats {
    /// An empty table that holds at most `budget` bytes (records plus overhead).
    pub(super) fn new(budget: usize) -> Repeats {
        Repeats {
            budget,
            bytes: 0,
            chunk_bytes: CHUNK_BYTES.min(budget / 8).max(1),
            by_hash: HashMap::new(),
            chunks: VecDeque::new(),
            first: 0,
            spare: None,
            hasher: BuildHasherDefault::default(),
        }
    }

    /// The remembered record with `record`'s hash `h`, if its bytes are `record`'s.
    fn lookup(&self, h: u64, record: &[u8]) -> Option<Place> {
        let p = *self.by_hash.get(&h)?;
        let chunk = self.chunks.get((p.chunk - self.first) as usize)?;
        (chunk.bytes[p.start..p.start + p.len] == *record).then_some(p)
    }

    /// The index of a remembered record equal to `record`, if any.
    pub(super) fn find(&self, record: &[u8]) -> Option<u64> {
        if record.len() < MIN_COPY_LEN {
            return None;
        }
        self.lookup(self.hasher.hash_one(record), record)
            .map(|p| p.index)
    }

    /// Remembers record `index` (coded, not a copy), forgetting the oldest records past the
    /// budget, a chunk at a time. A record too short to be copied, or larger than the budget,
    /// is not kept. A record equal to one remembered (it was coded: the writer did not copy
    /// it) takes its place, being the more recent; so does one that only shares its hash.
    pub(super) fn add(&mut self, index: u64, record: &[u8]) {
        let cost = record.len() + ENTRY_OVERHEAD;
        if record.len() < MIN_COPY_LEN || cost > self.budget {
            return;
        }
        let h = self.hasher.hash_one(record);
        if let Some(p) = self.lookup(h, record) {
            self.by_hash.insert(h, Place { index, ..p });
            return;
        }
        while self.bytes + cost > self.budget {
            if !self.forget_oldest() {
                break;
            }
        }
        let fits = self.chunks.back().is_some_and(|c| {
            c.bytes.len() + c.entries.len() * ENTRY_OVERHEAD < self.chunk_bytes
                && c.bytes.len() + record.len() <= c.bytes.capacity()
        });
        if !fits {
            let mut chunk = self.spare.take().unwrap_or_default();
            chunk.bytes.clear();
            chunk.entries.clear();
            chunk.bytes.reserve(self.chunk_bytes.max(record.len()));
            self.chunks.push_back(chunk);
        }
        let seq = self.first + self.chunks.len() as u64 - 1;
        let chunk = self.chunks.back_mut().expect("a chunk");
        let start = chunk.bytes.len();
        chunk.bytes.extend_from_slice(record);
        chunk.entries.push((h, index));
        self.by_hash.insert(
            h,
            Place {
                index,
                chunk: seq,
                start,
                len: record.len(),
            },
        );
        self.bytes += cost;
    }

    /// Forgets the oldest chunk's records (keeping the chunk to reuse); false if none is left.
    fn forget_oldest(&mut self) -> bool {
        let Some(old) = self.chunks.pop_front() else {
            return false;
        };
        let seq = self.first;
        self.first += 1;
        for &(h, index) in &old.entries {
            // Only if the hash still names this chunk's record (a later one may have it).
            if self
                .by_hash
                .get(&h)
                .is_some_and(|p| p.chunk == seq && p.index == index)
            {
                self.by_hash.remove(&h);
            }
        }
        // The budget counted each of its records: its bytes and the overhead.
        self.bytes -= old.bytes.len() + old.entries.len() * ENTRY_OVERHEAD;
        // A chunk made for one large record is not kept.
        if old.bytes.capacity() <= self.chunk_bytes {
            self.spare = Some(old);
        }
        true
    }

    /// Bytes the table counts against its budget.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> u64 {
        self.bytes as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchiveOptions, ArchiveReader, ArchiveWriter, FLAG_COPIES};
    use crate::codebook::Codebook;
    use crate::context::Dependency;
    use crate::error::ErrorKind;
    use std::io::Cursor;

    /// Lines of a dialogue: a few recur exactly, in a mixed order, keyed by speaker or not.
    fn dialogue() -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
        let stock = [
            "Yes.",
            "Where are you going?",
            "We need to talk.",
            "INT. KITCHEN - NIGHT",
        ];
        (0..200u64)
            .map(|i| {
                let key = (i % 3 != 0).then(|| format!("speaker {}", i % 5).into_bytes());
                let text = if i % 4 == 1 {
                    format!("Line {i}, said once about the number {}.", i * 7919 % 1000)
                } else {
                    stock[(i * 7 % 11 % 4) as usize].to_string()
                };
                (key, text.into_bytes())
            })
            .collect()
    }

    fn write(records: &[(Option<Vec<u8>>, Vec<u8>)], opts: ArchiveOptions) -> Vec<u8> {
        let mut w =
            ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
                .unwrap();
        for (key, r) in records {
            w.add_in_group(key.as_deref(), r).unwrap();
        }
        w.finish().unwrap()
    }

    /// Every record reads back by `get` in any order and by `walk`; returns the copies.
    fn check(bytes: &[u8], records: &[(Option<Vec<u8>>, Vec<u8>)]) -> Vec<u64> {
        let mut r = ArchiveReader::open(Cursor::new(bytes)).unwrap();
        let n = records.len() as u64;
        for i in 0..n {
            let k = (i * 37) % n;
            assert_eq!(r.get(k).unwrap(), records[k as usize].1, "record {k}");
        }
        assert_eq!(
            r.walk(|i, rec| assert_eq!(rec.unwrap(), &records[i as usize].1[..], "record {i}")),
            0
        );
        let mut copies = Vec::new();
        for i in 0..n {
            let info = r.info(i).unwrap();
            if info.dependency != Dependency::Copy {
                continue;
            }
            let source = info.prev.unwrap();
            assert!(source < i);
            assert_ne!(r.info(source).unwrap().dependency, Dependency::Copy);
            assert_eq!(records[source as usize].1, records[i as usize].1);
            assert_eq!(info.payload_len, 0);
            assert_eq!(r.frames_of(i).unwrap(), vec![source]);
            assert_eq!(
                r.decoded_len(i).unwrap(),
                records[i as usize].1.len() as u64
            );
            // Keys are kept for copies too.
            assert_eq!(r.key(i), records[i as usize].0.as_deref());
            copies.push(i);
        }
        copies
    }

    #[test]
    fn repeats_are_copies_read_at_random_and_walked_in_any_batching() {
        let records = dialogue();
        let plain = write(&records, ArchiveOptions::default().repeats(0));
        assert_eq!(u16::from_le_bytes([plain[6], plain[7]]) & FLAG_COPIES, 0);
        assert!(check(&plain, &records).is_empty());
        let copied = write(&records, ArchiveOptions::default());
        assert_eq!(
            u16::from_le_bytes([copied[6], copied[7]]) & FLAG_COPIES,
            FLAG_COPIES
        );
        let copies = check(&copied, &records);
        // Every repeat of a line of 3 bytes or more is a copy, of its first occurrence.
        let mut first = std::collections::HashMap::new();
        let mut expected = Vec::new();
        for (i, (_, r)) in records.iter().enumerate() {
            if first.insert(r.clone(), i).is_some() && r.len() >= MIN_COPY_LEN {
                expected.push(i as u64);
            }
        }
        assert_eq!(copies, expected);
        assert!(
            copied.len() * 10 < plain.len() * 8,
            "{} vs {}",
            copied.len(),
            plain.len()
        );
        // Batches make the same copies, whatever the threads.
        let batched = |threads| {
            write(
                &records,
                ArchiveOptions::default().batch_records(16).threads(threads),
            )
        };
        let one = batched(1);
        assert_eq!(one, batched(2));
        assert_eq!(check(&one, &records), expected);
        // Whole JSON lines and a primer: the forms repeat as the lines do.
        let opts = ArchiveOptions::default().json_lines(true).primer(256);
        let lines: Vec<_> = records
            .iter()
            .map(|(k, r)| (k.clone(), [&b"{\"t\": \""[..], r, b"\"}\n"].concat()))
            .collect();
        assert_eq!(check(&write(&lines, opts), &lines), expected);
        // Block mode codes pages: no copies, and no flag.
        let paged = write(&records, ArchiveOptions::default().page_bytes(512));
        assert_eq!(u16::from_le_bytes([paged[6], paged[7]]) & FLAG_COPIES, 0);
        assert!(check(&paged, &records).is_empty());
    }

    #[test]
    fn a_small_table_forgets_sources_and_codes_repeats_again() {
        let records = dialogue();
        // Room for about two lines: a line said again after others is coded again.
        let bytes = write(
            &records,
            ArchiveOptions::default().repeats(2 * (ENTRY_OVERHEAD + 30)),
        );
        let copies = check(&bytes, &records);
        assert!(!copies.is_empty());
        assert!(copies.len() < check(&write(&records, ArchiveOptions::default()), &records).len());
    }

    /// The index of `bytes` (an archive without a primer) with `edit` applied to its body, its
    /// checksum made right again.
    fn patch_index(bytes: &[u8], edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut b = bytes.to_vec();
        let end = b.len() - crate::archive::FOOTER_LEN;
        let index_off = u64::from_le_bytes(b[end..end + 8].try_into().unwrap()) as usize;
        edit(&mut b[index_off..end - 4]);
        let crc = crate::checksum::crc32c(&b[index_off..end - 4]);
        b[end - 4..end].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Where `pattern` is in `hay` (exactly once).
    fn find(hay: &[u8], pattern: &[u8]) -> usize {
        let at: Vec<usize> = (0..=hay.len() - pattern.len())
            .filter(|&i| hay[i..i + pattern.len()] == *pattern)
            .collect();
        assert_eq!(at.len(), 1, "{pattern:?} in {hay:?}");
        at[0]
    }

    #[test]
    fn hostile_copies_are_refused_by_name() {
        let records: Vec<(Option<Vec<u8>>, Vec<u8>)> = [
            &b"first line"[..],
            b"second line",
            b"first line",
            b"first line",
        ]
        .iter()
        .map(|r| (None, r.to_vec()))
        .collect();
        // The plain index (a coded one is tested in `index.rs`).
        let good = write(&records, ArchiveOptions::default().coded_index(false));
        assert_eq!(check(&good, &records), vec![2, 3]);
        // Records 2 and 3: payload length 0, tag 3 (the previous record's context, level 3),
        // and 2 and 3 back to record 0.
        let entries = [0u8, 3, 2, 0, 3, 3];
        let refused = |edit: &dyn Fn(&mut [u8], usize), what: &str| {
            let bad = patch_index(&good, |idx| {
                let at = find(idx, &entries);
                edit(idx, at);
            });
            let e = ArchiveReader::open(Cursor::new(&bad))
                .map(|_| ())
                .unwrap_err();
            assert!(matches!(e.kind(), ErrorKind::Corrupt { .. }), "{e}");
            assert!(e.to_string().contains(what), "{what}: {e}");
        };
        refused(&|idx, at| idx[at + 5] = 1, "record 3: copy of a copy");
        refused(
            &|idx, at| idx[at + 2] = 0,
            "record 2: copy of itself or of a later record",
        );
        refused(
            &|idx, at| idx[at + 2] = 3,
            "record 2: copy of itself or of a later record",
        );
        refused(
            &|idx, at| idx[at + 5] = 0x7f,
            "record 3: copy of itself or of a later record",
        );
        refused(&|idx, at| idx[at] = 1, "record 2: a copy has a payload");
        // Without the header flag, level 3 is what it was: unknown.
        let mut b = good.clone();
        b[6] &= !(FLAG_COPIES as u8);
        let crc = crate::checksum::crc32c(&b[..16]);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        let e = ArchiveReader::open(Cursor::new(&b))
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("record 2: unknown level"), "{e}");
        // A copy is no bank root: a reference to one is refused.
        let bad = patch_index(&good, |idx| {
            let at = find(idx, &entries);
            // Record 2 becomes a root (tag 2) with its copy's byte, and record 3 a root
            // referencing record 2 (has_refs: 1 reference, 1 back) is what the bytes say
            // once record 3's tag is 6.
            idx[at + 4] = 6;
            idx[at + 5] = 1;
        });
        assert!(ArchiveReader::open(Cursor::new(&bad)).is_err());
    }

    #[test]
    fn a_damaged_source_fails_its_copies_by_name() {
        let records: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..40)
            .map(|i| (None, format!("line {}", i % 10).into_bytes()))
            .collect();
        // Every record a root: damage to block 0 reaches its records and their copies only
        // (blocks of exactly 4 records: an index that is not coded).
        let opts = ArchiveOptions::default()
            .coded_index(false)
            .block_records(4)
            .group(crate::GroupOptions::none());
        let good = write(&records, opts);
        let copies = check(&good, &records);
        assert_eq!(copies, (10..40).collect::<Vec<_>>());
        let r = ArchiveReader::open(Cursor::new(&good)).unwrap();
        let source = r.info(0).unwrap();
        let mut bad = good.clone();
        bad[source.offset as usize] ^= 0x55;
        let mut r = ArchiveReader::open(Cursor::new(&bad)).unwrap();
        let e = r.get(20).unwrap_err();
        assert!(
            e.to_string().contains("record 20 is a copy of record 0"),
            "{e}"
        );
        assert_eq!(r.get(25).unwrap(), records[25].1);
        // The walk reports the source and each of its copies, and nothing else.
        let mut failed = Vec::new();
        r.walk(|i, rec| {
            if rec.is_err() {
                failed.push(i);
            }
        });
        let expected: Vec<u64> = (0..40).filter(|i| i % 10 < 4).collect();
        assert_eq!(failed, expected);
    }

    #[test]
    fn finds_equal_records_only_and_forgets_the_oldest_past_its_budget() {
        let budget = 3 * (10 + ENTRY_OVERHEAD);
        let mut t = Repeats::new(budget);
        for (i, r) in [b"record 000", b"record 001", b"record 002"]
            .iter()
            .enumerate()
        {
            assert_eq!(t.find(*r), None);
            t.add(i as u64, *r);
        }
        assert_eq!(t.find(b"record 001"), Some(1));
        assert_eq!(t.find(b"record 00"), None);
        assert_eq!(t.find(b"record 0011"), None);
        // A fourth record is past the budget: the oldest chunk (of one record: the budget is
        // small) is forgotten.
        t.add(3, b"record 003");
        assert_eq!(t.find(b"record 000"), None);
        assert_eq!(t.find(b"record 002"), Some(2));
        assert_eq!(t.find(b"record 003"), Some(3));
        assert!(t.bytes() <= budget as u64);
        // Too short, or larger than the budget: never kept.
        t.add(4, b"ab");
        assert_eq!(t.find(b"ab"), None);
        t.add(5, &[7u8; 1000]);
        assert_eq!(t.find(&[7u8; 1000]), None);
        assert_eq!(t.find(b"record 003"), Some(3));
        // Many records through a budget of a few chunks: the newest stay, the memory does not
        // grow past the budget.
        let mut t = Repeats::new(64 << 10);
        for i in 0..10_000u64 {
            t.add(i, format!("line number {i}").as_bytes());
            assert!(t.bytes() <= 64 << 10);
        }
        assert_eq!(t.find(b"line number 9999"), Some(9999));
        assert_eq!(t.find(b"line number 9600"), Some(9600));
        assert_eq!(t.find(b"line number 10"), None);
        assert!(t.chunks.len() <= 9, "{}", t.chunks.len());
    }

    #[test]
    fn a_record_coded_again_becomes_the_source() {
        let mut t = Repeats::new(1 << 20);
        t.add(0, b"same bytes");
        t.add(7, b"same bytes");
        assert_eq!(t.find(b"same bytes"), Some(7));
        assert_eq!(t.bytes(), (10 + ENTRY_OVERHEAD) as u64);
    }
}
