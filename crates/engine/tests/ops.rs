//! Operator commands against the real dockerd (swarm mode): one-off runs, status/ps, logs, scale,
//! exec, rm. Each test uses its own stack `t-ops-<n>` and removes what it made in a guard.

#[path = "common/stack.rs"]
mod stack;
use stack::{Cleanup, docker};

#[path = "common/images.rs"]
mod images;

use berth_engine::{Engine, EngineError, RunSpec, Target};
use bollard::models::{ServiceSpec, TaskSpec, TaskSpecContainerSpec};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn app_spec(image: &str) -> ServiceSpec {
    ServiceSpec {
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.into()),
                env: Some(vec!["GREETING=hi".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn services_named(prefix: &str) -> Vec<String> {
    let (_, names) = docker(&["service", "ls", "--format", "{{.Name}}"]);
    names.lines().filter(|n| n.starts_with(prefix)).map(String::from).collect()
}

#[test]
fn run_once_streams_output_and_returns_exit_codes_0_and_3() {
    images::ensure();
    let _c = Cleanup::new("t-ops-1");
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        let mut lines = Vec::new();
        let run = RunSpec {
            stack: "t-ops-1".into(),
            name_hint: "web".into(),
            spec: app_spec(images::NO_HEALTH),
            command: vec!["/app".into(), "echo".into(), "hello".into(), "from".into(), "run".into()],
            tty: false,
            auths: None,
        };
        let out = e.run_once(&run, &mut |l| lines.push(l.to_string())).await.unwrap();
        assert_eq!(out.exit_code, 0);
        assert_eq!(lines, vec!["hello from run"]);
        assert_eq!(out.output_tail, vec!["hello from run"]);

        let run = RunSpec { command: vec!["/app".into(), "exit".into(), "3".into()], ..run };
        let mut lines = Vec::new();
        let out = e.run_once(&run, &mut |l| lines.push(l.to_string())).await.unwrap();
        assert_eq!(out.exit_code, 3);
        assert_eq!(lines, vec!["exiting with 3"]);
    });
    assert!(services_named("t-ops-1_").is_empty(), "run services left behind");
}

#[test]
fn run_once_with_missing_image_fails_clearly_and_leaves_no_service() {
    let _c = Cleanup::new("t-ops-2");
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        let run = RunSpec {
            stack: "t-ops-2".into(),
            name_hint: "web".into(),
            spec: app_spec("berth-test/does-not-exist:v9"),
            command: vec!["/app".into()],
            tty: false,
            auths: None,
        };
        let err = e.run_once(&run, &mut |_| {}).await.unwrap_err();
        assert!(matches!(err, EngineError::ImageMissing { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("berth-test/does-not-exist:v9"), "{msg}");
        assert!(err.hint().is_some());
    });
    assert!(services_named("t-ops-2_").is_empty(), "run service left behind");
}

const OWNER: &str = "io.berth.stack";
const NS: &str = "com.docker.stack.namespace";

/// `docker service create --detach` with the stack's labels (berth's owner label unless `foreign`).
fn service(stack: &str, name: &str, foreign: bool, extra: &[&str]) {
    let full = format!("{stack}_{name}");
    let ns = format!("{NS}={stack}");
    let own = format!("{OWNER}={stack}");
    let mut args = vec!["service", "create", "--detach", "--quiet", "--name", &full, "--label", &ns];
    if !foreign {
        args.extend(["--label", &own]);
    }
    args.extend(["--container-label", &ns]);
    args.extend(extra);
    let (ok, out) = docker(&args);
    assert!(ok, "docker service create {full}: {out}");
}

async fn wait_for(
    e: &Engine,
    stack: &str,
    what: &str,
    ok: impl Fn(&berth_engine::StackStatus) -> bool,
) -> berth_engine::StackStatus {
    let start = std::time::Instant::now();
    loop {
        let s = e.status(stack).await.unwrap();
        if ok(&s) {
            return s;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(90), "timed out waiting for {what}: {s:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

fn svc<'a>(s: &'a berth_engine::StackStatus, name: &str) -> &'a berth_engine::ServiceStatus {
    s.services.iter().find(|x| x.name == name).unwrap_or_else(|| panic!("no service {name} in {s:#?}"))
}

#[test]
fn status_and_ps_report_services_tasks_health_release_and_ports_as_json() {
    images::ensure();
    let stack = "t-ops-3";
    let _c = Cleanup::new(stack);
    service(stack, "web", false, &["--replicas", "2", "--label", "io.berth.release=7", images::V1]);
    // Host-mode publish: ingress-published tasks stay `new` on this machine's dockerd.
    service(
        stack,
        "agent",
        false,
        &["--mode", "global", "--publish", "mode=host,published=28431,target=8080", images::NO_HEALTH],
    );
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        let s = wait_for(&e, stack, "web healthy and agent running", |s| {
            s.services.len() == 2
                && svc(s, "web").running == 2
                && svc(s, "web").health == "healthy"
                && svc(s, "agent").running == svc(s, "agent").desired
                && svc(s, "agent").running >= 1
        })
        .await;
        assert_eq!(s.release, Some(7));
        let web = svc(&s, "web");
        assert_eq!((web.mode.as_str(), web.image.as_str(), web.desired), ("replicated", images::V1, 2));
        assert_eq!(web.full_name, "t-ops-3_web");
        assert_eq!(web.release.as_deref(), Some("7"));
        assert!(web.ports.is_empty());
        let agent = svc(&s, "agent");
        assert_eq!(agent.ports.len(), 1, "{agent:?}");
        let p = &agent.ports[0];
        assert_eq!((p.published, p.target, p.mode.as_str()), (Some(28431), Some(8080), "host"));
        assert_eq!((agent.mode.as_str(), agent.health.as_str()), ("global", "-"));
        assert!(s.nodes.iter().any(|n| n.local && n.role == "manager"));

        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["services"][1]["name"], "web");
        assert_eq!(json["services"][1]["running"], 2);
        assert_eq!(json["services"][1]["health"], "healthy");

        let tasks = e.tasks(stack, Some("web")).await.unwrap();
        let running: Vec<_> = tasks.iter().filter(|t| t.desired_state == "running").collect();
        assert_eq!(running.len(), 2, "{tasks:#?}");
        let mut slots: Vec<_> = running.iter().map(|t| t.slot).collect();
        slots.sort();
        assert_eq!(slots, vec![Some(1), Some(2)]);
        let local = s.nodes.iter().find(|n| n.local).unwrap();
        for t in &running {
            assert_eq!(t.service, "web");
            assert_eq!(t.state, "running");
            assert_eq!(t.node.as_deref(), Some(local.hostname.as_str()));
            assert_eq!(t.health.as_deref(), Some("healthy"));
            assert!(t.container_id.is_some() && t.age_seconds.is_some());
        }
        let json = serde_json::to_value(&tasks).unwrap();
        assert!(json[0]["node"].is_string() && json[0]["desired_state"].is_string());
        let all = e.tasks(stack, None).await.unwrap();
        assert!(all.iter().any(|t| t.service == "agent"));

        let err = e.tasks(stack, Some("wbe")).await.unwrap_err();
        assert!(err.to_string().contains("did you mean `web`"), "{err}");
    });
}

