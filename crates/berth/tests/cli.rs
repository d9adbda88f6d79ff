//! The `berth` binary end to end, for the commands that need no engine: `check`, `config`,
//! `plan --observed`. Output is compared with insta snapshots (paths filtered).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn berth(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.current_dir(dir).args(args).env_remove("TAG").env_remove("DB_PASSWORD").env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run berth");
    let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&fixtures().display().to_string(), "[FIXTURES]");
    Run { code: out.status.code().unwrap_or(-1), stdout: clean(&out.stdout), stderr: clean(&out.stderr) }
}

#[test]
fn check_reports_every_problem_with_its_place() {
    let r = berth(&fixtures().join("broken"), &["check"], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn check_json_lists_the_same_problems() {
    let r = berth(&fixtures().join("broken"), &["check", "--json"], &[]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["valid"], false);
    let diags = v["diagnostics"].as_array().unwrap();
    assert!(diags.len() >= 2, "{diags:?}");
    assert!(diags.iter().all(|d| d["file"].as_str().is_some_and(|f| f.ends_with("compose.yaml"))), "{diags:?}");
}

#[test]
fn broken_yaml_names_the_line() {
    let r = berth(&fixtures().join("broken"), &["-c", "yaml.yaml", "check"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("yaml.yaml:4:"), "{}", r.stderr);
}

#[test]
fn dotenv_beside_the_file_is_read_and_the_environment_wins() {
    let dir = fixtures().join("valid");
    let r = berth(&dir, &["config", "--format", "json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["services"]["web"]["image"], "nginx:1.25-from-dotenv");
    let r = berth(&dir, &["config", "--format", "json"], &[("TAG", "from-env")]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["services"]["web"]["image"], "nginx:from-env");
    let r = berth(&dir, &["--no-dotenv", "config"], &[]);
    assert_eq!(v["services"]["web"]["image"], "nginx:from-env");
    assert_eq!(r.code, 0, "an unset variable is empty, as in docker stack deploy: {}", r.stderr);
    assert!(
        r.stdout.contains("image: 'nginx:'")
            || r.stdout.contains("image: nginx:")
            || r.stdout.contains("image: \"nginx:\""),
        "{}",
        r.stdout
    );
}

#[test]
fn plan_against_an_empty_swarm_creates_everything_and_hides_the_secret() {
    let dir = fixtures().join("valid");
    let tmp = tempfile::tempdir().unwrap();
    let observed = tmp.path().join("observed.json");
    std::fs::write(&observed, "{}").unwrap();
    // The edge image's tag is the hash of the executable it is built from: a fixed file here.
    let edge_binary = dir.join("compose.yaml");
    let edge = [("BERTH_EDGE_BINARY", edge_binary.to_str().unwrap())];
    let r = berth(&dir, &["plan", "--observed", observed.to_str().unwrap()], &edge);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("not-a-real-secret-value-0451"), "secret leaked: {}", r.stdout);
    insta::assert_snapshot!(r.stdout);
    let r = berth(&dir, &["plan", "--json", "--observed", observed.to_str().unwrap()], &[]);
    assert!(!r.stdout.contains("not-a-real-secret-value-0451"), "secret leaked in json");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["actions"].as_array().is_some_and(|a| a.len() >= 3), "{v}");
    let r = berth(&dir, &["plan", "--detailed-exitcode", "--observed", observed.to_str().unwrap()], &[]);
    assert_eq!(r.code, 10);
}

#[test]
fn no_compose_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let r = berth(tmp.path(), &["check"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no compose file") && r.stderr.contains("-c FILE"), "{}", r.stderr);
}

#[test]
fn unknown_flags_exit_2() {
    let r = berth(&fixtures(), &["check", "--frobnicate"], &[]);
    assert_eq!(r.code, 2);
}

#[test]
fn seeds_style_traefik_file_is_valid_and_says_what_the_edge_replaces() {
    let r = berth(&fixtures().join("seeds-style"), &["check"], &[]);
    assert_eq!(r.code, 0, "warnings only: {}", r.stderr);
    insta::assert_snapshot!(r.stderr);
}
