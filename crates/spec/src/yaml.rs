//! The document tree: YAML parsed into [`Node`]s that remember where they came from.
//!
//! Every later stage (interpolation, schema validation, loading) works on this tree so that each
//! diagnostic can name `file:line:column`. Anchors, aliases and merge keys (`<<`) are resolved by
//! the parser (serde-saphyr); scalars are typed like yaml.v3 does for `docker stack deploy`.

use crate::diag::Diagnostic;
use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A place in a source file: file id (see [`crate::SourceMap`]), 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, serde::Serialize)]
pub struct Pos {
    pub file: u32,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A mapping: keys in document order.
pub type Map = IndexMap<String, Node>;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
}

/// A value with the position of the value itself and, for mapping entries, of its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// Position of the key this node is the value of (mapping entries only).
    pub key_pos: Option<Pos>,
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Self {
        Node { value, pos, key_pos: None }
    }

    /// Where to point a diagnostic about this entry: its key if it has one.
    pub fn anchor(&self) -> Pos {
        self.key_pos.unwrap_or(self.pos)
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Mapping lookup; `None` when this is not a mapping or has no such key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.get(key)
    }

    /// Follows a dotted path of mapping keys (`services.web.image`).
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, k| n.get(k))
    }

    /// Name of the YAML/JSON type, as used in messages ("a string", "a mapping").
    pub fn type_name(&self) -> &'static str {
        self.value.type_name()
    }

    /// The tree as plain JSON (positions dropped), e.g. for output or typed deserialisation.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(s) => J::Array(s.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// Builds a tree from JSON with every position set to `pos` (for values berth makes itself).
    pub fn from_json(json: &serde_json::Value, pos: Pos) -> Node {
        use serde_json::Value as J;
        let value = match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::Seq(a.iter().map(|v| Node::from_json(v, pos)).collect()),
            J::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), Node::from_json(v, pos))).collect()),
        };
        Node::new(value, pos)
    }
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parses one YAML document. `file` is the [`crate::SourceMap`] id stamped into every [`Pos`].
///
/// Errors: broken YAML, a duplicate key, a non-string key, an empty document or one whose top
/// level is not a mapping — each as a [`Diagnostic`] with the place.
pub fn parse(text: &str, file: u32) -> Result<Node, Diagnostic> {
    // The common case (no anchors, aliases, tags, merge keys; no errors) straight from the parser's
    // events; everything else through serde-saphyr, which decides errors and the rare forms.
    if let Some(node) = fast::parse(text, file) {
        return Ok(node);
    }
    parse_serde(text, file)
}

/// [`parse`] through serde-saphyr only (the reference the fast path must agree with).
fn parse_serde(text: &str, file: u32) -> Result<Node, Diagnostic> {
    let mut opts = serde_saphyr::options::Options::default();
    opts.with_snippet = false;
    // yaml.v3 (docker/cli): only true/false are booleans; `010` is octal like `0o10`.
    opts.strict_booleans = true;
    opts.legacy_octal_numbers = true;
    let raw: Option<Spanned<Raw>> =
        serde_saphyr::from_str_with_options(text, opts).map_err(|e| yaml_error(&e, file))?;
    let Some(raw) = raw else {
        return Err(Diagnostic::error("yaml.empty", Some(Pos { file, line: 1, col: 1 }), "", "the file is empty")
            .with_hint("a stack file needs at least a `services:` mapping"));
    };
    let node = into_node(raw, file, None)?;
    if !matches!(node.value, Value::Map(_)) {
        return Err(Diagnostic::error(
            "yaml.top-level",
            Some(node.pos),
            "",
            format!("top-level object must be a mapping, found {}", node.type_name()),
        ));
    }
    Ok(node)
}

fn yaml_error(e: &serde_saphyr::Error, file: u32) -> Diagnostic {
    let pos = e.location().map(|l| Pos { file, line: l.line() as u32, col: l.column() as u32 });
    let mut msg = e.to_string();
    // serde-saphyr appends " at line X column Y"; the position is shown separately.
    if let Some(i) = msg.find(" at line ") {
        msg.truncate(i);
    }
    let msg = msg.lines().next().unwrap_or("invalid YAML").trim().to_string();
    Diagnostic::error("yaml.syntax", pos, "", format!("invalid YAML: {msg}"))
}

