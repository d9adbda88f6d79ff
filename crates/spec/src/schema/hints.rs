//! The friendly part: hints for schema errors and the Swarm-specific key lists of docker/cli's loader.

use super::spec::{self, INTEGER, NUMBER, Obj, Pat, STRING, Shape};
use super::{Version, resolve, shape_wants};
use crate::yaml::{Node, Value};

/// docker/cli's `types.ForbiddenProperties`: service keys `docker stack deploy` refuses, with its hint text.
const FORBIDDEN: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    (
        "volume_driver",
        "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there.",
    ),
    (
        "volumes_from",
        "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.",
    ),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    ("memswap_limit", "Set resource limits using deploy.resources"),
];

/// The specific place for forbidden resource keys, appended to docker/cli's text.
fn forbidden_detail(key: &str) -> Option<&'static str> {
    match key {
        "cpu_quota" | "cpu_shares" | "cpuset" => Some("`deploy.resources.limits.cpus`"),
        "mem_limit" => Some("`deploy.resources.limits.memory`"),
        "memswap_limit" => Some("`deploy.resources.limits.memory` (Swarm has no swap limit)"),
        _ => None,
    }
}

/// docker/cli's hint for a forbidden service key, or `None` when the key is not forbidden.
pub(super) fn forbidden(key: &str) -> Option<String> {
    let (_, text) = FORBIDDEN.iter().find(|(k, _)| *k == key)?;
    Some(match forbidden_detail(key) {
        Some(detail) => format!("{text}: {detail}"),
        None => (*text).to_string(),
    })
}

/// docker/cli's `types.UnsupportedProperties` (ignored with a warning) and `DeprecatedProperties`,
/// each with what to do on Swarm instead.
const IGNORED: &[(&str, &str)] = &[
    ("build", "build and push the image before deploying; Swarm only uses `image`"),
    ("cgroupns_mode", "Swarm services use the daemon's default cgroup namespace mode"),
    ("cgroup_parent", "Swarm services use the daemon's cgroup parent"),
    (
        "devices",
        "Swarm services cannot map host devices; use `deploy.resources.reservations.generic_resources` for GPUs",
    ),
    ("domainname", "set `hostname` (a full name works) or configure DNS search domains with `dns_search`"),
    ("external_links", "attach the services to a shared network; they reach each other by service name"),
    ("ipc", "Swarm services cannot share an IPC namespace"),
    ("links", "services on the same network reach each other by service name; list the network under `networks`"),
    ("mac_address", "Swarm assigns MAC addresses itself"),
    (
        "network_mode",
        "attach the service to networks under `networks` (for the host network: an external network named `host`)",
    ),
    ("pid", "Swarm services cannot share a PID namespace"),
    ("privileged", "grant only what is needed with `cap_add`"),
    ("restart", "use `deploy.restart_policy` (e.g. `condition: on-failure`)"),
    ("security_opt", "Swarm has no per-service security options"),
    ("shm_size", "mount a tmpfs at `/dev/shm` with `volumes: [{type: tmpfs, target: /dev/shm, tmpfs: {size: ...}}]`"),
    ("userns_mode", "user namespaces are configured on the daemon (`userns-remap`)"),
    ("container_name", "Setting the container name is not supported. Swarm names tasks `<stack>_<service>.<slot>`"),
    (
        "expose",
        "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
    ),
];

/// The Swarm way for a key Swarm ignores, or `None` when Swarm uses the key.
pub(super) fn ignored(key: &str) -> Option<&'static str> {
    IGNORED.iter().find(|(k, _)| *k == key).map(|(_, h)| *h)
}

/// Where a key sits, for the `docker compose`-only key table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Service,
    Network,
    Build,
}

