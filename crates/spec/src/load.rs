//! Loading: compose files in, one normalised [`Stack`] out, the way docker/cli's `loader.Load` does it.
//!
//! Per file, in docker/cli's order: parse → version (all files must agree) → forbidden properties →
//! interpolate → schema validation → typed load with docker/cli's transforms (short syntaxes to long
//! forms, `env_file`s folded into `environment`, bind sources made absolute, `external.name`
//! moved to `name`, ...). Then all files are merged. Every stage collects all of its problems
//! (over all files) before the load fails; nothing here panics on any input.

use crate::diag::{Diagnostic, SourceMap};
use crate::env::Env;
use crate::model::{Duration, FileObjectConfig, NetworkConfig, Service, Stack, UnitBytes, VolumeConfig};
use crate::schema::{self, Version};
use crate::yaml::{self, Node, Pos, Value};
use serde::Deserialize;
use serde_json::{Map as JMap, Value as J};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to load and with which environment.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Compose files in order (later files override earlier ones); paths inside the files resolve
    /// against the first file's directory.
    pub files: Vec<PathBuf>,
    /// `--env-file`s (berth extension) for interpolation, read in order.
    pub env_files: Vec<PathBuf>,
    /// The process environment (the CLI passes `std::env::vars()`).
    pub environ: Vec<(String, String)>,
    /// Read `.env` beside the first file (berth extension).
    pub dotenv: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { files: Vec::new(), env_files: Vec::new(), environ: Vec::new(), dotenv: true }
    }
}

/// A successful load.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The merged, normalised stack.
    pub stack: Stack,
    /// Every file read (compose files, env files), for rendering diagnostics.
    pub sources: SourceMap,
    /// Warnings (ignored keys, deprecated forms, ...).
    pub warnings: Vec<Diagnostic>,
    /// The interpolated documents, one per compose file, in order.
    pub documents: Vec<Node>,
}

/// A failed load: every error of the first stage that failed (plus warnings found so far).
#[derive(Debug, Clone)]
pub struct LoadFailed {
    /// Every file read, for rendering diagnostics.
    pub sources: SourceMap,
    /// The problems, errors first.
    pub diagnostics: Vec<Diagnostic>,
}

/// The first of `compose.yaml`, `compose.yml`, `docker-compose.yml`, `docker-compose.yaml`,
/// `stack.yml`, `stack.yaml` that exists in `dir`.
pub fn default_file(dir: &Path) -> Option<PathBuf> {
    ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml", "stack.yml", "stack.yaml"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Loads compose files from disk.
///
/// The interpolation environment is, by priority: the process environment (`environ`), then the
/// `--env-file`s (a later file overrides an earlier one), then `.env` beside the first file. A
/// variable from a lower-priority source never overrides one already set by a higher one.
pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadFailed> {
    let mut sources = SourceMap::default();
    let mut diags = Vec::new();
    if opts.files.is_empty() {
        diags.push(
            Diagnostic::error("load.no-files", None, "", "no compose file given")
                .with_hint("pass a file with `-c FILE`, or run in a directory with compose.yaml or stack.yml"),
        );
        return Err(LoadFailed { sources, diagnostics: diags });
    }
    let first = &opts.files[0];
    let dir = first.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    // Like Go's filepath.Abs: absolute and lexically cleaned (no `..`), symlinks kept.
    let working_dir = std::path::absolute(&dir).unwrap_or(dir);
    let working_dir = PathBuf::from(clean_path(&working_dir.to_string_lossy()));

    let mut docs = Vec::new();
    for f in &opts.files {
        match std::fs::read_to_string(f) {
            Ok(text) => docs.push((f.clone(), text)),
            Err(e) => diags.push(io_error(f, &e, None, "")),
        }
    }

    // Interpolation environment: process env > --env-file (later wins) > .env.
    let mut env = Env::from_pairs(opts.environ.iter().cloned());
    let mut from_files = Env::new();
    let mut dotenv_paths: Vec<(PathBuf, bool)> = opts.env_files.iter().map(|p| (p.clone(), true)).collect();
    if opts.dotenv {
        dotenv_paths.push((working_dir.join(".env"), false));
    }
    for (path, explicit) in dotenv_paths {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                diags.push(io_error(&path, &e, None, ""));
                continue;
            }
        };
        let id = sources.add(path.clone(), text.clone());
        let lookup = |name: &str| env.get(name).or_else(|| from_files.get(name)).map(str::to_string);
        match crate::env::parse_dotenv(&text, id, &lookup) {
            Ok(vars) => {
                for (k, v) in vars {
                    if explicit {
                        from_files.set(k, v);
                    } else {
                        from_files.set_if_missing(k, v);
                    }
                }
            }
            Err(d) => diags.push(d),
        }
    }
    for (k, v) in from_files.iter() {
        env.set_if_missing(k, v);
    }
    if diags.iter().any(Diagnostic::is_error) {
        return Err(LoadFailed { sources, diagnostics: diags });
    }
    run(sources, &docs, &working_dir, &env, diags)
}

/// Same as [`load`] from in-memory documents (tests, fuzzing): `(path shown in messages, text)`.
/// `env` is the complete interpolation environment; `env_file`s named by services are read from
/// disk relative to `working_dir`.
pub fn load_documents(docs: &[(PathBuf, String)], working_dir: &Path, env: &Env) -> Result<Loaded, LoadFailed> {
    run(SourceMap::default(), docs, working_dir, env, Vec::new())
}

fn io_error(path: &Path, e: &std::io::Error, pos: Option<Pos>, key: &str) -> Diagnostic {
    let msg = match e.kind() {
        std::io::ErrorKind::NotFound => format!("file `{}` does not exist", path.display()),
        _ => format!("cannot read `{}`: {e}", path.display()),
    };
    Diagnostic::error("load.io", pos, key, msg)
}

fn fail(sources: SourceMap, mut diags: Vec<Diagnostic>) -> Result<Loaded, LoadFailed> {
    diags.sort_by_key(|d| (std::cmp::Reverse(d.severity), d.pos.map(|p| (p.file, p.line, p.col))));
    Err(LoadFailed { sources, diagnostics: diags })
}

