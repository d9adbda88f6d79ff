use super::*;
use bollard_stubs::models::ServiceSpecUpdateConfigOrderEnum;
use serde_json::json;

fn stack(v: serde_json::Value) -> Stack {
    serde_json::from_value(v).expect("test stack deserialises")
}

fn files(path: &Path) -> std::io::Result<Vec<u8>> {
    match path.to_str() {
        Some("/s/secret.txt") => Ok(b"hunter2".to_vec()),
        Some("/s/app.conf") => Ok(b"a=1\n".to_vec()),
        _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")),
    }
}

const PLAIN: ConvertOptions = ConvertOptions { content_addressed: false };

fn convert(v: serde_json::Value) -> Desired {
    desired(&stack(v), "st", &PLAIN, &files).unwrap_or_else(|d| panic!("{d:#?}"))
}

fn convert_err(v: serde_json::Value) -> Vec<Diagnostic> {
    desired(&stack(v), "st", &PLAIN, &files).expect_err("conversion must fail")
}

fn container(d: &Desired, svc: &str) -> TaskSpecContainerSpec {
    d.services[svc].task_template.clone().unwrap().container_spec.unwrap()
}

fn task(d: &Desired, svc: &str) -> TaskSpec {
    d.services[svc].task_template.clone().unwrap()
}

#[test]
fn service_names_labels_and_image_follow_docker_stack_deploy() {
    let d = convert(json!({"version": "3.8", "services": {"web": {
        "image": "nginx", "labels": {"a": "1"}, "deploy": {"labels": {"tier": "front"}}
    }}}));
    let spec = &d.services["st_web"];
    assert_eq!(spec.name.as_deref(), Some("st_web"));
    let labels = spec.labels.clone().unwrap();
    assert_eq!(labels["com.docker.stack.namespace"], "st");
    assert_eq!(labels["io.berth.stack"], "st");
    assert_eq!(labels["com.docker.stack.image"], "nginx");
    assert_eq!(labels["tier"], "front");
    let c = container(&d, "st_web");
    assert_eq!(c.image.as_deref(), Some("nginx:latest"));
    let cl = c.labels.unwrap();
    assert_eq!(cl.len(), 2);
    assert_eq!(cl["com.docker.stack.namespace"], "st");
    assert_eq!(cl["a"], "1");
    // docker/cli always sends (empty) privileges, placement and resources.
    assert!(c.privileges.is_some());
    let t = task(&d, "st_web");
    assert!(t.placement.is_some() && t.resources.is_some());
    assert_eq!(d.services["st_web"].endpoint_spec, Some(EndpointSpec::default()));
}

#[test]
fn a_service_without_networks_joins_the_overlay_default_network_with_its_name_as_alias() {
    let d = convert(json!({"services": {"web": {"image": "nginx"}}}));
    let net = &d.networks["st_default"];
    assert_eq!(net.driver.as_deref(), Some("overlay"));
    assert_eq!(net.labels.clone().unwrap()["com.docker.stack.namespace"], "st");
    assert_eq!(net.labels.clone().unwrap()["io.berth.stack"], "st");
    let nets = task(&d, "st_web").networks.unwrap();
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0].target.as_deref(), Some("st_default"));
    assert_eq!(nets[0].aliases, Some(vec!["web".to_string()]));
}

