//! Crash safety of `berth deploy` (issue #4), through the binary against the real dockerd (swarm
//! mode): SIGKILL berth at random points of a deploy, or restart dockerd in the middle of one, then
//! `berth deploy` again must converge to the files with nothing lost.
//!
//! Fixture: `tests/fixtures/crash/compose.yaml` (holes `@IMAGE@`, `@ENV@`, `@EXTRA@`; the secret
//! `token.txt` and config `app.conf` are written beside the filled copy in a temp dir). Stacks
//! `t-crash-<n>`, removed in a guard. The tests of this file share the one swarm (and one of them
//! restarts its daemon), so they are serialised with [`LOCK`].
//!
//! Replay: `BERTH_CRASH_SEED=<seed>` (printed by the kill trials) gives the same kill delays;
//! `BERTH_CRASH_TRIALS=<n>` changes the number of trials (default 20). Run with `--nocapture` to
//! see the table.

#[path = "../../engine/tests/common/stack.rs"]
mod stack;
use stack::{Cleanup, docker};

#[path = "../../engine/tests/common/images.rs"]
mod images;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Serialises the tests of this file (they share the swarm; one restarts dockerd).
static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `docker ARGS` stdout, or a panic with its output.
fn docker_ok(args: &[&str]) -> String {
    let (ok, out) = docker(args);
    assert!(ok, "docker {}: {out}", args.join(" "));
    out
}

fn berth(dir: &Path, stack: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .current_dir(dir)
        .args(["-s", stack])
        .args(args)
        .output()
        .expect("cannot run berth")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// SplitMix64: a small seeded generator, so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the files say; every trial changes it.
#[derive(Debug, Clone, PartialEq)]
struct State {
    image: &'static str,
    env: String,
    secret: String,
    config: String,
    extra: bool,
}

impl State {
    fn initial() -> State {
        State {
            image: images::V1,
            env: "t0".into(),
            secret: "secret-0".into(),
            config: "config-0".into(),
            extra: false,
        }
    }

    /// The state of trial `k`: the env always changes (so every service updates and the release
    /// command runs), the image alternates v1/v2, the secret rotates every 2nd trial, the config
    /// every 3rd, and the extra service comes and goes every 4th.
    fn trial(&self, k: usize) -> State {
        let mut s = self.clone();
        s.env = format!("t{k}");
        s.image = if k % 2 == 1 { images::V2 } else { images::V1 };
        if k.is_multiple_of(2) {
            s.secret = format!("secret-{k}");
        }
        if k.is_multiple_of(3) {
            s.config = format!("config-{k}");
        }
        if k.is_multiple_of(4) {
            s.extra = !s.extra;
        }
        s
    }

    /// Service (short name) → expected replicas on this single-node swarm.
    fn services(&self) -> Vec<(&'static str, usize)> {
        let mut v = vec![("web", 2), ("agent", 1), ("api", 1), ("worker", 1)];
        if self.extra {
            v.push(("extra", 1));
        }
        v
    }

    fn write(&self, dir: &Path) {
        let fixture =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/crash/compose.yaml"))
                .expect("crash fixture");
        let extra = if self.extra {
            "  extra:\n    <<: *defaults\n    deploy:\n      <<: *deploy\n      replicas: 1\n"
        } else {
            ""
        };
        let text = fixture.replace("@IMAGE@", self.image).replace("@ENV@", &self.env).replace("@EXTRA@\n", extra);
        std::fs::write(dir.join("compose.yaml"), text).unwrap();
        std::fs::write(dir.join("token.txt"), &self.secret).unwrap();
        std::fs::write(dir.join("app.conf"), &self.config).unwrap();
    }
}

/// How far a deploy got, from its `--plain` output (the last line that says something).
fn phase_reached(out: &str) -> &'static str {
    let mut phase = "start";
    for line in out.lines() {
        let l = line.split_once("] ").map(|(_, r)| r).unwrap_or(line);
        phase = if l.contains(" is live (") || l.contains(" is up to date") {
            "done"
        } else if l.contains(" running `") {
            "release-cmd"
        } else if l.starts_with("worker | ") {
            "release-cmd-output"
        } else if l.starts_with("create service") || l.starts_with("update service") || l.starts_with("remove service")
        {
            "apply-services"
        } else if l.starts_with("create ") || l.starts_with("remove ") {
            "apply-objects"
        } else if l.contains(" running") && l.contains('/') {
            "wait"
        } else if l.starts_with("release ") && l.contains("change(s)") {
            "recorded"
        } else {
            continue;
        };
    }
    phase
}

