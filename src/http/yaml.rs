//! YAML reformatting for the editor's *Reformat* button (`POST /api/v1/reformat`).
//!
//! The rule is: never change what the data means. So this is not "parse into values and
//! dump them" (that turns `017` into `17`, `yes` into `"yes"` or `true` depending on the
//! YAML version the reader uses, and drops tags): it re-indents the event stream of the
//! parser into block style, keeping every plain scalar exactly as written (so every YAML
//! 1.1 or 1.2 reader resolves it to the same type and value) and writing quoted and block
//! scalars in an equivalent quoted or literal form. The result is parsed again and
//! compared with the input, scalar by scalar; any difference refuses the reformat.
//!
//! Refused with a message saying why: syntax errors, comments (they would be lost),
//! anchors and aliases, tags, directives, and mappings with non-scalar keys.

use yaml_rust2::parser::{Event, EventReceiver, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// Why a text could not be reformatted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReformatError {
    #[error("not valid YAML: {0}")]
    Syntax(String),
    #[error("cannot reformat this YAML without changing it: {0}")]
    Unsupported(String),
}

/// A parsed node, with what matters for meaning (and how scalars were written).
#[derive(Debug, Clone)]
enum Node {
    Scalar { value: String, style: TScalarStyle },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// The meaning of a scalar: a plain scalar is resolved by the reader (`017`, `yes`, `~`),
/// anything else is a string. A plain scalar spanning lines can only be a string.
fn scalar_key(value: &str, style: TScalarStyle) -> (bool, &str) {
    let plain = style == TScalarStyle::Plain && !value.contains('\n');
    (plain, value)
}

fn same(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Scalar { value: va, style: sa }, Node::Scalar { value: vb, style: sb }) => {
            scalar_key(va, *sa) == scalar_key(vb, *sb)
        }
        (Node::Seq(xa), Node::Seq(xb)) => xa.len() == xb.len() && xa.iter().zip(xb).all(|(x, y)| same(x, y)),
        (Node::Map(xa), Node::Map(xb)) => {
            xa.len() == xb.len() && xa.iter().zip(xb).all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        _ => false,
    }
}

#[derive(Default)]
struct Collector {
    events: Vec<Event>,
}

impl EventReceiver for Collector {
    fn on_event(&mut self, ev: Event) {
        self.events.push(ev);
    }
}

/// Parses all documents of `text` into trees, refusing what cannot be kept.
fn parse(text: &str) -> Result<Vec<Node>, ReformatError> {
    let mut c = Collector::default();
    Parser::new_from_str(text).load(&mut c, true).map_err(|e| ReformatError::Syntax(e.to_string()))?;
    let mut docs = Vec::new();
    let mut stack: Vec<Node> = Vec::new();
    // For maps: a key waiting for its value.
    let mut keys: Vec<Option<Node>> = Vec::new();
    for ev in c.events {
        let done = match ev {
            Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd | Event::Nothing => None,
            Event::Alias(_) => return Err(ReformatError::Unsupported("it uses aliases (*name)".into())),
            Event::Scalar(value, style, anchor, tag) => {
                refuse_props(anchor, tag.is_some())?;
                Some(Node::Scalar { value, style })
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_props(anchor, tag.is_some())?;
                stack.push(Node::Seq(Vec::new()));
                None
            }
            Event::MappingStart(anchor, tag) => {
                refuse_props(anchor, tag.is_some())?;
                stack.push(Node::Map(Vec::new()));
                keys.push(None);
                None
            }
            Event::SequenceEnd => stack.pop(),
            Event::MappingEnd => {
                keys.pop();
                stack.pop()
            }
        };
        let Some(node) = done else { continue };
        match stack.last_mut() {
            None => docs.push(node),
            Some(Node::Seq(items)) => items.push(node),
            Some(Node::Map(entries)) => match keys.last_mut() {
                Some(slot @ None) => {
                    if !matches!(node, Node::Scalar { .. }) {
                        return Err(ReformatError::Unsupported("a mapping has a key that is not a scalar".into()));
                    }
                    *slot = Some(node);
                }
                Some(slot) => {
                    if let Some(k) = slot.take() {
                        entries.push((k, node));
                    }
                }
                None => return Err(ReformatError::Syntax("unbalanced mapping".into())),
            },
            Some(Node::Scalar { .. }) => return Err(ReformatError::Syntax("unbalanced document".into())),
        }
    }
    if !stack.is_empty() {
        return Err(ReformatError::Syntax("unexpected end of input".into()));
    }
    Ok(docs)
}

fn refuse_props(anchor: usize, tagged: bool) -> Result<(), ReformatError> {
    if anchor != 0 {
        return Err(ReformatError::Unsupported("it uses anchors (&name)".into()));
    }
    if tagged {
        return Err(ReformatError::Unsupported("it uses tags (!tag)".into()));
    }
    Ok(())
}

