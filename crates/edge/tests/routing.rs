//! Routing by host and prefix, proxy headers, open-proxy refusal, WebSockets, admin endpoints, access log.

mod common;

use std::time::Duration;

use berth_edge::resolver::StaticResolver;
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn setup() -> (TestEdge, TestBackend, TestBackend, TestBackend) {
    let api = TestBackend::start("api").await;
    let front = TestBackend::start("front").await;
    let admin = TestBackend::start("admin").await;
    let r = StaticResolver::new();
    r.set("api", vec![api.addr]);
    r.set("front", vec![front.addr]);
    r.set("admin", vec![admin.addr]);
    let e = edge(
        json!({
            "domains": ["app.test", "other.test"],
            "routes": [
                {"path": "/", "backend": {"service": "front", "port": 80}},
                {"path": "/api", "backend": {"service": "api", "port": 8000}},
                {"path": "/api/v2", "strip_prefix": true, "backend": {"service": "admin", "port": 8000}},
                {"host": "admin.test", "path": "/", "backend": {"service": "admin", "port": 80}}
            ]
        }),
        r,
    )
    .await;
    wait_for(|| e.handle.metrics_text().contains("service=\"api\",state=\"healthy\"} 1")).await;
    wait_for(|| e.handle.metrics_text().contains("service=\"front\",state=\"healthy\"} 1")).await;
    wait_for(|| e.handle.metrics_text().contains("service=\"admin\",state=\"healthy\"} 1")).await;
    (e, api, front, admin)
}

#[tokio::test]
async fn longest_prefix_wins_on_segment_boundaries() {
    let (e, ..) = setup().await;
    let a = e.http();
    let t = get(a, "app.test", "/api/users", &[]).await.text();
    assert!(t.starts_with("api GET /api/users"), "{t}");
    assert!(get(a, "app.test", "/api", &[]).await.text().starts_with("api GET /api"));
    assert!(get(a, "app.test", "/apix", &[]).await.text().starts_with("front GET /apix"));
    assert!(get(a, "app.test", "/", &[]).await.text().starts_with("front GET /"));
    // strip_prefix removes the matched prefix, keeps the query.
    assert!(get(a, "app.test", "/api/v2/items?x=1", &[]).await.text().starts_with("admin GET /items?x=1"));
    assert!(get(a, "app.test", "/api/v2", &[]).await.text().starts_with("admin GET /\n"));
}

#[tokio::test]
async fn host_specific_route_and_unknown_host_gets_421() {
    let (e, ..) = setup().await;
    let a = e.http();
    assert!(get(a, "admin.test", "/api/x", &[]).await.text().starts_with("admin GET /api/x"));
    assert!(get(a, "other.test:8080", "/x", &[]).await.text().starts_with("front GET /x"));
    assert_eq!(get(a, "evil.test", "/", &[]).await.status, 421);
    assert_eq!(get(a, "127.0.0.1", "/", &[]).await.status, 421);
    let r = raw(a, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.0 400") || r.starts_with("HTTP/1.1 400"), "{r}");
}

#[tokio::test]
async fn proxy_sets_forwarded_headers_and_request_id() {
    let (e, ..) = setup().await;
    let r = get(e.http(), "app.test", "/api/h", &[("x-forwarded-for", "203.0.113.9")]).await;
    let t = r.text();
    assert!(t.contains("host: app.test\n"), "{t}");
    assert!(t.contains("x-forwarded-for: 203.0.113.9, 127.0.0.1\n"), "{t}");
    assert!(t.contains("x-forwarded-proto: http\n"), "{t}");
    assert!(t.contains("x-forwarded-host: app.test\n"), "{t}");
    let rid = r.header("x-request-id").expect("request id on response");
    assert!(t.contains(&format!("x-request-id: {rid}\n")), "{t}");
    assert!(rid.len() >= 16);
    let r2 = get(e.http(), "app.test", "/api/h", &[]).await;
    assert_ne!(r2.header("x-request-id").unwrap(), rid, "ids are unique");
    let kept = get(e.http(), "app.test", "/api/h", &[("x-request-id", "abc-123")]).await;
    assert_eq!(kept.header("x-request-id").unwrap(), "abc-123");
}

#[tokio::test]
async fn absolute_form_to_other_host_is_refused() {
    let (e, api, front, admin) = setup().await;
    let before = api.hits.load(std::sync::atomic::Ordering::SeqCst)
        + front.hits.load(std::sync::atomic::Ordering::SeqCst)
        + admin.hits.load(std::sync::atomic::Ordering::SeqCst);
    let r = raw(e.http(), b"GET http://example.com/ HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 421"), "{r}");
    let r =
        raw(e.http(), b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n").await;
    assert!(!r.starts_with("HTTP/1.1 200"), "{r}");
    let after = api.hits.load(std::sync::atomic::Ordering::SeqCst)
        + front.hits.load(std::sync::atomic::Ordering::SeqCst)
        + admin.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(before, after, "no backend saw the proxy attempts");
    // Absolute-form naming a served host is ordinary HTTP and is routed.
    let r = raw(e.http(), b"GET http://app.test/api/z HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("api GET /api/z"), "{r}");
}

#[tokio::test]
async fn websocket_upgrade_echoes_through_proxy() {
    let (e, ..) = setup().await;
    let mut s = tokio::net::TcpStream::connect(e.http()).await.unwrap();
    s.write_all(
        b"GET /api/ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 1024];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0);
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket"), "{head}");
    for msg in [&b"hello"[..], b"second frame"] {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut got)).await.unwrap().unwrap();
        assert_eq!(got, msg);
    }
}

#[tokio::test]
async fn admin_port_serves_health_and_metrics_and_log_is_json() {
    let (e, ..) = setup().await;
    get(e.http(), "app.test", "/api/logged", &[]).await;
    let admin = e.handle.admin_addr.unwrap();
    let h = get(admin, "localhost", "/healthz", &[]).await;
    assert_eq!((h.status, h.text().as_str()), (200, "ok\n"));
    let m = get(admin, "localhost", "/metrics", &[]).await.text();
    assert!(m.contains("berth_edge_requests_total{code=\"2xx\"}"), "{m}");
    assert!(m.contains("berth_edge_request_duration_seconds_bucket"), "{m}");
    let lines = e.log.0.lock().unwrap().clone();
    let line = lines.iter().find(|l| l.contains("/api/logged")).expect("logged");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["host"], "app.test");
    assert!(v["id"].as_str().unwrap().len() >= 16);
}