fn run(
    mut sources: SourceMap,
    docs: &[(PathBuf, String)],
    working_dir: &Path,
    env: &Env,
    mut warnings: Vec<Diagnostic>,
) -> Result<Loaded, LoadFailed> {
    if docs.is_empty() {
        warnings.push(Diagnostic::error("load.no-files", None, "", "no compose file given"));
        return fail(sources, warnings);
    }
    // Parse.
    let mut errors = Vec::new();
    let mut parsed: Vec<(u32, Node)> = Vec::new();
    for (path, text) in docs {
        let id = sources.add(path.clone(), text.clone());
        match yaml::parse(text, id) {
            Ok(n) => parsed.push((id, n)),
            Err(d) => errors.push(d),
        }
    }
    if !errors.is_empty() {
        errors.extend(warnings);
        return fail(sources, errors);
    }

    // Version: every file must have the same.
    let mut version: Option<(Version, u32)> = None;
    for (id, doc) in &parsed {
        match schema::version_of(doc) {
            Ok(v) => match version {
                None => version = Some((v, *id)),
                Some((first, first_id)) if first != v => {
                    let name = |i: u32| sources.path(i).map(|p| p.display().to_string()).unwrap_or_default();
                    let pos = doc.get("version").map(|n| n.pos);
                    errors.push(
                        Diagnostic::error(
                            "load.version-mismatch",
                            pos,
                            "version",
                            format!(
                                "version mismatch: `{}` is version {first} but `{}` is version {v}",
                                name(first_id),
                                name(*id)
                            ),
                        )
                        .with_hint("give all files the same `version:` (or none)"),
                    );
                }
                Some(_) => {}
            },
            Err(d) => errors.push(d),
        }
    }
    if !errors.is_empty() {
        errors.extend(warnings);
        return fail(sources, errors);
    }
    let version = version.map(|v| v.0).unwrap_or(Version::LATEST);

    // Forbidden properties (errors) and ignored ones (warnings) on the raw documents like
    // docker/cli; then interpolation, schema validation and the `x-berth` checks. Unlike docker/cli
    // these three stages all run even when an earlier one failed, so that `berth check` reports
    // every problem at once. A schema error at a place whose interpolation already failed is
    // dropped: it would only restate the first error.
    for (_, doc) in &parsed {
        for d in schema::swarm_checks(doc) {
            if d.is_error() { errors.push(d) } else { warnings.push(d) }
        }
    }
    let mut failed_interpolation: Vec<String> = Vec::new();
    for (_, doc) in parsed.iter_mut() {
        for d in crate::interpolate::interpolate(doc, env) {
            if d.is_error() {
                failed_interpolation.push(d.path.clone());
                errors.push(d)
            } else {
                warnings.push(d)
            }
        }
    }
    for (_, doc) in &parsed {
        let checks = schema::validate(doc, version).into_iter().chain(crate::xberth::check_document(doc));
        for d in checks.chain(crate::replaced::check_document(doc)) {
            if failed_interpolation.iter().any(|p| d.path == *p || d.path.starts_with(&format!("{p}."))) {
                continue;
            }
            if d.is_error() { errors.push(d) } else { warnings.push(d) }
        }
    }
    if !errors.is_empty() {
        errors.extend(warnings);
        return fail(sources, errors);
    }

    // Typed load.
    let mut stacks = Vec::new();
    {
        let mut cx = Cx { working_dir, env, sources: &mut sources, errors: Vec::new(), warnings: Vec::new(), version };
        for (_, doc) in &parsed {
            if let Some(s) = cx.stack(doc) {
                stacks.push(s);
            }
        }
        errors.append(&mut cx.errors);
        warnings.append(&mut cx.warnings);
    }
    if !errors.is_empty() {
        errors.extend(warnings);
        return fail(sources, errors);
    }

    // Merge.
    let stack = match merge_stacks(stacks) {
        Ok(s) => s,
        Err(d) => {
            let mut all = d;
            all.extend(warnings);
            return fail(sources, all);
        }
    };
    let mut stack = stack;
    let documents: Vec<Node> = parsed.into_iter().map(|(_, n)| n).collect();
    let missing = secret_values(&mut stack, env, &documents);
    if !missing.is_empty() {
        let mut all = missing;
        all.extend(warnings);
        return fail(sources, all);
    }
    Ok(Loaded { stack, sources, warnings, documents })
}

/// Fills [`FileObjectConfig::value`] of every secret whose (merged) `x-berth` block says
/// `env: NAME` from the interpolation environment. A variable that is not set, or is empty (Swarm
/// refuses empty secrets), is an error at the `env:` of the last file that declares the secret.
fn secret_values(stack: &mut Stack, env: &Env, documents: &[Node]) -> Vec<Diagnostic> {
    use crate::xberth::{SecretSource, SecretValue, missing_secret_env};
    let mut diags = Vec::new();
    for (name, obj) in stack.secrets.iter_mut() {
        let Some(SecretSource::Env(var)) = obj.extras.get("x-berth").and_then(SecretSource::from_json) else {
            continue;
        };
        match env.get(&var) {
            Some(v) if !v.is_empty() => obj.value = Some(SecretValue::new(v.as_bytes())),
            other => {
                let at = documents.iter().rev().find_map(|d| d.at(&["secrets", name, "x-berth", "env"])).map(|n| n.pos);
                diags.push(missing_secret_env(name, &var, other.is_some(), at));
            }
        }
    }
    diags
}

/// Merges per-file stacks with docker/cli's rules.
fn merge_stacks(stacks: Vec<Stack>) -> Result<Stack, Vec<Diagnostic>> {
    crate::merge::merge(stacks).map_err(|d| vec![d])
}

/// Typed-load context: where relative paths start, the environment, and what went wrong.
struct Cx<'a> {
    working_dir: &'a Path,
    env: &'a Env,
    sources: &'a mut SourceMap,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    version: Version,
}

fn join_path(base: &str, key: &str) -> String {
    if base.is_empty() {
        return key.to_string();
    }
    let mut s = String::with_capacity(base.len() + 1 + key.len());
    s.push_str(base);
    s.push('.');
    s.push_str(key);
    s
}

/// Go's `fmt.Sprint` of a scalar; `None` for null and for collections.
fn go_string(n: &Node) -> Option<String> {
    match &n.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(go_float(*f)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Go's `%v` of a float64 (shortest representation, exponent for very large or small values).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        let s = format!("{f:e}");
        // Rust: 1e21, 1.5e-5; Go: 1e+21, 1.5e-05.
        if let Some((m, e)) = s.split_once('e') {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            let digits = if digits.len() < 2 { format!("0{digits}") } else { digits.to_string() };
            return format!("{m}e{sign}{digits}");
        }
        return s;
    }
    format!("{f}")
}

/// docker/cli's `toMapStringString`: every value to a string; null to `null` or `""`.
fn map_to_strings(n: &Node, allow_nil: bool) -> J {
    let Some(m) = n.as_map() else { return n.to_json() };
    let mut out = JMap::new();
    for (k, v) in m {
        let s = match go_string(v) {
            Some(s) => J::String(s),
            None if matches!(v.value, Value::Null) => {
                if allow_nil {
                    J::Null
                } else {
                    J::String(String::new())
                }
            }
            None => v.to_json(),
        };
        out.insert(k.clone(), s);
    }
    J::Object(out)
}

/// docker/cli's `transformMappingOrList`: `KEY=VAL` lists and mappings to a mapping of strings.
fn mapping_or_list(n: &Node, sep: char, allow_nil: bool) -> J {
    match &n.value {
        Value::Seq(items) => {
            let mut out = JMap::new();
            for it in items {
                let s = go_string(it).unwrap_or_default();
                match s.split_once(sep) {
                    Some((k, v)) => out.insert(k.to_string(), J::String(v.to_string())),
                    None if allow_nil => out.insert(s, J::Null),
                    None => out.insert(s, J::String(String::new())),
                };
            }
            J::Object(out)
        }
        Value::Map(_) => map_to_strings(n, allow_nil),
        _ => n.to_json(),
    }
}

