//! Static files: validators, ranges, compression, cache headers, SPA fallback, traversal refusal.

mod common;

use std::io::Read;

use berth_edge::resolver::StaticResolver;
use common::*;
use serde_json::json;

struct Site {
    _dir: tempfile::TempDir,
    e: TestEdge,
    outside: std::path::PathBuf,
}

async fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("static");
    let app = dir.path().join("app");
    std::fs::create_dir_all(root.join("css")).unwrap();
    std::fs::create_dir_all(app.join("assets")).unwrap();
    let text: String = (0..400).map(|i| format!("line {i} of a text file\n")).collect();
    std::fs::write(root.join("big.txt"), &text).unwrap();
    std::fs::write(root.join("bin.dat"), (0..=255u8).collect::<Vec<u8>>()).unwrap();
    std::fs::write(root.join("css/app.3f9a1c2b.css"), "body{color:red}").unwrap();
    std::fs::write(root.join("plain.css"), "body{color:blue}").unwrap();
    std::fs::write(root.join("pre.js"), "console.log('original')".repeat(20)).unwrap();
    std::fs::write(root.join("pre.js.br"), b"BROTLI-BYTES").unwrap();
    std::fs::write(app.join("index.html"), "<html>spa</html>").unwrap();
    std::fs::write(app.join("assets/main-BxK3a9Zq.js"), "let a=1;").unwrap();
    let outside = dir.path().join("secret.txt");
    std::fs::write(&outside, "TOP SECRET").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("updir")).unwrap();
    let e = edge(
        json!({
            "domains": ["app.test"],
            "statics": [
                {"path": "/static", "root": root},
                {"path": "/", "root": app, "spa": true}
            ]
        }),
        StaticResolver::new(),
    )
    .await;
    Site { _dir: dir, e, outside }
}

