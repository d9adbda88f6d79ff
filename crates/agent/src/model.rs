//! What the agent sees ([`Observed`]) and what it may do ([`Action`]): plain data, so that
//! [`crate::decide`] is a pure function and its decisions can be snapshot-tested.

use berth_aws::asg::Group;
use berth_aws::discovery::{Member, Role, SwarmState};
use berth_engine::cluster::ClusterNode;
use serde::Serialize;
use std::collections::BTreeMap;

/// The agent's fixed settings (its command line).
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub role: Role,
    /// The auto-scaling group this instance belongs to (cluster mode).
    pub group: Option<String>,
    /// Route53 upkeep: the hosted zone and the names whose A records list the edge nodes.
    pub hosted_zone_id: Option<String>,
    pub domains: Vec<String>,
    /// TTL of the A records; a leaving edge node waits this long after its notice before it leaves.
    pub dns_ttl: u64,
}

/// This instance, from the instance metadata service (or overrides).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Me {
    pub instance_id: String,
    pub private_ip: String,
    pub public_ip: String,
    pub zone: String,
    /// `autoscaling/target-lifecycle-state` (`InService`, `Terminated`, ...), when known.
    pub target_lifecycle_state: Option<String>,
    /// SSH host public keys (`type base64`), published in the member record and `state.json`.
    pub ssh_host_keys: Vec<String>,
}

/// The local engine's swarm membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Local {
    /// `inactive`, `pending`, `active`, `error`, `locked`.
    pub state: String,
    pub node_id: String,
    pub swarm_id: String,
    /// The engine is a manager (its control API answers).
    pub manager: bool,
}

impl Local {
    pub fn active(&self) -> bool {
        self.state == "active"
    }
    pub fn inactive(&self) -> bool {
        self.state == "inactive" || self.state.is_empty()
    }
}

/// Whether the join tokens in S3 are there, and (seen by the leader) the swarm's current ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokens {
    Missing,
    /// Present; the leader found they differ from the swarm's (rotated).
    Stale,
    Present,
}

/// Everything one round of the agent observed.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    /// Unix time in seconds.
    pub now: u64,
    pub settings: Settings,
    pub me: Me,
    pub local: Local,
    /// `swarm/state.json`.
    pub published: Option<SwarmState>,
    pub tokens: Tokens,
    /// Private IPs of the published managers whose swarm port (2377) answered.
    pub reachable: Vec<String>,
    /// Member records in S3 (the leader reads all; others at least their own).
    pub members: Vec<Member>,
    /// The stack's auto-scaling groups and their instances (`None`: not looked at this round, or
    /// the call failed: nothing is removed on missing information).
    pub groups: Option<Vec<Group>>,
    /// The swarm's nodes, when this engine is a manager.
    pub nodes: Option<Vec<ClusterNode>>,
    /// Tasks meant to run that are not running yet (or not yet created: replicas short of the
    /// service's count), swarm-wide (manager only).
    pub pending_tasks: usize,
    /// Current A records of the domains (leader with a hosted zone only).
    pub records: Option<BTreeMap<String, Vec<String>>>,
    /// berth's services whose stored pull credentials for the account's ECR registry are not the
    /// agent's current token (leader only; the token is fetched with the instance role every few
    /// hours and never part of an observation).
    #[serde(default)]
    pub stale_registry_auth: Vec<String>,
}

/// One step. The loop carries the actions of a round out in order and stops at the first that
/// fails (the next round observes again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// `swarm init`, advertising the private IP.
    InitSwarm { advertise: String },
    /// `swarm join` with the role's token from S3.
    Join { role: Role, remotes: Vec<String>, advertise: String },
    /// Write this instance's member record.
    PublishMember { member: Member },
    /// Write the swarm's join tokens to S3 (leader).
    PublishTokens,
    /// Write `swarm/state.json` (leader; `updated_at` is set when written).
    PublishState { state: SwarmState },
    /// Set labels on a node (leader).
    LabelNode { node_id: String, labels: BTreeMap<String, String> },
    /// Make a node a manager (leader; an instance of the manager group that joined as a worker).
    Promote { node_id: String },
    /// Set a node to drain (leader; the node's instance is leaving).
    Drain { node_id: String, instance_id: String },
    /// Make a manager node a worker (before it is removed or leaves).
    Demote { node_id: String },
    /// Remove a down node from the swarm (leader).
    RemoveNode { node_id: String, hostname: String },
    /// Set the A records of the domains (leader).
    UpsertRecords { zone: String, ttl: u64, records: BTreeMap<String, Vec<String>> },
    /// `swarm leave` on this engine.
    Leave,
    /// Send the swarm a fresh ECR token for these services' pulls (leader; a service label
    /// change: no task restarts).
    RefreshRegistryAuth { services: Vec<String> },
    /// Tell the auto-scaling group the instance may terminate now.
    CompleteLifecycleAction { group: String, hook: String, instance_id: String },
    /// Nothing to do until something changes; the reason is logged when it changes.
    Wait { reason: String },
}

/// Node label: the instance a node runs on.
pub const LABEL_INSTANCE: &str = "io.berth.instance";
/// Node label: the instance's availability zone.
pub const LABEL_ZONE: &str = "io.berth.zone";
