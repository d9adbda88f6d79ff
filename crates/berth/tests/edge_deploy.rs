//! `berth deploy` runs the edge: routes and statics through the edge on 127.0.0.1, and not one
//! failed request under constant load (wrk with a Lua script that checks every response's status and
//! body) while a routed service rolls v1 → v2, while a task is killed, while a release whose tasks
//! never become healthy is rolled back, and while the edge itself is updated.
//!
//! Real dockerd in swarm mode; stacks `h2a-*`, host ports 18000-18999. The tests take turns (one
//! edge at a time on 2 cores).

#[path = "../../engine/tests/common/stack.rs"]
mod stack;
use stack::{Cleanup, docker};

#[path = "../../engine/tests/common/images.rs"]
mod images;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn berth(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth")).current_dir(dir).args(args).output().expect("cannot run berth")
}

fn deploy(dir: &Path, stack: &str) -> Output {
    berth(dir, &["-s", stack, "deploy", "--plain", "--timeout", "120"])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One HTTP/1.1 GET on a fresh connection: (status, body).
fn get(port: u16, host: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

/// Waits until `GET path` through the edge answers 200 with a body starting with `want`.
fn wait_for(port: u16, path: &str, want: &str, timeout: Duration) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        match get(port, "localhost", path) {
            Ok((200, body)) if body.starts_with(want) => return,
            Ok((s, b)) => last = format!("{s} {b}"),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("the edge on port {port} did not answer {path} with `{want}` within {timeout:?}; last: {last}");
}

fn compose(dir: &Path, image: &str, port: u16, extra_route: bool) {
    let extra = if extra_route { ", {path: /extra, strip_prefix: true}" } else { "" };
    let text = format!(
        "services:
  web:
    image: {image}
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      update_config: {{delay: 0s}}
    x-berth:
      routes: [/{extra}]
      port: 8080
      health: /health
x-berth:
  edge: {{http_port: {port}}}
"
    );
    std::fs::write(dir.join("compose.yaml"), text).unwrap();
}

/// wrk under constant load until stopped: 2 threads, 16 connections, every response checked.
struct Load {
    child: std::process::Child,
    counts: std::path::PathBuf,
}

const WRK_SCRIPT: &str = r#"
local threads = {}
local next_id = 1
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  bad = 0; v1 = 0; v2 = 0; n = 0
  out = args[1]
end
function response(status, headers, body)
  n = n + 1
  local b = body:sub(1, 13)
  if status == 200 and b == "hello from v1" then v1 = v1 + 1
  elseif status == 200 and b == "hello from v2" then v2 = v2 + 1
  else
    bad = bad + 1
    if bad <= 5 then io.stderr:write(string.format("BAD status=%d body=%q\n", status, body:sub(1, 100))) end
  end
  if n % 500 == 0 then
    local f = io.open(out .. "." .. id, "w"); f:write(tostring(n)); f:close()
  end
end
function done(summary, latency, requests)
  local b, a1, a2 = 0, 0, 0
  for _, t in ipairs(threads) do b = b + t:get("bad"); a1 = a1 + t:get("v1"); a2 = a2 + t:get("v2") end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d bad=%d v1=%d v2=%d connect=%d read=%d write=%d timeout=%d status=%d p99_us=%d\n",
    summary.requests, b, a1, a2, e.connect, e.read, e.write, e.timeout, e.status, latency:percentile(99)))
end
"#;

#[derive(Debug, Default)]
struct LoadResult {
    requests: u64,
    failed: u64,
    v1: u64,
    v2: u64,
    line: String,
}

impl Load {
    fn start(port: u16, dir: &Path) -> Load {
        let script = dir.join("check.lua");
        std::fs::write(&script, WRK_SCRIPT).unwrap();
        let counts = dir.join("counts");
        let child = Command::new("wrk")
            .args(["-t2", "-c16", "-d600s", "--timeout", "10s", "-H", "Host: localhost", "-s"])
            .arg(&script)
            .arg(format!("http://127.0.0.1:{port}/"))
            .arg("--")
            .arg(&counts)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wrk (scripts/host-setup.sh installs it)");
        Load { child, counts }
    }

