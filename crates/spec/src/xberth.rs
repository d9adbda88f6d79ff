//! The `x-berth` extension: what a compose file cannot say — domains, TLS, routes, release
//! commands, targets. Compose ignores `x-*` keys, so the same file still works with
//! `docker stack deploy`. Reference: `docs/x-berth.md` (keep the two in step).
//!
//! Two entry points: [`check_document`] validates every `x-berth` block of one parsed document
//! with positions (before merging), and [`XBerth::from_stack_json`] / [`ServiceBerth::from_json`]
//! read the merged, already-checked values into types.

use crate::diag::{Diagnostic, did_you_mean};
use crate::yaml::{Map, Node, Pos, Value};
use std::collections::BTreeMap;

/// Top-level `x-berth`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct XBerth {
    /// Stack name; default: the name of the directory holding the first compose file.
    pub name: Option<String>,
    /// Public host names the edge answers for (first one is the primary).
    pub domains: Vec<String>,
    /// Certificates; absent means plain HTTP only (or the local CA for `*.localhost`).
    pub acme: Option<Acme>,
    pub edge: Edge,
    /// Files the edge serves itself from volumes of the stack.
    #[serde(rename = "static")]
    pub statics: Vec<StaticMount>,
    /// Registry/repository prefix that built images are pushed to (`registry.example.com/blog`).
    pub registry: Option<String>,
    /// Named places to deploy to; `local` always exists.
    pub targets: BTreeMap<String, TargetSpec>,
    /// Target used when `--target` is not given (default `local`).
    pub default_target: Option<String>,
}

/// ACME (Let's Encrypt or any RFC 8555 server) settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Acme {
    pub email: String,
    /// Directory URL. `letsencrypt` (default), `letsencrypt-staging`, `local` (a CA berth makes for
    /// development) or any `https://` URL.
    pub directory: String,
}

/// Where and how the edge proxy runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Edge {
    /// Placement constraints for the edge's global service (default: `node.role == manager`).
    pub placement: Vec<String>,
    pub http_port: u16,
    pub https_port: u16,
    /// Send `Strict-Transport-Security` on HTTPS responses.
    pub hsts: bool,
    /// Default request body limit in bytes (routes may override).
    pub max_body: u64,
    /// Default upstream timeout in milliseconds (routes may override).
    pub timeout_ms: u64,
}

impl Default for Edge {
    fn default() -> Self {
        Edge {
            placement: vec!["node.role == manager".into()],
            http_port: 80,
            https_port: 443,
            hsts: true,
            max_body: 10 << 20,
            timeout_ms: 60_000,
        }
    }
}

/// A path prefix served from a volume of the stack.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StaticMount {
    /// URL path prefix, e.g. `/static`.
    pub path: String,
    /// A volume declared in the stack's top-level `volumes:`.
    pub volume: String,
    /// Directory inside the volume to serve (default: its root).
    pub subdir: Option<String>,
    /// Single-page app: unknown paths without a file get `index.html`.
    pub spa: bool,
    /// Only for this host (default: every domain).
    pub host: Option<String>,
}

/// One deploy target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TargetSpec {
    /// The Docker engine on this machine.
    Local,
    Ssh(SshTarget),
    Aws(AwsTarget),
}

/// Linux hosts reached over SSH.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SshTarget {
    /// `[user@]host[:port]`, in order; the first `managers` hosts become managers.
    pub hosts: Vec<String>,
    pub user: Option<String>,
    /// Private key file; default: the SSH agent, then `~/.ssh/id_ed25519`, `~/.ssh/id_rsa`.
    pub key: Option<String>,
    pub managers: u32,
    /// Hosts that run the edge (default: the managers).
    pub edge: Vec<String>,
    /// Node labels per host.
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Accept and record unknown host keys (trust on first use). Default false.
    pub trust_new_hosts: bool,
    /// known_hosts file; default `~/.ssh/known_hosts`.
    pub known_hosts: Option<String>,
    /// Docker socket on the hosts (`{host}` = the host); default `/var/run/docker.sock`.
    pub socket: Option<String>,
    /// Swarm dispatcher heartbeat `cluster up` sets (e.g. `1s`); default `2s`.
    pub heartbeat: Option<String>,
}

/// AWS infrastructure berth provisions with CloudFormation (`docs/aws.md`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AwsTarget {
    /// AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// Named profile of the shared AWS config/credentials files; default: the SDK's default chain.
    pub profile: Option<String>,
    /// One host, or manager and worker auto-scaling groups over three zones.
    pub mode: AwsMode,
    /// EC2 instance type of every instance; default `t3.small`.
    pub instance_type: String,
    /// Managers (cluster mode: 3 or 5, default 3; single mode: 1).
    pub managers: u32,
    /// Desired workers (cluster mode; default 0).
    pub workers: u32,
    /// Most workers the worker group may scale to (default: `workers`; never below it).
    pub workers_max: u32,
    /// Route53 hosted zone of the domains (e.g. `example.com`); no records when absent.
    pub hosted_zone: Option<String>,
    /// CIDR allowed to reach SSH (port 22); absent means SSH closed.
    pub ssh_cidr: Option<String>,
    /// Public key file (OpenSSH format) installed as the instances' key pair; default none.
    pub ssh_key: Option<String>,
    /// Root volume size in GiB (gp3, encrypted); default 20.
    pub volume_size: u32,
    /// IPv4 CIDR of the VPC (a /16 to /24); default `10.0.0.0/16`.
    pub cidr: String,
    /// ECR repositories refuse to overwrite a tag (`IMMUTABLE`); default false.
    pub immutable_tags: bool,
    /// AMI ID (`ami-...`) of every instance, pinned; default: the latest Debian 12 through SSM.
    pub ami: Option<String>,
    /// Login user of the instances (`deploy` over SSH); default `admin` (Debian's). A pinned `ami`
    /// of another distribution has its own (e.g. `ubuntu`).
    pub ssh_user: Option<String>,
    /// Docker socket on the instances (`{host}` = the host); default `/var/run/docker.sock`.
    pub socket: Option<String>,
}

/// How an AWS target is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AwsMode {
    /// One instance with an Elastic IP (seed 000's DockerEc2).
    Single,
    /// Manager and worker auto-scaling groups spread over three zones (seeds 003/004).
    Cluster,
}

impl AwsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AwsMode::Single => "single",
            AwsMode::Cluster => "cluster",
        }
    }
}

impl std::fmt::Display for AwsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default instance type of an AWS target.
pub const AWS_DEFAULT_INSTANCE_TYPE: &str = "t3.small";
/// Default root volume size (GiB) of an AWS target.
pub const AWS_DEFAULT_VOLUME_SIZE: u32 = 20;
/// Default VPC CIDR of an AWS target.
pub const AWS_DEFAULT_CIDR: &str = "10.0.0.0/16";

/// Parses `a.b.c.d/n` (IPv4 CIDR) into the address and prefix length; `None` when malformed.
pub fn parse_ipv4_cidr(s: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: std::net::Ipv4Addr = addr.parse().ok()?;
    if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    (len <= 32).then_some((addr, len))
}

/// True when `s` is an IPv6 CIDR like `2001:db8::/32`.
fn is_ipv6_cidr(s: &str) -> bool {
    s.split_once('/').is_some_and(|(a, l)| {
        a.parse::<std::net::Ipv6Addr>().is_ok()
            && !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_digit())
            && l.parse::<u8>().is_ok_and(|l| l <= 128)
    })
}

/// True for region names like `eu-west-1`, `us-gov-west-1`, `ap-southeast-4`.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// True for Arm (Graviton) families: a digit then `g` right after the letters (`t4g`, `m7gd`,
/// `c6gn`, `x2gd`, `im4gn`, `hpc7g`); `g4dn` (x86 with a GPU) is not one.
fn is_arm_instance_type(s: &str) -> bool {
    let family = s.split('.').next().unwrap_or("");
    let rest = family.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let after_digits = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.len() > after_digits.len() && after_digits.starts_with('g')
}

