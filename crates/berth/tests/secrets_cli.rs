//! Generated and environment secrets through the binary: the values never appear in
//! `berth config`, `berth plan`, `berth plan --json` or `berth deploy` output; a missing variable is
//! a clear error. The deploy test uses stack `t-secretscli-1` and host port 18432 (no other test
//! publishes it) and removes what it made in a guard.

#[path = "../../engine/tests/common/stack.rs"]
mod stack;
use stack::Cleanup;

#[path = "../../engine/tests/common/images.rs"]
mod images;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Cli-pa55word-1st";
const ROTATED: &str = "Cli-pa55word-2nd";
const PORT: u16 = 18432;
/// Runs berth in `dir` with `DB_PASSWORD` set to `password` (or unset).
fn berth(dir: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.current_dir(dir).args(args).env_remove("DB_PASSWORD");
    if let Some(p) = password {
        c.env("DB_PASSWORD", p);
    }
    c.output().expect("cannot run berth")
}

fn all_output(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Standard base64 with padding.
fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() { T[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// Panics if `out` contains any of the values or their base64.
fn assert_no_values(what: &str, out: &str, values: &[&str]) {
    for v in values {
        assert!(!out.contains(v), "{what} shows the secret value {v}:\n{out}");
        assert!(!out.contains(&b64(v.as_bytes())), "{what} shows the base64 of secret value {v}:\n{out}");
    }
}

fn write_compose(dir: &Path) {
    let text = format!(
        "services:
  web:
    image: {image}
    secrets: [gen_key, db_password]
    stop_grace_period: 1s
    ports: [{{ target: 8080, published: {PORT}, mode: host }}]
    deploy:
      update_config: {{ delay: 0s, order: stop-first }}
secrets:
  gen_key:
    x-berth: {{ generate: 50 }}
  db_password:
    x-berth: {{ env: DB_PASSWORD }}
",
        image = images::NO_HEALTH
    );
    std::fs::write(dir.join("compose.yaml"), text).unwrap();
}

fn get(path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], PORT).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf.split_once("\r\n\r\n")?.1.to_string()))
}

/// `/run/secrets/NAME` of the running web task once it equals `until` (any content if `None`).
fn secret_file(name: &str, until: Option<&str>) -> String {
    let start = Instant::now();
    loop {
        if let Some((200, body)) = get(&format!("/file/run/secrets/{name}"))
            && until.is_none_or(|u| u == body)
        {
            return body;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "web never served /run/secrets/{name} ({until:?})");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn config_shows_the_x_berth_block_but_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    write_compose(dir.path());
    for format in ["yaml", "json"] {
        let o = berth(dir.path(), &["config", "--format", format], Some(PASSWORD));
        assert!(o.status.success(), "{}", all_output(&o));
        let out = all_output(&o);
        assert_no_values("berth config", &out, &[PASSWORD]);
        assert!(out.contains("DB_PASSWORD") && out.contains("generate"), "{out}");
    }
}

#[test]
fn missing_variable_names_the_secret_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    write_compose(dir.path());
    let o = berth(dir.path(), &["check"], None);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    let out = all_output(&o);
    assert!(out.contains("secret `db_password`") && out.contains("`DB_PASSWORD`"), "{out}");
    assert!(out.contains("--env-file") && out.contains(".env"), "{out}");
}

#[test]
fn plan_and_deploy_never_show_secret_values() {
    images::ensure();
    const STACK: &str = "t-secretscli-1";
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    write_compose(dir.path());
    let d = dir.path();

    let o = berth(d, &["-s", STACK, "plan"], Some(PASSWORD));
    assert!(o.status.success(), "{}", all_output(&o));
    let text = all_output(&o);
    assert_no_values("berth plan", &text, &[PASSWORD]);
    assert!(text.contains(&format!("+ create secret {STACK}_gen_key (generated, 50 characters)")), "{text}");
    assert!(
        text.contains(&format!("+ create secret {STACK}_db_password_")) && text.contains("(sensitive, sha256:"),
        "{text}"
    );
    let o = berth(d, &["-s", STACK, "plan", "--json"], Some(PASSWORD));
    assert!(o.status.success(), "{}", all_output(&o));
    assert_no_values("berth plan --json", &all_output(&o), &[PASSWORD]);

    let o = berth(d, &["-s", STACK, "deploy", "--plain", "--timeout", "90"], Some(PASSWORD));
    assert!(o.status.success(), "{}", all_output(&o));
    let deploy_out = all_output(&o);
    let generated = secret_file("gen_key", None);
    assert_eq!(generated.len(), 50);
    assert_eq!(secret_file("db_password", None), PASSWORD);
    assert_no_values("berth deploy", &deploy_out, &[PASSWORD, &generated]);

    // The value from an env file, no process variable: a rotation.
    let env_file = d.join("prod.env");
    std::fs::write(&env_file, format!("DB_PASSWORD={ROTATED}\n")).unwrap();
    let env_arg = env_file.to_str().unwrap();
    for json in [false, true] {
        let mut args = vec!["-s", STACK, "--env-file", env_arg, "plan"];
        if json {
            args.push("--json");
        }
        let o = berth(d, &args, None);
        assert!(o.status.success(), "{}", all_output(&o));
        let out = all_output(&o);
        assert_no_values("berth plan after deploy", &out, &[PASSWORD, ROTATED, &generated]);
        assert!(!out.contains(&format!("create secret {STACK}_gen_key")), "{out}");
    }
    let o = berth(d, &["-s", STACK, "--env-file", env_arg, "deploy", "--plain", "--timeout", "90"], None);
    assert!(o.status.success(), "{}", all_output(&o));
    assert_no_values("berth deploy (rotation)", &all_output(&o), &[PASSWORD, ROTATED, &generated]);
    assert_eq!(secret_file("db_password", Some(ROTATED)), ROTATED);
    assert_eq!(secret_file("gen_key", None), generated, "the generated value survives");
    let o = berth(d, &["-s", STACK, "--env-file", env_arg, "status", "--json"], None);
    assert_no_values("berth status --json", &all_output(&o), &[PASSWORD, ROTATED, &generated]);
}
