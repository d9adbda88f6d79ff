//! One-off runs: a command run once with a service's image, env, secrets, configs, networks and
//! mounts, as a short-lived Swarm service (used by the release phase and `berth run`).
//!
//! The run is a *replicated* service (not a replicated-job: dockerd 20.10 leaks job tasks) named
//! `<stack>_<service>_run-<random6>` with one replica and restart condition `none`, labelled
//! `io.berth.stack=<stack>` and `io.berth.kind=run` (never `com.docker.stack.namespace`, so a
//! concurrent plan does not see it as a stack service). The command goes to the container spec's
//! `Args` (the image's `CMD`); the entrypoint (`Command`) is the service's own when the file sets
//! `entrypoint:`, otherwise the image's — exactly like `docker run IMAGE CMD...`. So
//! `python manage.py migrate` works on an image without an entrypoint and on one whose entrypoint
//! script ends in `exec "$@"`. Published ports, healthcheck (set to `NONE`, so Swarm never kills
//! the task as unhealthy), update/rollback configs are dropped. The service is removed in all cases.

use crate::api;
use crate::registry_auth::RegistryAuths;
use crate::release::is_not_found;
use crate::{Engine, EngineError};
use berth_plan::desired::LABEL_OWNER;
use bollard::models::{
    HealthConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, Task, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{ListConfigsOptions, ListSecretsOptions, ListServicesOptions, ListTasksOptions};
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Label saying what kind of berth object this is (`run` for one-off run services).
pub const LABEL_KIND: &str = "io.berth.kind";
/// How many output lines [`RunOutcome::output_tail`] keeps.
pub const OUTPUT_TAIL_LINES: usize = 50;
/// How long a task may stay pending with "no suitable node" before the run fails.
const NO_NODE_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(250);

/// What to run once: the command, and the service spec whose image/env/secrets/configs/networks/
/// mounts/user/workdir it runs with.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The stack name (the run service is labelled `io.berth.stack=<stack>`).
    pub stack: String,
    /// The service this run is for (short name, e.g. `web`, or full `<stack>_web`): names the run.
    pub name_hint: String,
    /// The service's spec to copy the task template from (from the desired or the observed state).
    /// Secret/config references without IDs are resolved by name against the swarm.
    pub spec: ServiceSpec,
    /// The command (argv), given to the container as `Args`.
    pub command: Vec<String>,
    /// Allocate a TTY for the container (output is then not split into stdout/stderr).
    pub tty: bool,
    /// Registry credentials for the image pull; `None`: the Docker CLI's `config.json`.
    pub auths: Option<RegistryAuths>,
}

/// How a one-off run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The command's exit code.
    pub exit_code: i64,
    /// The last [`OUTPUT_TAIL_LINES`] lines of its output (stdout and stderr).
    pub output_tail: Vec<String>,
}

