//! Round trip: a generated stack file, loaded, rendered (`berth config`) and loaded again, gives
//! the same `Stack` — so `berth config` output is a faithful, re-loadable form of the input.

use berth_spec::env::Env;
use berth_spec::load::load_documents;
use berth_spec::render;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,6}(_[a-z0-9]{1,4})?"
}

fn quoted() -> impl Strategy<Value = String> {
    // Printable text including YAML-significant characters, always emitted double-quoted. No `$`:
    // like `docker stack config`, `berth config` prints values after interpolation, so a literal
    // `$` (written `$$`) in the output would be read as a variable when loaded again.
    "[ -#%-~]{0,12}".prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![Just("10s".to_string()), Just("1m30s".to_string()), Just("500ms".to_string()), Just("2h".to_string())]
}

fn service() -> impl Strategy<Value = String> {
    (
        ident(),
        prop::option::of(prop::collection::vec(quoted(), 1..4)),
        prop::collection::btree_map(ident(), quoted(), 0..4),
        any::<bool>(),
        prop::collection::vec((1u16..65535, prop::option::of(1u16..65535), any::<bool>()), 0..3),
        (prop::option::of(0u8..5), prop::option::of(prop_oneof![Just("replicated"), Just("global")])),
        prop::option::of((duration(), 1u8..5)),
        // A set: the schema wants list items unique (a duplicate label is rejected, rightly).
        prop::collection::btree_set(ident(), 0..3),
        prop::option::of(("[0-9]\\.[0-9]{1,2}", 4u32..2048)),
    )
        .prop_map(|(image, command, env, env_as_list, ports, (replicas, mode), health, labels, limits)| {
            let mut s = format!("    image: registry.example.com/{image}:1\n");
            if let Some(c) = command {
                s += &format!("    command: [{}]\n", c.join(", "));
            }
            if !env.is_empty() {
                s += "    environment:\n";
                for (k, v) in &env {
                    if env_as_list {
                        s += &format!("      - \"{}={}\"\n", k.to_uppercase(), &v[1..v.len() - 1]);
                    } else {
                        s += &format!("      {}: {v}\n", k.to_uppercase());
                    }
                }
            }
            if !ports.is_empty() {
                s += "    ports:\n";
                for (target, published, long) in ports {
                    match (published, long) {
                        (Some(p), false) => s += &format!("      - \"{p}:{target}\"\n"),
                        (None, false) => s += &format!("      - \"{target}\"\n"),
                        (p, true) => {
                            s += &format!("      - target: {target}\n        mode: host\n");
                            if let Some(p) = p {
                                s += &format!("        published: {p}\n");
                            }
                        }
                    }
                }
            }
            if replicas.is_some() || mode.is_some() || !labels.is_empty() || limits.is_some() {
                s += "    deploy:\n";
                if let Some(m) = mode {
                    s += &format!("      mode: {m}\n");
                }
                if let (Some(r), Some("replicated") | None) = (replicas, mode) {
                    s += &format!("      replicas: {r}\n");
                }
                if !labels.is_empty() {
                    s += &format!("      labels: [{}]\n", labels.iter().map(|l| format!("\"com.example.{l}=1\"")).collect::<Vec<_>>().join(", "));
                }
                if let Some((cpus, mem)) = limits {
                    s += &format!("      resources:\n        limits:\n          cpus: \"{cpus}\"\n          memory: {mem}M\n");
                }
            }
            if let Some((interval, retries)) = health {
                s += &format!("    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: {interval}\n      retries: {retries}\n");
            }
            s
        })
}

fn stack_text() -> impl Strategy<Value = String> {
    (prop::collection::btree_map(ident(), service(), 1..5), prop::collection::btree_set(ident(), 0..3)).prop_map(
        |(services, volumes)| {
            let mut s = String::from("version: \"3.9\"\nservices:\n");
            for (name, body) in services {
                s += &format!("  {name}:\n{body}");
            }
            if !volumes.is_empty() {
                s += "volumes:\n";
                for v in volumes {
                    s += &format!("  {v}:\n    labels: {{ owner: team }}\n");
                }
            }
            s
        },
    )
}

fn load(text: &str) -> Result<berth_spec::Stack, String> {
    let docs = vec![(PathBuf::from("/rt/compose.yaml"), text.to_string())];
    load_documents(&docs, Path::new("/rt"), &Env::new()).map(|l| l.stack).map_err(|f| {
        f.diagnostics
            .iter()
            .map(|d| format!("{}:{} {d}", d.pos.map_or(0, |p| p.line), d.pos.map_or(0, |p| p.col)))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn rendered_yaml_loads_back_to_the_same_stack(text in stack_text()) {
        let first = load(&text).map_err(|e| TestCaseError::fail(format!("generated file rejected:\n{e}\n---\n{text}")))?;
        let yaml = render::to_yaml(&first);
        let second = load(&yaml).map_err(|e| TestCaseError::fail(format!("rendered YAML rejected:\n{e}\n---\n{yaml}")))?;
        prop_assert_eq!(&first, &second, "YAML round trip changed the stack:\n{}", yaml);
        let json = render::to_json(&first);
        let third = load(&json).map_err(|e| TestCaseError::fail(format!("rendered JSON rejected:\n{e}\n---\n{json}")))?;
        prop_assert_eq!(&first, &third, "JSON round trip changed the stack:\n{}", json);
    }
}
