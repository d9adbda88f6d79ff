//! Canonical forms and per-field diffs.
//!
//! The swarm does not store a service spec exactly as it was sent: the daemon fills in defaults
//! (`ForceUpdate: 0`, `Runtime: container`, `Isolation: default`, `Replicas: 1`, ...), drops empty
//! lists and maps, and replaces network names by IDs. Comparing raw specs would plan an update on
//! every deploy. [`canonical_service_spec`] turns a [`ServiceSpec`] from either side (desired, or
//! `Spec` of `docker service inspect`) into one JSON form in which two specs that mean the same
//! thing are equal; [`diff_values`] lists the fields in which two such forms differ.
//!
//! The defaults and daemon behaviour below were found by creating services on a dockerd 20.10 in
//! swarm mode through the Engine API and through `docker stack deploy`, and reading back
//! `docker service inspect` (fixtures in `crates/plan/tests/data/`).

use crate::desired::LABEL_OWNER;
use bollard_stubs::models::ServiceSpec;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// One changed field between the observed and the desired state of an object.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    /// Engine-API field path, e.g. `TaskTemplate.ContainerSpec.Env[2]` or `Labels["com.example.a"]`.
    /// List indices refer to the canonical (sorted) form of the list.
    pub path: String,
    /// The value the swarm has now (`None`: the field is absent there).
    pub old: Option<Value>,
    /// The value the file wants (`None`: the field is to be removed).
    pub new: Option<Value>,
}

/// What [`canonical_service_spec`] needs to know beyond the spec itself.
#[derive(Debug, Clone, Default)]
pub struct CanonContext {
    /// Network ID → network name, for the swarm's networks. The daemon stores
    /// `TaskTemplate.Networks[].Target` as an ID even when a name was sent; with this map both
    /// sides compare by name. IDs not in the map are left as they are.
    pub network_names: BTreeMap<String, String>,
    /// Remove a `@sha256:...` digest from `ContainerSpec.Image`. Set it for the observed side when
    /// the desired image carries no digest (`docker stack deploy` and `docker service create` pin
    /// the digest they resolved; the file names only the tag).
    pub strip_image_digest: bool,
    /// Remove berth's ownership label (`io.berth.stack`) from every label map, to compare an
    /// object made by `docker stack deploy` with the desired spec without counting that label.
    pub ignore_owner_label: bool,
}

/// Swarmkit's default stop grace period (10 s, in nanoseconds).
pub const DEFAULT_STOP_GRACE_PERIOD: i64 = 10_000_000_000;
/// Swarmkit's default restart delay (5 s, in nanoseconds).
pub const DEFAULT_RESTART_DELAY: i64 = 5_000_000_000;
/// Swarmkit's default update/rollback monitor period (5 s, in nanoseconds).
pub const DEFAULT_UPDATE_MONITOR: i64 = 5_000_000_000;

