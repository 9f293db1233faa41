//! Groups inferred from content for records added without a key
//! ([`ArchiveOptions::infer_groups`](super::ArchiveOptions)): a log sorted (or interleaved) by
//! conversation, packed without `--context-key`, is grouped as if it were keyed.
//!
//! The rule (FORMAT.md §5.2, informative). For the last record `p` of each of the [`TRACKED`]
//! most recently used inferred groups, the writer remembers its length and [`ANCHORS`] windows
//! of [`WINDOW`] bytes of it: at a quarter, half and three quarters of it, and the one that ends
//! [`CLOSING`] bytes before its end. A record *continues* `p` if `p` is at least
//! [`MIN_LEN`] bytes and the record holds every window at the window's position in `p`, give or
//! take [`SHIFT`] bytes: it repeats `p` nearly whole, at the same place (a request that repeats
//! the one before, even when an id before it grew by a digit). The most recently used group
//! whose last record it continues gets the record. A record that continues none joins the
//! *open* group, as records all did before. A record that continues the record just before it,
//! in the open group, and is at least a quarter longer, *claims* the open group for its conversation: the next
//! record that continues none opens a new group. So unrelated records (chat turns, code, short
//! lines) stay together, and each conversation of a request log gets a group of its own.

use std::collections::VecDeque;

/// Groups whose last record the writer remembers.
pub(super) const TRACKED: usize = 256;
/// Windows remembered of a group's last record, and their length.
pub(super) const ANCHORS: usize = 4;
pub(super) const WINDOW: usize = 32;
/// The last window ends this many bytes before the record's end (where a request body
/// closes, which the next request changes).
pub(super) const CLOSING: usize = 16;
/// How far a window may move in the next record.
pub(super) const SHIFT: usize = 8;
/// The shortest record that others continue.
pub(super) const MIN_LEN: usize = 64;

/// What the writer remembers of a group's last record.
#[derive(Debug)]
struct Head {
    group: u32,
    len: usize,
    /// Each window's position in the record and bytes (none if the record is too short).
    anchors: Option<[(usize, [u8; WINDOW]); ANCHORS]>,
}

impl Head {
    fn of(group: u32, record: &[u8]) -> Head {
        let len = record.len();
        let anchors = (len >= MIN_LEN).then(|| {
            let last = len - WINDOW - CLOSING;
            [len / 4, len / 2, 3 * len / 4, last].map(|at| {
                let at = at.min(last);
                let mut w = [0u8; WINDOW];
                w.copy_from_slice(&record[at..at + WINDOW]);
                (at, w)
            })
        });
        Head {
            group,
            len,
            anchors,
        }
    }

    /// Whether `record` continues this group's last record.
    fn continued_by(&self, record: &[u8]) -> bool {
        let Some(anchors) = &self.anchors else {
            return false;
        };
        anchors.iter().all(|(at, w)| {
            (at.saturating_sub(SHIFT)..=at + SHIFT)
                .any(|from| record.get(from..from + WINDOW) == Some(&w[..]))
        })
    }
}

/// The writer's inferred groups.
#[derive(Debug)]
pub(super) struct Inference {
    /// The tracked groups, most recently used last.
    heads: VecDeque<Head>,
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
        let found = self.heads.iter().rposition(|h| h.continued_by(record));
        let cid = match found {
            Some(i) => {
                let head = &self.heads[i];
                // A request that repeats the one just before and adds a turn to it (a quarter
                // more at least): a conversation.
                if head.group == self.open
                    && self.last_open
                    && record.len() >= head.len + head.len / 4
                {
                    self.claimed = true;
                }
                head.group
            }
            None => {
                if self.claimed {
                    self.open = new_id()?;
                    self.claimed = false;
                }
                self.open
            }
        };
        if let Some(i) = self.heads.iter().position(|h| h.group == cid) {
            self.heads.remove(i);
        }
        self.heads.push_back(Head::of(cid, record));
        if self.heads.len() > TRACKED {
            self.heads.pop_front();
        }
        self.last_open = cid == self.open;
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
    /// with the conversation's own topic and an id that grows, as a request log's lines have).
    fn conversation(name: &str, turns: usize) -> Vec<Vec<u8>> {
        history(turns)
            .into_iter()
            .enumerate()
            .map(|(t, r)| {
                let r = String::from_utf8(r).unwrap().replace("rust", name);
                format!("{{\"id\": \"{name}/{t}\", \"text\": {r}}}").into_bytes()
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
