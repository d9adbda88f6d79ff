//! The agent's loop (does I/O): observe → [`decide`] → carry the actions out → sleep → again.
//! Nothing is kept between rounds that a restart would lose, except which wait reason was logged
//! last (so a waiting agent logs a line when the reason changes, not every round).

use crate::decide::{SWARM_PORT, decide};
use crate::imds::{Imds, ImdsError};
use crate::model::{Action, Local, Me, Observed, Settings, Tokens};
use berth_aws::AwsError;
use berth_aws::asg::Asg;
use berth_aws::discovery::{Discovery, JoinTokens, Role, Token, rfc3339};
use berth_aws::route53::Dns;
use berth_engine::{Engine, EngineError, RegistryAuths, Target};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The agent's command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub bucket: String,
    pub role: Role,
    pub region: String,
    /// The CloudFormation stack: its groups are found by the `aws:cloudformation:stack-name` tag.
    pub cfn_stack: Option<String>,
    pub group: Option<String>,
    pub hosted_zone_id: Option<String>,
    pub domains: Vec<String>,
    /// Overrides the metadata service's instance ID (tests: moto's instance IDs).
    pub instance_id: Option<String>,
    /// Docker engine URL (`unix:///path`, `tcp://host:port`); default: the local engine.
    pub docker: Option<String>,
    /// Metadata service URL.
    pub imds: String,
    pub interval: Duration,
    /// TTL of the A records the agent writes, and how long a leaving edge node waits after its notice.
    pub dns_ttl: u64,
    /// Dispatcher heartbeat set at `swarm init`.
    pub heartbeat: Duration,
    /// How often the leader fetches a new ECR token for the swarm's pulls (zero: never).
    pub registry_refresh: Duration,
    /// SSH host public keys: a directory (its `ssh_host_*_key.pub`) or one file of key lines.
    pub ssh_host_keys: std::path::PathBuf,
}

/// Default of [`Config::ssh_host_keys`].
pub const SSH_HOST_KEYS_DIR: &str = "/etc/ssh";

/// The SSH host public keys at `path` (see [`Config::ssh_host_keys`]) as `type base64` (the
/// comment, a host name, dropped), sorted. None readable (no sshd): empty, and the CLI falls back
/// to trust on first use.
pub fn read_host_keys(path: &std::path::Path) -> Vec<String> {
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut f: Vec<_> = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("ssh_host_") && n.ends_with("_key.pub"))
            })
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_owned()]
    };
    let mut keys: Vec<String> =
        files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).flat_map(|text| host_key_lines(&text)).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Key lines of a `.pub` file: `type base64` of each non-comment line.
