//! Images through the Engine API: `build:` services are built with the daemon's (legacy) builder from a
//! context tarred here, tagged by git commit or content hash, skipped when that tag exists, and pushed when a
//! registry is involved.
//!
//! - **Context**: the `build.context` directory (relative to [`BuildOptions::base_dir`]), minus what
//!   `.dockerignore` excludes ([`DockerIgnore`], Docker's pattern rules: `*`, `?`, `[...]`, `**`, `!` exceptions,
//!   a pattern matching a parent directory excludes everything below it). The Dockerfile and `.dockerignore` are
//!   always sent, like `docker build` does; a Dockerfile outside the context is added as `.dockerfile.berth`.
//! - **Tag** ([`image_tag`]): the short git commit when every file of the context is committed and unmodified
//!   in a git work tree (plus `-<6 hex>` of the build settings when `dockerfile`/`args`/`target`/`labels`/...
//!   are set), otherwise 12 hex of a SHA-256 over the context files (path, mode, content) and the build settings.
//! - **Repository** ([`image_repository`]): the service's `image:` without its tag; `<registry>/<name>` when
//!   `x-berth.registry` is set and the image is not already under it; `<stack>/<service>` without either.
//! - **Push**: when a registry is set or the repository names a registry host; auth from the Docker CLI's
//!   `config.json` (`auths`, `credHelpers`/`credsStore` through `docker-credential-*`). An image the registry
//!   already has is not pushed again.

use crate::Engine;
use crate::registry_auth::RegistryAuths;
use berth_plan::registry_auth::registry_of;
use berth_spec::model::{BuildConfig, Stack};
use bollard::query_parameters::{BuildImageOptions, PushImageOptionsBuilder};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// How [`Engine::build_images`] builds.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Directory relative `build.context` paths resolve against (the first compose file's directory).
    pub base_dir: PathBuf,
    /// `x-berth.registry`: repository prefix built images are pushed to.
    pub registry: Option<String>,
    /// Values for build args written without `=value` (the CLI passes the process environment).
    pub environ: Vec<(String, String)>,
    /// The Docker CLI config file for registry auth; `None`: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Build without the daemon's layer cache.
    pub no_cache: bool,
    /// Never push, even when a registry is involved.
    pub no_push: bool,
    /// Registry credentials to use instead of reading `docker_config` (e.g. with a provider's
    /// token added: ECR).
    pub auths: Option<RegistryAuths>,
    /// Service → repository (with its registry host) to push to, winning over `registry`: a
    /// provider's own repositories (an AWS target's ECR repository `<stack>/<service>`).
    pub repositories: BTreeMap<String, String>,
}

/// One progress event of [`Engine::build_images`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildProgress<'a> {
    /// The image `image` already exists: no build.
    UpToDate { service: &'a str, image: &'a str },
    /// Building `image` starts; `files`/`bytes`: the context sent.
    Building { service: &'a str, image: &'a str, files: usize, bytes: u64 },
    /// One line of builder output (`Step 2/5 : COPY . /app`, a `RUN`'s output, ...).
    Output { service: &'a str, line: &'a str },
    /// `image` was built.
    Built { service: &'a str, image: &'a str },
    /// The registry already has `image`: no push.
    AlreadyPushed { service: &'a str, image: &'a str },
    /// One push status line (`abc123: Pushing 3.2MB/10MB`, `v1: digest: sha256:...`).
    Pushing { service: &'a str, image: &'a str, line: &'a str },
    /// `image` was pushed.
    Pushed { service: &'a str, image: &'a str },
}

/// Why building or pushing an image failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The build context (or Dockerfile) cannot be read or is not supported.
    #[error("services.{service}.build: {message}")]
    Context { service: String, message: String },
    /// The builder failed; `step` is the last `Step N/M : ...` line seen.
    #[error("building {image} for service {service} failed{}: {message}", step.as_ref().map(|s| format!(" at {s}")).unwrap_or_default())]
    Build {
        service: String,
        image: String,
        step: Option<String>,
        message: String,
        /// The last lines of builder output before the failure.
        output: Vec<String>,
    },
    /// Pushing failed.
    #[error("pushing {image} for service {service} failed: {message}")]
    Push { service: String, image: String, message: String },
    /// Another Engine API call failed.
    #[error("Docker API call `{call}` failed: {source}")]
    Api {
        call: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
}

impl BuildError {
    /// What the user can do about it, one line.
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildError::Context { .. } => Some("check `build.context` and `build.dockerfile` of the service".into()),
            BuildError::Build { .. } => {
                Some("fix the Dockerfile step above; `docker build` of the same context shows the same error".into())
            }
            BuildError::Push { message, .. } if message.contains("denied") || message.contains("unauthorized") => {
                Some("log in to the registry (`docker login HOST`) so ~/.docker/config.json holds credentials".into())
            }
            BuildError::Push { .. } => Some("check that the registry is reachable and the image name is right".into()),
            BuildError::Api { .. } => None,
        }
    }
}

