//! Plan tests: desired states built here, observed states from real `docker ... inspect` output
//! captured from a dockerd 20.10 in swarm mode (`tests/data/*.json`, see `tests/data/README.md`).

use berth_plan::desired::{LABEL_NAMESPACE, LABEL_OWNER};
use berth_plan::{Action, Desired, Observed, Plan, PlanOptions, plan, render_text};
use bollard_stubs::models::{
    Config, ConfigSpec, Network, NetworkCreateRequest, Secret, SecretSpec, Service, ServiceSpec, Volume,
    VolumeCreateRequest,
};
use serde_json::{Value, json};
use std::collections::HashMap;

const STACK: &str = "plantest-b";
const DB_PASS: &str = "s3cr3t-value-XYZ";
const DB_PASS_B64: &str = "czNjcjN0LXZhbHVlLVhZWg==";
const DB_PASS_NAME: &str = "plantest-b_db_pass_8c91b009";
const ROTATED_PASS: &str = "rotated-PASS-999";
const ROTATED_PASS_B64: &str = "cm90YXRlZC1QQVNTLTk5OQ==";
const ROTATED_PASS_NAME: &str = "plantest-b_db_pass_3b9fbd9a";
const TOKEN: &str = "tok-SECRET-42";
const TOKEN_B64: &str = "dG9rLVNFQ1JFVC00Mg==";
const TOKEN_NAME: &str = "plantest-b_worker_token_38b530c1";
const CONF_B64: &str = "bGlzdGVuIDgwODAK";
const CONF_NAME: &str = "plantest-b_app_conf_0083dacc";

fn data(file: &str) -> Value {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn stack_labels() -> HashMap<String, String> {
    HashMap::from([(LABEL_NAMESPACE.to_string(), STACK.to_string()), (LABEL_OWNER.to_string(), STACK.to_string())])
}

fn network(name: &str) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: name.into(),
        driver: Some("overlay".into()),
        scope: Some("swarm".into()),
        labels: Some(stack_labels()),
        ..Default::default()
    }
}

fn volume(name: &str) -> VolumeCreateRequest {
    VolumeCreateRequest {
        name: Some(name.into()),
        driver: Some("local".into()),
        labels: Some(stack_labels()),
        ..Default::default()
    }
}

fn secret(name: &str, b64: &str) -> SecretSpec {
    SecretSpec { name: Some(name.into()), labels: Some(stack_labels()), data: Some(b64.into()), ..Default::default() }
}

fn config(name: &str, b64: &str) -> ConfigSpec {
    ConfigSpec { name: Some(name.into()), labels: Some(stack_labels()), data: Some(b64.into()), ..Default::default() }
}

fn web(image: &str, env: &[&str], replicas: i64, db_pass: &str) -> ServiceSpec {
    serde_json::from_value(json!({
        "Name": "plantest-b_web",
        "Labels": {LABEL_NAMESPACE: STACK, LABEL_OWNER: STACK, "com.docker.stack.image": image},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Labels": {LABEL_NAMESPACE: STACK},
                "Env": env,
                "Mounts": [{"Type": "volume", "Source": "plantest-b_data", "Target": "/data",
                    "VolumeOptions": {"Labels": {LABEL_NAMESPACE: STACK}}}],
                "Secrets": [{"SecretName": db_pass, "File": {"Name": "db_pass", "UID": "0", "GID": "0", "Mode": 292}}],
                "Configs": [{"ConfigName": CONF_NAME, "File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0",
                    "Mode": 292}}]
            },
            "Networks": [{"Target": "plantest-b_default", "Aliases": ["web"]}]
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
        "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8091,
            "PublishMode": "ingress"}]}
    }))
    .unwrap()
}

fn worker() -> ServiceSpec {
    serde_json::from_value(json!({
        "Name": "plantest-b_worker",
        "Labels": {LABEL_NAMESPACE: STACK, LABEL_OWNER: STACK, "com.docker.stack.image": "busybox:1.36"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "busybox:1.36",
                "Args": ["sleep", "3600"],
                "Labels": {LABEL_NAMESPACE: STACK},
                "Secrets": [{"SecretName": TOKEN_NAME, "File": {"Name": "token", "UID": "0", "GID": "0", "Mode": 292}}]
            },
            "Networks": [{"Target": "plantest-b_default", "Aliases": ["worker"]}]
        },
        "Mode": {"Global": {}}
    }))
    .unwrap()
}

