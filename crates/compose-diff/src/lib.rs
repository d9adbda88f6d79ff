//! Differential harness: berth's loader + renderer against the real `docker stack config`.
//!
//! For one compose file, [`compare_file`] loads it with `berth_spec::load::load` and renders it with
//! `berth_spec::render::to_json` (in-process), runs `docker stack config -c FILE` in the file's
//! directory, and classifies the pair as a [`Verdict`]. Both outputs are compared as JSON values
//! (docker's YAML is parsed with serde-saphyr) after [`normalise`], which only removes encoding
//! differences that denote the same value.
//!
//! Environment: both sides see the same variables — the given process environment plus the
//! `--env-file`s (process environment wins). berth's `.env` extension is switched off, because
//! `docker stack config` does not read `.env`.

use berth_spec::load::{LoadOptions, load};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to run a comparison.
#[derive(Debug, Clone)]
pub struct Options {
    /// The docker CLI to run (`docker` from `PATH` by default).
    pub docker: PathBuf,
    /// `--env-file`s: extra interpolation variables for both sides (the process environment wins).
    pub env_files: Vec<PathBuf>,
    /// The process environment given to both sides.
    pub environ: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options { docker: PathBuf::from("docker"), env_files: Vec::new(), environ: std::env::vars().collect() }
    }
}

/// One place where the two outputs differ: a JSON path and the value on each side (`None` = absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Path into the document, e.g. `services.web.ports[0].published`.
    pub path: String,
    /// berth's value.
    pub berth: Option<Value>,
    /// docker's value.
    pub docker: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: berth={} docker={}", self.path, show(self.berth.as_ref()), show(self.docker.as_ref()))
    }
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 160 { format!("{}…", s.chars().take(160).collect::<String>()) } else { s }
        }
    }
}

/// The outcome for one file.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Both load it and print the same stack.
    Identical,
    /// Both load it but the stacks differ.
    Differing(Vec<Difference>),
    /// One side loads it, the other rejects it. `Err` holds that side's error text.
    VerdictMismatch {
        /// berth's result.
        berth: Result<(), String>,
        /// docker's result.
        docker: Result<(), String>,
    },
    /// Both reject it (the errors need not say the same thing).
    BothRejected {
        /// berth's error text.
        berth: String,
        /// docker's error text.
        docker: String,
    },
}

impl Verdict {
    /// `true` for the outcomes that make the harness fail (differing output, different verdict).
    pub fn is_failure(&self) -> bool {
        matches!(self, Verdict::Differing(_) | Verdict::VerdictMismatch { .. })
    }

    /// The label printed for this outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::Differing(_) => "differing",
            Verdict::VerdictMismatch { .. } => "verdict mismatch",
            Verdict::BothRejected { .. } => "both rejected",
        }
    }
}

/// The outcome for one file, with the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// The compose file.
    pub file: PathBuf,
    /// What happened.
    pub verdict: Verdict,
}

impl fmt::Display for FileReport {
    /// `LABEL  FILE`, then indented details (differences, or both sides' errors).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<17} {}", self.verdict.label(), self.file.display())?;
        let side = |f: &mut fmt::Formatter<'_>, who: &str, r: &Result<(), String>| match r {
            Ok(()) => writeln!(f, "    {who}: loads"),
            Err(e) => writeln!(f, "    {who}: {}", indent(e)),
        };
        match &self.verdict {
            Verdict::Identical => Ok(()),
            Verdict::Differing(diffs) => {
                for d in diffs.iter().take(MAX_SHOWN) {
                    writeln!(f, "    {d}")?;
                }
                if diffs.len() > MAX_SHOWN {
                    writeln!(f, "    … and {} more", diffs.len() - MAX_SHOWN)?;
                }
                Ok(())
            }
            Verdict::VerdictMismatch { berth, docker } => {
                side(f, "berth", berth)?;
                side(f, "docker", docker)
            }
            Verdict::BothRejected { berth, docker } => {
                side(f, "berth", &Err(berth.clone()))?;
                side(f, "docker", &Err(docker.clone()))
            }
        }
    }
}

const MAX_SHOWN: usize = 40;

fn indent(s: &str) -> String {
    s.trim_end().replace('\n', "\n      ")
}

/// Counts per outcome, printed as the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files with identical output.
    pub identical: usize,
    /// Files whose outputs differ.
    pub differing: usize,
    /// Files one side loads and the other rejects.
    pub verdict_mismatch: usize,
    /// Files both sides reject.
    pub both_rejected: usize,
}

impl Summary {
    /// Counts the reports.
    pub fn of(reports: &[FileReport]) -> Summary {
        let mut s = Summary::default();
        for r in reports {
            match r.verdict {
                Verdict::Identical => s.identical += 1,
                Verdict::Differing(_) => s.differing += 1,
                Verdict::VerdictMismatch { .. } => s.verdict_mismatch += 1,
                Verdict::BothRejected { .. } => s.both_rejected += 1,
            }
        }
        s
    }

