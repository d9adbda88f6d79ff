//! Operator commands that change a running stack: `scale`, `exec`, `rm`.
//!
//! - [`Engine::scale`] sets `Replicas` of the stack's own replicated services directly (one service
//!   update each, sending the observed version, so a concurrent change makes it fail instead of being
//!   overwritten). It is not recorded as a release: the next `berth deploy` sets the file's value again.
//! - [`Engine::exec`] runs a command in the container of a running task on the node berth is
//!   connected to; when none runs there it says which nodes have one.
//! - [`Engine::remove_stack`] removes what berth owns: services (and leftover one-off runs), waits
//!   until their tasks are gone, then secrets, configs (release records included) and networks; volumes
//!   only when asked (only those on the connected node: each node keeps its own). A stack deployed by
//!   `docker stack deploy` (services without `io.berth.stack`) is refused.

use crate::api;
use crate::inspect::{pick_service, service_mode, service_name, short_name, stack_filter};
use crate::release::is_not_found;
use crate::{Engine, EngineError};
use berth_plan::desired::LABEL_OWNER;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    ListConfigsOptions, ListNetworksOptions, ListSecretsOptions, ListServicesOptions, ListTasksOptions,
    ListVolumesOptions, RemoveVolumeOptions, UpdateServiceOptions,
};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// How long `rm` waits for the removed services' tasks to go before removing networks anyway.
const TASKS_GONE_TIMEOUT: Duration = Duration::from_secs(60);

/// What [`Engine::remove_stack`] removed (full names), and what it left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemoveReport {
    /// Services removed (including one-off run services).
    pub services: Vec<String>,
    /// Secrets removed.
    pub secrets: Vec<String>,
    /// Configs removed (including berth's release records).
    pub configs: Vec<String>,
    /// Networks removed.
    pub networks: Vec<String>,
    /// Volumes removed (only with `volumes: true`).
    pub volumes: Vec<String>,
    /// Volumes of the stack that were kept (without `volumes: true`).
    pub volumes_kept: Vec<String>,
    /// Objects with the stack's namespace label but not berth's owner label, left alone (`kind name`).
    pub skipped: Vec<String>,
}

/// A service's new replica count, as [`Engine::scale`] did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scaled {
    /// Short service name.
    pub service: String,
    /// Replicas before.
    pub from: u64,
    /// Replicas now.
    pub to: u64,
}

fn owner_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL_OWNER}={stack}")])])
}

fn owned(labels: Option<&HashMap<String, String>>, stack: &str) -> bool {
    labels.and_then(|l| l.get(LABEL_OWNER)).is_some_and(|v| v == stack)
}

fn foreign_stack(stack: &str, what: &str) -> EngineError {
    EngineError::Refused {
        message: format!(
            "stack `{stack}` was not deployed by berth ({what} has no `{LABEL_OWNER}` label); berth does not change objects it does not own"
        ),
        hint: Some(format!(
            "use `docker stack rm {stack}` / `docker service scale`, or let berth take it over with `berth deploy --adopt`"
        )),
    }
}

impl Engine {
    /// Sets the replica count of the stack's replicated services, e.g. `[("web", 3), ("worker", 2)]`
    /// (short or full names). Everything is checked before anything changes: unknown services
    /// ([`EngineError::NotFound`] with did-you-mean), global/job services and services berth does not
    /// own ([`EngineError::Refused`]). Each update sends the observed version. Not a release: the next
    /// `berth deploy` sets the file's replicas again.
    pub async fn scale(&self, stack: &str, targets: &[(String, u64)]) -> Result<Vec<Scaled>, EngineError> {
        let services = self.stack_services(stack).await?;
        let mut todo = Vec::new();
        for (want, n) in targets {
            let s = pick_service(stack, &services, want)?;
            let name = short_name(stack, &service_name(s));
            if !owned(s.spec.as_ref().and_then(|s| s.labels.as_ref()), stack) {
                return Err(foreign_stack(stack, &format!("service `{name}`")));
            }
            let mode = service_mode(s);
            if mode != "replicated" {
                return Err(EngineError::Refused {
                    message: format!("service `{name}` is {mode}: only replicated services can be scaled"),
                    hint: Some(if mode == "global" {
                        "a global service runs one task per eligible node; change its placement constraints instead"
                            .into()
                    } else {
                        "jobs run to completion; change the stack file instead".into()
                    }),
                });
            }
            if i64::try_from(*n).is_err() {
                return Err(EngineError::Refused { message: format!("{n} replicas is too many"), hint: None });
            }
            todo.push((s.clone(), name, *n));
        }
        let mut out = Vec::new();
        for (s, name, n) in todo {
            let mut spec = s.spec.clone().unwrap_or_default();
            let mode = spec.mode.get_or_insert_with(Default::default);
            let rep = mode.replicated.get_or_insert_with(Default::default);
            let from = rep.replicas.unwrap_or(0).max(0) as u64;
            rep.replicas = Some(n as i64);
            let version = s.version.as_ref().and_then(|v| v.index).unwrap_or(0);
            let id = s.id.clone().unwrap_or_else(|| service_name(&s));
            self.docker()
                .update_service(&id, spec, UpdateServiceOptions { version: version as i32, ..Default::default() }, None)
                .await
                .map_err(api("update service"))?;
            out.push(Scaled { service: name, from, to: n });
        }
        Ok(out)
    }

