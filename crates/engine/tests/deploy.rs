//! The deploy path against the real dockerd (swarm mode): first deploy, no-op redeploy, image
//! change, rollback, automatic rollback of a bad release, release commands, secret rotation,
//! adoption. Each test uses its own stack `t-deploy-<n>` and removes what it made in a guard.
//! Fixture: `tests/deploy/app.yaml` with `@IMAGE@` and `@ENV@` holes; its secret file `token.txt` is written beside.

#[path = "common/stack.rs"]
mod stack;
use stack::{Cleanup, docker};

#[path = "common/images.rs"]
mod images;

use berth_engine::{DeployError, DeployOptions, DeployReport, Engine, Event, ReleaseStatus, Target};
use berth_plan::Desired;
use berth_plan::convert::{ConvertOptions, desired};
use berth_spec::load::{LoadOptions, load};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Fills the fixture's holes and converts it for `stack`.
fn stack_desired(dir: &Path, stack: &str, image: &str, env: &str, secret: &str, _unused: &str) -> Desired {
    let fixture = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deploy/app.yaml")).unwrap();
    std::fs::write(dir.join("token.txt"), secret).unwrap();
    desired_from(dir, stack, &fixture.replace("@IMAGE@", image).replace("@ENV@", env))
}

/// Converts an inline stack file for `stack` (written to `dir`).
fn desired_from(dir: &Path, stack: &str, yaml: &str) -> Desired {
    std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
    let opts = LoadOptions {
        files: vec![dir.join("compose.yaml")],
        env_files: Vec::new(),
        environ: Vec::new(),
        dotenv: false,
    };
    let loaded = load(&opts).unwrap_or_else(|f| panic!("stack does not load: {:?}", f.diagnostics));
    desired(&loaded.stack, stack, &ConvertOptions { content_addressed: true }, &|p| std::fs::read(p))
        .unwrap_or_else(|d| panic!("stack does not convert: {d:?}"))
}

fn opts(release: &[&[&str]]) -> DeployOptions {
    let mut release_commands = BTreeMap::new();
    if !release.is_empty() {
        release_commands.insert(
            "web".to_string(),
            release.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect::<Vec<Vec<String>>>(),
        );
    }
    DeployOptions { timeout: Duration::from_secs(60), release_commands, ..Default::default() }
}

fn opts_for(stack: &str, release: &[&[&str]]) -> DeployOptions {
    let mut o = opts(release);
    o.release_commands = o.release_commands.into_values().map(|v| (format!("{stack}_web"), v)).collect();
    o
}

async fn deploy(engine: &Engine, d: Desired, o: DeployOptions) -> (Result<DeployReport, DeployError>, Vec<Event>) {
    let mut events = Vec::new();
    let r = engine.deploy(d, o, &mut |e| events.push(e)).await;
    (r, events)
}

