//! Exact repeats (FORMAT.md §5.8): the writer's table of recent records, by their bytes, so
//! that a record equal to one of them is written as a copy of it (an index entry, no payload).
//!
//! Memory is bounded by [`ArchiveOptions::repeats`](super::ArchiveOptions::repeats): the table
//! holds the most recent records (never copies) whose lengths, plus [`ENTRY_OVERHEAD`] bytes
//! each, add up to at most that budget, and forgets the oldest first. With the default 32 MiB,
//! that is about 290 000 records of 46 bytes (short lines) or the last 32 MiB of long ones; a
//! record repeated after it left the table is coded again, and becomes the source of the
//! repeats after it. The table compares whole records (a hash table keyed by the bytes), so a
//! copy is only ever written for equal bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What the budget counts for each record beyond its bytes: its key and slot in the hash
/// table and its place in the queue.
pub(super) const ENTRY_OVERHEAD: usize = 64;

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
