//! Environment for interpolation: the process environment, `--env-file`s and `.env`.
//!
//! Two file formats live here and they are deliberately different:
//!
//! * a service's `env_file:` is read like docker/cli's `opts.ParseEnvFile` (`pkg/kvfile`, no quotes, no
//!   expansion) — [`parse_env_file`];
//! * a `.env` / `--env-file` for interpolation is read with Compose's dotenv rules (compose-go `dotenv`) —
//!   [`parse_dotenv`]. `docker stack deploy` itself reads no `.env`; this is a berth extension.

use crate::diag::Diagnostic;
use crate::yaml::Pos;
use indexmap::IndexMap;

/// Variables for interpolation: name to value, in insertion order.
///
/// A variable is either unset or set (possibly to the empty string); `${A:-x}` and `${A-x}` tell the two apart.
/// Build it with the highest-priority source first and [`Env::set_if_missing`] for the rest (process environment,
/// then `--env-file`s, then `.env`), or lowest first with [`Env::set`].
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: IndexMap<String, String>,
}

impl Env {
    /// An empty environment.
    pub fn new() -> Self {
        Env::default()
    }

    /// An environment from `(name, value)` pairs; a later pair overwrites an earlier one of the same name.
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Env { vars: pairs.into_iter().collect() }
    }

    /// The value of `name`, if set (an empty value is set).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Sets `name`, overwriting any existing value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// Sets `name` only when it is not set yet (so an earlier, higher-priority source wins).
    pub fn set_if_missing(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.entry(name.into()).or_insert_with(|| value.into());
    }

    /// All variables in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `name` as an owned string, the shape [`crate::interpolate::substitute`] and [`parse_dotenv`]
    /// take as `lookup`.
    pub fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    /// Number of variables set.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether no variable is set.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

fn pos(file: u32, line: usize, col: usize) -> Option<Pos> {
    Some(Pos { file, line: line as u32, col: col as u32 })
}

/// A service `env_file:` as docker/cli's opts.ParseEnvFile reads it: `KEY=VAL` lines, `#` comments, blank lines,
/// a bare `KEY` (value taken from the environment later -> None), no quote processing, leading whitespace trimmed,
/// invalid names and non-UTF-8 are errors naming the line.
///
/// Exactly docker/cli 28's `pkg/kvfile`: lines split on `\n` with one trailing `\r` dropped, a UTF-8 BOM removed
/// from the first line only, leading Unicode whitespace trimmed, trailing whitespace kept in the value, quotes
/// kept (`A="x"` is `"x"` with the quotes). A name is invalid when empty or containing a space or tab; any other
/// character is accepted, as docker/cli does. `text` is already UTF-8; see [`parse_env_file_bytes`] for raw bytes.
/// Errors have code `env.syntax`.
pub fn parse_env_file(text: &str, file: u32) -> Result<Vec<(String, Option<String>)>, Diagnostic> {
    let mut out = Vec::new();
    for (idx, raw) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let mut l = raw.strip_suffix('\r').unwrap_or(raw);
        if idx == 0 {
            l = l.strip_prefix('\u{feff}').unwrap_or(l);
        }
        let line = l.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let col = l.chars().count() - line.chars().count() + 1;
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(Diagnostic::error(
                "env.syntax",
                pos(file, line_no, col),
                "",
                format!("no variable name on line {line:?}"),
            )
            .with_hint("env_file lines are `NAME=value`, `NAME` (taken from the environment) or `# comment`"));
        }
        if key.contains([' ', '\t']) {
            let hint = if value.is_none() {
                "env_file lines are `NAME=value`; there is no `=` on this line"
            } else {
                "no spaces around `=`, and none in the name: the value starts right after `=` and is taken as-is"
            };
            return Err(Diagnostic::error(
                "env.syntax",
                pos(file, line_no, col),
                "",
                format!("variable {key:?} contains whitespace"),
            )
            .with_hint(hint));
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// [`parse_env_file`] on raw file bytes: invalid UTF-8 is an `env.syntax` error naming the first bad line
/// (docker/cli: "invalid utf8 bytes at line N").
pub fn parse_env_file_bytes(bytes: &[u8], file: u32) -> Result<Vec<(String, Option<String>)>, Diagnostic> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_env_file(text, file),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            Err(Diagnostic::error("env.syntax", pos(file, line, col), "", format!("invalid UTF-8 on line {line}"))
                .with_hint("env files must be UTF-8 text; re-save the file as UTF-8"))
        }
    }
}

