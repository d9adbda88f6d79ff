//! Config parsing and validation: defaults, key paths in errors.

use std::path::Path;

use berth_edge::EdgeConfig;
use berth_edge::config::{ConfigError, TlsMode};

fn parse(json: &str) -> Result<EdgeConfig, ConfigError> {
    EdgeConfig::from_json(json, Path::new("/etc/berth/edge.json"))
}

fn invalid_key(json: &str) -> String {
    match parse(json) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn defaults_match_the_documented_ones() {
    let c = parse(r#"{"domains": ["Blog.Example.com"], "statics": [{"path": "/static", "root": "www"}]}"#).unwrap();
    assert_eq!(c.domains, vec!["blog.example.com"]);
    assert_eq!((c.http_port, c.https_port), (Some(80), Some(443)));
    assert_eq!(c.admin_addr.as_deref(), Some("127.0.0.1:9180"));
    assert_eq!(c.tls.mode, TlsMode::Off);
    assert!(c.hsts && c.access_log && c.tls.redirect);
    assert_eq!(c.statics[0].root, Path::new("/etc/berth/www"), "relative roots resolve from the file's directory");
    assert_eq!(c.limits.max_header_bytes, 16 * 1024);
}

#[test]
fn route_defaults_and_full_example_parse() {
    let c = parse(
        r#"{"domains": ["a.example.com"], "tls": {"mode": "local-ca"}, "http_port": 8080, "https_port": 8443,
            "admin_addr": "127.0.0.1:9180",
            "routes": [{"host": null, "path": "/api", "strip_prefix": false,
                        "backend": {"service": "blog_backend", "port": 8000, "health": "/api/health"},
                        "max_body": 10485760, "timeout_ms": 60000},
                       {"path": "/admin", "backend": {"service": "blog_backend", "port": 8000}}],
            "statics": [{"host": null, "path": "/static", "root": "/srv/static/static", "spa": false}], "hsts": true}"#,
    )
    .unwrap();
    assert_eq!(c.routes[1].max_body, 10 * 1024 * 1024);
    assert_eq!(c.routes[1].timeout_ms, 60_000);
    assert_eq!(c.known_hosts(), vec!["a.example.com"]);
}

#[test]
fn invalid_values_name_their_key_path() {
    assert_eq!(
        invalid_key(r#"{"routes": [{"path": "api", "backend": {"service": "s", "port": 1}}]}"#),
        "routes.0.path"
    );
    assert_eq!(
        invalid_key(r#"{"routes": [{"path": "/a/../b", "backend": {"service": "s", "port": 1}}]}"#),
        "routes.0.path"
    );
    assert_eq!(
        invalid_key(r#"{"routes": [{"path": "/", "backend": {"service": "s", "port": 0}}]}"#),
        "routes.0.backend.port"
    );
    assert_eq!(
        invalid_key(r#"{"routes": [{"path": "/", "backend": {"service": "s", "port": 1, "health": "h"}}]}"#),
        "routes.0.backend.health"
    );
    assert_eq!(invalid_key(r#"{"domains": ["bad host"]}"#), "domains.0");
    assert_eq!(invalid_key(r#"{"tls": {"mode": "files"}}"#), "tls.certs");
    assert_eq!(invalid_key(r#"{"tls": {"mode": "acme", "challenges": []}}"#), "tls.challenges");
    assert_eq!(invalid_key(r#"{"tls": {"mode": "acme", "directory": "ftp://x"}}"#), "tls.directory");
    assert_eq!(invalid_key(r#"{"http_port": null, "tls": {"mode": "acme"}}"#), "tls.challenges");
    assert_eq!(invalid_key(r#"{"admin_addr": "localhost"}"#), "admin_addr");
    assert_eq!(invalid_key(r#"{"limits": {"max_header_bytes": 100}}"#), "limits.max_header_bytes");
    assert_eq!(
        invalid_key(
            r#"{"routes": [{"path": "/a", "backend": {"service": "s", "port": 1}}], "statics": [{"path": "/a/", "root": "/x"}]}"#
        ),
        "statics.0.path"
    );
}

#[test]
fn unknown_keys_and_bad_json_report_line_and_column() {
    match parse("{\n  \"domain\": []\n}") {
        Err(ConfigError::Parse { line, message, .. }) => {
            assert_eq!(line, 2);
            assert!(message.contains("unknown field `domain`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(parse("{"), Err(ConfigError::Parse { .. })));
    // ACME keys are checked like the rest.
    match parse(r#"{"tls": {"mode": "acme", "renew_before": 5}}"#) {
        Err(ConfigError::Parse { message, .. }) => {
            assert!(message.contains("unknown field `renew_before`"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match parse(r#"{"tls": {"mode": "acme", "challenges": ["dns-01"]}}"#) {
        Err(ConfigError::Parse { message, .. }) => assert!(message.contains("dns-01"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn acme_defaults_and_peer_settings() {
    let cfg = parse(r#"{"tls": {"mode": "acme"}}"#).unwrap();
    assert_eq!(cfg.tls.directory, berth_edge::config::LETS_ENCRYPT_DIRECTORY);
    assert_eq!(cfg.tls.store, std::path::PathBuf::from("/var/lib/berth-edge"));
    assert_eq!(cfg.tls.renew_check_ms, 3_600_000);
    assert_eq!(cfg.tls.renew_before_ms, None);
    let bad = parse(r#"{"tls": {"mode": "acme", "peers": {"listen": "x", "service": "s", "token_file": "/t"}}}"#);
    assert!(matches!(bad, Err(ConfigError::Invalid { key, .. }) if key == "tls.peers.listen"));
    let bad = parse(r#"{"tls": {"mode": "acme", "peers": {"listen": "0.0.0.0:9181", "service": "s"}}}"#);
    assert!(matches!(bad, Err(ConfigError::Parse { .. })), "token_file is required");
}

#[test]
fn hashed_file_names_are_recognised() {
    use berth_edge::statics::is_hashed_name;
    assert!(is_hashed_name("app.3f9a1c2b.js"));
    assert!(is_hashed_name("index-BxK3a9Zq.js"));
    assert!(is_hashed_name("chunk.0123abcd4567.css"));
    assert!(!is_hashed_name("app.js"));
    assert!(!is_hashed_name("jquery-3.6.0.min.js"));
    assert!(!is_hashed_name("favicon.ico"));
    assert!(!is_hashed_name("deadbeef"));
    assert!(!is_hashed_name("my-component.js"));
}

#[test]
fn traversal_segments_are_rejected_after_decoding() {
    use berth_edge::statics::clean_segments;
    assert_eq!(clean_segments("/a/b%20c.txt").unwrap(), vec!["a", "b c.txt"]);
    assert!(clean_segments("/../x").is_none());
    assert!(clean_segments("/%2e%2e/x").is_none());
    assert!(clean_segments("/a%2f..%2fx").is_none());
    assert!(clean_segments("/a%5c..").is_none());
    assert!(clean_segments("/a%00").is_none());
    assert!(clean_segments("/%ff").is_none());
}