/// Text that the parser would throw away: comments and directives.
fn check_lossy_text(text: &str) -> Result<(), ReformatError> {
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('%') {
            return Err(ReformatError::Unsupported(format!("line {}: directives (%) are not kept", i + 1)));
        }
        let b = line.as_bytes();
        let comment =
            b.iter().enumerate().any(|(j, &c)| c == b'#' && (j == 0 || b[j - 1] == b' ' || b[j - 1] == b'\t'));
        if comment {
            return Err(ReformatError::Unsupported(format!(
                "line {}: '#' may start a comment, and comments would be lost",
                i + 1
            )));
        }
    }
    Ok(())
}

/// Escapes `s` as a YAML double-quoted scalar (a superset of JSON's escapes).
fn double_quoted(s: &str) -> String {
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
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn printable(c: char) -> bool {
    !(c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}'))
}

/// Whether `s` can be written as a literal block (`|`) and read back unchanged.
fn literal_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\t', '\n'])
        && s.chars().all(|c| c == '\n' || c == '\t' || printable(c))
        && s.split('\n').all(|l| l.trim_matches([' ', '\t']).len() == l.len() || !l.trim().is_empty())
}

struct Emitter {
    out: String,
    literals: bool,
}

impl Emitter {
    fn pad(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(' ', n));
    }

    /// A scalar after `key:` or `- ` (the caller wrote that and no space yet); ends the line.
    fn scalar(&mut self, value: &str, style: TScalarStyle, indent: usize) {
        let plain = style == TScalarStyle::Plain && !value.contains('\n');
        if plain {
            if !value.is_empty() {
                self.out.push(' ');
                self.out.push_str(value);
            }
        } else if self.literals && literal_ok(value) {
            let body = value.trim_end_matches('\n');
            let trailing = value.len() - body.len();
            self.out.push_str(match trailing {
                0 => " |-",
                1 => " |",
                _ => " |+",
            });
            for line in body.split('\n') {
                self.out.push('\n');
                if !line.is_empty() {
                    self.pad(indent + 2);
                    self.out.push_str(line);
                }
            }
            for _ in 1..trailing {
                self.out.push('\n');
            }
        } else if style == TScalarStyle::SingleQuoted && value.chars().all(printable) {
            self.out.push_str(" '");
            self.out.push_str(&value.replace('\'', "''"));
            self.out.push('\'');
        } else {
            self.out.push(' ');
            self.out.push_str(&double_quoted(value));
        }
        self.out.push('\n');
    }

    fn key(&mut self, k: &Node) -> Result<(), ReformatError> {
        let Node::Scalar { value, style } = k else {
            return Err(ReformatError::Unsupported("a mapping has a key that is not a scalar".into()));
        };
        let plain = *style == TScalarStyle::Plain && !value.contains('\n');
        let text = if plain {
            if value.is_empty() {
                return Err(ReformatError::Unsupported("a mapping has an empty (null) key".into()));
            }
            value.clone()
        } else {
            double_quoted(value)
        };
        if text.chars().count() > 1000 {
            return Err(ReformatError::Unsupported("a mapping key is too long for block style".into()));
        }
        self.out.push_str(&text);
        self.out.push(':');
        Ok(())
    }

    /// Writes `node` as the value that follows `key:` or `- ` written at column `indent`.
    fn value(&mut self, node: &Node, indent: usize, in_seq: bool) -> Result<(), ReformatError> {
        match node {
            Node::Scalar { value, style } => self.scalar(value, *style, indent),
            Node::Seq(items) if items.is_empty() => self.out.push_str(" []\n"),
            Node::Map(entries) if entries.is_empty() => self.out.push_str(" {}\n"),
            // `- - a` / `- k: v`: the first line continues the dash.
            Node::Seq(_) | Node::Map(_) if in_seq => {
                self.out.push(' ');
                self.block(node, indent + 2, true)?;
            }
            _ => {
                self.out.push('\n');
                self.block(node, indent + 2, false)?;
            }
        }
        Ok(())
    }

    /// A non-empty collection at column `indent`; `continued`: the first line's indent is
    /// already written.
    fn block(&mut self, node: &Node, indent: usize, mut continued: bool) -> Result<(), ReformatError> {
        match node {
            Node::Seq(items) => {
                for it in items {
                    if !continued {
                        self.pad(indent);
                    }
                    continued = false;
                    self.out.push('-');
                    self.value(it, indent, true)?;
                }
            }
            Node::Map(entries) => {
                for (k, v) in entries {
                    if !continued {
                        self.pad(indent);
                    }
                    continued = false;
                    self.key(k)?;
                    self.value(v, indent, false)?;
                }
            }
            Node::Scalar { .. } => return Err(ReformatError::Syntax("unexpected scalar".into())),
        }
        Ok(())
    }

    fn document(&mut self, doc: &Node) -> Result<(), ReformatError> {
        match doc {
            Node::Scalar { value, style } => {
                // A top-level scalar: written like a value, without its leading space.
                let start = self.out.len();
                self.scalar(value, *style, 0);
                if self.out[start..].starts_with(' ') {
                    self.out.remove(start);
                }
            }
            Node::Seq(items) if items.is_empty() => self.out.push_str("[]\n"),
            Node::Map(entries) if entries.is_empty() => self.out.push_str("{}\n"),
            other => self.block(other, 0, false)?,
        }
        Ok(())
    }
}

