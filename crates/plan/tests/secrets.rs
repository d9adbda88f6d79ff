//! Secrets from the environment (`x-berth: { env: NAME }`) and generated once
//! (`x-berth: { generate: N }`): names, labels, plans for existing/missing generated secrets, and
//! that values never appear in plan text or JSON.

use berth_plan::convert::{ConvertOptions, LABEL_GENERATED, desired};
use berth_plan::{Action, Desired, Observed, PlanOptions, plan, render_text};
use berth_spec::env::Env;
use berth_spec::load::load_documents;
use bollard_stubs::models::{Secret, SecretSpec};
use std::path::{Path, PathBuf};

const VALUE: &str = "pa55-W0rd-from-env";
const ROTATED: &str = "n3w-pa55-W0rd";

const STACK: &str = "services:
  web:
    image: nginx:1.25
    secrets: [db_password, django_secret_key]
secrets:
  db_password:
    x-berth: { env: DB_PASSWORD }
  django_secret_key:
    x-berth: { generate: 50 }
  short_key:
    labels: { team: a }
    x-berth: { generate: 16 }
";

fn convert(text: &str, value: &str) -> Desired {
    let env = Env::from_pairs([("DB_PASSWORD".to_string(), value.to_string())]);
    let docs = vec![(PathBuf::from("stack.yml"), text.to_string())];
    let loaded = load_documents(&docs, Path::new("/w"), &env).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    let no_files = |p: &Path| -> std::io::Result<Vec<u8>> { panic!("no file may be read, asked for {p:?}") };
    desired(&loaded.stack, "st", &ConvertOptions::default(), &no_files).unwrap_or_else(|d| panic!("{d:#?}"))
}

fn hash8(v: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(v.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The observed form of a desired secret, as the swarm returns it (no data).
fn observed_secret(spec: &SecretSpec, id: &str) -> Secret {
    Secret { id: Some(id.into()), spec: Some(SecretSpec { data: None, ..spec.clone() }), ..Default::default() }
}

/// The secret actions of a plan, as `create NAME` / `remove NAME`.
fn secret_actions(p: &berth_plan::Plan) -> Vec<String> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateSecret { name, .. } => Some(format!("create {name}")),
            Action::RemoveSecret { name, .. } => Some(format!("remove {name}")),
            _ => None,
        })
        .collect()
}

fn observed_all(d: &Desired) -> Observed {
    let mut o = Observed::default();
    for (name, spec) in &d.secrets {
        o.secrets.insert(name.clone(), observed_secret(spec, &format!("id-{name}")));
    }
    o
}

#[test]
fn env_secret_is_content_addressed_and_generated_secret_has_a_fixed_name() {
    let d = convert(STACK, VALUE);
    let env_name = format!("st_db_password_{}", hash8(VALUE));
    let names: Vec<&str> = d.secrets.keys().map(String::as_str).collect();
    assert_eq!(names, [env_name.as_str(), "st_django_secret_key", "st_short_key"]);
    let env_spec = &d.secrets[&env_name];
    assert!(env_spec.data.is_some());
    assert!(!env_spec.labels.as_ref().unwrap().contains_key(LABEL_GENERATED));
    let gen_spec = &d.secrets["st_django_secret_key"];
    assert_eq!(gen_spec.data, None);
    let labels = gen_spec.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_GENERATED], "50");
    assert_eq!(labels["io.berth.stack"], "st");
    assert_eq!(labels["com.docker.stack.namespace"], "st");
    assert_eq!(d.secrets["st_short_key"].labels.as_ref().unwrap()["team"], "a");
    assert_eq!(d.secrets["st_short_key"].labels.as_ref().unwrap()[LABEL_GENERATED], "16");
    // The service refers to the final names.
    let refs: Vec<String> = d.services["st_web"]
        .task_template
        .as_ref()
        .unwrap()
        .container_spec
        .as_ref()
        .unwrap()
        .secrets
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| s.secret_name.clone().unwrap())
        .collect();
    assert_eq!(refs, [env_name, "st_django_secret_key".to_string()]);
}

#[test]
fn missing_generated_secret_is_created_without_data_and_rendered_as_generated() {
    let d = convert(STACK, VALUE);
    let p = plan(&d, &Observed::default(), &PlanOptions::default());
    let created: Vec<&SecretSpec> = p
        .actions
        .iter()
        .filter_map(|a| if let Action::CreateSecret { spec, .. } = a { Some(spec) } else { None })
        .collect();
    assert_eq!(created.len(), 3);
    let text = render_text(&p);
    assert!(text.contains("+ create secret st_django_secret_key (generated, 50 characters)"), "{text}");
    assert!(text.contains("+ create secret st_short_key (generated, 16 characters)"), "{text}");
    assert!(text.contains(&format!("+ create secret st_db_password_{} (sensitive, sha256:", hash8(VALUE))), "{text}");
}

