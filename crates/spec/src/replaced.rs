//! What berth replaces: front proxies of hand-made Swarm setups (Traefik, an nginx service).
//!
//! Files written for the seeds' setups route through Traefik labels and serve the front end from
//! an nginx service. berth's edge does both jobs, so such a file deploys (Swarm accepts it) but
//! runs two front doors. These checks find those patterns and say, at the place, what to write in
//! `x-berth` instead: warnings only, since the file is valid and may be deployed on purpose.

use crate::diag::Diagnostic;
use crate::yaml::{Node, Value};
use std::collections::BTreeMap;

/// Warnings for Traefik services, Traefik routing labels and nginx front services in `doc`.
pub fn check_document(doc: &Node) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(services) = doc.get("services").and_then(Node::as_map) else { return out };
    let has_edge = doc.get("x-berth").is_some()
        || services.values().any(|s| s.get("x-berth").and_then(|x| x.get("routes")).is_some());
    for (name, svc) in services {
        let image = svc.get("image").and_then(Node::as_str).unwrap_or_default();
        let base = image_base(image);
        if base == "traefik" {
            let at = svc.get("image").map(Node::anchor);
            out.push(
                Diagnostic::warning(
                    "replaced.traefik",
                    at,
                    format!("services.{name}.image"),
                    format!("service `{name}` runs Traefik: berth's edge replaces it (TLS, ACME, host/path routing)"),
                )
                .with_hint(
                    "remove this service; put `x-berth: {domain: ..., acme: {email: ...}}` at the top level and \
                     `x-berth: {routes: [...], port: ...}` on each routed service (see docs/tutorial-django.md, \
                     \"Coming from Traefik and nginx\")",
                ),
            );
        } else if base == "nginx" && has_edge {
            let at = svc.get("image").map(Node::anchor);
            out.push(
                Diagnostic::warning(
                    "replaced.nginx",
                    at,
                    format!("services.{name}.image"),
                    format!(
                        "service `{name}` runs nginx beside berth's edge: if it only serves files and proxies to \
                         the backend, the edge does both"
                    ),
                )
                .with_hint(
                    "serve its files with `x-berth: {static: [{path: /, volume: ..., spa: true}]}` and send API \
                     paths with `routes:` on the backend service; keep nginx only for what the edge cannot do",
                ),
            );
        }
        for labels_at in [&["labels"][..], &["deploy", "labels"][..]] {
            let Some(labels) = svc.at(labels_at) else { continue };
            let traefik = traefik_labels(labels);
            if traefik.is_empty() {
                continue;
            }
            let path = format!("services.{name}.{}", labels_at.join("."));
            let suggestion = suggest_routes(&traefik);
            let mut d = Diagnostic::warning(
                "replaced.traefik-labels",
                Some(labels.anchor()),
                path,
                format!(
                    "service `{name}` is routed by Traefik labels ({} label{}): berth's edge reads `x-berth` instead",
                    traefik.len(),
                    if traefik.len() == 1 { "" } else { "s" }
                ),
            );
            d = d.with_hint(match suggestion {
                Some(s) => format!("write `x-berth: {s}` on this service and drop the traefik.* labels"),
                None => "write `x-berth: {routes: [/], port: <container port>}` on this service and drop the \
                         traefik.* labels"
                    .to_string(),
            });
            out.push(d);
        }
    }
    out
}

/// `traefik:v2.10`, `library/traefik`, `registry.example.com/x/traefik@sha256:..` → `traefik`.
fn image_base(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last)
}