/// docker/cli's `transformStringList`: a single string becomes a one-element list.
fn string_list(n: &Node) -> J {
    match &n.value {
        Value::Str(s) => J::Array(vec![J::String(s.clone())]),
        Value::Seq(items) => J::Array(items.iter().map(|i| go_string(i).map(J::String).unwrap_or(J::Null)).collect()),
        _ => n.to_json(),
    }
}

/// docker/cli's `transformHostsList`: mapping or list (`host:ip` / `host=ip`) to sorted/ordered `host:ip`.
fn hosts_list(n: &Node) -> J {
    let mut out: Vec<String> = Vec::new();
    match &n.value {
        Value::Map(m) => {
            for (k, v) in m {
                if let Some(v) = go_string(v) {
                    out.push(format!("{k}:{v}"));
                }
            }
            out.sort();
        }
        Value::Seq(items) => {
            for it in items {
                let s = go_string(it).unwrap_or_default();
                if let Some((k, v)) = s.split_once('=').or_else(|| s.split_once(':')) {
                    out.push(format!("{k}:{v}"));
                }
            }
        }
        _ => return n.to_json(),
    }
    let out = out
        .into_iter()
        .map(|hip| {
            let (host, ip) = hip.split_once(':').unwrap_or((&hip, ""));
            let ip = if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') { &ip[1..ip.len() - 1] } else { ip };
            J::String(format!("{host}:{ip}"))
        })
        .collect();
    J::Array(out)
}

