//! Counts full TLS handshakes per second against a server (no session resumption, SNI set, certificate chain
//! not checked but handshake signatures verified): `tls-handshakes ADDR SERVER_NAME SECONDS THREADS`.
//! Used by `bench/edge.sh` because `openssl s_time` cannot send SNI.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: tls-handshakes ADDR SERVER_NAME SECONDS THREADS");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let name = ServerName::try_from(args[2].clone()).expect("server name");
    let secs: u64 = args[3].parse().expect("seconds");
    let threads: usize = args[4].parse().expect("threads");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    cfg.resumption = rustls::client::Resumption::disabled();
    let cfg = Arc::new(cfg);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (cfg, name, addr) = (cfg.clone(), name.clone(), addr.clone());
            let (done, failed, stop) = (done.clone(), failed.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = (|| -> std::io::Result<()> {
                        let mut sock = TcpStream::connect(&addr)?;
                        sock.set_nodelay(true)?;
                        let mut conn =
                            rustls::ClientConnection::new(cfg.clone(), name.clone()).map_err(std::io::Error::other)?;
                        while conn.is_handshaking() {
                            conn.complete_io(&mut sock)?;
                        }
                        conn.send_close_notify();
                        let _ = conn.complete_io(&mut sock);
                        let _ = sock.flush();
                        Ok(())
                    })();
                    if ok.is_ok() { &done } else { &failed }.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let el = start.elapsed().as_secs_f64();
    println!(
        "{:.0} handshakes/s ({} ok, {} failed)",
        done.load(Ordering::Relaxed) as f64 / el,
        done.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
}
