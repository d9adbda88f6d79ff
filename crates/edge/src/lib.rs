//! berth's edge proxy: TLS termination (PEM files or a local CA, SNI), host + path-prefix routing to Swarm
//! services (found through `tasks.<service>` DNS, health-gated, drained, retried), static files, HTTP/1.1 + HTTP/2,
//! WebSockets, limits, a JSON access log, and `/healthz` + `/metrics` on an admin port.
//!
//! Entry points: [`serve`] (what `berth edge serve CONFIG` calls) and [`start`] (tests, embedding).

pub mod acme;
pub mod backends;
pub mod config;
pub mod forward;
pub mod handover;
pub mod metrics;
mod park;
pub mod proxy;
pub mod resolver;
pub mod statics;
pub mod tls;
pub mod workers;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::backends::Registry;
pub use crate::config::EdgeConfig;
use crate::config::TlsMode;
use crate::metrics::{AccessLog, Metrics, StdoutLog};
use crate::proxy::{ClientInfo, ProxyRoute};
use crate::resolver::{DnsResolver, Resolver};
use crate::statics::StaticMount;
use crate::tls::{CertStore, SniResolver};

/// Boxed error used by bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Body of requests sent upstream.
pub type ReqBody = UnsyncBoxBody<Bytes, BoxError>;
/// Body of responses sent to clients.
pub type RespBody = UnsyncBoxBody<Bytes, BoxError>;

