//! Block mode ([`ArchiveOptions::page_bytes`](super::ArchiveOptions), `sigma pack --block`):
//! consecutive records are grouped into pages, each coded as one payload with the stream's
//! chunk coder, at once or on the batch encoder's workers (a page a job). Here: how the writer
//! fills, lays out and writes pages, and how the index describes them (FORMAT.md §5.7).

use std::io::Write;

use super::batch::Pending;
use super::index::Index;
use super::writer::Coder;
use super::{ArchiveWriter, RecordInfo};
use crate::context::Dependency;
use crate::error::{Error, Result};
use crate::record::MAX_RECORD_LEN;
use crate::varint;

/// Page layouts: the records' lengths are listed in the index (`EXPLICIT`), or each record is
/// followed by byte `b`, which none holds (`SEPARATED + b`), or each record ends with byte `b`
/// and holds it nowhere else (`TERMINATED + b`).
const EXPLICIT: u64 = 0;
const SEPARATED: u64 = 1;
const TERMINATED: u64 = 257;
/// The largest layout code.
const MAX_LAYOUT: u64 = TERMINATED + 255;

/// Whether `layout` puts a separator byte after every record.
pub(super) fn separated(layout: u64) -> bool {
    (SEPARATED..TERMINATED).contains(&layout)
}

/// The layout of a page of `members` (context id and length of each) whose records are
/// `records`, concatenated: whole lines (each ends with its only line feed) are terminated;
/// otherwise a byte no record holds separates them, a line feed if possible (so the model sees
/// the records as lines); if every byte occurs, the lengths are listed.
fn layout_of(records: &[u8], members: &[(u32, u64)]) -> u64 {
    let mut seen = [false; 256];
    let mut newlines = 0usize;
    for &b in records {
        seen[b as usize] = true;
        newlines += usize::from(b == b'\n');
    }
    let mut at = 0usize;
    let mut ends = true;
    for &(_, len) in members {
        at += len as usize;
        ends &= len > 0 && records[at - 1] == b'\n';
    }
    if ends && newlines == members.len() {
        return TERMINATED + u64::from(b'\n');
    }
    [b'\n', 0, 0x1e]
        .into_iter()
        .chain(0..=255)
        .find(|&b| !seen[b as usize])
        .map_or(EXPLICIT, |b| SEPARATED + u64::from(b))
}

/// The records of a decoded page of `count` records laid out as `layout` (`lens`: the lengths
/// the index lists, for `EXPLICIT`): each one's start and length in `page`. `None` if the page
/// does not hold `count` records so laid out.
pub(super) fn spans(page: &[u8], layout: u64, count: u64, lens: &[u64]) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    out.try_reserve_exact(count as usize).ok()?;
    if layout == EXPLICIT {
        let mut at = 0u64;
        for &len in lens {
            out.push((at, len));
            at += len;
        }
        return (at == page.len() as u64).then_some(out);
    }
    let (byte, keep) = if separated(layout) {
        ((layout - SEPARATED) as u8, 0)
    } else {
        ((layout - TERMINATED) as u8, 1)
    };
    let mut start = 0usize;
    for (i, &b) in page.iter().enumerate() {
        if b == byte {
            if out.len() as u64 == count {
                return None;
            }
            out.push((start as u64, (i + keep - start) as u64));
            start = i + 1;
        }
    }
    (start == page.len() && out.len() as u64 == count).then_some(out)
}

/// A page of block mode: one payload coding consecutive records.
#[derive(Clone, Copy, Debug)]
pub(super) struct Page {
    /// Its first record.
    pub(super) first: u64,
    /// Where its payload lies in the file.
    pub(super) offset: u64,
    pub(super) payload_len: u64,
    /// Its decoded length, as the index says (the payload's header must agree).
    pub(super) raw_len: u64,
    pub(super) layout: u64,
    /// Its record lengths in `Index::lens` (`EXPLICIT` only), and its context runs in
    /// `Index::runs`: where they start and how many.
    pub(super) lens_at: usize,
    pub(super) runs_at: usize,
    pub(super) runs: usize,
}

impl Index {
    /// Whether the records are grouped into pages (block mode).
    pub(super) fn paged(&self) -> bool {
        self.page_bytes > 0
    }

    /// Block mode: the page that holds record `n` (below the record count).
    pub(super) fn page_no(&self, n: u64) -> usize {
        self.pages.partition_point(|p| p.first <= n) - 1
    }

    /// The number of records of page `p`.
    pub(super) fn page_records(&self, p: usize) -> u64 {
        self.pages.get(p + 1).map_or(self.count, |q| q.first) - self.pages[p].first
    }

    /// The lengths page `p` lists (empty unless its layout is `EXPLICIT`).
    pub(super) fn page_lens(&self, p: usize) -> &[u64] {
        let page = &self.pages[p];
        if page.layout == EXPLICIT {
            &self.lens[page.lens_at..page.lens_at + self.page_records(p) as usize]
        } else {
            &[]
        }
    }

