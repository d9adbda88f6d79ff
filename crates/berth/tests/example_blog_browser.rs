//! examples/blog in a real browser: the real berth binary deploys the example exactly as a user
//! would (its compose file, berth's edge in front, local base images from
//! `examples/blog/base-images.sh`), then `examples/blog/e2e/run.mjs` drives Debian's Chromium
//! (headless, playwright-core) through the edge: open the site, log in, write a post with an image,
//! see it listed and the Celery worker's word count appear, open the post's deep link (the edge's
//! SPA fallback answers it with the app), and save a screenshot (its path is printed). Then the
//! tutorial's `berth run backend -- ... createsuperuser --noinput` makes a user who can log in.
//!
//! Stack `h4blog`; the edge publishes 21081 (HTTP, redirects) and 21443 (HTTPS with the edge's
//! local development CA, which the browser is told to accept). Runs on a copy of `examples/blog`
//! whose edge ports are changed (the example's are 80/443).

#[path = "common/blog.rs"]
mod blog;
use blog::{base_images, copy_dir, repo};

#[path = "../../engine/tests/common/stack.rs"]
mod stack;
use stack::Cleanup;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const STACK: &str = "h4blog";
const HTTP_PORT: u16 = 21081;
const HTTPS_PORT: u16 = 21443;
const ADMIN_PASSWORD: &str = "h4-browser-admin-password";

/// The example's compose file with the edge's ports moved to this test's range (the value after
/// `http_port:` / `https_port:`, whatever it is: a number or an interpolation).
fn with_test_ports(compose: &str) -> String {
    let mut out = String::new();
    let mut seen = 0;
    for line in compose.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if trimmed.starts_with("http_port:") {
            out.push_str(&format!("{indent}http_port: {HTTP_PORT}\n"));
            seen += 1;
        } else if trimmed.starts_with("https_port:") {
            out.push_str(&format!("{indent}https_port: {HTTPS_PORT}\n"));
            seen += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_eq!(seen, 2, "examples/blog/compose.yaml no longer sets x-berth.edge.http_port and https_port");
    out
}

#[test]
fn blog_in_chromium_login_post_celery_result_and_deep_link_through_the_edge() {
    for tool in ["node", "curl"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success()),
            "{tool} is missing: run scripts/host-setup.sh"
        );
    }
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian's chromium is missing: run scripts/host-setup.sh");

    let env = base_images();
    let _guard = Cleanup::new(STACK);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("blog");
    copy_dir(&repo().join("examples/blog"), &dir);
    let compose = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    std::fs::write(dir.join("compose.yaml"), with_test_ports(&compose)).unwrap();

    let berth = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.current_dir(&dir)
            .args(["-s", STACK])
            .args(args)
            .env("BLOG_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BLOG_DOMAIN", "blog.localhost")
            .env("BLOG_HTTP_PORT", HTTP_PORT.to_string())
            .env("BLOG_HTTPS_PORT", HTTPS_PORT.to_string());
        for (k, v) in &env {
            c.env(k, v);
        }
        c.output().expect("cannot run berth")
    };
    let t = Instant::now();
    let o = berth(&["deploy", "--plain", "--timeout", "400"]);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "berth deploy failed:\n{log}{}", String::from_utf8_lossy(&o.stdout));
    eprintln!("deploy: {:.1} s", t.elapsed().as_secs_f64());

    // The edge answers before the browser starts: the app on a deep link (SPA fallback), and plain
    // HTTP redirects to HTTPS.
    let origin = format!("https://blog.localhost:{HTTPS_PORT}");
    let resolve = format!("blog.localhost:{HTTPS_PORT}:127.0.0.1");
    let mut ready = false;
    for _ in 0..120 {
        let c = Command::new("curl")
            .args(["-sk", "--max-time", "5", "--resolve", &resolve, "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{origin}/api/health"))
            .output()
            .unwrap();
        if String::from_utf8_lossy(&c.stdout) == "200" {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(ready, "{origin}/api/health did not answer 200 within 60 s");
    let c = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "-H",
            "Host: blog.localhost",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("http://127.0.0.1:{HTTP_PORT}/posts/1"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&c.stdout),
        format!("308 https://blog.localhost:{HTTPS_PORT}/posts/1"),
        "plain HTTP should redirect to HTTPS"
    );

    // The browser.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("example-blog-browser.png");
    let _ = std::fs::remove_file(&shot);
    let t = Instant::now();
    let o = Command::new("bash")
        .arg(repo().join("examples/blog/e2e/run.sh"))
        .arg(&origin)
        .arg("--ignore-https-errors")
        .arg("--screenshot")
        .arg(&shot)
        .args(["--timeout", "240"])
        .env("BLOG_PASSWORD", ADMIN_PASSWORD)
        .output()
        .expect("cannot run examples/blog/e2e/run.sh");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{err}");
    assert!(o.status.success(), "the browser test failed ({}):\n{err}\n{out}", o.status);
    let summary: Value = serde_json::from_str(out.lines().last().unwrap_or("")).expect("no JSON summary from run.mjs");
    assert_eq!(summary["ok"], true, "{summary}");
    let png = std::fs::read(&shot).expect("no screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000, "the screenshot is not a real PNG");
    eprintln!("browser test: {:.1} s; screenshot: {}", t.elapsed().as_secs_f64(), shot.display());

    // The tutorial's superuser command (docs/tutorial-django.md, section 6): `berth run` with the
    // image deploy built (regression: it ran the file's bare `image:`, blog/backend:latest, which
    // does not exist), the password read from the Swarm secret inside the task, never in argv.
    let o = berth(&[
        "run",
        "backend",
        "--",
        "sh",
        "-c",
        "DJANGO_SUPERUSER_USERNAME=editor DJANGO_SUPERUSER_EMAIL=editor@example.com \
         DJANGO_SUPERUSER_PASSWORD=\"$(cat /run/secrets/admin_password)\" exec python3 manage.py createsuperuser --noinput",
    ]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "berth run backend -- ... createsuperuser failed:\n{err}{out}");
    assert!(out.contains("Superuser created successfully."), "{out}");
    let login = format!(r#"{{"username":"editor","password":"{ADMIN_PASSWORD}"}}"#);
    let c = Command::new("curl")
        .args(["-sk", "--max-time", "10", "--resolve", &resolve, "-H", "Content-Type: application/json", "-d"])
        .arg(&login)
        .args(["-w", "\n%{http_code}"])
        .arg(format!("{origin}/api/login"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&c.stdout);
    assert!(text.ends_with("\n200") && text.contains(r#""username": "editor""#), "login as the new superuser: {text}");
}