/// The canonical JSON form of a service spec, in which equal meaning is equal value.
///
/// Field by field (paths as in the Engine API):
/// - `Networks` (deprecated top-level form): moved to `TaskTemplate.Networks` when that is absent.
/// - `TaskTemplate.ForceUpdate`: removed. It is a counter bumped by `docker service update --force`,
///   not desired state; the planner carries the observed value over into updates.
/// - `TaskTemplate.Runtime`: `"container"` removed (the daemon fills it in for container tasks).
/// - `TaskTemplate.ContainerSpec.Image`: `@sha256:...` digest removed if
///   [`CanonContext::strip_image_digest`].
/// - `TaskTemplate.ContainerSpec.Isolation`: `"default"` and `""` removed (daemon fills `default`).
/// - `TaskTemplate.ContainerSpec.Env`: one entry per variable (the last one wins, as in the
///   engine), sorted by variable name; the daemon keeps the order it was sent.
/// - `TaskTemplate.ContainerSpec.StopGracePeriod`: absent → 10 s (swarmkit default).
/// - `TaskTemplate.ContainerSpec.Secrets` / `Configs`: `SecretID` / `ConfigID` removed (assigned
///   by the swarm; the name identifies the object), `File.UID`/`File.GID` absent → `"0"`,
///   `File.Mode` absent → `0444` (292), sorted by name then target file.
/// - `TaskTemplate.ContainerSpec.Mounts`: sorted by `Target` (order carries no meaning).
/// - `TaskTemplate.ContainerSpec.CapabilityAdd` / `CapabilityDrop` / `Groups`: sorted.
/// - `TaskTemplate.ContainerSpec.Privileges`: `CredentialSpec: null`, `SELinuxContext: null`,
///   `NoNewPrivileges: false` as the daemon/CLI fill them are removed (by the pruning below).
/// - `TaskTemplate.RestartPolicy`: absent → `{Condition: any, Delay: 5s, MaxAttempts: 0}`;
///   `Condition` absent → `any`; `Delay` absent → 5 s (swarmkit defaults).
/// - `TaskTemplate.Placement.Constraints`: sorted (a conjunction). `Preferences` keep their order.
/// - `TaskTemplate.Networks`: `Target` ID → name via [`CanonContext::network_names`], `Aliases`
///   sorted and deduplicated, attachments sorted by `Target`.
/// - `Mode`: absent → `{Replicated: {Replicas: 1}}`; `Replicated` without `Replicas` → 1;
///   the field-less modes `Global: {}` / `GlobalJob: {}` → `true` (so that pruning keeps them).
/// - `UpdateConfig` / `RollbackConfig`: absent → `{Parallelism: 1, FailureAction: pause,
///   Monitor: 5s, MaxFailureRatio: 0, Order: stop-first}` (swarmkit defaults); when present,
///   `Parallelism` absent → 0, `FailureAction` absent → `pause`, `Order` absent → `stop-first`,
///   `Monitor` absent or 0 → 5 s (the daemon stores 5 s when sent 0).
/// - `EndpointSpec`: absent → `{Mode: vip}`; `Mode` absent → `vip`; each port's `Protocol`
///   absent → `tcp` and `PublishMode` absent → `ingress`; ports sorted.
/// - `Labels` everywhere: berth's ownership label removed if [`CanonContext::ignore_owner_label`].
/// - Finally, everywhere: `null`, `false`, `""`, empty lists and empty maps are removed, and so
///   are numeric zeros except `Replicas` and `Parallelism` (the Engine API's Go types treat an
///   absent field as its zero value, and the daemon omits or adds such zeros at will: empty
///   `Resources: {}`, `Placement: {}`, `DNSConfig: {}`, `Labels: {}`, `MaxAttempts: 0`, ...).
pub fn canonical_service_spec(spec: &ServiceSpec, ctx: &CanonContext) -> Value {
    let mut v = serde_json::to_value(spec).unwrap_or(Value::Null);
    let Some(root) = v.as_object_mut() else { return v };

    if let Some(nets) = root.remove("Networks") {
        let tt = obj_entry(root, "TaskTemplate");
        if tt.get("Networks").is_none_or(is_empty_value) {
            tt.insert("Networks".into(), nets);
        }
    }

    {
        let tt = obj_entry(root, "TaskTemplate");
        tt.remove("ForceUpdate");
        if tt.get("Runtime").and_then(Value::as_str) == Some("container") {
            tt.remove("Runtime");
        }
        let cs = obj_entry(tt, "ContainerSpec");
        canon_container_spec(cs, ctx);

        let rp = obj_entry(tt, "RestartPolicy");
        default_str(rp, "Condition", "any");
        default_num(rp, "Delay", DEFAULT_RESTART_DELAY);

        if let Some(Value::Object(placement)) = tt.get_mut("Placement")
            && let Some(Value::Array(c)) = placement.get_mut("Constraints")
        {
            sort_strings(c);
        }

        if let Some(Value::Array(nets)) = tt.get_mut("Networks") {
            for n in nets.iter_mut() {
                let Some(n) = n.as_object_mut() else { continue };
                if let Some(Value::String(t)) = n.get_mut("Target")
                    && let Some(name) = ctx.network_names.get(t.as_str())
                {
                    *t = name.clone();
                }
                if let Some(Value::Array(a)) = n.get_mut("Aliases") {
                    sort_strings(a);
                    a.dedup();
                }
            }
            nets.sort_by_key(|n| n.get("Target").map(|t| t.to_string()).unwrap_or_default());
        }
    }

    match root.get_mut("Mode") {
        None | Some(Value::Null) => {
            root.insert("Mode".into(), json!({"Replicated": {"Replicas": 1}}));
        }
        Some(Value::Object(mode)) => {
            if mode.values().all(Value::is_null) {
                mode.insert("Replicated".into(), json!({"Replicas": 1}));
            } else if let Some(Value::Object(r)) = mode.get_mut("Replicated") {
                default_num(r, "Replicas", 1);
            }
            // `Global: {}` / `GlobalJob: {}` carry no fields; mark them so pruning keeps them.
            for (_, m) in mode.iter_mut() {
                if m.as_object().is_some_and(Map::is_empty) {
                    *m = Value::Bool(true);
                }
            }
        }
        _ => {}
    }

    for key in ["UpdateConfig", "RollbackConfig"] {
        match root.get_mut(key) {
            Some(Value::Object(u)) => {
                default_num(u, "Parallelism", 0);
                default_str(u, "FailureAction", "pause");
                default_str(u, "Order", "stop-first");
                if u.get("Monitor").is_none_or(|m| m.is_null() || is_zero(m)) {
                    u.insert("Monitor".into(), Value::from(DEFAULT_UPDATE_MONITOR));
                }
            }
            _ => {
                root.insert(
                    key.into(),
                    json!({"Parallelism": 1, "FailureAction": "pause", "Monitor": DEFAULT_UPDATE_MONITOR,
                        "MaxFailureRatio": 0.0, "Order": "stop-first"}),
                );
            }
        }
    }

    {
        let ep = obj_entry(root, "EndpointSpec");
        default_str(ep, "Mode", "vip");
        if let Some(Value::Array(ports)) = ep.get_mut("Ports") {
            for p in ports.iter_mut() {
                if let Some(p) = p.as_object_mut() {
                    default_str(p, "Protocol", "tcp");
                    default_str(p, "PublishMode", "ingress");
                }
            }
            ports.sort_by_key(|p| {
                let f = |k: &str| p.get(k).map(|x| x.to_string()).unwrap_or_default();
                (
                    f("Protocol"),
                    p.get("TargetPort").and_then(Value::as_i64),
                    p.get("PublishedPort").and_then(Value::as_i64),
                    f("PublishMode"),
                )
            });
        }
    }

    if ctx.ignore_owner_label {
        strip_key_everywhere(&mut v, LABEL_OWNER);
    }
    prune(&mut v);
    v
}

