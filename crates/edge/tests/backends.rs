//! Backends coming and going: retries, draining, health gating, timeouts, config reload.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_edge::EdgeConfig;
use berth_edge::resolver::StaticResolver;
use common::*;
use serde_json::json;

fn route_cfg(health: Option<&str>) -> serde_json::Value {
    json!({
        "domains": ["app.test"],
        "routes": [{"path": "/", "backend": {"service": "web", "port": 80, "health": health}, "timeout_ms": 2000}]
    })
}

#[tokio::test]
async fn dead_backend_is_retried_on_another_and_all_requests_succeed() {
    let a = TestBackend::start("a").await;
    let b = TestBackend::start("b").await;
    let r = StaticResolver::new();
    r.set("web", vec![a.addr, b.addr]);
    let e = edge(
        json!({"domains": ["app.test"], "discovery_interval_ms": 60000,
        "routes": [{"path": "/", "backend": {"service": "web", "port": 80}}]}),
        r,
    )
    .await;
    wait_for(|| e.handle.metrics_text().contains("state=\"healthy\"} 2")).await;
    // Warm a pooled connection to `a`, then kill it: pooled and new connections to it now fail.
    for _ in 0..4 {
        assert_eq!(get(e.http(), "app.test", "/x", &[]).await.status, 200);
    }
    a.kill();
    let mut ok = 0;
    for i in 0..20 {
        let method = if i % 2 == 0 { "GET" } else { "POST" };
        let resp = request(e.http(), method, "app.test", "/x", &[], bytes::Bytes::from_static(b"payload")).await;
        assert_eq!(resp.status, 200, "request {i} ({method}) failed: {}", resp.text());
        ok += 1;
    }
    assert_eq!(ok, 20);
    let m = e.handle.metrics_text();
    assert!(!m.contains("berth_edge_upstream_errors_total 0\n"), "the dead backend was never tried: {m}");
}

