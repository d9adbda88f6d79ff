//! berth-testapp: the workload of berth's integration tests.
//!
//! A static HTTP/1.1 server (std + libc only, so it runs in a `FROM scratch` image) and a few one-shot
//! subcommands for health checks and one-off runs:
//!
//! - `berth-testapp` or `berth-testapp serve`: listens on `0.0.0.0:$PORT` (default 8080). Routes:
//!   `GET /` → `hello from $VERSION` (default `v1`); `/health` → 200 `ok`, or 500 `unhealthy` when
//!   `HEALTH=fail` or the file `/tmp/unhealthy` exists; `/slow?ms=N` → answers after N ms; `/env/NAME` → the
//!   value of env var NAME (404 if unset); `/file/PATH` → the content of `/PATH` (404 if unreadable);
//!   `/log/TEXT` → prints TEXT on stdout; `/host` → the host name; `/version` → `$VERSION`. Keep-alive.
//!   On SIGTERM/SIGINT it stops accepting, finishes in-flight requests (at most ~900 ms) and exits 0.
//! - `berth-testapp check URL`: exit 0 iff `GET URL` answers 200 (for `HEALTHCHECK`).
//! - `berth-testapp exit N`: prints `exiting with N` and exits with N.
//! - `berth-testapp echo WORDS...`: prints the words.
//! - `berth-testapp sleep SECS`: sleeps (fractional seconds allowed); exits 143 on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
        Some("check") => check(args.get(1).map(String::as_str)),
        Some("exit") => exit_with(args.get(1).map(String::as_str)),
        Some("echo") => {
            println!("{}", args[1..].join(" "));
            0
        }
        Some("sleep") => sleep(args.get(1).map(String::as_str)),
        Some("help" | "-h" | "--help") => {
            println!("usage: berth-testapp [serve | check URL | exit N | echo WORDS... | sleep SECS]");
            0
        }
        Some(other) => {
            eprintln!("berth-testapp: unknown command `{other}` (try `berth-testapp help`)");
            2
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Blocks SIGTERM and SIGINT in the calling thread (and threads spawned later), returning the set, so that
/// one thread can `sigwait` for them. Works for PID 1 in a container too, where default actions are ignored.
fn block_term_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-mask calls on a zero-initialised, then sigemptyset-initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits until one of the signals of `set` arrives; returns its number.
fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is an initialised sigset and `sig` a valid out pointer.
    unsafe {
        libc::sigwait(set, &mut sig);
    }
    sig
}

/// Shared state of the server.
struct State {
    version: String,
    stopping: AtomicBool,
    in_flight: AtomicUsize,
}

fn serve() -> i32 {
    let set = block_term_signals();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("berth-testapp: cannot listen on 0.0.0.0:{port}: {e}");
            return 1;
        }
    };
    let version = std::env::var("VERSION").unwrap_or_else(|_| "v1".into());
    let local = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("berth-testapp {version} listening on 0.0.0.0:{local}");
    let _ = std::io::stdout().flush();
    let state = Arc::new(State { version, stopping: AtomicBool::new(false), in_flight: AtomicUsize::new(0) });
    {
        let state = state.clone();
        std::thread::spawn(move || {
            let sig = wait_signal(&set);
            println!("berth-testapp: signal {sig}, stopping");
            let _ = std::io::stdout().flush();
            state.stopping.store(true, Ordering::SeqCst);
            // Wake the accept loop.
            let _ = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], local)), Duration::from_millis(200));
        });
    }
    run_server(listener, state.clone());
    let deadline = Instant::now() + Duration::from_millis(900);
    while state.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("berth-testapp: stopped");
    0
}

/// Accepts connections until `state.stopping` is set, one thread per connection.
fn run_server(listener: TcpListener, state: Arc<State>) {
    for stream in listener.incoming() {
        if state.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let state = state.clone();
        std::thread::spawn(move || {
            let _ = handle_connection(stream, &state);
        });
    }
}

/// Decrements the in-flight counter when a request is done.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves requests on one connection until the client closes, asks to close, or the server stops.
fn handle_connection(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(&state.in_flight);
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let http10 = parts.next() == Some("HTTP/1.0");
        let mut keep_alive = !http10;
        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") {
                    if value.eq_ignore_ascii_case("close") {
                        keep_alive = false;
                    } else if value.eq_ignore_ascii_case("keep-alive") {
                        keep_alive = true;
                    }
                }
            }
        }
        if content_length > 0 {
            std::io::copy(&mut (&mut reader).take(content_length as u64), &mut std::io::sink())?;
        }
        let (status, body) = route(&target, state);
        let keep_alive = keep_alive && !state.stopping.load(Ordering::SeqCst);
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            500 => "Internal Server Error",
            _ => "Bad Request",
        };
        let mut response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
            body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        )
        .into_bytes();
        if method != "HEAD" {
            response.extend_from_slice(&body);
        }
        writer.write_all(&response)?;
        writer.flush()?;
        if !keep_alive {
            let _ = writer.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

/// Answers one request target: (status, body).
fn route(target: &str, state: &State) -> (u16, Vec<u8>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/" => (200, format!("hello from {}", state.version).into_bytes()),
        "/version" => (200, state.version.clone().into_bytes()),
        "/health" => {
            let failing =
                std::env::var("HEALTH").is_ok_and(|v| v == "fail") || std::path::Path::new("/tmp/unhealthy").exists();
            if failing { (500, b"unhealthy".to_vec()) } else { (200, b"ok".to_vec()) }
        }
        "/slow" => {
            let ms: u64 =
                query.split('&').find_map(|kv| kv.strip_prefix("ms=")).and_then(|v| v.parse().ok()).unwrap_or(1000);
            std::thread::sleep(Duration::from_millis(ms));
            (200, format!("slept {ms} ms").into_bytes())
        }
        "/host" => {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            (200, host.trim().as_bytes().to_vec())
        }
        _ => {
            if let Some(name) = path.strip_prefix("/env/") {
                match std::env::var(percent_decode(name)) {
                    Ok(v) => (200, v.into_bytes()),
                    Err(_) => (404, format!("env {name} is not set").into_bytes()),
                }
            } else if let Some(file) = path.strip_prefix("/file/") {
                let file = format!("/{}", percent_decode(file));
                match std::fs::read(&file) {
                    Ok(data) => (200, data),
                    Err(e) => (404, format!("cannot read {file}: {e}").into_bytes()),
                }
            } else if let Some(text) = path.strip_prefix("/log/") {
                println!("{}", percent_decode(text));
                let _ = std::io::stdout().flush();
                (200, b"logged".to_vec())
            } else {
                (404, format!("no route {path}").into_bytes())
            }
        }
    }
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `http://host[:port][/path]` → (host:port, path).
fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Some((authority, path.to_string()))
}

