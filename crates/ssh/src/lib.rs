//! berth-ssh: SSH to the machines of a target, with nothing installed on the operator's side.
//!
//! Two things go over one SSH connection per host:
//! - [`Session::forward_unix`]: the remote Docker socket, tunnelled (`direct-streamlocal`, the
//!   OpenSSH extension behind `ssh -L local.sock:/var/run/docker.sock`) to a unix socket in a
//!   private (0700) directory on this machine, so that the engine's HTTP client talks to the
//!   remote engine as if it were local. No docker CLI on either side.
//! - [`Session::exec`]: a command on the host (bootstrap: is Docker there, install it).
//!
//! Host keys are checked against a known_hosts file (OpenSSH format): an unknown host is refused
//! unless trust on first use is asked for (then its key is recorded), a changed key is always
//! refused. A host with expected keys ([`SshOptions::host_keys`], e.g. published by the host
//! itself through a channel the caller trusts) must present one of them; known_hosts is then
//! neither read nor written for it. Authentication: the key file given, else the SSH agent, else `~/.ssh/id_ed25519`,
//! `~/.ssh/id_ecdsa`, `~/.ssh/id_rsa`. Does I/O (network, files); prints nothing.

use russh::client::{self, AuthResult, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `[user@]host[:port]` of one machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostAddr {
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
}

impl FromStr for HostAddr {
    type Err = SshError;
    fn from_str(s: &str) -> Result<HostAddr, SshError> {
        let bad = || SshError::BadAddress(s.to_string());
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
            Some(_) => return Err(bad()),
            None => (None, s),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            // [v6]:port
            let (h, after) = inner.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => 22,
                None => return Err(bad()),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().map_err(|_| bad())?),
                _ => (rest.to_string(), 22),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(HostAddr { user, host, port })
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?
        } else {
            f.write_str(&self.host)?
        }
        if self.port != 22 {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// User when the address names none.
    pub user: String,
    /// Private key file; `None`: the agent, then the default key files.
    pub key: Option<PathBuf>,
    /// known_hosts file (OpenSSH format); default `~/.ssh/known_hosts`.
    pub known_hosts: PathBuf,
    /// Record the key of a host that is not in known_hosts instead of refusing it.
    pub trust_new_hosts: bool,
    /// Expected host keys by host (as in [`HostAddr::host`]), OpenSSH public key lines
    /// (`ssh-ed25519 AAAA... [comment]`): such a host must present one of them.
    pub host_keys: std::collections::BTreeMap<String, Vec<String>>,
    /// TCP connect + handshake + authentication must finish within this.
    pub connect_timeout: Duration,
}

impl Default for SshOptions {
    fn default() -> SshOptions {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
        SshOptions {
            user: "root".into(),
            key: None,
            known_hosts: home.join(".ssh/known_hosts"),
            trust_new_hosts: false,
            host_keys: Default::default(),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    #[error("`{0}` is not an SSH address (`[user@]host[:port]`)")]
    BadAddress(String),
    #[error("cannot reach {host}: {detail}")]
    Unreachable { host: String, detail: String },
    #[error("{host} is not in {known_hosts} (its {algorithm} key has fingerprint {fingerprint})")]
    UnknownHost { host: String, known_hosts: String, algorithm: String, fingerprint: String },
    #[error("the host key of {host} CHANGED (line {line} of {known_hosts} has another key): refusing to connect")]
    HostKeyChanged { host: String, known_hosts: String, line: usize },
    #[error(
        "{host} presents a {algorithm} key ({fingerprint}) that is not one of the {expected} expected: refusing to connect"
    )]
    HostKeyMismatch { host: String, algorithm: String, fingerprint: String, expected: usize },
    #[error("{host}: authentication as `{user}` failed ({tried})")]
    AuthFailed { host: String, user: String, tried: String },
    #[error("{host}: {what}: {detail}")]
    Protocol { host: String, what: &'static str, detail: String },
    #[error("{host}: cannot open `{path}` on the host: {detail}")]
    Forward { host: String, path: String, detail: String },
    #[error("local tunnel socket: {0}")]
    Local(#[from] std::io::Error),
}

impl SshError {
    /// What the user can do about it, one line.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SshError::BadAddress(_) => "write hosts as `host`, `user@host` or `user@host:port`".into(),
            SshError::Unreachable { .. } => "check that the host is up and sshd listens (`ssh HOST true`)".into(),
            SshError::UnknownHost { .. } => "connect once with `ssh HOST` and compare the fingerprint, or set \
                                              `trust_new_hosts: true` on the target to record it on first use"
                .into(),
            SshError::HostKeyChanged { .. } => "if the host was reinstalled, remove its old line from known_hosts \
                                                 (`ssh-keygen -R HOST`); otherwise someone may be in the middle"
                .into(),
            SshError::HostKeyMismatch { .. } => "the expected keys come from the host's own publication (e.g. \
                                                  its agent's state): if the host was just replaced, wait until \
                                                  its new keys are published; otherwise someone may be in the middle"
                .into(),
            SshError::AuthFailed { .. } => {
                "load the key into the agent (`ssh-add`) or set `key:` on the target; the user needs access to \
                 the Docker socket (root or the docker group)"
                    .into()
            }
            SshError::Forward { .. } => {
                "is Docker installed and running on the host (`berth cluster up` installs it unless given `--no-install`)? Is the `socket:` \
                 path of the target right?"
                    .into()
            }
            _ => return None,
        })
    }
}

