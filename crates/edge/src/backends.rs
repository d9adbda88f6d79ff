//! The tasks behind one service: discovery, health gating, draining and pooled upstream connections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::ReqBody;
use crate::config::BackendConfig;
use crate::resolver::Resolver;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_IDLE_PER_BACKEND: usize = 256;
/// Idle connections are pooled per worker thread (see [`crate::workers`]): a connection's task runs on the worker that
/// opened it, so reusing it there keeps a request on one thread, and pool locks are never contended.
const POOL_SLOTS: usize = 8;

/// One task (address) of a service.
#[derive(Debug)]
pub struct Backend {
    /// The task's address.
    pub addr: SocketAddr,
    healthy: AtomicBool,
    draining: AtomicBool,
    inflight: AtomicUsize,
    idle: [Mutex<Vec<SendRequest<ReqBody>>>; POOL_SLOTS],
}

/// Counts a request as in flight on a backend until dropped (held by the response body).
#[derive(Debug)]
pub struct InflightGuard(Arc<Backend>);

impl InflightGuard {
    /// The backend this request runs on.
    pub(crate) fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Backend {
    fn new(addr: SocketAddr) -> Backend {
        Backend {
            addr,
            healthy: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            idle: Default::default(),
        }
    }

    /// Whether the last health check passed.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Requests currently in flight on this backend.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }

    /// Takes the backend out of rotation until the next passing health check (after a connect error).
    pub fn mark_unhealthy(&self) {
        self.healthy.store(false, Ordering::Release);
    }

    pub(crate) fn start_request(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        InflightGuard(self.clone())
    }

    /// An idle pooled connection, or a new one. `bool` tells whether it was reused.
    pub(crate) async fn checkout(&self) -> std::io::Result<(SendRequest<ReqBody>, bool)> {
        loop {
            let Some(mut s) = self.pool().lock().unwrap_or_else(|e| e.into_inner()).pop() else { break };
            if s.is_ready() {
                return Ok((s, true));
            }
            // Checked in right after its response body ended: the connection task may not have seen the end
            // yet. A closed one fails at once.
            if !s.is_closed()
                && let Ok(Ok(())) = tokio::time::timeout(Duration::from_millis(20), s.ready()).await
            {
                return Ok((s, true));
            }
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"))??;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok((sender, false))
    }

    /// Returns a connection to the pool once its response body was read to the end.
    pub(crate) fn checkin(&self, sender: SendRequest<ReqBody>) {
        if sender.is_closed() || self.draining.load(Ordering::Acquire) {
            return;
        }
        let mut idle = self.pool().lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_PER_BACKEND {
            idle.push(sender);
        }
    }

    fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        for slot in &self.idle {
            slot.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// This thread's pool of idle connections.
    fn pool(&self) -> &Mutex<Vec<SendRequest<ReqBody>>> {
        &self.idle[crate::workers::current() % POOL_SLOTS]
    }
}

/// All tasks of one service as currently known, kept up to date by a background loop.
#[derive(Debug)]
pub struct BackendSet {
    /// The service, port and health path.
    pub key: BackendConfig,
    members: ArcSwap<Vec<Arc<Backend>>>,
    rr: AtomicUsize,
    /// Set once the first discovery + health round is done.
    checked: AtomicBool,
    checked_notify: tokio::sync::Notify,
    /// Woken after each health round that left at least one member healthy.
    healthy_notify: tokio::sync::Notify,
}

impl BackendSet {
    /// Creates the set and starts its discovery/health loop (which stops once the set is dropped).
    pub fn start(key: BackendConfig, resolver: Arc<dyn Resolver>, interval: Duration) -> Arc<BackendSet> {
        let set = Arc::new(BackendSet {
            key,
            members: ArcSwap::from_pointee(Vec::new()),
            rr: AtomicUsize::new(0),
            checked: AtomicBool::new(false),
            checked_notify: tokio::sync::Notify::new(),
            healthy_notify: tokio::sync::Notify::new(),
        });
        let weak = Arc::downgrade(&set);
        tokio::spawn(discovery_loop(weak, resolver, interval));
        set
    }

    /// Whether the first discovery and health-check round has finished (before it no task counts as healthy).
    pub fn is_checked(&self) -> bool {
        self.checked.load(Ordering::Acquire)
    }

    /// Waits for the first discovery and health-check round.
    pub async fn checked(&self) {
        let n = self.checked_notify.notified();
        tokio::pin!(n);
        n.as_mut().enable();
        if self.is_checked() {
            return;
        }
        n.await;
    }

    /// Picks a healthy member like [`BackendSet::pick`]; when none is healthy, waits until `deadline` for a
    /// health round that makes one healthy (a service between its last task and its next, or this edge's node
    /// just reconnected after a partition) instead of failing the request at once.
    pub async fn pick_or_wait(&self, deadline: tokio::time::Instant) -> Option<Arc<Backend>> {
        // The usual case costs what `pick` costs: no waiter is registered while a member is healthy.
        if let Some(b) = self.pick(&[]) {
            return Some(b);
        }
        loop {
            let n = self.healthy_notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if let Some(b) = self.pick(&[]) {
                return Some(b);
            }
            if tokio::time::timeout_at(deadline, n).await.is_err() {
                return None;
            }
        }
    }

    /// Current members (healthy or not; drained ones are gone).
    pub fn members(&self) -> Arc<Vec<Arc<Backend>>> {
        self.members.load_full()
    }

    /// Picks a healthy member round-robin, skipping addresses in `exclude`.
    pub fn pick(&self, exclude: &[SocketAddr]) -> Option<Arc<Backend>> {
        let members = self.members.load();
        let n = members.len();
        if n == 0 {
            return None;
        }
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| &members[(start + i) % n]).find(|b| b.is_healthy() && !exclude.contains(&b.addr)).cloned()
    }

    async fn refresh(&self, resolver: &dyn Resolver) {
        if let Ok(addrs) = resolver.resolve(&self.key.service, self.key.port).await {
            let old = self.members.load_full();
            if old.iter().map(|b| b.addr).ne(addrs.iter().copied()) {
                let mut next = Vec::with_capacity(addrs.len());
                for a in &addrs {
                    match old.iter().find(|b| b.addr == *a) {
                        Some(b) => next.push(b.clone()),
                        None => next.push(Arc::new(Backend::new(*a))),
                    }
                }
                for b in old.iter().filter(|b| !addrs.contains(&b.addr)) {
                    // Gone from discovery: no new requests; in-flight ones hold their own Arc and finish.
                    b.drain();
                }
                self.members.store(Arc::new(next));
            }
        }
        let members = self.members.load_full();
        let checks = members.iter().map(|b| {
            let path = self.key.health.clone();
            let host = self.key.service.clone();
            async move {
                let ok =
                    tokio::time::timeout(HEALTH_TIMEOUT, check(b.addr, path.as_deref(), &host)).await.unwrap_or(false);
                b.healthy.store(ok, Ordering::Release);
            }
        });
        futures_util::future::join_all(checks).await;
        if !self.checked.swap(true, Ordering::AcqRel) {
            self.checked_notify.notify_waiters();
        }
        if members.iter().any(|b| b.is_healthy()) {
            self.healthy_notify.notify_waiters();
        }
    }
}

async fn check(addr: SocketAddr, path: Option<&str>, host: &str) -> bool {
    let Ok(stream) = TcpStream::connect(addr).await else { return false };
    let Some(path) = path else { return true };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
        return false;
    };
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "berth-edge-health")
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new());
    let Ok(req) = req else { return false };
    match sender.send_request(req).await {
        Ok(resp) => {
            let ok = resp.status().is_success() || resp.status().is_redirection();
            let _ = resp.into_body().collect().await;
            ok
        }
        Err(_) => false,
    }
}

