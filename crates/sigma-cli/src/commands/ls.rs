//! `sigma ls`: the records of an archive and how each is coded.
//!
//! One line per record: its number, context id, level (root, keyframe or delta), payload and
//! decoded sizes, the length of its dependency chain and the frames it is coded against (Σ-bank
//! references, roots of other contexts, marked `*`); then a summary of the archive (sizes,
//! ratio, records per level, context options, codebook). With `--json`, one JSON object per
//! record and a final `{"summary": {...}}` object.
//!
//! The decoded sizes come from decoding the whole archive in one pass
//! ([`ArchiveReader::walk_parallel`](sigmalang::ArchiveReader::walk_parallel), on `-T`
//! threads), so a damaged record is listed as such and the command exits 1 once the listing is
//! printed.

use std::io::{self, BufWriter, Write};

use serde_json::{json, Value};
use sigmalang::Dependency;

use crate::commands::archive::{open_archive, Opened, Records};
use crate::error::CliError;
use crate::format::ratio;
use crate::io::{BUF_SIZE, STDOUT_LABEL};
use crate::jsonl::FieldPath;
use crate::progress::{self, SHOW_AFTER};
use crate::LsArgs;

/// What `ls` shows of one record.
struct Entry {
    index: u64,
    context: u32,
    level: Dependency,
    offset: u64,
    payload: u64,
    /// `None` if the record does not decode.
    decoded: Option<u64>,
    /// The direct dependency (see `RecordInfo::prev`).
    prev: Option<u64>,
    chain: usize,
    /// The Σ-bank roots it references (also among its frames).
    references: Vec<u64>,
    /// `None` if they could not be worked out (a damaged record header).
    frames: Option<Vec<u64>>,
    /// The value the record is grouped by: from the archive's key table (version 3), or read
    /// from the record in an older archive of whole lines packed with `--context-key`; `None`
    /// if it has none (or `null`) or the archive does not say.
    key: Option<Value>,
}

impl Entry {
    /// The record's line in the text listing (see [`header`]), with a key column
    /// `key_width` characters wide if the listing has one.
    fn line(&self, key_width: Option<usize>) -> String {
        let decoded = self
            .decoded
            .map_or_else(|| "damaged".to_string(), |d| d.to_string());
        let frames = match &self.frames {
            None => "?".to_string(),
            Some(f) if f.is_empty() => "-".to_string(),
            Some(f) => f
                .iter()
                .map(|r| {
                    let mark = if self.references.contains(r) { "*" } else { "" };
                    format!("{r}{mark}")
                })
                .collect::<Vec<_>>()
                .join(","),
        };
        let mut line = format!(
            "{:>8} {:>8} {:<8} {:>10} {:>10} {:>5}  ",
            self.index,
            self.context,
            self.level.name(),
            self.payload,
            decoded,
            self.chain,
        );
        if let Some(width) = key_width {
            let key = self.key.as_ref().map_or("-".to_string(), key_shown);
            line.push_str(&format!("{key:<width$}  "));
        }
        line.push_str(&frames);
        line
    }

    /// The record as a JSON object.
    fn json(&self) -> Value {
        json!({
            "record": self.index,
            "context": self.context,
            "level": self.level.name(),
            "offset": self.offset,
            "payload_bytes": self.payload,
            "decoded_bytes": self.decoded,
            "frames": self.frames,
            "references": self.references,
            "prev": self.prev,
            "chain_len": self.chain,
            "key": self.key,
        })
    }
}

/// The most characters of a key the text listing shows.
const KEY_CHARS: usize = 40;

/// `s`, cut to `max` characters with `…` if longer.
fn shortened(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// The column titles of the text listing, with a key column `key_width` characters wide if it
/// has one.
fn header(key_width: Option<usize>) -> String {
    let mut h = "  record  context level       payload    decoded chain  ".to_string();
    if let Some(width) = key_width {
        h.push_str(&format!("{:<width$}  ", "key"));
    }
    h.push_str("frames");
    h
}

/// A key as the text listing shows it: its JSON text, cut to [`KEY_CHARS`] characters.
fn key_shown(key: &Value) -> String {
    shortened(&key.to_string(), KEY_CHARS)
}

/// A key from the archive's key table as JSON: the value its bytes are the JSON text of (as
/// `sigma pack` stores keys), else the bytes as a string (a key another program gave).
fn key_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(bytes).into_owned()))
}

