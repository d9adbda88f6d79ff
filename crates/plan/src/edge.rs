//! berth's edge as part of the desired state: when the stack has `x-berth` routes or `static`
//! mounts, [`add_edge`] adds the edge's config (a content-addressed Swarm config holding the JSON
//! of `docs/edge.md`) and its global service(s) to a [`Desired`], so that plan, diff, apply and
//! prune treat the edge like any other object of the stack.
//!
//! Two shapes (see `docs/deploy.md`, "The edge"):
//! - **hand-over** ([`EdgeOptions::handover`]): `<stack>_edge-listen` on the host network binds the
//!   public ports and hands the listening sockets over a unix socket (in the node-local volume
//!   `<stack>_edge-run`) to `<stack>_edge`, the proxy, which publishes no port and can therefore be
//!   updated start-first without a refused connection;
//! - **direct**: `<stack>_edge` publishes the ports itself in host mode (stop-first updates: Swarm
//!   cannot start a second task on a host-mode port).
//!
//! Routed services get `update_config.order: start-first` (unless the file sets an order, or the
//! service publishes a host-mode port) and a stop grace period for draining, so a rolling update
//! always has a healthy task the edge can send to.

use crate::convert::{base64, hash8};
use crate::desired::{Desired, LABEL_NAMESPACE, LABEL_OWNER};
use berth_spec::Diagnostic;
use berth_spec::model::Stack;
use berth_spec::xberth::{ServiceBerth, XBerth};
use bollard_stubs::models::{
    ConfigSpec, EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum, EndpointSpec,
    EndpointSpecModeEnum, HealthConfig, Mount, MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig,
    NetworkAttachmentConfig, SecretSpec, ServiceSpec, ServiceSpecMode, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets,
    TaskSpecPlacement, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Label on the edge's services: `proxy` or `listen`.
pub const LABEL_EDGE: &str = "io.berth.edge";
/// Where the proxy finds its config (a Swarm config file).
pub const CONFIG_PATH: &str = "/etc/berth/edge.json";
/// Where static volumes are mounted in the proxy: `/srv/static/<volume>`.
pub const STATIC_ROOT: &str = "/srv/static";
/// The edge's own state (local CA, ACME account and certificates), a volume `<stack>_edge-data`.
pub const DATA_DIR: &str = "/var/lib/berth-edge";
/// Directory of the hand-over socket, a volume `<stack>_edge-run` shared by listener and proxy.
pub const RUN_DIR: &str = "/run/berth";
/// The hand-over socket.
pub const SOCKET_PATH: &str = "/run/berth/edge.sock";
/// Stop grace period given to routed services that set none, and to the proxy: time to drain.
pub const DRAIN_GRACE_NS: i64 = 30_000_000_000;
/// Port of the edges' peer endpoint (ACME certificate sharing between edge nodes).
pub const PEER_PORT: u16 = 9181;
/// The peers' shared secret in the proxy: the generated Swarm secret `<stack>_edge-peer`.
pub const PEER_SECRET_PATH: &str = "/run/secrets/edge-peer";
/// Host names served when the stack names no domain.
pub const DEFAULT_DOMAINS: &[&str] = &["localhost"];

/// Let's Encrypt's directories, for `acme.directory: letsencrypt` / `letsencrypt-staging`.
const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// How the edge is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeOptions {
    /// The edge image (`berth/edge:<sha256 of the berth binary, 12>`), built by the engine.
    pub image: String,
    /// Listener + proxy with socket hand-over (zero-downtime edge updates) instead of one proxy
    /// publishing its ports.
    pub handover: bool,
}

/// Full name of the proxy service.
pub fn proxy_service(stack: &str) -> String {
    format!("{stack}_edge")
}

/// Full name of the listener service (hand-over mode).
pub fn listen_service(stack: &str) -> String {
    format!("{stack}_edge-listen")
}

/// The stack's top-level `x-berth`, with defaults.
pub fn xberth(stack: &Stack) -> XBerth {
    stack.extras.get("x-berth").map(XBerth::from_json).unwrap_or_default()
}

