//! Groups inferred from content for records added without a key
//! ([`ArchiveOptions::infer_groups`](super::ArchiveOptions)): a log sorted (or interleaved) by
//! conversation, packed without `--context-key`, is grouped as if it were keyed.
//!
//! The rule (FORMAT.md §5.2, informative): the writer remembers the beginning (up to
//! [`HEAD`] bytes) of the last record of the [`TRACKED`] most recently used inferred groups. A
//! record *continues* a group if the longest common prefix `l` of the record and that group's
//! last record is at least [`MIN_SHARED`] bytes and at least half of that last record (of its
//! remembered beginning); among several, the longest `l` wins, ties to the most recent. A record
//! that continues no group joins the *open* group, as records all did before. A record that
//! continues the record just before it, in the open group, is longer, and shares all of it but
//! its last [`CLOSING`] bytes (a request that repeats the one before and adds a turn) *claims*
//! the open group for its conversation: the next record that continues nothing opens a new
//! group. So unrelated records (chat turns, code, short lines)
//! stay together as before, and each conversation of a request log (whose every request
//! repeats the one before) gets a group of its own, starting with its first request.

use std::collections::VecDeque;

/// Bytes of a group's last record the writer remembers.
pub(super) const HEAD: usize = 4096;
/// Groups whose last record the writer remembers.
pub(super) const TRACKED: usize = 256;
/// The bytes at the end of a request that the next request of its conversation may change
/// (`]}` and the like, where the request body closes).
pub(super) const CLOSING: usize = 16;
/// The shortest common prefix that continues a group.
pub(super) const MIN_SHARED: usize = 64;

/// The writer's inferred groups.
#[derive(Debug)]
pub(super) struct Inference {
    /// The tracked groups, most recently used last: id, the beginning of its last record and
    /// that record's length.
    heads: VecDeque<(u32, Vec<u8>, usize)>,
    /// The group records that continue nothing join.
    open: u32,
    /// Whether a record claimed the open group.
    claimed: bool,
    /// Whether the record added last went to the open group.
    last_open: bool,
}

impl Inference {
    /// No group yet; the first open group is `first`.
    pub(super) fn new(first: u32) -> Inference {
        Inference {
            heads: VecDeque::new(),
            open: first,
            claimed: false,
            last_open: false,
        }
    }

    /// The group of `record`; `new_id` gives the id of a group opened for it.
    pub(super) fn group_of(
        &mut self,
        record: &[u8],
        new_id: impl FnOnce() -> crate::error::Result<u32>,
    ) -> crate::error::Result<u32> {
        let mut best: Option<(usize, usize)> = None; // (shared, position in heads)
        for (i, (_, head, len)) in self.heads.iter().enumerate() {
            let shared = head.iter().zip(record).take_while(|(a, b)| a == b).count();
            let needed = (*len).min(HEAD).div_ceil(2).max(MIN_SHARED);
            if shared >= needed && best.map_or(true, |(s, _)| shared >= s) {
                best = Some((shared, i));
            }
        }
        let (cid, at) = match best {
            Some((shared, i)) => {
                let (cid, _, len) = self.heads[i];
                // A request that repeats all of the one just before (but for its last few
                // bytes, where a request body closes) and adds to it: a conversation.
                if cid == self.open
                    && self.last_open
                    && record.len() > len
                    && shared + CLOSING >= len.min(HEAD)
                {
                    self.claimed = true;
                }
                (cid, Some(i))
            }
            None => {
                if self.claimed {
                    self.open = new_id()?;
                    self.claimed = false;
                }
                let at = self.heads.iter().position(|h| h.0 == self.open);
                (self.open, at)
            }
        };
        let mut entry = match at.and_then(|i| self.heads.remove(i)) {
            Some(e) => e,
            None => (cid, Vec::with_capacity(HEAD), 0),
        };
        entry.1.clear();
        entry.1.extend_from_slice(&record[..record.len().min(HEAD)]);
        entry.2 = record.len();
        self.last_open = cid == self.open;
        self.heads.push_back(entry);
        if self.heads.len() > TRACKED {
            self.heads.pop_front();
        }
        Ok(cid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::testing::*;
    use crate::archive::{ArchiveOptions, ArchiveReader, ArchiveWriter};
    use crate::codebook::Codebook;
    use std::io::Cursor;

    fn groups_of(records: &[Vec<u8>]) -> Vec<u32> {
        let mut next = 0;
        let mut inf = Inference::new(0);
        records
            .iter()
            .map(|r| {
                inf.group_of(r, || {
                    next += 1;
                    Ok(next)
                })
                .unwrap()
            })
            .collect()
    }

    /// A conversation's requests, each repeating the one before (as `history` makes them,
    /// with the conversation named in its first turn).
    fn conversation(name: &str, turns: usize) -> Vec<Vec<u8>> {
        history(turns)
            .into_iter()
            .map(|r| {
                let mut v = format!("{{\"messages\": [\"conversation {name}: ").into_bytes();
                v.extend_from_slice(&r);
                v
            })
            .collect()
    }

    #[test]
    fn sorted_and_interleaved_conversations_get_a_group_each() {
        let a = conversation("alpha", 6);
        let b = conversation("beta", 6);
        let sorted: Vec<Vec<u8>> = a.iter().chain(&b).cloned().collect();
        assert_eq!(groups_of(&sorted), [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
        // Interleaved after their first requests: each continues its own group.
        let mut mixed = vec![a[0].clone(), a[1].clone(), b[0].clone(), b[1].clone()];
        for t in 2..6 {
            mixed.push(a[t].clone());
            mixed.push(b[t].clone());
        }
        assert_eq!(groups_of(&mixed), [0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        // Unrelated records share the open group.
        let lines: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("line {i} of a log (data files)").into_bytes())
            .collect();
        assert!(groups_of(&lines).iter().all(|&g| g == 0));
    }

    #[test]
    fn unkeyed_conversations_code_as_well_as_keyed() {
        let convs: Vec<Vec<Vec<u8>>> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| conversation(n, 24))
            .collect();
        let build = |keyed: bool, infer: bool| {
            let opts = ArchiveOptions::default().infer_groups(infer);
            let mut w =
                ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
                    .unwrap();
            for (c, conv) in convs.iter().enumerate() {
                for r in conv {
                    let key = format!("{c}");
                    w.add_in_group(keyed.then_some(key.as_bytes()), r).unwrap();
                }
            }
            w.finish().unwrap()
        };
        let keyed = build(true, true);
        let inferred = build(false, true);
        let single = build(false, false);
        assert!(
            inferred.len() <= keyed.len() + keyed.len() / 50,
            "{} vs {}",
            inferred.len(),
            keyed.len()
        );
        let mut r = ArchiveReader::open(Cursor::new(&inferred)).unwrap();
        for n in 0..96 {
            assert_eq!(r.info(n).unwrap().group, (n / 24) as u32, "record {n}");
        }
        let single = ArchiveReader::open(Cursor::new(&single)).unwrap();
        assert!((0..96).all(|n| single.info(n).unwrap().group == 0));
        let all: Vec<&Vec<u8>> = convs.iter().flatten().collect();
        assert_eq!(
            r.walk(|n, rec| assert_eq!(rec.unwrap(), &all[n as usize][..])),
            0
        );
        assert_eq!(r.info(24).unwrap().group, 1);
        assert_eq!(r.info(24).unwrap().dependency, crate::Dependency::Root);
    }
}