#[test]
fn networks_named_external_and_unused_are_handled_like_docker_cli() {
    let d = convert(json!({
        "services": {"web": {"image": "nginx", "networks": {
            "front": {"aliases": ["www"], "driver_opts": {"o": "1"}}, "ext": null, "named": null, "host": null
        }}},
        "networks": {
            "front": {"driver": "overlay", "attachable": true, "internal": true, "driver_opts": {"encrypted": ""},
                      "labels": {"x": "y"}, "ipam": {"driver": "default", "config": [{"subnet": "10.9.0.0/24"}]}},
            "ext": {"external": true, "name": "shared-net"},
            "named": {"name": "exact-name"},
            "host": {"external": true, "name": "host"},
            "unused": {}
        }
    }));
    assert_eq!(d.networks.keys().collect::<Vec<_>>(), ["exact-name", "st_front"]);
    assert_eq!(d.external_networks, ["shared-net", "host"]);
    let front = &d.networks["st_front"];
    assert_eq!(front.attachable, Some(true));
    assert_eq!(front.internal, Some(true));
    assert_eq!(front.options.clone().unwrap()["encrypted"], "");
    assert_eq!(front.labels.clone().unwrap()["x"], "y");
    let ipam = front.ipam.clone().unwrap();
    assert_eq!(ipam.driver.as_deref(), Some("default"));
    assert_eq!(ipam.config.unwrap()[0].subnet.as_deref(), Some("10.9.0.0/24"));
    let nets = task(&d, "st_web").networks.unwrap();
    let targets: Vec<_> = nets.iter().map(|n| n.target.clone().unwrap()).collect();
    assert_eq!(targets, ["exact-name", "host", "shared-net", "st_front"]);
    // `host` is not user-defined: no alias.
    assert_eq!(nets[1].aliases, None);
    assert_eq!(nets[3].aliases, Some(vec!["www".to_string(), "web".to_string()]));
    assert_eq!(nets[3].driver_opts.clone().unwrap()["o"], "1");
}

#[test]
fn an_undefined_network_is_reported_with_its_key_path_and_a_suggestion() {
    let d = convert_err(json!({"services": {"web": {"image": "x", "networks": {"fronte": null}}},
                               "networks": {"front": {}}}));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].path, "services.web.networks.fronte");
    assert_eq!(d[0].code, "convert.undefined-network");
    assert_eq!(d[0].hint.as_deref(), Some("did you mean `front`?"));
}

#[test]
fn mounts_cover_bind_volume_tmpfs_with_options_and_prefixing() {
    let d = convert(json!({
        "services": {"web": {"image": "x", "volumes": [
            {"type": "bind", "source": "/host", "target": "/c", "read_only": true, "bind": {"propagation": "rslave"}},
            {"type": "volume", "source": "data", "target": "/data", "volume": {"nocopy": true}},
            {"type": "volume", "source": "ext", "target": "/ext"},
            {"type": "volume", "source": "named", "target": "/named"},
            {"type": "volume", "target": "/anon"},
            {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1024}},
            {"type": "bind", "source": "/a", "target": "/b", "consistency": "cached"}
        ]}},
        "volumes": {
            "data": {"driver": "local", "driver_opts": {"type": "nfs"}, "labels": {"l": "v"}},
            "ext": {"external": true},
            "named": {"name": "exact"}
        }
    }));
    let m = container(&d, "st_web").mounts.unwrap();
    assert_eq!(m[0].typ, Some(MountType::BIND));
    assert_eq!(m[0].read_only, Some(true));
    assert_eq!(m[0].bind_options.clone().unwrap().propagation, Some(MountBindOptionsPropagationEnum::RSLAVE));
    assert_eq!(m[1].source.as_deref(), Some("st_data"));
    let vo = m[1].volume_options.clone().unwrap();
    assert_eq!(vo.no_copy, Some(true));
    assert_eq!(vo.labels.clone().unwrap()["l"], "v");
    assert_eq!(vo.labels.unwrap()["com.docker.stack.namespace"], "st");
    let dc = vo.driver_config.unwrap();
    assert_eq!(dc.name.as_deref(), Some("local"));
    assert_eq!(dc.options.unwrap()["type"], "nfs");
    assert_eq!(m[2].source.as_deref(), Some("ext"));
    assert_eq!(m[2].volume_options, Some(MountVolumeOptions::default()));
    assert_eq!(m[3].source.as_deref(), Some("exact"));
    assert_eq!(m[4].source, None);
    assert_eq!(m[4].volume_options, None);
    assert_eq!(m[5].typ, Some(MountType::TMPFS));
    assert_eq!(m[5].tmpfs_options.clone().unwrap().size_bytes, Some(1024));
    assert_eq!(m[6].consistency.as_deref(), Some("cached"));
    assert!(d.volumes.is_empty(), "docker stack deploy creates no volumes");
}