#[tokio::test]
async fn removed_backend_finishes_in_flight_request_and_gets_no_new_ones() {
    let a = TestBackend::start("a").await;
    let b = TestBackend::start("b").await;
    let r = StaticResolver::new();
    r.set("web", vec![a.addr]);
    let e = edge(route_cfg(None), r.clone()).await;
    wait_for(|| e.handle.metrics_text().contains("state=\"healthy\"} 1")).await;
    let addr = e.http();
    let slow = tokio::spawn(async move { get(addr, "app.test", "/slow", &[]).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // `a` leaves discovery while its slow request is running; `b` joins.
    r.set("web", vec![b.addr]);
    wait_for(|| {
        e.handle.metrics_text().contains("service=\"web\",state=\"healthy\"} 1") && b.hits.load(Ordering::SeqCst) == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let a_hits = a.hits.load(Ordering::SeqCst);
    for _ in 0..10 {
        let resp = get(addr, "app.test", "/y", &[]).await;
        assert!(resp.text().starts_with("b GET /y"), "{}", resp.text());
    }
    assert_eq!(a.hits.load(Ordering::SeqCst), a_hits, "drained backend got new requests");
    let resp = slow.await.unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp.text().starts_with("a GET /slow"), "in-flight request finished on the drained backend");
}

#[tokio::test]
async fn failing_health_check_keeps_backend_out_of_rotation() {
    let a = TestBackend::start("a").await;
    let b = TestBackend::start("b").await;
    b.healthy.store(false, Ordering::SeqCst);
    let r = StaticResolver::new();
    r.set("web", vec![a.addr, b.addr]);
    let e = edge(route_cfg(Some("/health")), r).await;
    wait_for(|| e.handle.metrics_text().contains("state=\"healthy\"} 1")).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    for _ in 0..10 {
        assert!(get(e.http(), "app.test", "/p", &[]).await.text().starts_with("a GET /p"));
    }
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);
    // Once it passes, it gets traffic.
    b.healthy.store(true, Ordering::SeqCst);
    wait_for(|| e.handle.metrics_text().contains("state=\"healthy\"} 2")).await;
    let mut saw_b = false;
    for _ in 0..10 {
        saw_b |= get(e.http(), "app.test", "/p", &[]).await.text().starts_with("b ");
    }
    assert!(saw_b);
    // And a backend that starts failing is taken out.
    a.healthy.store(false, Ordering::SeqCst);
    wait_for(|| e.handle.metrics_text().contains("service=\"web\",state=\"healthy\"} 1")).await;
    let before = a.hits.load(Ordering::SeqCst);
    for _ in 0..10 {
        assert!(get(e.http(), "app.test", "/p", &[]).await.text().starts_with("b "));
    }
    assert_eq!(a.hits.load(Ordering::SeqCst), before);
}

/// Regression: in the cluster test, a manager healed from a partition answered `503 no healthy backend`
/// until its next health round found the tasks again (14 failed requests). A request that finds no healthy
/// task now waits for one (bounded) instead.
#[tokio::test]
async fn request_without_healthy_task_waits_for_one_instead_of_503() {
    let a = TestBackend::start("a").await;
    a.healthy.store(false, Ordering::SeqCst);
    let r = StaticResolver::new();
    r.set("web", vec![a.addr]);
    let e = edge(route_cfg(Some("/health")), r).await;
    wait_for(|| e.handle.metrics_text().contains("service=\"web\",state=\"unhealthy\"} 1")).await;
    let addr = e.http();
    let t = std::time::Instant::now();
    let pending = tokio::spawn(async move { get(addr, "app.test", "/waited", &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "answered while no task was healthy");
    a.healthy.store(true, Ordering::SeqCst);
    let resp = pending.await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().starts_with("a GET /waited"), "{}", resp.text());
    assert!(t.elapsed() < Duration::from_millis(1500), "waited {:?}", t.elapsed());
    // Still none healthy after the wait (here bounded by the route's 2 s timeout): 503.
    a.healthy.store(false, Ordering::SeqCst);
    wait_for(|| e.handle.metrics_text().contains("service=\"web\",state=\"unhealthy\"} 1")).await;
    let t = std::time::Instant::now();
    assert_eq!(get(addr, "app.test", "/none", &[]).await.status, 503);
    assert!(t.elapsed() >= Duration::from_millis(1900), "gave up after {:?}", t.elapsed());
}

#[tokio::test]
async fn slow_backend_past_route_timeout_gives_504() {
    let a = TestBackend::start("a").await;
    let r = StaticResolver::new();
    r.set("web", vec![a.addr]);
    let e = edge(
        json!({"domains": ["app.test"], "routes": [{"path": "/", "backend": {"service": "web", "port": 80}, "timeout_ms": 300}]}),
        r,
    )
    .await;
    wait_for(|| e.handle.metrics_text().contains("state=\"healthy\"} 1")).await;
    let t = std::time::Instant::now();
    assert_eq!(get(e.http(), "app.test", "/slow", &[]).await.status, 504);
    assert!(t.elapsed() < Duration::from_millis(750));
}

#[tokio::test]
async fn config_reload_keeps_open_keepalive_connection_working() {
    let a = TestBackend::start("a").await;
    let b = TestBackend::start("b").await;
    let r = StaticResolver::new();
    r.set("one", vec![a.addr]);
    r.set("two", vec![b.addr]);
    let e =
        edge(json!({"domains": ["app.test"], "routes": [{"path": "/", "backend": {"service": "one", "port": 80}}]}), r)
            .await;
    wait_for(|| e.handle.metrics_text().contains("state=\"healthy\"} 1")).await;
    let mut conn = KeepAlive::connect(e.http()).await;
    assert!(conn.get("app.test", "/k").await.text().starts_with("a GET /k"));
    let mut cfg: EdgeConfig = serde_json::from_value(json!({
        "domains": ["app.test", "new.test"], "listen": "127.0.0.1", "http_port": 0, "https_port": 0,
        "admin_addr": "127.0.0.1:0", "discovery_interval_ms": 50,
        "routes": [{"path": "/", "backend": {"service": "one", "port": 80}},
                   {"path": "/two", "backend": {"service": "two", "port": 80}}]
    }))
    .unwrap();
    cfg.validate().unwrap();
    e.handle.reload(cfg.clone()).unwrap();
    wait_for(|| e.handle.metrics_text().contains("service=\"two\",state=\"healthy\"} 1")).await;
    assert!(!conn.is_closed());
    assert!(conn.get("app.test", "/k").await.text().starts_with("a GET /k"));
    assert!(conn.get("app.test", "/two/x").await.text().starts_with("b GET /two/x"));
    assert!(conn.get("new.test", "/k").await.text().starts_with("a GET /k"));
    // Listener changes are refused and leave the running config alone.
    cfg.http_port = Some(1);
    assert!(e.handle.reload(cfg).is_err());
    assert!(conn.get("app.test", "/two/y").await.text().starts_with("b GET /two/y"));
}

#[tokio::test]
async fn serve_reloads_when_config_file_changes() {
    let a = TestBackend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "static-v1").unwrap();
    let path = dir.path().join("edge.json");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let write = |routes: serde_json::Value| {
        let cfg = json!({"domains": ["app.test"], "listen": "127.0.0.1", "http_port": port, "https_port": null,
            "admin_addr": null, "access_log": false, "discovery_interval_ms": 50,
            "statics": [{"path": "/", "root": "."}], "routes": routes});
        std::fs::write(&path, cfg.to_string()).unwrap();
    };
    write(json!([]));
    let r = StaticResolver::new();
    r.set("web", vec![a.addr]);
    let opts = berth_edge::EdgeOptions {
        resolver: std::sync::Arc::new(r),
        access_log: std::sync::Arc::new(berth_edge::metrics::MemoryLog::default()),
        workers: 0,
    };
    let p2 = path.clone();
    let task = tokio::spawn(async move { berth_edge::serve(&p2, opts).await });
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(addr, "app.test", "/", &[]).await.text(), "static-v1");
    assert_eq!(get(addr, "app.test", "/api/x", &[]).await.status, 404);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write(json!([{"path": "/api", "backend": {"service": "web", "port": 80}}]));
    let mut ok = false;
    for _ in 0..60 {
        if get(addr, "app.test", "/api/x", &[]).await.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "route added by editing the file");
    task.abort();
}

/// Regression: every worker thread accepted on the same socket, and the first one awake took the whole queue,
/// so a burst of connections (a load generator's) often went all to one worker, which then served every
/// request on one core while the other idled. One accept loop now hands each connection to the worker with
/// the fewest open ones.
#[tokio::test]
async fn a_burst_of_connections_is_spread_evenly_over_the_workers() {
    let a = TestBackend::start("a").await;
    let r = StaticResolver::new();
    r.set("web", vec![a.addr]);
    let e = edge(route_cfg(None), r).await;
    wait_for(|| e.handle.metrics_text().contains("state=\"healthy\"} 1")).await;
    let addr = e.http();
    let conns = futures_util::future::join_all((0..20).map(|_| async move {
        let mut c = KeepAlive::connect(addr).await;
        assert_eq!(c.get("app.test", "/").await.status, 200);
        c
    }))
    .await;
    let m = e.handle.metrics_text();
    for w in 1..=2 {
        assert!(m.contains(&format!("berth_edge_worker_connections{{worker=\"{w}\"}} 10\n")), "{m}");
    }
    drop(conns);
    wait_for(|| e.handle.metrics_text().contains("berth_edge_worker_connections{worker=\"1\"} 0\n")).await;
}
