//! Many machines: the `berth` binary takes five test hosts to a swarm over SSH and runs the
//! example app (examples/blog: Django + gunicorn, Celery worker and beat, Postgres, Redis, the Vue
//! front end, berth's edge) across them, under load, through the trials of issue #7.
//!
//! `tests/lab/lab.sh` starts five hosts on this machine (a network namespace each, with its own
//! dockerd and sshd; no swarm). The test then drives berth like an operator would:
//! `cluster up` (twice: the second run changes nothing), an unknown host key refused, `deploy` of
//! the blog (Postgres pinned to its labelled node, with the warning), `node drain` + `node rm` of a
//! worker, a crashed worker (Swarm notices, tasks move), the worker back + `node rebalance`, a
//! partitioned manager healed, `node tidy`, and a crashed leader with a load generator running
//! from before the crash until a new release deployed after it is served. The load generator
//! resolves the site like a DNS name with one A record per manager (the edge runs on the
//! managers): it takes the addresses in turn and tries the next one when an address does not
//! answer (connection refused or timed out), as browsers and HTTP clients do; an HTTP error
//! answer is a failed request. It prints a table of the timings and failed requests.
//! One test: the hosts are shared state.
//!
//! The lab hosts reach no network but each other, so the blog's two images are built here (from
//! the example's Dockerfiles on the local base images of `examples/blog/base-images.sh`) and
//! loaded into the hosts by lab.sh. The copy of the example the test deploys differs from
//! examples/blog in what several machines need (see docs/cluster.md): prebuilt images instead of
//! `build:`, and the backend without its `static`/`media` volumes (a local volume lives on one node,
//! so its 4 replicas could not spread over the nodes otherwise).

#[path = "common/run.rs"]
mod run;
use run::berth;

#[path = "common/blog.rs"]
mod blog;

#[path = "common/lab.rs"]
mod lab;
use lab::{Lab, ip};

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The site's name in the test (Host header): not `localhost`, so the edge serves plain HTTP.
const DOMAIN: &str = "blog.lab";
const BACKENDS: u64 = 4;

/// The blog's images, built from the example's Dockerfiles on the local base images; returns the
/// base images' variables (POSTGRES_IMAGE, ...).
fn blog_images() -> Vec<(String, String)> {
    let env = blog::base_images();
    let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    let ex = blog::repo().join("examples/blog");
    for (tag, ctx, args) in [
        ("cblog/backend:lab", "backend", vec![format!("BASE_IMAGE={}", var("PYTHON_BASE"))]),
        (
            "cblog/frontend:lab",
            "frontend",
            vec![format!("BASE_IMAGE={}", var("NODE_BASE")), format!("RUNTIME_IMAGE={}", var("DEBIAN_BASE"))],
        ),
    ] {
        let mut c = Command::new("docker");
        c.args(["build", "-q", "-t", tag]).env("DOCKER_BUILDKIT", "0");
        for a in &args {
            c.args(["--build-arg", a]);
        }
        let o = c.arg(ex.join(ctx)).output().expect("docker build");
        assert!(o.status.success(), "docker build {tag}: {}", String::from_utf8_lossy(&o.stderr));
    }
    env
}