/// True for instance types like `t3.small`, `m7g.2xlarge`, `c6in.metal-48xl`.
fn is_instance_type(s: &str) -> bool {
    s.split_once('.').is_some_and(|(family, size)| {
        !family.is_empty()
            && family.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && family.as_bytes()[0].is_ascii_lowercase()
            && !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// True for AMI IDs: `ami-` and 8 or 17 lowercase hex digits.
fn is_ami_id(s: &str) -> bool {
    s.strip_prefix("ami-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Per-service `x-berth`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ServiceBerth {
    /// Requests the edge sends to this service.
    pub routes: Vec<Route>,
    /// Container port the edge proxies to (required with routes).
    pub port: Option<u16>,
    /// HTTP health check the edge and the rollout gate use.
    pub health: Option<Health>,
    /// Release commands: run once per release, in order, as a Swarm job from the new image,
    /// before any new task takes traffic. Each is an argv.
    pub release: Vec<Vec<String>>,
}

/// One route to a service.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Route {
    /// Path prefix; `/` matches everything not matched by a longer prefix.
    pub path: String,
    /// Only requests for this host (default: every domain).
    pub host: Option<String>,
    /// Remove the prefix before proxying.
    pub strip_prefix: bool,
    pub max_body: Option<u64>,
    pub timeout_ms: Option<u64>,
}

/// HTTP health check of a routed service.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Health {
    pub path: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
}

/// Where the value of a top-level secret with an `x-berth` block comes from (instead of `file:`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// `generate: 50` (or `true`): a random value of this many characters `[A-Za-z0-9]`, made
    /// once by the engine when the secret does not exist yet and kept in the swarm from then on.
    Generate(u32),
    /// `env: DB_PASSWORD`: the value of this variable of the environment berth runs in (also
    /// `.env` and `--env-file`s), content-addressed like a `file:` secret.
    Env(String),
}

/// Length of a generated secret when `generate: true`.
pub const GENERATE_DEFAULT_LENGTH: u32 = 50;
/// Shortest length `generate:` accepts.
pub const GENERATE_MIN_LENGTH: u32 = 8;
/// Longest length `generate:` accepts.
pub const GENERATE_MAX_LENGTH: u32 = 4096;

impl SecretSource {
    /// Reads a merged secret-level `x-berth` value (already checked by [`check_document`]);
    /// `None` when it names no source.
    pub fn from_json(v: &serde_json::Value) -> Option<SecretSource> {
        let mut cx = Cx::default();
        cx.secret_source(&Node::from_json(v, Pos::default()), "x-berth")
    }
}

/// The value of a secret, kept out of every `Debug` output (shows only its length) and never
/// serialised.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Wraps the bytes of a secret value.
    pub fn new(bytes: impl Into<Vec<u8>>) -> SecretValue {
        SecretValue(bytes.into())
    }

    /// The bytes of the value (only for sending to the engine).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue(<redacted, {} bytes>)", self.0.len())
    }
}

/// The error for an `env:` secret whose variable is not set (or empty): names the secret and the
/// variable, with a hint where to set it. `at` is the position of the variable name in the file.
pub fn missing_secret_env(secret: &str, var: &str, empty: bool, at: Option<Pos>) -> Diagnostic {
    let msg = if empty {
        format!("secret `{secret}` takes its value from the environment variable `{var}`, which is empty")
    } else {
        format!("secret `{secret}` takes its value from the environment variable `{var}`, which is not set")
    };
    Diagnostic::error("xberth.secret-env", at, format!("secrets.{secret}.x-berth.env"), msg).with_hint(format!(
        "set `{var}` in the environment berth runs in, in `.env` beside the stack file, or in a file passed with `--env-file`"
    ))
}

const TOP_KEYS: &[&str] =
    &["name", "domain", "domains", "acme", "edge", "static", "registry", "targets", "default_target"];
const ACME_KEYS: &[&str] = &["email", "directory"];
const EDGE_KEYS: &[&str] = &["placement", "http_port", "https_port", "hsts", "max_body", "timeout"];
const STATIC_KEYS: &[&str] = &["path", "volume", "subdir", "spa", "host"];
const SSH_KEYS: &[&str] =
    &["ssh", "user", "key", "managers", "edge", "labels", "trust_new_hosts", "known_hosts", "socket", "heartbeat"];
const AWS_KEYS: &[&str] = &[
    "aws",
    "region",
    "profile",
    "mode",
    "instance_type",
    "managers",
    "workers",
    "workers_max",
    "hosted_zone",
    "ssh_cidr",
    "ssh_key",
    "volume_size",
    "cidr",
    "immutable_tags",
    "ami",
    "ssh_user",
    "socket",
];
const SERVICE_KEYS: &[&str] = &["routes", "port", "health", "release"];
const SECRET_KEYS: &[&str] = &["generate", "env"];
const ROUTE_KEYS: &[&str] = &["path", "host", "strip_prefix", "max_body", "timeout"];
const HEALTH_KEYS: &[&str] = &["path", "interval", "timeout"];

/// Validates every `x-berth` block of one parsed (interpolated) document: the top-level one and
/// each service's. Returns all problems with positions. Cross-checks what one document can:
/// routes need a `port`, static volumes must be declared, no two services claim the same route.
pub fn check_document(doc: &Node) -> Vec<Diagnostic> {
    let mut cx = Cx::default();
    let volumes: Vec<&str> =
        doc.get("volumes").and_then(Node::as_map).map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    if let Some(top) = doc.get("x-berth") {
        let x = cx.top(top, "x-berth");
        for (i, s) in x.statics.iter().enumerate() {
            if doc.get("volumes").is_some() && !volumes.contains(&s.volume.as_str()) {
                let at = top
                    .at(&["static"])
                    .and_then(|n| n.as_seq())
                    .and_then(|s| s.get(i))
                    .map(|n| n.get("volume").map(Node::pos_of).unwrap_or(n.pos));
                let mut d = Diagnostic::error(
                    "xberth.volume",
                    at,
                    format!("x-berth.static[{i}].volume"),
                    format!("volume `{}` is not declared in the top-level `volumes:`", s.volume),
                );
                if let Some(m) = did_you_mean(&s.volume, volumes.iter().copied()) {
                    d = d.with_hint(format!("did you mean `{m}`?"));
                }
                cx.diags.push(d);
            }
        }
    }
    if let Some(secrets) = doc.get("secrets").and_then(Node::as_map) {
        for (name, def) in secrets {
            if let Some(node) = def.get("x-berth") {
                cx.secret(name, def, node);
            }
        }
    }
    let mut claimed: BTreeMap<(Option<String>, String), String> = BTreeMap::new();
    if let Some(services) = doc.get("services").and_then(Node::as_map) {
        for (name, svc) in services {
            let Some(node) = svc.get("x-berth") else { continue };
            let path = format!("services.{name}.x-berth");
            let sb = cx.service(node, &path);
            if !sb.routes.is_empty() && sb.port.is_none() {
                cx.diags.push(
                    Diagnostic::error(
                        "xberth.port",
                        Some(node.anchor()),
                        path.clone(),
                        "a service with `routes` needs a `port`",
                    )
                    .with_hint("add `port: 8000` (the port the container listens on)"),
                );
            }
            for (i, r) in sb.routes.iter().enumerate() {
                let key = (r.host.clone(), r.path.clone());
                if let Some(other) = claimed.get(&key) {
                    let at = node.get("routes").and_then(Node::as_seq).and_then(|s| s.get(i)).map(|n| n.pos);
                    cx.diags.push(Diagnostic::error(
                        "xberth.route-taken",
                        at,
                        format!("{path}.routes[{i}]"),
                        format!("route `{}` is already routed to service `{other}`", r.path),
                    ));
                } else {
                    claimed.insert(key, name.clone());
                }
            }
        }
    }
    cx.diags
}

impl Node {
    fn pos_of(&self) -> Pos {
        self.pos
    }
}

impl XBerth {
    /// Reads the merged top-level `x-berth` value (already checked by [`check_document`]).
    pub fn from_json(v: &serde_json::Value) -> XBerth {
        let mut cx = Cx::default();
        cx.top(&Node::from_json(v, Pos::default()), "x-berth")
    }

    /// All routes and statics of the stack, for the edge: `(service, route)` pairs sorted so the
    /// longest prefix comes first.
    pub fn routes<'a>(services: impl IntoIterator<Item = (&'a str, &'a ServiceBerth)>) -> Vec<(&'a str, &'a Route)> {
        let mut all: Vec<(&str, &Route)> =
            services.into_iter().flat_map(|(n, s)| s.routes.iter().map(move |r| (n, r))).collect();
        all.sort_by(|a, b| {
            b.1.path.len().cmp(&a.1.path.len()).then_with(|| a.1.path.cmp(&b.1.path)).then_with(|| a.0.cmp(b.0))
        });
        all
    }
}

impl ServiceBerth {
    /// Reads a merged service-level `x-berth` value (already checked by [`check_document`]).
    pub fn from_json(v: &serde_json::Value) -> ServiceBerth {
        let mut cx = Cx::default();
        cx.service(&Node::from_json(v, Pos::default()), "x-berth")
    }
}

/// Validation context: collects diagnostics while reading values with defaults.
#[derive(Default)]
struct Cx {
    diags: Vec<Diagnostic>,
}

impl Cx {
    fn err(&mut self, code: &'static str, at: &Node, path: &str, msg: String) {
        self.diags.push(Diagnostic::error(code, Some(at.pos), path, msg));
    }

    fn expected(&mut self, at: &Node, path: &str, what: &str) {
        self.err("xberth.type", at, path, format!("expected {what}, found {}", at.type_name()));
    }

