//! Glyphs: the units a SigmaLang record is made of.
//!
//! A glyph has a [`GlyphType`] and a [`Primitive`]. The semantic parser produces a tree of
//! PRIMITIVE glyphs (leaves, each covering bytes of the input) under COMPOSITE glyphs (structure).
//! The encoder codes the leaves' bytes with the codebook's model, and may replace spans by
//! REFERENCE glyphs (content stored earlier, in the Σ-bank) or DELTA glyphs (spans copied from a
//! context frame). Composite structure is never transmitted: the decoder re-derives it from the
//! decoded bytes, so it is context for the model rather than overhead in the output.

use std::fmt;

use crate::primitive::Primitive;

/// The four kinds of glyph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GlyphType {
    /// A leaf: a span of bytes classified by a primitive.
    Primitive = 0,
    /// Content that appeared earlier, named by its place in the Σ-bank.
    Reference = 1,
    /// A span copied from a recent context frame.
    Delta = 2,
    /// Structure: a node whose children cover its span.
    Composite = 3,
}

impl GlyphType {
    /// The glyph type's name as the format documentation writes it.
    pub fn name(self) -> &'static str {
        match self {
            GlyphType::Primitive => "PRIMITIVE",
            GlyphType::Reference => "REFERENCE",
            GlyphType::Delta => "DELTA",
            GlyphType::Composite => "COMPOSITE",
        }
    }

    /// The glyph type with the given two-bit code.
    pub fn from_code(code: u8) -> Option<GlyphType> {
        Some(match code {
            0 => GlyphType::Primitive,
            1 => GlyphType::Reference,
            2 => GlyphType::Delta,
            3 => GlyphType::Composite,
            _ => return None,
        })
    }
}

impl fmt::Display for GlyphType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A glyph: a type and a primitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Glyph {
    /// What kind of glyph it is.
    pub glyph_type: GlyphType,
    /// What it means.
    pub primitive: Primitive,
}