/// A copy of examples/blog in `dir`, made fit for the lab (see the module doc), with the lab's
/// targets and a `.env` for release `version`.
fn blog_copy(dir: &Path, base: &[(String, String)]) {
    blog::copy_dir(&blog::repo().join("examples/blog"), dir);
    let file = dir.join("compose.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    // `build:` blocks go (the images are built already); the images are the ones built here.
    let mut out = Vec::new();
    let mut in_build = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if in_build && (indent > 4 || line.trim().is_empty()) {
            continue;
        }
        in_build = line == "    build:";
        if in_build {
            continue;
        }
        out.push(match line.trim() {
            "image: blog/backend" => "    image: cblog/backend:lab".to_string(),
            "image: blog/frontend" => "    image: cblog/frontend:lab".to_string(),
            _ => line.to_string(),
        });
    }
    let mut text = out.join("\n") + "\n";
    let volumes = "    volumes:\n      - static:/srv/static\n      - media:/srv/media\n";
    assert_eq!(text.matches(volumes).count(), 1, "the backend's volumes in examples/blog/compose.yaml");
    text = text.replacen(volumes, "", 1).replacen("      replicas: 2\n", &format!("      replicas: {BACKENDS}\n"), 1);
    assert!(!text.contains("build:") && text.contains("cblog/frontend:lab"), "{text}");
    assert!(text.trim_end().ends_with("spa: true }"), "x-berth is the file's last key: {text}");
    let hosts: Vec<String> = (1..=5).map(ip).collect();
    // Host 3 keeps the stack's data: Postgres (the pin the test checks), Redis, the Celery worker
    // (media) and the front end's publisher.
    let pins: Vec<String> = ["pgdata", "redisdata", "media", "frontend"]
        .iter()
        .map(|v| format!("io.berth.volume.blog_{v}: \"true\""))
        .collect();
    text += &format!(
        r#"  targets:
{lab}      labels: {{ {db}: {{ db: "true", {pins} }} }}
    stranger:
      ssh: [{first}]
      key: /var/lib/berth-lab/ssh/id_ed25519
      known_hosts: {dir}/empty_known_hosts
      socket: /run/berth-lab/{{host}}/docker.sock
"#,
        lab = lab::target_yaml(&hosts, 3),
        db = ip(3),
        pins = pins.join(", "),
        first = ip(1),
        dir = dir.display(),
    );
    std::fs::write(&file, text).unwrap();
    std::fs::write(dir.join("empty_known_hosts"), "").unwrap();
    let mut env: Vec<String> = base.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend([
        format!("BLOG_DOMAIN={DOMAIN}"),
        "BLOG_HTTP_PORT=8081".into(),
        "BLOG_HTTPS_PORT=0".into(),
        "BLOG_ADMIN_PASSWORD=cblog-lab-admin".into(),
    ]);
    std::fs::write(dir.join(".env"), env.join("\n") + "\n").unwrap();
    set_version(dir, "v1");
}

/// APP_VERSION of the next deploy (the `.env` beside the compose file).
fn set_version(dir: &Path, version: &str) {
    let env = std::fs::read_to_string(dir.join(".env")).unwrap();
    let mut lines: Vec<String> = env.lines().filter(|l| !l.starts_with("APP_VERSION=")).map(String::from).collect();
    lines.push(format!("APP_VERSION={version}"));
    std::fs::write(dir.join(".env"), lines.join("\n") + "\n").unwrap();
}

fn nodes(dir: &Path) -> Vec<serde_json::Value> {
    let r = berth(dir, &["-t", "lab", "node", "ls", "--json"]);
    assert_eq!(r.code, 0, "node ls: {}", r.stderr);
    serde_json::from_str(&r.stdout).expect("node ls json")
}

/// (running, desired) of the stack's service `svc`.
fn running(dir: &Path, svc: &str) -> Option<(u64, u64)> {
    let r = berth(dir, &["-t", "lab", "status", "--json"]);
    if r.code != 0 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&r.stdout).ok()?;
    let s = v["services"].as_array()?.iter().find(|s| s["name"] == svc)?.clone();
    Some((s["running"].as_u64()?, s["desired"].as_u64()?))
}

fn backends_up(dir: &Path) -> bool {
    running(dir, "backend") == Some((BACKENDS, BACKENDS))
}

