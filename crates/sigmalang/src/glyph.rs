//! Glyphs: the units a SigmaLang text is described in.
//!
//! A glyph has a [`GlyphType`] and a [`Primitive`]. The semantic parser produces a tree of
//! PRIMITIVE glyphs (leaves, each covering bytes of the input) under COMPOSITE glyphs (structure);
//! `sigma inspect` shows it. The coded form of a record is a sequence of the other two kinds of
//! event between model-coded bytes: DELTA runs, spans copied from the record's context frames or
//! from earlier in the record, and REFERENCEs, the Σ-bank roots (earlier records outside its frames) that a record
//! names as extra frames so that DELTA runs can copy from them (see `docs/FORMAT.md`).
//!
//! The tree itself is never transmitted: a decoder can re-derive it from the decoded bytes. The
//! coder does not use it as model context yet, and the learned tier (`0x80..=0xFF`) names the
//! codebook's most valuable patterns without being used in coding; both are noted in
//! `docs/DESIGN.md` as open work.

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
