//! The desired state of one stack: exactly the objects a deploy must make exist, shaped like the
//! Docker Engine API's create requests (bollard-stubs models), keyed by their full Swarm name.

use bollard_stubs::models::{ConfigSpec, NetworkCreateRequest, SecretSpec, ServiceSpec, VolumeCreateRequest};
use std::collections::BTreeMap;

/// Label docker/cli puts on everything `docker stack deploy` creates; berth sets it too.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// Label marking an object as created and owned by berth (value: the stack name).
pub const LABEL_OWNER: &str = "io.berth.stack";

/// Everything a stack wants to exist. Names are full Swarm names (`<stack>_<name>` unless the
/// file gives an explicit `name:`). External objects are listed in `external_*` so the plan can
/// check they exist but never creates, changes or removes them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Desired {
    /// The stack (namespace) name.
    pub stack: String,
    pub networks: BTreeMap<String, NetworkCreateRequest>,
    pub volumes: BTreeMap<String, VolumeCreateRequest>,
    pub secrets: BTreeMap<String, SecretSpec>,
    pub configs: BTreeMap<String, ConfigSpec>,
    pub services: BTreeMap<String, ServiceSpec>,
    pub external_networks: Vec<String>,
    pub external_secrets: Vec<String>,
    pub external_configs: Vec<String>,
}