/// What serde-saphyr hands us: values with spans, keys with spans.
enum RawKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<RawKey>, Spanned<Raw>)>),
}

struct Raw(RawKind);

/// A mapping key: a scalar. Non-string keys are an error (as in docker/cli), kept for the message.
enum RawKey {
    Str(String),
    Other(String),
}

fn into_node(raw: Spanned<Raw>, file: u32, key_pos: Option<Pos>) -> Result<Node, Diagnostic> {
    {
        let pos = Pos { file, line: raw.referenced.line() as u32, col: raw.referenced.column() as u32 };
        let value = match raw.value.0 {
            RawKind::Null => Value::Null,
            RawKind::Bool(b) => Value::Bool(b),
            RawKind::Int(i) => Value::Int(i),
            RawKind::Float(f) => Value::Float(f),
            RawKind::Str(s) => Value::Str(s),
            RawKind::Seq(items) => {
                Value::Seq(items.into_iter().map(|i| into_node(i, file, None)).collect::<Result<_, _>>()?)
            }
            RawKind::Map(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    let kpos = Pos { file, line: k.referenced.line() as u32, col: k.referenced.column() as u32 };
                    let name = match k.value {
                        RawKey::Str(s) => s,
                        RawKey::Other(s) => {
                            return Err(Diagnostic::error("yaml.key", Some(kpos), "", format!("non-string key `{s}`"))
                                .with_hint("quote the key to make it a string"));
                        }
                    };
                    let node = into_node(v, file, Some(kpos))?;
                    // Later entries win, as with merge keys; a literal duplicate is rejected by the parser.
                    map.insert(name, node);
                }
                Value::Map(map)
            }
        };
        Ok(Node { value, pos, key_pos })
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor).map(Raw)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawKind, E> {
        Ok(RawKind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawKind, E> {
        Ok(RawKind::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawKind, E> {
        Ok(i64::try_from(v).map(RawKind::Int).unwrap_or(RawKind::Float(v as f64)))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawKind, E> {
        Ok(i64::try_from(v).map(RawKind::Int).unwrap_or(RawKind::Float(v as f64)))
    }
    fn visit_u128<E>(self, v: u128) -> Result<RawKind, E> {
        Ok(i64::try_from(v).map(RawKind::Int).unwrap_or(RawKind::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawKind, E> {
        Ok(RawKind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawKind, E> {
        Ok(RawKind::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawKind, E> {
        Ok(RawKind::Str(v))
    }
    fn visit_unit<E>(self) -> Result<RawKind, E> {
        Ok(RawKind::Null)
    }
    fn visit_none<E>(self) -> Result<RawKind, E> {
        Ok(RawKind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawKind, D::Error> {
        d.deserialize_any(RawVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawKind, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(item);
        }
        Ok(RawKind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawKind, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = map.next_entry::<Spanned<RawKey>, Spanned<Raw>>()? {
            entries.push((k, v));
        }
        Ok(RawKind::Map(entries))
    }
}

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = RawKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawKey, E> {
                Ok(RawKey::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawKey, E> {
                Ok(RawKey::Str(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawKey, E> {
                Ok(RawKey::Other(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawKey, E> {
                Ok(RawKey::Other(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawKey, E> {
                Ok(RawKey::Other(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawKey, E> {
                Ok(RawKey::Other(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<RawKey, E> {
                Ok(RawKey::Other("null".into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawKey, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(RawKey::Other("[...]".into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawKey, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(RawKey::Other("{...}".into()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

/// A direct builder from granit-parser events (the parser under serde-saphyr) for plain documents.
///
/// It gives exactly what the serde-saphyr path gives, or `None` ("not sure, ask serde-saphyr") for
/// anything outside the common subset: parse errors, anchors, aliases, tags, merge keys, duplicate
/// or non-string keys, several documents, non-finite floats, and documents near serde-saphyr's
/// budget limits. Scalars are typed with serde-saphyr's rules for untagged values (strict YAML 1.2
/// booleans, legacy octal numbers).
mod fast {
    use super::{Map, Node, Pos, Value};
    use granit_parser::{Event, Parser, ScalarStyle, Span, StrInput};
    use std::borrow::Cow;

    /// Stay well inside serde-saphyr's default budget (250 000 nodes, depth 64, 64 MiB of scalars).
    const MAX_NODES: usize = 150_000;
    const MAX_DEPTH: usize = 48;
    const MAX_BYTES: usize = 16 << 20;

    struct Builder<'a> {
        parser: Parser<'a, StrInput<'a>>,
        file: u32,
        nodes: usize,
        /// Items of the open sequences, innermost last (moved out at the end, so each list is
        /// allocated once at its final size).
        items: Vec<Node>,
        /// Entries of the open mappings, innermost last.
        entries: Vec<(String, Node)>,
    }

    pub(super) fn parse(text: &str, file: u32) -> Option<Node> {
        if text.len() > MAX_BYTES {
            return None;
        }
        let mut b = Builder {
            parser: Parser::new_from_str(text),
            file,
            nodes: 0,
            items: Vec::with_capacity(64),
            entries: Vec::with_capacity(64),
        };
        match b.next()?.0 {
            Event::StreamStart => {}
            _ => return None,
        }
        match b.next()?.0 {
            Event::DocumentStart(_, None) => {}
            _ => return None,
        }
        let (ev, span) = b.next()?;
        if !matches!(ev, Event::MappingStart(..)) {
            return None;
        }
        let node = b.node(ev, span, None, 0)?;
        match b.next()?.0 {
            Event::DocumentEnd => {}
            _ => return None,
        }
        match b.next()?.0 {
            Event::StreamEnd => {}
            _ => return None,
        }
        Some(node)
    }

    impl<'a> Builder<'a> {
        fn next(&mut self) -> Option<(Event<'a>, Span)> {
            self.parser.next_event()?.ok()
        }

        fn pos(&self, span: &Span) -> Pos {
            Pos { file: self.file, line: span.start.line() as u32, col: span.start.col() as u32 + 1 }
        }

        fn node(&mut self, ev: Event<'a>, span: Span, key_pos: Option<Pos>, depth: usize) -> Option<Node> {
            self.nodes += 1;
            if self.nodes > MAX_NODES || depth > MAX_DEPTH {
                return None;
            }
            let pos = self.pos(&span);
            let value = match ev {
                Event::Scalar(s, style, 0, None) => scalar(s, style)?,
                Event::SequenceStart(_, 0, None) => {
                    let start = self.items.len();
                    loop {
                        let (ev, span) = self.next()?;
                        if matches!(ev, Event::SequenceEnd) {
                            break;
                        }
                        let item = self.node(ev, span, None, depth + 1)?;
                        self.items.push(item);
                    }
                    Value::Seq(self.items.drain(start..).collect())
                }
                Event::MappingStart(_, 0, None) => {
                    let start = self.entries.len();
                    loop {
                        let (ev, span) = self.next()?;
                        let key = match ev {
                            Event::MappingEnd => break,
                            Event::Scalar(k, style, 0, None) => match scalar(k, style)? {
                                Value::Str(k) if k != "<<" => k,
                                _ => return None,
                            },
                            _ => return None,
                        };
                        self.nodes += 1;
                        let kpos = self.pos(&span);
                        let (ev, span) = self.next()?;
                        let value = self.node(ev, span, Some(kpos), depth + 1)?;
                        self.entries.push((key, value));
                    }
                    let mut map = Map::with_capacity(self.entries.len() - start);
                    for (key, value) in self.entries.drain(start..) {
                        if map.insert(key, value).is_some() {
                            return None;
                        }
                    }
                    Value::Map(map)
                }
                _ => return None,
            };
            Some(Node { value, pos, key_pos })
        }
    }

    /// An untagged scalar as serde-saphyr's `deserialize_any` types it; `None` when that would be
    /// an error (non-finite float).
    fn scalar(s: Cow<'_, str>, style: ScalarStyle) -> Option<Value> {
        if style != ScalarStyle::Plain {
            return Some(Value::Str(s.into_owned()));
        }
        let t = s.trim_matches([' ', '\t', '\r', '\n']);
        match s.as_ref() {
            "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
            _ => {}
        }
        match t {
            "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
            "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
            _ => {}
        }
        let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
        // Numbers start with a digit or `.` after the sign; anything else is a string (Rust's
        // float parser would take `inf`/`nan`, but serde-saphyr refuses those spellings).
        if !unsigned.as_bytes().first().is_some_and(|b| b.is_ascii_digit() || *b == b'.') {
            return Some(Value::Str(s.into_owned()));
        }
        if let Some(neg) = t.strip_prefix('-') {
            if let Some(v) = parse_int(neg).and_then(|m| i64::try_from(-m).ok()) {
                return Some(Value::Int(v));
            }
        } else if let Some(v) = parse_int(t.strip_prefix('+').unwrap_or(t)).and_then(|m| u64::try_from(m).ok()) {
            return Some(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)));
        }
        // `.nan`, `.inf`: non-finite, which serde-saphyr rejects in untyped values.
        if matches!(unsigned, ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF") {
            return None;
        }
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(Value::Float(v)),
            // Overflow (`1e999`) or `inf`/`nan` spellings: serde-saphyr's business.
            Ok(_) => None,
            Err(_) => Some(Value::Str(s.into_owned())),
        }
    }

    /// serde-saphyr's integer syntax with legacy octal (sign already removed): `0x`, `0o`, `0b`
    /// prefixes, a leading `0` for octal, `_` between digits. The magnitude, if it fits an i128.
    fn parse_int(rest: &str) -> Option<i128> {
        let (radix, digits) = if let Some(r) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            (16, r.strip_prefix('_').unwrap_or(r))
        } else if let Some(r) = rest.strip_prefix("0o").or_else(|| rest.strip_prefix("0O")) {
            (8, r.strip_prefix('_').unwrap_or(r))
        } else if let Some(r) = rest.strip_prefix("0b").or_else(|| rest.strip_prefix("0B")) {
            (2, r.strip_prefix('_').unwrap_or(r))
        } else if rest == "0" {
            (8, "0")
        } else if let Some(r) = rest.strip_prefix('0') {
            (8, r.strip_prefix('_').unwrap_or(r))
        } else {
            (10, rest)
        };
        let bytes = digits.as_bytes();
        let mut val: i128 = 0;
        let mut saw = false;
        for (i, &b) in bytes.iter().enumerate() {
            let d = match b {
                b'_' => {
                    if i == 0 || bytes[i - 1] == b'_' || i + 1 >= bytes.len() || bytes[i + 1] == b'_' {
                        return None;
                    }
                    continue;
                }
                b'0'..=b'9' => u32::from(b - b'0'),
                b'a'..=b'f' if radix > 10 => 10 + u32::from(b - b'a'),
                b'A'..=b'F' if radix > 10 => 10 + u32::from(b - b'A'),
                _ => return None,
            };
            if d >= radix {
                return None;
            }
            val = val.checked_mul(i128::from(radix))?.checked_add(i128::from(d))?;
            saw = true;
        }
        saw.then_some(val)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Node {
        parse(s, 0).unwrap()
    }

    #[test]
    fn positions_point_at_keys_and_values() {
        let n = p("services:\n  web:\n    image: nginx\n");
        let img = n.at(&["services", "web", "image"]).unwrap();
        assert_eq!(img.as_str(), Some("nginx"));
        assert_eq!((img.pos.line, img.pos.col), (3, 12));
        assert_eq!(img.key_pos.map(|k| (k.line, k.col)), Some((3, 5)));
    }

    #[test]
    fn scalars_are_typed_like_yaml_v3() {
        let n = p("a: 1\nb: 1.5\nc: true\nd: yes\ne: ~\nf: '1'\ng: 010\nh: 0o10\ni: 0x10\n");
        let m = n.as_map().unwrap();
        assert_eq!(m["a"].value, Value::Int(1));
        assert_eq!(m["b"].value, Value::Float(1.5));
        assert_eq!(m["c"].value, Value::Bool(true));
        assert_eq!(m["d"].value, Value::Str("yes".into()));
        assert_eq!(m["e"].value, Value::Null);
        assert_eq!(m["f"].value, Value::Str("1".into()));
        assert_eq!(m["g"].value, Value::Int(8));
        assert_eq!(m["h"].value, Value::Int(8));
        assert_eq!(m["i"].value, Value::Int(16));
    }

    #[test]
    fn anchors_and_merge_keys_resolve() {
        let n = p("x-base: &b\n  image: a\n  restart: always\nservices:\n  s:\n    <<: *b\n    image: c\n");
        let s = n.at(&["services", "s"]).unwrap().as_map().unwrap();
        assert_eq!(s["image"].as_str(), Some("c"));
        assert_eq!(s["restart"].as_str(), Some("always"));
    }

    #[test]
    fn broken_yaml_names_the_line() {
        let e = parse("services:\n  web:\n    image: [a\n", 0).unwrap_err();
        assert_eq!(e.code, "yaml.syntax");
        assert!(e.pos.is_some(), "{e:?}");
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        assert_eq!(parse("- a\n", 0).unwrap_err().code, "yaml.top-level");
        assert_eq!(parse("", 0).unwrap_err().code, "yaml.empty");
    }

    fn yaml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                yaml_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(p);
            }
        }
    }

    /// The fast path either agrees with serde-saphyr exactly (values, positions) or steps aside.
    fn fast_agrees(text: &str) -> bool {
        match fast::parse(text, 3) {
            Some(n) => {
                assert_eq!(Ok(n), parse_serde(text, 3), "fast path differs on:\n{text}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn fast_path_agrees_with_serde_saphyr_on_every_fixture() {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/compose-suites"));
        let mut files = Vec::new();
        yaml_files(root, &mut files);
        assert!(files.len() > 100, "fixtures not found under {}", root.display());
        let mut taken = 0;
        for f in &files {
            let Ok(text) = std::fs::read_to_string(f) else { continue };
            if fast_agrees(&text) {
                taken += 1;
            }
        }
        // Most real files are plain YAML: the fast path must not quietly step aside for them.
        assert!(taken * 2 > files.len(), "fast path took only {taken} of {} files", files.len());
    }

    #[test]
    fn fast_path_types_scalars_like_serde_saphyr() {
        let scalars = [
            "0",
            "00",
            "010",
            "08",
            "0x1F",
            "0X_1f",
            "0o17",
            "0b101",
            "0b102",
            "0_",
            "0x",
            "1_000",
            "1__0",
            "_1",
            "1_",
            "+1",
            "-1",
            "+-1",
            "-0",
            "-010",
            "-0x10",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "340282366920938463463374607431768211456",
            "1.5",
            ".5",
            "5.",
            "-.5",
            "+.5",
            "1e3",
            "1E-3",
            "1e999",
            "-1e999",
            ".inf",
            "-.inf",
            "+.Inf",
            ".nan",
            ".NaN",
            "inf",
            "nan",
            "Infinity",
            "-inf",
            "1.0.0",
            "10s",
            "256M",
            "1_0.5",
            "0.5_",
            "3.10",
            "true",
            "True",
            "TRUE",
            "tRue",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "false",
            "null",
            "Null",
            "NULL",
            "nULL",
            "~",
            "-",
            ".",
            "..",
            "+",
            "1-2",
            "1:2",
            "08:00",
            "0o8",
            "1e",
            "0x8000000000000000",
            "-0x8000000000000000",
            "0b",
            "é",
            "1 2",
        ];
        for v in scalars {
            for form in [format!("k: {v}\n"), format!("k: '{v}'\n"), format!("k: [{v}]\n"), format!("{v}: x\n")] {
                fast_agrees(&form);
            }
        }
    }

    #[test]
    fn fast_path_steps_aside_for_rare_forms() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "x: &b {c: 1}\ny:\n  <<: *b\n",
            "a: 1\na: 2\n",
            "a: 1\n---\nb: 2\n",
            "1: x\n",
            "? [a]\n: x\n",
            "a: .inf\n",
            "- a\n",
            "",
            "a: [b\n",
        ] {
            assert!(fast::parse(text, 0).is_none(), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_on_generated_documents(
            entries in proptest::collection::vec(("[a-z<~][a-z0-9_.-]{0,6}", "[-+.0-9a-zA-Z_ ~:]{0,10}", 0..6usize), 1..8)
        ) {
            let mut text = String::new();
            for (k, v, style) in &entries {
                let line = match style {
                    0 => format!("{k}: {v}\n"),
                    1 => format!("{k}: '{v}'\n"),
                    2 => format!("{k}:\n  - {v}\n  - x\n"),
                    3 => format!("{k}: {{a: {v}, b: [{v}]}}\n"),
                    4 => format!("{k}:\n  n: \"{v}\"\n"),
                    _ => format!("{k}: |\n  {v}\n"),
                };
                text.push_str(&line);
            }
            let fast = fast::parse(&text, 0);
            if let Some(n) = fast {
                proptest::prop_assert_eq!(Ok(n), parse_serde(&text, 0), "{}", text);
            }
        }
    }

    #[test]
    fn non_string_keys_are_rejected() {
        assert_eq!(parse("services:\n  1: {}\n", 0).unwrap_err().code, "yaml.key");
    }
}