/// Output of [`Session::exec`].
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub code: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Default)]
struct Verdict {
    unknown: Option<(String, String)>,
    changed: Option<usize>,
    /// Presented key (algorithm, fingerprint) that none of the expected keys matched.
    mismatch: Option<(String, String)>,
}

struct Client {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    trust_new_hosts: bool,
    /// Expected keys of this host (parsed); `None`: known_hosts decides.
    expected: Option<Vec<PublicKey>>,
    verdict: Arc<Mutex<Verdict>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        let mut v = self.verdict.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(expected) = &self.expected {
            // Compared by key material: comments do not count.
            if expected.iter().any(|k| k.key_data() == key.key_data()) {
                return Ok(true);
            }
            v.mismatch = Some((key.algorithm().to_string(), key.fingerprint(HashAlg::Sha256).to_string()));
            return Ok(false);
        }
        match russh::keys::check_known_hosts_path(&self.host, self.port, key, &self.known_hosts) {
            Ok(true) => Ok(true),
            Err(russh::keys::Error::KeyChanged { line }) => {
                v.changed = Some(line);
                Ok(false)
            }
            Ok(false) | Err(_) if self.trust_new_hosts => {
                if let Some(dir) = self.known_hosts.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                Ok(russh::keys::known_hosts::learn_known_hosts_path(&self.host, self.port, key, &self.known_hosts)
                    .is_ok())
            }
            Ok(false) | Err(_) => {
                v.unknown = Some((key.algorithm().to_string(), key.fingerprint(HashAlg::Sha256).to_string()));
                Ok(false)
            }
        }
    }
}

/// Expected host keys, parsed; a line that is no public key is an error (not silently skipped:
/// fewer keys would only refuse more, but a garbled publication deserves to be named).
fn parse_host_keys(host: &str, lines: &[String]) -> Result<Vec<PublicKey>, SshError> {
    lines
        .iter()
        .map(|l| {
            PublicKey::from_openssh(l.trim()).map_err(|e| SshError::Protocol {
                host: host.to_owned(),
                what: "expected host key",
                detail: format!("`{}`: {e}", l.chars().take(40).collect::<String>()),
            })
        })
        .collect()
}

/// One authenticated SSH connection to a host.
pub struct Session {
    handle: Handle<Client>,
    addr: HostAddr,
    user: String,
}

impl Session {
    /// Connects, checks the host key and authenticates (see the crate doc).
    pub async fn connect(addr: &HostAddr, opts: &SshOptions) -> Result<Session, SshError> {
        let host = addr.to_string();
        match tokio::time::timeout(opts.connect_timeout, Self::connect_inner(addr, opts)).await {
            Ok(r) => r,
            Err(_) => Err(SshError::Unreachable {
                host,
                detail: format!("no answer within {} s", opts.connect_timeout.as_secs()),
            }),
        }
    }