/// Keys of the Compose Specification (`docker compose`) that stack files do not have, and what to
/// use instead (empty: nothing).
const COMPOSE_ONLY: &[(Level, &str, &str)] = &[
    (Level::Top, "name", "the stack name is the last argument of `docker stack deploy -c FILE STACK`"),
    (Level::Top, "include", "pass every file with its own `-c`"),
    (Level::Top, "models", ""),
    (
        Level::Service,
        "platform",
        "Swarm pulls the image variant for each node; to pin services to an architecture use `deploy.placement.constraints: [\"node.platform.arch == x86_64\"]`",
    ),
    (Level::Service, "runtime", "Swarm tasks use the daemon's default runtime"),
    (Level::Service, "pull_policy", "`docker stack deploy` resolves and pulls images itself (`--resolve-image`)"),
    (Level::Service, "develop", "remove it: it drives `docker compose watch`"),
    (Level::Service, "profiles", "every service of a stack file is deployed; split the file to deploy a subset"),
    (Level::Service, "mem_limit", "use `deploy.resources.limits.memory`"),
    (Level::Service, "memswap_limit", "use `deploy.resources.limits.memory`"),
    (Level::Service, "mem_reservation", "use `deploy.resources.reservations.memory`"),
    (Level::Service, "cpus", "use `deploy.resources.limits.cpus`"),
    (Level::Service, "cpu_count", "use `deploy.resources.limits.cpus`"),
    (Level::Service, "cpu_percent", "use `deploy.resources.limits.cpus`"),
    (Level::Service, "cpu_period", "use `deploy.resources.limits.cpus`"),
    (Level::Service, "cpu_quota", "use `deploy.resources.limits.cpus`"),
    (Level::Service, "cpu_shares", "use `deploy.resources.limits.cpus`"),
    (Level::Service, "cpuset", "use `deploy.resources.limits.cpus`"),
    (Level::Service, "cpu_rt_runtime", ""),
    (Level::Service, "cpu_rt_period", ""),
    (Level::Service, "pids_limit", "use `deploy.resources.limits.pids` (version 3.9 or later)"),
    (Level::Service, "scale", "use `deploy.replicas`"),
    (Level::Service, "gpus", "use `deploy.resources.reservations.generic_resources`"),
    (Level::Service, "extends", "resolve it first with `docker compose config`"),
    (Level::Service, "volumes_from", "share a named volume from the top-level `volumes`"),
    (Level::Service, "volume_driver", "set the driver on a top-level volume"),
    (Level::Service, "attach", ""),
    (Level::Service, "annotations", "use `labels` or `deploy.labels`"),
    (Level::Service, "blkio_config", ""),
    (Level::Service, "device_cgroup_rules", ""),
    (Level::Service, "dns_opt", ""),
    (Level::Service, "group_add", ""),
    (Level::Service, "label_file", "list the labels under `labels`"),
    (Level::Service, "mem_swappiness", ""),
    (Level::Service, "oom_kill_disable", ""),
    (Level::Service, "post_start", ""),
    (Level::Service, "pre_stop", ""),
    (Level::Service, "storage_opt", ""),
    (Level::Service, "uts", ""),
    (Level::Service, "use_api_socket", ""),
    (Level::Service, "models", ""),
    (Level::Service, "provider", ""),
    (Level::Network, "enable_ipv6", ""),
    (Level::Build, "ssh", ""),
    (Level::Build, "secrets", ""),
    (Level::Build, "platforms", ""),
    (Level::Build, "tags", ""),
    (Level::Build, "additional_contexts", ""),
    (Level::Build, "no_cache", ""),
    (Level::Build, "pull", ""),
];

fn level_of(o: &Obj) -> Option<Level> {
    if std::ptr::eq(o, &spec::ROOT) {
        Some(Level::Top)
    } else if std::ptr::eq(o, &spec::SERVICE) {
        Some(Level::Service)
    } else if std::ptr::eq(o, &spec::NETWORK) {
        Some(Level::Network)
    } else if o.props.iter().any(|p| p.name == "dockerfile") {
        Some(Level::Build)
    } else {
        None
    }
}

fn compose_only(key: &str, level: Level) -> Option<String> {
    let (_, _, instead) = COMPOSE_ONLY.iter().find(|(l, k, _)| *l == level && *k == key)?;
    let mut hint = format!("`{key}` is a `docker compose` key that `docker stack deploy` does not accept");
    if !instead.is_empty() {
        hint.push_str("; ");
        hint.push_str(instead);
    }
    Some(hint)
}

/// Message and hint for a key the object does not allow at `v`.
pub(super) fn unknown_key(key: &str, o: &Obj, v: Version) -> (String, Option<String>) {
    if o.patterns.iter().any(|(p, _)| *p == Pat::Name) && o.props.is_empty() {
        return (
            format!("invalid name `{key}`"),
            Some("names may only contain letters, digits, `.`, `_` and `-`".to_string()),
        );
    }
    let message = format!("unknown key `{key}`");
    if let Some(prop) = o.props.iter().find(|p| p.name == key && p.since > v) {
        return (message, Some(format!("needs `version: \"{}\"` or later (this file is {v})", prop.since)));
    }
    if key.starts_with("x-")
        && let Some(since) = o.extensions
    {
        return (
            message,
            Some(format!("extension keys (`x-*`) here need `version: \"{since}\"` or later (this file is {v})")),
        );
    }
    if let Some(hint) = level_of(o).and_then(|level| compose_only(key, level)) {
        return (message, Some(hint));
    }
    let names = o.props.iter().filter(|p| p.since <= v).map(|p| p.name);
    if let Some(best) = closest(key, names) {
        return (message, Some(format!("did you mean `{best}`?")));
    }
    let later = o.props.iter().filter(|p| p.since > v).map(|p| p.name);
    if let Some(best) = closest(key, later) {
        let since = o.props.iter().find(|p| p.name == best).map(|p| p.since).unwrap_or(v);
        return (
            message,
            Some(format!("did you mean `{best}`? It needs `version: \"{since}\"` or later (this file is {v})")),
        );
    }
    (message, None)
}