/// GETs `url`; returns the status code.
fn http_status(url: &str, timeout: Duration) -> Result<u16, String> {
    let (authority, path) = parse_url(url).ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {authority}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let host = authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(&authority);
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).map_err(|e| format!("read: {e}"))?;
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {}", line.trim_end()))
}

fn check(url: Option<&str>) -> i32 {
    let Some(url) = url else {
        eprintln!("usage: berth-testapp check URL");
        return 2;
    };
    match http_status(url, Duration::from_secs(3)) {
        Ok(200) => 0,
        Ok(status) => {
            eprintln!("check {url}: status {status}");
            1
        }
        Err(e) => {
            eprintln!("check {url}: {e}");
            1
        }
    }
}

fn exit_with(code: Option<&str>) -> i32 {
    let code: i32 = code.and_then(|c| c.parse().ok()).unwrap_or(0);
    println!("exiting with {code}");
    code
}

fn sleep(secs: Option<&str>) -> i32 {
    let secs: f64 = secs.and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let set = block_term_signals();
    std::thread::spawn(move || {
        wait_signal(&set);
        std::process::exit(143);
    });
    std::thread::sleep(Duration::from_secs_f64(secs.max(0.0)));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> (u16, Arc<State>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state =
            Arc::new(State { version: "v9".into(), stopping: AtomicBool::new(false), in_flight: AtomicUsize::new(0) });
        let s = state.clone();
        std::thread::spawn(move || run_server(listener, s));
        (port, state)
    }

    fn get(stream: &mut BufReader<TcpStream>, path: &str) -> (u16, String) {
        write!(stream.get_mut(), "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut status = String::new();
        stream.read_line(&mut status).unwrap();
        let mut len = 0;
        loop {
            let mut h = String::new();
            stream.read_line(&mut h).unwrap();
            if h.trim_end().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        stream.read_exact(&mut body).unwrap();
        (status.split_whitespace().nth(1).unwrap().parse().unwrap(), String::from_utf8(body).unwrap())
    }

    #[test]
    fn root_says_hello_with_version_and_connection_is_kept_alive() {
        let (port, _) = start();
        let mut s = BufReader::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
        assert_eq!(get(&mut s, "/"), (200, "hello from v9".into()));
        assert_eq!(get(&mut s, "/health"), (200, "ok".into()));
        assert_eq!(get(&mut s, "/slow?ms=10"), (200, "slept 10 ms".into()));
        assert_eq!(get(&mut s, "/nope").0, 404);
    }

    #[test]
    fn env_and_file_routes_return_values() {
        let (port, _) = start();
        let mut s = BufReader::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
        let (status, body) = get(&mut s, "/env/PATH");
        assert_eq!(status, 200);
        assert_eq!(body, std::env::var("PATH").unwrap());
        assert_eq!(get(&mut s, "/env/BERTH_TESTAPP_SURELY_UNSET").0, 404);
        let dir = std::env::temp_dir().join(format!("testapp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret"), "s3cr3t").unwrap();
        let path = format!("/file{}", dir.join("secret").display());
        assert_eq!(get(&mut s, &path), (200, "s3cr3t".into()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn check_status_reads_the_status_code() {
        let (port, _) = start();
        assert_eq!(http_status(&format!("http://127.0.0.1:{port}/health"), Duration::from_secs(2)), Ok(200));
        assert_eq!(http_status(&format!("http://127.0.0.1:{port}/missing"), Duration::from_secs(2)), Ok(404));
        assert!(http_status("http://127.0.0.1:1/", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn parse_url_defaults_port_and_path() {
        assert_eq!(parse_url("http://a:81/x?y"), Some(("a:81".into(), "/x?y".into())));
        assert_eq!(parse_url("http://a"), Some(("a:80".into(), "/".into())));
        assert_eq!(parse_url("https://a"), None);
    }

    #[test]
    fn percent_decode_decodes_escapes() {
        assert_eq!(percent_decode("a%20b%2Fc%zz"), "a b/c%zz");
    }
}
