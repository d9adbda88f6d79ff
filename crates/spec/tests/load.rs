//! The whole loading pipeline: real stack files, `.env`, relative paths, multi-file loads, positions
//! of errors from each stage, and output equal to the real `docker stack config`.

use berth_spec::env::Env;
use berth_spec::load::{LoadOptions, Loaded, default_file, load, load_documents};
use berth_spec::render;
use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::process::Command;

const SUITES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/compose-suites");

fn suite(rel: &str) -> PathBuf {
    Path::new(SUITES).join(rel)
}

fn opts(files: &[PathBuf]) -> LoadOptions {
    LoadOptions { files: files.to_vec(), env_files: vec![], environ: vec![], dotenv: false }
}

fn must_load(o: &LoadOptions) -> Loaded {
    match load(o) {
        Ok(l) => l,
        Err(e) => panic!("load failed: {:#?}", e.diagnostics),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

fn docs(text: &str) -> Vec<(PathBuf, String)> {
    vec![(PathBuf::from("stack.yml"), text.to_string())]
}

fn load_err(text: &str) -> Vec<berth_spec::Diagnostic> {
    match load_documents(&docs(text), Path::new("/w"), &Env::new()) {
        Ok(l) => panic!("expected an error, got {:#?}", l.stack),
        Err(e) => e.diagnostics,
    }
}

#[test]
fn e2e_full_stack_loads_two_services() {
    let l = must_load(&opts(&[suite("docker-cli/e2e/stack/testdata/full-stack.yml")]));
    assert_eq!(l.stack.version, "3.3");
    assert_eq!(l.stack.services.keys().collect::<Vec<_>>(), ["one", "two"]);
    assert_eq!(l.stack.services["one"].command, ["top"]);
    assert_eq!(l.stack.services["two"].image, "registry:5000/alpine:frozen");
}

#[test]
fn e2e_named_resources_keep_their_names_and_absolute_files() {
    let file = suite("docker-cli/e2e/stack/testdata/stack-with-named-resources.yml");
    let l = must_load(&opts(std::slice::from_ref(&file)));
    let s = &l.stack;
    assert_eq!(s.networks["network1"].name, "named-network");
    assert_eq!(s.networks["network2"].name, "");
    assert_eq!(s.volumes["volume1"].name, "named-volume");
    assert_eq!(s.secrets["secret1"].name, "named-secret");
    // Absolute and cleaned like Go's filepath.Abs (the test path has `..` in it).
    for f in [&s.secrets["secret2"].file, &s.configs["config1"].file] {
        assert!(f.starts_with('/') && f.ends_with("/e2e/stack/testdata/data") && !f.contains(".."), "{f}");
    }
    let web = &s.services["web"];
    assert_eq!(web.networks.keys().collect::<Vec<_>>(), ["network1", "network2"]);
    assert_eq!(web.secrets.iter().map(|r| r.source.as_str()).collect::<Vec<_>>(), ["secret1", "secret2"]);
    assert_eq!(web.volumes[0].kind, "volume");
    assert_eq!(web.volumes[0].target, "volume1");
}

#[test]
fn dotenv_beside_the_file_is_read_and_the_process_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "stack.yml", "services:\n  a:\n    image: \"${A}:${B}\"\n    environment:\n      C:\n");
    write(dir.path(), ".env", "A=from_dotenv\nB=from_dotenv\nC=from_dotenv\n");
    let mut o = opts(std::slice::from_ref(&f));
    o.dotenv = true;
    o.environ = vec![("B".into(), "from_process".into())];
    let l = must_load(&o);
    assert_eq!(l.stack.services["a"].image, "from_dotenv:from_process");
    // An environment entry without a value takes it from the (combined) environment.
    assert_eq!(l.stack.services["a"].environment["C"].as_deref(), Some("from_dotenv"));
    // Without dotenv, `${A}` is empty.
    let mut o = opts(&[f]);
    o.environ = vec![("B".into(), "p".into())];
    assert_eq!(must_load(&o).stack.services["a"].image, ":p");
}