fn canon_container_spec(cs: &mut Map<String, Value>, ctx: &CanonContext) {
    if ctx.strip_image_digest
        && let Some(Value::String(img)) = cs.get_mut("Image")
        && let Some(at) = img.find("@sha256:")
    {
        img.truncate(at);
    }
    if matches!(cs.get("Isolation").and_then(Value::as_str), Some("default" | "")) {
        cs.remove("Isolation");
    }
    if let Some(Value::Array(env)) = cs.get_mut("Env") {
        let mut by_key: BTreeMap<String, Value> = BTreeMap::new();
        for e in env.drain(..) {
            let key = e.as_str().map(|s| s.split_once('=').map_or(s, |(k, _)| k).to_string()).unwrap_or_default();
            by_key.insert(key, e);
        }
        env.extend(by_key.into_values());
    }
    default_num(cs, "StopGracePeriod", DEFAULT_STOP_GRACE_PERIOD);
    for (list, id) in [("Secrets", "SecretID"), ("Configs", "ConfigID")] {
        if let Some(Value::Array(refs)) = cs.get_mut(list) {
            for r in refs.iter_mut() {
                let Some(r) = r.as_object_mut() else { continue };
                r.remove(id);
                if let Some(Value::Object(file)) = r.get_mut("File") {
                    default_str(file, "UID", "0");
                    default_str(file, "GID", "0");
                    default_num(file, "Mode", 0o444);
                }
            }
            let name_key = if list == "Secrets" { "SecretName" } else { "ConfigName" };
            refs.sort_by_key(|r| {
                let name = r.get(name_key).and_then(Value::as_str).unwrap_or_default().to_string();
                (name, r.pointer("/File/Name").map(|f| f.to_string()).unwrap_or_default(), r.to_string())
            });
        }
    }
    if let Some(Value::Array(m)) = cs.get_mut("Mounts") {
        m.sort_by_key(|m| m.get("Target").map(|t| t.to_string()).unwrap_or_default());
    }
    for key in ["CapabilityAdd", "CapabilityDrop", "Groups"] {
        if let Some(Value::Array(a)) = cs.get_mut(key) {
            sort_strings(a);
        }
    }
}