/// Waits until every backend runs; on a timeout, fails with what `status` and `ps` say.
fn wait_backends(dir: &Path, what: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    while !backends_up(dir) {
        if start.elapsed() > timeout {
            let st = berth(dir, &["-t", "lab", "status"]);
            let ps = berth(dir, &["-t", "lab", "ps", "backend"]);
            let ls = berth(dir, &["-t", "lab", "node", "ls"]);
            panic!(
                "{what}: not within {timeout:?}\n{}{}\n{}{}\n{}{}",
                st.stdout, st.stderr, ps.stdout, ps.stderr, ls.stdout, ls.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    start.elapsed()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    start.elapsed()
}

/// The timings table; each row is also printed when it is added (a failure shows the steps before it).
struct Table(Vec<(String, String)>);

impl Table {
    fn push(&mut self, row: (String, String)) {
        eprintln!("[cluster test] {}: {}", row.0, row.1);
        self.0.push(row);
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[test]
fn blog_across_five_hosts_through_drain_crashes_partition_and_leader_loss_under_load() {
    lab::require_root();
    let t0 = Instant::now();
    let base = blog_images();
    let var = |k: &str| base.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    let images = t0.elapsed();
    let start = Instant::now();
    let db_images = format!("cblog/frontend:lab {} {}", var("POSTGRES_IMAGE"), var("REDIS_IMAGE"));
    let lab = Lab::up(5, "cblog/backend:lab", &[(3, &db_images)]);
    let lab_start = start.elapsed();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("blog");
    let dir = dir.as_path();
    blog_copy(dir, &base);
    // The edge's image is built from berth's executable and copied to every host over SSH: from
    // the debug build without its debug info (72 MB instead of 730 MB), the same code.
    let edge_bin = lab::edge_binary(tmp.path());
    // SAFETY: no other thread runs yet; every berth the test starts inherits it.
    unsafe { std::env::set_var("BERTH_EDGE_BINARY", &edge_bin) };
    let mut table = Table(vec![
        ("blog images built here (cached: base images, layers)".into(), secs(images)),
        ("lab: 5 hosts started, images loaded".into(), secs(lab_start)),
    ]);

    // cluster up, twice.
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "cluster", "up"]);
    assert_eq!(r.code, 0, "cluster up: {}", r.stderr);
    assert!(r.stderr.contains("initialised the swarm"), "{}", r.stderr);
    table.push(("cluster up, 5 fresh hosts".into(), secs(start.elapsed())));
    let n = nodes(dir);
    assert_eq!(n.len(), 5, "{n:?}");
    assert_eq!(n.iter().filter(|n| n["role"] == "manager").count(), 3, "{n:?}");
    assert!(n.iter().any(|n| n["host"] == ip(3) && n["labels"]["db"] == "true"), "{n:?}");
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "cluster", "up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("is up to date") && !r.stderr.contains("changed:"), "{}", r.stderr);
    table.push(("cluster up again (no change)".into(), secs(start.elapsed())));

    // A host whose key is not known is refused.
    let r = berth(dir, &["-t", "stranger", "status"]);
    assert_eq!(r.code, 3, "{} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("is not in") && r.stderr.contains("trust_new_hosts"), "{}", r.stderr);

    // Deploy the blog over SSH: release commands, secrets, the edge on the managers.
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "deploy", "--plain", "--timeout", "300"]);
    assert_eq!(r.code, 0, "deploy: {}", r.stderr);
    assert!(r.stderr.contains("release 1 is live"), "{}", r.stderr);
    eprintln!("[cluster test] deploy:\n{}", r.stderr);
    table.push((
        format!("deploy of the blog (6 services + the edge, {BACKENDS} backends) over 5 nodes"),
        secs(start.elapsed()),
    ));
    // Postgres keeps its data on the labelled node, and berth says so.
    assert!(
        r.stderr.contains("warning: blog_db keeps its data in volume blog_pgdata on node blab-n3"),
        "the pin warning: {}",
        r.stderr
    );
    let ps = berth(dir, &["-t", "lab", "ps", "db", "--json"]);
    assert_eq!(ps.code, 0, "{}", ps.stderr);
    assert!(ps.stdout.contains("\"blab-n3\""), "db must run on blab-n3: {}", ps.stdout);
    wait_backends(dir, "all backends running", Duration::from_secs(60));

    // The edge answers on every manager: the API through Django and Postgres. (Right after the
    // first release the edges may not have seen a healthy backend yet: they find the tasks by DNS
    // and health-check them.)
    let served = wait_for("the API through the edge on every manager", Duration::from_secs(30), || {
        (1..=3).all(|i| {
            let (code, body) = get(&ip(i), "/api/health");
            code == 200 && body.contains("\"ok\": true") && body.contains("\"version\": \"v1\"")
        })
    });
    table.push(("first release: every edge serves the API after".into(), secs(served)));
    // The Celery worker (on the data node) and beat run: beat's runs are counted in Postgres.
    wait_for("a beat run", Duration::from_secs(60), || {
        let (code, body) = get(&ip(1), "/api/stats");
        code == 200 && !body.contains("\"beat_runs\": 0")
    });
    let managers: Vec<String> = (1..=3).map(ip).collect();

    // Drain and remove a worker, under load through the edge.
    assert!(nodes(dir).iter().any(|n| n["host"] == ip(5) && n["tasks"].as_u64() > Some(0)), "{:?}", nodes(dir));
    let load = Load::start(&managers);
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "node", "drain", &ip(5)]);
    assert_eq!(r.code, 0, "drain: {}", r.stderr);
    table.push(("node drain (worker)".into(), secs(start.elapsed())));
    let n5 = nodes(dir).into_iter().find(|n| n["host"] == ip(5)).unwrap();
    assert_eq!((n5["availability"].as_str(), n5["tasks"].as_u64()), (Some("drain"), Some(0)), "{n5:?}");
    assert!(backends_up(dir));
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "node", "rm", &ip(5)]);
    assert_eq!(r.code, 0, "rm: {}", r.stderr);
    table.push(("node rm (drained worker)".into(), secs(start.elapsed())));
    assert!(nodes(dir).iter().all(|n| n["host"] != ip(5)));
    let s = load.stop();
    table.push(("drain + rm: requests ok / failed".into(), s.counts()));
    assert_eq!(s.failed, 0, "requests failed while a worker was drained and removed: {s:?}");

    // A worker crashes: Swarm marks it down, its tasks come back elsewhere.
    let has_tasks = nodes(dir).iter().any(|n| n["host"] == ip(4) && n["tasks"].as_u64() > Some(0));
    let load = Load::start(&managers);
    let start = Instant::now();
    lab.kill(4);
    let down = wait_for("crashed worker marked down", Duration::from_secs(60), || {
        nodes(dir).iter().any(|n| n["host"] == ip(4) && n["state"] == "down")
    });
    let back = start.elapsed() + wait_backends(dir, "backends back after a worker crash", Duration::from_secs(90));
    let s = load.stop();
    table.push(("worker crash: node down after".into(), secs(down)));
    table.push((
        format!(
            "worker crash: {BACKENDS}/{BACKENDS} backends running again after{}",
            if has_tasks { "" } else { " (it had no task)" }
        ),
        secs(back),
    ));
    table.push(("worker crash: requests ok / failed".into(), s.counts()));

    // It comes back: Swarm leaves it empty; berth rebalances without failing a request.
    lab.run("start", 4);
    wait_for("restarted worker ready", Duration::from_secs(60), || {
        nodes(dir).iter().any(|n| n["host"] == ip(4) && n["state"] == "ready")
    });
    let load = Load::start(&managers);
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "node", "rebalance"]);
    assert_eq!(r.code, 0, "rebalance: {}", r.stderr);
    let s = load.stop();
    assert!(r.stderr.contains("rebalanced: blog_backend"), "{}", r.stderr);
    assert!(nodes(dir).iter().any(|n| n["host"] == ip(4) && n["tasks"].as_u64() > Some(0)), "{:?}", nodes(dir));
    table.push(("rebalance after the worker returned".into(), secs(start.elapsed())));
    table.push(("rebalance: requests ok / failed".into(), s.counts()));
    assert_eq!(s.failed, 0, "requests failed during the rebalance: {s:?}");
    let spread: Vec<String> =
        nodes(dir).iter().map(|n| format!("{}:{}", n["hostname"].as_str().unwrap_or(""), n["tasks"])).collect();
    let r = berth(dir, &["-t", "lab", "node", "rebalance"]);
    assert!(r.code == 0 && r.stderr.contains("is balanced"), "{} (tasks per node: {spread:?})", r.stderr);

    // A manager is cut off the network and comes back: no split brain, the stack converges.
    let load = Load::start(&managers);
    lab.run("cut", 2);
    let cut_down = wait_for("partitioned manager seen down", Duration::from_secs(60), || {
        nodes(dir).iter().any(|n| n["host"] == ip(2) && n["state"] == "down")
    });
    lab.run("heal", 2);
    let healed = wait_for("healed manager ready, one leader", Duration::from_secs(90), || {
        let n = nodes(dir);
        n.iter().any(|n| n["host"] == ip(2) && n["state"] == "ready" && n["manager"] == "reachable")
            && n.iter().filter(|n| n["manager"] == "leader").count() == 1
    });
    wait_backends(dir, "stack converged after the partition", Duration::from_secs(90));
    let s = load.stop();
    table.push(("partition of a manager: seen down after".into(), secs(cut_down)));
    table.push(("partition healed: back, one leader after".into(), secs(healed)));
    table.push(("partition + heal: requests ok / failed".into(), s.counts()));

    // The worker crashes again and stays down: tidy removes it.
    lab.kill(4);
    wait_for("crashed worker marked down again", Duration::from_secs(60), || {
        nodes(dir).iter().any(|n| n["host"] == ip(4) && n["state"] == "down")
    });
    let r = berth(dir, &["-t", "lab", "node", "tidy"]);
    assert_eq!(r.code, 0, "tidy: {}", r.stderr);
    assert!(r.stderr.contains("removed blab-n4"), "{}", r.stderr);
    assert_eq!(nodes(dir).len(), 3);
    wait_backends(dir, "backends back after tidy", Duration::from_secs(90));

    // The leader crashes, under load from before the crash until release v2, deployed after it, is
    // served: a new leader is elected, berth reaches it through the next manager and deploys.
    let leader = nodes(dir).into_iter().find(|n| n["manager"] == "leader").unwrap();
    let leader_ip = leader["host"].as_str().unwrap().to_string();
    let idx = (1..=5).find(|i| ip(*i) == leader_ip).unwrap();
    assert_ne!(idx, 3, "the leader is the data node: its crash would take Postgres with it");
    let load = Load::start(&managers);
    std::thread::sleep(Duration::from_secs(1));
    let start = Instant::now();
    lab.kill(idx);
    let elected = wait_for("a new leader", Duration::from_secs(90), || {
        let r = berth(dir, &["-t", "lab", "node", "ls", "--json"]);
        r.code == 0
            && serde_json::from_str::<Vec<serde_json::Value>>(&r.stdout)
                .is_ok_and(|n| n.iter().any(|n| n["manager"] == "leader" && n["host"] != leader_ip.as_str()))
    });
    table.push(("leader crash: new leader, berth reaches it after".into(), secs(elected)));
    set_version(dir, "v2");
    let r = berth(dir, &["-t", "lab", "deploy", "--plain", "--timeout", "300"]);
    if r.code != 0 {
        // The whole story, for a failure that happens once in a while.
        let ls = berth(dir, &["-t", "lab", "node", "ls"]);
        let st = berth(dir, &["-t", "lab", "status"]);
        panic!(
            "deploy after leader loss failed ({:.1} s after the crash), exit {}:\n{}\n{}\nnode ls:\n{}{}\nstatus:\n{}{}",
            start.elapsed().as_secs_f64(),
            r.code,
            r.stdout,
            r.stderr,
            ls.stdout,
            ls.stderr,
            st.stdout,
            st.stderr
        );
    }
    let deployed = start.elapsed();
    eprintln!("[cluster test] deploy after the leader crash:\n{}", r.stderr);
    if let Some(l) = r.stderr.lines().find(|l| l.contains("for the swarm's nodes to report")) {
        table.push(("leader crash: the deploy first".into(), l.split("] ").last().unwrap_or(l).to_string()));
    }
    let v2 = start.elapsed()
        + wait_for("v2 served through the edge", Duration::from_secs(60), || load.seen_v2.load(Ordering::Relaxed));
    std::thread::sleep(Duration::from_secs(2));
    let s = load.stop();
    table.push(("leader crash: deploy v2 done after".into(), secs(deployed)));
    table.push(("leader crash: v2 served after".into(), secs(v2)));
    table.push(("leader crash → v2 served: requests ok / failed".into(), s.counts()));
    table.push((
        "leader crash: requests whose first address was the dead edge (retried on the next)".into(),
        s.retried.to_string(),
    ));
    assert!(backends_up(dir), "{:?}", running(dir, "backend"));
    assert!(s.v1 > 0 && s.v2 > 0, "{s:?}");
    assert_eq!(s.failed, 0, "requests failed through the leader crash and the v2 release: {s:?}");

    eprintln!("\n| step | time / requests |\n|---|---|");
    for (k, v) in &table.0 {
        eprintln!("| {k} | {v} |");
    }
    drop(lab);
}

