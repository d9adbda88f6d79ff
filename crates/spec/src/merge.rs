//! Multi-file merge: what `docker stack deploy -c base.yml -c override.yml` does.
//!
//! A transcription of docker/cli's `cli/compose/loader/merge.go` (docker 28.x), which merges the
//! loaded `types.Config` values with `mergo.Merge(dst, src, WithAppendSlice, WithOverride,
//! WithTransformers(...))`. mergo's generic rules become explicit per-field calls here:
//!
//! * scalars (strings, numbers, bools, durations): the override wins when it is not the zero value
//!   (`read_only: false` cannot switch off `read_only: true`, `image: ""` keeps the image);
//! * Go pointers (`Option` here): a missing override keeps the base, a missing base takes the
//!   override, both present merge the pointee; `*uint64` fields (`replicas`, `retries`,
//!   `parallelism`, `max_attempts`) are replaced even by `0`;
//! * plain lists are appended (`cap_add`, `dns`, `extra_hosts`, placement constraints, and —
//!   faithfully to docker/cli — even `healthcheck.test`);
//! * string maps (`labels`, `sysctls`, `deploy.labels`, ...) are merged key by key, override wins;
//! * `environment` / build `args`: an override value replaces an absent or empty base value; a
//!   non-empty base value is only replaced by a non-empty override value;
//! * `command` / `entrypoint`: replaced when the override is non-empty;
//! * `ports` keyed by published port, `volumes` by target, `secrets` / `configs` by source: override
//!   entries replace base entries with the same key and the result is sorted by the key. As in
//!   docker/cli this only happens when the base list is non-empty (otherwise the override list is
//!   taken as is), and all ports without a published port share the key `0`;
//! * `logging`: same (or one empty) driver merges options — but only into existing base options —,
//!   a different driver replaces the whole block;
//! * service `networks`: aliases replaced (even by none), addresses replaced when set;
//! * `ulimits`: replaced per name;
//! * service `x-*`: merged like mergo merges `map[string]interface{}` (maps merged into maps,
//!   lists appended to lists, anything else replaced; appending a list to a non-list is an error,
//!   as in docker/cli);
//! * top level: services merged by name (new ones added), `networks` / `volumes` / `secrets` /
//!   `configs` replaced per name; `version` and top-level `x-*` come from the first file only.

use crate::diag::Diagnostic;
use crate::model::{
    BuildConfig, CredentialSpecConfig, DeployConfig, HealthCheckConfig, LoggingConfig, MappingWithEquals, Placement,
    Resource, ResourceLimit, Resources, RestartPolicy, Service, ServiceNetworkConfig, Stack, UpdateConfig,
};
use std::collections::BTreeMap;

/// Merges the stacks of several files, in order, into one (docker/cli's `loader.merge`).
///
/// The first stack is the base; each following one is merged onto it. An empty list gives an empty
/// stack. Errors (only a type clash inside service `x-*` fields, as in docker/cli) carry the key path.
pub fn merge(stacks: Vec<Stack>) -> Result<Stack, Diagnostic> {
    let mut it = stacks.into_iter();
    let Some(mut base) = it.next() else {
        return Ok(Stack::default());
    };
    for over in it {
        let Stack { version: _, services, networks, volumes, secrets, configs, extras } = over;
        // Top-level `x-*` of later files are dropped like docker/cli does, except berth's own
        // `x-berth`: an override file may change a target or a port (maps merge key by key,
        // anything else is replaced).
        if let Some(over_xb) = extras.get("x-berth") {
            match base.extras.get_mut("x-berth") {
                Some(base_xb) => override_json(base_xb, over_xb.clone()),
                None => {
                    base.extras.insert("x-berth".into(), over_xb.clone());
                }
            }
        }
        for (name, svc) in services {
            match base.services.get_mut(&name) {
                Some(b) => merge_service(b, svc).map_err(|e| e.at(&format!("services.{name}")))?,
                None => {
                    base.services.insert(name, svc);
                }
            }
        }
        base.networks.extend(networks);
        base.volumes.extend(volumes);
        base.secrets.extend(secrets);
        base.configs.extend(configs);
    }
    Ok(base)
}

