//! ACME end to end against Debian's pebble (a real ACME server): HTTP-01 and TLS-ALPN-01 issuance, certificates
//! verified against pebble's root, restart without re-issuance, renewal without dropping connections, two edges
//! sharing a store ordering once, and an unreachable directory retried with backoff.
//!
//! Each test starts its own pebble and `pebble-challtestsrv` (as the DNS server answering every name with
//! 127.0.0.1) on its own loopback ports (14000-14099, 15000-15099), with pebble's validation ports pointed at
//! the edge under test.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use berth_edge::metrics::MemoryLog;
use berth_edge::resolver::StaticResolver;
use berth_edge::{EdgeConfig, EdgeHandle, EdgeOptions};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;

fn have(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// Skips (with the reason on stderr) when pebble is not installed; CI installs it (scripts/host-setup.sh).
macro_rules! need_pebble {
    () => {
        if !have("pebble") || !have("pebble-challtestsrv") {
            eprintln!("SKIPPED: pebble / pebble-challtestsrv not installed (scripts/host-setup.sh installs them)");
            return;
        }
    };
}

/// Ports of one test: pebble's API and management, the DNS responder and its management, the edge's
/// HTTP and HTTPS (which pebble validates against).
struct Ports {
    acme: u16,
    mgmt: u16,
    dns: u16,
    dns_mgmt: u16,
    http: u16,
    https: u16,
}

fn ports(slot: u16) -> Ports {
    Ports {
        acme: 14000 + slot,
        mgmt: 15000 + slot,
        dns: 15050 + slot,
        dns_mgmt: 15070 + slot,
        http: 14050 + 2 * slot,
        https: 14051 + 2 * slot,
    }
}

struct Pebble {
    dir: tempfile::TempDir,
    pebble: Child,
    dns: Child,
    directory: String,
    /// PEM of the CA that signed pebble's own HTTPS certificate (the edge's `tls.ca_file`).
    https_ca: PathBuf,
    mgmt: u16,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in [&mut self.pebble, &mut self.dns] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on {port}: {}", std::fs::read_to_string(log).unwrap_or_default());
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on `p.http` and TLS-ALPN-01 on `p.https`, resolving every name to
    /// 127.0.0.1 through a challtestsrv DNS responder.
    async fn start(p: &Ports) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // pebble's HTTPS certificate (Debian's package ships no test certificates).
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "h1acme pebble https CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        let leaf = leaf.signed_by(&key, &issuer).unwrap();
        std::fs::write(d.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(d.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(d.join("ca.pem"), ca_cert.pem()).unwrap();
        let config = json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{}", p.acme),
            "managementListenAddress": format!("127.0.0.1:{}", p.mgmt),
            "certificate": d.join("cert.pem"),
            "privateKey": d.join("key.pem"),
            "httpPort": p.http,
            "tlsPort": p.https,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        std::fs::write(d.join("pebble.json"), config.to_string()).unwrap();
        let out = |name: &str| Stdio::from(std::fs::File::create(d.join(name)).unwrap());
        let dns = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{}", p.dns)])
            .args(["-management", &format!("127.0.0.1:{}", p.dns_mgmt)])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(out("dns.log"))
            .stderr(out("dns.err"))
            .spawn()
            .unwrap();
        let pebble = Command::new("pebble")
            .args(["-config", d.join("pebble.json").to_str().unwrap()])
            .args(["-dnsserver", &format!("127.0.0.1:{}", p.dns)])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(out("pebble.log"))
            .stderr(out("pebble.err"))
            .spawn()
            .unwrap();
        let pb = Pebble {
            directory: format!("https://127.0.0.1:{}/dir", p.acme),
            https_ca: d.join("ca.pem"),
            mgmt: p.mgmt,
            dir,
            pebble,
            dns,
        };
        wait_port(p.dns_mgmt, "challtestsrv", &pb.dir.path().join("dns.err")).await;
        wait_port(p.acme, "pebble", &pb.dir.path().join("pebble.log")).await;
        pb
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The root certificate pebble issues under (from its management API), PEM.
    async fn root_pem(&self) -> String {
        let ca = std::fs::read_to_string(&self.https_ca).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", self.mgmt).parse().unwrap();
        let (status, body, _) = https_get(addr, "127.0.0.1", &ca, "/roots/0").await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }
}

fn client_config(root_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A verified TLS connection (against `root_pem`) to `addr` with SNI `sni`, and the leaf it was served.
async fn tls_connect(addr: SocketAddr, sni: &str, root_pem: &str) -> std::io::Result<(Tls, Vec<u8>)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(root_pem)).connect(name, tcp).await?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    Ok((tls, leaf))
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn h1(tls: Tls) -> Sender {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    sender
}

async fn send(sender: &mut Sender, host: &str, path: &str) -> (u16, String, Option<String>) {
    let req = hyper::Request::get(path).header("host", host).body(Full::new(Bytes::new())).unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let hsts = resp.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned();
    (status, body, hsts)
}

/// GET over verified HTTPS: status, body, leaf certificate DER.
async fn https_get(addr: SocketAddr, sni: &str, root_pem: &str, path: &str) -> std::io::Result<(u16, String, Vec<u8>)> {
    let (tls, leaf) = tls_connect(addr, sni, root_pem).await?;
    let mut s = h1(tls).await;
    let (status, body, _) = send(&mut s, sni, path).await;
    Ok((status, body, leaf))
}

struct Edge {
    handle: EdgeHandle,
    log: Arc<MemoryLog>,
    https: SocketAddr,
}

impl Edge {
    fn metric(&self, name: &str) -> u64 {
        metric(&self.handle.metrics_text(), name)
    }
    fn log_events(&self, event: &str) -> Vec<serde_json::Value> {
        self.log
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

const STARTED: &str = "berth_edge_acme_orders_total{result=\"started\"}";
const SUCCEEDED: &str = "berth_edge_acme_orders_total{result=\"succeeded\"}";
const FAILED: &str = "berth_edge_acme_orders_total{result=\"failed\"}";
const LOADED: &str = "berth_edge_acme_certs_loaded_total";

/// The edge config for ACME from `pebble` for `domain`, with a static site at `/`.
fn acme_config(
    pebble: &Pebble,
    p: &Ports,
    domain: &str,
    store: &Path,
    site: &Path,
    tls: serde_json::Value,
) -> EdgeConfig {
    let mut t = json!({
        "mode": "acme",
        "directory": pebble.directory,
        "ca_file": pebble.https_ca,
        "email": "ops@h1acme.test",
        "store": store,
        "renew_check_ms": 200,
        "retry_min_ms": 200
    });
    for (k, v) in tls.as_object().unwrap() {
        t[k] = v.clone();
    }
    let cfg = json!({
        "domains": [domain],
        "listen": "127.0.0.1",
        "http_port": p.http,
        "https_port": p.https,
        "admin_addr": null,
        "tls": t,
        "statics": [{"path": "/", "root": site}]
    });
    EdgeConfig::from_json(&cfg.to_string(), Path::new("/test/edge.json")).unwrap()
}

async fn start_edge(cfg: EdgeConfig) -> Edge {
    let log = Arc::new(MemoryLog::default());
    let opts = EdgeOptions { resolver: Arc::new(StaticResolver::new()), access_log: log.clone(), workers: 0 };
    let handle = berth_edge::start(cfg, opts).await.unwrap();
    let https = handle.https_addr.unwrap();
    Edge { handle, log, https }
}

fn site() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("hello.txt"), "hello over acme\n").unwrap();
    d
}

/// Waits up to `secs` for `f`, then panics with `why()`.
async fn until(secs: u64, mut f: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in {secs}s: {}", why());
}

async fn issued(e: &Edge, pebble: &Pebble, n: u64) {
    until(
        30,
        || metric(&e.handle.metrics_text(), SUCCEEDED) >= n,
        || format!("{}\nedge log: {:?}\npebble: {}", e.handle.metrics_text(), e.log.0.lock().unwrap(), pebble.log()),
    )
    .await;
}

#[tokio::test]
async fn http01_certificate_verifies_against_pebbles_root_with_hsts_and_redirect() {
    need_pebble!();
    let p = ports(0);
    let pebble = Pebble::start(&p).await;
    let (store, site) = (tempfile::tempdir().unwrap(), site());
    let domain = "app.h1acme.test";
    let cfg = acme_config(&pebble, &p, domain, store.path(), site.path(), json!({"challenges": ["http-01"]}));
    let e = start_edge(cfg).await;
    issued(&e, &pebble, 1).await;
    let ts = |ev: &str| e.log_events(ev)[0]["ts_ms"].as_u64().unwrap();
    eprintln!("HTTP-01 order to certificate against pebble: {} ms", ts("acme_issued") - ts("acme_order"));
    // pebble fetched the token over plain HTTP (the access log has its request).
    let challenge = e.log_events("acme_challenge");
    assert_eq!(challenge.len(), 1);
    assert_eq!(challenge[0]["type"], "http-01");
    let fetched = e.log.0.lock().unwrap().iter().any(|l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["path"].as_str().is_some_and(|p| p.starts_with("/.well-known/acme-challenge/")) && v["status"] == 200
    });
    assert!(fetched, "{:?}", e.log.0.lock().unwrap());

    // A real HTTPS request, verified against the root pebble issues under.
    let root = pebble.root_pem().await;
    let (tls, _) = tls_connect(e.https, domain, &root).await.unwrap();
    let mut s = h1(tls).await;
    let (status, body, hsts) = send(&mut s, domain, "/hello.txt").await;
    assert_eq!((status, body.as_str()), (200, "hello over acme\n"));
    assert_eq!(hsts.as_deref(), Some("max-age=31536000"));
    // Not trusted by anything else (our own CA is not pebble's).
    let other = std::fs::read_to_string(&pebble.https_ca).unwrap();
    assert!(tls_connect(e.https, domain, &other).await.is_err());

    // Plain HTTP redirects, except ACME challenges (an unknown token is a 404, not a redirect).
    let http = e.handle.http_addr.unwrap();
    let r = common::get(http, domain, "/hello.txt", &[]).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location").as_deref(), Some(format!("https://{domain}:{}/hello.txt", p.https).as_str()));
    let r = common::get(http, domain, "/.well-known/acme-challenge/nope", &[]).await;
    assert_eq!(r.status, 404);

    // The store: account and certificate, owner-only files.
    let dir = std::fs::read_dir(store.path()).unwrap().next().unwrap().unwrap().path();
    for f in ["account.json", &format!("{domain}.pem")] {
        let meta = std::fs::metadata(dir.join(f)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f}");
    }
    assert_eq!(e.metric(STARTED), 1);
    assert_eq!(e.metric(FAILED), 0);
    e.handle.shutdown();
}

#[tokio::test]
async fn tls_alpn01_certificate_is_issued_and_served() {
    need_pebble!();
    let p = ports(1);
    let pebble = Pebble::start(&p).await;
    let (store, site) = (tempfile::tempdir().unwrap(), site());
    let domain = "alpn.h1acme.test";
    let cfg = acme_config(&pebble, &p, domain, store.path(), site.path(), json!({"challenges": ["tls-alpn-01"]}));
    let e = start_edge(cfg).await;
    issued(&e, &pebble, 1).await;
    let challenge = e.log_events("acme_challenge");
    assert_eq!(challenge.len(), 1);
    assert_eq!(challenge[0]["type"], "tls-alpn-01");
    // pebble's validation handshake used `acme-tls/1` (no request; the connection is closed after it).
    assert!(!e.log.0.lock().unwrap().iter().any(|l| l.contains("acme-challenge")));
    let root = pebble.root_pem().await;
    let (status, body, _) = https_get(e.https, domain, &root, "/hello.txt").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "hello over acme\n"));
    // After validation, an `acme-tls/1` hello gets no certificate at all.
    let mut cfg = (*client_config(&root)).clone();
    cfg.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(e.https).await.unwrap();
    let name = ServerName::try_from(domain.to_owned()).unwrap();
    assert!(tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.is_err());
    e.handle.shutdown();
}

