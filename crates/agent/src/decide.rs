//! The agent's decisions: `decide(&Observed) -> Vec<Action>`. Pure (no I/O, no clock: the time is
//! in [`Observed::now`]), level-driven: it looks only at what is, never at what happened before,
//! so the agent may be killed and restarted at any point and the next round carries on.
//!
//! One round, in order:
//! 1. **Membership.** Not in a swarm: join through the managers `swarm/state.json` names that
//!    answer (with the role's token from S3); when none answers, the manager with the lowest
//!    instance ID among its group's pending/in-service instances initialises the swarm; everyone
//!    else waits. In a swarm: keep this instance's member record current.
//! 2. **Leader duties** (only the swarm's leader): publish the join tokens and `state.json`
//!    (managers that are ready, reachable and not leaving), label nodes with their instance and
//!    zone, promote manager-group instances that joined as workers, drain the nodes of leaving
//!    instances, remove down nodes whose instance is no longer in any group (a manager is demoted
//!    first, and only when the managers left keep a quorum), keep the Route53 A records on the
//!    managers' public addresses, send the swarm a fresh ECR token for the services whose stored
//!    pull credentials are older than the agent's.
//! 3. **Leaving** (a termination notice: the lifecycle state is `Terminated`/`Terminating:*`):
//!    announce it in the member record → wait until the leader drained the node and its tasks run
//!    elsewhere → (managers) wait out the DNS TTL, then wait until every other manager is ready
//!    and reachable and no lower-ID manager is leaving, then demote → leave → complete the
//!    lifecycle action → mark the member record done.

use crate::model::{Action, LABEL_INSTANCE, LABEL_ZONE, Observed, Tokens};
use berth_aws::discovery::{ManagerEntry, Member, Role, SwarmState};
use berth_engine::cluster::ClusterNode;
use std::collections::{BTreeMap, BTreeSet};

/// The swarm port managers listen on.
pub const SWARM_PORT: u16 = 2377;

/// What to do this round (see the module doc).
pub fn decide(o: &Observed) -> Vec<Action> {
    let mut out = Vec::new();
    let current = o.members.iter().find(|m| m.instance_id == o.me.instance_id);
    if current.is_some_and(|m| m.done) {
        return vec![wait("this instance left the swarm and completed its lifecycle action")];
    }
    let terminating = terminating(o);
    let member = desired_member(o, current, terminating);
    let state = o.local.state.as_str();
    if o.local.inactive() {
        if terminating {
            // Never joined, or left already: let the group go on.
            out.extend(complete_lifecycle(o));
            out.push(Action::PublishMember { member: Member { done: true, ..member } });
            return out;
        }
        join_or_init(o, &mut out);
        return out;
    }
    if !o.local.active() {
        out.push(wait(&format!("the local swarm state is `{state}`")));
        return out;
    }
    if current != Some(&member) {
        out.push(Action::PublishMember { member: member.clone() });
    }
    let members: Vec<Member> = o
        .members
        .iter()
        .filter(|m| m.instance_id != member.instance_id)
        .cloned()
        .chain(std::iter::once(member.clone()))
        .collect();
    if is_leader(o) {
        leader(o, &members, &mut out);
    }
    if terminating {
        leave(o, &member, &members, &mut out);
    }
    out
}

fn wait(reason: &str) -> Action {
    Action::Wait { reason: reason.to_string() }
}

/// A termination notice: the metadata service's target lifecycle state, or the group's state.
pub fn terminating(o: &Observed) -> bool {
    o.me.target_lifecycle_state.as_deref() == Some("Terminated")
        || o.groups
            .iter()
            .flatten()
            .flat_map(|g| &g.instances)
            .any(|i| i.instance_id == o.me.instance_id && i.terminating())
}

fn is_leader(o: &Observed) -> bool {
    o.local.manager
        && o.nodes.iter().flatten().any(|n| n.id == o.local.node_id && n.manager.as_deref() == Some("leader"))
}

/// This instance's member record as it should be.
fn desired_member(o: &Observed, current: Option<&Member>, terminating: bool) -> Member {
    let node_id =
        if o.local.active() { o.local.node_id.clone() } else { current.map(|m| m.node_id.clone()).unwrap_or_default() };
    let leaving_since = current.and_then(|m| m.leaving_since).or(terminating.then_some(o.now));
    Member {
        instance_id: o.me.instance_id.clone(),
        role: Some(o.settings.role),
        node_id,
        private_ip: o.me.private_ip.clone(),
        public_ip: o.me.public_ip.clone(),
        zone: o.me.zone.clone(),
        leaving_since,
        done: false,
        ssh_host_keys: o.me.ssh_host_keys.clone(),
    }
}