pub(crate) fn empty() -> RespBody {
    Empty::<Bytes>::new().map_err(|e| match e {}).boxed_unsync()
}
pub(crate) fn full(b: Bytes) -> RespBody {
    Full::new(b).map_err(|e| match e {}).boxed_unsync()
}
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<RespBody> {
    let mut r = Response::new(full(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// Why the edge could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Certificates could not be loaded or made.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Listeners could not be received from `berth edge listen`.
    #[error(transparent)]
    Handover(#[from] handover::HandoverError),
    /// The handed-over listeners have no socket for a configured port.
    #[error("the listener socket hands over no listener for port {0} (`berth edge listen --port {0}`)")]
    NoListener(u16),
    /// A reload changed something only a restart applies (listeners, limits, TLS mode).
    #[error("`{0}` changed: restart the edge to apply it (routes were not changed)")]
    NeedsRestart(&'static str),
}

/// Pluggable parts of the edge.
#[derive(Clone)]
pub struct EdgeOptions {
    /// Backend discovery ([`DnsResolver`] in Swarm, `StaticResolver` in tests).
    pub resolver: Arc<dyn Resolver>,
    /// Access-log sink ([`StdoutLog`] by default); used when the config's `access_log` is true.
    pub access_log: Arc<dyn AccessLog>,
    /// Worker threads serving connections, each with its own single-threaded runtime (see [`workers`]). 0: connections
    /// run on the caller's runtime ([`start`]'s default); [`serve`] makes 0 one worker per core.
    pub workers: usize,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        EdgeOptions { resolver: Arc::new(DnsResolver), access_log: Arc::new(StdoutLog), workers: 0 }
    }
}

enum Target {
    Proxy(ProxyRoute),
    Static(StaticMount),
}

struct Entry {
    host: Option<String>,
    prefix: String,
    target: Target,
}

/// The routing table; swapped atomically on reload.
struct Table {
    hosts: Vec<String>,
    entries: Vec<Entry>,
    hsts: bool,
    redirect: bool,
    https_port: Option<u16>,
    access_log: bool,
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let p = prefix.trim_end_matches('/');
    path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Table {
    fn build(cfg: &EdgeConfig, registry: &Registry, resolver: &Arc<dyn Resolver>, https_port: Option<u16>) -> Table {
        let interval = Duration::from_millis(cfg.discovery_interval_ms);
        let mut entries = Vec::new();
        for r in &cfg.routes {
            let prefix = r.path.trim_end_matches('/').to_owned();
            let prefix = if prefix.is_empty() { "/".to_owned() } else { prefix };
            entries.push(Entry {
                host: r.host.clone(),
                prefix: prefix.clone(),
                target: Target::Proxy(ProxyRoute {
                    prefix,
                    strip_prefix: r.strip_prefix,
                    backends: registry.get(&r.backend, resolver, interval),
                    max_body: r.max_body,
                    timeout: Duration::from_millis(r.timeout_ms),
                    no_backend_wait: Duration::from_millis(cfg.no_backend_wait_ms),
                }),
            });
        }
        for s in &cfg.statics {
            let prefix = s.path.trim_end_matches('/').to_owned();
            let prefix = if prefix.is_empty() { "/".to_owned() } else { prefix };
            entries.push(Entry {
                host: s.host.clone(),
                prefix,
                target: Target::Static(StaticMount::new(s.root.clone(), s.spa)),
            });
        }
        // Entries naming the request's host are tried before host-less ones; within each group the longest
        // prefix wins.
        entries.sort_by(|a, b| b.host.is_some().cmp(&a.host.is_some()).then(b.prefix.len().cmp(&a.prefix.len())));
        Table {
            hosts: cfg.known_hosts(),
            entries,
            hsts: cfg.hsts,
            redirect: cfg.tls.mode != TlsMode::Off && cfg.tls.redirect,
            https_port: if cfg.tls.mode != TlsMode::Off { https_port } else { None },
            access_log: cfg.access_log,
        }
    }

    fn backend_sets(&self) -> impl Iterator<Item = &Arc<backends::BackendSet>> {
        self.entries.iter().filter_map(|e| match &e.target {
            Target::Proxy(r) => Some(&r.backends),
            Target::Static(_) => None,
        })
    }

    fn all_checked(&self) -> bool {
        self.backend_sets().all(|s| s.is_checked())
    }

    /// Waits (at most `limit`) for the first health check of every backend set.
    async fn wait_checked(&self, limit: Duration) {
        let all = futures_util::future::join_all(self.backend_sets().map(|s| s.checked()));
        let _ = tokio::time::timeout(limit, all).await;
    }

    fn known(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(base) => host.split_once('.').is_some_and(|(_, p)| p == base),
            None => h == host,
        })
    }

    fn lookup(&self, host: &str, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.host.as_deref().is_none_or(|h| h == host) && prefix_matches(&e.prefix, path))
    }
}

struct Shared {
    table: ArcSwap<Table>,
    config: Mutex<EdgeConfig>,
    registry: Registry,
    metrics: Metrics,
    sni: Arc<SniResolver>,
    store: Mutex<Option<Arc<dyn CertStore>>>,
    local_ca_pem: Mutex<Option<String>>,
    opts: EdgeOptions,
    https_port: Option<u16>,
    ids: AtomicU64,
    id_seed: u64,
    /// Bumped by every reload (a delayed table swap only happens if no newer reload came).
    table_generation: AtomicU64,
    /// Set when draining: HTTP/1 responses carry `Connection: close`.
    draining: AtomicBool,
    /// Connection lifecycle: 0 serving, 1 draining (finish and close), 2 closed (drop what is left).
    phase: tokio::sync::watch::Sender<u8>,
}

impl Shared {
    /// `/metrics` text: edge counters plus the certificate store's (ACME orders).
    fn metrics_text(&self) -> String {
        let mut out = self.metrics.render(&self.registry);
        if let Some(store) = self.store.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            out.push_str(&store.metrics_text());
        }
        out
    }
}

/// A running edge: its bound addresses, and control over it.
pub struct EdgeHandle {
    /// Bound plain-HTTP address, if enabled.
    pub http_addr: Option<SocketAddr>,
    /// Bound HTTPS address, if TLS is on.
    pub https_addr: Option<SocketAddr>,
    /// Bound admin address, if enabled.
    pub admin_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    /// The worker threads, when `EdgeOptions::workers` asked for them (stopped when the handle is dropped).
    _workers: Option<Arc<workers::Workers>>,
}

