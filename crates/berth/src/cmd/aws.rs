//! `cluster plan | up | down | status` for AWS targets (CloudFormation through berth-aws), and the
//! engine target of an AWS target for `deploy` and the other stack commands (its managers over SSH).

use super::cluster::runtime;
use crate::cli::{ClusterCommand, StackArgs};
use crate::exit;
use crate::table;
use berth_aws::AwsError;
use berth_aws::stack::{AgentBinary, ChangePlan, PlanRequest, StackInfo, Stacks};
use berth_spec::xberth::{AwsMode, AwsTarget};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

/// Overrides the `AmiId` parameter (an SSM parameter name holding an AMI ID) of a target without
/// `ami`. Default: the template's (Debian 12).
pub const AMI_PARAMETER_ENV: &str = "BERTH_AWS_AMI_PARAMETER";

/// The exit code and rendering of an AWS error.
fn aws_fail(e: &AwsError) -> u8 {
    let code = match e {
        AwsError::NoCredentials { .. } | AwsError::UnknownProfile { .. } | AwsError::BadCredentials(_) => exit::ENGINE,
        AwsError::TooFewZones { .. } | AwsError::NoHostedZone { .. } => exit::INVALID,
        AwsError::Api { .. } if e.code().is_none() => exit::ENGINE,
        _ => exit::FAILED,
    };
    super::fail(code, e, e.hint().map(str::to_owned))
}

fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(rest),
        None => PathBuf::from(p),
    }
}

/// Everything a command needs: names, the template, the parameters that do not need AWS.
struct Prepared {
    stack: String,
    target: String,
    cfn_stack: String,
    template: serde_json::Value,
    spec: AwsTarget,
}

fn prepare(args: &StackArgs, target: &str, spec: &AwsTarget) -> Result<Prepared, u8> {
    let loaded = super::load(args)?;
    let stack = super::stack_name(args, &loaded);
    let xb = loaded.stack.extras.get("x-berth").map(berth_spec::xberth::XBerth::from_json).unwrap_or_default();
    let repositories: Vec<String> = loaded
        .stack
        .services
        .iter()
        .filter(|(_, s)| s.build != berth_spec::model::BuildConfig::default())
        .map(|(n, _)| n.clone())
        .collect();
    let public_key =
        match &spec.ssh_key {
            Some(p) => Some(std::fs::read_to_string(expand_home(p)).map_err(|e| {
                super::fail(exit::INVALID, format!("target `{target}`: reading ssh_key {p}: {e}"), None)
            })?),
            None => None,
        };
    let input = berth_cfn::TemplateInput {
        stack: &stack,
        target,
        aws: spec,
        domains: &xb.domains,
        repositories: &repositories,
        public_key: public_key.map(|k| k.trim().to_owned()),
    };
    let template =
        berth_cfn::template(&input).map_err(|e| super::fail(exit::INVALID, format!("target `{target}`: {e}"), None))?;
    Ok(Prepared {
        cfn_stack: berth_cfn::stack_name(&stack, target),
        stack,
        target: target.to_owned(),
        template,
        spec: spec.clone(),
    })
}

/// Config, credentials checked, zones and hosted zone resolved: the change set's parameters.
async fn connect(
    p: &Prepared,
    agent: &AgentBinary,
    progress: &mut dyn FnMut(String),
) -> Result<(Stacks, BTreeMap<String, String>), AwsError> {
    let conf = berth_aws::config::load(&p.spec.region, p.spec.profile.as_deref()).await?;
    let account = berth_aws::config::caller_identity(&conf).await?;
    progress(format!("AWS account {account}, region {}", p.spec.region));
    if p.spec.mode == AwsMode::Cluster {
        let zones = berth_aws::preflight::require_zones(&conf, berth_aws::preflight::CLUSTER_ZONES).await?;
        progress(format!("zones: {}", zones.join(", ")));
    }
    let mut params = BTreeMap::new();
    let zone_id = match &p.spec.hosted_zone {
        Some(z) => {
            let id = berth_aws::preflight::hosted_zone_id(&conf, z).await?;
            progress(format!("hosted zone {z}: {id}"));
            id
        }
        None => String::new(),
    };
    params.insert("HostedZoneId".to_owned(), zone_id);
    params.insert("AgentVersion".to_owned(), agent.version().to_owned());
    // A pinned `ami` is the template's default already; the variable only replaces the SSM name.
    if p.spec.ami.is_none()
        && let Ok(ami) = std::env::var(AMI_PARAMETER_ENV)
        && !ami.is_empty()
    {
        params.insert("AmiId".to_owned(), ami);
    }
    // Only parameters the template declares (an older template may lack one).
    if let Some(declared) = p.template.get("Parameters").and_then(|v| v.as_object()) {
        params.retain(|k, _| declared.contains_key(k));
    }
    Ok((Stacks::new(&conf), params))
}