impl Cx<'_> {
    fn err(&mut self, code: &'static str, pos: Pos, path: &str, msg: impl Into<String>) -> &mut Diagnostic {
        self.errors.push(Diagnostic::error(code, Some(pos), path, msg));
        self.errors.last_mut().expect("just pushed")
    }

    fn warn(&mut self, code: &'static str, pos: Pos, path: &str, msg: impl Into<String>) -> &mut Diagnostic {
        self.warnings.push(Diagnostic::warning(code, Some(pos), path, msg));
        self.warnings.last_mut().expect("just pushed")
    }

    fn stack(&mut self, doc: &Node) -> Option<Stack> {
        let mut stack = Stack { version: self.version.to_string(), ..Default::default() };
        let before = self.errors.len();
        let top = doc.as_map()?;
        for (key, node) in top {
            let Some(section) = node.as_map() else {
                if key.starts_with("x-") {
                    stack.extras.insert(key.clone(), node.to_json());
                } else if key != "version" && !matches!(node.value, Value::Null) {
                    self.err(
                        "load.type",
                        node.pos,
                        key,
                        format!("`{key}` must be a mapping, found {}", node.type_name()),
                    );
                }
                continue;
            };
            match key.as_str() {
                "services" => {
                    for (name, svc) in section {
                        if let Some(s) = self.service(name, svc) {
                            stack.services.insert(name.clone(), s);
                        }
                    }
                }
                "networks" => {
                    for (name, n) in section {
                        if let Some(net) = self.network(name, n) {
                            stack.networks.insert(name.clone(), net);
                        }
                    }
                }
                "volumes" => {
                    for (name, n) in section {
                        if let Some(v) = self.volume(name, n) {
                            stack.volumes.insert(name.clone(), v);
                        }
                    }
                }
                "secrets" | "configs" => {
                    let kind = if key == "secrets" { "secret" } else { "config" };
                    for (name, n) in section {
                        if let Some(o) = self.file_object(kind, name, n) {
                            if kind == "secret" {
                                stack.secrets.insert(name.clone(), o);
                            } else {
                                stack.configs.insert(name.clone(), o);
                            }
                        }
                    }
                }
                k if k.starts_with("x-") => {
                    stack.extras.insert(key.clone(), node.to_json());
                }
                _ => {}
            }
        }
        (self.errors.len() == before).then_some(stack)
    }

    /// Deserialises `json` (built from `node`) into `T`; on failure finds the offending key of `node`
    /// (by converting one key at a time) to report its position.
    fn typed<T: serde::de::DeserializeOwned>(&mut self, json: J, node: &Node, path: &str, what: &str) -> Option<T> {
        let err = match T::deserialize(&json) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let (pos, at) = locate::<T>(&json, Some(node), path, &|x| x, 0).unwrap_or((node.pos, path.to_string()));
        let msg = err.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg);
        let msg = msg
            .replace("expected u64", "expected a whole number of 0 or more")
            .replace("expected u32", "expected a whole number from 0 to 4294967295")
            .replace("expected i64", "expected a whole number")
            .replace("data did not match any variant of untagged enum Raw", "unexpected value");
        self.err("load.type", pos, &at, format!("invalid {what}: {msg}")).hint =
            Some("check the value's type and range against the compose file reference".into());
        None
    }

    fn duration(&mut self, n: &Node, path: &str) -> J {
        match &n.value {
            Value::Str(s) => match Duration::parse(s) {
                Ok(_) => J::String(s.clone()),
                Err(_) => {
                    self.err("load.duration", n.pos, path, format!("invalid duration `{s}`")).hint =
                        Some("use a number with a unit: `10s`, `1m30s`, `500ms`, `2h`".into());
                    J::Null
                }
            },
            Value::Null => J::Null,
            _ => {
                self.err(
                    "load.duration",
                    n.pos,
                    path,
                    format!("a duration must be a string like `10s`, found {}", n.type_name()),
                )
                .hint = Some("write it with a unit, e.g. `10s`".into());
                J::Null
            }
        }
    }

    fn size(&mut self, n: &Node, path: &str) -> J {
        match &n.value {
            Value::Int(i) => J::from(*i),
            Value::Str(s) => match UnitBytes::parse(s) {
                Ok(b) => J::from(b.0),
                Err(_) => {
                    self.err("load.size", n.pos, path, format!("invalid size `{s}`")).hint =
                        Some("use bytes or a unit: `512k`, `50M`, `1G`".into());
                    J::Null
                }
            },
            Value::Null => J::Null,
            _ => {
                self.err(
                    "load.size",
                    n.pos,
                    path,
                    format!("a size must be a number or a string, found {}", n.type_name()),
                );
                J::Null
            }
        }
    }

    fn shell_command(&mut self, n: &Node, path: &str) -> J {
        match &n.value {
            Value::Str(s) => match shlex_split(s) {
                Ok(words) => J::Array(words.into_iter().map(J::String).collect()),
                Err(e) => {
                    self.err("load.command", n.pos, path, format!("cannot split command: {e}")).hint =
                        Some("close the quote, or write the command as a list of arguments".into());
                    J::Null
                }
            },
            _ => n.to_json(),
        }
    }

    fn service(&mut self, name: &str, node: &Node) -> Option<Service> {
        let path = format!("services.{name}");
        let map = match &node.value {
            Value::Map(m) => m,
            Value::Null => &Default::default(),
            _ => {
                self.err(
                    "load.type",
                    node.pos,
                    &path,
                    format!("a service must be a mapping, found {}", node.type_name()),
                );
                return None;
            }
        };
        let before = self.errors.len();
        let warnings_before = self.warnings.len();
        let obj = self.service_json(&path, map);
        if self.errors.len() != before {
            return None;
        }
        // Deserialising from the owned tree moves its strings; only on failure is the tree built
        // again (same warnings) to find the offending key.
        let mut svc: Service = match Service::deserialize(J::Object(obj)) {
            Ok(svc) => svc,
            Err(_) => {
                self.warnings.truncate(warnings_before);
                let obj = self.service_json(&path, map);
                self.typed(J::Object(obj), node, &path, "service")?
            }
        };
        svc.extras.retain(|k, _| k.starts_with("x-"));
        self.resolve_environment(&mut svc, map, &path);
        self.resolve_volume_paths(&mut svc, map, &path);
        (self.errors.len() == before).then_some(svc)
    }

    /// A service's mapping as JSON with docker/cli's transforms applied (short syntaxes to long forms).
    fn service_json(&mut self, path: &str, map: &yaml::Map) -> JMap<String, J> {
        let mut obj = JMap::new();
        for (key, v) in map {
            let p = join_path(path, key);
            let j = match key.as_str() {
                "build" => match &v.value {
                    Value::Str(s) => serde_json::json!({ "context": s }),
                    Value::Map(m) => {
                        let mut b = JMap::new();
                        for (k, bv) in m {
                            let j = match k.as_str() {
                                "args" => mapping_or_list(bv, '=', true),
                                "labels" => mapping_or_list(bv, '=', false),
                                "cache_from" => string_list(bv),
                                "extra_hosts" => hosts_list(bv),
                                _ => bv.to_json(),
                            };
                            b.insert(k.clone(), j);
                        }
                        J::Object(b)
                    }
                    _ => v.to_json(),
                },
                "command" | "entrypoint" => self.shell_command(v, &p),
                "configs" | "secrets" => match v.as_seq() {
                    Some(items) => J::Array(
                        items
                            .iter()
                            .map(|i| match &i.value {
                                Value::Str(s) => serde_json::json!({ "source": s }),
                                _ => i.to_json(),
                            })
                            .collect(),
                    ),
                    None => v.to_json(),
                },
                "deploy" => self.deploy(v, &p),
                "dns" | "dns_search" | "env_file" | "tmpfs" => string_list(v),
                "environment" => mapping_or_list(v, '=', true),
                "labels" | "sysctls" => mapping_or_list(v, '=', false),
                "expose" => match v.as_seq() {
                    Some(items) => {
                        J::Array(items.iter().map(|i| J::String(go_string(i).unwrap_or_default())).collect())
                    }
                    None => v.to_json(),
                },
                "extra_hosts" => hosts_list(v),
                "healthcheck" => self.healthcheck(v, &p),
                "logging" => match v.as_map() {
                    Some(m) => {
                        let mut l = JMap::new();
                        for (k, lv) in m {
                            let j = if k == "options" { map_to_strings(lv, false) } else { lv.to_json() };
                            l.insert(k.clone(), j);
                        }
                        J::Object(l)
                    }
                    None => v.to_json(),
                },
                "networks" => match &v.value {
                    Value::Seq(items) => {
                        J::Object(items.iter().map(|i| (go_string(i).unwrap_or_default(), J::Null)).collect())
                    }
                    Value::Map(m) => {
                        let mut nets = JMap::new();
                        for (k, nv) in m {
                            let j = match nv.as_map() {
                                Some(nm) => J::Object(
                                    nm.iter()
                                        .map(|(nk, x)| {
                                            let j = if nk == "driver_opts" {
                                                map_to_strings(x, false)
                                            } else {
                                                x.to_json()
                                            };
                                            (nk.clone(), j)
                                        })
                                        .collect(),
                                ),
                                None => nv.to_json(),
                            };
                            nets.insert(k.clone(), j);
                        }
                        J::Object(nets)
                    }
                    _ => v.to_json(),
                },
                "ports" => self.ports(v, &p),
                "stop_grace_period" => self.duration(v, &p),
                "ulimits" => v.to_json(),
                "volumes" => self.service_volumes(v, &p),
                _ => v.to_json(),
            };
            obj.insert(key.clone(), j);
        }
        obj
    }

    fn deploy(&mut self, n: &Node, path: &str) -> J {
        let Some(m) = n.as_map() else { return n.to_json() };
        let mut out = JMap::new();
        for (k, v) in m {
            let p = join_path(path, k);
            let j = match k.as_str() {
                "labels" => mapping_or_list(v, '=', false),
                "update_config" | "rollback_config" => self.durations_in(v, &p, &["delay", "monitor"]),
                "restart_policy" => self.durations_in(v, &p, &["delay", "window"]),
                "resources" => match v.as_map() {
                    Some(rm) => {
                        let mut r = JMap::new();
                        for (rk, rv) in rm {
                            let rp = join_path(&p, rk);
                            let j = match rv.as_map() {
                                Some(lm) => {
                                    let mut l = JMap::new();
                                    for (lk, lv) in lm {
                                        let j = match lk.as_str() {
                                            "memory" => self.size(lv, &join_path(&rp, lk)),
                                            "cpus" => match go_string(lv) {
                                                Some(s) if !matches!(lv.value, Value::Str(_)) => J::String(s),
                                                _ => lv.to_json(),
                                            },
                                            _ => lv.to_json(),
                                        };
                                        l.insert(lk.clone(), j);
                                    }
                                    J::Object(l)
                                }
                                None => rv.to_json(),
                            };
                            r.insert(rk.clone(), j);
                        }
                        J::Object(r)
                    }
                    None => v.to_json(),
                },
                _ => v.to_json(),
            };
            out.insert(k.clone(), j);
        }
        J::Object(out)
    }

    fn durations_in(&mut self, n: &Node, path: &str, keys: &[&str]) -> J {
        let Some(m) = n.as_map() else { return n.to_json() };
        let mut out = JMap::new();
        for (k, v) in m {
            let j = if keys.contains(&k.as_str()) { self.duration(v, &join_path(path, k)) } else { v.to_json() };
            out.insert(k.clone(), j);
        }
        J::Object(out)
    }

    fn healthcheck(&mut self, n: &Node, path: &str) -> J {
        let Some(m) = n.as_map() else { return n.to_json() };
        let mut out = JMap::new();
        for (k, v) in m {
            let p = join_path(path, k);
            let j = match k.as_str() {
                "test" => match &v.value {
                    Value::Str(s) => serde_json::json!(["CMD-SHELL", s]),
                    _ => v.to_json(),
                },
                "timeout" | "interval" | "start_period" | "start_interval" => self.duration(v, &p),
                _ => v.to_json(),
            };
            out.insert(k.clone(), j);
        }
        J::Object(out)
    }

    fn ports(&mut self, n: &Node, path: &str) -> J {
        let Some(items) = n.as_seq() else { return n.to_json() };
        let mut out = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let p = format!("{path}.{i}");
            let spec = match &it.value {
                Value::Int(x) => x.to_string(),
                Value::Str(s) => s.clone(),
                _ => {
                    out.push(it.to_json());
                    continue;
                }
            };
            match parse_port_spec(&spec) {
                Ok((ports, ignored_ip)) => {
                    if let Some(ip) = ignored_ip {
                        self.warn(
                            "load.port-ip-ignored",
                            it.pos,
                            &p,
                            format!("the host IP `{ip}` in `{spec}` is ignored: the service will listen on 0.0.0.0"),
                        )
                        .hint = Some(
                            "Swarm publishes ports on every address of every node; restrict access with a firewall"
                                .into(),
                        );
                    }
                    out.extend(ports);
                }
                Err(e) => {
                    self.err("load.port", it.pos, &p, format!("invalid port `{spec}`: {e}")).hint =
                        Some("use `[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]`, e.g. `8080:80` or `53:53/udp`".into());
                }
            }
        }
        J::Array(out)
    }

    fn service_volumes(&mut self, n: &Node, path: &str) -> J {
        let Some(items) = n.as_seq() else { return n.to_json() };
        let mut out = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let p = format!("{path}.{i}");
            match &it.value {
                Value::Str(s) => match parse_volume(s) {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        self.err("load.volume", it.pos, &p, format!("invalid volume `{s}`: {e}")).hint = Some(
                            "use `[SOURCE:]TARGET[:OPTIONS]`, e.g. `data:/var/lib/data` or `./conf:/etc/app:ro`".into(),
                        );
                    }
                },
                Value::Map(m) => {
                    let mut o = JMap::new();
                    for (k, v) in m {
                        let j = if k == "tmpfs" {
                            match v.as_map() {
                                Some(tm) => {
                                    let mut t = JMap::new();
                                    for (tk, tv) in tm {
                                        let j = if tk == "size" {
                                            self.size(tv, &format!("{p}.tmpfs.size"))
                                        } else {
                                            tv.to_json()
                                        };
                                        t.insert(tk.clone(), j);
                                    }
                                    J::Object(t)
                                }
                                None => v.to_json(),
                            }
                        } else {
                            v.to_json()
                        };
                        o.insert(k.clone(), j);
                    }
                    out.push(J::Object(o));
                }
                _ => out.push(it.to_json()),
            }
        }
        J::Array(out)
    }

    /// docker/cli's `resolveEnvironment`: `env_file`s then `environment`; an empty or missing value is
    /// taken from the environment when the variable is set there. docker/cli looks at the process
    /// environment only; berth uses the whole interpolation environment (process, `--env-file`, `.env`).
    fn resolve_environment(&mut self, svc: &mut Service, map: &indexmap::IndexMap<String, Node>, path: &str) {
        let mut environment: BTreeMap<String, Option<String>> = BTreeMap::new();
        let env = self.env;
        let update = |environment: &mut BTreeMap<String, Option<String>>, vars: Vec<(String, Option<String>)>| {
            for (k, v) in vars {
                let empty = v.as_deref().is_none_or(str::is_empty);
                match env.get(&k) {
                    Some(val) if empty => environment.insert(k, Some(val.to_string())),
                    _ => environment.insert(k, v),
                };
            }
        };
        if !svc.env_file.is_empty() {
            let node = map.get("env_file");
            let mut vars: BTreeMap<String, Option<String>> = BTreeMap::new();
            for (i, file) in svc.env_file.clone().iter().enumerate() {
                let item = node.and_then(|n| n.as_seq().and_then(|s| s.get(i)).or(Some(n)));
                let pos = item.map(|n| n.pos).unwrap_or_default();
                let p = if node.and_then(Node::as_seq).is_some() {
                    format!("{path}.env_file.{i}")
                } else {
                    format!("{path}.env_file")
                };
                let abs = abs_path(self.working_dir, file);
                match std::fs::read(&abs) {
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        let id = self.sources.add(abs.clone(), text.clone());
                        match crate::env::parse_env_file(&text, id) {
                            Ok(kv) => {
                                for (k, v) in kv {
                                    vars.insert(k, v);
                                }
                            }
                            Err(d) => self.errors.push(d),
                        }
                    }
                    Err(e) => {
                        let mut d = io_error(&abs, &e, Some(pos), &p);
                        d.hint = Some(format!("env_file paths are relative to `{}`", self.working_dir.display()));
                        self.errors.push(d);
                    }
                }
            }
            update(&mut environment, vars.into_iter().collect());
        }
        update(&mut environment, std::mem::take(&mut svc.environment).into_iter().collect());
        svc.environment = environment;
    }

    /// docker/cli's `resolveVolumePaths`: bind sources get `~` expanded and become absolute.
    fn resolve_volume_paths(&mut self, svc: &mut Service, map: &indexmap::IndexMap<String, Node>, path: &str) {
        let vnode = map.get("volumes");
        for (i, v) in svc.volumes.iter_mut().enumerate() {
            if v.kind != "bind" {
                continue;
            }
            let pos = vnode.and_then(|n| n.as_seq()).and_then(|s| s.get(i)).map(|n| n.pos).unwrap_or_default();
            let p = format!("{path}.volumes.{i}");
            if v.source.is_empty() {
                self.errors.push(
                    Diagnostic::error("load.volume", Some(pos), &p, "a bind mount needs a `source`")
                        .with_hint("set `source:` to a host path"),
                );
                continue;
            }
            let mut src = v.source.clone();
            if src.starts_with('~') {
                match self.env.get("HOME") {
                    Some(home) => src = src.replacen('~', home, 1),
                    None => {
                        self.warnings.push(
                            Diagnostic::warning("load.home", Some(pos), &p, "cannot expand `~`: HOME is not set")
                                .with_hint("set HOME or write an absolute path"),
                        );
                    }
                }
            }
            if !src.starts_with('/') && !is_windows_abs(&src) {
                src = abs_path(self.working_dir, &src).to_string_lossy().into_owned();
            }
            v.source = src;
        }
    }

    fn with_extras(n: &Node, f: impl Fn(&str, &Node) -> J) -> J {
        match &n.value {
            Value::Null => J::Object(JMap::new()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), f(k, v))).collect()),
            _ => n.to_json(),
        }
    }

    fn network(&mut self, name: &str, n: &Node) -> Option<NetworkConfig> {
        let path = format!("networks.{name}");
        let json = Self::with_extras(n, |k, v| match k {
            "labels" => mapping_or_list(v, '=', false),
            "driver_opts" => map_to_strings(v, false),
            _ => v.to_json(),
        });
        let mut net: NetworkConfig = self.typed(json, n, &path, "network")?;
        net.extras.retain(|k, _| k.starts_with("x-"));
        if net.external.external {
            if !net.external.name.is_empty() {
                if !net.name.is_empty() {
                    self.err(
                        "load.conflict",
                        n.pos,
                        &path,
                        format!(
                            "network {name}: network.external.name and network.name conflict; only use network.name"
                        ),
                    );
                    return None;
                }
                if self.version >= (Version { major: 3, minor: 5 }) {
                    self.deprecated_external(n, &path, "network", name);
                }
                net.name = std::mem::take(&mut net.external.name);
            } else if net.name.is_empty() {
                net.name = name.to_string();
            }
        } else {
            // docker/cli only keeps `x-*` fields of external networks.
            net.extras.clear();
        }
        Some(net)
    }

    fn deprecated_external(&mut self, n: &Node, path: &str, kind: &str, name: &str) {
        let pos = n.get("external").map(|e| e.pos).unwrap_or(n.pos);
        self.warn(
            "load.deprecated",
            pos,
            &format!("{path}.external.name"),
            format!("{kind} {name}: {kind}.external.name is deprecated in favor of {kind}.name"),
        )
        .hint = Some("write `external: true` and `name: ...`".into());
    }

    fn volume(&mut self, name: &str, n: &Node) -> Option<VolumeConfig> {
        let path = format!("volumes.{name}");
        let json = Self::with_extras(n, |k, v| match k {
            "labels" => mapping_or_list(v, '=', false),
            "driver_opts" => map_to_strings(v, false),
            _ => v.to_json(),
        });
        let mut json = json;
        // x-cluster-spec: byte sizes and segment lists.
        if let (Some(spec), J::Object(obj)) = (n.get("x-cluster-spec"), &mut json) {
            let sp = format!("{path}.x-cluster-spec");
            let mut sj = spec.to_json();
            if let Some(cr) = spec.get("capacity_range").and_then(Node::as_map) {
                for (k, v) in cr {
                    let j = self.size(v, &format!("{sp}.capacity_range.{k}"));
                    if let Some(o) = sj.get_mut("capacity_range").and_then(J::as_object_mut) {
                        o.insert(k.clone(), j);
                    }
                }
            }
            if let Some(ar) = spec.get("accessibility_requirements").and_then(Node::as_map) {
                for (k, list) in ar {
                    if let (Some(items), Some(target)) = (
                        list.as_seq(),
                        sj.get_mut("accessibility_requirements").and_then(|a| a.get_mut(k)).and_then(J::as_array_mut),
                    ) {
                        for (i, item) in items.iter().enumerate() {
                            if let (Some(seg), Some(o)) =
                                (item.get("segments"), target.get_mut(i).and_then(J::as_object_mut))
                            {
                                o.insert("segments".into(), mapping_or_list(seg, '=', false));
                            }
                        }
                    }
                }
            }
            obj.insert("x-cluster-spec".into(), sj);
        }
        let mut vol: VolumeConfig = self.typed(json, n, &path, "volume")?;
        vol.extras.retain(|k, _| k.starts_with("x-"));
        if vol.external.external {
            let conflict = if !vol.driver.is_empty() {
                Some("driver")
            } else if !vol.driver_opts.is_empty() {
                Some("driver_opts")
            } else if !vol.labels.is_empty() {
                Some("labels")
            } else {
                None
            };
            if let Some(key) = conflict {
                let pos = n.get(key).map(|k| k.anchor()).unwrap_or(n.pos);
                self.err(
                    "load.conflict",
                    pos,
                    &format!("{path}.{key}"),
                    format!("conflicting parameters \"external\" and \"{key}\" specified for volume \"{name}\""),
                )
                .hint = Some(format!("an external volume already exists; remove `{key}` or `external`"));
                return None;
            }
            if !vol.external.name.is_empty() {
                if !vol.name.is_empty() {
                    self.err(
                        "load.conflict",
                        n.pos,
                        &path,
                        format!("volume {name}: volume.external.name and volume.name conflict; only use volume.name"),
                    );
                    return None;
                }
                if self.version >= (Version { major: 3, minor: 4 }) {
                    self.deprecated_external(n, &path, "volume", name);
                }
                vol.name = std::mem::take(&mut vol.external.name);
            } else if vol.name.is_empty() {
                vol.name = name.to_string();
            }
        } else {
            // docker/cli only keeps `x-*` fields of external volumes (`x-cluster-spec` is a real field).
            vol.extras.clear();
        }
        Some(vol)
    }

    fn file_object(&mut self, kind: &str, name: &str, n: &Node) -> Option<FileObjectConfig> {
        let path = format!("{kind}s.{name}");
        let json = Self::with_extras(n, |k, v| match k {
            "labels" => mapping_or_list(v, '=', false),
            "driver_opts" => map_to_strings(v, false),
            _ => v.to_json(),
        });
        let mut obj: FileObjectConfig = self.typed(json, n, &path, kind)?;
        obj.extras.retain(|k, _| k.starts_with("x-"));
        if obj.external.external {
            if !obj.external.name.is_empty() {
                if !obj.name.is_empty() {
                    self.err(
                        "load.conflict",
                        n.pos,
                        &path,
                        format!("{kind} {name}: {kind}.external.name and {kind}.name conflict; only use {kind}.name"),
                    );
                    return None;
                }
                if self.version >= (Version { major: 3, minor: 5 }) {
                    self.deprecated_external(n, &path, kind, name);
                }
                obj.name = std::mem::take(&mut obj.external.name);
            } else if obj.name.is_empty() {
                obj.name = name.to_string();
            }
        } else if !obj.driver.is_empty() {
            if !obj.file.is_empty() {
                let pos = n.get("file").map(|k| k.anchor()).unwrap_or(n.pos);
                self.err(
                    "load.conflict",
                    pos,
                    &path,
                    format!("{kind} {name}: {kind}.driver and {kind}.file conflict; only use {kind}.driver"),
                );
                return None;
            }
        } else if kind == "secret" && obj.file.is_empty() && obj.extras.contains_key("x-berth") {
            // berth extension: the value is generated or comes from the environment (see
            // `secret_values`); there is no file to resolve.
        } else {
            // Like docker/cli, also when `file` is empty (the result is the working directory).
            obj.file = abs_path(self.working_dir, &obj.file).to_string_lossy().into_owned();
        }
        Some(obj)
    }
}

