//! Helpers for the parity test: cases, running both sides, normalising, diffing, cleaning up.

pub mod images;
use berth_plan::convert::{ConvertOptions, desired, resolve_references};
use berth_spec::load::{LoadOptions, load};
use bollard::Docker;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Label both docker/cli and berth put on stack objects.
const NS_LABEL: &str = "com.docker.stack.namespace";

/// One side of a comparison: its stack name (`parity-a-07`, `parity-b-07`).
pub struct Side {
    pub stack: String,
}

/// A change to the stack document before deploying (applied to the JSON form of the file).
pub type Edit = fn(&mut Value, &Side);

/// One stack file to compare.
pub struct Case {
    pub name: String,
    pub file: String,
    /// Further files merged over `file` (`-c file -c more...`).
    more: Vec<String>,
    edit: Option<Edit>,
    /// Files to put beside an edited copy: (name, content).
    files: Vec<(String, Vec<u8>)>,
    env: Vec<(String, String)>,
}

impl Case {
    pub fn new(name: &str, file: String) -> Case {
        let mut env = vec![("HOME".to_string(), "/root".to_string())];
        // Interpolation variables: docker stack deploy does not read `.env`, so feed it as the
        // process environment of both sides (exercises interpolation where files use it).
        if let Some(dir) = Path::new(&file).parent()
            && let Ok(text) = std::fs::read_to_string(dir.join(".env"))
        {
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                if let Some((k, v)) = line.split_once('=') {
                    env.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
                }
            }
        }
        Case { name: name.to_string(), file, more: Vec::new(), edit: None, files: Vec::new(), env }
    }

    pub fn merge(mut self, file: String) -> Case {
        self.more.push(file);
        self
    }

    pub fn edit(mut self, f: Edit) -> Case {
        self.edit = Some(f);
        self
    }

    pub fn copy(mut self, name: &str, from: String) -> Case {
        let data = std::fs::read(&from).unwrap_or_else(|e| panic!("cannot read fixture {from}: {e}"));
        self.files.push((name.to_string(), data));
        self
    }

    pub fn stub(mut self, name: &str, content: &str) -> Case {
        self.files.push((name.to_string(), content.as_bytes().to_vec()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Case {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// The file each side deploys: the fixture itself, or an edited copy (as JSON, which YAML
    /// parsers read too) in `dir` beside the case's extra files.
    fn file_for(&self, side: &Side, dir: &Path) -> PathBuf {
        let Some(edit) = self.edit else { return PathBuf::from(&self.file) };
        let text = std::fs::read_to_string(&self.file).unwrap();
        let node = berth_spec::yaml::parse(&text, 0).unwrap_or_else(|d| panic!("{}: {d}", self.file));
        let mut doc = node.to_json();
        edit(&mut doc, side);
        let path = dir.join(format!("{}.yml", side.stack));
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        path
    }
}

/// Connects to the local dockerd and checks it is a swarm manager; fails with how to fix it.
pub async fn connect() -> Docker {
    let hint = "the parity test needs a running dockerd in swarm mode: start it (`sudo systemctl start docker` or \
                `sudo dockerd &`), then `docker swarm init`";
    let docker =
        Docker::connect_with_local_defaults().unwrap_or_else(|e| panic!("cannot connect to Docker ({e}); {hint}"));
    let docker = docker.negotiate_version().await.unwrap_or_else(|e| panic!("Docker does not answer ({e}); {hint}"));
    let info = docker.info().await.unwrap_or_else(|e| panic!("Docker does not answer ({e}); {hint}"));
    let swarm = info.swarm.unwrap_or_default();
    assert!(
        swarm.control_available == Some(true),
        "this dockerd is not a swarm manager (state {:?}); {hint}",
        swarm.local_node_state
    );
    docker
}

/// External objects the stack files refer to, created for the test and removed when dropped.
pub struct ExtObjects;

pub async fn ext_objects(_docker: &Docker) -> ExtObjects {
    let guard = ExtObjects;
    guard.remove();
    docker_ok(&["network", "create", "--driver", "overlay", "parity-ext-net"]);
    docker_stdin_ok(&["secret", "create", "parity-ext-secret", "-"], b"external secret\n");
    docker_stdin_ok(&["config", "create", "parity-ext-config", "-"], b"external config\n");
    docker_ok(&["volume", "create", "parity-ext-volume"]);
    guard
}

impl ExtObjects {
    fn remove(&self) {
        let _ = docker(&["secret", "rm", "parity-ext-secret"]);
        let _ = docker(&["config", "rm", "parity-ext-config"]);
        remove_with_retry("volume", "parity-ext-volume");
        remove_with_retry("network", "parity-ext-net");
        // A task being prepared when its service was removed may still create a stack volume.
        std::thread::sleep(Duration::from_secs(2));
        sweep_parity_volumes();
    }
}

impl Drop for ExtObjects {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Removes the objects of some stacks when dropped (also on panic).
struct StackGuard(Vec<String>);

impl Drop for StackGuard {
    fn drop(&mut self) {
        for s in &self.0 {
            remove_stack(s);
        }
    }
}

/// Runs one case; `Err` carries a report of every difference.
pub async fn run_case(docker: &Docker, case: &Case, n: usize) -> Result<(), String> {
    let a = Side { stack: format!("parity-a-{n:02}") };
    let b = Side { stack: format!("parity-b-{n:02}") };
    // What a run killed midway left of these stacks would fail the case with "already exists".
    remove_stack(&a.stack);
    remove_stack(&b.stack);
    let _guard = StackGuard(vec![a.stack.clone(), b.stack.clone()]);
    let dir = tempfile::Builder::new().prefix("parity-").tempdir().unwrap();
    for (name, data) in &case.files {
        std::fs::write(dir.path().join(name), data).unwrap();
    }

    // Side A: docker stack deploy.
    let file_a = case.file_for(&a, dir.path());
    let mut cmd = Command::new("docker");
    cmd.env_clear().envs(case.env.iter().cloned()).env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        cmd.env("DOCKER_HOST", host);
    }
    cmd.args(["stack", "deploy", "--resolve-image", "never", "--detach=true", "-c"]).arg(&file_a);
    for more in &case.more {
        cmd.arg("-c").arg(more);
    }
    let out = cmd.arg(&a.stack).output().expect("run docker");
    if !out.status.success() {
        return Err(format!("docker stack deploy failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let snap_a = snapshot(&a.stack);
    remove_stack(&a.stack);

    // Side B: berth's desired state, created through the Engine API.
    let file_b = case.file_for(&b, dir.path());
    let created = create_with_berth(docker, case, &b, file_b).await;
    let snap_b = snapshot(&b.stack);
    remove_stack(&b.stack);
    created?;

    if snap_a.services.is_empty() {
        return Err("docker stack deploy created no services: nothing to compare".into());
    }
    let counts = format!(
        "{} services, {} networks, {} secrets, {} configs",
        snap_a.services.len(),
        snap_a.networks.len(),
        snap_a.secrets.len(),
        snap_a.configs.len()
    );
    let a = normalise(snap_a, &a.stack);
    let b = normalise(snap_b, &b.stack);
    eprintln!("parity {n:02} {}: compared {counts}", case.name);
    let mut diffs = Vec::new();
    diff("", &a, &b, &mut diffs);
    if diffs.is_empty() { Ok(()) } else { Err(diffs.iter().map(|d| format!("   {d}")).collect::<Vec<_>>().join("\n")) }
}

async fn create_with_berth(docker: &Docker, case: &Case, side: &Side, file: PathBuf) -> Result<(), String> {
    let mut files = vec![file];
    files.extend(case.more.iter().map(PathBuf::from));
    let loaded = load(&LoadOptions { files, env_files: vec![], environ: case.env.clone(), dotenv: false })
        .map_err(|f| format!("berth could not load the file:\n{}", lines(&f.diagnostics)))?;
    let read = |p: &Path| std::fs::read(p);
    let want = desired(&loaded.stack, &side.stack, &ConvertOptions { content_addressed: false }, &read)
        .map_err(|d| format!("berth could not convert the stack:\n{}", lines(&d)))?;

    for (name, req) in &want.networks {
        docker.create_network(req.clone()).await.map_err(|e| format!("create network {name}: {e}"))?;
    }
    let mut secret_ids = HashMap::new();
    for (name, spec) in &want.secrets {
        let r = docker.create_secret(spec.clone()).await.map_err(|e| format!("create secret {name}: {e}"))?;
        secret_ids.insert(name.clone(), r.id);
    }
    for name in &want.external_secrets {
        let s = docker.inspect_secret(name).await.map_err(|e| format!("external secret {name}: {e}"))?;
        secret_ids.insert(name.clone(), s.id.unwrap_or_default());
    }
    let mut config_ids = HashMap::new();
    for (name, spec) in &want.configs {
        let r = docker.create_config(spec.clone()).await.map_err(|e| format!("create config {name}: {e}"))?;
        config_ids.insert(name.clone(), r.id);
    }
    for name in &want.external_configs {
        let c = docker.inspect_config(name).await.map_err(|e| format!("external config {name}: {e}"))?;
        config_ids.insert(name.clone(), c.id.unwrap_or_default());
    }
    for (name, spec) in &want.services {
        let mut spec = spec.clone();
        resolve_references(&mut spec, &|n| secret_ids.get(n).cloned(), &|n| config_ids.get(n).cloned())
            .map_err(|m| format!("service {name}: unresolved references {m:?}"))?;
        docker.create_service(spec, None).await.map_err(|e| format!("create service {name}: {e}"))?;
    }
    Ok(())
}

fn lines(d: &[berth_spec::Diagnostic]) -> String {
    d.iter().map(|d| format!("   {}: {}", d.code, d)).collect::<Vec<_>>().join("\n")
}

/// What the daemon stored for one stack: inspect output of its services, networks, secrets, configs.
struct Snapshot {
    services: Vec<Value>,
    networks: Vec<Value>,
    secrets: Vec<Value>,
    configs: Vec<Value>,
    /// Object ID → name, for networks, secrets and configs of the whole swarm.
    names: HashMap<String, String>,
}

fn snapshot(stack: &str) -> Snapshot {
    let inspect = |kind: &str| -> Vec<Value> {
        let filter = format!("label={NS_LABEL}={stack}");
        // By ID: a name can be ambiguous (dockerd allows two swarm networks of one name).
        let ls = docker_ok(&[kind, "ls", "--filter", &filter, "--format", "{{.ID}}"]);
        let names: Vec<&str> = ls.lines().filter(|l| !l.is_empty()).collect();
        if names.is_empty() {
            return Vec::new();
        }
        let mut args = vec![kind, "inspect"];
        args.extend(names);
        serde_json::from_str(&docker_ok(&args)).expect("inspect output is JSON")
    };
    let mut names = HashMap::new();
    for kind in ["network", "secret", "config"] {
        let mut args = vec![kind, "ls", "--format", "{{.ID}} {{.Name}}"];
        if kind == "network" {
            args.push("--no-trunc");
        }
        for line in docker_ok(&args).lines() {
            if let Some((id, name)) = line.split_once(' ') {
                names.insert(id.to_string(), name.to_string());
            }
        }
    }
    Snapshot {
        services: inspect("service"),
        networks: inspect("network"),
        secrets: inspect("secret"),
        configs: inspect("config"),
        names,
    }
}

/// One comparable document: `{services: {name: Spec}, networks: {...}, secrets: {...}, configs: {...}}`
/// with IDs replaced by names, the stack name replaced by `parity-X`, `io.berth.stack` removed.
fn normalise(s: Snapshot, stack: &str) -> Value {
    let name_of = |id: &Value| -> Value {
        id.as_str()
            .map(|id| json!(s.names.get(id).cloned().unwrap_or_else(|| format!("<unknown id {id}>"))))
            .unwrap_or(Value::Null)
    };
    let mut services = Map::new();
    for svc in &s.services {
        let mut spec = svc["Spec"].clone();
        if let Some(nets) = spec["TaskTemplate"]["Networks"].as_array_mut() {
            for n in nets {
                n["Target"] = name_of(&n["Target"]);
            }
        }
        let cs = &mut spec["TaskTemplate"]["ContainerSpec"];
        for (list, id) in [("Secrets", "SecretID"), ("Configs", "ConfigID")] {
            if let Some(refs) = cs[list].as_array_mut() {
                for r in refs {
                    // IDs differ between the two stacks; the name next to it is compared instead.
                    r.as_object_mut().unwrap().remove(id);
                }
            }
        }
        if let Some(cfg) = cs.pointer_mut("/Privileges/CredentialSpec/Config") {
            *cfg = name_of(cfg);
        }
        services.insert(spec["Name"].as_str().unwrap_or_default().to_string(), spec);
    }
    let mut networks = Map::new();
    // Oldest first, so that a stale network of the same name left by an earlier run loses.
    let mut by_age: Vec<&Value> = s.networks.iter().collect();
    by_age.sort_by_key(|n| n["Created"].as_str().unwrap_or_default().to_string());
    for n in by_age {
        let mut n = n.clone();
        let o = n.as_object_mut().unwrap();
        for volatile in ["Id", "Created", "Containers", "Peers", "Services", "Status"] {
            o.remove(volatile);
        }
        if let Some(opts) = o.get_mut("Options").and_then(Value::as_object_mut) {
            opts.remove("com.docker.network.driver.overlay.vxlanid_list");
        }
        // Subnets the daemon allocated itself (default pool 10.0.0.0/8) differ per network; the
        // fixtures give their own subnets outside that pool.
        if let Some(cfgs) = o.get_mut("IPAM").and_then(|i| i.get_mut("Config")).and_then(Value::as_array_mut) {
            cfgs.retain(|c| !c["Subnet"].as_str().is_some_and(|s| s.starts_with("10.")));
        }
        networks.insert(n["Name"].as_str().unwrap_or_default().to_string(), n);
    }
    let specs = |objs: &[Value]| -> Map<String, Value> {
        objs.iter().map(|o| (o["Spec"]["Name"].as_str().unwrap_or_default().to_string(), o["Spec"].clone())).collect()
    };
    let mut doc = json!({
        "services": services,
        "networks": networks,
        "secrets": specs(&s.secrets),
        "configs": specs(&s.configs),
    });
    strip_owner_label(&mut doc);
    let text = serde_json::to_string(&doc).unwrap().replace(stack, "parity-X");
    serde_json::from_str(&text).unwrap()
}

fn strip_owner_label(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if k == "Labels"
                    && let Some(l) = child.as_object_mut()
                {
                    l.remove(berth_plan::desired::LABEL_OWNER);
                }
                strip_owner_label(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_owner_label),
        _ => {}
    }
}

/// Every difference between `a` (docker stack deploy) and `b` (berth) as `path: a=… b=…`.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let show = |v: Option<&Value>| v.map(|v| v.to_string()).unwrap_or_else(|| "<absent>".into());
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff(&p, va, vb, out),
                    (va, vb) => out.push(format!("{p}: docker={} berth={}", show(va), show(vb))),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!("{path}: docker has {} entries, berth {}: docker={a} berth={b}", x.len(), y.len()));
                return;
            }
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a != b => out.push(format!("{path}: docker={a} berth={b}")),
        _ => {}
    }
}

/// Removes a stack's objects: services first, then secrets, configs, networks and volumes
/// (retrying while the tasks of removed services still hold them).
fn remove_stack(stack: &str) {
    let filter = format!("label={NS_LABEL}={stack}");
    for kind in ["service", "secret", "config"] {
        let ids = docker(&[kind, "ls", "-q", "--filter", &filter]).unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec![kind, "rm"];
            args.extend(ids);
            let _ = docker(&args);
        }
    }
    // Networks, and volumes a task may have created on this node (they carry the stack label).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nets = docker(&["network", "ls", "-q", "--filter", &filter]).unwrap_or_default();
        let vols = docker(&["volume", "ls", "-q", "--filter", &filter]).unwrap_or_default();
        if (nets.trim().is_empty() && vols.trim().is_empty()) || Instant::now() > deadline {
            sweep_parity_volumes();
            break;
        }
        let mut stuck = 0;
        for id in nets.split_whitespace() {
            // "not found" while still listed: swarm deletes it once tasks holding it are reaped.
            if docker(&["network", "rm", id]).is_err_and(|e| e.contains("not found")) {
                stuck += 1;
            }
        }
        if stuck > 0 && stuck == nets.split_whitespace().count() && vols.trim().is_empty() {
            break;
        }
        for name in vols.split_whitespace() {
            let _ = docker(&["volume", "rm", name]);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Removes every volume a parity stack's tasks created (named `parity-*`, stack label set).
fn sweep_parity_volumes() {
    let vols = docker(&["volume", "ls", "-q", "--filter", &format!("label={NS_LABEL}")]).unwrap_or_default();
    for name in vols.split_whitespace().filter(|n| n.starts_with("parity-")) {
        let _ = docker(&["volume", "rm", name]);
    }
}

fn remove_with_retry(kind: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while docker(&[kind, "inspect", name]).is_ok() && Instant::now() < deadline {
        let _ = docker(&[kind, "rm", name]);
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker").args(args).output().map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn docker_ok(args: &[&str]) -> String {
    docker(args).unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")))
}

fn docker_stdin_ok(args: &[&str], input: &[u8]) {
    use std::io::Write;
    let mut child = Command::new("docker")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run docker");
    child.stdin.take().unwrap().write_all(input).unwrap();
    assert!(child.wait().unwrap().success(), "docker {} failed", args.join(" "));
}
