//! The Σ-primitive registry: 256 primitives in three tiers.
//!
//! | tier | ids | what |
//! | --- | --- | --- |
//! | existential | `0x00`-`0x0F` | the sixteen universal categories (ENTITY, ACTION, ...) |
//! | domain | `0x10`-`0x7F` | structure, code, math, logic, entity, action and communication families |
//! | learned | `0x80`-`0xFF` | assigned by a trained codebook to the patterns worth most in its corpus |
//!
//! Names are upper-case ASCII identifiers, unique across the registry; learned primitives are
//! named `LEARNED_80` .. `LEARNED_FF` (a codebook may describe what each stands for).

use std::fmt;

/// The tier a primitive belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// `0x00`-`0x0F`: universal semantic categories.
    Existential,
    /// `0x10`-`0x7F`: families of a domain (structure, code, math, ...).
    Domain,
    /// `0x80`-`0xFF`: learned from a corpus by a codebook.
    Learned,
}

/// The family of a domain primitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Existential primitives have no family of their own.
    Existential,
    /// Document structure: blocks, lines, markdown, JSON, chat turns.
    Structure,
    /// Source code tokens.
    Code,
    /// Numbers and mathematics.
    Math,
    /// Logical connectives and truth values.
    Logic,
    /// Things named in text: words, names, URLs, paths.
    Entity,
    /// Verbs and operations.
    Action,
    /// Punctuation, greetings, questions.
    Communication,
    /// Learned by a codebook.
    Learned,
}

/// One of the 256 Σ-primitives.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Primitive(pub u8);

const EXISTENTIAL: [&str; 16] = [
    "ENTITY",
    "ACTION",
    "RELATION",
    "ATTRIBUTE",
    "QUANTITY",
    "TEMPORAL",
    "SPATIAL",
    "CAUSAL",
    "MODAL",
    "NEGATION",
    "REFERENCE",
    "COMPOSITE",
    "TRANSFORM",
    "CONDITION",
    "ITERATION",
    "ABSTRACT",
];

