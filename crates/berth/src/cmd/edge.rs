//! `berth edge serve|listen|check`: the edge proxy, its listener hand-over process, and its health check.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::EdgeCommand;
use crate::cmd::fail;
use crate::exit;

pub fn run(cmd: EdgeCommand) -> u8 {
    match cmd {
        EdgeCommand::Serve { config, listen_from, backend } => serve(&config, listen_from.as_deref(), &backend),
        EdgeCommand::Listen { socket, ports, addr } => listen(&socket, &ports, addr),
        EdgeCommand::Check { config, addr } => check(config.as_deref(), addr),
        EdgeCommand::Forward { listen, to } => forward(&listen, &to),
    }
}

/// `berth edge forward --listen IP:PORT --to HOST:PORT`: runs until killed.
fn forward(listen: &str, to: &str) -> u8 {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(exit::FAILED, e, None),
    };
    let log = |line: &str| println!("{line}");
    match rt.block_on(berth_edge::forward::run(listen, to, log)) {
        Ok(()) => exit::OK,
        Err(e) => fail(exit::FAILED, format!("edge forward {listen} -> {to}: {e}"), None),
    }
}

/// `berth edge serve CONFIG`: runs until SIGINT/SIGTERM (then drains for `drain_ms`).
fn serve(config: &Path, listen_from: Option<&Path>, backends: &[String]) -> u8 {
    let mut opts = berth_edge::EdgeOptions::default();
    if !backends.is_empty() {
        let mut table: HashMap<&str, Vec<SocketAddr>> = HashMap::new();
        for item in backends {
            let parsed = item.split_once('=').and_then(|(svc, a)| Some((svc, a.parse::<SocketAddr>().ok()?)));
            let Some((svc, addr)) = parsed else {
                return fail(exit::USAGE, format!("--backend {item}: expected SERVICE=IP:PORT"), None);
            };
            table.entry(svc).or_default().push(addr);
        }
        let r = berth_edge::resolver::StaticResolver::new();
        for (svc, addrs) in table {
            r.set(svc, addrs);
        }
        opts.resolver = Arc::new(r);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(exit::FAILED, e, None),
    };
    match rt.block_on(berth_edge::serve_with(config, opts, listen_from)) {
        Ok(()) => {
            // Do not wait for connections the drain gave up on.
            rt.shutdown_background();
            exit::OK
        }
        Err(e) => fail(exit::FAILED, format!("edge: {e}"), None),
    }
}

/// `berth edge listen --socket PATH --port P...`: binds (or takes over) the ports and hands them out forever.
fn listen(socket: &Path, ports: &[u16], addr: std::net::IpAddr) -> u8 {
    let (unix, listeners, inherited) = match berth_edge::handover::setup(socket, addr, ports) {
        Ok(x) => x,
        Err(e) => return fail(exit::FAILED, format!("edge listen: {e}"), None),
    };
    let ev = serde_json::json!({
        "event": "listening", "socket": socket, "listeners": listeners.infos(), "taken_over": inherited,
    });
    println!("{ev}");
    let e = berth_edge::handover::serve_socket(unix, &listeners);
    fail(exit::FAILED, format!("edge listen: {}: {e}", socket.display()), None)
}

/// `berth edge check [CONFIG] [--addr ADDR]`: exit 0 when `/healthz` answers 200.
fn check(config: Option<&Path>, addr: Option<SocketAddr>) -> u8 {
    let addr = match (addr, config) {
        (Some(a), _) => a,
        (None, Some(path)) => match berth_edge::EdgeConfig::load(path) {
            Ok(cfg) => match cfg.admin_addr.as_deref().and_then(|a| a.parse().ok()) {
                Some(a) => a,
                None => return fail(exit::FAILED, format!("{}: no admin_addr", path.display()), None),
            },
            Err(e) => return fail(exit::INVALID, e, None),
        },
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 9180)),
    };
    match berth_edge::check_health(addr, Duration::from_secs(3)) {
        Ok(()) => exit::OK,
        Err(e) => fail(exit::FAILED, format!("edge at {addr} is not healthy: {e}"), None),
    }
}
