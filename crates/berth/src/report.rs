//! Rendering of diagnostics: `file:line:col`, the source line, the message and a hint.

use berth_spec::{Diagnostic, Severity, SourceMap};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use std::fmt;
use std::io::IsTerminal;

/// One diagnostic with its file, in the shape miette renders.
struct Report<'a> {
    diag: &'a Diagnostic,
    source: Option<NamedSource<String>>,
    span: Option<SourceSpan>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.diag)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diag.code))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.hint.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(Some("here".into()), span))))
    }
}

/// Where a diagnostic is, as `path:line:col` (or the key path alone when it has no position).
pub fn location(diag: &Diagnostic, sources: &SourceMap) -> String {
    match diag.pos {
        Some(p) => {
            let file = sources.path(p.file).map(|p| p.display().to_string()).unwrap_or_else(|| "<input>".into());
            format!("{file}:{}:{}", p.line, p.col)
        }
        None => String::new(),
    }
}

/// Renders diagnostics for a terminal (colour when stderr is one) or plain text.
pub fn render(diags: &[Diagnostic], sources: &SourceMap) -> String {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1).with_width(100);
    let mut out = String::new();
    for d in diags {
        let (source, span) = match d.pos {
            Some(p) => {
                let name = sources.path(p.file).map(|p| p.display().to_string()).unwrap_or_else(|| "<input>".into());
                let text = sources.text(p.file).unwrap_or_default().to_string();
                let off = sources.offset(p);
                let len = off.map(|o| token_len(&text[o..])).unwrap_or(0);
                (Some(NamedSource::new(name, text)), off.map(|o| SourceSpan::from((o, len))))
            }
            None => (None, None),
        };
        let r = Report { diag: d, source, span };
        let _ = handler.render_report(&mut out, &r);
        out.push('\n');
    }
    out
}

/// One line per diagnostic: `file:line:col: error[code]: path: message (hint)` — for logs and tests.
pub fn render_plain(diags: &[Diagnostic], sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diags {
        let loc = location(d, sources);
        let sev = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if !loc.is_empty() {
            out.push_str(&loc);
            out.push_str(": ");
        }
        out.push_str(&format!("{sev}[{}]: {d}", d.code));
        if let Some(h) = &d.hint {
            out.push_str(&format!("\n  hint: {h}"));
        }
        out.push('\n');
    }
    out
}

/// Length of the token starting at `s`: a key or scalar up to `:`/`,`/space/end of line, at least 1.
fn token_len(s: &str) -> usize {
    if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let line_end = s.find('\n').unwrap_or(s.len());
        if let Some(close) = s[1..line_end].find(q) {
            return close + 2;
        }
    }
    let end = s.find(['\n', ':', ',', ' ', '}', ']']).unwrap_or(s.len());
    end.max(1).min(s.len())
}

/// Diagnostics as JSON objects with a `file` field added.
pub fn to_json(diags: &[Diagnostic], sources: &SourceMap) -> serde_json::Value {
    serde_json::Value::Array(
        diags
            .iter()
            .map(|d| {
                let mut v = serde_json::to_value(d).unwrap_or_default();
                if let (Some(p), Some(obj)) = (d.pos, v.as_object_mut()) {
                    obj.insert("file".into(), sources.path(p.file).map(|p| p.display().to_string()).into());
                }
                v
            })
            .collect(),
    )
}
