//! Validation of a document against the compose file format of its `version` (3.0–3.13).
//!
//! `docker stack deploy` checks every (interpolated) file against docker/cli's JSON Schema for the
//! file's version and stops at the first, most specific error. berth gives the same verdict from
//! a Rust description of the format ([`spec`]) but reports every problem, each with its position,
//! key path, what was expected and a hint (did you mean, needs a later version, `docker compose`
//! only key, Swarm way of doing it).
//!
//! Order of checks in a load, as in docker/cli: [`version_of`] → [`swarm_checks`] (forbidden keys
//! stop the load) → interpolation → [`validate`].

mod format;
mod hints;
mod spec;

use crate::diag::Diagnostic;
use crate::yaml::{Node, Pos, Value};
use spec::{Additional, BOOLEAN, Format, INTEGER, NULL, NUMBER, Obj, STRING, Shape, Types};

/// A compose file format version (3.0 ..= 3.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version (always 3).
    pub major: u8,
    /// Minor version (0..=13).
    pub minor: u8,
}

impl Version {
    /// The newest format docker/cli knows (3.13), used for files without `version:` or with `version: "3"`.
    pub const LATEST: Version = Version { major: 3, minor: 13 };
    /// The oldest format `docker stack deploy` reads (3.0).
    pub const OLDEST: Version = Version { major: 3, minor: 0 };

    /// Every supported version, oldest first.
    pub fn all() -> impl Iterator<Item = Version> {
        (Self::OLDEST.minor..=Self::LATEST.minor).map(|minor| Version { major: 3, minor })
    }

    /// Parses `"3.8"` (exactly as docker/cli names its schema files: `3.0` ..= `3.13`).
    pub fn parse(s: &str) -> Option<Version> {
        let minor = s.strip_prefix("3.")?;
        if minor.is_empty() || minor.len() > 2 || (minor.len() == 2 && minor.starts_with('0')) {
            return None;
        }
        let minor: u8 = minor.parse().ok()?;
        (minor <= Self::LATEST.minor).then_some(Version { major: 3, minor })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The file's `version:` (string or number, like docker/cli's `schema.Version`), or LATEST when absent.
/// Unsupported versions (1, 2.x, 4, garbage) are a Diagnostic that says which versions berth reads.
///
/// Exactly as docker/cli 28: the value is formatted like Go's `%v` (`3.10` unquoted is the number
/// 3.1), and `""` or `"3"` mean the latest format (3.13), not 3.0. A number that names a supported
/// version is accepted here; [`validate`] then reports it, because the schema wants a string.
pub fn version_of(doc: &Node) -> Result<Version, Diagnostic> {
    let Some(node) = doc.get("version") else {
        return Ok(Version::LATEST);
    };
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "<nil>".to_string(),
        Value::Seq(_) | Value::Map(_) => {
            return Err(version_error(node, &format!("`version` must be a string, found {}", node.type_name())));
        }
    };
    if text.is_empty() || text == "3" {
        return Ok(Version::LATEST);
    }
    Version::parse(&text).ok_or_else(|| version_error(node, &format!("unsupported compose file version `{text}`")))
}

fn version_error(node: &Node, message: &str) -> Diagnostic {
    let hint = match node.as_str().map(|s| s.split('.').next().unwrap_or("")) {
        Some("1" | "2") => {
            "berth reads stack files of version 3.0 to 3.13 (what `docker stack deploy` reads); \
            version 2 files are for docker-compose: move `mem_limit`/`cpus` to `deploy.resources`, then set `version: \"3.13\"` \
            or remove the line"
        }
        _ => {
            "berth reads stack files of version 3.0 to 3.13 (what `docker stack deploy` reads); \
            use e.g. `version: \"3.13\"` or remove the line"
        }
    };
    Diagnostic::error("schema.version", Some(node.pos), "version", message).with_hint(hint)
}

/// Validates one interpolated document against the format of `version`. Returns every error.
///
/// Same verdict as docker/cli's `schema.Validate` (draft-04 JSON Schema plus the `ports` and
/// `duration` formats). Forbidden service keys (`mem_limit`, ...) are reported here as unknown keys
/// too; run [`swarm_checks`] first and stop on its errors to get docker/cli's message for them.
pub fn validate(doc: &Node, version: Version) -> Vec<Diagnostic> {
    let mut v = Validator { version, path: Vec::with_capacity(8), out: Vec::new() };
    v.object(doc, &spec::ROOT);
    let mut out = v.out;
    out.sort_by_key(|d| d.pos.map(|p| (p.line, p.col)));
    out
}

