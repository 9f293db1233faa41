//! Small closed-class lexicons that map common English words and code keywords to primitives.

use crate::primitive::Primitive;

/// The primitive of a prose word given in ASCII lower case, if it belongs to a closed class.
pub(crate) fn word_class(lower: &str) -> Option<Primitive> {
    let p = match lower {
        "not" | "no" | "never" | "nothing" | "nobody" | "neither" | "nor" | "cannot" | "isn't"
        | "aren't" | "don't" | "doesn't" | "didn't" | "won't" | "can't" | "wasn't" => {
            Primitive::NEGATION
        }
        "a" | "an" | "the" => Primitive::domain("ARTICLE"),
        "i" | "you" | "he" | "she" | "it" | "we" | "they" | "me" | "him" | "her" | "us"
        | "them" | "my" | "your" | "his" | "its" | "our" | "their" | "this" | "that" | "these"
        | "those" => Primitive::domain("PRONOUN"),
        "and" => Primitive::domain("AND"),
        "or" => Primitive::domain("OR"),
        "if" => Primitive::domain("IF"),
        "then" => Primitive::domain("THEN"),
        "else" | "otherwise" => Primitive::domain("ELSE"),
        "true" => Primitive::domain("TRUE"),
        "false" => Primitive::domain("FALSE"),
        "null" | "nil" => Primitive::domain("NULL"),
        "all" | "every" | "each" => Primitive::domain("ALL"),
        "some" | "any" | "several" | "few" | "many" => Primitive::domain("SOME"),
        "none" => Primitive::domain("NONE"),
        "because" | "since" | "due" => Primitive::domain("BECAUSE"),
        "therefore" | "thus" | "hence" | "so" | "consequently" => Primitive::domain("THEREFORE"),
        "unless" => Primitive::domain("UNLESS"),
        "whether" | "provided" => Primitive::CONDITION,
        "when" | "before" | "after" | "now" | "today" | "yesterday" | "tomorrow" | "always"
        | "during" | "until" | "while" | "later" | "soon" | "year" | "years" | "day" | "days"
        | "time" | "then," => Primitive::TEMPORAL,
        "in" | "on" | "at" | "under" | "over" | "above" | "below" | "between" | "near"
        | "inside" | "outside" | "where" | "here" | "there" | "into" | "within" => {
            Primitive::SPATIAL
        }
        "can" | "could" | "may" | "might" | "must" | "should" | "would" | "will" | "shall" => {
            Primitive::MODAL
        }
        "cause" | "causes" | "caused" | "effect" | "result" | "leads" => Primitive::CAUSAL,
        "is" | "are" | "was" | "were" | "be" | "been" | "being" | "has" | "have" | "had" | "of"
        | "with" | "to" | "for" | "by" | "from" | "as" | "than" | "like" | "about" => {
            Primitive::RELATION
        }
        "repeat" | "again" | "loop" | "iterate" | "times" => Primitive::ITERATION,
        "convert" | "transform" | "translate" | "rewrite" | "change" | "turn" => {
            Primitive::TRANSFORM
        }
        "hello" | "hi" | "hey" | "greetings" | "goodbye" | "bye" => Primitive::domain("GREETING"),
        "thanks" | "thank" | "please" | "sorry" => Primitive::domain("THANKS"),
        "create" | "make" | "build" | "generate" | "write" | "add" => Primitive::domain("CREATE"),
        "read" | "show" | "get" | "find" | "list" | "see" | "look" => Primitive::domain("READ"),
        "update" | "edit" | "modify" | "fix" | "improve" | "set" => Primitive::domain("UPDATE"),
        "delete" | "remove" | "drop" | "clear" => Primitive::domain("DELETE"),
        "explain" | "describe" | "summarize" | "define" | "mean" | "means" => {
            Primitive::domain("EXPLAIN")
        }
        "calculate" | "compute" | "count" | "sum" | "solve" => Primitive::domain("COMPUTE"),
        "compare" | "versus" | "vs" | "difference" => Primitive::domain("COMPARE"),
        _ => return None,
    };
    Some(p)
}

/// The primitive of a prose word by its shape, for words no lexicon names.
pub(crate) fn word_shape(word: &str, sentence_start: bool) -> Primitive {
    let bytes = word.as_bytes();
    let upper = bytes.iter().filter(|b| b.is_ascii_uppercase()).count();
    if !word.is_ascii() {
        return Primitive::domain("FOREIGN_WORD");
    }
    if bytes.iter().any(|b| b.is_ascii_digit() || *b == b'_') {
        return Primitive::domain("IDENTIFIER");
    }
    if upper >= 2 && upper == bytes.iter().filter(|b| b.is_ascii_alphabetic()).count() {
        return Primitive::domain("ACRONYM");
    }
    if upper >= 1 && bytes[0].is_ascii_uppercase() && !sentence_start {
        return Primitive::domain("NAME");
    }
    let lower = word.to_ascii_lowercase();
    for suffix in ["ing", "ed", "ize", "ise", "ate"] {
        if lower.len() > suffix.len() + 2 && lower.ends_with(suffix) {
            return Primitive::domain("VERB");
        }
    }
    for suffix in [
        "ly", "ous", "ful", "ive", "able", "ible", "al", "less", "ic",
    ] {
        if lower.len() > suffix.len() + 2 && lower.ends_with(suffix) {
            return Primitive::ATTRIBUTE;
        }
    }
    for suffix in ["tion", "sion", "ment", "ness", "ity", "ism", "ance", "ence"] {
        if lower.len() > suffix.len() + 2 && lower.ends_with(suffix) {
            return Primitive::ABSTRACT;
        }
    }
    Primitive::domain("WORD")
}

/// Whether an identifier is a keyword of one of the common programming languages.
pub(crate) fn is_keyword(ident: &str) -> bool {
    matches!(
        ident,
        "fn" | "let"
            | "mut"
            | "pub"
            | "use"
            | "mod"
            | "impl"
            | "struct"
            | "enum"
            | "trait"
            | "match"
            | "loop"
            | "where"
            | "const"
            | "static"
            | "def"
            | "class"
            | "import"
            | "from"
            | "return"
            | "if"
            | "elif"
            | "else"
            | "for"
            | "while"
            | "in"
            | "and"
            | "or"
            | "not"
            | "is"
            | "lambda"
            | "with"
            | "as"
            | "try"
            | "except"
            | "finally"
            | "raise"
            | "yield"
            | "async"
            | "await"
            | "function"
            | "var"
            | "new"
            | "this"
            | "self"
            | "null"
            | "None"
            | "True"
            | "False"
            | "true"
            | "false"
            | "public"
            | "private"
            | "protected"
            | "void"
            | "int"
            | "float"
            | "double"
            | "char"
            | "bool"
            | "string"
            | "package"
            | "interface"
            | "extends"
            | "implements"
            | "switch"
            | "case"
            | "break"
            | "continue"
            | "default"
            | "do"
            | "throw"
            | "throws"
            | "catch"
            | "export"
            | "typeof"
            | "instanceof"
            | "delete"
            | "SELECT"
            | "FROM"
            | "WHERE"
            | "INSERT"
            | "UPDATE"
            | "JOIN"
            | "ORDER"
            | "GROUP"
            | "BY"
            | "func"
            | "go"
            | "type"
            | "struct{"
            | "package;"
            | "echo"
            | "fi"
            | "done"
            | "then"
            | "elseif"
            | "end"
            | "local"
    )
}
