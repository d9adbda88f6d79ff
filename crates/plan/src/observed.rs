//! What exists in the swarm now, as far as one stack is concerned: the objects labelled with its
//! namespace, plus the external objects it refers to. Shaped like `docker ... inspect` output so
//! that a JSON snapshot of real inspect output can stand in for a live engine in tests.

use bollard_stubs::models::{Config, Network, Secret, Service, Volume};
use std::collections::BTreeMap;

/// Observed objects keyed by their Swarm name (`Spec.Name`, or `Name` for networks/volumes).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Observed {
    pub services: BTreeMap<String, Service>,
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub secrets: BTreeMap<String, Secret>,
    pub configs: BTreeMap<String, Config>,
}
