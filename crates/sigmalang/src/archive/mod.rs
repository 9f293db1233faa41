//! The record archive: what `sigma pack` writes. Many records, each readable on its own, coded
//! against the earlier records of their group (see [`GroupOptions`]), with an index at the end for random access.
//!
//! ```text
//! file header (20 bytes, kind = archive)
//! metadata: varint length, bytes, crc32c
//! primer (version 3): varint length (0: none), varint payload length, payload,
//!                     crc32c of the payload, crc32c of the primer
//! record payloads, back to back, in blocks of `block_records` records
//! index: varint count, varint block_records,
//!        varint keyframe_interval, varint keyframes_per_root, varint max_frames, varint window,
//!        per record: varint payload length, varint (context id << 3 | has_refs << 2 | level),
//!                    if has_refs: varint count, varint (record index - root index) per root,
//!                    if level 3 (a copy, header flag bit 2): varint (record index - source),
//!        (header flag bit 6, a coded index: instead of the entries, varint length and one
//!         range-coded body of them, each with its record's raw_len and mode, which the
//!         payloads then do not start with),
//!        per block: crc32c of its payloads, crc32c of its records' decoded bytes,
//!        crc32c of the index
//! footer: u64 LE index offset, 4 bytes end magic
//! ```
//!
//! Reading record `n` reads the footer and the index (once), then the blocks of the records `n`
//! depends on (at most `keyframes_per_root` keyframes and `keyframe_interval` records of its
//! context), each block's checksum verified before its records are decoded. The byte layout is in
//! `docs/FORMAT.md`.

use crate::context::{Dependency, GroupOptions};
use crate::record::CoderConfig;

mod batch;
pub(crate) mod coded;
mod index;
mod infer;
mod pages;
#[cfg(test)]
mod primed;
mod reader;
mod records;
mod repeats;
pub mod sample;
#[cfg(test)]
mod testing;
mod walk;
mod writer;

pub use crate::bank::MAX_REFS as MAX_REFERENCES;
pub use reader::{Archive, ArchiveReader};
pub use records::{KeyedRecords, Records};
pub use writer::ArchiveWriter;

/// The last four bytes of an archive.
pub const END_MAGIC: [u8; 4] = [0xCE, 0xA3, b'L', b'X'];
/// The footer: index offset and end magic.
pub const FOOTER_LEN: usize = 12;
/// Records per checksummed block, by default.
pub const DEFAULT_BLOCK_RECORDS: u32 = 16;
/// The primer size `sigma pack` uses when it cannot size it by the input file (standard
/// input; see [`ArchiveOptions::primer`]): 256 KiB.
pub const DEFAULT_PRIMER_BYTES: usize = 256 << 10;
/// The most metadata an archive may carry.
pub const MAX_METADATA: usize = 1 << 20;
/// The largest page a writer makes in block mode ([`ArchiveOptions::page_bytes`]): 64 MiB.
pub const MAX_PAGE_BYTES: u64 = 64 << 20;
/// The page size `sigma pack --block auto` tries ([`ArchiveOptions::auto_pages`]): 64 KiB,
/// whose decoding costs about what reading a 1 MiB page of Parquet (brotli) does.
pub const AUTO_PAGE_BYTES: u64 = 64 << 10;
/// The page size `sigma pack` tries by default ([`ArchiveOptions::auto_pages`], `--block
/// auto:4KiB`): 4 KiB, for records averaging at most 256 bytes (a page holds at least 16 of
/// them); a `get` decodes about 4 KiB, well under a millisecond of CPU after the primer.
pub const SMALL_PAGE_BYTES: u64 = 4 << 10;
/// The least an [`ArchiveOptions::auto_pages`] trial codes both ways, if the records reach
/// it: 768 KiB (a smaller sample misjudged man-pages and python-stdlib by 5-10% of their
/// size).
pub const AUTO_SAMPLE_BYTES: usize = 768 << 10;
/// The largest keyframe interval a reader accepts (bounds the work of one `get`).
pub const MAX_KEYFRAME_INTERVAL: u32 = 1 << 16;

