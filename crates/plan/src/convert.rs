//! Stack → Engine API specs, exactly like `docker stack deploy --resolve-image never`.
//!
//! Mirrors docker/cli's `cli/compose/convert` (service.go, compose.go, volume.go), the parts of
//! `cli/command/stack/swarm/deploy_composefile.go` that shape requests (default network driver,
//! which networks are created) and what the Docker client library changes before sending
//! (`image` gets a tag: [`normalize_image`]). The one deliberate difference: every object berth
//! creates also carries [`LABEL_OWNER`], and with [`ConvertOptions::content_addressed`] secrets and
//! configs get a content hash in their name.
//!
//! Two things only the engine can fill in, because they need the swarm: secret/config IDs in
//! service references (docker/cli looks them up by name; see [`resolve_references`]) and the
//! config ID of a `credential_spec: {config: ...}` (this module puts the config *name* there).

mod gosort;
mod image;

pub use image::normalize_image;

use crate::desired::{Desired, LABEL_NAMESPACE, LABEL_OWNER};
use berth_spec::Diagnostic;
use berth_spec::model::{
    FileObjectConfig, FileReferenceConfig, HealthCheckConfig, NetworkConfig, Service, ServiceVolumeConfig, Stack,
    UpdateConfig, VolumeConfig,
};
use berth_spec::xberth::SecretSource;
use bollard_stubs::models::{
    ConfigSpec, Driver, EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, GenericResourcesInner, GenericResourcesInnerDiscreteResourceSpec, HealthConfig,
    Ipam, IpamConfig, Limit, Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType,
    MountVolumeOptions, MountVolumeOptionsDriverConfig, NetworkAttachmentConfig, NetworkCreateRequest, ResourceObject,
    ResourcesUlimits, SecretSpec, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecModeReplicatedJob, ServiceSpecRollbackConfig, ServiceSpecUpdateConfig, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecConfigs, TaskSpecContainerSpecDnsConfig, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecFile1, TaskSpecContainerSpecIsolationEnum, TaskSpecContainerSpecPrivileges,
    TaskSpecContainerSpecPrivilegesCredentialSpec, TaskSpecContainerSpecSecrets, TaskSpecLogDriver, TaskSpecPlacement,
    TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Label on a secret whose value the engine generates (`x-berth: { generate: N }`); the value is
/// the length in characters. Such a secret has no `Data` in the desired state.
pub const LABEL_GENERATED: &str = "io.berth.generated";

/// Label docker/cli puts on a service with the image as written in the file.
pub const LABEL_IMAGE: &str = "com.docker.stack.image";

/// How to convert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Name secrets/configs `<stack>_<name>_<hash8>` of their content (berth's default, so a change is a new object
    /// and rollback keeps the old one) instead of docker/cli's `<stack>_<name>`. Parity tests set false.
    /// An explicit `name:` becomes `<name>_<hash8>`; external and driver-backed secrets keep their names.
    pub content_addressed: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions { content_addressed: true }
    }
}

/// Reads the content of `file:` secrets/configs (the CLI passes std::fs::read; tests may pass a map).
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>;

/// Converts a loaded stack into the objects `docker stack deploy` would create for it.
///
/// Networks: those some service uses (`<stack>_default` as an overlay network when a service names
/// none), external ones listed in `external_networks`. Secrets/configs: every non-external one
/// (their files read through `read`), external ones that services reference in `external_*`.
/// Services: one spec per service, named `<stack>_<service>`. Volumes: left empty — `docker stack
/// deploy` creates none; each node creates a mount's volume from its `VolumeOptions` on first use.
///
/// Errors: every problem found (undefined secret/config/network/volume, unreadable file, invalid
/// values), each naming its key path.
pub fn desired(
    stack: &Stack,
    stack_name: &str,
    opts: &ConvertOptions,
    read: ReadFile,
) -> Result<Desired, Vec<Diagnostic>> {
    let mut cx = Cx { stack, ns: stack_name, diags: Vec::new() };
    let mut out = Desired { stack: stack_name.to_string(), ..Default::default() };

    // Secrets and configs first: their final names (maybe content-addressed) are referenced by services.
    let secret_names = cx.file_objects("secrets", &stack.secrets, opts, read, |name, spec, obj| {
        let mut s = SecretSpec { name: Some(name.clone()), labels: Some(spec.labels), ..Default::default() };
        if obj.driver.is_empty() {
            s.data = spec.data;
        } else {
            s.driver = Some(Driver { name: obj.driver.clone(), options: opt_map(&obj.driver_opts) });
        }
        s.templating = templating(obj);
        out.secrets.insert(name, s);
    });
    let config_names = cx.file_objects("configs", &stack.configs, opts, read, |name, spec, obj| {
        let c = ConfigSpec {
            name: Some(name.clone()),
            labels: Some(spec.labels),
            data: spec.data,
            templating: templating(obj),
        };
        out.configs.insert(name, c);
    });

    // Networks used by services.
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for svc in stack.services.values() {
        if svc.networks.is_empty() {
            used.insert("default");
        }
        used.extend(svc.networks.keys().map(String::as_str));
    }
    for key in used {
        let default = NetworkConfig::default();
        let nw = stack.networks.get(key).unwrap_or(&default);
        if nw.external.external {
            let name = if nw.name.is_empty() { key.to_string() } else { nw.name.clone() };
            if !out.external_networks.contains(&name) {
                out.external_networks.push(name);
            }
            continue;
        }
        let name = if nw.name.is_empty() { cx.scope(key) } else { nw.name.clone() };
        let req = cx.network(&name, nw);
        out.networks.insert(name, req);
    }

    for (svc_name, svc) in &stack.services {
        if let Some(spec) = cx.service(svc_name, svc, &secret_names, &config_names) {
            out.services.insert(cx.scope(svc_name), spec);
        }
        for r in &svc.secrets {
            if let Some(Resolved { name, external: true }) = secret_names.get(&r.source)
                && !out.external_secrets.contains(name)
            {
                out.external_secrets.push(name.clone());
            }
        }
        for r in svc.configs.iter().map(|r| &r.source).chain(Some(&svc.credential_spec.config)) {
            if let Some(Resolved { name, external: true }) = config_names.get(r)
                && !out.external_configs.contains(name)
            {
                out.external_configs.push(name.clone());
            }
        }
    }

    if cx.diags.is_empty() { Ok(out) } else { Err(cx.diags) }
}