/// Finds where a value that fails to deserialise into `T` goes wrong: keeps one member (or list
/// item) at a time, wrapped back into the whole by `wrap`, and descends into the first that still
/// fails. All model structs have serde defaults, so such partial documents are otherwise valid.
fn locate<T: serde::de::DeserializeOwned>(
    json: &J,
    node: Option<&Node>,
    path: &str,
    wrap: &dyn Fn(J) -> J,
    depth: usize,
) -> Option<(Pos, String)> {
    let here = node.map(|n| (n.pos, path.to_string()));
    if depth > 32 {
        return here;
    }
    let fails = |v: J| T::deserialize(&wrap(v)).is_err();
    match json {
        J::Object(obj) => {
            for (k, v) in obj {
                let single = |x: J| {
                    let mut one = JMap::new();
                    one.insert(k.clone(), x);
                    J::Object(one)
                };
                if fails(single(v.clone())) {
                    let child = node.and_then(|n| n.get(k));
                    let inner = |x: J| wrap(single(x));
                    return locate::<T>(v, child, &join_path(path, k), &inner, depth + 1).or(here);
                }
            }
            here
        }
        J::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                if fails(J::Array(vec![v.clone()])) {
                    // Short syntaxes expand to several items: positions map 1:1 only when counts match.
                    let child = node.and_then(Node::as_seq).filter(|s| s.len() == items.len()).and_then(|s| s.get(i));
                    let inner = |x: J| wrap(J::Array(vec![x]));
                    return locate::<T>(v, child.or(node), &format!("{path}.{i}"), &inner, depth + 1).or(here);
                }
            }
            here
        }
        _ => here,
    }
}