/// How an archive is written.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct ArchiveOptions {
    /// Records per checksummed block (a `get` reads whole blocks).
    pub(crate) block_records: u32,
    /// How records are coded against their contexts.
    pub(crate) context: GroupOptions,
    /// Bytes of roots the Σ-bank keeps for REFERENCE across contexts (0: no bank).
    pub(crate) bank: usize,
    /// Records are coded in batches of this many (1: one at a time, as added). A batch is coded
    /// while the next one fills and the one before is written, and the Σ-bank offers it the
    /// roots of batches at least two before it, so the archive's bytes depend on the batch size
    /// but never on the number of threads.
    pub(crate) batch_records: u32,
    /// A batch is also full once its records hold at least this many bytes (0: no limit), so
    /// that large records keep the memory in flight bounded: at most two batches (one being
    /// coded, one filling) plus one record. Like `batch_records`, it shapes the bytes.
    pub(crate) batch_bytes: usize,
    /// Worker threads coding a batch (0: one per core).
    pub(crate) threads: usize,
    /// Memory configuration of every worker's encoder.
    pub(crate) encoder: CoderConfig,
    /// Records are whole JSON lines, coded in the JSON-lines form ([`crate::jsonform`]).
    pub(crate) json_lines: bool,
    /// Self-training: the primer is the first records added (or the sample given to
    /// [`ArchiveWriter::with_primer_sample`]), joined by newlines, up to this many bytes (0: no
    /// primer).
    pub(crate) primer: usize,
    /// Records are grouped into pages of about this many decoded bytes, each page coded as one
    /// payload (0: every record coded alone, against its group).
    pub(crate) page_bytes: u64,
    /// Block mode if a trial on the first records says it pays: pages of this many bytes
    /// (0: no trial).
    pub(crate) auto_pages: u64,
    /// Records added without a key go to groups inferred from their content.
    pub(crate) infer_groups: bool,
    /// Bytes of recent records the writer keeps to find exact repeats (0: none; see
    /// [`ArchiveOptions::repeats`]).
    pub(crate) repeats: usize,
    /// The index's record entries are range-coded (header flag bit 6).
    pub(crate) coded_index: bool,
}