/// Starts `berth deploy --plain` and SIGKILLs it after `delay` (if it is still running). Returns
/// its output and whether it had already exited by itself.
fn deploy_and_kill(dir: &Path, stack: &str, delay: Duration) -> (String, bool) {
    let log = dir.join("killed.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .current_dir(dir)
        .args(["-s", stack, "deploy", "--plain", "--timeout", "120"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("cannot run berth");
    let start = Instant::now();
    let mut finished = false;
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            finished = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5).min(delay.saturating_sub(start.elapsed())));
    }
    if !finished {
        child.kill().unwrap(); // SIGKILL
    }
    child.wait().unwrap();
    (std::fs::read_to_string(&log).unwrap_or_default(), finished)
}

/// The decoded JSON record of release `n` (`docker config inspect` + base64 + gunzip).
fn release_record(stack: &str, n: u64) -> serde_json::Value {
    let script = format!(
        "docker config inspect {stack}_berth-release-{n} --format '{{{{json .Spec.Data}}}}' | tr -d '\"' | base64 -d | gzip -dc"
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "reading release {n}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("release {n} record: {e}"))
}

/// Names of the stack's swarm objects of `kind` (`secret`/`config`) starting with `prefix`.
fn objects(kind: &str, prefix: &str) -> Vec<String> {
    docker_ok(&[kind, "ls", "--format", "{{.Name}}"])
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect()
}

/// A JSON object without its `null` and `{}` members (a task's copy of the container spec
/// leaves out the empty `DNSConfig` the service has).
fn without_empty(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, m| !m.is_null() && m.as_object().is_none_or(|o| !o.is_empty()));
    }
    v
}