/// Compose's dotenv `isSpace`: whitespace that is not a line break.
fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ' | '\u{85}' | '\u{a0}')
}

fn is_key_char(c: char) -> bool {
    matches!(c, '_' | '.' | '-' | '[' | ']') || c.is_alphanumeric()
}

/// Line (1-based) and column (1-based, in characters) of byte offset `off` in `text`.
fn line_col(text: &str, off: usize) -> (usize, usize) {
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, before[start..].chars().count() + 1)
}

/// A `.env` / `--env-file` file for interpolation, with Compose's dotenv rules (export prefix, single/double quotes,
/// escapes in double quotes, inline `#` comments after whitespace, `${VAR}` expansion inside unquoted and
/// double-quoted values against earlier lines and `lookup`). Errors name the line.
///
/// Details (compose-go `dotenv`): `KEY=value` or `KEY: value`, spaces around the separator ignored; names are
/// letters, digits, `_ . - [ ]`; a bare `KEY` line takes the value from `lookup` (skipped when unset); names
/// starting with a digit are ignored. Unquoted values end at the line end or at ` #`, trailing whitespace
/// trimmed. Quoted values may span lines; `\'`/`\"` is the quote itself; in double quotes `\n \r \t \a \b \f \v
/// \\ \" \$` and octal `\0NNN` are escapes and other backslashes stay. Single-quoted values are taken literally.
/// Expansion looks a name up in `lookup` first, then in earlier lines of the file, with compose-go's template
/// dialect (nested `${A:-${B}}`, `${A:+x}`, `${A+x}`; a `$` not followed by a name, `{` or `$` is literal). A later line for the same name overwrites the value (the first position is kept).
/// Stricter than compose-go, to catch mistakes: an empty name, an unterminated quote, or text after a closing
/// quote other than a `#` comment are errors. Errors have code `env.syntax`.
pub fn parse_dotenv(
    text: &str,
    file: u32,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, Diagnostic> {
    let start = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let mut out: IndexMap<String, String> = IndexMap::new();
    let err = |off: usize, msg: String, hint: &str| {
        let (line, col) = line_col(text, off);
        Diagnostic::error("env.syntax", pos(file, line, col), "", msg).with_hint(hint.to_string())
    };
    let mut i = start;
    loop {
        // Skip blank space and comment lines.
        loop {
            let rest = &text[i..];
            let trimmed = rest.trim_start();
            i += rest.len() - trimmed.len();
            if trimmed.is_empty() {
                return Ok(out.into_iter().collect());
            }
            if !trimmed.starts_with('#') {
                break;
            }
            match trimmed.find('\n') {
                Some(n) => i += n,
                None => return Ok(out.into_iter().collect()),
            }
        }
        let stmt = i;
        // `export ` prefix.
        if let Some(after) = text[i..].strip_prefix("export")
            && after.starts_with(|c: char| is_space(c))
        {
            let trimmed = after.trim_start_matches(is_space);
            i = text.len() - trimmed.len();
        }
        // The name: up to `=`, `:` or the end of the line.
        let rest = &text[i..];
        let mut end = rest.len();
        let mut sep = None;
        for (j, c) in rest.char_indices() {
            if is_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    end = j;
                    sep = Some(c);
                    break;
                }
                c if is_key_char(c) => {}
                c => {
                    let line_text = rest.split('\n').next().unwrap_or("");
                    return Err(err(
                        i + j,
                        format!("unexpected character {c:?} in variable name {line_text:?}"),
                        "lines are `NAME=value`; names use letters, digits and `_ . - [ ]`",
                    ));
                }
            }
        }
        let key = rest[..end].trim_end();
        if key.is_empty() {
            return Err(err(stmt, "no variable name before `=`".into(), "lines are `NAME=value`"));
        }
        if key.contains(|c: char| c.is_whitespace()) {
            return Err(err(
                stmt,
                format!("variable name {key:?} contains whitespace"),
                "lines are `NAME=value` or a bare `NAME` (taken from the environment); names have no spaces",
            ));
        }
        let ignored = key.starts_with(|c: char| c.is_ascii_digit());
        let inherited = sep != Some('=') && sep != Some(':');
        if inherited {
            // A bare name: its value comes from the environment, if set.
            i += (end + 1).min(rest.len());
            if !ignored && let Some(v) = lookup(key) {
                out.insert(key.to_string(), v);
            }
            continue;
        }
        let after_sep = &rest[end + 1..];
        let value_text = after_sep.trim_start_matches(is_space);
        let vstart = text.len() - value_text.len();
        let expand = |v: &str, out: &IndexMap<String, String>| {
            let l = |k: &str| lookup(k).or_else(|| out.get(k).cloned());
            compose_template::substitute(v, &l).map_err(|e| {
                err(
                    vstart,
                    format!("in the value of {key}: {e}"),
                    "write `$$` (or `\\$` in double quotes) for a literal `$`",
                )
            })
        };
        let (value, next) = match value_text.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let Some((raw, len)) = quoted(&value_text[1..], q) else {
                    return Err(err(
                        vstart,
                        format!("unterminated quoted value for {key}"),
                        &format!("close the value with a matching {q}"),
                    ));
                };
                let mut after = vstart + 1 + len + 1;
                // Only blank space or a `#` comment may follow on the line.
                let tail = &text[after..];
                let line_rest = tail.split('\n').next().unwrap_or("");
                let t = line_rest.trim_start_matches(is_space);
                if !t.is_empty() && !t.starts_with('#') {
                    return Err(err(
                        text.len() - t.len() - (tail.len() - line_rest.len()),
                        format!("unexpected text after the closing quote of {key}: {t:?}"),
                        "put the whole value inside the quotes, or start a comment with ` #`",
                    ));
                }
                after += line_rest.len();
                let v = if q == '"' { expand(&expand_escapes(&raw), &out)? } else { raw };
                (v, after)
            }
            _ => {
                let line = value_text.split('\n').next().unwrap_or("");
                let next = vstart + line.len();
                let cut = comment_start(line).map_or(line, |n| &line[..n]);
                (expand(cut.trim_end(), &out)?, next)
            }
        };
        if !ignored {
            out.insert(key.to_string(), value);
        }
        i = next;
    }
}

