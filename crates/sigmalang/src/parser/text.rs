//! Text structure: blocks (paragraphs, blank lines, fenced code), lines (markdown headings,
//! list items, quotes, table rows, chat turns), sentences and tokens.

use super::lexicon;
use super::tree::{Builder, NodeId};
use crate::primitive::Primitive;

macro_rules! prim {
    ($name:literal) => {
        const { Primitive::domain($name) }
    };
}

/// Parses `input[start..end]` as text; returns the block nodes, left to right.
pub(crate) fn parse_text(b: &mut Builder<'_>, start: usize, end: usize) -> Vec<NodeId> {
    let input = b.input;
    let mut blocks = Vec::new();
    let mut paragraph: Vec<NodeId> = Vec::new();
    let mut pos = start;
    while pos < end {
        let line_end = next_line_end(input, pos, end);
        let line = &input[pos..line_end];
        if let Some(fence) = fence_marker(line) {
            flush_paragraph(b, &mut paragraph, &mut blocks);
            let (node, next) = code_block(b, pos, end, fence);
            blocks.push(node);
            pos = next;
            continue;
        }
        if line.iter().all(|c| c.is_ascii_whitespace()) {
            flush_paragraph(b, &mut paragraph, &mut blocks);
            blocks.push(b.leaf(prim!("BLANK_LINE"), pos, line_end));
        } else {
            paragraph.push(prose_line(b, pos, line_end));
        }
        pos = line_end;
    }
    flush_paragraph(b, &mut paragraph, &mut blocks);
    blocks
}

fn flush_paragraph(b: &mut Builder<'_>, lines: &mut Vec<NodeId>, blocks: &mut Vec<NodeId>) {
    if !lines.is_empty() {
        blocks.push(b.composite(prim!("PARAGRAPH"), std::mem::take(lines)));
    }
}

/// End of the line starting at `pos`: one past its `\n`, or `end`.
fn next_line_end(input: &[u8], pos: usize, end: usize) -> usize {
    match input[pos..end].iter().position(|&c| c == b'\n') {
        Some(i) => pos + i + 1,
        None => end,
    }
}

/// If `line` opens or closes a fenced code block, the fence character and length.
fn fence_marker(line: &[u8]) -> Option<(u8, usize)> {
    let indent = line.iter().take_while(|&&c| c == b' ').count();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let c = *rest.first()?;
    if c != b'`' && c != b'~' {
        return None;
    }
    let n = rest.iter().take_while(|&&x| x == c).count();
    (n >= 3).then_some((c, n))
}

fn code_block(
    b: &mut Builder<'_>,
    start: usize,
    end: usize,
    fence: (u8, usize),
) -> (NodeId, usize) {
    let input = b.input;
    let first_end = next_line_end(input, start, end);
    let mut children = vec![fence_line(b, start, first_end, true)];
    let mut pos = first_end;
    while pos < end {
        let line_end = next_line_end(input, pos, end);
        let line = &input[pos..line_end];
        if let Some((c, n)) = fence_marker(line) {
            let only_fence = line[line.iter().position(|&x| x == c).unwrap_or(0) + n..]
                .iter()
                .all(|x| x.is_ascii_whitespace());
            if c == fence.0 && n >= fence.1 && only_fence {
                children.push(fence_line(b, pos, line_end, false));
                pos = line_end;
                break;
            }
        }
        let mut tokens = Vec::new();
        code_tokens(b, pos, line_end, &mut tokens);
        children.push(b.composite(prim!("CODE_LINE"), tokens));
        pos = line_end;
    }
    (b.composite(prim!("CODE_BLOCK"), children), pos)
}