#[test]
fn env_file_option_is_below_the_process_environment_and_above_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "stack.yml", "services:\n  a:\n    image: \"${A}-${B}-${C}\"\n");
    write(dir.path(), ".env", "A=dotenv\nB=dotenv\nC=dotenv\n");
    let extra = write(dir.path(), "extra.env", "A=extra\nB=extra\n");
    let mut o = opts(&[f]);
    o.dotenv = true;
    o.env_files = vec![extra];
    o.environ = vec![("A".into(), "process".into())];
    assert_eq!(must_load(&o).stack.services["a"].image, "process-extra-dotenv");
}

#[test]
fn relative_paths_resolve_against_the_first_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::absolute(dir.path()).unwrap();
    let base = write(
        dir.path(),
        "stack.yml",
        "services:\n  a:\n    image: x\n    volumes: ['./data:/data', 'named:/n', '~/cfg:/cfg:ro']\n    env_file: conf/app.env\nsecrets:\n  s:\n    file: ./s.txt\n",
    );
    write(dir.path(), "conf/app.env", "FROM_FILE=1\n");
    let over = write(dir.path(), "sub/override.yml", "services:\n  b:\n    image: y\n    volumes: ['../up:/up']\n");
    let mut o = opts(&[base, over]);
    o.environ = vec![("HOME".into(), "/home/me".into())];
    let l = must_load(&o);
    let a = &l.stack.services["a"];
    assert_eq!(a.volumes[0].source, root.join("data").to_string_lossy());
    assert_eq!(a.volumes[1].kind, "volume");
    assert_eq!(a.volumes[2].source, "/home/me/cfg");
    assert!(a.volumes[2].read_only);
    assert_eq!(a.environment["FROM_FILE"].as_deref(), Some("1"));
    assert_eq!(l.stack.secrets["s"].file, root.join("s.txt").to_string_lossy());
    // The second file's `../up` is relative to the FIRST file's directory, as in docker/cli.
    let up = root.parent().unwrap().join("up");
    assert_eq!(l.stack.services["b"].volumes[0].source, up.to_string_lossy());
}

#[test]
fn multi_file_load_overrides_and_adds_services() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(
        dir.path(),
        "base.yml",
        "version: '3.8'\nservices:\n  web:\n    image: nginx:1\n    environment: [A=1, B=2]\n  db:\n    image: postgres\nnetworks:\n  front: {}\n",
    );
    let over = write(
        dir.path(),
        "prod.yml",
        "version: '3.8'\nservices:\n  web:\n    image: nginx:2\n    environment: {B: 3}\n    deploy: {replicas: 3}\n  cache:\n    image: redis\n",
    );
    let l = must_load(&opts(&[base, over]));
    let s = &l.stack;
    assert_eq!(s.services.keys().collect::<Vec<_>>(), ["cache", "db", "web"]);
    assert_eq!(s.services["web"].image, "nginx:2");
    assert_eq!(s.services["web"].deploy.replicas, Some(3));
    assert_eq!(s.services["web"].environment["A"].as_deref(), Some("1"));
    assert_eq!(s.services["web"].environment["B"].as_deref(), Some("3"));
    assert!(s.networks.contains_key("front"));
    assert_eq!(l.documents.len(), 2);
}

#[test]
fn files_with_different_versions_are_rejected_naming_both() {
    let d = match load_documents(
        &[
            (PathBuf::from("a.yml"), "version: '3.5'\nservices: {}\n".into()),
            (PathBuf::from("b.yml"), "version: '3.8'\nservices: {}\n".into()),
        ],
        Path::new("/w"),
        &Env::new(),
    ) {
        Ok(_) => panic!("expected a version mismatch"),
        Err(e) => e.diagnostics,
    };
    assert_eq!(d[0].code, "load.version-mismatch");
    assert!(d[0].message.contains("a.yml") && d[0].message.contains("b.yml"), "{}", d[0].message);
    assert_eq!(d[0].pos.map(|p| (p.file, p.line)), Some((1, 1)));
}

