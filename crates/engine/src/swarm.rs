//! Swarm mode: make sure the engine is a swarm manager before deploying.

use crate::{Engine, EngineError};
use bollard::models::{LocalNodeState, SwarmInitRequest};

/// What `ensure_swarm` found (or made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmInfo {
    /// This node's ID.
    pub node_id: String,
    /// True when berth initialised swarm mode just now.
    pub initialised: bool,
}

impl Engine {
    /// Makes sure the engine is an active swarm manager. With `local` (the engine on this
    /// machine), an inactive engine is switched to swarm mode (`docker swarm init`; the daemon
    /// advertises its default route's address, or 127.0.0.1 when it has none). A worker, a
    /// `pending`/`error`/`locked` swarm, or an inactive remote engine give
    /// [`EngineError::NotManager`] (with a hint).
    pub async fn ensure_swarm(&self, local: bool) -> Result<SwarmInfo, EngineError> {
        let info = self
            .docker()
            .info()
            .await
            .map_err(|source| EngineError::Unreachable { address: self.address().to_string(), source })?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.unwrap_or(LocalNodeState::EMPTY);
        let not_manager = |state: String| EngineError::NotManager { address: self.address().to_string(), state };
        match state {
            LocalNodeState::ACTIVE if swarm.control_available == Some(true) => {
                Ok(SwarmInfo { node_id: swarm.node_id.unwrap_or_default(), initialised: false })
            }
            LocalNodeState::ACTIVE => Err(not_manager(
                "active, but this node is a worker: run berth against a manager, or `docker node promote` this node"
                    .into(),
            )),
            LocalNodeState::INACTIVE | LocalNodeState::EMPTY if local => {
                let req = SwarmInitRequest { listen_addr: Some("0.0.0.0:2377".into()), ..Default::default() };
                let node_id = match self.docker().init_swarm(req).await {
                    Ok(id) => id,
                    Err(e) if e.to_string().contains("advertise") => {
                        // No default route: advertise loopback (a single-node swarm).
                        let req = SwarmInitRequest {
                            listen_addr: Some("127.0.0.1:2377".into()),
                            advertise_addr: Some("127.0.0.1".into()),
                            ..Default::default()
                        };
                        self.docker()
                            .init_swarm(req)
                            .await
                            .map_err(|source| EngineError::Api { call: "swarm init", source })?
                    }
                    Err(source) => return Err(EngineError::Api { call: "swarm init", source }),
                };
                Ok(SwarmInfo { node_id: node_id.trim().trim_matches('"').to_string(), initialised: true })
            }
            LocalNodeState::INACTIVE | LocalNodeState::EMPTY => Err(not_manager("inactive".into())),
            LocalNodeState::PENDING => Err(not_manager(
                "pending: this node is still joining a swarm; wait, or `docker swarm leave --force` and retry".into(),
            )),
            LocalNodeState::LOCKED => {
                Err(not_manager("locked: unlock it with `docker swarm unlock` and the unlock key".into()))
            }
            LocalNodeState::ERROR => Err(not_manager(format!(
                "error: {}; fix it or `docker swarm leave --force` and retry",
                swarm.error.unwrap_or_default()
            ))),
        }
    }
}