fn request(p: &Prepared, parameters: BTreeMap<String, String>) -> PlanRequest {
    PlanRequest {
        stack: p.cfn_stack.clone(),
        template: serde_json::to_string(&p.template).unwrap_or_default(),
        parameters,
        tags: BTreeMap::from([
            ("io.berth.stack".to_owned(), p.stack.clone()),
            ("io.berth.target".to_owned(), p.target.clone()),
        ]),
    }
}

fn print_plan(plan: &ChangePlan) {
    let headers = ["ACTION", "LOGICAL ID", "TYPE", "REPLACEMENT"];
    let rows: Vec<Vec<String>> = plan
        .rows
        .iter()
        .map(|r| {
            vec![
                r.action.clone(),
                r.logical_id.clone(),
                r.resource_type.clone(),
                r.replacement.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print!("{}", table::render(&headers, &rows, std::io::stdout().is_terminal()));
}

fn summary(plan: &ChangePlan) -> String {
    let count = |a: &str| plan.rows.iter().filter(|r| r.action == a).count();
    format!(
        "stack {} ({}): {} to add, {} to modify, {} to remove",
        plan.stack,
        if plan.change_type == "CREATE" { "new" } else { "update" },
        count("Add"),
        count("Modify"),
        count("Remove")
    )
}

fn confirm(question: &str, yes: bool) -> Result<(), u8> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(super::fail(
            exit::USAGE,
            format!("{question}: no confirmation"),
            Some("pass `--yes` when not on a terminal".into()),
        ));
    }
    eprint!("{question}? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        eprintln!("nothing changed");
        Err(exit::FAILED)
    }
}

fn progress_printer(quiet: bool) -> impl FnMut(String) + Send {
    let start = Instant::now();
    move |line: String| {
        if !quiet {
            let _ = writeln!(std::io::stderr(), "[{:>6.1}s] {line}", start.elapsed().as_secs_f64());
        }
    }
}

fn print_outputs(info: &StackInfo) {
    let mut out = std::io::stdout().lock();
    for (k, v) in &info.outputs {
        let _ = writeln!(out, "{k:<16} {v}");
    }
}

/// `berth cluster ...` on an AWS target.
pub(crate) fn cluster(args: &StackArgs, target: &str, spec: &AwsTarget, cmd: ClusterCommand) -> u8 {
    let p = match prepare(args, target, spec) {
        Ok(p) => p,
        Err(c) => return c,
    };
    match cmd {
        ClusterCommand::Up { template_only: Some(file), .. } => {
            let text = serde_json::to_string_pretty(&p.template).unwrap_or_default() + "\n";
            let written = if file.as_os_str() == "-" {
                std::io::stdout().write_all(text.as_bytes())
            } else {
                std::fs::write(&file, text)
            };
            match written {
                Ok(()) => exit::OK,
                Err(e) => super::fail(exit::FAILED, format!("writing {}: {e}", file.display()), None),
            }
        }
        ClusterCommand::Plan { json, detailed_exitcode } => plan(&p, json, detailed_exitcode),
        ClusterCommand::Up { json, yes, .. } => up(&p, json, yes),
        ClusterCommand::Down { delete_data, yes, json } => down(&p, delete_data, yes, json),
        ClusterCommand::Status { json } => status(&p, json),
    }
}

fn agent_binary() -> Result<AgentBinary, u8> {
    AgentBinary::current().map_err(|e| aws_fail(&e))
}

fn plan(p: &Prepared, json: bool, detailed: bool) -> u8 {
    let agent = match agent_binary() {
        Ok(a) => a,
        Err(c) => return c,
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(c) => return c,
    };
    let mut progress = progress_printer(json);
    let result = rt.block_on(async {
        let (stacks, params) = connect(p, &agent, &mut progress).await?;
        progress(format!("computing the change set of {}", p.cfn_stack));
        let plan = stacks.plan(&request(p, params)).await?;
        stacks.discard(&plan).await?;
        Ok::<_, AwsError>(plan)
    });
    match result {
        Ok(plan) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&plan).unwrap_or_default());
            } else if plan.is_empty() {
                eprintln!("stack {} is up to date: no changes", plan.stack);
            } else {
                print_plan(&plan);
                eprintln!("{}", summary(&plan));
            }
            if detailed && !plan.is_empty() { exit::CHANGES } else { exit::OK }
        }
        Err(e) => aws_fail(&e),
    }
}

