//! The edge's JSON configuration file (documented in `docs/edge.md`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default request body limit per route: 10 MiB.
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;
/// Default upstream timeout per route: 60 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// The whole edge configuration, as berth writes it from `x-berth`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Host names the edge answers for (besides hosts named by routes); any other Host/SNI gets 421.
    #[serde(default)]
    pub domains: Vec<String>,
    /// How HTTPS certificates are obtained.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Address the listeners bind to (default `0.0.0.0`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Plain HTTP port (default 80; 0 picks a free port; `null` disables the listener).
    #[serde(default = "default_http_port")]
    pub http_port: Option<u16>,
    /// HTTPS port (default 443; 0 picks a free port; `null` disables; ignored when `tls.mode` is `off`).
    #[serde(default = "default_https_port")]
    pub https_port: Option<u16>,
    /// Admin listener for `/healthz` and `/metrics` (default `127.0.0.1:9180`; `null` disables).
    #[serde(default = "default_admin")]
    pub admin_addr: Option<String>,
    /// Proxy routes: host + path prefix → service.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Static file mounts: host + path prefix → directory.
    #[serde(default)]
    pub statics: Vec<StaticConfig>,
    /// Send `Strict-Transport-Security` on HTTPS responses (default true).
    #[serde(default = "yes")]
    pub hsts: bool,
    /// Write one JSON line per request to stdout (default true).
    #[serde(default = "yes")]
    pub access_log: bool,
    /// Connection limits and timeouts.
    #[serde(default)]
    pub limits: Limits,
    /// How often backends are re-resolved and health-checked, in ms (default 1000).
    #[serde(default = "default_discovery")]
    pub discovery_interval_ms: u64,
    /// A request to a service with no healthy task waits this long (at most the route's timeout) for one to
    /// pass its health check before it gets `503`, in ms (default 5000; 0 answers at once).
    #[serde(default = "default_no_backend_wait")]
    pub no_backend_wait_ms: u64,
    /// On SIGTERM: how long open connections may finish before the process exits, in ms (default 10000).
    #[serde(default = "default_drain")]
    pub drain_ms: u64,
}

/// Certificate source for the HTTPS listener.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// `off`, `files`, `local-ca` or `acme`.
    #[serde(default)]
    pub mode: TlsMode,
    /// PEM certificate chains and keys (mode `files`); each is used for the configured domains it is valid for.
    #[serde(default)]
    pub certs: Vec<CertFiles>,
    /// Directory holding `ca.pem`/`ca.key` of the local CA (mode `local-ca`); created when missing.
    /// Without it the CA lives in memory only.
    #[serde(default)]
    pub ca_dir: Option<PathBuf>,
    /// Redirect plain HTTP to HTTPS (default true when TLS is on).
    #[serde(default = "yes")]
    pub redirect: bool,
    /// ACME directory URL (mode `acme`; default Let's Encrypt production).
    #[serde(default = "default_directory")]
    pub directory: String,
    /// Contact e-mail for the ACME account (mode `acme`).
    #[serde(default)]
    pub email: Option<String>,
    /// Directory keeping the ACME account key and certificates (mode `acme`; default `/var/lib/berth-edge`).
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// PEM file with the root CA the ACME directory's HTTPS certificate chains to (instead of the system
    /// roots), e.g. pebble's test CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// ACME challenge types in order of preference (default `["http-01", "tls-alpn-01"]`).
    #[serde(default = "default_challenges")]
    pub challenges: Vec<ChallengeKind>,
    /// Renew when less than this remains of a certificate's validity, in ms (default: a third of its lifetime).
    #[serde(default)]
    pub renew_before_ms: Option<u64>,
    /// How often certificates are checked for renewal, in ms (default one hour).
    #[serde(default = "default_renew_check")]
    pub renew_check_ms: u64,
    /// First retry delay after a failed order, in ms; doubled on each failure up to 24 h (default 60 s).
    #[serde(default = "default_retry_min")]
    pub retry_min_ms: u64,
    /// Edge replicas on several nodes: share certificates and HTTP-01 tokens over a peer endpoint, and let
    /// one replica order per domain (mode `acme`).
    #[serde(default)]
    pub peers: Option<PeerConfig>,
}

/// The ACME peer endpoint of edge replicas.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Address the peer endpoint listens on (`ip:port`); the other replicas are reached on the same port.
    pub listen: String,
    /// Swarm service of the edge; its replicas are found as `tasks.<service>`.
    pub service: String,
    /// File with the secret shared by the replicas (e.g. a Swarm secret), at least 16 bytes.
    pub token_file: PathBuf,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            mode: TlsMode::Off,
            certs: Vec::new(),
            ca_dir: None,
            redirect: true,
            directory: default_directory(),
            email: None,
            store: default_store(),
            ca_file: None,
            challenges: default_challenges(),
            renew_before_ms: None,
            renew_check_ms: default_renew_check(),
            retry_min_ms: default_retry_min(),
            peers: None,
        }
    }
}

