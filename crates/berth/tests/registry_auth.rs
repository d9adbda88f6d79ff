//! Registry credentials on the swarm: a private registry with password auth (Debian's
//! `docker-registry`, htpasswd, on 127.0.0.1:5077), the operator's credentials in a Docker
//! `config.json` (DOCKER_CONFIG), the real berth binary and the real dockerd.
//!
//! What broke without the refresh: Swarm keeps the credentials a service was last created or
//! updated with and uses them for every later pull (a rescheduled task, a new node). When the
//! registry's credentials change (an expiring token, a rotated password) and the service spec does
//! not, a plain redeploy sent nothing, and the next pull failed long after. berth labels services
//! with a fingerprint of the credentials, so new credentials are a change the plan carries to the
//! swarm — without restarting a task.
//!
//! Stack `t-rauth`; removed in a guard.

#[path = "../../engine/tests/common/stack.rs"]
mod stack;
use stack::Cleanup;

#[path = "../../engine/tests/common/images.rs"]
mod images;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const STACK: &str = "t-rauth";
const ADDR: &str = "127.0.0.1:5077";

/// A `docker-registry` that accepts only the users of its htpasswd file; storage kept across restarts.
struct Registry {
    child: Option<Child>,
    dir: PathBuf,
}

impl Registry {
    fn new(dir: &Path) -> Registry {
        Registry { child: None, dir: dir.to_path_buf() }
    }

    /// (Re)starts it accepting only `user:password`.
    fn serve_only(&mut self, user: &str, password: &str) {
        self.stop();
        let hash = bcrypt::hash(password, 4).unwrap();
        std::fs::write(self.dir.join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
             http:\n  addr: {ADDR}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n",
            data = self.dir.join("data").display(),
            htpasswd = self.dir.join("htpasswd").display(),
        );
        std::fs::write(self.dir.join("config.yml"), config).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(self.dir.join("config.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (scripts/host-setup.sh installs it)");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(ADDR).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "docker-registry did not listen on {ADDR}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes the operator's Docker `config.json` with `user:password` for the registry.
fn login(config_dir: &Path, user: &str, password: &str) {
    let auth = b64(format!("{user}:{password}").as_bytes());
    let json = format!(r#"{{"auths":{{"{ADDR}":{{"auth":"{auth}"}}}}}}"#);
    std::fs::write(config_dir.join("config.json"), json).unwrap();
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `docker ARGS`, which must succeed; its trimmed output.
fn docker(args: &[&str]) -> String {
    let (ok, out) = stack::docker(args);
    assert!(ok, "docker {}: {out}", args.join(" "));
    out.trim().to_string()
}

fn berth(dir: &Path, config_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .current_dir(dir)
        .args(args)
        .env("DOCKER_CONFIG", config_dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run berth")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn service_label(name: &str) -> String {
    docker(&["service", "inspect", name, "--format", "{{index .Spec.Labels \"io.berth.registry-auth\"}}"])
}

fn running_tasks(name: &str) -> String {
    docker(&["service", "ps", name, "-q", "--filter", "desired-state=running"])
}

#[test]
fn new_registry_credentials_reach_the_swarm_without_restarting_tasks() {
    images::ensure();
    let _c = Cleanup::new(STACK);
    let work = tempfile::tempdir().unwrap();
    let (reg_dir, cfg_dir, app_dir) =
        (work.path().join("registry"), work.path().join("docker"), work.path().join("app"));
    for d in [&reg_dir, &cfg_dir, &app_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let image = format!("{ADDR}/{STACK}/app:v1");
    let mut registry = Registry::new(&reg_dir);

    // 1. The image in the private registry (user a); deployed with a's credentials.
    registry.serve_only("a", "pass-a");
    login(&cfg_dir, "a", "pass-a");
    docker(&["tag", images::V1, &image]);
    let push = Command::new("docker").arg("--config").arg(&cfg_dir).args(["push", &image]).output().unwrap();
    assert!(push.status.success(), "push: {}", text(&push));
    std::fs::write(
        app_dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: {image}\n    stop_grace_period: 1s\n    deploy:\n      update_config:\n        delay: 0s\n"
        ),
    )
    .unwrap();
    let svc = format!("{STACK}_web");
    let first = berth(&app_dir, &cfg_dir, &["-s", STACK, "deploy", "--plain", "--timeout", "120"]);
    assert!(first.status.success(), "first deploy: {}", text(&first));
    let fp_a = service_label(&svc);
    assert_eq!(fp_a.len(), 16, "fingerprint label: {fp_a:?}");
    assert!(!text(&first).contains("pass-a"), "a credential in berth's output: {}", text(&first));

    // Same credentials: nothing to do.
    let again = berth(&app_dir, &cfg_dir, &["-s", STACK, "deploy", "--plain"]);
    assert!(again.status.success() && text(&again).contains("up to date"), "{}", text(&again));

    // 2. The registry now takes only b (a's token "expired"); the operator logs in as b and deploys.
    registry.serve_only("b", "pass-b");
    login(&cfg_dir, "b", "pass-b");
    let tasks_before = running_tasks(&svc);
    let refresh = berth(&app_dir, &cfg_dir, &["-s", STACK, "deploy", "--plain", "--timeout", "120"]);
    assert!(refresh.status.success(), "refresh deploy: {}", text(&refresh));
    let fp_b = service_label(&svc);
    assert!(fp_b.len() == 16 && fp_b != fp_a, "fingerprint {fp_a} → {fp_b}");
    assert_eq!(running_tasks(&svc), tasks_before, "new credentials alone must not restart tasks");
    assert!(!text(&refresh).contains("pass-b"), "a credential in berth's output: {}", text(&refresh));

    // 3. A pull with what the swarm stored: drop the local references so the task must pull, and
    //    restart it with the docker CLI *without* --with-registry-auth (Swarm's stored credentials).
    let digests = docker(&["image", "inspect", &image, "--format", "{{join .RepoDigests \" \"}}"]);
    for r in digests.split_whitespace().filter(|r| r.starts_with(ADDR)).chain([image.as_str()]) {
        docker(&["rmi", r]);
    }
    docker(&["service", "update", "--force", "--detach", &svc]);
    let start = Instant::now();
    loop {
        let states = docker(&[
            "service",
            "ps",
            &svc,
            "--no-trunc",
            "--format",
            "{{.DesiredState}} {{.CurrentState}} {{.Error}}",
        ]);
        let newest = states.lines().next().unwrap_or_default().to_string();
        if newest.starts_with("Running Running") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the task could not pull with the swarm's stored credentials: {states}\nregistry log:\n{}",
            std::fs::read_to_string(reg_dir.join("registry.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
