//! Registry credentials: read once from the Docker CLI's `config.json` (`auths`, `credHelpers`,
//! `credsStore` through `docker-credential-*`), or given by a provider (ECR's short-lived tokens),
//! and used for every call that needs them: image pushes, `FROM` pulls of builds, and the
//! `X-Registry-Auth` of service creates and updates (like `docker stack deploy
//! --with-registry-auth`). [`RegistryAuths::fingerprints`] tells the plan when the credentials
//! changed, so that the swarm gets the new ones (`berth_plan::registry_auth`).
//!
//! Nothing here prints a credential: `Debug` shows the registry hosts only.

use berth_plan::desired::LABEL_OWNER;
use berth_plan::registry_auth::{LABEL_REGISTRY_AUTH, registry_of};
use bollard::auth::DockerCredentials;
use bollard::models::ServiceUpdateStatusStateEnum;
use bollard::query_parameters::{ListServicesOptions, UpdateServiceOptions};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Registry credentials from the Docker CLI's `config.json`.
#[derive(Clone, Default)]
pub struct RegistryAuths {
    auths: HashMap<String, DockerCredentials>,
    helpers: HashMap<String, String>,
    store: Option<String>,
    /// Given by a provider ([`RegistryAuths::insert`]): these win over the file's.
    given: HashMap<String, DockerCredentials>,
    /// What the credential helpers answered, asked once per host.
    asked: Arc<Mutex<HashMap<String, Option<DockerCredentials>>>>,
}

impl RegistryAuths {
    /// From `path`, or `$DOCKER_CONFIG/config.json`, or `~/.docker/config.json`; empty when absent.
    pub fn load(path: Option<PathBuf>) -> RegistryAuths {
        let path = path.or_else(|| {
            std::env::var_os("DOCKER_CONFIG")
                .map(|d| PathBuf::from(d).join("config.json"))
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")))
        });
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else { return RegistryAuths::default() };
        RegistryAuths::parse(&text)
    }

