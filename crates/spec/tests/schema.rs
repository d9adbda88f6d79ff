//! Schema validation against docker/cli: the Rust description equals docker/cli's JSON Schemas,
//! the schema test cases of docker/cli, the real-world suites (verdicts of the real
//! `docker stack config`), and the messages berth gives.

use berth_spec::schema::{Version, json_schema, swarm_checks, validate, version_of};
use berth_spec::{Diagnostic, Node, Pos, yaml};
use serde_json::{Map, Value as J};
use std::path::{Path, PathBuf};

fn suites() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/compose-suites")).to_path_buf()
}

fn schema_file(v: Version) -> PathBuf {
    suites().join(format!("docker-cli/cli/compose/schema/data/config_schema_v{v}.json"))
}

// ---------------------------------------------------------------------------------------------
// The description equals docker/cli's schema files.

/// Expands `$ref`s and drops what does not affect validation: `id`, `$schema`, `default`,
/// `definitions` (after expansion), `additionalProperties: true` (= absent), `uniqueItems` on a
/// node that cannot be an array (no-op in draft-04), and type lists are sorted.
fn normalize(node: &J, root: &J) -> J {
    match node {
        J::Object(m) => {
            if let Some(J::String(r)) = m.get("$ref") {
                let mut target = root;
                for part in r.trim_start_matches("#/").split('/') {
                    target = &target[part];
                }
                return normalize(target, root);
            }
            let mut out = Map::new();
            for (k, v) in m {
                match k.as_str() {
                    "id" | "$schema" | "default" | "definitions" => {}
                    "additionalProperties" if *v == J::Bool(true) => {}
                    "uniqueItems" if !may_be_array(m) => {}
                    "properties" | "patternProperties" => {
                        let props = v.as_object().unwrap().iter().map(|(pk, pv)| (pk.clone(), normalize(pv, root)));
                        out.insert(k.clone(), J::Object(props.collect()));
                    }
                    "type" => out.insert(k.clone(), sorted_types(v)).map_or((), |_| ()),
                    _ => out.insert(k.clone(), normalize(v, root)).map_or((), |_| ()),
                }
            }
            J::Object(out)
        }
        J::Array(a) => J::Array(a.iter().map(|x| normalize(x, root)).collect()),
        other => other.clone(),
    }
}

fn may_be_array(m: &Map<String, J>) -> bool {
    match m.get("type") {
        Some(J::String(t)) => t == "array",
        Some(J::Array(ts)) => ts.iter().any(|t| t == "array"),
        _ => false,
    }
}

fn sorted_types(t: &J) -> J {
    match t {
        J::Array(ts) => {
            let mut v: Vec<String> = ts.iter().map(|x| x.as_str().unwrap().to_string()).collect();
            v.sort();
            if v.len() == 1 { J::String(v.remove(0)) } else { J::Array(v.into_iter().map(J::String).collect()) }
        }
        other => other.clone(),
    }
}

/// Every difference between two normalised schemas, as `path: what`.
fn diff(path: &str, real: &J, ours: &J, out: &mut Vec<String>) {
    match (real, ours) {
        (J::Object(a), J::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}/{k}");
                match b.get(k) {
                    Some(vb) => diff(&p, va, vb, out),
                    None => out.push(format!("{p}: missing in berth (docker/cli has {va})")),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}/{k}: berth has it, docker/cli does not ({})", b[k]));
            }
        }
        (J::Array(a), J::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}/{i}"), x, y, out);
            }
        }
        _ if real == ours => {}
        _ => out.push(format!("{path}: docker/cli has {real}, berth has {ours}")),
    }
}

#[test]
fn rust_description_equals_docker_cli_schemas_for_every_version() {
    let mut problems = Vec::new();
    for v in Version::all() {
        let text = std::fs::read_to_string(schema_file(v)).expect("schema file");
        let real: J = serde_json::from_str(&text).unwrap();
        let real = normalize(&real, &real);
        let ours = normalize(&json_schema(v), &J::Null);
        let mut d = Vec::new();
        diff("", &real, &ours, &mut d);
        problems.extend(d.into_iter().map(|p| format!("{v}: {p}")));
    }
    assert!(problems.is_empty(), "berth's description differs from docker/cli's schemas:\n{}", problems.join("\n"));
}

