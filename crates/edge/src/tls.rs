//! Certificates: the [`CertStore`] interface, PEM files, a local CA, SNI selection and the rustls server config.
//!
//! ACME ([`crate::acme::AcmeStore`]) is another [`CertStore`]: it answers `certificate(host)` from its cache
//! (filled from its store directory or by ordering), TLS-ALPN-01 hellos through [`CertStore::alpn_challenge`] and
//! HTTP-01 requests through [`CertStore::http_challenge`], and renews in the background.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::ring as provider;
use rustls::server::{ClientHello, ResolvesServerCert, ResolvesServerCertUsingSni};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::acme::AcmeStore;
use crate::config::{TlsConfig, TlsMode};
use crate::metrics::AccessLog;
use crate::resolver::Resolver;

/// Why certificates could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A configured domain has no certificate among the files.
    #[error("no certificate in tls.certs is valid for `{0}`")]
    NoCertFor(String),
    /// rustls refused a key or configuration.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// rcgen could not generate a key or certificate.
    #[error("local CA: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The local CA directory could not be read or written.
    #[error("local CA directory: {0}")]
    Io(#[from] std::io::Error),
    /// The ACME store directory (`tls.store`) could not be created.
    #[error("ACME store {path}: {source}")]
    AcmeStore {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A source of server certificates by host name. Implementations: [`FileCertStore`], [`LocalCa`],
/// [`crate::acme::AcmeStore`].
pub trait CertStore: Send + Sync + fmt::Debug {
    /// The certificate to present for `server_name` (lower-case SNI), or `None` to refuse the handshake.
    fn certificate(&self, server_name: &str) -> Option<Arc<CertifiedKey>>;
    /// The TLS-ALPN-01 challenge certificate for `server_name`, for hellos offering only `acme-tls/1`.
    fn alpn_challenge(&self, _server_name: &str) -> Option<Arc<CertifiedKey>> {
        None
    }
    /// The HTTP-01 key authorization for `token` (`/.well-known/acme-challenge/<token>`), if one is pending.
    fn http_challenge(&self, _token: &str) -> Option<String> {
        None
    }
    /// Extra Prometheus text for `/metrics`.
    fn metrics_text(&self) -> String {
        String::new()
    }
}

/// The ALPN protocol of TLS-ALPN-01 validation hellos (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let pem_err = |path: &Path, message: String| TlsError::Pem { path: path.to_owned(), message };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_err(cert, "no CERTIFICATE block".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e.to_string()))?;
    let signing = provider::sign::any_supported_type(&key_der).map_err(|e| pem_err(key, e.to_string()))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| pem_err(key, format!("key does not match certificate: {e}")))?;
    Ok(ck)
}

/// Certificates read from PEM files, each assigned to the configured host names it is valid for.
#[derive(Debug)]
pub struct FileCertStore {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    wildcards: Vec<(String, Arc<CertifiedKey>)>,
}

impl FileCertStore {
    /// Loads every `(cert, key)` pair and maps each host in `hosts` (may be `*.domain`) to the first
    /// certificate valid for it; a host with no valid certificate is an error.
    pub fn load(files: &[(PathBuf, PathBuf)], hosts: &[String]) -> Result<FileCertStore, TlsError> {
        let keys = files.iter().map(|(c, k)| load_certified_key(c, k)).collect::<Result<Vec<_>, _>>()?;
        let mut by_name = HashMap::new();
        let mut wildcards = Vec::new();
        for host in hosts {
            // A wildcard domain is checked with a representative name under it.
            let probe = match host.strip_prefix("*.") {
                Some(base) => format!("berth-probe.{base}"),
                None => host.clone(),
            };
            let found = keys.iter().find(|ck| {
                let mut r = ResolvesServerCertUsingSni::new();
                r.add(&probe, (*ck).clone()).is_ok()
            });
            let ck = Arc::new(found.ok_or_else(|| TlsError::NoCertFor(host.clone()))?.clone());
            match host.strip_prefix("*.") {
                Some(base) => wildcards.push((base.to_owned(), ck)),
                None => {
                    by_name.insert(host.clone(), ck);
                }
            }
        }
        Ok(FileCertStore { by_name, wildcards })
    }
}

impl CertStore for FileCertStore {
    fn certificate(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        if let Some(ck) = self.by_name.get(server_name) {
            return Some(ck.clone());
        }
        let (_, parent) = server_name.split_once('.')?;
        self.wildcards.iter().find(|(base, _)| base == parent).map(|(_, ck)| ck.clone())
    }
}

/// A local certificate authority that issues a certificate per host name on first use (development mode).
pub struct LocalCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
    hosts: Vec<String>,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCa").field("hosts", &self.hosts).finish_non_exhaustive()
    }
}

fn ca_params() -> Result<rcgen::CertificateParams, rcgen::Error> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(rcgen::DnType::CommonName, "berth edge local CA");
    p.distinguished_name.push(rcgen::DnType::OrganizationName, "berth");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2044, 1, 1);
    Ok(p)
}