crate::settings! {
    ArchiveOptions {
        /// Records per checksummed block (a `get` reads whole blocks).
        block_records, get_block_records: block_records: u32;
        /// How records are coded against the earlier records of their group (the records added
        /// with the same key, [`ArchiveWriter::add_in_group`]).
        group, get_group: context: GroupOptions;
        /// Bytes of roots the Σ-bank keeps for REFERENCE across groups (0: no bank).
        bank, get_bank: bank: usize;
        /// Records are coded in batches of this many (1: one at a time, as added). A batch is coded
        /// while the next one fills and the one before is written, and the Σ-bank offers it the
        /// roots of batches at least two before it, so the archive's bytes depend on the batch size
        /// but never on the number of threads.
        batch_records, get_batch_records: batch_records: u32;
        /// A batch is also full once its records hold at least this many bytes (0: no limit), so
        /// that large records keep the memory in flight bounded: at most two batches (one being
        /// coded, one filling) plus one record. Like `batch_records`, it shapes the bytes.
        batch_bytes, get_batch_bytes: batch_bytes: usize;
        /// Threads coding a batch (0: one per core): `threads - 1` workers and the thread
        /// adding records, which codes jobs of the batch in flight whenever it waits for it.
        threads, get_threads: threads: usize;
        /// Memory configuration of every worker's encoder; the bytes never depend on it.
        coder, get_coder: encoder: CoderConfig;
        /// Records are whole lines of JSON (any bytes are accepted): each is coded in the
        /// JSON-lines form of [`crate::jsonform`] (long string values unescaped, so the text
        /// model sees raw text), and readers give back the record exactly. The archive's header
        /// says so (flag bit 0, FORMAT.md §5.5). Off by default.
        json_lines, get_json_lines: json_lines: bool;
        /// Self-training (FORMAT.md §5.6): the archive stores a *primer*, the first records added
        /// (or a sample of the input given up front, [`ArchiveWriter::with_primer_sample`])
        /// joined by newlines and cut to this many bytes (at most
        /// [`MAX_PRIMER_LEN`](crate::MAX_PRIMER_LEN)), and every record is coded after it, so the
        /// coder knows the archive's own data: the match model sees the primer, and if that
        /// codes a sample of the records clearly smaller, records are `ADAPTIVE` with an
        /// adaptive model that starts from the primer's state. Records stay individually
        /// decodable. 0 turns it off. The writer holds the records back (and writes nothing)
        /// until they fill the primer, or until [`ArchiveWriter::flush`] (given a sample, it
        /// holds back nothing but a block-mode trial's records). Every worker, and
        /// every reader, holds a copy of the primer's state: its bytes, 1 MiB of match table
        /// and an adaptive table of up to 8 bytes per primer byte (64 KiB to 16 MiB), about
        /// 3.3 MiB for [`DEFAULT_PRIMER_BYTES`].
        ///
        /// The library's default is 0 (off): a writer then writes as it goes, and archives of a
        /// few records do not carry a primer that costs more than it saves. `sigma pack` turns
        /// it on: for a file, a quarter of its records (64 KiB to 1 MiB) sampled from all of it;
        /// for standard input, [`DEFAULT_PRIMER_BYTES`] of its first records (`--no-primer`
        /// turns it off).
        primer, get_primer: primer: usize;
        /// Block mode (`sigma pack --block SIZE`): consecutive records are grouped into pages
        /// until their decoded total reaches this many bytes, and each page is coded as one
        /// payload with the stream's chunk coder (no group frames, no Σ-bank), so that short
        /// records learn from each other; reading a record decodes its page (a reader keeps
        /// the last page it decoded, so reading in order is linear). Keys are still recorded
        /// per record. 0 (the default): every record is coded alone, against its group's
        /// earlier records. At most [`MAX_PAGE_BYTES`].
        page_bytes, get_page_bytes: page_bytes: u64;
        /// Block mode when it pays (`sigma pack --block auto`): with `page_bytes` 0, the writer
        /// holds back the primer's records and about 1 MiB after them
        /// ([`AUTO_SAMPLE_BYTES`] and a third more, or twelve pages if larger), then measures
        /// the last [`AUTO_SAMPLE_BYTES`] of them, whole pages, both ways as the archive would
        /// hold them: each record alone after the primer, against its group (the writer's
        /// own coding, kept if records alone are chosen), and in pages of this many bytes
        /// after the primer (kept if pages are chosen); payloads and index entries count, the
        /// primer (the same bytes either way) does not. Pages are chosen only if they save at
        /// least a tenth of the bytes, as a `get` of a record in a page decodes the whole page
        /// (10-100 times the CPU of a record alone). No trial is made, and every record is
        /// coded alone, if the records average more than a sixteenth of a page (judged on the
        /// primer's sample, or the records held back): pages pay for short records only.
        /// Records that repeat earlier ones (conversation histories) and most chat stay coded
        /// alone; short lines and JSON documents go into pages. The bytes do not depend on the
        /// number of threads. 0 (the default): no trial, `page_bytes` decides. `sigma pack`
        /// tries [`SMALL_PAGE_BYTES`] by default, [`AUTO_PAGE_BYTES`] with `--block auto`.
        /// At most [`MAX_PAGE_BYTES`].
        auto_pages, get_auto_pages: auto_pages: u64;
        /// Records added without a key ([`ArchiveWriter::add`]) go to groups the writer
        /// infers from their content (a record that starts with most of a recent group's last
        /// record continues that group), so that a log sorted or interleaved by conversation
        /// codes as if keyed. On by default; off, they all share one group as in version 2.
        /// Ignored in block mode.
        infer_groups, get_infer_groups: infer_groups: bool;
        /// Exact repeats (FORMAT.md §5.8): a record equal to an earlier record the writer
        /// still remembers is stored as a *copy*, an index entry naming that record and no
        /// payload, so that it costs a few bytes and reading it decodes the earlier record.
        /// The writer remembers the most recent records (those not themselves copies) whose
        /// bytes, plus 96 bytes each, add up to at most this many bytes (a hash table and the
        /// records' bytes: memory is this bound). 0 turns it off, and the archive's header
        /// then does not carry flag bit 2, so readers older than copies read it. Ignored in
        /// block mode. 32 MiB by default.
        repeats, get_repeats: repeats: usize;
        /// A coded index (FORMAT.md §5.1, header flag bit 6): the index codes every record's
        /// entry (its payload length, decoded length and mode, context, level, references or
        /// copy source) with small adaptive models instead of plain varints, so that its
        /// payload no longer starts with a header, and the writer makes blocks of at least
        /// `block_records` records hold about 4 KiB of payloads or more (a short record costs
        /// about 1.5 bytes of index and header instead of 4.5). Readers older than the flag
        /// refuse such an archive by it. Ignored in block mode (pages have few entries). On by
        /// default.
        coded_index, get_coded_index: coded_index: bool;
    }
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            block_records: DEFAULT_BLOCK_RECORDS,
            context: GroupOptions::default(),
            bank: 16 << 20,
            batch_records: 1,
            batch_bytes: 1 << 20,
            threads: 1,
            encoder: CoderConfig::default(),
            json_lines: false,
            primer: 0,
            page_bytes: 0,
            auto_pages: 0,
            infer_groups: true,
            repeats: DEFAULT_REPEAT_BYTES,
            coded_index: true,
        }
    }
}