/// Per-service `x-berth` of every service that has one.
fn service_berths(stack: &Stack) -> BTreeMap<&str, ServiceBerth> {
    stack
        .services
        .iter()
        .filter_map(|(n, s)| Some((n.as_str(), ServiceBerth::from_json(s.extras.get("x-berth")?))))
        .collect()
}

/// True when the stack needs an edge: some service has routes, or there are static mounts.
pub fn has_edge(stack: &Stack) -> bool {
    !xberth(stack).statics.is_empty() || service_berths(stack).values().any(|b| !b.routes.is_empty())
}

/// TLS of the edge, from the domains and `acme`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tls {
    Off,
    LocalCa,
    Acme { directory: String, email: String },
}

fn tls_of(xb: &XBerth) -> Tls {
    let local_name = |d: &String| d == "localhost" || d.ends_with(".localhost");
    match &xb.acme {
        Some(a) if a.directory == "local" => Tls::LocalCa,
        _ if !xb.domains.is_empty() && xb.domains.iter().all(local_name) => Tls::LocalCa,
        Some(a) => {
            let directory = match a.directory.as_str() {
                "letsencrypt" | "" => LETSENCRYPT.to_string(),
                "letsencrypt-staging" => LETSENCRYPT_STAGING.to_string(),
                url => url.to_string(),
            };
            Tls::Acme { directory, email: a.email.clone() }
        }
        None => Tls::Off,
    }
}

fn port_or_none(p: u16) -> Option<u16> {
    (p != 0).then_some(p)
}

/// The URLs the edge answers on (one per domain; `http://localhost:<port>` without domains).
pub fn urls(stack: &Stack) -> Vec<String> {
    if !has_edge(stack) {
        return Vec::new();
    }
    let xb = xberth(stack);
    let tls = tls_of(&xb) != Tls::Off;
    let (scheme, port, default) =
        if tls { ("https", xb.edge.https_port, 443) } else { ("http", xb.edge.http_port, 80) };
    let suffix = if port == default { String::new() } else { format!(":{port}") };
    let domains: Vec<String> = if xb.domains.is_empty() {
        DEFAULT_DOMAINS.iter().map(|d| d.to_string()).collect()
    } else {
        xb.domains.clone()
    };
    domains.iter().map(|d| format!("{scheme}://{}{suffix}/", d.trim_start_matches("*."))).collect()
}

/// The edge's config (the JSON of `docs/edge.md`) for a stack, or `None` when it needs no edge.
/// Backends are `<stack>_<service>`, statics are served from `/srv/static/<volume>[/<subdir>]`.
pub fn edge_config(stack: &Stack, stack_name: &str) -> Option<Value> {
    if !has_edge(stack) {
        return None;
    }
    let xb = xberth(stack);
    let berths = service_berths(stack);
    let tls = tls_of(&xb);
    let domains: Vec<String> = if xb.domains.is_empty() {
        DEFAULT_DOMAINS.iter().map(|d| d.to_string()).collect()
    } else {
        xb.domains.clone()
    };
    let tls_json = match &tls {
        Tls::Off => json!({"mode": "off"}),
        Tls::LocalCa => json!({"mode": "local-ca", "ca_dir": format!("{DATA_DIR}/ca")}),
        Tls::Acme { directory, email } => json!({
            "mode": "acme",
            "directory": directory,
            "email": email,
            "store": format!("{DATA_DIR}/acme"),
            // Edges on several nodes share certificates and HTTP-01 tokens (one orders).
            "peers": {
                "listen": format!("0.0.0.0:{PEER_PORT}"),
                "service": proxy_service(stack_name),
                "token_file": PEER_SECRET_PATH,
            },
        }),
    };
    let routes: Vec<Value> = XBerth::routes(berths.iter().map(|(n, b)| (*n, b)))
        .into_iter()
        .map(|(svc, r)| {
            let b = &berths[svc];
            json!({
                "host": r.host,
                "path": r.path,
                "strip_prefix": r.strip_prefix,
                "backend": {
                    "service": format!("{stack_name}_{svc}"),
                    "port": b.port.unwrap_or(80),
                    "health": b.health.as_ref().map(|h| h.path.clone()),
                },
                "max_body": r.max_body.unwrap_or(xb.edge.max_body),
                "timeout_ms": r.timeout_ms.unwrap_or(xb.edge.timeout_ms),
            })
        })
        .collect();
    let statics: Vec<Value> = xb
        .statics
        .iter()
        .map(|s| {
            let mut root = format!("{STATIC_ROOT}/{}", s.volume);
            if let Some(sub) = s.subdir.as_deref().map(|d| d.trim_matches('/')).filter(|d| !d.is_empty()) {
                root = format!("{root}/{sub}");
            }
            json!({"host": s.host, "path": s.path, "root": root, "spa": s.spa})
        })
        .collect();
    let https_port = if tls == Tls::Off { None } else { port_or_none(xb.edge.https_port) };
    Some(json!({
        "domains": domains,
        "tls": tls_json,
        "listen": "0.0.0.0",
        "http_port": port_or_none(xb.edge.http_port),
        "https_port": https_port,
        "hsts": xb.edge.hsts,
        "routes": routes,
        "statics": statics,
    }))
}