#[test]
fn logs_merge_tasks_with_service_slot_node_prefixes() {
    images::ensure();
    let stack = "t-ops-4";
    let _c = Cleanup::new(stack);
    service(
        stack,
        "echo",
        false,
        &["--replicas", "2", "--restart-condition", "none", images::NO_HEALTH, "/app", "echo", "hello-logs"],
    );
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        let start = std::time::Instant::now();
        loop {
            let t = e.tasks(stack, None).await.unwrap();
            if t.len() == 2 && t.iter().all(|t| t.state == "complete") {
                break;
            }
            assert!(start.elapsed().as_secs() < 60, "echo tasks did not complete: {t:#?}");
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        let host = e.nodes().await.unwrap().into_iter().find(|n| n.local).unwrap().hostname;
        let mut lines = Vec::new();
        e.logs(stack, None, &Default::default(), &mut |l| lines.push(l.render())).await.unwrap();
        lines.sort();
        assert_eq!(lines, vec![format!("echo.1@{host} | hello-logs"), format!("echo.2@{host} | hello-logs")]);

        let mut lines = Vec::new();
        e.logs(stack, Some("echo"), &berth_engine::LogsOptions { tail: Some(1), ..Default::default() }, &mut |l| {
            assert!(l.timestamp.is_some());
            lines.push(l.text.clone())
        })
        .await
        .unwrap();
        assert_eq!(lines.len(), 2);

        let err = e.logs(stack, Some("ech"), &Default::default(), &mut |_| {}).await.unwrap_err();
        assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
    });
}