async fn discovery_loop(set: Weak<BackendSet>, resolver: Arc<dyn Resolver>, interval: Duration) {
    loop {
        {
            let Some(set) = set.upgrade() else { return };
            set.refresh(resolver.as_ref()).await;
        }
        tokio::time::sleep(interval).await;
    }
}

/// Backend sets shared across config reloads, keyed by (service, port, health).
#[derive(Debug, Default)]
pub struct Registry {
    sets: Mutex<HashMap<BackendConfig, Weak<BackendSet>>>,
}

impl Registry {
    /// The live set for `key`, or a newly started one.
    pub fn get(&self, key: &BackendConfig, resolver: &Arc<dyn Resolver>, interval: Duration) -> Arc<BackendSet> {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        sets.retain(|_, w| w.strong_count() > 0);
        if let Some(s) = sets.get(key).and_then(Weak::upgrade) {
            return s;
        }
        let s = BackendSet::start(key.clone(), resolver.clone(), interval);
        sets.insert(key.clone(), Arc::downgrade(&s));
        s
    }

    /// Every live set (for metrics).
    pub fn all(&self) -> Vec<Arc<BackendSet>> {
        self.sets.lock().unwrap_or_else(|e| e.into_inner()).values().filter_map(Weak::upgrade).collect()
    }
}
