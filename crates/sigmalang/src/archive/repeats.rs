//! Exact repeats (FORMAT.md §5.8): the writer's table of recent records, by their bytes, so
//! that a record equal to one of them is written as a copy of it (an index entry, no payload).
//!
//! Memory is bounded by [`ArchiveOptions::repeats`](super::ArchiveOptions::repeats): the table
//! holds the most recent records (never copies) whose lengths, plus [`ENTRY_OVERHEAD`] bytes
//! each, add up to at most that budget, and forgets the oldest first. With the default 32 MiB,
//! that is about 236 000 records of 46 bytes (short lines) or the last 32 MiB of long ones; a
//! record repeated after it left the table is coded again, and becomes the source of the
//! repeats after it. The table compares whole records (a hash table keyed by the bytes), so a
//! copy is only ever written for equal bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What the budget counts for each record beyond its bytes: its shared buffer's header and
/// the allocator's rounding (about 32 bytes), its slot in the hash table (a fat pointer and
/// the index, about 28 bytes at the table's load) and its place in the queue (16 bytes), with
/// room to spare, so that the budget bounds the table's memory.
pub(super) const ENTRY_OVERHEAD: usize = 96;

/// The shortest record written as a copy: a copy's entry takes a byte more than a record's
/// (the distance to its source) and saves the payload, which for a record of a byte or two is
/// about as short.
pub(super) const MIN_COPY_LEN: usize = 3;

/// Recent records by their bytes.
pub(super) struct Repeats {
    budget: usize,
    bytes: usize,
    /// Each remembered record's bytes and index.
    by_bytes: HashMap<Arc<[u8]>, u64>,
    /// The remembered records, oldest first (to forget them in that order).
    order: VecDeque<Arc<[u8]>>,
}

impl Repeats {
    /// An empty table that holds at most `budget` bytes (records plus overhead).
    pub(super) fn new(budget: usize) -> Repeats {
        Repeats {
            budget,
            bytes: 0,
            by_bytes: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The index of a remembered record equal to `record`, if any.
    pub(super) fn find(&self, record: &[u8]) -> Option<u64> {
        if record.len() < MIN_COPY_LEN {
            return None;
        }
        self.by_bytes.get(record).copied()
    }

    /// Remembers record `index` (coded, not a copy), forgetting the oldest records past the
    /// budget. A record too short to be copied, or larger than the budget, is not kept. A
    /// record equal to one remembered (it was coded: the writer did not copy it) takes its
    /// place, being the more recent.
    pub(super) fn add(&mut self, index: u64, record: &[u8]) {
        let cost = record.len() + ENTRY_OVERHEAD;
        if record.len() < MIN_COPY_LEN || cost > self.budget {
            return;
        }
        if let Some(at) = self.by_bytes.get_mut(record) {
            *at = index;
            return;
        }
        while self.bytes + cost > self.budget {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.bytes -= old.len() + ENTRY_OVERHEAD;
            self.by_bytes.remove(&old);
        }
        let bytes: Arc<[u8]> = Arc::from(record);
        self.by_bytes.insert(Arc::clone(&bytes), index);
        self.order.push_back(bytes);
        self.bytes += cost;
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
        let good = write(&records, ArchiveOptions::default());
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
        // Every record a root: damage to block 0 reaches its records and their copies only.
        let opts = ArchiveOptions::default()
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
        let mut t = Repeats::new(3 * (10 + ENTRY_OVERHEAD));
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
        // A fourth record pushes the first out.
        t.add(3, b"record 003");
        assert_eq!(t.find(b"record 000"), None);
        assert_eq!(t.find(b"record 003"), Some(3));
        assert!(t.bytes() <= 3 * (10 + ENTRY_OVERHEAD) as u64);
        // Too short, or larger than the budget: never kept.
        t.add(4, b"ab");
        assert_eq!(t.find(b"ab"), None);
        t.add(5, &[7u8; 1000]);
        assert_eq!(t.find(&[7u8; 1000]), None);
        assert_eq!(t.find(b"record 001"), Some(1));
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