impl EdgeHandle {
    /// Applies a new configuration: routes, statics, domains, certificates, HSTS and logging are swapped
    /// atomically (open connections keep working); listener ports, limits and the TLS mode need a restart.
    pub fn reload(&self, mut cfg: EdgeConfig) -> Result<(), EdgeError> {
        cfg.validate()?;
        let mut cur = self.shared.config.lock().unwrap_or_else(|e| e.into_inner());
        if cfg.listen != cur.listen || cfg.http_port != cur.http_port || cfg.https_port != cur.https_port {
            return Err(EdgeError::NeedsRestart("listen/http_port/https_port"));
        }
        if cfg.admin_addr != cur.admin_addr {
            return Err(EdgeError::NeedsRestart("admin_addr"));
        }
        if cfg.limits != cur.limits {
            return Err(EdgeError::NeedsRestart("limits"));
        }
        if cfg.tls.mode != cur.tls.mode {
            return Err(EdgeError::NeedsRestart("tls.mode"));
        }
        if cfg.tls != cur.tls || cfg.known_hosts() != cur.known_hosts() {
            let store = tls::store_from_config(
                &cfg.tls,
                &cfg.known_hosts(),
                self.shared.opts.access_log.clone(),
                self.shared.opts.resolver.clone(),
            )?;
            self.shared.sni.swap(store.clone());
            *self.shared.store.lock().unwrap_or_else(|e| e.into_inner()) = store;
        }
        let table =
            Arc::new(Table::build(&cfg, &self.shared.registry, &self.shared.opts.resolver, self.shared.https_port));
        let generation = self.shared.table_generation.fetch_add(1, Ordering::SeqCst) + 1;
        match tokio::runtime::Handle::try_current() {
            // Routes to services the edge did not know yet switch over once their tasks were checked (bounded),
            // so a reload never answers 503 for a healthy service.
            Ok(rt) if !table.all_checked() => {
                let shared = self.shared.clone();
                rt.spawn(async move {
                    table.wait_checked(FIRST_CHECK_WAIT).await;
                    if shared.table_generation.load(Ordering::SeqCst) == generation {
                        shared.table.store(table);
                    }
                });
            }
            _ => self.shared.table.store(table),
        }
        *cur = cfg;
        Ok(())
    }

