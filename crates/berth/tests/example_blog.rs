//! examples/blog end to end: the real berth binary deploys the blog (Django + gunicorn, Celery
//! worker and beat, Postgres, Redis, the Vue front end) on the real dockerd from local base images
//! (`examples/blog/base-images.sh`), then checks it the way a visitor and an operator would: the
//! API with token auth, the admin login with CSRF, an image upload, the Celery task's result, beat
//! runs, release commands once per release, data surviving a new release, a rollback and a Postgres
//! restart, and a bad release (failing migration) rolled back automatically with the old version
//! serving.
//!
//! Stack `h3blog`. Everything goes through berth's edge on 127.0.0.1:20080 (HTTP, redirects) and
//! :20443 (HTTPS, the edge's local certificate), as `localhost` (the site's domain in the test). The test works on a
//! copy of `examples/blog` in a temporary directory: the edge ports are changed there, and the bad
//! release adds a migration to that copy.

#[path = "common/blog.rs"]
mod blog;
use blog::{base_images, copy_dir, repo};

#[path = "../../engine/tests/common/stack.rs"]
mod stack;
use stack::{Cleanup, docker};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const STACK: &str = "h3blog";
const HTTP_PORT: u16 = 20080;
const PORT: u16 = 20443;
/// The site's domain: `localhost` (BLOG_DOMAIN), which resolves to 127.0.0.1 here without any
/// change to the system, so that wrk (no --resolve) can connect with the right SNI.
const HOST: &str = "localhost";
const ADMIN_PASSWORD: &str = "h3-test-admin-password";

