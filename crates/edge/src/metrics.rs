//! Counters exported in Prometheus text format on the admin port, and the JSON access log.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::backends::Registry;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Process-wide edge counters.
#[derive(Debug, Default)]
pub struct Metrics {
    by_class: [AtomicU64; 6],
    buckets: [AtomicU64; 12],
    duration_sum_us: AtomicU64,
    /// Connections accepted.
    pub connections_total: AtomicU64,
    /// Connections currently open.
    pub connections_open: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_errors: AtomicU64,
    /// Upstream attempts that failed to connect or send (retried or not).
    pub upstream_errors: AtomicU64,
    /// Requests retried on another backend.
    pub retries: AtomicU64,
    /// Open connections per worker thread, when the edge runs workers.
    pub worker_connections: std::sync::OnceLock<std::sync::Arc<[std::sync::atomic::AtomicUsize]>>,
}

impl Metrics {
    /// Records one finished request (status and time to response head).
    pub fn observe(&self, status: u16, elapsed: Duration) {
        let class = (status / 100).min(5) as usize;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        // One counter per request (the first bucket that holds it; `render` sums them up): fewer shared cache
        // lines written on the hot path.
        let s = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.duration_sum_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Prometheus text exposition of all counters plus per-service backend states.
    pub fn render(&self, registry: &Registry) -> String {
        let mut out = String::new();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str("# TYPE berth_edge_requests_total counter\n");
        for (i, c) in self.by_class.iter().enumerate().skip(1) {
            let _ = writeln!(out, "berth_edge_requests_total{{code=\"{i}xx\"}} {}", g(c));
        }
        out.push_str("# TYPE berth_edge_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += g(&self.buckets[i]);
            let _ = writeln!(out, "berth_edge_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count: u64 = self.by_class.iter().map(g).sum();
        let _ = writeln!(out, "berth_edge_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "berth_edge_request_duration_seconds_sum {}", g(&self.duration_sum_us) as f64 / 1e6);
        let _ = writeln!(out, "berth_edge_request_duration_seconds_count {count}");
        for (name, kind, v) in [
            ("berth_edge_connections_total", "counter", &self.connections_total),
            ("berth_edge_connections_open", "gauge", &self.connections_open),
            ("berth_edge_tls_handshake_errors_total", "counter", &self.tls_handshake_errors),
            ("berth_edge_upstream_errors_total", "counter", &self.upstream_errors),
            ("berth_edge_retries_total", "counter", &self.retries),
        ] {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {}", g(v));
        }
        if let Some(open) = self.worker_connections.get() {
            out.push_str("# TYPE berth_edge_worker_connections gauge\n");
            for (i, n) in open.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "berth_edge_worker_connections{{worker=\"{}\"}} {}",
                    i + 1,
                    n.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# TYPE berth_edge_backends gauge\n");
        for set in registry.all() {
            let members = set.members();
            let healthy = members.iter().filter(|b| b.is_healthy()).count();
            let svc = &set.key.service;
            let _ = writeln!(out, "berth_edge_backends{{service=\"{svc}\",state=\"healthy\"}} {healthy}");
            let _ = writeln!(
                out,
                "berth_edge_backends{{service=\"{svc}\",state=\"unhealthy\"}} {}",
                members.len() - healthy
            );
        }
        out
    }
}

/// Where access-log lines go (one JSON object per request, without the newline).
pub trait AccessLog: Send + Sync + 'static {
    /// Writes one line.
    fn line(&self, json: &str);
}

/// Access log on the process's stdout (what `berth edge serve` uses).
#[derive(Debug, Default)]
pub struct StdoutLog;

impl AccessLog for StdoutLog {
    fn line(&self, json: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(json.as_bytes());
        let _ = out.write_all(b"\n");
    }
}

/// Access log kept in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryLog(pub std::sync::Mutex<Vec<String>>);

impl AccessLog for MemoryLog {
    fn line(&self, json: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(json.to_owned());
    }
}