    /// The local CA's certificate (PEM) when `tls.mode` is `local-ca`: what clients must trust.
    pub fn local_ca_pem(&self) -> Option<String> {
        self.shared.local_ca_pem.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The `/metrics` text (same as the admin endpoint).
    pub fn metrics_text(&self) -> String {
        self.shared.metrics_text()
    }

    /// Stops accepting connections (open ones are dropped with the runtime or finish on their own).
    pub fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Graceful stop for a hand-over: stops accepting at once (another edge on the same listeners takes new
    /// connections), lets in-flight requests finish, answers the next request on HTTP/1 keep-alive connections
    /// with `Connection: close`, closes idle ones, sends HTTP/2 GOAWAY; whatever is still open after `grace` is
    /// dropped. Returns once every connection is closed or the grace period is over.
    pub async fn drain(self, grace: Duration) {
        for t in &self.tasks {
            t.abort();
        }
        let sh = &self.shared;
        sh.draining.store(true, Ordering::SeqCst);
        sh.phase.send_replace(1);
        let deadline = Instant::now() + grace;
        while sh.metrics.connections_open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sh.phase.send_replace(2);
    }

    /// Connections currently open on this edge.
    pub fn open_connections(&self) -> u64 {
        self.shared.metrics.connections_open.load(Ordering::SeqCst)
    }
}

async fn bind(addr: String) -> Result<TcpListener, EdgeError> {
    TcpListener::bind(&addr).await.map_err(|source| EdgeError::Bind { addr, source })
}

fn host_port(listen: &str, port: u16) -> String {
    if listen.contains(':') { format!("[{listen}]:{port}") } else { format!("{listen}:{port}") }
}

/// Starts the edge with a validated config: binds the listeners and spawns their accept loops on the current
/// tokio runtime.
pub async fn start(cfg: EdgeConfig, opts: EdgeOptions) -> Result<EdgeHandle, EdgeError> {
    start_with(cfg, opts, None).await
}

/// The listeners of `port` from a hand-over, as tokio listeners.
fn inherited(from: &handover::Listeners, port: u16) -> Result<Vec<TcpListener>, EdgeError> {
    let bind_err = |source| EdgeError::Bind { addr: format!("inherited listener for port {port}"), source };
    let ls = from.for_port(port).map_err(bind_err)?;
    if ls.is_empty() {
        return Err(EdgeError::NoListener(port));
    }
    ls.into_iter()
        .map(|l| {
            l.set_nonblocking(true)?;
            TcpListener::from_std(l)
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(bind_err)
}

/// [`start`], accepting on listeners handed over by `berth edge listen` (see [`handover`]) instead of binding:
/// `http_port`/`https_port` select which of them serve HTTP and HTTPS; `listen` is not used.
pub async fn start_with(
    mut cfg: EdgeConfig,
    opts: EdgeOptions,
    from: Option<handover::Listeners>,
) -> Result<EdgeHandle, EdgeError> {
    cfg.validate()?;
    let tls_on = cfg.tls.mode != TlsMode::Off;
    let (http_l, https_l) = match &from {
        None => {
            let http_l = match cfg.http_port {
                Some(p) => vec![bind(host_port(&cfg.listen, p)).await?],
                None => vec![],
            };
            let https_l = match cfg.https_port {
                Some(p) if tls_on => vec![bind(host_port(&cfg.listen, p)).await?],
                _ => vec![],
            };
            (http_l, https_l)
        }
        Some(from) => {
            let http_l = match cfg.http_port {
                Some(p) => inherited(from, p)?,
                None => vec![],
            };
            let https_l = match cfg.https_port {
                Some(p) if tls_on => inherited(from, p)?,
                _ => vec![],
            };
            (http_l, https_l)
        }
    };
    let admin_l = match &cfg.admin_addr {
        Some(a) => Some(bind(a.clone()).await?),
        None => None,
    };
    let http_addr = http_l.first().and_then(|l| l.local_addr().ok());
    let https_addr = https_l.first().and_then(|l| l.local_addr().ok());
    let admin_addr = admin_l.as_ref().and_then(|l| l.local_addr().ok());

    let hosts = cfg.known_hosts();
    let (store, ca_pem): (Option<Arc<dyn CertStore>>, Option<String>) = match cfg.tls.mode {
        TlsMode::LocalCa => {
            let ca = tls::LocalCa::open(cfg.tls.ca_dir.as_deref(), &hosts)?;
            let pem = ca.ca_pem().to_owned();
            (Some(Arc::new(ca)), Some(pem))
        }
        _ => (tls::store_from_config(&cfg.tls, &hosts, opts.access_log.clone(), opts.resolver.clone())?, None),
    };
    let sni = Arc::new(SniResolver::new(store.clone()));
    let acceptor =
        if tls_on { Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(sni.clone())?))) } else { None };
    let registry = Registry::default();
    let https_port = https_addr.map(|a| a.port());
    let table = Table::build(&cfg, &registry, &opts.resolver, https_port);
    // Backends get their first health check before the first connection is accepted: a new edge taking over
    // the listeners from an old one must not answer 503 while it learns which tasks are healthy.
    table.wait_checked(FIRST_CHECK_WAIT).await;
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
        ^ (std::process::id() as u64) << 40;
    let shared = Arc::new(Shared {
        table: ArcSwap::from_pointee(table),
        config: Mutex::new(cfg.clone()),
        registry,
        metrics: Metrics::default(),
        sni,
        store: Mutex::new(store),
        local_ca_pem: Mutex::new(ca_pem),
        opts,
        https_port,
        ids: AtomicU64::new(0),
        id_seed: seed,
        table_generation: AtomicU64::new(0),
        draining: AtomicBool::new(false),
        phase: tokio::sync::watch::Sender::new(0),
    });
    let limits = Arc::new(cfg.limits.clone());
    let workers = match shared.opts.workers {
        0 => None,
        n => Some(
            workers::Workers::start(n).map_err(|source| EdgeError::Bind { addr: "worker threads".into(), source })?,
        ),
    };
    if let Some(w) = &workers {
        let _ = shared.metrics.worker_connections.set(w.open_connections());
    }
    let workers = workers.map(Arc::new);
    let mut tasks = Vec::new();
    let listeners = http_l
        .into_iter()
        .map(|l| (l, None))
        .chain(https_l.into_iter().filter_map(|l| Some((l, Some(acceptor.clone()?)))));
    for (l, acc) in listeners {
        tasks.push(tokio::spawn(accept_loop(l, shared.clone(), acc, limits.clone(), workers.clone())));
    }
    if let Some(l) = admin_l {
        tasks.push(tokio::spawn(admin_loop(l, shared.clone())));
    }
    Ok(EdgeHandle { http_addr, https_addr, admin_addr, shared, tasks, _workers: workers })
}

/// Runs the edge from a config file until SIGINT/SIGTERM, re-reading the file when it changes (polled every
/// second; a bad new config is reported on the access log as `{"event":"reload_failed",...}` and the old one
/// stays). This is what `berth edge serve CONFIG` calls inside a tokio runtime.
pub async fn serve(config_path: &Path, opts: EdgeOptions) -> Result<(), EdgeError> {
    serve_with(config_path, opts, None).await
}

/// [`serve`]; with `listen_from`, the listeners come from `berth edge listen`'s unix socket (retried until it
/// answers), and SIGTERM drains (stop accepting, finish open requests within `drain_ms`) instead of closing.
pub async fn serve_with(
    config_path: &Path,
    mut opts: EdgeOptions,
    listen_from: Option<&Path>,
) -> Result<(), EdgeError> {
    if opts.workers == 0 {
        opts.workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    }
    let cfg = EdgeConfig::load(config_path)?;
    let log = opts.access_log.clone();
    let from = match listen_from {
        Some(path) => {
            let mut last = None::<Instant>;
            let l = handover::receive_retrying(path, |e| {
                if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                    last = Some(Instant::now());
                    let ev =
                        serde_json::json!({"event": "waiting_for_listener", "socket": path, "error": e.to_string()});
                    log.line(&ev.to_string());
                }
            })
            .await;
            let ev = serde_json::json!({"event": "listeners_received", "socket": path, "listeners": l.infos()});
            log.line(&ev.to_string());
            Some(l)
        }
        None => None,
    };
    let handle = start_with(cfg, opts, from).await?;
    let stamp = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.modified().ok(), m.len()));
    let mut last = stamp(config_path);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    {
        let first = stop_signal(&mut term);
        tokio::pin!(first);
        loop {
            tokio::select! {
                _ = &mut first => break,
                _ = tick.tick() => {
                    let now = stamp(config_path);
                    if now != last {
                        last = now;
                        let res = EdgeConfig::load(config_path).map_err(EdgeError::from).and_then(|c| handle.reload(c));
                        let event = match res {
                            Ok(()) => serde_json::json!({"event": "reloaded", "config": config_path}),
                            Err(e) => serde_json::json!({"event": "reload_failed", "config": config_path, "error": e.to_string()}),
                        };
                        log.line(&event.to_string());
                    }
                }
            }
        }
    }
    let grace = Duration::from_millis(handle.shared.config.lock().unwrap_or_else(|e| e.into_inner()).drain_ms);
    log.line(&serde_json::json!({"event": "draining", "open_connections": handle.open_connections()}).to_string());
    // A second signal stops at once.
    tokio::select! {
        _ = handle.drain(grace) => {}
        _ = stop_signal(&mut term) => {}
    }
    log.line(r#"{"event":"stopped"}"#);
    Ok(())
}