#[test]
fn scale_changes_replicas_and_refuses_global_unknown_and_foreign_services() {
    images::ensure();
    let stack = "t-ops-5";
    let _c = Cleanup::new(stack);
    service(stack, "web", false, &["--replicas", "1", images::NO_HEALTH]);
    service(stack, "agent", false, &["--mode", "global", images::NO_HEALTH]);
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        wait_for(&e, stack, "web running", |s| s.services.len() == 2 && svc(s, "web").running == 1).await;
        let done = e.scale(stack, &[("web".into(), 3)]).await.unwrap();
        assert_eq!((done[0].from, done[0].to), (1, 3));
        wait_for(&e, stack, "web scaled up to 3", |s| svc(s, "web").running == 3 && svc(s, "web").desired == 3).await;
        e.scale(stack, &[("t-ops-5_web".into(), 1)]).await.unwrap();
        wait_for(&e, stack, "web scaled down to 1", |s| svc(s, "web").running == 1 && svc(s, "web").desired == 1).await;

        let err = e.scale(stack, &[("web".into(), 2), ("agent".into(), 2)]).await.unwrap_err();
        assert!(matches!(err, EngineError::Refused { .. }) && err.to_string().contains("global"), "{err}");
        // Nothing changed: the check comes before any update.
        assert_eq!(svc(&e.status(stack).await.unwrap(), "web").desired, 1);
        let err = e.scale(stack, &[("wbe".into(), 2)]).await.unwrap_err();
        assert!(err.to_string().contains("did you mean `web`"), "{err}");
    });
    let foreign = "t-ops-9";
    let _c2 = Cleanup::new(foreign);
    service(foreign, "web", true, &["--replicas", "0", images::NO_HEALTH]);
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        let err = e.scale(foreign, &[("web".into(), 2)]).await.unwrap_err();
        assert!(
            matches!(err, EngineError::Refused { .. }) && err.to_string().contains("not deployed by berth"),
            "{err}"
        );
    });
}

#[test]
fn exec_runs_in_a_local_task_and_returns_the_command_exit_code() {
    images::ensure();
    let stack = "t-ops-6";
    let _c = Cleanup::new(stack);
    service(stack, "web", false, &["--replicas", "1", images::NO_HEALTH]);
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        wait_for(&e, stack, "web running", |s| s.services.len() == 1 && svc(s, "web").running == 1).await;
        let mut out = Vec::new();
        let cmd: Vec<String> = ["/app", "echo", "hi"].map(String::from).to_vec();
        let code = e.exec(stack, "web", &cmd, false, &mut |_, b| out.extend_from_slice(b)).await.unwrap();
        assert_eq!((code, String::from_utf8_lossy(&out).as_ref()), (0, "hi\n"));
        let mut out = Vec::new();
        let cmd: Vec<String> = ["/app", "exit", "4"].map(String::from).to_vec();
        let code = e.exec(stack, "web", &cmd, false, &mut |_, b| out.extend_from_slice(b)).await.unwrap();
        assert_eq!(code, 4);
        assert_eq!(String::from_utf8_lossy(&out), "exiting with 4\n");
    });
}

