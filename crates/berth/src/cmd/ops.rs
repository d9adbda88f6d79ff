//! `status`, `ps`, `logs`, `scale`, `run`, `exec`, `rm`.
//!
//! The stack name comes from `--stack`, else from the stack files (`x-berth.name`, the directory):
//! with `--stack` no file is needed, so these commands work from any machine that reaches the engine.
//! Read commands take `--json`; tables are aligned on a terminal and tab-separated otherwise.
//! `run` and `exec` exit with the command's exit code.

use crate::cli::{LogsArgs, StackArgs};
use crate::exit;
use crate::table;
use berth_engine::{Engine, EngineError};
use std::io::{IsTerminal, Write};

/// The stack name without loading the files when `--stack` is given.
fn stack_of(args: &StackArgs) -> Result<String, u8> {
    if let Some(n) = &args.name {
        return Ok(n.clone());
    }
    let loaded = super::load(args)?;
    Ok(super::stack_name(args, &loaded))
}

use super::engine_fail;

/// Runs `f` with the target's engine connected, on a fresh runtime.
fn with_engine<F, Fut>(stack: &StackArgs, f: F) -> u8
where
    F: FnOnce(Engine) -> Fut,
    Fut: std::future::Future<Output = Result<u8, EngineError>>,
{
    let target = match super::target_of(stack) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return super::fail(exit::FAILED, e, None),
    };
    let code = rt.block_on(async {
        let engine = Engine::connect(&target).await?;
        f(engine).await
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code.unwrap_or_else(engine_fail)
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn tty() -> bool {
    std::io::stdout().is_terminal()
}

/// `berth status`: services (tasks running/desired, health, update state, release, ports) and nodes.
pub fn status(stack: &StackArgs, json: bool) -> u8 {
    let name = match stack_of(stack) {
        Ok(n) => n,
        Err(c) => return c,
    };
    let urls = super::deploy::edge_urls(stack);
    with_engine(stack, |e| async move {
        let s = e.status(&name).await?;
        if json {
            print_json(&s);
            return Ok(exit::OK);
        }
        if s.services.is_empty() {
            let _ = writeln!(std::io::stderr(), "stack `{name}` has no services (not deployed?)");
            return Ok(exit::OK);
        }
        let mut out = String::new();
        if tty() {
            out.push_str(&format!(
                "stack {name}, release {}\n\n",
                s.release.map(|r| r.to_string()).unwrap_or_else(|| "-".into())
            ));
        }
        let rows: Vec<Vec<String>> = s
            .services
            .iter()
            .map(|v| {
                let ports = v
                    .ports
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}/{}{}",
                            p.published.map(|x| x.to_string()).unwrap_or_default(),
                            p.target.map(|x| x.to_string()).unwrap_or_default(),
                            p.protocol,
                            if p.mode == "host" { " (host)" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                let update = match (&v.update_state, &v.update_message) {
                    (Some(st), Some(m)) if st != "completed" && !m.is_empty() => format!("{st}: {m}"),
                    (Some(st), _) => st.clone(),
                    _ => "-".into(),
                };
                vec![
                    v.name.clone(),
                    v.mode.clone(),
                    v.image.clone(),
                    format!("{}/{}", v.running, v.desired),
                    v.health.clone(),
                    update,
                    v.release.clone().unwrap_or_else(|| "-".into()),
                    if ports.is_empty() { "-".into() } else { ports },
                    v.last_error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table::render(
            &["SERVICE", "MODE", "IMAGE", "TASKS", "HEALTH", "UPDATE", "RELEASE", "PORTS", "ERROR"],
            &rows,
            tty(),
        ));
        if s.services.iter().any(|v| v.name == "edge") {
            for u in &urls {
                out.push_str(&format!("edge: {u}\n"));
            }
        }
        if tty() {
            out.push('\n');
            let rows: Vec<Vec<String>> = s
                .nodes
                .iter()
                .map(|n| {
                    vec![
                        format!("{}{}", n.hostname, if n.local { " *" } else { "" }),
                        n.role.clone(),
                        n.state.clone(),
                        n.availability.clone(),
                    ]
                })
                .collect();
            out.push_str(&table::render(&["NODE", "ROLE", "STATE", "AVAILABILITY"], &rows, true));
        }
        print!("{out}");
        Ok(exit::OK)
    })
}

/// `berth ps [SERVICE]`: the tasks, current ones first within each slot.
pub fn ps(stack: &StackArgs, service: Option<&str>, json: bool) -> u8 {
    let name = match stack_of(stack) {
        Ok(n) => n,
        Err(c) => return c,
    };
    let service = service.map(str::to_string);
    with_engine(stack, |e| async move {
        let tasks = e.tasks(&name, service.as_deref()).await?;
        if json {
            print_json(&tasks);
            return Ok(exit::OK);
        }
        let rows: Vec<Vec<String>> = tasks
            .iter()
            .map(|t| {
                let id = match t.slot {
                    Some(s) if s > 0 => format!("{}.{}", t.service, s),
                    _ => t.service.clone(),
                };
                let state = if t.desired_state != t.state && t.desired_state != "running" {
                    format!("{} (desired {})", t.state, t.desired_state)
                } else {
                    t.state.clone()
                };
                vec![
                    id,
                    t.id.chars().take(12).collect(),
                    t.node.clone().unwrap_or_else(|| "-".into()),
                    state,
                    t.health.clone().unwrap_or_else(|| "-".into()),
                    t.age_seconds.map(table::age).unwrap_or_else(|| "-".into()),
                    t.image.clone().unwrap_or_default(),
                    t.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print!("{}", table::render(&["TASK", "ID", "NODE", "STATE", "HEALTH", "AGE", "IMAGE", "ERROR"], &rows, tty()));
        Ok(exit::OK)
    })
}

/// `berth logs [SERVICE] [-f] [--since] [--tail]`.
pub fn logs(stack: &StackArgs, args: &LogsArgs) -> u8 {
    let name = match stack_of(stack) {
        Ok(n) => n,
        Err(c) => return c,
    };
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let since = match args.since.as_deref().map(|s| berth_engine::parse_since(s, now)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return super::fail(exit::USAGE, format!("--since: {e}"), None),
    };
    let tail = match args.tail.as_deref() {
        None | Some("all") => None,
        Some(t) => match t.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return super::fail(exit::USAGE, format!("--tail: `{t}` is not a number of lines"), None),
        },
    };
    let opts = berth_engine::LogsOptions { follow: args.follow, since, tail };
    let service = args.service.clone();
    with_engine(stack, |e| async move {
        let mut stdout = std::io::stdout();
        let mut on_line = |l: &berth_engine::LogLine| {
            let _ = writeln!(stdout, "{}", l.render());
        };
        tokio::select! {
            r = e.logs(&name, service.as_deref(), &opts, &mut on_line) => r.map(|_| exit::OK),
            _ = tokio::signal::ctrl_c() => Ok(exit::OK),
        }
    })
}

/// Parses `web=3` targets.
fn parse_targets(targets: &[String]) -> Result<Vec<(String, u64)>, String> {
    targets
        .iter()
        .map(|t| {
            let (s, n) = t.split_once('=').ok_or_else(|| format!("`{t}`: write SERVICE=N, e.g. `web=3`"))?;
            let n: u64 = n.trim().parse().map_err(|_| format!("`{t}`: `{n}` is not a replica count"))?;
            if s.trim().is_empty() {
                return Err(format!("`{t}`: the service name is missing"));
            }
            Ok((s.trim().to_string(), n))
        })
        .collect()
}

/// `berth scale web=3 worker=2`.
pub fn scale(stack: &StackArgs, targets: &[String]) -> u8 {
    let targets = match parse_targets(targets) {
        Ok(t) => t,
        Err(e) => return super::fail(exit::USAGE, e, None),
    };
    let name = match stack_of(stack) {
        Ok(n) => n,
        Err(c) => return c,
    };
    with_engine(stack, |e| async move {
        for s in e.scale(&name, &targets).await? {
            println!("{}: {} -> {} replicas", s.service, s.from, s.to);
        }
        let _ =
            writeln!(std::io::stderr(), "note: the next `berth deploy` sets the replicas from the stack file again");
        Ok(exit::OK)
    })
}

/// Exit status for a command's exit code (0..=255 as is; others → 4, the generic failure).
fn code_of(exit_code: i64) -> u8 {
    u8::try_from(exit_code).unwrap_or(exit::FAILED)
}

/// `berth run SERVICE -- CMD...`: the service's spec from the stack files (converted like a deploy
/// does, content-addressed secret/config names, so they must exist: run after a deploy).
pub fn run(stack: &StackArgs, service: &str, command: &[String]) -> u8 {
    let loaded = match super::load(stack) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let name = super::stack_name(stack, &loaded);
    // A service with `build:` runs the image `berth deploy` built (its content tag), like `plan` shows,
    // not the file's bare `image:` (which does not exist: `blog/backend:latest`).
    let target = super::target(stack, &loaded).ok();
    let stack_spec = match super::with_planned_images(stack, &loaded, &name, target.as_ref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let multi_node = target.as_ref().is_some_and(|t| !t.is_local());
    let desired = match super::desired(&loaded, &stack_spec, &name, multi_node) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let short = service.strip_prefix(&format!("{name}_")).unwrap_or(service);
    let full = format!("{name}_{short}");
    let Some(spec) = desired.services.get(&full).cloned() else {
        let names: Vec<&str> =
            desired.services.keys().map(|k| k.strip_prefix(&format!("{name}_")).unwrap_or(k)).collect();
        let hint = match berth_spec::diag::did_you_mean(short, names.iter().copied()) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!("services: {}", names.join(", ")),
        };
        return super::fail(exit::USAGE, format!("no service `{short}` in the stack files"), Some(hint));
    };
    let run = berth_engine::RunSpec {
        stack: name,
        name_hint: short.to_string(),
        spec,
        command: command.to_vec(),
        tty: false,
        auths: None,
    };
    with_engine(stack, |e| async move {
        let mut stdout = std::io::stdout();
        let mut on_line = |l: &str| {
            let _ = writeln!(stdout, "{l}");
            let _ = stdout.flush();
        };
        tokio::select! {
            r = e.run_once(&run, &mut on_line) => Ok(code_of(r?.exit_code)),
            _ = tokio::signal::ctrl_c() => {
                let _ = writeln!(std::io::stderr(), "interrupted: removing the run service");
                e.remove_active_runs().await;
                Ok(130)
            }
        }
    })
}

/// `berth exec SERVICE -- CMD...`: in a running task on the connected node.
pub fn exec(stack: &StackArgs, service: &str, command: &[String]) -> u8 {
    let name = match stack_of(stack) {
        Ok(n) => n,
        Err(c) => return c,
    };
    let service = service.to_string();
    let command = command.to_vec();
    with_engine(stack, |e| async move {
        let mut on_output = |stderr: bool, bytes: &[u8]| {
            if stderr {
                let _ = std::io::stderr().write_all(bytes);
            } else {
                let mut o = std::io::stdout();
                let _ = o.write_all(bytes);
                let _ = o.flush();
            }
        };
        Ok(code_of(e.exec(&name, &service, &command, false, &mut on_output).await?))
    })
}

/// `berth rm [--volumes] [--yes]`: asks on a terminal; without a terminal `--yes` is required.
pub fn rm(stack: &StackArgs, volumes: bool, yes: bool) -> u8 {
    let name = match stack_of(stack) {
        Ok(n) => n,
        Err(c) => return c,
    };
    if !yes {
        if !std::io::stdin().is_terminal() {
            return super::fail(
                exit::USAGE,
                format!("not removing stack `{name}` without confirmation"),
                Some("pass `--yes` when not on a terminal".into()),
            );
        }
        let what = if volumes {
            "services, networks, secrets, configs AND VOLUMES (their data is lost)"
        } else {
            "services, networks, secrets and configs (volumes are kept)"
        };
        eprint!("Remove stack `{name}`: its {what}? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing removed");
            return exit::FAILED;
        }
    }
    with_engine(stack, |e| async move {
        let r = e.remove_stack(&name, volumes).await?;
        let mut out = std::io::stdout();
        for (kind, names) in [
            ("service", &r.services),
            ("secret", &r.secrets),
            ("config", &r.configs),
            ("network", &r.networks),
            ("volume", &r.volumes),
        ] {
            for n in names {
                let _ = writeln!(out, "removed {kind} {n}");
            }
        }
        for v in &r.volumes_kept {
            let _ = writeln!(out, "kept volume {v} (remove it with `berth rm --volumes`)");
        }
        for s in &r.skipped {
            let _ = writeln!(out, "left {s} (not owned by berth)");
        }
        Ok(exit::OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_targets_reads_service_equals_count_and_rejects_garbage() {
        assert_eq!(
            parse_targets(&["web=3".into(), "worker=0".into()]),
            Ok(vec![("web".into(), 3), ("worker".into(), 0)])
        );
        assert!(parse_targets(&["web".into()]).unwrap_err().contains("SERVICE=N"));
        assert!(parse_targets(&["web=x".into()]).is_err());
        assert!(parse_targets(&["=2".into()]).is_err());
    }

    #[test]
    fn code_of_passes_0_to_255_and_maps_others_to_failed() {
        assert_eq!((code_of(0), code_of(3), code_of(255)), (0, 3, 255));
        assert_eq!((code_of(-1), code_of(256)), (exit::FAILED, exit::FAILED));
    }
}