/// A short random lowercase alphanumeric suffix (no RNG dependency: time, pid and a counter hashed).
pub(crate) fn random_suffix(len: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let mut n = h.finish();
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| {
            let c = ALPHABET[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}

/// The run service's name: `<stack>_<service>_run-<suffix>`, cut to Swarm's 63-character limit.
pub(crate) fn run_service_name(stack: &str, hint: &str, suffix: &str) -> String {
    let short = hint.strip_prefix(&format!("{stack}_")).unwrap_or(hint);
    let tail = format!("_run-{suffix}");
    let mut head = format!("{stack}_{short}");
    while head.len() + tail.len() > 63 {
        head.pop();
    }
    format!("{head}{tail}")
}

/// Builds the spec of the run service from the service's spec (pure; see the module docs).
pub(crate) fn run_service_spec(run: &RunSpec, name: &str) -> ServiceSpec {
    let mut task = run.spec.task_template.clone().unwrap_or_default();
    let mut cs = task.container_spec.take().unwrap_or_default();
    cs.args = Some(run.command.clone());
    cs.tty = Some(run.tty);
    cs.open_stdin = None;
    cs.health_check = Some(HealthConfig { test: Some(vec!["NONE".into()]), ..Default::default() });
    task.container_spec = Some(cs);
    task.restart_policy = Some(TaskSpecRestartPolicy {
        condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
        max_attempts: Some(0),
        ..Default::default()
    });
    task.force_update = None;
    let labels = HashMap::from([
        (LABEL_OWNER.to_string(), run.stack.clone()),
        (LABEL_KIND.to_string(), "run".to_string()),
        ("io.berth.run.service".to_string(), run.name_hint.clone()),
    ]);
    ServiceSpec {
        name: Some(name.to_string()),
        labels: Some(labels),
        task_template: Some(task),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        update_config: None,
        rollback_config: None,
        networks: run.spec.networks.clone(),
        endpoint_spec: None,
    }
}

/// Splits log chunks into lines, keeping the partial last line for the next chunk.
#[derive(Default)]
pub(crate) struct LineSplitter {
    partial: String,
}

impl LineSplitter {
    /// Feeds a chunk; calls `emit` for each complete line (without the newline, `\r` trimmed).
    pub(crate) fn push(&mut self, chunk: &[u8], emit: &mut dyn FnMut(String)) {
        self.partial.push_str(&String::from_utf8_lossy(chunk));
        while let Some(i) = self.partial.find('\n') {
            let mut line: String = self.partial.drain(..=i).collect();
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
            emit(line);
        }
    }
    /// Emits what is left (a last line without newline).
    pub(crate) fn finish(&mut self, emit: &mut dyn FnMut(String)) {
        if !self.partial.is_empty() {
            emit(std::mem::take(&mut self.partial));
        }
    }
}

/// IDs of run services this process created and has not removed yet.
fn active_runs() -> std::sync::MutexGuard<'static, std::collections::HashSet<String>> {
    static ACTIVE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    ACTIVE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the run service when dropped without having been disarmed (error, panic, cancellation).
struct RemoveGuard {
    docker: bollard::Docker,
    name: Option<String>,
}

impl Drop for RemoveGuard {
    fn drop(&mut self) {
        if let Some(name) = self.name.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let docker = self.docker.clone();
            handle.spawn(async move {
                let _ = docker.delete_service(&name).await;
            });
        }
    }
}

/// Collected output: lines passed on and the tail kept.
struct Output<'a> {
    on_line: &'a mut (dyn FnMut(&str) + Send),
    tail: VecDeque<String>,
    count: usize,
}

