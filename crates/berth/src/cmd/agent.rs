//! `berth agent run`: the agent on each AWS instance of a berth cluster (crate `berth-agent`).
//! Prints one plain line per thing it does or waits for (no join token is ever printed).

use crate::cmd::fail;
use crate::exit;
use berth_agent::live::{Agent, Config};
use std::io::Write;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum AgentCommand {
    /// Observe this instance, the swarm and S3, act, repeat (see docs/aws.md, "The agent").
    Run(AgentRunArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AgentRole {
    Manager,
    Worker,
}

#[derive(Debug, clap::Args)]
pub struct AgentRunArgs {
    /// The discovery bucket (`DiscoveryBucket` output).
    #[arg(long)]
    pub bucket: String,
    /// The swarm role of this instance's group.
    #[arg(long, value_enum)]
    pub role: AgentRole,
    #[arg(long)]
    pub region: String,
    /// The CloudFormation stack (its auto-scaling groups are found by their stack tag).
    #[arg(long, value_name = "STACK")]
    pub cfn_stack: Option<String>,
    /// This instance's auto-scaling group (cluster mode).
    #[arg(long, value_name = "ASG")]
    pub group: Option<String>,
    /// Keep A records of `--domains` in this Route53 zone on the managers' public addresses.
    #[arg(long, value_name = "ZONE")]
    pub hosted_zone_id: Option<String>,
    /// Comma-separated names (with --hosted-zone-id).
    #[arg(long, value_name = "A,B")]
    pub domains: Vec<String>,
    /// Instead of the metadata service's instance ID.
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,
    /// Docker engine (`unix:///path` or `tcp://host:port`); default: the local engine.
    #[arg(long, value_name = "URL")]
    pub docker: Option<String>,
    /// The instance metadata service (IMDSv2).
    #[arg(long, value_name = "URL", default_value = berth_agent::imds::DEFAULT_URL)]
    pub imds: String,
    /// Time between rounds.
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// TTL of the A records; a leaving manager waits this long after its termination notice.
    #[arg(long, default_value = "60s")]
    pub dns_ttl: String,
    /// Dispatcher heartbeat set when this agent initialises the swarm.
    #[arg(long, default_value = "2s")]
    pub heartbeat: String,
    /// How often the leader fetches a new ECR token (valid 12 hours) and sends it to the services
    /// pulling from the account's registry; `0s` turns it off.
    #[arg(long, default_value = "6h")]
    pub registry_refresh: String,
    /// SSH host public keys to publish: a directory (its `ssh_host_*_key.pub`) or a file.
    #[arg(long, value_name = "DIR|FILE", default_value = berth_agent::live::SSH_HOST_KEYS_DIR)]
    pub ssh_host_keys: std::path::PathBuf,
    /// One round, then exit (0: it went through; 4: an action failed).
    #[arg(long)]
    pub once: bool,
}

pub fn run(cmd: AgentCommand) -> u8 {
    match cmd {
        AgentCommand::Run(a) => agent_run(&a),
    }
}

fn duration(flag: &str, s: &str) -> Result<Duration, u8> {
    berth_spec::xberth::parse_duration_ms(s)
        .map(Duration::from_millis)
        .ok_or_else(|| fail(exit::USAGE, format!("{flag} `{s}` is not a duration (`5s`, `500ms`, `1m`)"), None))
}

fn agent_run(a: &AgentRunArgs) -> u8 {
    let interval = match duration("--interval", &a.interval) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let dns_ttl = match duration("--dns-ttl", &a.dns_ttl) {
        Ok(d) => d.as_secs(),
        Err(c) => return c,
    };
    let heartbeat = match duration("--heartbeat", &a.heartbeat) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let registry_refresh = match duration("--registry-refresh", &a.registry_refresh) {
        Ok(d) => d,
        Err(c) => return c,
    };
    if a.hosted_zone_id.is_some() == a.domains.is_empty() {
        return fail(exit::USAGE, "--hosted-zone-id and --domains go together", None);
    }
    let cfg = Config {
        bucket: a.bucket.clone(),
        role: match a.role {
            AgentRole::Manager => berth_aws::discovery::Role::Manager,
            AgentRole::Worker => berth_aws::discovery::Role::Worker,
        },
        region: a.region.clone(),
        cfn_stack: a.cfn_stack.clone(),
        group: a.group.clone(),
        hosted_zone_id: a.hosted_zone_id.clone(),
        domains: a
            .domains
            .iter()
            .flat_map(|d| d.split(','))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect(),
        instance_id: a.instance_id.clone(),
        docker: a.docker.clone(),
        imds: a.imds.clone(),
        interval,
        dns_ttl,
        heartbeat,
        registry_refresh,
        ssh_host_keys: a.ssh_host_keys.clone(),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(exit::FAILED, e, None),
    };
    let mut log = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    rt.block_on(async move {
        let mut agent = match Agent::new(cfg).await {
            Ok(a) => a,
            Err(e) => {
                let hint = e.hint();
                return fail(exit::FAILED, e, hint);
            }
        };
        if a.once {
            return match agent.round(&mut log).await {
                Ok(_) => exit::OK,
                Err(e) => {
                    let hint = e.hint();
                    fail(exit::FAILED, e, hint)
                }
            };
        }
        agent.run(&mut log).await
    })
}