#[test]
fn yaml_errors_carry_positions() {
    let d = load_err("services:\n  web:\n    image: [a\n");
    assert_eq!(d[0].code, "yaml.syntax");
    assert!(d[0].pos.is_some());
}

#[test]
fn forbidden_property_errors_carry_positions() {
    let d = load_err("services:\n  web:\n    image: x\n    volumes_from: [db]\n");
    let e = d.iter().find(|d| d.is_error()).unwrap();
    assert_eq!(e.code, "swarm.forbidden", "{e:?}");
    assert_eq!(e.pos.map(|p| p.line), Some(4));
}

#[test]
fn schema_errors_carry_positions() {
    let d = load_err("services:\n  web:\n    image: x\n    deploy:\n      replica: 2\n");
    let e = d.iter().find(|d| d.is_error()).unwrap();
    assert!(e.code.starts_with("schema."), "{e:?}");
    assert_eq!(e.pos.map(|p| (p.line, p.col)), Some((5, 7)));
}

#[test]
fn interpolation_errors_carry_positions() {
    let d = load_err("services:\n  db:\n    image: postgres\n    environment:\n      PW: ${DB_PASSWORD:?set it}\n");
    let e = d.iter().find(|d| d.is_error()).unwrap();
    assert!(e.code.starts_with("interpolate."), "{e:?}");
    assert_eq!(e.pos.map(|p| p.line), Some(5));
}

#[test]
fn typed_load_errors_carry_positions_and_paths() {
    let d = load_err("services:\n  web:\n    image: x\n    volumes:\n      - ab::c\n    command: echo 'oops\n");
    let vol = d.iter().find(|d| d.code == "load.volume").expect("volume error");
    assert_eq!(vol.path, "services.web.volumes.0");
    assert_eq!(vol.pos.map(|p| (p.line, p.col)), Some((5, 9)));
    let cmd = d.iter().find(|d| d.code == "load.command").expect("command error");
    assert_eq!(cmd.path, "services.web.command");
    assert_eq!(cmd.pos.map(|p| p.line), Some(6));
}

#[test]
fn typed_conversion_errors_point_at_the_value() {
    let d = load_err("services:\n  a:\n    image: x\n    ports:\n      - 80\n      - target: 99999999999\n");
    assert_eq!(d[0].code, "load.type");
    assert_eq!(d[0].path, "services.a.ports.1.target");
    assert_eq!(d[0].pos.map(|p| (p.line, p.col)), Some((6, 17)));
    assert!(d[0].message.contains("99999999999"), "{}", d[0].message);
}

#[test]
fn missing_env_file_is_an_error_at_the_entry() {
    let d = load_err("services:\n  web:\n    image: x\n    env_file:\n      - ./nope.env\n");
    assert_eq!(d[0].code, "load.io");
    assert_eq!(d[0].path, "services.web.env_file.0");
    assert_eq!(d[0].pos.map(|p| p.line), Some(5));
    assert!(d[0].message.contains("/w/nope.env"), "{}", d[0].message);
}

#[test]
fn external_volume_with_driver_is_a_conflict() {
    let d = load_err("services: {}\nvolumes:\n  v:\n    external: true\n    driver: foo\n");
    assert_eq!(d[0].code, "load.conflict");
    assert_eq!(d[0].pos.map(|p| p.line), Some(5));
}

#[test]
fn port_host_ip_is_a_warning() {
    let l = load_documents(
        &docs("services:\n  a:\n    image: x\n    ports: ['127.0.0.1:80:80']\n"),
        Path::new("/w"),
        &Env::new(),
    )
    .unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    assert!(l.warnings.iter().any(|w| w.code == "load.port-ip-ignored"), "{:#?}", l.warnings);
    assert_eq!(l.stack.services["a"].ports[0].published, 80);
}

#[test]
fn default_file_prefers_compose_yaml() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(default_file(dir.path()), None);
    write(dir.path(), "stack.yml", "services: {}\n");
    assert_eq!(default_file(dir.path()), Some(dir.path().join("stack.yml")));
    write(dir.path(), "compose.yaml", "services: {}\n");
    assert_eq!(default_file(dir.path()), Some(dir.path().join("compose.yaml")));
}

