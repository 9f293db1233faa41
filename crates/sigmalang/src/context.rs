//! Contexts: which earlier records a record is coded against.
//!
//! Records are grouped into *contexts* (by default the whole archive is one context, so a
//! record's context is the records just before it; `sigma pack --context-key FIELD` keys
//! contexts by a JSON field, so the interleaved conversations of a log each get their own). In
//! each context the writer keeps a [`ContextStack`] of recent frames (the records themselves);
//! a record is coded against the most recent frames ([`select_frames`]), and its repeats of them
//! become DELTA runs.
//!
//! Dependencies are bounded by a two-level hierarchy, as video codecs bound theirs:
//!
//! * every `keyframe_interval`-th record of a context is a *keyframe*, coded against one frame
//!   only, the previous keyframe of its context (in a log whose requests repeat the conversation
//!   so far, that is a long prefix of it);
//! * every `keyframes_per_root`-th keyframe is a *root*, coded against nothing; so is the first
//!   record of a context, and the next record of a context whose frames were evicted (the
//!   writer's memory is bounded);
//! * the other records are *deltas*, coded against the most recent records of their context
//!   since its keyframe ([`select_frames`]).
//!
//! Decoding any record touches at most `keyframes_per_root` keyframes and `keyframe_interval`
//! records of its context.
//!
//! Frame selection depends only on the archive's index (record order, context ids, keyframe
//! flags, lengths) and the options stored in it, so a reader derives exactly the writer's frames.

use std::collections::VecDeque;
use std::sync::Arc;

/// How archive records are coded against the earlier records of their group (the records
/// added with the same key; the index calls a group a context).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupOptions {
    /// A group's records since its last keyframe number at most this many (>= 1).
    pub(crate) keyframe_interval: u32,
    /// A group's keyframes since its last root number at most this many (>= 1); with
    /// `keyframe_interval` 1 and this 1, every record is a root and group coding is off.
    pub(crate) keyframes_per_root: u32,
    /// A record is coded against at most this many frames.
    pub(crate) max_frames: u32,
    /// ... whose lengths add up to at most this many bytes.
    pub(crate) window: u64,
    /// The writer holds at most this many bytes of frames over all groups; the least recently
    /// used groups are evicted beyond it (their next record becomes a root).
    pub(crate) memory: u64,
}

crate::settings! {
    GroupOptions {
        /// A group's records since its last keyframe number at most this many (>= 1).
        keyframe_interval, get_keyframe_interval: keyframe_interval: u32;
        /// A group's keyframes since its last root number at most this many (>= 1); with
        /// `keyframe_interval` 1 and this 1, every record is a root and group coding is off.
        keyframes_per_root, get_keyframes_per_root: keyframes_per_root: u32;
        /// A record is coded against at most this many frames.
        max_frames, get_max_frames: max_frames: u32;
        /// ... whose lengths add up to at most this many bytes.
        window, get_window: window: u64;
        /// The writer holds at most this many bytes of frames over all groups; the least recently
        /// used groups are evicted beyond it (their next record becomes a root).
        memory, get_memory: memory: u64;
    }
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            keyframe_interval: 16,
            keyframes_per_root: 16,
            max_frames: 2,
            window: 1 << 20,
            memory: 64 << 20,
        }
    }
}

impl GroupOptions {
    /// No group coding: every record is a root.
    pub fn none() -> GroupOptions {
        GroupOptions {
            keyframe_interval: 1,
            keyframes_per_root: 1,
            max_frames: 0,
            ..GroupOptions::default()
        }
    }
}

/// Picks the frames of a record from the records of its context since the last keyframe
/// (`(index, length)`, oldest first): the most recent `max_frames` whose lengths fit in `window`.
/// Returns a range of `group`.
pub fn select_frames(group: &[(u64, u64)], opts: &GroupOptions) -> std::ops::Range<usize> {
    let end = group.len();
    let mut start = end;
    let mut bytes = 0u64;
    while start > 0 && (end - start) < opts.max_frames as usize {
        let len = group[start - 1].1;
        if bytes + len > opts.window {
            break;
        }
        bytes += len;
        start -= 1;
    }
    start..end
}

/// How an archive record depends on the earlier records of its group (the index calls it the
/// record's level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Dependency {
    /// Coded against recent records of its group since its keyframe.
    Delta = 0,
    /// Coded against the previous keyframe of its group.
    Keyframe = 1,
    /// Coded against nothing.
    Root = 2,
    /// No payload: the record's bytes are those of an earlier record of the archive, its
    /// *source* ([`RecordInfo::prev`](crate::RecordInfo::prev); FORMAT.md §5.8). A copy is in
    /// no chain of its group: the group's next record depends on the records before it.
    Copy = 3,
}