#[test]
fn mount_errors_name_the_volume_entry() {
    let d = convert_err(json!({"services": {"web": {"image": "x", "volumes": [
        {"type": "volume", "source": "dta", "target": "/d"},
        {"type": "tmpfs", "source": "/x", "target": "/t"},
        {"type": "bind", "target": "/b"},
        {"type": "volume", "source": "data", "target": "/v", "tmpfs": {"size": 1}}
    ]}}, "volumes": {"data": {}}}));
    let paths: Vec<_> = d.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        ["services.web.volumes[0]", "services.web.volumes[1]", "services.web.volumes[2]", "services.web.volumes[3]"]
    );
    assert_eq!(d[0].hint.as_deref(), Some("did you mean `data`?"));
}

#[test]
fn secret_and_config_references_get_docker_cli_defaults_and_are_sorted() {
    let d = convert(json!({
        "services": {"web": {"image": "x",
            "secrets": [{"source": "zeta"}, {"source": "alpha", "target": "a.txt", "uid": "10", "gid": "20", "mode": 256}],
            "configs": [{"source": "conf", "target": "/etc/app.conf", "mode": 288}]
        }},
        "secrets": {"zeta": {"file": "/s/secret.txt", "labels": {"k": "v"}}, "alpha": {"external": true, "name": "pre-made"},
                    "unused": {"file": "/s/secret.txt"}},
        "configs": {"conf": {"file": "/s/app.conf", "template_driver": "golang"}}
    }));
    let c = container(&d, "st_web");
    let s = c.secrets.unwrap();
    assert_eq!(s[0].secret_name.as_deref(), Some("pre-made"));
    assert_eq!(
        s[0].file.clone().unwrap(),
        TaskSpecContainerSpecFile {
            name: Some("a.txt".into()),
            uid: Some("10".into()),
            gid: Some("20".into()),
            mode: Some(256)
        }
    );
    assert_eq!(s[1].secret_name.as_deref(), Some("st_zeta"));
    assert_eq!(
        s[1].file.clone().unwrap(),
        TaskSpecContainerSpecFile {
            name: Some("zeta".into()),
            uid: Some("0".into()),
            gid: Some("0".into()),
            mode: Some(0o444)
        }
    );
    let cf = c.configs.unwrap();
    assert_eq!(cf[0].config_name.as_deref(), Some("st_conf"));
    assert_eq!(cf[0].file.clone().unwrap().mode, Some(288));
    // Every non-external secret is created, used or not; data is base64.
    assert_eq!(d.secrets.keys().collect::<Vec<_>>(), ["st_unused", "st_zeta"]);
    assert_eq!(d.secrets["st_zeta"].data.as_deref(), Some("aHVudGVyMg=="));
    assert_eq!(d.secrets["st_zeta"].labels.clone().unwrap()["k"], "v");
    assert_eq!(d.external_secrets, ["pre-made"]);
    assert_eq!(d.configs["st_conf"].data.as_deref(), Some("YT0xCg=="));
    assert_eq!(d.configs["st_conf"].templating.clone().unwrap().name, "golang");
}

#[test]
fn content_addressed_names_carry_a_hash_of_the_content_and_references_follow() {
    let s = stack(json!({
        "services": {"web": {"image": "x", "secrets": [{"source": "pw"}], "configs": [{"source": "conf"}]}},
        "secrets": {"pw": {"file": "/s/secret.txt"}},
        "configs": {"conf": {"file": "/s/app.conf", "name": "app-conf"}}
    }));
    let d = desired(&s, "st", &ConvertOptions { content_addressed: true }, &files).unwrap();
    let secret = d.secrets.keys().next().unwrap().clone();
    let hash = secret.strip_prefix("st_pw_").expect("st_pw_<hash8>");
    assert_eq!(hash.len(), 8);
    assert_eq!(hash, &format!("{:x}", Sha256::digest(b"hunter2"))[..8]);
    let config = d.configs.keys().next().unwrap().clone();
    assert!(config.starts_with("app-conf_"), "{config}");
    let c = container(&d, "st_web");
    assert_eq!(c.secrets.unwrap()[0].secret_name.as_deref(), Some(secret.as_str()));
    assert_eq!(c.configs.unwrap()[0].config_name.as_deref(), Some(config.as_str()));
}

