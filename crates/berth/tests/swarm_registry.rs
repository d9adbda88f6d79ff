//! The swarm's own registry (docs/images.md): test hosts from `tests/lab/lab.sh` (a network
//! namespace each, with its own dockerd and sshd), a target of three — one manager and two
//! workers — and a stack with a `build:` service whose three replicas must run one per host. No `x-berth.registry`: berth
//! builds on the manager, starts its registry on the swarm, pushes there, and the workers pull
//! from it — no image is copied to them. Checked: every host runs a task of the image under
//! `127.0.0.1:5000/`; the workers got it from the registry (the deploy copied only berth's own
//! image); the registry answers 401 without the password, also on a worker's address; a second
//! deploy changes nothing; a fourth host joined later with `node add` gets berth's own image from
//! `cluster up` and pulls the app's image from the registry; a new release reaches the hosts the
//! same way.
//!
//! The lab reaches no registry on the internet, so the registry's image is Debian's
//! `docker-registry` binary in a `FROM scratch` image (`BERTH_REGISTRY_IMAGE`), answering like
//! `registry:2`.

#[path = "common/run.rs"]
mod run;
use run::berth_env;

#[path = "common/lab.rs"]
mod lab;
use lab::{Lab, docker, ip};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const REGISTRY_IMAGE: &str = "berth-test/registry:lab";

fn images_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/images/build.sh")
}

/// A `registry:2` stand-in: Debian's `docker-registry` (dynamically linked against libc only),
/// its loader and libc, and a config at the path `registry:2` keeps it.
fn registry_image(tmp: &Path) {
    let ctx = tmp.join("registry-image");
    let bin = Path::new("/usr/bin/docker-registry");
    assert!(bin.exists(), "Debian's docker-registry (scripts/host-setup.sh installs it)");
    let mut files: Vec<PathBuf> = vec![bin.into()];
    let ldd = Command::new("ldd").arg(bin).output().expect("ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        if let Some(p) = line.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(p.into());
        }
    }
    for f in &files {
        let dest = ctx.join("rootfs").join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(f, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", f.display()));
    }
    let conf = ctx.join("rootfs/etc/docker/registry/config.yml");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(
        &conf,
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n",
    )
    .unwrap();
    std::fs::create_dir_all(ctx.join("rootfs/var/lib/registry")).unwrap();
    std::fs::create_dir_all(ctx.join("rootfs/tmp")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/usr/bin/docker-registry\"]\nCMD [\"serve\", \"/etc/docker/registry/config.yml\"]\n",
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", REGISTRY_IMAGE])
        .arg(&ctx)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    assert!(out.status.success(), "registry image: {}", String::from_utf8_lossy(&out.stderr));
}

fn write_stack(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir.join("web")).unwrap();
    std::fs::write(dir.join("web/Dockerfile"), format!("FROM berth-test/app:v1\nENV VERSION={version}\n")).unwrap();
    let hosts: Vec<String> = (1..=3).map(ip).collect();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"services:
  web:
    build: ./web
    deploy:
      replicas: 3
      placement:
        max_replicas_per_node: 1
x-berth:
  name: regt
  targets:
{lab}"#,
            lab = lab::target_yaml(&hosts, 1)
        ),
    )
    .unwrap();
}

