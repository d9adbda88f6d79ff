//! The operator commands of the `berth` binary against the real dockerd (swarm mode): `run`, `status`,
//! `ps`, `logs`, `scale`, `exec`, `rm` — exit codes, `--json`, plain output off a terminal, errors.
//! Each test uses its own stack `t-ops-<n>` and removes what it made in a guard.

#[path = "common/run.rs"]
mod run;
use run::berth;

#[path = "../../engine/tests/common/stack.rs"]
mod stack;
use stack::{Cleanup, docker};

#[path = "../../engine/tests/common/images.rs"]
mod images;

use std::path::Path;
use std::time::{Duration, Instant};

fn service(stack: &str, name: &str, owned: bool, extra: &[&str]) {
    let full = format!("{stack}_{name}");
    let ns = format!("com.docker.stack.namespace={stack}");
    let own = format!("io.berth.stack={stack}");
    let mut args = vec!["service", "create", "--detach", "--quiet", "--name", &full, "--label", &ns];
    if owned {
        args.extend(["--label", &own]);
    }
    args.extend(extra);
    let (ok, out) = docker(&args);
    assert!(ok, "docker service create {full}: {out}");
}

fn wait_running(dir: &Path, stack: &str, service: &str, n: u64) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let r = berth(dir, &["--stack", stack, "status", "--json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("status --json");
        let s = v["services"].as_array().unwrap().iter().find(|s| s["name"] == service).cloned();
        if s.as_ref().is_some_and(|s| s["running"] == n && s["desired"] == n) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "{service} never ran {n} tasks: {v:#}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn run_streams_output_and_exits_with_the_commands_code() {
    images::ensure();
    let stack = "t-ops-10";
    let _c = Cleanup::new(stack);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        format!("services:\n  app:\n    image: {}\n    environment:\n      GREETING: hello\n", images::NO_HEALTH),
    )
    .unwrap();
    // `berth run` uses the networks a deploy made: make the default one.
    let (ok, out) = docker(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--label",
        "com.docker.stack.namespace=t-ops-10",
        "--label",
        "io.berth.stack=t-ops-10",
        "t-ops-10_default",
    ]);
    assert!(ok, "{out}");
    let r = berth(dir.path(), &["--stack", stack, "run", "app", "--", "/app", "echo", "one-off", "ok"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "one-off ok\n"), "{}", r.stderr);
    let r = berth(dir.path(), &["--stack", stack, "run", "app", "--", "/app", "exit", "3"]);
    assert_eq!((r.code, r.stdout.as_str()), (3, "exiting with 3\n"), "{}", r.stderr);
    let r = berth(dir.path(), &["--stack", stack, "run", "ap", "--", "/app"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no service `ap`") && r.stderr.contains("did you mean `app`"), "{}", r.stderr);
    let (_, services) = docker(&["service", "ls", "--format", "{{.Name}}"]);
    assert!(!services.contains("t-ops-10_"), "run service left: {services}");
}

#[test]
fn status_ps_logs_scale_exec_and_rm_from_the_command_line() {
    images::ensure();
    let stack = "t-ops-11";
    let _c = Cleanup::new(stack);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    service(stack, "web", true, &["--replicas", "1", "--label", "io.berth.release=2", images::NO_HEALTH]);
    let v = wait_running(d, stack, "web", 1);
    assert_eq!(v["release"], 2);
    assert_eq!(v["services"][0]["image"], images::NO_HEALTH);

    // Off a terminal: tab-separated with a header.
    let r = berth(d, &["--stack", stack, "status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut lines = r.stdout.lines();
    assert!(lines.next().unwrap().starts_with("SERVICE\tMODE\tIMAGE\tTASKS"), "{}", r.stdout);
    assert!(
        lines.next().unwrap().starts_with(&format!("web\treplicated\t{}\t1/1\t", images::NO_HEALTH)),
        "{}",
        r.stdout
    );

    let r = berth(d, &["--stack", stack, "ps", "web", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tasks: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(tasks[0]["service"], "web");
    assert_eq!(tasks[0]["slot"], 1);
    assert_eq!(tasks[0]["state"], "running");
    let r = berth(d, &["--stack", stack, "ps", "wbe"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean `web`"), "{}", r.stderr);

    let r = berth(d, &["--stack", stack, "exec", "web", "--", "/app", "echo", "inside"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "inside\n"), "{}", r.stderr);
    let r = berth(d, &["--stack", stack, "exec", "web", "--", "/app", "exit", "5"]);
    assert_eq!(r.code, 5, "{}", r.stderr);

    // The test app logs nothing while serving: make it log through exec-less means — a second
    // one-shot service whose output is in the logs.
    service(
        stack,
        "hello",
        true,
        &["--replicas", "1", "--restart-condition", "none", images::NO_HEALTH, "/app", "echo", "hi there"],
    );
    let start = Instant::now();
    loop {
        let r = berth(d, &["--stack", stack, "logs", "hello"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        if r.stdout.contains("hi there") {
            let line = r.stdout.lines().find(|l| l.contains("hi there")).unwrap();
            assert!(line.starts_with("hello.1@") && line.ends_with(" | hi there"), "{line}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no log line: {}", r.stdout);
        std::thread::sleep(Duration::from_millis(300));
    }
    let r = berth(d, &["--stack", stack, "logs", "--since", "soon"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    let r = berth(d, &["--stack", stack, "scale", "web=2"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "web: 1 -> 2 replicas\n"), "{}", r.stderr);
    wait_running(d, stack, "web", 2);
    let r = berth(d, &["--stack", stack, "scale", "web"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("SERVICE=N"), "{}", r.stderr);

    // rm: needs --yes off a terminal; then removes and keeps nothing of the stack's services.
    let r = berth(d, &["--stack", stack, "rm"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    let r = berth(d, &["--stack", stack, "rm", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("removed service t-ops-11_web"), "{}", r.stdout);
    let (_, services) = docker(&["service", "ls", "--format", "{{.Name}}"]);
    assert!(!services.contains("t-ops-11_"), "{services}");
}

#[test]
fn rm_refuses_a_stack_deployed_without_berth() {
    images::ensure();
    let stack = "t-ops-12";
    let _c = Cleanup::new(stack);
    let dir = tempfile::tempdir().unwrap();
    service(stack, "web", false, &["--replicas", "0", images::NO_HEALTH]);
    let r = berth(dir.path(), &["--stack", stack, "rm", "--yes"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("not deployed by berth") && r.stderr.contains("docker stack rm"), "{}", r.stderr);
    assert!(docker(&["service", "inspect", "t-ops-12_web"]).0);
}
