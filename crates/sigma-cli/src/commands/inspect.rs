//! `sigma inspect`: prints the semantic glyph tree of a text, as indented lines or as JSON
//! (`--cost`: what coding each span costs, in [`super::cost`]).
//!
//! The text form has one node per line, indented two spaces per level:
//!
//! ```text
//! DOCUMENT COMPOSITE 0..13
//!   PARAGRAPH COMPOSITE 0..13
//!     LINE COMPOSITE 0..13
//!       SENTENCE COMPOSITE 0..12
//!         WORD PRIMITIVE 0..5 "Hello"
//! ```
//!
//! and ends with a summary line (node, leaf and per-tier counts).

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use sigmalang::{GlyphType, Node, NodeId, SemanticTree};

use super::{tier_name, TreeStats};
use crate::error::CliError;
use crate::io::{Input, BUF_SIZE, STDOUT_LABEL};
use crate::InspectArgs;

/// Characters of a leaf shown before it is cut off with `…`.
pub const LEAF_CHARS: usize = 40;

/// The largest input `sigma inspect` reads: 64 MiB (its tree then takes about 2 GiB).
pub const MAX_INSPECT_BYTES: u64 = 64 << 20;

/// Runs `sigma inspect` (`--cost`: [`super::cost`]).
pub fn run(args: &InspectArgs) -> Result<(), CliError> {
    if args.cost {
        return super::cost::run(args);
    }
    let input = Input::from_arg(args.file.as_deref());
    // The glyph tree takes about 33 times its input: inspection is for one text, not a corpus.
    let data = input.read_all(
        MAX_INSPECT_BYTES,
        "the glyph tree takes about 33 times its input",
    )?;
    let tree = sigmalang::parse(&data);
    let stats = TreeStats::of(&tree);
    let mut out = BufWriter::with_capacity(BUF_SIZE, io::stdout().lock());
    let result = if args.json {
        write_json(&mut out, &tree, &stats, args.max_depth)
    } else {
        write_text(&mut out, &tree, &stats, args.max_depth)
    };
    result
        .and_then(|()| out.flush())
        .map_err(|e| CliError::write(STDOUT_LABEL, e, true))
}

/// Writes the tree as indented lines, then the summary line.
pub fn write_text(
    out: &mut impl Write,
    tree: &SemanticTree<'_>,
    stats: &TreeStats,
    max_depth: Option<usize>,
) -> io::Result<()> {
    let mut line = String::new();
    let mut stack: Vec<(NodeId, usize)> = vec![(0, 0)];
    while let Some((id, depth)) = stack.pop() {
        let node = tree.node(id);
        line.clear();
        for _ in 0..depth {
            line.push_str("  ");
        }
        let _ = write!(
            line,
            "{} {} {}..{}",
            node.glyph.primitive.name(),
            node.glyph.glyph_type.name(),
            node.span.start,
            node.span.end
        );
        if is_leaf(node) {
            line.push(' ');
            line.push_str(&crate::format::escape_bytes(tree.bytes(node), LEAF_CHARS));
        } else if max_depth.is_some_and(|m| depth >= m) && !node.children.is_empty() {
            let _ = write!(line, " (+{} children)", node.children.len());
        } else {
            stack.extend(node.children.iter().rev().map(|&c| (c, depth + 1)));
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    writeln!(out, "{}", stats.summary_line())
}

/// Writes the tree as one JSON object: `{"tree": NODE, "summary": {...}}`, where a node is
/// `{"primitive", "type", "tier", "start", "end"}` plus `"children"` (composites) or `"text"`
/// (leaves whose bytes are UTF-8) or `"hex"` (other leaves). Composites below `max_depth` get
/// `"omitted_children": N` instead of their children.
pub fn write_json(
    out: &mut impl Write,
    tree: &SemanticTree<'_>,
    stats: &TreeStats,
    max_depth: Option<usize>,
) -> io::Result<()> {
    enum Step {
        Node {
            id: NodeId,
            depth: usize,
            first: bool,
        },
        Close,
    }
    out.write_all(b"{\"tree\":")?;
    let mut stack = vec![Step::Node {
        id: 0,
        depth: 0,
        first: true,
    }];
    let mut s = String::new();
    while let Some(step) = stack.pop() {
        let (id, depth, first) = match step {
            Step::Close => {
                out.write_all(b"]}")?;
                continue;
            }
            Step::Node { id, depth, first } => (id, depth, first),
        };
        let node = tree.node(id);
        s.clear();
        if !first {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"primitive\":\"{}\",\"type\":\"{}\",\"tier\":\"{}\",\"start\":{},\"end\":{}",
            node.glyph.primitive.name(),
            node.glyph.glyph_type.name(),
            tier_name(node.glyph.primitive.tier()),
            node.span.start,
            node.span.end
        );
        if is_leaf(node) {
            let bytes = tree.bytes(node);
            match std::str::from_utf8(bytes) {
                Ok(text) => {
                    s.push_str(",\"text\":");
                    s.push_str(&serde_json::to_string(text).map_err(io::Error::other)?);
                }
                Err(_) => {
                    s.push_str(",\"hex\":\"");
                    for b in bytes {
                        let _ = write!(s, "{b:02x}");
                    }
                    s.push('"');
                }
            }
            s.push('}');
        } else if node.children.is_empty() {
            s.push_str(",\"children\":[]}");
        } else if max_depth.is_some_and(|m| depth >= m) {
            let _ = write!(s, ",\"omitted_children\":{}}}", node.children.len());
        } else {
            s.push_str(",\"children\":[");
            stack.push(Step::Close);
            stack.extend(
                node.children
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, &c)| Step::Node {
                        id: c,
                        depth: depth + 1,
                        first: i == 0,
                    }),
            );
        }
        out.write_all(s.as_bytes())?;
    }
    let top = stats.top(GlyphType::Primitive, usize::MAX);
    let leaves_by_primitive: serde_json::Map<String, serde_json::Value> = top
        .into_iter()
        .map(|(name, count)| (name.to_string(), count.into()))
        .collect();
    let summary = serde_json::json!({
        "nodes": stats.nodes,
        "composites": stats.composites,
        "leaves": stats.leaves,
        "max_depth": stats.max_depth,
        "tiers": {
            "existential": stats.tiers[0],
            "domain": stats.tiers[1],
            "learned": stats.tiers[2],
        },
        "leaves_by_primitive": leaves_by_primitive,
    });
    out.write_all(b",\"summary\":")?;
    serde_json::to_writer(&mut *out, &summary).map_err(io::Error::other)?;
    out.write_all(b"}\n")
}

