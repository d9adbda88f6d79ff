//! `cluster up` and `node ls | drain | activate | rm | add | tidy` for SSH targets.

use crate::cli::{ClusterCommand, NodeCommand, StackArgs};
use crate::exit;
use crate::table;
use berth_engine::berth_ssh::{HostAddr, SshOptions};
use berth_engine::cluster::{self, ClusterNode, ClusterPlan, HostPlan};
use berth_engine::{Engine, EngineError, SshTarget};
use berth_spec::xberth::{SshTarget as SshSpec, TargetSpec};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Default dispatcher heartbeat berth sets on the swarms it makes (Docker's default is 5 s).
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(2);

fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(rest),
        None => PathBuf::from(p),
    }
}

fn hosts_of(name: &str, t: &SshSpec) -> Result<Vec<HostAddr>, u8> {
    t.hosts
        .iter()
        .map(|h| {
            h.parse::<HostAddr>().map_err(|e| {
                let hint = e.hint();
                super::fail(exit::INVALID, format!("target `{name}`: {e}"), hint)
            })
        })
        .collect()
}

fn options_of(t: &SshSpec) -> SshOptions {
    let mut o = SshOptions::default();
    if let Some(u) = &t.user {
        o.user = u.clone();
    }
    o.key = t.key.as_deref().map(expand_home);
    if let Some(k) = &t.known_hosts {
        o.known_hosts = expand_home(k);
    }
    o.trust_new_hosts = t.trust_new_hosts;
    o
}

/// The engine target of an `x-berth` ssh target: its managers, tried in order.
pub(crate) fn ssh_target(name: &str, t: &SshSpec) -> Result<SshTarget, u8> {
    let hosts = hosts_of(name, t)?;
    Ok(SshTarget {
        managers: hosts.iter().take(t.managers.max(1) as usize).cloned().collect(),
        hosts,
        socket: t.socket.clone().unwrap_or_else(|| "/var/run/docker.sock".into()),
        options: options_of(t),
    })
}

/// Parses `2s`, `500ms`, `1m`.
fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    if let Some(sec) = s.strip_suffix('s') {
        return sec.parse::<f64>().ok().filter(|v| *v > 0.0).map(Duration::from_secs_f64);
    }
    if let Some(m) = s.strip_suffix('m') {
        return m.parse::<u64>().ok().map(|m| Duration::from_secs(m * 60));
    }
    None
}

/// The AWS target the command is about, when it is one (errors are left to [`spec_of`]).
fn aws_spec_of(stack: &StackArgs) -> Option<(String, berth_spec::xberth::AwsTarget)> {
    let loaded = super::load(stack).ok()?;
    let xb = loaded.stack.extras.get("x-berth").map(berth_spec::xberth::XBerth::from_json).unwrap_or_default();
    let name = stack.target.clone().or(xb.default_target.clone())?;
    match xb.targets.get(&name) {
        Some(TargetSpec::Aws(t)) => Some((name, t.clone())),
        _ => None,
    }
}

/// The ssh target the command is about, with its name.
fn spec_of(stack: &StackArgs) -> Result<(String, SshSpec), u8> {
    let loaded = super::load(stack)?;
    let xb = loaded.stack.extras.get("x-berth").map(berth_spec::xberth::XBerth::from_json).unwrap_or_default();
    let name = stack.target.clone().or(xb.default_target.clone()).unwrap_or_else(|| "local".into());
    match xb.targets.get(&name) {
        Some(TargetSpec::Ssh(t)) => Ok((name, t.clone())),
        Some(_) | None if name == "local" => Err(super::fail(
            exit::USAGE,
            "the local engine is a single machine: `cluster` and `node` commands need an ssh target",
            Some("name one with `--target NAME` (x-berth.targets)".into()),
        )),
        Some(TargetSpec::Aws(_)) => Err(super::fail(
            exit::USAGE,
            format!("target `{name}` is an AWS target: its nodes are managed by its auto-scaling groups"),
            Some("`berth cluster up|plan|down|status --target NAME` manage it".into()),
        )),
        _ => {
            // `target()` prints the did-you-mean for unknown names.
            Err(super::target(stack, &loaded).err().unwrap_or(exit::USAGE))
        }
    }
}