/// An ACME challenge type the edge can answer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ChallengeKind {
    /// `http-01`: a token under `/.well-known/acme-challenge/` on port 80.
    #[serde(rename = "http-01")]
    Http01,
    /// `tls-alpn-01`: a self-signed certificate presented to `acme-tls/1` hellos on port 443.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

fn default_directory() -> String {
    LETS_ENCRYPT_DIRECTORY.into()
}
fn default_store() -> PathBuf {
    PathBuf::from("/var/lib/berth-edge")
}
fn default_challenges() -> Vec<ChallengeKind> {
    vec![ChallengeKind::Http01, ChallengeKind::TlsAlpn01]
}
fn default_renew_check() -> u64 {
    3_600_000
}
fn default_retry_min() -> u64 {
    60_000
}

/// Where HTTPS certificates come from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// No HTTPS listener; plain HTTP serves the routes.
    #[default]
    Off,
    /// Certificates and keys read from PEM files.
    Files,
    /// Certificates issued on the fly by a local CA (development, `*.localhost`).
    LocalCa,
    /// Certificates from an ACME server (HTTP-01 / TLS-ALPN-01), kept in `tls.store` and renewed.
    Acme,
}

/// One certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertFiles {
    /// PEM file with the leaf certificate first, then intermediates.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A proxy route.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Host this route is limited to; `null` means every configured domain.
    #[serde(default)]
    pub host: Option<String>,
    /// Path prefix, matched on segment boundaries (`/api` matches `/api` and `/api/x`, not `/apix`).
    pub path: String,
    /// Remove the prefix before forwarding (default false).
    #[serde(default)]
    pub strip_prefix: bool,
    /// The service whose tasks serve this route.
    pub backend: BackendConfig,
    /// Request body limit in bytes (default 10 MiB); larger bodies get 413.
    #[serde(default = "default_max_body")]
    pub max_body: u64,
    /// Time to wait for the backend's response head, in ms (default 60000); then 504.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

/// The backend service of a route.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Swarm service name; its tasks are found as `tasks.<service>`.
    pub service: String,
    /// Container port.
    pub port: u16,
    /// HTTP health-check path; without it a TCP connect is the check.
    #[serde(default)]
    pub health: Option<String>,
}

/// A static file mount.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// Host this mount is limited to; `null` means every configured domain.
    #[serde(default)]
    pub host: Option<String>,
    /// URL path prefix.
    pub path: String,
    /// Directory served (relative paths are taken from the config file's directory).
    pub root: PathBuf,
    /// Answer unknown paths with `index.html` (single-page apps).
    #[serde(default)]
    pub spa: bool,
}