/// `C:\x`, `C:/x` or `\\server\share`.
fn is_windows_abs(p: &str) -> bool {
    let b = p.as_bytes();
    p.starts_with("\\\\")
        || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/'))
}

/// Go's `absPath`: absolute paths unchanged, others joined to `base` and cleaned lexically.
fn abs_path(base: &Path, p: &str) -> PathBuf {
    if Path::new(p).is_absolute() {
        return PathBuf::from(p);
    }
    let joined = format!("{}/{}", base.to_string_lossy(), p);
    PathBuf::from(clean_path(&joined))
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// google/shlex's `Split`: words separated by whitespace, `'...'` literal, `"..."` with backslash
/// escapes, a backslash outside quotes escapes the next character, `#` at the start of a word starts
/// a comment.
pub(crate) fn shlex_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        // Skip whitespace.
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '#' {
            // Comment to end of line.
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\\' => match chars.next() {
                    Some(n) => word.push(n),
                    None => return Err("EOF found after escape character".into()),
                },
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => word.push(n),
                        None => return Err("EOF found when expecting closing quote".into()),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n) => word.push(n),
                            None => return Err("EOF found after escape character".into()),
                        },
                        Some(n) => word.push(n),
                        None => return Err("EOF found when expecting closing quote".into()),
                    }
                },
                _ => word.push(c),
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// Go's `strconv.ParseUint(s, 10, 16)`.
fn parse_u16(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= 65535)
}

