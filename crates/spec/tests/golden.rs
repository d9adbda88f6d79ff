//! docker/cli's own loader golden: `full-example.yml` must load to `full-example.{json,yaml}.golden`.
//!
//! The goldens were rendered with working dir `/foo` and HOME `/bar`; we load in a temp dir (with the
//! two env files copied there) and rewrite `/foo` to it. Compared semantically: Go's JSON encoder
//! prints zero-valued structs and `"external": false` that the YAML encoder (and berth) omit, so
//! empty values are dropped on both sides before comparing.

use berth_spec::env::Env;
use berth_spec::load::load_documents;
use serde_json::Value as J;
use std::path::{Path, PathBuf};

const LOADER: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/compose-suites/docker-cli/cli/compose/loader");

fn load_full_example() -> (tempfile::TempDir, J) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["example1.env", "example2.env"] {
        std::fs::copy(Path::new(LOADER).join(f), dir.path().join(f)).unwrap();
    }
    let text = std::fs::read_to_string(Path::new(LOADER).join("full-example.yml")).unwrap();
    let env = Env::from_pairs([
        ("HOME".to_string(), "/bar".to_string()),
        ("QUX".to_string(), "qux_from_environment".to_string()),
    ]);
    let file = dir.path().join("full-example.yml");
    let loaded = match load_documents(&[(file, text)], dir.path(), &env) {
        Ok(l) => l,
        Err(e) => panic!("full-example.yml failed to load: {:#?}", e.diagnostics),
    };
    let json = serde_json::to_value(&loaded.stack).unwrap();
    (dir, json)
}

/// Rewrites `/foo` (the golden's working dir) to `dir` in every string.
fn rewrite_working_dir(v: &mut J, dir: &str) {
    match v {
        J::String(s) if s == "/foo" || s.starts_with("/foo/") => *s = format!("{dir}{}", &s[4..]),
        J::Array(a) => a.iter_mut().for_each(|x| rewrite_working_dir(x, dir)),
        J::Object(o) => o.values_mut().for_each(|x| rewrite_working_dir(x, dir)),
        _ => {}
    }
}

/// Drops `false`, `""`, `{}` and `[]` members (omitted by the YAML encoder); keeps `null`.
fn drop_empty(v: &mut J) {
    match v {
        J::Array(a) => a.iter_mut().for_each(drop_empty),
        J::Object(o) => {
            o.values_mut().for_each(drop_empty);
            o.retain(|_, x| !matches!(x, J::Bool(false)) && *x != J::String(String::new()) && !is_empty_collection(x));
        }
        _ => {}
    }
}

fn is_empty_collection(v: &J) -> bool {
    matches!(v, J::Object(o) if o.is_empty()) || matches!(v, J::Array(a) if a.is_empty())
}

/// Drops `x-*` members below the top level (docker/cli's JSON tags exclude them).
fn drop_nested_extras(v: &mut J, depth: usize) {
    if let J::Object(o) = v {
        if depth > 0 {
            o.retain(|k, _| !k.starts_with("x-") || k == "x-cluster-spec");
        }
        o.values_mut().for_each(|x| drop_nested_extras(x, depth + 1));
    }
}

/// Paths where `a` and `b` differ.
fn diff(a: &J, b: &J, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (J::Object(x), J::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: only in berth: {v}")),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) {
                    out.push(format!("{path}.{k}: only in golden: {w}"));
                }
            }
        }
        (J::Array(x), J::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(v, w, &format!("{path}.{i}"), out);
            }
        }
        (J::Number(x), J::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a == b => {}
        _ => out.push(format!("{path}: berth {a} != golden {b}")),
    }
}

fn golden(name: &str, dir: &Path) -> J {
    let text = std::fs::read_to_string(PathBuf::from(LOADER).join("testdata").join(name)).unwrap();
    let mut g: J = if name.ends_with(".json.golden") {
        serde_json::from_str(&text).unwrap()
    } else {
        serde_saphyr::from_str(&text).unwrap()
    };
    rewrite_working_dir(&mut g, &dir.to_string_lossy());
    g
}

#[test]
fn full_example_matches_docker_cli_json_golden() {
    let (dir, mut ours) = load_full_example();
    let mut want = golden("full-example.json.golden", dir.path());
    drop_nested_extras(&mut ours, 0);
    drop_empty(&mut ours);
    drop_empty(&mut want);
    let mut out = Vec::new();
    diff(&ours, &want, "", &mut out);
    assert!(out.is_empty(), "{} fields differ from full-example.json.golden:\n{}", out.len(), out.join("\n"));
}

#[test]
fn full_example_matches_docker_cli_yaml_golden() {
    let (dir, mut ours) = load_full_example();
    let mut want = golden("full-example.yaml.golden", dir.path());
    drop_empty(&mut ours);
    drop_empty(&mut want);
    let mut out = Vec::new();
    diff(&ours, &want, "", &mut out);
    assert!(out.is_empty(), "{} fields differ from full-example.yaml.golden:\n{}", out.len(), out.join("\n"));
}

#[test]
fn full_example_renders_yaml_that_parses_back_to_the_same_stack() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["example1.env", "example2.env"] {
        std::fs::copy(Path::new(LOADER).join(f), dir.path().join(f)).unwrap();
    }
    let text = std::fs::read_to_string(Path::new(LOADER).join("full-example.yml")).unwrap();
    let env = Env::from_pairs([("HOME".to_string(), "/bar".to_string())]);
    let loaded = load_documents(&[(dir.path().join("f.yml"), text)], dir.path(), &env)
        .unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    let yaml = berth_spec::render::to_yaml(&loaded.stack);
    let back: berth_spec::Stack = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(back, loaded.stack);
    let json = berth_spec::render::to_json(&loaded.stack);
    let back: berth_spec::Stack = serde_json::from_str(&json).unwrap();
    assert_eq!(back, loaded.stack);
}
