//! TLS policy with hand-written ClientHellos (a modern client library cannot even offer the old things):
//! TLS 1.0/1.1 refused, TLS 1.2 only with ECDHE + AEAD ciphers, unknown SNI refused.

mod common;

use berth_edge::resolver::StaticResolver;
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ECDHE_ECDSA_AES128_GCM: u16 = 0xc02b;
const ECDHE_RSA_AES128_GCM: u16 = 0xc02f;
const RSA_AES128_CBC_SHA: u16 = 0x002f;
const ECDHE_ECDSA_AES128_CBC_SHA: u16 = 0xc009;
const ECDHE_RSA_AES128_CBC_SHA: u16 = 0xc013;
const ECDHE_ECDSA_AES128_CBC_SHA256: u16 = 0xc023;
const RSA_3DES_EDE_CBC_SHA: u16 = 0x000a;

fn ext(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// A TLS 1.2-style ClientHello (no `supported_versions`, so `version` is what is offered).
fn client_hello(version: u16, suites: &[u16], sni: &str) -> Vec<u8> {
    let mut exts = Vec::new();
    let mut sn = Vec::new();
    sn.extend_from_slice(&((sni.len() + 3) as u16).to_be_bytes());
    sn.push(0);
    sn.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    sn.extend_from_slice(sni.as_bytes());
    ext(&mut exts, 0x0000, &sn);
    ext(&mut exts, 0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]); // x25519, secp256r1
    ext(&mut exts, 0x000b, &[1, 0]); // uncompressed points
    ext(&mut exts, 0x000d, &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]); // ecdsa p256, rsa-pss, rsa pkcs1
    ext(&mut exts, 0xff01, &[0]); // renegotiation_info

    let mut body = Vec::new();
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&[7u8; 32]);
    body.push(0); // session id
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);

    let mut hs = vec![1u8];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[derive(Debug, PartialEq)]
enum Answer {
    /// A ServerHello with this version and cipher suite.
    ServerHello(u16, u16),
    /// A fatal alert with this description.
    Alert(u8),
    /// Anything else (closed, timeout).
    Other(Vec<u8>),
}

async fn hello(addr: std::net::SocketAddr, version: u16, suites: &[u16], sni: &str) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&client_hello(version, suites, sni)).await.unwrap();
    let mut buf = vec![0u8; 5];
    let mut got = Vec::new();
    let read = async {
        s.read_exact(&mut buf).await?;
        got.extend_from_slice(&buf);
        let len = u16::from_be_bytes([buf[3], buf[4]]) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await?;
        got.extend_from_slice(&body);
        std::io::Result::Ok(())
    };
    if tokio::time::timeout(std::time::Duration::from_secs(3), read).await.is_err() {
        return Answer::Other(got);
    }
    match got.first() {
        // handshake: type 2 (ServerHello), 3 length bytes, version, 32 random, session id, suite
        Some(0x16) if got.len() > 44 && got[5] == 2 => {
            let v = u16::from_be_bytes([got[9], got[10]]);
            let sid = got[43] as usize;
            let suite = u16::from_be_bytes([got[44 + sid], got[45 + sid]]);
            Answer::ServerHello(v, suite)
        }
        Some(0x15) if got.len() >= 7 => Answer::Alert(got[6]),
        _ => Answer::Other(got),
    }
}

#[tokio::test]
async fn only_tls12_and_up_with_ecdhe_aead_ciphers() {
    let e = edge(
        json!({"domains": ["app.localhost"], "tls": {"mode": "local-ca"}, "statics": [{"path": "/", "root": "/nonexistent"}]}),
        StaticResolver::new(),
    )
    .await;
    let addr = e.handle.https_addr.unwrap();
    let modern = [ECDHE_ECDSA_AES128_GCM, ECDHE_RSA_AES128_GCM];
    // The control: the same hand-written hello with TLS 1.2 and AEAD suites gets a ServerHello.
    match hello(addr, 0x0303, &modern, "app.localhost").await {
        Answer::ServerHello(0x0303, suite) => assert!(modern.contains(&suite), "suite {suite:04x}"),
        other => panic!("TLS 1.2 + AES-GCM not accepted: {other:?}"),
    }
    // TLS 1.0 and 1.1: protocol_version alert, whatever the suites.
    for v in [0x0301, 0x0302] {
        let all = [RSA_AES128_CBC_SHA, ECDHE_RSA_AES128_CBC_SHA, ECDHE_ECDSA_AES128_CBC_SHA, ECDHE_ECDSA_AES128_GCM];
        assert_eq!(hello(addr, v, &all, "app.localhost").await, Answer::Alert(70), "version {v:04x}");
    }
    // TLS 1.2 without an ECDHE + AEAD suite (CBC, static RSA key exchange, 3DES): handshake_failure.
    let old = [RSA_AES128_CBC_SHA, ECDHE_RSA_AES128_CBC_SHA, ECDHE_ECDSA_AES128_CBC_SHA256, RSA_3DES_EDE_CBC_SHA];
    assert_eq!(hello(addr, 0x0303, &old, "app.localhost").await, Answer::Alert(40));
    // An unknown server name gets no certificate (never a default site).
    assert!(matches!(hello(addr, 0x0303, &modern, "other.example").await, Answer::Alert(_)));
    // Each refusal is counted (and the control connection, dropped mid-handshake, too).
    wait_for(|| e.handle.metrics_text().contains("berth_edge_tls_handshake_errors_total 5")).await;
}