fn image_of(stack: &str) -> String {
    let (_, out) =
        docker(&["service", "inspect", "-f", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", &format!("{stack}_web")]);
    out.trim().to_string()
}

fn secrets_of(stack: &str) -> Vec<String> {
    let (_, out) = docker(&["secret", "ls", "--format", "{{.Name}}"]);
    let p = format!("{stack}_");
    let mut v: Vec<String> = out.lines().filter(|n| n.starts_with(&p)).map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn deploy_noop_image_change_and_rollback() {
    images::ensure();
    const STACK: &str = "t-deploy-1";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let engine = Engine::connect(&Target::Local).await.unwrap();
        // First deploy converges and records release 1.
        let d1 = stack_desired(dir.path(), STACK, images::V1, "A=1", "s1", "");
        let (r, events) = deploy(&engine, d1.clone(), opts(&[])).await;
        let r = r.unwrap_or_else(|e| panic!("first deploy failed: {e}"));
        assert_eq!(r.release, Some(1));
        assert!(!r.up_to_date);
        assert!(r.writes > 0);
        assert!(events.iter().any(|e| matches!(e, Event::Progress(p) if p.iter().all(|s| s.running == s.desired))));

        // The same again: no write call, no new release.
        let (r, _) = deploy(&engine, d1.clone(), opts(&[])).await;
        let r = r.unwrap();
        assert!(r.up_to_date, "second deploy should be a no-op");
        assert_eq!(r.writes, 0);
        assert_eq!(r.release, Some(1));
        assert_eq!(engine.list_releases(STACK).await.unwrap().len(), 1);

        // An image change rolls out as release 2.
        let d2 = stack_desired(dir.path(), STACK, images::V2, "A=1", "s1", "");
        let r = deploy(&engine, d2, opts(&[])).await.0.unwrap_or_else(|e| panic!("v2 deploy failed: {e}"));
        assert_eq!(r.release, Some(2));
        assert!(image_of(STACK).starts_with(images::V2));
        let rels = engine.list_releases(STACK).await.unwrap();
        assert_eq!(
            rels.iter().map(|r| (r.number, r.status)).collect::<Vec<_>>(),
            vec![(1, Some(ReleaseStatus::Ok)), (2, Some(ReleaseStatus::Ok))]
        );
        assert!(rels[1].current);

        // Rollback returns to release 1.
        let r = engine.rollback(STACK, None, Duration::from_secs(60), &mut |_| {}).await.unwrap();
        assert_eq!(r.release, Some(1));
        assert!(image_of(STACK).starts_with(images::V1));
        assert_eq!(engine.current_release(STACK).await.unwrap(), Some(1));
        // The record never holds the secret's value.
        let record = engine.read_release(STACK, 1).await.unwrap();
        assert!(record.desired.secrets.values().all(|s| s.data.is_none()));
    });
}

#[test]
fn bad_release_is_rolled_back_automatically() {
    images::ensure();
    const STACK: &str = "t-deploy-2";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let engine = Engine::connect(&Target::Local).await.unwrap();
        let d1 = stack_desired(dir.path(), STACK, images::V1, "A=1", "s1", "");
        deploy(&engine, d1, opts(&[])).await.0.unwrap_or_else(|e| panic!("first deploy failed: {e}"));
        let bad = stack_desired(dir.path(), STACK, images::BAD_HEALTH, "A=1", "s1", "");
        let (r, events) = deploy(&engine, bad, opts(&[])).await;
        let err = r.expect_err("a release whose health check fails must fail");
        let msg = err.to_string();
        assert!(
            matches!(&err, DeployError::Failed { release: 2, rolled_back_to: Some(1), rollback_error: None, .. }),
            "unexpected error: {msg}"
        );
        assert!(msg.contains("release 2 failed") && msg.contains("rolled back to release 1"), "{msg}");
        assert!(events.iter().any(|e| matches!(e, Event::Message(m) if m.contains("rolling back"))));
        assert!(image_of(STACK).starts_with(images::V1));
        assert_eq!(engine.current_release(STACK).await.unwrap(), Some(1));
        let rels = engine.list_releases(STACK).await.unwrap();
        assert_eq!(rels.iter().find(|r| r.number == 2).unwrap().status, Some(ReleaseStatus::Failed));
    });
}

#[test]
fn failing_release_command_aborts_before_any_update() {
    images::ensure();
    const STACK: &str = "t-deploy-3";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let engine = Engine::connect(&Target::Local).await.unwrap();
        let d1 = stack_desired(dir.path(), STACK, images::V1, "A=1", "s1", "");
        let (r, events) = deploy(&engine, d1, opts_for(STACK, &[&["/app", "echo", "migrating"]])).await;
        r.unwrap_or_else(|e| panic!("first deploy failed: {e}"));
        assert!(events.iter().any(|e| matches!(e, Event::Output { line, .. } if line.contains("migrating"))));
        let (_, before) = docker(&["service", "inspect", "-f", "{{.Version.Index}}", &format!("{STACK}_web")]);

        let d2 = stack_desired(dir.path(), STACK, images::V2, "A=1", "s1", "");
        let (r, _) = deploy(&engine, d2, opts_for(STACK, &[&["/app", "exit", "3"]])).await;
        let err = r.expect_err("a failing release command must abort the deploy");
        assert!(matches!(&err, DeployError::ReleaseCommand { exit_code: Some(3), release: 2, .. }), "{err}");
        assert!(err.to_string().contains("exited with code 3"), "{err}");
        let (_, after) = docker(&["service", "inspect", "-f", "{{.Version.Index}}", &format!("{STACK}_web")]);
        assert_eq!(before, after, "the service must not have been updated");
        assert!(image_of(STACK).starts_with(images::V1));
    });
}

