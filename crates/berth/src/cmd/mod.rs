//! One function per command. Each returns its exit code (see [`crate::exit`]).

use crate::cli::{Cli, Command, Format, StackArgs};
use crate::exit;
use crate::report;
use berth_spec::load::{LoadFailed, LoadOptions, Loaded};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

pub(crate) mod agent;
mod aws;
mod cluster;
mod deploy;
mod edge;
mod ops;

pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Config { format } => config(&cli.stack, format),
        Command::Check { json } => check(&cli.stack, json),
        Command::Plan { json, observed, detailed_exitcode, remove_volumes } => {
            plan(&cli.stack, json, observed.as_deref(), detailed_exitcode, remove_volumes)
        }
        Command::Deploy(a) => deploy::deploy(&cli.stack, &a),
        Command::Rollback(a) => deploy::rollback(&cli.stack, &a),
        Command::Releases { json } => deploy::releases(&cli.stack, json),
        Command::Status { json } => ops::status(&cli.stack, json),
        Command::Ps { service, json } => ops::ps(&cli.stack, service.as_deref(), json),
        Command::Logs(a) => ops::logs(&cli.stack, &a),
        Command::Scale { targets } => ops::scale(&cli.stack, &targets),
        Command::Run { service, command } => ops::run(&cli.stack, &service, &command),
        Command::Exec { service, command } => ops::exec(&cli.stack, &service, &command),
        Command::Rm { volumes, yes } => ops::rm(&cli.stack, volumes, yes),
        Command::Edge(c) => edge::run(c),
        Command::Cluster(c) => cluster::cluster(&cli.stack, c),
        Command::Node(c) => cluster::node(&cli.stack, c),
        Command::Agent(c) => agent::run(*c),
    }
}

/// Prints an error line (and hint) for a failure that is not about the user's files.
pub(crate) fn fail(code: u8, message: impl std::fmt::Display, hint: Option<String>) -> u8 {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {message}");
    if let Some(h) = hint {
        let _ = writeln!(err, "  hint: {h}");
    }
    code
}

/// The exit code of an engine error: the engine (unreachable, not a manager, SSH, connection
/// lost) → 3; an unknown service or node → 2 (a usage error); anything else → 4.
pub(crate) fn engine_code(e: &berth_engine::EngineError) -> u8 {
    use berth_engine::EngineError as E;
    match e {
        E::Unreachable { .. } | E::NotManager { .. } | E::Ssh(_) => exit::ENGINE,
        e if e.is_connection_lost() => exit::ENGINE,
        E::NotFound { what: "service" | "node", .. } => exit::USAGE,
        _ => exit::FAILED,
    }
}

/// Prints an engine error with its hint; returns its exit code ([`engine_code`]).
pub(crate) fn engine_fail(e: berth_engine::EngineError) -> u8 {
    let hint = e.hint();
    fail(engine_code(&e), e, hint)
}