/// Services without `build:` that name the same `image:` as a built one run the built image too.
fn share_built_images(spec: &Stack, out: &mut BTreeMap<String, String>) {
    for (service, svc) in &spec.services {
        if out.contains_key(service) || svc.image.is_empty() {
            continue;
        }
        let built = spec.services.iter().find(|(name, other)| other.image == svc.image && out.contains_key(*name));
        if let Some((name, _)) = built {
            let image = out[name].clone();
            out.insert(service.clone(), image);
        }
    }
}

/// The image each service will run once [`Engine::build_images`] has run — the same tags
/// (content hash or git commit), computed from the build contexts without building or pushing.
/// `berth plan` uses it so that a built stack that is up to date plans nothing.
pub fn planned_images(stack: &str, spec: &Stack, opts: &BuildOptions) -> Result<BTreeMap<String, String>, BuildError> {
    let mut out = BTreeMap::new();
    for (service, svc) in &spec.services {
        if svc.build == BuildConfig::default() {
            continue;
        }
        let job = BuildJob::prepare(stack, service, &svc.image, &svc.build, opts)?;
        out.insert(service.clone(), job.image_ref());
    }
    share_built_images(spec, &mut out);
    Ok(out)
}

impl Engine {
    /// Builds the image of every service with `build:` (sorted by service name) and returns service → image
    /// reference (`repository:tag`) for the deploy to use instead of the file's `image:` (services without
    /// `build:` whose `image:` equals a built service's `image:` are in the map too). A build whose tag
    /// already exists is skipped; images are pushed when a registry is involved (see the module doc).
    pub async fn build_images<F>(
        &self,
        stack: &str,
        spec: &Stack,
        opts: &BuildOptions,
        mut on_progress: F,
    ) -> Result<BTreeMap<String, String>, BuildError>
    where
        F: FnMut(BuildProgress<'_>) + Send,
    {
        let auths = opts.auths.clone().unwrap_or_else(|| RegistryAuths::load(opts.docker_config.clone()));
        let mut out = BTreeMap::new();
        for (service, svc) in &spec.services {
            if svc.build == BuildConfig::default() {
                continue;
            }
            let job = BuildJob::prepare(stack, service, &svc.image, &svc.build, opts)?;
            let image = job.image_ref();
            let exists = self.docker().inspect_image(&image).await.is_ok();
            if exists && !opts.no_cache {
                on_progress(BuildProgress::UpToDate { service, image: &image });
            } else {
                self.run_build(&job, &image, &auths, opts.no_cache, &mut on_progress).await?;
            }
            if job.push && !opts.no_push {
                self.push(&job, &image, &auths, &mut on_progress).await?;
            }
            out.insert(service.clone(), image);
        }
        share_built_images(spec, &mut out);
        Ok(out)
    }

    async fn run_build<F>(
        &self,
        job: &BuildJob,
        image: &str,
        auths: &RegistryAuths,
        no_cache: bool,
        on_progress: &mut F,
    ) -> Result<(), BuildError>
    where
        F: FnMut(BuildProgress<'_>) + Send,
    {
        let service = job.service.as_str();
        let bytes: u64 = job.files.iter().map(|f| f.size).sum();
        on_progress(BuildProgress::Building { service, image, files: job.files.len(), bytes });
        let body = {
            let job_files = job.files.clone();
            let extra = job.extra_dockerfile.clone();
            let ctx_err = |message: String| BuildError::Context { service: service.into(), message };
            // The tar goes through an unlinked temp file, so memory stays small whatever the context's size.
            let file = tokio::task::spawn_blocking(move || -> Result<std::fs::File, String> {
                let nanos =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
                let path = std::env::temp_dir().join(format!("berth-context-{}-{nanos}.tar", std::process::id()));
                let mut file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                let _ = std::fs::remove_file(&path);
                let mut w = std::io::BufWriter::with_capacity(256 * 1024, &mut file);
                write_context_tar(&mut w, &job_files, extra.as_ref())?;
                std::io::Write::flush(&mut w).map_err(|e| e.to_string())?;
                drop(w);
                std::io::Seek::rewind(&mut file).map_err(|e| e.to_string())?;
                Ok(file)
            })
            .await
            .map_err(|e| ctx_err(e.to_string()))?
            .map_err(ctx_err)?;
            let chunks = file_chunks(file);
            bollard::body_try_stream(chunks)
        };
        let build = &job.build;
        let mut options = BuildImageOptions {
            dockerfile: job.dockerfile_in_tar.clone(),
            t: Some(image.to_string()),
            rm: true,
            forcerm: true,
            nocache: no_cache,
            target: build.target.clone(),
            ..Default::default()
        };
        if !job.args.is_empty() {
            options.buildargs = Some(job.args.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        }
        let mut labels: HashMap<String, String> = build.labels.clone().into_iter().collect();
        labels.insert("io.berth.stack".into(), job.stack.clone());
        labels.insert("io.berth.service".into(), job.service.clone());
        options.labels = Some(labels);
        if !build.cache_from.is_empty() {
            options.cachefrom = Some(build.cache_from.clone());
        }
        if !build.network.is_empty() {
            options.networkmode = Some(build.network.clone());
        }
        if let Some(host) = build.extra_hosts.first() {
            options.extrahosts = Some(host.clone());
        }
        let creds = auths.all();
        let mut stream = self.docker().build_image(options, Some(creds), Some(body));
        let mut step: Option<String> = None;
        let mut tail: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                            if line.starts_with("Step ") {
                                step = Some(line.to_string());
                            }
                            if tail.len() == 10 {
                                tail.remove(0);
                            }
                            tail.push(line.to_string());
                            on_progress(BuildProgress::Output { service, line });
                        }
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(BuildError::Build {
                        service: service.into(),
                        image: image.into(),
                        step,
                        message: error.trim_end().to_string(),
                        output: tail,
                    });
                }
                Err(source) => {
                    return Err(BuildError::Build {
                        service: service.into(),
                        image: image.into(),
                        step,
                        message: source.to_string(),
                        output: tail,
                    });
                }
            }
        }
        if self.docker().inspect_image(image).await.is_err() {
            return Err(BuildError::Build {
                service: service.into(),
                image: image.into(),
                step,
                message: "the builder finished without producing the image".into(),
                output: tail,
            });
        }
        on_progress(BuildProgress::Built { service, image });
        Ok(())
    }

    async fn push<F>(
        &self,
        job: &BuildJob,
        image: &str,
        auths: &RegistryAuths,
        on_progress: &mut F,
    ) -> Result<(), BuildError>
    where
        F: FnMut(BuildProgress<'_>) + Send,
    {
        let service = job.service.as_str();
        let host = registry_of(&job.repository);
        let creds = auths.for_host(host);
        if self.docker().inspect_registry_image(image, creds.clone()).await.is_ok() {
            on_progress(BuildProgress::AlreadyPushed { service, image });
            return Ok(());
        }
        let options = PushImageOptionsBuilder::new().tag(&job.tag).build();
        let mut stream = self.docker().push_image(&job.repository, Some(options), creds);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    let Some(status) = info.status.as_deref() else { continue };
                    let line = match &info.progress_detail {
                        Some(p) if p.current.is_some() => {
                            format!("{status} {}/{}", p.current.unwrap_or(0), p.total.unwrap_or(0))
                        }
                        _ => status.to_string(),
                    };
                    on_progress(BuildProgress::Pushing { service, image, line: &line });
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(BuildError::Push { service: service.into(), image: image.into(), message: error });
                }
                Err(source) => {
                    return Err(BuildError::Push {
                        service: service.into(),
                        image: image.into(),
                        message: source.to_string(),
                    });
                }
            }
        }
        on_progress(BuildProgress::Pushed { service, image });
        Ok(())
    }
}