#[test]
fn secret_rotation_keeps_the_old_secret_until_the_next_successful_deploy() {
    images::ensure();
    const STACK: &str = "t-deploy-4";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let engine = Engine::connect(&Target::Local).await.unwrap();
        let d1 = stack_desired(dir.path(), STACK, images::NO_HEALTH, "A=1", "first", "");
        deploy(&engine, d1, opts(&[])).await.0.unwrap_or_else(|e| panic!("first deploy failed: {e}"));
        let s1 = secrets_of(STACK);
        assert_eq!(s1.len(), 1);

        let d2 = stack_desired(dir.path(), STACK, images::NO_HEALTH, "A=1", "second", "");
        let new_name = d2.secrets.keys().next().unwrap().clone();
        deploy(&engine, d2, opts(&[])).await.0.unwrap_or_else(|e| panic!("rotation failed: {e}"));
        let (_, used) = docker(&[
            "service",
            "inspect",
            "-f",
            "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}{{end}}",
            &format!("{STACK}_web"),
        ]);
        assert_eq!(used.trim(), new_name, "the service uses the new secret");
        assert_eq!(secrets_of(STACK).len(), 2, "the old secret stays while release 1 may be rolled back to");

        let d3 = stack_desired(dir.path(), STACK, images::NO_HEALTH, "A=2", "second", "");
        let r = deploy(&engine, d3, opts(&[])).await.0.unwrap_or_else(|e| panic!("third deploy failed: {e}"));
        assert_eq!(secrets_of(STACK), vec![new_name.clone()]);
        assert!(r.removed.iter().any(|x| x == &format!("secret {}", s1[0])), "{:?}", r.removed);
    });
}

#[test]
fn stack_deploy_objects_are_refused_without_adopt_and_adopted_with_it() {
    images::ensure();
    const STACK: &str = "t-deploy-5";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        &format!("{STACK}_web"),
        "--label",
        &format!("com.docker.stack.namespace={STACK}"),
        images::NO_HEALTH,
    ]);
    assert!(ok, "{out}");
    rt().block_on(async {
        let engine = Engine::connect(&Target::Local).await.unwrap();
        let d = stack_desired(dir.path(), STACK, images::NO_HEALTH, "A=1", "s", "");
        let err = deploy(&engine, d.clone(), opts(&[])).await.0.expect_err("must refuse a service it does not own");
        assert!(matches!(err, DeployError::NotOwned { .. }), "{err}");
        assert!(err.hint().unwrap().contains("--adopt"));
        let (_, labels) = docker(&["service", "inspect", "-f", "{{json .Spec.Labels}}", &format!("{STACK}_web")]);
        assert!(!labels.contains("io.berth.stack"), "{labels}");

        let mut o = opts(&[]);
        o.adopt = true;
        let r = deploy(&engine, d, o).await.0.unwrap_or_else(|e| panic!("adopting deploy failed: {e}"));
        assert_eq!(r.release, Some(1));
        let (_, labels) = docker(&["service", "inspect", "-f", "{{json .Spec.Labels}}", &format!("{STACK}_web")]);
        assert!(labels.contains("\"io.berth.stack\":\"t-deploy-5\""), "{labels}");
    });
}