    async fn connect_inner(addr: &HostAddr, opts: &SshOptions) -> Result<Session, SshError> {
        let host = addr.to_string();
        let config = Arc::new(client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(10)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        let verdict = Arc::new(Mutex::new(Verdict::default()));
        let expected = match opts.host_keys.get(&addr.host) {
            Some(lines) => Some(parse_host_keys(&host, lines)?),
            None => None,
        };
        let expected_count = expected.as_ref().map_or(0, Vec::len);
        let handler = Client {
            host: addr.host.clone(),
            port: addr.port,
            known_hosts: opts.known_hosts.clone(),
            trust_new_hosts: opts.trust_new_hosts,
            expected,
            verdict: verdict.clone(),
        };
        let tcp = tokio::net::TcpStream::connect((addr.host.as_str(), addr.port))
            .await
            .map_err(|e| SshError::Unreachable { host: host.clone(), detail: e.to_string() })?;
        let _ = tcp.set_nodelay(true);
        let mut handle = match client::connect_stream(config, tcp, handler).await {
            Ok(h) => h,
            Err(e) => {
                let v = verdict.lock().unwrap_or_else(|e| e.into_inner());
                let known_hosts = opts.known_hosts.display().to_string();
                if let Some((algorithm, fingerprint)) = v.mismatch.clone() {
                    return Err(SshError::HostKeyMismatch { host, algorithm, fingerprint, expected: expected_count });
                }
                if let Some(line) = v.changed {
                    return Err(SshError::HostKeyChanged { host, known_hosts, line });
                }
                if let Some((algorithm, fingerprint)) = v.unknown.clone() {
                    return Err(SshError::UnknownHost { host, known_hosts, algorithm, fingerprint });
                }
                return Err(SshError::Unreachable { host, detail: e.to_string() });
            }
        };
        let user = addr.user.clone().unwrap_or_else(|| opts.user.clone());
        let mut tried = Vec::new();
        let proto = |what: &'static str| {
            let host = host.clone();
            move |e: russh::Error| SshError::Protocol { host, what, detail: e.to_string() }
        };
        let rsa_hash = handle.best_supported_rsa_hash().await.map_err(proto("key exchange"))?.flatten();
        let mut ok = false;
        let files: Vec<PathBuf> = match &opts.key {
            Some(k) => vec![k.clone()],
            None => {
                // The agent first.
                if std::env::var_os("SSH_AUTH_SOCK").is_some()
                    && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
                {
                    let ids = agent.request_identities().await.unwrap_or_default();
                    for id in ids {
                        let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = id else { continue };
                        tried.push(format!("agent key {}", key.fingerprint(HashAlg::Sha256)));
                        let hash = if key.algorithm().is_rsa() { rsa_hash } else { None };
                        if let Ok(r) = handle.authenticate_publickey_with(&user, key, hash, &mut agent).await
                            && r.success()
                        {
                            ok = true;
                            break;
                        }
                    }
                }
                let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
                ["id_ed25519", "id_ecdsa", "id_rsa"].iter().map(|f| home.join(".ssh").join(f)).collect()
            }
        };
        if !ok {
            for file in files {
                if !file.exists() {
                    if opts.key.is_some() {
                        tried.push(format!("{} (no such file)", file.display()));
                    }
                    continue;
                }
                let key = match russh::keys::load_secret_key(&file, None) {
                    Ok(k) => k,
                    Err(e) => {
                        tried.push(format!("{} (cannot read: {e})", file.display()));
                        continue;
                    }
                };
                tried.push(file.display().to_string());
                let hash = if key.algorithm().is_rsa() { rsa_hash } else { None };
                let r = handle
                    .authenticate_publickey(&user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                    .await
                    .map_err(proto("authentication"))?;
                if matches!(r, AuthResult::Success) {
                    ok = true;
                    break;
                }
            }
        }
        if !ok {
            let tried =
                if tried.is_empty() { "no key found".to_string() } else { format!("tried {}", tried.join(", ")) };
            return Err(SshError::AuthFailed { host, user, tried });
        }
        Ok(Session { handle, addr: addr.clone(), user })
    }

    /// The address this session is connected to.
    pub fn addr(&self) -> &HostAddr {
        &self.addr
    }

    /// The user it authenticated as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Runs `command` (a shell command line) on the host, feeding `stdin`, and collects its output.
    pub async fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, SshError> {
        let host = self.addr.to_string();
        let proto = |what: &'static str| {
            let host = host.clone();
            move |e: russh::Error| SshError::Protocol { host, what, detail: e.to_string() }
        };
        let mut ch = self.handle.channel_open_session().await.map_err(proto("open session"))?;
        ch.exec(true, command.as_bytes()).await.map_err(proto("exec"))?;
        if let Some(data) = stdin {
            ch.data(data).await.map_err(proto("send input"))?;
        }
        ch.eof().await.map_err(proto("send input"))?;
        let mut out = ExecOutput::default();
        let mut code = None;
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, .. } => out.stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.stderr.extend_from_slice(format!("killed by signal {signal_name:?}\n").as_bytes());
                    code = Some(128);
                }
                _ => {}
            }
        }
        out.code = code.unwrap_or(255);
        Ok(out)
    }

    /// Opens one stream to the unix socket `path` on the host.
    pub async fn open_unix(&self, path: &str) -> Result<russh::ChannelStream<russh::client::Msg>, SshError> {
        let ch = self.handle.channel_open_direct_streamlocal(path).await.map_err(|e| SshError::Forward {
            host: self.addr.to_string(),
            path: path.to_string(),
            detail: e.to_string(),
        })?;
        Ok(ch.into_stream())
    }

    /// Tunnels the host's unix socket `remote` to a new local unix socket (see the crate doc).
    /// The first stream is opened before this returns, so a wrong path fails here.
    pub async fn forward_unix(self: Arc<Self>, remote: &str) -> Result<Forward, SshError> {
        // Fail early (and clearly) when the remote socket is not there.
        drop(self.open_unix(remote).await?);
        let dir = tempfile::Builder::new().prefix("berth-ssh-").tempdir()?;
        // tempdir() makes the directory 0700: only this user can reach the socket.
        let path = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&path)?;
        let remote = remote.to_string();
        let session = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut local, _)) = listener.accept().await else { break };
                let session = session.clone();
                let remote = remote.clone();
                tokio::spawn(async move {
                    if let Ok(mut stream) = session.open_unix(&remote).await {
                        let _ = tokio::io::copy_bidirectional(&mut local, &mut stream).await;
                    }
                });
            }
        });
        Ok(Forward { path, _dir: dir, task, session: self })
    }

    /// Closes the connection politely.
    pub async fn close(&self) {
        let _ = self.handle.disconnect(Disconnect::ByApplication, "", "en").await;
    }
}