fn join_or_init(o: &Observed, out: &mut Vec<Action>) {
    let reachable: Vec<&ManagerEntry> = o
        .published
        .iter()
        .flat_map(|s| &s.managers)
        .filter(|m| o.reachable.contains(&m.private_ip) && m.instance_id != o.me.instance_id)
        .collect();
    if !reachable.is_empty() {
        if o.tokens == Tokens::Missing {
            out.push(wait("the swarm's managers answer but its join tokens are not in S3 yet"));
            return;
        }
        out.push(Action::Join {
            role: o.settings.role,
            remotes: reachable.iter().map(|m| format!("{}:{SWARM_PORT}", m.private_ip)).collect(),
            advertise: o.me.private_ip.clone(),
        });
        return;
    }
    if o.settings.role == Role::Worker {
        out.push(wait("no manager named in swarm/state.json answers yet"));
        return;
    }
    let Some(group) = &o.settings.group else {
        // Single mode: the one instance makes the swarm.
        out.push(Action::InitSwarm { advertise: o.me.private_ip.clone() });
        return;
    };
    let Some(g) = o.groups.iter().flatten().find(|g| &g.name == group) else {
        out.push(wait(&format!("group {group} is not visible yet")));
        return;
    };
    let lowest = g.instances.iter().filter(|i| i.alive()).map(|i| i.instance_id.as_str()).min();
    match lowest {
        Some(id) if id != o.me.instance_id => {
            out.push(wait(&format!("no manager answers; {id} (lowest instance ID of {group}) initialises the swarm")))
        }
        _ => out.push(Action::InitSwarm { advertise: o.me.private_ip.clone() }),
    }
}

fn reachable_manager(n: &ClusterNode) -> bool {
    n.role == "manager" && n.state == "ready" && matches!(n.manager.as_deref(), Some("leader" | "reachable"))
}

fn leader(o: &Observed, members: &[Member], out: &mut Vec<Action>) {
    let Some(nodes) = &o.nodes else { return };
    let by_node: BTreeMap<&str, &Member> =
        members.iter().filter(|m| !m.node_id.is_empty() && !m.done).map(|m| (m.node_id.as_str(), m)).collect();
    if o.tokens != Tokens::Present {
        out.push(Action::PublishTokens);
    }
    // Labels and roles.
    for n in nodes {
        let Some(m) = by_node.get(n.id.as_str()) else { continue };
        let mut labels = BTreeMap::new();
        for (k, v) in [(LABEL_INSTANCE, &m.instance_id), (LABEL_ZONE, &m.zone)] {
            if !v.is_empty() && n.labels.get(k) != Some(v) {
                labels.insert(k.to_string(), v.clone());
            }
        }
        if !labels.is_empty() {
            out.push(Action::LabelNode { node_id: n.id.clone(), labels });
        }
        if m.role == Some(Role::Manager) && n.role == "worker" && n.state == "ready" && m.leaving_since.is_none() {
            out.push(Action::Promote { node_id: n.id.clone() });
        }
    }
    // Leaving instances: drain their nodes; drained once nothing runs there or waits to start.
    let mut drained = Vec::new();
    for m in members.iter().filter(|m| m.leaving_since.is_some() && !m.done) {
        match nodes.iter().find(|n| !m.node_id.is_empty() && n.id == m.node_id) {
            Some(n) if n.availability != "drain" => {
                out.push(Action::Drain { node_id: n.id.clone(), instance_id: m.instance_id.clone() })
            }
            Some(n) if n.tasks > 0 || o.pending_tasks > 0 => {}
            _ => drained.push(m.instance_id.clone()),
        }
    }
    // Down nodes whose instance is gone from every group.
    if let Some(groups) = &o.groups {
        let alive: BTreeSet<&str> =
            groups.iter().flat_map(|g| &g.instances).filter(|i| i.alive()).map(|i| i.instance_id.as_str()).collect();
        let mut manager_removed = false;
        for n in nodes.iter().filter(|n| n.state == "down") {
            let instance = n
                .labels
                .get(LABEL_INSTANCE)
                .map(String::as_str)
                .or_else(|| by_node.get(n.id.as_str()).map(|m| m.instance_id.as_str()));
            let Some(instance) = instance else { continue };
            if alive.contains(instance) {
                continue;
            }
            if n.role == "manager" {
                let managers = nodes.iter().filter(|x| x.role == "manager").count();
                let reachable = nodes.iter().filter(|x| reachable_manager(x)).count();
                let after = managers - 1;
                let reachable_after = reachable - usize::from(reachable_manager(n));
                if manager_removed || after == 0 || reachable_after < after / 2 + 1 {
                    out.push(wait(&format!(
                        "keeping down manager {} ({instance}): removing it now would break the quorum ({reachable_after} of {after} managers reachable after)",
                        n.hostname
                    )));
                    continue;
                }
                manager_removed = true;
                out.push(Action::Demote { node_id: n.id.clone() });
            }
            out.push(Action::RemoveNode { node_id: n.id.clone(), hostname: n.hostname.clone() });
        }
    }
    // state.json: managers that are ready, reachable and not leaving.
    let mut managers: Vec<ManagerEntry> = nodes
        .iter()
        .filter(|n| reachable_manager(n))
        .filter_map(|n| by_node.get(n.id.as_str()).map(|m| (n, m)))
        .filter(|(_, m)| m.leaving_since.is_none())
        .map(|(n, m)| ManagerEntry {
            instance_id: m.instance_id.clone(),
            node_id: n.id.clone(),
            private_ip: m.private_ip.clone(),
            public_ip: m.public_ip.clone(),
            zone: m.zone.clone(),
            ssh_host_keys: m.ssh_host_keys.clone(),
        })
        .collect();
    managers.sort();
    drained.sort();
    let state = SwarmState { swarm_id: o.local.swarm_id.clone(), updated_at: String::new(), managers, drained };
    if o.published.as_ref().map(SwarmState::without_time) != Some(state.clone()) {
        out.push(Action::PublishState { state: state.clone() });
    }
    // ECR tokens last 12 hours: a task scheduled later (a replaced node) pulls with what the
    // swarm stored, so the leader keeps it fresh.
    if !o.stale_registry_auth.is_empty() {
        out.push(Action::RefreshRegistryAuth { services: o.stale_registry_auth.clone() });
    }
    // Route53: every domain → the managers' public addresses.
    if let Some(zone) = &o.settings.hosted_zone_id
        && !o.settings.domains.is_empty()
    {
        let ips: BTreeSet<String> =
            state.managers.iter().filter(|m| !m.public_ip.is_empty()).map(|m| m.public_ip.clone()).collect();
        if !ips.is_empty() {
            let want: BTreeMap<String, Vec<String>> =
                o.settings.domains.iter().map(|d| (d.clone(), ips.iter().cloned().collect())).collect();
            if o.records.as_ref() != Some(&want) {
                out.push(Action::UpsertRecords { zone: zone.clone(), ttl: o.settings.dns_ttl, records: want });
            }
        }
    }
}