/// Domain primitives `0x10..=0x7F`, in id order, with their family.
const DOMAIN: [(&str, Family); 112] = {
    use Family::*;
    [
        // 0x10-0x2F structure
        ("DOCUMENT", Structure),
        ("BLOCK", Structure),
        ("PARAGRAPH", Structure),
        ("LINE", Structure),
        ("SENTENCE", Structure),
        ("HEADING", Structure),
        ("LIST_ITEM", Structure),
        ("BLOCKQUOTE", Structure),
        ("TABLE_ROW", Structure),
        ("CODE_BLOCK", Structure),
        ("CODE_FENCE", Structure),
        ("CHAT_TURN", Structure),
        ("ROLE_MARKER", Structure),
        ("BLANK_LINE", Structure),
        ("NEWLINE", Structure),
        ("WHITESPACE", Structure),
        ("INDENT", Structure),
        ("MARKUP", Structure),
        ("HORIZONTAL_RULE", Structure),
        ("JSON_DOCUMENT", Structure),
        ("JSON_OBJECT", Structure),
        ("JSON_ARRAY", Structure),
        ("JSON_MEMBER", Structure),
        ("JSON_KEY", Structure),
        ("JSON_STRING", Structure),
        ("JSON_NUMBER", Structure),
        ("JSON_LITERAL", Structure),
        ("JSON_PUNCT", Structure),
        ("XML_TAG", Structure),
        ("TABLE_CELL", Structure),
        ("BINARY", Structure),
        ("INVALID_BYTES", Structure),
        // 0x30-0x3F code
        ("IDENTIFIER", Code),
        ("KEYWORD", Code),
        ("OPERATOR", Code),
        ("STRING_LITERAL", Code),
        ("NUMBER_LITERAL", Code),
        ("COMMENT", Code),
        ("OPEN_BRACKET", Code),
        ("CLOSE_BRACKET", Code),
        ("DELIMITER", Code),
        ("CODE_LINE", Code),
        ("INLINE_CODE", Code),
        ("LANGUAGE_TAG", Code),
        ("DECORATOR", Code),
        ("TYPE_NAME", Code),
        ("ESCAPE_SEQUENCE", Code),
        ("CODE_WHITESPACE", Code),
        // 0x40-0x4F math
        ("NUMBER", Math),
        ("INTEGER", Math),
        ("DECIMAL", Math),
        ("PERCENT", Math),
        ("CURRENCY", Math),
        ("UNIT", Math),
        ("EQUATION", Math),
        ("MATH_OPERATOR", Math),
        ("COMPARISON", Math),
        ("FRACTION", Math),
        ("EXPONENT", Math),
        ("VARIABLE", Math),
        ("FUNCTION", Math),
        ("ORDINAL", Math),
        ("RANGE", Math),
        ("MATH_SYMBOL", Math),
        // 0x50-0x5F logic
        ("AND", Logic),
        ("OR", Logic),
        ("NOT", Logic),
        ("IF", Logic),
        ("THEN", Logic),
        ("ELSE", Logic),
        ("TRUE", Logic),
        ("FALSE", Logic),
        ("NULL", Logic),
        ("ALL", Logic),
        ("SOME", Logic),
        ("NONE", Logic),
        ("EQUIVALENT", Logic),
        ("BECAUSE", Logic),
        ("THEREFORE", Logic),
        ("UNLESS", Logic),
        // 0x60-0x6F entity
        ("WORD", Entity),
        ("NAME", Entity),
        ("ACRONYM", Entity),
        ("PRONOUN", Entity),
        ("ARTICLE", Entity),
        ("URL", Entity),
        ("EMAIL", Entity),
        ("PATH", Entity),
        ("DATE", Entity),
        ("TIME", Entity),
        ("HASHTAG", Entity),
        ("MENTION", Entity),
        ("EMOJI", Entity),
        ("SYMBOL", Entity),
        ("FOREIGN_WORD", Entity),
        ("VERSION", Entity),
        // 0x70-0x77 action
        ("VERB", Action),
        ("CREATE", Action),
        ("READ", Action),
        ("UPDATE", Action),
        ("DELETE", Action),
        ("EXPLAIN", Action),
        ("COMPUTE", Action),
        ("COMPARE", Action),
        // 0x78-0x7F communication
        ("GREETING", Communication),
        ("THANKS", Communication),
        ("QUESTION_MARK", Communication),
        ("EXCLAMATION", Communication),
        ("PUNCTUATION", Communication),
        ("QUOTE_MARK", Communication),
        ("ELLIPSIS", Communication),
        ("EMPHASIS", Communication),
    ]
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The names of the learned tier, `LEARNED_80` .. `LEARNED_FF`, built at compile time.
const LEARNED_NAMES: [[u8; 10]; 128] = {
    let mut names = [*b"LEARNED_00"; 128];
    let mut i = 0;
    while i < 128 {
        let id = 0x80 + i;
        names[i][8] = HEX[id >> 4];
        names[i][9] = HEX[id & 15];
        i += 1;
    }
    names
};

impl Primitive {
    /// The id of the first existential primitive.
    pub const ENTITY: Primitive = Primitive(0x00);
    /// An action or event.
    pub const ACTION: Primitive = Primitive(0x01);
    /// A relation between things.
    pub const RELATION: Primitive = Primitive(0x02);
    /// A property or quality.
    pub const ATTRIBUTE: Primitive = Primitive(0x03);
    /// An amount.
    pub const QUANTITY: Primitive = Primitive(0x04);
    /// Time.
    pub const TEMPORAL: Primitive = Primitive(0x05);
    /// Place.
    pub const SPATIAL: Primitive = Primitive(0x06);
    /// Cause and effect.
    pub const CAUSAL: Primitive = Primitive(0x07);
    /// Possibility, necessity, obligation.
    pub const MODAL: Primitive = Primitive(0x08);
    /// Negation.
    pub const NEGATION: Primitive = Primitive(0x09);
    /// Reference to something named elsewhere.
    pub const REFERENCE: Primitive = Primitive(0x0A);
    /// A whole made of parts.
    pub const COMPOSITE: Primitive = Primitive(0x0B);
    /// A change.
    pub const TRANSFORM: Primitive = Primitive(0x0C);
    /// A condition.
    pub const CONDITION: Primitive = Primitive(0x0D);
    /// Repetition.
    pub const ITERATION: Primitive = Primitive(0x0E);
    /// An abstract notion.
    pub const ABSTRACT: Primitive = Primitive(0x0F);

    /// The id of the primitive.
    pub fn id(self) -> u8 {
        self.0
    }

    /// The tier of the primitive.
    pub fn tier(self) -> Tier {
        match self.0 {
            0x00..=0x0F => Tier::Existential,
            0x10..=0x7F => Tier::Domain,
            _ => Tier::Learned,
        }
    }

    /// The family of the primitive.
    pub fn family(self) -> Family {
        match self.tier() {
            Tier::Existential => Family::Existential,
            Tier::Domain => DOMAIN[usize::from(self.0 - 0x10)].1,
            Tier::Learned => Family::Learned,
        }
    }

    /// The registry name of the primitive.
    pub fn name(self) -> &'static str {
        match self.tier() {
            Tier::Existential => EXISTENTIAL[usize::from(self.0)],
            Tier::Domain => DOMAIN[usize::from(self.0 - 0x10)].0,
            Tier::Learned => {
                let bytes = &LEARNED_NAMES[usize::from(self.0 - 0x80)];
                std::str::from_utf8(bytes).expect("ASCII by construction")
            }
        }
    }

    /// The primitive with registry name `name` (exact, upper case), if there is one.
    pub fn from_name(name: &str) -> Option<Primitive> {
        if let Some(i) = EXISTENTIAL.iter().position(|&n| n == name) {
            return Some(Primitive(i as u8));
        }
        if let Some(i) = DOMAIN.iter().position(|&(n, _)| n == name) {
            return Some(Primitive(0x10 + i as u8));
        }
        let hex = name.strip_prefix("LEARNED_")?;
        if hex.len() != 2 || !hex.bytes().all(|b| HEX.contains(&b)) {
            return None;
        }
        let id = u8::from_str_radix(hex, 16).ok()?;
        (id >= 0x80).then_some(Primitive(id))
    }

    /// Looks up a domain primitive by name at compile time; panics (at compile time) if absent.
    pub(crate) const fn domain(name: &str) -> Primitive {
        let mut i = 0;
        while i < DOMAIN.len() {
            if const_str_eq(DOMAIN[i].0, name) {
                return Primitive(0x10 + i as u8);
            }
            i += 1;
        }
        panic!("unknown domain primitive");
    }

    /// All 256 primitives in id order.
    pub fn all() -> impl Iterator<Item = Primitive> {
        (0..=255u8).map(Primitive)
    }
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl fmt::Debug for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:#04x})", self.name(), self.0)
    }
}

impl fmt::Display for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for p in Primitive::all() {
            let name = p.name();
            assert!(seen.insert(name), "duplicate name {name}");
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'));
            assert_eq!(Primitive::from_name(name), Some(p), "{name}");
        }
        assert_eq!(seen.len(), 256);
    }

    #[test]
    fn tiers_and_families() {
        assert_eq!(Primitive(0x00).name(), "ENTITY");
        assert_eq!(Primitive(0x0F).name(), "ABSTRACT");
        assert_eq!(Primitive(0x10).name(), "DOCUMENT");
        assert_eq!(Primitive(0x7F).name(), "EMPHASIS");
        assert_eq!(Primitive(0x80).name(), "LEARNED_80");
        assert_eq!(Primitive(0xFF).name(), "LEARNED_FF");
        assert_eq!(Primitive(0x0A).tier(), Tier::Existential);
        assert_eq!(Primitive(0x30).family(), Family::Code);
        assert_eq!(Primitive(0x9C).tier(), Tier::Learned);
        assert_eq!(Primitive::domain("WORD"), Primitive(0x60));
        assert_eq!(Primitive::from_name("LEARNED_7F"), None);
        assert_eq!(Primitive::from_name("word"), None);
    }
}
