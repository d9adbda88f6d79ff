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
    let l = must_load(&opts(&[file.clone()]));
    let s = &l.stack;
    assert_eq!(s.networks["network1"].name, "named-network");
    assert_eq!(s.networks["network2"].name, "");
    assert_eq!(s.volumes["volume1"].name, "named-volume");
    assert_eq!(s.secrets["secret1"].name, "named-secret");
    let dir = std::path::absolute(file.parent().unwrap()).unwrap();
    assert_eq!(s.secrets["secret2"].file, dir.join("data").to_string_lossy());
    assert_eq!(s.configs["config1"].file, dir.join("data").to_string_lossy());
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
    let mut o = opts(&[f.clone()]);
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
    let l = load_documents(&docs("services:\n  a:\n    image: x\n    ports: ['127.0.0.1:80:80']\n"), Path::new("/w"), &Env::new())
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
        // Files docker rejects (schema, missing files) are other tests' business.
        let Some(want) = docker_stack_config(f, &env) else { continue };
        compared += 1;
        match berth_config(f, &env) {
            Ok(ours) if ours == want => {}
            Ok(ours) => failures.push(format!("{}: output differs\nberth:\n{ours:#}\ndocker:\n{want:#}", f.display())),
            Err(e) => failures.push(format!("{}: berth rejected it: {e}", f.display())),
        }
    }
    assert!(compared >= 20, "only {compared} files compared");
    assert!(failures.is_empty(), "{} of {compared} differ:\n{}", failures.len(), failures.join("\n\n"));
}
