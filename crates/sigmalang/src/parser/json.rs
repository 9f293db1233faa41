//! JSON documents: a record whose text is one JSON value becomes a `JSON_DOCUMENT` subtree.
//! Anything that is not well-formed JSON (or nests deeper than `MAX_JSON_DEPTH`) is left to the
//! text parser.

use super::tree::{Builder, NodeId};
use super::MAX_JSON_DEPTH;
use crate::primitive::Primitive;

const DOCUMENT: Primitive = Primitive::domain("JSON_DOCUMENT");
const OBJECT: Primitive = Primitive::domain("JSON_OBJECT");
const ARRAY: Primitive = Primitive::domain("JSON_ARRAY");
const MEMBER: Primitive = Primitive::domain("JSON_MEMBER");
const KEY: Primitive = Primitive::domain("JSON_KEY");
const STRING: Primitive = Primitive::domain("JSON_STRING");
const NUMBER: Primitive = Primitive::domain("JSON_NUMBER");
const LITERAL: Primitive = Primitive::domain("JSON_LITERAL");
const PUNCT: Primitive = Primitive::domain("JSON_PUNCT");
const WHITESPACE: Primitive = Primitive::domain("WHITESPACE");

/// Parses the whole input as one JSON document, or returns `None` (leaving the builder as it
/// was) if it is not one.
pub(crate) fn parse_document(b: &mut Builder<'_>) -> Option<NodeId> {
    let input = b.input;
    let first = input.iter().position(|c| !is_ws(*c))?;
    if input[first] != b'{' && input[first] != b'[' {
        return None;
    }
    let mark = b.mark();
    let mut p = JsonParser { b, pos: 0 };
    let result = p.document();
    match result {
        Some(id) => Some(id),
        None => {
            p.b.truncate(mark);
            None
        }
    }
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

struct JsonParser<'b, 'a> {
    b: &'b mut Builder<'a>,
    pos: usize,
}

impl JsonParser<'_, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.input.get(self.pos).copied()
    }

    fn ws(&mut self, out: &mut Vec<NodeId>) {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        if self.pos > start {
            out.push(self.b.leaf(WHITESPACE, start, self.pos));
        }
    }

    fn punct(&mut self, c: u8, out: &mut Vec<NodeId>) -> Option<()> {
        if self.peek() != Some(c) {
            return None;
        }
        out.push(self.b.leaf(PUNCT, self.pos, self.pos + 1));
        self.pos += 1;
        Some(())
    }

    fn document(&mut self) -> Option<NodeId> {
        let mut children = Vec::new();
        self.ws(&mut children);
        children.push(self.value(0)?);
        self.ws(&mut children);
        if self.pos != self.b.input.len() {
            return None;
        }
        Some(self.b.composite(DOCUMENT, children))
    }

    fn value(&mut self, depth: usize) -> Option<NodeId> {
        match self.peek()? {
            b'{' => self.container(depth, b'}', OBJECT),
            b'[' => self.container(depth, b']', ARRAY),
            b'"' => {
                let (s, e) = self.string()?;
                Some(self.b.leaf(STRING, s, e))
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.literal(),
        }
    }

    fn container(&mut self, depth: usize, close: u8, prim: Primitive) -> Option<NodeId> {
        if depth >= MAX_JSON_DEPTH {
            return None;
        }
        let is_object = close == b'}';
        let mut children = Vec::new();
        let open = self.peek()?;
        self.punct(open, &mut children)?;
        self.ws(&mut children);
        if self.peek() == Some(close) {
            self.punct(close, &mut children)?;
            return Some(self.b.composite(prim, children));
        }
        loop {
            if is_object {
                let mut member = Vec::new();
                let (s, e) = self.string()?;
                member.push(self.b.leaf(KEY, s, e));
                self.ws(&mut member);
                self.punct(b':', &mut member)?;
                self.ws(&mut member);
                member.push(self.value(depth + 1)?);
                children.push(self.b.composite(MEMBER, member));
            } else {
                children.push(self.value(depth + 1)?);
            }
            self.ws(&mut children);
            match self.peek()? {
                b',' => {
                    self.punct(b',', &mut children)?;
                    self.ws(&mut children);
                }
                c if c == close => {
                    self.punct(close, &mut children)?;
                    return Some(self.b.composite(prim, children));
                }
                _ => return None,
            }
        }
    }

    /// A string token, quotes included; returns its span.
    fn string(&mut self) -> Option<(usize, usize)> {
        let input = self.b.input;
        let start = self.pos;
        if input.get(start) != Some(&b'"') {
            return None;
        }
        let mut i = start + 1;
        loop {
            match *input.get(i)? {
                b'"' => break,
                b'\\' => i += 2,
                c if c < 0x20 => return None,
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        Some((start, self.pos))
    }

    fn number(&mut self) -> Option<NodeId> {
        let input = self.b.input;
        let start = self.pos;
        let mut i = start;
        if input.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let s = *i;
            while input.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > s
        };
        if !digits(&mut i) {
            return None;
        }
        if input.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if matches!(input.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(input.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.pos = i;
        Some(self.b.leaf(NUMBER, start, i))
    }

    fn literal(&mut self) -> Option<NodeId> {
        let rest = &self.b.input[self.pos..];
        for word in [&b"true"[..], b"false", b"null"] {
            if rest.starts_with(word) {
                let start = self.pos;
                self.pos += word.len();
                return Some(self.b.leaf(LITERAL, start, self.pos));
            }
        }
        None
    }
}