/// Checks that the swarm runs exactly `state` (see the module doc and the issue), after a
/// successful deploy. `output` is everything berth printed since the change (the killed run and
/// the redeploy): the release command must have run for this state.
fn check_converged(dir: &Path, stack: &str, state: &State, output: &str) -> Result<(), String> {
    // The deploy's own plan is empty: a deploy now writes nothing.
    let o = berth(dir, stack, &["deploy", "--plain"]);
    let e = text(&o.stderr);
    if o.status.code() != Some(0) || !e.contains("is up to date") {
        return Err(format!("deploy after convergence is not a no-op ({:?}):\n{e}", o.status.code()));
    }
    // `berth plan`: empty, but for two things deploy does on purpose: it carries the services'
    // `io.berth.release` labels over (plan shows them as changes), and it keeps the secrets and
    // configs of the release before the live one (plan prunes them; checked below).
    let mut kept: Vec<String> = Vec::new();
    let o = berth(dir, stack, &["plan", "--detailed-exitcode"]);
    match o.status.code() {
        Some(0) => {}
        Some(10) => {
            let o = berth(dir, stack, &["plan", "--json"]);
            let plan: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| format!("plan --json: {e}"))?;
            for a in plan["actions"].as_array().into_iter().flatten() {
                let only_label = a["action"] == "update-service"
                    && a["changes"]
                        .as_array()
                        .is_some_and(|c| c.iter().all(|c| c["path"] == "Labels[\"io.berth.release\"]"));
                if a["action"] == "remove-secret" || a["action"] == "remove-config" {
                    kept.push(a["name"].as_str().unwrap_or_default().to_string());
                } else if !only_label {
                    return Err(format!("berth plan is not empty: {a}"));
                }
            }
        }
        c => return Err(format!("berth plan exited {c:?}: {}", text(&o.stderr))),
    }
    // Every service runs its desired number of tasks, all on the current spec.
    for (svc, replicas) in state.services() {
        let name = format!("{stack}_{svc}");
        let spec = docker_ok(&["service", "inspect", &name, "--format", "{{json .Spec.TaskTemplate.ContainerSpec}}"]);
        let spec: serde_json::Value = serde_json::from_str(spec.trim()).unwrap();
        // berth pins a local-only image by ID and keeps its name in `io.berth.image`.
        let image_ok = spec["Image"] == state.image || spec["Labels"]["io.berth.image"] == state.image;
        if !image_ok || !spec["Env"].to_string().contains(&format!("APP_ENV={}", state.env)) {
            return Err(format!("service {name} is not on the new spec: {spec}"));
        }
        let ids = docker_ok(&["service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running", &name]);
        let ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
        if ids.len() != replicas {
            return Err(format!("service {name}: {} tasks desired running, want {replicas}", ids.len()));
        }
        for id in ids {
            let t = docker_ok(&["inspect", id, "--format", "{{.Status.State}} {{json .Spec.ContainerSpec}}"]);
            let (st, cs) = t.trim().split_once(' ').unwrap();
            let cs: serde_json::Value = serde_json::from_str(cs).unwrap();
            if st != "running" || without_empty(&cs) != without_empty(&spec) {
                return Err(format!("service {name}: task {id} is {st} on {cs}, the service's spec is {spec}"));
            }
        }
    }
    let (extra_exists, _) = docker(&["service", "inspect", &format!("{stack}_extra"), "--format", "{{.ID}}"]);
    if !state.extra && extra_exists {
        return Err(format!("service {stack}_extra should be gone"));
    }
    // The release command ran for this state.
    if !output.contains(&format!("worker | migrated {}", state.env)) {
        return Err(format!("the release command did not run for {}", state.env));
    }
    // No leftover one-off runs.
    let runs = docker_ok(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=io.berth.stack={stack}"),
        "--filter",
        "label=io.berth.kind=run",
    ]);
    if !runs.trim().is_empty() {
        return Err(format!("leftover run services: {}", runs.trim()));
    }
    // Releases: exactly one current, marked ok.
    let o = berth(dir, stack, &["releases", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| format!("releases --json: {e}"))?;
    let list = list.as_array().cloned().unwrap_or_default();
    let current: Vec<&serde_json::Value> = list.iter().filter(|r| r["current"] == true).collect();
    let [cur] = current[..] else { return Err(format!("not exactly one current release: {list:?}")) };
    if cur["status"] != "ok" {
        return Err(format!("the current release is not marked ok: {cur}"));
    }
    let live = cur["number"].as_u64().unwrap();
    let before = list
        .iter()
        .filter(|r| r["status"] == "ok" && r["number"].as_u64().unwrap() < live)
        .filter_map(|r| r["number"].as_u64())
        .max();
    // Secrets and configs of the live release and the one before it all exist.
    let secrets = objects("secret", &format!("{stack}_"));
    let configs = objects("config", &format!("{stack}_"));
    let mut used = std::collections::BTreeSet::new();
    for n in std::iter::once(live).chain(before) {
        let rec = release_record(stack, n);
        for (kind, have) in [("secrets", &secrets), ("configs", &configs)] {
            for name in rec["desired"][kind].as_object().into_iter().flatten().map(|(k, _)| k) {
                if !have.contains(name) {
                    return Err(format!("{kind} {name} of release {n} was removed (live release {live})"));
                }
                used.insert(name.clone());
            }
        }
    }
    // What `berth plan` would prune is kept for the release before the live one, nothing else.
    if let Some(stray) = kept.iter().find(|k| !used.contains(*k)) {
        return Err(format!("{stray} is used by neither the live release {live} nor the one before ({before:?})"));
    }
    // Old versions are cleaned: at most the live one, the previous release's and one more.
    let tokens = secrets.iter().filter(|n| n.starts_with(&format!("{stack}_token_"))).count();
    let confs = configs.iter().filter(|n| n.starts_with(&format!("{stack}_appconf_"))).count();
    if tokens > 3 || confs > 3 {
        return Err(format!("secret/config versions pile up: {secrets:?} {configs:?}"));
    }
    Ok(())
}

/// Deploys `state` to completion (exit 0) and returns its output.
fn deploy_ok(dir: &Path, stack: &str, state: &State) -> String {
    state.write(dir);
    let o = berth(dir, stack, &["deploy", "--plain", "--timeout", "120"]);
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "deploy of {state:?} failed:\n{e}");
    e
}

struct Row {
    trial: usize,
    delay_ms: u64,
    phase: &'static str,
    redeploy: Duration,
    result: String,
}

