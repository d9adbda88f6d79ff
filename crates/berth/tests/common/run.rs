//! The berth binary run the way a user runs it in a script: no colours, no terminal on stdin, no
//! SSH agent (tests name their keys), output captured as text.

use std::path::Path;
use std::process::{Command, Stdio};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `berth ARGS` in `dir`.
#[allow(dead_code)] // not every test binary that includes this module calls it
pub fn berth(dir: &Path, args: &[&str]) -> Run {
    output(command(dir, args))
}

/// `berth ARGS` in `dir` with variables `set` added and `unset` removed from this process's
/// environment; the command and its output are echoed to stderr (shown when a test fails).
#[allow(dead_code)] // not every test binary that includes this module calls it
pub fn berth_env(dir: &Path, args: &[&str], set: &[(&str, &std::ffi::OsStr)], unset: &[&str]) -> Run {
    let mut cmd = command(dir, args);
    for (k, v) in set {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    let r = output(cmd);
    eprintln!("$ berth {}\n{}{}(exit {})", args.join(" "), r.stdout, r.stderr, r.code);
    r
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.current_dir(dir).args(args).env("NO_COLOR", "1").env_remove("SSH_AUTH_SOCK").stdin(Stdio::null());
    cmd
}

fn output(mut cmd: Command) -> Run {
    let out = cmd.output().expect("run berth");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