/// SIGINT or SIGTERM.
async fn stop_signal(term: &mut Option<tokio::signal::unix::Signal>) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// Accepts connections on `listener` and serves each: on the least loaded worker thread when there are workers
/// (see [`workers`]), else on this runtime.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    limits: Arc<config::Limits>,
    workers: Option<Arc<workers::Workers>>,
) {
    let mut h1 = hyper::server::conn::http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms))
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(Builders { h1, h2, idle: Duration::from_millis(limits.header_timeout_ms) });
    let conn = Arc::new(ConnContext { shared, acceptor, builder, limits });
    // EMFILE and friends: back off briefly instead of spinning.
    let backoff = || tokio::time::sleep(Duration::from_millis(50));
    let Some(workers) = workers else {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(stream, peer, conn.clone()));
                }
                Err(_) => backoff().await,
            }
        }
    };
    // The accepted socket goes to a worker's reactor: accept it as a plain std socket (readiness from this
    // runtime's reactor, so nothing is registered here only to be undone).
    let registered = listener.into_std().and_then(|l| {
        // SAFETY: the AsyncFd owns the listener, so its descriptor stays open and the same until it is dropped.
        unsafe { tokio::io::unix::AsyncFd::register_with_interest(l, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    });
    let listener = match registered {
        Ok(l) => l,
        Err(e) => {
            let event = serde_json::json!({"event": "accept_failed", "error": e.to_string()});
            conn.shared.opts.access_log.line(&event.to_string());
            return;
        }
    };
    loop {
        let Ok(mut ready) = listener.readable().await else {
            backoff().await;
            continue;
        };
        match ready.try_io(|l| l.get_ref().accept()) {
            Err(_would_block) => continue,
            Ok(Ok((stream, peer))) => {
                let _ = stream.set_nodelay(true);
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                let (worker, load) = workers.least_loaded();
                let conn = conn.clone();
                worker.spawn(async move {
                    let _load = load;
                    if let Ok(stream) = tokio::net::TcpStream::from_std(stream) {
                        connection(stream, peer, conn).await;
                    }
                });
            }
            Ok(Err(_)) => backoff().await,
        }
    }
}

/// What serving a connection of one listener needs.
struct ConnContext {
    shared: Arc<Shared>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    builder: Arc<Builders>,
    limits: Arc<config::Limits>,
}

/// Serves one accepted connection until it ends or the edge's drain grace period is over.
async fn connection(stream: tokio::net::TcpStream, peer: SocketAddr, conn: Arc<ConnContext>) {
    let ConnContext { shared, acceptor, builder, limits } = &*conn;
    let hs_timeout = Duration::from_millis(limits.tls_handshake_timeout_ms);
    let first_byte_timeout = Duration::from_millis(limits.header_timeout_ms);
    shared.metrics.connections_total.fetch_add(1, Ordering::Relaxed);
    shared.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
    let mut phase = shared.phase.subscribe();
    let work = async {
        // Wait for the first bytes before building connection state (idle new connections stay small).
        // A client that connects and sends nothing is dropped after the header timeout.
        if let Ok(Ok(())) = tokio::time::timeout(first_byte_timeout, stream.readable()).await {
            match acceptor {
                None => Box::pin(serve_plain(stream, peer, shared, builder)).await,
                Some(acc) => Box::pin(serve_tls(stream, peer, shared, acc.clone(), builder, hs_timeout)).await,
            }
        }
    };
    // After the drain grace period whatever is left is dropped.
    tokio::select! {
        _ = work => {}
        _ = phase.wait_for(|p| *p >= 2) => {}
    }
    shared.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
}

/// Connection builders: HTTP/1.1 on plain ports and for TLS without ALPN `h2`; HTTP/2 when ALPN chose it.
struct Builders {
    h1: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<TokioExecutor>,
    /// HTTP/2 connections without a new request for this long are closed (GOAWAY).
    idle: Duration,
}

/// Longest wait for the first health check of new backends (at start and on reload).
const FIRST_CHECK_WAIT: Duration = Duration::from_secs(5);

/// How long a keep-alive HTTP/1 connection may stay idle once the edge drains (a request arriving in that
/// time is still answered, with `Connection: close`).
const DRAIN_IDLE: Duration = Duration::from_millis(1000);

type BoxedResponse =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<RespBody>, Infallible>> + Send>>;

fn service(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    sni: Option<Arc<str>>,
    requests: Option<Arc<AtomicU64>>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<RespBody>,
    Error = Infallible,
    Future = BoxedResponse,
> + Clone {
    let sh = shared.clone();
    // Boxed so an idle connection does not carry the (large) request future inline.
    service_fn(move |req| {
        if let Some(n) = &requests {
            n.fetch_add(1, Ordering::Relaxed);
        }
        let sh = sh.clone();
        let sni = sni.clone();
        Box::pin(async move { Ok::<_, Infallible>(handle(req, sh, peer, sni).await) }) as BoxedResponse
    })
}

/// Serves HTTP/1.1 until the connection ends. When the edge drains: the next response carries
/// `Connection: close` (see [`handle`]), a connection idle for [`DRAIN_IDLE`] is closed, and one in the middle
/// of a request is closed after its response.
async fn drive_h1<I>(io: I, peer: SocketAddr, sni: Option<Arc<str>>, shared: &Arc<Shared>, builders: &Builders)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = builders.h1.serve_connection(TokioIo::new(io), service(shared, peer, sni, None)).with_upgrades();
    tokio::pin!(conn);
    let mut phase = shared.phase.subscribe();
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = phase.wait_for(|p| *p >= 1) => {}
    }
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = tokio::time::sleep(DRAIN_IDLE) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Serves HTTP/2 until the connection ends. A connection that starts no request for a whole idle period
/// (`limits.header_timeout_ms`: also covers clients that never finish a request's headers) and every connection
/// when the edge drains get GOAWAY: streams in flight finish, then the connection closes.
async fn drive_h2<I>(io: I, peer: SocketAddr, sni: Option<Arc<str>>, shared: &Arc<Shared>, builders: &Builders)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let requests = Arc::new(AtomicU64::new(0));
    let svc = service(shared, peer, sni, Some(requests.clone()));
    let conn = builders.h2.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut phase = shared.phase.subscribe();
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = phase.wait_for(|p| *p >= 1) => break,
            _ = tokio::time::sleep(builders.idle) => {
                let n = requests.load(Ordering::Relaxed);
                if n == seen {
                    break;
                }
                seen = n;
            }
        }
    }
    conn.as_mut().graceful_shutdown();
    // A client that never answers the GOAWAY's ping does not keep the connection: one more idle period.
    let _ = tokio::time::timeout(builders.idle.max(Duration::from_secs(1)), conn).await;
}