pub fn host_key_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            match (f.next(), f.next()) {
                (Some(t), Some(b)) if t.starts_with("ssh-") || t.starts_with("ecdsa-") => Some(format!("{t} {b}")),
                _ => None,
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Imds(#[from] ImdsError),
    #[error("{0}")]
    Other(String),
}

impl AgentError {
    pub fn hint(&self) -> Option<String> {
        match self {
            AgentError::Engine(e) => e.hint(),
            AgentError::Aws(e) => e.hint().map(str::to_string),
            AgentError::Imds(_) => {
                Some("on EC2 the metadata service must allow IMDSv2 tokens; elsewhere pass --imds URL".into())
            }
            AgentError::Other(_) => None,
        }
    }
}

/// One agent: its clients and the last wait reason it logged.
pub struct Agent {
    cfg: Config,
    engine: Option<Engine>,
    discovery: Discovery,
    asg: Asg,
    dns: Dns,
    imds: Imds,
    last_wait: Option<String>,
    aws: aws_types::SdkConfig,
    /// The account's ECR login as registry credentials, and when it was fetched (leader only).
    ecr: Option<(RegistryAuths, std::time::Instant)>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// How an action is logged (never a token).
pub fn describe(a: &Action) -> String {
    match a {
        Action::InitSwarm { advertise } => format!("initialising the swarm (advertising {advertise})"),
        Action::Join { role, remotes, advertise } => {
            format!("joining the swarm as {role} through {} (advertising {advertise})", remotes.join(", "))
        }
        Action::PublishMember { member } => format!(
            "writing member record {}{}{}",
            member.instance_id,
            if member.leaving_since.is_some() { " (leaving)" } else { "" },
            if member.done { " (done)" } else { "" }
        ),
        Action::PublishTokens => "publishing the join tokens to S3".into(),
        Action::PublishState { state } => format!(
            "publishing swarm/state.json: managers [{}]{}",
            state.managers.iter().map(|m| format!("{} {}", m.instance_id, m.private_ip)).collect::<Vec<_>>().join(", "),
            if state.drained.is_empty() { String::new() } else { format!(", drained [{}]", state.drained.join(", ")) }
        ),
        Action::LabelNode { node_id, labels } => format!(
            "labelling node {node_id}: {}",
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        ),
        Action::Promote { node_id } => format!("promoting node {node_id} to manager"),
        Action::Drain { node_id, instance_id } => format!("draining node {node_id} ({instance_id} is leaving)"),
        Action::Demote { node_id } => format!("demoting node {node_id}"),
        Action::RemoveNode { node_id, hostname } => format!("removing down node {hostname} ({node_id})"),
        Action::UpsertRecords { zone, records, ttl } => format!(
            "setting A records in {zone} (ttl {ttl}): {}",
            records.iter().map(|(k, v)| format!("{k} → {}", v.join(","))).collect::<Vec<_>>().join("; ")
        ),
        Action::Leave => "leaving the swarm".into(),
        Action::CompleteLifecycleAction { group, hook, instance_id } => {
            format!("completing lifecycle action {hook} of {group} for {instance_id} (CONTINUE)")
        }
        Action::RefreshRegistryAuth { services } => {
            format!("sending a fresh ECR token to the swarm for {}", services.join(", "))
        }
        Action::Wait { reason } => format!("waiting: {reason}"),
    }
}

impl Agent {
    pub async fn new(cfg: Config) -> Result<Agent, AgentError> {
        let conf = berth_aws::config::load(&cfg.region, None).await?;
        let imds = Imds::new(&cfg.imds)?;
        Ok(Agent {
            discovery: Discovery::new(berth_aws::config::s3(&conf), cfg.bucket.clone()),
            asg: Asg::new(&conf),
            dns: Dns::new(&conf),
            imds,
            engine: None,
            last_wait: None,
            aws: conf,
            ecr: None,
            cfg,
        })
    }

    async fn engine(&mut self) -> Result<Engine, AgentError> {
        if let Some(e) = &self.engine {
            return Ok(e.clone());
        }
        let e = match &self.cfg.docker {
            Some(url) => Engine::connect_url(url).await?,
            None => Engine::connect(&Target::Local).await?,
        };
        self.engine = Some(e.clone());
        Ok(e)
    }

    async fn me(&self) -> Result<Me, AgentError> {
        let v = self
            .imds
            .get_all(&[
                "instance-id",
                "local-ipv4",
                "public-ipv4",
                "placement/availability-zone",
                "autoscaling/target-lifecycle-state",
            ])
            .await?;
        let mut it = v.into_iter();
        let mut next = || it.next().flatten();
        let imds_id = next().unwrap_or_default();
        Ok(Me {
            instance_id: self.cfg.instance_id.clone().unwrap_or(imds_id),
            private_ip: next().unwrap_or_default(),
            public_ip: next().unwrap_or_default(),
            zone: next().unwrap_or_default(),
            target_lifecycle_state: next(),
            ssh_host_keys: read_host_keys(&self.cfg.ssh_host_keys),
        })
    }

    /// One observation (see [`Observed`]).
    pub async fn observe(&mut self, log: &mut (dyn FnMut(&str) + Send)) -> Result<Observed, AgentError> {
        let me = self.me().await?;
        if me.instance_id.is_empty() || me.private_ip.is_empty() {
            return Err(AgentError::Other("the metadata service gave no instance ID or private IPv4".into()));
        }
        let engine = self.engine().await?;
        let l = match engine.local_swarm().await {
            Ok(l) => l,
            Err(e) => {
                self.engine = None;
                return Err(e.into());
            }
        };
        let local = Local { state: l.state, node_id: l.node_id, swarm_id: l.swarm_id, manager: l.manager };
        let published = self.discovery.state().await?;
        let s3_tokens = self.discovery.tokens().await?;
        let members = self.discovery.members().await?;
        let (nodes, leader) = if local.manager && local.active() {
            let nodes = engine.cluster_nodes().await?;
            let leader = nodes.iter().any(|n| n.id == local.node_id && n.manager.as_deref() == Some("leader"));
            (Some(nodes), leader)
        } else {
            (None, false)
        };
        let tokens = match (&s3_tokens, leader) {
            (None, _) => Tokens::Missing,
            (Some(t), true) => {
                let raw = engine.join_tokens().await?;
                if t.manager.expose() == raw.manager && t.worker.expose() == raw.worker {
                    Tokens::Present
                } else {
                    Tokens::Stale
                }
            }
            (Some(_), false) => Tokens::Present,
        };
        let mut reachable = Vec::new();
        if local.inactive() {
            for m in published.iter().flat_map(|s| &s.managers) {
                let addr = format!("{}:{SWARM_PORT}", m.private_ip);
                let ok = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(&addr))
                    .await
                    .is_ok_and(|r| r.is_ok());
                if ok {
                    reachable.push(m.private_ip.clone());
                }
            }
        }
        let notice = me.target_lifecycle_state.as_deref() == Some("Terminated");
        let want_groups =
            leader || notice || (self.cfg.role == Role::Manager && local.inactive() && self.cfg.group.is_some());
        let groups = if want_groups {
            let extra: Vec<String> = self.cfg.group.iter().cloned().collect();
            match self.asg.groups(self.cfg.cfn_stack.as_deref(), &extra).await {
                Ok(mut gs) => {
                    if notice {
                        for g in gs.iter_mut().filter(|g| g.instances.iter().any(|i| i.instance_id == me.instance_id)) {
                            g.termination_hooks = self.asg.termination_hooks(&g.name).await?;
                        }
                    }
                    Some(gs)
                }
                Err(e) => {
                    log(&format!("auto-scaling groups not visible: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let pending_tasks = if leader { engine.pending_tasks().await? } else { 0 };
        let stale_registry_auth = if leader { self.stale_registry_auth(&engine, log).await? } else { Vec::new() };
        let records = match (&self.cfg.hosted_zone_id, leader) {
            (Some(zone), true) if !self.cfg.domains.is_empty() => {
                Some(self.dns.a_records(zone, &self.cfg.domains).await?)
            }
            _ => None,
        };
        Ok(Observed {
            now: now(),
            settings: Settings {
                role: self.cfg.role,
                group: self.cfg.group.clone(),
                hosted_zone_id: self.cfg.hosted_zone_id.clone(),
                domains: self.cfg.domains.clone(),
                dns_ttl: self.cfg.dns_ttl,
            },
            me,
            local,
            published,
            tokens,
            reachable,
            members,
            groups,
            nodes,
            pending_tasks,
            records,
            stale_registry_auth,
        })
    }

    /// The services whose stored pull credentials are not the current ECR token's, fetching a new
    /// token when the last one is older than [`Config::registry_refresh`]. A failed token call is
    /// logged, not fatal: the other duties go on and the next round asks again.
    async fn stale_registry_auth(
        &mut self,
        engine: &Engine,
        log: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Vec<String>, AgentError> {
        if self.cfg.registry_refresh.is_zero() {
            return Ok(Vec::new());
        }
        if self.ecr.as_ref().is_none_or(|(_, at)| at.elapsed() >= self.cfg.registry_refresh) {
            match berth_aws::ecr::login(&self.aws).await {
                Ok(login) => {
                    let mut auths = RegistryAuths::default();
                    auths.insert_login(&login.registry, login.username, login.password);
                    self.ecr = Some((auths, std::time::Instant::now()));
                }
                Err(e) => log(&format!("ECR token not refreshed: {e}")),
            }
        }
        let Some((auths, _)) = &self.ecr else { return Ok(Vec::new()) };
        Ok(engine.stale_registry_auth(auths).await?)
    }

    async fn apply(&mut self, a: &Action) -> Result<(), AgentError> {
        let engine = self.engine().await?;
        match a {
            Action::InitSwarm { advertise } => engine.agent_init(advertise, self.cfg.heartbeat).await?,
            Action::Join { role, remotes, advertise } => {
                let tokens = self
                    .discovery
                    .tokens()
                    .await?
                    .ok_or_else(|| AgentError::Other("the join tokens vanished from S3".into()))?;
                engine.agent_join(advertise, remotes, tokens.for_role(*role).expose()).await?
            }
            Action::PublishMember { member } => self.discovery.put_member(member).await?,
            Action::PublishTokens => {
                let raw = engine.join_tokens().await?;
                let tokens = JoinTokens { manager: Token::new(raw.manager), worker: Token::new(raw.worker) };
                self.discovery.put_tokens(&tokens).await?
            }
            Action::PublishState { state } => {
                let mut s = state.clone();
                s.updated_at = rfc3339(now());
                self.discovery.put_state(&s).await?
            }
            Action::LabelNode { node_id, labels } => {
                engine
                    .update_node(node_id, |s| {
                        let l = s.labels.get_or_insert_with(HashMap::new);
                        for (k, v) in labels {
                            l.insert(k.clone(), v.clone());
                        }
                    })
                    .await?;
            }
            Action::Promote { node_id } => {
                engine.set_node_role(node_id, true).await?;
            }
            Action::Demote { node_id } => {
                engine.set_node_role(node_id, false).await?;
            }
            Action::Drain { node_id, .. } => {
                engine
                    .update_node(node_id, |s| s.availability = Some(berth_engine::cluster::Availability::DRAIN))
                    .await?;
            }
            Action::RemoveNode { node_id, .. } => {
                engine.remove_node(node_id, Duration::from_secs(0)).await?;
            }
            Action::UpsertRecords { zone, ttl, records } => self.dns.upsert_a(zone, *ttl, records).await?,
            Action::Leave => engine.leave_swarm(false).await?,
            Action::CompleteLifecycleAction { group, hook, instance_id } => {
                self.asg.complete_termination(group, hook, instance_id).await?
            }
            Action::RefreshRegistryAuth { services } => {
                if let Some((auths, _)) = &self.ecr {
                    for s in services {
                        engine.refresh_registry_auth(s, auths).await?;
                    }
                }
            }
            Action::Wait { .. } => {}
        }
        Ok(())
    }

    /// One round: observe, decide, act (stops at the first action that fails). Returns the
    /// decided actions.
    pub async fn round(&mut self, log: &mut (dyn FnMut(&str) + Send)) -> Result<Vec<Action>, AgentError> {
        let o = self.observe(log).await?;
        let actions = decide(&o);
        let waits: Vec<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Wait { reason } => Some(reason.as_str()),
                _ => None,
            })
            .collect();
        let wait_line = (!waits.is_empty()).then(|| waits.join("; "));
        if wait_line != self.last_wait {
            if let Some(w) = &wait_line {
                log(&format!("waiting: {w}"));
            }
            self.last_wait = wait_line;
        }
        for a in actions.iter().filter(|a| !matches!(a, Action::Wait { .. })) {
            log(&describe(a));
            self.apply(a).await?;
        }
        Ok(actions)
    }

    /// Rounds until killed; each failure is logged and the next round tries again.
    pub async fn run(&mut self, log: &mut (dyn FnMut(&str) + Send)) -> ! {
        loop {
            if let Err(e) = self.round(log).await {
                let hint = e.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default();
                log(&format!("error: {e}{hint}"));
                self.last_wait = None;
            }
            tokio::time::sleep(self.cfg.interval).await;
        }
    }
}
