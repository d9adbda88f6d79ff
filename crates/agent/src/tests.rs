//! Decisions, scenario by scenario: a cluster of three managers (i-1..i-3, zones a/b/c) and two
//! workers (i-4, i-5). Each case states the decision's gist in the table; the full decision is an
//! insta snapshot (`src/snapshots/`).

use crate::decide::decide;
use crate::model::{Action, LABEL_INSTANCE, LABEL_ZONE, Local, Me, Observed, Settings, Tokens};
use berth_aws::asg::{Group, GroupInstance};
use berth_aws::discovery::{ManagerEntry, Member, Role, SwarmState};
use berth_engine::cluster::ClusterNode;
use std::collections::BTreeMap;

const NOW: u64 = 1_764_000_000;

fn zone(i: usize) -> String {
    format!("eu-west-1{}", ["a", "b", "c"][(i - 1) % 3])
}
fn priv_ip(i: usize) -> String {
    format!("10.0.{}.{}", (i - 1) % 3 + 1, 10 + i)
}
fn pub_ip(i: usize) -> String {
    format!("203.0.113.{}", 10 + i)
}
fn id(i: usize) -> String {
    format!("i-{i}")
}
fn node_id(i: usize) -> String {
    format!("node{i}")
}
fn role_of(i: usize) -> Role {
    if i <= 3 { Role::Manager } else { Role::Worker }
}

fn groups(state: &[(usize, &str)]) -> Vec<Group> {
    let inst = |range: std::ops::RangeInclusive<usize>| {
        range
            .map(|i| GroupInstance {
                instance_id: id(i),
                zone: zone(i),
                lifecycle_state: state
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, s)| s.to_string())
                    .unwrap_or("InService".into()),
                health: "Healthy".into(),
            })
            .filter(|g| g.lifecycle_state != "gone")
            .collect()
    };
    vec![
        Group { name: "managers".into(), desired: 3, instances: inst(1..=3), termination_hooks: vec!["drain".into()] },
        Group { name: "workers".into(), desired: 2, instances: inst(4..=5), termination_hooks: vec!["drain".into()] },
    ]
}

fn member(i: usize) -> Member {
    Member {
        instance_id: id(i),
        role: Some(role_of(i)),
        node_id: node_id(i),
        private_ip: priv_ip(i),
        public_ip: pub_ip(i),
        zone: zone(i),
        leaving_since: None,
        done: false,
        ssh_host_keys: host_keys(i),
    }
}

fn node(i: usize, leader: usize) -> ClusterNode {
    let manager = role_of(i) == Role::Manager;
    ClusterNode {
        id: node_id(i),
        hostname: format!("ip-10-0-0-{i}"),
        host: None,
        role: role_of(i).to_string(),
        availability: "active".into(),
        state: "ready".into(),
        manager: manager.then(|| if i == leader { "leader".into() } else { "reachable".into() }),
        addr: priv_ip(i),
        labels: [(LABEL_INSTANCE.to_string(), id(i)), (LABEL_ZONE.to_string(), zone(i))].into(),
        tasks: 1,
    }
}

fn entry(i: usize) -> ManagerEntry {
    ManagerEntry {
        instance_id: id(i),
        node_id: node_id(i),
        private_ip: priv_ip(i),
        public_ip: pub_ip(i),
        zone: zone(i),
        ssh_host_keys: host_keys(i),
    }
}