#[tokio::test]
async fn etag_and_last_modified_give_304() {
    let s = site().await;
    let a = s.e.http();
    let r = get(a, "app.test", "/static/bin.dat", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 256);
    assert_eq!(r.header("content-type").unwrap(), "application/octet-stream");
    let etag = r.header("etag").unwrap();
    let lm = r.header("last-modified").unwrap();
    let r2 = get(a, "app.test", "/static/bin.dat", &[("if-none-match", &etag)]).await;
    assert_eq!(r2.status, 304);
    assert!(r2.body.is_empty());
    let r3 = get(a, "app.test", "/static/bin.dat", &[("if-modified-since", &lm)]).await;
    assert_eq!(r3.status, 304);
    let r4 = get(a, "app.test", "/static/bin.dat", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(r4.status, 200);
}

#[tokio::test]
async fn range_requests_give_206_and_416() {
    let s = site().await;
    let a = s.e.http();
    let r = get(a, "app.test", "/static/bin.dat", &[("range", "bytes=10-19")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range").unwrap(), "bytes 10-19/256");
    assert_eq!(&r.body[..], &(10..20u8).collect::<Vec<_>>()[..]);
    let r = get(a, "app.test", "/static/bin.dat", &[("range", "bytes=-6")]).await;
    assert_eq!((r.status, &r.body[..]), (206, &[250u8, 251, 252, 253, 254, 255][..]));
    let r = get(a, "app.test", "/static/bin.dat", &[("range", "bytes=250-")]).await;
    assert_eq!((r.status, r.body.len()), (206, 6));
    let r = get(a, "app.test", "/static/bin.dat", &[("range", "bytes=999-")]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").unwrap(), "bytes */256");
    let r = get(a, "app.test", "/static/bin.dat", &[("range", "bytes=0-1"), ("if-range", "\"stale\"")]).await;
    assert_eq!((r.status, r.body.len()), (200, 256));
}

#[tokio::test]
async fn text_is_gzipped_or_brotli_on_the_fly_and_precompressed_sibling_is_used() {
    let s = site().await;
    let a = s.e.http();
    let plain = get(a, "app.test", "/static/big.txt", &[]).await;
    assert_eq!(plain.header("content-encoding"), None);
    let r = get(a, "app.test", "/static/big.txt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.header("content-encoding").unwrap(), "gzip");
    assert_eq!(r.header("vary").unwrap(), "Accept-Encoding");
    assert!(r.body.len() < plain.body.len());
    let mut out = String::new();
    flate2::read::GzDecoder::new(&r.body[..]).read_to_string(&mut out).unwrap();
    assert_eq!(out.as_bytes(), &plain.body[..]);
    assert_ne!(r.header("etag"), plain.header("etag"), "each encoding has its own ETag");
    let r = get(a, "app.test", "/static/big.txt", &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(r.header("content-encoding").unwrap(), "br");
    let mut out = Vec::new();
    brotli::Decompressor::new(&r.body[..], 4096).read_to_end(&mut out).unwrap();
    assert_eq!(&out[..], &plain.body[..]);
    let r = get(a, "app.test", "/static/pre.js", &[("accept-encoding", "br")]).await;
    assert_eq!(r.header("content-encoding").unwrap(), "br");
    assert_eq!(&r.body[..], b"BROTLI-BYTES");
    // Binary types are never compressed.
    let r = get(a, "app.test", "/static/bin.dat", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.header("content-encoding"), None);
}

#[tokio::test]
async fn hashed_names_get_immutable_cache_headers() {
    let s = site().await;
    let a = s.e.http();
    let r = get(a, "app.test", "/static/css/app.3f9a1c2b.css", &[]).await;
    assert_eq!(r.header("cache-control").unwrap(), "public, max-age=31536000, immutable");
    let r = get(a, "app.test", "/assets/main-BxK3a9Zq.js", &[]).await;
    assert_eq!(r.header("cache-control").unwrap(), "public, max-age=31536000, immutable");
    let r = get(a, "app.test", "/static/plain.css", &[]).await;
    assert_eq!(r.header("cache-control").unwrap(), "no-cache");
}

#[tokio::test]
async fn spa_fallback_serves_index_for_unknown_pages_only() {
    let s = site().await;
    let a = s.e.http();
    let r = get(a, "app.test", "/users/42/settings", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "<html>spa</html>"));
    assert_eq!(r.header("cache-control").unwrap(), "no-cache");
    let r = get(a, "app.test", "/", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "<html>spa</html>"));
    assert_eq!(get(a, "app.test", "/assets/missing.js", &[]).await.status, 404);
    // Without spa the mount answers 404.
    assert_eq!(get(a, "app.test", "/static/nope", &[]).await.status, 404);
}

#[tokio::test]
async fn path_traversal_and_symlinks_out_of_root_are_refused() {
    let s = site().await;
    let a = s.e.http();
    assert!(s.outside.exists());
    for p in [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static/..%2fsecret.txt",
        "/static/css/..%5c..%5csecret.txt",
        "/static/%252e%252e/secret.txt",
        "/static/link.txt",
        "/static/updir/secret.txt",
        "/static/big.txt%00",
    ] {
        let r = raw(a, format!("GET {p} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n").as_bytes()).await;
        assert!(!r.contains("TOP SECRET"), "{p} leaked: {r}");
        assert!(r.starts_with("HTTP/1.1 404") || r.starts_with("HTTP/1.1 400"), "{p}: {r}");
    }
    let r = get(a, "app.test", "/static/big.txt", &[]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn static_mount_refuses_post_and_answers_head() {
    let s = site().await;
    let a = s.e.http();
    let r = request(a, "POST", "app.test", "/static/big.txt", &[], bytes::Bytes::from_static(b"x")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").unwrap(), "GET, HEAD");
    let r = request(a, "HEAD", "app.test", "/static/bin.dat", &[], bytes::Bytes::new()).await;
    assert_eq!((r.status, r.header("content-length").unwrap().as_str(), r.body.len()), (200, "256", 0));
}

#[tokio::test]
async fn cached_files_follow_changes_on_disk() {
    let s = site().await;
    let a = s.e.http();
    let root = s.outside.parent().unwrap().join("static");
    let r = get(a, "app.test", "/static/plain.css", &[]).await;
    assert_eq!(r.text(), "body{color:blue}");
    let etag = r.header("etag").unwrap();
    // Served from memory now; a rewrite (other size and mtime) is seen on the next request.
    std::fs::write(root.join("plain.css"), "body{color:green;margin:0}").unwrap();
    let r = get(a, "app.test", "/static/plain.css", &[]).await;
    assert_eq!(r.text(), "body{color:green;margin:0}");
    assert_ne!(r.header("etag").unwrap(), etag);
    // A cached file replaced by a symlink that leaves the root: refused, not served from memory.
    let r = get(a, "app.test", "/static/bin.dat", &[]).await;
    assert_eq!(r.status, 200);
    std::fs::remove_file(root.join("bin.dat")).unwrap();
    std::os::unix::fs::symlink(&s.outside, root.join("bin.dat")).unwrap();
    let r = get(a, "app.test", "/static/bin.dat", &[]).await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("SECRET"));
    // Deleted: 404.
    std::fs::remove_file(root.join("plain.css")).unwrap();
    assert_eq!(get(a, "app.test", "/static/plain.css", &[]).await.status, 404);
    // Cached compressed form and conditional request from memory.
    let r = get(a, "app.test", "/static/big.txt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    let r2 = get(a, "app.test", "/static/big.txt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r2.body, r.body);
    let tag = r2.header("etag").unwrap();
    assert!(tag.ends_with("-gz\""), "{tag}");
    let r3 = get(a, "app.test", "/static/big.txt", &[("accept-encoding", "gzip"), ("if-none-match", &tag)]).await;
    assert_eq!(r3.status, 304);
}
