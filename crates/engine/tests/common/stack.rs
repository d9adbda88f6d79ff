//! Test support shared by the engine's and the CLI's integration tests (included with
//! `#[path = ".../common/stack.rs"] mod stack;`): the docker CLI, and a guard that removes every
//! object of a test stack.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

/// Runs the docker CLI; returns success and stdout + stderr.
pub fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().expect("cannot run docker");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Removes every service, secret, config, network and volume whose name starts with `<stack>_`
/// — services first, then (once their containers are gone) the rest — when made and again when
/// dropped (also when the test fails). Sweeping first makes a test indifferent to what a run
/// killed midway left behind: CI once found `t-ops-ra_app` and `t-ops-7_default` from such a run
/// and two tests failed with "already exists".
pub struct Cleanup(&'static str);

impl Cleanup {
    pub fn new(stack: &'static str) -> Cleanup {
        let c = Cleanup(stack);
        c.remove();
        c
    }

    fn remove(&self) {
        let p = format!("{}_", self.0);
        let remove_all = |kind: &str| {
            let (_, names) = docker(&[kind, "ls", "--format", "{{.Name}}"]);
            for n in names.lines().filter(|n| n.starts_with(&p)) {
                docker(&[kind, "rm", n]);
            }
        };
        remove_all("service");
        for _ in 0..60 {
            let (_, ps) = docker(&["ps", "-a", "--format", "{{.Names}}"]);
            if !ps.lines().any(|n| n.starts_with(&p)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        for kind in ["secret", "config", "network", "volume"] {
            remove_all(kind);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.remove();
    }
}