impl Output<'_> {
    fn line(&mut self, line: String) {
        (self.on_line)(&line);
        self.count += 1;
        if self.tail.len() == OUTPUT_TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

fn task_state(t: &Task) -> TaskState {
    t.status.as_ref().and_then(|s| s.state).unwrap_or(TaskState::NEW)
}

fn task_err(t: &Task) -> String {
    let s = t.status.as_ref();
    s.and_then(|s| s.err.clone())
        .filter(|e| !e.is_empty())
        .or_else(|| s.and_then(|s| s.message.clone()))
        .unwrap_or_default()
}

fn is_terminal(s: TaskState) -> bool {
    matches!(
        s,
        TaskState::COMPLETE
            | TaskState::FAILED
            | TaskState::REJECTED
            | TaskState::SHUTDOWN
            | TaskState::ORPHANED
            | TaskState::REMOVE
    )
}

fn has_started(s: TaskState) -> bool {
    matches!(s, TaskState::STARTING | TaskState::RUNNING) || is_terminal(s)
}

impl Engine {
    /// Runs `run.command` once as a one-off Swarm service (see the module docs), streams its output
    /// line by line to `on_line` while it runs, and returns its exit code and the last lines of its
    /// output. The run service is removed in all cases. Errors: [`EngineError::ImageMissing`],
    /// [`EngineError::NoSuitableNode`], [`EngineError::TaskFailed`] (rejected before running),
    /// [`EngineError::NotFound`] for a secret/config the spec names that the swarm lacks.
    pub async fn run_once(
        &self,
        run: &RunSpec,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<RunOutcome, EngineError> {
        let d = self.docker();
        let name = run_service_name(&run.stack, &run.name_hint, &random_suffix(6));
        let mut spec = run_service_spec(run, &name);
        self.resolve_ids(&mut spec).await?;
        let auths = run.auths.clone().unwrap_or_else(|| RegistryAuths::load(None));
        let creds = auths.for_image(crate::apply::image_of(&spec));
        let created = d.create_service(spec, creds).await.map_err(api("create service"))?;
        let id = created.id.clone().unwrap_or_else(|| name.clone());
        active_runs().insert(id.clone());
        let mut guard = RemoveGuard { docker: d.clone(), name: Some(id.clone()) };
        let result = self.wait_run(&id, run, on_line).await;
        guard.name = None;
        let removed = d.delete_service(&id).await;
        active_runs().remove(&id);
        let outcome = result?;
        if let Err(e) = removed
            && !is_not_found(&e)
        {
            return Err(EngineError::Api { call: "remove service", source: e });
        }
        Ok(outcome)
    }

    /// Removes the run services of [`Engine::run_once`] calls of this process that have not finished
    /// (their futures were dropped, e.g. on Ctrl-C); returns how many. Call it before exiting.
    pub async fn remove_active_runs(&self) -> usize {
        let ids: Vec<String> = active_runs().drain().collect();
        for id in &ids {
            let _ = self.docker().delete_service(id).await;
        }
        ids.len()
    }

    /// Removes leftover one-off run services of `stack` (labelled `io.berth.kind=run`), e.g. after a
    /// crash; returns their names. The deploy calls this before its release phase.
    pub async fn remove_leftover_runs(&self, stack: &str) -> Result<Vec<String>, EngineError> {
        let d = self.docker();
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{LABEL_OWNER}={stack}"), format!("{LABEL_KIND}=run")])]);
        let services = d
            .list_services(Some(ListServicesOptions { filters: Some(filters), status: None }))
            .await
            .map_err(api("list services"))?;
        let mut removed = Vec::new();
        for s in services {
            let Some(id) = s.id else { continue };
            match d.delete_service(&id).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(EngineError::Api { call: "remove service", source: e }),
            }
            removed.push(s.spec.and_then(|s| s.name).unwrap_or(id));
        }
        Ok(removed)
    }

    /// Fills in missing secret/config IDs by name.
    async fn resolve_ids(&self, spec: &mut ServiceSpec) -> Result<(), EngineError> {
        let Some(cs) = spec.task_template.as_ref().and_then(|t| t.container_spec.as_ref()) else { return Ok(()) };
        let needs_secrets = cs.secrets.iter().flatten().any(|s| s.secret_id.as_deref().unwrap_or("").is_empty());
        let needs_configs = cs.configs.iter().flatten().any(|c| c.config_id.as_deref().unwrap_or("").is_empty());
        if !needs_secrets && !needs_configs {
            return Ok(());
        }
        let d = self.docker();
        let secrets = d.list_secrets(None::<ListSecretsOptions>).await.map_err(api("list secrets"))?;
        let configs = d.list_configs(None::<ListConfigsOptions>).await.map_err(api("list configs"))?;
        let secret_ids: HashMap<String, String> =
            secrets.into_iter().filter_map(|s| Some((s.spec?.name?, s.id?))).collect();
        let config_ids: HashMap<String, String> =
            configs.into_iter().filter_map(|c| Some((c.spec?.name?, c.id?))).collect();
        let cs = spec.task_template.as_mut().and_then(|t| t.container_spec.as_mut()).expect("checked above");
        for s in cs.secrets.iter_mut().flatten() {
            if s.secret_id.as_deref().unwrap_or("").is_empty() {
                let name = s.secret_name.clone().unwrap_or_default();
                match secret_ids.get(&name) {
                    Some(id) => s.secret_id = Some(id.clone()),
                    None => return Err(missing_ref("secret", name)),
                }
            }
        }
        for c in cs.configs.iter_mut().flatten() {
            if c.config_id.as_deref().unwrap_or("").is_empty() {
                let name = c.config_name.clone().unwrap_or_default();
                match config_ids.get(&name) {
                    Some(id) => c.config_id = Some(id.clone()),
                    None => return Err(missing_ref("config", name)),
                }
            }
        }
        Ok(())
    }

    /// Waits for the run's task to end, following its logs; the outcome or the task's error.
    async fn wait_run(
        &self,
        id: &str,
        run: &RunSpec,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<RunOutcome, EngineError> {
        let d = self.docker();
        let service = run.name_hint.clone();
        let image = run
            .spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let mut out = Output { on_line, tail: VecDeque::new(), count: 0 };
        let filters = HashMap::from([("service".to_string(), vec![id.to_string()])]);
        let mut pending_since: Option<Instant> = None;
        type LogStream = std::pin::Pin<
            Box<dyn futures_util::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + Send>,
        >;
        let mut follow: Option<LogStream> = None;
        let mut followed = false;
        let mut splitter = LineSplitter::default();
        let mut follow_lines = 0usize;
        let task = loop {
            let tasks = d
                .list_tasks(Some(ListTasksOptions { filters: Some(filters.clone()) }))
                .await
                .map_err(api("list tasks"))?;
            let task = tasks.into_iter().max_by_key(|t| t.version.as_ref().and_then(|v| v.index).unwrap_or(0));
            if let Some(t) = &task {
                let state = task_state(t);
                if is_terminal(state) {
                    break t.clone();
                }
                let err = task_err(t);
                if state == TaskState::PENDING && err.contains("no suitable node") {
                    let since = *pending_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= NO_NODE_GRACE {
                        return Err(EngineError::NoSuitableNode { service, detail: err });
                    }
                } else {
                    pending_since = None;
                }
                if !followed
                    && has_started(state)
                    && let Some(tid) = t.id.clone()
                {
                    let opts = bollard::query_parameters::LogsOptions {
                        follow: true,
                        stdout: true,
                        stderr: true,
                        tail: "all".into(),
                        ..Default::default()
                    };
                    follow = Some(Box::pin(d.task_logs(&tid, Some(opts))));
                    followed = true;
                }
            }
            // Read logs until the next poll.
            let deadline = tokio::time::sleep(POLL);
            tokio::pin!(deadline);
            loop {
                match &mut follow {
                    Some(stream) => tokio::select! {
                        _ = &mut deadline => break,
                        item = stream.next() => match item {
                            Some(Ok(chunk)) => splitter.push(&chunk.into_bytes(), &mut |l| {
                                follow_lines += 1;
                                out.line(l)
                            }),
                            // The follow stream ended or broke: the catch-up read below fills in.
                            Some(Err(_)) | None => {
                                follow = None;
                                (&mut deadline).await;
                                break;
                            }
                        }
                    },
                    None => {
                        (&mut deadline).await;
                        break;
                    }
                }
            }
        };
        drop(follow);
        let state = task_state(&task);
        // Catch up: everything the follow stream did not deliver (it may lag the task's end).
        if has_started(state)
            && state != TaskState::REJECTED
            && let Some(tid) = task.id.clone()
        {
            // A partial line already received counts as delivered only once complete.
            splitter = LineSplitter::default();
            let opts = bollard::query_parameters::LogsOptions {
                follow: false,
                stdout: true,
                stderr: true,
                tail: "all".into(),
                ..Default::default()
            };
            let mut stream = d.task_logs(&tid, Some(opts));
            let mut seen = 0usize;
            let mut lines = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                splitter.push(&chunk.into_bytes(), &mut |l| lines.push(l));
            }
            splitter.finish(&mut |l| lines.push(l));
            for l in lines {
                seen += 1;
                if seen > follow_lines {
                    out.line(l);
                }
            }
        }
        let err = task_err(&task);
        let exit = task.status.as_ref().and_then(|s| s.container_status.as_ref()).and_then(|c| c.exit_code);
        match state {
            TaskState::COMPLETE => {
                Ok(RunOutcome { exit_code: exit.unwrap_or(0), output_tail: out.tail.into_iter().collect() })
            }
            // The command ran and exited non-zero. (A container that could not start — no such
            // executable — also gets an exit code, but its error says "starting container failed".)
            TaskState::FAILED if err.contains("non-zero exit") || (err.is_empty() && exit.is_some_and(|c| c != 0)) => {
                Ok(RunOutcome { exit_code: exit.unwrap_or(1), output_tail: out.tail.into_iter().collect() })
            }
            _ if err.contains("No such image")
                || err.contains("pull access denied")
                || err.contains("manifest unknown") =>
            {
                Err(EngineError::ImageMissing { service, image, detail: err })
            }
            _ => Err(EngineError::TaskFailed { service, state: state.to_string(), detail: err }),
        }
    }
}

fn missing_ref(what: &'static str, name: String) -> EngineError {
    EngineError::NotFound { what, name, suggestion: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{EndpointSpec, TaskSpec, TaskSpecContainerSpec};

    #[test]
    fn run_service_name_strips_stack_prefix_and_fits_63_chars() {
        assert_eq!(run_service_name("app", "app_web", "abc123"), "app_web_run-abc123");
        assert_eq!(run_service_name("app", "web", "abc123"), "app_web_run-abc123");
        let long = run_service_name("s", &"x".repeat(80), "abc123");
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("_run-abc123"));
    }

    #[test]
    fn random_suffix_is_lowercase_alphanumeric_and_varies() {
        let a = random_suffix(6);
        let b = random_suffix(6);
        assert_eq!(a.len(), 6);
        assert!(a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(a, b);
    }

    #[test]
    fn run_spec_keeps_entrypoint_sets_args_drops_ports_and_health() {
        let spec = ServiceSpec {
            name: Some("app_web".into()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some("img:1".into()),
                    command: Some(vec!["/entry.sh".into()]),
                    args: Some(vec!["serve".into()]),
                    env: Some(vec!["A=1".into()]),
                    health_check: Some(HealthConfig {
                        test: Some(vec!["CMD".into(), "true".into()]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            endpoint_spec: Some(EndpointSpec::default()),
            ..Default::default()
        };
        let run = RunSpec {
            stack: "app".into(),
            name_hint: "web".into(),
            spec,
            command: vec!["python".into(), "manage.py".into(), "migrate".into()],
            tty: false,
            auths: None,
        };
        let s = run_service_spec(&run, "app_web_run-x");
        let cs = s.task_template.as_ref().unwrap().container_spec.as_ref().unwrap();
        assert_eq!(cs.command.as_deref(), Some(&["/entry.sh".to_string()][..]));
        assert_eq!(cs.args.as_ref().unwrap(), &run.command);
        assert_eq!(cs.env.as_ref().unwrap(), &vec!["A=1".to_string()]);
        assert_eq!(cs.health_check.as_ref().unwrap().test.as_ref().unwrap(), &vec!["NONE".to_string()]);
        assert!(s.endpoint_spec.is_none());
        let labels = s.labels.unwrap();
        assert_eq!(labels[LABEL_OWNER], "app");
        assert_eq!(labels[LABEL_KIND], "run");
        assert!(!labels.contains_key(berth_plan::desired::LABEL_NAMESPACE));
        let rp = s.task_template.unwrap().restart_policy.unwrap();
        assert_eq!(rp.condition, Some(TaskSpecRestartPolicyConditionEnum::NONE));
        assert_eq!(s.mode.unwrap().replicated.unwrap().replicas, Some(1));
    }

    #[test]
    fn line_splitter_joins_chunks_and_trims_cr() {
        let mut s = LineSplitter::default();
        let mut got = Vec::new();
        s.push(b"he", &mut |l| got.push(l));
        s.push(b"llo\r\nwor", &mut |l| got.push(l));
        s.push(b"ld\nend", &mut |l| got.push(l));
        s.finish(&mut |l| got.push(l));
        assert_eq!(got, vec!["hello", "world", "end"]);
    }
}
