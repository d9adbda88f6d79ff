//! Deploy: observe → plan → record release → release phase → apply → wait → (rollback | cleanup).
//!
//! Level-driven and stateless: every step is idempotent, so a deploy interrupted at any point is
//! finished by the next `deploy`, which observes what exists and plans only the rest.

// A DeployError carries a Failure with log lines: large by design, returned once per deploy.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

use crate::apply::ApplyOptions;
use crate::registry_auth::RegistryAuths;
use crate::release::{
    LABEL_KIND, LABEL_RELEASE, ReleaseStatus, current_release_of, has_namespace, highest_service_label, label,
};
use crate::watch::{Event, Failure};
use crate::{Engine, EngineError, RunSpec};
use berth_plan::desired::LABEL_OWNER;
use berth_plan::{Action, Desired, Observed, Plan, PlanOptions};
use bollard::query_parameters::{ListConfigsOptions, ListSecretsOptions};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// How to deploy.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Take over objects of the stack that `docker stack deploy` made.
    pub adopt: bool,
    /// How long to wait for convergence before declaring the release failed.
    pub timeout: Duration,
    /// Roll the whole stack back to the last good release when the new one fails.
    pub auto_rollback: bool,
    /// The engine is this machine's (swarm mode may be initialised).
    pub local: bool,
    /// The stack files, recorded in the release.
    pub files: Vec<String>,
    /// `x-berth.release` commands (argvs, in order) by full service name.
    pub release_commands: BTreeMap<String, Vec<Vec<String>>>,
    /// Registry credentials for services and release commands; `None`: the Docker CLI's `config.json`.
    pub auths: Option<RegistryAuths>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            adopt: false,
            timeout: Duration::from_secs(300),
            auto_rollback: true,
            local: true,
            files: Vec::new(),
            release_commands: BTreeMap::new(),
            auths: None,
        }
    }
}

/// What a successful deploy (or rollback) did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeployReport {
    /// The release now live; `None` when nothing had to change and the stack has no release yet.
    pub release: Option<u64>,
    /// True when the stack was already up to date (no write call was made).
    pub up_to_date: bool,
    /// Number of services of the stack.
    pub services: usize,
    /// Write calls made to the engine.
    pub writes: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The plan's notes.
    pub notes: Vec<String>,
    /// Objects removed after success (old secrets/configs, leftover one-off services).
    pub removed: Vec<String>,
}

/// Why a deploy failed.
#[derive(Debug, thiserror::Error)]

pub enum DeployError {
    /// Talking to the engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The plan cannot reach the desired state (taken names, foreign objects).
    #[error("the stack cannot be deployed as planned:\n  {}", notes.join("\n  "))]
    Plan {
        /// The plan's `error:` notes.
        notes: Vec<String>,
    },
    /// Objects of the stack that `docker stack deploy` made would have to change; berth does not
    /// touch them unless asked to adopt them.
    #[error("the stack has objects berth does not own:\n  {}", notes.join("\n  "))]
    NotOwned {
        /// The plan's notes about them.
        notes: Vec<String>,
    },
    /// A release command failed; nothing was updated.
    #[error(
        "release {release} aborted: release command `{}` of service {service} {}; the running version is untouched",
        command.join(" "),
        match exit_code { Some(c) => format!("exited with code {c}"), None => format!("could not run: {}", error.clone().unwrap_or_default()) }
    )]
    ReleaseCommand {
        /// The aborted release.
        release: u64,
        /// Full service name.
        service: String,
        /// The argv.
        command: Vec<String>,
        /// Its exit code, when it ran.
        exit_code: Option<i64>,
        /// Why it could not run, when it did not.
        error: Option<String>,
        /// Its last output lines.
        output: Vec<String>,
    },
    /// The new release did not converge.
    #[error(
        "release {release} failed: {failure}; {}",
        match (rolled_back_to, rollback_error) {
            (Some(m), None) => format!("rolled back to release {m}"),
            (Some(m), Some(e)) => format!("rolling back to release {m} failed too: {e}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "not rolled back".to_string(),
        }
    )]
    Failed {
        /// The failed release.
        release: u64,
        /// What failed.
        failure: Failure,
        /// The release the stack was rolled back to.
        rolled_back_to: Option<u64>,
        /// Why there was no (successful) rollback.
        rollback_error: Option<String>,
    },
}

