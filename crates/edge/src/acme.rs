//! ACME certificates (RFC 8555): a [`CertStore`] that orders a certificate per domain from an ACME directory
//! (Let's Encrypt by default, pebble in tests), answers HTTP-01 and TLS-ALPN-01 challenges, keeps the account
//! key and certificates in a store directory and renews in the background.
//!
//! Store layout, per directory URL (so switching directories never serves the other CA's certificates):
//! `<store>/<directory as a file name>/account.json`, `<domain>.pem` (private key + chain, one file so key and
//! certificate are replaced together), `<domain>.lock` (an order in progress) and `challenges/` (pending HTTP-01
//! key authorizations and TLS-ALPN-01 certificates). Every file is written with mode 0600 into a temporary
//! name and renamed. Edges sharing the store directory (restarts, or replicas with a shared volume) reuse
//! certificates, take turns through the lock file (only one orders a domain at a time) and answer each other's
//! pending challenges.
//!
//! Renewal: a certificate is due when less than `tls.renew_before_ms` (default a third of its lifetime, plus a
//! random part of up to an eighth of the rest, so certificates and replicas spread out) remains. Domains are
//! ordered one after the other; a failed order is retried after `tls.retry_min_ms`, doubling up to 24 h (with
//! jitter). A new certificate is swapped in for new handshakes; open connections keep theirs.
//!
//! Replicas on several nodes without a shared store use the peer endpoint (`tls.peers`, module `peer`).

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rustls::crypto::ring as provider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ChallengeKind, TlsConfig};
use crate::metrics::AccessLog;
use crate::resolver::Resolver;
use crate::tls::{CertStore, TlsError};

/// Why an order (or loading the store) failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The ACME server or the connection to it failed.
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    /// The ACME server offered none of the configured challenge types.
    #[error("the ACME server offers none of the configured challenges ({0}) for `{1}`")]
    NoChallenge(String, String),
    /// The order ended in a state other than ready/valid.
    #[error("order for `{domain}` is {status}: {detail}")]
    Order {
        /// The domain.
        domain: String,
        /// Final order status.
        status: String,
        /// The server's problem document, if any.
        detail: String,
    },
    /// Key or CSR generation failed.
    #[error("key generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The issued or stored certificate could not be used.
    #[error("certificate: {0}")]
    Cert(String),
    /// The store directory could not be read or written.
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
}

/// A certificate in use, with its validity.
struct Issued {
    key: Arc<CertifiedKey>,
    pem: String,
    not_before: SystemTime,
    not_after: SystemTime,
    /// When the background task orders a replacement.
    renew_at: SystemTime,
}

#[derive(Debug, Default)]
struct Counters {
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    loaded: AtomicU64,
}

struct Settings {
    directory: String,
    email: Option<String>,
    dir: PathBuf,
    ca_file: Option<PathBuf>,
    challenges: Vec<ChallengeKind>,
    renew_before: Option<Duration>,
    renew_check: Duration,
    retry_min: Duration,
}

struct Inner {
    set: Settings,
    peer: Option<peer::Peer>,
    domains: Vec<String>,
    certs: RwLock<HashMap<String, Arc<Issued>>>,
    http_tokens: Mutex<HashMap<String, String>>,
    alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    counters: Counters,
    log: Arc<dyn AccessLog>,
    last_error: Mutex<HashMap<String, String>>,
}

/// Certificates from an ACME server, kept in a store directory and renewed in the background.
pub struct AcmeStore {
    inner: Arc<Inner>,
    task: Option<tokio::task::JoinHandle<()>>,
    peer_task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for AcmeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcmeStore")
            .field("directory", &self.inner.set.directory)
            .field("domains", &self.inner.domains)
            .finish_non_exhaustive()
    }
}

impl Drop for AcmeStore {
    fn drop(&mut self) {
        for t in [self.task.take(), self.peer_task.take()].into_iter().flatten() {
            t.abort();
        }
    }
}

/// `https://acme.example/dir` → `https___acme.example_dir`.
fn dir_name(url: &str) -> String {
    url.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A cheap random number (jitter only; not for keys).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

/// `d` scaled by a random factor in `[1 - f, 1 + f]`.
fn jitter(d: Duration, f: f64) -> Duration {
    let r = (random_u64() % 10_000) as f64 / 10_000.0; // [0, 1)
    d.mul_f64(1.0 - f + 2.0 * f * r)
}

/// Writes `data` to `path` atomically (temporary file, fsync, rename), readable by the owner only.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.{:x}.tmp", std::process::id(), random_u64()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let res = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn unix_time(secs: i64) -> SystemTime {
    if secs >= 0 { UNIX_EPOCH + Duration::from_secs(secs as u64) } else { UNIX_EPOCH }
}