#[test]
fn rm_keeps_volumes_unless_asked_and_refuses_a_foreign_stack() {
    images::ensure();
    let stack = "t-ops-7";
    let _c = Cleanup::new(stack);
    let labels = format!("--label={NS}={stack}");
    let own = format!("--label={OWNER}={stack}");
    let (ok, out) = docker(&["network", "create", "-d", "overlay", &labels, &own, "t-ops-7_default"]);
    assert!(ok, "{out}");
    let (ok, out) = docker(&["config", "create", &labels, &own, "t-ops-7_conf", "/etc/hostname"]);
    assert!(ok, "{out}");
    let mount =
        format!("type=volume,source=t-ops-7_data,target=/data,volume-label={NS}={stack},volume-label={OWNER}={stack}");
    service(
        stack,
        "web",
        false,
        &["--replicas", "1", "--network", "t-ops-7_default", "--mount", &mount, images::NO_HEALTH],
    );
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        wait_for(&e, stack, "web running", |s| s.services.len() == 1 && svc(s, "web").running == 1).await;
        let r = e.remove_stack(stack, false).await.unwrap();
        assert_eq!(r.services, vec!["t-ops-7_web"]);
        assert_eq!(r.networks, vec!["t-ops-7_default"]);
        assert_eq!(r.configs, vec!["t-ops-7_conf"]);
        assert_eq!(r.volumes_kept, vec!["t-ops-7_data"]);
        assert!(r.volumes.is_empty());
        assert!(docker(&["volume", "inspect", "t-ops-7_data"]).0, "volume removed without being asked");
        assert!(!docker(&["network", "inspect", "t-ops-7_default"]).0, "network left");
        let r = e.remove_stack(stack, true).await.unwrap();
        assert_eq!(r.volumes, vec!["t-ops-7_data"]);
        assert!(!docker(&["volume", "inspect", "t-ops-7_data"]).0, "volume left");
        let err = e.remove_stack(stack, true).await.unwrap_err();
        assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
    });
    let foreign = "t-ops-8";
    let _c2 = Cleanup::new(foreign);
    service(foreign, "web", true, &["--replicas", "0", images::NO_HEALTH]);
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        let err = e.remove_stack(foreign, false).await.unwrap_err();
        assert!(matches!(err, EngineError::Refused { .. }), "{err:?}");
        assert!(err.hint().unwrap().contains("docker stack rm"));
    });
    assert!(docker(&["service", "inspect", "t-ops-8_web"]).0, "foreign service removed");
}

#[test]
fn run_once_fails_clearly_when_no_node_fits_or_the_task_is_rejected() {
    images::ensure();
    let _c = Cleanup::new("t-ops-13");
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        let mut spec = app_spec(images::NO_HEALTH);
        spec.task_template.as_mut().unwrap().placement = Some(bollard::models::TaskSpecPlacement {
            constraints: Some(vec!["node.labels.berth-test-nowhere==yes".into()]),
            ..Default::default()
        });
        let run = RunSpec {
            stack: "t-ops-13".into(),
            name_hint: "web".into(),
            spec,
            command: vec!["/app".into(), "echo".into(), "x".into()],
            tty: false,
            auths: None,
        };
        let err = e.run_once(&run, &mut |_| {}).await.unwrap_err();
        assert!(matches!(err, EngineError::NoSuitableNode { .. }), "{err:?}");
        assert!(err.to_string().contains("no node can run"), "{err}");

        let run = RunSpec { spec: app_spec(images::NO_HEALTH), command: vec!["/no/such/binary".into()], ..run };
        let err = e.run_once(&run, &mut |_| {}).await.unwrap_err();
        assert!(matches!(err, EngineError::TaskFailed { .. }), "{err:?}");
        assert!(err.to_string().contains("/no/such/binary"), "{err}");
    });
    assert!(services_named("t-ops-13_").is_empty(), "run services left behind");
}

#[test]
fn logs_follow_streams_lines_of_tasks_that_start_later() {
    images::ensure();
    let stack = "t-ops-14";
    let _c = Cleanup::new(stack);
    // Every restart is a new task in slot 1: follow mode must pick each one up.
    service(
        stack,
        "tick",
        false,
        &[
            "--replicas",
            "1",
            "--restart-condition",
            "any",
            "--restart-delay",
            "1s",
            images::NO_HEALTH,
            "/app",
            "echo",
            "tick",
        ],
    );
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        let mut lines = Vec::new();
        let opts = berth_engine::LogsOptions { follow: true, ..Default::default() };
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(6),
            e.logs(stack, None, &opts, &mut |l| lines.push(l.render())),
        )
        .await;
        let ticks = lines.iter().filter(|l| l.starts_with("tick.1@") && l.ends_with(" | tick")).count();
        assert!(ticks >= 2, "{lines:#?}");
    });
}

