//! Observe: read the stack's objects from the swarm into an [`Observed`] value.

use crate::api;
use crate::{Engine, EngineError};
use berth_plan::Observed;
use berth_plan::desired::LABEL_NAMESPACE;
use bollard::query_parameters::{
    ListConfigsOptions, ListNetworksOptions, ListSecretsOptions, ListServicesOptions, ListVolumesOptions,
};
use std::collections::HashMap;

fn label_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL_NAMESPACE}={stack}")])])
}

impl Engine {
    /// The stack's services and volumes (labelled `com.docker.stack.namespace=<stack>`), and every
    /// network, secret and config of the swarm, keyed by name: the plan needs the others to resolve
    /// external references (and a service's network IDs) and to refuse names that are taken. The
    /// plan never changes an object without the stack's labels. Read-only.
    pub async fn observe(&self, stack: &str) -> Result<Observed, EngineError> {
        let d = self.docker();
        let f = label_filter(stack);
        let (services, networks, secrets, configs, volumes) = futures_util::try_join!(
            async {
                d.list_services(Some(ListServicesOptions { filters: Some(f.clone()), status: None }))
                    .await
                    .map_err(api("list services"))
            },
            async { d.list_networks(None::<ListNetworksOptions>).await.map_err(api("list networks")) },
            async { d.list_secrets(None::<ListSecretsOptions>).await.map_err(api("list secrets")) },
            async { d.list_configs(None::<ListConfigsOptions>).await.map_err(api("list configs")) },
            async {
                d.list_volumes(Some(ListVolumesOptions { filters: Some(f.clone()) })).await.map_err(api("list volumes"))
            },
        )?;
        let mut services = services;
        self.restore_health_checks(stack, &mut services).await;
        let mut observed = Observed::default();
        for s in services {
            if let Some(name) = s.spec.as_ref().and_then(|s| s.name.clone()) {
                observed.services.insert(name, s);
            }
        }
        for n in networks {
            if let Some(name) = n.name.clone() {
                observed.networks.insert(name, n);
            }
        }
        for s in secrets {
            if let Some(name) = s.spec.as_ref().and_then(|s| s.name.clone()) {
                observed.secrets.insert(name, s);
            }
        }
        for c in configs {
            if let Some(name) = c.spec.as_ref().and_then(|s| s.name.clone()) {
                observed.configs.insert(name, c);
            }
        }
        for v in volumes.volumes.unwrap_or_default() {
            observed.volumes.insert(v.name.clone(), v);
        }
        // Networks services name by an ID the list does not have: Swarm's own `host` network
        // (berth's edge listener uses it) is listed under the local network's ID. Looked up by ID,
        // so the plan maps it back to its name; keyed `<name> (<scope>)` when the name is taken.
        let known: std::collections::HashSet<String> =
            observed.networks.values().filter_map(|n| n.id.clone()).collect();
        let unknown: std::collections::BTreeSet<String> = observed
            .services
            .values()
            .filter_map(|s| s.spec.as_ref()?.task_template.as_ref()?.networks.as_ref())
            .flatten()
            .filter_map(|n| n.target.clone())
            .filter(|t| !known.contains(t) && !observed.networks.contains_key(t))
            .collect();
        for id in unknown {
            if let Ok(n) = d.inspect_network(&id, None::<bollard::query_parameters::InspectNetworkOptions>).await {
                let name = n.name.clone().unwrap_or_else(|| id.clone());
                let key = if observed.networks.contains_key(&name) {
                    format!("{name} ({})", n.scope.clone().unwrap_or_default())
                } else {
                    name
                };
                let network = bollard::models::Network {
                    name: n.name.clone(),
                    id: n.id.clone(),
                    scope: n.scope.clone(),
                    driver: n.driver.clone(),
                    ..Default::default()
                };
                observed.networks.insert(key, network);
            }
        }
        Ok(observed)
    }
}

impl Engine {
    /// Puts the services' health checks back. The daemon names a service's health check
    /// `Healthcheck` while the API model (and so bollard) says `HealthCheck`: a typed read loses
    /// it, and a file's health check would look changed on every deploy. So the stack's services
    /// are also read as raw JSON over the local socket, and each health check found there is set on
    /// the typed service that lacks one. Best effort: on any error (or a non-unix engine address)
    /// the services stay as they are.
    async fn restore_health_checks(&self, stack: &str, services: &mut [bollard::models::Service]) {
        let Some(socket) = self.unix_socket() else { return };
        if services.is_empty() {
            return;
        }
        let v = self.docker().client_version();
        let filters = format!(r#"{{"label":["{LABEL_NAMESPACE}={stack}"]}}"#);
        let path = format!("/v{}.{}/services?filters={}", v.major_version, v.minor_version, percent_encode(&filters));
        let body = tokio::task::spawn_blocking(move || raw_get(&socket, &path)).await.ok().flatten();
        let Some(list) = body.and_then(|b| serde_json::from_slice::<Vec<serde_json::Value>>(&b).ok()) else { return };
        let checks: HashMap<&str, &serde_json::Value> = list
            .iter()
            .filter_map(|s| {
                let hc = s.pointer("/Spec/TaskTemplate/ContainerSpec/Healthcheck").filter(|h| !h.is_null())?;
                Some((s.get("ID")?.as_str()?, hc))
            })
            .collect();
        for s in services.iter_mut() {
            let Some(hc) = s.id.as_deref().and_then(|id| checks.get(id)) else { continue };
            let Some(cs) =
                s.spec.as_mut().and_then(|s| s.task_template.as_mut()).and_then(|t| t.container_spec.as_mut())
            else {
                continue;
            };
            if cs.health_check.is_none() {
                cs.health_check = serde_json::from_value((*hc).clone()).ok();
            }
        }
    }
}

/// Percent-encodes everything but unreserved characters (for a query parameter).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET path` over the unix socket with HTTP/1.0 (so the daemon answers unchunked and closes);
/// the body of a 200 answer, else `None`. Blocking, with a 5 s timeout.
fn raw_get(socket: &str, path: &str) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    stream.set_write_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    let status_ok = head.lines().next().is_some_and(|l| l.split_whitespace().nth(1) == Some("200"));
    if !status_ok || head.contains("transfer-encoding: chunked") {
        return None;
    }
    Some(answer[split + 4..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encode_escapes_json_of_a_filter() {
        assert_eq!(percent_encode(r#"{"label":["a=b"]}"#), "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
    }
}