    /// Responses counted so far (in steps of 500 per thread).
    fn so_far(&self) -> u64 {
        (1..=2)
            .filter_map(|i| std::fs::read_to_string(format!("{}.{i}", self.counts.display())).ok()?.parse::<u64>().ok())
            .sum()
    }

    /// Keeps loading until at least `min` responses, then stops wrk (SIGINT: it prints its summary).
    fn stop_after(self, min: u64) -> LoadResult {
        let start = Instant::now();
        while self.so_far() < min && start.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_millis(200));
        }
        // SAFETY: kill(2) on the pid of our own child process.
        unsafe { libc_kill(self.child.id() as i32, 2) };
        let out = self.child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = text.lines().find(|l| l.starts_with("RESULT")).unwrap_or_else(|| panic!("wrk: {text}\n{err}"));
        let field = |k: &str| -> u64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let failed = field("bad") + field("connect") + field("read") + field("write") + field("timeout");
        if !err.is_empty() {
            eprintln!("wrk stderr: {err}");
        }
        LoadResult { requests: field("requests"), failed, v1: field("v1"), v2: field("v2"), line: line.to_string() }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn service_tasks(service: &str) -> Vec<String> {
    let (_, out) = docker(&["ps", "-q", "--filter", &format!("label=com.docker.swarm.service.name={service}")]);
    out.lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
}

#[test]
fn edge_routes_statics_and_refuses_unknown_hosts() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    images::ensure();
    const STACK: &str = "h2a-route";
    const PORT: u16 = 18080;
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    std::fs::create_dir_all(assets.join("static")).unwrap();
    std::fs::write(assets.join("static/app.css"), "body { color: teal }\n").unwrap();
    let text = format!(
        "services:
  web:
    image: {}
    deploy: {{endpoint_mode: dnsrr}}
    x-berth:
      routes: [{{path: /api, strip_prefix: true}}]
      port: 8080
      health: /health
volumes:
  assets:
    driver_opts: {{type: none, o: bind, device: {}}}
x-berth:
  edge: {{http_port: {PORT}}}
  static:
    - {{path: /static, volume: assets, subdir: static}}
",
        images::V1,
        assets.display()
    );
    std::fs::write(dir.path().join("compose.yaml"), text).unwrap();

    let o = deploy(dir.path(), STACK);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains(&format!("edge: http://localhost:{PORT}/")), "deploy prints the URL: {e}");

    wait_for(PORT, "/api/version", "v1", Duration::from_secs(60));
    assert_eq!(get(PORT, "localhost", "/api/").unwrap(), (200, "hello from v1".into()));
    let (status, body) = get(PORT, "localhost", "/static/app.css").unwrap();
    assert_eq!((status, body.as_str()), (200, "body { color: teal }\n"), "static file from the volume");
    assert_eq!(get(PORT, "localhost", "/elsewhere").unwrap().0, 404, "no route: 404");
    assert_eq!(get(PORT, "other.example", "/api/version").unwrap().0, 421, "unknown host: 421, no default site");

    // The edge has no Docker socket.
    let edge = service_tasks(&format!("{STACK}_edge"));
    assert_eq!(edge.len(), 1, "one edge task (global, one node)");
    let (_, mounts) = docker(&["inspect", "-f", "{{json .Mounts}}", &edge[0]]);
    assert!(!mounts.contains("docker.sock"), "{mounts}");

    // `berth status` shows the edge and its URL.
    let o = berth(dir.path(), &["-s", STACK, "status"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("edge") && out.contains(&format!("http://localhost:{PORT}/")), "{out}{}", stderr(&o));

    // Same binary, same stack: nothing to do (no rebuild, no edge restart).
    let o = deploy(dir.path(), STACK);
    assert!(stderr(&o).contains("is up to date"), "{}", stderr(&o));
    assert_eq!(service_tasks(&format!("{STACK}_edge")), edge);
}

