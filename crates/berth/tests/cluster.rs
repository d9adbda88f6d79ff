//! Many machines: the `berth` binary against a swarm of test hosts it builds itself over SSH.
//!
//! `tests/lab/lab.sh` starts five hosts on this machine (a network namespace each, with its own
//! dockerd and sshd; no swarm). The test then drives berth like an operator would:
//! `cluster up` (twice: the second run changes nothing), `deploy`/`status` over SSH, an unknown
//! host key refused, `node drain` + `node rm` of a worker, a crashed worker (Swarm notices, tasks
//! move, `node tidy` removes it), and a crashed leader (berth reaches the next manager once a new
//! leader is elected). It prints a table of the timings. One test: the hosts are shared state.

#[path = "common/run.rs"]
mod run;
use run::berth;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh")
}

fn images_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/images/build.sh")
}

struct Lab;

impl Lab {
    fn up(n: usize) -> Lab {
        let ok = Command::new("bash").arg(images_script()).status().expect("build test images").success();
        assert!(ok, "test images");
        let out = Command::new("bash")
            .arg(lab_script())
            .args(["up", &n.to_string()])
            .env("LAB_IMAGES", "berth-test/app:v1 berth-test/app:v2")
            .output()
            .expect("run lab.sh");
        assert!(out.status.success(), "lab up: {}", String::from_utf8_lossy(&out.stderr));
        Lab
    }
    fn run(&self, verb: &str, i: usize) {
        let ok = Command::new("bash").arg(lab_script()).args([verb, &i.to_string()]).status().unwrap().success();
        assert!(ok, "lab {verb} {i}");
    }
    fn kill(&self, i: usize) {
        self.run("kill", i)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(lab_script()).arg("down").status();
    }
}

fn ip(i: usize) -> String {
    format!("192.168.87.{}", 10 + i)
}

fn compose(dir: &Path, image: &str) {
    let hosts: Vec<String> = (1..=5).map(ip).collect();
    let text = format!(
        r#"services:
  web:
    image: {image}
    deploy:
      replicas: 5
      update_config: {{delay: 0s, monitor: 1s}}
    x-berth:
      routes: [/]
      port: 8080
      health: /health
  db:
    image: berth-test/app:v1
    volumes: [data:/data]
volumes:
  data: {{}}
x-berth:
  name: labapp
  edge: {{http_port: 8081, https_port: 0}}
  targets:
    lab:
      ssh: [{hosts}]
      managers: 3
      heartbeat: 1s
      key: /var/lib/berth-lab/ssh/id_ed25519
      known_hosts: /var/lib/berth-lab/ssh/known_hosts
      socket: /run/berth-lab/{{host}}/docker.sock
      labels: {{ {db}: {{db: "true", io.berth.volume.labapp_data: "true"}} }}
    stranger:
      ssh: [{first}]
      key: /var/lib/berth-lab/ssh/id_ed25519
      known_hosts: {dir}/empty_known_hosts
      socket: /run/berth-lab/{{host}}/docker.sock
"#,
        hosts = hosts.join(", "),
        db = ip(3),
        first = ip(1),
        dir = dir.display(),
    );
    std::fs::write(dir.join("compose.yaml"), text).unwrap();
    std::fs::write(dir.join("empty_known_hosts"), "").unwrap();
}

fn nodes(dir: &Path) -> Vec<serde_json::Value> {
    let r = berth(dir, &["-t", "lab", "node", "ls", "--json"]);
    assert_eq!(r.code, 0, "node ls: {}", r.stderr);
    serde_json::from_str(&r.stdout).expect("node ls json")
}