/// The image of every running task of `regt_web`, per host.
fn task_images() -> Vec<(usize, String)> {
    (1..=4)
        .flat_map(|i| {
            docker(i, &["ps", "--filter", "label=com.docker.swarm.service.name=regt_web", "--format", "{{.Image}}"])
                .lines()
                .map(|l| (i, l.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    start.elapsed()
}

#[test]
fn built_image_reaches_workers_through_the_swarms_own_registry() {
    lab::require_root();
    let ok = Command::new("bash").arg(images_script()).status().expect("build test images").success();
    assert!(ok, "test images");
    let tmp = tempfile::tempdir().unwrap();
    registry_image(tmp.path());
    // The base image of the build on the manager only; the registry's image where it runs.
    let start = Instant::now();
    let first_host = format!("berth-test/app:v1 {REGISTRY_IMAGE}");
    let _lab = Lab::up(4, "", &[(1, &first_host)]);
    let lab_up = start.elapsed();
    let edge_bin = lab::edge_binary(tmp.path());
    let dir = tmp.path().join("stack");
    write_stack(&dir, "v1");
    let set: [(&str, &std::ffi::OsStr); 2] =
        [("BERTH_REGISTRY_IMAGE", REGISTRY_IMAGE.as_ref()), ("BERTH_EDGE_BINARY", edge_bin.as_os_str())];
    let berth = |args: &[&str]| berth_env(&dir, args, &set, &["BERTH_TARGET"]);

    let r = berth(&["-t", "lab", "cluster", "up"]);
    assert_eq!(r.code, 0, "cluster up");
    for i in 2..=3 {
        assert_eq!(docker(i, &["image", "ls", "-q", "berth-test/app:v1"]), "", "host {i} has the base image");
    }

    // First release: built on the manager, pushed to the swarm's registry, pulled by the workers.
    let start = Instant::now();
    let r = berth(&["-t", "lab", "deploy", "--plain", "--timeout", "180"]);
    assert_eq!(r.code, 0, "deploy");
    let first = start.elapsed();
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("registry: created berth-registry_store"), "{out}");
    assert!(out.contains("pushed 127.0.0.1:5000/regt/web:"), "{out}");
    assert!(!out.contains("copied 127.0.0.1:5000"), "the built image was copied, not pulled: {out}");
    wait_for("a task of regt_web on each host", Duration::from_secs(60), || {
        let t = task_images();
        t.len() == 3 && (1..=3).all(|i| t.iter().any(|(h, _)| *h == i))
    });
    for (host, image) in task_images() {
        assert!(image.starts_with("127.0.0.1:5000/regt/web:"), "host {host} runs {image}");
    }
    // Without the password the registry answers 401, on a worker's address too.
    for i in [1, 3] {
        let code = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"])
            .arg(format!("http://{}:5000/v2/_catalog", ip(i)))
            .output()
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&code.stdout), "401", "host {i}'s registry port without a password");
    }

    // Nothing changed: nothing to do.
    let start = Instant::now();
    let r = berth(&["-t", "lab", "deploy", "--plain"]);
    assert_eq!(r.code, 0, "second deploy");
    assert!(format!("{}{}", r.stdout, r.stderr).contains("up to date"), "second deploy changed something");
    let again = start.elapsed();
    // `plan` names the images like the deploy did (no swarm call needed for that).
    let r = berth(&["-t", "lab", "plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "plan after the deploy shows changes");

    // A host that joins later (not in the target's list: `node add`) gets berth's own image from
    // `cluster up`, so the registry's forwarder runs there, and pulls the app's image itself.
    let start = Instant::now();
    let r = berth(&["-t", "lab", "node", "add", &ip(4)]);
    assert_eq!(r.code, 0, "node add");
    assert!(r.stderr.contains(&format!("{}: copied berth/edge:", ip(4))), "berth's image not copied to the new host");
    let r = berth(&["-t", "lab", "scale", "web=4"]);
    assert_eq!(r.code, 0, "scale");
    wait_for("a task of regt_web on the new host", Duration::from_secs(60), || {
        task_images().iter().any(|(h, _)| *h == 4)
    });
    for (host, image) in task_images() {
        assert!(image.starts_with("127.0.0.1:5000/regt/web:"), "host {host} runs {image}");
    }
    let joined = start.elapsed();
    let r = berth(&["-t", "lab", "scale", "web=3"]);
    assert_eq!(r.code, 0, "scale back");

    // A new release reaches every host the same way.
    write_stack(&dir, "v2");
    let start = Instant::now();
    let r = berth(&["-t", "lab", "deploy", "--plain", "--timeout", "180"]);
    assert_eq!(r.code, 0, "deploy v2");
    let second = start.elapsed();
    let v2_on = |i: usize| {
        docker(i, &["ps", "-q", "--filter", "label=com.docker.swarm.service.name=regt_web"])
            .lines()
            .any(|id| docker(i, &["inspect", "-f", "{{range .Config.Env}}{{.}} {{end}}", id]).contains("VERSION=v2"))
    };
    wait_for("v2 on three hosts", Duration::from_secs(60), || (1..=4).filter(|i| v2_on(*i)).count() == 3);
    let r = berth(&["-t", "lab", "rm", "--yes"]);
    assert_eq!(r.code, 0, "rm");
    // The registry is a stack of its own, shared by the swarm's stacks: `rm` of an app leaves it;
    // removing it is an `rm` like any other.
    assert_eq!(docker(1, &["service", "ls", "-q", "--filter", "name=berth-registry_"]).lines().count(), 2);
    let r = berth(&["-t", "lab", "-s", "berth-registry", "rm", "--yes"]);
    assert_eq!(r.code, 0, "rm of the registry");
    assert_eq!(docker(1, &["service", "ls", "-q", "--filter", "name=berth-registry_"]), "", "registry services left");

    eprintln!("\n| swarm registry test step | time |\n|---|---|");
    eprintln!("| lab: 4 hosts | {:.1} s |", lab_up.as_secs_f64());
    eprintln!("| first deploy: registry started, build, push, 3 hosts pull | {:.1} s |", first.as_secs_f64());
    eprintln!("| second deploy, nothing changed | {:.1} s |", again.as_secs_f64());
    eprintln!("| node add of a 4th host, scale to 4, its task pulls | {:.1} s |", joined.as_secs_f64());
    eprintln!("| new release: build, push, 3 hosts pull | {:.1} s |", second.as_secs_f64());
}