#[test]
fn every_schema_file_version_is_supported_and_latest_is_3_13() {
    let dir = suites().join("docker-cli/cli/compose/schema/data");
    let mut found: Vec<Version> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let v = name.strip_prefix("config_schema_v")?.strip_suffix(".json")?.to_string();
            Some(Version::parse(&v).unwrap_or_else(|| panic!("berth does not know version {v}")))
        })
        .collect();
    found.sort();
    assert_eq!(found, Version::all().collect::<Vec<_>>());
    assert_eq!(Version::LATEST.to_string(), "3.13");
}

// ---------------------------------------------------------------------------------------------
// docker/cli's schema_test.go cases.

fn node_from_json(j: &J) -> Node {
    Node::from_json(j, Pos { file: 0, line: 1, col: 1 })
}

/// docker/cli's `schema.Validate(config, version)`: the version argument names the schema.
fn validate_as_docker(doc: &Node, schema_version: &str) -> Result<(), Vec<Diagnostic>> {
    let probe = if schema_version.is_empty() {
        node_from_json(&serde_json::json!({}))
    } else {
        node_from_json(&serde_json::json!({ "version": schema_version }))
    };
    let v = version_of(&probe).map_err(|d| vec![d])?;
    let errs = validate(doc, v);
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// The key, property or format docker/cli's error names, as berth should mention it.
fn what_error_mentions(error_contains: &str) -> String {
    if let Some(rest) = error_contains.split("Additional property ").nth(1) {
        return format!("`{}`", rest.split(' ').next().unwrap());
    }
    if let Some(rest) = error_contains.split("unsupported Compose file version: ").nth(1) {
        return format!("`{rest}`");
    }
    if error_contains.contains("Does not match format 'ports'") {
        return "port".into();
    }
    panic!("unexpected error_contains {error_contains}");
}

#[test]
fn docker_cli_schema_cases_get_the_same_verdict() {
    let text = std::fs::read_to_string(suites().join("docker-cli/derived/schema-cases.json")).unwrap();
    let cases: J = serde_json::from_str(&text).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 52);
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let doc = node_from_json(&case["document"]);
        let sv = case["schema_version"].as_str().unwrap();
        let result = validate_as_docker(&doc, sv);
        let valid = case["valid"].as_bool().unwrap();
        match (valid, result) {
            (true, Ok(())) => {}
            (true, Err(e)) => failures.push(format!("case {i} ({}, {sv}): expected valid, got {e:?}", case["test"])),
            (false, Ok(())) => failures.push(format!("case {i} ({}, {sv}): expected invalid", case["test"])),
            (false, Err(errs)) => {
                let want = what_error_mentions(case["error_contains"].as_str().unwrap());
                if !errs.iter().any(|d| d.message.contains(&want)) {
                    failures.push(format!("case {i}: no diagnostic mentions {want}: {errs:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Real-world files vs the real `docker stack config`.

fn compose_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["awesome-compose", "example-voting-app"] {
        collect(&suites().join(dir), &mut files);
    }
    files.sort();
    files
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let is_compose =
                (name.starts_with("compose") || name.starts_with("docker-compose") || name.starts_with("docker-stack"))
                    && (name.ends_with(".yml") || name.ends_with(".yaml"));
            if is_compose {
                out.push(path);
            }
        }
    }
}

/// berth's verdict as far as `docker stack config` goes up to schema validation: version,
/// forbidden keys, schema. (These files use `${VAR}` only inside strings, so validating the
/// uninterpolated tree gives the same verdict as validating the interpolated one.)
fn berth_rejects(path: &Path) -> Result<(), Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = yaml::parse(&text, 0).map_err(|d| vec![d])?;
    let v = version_of(&doc).map_err(|d| vec![d])?;
    let forbidden: Vec<_> = swarm_checks(&doc).into_iter().filter(Diagnostic::is_error).collect();
    if !forbidden.is_empty() {
        return Err(forbidden);
    }
    let errs = validate(&doc, v);
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// `Some(true)` when docker rejects the file at the schema stage, `Some(false)` when it accepts it
/// or rejects it later (decoding, missing env_file: not schema questions), `None` without docker.
fn docker_rejects_at_schema(path: &Path) -> Option<(bool, String)> {
    let out = std::process::Command::new("docker")
        .args(["stack", "config", "-c"])
        .arg(path.file_name().unwrap())
        .current_dir(path.parent().unwrap())
        .env_remove("DOCKER_HOST")
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if out.status.success() {
        return Some((false, stderr));
    }
    let schema_error = stderr.contains("Additional property")
        || stderr.contains(" must be a")
        || stderr.contains("Does not match format")
        || stderr.contains("unsupported Compose file version")
        || stderr.contains("forbidden properties")
        || stderr.contains("is required")
        || stderr.contains("must be unique")
        || stderr.contains("must be one of")
        || stderr.contains("greater than or equal")
        || stderr.contains("Must validate");
    // Anything else (e.g. "decoding failed" for plex's `${PLEX_MEDIA_PATH}:/media/` with the variable
    // unset) happens after schema validation: berth's schema verdict must then be "accept".
    Some((schema_error, stderr))
}

#[test]
fn real_world_files_get_the_same_verdict_as_docker_stack_config() {
    let files = compose_files();
    assert!(files.len() >= 40, "found only {} files", files.len());
    let mut rejected = 0;
    let mut failures = Vec::new();
    for path in &files {
        let ours = berth_rejects(path);
        let Some((docker_rejects, stderr)) = docker_rejects_at_schema(path) else {
            eprintln!("docker CLI not available: skipping the oracle comparison");
            return;
        };
        if docker_rejects {
            rejected += 1;
        }
        match (docker_rejects, &ours) {
            (true, Err(_)) | (false, Ok(())) => {}
            (true, Ok(())) => {
                failures.push(format!("{}: docker rejects ({}) but berth accepts", path.display(), stderr.trim()))
            }
            (false, Err(e)) => failures.push(format!("{}: docker accepts but berth rejects: {e:?}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(rejected, 11, "MANIFEST.md: 11 real-world files must be rejected (10 by the schema, 1 as version 2)");
}

// ---------------------------------------------------------------------------------------------
// Messages, positions, hints.

fn check(text: &str) -> Vec<Diagnostic> {
    let doc = yaml::parse(text, 0).unwrap();
    let v = version_of(&doc).unwrap();
    validate(&doc, v)
}

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| {
            let pos = d.pos.unwrap();
            format!("{}:{}: {}: {} ({})", pos.line, pos.col, d.path, d.message, d.hint.as_deref().unwrap_or("-"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn unknown_key_points_at_the_key_and_suggests_the_close_one() {
    let d = check("version: \"3.8\"\nservices:\n  web:\n    image: nginx\n    deploy:\n      replica: 3\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].code, "schema.unknown-key");
    assert_eq!(d[0].path, "services.web.deploy.replica");
    assert_eq!(d[0].message, "unknown key `replica`");
    assert_eq!(d[0].hint.as_deref(), Some("did you mean `replicas`?"));
    let pos = d[0].pos.unwrap();
    assert_eq!((pos.line, pos.col), (6, 7));
}

#[test]
fn type_errors_point_at_the_value() {
    let d = check("services:\n  web:\n    image: nginx\n    deploy:\n      replicas: \"3\"\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].code, "schema.type");
    assert_eq!(d[0].message, "expected an integer, found a string");
    assert_eq!(d[0].hint.as_deref(), Some("remove the quotes: `3`"));
    let pos = d[0].pos.unwrap();
    assert_eq!((pos.line, pos.col), (5, 17));
}

#[test]
fn keys_of_later_versions_say_which_version_they_need() {
    let d = check("version: \"3.6\"\nservices:\n  web:\n    image: nginx\n    init: true\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].hint.as_deref(), Some("needs `version: \"3.7\"` or later (this file is 3.6)"));
    assert!(check("version: \"3.7\"\nservices:\n  web:\n    image: nginx\n    init: true\n").is_empty());
}

#[test]
fn compose_only_keys_say_so() {
    let d = check("name: shop\nservices:\n  web:\n    image: nginx\n    platform: linux/amd64\n");
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(
        d[0].hint
            .as_deref()
            .unwrap()
            .starts_with("`name` is a `docker compose` key that `docker stack deploy` does not accept")
    );
    assert!(d[1].hint.as_deref().unwrap().contains("node.platform.arch"));
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let d = check(
        "services:\n  a:\n    image: x\n    ports: [\"80:80/http\"]\n    stop_grace_period: 10x\n  b:\n    image: 3\n    restrat: always\n",
    );
    let codes: Vec<_> = d.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["schema.format", "schema.format", "schema.type", "schema.unknown-key"], "{d:?}");
}

#[test]
fn version_is_read_like_docker_cli() {
    let v = |t: &str| version_of(&yaml::parse(t, 0).unwrap());
    assert_eq!(v("services: {}\n").unwrap(), Version::LATEST);
    assert_eq!(v("version: \"3\"\n").unwrap(), Version::LATEST);
    assert_eq!(v("version: \"3.4\"\n").unwrap().to_string(), "3.4");
    assert_eq!(v("version: 3.10\n").unwrap().to_string(), "3.1", "unquoted 3.10 is the number 3.1");
    let e = v("version: \"2.1\"\n").unwrap_err();
    assert_eq!(e.code, "schema.version");
    assert!(e.message.contains("`2.1`") && e.hint.unwrap().contains("3.0 to 3.13"));
    assert!(v("version: \"3.14\"\n").is_err());
    assert!(v("version: \"4\"\n").is_err());
    // A number version is accepted by version_of but is a type error for the schema.
    let d = check("version: 3.8\nservices: {}\n");
    assert_eq!(d[0].code, "schema.type");
    assert!(d[0].hint.as_deref().unwrap().contains("version: \"3.8\""));
}

#[test]
fn swarm_checks_report_forbidden_and_ignored_but_not_build() {
    let doc =
        yaml::parse("services:\n  a:\n    image: x\n    mem_limit: 1g\n    restart: always\n  b:\n    build: .\n", 0)
            .unwrap();
    let d = swarm_checks(&doc);
    let codes: Vec<_> = d.iter().map(|d| (d.code, d.is_error())).collect();
    assert_eq!(codes, [("swarm.forbidden", true), ("swarm.ignored", false)], "{d:?}");
    assert!(d[0].hint.as_deref().unwrap().starts_with("Set resource limits using deploy.resources"));
    assert!(d[1].hint.as_deref().unwrap().contains("deploy.restart_policy"));
}

#[test]
fn snapshot_compose_file_fed_to_stack_deploy() {
    let d = check(
        r#"name: shop
services:
  backend:
    build: backend
    platform: linux/amd64
    depends_on:
      db:
        condition: service_healthy
    environment:
      DEBUG: true
  db:
    image: mariadb
    restart: always
    healthcheck:
      test: ["CMD", "healthcheck.sh"]
      interval: 3
"#,
    );
    insta::assert_snapshot!(render(&d));
}

#[test]
fn snapshot_stack_file_with_typos() {
    let d = check(
        r#"version: "3.8"
services:
  web:
    imgae: nginx
    deploy:
      replica: 2
      update_config:
        order: start-frist
      resources:
        limits:
          cpus: 0.5
          memory: 512M
    ports:
      - "80:80"
      - "80:80"
      - "8080:80/http"
"#,
    );
    insta::assert_snapshot!(render(&d));
}

#[test]
fn snapshot_old_version_using_new_keys() {
    let d = check(
        r#"version: "3.2"
services:
  api:
    image: api
    init: true
    configs: [app]
    x-owner: team
    deploy:
      placement:
        max_replicas_per_node: 1
x-common: &common
  a: 1
configs:
  app:
    file: ./app.conf
"#,
    );
    insta::assert_snapshot!(render(&d));
}

#[test]
fn snapshot_wrong_shapes() {
    let d = check(
        r#"services:
  my web:
    image: x
  app:
    image: x
    ports: "80:80"
    volumes:
      - type: bind
        source: .
        target: /src
        readonly: true
      - source: data
        target: /data
    healthcheck:
    networks:
      front:
        alias: [a]
    ulimits:
      nofile:
        soft: 1
volumes:
  data:
    external: yes
"#,
    );
    insta::assert_snapshot!(render(&d));
}

#[test]
fn validating_500_services_is_fast() {
    let mut text = String::from("version: \"3.9\"\nservices:\n");
    for i in 0..500 {
        text.push_str(&format!(
            "  svc{i}:\n    image: registry/app{i}:1.0\n    environment:\n      A: \"1\"\n      B: two\n    ports:\n      - \"{}:80\"\n    deploy:\n      replicas: 2\n      resources:\n        limits:\n          cpus: \"0.5\"\n          memory: 256M\n      restart_policy:\n        condition: on-failure\n        delay: 5s\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 10s\n    networks: [front, back]\n    labels:\n      - a=b\n",
            10000 + i
        ));
    }
    let doc = yaml::parse(&text, 0).unwrap();
    let start = std::time::Instant::now();
    let d = validate(&doc, version_of(&doc).unwrap());
    let took = start.elapsed();
    eprintln!("validate(500 services): {took:?}");
    assert!(d.is_empty(), "{d:?}");
    // Debug build; the release budget for the whole pipeline is 7 ms.
    assert!(took.as_millis() < 50, "validation of 500 services took {took:?}");
}

// ---------------------------------------------------------------------------------------------
// Edge cases: berth's verdict vs the real `docker stack config` on small documents.

const EDGE_CASES: &[&str] = &[
    "services:\n  a:\n    image: x\n    ports: [70000]\n",
    "services:\n  a:\n    image: x\n    ports: [0.5]\n",
    "services:\n  a:\n    image: x\n    ports: [\"\"]\n",
    "services:\n  a:\n    image: x\n    ports: [\"1.2.3.4::80\", \"[::1]:8080-8081:80\"]\n",
    "services:\n  a:\n    image: x\n    ports: [\"a:b:80:80\"]\n",
    "services:\n  a:\n    image: x\n    ports: [\"80/sctp\", \"81/TCP\", \"82/\"]\n",
    "services:\n  a:\n    image: x\n    ports: [\"8000-8010:80-81\"]\n",
    "services:\n  a:\n    image: x\n    ports: [true]\n",
    "services:\n  a:\n    image: x\n    ports: [{target: 80, published: 8080, extra: 1}]\n",
    "version: \"3.1\"\nservices:\n  a:\n    image: x\n    ports: [{target: 80}]\n",
    "services:\n  a:\n    image: x\n    stop_grace_period: 1m30s\n",
    "services:\n  a:\n    image: x\n    stop_grace_period: 10\n",
    "services:\n  a:\n    image: x\n    stop_grace_period: \"10\"\n",
    "services:\n  a:\n    image: x\n    healthcheck:\n      interval: 1.5h\n      retries: 2.5\n",
    "version: \"3.3\"\nservices:\n  a:\n    image: x\n    healthcheck:\n      interval: nonsense\n",
    "version: \"3.4\"\nservices:\n  a:\n    image: x\n    healthcheck:\n      interval: nonsense\n",
    "services:\n  a:\n    image: x\n    deploy:\n",
    "services:\n  a:\n    image: x\n    pid: null\n",
    "services:\n  a:\n    image: x\n    healthcheck:\n",
    "services:\n  a:\n    image: x\n    networks:\n      front:\n      back: {aliases: [b]}\n",
    "services:\n  a:\n    image: x\n    networks: [a, a]\n",
    "services:\n  a:\n    image: x\n    environment:\n      A: true\n",
    "services:\n  a:\n    image: x\n    environment:\n      A: 1.5\n      B:\n",
    "services:\n  a:\n    image: x\n    environment: [A=1, A=1]\n",
    "services:\n  a:\n    image: x\n    volumes:\n      - type: tmpfs\n        target: /t\n        tmpfs: {size: -1}\n",
    "services:\n  a:\n    image: x\n    volumes:\n      - type: bind\n        source: /a\n        target: /b\n        bind: {anything: 1}\n",
    "services:\n  a:\n    image: x\n    ulimits:\n      nofile: 10\n      NPROC: {soft: 1}\n",
    "services:\n  a:\n    image: x\n    ulimits:\n      nofile: {soft: 1}\n",
    "services:\n  a:\n    image: x\n    secrets: [{source: s, whatever: 1}]\nsecrets:\n  s:\n    external: {name: s, other: 1}\n",
    "services:\n  a:\n    image: x\nnetworks:\n  n:\n    external: {name: s, other: 1}\n",
    "services:\n  a:\n    image: x\nnetworks:\n  \"bad name\":\n    whatever: 1\n",
    "services:\n  a:\n    image: x\nvolumes:\n  \"bad name\": {}\n",
    "services:\n  \"bad name\":\n    image: x\n",
    "services:\n  a:\n    image: x\nvolumes:\n  v:\n    x-cluster-spec: {group: g, anything: 1}\n",
    "version: \"3.9\"\nservices:\n  a:\n    image: x\nvolumes:\n  v:\n    x-cluster-spec: {group: 1}\n",
    "version: \"3.10\"\nservices:\n  a:\n    image: x\nvolumes:\n  v:\n    x-cluster-spec: {group: 1}\n",
    "version: \"3.3\"\nx-a: 1\nservices:\n  a:\n    image: x\n",
    "version: \"3.6\"\nservices:\n  a:\n    image: x\n    x-a: 1\n",
    "version: 3\nservices:\n  a:\n    image: x\n",
    "version: \"3\"\nservices:\n  a:\n    image: x\n    oom_score_adj: 1\n",
    "version: 3.10\nservices:\n  a:\n    image: x\n",
    "version: \"3.00\"\nservices:\n  a:\n    image: x\n",
    "version: \"\"\nservices:\n  a:\n    image: x\n",
    "services:\n  a:\n    image: x\n    cpu_shares: 2\n",
    "services:\n  a:\n    image: x\n    build: {context: ., ssh: [default]}\n",
    "services:\n  a:\n    image: x\n    deploy:\n      update_config: {order: start-frist}\n",
    "services:\n  a:\n    image: x\n    deploy:\n      resources: {limits: {cpus: 0.5}}\n",
    "services:\n  a:\n    image: x\n    logging:\n      options: {max-size: 10m, max-file: 3, x: null}\n",
    "services:\n  a:\n    image: x\n    command: [a, 1]\n",
    "services:\n  a:\n    image: x\n    expose: [\"abc\", 80]\n",
    "services:\n  a:\n    image: x\n    dns: [1.1.1.1, 1.1.1.1]\n",
    "services:\n  a:\n    image: x\n    extra_hosts: {\"\": a}\n",
    "services: {}\nconfigs:\n  c: {file: ./c, template_driver: golang}\n",
    "services:\n  a: null\n",
];

#[test]
fn edge_cases_get_the_same_verdict_as_docker_stack_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, text) in EDGE_CASES.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.yml"));
        std::fs::write(&path, text).unwrap();
        let Some((docker_rejects, stderr)) = docker_rejects_at_schema(&path) else {
            eprintln!("docker CLI not available: skipping the oracle comparison");
            return;
        };
        let ours = berth_rejects(&path);
        match (docker_rejects, &ours) {
            (true, Err(_)) | (false, Ok(())) => {}
            (true, Ok(())) => {
                failures.push(format!("case {i} {text:?}: docker rejects ({}) but berth accepts", stderr.trim()))
            }
            (false, Err(e)) => failures.push(format!("case {i} {text:?}: docker accepts but berth rejects: {e:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
