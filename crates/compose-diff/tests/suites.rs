//! The differential harness over the real-world suites in ../shared: every awesome-compose and
//! example-voting-app file must get the same verdict from berth as from `docker stack config`, and
//! identical output where both load it. Files that reference absent files must be rejected by both.

use compose_diff::{Options, Summary, Verdict, compare_file, find_files};
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
