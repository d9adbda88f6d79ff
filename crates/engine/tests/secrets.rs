//! Generated (`x-berth: { generate: N }`) and environment (`x-berth: { env: NAME }`) secrets
//! against the real dockerd (swarm mode): the generated value is made once by berth (50 characters
//! `[A-Za-z0-9]`) and survives redeploys, a change to another service and a new task of its own
//! service; a changed variable rotates the env secret (new name, service updated, old one removed
//! after the next successful deploy). Values are read back through the test app's `/file/...`
//! route on a host-mode published port (18431, used by no other test). Stack `t-secrets-1`.

#[path = "common/stack.rs"]
mod stack;
use stack::{Cleanup, docker};

#[path = "common/images.rs"]
mod images;

use berth_engine::{DeployOptions, Engine, Event, Target};
use berth_plan::Desired;
use berth_plan::convert::{ConvertOptions, desired};
use berth_spec::load::{LoadOptions, load};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const STACK: &str = "t-secrets-1";
const PORT: u16 = 18431;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The stack: `web` reads both secrets and publishes the app on [`PORT`] (host mode, so updates
/// stop the old task first); `other` is a second service to change.
fn stack_desired(dir: &Path, web_env: &str, other_env: &str, db_password: &str) -> Desired {
    let text = format!(
        "services:
  web:
    image: {image}
    environment: [\"{web_env}\"]
    secrets: [gen_key, db_password]
    stop_grace_period: 1s
    ports: [{{ target: 8080, published: {PORT}, mode: host }}]
    deploy:
      update_config: {{ delay: 0s, order: stop-first }}
      restart_policy: {{ delay: 1s }}
  other:
    image: {image}
    environment: [\"{other_env}\"]
    stop_grace_period: 1s
    deploy:
      update_config: {{ delay: 0s, order: start-first }}
secrets:
  gen_key:
    x-berth: {{ generate: 50 }}
  db_password:
    x-berth: {{ env: DB_PASSWORD }}
",
        image = images::NO_HEALTH
    );
    std::fs::write(dir.join("compose.yaml"), text).unwrap();
    let opts = LoadOptions {
        files: vec![dir.join("compose.yaml")],
        env_files: Vec::new(),
        environ: vec![("DB_PASSWORD".into(), db_password.into())],
        dotenv: false,
    };
    let loaded = load(&opts).unwrap_or_else(|f| panic!("stack does not load: {:?}", f.diagnostics));
    desired(&loaded.stack, STACK, &ConvertOptions { content_addressed: true }, &|p| std::fs::read(p))
        .unwrap_or_else(|d| panic!("stack does not convert: {d:?}"))
}

fn opts() -> DeployOptions {
    DeployOptions { timeout: Duration::from_secs(90), ..Default::default() }
}

async fn deploy(engine: &Engine, d: Desired) -> (berth_engine::DeployReport, String) {
    let mut events: Vec<Event> = Vec::new();
    let r = engine.deploy(d, opts(), &mut |e| events.push(e)).await.unwrap_or_else(|e| panic!("deploy failed: {e}"));
    (r, format!("{events:?}"))
}

/// `GET /PATH` on the published port: `(status, body)`, or `None` if nothing answers.
fn get(path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], PORT).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The content of `/run/secrets/NAME` in the running `web` task (waits for the app to answer
/// with `expect_env` as its `A` variable, i.e. the task of the latest spec).
fn secret_file(name: &str, web_env_value: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some((200, v)) = get("/env/A")
            && v.trim() == web_env_value
            && let Some((200, body)) = get(&format!("/file/run/secrets/{name}"))
        {
            return body;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "web never served /run/secrets/{name}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn secrets_of() -> Vec<String> {
    let (_, out) = docker(&["secret", "ls", "--format", "{{.Name}}"]);
    let p = format!("{STACK}_");
    let mut v: Vec<String> = out.lines().filter(|n| n.starts_with(&p)).map(str::to_string).collect();
    v.sort();
    v
}

fn web_secret_names() -> String {
    let f = "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}";
    docker(&["service", "inspect", "-f", f, &format!("{STACK}_web")]).1.trim().to_string()
}

#[test]
fn generated_secret_is_kept_and_env_secret_rotates() {
    images::ensure();
    let _guard = Cleanup::new(STACK);
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let engine = Engine::connect(&Target::Local).await.unwrap();

        // First deploy: the generated secret is made, the env secret has the variable's value.
        let d1 = stack_desired(dir.path(), "A=1", "B=1", "pw-one");
        let env_one = d1.secrets.keys().find(|n| n.contains("db_password")).unwrap().clone();
        let (_, events) = deploy(&engine, d1).await;
        let generated = secret_file("gen_key", "1");
        assert_eq!(generated.len(), 50, "{generated:?}");
        assert!(generated.bytes().all(|b| b.is_ascii_alphanumeric()), "{generated:?}");
        assert_eq!(secret_file("db_password", "1"), "pw-one");
        assert!(!events.contains(&generated) && !events.contains("pw-one"), "a value is in the deploy events");
        let (_, labels) = docker(&["secret", "inspect", "-f", "{{json .Spec.Labels}}", &format!("{STACK}_gen_key")]);
        assert!(labels.contains("\"io.berth.generated\":\"50\""), "{labels}");
        assert_eq!(secrets_of(), vec![env_one.clone(), format!("{STACK}_gen_key")]);

        // No-op redeploy, then a change to another service: the value stays.
        let (r, _) = deploy(&engine, stack_desired(dir.path(), "A=1", "B=1", "pw-one")).await;
        assert!(r.up_to_date, "a redeploy of the same files changes nothing: {r:?}");
        deploy(&engine, stack_desired(dir.path(), "A=1", "B=2", "pw-one")).await;
        assert_eq!(secret_file("gen_key", "1"), generated);

        // A new task of web itself (its env changed) reads the same generated value.
        deploy(&engine, stack_desired(dir.path(), "A=2", "B=2", "pw-one")).await;
        assert_eq!(secret_file("gen_key", "2"), generated);
        assert_eq!(secret_file("db_password", "2"), "pw-one");

        // A new DB_PASSWORD: a new env secret, web switched to it; the old one stays until the
        // next successful deploy.
        let d = stack_desired(dir.path(), "A=2", "B=2", "pw-two");
        let env_two = d.secrets.keys().find(|n| n.contains("db_password")).unwrap().clone();
        assert_ne!(env_two, env_one);
        let (_, events) = deploy(&engine, d).await;
        assert!(!events.contains("pw-two") && !events.contains(&generated), "a value is in the deploy events");
        assert_eq!(secret_file("db_password", "2"), "pw-two");
        assert!(web_secret_names().contains(&env_two), "{}", web_secret_names());
        assert!(secrets_of().contains(&env_one), "the old version stays until the next successful deploy");
        assert_eq!(secret_file("gen_key", "2"), generated);

        let (r, _) = deploy(&engine, stack_desired(dir.path(), "A=2", "B=3", "pw-two")).await;
        assert_eq!(secrets_of(), vec![env_two.clone(), format!("{STACK}_gen_key")]);
        assert!(r.removed.iter().any(|x| x == &format!("secret {env_one}")), "{:?}", r.removed);
        assert_eq!(secret_file("gen_key", "2"), generated);
    });
}