fn fence_line(b: &mut Builder<'_>, start: usize, end: usize, opening: bool) -> NodeId {
    let input = b.input;
    let mut children = Vec::new();
    let mut pos = start;
    let indent = input[start..end].iter().take_while(|&&c| c == b' ').count();
    if indent > 0 {
        children.push(b.leaf(prim!("INDENT"), pos, pos + indent));
        pos += indent;
    }
    let c = input[pos];
    let n = input[pos..end].iter().take_while(|&&x| x == c).count();
    children.push(b.leaf(prim!("MARKUP"), pos, pos + n));
    pos += n;
    let (content_end, newline) = split_newline(input, pos, end);
    if opening {
        let tag_end = pos
            + input[pos..content_end]
                .iter()
                .take_while(|c| !c.is_ascii_whitespace())
                .count();
        if tag_end > pos {
            children.push(b.leaf(prim!("LANGUAGE_TAG"), pos, tag_end));
            pos = tag_end;
        }
    }
    if content_end > pos {
        prose_tokens(b, pos, content_end, &mut children);
    }
    if let Some(nl) = newline {
        children.push(b.leaf(prim!("NEWLINE"), nl, end));
    }
    b.composite(prim!("CODE_FENCE"), children)
}

/// Splits a line into content and its line terminator (`\n` or `\r\n`), if any.
fn split_newline(input: &[u8], start: usize, end: usize) -> (usize, Option<usize>) {
    if end > start && input[end - 1] == b'\n' {
        let nl = if end - 1 > start && input[end - 2] == b'\r' {
            end - 2
        } else {
            end - 1
        };
        (nl, Some(nl))
    } else {
        (end, None)
    }
}

const ROLES: [&[u8]; 9] = [
    b"User",
    b"Assistant",
    b"System",
    b"Human",
    b"AI",
    b"Bot",
    b"Q",
    b"A",
    b"ChatGPT",
];

fn prose_line(b: &mut Builder<'_>, start: usize, end: usize) -> NodeId {
    let input = b.input;
    let (content_end, newline) = split_newline(input, start, end);
    let mut children = Vec::new();
    let mut pos = start;
    let indent = input[pos..content_end]
        .iter()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    if indent > 0 {
        children.push(b.leaf(prim!("INDENT"), pos, pos + indent));
        pos += indent;
    }
    let rest = &input[pos..content_end];
    let (kind, marker) = line_kind(rest);
    if marker > 0 {
        let prim = if kind == prim!("CHAT_TURN") {
            prim!("ROLE_MARKER")
        } else {
            prim!("MARKUP")
        };
        children.push(b.leaf(prim, pos, pos + marker));
        pos += marker;
    }
    if kind == prim!("HORIZONTAL_RULE") {
        children.push(b.leaf(prim!("HORIZONTAL_RULE"), pos, content_end));
        pos = content_end;
    }
    sentences(b, pos, content_end, &mut children);
    if let Some(nl) = newline {
        children.push(b.leaf(prim!("NEWLINE"), nl, end));
    }
    b.composite(kind, children)
}

/// The kind of a line from its first bytes (after indentation), and the length of its marker.
fn line_kind(rest: &[u8]) -> (Primitive, usize) {
    let hashes = rest.iter().take_while(|&&c| c == b'#').count();
    if (1..=6).contains(&hashes) && rest.get(hashes) == Some(&b' ') {
        return (prim!("HEADING"), hashes + 1);
    }
    if rest.len() >= 3 {
        let c = rest[0];
        if matches!(c, b'-' | b'*' | b'_')
            && rest.iter().all(|&x| x == c || x == b' ')
            && rest.iter().filter(|&&x| x == c).count() >= 3
        {
            return (prim!("HORIZONTAL_RULE"), 0);
        }
    }
    if rest.len() >= 2 && matches!(rest[0], b'-' | b'*' | b'+') && rest[1] == b' ' {
        return (prim!("LIST_ITEM"), 2);
    }
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if (1..=3).contains(&digits)
        && matches!(rest.get(digits), Some(b'.' | b')'))
        && rest.get(digits + 1) == Some(&b' ')
    {
        return (prim!("LIST_ITEM"), digits + 2);
    }
    if rest.first() == Some(&b'>') {
        let n = if rest.get(1) == Some(&b' ') { 2 } else { 1 };
        return (prim!("BLOCKQUOTE"), n);
    }
    if rest.first() == Some(&b'|') {
        return (prim!("TABLE_ROW"), 0);
    }
    for role in ROLES {
        if rest.starts_with(role) && rest.get(role.len()) == Some(&b':') {
            let n = role.len() + 1 + usize::from(rest.get(role.len() + 1) == Some(&b' '));
            return (prim!("CHAT_TURN"), n);
        }
    }
    (prim!("LINE"), 0)
}

