//! Backend discovery: which addresses currently serve a service.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A boxed future returned by [`Resolver::resolve`].
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Finds the task addresses of a service. The edge calls it every discovery interval.
pub trait Resolver: Send + Sync + 'static {
    /// The current addresses of `service` (with `port` applied). An error keeps the previous set.
    fn resolve<'a>(&'a self, service: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// Swarm DNS: `tasks.<service>` lists one A record per running task (no Docker socket needed).
#[derive(Debug, Clone, Default)]
pub struct DnsResolver;

impl Resolver for DnsResolver {
    fn resolve<'a>(&'a self, service: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            let mut v: Vec<SocketAddr> = tokio::net::lookup_host((format!("tasks.{service}"), port)).await?.collect();
            v.sort();
            v.dedup();
            Ok(v)
        })
    }
}

/// A fixed table of addresses per service, changeable at run time (tests, and `berth edge` without Swarm).
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    table: Arc<Mutex<HashMap<String, Vec<SocketAddr>>>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }
    /// Sets the addresses of `service` (they are used as given, whatever port the route names).
    pub fn set(&self, service: &str, addrs: Vec<SocketAddr>) {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).insert(service.to_owned(), addrs);
    }
}

impl Resolver for StaticResolver {
    fn resolve<'a>(&'a self, service: &'a str, _port: u16) -> ResolveFuture<'a> {
        let v = self.table.lock().unwrap_or_else(|e| e.into_inner()).get(service).cloned().unwrap_or_default();
        Box::pin(async move { Ok(v) })
    }
}
