//! Image builds through the Engine API against the real dockerd: `.dockerignore`, build args, target stage,
//! labels, skipping an unchanged build, git-commit tags, failing steps, and a push to a local registry
//! (Debian's `docker-registry`, started by the test on 127.0.0.1:5055). Stacks are named `t-build-<n>`; every
//! image a test builds is removed in a guard.

#[path = "common/images.rs"]
mod images;

use berth_engine::{BuildError, BuildOptions, BuildProgress, Engine, Target};
use berth_spec::load::{LoadOptions, load};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().expect("cannot run docker");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Removes every image of the given repositories (all tags).
struct RemoveImages(Vec<String>);

impl RemoveImages {
    /// Removes the images of `repos` now and again when dropped: an image left by an earlier run
    /// that was killed before its cleanup would make the build report "up to date" (seen once:
    /// `build_honours_dockerignore_args_target_and_labels` found `UpToDate` instead of a build).
    fn now_and_at_end(repos: Vec<String>) -> RemoveImages {
        let g = RemoveImages(repos);
        g.remove();
        g
    }

    fn remove(&self) {
        for repo in &self.0 {
            let (_, ids) = docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repo]);
            for r in ids.lines().filter(|l| !l.is_empty()) {
                docker(&["image", "rm", "-f", r]);
            }
        }
    }
}