/// Hint for a missing required key.
pub(super) fn required_hint(key: &str) -> Option<String> {
    match key {
        "type" => Some("long-syntax volumes need `type: volume`, `bind` or `tmpfs`".into()),
        "version" => Some("add `version: \"3.9\"` (or the version you validate against)".into()),
        "soft" | "hard" => Some("give both `soft` and `hard`, or a single number for both".into()),
        _ => None,
    }
}

/// Hint for a value of the wrong type.
pub(super) fn type_hint(key: Option<&str>, node: &Node, shape: &Shape, v: Version) -> Option<String> {
    let wants = shape_wants(shape, v);
    let wants_list = match resolve(shape, v) {
        Shape::Array(..) => true,
        Shape::OneOf(alts) => alts.iter().any(|a| matches!(resolve(a, v), Shape::Array(..))),
        _ => false,
    };
    let wants_map = match resolve(shape, v) {
        Shape::Object(_) => true,
        Shape::OneOf(alts) => alts.iter().any(|a| matches!(resolve(a, v), Shape::Object(_))),
        _ => false,
    };
    match (key, &node.value) {
        (Some("depends_on"), Value::Map(_)) => {
            return Some(
                "`depends_on` with `condition` is a `docker compose` key that `docker stack deploy` does not accept; \
                 list the service names (`depends_on: [db]`) — Swarm starts services in any order, so use healthchecks \
                 and retries"
                    .into(),
            );
        }
        (Some("env_file"), Value::Seq(_)) => {
            return Some(
                "the long `env_file` syntax (`path:`, `required:`) is `docker compose` only; list the paths as strings"
                    .into(),
            );
        }
        (Some("version"), Value::Float(f)) => {
            return Some(format!(
                "quote it: `version: \"{f}\"` — unquoted, YAML reads it as a number (`3.10` becomes 3.1)"
            ));
        }
        (Some("version"), Value::Int(i)) => return Some(format!("quote it: `version: \"{i}\"`")),
        _ => {}
    }
    let duration = matches!(resolve(shape, v), Shape::Scalar(_, Some(spec::Format::Duration)));
    match &node.value {
        Value::Int(_) | Value::Float(_) if duration => {
            Some(format!("a duration needs a unit and quotes: `\"{}s\"`", number_text(node)))
        }
        Value::Str(s)
            if wants & spec::BOOLEAN != 0
                && matches!(
                    s.as_str(),
                    "yes" | "no" | "on" | "off" | "y" | "n" | "True" | "False" | "TRUE" | "FALSE"
                ) =>
        {
            Some("write `true` or `false`: docker reads YAML 1.2, where only those are booleans".into())
        }
        Value::Str(s) if wants & (INTEGER | NUMBER) != 0 && s.trim().parse::<f64>().is_ok() => {
            Some(format!("remove the quotes: `{}`", s.trim()))
        }
        Value::Int(_) | Value::Float(_) if wants & STRING != 0 => {
            Some(format!("quote the value: `\"{}\"`", number_text(node)))
        }
        Value::Bool(b) if wants & STRING != 0 => {
            Some(format!("quote the value: `\"{b}\"` (YAML reads unquoted true/false as booleans)"))
        }
        Value::Null => Some("the key has no value: give it one or remove the key".into()),
        Value::Str(_) | Value::Int(_) | Value::Float(_) if wants_list => {
            Some("write a list: one `- item` per line, or `[a, b]`".into())
        }
        Value::Seq(_) if wants_map => Some("write a mapping (`key: value` lines), not a list".into()),
        _ => None,
    }
}

fn number_text(node: &Node) -> String {
    match node.value {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        _ => String::new(),
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub(super) fn closest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = distance(word, c);
        let short = word.len().min(c.len());
        let d = if short >= 3 && (c.starts_with(word) || word.starts_with(c)) { d.min(1) } else { d };
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut x = (d[(i - 1) * w + j] + 1).min(d[i * w + j - 1] + 1).min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                x = x.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = x;
        }
    }
    d[a.len() * w + b.len()]
}