/// Merges one service of an override file onto the same service of the base (mergo on `ServiceConfig`).
pub fn merge_service(d: &mut Service, s: Service) -> Result<(), MergeError> {
    let Service {
        build,
        cap_add,
        cap_drop,
        cgroupns_mode,
        cgroup_parent,
        command,
        configs,
        container_name,
        credential_spec,
        depends_on,
        deploy,
        devices,
        dns,
        dns_search,
        domainname,
        entrypoint,
        environment,
        env_file,
        expose,
        external_links,
        extra_hosts,
        hostname,
        healthcheck,
        image,
        init,
        ipc,
        isolation,
        labels,
        links,
        logging,
        mac_address,
        network_mode,
        networks,
        pid,
        ports,
        privileged,
        read_only,
        restart,
        secrets,
        security_opt,
        shm_size,
        stdin_open,
        stop_grace_period,
        stop_signal,
        sysctls,
        tmpfs,
        tty,
        ulimits,
        user,
        userns_mode,
        volumes,
        working_dir,
        extras,
    } = s;
    merge_build(&mut d.build, build);
    append(&mut d.cap_add, cap_add);
    append(&mut d.cap_drop, cap_drop);
    val(&mut d.cgroupns_mode, cgroupns_mode);
    val(&mut d.cgroup_parent, cgroup_parent);
    replace_nonempty(&mut d.command, command);
    keyed(&mut d.configs, configs, |c| c.source.clone());
    val(&mut d.container_name, container_name);
    merge_credential_spec(&mut d.credential_spec, credential_spec);
    append(&mut d.depends_on, depends_on);
    merge_deploy(&mut d.deploy, deploy);
    append(&mut d.devices, devices);
    append(&mut d.dns, dns);
    append(&mut d.dns_search, dns_search);
    val(&mut d.domainname, domainname);
    replace_nonempty(&mut d.entrypoint, entrypoint);
    merge_env(&mut d.environment, environment);
    append(&mut d.env_file, env_file);
    append(&mut d.expose, expose);
    append(&mut d.external_links, external_links);
    append(&mut d.extra_hosts, extra_hosts);
    val(&mut d.hostname, hostname);
    ptr(&mut d.healthcheck, healthcheck, merge_healthcheck);
    val(&mut d.image, image);
    ptr(&mut d.init, init, val);
    val(&mut d.ipc, ipc);
    val(&mut d.isolation, isolation);
    d.labels.extend(labels);
    append(&mut d.links, links);
    ptr(&mut d.logging, logging, merge_logging);
    val(&mut d.mac_address, mac_address);
    val(&mut d.network_mode, network_mode);
    merge_service_networks(&mut d.networks, networks);
    val(&mut d.pid, pid);
    keyed(&mut d.ports, ports, |p| p.published);
    val(&mut d.privileged, privileged);
    val(&mut d.read_only, read_only);
    val(&mut d.restart, restart);
    keyed(&mut d.secrets, secrets, |c| c.source.clone());
    append(&mut d.security_opt, security_opt);
    val(&mut d.shm_size, shm_size);
    val(&mut d.stdin_open, stdin_open);
    ptr(&mut d.stop_grace_period, stop_grace_period, val);
    val(&mut d.stop_signal, stop_signal);
    d.sysctls.extend(sysctls);
    append(&mut d.tmpfs, tmpfs);
    val(&mut d.tty, tty);
    // mergeUlimitsConfig: a present override replaces the whole entry.
    d.ulimits.extend(ulimits);
    val(&mut d.user, user);
    val(&mut d.userns_mode, userns_mode);
    keyed(&mut d.volumes, volumes, |v| v.target.clone());
    val(&mut d.working_dir, working_dir);
    merge_extras(&mut d.extras, extras, "")
}