/// go-connections `nat.ParsePortRange`.
fn parse_port_range(s: &str) -> Option<(u64, u64)> {
    if s.is_empty() {
        return None;
    }
    if !s.contains('-') {
        let v = parse_u16(s)?;
        return Some((v, v));
    }
    let mut parts = s.split('-');
    let start = parse_u16(parts.next().unwrap_or(""))?;
    let end = parse_u16(parts.next().unwrap_or(""))?;
    (end >= start).then_some((start, end))
}

/// A port short syntax (`[ip:][host:]container[/proto]`, ranges allowed) to long-form entries, like
/// docker/cli's `toServicePortConfigs` (nat.ParsePortSpecs + ConvertPortToPortConfig). Also returns
/// the host IP that Swarm ignores, if any.
fn parse_port_spec(raw: &str) -> Result<(Vec<J>, Option<String>), String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    // SplitProtoPort.
    let (proto, container) = {
        let pp: Vec<&str> = container.split('/').collect();
        if container.is_empty() || pp[0].is_empty() {
            ("", "")
        } else if pp.len() == 1 || pp[1].is_empty() {
            ("tcp", pp[0])
        } else {
            (pp[1], pp[0])
        }
    };
    let mut ip = ip;
    if ip.starts_with('[') {
        match ip.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(inner) => ip = inner.to_string(),
            None => return Err(format!("invalid IP address {ip}")),
        }
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) = parse_port_range(container).ok_or_else(|| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host).ok_or_else(|| format!("invalid hostPort: {host}"))?
    };
    if !host.is_empty() && (end - start) != (hend - hstart) && end != start {
        return Err(format!("invalid ranges specified for container and host Ports: {container} and {host}"));
    }
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    // Bindings keyed by "port/proto", in Go's sorted-string order.
    let mut bindings: BTreeMap<String, (u64, Vec<(u64, u64)>)> = BTreeMap::new();
    for i in 0..=(end - start) {
        let cport = start + i;
        let (hs, he) = if host.is_empty() {
            (0, 0)
        } else if start == end && hstart != hend {
            (hstart, hend)
        } else {
            (hstart + i, hstart + i)
        };
        bindings.entry(format!("{cport}/{proto}")).or_insert((cport, Vec::new())).1.push((hs, he));
    }
    // docker/cli warns once per binding; one note per entry is enough.
    let ignored = match ip.parse::<std::net::IpAddr>() {
        Ok(addr) if !addr.is_unspecified() => Some(ip.clone()),
        _ => None,
    };
    let mut out = Vec::new();
    for (_, (cport, b)) in bindings {
        for (hs, he) in b {
            for published in hs..=he {
                let mut o = JMap::new();
                o.insert("mode".into(), J::String("ingress".into()));
                o.insert("target".into(), J::from(cport));
                if published != 0 {
                    o.insert("published".into(), J::from(published));
                }
                o.insert("protocol".into(), J::String(proto.clone()));
                out.push(J::Object(o));
            }
        }
    }
    Ok((out, ignored))
}

/// docker/cli's `ParseVolume`: `[source:]target[:options]` to a long-form volume.
fn parse_volume(spec: &str) -> Result<J, String> {
    let mut source = String::new();
    let mut target = String::new();
    let mut read_only = false;
    let mut nocopy = false;
    let mut propagation = String::new();
    let finish = |source: &str, target: &str, read_only: bool, nocopy: bool, propagation: &str| {
        let mut o = JMap::new();
        let kind = if source.is_empty() {
            "volume"
        } else if is_file_path(source) {
            "bind"
        } else {
            "volume"
        };
        o.insert("type".into(), J::String(kind.into()));
        if !source.is_empty() {
            o.insert("source".into(), J::String(source.into()));
        }
        o.insert("target".into(), J::String(target.into()));
        if read_only {
            o.insert("read_only".into(), J::Bool(true));
        }
        if !propagation.is_empty() {
            o.insert("bind".into(), serde_json::json!({ "propagation": propagation }));
        }
        if nocopy {
            o.insert("volume".into(), serde_json::json!({ "nocopy": true }));
        }
        J::Object(o)
    };
    match spec.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => return Ok(finish("", spec, false, false, "")),
        _ => {}
    }
    let mut buffer: Vec<char> = Vec::new();
    let chars: Vec<Option<char>> = spec.chars().map(Some).chain(std::iter::once(None)).collect();
    for c in chars {
        let is_drive = c == Some(':') && buffer.len() == 1 && buffer[0].is_alphabetic();
        if is_drive {
            buffer.push(':');
            continue;
        }
        if c == Some(':') || c.is_none() {
            let s: String = buffer.iter().collect();
            if buffer.is_empty() {
                return Err("empty section between colons".into());
            } else if source.is_empty() && c.is_none() {
                target = s;
            } else if source.is_empty() {
                source = s;
            } else if target.is_empty() {
                target = s;
            } else if c == Some(':') {
                return Err("too many colons".into());
            } else {
                for opt in s.split(',') {
                    match opt {
                        "ro" => read_only = true,
                        "rw" => read_only = false,
                        "nocopy" => nocopy = true,
                        "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                            propagation = opt.to_string()
                        }
                        _ => {}
                    }
                }
            }
            buffer.clear();
        } else if let Some(c) = c {
            buffer.push(c);
        }
    }
    Ok(finish(&source, &target, read_only, nocopy, &propagation))
}

