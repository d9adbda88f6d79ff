//! What exists in the swarm now, as far as one stack is concerned: the objects labelled with its
//! namespace, plus the external objects it refers to. Shaped like `docker ... inspect` output so
//! that a JSON snapshot of real inspect output can stand in for a live engine in tests.
//!
//! Objects without the stack's `com.docker.stack.namespace` label may be included (external
//! networks, secrets, configs): the planner never changes or removes them, and it needs the
//! networks to map the network IDs the swarm stores in a service's `TaskTemplate.Networks` back
//! to names.

use bollard_stubs::models::{Config, Network, Secret, Service, Volume};
use std::collections::BTreeMap;

/// Observed objects keyed by their Swarm name (`Spec.Name`, or `Name` for networks/volumes).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Observed {
    /// Services, as `docker service inspect` (`GET /services/{id}`) returns them.
    pub services: BTreeMap<String, Service>,
    /// Networks, as `docker network inspect` returns them.
    pub networks: BTreeMap<String, Network>,
    /// Volumes, as `docker volume inspect` returns them.
    pub volumes: BTreeMap<String, Volume>,
    /// Secrets, as `docker secret inspect` returns them (the swarm never returns their data).
    pub secrets: BTreeMap<String, Secret>,
    /// Configs, as `docker config inspect` returns them (with their data).
    pub configs: BTreeMap<String, Config>,
}