    /// Runs `cmd` in the container of a running task of the service on the node berth is connected
    /// to, streaming its output (`on_output(is_stderr, bytes)`), and returns the command's exit code.
    /// With `tty`, output is not split (all goes to stdout). When no task of the service runs on this
    /// node, fails with [`EngineError::Refused`] naming the nodes that have one.
    pub async fn exec(
        &self,
        stack: &str,
        service: &str,
        cmd: &[String],
        tty: bool,
        on_output: &mut (dyn FnMut(bool, &[u8]) + Send),
    ) -> Result<i64, EngineError> {
        let d = self.docker();
        let services = self.stack_services(stack).await?;
        let s = pick_service(stack, &services, service)?;
        let name = short_name(stack, &service_name(s));
        let local = self.local_node_id().await?;
        let filters = HashMap::from([
            ("service".to_string(), vec![s.id.clone().unwrap_or_default()]),
            ("desired-state".to_string(), vec!["running".to_string()]),
        ]);
        let tasks = d.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.map_err(api("list tasks"))?;
        let running: Vec<_> = tasks
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(bollard::models::TaskState::RUNNING))
            .collect();
        let here = running.iter().filter(|t| t.node_id.as_deref() == Some(local.as_str())).min_by_key(|t| t.slot);
        let Some(task) = here else {
            if running.is_empty() {
                return Err(EngineError::Refused {
                    message: format!("no task of service `{name}` is running"),
                    hint: Some(format!("`berth ps {name}` shows its tasks and why they do not run")),
                });
            }
            let nodes = self.nodes().await?;
            let on: BTreeSet<String> = running
                .iter()
                .filter_map(|t| t.node_id.as_deref())
                .map(|id| nodes.iter().find(|n| n.id == id).map(|n| n.hostname.clone()).unwrap_or_else(|| id.into()))
                .collect();
            return Err(EngineError::Refused {
                message: format!(
                    "no task of service `{name}` runs on this node; it runs on: {}",
                    on.into_iter().collect::<Vec<_>>().join(", ")
                ),
                hint: Some("point DOCKER_HOST at one of those nodes' engines and try again".into()),
            });
        };
        let container = task
            .status
            .as_ref()
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.container_id.clone())
            .unwrap_or_default();
        let exec = d
            .create_exec(
                &container,
                CreateExecOptions::<String> {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(tty),
                    cmd: Some(cmd.to_vec()),
                    ..Default::default()
                },
            )
            .await
            .map_err(api("create exec"))?;
        match d
            .start_exec(&exec.id, Some(StartExecOptions { detach: false, tty, output_capacity: None }))
            .await
            .map_err(api("start exec"))?
        {
            StartExecResults::Attached { mut output, .. } => {
                while let Some(item) = output.next().await {
                    match item.map_err(api("exec output"))? {
                        bollard::container::LogOutput::StdErr { message } => on_output(true, &message),
                        other => on_output(false, &other.into_bytes()),
                    }
                }
            }
            StartExecResults::Detached => {}
        }
        // The exit code is set once the process is reaped: poll briefly.
        let start = Instant::now();
        loop {
            let info = d.inspect_exec(&exec.id).await.map_err(api("inspect exec"))?;
            if info.running != Some(true) || start.elapsed() > Duration::from_secs(5) {
                return Ok(info.exit_code.unwrap_or(if info.running == Some(true) { -1 } else { 0 }));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Removes the stack's berth-owned objects: services first (and leftover one-off runs), then —
    /// once their tasks are gone — secrets, configs (release records included) and networks; volumes
    /// (on the connected node) only when `volumes` is true. Refuses ([`EngineError::Refused`]) a stack
    /// whose services lack berth's owner label; [`EngineError::NotFound`] when nothing of the stack exists.
    pub async fn remove_stack(&self, stack: &str, volumes: bool) -> Result<RemoveReport, EngineError> {
        let d = self.docker();
        let ns = stack_filter(stack);
        let own = owner_filter(stack);
        let list_services = |f: HashMap<String, Vec<String>>| async move {
            d.list_services(Some(ListServicesOptions { filters: Some(f), status: None }))
                .await
                .map_err(api("list services"))
        };
        let mut services = list_services(ns.clone()).await?;
        if let Some(s) = services.iter().find(|s| !owned(s.spec.as_ref().and_then(|s| s.labels.as_ref()), stack)) {
            return Err(foreign_stack(stack, &format!("service `{}`", service_name(s))));
        }
        for s in list_services(own.clone()).await? {
            if !services.iter().any(|x| x.id == s.id) {
                services.push(s);
            }
        }
        let (secrets, configs, networks, vols) = futures_util::try_join!(
            async { d.list_secrets(None::<ListSecretsOptions>).await.map_err(api("list secrets")) },
            async { d.list_configs(None::<ListConfigsOptions>).await.map_err(api("list configs")) },
            async {
                d.list_networks(Some(ListNetworksOptions { filters: Some(ns.clone()) }))
                    .await
                    .map_err(api("list networks"))
            },
            async {
                d.list_volumes(Some(ListVolumesOptions { filters: Some(ns.clone()) }))
                    .await
                    .map_err(api("list volumes"))
            },
        )?;
        let mine = |labels: Option<&HashMap<String, String>>| {
            labels.is_some_and(|l| {
                l.get(LABEL_OWNER).is_some_and(|v| v == stack)
                    || l.get(berth_plan::desired::LABEL_NAMESPACE).is_some_and(|v| v == stack)
            })
        };
        let secrets: Vec<_> =
            secrets.into_iter().filter(|s| mine(s.spec.as_ref().and_then(|s| s.labels.as_ref()))).collect();
        let configs: Vec<_> =
            configs.into_iter().filter(|c| mine(c.spec.as_ref().and_then(|s| s.labels.as_ref()))).collect();
        let vols = vols.volumes.unwrap_or_default();
        if services.is_empty() && secrets.is_empty() && configs.is_empty() && networks.is_empty() && vols.is_empty() {
            return Err(EngineError::NotFound { what: "stack", name: stack.to_string(), suggestion: None });
        }
        let mut report = RemoveReport::default();

        // Services, then wait for their tasks to go (networks cannot be removed while in use).
        let ids: Vec<String> = services.iter().filter_map(|s| s.id.clone()).collect();
        for s in &services {
            let id = s.id.clone().unwrap_or_default();
            match d.delete_service(&id).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(EngineError::Api { call: "remove service", source: e }),
            }
            report.services.push(service_name(s));
        }
        if !ids.is_empty() {
            let start = Instant::now();
            while start.elapsed() < TASKS_GONE_TIMEOUT {
                // Filtering by a removed service answers 404: list all tasks and look.
                let tasks = d.list_tasks(None::<ListTasksOptions>).await.map_err(api("list tasks"))?;
                if !tasks.iter().any(|t| t.service_id.as_ref().is_some_and(|s| ids.contains(s))) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }

        for s in secrets {
            let name = s.spec.as_ref().and_then(|s| s.name.clone()).unwrap_or_default();
            if !owned(s.spec.as_ref().and_then(|s| s.labels.as_ref()), stack) {
                report.skipped.push(format!("secret {name}"));
                continue;
            }
            remove_ok(d.delete_secret(s.id.as_deref().unwrap_or(&name)).await, "remove secret")?;
            report.secrets.push(name);
        }
        for c in configs {
            let name = c.spec.as_ref().and_then(|s| s.name.clone()).unwrap_or_default();
            if !owned(c.spec.as_ref().and_then(|s| s.labels.as_ref()), stack) {
                report.skipped.push(format!("config {name}"));
                continue;
            }
            remove_ok(d.delete_config(c.id.as_deref().unwrap_or(&name)).await, "remove config")?;
            report.configs.push(name);
        }
        for n in networks {
            let name = n.name.clone().unwrap_or_default();
            if !owned(n.labels.as_ref(), stack) {
                report.skipped.push(format!("network {name}"));
                continue;
            }
            // A network can stay "in use" for a moment after the last task went: retry.
            let id = n.id.clone().unwrap_or_else(|| name.clone());
            let mut tries = 0;
            loop {
                match d.remove_network(&id).await {
                    Ok(()) => break,
                    Err(e) if is_not_found(&e) => break,
                    Err(_) if tries < 40 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => return Err(EngineError::Api { call: "remove network", source: e }),
                }
            }
            report.networks.push(name);
        }
        for v in vols {
            if !owned(Some(&v.labels), stack) {
                report.skipped.push(format!("volume {}", v.name));
                continue;
            }
            if !volumes {
                report.volumes_kept.push(v.name);
                continue;
            }
            let mut tries = 0;
            loop {
                match d.remove_volume(&v.name, None::<RemoveVolumeOptions>).await {
                    Ok(()) => break,
                    Err(e) if is_not_found(&e) => break,
                    Err(_) if tries < 40 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => return Err(EngineError::Api { call: "remove volume", source: e }),
                }
            }
            report.volumes.push(v.name);
        }
        Ok(report)
    }
}

fn remove_ok(r: Result<(), bollard::errors::Error>, call: &'static str) -> Result<(), EngineError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(EngineError::Api { call, source: e }),
    }
}
