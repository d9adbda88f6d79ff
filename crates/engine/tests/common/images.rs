//! Offline test images for integration tests: `images::ensure()` builds them once per test process.
//!
//! Include with `mod common;` (it declares `pub mod images;`) or directly with
//! `#[path = "common/images.rs"] mod images;` (from another crate: a path up to `crates/engine/tests/common/images.rs`).
//! The images are `FROM scratch` + the static `berth-testapp` (see `crates/testapp`), listening on 8080, built by
//! `crates/engine/tests/images/build.sh`; `docs/images.md` describes them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// `VERSION=v1`, healthcheck `/app check http://127.0.0.1:8080/health` every 1 s, 2 retries.
pub const V1: &str = "berth-test/app:v1";
/// `VERSION=v2`, same healthcheck as [`V1`].
pub const V2: &str = "berth-test/app:v2";
/// `HEALTH=fail`: `/health` answers 500, so the container never becomes healthy.
pub const BAD_HEALTH: &str = "berth-test/app:bad-health";
/// Like [`V1`] without a healthcheck.
pub const NO_HEALTH: &str = "berth-test/app:nohealth";
/// Port the test app listens on inside the container.
pub const PORT: u16 = 8080;

/// The build script, found from the including crate's manifest dir upwards.
pub fn build_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("crates/engine/tests/images/build.sh"))
        .find(|p| p.exists())
        .expect("crates/engine/tests/images/build.sh not found above CARGO_MANIFEST_DIR")
}

/// Builds the test images if missing or stale (once per process; cheap when they are up to date).
/// Panics with the script's output when the build fails.
pub fn ensure() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let script = build_script();
        let out =
            Command::new("bash").arg(&script).output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({}):\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("test images: {e}");
    }
}

/// The image ID (`sha256:…`) of a test image tag, after [`ensure`].
pub fn image_id(tag: &str) -> String {
    ensure();
    let out =
        Command::new("docker").args(["image", "inspect", "-f", "{{.Id}}", tag]).output().expect("cannot run docker");
    assert!(out.status.success(), "docker image inspect {tag}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
