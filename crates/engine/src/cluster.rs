//! Clusters of SSH-reachable hosts: bring them to one swarm (`cluster up`) and manage its nodes
//! (`node ls | drain | rm | add | tidy`).
//!
//! Level-driven like a deploy: every host is observed (reachable? Docker there? in which swarm,
//! with which role and labels?), compared with the target's description, and only the
//! differences are acted on, so running `cluster up` again changes nothing and a host added to
//! the list is joined. Hosts in another swarm are refused, never taken over.
//!
//! Swarm settings berth chooses (documented in docs/cluster.md): the dispatcher heartbeat (default
//! 2 s, Docker's is 5 s) so that a dead node is noticed in seconds, and the listen address
//! `0.0.0.0:2377` with each host's SSH address advertised.

use crate::api;
use crate::{Engine, EngineError, SshTarget};
use berth_ssh::{HostAddr, Session, SshOptions};
use bollard::models::{
    LocalNodeState, Node, NodeSpec, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState, SwarmInitRequest,
    SwarmJoinRequest, SwarmSpec, SwarmSpecDispatcher, TaskState,
};
use bollard::query_parameters::{ListNodesOptions, ListTasksOptions, UpdateNodeOptions};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use bollard::models::NodeSpecAvailabilityEnum as Availability;

/// Label berth puts on each node: the target host it is.
pub const LABEL_HOST: &str = "io.berth.host";
/// Label on nodes that run the edge.
pub const LABEL_EDGE: &str = "io.berth.edge";

/// One host as the target describes it.
#[derive(Debug, Clone)]
pub struct HostPlan {
    pub addr: HostAddr,
    pub manager: bool,
    pub edge: bool,
    pub labels: BTreeMap<String, String>,
}

/// The whole target for `cluster up`.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    pub hosts: Vec<HostPlan>,
    /// Docker socket path on the hosts (`{host}` = the host).
    pub socket: String,
    pub options: SshOptions,
    /// Dispatcher heartbeat set at `swarm init` (and corrected later).
    pub heartbeat: Duration,
    /// Install Docker (the distribution's package) where it is missing.
    pub install: bool,
}

impl ClusterPlan {
    fn socket_on(&self, h: &HostAddr) -> String {
        self.socket.replace("{host}", &h.host)
    }
}

/// What `cluster up` did, host by host; `changes` is empty when nothing had to change.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClusterReport {
    pub changes: Vec<String>,
    pub nodes: Vec<ClusterNode>,
}

/// A swarm node, as `node ls` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterNode {
    pub id: String,
    pub hostname: String,
    /// The target host it is (`io.berth.host` label), if berth joined it.
    pub host: Option<String>,
    pub role: String,
    pub availability: String,
    pub state: String,
    /// `leader`, `reachable`, `unreachable` for managers.
    pub manager: Option<String>,
    pub addr: String,
    pub labels: BTreeMap<String, String>,
    /// Tasks that should be running on it.
    pub tasks: usize,
}

/// What one engine says about its swarm membership.
#[derive(Debug, Clone)]
struct Membership {
    state: LocalNodeState,
    node_id: String,
    cluster_id: Option<String>,
    manager: bool,
}

impl Engine {
    async fn membership(&self) -> Result<Membership, EngineError> {
        let info = self.docker().info().await.map_err(api("info"))?;
        let s = info.swarm.unwrap_or_default();
        Ok(Membership {
            state: s.local_node_state.unwrap_or(LocalNodeState::EMPTY),
            node_id: s.node_id.unwrap_or_default(),
            cluster_id: s.cluster.and_then(|c| c.id),
            manager: s.control_available == Some(true),
        })
    }

    /// Every node of the swarm (this engine must be a manager).
    pub async fn cluster_nodes(&self) -> Result<Vec<ClusterNode>, EngineError> {
        let nodes = self.docker().list_nodes(None::<ListNodesOptions>).await.map_err(api("list nodes"))?;
        let filters = HashMap::from([("desired-state".to_string(), vec!["running".to_string()])]);
        let tasks = self
            .docker()
            .list_tasks(Some(ListTasksOptions { filters: Some(filters) }))
            .await
            .map_err(api("list tasks"))?;
        let mut per_node: HashMap<String, usize> = HashMap::new();
        for t in tasks {
            if let Some(n) = t.node_id {
                *per_node.entry(n).or_default() += 1;
            }
        }
        let mut out: Vec<ClusterNode> = nodes.iter().map(|n| node_info(n, &per_node)).collect();
        out.sort_by(|a, b| (a.role != "manager", &a.hostname).cmp(&(b.role != "manager", &b.hostname)));
        Ok(out)
    }