/// Splits `[start, end)` into sentences (after `.`, `!`, `?` followed by a space).
fn sentences(b: &mut Builder<'_>, start: usize, end: usize, out: &mut Vec<NodeId>) {
    if start >= end {
        return;
    }
    let mut tokens = Vec::new();
    prose_tokens(b, start, end, &mut tokens);
    let mut current = Vec::new();
    let mut after_terminal = false;
    for id in tokens {
        let node = b.primitive_of(id);
        let is_space = node == prim!("WHITESPACE");
        let is_full_stop = b.bytes_of(id) == b".";
        if after_terminal && is_space {
            out.push(b.composite(prim!("SENTENCE"), std::mem::take(&mut current)));
            out.push(id);
            after_terminal = false;
            continue;
        }
        current.push(id);
        after_terminal = is_full_stop
            || node == prim!("QUESTION_MARK")
            || node == prim!("EXCLAMATION")
            || node == prim!("ELLIPSIS")
            || (after_terminal && node == prim!("QUOTE_MARK"));
    }
    if !current.is_empty() {
        out.push(b.composite(prim!("SENTENCE"), current));
    }
}

/// Decodes the UTF-8 character at `pos`, if valid: `(char, byte length)`.
pub(crate) fn decode_char(input: &[u8], pos: usize, end: usize) -> Option<(char, usize)> {
    if pos >= end {
        return None;
    }
    let first = input[pos];
    let len = match first {
        0x00..=0x7f => return Some((first as char, 1)),
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    if pos + len > end {
        return None;
    }
    let s = std::str::from_utf8(&input[pos..pos + len]).ok()?;
    s.chars().next().map(|c| (c, len))
}

fn is_emoji(c: char) -> bool {
    matches!(u32::from(c), 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0xFE0F | 0x200D)
}

/// Tokenizes prose in `[start, end)` into leaves.
fn prose_tokens(b: &mut Builder<'_>, start: usize, end: usize, out: &mut Vec<NodeId>) {
    let input = b.input;
    let mut pos = start;
    let mut sentence_start = true;
    while pos < end {
        let Some((c, clen)) = decode_char(input, pos, end) else {
            let s = pos;
            pos += 1;
            while pos < end && decode_char(input, pos, end).is_none() {
                pos += 1;
            }
            out.push(b.leaf(prim!("INVALID_BYTES"), s, pos));
            continue;
        };
        let s = pos;
        let rest = &input[pos..end];
        let prim = if c.is_whitespace() {
            pos = scan(input, pos, end, |c| c.is_whitespace());
            prim!("WHITESPACE")
        } else if rest.starts_with(b"http://")
            || rest.starts_with(b"https://")
            || rest.starts_with(b"www.")
        {
            pos = scan(input, pos, end, |c| {
                !c.is_whitespace() && !matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | '`')
            });
            prim!("URL")
        } else if c.is_alphabetic() {
            pos = scan_word(input, pos, end);
            let word = std::str::from_utf8(&input[s..pos]).unwrap_or("");
            if input.get(pos) == Some(&b'@')
                && pos + 1 < end
                && input[pos + 1].is_ascii_alphanumeric()
            {
                pos = scan(input, pos, end, |c| {
                    c.is_alphanumeric() || matches!(c, '@' | '.' | '_' | '-' | '+')
                });
                prim!("EMAIL")
            } else {
                let lower = word.to_ascii_lowercase();
                lexicon::word_class(&lower)
                    .unwrap_or_else(|| lexicon::word_shape(word, sentence_start))
            }
        } else if c.is_numeric() {
            number(input, &mut pos, end)
        } else if c == '`' {
            match input[pos + 1..end].iter().position(|&x| x == b'`') {
                Some(i) if i > 0 => {
                    pos += i + 2;
                    prim!("INLINE_CODE")
                }
                _ => {
                    pos += 1;
                    prim!("MARKUP")
                }
            }
        } else if (c == '#' || c == '@') && pos + 1 < end && input[pos + 1].is_ascii_alphabetic() {
            pos = scan(input, pos + 1, end, |c| c.is_alphanumeric() || c == '_');
            if c == '#' {
                prim!("HASHTAG")
            } else {
                prim!("MENTION")
            }
        } else if rest.starts_with(b"...") || c == '\u{2026}' {
            pos = if c == '.' {
                scan(input, pos, end, |c| c == '.')
            } else {
                pos + clen
            };
            prim!("ELLIPSIS")
        } else {
            pos += clen;
            match c {
                '.' | ';' | ':' | ',' => prim!("PUNCTUATION"),
                '?' => prim!("QUESTION_MARK"),
                '!' => prim!("EXCLAMATION"),
                '"' | '\'' | '\u{201c}' | '\u{201d}' | '\u{2018}' | '\u{2019}' => {
                    prim!("QUOTE_MARK")
                }
                '*' | '_' | '~' => {
                    pos = scan(input, s, end, |x| x == c);
                    prim!("EMPHASIS")
                }
                '(' | '[' | '{' => prim!("OPEN_BRACKET"),
                ')' | ']' | '}' => prim!("CLOSE_BRACKET"),
                '=' | '<' | '>' => prim!("COMPARISON"),
                '+' | '-' | '/' | '^' | '\u{00d7}' | '\u{00f7}' => prim!("MATH_OPERATOR"),
                '$' | '\u{20ac}' | '\u{00a3}' | '\u{00a5}' => prim!("CURRENCY"),
                '%' => prim!("PERCENT"),
                '|' => prim!("DELIMITER"),
                c if is_emoji(c) => {
                    pos = scan(input, s, end, is_emoji);
                    prim!("EMOJI")
                }
                c if c.is_ascii_punctuation() => prim!("PUNCTUATION"),
                _ => prim!("SYMBOL"),
            }
        };
        debug_assert!(pos > s);
        sentence_start =
            matches!(c, '.' | '?' | '!') || (sentence_start && prim == prim!("WHITESPACE"));
        out.push(b.leaf(prim, s, pos));
    }
}

