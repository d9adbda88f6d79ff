//! `${VAR}` interpolation exactly as docker/cli's `template` and `interpolation` packages do it.
//!
//! The template language is docker/cli's (what `docker stack deploy` runs), not compose-go's: no nested
//! `${A:-${B}}`, no `${A:+x}`, and `$}` is an error. Its quirks are reproduced on purpose, because a file must
//! mean the same thing to berth as to `docker stack deploy`:
//!
//! * an unbraced `$NAME` may carry a modifier too: `$A-x y` is `${A-x y}` (everything up to the next `}`);
//! * the modifiers are tried in the order `:-`, `-`, `:?`, `?` on the whole text, so `${A:?must-set}` is read as
//!   "`A:?must` with default `set`" and never fails;
//! * an error in one `$…` is forgotten when a later `$…` in the same string substitutes fine
//!   (`"$} ${A}"` is accepted and gives `"} <A>"`).

use crate::diag::Diagnostic;
use crate::env::Env;
use crate::yaml::{Node, Pos, Value};

/// Errors of the `${}` template language.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// A malformed `$` sequence (docker/cli's `InvalidTemplateError`): `${`, `$}`, `${}`, `${ foo}`, `${foo!}`...
    #[error("Invalid template: {template:?}")]
    Invalid {
        /// The whole template string.
        template: String,
    },
    /// `${VAR:?msg}` with the variable unset or empty, or `${VAR?msg}` with it unset.
    #[error("required variable {var} is missing a value: {message}")]
    Required {
        /// The variable name.
        var: String,
        /// The text after `?` in the template (may be empty).
        message: String,
    },
}

/// One `$…` occurrence in a template, as docker/cli's pattern matches it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece<'a> {
    /// `$$`.
    Escaped,
    /// `$NAME…` or `${NAME…}`: the text of the `named`/`braced` group (name plus modifier).
    Subst(&'a str),
    /// A `$` that starts nothing valid (docker/cli's empty `invalid` group).
    Invalid,
}

/// A match: byte range of the whole `$…` text and what it is.
#[derive(Debug, Clone, Copy)]
struct Match<'a> {
    start: usize,
    end: usize,
    piece: Piece<'a>,
}

/// `[_a-z]` under `(?i)` in Go's regexp: ASCII letters, `_`, and the two non-ASCII case folds of `k` and `s`.
fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || c == '\u{212A}' || c == '\u{017F}'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Matches docker/cli's `subst` pattern `[_a-z][_a-z0-9]*(?::?[-?][^}]*)?` at the start of `s`; returns the length.
fn match_subst(s: &str) -> Option<usize> {
    let mut chars = s.char_indices().peekable();
    match chars.next() {
        Some((_, c)) if is_name_start(c) => {}
        _ => return None,
    }
    let mut end = s.len();
    for (i, c) in s.char_indices().skip(1) {
        if !is_name_char(c) {
            end = i;
            break;
        }
    }
    let rest = &s[end..];
    let modifier = if rest.starts_with(":-") || rest.starts_with(":?") {
        2
    } else if rest.starts_with('-') || rest.starts_with('?') {
        1
    } else {
        return Some(end);
    };
    let after = &rest[modifier..];
    let tail = after.find('}').unwrap_or(after.len());
    Some(end + modifier + tail)
}

/// All non-overlapping matches of docker/cli's pattern, left to right.
fn scan(template: &str) -> Vec<Match<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = template[i..].find('$') {
        let start = i + off;
        let rest = &template[start + 1..];
        let (len, piece) = if rest.starts_with('$') {
            (2, Piece::Escaped)
        } else if let Some(n) = match_subst(rest) {
            (1 + n, Piece::Subst(&rest[..n]))
        } else if let Some(inner) = rest.strip_prefix('{') {
            match match_subst(inner) {
                Some(n) if inner[n..].starts_with('}') => (n + 3, Piece::Subst(&inner[..n])),
                _ => (1, Piece::Invalid),
            }
        } else {
            (1, Piece::Invalid)
        };
        out.push(Match { start, end: start + len, piece });
        i = start + len;
    }
    out
}

/// Go's `strings.Cut` with docker/cli's `partition` fallback.
fn partition<'a>(s: &'a str, sep: &str) -> (&'a str, &'a str) {
    s.split_once(sep).unwrap_or((s, ""))
}

/// Result of one docker/cli substitution function: not applicable, a value, or an error.
enum Applied {
    No,
    Value(String),
    Err(TemplateError),
}