#[test]
fn arbitrary_documents_never_panic() {
    let inputs = [
        "",
        "a",
        "services:",
        "services: []",
        "services:\n  a: 1\n",
        "services:\n  a:\n    ports: [{}, 1, '::', '-1']\n",
        "services:\n  a:\n    volumes: [':', 'a:', '::::']\n",
        "networks: {n: {external: {name: 1}}}\nservices: {}\n",
        "services:\n  a:\n    ulimits: {n: {soft: 'x'}}\n    deploy: {resources: {limits: {memory: '1q'}}}\n",
        "x-a: &a [*a]\n",
    ];
    for text in inputs {
        let _ = load_documents(&docs(text), Path::new("/w"), &Env::new());
    }
}

/// Runs the real `docker stack config` (no daemon needed) and parses its YAML output.
fn docker_stack_config(file: &Path, environ: &[(&str, &str)]) -> Option<J> {
    let mut cmd = Command::new("docker");
    cmd.arg("stack").arg("config").arg("-c").arg(file).env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in environ {
        cmd.env(k, v);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).expect("docker output parses"))
}

fn berth_config(file: &Path, environ: &[(&str, &str)]) -> Result<J, String> {
    let mut o = opts(&[file.to_path_buf()]);
    o.environ = environ.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    match load(&o) {
        Ok(l) => Ok(serde_saphyr::from_str(&render::to_yaml(&l.stack)).expect("our output parses")),
        Err(e) => Err(format!("{:#?}", e.diagnostics)),
    }
}

#[test]
fn voting_app_stack_renders_like_docker_stack_config() {
    let file = suite("example-voting-app/docker-stack.yml");
    let env = [("HOME", "/home/test")];
    let want = docker_stack_config(&file, &env).expect("docker stack config accepts docker-stack.yml");
    let ours = berth_config(&file, &env).unwrap();
    assert_eq!(ours, want, "berth:\n{ours:#}\ndocker:\n{want:#}");
}

#[test]
fn every_file_docker_accepts_renders_like_docker_stack_config() {
    let env = [("HOME", "/home/test")];
    let mut files = Vec::new();
    for dir in std::fs::read_dir(suite("awesome-compose")).unwrap() {
        let dir = dir.unwrap().path();
        for name in ["compose.yaml", "compose.yml"] {
            if dir.join(name).is_file() {
                files.push(dir.join(name));
            }
        }
    }
    files.sort();
    files.push(suite("example-voting-app/docker-stack.yml"));
    files.push(suite("docker-cli/e2e/stack/testdata/full-stack.yml"));
    files.push(suite("docker-cli/e2e/stack/testdata/stack-with-named-resources.yml"));
    let mut compared = 0;
    let mut failures = Vec::new();
    for f in &files {
        let Some(want) = docker_stack_config(f, &env) else {
            // docker rejects it (schema, missing files): berth must reject it too.
            if let Ok(ours) = berth_config(f, &env) {
                failures.push(format!("{}: docker rejects it, berth accepts it:\n{ours:#}", f.display()));
            }
            continue;
        };
        compared += 1;
        match berth_config(f, &env) {
            Ok(ours) if ours == want => {}
            Ok(ours) => failures.push(format!("{}: output differs\nberth:\n{ours:#}\ndocker:\n{want:#}", f.display())),
            Err(e) => failures.push(format!("{}: berth rejected it: {e}", f.display())),
        }
    }
    eprintln!("compared {compared} of {} files with docker stack config", files.len());
    assert!(compared >= 20, "only {compared} files compared");
    assert!(failures.is_empty(), "{} of {compared} differ:\n{}", failures.len(), failures.join("\n\n"));
}