/// Adds the edge (config and service(s)) to `desired` when the stack has routes or statics, and
/// gives routed services rolling-update settings the edge can keep serving through. Returns
/// whether an edge was added. Errors: a service of the file already has the edge's name.
pub fn add_edge(desired: &mut Desired, stack: &Stack, opts: &EdgeOptions) -> Result<bool, Vec<Diagnostic>> {
    let Some(config) = edge_config(stack, &desired.stack) else { return Ok(false) };
    let ns = desired.stack.clone();
    let mut diags = Vec::new();
    for taken in ["edge", "edge-listen"] {
        if stack.services.contains_key(taken) {
            diags.push(
                Diagnostic::error(
                    "edge.name-taken",
                    None,
                    format!("services.{taken}"),
                    format!("service `{taken}` has the name of berth's edge service `{ns}_{taken}`"),
                )
                .with_hint("rename the service: berth runs the edge itself when the stack has routes"),
            );
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let xb = xberth(stack);
    let berths = service_berths(stack);
    let tls = tls_of(&xb);
    let tls_on = tls != Tls::Off;
    let owner_labels = || -> HashMap<String, String> {
        [(LABEL_NAMESPACE.to_string(), ns.clone()), (LABEL_OWNER.to_string(), ns.clone())].into()
    };

    // Routed services: start-first updates and time to drain.
    for (svc, b) in &berths {
        if b.routes.is_empty() {
            continue;
        }
        let user_order = stack.services[*svc].deploy.update_config.as_ref().is_some_and(|u| !u.order.is_empty());
        let user_grace = stack.services[*svc].stop_grace_period.is_some();
        let Some(spec) = desired.services.get_mut(&format!("{ns}_{svc}")) else { continue };
        let host_ports =
            spec.endpoint_spec.as_ref().and_then(|e| e.ports.as_ref()).is_some_and(|ports| {
                ports.iter().any(|p| p.publish_mode == Some(EndpointPortConfigPublishModeEnum::HOST))
            });
        if !user_order && !host_ports {
            spec.update_config.get_or_insert_with(Default::default).order =
                Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST);
        }
        if !user_grace && let Some(cs) = spec.task_template.as_mut().and_then(|t| t.container_spec.as_mut()) {
            cs.stop_grace_period = Some(DRAIN_GRACE_NS);
        }
    }

    // The config, content-addressed like the stack's own configs.
    let data = serde_json::to_vec_pretty(&config).expect("JSON");
    let config_name = format!("{ns}_edge_{}", hash8(&data));
    let mut config_labels = owner_labels();
    config_labels.insert(LABEL_EDGE.into(), "config".into());
    desired.configs.insert(
        config_name.clone(),
        ConfigSpec {
            name: Some(config_name.clone()),
            labels: Some(config_labels),
            data: Some(base64(&data)),
            templating: None,
        },
    );

    // ACME: the peers' shared secret, generated once by the engine and kept in the swarm.
    let mut secrets = Vec::new();
    if matches!(tls, Tls::Acme { .. }) {
        let name = format!("{ns}_edge-peer");
        let mut labels = owner_labels();
        labels.insert(crate::convert::LABEL_GENERATED.into(), "48".into());
        desired
            .secrets
            .insert(name.clone(), SecretSpec { name: Some(name.clone()), labels: Some(labels), ..Default::default() });
        secrets.push(TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(PEER_SECRET_PATH.into()),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(0o400),
            }),
            secret_id: None,
            secret_name: Some(name),
        });
    }

    // Networks of the routed services, so `tasks.<stack>_<service>` resolves.
    let mut networks: BTreeSet<String> = BTreeSet::new();
    for (svc, b) in &berths {
        if b.routes.is_empty() {
            continue;
        }
        if let Some(spec) = desired.services.get(&format!("{ns}_{svc}")) {
            let nets = spec.task_template.as_ref().and_then(|t| t.networks.as_ref());
            networks.extend(nets.into_iter().flatten().filter_map(|n| n.target.clone()));
        }
    }
    if networks.is_empty() {
        // Statics only: the edge still needs a network of its own stack (not the host's).
        let default = format!("{ns}_default");
        if !desired.networks.contains_key(&default) {
            let mut req = bollard_stubs::models::NetworkCreateRequest {
                name: default.clone(),
                driver: Some("overlay".into()),
                ..Default::default()
            };
            req.labels = Some(owner_labels());
            desired.networks.insert(default.clone(), req);
        }
        networks.insert(default);
    }

    // Mounts: static volumes read-only, the edge's own state, the hand-over socket directory.
    let mut mounts: Vec<Mount> = Vec::new();
    let mut seen = BTreeSet::new();
    for s in &xb.statics {
        if !seen.insert(s.volume.clone()) {
            continue;
        }
        let Some(vol) = stack.volumes.get(&s.volume) else { continue };
        let source = if !vol.name.is_empty() {
            vol.name.clone()
        } else if vol.external.external {
            s.volume.clone()
        } else {
            format!("{ns}_{}", s.volume)
        };
        let mut vo = MountVolumeOptions::default();
        if !vol.external.external {
            let mut labels: HashMap<String, String> = vol.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            labels.extend(owner_labels());
            vo.labels = Some(labels);
            if !vol.driver.is_empty() || !vol.driver_opts.is_empty() {
                vo.driver_config = Some(MountVolumeOptionsDriverConfig {
                    name: (!vol.driver.is_empty()).then(|| vol.driver.clone()),
                    options: (!vol.driver_opts.is_empty())
                        .then(|| vol.driver_opts.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
                });
            }
        }
        mounts.push(Mount {
            target: Some(format!("{STATIC_ROOT}/{}", s.volume)),
            source: Some(source),
            typ: Some(MountType::VOLUME),
            read_only: Some(true),
            volume_options: Some(vo),
            ..Default::default()
        });
    }
    let volume_mount = |name: &str, target: &str| Mount {
        target: Some(target.to_string()),
        source: Some(format!("{ns}_{name}")),
        typ: Some(MountType::VOLUME),
        volume_options: Some(MountVolumeOptions { labels: Some(owner_labels()), ..Default::default() }),
        ..Default::default()
    };
    if tls_on {
        mounts.push(volume_mount("edge-data", DATA_DIR));
    }
    if opts.handover {
        mounts.push(volume_mount("edge-run", RUN_DIR));
    }

    let placement = Some(TaskSpecPlacement {
        constraints: (!xb.edge.placement.is_empty()).then(|| xb.edge.placement.clone()),
        ..Default::default()
    });
    let mut service_labels = owner_labels();
    service_labels.insert(LABEL_EDGE.into(), "proxy".into());
    let container_labels: HashMap<String, String> = [(LABEL_NAMESPACE.to_string(), ns.clone())].into();
    let host_ports: Vec<u16> =
        [port_or_none(xb.edge.http_port), if tls_on { port_or_none(xb.edge.https_port) } else { None }]
            .into_iter()
            .flatten()
            .collect();

    let mut command: Vec<String> = vec!["/berth".into(), "edge".into(), "serve".into(), CONFIG_PATH.into()];
    if opts.handover {
        command.extend(["--listen-from".into(), SOCKET_PATH.into()]);
    }
    let published: Vec<EndpointPortConfig> = if opts.handover {
        Vec::new()
    } else {
        host_ports
            .iter()
            .map(|p| EndpointPortConfig {
                name: None,
                protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                target_port: Some(*p as i64),
                published_port: Some(*p as i64),
                publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            })
            .collect()
    };
    let proxy = ServiceSpec {
        name: Some(proxy_service(&ns)),
        labels: Some(service_labels),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(opts.image.clone()),
                labels: Some(container_labels.clone()),
                command: Some(command),
                configs: Some(vec![TaskSpecContainerSpecConfigs {
                    file: Some(TaskSpecContainerSpecFile1 {
                        name: Some(CONFIG_PATH.into()),
                        uid: Some("0".into()),
                        gid: Some("0".into()),
                        mode: Some(0o444),
                    }),
                    config_name: Some(config_name),
                    ..Default::default()
                }]),
                mounts: (!mounts.is_empty()).then_some(mounts),
                secrets: (!secrets.is_empty()).then_some(secrets),
                stop_grace_period: Some(DRAIN_GRACE_NS),
                health_check: opts.handover.then(|| HealthConfig {
                    test: Some(vec!["CMD".into(), "/berth".into(), "edge".into(), "check".into(), CONFIG_PATH.into()]),
                    interval: Some(1_000_000_000),
                    timeout: Some(2_000_000_000),
                    retries: Some(3),
                    start_period: None,
                    start_interval: None,
                }),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(1_000_000_000),
                ..Default::default()
            }),
            placement: placement.clone(),
            networks: Some(
                networks
                    .iter()
                    .map(|n| NetworkAttachmentConfig {
                        target: Some(n.clone()),
                        aliases: Some(vec!["edge".into()]),
                        driver_opts: None,
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode { global: Some(HashMap::new()), ..Default::default() }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            // Swarm cannot start a second task on a host-mode port: without hand-over, stop first.
            order: Some(if opts.handover {
                ServiceSpecUpdateConfigOrderEnum::START_FIRST
            } else {
                ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
            }),
            ..Default::default()
        }),
        rollback_config: None,
        networks: None,
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: (!published.is_empty()).then_some(published),
        }),
    };
    desired.services.insert(proxy_service(&ns), proxy);

    if opts.handover {
        let mut labels = owner_labels();
        labels.insert(LABEL_EDGE.into(), "listen".into());
        let mut command: Vec<String> = vec!["/berth".into(), "edge".into(), "listen".into()];
        command.extend(["--socket".into(), SOCKET_PATH.into()]);
        for p in &host_ports {
            command.extend(["--port".into(), p.to_string()]);
        }
        let listen = ServiceSpec {
            name: Some(listen_service(&ns)),
            labels: Some(labels),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(opts.image.clone()),
                    labels: Some(container_labels),
                    command: Some(command),
                    mounts: Some(vec![volume_mount("edge-run", RUN_DIR)]),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                    delay: Some(1_000_000_000),
                    ..Default::default()
                }),
                placement,
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some("host".into()),
                    aliases: None,
                    driver_opts: None,
                }]),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode { global: Some(HashMap::new()), ..Default::default() }),
            // A new listener takes the sockets over from the old one: start-first too.
            update_config: Some(ServiceSpecUpdateConfig {
                parallelism: Some(1),
                order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
                ..Default::default()
            }),
            rollback_config: None,
            networks: None,
            endpoint_spec: Some(EndpointSpec { mode: Some(EndpointSpecModeEnum::DNSRR), ports: None }),
        };
        desired.services.insert(listen_service(&ns), listen);
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