pub(crate) fn print_diagnostics(diags: &[berth_spec::Diagnostic], sources: &berth_spec::SourceMap) {
    if diags.is_empty() {
        return;
    }
    let text = if std::io::stderr().is_terminal() {
        report::render(diags, sources)
    } else {
        report::render_plain(diags, sources)
    };
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Resolves the files and loads the stack; on failure prints the diagnostics.
pub(crate) fn load(args: &StackArgs) -> Result<Loaded, u8> {
    let files = if args.files.is_empty() {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        match berth_spec::load::default_file(&cwd) {
            Some(f) => vec![f],
            None => {
                return Err(fail(
                    exit::INVALID,
                    format!("no compose file in {}", cwd.display()),
                    Some("name one with `-c FILE`, or create compose.yaml".into()),
                ));
            }
        }
    } else {
        args.files.clone()
    };
    let opts = LoadOptions {
        files,
        env_files: args.env_files.clone(),
        environ: std::env::vars().collect(),
        dotenv: !args.no_dotenv,
    };
    match berth_spec::load::load(&opts) {
        Ok(loaded) => Ok(loaded),
        Err(LoadFailed { sources, diagnostics }) => {
            print_diagnostics(&diagnostics, &sources);
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            let _ = writeln!(std::io::stderr(), "{errors} error(s); nothing was changed");
            Err(exit::INVALID)
        }
    }
}

/// The stack name: `--stack`, else `x-berth.name`, else the first file's directory name.
pub(crate) fn stack_name(args: &StackArgs, loaded: &Loaded) -> String {
    if let Some(n) = &args.name {
        return n.clone();
    }
    if let Some(n) = loaded.stack.extras.get("x-berth").and_then(|x| x.get("name")).and_then(|n| n.as_str()) {
        return n.to_string();
    }
    let first = args.files.first().cloned().unwrap_or_else(|| PathBuf::from("compose.yaml"));
    let dir = std::fs::canonicalize(&first).ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let raw = dir.as_deref().and_then(Path::file_name).and_then(|n| n.to_str()).unwrap_or("stack");
    let cleaned: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    if cleaned.is_empty() { "stack".into() } else { cleaned }
}

fn config(args: &StackArgs, format: Format) -> u8 {
    let loaded = match load(args) {
        Ok(l) => l,
        Err(code) => return code,
    };
    print_diagnostics(&loaded.warnings, &loaded.sources);
    let out = match format {
        Format::Yaml => berth_spec::render::to_yaml(&loaded.stack),
        Format::Json => berth_spec::render::to_json(&loaded.stack),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    if !out.ends_with('\n') {
        let _ = stdout.write_all(b"\n");
    }
    exit::OK
}

fn check(args: &StackArgs, json: bool) -> u8 {
    if json {
        // Same load, but the diagnostics go to stdout as JSON instead of stderr as text.
        let files = args.files.clone();
        let files = if files.is_empty() {
            std::env::current_dir().ok().and_then(|d| berth_spec::load::default_file(&d)).into_iter().collect()
        } else {
            files
        };
        let opts = LoadOptions {
            files,
            env_files: args.env_files.clone(),
            environ: std::env::vars().collect(),
            dotenv: !args.no_dotenv,
        };
        let (ok, diags, sources) = match berth_spec::load::load(&opts) {
            Ok(l) => (true, l.warnings, l.sources),
            Err(f) => (false, f.diagnostics, f.sources),
        };
        let v = serde_json::json!({ "valid": ok, "diagnostics": report::to_json(&diags, &sources) });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return if ok { exit::OK } else { exit::INVALID };
    }
    match load(args) {
        Ok(loaded) => {
            print_diagnostics(&loaded.warnings, &loaded.sources);
            let n = loaded.stack.services.len();
            let _ = writeln!(
                std::io::stderr(),
                "valid: {n} service(s){}",
                if loaded.warnings.is_empty() {
                    String::new()
                } else {
                    format!(", {} warning(s)", loaded.warnings.len())
                }
            );
            exit::OK
        }
        Err(code) => code,
    }
}

fn plan(args: &StackArgs, json: bool, observed: Option<&Path>, detailed: bool, remove_volumes: bool) -> u8 {
    let loaded = match load(args) {
        Ok(l) => l,
        Err(code) => return code,
    };
    print_diagnostics(&loaded.warnings, &loaded.sources);
    let name = stack_name(args, &loaded);
    let target = target(args, &loaded);
    // Services with `build:` will run the image `berth deploy` builds: plan with those tags.
    let stack_spec = match with_planned_images(args, &loaded, &name, target.as_ref().ok()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let multi_node = target.as_ref().is_ok_and(|t| !t.is_local());
    let mut desired = match desired(&loaded, &stack_spec, &name, multi_node) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let observed = match observed {
        Some(path) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<berth_plan::Observed>(&b).map_err(|e| e.to_string()))
        {
            Ok(o) => o,
            Err(e) => return fail(exit::INVALID, format!("cannot read observed state {}: {e}", path.display()), None),
        },
        // Live: images pinned as `berth deploy` pins them (docs/images.md, "Pinning").
        None => match target.and_then(|t| observe(&name, &t, Some(&mut desired))) {
            Ok(o) => o,
            Err(code) => return code,
        },
    };
    let opts = berth_plan::plan::PlanOptions { remove_volumes, ..Default::default() };
    // The same view as `berth deploy`: bookkeeping left out, old secret versions kept until after
    // the next successful deploy — so a stack that is up to date plans nothing.
    let plan = berth_engine::deploy_plan(&desired, observed, &opts);
    if json {
        println!("{}", serde_json::to_string_pretty(&plan).unwrap_or_default());
    } else {
        print!("{}", berth_plan::render::render_text(&plan));
    }
    if detailed && !plan.is_empty() { exit::CHANGES } else { exit::OK }
}

/// The loaded stack with each `build:` service's image set to the tag `berth deploy` builds (its
/// content hash), without building: what `plan` and `run` use.
pub(crate) fn with_planned_images(
    args: &StackArgs,
    loaded: &Loaded,
    name: &str,
    target: Option<&berth_engine::Target>,
) -> Result<berth_spec::Stack, u8> {
    let mut stack = loaded.stack.clone();
    if stack.services.values().any(|s| s.build != berth_spec::model::BuildConfig::default()) {
        let images = berth_engine::planned_images(name, &stack, &target_build_options(args, loaded, name, target)?)
            .map_err(|e| {
                let hint = e.hint();
                fail(exit::INVALID, e, hint)
            })?;
        for (svc, image) in images {
            if let Some(s) = stack.services.get_mut(&svc) {
                s.image = image;
            }
        }
    }
    Ok(stack)
}

/// The spec of the AWS target the command is about, if it is one.
pub(crate) fn aws_target(args: &StackArgs, loaded: &Loaded) -> Option<berth_spec::xberth::AwsTarget> {
    let xb = loaded.stack.extras.get("x-berth").map(berth_spec::xberth::XBerth::from_json).unwrap_or_default();
    let name = args.target.clone().or(xb.default_target.clone()).unwrap_or_else(|| "local".into());
    match xb.targets.get(&name) {
        Some(berth_spec::xberth::TargetSpec::Aws(t)) => Some(t.clone()),
        _ => None,
    }
}

/// How images of services with `build:` are built: contexts relative to the first file's directory,
/// pushed to `x-berth.registry` when set.
pub(crate) fn build_options(args: &StackArgs, loaded: &Loaded) -> berth_engine::BuildOptions {
    let first = args.files.first().cloned().unwrap_or_else(|| "compose.yaml".into());
    let base_dir = std::fs::canonicalize(&first)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_default());
    let xb = loaded.stack.extras.get("x-berth").map(berth_spec::xberth::XBerth::from_json).unwrap_or_default();
    berth_engine::BuildOptions {
        base_dir,
        registry: xb.registry.clone(),
        environ: std::env::vars().collect(),
        ..Default::default()
    }
}

/// [`build_options`] for the command's target: on an AWS target, a fresh ECR token (for pushes and
/// the swarm's pulls) and, unless `x-berth.registry` names a registry, the target's ECR
/// repositories for the services with `build:`.
pub(crate) fn target_build_options(
    args: &StackArgs,
    loaded: &Loaded,
    name: &str,
    target: Option<&berth_engine::Target>,
) -> Result<berth_engine::BuildOptions, u8> {
    let mut o = build_options(args, loaded);
    if let Some(t) = aws_target(args, loaded) {
        let (auths, registry) = aws::registry_auths(&t)?;
        if o.registry.is_none() {
            o.repositories = aws::ecr_repositories(&registry, name, &loaded.stack);
        }
        o.auths = Some(auths);
    } else if o.registry.is_none() && target.is_some_and(|t| uses_swarm_registry(args, loaded, t)) {
        o.registry = Some(berth_engine::swarm_registry::repository_prefix(name));
    }
    Ok(o)
}

/// Whether built images go to the registry berth runs on the swarm: `target` is an SSH target
/// of several hosts (not an AWS one), with services to build and no `x-berth.registry`
/// (docs/images.md).
pub(crate) fn uses_swarm_registry(args: &StackArgs, loaded: &Loaded, target: &berth_engine::Target) -> bool {
    let xb = loaded.stack.extras.get("x-berth").map(berth_spec::xberth::XBerth::from_json).unwrap_or_default();
    xb.registry.is_none()
        && aws_target(args, loaded).is_none()
        && loaded.stack.services.values().any(|s| s.build != berth_spec::model::BuildConfig::default())
        && matches!(target, berth_engine::Target::Ssh(t) if t.hosts.len() > 1)
}

/// Converts a loaded stack (`stack`: `loaded.stack`, or a copy with built image names) into the
/// desired state with content-addressed secrets/configs; on failure prints the diagnostics at
/// their places and returns exit code 1. With `multi_node` (an SSH target), services that keep
/// data in a local volume are pinned to the node that holds it ([`berth_plan::pin`]).
pub(crate) fn desired(
    loaded: &Loaded,
    stack: &berth_spec::Stack,
    name: &str,
    multi_node: bool,
) -> Result<berth_plan::Desired, u8> {
    let read = |p: &Path| std::fs::read(p);
    let opts = berth_plan::convert::ConvertOptions { content_addressed: true };
    let mut desired = berth_plan::convert::desired(stack, name, &opts, &read);
    // The edge (when the stack has routes or statics) is part of the desired state.
    if let Ok(d) = &mut desired
        && let Err(diags) = deploy::add_edge(d, stack)
    {
        desired = Err(diags);
    }
    if multi_node && let Ok(d) = &mut desired {
        berth_plan::pin::pin_stateful(d);
    }
    desired.map_err(|diags| {
        let diags = berth_plan::convert::locate(diags, &loaded.documents);
        print_diagnostics(&diags, &loaded.sources);
        exit::INVALID
    })
}

/// The engine target: `--target`, else `x-berth.default_target`, else `local`. SSH targets reach
/// their first manager that answers; AWS targets the managers their agents published in S3.
pub(crate) fn target(args: &StackArgs, loaded: &Loaded) -> Result<berth_engine::Target, u8> {
    let xb = loaded.stack.extras.get("x-berth").map(berth_spec::xberth::XBerth::from_json).unwrap_or_default();
    let name = args.target.clone().or(xb.default_target.clone()).unwrap_or_else(|| "local".into());
    if name == "local" {
        return Ok(berth_engine::Target::Local);
    }
    match xb.targets.get(&name) {
        Some(berth_spec::xberth::TargetSpec::Local) => Ok(berth_engine::Target::Local),
        Some(berth_spec::xberth::TargetSpec::Ssh(t)) => cluster::ssh_target(&name, t).map(berth_engine::Target::Ssh),
        Some(berth_spec::xberth::TargetSpec::Aws(t)) => {
            aws::ssh_target(&stack_name(args, loaded), &name, t).map(berth_engine::Target::Ssh)
        }
        None => {
            let known: Vec<&str> = std::iter::once("local").chain(xb.targets.keys().map(String::as_str)).collect();
            let hint = match berth_spec::diag::did_you_mean(&name, known.iter().copied()) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("known targets: {}", known.join(", ")),
            };
            Err(fail(exit::USAGE, format!("no target named `{name}` in x-berth.targets"), Some(hint)))
        }
    }
}