/// A failing migration: the bad release of the test.
const BAD_MIGRATION: &str = "from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [(\"posts\", \"0001_initial\")]
    operations = [migrations.RunSQL(\"SELECT no_such_column FROM posts_post\")]
";

/// A 1x1 GIF (no checksums to get wrong); Pillow accepts it for the ImageField.
const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

struct Blog {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Blog {
    fn berth(&self, args: &[&str], app_version: &str) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.current_dir(&self.dir)
            .args(["-s", STACK])
            .args(args)
            .env("APP_VERSION", app_version)
            .env("BLOG_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BLOG_DOMAIN", HOST);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.output().expect("cannot run berth")
    }

    fn deploy(&self, app_version: &str) -> (Option<i32>, String) {
        let o = self.berth(&["deploy", "--plain", "--timeout", "300"], app_version);
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// curl through the edge (HTTPS on 127.0.0.1:PORT as HOST); returns (status, body).
/// `extra` are further curl arguments.
fn curl(method: &str, path: &str, extra: &[&str]) -> (u16, String) {
    let url = format!("https://{HOST}:{PORT}{path}");
    let resolve = format!("{HOST}:{PORT}:127.0.0.1");
    let o = Command::new("curl")
        .args(["-sS", "-k", "--resolve", &resolve, "--max-time", "20", "-X", method, "-w", "\n%{http_code}"])
        .args(extra)
        .arg(&url)
        .output()
        .expect("cannot run curl");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn json(method: &str, path: &str, extra: &[&str]) -> (u16, Value) {
    let (code, body) = curl(method, path, extra);
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Polls `f` every 500 ms until it returns Some, at most `secs` seconds.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn version() -> Option<String> {
    let (code, v) = json("GET", "/api/health", &[]);
    (code == 200 && v["ok"] == true).then(|| v["version"].as_str().unwrap_or("").to_string())
}

fn wait_version(want: &str) {
    let mut last = None;
    let end = Instant::now() + Duration::from_secs(90);
    while Instant::now() < end {
        last = Some(curl("GET", "/api/health", &[]));
        if version().as_deref() == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("/api/health did not report {want} within 90 s; last answer: {last:?}");
}

fn stats() -> Value {
    let (code, v) = json("GET", "/api/stats", &[]);
    assert_eq!(code, 200, "/api/stats: {v}");
    v
}

fn post_titles() -> Vec<String> {
    let (code, v) = json("GET", "/api/posts", &[]);
    assert_eq!(code, 200, "/api/posts: {v}");
    v.as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_string()).collect()
}

fn running_container(service: &str) -> Option<String> {
    let (_, out) = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
        "--filter",
        "status=running",
    ]);
    out.lines().next().map(str::to_string)
}

fn db_container() -> Option<String> {
    running_container(&format!("{STACK}_db"))
}

/// Checks every response of a wrk run: 200 with `"ok": true`, counted per version.
const WRK_SCRIPT: &str = r#"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; v1 = 0; v2 = 0 end
function response(status, headers, body)
  if status == 200 and body:find('"version": "v1"', 1, true) then v1 = v1 + 1
  elseif status == 200 and body:find('"version": "v2"', 1, true) then v2 = v2 + 1
  else
    bad = bad + 1
    if bad <= 5 then io.stderr:write(string.format("BAD status=%d body=%q\n", status, body:sub(1, 120))) end
  end
end
function done(summary, latency, requests)
  local b, a1, a2 = 0, 0, 0
  for _, t in ipairs(threads) do b = b + t:get("bad"); a1 = a1 + t:get("v1"); a2 = a2 + t:get("v2") end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d bad=%d v1=%d v2=%d connect=%d read=%d write=%d timeout=%d p99_us=%d\n",
    summary.requests, b, a1, a2, e.connect, e.read, e.write, e.timeout, latency:percentile(99)))
end
"#;

/// wrk against /api/health through the edge (HTTPS) until stopped; returns its RESULT line fields.
struct Load(std::process::Child);

impl Load {
    fn start(dir: &Path) -> Load {
        let script = dir.join("check.lua");
        std::fs::write(&script, WRK_SCRIPT).unwrap();
        let child = Command::new("wrk")
            .args(["-t1", "-c4", "-d600s", "--timeout", "10s", "-s"])
            .arg(&script)
            .arg(format!("https://{HOST}:{PORT}/api/health"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("wrk (scripts/host-setup.sh installs it)");
        Load(child)
    }

    fn stop(self) -> (String, std::collections::HashMap<String, u64>) {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let out = self.0.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = text.lines().find(|l| l.starts_with("RESULT")).unwrap_or_else(|| panic!("wrk: {text}\n{err}"));
        let fields = line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect();
        (format!("{line}\n{err}"), fields)
    }
}

#[test]
fn blog_deploys_serves_api_admin_celery_and_survives_releases_rollbacks_and_a_postgres_restart() {
    let env = base_images();
    let _guard = Cleanup::new(STACK);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("blog");
    copy_dir(&repo().join("examples/blog"), &dir);
    // The edge on test ports (the file says 80/443).
    let compose = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    let patched = compose
        .lines()
        .map(|l| match l.trim_start() {
            t if t.starts_with("http_port:") => format!("    http_port: {HTTP_PORT}"),
            t if t.starts_with("https_port:") => format!("    https_port: {PORT}"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(compose.trim_end(), patched, "compose.yaml has x-berth.edge ports to change");
    std::fs::write(dir.join("compose.yaml"), patched + "\n").unwrap();
    let blog = Blog { dir: dir.clone(), env };

    // Release 1.
    let t = Instant::now();
    let (code, e) = blog.deploy("v1");
    assert_eq!(code, Some(0), "first deploy:\n{e}");
    assert!(e.contains("release 1 is live"), "{e}");
    eprintln!("first deploy: {:.1} s", t.elapsed().as_secs_f64());
    wait_version("v1");

    // Release commands ran once: migrate, collectstatic, ensure_superuser, release_marker.
    assert_eq!(stats()["release_runs"], 1, "{}", stats());

    // API: login, create (JSON and multipart with an image), list newest first, fetch.
    let (code, v) = json(
        "POST",
        "/api/login",
        &["-H", "Content-Type: application/json", "-d", r#"{"username":"admin","password":"wrong"}"#],
    );
    assert_eq!(code, 401, "{v}");
    let body = format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    let (code, v) = json("POST", "/api/login", &["-H", "Content-Type: application/json", "-d", &body]);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["username"], "admin");
    let auth = format!("Authorization: Token {}", v["token"].as_str().unwrap());

    let new_post = r#"{"title":"first post","body":"one two three four five"}"#;
    let (code, v) = json("POST", "/api/posts", &["-H", "Content-Type: application/json", "-d", new_post]);
    assert_eq!(code, 401, "creating a post needs the token: {v}");
    let (code, v) = json("POST", "/api/posts", &["-H", &auth, "-H", "Content-Type: application/json", "-d", new_post]);
    assert_eq!(code, 201, "{v}");
    let first = v["id"].as_u64().unwrap();
    assert_eq!(v["author"], "admin");

    let gif = tmp.path().join("dot.gif");
    std::fs::write(&gif, GIF).unwrap();
    let image_arg = format!("image=@{};type=image/gif", gif.display());
    let (code, v) = json(
        "POST",
        "/api/posts",
        &["-H", &auth, "-F", "title=with a picture", "-F", "body=a tiny gif", "-F", &image_arg],
    );
    assert_eq!(code, 201, "{v}");
    let second = v["id"].as_u64().unwrap();
    let image_url = v["image_url"].as_str().unwrap().to_string();
    assert!(image_url.starts_with("/media/posts/") && image_url.ends_with(".gif"), "{image_url}");

    assert_eq!(post_titles(), ["with a picture", "first post"], "newest first");
    let (code, v) = json("GET", &format!("/api/posts/{first}"), &[]);
    assert_eq!((code, v["title"].as_str()), (200, Some("first post")), "{v}");
    let (code, _) = json("GET", "/api/posts/999999", &[]);
    assert_eq!(code, 404);

    // The upload comes back from the edge (media volume), byte for byte.
    let got = tmp.path().join("got.gif");
    let (code, headers) = curl("GET", &image_url, &["-D", "-", "-o", got.to_str().unwrap()]);
    assert_eq!(code, 200, "{headers}");
    assert!(headers.to_ascii_lowercase().contains("content-type: image/gif"), "{headers}");
    assert_eq!(std::fs::read(&got).unwrap(), GIF);

    // Plain HTTP redirects to HTTPS; the front end answers deep links with the app (SPA).
    let o = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--resolve"])
        .arg(format!("{HOST}:{HTTP_PORT}:127.0.0.1"))
        .arg(format!("http://{HOST}:{HTTP_PORT}/api/health"))
        .output()
        .unwrap();
    let redirect = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(redirect, format!("308 https://{HOST}:{PORT}/api/health"));
    let (code, index) = curl("GET", "/", &[]);
    assert_eq!(code, 200);
    let (code, deep) = curl("GET", &format!("/posts/{first}"), &[]);
    assert_eq!((code, &deep), (200, &index), "a deep link gets the app's index.html");
    assert!(deep.contains("<div id=\"app\""), "{deep}");

    // Celery: the worker fills word_count; beat runs every 10 s.
    let words = wait_for(60, "the Celery task's word_count", || {
        let (_, v) = json("GET", &format!("/api/posts/{first}"), &[]);
        v["word_count"].as_u64()
    });
    assert_eq!(words, 5);
    let (_, v) = json("GET", &format!("/api/posts/{first}"), &[]);
    assert_eq!(v["summary"], "one two three four five");
    wait_for(60, "a beat run", || (stats()["beat_runs"].as_u64().unwrap_or(0) >= 1).then_some(()));
    assert!(stats()["last_beat"].is_string(), "{}", stats());

    // Admin: login page with a CSRF token, login POST with it, the index afterwards.
    let jar = tmp.path().join("cookies");
    let jar = jar.to_str().unwrap();
    let referer = format!("Referer: https://{HOST}:{PORT}/admin/login/");
    let referer = referer.as_str();
    let (code, page) = curl("GET", "/admin/login/?next=/admin/", &["-c", jar, "-b", jar]);
    assert_eq!(code, 200, "{page}");

    // The admin's static files: collected in the release phase with hashed names, served by the
    // edge from the static volume with long-lived cache headers.
    let css = page
        .split('"')
        .find(|s| s.starts_with("/static/admin/css/base.") && s.ends_with(".css"))
        .unwrap_or_else(|| panic!("a hashed /static/admin/css/base.*.css in the login page: {page}"))
        .to_string();
    let (code, headers) = curl("HEAD", &css, &["-I"]);
    assert_eq!(code, 200, "{css}: {headers}");
    let headers = headers.to_ascii_lowercase();
    assert!(headers.contains("cache-control: public, max-age=31536000, immutable"), "{headers}");
    assert!(headers.contains("etag:") && headers.contains("content-type: text/css"), "{headers}");

    let token = page
        .split("name=\"csrfmiddlewaretoken\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrfmiddlewaretoken in the login form")
        .to_string();
    let (code, _) = curl(
        "POST",
        "/admin/login/?next=/admin/",
        &[
            "-c",
            jar,
            "-b",
            jar,
            "-H",
            referer,
            "-d",
            "username=admin",
            "-d",
            "password=wrong",
            "-d",
            &format!("csrfmiddlewaretoken={token}"),
        ],
    );
    assert_eq!(code, 200, "a wrong password shows the form again");
    let (code, _) = curl(
        "POST",
        "/admin/login/?next=/admin/",
        &["-c", jar, "-b", jar, "-H", referer, "-d", "username=admin", "-d", &format!("password={ADMIN_PASSWORD}")],
    );
    assert_eq!(code, 403, "a login POST without the CSRF token is refused");
    let (code, _) = curl(
        "POST",
        "/admin/login/?next=/admin/",
        &[
            "-c",
            jar,
            "-b",
            jar,
            "-H",
            referer,
            "-d",
            "username=admin",
            "-d",
            &format!("password={ADMIN_PASSWORD}"),
            "-d",
            &format!("csrfmiddlewaretoken={token}"),
            "-d",
            "next=/admin/",
        ],
    );
    assert_eq!(code, 302, "admin login with the CSRF token");
    let (code, page) = curl("GET", "/admin/posts/post/", &["-b", jar]);
    assert_eq!(code, 200);
    assert!(page.contains("first post") && page.contains("with a picture"), "{page}");

    // Release 2 (a new APP_VERSION): release commands run once more; the data is still there.
    // Under constant load through the edge: not one failed request.
    let load = Load::start(tmp.path());
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    let (code, e) = blog.deploy("v2");
    eprintln!("v2 deploy (release commands + rolling update): {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(code, Some(0), "second deploy:\n{e}");
    wait_version("v2");
    std::thread::sleep(Duration::from_secs(2));
    let (line, r) = load.stop();
    eprintln!("load during the v2 release: {line}");
    let failed: u64 =
        ["bad", "connect", "read", "write", "timeout"].iter().map(|k| r.get(*k).copied().unwrap_or(0)).sum();
    assert_eq!(failed, 0, "failed requests during the v2 release: {line}");
    assert!(r["v1"] > 0 && r["v2"] > 0, "the load saw both versions: {line}");
    assert!(e.contains("release 2 is live"), "{e}");
    wait_version("v2");
    assert_eq!(stats()["release_runs"], 2, "{}", stats());
    assert_eq!(post_titles(), ["with a picture", "first post"]);

    // The same files again: nothing to do, no release commands.
    // (Checked at the end, so that one regression here does not hide the rest.)
    let mut later = Vec::new();
    let (code, e) = blog.deploy("v2");
    assert_eq!(code, Some(0), "{e}");
    if !e.contains("is up to date") {
        later.push(format!("a deploy without changes is not `up to date`:\n{e}"));
    }
    assert_eq!(stats()["release_runs"], 2, "{}", stats());

    // A bad release: a migration that fails. The release phase stops it before any service
    // changes; v2 keeps serving and its data is intact.
    let bad = dir.join("backend/posts/migrations/0002_broken.py");
    std::fs::write(&bad, BAD_MIGRATION).unwrap();
    // Under load: not one failed request, and every answer from v2 (a v3 body counts as bad).
    let load = Load::start(tmp.path());
    std::thread::sleep(Duration::from_secs(1));
    let (code, e) = blog.deploy("v3");
    std::thread::sleep(Duration::from_secs(1));
    let (line, r) = load.stop();
    eprintln!("load during the failing v3 release: {line}");
    let failed: u64 =
        ["bad", "connect", "read", "write", "timeout"].iter().map(|k| r.get(*k).copied().unwrap_or(0)).sum();
    assert_eq!(failed, 0, "failed requests during the bad release: {line}");
    assert!(r["v2"] > 0 && r["v1"] == 0, "only v2 answered during the bad release: {line}");
    assert_eq!(code, Some(4), "a failing migration fails the deploy:\n{e}");
    assert!(e.contains(" aborted") || e.contains(" failed"), "{e}");
    assert!(e.contains("migrate"), "the failing release command is named:\n{e}");
    assert!(e.contains("no_such_column"), "the migration's error is shown:\n{e}");
    assert_eq!(version().as_deref(), Some("v2"), "v2 still serves");
    assert_eq!(stats()["release_runs"], 2, "{}", stats());
    std::fs::remove_file(&bad).unwrap();

    eprintln!("bad release rejected");
    // berth rollback: back to release 1 (v1), no release commands, the data stays.
    let o = blog.berth(&["rollback", "1", "--timeout", "300"], "v2");
    assert_eq!(o.status.code(), Some(0), "rollback:\n{}", String::from_utf8_lossy(&o.stderr));
    wait_version("v1");
    assert_eq!(stats()["release_runs"], 2, "{}", stats());
    assert_eq!(post_titles(), ["with a picture", "first post"]);

    eprintln!("rolled back to v1");
    // Edge restart: kill the edge's container; Swarm starts a new one, the data is the same.
    let old_edge = running_container(&format!("{STACK}_edge")).expect("a running edge container");
    let (ok, out) = docker(&["kill", &old_edge]);
    assert!(ok, "{out}");
    wait_for(120, "a new edge task", || running_container(&format!("{STACK}_edge")).filter(|c| *c != old_edge));
    wait_version("v1");
    assert_eq!(post_titles(), ["with a picture", "first post"]);

    // Postgres closes the backends' persistent connections (as after a network reset; seen in the
    // cluster test as two 503 "server closed the connection unexpectedly"): the requests right
    // after are answered, each worker replacing its dead connection first.
    let db = db_container().expect("a running db container");
    let sql = "select count(pg_terminate_backend(pid)) from pg_stat_activity \
               where datname = 'blog' and pid <> pg_backend_pid()";
    let (ok, out) = docker(&[
        "exec",
        &db,
        "sh",
        "-c",
        &format!("PGPASSWORD=$(cat /run/secrets/db_password) psql -h 127.0.0.1 -U blog -d blog -tAc \"{sql}\""),
    ]);
    assert!(ok, "psql: {out}");
    assert!(out.trim().parse::<u32>().is_ok_and(|n| n > 0), "no backend connection was closed: {out}");
    let failed: Vec<String> = (0..20)
        .map(|_| curl("GET", "/api/health", &[]))
        .filter(|(code, _)| *code != 200)
        .map(|(code, body)| format!("{code} {body}"))
        .collect();
    assert!(failed.is_empty(), "requests failed after Postgres closed the connections: {failed:?}");

    // Postgres restart: kill the db container; Swarm starts a new task on the same volume.
    let old = db_container().expect("a running db container");
    let (ok, out) = docker(&["kill", &old]);
    assert!(ok, "{out}");
    wait_for(120, "a new db task", || db_container().filter(|c| *c != old));
    let titles = wait_for(120, "the API after the Postgres restart", || {
        let (code, v) = json("GET", "/api/posts", &[]);
        (code == 200)
            .then(|| v.as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_string()).collect::<Vec<_>>())
    });
    assert_eq!(titles, ["with a picture", "first post"]);
    let (_, v) = json("GET", &format!("/api/posts/{second}"), &[]);
    assert_eq!(v["image_url"].as_str(), Some(image_url.as_str()));
    assert!(later.is_empty(), "{}", later.join("\n"));
}