    /// What the index says of record `n` (below the record count). In block mode every record
    /// is a root at its page's offset, with the page's payload length on the page's first
    /// record and 0 on the others.
    pub(super) fn record(&self, n: u64) -> RecordInfo {
        if !self.paged() {
            return self.records[n as usize];
        }
        let page = &self.pages[self.page_no(n)];
        let mut k = n - page.first;
        let mut group = 0;
        for &(cid, len) in &self.runs[page.runs_at..page.runs_at + page.runs] {
            group = cid;
            if k < len {
                break;
            }
            k -= len;
        }
        RecordInfo {
            offset: page.offset,
            payload_len: if n == page.first { page.payload_len } else { 0 },
            group,
            dependency: Dependency::Root,
            prev: None,
        }
    }

    /// The checksummed block record `n` belongs to (its page in block mode).
    pub(super) fn block_of(&self, n: u64) -> u64 {
        if self.paged() {
            self.page_no(n) as u64
        } else {
            n / self.block_records
        }
    }

    /// The records of block `b`: the first, and one past the last.
    pub(super) fn block_span(&self, b: u64) -> (u64, u64) {
        if self.paged() {
            let first = self.pages[b as usize].first;
            (first, first + self.page_records(b as usize))
        } else {
            let first = b * self.block_records;
            (first, (first + self.block_records).min(self.count))
        }
    }

    /// Where block `b`'s payloads lie in the file: offset and length.
    pub(super) fn block_bytes(&self, b: u64) -> (u64, u64) {
        if self.paged() {
            let p = self.pages[b as usize];
            return (p.offset, p.payload_len);
        }
        let (first, end) = self.block_span(b);
        let start = self.records[first as usize].offset;
        let last = self.records[end as usize - 1];
        (start, last.offset + last.payload_len - start)
    }

    /// The number of checksummed blocks.
    pub(super) fn blocks(&self) -> u64 {
        self.block_crcs.len() as u64
    }

    /// Parses the page entries and block checksums of a block-mode index: `idx`, the index
    /// after its header, at `idx_off` in the file; the payloads start at `records_start` and
    /// must fill the file up to `index_off`. Every table grows by at most one item per index
    /// byte read, so a hostile record count cannot make it allocate. Returns where in `idx` the
    /// block checksums end (the key table follows).
    pub(super) fn parse_pages(
        &mut self,
        idx: &[u8],
        idx_off: u64,
        records_start: u64,
        index_off: u64,
    ) -> Result<usize> {
        let mut pos = 0;
        let field = |pos: &mut usize| varint::read(idx, pos, idx_off);
        let mut n = 0u64;
        let mut at = records_start;
        while n < self.count {
            let entry_at = idx_off + pos as u64;
            let p = self.pages.len();
            let bad = |what: &str| {
                Error::corrupt(format!("page {p} (from record {n}): {what}"), entry_at)
            };
            let payload_len = field(&mut pos)?;
            let records = field(&mut pos)?;
            let raw_len = field(&mut pos)?;
            let layout = field(&mut pos)?;
            if payload_len == 0 || records == 0 || records > self.count - n {
                return Err(bad("impossible payload length or number of records"));
            }
            if raw_len > MAX_RECORD_LEN {
                return Err(bad("decodes to more than the 1 GiB a payload may hold"));
            }
            if layout > MAX_LAYOUT {
                return Err(bad("unknown layout"));
            }
            let lens_at = self.lens.len();
            if layout == EXPLICIT {
                let mut sum = 0u64;
                for _ in 0..records {
                    let len = field(&mut pos)?;
                    sum = sum.saturating_add(len);
                    self.lens.push(len);
                }
                if sum != raw_len {
                    return Err(bad("its record lengths do not add up to its length"));
                }
            } else if records > raw_len {
                // Every record has its separator or terminator byte.
                return Err(bad("more records than bytes"));
            }
            let runs = field(&mut pos)?;
            if runs == 0 || runs > records {
                return Err(bad("impossible number of context runs"));
            }
            let runs_at = self.runs.len();
            let mut total = 0u64;
            for _ in 0..runs {
                let cid =
                    u32::try_from(field(&mut pos)?).map_err(|_| bad("context id out of range"))?;
                let len = field(&mut pos)?;
                if len == 0 {
                    return Err(bad("an empty context run"));
                }
                total = total.saturating_add(len);
                self.runs.push((cid, len));
            }
            if total != records {
                return Err(bad("its context runs do not add up to its records"));
            }
            self.pages.push(Page {
                first: n,
                offset: at,
                payload_len,
                raw_len,
                layout,
                lens_at,
                runs_at,
                runs: runs as usize,
            });
            n += records;
            at = at.saturating_add(payload_len);
        }
        if at != index_off {
            return Err(Error::corrupt(
                "record lengths do not add up to the index offset",
                index_off,
            ));
        }
        // The block CRCs, then (version 3) the key table.
        let crcs_end = pos.saturating_add(self.pages.len().saturating_mul(8));
        if crcs_end > idx.len() {
            return Err(Error::corrupt(
                "block checksum table has the wrong size",
                idx_off + pos as u64,
            ));
        }
        self.block_crcs = idx[pos..crcs_end]
            .chunks_exact(8)
            .map(|c| {
                (
                    u32::from_le_bytes(c[..4].try_into().expect("4")),
                    u32::from_le_bytes(c[4..].try_into().expect("4")),
                )
            })
            .collect();
        Ok(crcs_end)
    }
}