fn table(seed: u64, full: Duration, rows: &[Row]) -> String {
    let mut t = format!(
        "seed {seed}, full deploy {:.1} s\ntrial  delay(ms)  phase reached        redeploy(s)  result\n",
        full.as_secs_f64()
    );
    for r in rows {
        t.push_str(&format!(
            "{:>5}  {:>9}  {:<19}  {:>11.1}  {}\n",
            r.trial,
            r.delay_ms,
            r.phase,
            r.redeploy.as_secs_f64(),
            r.result
        ));
    }
    t
}

#[test]
fn killing_deploy_at_random_points_then_redeploying_converges() {
    let _serial = lock();
    images::ensure();
    const STACK: &str = "t-crash-1";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    let trials: usize = std::env::var("BERTH_CRASH_TRIALS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("BERTH_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("crash trials: seed {seed} (replay with BERTH_CRASH_SEED={seed})");
    let mut rng = Rng(seed);

    // v1, then one measured change: the span a full deploy takes.
    let mut state = State::initial();
    let first = deploy_ok(dir.path(), STACK, &state);
    check_converged(dir.path(), STACK, &state, &first).unwrap();
    state = state.trial(1_000);
    let start = Instant::now();
    let out = deploy_ok(dir.path(), STACK, &state);
    let full = start.elapsed();
    check_converged(dir.path(), STACK, &state, &out).unwrap();
    println!("full deploy of a change: {:.1} s", full.as_secs_f64());

    // `trials` kills: a deploy that finished before its kill time does not count (at most
    // 2 × trials deploys in all).
    let mut rows: Vec<Row> = Vec::new();
    for k in 1..=2 * trials {
        if rows.iter().filter(|r| r.phase != "finished").count() >= trials {
            break;
        }
        state = state.trial(k);
        state.write(dir.path());
        let delay = Duration::from_millis(rng.below(full.as_millis().max(1) as u64));
        let (killed_out, finished) = deploy_and_kill(dir.path(), STACK, delay);
        let phase = if finished { "finished" } else { phase_reached(&killed_out) };
        let start = Instant::now();
        let o = berth(dir.path(), STACK, &["deploy", "--plain", "--timeout", "120"]);
        let redeploy = start.elapsed();
        let e = text(&o.stderr);
        let result = if o.status.code() != Some(0) {
            Err(format!("redeploy exited {:?}:\n{e}", o.status.code()))
        } else {
            check_converged(dir.path(), STACK, &state, &format!("{killed_out}{e}"))
        };
        let row = Row {
            trial: k,
            delay_ms: delay.as_millis() as u64,
            phase,
            redeploy,
            result: match &result {
                Ok(()) => "ok".into(),
                Err(_) => "FAILED".into(),
            },
        };
        println!("{}", table(seed, full, std::slice::from_ref(&row)).lines().last().unwrap());
        rows.push(row);
        if let Err(why) = result {
            panic!(
                "trial {k} (seed {seed}, delay {} ms, state {state:?}) did not converge: {why}\n\
                 killed run:\n{killed_out}\nredeploy:\n{e}\n{}",
                delay.as_millis(),
                table(seed, full, &rows)
            );
        }
    }
    println!("{}", table(seed, full, &rows));
    let kills = rows.iter().filter(|r| r.phase != "finished").count();
    assert!(kills >= trials, "only {kills} of {} deploys were killed before they finished", rows.len());
    // The kills landed in different phases.
    let phases: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.phase).collect();
    println!("{kills} kills in {} trials; phases reached: {phases:?}", rows.len());
    assert!(trials < 10 || phases.len() >= 3, "kills hit too few phases: {phases:?}");
}

/// Restores dockerd if a test stopped it, and waits for the swarm to be active.
struct DaemonGuard;

fn daemon_up() -> bool {
    docker(&["info", "--format", "{{.ServerVersion}}"]).0
}

fn swarm_active() -> bool {
    let (ok, out) = docker(&["info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"]);
    ok && out.trim() == "active true" && docker(&["node", "ls", "-q"]).0
}

