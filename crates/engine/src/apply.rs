//! Apply: carry out a [`Plan`]'s actions in order, idempotently, counting write calls.
//!
//! Every step can be repeated after a crash: a create of an object that already exists with the
//! stack's labels counts as done; a remove of something already gone is fine; an update sends the
//! observed version and, when Swarm answers "update out of sequence", re-reads the service and
//! tries again.

use crate::api;
use crate::registry_auth::RegistryAuths;
use crate::release::{LABEL_RELEASE, is_conflict, is_not_found, label};
use crate::watch::Event;
use crate::{Engine, EngineError};
use berth_plan::convert::resolve_references;
use berth_plan::desired::LABEL_OWNER;
use berth_plan::{Action, Plan};
use bollard::models::{SecretSpec, ServiceSpec};
use bollard::query_parameters::{ListConfigsOptions, ListSecretsOptions, RemoveVolumeOptions, UpdateServiceOptions};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// Options of one [`Engine::apply_with`] call.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Set `io.berth.release=<N>` on every service created or updated.
    pub release: Option<u64>,
    /// Registry credentials sent with service creates and updates; `None`: the Docker CLI's
    /// `config.json` of this user.
    pub auths: Option<RegistryAuths>,
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Write calls made to the engine (creates, updates, removes).
    pub writes: u64,
}

/// Service creates in flight at once.
const CONCURRENT_CREATES: usize = 8;

/// Secret and config IDs by name.
type IdMaps = (HashMap<String, String>, HashMap<String, String>);

fn step(verb: &'static str, kind: &'static str, name: &str) -> Event {
    Event::Step { verb, kind, name: name.to_string() }
}

impl Engine {
    /// Carries out every action of `plan` in order (see the module doc). Returns the number of
    /// write calls made. Same as [`Engine::apply_with`] with default options.
    pub async fn apply(&self, plan: &Plan, on: &mut (dyn FnMut(Event) + Send)) -> Result<ApplyStats, EngineError> {
        self.apply_with(plan, &ApplyOptions::default(), on).await
    }

