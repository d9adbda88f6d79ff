//! Multi-file merge (`berth_spec::merge::merge`) against docker/cli's rules.
//!
//! Cases are data: a base file, an override file and the expected merged stack, all in the
//! normalised form the loader produces (long-form ports/volumes, environment as a map), so that the
//! same text is also a valid compose file for `docker stack config`. Most cases are transcribed
//! from docker/cli `cli/compose/loader/merge_test.go` (`TestLoadLogging`, `TestLoadMultiple*`,
//! `TestMergeUlimitsConfig`, `TestMergeServiceNetworkConfig`); the `berth_*` cases pin mergo
//! corner cases found by probing docker 28.2.2. `cases_agree_with_docker_stack_config` runs every
//! case through the real CLI (`docker stack config -c base.yml -c override.yml`).

use berth_spec::Stack;
use berth_spec::merge::merge;
use std::path::Path;
use std::process::Command;

struct Case {
    name: &'static str,
    base: &'static str,
    over: &'static str,
    expected: &'static str,
}

fn stack(name: &str, what: &str, yaml: &str) -> Stack {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{name}: {what} does not parse: {e}"))
}

const CASES: &[Case] = &[
    // --- TestLoadLogging -------------------------------------------------------------------
    Case {
        name: "logging/no_override_driver",
        base: r#"
version: "3.4"
services:
  foo:
    logging: {driver: json-file, options: {frequency: "2000", timeout: "23"}}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    logging: {options: {timeout: "360", pretty-print: "on"}}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    logging: {driver: json-file, options: {frequency: "2000", timeout: "360", pretty-print: "on"}}
"#,
    },
    Case {
        name: "logging/override_driver",
        base: r#"
version: "3.4"
services:
  foo:
    logging: {driver: json-file, options: {frequency: "2000", timeout: "23"}}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    logging: {driver: syslog, options: {timeout: "360", pretty-print: "on"}}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    logging: {driver: syslog, options: {timeout: "360", pretty-print: "on"}}
"#,
    },
    Case {
        name: "logging/no_base_driver",
        base: r#"
version: "3.4"
services:
  foo:
    logging: {options: {frequency: "2000", timeout: "23"}}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    logging: {driver: json-file, options: {timeout: "360", pretty-print: "on"}}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    logging: {driver: json-file, options: {frequency: "2000", timeout: "360", pretty-print: "on"}}
"#,
    },
    Case {
        name: "logging/no_driver",
        base: r#"
version: "3.4"
services:
  foo:
    logging: {options: {frequency: "2000", timeout: "23"}}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    logging: {options: {timeout: "360", pretty-print: "on"}}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    logging: {options: {frequency: "2000", timeout: "360", pretty-print: "on"}}
"#,
    },
    Case {
        name: "logging/no_override_options",
        base: r#"
version: "3.4"
services:
  foo:
    logging: {driver: json-file, options: {frequency: "2000", timeout: "23"}}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    logging: {driver: syslog}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    logging: {driver: syslog}
"#,
    },
    Case {
        name: "logging/no_base",
        base: r#"
version: "3.4"
services:
  foo: {}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    logging: {driver: json-file, options: {frequency: "2000"}}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    logging: {driver: json-file, options: {frequency: "2000"}}
"#,
    },
    // --- TestLoadMultipleServicePorts ----------------------------------------------------------
    Case {
        name: "ports/no_override",
        base: r#"
version: "3.4"
services:
  foo:
    ports: [{mode: ingress, target: 80, published: 8080, protocol: tcp}]
"#,
        over: r#"
version: "3.4"
services:
  foo: {}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    ports: [{mode: ingress, target: 80, published: 8080, protocol: tcp}]
"#,
    },
    Case {
        name: "ports/override_different_published",
        base: r#"
version: "3.4"
services:
  foo:
    ports: [{mode: ingress, target: 80, published: 8080, protocol: tcp}]
"#,
        over: r#"
version: "3.4"
services:
  foo:
    ports: [{mode: ingress, target: 80, published: 8081, protocol: tcp}]
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    ports:
      - {mode: ingress, target: 80, published: 8080, protocol: tcp}
      - {mode: ingress, target: 80, published: 8081, protocol: tcp}
"#,
    },
    Case {
        name: "ports/override_same_published",
        base: r#"
version: "3.4"
services:
  foo:
    ports: [{mode: ingress, target: 80, published: 8080, protocol: tcp}]
"#,
        over: r#"
version: "3.4"
services:
  foo:
    ports: [{mode: ingress, target: 81, published: 8080, protocol: tcp}]
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    ports: [{mode: ingress, target: 81, published: 8080, protocol: tcp}]
"#,
    },
    // --- TestLoadMultipleSecretsConfig / TestLoadMultipleConfigobjsConfig -------------------
    Case {
        name: "secrets/no_override",
        base: r#"
version: "3.4"
services:
  foo:
    secrets: [{source: my_secret}]
"#,
        over: r#"
version: "3.4"
services:
  foo: {}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    secrets: [{source: my_secret}]
"#,
    },
    Case {
        name: "secrets/override_simple",
        base: r#"
version: "3.4"
services:
  foo:
    secrets: [{source: foo_secret}]
"#,
        over: r#"
version: "3.4"
services:
  foo:
    secrets: [{source: bar_secret}]
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    secrets: [{source: bar_secret}, {source: foo_secret}]
"#,
    },
    Case {
        name: "secrets/override_same_source",
        base: r#"
version: "3.4"
services:
  foo:
    secrets: [{source: foo_secret}, {source: bar_secret, target: waw_secret}]
"#,
        over: r#"
version: "3.4"
services:
  foo:
    secrets: [{source: bar_secret, target: bof_secret}, {source: baz_secret, target: waw_secret}]
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    secrets:
      - {source: bar_secret, target: bof_secret}
      - {source: baz_secret, target: waw_secret}
      - {source: foo_secret}
"#,
    },
    Case {
        name: "configs/no_override",
        base: r#"
version: "3.4"
services:
  foo:
    configs: [{source: my_config}]
"#,
        over: r#"
version: "3.4"
services:
  foo: {}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    configs: [{source: my_config}]
"#,
    },
    Case {
        name: "configs/override_simple",
        base: r#"
version: "3.4"
services:
  foo:
    configs: [{source: foo_config}]
"#,
        over: r#"
version: "3.4"
services:
  foo:
    configs: [{source: bar_config}]
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    configs: [{source: bar_config}, {source: foo_config}]
"#,
    },
    Case {
        name: "configs/override_same_source",
        base: r#"
version: "3.4"
services:
  foo:
    configs: [{source: foo_config}, {source: bar_config, target: waw_config}]
"#,
        over: r#"
version: "3.4"
services:
  foo:
    configs: [{source: bar_config, target: bof_config}, {source: baz_config, target: waw_config}]
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    configs:
      - {source: bar_config, target: bof_config}
      - {source: baz_config, target: waw_config}
      - {source: foo_config}
"#,
    },
    // --- TestLoadMultipleUlimits / TestMergeUlimitsConfig ------------------------------------
    Case {
        name: "ulimits/no_override",
        base: r#"
version: "3.4"
services:
  foo:
    ulimits: {noproc: 65535}
"#,
        over: r#"
version: "3.4"
services:
  foo: {}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    ulimits: {noproc: 65535}
"#,
    },
    Case {
        name: "ulimits/override_simple",
        base: r#"
version: "3.4"
services:
  foo:
    ulimits: {noproc: 65535}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    ulimits: {noproc: 44444}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    ulimits: {noproc: 44444}
"#,
    },
    Case {
        name: "ulimits/override_different_notation",
        base: r#"
version: "3.4"
services:
  foo:
    ulimits: {nofile: {soft: 11111, hard: 99999}, noproc: 44444}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    ulimits: {nofile: 55555, noproc: {soft: 22222, hard: 33333}}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    ulimits: {nofile: 55555, noproc: {soft: 22222, hard: 33333}}
"#,
    },
    Case {
        name: "ulimits/merge_ulimits_config",
        base: r#"
version: "3.4"
services:
  foo:
    ulimits:
      override-single: 100
      override-single-with-soft-hard: 200
      override-soft-hard: {soft: 300, hard: 301}
      override-soft-hard-with-single: {soft: 400, hard: 401}
      dont-override: 500
"#,
        over: r#"
version: "3.4"
services:
  foo:
    ulimits:
      override-single: 110
      override-single-with-soft-hard: {soft: 210, hard: 211}
      override-soft-hard: {soft: 310, hard: 311}
      override-soft-hard-with-single: 410
      add: 610
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    ulimits:
      override-single: 110
      override-single-with-soft-hard: {soft: 210, hard: 211}
      override-soft-hard: {soft: 310, hard: 311}
      override-soft-hard-with-single: 410
      dont-override: 500
      add: 610
"#,
    },
    // --- TestLoadMultipleServiceNetworks / TestMergeServiceNetworkConfig --------------------
    Case {
        name: "service_networks/no_override",
        base: r#"
version: "3.4"
services:
  foo:
    networks: {net1: null, net2: null}
"#,
        over: r#"
version: "3.4"
services:
  foo: {}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    networks: {net1: null, net2: null}
"#,
    },
    Case {
        name: "service_networks/override_simple",
        base: r#"
version: "3.4"
services:
  foo:
    networks: {net1: null, net2: null}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    networks: {net1: null, net3: null}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    networks: {net1: null, net2: null, net3: null}
"#,
    },
    Case {
        name: "service_networks/override_with_aliases",
        base: r#"
version: "3.4"
services:
  foo:
    networks: {net1: {aliases: [alias1]}, net2: null}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    networks: {net1: {aliases: [alias2, alias3]}, net3: {}}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    networks: {net1: {aliases: [alias2, alias3]}, net2: null, net3: {}}
"#,
    },
    Case {
        name: "service_networks/merge_service_network_config",
        base: r#"
version: "3.4"
services:
  foo:
    networks:
      override-aliases: {aliases: ["100", "101"], ipv4_address: 127.0.0.1, ipv6_address: "0:0:0:0:0:0:0:1"}
      dont-override: {aliases: ["200", "201"], ipv4_address: 127.0.0.2, ipv6_address: "0:0:0:0:0:0:0:2"}
"#,
        over: r#"
version: "3.4"
services:
  foo:
    networks:
      override-aliases: {aliases: ["110", "111"], ipv4_address: 127.0.1.1, ipv6_address: "0:0:0:0:0:0:1:1"}
      add: {aliases: ["310", "311"], ipv4_address: 127.0.3.1, ipv6_address: "0:0:0:0:0:0:3:1"}
"#,
        expected: r#"
version: "3.4"
services:
  foo:
    networks:
      override-aliases: {aliases: ["110", "111"], ipv4_address: 127.0.1.1, ipv6_address: "0:0:0:0:0:0:1:1"}
      dont-override: {aliases: ["200", "201"], ipv4_address: 127.0.0.2, ipv6_address: "0:0:0:0:0:0:0:2"}
      add: {aliases: ["310", "311"], ipv4_address: 127.0.3.1, ipv6_address: "0:0:0:0:0:0:3:1"}
"#,
    },
    // --- TestLoadMultipleConfigs -------------------------------------------------------------
    Case {
        name: "multiple_configs",
        base: r#"
version: "3.4"
services:
  foo:
    image: foo
    build: {context: ., dockerfile: bar.Dockerfile}
    ports:
      - {mode: ingress, target: 80, published: 8080, protocol: tcp}
      - {mode: ingress, target: 90, published: 9090, protocol: tcp}
    labels: {foo: bar}
    cap_add: [NET_ADMIN]
"#,
        over: r#"
version: "3.4"
services:
  foo:
    image: baz
    build: {dockerfile: foo.Dockerfile, args: {buildno: "1", password: secret}}
    ports:
      - {target: 81, published: 8080}
    labels: {foo: baz}
    cap_add: [SYS_ADMIN]
  bar:
    image: bar
"#,
        expected: r#"
version: "3.4"
services:
  bar:
    image: bar
  foo:
    image: baz
    build: {context: ., dockerfile: foo.Dockerfile, args: {buildno: "1", password: secret}}
    ports:
      - {target: 81, published: 8080}
      - {mode: ingress, target: 90, published: 9090, protocol: tcp}
    labels: {foo: baz}
    cap_add: [NET_ADMIN, SYS_ADMIN]
"#,
    },
    // --- TestLoadMultipleNetworks (issue #972) -----------------------------------------------
    Case {
        name: "multiple_networks",
        base: r#"
version: "3.5"
services:
  foo:
    image: baz
networks:
  hostnet:
    driver: overlay
    ipam: {driver: default, config: [{subnet: 10.0.0.0/20}]}
"#,
        over: r#"
version: "3.5"
services: {}
networks:
  hostnet:
    name: host
    external: true
"#,
        expected: r#"
version: "3.5"
services:
  foo:
    image: baz
networks:
  hostnet:
    name: host
    external: true
"#,
    },
    // --- berth: mergo corner cases, confirmed against docker 28.2.2 -----------------------------
    Case {
        name: "berth/mergo_scalars_pointers_lists_and_extras",
        base: r#"
version: "3.8"
x-top: {a: 1}
services:
  foo:
    image: foo
    x-s: {a: 1, l: [1], s: x}
    ports:
      - {mode: ingress, target: 80, protocol: tcp}
      - {mode: ingress, target: 443, protocol: tcp}
      - {mode: ingress, target: 80, published: 8080, protocol: tcp}
    environment: {A: a, B: b, C: c}
    healthcheck: {test: [CMD, a], retries: 3, interval: 10s}
    logging: {driver: json-file}
    read_only: true
    init: true
    deploy:
      replicas: 3
      labels: {a: b}
      placement: {constraints: ["a==b"]}
      restart_policy: {condition: any, max_attempts: 4}
    command: [a, b]
    volumes:
      - {type: bind, source: /a, target: /x}
      - {type: volume, source: v, target: /y}
    networks:
      n1: {aliases: [a1], ipv4_address: 10.0.0.1}
  bar:
    image: bar
    environment: {A: a}
    logging: {driver: json-file, options: {x: "1"}}
"#,
        over: r#"
version: "3.8"
x-top2: {a: 1}
services:
  foo:
    x-s: {b: 2, l: [2], s: "y"}
    ports: [{mode: ingress, target: 81, protocol: tcp}]
    environment: {A: "", B: x}
    healthcheck: {test: [CMD, b], retries: 0}
    logging: {options: {a: b}}
    read_only: false
    init: false
    deploy:
      replicas: 0
      labels: {c: d}
      placement: {constraints: ["c==d"]}
      restart_policy: {max_attempts: 0}
    command: []
    volumes: [{type: bind, source: /b, target: /x}]
    networks:
      n1: {ipv6_address: "::1"}
  bar:
    logging: {options: {"y": "2"}}
  baz:
    image: baz
"#,
        expected: r#"
version: "3.8"
x-top: {a: 1}
services:
  bar:
    environment: {A: a}
    image: bar
    logging: {driver: json-file, options: {x: "1", "y": "2"}}
  baz:
    image: baz
  foo:
    command: [a, b]
    deploy:
      replicas: 0
      labels: {a: b, c: d}
      restart_policy: {condition: any, max_attempts: 0}
      placement: {constraints: ["a==b", "c==d"]}
    environment: {A: a, B: x, C: c}
    healthcheck: {test: [CMD, a, CMD, b], interval: 10s, retries: 0}
    image: foo
    init: true
    logging: {driver: json-file}
    networks:
      n1: {ipv4_address: 10.0.0.1, ipv6_address: "::1"}
    ports:
      - {mode: ingress, target: 81, protocol: tcp}
      - {mode: ingress, target: 80, published: 8080, protocol: tcp}
    read_only: true
    volumes:
      - {type: bind, source: /b, target: /x}
      - {type: volume, source: v, target: /y}
    x-s: {a: 1, b: 2, l: [1, 2], s: "y"}
"#,
    },
    Case {
        name: "berth/empty_base_list_takes_override_as_is",
        base: r#"
version: "3.4"
services:
  nop:
    image: x
"#,
        over: r#"
version: "3.4"
services:
  nop:
    ports: [{target: 1, published: 9000}, {target: 80}, {target: 81}, {target: 2, published: 9000}]
"#,
        expected: r#"
version: "3.4"
services:
  nop:
    image: x
    ports: [{target: 1, published: 9000}, {target: 80}, {target: 81}, {target: 2, published: 9000}]
"#,
    },
    Case {
        name: "berth/environment_empty_and_null_values",
        base: r#"
version: "3.8"
services:
  foo:
    image: foo
    environment: {A: "", B: "", C: x, D: null}
"#,
        over: r#"
version: "3.8"
services:
  foo:
    environment: {A: null, B: "y", C: null, D: d}
"#,
        expected: r#"
version: "3.8"
services:
  foo:
    image: foo
    environment: {A: null, B: "y", C: x, D: d}
"#,
    },
    Case {
        name: "berth/extension_map_replaces_a_non_map_and_null_replaces_anything",
        base: r#"
version: "3.8"
services:
  api:
    image: a
    x-s: str
    x-l: [1, 2]
    x-m: {a: {b: 1, c: [1]}}
    x-n: {a: 1}
"#,
        over: r#"
version: "3.8"
services:
  api:
    x-s: {b: [1]}
    x-l: {b: 2}
    x-m: {a: {c: [2], d: 3}}
    x-n: null
"#,
        expected: r#"
version: "3.8"
services:
  api:
    image: a
    x-s: {b: [1]}
    x-l: {b: 2}
    x-m: {a: {b: 1, c: [1, 2], d: 3}}
    x-n: null
"#,
    },
    Case {
        name: "berth/top_level_resources_replaced_per_key",
        base: r#"
version: "3.8"
services:
  web:
    image: web:1
    deploy: {replicas: 1}
volumes:
  data: {driver: local}
"#,
        over: r#"
version: "3.8"
services:
  web:
    image: web:2
    dns: [1.1.1.1]
volumes:
  data: {driver: other, labels: {a: b}}
secrets:
  s: {file: /run/s}
"#,
        expected: r#"
version: "3.8"
services:
  web:
    image: web:2
    dns: [1.1.1.1]
    deploy: {replicas: 1}
volumes:
  data: {driver: other, labels: {a: b}}
secrets:
  s: {file: /run/s}
"#,
    },
];

