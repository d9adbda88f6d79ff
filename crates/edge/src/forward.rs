//! `berth edge forward`: a plain TCP forwarder from a local port to whatever `HOST:PORT` resolves
//! to at the time of each connection (`tasks.<service>` on an overlay network: the task of the
//! moment). The swarm's own registry uses it on every node (`berth_engine::swarm_registry`).

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts on `listen` forever; each connection is piped to the first address of `to` that
/// accepts (resolved anew per connection). A connection whose target cannot be reached is closed.
pub async fn run(listen: &str, to: &str, log: impl Fn(&str) + Send + Sync + 'static) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    log(&format!("{{\"event\":\"forwarding\",\"listen\":\"{}\",\"to\":\"{to}\"}}", listener.local_addr()?));
    let to = std::sync::Arc::new(to.to_string());
    let log = std::sync::Arc::new(log);
    loop {
        let (mut client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => {
                // Out of descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (to, log) = (to.clone(), log.clone());
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            match connect(&to).await {
                Ok(mut upstream) => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
                Err(e) => log(&format!("{{\"event\":\"forward_failed\",\"client\":\"{peer}\",\"error\":\"{e}\"}}")),
            }
        });
    }
}

async fn connect(to: &str) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, format!("{to} resolves to no address"));
    for addr in tokio::net::lookup_host(to).await? {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connecting to {addr}")),
        }
    }
    Err(last)
}
