//! Listening sockets shared between edge processes, so the proxy can be restarted without closing its ports.
//!
//! Swarm cannot start a second task of a service that publishes a host-mode port before stopping the first one,
//! so the edge is split in two: `berth edge listen` (host network) binds the TCP listeners once and hands them
//! to every process that connects to its unix socket (`SCM_RIGHTS`, plus one JSON header line saying which fd
//! is which port); `berth edge serve --listen-from PATH` accepts on those fds instead of binding. Two proxies can
//! then accept on the same sockets at once: the old one stops accepting and drains while the new one takes every
//! new connection from the same kernel accept queue, so no client is refused or reset.
//!
//! A new `listen` process first asks the old one (if its socket answers) for the listeners and only binds ports
//! it did not get, then replaces the socket file atomically: the listener itself can be restarted start-first too.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Most listeners one socket hands over (one per port and address family).
const MAX_FDS: usize = 64;
/// Longest header line accepted.
const MAX_HEADER: usize = 64 * 1024;

/// Why listeners could not be set up or received.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// A TCP port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The unix socket's directory is unsafe (world-writable or not a directory).
    #[error("{0}: the socket directory must be a directory that is not world-writable")]
    UnsafeDir(PathBuf),
    /// The unix socket could not be created or used.
    #[error("{path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The other side sent something that is not a listener hand-over.
    #[error("{path}: bad hand-over: {message}")]
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// One handed-over listener as described in the header line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListenerInfo {
    /// The TCP port (what `http_port`/`https_port` in the edge config select).
    pub port: u16,
    /// The bound address.
    pub addr: SocketAddr,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    version: u32,
    listeners: Vec<ListenerInfo>,
}

/// Listening TCP sockets, each with its port.
#[derive(Debug)]
pub struct Listeners {
    /// `(port, listener)`; a port may appear twice (IPv4 and IPv6).
    pub sockets: Vec<(u16, TcpListener)>,
}

impl Listeners {
    /// The listeners of `port` (cloned fds, so the set can be handed out again).
    pub fn for_port(&self, port: u16) -> io::Result<Vec<TcpListener>> {
        self.sockets.iter().filter(|(p, _)| *p == port).map(|(_, l)| l.try_clone()).collect()
    }

    /// Duplicates every fd (for another in-process edge).
    pub fn try_clone(&self) -> io::Result<Listeners> {
        let sockets = self.sockets.iter().map(|(p, l)| Ok((*p, l.try_clone()?))).collect::<io::Result<_>>()?;
        Ok(Listeners { sockets })
    }

    /// What the header line says about these listeners.
    pub fn infos(&self) -> Vec<ListenerInfo> {
        self.sockets
            .iter()
            .map(|(port, l)| ListenerInfo {
                port: *port,
                addr: l.local_addr().unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, *port))),
            })
            .collect()
    }
}

/// Binds one listener with `SO_REUSEADDR` (IPv6 ones `IPV6_V6ONLY`, so they sit beside an IPv4 one).
pub fn bind_one(addr: SocketAddr) -> Result<TcpListener, HandoverError> {
    use socket2::{Domain, Socket, Type};
    let err = |source| HandoverError::Bind { addr, source };
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(err)?;
    s.set_reuse_address(true).map_err(err)?;
    if addr.is_ipv6() {
        s.set_only_v6(true).map_err(err)?;
    }
    s.bind(&addr.into()).map_err(err)?;
    s.listen(4096).map_err(err)?;
    Ok(s.into())
}

/// Binds `ports` on `addr`. The unspecified IPv4 address also binds `[::]` when the host has IPv6.
pub fn bind_ports(addr: IpAddr, ports: &[u16]) -> Result<Listeners, HandoverError> {
    let mut sockets = Vec::new();
    for &port in ports {
        sockets.push((port, bind_one(SocketAddr::new(addr, port))?));
        if addr == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
            match bind_one(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)) {
                Ok(l) => sockets.push((port, l)),
                // No IPv6 on this host (or in this network namespace): IPv4 only.
                Err(HandoverError::Bind { source, .. })
                    if matches!(source.raw_os_error(), Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(Listeners { sockets })
}

fn socket_err(path: &Path) -> impl Fn(io::Error) -> HandoverError + '_ {
    move |source| HandoverError::Socket { path: path.to_owned(), source }
}

/// Makes sure the socket's directory exists (created mode 0700) and is not world-writable.
fn check_dir(path: &Path) -> Result<(), HandoverError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(socket_err(path))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(socket_err(path))?;
    }
    let meta = std::fs::metadata(&dir).map_err(socket_err(path))?;
    if !meta.is_dir() || meta.permissions().mode() & 0o002 != 0 {
        return Err(HandoverError::UnsafeDir(dir));
    }
    Ok(())
}

/// A unix listener at `path`, mode 0600, put in place atomically (a bind to a temporary name, then a rename).
fn bind_unix(path: &Path) -> Result<UnixListener, HandoverError> {
    check_dir(path)?;
    let tmp = path.with_file_name(format!(
        ".{}.{}",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    // SAFETY: umask only changes this process's file-creation mask; restored right after the bind.
    let old = unsafe { libc::umask(0o177) };
    let l = UnixListener::bind(&tmp);
    unsafe { libc::umask(old) };
    let l = l.map_err(socket_err(path))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(socket_err(path))?;
    std::fs::rename(&tmp, path).map_err(socket_err(path))?;
    Ok(l)
}

/// Sends `data` with `fds` attached (`SCM_RIGHTS`).
fn send_with_fds(sock: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let payload = std::mem::size_of_val(fds);
    // SAFETY: CMSG_* only compute sizes/offsets; the buffer is u64-aligned and large enough (CMSG_SPACE).
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: zeroed msghdr is valid; every pointer set below outlives the sendmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `space` bytes, enough for one header with `payload` bytes of data.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg) as *mut RawFd, fds.len());
        }
    }
    // SAFETY: valid fd and msghdr.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // The fds went with the first byte; the rest of the header (if the kernel took only part) follows plainly.
    (&*sock).write_all(&data[n as usize..])
}

