//! berth-engine: the only crate that talks to Docker.
//!
//! It connects to an engine (a [`Target`] says which), observes the objects of one stack
//! ([`Engine::observe`] → [`berth_plan::Observed`]) and carries out plans. Everything it reads is
//! filtered by the stack's namespace label, so it never sees — or touches — objects it does not own.

mod observe;

// Image pinning (issue #4): services run the exact image their tag names at deploy time.
mod image_pin;

// E2: one-off runs and operator commands.
mod inspect;
mod logs;
mod ops;
mod run;
pub use inspect::{NodeInfo, PortInfo, ServiceStatus, StackStatus, TaskInfo};
pub use logs::{LogLine, LogsOptions, parse_since};
pub use ops::{RemoveReport, Scaled};
pub use run::{RunOutcome, RunSpec};

// E3: image builds.
mod build;
pub mod edge_image;
pub use build::{
    BuildError, BuildOptions, BuildProgress, ContextFile, DockerIgnore, EntryKind, context_files, has_registry_host,
    image_repository, image_tag, planned_images,
};

// E1: the deploy path.
mod agent_ops;
mod apply;
pub mod cluster;
mod deploy;
mod release;
mod swarm;
mod watch;
pub use agent_ops::{LocalSwarm, RawTokens};
pub use apply::{ApplyOptions, ApplyStats};
mod registry_auth;
pub mod swarm_registry;
pub use berth_plan::registry_auth::registry_of;
pub use berth_ssh;
pub use bollard::auth::DockerCredentials;
pub use deploy::{DeployError, DeployOptions, DeployReport, deploy_plan, without_bookkeeping};
pub use registry_auth::{RegistryAuths, fingerprint, label_services as label_registry_auth};
pub use release::{
    LABEL_KIND as RELEASE_LABEL_KIND, LABEL_RELEASE, LABEL_STATUS, ReleaseInfo, ReleaseRecord, ReleaseStatus,
    current_release_of, highest_service_label, release_config_name,
};
pub use swarm::SwarmInfo;
pub use watch::{Event, Failure, ServiceProgress};

use bollard::Docker;

/// Where the engine is.
#[derive(Debug, Clone)]
pub enum Target {
    /// The Docker engine on this machine (`DOCKER_HOST`, or the default unix socket).
    Local,
    /// A swarm reached over SSH: the Docker socket of the first manager that answers, tunnelled.
    Ssh(SshTarget),
}

impl Target {
    /// Whether this is the engine on this machine.
    pub fn is_local(&self) -> bool {
        matches!(self, Target::Local)
    }
}

/// Managers of a swarm reached over SSH (see [`berth_ssh`]).
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// Manager hosts, tried in order: the first that answers is used (so a dead manager or a
    /// leader election costs one connect timeout, not the command).
    pub managers: Vec<berth_ssh::HostAddr>,
    /// Every host of the target (managers first): where images berth built are copied.
    pub hosts: Vec<berth_ssh::HostAddr>,
    /// Path of the Docker socket on the hosts; `{host}` is replaced by the host's name/address.
    pub socket: String,
    pub options: berth_ssh::SshOptions,
}

impl SshTarget {
    /// The socket path on `host`.
    pub fn socket_on(&self, host: &berth_ssh::HostAddr) -> String {
        self.socket.replace("{host}", &host.host)
    }
}

/// What can go wrong talking to Docker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No engine answered at all.
    #[error("no Docker engine answers at {address}: {source}")]
    Unreachable {
        address: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// SSH to a host of the target failed.
    #[error(transparent)]
    Ssh(#[from] berth_ssh::SshError),
    /// The engine answered but is not a swarm manager.
    #[error("the Docker engine at {address} is not a swarm manager (swarm state: {state})")]
    NotManager { address: String, state: String },
    /// An API call failed.
    #[error("Docker API call `{call}` failed: {source}")]
    Api {
        call: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
    /// A task could not start because its image is not on the node (and could not be pulled).
    #[error("service {service}: image `{image}` is missing: {detail}")]
    ImageMissing { service: String, image: String, detail: String },
    /// No node can run the task (constraints, resources, platform).
    #[error("service {service}: no node can run its task: {detail}")]
    NoSuitableNode { service: String, detail: String },
    /// The engine rejected or failed a task before its command ran.
    #[error("service {service}: task {state}: {detail}")]
    TaskFailed { service: String, state: String, detail: String },
    /// The request names something that does not exist (a service, a secret, a stack).
    #[error("{what} `{name}` not found{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    NotFound { what: &'static str, name: String, suggestion: Option<String> },
    /// berth will not do what was asked (foreign objects, global service scaled, ...).
    #[error("{message}")]
    Refused { message: String, hint: Option<String> },
}

impl EngineError {
    /// What the user can do about it, one line.
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::Unreachable { .. } => Some(
                "start dockerd (`sudo systemctl start docker`, or `sudo dockerd &`), or point DOCKER_HOST at a running engine"
                    .into(),
            ),
            EngineError::NotManager { .. } => {
                Some("run `berth deploy` (it initialises swarm mode on the local engine) or `docker swarm init`".into())
            }
            EngineError::Api { .. } if self.is_connection_lost() => Some(
                "the Docker engine stopped answering (restarted?): check `docker info`, then run the command again (`berth deploy` continues where it stopped)".into(),
            ),
            EngineError::Api { .. } => None,
            EngineError::ImageMissing { .. } => Some(
                "build or pull the image on every node that may run the task (`docker pull`, or `berth deploy` with a `build:` section), or push it to a registry the nodes can reach".into(),
            ),
            EngineError::NoSuitableNode { .. } => Some(
                "check the service's placement constraints and resource reservations against `docker node ls` / `docker node inspect`".into(),
            ),
            EngineError::TaskFailed { .. } => None,
            EngineError::NotFound { .. } => Some("`berth status` lists the stack's services".into()),
            EngineError::Refused { hint, .. } => hint.clone(),
            EngineError::Ssh(e) => e.hint(),
        }
    }
}