/// The target of a command that may run without stack files: `--stack NAME` without `--target`
/// (and without `-c`) means the local engine; otherwise the files say (see [`target`]).
pub(crate) fn target_of(args: &StackArgs) -> Result<berth_engine::Target, u8> {
    if args.target.as_deref() == Some("local")
        || (args.target.is_none() && args.name.is_some() && args.files.is_empty())
    {
        return Ok(berth_engine::Target::Local);
    }
    let loaded = load(args)?;
    target(args, &loaded)
}

/// Observes the stack on the target's engine; with `pin`, also pins that desired state's images
/// to what the engine has (as `berth deploy` does).
pub(crate) fn observe(
    stack: &str,
    target: &berth_engine::Target,
    pin: Option<&mut berth_plan::Desired>,
) -> Result<berth_plan::Observed, u8> {
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| fail(exit::FAILED, e, None))?;
    rt.block_on(async {
        let engine = berth_engine::Engine::connect(target).await.map_err(|e| {
            let hint = e.hint();
            fail(exit::ENGINE, e, hint)
        })?;
        if let Some(desired) = pin {
            engine.pin_images(desired).await.map_err(engine_fail)?;
            // Registry credentials fingerprinted as `berth deploy` does (new credentials: an update),
            // the swarm's own registry's included.
            let mut auths = berth_engine::RegistryAuths::load(None);
            if let Some(r) = engine.swarm_registry().await.map_err(engine_fail)? {
                auths.insert(&r.host, r.credentials);
            }
            berth_engine::label_registry_auth(desired, &auths);
        }
        engine.observe(stack).await.map_err(|e| {
            let hint = e.hint();
            fail(exit::ENGINE, e, hint)
        })
    })
}