/// Why a merge failed: a key path below the service and what clashed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct MergeError {
    /// Key path relative to where the merge started (`x-foo.bar`).
    pub path: String,
    /// What clashed.
    pub message: String,
}

impl MergeError {
    /// The error as a [`Diagnostic`], with `prefix` (e.g. `services.web`) put before its path.
    pub fn at(&self, prefix: &str) -> Diagnostic {
        let path = if self.path.is_empty() { prefix.to_string() } else { format!("{prefix}.{}", self.path) };
        Diagnostic::error("merge.type-mismatch", None, path, format!("cannot merge files: {}", self.message))
            .with_hint("make the value a list in every file, or drop it from all but one file")
    }
}

/// mergo's rule for a non-pointer scalar: the override wins unless it is the zero value.
fn val<T: Default + PartialEq>(d: &mut T, s: T) {
    if s != T::default() {
        *d = s;
    }
}

/// mergo's rule for a Go pointer: keep the base when the override is nil, take the override when the
/// base is nil, merge the pointees with `f` otherwise.
fn ptr<T>(d: &mut Option<T>, s: Option<T>, f: fn(&mut T, T)) {
    match (d.as_mut(), s) {
        (_, None) => {}
        (None, s) => *d = s,
        (Some(d), Some(s)) => f(d, s),
    }
}

/// docker/cli's `mergeUint64` for `*uint64` fields: any present override replaces, `0` included.
fn uint(d: &mut Option<u64>, s: Option<u64>) {
    if s.is_some() {
        *d = s;
    }
}

/// `WithAppendSlice`: plain lists are concatenated.
fn append<T>(d: &mut Vec<T>, s: Vec<T>) {
    d.extend(s);
}

/// docker/cli's `mergeShellCommand`: a non-empty override replaces.
fn replace_nonempty(d: &mut Vec<String>, s: Vec<String>) {
    if !s.is_empty() {
        *d = s;
    }
}

/// docker/cli's `mergeSlice(toMap, toSlice)` for ports/volumes/secrets/configs.
///
/// mergo only calls the transformer when the base slice is non-nil; with an empty base the
/// override list is appended as is (no de-duplication, no sorting). Otherwise both lists go into a
/// map by `key` (later entries win, override after base) and come back sorted by key.
fn keyed<T, K: Ord>(d: &mut Vec<T>, s: Vec<T>, key: impl Fn(&T) -> K) {
    if d.is_empty() {
        d.extend(s);
        return;
    }
    let mut m = BTreeMap::new();
    for item in std::mem::take(d).into_iter().chain(s) {
        m.insert(key(&item), item);
    }
    d.extend(m.into_values());
}

/// `MappingWithEquals` (`map[string]*string`) under mergo v1 (which treats a pointer to `""` as
/// empty): an override entry replaces a missing, null or empty base value; a non-empty base value
/// is only replaced by a non-empty override value.
fn merge_env(d: &mut MappingWithEquals, s: MappingWithEquals) {
    for (k, v) in s {
        match d.get_mut(&k) {
            None | Some(None) => {
                d.insert(k, v);
            }
            Some(Some(cur)) if cur.is_empty() => {
                d.insert(k, v);
            }
            Some(Some(cur)) => {
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    *cur = v;
                }
            }
        }
    }
}

fn merge_build(d: &mut BuildConfig, s: BuildConfig) {
    let BuildConfig { context, dockerfile, args, labels, cache_from, extra_hosts, network, target } = s;
    val(&mut d.context, context);
    val(&mut d.dockerfile, dockerfile);
    merge_env(&mut d.args, args);
    d.labels.extend(labels);
    append(&mut d.cache_from, cache_from);
    append(&mut d.extra_hosts, extra_hosts);
    val(&mut d.network, network);
    val(&mut d.target, target);
}