#[test]
fn undefined_references_and_unreadable_files_are_diagnostics_with_key_paths() {
    let d = convert_err(json!({
        "services": {"web": {"image": "x", "secrets": [{"source": "pw"}, {"source": "nope"}], "configs": [{"source": "c"}]}},
        "secrets": {"pw": {"file": "/s/missing.txt"}}
    }));
    let paths: Vec<_> = d.iter().map(|d| (d.code, d.path.as_str())).collect();
    assert_eq!(
        paths,
        [
            ("convert.read-file", "secrets.pw.file"),
            ("convert.undefined-ref", "services.web.secrets[1]"),
            ("convert.undefined-ref", "services.web.configs[0]"),
        ]
    );
    assert!(d[0].message.contains("/s/missing.txt"));
}

#[test]
fn resources_convert_cpus_memory_pids_and_generic_resources() {
    let d = convert(json!({"services": {"web": {"image": "x", "deploy": {"resources": {
        "limits": {"cpus": "0.5", "memory": "50M", "pids": 100},
        "reservations": {"cpus": "0.001", "memory": 1024,
                         "generic_resources": [{"discrete_resource_spec": {"kind": "gpu", "value": 2}}]}
    }}}}}));
    let r = task(&d, "st_web").resources.unwrap();
    assert_eq!(r.limits, Some(Limit { nano_cpus: Some(500_000_000), memory_bytes: Some(52_428_800), pids: Some(100) }));
    let res = r.reservations.unwrap();
    assert_eq!(res.nano_cpus, Some(1_000_000));
    assert_eq!(res.memory_bytes, Some(1024));
    let g = res.generic_resources.unwrap();
    assert_eq!(g[0].discrete_resource_spec.clone().unwrap().kind.as_deref(), Some("gpu"));
    assert_eq!(g[0].discrete_resource_spec.clone().unwrap().value, Some(2));

    let e = convert_err(
        json!({"services": {"web": {"image": "x", "deploy": {"resources": {"limits": {"cpus": "lots"}}}}}}),
    );
    assert_eq!(e[0].path, "services.web.deploy.resources.limits.cpus");
}

#[test]
fn cpus_parse_like_docker_cli() {
    assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
    assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
    assert_eq!(parse_cpus("1/4"), Ok(250_000_000));
    assert_eq!(parse_cpus("1e-3"), Ok(1_000_000));
    assert_eq!(parse_cpus(".25"), Ok(250_000_000));
    assert!(parse_cpus("0.0000000001").unwrap_err().contains("too precise"));
    assert!(parse_cpus("abc").is_err());
    assert!(parse_cpus("").is_err());
}

#[test]
fn restart_policy_prefers_deploy_and_falls_back_to_restart() {
    let d = convert(json!({"services": {
        "a": {"image": "x", "restart": "always",
              "deploy": {"restart_policy": {"condition": "on-failure", "delay": "5s", "max_attempts": 3, "window": "2m"}}},
        "b": {"image": "x", "restart": "unless-stopped"},
        "c": {"image": "x", "restart": "on-failure:3"},
        "d": {"image": "x", "restart": "no"},
        "e": {"image": "x"}
    }}));
    let rp = |s: &str| task(&d, s).restart_policy;
    assert_eq!(
        rp("st_a"),
        Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE),
            delay: Some(5_000_000_000),
            max_attempts: Some(3),
            window: Some(120_000_000_000),
        })
    );
    assert_eq!(rp("st_b").unwrap().condition, Some(TaskSpecRestartPolicyConditionEnum::ANY));
    assert_eq!(rp("st_c").unwrap().max_attempts, Some(3));
    assert_eq!(rp("st_d"), None);
    assert_eq!(rp("st_e"), None);
    let e = convert_err(json!({"services": {"a": {"image": "x", "restart": "sometimes"}}}));
    assert_eq!(e[0].path, "services.a.restart");
}

