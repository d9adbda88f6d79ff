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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Desired {
    /// The stack (namespace) name.
    pub stack: String,
    /// Networks to create: those the services use (`<stack>_default`, overlay, when a service
    /// names none), driver defaulted to `overlay` like `docker stack deploy`.
    pub networks: BTreeMap<String, NetworkCreateRequest>,
    /// Volumes to create. [`crate::convert::desired`] leaves this empty: `docker stack deploy`
    /// creates no volumes, each node creates a mount's volume from its `VolumeOptions`.
    pub volumes: BTreeMap<String, VolumeCreateRequest>,
    /// Secrets to create (data base64), every non-external secret of the file.
    pub secrets: BTreeMap<String, SecretSpec>,
    /// Configs to create (data base64), every non-external config of the file.
    pub configs: BTreeMap<String, ConfigSpec>,
    /// Service specs by full name. Secret/config references carry names only: the engine fills
    /// in the IDs before creating ([`crate::convert::resolve_references`]).
    pub services: BTreeMap<String, ServiceSpec>,
    /// External networks the services use: must exist (swarm-scoped) before deploying.
    pub external_networks: Vec<String>,
    /// External secrets the services reference: must exist before deploying.
    pub external_secrets: Vec<String>,
    /// External configs the services reference (incl. credential specs): must exist before deploying.
    pub external_configs: Vec<String>,
}

impl Desired {
    /// The same state with every secret's value removed: what a release record may store. A
    /// rollback to it finds the secrets by name (content-addressed, so they still hold the values).
    pub fn without_secret_data(&self) -> Desired {
        let mut d = self.clone();
        for s in d.secrets.values_mut() {
            s.data = None;
        }
        d
    }
}
