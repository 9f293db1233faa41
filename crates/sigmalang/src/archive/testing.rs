//! Archives and records the archive tests share.

use super::{ArchiveOptions, ArchiveWriter};
use crate::codebook::Codebook;
use crate::context::GroupOptions;

/// An archive of `records` in blocks of at least 3 records (a coded index, the default, makes
/// them larger: `Archive::block_records` says how large).
pub(super) fn build_with(records: &[&[u8]], context: GroupOptions) -> Vec<u8> {
    build_opts(records, context, true)
}

/// An archive of `records` in blocks of exactly 3 records, its index not coded.
pub(super) fn build_plain_with(records: &[&[u8]], context: GroupOptions) -> Vec<u8> {
    build_opts(records, context, false)
}

fn build_opts(records: &[&[u8]], context: GroupOptions, coded_index: bool) -> Vec<u8> {
    let opts = ArchiveOptions {
        block_records: 3,
        context,
        coded_index,
        ..ArchiveOptions::default()
    };
    let mut w = ArchiveWriter::with_options(
        Vec::new(),
        Codebook::default_codebook(),
        b"field=text",
        opts,
    )
    .unwrap();
    for r in records {
        w.add(r).unwrap();
    }
    w.finish().unwrap()
}

pub(super) fn build(records: &[&[u8]]) -> Vec<u8> {
    build_with(records, GroupOptions::default())
}

pub(super) fn history(turns: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut body = String::from(r#"{"messages": ["#);
    for t in 0..turns {
        if t > 0 {
            body.push_str(", ");
        }
        body.push_str(&format!(
            r#"{{"role": "user", "content": "question number {t} about rust lifetimes"}}"#
        ));
        out.push(format!("{body}]}}").into_bytes());
    }
    out
}

pub(super) fn system_prompt_logs(conversations: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let prompt = "You are SupportBot for the Acme Cloud platform. Always answer in a friendly, \
        concise tone; cite the relevant documentation page; never reveal internal ticket \
        numbers; escalate billing disputes to a human agent; format code with fenced blocks; \
        and when unsure, ask one clarifying question before answering. ";
    (0..conversations)
        .map(|c| {
            let key = format!("conv-{c}").into_bytes();
            let text = format!(
                r#"{{"messages": [{{"role": "system", "content": "{prompt}{prompt}"}}, {{"role": "user", "content": "ticket {c}: my deployment number {} fails"}}]}}"#,
                c * 7919 % 1000
            );
            (key, text.into_bytes())
        })
        .collect()
}

/// An archive of `n` short records in 3 keyed groups, in blocks of exactly `block_records`
/// records (its index not coded, which would make blocks larger).
pub(super) fn small_archive(n: usize, block_records: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
    let texts: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!(
                "record {i}: the weather in town {} is {}",
                i % 7,
                i * 13 % 29
            )
            .into_bytes()
        })
        .collect();
    let opts = ArchiveOptions {
        block_records,
        coded_index: false,
        ..ArchiveOptions::default()
    };
    let mut w =
        ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let key = format!("k{}", i % 3);
        w.add_in_group(Some(key.as_bytes()), t).unwrap();
    }
    (w.finish().unwrap(), texts)
}