#[test]
fn update_and_rollback_configs_default_parallelism_to_one() {
    let d = convert(json!({"services": {"web": {"image": "x", "deploy": {
        "update_config": {"delay": "10s", "monitor": "1m", "max_failure_ratio": 0.3, "order": "start-first", "failure_action": "rollback"},
        "rollback_config": {"parallelism": 0, "failure_action": "pause"}
    }}}}));
    let u = d.services["st_web"].update_config.clone().unwrap();
    assert_eq!(u.parallelism, Some(1));
    assert_eq!(u.delay, Some(10_000_000_000));
    assert_eq!(u.monitor, Some(60_000_000_000));
    assert_eq!(u.max_failure_ratio, Some(0.3));
    assert_eq!(u.order, Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
    let r = d.services["st_web"].rollback_config.clone().unwrap();
    assert_eq!(r.parallelism, Some(0));
    assert_eq!(r.delay, None);
    let none = convert(json!({"services": {"web": {"image": "x"}}}));
    assert_eq!(none.services["st_web"].update_config, None);
}

#[test]
fn healthchecks_convert_durations_to_nanoseconds_and_disable_to_none() {
    let d = convert(json!({"services": {
        "a": {"image": "x", "healthcheck": {"test": ["CMD-SHELL", "true"], "interval": "10s", "timeout": "1s",
                                             "retries": 5, "start_period": "15s", "start_interval": "1s"}},
        "b": {"image": "x", "healthcheck": {"disable": true}}
    }}));
    assert_eq!(
        container(&d, "st_a").health_check,
        Some(HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "true".into()]),
            interval: Some(10_000_000_000),
            timeout: Some(1_000_000_000),
            retries: Some(5),
            start_period: Some(15_000_000_000),
            start_interval: Some(1_000_000_000),
        })
    );
    assert_eq!(container(&d, "st_b").health_check.unwrap().test, Some(vec!["NONE".to_string()]));
    let e =
        convert_err(json!({"services": {"a": {"image": "x", "healthcheck": {"disable": true, "test": ["CMD", "x"]}}}}));
    assert_eq!(e[0].path, "services.a.healthcheck");
}

#[test]
fn modes_cover_replicated_global_and_jobs() {
    let d = convert(json!({"services": {
        "r": {"image": "x", "deploy": {"replicas": 3}},
        "g": {"image": "x", "deploy": {"mode": "global"}},
        "rj": {"image": "x", "deploy": {"mode": "replicated-job", "replicas": 2}},
        "gj": {"image": "x", "deploy": {"mode": "global-job"}},
        "d": {"image": "x"}
    }}));
    let mode = |s: &str| d.services[s].mode.clone().unwrap();
    assert_eq!(mode("st_r").replicated.unwrap().replicas, Some(3));
    assert_eq!(mode("st_d").replicated.unwrap().replicas, None);
    assert!(mode("st_g").global.is_some());
    assert_eq!(
        mode("st_rj").replicated_job,
        Some(ServiceSpecModeReplicatedJob { max_concurrent: Some(2), total_completions: Some(2) })
    );
    assert!(mode("st_gj").global_job.is_some());
    let e = convert_err(json!({"services": {"g": {"image": "x", "deploy": {"mode": "global", "replicas": 2}}}}));
    assert_eq!(e[0].path, "services.g.deploy.replicas");
    let e = convert_err(json!({"services": {"g": {"image": "x", "deploy": {"mode": "everywhere"}}}}));
    assert_eq!(e[0].path, "services.g.deploy.mode");
}