/// The share of its bytes pages must save over records alone for an
/// [`ArchiveOptions::auto_pages`](super::ArchiveOptions) trial to choose them: 1/10. A record
/// of a 64 KiB page costs a `get` the decoding of its whole page, 10-100 times the CPU of a
/// record coded alone (DESIGN.md "Access granularity"), so pages must pay for it in size: at
/// least a tenth of the bytes for at least ten times the CPU.
pub(super) const AUTO_PAGE_MARGIN: u64 = 10;

/// The fewest records a page must hold on average for an
/// [`ArchiveOptions::auto_pages`](super::ArchiveOptions) trial to be made: 16. Pages pay where
/// records are short (a record coded alone pays for its first bytes before the primer and its
/// frames predict it); records of a sixteenth of a page or more are coded alone without a
/// trial (on the bench files pages of 4 KiB were 0-4% larger than records alone for records
/// of 690 bytes and more, and 28% smaller for lines of 47 bytes).
pub(super) const AUTO_MIN_RECORDS: u64 = 16;

/// Whether pages of `page_bytes` are worth a trial for records like `records` (a sample of
/// them, as the coder sees them): whether they average at most 1/[`AUTO_MIN_RECORDS`] of a
/// page, each with its newline. No records: yes (the trial finds no page and keeps records
/// alone).
pub(super) fn worth_trying(records: &[(Option<Vec<u8>>, Vec<u8>)], page_bytes: u64) -> bool {
    let (count, bytes) = records.iter().fold((0u64, 0u64), |(n, b), r| {
        (n + 1, b.saturating_add(r.1.len() as u64 + 1))
    });
    let worth = bytes.saturating_mul(AUTO_MIN_RECORDS) <= page_bytes.saturating_mul(count);
    if !worth && std::env::var_os("SIGMA_PRIMER_DEBUG").is_some() {
        eprintln!(
            "block trial: none, {count} records of {bytes} bytes fill pages of {page_bytes} with fewer than {AUTO_MIN_RECORDS}"
        );
    }
    worth
}

/// How many bytes of records (each and a newline) an [`ArchiveOptions::auto_pages`](super::ArchiveOptions)
/// trial of pages of `page_bytes` holds back after the primer's records (0: no trial): four
/// samples ([`AUTO_SAMPLE_BYTES`](super::AUTO_SAMPLE_BYTES), or four pages if larger) and one
/// page more. The trial's sample is the last of them: records just after the primer match it
/// better than the file's later records do, which favours whichever way keeps the primer.
pub(super) fn trial_bytes(page_bytes: u64) -> usize {
    if page_bytes == 0 {
        return 0;
    }
    let page = usize::try_from(page_bytes).unwrap_or(usize::MAX);
    sample_bytes(page_bytes)
        .saturating_mul(4)
        .saturating_div(3)
        .saturating_add(page)
}

/// The least a trial of pages of `page_bytes` codes both ways: [`AUTO_SAMPLE_BYTES`](super::AUTO_SAMPLE_BYTES),
/// or four pages if larger.
fn sample_bytes(page_bytes: u64) -> usize {
    let page = usize::try_from(page_bytes).unwrap_or(usize::MAX);
    super::AUTO_SAMPLE_BYTES.max(page.saturating_mul(12))
}

/// Where the pages of `page_bytes` that a writer makes of `records` (as added, from the first)
/// end, as [`ArchiveWriter::add_to_page`] fills them: one past each page's last record. A last
/// page that is not full is not listed.
fn page_ends(records: &[(Option<Vec<u8>>, Vec<u8>)], page_bytes: u64) -> Vec<usize> {
    let mut ends = Vec::new();
    let (mut filled, mut members) = (0u64, 0usize);
    for (i, (_, r)) in records.iter().enumerate() {
        let len = r.len() as u64;
        if members > 0 && filled + len + 1 > MAX_RECORD_LEN {
            ends.push(i);
            (filled, members) = (0, 0);
        }
        filled += len + 1;
        members += 1;
        if filled >= page_bytes {
            ends.push(i + 1);
            (filled, members) = (0, 0);
        }
    }
    ends
}

