//! `docker stack config` output: a [`Stack`] as YAML or JSON.
//!
//! Same shape as docker/cli marshalling its `types.Config`: `version`, `services` (a mapping by name),
//! then `networks`, `volumes`, `secrets`, `configs` when not empty, then top-level `x-*` fields; empty
//! fields omitted; durations like Go (`1m30s`); byte sizes as decimal strings; file modes decimal.

use crate::model::Stack;

/// The stack as YAML, shaped like `docker stack config` prints it. Parses back to the same value.
pub fn to_yaml(stack: &Stack) -> String {
    // yaml.v3 style: list items indented under their key.
    let mut opts = serde_saphyr::SerializerOptions::default();
    opts.compact_list_indent = false;
    // Serialising plain data into a String cannot fail.
    serde_saphyr::to_string_with_options(stack, opts).unwrap_or_default()
}

/// The stack as pretty JSON with the same content as [`to_yaml`].
pub fn to_json(stack: &Stack) -> String {
    let mut s = serde_json::to_string_pretty(stack).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn sample() -> Stack {
        let mut s = Stack { version: "3.13".into(), ..Default::default() };
        let mut svc = Service { image: "nginx".into(), ..Default::default() };
        svc.command = vec!["echo".into(), "3000".into(), "a b".into(), "null".into(), "yes".into()];
        svc.environment.insert("A".into(), None);
        svc.environment.insert("B".into(), Some("".into()));
        svc.environment.insert("C".into(), Some("1".into()));
        svc.stop_grace_period = Some(Duration(90_000_000_000));
        svc.deploy.replicas = Some(2);
        svc.deploy.resources.limits = Some(ResourceLimit { memory: UnitBytes(52428800), ..Default::default() });
        svc.networks.insert("n".into(), None);
        svc.secrets.push(FileReferenceConfig { source: "s".into(), mode: Some(0o440), ..Default::default() });
        svc.ulimits.insert("nproc".into(), UlimitsConfig { single: 5, soft: 0, hard: 0 });
        svc.ulimits.insert("nofile".into(), UlimitsConfig { single: 0, soft: 1, hard: 2 });
        svc.extras.insert("x-foo".into(), serde_json::json!({"a": [1, 2]}));
        s.services.insert("web".into(), svc);
        s.networks.insert("n".into(), NetworkConfig::default());
        s.networks.insert(
            "ext".into(),
            NetworkConfig {
                name: "ext".into(),
                external: External { name: String::new(), external: true },
                ..Default::default()
            },
        );
        s.volumes.insert("v".into(), VolumeConfig::default());
        s.extras.insert("x-top".into(), serde_json::json!("v"));
        s
    }

    #[test]
    fn yaml_output_parses_back_to_the_same_stack() {
        let s = sample();
        let y = to_yaml(&s);
        let back: Stack = serde_saphyr::from_str(&y).unwrap_or_else(|e| panic!("{e}\n{y}"));
        assert_eq!(back, s, "{y}");
    }

    #[test]
    fn json_output_parses_back_to_the_same_stack() {
        let s = sample();
        let j = to_json(&s);
        let back: Stack = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn yaml_output_uses_docker_cli_encodings() {
        let y = to_yaml(&sample());
        assert!(y.starts_with("version:"), "{y}");
        assert!(y.contains("stop_grace_period: 1m30s"), "{y}");
        assert!(y.contains("mode: 288"), "{y}");
        assert!(y.contains("x-top: v"), "{y}");
        assert!(y.contains("    command:\n      - echo\n"), "{y}");
        assert!(!y.contains("external: false"), "{y}");
    }
}