#[test]
fn interrupted_deploy_is_finished_by_the_next_deploy() {
    images::ensure();
    const STACK: &str = "t-deploy-6";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let engine = Engine::connect(&Target::Local).await.unwrap();
        let d = stack_desired(dir.path(), STACK, images::NO_HEALTH, "A=1", "s", "");
        // What a deploy killed right after applying leaves behind: a release record, the objects,
        // no outcome marker.
        let observed = berth_engine::without_bookkeeping(engine.observe(STACK).await.unwrap());
        let plan = berth_plan::plan(&d, &observed, &berth_plan::PlanOptions::default());
        let record = engine.record_release(&d, &[]).await.unwrap();
        assert_eq!(record.number, 1);
        engine
            .apply_with(&plan, &berth_engine::ApplyOptions { release: Some(1), ..Default::default() }, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(engine.list_releases(STACK).await.unwrap()[0].status, None);

        let r = deploy(&engine, d, opts(&[])).await.0.unwrap_or_else(|e| panic!("redeploy failed: {e}"));
        assert!(r.up_to_date);
        assert_eq!(r.release, Some(1));
        assert_eq!(r.writes, 2, "only the outcome and live markers are written");
        assert_eq!(engine.list_releases(STACK).await.unwrap()[0].status, Some(ReleaseStatus::Ok));
    });
}

#[test]
fn missing_image_fails_fast_with_a_clear_error() {
    images::ensure();
    const STACK: &str = "t-deploy-7";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let engine = Engine::connect(&Target::Local).await.unwrap();
        let d = stack_desired(dir.path(), STACK, "berth-test/app:no-such-tag", "A=1", "s", "");
        let start = std::time::Instant::now();
        let err = deploy(&engine, d, opts(&[])).await.0.expect_err("an image that does not exist must fail");
        assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
        let msg = err.to_string();
        assert!(msg.contains("release 1 failed") && msg.contains("image is missing"), "{msg}");
        assert!(msg.contains("no earlier good release"), "{msg}");
        assert!(err.hint().unwrap().contains("pull the image"), "{:?}", err.hint());
    });
}

#[test]
fn host_port_taken_by_another_process_fails_with_a_clear_error() {
    images::ensure();
    const STACK: &str = "t-deploy-8";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    // Something that is not Swarm's holds the port on every address.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let yaml = format!(
        "services:\n  web:\n    image: berth-test/app:v1\n    ports:\n      - {{target: 8080, published: {port}, mode: host}}\n    deploy:\n      restart_policy: {{delay: 1s}}\n"
    );
    rt().block_on(async {
        let engine = Engine::connect(&Target::Local).await.unwrap();
        let d = desired_from(dir.path(), STACK, &yaml);
        let start = std::time::Instant::now();
        let err = deploy(&engine, d, opts(&[])).await.0.expect_err("a taken host port must fail the deploy");
        assert!(start.elapsed() < Duration::from_secs(45), "took {:?}", start.elapsed());
        let msg = err.to_string();
        assert!(msg.contains("port") && msg.contains(&port.to_string()) && msg.contains("taken"), "{msg}");
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("published port"), "{hint}");
    });
    drop(holder);
}

#[test]
fn service_that_no_node_has_resources_for_fails_with_a_clear_error() {
    images::ensure();
    const STACK: &str = "t-deploy-9";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    let yaml = "services:\n  web:\n    image: berth-test/app:v1\n    deploy:\n      resources:\n        reservations: {cpus: '512', memory: 4096G}\n";
    rt().block_on(async {
        let engine = Engine::connect(&Target::Local).await.unwrap();
        let d = desired_from(dir.path(), STACK, yaml);
        let err = deploy(&engine, d, opts(&[])).await.0.expect_err("an unschedulable service must fail");
        let msg = err.to_string();
        assert!(msg.contains("no node can run") && msg.contains("insufficient resources"), "{msg}");
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("reservations") || hint.contains("resources"), "{hint}");
    });
}