/// Starts dockerd the way `scripts/host-setup.sh` does, detached from this process.
fn start_dockerd() {
    let status = Command::new("sh")
        .args(["-c", "setsid nohup dockerd >>/var/log/berth-dockerd.log 2>&1 </dev/null &"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("cannot start dockerd");
    assert!(status.success());
}

/// Waits until `docker info` answers and the swarm is active (at most `limit`).
fn wait_daemon(limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if swarm_active() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

/// Stops the running dockerd (by the PID in its pid file) and waits until it is gone.
fn stop_dockerd() {
    let pid = std::fs::read_to_string("/var/run/docker.pid").expect("dockerd pid file");
    let pid = pid.trim();
    assert!(!pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()), "pid file: {pid:?}");
    let ok = Command::new("kill").args(["-TERM", pid]).status().unwrap().success();
    assert!(ok, "kill -TERM {pid}");
    let proc = format!("/proc/{pid}");
    let start = Instant::now();
    while Path::new(&proc).exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!Path::new(&proc).exists(), "dockerd {pid} did not stop within 60 s");
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        if !daemon_up() {
            start_dockerd();
        }
        if !wait_daemon(Duration::from_secs(90)) {
            eprintln!("dockerd/swarm is not back after 90 s: see /var/log/berth-dockerd.log");
        }
    }
}

