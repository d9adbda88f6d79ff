//! What the agent on an AWS instance (`berth agent run`, crate `berth-agent`) asks of its local
//! engine: connect by URL, its swarm membership, init/join with a given advertise address, the
//! join tokens, tasks still waiting to start. Node changes reuse [`crate::cluster`]
//! (`update_node`, `remove_node`, `cluster_nodes`, `leave_swarm`).

use crate::api;
use crate::{Engine, EngineError};
use bollard::Docker;
use bollard::models::{
    LocalNodeState, NodeSpecRoleEnum, SwarmInitRequest, SwarmJoinRequest, SwarmSpec, SwarmSpecDispatcher, TaskState,
};
use bollard::query_parameters::ListServicesOptions;
use std::collections::HashMap;
use std::time::Duration;

/// The local engine's swarm membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalSwarm {
    /// `inactive`, `pending`, `active`, `error`, `locked`.
    pub state: String,
    pub node_id: String,
    pub swarm_id: String,
    /// Its control API answers (a manager).
    pub manager: bool,
}

/// The swarm's join tokens (worker, manager). Callers must not print them.
pub struct RawTokens {
    pub worker: String,
    pub manager: String,
}

impl Engine {
    /// Connects to `unix:///path` or `tcp://host:port` / `http://host:port` (no TLS).
    pub async fn connect_url(url: &str) -> Result<Engine, EngineError> {
        let unreachable = |source| EngineError::Unreachable { address: url.to_string(), source };
        let docker = if let Some(path) = url.strip_prefix("unix://") {
            Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION).map_err(unreachable)?
        } else {
            let http = url.replacen("tcp://", "http://", 1);
            Docker::connect_with_http(&http, 120, bollard::API_DEFAULT_VERSION).map_err(unreachable)?
        };
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(Engine { docker, address: url.to_string(), tunnel: None })
    }

    /// The engine's swarm membership (`docker info`).
    pub async fn local_swarm(&self) -> Result<LocalSwarm, EngineError> {
        let info = self.docker().info().await.map_err(api("info"))?;
        let s = info.swarm.unwrap_or_default();
        Ok(LocalSwarm {
            state: s.local_node_state.unwrap_or(LocalNodeState::EMPTY).to_string(),
            node_id: s.node_id.unwrap_or_default(),
            swarm_id: s.cluster.and_then(|c| c.id).unwrap_or_default(),
            manager: s.control_available == Some(true),
        })
    }

    /// `swarm init` listening on 0.0.0.0:2377, advertising `advertise`, with a dispatcher
    /// heartbeat (berth's clusters use 2 s so that a dead node is noticed in seconds).
    pub async fn agent_init(&self, advertise: &str, heartbeat: Duration) -> Result<(), EngineError> {
        let req = SwarmInitRequest {
            listen_addr: Some("0.0.0.0:2377".into()),
            advertise_addr: Some(advertise.to_string()),
            spec: Some(SwarmSpec {
                dispatcher: Some(SwarmSpecDispatcher {
                    heartbeat_period: Some(heartbeat.as_nanos().min(i64::MAX as u128) as i64),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.docker().init_swarm(req).await.map_err(api("swarm init"))?;
        Ok(())
    }

    /// `swarm join` through `remotes` (`ip:2377`) with `token`, advertising `advertise`.
    pub async fn agent_join(&self, advertise: &str, remotes: &[String], token: &str) -> Result<(), EngineError> {
        let req = SwarmJoinRequest {
            listen_addr: Some("0.0.0.0:2377".into()),
            advertise_addr: Some(advertise.to_string()),
            remote_addrs: Some(remotes.to_vec()),
            join_token: Some(token.to_string()),
            ..Default::default()
        };
        self.docker().join_swarm(req).await.map_err(api("swarm join"))
    }

    /// The swarm's join tokens (this engine must be a manager).
    pub async fn join_tokens(&self) -> Result<RawTokens, EngineError> {
        let swarm = self.docker().inspect_swarm().await.map_err(api("inspect swarm"))?;
        let t = swarm.join_tokens.unwrap_or_default();
        Ok(RawTokens { worker: t.worker.unwrap_or_default(), manager: t.manager.unwrap_or_default() })
    }

    /// Makes a node a manager or a worker; returns whether it changed.
    pub async fn set_node_role(&self, id: &str, manager: bool) -> Result<bool, EngineError> {
        let role = if manager { NodeSpecRoleEnum::MANAGER } else { NodeSpecRoleEnum::WORKER };
        self.update_node(id, |s| s.role = Some(role)).await
    }

    /// Tasks meant to run that are not running yet, swarm-wide, counting those Swarm has not even
    /// created: a replicated service with fewer tasks meant to run than its replicas counts the
    /// difference. A drained node's tasks are "moved" once this is 0 and none is left on the node.
    /// (Regression: counting only existing tasks let the leader see 0 in the moment between Swarm
    /// shutting a drained node's tasks down and creating their replacements, and a terminating
    /// node left the swarm before its replicas ran elsewhere.)
    pub async fn pending_tasks(&self) -> Result<usize, EngineError> {
        let tasks = self.running_tasks().await?;
        let services = self.docker().list_services(None::<ListServicesOptions>).await.map_err(api("list services"))?;
        let not_running =
            tasks.iter().filter(|t| t.status.as_ref().and_then(|s| s.state) != Some(TaskState::RUNNING)).count();
        let mut meant: HashMap<&str, usize> = HashMap::new();
        for t in &tasks {
            if let Some(id) = t.service_id.as_deref() {
                *meant.entry(id).or_default() += 1;
            }
        }
        let uncreated: usize = services
            .iter()
            .filter_map(|s| {
                let replicas = s.spec.as_ref()?.mode.as_ref()?.replicated.as_ref()?.replicas? as usize;
                Some(replicas.saturating_sub(meant.get(s.id.as_deref()?).copied().unwrap_or(0)))
            })
            .sum();
        Ok(not_running + uncreated)
    }
}