/// Everything needed to build one service's image, computed without the engine.
#[derive(Debug, Clone)]
struct BuildJob {
    stack: String,
    service: String,
    build: BuildConfig,
    /// Build args with values (args without a value and not in the environment are left out).
    args: BTreeMap<String, String>,
    files: Vec<ContextFile>,
    /// A Dockerfile outside the context: (name in the tar, path on disk).
    extra_dockerfile: Option<(String, PathBuf)>,
    dockerfile_in_tar: String,
    repository: String,
    tag: String,
    push: bool,
}

impl BuildJob {
    fn prepare(
        stack: &str,
        service: &str,
        image: &str,
        build: &BuildConfig,
        opts: &BuildOptions,
    ) -> Result<BuildJob, BuildError> {
        let err = |message: String| BuildError::Context { service: service.into(), message };
        let context = if build.context.is_empty() { "." } else { build.context.as_str() };
        if context.contains("://") || context.starts_with("git@") {
            return Err(err(format!("remote build context `{context}` is not supported; use a local directory")));
        }
        if build.extra_hosts.len() > 1 {
            return Err(err(format!(
                "extra_hosts: the Engine API client berth uses sends one entry, found {}; keep one",
                build.extra_hosts.len()
            )));
        }
        let dir = opts.base_dir.join(context);
        let dir = dir.canonicalize().map_err(|e| err(format!("context {}: {e}", dir.display())))?;
        if !dir.is_dir() {
            return Err(err(format!("context {} is not a directory", dir.display())));
        }
        let dockerfile = if build.dockerfile.is_empty() { "Dockerfile" } else { build.dockerfile.as_str() };
        let dockerfile_path = dir.join(dockerfile);
        if !dockerfile_path.is_file() {
            return Err(err(format!("Dockerfile {} not found", dockerfile_path.display())));
        }
        let (dockerfile_in_tar, extra_dockerfile) = match relative_inside(&dir, &dockerfile_path) {
            Some(rel) => (rel, None),
            None => (".dockerfile.berth".to_string(), Some((".dockerfile.berth".to_string(), dockerfile_path.clone()))),
        };
        let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
            Ok(text) => DockerIgnore::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
            Err(e) => return Err(err(format!(".dockerignore: {e}"))),
        };
        let keep = [dockerfile_in_tar.as_str(), ".dockerignore"];
        let files = context_files(&dir, &ignore, &keep).map_err(err)?;
        let args: BTreeMap<String, String> = build
            .args
            .iter()
            .filter_map(|(k, v)| {
                let v = v.clone().or_else(|| opts.environ.iter().find(|(ek, _)| ek == k).map(|(_, ev)| ev.clone()))?;
                Some((k.clone(), v))
            })
            .collect();
        let settings = settings_fingerprint(build, &args);
        let tag = tag_for(&dir, &files, extra_dockerfile.as_ref().map(|(_, p)| p.as_path()), &settings)
            .map_err(|e| err(e.to_string()))?;
        let repository = match opts.repositories.get(service) {
            Some(r) => r.clone(),
            None => image_repository(stack, service, image, opts.registry.as_deref()),
        };
        let push = opts.registry.is_some() || has_registry_host(&repository);
        Ok(BuildJob {
            stack: stack.into(),
            service: service.into(),
            build: build.clone(),
            args,
            files,
            extra_dockerfile,
            dockerfile_in_tar,
            repository,
            tag,
            push,
        })
    }

    fn image_ref(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// The repository (image name without tag) a service's built image gets: see the module doc.
pub fn image_repository(stack: &str, service: &str, image: &str, registry: Option<&str>) -> String {
    let repo = strip_tag(image);
    let registry = registry.map(|r| r.trim_end_matches('/')).filter(|r| !r.is_empty());
    match (repo.is_empty(), registry) {
        (true, None) => format!("{stack}/{service}"),
        (true, Some(reg)) => format!("{reg}/{service}"),
        (false, None) => repo.to_string(),
        (false, Some(reg)) if repo.starts_with(&format!("{reg}/")) => repo.to_string(),
        (false, Some(reg)) => format!("{reg}/{}", repo.rsplit('/').next().unwrap_or(repo)),
    }
}

/// `name[:tag][@digest]` → `name`.
fn strip_tag(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

/// True when the first path component of `repo` is a registry host (`host.tld`, `host:port`, `localhost`).
pub fn has_registry_host(repo: &str) -> bool {
    match repo.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// The build settings that change the image besides the context files, as text ("" when all are default).
fn settings_fingerprint(build: &BuildConfig, args: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    if !build.dockerfile.is_empty() {
        s.push_str(&format!("dockerfile={}\n", build.dockerfile));
    }
    for (k, v) in args {
        s.push_str(&format!("arg {k}={v}\n"));
    }
    if !build.target.is_empty() {
        s.push_str(&format!("target={}\n", build.target));
    }
    for (k, v) in &build.labels {
        s.push_str(&format!("label {k}={v}\n"));
    }
    if !build.network.is_empty() {
        s.push_str(&format!("network={}\n", build.network));
    }
    for h in &build.extra_hosts {
        s.push_str(&format!("host {h}\n"));
    }
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `child` relative to `dir` with `/` separators, when it is inside `dir`.
fn relative_inside(dir: &Path, child: &Path) -> Option<String> {
    let child = child.canonicalize().ok()?;
    let rel = child.strip_prefix(dir).ok()?;
    Some(rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/"))
}

/// The image tag (see the module doc): git short commit (+ settings hash) when the context is clean in git,
/// else 12 hex of the content hash. `files` as [`context_files`] returns them; `args` the resolved build args.
pub fn image_tag(
    dir: &Path,
    files: &[ContextFile],
    build: &BuildConfig,
    args: &BTreeMap<String, String>,
) -> std::io::Result<String> {
    tag_for(dir, files, None, &settings_fingerprint(build, args))
}

fn tag_for(
    dir: &Path,
    files: &[ContextFile],
    extra_dockerfile: Option<&Path>,
    settings: &str,
) -> std::io::Result<String> {
    Ok(match git_commit_if_clean(dir, files) {
        Some(commit) if settings.is_empty() && extra_dockerfile.is_none() => commit,
        Some(commit) => {
            let mut h = Sha256::new();
            h.update(settings.as_bytes());
            if let Some(p) = extra_dockerfile {
                h.update(std::fs::read(p)?);
            }
            format!("{commit}-{}", &hex(&h.finalize())[..6])
        }
        None => content_hash(files, extra_dockerfile, settings)?,
    })
}

/// 12 hex of SHA-256 over every context file (kind, path, mode, content), an outside Dockerfile and `settings`.
fn content_hash(files: &[ContextFile], extra_dockerfile: Option<&Path>, settings: &str) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    for f in files {
        h.update(format!("{:?}\0{}\0{:o}\0{}\0", f.kind, f.path, f.mode, f.size).as_bytes());
        match &f.kind {
            EntryKind::File => {
                let mut file = std::fs::File::open(&f.source)?;
                loop {
                    let n = file.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
            EntryKind::Symlink(target) => h.update(target.as_bytes()),
            EntryKind::Dir => {}
        }
    }
    if let Some(p) = extra_dockerfile {
        h.update(b"\0dockerfile\0");
        h.update(std::fs::read(p)?);
    }
    h.update(b"\0settings\0");
    h.update(settings.as_bytes());
    Ok(hex(&h.finalize())[..12].to_string())
}

/// The short commit of HEAD when `dir` is in a git work tree and none of the context `files` is modified,
/// untracked or ignored; `None` otherwise (or when git is not installed).
fn git_commit_if_clean(dir: &Path, files: &[ContextFile]) -> Option<String> {
    let git = |args: &[&str]| -> Option<Vec<u8>> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    };
    let top = String::from_utf8(git(&["rev-parse", "--show-toplevel"])?).ok()?;
    let top = PathBuf::from(top.trim()).canonicalize().ok()?;
    let commit = String::from_utf8(git(&["rev-parse", "--short=12", "HEAD"])?).ok()?.trim().to_string();
    let status = git(&["status", "--porcelain=v1", "-z", "--ignored=matching", "--untracked-files=all", "--", "."])?;
    // Context paths relative to the repository's top.
    let prefix = dir.strip_prefix(&top).ok()?;
    let prefix =
        prefix.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/");
    let in_context: std::collections::BTreeSet<String> =
        files.iter().map(|f| if prefix.is_empty() { f.path.clone() } else { format!("{prefix}/{}", f.path) }).collect();
    let mut entries = status.split(|b| *b == 0).filter(|e| e.len() > 3);
    while let Some(entry) = entries.next() {
        let code = &entry[..2];
        let path = String::from_utf8_lossy(&entry[3..]).into_owned();
        if code[0] == b'R' || code[0] == b'C' {
            entries.next(); // the rename's source path
        }
        let dirty = if let Some(d) = path.strip_suffix('/') {
            in_context.iter().any(|p| p.starts_with(&format!("{d}/")))
        } else {
            in_context.contains(&path)
        };
        if dirty {
            return None;
        }
    }
    Some(commit)
}

/// What a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link to the given target.
    Symlink(String),
}

/// One entry of a build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Path inside the context, `/`-separated, no leading `./`.
    pub path: String,
    /// Where it is on disk.
    pub source: PathBuf,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes (files only).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
}

/// The entries of the build context in `dir`, sorted by path, without those `ignore` excludes (except the
/// paths in `keep`, which are always sent). Errors are messages.
pub fn context_files(dir: &Path, ignore: &DockerIgnore, keep: &[&str]) -> Result<Vec<ContextFile>, String> {
    let mut out = Vec::new();
    walk(dir, "", ignore, keep, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(dir: &Path, rel: &str, ignore: &DockerIgnore, keep: &[&str], out: &mut Vec<ContextFile>) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let read = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let meta = std::fs::symlink_metadata(entry.path()).map_err(|e| format!("cannot stat {path}: {e}"))?;
        let excluded = ignore.is_excluded(&path) && !keep.contains(&path.as_str());
        let mtime =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            // An excluded directory is still walked when an exception pattern may re-include something in it.
            let keeps_inside = keep.iter().any(|k| k.starts_with(&format!("{path}/")));
            if excluded && !ignore.has_exceptions() && !keeps_inside {
                continue;
            }
            if !excluded {
                out.push(ContextFile {
                    path: path.clone(),
                    source: entry.path(),
                    kind: EntryKind::Dir,
                    mode,
                    size: 0,
                    mtime,
                });
            }
            walk(&entry.path(), &path, ignore, keep, out)?;
        } else if excluded {
            continue;
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|e| format!("cannot read link {path}: {e}"))?;
            out.push(ContextFile {
                path,
                source: entry.path(),
                kind: EntryKind::Symlink(target.to_string_lossy().into_owned()),
                mode,
                size: 0,
                mtime,
            });
        } else if meta.is_file() {
            out.push(ContextFile { path, source: entry.path(), kind: EntryKind::File, mode, size: meta.len(), mtime });
        }
        // Sockets, FIFOs and devices are skipped, like `docker build` does.
    }
    Ok(())
}

/// Writes the context as an uncompressed tar (GNU long names, uid/gid 0) to `out`, streaming file contents.
fn write_context_tar(
    out: &mut impl std::io::Write,
    files: &[ContextFile],
    extra_dockerfile: Option<&(String, PathBuf)>,
) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    for f in files {
        match &f.kind {
            EntryKind::Dir => {
                tar_entry(out, &format!("{}/", f.path), b'5', f.mode, f.mtime, "", &mut std::io::empty(), 0)
            }
            EntryKind::Symlink(target) => {
                tar_entry(out, &f.path, b'2', f.mode, f.mtime, target, &mut std::io::empty(), 0)
            }
            EntryKind::File => {
                let mut file = std::fs::File::open(&f.source).map_err(|e| io(&f.path, e))?;
                // The size is taken from the open file, so a file changing under us still gives a valid tar.
                let size = file.metadata().map_err(|e| io(&f.path, e))?.len();
                tar_entry(out, &f.path, b'0', f.mode, f.mtime, "", &mut file, size)
            }
        }
        .map_err(|e| io(&f.path, e))?;
    }
    if let Some((name, path)) = extra_dockerfile {
        let data = std::fs::read(path).map_err(|e| io(&path.display().to_string(), e))?;
        tar_entry(out, name, b'0', 0o644, 0, "", &mut data.as_slice(), data.len() as u64).map_err(|e| io(name, e))?;
    }
    out.write_all(&[0u8; 1024]).map_err(|e| io("tar", e))
}

