//! `berth cluster up` installs the Docker engine on machines that have none (docs/cluster.md):
//! two test hosts from `tests/lab/lab.sh`, both bare machines — each its own Debian root without
//! Docker (`tests/lab/bare-root.sh`), where its sshd runs, whose apt reaches only a repository
//! inside that root (the lab reaches no mirror; the packages were downloaded when the root was
//! made), and whose login is a user with passwordless sudo, like a cloud image's. Checked: with
//! `--no-install` the hosts are refused with a hint; without it, the distribution's `docker.io` is
//! installed (through sudo, on both hosts at once) and started over SSH, the user may then use the
//! socket, the swarm is made with a manager and a worker, a second run changes nothing, and a
//! global service runs a healthy task on each newly installed engine.

#[path = "common/run.rs"]
mod run;
use run::berth_env;

#[path = "common/lab.rs"]
mod lab;
use lab::{Lab, docker, ip};

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE: &str = "berth-test/app:v1";

fn write_stack(dir: &Path) {
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: {IMAGE}\n    deploy:\n      mode: global\nx-berth:\n  name: inst\n  targets:\n{}",
            lab::target_yaml(&[ip(1), ip(2)], 1) + "      user: deploy\n"
        ),
    )
    .unwrap();
}

#[test]
fn cluster_up_installs_docker_on_a_bare_host_and_runs_tasks_there() {
    lab::require_root();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/images/build.sh");
    assert!(Command::new("bash").arg(images).status().expect("build test images").success(), "test images");
    let _lab = Lab::up_with_bare(2, "", &[], &[1, 2]);
    let root = |i: usize| Path::new("/var/lib/berth-lab").join(format!("n{i}/root"));
    for i in 1..=2 {
        assert!(root(i).join("etc/debian_version").exists(), "host {i} has no root of its own");
        assert!(!root(i).join("usr/sbin/dockerd").exists(), "host {i} already has dockerd");
    }

    let tmp = tempfile::tempdir().unwrap();
    write_stack(tmp.path());
    let berth = |args: &[&str]| berth_env(tmp.path(), args, &[], &["BERTH_TARGET"]);

    // Refused without installing: the host named, and what to do.
    let r = berth(&["-t", "lab", "cluster", "up", "--no-install"]);
    assert_ne!(r.code, 0, "cluster up --no-install on hosts without Docker");
    assert!(r.stderr.contains("--no-install") && r.stderr.contains("cannot open"), "{}", r.stderr);
    assert!(!root(1).join("usr/sbin/dockerd").exists(), "--no-install installed Docker");

    let start = Instant::now();
    let r = berth(&["-t", "lab", "cluster", "up"]);
    let install = start.elapsed();
    assert_eq!(r.code, 0, "cluster up");
    let out = format!("{}{}", r.stdout, r.stderr);
    for i in 1..=2 {
        assert!(out.contains(&format!("{}: installed and started Docker", ip(i))), "{out}");
        assert!(root(i).join("usr/sbin/dockerd").exists(), "dockerd is not in host {i}'s root");
        // The login user was added to the docker group (the tunnel to the socket runs as it).
        let group = std::fs::read_to_string(root(i).join("etc/group")).unwrap();
        assert!(group.lines().any(|l| l.starts_with("docker:") && l.ends_with(":deploy")), "{group}");
    }
    assert!(out.contains(&format!("{}: initialised the swarm", ip(1))), "{out}");
    assert!(out.contains(&format!("{}: joined as worker", ip(2))), "{out}");
    let nodes = docker(1, &["node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"]);
    assert!(nodes.lines().any(|l| l.trim() == "blab-n2 Ready"), "{nodes}");
    assert_eq!(docker(2, &["info", "--format", "{{.Swarm.LocalNodeState}}"]), "active");

    let start = Instant::now();
    let r = berth(&["-t", "lab", "cluster", "up"]);
    let again = start.elapsed();
    assert_eq!(r.code, 0, "second cluster up");
    assert!(r.stderr.contains("is up to date"), "second cluster up changed something: {}", r.stderr);

    // The new engine runs tasks (the image loaded the way the lab loads it into the others: the
    // lab reaches no registry), health checks included.
    let save = Command::new("docker").args(["save", IMAGE]).output().expect("docker save");
    let tar = tmp.path().join("image.tar");
    std::fs::write(&tar, save.stdout).unwrap();
    for i in 1..=2 {
        assert!(!docker(i, &["load", "-q", "-i", tar.to_str().unwrap()]).is_empty(), "load into host {i}");
    }
    let start = Instant::now();
    let r = berth(&["-t", "lab", "deploy", "--plain"]);
    assert_eq!(r.code, 0, "deploy");
    loop {
        let healthy =
            |i| !docker(i, &["ps", "--filter", "health=healthy", "--filter", "name=inst_web", "-q"]).is_empty();
        if healthy(1) && healthy(2) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no healthy inst_web task on each installed host");
        std::thread::sleep(Duration::from_millis(250));
    }

    eprintln!("\n| step | result |\n|---|---|");
    eprintln!("| cluster up: install docker.io on 2 bare hosts at once, init, join | {:.1} s |", install.as_secs_f64());
    eprintln!("| cluster up again | {:.1} s, no change |", again.as_secs_f64());
    eprintln!("| deploy until a healthy task runs on each installed host | {:.1} s |", start.elapsed().as_secs_f64());
}