impl Dependency {
    /// The level with index code `code` (3, a copy, only in an archive whose header allows
    /// copies: the index reads it, this gives `None`).
    pub fn from_code(code: u64) -> Option<Dependency> {
        Some(match code {
            0 => Dependency::Delta,
            1 => Dependency::Keyframe,
            2 => Dependency::Root,
            _ => return None,
        })
    }

    /// Its name in listings.
    pub fn name(self) -> &'static str {
        match self {
            Dependency::Delta => "delta",
            Dependency::Keyframe => "keyframe",
            Dependency::Root => "root",
            Dependency::Copy => "copy",
        }
    }
}

/// A frame: a record of the context, kept for coding the records after it.
#[derive(Debug, Default)]
pub struct ContextFrame {
    /// The record's index in the archive.
    pub index: u64,
    /// The record's bytes, shared with the batches that are coding against them.
    pub bytes: Arc<Vec<u8>>,
}

/// Recycled frame buffers, shared by the context stacks of one writer.
#[derive(Debug, Default)]
pub struct FramePool {
    /// Free frames, oldest returned first: a batch in flight may still share the newest ones.
    free: VecDeque<ContextFrame>,
    created: u64,
    reused: u64,
}

/// Free frames a pool keeps at most; beyond it returned frames are dropped (their memory goes
/// back to the allocator once no batch shares them).
const MAX_FREE_FRAMES: usize = 1024;

/// What the archive writer's pool of frame buffers has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FramePoolStats {
    /// Frames allocated (the pool had none free).
    pub frames_created: u64,
    /// Frames taken again from the pool.
    pub frames_reused: u64,
    /// Free frames now.
    pub available: usize,
}

impl FramePool {
    /// A frame whose buffer nobody else holds, filled with `bytes`.
    fn take(&mut self, index: u64, bytes: &[u8]) -> ContextFrame {
        let unshared = self
            .free
            .front()
            .is_some_and(|f| Arc::strong_count(&f.bytes) == 1 && Arc::weak_count(&f.bytes) == 0);
        let mut frame = if unshared {
            self.reused += 1;
            self.free.pop_front().expect("checked")
        } else {
            self.created += 1;
            ContextFrame::default()
        };
        let buf = Arc::get_mut(&mut frame.bytes).expect("unshared by construction");
        buf.clear();
        buf.extend_from_slice(bytes);
        frame.index = index;
        frame
    }

    fn give(&mut self, frame: ContextFrame) {
        if self.free.len() >= MAX_FREE_FRAMES {
            self.free.pop_front();
        }
        self.free.push_back(frame);
    }

    /// Drops free frames beyond `keep` (their memory goes back to the allocator).
    pub fn trim(&mut self, keep: usize) {
        while self.free.len() > keep {
            self.free.pop_front();
        }
    }

    /// The pool's counters.
    pub fn stats(&self) -> FramePoolStats {
        FramePoolStats {
            frames_created: self.created,
            frames_reused: self.reused,
            available: self.free.len(),
        }
    }
}

/// The recent frames of one context since its last keyframe, and that keyframe.
#[derive(Debug, Default)]
pub struct ContextStack {
    frames: VecDeque<ContextFrame>,
    /// The context's last keyframe or root, and keyframes since the root (0: none yet).
    keyframe: Option<ContextFrame>,
    keyframes: u32,
    /// Records of the context since its last keyframe (`(index, length)`), the frames' source.
    group: Vec<(u64, u64)>,
    bytes: u64,
}

impl ContextStack {
    /// The level of the context's next record.
    pub fn next_level(&self, opts: &GroupOptions) -> Dependency {
        if !self.group.is_empty() && self.group.len() < opts.keyframe_interval as usize {
            Dependency::Delta
        } else if self.keyframes == 0 || self.keyframes >= opts.keyframes_per_root {
            Dependency::Root
        } else {
            Dependency::Keyframe
        }
    }

    /// Forgets everything (the next record is a root); gives its frames back to `pool`.
    pub fn clear(&mut self, pool: &mut FramePool) {
        self.start_group(pool);
        if let Some(k) = self.keyframe.take() {
            self.bytes -= k.bytes.len() as u64;
            pool.give(k);
        }
        self.keyframes = 0;
    }

    fn start_group(&mut self, pool: &mut FramePool) {
        while let Some(f) = self.frames.pop_front() {
            self.bytes -= f.bytes.len() as u64;
            pool.give(f);
        }
        self.group.clear();
    }