/// Runs `sigma ls`.
pub fn run(args: &LsArgs) -> Result<(), CliError> {
    let Opened {
        mut reader,
        label,
        file_len,
        model,
        records,
        ..
    } = open_archive(&args.archive, args.model.as_deref(), args.memory)?;
    // Archives of version 3 keep every group's key in their index. In an older archive of
    // whole lines grouped by a field, each record's key is read from the record itself.
    let in_index = reader.archive().version() >= 3;
    let key_path = match &records {
        Records::Lines { key: Some(path) } if !in_index => {
            FieldPath::parse(path, "the archive's key").ok()
        }
        _ => None,
    };
    let count = reader.len();

    // Decode everything once for the decoded sizes (and to find damage).
    let bar = progress::step_bar(
        count,
        "{pos:>9}/{len} records [{bar:30}] {per_sec:>11}  ETA {eta}",
        progress::allowed(false) && file_len > SHOW_AFTER,
    );
    // The reader holds `count` index entries in memory, so `count` fits in a usize.
    let mut decoded: Vec<Option<u64>> = vec![None; count as usize];
    let mut keys: Vec<Option<Value>> = match key_path {
        Some(_) => vec![None; count as usize],
        None => Vec::new(),
    };
    let reopen = || std::fs::File::open(&args.archive);
    let failed = reader
        .walk_parallel(reopen, args.threads, |n, record| {
            let slot = &mut decoded[n as usize];
            if slot.is_none() {
                bar.inc(1);
            }
            *slot = record.as_ref().ok().map(|r| r.len() as u64);
            if let (Some(path), Ok(r)) = (&key_path, &record) {
                keys[n as usize] = path.find_in_line(r).filter(|v| !v.is_null());
            }
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| CliError::codec(&label, e))?;
    bar.finish_and_clear();

    let mut out = BufWriter::with_capacity(BUF_SIZE, io::stdout().lock());
    let write_err = |e: io::Error| CliError::write(STDOUT_LABEL, e, true);
    if in_index {
        keys = (0..count)
            .map(|n| reader.key(n).map(key_value).filter(|v| !v.is_null()))
            .collect();
    }
    // A key column if any record has a key, as wide as the widest key shown.
    let key_width = keys
        .iter()
        .flatten()
        .map(|k| key_shown(k).chars().count())
        .max()
        .map(|w| w.max(3));
    if !args.json {
        writeln!(out, "{}", header(key_width)).map_err(write_err)?;
    }
    let (mut roots, mut keyframes, mut deltas, mut copies) = (0u64, 0u64, 0u64, 0u64);
    let mut referencing = 0u64;
    let mut total_decoded = 0u64;
    for n in 0..count {
        let Some(info) = reader.info(n) else {
            break;
        };
        let entry = Entry {
            index: n,
            context: info.group,
            level: info.dependency,
            offset: info.offset,
            payload: info.payload_len,
            decoded: decoded[n as usize],
            prev: info.prev,
            chain: reader.chain_len(n),
            references: reader.references(n).to_vec(),
            frames: reader.frames_of(n).ok(),
            key: keys.get_mut(n as usize).and_then(Option::take),
        };
        match entry.level {
            Dependency::Root => roots += 1,
            Dependency::Keyframe => keyframes += 1,
            Dependency::Delta => deltas += 1,
            Dependency::Copy => copies += 1,
        }
        total_decoded += entry.decoded.unwrap_or(0);
        referencing += u64::from(!entry.references.is_empty());
        if args.json {
            writeln!(out, "{}", entry.json()).map_err(write_err)?;
        } else {
            writeln!(out, "{}", entry.line(key_width)).map_err(write_err)?;
        }
    }

    let opts = reader.group_options();
    let codebook = reader.header().codebook;
    if args.json {
        let summary = json!({"summary": {
            "records": count,
            "archive_bytes": file_len,
            "decoded_bytes": total_decoded,
            "ratio": ratio(total_decoded, file_len),
            "levels": {"root": roots, "keyframe": keyframes, "delta": deltas, "copy": copies},
            "referencing": referencing,
            "damaged": failed,
            "keyframe_interval": opts.get_keyframe_interval(),
            "keyframes_per_root": opts.get_keyframes_per_root(),
            "frames": opts.get_max_frames(),
            "window": opts.get_window(),
            "block_bytes": reader.page_bytes(),
            "codebook": codebook.to_string(),
            "codebook_file": model.path.as_deref().map(crate::io::label),
        }});
        writeln!(out, "{summary}").map_err(write_err)?;
    } else {
        let damaged = if failed > 0 {
            format!(" ({failed} records damaged)")
        } else {
            String::new()
        };
        // Block mode: the records are in pages (a record's payload is on its page's first).
        // Copies (FORMAT.md §5.8) are named only in archives that hold any.
        let copied = if copies > 0 {
            format!("{copies} copy, ")
        } else {
            String::new()
        };
        let blocks = match reader.page_bytes() {
            0 => String::new(),
            b => format!(
                "block mode, {} blocks of about {b} bytes; ",
                reader.page_of(count.saturating_sub(1)).map_or(0, |p| p + 1)
            ),
        };
        writeln!(
            out,
            "{count} records, {file_len} archive bytes, {total_decoded} decoded bytes{damaged}, \
             ratio {:.2}; {blocks}{roots} root, {keyframes} keyframe, {deltas} delta, \
             {copied}{referencing} with Σ-bank references (*); keyframe interval \
             {}, keyframes per root {}, frames {}, window {} bytes; codebook {codebook}, {}",
            ratio(total_decoded, file_len),
            opts.get_keyframe_interval(),
            opts.get_keyframes_per_root(),
            opts.get_max_frames(),
            opts.get_window(),
            model.describe(),
        )
        .map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    if failed > 0 {
        return Err(CliError::new(
            label,
            format!("{failed} records do not decode (`sigma verify` says why)"),
        ));
    }
    Ok(())
}