/// docker/cli's `isFilePath`: `.`, `/`, `~` prefixes, `\\` pipes and `C:` drives are paths.
fn is_file_path(source: &str) -> bool {
    match source.as_bytes().first() {
        Some(b'.' | b'/' | b'~') => return true,
        None => return false,
        _ => {}
    }
    let mut it = source.chars();
    let first = it.next().unwrap_or(' ');
    if source.chars().count() == 1 {
        return false;
    }
    if source.starts_with("\\\\") {
        return true;
    }
    let next = source.as_bytes().get(first.len_utf8()).copied();
    next == Some(b':') && first.is_alphabetic()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex_splits_like_google_shlex() {
        assert_eq!(shlex_split("bundle exec thin -p 3000").unwrap(), ["bundle", "exec", "thin", "-p", "3000"]);
        assert_eq!(shlex_split(r#"echo "a b" 'c d' e\ f"#).unwrap(), ["echo", "a b", "c d", "e f"]);
        assert_eq!(shlex_split("a # comment").unwrap(), ["a"]);
        assert_eq!(shlex_split("a#b").unwrap(), ["a#b"]);
        assert!(shlex_split("echo 'oops").is_err());
        assert!(shlex_split("x\\").is_err());
    }

    #[test]
    fn port_ranges_expand_like_docker_cli() {
        let (p, _) = parse_port_spec("9090-9091:8080-8081").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0]["target"], 8080);
        assert_eq!(p[0]["published"], 9090);
        let (p, _) = parse_port_spec("1-3:5").unwrap();
        assert_eq!(p.iter().map(|x| x["published"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
        let (p, ip) = parse_port_spec("127.0.0.1:8001:8001").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(ip.as_deref(), Some("127.0.0.1"));
        let (p, ip) = parse_port_spec("[::1]:5000-5001:5000-5001").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(ip.as_deref(), Some("::1"));
        assert_eq!(parse_port_spec("0.0.0.0:80:80").unwrap().1, None);
        let (p, _) = parse_port_spec("53:53/udp").unwrap();
        assert_eq!(p[0]["protocol"], "udp");
        let (p, _) = parse_port_spec("3000").unwrap();
        assert!(p[0].get("published").is_none());
        assert!(parse_port_spec("1-3:5-6").is_err());
        assert!(parse_port_spec("80/xyz").is_err());
        assert!(parse_port_spec("99999").is_err());
        assert!(parse_port_spec("a:80").is_err());
    }

    #[test]
    fn volume_short_syntax_parses_like_docker_cli() {
        let v = parse_volume("/var/lib/mysql").unwrap();
        assert_eq!(v, serde_json::json!({"type": "volume", "target": "/var/lib/mysql"}));
        let v = parse_volume("~/configs:/etc/configs/:ro").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "bind", "source": "~/configs", "target": "/etc/configs/", "read_only": true})
        );
        let v = parse_volume("data:/x:nocopy").unwrap();
        assert_eq!(v["volume"]["nocopy"], true);
        let v = parse_volume("C:\\data:/x").unwrap();
        assert_eq!(v["type"], "bind");
        assert!(parse_volume("ab::c").is_err());
        // `a:` looks like a Windows drive, so docker/cli reads `a::b` as source `a:`, target `b`.
        assert_eq!(parse_volume("a::b").unwrap()["source"], "a:");
        assert!(parse_volume("/a:/b:ro:x").is_err());
        assert!(parse_volume("").is_err());
    }

    #[test]
    fn paths_are_cleaned_like_go() {
        assert_eq!(abs_path(Path::new("/foo"), "."), PathBuf::from("/foo"));
        assert_eq!(abs_path(Path::new("/foo"), "./static"), PathBuf::from("/foo/static"));
        assert_eq!(abs_path(Path::new("/foo/bar"), "../x"), PathBuf::from("/foo/x"));
        assert_eq!(abs_path(Path::new("/foo"), ""), PathBuf::from("/foo"));
        assert_eq!(abs_path(Path::new("/foo"), "/abs/"), PathBuf::from("/abs/"));
    }

    #[test]
    fn go_float_formats_like_sprint() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
    }

    /// The typed load alone (no schema validation in front of it) must not panic on anything.
    fn typed_only(text: &str) {
        let Ok(doc) = yaml::parse(text, 0) else { return };
        let mut sources = SourceMap::default();
        let env = Env::new();
        let mut cx = Cx {
            working_dir: Path::new("/w"),
            env: &env,
            sources: &mut sources,
            errors: Vec::new(),
            warnings: Vec::new(),
            version: Version::LATEST,
        };
        let _ = cx.stack(&doc);
    }

    const VALUES: &[&str] = &[
        "x",
        "1",
        "-1",
        "1.5e300",
        "true",
        "null",
        "''",
        "'a b \"c'",
        "[]",
        "{}",
        "[1, a, '::', '1-2:3-4', ~, [], {}]",
        "{a: 1, b: [c], c: {d: e}}",
        "['a::b', ':', '/x:/y:ro,z', '~/a:/b', {type: bind}, {type: tmpfs, tmpfs: {size: x}}]",
        "{replicas: -1, labels: [1, a=b], resources: {limits: {memory: 1q, cpus: 1}, reservations: []}}",
        "{test: 'a \"', interval: 1x, timeout: 1}",
        "{soft: a, hard: []}",
        "[{target: 99999999999}]",
        "{nofile: 1.5, x: {soft: 1}}",
        "[{source: a, mode: -1}, 1]",
        "'80/xyz'",
        "{frontend: {aliases: 1, driver_opts: 1}}",
        "{external: {name: 1}, name: x}",
        "{external: true, driver: x, labels: 1}",
        "{x-cluster-spec: {capacity_range: {required_bytes: z}, accessibility_requirements: {requisite: [{segments: [a=b]}]}}}",
        "[0-65535]",
        "['1-65535:1-65535/udp']",
    ];
    const KEYS: &[&str] = &[
        "image",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "ports",
        "volumes",
        "networks",
        "secrets",
        "configs",
        "deploy",
        "healthcheck",
        "ulimits",
        "labels",
        "extra_hosts",
        "dns",
        "tmpfs",
        "logging",
        "stop_grace_period",
        "build",
        "sysctls",
        "expose",
        "x-ext",
        "external",
        "driver",
        "file",
        "name",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
        #[test]
        fn typed_load_never_panics_on_unvalidated_input(
            kv in proptest::collection::vec((0..KEYS.len(), 0..VALUES.len()), 0..8),
            section in 0..5usize,
        ) {
            let mut seen = std::collections::BTreeSet::new();
            let body: String = kv
                .into_iter()
                .filter(|(k, _)| seen.insert(*k))
                .map(|(k, v)| format!("    {}: {}\n", KEYS[k], VALUES[v]))
                .collect();
            let name = ["services", "networks", "volumes", "secrets", "configs"][section];
            typed_only(&format!("{name}:\n  a:\n{body}"));
        }
    }
}
