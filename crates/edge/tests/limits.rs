//! Request limits: body size (413), header size (431), slowloris and idle connections closed by timeout (HTTP/1,
//! TLS handshakes and HTTP/2).

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

/// An edge with TLS from a local CA and a 500 ms header/idle timeout, and a client config trusting it.
async fn tls_setup(alpn: &[&[u8]]) -> (TestEdge, TestBackend, std::sync::Arc<rustls::ClientConfig>) {
    let a = TestBackend::start("a").await;
    let r = StaticResolver::new();
    r.set("web", vec![a.addr]);
    let e = edge(
        json!({
            "domains": ["app.localhost"],
            "tls": {"mode": "local-ca"},
            "limits": {"header_timeout_ms": 500, "tls_handshake_timeout_ms": 500},
            "routes": [{"path": "/", "backend": {"service": "web", "port": 80}}]
        }),
        r,
    )
    .await;
    wait_for(|| e.handle.metrics_text().contains("state=\"healthy\"} 1")).await;
    let ca = e.handle.local_ca_pem().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    roots.add(rustls_pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    (e, a, std::sync::Arc::new(cfg))
}

async fn tls_stream(
    e: &TestEdge,
    cfg: std::sync::Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(e.handle.https_addr.unwrap()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("app.localhost").unwrap();
    tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.unwrap()
}

#[tokio::test]
async fn idle_http2_connection_is_closed_after_its_last_request() {
    let (e, _a, cfg) = tls_setup(&[b"h2"]).await;
    let tls = tls_stream(&e, cfg).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    for _ in 0..3 {
        let req = hyper::Request::get("https://app.localhost/x").body(http_body_util::Empty::<bytes::Bytes>::new());
        let resp = sender.send_request(req.unwrap()).await.unwrap();
        assert_eq!(resp.status(), 200);
        // Requests keep the connection open beyond the idle timeout.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(3), conn).await;
    assert!(r.is_ok(), "idle HTTP/2 connection still open after 3 s");
    assert!(t.elapsed() >= Duration::from_millis(300), "closed after {:?}", t.elapsed());
    assert!(sender.is_closed());
}

#[tokio::test]
async fn http2_connection_that_never_sends_a_request_is_closed() {
    let (e, _a, cfg) = tls_setup(&[b"h2"]).await;
    let mut tls = tls_stream(&e, cfg).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // Slowloris over HTTP/2: the connection preface, then a HEADERS frame that never ends (no END_HEADERS).
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap(); // empty SETTINGS
    tls.write_all(&[0, 0, 1, 1, 0, 0, 0, 0, 1, 0x82]).await.unwrap(); // HEADERS stream 1, `:method GET`, no END_HEADERS
    let t = Instant::now();
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(4), tls.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "HTTP/2 connection with an unfinished request still open after 4 s");
    assert!(t.elapsed() >= Duration::from_millis(300), "closed after {:?}", t.elapsed());
}

#[tokio::test]
async fn silent_tls_connection_is_closed_by_handshake_timeout() {
    let (e, _a, _cfg) = tls_setup(&[b"h2"]).await;
    let mut s = tokio::net::TcpStream::connect(e.handle.https_addr.unwrap()).await.unwrap();
    // A partial ClientHello record header, then nothing.
    s.write_all(&[0x16, 0x03, 0x01, 0x01, 0x00]).await.unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "half-finished TLS handshake still open after 3 s");
    assert!(t.elapsed() >= Duration::from_millis(300), "closed after {:?}", t.elapsed());
}
