//! `compose-diff`: checks berth's loader against `docker stack config`, file by file.

use clap::Parser;
use compose_diff::{Options, Summary, compare_file, compare_stack, find_files};
use std::path::PathBuf;
use std::process::ExitCode;

/// Compare berth's view of compose/stack files with `docker stack config`.
///
/// For every file, berth loads and renders it in-process and `docker stack config -c FILE` runs in
/// the file's directory; both results are compared as JSON. Each file is reported as `identical`,
/// `differing` (with the JSON paths and both values), `verdict mismatch` (one side loads it, the
/// other rejects it; both errors shown) or `both rejected`. Both sides see the same environment
/// (berth's `.env` extension is off: docker does not read `.env`).
///
/// Exit status: 0 when no file differs and no verdict mismatches, 1 otherwise, 2 on usage errors.
#[derive(Parser, Debug)]
#[command(name = "compose-diff", version, about, long_about)]
struct Args {
    /// The docker CLI to use as the reference.
    #[arg(long, value_name = "PATH", default_value = "docker")]
    docker: PathBuf,
    /// Extra variables for interpolation, for both sides (repeatable; the process environment wins).
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,
    /// Print only failing files and the summary.
    #[arg(short, long)]
    quiet: bool,
    /// Treat the given files as one stack (`docker stack config -c F1 -c F2 ...`) instead of
    /// checking each file on its own.
    #[arg(long)]
    merge: bool,
    /// Files to check, or directories to search recursively for compose.yaml, compose.yml,
    /// docker-compose*.yml and *stack*.yml.
    #[arg(value_name = "DIR_OR_FILES", required = true)]
    inputs: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let opts = Options { docker: args.docker, env_files: args.env_files, environ: std::env::vars().collect() };
    let files = find_files(&args.inputs);
    if files.is_empty() {
        eprintln!("compose-diff: no compose files found in the given paths");
        return ExitCode::from(2);
    }
    let mut reports = Vec::new();
    if args.merge {
        let r = compare_stack(&files, &opts);
        print!("{r}");
        reports.push(r);
    }
    for f in files.iter().filter(|_| !args.merge) {
        let r = compare_file(f, &opts);
        if !args.quiet || r.verdict.is_failure() {
            print!("{r}");
        }
        reports.push(r);
    }
    let summary = Summary::of(&reports);
    println!("{summary}");
    if summary.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