fn tar_header(name: &[u8], typeflag: u8, mode: u32, size: u64, mtime: u64, link: &[u8]) -> [u8; 512] {
    fn octal(field: &mut [u8], value: u64) {
        let s = format!("{:0width$o}", value, width = field.len() - 1);
        let s = s.as_bytes();
        let s = &s[s.len().saturating_sub(field.len() - 1)..];
        field[..s.len()].copy_from_slice(s);
        field[s.len()] = 0;
    }
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// Zero bytes that bring `len` to a 512-byte boundary.
fn padding(len: u64) -> &'static [u8] {
    const ZEROS: [u8; 512] = [0; 512];
    &ZEROS[..((512 - len % 512) % 512) as usize]
}

/// One tar entry: a GNU long-name/long-link record when needed, the header, exactly `size` bytes of `data`
/// (zero-filled if it ends early) and padding.
#[allow(clippy::too_many_arguments)]
fn tar_entry(
    out: &mut impl std::io::Write,
    name: &str,
    typeflag: u8,
    mode: u32,
    mtime: u64,
    link: &str,
    data: &mut impl Read,
    size: u64,
) -> std::io::Result<()> {
    for (long, flag) in [(name, b'L'), (link, b'K')] {
        if long.len() > 100 {
            let mut bytes = long.as_bytes().to_vec();
            bytes.push(0);
            out.write_all(&tar_header(b"././@LongLink", flag, 0o644, bytes.len() as u64, 0, b""))?;
            out.write_all(&bytes)?;
            out.write_all(padding(bytes.len() as u64))?;
        }
    }
    out.write_all(&tar_header(name.as_bytes(), typeflag, mode, size, mtime, link.as_bytes()))?;
    let copied = std::io::copy(&mut data.take(size), out)?;
    std::io::copy(&mut std::io::repeat(0).take(size - copied), out)?;
    out.write_all(padding(size))
}