fn merge_credential_spec(d: &mut CredentialSpecConfig, s: CredentialSpecConfig) {
    let CredentialSpecConfig { config, file, registry } = s;
    val(&mut d.config, config);
    val(&mut d.file, file);
    val(&mut d.registry, registry);
}

fn merge_deploy(d: &mut DeployConfig, s: DeployConfig) {
    let DeployConfig {
        mode,
        replicas,
        labels,
        update_config,
        rollback_config,
        resources,
        restart_policy,
        placement,
        endpoint_mode,
    } = s;
    val(&mut d.mode, mode);
    uint(&mut d.replicas, replicas);
    d.labels.extend(labels);
    ptr(&mut d.update_config, update_config, merge_update);
    ptr(&mut d.rollback_config, rollback_config, merge_update);
    let Resources { limits, reservations } = resources;
    ptr(&mut d.resources.limits, limits, merge_limit);
    ptr(&mut d.resources.reservations, reservations, merge_reservation);
    ptr(&mut d.restart_policy, restart_policy, merge_restart);
    let Placement { constraints, preferences, max_replicas_per_node } = placement;
    append(&mut d.placement.constraints, constraints);
    append(&mut d.placement.preferences, preferences);
    val(&mut d.placement.max_replicas_per_node, max_replicas_per_node);
    val(&mut d.endpoint_mode, endpoint_mode);
}

fn merge_update(d: &mut UpdateConfig, s: UpdateConfig) {
    let UpdateConfig { parallelism, delay, failure_action, monitor, max_failure_ratio, order } = s;
    uint(&mut d.parallelism, parallelism);
    val(&mut d.delay, delay);
    val(&mut d.failure_action, failure_action);
    val(&mut d.monitor, monitor);
    val(&mut d.max_failure_ratio, max_failure_ratio);
    val(&mut d.order, order);
}

fn merge_limit(d: &mut ResourceLimit, s: ResourceLimit) {
    let ResourceLimit { cpus, memory, pids } = s;
    val(&mut d.cpus, cpus);
    val(&mut d.memory, memory);
    val(&mut d.pids, pids);
}

fn merge_reservation(d: &mut Resource, s: Resource) {
    let Resource { cpus, memory, generic_resources } = s;
    val(&mut d.cpus, cpus);
    val(&mut d.memory, memory);
    append(&mut d.generic_resources, generic_resources);
}

fn merge_restart(d: &mut RestartPolicy, s: RestartPolicy) {
    let RestartPolicy { condition, delay, max_attempts, window } = s;
    val(&mut d.condition, condition);
    ptr(&mut d.delay, delay, val);
    uint(&mut d.max_attempts, max_attempts);
    ptr(&mut d.window, window, val);
}

fn merge_healthcheck(d: &mut HealthCheckConfig, s: HealthCheckConfig) {
    let HealthCheckConfig { test, timeout, interval, retries, start_period, start_interval, disable } = s;
    // `HealthCheckTest` has no transformer in docker/cli: the two tests are concatenated.
    append(&mut d.test, test);
    ptr(&mut d.timeout, timeout, val);
    ptr(&mut d.interval, interval, val);
    uint(&mut d.retries, retries);
    ptr(&mut d.start_period, start_period, val);
    ptr(&mut d.start_interval, start_interval, val);
    val(&mut d.disable, disable);
}

/// docker/cli's `mergeLoggingConfig` (called only when both files have `logging`).
fn merge_logging(d: &mut LoggingConfig, s: LoggingConfig) {
    if d.driver == s.driver || d.driver.is_empty() || s.driver.is_empty() {
        if d.driver.is_empty() {
            d.driver = s.driver;
        }
        // docker/cli merges into a copy of the base's options map: when the base has no options
        // (a nil map) the merged map is dropped, so the override's options are lost.
        if !d.options.is_empty() {
            d.options.extend(s.options);
        }
    } else {
        *d = s;
    }
}