    /// `true` when no file differs and no verdict mismatches.
    pub fn ok(&self) -> bool {
        self.differing == 0 && self.verdict_mismatch == 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} identical, {} differing, {} verdict mismatch, {} both rejected",
            self.identical, self.differing, self.verdict_mismatch, self.both_rejected
        )
    }
}

/// `true` for names the directory walk picks up: `compose.yaml`, `compose.yml`,
/// `docker-compose*.yml`/`.yaml`, `*stack*.yml`/`.yaml`.
pub fn is_compose_name(name: &str) -> bool {
    let yml = name.ends_with(".yml") || name.ends_with(".yaml");
    name == "compose.yaml"
        || name == "compose.yml"
        || (yml && name.starts_with("docker-compose"))
        || (yml && name.contains("stack"))
}

/// The compose files to check: files given explicitly are taken as they are; directories are
/// walked recursively (sorted, hidden entries skipped) for [`is_compose_name`] files.
pub fn find_files(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, &mut out);
        } else {
            out.push(input.clone());
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if is_compose_name(name) {
            out.push(p);
        }
    }
}

/// berth's side: load the files (one stack, merged in order) in-process and render it as JSON.
/// `Err` is the diagnostics as text. A panic inside the loader is caught and reported as an error,
/// so one bad file does not stop a run.
pub fn berth_config(files: &[PathBuf], opts: &Options) -> Result<Value, String> {
    let lo = LoadOptions {
        files: files.to_vec(),
        env_files: opts.env_files.clone(),
        environ: opts.environ.clone(),
        dotenv: false,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        load(&lo).map(|l| berth_spec::render::to_json(&l.stack))
    }));
    match result {
        Ok(Ok(json)) => serde_json::from_str(&json).map_err(|e| format!("render::to_json gave invalid JSON: {e}")),
        Ok(Err(failed)) => {
            let lines: Vec<String> = failed
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| {
                    let at = d
                        .pos
                        .map(|p| {
                            let f = failed.sources.path(p.file).map(|f| f.display().to_string()).unwrap_or_default();
                            format!("{f}:{}:{}: ", p.line, p.col)
                        })
                        .unwrap_or_default();
                    format!("{at}[{}] {d}", d.code)
                })
                .collect();
            Err(if lines.is_empty() { "load failed without an error diagnostic".into() } else { lines.join("\n") })
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("berth panicked: {msg}"))
        }
    }
}

/// The variables the `--env-file`s add for docker (which has no such option): those not already in
/// the process environment, later files overriding earlier ones — the same precedence berth uses.
fn env_file_vars(opts: &Options) -> Result<Vec<(String, String)>, String> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for f in &opts.env_files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let lookup =
            |name: &str| opts.environ.iter().chain(vars.iter()).rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let parsed = berth_spec::env::parse_dotenv(&text, 0, &lookup).map_err(|d| format!("{}: {d}", f.display()))?;
        for (k, v) in parsed {
            vars.retain(|(k2, _)| *k2 != k);
            vars.push((k, v));
        }
    }
    vars.retain(|(k, _)| !opts.environ.iter().any(|(k2, _)| k2 == k));
    Ok(vars)
}