/// The page of `records` (concatenated) with `members` (context id and length of each), as it
/// is coded: its layout and content.
fn lay_out(records: Vec<u8>, members: &[(u32, u64)]) -> (u64, Vec<u8>) {
    let layout = layout_of(&records, members);
    if !separated(layout) {
        return (layout, records);
    }
    let sep = (layout - SEPARATED) as u8;
    let mut content = Vec::with_capacity(records.len() + members.len());
    let mut at = 0usize;
    for &(_, len) in members {
        content.extend_from_slice(&records[at..at + len as usize]);
        content.push(sep);
        at += len as usize;
    }
    (layout, content)
}

/// A page a trial coded, kept to be written if pages are chosen: its records (from, to), its
/// layout, content and payload.
struct TrialPage {
    records: (usize, usize),
    layout: u64,
    content: Vec<u8>,
    payload: Vec<u8>,
}

impl<W: Write> ArchiveWriter<W> {
    /// Block mode when it pays ([`ArchiveOptions::auto_pages`](super::ArchiveOptions)): codes
    /// a sample of the held-back `records` both ways, as the archive would hold them, and
    /// writes the head of the way chosen; returns how many of `records` are coded (the caller
    /// adds the rest). Called once, before anything is written.
    ///
    /// The sample: the whole pages (of `page_bytes`, as the writer would fill them from the
    /// first record) from the first page boundary after the `primed` records the primer is
    /// made of, up to the last boundary of `records` (or their end if `ended`), so that
    /// neither way is measured on records the primer holds. Records alone: the writer itself
    /// codes the records up to the sample's end as it would anyway (after the primer as
    /// `choices[0]` says, with its groups, bank and copies), holding the payloads; the sample
    /// costs the payloads and index entries of its records. Pages: the sample's pages, coded
    /// after the primer as `choices[1]` says, and their index entries. The primer is the same bytes either way, so it is counted in
    /// neither (`choose` already weighed it for each way). Pages are chosen if they save at
    /// least 1/[`AUTO_PAGE_MARGIN`] of the bytes of records alone; a sample without a whole
    /// page keeps records alone. The chosen way's coding is kept: records alone go on from
    /// where the trial stopped; pages code the records before the sample and write the
    /// sample's pages as the trial coded them. The bytes do not depend on the threads: every
    /// step is made at the same records whatever `-T` is.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn choose_paging(
        &mut self,
        head: &super::writer::Head,
        records: &[(Option<Vec<u8>>, Vec<u8>)],
        primed: usize,
        primer: Option<&(std::sync::Arc<crate::primer::Primer>, Vec<u8>)>,
        choices: [crate::primer::Choice; 2],
        page_bytes: u64,
        ended: bool,
    ) -> Result<usize> {
        let mut ends = page_ends(records, page_bytes);
        if ended && ends.last() != Some(&records.len()) && !records.is_empty() {
            // A flush ends the last page too.
            ends.push(records.len());
        }
        let end = ends.last().copied().unwrap_or(0);
        // The sample starts at the last page boundary that leaves it a whole sample before
        // `end`, or at the first boundary after the primer's records if none does.
        let bytes_from =
            |b: usize| -> usize { records[b..end].iter().map(|r| r.1.len() + 1).sum() };
        let mut start = None;
        for &b in ends.iter().rev().chain([0].iter()) {
            if b < primed || (b == 0 && primed > 0) {
                break;
            }
            if b >= end {
                continue;
            }
            start = Some(b);
            if bytes_from(b) >= sample_bytes(page_bytes) {
                break;
            }
        }
        let Some(start) = start.filter(|&s| s < end) else {
            // No whole page after the primer's records: records alone.
            self.write_head(head, primer, choices[0])?;
            return Ok(0);
        };
        // Records alone: the real coding, held until the head is known.
        self.set_primer(primer, choices[0])?;
        self.held = Some(Vec::new());
        self.offset = 0;
        for (key, record) in &records[..start] {
            self.add_unchecked(key.as_deref(), record)?;
        }
        self.flush_unchecked()?;
        let before = self.offset + self.index.bytes();
        for (key, record) in &records[start..end] {
            self.add_unchecked(key.as_deref(), record)?;
        }
        self.flush_unchecked()?;
        let alone = self.offset + self.index.bytes() - before;
        // Pages: the sample's, after the primer as pages would be.
        let codebook = std::sync::Arc::clone(self.encoder.codebook());
        let mut encoder = crate::record::Encoder::with_config(codebook, self.opts.encoder);
        if let Some((p, _)) = primer.filter(|_| choices[1] != crate::primer::Choice::Plain) {
            encoder.set_primer(
                Some(std::sync::Arc::clone(p)),
                choices[1] == crate::primer::Choice::Adaptive,
            );
        }
        let mut pages = Vec::new();
        // The pages' index entries count too (their groups as if unkeyed).
        let mut index = super::index::IndexWriter::new(self.opts.block_records, page_bytes, false);
        let mut from = start;
        for &to in ends.iter().filter(|&&e| e > start) {
            let mut page = Vec::new();
            let mut members = Vec::with_capacity(to - from);
            for (_, r) in &records[from..to] {
                page.extend_from_slice(r);
                members.push((0, r.len() as u64));
            }
            let (layout, content) = lay_out(page, &members);
            let mut payload = Vec::new();
            encoder.encode_page(&content, &mut payload)?;
            index.add_page(&members, layout, &payload, &content);
            pages.push(TrialPage {
                records: (from, to),
                layout,
                content,
                payload,
            });
            from = to;
        }
        let mut paged = pages.iter().map(|p| p.payload.len() as u64).sum::<u64>() + index.bytes();
        // A primer only one way keeps counts on that way, for the sample's share of the
        // archive: the sample's bytes over twice the primer's (an archive's primer holds at
        // most half of its records' bytes; `sigma pack`'s, a quarter).
        let mut alone = alone;
        if let Some((p, payload)) = primer.filter(|_| {
            (choices[0] == crate::primer::Choice::Plain)
                != (choices[1] == crate::primer::Choice::Plain)
        }) {
            let sampled: usize = records[start..end].iter().map(|r| r.1.len() + 1).sum();
            let share =
                (payload.len() as u64).saturating_mul(sampled as u64) / (2 * p.len() as u64).max(1);
            if choices[0] == crate::primer::Choice::Plain {
                paged += share;
            } else {
                alone += share;
            }
        }
        if std::env::var_os("SIGMA_PRIMER_DEBUG").is_some() {
            eprintln!(
                "block trial: records {start}..{end} ({} bytes): alone {alone}, pages of {page_bytes}: {paged}",
                records[start..end].iter().map(|r| r.1.len() + 1).sum::<usize>()
            );
        }
        if paged + paged / AUTO_PAGE_MARGIN > alone {
            self.write_head(head, primer, choices[0])?;
            return Ok(end);
        }
        // Pages: start again from the first record.
        self.held = None;
        self.offset = 0;
        self.bytes_in = 0;
        self.opts.page_bytes = page_bytes;
        self.opts.bank = 0;
        self.index = super::index::IndexWriter::new(self.opts.block_records, page_bytes, false);
        self.ids.clear();
        self.next_id = super::DEFAULT_CONTEXT + 1;
        self.inference = None;
        self.repeats = None;
        self.copies.clear();
        self.last_unkeyed = None;
        for (stack, _) in std::mem::take(&mut self.stacks).into_values() {
            let mut stack = stack;
            stack.clear(&mut self.frame_pool);
        }
        self.frame_bytes = 0;
        self.write_head(head, primer, choices[1])?;
        for (key, record) in &records[..start] {
            self.add_unchecked(key.as_deref(), record)?;
        }
        self.flush_unchecked()?;
        for page in pages {
            let (from, to) = page.records;
            let mut members = Vec::with_capacity(to - from);
            for (key, r) in &records[from..to] {
                members.push((self.context_id(key.as_deref(), r)?, r.len() as u64));
            }
            self.commit_page(&members, page.layout, &page.payload, &page.content)?;
        }
        Ok(end)
    }

    /// Adds `record` in context `cid` to the page being filled, which is coded once its records
    /// (with a separator byte each) hold at least `page_bytes`; returns the record's index.
    pub(super) fn add_to_page(&mut self, cid: u32, record: &[u8]) -> Result<u64> {
        let len = record.len() as u64;
        if len >= MAX_RECORD_LEN {
            return Err(Error::invalid(format!(
                "record of {len} bytes exceeds the {MAX_RECORD_LEN}-byte limit"
            )));
        }
        // A page is coded as one payload, which holds at most MAX_RECORD_LEN bytes.
        let filled = self.page.len() as u64 + self.page_members.len() as u64;
        if filled + len + 1 > MAX_RECORD_LEN {
            self.flush_page()?;
        }
        let index = self.len();
        self.page.extend_from_slice(record);
        self.page_members.push((cid, len));
        if self.page.len() as u64 + self.page_members.len() as u64 >= self.opts.page_bytes {
            self.flush_page()?;
        }
        Ok(index)
    }

    /// Ends the page being filled, if it holds any record: lays it out, then codes and writes
    /// it, or hands it to the batch encoder (whose batch is full at two pages a worker). Pages
    /// depend on nothing else, so the bytes are the same however they are batched.
    pub(super) fn flush_page(&mut self) -> Result<()> {
        if self.page_members.is_empty() {
            return Ok(());
        }
        let members = std::mem::take(&mut self.page_members);
        let (layout, content) = lay_out(std::mem::take(&mut self.page), &members);
        let workers = self.opts.worker_count();
        match &mut self.coder {
            Coder::Now(_) => {
                let mut payload = std::mem::take(&mut self.payload);
                payload.clear();
                let r = self
                    .encoder
                    .encode_page(&content, &mut payload)
                    .and_then(|()| self.commit_page(&members, layout, &payload, &content));
                self.payload = payload;
                r
            }
            Coder::Batches(batches) => {
                batches.pending_bytes += content.len();
                batches.pending.push(Pending {
                    context: 0,
                    record: content,
                    members,
                    layout,
                });
                if batches.pending.len() >= 2 * workers {
                    self.flush_batch()?;
                }
                Ok(())
            }
        }
    }

    /// Writes a coded page and its index entry.
    pub(super) fn commit_page(
        &mut self,
        members: &[(u32, u64)],
        layout: u64,
        payload: &[u8],
        content: &[u8],
    ) -> Result<()> {
        self.emit(payload)?;
        self.index.add_page(members, layout, payload, content);
        self.offset += payload.len() as u64;
        self.bytes_in += members.iter().map(|m| m.1).sum::<u64>();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::archive::testing::*;
    use crate::archive::{ArchiveOptions, ArchiveReader, ArchiveWriter};
    use crate::codebook::Codebook;
    use crate::error::ErrorKind;
    use std::io::Cursor;

    /// Keyed and unkeyed records of every size: conversations, system-prompt logs, short
    /// lines, empty records.
    fn mixed() -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
        let mut records: Vec<(Option<Vec<u8>>, Vec<u8>)> = Vec::new();
        for (i, r) in history(12).into_iter().enumerate() {
            records.push((Some(b"h".to_vec()), r));
            records.push((None, format!("short line {i} (data files)").into_bytes()));
            records.push((None, Vec::new()));
        }
        for (k, t) in system_prompt_logs(6) {
            records.push((Some(k), t));
        }
        records
    }

    fn build_paged(
        records: &[(Option<Vec<u8>>, Vec<u8>)],
        page_bytes: u64,
        batch_records: u32,
        threads: usize,
    ) -> Vec<u8> {
        let opts = ArchiveOptions::default()
            .page_bytes(page_bytes)
            .batch_records(batch_records)
            .threads(threads);
        build_fixed(records, opts, None)
    }

    #[test]
    fn pages_round_trip_and_do_not_depend_on_threads() {
        let records = mixed();
        for page_bytes in [1u64, 100, 4096, 1 << 20] {
            let one = build_paged(&records, page_bytes, 1, 1);
            for (batch, threads) in [(64, 1), (64, 2), (64, 3)] {
                assert_eq!(
                    one,
                    build_paged(&records, page_bytes, batch, threads),
                    "pages of {page_bytes}, batch {batch}, {threads} threads"
                );
            }
            let mut r = ArchiveReader::open(Cursor::new(&one)).unwrap();
            assert_eq!(r.len(), records.len() as u64);
            assert_eq!(r.page_bytes(), page_bytes);
            let mut rng = crate::workers::TestRng(page_bytes);
            for _ in 0..100 {
                let n = rng.below(records.len() as u64);
                assert_eq!(r.get(n).unwrap(), records[n as usize].1, "record {n}");
                assert_eq!(
                    r.decoded_len(n).unwrap(),
                    records[n as usize].1.len() as u64
                );
                assert_eq!(r.chain(n), vec![n]);
            }
            // Groups are still recorded per record: the keyed ones in order of first use.
            let keyed: Vec<u32> = (0..3).map(|n| r.info(n).unwrap().group).collect();
            assert_eq!(keyed, vec![1, 0, 0]);
            let walked = r.walk(|n, rec| assert_eq!(rec.unwrap(), &records[n as usize].1[..]));
            assert_eq!(walked, 0);
            let got: Vec<Vec<u8>> = r.records().map(|x| x.unwrap()).collect();
            assert!(got.iter().zip(&records).all(|(a, b)| *a == b.1));
            let mut events = Vec::new();
            let failed = r
                .walk_in_runs(
                    || Ok(Cursor::new(&one[..])),
                    2,
                    (2, 1 << 10),
                    |n, rec| {
                        events.push((n, rec.unwrap().to_vec()));
                        std::ops::ControlFlow::Continue(())
                    },
                )
                .unwrap();
            assert_eq!(failed, 0);
            assert_eq!(events.len(), records.len());
            assert!(events.iter().all(|(n, b)| *b == records[*n as usize].1));
        }
        // Pages of 1 byte hold one record each (empty ones join the next); larger pages fewer.
        let small = build_paged(&records, 4096, 1, 1);
        let big = build_paged(&records, 1 << 20, 1, 1);
        assert!(big.len() < small.len(), "{} vs {}", big.len(), small.len());
    }

    #[test]
    fn reading_in_order_decodes_each_page_once() {
        let records: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..400)
            .map(|i| {
                (
                    None,
                    format!("line {i}: some text about pages").into_bytes(),
                )
            })
            .collect();
        let bytes = build_paged(&records, 2048, 1, 1);
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        let pages = r.page_of(399).unwrap() + 1;
        assert!(pages > 3, "{pages} pages");
        let mut read = 0;
        for n in 0..400 {
            assert_eq!(r.get(n).unwrap(), records[n as usize].1);
            read += r.last_read_bytes();
        }
        // Every page's payload read once: the archive minus head, index and footer.
        assert!(read < bytes.len() as u64, "{read} of {}", bytes.len());
    }

    #[test]
    fn damage_stays_in_its_page() {
        let records: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..60)
            .map(|i| (None, format!("record {i} with a few words").into_bytes()))
            .collect();
        let mut bytes = build_paged(&records, 300, 1, 1);
        let r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        let page = r.page_of(30).unwrap();
        let members: Vec<u64> = (0..60).filter(|&n| r.page_of(n) == Some(page)).collect();
        let at = r.info(members[0]).unwrap().offset as usize + 2;
        bytes[at] ^= 0x08;
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        let mut failed = Vec::new();
        r.walk(|n, rec| match rec {
            Ok(b) => assert_eq!(b, &records[n as usize].1[..]),
            Err(e) => {
                assert!(matches!(e.kind(), ErrorKind::Checksum { .. }), "{e}");
                failed.push(n);
            }
        });
        assert_eq!(failed, members);
    }

    fn build_auto(
        records: &[(Option<Vec<u8>>, Vec<u8>)],
        primer: usize,
        threads: usize,
    ) -> Vec<u8> {
        let opts = ArchiveOptions::default()
            .auto_pages(4096)
            .primer(primer)
            .batch_records(64)
            .threads(threads);
        build_fixed(records, opts, None)
    }

    #[test]
    fn auto_pages_keep_histories_alone_and_page_short_lines() {
        // Conversations that repeat their earlier turns: each record alone, against its group.
        let mut histories: Vec<(Option<Vec<u8>>, Vec<u8>)> = Vec::new();
        for c in 0..6 {
            for r in history(40) {
                let mut r = r;
                r.extend_from_slice(format!(" conversation {c}").as_bytes());
                histories.push((None, r));
            }
        }
        // Short unrelated lines: pages.
        let short: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..3000)
            .map(|i| {
                let line = format!(
                    "{i:05} GET /api/v{}/items/{} 200 {}ms",
                    i % 3,
                    i * 7 % 1000,
                    i % 97
                );
                (None, line.into_bytes())
            })
            .collect();
        for (records, paged) in [(&histories, false), (&short, true)] {
            for primer in [0, 8192] {
                let one = build_auto(records, primer, 1);
                assert_eq!(
                    one,
                    build_auto(records, primer, 2),
                    "threads, primer {primer}"
                );
                let mut r = ArchiveReader::open(Cursor::new(&one)).unwrap();
                assert_eq!(r.page_bytes(), if paged { 4096 } else { 0 });
                assert_eq!(
                    r.walk(|n, rec| assert_eq!(rec.unwrap(), &records[n as usize].1[..])),
                    0
                );
                let n = records.len() as u64 - 1;
                assert_eq!(r.get(n).unwrap(), records[n as usize].1);
                // The trial chose the smaller way: the other is not smaller.
                let other = if paged { 0 } else { 4096 };
                let opts = ArchiveOptions::default()
                    .page_bytes(other)
                    .primer(primer)
                    .batch_records(64);
                let mut w = ArchiveWriter::with_options(
                    Vec::new(),
                    Codebook::default_codebook(),
                    b"m",
                    opts,
                )
                .unwrap();
                for (k, rec) in records.iter() {
                    w.add_in_group(k.as_deref(), rec).unwrap();
                }
                let other = w.finish().unwrap();
                assert!(one.len() < other.len(), "{} vs {}", one.len(), other.len());
            }
        }
        // Nothing but empty records, and no records at all.
        let empty = vec![(None, Vec::new()); 5];
        let bytes = build_auto(&empty, 0, 1);
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        assert_eq!(r.get(4).unwrap(), b"");
        assert_eq!(
            ArchiveReader::open(Cursor::new(build_auto(&[], 0, 1)))
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn auto_pages_are_not_tried_for_records_over_a_sixteenth_of_a_page() {
        // Lines of about 300 bytes: a 4 KiB page would hold 13 of them, so no trial is made
        // and every record is coded alone, byte for byte as without `auto_pages`; with pages
        // of 8 KiB (27 records a page) the trial is made and pages are chosen.
        let lines: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..600)
            .map(|i| {
                let mut line = format!(
                    "{i:05} GET /api/v{}/items/{} 200 {}ms",
                    i % 3,
                    i * 7 % 1000,
                    i % 97
                );
                while line.len() < 300 {
                    line.push_str(&format!(" k{}={}", line.len() % 7, i * 13 % 101));
                }
                (None, line.into_bytes())
            })
            .collect();
        for primer in [0, 8192] {
            let opts = ArchiveOptions::default().primer(primer).batch_records(64);
            let auto = build_fixed(&lines, opts.auto_pages(4096), None);
            assert_eq!(auto, build_fixed(&lines, opts, None), "primer {primer}");
            let wider = build_fixed(&lines, opts.auto_pages(8192), None);
            let r = ArchiveReader::open(Cursor::new(&wider)).unwrap();
            assert_eq!(r.page_bytes(), 8192, "primer {primer}");
            assert!(wider.len() < auto.len());
        }
        // With a primer sample given up front (as `sigma pack FILE` gives one), the sample
        // settles it: the same archive as without `auto_pages`.
        let sampled = |opts: ArchiveOptions| {
            let sample = lines.iter().step_by(7).map(|(k, r)| (k.as_deref(), &r[..]));
            let mut w = ArchiveWriter::with_primer_sample(
                Vec::new(),
                Codebook::default_codebook(),
                b"m",
                opts,
                sample,
            )
            .unwrap();
            for (k, r) in &lines {
                w.add_in_group(k.as_deref(), r).unwrap();
            }
            w.finish().unwrap()
        };
        let opts = ArchiveOptions::default().primer(8192).batch_records(64);
        assert_eq!(sampled(opts.auto_pages(4096)), sampled(opts));
    }

    /// The archive of `records` written with `opts` (flushed before record `flush_at`).
    fn build_fixed(
        records: &[(Option<Vec<u8>>, Vec<u8>)],
        opts: ArchiveOptions,
        flush_at: Option<usize>,
    ) -> Vec<u8> {
        let mut w =
            ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"m", opts)
                .unwrap();
        for (n, (k, r)) in records.iter().enumerate() {
            if flush_at == Some(n) {
                w.flush().unwrap();
            }
            assert_eq!(w.add_in_group(k.as_deref(), r).unwrap(), n as u64);
            assert_eq!(w.len(), n as u64 + 1);
        }
        w.finish().unwrap()
    }

    /// The trial keeps its coding: an archive `--block auto` writes is byte for byte the one
    /// the chosen way writes alone (pages of that size with the same primer; records alone
    /// coded one at a time, where no batch boundary moves), whether the trial ends at a full
    /// sample (more than 1 MiB of records after the primer) or at a flush, and on any number
    /// of threads.
    #[test]
    fn auto_pages_write_what_the_chosen_way_writes() {
        // Short request lines of a few kinds (pages save far more than a tenth), and
        // conversation histories that repeat their earlier turns (records alone).
        let short: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..30_000)
            .map(|i| {
                let line = format!(
                    "{i:05} GET /api/v{}/items/{} 200 {}ms user={}",
                    i % 3,
                    i * 7 % 1000,
                    i % 97,
                    i * 13 % 211
                );
                (None, line.into_bytes())
            })
            .collect();
        assert!(short.iter().map(|r| r.1.len() + 1).sum::<usize>() > (1 << 20) + 8192);
        let mut histories: Vec<(Option<Vec<u8>>, Vec<u8>)> = Vec::new();
        for c in 0..8 {
            for r in history(30) {
                histories.push((Some(format!("c{c}").into_bytes()), r));
            }
        }
        let auto = |batch, threads| {
            ArchiveOptions::default()
                .auto_pages(4096)
                .primer(8192)
                .batch_records(batch)
                .threads(threads)
        };
        // Pages: the same bytes as pages of 4096, however batched.
        let paged = build_fixed(
            &short,
            ArchiveOptions::default().page_bytes(4096).primer(8192),
            None,
        );
        for (batch, threads) in [(1, 1), (64, 1), (64, 2)] {
            assert_eq!(
                build_fixed(&short, auto(batch, threads), None),
                paged,
                "batch {batch}, {threads} threads"
            );
        }
        let r = ArchiveReader::open(Cursor::new(&paged)).unwrap();
        assert_eq!(r.page_bytes(), 4096);
        // A flush before the sample is full ends the trial there.
        let flushed = build_fixed(&short, auto(64, 2), Some(5000));
        assert_eq!(
            flushed,
            build_fixed(
                &short,
                ArchiveOptions::default().page_bytes(4096).primer(8192),
                Some(5000)
            )
        );
        // Records alone: the same bytes as records alone, and the same for any thread count.
        let alone = build_fixed(&histories, ArchiveOptions::default().primer(8192), None);
        assert_eq!(build_fixed(&histories, auto(1, 1), None), alone);
        let mut r = ArchiveReader::open(Cursor::new(&alone)).unwrap();
        assert_eq!(r.page_bytes(), 0);
        assert_eq!(
            r.walk(|n, rec| assert_eq!(rec.unwrap(), &histories[n as usize].1[..])),
            0
        );
        assert_eq!(
            build_fixed(&histories, auto(64, 1), None),
            build_fixed(&histories, auto(64, 2), None)
        );
    }

    #[test]
    fn page_size_is_bounded() {
        let opts = ArchiveOptions::default().page_bytes(super::super::MAX_PAGE_BYTES + 1);
        assert!(
            ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
                .is_err()
        );
    }
}