/// Parses a PEM bundle (private key + chain, leaf first) into a usable certificate for `domain`.
fn parse_bundle(pem: &str, domain: &str) -> Result<(CertifiedKey, SystemTime, SystemTime), AcmeError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| AcmeError::Cert(e.to_string()))?;
    let leaf = chain.first().ok_or_else(|| AcmeError::Cert("no CERTIFICATE block".into()))?;
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| AcmeError::Cert(e.to_string()))?;
    let signing = provider::sign::any_supported_type(&key).map_err(|e| AcmeError::Cert(e.to_string()))?;
    let (_, x509) = x509_parser::parse_x509_certificate(leaf).map_err(|e| AcmeError::Cert(e.to_string()))?;
    let v = x509.validity();
    let (nb, na) = (unix_time(v.not_before.timestamp()), unix_time(v.not_after.timestamp()));
    let names: Vec<String> = x509
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    x509_parser::extensions::GeneralName::DNSName(n) => Some(n.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !names.iter().any(|n| n == domain) {
        return Err(AcmeError::Cert(format!("certificate does not name `{domain}` (names: {names:?})")));
    }
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| AcmeError::Cert(format!("key does not match certificate: {e}")))?;
    Ok((ck, nb, na))
}

impl Settings {
    fn cert_path(&self, domain: &str) -> PathBuf {
        self.dir.join(format!("{domain}.pem"))
    }
    fn lock_path(&self, domain: &str) -> PathBuf {
        self.dir.join(format!("{domain}.lock"))
    }
    fn challenges_dir(&self) -> PathBuf {
        self.dir.join("challenges")
    }
    fn renew_at(&self, nb: SystemTime, na: SystemTime) -> SystemTime {
        let lifetime = na.duration_since(nb).unwrap_or_default();
        let before = self.renew_before.unwrap_or(lifetime / 3).min(lifetime);
        // Up to an eighth of the not-due part earlier, at random: certificates issued together, and
        // replicas, spread out (a 90-day certificate: renewed 30 to 37.5 days before expiry).
        let early = (lifetime - before).mul_f64((random_u64() % 10_000) as f64 / 80_000.0);
        na.checked_sub(before + early).unwrap_or(UNIX_EPOCH)
    }
}

impl Inner {
    fn event(&self, v: serde_json::Value) {
        let mut v = v;
        v["ts_ms"] = now_ms().into();
        self.log.line(&v.to_string());
    }

    fn issued(&self, domain: &str, pem: String) -> Result<Arc<Issued>, AcmeError> {
        let (ck, nb, na) = parse_bundle(&pem, domain)?;
        Ok(Arc::new(Issued {
            key: Arc::new(ck),
            pem,
            not_before: nb,
            not_after: na,
            renew_at: self.set.renew_at(nb, na),
        }))
    }

    /// Reads `<domain>.pem` from the store (`None` when missing, expired or unreadable).
    fn load_stored(&self, domain: &str) -> Option<Arc<Issued>> {
        let pem = std::fs::read_to_string(self.set.cert_path(domain)).ok()?;
        match self.issued(domain, pem) {
            Ok(i) if i.not_after > SystemTime::now() => Some(i),
            Ok(_) => None,
            Err(e) => {
                self.event(
                    serde_json::json!({"event": "acme_store_unreadable", "domain": domain, "error": e.to_string()}),
                );
                None
            }
        }
    }

    fn install(&self, domain: &str, issued: Arc<Issued>) {
        self.certs.write().unwrap_or_else(|e| e.into_inner()).insert(domain.to_owned(), issued);
    }

    fn current(&self, domain: &str) -> Option<Arc<Issued>> {
        self.certs.read().unwrap_or_else(|e| e.into_inner()).get(domain).cloned()
    }

    async fn account(&self) -> Result<Account, AcmeError> {
        let client = HttpClient::new(self.set.ca_file.as_deref())?;
        let builder = || Ok::<_, AcmeError>(Account::builder_with_http(Box::new(client.clone())));
        let path = self.set.dir.join("account.json");
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(creds) = serde_json::from_str::<AccountCredentials>(&text)
        {
            return Ok(builder()?.from_credentials(creds).await?);
        }
        let contact = self.set.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(|s| s.as_str()).collect();
        let (account, creds) = builder()?
            .create(
                &NewAccount { contact: &contacts, terms_of_service_agreed: true, only_return_existing: false },
                self.set.directory.clone(),
                None,
            )
            .await?;
        let json = serde_json::to_vec(&creds).map_err(|e| AcmeError::Cert(e.to_string()))?;
        write_atomic(&path, &json)?;
        Ok(account)
    }

    /// The TLS-ALPN-01 certificate (RFC 8737) and its PEM (key + certificate, for other edges).
    fn alpn_cert(domain: &str, digest: &[u8]) -> Result<(CertifiedKey, String), AcmeError> {
        let key = rcgen::KeyPair::generate()?;
        let mut p = rcgen::CertificateParams::new(vec![domain.to_owned()])?;
        p.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
        let cert = p.self_signed(&key)?;
        let pem = format!("{}{}", key.serialize_pem(), cert.pem());
        let ck = parse_alpn(&pem).ok_or_else(|| AcmeError::Cert("challenge certificate".into()))?;
        Ok((ck, pem))
    }

