use super::*;
use crate::glyph::GlyphType;
use proptest::prelude::*;

fn names(tree: &SemanticTree<'_>) -> Vec<(String, Vec<u8>)> {
    tree.leaves()
        .into_iter()
        .map(|n| (n.glyph.primitive.name().to_string(), tree.bytes(n).to_vec()))
        .collect()
}

fn assert_lossless(input: &[u8]) {
    let tree = parse(input);
    tree.check().unwrap();
    assert_eq!(tree.flatten(), input);
}

#[test]
fn empty_and_tiny_inputs() {
    for input in [
        &b""[..],
        b"a",
        b"\n",
        b"\0",
        b"\xff",
        b" ",
        b"\r\n",
        b"```",
        b"{",
        b"[]",
    ] {
        assert_lossless(input);
    }
    let tree = parse(b"");
    assert!(tree.root().children.is_empty());
    assert_eq!(tree.root().glyph.glyph_type, GlyphType::Composite);
}

#[test]
fn classifies_prose() {
    let tree = parse(b"Hello, Alice! It is not 3.5% but 42.\n");
    let leaves = names(&tree);
    let find = |s: &[u8]| leaves.iter().find(|(_, b)| b == s).map(|(n, _)| n.as_str());
    assert_eq!(find(b"Hello"), Some("GREETING"));
    assert_eq!(find(b"Alice"), Some("NAME"));
    assert_eq!(find(b"not"), Some("NEGATION"));
    assert_eq!(find(b"3.5%"), Some("PERCENT"));
    assert_eq!(find(b"42"), Some("INTEGER"));
    assert_eq!(find(b"\n"), Some("NEWLINE"));
    // Two sentences on one line.
    let mut sentences = 0;
    tree.walk(|n, _| sentences += usize::from(n.glyph.primitive.name() == "SENTENCE"));
    assert_eq!(sentences, 2);
}

#[test]
fn markdown_and_code_blocks() {
    let input = b"# Title\n\n- item one\n1. first\n> quote\n```python\ndef f(x):\n    return x + 1  # inc\n```\nUser: hi\n";
    let tree = parse(input);
    tree.check().unwrap();
    let mut kinds = Vec::new();
    tree.walk(|n, _| kinds.push(n.glyph.primitive.name()));
    for k in [
        "HEADING",
        "BLANK_LINE",
        "LIST_ITEM",
        "BLOCKQUOTE",
        "CODE_BLOCK",
        "CODE_FENCE",
        "LANGUAGE_TAG",
        "KEYWORD",
        "IDENTIFIER",
        "OPERATOR",
        "COMMENT",
        "INDENT",
        "CHAT_TURN",
        "ROLE_MARKER",
    ] {
        assert!(kinds.contains(&k), "missing {k} in {kinds:?}");
    }
}

#[test]
fn json_documents() {
    let input = br#" {"model": "chat", "messages": [{"role": "user", "content": "hi\n"}], "n": -1.5e3, "ok": true}
"#;
    let tree = parse(input);
    tree.check().unwrap();
    let root_child = tree.node(tree.root().children[0]);
    assert_eq!(root_child.glyph.primitive.name(), "JSON_DOCUMENT");
    let leaves = names(&tree);
    assert!(leaves.contains(&("JSON_KEY".into(), br#""model""#.to_vec())));
    assert!(leaves.contains(&("JSON_NUMBER".into(), b"-1.5e3".to_vec())));
    assert!(leaves.contains(&("JSON_LITERAL".into(), b"true".to_vec())));
    // Not JSON: falls back to text.
    let tree = parse(b"{not json");
    assert_ne!(
        tree.node(tree.root().children[0]).glyph.primitive.name(),
        "JSON_DOCUMENT"
    );
}

#[test]
fn deep_json_falls_back_to_text() {
    let mut input = vec![b'['; MAX_JSON_DEPTH + 10];
    input.extend(vec![b']'; MAX_JSON_DEPTH + 10]);
    assert_lossless(&input);
    let mut ok = vec![b'['; 10];
    ok.extend(vec![b']'; 10]);
    let tree = parse(&ok);
    assert_eq!(
        tree.node(tree.root().children[0]).glyph.primitive.name(),
        "JSON_DOCUMENT"
    );
}

#[test]
fn invalid_utf8_and_surrogates() {
    // Lone surrogates encoded as WTF-8 (ED A0 80 / ED B0 80) are invalid UTF-8.
    let input = b"ok \xed\xa0\x80 and \xed\xb0\x80\xff\xfe end \xf0\x9f\x98";
    let tree = parse(input);
    tree.check().unwrap();
    assert_eq!(tree.flatten(), input);
    assert!(names(&tree).iter().any(|(n, _)| n == "INVALID_BYTES"));
}

#[test]
fn every_unicode_plane() {
    let mut s = String::new();
    for plane in 0..=16u32 {
        for off in [0x41u32, 0x1F600 & 0xFFFF, 0xFFFD] {
            if let Some(c) = char::from_u32(plane << 16 | off) {
                s.push(c);
                s.push(' ');
            }
        }
    }
    assert_lossless(s.as_bytes());
}

proptest! {
    #[test]
    fn any_bytes_flatten_exactly(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        let tree = parse(&input);
        prop_assert!(tree.check().is_ok());
        prop_assert_eq!(tree.flatten(), input);
    }

    #[test]
    fn any_text_flattens_exactly(input in "\\PC*(\n[-#>*` {}\\[\\]\":,0-9a-z]{0,12}\\PC*){0,6}") {
        let tree = parse(input.as_bytes());
        prop_assert!(tree.check().is_ok());
        prop_assert_eq!(tree.flatten(), input.as_bytes());
    }
}