#[test]
fn restarting_dockerd_mid_deploy_fails_clearly_then_redeploy_converges() {
    let _serial = lock();
    images::ensure();
    const STACK: &str = "t-crash-2";
    let dir = tempfile::tempdir().unwrap();
    // Declared first, dropped last: the stack is removed after the daemon is back.
    let _daemon = DaemonGuard;
    let _guard = Cleanup::new(STACK);

    let mut state = State::initial();
    let out = deploy_ok(dir.path(), STACK, &state);
    check_converged(dir.path(), STACK, &state, &out).unwrap();

    // A change of everything: image, env, secret; the extra service is added.
    state = state.trial(4);
    state.image = images::V2;
    state.write(dir.path());
    let log = dir.path().join("deploy.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .current_dir(dir.path())
        .args(["-s", STACK, "deploy", "--plain", "--timeout", "120"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // In the middle: once services are being updated.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let l = std::fs::read_to_string(&log).unwrap_or_default();
        if l.contains("update service") || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let restart = Instant::now();
    stop_dockerd();
    start_dockerd();
    assert!(wait_daemon(Duration::from_secs(90)), "dockerd/swarm did not come back");
    let restart = restart.elapsed();

    // berth gave up with a clear error.
    let waited = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if waited.elapsed() > Duration::from_secs(150) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let e = std::fs::read_to_string(&log).unwrap_or_default();
    let code = status.and_then(|s| s.code());
    println!("dockerd restart took {:.1} s; berth exited {code:?}:\n{e}", restart.as_secs_f64());
    assert!(matches!(code, Some(3 | 4)), "berth should fail with exit 3 or 4 when dockerd goes away:\n{e}");
    assert!(e.contains("error: "), "no error message:\n{e}");

    // Then a deploy converges.
    let start = Instant::now();
    let o = berth(dir.path(), STACK, &["deploy", "--plain", "--timeout", "120"]);
    let redeploy = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "redeploy after the dockerd restart:\n{redeploy}");
    println!("redeploy after the restart: {:.1} s", start.elapsed().as_secs_f64());
    check_converged(dir.path(), STACK, &state, &format!("{e}{redeploy}")).unwrap();
}

#[test]
fn redeploy_with_a_file_healthcheck_is_up_to_date() {
    // Regression: the daemon returns a service's health check as `Healthcheck`, the API model
    // reads `HealthCheck`; the check was lost on observe, so every deploy updated `web` again.
    let _serial = lock();
    images::ensure();
    const STACK: &str = "t-crash-3";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    let state = State::initial();
    deploy_ok(dir.path(), STACK, &state);
    let o = berth(dir.path(), STACK, &["deploy", "--plain"]);
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("is up to date"), "the file's healthcheck looks changed after a deploy:\n{e}");
}

#[test]
fn unfinished_release_whose_tasks_died_meanwhile_converges_on_redeploy() {
    // Regression: a deploy killed while waiting leaves a release that the next deploy waits for
    // again; tasks of the new spec that died in between (here: killed containers, after a dockerd
    // restart: "No such container") counted as "tasks keep failing", so it never converged.
    let _serial = lock();
    images::ensure();
    const STACK: &str = "t-crash-4";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::initial();
    deploy_ok(dir.path(), STACK, &state);
    state = state.trial(1);
    state.write(dir.path());
    // Kill berth once it waits, and let Swarm finish the update on its own.
    let log = dir.path().join("deploy.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .current_dir(dir.path())
        .args(["-s", STACK, "deploy", "--plain", "--timeout", "120"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let waiting = |l: &str| l.rfind("update service").is_some_and(|i| l[i..].contains(" running"));
    while !waiting(&std::fs::read_to_string(&log).unwrap_or_default()) && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_out = std::fs::read_to_string(&log).unwrap_or_default();
    let web = format!("{STACK}_web");
    let start = Instant::now();
    loop {
        let (_, st) = docker(&["service", "inspect", &web, "--format", "{{.UpdateStatus.State}}"]);
        if st.trim() == "completed" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the update of {web} did not complete: {st}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Both web tasks of the new spec die.
    let ps = docker_ok(&["ps", "-q", "--filter", &format!("label=com.docker.swarm.service.name={web}")]);
    let ids: Vec<&str> = ps.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(ids.len(), 2, "web containers: {ps}");
    for id in ids {
        docker_ok(&["kill", id]);
    }
    let o = berth(dir.path(), STACK, &["deploy", "--plain", "--timeout", "120"]);
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("did not finish: waiting for it to converge"), "{e}");
    check_converged(dir.path(), STACK, &state, &format!("{killed_out}{e}")).unwrap();
}

#[test]
fn paused_update_of_an_unfinished_release_is_resumed_by_redeploy() {
    // Regression: when Swarm paused a release's rolling update (a new task failed, e.g. the
    // transient "unable to remount dir as readonly ... device or resource busy" of a secret mount
    // on dockerd 20.10) while berth was away, the next deploy found an empty plan and reported the
    // pause again forever; it now resumes the update.
    let _serial = lock();
    images::ensure();
    const STACK: &str = "t-crash-5";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/crash/paused.yaml"))
        .expect("paused fixture");
    let write = |image: &str, mount: &Path| {
        std::fs::create_dir_all(mount).unwrap();
        let text = fixture.replace("@IMAGE@", image).replace("@DIR@", mount.to_str().unwrap());
        std::fs::write(dir.path().join("compose.yaml"), text).unwrap();
    };
    let (good, bad) = (dir.path().join("tmp1"), dir.path().join("tmp2"));
    write(images::V1, &good);
    let o = berth(dir.path(), STACK, &["deploy", "--plain", "--timeout", "60"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // v2's tasks are unhealthy: Swarm pauses the update, berth leaves it (no rollback).
    write(images::V2, &bad);
    std::fs::write(bad.join("unhealthy"), "").unwrap();
    let o = berth(dir.path(), STACK, &["deploy", "--plain", "--timeout", "60", "--no-rollback"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    let web = format!("{STACK}_web");
    let start = Instant::now();
    while docker_ok(&["service", "inspect", &web, "--format", "{{.UpdateStatus.State}}"]).trim() != "paused" {
        assert!(start.elapsed() < Duration::from_secs(30), "the update of {web} did not pause");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The cause goes away; deploying the same files again finishes the release.
    std::fs::remove_file(bad.join("unhealthy")).unwrap();
    let o = berth(dir.path(), STACK, &["deploy", "--plain", "--timeout", "60"]);
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("resuming the update Swarm paused: t-crash-5_web"), "{e}");
    let ps = docker_ok(&[
        "service",
        "ps",
        &web,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Image}} {{.CurrentState}}",
    ]);
    // The task runs v2, named or pinned by its ID (berth pins local-only images).
    let v2_id = docker_ok(&["image", "inspect", images::V2, "--format", "{{.Id}}"]).trim().to_string();
    assert!(
        ps.lines().count() == 1
            && (ps.starts_with(&format!("{} Running", images::V2)) || ps.starts_with(&format!("{v2_id} Running"))),
        "{ps}"
    );
    let o = berth(dir.path(), STACK, &["deploy", "--plain"]);
    assert!(text(&o.stderr).contains("is up to date"), "{}", text(&o.stderr));
}