/// The agent's ECR token refresh (crates/agent): services berth owns whose image comes from a
/// registry with new credentials are found stale and updated with only the fingerprint label
/// changed (the swarm stores the new `X-Registry-Auth`); the running task is not replaced, a
/// second refresh changes nothing, and a service berth does not own is neither listed nor touched.
#[test]
fn registry_auth_refresh_updates_only_the_label_and_restarts_nothing() {
    use berth_engine::{DockerCredentials, RegistryAuths, fingerprint};
    images::ensure();
    let _c = Cleanup::new("t-ops-ra");
    let _f = Cleanup::new("t-ops-raf");
    // An image named under a registry host nothing listens on: the node runs its local copy.
    let image = "127.0.0.1:5998/t-ops-ra/app:v1";
    let (ok, out) = docker(&["tag", images::NO_HEALTH, image]);
    assert!(ok, "{out}");
    service("t-ops-ra", "app", false, &["--no-resolve-image", image]);
    service("t-ops-raf", "app", true, &["--no-resolve-image", image]);
    let auths = |user: &str| {
        let mut a = RegistryAuths::default();
        let creds = DockerCredentials {
            username: Some(user.into()),
            password: Some(format!("{user}-token")),
            serveraddress: Some("127.0.0.1:5998".into()),
            ..Default::default()
        };
        a.insert("127.0.0.1:5998", creds);
        a
    };
    let label = |svc: &str| {
        let (_, v) = docker(&["service", "inspect", "-f", "{{index .Spec.Labels \"io.berth.registry-auth\"}}", svc]);
        v.trim().to_string()
    };
    let task_ids = |svc: &str| {
        let (_, v) = docker(&["service", "ps", "-q", svc]);
        v.trim().to_string()
    };
    rt().block_on(async {
        let e = Engine::connect(&Target::Local).await.unwrap();
        wait_for(&e, "t-ops-ra", "the task running", |s| svc(s, "app").running == 1).await;
        let tasks = task_ids("t-ops-ra_app");
        let a = auths("a");
        let stale = e.stale_registry_auth(&a).await.unwrap();
        assert!(stale.iter().any(|s| s == "t-ops-ra_app"), "{stale:?}");
        assert!(!stale.iter().any(|s| s == "t-ops-raf_app"), "a service berth does not own was listed: {stale:?}");
        assert!(e.refresh_registry_auth("t-ops-ra_app", &a).await.unwrap());
        let want = fingerprint(&a.for_host("127.0.0.1:5998").unwrap());
        assert_eq!(label("t-ops-ra_app"), want);
        assert!(!e.stale_registry_auth(&a).await.unwrap().iter().any(|s| s == "t-ops-ra_app"));
        assert!(!e.refresh_registry_auth("t-ops-ra_app", &a).await.unwrap(), "a current label was sent again");
        assert!(!e.refresh_registry_auth("t-ops-raf_app", &a).await.unwrap(), "a foreign service was updated");
        assert!(matches!(label("t-ops-raf_app").as_str(), "" | "<no value>"), "a foreign service got a label");
        // New credentials: stale again, sent, a new label.
        let b = auths("b");
        assert!(e.stale_registry_auth(&b).await.unwrap().iter().any(|s| s == "t-ops-ra_app"));
        assert!(e.refresh_registry_auth("t-ops-ra_app", &b).await.unwrap());
        assert_ne!(label("t-ops-ra_app"), want);
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert_eq!(task_ids("t-ops-ra_app"), tasks, "the refresh replaced the task");
        assert_eq!(svc(&e.status("t-ops-ra").await.unwrap(), "app").running, 1);
    });
    docker(&["rmi", image]);
}