fn apply_funcs(subst: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Applied {
    // softDefault
    if subst.contains(":-") {
        let (name, def) = partition(subst, ":-");
        return match lookup(name) {
            Some(v) if !v.is_empty() => Applied::Value(v),
            _ => Applied::Value(def.to_string()),
        };
    }
    // hardDefault
    if subst.contains('-') {
        let (name, def) = partition(subst, "-");
        return Applied::Value(lookup(name).unwrap_or_else(|| def.to_string()));
    }
    // requiredNonEmpty, then required
    for (sep, non_empty) in [(":?", true), ("?", false)] {
        if subst.contains(sep) {
            let (name, msg) = partition(subst, sep);
            return match lookup(name) {
                Some(v) if !(non_empty && v.is_empty()) => Applied::Value(v),
                _ => Applied::Err(TemplateError::Required { var: name.to_string(), message: msg.to_string() }),
            };
        }
    }
    Applied::No
}

/// The failing `$…` of a template: the error and the byte range of the occurrence that caused it.
type Failure = (TemplateError, std::ops::Range<usize>);

/// docker/cli's `SubstituteWith` including its error bookkeeping: the error kept is the one of the last `$…`
/// that was not `$$` (so a later successful substitution clears an earlier error). Names referenced without a
/// modifier and not set are pushed to `unset`; with `strict` they are an error instead (docker/cli's test hook
/// `TestSubstituteWithCustomFunc`).
fn substitute_impl(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    strict: bool,
    unset: &mut Vec<String>,
) -> Result<String, Failure> {
    let mut out = String::with_capacity(template.len());
    let mut err: Option<Failure> = None;
    let mut last = 0;
    for m in scan(template) {
        out.push_str(&template[last..m.start]);
        last = m.end;
        match m.piece {
            Piece::Escaped => out.push('$'),
            Piece::Invalid => err = Some((TemplateError::Invalid { template: template.to_string() }, m.start..m.end)),
            Piece::Subst(s) => match apply_funcs(s, lookup) {
                Applied::Value(v) => {
                    err = None;
                    out.push_str(&v);
                }
                Applied::Err(e) => err = Some((e, m.start..m.end)),
                Applied::No => match lookup(s) {
                    Some(v) => {
                        err = None;
                        out.push_str(&v);
                    }
                    None if strict => {
                        let e = TemplateError::Required { var: s.to_string(), message: String::new() };
                        err = Some((e, m.start..m.end));
                    }
                    None => {
                        err = None;
                        if !unset.iter().any(|u| u == s) {
                            unset.push(s.to_string());
                        }
                    }
                },
            },
        }
    }
    out.push_str(&template[last..]);
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// docker/cli's template.Substitute: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
/// `$$` -> `$`. Exactly docker/cli's behaviour, including what is an error (`$}`, `${}`), what is literal.
///
/// `lookup` returns `None` for an unset variable and `Some("")` for a set but empty one.
pub fn substitute(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, TemplateError> {
    substitute_impl(template, lookup, false, &mut Vec::new()).map_err(|(e, _)| e)
}

/// [`substitute`], except that a plain `$VAR`/`${VAR}` (no modifier) whose variable is unset is a
/// [`TemplateError::Required`] with an empty message (docker/cli's `TestSubstituteWithCustomFunc` hook).
pub fn substitute_strict(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, TemplateError> {
    substitute_impl(template, lookup, true, &mut Vec::new()).map_err(|(e, _)| e)
}

/// Names of variables a template refers to (docker/cli's ExtractVariables), with their default if any.
///
/// In order of appearance, repeats included. `${A-x}`/`${A:-x}` give `Some("x")`; everything else `None`.
/// Malformed `$` sequences are skipped (docker/cli would report an empty name for them).
pub fn extract_variables(template: &str) -> Vec<(String, Option<String>)> {
    scan(template)
        .into_iter()
        .filter_map(|m| match m.piece {
            Piece::Subst(s) => Some(s),
            _ => None,
        })
        .map(|s| {
            if s.contains(":?") {
                (partition(s, ":?").0.to_string(), None)
            } else if s.contains('?') {
                (partition(s, "?").0.to_string(), None)
            } else if s.contains(":-") {
                let (n, d) = partition(s, ":-");
                (n.to_string(), Some(d.to_string()))
            } else if s.contains('-') {
                let (n, d) = partition(s, "-");
                (n.to_string(), Some(d.to_string()))
            } else {
                (s.to_string(), None)
            }
        })
        .collect()
}

/// The type a value at a cast path is converted to after interpolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    /// Go's `strconv.Atoi`.
    Int,
    /// Go's `strconv.ParseFloat(_, 64)`.
    Float,
    /// YAML 1.1 booleans: `y yes true on` / `n no false off`, any case.
    Bool,
}

/// docker/cli's `interpolateTypeCastMapping` (cli/compose/loader/interpolate.go): path patterns, where `*` is any
/// mapping key and `[]` any list item.
pub const TYPE_CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.[].mode", Cast::Int),
    ("services.*.secrets.[].mode", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    ("services.*.deploy.update_config.max_failure_ratio", Cast::Float),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    ("services.*.deploy.rollback_config.max_failure_ratio", Cast::Float),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    ("services.*.deploy.placement.max_replicas_per_node", Cast::Int),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.ports.[].published", Cast::Int),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

impl Cast {
    /// Converts an interpolated string; `Err` says why not ("is not an integer").
    pub fn apply(self, s: &str) -> Result<Value, &'static str> {
        match self {
            Cast::Int => parse_go_int(s).map(Value::Int).ok_or_else(|| {
                let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    "is out of range for an integer"
                } else {
                    "is not an integer"
                }
            }),
            Cast::Float => parse_go_float(s).map(Value::Float),
            Cast::Bool => match s.to_lowercase().as_str() {
                "y" | "yes" | "true" | "on" => Ok(Value::Bool(true)),
                "n" | "no" | "false" | "off" => Ok(Value::Bool(false)),
                _ => Err("is not a boolean"),
            },
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Cast::Int => "a whole number such as `3`",
            Cast::Float => "a number such as `0.3`",
            Cast::Bool => "`true` or `false` (also yes/no, on/off, y/n)",
        }
    }
}

/// `strconv.Atoi`: optional sign, ASCII decimal digits, 64-bit range.
fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// `strconv.ParseFloat(s, 64)`: decimal and hexadecimal (`0x1.8p1`) forms, `_` only between digits. Infinite and
/// NaN values are refused (docker/cli accepts them here, then fails to encode them).
fn parse_go_float(s: &str) -> Result<f64, &'static str> {
    const BAD: &str = "is not a number";
    if !go_underscore_ok(s) {
        return Err(BAD);
    }
    let clean = s.replace('_', "");
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return Err("is not a finite number");
    }
    let v = if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex).ok_or(BAD)?
    } else {
        if !body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
            return Err(BAD);
        }
        body.parse::<f64>().map_err(|_| BAD)?
    };
    if !v.is_finite() {
        return Err("is out of range for a number");
    }
    Ok(if neg { -v } else { v })
}

