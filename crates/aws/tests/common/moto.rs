//! A real `moto_server` (PyPI `moto[server]`) on a free loopback port, for the AWS tests of
//! berth-aws and of the berth binary (`#[path]`-included from crates/berth/tests). Killed on drop.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`: what `AWS_ENDPOINT_URL` is set to.
    pub url: String,
    /// moto's working directory: its request recorder writes `moto_recording` there.
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts it (`$MOTO_SERVER`, default `moto_server` on the PATH) and waits until it listens.
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(&bin)
            .current_dir(dir.path())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} must be installed (pip install 'moto[server]'): {e}"));
        let moto = Moto { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "moto_server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