fn plan_of(name: &str, t: &SshSpec, install: bool) -> Result<ClusterPlan, u8> {
    let hosts = hosts_of(name, t)?;
    let managers = t.managers.max(1) as usize;
    let matches = |h: &HostAddr, s: &str| s == h.to_string() || s == h.host;
    let plans = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let manager = i < managers;
            let edge = if t.edge.is_empty() { manager } else { t.edge.iter().any(|e| matches(h, e)) };
            let labels = t
                .labels
                .iter()
                .filter(|(k, _)| matches(h, k) || t.hosts.get(i).is_some_and(|raw| raw == *k))
                .flat_map(|(_, l)| l.clone())
                .collect();
            HostPlan { addr: h.clone(), manager, edge, labels }
        })
        .collect();
    let heartbeat = match &t.heartbeat {
        Some(h) => duration(h).ok_or_else(|| {
            super::fail(exit::INVALID, format!("target `{name}`: heartbeat `{h}` is not a duration (`2s`)"), None)
        })?,
        None => DEFAULT_HEARTBEAT,
    };
    Ok(ClusterPlan {
        hosts: plans,
        socket: t.socket.clone().unwrap_or_else(|| "/var/run/docker.sock".into()),
        options: options_of(t),
        heartbeat,
        install,
    })
}

/// The runtime of the cluster commands (SSH and AWS targets).
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| super::fail(exit::FAILED, e, None))
}

use super::engine_fail;

pub fn cluster(stack: &StackArgs, cmd: ClusterCommand) -> u8 {
    if let Some((name, spec)) = aws_spec_of(stack) {
        return super::aws::cluster(stack, &name, &spec, cmd);
    }
    let (json, no_install) = match cmd {
        ClusterCommand::Up { json, no_install, template_only: None, .. } => (json, no_install),
        _ => {
            return super::fail(
                exit::USAGE,
                "`cluster plan`, `down`, `status` and `up --template-only` are for AWS targets",
                Some("an SSH target has no plan to show: `berth cluster up` is idempotent".into()),
            );
        }
    };
    let (name, spec) = match spec_of(stack) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let plan = match plan_of(&name, &spec, !no_install) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let start = std::time::Instant::now();
    let quiet = json;
    let result = rt.block_on(cluster::cluster_up(&plan, &mut |line| {
        if !quiet {
            let _ = writeln!(std::io::stderr(), "[{:>6.1}s] {line}", start.elapsed().as_secs_f64());
        }
    }));
    match result {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                print_nodes(&r.nodes);
                let mut err = std::io::stderr();
                if r.changes.is_empty() {
                    let _ = writeln!(err, "cluster `{name}` is up to date ({} nodes)", r.nodes.len());
                } else {
                    for c in &r.changes {
                        let _ = writeln!(err, "changed: {c}");
                    }
                    let _ = writeln!(
                        err,
                        "cluster `{name}` is up ({} nodes, {} change(s), {:.1} s)",
                        r.nodes.len(),
                        r.changes.len(),
                        start.elapsed().as_secs_f64()
                    );
                }
            }
            exit::OK
        }
        Err(e) => engine_fail(e),
    }
}

fn print_nodes(nodes: &[ClusterNode]) {
    let headers = ["ID", "HOSTNAME", "HOST", "ROLE", "MANAGER", "AVAILABILITY", "STATE", "ADDR", "TASKS", "LABELS"];
    let mut rows = Vec::new();
    for n in nodes {
        let labels: Vec<String> = n
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != cluster::LABEL_HOST)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        rows.push(vec![
            n.id.chars().take(12).collect(),
            n.hostname.clone(),
            n.host.clone().unwrap_or_else(|| "-".into()),
            n.role.clone(),
            n.manager.clone().unwrap_or_else(|| "-".into()),
            n.availability.clone(),
            n.state.clone(),
            n.addr.clone(),
            n.tasks.to_string(),
            labels.join(","),
        ]);
    }
    print!("{}", table::render(&headers, &rows, std::io::stdout().is_terminal()));
}