/// Mantissa of hex digits with an optional `.`, then a mandatory `p` exponent (Go's hex float syntax).
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = s.split_once('p')?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let exp_digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if exp_digits.is_empty() || !exp_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let exp: i32 = exp.parse().unwrap_or(if exp.starts_with('-') { -100_000 } else { 100_000 });
    let mut m = 0f64;
    for c in int.chars().chain(frac.chars()) {
        m = m * 16.0 + f64::from(c.to_digit(16)?);
    }
    Some(m * 2f64.powi(exp.saturating_sub(4 * frac.len() as i32)))
}

/// Go's `underscoreOK`: each `_` sits between digits (or after a base prefix and before a digit).
fn go_underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    for &b in &s[i..] {
        if b.is_ascii_digit() || (hex && b.is_ascii_hexdigit()) {
            saw = b'0';
        } else if b == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
    }
    saw != b'_'
}

/// docker/cli's `Path.matches`: both split on `.`, same length, each part equal or `*` in the pattern.
fn path_matches(path: &str, pattern: &str) -> bool {
    let mut parts = path.split('.');
    let mut pats = pattern.split('.');
    loop {
        match (parts.next(), pats.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if q == "*" || p == q => {}
            _ => return false,
        }
    }
}

/// The cast for a docker/cli path (`services.web.ports.[].published`), if any.
pub fn cast_for_path(path: &str, casts: &[(&str, Cast)]) -> Option<Cast> {
    casts.iter().find(|(pat, _)| path_matches(path, pat)).map(|(_, c)| *c)
}