/// Byte offset of an inline comment: a `#` after a space or tab.
fn comment_start(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    (1..b.len()).find(|&i| b[i] == b'#' && (b[i - 1] == b' ' || b[i - 1] == b'\t')).map(|i| i - 1)
}

/// The body of a quoted value (after the opening quote): text up to the closing quote with `\<quote>` turned into
/// the quote and other backslashes kept; returns the text and the byte length consumed before the closing quote.
fn quoted(s: &str, q: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut escape = false;
    for (i, c) in s.char_indices() {
        if escape {
            escape = false;
            if c != q {
                out.push('\\');
            }
            out.push(c);
            continue;
        }
        match c {
            '\\' => escape = true,
            c if c == q => return Some((out, i)),
            c => out.push(c),
        }
    }
    None
}

/// compose-go's `expandEscapes` for double-quoted values: `\$` becomes `$$` (a literal `$` after expansion).
fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&(_, n)) = chars.peek() else {
            out.push(c);
            continue;
        };
        let simple = match n {
            'a' => Some("\u{07}"),
            'b' => Some("\u{08}"),
            'c' => None,
            'f' => Some("\u{0c}"),
            'n' => Some("\n"),
            'r' => Some("\r"),
            't' => Some("\t"),
            'v' => Some("\u{0b}"),
            '$' => Some("$$"),
            '"' => Some("\""),
            '\\' => Some("\\"),
            _ => None,
        };
        if let Some(r) = simple {
            out.push_str(r);
            chars.next();
            continue;
        }
        if n == '0' {
            // `\0` then up to three digits: Go's octal `\NNN` from the three digits after the 0.
            let digits: String = s[i + 2..].chars().take_while(char::is_ascii_digit).take(3).collect();
            let len = 2 + digits.len();
            if digits.len() == 3
                && let Ok(v) = u32::from_str_radix(&digits, 8)
                && v <= 255
            {
                out.push(char::from(v as u8));
            } else {
                out.push_str(&s[i..i + len]);
            }
            for _ in 0..len - 1 {
                chars.next();
            }
            continue;
        }
        // `\c` and unknown escapes stay as they are.
        out.push(c);
    }
    out
}