    /// One order for `domain`: challenge, CSR, certificate. Returns the PEM bundle (key + chain).
    async fn order(&self, account: &Account, domain: &str) -> Result<String, AcmeError> {
        let ids = [Identifier::Dns(domain.to_owned())];
        let mut order = account.new_order(&NewOrder::new(&ids)).await?;
        let mut published: Vec<(ChallengeKind, String)> = Vec::new();
        let res = async {
            let mut authzs = order.authorizations();
            while let Some(a) = authzs.next().await {
                let mut a = a?;
                match a.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    s => {
                        return Err(AcmeError::Order {
                            domain: domain.into(),
                            status: format!("{s:?}"),
                            detail: "authorization not pending".into(),
                        });
                    }
                }
                let offered: Vec<ChallengeType> = a.challenges.iter().map(|c| c.r#type.clone()).collect();
                let Some(kind) = self.set.challenges.iter().copied().find(|k| offered.contains(&acme_type(*k))) else {
                    let want: Vec<&str> = self.set.challenges.iter().map(|k| kind_name(*k)).collect();
                    return Err(AcmeError::NoChallenge(want.join(", "), domain.into()));
                };
                let mut ch = a.challenge(acme_type(kind)).expect("offered");
                let ka = ch.key_authorization();
                match kind {
                    ChallengeKind::Http01 => {
                        let token = ch.token.clone();
                        self.http_tokens
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(token.clone(), ka.as_str().to_owned());
                        // Replicas sharing the store answer it too.
                        let dir = self.set.challenges_dir();
                        create_private_dir(&dir)?;
                        if valid_token(&token) {
                            write_atomic(&dir.join(format!("http-{token}")), ka.as_str().as_bytes())?;
                        }
                        if let Some(peer) = &self.peer {
                            peer.push_token(&token, ka.as_str()).await;
                        }
                        published.push((kind, token));
                    }
                    ChallengeKind::TlsAlpn01 => {
                        let (ck, pem) = Self::alpn_cert(domain, ka.digest().as_ref())?;
                        self.alpn.lock().unwrap_or_else(|e| e.into_inner()).insert(domain.to_owned(), Arc::new(ck));
                        // Edges sharing the store, and peers, answer it too.
                        let dir = self.set.challenges_dir();
                        create_private_dir(&dir)?;
                        write_atomic(&dir.join(format!("alpn-{domain}.pem")), pem.as_bytes())?;
                        if let Some(peer) = &self.peer {
                            peer.push_alpn(domain, &pem).await;
                        }
                        published.push((kind, domain.to_owned()));
                    }
                }
                ch.set_ready().await?;
                self.event(serde_json::json!({"event": "acme_challenge", "domain": domain, "type": kind_name(kind)}));
            }
            let retry = RetryPolicy::new().initial_delay(Duration::from_millis(250)).timeout(Duration::from_secs(90));
            let status = order.poll_ready(&retry).await?;
            if status != OrderStatus::Ready {
                let detail = order.state().error.as_ref().map(|p| p.to_string()).unwrap_or_default();
                return Err(AcmeError::Order { domain: domain.into(), status: format!("{status:?}"), detail });
            }
            let key = rcgen::KeyPair::generate()?;
            let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])?;
            params.distinguished_name = rcgen::DistinguishedName::new();
            let csr = params.serialize_request(&key)?;
            order.finalize_csr(csr.der()).await?;
            let chain = order.poll_certificate(&retry).await?;
            Ok(format!("{}{}", key.serialize_pem(), chain))
        }
        .await;
        for (kind, id) in published {
            match kind {
                ChallengeKind::Http01 => {
                    self.http_tokens.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                    let _ = std::fs::remove_file(self.set.challenges_dir().join(format!("http-{id}")));
                }
                ChallengeKind::TlsAlpn01 => {
                    self.alpn.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                    let _ = std::fs::remove_file(self.set.challenges_dir().join(format!("alpn-{id}.pem")));
                }
            }
        }
        res
    }

    /// Takes the store's order lock for `domain`: a file created exclusively, touched every few seconds while
    /// the order runs; one untouched for [`LOCK_STALE`] is a crashed holder's and is taken over (PIDs mean
    /// nothing across containers). `None`: another edge is ordering.
    fn try_lock(&self, domain: &str) -> Option<LockFile> {
        let path = self.set.lock_path(domain);
        let open = || std::fs::OpenOptions::new().write(true).create_new(true).open(&path);
        let mut f = match open() {
            Ok(f) => f,
            Err(_) => {
                let stale = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > LOCK_STALE);
                if !stale || std::fs::remove_file(&path).is_err() {
                    return None;
                }
                open().ok()?
            }
        };
        let _ = write!(f, "{}", std::process::id());
        let touch = path.clone();
        let heartbeat = tokio::runtime::Handle::try_current().ok().map(|h| {
            h.spawn(async move {
                loop {
                    tokio::time::sleep(LOCK_STALE / 6).await;
                    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&touch) {
                        let _ = f.set_modified(SystemTime::now());
                    }
                }
            })
        });
        Some(LockFile(path, heartbeat))
    }

    /// Installs the store's certificate for `domain` when it is newer than the one in use; `true` when the
    /// certificate in use is then not due for renewal.
    fn adopt_stored(&self, domain: &str) -> bool {
        if let Some(stored) = self.load_stored(domain)
            && self.current(domain).is_none_or(|c| stored.not_after > c.not_after)
        {
            self.counters.loaded.fetch_add(1, Ordering::Relaxed);
            self.event(serde_json::json!({"event": "acme_loaded", "domain": domain}));
            self.install(domain, stored);
        }
        self.current(domain).is_some_and(|c| SystemTime::now() < c.renew_at)
    }

    /// Brings `domain` up to date: a fresher certificate from the store, else an order. `Ok(false)`: another
    /// edge holds the order lock (try again soon).
    async fn refresh(&self, account: &mut Option<Account>, domain: &str) -> Result<bool, AcmeError> {
        if self.adopt_stored(domain) {
            return Ok(true);
        }
        if let Some(peer) = &self.peer {
            // A newer certificate from another replica; else order only if no lower-addressed replica answers.
            if let Some(pem) = peer.fetch_cert(domain).await
                && let Ok(got) = self.issued(domain, pem)
                && got.not_after > SystemTime::now()
                && self.current(domain).is_none_or(|c| got.not_after > c.not_after)
            {
                write_atomic(&self.set.cert_path(domain), got.pem.as_bytes())?;
                self.counters.loaded.fetch_add(1, Ordering::Relaxed);
                self.event(serde_json::json!({"event": "acme_loaded", "domain": domain, "from": "peer"}));
                let due = SystemTime::now() >= got.renew_at;
                self.install(domain, got);
                if !due {
                    return Ok(true);
                }
            }
            if !peer.elect().await {
                return Ok(false);
            }
        }
        let Some(lock) = self.try_lock(domain) else { return Ok(false) };
        // Another edge may have finished an order between the look and the lock.
        if self.adopt_stored(domain) {
            return Ok(true);
        }
        let res = async {
            self.counters.started.fetch_add(1, Ordering::Relaxed);
            self.event(serde_json::json!({"event": "acme_order", "domain": domain, "directory": self.set.directory}));
            let acc = match account {
                Some(a) => a.clone(),
                None => {
                    let a = self.account().await?;
                    *account = Some(a.clone());
                    a
                }
            };
            let pem = self.order(&acc, domain).await?;
            let issued = self.issued(domain, pem)?;
            write_atomic(&self.set.cert_path(domain), issued.pem.as_bytes())?;
            Ok::<_, AcmeError>(issued)
        }
        .await;
        drop(lock);
        let issued = res?;
        self.counters.succeeded.fetch_add(1, Ordering::Relaxed);
        let valid_ms = issued.not_after.duration_since(issued.not_before).unwrap_or_default().as_millis() as u64;
        self.event(serde_json::json!({"event": "acme_issued", "domain": domain, "valid_ms": valid_ms}));
        self.install(domain, issued);
        Ok(true)
    }

    async fn run(self: Arc<Self>) {
        let mut account: Option<Account> = None;
        // Per domain: (current retry delay, not before).
        let mut backoff: HashMap<String, (Duration, Instant)> = HashMap::new();
        loop {
            let mut next = jitter(self.set.renew_check, 0.1);
            for domain in &self.domains {
                if let Some((_, at)) = backoff.get(domain) {
                    let left = at.saturating_duration_since(Instant::now());
                    if !left.is_zero() {
                        next = next.min(left);
                        continue;
                    }
                }
                let due = self.current(domain).is_none_or(|c| SystemTime::now() >= c.renew_at);
                if !due {
                    next = next.min(
                        self.current(domain)
                            .and_then(|c| c.renew_at.duration_since(SystemTime::now()).ok())
                            .unwrap_or_default()
                            .max(Duration::from_millis(50)),
                    );
                    continue;
                }
                match self.refresh(&mut account, domain).await {
                    Ok(true) if self.current(domain).is_some_and(|c| SystemTime::now() >= c.renew_at) => {
                        // A certificate due as soon as it is issued (`renew_before_ms` longer than the CA's
                        // lifetime): back off as after a failure instead of ordering at every check.
                        let delay = backoff.get(domain).map(|(d, _)| *d * 2).unwrap_or(self.set.retry_min);
                        let delay = delay.min(Duration::from_secs(24 * 3600));
                        let wait = jitter(delay, 0.1);
                        backoff.insert(domain.clone(), (delay, Instant::now() + wait));
                        next = next.min(wait);
                        self.event(serde_json::json!({"event": "acme_due_at_once", "domain": domain,
                            "error": "renew_before_ms is longer than the certificate's lifetime",
                            "retry_in_ms": wait.as_millis() as u64}));
                    }
                    Ok(true) => {
                        backoff.remove(domain);
                        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).remove(domain);
                    }
                    // Another edge is ordering: look again shortly (at the normal pace while a certificate
                    // is still being served).
                    Ok(false) if self.current(domain).is_none() => {
                        next = next.min(jitter(Duration::from_millis(500), 0.5))
                    }
                    Ok(false) => {}
                    Err(e) => {
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        if matches!(&e, AcmeError::Acme(instant_acme::Error::Api(p)) if p.r#type.as_deref().is_some_and(|t| t.ends_with(":accountDoesNotExist")))
                        {
                            let _ = std::fs::remove_file(self.set.dir.join("account.json"));
                            account = None;
                        }
                        let delay = backoff
                            .get(domain)
                            .map(|(d, _)| *d * 2)
                            .unwrap_or(self.set.retry_min)
                            .min(Duration::from_secs(24 * 3600));
                        let wait = jitter(delay, 0.1);
                        backoff.insert(domain.clone(), (delay, Instant::now() + wait));
                        next = next.min(wait);
                        let msg = e.to_string();
                        self.event(serde_json::json!({"event": "acme_order_failed", "domain": domain,
                            "directory": self.set.directory, "error": msg, "retry_in_ms": wait.as_millis() as u64}));
                        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).insert(domain.clone(), msg);
                    }
                }
            }
            tokio::time::sleep(next.max(Duration::from_millis(20))).await;
        }
    }
}

