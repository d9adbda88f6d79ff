//! Zero-downtime edge restarts: two edges accept on the same listening sockets (handed over with SCM_RIGHTS by
//! the `listen` side); the old one drains while the new one takes new connections. Also config reloads under load.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_edge::handover::{self, Listeners};
use berth_edge::metrics::MemoryLog;
use berth_edge::resolver::StaticResolver;
use berth_edge::{EdgeConfig, EdgeHandle, EdgeOptions};
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FILE: &str = "static file body, checked byte for byte\n";

struct Fixture {
    _dir: tempfile::TempDir,
    www: std::path::PathBuf,
    socket: std::path::PathBuf,
    port: u16,
    _backend: TestBackend,
    resolver: StaticResolver,
}

/// A backend, a static root, and a `listen`-side unix socket handing out one loopback listener.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("f.txt"), FILE).unwrap();
    let l = handover::bind_one("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = l.local_addr().unwrap().port();
    let listeners = Listeners { sockets: vec![(port, l)] };
    let socket = dir.path().join("run").join("edge.sock");
    let (unix, listeners, inherited) = {
        // `setup` takes over nothing here (no socket yet) and binds no port (the list is empty): it only
        // publishes the socket; the pre-bound listener is the one handed out.
        let (unix, _, inherited) = handover::setup(&socket, "127.0.0.1".parse().unwrap(), &[]).unwrap();
        (unix, listeners, inherited)
    };
    assert!(!inherited);
    std::thread::spawn(move || handover::serve_socket(unix, &listeners));
    let backend = TestBackend::start("a").await;
    let resolver = StaticResolver::new();
    resolver.set("web", vec![backend.addr]);
    Fixture { _dir: dir, www, socket, port, _backend: backend, resolver }
}

fn config(f: &Fixture, extra_domain: Option<&str>) -> EdgeConfig {
    let mut domains = vec!["app.test"];
    domains.extend(extra_domain);
    let cfg = json!({
        "domains": domains,
        "listen": "127.0.0.1",
        "http_port": f.port,
        "https_port": null,
        "admin_addr": "127.0.0.1:0",
        "access_log": false,
        "discovery_interval_ms": 50,
        "drain_ms": 5000,
        "routes": [{"path": "/api", "backend": {"service": "web", "port": 80}}],
        "statics": [{"path": "/static", "root": f.www}]
    });
    EdgeConfig::from_json(&cfg.to_string(), Path::new("/test/edge.json")).unwrap()
}

/// An edge on the listeners received from the fixture's unix socket.
async fn edge_from_socket(f: &Fixture) -> EdgeHandle {
    let p = f.socket.clone();
    let listeners = tokio::task::spawn_blocking(move || handover::receive(&p)).await.unwrap().unwrap();
    let opts =
        EdgeOptions { resolver: Arc::new(f.resolver.clone()), access_log: Arc::new(MemoryLog::default()), workers: 0 };
    let h = berth_edge::start_with(config(f, None), opts, Some(listeners)).await.unwrap();
    wait_for(|| h.metrics_text().contains("service=\"web\",state=\"healthy\"} 1")).await;
    h
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    closes: AtomicU64,
    errors: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        let mut e = self.errors.lock().unwrap();
        if e.len() < 20 {
            e.push(what);
        }
    }
}

