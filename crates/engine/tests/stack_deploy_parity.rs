//! Parity with `docker stack deploy`, proven on the real dockerd (swarm mode) of this machine.
//!
//! For every stack file: deploy it with the docker CLI (`docker stack deploy --resolve-image never`,
//! stack `parity-a-NN`), inspect what the daemon stored, remove it; then create the objects of
//! berth's `desired(...)` (stack `parity-b-NN`) through the Engine API with bollard, inspect, remove;
//! then compare the stored specs field by field after replacing the stack names, mapping object IDs
//! back to names and dropping berth's own `io.berth.stack` label. Every object this test touches is
//! named `parity-*`; a guard removes them even when the test fails.

mod common;

use common::{Case, Side, ext_objects, run_case};

const SUITES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/compose-suites");
const OWN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parity");

fn cases() -> Vec<Case> {
    let suite = |p: &str| format!("{SUITES}/{p}");
    let mut cases = vec![
        Case::new("docker-cli full-stack", suite("docker-cli/e2e/stack/testdata/full-stack.yml")),
        Case::new(
            "docker-cli stack-with-named-resources",
            suite("docker-cli/e2e/stack/testdata/stack-with-named-resources.yml"),
        )
        .copy("data", suite("docker-cli/e2e/stack/testdata/data"))
        // Named objects are not stack-scoped: give them `parity-` names of their own per side.
        .edit(|doc, side| {
            for (section, key, base) in [
                ("networks", "network1", "named-network"),
                ("volumes", "volume1", "named-volume"),
                ("secrets", "secret1", "named-secret"),
                ("configs", "config1", "named-config"),
            ] {
                doc[section][key]["name"] = format!("{}-{base}", side.stack).into();
            }
        }),
        Case::new(
            "docker-cli full-example (as far as Swarm accepts it)",
            suite("docker-cli/cli/compose/loader/full-example.yml"),
        )
        .copy("example1.env", suite("docker-cli/cli/compose/loader/example1.env"))
        .copy("example2.env", suite("docker-cli/cli/compose/loader/example2.env"))
        .stub("config_data", "config-content\n")
        .stub("secret_data", "secret-content\n")
        .env("HOME", "/bar")
        .env("QUX", "qux_from_environment")
        .edit(full_example_for_swarm),
        Case::new("example-voting-app docker-stack", suite("example-voting-app/docker-stack.yml")),
    ];
    // Every awesome-compose file `docker stack config` accepts whose services all name an image and
    // that Swarm can deploy (elasticsearch-logstash-kibana asks for a bridge network: rejected).
    for dir in [
        "gitea-postgres",
        "minecraft",
        "nextcloud-postgres",
        "nextcloud-redis-mariadb",
        "pihole-cloudflared-DoH",
        "portainer",
        "postgresql-pgadmin",
        "prometheus-grafana",
        "wireguard",
        "wordpress-mysql",
    ] {
        cases.push(Case::new(&format!("awesome-compose {dir}"), suite(&format!("awesome-compose/{dir}/compose.yaml"))));
    }
    cases.push(Case::new("berth services.yml", format!("{OWN}/services.yml")));
    cases.push(Case::new("berth objects.yml", format!("{OWN}/objects.yml")));
    cases.push(Case::new("berth credential-spec.yml", format!("{OWN}/credential-spec.yml")));
    cases.push(
        Case::new(
            "example-voting-app docker-stack + berth voting-override.yml",
            suite("example-voting-app/docker-stack.yml"),
        )
        .merge(format!("{OWN}/voting-override.yml")),
    );
    cases
}

/// docker/cli's kitchen-sink file, changed only where Swarm (or this daemon) refuses it.
fn full_example_for_swarm(doc: &mut serde_json::Value, side: &Side) {
    use serde_json::json;
    let svc = &mut doc["services"]["foo"];
    // An undefined network, a duplicate mount point, a cluster volume, a too-small CPU reservation,
    // a constraint without operator and dnsrr with ingress ports are all rejected by Swarm.
    svc["networks"].as_object_mut().unwrap().remove("other-other-network");
    let vols = svc["volumes"].as_array_mut().unwrap();
    vols.retain(|v| v.get("type") != Some(&json!("cluster")));
    vols[1] = json!("/opt/data:/var/lib/mysql-2");
    vols[5] = json!("datavolume:/var/lib/mysql-3");
    vols[7]["target"] = json!("/opt-tmpfs");
    svc["deploy"].as_object_mut().unwrap().remove("endpoint_mode");
    svc["deploy"]["resources"]["reservations"]["cpus"] = json!("0.001");
    svc["deploy"]["resources"]["limits"]["cpus"] = json!("0.5");
    svc["deploy"]["placement"]["constraints"] = json!(["node.role==manager"]);
    // The ipam driver "overlay" does not exist.
    doc["networks"]["other-network"]["ipam"].as_object_mut().unwrap().remove("driver");
    // External objects must exist: point them at the parity-ext-* objects this test creates.
    doc["networks"]["external-network"] = json!({"external": true, "name": "parity-ext-net"});
    doc["networks"]["other-external-network"] = json!({"external": true, "name": "parity-ext-net"});
    doc["configs"]["config2"] = json!({"external": true, "name": "parity-ext-config"});
    doc["secrets"]["secret2"] = json!({"external": true, "name": "parity-ext-secret"});
    // Named objects without a file cannot be created: give them content and a parity- name.
    doc["configs"]["config4"] = json!({"name": format!("{}-config4", side.stack), "file": "./config_data"});
    doc["secrets"]["secret4"] = json!({"name": format!("{}-secret4", side.stack), "file": "./secret_data"});
    doc["volumes"]["datavolume"] = serde_json::Value::Null;
    doc["volumes"].as_object_mut().unwrap().remove("cluster-volume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_specs_equal_docker_stack_deploy_specs_on_real_dockerd() {
    let docker = common::connect().await;
    let _ext = ext_objects(&docker).await;
    let cases = cases();
    assert!(cases.len() >= 15, "parity needs at least 15 stack files");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let n = i + 1;
        if let Err(report) = run_case(&docker, case, n).await {
            failures.push(format!("── {} ({}):\n{report}", case.name, case.file));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} stack files differ from docker stack deploy:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