/// Connection-level limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request head (request line + headers) in bytes; larger gets 431 (min 8192).
    pub max_header_bytes: usize,
    /// Most header fields in one request; more gets 431.
    pub max_headers: usize,
    /// Time a client has to send a complete request head, also the keep-alive idle timeout, in ms.
    pub header_timeout_ms: u64,
    /// Time a client has to finish the TLS handshake, in ms.
    pub tls_handshake_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_timeout_ms: 10_000,
            tls_handshake_timeout_ms: 10_000,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_listen() -> String {
    "0.0.0.0".into()
}
fn default_http_port() -> Option<u16> {
    Some(80)
}
fn default_https_port() -> Option<u16> {
    Some(443)
}
fn default_admin() -> Option<String> {
    Some("127.0.0.1:9180".into())
}
fn default_max_body() -> u64 {
    DEFAULT_MAX_BODY
}
fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_discovery() -> u64 {
    1000
}
fn default_no_backend_wait() -> u64 {
    5000
}
fn default_drain() -> u64 {
    10_000
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JSON did not parse or did not match the schema.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde's message.
        message: String,
    },
    /// A value is out of range or inconsistent; `key` is the dotted path (`routes.2.path`).
    #[error("{key}: {message}")]
    Invalid {
        /// Dotted key path of the bad value.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl EdgeConfig {
    /// Parses and validates a config from JSON text; `path` is used in messages and to resolve relative roots.
    pub fn from_json(text: &str, path: &Path) -> Result<EdgeConfig, ConfigError> {
        let mut cfg: EdgeConfig = serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if let Some(dir) = path.parent() {
            for s in &mut cfg.statics {
                if s.root.is_relative() {
                    s.root = dir.join(&s.root);
                }
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<EdgeConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        EdgeConfig::from_json(&text, path)
    }

    /// Checks ranges and consistency; host names are lower-cased.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let bad = |key: String, message: &str| ConfigError::Invalid { key, message: message.to_owned() };
        for (i, d) in self.domains.iter_mut().enumerate() {
            *d = d.to_ascii_lowercase();
            if !valid_host(d) {
                return Err(bad(format!("domains.{i}"), "not a host name"));
            }
        }
        for (i, r) in self.routes.iter_mut().enumerate() {
            check_prefix(&r.path).map_err(|m| bad(format!("routes.{i}.path"), m))?;
            if let Some(h) = &mut r.host {
                *h = h.to_ascii_lowercase();
                if !valid_host(h) {
                    return Err(bad(format!("routes.{i}.host"), "not a host name"));
                }
            }
            if r.backend.service.is_empty() {
                return Err(bad(format!("routes.{i}.backend.service"), "empty service name"));
            }
            if r.backend.port == 0 {
                return Err(bad(format!("routes.{i}.backend.port"), "port must be 1-65535"));
            }
            if let Some(h) = &r.backend.health
                && !h.starts_with('/')
            {
                return Err(bad(format!("routes.{i}.backend.health"), "health path must start with `/`"));
            }
            if r.timeout_ms == 0 {
                return Err(bad(format!("routes.{i}.timeout_ms"), "timeout must be > 0"));
            }
        }
        for (i, s) in self.statics.iter_mut().enumerate() {
            check_prefix(&s.path).map_err(|m| bad(format!("statics.{i}.path"), m))?;
            if let Some(h) = &mut s.host {
                *h = h.to_ascii_lowercase();
                if !valid_host(h) {
                    return Err(bad(format!("statics.{i}.host"), "not a host name"));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, (host, path)) in self
            .routes
            .iter()
            .map(|r| (&r.host, &r.path))
            .chain(self.statics.iter().map(|s| (&s.host, &s.path)))
            .enumerate()
        {
            let key = (host.clone(), path.trim_end_matches('/').to_owned());
            if !seen.insert(key) {
                let k = if i < self.routes.len() {
                    format!("routes.{i}.path")
                } else {
                    format!("statics.{}.path", i - self.routes.len())
                };
                return Err(bad(k, "the same host and path prefix is routed twice"));
            }
        }
        if self.limits.max_header_bytes < 8192 {
            return Err(bad("limits.max_header_bytes".into(), "must be at least 8192"));
        }
        match self.tls.mode {
            TlsMode::Files if self.tls.certs.is_empty() => {
                return Err(bad("tls.certs".into(), "mode `files` needs at least one {cert, key}"));
            }
            TlsMode::Acme => {
                if !self.tls.directory.starts_with("https://") && !self.tls.directory.starts_with("http://") {
                    return Err(bad("tls.directory".into(), "expected an http(s) URL"));
                }
                if self.tls.challenges.is_empty() {
                    return Err(bad("tls.challenges".into(), "at least one of `http-01`, `tls-alpn-01`"));
                }
                if self.tls.challenges.contains(&ChallengeKind::Http01) && self.http_port.is_none() {
                    return Err(bad("tls.challenges".into(), "`http-01` needs the plain HTTP listener (http_port)"));
                }
                if self.https_port.is_none() {
                    return Err(bad("https_port".into(), "mode `acme` needs the HTTPS listener"));
                }
                if self.tls.renew_check_ms == 0 || self.tls.retry_min_ms == 0 {
                    return Err(bad("tls.renew_check_ms".into(), "renew_check_ms and retry_min_ms must be > 0"));
                }
                if let Some(p) = &self.tls.peers {
                    if p.listen.parse::<SocketAddr>().is_err() {
                        return Err(bad("tls.peers.listen".into(), "expected ip:port, e.g. 0.0.0.0:9181"));
                    }
                    if p.service.is_empty() {
                        return Err(bad("tls.peers.service".into(), "empty service name"));
                    }
                }
            }
            _ => {}
        }
        if let Some(a) = &self.admin_addr
            && a.parse::<SocketAddr>().is_err()
        {
            return Err(bad("admin_addr".into(), "expected ip:port, e.g. 127.0.0.1:9180"));
        }
        if self.discovery_interval_ms == 0 {
            return Err(bad("discovery_interval_ms".into(), "must be > 0"));
        }
        Ok(())
    }

    /// Every host name the edge answers for: `domains` plus hosts named by routes and statics.
    pub fn known_hosts(&self) -> Vec<String> {
        let mut v: Vec<String> = self.domains.clone();
        for h in
            self.routes.iter().filter_map(|r| r.host.clone()).chain(self.statics.iter().filter_map(|s| s.host.clone()))
        {
            if !v.contains(&h) {
                v.push(h);
            }
        }
        v
    }
}

fn check_prefix(p: &str) -> Result<(), &'static str> {
    if !p.starts_with('/') {
        return Err("path prefix must start with `/`");
    }
    if p.split('/').any(|s| s == ".." || s == ".") || p.contains(['?', '#', '%', '\\']) {
        return Err("path prefix must be a plain path (no `..`, `?`, `#`, `%`)");
    }
    Ok(())
}

fn valid_host(h: &str) -> bool {
    let h = h.strip_prefix("*.").unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}
