//! The test hosts of `tests/lab/lab.sh`: a network namespace each on this machine, with its own
//! dockerd and sshd (no swarm until `berth cluster up`). Shared by the many-machine tests.
#![allow(dead_code)] // not every test binary that includes this module uses all of it

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh")
}

/// Host `i`'s address (1-based).
pub fn ip(i: usize) -> String {
    format!("192.168.87.{}", 10 + i)
}

/// The keys of a target named `lab:` over `hosts` with `managers` managers (indented for
/// `x-berth.targets`; a test appends its own keys, e.g. `labels`).
pub fn target_yaml(hosts: &[String], managers: usize) -> String {
    format!(
        "    lab:\n      ssh: [{}]\n      managers: {managers}\n      heartbeat: 1s\n      key: /var/lib/berth-lab/ssh/id_ed25519\n      known_hosts: /var/lib/berth-lab/ssh/known_hosts\n      socket: /run/berth-lab/{{host}}/docker.sock\n",
        hosts.join(", ")
    )
}

/// `docker` against host `i`'s engine; its standard output, trimmed.
pub fn docker(i: usize, args: &[&str]) -> String {
    let out = Command::new("docker")
        .arg("-H")
        .arg(format!("unix:///run/berth-lab/{}/docker.sock", ip(i)))
        .args(args)
        .output()
        .expect("docker");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The running hosts; `down` when dropped (unless `BERTH_LAB_KEEP=1` and the test failed).
pub struct Lab;

impl Lab {
    /// `n` hosts; images `all` loaded into every host, `per_host` (host, images) into one host each.
    pub fn up(n: usize, all: &str, per_host: &[(usize, &str)]) -> Lab {
        Lab::up_with_bare(n, all, per_host, &[])
    }

    /// Like [`Lab::up`], with the hosts `bare` started as bare machines: no Docker, their own
    /// Debian root (`tests/lab/bare-root.sh`, made once) with apt reaching only a local repository.
    pub fn up_with_bare(n: usize, all: &str, per_host: &[(usize, &str)], bare: &[usize]) -> Lab {
        let mut cmd = Command::new("bash");
        cmd.arg(lab_script()).args(["up", &n.to_string()]).env("LAB_IMAGES", all);
        if !bare.is_empty() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/bare-root.sh");
            let out = Command::new("bash").arg(script).output().expect("run bare-root.sh");
            assert!(out.status.success(), "bare root: {}", String::from_utf8_lossy(&out.stderr));
            let root = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let list: Vec<String> = bare.iter().map(|i| i.to_string()).collect();
            cmd.env("LAB_BARE", list.join(" ")).env("LAB_BARE_ROOT", root);
        }
        for (i, images) in per_host {
            cmd.env(format!("LAB_IMAGES_{i}"), images);
        }
        let out = cmd.output().expect("run lab.sh");
        assert!(out.status.success(), "lab up: {}", String::from_utf8_lossy(&out.stderr));
        Lab
    }

    /// `lab.sh VERB i` (`kill`, `start`, `cut`, `heal`).
    pub fn run(&self, verb: &str, i: usize) {
        let ok = Command::new("bash").arg(lab_script()).args([verb, &i.to_string()]).status().unwrap().success();
        assert!(ok, "lab {verb} {i}");
    }

    pub fn kill(&self, i: usize) {
        self.run("kill", i)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // BERTH_LAB_KEEP=1 leaves the hosts running after a failure, to look at them.
        if std::thread::panicking() && std::env::var_os("BERTH_LAB_KEEP").is_some() {
            return;
        }
        let _ = Command::new("bash").arg(lab_script()).arg("down").status();
    }
}

/// A copy of the berth binary without its debug information, for `BERTH_EDGE_BINARY`: the edge
/// image is copied to every host over SSH, and the smaller the faster.
pub fn edge_binary(dir: &Path) -> PathBuf {
    let edge_bin = dir.join("berth-edge");
    let ok = Command::new("objcopy")
        .arg("--strip-debug")
        .args([Path::new(env!("CARGO_BIN_EXE_berth")), &edge_bin])
        .status()
        .expect("objcopy (binutils)")
        .success();
    assert!(ok, "objcopy --strip-debug of the berth binary");
    edge_bin
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Panics unless the test runs as root (network namespaces need it; CI runs as root).
pub fn require_root() {
    if unsafe { libc_geteuid() } != 0 {
        panic!("the lab needs root (network namespaces); CI runs as root");
    }
}