/// Receives the first chunk of data and any fds attached to it.
fn recv_with_fds(sock: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: as in send_with_fds.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    // SAFETY: valid fd and msghdr; MSG_CMSG_CLOEXEC so received fds do not leak into child processes.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel wrote into cbuf.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned((data as *const RawFd).add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("too many file descriptors (control data truncated)"));
    }
    Ok((n as usize, fds))
}

/// Connects to a `listen` socket and takes its listeners.
pub fn receive(path: &Path) -> Result<Listeners, HandoverError> {
    let perr = |message: String| HandoverError::Protocol { path: path.to_owned(), message };
    let sock = UnixStream::connect(path).map_err(socket_err(path))?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).map_err(socket_err(path))?;
    let mut buf = vec![0u8; 4096];
    let (n, fds) = recv_with_fds(&sock, &mut buf).map_err(socket_err(path))?;
    let mut data = buf[..n].to_vec();
    while !data.contains(&b'\n') {
        if data.len() > MAX_HEADER {
            return Err(perr("header line too long".into()));
        }
        let n = (&sock).read(&mut buf).map_err(socket_err(path))?;
        if n == 0 {
            return Err(perr("connection closed before the header line".into()));
        }
        data.extend_from_slice(&buf[..n]);
    }
    let line = &data[..data.iter().position(|b| *b == b'\n').unwrap_or(data.len())];
    let header: Header = serde_json::from_slice(line).map_err(|e| perr(e.to_string()))?;
    if header.version != 1 {
        return Err(perr(format!("unknown version {}", header.version)));
    }
    if header.listeners.len() != fds.len() {
        return Err(perr(format!("header names {} listeners, got {} fds", header.listeners.len(), fds.len())));
    }
    let mut sockets = Vec::new();
    for (info, fd) in header.listeners.into_iter().zip(fds) {
        let l = TcpListener::from(fd);
        // Make sure it is what the header says: a listening TCP socket.
        let addr = l.local_addr().map_err(|e| perr(format!("fd for port {}: {e}", info.port)))?;
        if addr.port() != info.port {
            return Err(perr(format!("fd for port {} is bound to {addr}", info.port)));
        }
        sockets.push((info.port, l));
    }
    Ok(Listeners { sockets })
}

/// [`receive`], retried every 200 ms until the listener answers; `wait` is called with each failure.
pub async fn receive_retrying(path: &Path, mut wait: impl FnMut(&HandoverError)) -> Listeners {
    loop {
        let p = path.to_owned();
        let res = tokio::task::spawn_blocking(move || receive(&p)).await;
        match res {
            Ok(Ok(l)) => return l,
            Ok(Err(e)) => wait(&e),
            Err(e) => wait(&HandoverError::Protocol { path: path.to_owned(), message: e.to_string() }),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Hands `listeners` to every client of the unix socket at `path` (mode 0600, created atomically) until the
/// process is stopped. Blocking; what `berth edge listen` runs after [`setup`].
pub fn serve_socket(unix: UnixListener, listeners: &Listeners) -> io::Error {
    let header = Header { version: 1, listeners: listeners.infos() };
    let mut line = serde_json::to_vec(&header).unwrap_or_default();
    line.push(b'\n');
    let fds: Vec<RawFd> = listeners.sockets.iter().map(|(_, l)| l.as_raw_fd()).collect();
    loop {
        match unix.accept() {
            Ok((s, _)) => {
                let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                let _ = send_with_fds(&s, &line, &fds);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return e,
        }
    }
}

/// Gets the listeners for `berth edge listen`: from a listener already running at `path` when its socket answers
/// (so the old and new listener processes overlap without closing the ports), binding only the missing ports,
/// then puts a new socket in place at `path`. Returns the unix socket to serve and the listeners.
pub fn setup(path: &Path, addr: IpAddr, ports: &[u16]) -> Result<(UnixListener, Listeners, bool), HandoverError> {
    check_dir(path)?;
    let mut inherited = false;
    let mut have = match receive(path) {
        Ok(l) => {
            inherited = true;
            // Keep only what was asked for.
            Listeners {
                sockets: l
                    .sockets
                    .into_iter()
                    .filter(|(p, l)| ports.contains(p) && l.local_addr().is_ok_and(|a| addr_matches(addr, a.ip())))
                    .collect(),
            }
        }
        Err(_) => Listeners { sockets: Vec::new() },
    };
    let missing: Vec<u16> = ports.iter().copied().filter(|p| !have.sockets.iter().any(|(q, _)| q == p)).collect();
    let fresh = bind_ports(addr, &missing)?;
    have.sockets.extend(fresh.sockets);
    let unix = bind_unix(path)?;
    Ok((unix, have, inherited))
}

fn addr_matches(want: IpAddr, got: IpAddr) -> bool {
    want == got || (want == IpAddr::V4(Ipv4Addr::UNSPECIFIED) && got == IpAddr::V6(Ipv6Addr::UNSPECIFIED))
}