/// One `.dockerignore` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    exclusion: bool,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`: one character but `/`.
    Any,
    /// `*`: any run of characters without `/`.
    Star,
    /// `**` (a following `/` eaten): any run of characters, `/` included (`(.*/)?` mid-pattern).
    DoubleStar {
        at_end: bool,
    },
    /// `[...]`: a character class.
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

/// Parsed `.dockerignore` rules, matched like Docker's `patternmatcher`: the last matching pattern decides, a
/// `!` pattern re-includes, and a pattern that matches a parent directory of a path matches the path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses `.dockerignore` text: one pattern a line, `#` comments, blank lines ignored, leading `!` for an
    /// exception, paths cleaned (`./a/../b` → `b`, leading `/` dropped).
    pub fn parse(text: &str) -> DockerIgnore {
        let mut patterns = Vec::new();
        for line in text.trim_start_matches('\u{feff}').lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
            }
            if p.is_empty() {
                continue;
            }
            let mut cleaned = clean_path(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            patterns.push(Pattern { exclusion, tokens: compile(&cleaned) });
        }
        DockerIgnore { patterns }
    }

    /// True when some pattern is an exception (`!...`).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// True when the context path `path` (`/`-separated, relative) is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean_path(path);
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = match_tokens(&p.tokens, &path.chars().collect::<Vec<_>>());
            if !m {
                for i in 0..parents.len() {
                    let parent = parents[..=i].join("/");
                    if match_tokens(&p.tokens, &parent.chars().collect::<Vec<_>>()) {
                        m = true;
                        break;
                    }
                }
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

/// Go's `filepath.Clean` for `/` paths.
fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().unwrap_or("")),
            Component::ParentDir => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => {}
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn compile(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(Token::DoubleStar { at_end: i >= chars.len() });
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Any),
            '\\' if i < chars.len() => {
                tokens.push(Token::Char(chars[i]));
                i += 1;
            }
            '[' => {
                // A class up to the next unescaped `]`; without one, `[` is literal.
                let mut j = i;
                let negated = matches!(chars.get(j), Some('^') | Some('!'));
                if negated {
                    j += 1;
                }
                let mut items = Vec::new();
                let mut closed = false;
                let mut first = true;
                while j < chars.len() {
                    let mut lo = chars[j];
                    if lo == ']' && !first {
                        closed = true;
                        j += 1;
                        break;
                    }
                    first = false;
                    if lo == '\\' && j + 1 < chars.len() {
                        j += 1;
                        lo = chars[j];
                    }
                    j += 1;
                    let mut hi = lo;
                    if chars.get(j) == Some(&'-') && chars.get(j + 1).is_some_and(|c| *c != ']') {
                        hi = chars[j + 1];
                        if hi == '\\' && j + 2 < chars.len() {
                            hi = chars[j + 2];
                            j += 1;
                        }
                        j += 2;
                    }
                    items.push((lo, hi));
                }
                if closed {
                    tokens.push(Token::Class { negated, items });
                    i = j;
                } else {
                    tokens.push(Token::Char('['));
                }
            }
            c => tokens.push(Token::Char(c)),
        }
    }
    tokens
}