fn up(p: &Prepared, json: bool, yes: bool) -> u8 {
    let agent = match agent_binary() {
        Ok(a) => a,
        Err(c) => return c,
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(c) => return c,
    };
    let mut progress = progress_printer(json);
    let started = Instant::now();
    let result: Result<Option<StackInfo>, u8> = rt.block_on(async {
        let (stacks, params) = connect(p, &agent, &mut progress).await.map_err(|e| aws_fail(&e))?;
        if let Some(s) = stacks.describe(&p.cfn_stack).await.map_err(|e| aws_fail(&e))?
            && s.status == "ROLLBACK_COMPLETE"
        {
            stacks.delete_failed(&p.cfn_stack, &mut progress).await.map_err(|e| aws_fail(&e))?;
        }
        progress(format!("computing the change set of {}", p.cfn_stack));
        let req = request(p, params);
        let plan = stacks.plan(&req).await.map_err(|e| aws_fail(&e))?;
        if plan.is_empty() {
            // The binary may still have to go up (e.g. removed by hand).
            let info = stacks.describe(&p.cfn_stack).await.map_err(|e| aws_fail(&e))?;
            if let Some(b) = info.as_ref().and_then(|i| i.outputs.get(berth_aws::stack::OUT_DISCOVERY)) {
                stacks.upload_agent(b, &agent, &mut progress).await.map_err(|e| aws_fail(&e))?;
            }
            if !json {
                eprintln!("stack {} is up to date: no changes", p.cfn_stack);
            }
            return Ok(info);
        }
        if !json {
            print_plan(&plan);
            eprintln!("{}", summary(&plan));
        }
        if let Err(c) = confirm(&format!("apply these changes to {}", p.cfn_stack), yes) {
            let _ = stacks.discard(&plan).await;
            return Err(c);
        }
        let info = stacks.apply(&plan, Some(&agent), &mut progress).await.map_err(|e| aws_fail(&e))?;
        if !json {
            eprintln!("stack {} is {} ({:.1} s)", p.cfn_stack, info.status, started.elapsed().as_secs_f64());
        }
        Ok(Some(info))
    });
    match result {
        Ok(info) => {
            if let Some(info) = info {
                if json {
                    println!("{}", serde_json::to_string_pretty(&info).unwrap_or_default());
                } else {
                    print_outputs(&info);
                }
            }
            exit::OK
        }
        Err(c) => c,
    }
}