/// A tunnelled unix socket: alive until dropped.
pub struct Forward {
    path: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
    session: Arc<Session>,
}

impl Forward {
    /// The local socket that reaches the remote one.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The session the tunnel runs over.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forward").field("path", &self.path).field("host", &self.session.addr).finish()
    }
}

/// The public key of a key file (for tests and `authorized_keys`).
pub fn public_key_of(file: &Path) -> Result<PublicKey, SshError> {
    let key = russh::keys::load_secret_key(file, None)
        .map_err(|e| SshError::Local(std::io::Error::other(format!("{}: {e}", file.display()))))?;
    Ok(key.public_key().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_ssh() {
        let a: HostAddr = "root@10.0.0.1:2222".parse().unwrap();
        assert_eq!((a.user.as_deref(), a.host.as_str(), a.port), (Some("root"), "10.0.0.1", 2222));
        let b: HostAddr = "node-1.example.com".parse().unwrap();
        assert_eq!((b.user, b.host.as_str(), b.port), (None, "node-1.example.com", 22));
        let c: HostAddr = "ops@[2001:db8::1]:22".parse().unwrap();
        assert_eq!(c.host, "2001:db8::1");
        assert_eq!(c.to_string(), "ops@[2001:db8::1]");
        let d: HostAddr = "2001:db8::2".parse().unwrap();
        assert_eq!((d.host.as_str(), d.port), ("2001:db8::2", 22));
        for bad in ["", "@host", "host:0", "host:x", "user@"] {
            assert!(bad.parse::<HostAddr>().is_err(), "{bad}");
        }
    }
}