/// The HTTPS client to the ACME directory (hyper + rustls/ring). Roots: `tls.ca_file` when set, else the
/// system's, else (an image without a CA bundle, like berth's `FROM scratch` edge image) Mozilla's, built in.
#[derive(Clone)]
struct HttpClient(
    hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        instant_acme::BodyWrapper<bytes::Bytes>,
    >,
);

impl HttpClient {
    fn new(ca_file: Option<&Path>) -> Result<HttpClient, AcmeError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let bad = |e: String| AcmeError::Cert(format!("tls.ca_file {}: {e}", path.display()));
                for c in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
                    roots.add(c.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(bad("no CERTIFICATE block".into()));
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                if roots.is_empty() {
                    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
                }
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| AcmeError::Cert(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(HttpClient(client))
    }
}

impl instant_acme::HttpClient for HttpClient {
    fn request(
        &self,
        req: http::Request<instant_acme::BodyWrapper<bytes::Bytes>>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<instant_acme::BytesResponse, instant_acme::Error>> + Send>,
    > {
        let fut = self.0.request(req);
        Box::pin(async move {
            match tokio::time::timeout(Duration::from_secs(30), fut).await {
                Ok(Ok(resp)) => Ok(instant_acme::BytesResponse::from(resp)),
                Ok(Err(e)) => {
                    // hyper's own message is "client error (Connect)": add the causes.
                    let mut msg = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        msg = format!("{msg}: {s}");
                        src = s.source();
                    }
                    Err(instant_acme::Error::Other(msg.into()))
                }
                Err(_) => Err(instant_acme::Error::Str("no answer from the ACME server in 30 s")),
            }
        })
    }
}

/// An order lock in the store; removed when dropped (also when the task is aborted mid-order).
struct LockFile(PathBuf, Option<tokio::task::JoinHandle<()>>);

/// An order lock whose holder stopped touching it for this long is taken over.
const LOCK_STALE: Duration = Duration::from_secs(30);

impl Drop for LockFile {
    fn drop(&mut self) {
        if let Some(h) = self.1.take() {
            h.abort();
        }
        let _ = std::fs::remove_file(&self.0);
    }
}

fn acme_type(k: ChallengeKind) -> ChallengeType {
    match k {
        ChallengeKind::Http01 => ChallengeType::Http01,
        ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
    }
}

fn kind_name(k: ChallengeKind) -> &'static str {
    match k {
        ChallengeKind::Http01 => "http-01",
        ChallengeKind::TlsAlpn01 => "tls-alpn-01",
    }
}