/// Fills in what `docker stack deploy` looks up in the swarm just before creating a service: the
/// IDs of referenced secrets and configs (by name), and the config ID of a credential spec that
/// names a config. Returns the names that could not be resolved.
pub fn resolve_references(
    spec: &mut ServiceSpec,
    secret_id: &dyn Fn(&str) -> Option<String>,
    config_id: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Vec<String>> {
    let mut missing = Vec::new();
    let Some(cs) = spec.task_template.as_mut().and_then(|t| t.container_spec.as_mut()) else { return Ok(()) };
    for s in cs.secrets.iter_mut().flatten() {
        let name = s.secret_name.clone().unwrap_or_default();
        match secret_id(&name) {
            Some(id) => s.secret_id = Some(id),
            None => missing.push(name),
        }
    }
    for c in cs.configs.iter_mut().flatten() {
        let name = c.config_name.clone().unwrap_or_default();
        match config_id(&name) {
            Some(id) => c.config_id = Some(id),
            None => missing.push(name),
        }
    }
    if let Some(cred) = cs.privileges.as_mut().and_then(|p| p.credential_spec.as_mut())
        && let Some(name) = cred.config.clone()
    {
        match config_id(&name) {
            Some(id) => cred.config = Some(id),
            None => missing.push(name),
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(missing) }
}

/// Attaches source positions to converter diagnostics by looking their key path up in the loaded
/// documents (the last document defining the path wins, as in a merge).
pub fn locate(mut diags: Vec<Diagnostic>, documents: &[berth_spec::Node]) -> Vec<Diagnostic> {
    for d in diags.iter_mut().filter(|d| d.pos.is_none()) {
        d.pos = documents.iter().rev().find_map(|doc| node_at(doc, &d.path)).map(|n| n.anchor());
    }
    diags
}

fn node_at<'a>(doc: &'a berth_spec::Node, path: &str) -> Option<&'a berth_spec::Node> {
    let mut node = doc;
    for part in split_path(path) {
        node = match part {
            PathPart::Key(k) => node.get(k)?,
            PathPart::Index(i) => node.as_seq()?.get(i)?,
        };
    }
    Some(node)
}

enum PathPart<'a> {
    Key(&'a str),
    Index(usize),
}