/// One load client: keep-alive (reconnecting when the server says `Connection: close`) or a new connection per
/// request; alternates a proxied request and a static file and checks every status and body.
async fn client(addr: SocketAddr, keep_alive: bool, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut n = 0u64;
    'outer: while !stop.load(Ordering::Relaxed) {
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                tally.fail(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => {
                tally.fail(format!("handshake: {e}"));
                continue;
            }
        };
        tokio::spawn(conn);
        loop {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            n += 1;
            let path = if n.is_multiple_of(2) { format!("/api/r{n}") } else { "/static/f.txt".to_owned() };
            let mut req = hyper::Request::get(&path).header("host", "app.test");
            if !keep_alive {
                req = req.header("connection", "close");
            }
            if sender.ready().await.is_err() {
                // The server closed an idle keep-alive connection: a client reconnects (nothing was sent).
                tally.closes.fetch_add(1, Ordering::SeqCst);
                continue 'outer;
            }
            let resp = match sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()).await {
                Ok(r) => r,
                Err(e) => {
                    tally.fail(format!("{path}: send: {e:?}"));
                    continue 'outer;
                }
            };
            let status = resp.status();
            let close = resp.headers().get("connection").is_some_and(|v| v == "close");
            let body = match resp.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    tally.fail(format!("{path}: body: {e}"));
                    continue 'outer;
                }
            };
            let good = status == 200
                && if path.starts_with("/api") {
                    body.starts_with(format!("a GET {path}\n").as_bytes()) && body.ends_with(b"body-len: 0\n")
                } else {
                    body == FILE.as_bytes()
                };
            if good {
                tally.ok.fetch_add(1, Ordering::SeqCst);
            } else {
                tally.fail(format!("{path}: {status} {:?}", String::from_utf8_lossy(&body)));
            }
            if close || !keep_alive {
                if close {
                    tally.closes.fetch_add(1, Ordering::SeqCst);
                }
                continue 'outer;
            }
        }
    }
}

struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, keep_alive: usize, per_request: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let mut tasks = Vec::new();
        for i in 0..keep_alive + per_request {
            tasks.push(tokio::spawn(client(addr, i < keep_alive, stop.clone(), tally.clone())));
        }
        Load { stop, tally, tasks }
    }
    fn ok(&self) -> u64 {
        self.tally.ok.load(Ordering::SeqCst)
    }
    async fn wait_ok(&self, n: u64) {
        let t = Instant::now();
        while self.ok() < n {
            assert!(t.elapsed() < Duration::from_secs(120), "only {} requests in 120 s", self.ok());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    async fn finish(self) -> Arc<Tally> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.tally
    }
}

