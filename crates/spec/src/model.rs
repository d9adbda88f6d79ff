//! The typed stack: docker/cli's `cli/compose/types` as Rust.
//!
//! Field names, field order and "omit when empty" rules follow docker/cli's yaml tags, so that
//! serialising a [`Stack`] gives the same document `docker stack config` prints. The model holds
//! the *normalised* form the loader produces (long-form ports and volumes, environment as a map,
//! absolute bind sources, ...); [`crate::load`] turns user files into it.

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `true` when a value equals its type's default (used to omit empty fields like Go's `omitempty`).
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A string-to-string mapping (`sysctls`, `driver_opts`, `labels`, ...). Keys sorted, like Go's map output.
pub type Mapping = BTreeMap<String, String>;

/// Labels: a mapping from label name to value.
pub type Labels = BTreeMap<String, String>;

/// A mapping whose values may be absent (`environment`, build `args`): `KEY` without `=` is `None`.
pub type MappingWithEquals = BTreeMap<String, Option<String>>;

/// `x-*` extension fields, kept verbatim.
pub type Extras = BTreeMap<String, serde_json::Value>;

/// A whole stack: docker/cli's `types.Config`. Services are keyed (and therefore sorted) by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    /// The compose file format version (`"3.13"`), always printed.
    #[serde(default)]
    pub version: String,
    /// Services by name.
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// Top-level networks by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, NetworkConfig>,
    /// Top-level volumes by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, VolumeConfig>,
    /// Top-level secrets by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretConfig>,
    /// Top-level configs by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, ConfigObjConfig>,
    /// Top-level `x-*` extension fields.
    #[serde(flatten)]
    pub extras: Extras,
}

/// One service: docker/cli's `types.ServiceConfig` (without `Name`, which is the key in [`Stack::services`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    /// `build:` (ignored by Swarm, kept for output).
    #[serde(skip_serializing_if = "is_default")]
    pub build: BuildConfig,
    /// Linux capabilities to add.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Linux capabilities to drop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Cgroup namespace mode (`host`/`private`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cgroupns_mode: String,
    /// Parent cgroup (ignored by Swarm).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cgroup_parent: String,
    /// Command, already split into arguments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Config references.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ServiceConfigObjConfig>,
    /// `container_name` (deprecated, ignored by Swarm).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    /// Windows credential spec.
    #[serde(skip_serializing_if = "is_default")]
    pub credential_spec: CredentialSpecConfig,
    /// `depends_on` service names (ignored by Swarm).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// `deploy:` settings.
    #[serde(skip_serializing_if = "is_default")]
    pub deploy: DeployConfig,
    /// Devices (ignored by Swarm).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// DNS servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// DNS search domains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// NIS domain name (ignored by Swarm).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domainname: String,
    /// Entrypoint, already split into arguments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// Environment after `env_file`s and the process environment were applied.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: MappingWithEquals,
    /// `env_file` paths as written (they are already folded into `environment`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<String>,
    /// Exposed ports (deprecated, ignored by Swarm), as strings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// External links (ignored by Swarm).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<String>,
    /// Extra `/etc/hosts` entries as `host:ip`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Container hostname.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthCheckConfig>,
    /// Image reference.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Run an init process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// IPC mode (ignored by Swarm).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipc: String,
    /// Isolation technology (Windows).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    /// Container labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// Links (ignored by Swarm).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Logging driver and options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingConfig>,
    /// MAC address (ignored by Swarm).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// Network mode (ignored by Swarm).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network_mode: String,
    /// Networks the service joins; `None` means "joined with no options".
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Option<ServiceNetworkConfig>>,
    /// PID mode (ignored by Swarm).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pid: String,
    /// Published ports, long form (short syntax and ranges already expanded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePortConfig>,
    /// Privileged mode (ignored by Swarm).
    #[serde(skip_serializing_if = "is_default")]
    pub privileged: bool,
    /// Read-only root filesystem.
    #[serde(skip_serializing_if = "is_default")]
    pub read_only: bool,
    /// `restart` (ignored by Swarm; use `deploy.restart_policy`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub restart: String,
    /// Secret references.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceSecretConfig>,
    /// Security options (ignored by Swarm).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Size of `/dev/shm` (ignored by Swarm), as written.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub shm_size: String,
    /// Keep stdin open.
    #[serde(skip_serializing_if = "is_default")]
    pub stdin_open: bool,
    /// Time to wait before killing the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    /// Signal to stop the container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    /// Namespaced kernel parameters.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: Mapping,
    /// Tmpfs mounts (`path[:options]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// Allocate a TTY.
    #[serde(skip_serializing_if = "is_default")]
    pub tty: bool,
    /// Ulimits by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, UlimitsConfig>,
    /// User to run as.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// User namespace mode (ignored by Swarm).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub userns_mode: String,
    /// Mounts, long form (short syntax already parsed, bind sources absolute).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolumeConfig>,
    /// Working directory inside the container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    /// Service-level `x-*` extension fields.
    #[serde(flatten)]
    pub extras: Extras,
}