/// Interpolates a whole parsed compose document in place, as docker/cli's loader does before schema validation.
///
/// docker/cli interpolates every top-level key (`services`, `networks`, `volumes`, `secrets`, `configs`, and
/// also extension keys such as `x-berth` or `x-common`: `docker stack config` fails on `x-foo: ${A:?}`), so
/// this does too; only `version` is left alone (docker/cli reads it before interpolating). Keys are not
/// interpolated. After substitution, values at docker/cli's type-cast paths ([`TYPE_CASTS`]) are converted from
/// string to int/bool/float, keeping the position; as in docker/cli only a string that substitution changed is
/// converted (`replicas: "3"` stays a string). Returns every problem found, each at the position of the string
/// and with its key path (`services.web.ports[0].published`); it does not stop at the first.
///
/// Codes: `interpolate.invalid`, `interpolate.required`, `interpolate.cast` (errors) and `interpolate.unset`
/// (a warning: a plain `$VAR` whose variable is unset becomes "", as docker/cli does silently).
pub fn interpolate(doc: &mut Node, env: &Env) -> Vec<Diagnostic> {
    let lookup = |k: &str| env.get(k).map(str::to_string);
    let mut diags = Vec::new();
    if let Value::Map(map) = &mut doc.value {
        let (mut path, mut go_path) = (String::with_capacity(128), String::with_capacity(128));
        for (key, node) in map.iter_mut() {
            if key == "version" {
                continue;
            }
            path.clear();
            path.push_str(key);
            go_path.clear();
            go_path.push_str(key);
            walk(node, &mut path, &mut go_path, &lookup, TYPE_CASTS, &mut diags);
        }
    }
    diags
}

/// Interpolates one subtree: `path` is the diagnostic path of `node` (`services.web`) and `go_path` docker/cli's
/// path for cast matching (`services.web`, list items as `[]`). Used by [`interpolate`]; public for callers that
/// interpolate a fragment with their own casts (`&[]` for none).
pub fn interpolate_node(
    node: &mut Node,
    path: &str,
    go_path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    casts: &[(&str, Cast)],
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    walk(node, &mut path.to_string(), &mut go_path.to_string(), lookup, casts, &mut diags);
    diags
}

/// Interpolates `node` in place. `path` and `go_path` are buffers holding the node's paths; children append
/// their part and truncate it again, so nothing is allocated per node unless a diagnostic is made.
fn walk(
    node: &mut Node,
    path: &mut String,
    go_path: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
    casts: &[(&str, Cast)],
    diags: &mut Vec<Diagnostic>,
) {
    let pos = node.pos;
    let mut unset = Vec::new();
    match &mut node.value {
        // Without a `$` nothing is substituted (and nothing can fail).
        Value::Str(s) if !s.contains('$') => {}
        Value::Str(s) => match substitute_impl(s, lookup, false, &mut unset) {
            Ok(new) if new == *s => {}
            Ok(new) => match cast_for_path(go_path, casts) {
                None => *s = new,
                Some(cast) => match cast.apply(&new) {
                    Ok(v) => node.value = v,
                    Err(why) => {
                        let d = cast_diag(pos, path, s, &new, cast, why);
                        diags.push(d);
                        *s = new;
                    }
                },
            },
            Err((err, range)) => {
                unset.clear();
                diags.push(template_diag(pos, path, s, err, range, lookup));
            }
        },
        Value::Map(map) => {
            let (plen, glen) = (path.len(), go_path.len());
            for (k, child) in map.iter_mut() {
                path.push('.');
                path.push_str(k);
                go_path.push('.');
                go_path.push_str(k);
                walk(child, path, go_path, lookup, casts, diags);
                path.truncate(plen);
                go_path.truncate(glen);
            }
        }
        Value::Seq(items) => {
            let (plen, glen) = (path.len(), go_path.len());
            go_path.push_str(".[]");
            for (i, child) in items.iter_mut().enumerate() {
                use std::fmt::Write;
                let _ = write!(path, "[{i}]");
                walk(child, path, go_path, lookup, casts, diags);
                path.truncate(plen);
            }
            go_path.truncate(glen);
        }
        _ => {}
    }
    for var in unset {
        diags.push(
            Diagnostic::warning(
                "interpolate.unset",
                Some(pos),
                path.as_str(),
                format!("variable {var} is not set, substituting an empty string"),
            )
            .with_hint(format!(
                "set {var} in the environment, in a `.env` file beside the compose file or with `--env-file`; \
                     write `${{{var}:-default}}` for a default, or `$${var}` for a literal `${var}`"
            )),
        );
    }
}