/// Instance i's SSH host key as its agent reads it (managers publish theirs in state.json).
fn host_keys(i: usize) -> Vec<String> {
    vec![format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{i:0>43}")]
}

fn state(managers: &[usize]) -> SwarmState {
    SwarmState {
        swarm_id: "swarm1".into(),
        updated_at: "2025-11-24T16:00:00Z".into(),
        managers: managers.iter().map(|i| entry(*i)).collect(),
        drained: vec![],
    }
}

fn records(ips: &[usize]) -> BTreeMap<String, Vec<String>> {
    ["example.com", "www.example.com"]
        .iter()
        .map(|d| (d.to_string(), ips.iter().map(|i| pub_ip(*i)).collect()))
        .collect()
}

/// Instance `i` of a settled cluster of five (leader i-1): nothing to do.
fn settled(i: usize) -> Observed {
    let manager = role_of(i) == Role::Manager;
    let leader = i == 1;
    Observed {
        now: NOW,
        settings: Settings {
            role: role_of(i),
            group: Some(if manager { "managers" } else { "workers" }.into()),
            hosted_zone_id: Some("Z1".into()),
            domains: vec!["example.com".into(), "www.example.com".into()],
            dns_ttl: 60,
        },
        me: Me {
            instance_id: id(i),
            private_ip: priv_ip(i),
            public_ip: pub_ip(i),
            zone: zone(i),
            target_lifecycle_state: Some("InService".into()),
            ssh_host_keys: host_keys(i),
        },
        local: Local { state: "active".into(), node_id: node_id(i), swarm_id: "swarm1".into(), manager },
        published: Some(state(&[1, 2, 3])),
        tokens: Tokens::Present,
        reachable: vec![priv_ip(1), priv_ip(2), priv_ip(3)],
        members: (1..=5).map(member).collect(),
        groups: leader.then(|| groups(&[])),
        nodes: manager.then(|| (1..=5).map(|j| node(j, 1)).collect()),
        pending_tasks: 0,
        records: leader.then(|| records(&[1, 2, 3])),
        stale_registry_auth: vec![],
    }
}

/// Instance `i` booting: no swarm yet, nothing in S3.
fn fresh(i: usize) -> Observed {
    let mut o = settled(i);
    o.local = Local { state: "inactive".into(), ..Local::default() };
    o.published = None;
    o.tokens = Tokens::Missing;
    o.reachable = vec![];
    o.members = vec![];
    o.groups = Some(groups(&[(1, "Pending"), (2, "Pending"), (3, "Pending")]));
    o.nodes = None;
    o.records = None;
    o
}

fn leaving(o: &mut Observed, i: usize, since: u64) {
    if let Some(m) = o.members.iter_mut().find(|m| m.instance_id == id(i)) {
        m.leaving_since = Some(since);
    }
}

fn with(mut o: Observed, f: impl FnOnce(&mut Observed)) -> Observed {
    f(&mut o);
    o
}

fn n(o: &mut Observed, i: usize) -> &mut ClusterNode {
    o.nodes.as_mut().unwrap().iter_mut().find(|n| n.id == node_id(i)).unwrap()
}

/// One line per action: the gist the table checks.
fn gist(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| match a {
            Action::InitSwarm { .. } => "init".to_string(),
            Action::Join { role, remotes, .. } => format!("join {role} via {}", remotes.len()),
            Action::PublishMember { member } => format!(
                "member{}{}",
                if member.leaving_since.is_some() { " leaving" } else { "" },
                if member.done { " done" } else { "" }
            ),
            Action::PublishTokens => "tokens".into(),
            Action::PublishState { state } => format!(
                "state {}{}",
                state.managers.iter().map(|m| m.instance_id.as_str()).collect::<Vec<_>>().join(","),
                if state.drained.is_empty() { String::new() } else { format!(" drained {}", state.drained.join(",")) }
            ),
            Action::LabelNode { node_id, .. } => format!("label {node_id}"),
            Action::Promote { node_id } => format!("promote {node_id}"),
            Action::Drain { node_id, .. } => format!("drain {node_id}"),
            Action::Demote { node_id } => format!("demote {node_id}"),
            Action::RemoveNode { node_id, .. } => format!("remove {node_id}"),
            Action::UpsertRecords { records, .. } => {
                format!("records {}", records.values().next().map(|v| v.join(",")).unwrap_or_default())
            }
            Action::Leave => "leave".into(),
            Action::CompleteLifecycleAction { hook, .. } => format!("complete {hook}"),
            Action::RefreshRegistryAuth { services } => format!("registry auth {}", services.join(",")),
            Action::Wait { reason } => format!("wait: {}", reason.split(':').next().unwrap_or_default()),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn cases() -> Vec<(&'static str, Observed, &'static str)> {
    vec![
        // Boot.
        ("first_manager_initialises", fresh(1), "init"),
        ("other_manager_waits_for_the_lowest_id", fresh(2), "wait"),
        ("worker_waits_for_managers", fresh(4), "wait"),
        (
            "single_instance_without_group_initialises",
            with(fresh(1), |o| {
                o.settings.group = None;
                o.groups = None;
            }),
            "init",
        ),
        (
            "lowest_id_is_gone_so_next_initialises",
            with(fresh(2), |o| o.groups = Some(groups(&[(1, "gone"), (3, "Pending")]))),
            "init",
        ),
        (
            "worker_joins_through_reachable_managers",
            with(fresh(4), |o| {
                o.published = Some(state(&[1, 2, 3]));
                o.tokens = Tokens::Present;
                o.reachable = vec![priv_ip(1), priv_ip(3)];
            }),
            "join worker via 2",
        ),
        (
            "manager_joins_as_manager",
            with(fresh(3), |o| {
                o.published = Some(state(&[1]));
                o.tokens = Tokens::Present;
                o.reachable = vec![priv_ip(1)];
            }),
            "join manager via 1",
        ),
        (
            "managers_answer_but_tokens_missing",
            with(fresh(4), |o| {
                o.published = Some(state(&[1]));
                o.reachable = vec![priv_ip(1)];
            }),
            "wait",
        ),
        (
            "published_managers_all_gone_lowest_reinitialises",
            with(fresh(1), |o| {
                o.published = Some(state(&[7, 8]));
                o.tokens = Tokens::Present;
            }),
            "init",
        ),
        // The leader.
        ("settled_leader_does_nothing", settled(1), ""),
        ("settled_manager_does_nothing", settled(2), ""),
        ("settled_worker_does_nothing", settled(4), ""),
        (
            "new_leader_publishes_everything",
            with(settled(1), |o| {
                o.published = None;
                o.tokens = Tokens::Missing;
                o.members = vec![];
                o.nodes = Some(vec![node(1, 1)]);
                n(o, 1).labels.clear();
                o.records = Some(records(&[]));
            }),
            "member | tokens | label node1 | state i-1 | records",
        ),
        (
            "leader_rewrites_rotated_tokens_and_labels_new_node",
            with(settled(1), |o| {
                o.tokens = Tokens::Stale;
                n(o, 5).labels.clear();
            }),
            "tokens | label node5",
        ),
        (
            "manager_instance_that_joined_as_worker_is_promoted",
            with(settled(1), |o| {
                let x = n(o, 3);
                x.role = "worker".into();
                x.manager = None;
            }),
            "promote node3 | state i-1,i-2 | records",
        ),
        // Route53 and state.json follow the managers.
        (
            "down_manager_leaves_state_and_records",
            with(settled(1), |o| {
                let x = n(o, 3);
                x.state = "down".into();
                x.manager = Some("unreachable".into());
            }),
            "state i-1,i-2 | records",
        ),
        // Tidy.
        ("down_worker_still_in_service_is_kept", with(settled(1), |o| n(o, 4).state = "down".into()), ""),
        (
            "down_worker_gone_from_group_is_removed",
            with(settled(1), |o| {
                n(o, 4).state = "down".into();
                o.groups = Some(groups(&[(4, "gone")]));
            }),
            "remove node4",
        ),
        (
            "down_worker_terminated_is_removed",
            with(settled(1), |o| {
                n(o, 5).state = "down".into();
                o.groups = Some(groups(&[(5, "Terminating:Proceed")]));
            }),
            "remove node5",
        ),
        (
            "down_worker_kept_when_groups_unknown",
            with(settled(1), |o| {
                n(o, 4).state = "down".into();
                o.groups = None;
            }),
            "",
        ),
        (
            "down_manager_gone_is_demoted_then_removed",
            with(settled(1), |o| {
                let x = n(o, 3);
                x.state = "down".into();
                x.manager = Some("unreachable".into());
                o.groups = Some(groups(&[(3, "gone")]));
            }),
            "demote node3 | remove node3 | state i-1,i-2 | records",
        ),
        (
            "two_down_managers_of_three_are_kept_quorum",
            with(settled(1), |o| {
                for i in [2, 3] {
                    let x = n(o, i);
                    x.state = "down".into();
                    x.manager = Some("unreachable".into());
                }
                o.groups = Some(groups(&[(2, "gone"), (3, "gone")]));
            }),
            "wait | wait | state i-1 | records",
        ),
        // Leaving: a worker.
        (
            "worker_termination_notice_is_announced",
            with(settled(4), |o| o.me.target_lifecycle_state = Some("Terminated".into())),
            "member leaving | wait",
        ),
        (
            "worker_waits_for_the_drain",
            with(settled(4), |o| {
                o.me.target_lifecycle_state = Some("Terminated".into());
                leaving(o, 4, NOW - 5);
            }),
            "wait",
        ),
        ("leader_drains_the_leaving_worker", with(settled(1), |o| leaving(o, 4, NOW - 5)), "drain node4"),
        (
            "leader_waits_while_tasks_remain",
            with(settled(1), |o| {
                leaving(o, 4, NOW - 5);
                n(o, 4).availability = "drain".into();
                o.pending_tasks = 1;
                n(o, 4).tasks = 0;
            }),
            "",
        ),
        (
            "leader_marks_the_worker_drained",
            with(settled(1), |o| {
                leaving(o, 4, NOW - 5);
                n(o, 4).availability = "drain".into();
                n(o, 4).tasks = 0;
            }),
            "state i-1,i-2,i-3 drained i-4",
        ),
        (
            "drained_worker_leaves",
            with(settled(4), |o| {
                o.me.target_lifecycle_state = Some("Terminated".into());
                leaving(o, 4, NOW - 5);
                o.published.as_mut().unwrap().drained = vec![id(4)];
            }),
            "leave",
        ),
        (
            "worker_that_left_completes_the_hook",
            with(settled(4), |o| {
                o.me.target_lifecycle_state = Some("Terminated".into());
                leaving(o, 4, NOW - 5);
                o.local = Local { state: "inactive".into(), ..Local::default() };
                o.groups = Some(groups(&[]));
            }),
            "complete drain | member leaving done",
        ),
        (
            "terminating_before_ever_joining_completes_at_once",
            with(fresh(5), |o| {
                o.me.target_lifecycle_state = Some("Terminated".into());
                o.groups = Some(groups(&[(5, "Terminating:Wait")]));
            }),
            "complete drain | member leaving done",
        ),
        (
            "done_instance_does_nothing",
            with(settled(4), |o| {
                o.members[3].done = true;
                o.local = Local { state: "inactive".into(), ..Local::default() };
            }),
            "wait",
        ),
        (
            "asg_terminating_wait_is_a_notice_too",
            with(settled(1), |o| o.groups = Some(groups(&[(1, "Terminating:Wait")]))),
            "member leaving | drain node1 | state i-2,i-3 | records | wait",
        ),
        // Leaving: a manager.
        (
            "drained_manager_waits_out_the_dns_ttl",
            with(settled(2), |o| {
                o.me.target_lifecycle_state = Some("Terminated".into());
                leaving(o, 2, NOW - 20);
                o.published = Some(SwarmState { drained: vec![id(2)], ..state(&[1, 3]) });
            }),
            "wait",
        ),
        (
            "manager_waits_while_another_manager_is_down",
            with(settled(2), |o| {
                o.me.target_lifecycle_state = Some("Terminated".into());
                leaving(o, 2, NOW - 120);
                o.published = Some(SwarmState { drained: vec![id(2)], ..state(&[1]) });
                let x = n(o, 3);
                x.state = "down".into();
                x.manager = Some("unreachable".into());
            }),
            "wait",
        ),
        (
            "lower_id_leaving_manager_goes_first",
            with(settled(3), |o| {
                o.me.target_lifecycle_state = Some("Terminated".into());
                leaving(o, 2, NOW - 120);
                leaving(o, 3, NOW - 120);
                o.published = Some(SwarmState { drained: vec![id(2), id(3)], ..state(&[1]) });
            }),
            "wait",
        ),
        (
            "manager_demotes_itself_when_the_others_are_fine",
            with(settled(2), |o| {
                o.me.target_lifecycle_state = Some("Terminated".into());
                leaving(o, 2, NOW - 120);
                o.published = Some(SwarmState { drained: vec![id(2)], ..state(&[1, 3]) });
            }),
            "demote node2",
        ),
        (
            "demoted_manager_leaves",
            with(settled(2), |o| {
                o.me.target_lifecycle_state = Some("Terminated".into());
                leaving(o, 2, NOW - 120);
                o.published = Some(SwarmState { drained: vec![id(2)], ..state(&[1, 3]) });
                o.local.manager = false;
                o.nodes = None;
            }),
            "leave",
        ),
        (
            "last_manager_stays",
            with(settled(1), |o| {
                o.me.target_lifecycle_state = Some("Terminated".into());
                leaving(o, 1, NOW - 120);
                o.nodes = Some(vec![node(1, 1)]);
                n(o, 1).availability = "drain".into();
                n(o, 1).tasks = 0;
                o.members.truncate(1);
                o.published = Some(SwarmState { drained: vec![id(1)], ..state(&[]) });
                o.records = Some(records(&[1]));
            }),
            "wait",
        ),
        ("local_swarm_pending", with(fresh(4), |o| o.local.state = "pending".into()), "wait"),
        (
            "leader_refreshes_stale_registry_auth",
            with(settled(1), |o| o.stale_registry_auth = vec!["blog_backend".into(), "blog_worker".into()]),
            "registry auth blog_backend,blog_worker",
        ),
    ]
}

#[test]
fn decisions_table() {
    let mut failures = Vec::new();
    for (name, o, want) in cases() {
        let got = gist(&decide(&o));
        let (g, w): (Vec<&str>, Vec<&str>) = (got.split(" | ").collect(), want.split(" | ").collect());
        let same = (got.is_empty() == want.is_empty())
            && g.len() == w.len()
            && g.iter().zip(&w).all(|(g, w)| g.starts_with(w));
        if !same {
            failures.push(format!("{name}: want `{want}`, got `{got}`"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn decisions_snapshots() {
    for (name, o, _) in cases() {
        insta::assert_yaml_snapshot!(name, decide(&o));
    }
}

/// Level-driven: re-running a round on the same observation gives the same actions, and a
/// settled cluster gives none on any instance.
#[test]
fn deterministic_and_quiet_when_settled() {
    for (name, o, _) in cases() {
        assert_eq!(decide(&o), decide(&o), "{name}");
    }
    for i in 1..=5 {
        assert_eq!(decide(&settled(i)), vec![], "instance {i}");
    }
}

/// The leader's state.json lists exactly the managers that are ready, reachable and not
/// leaving, whatever the order of nodes and members.
#[test]
fn state_lists_ready_managers_in_instance_order() {
    let mut o = settled(1);
    o.nodes.as_mut().unwrap().reverse();
    o.members.reverse();
    o.published = None;
    let acts = decide(&o);
    let Some(Action::PublishState { state }) = acts.iter().find(|a| matches!(a, Action::PublishState { .. })) else {
        panic!("{acts:?}")
    };
    assert_eq!(state.managers, vec![entry(1), entry(2), entry(3)]);
}

#[test]
fn host_keys_are_read_from_the_pub_files_without_comments() {
    let dir = std::env::temp_dir().join(format!("berth-agent-hostkeys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.as_path();
    std::fs::write(p.join("ssh_host_ed25519_key.pub"), "ssh-ed25519 AAAAC3Nz host-1\n").unwrap();
    std::fs::write(p.join("ssh_host_ecdsa_key.pub"), "ecdsa-sha2-nistp256 AAAAE2Vj root@host-1\n").unwrap();
    std::fs::write(p.join("ssh_host_ed25519_key"), "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    std::fs::write(p.join("authorized_keys"), "ssh-rsa AAAAB3 ops\n").unwrap();
    assert_eq!(
        crate::live::read_host_keys(p),
        ["ecdsa-sha2-nistp256 AAAAE2Vj", "ssh-ed25519 AAAAC3Nz"],
        "the private key and other files are not read"
    );
    std::fs::write(p.join("keys"), "# lab\nssh-rsa AAAAB3 a\n\nnot a key\n").unwrap();
    assert_eq!(crate::live::read_host_keys(&p.join("keys")), ["ssh-rsa AAAAB3"]);
    assert_eq!(crate::live::read_host_keys(&p.join("absent")), Vec::<String>::new());
    std::fs::remove_dir_all(p).unwrap();
}

#[test]
fn managers_host_keys_reach_state_json() {
    let o = settled(1);
    let actions = decide(&o);
    let published = actions.iter().find_map(|a| match a {
        Action::PublishState { state } => Some(state.clone()),
        _ => None,
    });
    // Same managers as published: no new state; the entries carry what the members published.
    assert!(published.is_none(), "{actions:?}");
    let mut o = settled(1);
    for m in &mut o.members {
        m.ssh_host_keys = vec![format!("ssh-ed25519 NEW{}", m.instance_id)];
    }
    // The leader's own entry comes from what it reads itself.
    o.me.ssh_host_keys = vec![format!("ssh-ed25519 NEW{}", o.me.instance_id)];
    let state = decide(&o)
        .into_iter()
        .find_map(|a| match a {
            Action::PublishState { state } => Some(state),
            _ => None,
        })
        .expect("new keys: a new state.json");
    for m in &state.managers {
        assert_eq!(m.ssh_host_keys, [format!("ssh-ed25519 NEW{}", m.instance_id)]);
    }
}
