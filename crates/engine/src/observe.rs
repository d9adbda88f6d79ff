//! Observe: read the stack's objects from the swarm into an [`Observed`] value.

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

fn api(call: &'static str) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    move |source| EngineError::Api { call, source }
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
            async {
                d.list_networks(None::<ListNetworksOptions>).await.map_err(api("list networks"))
            },
            async {
                d.list_secrets(None::<ListSecretsOptions>).await.map_err(api("list secrets"))
            },
            async {
                d.list_configs(None::<ListConfigsOptions>).await.map_err(api("list configs"))
            },
            async {
                d.list_volumes(Some(ListVolumesOptions { filters: Some(f.clone()) })).await.map_err(api("list volumes"))
            },
        )?;
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
        Ok(observed)
    }
}