/// compose-go's `template.Substitute` (v2), the dialect of `.env` values. It differs from docker/cli's (see
/// [`crate::interpolate`]): nested defaults, `:+`/`+`, and a stray `$` is literal.
mod compose_template {
    /// `[_a-z]` under Go's `(?i)`.
    fn is_name_start(c: char) -> bool {
        c == '_' || c.is_ascii_alphabetic() || c == '\u{212A}' || c == '\u{017F}'
    }

    fn name_len(s: &str) -> usize {
        let mut it = s.char_indices();
        match it.next() {
            Some((_, c)) if is_name_start(c) => {}
            _ => return 0,
        }
        it.find(|&(_, c)| !(is_name_start(c) || c.is_ascii_digit())).map_or(s.len(), |(i, _)| i)
    }

    enum Group<'a> {
        Escaped,
        Named(&'a str),
        Braced(&'a str),
        Invalid,
    }

    /// The pattern `\$(?i:(?P<escaped>\$)|(?P<named>N)|{(?:(?P<braced>N(?::?[-+?](.*))?)}|(?P<invalid>)))` at
    /// byte `i` (a `$`): the match length and group, or `None` when it does not match there.
    fn match_at(s: &str, i: usize) -> Option<(usize, Group<'_>)> {
        let rest = &s[i + 1..];
        if rest.starts_with('$') {
            return Some((2, Group::Escaped));
        }
        let n = name_len(rest);
        if n > 0 {
            return Some((1 + n, Group::Named(&rest[..n])));
        }
        let inner = rest.strip_prefix('{')?;
        let n = name_len(inner);
        if n == 0 {
            return Some((2, Group::Invalid));
        }
        let after = &inner[n..];
        let op = if after.starts_with(':') && after[1..].starts_with(['-', '+', '?']) {
            2
        } else if after.starts_with(['-', '+', '?']) {
            1
        } else {
            0
        };
        if op > 0 {
            // `(.*)}`: greedy to the last `}` before the end of the line.
            let tail = &after[op..];
            let line = &tail[..tail.find('\n').unwrap_or(tail.len())];
            if let Some(p) = line.rfind('}') {
                let len = n + op + p;
                return Some((2 + len + 1, Group::Braced(&inner[..len])));
            }
        }
        if after.starts_with('}') {
            return Some((2 + n + 1, Group::Braced(&inner[..n])));
        }
        Some((2, Group::Invalid))
    }

    /// compose-go's `getFirstBraceClosingIndex`, byte for byte (including skipping the byte after each `{`).
    fn first_brace_closing(s: &[u8]) -> Option<usize> {
        let mut open = 0i32;
        let mut i = 0;
        while i < s.len() {
            if s[i] == b'}' {
                open -= 1;
                if open == 0 {
                    return Some(i);
                }
            }
            if s[i] == b'{' {
                open += 1;
                i += 1;
            }
            i += 1;
        }
        None
    }

    const OPS: [&str; 6] = [":?", "?", ":-", "-", ":+", "+"];

    /// Expands `template`; the error is a message for the user.
    pub fn substitute(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        let mut first_err: Option<String> = None;
        let mut last = 0;
        let mut i = 0;
        while let Some(off) = template[i..].find('$') {
            let start = i + off;
            let Some((len, _)) = match_at(template, start) else {
                i = start + 1;
                continue;
            };
            out.push_str(&template[last..start]);
            match replace(&template[start..start + len], lookup) {
                Ok(v) => out.push_str(&v),
                Err(e) => {
                    let e = if e.is_empty() { format!("invalid template {template:?}") } else { e };
                    first_err.get_or_insert(e);
                }
            }
            last = start + len;
            i = last;
        }
        out.push_str(&template[last..]);
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// compose-go's `DefaultReplacementAppliedFunc` for one matched substring. `Err("")` is an invalid template.
    fn replace(sub: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        let op = OPS.iter().filter_map(|o| sub.find(o).map(|i| (i, *o))).min_by_key(|(i, _)| *i).map(|(_, o)| o);
        let (head, rest) = match first_brace_closing(sub.as_bytes()) {
            Some(p) => (&sub[..p + 1], &sub[p + 1..]),
            None => (sub, ""),
        };
        let (_, group) = match_at(head, 0).ok_or_else(String::new)?;
        let subst = match group {
            Group::Escaped => return Ok("$".into()),
            Group::Invalid => return Err(String::new()),
            Group::Named(n) => return Ok(lookup(n).unwrap_or_default()),
            Group::Braced(b) => b,
        };
        if let Some(op) = op
            && let Some((name, arg)) = subst.split_once(op)
        {
            let value = lookup(name);
            let v = match op {
                ":?" | "?" => match value {
                    Some(v) if op == "?" || !v.is_empty() => v,
                    _ => {
                        let reason = substitute(arg, lookup)?;
                        return Err(if reason.is_empty() {
                            format!("required variable {name} is missing a value")
                        } else {
                            format!("required variable {name} is missing a value: {reason}")
                        });
                    }
                },
                ":-" | "-" => match value {
                    Some(v) if op == "-" || !v.is_empty() => v,
                    _ => substitute(arg, lookup)?,
                },
                _ => match value {
                    Some(v) if op == "+" || !v.is_empty() => substitute(arg, lookup)?,
                    v => v.unwrap_or_default(),
                },
            };
            return Ok(v + &substitute(rest, lookup)?);
        }
        Ok(lookup(subst).unwrap_or_default())
    }

    #[cfg(test)]
    mod tests {
        use super::substitute;

        fn l(k: &str) -> Option<String> {
            match k {
                "A" => Some("a".into()),
                "E" => Some(String::new()),
                _ => None,
            }
        }

        #[test]
        fn compose_go_dialect() {
            assert_eq!(substitute("${X:-${A}}", &l).unwrap(), "a");
            assert_eq!(substitute("${X:-${Y:-z}}!", &l).unwrap(), "z!");
            assert_eq!(substitute("${A:+set} ${E:+no}${E+yes}", &l).unwrap(), "set yes");
            assert_eq!(substitute("$} $ $$A ${A}", &l).unwrap(), "$} $ $A a");
            assert_eq!(substitute("${A:-x} and ${X:-y}", &l).unwrap(), "a and y");
            assert!(substitute("${", &l).is_err());
            assert!(substitute("${X:?need ${A}}", &l).unwrap_err().contains("need a"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn env_set_if_missing_keeps_first() {
        let mut e = Env::new();
        e.set("A", "1");
        e.set_if_missing("A", "2");
        e.set_if_missing("B", "3");
        assert_eq!(e.get("A"), Some("1"));
        assert_eq!(e.get("B"), Some("3"));
        e.set("A", "4");
        assert_eq!(e.get("A"), Some("4"));
    }

    #[test]
    fn env_file_keeps_quotes_and_trailing_space() {
        let v = parse_env_file("A=\"q\"\r\n  B= x \nC\n# c\n\n", 0).unwrap();
        assert_eq!(v, vec![("A".into(), Some("\"q\"".into())), ("B".into(), Some(" x ".into())), ("C".into(), None)]);
    }

    #[test]
    fn dotenv_octal_and_escapes() {
        let v = parse_dotenv("A=\"\\0101\\q\\$x\"\n", 0, &none).unwrap();
        assert_eq!(v[0].1, "A\\q$x");
    }
}