/// `build:` (docker/cli's `BuildConfig`); Swarm ignores it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildConfig {
    /// Build context (kept relative, as written).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// Dockerfile path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dockerfile: String,
    /// Build arguments.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: MappingWithEquals,
    /// Image labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// Images used as cache sources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// Extra hosts during the build.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Network for RUN instructions.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// Build stage.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
}

/// Windows credential spec (docker/cli's `CredentialSpecConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CredentialSpecConfig {
    /// Name of a Swarm config holding the spec.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub config: String,
    /// File holding the spec.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// Registry value holding the spec.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub registry: String,
}

/// Logging driver (docker/cli's `LoggingConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoggingConfig {
    /// Driver name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Driver options (numbers already turned into strings).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: Mapping,
}

/// `deploy:` (docker/cli's `DeployConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeployConfig {
    /// `replicated` (default), `global`, `replicated-job`, `global-job`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// Number of replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
    /// Service labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// Rolling update settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    /// Rollback settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    /// Limits and reservations.
    #[serde(skip_serializing_if = "is_default")]
    pub resources: Resources,
    /// Restart policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    /// Placement constraints and preferences.
    #[serde(skip_serializing_if = "is_default")]
    pub placement: Placement,
    /// `vip` (default) or `dnsrr`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub endpoint_mode: String,
}

/// `update_config` / `rollback_config` (docker/cli's `UpdateConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateConfig {
    /// Tasks updated at once (0 = all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u64>,
    /// Delay between batches.
    #[serde(skip_serializing_if = "is_default")]
    pub delay: Duration,
    /// `continue`, `rollback` or `pause`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failure_action: String,
    /// How long to watch each task for failure.
    #[serde(skip_serializing_if = "is_default")]
    pub monitor: Duration,
    /// Tolerated failure ratio.
    #[serde(skip_serializing_if = "is_default")]
    pub max_failure_ratio: f64,
    /// `stop-first` or `start-first`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub order: String,
}

/// `deploy.resources` (docker/cli's `Resources`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Upper limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceLimit>,
    /// Reservations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Resource>,
}

/// `deploy.resources.limits` (docker/cli's `ResourceLimit`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceLimit {
    /// CPUs as written (`"0.5"`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cpus: String,
    /// Memory in bytes.
    #[serde(skip_serializing_if = "is_default")]
    pub memory: UnitBytes,
    /// Maximum number of processes.
    #[serde(skip_serializing_if = "is_default")]
    pub pids: i64,
}

/// `deploy.resources.reservations` (docker/cli's `Resource`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resource {
    /// CPUs as written (`"0.25"`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cpus: String,
    /// Memory in bytes.
    #[serde(skip_serializing_if = "is_default")]
    pub memory: UnitBytes,
    /// User-defined resources (GPUs, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
}

/// One generic resource (docker/cli's `GenericResource`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenericResource {
    /// A counted resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discrete_resource_spec: Option<DiscreteGenericResource>,
}

/// A counted generic resource such as `gpu=2` (docker/cli's `DiscreteGenericResource`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscreteGenericResource {
    /// Resource kind (`gpu`, `ssd`, ...).
    pub kind: String,
    /// How many.
    pub value: i64,
}

/// `deploy.restart_policy` (docker/cli's `RestartPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    /// `none`, `on-failure` or `any`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
    /// Delay between restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Maximum restart attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    /// Window used to evaluate the policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
}

/// `deploy.placement` (docker/cli's `Placement`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    /// Constraint expressions (`node.role==manager`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    /// Spread preferences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreferences>,
    /// Maximum replicas per node (0 = unlimited).
    #[serde(skip_serializing_if = "is_default")]
    pub max_replicas_per_node: u64,
}