pub fn node(stack: &StackArgs, cmd: NodeCommand) -> u8 {
    let (name, spec) = match spec_of(stack) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let target = match ssh_target(&name, &spec) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let result: Result<u8, EngineError> = rt.block_on(async {
        let engine: Engine = cluster::manager_of(&target).await?;
        match cmd {
            NodeCommand::Ls { json } => {
                let nodes = engine.cluster_nodes().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&nodes).unwrap_or_default());
                } else {
                    print_nodes(&nodes);
                }
                Ok(exit::OK)
            }
            NodeCommand::Drain { node, timeout } => {
                let n = engine.find_node(&node).await?;
                let start = std::time::Instant::now();
                engine.drain_node(&n.id, Duration::from_secs(timeout)).await?;
                let _ = writeln!(
                    std::io::stderr(),
                    "node {} drained: its tasks run elsewhere ({:.1} s)",
                    n.hostname,
                    start.elapsed().as_secs_f64()
                );
                Ok(exit::OK)
            }
            NodeCommand::Activate { node } => {
                let n = engine.find_node(&node).await?;
                engine
                    .update_node(&n.id, |s| {
                        s.availability = Some(berth_engine::cluster::Availability::ACTIVE);
                    })
                    .await?;
                let _ = writeln!(std::io::stderr(), "node {} is active", n.hostname);
                Ok(exit::OK)
            }
            NodeCommand::Rm { node, timeout } => {
                let n = engine.find_node(&node).await?;
                // A reachable host leaves by itself after the drain, so Swarm needs no force.
                let plan = plan_of(&name, &spec, false)
                    .map_err(|_| EngineError::Refused { message: "invalid target".into(), hint: None })?;
                let steps = engine.remove_node_via(&n.id, Duration::from_secs(timeout), &plan).await?;
                for s in steps {
                    let _ = writeln!(std::io::stderr(), "{s}");
                }
                Ok(exit::OK)
            }
            NodeCommand::Add { host, manager } => {
                let addr: HostAddr = host.parse().map_err(EngineError::Ssh)?;
                let mut plan = plan_of(&name, &spec, true)
                    .map_err(|_| EngineError::Refused { message: "invalid target".into(), hint: None })?;
                if !plan.hosts.iter().any(|h| h.addr.host == addr.host) {
                    plan.hosts.push(HostPlan { addr, manager, edge: false, labels: Default::default() });
                }
                let r = cluster::cluster_up(&plan, &mut |line| {
                    let _ = writeln!(std::io::stderr(), "{line}");
                })
                .await?;
                print_nodes(&r.nodes);
                Ok(exit::OK)
            }
            NodeCommand::Rebalance { timeout } => {
                let loaded = super::load(stack)
                    .map_err(|_| EngineError::Refused { message: "cannot read the stack files".into(), hint: None })?;
                let stack_name = super::stack_name(stack, &loaded);
                let moved = engine
                    .rebalance(&stack_name, Duration::from_secs(timeout), &mut |e| {
                        if let berth_engine::Event::Message(m) = e {
                            let _ = writeln!(std::io::stderr(), "{m}");
                        }
                    })
                    .await?;
                if moved.is_empty() {
                    let _ = writeln!(std::io::stderr(), "stack {stack_name} is balanced");
                } else {
                    let _ = writeln!(std::io::stderr(), "rebalanced: {}", moved.join(", "));
                }
                Ok(exit::OK)
            }
            NodeCommand::Tidy { json } => {
                let removed = engine.tidy().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&removed).unwrap_or_default());
                } else if removed.is_empty() {
                    let _ = writeln!(std::io::stderr(), "no node is down");
                } else {
                    for r in &removed {
                        let _ = writeln!(std::io::stderr(), "{r}");
                    }
                }
                Ok(exit::OK)
            }
        }
    });
    result.unwrap_or_else(engine_fail)
}

#[cfg(test)]
mod tests {
    use super::duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(duration("x"), None);
    }
}
