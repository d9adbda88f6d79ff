//! Request limits: body size (413), header size (431), slowloris and idle connections closed by timeout.

mod common;

use std::time::{Duration, Instant};

use berth_edge::resolver::StaticResolver;
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn setup() -> (TestEdge, TestBackend) {
    let a = TestBackend::start("a").await;
    let r = StaticResolver::new();
    r.set("web", vec![a.addr]);
    let e = edge(
        json!({
            "domains": ["app.test"],
            "limits": {"header_timeout_ms": 500, "max_header_bytes": 8192},
            "routes": [{"path": "/", "backend": {"service": "web", "port": 80}, "max_body": 1000}]
        }),
        r,
    )
    .await;
    wait_for(|| e.handle.metrics_text().contains("state=\"healthy\"} 1")).await;
    (e, a)
}

#[tokio::test]
async fn body_over_route_limit_gets_413() {
    let (e, _a) = setup().await;
    let small = request(e.http(), "POST", "app.test", "/u", &[], bytes::Bytes::from(vec![b'x'; 1000])).await;
    assert_eq!(small.status, 200);
    assert!(small.text().contains("body-len: 1000"));
    let big = request(e.http(), "POST", "app.test", "/u", &[], bytes::Bytes::from(vec![b'x'; 1001])).await;
    assert_eq!(big.status, 413);
    // Chunked (no Content-Length): the running limit applies.
    let mut req =
        b"POST /u HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..3 {
        req.extend_from_slice(b"200\r\n");
        req.extend_from_slice(&[b'y'; 0x200]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = raw(e.http(), &req).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let (e, a) = setup().await;
    let big = "v".repeat(10_000);
    let r = raw(e.http(), format!("GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: {big}\r\n\r\n").as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = raw(e.http(), format!("GET / HTTP/1.1\r\nHost: app.test\r\n{many}\r\n").as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    assert_eq!(a.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn slowloris_connection_is_closed_by_header_timeout() {
    let (e, _a) = setup().await;
    let mut s = tokio::net::TcpStream::connect(e.http()).await.unwrap();
    let t = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n").await.unwrap();
    // Keep trickling header bytes; the server must cut us off anyway.
    let mut closed = false;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.write_all(format!("X-{i}: a\r\n").as_bytes()).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
            let _ = n;
            closed = true;
            break;
        }
    }
    assert!(closed, "connection still open after 4s of trickled headers");
    assert!(t.elapsed() < Duration::from_secs(2), "closed after {:?}", t.elapsed());
}

#[tokio::test]
async fn idle_keepalive_connection_is_closed() {
    let (e, _a) = setup().await;
    let mut s = tokio::net::TcpStream::connect(e.http()).await.unwrap();
    s.write_all(b"GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let t = Instant::now();
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut rest)).await;
    assert!(r.is_ok(), "idle connection not closed within 3s");
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn silent_connection_is_closed_by_header_timeout() {
    let (e, _a) = setup().await;
    let mut s = tokio::net::TcpStream::connect(e.http()).await.unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "silent connection not closed within 3s");
    assert!(t.elapsed() >= Duration::from_millis(300), "closed too early: {:?}", t.elapsed());
}
