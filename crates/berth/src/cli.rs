//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Deploy a compose/stack file to Docker Swarm: TLS, routing, zero-downtime releases.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Which files make the stack, and its name.
#[derive(Debug, Args, Clone)]
pub struct StackArgs {
    /// Compose/stack file (repeat to merge, later files override). Default: compose.yaml,
    /// compose.yml, docker-compose.yml, docker-compose.yaml, stack.yml or stack.yaml here.
    #[arg(short = 'c', long = "file", global = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Extra env file for interpolation (repeatable; the process environment wins).
    #[arg(long = "env-file", global = true, value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Do not read `.env` beside the first compose file.
    #[arg(long, global = true)]
    pub no_dotenv: bool,
    /// Stack name. Default: `x-berth.name`, else the directory of the first file.
    #[arg(short = 's', long = "stack", global = true, value_name = "NAME")]
    pub name: Option<String>,
    /// Where to deploy: `local` (this machine's engine) or a target named in `x-berth.targets`.
    /// Default: `x-berth.default_target`, else `local`.
    #[arg(short = 't', long = "target", global = true, value_name = "NAME", env = "BERTH_TARGET")]
    pub target: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the merged, interpolated, normalised stack (the shape of `docker stack config`).
    Config {
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
    },
    /// Validate the stack files; report every problem with its place. Exit 0 if valid, 1 if not.
    Check {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what a deploy would change: desired state vs the swarm's observed state.
    Plan {
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Compare against a JSON snapshot of observed state instead of a live engine.
        #[arg(long, value_name = "FILE")]
        observed: Option<PathBuf>,
        /// Exit 10 when the plan has changes, 0 when it is empty.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Also plan removal of the stack's volumes that the files no longer declare.
        #[arg(long)]
        remove_volumes: bool,
    },

    /// Build, release and roll out the stack; wait until it is healthy (rolls back on failure).
    Deploy(DeployArgs),
    /// Go back to an earlier release (default: the one before the current).
    Rollback(RollbackArgs),
    /// List the stack's releases.
    Releases {
        #[arg(long)]
        json: bool,
    },
    /// Services, their tasks running/desired, health and the current release.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Tasks of the stack (or of one service): node, state, health, error.
    Ps {
        service: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Logs of all tasks of the stack (or of one service), each line prefixed by service and task.
    Logs(LogsArgs),
    /// Set replica counts: `berth scale web=3 worker=2`.
    Scale {
        #[arg(required = true, value_name = "SERVICE=N")]
        targets: Vec<String>,
    },
    /// Run a one-off command with a service's image, environment, secrets and networks.
    Run {
        service: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Run a command inside a running task of a service.
    Exec {
        service: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// The edge proxy (TLS, routing, static files) that berth runs in front of the stack.
    #[command(subcommand)]
    Edge(EdgeCommand),
    /// Machines of a target: make them one swarm.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Nodes of the target's swarm: list, drain, remove, add, tidy.
    #[command(subcommand)]
    Node(NodeCommand),
    /// The agent on each AWS instance of a berth cluster (run by the instances' systemd unit).
    #[command(subcommand)]
    Agent(Box<crate::cmd::agent::AgentCommand>),
    /// Remove the stack's services, networks, secrets and configs (volumes only with --volumes).
    Rm {
        /// Also remove the stack's volumes (their data is lost).
        #[arg(long)]
        volumes: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// SSH target: check every host, install Docker where missing, initialise the swarm on the first
    /// manager, join the others, set roles and labels. AWS target: show the CloudFormation change
    /// set, then create or update the stack. Idempotent: a second run changes nothing.
    Up {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Do not install Docker on hosts that lack it (fail instead).
        #[arg(long)]
        no_install: bool,
        /// AWS: write the CloudFormation template to FILE (`-`: standard output); nothing else.
        #[arg(long, value_name = "FILE")]
        template_only: Option<PathBuf>,
        /// AWS: apply the change set without asking.
        #[arg(short, long)]
        yes: bool,
    },
    /// AWS target: the CloudFormation change set `up` would execute (nothing is changed).
    Plan {
        /// Print the change set as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 10 when there are changes, 0 when there are none.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// AWS target: delete the CloudFormation stack (the static and media buckets are kept).
    Down {
        /// Also empty and delete the static and media buckets (their files are lost).
        #[arg(long)]
        delete_data: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// AWS target: the CloudFormation stack's status and outputs.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// The swarm's nodes: role, availability, state, manager status, address, labels, tasks.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Move every task off a node and wait until they run elsewhere.
    Drain {
        /// Node ID, hostname or target host.
        node: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Make a drained node take tasks again.
    Activate { node: String },
    /// Remove a node: demote a manager first (refused if quorum would break), drain, leave, remove.
    Rm {
        node: String,
        #[arg(long, default_value_t = 300, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Join a host to the target's swarm as a worker (add it to the target's `ssh:` list too, or the
    /// next `cluster up` leaves it as it is).
    Add {
        /// `[user@]host[:port]`.
        host: String,
        /// Join as a manager.
        #[arg(long)]
        manager: bool,
    },
    /// Spread the stack's services over the nodes again (Swarm never moves tasks back to a node that
    /// returned); `berth deploy` to an SSH target does this too when it finds an imbalance.
    Rebalance {
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 300, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Remove nodes that are down (and demote down managers first when quorum allows).
    Tidy {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EdgeCommand {
    /// Run the edge proxy with a config file (what berth's edge service runs on each edge node).
    Serve {
        /// The edge config (JSON; docs/edge.md).
        #[arg(value_name = "CONFIG")]
        config: PathBuf,
        /// Accept on the listeners of `berth edge listen` at this unix socket instead of binding ports
        /// (waits until it answers); SIGTERM then drains for `drain_ms` so another proxy can take over.
        #[arg(long, value_name = "PATH")]
        listen_from: Option<PathBuf>,
        /// Fixed backend addresses instead of `tasks.<service>` DNS (outside Swarm); repeatable.
        #[arg(long, value_name = "SERVICE=IP:PORT")]
        backend: Vec<String>,
    },
    /// Bind the edge's TCP ports and hand them to `berth edge serve --listen-from` processes over a unix socket
    /// (runs on the host network; a second `listen` takes the ports over from the first one).
    Listen {
        /// The unix socket (mode 0600; its directory must not be world-writable).
        #[arg(long, value_name = "PATH")]
        socket: PathBuf,
        /// A TCP port to listen on; repeatable.
        #[arg(long = "port", value_name = "PORT", required = true)]
        ports: Vec<u16>,
        /// Address to bind (`0.0.0.0` also binds `[::]` where the host has IPv6).
        #[arg(long, default_value = "0.0.0.0", value_name = "IP")]
        addr: std::net::IpAddr,
    },
    /// Forward TCP connections from a local address to HOST:PORT, resolved per connection (the
    /// swarm registry's forwarder on every node).
    #[command(hide = true)]
    Forward {
        /// Address to listen on.
        #[arg(long, value_name = "IP:PORT")]
        listen: String,
        /// Where to connect (e.g. `tasks.<service>:5000`).
        #[arg(long, value_name = "HOST:PORT")]
        to: String,
    },
    /// Exit 0 when the edge's admin `/healthz` answers 200 (a HEALTHCHECK without curl).
    Check {
        /// Read `admin_addr` from this edge config.
        #[arg(value_name = "CONFIG")]
        config: Option<PathBuf>,
        /// The admin address (default: the config's `admin_addr`, else 127.0.0.1:9180).
        #[arg(long, value_name = "IP:PORT")]
        addr: Option<std::net::SocketAddr>,
    },
}

#[derive(Debug, Args, Clone)]
pub struct DeployArgs {
    /// Print plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Take over objects of the same stack that `docker stack deploy` created.
    #[arg(long)]
    pub adopt: bool,
    /// Give up waiting for the stack to become healthy after this many seconds (then roll back).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// Do not roll back automatically when the new release fails.
    #[arg(long)]
    pub no_rollback: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RollbackArgs {
    /// Release number to go back to (see `berth releases`); default: the previous one.
    pub release: Option<u64>,
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

#[derive(Debug, Args, Clone)]
pub struct LogsArgs {
    pub service: Option<String>,
    /// Keep following new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines since this long ago (`10m`, `1h`) or this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Number of lines from the end of each task's log.
    #[arg(long)]
    pub tail: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}