/// Short syntaxes and odd corners, each checked against the real CLI.
const TRICKY: &str = r#"
version: "3.13"
services:
  a:
    image: "x:${TAG:-latest}"
    build: ./ctx
    command: sh -c "echo 'a b' \"c\""
    entrypoint: ["/bin/tini", "--"]
    environment:
      - A
      - B=
      - C=1=2
      - UNSET
    env_file: app.env
    extra_hosts:
      h1: 1.2.3.4
      h2: "::1"
    dns: 1.1.1.1
    dns_search: example.com
    tmpfs: /run
    labels: [a=1, b, c=]
    sysctls: [net.core.somaxconn=1024]
    logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
    healthcheck:
      test: curl -f http://localhost
      interval: 90s
      timeout: 1500ms
      retries: 3
    stop_grace_period: 1h1m1s
    init: true
    read_only: true
    ulimits:
      nofile: {soft: 1, hard: 2}
      nproc: 3
    credential_spec: {config: cs}
    expose: [80, "443"]
    ports:
      - 3000
      - "3001-3002/udp"
      - "127.0.0.1:8000-8001:80-81"
      - "[::1]:9000:9000"
      - "5000-5002:6000"
      - target: 53
        published: 53
        protocol: udp
        mode: host
    volumes:
      - data:/data:nocopy
      - ./rel:/rel:ro,rshared
      - ~/home:/home
      - /abs/dir/:/abs
      - /anon
      - type: tmpfs
        target: /tmp
        tmpfs: {size: 1048576}
      - type: bind
        source: ./b
        target: /b
        bind: {propagation: rslave}
    secrets: [s1, {source: s2, target: t, mode: 0400}]
    configs: [{source: c1, uid: "1", gid: "2"}]
    networks:
      front: {aliases: [web], ipv4_address: 10.0.0.2}
      back:
    deploy:
      mode: replicated
      replicas: 0
      labels: {l: "1"}
      update_config: {parallelism: 0, delay: 0s, order: start-first, max_failure_ratio: 0.5}
      rollback_config: {monitor: 2m}
      restart_policy: {}
      resources:
        limits: {cpus: "0.5", memory: 1.5G, pids: 10}
        reservations: {memory: "1024"}
      placement:
        constraints: ["node.role == manager"]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
      endpoint_mode: vip
    x-svc: {k: v}
  b:
    image: y
    networks: [front]
networks:
  front:
    driver: overlay
    attachable: true
    internal: true
    labels: [a=b]
    driver_opts: {encrypted: ""}
    ipam: {driver: default, config: [{subnet: 10.0.0.0/24}]}
    x-dropped: 1
  back:
    external: true
  legacy:
    external: {name: real-legacy}
    x-kept: 1
volumes:
  data:
    driver: local
    driver_opts: {type: none, o: bind, device: /srv}
    labels: {a: b}
  ext:
    external: true
    name: real-ext
secrets:
  s1: {file: ./s1.txt, labels: [x=y]}
  s2: {external: true}
configs:
  c1: {file: ./c1.txt, template_driver: golang}
x-top: [1, 2]
"#;

#[test]
fn tricky_short_syntaxes_render_like_docker_stack_config() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "stack.yml", TRICKY);
    write(dir.path(), "app.env", "A=from_file\nFILE_ONLY=1\n# comment\nEMPTY=\n");
    let env = [("HOME", "/home/test"), ("B", "from_env"), ("EMPTY", "filled")];
    let want = docker_stack_config(&f, &env).expect("docker stack config accepts TRICKY");
    assert_eq!(want["services"]["a"]["ports"].as_array().map(Vec::len), Some(10), "{want:#}");
    let ours = berth_config(&f, &env).unwrap();
    let mut out = Vec::new();
    diff(&ours, &want, "", &mut out);
    assert!(out.is_empty(), "{} differences:\n{}", out.len(), out.join("\n"));
}

#[test]
fn full_example_renders_like_docker_stack_config() {
    let loader = suite("docker-cli/cli/compose/loader");
    let dir = tempfile::tempdir().unwrap();
    for name in ["full-example.yml", "example1.env", "example2.env"] {
        std::fs::copy(loader.join(name), dir.path().join(name)).unwrap();
    }
    let f = dir.path().join("full-example.yml");
    let env = [("HOME", "/bar"), ("QUX", "qux_from_environment")];
    let want = docker_stack_config(&f, &env).expect("docker stack config accepts full-example.yml");
    let ours = berth_config(&f, &env).unwrap();
    let mut out = Vec::new();
    diff(&ours, &want, "", &mut out);
    assert!(out.is_empty(), "{} differences:\n{}", out.len(), out.join("\n"));
}