fn down(p: &Prepared, delete_data: bool, yes: bool, json: bool) -> u8 {
    let what = if delete_data {
        format!("delete stack {} AND its data buckets (static, media: their files are lost)", p.cfn_stack)
    } else {
        format!("delete stack {} (the static and media buckets are kept)", p.cfn_stack)
    };
    if let Err(c) = confirm(&what, yes) {
        return c;
    }
    let rt = match runtime() {
        Ok(r) => r,
        Err(c) => return c,
    };
    let mut progress = progress_printer(json);
    let result = rt.block_on(async {
        let conf = berth_aws::config::load(&p.spec.region, p.spec.profile.as_deref()).await?;
        berth_aws::config::caller_identity(&conf).await?;
        Stacks::new(&conf).down(&p.cfn_stack, delete_data, &mut progress).await
    });
    match result {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else if !r.existed {
                eprintln!("stack {} does not exist: nothing to delete", p.cfn_stack);
            } else {
                for b in &r.kept {
                    eprintln!("kept data bucket {b} (delete it with `berth cluster down --delete-data`)");
                }
                eprintln!("stack {} deleted", p.cfn_stack);
            }
            exit::OK
        }
        Err(e) => aws_fail(&e),
    }
}

fn status(p: &Prepared, json: bool) -> u8 {
    let rt = match runtime() {
        Ok(r) => r,
        Err(c) => return c,
    };
    let result = rt.block_on(async {
        let conf = berth_aws::config::load(&p.spec.region, p.spec.profile.as_deref()).await?;
        Stacks::new(&conf).describe(&p.cfn_stack).await
    });
    match result {
        Ok(info) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&info).unwrap_or_default());
            } else {
                match &info {
                    Some(i) => {
                        println!("{} {}", i.name, i.status);
                        print_outputs(i);
                    }
                    None => eprintln!("stack {} does not exist", p.cfn_stack),
                }
            }
            exit::OK
        }
        Err(e) => aws_fail(&e),
    }
}

/// Registry credentials for a deploy to an AWS target: the Docker CLI's, plus an ECR token for the
/// account's registry (12 hours), kept in `~/.cache/berth` and used again while more than half its
/// life is left (`berth_aws::ecr::login_cached`), so that a `plan` right after a deploy shows no
/// change. A new token changes the fingerprint label, and the swarm gets it without restarting
/// tasks. Also returns the registry host.
pub(crate) fn registry_auths(t: &AwsTarget) -> Result<(berth_engine::RegistryAuths, String), u8> {
    let rt = runtime()?;
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("berth"));
    let login = rt
        .block_on(async {
            let conf = berth_aws::config::load(&t.region, t.profile.as_deref()).await?;
            // One token per region, profile and endpoint (a test's moto server is not AWS).
            let key =
                format!("{} {} {}", t.region, t.profile.as_deref().unwrap_or(""), conf.endpoint_url().unwrap_or(""));
            match &cache {
                Some(dir) => berth_aws::ecr::login_cached(&conf, dir, &key).await,
                None => berth_aws::ecr::login(&conf).await,
            }
        })
        .map_err(|e| aws_fail(&e))?;
    let mut auths = berth_engine::RegistryAuths::load(None);
    auths.insert_login(&login.registry, login.username, login.password);
    Ok((auths, login.registry))
}

/// Where an AWS target's built images go when `x-berth.registry` names none: each service with
/// `build:` to the ECR repository `cluster up` made for it (`<registry>/<stack>/<service>`), so
/// every node, workers and replaced instances included, pulls it with the swarm's token.
pub(crate) fn ecr_repositories(registry: &str, stack: &str, spec: &berth_spec::Stack) -> BTreeMap<String, String> {
    spec.services
        .iter()
        .filter(|(_, s)| s.build != berth_spec::model::BuildConfig::default())
        .map(|(svc, _)| (svc.clone(), format!("{registry}/{}", berth_cfn::repository_name(stack, svc))))
        .collect()
}