impl LocalCa {
    /// Creates a CA, or reuses `dir/ca.key` + `dir/ca.pem` when present (writing them when not); it will
    /// issue certificates for `hosts` (entries may be `*.domain`) and for any `*.localhost` name.
    pub fn open(dir: Option<&Path>, hosts: &[String]) -> Result<LocalCa, TlsError> {
        let (key, ca_pem) = match dir {
            Some(dir) if dir.join("ca.key").exists() => {
                let key_pem = std::fs::read_to_string(dir.join("ca.key"))?;
                let key = rcgen::KeyPair::from_pem(&key_pem)?;
                let ca_pem = match std::fs::read_to_string(dir.join("ca.pem")) {
                    Ok(p) => p,
                    Err(_) => ca_params()?.self_signed(&key)?.pem(),
                };
                (key, ca_pem)
            }
            _ => {
                let key = rcgen::KeyPair::generate()?;
                let ca_pem = ca_params()?.self_signed(&key)?.pem();
                if let Some(dir) = dir {
                    std::fs::create_dir_all(dir)?;
                    write_private(&dir.join("ca.key"), key.serialize_pem().as_bytes())?;
                    std::fs::write(dir.join("ca.pem"), ca_pem.as_bytes())?;
                }
                (key, ca_pem)
            }
        };
        Ok(LocalCa {
            issuer: rcgen::Issuer::new(ca_params()?, key),
            ca_pem,
            hosts: hosts.to_vec(),
            issued: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate (PEM) that clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn allowed(&self, name: &str) -> bool {
        if name.ends_with(".localhost") || name == "localhost" {
            return true;
        }
        self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(base) => name.split_once('.').is_some_and(|(_, p)| p == base),
            None => h == name,
        })
    }

    fn issue(&self, name: &str) -> Result<CertifiedKey, TlsError> {
        let key = rcgen::KeyPair::generate()?;
        let mut p = rcgen::CertificateParams::new(vec![name.to_owned()])?;
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2044, 1, 1);
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &self.issuer)?;
        let ca_der = CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .map_err(|e| TlsError::Pem { path: "ca.pem".into(), message: e.to_string() })?;
        let key_der = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| TlsError::Pem { path: "leaf key".into(), message: e.to_string() })?;
        let signing = provider::sign::any_supported_type(&key_der)?;
        Ok(CertifiedKey::new(vec![cert.der().clone(), ca_der], signing))
    }
}

impl CertStore for LocalCa {
    fn certificate(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        if !self.allowed(server_name) {
            return None;
        }
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ck) = issued.get(server_name) {
            return Some(ck.clone());
        }
        let ck = Arc::new(self.issue(server_name).ok()?);
        issued.insert(server_name.to_owned(), ck.clone());
        Some(ck)
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        f.write_all(data)
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, data)
    }
}

/// Builds the certificate store a [`TlsConfig`] asks for (`None` for mode `off`). Mode `acme` starts its
/// background task on the current tokio runtime, reports events to `log` and finds peer replicas through
/// `resolver`.
pub fn store_from_config(
    tls: &TlsConfig,
    hosts: &[String],
    log: Arc<dyn AccessLog>,
    resolver: Arc<dyn Resolver>,
) -> Result<Option<Arc<dyn CertStore>>, TlsError> {
    Ok(match tls.mode {
        TlsMode::Off => None,
        TlsMode::Files => {
            let files: Vec<_> = tls.certs.iter().map(|c| (c.cert.clone(), c.key.clone())).collect();
            Some(Arc::new(FileCertStore::load(&files, hosts)?))
        }
        TlsMode::LocalCa => Some(Arc::new(LocalCa::open(tls.ca_dir.as_deref(), hosts)?)),
        TlsMode::Acme => Some(Arc::new(AcmeStore::open(tls, hosts, log, resolver)?)),
    })
}

/// rustls SNI hook: looks the SNI name up in the current [`CertStore`], which a config reload can swap.
/// A hello without SNI, or with a name the store does not know, gets no certificate (handshake refused).
#[derive(Debug)]
pub struct SniResolver {
    store: ArcSwap<Option<Arc<dyn CertStore>>>,
}

impl SniResolver {
    /// A resolver answering from `store`.
    pub fn new(store: Option<Arc<dyn CertStore>>) -> SniResolver {
        SniResolver { store: ArcSwap::from_pointee(store) }
    }
    /// Replaces the store; handshakes already done keep their certificate.
    pub fn swap(&self, store: Option<Arc<dyn CertStore>>) {
        self.store.store(Arc::new(store));
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        let store = self.store.load();
        let store = store.as_ref().as_ref()?;
        // A TLS-ALPN-01 validation offers exactly `acme-tls/1`; it gets the challenge certificate, nothing else.
        let acme_only = hello.alpn().is_some_and(|mut a| a.next() == Some(ACME_TLS_ALPN) && a.next().is_none());
        if acme_only {
            return store.alpn_challenge(&name);
        }
        store.certificate(&name)
    }
}

/// The rustls server config: TLS 1.2 and 1.3 only, ring's AEAD/ECDHE suites, ALPN `h2` then `http/1.1`
/// (and `acme-tls/1`, only ever chosen by TLS-ALPN-01 validations, whose connections are closed after the
/// handshake).
pub fn server_config(resolver: Arc<SniResolver>) -> Result<ServerConfig, TlsError> {
    let mut provider = provider::default_provider();
    // ring's defaults are already modern (AES-GCM / ChaCha20-Poly1305 with ECDHE); keep only those explicitly.
    provider.cipher_suites.retain(|s| {
        use rustls::CipherSuite::*;
        matches!(
            s.suite(),
            TLS13_AES_128_GCM_SHA256
                | TLS13_AES_256_GCM_SHA384
                | TLS13_CHACHA20_POLY1305_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
                | TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        )
    });
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    Ok(cfg)
}
