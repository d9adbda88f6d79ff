//! Watch: poll a stack's services and tasks until they have converged, or fail early and clearly.
//!
//! Converged = every watched service has its desired number of tasks `running` whose spec is the
//! service's current `TaskTemplate` (replicated: `Replicas`; global: the swarm's `DesiredTasks`).
//!
//! Health: Swarm itself reports a task `running` only once its container's first health check
//! passed (the executor waits for `healthy` while the task is `starting`, and fails the task when
//! the container turns `unhealthy`). So for a service with a health check — the file's or the
//! image's — `running` means healthy; no container inspection (which works only on the local node)
//! is needed. berth also watches `UpdateStatus`: `paused` (Swarm's default `FailureAction`, which
//! berth keeps unless the file sets one) and `rollback_*` fail the wait at once, so that berth —
//! not Swarm — decides about a whole-stack rollback.

use crate::release::parse_rfc3339_nanos;
use crate::{Engine, EngineError};
use bollard::models::{Service, ServiceUpdateStatusStateEnum as U, Task, TaskState};
use bollard::query_parameters::{ListServicesOptions, ListTasksOptions, LogsOptions};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Something that happened during a deploy, for a progress view.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An action starts (`create service s_web`).
    Step {
        /// `create`, `update`, `remove`.
        verb: &'static str,
        /// `network`, `secret`, `service`, ...
        kind: &'static str,
        /// Full object name.
        name: String,
    },
    /// The state of every watched service (sent when something changed).
    Progress(Vec<ServiceProgress>),
    /// A line of news (`release 3: running release command ...`).
    Message(String),
    /// A line of output of a release command.
    Output {
        /// The full service name the command runs for.
        service: String,
        /// The line.
        line: String,
    },
}

/// One service's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProgress {
    /// Full service name.
    pub name: String,
    /// Tasks running on the current spec.
    pub running: u64,
    /// Tasks wanted.
    pub desired: u64,
    /// Whether the spec has a health check (then `running` tasks are healthy); `None` when the
    /// file says nothing (the image may still have one).
    pub health: Option<bool>,
    /// Swarm's update state (`updating`, `paused`, `completed`, `rollback_started`, ...), if any.
    pub update_state: Option<String>,
    /// The latest task error, if any (`no suitable node ...`).
    pub last_error: Option<String>,
}

/// Why a wait failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Full name of the failing service.
    pub service: String,
    /// One line: what went wrong.
    pub reason: String,
    /// The failing task's error (`Status.Err`), if any.
    pub task_error: Option<String>,
    /// The last log lines of the service's tasks.
    pub logs: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.reason)?;
        if let Some(e) = &self.task_error
            && !self.reason.contains(e.as_str())
        {
            write!(f, " (task error: {e})")?;
        }
        Ok(())
    }
}

impl Failure {
    /// What the user can do about it, one line, when the failure's kind is known.
    pub fn hint(&self) -> Option<String> {
        let text = format!("{} {}", self.reason, self.task_error.as_deref().unwrap_or_default());
        let h = if is_image_error(&text) {
            "build or pull the image on every node that may run the task, or push it to a registry the nodes can reach"
        } else if text.contains("no suitable node") || text.contains("insufficient resources") {
            "lower the service's resource reservations or placement constraints, or add nodes (`docker node ls`)"
        } else if text.contains("port") && text.contains("in use") || text.contains("already taken") {
            "change the published port in the file, or stop what uses it (`docker service ls`, `ss -ltnp`)"
        } else if text.contains("healthy") || text.contains("health check") {
            "check the service's health check (`berth logs SERVICE`); raise `healthcheck.start_period` if it starts slowly"
        } else {
            return None;
        };
        Some(h.to_string())
    }

    fn engine(e: EngineError) -> Failure {
        Failure { service: String::new(), reason: e.to_string(), task_error: None, logs: Vec::new() }
    }
}