#[test]
fn multi_file_load_renders_like_docker_stack_config() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(
        dir.path(),
        "base.yml",
        "version: '3.9'\nservices:\n  web:\n    image: nginx:1\n    command: a b\n    environment: [A=1, B=2]\n    labels: {l1: a}\n    ports: ['80:80', '443:443']\n    volumes: ['data:/data', './a:/a']\n    secrets: [s1]\n    networks: [front]\n    deploy: {replicas: 1, labels: {d: '1'}, resources: {limits: {memory: 10M}}}\n  db:\n    image: postgres\nnetworks:\n  front: {driver: overlay}\nvolumes:\n  data: {}\nsecrets:\n  s1: {file: ./s1}\nx-a: 1\n",
    );
    let over = write(
        dir.path(),
        "over.yml",
        "version: '3.9'\nservices:\n  web:\n    image: nginx:2\n    command: c\n    environment: {B: '3', C: '4'}\n    labels: [l2=b]\n    ports: ['8080:80', '443:443']\n    volumes: ['other:/data']\n    secrets: [{source: s2, target: x}]\n    networks: {back: {aliases: [w]}}\n    deploy: {replicas: 3, resources: {limits: {cpus: '0.5'}}}\n  cache:\n    image: redis\nnetworks:\n  back: {external: true}\nvolumes:\n  other: {driver: local}\nsecrets:\n  s2: {external: true}\nx-b: 2\n",
    );
    let mut cmd = Command::new("docker");
    cmd.args(["stack", "config", "-c"]).arg(&base).arg("-c").arg(&over).env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    let out = cmd.output().expect("docker runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: J = serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let l = must_load(&opts(&[base, over]));
    let ours: J = serde_saphyr::from_str(&render::to_yaml(&l.stack)).unwrap();
    let mut out = Vec::new();
    diff(&ours, &want, "", &mut out);
    assert!(out.is_empty(), "{} differences:\n{}", out.len(), out.join("\n"));
}

