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
    let mut opts = serde_saphyr::options::Options::default();
    opts.with_snippet = false;
    // yaml.v3 (docker/cli): only true/false are booleans; `010` is octal like `0o10`.
    opts.strict_booleans = true;
    opts.legacy_octal_numbers = true;
    let raw: Option<Spanned<Raw>> = serde_saphyr::from_str_with_options(text, opts).map_err(|e| yaml_error(&e, file))?;
    let Some(raw) = raw else {
        return Err(Diagnostic::error("yaml.empty", Some(Pos { file, line: 1, col: 1 }), "", "the file is empty")
            .with_hint("a stack file needs at least a `services:` mapping"));
    };
    let node = into_node(raw, file, None)?;
    if !matches!(node.value, Value::Map(_)) {
        return Err(Diagnostic::error("yaml.top-level", Some(node.pos), "", format!("top-level object must be a mapping, found {}", node.type_name())));
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
            RawKind::Seq(items) => Value::Seq(items.into_iter().map(|i| into_node(i, file, None)).collect::<Result<_, _>>()?),
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

    #[test]
    fn non_string_keys_are_rejected() {
        assert_eq!(parse("services:\n  1: {}\n", 0).unwrap_err().code, "yaml.key");
    }
}