/// One placement preference (docker/cli's `PlacementPreferences`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlacementPreferences {
    /// Label to spread over (`node.labels.az`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub spread: String,
}

/// `healthcheck:` (docker/cli's `HealthCheckConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckConfig {
    /// Test command: `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Timeout of one check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Time between checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Failures before unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Grace period after start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    /// Time between checks during the start period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    /// Disable the image's health check.
    #[serde(skip_serializing_if = "is_default")]
    pub disable: bool,
}

/// Per-service network options (docker/cli's `ServiceNetworkConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceNetworkConfig {
    /// Extra DNS names on this network.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Endpoint driver options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: Mapping,
    /// Static IPv4 address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    /// Static IPv6 address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
}

/// One published port, long form (docker/cli's `ServicePortConfig`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ServicePortConfig {
    /// `ingress` or `host`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// Container port.
    #[serde(skip_serializing_if = "is_default")]
    pub target: u32,
    /// Published port (0 = none / assigned).
    #[serde(skip_serializing_if = "is_default")]
    pub published: u32,
    /// `tcp`, `udp` or `sctp`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
}

/// One mount, long form (docker/cli's `ServiceVolumeConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceVolumeConfig {
    /// `volume`, `bind`, `tmpfs`, `npipe` or `cluster`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Volume name or (absolute) host path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Path in the container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Mount read-only.
    #[serde(skip_serializing_if = "is_default")]
    pub read_only: bool,
    /// Consistency (`cached`, `delegated`, ...; ignored on Linux).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    /// Bind options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<ServiceVolumeBind>,
    /// Volume options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<ServiceVolumeVolume>,
    /// Tmpfs options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<ServiceVolumeTmpfs>,
    /// Cluster (CSI) volume options (none defined yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ServiceVolumeCluster>,
}

/// Bind mount options (docker/cli's `ServiceVolumeBind`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceVolumeBind {
    /// Propagation mode (`rprivate`, `shared`, ...).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub propagation: String,
}

/// Volume mount options (docker/cli's `ServiceVolumeVolume`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceVolumeVolume {
    /// Do not copy image data into a new volume.
    #[serde(skip_serializing_if = "is_default")]
    pub nocopy: bool,
}

/// Tmpfs mount options (docker/cli's `ServiceVolumeTmpfs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceVolumeTmpfs {
    /// Size in bytes (0 = unlimited); printed as a number, read from a number or a size string.
    #[serde(skip_serializing_if = "is_default", deserialize_with = "bytes_as_i64")]
    pub size: i64,
}

/// Cluster volume mount options: none defined (docker/cli's `ServiceVolumeCluster`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceVolumeCluster {}

/// A service's reference to a secret or config (docker/cli's `FileReferenceConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileReferenceConfig {
    /// Name of the top-level secret/config.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// File name or path in the container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Owner UID, as a string.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Owner GID, as a string.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gid: String,
    /// File mode (`0440` is 288).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// A service's secret reference.
pub type ServiceSecretConfig = FileReferenceConfig;
/// A service's config reference.
pub type ServiceConfigObjConfig = FileReferenceConfig;

/// One ulimit: a single value (`nproc: 65535`) or soft/hard (docker/cli's `UlimitsConfig`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UlimitsConfig {
    /// The single value; when non-zero, soft = hard = single.
    pub single: i64,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

impl Serialize for UlimitsConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.single != 0 {
            return s.serialize_i64(self.single);
        }
        let n = (self.soft != 0) as usize + (self.hard != 0) as usize;
        let mut m = s.serialize_map(Some(n))?;
        if self.soft != 0 {
            m.serialize_entry("soft", &self.soft)?;
        }
        if self.hard != 0 {
            m.serialize_entry("hard", &self.hard)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for UlimitsConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Single(i64),
            Pair {
                #[serde(default)]
                soft: i64,
                #[serde(default)]
                hard: i64,
            },
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Single(single) => UlimitsConfig { single, soft: 0, hard: 0 },
            Raw::Pair { soft, hard } => UlimitsConfig { single: 0, soft, hard },
        })
    }
}

/// Whether a network/volume/secret/config already exists outside the stack (docker/cli's `External`).
///
/// Prints as `external: true` (or nothing); the legacy `external: {name: x}` is moved to the
/// resource's `name` by the loader, leaving [`External::name`] empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct External {
    /// Legacy `external.name` (empty after loading).
    pub name: String,
    /// The resource is external.
    pub external: bool,
}