impl DeployError {
    /// What the user can do, one line.
    pub fn hint(&self) -> Option<String> {
        match self {
            DeployError::Engine(e) => e.hint(),
            DeployError::Plan { .. } => {
                Some("rename or remove the objects named above; `berth plan` shows the plan".into())
            }
            DeployError::NotOwned { .. } => {
                Some("deploy with `--adopt` to let berth take them over (labels them as berth's)".into())
            }
            DeployError::ReleaseCommand { .. } => {
                Some("fix the command (try it with `berth run SERVICE -- CMD`) and deploy again".into())
            }
            DeployError::Failed { failure, .. } => Some(
                failure
                    .hint()
                    .unwrap_or_else(|| "`berth logs SERVICE` and `berth ps` show more; fix and deploy again".into()),
            ),
        }
    }

    /// The failing task's last log lines (or the release command's output).
    pub fn log_lines(&self) -> &[String] {
        match self {
            DeployError::ReleaseCommand { output, .. } => output,
            DeployError::Failed { failure, .. } => &failure.logs,
            _ => &[],
        }
    }
}

/// The newest recorded release of `stack` when it has no `ok` marker and the highest release
/// label among the services is its number (it was applied, but never confirmed).
fn pending_release(stack: &str, observed_all: &Observed) -> Option<u64> {
    let newest = observed_all
        .configs
        .values()
        .filter_map(|c| {
            let labels = c.spec.as_ref()?.labels.as_ref();
            (label(labels, LABEL_OWNER) == Some(stack) && label(labels, LABEL_KIND) == Some("release"))
                .then(|| label(labels, LABEL_RELEASE)?.parse::<u64>().ok())?
        })
        .max()?;
    let ok = format!("{}-ok", crate::release::release_config_name(stack, newest));
    (!observed_all.configs.contains_key(&ok) && highest_service_label(observed_all) == Some(newest)).then_some(newest)
}

/// Updates (with the same spec) for the services whose rolling update Swarm paused, e.g. while
/// berth was away and a new task failed to start: an update resets Swarm's update status and
/// resumes the rollout. A release that is really broken pauses again and is reported.
fn resume_paused(desired: &Desired, observed: &Observed) -> Plan {
    use bollard::models::ServiceUpdateStatusStateEnum as U;
    let actions = observed
        .services
        .iter()
        .filter(|(_, s)| s.update_status.as_ref().and_then(|u| u.state) == Some(U::PAUSED))
        .filter_map(|(name, s)| {
            let mut spec = desired.services.get(name)?.clone();
            let force = s.spec.as_ref().and_then(|s| s.task_template.as_ref()).and_then(|t| t.force_update);
            if let Some(t) = spec.task_template.as_mut() {
                t.force_update = force;
            }
            Some(Action::UpdateService {
                name: name.clone(),
                id: s.id.clone()?,
                version: s.version.as_ref()?.index?,
                spec,
                changes: Vec::new(),
            })
        })
        .collect();
    Plan { stack: desired.stack.clone(), actions, notes: Vec::new() }
}

/// Drops berth's bookkeeping objects (release records, one-off runs) from an observation, so the
/// plan neither sees nor prunes them.
pub fn without_bookkeeping(mut observed: Observed) -> Observed {
    let is_bookkeeping = |l: Option<&HashMap<String, String>>| label(l, LABEL_KIND).is_some();
    observed.configs.retain(|_, c| !is_bookkeeping(c.spec.as_ref().and_then(|s| s.labels.as_ref())));
    observed.services.retain(|_, s| !is_bookkeeping(s.spec.as_ref().and_then(|s| s.labels.as_ref())));
    observed
}

/// Gives each desired service the `io.berth.release` label it has now, so that the label alone
/// never makes a difference in the plan (apply sets the new number on what changes).
fn carry_release_labels(desired: &mut Desired, observed: &Observed) {
    for (name, spec) in desired.services.iter_mut() {
        let now = observed.services.get(name).and_then(|s| label(s.spec.as_ref()?.labels.as_ref(), LABEL_RELEASE));
        let labels = spec.labels.get_or_insert_with(HashMap::new);
        match now {
            Some(n) => {
                labels.insert(LABEL_RELEASE.into(), n.to_string());
            }
            None => {
                labels.remove(LABEL_RELEASE);
            }
        }
    }
}

fn now_nanos() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
        - 2_000_000_000 // clock skew margin between us and the engine
}