async fn serve_plain(stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>, builders: &Builders) {
    park::serve(stream, peer, shared, builders).await;
}

async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    acc: tokio_rustls::TlsAcceptor,
    builders: &Builders,
    hs_timeout: Duration,
) {
    let tls = match tokio::time::timeout(hs_timeout, acc.accept(stream)).await {
        Ok(Ok(s)) => s,
        _ => {
            shared.metrics.tls_handshake_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let conn = tls.get_ref().1;
    // A TLS-ALPN-01 validation only needs the handshake.
    if conn.alpn_protocol() == Some(tls::ACME_TLS_ALPN) {
        return;
    }
    let sni: Arc<str> = conn.server_name().unwrap_or("").to_ascii_lowercase().into();
    if conn.alpn_protocol() == Some(b"h2") {
        drive_h2(tls, peer, Some(sni), shared, builders).await;
    } else {
        drive_h1(tls, peer, Some(sni), shared, builders).await;
    }
}

fn request_host(req: &Request<Incoming>) -> Option<String> {
    let raw = match req.uri().authority() {
        Some(a) => a.host().to_owned(),
        None => {
            let h = req.headers().get(header::HOST)?.to_str().ok()?;
            let h = h.parse::<http::uri::Authority>().ok()?;
            h.host().to_owned()
        }
    };
    let h = raw.trim_end_matches('.').to_ascii_lowercase();
    (!h.is_empty()).then_some(h)
}

fn request_id(shared: &Shared, req: &Request<Incoming>) -> HeaderValue {
    if let Some(v) = req.headers().get("x-request-id")
        && !v.is_empty()
        && v.len() <= 128
        && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return v.clone();
    }
    // `{seed:016x}{n:08x}` without the formatting machinery.
    let n = shared.ids.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 24];
    let hex = |v: u64, out: &mut [u8]| {
        for (i, b) in out.iter_mut().rev().enumerate() {
            *b = b"0123456789abcdef"[((v >> (4 * i)) & 0xf) as usize];
        }
    };
    hex(shared.id_seed, &mut id[..16]);
    hex(n & 0xffff_ffff, &mut id[16..]);
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    peer: SocketAddr,
    sni: Option<Arc<str>>,
) -> Response<RespBody> {
    let start = Instant::now();
    let table = shared.table.load_full();
    let rid = request_id(&shared, &req);
    let method = req.method().clone();
    let path = if table.access_log { req.uri().path().to_owned() } else { String::new() };
    let version = req.version();
    let host = request_host(&req);
    let tls = sni.is_some();
    let mut resp = route(req, &shared, &table, peer, sni.as_deref(), host.as_deref(), &rid).await;
    let close = shared.draining.load(Ordering::Relaxed)
        && version <= http::Version::HTTP_11
        && resp.status() != StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert("x-request-id", rid.clone());
    // Draining: tell HTTP/1 keep-alive clients to reconnect (to the edge that now accepts).
    if close {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if tls && table.hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    shared.metrics.observe(status, elapsed);
    if table.access_log {
        let bytes = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let ts = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let line = serde_json::json!({
            "ts_ms": ts,
            "id": rid.to_str().unwrap_or(""),
            "client": peer.ip().to_string(),
            "tls": tls,
            "version": format!("{version:?}"),
            "method": method.as_str(),
            "host": host,
            "path": path,
            "status": status,
            "bytes": bytes,
            "ms": elapsed.as_secs_f64() * 1000.0,
        });
        shared.opts.access_log.line(&line.to_string());
    }
    resp
}

async fn route(
    req: Request<Incoming>,
    shared: &Shared,
    table: &Table,
    peer: SocketAddr,
    sni: Option<&str>,
    host: Option<&str>,
    rid: &HeaderValue,
) -> Response<RespBody> {
    if req.method() == Method::CONNECT {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not supported\n");
    }
    let Some(host) = host else { return plain(StatusCode::BAD_REQUEST, "missing Host\n") };
    // Never a default backend: unknown hosts (also in absolute-form requests, i.e. proxy attempts) get 421.
    if !table.known(host) {
        return plain(StatusCode::MISDIRECTED_REQUEST, "unknown host\n");
    }
    if let Some(sni) = sni
        && !sni.is_empty()
        && sni != host
    {
        return plain(StatusCode::MISDIRECTED_REQUEST, "host does not match TLS server name\n");
    }
    // ACME HTTP-01 validations come over plain HTTP and are never redirected (mode `acme`: an unknown token
    // is a 404; other modes route the path like any other).
    if let Some(token) = req.uri().path().strip_prefix("/.well-known/acme-challenge/")
        && let Some(store) = shared.store.lock().unwrap_or_else(|e| e.into_inner()).clone()
    {
        if let Some(key_auth) = store.http_challenge(token) {
            let mut r = Response::new(full(Bytes::from(key_auth)));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            return r;
        }
        if shared.config.lock().unwrap_or_else(|e| e.into_inner()).tls.mode == TlsMode::Acme {
            return plain(StatusCode::NOT_FOUND, "unknown ACME challenge\n");
        }
    }
    if sni.is_none()
        && table.redirect
        && let Some(port) = table.https_port
    {
        let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let loc = if port == 443 { format!("https://{host}{pq}") } else { format!("https://{host}:{port}{pq}") };
        let mut r = plain(StatusCode::PERMANENT_REDIRECT, "redirecting to https\n");
        if let Ok(v) = HeaderValue::from_str(&loc) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    let Some(entry) = table.lookup(host, req.uri().path()) else { return plain(StatusCode::NOT_FOUND, "no route\n") };
    match &entry.target {
        Target::Static(m) => {
            let path = req.uri().path();
            let rest = if entry.prefix == "/" { path } else { &path[entry.prefix.len()..] };
            statics::serve(req.method(), req.headers(), m, rest)
        }
        Target::Proxy(r) => {
            let client = ClientInfo {
                peer,
                proto: if sni.is_some() { "https" } else { "http" },
                host: host.to_owned(),
                request_id: rid.clone(),
            };
            proxy::forward(req, r, &client, &shared.metrics).await
        }
    }
}

async fn admin_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let sh = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let sh = sh.clone();
                async move {
                    let resp = match req.uri().path() {
                        "/healthz" => plain(StatusCode::OK, "ok\n"),
                        "/metrics" => {
                            let mut r = Response::new(full(Bytes::from(sh.metrics_text())));
                            r.headers_mut()
                                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
                            r
                        }
                        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// Asks an edge's admin listener for `/healthz` (blocking): `Ok` on a 200 answer. What `berth edge check` runs as
/// the edge image's HEALTHCHECK (a FROM scratch image has no curl).
pub fn check_health(addr: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("answered `{}`", line.lines().next().unwrap_or("").trim())))
    }
}