/// The stack as captured in `tests/data/berth_*.json`.
fn desired() -> Desired {
    let mut d = Desired { stack: STACK.into(), ..Default::default() };
    d.networks.insert("plantest-b_default".into(), network("plantest-b_default"));
    d.volumes.insert("plantest-b_data".into(), volume("plantest-b_data"));
    d.secrets.insert(DB_PASS_NAME.into(), secret(DB_PASS_NAME, DB_PASS_B64));
    d.secrets.insert(TOKEN_NAME.into(), secret(TOKEN_NAME, TOKEN_B64));
    d.configs.insert(CONF_NAME.into(), config(CONF_NAME, CONF_B64));
    d.services.insert("plantest-b_web".into(), web("nginx:1.25", &["B_VAR=two", "A_VAR=one"], 2, DB_PASS_NAME));
    d.services.insert("plantest-b_worker".into(), worker());
    d
}

/// Observed state from inspect-output fixtures with the given file prefixes.
fn observed(prefixes: &[&str]) -> Observed {
    let mut o = Observed::default();
    for p in prefixes {
        for s in list(&format!("{p}_services.json")) {
            let s: Service = serde_json::from_value(s).unwrap();
            o.services.insert(s.spec.as_ref().unwrap().name.clone().unwrap(), s);
        }
        for n in list(&format!("{p}_networks.json")) {
            let n: Network = serde_json::from_value(n).unwrap();
            o.networks.insert(n.name.clone().unwrap(), n);
        }
        for s in list(&format!("{p}_secrets.json")) {
            let s: Secret = serde_json::from_value(s).unwrap();
            o.secrets.insert(s.spec.as_ref().unwrap().name.clone().unwrap(), s);
        }
        for c in list(&format!("{p}_configs.json")) {
            let c: Config = serde_json::from_value(c).unwrap();
            o.configs.insert(c.spec.as_ref().unwrap().name.clone().unwrap(), c);
        }
        for v in list(&format!("{p}_volumes.json")) {
            let v: Volume = serde_json::from_value(v).unwrap();
            o.volumes.insert(v.name.clone(), v);
        }
    }
    o
}

fn list(file: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    if !std::path::Path::new(&path).exists() {
        return Vec::new();
    }
    match data(file) {
        Value::Array(a) => a,
        other => panic!("{file}: expected a list, got {other}"),
    }
}

fn kinds(p: &Plan) -> Vec<String> {
    p.actions.iter().map(|a| format!("{} {}", serde_json::to_value(a).unwrap()["action"], a.name())).collect()
}

fn snap(name: &str, p: &Plan) {
    insta::assert_snapshot!(format!("{name}_text"), render_text(p));
    insta::assert_json_snapshot!(format!("{name}_json"), p);
}

/// Writes the desired specs as Engine-API JSON for `tests/data/capture.sh` (run with --ignored).
#[test]
#[ignore]
fn dump_desired_for_capture() {
    let d = desired();
    let dir = std::path::Path::new("/tmp/plantest/desired");
    std::fs::create_dir_all(dir).unwrap();
    let w = |n: &str, v: Value| std::fs::write(dir.join(format!("{n}.json")), v.to_string()).unwrap();
    for (n, s) in &d.networks {
        w(&format!("network-{n}"), serde_json::to_value(s).unwrap());
    }
    for (n, s) in &d.volumes {
        w(&format!("volume-{n}"), serde_json::to_value(s).unwrap());
    }
    for (n, s) in &d.secrets {
        w(&format!("secret-{n}"), serde_json::to_value(s).unwrap());
    }
    for (n, s) in &d.configs {
        w(&format!("config-{n}"), serde_json::to_value(s).unwrap());
    }
    for (n, s) in &d.services {
        w(&format!("service-{n}"), serde_json::to_value(s).unwrap());
    }
}

fn opts() -> PlanOptions {
    PlanOptions::default()
}