/// Service `networks` (`map[string]*ServiceNetworkConfig` with `mergeServiceNetworkConfig`).
fn merge_service_networks(
    d: &mut BTreeMap<String, Option<ServiceNetworkConfig>>,
    s: BTreeMap<String, Option<ServiceNetworkConfig>>,
) {
    for (name, sv) in s {
        match d.get_mut(&name) {
            None | Some(None) => {
                d.insert(name, sv);
            }
            Some(Some(dn)) => {
                if let Some(sn) = sv {
                    dn.aliases = sn.aliases;
                    val(&mut dn.ipv4_address, sn.ipv4_address);
                    val(&mut dn.ipv6_address, sn.ipv6_address);
                }
            }
        }
    }
}

/// Override semantics for `x-berth`: maps merge key by key; any other value replaces.
fn override_json(d: &mut serde_json::Value, s: serde_json::Value) {
    match (d, s) {
        (serde_json::Value::Object(dm), serde_json::Value::Object(sm)) => {
            for (k, v) in sm {
                match dm.get_mut(&k) {
                    Some(dv) => override_json(dv, v),
                    None => {
                        dm.insert(k, v);
                    }
                }
            }
        }
        (d, s) => *d = s,
    }
}

/// mergo on `map[string]interface{}` (service `x-*` fields), recursively.
fn merge_extras(
    d: &mut BTreeMap<String, serde_json::Value>,
    s: BTreeMap<String, serde_json::Value>,
    path: &str,
) -> Result<(), MergeError> {
    let mut m: serde_json::Map<String, serde_json::Value> = std::mem::take(d).into_iter().collect();
    let r = merge_json_map(&mut m, s.into_iter().collect(), path);
    *d = m.into_iter().collect();
    r
}

fn merge_json_map(
    d: &mut serde_json::Map<String, serde_json::Value>,
    s: serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Result<(), MergeError> {
    use serde_json::Value as J;
    for (k, sv) in s {
        let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        match (d.get_mut(&k), sv) {
            // A map merges into a map; over any other value it replaces it (mergo v1 only keeps
            // the base entry when both are maps).
            (Some(J::Object(dm)), J::Object(sm)) => merge_json_map(dm, sm, &here)?,
            // Lists are appended; onto a missing or null value they are set; onto anything else
            // mergo fails with "cannot append two slices with different type".
            (Some(J::Array(da)), J::Array(sa)) => da.extend(sa),
            (Some(J::Null), J::Array(sa)) => {
                d.insert(k, J::Array(sa));
            }
            (Some(dv), J::Array(_)) => {
                return Err(MergeError { path: here, message: format!("cannot append a list to {}", json_type(dv)) });
            }
            // Scalars, null and new keys: the override wins.
            (_, sv) => {
                d.insert(k, sv);
            }
        }
    }
    Ok(())
}

fn json_type(v: &serde_json::Value) -> &'static str {
    use serde_json::Value as J;
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "a list",
        J::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod x_berth_merge_tests {
    use super::*;

    #[test]
    fn an_override_file_changes_x_berth_key_by_key() {
        let mut a = Stack::default();
        a.extras.insert(
            "x-berth".into(),
            serde_json::json!({"name": "blog", "edge": {"http_port": 80, "https_port": 443}, "domains": ["a.example.com"]}),
        );
        let mut b = Stack::default();
        b.extras
            .insert("x-berth".into(), serde_json::json!({"edge": {"http_port": 8080}, "domains": ["b.example.com"]}));
        b.extras.insert("x-other".into(), serde_json::json!(1));
        let m = merge(vec![a, b]).unwrap();
        assert_eq!(
            m.extras["x-berth"],
            serde_json::json!({"name": "blog", "edge": {"http_port": 8080, "https_port": 443}, "domains": ["b.example.com"]})
        );
        assert!(!m.extras.contains_key("x-other"), "other top-level x-* of later files are dropped like docker/cli");
    }
}