/// `traefik.*` labels of a labels node (a mapping, or a list of `key=value`).
fn traefik_labels(labels: &Node) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let scalar = |n: &Node| match &n.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match &labels.value {
        Value::Map(m) => {
            for (k, v) in m {
                if k.starts_with("traefik.") {
                    out.insert(k.clone(), scalar(v).unwrap_or_default());
                }
            }
        }
        Value::Seq(items) => {
            for item in items {
                if let Some(s) = item.as_str() {
                    let (k, v) = s.split_once('=').unwrap_or((s, ""));
                    if k.starts_with("traefik.") {
                        out.insert(k.to_string(), v.to_string());
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// An `x-berth` block equivalent to the labels' rules and port, when they can be read:
/// Traefik 2/3 (`traefik.http.routers.R.rule`, `traefik.http.services.S.loadbalancer.server.port`)
/// and Traefik 1 (`traefik.frontend.rule`, `traefik.port`).
fn suggest_routes(labels: &BTreeMap<String, String>) -> Option<String> {
    let mut hosts = Vec::new();
    let mut paths = Vec::new();
    let mut port = None;
    for (k, v) in labels {
        if (k.starts_with("traefik.http.routers.") && k.ends_with(".rule")) || k == "traefik.frontend.rule" {
            let (h, p) = parse_rule(v);
            hosts.extend(h);
            paths.extend(p);
        } else if (k.starts_with("traefik.http.services.") && k.ends_with(".loadbalancer.server.port"))
            || k == "traefik.port"
        {
            port = v.parse::<u16>().ok();
        }
    }
    if hosts.is_empty() && paths.is_empty() && port.is_none() {
        return None;
    }
    hosts.sort();
    hosts.dedup();
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        paths.push("/".to_string());
    }
    let routes = match hosts.as_slice() {
        [] => paths.join(", "),
        [h] => paths.iter().map(|p| format!("{{path: {p}, host: {h}}}")).collect::<Vec<_>>().join(", "),
        _ => paths.join(", "),
    };
    let mut s = format!("{{routes: [{routes}]");
    match port {
        Some(p) => s.push_str(&format!(", port: {p}}}")),
        None => s.push_str(", port: <container port>}"),
    }
    if hosts.len() > 1 {
        s.push_str(&format!(" and `domains: [{}]` in the top-level x-berth", hosts.join(", ")));
    }
    Some(s)
}

/// Hosts and path prefixes of a Traefik rule: v2 ``Host(`a`, `b`) && PathPrefix(`/api`)`` or
/// v1 `Host:a,b;PathPrefix:/api`.
fn parse_rule(rule: &str) -> (Vec<String>, Vec<String>) {
    let mut hosts = Vec::new();
    let mut paths = Vec::new();
    if rule.contains('(') {
        for (func, into) in [("Host(", &mut hosts), ("PathPrefix(", &mut paths)] {
            let mut rest = rule;
            while let Some(i) = rest.find(func) {
                let args = &rest[i + func.len()..];
                let end = args.find(')').unwrap_or(args.len());
                for a in args[..end].split(',') {
                    let a = a.trim().trim_matches(|c| c == '`' || c == '"' || c == '\'');
                    if !a.is_empty() {
                        into.push(a.to_string());
                    }
                }
                rest = &args[end..];
            }
        }
    } else {
        for part in rule.split(';') {
            if let Some(h) = part.strip_prefix("Host:") {
                hosts.extend(h.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
            } else if let Some(p) = part.strip_prefix("PathPrefix:") {
                paths.extend(p.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
            }
        }
    }
    (hosts, paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(yaml: &str) -> Vec<Diagnostic> {
        check_document(&crate::yaml::parse(yaml, 0).unwrap())
    }

    #[test]
    fn traefik_service_and_v2_labels_get_the_x_berth_equivalent() {
        let w = warnings(
            "services:\n  traefik:\n    image: traefik:v2.10\n  backend:\n    image: app\n    deploy:\n      labels:\n        - traefik.enable=true\n        - \"traefik.http.routers.api.rule=Host(`blog.example.com`) && PathPrefix(`/api`)\"\n        - traefik.http.services.api.loadbalancer.server.port=8000\n",
        );
        assert_eq!(w.len(), 2, "{w:#?}");
        assert_eq!(w[0].code, "replaced.traefik");
        assert_eq!(w[0].pos.map(|p| p.line), Some(3));
        assert_eq!(w[1].code, "replaced.traefik-labels");
        assert_eq!(w[1].path, "services.backend.deploy.labels");
        let hint = w[1].hint.as_deref().unwrap();
        assert!(hint.contains("{routes: [{path: /api, host: blog.example.com}], port: 8000}"), "{hint}");
    }

    #[test]
    fn traefik_v1_labels_as_a_mapping() {
        let w = warnings(
            "services:\n  web:\n    image: app\n    labels:\n      traefik.frontend.rule: \"Host:a.example.com,b.example.com;PathPrefix:/api,/admin\"\n      traefik.port: 8000\n",
        );
        assert_eq!(w.len(), 1, "{w:#?}");
        let hint = w[0].hint.as_deref().unwrap();
        assert!(hint.contains("{routes: [/admin, /api], port: 8000}"), "{hint}");
        assert!(hint.contains("domains: [a.example.com, b.example.com]"), "{hint}");
    }

    #[test]
    fn nginx_is_flagged_only_beside_the_edge() {
        assert!(warnings("services:\n  web:\n    image: nginx:1.25\n").is_empty());
        let w = warnings("x-berth: {domain: a.example.com}\nservices:\n  web:\n    image: library/nginx:1.25\n");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].code, "replaced.nginx");
    }

    #[test]
    fn a_plain_stack_has_no_warning() {
        assert!(
            warnings("services:\n  web:\n    image: registry.example.com/traefik-exporter:1\n    labels: [a=b]\n")
                .is_empty()
        );
    }
}
