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
    let _guard = Cleanup::new(STACK);
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

/// Removes a test image tag on drop.
struct Untag(&'static str);
impl Drop for Untag {
    fn drop(&mut self) {
        stack::docker(&["image", "rm", self.0]);
    }
}

fn image_id(image: &str) -> String {
    let (ok, out) = stack::docker(&["image", "inspect", "-f", "{{.Id}}", image]);
    assert!(ok, "{out}");
    out.trim().to_string()
}

/// (ContainerSpec.Image, ContainerSpec.Labels["io.berth.image"]) of a service.
fn service_image(service: &str) -> (String, String) {
    let f = r#"{{.Spec.TaskTemplate.ContainerSpec.Image}} {{index .Spec.TaskTemplate.ContainerSpec.Labels "io.berth.image"}}"#;
    let (ok, out) = stack::docker(&["service", "inspect", "-f", f, service]);
    assert!(ok, "{out}");
    let (image, name) = out.trim().split_once(' ').unwrap_or((out.trim(), ""));
    (image.to_string(), name.to_string())
}

/// Issue #4: a tag-only image made every task ask a registry first (and let a rollback run whatever
/// the tag named by then). An image that exists only here is pinned by ID, named in `status`, `ps`
/// and `releases`; a redeploy is a no-op; a rebuilt (moved) tag updates the service; a rollback
/// returns the exact image of the release even though the tag moved.
#[test]
fn regression_issue4_local_image_pinned_by_id_noop_redeploy_update_when_tag_moves_rollback_exact() {
    images::ensure();
    const STACK: &str = "cvg-deploycli-pin";
    const TAG: &str = "cvg-pin/app:live";
    let _guard = Cleanup::new(STACK);
    let _untag = Untag(TAG);
    let (v1, v2) = (image_id(images::V1), image_id(images::V2));
    assert!(stack::docker(&["tag", images::V1, TAG]).0);
    let dir = tempfile::tempdir().unwrap();
    write_compose(dir.path(), TAG);
    let svc = format!("{STACK}_web");

    let o = berth(dir.path(), &["-s", STACK, "deploy", "--plain", "--timeout", "60"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(service_image(&svc), (v1.clone(), TAG.to_string()));

    let o = berth(dir.path(), &["-s", STACK, "status", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["services"][0]["image"].as_str(), v["services"][0]["image_ref"].as_str()), (Some(TAG), Some(&*v1)));
    let o = berth(dir.path(), &["-s", STACK, "ps"], &[]);
    let short = &v1["sha256:".len().."sha256:".len() + 12];
    let ps = String::from_utf8_lossy(&o.stdout);
    assert!(ps.contains(&format!("{TAG} (id {short})")), "{ps}");

    let o = berth(dir.path(), &["-s", STACK, "deploy", "--plain"], &[]);
    assert!(stderr(&o).contains("is up to date"), "{}", stderr(&o));
    let o = berth(dir.path(), &["-s", STACK, "plan"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("No changes"), "{}", String::from_utf8_lossy(&o.stdout));

    // "Rebuild": the tag now names another image.
    assert!(stack::docker(&["tag", images::V2, TAG]).0);
    let o = berth(dir.path(), &["-s", STACK, "deploy", "--plain", "--timeout", "60"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("release 2 is live"), "{}", stderr(&o));
    assert_eq!(service_image(&svc), (v2.clone(), TAG.to_string()));

    let o = berth(dir.path(), &["-s", STACK, "releases"], &[]);
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(list.contains(&format!("{TAG} (id {short})")), "{list}");

    // The tag still names v2: the rollback runs release 1's exact image.
    let o = berth(dir.path(), &["-s", STACK, "rollback", "--timeout", "60"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(service_image(&svc), (v1, TAG.to_string()));
}