fn web_of(d: &mut Desired) -> &mut ServiceSpec {
    d.services.get_mut("plantest-b_web").unwrap()
}

fn update_changes(p: &Plan) -> Vec<(String, Option<Value>, Option<Value>)> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::UpdateService { changes, .. } => Some(changes),
            _ => None,
        })
        .flatten()
        .map(|c| (c.path.clone(), c.old.clone(), c.new.clone()))
        .collect()
}

#[test]
fn empty_observed_creates_everything_in_dependency_order() {
    let p = plan(&desired(), &Observed::default(), &opts());
    assert_eq!(
        kinds(&p),
        [
            "\"create-network\" plantest-b_default",
            "\"create-volume\" plantest-b_data",
            "\"create-secret\" plantest-b_db_pass_8c91b009",
            "\"create-secret\" plantest-b_worker_token_38b530c1",
            "\"create-config\" plantest-b_app_conf_0083dacc",
            "\"create-service\" plantest-b_web",
            "\"create-service\" plantest-b_worker",
        ]
    );
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    snap("empty_observed", &p);
}

#[test]
fn identical_daemon_filled_state_plans_nothing() {
    let p = plan(&desired(), &observed(&["berth"]), &opts());
    assert!(p.is_empty(), "{}", render_text(&p));
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    snap("identical", &p);
}

#[test]
fn identical_with_foreign_and_other_stack_objects_plans_nothing() {
    let p = plan(&desired(), &observed(&["berth", "foreign", "stackdeploy"]), &opts());
    assert!(p.is_empty(), "{}", render_text(&p));
    assert!(p.notes.is_empty(), "{:?}", p.notes);
}

#[test]
fn image_change_is_one_update_with_one_change() {
    let mut d = desired();
    web_of(&mut d).task_template.as_mut().unwrap().container_spec.as_mut().unwrap().image = Some("nginx:1.26".into());
    let p = plan(&d, &observed(&["berth"]), &opts());
    assert_eq!(kinds(&p), ["\"update-service\" plantest-b_web"]);
    assert_eq!(
        update_changes(&p),
        [("TaskTemplate.ContainerSpec.Image".to_string(), Some(json!("nginx:1.25")), Some(json!("nginx:1.26")))]
    );
    match &p.actions[0] {
        Action::UpdateService { id, version, .. } => {
            assert_eq!(id, "93l6hwqlzkm0um02cffpnnx78");
            assert!(*version > 0);
        }
        other => panic!("{other:?}"),
    }
    snap("image_change", &p);
}

#[test]
fn pinned_digest_in_swarm_is_not_an_image_change() {
    let mut o = observed(&["berth"]);
    let svc = o.services.get_mut("plantest-b_web").unwrap();
    let cs = svc.spec.as_mut().unwrap().task_template.as_mut().unwrap().container_spec.as_mut().unwrap();
    cs.image = Some("nginx:1.25@sha256:0123456789abcdef".into());
    assert!(plan(&desired(), &o, &opts()).is_empty());
}

#[test]
fn env_added_is_one_change() {
    let mut d = desired();
    let cs = web_of(&mut d).task_template.as_mut().unwrap().container_spec.as_mut().unwrap();
    cs.env.as_mut().unwrap().push("C_VAR=three".into());
    let p = plan(&d, &observed(&["berth"]), &opts());
    assert_eq!(
        update_changes(&p),
        [("TaskTemplate.ContainerSpec.Env[2]".to_string(), None, Some(json!("C_VAR=three")))]
    );
    snap("env_added", &p);
}

#[test]
fn env_reordered_is_no_change() {
    let mut d = desired();
    let cs = web_of(&mut d).task_template.as_mut().unwrap().container_spec.as_mut().unwrap();
    cs.env = Some(vec!["A_VAR=one".into(), "B_VAR=two".into()]);
    assert!(plan(&d, &observed(&["berth"]), &opts()).is_empty());
}