    /// [`Engine::apply`] with options (the release label to set on services).
    pub async fn apply_with(
        &self,
        plan: &Plan,
        opts: &ApplyOptions,
        on: &mut (dyn FnMut(Event) + Send),
    ) -> Result<ApplyStats, EngineError> {
        let d = self.docker();
        let auths = opts.auths.clone().unwrap_or_else(|| RegistryAuths::load(None));
        let stack = plan.stack.as_str();
        let mut stats = ApplyStats::default();
        let mut ids: Option<IdMaps> = None;
        let mut i = 0;
        while i < plan.actions.len() {
            // A run of service creates goes out concurrently: they do not depend on each other
            // (everything they reference was created by earlier actions), and Swarm schedules
            // their tasks sooner than when they trickle in one by one.
            let run = plan.actions[i..].iter().take_while(|a| matches!(a, Action::CreateService { .. })).count();
            if run > 1 {
                let mut specs = Vec::with_capacity(run);
                for action in &plan.actions[i..i + run] {
                    let Action::CreateService { name, spec } = action else { unreachable!() };
                    on(step("create", "service", name));
                    specs.push((name.as_str(), self.prepare_service(spec, opts, &mut ids).await?));
                }
                stats.writes += run as u64;
                let results: Vec<Result<(), EngineError>> = futures_util::stream::iter(specs)
                    .map(|(name, spec)| self.create_service(stack, name, spec, &auths))
                    .buffer_unordered(CONCURRENT_CREATES)
                    .collect()
                    .await;
                results.into_iter().collect::<Result<Vec<()>, EngineError>>()?;
                i += run;
                continue;
            }
            let action = &plan.actions[i];
            i += 1;
            match action {
                Action::CreateNetwork { name, spec } => {
                    on(step("create", "network", name));
                    stats.writes += 1;
                    match d.create_network(spec.clone()).await {
                        Ok(_) => {}
                        Err(e) if is_conflict(&e) => {}
                        Err(e) => return Err(EngineError::Api { call: "create network", source: e }),
                    }
                }
                Action::CreateVolume { name, spec } => {
                    on(step("create", "volume", name));
                    stats.writes += 1;
                    d.create_volume(spec.clone()).await.map_err(api("create volume"))?;
                }
                Action::CreateSecret { name, spec } => {
                    on(step("create", "secret", name));
                    let generated = generated_length(spec);
                    if spec.data.is_none() && spec.driver.is_none() && generated.is_none() {
                        return Err(EngineError::Refused {
                            message: format!("secret {name} no longer exists in the swarm and its value is not stored"),
                            hint: Some("deploy from the stack files instead (`berth deploy`)".into()),
                        });
                    }
                    let spec = match generated {
                        Some(len) if spec.data.is_none() && spec.driver.is_none() => {
                            // The value exists only in this request and then in the swarm.
                            let value = generate_secret_value(len).map_err(|e| EngineError::Refused {
                                message: format!("cannot generate a value for secret {name}: {e}"),
                                hint: Some("the operating system's random number generator failed".into()),
                            })?;
                            SecretSpec { data: Some(berth_plan::convert::base64(&value)), ..spec.clone() }
                        }
                        _ => spec.clone(),
                    };
                    stats.writes += 1;
                    match d.create_secret(spec).await {
                        Ok(_) => {}
                        Err(e) if is_conflict(&e) => {}
                        Err(e) => return Err(EngineError::Api { call: "create secret", source: e }),
                    }
                }
                Action::CreateConfig { name, spec } => {
                    on(step("create", "config", name));
                    stats.writes += 1;
                    match d.create_config(spec.clone()).await {
                        Ok(_) => {}
                        Err(e) if is_conflict(&e) => {}
                        Err(e) => return Err(EngineError::Api { call: "create config", source: e }),
                    }
                }
                Action::CreateService { name, spec } => {
                    on(step("create", "service", name));
                    let spec = self.prepare_service(spec, opts, &mut ids).await?;
                    stats.writes += 1;
                    self.create_service(stack, name, spec, &auths).await?;
                }
                Action::UpdateService { name, id, version, spec, .. } => {
                    on(step("update", "service", name));
                    let spec = self.prepare_service(spec, opts, &mut ids).await?;
                    let creds = auths.for_image(image_of(&spec));
                    let mut version = *version;
                    let mut attempt = 0;
                    loop {
                        stats.writes += 1;
                        let o = UpdateServiceOptions { version: version as i32, ..Default::default() };
                        match d.update_service(id, spec.clone(), o, creds.clone()).await {
                            Ok(_) => break,
                            Err(e) if e.to_string().contains("out of sequence") && attempt < 5 => {
                                attempt += 1;
                                let s = d.inspect_service(id, None).await.map_err(api("inspect service"))?;
                                version = s.version.and_then(|v| v.index).unwrap_or(version);
                            }
                            Err(e) => return Err(service_error(name, "update service", e)),
                        }
                    }
                }
                Action::RemoveService { name, id } => {
                    on(step("remove", "service", name));
                    stats.writes += 1;
                    match d.delete_service(id).await {
                        Ok(()) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(EngineError::Api { call: "remove service", source: e }),
                    }
                }
                Action::RemoveSecret { name, id } => {
                    on(step("remove", "secret", name));
                    stats.writes += 1;
                    remove_retrying(|| d.delete_secret(id), "remove secret").await?;
                }
                Action::RemoveConfig { name, id } => {
                    on(step("remove", "config", name));
                    stats.writes += 1;
                    remove_retrying(|| d.delete_config(id), "remove config").await?;
                }
                Action::RemoveNetwork { name, id } => {
                    on(step("remove", "network", name));
                    stats.writes += 1;
                    remove_retrying(|| d.remove_network(id), "remove network").await?;
                }
                Action::RemoveVolume { name } => {
                    on(step("remove", "volume", name));
                    stats.writes += 1;
                    remove_retrying(|| d.remove_volume(name, None::<RemoveVolumeOptions>), "remove volume").await?;
                }
            }
        }
        Ok(stats)
    }

    /// Creates one service; a service of this stack that already exists (made by an interrupted
    /// run of ours) counts as created.
    async fn create_service(
        &self,
        stack: &str,
        name: &str,
        spec: ServiceSpec,
        auths: &RegistryAuths,
    ) -> Result<(), EngineError> {
        let d = self.docker();
        let creds = auths.for_image(image_of(&spec));
        match d.create_service(spec, creds).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => {
                let s = d.inspect_service(name, None).await.map_err(api("inspect service"))?;
                let labels = s.spec.as_ref().and_then(|s| s.labels.as_ref());
                if label(labels, LABEL_OWNER) != Some(stack) {
                    return Err(EngineError::Refused {
                        message: format!("service {name} exists and is not berth's"),
                        hint: Some("remove it, or deploy with --adopt if docker stack deploy made it".into()),
                    });
                }
                Ok(())
            }
            Err(e) => Err(service_error(name, "create service", e)),
        }
    }

    /// The spec to send: references resolved to IDs, the release label set.
    async fn prepare_service(
        &self,
        spec: &ServiceSpec,
        opts: &ApplyOptions,
        ids: &mut Option<IdMaps>,
    ) -> Result<ServiceSpec, EngineError> {
        let mut spec = spec.clone();
        if let Some(n) = opts.release {
            spec.labels.get_or_insert_with(HashMap::new).insert(LABEL_RELEASE.into(), n.to_string());
        }
        let needs = spec.task_template.as_ref().and_then(|t| t.container_spec.as_ref()).is_some_and(|c| {
            c.secrets.as_ref().is_some_and(|s| !s.is_empty())
                || c.configs.as_ref().is_some_and(|s| !s.is_empty())
                || c.privileges
                    .as_ref()
                    .and_then(|p| p.credential_spec.as_ref())
                    .and_then(|c| c.config.as_ref())
                    .is_some()
        });
        if !needs {
            return Ok(spec);
        }
        if ids.is_none() {
            let d = self.docker();
            let (secrets, configs) = futures_util::try_join!(
                async { d.list_secrets(None::<ListSecretsOptions>).await.map_err(api("list secrets")) },
                async { d.list_configs(None::<ListConfigsOptions>).await.map_err(api("list configs")) },
            )?;
            let s = secrets.into_iter().filter_map(|s| Some((s.spec?.name?, s.id?))).collect();
            let c = configs.into_iter().filter_map(|c| Some((c.spec?.name?, c.id?))).collect();
            *ids = Some((s, c));
        }
        let (s, c) = ids.as_ref().expect("filled above");
        if let Err(missing) = resolve_references(&mut spec, &|n| s.get(n).cloned(), &|n| c.get(n).cloned()) {
            return Err(EngineError::NotFound {
                what: "secret or config",
                name: format!("{} (needed by service {})", missing.join(", "), spec.name.clone().unwrap_or_default()),
                suggestion: None,
            });
        }
        Ok(spec)
    }
}