/// Advances from `pos` over characters satisfying `f`; always advances at least one byte.
fn scan(input: &[u8], pos: usize, end: usize, f: impl Fn(char) -> bool) -> usize {
    let mut i = pos;
    while i < end {
        match decode_char(input, i, end) {
            Some((c, l)) if f(c) => i += l,
            _ => break,
        }
    }
    i.max(pos + 1)
}

/// A word: letters and digits, with inner apostrophes, hyphens and underscores.
fn scan_word(input: &[u8], pos: usize, end: usize) -> usize {
    let mut i = pos;
    while i < end {
        match decode_char(input, i, end) {
            Some((c, l)) if c.is_alphanumeric() || c == '_' => i += l,
            Some(('\'' | '\u{2019}' | '-', l)) => match decode_char(input, i + l, end) {
                Some((n, _)) if n.is_alphabetic() => i += l,
                _ => break,
            },
            _ => break,
        }
    }
    i.max(pos + 1)
}

fn number(input: &[u8], pos: &mut usize, end: usize) -> Primitive {
    let start = *pos;
    let mut i = start;
    let mut dots = 0;
    let mut colon = false;
    while i < end {
        let c = input[i];
        if c.is_ascii_digit() {
            i += 1;
        } else if matches!(c, b'.' | b',' | b':') && i + 1 < end && input[i + 1].is_ascii_digit() {
            dots += usize::from(c == b'.');
            colon |= c == b':';
            i += 1;
        } else {
            break;
        }
    }
    if i == start {
        // A non-ASCII numeric character (superscripts, other scripts' digits).
        let (_, l) = decode_char(input, start, end).unwrap_or(('0', 1));
        *pos = start + l;
        return prim!("NUMBER");
    }
    let prim = if i < end && input[i] == b'%' {
        i += 1;
        prim!("PERCENT")
    } else if colon {
        prim!("TIME")
    } else if dots >= 2 {
        prim!("VERSION")
    } else if dots == 1 {
        prim!("DECIMAL")
    } else if [&b"st"[..], b"nd", b"rd", b"th"].iter().any(|s| {
        input[i..end].starts_with(s) && !input.get(i + 2).is_some_and(u8::is_ascii_alphabetic)
    }) {
        i += 2;
        prim!("ORDINAL")
    } else {
        prim!("INTEGER")
    };
    *pos = i;
    prim
}