/// Keys that Swarm ignores or refuses, as docker/cli's loader reports them: forbidden properties (types.ForbiddenProperties:
/// `extends`, `volume_driver`, `volumes_from`, `cpu_quota`, `cpu_shares`, `cpuset`, `mem_limit`, `memswap_limit` ->
/// errors with docker/cli's hint text) and unsupported ones (types.UnsupportedProperties: `build`, `cgroupns_mode`,
/// `cgroup_parent`, `devices`, `domainname`, `external_links`, `ipc`, `links`, `mac_address`, `network_mode`, `pid`,
/// `privileged`, `restart`, `security_opt`, `shm_size`, `userns_mode` -> warnings "ignored by Swarm" with a hint of the
/// Swarm way), plus the deprecated `container_name` and `expose` (warnings).
/// `build` is not reported: berth builds the image (and on several machines pushes it where every node pulls it).
pub fn swarm_checks(doc: &Node) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(services) = doc.get("services").and_then(Node::as_map) else {
        return out;
    };
    for (name, service) in services {
        let Some(map) = service.as_map() else { continue };
        for (key, value) in map {
            let path = || format!("services.{name}.{key}");
            if let Some(text) = hints::forbidden(key) {
                out.push(
                    Diagnostic::error(
                        "swarm.forbidden",
                        Some(value.anchor()),
                        path(),
                        format!("`{key}` is not allowed in a stack file"),
                    )
                    .with_hint(text),
                );
            } else if key == "build" {
                // Swarm ignores `build`, but berth does not: `berth deploy` builds the image itself, and on
                // several machines pushes it where every node pulls it (`x-berth.registry`, the target's
                // ECR repository, or the registry berth runs on the swarm).
            } else if let Some(hint) = hints::ignored(key) {
                out.push(
                    Diagnostic::warning(
                        "swarm.ignored",
                        Some(value.anchor()),
                        path(),
                        format!("`{key}` is ignored by Swarm"),
                    )
                    .with_hint(hint),
                );
            }
        }
    }
    out
}

/// The berth description of `version` rendered as a draft-04 JSON Schema (`$ref`s expanded), for
/// comparing it with docker/cli's schema files and for editors.
pub fn json_schema(version: Version) -> serde_json::Value {
    let mut root = render_obj(&spec::ROOT, version);
    if let Some(m) = root.as_object_mut() {
        m.insert("$schema".into(), "http://json-schema.org/draft-04/schema#".into());
    }
    root
}

fn render_types(t: Types) -> serde_json::Value {
    let names: Vec<&str> =
        [(STRING, "string"), (NUMBER, "number"), (INTEGER, "integer"), (BOOLEAN, "boolean"), (NULL, "null")]
            .iter()
            .filter(|(bit, _)| t & bit != 0)
            .map(|(_, n)| *n)
            .collect();
    if names.len() == 1 { names[0].into() } else { names.into() }
}

fn render(shape: &Shape, v: Version) -> serde_json::Value {
    use serde_json::json;
    match shape {
        Shape::Scalar(t, fmt) => {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), render_types(*t));
            if let Some(f) = fmt {
                let name = match f {
                    Format::Ports => "ports",
                    Format::Duration => "duration",
                    Format::Expose => "expose",
                };
                m.insert("format".into(), name.into());
            }
            m.into()
        }
        Shape::Enum(values) => json!({"type": "string", "enum": values}),
        Shape::IntMin(min) => json!({"type": "integer", "minimum": min}),
        Shape::Array(items, unique) => {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), "array".into());
            m.insert("items".into(), render(items, v));
            if *unique {
                m.insert("uniqueItems".into(), true.into());
            }
            m.into()
        }
        Shape::Object(o) => render_obj(o, v),
        Shape::OneOf(alts) => json!({"oneOf": alts.iter().map(|a| render(a, v)).collect::<Vec<_>>()}),
        Shape::Versioned(_) => render(resolve(shape, v), v),
    }
}

