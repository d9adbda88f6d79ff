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
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}