/// Matches the whole of `s` against `tokens` (backtracking).
fn match_tokens(tokens: &[Token], s: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else { return s.is_empty() };
    match first {
        Token::Char(c) => s.first() == Some(c) && match_tokens(rest, &s[1..]),
        Token::Any => s.first().is_some_and(|c| *c != '/') && match_tokens(rest, &s[1..]),
        Token::Class { negated, items } => {
            s.first().is_some_and(|c| *c != '/' && items.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated)
                && match_tokens(rest, &s[1..])
        }
        Token::Star => {
            for i in 0..=s.len() {
                if match_tokens(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == '/' {
                    break;
                }
            }
            false
        }
        Token::DoubleStar { at_end: true } => true,
        Token::DoubleStar { at_end: false } => {
            // `(.*/)?`: nothing, or anything up to and including a `/`.
            if match_tokens(rest, s) {
                return true;
            }
            (0..s.len()).any(|i| s[i] == '/' && match_tokens(rest, &s[i + 1..]))
        }
    }
}

/// A file read as a stream of 256 KiB chunks (a build context tar sent to the engine).
pub(crate) fn file_chunks(
    file: std::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::unfold(tokio::fs::File::from_std(file), |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text)
    }

    #[test]
    fn dockerignore_star_does_not_cross_slashes() {
        let i = ig("*.log");
        assert!(i.is_excluded("a.log"));
        assert!(!i.is_excluded("dir/a.log"));
        assert!(ig("*/*.log").is_excluded("dir/a.log"));
    }

    #[test]
    fn dockerignore_double_star_matches_any_depth() {
        let i = ig("**/*.log");
        assert!(i.is_excluded("a.log"));
        assert!(i.is_excluded("x/y/a.log"));
        assert!(!i.is_excluded("x/y/a.txt"));
        assert!(ig("a/**").is_excluded("a/b/c"));
        assert!(ig("a/**/z").is_excluded("a/z"));
        assert!(ig("a/**/z").is_excluded("a/b/c/z"));
    }

    #[test]
    fn dockerignore_directory_pattern_excludes_its_contents() {
        let i = ig("node_modules\n/build/\n./tmp");
        assert!(i.is_excluded("node_modules"));
        assert!(i.is_excluded("node_modules/x/y.js"));
        assert!(i.is_excluded("build/out.bin"));
        assert!(i.is_excluded("tmp/a"));
        assert!(!i.is_excluded("src/node_modules"));
    }

    #[test]
    fn dockerignore_last_match_wins_with_exceptions() {
        let i = ig("# comment\n*.md\n!README.md\n\nREADME-secret.md");
        assert!(i.is_excluded("CHANGES.md"));
        assert!(!i.is_excluded("README.md"));
        assert!(i.is_excluded("README-secret.md"));
        assert!(i.has_exceptions());
    }

    #[test]
    fn dockerignore_classes_and_question_mark() {
        let i = ig("file[0-9].txt\n?.tmp\n[!a]b");
        assert!(i.is_excluded("file7.txt"));
        assert!(!i.is_excluded("filex.txt"));
        assert!(i.is_excluded("x.tmp"));
        assert!(!i.is_excluded("xy.tmp"));
        assert!(i.is_excluded("cb"));
        assert!(!i.is_excluded("ab"));
    }

    #[test]
    fn clean_path_follows_go_filepath_clean() {
        assert_eq!(clean_path("./a/../b//c/"), "b/c");
        assert_eq!(clean_path("/x/.."), "/");
        assert_eq!(clean_path("."), ".");
        assert_eq!(clean_path("../a"), "../a");
    }

    #[test]
    fn repository_from_image_registry_or_stack() {
        assert_eq!(image_repository("blog", "web", "", None), "blog/web");
        assert_eq!(image_repository("blog", "web", "me/web:1.2", None), "me/web");
        assert_eq!(image_repository("blog", "web", "", Some("127.0.0.1:5000/blog")), "127.0.0.1:5000/blog/web");
        assert_eq!(image_repository("blog", "web", "me/site:x", Some("reg.io/blog/")), "reg.io/blog/site");
        assert_eq!(image_repository("b", "w", "reg.io/blog/web:1@sha256:ab", Some("reg.io/blog")), "reg.io/blog/web");
        assert_eq!(image_repository("b", "w", "localhost:5000/web", None), "localhost:5000/web");
    }

    #[test]
    fn registry_host_detection() {
        assert!(has_registry_host("127.0.0.1:5000/a"));
        assert!(has_registry_host("localhost/a"));
        assert!(has_registry_host("ghcr.io/a/b"));
        assert!(!has_registry_host("library/a"));
        assert!(!has_registry_host("a"));
    }

    #[test]
    fn tar_entries_are_block_aligned_with_long_names() {
        let mut tar = Vec::new();
        let long = "d/".repeat(80) + "file";
        tar_entry(&mut tar, &long, b'0', 0o644, 0, "", &mut &b"abc"[..], 3).unwrap();
        assert_eq!(tar.len() % 512, 0);
        assert_eq!(&tar[156], &b'L');
        // Long-name header + name block + header + data block.
        assert_eq!(tar.len(), 512 * 4);
        let h = tar_header(b"x", b'0', 0o755, 3, 0, b"");
        let sum: u32 = h.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { *b as u32 }).sum();
        assert_eq!(std::str::from_utf8(&h[148..154]).unwrap(), format!("{sum:06o}"));
    }

    #[test]
    fn context_hash_changes_with_content_and_args() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("a.txt"), "one").unwrap();
        let files = context_files(dir.path(), &DockerIgnore::default(), &[]).unwrap();
        let h1 = content_hash(&files, None, "").unwrap();
        assert_eq!(h1.len(), 12);
        assert_eq!(h1, content_hash(&files, None, "").unwrap());
        assert_ne!(h1, content_hash(&files, None, "arg A=1\n").unwrap());
        std::fs::write(dir.path().join("a.txt"), "two").unwrap();
        let files = context_files(dir.path(), &DockerIgnore::default(), &[]).unwrap();
        assert_ne!(h1, content_hash(&files, None, "").unwrap());
    }

    #[test]
    fn dockerfile_inside_an_ignored_directory_is_still_sent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("docker")).unwrap();
        std::fs::write(dir.path().join("docker/web.Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("docker/other"), "x").unwrap();
        let files = context_files(dir.path(), &ig("docker"), &["docker/web.Dockerfile"]).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["docker/web.Dockerfile"]);
    }

    #[test]
    fn context_files_skip_ignored_but_keep_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::create_dir(dir.path().join("secret")).unwrap();
        std::fs::write(dir.path().join("secret/key"), "k").unwrap();
        std::fs::write(dir.path().join("keep.txt"), "k").unwrap();
        let i = ig("secret\nDockerfile\n.dockerignore");
        let files = context_files(dir.path(), &i, &["Dockerfile"]).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["Dockerfile", "keep.txt"]);
    }
}
