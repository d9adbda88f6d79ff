//! `deploy`, `rollback`, `releases`.

use crate::cli::{DeployArgs, RollbackArgs, StackArgs};
use crate::exit;
use crate::progress::Progress;
use berth_engine::{DeployError, DeployOptions, DeployReport, Engine, Target};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Hand the edge's listening sockets from `<stack>_edge-listen` to the proxy (zero-downtime edge
/// updates); `BERTH_EDGE_HANDOVER=0` deploys one proxy publishing its ports instead.
fn edge_handover() -> bool {
    std::env::var("BERTH_EDGE_HANDOVER").map_or(EDGE_HANDOVER_DEFAULT, |v| v != "0")
}
const EDGE_HANDOVER_DEFAULT: bool = true;

/// The edge image's tag, from the executable it is built from (hashed once per process).
fn edge_image() -> Result<(String, std::path::PathBuf), String> {
    static TAG: std::sync::OnceLock<Result<(String, std::path::PathBuf), String>> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let bin = berth_engine::edge_image::edge_binary();
        berth_engine::edge_image::edge_image_tag(&bin)
            .map(|t| (t, bin.clone()))
            .map_err(|e| format!("cannot read {} to build the edge image from: {e}", bin.display()))
    })
    .clone()
}

/// Starts (or finds) the swarm's registry: the edge image built and on every host (the
/// forwarders run it), then `berth_engine::swarm_registry`.
async fn swarm_registry(
    engine: &berth_engine::Engine,
    t: &berth_engine::SshTarget,
    progress: &mut Progress,
) -> Result<berth_engine::swarm_registry::SwarmRegistry, berth_engine::EngineError> {
    let (tag, bin) = edge_image().map_err(|message| berth_engine::EngineError::Refused { message, hint: None })?;
    if engine.ensure_edge_image(&tag, &bin).await? {
        progress.line(&format!("edge: built image {tag}"));
    }
    berth_engine::cluster::distribute_images(engine, t, std::slice::from_ref(&tag), &mut |l| progress.line(l)).await?;
    let image = berth_engine::swarm_registry::registry_image();
    engine.ensure_swarm_registry(&image, &tag, Duration::from_secs(120), &mut |l| progress.line(l)).await
}

/// Adds berth's edge to the desired state when the stack has routes or statics.
pub(crate) fn add_edge(
    desired: &mut berth_plan::Desired,
    stack: &berth_spec::Stack,
) -> Result<(), Vec<berth_spec::Diagnostic>> {
    if !berth_plan::edge::has_edge(stack) {
        return Ok(());
    }
    let (image, _) = edge_image().map_err(|e| vec![berth_spec::Diagnostic::error("edge.image", None, "x-berth", e)])?;
    let opts = berth_plan::edge::EdgeOptions { image, handover: edge_handover() };
    berth_plan::edge::add_edge(desired, stack, &opts).map(|_| ())
}

/// The edge's URLs from the stack files, when they can be read (`berth status`).
pub(crate) fn edge_urls(stack: &StackArgs) -> Vec<String> {
    let have_files = !stack.files.is_empty()
        || std::env::current_dir().ok().and_then(|d| berth_spec::load::default_file(&d)).is_some();
    if !have_files {
        return Vec::new();
    }
    super::load(stack).map(|l| berth_plan::edge::urls(&l.stack)).unwrap_or_default()
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| super::fail(exit::FAILED, e, None))
}

use super::engine_code;

async fn connect(target: &Target) -> Result<Engine, u8> {
    Engine::connect(target).await.map_err(|e| {
        let hint = e.hint();
        super::fail(exit::ENGINE, e, hint)
    })
}