/// `services.web.secrets[0]` → `services`, `web`, `secrets`, `0` (keys containing dots cannot be
/// addressed; the converter never reports paths through such keys except network names).
fn split_path(path: &str) -> Vec<PathPart<'_>> {
    let mut out = Vec::new();
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (key, mut rest) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !key.is_empty() {
            out.push(PathPart::Key(key));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(i) = r[..end].parse() {
                out.push(PathPart::Index(i));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

/// A top-level secret/config as services see it: its Swarm name, and whether it is external.
#[derive(Debug, Clone)]
struct Resolved {
    name: String,
    external: bool,
}

/// What `file_objects` hands back for one non-external object.
struct ObjSpec {
    labels: HashMap<String, String>,
    /// Base64 content; `None` for a generated secret (the engine makes the value).
    data: Option<String>,
}

struct Cx<'a> {
    stack: &'a Stack,
    ns: &'a str,
    diags: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn scope(&self, name: &str) -> String {
        format!("{}_{}", self.ns, name)
    }

    fn err(&mut self, code: &'static str, path: String, message: String) {
        self.diags.push(Diagnostic::error(code, None, path, message));
    }

    fn err_hint(&mut self, code: &'static str, path: String, message: String, hint: impl Into<String>) {
        self.diags.push(Diagnostic::error(code, None, path, message).with_hint(hint));
    }

    /// Labels of an object the stack creates: the file's labels, the namespace, berth's owner label.
    fn object_labels(&self, labels: &BTreeMap<String, String>) -> HashMap<String, String> {
        let mut l: HashMap<String, String> = labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        l.insert(LABEL_NAMESPACE.into(), self.ns.into());
        l.insert(LABEL_OWNER.into(), self.ns.into());
        l
    }

    /// Labels docker/cli puts on things that are not objects of the stack (container labels).
    fn ns_labels(&self, labels: &BTreeMap<String, String>) -> HashMap<String, String> {
        let mut l: HashMap<String, String> = labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        l.insert(LABEL_NAMESPACE.into(), self.ns.into());
        l
    }

    fn file_objects(
        &mut self,
        kind: &str,
        objs: &BTreeMap<String, FileObjectConfig>,
        opts: &ConvertOptions,
        read: ReadFile,
        mut emit: impl FnMut(String, ObjSpec, &FileObjectConfig),
    ) -> HashMap<String, Resolved> {
        let mut names = HashMap::new();
        for (key, obj) in objs {
            if obj.external.external {
                let name = if obj.name.is_empty() { key.clone() } else { obj.name.clone() };
                names.insert(key.clone(), Resolved { name, external: true });
                continue;
            }
            let base = if obj.name.is_empty() { self.scope(key) } else { obj.name.clone() };
            let driver_secret = kind == "secrets" && !obj.driver.is_empty();
            let source =
                if kind == "secrets" { obj.extras.get("x-berth").and_then(SecretSource::from_json) } else { None };
            if let Some(SecretSource::Generate(length)) = source {
                // A fixed name: the value does not exist until the engine makes it, and it is kept
                // for as long as the secret is declared.
                let mut labels = self.object_labels(&obj.labels);
                labels.insert(LABEL_GENERATED.into(), length.to_string());
                emit(base.clone(), ObjSpec { labels, data: None }, obj);
                names.insert(key.clone(), Resolved { name: base, external: false });
                continue;
            }
            let data = if driver_secret {
                Vec::new()
            } else if let Some(SecretSource::Env(var)) = &source {
                match &obj.value {
                    Some(v) => v.expose().to_vec(),
                    None => {
                        self.err_hint(
                            "convert.secret-env",
                            format!("{kind}.{key}.x-berth.env"),
                            format!(
                                "the value of secret `{key}` (from the environment variable `{var}`) was not loaded"
                            ),
                            format!("set `{var}` in the environment, in `.env` or in an `--env-file`"),
                        );
                        names.insert(key.clone(), Resolved { name: base, external: false });
                        continue;
                    }
                }
            } else if obj.file.is_empty() {
                let what = &kind[..kind.len() - 1];
                self.err_hint(
                    "convert.no-file",
                    format!("{kind}.{key}"),
                    format!("{what} `{key}` has neither `file:` nor `external: true`"),
                    "give it `file: ./path` with the content, or mark it `external: true` if it already exists in the swarm",
                );
                names.insert(key.clone(), Resolved { name: base, external: false });
                continue;
            } else {
                match read(Path::new(&obj.file)) {
                    Ok(d) => d,
                    Err(e) => {
                        self.err_hint(
                            "convert.read-file",
                            format!("{kind}.{key}.file"),
                            format!("cannot read `{}`: {e}", obj.file),
                            "check the path; relative paths are resolved against the directory of the first stack file",
                        );
                        names.insert(key.clone(), Resolved { name: base, external: false });
                        continue;
                    }
                }
            };
            let name = if opts.content_addressed && !driver_secret { format!("{base}_{}", hash8(&data)) } else { base };
            emit(name.clone(), ObjSpec { labels: self.object_labels(&obj.labels), data: Some(base64(&data)) }, obj);
            names.insert(key.clone(), Resolved { name, external: false });
        }
        names
    }

    fn network(&mut self, name: &str, nw: &NetworkConfig) -> NetworkCreateRequest {
        let ipam = (!nw.ipam.driver.is_empty() || !nw.ipam.config.is_empty()).then(|| Ipam {
            driver: Some(nw.ipam.driver.clone()),
            config: (!nw.ipam.config.is_empty()).then(|| {
                nw.ipam
                    .config
                    .iter()
                    .map(|p| IpamConfig { subnet: Some(p.subnet.clone()), ..Default::default() })
                    .collect()
            }),
            options: None,
        });
        NetworkCreateRequest {
            name: name.to_string(),
            driver: Some(if nw.driver.is_empty() { "overlay".into() } else { nw.driver.clone() }),
            internal: nw.internal.then_some(true),
            attachable: nw.attachable.then_some(true),
            ipam,
            options: opt_map(&nw.driver_opts),
            labels: Some(self.object_labels(&nw.labels)),
            ..Default::default()
        }
    }

    fn service(
        &mut self,
        name: &str,
        svc: &Service,
        secret_names: &HashMap<String, Resolved>,
        config_names: &HashMap<String, Resolved>,
    ) -> Option<ServiceSpec> {
        let before = self.diags.len();
        let p = format!("services.{name}");
        if svc.image.is_empty() {
            let hint = if svc.build.context.is_empty() {
                "set `image:` to the image the service runs".to_string()
            } else {
                format!("Swarm does not build images: build `{}` and push it, then set `image:`", svc.build.context)
            };
            self.err_hint("convert.no-image", format!("{p}.image"), format!("service `{name}` has no image"), hint);
        }

        let secrets = self.secret_refs(&p, svc, secret_names);
        let configs = self.config_refs(&p, svc, config_names);
        let credential_spec = self.credential_spec(&p, svc, config_names);
        let mounts = self.mounts(&p, svc);
        let networks = self.service_networks(&p, name, svc);
        let mode = self.mode(&p, svc);
        let resources = self.resources(&p, svc);
        let restart_policy = self.restart_policy(&p, svc);
        let health_check = self.healthcheck(&p, svc.healthcheck.as_ref());
        let endpoint_spec = self.endpoint_spec(&p, svc);
        let isolation = match svc.isolation.as_str() {
            "" => None,
            s => match s.parse::<TaskSpecContainerSpecIsolationEnum>() {
                Ok(v) => Some(v),
                Err(_) => {
                    self.err_hint(
                        "convert.isolation",
                        format!("{p}.isolation"),
                        format!("unknown isolation `{s}`"),
                        "use `default`, `process` or `hyperv`",
                    );
                    None
                }
            },
        };
        let update_config =
            svc.deploy.update_config.as_ref().and_then(|u| self.update_config(&format!("{p}.deploy.update_config"), u));
        let rollback_config = svc
            .deploy
            .rollback_config
            .as_ref()
            .and_then(|u| self.update_config(&format!("{p}.deploy.rollback_config"), u))
            .map(|u| ServiceSpecRollbackConfig {
                parallelism: u.parallelism,
                delay: u.delay,
                failure_action: u.failure_action.map(|f| match f.as_ref() {
                    "continue" => bollard_stubs::models::ServiceSpecRollbackConfigFailureActionEnum::CONTINUE,
                    "pause" => bollard_stubs::models::ServiceSpecRollbackConfigFailureActionEnum::PAUSE,
                    _ => bollard_stubs::models::ServiceSpecRollbackConfigFailureActionEnum::EMPTY,
                }),
                monitor: u.monitor,
                max_failure_ratio: u.max_failure_ratio,
                order: u.order.map(|o| match o.as_ref() {
                    "start-first" => bollard_stubs::models::ServiceSpecRollbackConfigOrderEnum::START_FIRST,
                    "stop-first" => bollard_stubs::models::ServiceSpecRollbackConfigOrderEnum::STOP_FIRST,
                    _ => bollard_stubs::models::ServiceSpecRollbackConfigOrderEnum::EMPTY,
                }),
            });
        if let Some(rc) = &svc.deploy.rollback_config
            && rc.failure_action == "rollback"
        {
            self.err_hint(
                "convert.rollback-failure-action",
                format!("{p}.deploy.rollback_config.failure_action"),
                "a rollback cannot itself roll back on failure".into(),
                "use `pause` or `continue`",
            );
        }
        let (cap_add, cap_drop) = effective_caps(&svc.cap_add, &svc.cap_drop);

        if self.diags.len() > before {
            return None;
        }

        let mut labels = self.object_labels(&svc.deploy.labels);
        labels.insert(LABEL_IMAGE.into(), svc.image.clone());

        let env: Vec<String> = {
            let mut e: Vec<String> = svc
                .environment
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect();
            e.sort();
            e
        };
        let hosts: Vec<String> =
            svc.extra_hosts.iter().filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}"))).collect();
        let dns_config = (!svc.dns.is_empty() || !svc.dns_search.is_empty()).then(|| TaskSpecContainerSpecDnsConfig {
            nameservers: non_empty(svc.dns.clone()),
            search: non_empty(svc.dns_search.clone()),
            options: None,
        });
        let ulimits: Vec<ResourcesUlimits> = svc
            .ulimits
            .iter()
            .map(|(n, u)| {
                let (soft, hard) = if u.single != 0 { (u.single, u.single) } else { (u.soft, u.hard) };
                ResourcesUlimits { name: Some(n.clone()), soft: Some(soft), hard: Some(hard) }
            })
            .collect();

        let container_spec = TaskSpecContainerSpec {
            image: Some(normalize_image(&svc.image)),
            labels: Some(self.ns_labels(&svc.labels)),
            command: non_empty(svc.entrypoint.clone()),
            args: non_empty(svc.command.clone()),
            hostname: non_empty_str(&svc.hostname),
            env: non_empty(env),
            dir: non_empty_str(&svc.working_dir),
            user: non_empty_str(&svc.user),
            privileges: Some(TaskSpecContainerSpecPrivileges { credential_spec, ..Default::default() }),
            tty: svc.tty.then_some(true),
            open_stdin: svc.stdin_open.then_some(true),
            read_only: svc.read_only.then_some(true),
            mounts: non_empty(mounts),
            stop_signal: non_empty_str(&svc.stop_signal),
            stop_grace_period: svc.stop_grace_period.map(|d| d.nanos()),
            health_check,
            hosts: non_empty(hosts),
            dns_config,
            secrets: non_empty(secrets),
            configs: non_empty(configs),
            isolation,
            init: svc.init,
            sysctls: opt_map(&svc.sysctls),
            capability_add: non_empty(cap_add),
            capability_drop: non_empty(cap_drop),
            ulimits: non_empty(ulimits),
            ..Default::default()
        };

        let placement = &svc.deploy.placement;
        let task_template = TaskSpec {
            container_spec: Some(container_spec),
            resources: Some(resources),
            restart_policy,
            placement: Some(TaskSpecPlacement {
                constraints: non_empty(placement.constraints.clone()),
                preferences: non_empty(
                    placement
                        .preferences
                        .iter()
                        .map(|p| TaskSpecPlacementPreferences {
                            spread: Some(TaskSpecPlacementSpread { spread_descriptor: Some(p.spread.clone()) }),
                        })
                        .collect(),
                ),
                max_replicas: (placement.max_replicas_per_node != 0).then_some(placement.max_replicas_per_node as i64),
                platforms: None,
            }),
            networks: Some(networks),
            log_driver: svc
                .logging
                .as_ref()
                .map(|l| TaskSpecLogDriver { name: Some(l.driver.clone()), options: opt_map(&l.options) }),
            ..Default::default()
        };

        Some(ServiceSpec {
            name: Some(self.scope(name)),
            labels: Some(labels),
            task_template: Some(task_template),
            mode: Some(mode),
            update_config,
            rollback_config,
            networks: None,
            endpoint_spec: Some(endpoint_spec),
        })
    }

    fn file_ref(
        &mut self,
        path: String,
        kind: &str,
        r: &FileReferenceConfig,
        names: &HashMap<String, Resolved>,
    ) -> Option<(String, String, String, String, u32)> {
        let Some(res) = names.get(&r.source) else {
            let defined: Vec<&str> = match kind {
                "secret" => self.stack.secrets.keys().map(String::as_str).collect(),
                _ => self.stack.configs.keys().map(String::as_str).collect(),
            };
            let hint = match berth_spec::diag::did_you_mean(&r.source, defined.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("define it under the top-level `{kind}s:` key"),
            };
            self.err_hint("convert.undefined-ref", path, format!("undefined {kind} `{}`", r.source), hint);
            return None;
        };
        let target = if r.target.is_empty() { r.source.clone() } else { r.target.clone() };
        let uid = if r.uid.is_empty() { "0".to_string() } else { r.uid.clone() };
        let gid = if r.gid.is_empty() { "0".to_string() } else { r.gid.clone() };
        Some((res.name.clone(), target, uid, gid, r.mode.unwrap_or(0o444)))
    }

    fn secret_refs(
        &mut self,
        p: &str,
        svc: &Service,
        names: &HashMap<String, Resolved>,
    ) -> Vec<TaskSpecContainerSpecSecrets> {
        let mut refs = Vec::new();
        for (i, r) in svc.secrets.iter().enumerate() {
            if let Some((name, target, uid, gid, mode)) = self.file_ref(format!("{p}.secrets[{i}]"), "secret", r, names)
            {
                refs.push(TaskSpecContainerSpecSecrets {
                    file: Some(TaskSpecContainerSpecFile {
                        name: Some(target),
                        uid: Some(uid),
                        gid: Some(gid),
                        mode: Some(mode),
                    }),
                    secret_id: None,
                    secret_name: Some(name),
                });
            }
        }
        refs.sort_by(|a, b| a.secret_name.cmp(&b.secret_name));
        refs
    }

    fn config_refs(
        &mut self,
        p: &str,
        svc: &Service,
        names: &HashMap<String, Resolved>,
    ) -> Vec<TaskSpecContainerSpecConfigs> {
        let mut refs = Vec::new();
        for (i, r) in svc.configs.iter().enumerate() {
            if let Some((name, target, uid, gid, mode)) = self.file_ref(format!("{p}.configs[{i}]"), "config", r, names)
            {
                refs.push(TaskSpecContainerSpecConfigs {
                    file: Some(TaskSpecContainerSpecFile1 {
                        name: Some(target),
                        uid: Some(uid),
                        gid: Some(gid),
                        mode: Some(mode),
                    }),
                    runtime: None,
                    config_id: None,
                    config_name: Some(name),
                });
            }
        }
        // A credential spec kept in a config is passed as a runtime-only config reference.
        let cred = &svc.credential_spec.config;
        if !cred.is_empty()
            && let Some(res) = names.get(cred)
        {
            refs.push(TaskSpecContainerSpecConfigs {
                file: None,
                runtime: Some(HashMap::new()),
                config_id: None,
                config_name: Some(res.name.clone()),
            });
        }
        refs.sort_by(|a, b| a.config_name.cmp(&b.config_name));
        refs
    }

    fn credential_spec(
        &mut self,
        p: &str,
        svc: &Service,
        config_names: &HashMap<String, Resolved>,
    ) -> Option<TaskSpecContainerSpecPrivilegesCredentialSpec> {
        let c = &svc.credential_spec;
        let set: Vec<&str> = [("config", &c.config), ("file", &c.file), ("registry", &c.registry)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k)
            .collect();
        match set.len() {
            0 => None,
            1 => {
                let mut spec = TaskSpecContainerSpecPrivilegesCredentialSpec {
                    config: None,
                    file: non_empty_str(&c.file),
                    registry: non_empty_str(&c.registry),
                };
                if !c.config.is_empty() {
                    match config_names.get(&c.config) {
                        Some(res) => spec.config = Some(res.name.clone()),
                        None => {
                            self.err_hint(
                                "convert.undefined-ref",
                                format!("{p}.credential_spec.config"),
                                format!("undefined config `{}`", c.config),
                                "define it under the top-level `configs:` key",
                            );
                            return None;
                        }
                    }
                }
                Some(spec)
            }
            _ => {
                self.err_hint(
                    "convert.credential-spec",
                    format!("{p}.credential_spec"),
                    format!("only one of `config`, `file`, `registry` may be set, found {}", set.join(", ")),
                    "keep one of them",
                );
                None
            }
        }
    }

    fn mounts(&mut self, p: &str, svc: &Service) -> Vec<Mount> {
        let mut out = Vec::new();
        for (i, v) in svc.volumes.iter().enumerate() {
            let path = format!("{p}.volumes[{i}]");
            if let Some(m) = self.mount(&path, v) {
                out.push(m);
            }
        }
        out
    }

    fn mount(&mut self, path: &str, v: &ServiceVolumeConfig) -> Option<Mount> {
        let base = |typ: MountType| Mount {
            typ: Some(typ),
            target: non_empty_str(&v.target),
            source: non_empty_str(&v.source),
            read_only: v.read_only.then_some(true),
            consistency: non_empty_str(&v.consistency),
            ..Default::default()
        };
        let kind = if v.kind.is_empty() { "volume" } else { v.kind.as_str() };
        let incompatible =
            |has: bool, opt: &str| has.then(|| format!("`{opt}` options do not apply to a `{kind}` mount"));
        let conflicts: Vec<String> = [
            incompatible(v.bind.is_some() && !matches!(kind, "bind" | "npipe"), "bind"),
            incompatible(v.volume.is_some() && kind != "volume", "volume"),
            incompatible(v.tmpfs.is_some() && kind != "tmpfs", "tmpfs"),
            incompatible(v.cluster.is_some() && kind != "cluster", "cluster"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(msg) = conflicts.into_iter().next() {
            self.err_hint("convert.mount-options", path.to_string(), msg, "remove them or change `type:`");
            return None;
        }
        match kind {
            "volume" => {
                let mut m = base(MountType::VOLUME);
                if v.source.is_empty() {
                    return Some(m);
                }
                let Some(vol) = self.stack.volumes.get(&v.source) else {
                    let hint = match berth_spec::diag::did_you_mean(
                        &v.source,
                        self.stack.volumes.keys().map(String::as_str),
                    ) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "define `{}` under the top-level `volumes:` key, or use an absolute path for a bind mount",
                            v.source
                        ),
                    };
                    self.err_hint(
                        "convert.undefined-volume",
                        path.to_string(),
                        format!("undefined volume `{}`", v.source),
                        hint,
                    );
                    return None;
                };
                m.source = Some(self.volume_name(&v.source, vol));
                let mut vo = MountVolumeOptions {
                    no_copy: v.volume.as_ref().and_then(|o| o.nocopy.then_some(true)),
                    ..Default::default()
                };
                if !vol.external.external {
                    vo.labels = Some(self.object_labels(&vol.labels));
                    if !vol.driver.is_empty() || !vol.driver_opts.is_empty() {
                        vo.driver_config = Some(MountVolumeOptionsDriverConfig {
                            name: non_empty_str(&vol.driver),
                            options: opt_map(&vol.driver_opts),
                        });
                    }
                }
                m.volume_options = Some(vo);
                Some(m)
            }
            "bind" | "npipe" => {
                if v.source.is_empty() {
                    self.err_hint(
                        "convert.mount-source",
                        path.to_string(),
                        format!("a `{kind}` mount needs a source"),
                        "set `source:` to a path on the host",
                    );
                    return None;
                }
                let mut m = base(if kind == "bind" { MountType::BIND } else { MountType::NPIPE });
                if let Some(b) = &v.bind {
                    let propagation = match b.propagation.as_str() {
                        "" => None,
                        s => match s.parse::<MountBindOptionsPropagationEnum>() {
                            Ok(p) => Some(p),
                            Err(_) => {
                                self.err_hint(
                                    "convert.propagation",
                                    format!("{path}.bind.propagation"),
                                    format!("unknown bind propagation `{s}`"),
                                    "use one of private, rprivate, shared, rshared, slave, rslave",
                                );
                                return None;
                            }
                        },
                    };
                    m.bind_options = Some(MountBindOptions { propagation, ..Default::default() });
                }
                Some(m)
            }
            "tmpfs" => {
                if !v.source.is_empty() {
                    self.err_hint(
                        "convert.mount-source",
                        path.to_string(),
                        "a `tmpfs` mount has no source".into(),
                        "remove `source:`",
                    );
                    return None;
                }
                let mut m = base(MountType::TMPFS);
                if let Some(t) = &v.tmpfs {
                    m.tmpfs_options =
                        Some(MountTmpfsOptions { size_bytes: (t.size != 0).then_some(t.size), ..Default::default() });
                }
                Some(m)
            }
            "cluster" => {
                if v.source.is_empty() {
                    self.err_hint(
                        "convert.mount-source",
                        path.to_string(),
                        "a `cluster` mount needs a source".into(),
                        "set `source:` to a cluster volume or `group:<name>`",
                    );
                    return None;
                }
                let mut m = base(MountType::CLUSTER);
                if !v.source.starts_with("group:") {
                    match self.stack.volumes.get(&v.source) {
                        Some(vol) => {
                            m.source = Some(if vol.name.is_empty() { self.scope(&v.source) } else { vol.name.clone() })
                        }
                        None => {
                            self.err(
                                "convert.undefined-volume",
                                path.to_string(),
                                format!("undefined volume `{}`", v.source),
                            );
                            return None;
                        }
                    }
                }
                Some(m)
            }
            other => {
                self.err_hint(
                    "convert.mount-type",
                    format!("{path}.type"),
                    format!("unknown mount type `{other}`"),
                    "use volume, bind, tmpfs, npipe or cluster",
                );
                None
            }
        }
    }

    fn volume_name(&self, key: &str, vol: &VolumeConfig) -> String {
        if !vol.name.is_empty() {
            vol.name.clone()
        } else if vol.external.external {
            key.to_string()
        } else {
            self.scope(key)
        }
    }

    fn service_networks(&mut self, p: &str, svc_name: &str, svc: &Service) -> Vec<NetworkAttachmentConfig> {
        let default_only: BTreeMap<String, Option<berth_spec::model::ServiceNetworkConfig>> =
            [("default".to_string(), None)].into();
        let nets = if svc.networks.is_empty() { &default_only } else { &svc.networks };
        let mut out = Vec::new();
        for (key, cfg) in nets {
            let nw = self.stack.networks.get(key);
            if nw.is_none() && key != "default" {
                let hint = match berth_spec::diag::did_you_mean(key, self.stack.networks.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("define `{key}` under the top-level `networks:` key"),
                };
                self.err_hint(
                    "convert.undefined-network",
                    format!("{p}.networks.{key}"),
                    format!("undefined network `{key}`"),
                    hint,
                );
                continue;
            }
            let target = match nw {
                Some(n) if !n.name.is_empty() => n.name.clone(),
                Some(n) if n.external.external => key.clone(),
                _ => self.scope(key),
            };
            let mut aliases = cfg.as_ref().map(|c| c.aliases.clone()).unwrap_or_default();
            if is_user_defined_network(&target) {
                aliases.push(svc_name.to_string());
            }
            out.push(NetworkAttachmentConfig {
                target: Some(target),
                aliases: non_empty(aliases),
                driver_opts: cfg.as_ref().and_then(|c| opt_map(&c.driver_opts)),
            });
        }
        out.sort_by(|a, b| a.target.cmp(&b.target));
        out
    }

    fn mode(&mut self, p: &str, svc: &Service) -> ServiceSpecMode {
        let replicas = svc.deploy.replicas.map(|r| r as i64);
        let mode = svc.deploy.mode.as_str();
        let mut m = ServiceSpecMode::default();
        let global_with_replicas = |cx: &mut Self| {
            cx.err_hint(
                "convert.replicas",
                format!("{p}.deploy.replicas"),
                format!("`replicas` cannot be used with `mode: {mode}`"),
                "replicas only apply to `replicated` and `replicated-job` services; remove one of them",
            )
        };
        match mode {
            "global" => {
                if replicas.is_some() {
                    global_with_replicas(self);
                }
                m.global = Some(HashMap::new());
            }
            "global-job" => {
                if replicas.is_some() {
                    global_with_replicas(self);
                }
                m.global_job = Some(HashMap::new());
            }
            "replicated-job" => {
                m.replicated_job =
                    Some(ServiceSpecModeReplicatedJob { max_concurrent: replicas, total_completions: replicas })
            }
            "replicated" | "" => m.replicated = Some(ServiceSpecModeReplicated { replicas }),
            other => self.err_hint(
                "convert.mode",
                format!("{p}.deploy.mode"),
                format!("unknown mode `{other}`"),
                "use replicated, global, replicated-job or global-job",
            ),
        }
        m
    }

    fn resources(&mut self, p: &str, svc: &Service) -> TaskSpecResources {
        let r = &svc.deploy.resources;
        let mut out = TaskSpecResources::default();
        if let Some(l) = &r.limits {
            let cpus = self.cpus(&format!("{p}.deploy.resources.limits.cpus"), &l.cpus);
            out.limits = Some(Limit {
                nano_cpus: (cpus != 0).then_some(cpus),
                memory_bytes: (l.memory.0 != 0).then_some(l.memory.0),
                pids: (l.pids != 0).then_some(l.pids),
            });
        }
        if let Some(res) = &r.reservations {
            let cpus = self.cpus(&format!("{p}.deploy.resources.reservations.cpus"), &res.cpus);
            let generic: Vec<GenericResourcesInner> = res
                .generic_resources
                .iter()
                .map(|g| GenericResourcesInner {
                    named_resource_spec: None,
                    discrete_resource_spec: g.discrete_resource_spec.as_ref().map(|d| {
                        GenericResourcesInnerDiscreteResourceSpec { kind: Some(d.kind.clone()), value: Some(d.value) }
                    }),
                })
                .collect();
            out.reservations = Some(ResourceObject {
                nano_cpus: (cpus != 0).then_some(cpus),
                memory_bytes: (res.memory.0 != 0).then_some(res.memory.0),
                generic_resources: non_empty(generic),
            });
        }
        out
    }

    fn cpus(&mut self, path: &str, s: &str) -> i64 {
        if s.is_empty() {
            return 0;
        }
        match parse_cpus(s) {
            Ok(n) => n,
            Err(e) => {
                self.err_hint("convert.cpus", path.to_string(), e, "write a number of CPUs such as \"0.5\" or \"2\"");
                0
            }
        }
    }

    fn restart_policy(&mut self, p: &str, svc: &Service) -> Option<TaskSpecRestartPolicy> {
        if let Some(rp) = &svc.deploy.restart_policy {
            let condition = match rp.condition.as_str() {
                "" => None,
                s => match s.parse::<TaskSpecRestartPolicyConditionEnum>() {
                    Ok(c) => Some(c),
                    Err(_) => {
                        self.err_hint(
                            "convert.restart-condition",
                            format!("{p}.deploy.restart_policy.condition"),
                            format!("unknown restart condition `{s}`"),
                            "use none, on-failure or any",
                        );
                        None
                    }
                },
            };
            return Some(TaskSpecRestartPolicy {
                condition,
                delay: rp.delay.map(|d| d.nanos()),
                max_attempts: rp.max_attempts.map(|m| m as i64),
                window: rp.window.map(|d| d.nanos()),
            });
        }
        // docker/cli's fallback: the container-style `restart:` policy.
        let restart = svc.restart.as_str();
        if restart.is_empty() {
            return None;
        }
        let (name, count) = match restart.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (restart, None),
        };
        let max_attempts = match count {
            None => None,
            Some(c) => match c.parse::<i64>() {
                Ok(n) if n >= 0 && name == "on-failure" => (n > 0).then_some(n),
                Ok(n) if n < 0 => {
                    self.err(
                        "convert.restart",
                        format!("{p}.restart"),
                        "maximum retry count cannot be negative".into(),
                    );
                    return None;
                }
                Ok(_) => {
                    self.err_hint(
                        "convert.restart",
                        format!("{p}.restart"),
                        format!("`{name}` takes no retry count"),
                        "only `on-failure:N` takes a count",
                    );
                    return None;
                }
                Err(_) => {
                    self.err("convert.restart", format!("{p}.restart"), format!("invalid retry count `{c}`"));
                    return None;
                }
            },
        };
        let condition = match name {
            "no" | "" => return None,
            "always" | "unless-stopped" => TaskSpecRestartPolicyConditionEnum::ANY,
            "on-failure" => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
            other => {
                self.err_hint(
                    "convert.restart",
                    format!("{p}.restart"),
                    format!("unknown restart policy `{other}`"),
                    "use no, always, on-failure[:N] or unless-stopped (or `deploy.restart_policy`)",
                );
                return None;
            }
        };
        Some(TaskSpecRestartPolicy { condition: Some(condition), max_attempts, ..Default::default() })
    }

    fn healthcheck(&mut self, p: &str, h: Option<&HealthCheckConfig>) -> Option<HealthConfig> {
        let h = h?;
        if h.disable {
            if !h.test.is_empty() {
                self.err_hint(
                    "convert.healthcheck",
                    format!("{p}.healthcheck"),
                    "`test` and `disable` cannot both be set".into(),
                    "remove `test:` or `disable: true`",
                );
                return None;
            }
            return Some(HealthConfig { test: Some(vec!["NONE".into()]), ..Default::default() });
        }
        let ns = |d: Option<berth_spec::model::Duration>| d.map(|d| d.nanos()).filter(|n| *n != 0);
        Some(HealthConfig {
            test: non_empty(h.test.clone()),
            interval: ns(h.interval),
            timeout: ns(h.timeout),
            retries: h.retries.map(|r| r as i64).filter(|r| *r != 0),
            start_period: ns(h.start_period),
            start_interval: ns(h.start_interval),
        })
    }

    fn endpoint_spec(&mut self, p: &str, svc: &Service) -> EndpointSpec {
        let mut ports: Vec<EndpointPortConfig> = Vec::new();
        for (i, port) in svc.ports.iter().enumerate() {
            let protocol = match port.protocol.as_str() {
                "" => None,
                s => match s.parse::<EndpointPortConfigProtocolEnum>() {
                    Ok(v) => Some(v),
                    Err(_) => {
                        self.err_hint(
                            "convert.port-protocol",
                            format!("{p}.ports[{i}].protocol"),
                            format!("unknown protocol `{s}`"),
                            "use tcp, udp or sctp",
                        );
                        None
                    }
                },
            };
            let publish_mode = match port.mode.as_str() {
                "" => None,
                s => match s.parse::<EndpointPortConfigPublishModeEnum>() {
                    Ok(v) => Some(v),
                    Err(_) => {
                        self.err_hint(
                            "convert.port-mode",
                            format!("{p}.ports[{i}].mode"),
                            format!("unknown publish mode `{s}`"),
                            "use ingress or host",
                        );
                        None
                    }
                },
            };
            ports.push(EndpointPortConfig {
                name: None,
                protocol,
                target_port: Some(port.target as i64),
                published_port: (port.published != 0).then_some(port.published as i64),
                publish_mode,
            });
        }
        gosort::sort_slice(&mut ports, |a, b| a.published_port.unwrap_or(0) < b.published_port.unwrap_or(0));
        let mode = match svc.deploy.endpoint_mode.to_lowercase().as_str() {
            "" => None,
            "vip" => Some(EndpointSpecModeEnum::VIP),
            "dnsrr" => Some(EndpointSpecModeEnum::DNSRR),
            other => {
                self.err_hint(
                    "convert.endpoint-mode",
                    format!("{p}.deploy.endpoint_mode"),
                    format!("unknown endpoint mode `{other}`"),
                    "use vip or dnsrr",
                );
                None
            }
        };
        EndpointSpec { mode, ports: non_empty(ports) }
    }

    fn update_config(&mut self, path: &str, u: &UpdateConfig) -> Option<ServiceSpecUpdateConfig> {
        use bollard_stubs::models::{
            ServiceSpecUpdateConfigFailureActionEnum as FA, ServiceSpecUpdateConfigOrderEnum as O,
        };
        let failure_action = match u.failure_action.as_str() {
            "" => None,
            s => match s.parse::<FA>() {
                Ok(v) => Some(v),
                Err(_) => {
                    self.err_hint(
                        "convert.failure-action",
                        format!("{path}.failure_action"),
                        format!("unknown failure action `{s}`"),
                        "use pause, continue or rollback",
                    );
                    return None;
                }
            },
        };
        let order = match u.order.as_str() {
            "" => None,
            s => match s.parse::<O>() {
                Ok(v) => Some(v),
                Err(_) => {
                    self.err_hint(
                        "convert.update-order",
                        format!("{path}.order"),
                        format!("unknown update order `{s}`"),
                        "use stop-first or start-first",
                    );
                    return None;
                }
            },
        };
        Some(ServiceSpecUpdateConfig {
            parallelism: Some(u.parallelism.unwrap_or(1) as i64),
            delay: (u.delay.nanos() != 0).then_some(u.delay.nanos()),
            failure_action,
            monitor: (u.monitor.nanos() != 0).then_some(u.monitor.nanos()),
            max_failure_ratio: Some(u.max_failure_ratio),
            order,
        })
    }
}

