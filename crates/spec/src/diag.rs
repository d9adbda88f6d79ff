//! Diagnostics: every problem the spec layer finds, with where it is and what to do.
//!
//! Libraries return these as data; only the CLI renders them (miette). A [`Diagnostic`] carries a
//! [`Pos`] into a file registered in the [`SourceMap`], so the renderer can show the line.

use crate::yaml::Pos;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem in the user's files.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable machine-readable code, e.g. `schema.unknown-key`, `interpolate.missing`.
    pub code: &'static str,
    /// Where: file, line and column (1-based). `None` for problems with no single place.
    pub pos: Option<Pos>,
    /// Key path into the document, e.g. `services.web.deploy.replicas`.
    pub path: String,
    /// What is wrong, one sentence, no trailing period.
    pub message: String,
    /// What to do about it ("did you mean `replicas`?").
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, pos: Option<Pos>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, code, pos, path: path.into(), message: message.into(), hint: None }
    }

    pub fn warning(code: &'static str, pos: Option<Pos>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, code, pos, path: path.into(), message: message.into(), hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// The files a load read, so that a [`Pos`] can be turned back into a name and a line of text.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    files: Vec<(PathBuf, String)>,
}

impl SourceMap {
    /// Registers a file's text; returns the id to put into [`Pos::file`].
    pub fn add(&mut self, path: PathBuf, text: String) -> u32 {
        self.files.push((path, text));
        (self.files.len() - 1) as u32
    }

    pub fn path(&self, file: u32) -> Option<&std::path::Path> {
        self.files.get(file as usize).map(|(p, _)| p.as_path())
    }

    pub fn text(&self, file: u32) -> Option<&str> {
        self.files.get(file as usize).map(|(_, t)| t.as_str())
    }

    /// Byte offset of a 1-based line/column in a registered file (columns count characters).
    pub fn offset(&self, pos: Pos) -> Option<usize> {
        let text = self.text(pos.file)?;
        let mut off = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if i + 1 == pos.line as usize {
                let col =
                    line.char_indices().nth(pos.col.saturating_sub(1) as usize).map(|(b, _)| b).unwrap_or(line.len());
                return Some(off + col);
            }
            off += line.len();
        }
        None
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo
/// (distance ≤ 2, or ≤ a third of the word's length for long words).
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_close_typos_only() {
        assert_eq!(did_you_mean("replica", ["replicas", "mode", "labels"]), Some("replicas"));
        assert_eq!(did_you_mean("imgae", ["image", "init"]), Some("image"));
        assert_eq!(did_you_mean("frobnicate", ["image", "init"]), None);
    }
}
