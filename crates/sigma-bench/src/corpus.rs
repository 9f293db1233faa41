//! Loading JSONL corpus files: one JSON object a line, the record being its `text` field.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// One record of a corpus file.
#[derive(Debug, Clone)]
pub struct Record {
    /// The UTF-8 bytes of the `text` field.
    pub text: Vec<u8>,
    /// The `conversation` field, if the line has one (histories files).
    pub conversation: Option<String>,
}

/// Reads every record of the JSONL file at `path`, skipping blank lines; stops after
/// `limit` records when `limit` is not zero.
pub fn load(path: &Path, limit: usize) -> Result<Vec<Record>, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut records = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        if limit != 0 && records.len() == limit {
            break;
        }
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("{}: {e}", at()))?;
        let text = value["text"]
            .as_str()
            .ok_or_else(|| format!("{}: no string \"text\" field", at()))?;
        let conversation = match &value["conversation"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        records.push(Record {
            text: text.as_bytes().to_vec(),
            conversation,
        });
    }
    Ok(records)
}

/// For each record, the index of the previous record of the same conversation, if any.
pub fn previous_in_conversation(records: &[Record]) -> Vec<Option<usize>> {
    let mut last = std::collections::HashMap::new();
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.conversation
                .as_ref()
                .and_then(|c| last.insert(c.clone(), i))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_conversations() {
        let rec = |c: &str| Record {
            text: Vec::new(),
            conversation: Some(c.to_owned()),
        };
        let records = [rec("a"), rec("b"), rec("a"), rec("a"), rec("b")];
        assert_eq!(
            previous_in_conversation(&records),
            [None, None, Some(0), Some(2), Some(1)]
        );
    }
}
