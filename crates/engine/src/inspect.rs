//! Read-only views of a stack for `berth status` and `berth ps`: services (mode, image, tasks
//! running/desired, health, update state, release), tasks (node, state, health, error, age) and
//! the swarm's nodes. Everything is serializable for `--json`; secret values are never read.
//!
//! Health: the Task API does not carry container health, so berth inspects the containers of the
//! running tasks on the node it is connected to (`State.Health.Status`); tasks on other nodes show
//! no health (`None`) and count as `unknown` in a service's health summary.

use crate::api;
use crate::{Engine, EngineError};
use berth_plan::desired::LABEL_NAMESPACE;
use berth_plan::image_pin;
use bollard::models::{Service, Task, TaskState};
use bollard::query_parameters::{InspectContainerOptions, ListNodesOptions, ListServicesOptions, ListTasksOptions};
use serde::Serialize;
use std::collections::HashMap;

/// Label holding the release number a service's spec belongs to.
pub const LABEL_RELEASE: &str = "io.berth.release";

/// The state of one stack: its services, the swarm's nodes and the current release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackStatus {
    /// The stack name.
    pub stack: String,
    /// The highest `io.berth.release` label among the stack's services (none for a stack berth never deployed).
    pub release: Option<u64>,
    /// The stack's services, sorted by name.
    pub services: Vec<ServiceStatus>,
    /// The swarm's nodes, sorted by hostname.
    pub nodes: Vec<NodeInfo>,
}

/// One service of a stack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    /// Short name (without the `<stack>_` prefix).
    pub name: String,
    /// Full Swarm name.
    pub full_name: String,
    /// `replicated`, `global`, `replicated-job` or `global-job`.
    pub mode: String,
    /// The image the file named (`name:tag`: berth's pin by ID or digest removed, see `image_ref`).
    pub image: String,
    /// The image exactly as the spec names it: `name:tag@sha256:<digest>`, `sha256:<image ID>`, or
    /// the tag when it is not pinned.
    pub image_ref: String,
    /// Tasks in state `running` that should be running.
    pub running: u64,
    /// Tasks that should be running (replicated: `Replicas`; global: one per eligible node).
    pub desired: u64,
    /// Health of the running tasks: `healthy`, `unhealthy`, `starting`, a mix like `2 healthy, 1 starting`,
    /// `unknown` when berth cannot see (tasks on other nodes), or `-` when the service has no healthcheck.
    pub health: String,
    /// Swarm's update state (`updating`, `paused`, `completed`, `rollback_started`, ...), if an update ran.
    pub update_state: Option<String>,
    /// Swarm's update message (e.g. why an update paused).
    pub update_message: Option<String>,
    /// The `io.berth.release` label.
    pub release: Option<String>,
    /// Published ports.
    pub ports: Vec<PortInfo>,
    /// The error of the newest failed task that should be running, if any (why it does not converge).
    pub last_error: Option<String>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortInfo {
    /// Port on the nodes (or the host, in `host` mode).
    pub published: Option<i64>,
    /// Port in the container.
    pub target: Option<i64>,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// `ingress` or `host`.
    pub mode: String,
}

/// One task of a service (current or historical).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskInfo {
    /// Short service name.
    pub service: String,
    /// Task ID.
    pub id: String,
    /// Replica slot (replicated services).
    pub slot: Option<i64>,
    /// Hostname of the node the task is on (none while unassigned).
    pub node: Option<String>,
    /// What Swarm wants (`running`, `shutdown`, ...).
    pub desired_state: String,
    /// Where the task is (`running`, `failed`, `pending`, ...).
    pub state: String,
    /// Container health when visible (task on the local node): `healthy`, `unhealthy`, `starting`, `none`.
    pub health: Option<String>,
    /// The task's error, if any.
    pub error: Option<String>,
    /// The task's container.
    pub container_id: Option<String>,
    /// The container's exit code, once it exited.
    pub exit_code: Option<i64>,
    /// When the task reached its current state (RFC 3339, as the engine says).
    pub since: Option<String>,
    /// Seconds since then (by this machine's clock).
    pub age_seconds: Option<u64>,
    /// The image the task runs, as people read it: `name:tag`, with the first 12 hex digits of its
    /// ID or digest when pinned (`app:v1 (id 3f2a9c1b7d4e)`).
    pub image: Option<String>,
}

