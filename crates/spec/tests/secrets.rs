//! Secrets with an `x-berth` value source: `env:` values are loaded for convert but never shown
//! (`berth config` output, `Debug`), `generate:` secrets load without a file, a missing variable is
//! an error at the `env:` with a hint.

use berth_spec::env::Env;
use berth_spec::load::{LoadOptions, load, load_documents};
use berth_spec::render;
use std::path::{Path, PathBuf};

const VALUE: &str = "s3cr3t-Pa55word-xyzzy";

const STACK: &str = "services:
  web:
    image: nginx
    secrets: [db_password, django_secret_key]
secrets:
  db_password:
    x-berth: { env: DB_PASSWORD }
  django_secret_key:
    x-berth: { generate: 50 }
";

fn docs(text: &str) -> Vec<(PathBuf, String)> {
    vec![(PathBuf::from("stack.yml"), text.to_string())]
}

#[test]
fn env_secret_value_is_loaded_but_never_rendered_or_debug_printed() {
    let env = Env::from_pairs([("DB_PASSWORD".to_string(), VALUE.to_string())]);
    let loaded = load_documents(&docs(STACK), Path::new("/w"), &env).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    let pw = &loaded.stack.secrets["db_password"];
    assert_eq!(pw.value.as_ref().map(|v| v.expose()), Some(VALUE.as_bytes()));
    assert_eq!(pw.file, "", "an x-berth secret has no file");
    let generated = &loaded.stack.secrets["django_secret_key"];
    assert_eq!(generated.value, None);
    assert_eq!(generated.file, "");

    let yaml = render::to_yaml(&loaded.stack);
    let json = render::to_json(&loaded.stack);
    let debug = format!("{loaded:?}");
    let pretty = format!("{loaded:#?}");
    for (what, out) in [("yaml", &yaml), ("json", &json), ("debug", &debug), ("pretty debug", &pretty)] {
        assert!(!out.contains(VALUE), "{what} output contains the secret value:\n{out}");
    }
    assert!(yaml.contains("env: DB_PASSWORD"), "render keeps the block as written:\n{yaml}");
    assert!(yaml.contains("generate: 50"), "{yaml}");
    assert!(debug.contains("redacted"), "{debug}");
}

#[test]
fn env_secret_value_comes_from_env_files_and_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stack.yml");
    std::fs::write(&file, STACK).unwrap();
    std::fs::write(dir.path().join(".env"), "DB_PASSWORD=from-dotenv\n").unwrap();
    let o = LoadOptions { files: vec![file.clone()], env_files: vec![], environ: vec![], dotenv: true };
    let loaded = load(&o).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    assert_eq!(loaded.stack.secrets["db_password"].value.as_ref().unwrap().expose(), b"from-dotenv");

    let extra = dir.path().join("prod.env");
    std::fs::write(&extra, "DB_PASSWORD=from-env-file\n").unwrap();
    let o = LoadOptions { files: vec![file.clone()], env_files: vec![extra], environ: vec![], dotenv: true };
    let loaded = load(&o).unwrap();
    assert_eq!(loaded.stack.secrets["db_password"].value.as_ref().unwrap().expose(), b"from-env-file");

    let o = LoadOptions {
        files: vec![file],
        env_files: vec![],
        environ: vec![("DB_PASSWORD".into(), "from-process".into())],
        dotenv: true,
    };
    assert_eq!(load(&o).unwrap().stack.secrets["db_password"].value.as_ref().unwrap().expose(), b"from-process");
}

#[test]
fn missing_env_variable_is_an_error_at_the_env_key() {
    let err = load_documents(&docs(STACK), Path::new("/w"), &Env::new()).expect_err("must fail");
    let errors: Vec<_> = err.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let d = errors[0];
    assert_eq!(d.path, "secrets.db_password.x-berth.env");
    assert!(d.message.contains("`db_password`") && d.message.contains("`DB_PASSWORD`"), "{}", d.message);
    let pos = d.pos.expect("position");
    assert_eq!((pos.line, pos.col), (7, 21));
    assert!(d.hint.as_deref().unwrap().contains("--env-file"));

    let env = Env::from_pairs([("DB_PASSWORD".to_string(), String::new())]);
    let err = load_documents(&docs(STACK), Path::new("/w"), &env).expect_err("empty value must fail");
    assert!(err.diagnostics[0].message.contains("which is empty"), "{:#?}", err.diagnostics);
}

#[test]
fn secret_validation_errors_stop_the_load() {
    let text = "services: {}\nsecrets:\n  k:\n    file: ./k\n    x-berth: { generate: 3 }\n";
    let err = load_documents(&docs(text), Path::new("/w"), &Env::new()).expect_err("must fail");
    let msgs: Vec<&str> = err.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(msgs.iter().any(|m| m.contains("out of range")), "{msgs:?}");
}
