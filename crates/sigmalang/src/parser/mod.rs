//! The semantic parser: text (any bytes) → a [`SemanticTree`] of glyphs.
//!
//! The tree is lossless by construction: its PRIMITIVE leaves, read left to right, are exactly the
//! input bytes — whitespace, case, every Unicode plane and invalid UTF-8 included. COMPOSITE
//! nodes give the structure: paragraphs, lines, sentences, markdown headings and lists, fenced code
//! blocks, JSON documents, chat turns.
//!
//! Parsing is linear in the input, never fails and never panics; bytes it cannot classify become
//! `INVALID_BYTES` or `SYMBOL` leaves. JSON nested deeper than [`MAX_JSON_DEPTH`] is parsed as
//! text.

mod json;
mod lexicon;
mod text;
mod tree;

pub use tree::{Node, NodeId, SemanticTree};

/// JSON documents nested deeper than this are parsed as plain text.
pub const MAX_JSON_DEPTH: usize = 64;

/// Parses `input` into its semantic tree.
///
/// ```
/// let tree = sigmalang::parse(b"Hello world!\n");
/// assert_eq!(tree.flatten(), b"Hello world!\n");
/// assert_eq!(tree.root().glyph.primitive.name(), "DOCUMENT");
/// ```
pub fn parse(input: &[u8]) -> SemanticTree<'_> {
    let mut b = tree::Builder::new(input);
    let children = match json::parse_document(&mut b) {
        Some(doc) => vec![doc],
        None => text::parse_text(&mut b, 0, input.len()),
    };
    b.finish(children)
}

#[cfg(test)]
mod tests;