impl ArchiveOptions {
    /// The number of worker threads these options ask for.
    pub fn worker_count(&self) -> usize {
        crate::workers::count(self.threads)
    }
}

/// Header flag bit 0 of a version-3 archive: records are coded in the JSON-lines form.
pub const FLAG_JSON_LINES: u16 = 1;
/// Header flag bit 1 of a version-3 archive: its JSON-lines forms may be in the fields layout
/// (first bytes `04`-`06`, FORMAT.md §5.5). Writers set it with bit 0, so that readers that do
/// not know the layout refuse the archive when they open it ("unknown archive header flags").
pub const FLAG_JSON_FIELDS: u16 = 2;
/// Header flag bit 2 of a version-3 archive: its index may hold copies (FORMAT.md §5.8),
/// entries of level 3 that name an earlier record with the same bytes. A reader that does not
/// know the flag refuses the archive by it, rather than misreading a copy.
pub const FLAG_COPIES: u16 = 4;
/// The default of [`ArchiveOptions::repeats`]: 32 MiB of recent records.
pub const DEFAULT_REPEAT_BYTES: usize = 32 << 20;
/// Header flag bit 3 of a version-3 archive: its pages (block mode, FORMAT.md §5.7) are coded
/// after its primer (§5.6). Set exactly when a block-mode archive has a primer, so that a reader
/// that does not know it refuses such an archive instead of decoding its pages without the
/// primer.
pub const FLAG_PRIMED_PAGES: u16 = 8;
/// Header flag bit 4 of a version-3 archive: its primer (FORMAT.md §5.6) is coded `ADAPTIVE2`
/// (or `STORED`) and its state is the adaptive model `V2`'s, so records and pages after it are
/// `MODELED` or `ADAPTIVE2`. Set exactly when an archive has a primer, by this build on every
/// archive it writes with one; without it a primer is `V1` (`ADAPTIVE`), as older builds wrote.
/// A reader that does not know it refuses the archive by it.
pub const FLAG_PRIMER_ADAPTIVE2: u16 = 0x10;
/// Header flag bit 5 of a version-3 archive: the member values of its JSON-lines forms may be
/// coded by reference in either layout (FORMAT.md §5.5: `^` and `~D` against the last frame
/// outside the fields layout too, and `=K`, an earlier value of the same record), and its
/// reader resolves every form (`jsonform::resolve_all`). Writers set it with bits 0 and 1; a
/// reader that does not know it refuses the archive by it.
pub const FLAG_JSON_VALUES: u16 = 0x20;
/// Header flag bit 6 of a version-3 archive: the record entries of its index are range-coded
/// (FORMAT.md §5.1), with each record's decoded length and mode, which its payload then does
/// not start with (no header `H`, §3). Only on archives whose records are coded alone (never
/// in block mode); a reader that does not know it refuses the archive by it.
pub const FLAG_CODED_INDEX: u16 = 0x40;
/// Header flag bit 7 of a version-3 archive: its primer's state, and its records and pages
/// after the primer, are the adaptive model's variant 3 (FORMAT.md §3.6, §5.6): their mode
/// `ADAPTIVE2` means `V3`. Set only with a primer and [`FLAG_PRIMER_ADAPTIVE2`], by this build
/// on every archive it writes with a primer; a reader that does not know it refuses the
/// archive by it.
pub const FLAG_PRIMER_V3: u16 = 0x80;
/// The header flags a reader of this build knows.
pub(crate) const KNOWN_FLAGS: u16 = FLAG_CODED_INDEX
    | FLAG_JSON_LINES
    | FLAG_JSON_FIELDS
    | FLAG_COPIES
    | FLAG_PRIMED_PAGES
    | FLAG_PRIMER_ADAPTIVE2
    | FLAG_JSON_VALUES
    | FLAG_PRIMER_V3;

/// The default context: records added without a key.
const DEFAULT_CONTEXT: u32 = 0;

/// What the index says of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordInfo {
    /// Offset of the record's payload in the file.
    pub offset: u64,
    /// Length of the payload.
    pub payload_len: u64,
    /// The record's group (0: records added without a key). The index calls it the record's
    /// context id.
    pub group: u32,
    /// How the record depends on the earlier records of its group.
    pub dependency: Dependency,
    /// The record it depends on directly: for a delta, the previous record of its group; for
    /// a keyframe, the previous keyframe of its group; none for a root; for a copy
    /// ([`Dependency::Copy`]), its source, the earlier record whose bytes it repeats (of any
    /// group, never itself a copy).
    pub prev: Option<u64>,
}