    /// The frames of the next record, oldest first.
    pub fn frames(&self, opts: &GroupOptions) -> impl Iterator<Item = &[u8]> + '_ {
        self.frame_buffers(opts).map(|b| &b[..])
    }

    /// The frames of the next record as shared buffers (to code it later, elsewhere).
    pub fn frame_buffers(&self, opts: &GroupOptions) -> impl Iterator<Item = &Arc<Vec<u8>>> + '_ {
        let (keyframe, skip, take) = match self.next_level(opts) {
            Dependency::Root | Dependency::Copy => (None, 0, 0),
            Dependency::Keyframe => (self.keyframe.as_ref().map(|k| &k.bytes), 0, 0),
            Dependency::Delta => {
                let wanted = select_frames(&self.group, opts).len();
                (None, self.frames.len().saturating_sub(wanted), wanted)
            }
        };
        keyframe
            .into_iter()
            .chain(self.frames.iter().skip(skip).take(take).map(|f| &f.bytes))
    }

    /// Appends the indices of the next record's frames to `out`.
    pub fn frame_indices(&self, opts: &GroupOptions, out: &mut Vec<u64>) {
        match self.next_level(opts) {
            Dependency::Root | Dependency::Copy => {}
            Dependency::Keyframe => out.extend(self.keyframe.as_ref().map(|k| k.index)),
            Dependency::Delta => {
                let range = select_frames(&self.group, opts);
                out.extend(self.group[range].iter().map(|&(i, _)| i));
            }
        }
    }

    /// Takes in a record of the context after coding it at `level`. Keeps at most
    /// `max_frames` frames, and the last keyframe.
    pub fn push(
        &mut self,
        index: u64,
        record: &[u8],
        level: Dependency,
        opts: &GroupOptions,
        pool: &mut FramePool,
    ) {
        if level == Dependency::Copy {
            // A copy is in no chain: the group goes on from the records before it.
            return;
        }
        if level != Dependency::Delta {
            self.start_group(pool);
            self.keyframes = if level == Dependency::Root {
                1
            } else {
                self.keyframes + 1
            };
            if let Some(old) = self.keyframe.take() {
                self.bytes -= old.bytes.len() as u64;
                pool.give(old);
            }
            self.keyframe = Some(pool.take(index, record));
            self.bytes += record.len() as u64;
        }
        self.group.push((index, record.len() as u64));
        self.bytes += record.len() as u64;
        self.frames.push_back(pool.take(index, record));
        while self.frames.len() > opts.max_frames as usize {
            let old = self.frames.pop_front().expect("non-empty");
            self.bytes -= old.bytes.len() as u64;
            pool.give(old);
        }
    }

    /// Bytes held in frames and the keyframe.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_the_most_recent_within_the_window() {
        let opts = GroupOptions {
            max_frames: 2,
            window: 100,
            ..GroupOptions::default()
        };
        let g = [(0, 10), (3, 20), (7, 30)];
        assert_eq!(select_frames(&g, &opts), 1..3);
        assert_eq!(select_frames(&g[..1], &opts), 0..1);
        assert_eq!(select_frames(&[], &opts), 0..0);
        let big = [(0, 10), (1, 200)];
        assert_eq!(select_frames(&big, &opts), 2..2);
        let mut pool = FramePool::default();
        let mut st = ContextStack::default();
        assert_eq!(st.next_level(&opts), Dependency::Root);
        for (i, r) in [&b"aaaa"[..], b"bbbbb", b"cc"].iter().enumerate() {
            let level = st.next_level(&opts);
            assert_eq!(
                level,
                if i == 0 {
                    Dependency::Root
                } else {
                    Dependency::Delta
                }
            );
            st.push(i as u64, r, level, &opts, &mut pool);
        }
        assert_eq!(
            st.frames(&opts).collect::<Vec<_>>(),
            vec![&b"bbbbb"[..], b"cc"]
        );
        let mut ids = Vec::new();
        st.frame_indices(&opts, &mut ids);
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(
            pool.stats(),
            FramePoolStats {
                frames_created: 4,
                frames_reused: 0,
                available: 1
            }
        );
        assert_eq!(st.bytes(), 4 + 7);
        let opts = GroupOptions {
            keyframe_interval: 2,
            keyframes_per_root: 2,
            ..opts
        };
        let mut st = ContextStack::default();
        let mut levels = Vec::new();
        for i in 0..9u64 {
            let level = st.next_level(&opts);
            levels.push(level);
            if level == Dependency::Keyframe {
                let mut ids = Vec::new();
                st.frame_indices(&opts, &mut ids);
                assert_eq!(ids.len(), 1);
            }
            st.push(i, b"xyz", level, &opts, &mut pool);
        }
        use Dependency::*;
        assert_eq!(
            levels,
            vec![Root, Delta, Keyframe, Delta, Root, Delta, Keyframe, Delta, Root]
        );
    }
}