fn render_obj(o: &Obj, v: Version) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    let types = if o.also == 0 {
        "object".into()
    } else {
        let mut t = vec!["object"];
        if o.also & BOOLEAN != 0 {
            t.push("boolean");
        }
        if o.also & NULL != 0 {
            t.push("null");
        }
        serde_json::Value::from(t)
    };
    m.insert("type".into(), types);
    let props: serde_json::Map<_, _> =
        o.props.iter().filter(|p| p.since <= v).map(|p| (p.name.to_string(), render(&p.shape, v))).collect();
    if !props.is_empty() {
        m.insert("properties".into(), props.into());
    }
    let mut patterns: serde_json::Map<_, _> =
        o.patterns.iter().map(|(pat, s)| (pat.regex().to_string(), render(s, v))).collect();
    if o.extensions.is_some_and(|since| since <= v) {
        patterns.insert("^x-".into(), serde_json::json!({}));
    }
    if !patterns.is_empty() {
        m.insert("patternProperties".into(), patterns.into());
    }
    if additional_forbidden(o, v) {
        m.insert("additionalProperties".into(), false.into());
    }
    if !o.required.is_empty() && v < o.required_before {
        m.insert("required".into(), o.required.iter().map(|s| serde_json::Value::from(*s)).collect());
    }
    m.into()
}

fn additional_forbidden(o: &Obj, v: Version) -> bool {
    match o.additional {
        Additional::Allowed => false,
        Additional::Forbidden => true,
        Additional::ForbiddenBefore(until) => v < until,
    }
}

/// The shape that applies at `v` (unwraps [`Shape::Versioned`]).
pub(super) fn resolve(shape: &Shape, v: Version) -> &Shape {
    match shape {
        Shape::Versioned(list) => {
            let mut cur = &list[0].1;
            for (since, s) in list.iter() {
                if *since <= v {
                    cur = s;
                }
            }
            resolve(cur, v)
        }
        s => s,
    }
}

/// One step of a key path.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Validator<'a> {
    version: Version,
    path: Vec<Seg<'a>>,
    out: Vec<Diagnostic>,
}

fn kind_of(node: &Node) -> Types {
    match &node.value {
        Value::Null => NULL,
        Value::Bool(_) => BOOLEAN,
        Value::Int(_) => INTEGER | NUMBER,
        // JSON Schema "integer" accepts 3.0 (gojsonschema checks the number is integral).
        Value::Float(f) if f.fract() == 0.0 && f.is_finite() => INTEGER | NUMBER,
        Value::Float(_) => NUMBER,
        Value::Str(_) => STRING,
        Value::Seq(_) | Value::Map(_) => 0,
    }
}

/// Whether a node's JSON type is accepted by a shape's outermost `type` (oneOf: by any branch).
fn type_matches(node: &Node, shape: &Shape, v: Version) -> bool {
    match resolve(shape, v) {
        Shape::Scalar(t, _) => kind_of(node) & t != 0,
        Shape::Enum(_) => matches!(node.value, Value::Str(_)),
        Shape::IntMin(_) => kind_of(node) & INTEGER != 0,
        Shape::Array(..) => matches!(node.value, Value::Seq(_)),
        Shape::Object(o) => matches!(node.value, Value::Map(_)) || kind_of(node) & o.also != 0,
        Shape::OneOf(alts) => alts.iter().any(|a| type_matches(node, a, v)),
        Shape::Versioned(_) => unreachable!("resolved"),
    }
}

/// "a string", "a list of strings", "a mapping or null" — what a shape expects, for messages.
fn expected(shape: &Shape, v: Version) -> String {
    match resolve(shape, v) {
        Shape::Scalar(t, _) => types_phrase(*t),
        Shape::Enum(values) => {
            format!("one of {}", values.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))
        }
        Shape::IntMin(min) => format!("an integer of at least {min}"),
        Shape::Array(items, _) => match resolve(items, v) {
            Shape::Scalar(STRING, _) => "a list of strings".into(),
            Shape::Object(_) => "a list of mappings".into(),
            _ => "a list".into(),
        },
        Shape::Object(o) => {
            if o.also == 0 {
                "a mapping".into()
            } else {
                format!("a mapping or {}", types_phrase(o.also))
            }
        }
        Shape::OneOf(alts) => {
            let parts: Vec<String> = alts.iter().map(|a| expected(a, v)).collect();
            join_or(&parts)
        }
        Shape::Versioned(_) => unreachable!("resolved"),
    }
}