fn running_web(dir: &Path) -> Option<(u64, u64)> {
    let r = berth(dir, &["-t", "lab", "status", "--json"]);
    if r.code != 0 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&r.stdout).ok()?;
    let s = v["services"].as_array()?.iter().find(|s| s["name"].as_str().is_some_and(|n| n.ends_with("web")))?.clone();
    Some((s["running"].as_u64()?, s["desired"].as_u64()?))
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
fn cluster_up_deploy_drain_remove_and_survive_crashed_nodes() {
    if unsafe { libc_geteuid() } != 0 {
        panic!("the many-machine test needs root (network namespaces); CI runs as root");
    }
    let t0 = Instant::now();
    let lab = Lab::up(5);
    let lab_start = t0.elapsed();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    compose(dir, "berth-test/app:v1");
    let mut table: Vec<(String, String)> =
        vec![("lab: 5 hosts started".into(), format!("{:.1} s", lab_start.as_secs_f64()))];

    // cluster up, twice.
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "cluster", "up"]);
    assert_eq!(r.code, 0, "cluster up: {}", r.stderr);
    assert!(r.stderr.contains("initialised the swarm"), "{}", r.stderr);
    table.push(("cluster up, 5 fresh hosts".into(), format!("{:.1} s", start.elapsed().as_secs_f64())));
    let n = nodes(dir);
    assert_eq!(n.len(), 5, "{n:?}");
    assert_eq!(n.iter().filter(|n| n["role"] == "manager").count(), 3, "{n:?}");
    assert!(n.iter().any(|n| n["host"] == ip(3) && n["labels"]["db"] == "true"), "{n:?}");
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "cluster", "up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("is up to date") && !r.stderr.contains("changed:"), "{}", r.stderr);
    table.push(("cluster up again (no change)".into(), format!("{:.1} s", start.elapsed().as_secs_f64())));

    // A host whose key is not known is refused.
    let r = berth(dir, &["-t", "stranger", "status"]);
    assert_eq!(r.code, 3, "{} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("is not in") && r.stderr.contains("trust_new_hosts"), "{}", r.stderr);

    // Deploy over SSH.
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "deploy", "--plain"]);
    assert_eq!(r.code, 0, "deploy: {}", r.stderr);
    table.push(("deploy (5 web replicas + db over 5 nodes)".into(), format!("{:.1} s", start.elapsed().as_secs_f64())));
    assert_eq!(running_web(dir), Some((5, 5)));
    // The database's volume is pinned to the labelled node: its task runs there.
    let ps = berth(dir, &["-t", "lab", "ps", "db", "--json"]);
    assert_eq!(ps.code, 0, "{}", ps.stderr);
    assert!(ps.stdout.contains("\"blab-n3\""), "db must run on blab-n3: {}", ps.stdout);

    // The edge answers on every manager and reaches tasks on every node.
    for i in 1..=3 {
        let (code, body) = get(&ip(i));
        assert_eq!((code, body.as_str()), (200, "hello from v1"), "edge on {}", ip(i));
    }

    // Drain and remove a worker (it runs a web task), under load through the edge.
    assert!(nodes(dir).iter().any(|n| n["host"] == ip(5) && n["tasks"].as_u64() > Some(0)), "{:?}", nodes(dir));
    let load = Load::start(&ip(1));
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "node", "drain", &ip(5)]);
    assert_eq!(r.code, 0, "drain: {}", r.stderr);
    table.push(("node drain (worker)".into(), format!("{:.1} s", start.elapsed().as_secs_f64())));
    let n5 = nodes(dir).into_iter().find(|n| n["host"] == ip(5)).unwrap();
    assert_eq!((n5["availability"].as_str(), n5["tasks"].as_u64()), (Some("drain"), Some(0)), "{n5:?}");
    assert_eq!(running_web(dir), Some((5, 5)));
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "node", "rm", &ip(5)]);
    assert_eq!(r.code, 0, "rm: {}", r.stderr);
    table.push(("node rm (drained worker)".into(), format!("{:.1} s", start.elapsed().as_secs_f64())));
    assert!(nodes(dir).iter().all(|n| n["host"] != ip(5)));
    let (ok, failed) = load.stop();
    table.push(("drain + rm: requests through the edge ok / failed".into(), format!("{ok} / {failed}")));
    assert_eq!(failed, 0, "requests failed while a worker was drained and removed");

    // A worker crashes: Swarm marks it down, its tasks come back elsewhere, tidy removes it.
    let has_tasks = nodes(dir).iter().any(|n| n["host"] == ip(4) && n["tasks"].as_u64() > Some(0));
    let load = Load::start(&ip(1));
    let start = Instant::now();
    lab.kill(4);
    let down = wait_for("crashed worker marked down", Duration::from_secs(60), || {
        nodes(dir).iter().any(|n| n["host"] == ip(4) && n["state"] == "down")
    });
    let back = start.elapsed()
        + wait_for("replicas back after a worker crash", Duration::from_secs(90), || running_web(dir) == Some((5, 5)));
    table.push(("worker crash: node down after".into(), format!("{:.1} s", down.as_secs_f64())));
    table.push((
        format!("worker crash: 5/5 running again after{}", if has_tasks { "" } else { " (it had no task)" }),
        format!("{:.1} s", back.as_secs_f64()),
    ));
    let (ok, failed) = load.stop();
    table.push(("worker crash: requests through the edge ok / failed".into(), format!("{ok} / {failed}")));

    // It comes back: Swarm leaves it empty; berth rebalances without failing a request.
    lab.run("start", 4);
    wait_for("restarted worker ready", Duration::from_secs(60), || {
        nodes(dir).iter().any(|n| n["host"] == ip(4) && n["state"] == "ready")
    });
    let load = Load::start(&ip(1));
    let start = Instant::now();
    let r = berth(dir, &["-t", "lab", "node", "rebalance"]);
    assert_eq!(r.code, 0, "rebalance: {}", r.stderr);
    let (ok, failed) = load.stop();
    assert!(r.stderr.contains("rebalanced: labapp_web"), "{}", r.stderr);
    assert!(nodes(dir).iter().any(|n| n["host"] == ip(4) && n["tasks"].as_u64() > Some(0)), "{:?}", nodes(dir));
    table.push(("rebalance after the worker returned".into(), format!("{:.1} s", start.elapsed().as_secs_f64())));
    table.push(("rebalance: requests through the edge ok / failed".into(), format!("{ok} / {failed}")));
    assert_eq!(failed, 0, "requests failed during the rebalance");
    let spread: Vec<String> =
        nodes(dir).iter().map(|n| format!("{}:{}", n["hostname"].as_str().unwrap_or(""), n["tasks"])).collect();
    let r = berth(dir, &["-t", "lab", "node", "rebalance"]);
    assert!(r.code == 0 && r.stderr.contains("is balanced"), "{} (tasks per node: {spread:?})", r.stderr);

    // A manager is cut off the network and comes back: no split brain, the stack converges.
    let start = Instant::now();
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
    table.push(("partition of a manager: seen down after".into(), format!("{:.1} s", cut_down.as_secs_f64())));
    table.push(("partition healed: back, one leader after".into(), format!("{:.1} s", healed.as_secs_f64())));
    let _ = start;
    wait_for("stack converged after the partition", Duration::from_secs(90), || running_web(dir) == Some((5, 5)));

    // The worker crashes again and stays down: tidy removes it.
    lab.kill(4);
    wait_for("crashed worker marked down again", Duration::from_secs(60), || {
        nodes(dir).iter().any(|n| n["host"] == ip(4) && n["state"] == "down")
    });
    let r = berth(dir, &["-t", "lab", "node", "tidy"]);
    assert_eq!(r.code, 0, "tidy: {}", r.stderr);
    assert!(r.stderr.contains("removed blab-n4"), "{}", r.stderr);
    assert_eq!(nodes(dir).len(), 3);

    // The leader crashes: berth reaches the next manager once a new leader is elected.
    let leader = nodes(dir).into_iter().find(|n| n["manager"] == "leader").unwrap();
    let leader_ip = leader["host"].as_str().unwrap().to_string();
    let idx = (1..=5).find(|i| ip(*i) == leader_ip).unwrap();
    let start = Instant::now();
    lab.kill(idx);
    let elected = wait_for("a new leader", Duration::from_secs(90), || {
        let r = berth(dir, &["-t", "lab", "node", "ls", "--json"]);
        r.code == 0
            && serde_json::from_str::<Vec<serde_json::Value>>(&r.stdout)
                .is_ok_and(|n| n.iter().any(|n| n["manager"] == "leader" && n["host"] != leader_ip.as_str()))
    });
    table.push(("leader crash: new leader, berth reaches it after".into(), format!("{:.1} s", elected.as_secs_f64())));
    compose(dir, "berth-test/app:v2");
    let r = berth(dir, &["-t", "lab", "deploy", "--plain"]);
    assert_eq!(r.code, 0, "deploy after leader loss: {}", r.stderr);
    table.push(("deploy v2 after the leader crash".into(), format!("{:.1} s", start.elapsed().as_secs_f64())));
    assert_eq!(running_web(dir), Some((5, 5)));

    eprintln!("\n| step | time |\n|---|---|");
    for (k, v) in &table {
        eprintln!("| {k} | {v} |");
    }
    drop(lab);
}

/// One plain HTTP/1.1 GET to the edge on `host:8081` (Host: localhost): status and body.
fn get(host: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) =
        std::net::TcpStream::connect_timeout(&format!("{host}:8081").parse().unwrap(), Duration::from_secs(2))
    else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return (0, String::new()) };
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, body.to_string())
}

/// Requests in a loop from a thread, each body checked.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<(u64, u64)>,
}

impl Load {
    fn start(host: &str) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let host = host.to_string();
        let handle = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match get(&host) {
                    (200, b) if b.starts_with("hello from v") => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        });
        Load { stop, handle }
    }
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
