//! TLS: PEM certificates by SNI, HTTP/2, HSTS, redirect, unknown SNI refused, local CA.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use berth_edge::resolver::StaticResolver;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
}

/// A CA and one leaf for `app.test` + `*.wild.test`, written as PEM files.
fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["app.test".into(), "*.wild.test".into()]).unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.path().join("cert.pem"), leaf_cert.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
    Pki { dir, ca_pem: ca_cert.pem() }
}

fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

async fn tls_connect(
    addr: SocketAddr,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await
}

async fn files_edge(pki: &Pki) -> (TestEdge, TestBackend) {
    let a = TestBackend::start("a").await;
    let r = StaticResolver::new();
    r.set("web", vec![a.addr]);
    let d = pki.dir.path();
    let e = edge(
        json!({
            "domains": ["app.test", "*.wild.test"],
            "tls": {"mode": "files", "certs": [{"cert": d.join("cert.pem"), "key": d.join("key.pem")}]},
            "routes": [{"path": "/", "backend": {"service": "web", "port": 80}}]
        }),
        r,
    )
    .await;
    wait_for(|| e.handle.metrics_text().contains("state=\"healthy\"} 1")).await;
    (e, a)
}

#[tokio::test]
async fn h2_over_tls_with_file_certificate_and_hsts() {
    let pki = pki();
    let (e, _a) = files_edge(&pki).await;
    let tls =
        tls_connect(e.handle.https_addr.unwrap(), "app.test", client_config(&pki.ca_pem, &[b"h2"])).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let v = tls.get_ref().1.protocol_version().unwrap();
    assert!(matches!(v, rustls::ProtocolVersion::TLSv1_3 | rustls::ProtocolVersion::TLSv1_2));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    for path in ["/one", "/two"] {
        let req = hyper::Request::get(format!("https://app.test{path}")).body(Full::new(Bytes::new())).unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["strict-transport-security"], "max-age=31536000");
        let body = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        assert!(body.starts_with(&format!("a GET {path}")), "{body}");
        assert!(body.contains("x-forwarded-proto: https"), "{body}");
        assert!(body.contains("host: app.test"), "{body}");
    }
}

#[tokio::test]
async fn http1_over_tls_and_wildcard_certificate() {
    let pki = pki();
    let (e, _a) = files_edge(&pki).await;
    let tls = tls_connect(e.handle.https_addr.unwrap(), "x.wild.test", client_config(&pki.ca_pem, &[b"http/1.1"]))
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/w").header("host", "x.wild.test").body(Full::new(Bytes::new())).unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn unknown_sni_is_refused_and_host_sni_mismatch_gets_421() {
    let pki = pki();
    let (e, a) = files_edge(&pki).await;
    let https = e.handle.https_addr.unwrap();
    // A name the edge has no certificate for: no handshake (so no default site).
    assert!(tls_connect(https, "evil.test", client_config(&pki.ca_pem, &[b"http/1.1"])).await.is_err());
    // Valid SNI, but a Host of another domain on the same connection.
    let tls = tls_connect(https, "app.test", client_config(&pki.ca_pem, &[b"http/1.1"])).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/").header("host", "y.wild.test").body(Full::new(Bytes::new())).unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 421);
    assert_eq!(a.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let m = e.handle.metrics_text();
    assert!(m.contains("berth_edge_tls_handshake_errors_total 1"), "{m}");
}

#[tokio::test]
async fn plain_http_redirects_to_https_without_touching_backend() {
    let pki = pki();
    let (e, a) = files_edge(&pki).await;
    let port = e.handle.https_addr.unwrap().port();
    let r = get(e.http(), "app.test", "/path/x?q=1", &[]).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location").unwrap(), format!("https://app.test:{port}/path/x?q=1"));
    assert_eq!(r.header("strict-transport-security"), None, "no HSTS over plain HTTP");
    assert_eq!(get(e.http(), "evil.test", "/", &[]).await.status, 421);
    assert_eq!(a.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn certificate_not_covering_a_domain_is_a_start_error() {
    let pki = pki();
    let d = pki.dir.path();
    let cfg = json!({
        "domains": ["other.test"], "listen": "127.0.0.1", "http_port": 0, "https_port": 0, "admin_addr": null,
        "tls": {"mode": "files", "certs": [{"cert": d.join("cert.pem"), "key": d.join("key.pem")}]}
    });
    let cfg = berth_edge::EdgeConfig::from_json(&cfg.to_string(), std::path::Path::new("e.json")).unwrap();
    let err = berth_edge::start(cfg, berth_edge::EdgeOptions::default()).await.err().expect("must fail");
    assert!(err.to_string().contains("other.test"), "{err}");
}

#[tokio::test]
async fn local_ca_issues_for_localhost_and_is_reused_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let start = || async {
        edge(
            json!({
                "domains": ["app.localhost"],
                "tls": {"mode": "local-ca", "ca_dir": ca_dir},
                "statics": [{"path": "/", "root": dir.path()}]
            }),
            StaticResolver::new(),
        )
        .await
    };
    std::fs::write(dir.path().join("index.html"), "hello local").unwrap();
    let e = start().await;
    let ca = e.handle.local_ca_pem().unwrap();
    let tls =
        tls_connect(e.handle.https_addr.unwrap(), "app.localhost", client_config(&ca, &[b"http/1.1"])).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/").header("host", "app.localhost").body(Full::new(Bytes::new())).unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(&resp.into_body().collect().await.unwrap().to_bytes()[..], b"hello local");
    // Names outside the configured domains and *.localhost get no certificate.
    assert!(tls_connect(e.handle.https_addr.unwrap(), "example.com", client_config(&ca, &[])).await.is_err());
    e.handle.shutdown();
    let e2 = start().await;
    assert_eq!(e2.handle.local_ca_pem().unwrap(), ca, "CA reused from ca_dir");
    assert!(tls_connect(e2.handle.https_addr.unwrap(), "app.localhost", client_config(&ca, &[])).await.is_ok());
}