/// Networks that take aliases: not `default`/`bridge`/`host`/`none`/`container:*` (docker's
/// `NetworkMode.IsUserDefined`).
fn is_user_defined_network(target: &str) -> bool {
    !matches!(target, "default" | "bridge" | "host" | "none") && !target.starts_with("container:")
}

/// docker/cli's `opts.ParseCPUs`: a rational number of CPUs (`"0.5"`, `"2"`, `"1/4"`, `"1e-3"`)
/// as nano-CPUs; more precise than 1e-9 is an error.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse `{s}` as a number of CPUs");
    let (num, den) = match s.split_once('/') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    let (mut n, mut d) = parse_decimal(num).ok_or_else(bad)?;
    if let Some(den) = den {
        let den: i128 = den.parse().map_err(|_| bad())?;
        if den <= 0 {
            return Err(bad());
        }
        d = d.checked_mul(den).ok_or_else(bad)?;
    }
    n = n.checked_mul(1_000_000_000).ok_or_else(bad)?;
    if n % d != 0 {
        return Err(format!("`{s}` CPUs is too precise (at most 9 decimal places)"));
    }
    i64::try_from(n / d).map_err(|_| bad())
}

/// A decimal like `-1.25e2` as numerator/denominator.
fn parse_decimal(s: &str) -> Option<(i128, i128)> {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant.strip_prefix('+').unwrap_or(mant)),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if (int.is_empty() && frac.is_empty()) || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    if int.len() + frac.len() > 30 || exp.abs() > 30 {
        return None;
    }
    let mut n: i128 = format!("{int}{frac}").parse().ok()?;
    let mut d: i128 = 10i128.pow(frac.len() as u32);
    if exp >= 0 {
        n = n.checked_mul(10i128.pow(exp as u32))?;
    } else {
        d = d.checked_mul(10i128.pow((-exp) as u32))?;
    }
    Some((if neg { -n } else { n }, d))
}

