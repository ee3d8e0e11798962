//! A YAML document written as text, with comments (serde writes none): nested mappings of
//! scalars and flow lists, every string double-quoted with YAML's escapes so that any text
//! (`:`, `#`, quotes, control characters) reads back as it was.

/// A value in the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Str(String),
    /// A flow list, `["a", "b"]`.
    List(Vec<Scalar>),
}

impl Scalar {
    pub fn str(s: impl Into<String>) -> Scalar {
        Scalar::Str(s.into())
    }

    fn render(&self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Str(s) => quote(s),
            Scalar::List(items) => format!("[{}]", items.iter().map(Scalar::render).collect::<Vec<_>>().join(", ")),
        }
    }
}

/// `s` as a YAML double-quoted scalar: YAML's escapes for `"`, `\` and every character outside
/// YAML's printable set, and for the ones a YAML 1.1 reader takes as line breaks (U+0085,
/// U+2028, U+2029) or as a byte-order mark (U+FEFF).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// In YAML's printable set, and not a character that needs care on the way back.
fn printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0xA0..=0x2027 | 0x202A..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD | 0x10000..)
}

/// Comment text on one line: line breaks and other control characters become spaces.
pub fn comment_text(s: &str) -> String {
    s.chars().map(|c| if printable(c) { c } else { ' ' }).collect()
}

#[derive(Debug)]
struct Entry {
    key: String,
    /// Comment lines above the key.
    above: Vec<String>,
    value: Node,
    /// A comment after the value, on its line.
    beside: Option<String>,
}

#[derive(Debug)]
enum Node {
    Scalar(Scalar),
    Map(Vec<Entry>),
}

/// A mapping document; keys stay in the order they were first set.
#[derive(Debug, Default)]
pub struct Doc {
    root: Vec<Entry>,
}

impl Doc {
    /// Sets `path` (dotted: `sources.s3.bucket`) to `value`, with `beside` as its comment (empty:
    /// none); the mappings on the way are created. A value set again keeps its comments above.
    pub fn set(&mut self, path: &str, value: Scalar, beside: &str) {
        let entry = self.entry(path);
        entry.value = Node::Scalar(value);
        entry.beside = (!beside.is_empty()).then(|| comment_text(beside));
    }

    /// Creates the mapping at `path` if it is not there (to fix the order of sections).
    pub fn map(&mut self, path: &str) {
        self.entry(path);
    }

    /// Whether `path` is set.
    pub fn has(&self, path: &str) -> bool {
        let mut entries = &self.root;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let Some(entry) = entries.iter().find(|e| e.key == part) else { return false };
            match (&entry.value, parts.peek()) {
                (_, None) => return true,
                (Node::Map(children), Some(_)) => entries = children,
                (Node::Scalar(_), Some(_)) => return false,
            }
        }
        false
    }

    /// Adds a comment line above the key at `path` (created as a mapping when missing).
    pub fn note(&mut self, path: &str, text: &str) {
        self.entry(path).above.push(comment_text(text));
    }

    fn entry(&mut self, path: &str) -> &mut Entry {
        let mut entries = &mut self.root;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let at = match entries.iter().position(|e| e.key == *part) {
                Some(at) => at,
                None => {
                    entries.push(Entry {
                        key: part.to_string(),
                        above: vec![],
                        value: Node::Map(vec![]),
                        beside: None,
                    });
                    entries.len() - 1
                }
            };
            if i + 1 == parts.len() {
                return &mut entries[at];
            }
            let entry = &mut entries[at];
            if matches!(entry.value, Node::Scalar(_)) {
                entry.value = Node::Map(vec![]);
            }
            let Node::Map(children) = &mut entry.value else { unreachable!("made a mapping above") };
            entries = children;
        }
        unreachable!("a path has at least one part")
    }

    /// The document as YAML text, comments wrapped at `width` columns.
    pub fn render(&self, width: usize) -> String {
        let mut out = String::new();
        render_entries(&self.root, 0, width, &mut out);
        out
    }
}

fn render_entries(entries: &[Entry], indent: usize, width: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for entry in entries {
        for line in &entry.above {
            for wrapped in wrap(line, width.saturating_sub(indent + 2).max(40)) {
                out.push_str(&format!("{pad}# {wrapped}\n").replace(" \n", "\n"));
            }
        }
        match &entry.value {
            Node::Scalar(value) => {
                let line = format!("{pad}{}: {}", entry.key, value.render());
                match &entry.beside {
                    Some(comment) => out.push_str(&format!("{line:<44}  # {comment}\n")),
                    None => out.push_str(&format!("{line}\n")),
                }
            }
            Node::Map(children) if children.is_empty() => out.push_str(&format!("{pad}{}: {{}}\n", entry.key)),
            Node::Map(children) => {
                out.push_str(&format!("{pad}{}:\n", entry.key));
                render_entries(children, indent + 2, width, out);
            }
        }
    }
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word stays whole).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_string_reads_back() {
        let hostile = [
            "plain",
            "",
            "a: b # c",
            "'single' and \"double\"",
            "back\\slash",
            "- dash",
            "{flow}, [list]",
            "null",
            "true",
            "0x1F",
            "  spaces  ",
            "tab\tnew\nline\rcr",
            "nul\0bell\u{7}del\u{7f}c1\u{85}\u{9f}",
            "line\u{2028}para\u{2029}bom\u{feff}",
            "café 日本 😀",
            "*anchor &ref !tag %directive @at `tick`",
        ];
        for s in hostile {
            let mut doc = Doc::default();
            doc.set("thumbora.security.keys", Scalar::List(vec![Scalar::str(s)]), "SECURITY_KEY");
            doc.set("thumbora.sources.user_agent", Scalar::str(s), s);
            doc.note("thumbora.sources", s);
            let text = doc.render(100);
            let back: serde_norway::Value =
                serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{s:?}: {e}\n{text}"));
            assert_eq!(back["thumbora"]["security"]["keys"][0].as_str(), Some(s), "{text}");
            assert_eq!(back["thumbora"]["sources"]["user_agent"].as_str(), Some(s), "{text}");
        }
    }

    #[test]
    fn layout_order_and_comments() {
        let mut doc = Doc::default();
        doc.map("a");
        doc.map("b");
        doc.set("b.x", Scalar::Int(1), "from X, line 3");
        doc.set("a.y", Scalar::Bool(true), "");
        doc.note("a.y", "why y");
        doc.set("a.z", Scalar::Null, "");
        doc.map("c");
        doc.set("b.x", Scalar::Int(2), "from X, line 4");
        assert!(doc.has("b.x") && doc.has("a") && !doc.has("a.q") && !doc.has("b.x.deeper"));
        let text = doc.render(100);
        let x = format!("{:<44}  # from X, line 4", "  x: 2");
        assert_eq!(text, format!("a:\n  # why y\n  y: true\n  z: null\nb:\n{x}\nc: {{}}\n"));
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("averyveryverylongword x", 5), ["averyveryverylongword", "x"]);
    }
}