fn plan_for(desired: &Desired, observed: &Observed, adopt: bool) -> Result<Plan, DeployError> {
    let plan = berth_plan::plan(desired, observed, &PlanOptions { prune: true, remove_volumes: false, adopt });
    if plan.has_errors() {
        return Err(DeployError::Plan {
            notes: plan.notes.iter().filter(|n| n.starts_with("error:")).cloned().collect(),
        });
    }
    let foreign: Vec<String> =
        plan.notes.iter().filter(|n| n.contains("created by docker stack deploy and differs")).cloned().collect();
    if !adopt && !foreign.is_empty() {
        return Err(DeployError::NotOwned { notes: foreign });
    }
    Ok(plan)
}

/// The plan exactly as `berth deploy` would carry it out, from the full observation: berth's
/// bookkeeping objects are left out, release labels carried over, and secret/config removals
/// deferred to after a successful deploy. `berth plan` shows this, so an up-to-date stack plans
/// nothing.
pub fn deploy_plan(desired: &Desired, observed_all: Observed, opts: &PlanOptions) -> Plan {
    let observed = without_bookkeeping(observed_all);
    let mut desired = desired.clone();
    carry_release_labels(&mut desired, &observed);
    let mut plan = berth_plan::plan(&desired, &observed, opts);
    defer_removals(&mut plan);
    plan
}

/// The plan without secret/config removals: old versions stay until the next successful deploy
/// (so that a rollback still finds them); [`Engine::deploy`] removes them after success.
fn defer_removals(plan: &mut Plan) {
    plan.actions.retain(|a| !matches!(a, Action::RemoveSecret { .. } | Action::RemoveConfig { .. }));
}

