//! Registry credentials kept fresh on the swarm.
//!
//! Swarm keeps the credentials a service was created or updated with (`X-Registry-Auth`, what
//! `docker stack deploy --with-registry-auth` sends) and uses them whenever a task pulls its image:
//! a new node, a rescheduled task. Tokens that expire (ECR's after 12 hours, short-lived CI tokens)
//! then break pulls long after the deploy that stored them. berth labels each service with a
//! fingerprint of the credentials of its image's registry ([`LABEL_REGISTRY_AUTH`]); when the
//! operator's credentials change, the label changes, the plan updates the service and the update
//! carries the new credentials. The label is a service label, not a task one, and Swarm does not
//! restart running tasks for new pull credentials alone: a refresh restarts nothing.
//!
//! The engine computes the fingerprints (it reads the credentials); this module only places them,
//! so that the plan stays a pure function of its inputs.

use crate::desired::Desired;
use std::collections::BTreeMap;

/// Service label: fingerprint of the registry credentials the service was last sent.
pub const LABEL_REGISTRY_AUTH: &str = "io.berth.registry-auth";

/// The registry host of an image reference (`docker.io` when none is named).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// Sets [`LABEL_REGISTRY_AUTH`] on every service whose image comes from a registry in
/// `fingerprints` (registry host → fingerprint). Images pinned by ID need no registry and get none.
pub fn label_services(desired: &mut Desired, fingerprints: &BTreeMap<String, String>) {
    for spec in desired.services.values_mut() {
        let Some(image) =
            spec.task_template.as_ref().and_then(|t| t.container_spec.as_ref()).and_then(|c| c.image.as_deref())
        else {
            continue;
        };
        if image.starts_with("sha256:") {
            continue;
        }
        if let Some(fp) = fingerprints.get(registry_of(image)) {
            spec.labels.get_or_insert_with(Default::default).insert(LABEL_REGISTRY_AUTH.into(), fp.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{ServiceSpec, TaskSpec, TaskSpecContainerSpec};

    fn service(image: &str) -> ServiceSpec {
        ServiceSpec {
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec { image: Some(image.into()), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn registry_of_tells_hub_from_private_registries() {
        assert_eq!(registry_of("nginx:1"), "docker.io");
        assert_eq!(registry_of("library/nginx"), "docker.io");
        assert_eq!(registry_of("registry.example.com/app:1"), "registry.example.com");
        assert_eq!(registry_of("localhost:5000/app"), "localhost:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
    }

    #[test]
    fn only_services_of_registries_with_credentials_get_the_label() {
        let mut d = Desired::default();
        d.services.insert("s_web".into(), service("reg.example.com/blog/web:abc@sha256:00"));
        d.services.insert("s_db".into(), service("postgres:16"));
        d.services.insert("s_local".into(), service(&format!("sha256:{}", "a".repeat(64))));
        let fps = BTreeMap::from([("reg.example.com".to_string(), "fp1".to_string())]);
        label_services(&mut d, &fps);
        let label = |s: &str| d.services[s].labels.as_ref().and_then(|l| l.get(LABEL_REGISTRY_AUTH)).cloned();
        assert_eq!(label("s_web").as_deref(), Some("fp1"));
        assert_eq!(label("s_db"), None);
        assert_eq!(label("s_local"), None);
    }
}
