//! The built binary as a process: subcommands' exit codes and output, and graceful SIGTERM handling.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth-testapp");

#[test]
fn exit_subcommand_prints_and_exits_with_the_code() {
    let out = Command::new(BIN).args(["exit", "7"]).output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exiting with 7\n");
}

#[test]
fn echo_prints_its_words_and_unknown_commands_fail() {
    let out = Command::new(BIN).args(["echo", "a", "b c"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a b c\n");
    assert_eq!(Command::new(BIN).arg("nope").output().unwrap().status.code(), Some(2));
}

#[test]
fn check_fails_when_nothing_listens() {
    let out = Command::new(BIN).args(["check", "http://127.0.0.1:1/health"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn sigterm_finishes_in_flight_request_and_exits_zero_within_a_second() {
    let mut child = Command::new(BIN).env("PORT", "0").env("VERSION", "v7").stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("berth-testapp v7 listening on 0.0.0.0:"), "{first}");
    let port: u16 = first.trim().rsplit(':').next().unwrap().parse().unwrap();

    let status = Command::new(BIN).args(["check", &format!("http://127.0.0.1:{port}/health")]).status().unwrap();
    assert!(status.success());

    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"GET /slow?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("slept 400 ms"), "{answer}");
    assert!(answer.contains("Connection: close"), "a stopping server closes the connection: {answer}");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "still accepting");
}