impl Engine {
    /// Deploys `desired` (see the module doc). An empty plan makes no write call and records no
    /// release. Otherwise release `N` is recorded, release commands run (for changed services
    /// that have them, after their dependencies are up, before any service update), the plan is
    /// applied and the stack watched until converged; on failure the whole stack is rolled back
    /// to the last good release (unless `auto_rollback` is off).
    pub async fn deploy(
        &self,
        desired: Desired,
        opts: DeployOptions,
        on: &mut (dyn FnMut(Event) + Send),
    ) -> Result<DeployReport, DeployError> {
        let start = Instant::now();
        let stack = desired.stack.clone();
        self.ensure_swarm(opts.local).await?;
        let observed_all = self.observe(&stack).await?;
        let previous = current_release_of(&stack, &observed_all);
        // The newest release, if it never ended well but the services carry it: berth was killed
        // while waiting, or it failed without a rollback. Finished below if nothing else changes.
        let unfinished = pending_release(&stack, &observed_all);
        let observed = without_bookkeeping(observed_all);
        let mut desired = desired;
        carry_release_labels(&mut desired, &observed);
        let auths = opts.auths.clone().unwrap_or_else(|| RegistryAuths::load(None));
        crate::registry_auth::label_services(&mut desired, &auths);
        let opts = DeployOptions { auths: Some(auths), ..opts };
        let mut plan = plan_for(&desired, &observed, opts.adopt)?;
        defer_removals(&mut plan);
        let mut report = DeployReport {
            release: previous,
            services: desired.services.len(),
            notes: plan.notes.clone(),
            ..Default::default()
        };
        if plan.is_empty() {
            report.up_to_date = true;
            if let Some(n) = unfinished {
                on(Event::Message(format!("release {n} did not finish: waiting for it to converge")));
                let resume = resume_paused(&desired, &observed);
                if !resume.is_empty() {
                    let names: Vec<&str> = resume.actions.iter().map(|a| a.name()).collect();
                    on(Event::Message(format!("release {n}: resuming the update Swarm paused: {}", names.join(", "))));
                    report.writes += self
                        .apply_with(&resume, &ApplyOptions { release: Some(n), auths: opts.auths.clone() }, on)
                        .await?
                        .writes;
                }
                let all: Vec<String> = desired.services.keys().cloned().collect();
                // Only failures from now on count: tasks that died while berth was away (e.g. a
                // dockerd restart killed them) were replaced by Swarm; a broken release still
                // fails again, or has paused its update.
                match self.wait_converged(&stack, &all, now_nanos(), opts.timeout, on).await {
                    Ok(()) => {
                        self.mark_release(&stack, n, ReleaseStatus::Ok).await?;
                        self.mark_live(&stack, n).await?;
                        report.writes += 2;
                        report.release = Some(n);
                        // A success like any other: old secret/config versions and leftover runs go.
                        let (removed, writes) =
                            self.cleanup_after(&stack, &desired, previous.filter(|p| *p != n)).await?;
                        report.writes += writes;
                        report.removed = removed;
                    }
                    Err(failure) => {
                        let _ = self.mark_release(&stack, n, ReleaseStatus::Failed).await;
                        return Err(DeployError::Failed {
                            release: n,
                            failure,
                            rolled_back_to: None,
                            rollback_error: Some("not rolled back: deploy a fix, or `berth rollback`".into()),
                        });
                    }
                }
            }
            report.elapsed = start.elapsed();
            return Ok(report);
        }

        let record = self.record_release(&desired, &opts.files).await?;
        let n = record.number;
        report.writes += 1;
        on(Event::Message(format!("release {n}: {} change(s)", plan.actions.len())));
        let since = now_nanos();
        let apply_opts = ApplyOptions { release: Some(n), auths: opts.auths.clone() };

        // Release phase: services that change and have release commands.
        let changing: BTreeSet<&str> = plan
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateService { name, .. } | Action::UpdateService { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let with_commands: Vec<String> = changing
            .iter()
            .filter(|s| opts.release_commands.get(**s).is_some_and(|c| !c.is_empty()))
            .map(|s| s.to_string())
            .collect();
        let result: Result<(), Stop> = async {
            if with_commands.is_empty() {
                report.writes += self.apply_with(&plan, &apply_opts, on).await.map_err(engine_failure)?.writes;
                return Ok(());
            }
            // 1. Objects, and new services that are not waiting on release commands (dependencies).
            let (first, rest): (Vec<Action>, Vec<Action>) = plan.actions.iter().cloned().partition(|a| match a {
                Action::CreateNetwork { .. }
                | Action::CreateVolume { .. }
                | Action::CreateSecret { .. }
                | Action::CreateConfig { .. } => true,
                Action::CreateService { name, .. } => !with_commands.contains(name),
                _ => false,
            });
            let created: Vec<String> = first
                .iter()
                .filter(|a| matches!(a, Action::CreateService { .. }))
                .map(|a| a.name().to_string())
                .collect();
            let first = Plan { stack: stack.clone(), actions: first, notes: Vec::new() };
            report.writes += self.apply_with(&first, &apply_opts, on).await.map_err(engine_failure)?.writes;
            self.wait_converged(&stack, &created, since, opts.timeout, on).await?;
            // 2. Release commands, with the new spec.
            for svc in &with_commands {
                for cmd in &opts.release_commands[svc] {
                    on(Event::Message(format!("release {n}: {svc}: running `{}`", cmd.join(" "))));
                    let run = RunSpec {
                        stack: stack.clone(),
                        name_hint: svc.strip_prefix(&format!("{stack}_")).unwrap_or(svc).to_string(),
                        spec: desired.services[svc].clone(),
                        command: cmd.clone(),
                        tty: false,
                        auths: opts.auths.clone(),
                    };
                    let svc_name = svc.clone();
                    let mut on_line =
                        |line: &str| on(Event::Output { service: svc_name.clone(), line: line.to_string() });
                    report.writes += 2;
                    let outcome = self.run_once(&run, &mut on_line).await;
                    let (exit_code, error, output) = match outcome {
                        Ok(o) if o.exit_code == 0 => continue,
                        Ok(o) => (Some(o.exit_code), None, o.output_tail),
                        Err(e) => (None, Some(e.to_string()), Vec::new()),
                    };
                    return Err(Stop::Command { service: svc.clone(), command: cmd.clone(), exit_code, error, output });
                }
            }
            // 3. Everything else.
            let rest = Plan { stack: stack.clone(), actions: rest, notes: Vec::new() };
            report.writes += self.apply_with(&rest, &apply_opts, on).await.map_err(engine_failure)?.writes;
            Ok(())
        }
        .await;

        let result = match result {
            Ok(()) => {
                let all: Vec<String> = desired.services.keys().cloned().collect();
                self.wait_converged(&stack, &all, since, opts.timeout, on).await.map_err(Stop::Converge)
            }
            Err(f) => Err(f),
        };

        match result {
            Ok(()) => {
                self.mark_release(&stack, n, ReleaseStatus::Ok).await?;
                self.mark_live(&stack, n).await?;
                report.writes += 2;
                let (removed, writes) = self.cleanup_after(&stack, &desired, previous).await?;
                report.writes += writes;
                report.removed = removed;
                report.release = Some(n);
                report.elapsed = start.elapsed();
                Ok(report)
            }
            Err(Stop::Command { service, command, exit_code, error, output }) => {
                let _ = self.mark_release(&stack, n, ReleaseStatus::Failed).await;
                Err(DeployError::ReleaseCommand { release: n, service, command, exit_code, error, output })
            }
            Err(Stop::Converge(failure)) => {
                let _ = self.mark_release(&stack, n, ReleaseStatus::Failed).await;
                if !opts.auto_rollback {
                    return Err(DeployError::Failed {
                        release: n,
                        failure,
                        rolled_back_to: None,
                        rollback_error: Some("automatic rollback is off".into()),
                    });
                }
                let target = self.last_good_release(&stack, n).await?;
                let Some(m) = target else {
                    return Err(DeployError::Failed {
                        release: n,
                        failure,
                        rolled_back_to: None,
                        rollback_error: Some("there is no earlier good release to roll back to".into()),
                    });
                };
                on(Event::Message(format!("release {n} failed: {failure}; rolling back to release {m}")));
                let rollback_error = match self.apply_release(&stack, m, opts.timeout, on).await {
                    Ok(_) => None,
                    Err(e) => Some(e.to_string()),
                };
                Err(DeployError::Failed { release: n, failure, rolled_back_to: Some(m), rollback_error })
            }
        }
    }

    /// The highest release below `below` marked `ok`.
    async fn last_good_release(&self, stack: &str, below: u64) -> Result<Option<u64>, EngineError> {
        Ok(self
            .list_releases(stack)
            .await?
            .into_iter()
            .filter(|r| r.number < below && r.status == Some(ReleaseStatus::Ok))
            .map(|r| r.number)
            .max())
    }

    /// Rolls the whole stack back to release `to` (default: the last good release before the
    /// current one), through the same plan/apply/wait path. Secrets the release needs must still
    /// exist in the swarm.
    pub async fn rollback(
        &self,
        stack: &str,
        to: Option<u64>,
        timeout: Duration,
        on: &mut (dyn FnMut(Event) + Send),
    ) -> Result<DeployReport, DeployError> {
        let start = Instant::now();
        let target = match to {
            Some(n) => n,
            None => {
                let current = self.current_release(stack).await?.ok_or_else(|| EngineError::NotFound {
                    what: "release of stack",
                    name: stack.to_string(),
                    suggestion: None,
                })?;
                self.last_good_release(stack, current).await?.ok_or_else(|| EngineError::Refused {
                    message: format!("stack {stack} has no good release before release {current}"),
                    hint: Some("`berth releases` lists them; name one: `berth rollback N`".into()),
                })?
            }
        };
        let mut report = self.apply_release(stack, target, timeout, on).await?;
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// Makes the stack match release `n`'s stored desired state and waits for it.
    async fn apply_release(
        &self,
        stack: &str,
        n: u64,
        timeout: Duration,
        on: &mut (dyn FnMut(Event) + Send),
    ) -> Result<DeployReport, DeployError> {
        let record = self.read_release(stack, n).await?;
        let mut desired = record.desired;
        let observed_all = self.observe(stack).await?;
        let observed = without_bookkeeping(observed_all.clone());
        let missing: Vec<&String> = desired
            .secrets
            .iter()
            // Generated secrets are made again by `apply` when missing.
            .filter(|(name, s)| {
                s.data.is_none()
                    && s.driver.is_none()
                    && berth_plan::plan::generated_length(s).is_none()
                    && !observed.secrets.contains_key(*name)
            })
            .map(|(name, _)| name)
            .collect();
        if !missing.is_empty() {
            return Err(EngineError::Refused {
                message: format!(
                    "release {n} needs secret(s) that no longer exist: {}",
                    missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
                hint: Some("secret values are not stored in releases; deploy from the files instead".into()),
            }
            .into());
        }
        carry_release_labels(&mut desired, &observed);
        let auths = RegistryAuths::load(None);
        crate::registry_auth::label_services(&mut desired, &auths);
        let mut plan = plan_for(&desired, &observed, true)?;
        defer_removals(&mut plan);
        let mut report = DeployReport {
            release: Some(n),
            services: desired.services.len(),
            notes: plan.notes.clone(),
            up_to_date: plan.is_empty(),
            ..Default::default()
        };
        let current = current_release_of(stack, &observed_all);
        if plan.is_empty() {
            if current != Some(n) {
                self.mark_live(stack, n).await?;
                report.writes += 1;
            }
            return Ok(report);
        }
        let since = now_nanos();
        report.writes +=
            self.apply_with(&plan, &ApplyOptions { release: Some(n), auths: Some(auths) }, on).await?.writes;
        let all: Vec<String> = desired.services.keys().cloned().collect();
        self.wait_converged(stack, &all, since, timeout, on).await.map_err(|failure| DeployError::Failed {
            release: n,
            failure,
            rolled_back_to: None,
            rollback_error: Some(format!("the stack did not converge on release {n}")),
        })?;
        self.mark_live(stack, n).await?;
        report.writes += 1;
        Ok(report)
    }

    /// [`Engine::cleanup`] with the desired state of release `previous` (the one live before).
    async fn cleanup_after(
        &self,
        stack: &str,
        desired: &Desired,
        previous: Option<u64>,
    ) -> Result<(Vec<String>, u64), EngineError> {
        let previous_desired = match previous {
            Some(p) => self.read_release(stack, p).await.ok().map(|r| r.desired),
            None => None,
        };
        self.cleanup(stack, desired, previous_desired.as_ref()).await
    }

    /// After a successful deploy: removes the stack's secrets and configs that neither `desired`
    /// nor the `previous` release uses, and leftover one-off run services. Returns what was
    /// removed and the number of write calls.
    async fn cleanup(
        &self,
        stack: &str,
        desired: &Desired,
        previous: Option<&Desired>,
    ) -> Result<(Vec<String>, u64), EngineError> {
        let d = self.docker();
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_OWNER}={stack}")])]);
        let (secrets, configs) = futures_util::try_join!(
            async {
                d.list_secrets(Some(ListSecretsOptions { filters: Some(filters.clone()) }))
                    .await
                    .map_err(|source| EngineError::Api { call: "list secrets", source })
            },
            async {
                d.list_configs(Some(ListConfigsOptions { filters: Some(filters.clone()) }))
                    .await
                    .map_err(|source| EngineError::Api { call: "list configs", source })
            },
        )?;
        let mut removed = Vec::new();
        let mut writes = 0;
        for s in secrets {
            let Some(spec) = s.spec else { continue };
            let name = spec.name.clone().unwrap_or_default();
            let labels = spec.labels.as_ref();
            if !has_namespace(labels, stack)
                || label(labels, LABEL_KIND).is_some()
                || desired.secrets.contains_key(&name)
                || previous.is_some_and(|p| p.secrets.contains_key(&name))
                || previous.is_none()
            {
                continue;
            }
            writes += 1;
            // Still in use (a run in progress)? Then next time.
            if d.delete_secret(s.id.as_deref().unwrap_or(&name)).await.is_ok() {
                removed.push(format!("secret {name}"));
            }
        }
        // Only the newest few `live` markers matter (the newest says which release is current).
        let live_prefix = format!("{stack}_berth-live-");
        let mut live: Vec<(String, String)> = configs
            .iter()
            .filter_map(|c| Some((c.spec.as_ref()?.name.clone()?, c.id.clone()?)))
            .filter(|(name, _)| name.starts_with(&live_prefix))
            .collect();
        live.sort();
        for (_, id) in live.iter().rev().skip(KEEP_LIVE_MARKERS) {
            writes += 1;
            let _ = d.delete_config(id).await;
        }
        for c in configs {
            let Some(spec) = c.spec else { continue };
            let name = spec.name.clone().unwrap_or_default();
            let labels = spec.labels.as_ref();
            if !has_namespace(labels, stack)
                || label(labels, LABEL_KIND).is_some()
                || desired.configs.contains_key(&name)
                || previous.is_some_and(|p| p.configs.contains_key(&name))
                || previous.is_none()
            {
                continue;
            }
            writes += 1;
            if d.delete_config(c.id.as_deref().unwrap_or(&name)).await.is_ok() {
                removed.push(format!("config {name}"));
            }
        }
        let runs = self.remove_leftover_runs(stack).await?;
        writes += runs.len() as u64;
        removed.extend(runs.into_iter().map(|r| format!("service {r}")));
        Ok((removed, writes))
    }
}

/// How many `live` markers a successful deploy keeps.
const KEEP_LIVE_MARKERS: usize = 5;

/// Why the forward part of a deploy stopped.
enum Stop {
    /// Applying or converging failed: roll back.
    Converge(Failure),
    /// A release command failed: nothing was updated.
    Command {
        service: String,
        command: Vec<String>,
        exit_code: Option<i64>,
        error: Option<String>,
        output: Vec<String>,
    },
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Stop {
        Stop::Converge(f)
    }
}

fn engine_failure(e: EngineError) -> Stop {
    let hint = e.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default();
    Stop::Converge(Failure { service: String::new(), reason: format!("{e}{hint}"), task_error: None, logs: Vec::new() })
}