/// docker/cli's `opts.EffectiveCapAddCapDrop`: capabilities upper-cased with a `CAP_` prefix
/// (except `ALL`), `ALL` trumping the rest, an added capability not dropped, both lists sorted
/// and de-duplicated.
pub fn effective_caps(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    fn normalize(c: &str) -> String {
        let c = c.trim().to_uppercase();
        if c == "ALL" || c == "RESET" || c.starts_with("CAP_") { c } else { format!("CAP_{c}") }
    }
    let mut add: BTreeSet<String> = add.iter().map(|c| normalize(c)).collect();
    let mut drop: BTreeSet<String> = drop.iter().map(|c| normalize(c)).collect();
    if add.contains("ALL") {
        add = ["ALL".to_string()].into();
    }
    if drop.contains("ALL") {
        drop = ["ALL".to_string()].into();
    }
    let cap_drop = drop.iter().filter(|c| !add.contains(*c) && *c != "RESET").cloned().collect();
    let cap_add = add.into_iter().filter(|c| c != "RESET").collect();
    (cap_add, cap_drop)
}

fn templating(obj: &FileObjectConfig) -> Option<Driver> {
    (!obj.template_driver.is_empty()).then(|| Driver { name: obj.template_driver.clone(), options: None })
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn non_empty_str(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn opt_map(m: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// First 8 hex digits of the SHA-256 of `data`.
pub(crate) fn hash8(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    d.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding (what the Engine API expects in `Data`); the one encoder of the
/// workspace (the engine uses it too), [`crate::plan::decode_base64`] its decoder.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 { A[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if chunk.len() > 2 { A[n as usize & 63] as char } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests;