/// An API error of a service create/update, made clearer where we can (ports in use).
/// The length of a secret berth generates (label [`LABEL_GENERATED`]), if it is one and the label is
/// a valid length.
fn generated_length(spec: &SecretSpec) -> Option<usize> {
    berth_plan::plan::generated_length(spec)?.parse().ok().filter(|n| (1..=65_536).contains(n))
}

/// Characters of a generated secret value.
const GENERATED_ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A random value of `len` characters `[A-Za-z0-9]` from the operating system's RNG, uniformly
/// distributed (rejection sampling: bytes >= 248 are drawn again).
pub fn generate_secret_value(len: usize) -> Result<Vec<u8>, getrandom::Error> {
    let mut out = Vec::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::getrandom(&mut buf)?;
        for &b in &buf {
            if b < 248 && out.len() < len {
                out.push(GENERATED_ALPHABET[usize::from(b % 62)]);
            }
        }
    }
    Ok(out)
}

fn service_error(name: &str, call: &'static str, e: bollard::errors::Error) -> EngineError {
    let text = e.to_string();
    if text.contains("already in use") || text.contains("port") && text.contains("in use") {
        return EngineError::Refused {
            message: format!("service {name}: a published port is already taken: {text}"),
            hint: Some(
                "change the published port in the file, or remove what uses it (`docker service ls`, `ss -ltnp`)"
                    .into(),
            ),
        };
    }
    EngineError::Api { call, source: e }
}

/// Removes, treating "gone" as done and retrying a few times while the object is still in use
/// (a network right after its services were removed).
async fn remove_retrying<F, Fut>(mut f: F, call: &'static str) -> Result<(), EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), bollard::errors::Error>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(()) => return Ok(()),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e)
                if attempt < 20 && (e.to_string().contains("in use") || e.to_string().contains("active endpoints")) =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(EngineError::Api { call, source: e }),
        }
    }
}

pub(crate) fn image_of(spec: &ServiceSpec) -> &str {
    spec.task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.as_deref())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_values_have_the_length_and_alphabet_and_differ() {
        let a = generate_secret_value(50).unwrap();
        let b = generate_secret_value(50).unwrap();
        assert_eq!(a.len(), 50);
        assert!(a.iter().all(u8::is_ascii_alphanumeric), "{a:?}");
        assert_ne!(a, b);
        assert_eq!(generate_secret_value(4096).unwrap().len(), 4096);
    }

    #[test]
    fn base64_matches_the_plan_decoder() {
        for s in ["", "a", "ab", "abc", "hello world", "\u{0}\u{ff}"] {
            let e = berth_plan::convert::base64(s.as_bytes());
            assert_eq!(berth_plan::plan::decode_base64(&e).unwrap(), s.as_bytes(), "{e}");
        }
        assert_eq!(berth_plan::convert::base64(b"hello"), "aGVsbG8=");
    }

    #[test]
    fn generated_label_is_read_as_a_length() {
        let spec = |v: &str| SecretSpec {
            labels: Some([(berth_plan::convert::LABEL_GENERATED.to_string(), v.to_string())].into()),
            ..Default::default()
        };
        assert_eq!(generated_length(&spec("50")), Some(50));
        assert_eq!(generated_length(&spec("x")), None);
        assert_eq!(generated_length(&SecretSpec::default()), None);
    }
}