#[test]
fn existing_generated_secret_is_never_updated_or_removed_while_declared() {
    let d = convert(STACK, VALUE);
    let obs = observed_all(&d);
    let p = plan(&d, &obs, &PlanOptions::default());
    assert_eq!(secret_actions(&p), Vec::<String>::new());
    assert!(p.notes.is_empty(), "{:#?}", p.notes);

    // A longer length or other labels in the file: the existing value is kept, with a note.
    let changed = convert(&STACK.replace("generate: 50", "generate: 64"), VALUE);
    let p = plan(&changed, &obs, &PlanOptions::default());
    assert_eq!(secret_actions(&p), Vec::<String>::new());
    assert_eq!(p.notes.len(), 1, "{:#?}", p.notes);
    assert!(
        p.notes[0].starts_with("note: secret st_django_secret_key was generated earlier and is kept"),
        "{}",
        p.notes[0]
    );
    assert!(!p.has_errors());
}

#[test]
fn rotating_the_env_value_creates_a_new_secret_and_removes_the_old_one() {
    let before = convert(STACK, VALUE);
    let obs = observed_all(&before);
    let after = convert(STACK, ROTATED);
    let p = plan(&after, &obs, &PlanOptions::default());
    let summary = secret_actions(&p);
    assert_eq!(
        summary,
        [format!("create st_db_password_{}", hash8(ROTATED)), format!("remove st_db_password_{}", hash8(VALUE)),]
    );
}

#[test]
fn undeclared_generated_secret_is_removed_like_other_secrets() {
    let before = convert(STACK, VALUE);
    let obs = observed_all(&before);
    let after =
        convert(&STACK.replace("  short_key:\n    labels: { team: a }\n    x-berth: { generate: 16 }\n", ""), VALUE);
    let p = plan(&after, &obs, &PlanOptions::default());
    let removes: Vec<&str> =
        p.actions.iter().filter(|a| matches!(a, Action::RemoveSecret { .. })).map(Action::name).collect();
    assert_eq!(removes, ["st_short_key"]);
    let p = plan(&after, &obs, &PlanOptions { prune: false, ..Default::default() });
    assert!(!p.actions.iter().any(|a| matches!(a, Action::RemoveSecret { .. })));
}

#[test]
fn foreign_secret_of_a_generated_name_is_used_as_it_is() {
    let d = convert(STACK, VALUE);
    let mut obs = observed_all(&d);
    let s = obs.secrets.get_mut("st_django_secret_key").unwrap();
    s.spec.as_mut().unwrap().labels = None;
    let p = plan(&d, &obs, &PlanOptions::default());
    assert_eq!(secret_actions(&p), Vec::<String>::new());
    assert!(p.notes.iter().any(|n| n.contains("using its value instead of generating one")), "{:#?}", p.notes);
}

#[test]
fn env_secret_value_never_appears_in_plan_text_or_json() {
    use base64_free::b64;
    let before = convert(STACK, VALUE);
    let after = convert(STACK, ROTATED);
    for p in [
        plan(&before, &Observed::default(), &PlanOptions::default()),
        plan(&after, &observed_all(&before), &PlanOptions::default()),
    ] {
        let text = render_text(&p);
        let json = serde_json::to_string_pretty(&p).unwrap();
        let debug_desired = format!("{:?}{:?}", p, after.secrets.keys().collect::<Vec<_>>());
        for v in [VALUE, ROTATED] {
            for out in [&text, &json, &debug_desired] {
                assert!(!out.contains(v), "value {v} leaked:\n{out}");
                assert!(!json.contains(&b64(v)), "base64 of {v} leaked:\n{json}");
                assert!(!text.contains(&b64(v)), "base64 of {v} leaked:\n{text}");
            }
        }
        assert!(json.contains("(sensitive, sha256:"), "{json}");
    }
    let p = plan(&before, &Observed::default(), &PlanOptions::default());
    let json: serde_json::Value = serde_json::to_value(&p).unwrap();
    let generated = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "st_django_secret_key")
        .expect("create action");
    assert_eq!(generated["spec"]["Labels"][LABEL_GENERATED], "50");
    assert!(generated["spec"].get("Data").is_none_or(serde_json::Value::is_null), "{generated}");
}

/// Tiny standard base64 encoder for the leak checks.
mod base64_free {
    pub fn b64(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
