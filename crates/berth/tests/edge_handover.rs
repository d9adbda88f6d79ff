//! Zero-downtime edge restart with the real binary: `berth edge listen` holds the port, proxy A serves it, proxy B
//! starts on the same sockets, A gets SIGTERM and drains; clients (keep-alive and one request per connection) check
//! every body and see no failure. Loopback only; ports 19480-19482.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PORT: u16 = 19480;
const FILE: &str = "static body served by the edge\n";
const BACKEND_BODY: &str = "hello from the backend\n";

struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn berth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_berth"))
}

/// A tiny keep-alive HTTP/1.1 backend on a thread per connection.
fn backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match r.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let resp =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{BACKEND_BODY}", BACKEND_BODY.len());
                    if w.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Reads one response: (status, `Connection: close`?, body).
fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<(u16, bool, Vec<u8>)> {
    let mut status = 0;
    let mut len = 0usize;
    let mut close = false;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before the response"));
        }
        let l = line.trim_end().to_ascii_lowercase();
        if status == 0 {
            status = l.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
        } else if l.is_empty() {
            break;
        } else if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        } else if l == "connection: close" {
            close = true;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok((status, close, body))
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    errors: std::sync::Mutex<Vec<String>>,
}

fn client(keep_alive: bool, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let s = match TcpStream::connect(("127.0.0.1", PORT)) {
            Ok(s) => s,
            Err(e) => {
                tally.failed.fetch_add(1, Ordering::SeqCst);
                tally.errors.lock().unwrap().push(format!("connect: {e}"));
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let (path, want) = if n.is_multiple_of(2) { ("/api/x", BACKEND_BODY) } else { ("/static/f.txt", FILE) };
            let conn = if keep_alive { "" } else { "Connection: close\r\n" };
            let req = format!("GET {path} HTTP/1.1\r\nHost: app.test\r\n{conn}\r\n");
            let res = w.write_all(req.as_bytes()).and_then(|_| read_response(&mut r));
            match res {
                Ok((200, close, body)) if body == want.as_bytes() => {
                    tally.ok.fetch_add(1, Ordering::SeqCst);
                    if close || !keep_alive {
                        break;
                    }
                }
                other => {
                    tally.failed.fetch_add(1, Ordering::SeqCst);
                    let mut e = tally.errors.lock().unwrap();
                    if e.len() < 20 {
                        e.push(format!("{path}: {other:?}"));
                    }
                    break;
                }
            }
        }
    }
}

fn wait_healthy(config: &Path) {
    let t = Instant::now();
    while !berth().args(["edge", "check"]).arg(config).stderr(Stdio::null()).status().unwrap().success() {
        assert!(t.elapsed() < Duration::from_secs(20), "{} never became healthy", config.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_ok(tally: &Tally, n: u64) {
    let t = Instant::now();
    while tally.ok.load(Ordering::SeqCst) < n {
        assert!(t.elapsed() < Duration::from_secs(120), "only {} requests", tally.ok.load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn edge_processes_swap_under_load_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("f.txt"), FILE).unwrap();
    let socket = dir.path().join("run").join("edge.sock");
    for (name, admin) in [("a.json", 19481), ("b.json", 19482)] {
        let cfg = serde_json::json!({
            "domains": ["app.test"], "http_port": PORT, "https_port": null,
            "admin_addr": format!("127.0.0.1:{admin}"), "access_log": false, "drain_ms": 5000,
            "discovery_interval_ms": 100,
            "routes": [{"path": "/api", "backend": {"service": "web", "port": 80}}],
            "statics": [{"path": "/static", "root": www}]
        });
        std::fs::write(dir.path().join(name), cfg.to_string()).unwrap();
    }
    let be = format!("web={}", backend());
    let mut procs = Procs(Vec::new());
    let listen = berth()
        .args(["edge", "listen", "--addr", "127.0.0.1", "--port", &PORT.to_string(), "--socket"])
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    procs.0.push(listen);
    let serve = |name: &str| {
        berth()
            .args(["edge", "serve"])
            .arg(dir.path().join(name))
            .arg("--listen-from")
            .arg(&socket)
            .args(["--backend", &be])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut a = serve("a.json");
    wait_healthy(&dir.path().join("a.json"));

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let threads: Vec<_> = (0..10)
        .map(|i| {
            let (stop, tally) = (stop.clone(), tally.clone());
            std::thread::spawn(move || client(i < 8, stop, tally))
        })
        .collect();
    // Wait for the backend to pass its first health check and the load to run.
    wait_ok(&tally, 3_000);

    let b = serve("b.json");
    procs.0.push(b);
    wait_healthy(&dir.path().join("b.json"));
    let before = tally.ok.load(Ordering::SeqCst);
    let t = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &a.id().to_string()]).status().unwrap().success());
    let status = a.wait().unwrap();
    let drain = t.elapsed();
    assert!(status.success(), "old edge exited with {status}");
    wait_ok(&tally, (before + 17_000).max(20_000));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let ok = tally.ok.load(Ordering::SeqCst);
    let failed = tally.failed.load(Ordering::SeqCst);
    eprintln!("ok {ok}, failed {failed}, old edge drained and exited in {drain:?}");
    assert_eq!(failed, 0, "{:?}", tally.errors.lock().unwrap());
    assert!(drain < Duration::from_secs(4), "drain took {drain:?}");
    // The port stays served by B after A is gone.
    assert!(berth().args(["edge", "check"]).arg(dir.path().join("b.json")).status().unwrap().success());
}
