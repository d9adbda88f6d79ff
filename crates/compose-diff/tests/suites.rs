//! The differential harness over the real-world suites in ../shared: every awesome-compose and
//! example-voting-app file must get the same verdict from berth as from `docker stack config`, and
//! identical output where both load it. Files that reference absent files must be rejected by both.

use compose_diff::{Options, Summary, Verdict, compare_file, compare_stack, find_files};
use std::path::PathBuf;
use std::process::Command;

const SUITES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/compose-suites");

fn docker_available() -> bool {
    Command::new("docker").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// A small fixed environment, the same for both sides, so results do not depend on who runs the test.
fn options() -> Options {
    let keep = ["PATH", "HOME", "DOCKER_CONFIG"];
    let environ = std::env::vars().filter(|(k, _)| keep.contains(&k.as_str())).collect();
    Options { docker: PathBuf::from("docker"), env_files: Vec::new(), environ }
}

fn check(dirs: &[&str], at_least: usize) {
    if !docker_available() {
        eprintln!("docker not found: skipping the differential run");
        return;
    }
    let inputs: Vec<PathBuf> = dirs.iter().map(|d| PathBuf::from(SUITES).join(d)).collect();
    let files = find_files(&inputs);
    assert!(files.len() >= at_least, "expected at least {at_least} compose files, found {}", files.len());
    let opts = options();
    let reports: Vec<_> = files.iter().map(|f| compare_file(f, &opts)).collect();
    let summary = Summary::of(&reports);
    let failures: String = reports.iter().filter(|r| r.verdict.is_failure()).map(ToString::to_string).collect();
    for r in &reports {
        if let Verdict::BothRejected { .. } = r.verdict {
            eprint!("{r}");
        }
    }
    assert!(summary.ok(), "{summary}\n{failures}");
}

#[test]
fn awesome_compose_files_match_docker_stack_config() {
    check(&["awesome-compose"], 39);
}

#[test]
fn example_voting_app_files_match_docker_stack_config() {
    check(&["example-voting-app"], 4);
}

#[test]
fn docker_cli_loader_and_e2e_inputs_match_docker_stack_config() {
    if !docker_available() {
        eprintln!("docker not found: skipping the differential run");
        return;
    }
    let mut opts = options();
    opts.environ.retain(|(k, _)| k != "HOME");
    opts.environ.push(("HOME".into(), "/bar".into()));
    opts.environ.push(("QUX".into(), "qux_from_environment".into()));
    let files: Vec<PathBuf> = [
        "docker-cli/cli/compose/loader/full-example.yml",
        "docker-cli/e2e/stack/testdata/full-stack.yml",
        "docker-cli/e2e/stack/testdata/stack-with-named-resources.yml",
    ]
    .iter()
    .map(|f| PathBuf::from(SUITES).join(f))
    .collect();
    let reports: Vec<_> = files.iter().map(|f| compare_file(f, &opts)).collect();
    let failures: String =
        reports.iter().filter(|r| r.verdict != Verdict::Identical).map(ToString::to_string).collect();
    assert!(failures.is_empty(), "{failures}");
}

/// compose-go's override vectors (base.yaml + override.yaml), merged by berth and by
/// `docker stack config -c base.yaml -c override.yaml`: docker/cli is the truth here, not the
/// vectors' compose-go `expected.yaml` (MANIFEST.md "Semantics warnings").
#[test]
fn compose_go_override_vectors_merge_like_docker_stack_config() {
    if !docker_available() {
        eprintln!("docker not found: skipping the differential run");
        return;
    }
    let root = PathBuf::from(SUITES).join("compose-go/derived/override-merge");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 60, "expected the override-merge vectors, found {}", cases.len());
    let opts = options();
    let reports: Vec<_> = cases
        .iter()
        .filter(|c| c.join("override.yaml").is_file())
        .map(|c| compare_stack(&[c.join("base.yaml"), c.join("override.yaml")], &opts))
        .collect();
    let summary = Summary::of(&reports);
    eprintln!("compose-go override vectors: {summary}");
    let failures: String = reports.iter().filter(|r| r.verdict.is_failure()).map(ToString::to_string).collect();
    assert!(summary.ok(), "{summary}\n{failures}");
    assert!(summary.identical >= 30, "too few vectors load on both sides: {summary}");
}
