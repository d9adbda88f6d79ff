//! Runs the edge from a config file until Ctrl-C: `cargo run -p berth-edge --example edge-serve -- edge.json`.
//! What `berth edge serve CONFIG --backend ...` runs, without the CLI's other dependencies (quick to build for
//! `bench/edge.sh`).
//! `EDGE_BACKENDS=svc=127.0.0.1:8080,svc2=...` replaces `tasks.<svc>` DNS with fixed addresses;
//! `EDGE_THREADS=N` sets the worker threads (default: one per core; see `berth_edge::workers`).

use std::sync::Arc;

use berth_edge::resolver::StaticResolver;

fn main() {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: edge-serve CONFIG.json");
        std::process::exit(2);
    };
    let threads = std::env::var("EDGE_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(0usize);
    let mut opts = berth_edge::EdgeOptions::default();
    if let Ok(spec) = std::env::var("EDGE_BACKENDS") {
        let r = StaticResolver::new();
        let mut table: std::collections::HashMap<String, Vec<std::net::SocketAddr>> = Default::default();
        for item in spec.split(',').filter(|s| !s.is_empty()) {
            let Some((svc, addr)) = item.split_once('=') else {
                eprintln!("EDGE_BACKENDS: expected svc=ip:port, got {item}");
                std::process::exit(2);
            };
            let Ok(addr) = addr.parse() else {
                eprintln!("EDGE_BACKENDS: bad address {addr}");
                std::process::exit(2);
            };
            table.entry(svc.to_owned()).or_default().push(addr);
        }
        for (svc, addrs) in table {
            r.set(&svc, addrs);
        }
        opts.resolver = Arc::new(r);
    }
    opts.workers = threads;
    // Like `berth edge serve`: a runtime for discovery, health checks and reloads; connections run on the workers.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(berth_edge::serve(std::path::Path::new(&path), opts)) {
        eprintln!("edge: {e}");
        std::process::exit(1);
    }
}