/// The map under `key`, created (or replacing a non-map) if needed.
fn obj_entry<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = m.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

fn default_str(m: &mut Map<String, Value>, key: &str, default: &str) {
    if m.get(key).is_none_or(|v| v.is_null() || v.as_str() == Some("")) {
        m.insert(key.into(), Value::String(default.into()));
    }
}

fn default_num(m: &mut Map<String, Value>, key: &str, default: i64) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), Value::from(default));
    }
}

fn sort_strings(a: &mut [Value]) {
    a.sort_by(|x, y| x.as_str().unwrap_or_default().cmp(y.as_str().unwrap_or_default()));
}

fn strip_key_everywhere(v: &mut Value, key: &str) {
    match v {
        Value::Object(m) => {
            m.remove(key);
            m.values_mut().for_each(|x| strip_key_everywhere(x, key));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip_key_everywhere(x, key)),
        _ => {}
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Number(_) => false,
    }
}

fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
}

/// Remove `null`, `false`, `""`, empty lists/maps and (except under `Replicas`/`Parallelism`)
/// numeric zeros from maps, recursively. List elements are pruned inside but never removed.
fn prune(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for x in m.values_mut() {
                prune(x);
            }
            m.retain(|k, x| !(is_empty_value(x) || (is_zero(x) && !matches!(k.as_str(), "Replicas" | "Parallelism"))));
        }
        Value::Array(a) => a.iter_mut().for_each(prune),
        _ => {}
    }
}

/// Remove empty values as [`canonical_service_spec`] does, for other objects' canonical forms.
pub fn prune_empty(v: &mut Value) {
    prune(v);
}

/// Append to `out` the differences between `old` and `new` below `path`.
///
/// Maps are compared key by key (sorted); a key present on one side only is one change with the
/// whole value. Lists are aligned by a longest-common-subsequence match, so an element added to
/// or removed from the middle is one change, not a shift of every later element; a removed
/// element followed by an added one is reported as one change of that element (recursing into
/// maps). Scalars that differ are one change.
pub fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = join_key(path, k);
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_values(&p, x, y, out),
                    (x, y) => out.push(Change { path: p, old: x.cloned(), new: y.cloned() }),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => diff_lists(path, a, b, out),
        _ => out.push(Change { path: path.to_string(), old: Some(old.clone()), new: Some(new.clone()) }),
    }
}