/// Whether a node is a leaf: any glyph but a COMPOSITE (which may have no children, as the root
/// of an empty text).
fn is_leaf(node: &Node) -> bool {
    node.glyph.glyph_type != GlyphType::Composite
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(input: &[u8], max_depth: Option<usize>) -> String {
        let tree = sigmalang::parse(input);
        let stats = TreeStats::of(&tree);
        let mut out = Vec::new();
        write_text(&mut out, &tree, &stats, max_depth).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_form() {
        let s = text_of(b"Hello world!\n", None);
        let first = s.lines().next().unwrap();
        assert_eq!(first, "DOCUMENT COMPOSITE 0..13");
        assert!(s.contains("PRIMITIVE 0..5 \"Hello\""), "{s}");
        assert!(s.lines().last().unwrap().contains("nodes"));
        let shallow = text_of(b"Hello world!\n", Some(0));
        assert_eq!(shallow.lines().count(), 2, "{shallow}");
        assert!(shallow.contains("(+1 children)"));
    }

    #[test]
    fn json_form_is_valid_and_complete() {
        for input in [
            &b"Hello world!\n"[..],
            b"",
            b"{\"a\": [1, 2, {\"b\": null}]}",
            b"bad \xff\xfe bytes",
        ] {
            let tree = sigmalang::parse(input);
            let stats = TreeStats::of(&tree);
            let mut out = Vec::new();
            write_json(&mut out, &tree, &stats, None).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["tree"]["primitive"], "DOCUMENT");
            assert_eq!(v["summary"]["nodes"], stats.nodes);
            // The leaves' text and hex, in order, give back the input.
            let mut flat = Vec::new();
            let mut stack = vec![&v["tree"]];
            while let Some(n) = stack.pop() {
                if let Some(t) = n["text"].as_str() {
                    flat.extend_from_slice(t.as_bytes());
                } else if let Some(h) = n["hex"].as_str() {
                    for i in (0..h.len()).step_by(2) {
                        flat.push(u8::from_str_radix(&h[i..i + 2], 16).unwrap());
                    }
                }
                if let Some(c) = n["children"].as_array() {
                    stack.extend(c.iter().rev());
                }
            }
            assert_eq!(flat, input);
        }
    }
}