fn run_case(c: &Case) -> Result<(), String> {
    let base = stack(c.name, "base", c.base);
    let over = stack(c.name, "override", c.over);
    let want = stack(c.name, "expected", c.expected);
    let got = merge(vec![base, over]).map_err(|d| format!("{}: merge failed: {d}", c.name))?;
    if got != want {
        return Err(format!(
            "{}:\n got: {}\nwant: {}",
            c.name,
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&want).unwrap()
        ));
    }
    Ok(())
}

#[test]
fn docker_cli_merge_cases_give_the_expected_stack() {
    let failures: Vec<String> = CASES.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

#[test]
fn merging_one_stack_returns_it_unchanged_and_none_gives_empty() {
    let s = stack("one", "base", CASES[0].base);
    assert_eq!(merge(vec![s.clone()]).unwrap(), s);
    assert_eq!(merge(vec![]).unwrap(), Stack::default());
}

#[test]
fn merge_is_applied_left_to_right_over_three_files() {
    let a = stack("a", "a", "version: '3.8'\nservices:\n  s: {image: a, cap_add: [A]}\n");
    let b = stack("b", "b", "version: '3.8'\nservices:\n  s: {image: b, cap_add: [B]}\n");
    let c = stack("c", "c", "version: '3.8'\nservices:\n  s: {cap_add: [C]}\n");
    let got = merge(vec![a, b, c]).unwrap();
    let s = &got.services["s"];
    assert_eq!(s.image, "b");
    assert_eq!(s.cap_add, ["A", "B", "C"]);
}

#[test]
fn appending_a_list_to_a_scalar_extension_is_an_error_with_the_key_path() {
    let base = stack("x", "base", "version: '3.8'\nservices:\n  foo: {image: foo, x-k: str}\n");
    let over = stack("x", "override", "version: '3.8'\nservices:\n  foo: {x-k: [1]}\n");
    let err = merge(vec![base, over]).unwrap_err();
    assert_eq!(err.code, "merge.type-mismatch");
    assert_eq!(err.path, "services.foo.x-k");
    assert!(err.message.contains("cannot append a list to a string"), "{}", err.message);
}

/// `docker stack config` output of two files, parsed into the model; `None` when docker is absent.
fn docker_merge(dir: &Path, base: &str, over: &str) -> Option<Result<Stack, String>> {
    std::fs::write(dir.join("base.yml"), base).unwrap();
    std::fs::write(dir.join("override.yml"), over).unwrap();
    let out = Command::new("docker")
        .args(["stack", "config", "-c", "base.yml", "-c", "override.yml"])
        .current_dir(dir)
        .env_remove("A")
        .env_remove("B")
        .env_remove("C")
        .env_remove("D")
        .output()
        .ok()?;
    if !out.status.success() {
        return Some(Err(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(serde_saphyr::from_str::<Stack>(&text).map_err(|e| format!("cannot parse docker output: {e}\n{text}")))
}

#[test]
fn cases_agree_with_docker_stack_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for c in CASES {
        let want = stack(c.name, "expected", c.expected);
        match docker_merge(dir.path(), c.base, c.over) {
            None => {
                eprintln!("docker not found: skipping the CLI comparison");
                return;
            }
            Some(Err(e)) => failures.push(format!("{}: docker rejected the case: {e}", c.name)),
            Some(Ok(got)) if got != want => failures.push(format!(
                "{}:\ndocker: {}\n  want: {}",
                c.name,
                serde_json::to_string(&got).unwrap(),
                serde_json::to_string(&want).unwrap()
            )),
            Some(Ok(_)) => {}
        }
    }
    assert!(failures.is_empty(), "{} cases disagree with docker:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn docker_rejects_the_extension_type_clash_too() {
    let dir = tempfile::tempdir().unwrap();
    let base = "version: '3.8'\nservices:\n  foo: {image: foo, x-k: str}\n";
    let over = "version: '3.8'\nservices:\n  foo: {x-k: [1]}\n";
    match docker_merge(dir.path(), base, over) {
        None => eprintln!("docker not found: skipping"),
        Some(Ok(_)) => panic!("docker accepted a list appended to a string"),
        Some(Err(e)) => assert!(e.contains("cannot append two slices with different type"), "{e}"),
    }
}