#[tokio::test]
async fn restart_with_the_same_store_serves_the_same_certificate_without_a_new_order() {
    need_pebble!();
    let p = ports(2);
    let pebble = Pebble::start(&p).await;
    let (store, site) = (tempfile::tempdir().unwrap(), site());
    let domain = "restart.h1acme.test";
    let cfg = acme_config(&pebble, &p, domain, store.path(), site.path(), json!({}));
    let e = start_edge(cfg.clone()).await;
    issued(&e, &pebble, 1).await;
    let root = pebble.root_pem().await;
    let (_, _, first) = https_get(e.https, domain, &root, "/hello.txt").await.unwrap();
    e.handle.shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let orders_before = pebble.log().matches("POST /order-plz").count();
    let e = start_edge(cfg).await;
    // Served at once from the store (no wait for an order)...
    let (status, _, again) = https_get(e.https, domain, &root, "/hello.txt").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(first, again, "a restart served another certificate");
    // ... and, over several renewal checks, nothing is ordered.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(e.metric(LOADED), 1);
    assert_eq!(e.metric(STARTED), 0);
    assert_eq!(pebble.log().matches("POST /order-plz").count(), orders_before, "{}", pebble.log());
    e.handle.shutdown();
}

fn validity(der: &[u8]) -> (SystemTime, SystemTime) {
    let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
    let t = |s: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(s as u64);
    (t(c.validity().not_before.timestamp()), t(c.validity().not_after.timestamp()))
}