impl Serialize for External {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.name.is_empty() {
            return s.serialize_bool(self.external);
        }
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("name", &self.name)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for External {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Named {
                #[serde(default)]
                name: String,
                #[serde(default)]
                external: Option<bool>,
            },
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Flag(external) => External { name: String::new(), external },
            Raw::Named { name, external } => External { name, external: external.unwrap_or(true) },
        })
    }
}

/// A top-level network (docker/cli's `NetworkConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    /// Actual network name (unprefixed when set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Driver (`overlay` on Swarm).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Driver options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: Mapping,
    /// IP address management.
    #[serde(skip_serializing_if = "is_default")]
    pub ipam: IpamConfig,
    /// Pre-existing network.
    #[serde(skip_serializing_if = "is_default")]
    pub external: External,
    /// No outside connectivity.
    #[serde(skip_serializing_if = "is_default")]
    pub internal: bool,
    /// Standalone containers may attach.
    #[serde(skip_serializing_if = "is_default")]
    pub attachable: bool,
    /// Network labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// `x-*` extension fields.
    #[serde(flatten)]
    pub extras: Extras,
}

/// `ipam:` of a network (docker/cli's `IPAMConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpamConfig {
    /// IPAM driver.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Address pools.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
}

/// One IPAM pool (docker/cli's `IPAMPool`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpamPool {
    /// Subnet in CIDR form.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
}

/// A top-level volume (docker/cli's `VolumeConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeConfig {
    /// Actual volume name (unprefixed when set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Volume driver.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Driver options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: Mapping,
    /// Pre-existing volume.
    #[serde(skip_serializing_if = "is_default")]
    pub external: External,
    /// Volume labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// Cluster (CSI) volume spec.
    #[serde(rename = "x-cluster-spec", skip_serializing_if = "Option::is_none")]
    pub spec: Option<ClusterVolumeSpec>,
    /// Other `x-*` extension fields.
    #[serde(flatten)]
    pub extras: Extras,
}

/// `x-cluster-spec` of a cluster volume (docker/cli's `ClusterVolumeSpec`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterVolumeSpec {
    /// Volume group.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// How tasks access the volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<AccessMode>,
    /// Topology requirements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accessibility_requirements: Option<TopologyRequirement>,
    /// Size bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_range: Option<CapacityRange>,
    /// Secrets passed to the CSI plugin.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<VolumeSecret>,
    /// `active`, `pause` or `drain`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub availability: String,
}

/// Access mode of a cluster volume (docker/cli's `AccessMode`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessMode {
    /// `single` or `multi`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// `none`, `readonly`, `onewriter`, `all`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sharing: String,
    /// Use as a filesystem mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_volume: Option<MountVolume>,
    /// Use as a block device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_volume: Option<BlockVolume>,
}

/// Filesystem options of a cluster volume (docker/cli's `MountVolume`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountVolume {
    /// Filesystem type.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fs_type: String,
    /// Mount flags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mount_flags: Vec<String>,
}

/// Block-device access of a cluster volume: no options (docker/cli's `BlockVolume`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockVolume {}

/// Topology requirements of a cluster volume (docker/cli's `TopologyRequirement`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopologyRequirement {
    /// Topologies the volume must be accessible from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requisite: Vec<Topology>,
    /// Preferred topologies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preferred: Vec<Topology>,
}

/// One topology: segment labels (docker/cli's `Topology`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Topology {
    /// Segments such as `region: R1`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub segments: Mapping,
}

/// Size bounds of a cluster volume (docker/cli's `CapacityRange`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapacityRange {
    /// Minimum size.
    #[serde(skip_serializing_if = "is_default")]
    pub required_bytes: UnitBytes,
    /// Maximum size.
    #[serde(skip_serializing_if = "is_default")]
    pub limit_bytes: UnitBytes,
}

/// A secret passed to a CSI plugin (docker/cli's `VolumeSecret`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeSecret {
    /// Key the plugin sees.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Name of the secret.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret: String,
}

/// A top-level secret or config (docker/cli's `FileObjectConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileObjectConfig {
    /// Actual object name (unprefixed when set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Absolute path of the file with the content.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// Pre-existing object.
    #[serde(skip_serializing_if = "is_default")]
    pub external: External,
    /// Object labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// `x-*` extension fields.
    #[serde(flatten)]
    pub extras: Extras,
    /// Secret driver (secrets only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Secret driver options (secrets only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: Mapping,
    /// Template driver (`golang`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub template_driver: String,
    /// The value of a secret whose `x-berth` block says `env: NAME`, filled by the loader from the
    /// interpolation environment. Never serialised (so `berth config` shows only the block as
    /// written) and redacted in `Debug`.
    #[serde(skip)]
    pub value: Option<crate::xberth::SecretValue>,
}