fn cast_diag(pos: Pos, path: &str, template: &str, new: &str, cast: Cast, why: &str) -> Diagnostic {
    let msg = format!("`{template}` gives {new:?}, which {why}");
    Diagnostic::error("interpolate.cast", Some(pos), path, msg)
        .with_hint(format!("after substitution this value must be {}", cast.expected()))
}

fn template_diag(
    pos: Pos,
    path: &str,
    template: &str,
    err: TemplateError,
    range: std::ops::Range<usize>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Diagnostic {
    match err {
        TemplateError::Invalid { .. } => {
            let bad: String = template[range.start..].chars().take(12).collect();
            let near = if bad.chars().count() < template[range.start..].chars().count() { "…" } else { "" };
            Diagnostic::error(
                "interpolate.invalid",
                Some(pos),
                path,
                format!("invalid interpolation format in {template:?}: `{bad}{near}` is not a variable reference"),
            )
            .with_hint(
                "write `$$` for a literal `$`; a variable is `$NAME` or `${NAME}` (letters, digits, `_`), optionally \
                 with `:-default`, `-default`, `:?error` or `?error`",
            )
        }
        TemplateError::Required { var, message } => {
            let colon = template[range.clone()].contains(":?");
            let state = match lookup(&var) {
                Some(v) if v.is_empty() && colon => "is set but empty",
                Some(_) => "is set",
                None => "is not set",
            };
            let msg = if message.is_empty() {
                format!("required variable {var} is missing a value")
            } else {
                format!("required variable {var} is missing a value: {message}")
            };
            let needs = if colon { "a non-empty value" } else { "a value" };
            Diagnostic::error("interpolate.required", Some(pos), path, msg).with_hint(format!(
                "{var} {state} and `{}` needs {needs}: set it in the environment (`{var}=... berth ...`), in a \
                 `.env` file beside the compose file, or in a file passed with `--env-file`",
                &template[range]
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn unbraced_name_takes_a_modifier_like_docker_cli() {
        let l = env(&[("A", "x")]);
        assert_eq!(substitute("$A-bar baz", &l).unwrap(), "x");
        assert_eq!(substitute("$A:-q}z", &l).unwrap(), "x}z");
        assert_eq!(substitute("${A:-${B}}", &l).unwrap(), "x}");
        assert_eq!(substitute("${A:-${B}}", &env(&[])).unwrap(), "${B}");
    }

    #[test]
    fn later_success_clears_earlier_error() {
        assert_eq!(substitute("$} ${A}", &env(&[("A", "x")])).unwrap(), "} x");
        assert!(substitute("${A} $}", &env(&[("A", "x")])).is_err());
        assert!(substitute("$} $$", &env(&[])).is_err());
    }

    #[test]
    fn required_with_dash_in_message_is_a_default() {
        assert_eq!(substitute("${B:?must-set}", &env(&[])).unwrap(), "set");
    }

    #[test]
    fn casts_follow_go() {
        assert_eq!(Cast::Int.apply("+7"), Ok(Value::Int(7)));
        assert!(Cast::Int.apply("1_000").is_err());
        assert!(Cast::Int.apply(" 1").is_err());
        assert_eq!(Cast::Bool.apply("ON"), Ok(Value::Bool(true)));
        assert!(Cast::Bool.apply("1").is_err());
        assert_eq!(Cast::Float.apply("0.5"), Ok(Value::Float(0.5)));
        // Checked with `docker stack config` (max_failure_ratio).
        assert_eq!(Cast::Float.apply("1_0.5"), Ok(Value::Float(10.5)));
        assert_eq!(Cast::Float.apply("0x1.8p1"), Ok(Value::Float(3.0)));
        assert_eq!(Cast::Float.apply("0X1P+2"), Ok(Value::Float(4.0)));
        assert_eq!(Cast::Float.apply(".5"), Ok(Value::Float(0.5)));
        for bad in ["1_.5", "1__0", "1e", "0x10", "inf", "NaN", "1e400", " 1", "", "."] {
            assert!(Cast::Float.apply(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn path_matching_splits_dotted_keys() {
        assert_eq!(cast_for_path("services.web.deploy.replicas", TYPE_CASTS), Some(Cast::Int));
        assert_eq!(cast_for_path("services.my.web.deploy.replicas", TYPE_CASTS), None);
        assert_eq!(cast_for_path("services.web.ports.[].published", TYPE_CASTS), Some(Cast::Int));
    }
}