impl Drop for RemoveImages {
    fn drop(&mut self) {
        self.remove();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Loads `compose.yml` of `dir`.
fn stack_of(dir: &Path) -> berth_spec::model::Stack {
    let opts = LoadOptions { files: vec![dir.join("compose.yml")], dotenv: false, ..Default::default() };
    match load(&opts) {
        Ok(l) => l.stack,
        Err(f) => panic!("load failed: {:?}", f.diagnostics),
    }
}

fn options(dir: &Path) -> BuildOptions {
    BuildOptions {
        base_dir: dir.to_path_buf(),
        docker_config: Some(dir.join("no-docker-config.json")),
        ..Default::default()
    }
}

/// Builds and collects the progress events as text.
fn build(
    engine: &Engine,
    stack: &str,
    dir: &Path,
    opts: &BuildOptions,
) -> (Result<BTreeMap<String, String>, BuildError>, Vec<String>) {
    let spec = stack_of(dir);
    let mut events = Vec::new();
    let result =
        rt().block_on(engine.build_images(stack, &spec, opts, |e: BuildProgress<'_>| events.push(format!("{e:?}"))));
    (result, events)
}

fn connect() -> Engine {
    rt().block_on(Engine::connect(&Target::Local)).expect("dockerd must be running")
}

/// The file list of an image (via `docker create` + `docker export`).
fn image_files(image: &str) -> Vec<String> {
    let (ok, id) = docker(&["create", image]);
    assert!(ok, "docker create {image}: {id}");
    let id = id.trim().to_string();
    let out = Command::new("sh").arg("-c").arg(format!("docker export {id} | tar -t")).output().unwrap();
    docker(&["rm", "-f", &id]);
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn image_json(image: &str, format: &str) -> String {
    let (ok, out) = docker(&["image", "inspect", "-f", format, image]);
    assert!(ok, "inspect {image}: {out}");
    out.trim().to_string()
}

const MULTI_STAGE: &str = "FROM berth-test/app:v1 AS base\n\
ARG GREETING=none\n\
ENV GREETING=$GREETING\n\
COPY . /ctx/\n\
FROM base AS wanted\n\
ENV STAGE=wanted\n\
FROM base AS last\n\
ENV STAGE=last\n";

#[test]
fn build_honours_dockerignore_args_target_and_labels() {
    images::ensure();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "app/Dockerfile", MULTI_STAGE);
    write(d, "app/.dockerignore", "secret.txt\nlogs\n!logs/keep.log\n**/*.tmp\n");
    write(d, "app/secret.txt", "do not ship");
    write(d, "app/kept.txt", "ship me");
    write(d, "app/logs/a.log", "no");
    write(d, "app/logs/keep.log", "yes");
    write(d, "app/sub/x.tmp", "no");
    write(d, "app/sub/x.txt", "yes");
    write(
        d,
        "compose.yml",
        "services:\n  web:\n    build:\n      context: ./app\n      args: { GREETING: hello }\n      target: wanted\n      labels: { org.example.team: blue }\n",
    );
    let _cleanup = RemoveImages::now_and_at_end(vec!["t-build-1/web".into()]);
    let engine = connect();
    let (result, events) = build(&engine, "t-build-1", d, &options(d));
    let images = result.unwrap_or_else(|e| panic!("build failed: {e}\n{events:#?}"));
    let image = &images["web"];
    assert!(image.starts_with("t-build-1/web:"), "{image}");
    assert!(events.iter().any(|e| e.starts_with("Building")), "{events:#?}");
    assert!(events.iter().any(|e| e.contains("Step ")), "no builder output: {events:#?}");

    let files = image_files(image);
    let has = |p: &str| files.iter().any(|f| f.trim_end_matches('/') == p);
    assert!(has("ctx/kept.txt"), "{files:?}");
    assert!(has("ctx/logs/keep.log"), "exception re-includes: {files:?}");
    assert!(has("ctx/sub/x.txt"), "{files:?}");
    assert!(!has("ctx/secret.txt"), "ignored file shipped: {files:?}");
    assert!(!has("ctx/logs/a.log"), "{files:?}");
    assert!(!has("ctx/sub/x.tmp"), "{files:?}");

    let env = image_json(image, "{{json .Config.Env}}");
    assert!(env.contains("GREETING=hello"), "build arg did not reach the build: {env}");
    assert!(env.contains("STAGE=wanted"), "target stage not used: {env}");
    let labels = image_json(image, "{{json .Config.Labels}}");
    assert!(labels.contains(r#""org.example.team":"blue""#), "{labels}");
    assert!(labels.contains(r#""io.berth.stack":"t-build-1""#), "{labels}");
}

#[test]
fn unchanged_context_is_not_rebuilt_a_change_gets_a_new_tag_and_image_sharers_follow() {
    images::ensure();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "Dockerfile", "FROM berth-test/app:v1\nCOPY page.txt /page.txt\n");
    write(d, "page.txt", "one");
    write(
        d,
        "compose.yml",
        "services:\n  api:\n    image: t-build-2/custom\n    build: .\n  worker:\n    image: t-build-2/custom\n",
    );
    let _cleanup = RemoveImages::now_and_at_end(vec!["t-build-2/custom".into()]);
    let engine = connect();
    let (first, events) = build(&engine, "t-build-2", d, &options(d));
    let first = first.unwrap_or_else(|e| panic!("{e}: {events:#?}"));
    assert!(first["api"].starts_with("t-build-2/custom:"), "{first:?}");
    let tag = first["api"].rsplit(':').next().unwrap();
    assert_eq!(tag.len(), 12, "content-hash tag expected outside git: {tag}");
    assert_eq!(first["worker"], first["api"], "a service sharing the built image: {first:?}");

    let (second, events) = build(&engine, "t-build-2", d, &options(d));
    assert_eq!(second.unwrap(), first);
    assert!(events.iter().all(|e| !e.starts_with("Building")), "rebuilt: {events:#?}");
    assert!(events.iter().any(|e| e.starts_with("UpToDate")), "{events:#?}");

    write(d, "page.txt", "two");
    let (third, events) = build(&engine, "t-build-2", d, &options(d));
    let third = third.unwrap();
    assert_ne!(third["api"], first["api"]);
    assert!(events.iter().any(|e| e.starts_with("Building")), "{events:#?}");
}

#[test]
fn clean_git_context_is_tagged_with_the_commit() {
    images::ensure();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "Dockerfile", "FROM berth-test/app:v1\nCOPY page.txt /page.txt\n");
    write(d, "page.txt", "one");
    write(d, "compose.yml", "services:\n  web:\n    build: .\n");
    let git = |args: &[&str]| {
        let out = Command::new("git").arg("-C").arg(d).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init"]);
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let _cleanup = RemoveImages::now_and_at_end(vec!["t-build-3/web".into()]);
    let engine = connect();
    let (result, events) = build(&engine, "t-build-3", d, &options(d));
    assert_eq!(result.unwrap_or_else(|e| panic!("{e}: {events:#?}"))["web"], format!("t-build-3/web:{commit}"));

    // A modified file makes the tree dirty: content hash instead of the commit.
    write(d, "page.txt", "changed");
    let (result, _) = build(&engine, "t-build-3", d, &options(d));
    let image = result.unwrap()["web"].clone();
    assert!(!image.ends_with(&commit), "{image}");
}

#[test]
fn failing_step_is_named_in_the_error() {
    images::ensure();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "Dockerfile", "FROM berth-test/app:v1\nRUN [\"/app\", \"exit\", \"3\"]\n");
    write(d, "compose.yml", "services:\n  job:\n    build: .\n");
    let _cleanup = RemoveImages::now_and_at_end(vec!["t-build-4/job".into()]);
    let engine = connect();
    let (result, events) = build(&engine, "t-build-4", d, &options(d));
    match result {
        Err(e @ BuildError::Build { .. }) => {
            let BuildError::Build { ref service, ref step, ref message, ref output, .. } = e else { unreachable!() };
            assert_eq!(service, "job");
            assert!(step.as_deref().is_some_and(|s| s.contains("RUN") && s.contains("exit")), "{step:?}");
            assert!(message.contains("non-zero code: 3"), "{message}");
            assert!(output.iter().any(|l| l.contains("exiting with 3")), "{output:?}");
            assert!(e.to_string().contains("at Step 2/"), "{e}");
            assert!(e.hint().is_some());
        }
        other => panic!("expected a build error, got {other:?}: {events:#?}"),
    }
}

#[test]
fn missing_context_or_dockerfile_is_a_context_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "compose.yml", "services:\n  a:\n    build: ./nowhere\n");
    let engine = connect();
    let (result, _) = build(&engine, "t-build-5", d, &options(d));
    match result {
        Err(BuildError::Context { service, message }) => {
            assert_eq!(service, "a");
            assert!(message.contains("nowhere"), "{message}");
        }
        other => panic!("expected a context error, got {other:?}"),
    }
    std::fs::create_dir(d.join("ctx")).unwrap();
    write(d, "compose.yml", "services:\n  a:\n    build: { context: ./ctx, dockerfile: Missing.Dockerfile }\n");
    let (result, _) = build(&engine, "t-build-5", d, &options(d));
    assert!(
        matches!(&result, Err(BuildError::Context { message, .. }) if message.contains("Missing.Dockerfile")),
        "{result:?}"
    );
}

/// A `docker-registry` on 127.0.0.1:5055 with storage in a temp dir, killed on drop.
struct Registry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    const ADDR: &str = "127.0.0.1:5055";

    fn start() -> Registry {
        let bin = ["/usr/bin/docker-registry", "/usr/local/bin/registry"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("docker-registry is not installed (scripts/host-setup.sh installs it)");
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {}\n",
            dir.path().join("data").display(),
            Self::ADDR
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("cannot start docker-registry");
        let registry = Registry { child, _dir: dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(Self::ADDR).is_ok() {
                return registry;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("docker-registry did not listen on {}", Self::ADDR);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn push_to_a_local_registry_and_skip_when_already_there() {
    images::ensure();
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "Dockerfile", "FROM berth-test/app:v1\nCOPY page.txt /page.txt\n");
    write(d, "page.txt", &format!("pushed {}", std::process::id()));
    write(d, "compose.yml", "services:\n  web:\n    build: .\n");
    let repo = format!("{}/t-build-6/web", Registry::ADDR);
    let _cleanup = RemoveImages::now_and_at_end(vec![repo.clone()]);
    let engine = connect();
    let opts = BuildOptions { registry: Some(format!("{}/t-build-6", Registry::ADDR)), ..options(d) };
    let (result, events) = build(&engine, "t-build-6", d, &opts);
    let image = result.unwrap_or_else(|e| panic!("{e}: {events:#?}"))["web"].clone();
    assert!(image.starts_with(&format!("{repo}:")), "{image}");
    assert!(events.iter().any(|e| e.starts_with("Pushed")), "{events:#?}");
    assert!(events.iter().any(|e| e.starts_with("Pushing")), "{events:#?}");

    // The registry serves it: remove the local copy and pull it back.
    let (ok, out) = docker(&["image", "rm", &image]);
    assert!(ok, "{out}");
    let (ok, out) = docker(&["pull", "-q", &image]);
    assert!(ok, "pull from the local registry failed: {out}");

    // Unchanged: neither built nor pushed again.
    let (result, events) = build(&engine, "t-build-6", d, &opts);
    assert_eq!(result.unwrap()["web"], image);
    assert!(events.iter().any(|e| e.starts_with("UpToDate")), "{events:#?}");
    assert!(events.iter().any(|e| e.starts_with("AlreadyPushed")), "{events:#?}");
    drop(registry);
}

/// Regression: every berth binary built its own `berth/edge:<sha>` image (730 MB each for a debug build)
/// and none was ever removed; a machine that ran the tests a few times filled its disk and the next test
/// run failed with "no space left on device". Building a new edge image now removes the unused old ones.
#[test]
fn new_edge_image_removes_unused_old_ones_and_keeps_one_a_container_uses() {
    use berth_engine::edge_image::{EDGE_REPOSITORY, edge_image_tag};
    let dir = tempfile::tempdir().unwrap();
    let binaries: Vec<std::path::PathBuf> = (0..3)
        .map(|i| {
            let p = dir.path().join(format!("exe{i}"));
            let mut bytes = std::fs::read("/bin/true").unwrap();
            bytes.extend_from_slice(format!("berth-test-edge-image-{i}-{}", std::process::id()).as_bytes());
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
    let tags: Vec<String> = binaries.iter().map(|b| edge_image_tag(b).unwrap()).collect();
    assert!(tags.iter().all(|t| t.starts_with(&format!("{EDGE_REPOSITORY}:"))));
    let _cleanup = RemoveImages::now_and_at_end(tags.clone());
    let engine = connect();
    let exists = |t: &str| docker(&["image", "inspect", t]).0;
    assert!(rt().block_on(engine.ensure_edge_image(&tags[0], &binaries[0])).unwrap());
    assert!(!rt().block_on(engine.ensure_edge_image(&tags[0], &binaries[0])).unwrap(), "same binary rebuilt");
    let (ok, container) = docker(&["create", &tags[0]]);
    assert!(ok, "{container}");
    assert!(rt().block_on(engine.ensure_edge_image(&tags[1], &binaries[1])).unwrap());
    assert!(exists(&tags[0]), "an edge image a container uses was removed");
    docker(&["rm", "-f", container.trim()]);
    assert!(rt().block_on(engine.ensure_edge_image(&tags[2], &binaries[2])).unwrap());
    assert!(!exists(&tags[0]) && !exists(&tags[1]), "unused old edge images were kept");
    assert!(exists(&tags[2]));
}
