//! `berth`: the command line. Parses arguments, wires the libraries, prints. Nothing else
//! prints, and nothing here decides what a deploy does (that is `berth-plan`).

mod cli;
mod cmd;
mod progress;
mod report;
mod table;

use clap::Parser;

/// mimalloc instead of glibc's malloc: loading a 500-service stack allocates and frees hundreds of
/// thousands of small nodes; glibc spent ~11% of a `plan` run just tidying its free lists.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

/// Documented exit codes (docs/cli.md). Keep in step.
pub mod exit {
    /// Success; for `plan --detailed-exitcode`: no changes.
    pub const OK: u8 = 0;
    /// The stack files are invalid (`check` found errors, or any command could not load them).
    pub const INVALID: u8 = 1;
    /// Bad command-line usage (unknown flag, missing argument).
    pub const USAGE: u8 = 2;
    /// No Docker engine could be reached, or it is not usable (not a swarm manager).
    pub const ENGINE: u8 = 3;
    /// The operation ran and failed (a deploy that was rolled back, a failing command).
    pub const FAILED: u8 = 4;
    /// `plan --detailed-exitcode`: the plan has changes.
    pub const CHANGES: u8 = 10;
}

/// Transparent huge pages off for this process. mimalloc reserves its heap as large aligned regions,
/// and with THP set to `always` (as on this Debian host) every first touch of such a region maps a
/// whole 2 MiB page: a no-op deploy of 50 services peaked at ~31 MB of RSS, ~19 MB without THP
/// (`berth --version`: 12.5 MB vs 7 MB). The flag is per process and inherited by children.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments only and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    no_huge_pages();
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(cmd::run(args))
}