/// Tokenizes one line of code in `[start, end)`.
fn code_tokens(b: &mut Builder<'_>, start: usize, end: usize, out: &mut Vec<NodeId>) {
    let input = b.input;
    let (content_end, newline) = split_newline(input, start, end);
    let mut pos = start;
    let indent = input[pos..content_end]
        .iter()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    if indent > 0 {
        out.push(b.leaf(prim!("INDENT"), pos, pos + indent));
        pos += indent;
    }
    while pos < content_end {
        let s = pos;
        let c = input[pos];
        let rest = &input[pos..content_end];
        let prim = if c == b' ' || c == b'\t' || c == b'\r' {
            pos += rest
                .iter()
                .take_while(|&&x| x == b' ' || x == b'\t' || x == b'\r')
                .count();
            prim!("CODE_WHITESPACE")
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            pos += rest
                .iter()
                .take_while(|x| x.is_ascii_alphanumeric() || **x == b'_' || **x == b'$')
                .count();
            let ident = std::str::from_utf8(&input[s..pos]).unwrap_or("");
            if lexicon::is_keyword(ident) {
                prim!("KEYWORD")
            } else if c.is_ascii_uppercase() {
                prim!("TYPE_NAME")
            } else {
                prim!("IDENTIFIER")
            }
        } else if c.is_ascii_digit() {
            pos += rest
                .iter()
                .take_while(|x| x.is_ascii_alphanumeric() || **x == b'.' || **x == b'_')
                .count();
            prim!("NUMBER_LITERAL")
        } else if matches!(c, b'"' | b'\'' | b'`') {
            let mut i = 1;
            while i < rest.len() && rest[i] != c {
                i += if rest[i] == b'\\' { 2 } else { 1 };
            }
            pos += (i + 1).min(rest.len());
            prim!("STRING_LITERAL")
        } else if rest.starts_with(b"//") || c == b'#' || rest.starts_with(b"--") {
            pos = content_end;
            prim!("COMMENT")
        } else if rest.starts_with(b"/*") {
            pos += rest
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(rest.len(), |i| i + 2);
            prim!("COMMENT")
        } else if c == b'@' && rest.len() > 1 && rest[1].is_ascii_alphabetic() {
            pos += 1 + rest[1..]
                .iter()
                .take_while(|x| x.is_ascii_alphanumeric() || **x == b'_' || **x == b'.')
                .count();
            prim!("DECORATOR")
        } else if matches!(c, b'(' | b'[' | b'{') {
            pos += 1;
            prim!("OPEN_BRACKET")
        } else if matches!(c, b')' | b']' | b'}') {
            pos += 1;
            prim!("CLOSE_BRACKET")
        } else if matches!(c, b',' | b';' | b':' | b'.') {
            pos += 1;
            prim!("DELIMITER")
        } else if b"+-*/%=<>!&|^~?\\".contains(&c) {
            pos += rest
                .iter()
                .take_while(|x| b"+-*/%=<>!&|^~?".contains(x))
                .count()
                .max(1);
            prim!("OPERATOR")
        } else {
            match decode_char(input, pos, content_end) {
                Some((ch, l)) => {
                    pos += l;
                    if ch.is_alphanumeric() {
                        prim!("IDENTIFIER")
                    } else {
                        prim!("SYMBOL")
                    }
                }
                None => {
                    pos += 1;
                    while pos < content_end && decode_char(input, pos, content_end).is_none() {
                        pos += 1;
                    }
                    prim!("INVALID_BYTES")
                }
            }
        };
        out.push(b.leaf(prim, s, pos));
    }
    if let Some(nl) = newline {
        out.push(b.leaf(prim!("NEWLINE"), nl, end));
    }
}