#[tokio::test]
async fn renewal_swaps_in_a_new_certificate_and_open_connections_keep_working() {
    need_pebble!();
    let p = ports(3);
    let pebble = Pebble::start(&p).await;
    let (store, site) = (tempfile::tempdir().unwrap(), site());
    let domain = "renew.h1acme.test";
    let cfg = acme_config(&pebble, &p, domain, store.path(), site.path(), json!({}));
    let e = start_edge(cfg).await;
    issued(&e, &pebble, 1).await;
    let root = pebble.root_pem().await;
    let (tls, first) = tls_connect(e.https, domain, &root).await.unwrap();
    let mut old_conn = h1(tls).await;
    assert_eq!(send(&mut old_conn, domain, "/hello.txt").await.0, 200);

    // Renew when less than (lifetime - 3 s) remains: due once the certificate is 3 s old; the new one then
    // is not due for another ~3 s.
    let (nb, na) = validity(&first);
    let lifetime = na.duration_since(nb).unwrap();
    let cfg = acme_config(
        &pebble,
        &p,
        domain,
        store.path(),
        site.path(),
        json!({"renew_before_ms": (lifetime - Duration::from_secs(3)).as_millis() as u64}),
    );
    e.handle.reload(cfg).unwrap();
    let started = Instant::now();
    let new = loop {
        let (_, _, leaf) = https_get(e.https, domain, &root, "/hello.txt").await.unwrap();
        if leaf != first {
            break leaf;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not renewed: {}", e.handle.metrics_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(validity(&new).0 >= nb, "the new certificate is not newer");
    // The connection opened before the renewal still works (it keeps its handshake).
    let (status, body, _) = send(&mut old_conn, domain, "/hello.txt").await;
    assert_eq!((status, body.as_str()), (200, "hello over acme\n"));
    // The renewed certificate was written to the store (a restart would reuse it).
    let dir = std::fs::read_dir(store.path()).unwrap().next().unwrap().unwrap().path();
    let pem = std::fs::read_to_string(dir.join(format!("{domain}.pem"))).unwrap();
    let stored: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes()).map(|c| c.unwrap().to_vec()).collect();
    assert!(stored.contains(&new) || e.metric(SUCCEEDED) > 1);
    e.handle.shutdown();
}

#[tokio::test]
async fn two_edges_sharing_a_store_order_once_and_serve_the_same_certificate() {
    need_pebble!();
    sharing_a_store(4, 14090, "http-01").await;
}

#[tokio::test]
async fn two_edges_sharing_a_store_answer_each_others_tls_alpn01_challenge() {
    need_pebble!();
    sharing_a_store(7, 14096, "tls-alpn-01").await;
}

async fn sharing_a_store(slot: u16, b_http: u16, challenge: &str) {
    let p = ports(slot);
    // pebble validates on edge A's ports; edge B has its own. Either may take the lock and order.
    let q = Ports { http: b_http, https: b_http + 1, ..ports(slot) };
    let pebble = Pebble::start(&p).await;
    let (store, site) = (tempfile::tempdir().unwrap(), site());
    let domain = &format!("shared{slot}.h1acme.test");
    let tls = json!({ "challenges": [challenge] });
    let a = start_edge(acme_config(&pebble, &p, domain, store.path(), site.path(), tls.clone())).await;
    let b = start_edge(acme_config(&pebble, &q, domain, store.path(), site.path(), tls)).await;
    let root = pebble.root_pem().await;
    let started = Instant::now();
    let (leaf_a, leaf_b) = loop {
        let la = https_get(a.https, domain, &root, "/hello.txt").await.ok().map(|r| r.2);
        let lb = https_get(b.https, domain, &root, "/hello.txt").await.ok().map(|r| r.2);
        if let (Some(la), Some(lb)) = (la, lb) {
            break (la, lb);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "A: {}\nB: {}\npebble: {}",
            a.handle.metrics_text(),
            b.handle.metrics_text(),
            pebble.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(leaf_a, leaf_b);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(a.metric(STARTED) + b.metric(STARTED), 1, "more than one order");
    assert_eq!(a.metric(FAILED) + b.metric(FAILED), 0);
    assert_eq!(pebble.log().matches("POST /order-plz").count(), 1, "{}", pebble.log());
    a.handle.shutdown();
    b.handle.shutdown();
}

#[tokio::test]
async fn unreachable_directory_is_reported_retried_with_backoff_and_http_keeps_serving() {
    // No pebble needed: nothing listens on the directory's port.
    let p = ports(5);
    let (store, site) = (tempfile::tempdir().unwrap(), site());
    let domain = "down.h1acme.test";
    let cfg = json!({
        "domains": [domain],
        "listen": "127.0.0.1",
        "http_port": 0,
        "https_port": 0,
        "admin_addr": null,
        "tls": {"mode": "acme", "directory": format!("https://127.0.0.1:{}/dir", p.acme), "store": store.path(),
                "retry_min_ms": 100, "redirect": false},
        "statics": [{"path": "/", "root": site.path()}]
    });
    let e = start_edge(EdgeConfig::from_json(&cfg.to_string(), Path::new("/test/edge.json")).unwrap()).await;
    until(10, || e.log_events("acme_order_failed").len() >= 4, || format!("{:?}", e.log.0.lock().unwrap())).await;
    let fails = e.log_events("acme_order_failed");
    let err = fails[0]["error"].as_str().unwrap();
    assert!(err.contains("ACME") && err.contains("Connection refused"), "{err}");
    assert!(fails[0]["directory"].as_str().unwrap().contains(&p.acme.to_string()));
    // Exponential backoff: each delay about twice the previous (±10 % jitter).
    let delays: Vec<u64> = fails.iter().map(|f| f["retry_in_ms"].as_u64().unwrap()).collect();
    for w in delays.windows(2) {
        assert!(w[1] as f64 >= w[0] as f64 * 1.6, "no backoff: {delays:?}");
    }
    assert!(delays[0] >= 90 && delays[0] <= 110, "{delays:?}");
    assert_eq!(e.metric(FAILED), e.metric(STARTED));
    // HTTP still serves; HTTPS has no certificate yet (handshake refused, not a wrong certificate).
    let r = common::get(e.handle.http_addr.unwrap(), domain, "/hello.txt", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "hello over acme\n"));
    assert!(tls_connect(e.https, domain, "").await.is_err());
    e.handle.shutdown();
}

#[tokio::test]
async fn replicas_with_separate_stores_elect_one_orderer_share_the_token_and_the_certificate() {
    need_pebble!();
    replicas(6, 14094, 14092, "http-01").await;
}

#[tokio::test]
async fn replicas_with_separate_stores_share_the_tls_alpn01_challenge() {
    need_pebble!();
    replicas(8, 14098, 14082, "tls-alpn-01").await;
}

/// pebble validates on edge A's ports; edge B has its own and the lower peer address, so B orders and A must
/// answer the validation with the token or certificate B pushed to it.
async fn replicas(slot: u16, b_http: u16, peer_port: u16, challenge: &str) {
    let p = ports(slot);
    let q = Ports { http: b_http, https: b_http + 1, ..ports(slot) };
    let (peer_a, peer_b): (SocketAddr, SocketAddr) =
        (format!("127.0.0.1:{}", peer_port + 1).parse().unwrap(), format!("127.0.0.1:{peer_port}").parse().unwrap());
    let pebble = Pebble::start(&p).await;
    let (store_a, store_b, site) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), site());
    let secret = tempfile::tempdir().unwrap();
    let token_file = secret.path().join("peer-token");
    std::fs::write(&token_file, "h1acme-peer-secret-0123456789abcdef\n").unwrap();
    let domain = &format!("peers{slot}.h1acme.test");
    let resolver = StaticResolver::new();
    resolver.set("h1acme_edge", vec![peer_a, peer_b]);
    let start = |ports: &Ports, store: &Path, listen: SocketAddr| {
        let cfg = acme_config(
            &pebble,
            ports,
            domain,
            store,
            site.path(),
            json!({"challenges": [challenge],
                   "peers": {"listen": listen.to_string(), "service": "h1acme_edge", "token_file": token_file}}),
        );
        let log = Arc::new(MemoryLog::default());
        let opts = EdgeOptions { resolver: Arc::new(resolver.clone()), access_log: log.clone(), workers: 0 };
        async move {
            let handle = berth_edge::start(cfg, opts).await.unwrap();
            let https = handle.https_addr.unwrap();
            Edge { handle, log, https }
        }
    };
    let a = start(&p, store_a.path(), peer_a).await;
    let b = start(&q, store_b.path(), peer_b).await;
    let root = pebble.root_pem().await;
    let started = Instant::now();
    let (leaf_a, leaf_b) = loop {
        let la = https_get(a.https, domain, &root, "/hello.txt").await.ok().map(|r| r.2);
        let lb = https_get(b.https, domain, &root, "/hello.txt").await.ok().map(|r| r.2);
        if let (Some(la), Some(lb)) = (la, lb) {
            break (la, lb);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "A: {}\n{:?}\nB: {}\n{:?}\npebble: {}",
            a.handle.metrics_text(),
            a.log.0.lock().unwrap(),
            b.handle.metrics_text(),
            b.log.0.lock().unwrap(),
            pebble.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(leaf_a, leaf_b);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!((a.metric(STARTED), b.metric(STARTED)), (0, 1), "B (lowest peer address) orders, A does not");
    assert_eq!(pebble.log().matches("POST /order-plz").count(), 1, "{}", pebble.log());
    let used = b.log_events("acme_challenge");
    assert_eq!(used.len(), 1);
    assert_eq!(used[0]["type"], challenge);
    // The validation reached A, which answered with B's token (HTTP-01: on A's access log).
    assert!(
        challenge != "http-01"
            || a.log
                .0
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("/.well-known/acme-challenge/") && l.contains("\"status\":200"))
    );
    // A keeps its own copy (a restart of A needs no peer).
    let dir_a = std::fs::read_dir(store_a.path()).unwrap().next().unwrap().unwrap().path();
    assert!(dir_a.join(format!("{domain}.pem")).exists());
    // On the wire the bundle is sealed: no PEM, no key.
    let tcp = tokio::net::TcpStream::connect(peer_b).await.unwrap();
    let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(format!("/berth-edge/peer/v1/cert/{domain}"))
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = s.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(body.len() > 500 && !body.windows(5).any(|w| w == b"BEGIN"));
    a.handle.shutdown();
    b.handle.shutdown();
}

#[tokio::test]
async fn renew_before_longer_than_the_lifetime_backs_off_instead_of_ordering_at_every_check() {
    need_pebble!();
    let p = ports(9);
    let pebble = Pebble::start(&p).await;
    let (store, site) = (tempfile::tempdir().unwrap(), site());
    let domain = "toolong.h1acme.test";
    // Ten years: every pebble certificate (5 years) is due as soon as it is issued. Checks every 200 ms.
    let tls = json!({"renew_before_ms": 315_360_000_000u64, "retry_min_ms": 1500});
    let e = start_edge(acme_config(&pebble, &p, domain, store.path(), site.path(), tls)).await;
    issued(&e, &pebble, 1).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    // The next orders 1.5 s, then 3 s later: 2 in these 3 s (one per check would be one per order's
    // duration, ~5).
    let orders = e.metric(STARTED);
    assert_eq!(orders, 2, "{orders} orders");
    let delays: Vec<u64> =
        e.log_events("acme_due_at_once").iter().map(|v| v["retry_in_ms"].as_u64().unwrap()).collect();
    assert!(delays.windows(2).all(|w| w[1] as f64 >= w[0] as f64 * 1.6), "{delays:?}");
    e.handle.shutdown();
}

#[tokio::test]
async fn an_order_lock_left_by_a_crashed_edge_is_taken_over_and_a_live_one_is_respected() {
    need_pebble!();
    let p = ports(10);
    let pebble = Pebble::start(&p).await;
    let (store, site) = (tempfile::tempdir().unwrap(), site());
    let domain = "lock.h1acme.test";
    let dir: String = pebble
        .directory
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect();
    let lock = store.path().join(dir).join(format!("{domain}.lock"));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    // A live holder (just touched): this edge waits.
    std::fs::write(&lock, "1").unwrap();
    let e = start_edge(acme_config(&pebble, &p, domain, store.path(), site.path(), json!({}))).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(e.metric(STARTED), 0, "ordered while another edge holds the lock");
    // The holder crashed: its lock is no longer touched and goes stale after 30 s; here it is backdated.
    let f = std::fs::OpenOptions::new().write(true).open(&lock).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(60)).unwrap();
    drop(f);
    issued(&e, &pebble, 1).await;
    assert!(!lock.exists(), "the lock is removed after the order");
    e.handle.shutdown();
}