fn leave(o: &Observed, me: &Member, members: &[Member], out: &mut Vec<Action>) {
    let Some(since) = me.leaving_since else { return };
    let drained = o.published.as_ref().is_some_and(|s| s.drained.contains(&me.instance_id));
    if !drained {
        out.push(wait("termination notice: waiting until the leader drained this node and its tasks run elsewhere"));
        return;
    }
    if !o.local.manager {
        out.push(Action::Leave);
        return;
    }
    if o.settings.hosted_zone_id.is_some() && o.now < since + o.settings.dns_ttl {
        out.push(wait(&format!(
            "drained; waiting out the DNS TTL before leaving ({} s left)",
            since + o.settings.dns_ttl - o.now
        )));
        return;
    }
    let Some(nodes) = &o.nodes else {
        out.push(wait("cannot list the swarm's nodes"));
        return;
    };
    let others: Vec<&ClusterNode> = nodes.iter().filter(|n| n.role == "manager" && n.id != o.local.node_id).collect();
    if others.is_empty() {
        out.push(wait("quorum guard: this is the swarm's last manager; it stays until another manager joined"));
        return;
    }
    if let Some(bad) = others.iter().find(|n| !reachable_manager(n)) {
        out.push(wait(&format!(
            "quorum guard: manager {} is {} ({}); one manager is replaced at a time",
            bad.hostname,
            bad.state,
            bad.manager.as_deref().unwrap_or("?")
        )));
        return;
    }
    let leaving_first = members
        .iter()
        .filter(|m| m.leaving_since.is_some() && m.instance_id < me.instance_id)
        .find(|m| others.iter().any(|n| n.id == m.node_id));
    if let Some(m) = leaving_first {
        out.push(wait(&format!(
            "quorum guard: manager {} leaves first; one manager is replaced at a time",
            m.instance_id
        )));
        return;
    }
    out.push(Action::Demote { node_id: o.local.node_id.clone() });
}

fn complete_lifecycle(o: &Observed) -> Vec<Action> {
    let group = o
        .groups
        .iter()
        .flatten()
        .find(|g| g.instances.iter().any(|i| i.instance_id == o.me.instance_id))
        .or_else(|| o.groups.iter().flatten().find(|g| Some(&g.name) == o.settings.group.as_ref()));
    let Some(g) = group else { return Vec::new() };
    g.termination_hooks
        .iter()
        .map(|hook| Action::CompleteLifecycleAction {
            group: g.name.clone(),
            hook: hook.clone(),
            instance_id: o.me.instance_id.clone(),
        })
        .collect()
}