/// How many failed/rejected tasks of the current spec make a service "failing repeatedly".
const MAX_TASK_FAILURES: usize = 2;
/// How long a task may stay pending with a scheduling error before the deploy gives up (nodes
/// re-registering after a leader change, start-first updates briefly lacking room).
const PENDING_GRACE: Duration = Duration::from_secs(5);
/// Poll interval.
const POLL: Duration = Duration::from_millis(100);

/// A container could not bind a host-mode port (something outside Swarm holds it).
fn is_port_error(err: &str) -> bool {
    err.contains("address already in use") || err.contains("port is already allocated")
}

fn state_name(s: &Option<TaskState>) -> String {
    s.map(|s| s.to_string()).unwrap_or_default()
}

fn is_image_error(err: &str) -> bool {
    err.contains("No such image") || err.contains("manifest unknown") || err.contains("pull access denied")
}

/// The parts of a task spec that tell which service spec a task was made from: the daemon
/// returns a task's spec without `RestartPolicy`/`Runtime`, so the whole template cannot be compared.
fn task_identity(t: Option<&bollard::models::TaskSpec>) -> serde_json::Value {
    let Some(t) = t else { return serde_json::Value::Null };
    serde_json::json!({
        "ContainerSpec": t.container_spec,
        "ForceUpdate": t.force_update.unwrap_or(0),
        "Resources": t.resources,
        "Placement": t.placement.as_ref().map(|p| &p.constraints),
    })
}