/// One plain HTTP/1.1 GET of `path` to the edge on `addr:8081` (Host: the site): status and
/// body; status 0 when the address does not answer (refused, timed out, closed).
fn get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) =
        std::net::TcpStream::connect_timeout(&format!("{addr}:8081").parse().unwrap(), Duration::from_secs(1))
    else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return (0, String::new()) };
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, body.to_string())
}

/// What a load run saw.
#[derive(Debug, Default)]
struct Stats {
    ok: u64,
    failed: u64,
    /// Requests answered by another address after the first did not answer.
    retried: u64,
    v1: u64,
    v2: u64,
    /// The first few failures: address, status, body.
    failures: Vec<String>,
}

impl Stats {
    fn counts(&self) -> String {
        format!("{} / {}", self.ok, self.failed)
    }
}

/// GET /api/health in a loop from a thread, like a client of a name with one A record per
/// address: each request starts at the next address in turn and goes on to the following one
/// when an address does not answer. A request counts as ok when some address answered 200 with
/// `"ok": true` (the backend reached Postgres); any other answer is a failure.
struct Load {
    stop: Arc<AtomicBool>,
    seen_v2: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Stats>,
}

impl Load {
    fn start(addrs: &[String]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen_v2 = Arc::new(AtomicBool::new(false));
        let (flag, v2_flag, addrs) = (stop.clone(), seen_v2.clone(), addrs.to_vec());
        let handle = std::thread::spawn(move || {
            let mut s = Stats::default();
            let mut next = 0;
            while !flag.load(Ordering::Relaxed) {
                next += 1;
                let mut answer = (0, String::new(), String::new());
                for k in 0..addrs.len() {
                    let addr = &addrs[(next + k) % addrs.len()];
                    let (code, body) = get(addr, "/api/health");
                    answer = (code, body, addr.clone());
                    if code != 0 {
                        s.retried += u64::from(k > 0);
                        break;
                    }
                }
                match answer {
                    (200, b, _) if b.contains("\"ok\": true") => {
                        s.ok += 1;
                        if b.contains("\"version\": \"v2\"") {
                            s.v2 += 1;
                            v2_flag.store(true, Ordering::Relaxed);
                        } else {
                            s.v1 += 1;
                        }
                    }
                    (code, body, addr) => {
                        s.failed += 1;
                        if s.failures.len() < 5 {
                            s.failures.push(format!("{addr}: {code} {}", body.chars().take(200).collect::<String>()));
                        }
                    }
                }
            }
            s
        });
        Load { stop, seen_v2, handle }
    }
    fn stop(self) -> Stats {
        self.stop.store(true, Ordering::Relaxed);
        let s = self.handle.join().unwrap();
        if s.failed > 0 {
            eprintln!("[cluster test] {} failed requests, the first: {:#?}", s.failed, s.failures);
        }
        s
    }
}