impl EngineError {
    /// Whether an API call failed because the engine stopped answering (connection refused or
    /// closed, socket gone, timeout) rather than with an answer.
    pub fn is_connection_lost(&self) -> bool {
        use bollard::errors::Error as B;
        matches!(
            self,
            EngineError::Api {
                source: B::HyperLegacyError { .. }
                    | B::IOError { .. }
                    | B::RequestTimeoutError
                    | B::SocketNotFoundError(_),
                ..
            }
        )
    }
}

/// A connection to one Docker engine, API version negotiated.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    address: String,
    /// The SSH tunnel the client talks through (remote targets); closed when the last clone goes.
    tunnel: Option<std::sync::Arc<berth_ssh::Forward>>,
}

impl Engine {
    /// Connects and negotiates the API version; fails with [`EngineError::Unreachable`] when nothing answers.
    pub async fn connect(target: &Target) -> Result<Engine, EngineError> {
        match target {
            Target::Local => {
                let address = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
                let docker = Docker::connect_with_local_defaults()
                    .map_err(|source| EngineError::Unreachable { address: address.clone(), source })?;
                let docker = docker
                    .negotiate_version()
                    .await
                    .map_err(|source| EngineError::Unreachable { address: address.clone(), source })?;
                Ok(Engine { docker, address, tunnel: None })
            }
            Target::Ssh(t) => {
                let mut last = None;
                for host in &t.managers {
                    match Self::connect_ssh(host, &t.socket_on(host), &t.options).await {
                        Ok(e) => return Ok(e),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| EngineError::Refused {
                    message: "the SSH target names no manager host".into(),
                    hint: Some("list the hosts under `ssh:`; the first `managers` of them are managers".into()),
                }))
            }
        }
    }

    /// Connects to the engine of one host over SSH (its socket tunnelled to a private local socket).
    pub async fn connect_ssh(
        host: &berth_ssh::HostAddr,
        socket: &str,
        options: &berth_ssh::SshOptions,
    ) -> Result<Engine, EngineError> {
        let session = std::sync::Arc::new(berth_ssh::Session::connect(host, options).await?);
        let forward = session.forward_unix(socket).await?;
        let address = format!("ssh://{host}{socket}");
        let local = forward.path().display().to_string();
        let docker = Docker::connect_with_unix(&local, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|source| EngineError::Unreachable { address: address.clone(), source })?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|source| EngineError::Unreachable { address: address.clone(), source })?;
        Ok(Engine { docker, address, tunnel: Some(std::sync::Arc::new(forward)) })
    }

    /// A local unix socket that reaches the engine (the tunnel's for remote targets), if any.
    pub(crate) fn unix_socket(&self) -> Option<String> {
        match &self.tunnel {
            Some(f) => Some(f.path().display().to_string()),
            None => self.address.strip_prefix("unix://").map(str::to_string),
        }
    }

    /// The SSH session of a remote engine (to run commands on its host), if any.
    pub fn ssh_session(&self) -> Option<&std::sync::Arc<berth_ssh::Session>> {
        self.tunnel.as_ref().map(|f| f.session())
    }

    /// The underlying client, for the engine's own modules.
    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Human-readable address of the engine.
    pub fn address(&self) -> &str {
        &self.address
    }
}

/// Maps an Engine API error to [`EngineError::Api`] naming the call.
pub(crate) fn api(call: &'static str) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    move |source| EngineError::Api { call, source }
}
