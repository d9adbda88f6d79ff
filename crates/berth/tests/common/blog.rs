//! What the tests of examples/blog share: the repository, the local base images, a working copy
//! of the example.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Builds (or finds cached) the local base images; returns the variables that select them.
pub fn base_images() -> Vec<(String, String)> {
    let script = repo().join("examples/blog/base-images.sh");
    let o = Command::new("bash").arg(&script).arg("--print-env").output().expect("cannot run base-images.sh");
    assert!(o.status.success(), "base-images.sh failed:\n{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Copies the example without what a developer's checkout may hold besides it (.env, builds, caches).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if [".env", "node_modules", "dist", "__pycache__", "db.sqlite3"].iter().any(|n| name == *n) {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}
