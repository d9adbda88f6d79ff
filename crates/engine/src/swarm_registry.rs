//! The registry berth runs on the swarm when a target of several hosts names none
//! (docs/images.md, "The swarm's own registry"): images berth builds are pushed there and every
//! node pulls them from it, so a task can start on any node — one that joined later included —
//! without copying images host by host.
//!
//! Two services of the stack `berth-registry` (owned by berth like any other):
//! - `berth-registry_store`: a Docker distribution registry (`registry:2` by default), one task
//!   pinned to the manager berth set it up through, its data in the node-local volume
//!   `berth-registry_data`, `htpasswd` authentication (user `berth`, a generated password whose
//!   bcrypt hash is a swarm secret);
//! - `berth-registry_proxy`: berth's own image (the edge's) on every node, `berth edge forward`
//!   from the host-mode published port 5000 to the store over the overlay network.
//!
//! So `127.0.0.1:5000/<stack>/<service>` names the same image on every node, and 127.0.0.0/8 is a
//! registry the Docker engine talks plain HTTP to without any daemon setting. The port is open on
//! every node's addresses too: it needs the password for pulls and pushes, and a firewall should
//! keep it inside the cluster. The password is kept in the swarm (a config, readable by whoever
//! holds the swarm's API — who can run anything anyway), so any operator machine finds it.

use crate::api;
use crate::release::{is_conflict, is_not_found};
use crate::{Engine, EngineError};
use berth_plan::desired::{LABEL_NAMESPACE, LABEL_OWNER};
use bollard::auth::DockerCredentials;
use bollard::models::{
    ConfigSpec, EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum, Mount,
    MountType, NetworkAttachmentConfig, NetworkCreateRequest, SecretSpec, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskState,
};
use bollard::query_parameters::{InspectServiceOptions, ListTasksOptions};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The stack name of the registry's objects.
pub const REGISTRY_STACK: &str = "berth-registry";
/// The port the registry answers on, on every node.
pub const REGISTRY_PORT: u16 = 5000;
/// The registry image when none is given (`BERTH_REGISTRY_IMAGE`).
pub const DEFAULT_REGISTRY_IMAGE: &str = "registry:2";
/// Environment variable naming another registry image (one that answers like `registry:2`:
/// `registry serve` of a config file, `REGISTRY_*` variables).
pub const REGISTRY_IMAGE_ENV: &str = "BERTH_REGISTRY_IMAGE";
const STORE: &str = "berth-registry_store";
const PROXY: &str = "berth-registry_proxy";
const NETWORK: &str = "berth-registry_net";
const VOLUME: &str = "berth-registry_data";
const CREDENTIALS: &str = "berth-registry_credentials";
const USER: &str = "berth";

/// The registry as a deploy uses it.
#[derive(Clone)]
pub struct SwarmRegistry {
    /// `127.0.0.1:5000`.
    pub host: String,
    /// User `berth` and its password.
    pub credentials: DockerCredentials,
}

impl std::fmt::Debug for SwarmRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmRegistry").field("host", &self.host).finish()
    }
}

/// Where a stack's built images go in the swarm's registry: `127.0.0.1:5000/<stack>`.
pub fn repository_prefix(stack: &str) -> String {
    format!("127.0.0.1:{REGISTRY_PORT}/{stack}")
}

/// The registry image to run: `BERTH_REGISTRY_IMAGE` or [`DEFAULT_REGISTRY_IMAGE`].
pub fn registry_image() -> String {
    std::env::var(REGISTRY_IMAGE_ENV).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_REGISTRY_IMAGE.into())
}

fn labels() -> HashMap<String, String> {
    HashMap::from([
        (LABEL_OWNER.to_string(), REGISTRY_STACK.to_string()),
        (LABEL_NAMESPACE.to_string(), REGISTRY_STACK.to_string()),
    ])
}