/// Paths where `a` (berth) and `b` (docker) differ.
fn diff(a: &J, b: &J, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (J::Object(x), J::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: only in berth: {v}")),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) {
                    out.push(format!("{path}.{k}: only in docker: {w}"));
                }
            }
        }
        (J::Array(x), J::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(v, w, &format!("{path}.{i}"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: berth {a} != docker {b}")),
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "image",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "ports",
        "volumes",
        "networks",
        "secrets",
        "configs",
        "deploy",
        "healthcheck",
        "ulimits",
        "labels",
        "extra_hosts",
        "dns",
        "tmpfs",
        "logging",
        "stop_grace_period",
        "build",
        "sysctls",
        "expose",
        "x-ext",
        "bogus",
    ];
    const VALUES: &[&str] = &[
        "x",
        "1",
        "-1",
        "1.5",
        "true",
        "null",
        "''",
        "'a b \"c'",
        "[]",
        "{}",
        "[1, a, '::', '1-2:3-4', ~]",
        "{a: 1, b: [c], c: {d: e}}",
        "['a::b', ':', '/x:/y:ro,z', '~/a:/b']",
        "{replicas: -1, resources: {limits: {memory: 1q}}}",
        "{test: 'a \"', interval: 1x}",
        "{soft: a, hard: []}",
        "'${A:-b}'",
        "'$$'",
        "[{target: 99999999999}]",
        "{nofile: 1.5}",
        "[{source: a, mode: -1}]",
        "'80/xyz'",
        "{frontend: {aliases: 1}}",
    ];

    fn service() -> impl Strategy<Value = String> {
        prop::collection::vec((0..KEYS.len(), 0..VALUES.len()), 0..6).prop_map(|kv| {
            let mut seen = std::collections::BTreeSet::new();
            kv.into_iter()
                .filter(|(k, _)| seen.insert(*k))
                .map(|(k, v)| format!("    {}: {}\n", KEYS[k], VALUES[v]))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn load_documents_never_panics(a in service(), b in service(), top in 0..VALUES.len()) {
            let text = format!("services:\n  a:\n{a}  b:\n{b}networks:\n  n: {}\n", VALUES[top]);
            let _ = load_documents(&docs(&text), Path::new("/w"), &Env::new());
        }
    }
}

#[test]
fn five_hundred_services_load_quickly() {
    let mut text = String::from("version: '3.9'\nservices:\n");
    for i in 0..500 {
        text.push_str(&format!(
            "  s{i}:\n    image: app:{i}\n    command: run --id {i}\n    environment: [A=1, B=2]\n    ports: ['{p}:80']\n    volumes: ['data{i}:/data', './c:/c:ro']\n    networks: [front]\n    deploy:\n      replicas: 2\n      resources: {{limits: {{memory: 50M}}}}\n      update_config: {{delay: 10s}}\n    healthcheck: {{test: curl -f localhost, interval: 30s}}\n",
            p = 10000 + i
        ));
    }
    text.push_str("networks:\n  front: {}\n");
    let start = std::time::Instant::now();
    let l =
        load_documents(&docs(&text), Path::new("/w"), &Env::new()).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    let took = start.elapsed();
    eprintln!("500 services loaded in {took:?}");
    assert_eq!(l.stack.services.len(), 500);
    // Generous bound for unoptimised test builds on a shared machine; release is far faster.
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
}

/// Differential test: random stack files built from fragments get the same verdict and the same
/// normalised output from berth and from the real `docker stack config`.
#[test]
fn random_stacks_match_docker_stack_config() {
    const SVC: &[(&str, &[&str])] = &[
        ("image", &["nginx", "'x:${TAG:-1}'"]),
        ("command", &["echo hi", "[a, b]", "'sh -c \"x y\"'", "''"]),
        ("entrypoint", &["/init", "[/a, --b]"]),
        ("environment", &["[A=1, B, C=]", "{A: 1, B: null, C: ''}", "{X: '${HOME}'}", "[A=1=2]"]),
        ("env_file", &["e1.env", "[e1.env, e2.env]"]),
        (
            "ports",
            &[
                "[80]",
                "['8080:80']",
                "['1-2:3-4/udp']",
                "[{target: 80, published: 8080, mode: host}]",
                "['127.0.0.1:9:9']",
                "['9-10:11']",
            ],
        ),
        (
            "volumes",
            &[
                "['/a:/b:ro']",
                "['v:/d:nocopy']",
                "['./x:/y:z']",
                "['~/c:/d']",
                "[{type: bind, source: ., target: /z}]",
                "['/anon']",
            ],
        ),
        ("networks", &["[n1]", "{n1: {aliases: [a]}}", "{n1: null}"]),
        ("secrets", &["[s1]", "[{source: s1, target: t, mode: 0444}]"]),
        ("configs", &["[c1]", "[{source: c1, target: /c}]"]),
        (
            "deploy",
            &[
                "{replicas: 2}",
                "{mode: global}",
                "{resources: {limits: {cpus: '0.1', memory: 10m}}}",
                "{restart_policy: {condition: on-failure, delay: 5s}}",
                "{update_config: {parallelism: 1, delay: 1m30s}}",
                "{labels: [a=b, c]}",
                "{}",
            ],
        ),
        (
            "healthcheck",
            &[
                "{test: [CMD, 'true'], interval: 5s}",
                "{test: 'true', retries: 0}",
                "{disable: true}",
                "{start_period: 0s}",
            ],
        ),
        ("labels", &["[a=b]", "{a: 1, b: null}", "[a]"]),
        ("extra_hosts", &["['a:1.2.3.4']", "{a: 1.2.3.4}", "['b=::1']", "['c:[::1]']"]),
        ("dns", &["8.8.8.8", "[1.1.1.1, 8.8.4.4]"]),
        ("ulimits", &["{nproc: 1}", "{nofile: {soft: 1, hard: 2}}"]),
        ("stop_grace_period", &["10s", "1m", "100ms"]),
        ("logging", &["{driver: syslog}", "{options: {a: 1}}"]),
        ("sysctls", &["[a.b=1]", "{a.b: 2}"]),
        ("x-foo", &["1", "{a: [1]}"]),
        ("credential_spec", &["{file: f}"]),
        ("init", &["true"]),
    ];
    const TOP: &[(&str, &[&str])] = &[
        (
            "networks",
            &[
                "{n1: {driver: overlay}}",
                "{n1: {external: true}}",
                "{n1: {external: {name: real}}}",
                "{n1: null}",
                "{n1: {ipam: {config: [{subnet: 10.0.0.0/24}]}, x-a: 1}}",
            ],
        ),
        (
            "volumes",
            &[
                "{v: {}}",
                "{v: {external: true}}",
                "{v: {driver: local, driver_opts: {a: 1}}}",
                "{v: {name: real, external: true, x-b: 2}}",
            ],
        ),
        ("secrets", &["{s1: {file: ./s.txt}}", "{s1: {external: true}}", "{s1: {external: {name: r}}}"]),
        ("configs", &["{c1: {file: ./c.txt}}", "{c1: {external: true, name: cc}}"]),
    ];
    const VERSIONS: &[&str] = &["", "version: '3.13'\n", "version: '3.8'\n", "version: '3.2'\n", "version: '3'\n"];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "e1.env", "A=e1\nE1=1\n#c\nBARE\n");
    write(dir.path(), "e2.env", "A=e2\nE2=\n");
    let env = [("HOME", "/home/t"), ("BARE", "from_env"), ("E2", "e2env"), ("TAG", "9")];
    let mut failures = Vec::new();
    let mut accepted = 0;
    for i in 0..60 {
        let mut text = format!("{}services:\n  a:\n", VERSIONS[rnd(VERSIONS.len())]);
        let mut keys: Vec<usize> = (0..SVC.len()).collect();
        for _ in 0..(1 + rnd(6)) {
            let (k, vals) = SVC[keys.remove(rnd(keys.len()))];
            text.push_str(&format!("    {k}: {}\n", vals[rnd(vals.len())]));
        }
        if !text.contains("    image:") {
            text.push_str("    image: img\n");
        }
        text.push_str("  other:\n    image: o\n");
        for (k, vals) in TOP {
            if rnd(2) == 0 {
                text.push_str(&format!("{k}: {}\n", vals[rnd(vals.len())]));
            }
        }
        let f = write(dir.path(), &format!("c{i}.yml"), &text);
        let want = docker_stack_config(&f, &env);
        let ours = berth_config(&f, &env);
        match (&want, &ours) {
            (Some(w), Ok(o)) if w == o => accepted += 1,
            (None, Err(_)) => {}
            _ => failures.push(format!("{text}docker: {want:?}\nberth: {ours:?}")),
        }
    }
    assert!(failures.is_empty(), "{} of 60 differ:\n{}", failures.len(), failures.join("\n---\n"));
    assert!(accepted >= 20, "only {accepted} of 60 random files were accepted by both");
}

/// Regression: `x-berth.edge.http_port: ${BLOG_HTTP_PORT:-80}` was refused ("expected a whole
/// number, found a string") because interpolation yields strings.
#[test]
fn interpolated_x_berth_numbers_and_booleans_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "compose.yaml",
        "services:\n  web:\n    image: app\nx-berth:\n  edge: {http_port: \"${HTTP_PORT:-8080}\", https_port: \"${HTTPS_PORT:-8443}\", hsts: \"${HSTS:-false}\"}\n",
    );
    let mut o = opts(&[f]);
    o.environ = vec![("HTTPS_PORT".into(), "9443".into())];
    let l = must_load(&o);
    let xb = berth_spec::xberth::XBerth::from_json(&l.stack.extras["x-berth"]);
    assert_eq!((xb.edge.http_port, xb.edge.https_port, xb.edge.hsts), (8080, 9443, false));
}