#[test]
fn ports_keep_modes_and_protocols_and_sort_by_published_port() {
    let d = convert(json!({"services": {"web": {"image": "x", "deploy": {"endpoint_mode": "DNSRR"}, "ports": [
        {"mode": "ingress", "target": 80, "published": 8080, "protocol": "tcp"},
        {"mode": "host", "target": 53, "published": 53, "protocol": "udp"},
        {"mode": "ingress", "target": 9000, "protocol": "tcp"}
    ]}}}));
    let ep = d.services["st_web"].endpoint_spec.clone().unwrap();
    assert_eq!(ep.mode, Some(EndpointSpecModeEnum::DNSRR));
    let ports = ep.ports.unwrap();
    let seen: Vec<_> = ports.iter().map(|p| (p.target_port.unwrap(), p.published_port)).collect();
    assert_eq!(seen, [(9000, None), (53, Some(53)), (80, Some(8080))]);
    assert_eq!(ports[1].protocol, Some(EndpointPortConfigProtocolEnum::UDP));
    assert_eq!(ports[1].publish_mode, Some(EndpointPortConfigPublishModeEnum::HOST));
}

#[test]
fn container_options_env_hosts_dns_caps_and_limits_match_docker_cli() {
    let d = convert(json!({"services": {"web": {
        "image": "x",
        "environment": {"B": "2", "A": "1", "C": null},
        "extra_hosts": ["somehost:162.242.195.82", "v6:::1", "nocolon"],
        "dns": ["8.8.8.8"], "dns_search": ["example.com"],
        "cap_add": ["net_admin", "CAP_CHOWN", "sys_time"], "cap_drop": ["NET_ADMIN", "mknod"],
        "ulimits": {"nproc": 65535, "nofile": {"soft": 1, "hard": 2}},
        "sysctls": {"net.core.somaxconn": "1024"},
        "entrypoint": ["/init"], "command": ["run", "--fast"],
        "user": "app", "working_dir": "/srv", "hostname": "h", "tty": true, "stdin_open": true,
        "read_only": true, "init": true, "stop_grace_period": "20s", "stop_signal": "SIGUSR1",
        "isolation": "process",
        "logging": {"driver": "syslog", "options": {"tag": "x"}},
        "deploy": {"placement": {"constraints": ["node.role==manager"], "preferences": [{"spread": "node.labels.az"}],
                                 "max_replicas_per_node": 5}}
    }}}));
    let c = container(&d, "st_web");
    assert_eq!(c.env.unwrap(), ["A=1", "B=2", "C"]);
    assert_eq!(c.hosts.unwrap(), ["162.242.195.82 somehost", "::1 v6"]);
    let dns = c.dns_config.unwrap();
    assert_eq!(dns.nameservers.unwrap(), ["8.8.8.8"]);
    assert_eq!(dns.search.unwrap(), ["example.com"]);
    assert_eq!(c.capability_add.unwrap(), ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_TIME"]);
    assert_eq!(c.capability_drop.unwrap(), ["CAP_MKNOD"]);
    let ul = c.ulimits.unwrap();
    assert_eq!((ul[0].name.as_deref(), ul[0].soft, ul[0].hard), (Some("nofile"), Some(1), Some(2)));
    assert_eq!((ul[1].name.as_deref(), ul[1].soft, ul[1].hard), (Some("nproc"), Some(65535), Some(65535)));
    assert_eq!(c.sysctls.unwrap()["net.core.somaxconn"], "1024");
    assert_eq!(c.command.unwrap(), ["/init"]);
    assert_eq!(c.args.unwrap(), ["run", "--fast"]);
    assert_eq!((c.user.as_deref(), c.dir.as_deref(), c.hostname.as_deref()), (Some("app"), Some("/srv"), Some("h")));
    assert_eq!((c.tty, c.open_stdin, c.read_only, c.init), (Some(true), Some(true), Some(true), Some(true)));
    assert_eq!(c.stop_grace_period, Some(20_000_000_000));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGUSR1"));
    assert_eq!(c.isolation, Some(TaskSpecContainerSpecIsolationEnum::PROCESS));
    let t = task(&d, "st_web");
    let log = t.log_driver.unwrap();
    assert_eq!((log.name.as_deref(), log.options.unwrap()["tag"].as_str()), (Some("syslog"), "x"));
    let p = t.placement.unwrap();
    assert_eq!(p.constraints.unwrap(), ["node.role==manager"]);
    assert_eq!(p.preferences.unwrap()[0].spread.clone().unwrap().spread_descriptor.as_deref(), Some("node.labels.az"));
    assert_eq!(p.max_replicas, Some(5));
}

#[test]
fn effective_caps_let_all_trump_and_add_win_over_drop() {
    let (add, drop) = effective_caps(&["ALL".into(), "chown".into()], &["net_admin".into(), "all".into()]);
    assert_eq!(add, ["ALL"]);
    assert_eq!(drop, Vec::<String>::new());
    let (add, drop) = effective_caps(&["chown".into()], &["CHOWN".into(), "kill".into(), "kill".into()]);
    assert_eq!(add, ["CAP_CHOWN"]);
    assert_eq!(drop, ["CAP_KILL"]);
}

#[test]
fn credential_spec_in_a_config_becomes_a_runtime_config_reference() {
    let d = convert(json!({
        "services": {"web": {"image": "x", "credential_spec": {"config": "cred"}}},
        "configs": {"cred": {"file": "/s/app.conf"}}
    }));
    let c = container(&d, "st_web");
    let refs = c.configs.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].config_name.as_deref(), Some("st_cred"));
    assert_eq!(refs[0].runtime, Some(HashMap::new()));
    assert_eq!(refs[0].file, None);
    assert_eq!(c.privileges.unwrap().credential_spec.unwrap().config.as_deref(), Some("st_cred"));
    let e =
        convert_err(json!({"services": {"web": {"image": "x", "credential_spec": {"file": "a", "registry": "b"}}}}));
    assert_eq!(e[0].path, "services.web.credential_spec");
}