    /// From the text of a `config.json`.
    pub fn parse(text: &str) -> RegistryAuths {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else { return RegistryAuths::default() };
        let mut auths = HashMap::new();
        if let Some(map) = json.get("auths").and_then(|a| a.as_object()) {
            for (server, entry) in map {
                let mut creds = DockerCredentials { serveraddress: Some(server.clone()), ..Default::default() };
                if let Some(auth) = entry.get("auth").and_then(|a| a.as_str())
                    && let Some(decoded) = berth_plan::plan::decode_base64(auth)
                    && let Some((user, pass)) = String::from_utf8_lossy(&decoded).split_once(':')
                {
                    creds.username = Some(user.to_string());
                    creds.password = Some(pass.trim_end_matches('\n').to_string());
                }
                creds.identitytoken = entry.get("identitytoken").and_then(|t| t.as_str()).map(str::to_string);
                if creds.username.is_some() || creds.identitytoken.is_some() {
                    auths.insert(normalize_server(server), creds);
                }
            }
        }
        let helpers = json
            .get("credHelpers")
            .and_then(|h| h.as_object())
            .map(|m| m.iter().filter_map(|(k, v)| Some((normalize_server(k), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        let store = json.get("credsStore").and_then(|s| s.as_str()).map(str::to_string);
        RegistryAuths { auths, helpers, store, ..Default::default() }
    }

    /// Credentials for one registry host.
    pub fn for_host(&self, host: &str) -> Option<DockerCredentials> {
        let host = normalize_server(host);
        if let Some(c) = self.given.get(&host) {
            return Some(c.clone());
        }
        if let Some(helper) = self.helpers.get(&host).or(self.store.as_ref()) {
            let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
            let answer = asked.entry(host.clone()).or_insert_with(|| credential_helper(helper, &host));
            if let Some(c) = answer {
                return Some(c.clone());
            }
        }
        self.auths.get(&host).cloned()
    }

    /// Every `auths` entry keyed by server, for the builder's `FROM` pulls.
    pub fn all(&self) -> HashMap<String, DockerCredentials> {
        self.auths.iter().map(|(k, v)| (v.serveraddress.clone().unwrap_or_else(|| k.clone()), v.clone())).collect()
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `https://host:5000/` → `host:5000`.
fn normalize_server(s: &str) -> String {
    let s = s.trim_start_matches("https://").trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

/// Asks `docker-credential-<helper> get` for the credentials of `host`.
fn credential_helper(helper: &str, host: &str) -> Option<DockerCredentials> {
    use std::io::Write;
    let server = if host == "docker.io" { "https://index.docker.io/v1/" } else { host };
    let mut child = std::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let user = json.get("Username")?.as_str()?.to_string();
    let secret = json.get("Secret")?.as_str()?.to_string();
    let mut creds = DockerCredentials { serveraddress: Some(server.to_string()), ..Default::default() };
    if user == "<token>" {
        creds.identitytoken = Some(secret);
    } else {
        creds.username = Some(user);
        creds.password = Some(secret);
    }
    Some(creds)
}

impl RegistryAuths {
    /// Credentials for the registry of an image reference.
    pub fn for_image(&self, image: &str) -> Option<DockerCredentials> {
        if image.starts_with("sha256:") {
            return None;
        }
        self.for_host(registry_of(image))
    }

    /// Adds (or replaces) the credentials of one registry host, e.g. from a cloud provider's token call.
    pub fn insert(&mut self, host: &str, creds: DockerCredentials) {
        self.given.insert(normalize_server(host), creds);
    }

    /// [`RegistryAuths::insert`] of a user name and password (an ECR login, the swarm registry's).
    pub fn insert_login(&mut self, host: &str, username: String, password: String) {
        let creds = DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress: Some(host.to_string()),
            ..Default::default()
        };
        self.insert(host, creds);
    }

    /// Registry host → [`fingerprint`] of its credentials, for the registries of `images`
    /// that have credentials.
    pub fn fingerprints<'a>(&self, images: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for image in images {
            if image.starts_with("sha256:") {
                continue;
            }
            let host = registry_of(image);
            if out.contains_key(host) {
                continue;
            }
            if let Some(c) = self.for_host(host) {
                out.insert(host.to_string(), fingerprint(&c));
            }
        }
        out
    }
}

impl std::fmt::Debug for RegistryAuths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuths")
            .field("hosts", &self.auths.keys().chain(self.given.keys()).collect::<Vec<_>>())
            .field("helpers", &self.helpers)
            .field("store", &self.store)
            .finish()
    }
}

/// Labels the desired services with the fingerprints of their registries' credentials
/// (`berth_plan::registry_auth`): new credentials make a plan that sends them to the swarm.
pub fn label_services(desired: &mut berth_plan::Desired, auths: &RegistryAuths) {
    let images: Vec<String> = desired
        .services
        .values()
        .filter_map(|s| s.task_template.as_ref()?.container_spec.as_ref()?.image.clone())
        .collect();
    let fps = auths.fingerprints(images.iter().map(String::as_str));
    berth_plan::registry_auth::label_services(desired, &fps);
}

/// 16 hex digits of a SHA-256 over the credentials: changes when they change, tells nothing about
/// them. (Whoever can read a service's labels holds the swarm's API, which hands out far more.)
pub fn fingerprint(c: &DockerCredentials) -> String {
    let mut h = Sha256::new();
    h.update(b"berth-registry-auth\0");
    for part in [&c.serveraddress, &c.username, &c.password, &c.identitytoken, &c.registrytoken] {
        h.update(part.as_deref().unwrap_or("").as_bytes());
        h.update([0]);
    }
    h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl crate::Engine {
    /// The names of the services berth owns (any stack) whose image comes from a registry `auths`
    /// has credentials for, and whose [`LABEL_REGISTRY_AUTH`] differs from their fingerprint;
    /// services in the middle of a rolling update (or its rollback) are left for later.
    pub async fn stale_registry_auth(&self, auths: &RegistryAuths) -> Result<Vec<String>, crate::EngineError> {
        let filters = HashMap::from([("label".to_string(), vec![LABEL_OWNER.to_string()])]);
        let services = self
            .docker()
            .list_services(Some(ListServicesOptions { filters: Some(filters), status: None }))
            .await
            .map_err(crate::api("list services"))?;
        let mut out = Vec::new();
        for s in services {
            let (Some(spec), Some(name)) = (s.spec.as_ref(), s.spec.as_ref().and_then(|s| s.name.clone())) else {
                continue;
            };
            // A service a deploy is rolling: left alone until that ends (the deploy sends its own).
            if s.update_status.as_ref().and_then(|u| u.state).is_some_and(|st| {
                matches!(st, ServiceUpdateStatusStateEnum::UPDATING | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED)
            }) {
                continue;
            }
            let Some(image) = spec.task_template.as_ref().and_then(|t| t.container_spec.as_ref()?.image.as_deref())
            else {
                continue;
            };
            let Some(creds) = auths.for_image(image) else { continue };
            let have = spec.labels.as_ref().and_then(|l| l.get(LABEL_REGISTRY_AUTH));
            if have.map(String::as_str) != Some(fingerprint(&creds).as_str()) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Sends the swarm the credentials `auths` holds for `service`'s image registry: the service
    /// is updated with only its [`LABEL_REGISTRY_AUTH`] changed and the credentials as
    /// `X-Registry-Auth` (a service label: no task restarts). Retries when a concurrent update
    /// moved the service's version. Returns false when there was nothing to send (no credentials,
    /// service gone, fingerprint already current).
    pub async fn refresh_registry_auth(
        &self,
        service: &str,
        auths: &RegistryAuths,
    ) -> Result<bool, crate::EngineError> {
        let d = self.docker();
        for _attempt in 0..5 {
            let s = match d.inspect_service(service, None).await {
                Ok(s) => s,
                Err(e) if crate::release::is_not_found(&e) => return Ok(false),
                Err(e) => return Err(crate::api("inspect service")(e)),
            };
            let Some(mut spec) = s.spec else { return Ok(false) };
            let image = spec.task_template.as_ref().and_then(|t| t.container_spec.as_ref()?.image.clone());
            let Some(creds) = image.as_deref().and_then(|i| auths.for_image(i)) else { return Ok(false) };
            let fp = fingerprint(&creds);
            let labels = spec.labels.get_or_insert_with(HashMap::new);
            if labels.get(LABEL_OWNER).is_none() {
                return Ok(false); // not berth's
            }
            if labels.get(LABEL_REGISTRY_AUTH) == Some(&fp) {
                return Ok(false);
            }
            labels.insert(LABEL_REGISTRY_AUTH.into(), fp);
            let version = s.version.and_then(|v| v.index).unwrap_or(0) as i32;
            let opts = UpdateServiceOptions { version, ..Default::default() };
            match d.update_service(service, spec, opts, Some(creds)).await {
                Ok(_) => return Ok(true),
                Err(e) if e.to_string().contains("out of sequence") => continue,
                Err(e) => return Err(crate::api("update service")(e)),
            }
        }
        Err(crate::EngineError::Refused {
            message: format!("service {service} kept changing while its registry credentials were refreshed"),
            hint: Some("run it again once the deploy in progress has finished".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_auth_is_decoded() {
        let a = RegistryAuths::parse(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},"127.0.0.1:5000":{}}}"#,
        );
        let c = a.for_host("docker.io").unwrap();
        assert_eq!((c.username.as_deref(), c.password.as_deref()), (Some("user"), Some("pass")));
        assert!(a.for_host("127.0.0.1:5000").is_none());
        assert!(a.for_image("nginx:1").is_some());
        assert!(a.for_image("127.0.0.1:5000/app:1").is_none());
    }

    #[test]
    fn credentials_come_from_the_auths_entry_of_the_registry() {
        let a = RegistryAuths::parse(r#"{"auths":{"registry.example.com":{"auth":"dTpw"}}}"#);
        let c = a.for_image("registry.example.com/app:1").unwrap();
        assert_eq!((c.username.as_deref(), c.password.as_deref()), (Some("u"), Some("p")));
        assert!(a.for_image("nginx").is_none());
    }

    #[test]
    fn fingerprints_change_with_the_credentials_and_hide_them() {
        let mut a = RegistryAuths::parse(r#"{"auths":{"reg.example.com":{"auth":"dTpw"}}}"#);
        let images = ["reg.example.com/a:1", "reg.example.com/b:2", "postgres:16"];
        let first = a.fingerprints(images);
        assert_eq!(first.keys().collect::<Vec<_>>(), ["reg.example.com"]);
        assert_eq!(first["reg.example.com"].len(), 16);
        let token =
            DockerCredentials { username: Some("AWS".into()), password: Some("tok2".into()), ..Default::default() };
        a.insert("https://reg.example.com", token);
        let second = a.fingerprints(images);
        assert_ne!(first, second, "new credentials, new fingerprint");
        let debug = format!("{a:?}");
        assert!(!debug.contains("tok2") && !debug.contains("dTpw"), "{debug}");
    }
}