impl Engine {
    /// Polls until every service in `services` (full names) has converged (see the module doc),
    /// sending [`Event::Progress`] when something changes. Fails early when a task of the
    /// current spec created after `since_nanos` (ns since the epoch; 0 for any) fails or is
    /// rejected repeatedly, when the image is missing, when no node can take a task, when
    /// `UpdateStatus` is `paused`/`rollback_*`, or on `timeout`.
    pub async fn wait_converged(
        &self,
        stack: &str,
        services: &[String],
        since_nanos: i128,
        timeout: Duration,
        on: &mut (dyn FnMut(Event) + Send),
    ) -> Result<(), Failure> {
        let d = self.docker();
        let start = Instant::now();
        let mut last: Vec<ServiceProgress> = Vec::new();
        let mut pending_since: HashMap<String, Instant> = HashMap::new();
        if services.is_empty() {
            return Ok(());
        }
        loop {
            let filters = HashMap::from([("name".to_string(), services.to_vec())]);
            let listed = d
                .list_services(Some(ListServicesOptions { filters: Some(filters), status: Some(true) }))
                .await
                .map_err(|source| Failure::engine(EngineError::Api { call: "list services", source }))?;
            // The name filter matches prefixes: keep exact names.
            let by_name: BTreeMap<String, Service> = listed
                .into_iter()
                .filter_map(|s| Some((s.spec.as_ref()?.name.clone()?, s)))
                .filter(|(n, _)| services.contains(n) && n.starts_with(stack))
                .collect();
            let task_filters = HashMap::from([("service".to_string(), services.to_vec())]);
            let tasks = d
                .list_tasks(Some(ListTasksOptions { filters: Some(task_filters) }))
                .await
                .map_err(|source| Failure::engine(EngineError::Api { call: "list tasks", source }))?;
            let mut tasks_by_service: HashMap<&str, Vec<&Task>> = HashMap::new();
            for t in &tasks {
                if let Some(id) = t.service_id.as_deref() {
                    tasks_by_service.entry(id).or_default().push(t);
                }
            }

            let mut progress = Vec::new();
            let mut all_done = true;
            for name in services {
                let Some(svc) = by_name.get(name) else {
                    all_done = false;
                    progress.push(ServiceProgress {
                        name: name.clone(),
                        running: 0,
                        desired: 0,
                        health: None,
                        update_state: None,
                        last_error: Some("service not found".into()),
                    });
                    continue;
                };
                let spec = svc.spec.clone().unwrap_or_default();
                let current = task_identity(spec.task_template.as_ref());
                let desired = match spec.mode.as_ref() {
                    Some(m) if m.global.is_some() => {
                        svc.service_status.as_ref().and_then(|s| s.desired_tasks).unwrap_or(1)
                    }
                    Some(m) => m.replicated.as_ref().and_then(|r| r.replicas).unwrap_or(1) as u64,
                    None => 1,
                };
                let health = spec
                    .task_template
                    .as_ref()
                    .and_then(|t| t.container_spec.as_ref())
                    .and_then(|c| c.health_check.as_ref())
                    .and_then(|h| h.test.as_ref())
                    .map(|t| t.first().map(String::as_str) != Some("NONE"));
                let update_state = svc.update_status.as_ref().and_then(|u| u.state);
                let id = svc.id.clone().unwrap_or_default();
                let mine: Vec<&Task> = tasks_by_service.get(id.as_str()).cloned().unwrap_or_default();
                let on_current = |t: &&&Task| task_identity(t.spec.as_ref()) == current;
                let recent =
                    |t: &&&Task| t.created_at.as_deref().and_then(parse_rfc3339_nanos).is_none_or(|c| c >= since_nanos);
                let running = mine
                    .iter()
                    .filter(|t| {
                        t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
                            && t.desired_state == Some(TaskState::RUNNING)
                    })
                    .filter(on_current)
                    .count() as u64;
                let mut failed: Vec<&Task> = mine
                    .iter()
                    .filter(|t| {
                        matches!(t.status.as_ref().and_then(|s| s.state), Some(TaskState::FAILED | TaskState::REJECTED))
                    })
                    .filter(on_current)
                    .filter(recent)
                    .copied()
                    .collect();
                failed.sort_by(|a, b| b.created_at.cmp(&a.created_at));
                let pending_err = mine
                    .iter()
                    .filter(|t| t.desired_state == Some(TaskState::RUNNING))
                    .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::PENDING))
                    .find_map(|t| t.status.as_ref().and_then(|s| s.err.clone()).filter(|e| !e.is_empty()));
                let last_error = failed
                    .first()
                    .and_then(|t| t.status.as_ref())
                    .and_then(|s| s.err.clone().or_else(|| s.message.clone()))
                    .or_else(|| pending_err.clone());
                progress.push(ServiceProgress {
                    name: name.clone(),
                    running,
                    desired,
                    health,
                    update_state: update_state.filter(|u| *u != U::EMPTY).map(|u| u.to_string()),
                    last_error: last_error.clone(),
                });

                // Early failures.
                let fail = |reason: String, task_error: Option<String>| Failure {
                    service: name.clone(),
                    reason,
                    task_error,
                    logs: Vec::new(),
                };
                let mut failure = None;
                if let Some(t) = failed.first() {
                    let err = t.status.as_ref().and_then(|s| s.err.clone()).unwrap_or_default();
                    let st = state_name(&t.status.as_ref().and_then(|s| s.state));
                    if is_image_error(&err) {
                        failure = Some(fail(format!("service {name}: image is missing: {err}"), Some(err)));
                    } else if failed.len() >= MAX_TASK_FAILURES {
                        let what = if is_port_error(&err) {
                            format!("service {name}: a published port is already taken on the node: {err}")
                        } else if err.contains("unhealthy") {
                            format!("service {name} never became healthy: its tasks fail their health check")
                        } else {
                            format!(
                                "service {name}: tasks keep failing ({} {st} since the deploy started)",
                                failed.len()
                            )
                        };
                        failure = Some(fail(what, Some(err).filter(|e| !e.is_empty())));
                    }
                }
                if failure.is_none() {
                    match &pending_err {
                        Some(err) => {
                            let first = *pending_since.entry(name.clone()).or_insert_with(Instant::now);
                            if is_image_error(err) || first.elapsed() >= PENDING_GRACE {
                                let reason = if err.contains("no suitable node") {
                                    format!("service {name}: no node can run its tasks: {err}")
                                } else if err.contains("port") {
                                    format!("service {name}: a published port is already taken: {err}")
                                } else {
                                    format!("service {name}: tasks cannot be scheduled: {err}")
                                };
                                failure = Some(fail(reason, Some(err.clone())));
                            }
                        }
                        None => {
                            pending_since.remove(name);
                        }
                    }
                }
                if failure.is_none() {
                    match update_state {
                        Some(U::PAUSED) => {
                            let msg = svc.update_status.as_ref().and_then(|u| u.message.clone()).unwrap_or_default();
                            // The message names the task that made Swarm pause: say how it ended.
                            let culprit = mine.iter().find(|t| t.id.as_deref().is_some_and(|id| msg.contains(id)));
                            let ended = culprit.and_then(|t| t.status.as_ref()).map(|s| {
                                let code = s.container_status.as_ref().and_then(|c| c.exit_code).unwrap_or(0);
                                let err = s
                                    .err
                                    .clone()
                                    .filter(|e| !e.is_empty())
                                    .unwrap_or_else(|| s.message.clone().unwrap_or_default());
                                format!(
                                    "new task ended ({}: {err}, exit code {code}) before it was healthy and running",
                                    state_name(&s.state)
                                )
                            });
                            let reason = match &ended {
                                Some(e) => format!("service {name}: update paused by Swarm: {e}"),
                                None => format!("service {name}: update paused by Swarm: {msg}"),
                            };
                            failure = Some(fail(reason, last_error.clone()));
                        }
                        Some(U::ROLLBACK_STARTED | U::ROLLBACK_PAUSED | U::ROLLBACK_COMPLETED) => {
                            let msg = svc.update_status.as_ref().and_then(|u| u.message.clone()).unwrap_or_default();
                            failure = Some(fail(
                                format!("service {name}: Swarm rolled the update back: {msg}"),
                                last_error.clone(),
                            ));
                        }
                        _ => {}
                    }
                }
                if let Some(mut f) = failure {
                    on(Event::Progress(progress.clone()));
                    f.logs = self.tail_logs(&id, 20).await;
                    return Err(f);
                }
                // Converged also means no extra task is meant to run: an old-spec task that Swarm
                // has not told to stop yet, or a duplicate of a slot after a dockerd restart.
                let meant_to_run = mine.iter().filter(|t| t.desired_state == Some(TaskState::RUNNING)).count() as u64;
                if running < desired || meant_to_run > desired {
                    all_done = false;
                }
            }
            if progress != last {
                on(Event::Progress(progress.clone()));
                last = progress;
            }
            if all_done {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                let p = last.iter().find(|p| p.running < p.desired).cloned().unwrap_or_else(|| last[0].clone());
                let secs = timeout.as_secs();
                let reason = if p.health == Some(true) {
                    format!(
                        "service {} never became healthy: {}/{} healthy after {secs} s",
                        p.name, p.running, p.desired
                    )
                } else {
                    format!("service {} did not converge: {}/{} running after {secs} s", p.name, p.running, p.desired)
                };
                let id = by_name.get(&p.name).and_then(|s| s.id.clone()).unwrap_or_default();
                return Err(Failure {
                    service: p.name.clone(),
                    reason,
                    task_error: p.last_error.clone(),
                    logs: self.tail_logs(&id, 20).await,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The last `n` log lines of a service's tasks (empty when none or on error; waits at most 5 s).
    pub async fn tail_logs(&self, service_id: &str, n: usize) -> Vec<String> {
        if service_id.is_empty() {
            return Vec::new();
        }
        let opts = LogsOptions { stdout: true, stderr: true, tail: n.to_string(), ..Default::default() };
        let mut stream = self.docker().service_logs(service_id, Some(opts));
        let mut text = String::new();
        let collect = async {
            while let Some(Ok(chunk)) = stream.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), collect).await;
        // Keep printable text only, and drop the daemon's own complaints about tasks without logs.
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.chars().filter(|c| !c.is_control() || *c == '\t').collect::<String>())
            .filter(|l| !l.contains("Error grabbing logs") && !l.trim().is_empty())
            .collect();
        let skip = lines.len().saturating_sub(n);
        lines.into_iter().skip(skip).collect()
    }
}