    /// The node as a mapping whose keys are all in `allowed`; unknown keys are reported.
    fn fields<'n>(&mut self, node: &'n Node, path: &str, allowed: &[&str]) -> Option<&'n Map> {
        let Value::Map(m) = &node.value else {
            self.expected(node, path, "a mapping");
            return None;
        };
        for (k, v) in m {
            if !allowed.contains(&k.as_str()) {
                let mut d = Diagnostic::error(
                    "xberth.unknown-key",
                    Some(v.anchor()),
                    format!("{path}.{k}"),
                    format!("unknown key `{k}` in `{path}`"),
                );
                d = match did_you_mean(k, allowed.iter().copied()) {
                    Some(m) => d.with_hint(format!("did you mean `{m}`?")),
                    None => d.with_hint(format!("allowed here: {}", allowed.join(", "))),
                };
                self.diags.push(d);
            }
        }
        Some(m)
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.expected(node, path, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            // `${VAR}` interpolation gives strings; YAML 1.2's words for booleans are taken.
            Value::Str(s) if matches!(s.as_str(), "true" | "True" | "TRUE") => Some(true),
            Value::Str(s) if matches!(s.as_str(), "false" | "False" | "FALSE") => Some(false),
            _ => {
                self.expected(node, path, "true or false");
                None
            }
        }
    }

    fn uint(&mut self, node: &Node, path: &str, max: u64) -> Option<u64> {
        // `${VAR:-80}` interpolation gives a string: a string of digits is that number.
        if let Value::Str(s) = &node.value
            && let Ok(i) = s.trim().parse::<i64>()
        {
            return self.uint(&Node { value: Value::Int(i), ..node.clone() }, path, max);
        }
        match &node.value {
            Value::Int(i) if *i >= 0 && (*i as u64) <= max => Some(*i as u64),
            Value::Int(i) => {
                self.err("xberth.range", node, path, format!("{i} is out of range (0 to {max})"));
                None
            }
            _ => {
                self.expected(node, path, "a whole number");
                None
            }
        }
    }

    /// A string or a list of strings.
    fn strings(&mut self, node: &Node, path: &str) -> Vec<String> {
        match &node.value {
            Value::Str(s) => vec![s.clone()],
            Value::Seq(items) => {
                items.iter().enumerate().filter_map(|(i, n)| self.string(n, &format!("{path}[{i}]"))).collect()
            }
            _ => {
                self.expected(node, path, "a string or a list of strings");
                vec![]
            }
        }
    }

    /// `30s`, `1m`, `500ms`, `2h` or a number of seconds → milliseconds.
    fn duration(&mut self, node: &Node, path: &str) -> Option<u64> {
        let parsed = match &node.value {
            Value::Int(i) if *i >= 0 => Some(*i as u64 * 1000),
            Value::Str(s) => parse_duration_ms(s),
            _ => None,
        };
        if parsed.is_none() {
            self.err("xberth.duration", node, path, "expected a duration like `30s`, `500ms` or `2m`".into());
        }
        parsed
    }

    /// `10m`, `1g`, `512k`, `100` (bytes) → bytes.
    fn size(&mut self, node: &Node, path: &str) -> Option<u64> {
        let parsed = match &node.value {
            Value::Int(i) if *i >= 0 => Some(*i as u64),
            Value::Str(s) => parse_size(s),
            _ => None,
        };
        if parsed.is_none() {
            self.err("xberth.size", node, path, "expected a size like `10m`, `512k` or `1g`".into());
        }
        parsed
    }

    fn url_path(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        if !s.starts_with('/') || s.contains("..") || s.contains(char::is_whitespace) || s.contains(['?', '#']) {
            self.diags.push(
                Diagnostic::error("xberth.path", Some(node.pos), path, format!("`{s}` is not a URL path prefix"))
                    .with_hint("write an absolute path like `/api` (no `..`, query or fragment)"),
            );
            return None;
        }
        Some(s)
    }

    fn hostname(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.split('.').enumerate().all(|(i, l)| {
                !l.is_empty()
                    && l.len() <= 63
                    && (l == "*" && i == 0
                        || l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                            && !l.starts_with('-')
                            && !l.ends_with('-'))
            });
        if !ok {
            self.diags.push(
                Diagnostic::error("xberth.host", Some(node.pos), path, format!("`{s}` is not a host name"))
                    .with_hint("write a DNS name like `blog.example.com` (no scheme, port or path)"),
            );
            return None;
        }
        Some(s.to_ascii_lowercase())
    }

    fn top(&mut self, node: &Node, path: &str) -> XBerth {
        let mut x = XBerth::default();
        let Some(m) = self.fields(node, path, TOP_KEYS) else { return x };
        if let Some(n) = m.get("name")
            && let Some(s) = self.string(n, &format!("{path}.name"))
        {
            if s.is_empty()
                || !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
                || !s.starts_with(|c: char| c.is_ascii_alphanumeric())
            {
                self.err("xberth.name", n, &format!("{path}.name"), format!("stack name `{s}` must be lower-case letters, digits, `-` and `_`, starting with a letter or digit"));
            } else {
                x.name = Some(s);
            }
        }
        if m.contains_key("domain") && m.contains_key("domains") {
            self.err(
                "xberth.conflict",
                &m["domains"],
                &format!("{path}.domains"),
                "give either `domain` or `domains`, not both".into(),
            );
        }
        for key in ["domain", "domains"] {
            if let Some(n) = m.get(key) {
                let p = format!("{path}.{key}");
                let items: Vec<&Node> = match &n.value {
                    Value::Seq(s) => s.iter().collect(),
                    _ => vec![n],
                };
                for (i, item) in items.into_iter().enumerate() {
                    if let Some(h) =
                        self.hostname(item, &if n.as_seq().is_some() { format!("{p}[{i}]") } else { p.clone() })
                    {
                        x.domains.push(h);
                    }
                }
            }
        }
        if let Some(n) = m.get("acme") {
            let p = format!("{path}.acme");
            if let Some(a) = self.fields(n, &p, ACME_KEYS) {
                let email = match a.get("email") {
                    Some(e) => self
                        .string(e, &format!("{p}.email"))
                        .filter(|e| e.contains('@') && !e.starts_with('@') && !e.ends_with('@')),
                    None => {
                        self.diags.push(
                            Diagnostic::error(
                                "xberth.required",
                                Some(n.anchor()),
                                p.clone(),
                                "`acme` needs an `email`",
                            )
                            .with_hint("the ACME server sends expiry warnings there"),
                        );
                        None
                    }
                };
                let directory = match a.get("directory") {
                    Some(d) => {
                        match self.string(d, &format!("{p}.directory")) {
                            Some(s)
                                if ["letsencrypt", "letsencrypt-staging", "local"].contains(&s.as_str())
                                    || s.starts_with("https://")
                                    || s.starts_with("http://127.")
                                    || s.starts_with("http://localhost") =>
                            {
                                s
                            }
                            Some(s) => {
                                self.diags.push(Diagnostic::error("xberth.acme-directory", Some(d.pos), format!("{p}.directory"), format!("`{s}` is not an ACME directory")).with_hint("use `letsencrypt`, `letsencrypt-staging`, `local` or an https:// directory URL"));
                                "letsencrypt".into()
                            }
                            None => "letsencrypt".into(),
                        }
                    }
                    None => "letsencrypt".into(),
                };
                if let Some(email) = email {
                    x.acme = Some(Acme { email, directory });
                } else if a.get("email").is_some() {
                    self.err("xberth.email", &a["email"], &format!("{p}.email"), "not an e-mail address".into());
                }
            }
        }
        if let Some(n) = m.get("edge") {
            let p = format!("{path}.edge");
            if let Some(e) = self.fields(n, &p, EDGE_KEYS) {
                if let Some(v) = e.get("placement") {
                    x.edge.placement = self.strings(v, &format!("{p}.placement"));
                }
                if let Some(v) = e.get("http_port").and_then(|v| self.uint(v, &format!("{p}.http_port"), 65535)) {
                    x.edge.http_port = v as u16;
                }
                if let Some(v) = e.get("https_port").and_then(|v| self.uint(v, &format!("{p}.https_port"), 65535)) {
                    x.edge.https_port = v as u16;
                }
                if let Some(v) = e.get("hsts").and_then(|v| self.boolean(v, &format!("{p}.hsts"))) {
                    x.edge.hsts = v;
                }
                if let Some(v) = e.get("max_body").and_then(|v| self.size(v, &format!("{p}.max_body"))) {
                    x.edge.max_body = v;
                }
                if let Some(v) = e.get("timeout").and_then(|v| self.duration(v, &format!("{p}.timeout"))) {
                    x.edge.timeout_ms = v;
                }
            }
        }
        if let Some(n) = m.get("static") {
            let p = format!("{path}.static");
            match n.as_seq() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let ip = format!("{p}[{i}]");
                        let Some(s) = self.fields(item, &ip, STATIC_KEYS) else { continue };
                        let path_ = s.get("path").and_then(|v| self.url_path(v, &format!("{ip}.path")));
                        let volume = s.get("volume").and_then(|v| self.string(v, &format!("{ip}.volume")));
                        for (k, v) in [("path", &path_), ("volume", &volume)] {
                            if v.is_none() && !s.contains_key(k) {
                                self.diags.push(Diagnostic::error(
                                    "xberth.required",
                                    Some(item.pos),
                                    ip.clone(),
                                    format!("a static entry needs `{k}`"),
                                ));
                            }
                        }
                        let subdir = s.get("subdir").and_then(|v| self.string(v, &format!("{ip}.subdir")));
                        if let (Some(sd), Some(node)) = (&subdir, s.get("subdir"))
                            && (sd.split('/').any(|c| c == "..") || sd.starts_with('/'))
                        {
                            self.err(
                                "xberth.path",
                                node,
                                &format!("{ip}.subdir"),
                                format!("`{sd}` must be a relative path inside the volume, without `..`"),
                            );
                        }
                        let spa = s.get("spa").and_then(|v| self.boolean(v, &format!("{ip}.spa"))).unwrap_or(false);
                        let host = s.get("host").and_then(|v| self.hostname(v, &format!("{ip}.host")));
                        if let (Some(path), Some(volume)) = (path_, volume) {
                            x.statics.push(StaticMount { path, volume, subdir, spa, host });
                        }
                    }
                }
                None => self.expected(n, &p, "a list of `{ path, volume }` entries"),
            }
        }
        if let Some(n) = m.get("registry") {
            x.registry = self.string(n, &format!("{path}.registry"));
        }
        if let Some(n) = m.get("targets") {
            let p = format!("{path}.targets");
            if let Value::Map(t) = &n.value {
                for (name, spec) in t {
                    if let Some(ts) = self.target(spec, &format!("{p}.{name}")) {
                        x.targets.insert(name.clone(), ts);
                    }
                }
            } else {
                self.expected(n, &p, "a mapping of target names");
            }
        }
        if let Some(n) = m.get("default_target")
            && let Some(t) = self.string(n, &format!("{path}.default_target"))
        {
            if t != "local" && !x.targets.contains_key(&t) {
                let mut d = Diagnostic::error(
                    "xberth.target",
                    Some(n.pos),
                    format!("{path}.default_target"),
                    format!("no target named `{t}`"),
                );
                if let Some(m) = did_you_mean(&t, x.targets.keys().map(String::as_str)) {
                    d = d.with_hint(format!("did you mean `{m}`?"));
                }
                self.diags.push(d);
            }
            x.default_target = Some(t);
        }
        x
    }

    fn target(&mut self, node: &Node, path: &str) -> Option<TargetSpec> {
        let m = node.as_map();
        if m.is_some_and(|m| m.contains_key("ssh")) {
            let m = self.fields(node, path, SSH_KEYS)?;
            let hosts = self.strings(&m["ssh"], &format!("{path}.ssh"));
            if hosts.is_empty() {
                self.err(
                    "xberth.required",
                    &m["ssh"],
                    &format!("{path}.ssh"),
                    "an ssh target needs at least one host".into(),
                );
            }
            let managers = match m.get("managers") {
                Some(v) => self.uint(v, &format!("{path}.managers"), 7).unwrap_or(1) as u32,
                None => (hosts.len() as u32).clamp(1, 3).min(if hosts.len() >= 3 { 3 } else { 1 }),
            };
            if managers as usize > hosts.len().max(1) {
                self.err(
                    "xberth.managers",
                    &m["managers"],
                    &format!("{path}.managers"),
                    format!("{managers} managers but only {} hosts", hosts.len()),
                );
            }
            if managers % 2 == 0 && managers > 0 {
                self.diags.push(
                    Diagnostic::warning(
                        "xberth.quorum",
                        m.get("managers").map(|n| n.pos),
                        format!("{path}.managers"),
                        format!("{managers} managers tolerate no more failures than {}", managers - 1),
                    )
                    .with_hint("use an odd number of managers (1, 3 or 5)"),
                );
            }
            let edge = m.get("edge").map(|v| self.strings(v, &format!("{path}.edge"))).unwrap_or_default();
            let mut labels = BTreeMap::new();
            if let Some(l) = m.get("labels") {
                if let Value::Map(per_host) = &l.value {
                    for (host, kv) in per_host {
                        let hp = format!("{path}.labels.{host}");
                        if !hosts.iter().any(|h| {
                            h == host || h.rsplit('@').next().is_some_and(|x| x.split(':').next() == Some(host))
                        }) {
                            self.err(
                                "xberth.host-unknown",
                                kv,
                                &hp,
                                format!("`{host}` is not one of this target's hosts"),
                            );
                        }
                        let mut one = BTreeMap::new();
                        if let Value::Map(kvm) = &kv.value {
                            for (k, v) in kvm {
                                let s = match &v.value {
                                    Value::Str(s) => s.clone(),
                                    Value::Int(i) => i.to_string(),
                                    Value::Bool(b) => b.to_string(),
                                    _ => {
                                        self.expected(v, &format!("{hp}.{k}"), "a string");
                                        continue;
                                    }
                                };
                                one.insert(k.clone(), s);
                            }
                        } else {
                            self.expected(kv, &hp, "a mapping of label names to values");
                        }
                        labels.insert(host.clone(), one);
                    }
                } else {
                    self.expected(l, &format!("{path}.labels"), "a mapping of host to labels");
                }
            }
            let user = m.get("user").and_then(|v| self.string(v, &format!("{path}.user")));
            let key = m.get("key").and_then(|v| self.string(v, &format!("{path}.key")));
            let trust_new_hosts = m
                .get("trust_new_hosts")
                .and_then(|v| self.boolean(v, &format!("{path}.trust_new_hosts")))
                .unwrap_or(false);
            let known_hosts = m.get("known_hosts").and_then(|v| self.string(v, &format!("{path}.known_hosts")));
            let socket = m.get("socket").and_then(|v| self.string(v, &format!("{path}.socket")));
            if let (Some(sock), Some(n)) = (&socket, m.get("socket"))
                && !sock.starts_with('/')
            {
                self.err(
                    "xberth.socket",
                    n,
                    &format!("{path}.socket"),
                    "the Docker socket path must be absolute".into(),
                );
            }
            let heartbeat = m.get("heartbeat").and_then(|v| self.string(v, &format!("{path}.heartbeat")));
            return Some(TargetSpec::Ssh(SshTarget {
                hosts,
                user,
                key,
                managers,
                edge,
                labels,
                trust_new_hosts,
                known_hosts,
                socket,
                heartbeat,
            }));
        }
        if m.is_some_and(|m| m.contains_key("aws")) {
            return self.aws_target(node, path);
        }
        if let Some(m) = m
            && m.contains_key("local")
            && m.len() == 1
        {
            return Some(TargetSpec::Local);
        }
        self.diags.push(
            Diagnostic::error(
                "xberth.target-kind",
                Some(node.pos),
                path,
                "a target needs `ssh: [hosts]`, `aws: {}` with a `region`, or `local: true`",
            )
            .with_hint("see docs/x-berth.md#targets"),
        );
        None
    }

    /// An `aws: {}` target: every setting checked, with its position, and defaults filled in.
    fn aws_target(&mut self, node: &Node, path: &str) -> Option<TargetSpec> {
        let m = self.fields(node, path, AWS_KEYS)?;
        let before = self.diags.len();
        // `aws: true` or `aws: {}` marks the kind; the settings sit beside it.
        match &m["aws"].value {
            Value::Bool(true) => {}
            Value::Map(inner) if inner.is_empty() => {}
            _ => self.err(
                "xberth.type",
                &m["aws"],
                &format!("{path}.aws"),
                "expected `true` or `{}` (the settings sit beside `aws`, e.g. `region:`)".into(),
            ),
        }
        let region = match m.get("region") {
            Some(v) => self.string(v, &format!("{path}.region")).filter(|s| {
                let ok = is_region(s);
                if !ok {
                    self.diags.push(
                        Diagnostic::error(
                            "xberth.region",
                            Some(v.pos),
                            format!("{path}.region"),
                            format!("`{s}` is not an AWS region name"),
                        )
                        .with_hint("e.g. `eu-west-1` or `us-east-2`"),
                    );
                }
                ok
            }),
            None => {
                self.diags.push(
                    Diagnostic::error("xberth.required", Some(node.anchor()), path, "an aws target needs a `region`")
                        .with_hint("e.g. `region: eu-west-1`"),
                );
                None
            }
        };
        let mode = match m.get("mode") {
            Some(v) => match self.string(v, &format!("{path}.mode")).as_deref() {
                Some("single") => AwsMode::Single,
                Some("cluster") => AwsMode::Cluster,
                Some(s) => {
                    let msg = format!("`{s}` is not `single` or `cluster`");
                    self.err("xberth.enum", v, &format!("{path}.mode"), msg);
                    AwsMode::Single
                }
                None => AwsMode::Single,
            },
            None => AwsMode::Single,
        };
        let profile = m.get("profile").and_then(|v| self.string(v, &format!("{path}.profile")));
        let instance_type = match m.get("instance_type") {
            Some(v) => self.string(v, &format!("{path}.instance_type")).filter(|s| {
                let ok = is_instance_type(s);
                if ok && is_arm_instance_type(s) {
                    self.diags.push(
                        Diagnostic::error(
                            "xberth.instance-type",
                            Some(v.pos),
                            format!("{path}.instance_type"),
                            format!("`{s}` is an Arm (Graviton) type: the instances run berth's own x86_64 binary"),
                        )
                        .with_hint("pick an x86_64 type, e.g. `t3.small`, `m7i.large` or `c7a.large`"),
                    );
                    return false;
                }
                if !ok {
                    self.diags.push(
                        Diagnostic::error(
                            "xberth.instance-type",
                            Some(v.pos),
                            format!("{path}.instance_type"),
                            format!("`{s}` is not an EC2 instance type"),
                        )
                        .with_hint("write `family.size`, e.g. `t3.small` or `m7g.large`"),
                    );
                }
                ok
            }),
            None => Some(AWS_DEFAULT_INSTANCE_TYPE.into()),
        };
        let single_only = |cx: &mut Cx, key: &str| {
            if mode == AwsMode::Single
                && let Some(v) = m.get(key)
            {
                cx.diags.push(
                    Diagnostic::error(
                        "xberth.aws-mode",
                        Some(v.anchor()),
                        format!("{path}.{key}"),
                        format!("`{key}` applies to `mode: cluster` only (single mode is one instance)"),
                    )
                    .with_hint("add `mode: cluster`, or remove this key"),
                );
            }
        };
        single_only(self, "managers");
        single_only(self, "workers");
        single_only(self, "workers_max");
        let managers = match (mode, m.get("managers")) {
            (AwsMode::Single, _) => 1,
            (AwsMode::Cluster, None) => 3,
            (AwsMode::Cluster, Some(v)) => match self.uint(v, &format!("{path}.managers"), 99) {
                Some(n @ (3 | 5)) => n as u32,
                Some(n) => {
                    self.diags.push(
                        Diagnostic::error(
                            "xberth.managers",
                            Some(v.pos),
                            format!("{path}.managers"),
                            format!("{n} managers: a cluster has 3 or 5 (one per zone, or two in two zones)"),
                        )
                        .with_hint("3 managers survive the loss of one, 5 the loss of two"),
                    );
                    3
                }
                None => 3,
            },
        };
        let workers = match (mode, m.get("workers")) {
            (AwsMode::Cluster, Some(v)) => self.uint(v, &format!("{path}.workers"), 1000).unwrap_or(0) as u32,
            _ => 0,
        };
        let workers_max = match (mode, m.get("workers_max")) {
            (AwsMode::Cluster, Some(v)) => match self.uint(v, &format!("{path}.workers_max"), 1000) {
                Some(n) if (n as u32) < workers => {
                    self.diags.push(
                        Diagnostic::error(
                            "xberth.workers-max",
                            Some(v.pos),
                            format!("{path}.workers_max"),
                            format!("`workers_max` ({n}) is below `workers` ({workers})"),
                        )
                        .with_hint("the worker group's maximum must be at least its desired size"),
                    );
                    workers
                }
                Some(n) => n as u32,
                None => workers,
            },
            _ => workers,
        };
        let hosted_zone = m.get("hosted_zone").and_then(|v| {
            // Route53 writes zone names with the root's dot (`example.com.`); both spellings are taken.
            let trimmed = match &v.value {
                Value::Str(s) if s.ends_with('.') => Node { value: Value::Str(s[..s.len() - 1].into()), ..v.clone() },
                _ => v.clone(),
            };
            self.hostname(&trimmed, &format!("{path}.hosted_zone"))
        });
        let ssh_cidr = m.get("ssh_cidr").and_then(|v| {
            let s = self.string(v, &format!("{path}.ssh_cidr"))?;
            if parse_ipv4_cidr(&s).is_some() || is_ipv6_cidr(&s) {
                if s == "0.0.0.0/0" || s == "::/0" {
                    self.diags.push(
                        Diagnostic::warning(
                            "xberth.ssh-open",
                            Some(v.pos),
                            format!("{path}.ssh_cidr"),
                            format!("`{s}` opens SSH to the whole internet"),
                        )
                        .with_hint("limit it to your operator network, e.g. `203.0.113.0/24`, or remove it"),
                    );
                }
                Some(s)
            } else {
                self.diags.push(
                    Diagnostic::error(
                        "xberth.cidr",
                        Some(v.pos),
                        format!("{path}.ssh_cidr"),
                        format!("`{s}` is not a CIDR block"),
                    )
                    .with_hint("e.g. `203.0.113.7/32` for one address"),
                );
                None
            }
        });
        let ssh_key = m.get("ssh_key").and_then(|v| self.string(v, &format!("{path}.ssh_key")));
        let volume_size = match m.get("volume_size") {
            Some(v) => match self.uint(v, &format!("{path}.volume_size"), 16384) {
                Some(n) if n < 8 => {
                    self.diags.push(
                        Diagnostic::error(
                            "xberth.range",
                            Some(v.pos),
                            format!("{path}.volume_size"),
                            format!("{n} GiB is too small for the root volume"),
                        )
                        .with_hint("Debian 12 needs at least 8 GiB; the default is 20"),
                    );
                    AWS_DEFAULT_VOLUME_SIZE
                }
                Some(n) => n as u32,
                None => AWS_DEFAULT_VOLUME_SIZE,
            },
            None => AWS_DEFAULT_VOLUME_SIZE,
        };
        let cidr = match m.get("cidr") {
            Some(v) => self.string(v, &format!("{path}.cidr")).filter(|s| match parse_ipv4_cidr(s) {
                Some((a, len)) if (16..=24).contains(&len) && u32::from(a) & (u32::MAX >> len) == 0 => true,
                parsed => {
                    let msg = match parsed {
                        Some((_, len)) if !(16..=24).contains(&len) => {
                            format!("a /{len} VPC: AWS allows /16 to /28, berth needs room for 3 subnets")
                        }
                        Some((_, len)) => {
                            format!("`{s}` has host bits set: a /{len} block starts at its network address")
                        }
                        None => format!("`{s}` is not an IPv4 CIDR block"),
                    };
                    self.diags.push(
                        Diagnostic::error("xberth.cidr", Some(v.pos), format!("{path}.cidr"), msg)
                            .with_hint("use a private /16 to /24, e.g. `10.0.0.0/16`"),
                    );
                    false
                }
            }),
            None => Some(AWS_DEFAULT_CIDR.into()),
        };
        let immutable_tags =
            m.get("immutable_tags").and_then(|v| self.boolean(v, &format!("{path}.immutable_tags"))).unwrap_or(false);
        let ami = m.get("ami").and_then(|v| {
            let s = self.string(v, &format!("{path}.ami"))?;
            if is_ami_id(&s) {
                return Some(s);
            }
            self.diags.push(
                Diagnostic::error("xberth.ami", Some(v.pos), format!("{path}.ami"), format!("`{s}` is not an AMI ID"))
                    .with_hint("write the image's ID, e.g. `ami-0123456789abcdef0` (x86_64, with cloud-init and apt)"),
            );
            None
        });
        let ssh_user = m.get("ssh_user").and_then(|v| {
            let s = self.string(v, &format!("{path}.ssh_user"))?;
            let ok = s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            if ok {
                return Some(s);
            }
            self.diags.push(
                Diagnostic::error(
                    "xberth.ssh-user",
                    Some(v.pos),
                    format!("{path}.ssh_user"),
                    format!("`{s}` is not a user name"),
                )
                .with_hint("the image's login user, e.g. `admin` (Debian) or `ubuntu`"),
            );
            None
        });
        let socket = m.get("socket").and_then(|v| {
            let s = self.string(v, &format!("{path}.socket"))?;
            if s.starts_with('/') {
                return Some(s);
            }
            self.diags.push(
                Diagnostic::error(
                    "xberth.socket",
                    Some(v.pos),
                    format!("{path}.socket"),
                    format!("`{s}` is not an absolute path"),
                )
                .with_hint("e.g. `/var/run/docker.sock`"),
            );
            None
        });
        if self.diags[before..].iter().any(Diagnostic::is_error) {
            return None;
        }
        Some(TargetSpec::Aws(AwsTarget {
            region: region?,
            profile,
            mode,
            instance_type: instance_type?,
            managers,
            workers,
            workers_max,
            hosted_zone,
            ssh_cidr,
            ssh_key,
            volume_size,
            cidr: cidr?,
            immutable_tags,
            ami,
            ssh_user,
            socket,
        }))
    }

    /// Checks a top-level secret's `x-berth` block: exactly one source, and no `file`/`external`/`driver`.
    fn secret(&mut self, name: &str, def: &Node, node: &Node) {
        let path = format!("secrets.{name}.x-berth");
        let Some(source) = self.secret_source(node, &path) else { return };
        for other in ["file", "external", "driver"] {
            if let Some(v) = def.get(other) {
                if other == "external" && matches!(v.value, Value::Bool(false)) {
                    continue;
                }
                let what = match source {
                    SecretSource::Generate(_) => "generated",
                    SecretSource::Env(_) => "taken from the environment",
                };
                self.diags.push(
                    Diagnostic::error(
                        "xberth.secret-conflict",
                        Some(v.anchor()),
                        format!("secrets.{name}.{other}"),
                        format!(
                            "secret `{name}` has both `{other}` and an `x-berth` value source (its value is {what})"
                        ),
                    )
                    .with_hint(format!("remove `{other}` or the `x-berth` block: a secret has one source")),
                );
            }
        }
    }

    fn secret_source(&mut self, node: &Node, path: &str) -> Option<SecretSource> {
        let m = self.fields(node, path, SECRET_KEYS)?;
        let (generate, env) = (m.get("generate"), m.get("env"));
        if generate.is_some() && env.is_some() {
            self.diags.push(
                Diagnostic::error(
                    "xberth.secret-source",
                    Some(node.pos),
                    path,
                    "`generate` and `env` cannot be used together",
                )
                .with_hint("a secret is either generated once (`generate: 50`) or taken from a variable (`env: NAME`)"),
            );
            return None;
        }
        if let Some(g) = generate {
            let p = format!("{path}.generate");
            return match &g.value {
                Value::Bool(true) => Some(SecretSource::Generate(GENERATE_DEFAULT_LENGTH)),
                Value::Int(i) if (GENERATE_MIN_LENGTH as i64..=GENERATE_MAX_LENGTH as i64).contains(i) => {
                    Some(SecretSource::Generate(*i as u32))
                }
                Value::Int(i) => {
                    self.diags.push(
                        Diagnostic::error("xberth.range", Some(g.pos), p, format!("a generated secret of {i} characters is out of range ({GENERATE_MIN_LENGTH} to {GENERATE_MAX_LENGTH})"))
                            .with_hint(format!("`generate: true` makes {GENERATE_DEFAULT_LENGTH} characters")),
                    );
                    None
                }
                _ => {
                    self.diags.push(
                        Diagnostic::error(
                            "xberth.type",
                            Some(g.pos),
                            p,
                            format!("expected `true` or a length, found {}", g.type_name()),
                        )
                        .with_hint(format!("e.g. `generate: {GENERATE_DEFAULT_LENGTH}` (characters A-Z, a-z, 0-9)")),
                    );
                    None
                }
            };
        }
        if let Some(e) = env {
            let p = format!("{path}.env");
            let var = self.string(e, &p)?;
            let valid = var.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.diags.push(
                    Diagnostic::error("xberth.secret-env-name", Some(e.pos), p, format!("`{var}` is not an environment variable name"))
                        .with_hint("write the variable's name, like `env: DB_PASSWORD` (letters, digits and `_`, not starting with a digit)"),
                );
                return None;
            }
            return Some(SecretSource::Env(var));
        }
        self.diags.push(
            Diagnostic::error(
                "xberth.secret-source",
                Some(node.anchor()),
                path,
                "a secret's `x-berth` needs `generate` or `env`",
            )
            .with_hint("`generate: 50` makes a random value once; `env: NAME` takes it from an environment variable"),
        );
        None
    }

    fn service(&mut self, node: &Node, path: &str) -> ServiceBerth {
        let mut sb = ServiceBerth::default();
        let Some(m) = self.fields(node, path, SERVICE_KEYS) else { return sb };
        if let Some(n) = m.get("routes") {
            let p = format!("{path}.routes");
            let items: Vec<&Node> = match &n.value {
                Value::Seq(s) => s.iter().collect(),
                Value::Str(_) => vec![n],
                _ => {
                    self.expected(n, &p, "a list of path prefixes");
                    vec![]
                }
            };
            for (i, item) in items.into_iter().enumerate() {
                let ip = format!("{p}[{i}]");
                match &item.value {
                    Value::Str(_) => {
                        if let Some(path) = self.url_path(item, &ip) {
                            sb.routes.push(Route {
                                path,
                                host: None,
                                strip_prefix: false,
                                max_body: None,
                                timeout_ms: None,
                            });
                        }
                    }
                    Value::Map(_) => {
                        let Some(r) = self.fields(item, &ip, ROUTE_KEYS) else { continue };
                        let path = match r.get("path") {
                            Some(v) => self.url_path(v, &format!("{ip}.path")),
                            None => Some("/".to_string()),
                        };
                        let host = r.get("host").and_then(|v| self.hostname(v, &format!("{ip}.host")));
                        let strip_prefix = r
                            .get("strip_prefix")
                            .and_then(|v| self.boolean(v, &format!("{ip}.strip_prefix")))
                            .unwrap_or(false);
                        let max_body = r.get("max_body").and_then(|v| self.size(v, &format!("{ip}.max_body")));
                        let timeout_ms = r.get("timeout").and_then(|v| self.duration(v, &format!("{ip}.timeout")));
                        if let Some(path) = path {
                            sb.routes.push(Route { path, host, strip_prefix, max_body, timeout_ms });
                        }
                    }
                    _ => self.expected(item, &ip, "a path prefix or a `{ path, host }` mapping"),
                }
            }
        }
        if let Some(n) = m.get("port") {
            sb.port = self.uint(n, &format!("{path}.port"), 65535).filter(|p| *p > 0).map(|p| p as u16);
        }
        if let Some(n) = m.get("health") {
            let p = format!("{path}.health");
            match &n.value {
                Value::Str(_) => {
                    sb.health = self.url_path(n, &p).map(|path| Health { path, interval_ms: 2_000, timeout_ms: 2_000 });
                }
                Value::Map(_) => {
                    if let Some(h) = self.fields(n, &p, HEALTH_KEYS) {
                        let path = match h.get("path") {
                            Some(v) => self.url_path(v, &format!("{p}.path")),
                            None => {
                                self.diags.push(Diagnostic::error(
                                    "xberth.required",
                                    Some(n.anchor()),
                                    p.clone(),
                                    "`health` needs a `path`",
                                ));
                                None
                            }
                        };
                        let interval_ms =
                            h.get("interval").and_then(|v| self.duration(v, &format!("{p}.interval"))).unwrap_or(2_000);
                        let timeout_ms =
                            h.get("timeout").and_then(|v| self.duration(v, &format!("{p}.timeout"))).unwrap_or(2_000);
                        sb.health = path.map(|path| Health { path, interval_ms, timeout_ms });
                    }
                }
                _ => self.expected(n, &p, "a path like `/health` or a `{ path, interval, timeout }` mapping"),
            }
        }
        if let Some(n) = m.get("release") {
            let p = format!("{path}.release");
            let items: Vec<&Node> = match &n.value {
                Value::Seq(s) => s.iter().collect(),
                Value::Str(_) => vec![n],
                _ => {
                    self.expected(n, &p, "a list of commands");
                    vec![]
                }
            };
            for (i, item) in items.into_iter().enumerate() {
                let ip = format!("{p}[{i}]");
                match &item.value {
                    Value::Str(s) => match split_words(s) {
                        Some(argv) if !argv.is_empty() => sb.release.push(argv),
                        _ => self.err(
                            "xberth.command",
                            item,
                            &ip,
                            format!("cannot split `{s}` into words (unbalanced quote?)"),
                        ),
                    },
                    Value::Seq(words) => {
                        let argv: Vec<String> = words
                            .iter()
                            .enumerate()
                            .filter_map(|(j, w)| self.string(w, &format!("{ip}[{j}]")))
                            .collect();
                        if argv.is_empty() {
                            self.err("xberth.command", item, &ip, "empty command".into());
                        } else {
                            sb.release.push(argv);
                        }
                    }
                    _ => self.expected(item, &ip, "a command string or a list of words"),
                }
            }
        }
        sb
    }
}