fn emit(docs: &[Node], literals: bool) -> Result<String, ReformatError> {
    let mut e = Emitter { out: String::new(), literals };
    for (i, d) in docs.iter().enumerate() {
        // Between documents; and before an empty one, which would otherwise vanish.
        if i > 0 || matches!(d, Node::Scalar { value, .. } if value.is_empty()) {
            e.out.push_str("---\n");
        }
        e.document(d)?;
    }
    Ok(e.out)
}

/// Re-indents `text` (block style, two spaces) without changing what it means, or says
/// why it cannot.
pub fn reformat(text: &str) -> Result<String, ReformatError> {
    let docs = parse(text)?;
    check_lossy_text(text)?;
    for literals in [true, false] {
        let out = emit(&docs, literals)?;
        let Ok(again) = parse(&out) else { continue };
        if again.len() == docs.len() && again.iter().zip(&docs).all(|(a, b)| same(a, b)) {
            return Ok(out);
        }
    }
    Err(ReformatError::Unsupported("the reformatted text would not read back the same".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        reformat(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    #[test]
    fn flow_style_becomes_block_style() {
        assert_eq!(ok("{a: 1, b: [x, y], c: {d: e}}"), "a: 1\nb:\n  - x\n  - y\nc:\n  d: e\n");
        assert_eq!(ok("a:   1\nb:\n    - {k: v, w: 2}\n    - []\n"), "a: 1\nb:\n  - k: v\n    w: 2\n  - []\n");
        assert_eq!(ok("- - a\n  - b\n- c"), "- - a\n  - b\n- c\n");
    }

    #[test]
    fn plain_scalars_are_kept_as_written() {
        // YAML 1.1 readers take 017 as octal, yes as a boolean: they must stay as written.
        assert_eq!(
            ok("{port: 017, on: yes, n: ~, big: 123456789012345678901234567890, f: 1.50}"),
            "port: 017\non: yes\nn: ~\nbig: 123456789012345678901234567890\nf: 1.50\n"
        );
        assert_eq!(ok("a:\nb: ''\n"), "a:\nb: ''\n");
    }

    #[test]
    fn quoted_and_block_scalars_keep_their_value() {
        assert_eq!(ok("a: \"x\\ty\"\nb: 'it''s'\n"), "a: \"x\\ty\"\nb: 'it''s'\n");
        assert_eq!(ok("s: \"line1\\nline2\\n\""), "s: |\n  line1\n  line2\n");
        assert_eq!(ok("s: |-\n    one\n\n    two\n"), "s: |-\n  one\n\n  two\n");
        assert_eq!(ok("s: >\n  folded\n  text\n"), "s: |\n  folded text\n");
        assert_eq!(ok("s: \"  lead\\nx\""), "s: \"  lead\\nx\"\n");
        assert_eq!(ok("s: \"keep\\n\\n\"\nt: 1"), "s: |+\n  keep\n\nt: 1\n");
        assert_eq!(ok("\"1\": \"2\""), "\"1\": \"2\"\n");
    }

    #[test]
    fn several_documents_and_scalars() {
        assert_eq!(ok("a: 1\n---\n[b]\n"), "a: 1\n---\n- b\n");
        assert_eq!(ok("just text"), "just text\n");
        assert_eq!(ok("[]"), "[]\n");
        assert_eq!(ok("--- \n...\n"), "---\n\n");
        assert_eq!(ok(""), "");
    }

    #[test]
    fn refuses_what_it_cannot_keep() {
        let unsupported = |s: &str| matches!(reformat(s), Err(ReformatError::Unsupported(_)));
        assert!(unsupported("a: 1 # the answer\n"));
        assert!(unsupported("# header\na: 1\n"));
        assert!(unsupported("base: &b {x: 1}\nc: *b\n"));
        assert!(unsupported("a: !!str 1\n"));
        assert!(unsupported("a: !custom x\n"));
        assert!(unsupported("%YAML 1.1\n---\na: 1\n"));
        assert!(unsupported("? [a, b]\n: c\n"));
        assert!(matches!(reformat("a: [1, 2\n"), Err(ReformatError::Syntax(_))));
        assert!(matches!(reformat("a: 1\n b: 2\n"), Err(ReformatError::Syntax(_))));
        // '#' inside a word or a quoted string is not a comment.
        assert_eq!(ok("{color: \"#fff\", url: http://x/#frag}"), "color: \"#fff\"\nurl: http://x/#frag\n");
    }
}