fn diff_lists(path: &str, a: &[Value], b: &[Value], out: &mut Vec<Change>) {
    // LCS table over element equality.
    let (n, m) = (a.len(), b.len());
    let mut t = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i][j] = if a[i] == b[j] { t[i + 1][j + 1] + 1 } else { t[i + 1][j].max(t[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut removed: Vec<usize> = Vec::new();
    let mut added: Vec<usize> = Vec::new();
    let flush = |removed: &mut Vec<usize>, added: &mut Vec<usize>, out: &mut Vec<Change>| {
        let pairs = removed.len().min(added.len());
        for k in 0..pairs {
            let (x, y) = (&a[removed[k]], &b[added[k]]);
            let p = format!("{path}[{}]", added[k]);
            if x.is_object() && y.is_object() {
                diff_values(&p, x, y, out);
            } else {
                out.push(Change { path: p, old: Some(x.clone()), new: Some(y.clone()) });
            }
        }
        for &r in &removed[pairs..] {
            out.push(Change { path: format!("{path}[{r}]"), old: Some(a[r].clone()), new: None });
        }
        for &ad in &added[pairs..] {
            out.push(Change { path: format!("{path}[{ad}]"), old: None, new: Some(b[ad].clone()) });
        }
        removed.clear();
        added.clear();
    };
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            flush(&mut removed, &mut added, out);
            i += 1;
            j += 1;
        } else if j < m && (i == n || t[i][j + 1] >= t[i + 1][j]) {
            added.push(j);
            j += 1;
        } else {
            removed.push(i);
            i += 1;
        }
    }
    flush(&mut removed, &mut added, out);
}