/// Parses `30s`, `1m30s`, `500ms`, `2h` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Parses `512`, `512k`, `10m`, `1g` (also `kb`, `mb`, `gb`, any case) into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return None;
    }
    let n: u64 = t[..digits].parse().ok()?;
    let mult: u64 = match t[digits..].trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Splits a command line into words like a POSIX shell does for quoting (no expansion):
/// `'…'`, `"…"` with `\"` and `\\`, backslash escapes outside quotes. `None` on an unbalanced quote.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => cur.push(c),
                            c => {
                                cur.push('\\');
                                cur.push(c);
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn check(src: &str) -> Vec<String> {
        check_document(&parse(src, 0).unwrap())
            .iter()
            .map(|d| {
                format!(
                    "{}:{} {} {}{}",
                    d.pos.map_or(0, |p| p.line),
                    d.pos.map_or(0, |p| p.col),
                    d.path,
                    d.message,
                    d.hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn a_full_example_is_accepted() {
        let src = r#"
services:
  backend:
    image: blog/backend
    x-berth:
      routes: [/api, /admin, { path: /graphql, timeout: 2m, max_body: 1m }]
      port: 8000
      health: /api/health
      release:
        - python manage.py migrate --noinput
        - [python, manage.py, collectstatic, --noinput]
volumes:
  assets: {}
x-berth:
  name: blog
  domain: blog.example.com
  acme: { email: ops@example.com }
  static:
    - { path: /static, volume: assets, subdir: static }
    - { path: /, volume: assets, subdir: spa, spa: true }
  targets:
    prod: { ssh: [root@203.0.113.10, root@203.0.113.11, root@203.0.113.12], managers: 3 }
    cloud: { aws: {}, region: eu-west-1, mode: cluster }
  default_target: prod
"#;
        assert_eq!(check(src), Vec::<String>::new());
        let doc = parse(src, 0).unwrap();
        let sb = ServiceBerth::from_json(&doc.at(&["services", "backend", "x-berth"]).unwrap().to_json());
        assert_eq!(sb.release[0], ["python", "manage.py", "migrate", "--noinput"]);
        assert_eq!(sb.routes[2].timeout_ms, Some(120_000));
        assert_eq!(sb.routes[2].max_body, Some(1 << 20));
        let x = XBerth::from_json(&doc.get("x-berth").unwrap().to_json());
        assert_eq!(x.domains, ["blog.example.com"]);
        assert!(matches!(&x.targets["prod"], TargetSpec::Ssh(s) if s.managers == 3 && s.hosts.len() == 3));
        assert!(
            matches!(&x.targets["cloud"], TargetSpec::Aws(a) if a.mode == AwsMode::Cluster && a.managers == 3 && a.instance_type == "t3.small")
        );
    }

    #[test]
    fn typos_get_a_suggestion_at_the_key() {
        let got = check("services:\n  web:\n    image: x\n    x-berth:\n      rutes: [/]\n      port: 80\n");
        assert_eq!(
            got,
            ["5:7 services.web.x-berth.rutes unknown key `rutes` in `services.web.x-berth` (did you mean `routes`?)"]
        );
    }

    #[test]
    fn routes_need_a_port_and_a_path() {
        let got = check(
            "services:\n  web:\n    image: x\n    x-berth:\n      routes: [api]\n  api:\n    image: y\n    x-berth: { routes: [/], port: 80 }\n",
        );
        assert!(got.iter().any(|g| g.contains("`api` is not a URL path prefix")), "{got:?}");
        let got = check("services:\n  web:\n    image: x\n    x-berth:\n      routes: [/]\n");
        assert!(got.iter().any(|g| g.contains("needs a `port`")), "{got:?}");
    }

    #[test]
    fn two_services_cannot_claim_one_route() {
        let got = check(
            "services:\n  a:\n    x-berth: { routes: [/api], port: 1 }\n  b:\n    x-berth: { routes: [/api], port: 1 }\n",
        );
        assert_eq!(got, ["5:25 services.b.x-berth.routes[0] route `/api` is already routed to service `a`"]);
    }

    #[test]
    fn static_volume_must_be_declared() {
        let got =
            check("services: {}\nvolumes:\n  assets: {}\nx-berth:\n  static: [{ path: /static, volume: asets }]\n");
        assert_eq!(got.len(), 1);
        assert!(
            got[0].contains("volume `asets` is not declared") && got[0].contains("did you mean `assets`?"),
            "{got:?}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let got = check(
            "services: {}\nx-berth:\n  domain: https://x.com\n  acme: { directory: ftp://x }\n  edge: { timeout: soon, https_port: 70000 }\n",
        );
        assert!(got.iter().any(|g| g.contains("is not a host name")), "{got:?}");
        assert!(got.iter().any(|g| g.contains("needs an `email`")), "{got:?}");
        assert!(got.iter().any(|g| g.contains("is not an ACME directory")), "{got:?}");
        assert!(got.iter().any(|g| g.contains("expected a duration")), "{got:?}");
        assert!(got.iter().any(|g| g.contains("out of range")), "{got:?}");
    }

    #[test]
    fn even_manager_counts_warn() {
        let got = check("services: {}\nx-berth:\n  targets:\n    p: { ssh: [a, b, c, d], managers: 2 }\n");
        assert!(got.iter().any(|g| g.contains("use an odd number of managers")), "{got:?}");
    }

    fn aws(settings: &str) -> (Vec<String>, Option<AwsTarget>) {
        let src = format!("services: {{}}\nx-berth:\n  targets:\n    cloud:\n      aws: {{}}\n{settings}");
        let got = check(&src);
        let doc = parse(&src, 0).unwrap();
        let x = XBerth::from_json(&doc.get("x-berth").unwrap().to_json());
        let t = match x.targets.get("cloud") {
            Some(TargetSpec::Aws(a)) => Some(a.clone()),
            _ => None,
        };
        (got, t)
    }

    #[test]
    fn aws_defaults_single() {
        let (got, t) = aws("      region: eu-west-1\n");
        assert_eq!(got, Vec::<String>::new());
        assert_eq!(
            t.unwrap(),
            AwsTarget {
                region: "eu-west-1".into(),
                profile: None,
                mode: AwsMode::Single,
                instance_type: "t3.small".into(),
                managers: 1,
                workers: 0,
                workers_max: 0,
                hosted_zone: None,
                ssh_cidr: None,
                ssh_key: None,
                volume_size: 20,
                cidr: "10.0.0.0/16".into(),
                immutable_tags: false,
                ami: None,
                ssh_user: None,
                socket: None,
            }
        );
        let (got, t) = aws("      region: eu-west-1\n      cidr: 10.0.1.0/16\n      immutable_tags: true\n");
        assert!(t.is_none());
        assert_eq!(
            got,
            [
                "7:13 x-berth.targets.cloud.cidr `10.0.1.0/16` has host bits set: a /16 block starts at its network address (use a private /16 to /24, e.g. `10.0.0.0/16`)"
            ]
        );
    }

    #[test]
    fn aws_cluster_with_every_key() {
        let (got, t) = aws(
            "      region: us-gov-west-1\n      profile: ops\n      mode: cluster\n      instance_type: m7i.large\n      managers: 5\n      workers: 2\n      workers_max: 6\n      hosted_zone: Example.com.\n      ssh_cidr: 203.0.113.7/32\n      ssh_key: ~/.ssh/id_ed25519.pub\n      volume_size: \"40\"\n      cidr: 10.20.0.0/20\n      ami: ami-0123456789abcdef0\n      ssh_user: ubuntu\n      socket: /run/docker.sock\n",
        );
        assert_eq!(got, Vec::<String>::new());
        let t = t.unwrap();
        assert_eq!((t.mode, t.managers, t.workers, t.workers_max, t.volume_size), (AwsMode::Cluster, 5, 2, 6, 40));
        assert_eq!(t.hosted_zone.as_deref(), Some("example.com"));
        assert_eq!(t.ssh_key.as_deref(), Some("~/.ssh/id_ed25519.pub"));
        assert_eq!((t.instance_type.as_str(), t.cidr.as_str()), ("m7i.large", "10.20.0.0/20"));
        assert_eq!(t.ami.as_deref(), Some("ami-0123456789abcdef0"));
        assert_eq!((t.ssh_user.as_deref(), t.socket.as_deref()), (Some("ubuntu"), Some("/run/docker.sock")));
        // workers_max defaults to workers.
        let (_, t) = aws("      region: eu-west-1\n      mode: cluster\n      workers: 4\n");
        assert_eq!(t.unwrap().workers_max, 4);
    }

    #[test]
    fn aws_bad_values_are_named_at_their_line() {
        let (got, t) = aws(
            "      region: Ireland\n      mode: cluster\n      instance_type: big\n      managers: 4\n      workers: 3\n      workers_max: 2\n      ssh_cidr: 10.0.0.1\n      volume_size: 4\n      cidr: 10.0.0.0/8\n      ssh_keys: x\n      ami: debian-12\n      ssh_user: Admin\n",
        );
        assert!(t.is_none());
        let want = [
            "6:15 x-berth.targets.cloud.region `Ireland` is not an AWS region name (e.g. `eu-west-1` or `us-east-2`)",
            "8:22 x-berth.targets.cloud.instance_type `big` is not an EC2 instance type (write `family.size`, e.g. `t3.small` or `m7g.large`)",
            "9:17 x-berth.targets.cloud.managers 4 managers: a cluster has 3 or 5 (one per zone, or two in two zones) (3 managers survive the loss of one, 5 the loss of two)",
            "11:20 x-berth.targets.cloud.workers_max `workers_max` (2) is below `workers` (3) (the worker group's maximum must be at least its desired size)",
            "12:17 x-berth.targets.cloud.ssh_cidr `10.0.0.1` is not a CIDR block (e.g. `203.0.113.7/32` for one address)",
            "13:20 x-berth.targets.cloud.volume_size 4 GiB is too small for the root volume (Debian 12 needs at least 8 GiB; the default is 20)",
            "14:13 x-berth.targets.cloud.cidr a /8 VPC: AWS allows /16 to /28, berth needs room for 3 subnets (use a private /16 to /24, e.g. `10.0.0.0/16`)",
            "15:7 x-berth.targets.cloud.ssh_keys unknown key `ssh_keys` in `x-berth.targets.cloud` (did you mean `ssh_key`?)",
            "16:12 x-berth.targets.cloud.ami `debian-12` is not an AMI ID (write the image's ID, e.g. `ami-0123456789abcdef0` (x86_64, with cloud-init and apt))",
            "17:17 x-berth.targets.cloud.ssh_user `Admin` is not a user name (the image's login user, e.g. `admin` (Debian) or `ubuntu`)",
        ];
        for w in want {
            assert!(got.contains(&w.to_string()), "missing {w:?} in {got:#?}");
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }

    #[test]
    fn aws_cluster_keys_in_single_mode_and_missing_region() {
        let (got, t) = aws("      workers: 2\n");
        assert!(t.is_none());
        assert_eq!(
            got,
            [
                "4:5 x-berth.targets.cloud an aws target needs a `region` (e.g. `region: eu-west-1`)",
                "6:7 x-berth.targets.cloud.workers `workers` applies to `mode: cluster` only (single mode is one instance) (add `mode: cluster`, or remove this key)",
            ]
        );
    }

    #[test]
    fn aws_arm_instance_types_are_refused() {
        for t in ["t4g.small", "m7gd.large", "c6gn.xlarge", "x2gd.medium", "im4gn.large", "hpc7g.4xlarge"] {
            let (got, parsed) = aws(&format!("      region: eu-west-1\n      instance_type: {t}\n"));
            assert!(parsed.is_none() && got.len() == 1 && got[0].contains("Arm (Graviton)"), "{t}: {got:?}");
        }
        for t in ["g4dn.xlarge", "t3.small", "m7i.large", "c7a.large", "p4d.24xlarge", "inf2.xlarge"] {
            let (got, parsed) = aws(&format!("      region: eu-west-1\n      instance_type: {t}\n"));
            assert!(parsed.is_some() && got.is_empty(), "{t}: {got:?}");
        }
    }

    #[test]
    fn aws_ssh_open_to_the_world_warns() {
        let (got, t) = aws("      region: eu-west-1\n      ssh_cidr: 0.0.0.0/0\n");
        assert_eq!(t.unwrap().ssh_cidr.as_deref(), Some("0.0.0.0/0"));
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("7:17 x-berth.targets.cloud.ssh_cidr `0.0.0.0/0` opens SSH"), "{got:?}");
        let (got, t) = aws("      region: eu-west-1\n      ssh_cidr: 2001:db8::/48\n");
        assert_eq!((got.len(), t.is_some()), (0, true));
    }

    fn secret_check(def: &str) -> Vec<String> {
        check(&format!("services: {{}}\nsecrets:\n  key:\n{def}"))
    }

    #[test]
    fn secret_sources_generate_and_env_are_accepted() {
        assert_eq!(secret_check("    x-berth: { generate: 50 }\n"), Vec::<String>::new());
        assert_eq!(secret_check("    x-berth: { generate: true }\n    labels: [a=b]\n"), Vec::<String>::new());
        assert_eq!(secret_check("    x-berth: { env: DB_PASSWORD }\n    external: false\n"), Vec::<String>::new());
        let doc = parse("x-berth: { generate: true }\n", 0).unwrap();
        assert_eq!(SecretSource::from_json(&doc.get("x-berth").unwrap().to_json()), Some(SecretSource::Generate(50)));
        let doc = parse("x-berth: { generate: 8 }\n", 0).unwrap();
        assert_eq!(SecretSource::from_json(&doc.get("x-berth").unwrap().to_json()), Some(SecretSource::Generate(8)));
        let doc = parse("x-berth: { env: PW }\n", 0).unwrap();
        assert_eq!(
            SecretSource::from_json(&doc.get("x-berth").unwrap().to_json()),
            Some(SecretSource::Env("PW".into()))
        );
    }

    #[test]
    fn secret_generate_length_must_be_in_range() {
        let got = secret_check("    x-berth: { generate: 7 }\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("4:26 secrets.key.x-berth.generate") && got[0].contains("out of range (8 to 4096)"),
            "{got:?}"
        );
        assert!(secret_check("    x-berth: { generate: 4097 }\n")[0].contains("out of range"));
        assert_eq!(secret_check("    x-berth: { generate: 4096 }\n"), Vec::<String>::new());
        let got = secret_check("    x-berth: { generate: false }\n");
        assert!(got[0].contains("expected `true` or a length, found"), "{got:?}");
        let got = secret_check("    x-berth: { generate: \"50\" }\n");
        assert!(got[0].contains("expected `true` or a length"), "{got:?}");
    }

    #[test]
    fn secret_needs_exactly_one_source() {
        let got = secret_check("    x-berth: { generate: 50, env: PW }\n");
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("`generate` and `env` cannot be used together"), "{got:?}");
        let got = secret_check("    x-berth: {}\n");
        assert!(
            got[0].starts_with("4:5 secrets.key.x-berth a secret's `x-berth` needs `generate` or `env`"),
            "{got:?}"
        );
    }

    #[test]
    fn secret_source_conflicts_with_file_and_external() {
        let got = secret_check("    file: ./key.txt\n    x-berth: { env: PW }\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("4:5 secrets.key.file secret `key` has both `file` and an `x-berth` value source"),
            "{got:?}"
        );
        assert!(got[0].contains("remove `file` or the `x-berth` block"), "{got:?}");
        let got = secret_check("    external: true\n    x-berth: { generate: 50 }\n");
        assert!(got[0].contains("has both `external`") && got[0].contains("generated"), "{got:?}");
    }

    #[test]
    fn secret_unknown_keys_get_a_suggestion() {
        let got = secret_check("    x-berth: { generat: 50 }\n");
        assert!(
            got.iter().any(|g| g.contains("unknown key `generat`") && g.contains("did you mean `generate`?")),
            "{got:?}"
        );
        let got = secret_check("    x-berth: { evn: PW }\n");
        assert!(got.iter().any(|g| g.contains("did you mean `env`?")), "{got:?}");
    }

    #[test]
    fn secret_env_must_be_a_variable_name() {
        let got = secret_check("    x-berth: { env: 1PW }\n");
        assert!(got[0].contains("`1PW` is not an environment variable name"), "{got:?}");
        let got = secret_check("    x-berth: { env: [PW] }\n");
        assert!(got[0].contains("expected a string"), "{got:?}");
    }

    #[test]
    fn secret_value_debug_is_redacted() {
        let v = SecretValue::new("hunter2-very-secret");
        assert_eq!(format!("{v:?}"), "SecretValue(<redacted, 19 bytes>)");
        assert_eq!(v.expose(), b"hunter2-very-secret");
    }

    #[test]
    fn missing_secret_env_names_secret_variable_and_where_to_set_it() {
        let d = missing_secret_env("db_password", "DB_PASSWORD", false, None);
        assert_eq!(d.path, "secrets.db_password.x-berth.env");
        assert!(
            d.message.contains("`db_password`") && d.message.contains("`DB_PASSWORD`") && d.message.contains("not set")
        );
        let hint = d.hint.unwrap();
        assert!(hint.contains("environment") && hint.contains(".env") && hint.contains("--env-file"), "{hint}");
        assert!(missing_secret_env("a", "B", true, None).message.contains("empty"));
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(split_words(r#"sh -c "echo \"hi\" 'x'""#).unwrap(), ["sh", "-c", r#"echo "hi" 'x'"#]);
        assert_eq!(split_words("a 'b c' d\\ e").unwrap(), ["a", "b c", "d e"]);
        assert_eq!(split_words("a 'b"), None);
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("30"), None);
        assert_eq!(parse_size("10M"), Some(10 << 20));
    }
}