/// Prints a failed deploy/rollback: the error, its hint, and the failing task's last log lines.
fn report_error(e: &DeployError) -> u8 {
    let code = match e {
        DeployError::Engine(e) => engine_code(e),
        _ => exit::FAILED,
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    if let DeployError::Failed { failure, .. } = e
        && let Some(te) = &failure.task_error
    {
        let _ = writeln!(err, "  task error: {te}");
    }
    let logs = e.log_lines();
    if !logs.is_empty() {
        let _ = writeln!(err, "  last log lines:");
        for l in logs {
            let _ = writeln!(err, "    {l}");
        }
    }
    if let Some(h) = e.hint() {
        let _ = writeln!(err, "  hint: {h}");
    }
    code
}

fn print_urls(urls: &[String]) {
    for u in urls {
        let _ = writeln!(std::io::stderr(), "edge: {u}");
    }
}

fn print_notes(report: &DeployReport) {
    let mut err = std::io::stderr().lock();
    for n in &report.notes {
        let _ = writeln!(err, "{n}");
    }
    for r in &report.removed {
        let _ = writeln!(err, "removed {r}");
    }
}

pub fn deploy(stack: &StackArgs, args: &DeployArgs) -> u8 {
    let loaded = match super::load(stack) {
        Ok(l) => l,
        Err(code) => return code,
    };
    super::print_diagnostics(&loaded.warnings, &loaded.sources);
    let name = super::stack_name(stack, &loaded);
    let target = match super::target(stack, &loaded) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let live = std::io::stderr().is_terminal() && !args.plain;
    let mut progress = Progress::new(&name, live);
    let engine = match rt.block_on(connect(&target)) {
        Ok(e) => e,
        Err(code) => return code,
    };
    // Right after a leader change the nodes are `unknown` until they report to the new leader:
    // nothing can be scheduled on them yet, so wait for that (a few seconds) before deploying.
    if matches!(target, Target::Ssh(_)) {
        let waited = rt.block_on(engine.wait_nodes_known(Duration::from_secs(30)));
        if waited > Duration::from_millis(500) {
            progress
                .line(&format!("waited {:.1} s for the swarm's nodes to report to the leader", waited.as_secs_f64()));
        }
    }
    // An AWS target: a fresh ECR token for the pushes and for the swarm's pulls, built images to
    // the target's ECR repositories.
    let mut bopts = match super::target_build_options(stack, &loaded, &name, Some(&target)) {
        Ok(o) => o,
        Err(code) => return code,
    };
    // Several SSH hosts and no registry named: the swarm's own registry, whose forwarders run
    // berth's edge image — so that image goes to every host first.
    if let Target::Ssh(t) = &target
        && super::uses_swarm_registry(stack, &loaded, &target)
    {
        match rt.block_on(swarm_registry(&engine, t, &mut progress)) {
            Ok(reg) => {
                let mut auths = bopts.auths.take().unwrap_or_else(|| berth_engine::RegistryAuths::load(None));
                auths.insert(&reg.host, reg.credentials);
                bopts.auths = Some(auths);
            }
            Err(e) => return super::engine_fail(e),
        }
    }
    let auths = bopts.auths.clone();

    // Images of services with `build:`, built through the engine; the deploy uses them.
    let mut stack_spec = loaded.stack.clone();
    if stack_spec.services.values().any(|s| s.build != berth_spec::model::BuildConfig::default()) {
        let built = rt.block_on(engine.build_images(&name, &loaded.stack, &bopts, |p| {
            use berth_engine::BuildProgress as B;
            let line = match p {
                B::UpToDate { service, image } => format!("build {service}: {image} exists"),
                B::Building { service, image, files, bytes } => {
                    format!("build {service}: building {image} ({files} files, {bytes} bytes of context)")
                }
                B::Output { service, line } => format!("{service} | {line}"),
                B::Built { service, image } => format!("build {service}: built {image}"),
                B::AlreadyPushed { service, image } => format!("build {service}: registry has {image}"),
                B::Pushing { .. } => return,
                B::Pushed { service, image } => format!("build {service}: pushed {image}"),
            };
            progress.line(&line);
        }));
        match built {
            Ok(images) => {
                for (svc, image) in images {
                    if let Some(s) = stack_spec.services.get_mut(&svc) {
                        s.image = image;
                    }
                }
            }
            Err(e) => {
                let hint = e.hint();
                return super::fail(exit::FAILED, e, hint);
            }
        }
    }
    let mut desired = match super::desired(&loaded, &stack_spec, &name, !target.is_local()) {
        Ok(d) => d,
        Err(code) => return code,
    };
    // Services pinned to the node that holds their volume: make sure one node carries each label.
    if !target.is_local() {
        let pins: Vec<(String, String)> = desired
            .services
            .iter()
            .filter_map(|(svc, spec)| {
                let c = spec.task_template.as_ref()?.placement.as_ref()?.constraints.as_ref()?;
                let label = c.first()?.strip_prefix("node.labels.")?.strip_suffix(" == true")?;
                let volume = label.strip_prefix("io.berth.volume.")?;
                Some((svc.clone(), volume.to_string()))
            })
            .collect();
        for (svc, volume) in pins {
            match rt.block_on(engine.pin_volume(&svc, &volume)) {
                Ok((node, new)) => {
                    if new {
                        progress.line(&format!(
                            "warning: {svc} keeps its data in volume {volume} on node {node}: it is pinned there \
                             (label {}); docs/cluster.md says how to move it",
                            berth_plan::pin::label_for(&volume)
                        ));
                    }
                }
                Err(e) => return super::engine_fail(e),
            }
        }
    }
    let release_commands: BTreeMap<String, Vec<Vec<String>>> = loaded
        .stack
        .services
        .iter()
        .filter_map(|(svc, s)| {
            let xb = berth_spec::xberth::ServiceBerth::from_json(s.extras.get("x-berth")?);
            (!xb.release.is_empty()).then(|| (format!("{name}_{svc}"), xb.release))
        })
        .collect();
    // The edge's image: built from this executable when the engine does not have it yet.
    if desired.services.contains_key(&berth_plan::edge::proxy_service(&name))
        && let Ok((tag, bin)) = edge_image()
    {
        match rt.block_on(engine.ensure_edge_image(&tag, &bin)) {
            Ok(true) => progress.line(&format!("edge: built image {tag}")),
            Ok(false) => {}
            Err(e) => {
                let hint = e.hint();
                return super::fail(engine_code(&e), e, hint);
            }
        }
    }
    // On an SSH target, images that exist only on the manager berth talks to (built without a
    // registry, and the edge's) are copied to the other hosts.
    if let Target::Ssh(t) = &target {
        let mut local_images: Vec<String> = Vec::new();
        if bopts.registry.is_none() {
            for (svc, s) in &stack_spec.services {
                if loaded.stack.services.get(svc).is_some_and(|o| o.build != berth_spec::model::BuildConfig::default())
                    && !bopts.repositories.contains_key(svc)
                {
                    local_images.push(s.image.clone());
                }
            }
        }
        if let Some(edge) = desired.services.get(&berth_plan::edge::proxy_service(&name))
            && let Some(image) =
                edge.task_template.as_ref().and_then(|t| t.container_spec.as_ref()).and_then(|c| c.image.clone())
        {
            local_images.push(image);
        }
        local_images.sort();
        local_images.dedup();
        if !local_images.is_empty() {
            let copied = rt.block_on(berth_engine::cluster::distribute_images(&engine, t, &local_images, &mut |l| {
                progress.line(l)
            }));
            if let Err(e) = copied {
                return super::engine_fail(e);
            }
        }
    }
    // Every service runs exactly the image its tag names now (by repo digest, or by ID for an image
    // that exists only here): no registry round trip per task, and a release names its images.
    if let Err(e) = rt.block_on(engine.pin_images(&mut desired)) {
        return super::engine_fail(e);
    }
    let urls = berth_plan::edge::urls(&loaded.stack);
    let opts = DeployOptions {
        adopt: args.adopt,
        timeout: Duration::from_secs(args.timeout),
        auto_rollback: !args.no_rollback,
        local: target.is_local(),
        files: stack.files.iter().map(|f| f.display().to_string()).collect(),
        release_commands,
        auths,
    };
    rt.block_on(async {
        let result = engine.deploy(desired, opts, &mut |e| progress.event(e)).await;
        // Several machines: tasks crowded onto the survivors of a node loss are spread again.
        let mut rebalance_error = None;
        if result.is_ok()
            && !target.is_local()
            && let Err(e) = engine.rebalance(&name, Duration::from_secs(args.timeout), &mut |e| progress.event(e)).await
        {
            rebalance_error = Some(e);
        }
        progress.finish();
        if let Some(e) = rebalance_error {
            let _ = writeln!(std::io::stderr(), "warning: the release is live, but rebalancing failed: {e}");
        }
        match result {
            Ok(r) if r.up_to_date => {
                print_notes(&r);
                let release = r.release.map(|n| format!(", release {n}")).unwrap_or_default();
                let _ = writeln!(std::io::stderr(), "stack {name} is up to date ({} services{release})", r.services);
                print_urls(&urls);
                exit::OK
            }
            Ok(r) => {
                print_notes(&r);
                let _ = writeln!(
                    std::io::stderr(),
                    "release {} is live ({} services, {:.1} s)",
                    r.release.unwrap_or_default(),
                    r.services,
                    r.elapsed.as_secs_f64()
                );
                print_urls(&urls);
                exit::OK
            }
            Err(e) => report_error(&e),
        }
    })
}

/// The stack name without needing the files when `--stack` is given.
fn name_only(stack: &StackArgs) -> Result<(String, Target), u8> {
    if let Some(n) = &stack.name
        && stack.files.is_empty()
        && stack.target.is_none()
    {
        return Ok((n.clone(), Target::Local));
    }
    let loaded = super::load(stack)?;
    let target = super::target(stack, &loaded)?;
    Ok((super::stack_name(stack, &loaded), target))
}

pub fn rollback(stack: &StackArgs, args: &RollbackArgs) -> u8 {
    let (name, target) = match name_only(stack) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let mut progress = Progress::new(&name, std::io::stderr().is_terminal());
    rt.block_on(async {
        let engine = match connect(&target).await {
            Ok(e) => e,
            Err(code) => return code,
        };
        let result =
            engine.rollback(&name, args.release, Duration::from_secs(args.timeout), &mut |e| progress.event(e)).await;
        progress.finish();
        match result {
            Ok(r) => {
                print_notes(&r);
                let n = r.release.unwrap_or_default();
                let msg = if r.up_to_date {
                    format!("stack {name} is already at release {n}")
                } else {
                    format!("rolled back to release {n} ({} services, {:.1} s)", r.services, r.elapsed.as_secs_f64())
                };
                let _ = writeln!(std::io::stderr(), "{msg}");
                exit::OK
            }
            Err(e) => report_error(&e),
        }
    })
}

pub fn releases(stack: &StackArgs, json: bool) -> u8 {
    let (name, target) = match name_only(stack) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let engine = match connect(&target).await {
            Ok(e) => e,
            Err(code) => return code,
        };
        let list = match engine.list_releases(&name).await {
            Ok(l) => l,
            Err(e) => {
                let hint = e.hint();
                return super::fail(engine_code(&e), e, hint);
            }
        };
        let mut out = std::io::stdout().lock();
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&list).unwrap_or_default());
            return exit::OK;
        }
        if list.is_empty() {
            let _ = writeln!(std::io::stderr(), "stack {name} has no releases yet (`berth deploy` makes the first)");
            return exit::OK;
        }
        let _ = writeln!(out, "  {:<8} {:<21} {:<8} IMAGES", "RELEASE", "CREATED", "STATUS");
        for r in &list {
            let status = match r.status {
                Some(s) => s.as_str(),
                None => "-",
            };
            let mut images: Vec<&str> = r.images.values().map(String::as_str).collect();
            images.sort_unstable();
            images.dedup();
            let _ = writeln!(
                out,
                "{} {:<8} {:<21} {:<8} {}",
                if r.current { "*" } else { " " },
                r.number,
                r.created,
                status,
                images.join(", ")
            );
        }
        exit::OK
    })
}