fn password() -> Result<String, EngineError> {
    let bytes = crate::apply::generate_secret_value(40).map_err(|e| EngineError::Refused {
        message: format!("no randomness for the registry password: {e}"),
        hint: None,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn registry_with(password: String) -> SwarmRegistry {
    let host = format!("127.0.0.1:{REGISTRY_PORT}");
    let credentials = DockerCredentials {
        username: Some(USER.into()),
        password: Some(password),
        serveraddress: Some(host.clone()),
        ..Default::default()
    };
    SwarmRegistry { host, credentials }
}

fn network_attachment() -> Option<Vec<NetworkAttachmentConfig>> {
    Some(vec![NetworkAttachmentConfig { target: Some(NETWORK.into()), ..Default::default() }])
}

impl Engine {
    /// Makes sure the swarm's registry runs (see the module doc) with `store_image` and the
    /// forwarders from `proxy_image` (berth's edge image, present on every node), and that the
    /// forwarder on this engine's node and the store have a running task. Safe to re-run: what
    /// exists is kept; a changed image is updated.
    pub async fn ensure_swarm_registry(
        &self,
        store_image: &str,
        proxy_image: &str,
        timeout: Duration,
        on: &mut (dyn FnMut(&str) + Send),
    ) -> Result<SwarmRegistry, EngineError> {
        let d = self.docker();
        // The password: kept in a config of the swarm; made once.
        let pass = match self.swarm_registry().await? {
            Some(r) => r.credentials.password.unwrap_or_default(),
            None => {
                let p = password()?;
                let spec = ConfigSpec {
                    name: Some(CREDENTIALS.into()),
                    labels: Some(labels()),
                    data: Some(berth_plan::convert::base64(p.as_bytes())),
                    ..Default::default()
                };
                match d.create_config(spec).await {
                    Ok(_) => p,
                    // Made meanwhile by another berth: use that one.
                    Err(e) if is_conflict(&e) => {
                        self.swarm_registry().await?.and_then(|r| r.credentials.password).unwrap_or_default()
                    }
                    Err(e) => return Err(api("create config")(e)),
                }
            }
        };
        // The htpasswd file, named by a hash of the password (secrets are immutable).
        let digest: String = Sha256::digest(pass.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect();
        let secret = format!("berth-registry_htpasswd-{digest}");
        let secret_id = match d.inspect_secret(&secret).await {
            Ok(s) => s.id.unwrap_or_default(),
            Err(e) if is_not_found(&e) => {
                let hash = bcrypt::hash(&pass, 10).map_err(|e| EngineError::Refused {
                    message: format!("hashing the registry password: {e}"),
                    hint: None,
                })?;
                let spec = SecretSpec {
                    name: Some(secret.clone()),
                    labels: Some(labels()),
                    data: Some(berth_plan::convert::base64(format!("{USER}:{hash}\n").as_bytes())),
                    ..Default::default()
                };
                match d.create_secret(spec).await {
                    Ok(r) => r.id,
                    // Made meanwhile by another berth.
                    Err(e) if is_conflict(&e) => {
                        d.inspect_secret(&secret).await.map_err(api("inspect secret"))?.id.unwrap_or_default()
                    }
                    Err(e) => return Err(api("create secret")(e)),
                }
            }
            Err(e) => return Err(api("inspect secret")(e)),
        };
        // The overlay network both services are on.
        if let Err(e) = d.inspect_network(NETWORK, None::<bollard::query_parameters::InspectNetworkOptions>).await {
            if !is_not_found(&e) {
                return Err(api("inspect network")(e));
            }
            let req = NetworkCreateRequest {
                name: NETWORK.into(),
                driver: Some("overlay".into()),
                labels: Some(labels()),
                ..Default::default()
            };
            match d.create_network(req).await {
                Ok(_) => {}
                Err(e) if is_conflict(&e) => {}
                Err(e) => return Err(api("create network")(e)),
            }
        }
        let node_id = self.ensure_swarm(false).await?.node_id;
        let store = ServiceSpec {
            name: Some(STORE.into()),
            labels: Some(labels()),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                ..Default::default()
            }),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(store_image.into()),
                    labels: Some(labels()),
                    env: Some(vec![
                        format!("REGISTRY_HTTP_ADDR=0.0.0.0:{REGISTRY_PORT}"),
                        "REGISTRY_AUTH=htpasswd".into(),
                        "REGISTRY_AUTH_HTPASSWD_REALM=berth".into(),
                        "REGISTRY_AUTH_HTPASSWD_PATH=/run/secrets/htpasswd".into(),
                        "REGISTRY_STORAGE_DELETE_ENABLED=true".into(),
                    ]),
                    mounts: Some(vec![Mount {
                        target: Some("/var/lib/registry".into()),
                        source: Some(VOLUME.into()),
                        typ: Some(MountType::VOLUME),
                        ..Default::default()
                    }]),
                    secrets: Some(vec![TaskSpecContainerSpecSecrets {
                        file: Some(TaskSpecContainerSpecFile {
                            name: Some("htpasswd".into()),
                            uid: Some("0".into()),
                            gid: Some("0".into()),
                            mode: Some(0o444),
                        }),
                        secret_id: Some(secret_id),
                        secret_name: Some(secret.clone()),
                    }]),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    constraints: Some(vec![format!("node.id == {node_id}")]),
                    ..Default::default()
                }),
                networks: network_attachment(),
                ..Default::default()
            }),
            endpoint_spec: Some(EndpointSpec { mode: Some(EndpointSpecModeEnum::DNSRR), ..Default::default() }),
            ..Default::default()
        };
        let proxy = ServiceSpec {
            name: Some(PROXY.into()),
            labels: Some(labels()),
            mode: Some(ServiceSpecMode { global: Some(HashMap::new()), ..Default::default() }),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(proxy_image.into()),
                    labels: Some(labels()),
                    args: Some(vec![
                        "edge".into(),
                        "forward".into(),
                        "--listen".into(),
                        format!("0.0.0.0:{REGISTRY_PORT}"),
                        "--to".into(),
                        format!("tasks.{STORE}:{REGISTRY_PORT}"),
                    ]),
                    ..Default::default()
                }),
                networks: network_attachment(),
                ..Default::default()
            }),
            endpoint_spec: Some(EndpointSpec {
                mode: Some(EndpointSpecModeEnum::DNSRR),
                ports: Some(vec![EndpointPortConfig {
                    target_port: Some(REGISTRY_PORT as i64),
                    published_port: Some(REGISTRY_PORT as i64),
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        };
        let mut changed = false;
        for spec in [store, proxy] {
            changed |= self.put_registry_service(spec, on).await?;
        }
        // Ready when the store and this node's forwarder run, with the images asked for.
        let start = Instant::now();
        loop {
            let store_up = self.running_task(STORE, None, store_image).await?;
            let proxy_up = self.running_task(PROXY, Some(&node_id), proxy_image).await?;
            if store_up && proxy_up {
                if changed {
                    // A process that just started may not listen yet.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                break;
            }
            if start.elapsed() > timeout {
                return Err(EngineError::Refused {
                    message: format!(
                        "the swarm's registry did not start in {} s (store running: {store_up}, forwarder on this node running: {proxy_up})",
                        timeout.as_secs()
                    ),
                    hint: Some(format!(
                        "see `docker service ps {STORE} {PROXY}`; the store's image ({store_image}) must be pullable on the manager, or name a registry in x-berth.registry"
                    )),
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(registry_with(pass))
    }

    /// The swarm's registry and its credentials when berth set one up on this swarm (its
    /// password config exists), without changing anything: what `plan` fingerprints.
    pub async fn swarm_registry(&self) -> Result<Option<SwarmRegistry>, EngineError> {
        match self.docker().inspect_config(CREDENTIALS).await {
            Ok(c) => {
                let data = c.spec.and_then(|s| s.data).unwrap_or_default();
                let raw = berth_plan::plan::decode_base64(&data).ok_or_else(|| EngineError::Refused {
                    message: format!("the config {CREDENTIALS} does not hold berth's registry password"),
                    hint: Some(format!("remove the stack {REGISTRY_STACK} and the config, then deploy again")),
                })?;
                Ok(Some(registry_with(String::from_utf8_lossy(&raw).trim().to_string())))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api("inspect config")(e)),
        }
    }

    /// Creates the service, or updates it when its image or arguments differ from `spec`'s.
    /// Returns whether it changed anything.
    async fn put_registry_service(
        &self,
        spec: ServiceSpec,
        on: &mut (dyn FnMut(&str) + Send),
    ) -> Result<bool, EngineError> {
        let d = self.docker();
        let name = spec.name.clone().unwrap_or_default();
        match d.inspect_service(&name, None::<InspectServiceOptions>).await {
            Ok(s) => {
                let owned = s.spec.as_ref().and_then(|s| s.labels.as_ref()).and_then(|l| l.get(LABEL_OWNER))
                    == Some(&REGISTRY_STACK.to_string());
                if !owned {
                    return Err(EngineError::Refused {
                        message: format!("service {name} exists and is not berth's"),
                        hint: Some("remove it, or name a registry in x-berth.registry".into()),
                    });
                }
                let current =
                    s.spec.as_ref().and_then(|s| s.task_template.as_ref()).and_then(|t| t.container_spec.as_ref());
                let want = spec.task_template.as_ref().and_then(|t| t.container_spec.as_ref());
                let image = |c: Option<&TaskSpecContainerSpec>| c.and_then(|c| c.image.clone());
                let args = |c: Option<&TaskSpecContainerSpec>| c.and_then(|c| c.args.clone());
                if image(current) == image(want) && args(current) == args(want) {
                    return Ok(false);
                }
                let version = s.version.and_then(|v| v.index).unwrap_or(0) as i32;
                let opts = bollard::query_parameters::UpdateServiceOptions { version, ..Default::default() };
                d.update_service(&name, spec, opts, None).await.map_err(api("update service"))?;
                on(&format!("registry: updated {name}"));
            }
            Err(e) if is_not_found(&e) => match d.create_service(spec, None).await {
                Ok(_) => on(&format!("registry: created {name}")),
                Err(e) if is_conflict(&e) => {}
                Err(e) => return Err(api("create service")(e)),
            },
            Err(e) => return Err(api("inspect service")(e)),
        }
        Ok(true)
    }

    /// Whether `service` has a running task of `image` (on `node` when given).
    async fn running_task(&self, service: &str, node: Option<&str>, image: &str) -> Result<bool, EngineError> {
        let mut filters = HashMap::from([
            ("service".to_string(), vec![service.to_string()]),
            ("desired-state".to_string(), vec!["running".to_string()]),
        ]);
        if let Some(n) = node {
            filters.insert("node".into(), vec![n.to_string()]);
        }
        let tasks = self
            .docker()
            .list_tasks(Some(ListTasksOptions { filters: Some(filters) }))
            .await
            .map_err(api("list tasks"))?;
        Ok(tasks.iter().any(|t| {
            t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
                && t.spec.as_ref().and_then(|s| s.container_spec.as_ref()).and_then(|c| c.image.as_deref())
                    == Some(image)
        }))
    }
}