    async fn node(&self, id: &str) -> Result<Node, EngineError> {
        self.docker().inspect_node(id).await.map_err(api("inspect node"))
    }

    /// Changes a node's spec (role, availability, labels) by `f`; no call when nothing changes.
    /// Returns whether it wrote.
    pub async fn update_node(&self, id: &str, f: impl FnOnce(&mut NodeSpec)) -> Result<bool, EngineError> {
        let node = self.node(id).await?;
        let old = node.spec.clone().unwrap_or_default();
        let mut spec = old.clone();
        f(&mut spec);
        if spec == old {
            return Ok(false);
        }
        let version = node.version.and_then(|v| v.index).unwrap_or_default() as i64;
        self.docker().update_node(id, spec, UpdateNodeOptions { version }).await.map_err(api("update node"))?;
        Ok(true)
    }

    /// Finds a node by ID, ID prefix, hostname or `io.berth.host` label.
    pub async fn find_node(&self, name: &str) -> Result<ClusterNode, EngineError> {
        let nodes = self.cluster_nodes().await?;
        let hits: Vec<&ClusterNode> = nodes
            .iter()
            .filter(|n| {
                n.id == name
                    || n.hostname == name
                    || n.host.as_deref() == Some(name)
                    || n.host.as_deref().is_some_and(|h| h.rsplit('@').next() == Some(name))
                    || (name.len() >= 6 && n.id.starts_with(name))
            })
            .collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::NotFound {
                what: "node",
                name: name.to_string(),
                suggestion: berth_spec::diag::did_you_mean(name, nodes.iter().map(|n| n.hostname.as_str()))
                    .map(str::to_string),
            }),
            _ => Err(EngineError::Refused {
                message: format!("`{name}` matches {} nodes", hits.len()),
                hint: Some("name the node by its ID (`berth node ls`)".into()),
            }),
        }
    }

    /// Sets a node to drain and waits until no task that should run is left on it and the
    /// services that had tasks there are back to their replica counts elsewhere.
    pub async fn drain_node(&self, id: &str, timeout: Duration) -> Result<bool, EngineError> {
        // How many running tasks each service must have elsewhere when done: all it runs now
        // (replicated tasks on the node are replaced; a global service's task there is not).
        let running = |t: &bollard::models::Task| {
            t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
                && t.desired_state == Some(TaskState::RUNNING)
        };
        let before = self.running_tasks().await?;
        let mut want: HashMap<String, usize> = HashMap::new();
        for t in before.iter().filter(|t| running(t)) {
            let replaced = t.node_id.as_deref() != Some(id) || t.slot.is_some();
            if replaced && let Some(svc) = &t.service_id {
                *want.entry(svc.clone()).or_default() += 1;
            }
        }
        let wrote = self.update_node(id, |s| s.availability = Some(NodeSpecAvailabilityEnum::DRAIN)).await?;
        let start = Instant::now();
        loop {
            let tasks = self.running_tasks().await?;
            let on_node = tasks.iter().filter(|t| t.node_id.as_deref() == Some(id)).count();
            let mut have: HashMap<&str, usize> = HashMap::new();
            for t in tasks.iter().filter(|t| running(t) && t.node_id.as_deref() != Some(id)) {
                if let Some(svc) = t.service_id.as_deref() {
                    *have.entry(svc).or_default() += 1;
                }
            }
            let short: usize =
                want.iter().map(|(svc, n)| n.saturating_sub(have.get(svc.as_str()).copied().unwrap_or(0))).sum();
            if on_node == 0 && short == 0 {
                return Ok(wrote);
            }
            if start.elapsed() > timeout {
                return Err(EngineError::Refused {
                    message: format!(
                        "node {id} still has {on_node} task(s) and {short} replacement(s) are not running after {} s",
                        timeout.as_secs()
                    ),
                    hint: Some("`berth status` shows which services cannot be placed elsewhere".into()),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Tasks whose desired state is running (on any node).
    pub(crate) async fn running_tasks(&self) -> Result<Vec<bollard::models::Task>, EngineError> {
        let filters = HashMap::from([("desired-state".to_string(), vec!["running".to_string()])]);
        self.docker().list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.map_err(api("list tasks"))
    }

    /// Removes a node from the swarm. A manager is demoted first, and only when the managers
    /// left keep a quorum; a node that is still up is drained first (and `leave` is asked of it
    /// when its engine is given). A down node is removed by force.
    pub async fn remove_node(&self, id: &str, drain_timeout: Duration) -> Result<Vec<String>, EngineError> {
        let nodes = self.cluster_nodes().await?;
        let Some(me) = nodes.iter().find(|n| n.id == id).cloned() else {
            return Err(EngineError::NotFound { what: "node", name: id.to_string(), suggestion: None });
        };
        let mut done = self.prepare_removal(&me, drain_timeout).await?;
        done.extend(self.delete_node_when_down(&me).await?);
        Ok(done)
    }

    /// Demotes (quorum permitting) and drains a node that is to be removed.
    async fn prepare_removal(&self, me: &ClusterNode, drain_timeout: Duration) -> Result<Vec<String>, EngineError> {
        let mut done = Vec::new();
        let nodes = self.cluster_nodes().await?;
        let id = me.id.as_str();
        if me.role == "manager" {
            let managers: Vec<&ClusterNode> = nodes.iter().filter(|n| n.role == "manager").collect();
            let reachable = managers.iter().filter(|n| n.manager.as_deref() != Some("unreachable")).count();
            let after = managers.len() - 1;
            let reachable_after = reachable - usize::from(me.manager.as_deref() != Some("unreachable"));
            if after == 0 || reachable_after < after / 2 + 1 {
                return Err(EngineError::Refused {
                    message: format!(
                        "removing manager {} would break the swarm's quorum ({reachable_after} of {after} managers reachable after)",
                        me.hostname
                    ),
                    hint: Some("add and promote another manager first (`berth cluster up` with more hosts)".into()),
                });
            }
            if me.manager.as_deref() == Some("leader") {
                return Err(EngineError::Refused {
                    message: format!("{} is the leader: connect through another manager to remove it", me.hostname),
                    hint: Some("put another manager first in the target's host list, or run from it".into()),
                });
            }
            self.update_node(id, |s| s.role = Some(NodeSpecRoleEnum::WORKER)).await?;
            done.push(format!("demoted {}", me.hostname));
        }
        if me.state == "ready" && self.drain_node(id, drain_timeout).await? {
            done.push(format!("drained {}", me.hostname));
        }
        Ok(done)
    }

    /// Removes a node from the swarm's list: a node that was up must have left (Swarm sees it
    /// down within a few heartbeats; waited for up to 30 s); a down node is removed by force.
    async fn delete_node_when_down(&self, me: &ClusterNode) -> Result<Vec<String>, EngineError> {
        let id = me.id.as_str();
        let mut done = Vec::new();
        let force = me.state != "ready";
        let start = Instant::now();
        loop {
            match self.docker().delete_node(id, Some(bollard::query_parameters::DeleteNodeOptions { force })).await {
                Ok(()) => break,
                Err(e) if start.elapsed() < Duration::from_secs(30) && e.to_string().contains("is not down") => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(EngineError::Api { call: "remove node", source: e }),
            }
        }
        done.push(format!("removed {}", me.hostname));
        Ok(done)
    }

    /// [`Engine::remove_node`], but a node that is still up is asked to leave the swarm over SSH
    /// (through `plan`'s connection settings) after it was drained, so no force is needed.
    pub async fn remove_node_via(
        &self,
        id: &str,
        drain_timeout: Duration,
        plan: &ClusterPlan,
    ) -> Result<Vec<String>, EngineError> {
        let node = self.find_node(id).await?;
        if node.state == "ready"
            && let Some(host) = node.host.as_deref().and_then(|h| h.parse::<HostAddr>().ok())
        {
            // Demote and drain first (remove_node does both), then leave, then remove.
            let mut steps = self.prepare_removal(&node, drain_timeout).await?;
            if leave_from_host(plan, &host).await.is_ok() {
                steps.push(format!("{} left the swarm", node.hostname));
            }
            steps.extend(self.delete_node_when_down(&node).await?);
            return Ok(steps);
        }
        self.remove_node(id, drain_timeout).await
    }

    /// Removes every node that is down; a down manager is demoted first when the managers left
    /// keep a quorum (else it stays, with a note).
    pub async fn tidy(&self) -> Result<Vec<String>, EngineError> {
        let mut done = Vec::new();
        let nodes = self.cluster_nodes().await?;
        for n in down(&nodes) {
            match self.remove_node(&n.id, Duration::from_secs(0)).await {
                Ok(steps) => done.extend(steps),
                Err(EngineError::Refused { message, .. }) => done.push(format!("kept {}: {message}", n.hostname)),
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Leaves the swarm this engine is part of.
    pub async fn leave_swarm(&self, force: bool) -> Result<(), EngineError> {
        self.docker()
            .leave_swarm(Some(bollard::query_parameters::LeaveSwarmOptions { force }))
            .await
            .map_err(api("swarm leave"))
    }
}

fn node_info(n: &Node, per_node: &HashMap<String, usize>) -> ClusterNode {
    let spec = n.spec.clone().unwrap_or_default();
    let labels: BTreeMap<String, String> = spec.labels.clone().unwrap_or_default().into_iter().collect();
    let id = n.id.clone().unwrap_or_default();
    ClusterNode {
        tasks: per_node.get(&id).copied().unwrap_or(0),
        id,
        hostname: n.description.as_ref().and_then(|d| d.hostname.clone()).unwrap_or_default(),
        host: labels.get(LABEL_HOST).cloned(),
        role: spec.role.map(|r| r.to_string()).unwrap_or_default(),
        availability: spec.availability.map(|a| a.to_string()).unwrap_or_default(),
        state: n.status.as_ref().and_then(|s| s.state).map(|s| s.to_string()).unwrap_or_default(),
        manager: n.manager_status.as_ref().map(|m| {
            if m.leader == Some(true) {
                "leader".to_string()
            } else {
                m.reachability.map(|r| r.to_string()).unwrap_or_default()
            }
        }),
        addr: n.status.as_ref().and_then(|s| s.addr.clone()).unwrap_or_default(),
        labels,
    }
}

/// Makes sure Docker answers on `host`, installing the distribution's package when asked.
async fn engine_on(plan: &ClusterPlan, host: &HostAddr, changes: &mut Vec<String>) -> Result<Engine, EngineError> {
    let socket = plan.socket_on(host);
    match Engine::connect_ssh(host, &socket, &plan.options).await {
        Ok(e) => return Ok(e),
        Err(EngineError::Ssh(berth_ssh::SshError::Forward { .. })) if plan.install => {}
        Err(e) => return Err(e),
    }
    let session = Session::connect(host, &plan.options).await?;
    // As root, or through passwordless sudo for another user (`-n`: fail rather than ask), who
    // then joins the `docker` group so that the next SSH session may open the socket.
    let script = "set -e; S=; [ \"$(id -u)\" = 0 ] || S='sudo -n'; \
        if ! command -v dockerd >/dev/null 2>&1; then \
        if command -v apt-get >/dev/null 2>&1; then $S apt-get update -qq; $S env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; \
        elif command -v dnf >/dev/null 2>&1; then $S dnf install -y -q docker; \
        elif command -v yum >/dev/null 2>&1; then $S yum install -y -q docker; \
        else echo 'no apt-get, dnf or yum: install Docker by hand' >&2; exit 3; fi; fi; \
        if command -v systemctl >/dev/null 2>&1 && systemctl list-units >/dev/null 2>&1; then $S systemctl enable --now docker; \
        elif ! $S docker info >/dev/null 2>&1; then $S sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'; sleep 3; fi; \
        if [ -n \"$S\" ]; then $S usermod -aG docker \"$(id -un)\"; fi";
    let out = session.exec(script, None).await?;
    session.close().await;
    if out.code != 0 {
        return Err(EngineError::Refused {
            message: format!(
                "{host}: installing Docker failed (exit {}): {}",
                out.code,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            hint: Some("install Docker on the host by hand (the distribution's docker.io package), then retry".into()),
        });
    }
    changes.push(format!("{host}: installed and started Docker"));
    let start = Instant::now();
    loop {
        match Engine::connect_ssh(host, &socket, &plan.options).await {
            Ok(e) => return Ok(e),
            Err(e) if start.elapsed() > Duration::from_secs(30) => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The address a host advertises to the swarm: its SSH host (an IP or a name that resolves).
fn advertise(h: &HostAddr) -> String {
    h.host.clone()
}

fn heartbeat_nanos(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

/// `cluster up`: see the module doc.
pub async fn cluster_up(plan: &ClusterPlan, on: &mut (dyn FnMut(&str) + Send)) -> Result<ClusterReport, EngineError> {
    let mut report = ClusterReport::default();
    if !plan.hosts.iter().any(|h| h.manager) {
        return Err(EngineError::Refused {
            message: "the target has no manager".into(),
            hint: Some("set `managers:` to 1 or more".into()),
        });
    }
    // 1. Observe every host, all at once (installing Docker takes half a minute a host).
    for h in &plan.hosts {
        on(&format!("{}: checking", h.addr));
    }
    let observed = futures_util::future::try_join_all(plan.hosts.iter().map(|h| async move {
        let mut changes = Vec::new();
        let e = engine_on(plan, &h.addr, &mut changes).await?;
        let m = e.membership().await?;
        Ok::<_, EngineError>((h.clone(), e, m, changes))
    }))
    .await?;
    let mut engines: Vec<(HostPlan, Engine, Membership)> = Vec::new();
    for (h, e, m, changes) in observed {
        report.changes.extend(changes);
        engines.push((h, e, m));
    }
    // 2. The swarm: the one our managers are in (there must be at most one).
    let clusters: Vec<String> = {
        let mut c: Vec<String> = engines.iter().filter_map(|(_, _, m)| m.cluster_id.clone()).collect();
        c.sort();
        c.dedup();
        c
    };
    let mut leader_idx =
        engines.iter().position(|(h, _, m)| h.manager && m.state == LocalNodeState::ACTIVE && m.manager);
    if clusters.len() > 1 {
        let members: Vec<String> = engines
            .iter()
            .filter(|(_, _, m)| m.state == LocalNodeState::ACTIVE)
            .map(|(h, e, _)| format!("{} ({})", h.addr, e.address()))
            .collect();
        return Err(EngineError::Refused {
            message: format!("the hosts are in {} different swarms: {}", clusters.len(), members.join(", ")),
            hint: Some(
                "berth never takes a host out of a swarm it did not make: `docker swarm leave` on the odd ones".into(),
            ),
        });
    }
    for (h, _, m) in &engines {
        if m.state == LocalNodeState::ACTIVE && leader_idx.is_none() {
            return Err(EngineError::Refused {
                message: format!("{} is in a swarm that none of the target's managers manages", h.addr),
                hint: Some("`docker swarm leave --force` on it, or list one of that swarm's managers first".into()),
            });
        }
        if matches!(m.state, LocalNodeState::PENDING | LocalNodeState::ERROR | LocalNodeState::LOCKED) {
            return Err(EngineError::Refused {
                message: format!("{}: swarm state is {}", h.addr, m.state),
                hint: Some("fix it on the host (`docker info`), or `docker swarm leave --force`, then retry".into()),
            });
        }
    }
    let heartbeat = heartbeat_nanos(plan.heartbeat);
    if leader_idx.is_none() {
        let i = engines.iter().position(|(h, _, _)| h.manager).expect("checked above");
        let (h, e, m) = &mut engines[i];
        let req = SwarmInitRequest {
            listen_addr: Some("0.0.0.0:2377".into()),
            advertise_addr: Some(advertise(&h.addr)),
            spec: Some(SwarmSpec {
                dispatcher: Some(SwarmSpecDispatcher { heartbeat_period: Some(heartbeat) }),
                ..Default::default()
            }),
            ..Default::default()
        };
        e.docker().init_swarm(req).await.map_err(api("swarm init"))?;
        *m = e.membership().await?;
        report.changes.push(format!("{}: initialised the swarm", h.addr));
        on(&format!("{}: initialised the swarm", h.addr));
        leader_idx = Some(i);
    }
    let li = leader_idx.expect("set above");
    let leader = engines[li].1.clone();
    // Swarm settings berth owns: the heartbeat.
    let swarm = leader.docker().inspect_swarm().await.map_err(api("inspect swarm"))?;
    let current = swarm.spec.as_ref().and_then(|s| s.dispatcher.as_ref()).and_then(|d| d.heartbeat_period);
    if current != Some(heartbeat) {
        let mut spec = swarm.spec.clone().unwrap_or_default();
        spec.dispatcher = Some(SwarmSpecDispatcher { heartbeat_period: Some(heartbeat) });
        let version = swarm.version.as_ref().and_then(|v| v.index).unwrap_or_default() as i64;
        leader
            .docker()
            .update_swarm(spec, bollard::query_parameters::UpdateSwarmOptions { version, ..Default::default() })
            .await
            .map_err(api("update swarm"))?;
        report.changes.push(format!("swarm: dispatcher heartbeat {} s", plan.heartbeat.as_secs_f64()));
    }
    let tokens = swarm.join_tokens.clone().unwrap_or_default();
    let leader_addr = format!("{}:2377", advertise(&engines[li].0.addr));
    // 3. Join the hosts that are not in it.
    for (h, e, m) in engines.iter_mut() {
        if m.state == LocalNodeState::ACTIVE {
            continue;
        }
        let token = if h.manager { tokens.manager.clone() } else { tokens.worker.clone() }.unwrap_or_default();
        let req = SwarmJoinRequest {
            listen_addr: Some("0.0.0.0:2377".into()),
            advertise_addr: Some(advertise(&h.addr)),
            remote_addrs: Some(vec![leader_addr.clone()]),
            join_token: Some(token),
            ..Default::default()
        };
        e.docker().join_swarm(req).await.map_err(api("swarm join"))?;
        *m = e.membership().await?;
        let role = if h.manager { "manager" } else { "worker" };
        report.changes.push(format!("{}: joined as {role}", h.addr));
        on(&format!("{}: joined as {role}", h.addr));
    }
    // 4. Roles and labels, through the leader.
    for (h, _, m) in &engines {
        let want_role = if h.manager { NodeSpecRoleEnum::MANAGER } else { NodeSpecRoleEnum::WORKER };
        let mut labels = h.labels.clone();
        labels.insert(LABEL_HOST.into(), h.addr.to_string());
        if h.edge {
            labels.insert(LABEL_EDGE.into(), "true".into());
        }
        let mut changed_role = false;
        let wrote = leader
            .update_node(&m.node_id, |s| {
                if s.role != Some(want_role) {
                    changed_role = true;
                    s.role = Some(want_role);
                }
                let l = s.labels.get_or_insert_with(HashMap::new);
                l.remove(LABEL_EDGE);
                for (k, v) in &labels {
                    l.insert(k.clone(), v.clone());
                }
            })
            .await?;
        if wrote {
            let what = if changed_role { format!("role {want_role}, labels") } else { "labels".to_string() };
            report.changes.push(format!("{}: set {what}", h.addr));
        }
    }
    // 5. berth's own images (the edge's, the swarm registry's forwarders'), which no registry
    // holds: every host gets those the swarm's services run, so a host that joins runs them too.
    for image in leader.own_images_in_use().await? {
        for (h, e, _) in &engines {
            if e.address() != leader.address() && leader.copy_image(e, &image).await? {
                report.changes.push(format!("{}: copied {image}", h.addr));
                on(&format!("{}: copied {image}", h.addr));
            }
        }
    }
    report.nodes = leader.cluster_nodes().await?;
    Ok(report)
}

impl Engine {
    /// The images of berth's own (`berth/edge:*`) that the swarm's services run and this engine
    /// has.
    pub async fn own_images_in_use(&self) -> Result<Vec<String>, EngineError> {
        let services = self.docker().list_services(None).await.map_err(api("list services"))?;
        let prefix = format!("{}:", crate::edge_image::EDGE_REPOSITORY);
        let mut images: Vec<String> = services
            .iter()
            .filter_map(|s| {
                let c = s.spec.as_ref()?.task_template.as_ref()?.container_spec.as_ref()?;
                let image = c.image.as_deref()?;
                // Pinned by ID: the name is in the container label (`berth_plan::image_pin`).
                match image.strip_prefix("sha256:") {
                    Some(_) => c.labels.as_ref()?.get(berth_plan::image_pin::LABEL_IMAGE).cloned(),
                    None => Some(image.split('@').next().unwrap_or_default().to_string()),
                }
            })
            .filter(|i| i.starts_with(&prefix))
            .collect();
        images.sort();
        images.dedup();
        let mut have = Vec::new();
        for i in images {
            if self.docker().inspect_image(&i).await.is_ok() {
                have.push(i);
            }
        }
        Ok(have)
    }
}

/// The engine of the target's first manager that answers as a manager (for node commands).
pub async fn manager_of(t: &SshTarget) -> Result<Engine, EngineError> {
    let mut last = None;
    for h in &t.managers {
        match Engine::connect_ssh(h, &t.socket_on(h), &t.options).await {
            Ok(e) => match e.membership().await {
                Ok(m) if m.manager => return Ok(e),
                Ok(_) => {
                    last = Some(EngineError::NotManager {
                        address: e.address().to_string(),
                        state: "not a manager".into(),
                    })
                }
                Err(err) => last = Some(err),
            },
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| EngineError::Refused { message: "the target names no manager".into(), hint: None }))
}

impl Engine {
    /// Copies `image` from this engine to `to` (`docker save | docker load`, streamed), unless
    /// `to` has the same image ID already. Returns whether it copied.
    pub async fn copy_image(&self, to: &Engine, image: &str) -> Result<bool, EngineError> {
        let here = self.docker().inspect_image(image).await.map_err(api("inspect image"))?;
        if let Ok(there) = to.docker().inspect_image(image).await
            && there.id == here.id
        {
            return Ok(false);
        }
        use futures_util::StreamExt;
        let tar = self.docker().export_image(image);
        let mut load = to.docker().import_image_stream(
            bollard::query_parameters::ImportImageOptions { quiet: true, ..Default::default() },
            tar,
            None,
        );
        while let Some(item) = load.next().await {
            item.map_err(api("load image"))?;
        }
        Ok(true)
    }
}

impl Engine {
    /// Spreads the stack's replicated services again: Swarm never moves a task back to a node
    /// that returned (or joined), so after a node loss the survivors carry everything. A
    /// replicated service without placement constraints is rebalanced when some active ready node
    /// runs none of its tasks while another runs two or more. It is scaled up by the number of
    /// empty nodes (the scheduler places the new tasks there) and back down (Swarm removes tasks
    /// from the nodes that run the most of them), waiting for convergence each time; the spec
    /// ends as it was, and the edge retries requests of the tasks that stop on another task.
    /// Returns the services it rebalanced.
    pub async fn rebalance(
        &self,
        stack: &str,
        timeout: Duration,
        on: &mut (dyn FnMut(crate::Event) + Send),
    ) -> Result<Vec<String>, EngineError> {
        let nodes: Vec<String> = self
            .cluster_nodes()
            .await?
            .into_iter()
            .filter(|n| n.state == "ready" && n.availability == "active")
            .map(|n| n.id)
            .collect();
        if nodes.len() < 2 {
            return Ok(Vec::new());
        }
        let tasks = self.running_tasks().await?;
        let mut todo = Vec::new();
        for svc in self.stack_services(stack).await? {
            let Some(spec) = svc.spec.clone() else { continue };
            let Some(replicas) = spec.mode.as_ref().and_then(|m| m.replicated.as_ref()).and_then(|r| r.replicas) else {
                continue;
            };
            let constrained = spec
                .task_template
                .as_ref()
                .and_then(|t| t.placement.as_ref())
                .and_then(|p| p.constraints.as_ref())
                .is_some_and(|c| !c.is_empty());
            if constrained || replicas < 2 {
                continue;
            }
            let id = svc.id.clone().unwrap_or_default();
            let mut per_node: HashMap<&str, usize> = nodes.iter().map(|n| (n.as_str(), 0)).collect();
            for t in tasks.iter().filter(|t| t.service_id.as_deref() == Some(id.as_str())) {
                if let Some(c) = t.node_id.as_deref().and_then(|n| per_node.get_mut(n)) {
                    *c += 1;
                }
            }
            let (min, max) = (per_node.values().min().copied(), per_node.values().max().copied());
            if min == Some(0) && max.is_some_and(|m| m >= 2) {
                let empty = per_node.values().filter(|c| **c == 0).count();
                todo.push((id, spec, svc.version.and_then(|v| v.index).unwrap_or_default(), empty));
            }
        }
        let mut names = Vec::new();
        for (id, spec, _version, empty) in todo {
            let name = spec.name.clone().unwrap_or_default();
            let replicas = spec.mode.as_ref().and_then(|m| m.replicated.as_ref()).and_then(|r| r.replicas).unwrap_or(1);
            on(crate::Event::Message(format!(
                "rebalance {name}: {empty} node(s) without a task; scaling {replicas} → {} → {replicas}",
                replicas + empty as i64
            )));
            // Up: the scheduler puts the new tasks on the emptiest nodes. Down: Swarm removes
            // tasks from the nodes that run the most of them. The spec ends as it was.
            for (n, wait) in [(replicas + empty as i64, true), (replicas, true)] {
                let svc = self.docker().inspect_service(&id, None).await.map_err(api("inspect service"))?;
                let mut spec = svc.spec.clone().unwrap_or_default();
                if let Some(r) = spec.mode.as_mut().and_then(|m| m.replicated.as_mut()) {
                    r.replicas = Some(n);
                }
                let version = svc.version.and_then(|v| v.index).unwrap_or_default();
                self.docker()
                    .update_service(
                        &id,
                        spec,
                        bollard::query_parameters::UpdateServiceOptions {
                            version: version as i32,
                            ..Default::default()
                        },
                        None,
                    )
                    .await
                    .map_err(api("update service"))?;
                if wait {
                    let since = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos() as i128)
                        .unwrap_or(0);
                    self.wait_converged(stack, std::slice::from_ref(&name), since, timeout, on)
                        .await
                        .map_err(|f| EngineError::Refused { message: f.to_string(), hint: f.hint() })?;
                }
            }
            names.push(name);
        }
        Ok(names)
    }
}

impl Engine {
    /// Makes sure exactly one node carries the label that pins `volume` ([`berth_plan::pin`]):
    /// kept where it is; else the node that runs a task of `service` now (the data is there);
    /// else the leader. Returns the node's hostname and whether the pin is new: berth labelled
    /// the node just now, or the label was there (the target's `labels:` set it) but the service
    /// has no task yet — either way its data is about to be created on that node, which the
    /// operator is told once.
    pub async fn pin_volume(&self, service: &str, volume: &str) -> Result<(String, bool), EngineError> {
        let label = berth_plan::pin::label_for(volume);
        let nodes = self.cluster_nodes().await?;
        let filters = HashMap::from([
            ("service".to_string(), vec![service.to_string()]),
            ("desired-state".to_string(), vec!["running".to_string()]),
        ]);
        let tasks =
            self.docker().list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.unwrap_or_default();
        if let Some(n) = nodes.iter().find(|n| n.labels.get(&label).map(String::as_str) == Some("true")) {
            return Ok((n.hostname.clone(), tasks.is_empty()));
        }
        let holder = tasks
            .iter()
            .filter_map(|t| t.node_id.as_deref())
            .find_map(|id| nodes.iter().find(|n| n.id == id))
            .or_else(|| nodes.iter().find(|n| n.manager.as_deref() == Some("leader")))
            .ok_or_else(|| EngineError::Refused {
                message: format!("no node to keep volume {volume} on"),
                hint: Some("`berth node ls`".into()),
            })?;
        self.update_node(&holder.id, |s| {
            s.labels.get_or_insert_with(HashMap::new).insert(label.clone(), "true".into());
        })
        .await?;
        Ok((holder.hostname.clone(), true))
    }
}

/// Copies images this engine has (built by berth, not in a registry) to every other host of the
/// target, so a task can start on any node. Hosts that cannot be reached are skipped (a node that
/// is down gets the images on the next deploy); returns what was copied where.
pub async fn distribute_images(
    from: &Engine,
    target: &SshTarget,
    images: &[String],
    on: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<String>, EngineError> {
    let mut copied = Vec::new();
    let me = from.address().to_string();
    for host in &target.hosts {
        let socket = target.socket_on(host);
        if me == format!("ssh://{host}{socket}") {
            continue;
        }
        let Ok(to) = Engine::connect_ssh(host, &socket, &target.options).await else {
            on(&format!("images: {host} is not reachable, skipped"));
            continue;
        };
        for image in images {
            if from.copy_image(&to, image).await? {
                on(&format!("images: copied {image} to {host}"));
                copied.push(format!("{image} → {host}"));
            }
        }
    }
    Ok(copied)
}

/// `node rm` of a host that is still reachable: it leaves the swarm itself after the managers
/// demoted and drained it (so Swarm can remove it without force).
pub async fn leave_from_host(plan: &ClusterPlan, host: &HostAddr) -> Result<(), EngineError> {
    let e = Engine::connect_ssh(host, &plan.socket_on(host), &plan.options).await?;
    e.leave_swarm(true).await
}

/// Node states for tests and `tidy`: nodes that are down.
pub fn down(nodes: &[ClusterNode]) -> Vec<&ClusterNode> {
    nodes.iter().filter(|n| n.state == NodeState::DOWN.to_string()).collect()
}

/// Nodes whose state the leader does not know: right after a leader change every node is
/// `unknown` until it reports to the new leader (seconds; a dead one turns `down`). The scheduler
/// places nothing on them, so a deploy in that window meets "no suitable node".
pub fn unknown(nodes: &[ClusterNode]) -> Vec<&ClusterNode> {
    nodes.iter().filter(|n| n.state == NodeState::UNKNOWN.to_string()).collect()
}

impl Engine {
    /// Waits (at most `timeout`) until no node of the swarm is in state `unknown`, so that a deploy
    /// right after a leader change is not scheduled against a swarm whose nodes have not reported
    /// yet. Returns how long it waited; gives up silently at the timeout (the deploy then reports
    /// what it meets).
    pub async fn wait_nodes_known(&self, timeout: Duration) -> Duration {
        let start = Instant::now();
        while start.elapsed() < timeout {
            match self.cluster_nodes().await {
                Ok(n) if unknown(&n).is_empty() => break,
                Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        start.elapsed()
    }
}

/// Keeps an `Arc<Session>` alive beside an engine (helper for callers that exec on hosts).
pub type SharedSession = Arc<Session>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (deploy after leader loss, once seen failing): right after a leader change the
    /// nodes are `unknown` until they report; a deploy waits for them rather than meeting "no
    /// suitable node".
    #[test]
    fn deploy_after_leader_loss_waits_for_nodes_in_state_unknown() {
        let node =
            |name: &str, state: &str| ClusterNode { hostname: name.into(), state: state.into(), ..Default::default() };
        let nodes = [node("n1", "down"), node("n2", "ready"), node("n4", "unknown"), node("n5", "unknown")];
        let names: Vec<&str> = unknown(&nodes).iter().map(|n| n.hostname.as_str()).collect();
        assert_eq!(names, ["n4", "n5"]);
        assert!(unknown(&nodes[..2]).is_empty(), "down and ready nodes are known");
    }
}