fn requests_served(h: &EdgeHandle) -> u64 {
    h.metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix("berth_edge_requests_total{code=\"2xx\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_swap_under_load_fails_no_request() {
    let f = fixture().await;
    let addr = SocketAddr::from(([127, 0, 0, 1], f.port));
    let a = edge_from_socket(&f).await;
    let load = Load::start(addr, 24, 8);
    load.wait_ok(3_000).await;

    // The new edge starts on the same sockets, then the old one drains.
    let b = edge_from_socket(&f).await;
    let before = load.ok();
    let served_a_before = requests_served(&a);
    let t = Instant::now();
    a.drain(Duration::from_secs(5)).await;
    let drain_time = t.elapsed();
    assert!(drain_time < Duration::from_secs(3), "drain took {drain_time:?} with active clients");
    // From here on every request is the new edge's.
    let drained_at = load.ok();
    let b_at_drain = requests_served(&b);
    load.wait_ok((before + 17_000).max(drained_at + 10_000)).await;
    let tally = load.finish().await;
    let after_b = requests_served(&b) - b_at_drain;

    let failed = tally.failed.load(Ordering::SeqCst);
    let ok = tally.ok.load(Ordering::SeqCst);
    eprintln!(
        "ok {ok}, failed {failed}, reconnects {}, drain {drain_time:?}, A served >= {served_a_before}, B {after_b}",
        tally.closes.load(Ordering::SeqCst)
    );
    assert_eq!(failed, 0, "failed requests: {:?}", tally.errors.lock().unwrap());
    assert!(ok >= 20_000, "{ok} requests");
    let after_drain = tally.ok.load(Ordering::SeqCst) - drained_at;
    // (A response A sent just before its connection closed may be counted by its client a moment later.)
    assert!(after_b + 100 >= after_drain, "after the drain the new edge served {after_b} of {after_drain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_edge_closes_idle_keepalive_and_tells_active_ones_to_close() {
    let f = fixture().await;
    let addr = SocketAddr::from(([127, 0, 0, 1], f.port));
    let a = edge_from_socket(&f).await;
    // Two keep-alive connections to A, one request each; no other edge accepts yet.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut active = TcpStream::connect(addr).await.unwrap();
    for s in [&mut idle, &mut active] {
        s.write_all(b"GET /static/f.txt HTTP/1.1\r\nHost: app.test\r\n\r\n").await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
        assert!(head.starts_with("http/1.1 200") && !head.contains("connection: close"), "{head}");
    }
    let b = edge_from_socket(&f).await;
    let drained = tokio::spawn(async move {
        let t = Instant::now();
        a.drain(Duration::from_secs(5)).await;
        t.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A request on a connection A still holds is answered, with `Connection: close`, then the connection ends.
    active.write_all(b"GET /static/f.txt HTTP/1.1\r\nHost: app.test\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), active.read_to_end(&mut out)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&out).to_lowercase();
    assert!(text.starts_with("http/1.1 200") && text.contains("connection: close") && text.ends_with(FILE), "{text}");
    // The idle one is closed (cleanly, no reset) within the drain's idle allowance.
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(3), idle.read_to_end(&mut out)).await;
    assert!(matches!(r, Ok(Ok(0))), "{r:?} {out:?}");
    let took = drained.await.unwrap();
    assert!(took < Duration::from_secs(2), "drain took {took:?}");
    // New connections go to B.
    assert_eq!(get(addr, "app.test", "/static/f.txt", &[]).await.text(), FILE);
    assert!(requests_served(&b) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_inflight_request() {
    let f = fixture().await;
    let addr = SocketAddr::from(([127, 0, 0, 1], f.port));
    let a = edge_from_socket(&f).await;
    // `/api/sleep3`: the backend answers after 3 s.
    let slow = tokio::spawn(async move { get(addr, "app.test", "/api/sleep3", &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _b = edge_from_socket(&f).await;
    let t = Instant::now();
    a.drain(Duration::from_secs(10)).await;
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("a GET /api/sleep3"), "{}", r.text());
    assert!(t.elapsed() >= Duration::from_millis(2000) && t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_under_load_fails_no_request() {
    let f = fixture().await;
    let addr = SocketAddr::from(([127, 0, 0, 1], f.port));
    let a = edge_from_socket(&f).await;
    let load = Load::start(addr, 16, 4);
    load.wait_ok(1_000).await;
    for i in 0..20 {
        // Alternate between two configs (a domain added and removed): routes are swapped atomically.
        let extra = format!("extra{i}.test");
        a.reload(config(&f, (i % 2 == 0).then_some(extra.as_str()))).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    load.wait_ok(load.ok() + 1_000).await;
    let tally = load.finish().await;
    assert_eq!(tally.failed.load(Ordering::SeqCst), 0, "{:?}", tally.errors.lock().unwrap());
    assert!(tally.ok.load(Ordering::SeqCst) >= 2_000);
}

#[test]
fn listener_socket_is_private_and_unsafe_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/edge.sock");
    let (unix, ls, _) = handover::setup(&path, "127.0.0.1".parse().unwrap(), &[]).unwrap();
    assert!(ls.sockets.is_empty());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    let dmode = std::fs::metadata(dir.path().join("run")).unwrap().permissions().mode() & 0o777;
    assert_eq!(dmode, 0o700, "created directory mode {dmode:o}");
    drop(unix);

    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = handover::setup(&open.join("edge.sock"), "127.0.0.1".parse().unwrap(), &[]).unwrap_err();
    assert!(matches!(err, handover::HandoverError::UnsafeDir(_)), "{err}");
}

#[test]
fn second_listener_takes_the_ports_over_from_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.sock");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (unix, first, inherited) = handover::setup(&path, "127.0.0.1".parse().unwrap(), &[port]).unwrap();
    assert!(!inherited);
    let first_addr = first.sockets[0].1.local_addr().unwrap();
    let t = std::thread::spawn(move || handover::serve_socket(unix, &first));
    // The second one cannot bind the port again: it must get it from the first.
    let (unix2, second, inherited) = handover::setup(&path, "127.0.0.1".parse().unwrap(), &[port]).unwrap();
    assert!(inherited);
    assert_eq!(second.sockets.len(), 1);
    assert_eq!(second.sockets[0].1.local_addr().unwrap(), first_addr);
    std::thread::spawn(move || handover::serve_socket(unix2, &second));
    // Clients of the socket path now talk to the second listener (same sockets).
    let got = handover::receive(&path).unwrap();
    assert_eq!(got.infos()[0].port, port);
    drop(t);
}