/// A challenge certificate from its PEM (key + certificate).
fn parse_alpn(pem: &str) -> Option<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().ok()?;
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).ok()?;
    let signing = provider::sign::any_supported_type(&key).ok()?;
    (!chain.is_empty()).then(|| CertifiedKey::new(chain, signing))
}

/// ACME tokens are base64url; anything else is never looked up on disk.
fn valid_token(t: &str) -> bool {
    !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AcmeStore {
    /// Opens the store for `tls.directory` under `tls.store`, loads the stored certificates of `hosts` and
    /// starts the background task (on the current tokio runtime) that orders missing ones and renews.
    /// Wildcard hosts are skipped (they need DNS-01). Events go to `log` as JSON lines.
    pub fn open(
        tls: &TlsConfig,
        hosts: &[String],
        log: Arc<dyn AccessLog>,
        resolver: Arc<dyn Resolver>,
    ) -> Result<AcmeStore, TlsError> {
        let set = Settings {
            directory: tls.directory.clone(),
            email: tls.email.clone(),
            dir: tls.store.join(dir_name(&tls.directory)),
            ca_file: tls.ca_file.clone(),
            challenges: tls.challenges.clone(),
            renew_before: tls.renew_before_ms.map(Duration::from_millis),
            renew_check: Duration::from_millis(tls.renew_check_ms),
            retry_min: Duration::from_millis(tls.retry_min_ms),
        };
        create_private_dir(&set.dir).map_err(|source| TlsError::AcmeStore { path: set.dir.clone(), source })?;
        let domains: Vec<String> = hosts.iter().filter(|h| !h.starts_with("*.")).cloned().collect();
        let (peer, listener) = match &tls.peers {
            Some(pc) => {
                let (p, l) = peer::Peer::open(pc, resolver)?;
                (Some(p), Some(l))
            }
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            peer,
            set,
            domains,
            certs: RwLock::new(HashMap::new()),
            http_tokens: Mutex::new(HashMap::new()),
            alpn: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            log,
            last_error: Mutex::new(HashMap::new()),
        });
        for h in hosts.iter().filter(|h| h.starts_with("*.")) {
            inner.event(serde_json::json!({"event": "acme_skipped", "domain": h, "error": "wildcards need DNS-01"}));
        }
        for d in &inner.domains {
            if let Some(i) = inner.load_stored(d) {
                inner.counters.loaded.fetch_add(1, Ordering::Relaxed);
                inner.install(d, i);
            }
        }
        let rt = tokio::runtime::Handle::try_current().ok();
        let task = rt.as_ref().map(|h| h.spawn(inner.clone().run()));
        let peer_task = match (rt, listener) {
            (Some(h), Some(l)) => {
                let _guard = h.enter();
                let l = tokio::net::TcpListener::from_std(l).map_err(TlsError::Io)?;
                Some(h.spawn(peer::serve(l, inner.clone())))
            }
            _ => None,
        };
        Ok(AcmeStore { inner, task, peer_task })
    }

    /// The last order error per domain (cleared by a success).
    pub fn last_errors(&self) -> HashMap<String, String> {
        self.inner.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl CertStore for AcmeStore {
    fn certificate(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        self.inner.current(server_name).map(|i| i.key.clone())
    }

    fn alpn_challenge(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        if let Some(ck) = self.inner.alpn.lock().unwrap_or_else(|e| e.into_inner()).get(server_name) {
            return Some(ck.clone());
        }
        if let Some(ck) = self.inner.peer.as_ref().and_then(|p| p.alpn(server_name)) {
            return Some(ck);
        }
        // Another edge sharing the store may be the one ordering (only `acme-tls/1` hellos get here).
        if !self.inner.domains.iter().any(|d| d == server_name) {
            return None;
        }
        let pem = std::fs::read_to_string(self.inner.set.challenges_dir().join(format!("alpn-{server_name}.pem")));
        pem.ok().and_then(|p| parse_alpn(&p)).map(Arc::new)
    }

    fn http_challenge(&self, token: &str) -> Option<String> {
        if let Some(ka) = self.inner.http_tokens.lock().unwrap_or_else(|e| e.into_inner()).get(token) {
            return Some(ka.clone());
        }
        // Pushed by the replica that is ordering.
        if let Some(ka) = self.inner.peer.as_ref().and_then(|p| p.token(token)) {
            return Some(ka);
        }
        // Another edge sharing the store may be the one ordering.
        if !valid_token(token) {
            return None;
        }
        std::fs::read_to_string(self.inner.set.challenges_dir().join(format!("http-{token}"))).ok()
    }

    fn metrics_text(&self) -> String {
        use std::fmt::Write as _;
        let c = &self.inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::from("# TYPE berth_edge_acme_orders_total counter\n");
        for (result, v) in [("started", &c.started), ("succeeded", &c.succeeded), ("failed", &c.failed)] {
            let _ = writeln!(out, "berth_edge_acme_orders_total{{result=\"{result}\"}} {}", g(v));
        }
        let _ = writeln!(
            out,
            "# TYPE berth_edge_acme_certs_loaded_total counter\nberth_edge_acme_certs_loaded_total {}",
            g(&c.loaded)
        );
        out.push_str("# TYPE berth_edge_acme_cert_expiry_seconds gauge\n");
        for d in &self.inner.domains {
            if let Some(i) = self.inner.current(d) {
                let t = i.not_after.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                let _ = writeln!(out, "berth_edge_acme_cert_expiry_seconds{{domain=\"{d}\"}} {t}");
            }
        }
        out
    }
}

/// The peer endpoint: replicas on several nodes share certificates and pending HTTP-01 tokens, and agree that
/// the replica with the lowest address among those answering orders.
///
/// Plain HTTP/1.1 on `tls.peers.listen` (the overlay network); secrets never travel in clear and the shared
/// token is never sent: certificate bundles and pushed tokens are sealed with AES-256-GCM under a key derived
/// from the token (SHA-256), bound to what they are (`cert:<domain>`, `http:<token>`), so only replicas holding
/// the token can read or inject them.
mod peer {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, Limited};
    use hyper::body::Incoming;
    use ring::aead;
    use ring::rand::{SecureRandom, SystemRandom};

    use rustls::sign::CertifiedKey;

    use super::{Inner, valid_token};
    use crate::config::PeerConfig;
    use crate::resolver::Resolver;
    use crate::tls::TlsError;

    const PREFIX: &str = "/berth-edge/peer/v1/";
    const TOKEN_TTL: Duration = Duration::from_secs(600);

    pub(super) struct Peer {
        service: String,
        port: u16,
        resolver: Arc<dyn Resolver>,
        key: aead::LessSafeKey,
        id: String,
        tokens: Mutex<HashMap<String, (String, Instant)>>,
        alpn: Mutex<HashMap<String, (Arc<CertifiedKey>, Instant)>>,
        /// Replicas that answered the last election (tokens are pushed to them).
        alive: Mutex<Vec<SocketAddr>>,
    }

    impl Peer {
        pub(super) fn open(
            cfg: &PeerConfig,
            resolver: Arc<dyn Resolver>,
        ) -> Result<(Peer, std::net::TcpListener), TlsError> {
            let bad = |m: String| TlsError::Pem { path: cfg.token_file.clone(), message: m };
            let secret = std::fs::read(&cfg.token_file).map_err(|e| bad(e.to_string()))?;
            let secret = secret.trim_ascii();
            if secret.len() < 16 {
                return Err(bad("the peer token must be at least 16 bytes".into()));
            }
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(b"berth-edge peer v1\0");
            ctx.update(secret);
            let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, ctx.finish().as_ref())
                .map_err(|_| bad("key derivation failed".into()))?;
            let mut idb = [0u8; 16];
            SystemRandom::new().fill(&mut idb).map_err(|_| bad("no randomness".into()))?;
            let addr: SocketAddr = cfg.listen.parse().map_err(|_| bad(format!("bad listen address {}", cfg.listen)))?;
            let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
            // A config reload opens the new store before the old one is dropped: both listen for a moment.
            sock.set_reuse_address(true)?;
            #[cfg(unix)]
            sock.set_reuse_port(true)?;
            sock.set_nonblocking(true)?;
            sock.bind(&addr.into())?;
            sock.listen(128)?;
            let peer = Peer {
                service: cfg.service.clone(),
                port: addr.port(),
                resolver,
                key: aead::LessSafeKey::new(unbound),
                id: idb.iter().map(|b| format!("{b:02x}")).collect(),
                tokens: Mutex::new(HashMap::new()),
                alpn: Mutex::new(HashMap::new()),
                alive: Mutex::new(Vec::new()),
            };
            Ok((peer, sock.into()))
        }

        fn seal(&self, what: &str, data: &[u8]) -> Option<Vec<u8>> {
            let mut nonce = [0u8; 12];
            SystemRandom::new().fill(&mut nonce).ok()?;
            let mut buf = data.to_vec();
            self.key
                .seal_in_place_append_tag(
                    aead::Nonce::assume_unique_for_key(nonce),
                    aead::Aad::from(what.as_bytes()),
                    &mut buf,
                )
                .ok()?;
            let mut out = nonce.to_vec();
            out.extend_from_slice(&buf);
            Some(out)
        }

        fn open_sealed(&self, what: &str, data: &[u8]) -> Option<Vec<u8>> {
            if data.len() < 12 + 16 {
                return None;
            }
            let nonce = aead::Nonce::try_assume_unique_for_key(&data[..12]).ok()?;
            let mut buf = data[12..].to_vec();
            let plain = self.key.open_in_place(nonce, aead::Aad::from(what.as_bytes()), &mut buf).ok()?;
            Some(plain.to_vec())
        }

        pub(super) fn token(&self, token: &str) -> Option<String> {
            let t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            t.get(token).filter(|(_, at)| at.elapsed() < TOKEN_TTL).map(|(ka, _)| ka.clone())
        }

        pub(super) fn alpn(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
            let t = self.alpn.lock().unwrap_or_else(|e| e.into_inner());
            t.get(domain).filter(|(_, at)| at.elapsed() < TOKEN_TTL).map(|(ck, _)| ck.clone())
        }

        /// Hands a pending TLS-ALPN-01 certificate (PEM with its key, sealed) to the other replicas.
        pub(super) async fn push_alpn(&self, domain: &str, pem: &str) {
            let Some(body) = self.seal(&format!("alpn:{domain}"), pem.as_bytes()) else { return };
            let alive = self.alive.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for a in alive {
                let _ = request(a, "PUT", &format!("{PREFIX}alpn/{domain}"), Bytes::from(body.clone())).await;
            }
        }

        async fn peers(&self) -> Vec<SocketAddr> {
            self.resolver.resolve(&self.service, self.port).await.unwrap_or_default()
        }

        /// The newest certificate bundle (PEM) for `domain` among the replicas that have one.
        pub(super) async fn fetch_cert(&self, domain: &str) -> Option<String> {
            let what = format!("cert:{domain}");
            let mut best: Option<String> = None;
            for a in self.peers().await {
                if let Some((200, body)) = request(a, "GET", &format!("{PREFIX}cert/{domain}"), Bytes::new()).await
                    && let Some(pem) = self.open_sealed(&what, &body).and_then(|p| String::from_utf8(p).ok())
                {
                    // Newest = latest notAfter; the caller validates and compares with its own.
                    let na = |p: &str| super::parse_bundle(p, domain).ok().map(|(_, _, na)| na);
                    if best.as_deref().and_then(na) < na(&pem) {
                        best = Some(pem);
                    }
                }
            }
            best
        }

        /// Whether this replica should order: no replica with a lower address answers. A replica that cannot
        /// find itself among the addresses orders only when no other replica answers.
        pub(super) async fn elect(&self) -> bool {
            let mut me = None;
            let mut others = Vec::new();
            for a in self.peers().await {
                match request(a, "GET", &format!("{PREFIX}id"), Bytes::new()).await {
                    Some((200, id)) if id.as_ref() == self.id.as_bytes() => me = Some(a),
                    Some((200, _)) => others.push(a),
                    _ => {}
                }
            }
            let lead = match me {
                Some(me) => others.iter().all(|o| *o > me),
                None => others.is_empty(),
            };
            *self.alive.lock().unwrap_or_else(|e| e.into_inner()) = others;
            lead
        }

        /// Hands a pending HTTP-01 token to the other replicas (the CA may reach any of them).
        pub(super) async fn push_token(&self, token: &str, key_auth: &str) {
            let Some(body) = self.seal(&format!("http:{token}"), key_auth.as_bytes()) else { return };
            let alive = self.alive.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for a in alive {
                let _ = request(a, "PUT", &format!("{PREFIX}http/{token}"), Bytes::from(body.clone())).await;
            }
        }
    }

    /// One request to a replica's peer endpoint (2 s for all of it); `None` on any failure.
    async fn request(addr: SocketAddr, method: &str, path: &str, body: Bytes) -> Option<(u16, Bytes)> {
        let go = async {
            let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.ok()?;
            tokio::spawn(conn);
            let req = http::Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, "berth-edge-peer")
                .body(Full::new(body))
                .ok()?;
            let resp = send.send_request(req).await.ok()?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), 1 << 20).collect().await.ok()?.to_bytes();
            Some((status, body))
        };
        tokio::time::timeout(Duration::from_secs(2), go).await.ok().flatten()
    }

    fn reply(status: u16, body: impl Into<Bytes>) -> http::Response<Full<Bytes>> {
        let mut r = http::Response::new(Full::new(body.into()));
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        r
    }

    async fn handle(inner: Arc<Inner>, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
        let Some(peer) = inner.peer.as_ref() else { return reply(404, "") };
        let path = req.uri().path().to_owned();
        let Some(rest) = path.strip_prefix(PREFIX) else { return reply(404, "") };
        match (req.method().as_str(), rest.split_once('/').unwrap_or((rest, ""))) {
            ("GET", ("id", "")) => reply(200, peer.id.clone()),
            ("GET", ("cert", domain)) => match inner.current(domain) {
                Some(c) => match peer.seal(&format!("cert:{domain}"), c.pem.as_bytes()) {
                    Some(b) => reply(200, b),
                    None => reply(500, ""),
                },
                None => reply(404, ""),
            },
            ("PUT", ("http", token)) if valid_token(token) => {
                let token = token.to_owned();
                let Ok(body) = Limited::new(req.into_body(), 4096).collect().await else { return reply(413, "") };
                match peer.open_sealed(&format!("http:{token}"), &body.to_bytes()) {
                    Some(ka) => {
                        let ka = String::from_utf8_lossy(&ka).into_owned();
                        let mut t = peer.tokens.lock().unwrap_or_else(|e| e.into_inner());
                        t.retain(|_, (_, at)| at.elapsed() < TOKEN_TTL);
                        t.insert(token, (ka, Instant::now()));
                        reply(204, "")
                    }
                    None => reply(403, ""),
                }
            }
            ("PUT", ("alpn", domain)) if inner.domains.iter().any(|d| d == domain) => {
                let domain = domain.to_owned();
                let Ok(body) = Limited::new(req.into_body(), 16384).collect().await else { return reply(413, "") };
                let ck = peer
                    .open_sealed(&format!("alpn:{domain}"), &body.to_bytes())
                    .and_then(|p| String::from_utf8(p).ok())
                    .and_then(|p| super::parse_alpn(&p));
                match ck {
                    Some(ck) => {
                        let mut t = peer.alpn.lock().unwrap_or_else(|e| e.into_inner());
                        t.retain(|_, (_, at)| at.elapsed() < TOKEN_TTL);
                        t.insert(domain, (Arc::new(ck), Instant::now()));
                        reply(204, "")
                    }
                    None => reply(403, ""),
                }
            }
            _ => reply(404, ""),
        }
    }

    /// Accept loop of the peer endpoint.
    pub(super) async fn serve(listener: tokio::net::TcpListener, inner: Arc<Inner>) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let inner = inner.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let inner = inner.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(inner, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
            });
        }
    }
}