#[tokio::test]
async fn no_backend_gives_503_not_a_default() {
    let r = StaticResolver::new();
    let e = edge(
        json!({"domains": ["app.test"], "no_backend_wait_ms": 300,
               "routes": [{"path": "/api", "backend": {"service": "none", "port": 1}}]}),
        r,
    )
    .await;
    let t = std::time::Instant::now();
    assert_eq!(get(e.http(), "app.test", "/api", &[]).await.status, 503);
    assert!(t.elapsed() >= std::time::Duration::from_millis(300), "503 before the wait for a healthy task ended");
    assert_eq!(get(e.http(), "app.test", "/other", &[]).await.status, 404);
}

/// Reads one response (headers plus a `content-length` body) from a raw connection.
async fn read_response(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let resp: Vec<u8> = buf.drain(..end + 4 + len).collect();
                return String::from_utf8_lossy(&resp).into_owned();
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed; got {:?}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_are_parked_and_keep_working() {
    let (e, ..) = setup().await;
    let mut s = tokio::net::TcpStream::connect(e.http()).await.unwrap();
    let mut buf = Vec::new();
    let req = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: app.test\r\n\r\n");
    s.write_all(req("/api/one").as_bytes()).await.unwrap();
    assert!(read_response(&mut s, &mut buf).await.contains("api GET /api/one"));
    // Idle long enough to be parked (hyper's state dropped), then two pipelined requests and a static answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write_all((req("/api/two") + &req("/x/three")).as_bytes()).await.unwrap();
    let two = read_response(&mut s, &mut buf).await;
    let three = read_response(&mut s, &mut buf).await;
    assert!(two.contains("api GET /api/two"), "{two}");
    assert!(three.contains("front GET /x/three"), "{three}");
    assert!(!two.to_ascii_lowercase().contains("connection: close"), "{two}");
    // A request split across the parking boundary.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write_all(b"GET /api/four HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.write_all(b"st: app.test\r\n\r\n").await.unwrap();
    assert!(read_response(&mut s, &mut buf).await.contains("api GET /api/four"));
    // `Connection: close` is honoured: the answer, then the edge closes.
    s.write_all(b"GET /api/five HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n").await.unwrap();
    assert!(read_response(&mut s, &mut buf).await.contains("api GET /api/five"));
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut rest)).await.unwrap().unwrap();
    assert!(rest.is_empty());
    // HTTP/1.0 without keep-alive: answered and closed.
    let t = raw(e.http(), b"GET /api/six HTTP/1.0\r\nHost: app.test\r\n\r\n").await;
    assert!(t.contains("api GET /api/six"), "{t}");
}