/// docker's side: `docker stack config -c FILE [-c FILE...]` in the first file's directory, stdout
/// parsed from YAML. `Err` is docker's stderr without its `level=warning` lines.
pub fn docker_config(files: &[PathBuf], opts: &Options) -> Result<Value, String> {
    let first = files.first().ok_or("no file given")?;
    let dir = first.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = Command::new(&opts.docker);
    cmd.arg("stack").arg("config").current_dir(&dir);
    for f in files {
        let abs = std::path::absolute(f).map_err(|e| format!("{}: {e}", f.display()))?;
        // Paths relative to the first file's directory, like the user would type them there.
        cmd.arg("-c").arg(abs.strip_prefix(&dir).map(Path::to_path_buf).unwrap_or(abs));
    }
    cmd.env_clear().envs(opts.environ.iter().map(|(k, v)| (k, v)));
    cmd.envs(env_file_vars(opts)?);
    let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", opts.docker.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let kept: Vec<&str> = err.lines().filter(|l| !l.contains("level=warning")).collect();
        return Err(kept.join("\n").trim().to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut o = serde_saphyr::options::Options::default();
    // yaml.v3 writes YAML 1.2: only true/false are booleans (it quotes "y", "on", ...).
    o.strict_booleans = true;
    serde_saphyr::from_str_with_options::<Value>(&text, o).map_err(|e| format!("cannot parse docker's output: {e}"))
}

/// Compares one file: berth in-process against `docker stack config -c FILE`.
pub fn compare_file(file: &Path, opts: &Options) -> FileReport {
    compare_stack(&[file.to_path_buf()], opts)
}

/// Compares several files merged into one stack (`docker stack config -c F1 -c F2 ...`); the
/// report carries the first file.
pub fn compare_stack(files: &[PathBuf], opts: &Options) -> FileReport {
    let berth = berth_config(files, opts);
    let docker = docker_config(files, opts);
    let verdict = match (berth, docker) {
        (Ok(mut b), Ok(mut d)) => {
            normalise(&mut b);
            normalise(&mut d);
            let diffs = diff(&b, &d);
            if diffs.is_empty() { Verdict::Identical } else { Verdict::Differing(diffs) }
        }
        (Err(b), Err(d)) => Verdict::BothRejected { berth: b, docker: d },
        (b, d) => Verdict::VerdictMismatch { berth: b.map(|_| ()), docker: d.map(|_| ()) },
    };
    FileReport { file: files.first().cloned().unwrap_or_default(), verdict }
}

/// Removes encoding differences that denote the same value, on either side. Each rule:
///
/// 1. Numbers are compared by value: an integral float (`2.0`) becomes the integer `2`, because
///    YAML and JSON writers differ in whether they print a fraction for whole floats.
///
/// Nothing else is rewritten: an empty mapping, `null` and an absent key stay distinct, strings
/// that look like numbers stay strings (docker prints byte sizes as `"52428800"` on purpose), and
/// list order is significant.
pub fn normalise(v: &mut Value) {
    match v {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        Value::Object(o) => o.values_mut().for_each(normalise),
        _ => {}
    }
}

/// Every place where `berth` and `docker` differ, as JSON paths in document order.
pub fn diff(berth: &Value, docker: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    diff_at(String::new(), Some(berth), Some(docker), &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn diff_at(path: String, b: Option<&Value>, d: Option<&Value>, out: &mut Vec<Difference>) {
    match (b, d) {
        (Some(Value::Object(bo)), Some(Value::Object(do_))) => {
            let mut keys: Vec<&String> = bo.keys().chain(do_.keys().filter(|k| !bo.contains_key(*k))).collect();
            keys.sort();
            for k in keys {
                diff_at(join(&path, k), bo.get(k), do_.get(k), out);
            }
        }
        (Some(Value::Array(ba)), Some(Value::Array(da))) => {
            for i in 0..ba.len().max(da.len()) {
                diff_at(format!("{path}[{i}]"), ba.get(i), da.get(i), out);
            }
        }
        (Some(Value::Number(x)), Some(Value::Number(y))) if x.as_f64() == y.as_f64() => {}
        (b, d) if b == d => {}
        (b, d) => out.push(Difference { path, berth: b.cloned(), docker: d.cloned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_reports_paths_and_both_values() {
        let b = json!({"services": {"web": {"image": "a", "ports": [{"target": 80}], "x": 1}}});
        let d = json!({"services": {"web": {"image": "b", "ports": [{"target": 80}, {"target": 81}]}}});
        let got: Vec<String> = diff(&b, &d).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                r#"services.web.image: berth="a" docker="b""#,
                r#"services.web.ports[1]: berth=(absent) docker={"target":81}"#,
                "services.web.x: berth=1 docker=(absent)",
            ]
        );
    }

    #[test]
    fn normalise_only_merges_integral_floats() {
        let mut v = json!({"a": 2.0, "b": "2", "c": 0.5, "d": null, "e": {}});
        normalise(&mut v);
        assert_eq!(v, json!({"a": 2, "b": "2", "c": 0.5, "d": null, "e": {}}));
        assert_eq!(diff(&json!({"x": "1"}), &json!({"x": 1})).len(), 1, "string vs number must differ");
    }

    #[test]
    fn compose_names_are_recognised() {
        for n in ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.images.yml", "docker-stack.yml"]
        {
            assert!(is_compose_name(n), "{n}");
        }
        for n in ["base.yaml", "prometheus.yml", "compose.json", "stack.txt"] {
            assert!(!is_compose_name(n), "{n}");
        }
    }

    #[test]
    fn summary_counts_and_fails_on_differences_only() {
        let r = |v| FileReport { file: "f".into(), verdict: v };
        let reports = [
            r(Verdict::Identical),
            r(Verdict::BothRejected { berth: "x".into(), docker: "y".into() }),
            r(Verdict::Differing(vec![])),
        ];
        let s = Summary::of(&reports);
        assert_eq!(s.to_string(), "1 identical, 1 differing, 0 verdict mismatch, 1 both rejected");
        assert!(!s.ok());
        assert!(Summary::of(&reports[..2]).ok());
    }
}