/// The engine target of an AWS target: its managers' public addresses (from the discovery
/// bucket's `swarm/state.json`), user `ssh_user` (default `admin`, Debian's), the private half of
/// `ssh_key`, host keys as published in `state.json`.
pub(crate) fn ssh_target(stack: &str, target: &str, t: &AwsTarget) -> Result<berth_engine::SshTarget, u8> {
    use berth_engine::berth_ssh::{HostAddr, SshOptions};
    let cfn_stack = berth_cfn::stack_name(stack, target);
    if t.ssh_cidr.is_none() {
        return Err(super::fail(
            exit::ENGINE,
            format!("target `{target}`: SSH to its instances is closed (no `ssh_cidr`), so berth cannot reach the swarm"),
            Some("set `ssh_cidr` (your address, e.g. 203.0.113.4/32) and `ssh_key` in the target, then `berth cluster up`".into()),
        ));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| super::fail(exit::FAILED, e, None))?;
    let managers: Vec<(String, Vec<String>)> = rt
        .block_on(async {
            let conf = berth_aws::config::load(&t.region, t.profile.as_deref()).await?;
            berth_aws::config::caller_identity(&conf).await?;
            let stacks = Stacks::new(&conf);
            let info = stacks.describe(&cfn_stack).await?.ok_or_else(|| {
                AwsError::Other(format!(
                    "stack {cfn_stack} does not exist: run `berth cluster up --target {target}` first"
                ))
            })?;
            let bucket = info.outputs.get(berth_aws::stack::OUT_DISCOVERY).ok_or_else(|| {
                AwsError::Other(format!("stack {cfn_stack} ({}) has no discovery bucket yet", info.status))
            })?;
            let discovery = berth_aws::discovery::Discovery::new(berth_aws::config::s3(&conf), bucket.clone());
            let managers = discovery.state().await?.map(|s| s.managers).unwrap_or_default();
            Ok::<_, AwsError>(
                managers
                    .into_iter()
                    .filter(|m| !m.public_ip.is_empty())
                    .map(|m| (m.public_ip, m.ssh_host_keys))
                    .collect(),
            )
        })
        .map_err(|e| aws_fail(&e))?;
    if managers.is_empty() {
        return Err(super::fail(
            exit::ENGINE,
            format!("target `{target}`: no manager published yet (swarm/state.json names none with a public address)"),
            Some("the instances' agents publish it once the swarm is initialised, a few minutes after `berth cluster up`; try again".into()),
        ));
    }
    let user = t.ssh_user.clone().unwrap_or_else(|| "admin".into());
    let hosts: Vec<HostAddr> =
        managers.iter().map(|(ip, _)| HostAddr { user: Some(user.clone()), host: ip.clone(), port: 22 }).collect();
    let mut options = SshOptions { user, ..SshOptions::default() };
    // The private half of the key pair's public key file; else the SSH agent and default keys.
    options.key = t.ssh_key.as_deref().map(|k| expand_home(k.strip_suffix(".pub").unwrap_or(k))).filter(|p| p.exists());
    // Each manager's agent publishes its host keys in state.json (written only by the instances'
    // role and the account): the host must present one of them. Instances are new machines with
    // new keys whenever the group replaces one, so known_hosts would not help. Agents older than
    // this publish none: trust on first use for those hosts, said on stderr.
    for (ip, keys) in &managers {
        if keys.is_empty() {
            options.trust_new_hosts = true;
            eprintln!(
                "warning: swarm/state.json names no SSH host keys for {ip} (an older agent): trusting its key on first use"
            );
        } else {
            options.host_keys.insert(ip.clone(), keys.clone());
        }
    }
    let socket = t.socket.clone().unwrap_or_else(|| "/var/run/docker.sock".into());
    Ok(berth_engine::SshTarget { managers: hosts.clone(), hosts, socket, options })
}

#[cfg(test)]
mod tests {
    /// Built services go to the repositories `cluster up` made (`<stack>/<service>`, lowercase,
    /// whatever their `image:` says); services without `build:` keep their image.
    #[test]
    fn ecr_repositories_name_the_stacks_repository_of_each_built_service() {
        let yaml = "services:\n  Backend:\n    build: ./b\n    image: blog/api\n  db:\n    image: postgres:15\n  frontend:\n    build: ./f\n";
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, yaml).unwrap();
        let opts = berth_spec::load::LoadOptions { files: vec![file], dotenv: false, ..Default::default() };
        let stack = berth_spec::load::load(&opts).unwrap_or_else(|f| panic!("{:?}", f.diagnostics)).stack;
        let repos = super::ecr_repositories("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "Blog", &stack);
        let want: Vec<(&str, &str)> = vec![
            ("Backend", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/blog/backend"),
            ("frontend", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/blog/frontend"),
        ];
        let got: Vec<(&str, &str)> = repos.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }
}
