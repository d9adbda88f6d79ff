//! Shared test helpers: loopback backends, an edge on ephemeral ports, raw and hyper clients.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use berth_edge::metrics::MemoryLog;
use berth_edge::resolver::StaticResolver;
use berth_edge::{EdgeConfig, EdgeHandle, EdgeOptions};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A loopback backend: `/slow` waits 800 ms, `/health` follows `healthy`, `/ws` upgrades and echoes bytes,
/// anything else answers `name method path` plus selected request headers, one per line.
pub struct TestBackend {
    pub addr: SocketAddr,
    pub name: String,
    pub healthy: Arc<AtomicBool>,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    stop_tx: tokio::sync::watch::Sender<bool>,
}

impl TestBackend {
    pub async fn start(name: &str) -> TestBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let healthy = Arc::new(AtomicBool::new(true));
        let hits = Arc::new(AtomicUsize::new(0));
        let (h, c, n) = (healthy.clone(), hits.clone(), name.to_owned());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else { return };
                let (h, c, n) = (h.clone(), c.clone(), n.clone());
                let mut stop = stop_rx.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req| backend_handle(req, h.clone(), c.clone(), n.clone()));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .with_upgrades();
                    tokio::select! {
                        _ = conn => {}
                        _ = async {
                            // A dropped TestBackend (sender gone) is not a kill.
                            if stop.changed().await.is_err() {
                                std::future::pending::<()>().await;
                            }
                        } => {}
                    }
                });
            }
        });
        TestBackend { addr, name: name.to_owned(), healthy, hits, task, stop_tx }
    }

    /// Closes the listener (new connections are refused).
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Closes the listener and every open connection, like a killed task.
    pub fn kill(&self) {
        self.task.abort();
        let _ = self.stop_tx.send(true);
    }
}

async fn backend_handle(
    mut req: Request<Incoming>,
    healthy: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    name: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/health" || path == "/api/health" {
        let ok = healthy.load(Ordering::SeqCst);
        let mut r = Response::new(Full::new(Bytes::from_static(b"health")));
        *r.status_mut() = if ok { hyper::StatusCode::OK } else { hyper::StatusCode::SERVICE_UNAVAILABLE };
        return Ok(r);
    }
    hits.fetch_add(1, Ordering::SeqCst);
    if path.ends_with("/ws") {
        let up = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(u) = up.await {
                let mut io = TokioIo::new(u);
                let mut buf = [0u8; 1024];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if io.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        let r = Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(Full::new(Bytes::new()))
            .unwrap();
        return Ok(r);
    }
    if path.ends_with("/slow") {
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    if path.ends_with("/sleep3") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let mut text = format!("{name} {} {}\n", req.method(), req.uri());
    for h in ["host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "connection"] {
        if let Some(v) = req.headers().get(h) {
            text.push_str(&format!("{h}: {}\n", v.to_str().unwrap_or("?")));
        }
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    text.push_str(&format!("body-len: {}\n", body.len()));
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// A running edge plus its test resolver and log.
pub struct TestEdge {
    pub handle: EdgeHandle,
    pub resolver: StaticResolver,
    pub log: Arc<MemoryLog>,
}

impl TestEdge {
    pub fn http(&self) -> SocketAddr {
        self.handle.http_addr.unwrap()
    }
}

/// Starts an edge from a JSON config (ports default to ephemeral loopback ones) with a static resolver.
pub async fn edge(mut cfg: serde_json::Value, resolver: StaticResolver) -> TestEdge {
    let o = cfg.as_object_mut().unwrap();
    o.entry("listen").or_insert("127.0.0.1".into());
    o.entry("http_port").or_insert(0.into());
    o.entry("https_port").or_insert(0.into());
    o.entry("admin_addr").or_insert("127.0.0.1:0".into());
    o.entry("discovery_interval_ms").or_insert(50.into());
    let cfg: EdgeConfig = EdgeConfig::from_json(&cfg.to_string(), std::path::Path::new("/test/edge.json")).unwrap();
    let log = Arc::new(MemoryLog::default());
    // Two worker threads, like `berth edge serve` on a 2-core machine (the other tests run on the test's runtime).
    let opts = EdgeOptions { resolver: Arc::new(resolver.clone()), access_log: log.clone(), workers: 2 };
    let handle = berth_edge::start(cfg, opts).await.unwrap();
    TestEdge { handle, resolver, log }
}

/// Waits until `f` is true (polling every 20 ms, at most 5 s).
pub async fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..250 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached in 5s");
}

/// Sends raw bytes and reads the answer until the server closes or 3 s pass.
pub async fn raw(addr: SocketAddr, data: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(data).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A simple response as the tests see it.
pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(addr, "GET", host, path, headers, Bytes::new()).await
}

/// One HTTP/1.1 request with a method and body on a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Resp {
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await.unwrap();
    tokio::spawn(conn);
    let mut b = Request::builder().method(method).uri(path).header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = sender.send_request(b.body(Full::new(body)).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Resp { status, headers, body }
}

/// A persistent HTTP/1.1 connection for keep-alive tests.
pub struct KeepAlive {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl KeepAlive {
    pub async fn connect(addr: SocketAddr) -> KeepAlive {
        let s = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await.unwrap();
        tokio::spawn(conn);
        KeepAlive { sender }
    }
    pub async fn get(&mut self, host: &str, path: &str) -> Resp {
        self.sender.ready().await.unwrap();
        let req = Request::builder().uri(path).header("host", host).body(Full::new(Bytes::new())).unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp { status, headers, body }
    }
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}