#[test]
fn resolve_references_fills_ids_and_reports_missing_names() {
    let mut d = convert(json!({
        "services": {"web": {"image": "x", "secrets": [{"source": "s"}], "configs": [{"source": "c"}], "credential_spec": {"config": "c"}}},
        "secrets": {"s": {"file": "/s/secret.txt"}},
        "configs": {"c": {"file": "/s/app.conf"}}
    }));
    let spec = d.services.get_mut("st_web").unwrap();
    let ids = |n: &str| Some(format!("id-{n}"));
    resolve_references(spec, &ids, &ids).unwrap();
    let c = spec.task_template.clone().unwrap().container_spec.unwrap();
    assert_eq!(c.secrets.unwrap()[0].secret_id.as_deref(), Some("id-st_s"));
    assert!(c.configs.unwrap().iter().all(|r| r.config_id.as_deref() == Some("id-st_c")));
    assert_eq!(c.privileges.unwrap().credential_spec.unwrap().config.as_deref(), Some("id-st_c"));
    let mut spec2 = d.services["st_web"].clone();
    let missing = resolve_references(&mut spec2, &|_| None, &|_| None).unwrap_err();
    assert!(missing.contains(&"st_s".to_string()));
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (i, o) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(i.as_bytes()), o);
    }
}

#[test]
fn locate_finds_positions_of_converter_diagnostics_in_the_documents() {
    let text = "services:\n  web:\n    image: x\n    secrets:\n      - nope\n";
    let doc = berth_spec::yaml::parse(text, 0).unwrap();
    let diags =
        vec![Diagnostic::error("convert.undefined-ref", None, "services.web.secrets[0]", "undefined secret `nope`")];
    let located = locate(diags, &[doc]);
    let pos = located[0].pos.expect("position found");
    assert_eq!((pos.line, pos.col), (5, 9));
}

#[test]
fn a_service_without_image_is_an_error_that_mentions_build() {
    let d = convert_err(json!({"services": {"web": {"build": {"context": "./web"}}}}));
    assert_eq!((d[0].code, d[0].path.as_str()), ("convert.no-image", "services.web.image"));
    assert!(d[0].hint.as_deref().unwrap().contains("./web"));
}