fn types_phrase(t: Types) -> String {
    let mut parts = Vec::new();
    for (bit, name) in
        [(STRING, "a string"), (NUMBER, "a number"), (INTEGER, "an integer"), (BOOLEAN, "a boolean"), (NULL, "null")]
    {
        if t & bit != 0 && !(bit == INTEGER && t & NUMBER != 0) {
            parts.push(name.to_string());
        }
    }
    join_or(&parts)
}

fn join_or(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

impl<'a> Validator<'a> {
    fn path_string(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            if !s.is_empty() {
                s.push('.');
            }
            match seg {
                Seg::Key(k) => s.push_str(k),
                Seg::Index(i) => s.push_str(&i.to_string()),
            }
        }
        s
    }

    fn error(&mut self, code: &'static str, pos: Pos, message: String, hint: Option<String>) {
        let mut d = Diagnostic::error(code, Some(pos), self.path_string(), message);
        d.hint = hint;
        self.out.push(d);
    }

    fn check(&mut self, node: &'a Node, shape: &'static Shape) {
        let shape = resolve(shape, self.version);
        match shape {
            Shape::Scalar(t, fmt) => {
                if kind_of(node) & t == 0 {
                    self.type_error(node, shape);
                } else if let Some(f) = fmt {
                    self.format(node, *f);
                }
            }
            Shape::Enum(values) => match node.as_str() {
                Some(s) if values.contains(&s) => {}
                Some(s) => {
                    let hint = hints::closest(s, values.iter().copied()).map(|c| format!("did you mean `{c}`?"));
                    self.error(
                        "schema.enum",
                        node.pos,
                        format!("expected {}, found `{s}`", expected(shape, self.version)),
                        hint,
                    );
                }
                None => self.type_error(node, shape),
            },
            Shape::IntMin(min) => {
                if kind_of(node) & INTEGER == 0 {
                    self.type_error(node, shape);
                } else {
                    let n = match node.value {
                        Value::Int(i) => i as f64,
                        Value::Float(f) => f,
                        _ => 0.0,
                    };
                    if n < *min as f64 {
                        self.error("schema.range", node.pos, format!("expected at least {min}, found {n}"), None);
                    }
                }
            }
            Shape::Array(items, unique) => {
                let Some(seq) = node.as_seq() else {
                    return self.type_error(node, shape);
                };
                for (i, item) in seq.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    self.check(item, items);
                    self.path.pop();
                }
                if *unique {
                    self.unique(seq);
                }
            }
            Shape::Object(o) => {
                if node.as_map().is_some() {
                    self.object(node, o);
                } else if kind_of(node) & o.also == 0 {
                    self.type_error(node, shape);
                }
            }
            Shape::OneOf(alts) => self.one_of(node, shape, alts),
            Shape::Versioned(_) => unreachable!("resolved"),
        }
    }

    fn one_of(&mut self, node: &'a Node, shape: &'static Shape, alts: &'static [Shape]) {
        let v = self.version;
        let mut matching = alts.iter().filter(|a| type_matches(node, a, v));
        match (matching.next(), matching.next()) {
            (None, _) => self.type_error(node, shape),
            (Some(only), None) => self.check(node, only),
            _ => {
                let many = alts.iter().filter(|a| type_matches(node, a, v));
                // Not reachable with docker/cli's schemas (their alternatives differ in type), kept general.
                let before = self.out.len();
                let mut passing = 0;
                let mut first_errors = None;
                for alt in many {
                    let start = self.out.len();
                    self.check(node, alt);
                    if self.out.len() == start {
                        passing += 1;
                    } else if first_errors.is_none() {
                        first_errors = Some(self.out[start..].to_vec());
                    }
                    self.out.truncate(start);
                }
                self.out.truncate(before);
                match passing {
                    1 => {}
                    0 => self.out.extend(first_errors.unwrap_or_default()),
                    _ => self.error(
                        "schema.one-of",
                        node.pos,
                        format!("the value matches more than one of: {}", expected(shape, v)),
                        None,
                    ),
                }
            }
        }
    }

    fn type_error(&mut self, node: &Node, shape: &Shape) {
        let exp = expected(shape, self.version);
        let hint = hints::type_hint(self.last_key(), node, shape, self.version);
        self.error("schema.type", node.pos, format!("expected {exp}, found {}", node.type_name()), hint);
    }

    fn last_key(&self) -> Option<&'a str> {
        match self.path.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }

    fn format(&mut self, node: &Node, f: Format) {
        let result = match (f, &node.value) {
            (Format::Expose, _) => Ok(()),
            (Format::Duration, Value::Str(s)) => format::check_duration(s),
            (Format::Duration, _) => Err("a duration must be a string".to_string()),
            (Format::Ports, Value::Str(s)) => format::check_port_spec(s),
            (Format::Ports, Value::Int(i)) => format::check_port_number(*i as f64),
            (Format::Ports, Value::Float(x)) => format::check_port_number(*x),
            (Format::Ports, _) => Ok(()),
        };
        if let Err(why) = result {
            let shown = match &node.value {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::Float(x) => x.to_string(),
                _ => String::new(),
            };
            let why = match f {
                Format::Duration => format!("invalid duration `{shown}`: {why}"),
                _ => format!("invalid port `{shown}`: {why}"),
            };
            let hint = match f {
                Format::Duration => {
                    "write a Go duration: a number and a unit (`ns`, `us`, `ms`, `s`, `m`, `h`), e.g. `10s`, `1m30s`, `500ms`"
                }
                _ => {
                    "write `[IP:][PUBLISHED[-RANGE]:]TARGET[-RANGE][/tcp|udp|sctp]`, e.g. `8080:80` or `53:53/udp`, or use the long syntax (`target:`, `published:`)"
                }
            };
            self.error("schema.format", node.pos, why, Some(hint.to_string()));
        }
    }

    fn unique(&mut self, seq: &'a [Node]) {
        for (i, item) in seq.iter().enumerate() {
            if let Some(first) = seq[..i].iter().find(|prev| json_eq(prev, item)) {
                self.path.push(Seg::Index(i));
                let shown = match &item.value {
                    Value::Str(s) => format!("`{s}`"),
                    _ => format!("`{}`", item.to_json()),
                };
                self.error(
                    "schema.unique",
                    item.pos,
                    format!("duplicate item {shown} (first at line {})", first.pos.line),
                    Some("remove the repeated item".into()),
                );
                self.path.pop();
            }
        }
    }

    fn object(&mut self, node: &'a Node, o: &'static Obj) {
        let Some(map) = node.as_map() else {
            return;
        };
        let v = self.version;
        for (key, value) in map {
            self.path.push(Seg::Key(key));
            let mut known = false;
            // Names are unique within an object (shape changes use `Shape::Versioned`).
            if let Some(prop) = o.props.iter().find(|p| p.name == key)
                && prop.since <= v
            {
                known = true;
                self.check(value, &prop.shape);
            }
            for (pat, shape) in o.patterns {
                if pat.matches(key) {
                    known = true;
                    self.check(value, shape);
                }
            }
            if !known && o.extensions.is_some_and(|since| since <= v) && key.starts_with("x-") {
                known = true;
            }
            if !known && additional_forbidden(o, v) {
                let (message, hint) = hints::unknown_key(key, o, v);
                self.error("schema.unknown-key", value.anchor(), message, hint);
            }
            self.path.pop();
        }
        if v < o.required_before {
            for req in o.required {
                if !map.contains_key(*req) {
                    let pos = node.anchor();
                    let hint = hints::required_hint(req);
                    self.error("schema.required", pos, format!("missing required key `{req}`"), hint);
                }
            }
        }
    }
}

/// What kind of value a shape wants, for type hints.
pub(super) fn shape_wants(shape: &Shape, v: Version) -> Types {
    match resolve(shape, v) {
        Shape::Scalar(t, _) => *t,
        Shape::Enum(_) => STRING,
        Shape::IntMin(_) => INTEGER,
        Shape::Object(o) => o.also,
        Shape::OneOf(alts) => alts.iter().map(|a| shape_wants(a, v)).fold(0, |a, b| a | b),
        _ => 0,
    }
}

/// JSON equality as gojsonschema's `uniqueItems` sees it (1 == 1.0, key order ignored).
fn json_eq(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Seq(x), Value::Seq(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, va)| y.get(k).is_some_and(|vb| json_eq(va, vb)))
        }
        (x, y) => x == y,
    }
}

#[cfg(test)]
mod tests;