/// A top-level secret.
pub type SecretConfig = FileObjectConfig;
/// A top-level config.
pub type ConfigObjConfig = FileObjectConfig;

/// A span of time with nanosecond precision, printed like Go's `time.Duration` (`1m30s`, `500ms`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

/// Why a duration string did not parse (Go's `time.ParseDuration` rules).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{0}`")]
pub struct DurationError(pub String);

impl Duration {
    /// Nanoseconds.
    pub fn nanos(self) -> i64 {
        self.0
    }

    /// Parses Go's duration syntax: `[-+]` then one or more `<decimal><unit>` with units
    /// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`; `0` alone is allowed.
    pub fn parse(s: &str) -> Result<Duration, DurationError> {
        let err = || DurationError(s.to_string());
        let (neg, mut rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if rest == "0" {
            return Ok(Duration(0));
        }
        if rest.is_empty() {
            return Err(err());
        }
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let int_part = &rest[..int_len];
            rest = &rest[int_len..];
            let mut frac_part = "";
            if let Some(r) = rest.strip_prefix('.') {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                frac_part = &r[..n];
                rest = &r[n..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(err());
            }
            let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
            let unit: u128 = match &rest[..unit_len] {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(err()),
            };
            rest = &rest[unit_len..];
            let whole: u128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| err())? };
            let mut v = whole.checked_mul(unit).ok_or_else(err)?;
            if !frac_part.is_empty() {
                // Fraction scaled by the unit, truncated like Go.
                let mut scale: u128 = 1;
                let mut f: u128 = 0;
                for d in frac_part.bytes().take(30) {
                    f = f * 10 + (d - b'0') as u128;
                    scale *= 10;
                }
                v += f * unit / scale;
            }
            total = total.checked_add(v).ok_or_else(err)?;
            if total > i64::MAX as u128 + neg as u128 {
                return Err(err());
            }
        }
        let t = total as i128;
        Ok(Duration(if neg { (-t) as i64 } else { t as i64 }))
    }
}

impl fmt::Display for Duration {
    /// Go's `time.Duration.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u == 0 {
            return f.write_str("0s");
        }
        // Trim trailing zeros of a fraction.
        fn frac(v: u64, digits: u32) -> String {
            let s = format!("{:0width$}", v, width = digits as usize);
            let t = s.trim_end_matches('0');
            if t.is_empty() { String::new() } else { format!(".{t}") }
        }
        if u < 1_000_000_000 {
            let (unit, div, digits) = if u < 1_000 {
                ("ns", 1, 0)
            } else if u < 1_000_000 {
                ("µs", 1_000, 3)
            } else {
                ("ms", 1_000_000, 6)
            };
            let fr = if digits == 0 { String::new() } else { frac(u % div, digits) };
            return write!(f, "{sign}{}{fr}{unit}", u / div);
        }
        let secs = u / 1_000_000_000;
        let nanos = u % 1_000_000_000;
        let h = secs / 3600;
        let m = (secs % 3600) / 60;
        let s = secs % 60;
        let fr = frac(nanos, 9);
        if h > 0 {
            write!(f, "{sign}{h}h{m}m{s}{fr}s")
        } else if m > 0 {
            write!(f, "{sign}{m}m{s}{fr}s")
        } else {
            write!(f, "{sign}{s}{fr}s")
        }
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration(d.as_nanos().min(i64::MAX as u128) as i64)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    /// From a Go duration string, or an integer number of nanoseconds.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Duration(n)),
            Raw::Str(s) => Duration::parse(&s).map_err(de::Error::custom),
        }
    }
}

/// A size in bytes, printed as a decimal string like docker/cli's `UnitBytes` (`"52428800"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitBytes(pub i64);

/// Why a size string did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid size `{0}`")]
pub struct SizeError(pub String);