#[test]
fn replicas_changed_is_one_change() {
    let mut d = desired();
    d.services.insert("plantest-b_web".into(), web("nginx:1.25", &["B_VAR=two", "A_VAR=one"], 5, DB_PASS_NAME));
    let p = plan(&d, &observed(&["berth"]), &opts());
    assert_eq!(update_changes(&p), [("Mode.Replicated.Replicas".to_string(), Some(json!(2)), Some(json!(5)))]);
    snap("replicas_changed", &p);
}

#[test]
fn force_update_counter_is_carried_over_not_diffed() {
    let mut o = observed(&["berth"]);
    let tt = o.services.get_mut("plantest-b_web").unwrap().spec.as_mut().unwrap().task_template.as_mut().unwrap();
    tt.force_update = Some(3);
    assert!(plan(&desired(), &o, &opts()).is_empty());
    let mut d = desired();
    d.services.insert("plantest-b_web".into(), web("nginx:1.25", &["B_VAR=two", "A_VAR=one"], 5, DB_PASS_NAME));
    match &plan(&d, &o, &opts()).actions[0] {
        Action::UpdateService { spec, .. } => assert_eq!(spec.task_template.as_ref().unwrap().force_update, Some(3)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn removed_service_then_its_unused_secret() {
    let mut d = desired();
    d.services.remove("plantest-b_worker");
    d.secrets.remove(TOKEN_NAME);
    let p = plan(&d, &observed(&["berth"]), &opts());
    assert_eq!(
        kinds(&p),
        ["\"remove-service\" plantest-b_worker", "\"remove-secret\" plantest-b_worker_token_38b530c1"]
    );
    snap("service_removed", &p);
}

#[test]
fn prune_off_removes_nothing() {
    let mut d = desired();
    d.services.remove("plantest-b_worker");
    d.secrets.remove(TOKEN_NAME);
    let p = plan(&d, &observed(&["berth"]), &PlanOptions { prune: false, ..opts() });
    assert!(p.is_empty(), "{}", render_text(&p));
}

#[test]
fn secret_still_used_by_a_remaining_service_is_kept() {
    let mut d = desired();
    d.secrets.remove(TOKEN_NAME); // the worker still refers to it
    let p = plan(&d, &observed(&["berth"]), &opts());
    assert!(p.is_empty(), "{}", render_text(&p));
    assert_eq!(p.notes.len(), 1);
    assert!(p.notes[0].contains("still used by plantest-b_worker"), "{:?}", p.notes);
}

#[test]
fn rotated_secret_created_then_service_updated_then_old_removed() {
    let mut d = desired();
    d.secrets.remove(DB_PASS_NAME);
    d.secrets.insert(ROTATED_PASS_NAME.into(), secret(ROTATED_PASS_NAME, ROTATED_PASS_B64));
    d.services.insert("plantest-b_web".into(), web("nginx:1.25", &["B_VAR=two", "A_VAR=one"], 2, ROTATED_PASS_NAME));
    let p = plan(&d, &observed(&["berth"]), &opts());
    assert_eq!(
        kinds(&p),
        [
            "\"create-secret\" plantest-b_db_pass_3b9fbd9a",
            "\"update-service\" plantest-b_web",
            "\"remove-secret\" plantest-b_db_pass_8c91b009",
        ]
    );
    assert_eq!(
        update_changes(&p),
        [(
            "TaskTemplate.ContainerSpec.Secrets[0].SecretName".to_string(),
            Some(json!(DB_PASS_NAME)),
            Some(json!(ROTATED_PASS_NAME))
        )]
    );
    snap("secret_rotated", &p);
}

#[test]
fn foreign_objects_are_never_removed_or_updated() {
    let mut d = desired();
    d.services.clear();
    d.secrets.clear();
    d.configs.clear();
    d.networks.clear();
    let o = observed(&["berth", "foreign", "stackdeploy"]);
    let p = plan(&d, &o, &opts());
    for a in &p.actions {
        assert!(a.name().starts_with("plantest-b_"), "touches {}", a.name());
    }
    assert_eq!(p.actions.len(), 2 + 2 + 1 + 1, "{}", render_text(&p));
    snap("foreign_untouched", &p);
}

#[test]
fn desired_name_taken_by_a_foreign_service_is_an_error_not_an_update() {
    let mut d = desired();
    let mut spec = worker();
    spec.name = Some("plantest-foreign".into());
    d.services.insert("plantest-foreign".into(), spec);
    let p = plan(&d, &observed(&["berth", "foreign"]), &opts());
    assert!(p.is_empty(), "{}", render_text(&p));
    assert!(p.has_errors());
    assert!(p.notes[0].contains("plantest-foreign"), "{:?}", p.notes);
}

/// The stack `plantest-demo`, deployed by `docker stack deploy` (fixtures `stackdeploy_*`), as berth
/// would want it with 3 web replicas.
fn stackdeploy_desired() -> Desired {
    let o = observed(&["stackdeploy"]);
    let mut d = Desired { stack: "plantest-demo".into(), ..Default::default() };
    for (name, svc) in &o.services {
        let mut spec = svc.spec.clone().unwrap();
        spec.labels.get_or_insert_default().insert(LABEL_OWNER.into(), "plantest-demo".into());
        d.services.insert(name.clone(), spec);
    }
    let web = d.services.get_mut("plantest-demo_web").unwrap();
    web.mode.as_mut().unwrap().replicated.as_mut().unwrap().replicas = Some(3);
    for (name, s) in &o.secrets {
        d.secrets.insert(name.clone(), SecretSpec { data: Some("eA==".into()), ..s.spec.clone().unwrap() });
    }
    for (name, c) in &o.configs {
        d.configs.insert(name.clone(), c.spec.clone().unwrap());
    }
    for name in o.networks.keys() {
        let mut n = network(name);
        n.labels = Some(HashMap::from([(LABEL_NAMESPACE.into(), "plantest-demo".into())]));
        d.networks.insert(name.clone(), n);
    }
    d
}

#[test]
fn stack_deploy_objects_get_a_note_not_an_update() {
    let p = plan(&stackdeploy_desired(), &observed(&["stackdeploy"]), &opts());
    assert!(p.is_empty(), "{}", render_text(&p));
    assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
    assert!(p.notes[0].contains("plantest-demo_web") && p.notes[0].contains("docker stack deploy"));
    snap("stack_deploy_note", &p);
}

#[test]
fn stack_deploy_objects_are_updated_when_adopted() {
    let p = plan(&stackdeploy_desired(), &observed(&["stackdeploy"]), &PlanOptions { adopt: true, ..opts() });
    assert_eq!(kinds(&p), ["\"update-service\" plantest-demo_web", "\"update-service\" plantest-demo_worker"]);
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    snap("stack_deploy_adopted", &p);
}

#[test]
fn stack_deploy_made_service_identical_but_for_owner_label_gets_no_note() {
    let mut d = stackdeploy_desired();
    let web = d.services.get_mut("plantest-demo_web").unwrap();
    web.mode.as_mut().unwrap().replicated.as_mut().unwrap().replicas = Some(2);
    let p = plan(&d, &observed(&["stackdeploy"]), &opts());
    assert!(p.is_empty() && p.notes.is_empty(), "{}", render_text(&p));
}

fn without_volume() -> Desired {
    let mut d = desired();
    d.volumes.clear();
    web_of(&mut d).task_template.as_mut().unwrap().container_spec.as_mut().unwrap().mounts = None;
    d
}

#[test]
fn unused_volume_is_kept_by_default() {
    let p = plan(&without_volume(), &observed(&["berth"]), &opts());
    assert_eq!(kinds(&p), ["\"update-service\" plantest-b_web"]);
    assert!(
        p.notes.iter().any(|n| n.contains("volume plantest-b_data") && n.contains("data is kept")),
        "{:?}",
        p.notes
    );
    snap("volume_kept", &p);
}

#[test]
fn unused_volume_is_removed_last_only_when_asked() {
    let p = plan(&without_volume(), &observed(&["berth"]), &PlanOptions { remove_volumes: true, ..opts() });
    assert_eq!(kinds(&p), ["\"update-service\" plantest-b_web", "\"remove-volume\" plantest-b_data"]);
    snap("volume_removed", &p);
}

#[test]
fn volume_in_use_is_not_removed_even_when_asked() {
    let mut d = desired();
    d.volumes.clear();
    let p = plan(&d, &observed(&["berth"]), &PlanOptions { remove_volumes: true, ..opts() });
    assert!(p.is_empty(), "{}", render_text(&p));
}

#[test]
fn changed_config_under_same_name_is_an_error_note() {
    let mut d = desired();
    d.configs.insert(CONF_NAME.into(), config(CONF_NAME, "b3RoZXIK"));
    let mut n = network("plantest-b_default");
    n.driver = Some("bridge".into());
    d.networks.insert("plantest-b_default".into(), n);
    let p = plan(&d, &observed(&["berth"]), &opts());
    assert!(p.is_empty(), "{}", render_text(&p));
    assert!(p.has_errors());
    assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
    snap("immutable_changed", &p);
}

#[test]
fn secret_values_never_appear_in_text_or_json() {
    let mut rotated = desired();
    rotated.secrets.insert(ROTATED_PASS_NAME.into(), secret(ROTATED_PASS_NAME, ROTATED_PASS_B64));
    let plans = [
        plan(&desired(), &Observed::default(), &opts()),
        plan(&rotated, &observed(&["berth"]), &opts()),
        plan(&rotated, &Observed::default(), &PlanOptions { adopt: true, remove_volumes: true, prune: true }),
    ];
    for p in &plans {
        assert!(p.actions.iter().any(|a| matches!(a, Action::CreateSecret { .. })));
        let text = render_text(p);
        let json = serde_json::to_string(p).unwrap();
        let pretty = serde_json::to_string_pretty(p).unwrap();
        for secret in [DB_PASS, DB_PASS_B64, TOKEN, TOKEN_B64, ROTATED_PASS, ROTATED_PASS_B64] {
            for out in [&text, &json, &pretty] {
                assert!(!out.contains(secret), "secret {secret:?} leaked into:\n{out}");
            }
        }
        assert!(text.contains("(sensitive, sha256:"), "{text}");
        assert!(json.contains("(sensitive, sha256:"), "{json}");
    }
}

#[test]
fn plan_json_has_kebab_case_action_tags() {
    let p = plan(&desired(), &Observed::default(), &opts());
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["stack"], json!(STACK));
    assert_eq!(v["actions"][0]["action"], json!("create-network"));
    assert_eq!(v["actions"][0]["name"], json!("plantest-b_default"));
}

#[test]
fn service_updated_through_the_api_plans_nothing_afterwards() {
    // `updated_services.json`: plantest-b_web after POST /services/{id}/update with 3 replicas.
    let o = observed(&["berth", "updated"]);
    let mut d = desired();
    d.services.insert("plantest-b_web".into(), web("nginx:1.25", &["B_VAR=two", "A_VAR=one"], 3, DB_PASS_NAME));
    assert!(plan(&d, &o, &opts()).is_empty());
    let back = plan(&desired(), &o, &opts());
    assert_eq!(update_changes(&back), [("Mode.Replicated.Replicas".to_string(), Some(json!(3)), Some(json!(2)))]);
}

#[test]
fn rich_spec_sent_equals_rich_spec_stored() {
    // `rich_sent.json` was POSTed to /services/create; `rich_services.json` is its inspect output.
    use berth_plan::diff::{CanonContext, canonical_service_spec, diff_values};
    let sent: ServiceSpec = serde_json::from_value(data("rich_sent.json")).unwrap();
    let stored: Service = serde_json::from_value(data("rich_services.json")[0].clone()).unwrap();
    let ctx = CanonContext::default();
    let mut changes = Vec::new();
    diff_values(
        "",
        &canonical_service_spec(stored.spec.as_ref().unwrap(), &ctx),
        &canonical_service_spec(&sent, &ctx),
        &mut changes,
    );
    assert!(changes.is_empty(), "{changes:#?}");
}

#[test]
fn secret_declared_external_is_never_removed() {
    let mut d = desired();
    d.services.remove("plantest-b_worker");
    d.secrets.remove(TOKEN_NAME);
    d.external_secrets.push(TOKEN_NAME.into());
    let p = plan(&d, &observed(&["berth"]), &opts());
    assert_eq!(kinds(&p), ["\"remove-service\" plantest-b_worker"]);
}