/// `path.key`, or `path["key"]` when the key is not a plain identifier (label names with dots).
fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> ServiceSpec {
        serde_json::from_value(v).unwrap()
    }

    fn canon(v: Value) -> Value {
        canonical_service_spec(&spec(v), &CanonContext::default())
    }

    #[test]
    fn minimal_spec_equals_daemon_filled_defaults() {
        let sent = json!({"Name": "x", "TaskTemplate": {"ContainerSpec": {"Image": "busybox:1.36"}}});
        let stored = json!({"Name": "x", "Labels": {}, "TaskTemplate": {"ContainerSpec": {"Image": "busybox:1.36",
            "Isolation": "default"}, "ForceUpdate": 0, "Runtime": "container"},
            "Mode": {"Replicated": {"Replicas": 1}}});
        assert_eq!(canon(sent), canon(stored));
    }

    #[test]
    fn empty_maps_and_null_privileges_are_dropped() {
        let a = json!({"Name": "x", "TaskTemplate": {"ContainerSpec": {"Image": "i", "Privileges":
            {"CredentialSpec": null, "SELinuxContext": null}, "DNSConfig": {}}, "Resources": {}, "Placement": {}}});
        let b = json!({"Name": "x", "TaskTemplate": {"ContainerSpec": {"Image": "i"}}});
        assert_eq!(canon(a), canon(b));
    }

    #[test]
    fn env_order_does_not_matter_and_last_duplicate_wins() {
        let a = json!({"TaskTemplate": {"ContainerSpec": {"Env": ["B=2", "A=1", "A=3"]}}});
        let b = json!({"TaskTemplate": {"ContainerSpec": {"Env": ["A=3", "B=2"]}}});
        assert_eq!(canon(a.clone()), canon(b));
        assert_eq!(canon(a)["TaskTemplate"]["ContainerSpec"]["Env"], json!(["A=3", "B=2"]));
    }

    #[test]
    fn replicated_without_replicas_means_one_and_zero_is_kept() {
        assert_eq!(canon(json!({"Mode": {"Replicated": {}}})), canon(json!({})));
        let zero = canon(json!({"Mode": {"Replicated": {"Replicas": 0}}}));
        assert_eq!(zero["Mode"]["Replicated"]["Replicas"], json!(0));
    }

    #[test]
    fn global_mode_survives_pruning() {
        let g = canon(json!({"Mode": {"Global": {}}}));
        assert_ne!(g, canon(json!({})));
    }

    #[test]
    fn absent_update_config_equals_swarmkit_defaults() {
        let filled = json!({"UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000i64,
            "MaxFailureRatio": 0, "Order": "stop-first"}, "RollbackConfig": {"Parallelism": 1,
            "FailureAction": "pause", "Monitor": 5000000000i64, "MaxFailureRatio": 0, "Order": "stop-first"}});
        assert_eq!(canon(filled), canon(json!({})));
        let partial = canon(json!({"UpdateConfig": {"Parallelism": 2}}));
        let stored = canon(json!({"UpdateConfig": {"Parallelism": 2, "FailureAction": "pause",
            "MaxFailureRatio": 0, "Order": "stop-first"}}));
        assert_eq!(partial, stored);
    }

    #[test]
    fn restart_policy_and_stop_grace_defaults() {
        let stored = json!({"TaskTemplate": {"ContainerSpec": {"StopGracePeriod": 10000000000i64},
            "RestartPolicy": {"Condition": "any", "Delay": 5000000000i64, "MaxAttempts": 0}}});
        assert_eq!(canon(stored), canon(json!({})));
        assert_ne!(canon(json!({"TaskTemplate": {"RestartPolicy": {"Condition": "on-failure"}}})), canon(json!({})));
    }

    #[test]
    fn endpoint_defaults_vip_tcp_ingress() {
        let sent = json!({"EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}});
        let stored = json!({"EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80,
            "PublishedPort": 8080, "PublishMode": "ingress"}]}});
        assert_eq!(canon(sent), canon(stored));
    }

    #[test]
    fn network_ids_map_to_names_and_secret_ids_are_ignored() {
        let ctx = CanonContext {
            network_names: BTreeMap::from([("abc123".to_string(), "s_default".to_string())]),
            ..Default::default()
        };
        let stored = spec(json!({"TaskTemplate": {"ContainerSpec": {"Secrets": [{"SecretID": "zzz",
            "SecretName": "s_pw", "File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 292}}]},
            "Networks": [{"Target": "abc123", "Aliases": ["web"]}]}}));
        let sent = spec(json!({"TaskTemplate": {"ContainerSpec": {"Secrets": [{"SecretName": "s_pw",
            "File": {"Name": "pw"}}]}, "Networks": [{"Target": "s_default", "Aliases": ["web"]}]}}));
        assert_eq!(canonical_service_spec(&stored, &ctx), canonical_service_spec(&sent, &ctx));
    }

    #[test]
    fn image_digest_stripped_only_when_asked() {
        let pinned = spec(json!({"TaskTemplate": {"ContainerSpec": {"Image": "nginx:1.25@sha256:abcd"}}}));
        let tag = spec(json!({"TaskTemplate": {"ContainerSpec": {"Image": "nginx:1.25"}}}));
        let ctx = CanonContext { strip_image_digest: true, ..Default::default() };
        assert_eq!(canonical_service_spec(&pinned, &ctx), canonical_service_spec(&tag, &ctx));
        assert_ne!(
            canonical_service_spec(&pinned, &CanonContext::default()),
            canonical_service_spec(&tag, &CanonContext::default())
        );
    }

    #[test]
    fn owner_label_ignored_only_when_asked() {
        let a = json!({"Labels": {"io.berth.stack": "s", "x": "1"}});
        let b = json!({"Labels": {"x": "1"}});
        assert_ne!(canon(a.clone()), canon(b.clone()));
        let ctx = CanonContext { ignore_owner_label: true, ..Default::default() };
        assert_eq!(canonical_service_spec(&spec(a), &ctx), canonical_service_spec(&spec(b), &ctx));
    }

    #[test]
    fn diff_of_added_env_entry_is_one_change() {
        let mut out = Vec::new();
        diff_values("Env", &json!(["A=1", "C=3"]), &json!(["A=1", "B=2", "C=3"]), &mut out);
        assert_eq!(out, vec![Change { path: "Env[1]".into(), old: None, new: Some(json!("B=2")) }]);
    }

    #[test]
    fn diff_of_replaced_list_element_is_one_change() {
        let mut out = Vec::new();
        diff_values("Env", &json!(["A=1", "B=2"]), &json!(["A=1", "B=3"]), &mut out);
        assert_eq!(out, vec![Change { path: "Env[1]".into(), old: Some(json!("B=2")), new: Some(json!("B=3")) }]);
    }

    #[test]
    fn diff_paths_quote_dotted_keys() {
        let mut out = Vec::new();
        diff_values("", &json!({"Labels": {"a.b": "1"}}), &json!({"Labels": {"a.b": "2"}}), &mut out);
        assert_eq!(out[0].path, r#"Labels["a.b"]"#);
    }
}