impl UnitBytes {
    /// Parses a size like docker/go-units `RAMInBytes`: a decimal number, optional space, an optional
    /// unit `b`, `k`, `m`, `g`, `t`, `p` (binary multiples, case-insensitive) optionally followed by
    /// `i` and/or `b` (`50M`, `1.5GiB`, `512kb`, `100`).
    pub fn parse(s: &str) -> Result<UnitBytes, SizeError> {
        let err = || SizeError(s.to_string());
        let num_len = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (num, suffix) = s.split_at(num_len);
        if num.is_empty() || !num.as_bytes()[0].is_ascii_digit() || num.ends_with('.') || num.contains("..") {
            return Err(err());
        }
        let value: f64 = num.parse().map_err(|_| err())?;
        let suffix = suffix.strip_prefix(' ').unwrap_or(suffix).to_ascii_lowercase();
        let mut chars = suffix.as_str();
        let mult: f64 = match chars.chars().next() {
            Some('k') => 1024f64,
            Some('m') => 1024f64.powi(2),
            Some('g') => 1024f64.powi(3),
            Some('t') => 1024f64.powi(4),
            Some('p') => 1024f64.powi(5),
            _ => 1.0,
        };
        if mult != 1.0 {
            chars = &chars[1..];
        }
        chars = chars.strip_prefix('i').unwrap_or(chars);
        chars = chars.strip_prefix('b').unwrap_or(chars);
        if !chars.is_empty() {
            return Err(err());
        }
        let bytes = value * mult;
        if !bytes.is_finite() || bytes > i64::MAX as f64 {
            return Err(err());
        }
        Ok(UnitBytes(bytes as i64))
    }
}

impl fmt::Display for UnitBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for UnitBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UnitBytes {
    /// From an integer number of bytes or a size string (`"50M"`, `"52428800"`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Float(f64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(UnitBytes(n)),
            Raw::Float(f) => Ok(UnitBytes(f as i64)),
            Raw::Str(s) => UnitBytes::parse(&s).map_err(de::Error::custom),
        }
    }
}

fn bytes_as_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    UnitBytes::deserialize(d).map(|b| b.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        let cases = [
            ("1m30s", "1m30s"),
            ("60s", "1m0s"),
            ("120s", "2m0s"),
            ("10s", "10s"),
            ("1.5s", "1.5s"),
            ("500ms", "500ms"),
            ("1h", "1h0m0s"),
            ("0", "0s"),
            ("1us", "1µs"),
            ("1500us", "1.5ms"),
            ("-2m", "-2m0s"),
            ("1h2m3.004s", "1h2m3.004s"),
        ];
        for (input, want) in cases {
            assert_eq!(Duration::parse(input).unwrap().to_string(), want, "{input}");
        }
    }

    #[test]
    fn bad_durations_are_rejected() {
        for bad in ["", "1", "s", "1x", "1.s.", "--1s", "1s2"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse_like_go_units() {
        assert_eq!(UnitBytes::parse("50M").unwrap().0, 52428800);
        assert_eq!(UnitBytes::parse("20M").unwrap().0, 20971520);
        assert_eq!(UnitBytes::parse("1G").unwrap().0, 1073741824);
        assert_eq!(UnitBytes::parse("1.5k").unwrap().0, 1536);
        assert_eq!(UnitBytes::parse("512kb").unwrap().0, 524288);
        assert_eq!(UnitBytes::parse("1GiB").unwrap().0, 1073741824);
        assert_eq!(UnitBytes::parse("100").unwrap().0, 100);
        assert!(UnitBytes::parse("1x").is_err());
        assert!(UnitBytes::parse("M").is_err());
    }

    #[test]
    fn ulimits_and_external_serialise_like_docker_cli() {
        let single = UlimitsConfig { single: 5, soft: 0, hard: 0 };
        assert_eq!(serde_json::to_string(&single).unwrap(), "5");
        let pair = UlimitsConfig { single: 0, soft: 1, hard: 2 };
        assert_eq!(serde_json::to_string(&pair).unwrap(), r#"{"soft":1,"hard":2}"#);
        let back: UlimitsConfig = serde_json::from_str(r#"{"soft":1,"hard":2}"#).unwrap();
        assert_eq!(back, pair);
        let ext: External = serde_json::from_str("true").unwrap();
        assert_eq!(ext, External { name: String::new(), external: true });
        assert_eq!(serde_json::to_string(&ext).unwrap(), "true");
    }

    #[test]
    fn empty_service_serialises_to_empty_mapping() {
        assert_eq!(serde_json::to_string(&Service::default()).unwrap(), "{}");
        let s = Stack { version: "3.13".into(), ..Default::default() };
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"version":"3.13","services":{}}"#);
    }
}
