//! `berth deploy` / `releases` / `rollback` through the binary, against the real dockerd (swarm
//! mode). Each test uses its own stack `t-deploycli-<n>` and removes what it made in a guard.

#[path = "../../engine/tests/common/stack.rs"]
mod stack;
use stack::Cleanup;

#[path = "../../engine/tests/common/images.rs"]
mod images;

use std::process::{Command, Output};
fn berth(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.current_dir(dir).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("cannot run berth")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_compose(dir: &std::path::Path, image: &str) {
    let text = format!(
        "services:\n  web:\n    image: {image}\n    stop_grace_period: 1s\n    deploy:\n      update_config:\n        delay: 0s\n        order: start-first\n"
    );
    std::fs::write(dir.join("compose.yaml"), text).unwrap();
}

#[test]
fn deploy_without_an_engine_exits_3_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    write_compose(dir.path(), images::V1);
    let o = berth(
        dir.path(),
        &["-s", "t-deploycli-0", "deploy", "--plain"],
        &[("DOCKER_HOST", "unix:///nonexistent/berth-test.sock")],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("no Docker engine answers"), "{e}");
    assert!(e.contains("hint:") && e.contains("DOCKER_HOST"), "{e}");
}

#[test]
fn deploy_reports_release_then_up_to_date_then_fails_and_rolls_back_with_exit_4() {
    images::ensure();
    const STACK: &str = "t-deploycli-1";
    let _guard = Cleanup(STACK);
    let dir = tempfile::tempdir().unwrap();
    write_compose(dir.path(), images::V1);

    let o = berth(dir.path(), &["-s", STACK, "deploy", "--plain", "--timeout", "60"], &[]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("release 1 is live (1 services,"), "{e}");
    assert!(e.contains("web  1/1 running"), "plain progress lines: {e}");

    let o = berth(dir.path(), &["-s", STACK, "deploy", "--plain"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("is up to date"), "{}", stderr(&o));

    write_compose(dir.path(), images::BAD_HEALTH);
    let o = berth(dir.path(), &["-s", STACK, "deploy", "--plain", "--timeout", "60"], &[]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(e.contains("release 2 failed") && e.contains("rolled back to release 1"), "{e}");
    assert!(e.contains("last log lines:"), "{e}");

    let o = berth(dir.path(), &["-s", STACK, "releases", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let got: Vec<(u64, String, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["number"].as_u64().unwrap(),
                r["status"].as_str().unwrap_or("-").to_string(),
                r["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![(1, "ok".to_string(), true), (2, "failed".to_string(), false)]);
}