#[test]
fn rolling_update_task_kill_and_failed_release_under_load_fail_zero_requests() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    images::ensure();
    const STACK: &str = "h2a-roll";
    const PORT: u16 = 18180;
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    compose(dir.path(), images::V1, PORT, false);
    let o = deploy(dir.path(), STACK);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    wait_for(PORT, "/", "hello from v1", Duration::from_secs(60));
    // Both tasks checked by the edge before the load starts.
    std::thread::sleep(Duration::from_secs(3));

    // 1. v1 → v2 under load.
    let load = Load::start(PORT, dir.path());
    std::thread::sleep(Duration::from_secs(2));
    compose(dir.path(), images::V2, PORT, false);
    let t = Instant::now();
    let o = deploy(dir.path(), STACK);
    let rollout = t.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::thread::sleep(Duration::from_secs(2));
    let r = load.stop_after(100_000);
    eprintln!("rolling update v1 -> v2 ({:.1} s): {}", rollout.as_secs_f64(), r.line);
    assert_eq!(r.failed, 0, "failed requests during the rolling update: {r:?}");
    assert!(r.requests >= 100_000, "{r:?}");
    assert!(r.v1 > 0 && r.v2 > 0, "both versions answered: {r:?}");

    // 2. A web task killed under load.
    let load = Load::start(PORT, dir.path());
    std::thread::sleep(Duration::from_secs(2));
    let tasks = service_tasks(&format!("{STACK}_web"));
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    let (ok, out) = docker(&["kill", &tasks[0]]);
    assert!(ok, "{out}");
    std::thread::sleep(Duration::from_secs(8));
    let r = load.stop_after(20_000);
    eprintln!("task killed: {}", r.line);
    assert_eq!(r.failed, 0, "failed requests after a task was killed: {r:?}");
    assert_eq!(r.v1, 0, "{r:?}");

    // 3. A release that never becomes healthy: no response from it, rolled back.
    let load = Load::start(PORT, dir.path());
    std::thread::sleep(Duration::from_secs(2));
    compose(dir.path(), images::BAD_HEALTH, PORT, false);
    let o = berth(dir.path(), &["-s", STACK, "deploy", "--plain", "--timeout", "30"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(e.contains("rolled back to release 2"), "{e}");
    std::thread::sleep(Duration::from_secs(2));
    let r = load.stop_after(20_000);
    eprintln!("unhealthy release rolled back: {}", r.line);
    assert_eq!(r.failed, 0, "every response came from v2 (bad-health bodies count as failed): {r:?}");
    assert_eq!(r.v2, r.requests, "{r:?}");

    // 4. The edge itself updated under load (a new route: new config, new proxy task, start-first on
    // the listening sockets of `<stack>_edge-listen`).
    let before = service_tasks(&format!("{STACK}_edge"));
    let load = Load::start(PORT, dir.path());
    std::thread::sleep(Duration::from_secs(2));
    compose(dir.path(), images::V2, PORT, true);
    let t = Instant::now();
    let o = deploy(dir.path(), STACK);
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The old proxy drains and exits while the new one accepts.
    std::thread::sleep(Duration::from_secs(12));
    let r = load.stop_after(20_000);
    eprintln!("edge updated ({:.1} s): {}", took.as_secs_f64(), r.line);
    let after = service_tasks(&format!("{STACK}_edge"));
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(before, after, "a new proxy task");
    assert_eq!(r.failed, 0, "failed requests while the edge was updated: {r:?}");
    assert_eq!(r.v2, r.requests, "{r:?}");
    assert_eq!(get(PORT, "localhost", "/extra/version").unwrap(), (200, "v2".into()), "the new route is live");

    // 5. The listener replaced under load (what a new berth binary does to `<stack>_edge-listen`):
    // the new one takes the listening sockets over from the old one, start-first.
    let before = service_tasks(&format!("{STACK}_edge-listen"));
    let load = Load::start(PORT, dir.path());
    std::thread::sleep(Duration::from_secs(2));
    let (ok, out) = docker(&["service", "update", "--force", "--detach=false", &format!("{STACK}_edge-listen")]);
    assert!(ok, "{out}");
    std::thread::sleep(Duration::from_secs(3));
    let r = load.stop_after(20_000);
    eprintln!("listener replaced: {}", r.line);
    assert_ne!(before, service_tasks(&format!("{STACK}_edge-listen")), "a new listener task");
    assert_eq!(r.failed, 0, "failed requests while the listener was replaced: {r:?}");
}

/// Every shape of generated config (TLS off, local CA, ACME with peers, statics, per-route limits)
/// is accepted by the edge's own config loader.
#[test]
fn generated_edge_configs_are_accepted_by_the_edge() {
    let variants = [
        serde_json::json!({}),
        serde_json::json!({"domains": ["app.localhost"], "edge": {"http_port": 8080, "https_port": 8443}}),
        serde_json::json!({"domain": "example.com", "acme": {"email": "ops@example.com"}}),
        serde_json::json!({"domain": "example.com", "acme": {"email": "ops@example.com", "directory": "local"}}),
        serde_json::json!({"domain": "example.com", "edge": {"hsts": false, "max_body": "1m", "timeout": "5s"},
            "static": [{"path": "/static", "volume": "assets", "subdir": "s", "spa": true, "host": "example.com"}]}),
    ];
    for xb in variants {
        let stack: berth_spec::Stack = serde_json::from_value(serde_json::json!({
            "services": {"web": {"image": "a", "x-berth": {
                "routes": ["/", {"path": "/api", "strip_prefix": true, "max_body": 1024, "timeout": "2s"}],
                "port": 8080, "health": "/health"}}},
            "volumes": {"assets": {}},
            "x-berth": xb,
        }))
        .unwrap();
        let cfg = berth_plan::edge::edge_config(&stack, "st").unwrap();
        let text = serde_json::to_string_pretty(&cfg).unwrap();
        if let Err(e) = berth_edge::EdgeConfig::from_json(&text, Path::new("/etc/berth/edge.json")) {
            panic!("{xb}: the edge refuses the generated config: {e}\n{text}");
        }
    }
}

fn curl(args: &[&str]) -> (bool, String) {
    let o = Command::new("curl").args(["-sS", "--max-time", "10", "-D", "-"]).args(args).output().expect("curl");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn localhost_domain_gets_https_from_the_local_ca_and_http_redirects() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    images::ensure();
    const STACK: &str = "h2a-tls";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "services:
  web:
    image: {}
    deploy: {{endpoint_mode: dnsrr}}
    x-berth: {{routes: [/], port: 8080, health: /health}}
x-berth:
  domain: app.localhost
  edge: {{http_port: 18280, https_port: 18443}}
",
        images::V1
    );
    std::fs::write(dir.path().join("compose.yaml"), text).unwrap();
    let o = deploy(dir.path(), STACK);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("edge: https://app.localhost:18443/"), "{e}");

    // The CA lives in the edge's data volume (kept across edge restarts).
    let (_, mountpoint) = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &format!("{STACK}_edge-data")]);
    let ca = Path::new(mountpoint.trim()).join("ca/ca.pem");
    let resolve = "app.localhost:18443:127.0.0.1";
    let url = "https://app.localhost:18443/";
    let start = Instant::now();
    let mut last = (false, String::new());
    while start.elapsed() < Duration::from_secs(60) {
        last = if ca.exists() {
            curl(&["--cacert", ca.to_str().unwrap(), "--resolve", resolve, url])
        } else {
            (false, format!("{} not there yet", ca.display()))
        };
        if last.0 && last.1.contains("hello from v1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(last.0 && last.1.contains("hello from v1"), "HTTPS through the local CA: {}", last.1);
    assert!(last.1.to_ascii_lowercase().contains("strict-transport-security: max-age=31536000"), "{}", last.1);

    let (ok, out) = curl(&["--resolve", "app.localhost:18280:127.0.0.1", "http://app.localhost:18280/x?y=1"]);
    assert!(ok, "{out}");
    assert!(out.starts_with("HTTP/1.1 308"), "{out}");
    assert!(out.to_ascii_lowercase().contains("location: https://app.localhost:18443/x?y=1"), "{out}");
}