/// One swarm node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// Node ID.
    pub id: String,
    /// Hostname.
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// `ready`, `down`, ...
    pub state: String,
    /// True for the node berth is connected to.
    pub local: bool,
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2026-11-23T11:20:32.123456789Z`, offsets allowed).
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let mut t = days * 86400 + h * 3600 + mi * 60 + se;
    let rest = &s[19..];
    let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(off) = rest.strip_prefix('+').map(|o| (1, o)).or_else(|| rest.strip_prefix('-').map(|o| (-1, o))) {
        let (sign, o) = off;
        let oh: i64 = o.get(0..2)?.parse().ok()?;
        let om: i64 = o.get(3..5)?.parse().ok()?;
        t -= sign * (oh * 3600 + om * 60);
    }
    Some(t)
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The short name of a service of `stack`.
pub(crate) fn short_name(stack: &str, full: &str) -> String {
    full.strip_prefix(&format!("{stack}_")).unwrap_or(full).to_string()
}

pub(crate) fn service_name(s: &Service) -> String {
    s.spec.as_ref().and_then(|s| s.name.clone()).unwrap_or_default()
}

pub(crate) fn service_mode(s: &Service) -> &'static str {
    let m = s.spec.as_ref().and_then(|s| s.mode.as_ref());
    match m {
        Some(m) if m.global.is_some() => "global",
        Some(m) if m.replicated_job.is_some() => "replicated-job",
        Some(m) if m.global_job.is_some() => "global-job",
        _ => "replicated",
    }
}

fn has_healthcheck_in_spec(s: &Service) -> Option<bool> {
    let hc = s.spec.as_ref()?.task_template.as_ref()?.container_spec.as_ref()?.health_check.as_ref()?;
    let test = hc.test.as_ref()?;
    Some(!(test.is_empty() || test[0] == "NONE"))
}

/// Summarises the health of a service's running tasks.
pub(crate) fn health_summary(healths: &[Option<String>], spec_says: Option<bool>) -> String {
    if spec_says == Some(false) {
        return "-".into();
    }
    if healths.is_empty() {
        return "-".into();
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for h in healths {
        let k = match h.as_deref() {
            None => "unknown",
            Some("none") | Some("") => "none",
            Some(x) => x,
        }
        .to_string();
        match counts.iter_mut().find(|(n, _)| *n == k) {
            Some((_, c)) => *c += 1,
            None => counts.push((k, 1)),
        }
    }
    if counts.len() == 1 && counts[0].0 == "none" {
        return "-".into();
    }
    if counts.len() == 1 {
        return counts[0].0.clone();
    }
    counts.sort_by(|a, b| a.0.cmp(&b.0));
    counts.iter().map(|(k, c)| format!("{c} {k}")).collect::<Vec<_>>().join(", ")
}

pub(crate) fn stack_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL_NAMESPACE}={stack}")])])
}

impl Engine {
    /// The stack's services (labelled `com.docker.stack.namespace=<stack>`), sorted by name.
    pub(crate) async fn stack_services(&self, stack: &str) -> Result<Vec<Service>, EngineError> {
        let mut services = self
            .docker()
            .list_services(Some(ListServicesOptions { filters: Some(stack_filter(stack)), status: None }))
            .await
            .map_err(api("list services"))?;
        services.sort_by_key(service_name);
        Ok(services)
    }

    /// The ID of the node this engine runs on (empty when not in a swarm).
    pub(crate) async fn local_node_id(&self) -> Result<String, EngineError> {
        let info = self.docker().info().await.map_err(api("info"))?;
        Ok(info.swarm.and_then(|s| s.node_id).unwrap_or_default())
    }

    /// The swarm's nodes, sorted by hostname.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        let local = self.local_node_id().await?;
        let nodes = self.docker().list_nodes(None::<ListNodesOptions>).await.map_err(api("list nodes"))?;
        let mut out: Vec<NodeInfo> = nodes
            .into_iter()
            .map(|n| {
                let id = n.id.unwrap_or_default();
                NodeInfo {
                    local: id == local,
                    hostname: n.description.and_then(|d| d.hostname).unwrap_or_else(|| id.clone()),
                    role: n.spec.as_ref().and_then(|s| s.role).map(|r| r.to_string()).unwrap_or_default(),
                    availability: n
                        .spec
                        .as_ref()
                        .and_then(|s| s.availability)
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    state: n.status.and_then(|s| s.state).map(|s| s.to_string()).unwrap_or_default(),
                    id,
                }
            })
            .collect();
        out.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        Ok(out)
    }

    /// The tasks of the stack's services (or of one service, by short or full name), current and
    /// historical, sorted by service, slot, newest first. Health is filled in for running tasks on
    /// the local node. Fails with [`EngineError::NotFound`] (with a did-you-mean) for an unknown service.
    pub async fn tasks(&self, stack: &str, service: Option<&str>) -> Result<Vec<TaskInfo>, EngineError> {
        let services = self.stack_services(stack).await?;
        let services = match service {
            Some(want) => vec![pick_service(stack, &services, want)?.clone()],
            None => services,
        };
        let nodes = self.nodes().await?;
        self.tasks_of(stack, &services, &nodes).await
    }

    async fn tasks_of(
        &self,
        stack: &str,
        services: &[Service],
        nodes: &[NodeInfo],
    ) -> Result<Vec<TaskInfo>, EngineError> {
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.docker();
        let ids: Vec<String> = services.iter().filter_map(|s| s.id.clone()).collect();
        let names: HashMap<String, String> =
            services.iter().filter_map(|s| Some((s.id.clone()?, short_name(stack, &service_name(s))))).collect();
        let tasks = d
            .list_tasks(Some(ListTasksOptions { filters: Some(HashMap::from([("service".to_string(), ids)])) }))
            .await
            .map_err(api("list tasks"))?;
        let hostnames: HashMap<&str, &NodeInfo> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
        let now = now_unix();
        // Container health of the running tasks on this node, inspected concurrently.
        let local_running: Vec<String> = tasks
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
            .filter(|t| t.node_id.as_deref().and_then(|n| hostnames.get(n)).is_some_and(|n| n.local))
            .filter_map(|t| t.status.as_ref()?.container_status.as_ref()?.container_id.clone())
            .collect();
        let healths: HashMap<String, Option<String>> = futures_util::future::join_all(
            local_running.into_iter().map(|cid| async move { (cid.clone(), self.container_health(&cid).await) }),
        )
        .await
        .into_iter()
        .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            let Some(service) = t.service_id.as_ref().and_then(|id| names.get(id)).cloned() else { continue };
            let node = t.node_id.as_deref().and_then(|n| hostnames.get(n));
            let state = t.status.as_ref().and_then(|s| s.state).unwrap_or(TaskState::NEW);
            let container_id =
                t.status.as_ref().and_then(|s| s.container_status.as_ref()).and_then(|c| c.container_id.clone());
            let health = match (&container_id, state) {
                (Some(cid), TaskState::RUNNING) => healths.get(cid).cloned().flatten(),
                _ => None,
            };
            out.push(task_info(service, &t, node.map(|n| n.hostname.clone()), health, now));
        }
        out.sort_by(|a, b| {
            (a.service.as_str(), a.slot, a.node.as_deref())
                .cmp(&(b.service.as_str(), b.slot, b.node.as_deref()))
                .then_with(|| b.since.cmp(&a.since))
        });
        Ok(out)
    }

    async fn container_health(&self, id: &str) -> Option<String> {
        let c = self.docker().inspect_container(id, None::<InspectContainerOptions>).await.ok()?;
        // A container without a healthcheck has no `Health` at all.
        let h = c.state?.health.and_then(|h| h.status).map(|s| s.to_string()).unwrap_or_default();
        Some(if h.is_empty() { "none".into() } else { h })
    }

    /// The stack's services with tasks running/desired, health, update state, release and ports,
    /// and the swarm's nodes. A stack with no services gives an empty list (not an error).
    pub async fn status(&self, stack: &str) -> Result<StackStatus, EngineError> {
        let services = self.stack_services(stack).await?;
        let nodes = self.nodes().await?;
        let tasks = self.tasks_of(stack, &services, &nodes).await?;
        let eligible = nodes.iter().filter(|n| n.availability == "active" && n.state == "ready").count() as u64;
        let mut out = Vec::new();
        let mut release: Option<u64> = None;
        for s in &services {
            let full = service_name(s);
            let name = short_name(stack, &full);
            let spec = s.spec.as_ref();
            let container = spec.and_then(|s| s.task_template.as_ref()).and_then(|t| t.container_spec.as_ref());
            let mine: Vec<&TaskInfo> = tasks.iter().filter(|t| t.service == name).collect();
            let current: Vec<&&TaskInfo> = mine.iter().filter(|t| t.desired_state == "running").collect();
            let running: Vec<&&&TaskInfo> = current.iter().filter(|t| t.state == "running").collect();
            let mode = service_mode(s);
            let desired = match mode {
                "global" => {
                    let n = current
                        .iter()
                        .filter_map(|t| t.node.as_deref())
                        .collect::<std::collections::BTreeSet<_>>()
                        .len() as u64;
                    if n == 0 { eligible } else { n }
                }
                _ => spec
                    .and_then(|s| s.mode.as_ref())
                    .and_then(|m| m.replicated.as_ref())
                    .and_then(|r| r.replicas)
                    .unwrap_or(0)
                    .max(0) as u64,
            };
            let healths: Vec<Option<String>> = running.iter().map(|t| t.health.clone()).collect();
            let rel = spec.and_then(|s| s.labels.as_ref()).and_then(|l| l.get(LABEL_RELEASE)).cloned();
            if let Some(n) = rel.as_deref().and_then(|r| r.parse::<u64>().ok()) {
                release = Some(release.map_or(n, |m| m.max(n)));
            }
            let last_error = mine
                .iter()
                .filter(|t| t.error.is_some() && matches!(t.state.as_str(), "failed" | "rejected" | "pending"))
                .max_by(|a, b| a.since.cmp(&b.since))
                .and_then(|t| t.error.clone())
                .filter(|_| running.len() as u64 != desired);
            out.push(ServiceStatus {
                name,
                full_name: full,
                mode: mode.into(),
                image: container
                    .and_then(|c| Some(image_pin::unpinned(c.image.as_deref()?, c.labels.as_ref())))
                    .unwrap_or_default(),
                image_ref: container.and_then(|c| c.image.clone()).unwrap_or_default(),
                running: running.len() as u64,
                desired,
                health: health_summary(&healths, has_healthcheck_in_spec(s)),
                update_state: s.update_status.as_ref().and_then(|u| u.state).map(|u| u.to_string()),
                update_message: s.update_status.as_ref().and_then(|u| u.message.clone()),
                release: rel,
                ports: s
                    .endpoint
                    .as_ref()
                    .and_then(|e| e.ports.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|p| PortInfo {
                        published: p.published_port,
                        target: p.target_port,
                        protocol: p.protocol.map(|p| p.to_string()).unwrap_or_else(|| "tcp".into()),
                        mode: p.publish_mode.map(|m| m.to_string()).unwrap_or_else(|| "ingress".into()),
                    })
                    .collect(),
                last_error,
            });
        }
        Ok(StackStatus { stack: stack.to_string(), release, services: out, nodes })
    }
}

fn task_info(service: String, t: &Task, node: Option<String>, health: Option<String>, now: i64) -> TaskInfo {
    let st = t.status.as_ref();
    let since = st.and_then(|s| s.timestamp.clone());
    TaskInfo {
        service,
        id: t.id.clone().unwrap_or_default(),
        slot: t.slot,
        node,
        desired_state: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
        state: st.and_then(|s| s.state).map(|s| s.to_string()).unwrap_or_default(),
        health,
        error: st.and_then(|s| s.err.clone()).filter(|e| !e.is_empty()),
        container_id: st.and_then(|s| s.container_status.as_ref()).and_then(|c| c.container_id.clone()),
        exit_code: st.and_then(|s| s.container_status.as_ref()).and_then(|c| c.exit_code),
        age_seconds: since.as_deref().and_then(parse_rfc3339).map(|t| (now - t).max(0) as u64),
        since,
        image: t
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| Some(image_pin::display(c.image.as_deref()?, c.labels.as_ref()))),
    }
}

/// Levenshtein distance, for did-you-mean suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `names` to `want`, if close enough to suggest.
pub(crate) fn did_you_mean<'a>(want: &str, names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    names
        .into_iter()
        .map(|n| (edit_distance(want, n), n))
        .filter(|(d, n)| *d <= (n.len().max(want.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.to_string())
}

/// Finds a service of the stack by short or full name; [`EngineError::NotFound`] with a suggestion otherwise.
pub(crate) fn pick_service<'a>(stack: &str, services: &'a [Service], want: &str) -> Result<&'a Service, EngineError> {
    let full = if want.starts_with(&format!("{stack}_")) { want.to_string() } else { format!("{stack}_{want}") };
    if let Some(s) = services.iter().find(|s| service_name(s) == full) {
        return Ok(s);
    }
    let shorts: Vec<String> = services.iter().map(|s| short_name(stack, &service_name(s))).collect();
    Err(EngineError::NotFound {
        what: "service",
        name: want.to_string(),
        suggestion: did_you_mean(want, shorts.iter().map(String::as_str)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rfc3339_handles_fractions_and_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-23T11:20:32.123456789Z"), Some(1795432832));
        assert_eq!(parse_rfc3339("2026-11-23T12:20:32+01:00"), Some(1795432832));
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn health_summary_counts_mixed_states_and_dashes_without_healthcheck() {
        assert_eq!(health_summary(&[Some("healthy".into()), Some("healthy".into())], None), "healthy");
        assert_eq!(
            health_summary(&[Some("healthy".into()), Some("starting".into()), None], Some(true)),
            "1 healthy, 1 starting, 1 unknown"
        );
        assert_eq!(health_summary(&[Some("none".into())], None), "-");
        assert_eq!(health_summary(&[Some("healthy".into())], Some(false)), "-");
        assert_eq!(health_summary(&[], Some(true)), "-");
    }

    #[test]
    fn did_you_mean_suggests_close_names_only() {
        assert_eq!(did_you_mean("wbe", ["web", "worker"]).as_deref(), Some("web"));
        assert_eq!(did_you_mean("database", ["web", "worker"]), None);
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("app", "app_web"), "web");
        assert_eq!(short_name("app", "other"), "other");
    }
}
