//! The plan: what must change to turn the [`Observed`] swarm into the [`Desired`] stack, as an
//! ordered list of [`Action`]s (updates carry per-field [`Change`]s) plus notes.
//!
//! Ownership: only objects labelled `com.docker.stack.namespace=<stack>` belong to the stack. Of
//! those, objects also labelled `io.berth.stack=<stack>` are berth's; objects with the namespace
//! but without berth's label were made by `docker stack deploy` and are only changed or removed
//! with [`PlanOptions::adopt`] (otherwise a note says what would happen). Anything else is
//! foreign and never touched.
//!
//! Order: create networks, volumes, secrets, configs; create services; update services; remove
//! services; remove secrets, configs, networks, volumes. Within a group, by name. Objects the
//! desired state lists as external are never removed.

use crate::convert::LABEL_GENERATED;
use crate::desired::{LABEL_NAMESPACE, LABEL_OWNER};
pub use crate::diff::Change;
use crate::diff::{CanonContext, canonical_service_spec, diff_values, prune_empty};
use crate::{Desired, Observed};
use bollard_stubs::models::{
    ConfigSpec, Network, NetworkCreateRequest, SecretSpec, ServiceSpec, Volume, VolumeCreateRequest,
};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How far a plan may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Remove stack-owned services, networks, secrets and configs that the desired state no
    /// longer has (default `true`).
    pub prune: bool,
    /// Also remove stack-owned volumes the desired state no longer has (default `false`: never
    /// plan the removal of data). Only together with `prune`.
    pub remove_volumes: bool,
    /// Treat objects of the stack made by `docker stack deploy` (namespace label, no
    /// `io.berth.stack` label) as berth's: update and remove them (default `false`: notes only).
    pub adopt: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { prune: true, remove_volumes: false, adopt: false }
    }
}

/// One step of a plan. Serialises as `{"action": "create-network", ...}`; secret data (and config
/// data too large to show) serialise as `(sensitive, sha256:xxxxxxxx)`, maps with sorted keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Create a network.
    CreateNetwork {
        /// Full Swarm name.
        name: String,
        /// What to send to `POST /networks/create`.
        #[serde(serialize_with = "ser_sorted")]
        spec: NetworkCreateRequest,
    },
    /// Create a volume.
    CreateVolume {
        /// Full name.
        name: String,
        /// What to send to `POST /volumes/create`.
        #[serde(serialize_with = "ser_sorted")]
        spec: VolumeCreateRequest,
    },
    /// Create a secret.
    CreateSecret {
        /// Full Swarm name.
        name: String,
        /// What to send to `POST /secrets/create` (its `Data` is never serialised).
        #[serde(serialize_with = "ser_secret")]
        spec: SecretSpec,
    },
    /// Create a config.
    CreateConfig {
        /// Full Swarm name.
        name: String,
        /// What to send to `POST /configs/create` (large `Data` is serialised as a hash).
        #[serde(serialize_with = "ser_config")]
        spec: ConfigSpec,
    },
    /// Create a service. Secret/config references carry names; the engine fills in their IDs.
    CreateService {
        /// Full Swarm name.
        name: String,
        /// What to send to `POST /services/create`.
        #[serde(serialize_with = "ser_sorted")]
        spec: ServiceSpec,
    },
    /// Update a service in place.
    UpdateService {
        /// Full Swarm name.
        name: String,
        /// The service's ID.
        id: String,
        /// The observed `Version.Index`, to send with the update.
        version: u64,
        /// The full new spec (the observed `TaskTemplate.ForceUpdate` carried over).
        #[serde(serialize_with = "ser_sorted")]
        spec: ServiceSpec,
        /// The fields that differ, in canonical form.
        changes: Vec<Change>,
    },
    /// Remove a service.
    RemoveService {
        /// Full Swarm name.
        name: String,
        /// The service's ID.
        id: String,
    },
    /// Remove a secret no remaining service uses.
    RemoveSecret {
        /// Full Swarm name.
        name: String,
        /// The secret's ID.
        id: String,
    },
    /// Remove a config no remaining service uses.
    RemoveConfig {
        /// Full Swarm name.
        name: String,
        /// The config's ID.
        id: String,
    },
    /// Remove a network no remaining service uses.
    RemoveNetwork {
        /// Full Swarm name.
        name: String,
        /// The network's ID.
        id: String,
    },
    /// Remove a volume (only with [`PlanOptions::remove_volumes`]).
    RemoveVolume {
        /// The volume's name.
        name: String,
    },
}

impl Action {
    /// The name of the object the action is about.
    pub fn name(&self) -> &str {
        match self {
            Action::CreateNetwork { name, .. }
            | Action::CreateVolume { name, .. }
            | Action::CreateSecret { name, .. }
            | Action::CreateConfig { name, .. }
            | Action::CreateService { name, .. }
            | Action::UpdateService { name, .. }
            | Action::RemoveService { name, .. }
            | Action::RemoveSecret { name, .. }
            | Action::RemoveConfig { name, .. }
            | Action::RemoveNetwork { name, .. }
            | Action::RemoveVolume { name } => name,
        }
    }
}

/// The ordered actions of one deploy, and notes (lines starting `error:` mean the deploy cannot
/// reach the desired state as planned; `note:` lines are informational).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// The stack (namespace) name.
    pub stack: String,
    /// What to do, in order.
    pub actions: Vec<Action>,
    /// Things the user should know: objects left alone and why, immutable objects that differ.
    pub notes: Vec<String>,
}

impl Plan {
    /// True when there is nothing to do (notes may still exist).
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// True when a note is an error (a desired object the plan cannot create or change).
    pub fn has_errors(&self) -> bool {
        self.notes.iter().any(|n| n.starts_with("error:"))
    }
}

/// Who an observed object belongs to, from its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Not labelled with this stack's namespace.
    Foreign,
    /// Namespace label but not berth's: made by `docker stack deploy`.
    StackDeploy,
    /// Both labels.
    Berth,
}

fn owner_of(labels: Option<&HashMap<String, String>>, stack: &str) -> Owner {
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    match (get(LABEL_NAMESPACE) == Some(stack), get(LABEL_OWNER) == Some(stack)) {
        (false, _) => Owner::Foreign,
        (true, false) => Owner::StackDeploy,
        (true, true) => Owner::Berth,
    }
}

/// `(sensitive, sha256:xxxxxxxx)`: the first 8 hex digits of the SHA-256 of the decoded data.
pub fn redacted(data_base64: &str) -> String {
    format!("(sensitive, sha256:{})", short_hash(data_base64))
}

/// The first 8 hex digits of the SHA-256 of base64 `data` (decoded; the raw text if not base64).
pub fn short_hash(data_base64: &str) -> String {
    let bytes = decode_base64(data_base64).unwrap_or_else(|| data_base64.as_bytes().to_vec());
    let h = Sha256::digest(&bytes);
    h.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Config data up to this many decoded bytes of UTF-8 text is shown; larger or binary data is
/// shown as a hash.
pub const CONFIG_SHOW_LIMIT: usize = 512;

/// The decoded config text if it is small UTF-8 text worth showing.
pub fn config_text(data_base64: &str) -> Option<String> {
    let bytes = decode_base64(data_base64)?;
    if bytes.len() > CONFIG_SHOW_LIMIT {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// Decode standard base64 (padding optional, whitespace ignored); `None` if it is not base64.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn sorted_value<T: Serialize>(v: &T) -> Value {
    // serde_json's map is a BTreeMap here: converting to a Value sorts HashMap keys.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn ser_sorted<T: Serialize, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    sorted_value(v).serialize(s)
}

fn ser_secret<S: serde::Serializer>(v: &SecretSpec, s: S) -> Result<S::Ok, S::Error> {
    let mut j = sorted_value(v);
    if let Some(d) = v.data.as_deref() {
        j["Data"] = Value::String(redacted(d));
    }
    j.serialize(s)
}

fn ser_config<S: serde::Serializer>(v: &ConfigSpec, s: S) -> Result<S::Ok, S::Error> {
    let mut j = sorted_value(v);
    if let Some(d) = v.data.as_deref()
        && config_text(d).is_none()
    {
        j["Data"] = Value::String(redacted(d));
    }
    j.serialize(s)
}

/// Plan the actions that turn `observed` into `desired`. Pure and deterministic.
pub fn plan(desired: &Desired, observed: &Observed, opts: &PlanOptions) -> Plan {
    let stack = desired.stack.as_str();
    let mut notes: Vec<String> = Vec::new();
    let mut creates: Vec<Action> = Vec::new();

    // Immutable objects: create, or check the existing one has the same content.
    for (name, spec) in &desired.networks {
        match observed.networks.get(name) {
            None => creates.push(Action::CreateNetwork { name: name.clone(), spec: spec.clone() }),
            Some(obs) => check_immutable(
                "network",
                name,
                owner_of(obs.labels.as_ref(), stack),
                stack,
                canon_network_desired(spec),
                canon_network_observed(obs, spec),
                &mut notes,
            ),
        }
    }
    for (name, spec) in &desired.volumes {
        match observed.volumes.get(name) {
            None => creates.push(Action::CreateVolume { name: name.clone(), spec: spec.clone() }),
            Some(obs) => check_immutable(
                "volume",
                name,
                owner_of(Some(&obs.labels), stack),
                stack,
                canon_volume_desired(spec),
                canon_volume_observed(obs),
                &mut notes,
            ),
        }
    }
    for (name, spec) in &desired.secrets {
        match observed.secrets.get(name) {
            None => creates.push(Action::CreateSecret { name: name.clone(), spec: spec.clone() }),
            Some(obs) if generated_length(spec).is_some() => {
                check_generated(name, spec, &obs.spec.clone().unwrap_or_default(), stack, &mut notes)
            }
            Some(obs) => {
                let o = obs.spec.clone().unwrap_or_default();
                check_immutable(
                    "secret",
                    name,
                    owner_of(o.labels.as_ref(), stack),
                    stack,
                    // The swarm never returns a secret's data: compare what is visible.
                    canon_secret(&SecretSpec { data: None, ..spec.clone() }),
                    canon_secret(&o),
                    &mut notes,
                )
            }
        }
    }
    for (name, spec) in &desired.configs {
        match observed.configs.get(name) {
            None => creates.push(Action::CreateConfig { name: name.clone(), spec: spec.clone() }),
            Some(obs) => {
                let o = obs.spec.clone().unwrap_or_default();
                check_immutable(
                    "config",
                    name,
                    owner_of(o.labels.as_ref(), stack),
                    stack,
                    canon_config(spec),
                    canon_config(&o),
                    &mut notes,
                )
            }
        }
    }

    // Services.
    let network_names: BTreeMap<String, String> = observed
        .networks
        .iter()
        .filter_map(|(name, n)| Some((n.id.clone()?, n.name.clone().unwrap_or_else(|| name.clone()))))
        .collect();
    let mut service_creates = Vec::new();
    let mut updates = Vec::new();
    let mut updated: BTreeSet<&str> = BTreeSet::new();
    for (name, spec) in &desired.services {
        let Some(obs) = observed.services.get(name) else {
            service_creates.push(Action::CreateService { name: name.clone(), spec: spec.clone() });
            continue;
        };
        let ospec = obs.spec.clone().unwrap_or_default();
        let owner = owner_of(ospec.labels.as_ref(), stack);
        if owner == Owner::Foreign {
            notes.push(format!(
                "error: service {name} already exists but is not part of stack {stack} (no label \
                 {LABEL_NAMESPACE}={stack}); berth will not change it: rename the service or remove it"
            ));
            continue;
        }
        let adopting = owner == Owner::Berth || opts.adopt;
        // A stack berth does not own is compared with the image the file names, not berth's pin
        // of it (`docker stack deploy` pins differently, or not at all): the pin alone is no change.
        let compared = if adopting { std::borrow::Cow::Borrowed(spec) } else { std::borrow::Cow::Owned(unpin(spec)) };
        let ctx = CanonContext {
            network_names: network_names.clone(),
            strip_image_digest: !image_of(&compared).contains('@'),
            ignore_owner_label: !adopting,
        };
        let mut changes = Vec::new();
        diff_values(
            "",
            &canonical_service_spec(&ospec, &ctx),
            &canonical_service_spec(&compared, &CanonContext { strip_image_digest: false, ..ctx.clone() }),
            &mut changes,
        );
        if changes.is_empty() {
            continue;
        }
        if !adopting {
            notes.push(format!(
                "note: service {name} was created by docker stack deploy and differs from the file in {} \
                 field(s); berth leaves it alone (adopt it to let berth update it)",
                changes.len()
            ));
            continue;
        }
        let mut new_spec = spec.clone();
        if let Some(force) = ospec.task_template.as_ref().and_then(|t| t.force_update)
            && let Some(tt) = new_spec.task_template.as_mut()
        {
            tt.force_update = Some(force);
        }
        updated.insert(name.as_str());
        updates.push(Action::UpdateService {
            name: name.clone(),
            id: obs.id.clone().unwrap_or_default(),
            version: obs.version.as_ref().and_then(|v| v.index).unwrap_or(0),
            spec: new_spec,
            changes,
        });
    }

    // Removals.
    let removable = |owner: Owner, kind: &str, name: &str, notes: &mut Vec<String>| -> bool {
        match owner {
            Owner::Foreign => false,
            Owner::Berth => true,
            Owner::StackDeploy if opts.adopt => true,
            Owner::StackDeploy => {
                notes.push(format!(
                    "note: {kind} {name} of stack {stack} is no longer in the file but was created by docker \
                     stack deploy; berth leaves it alone (adopt it to let berth remove it)"
                ));
                false
            }
        }
    };
    let mut removes = Vec::new();
    let mut removed_services: BTreeSet<&str> = BTreeSet::new();
    if opts.prune {
        for (name, svc) in &observed.services {
            let labels = svc.spec.as_ref().and_then(|s| s.labels.as_ref());
            if !desired.services.contains_key(name) && removable(owner_of(labels, stack), "service", name, &mut notes) {
                removed_services.insert(name.as_str());
                removes.push(Action::RemoveService { name: name.clone(), id: svc.id.clone().unwrap_or_default() });
            }
        }
    }

    // What the services that remain will use: the desired spec of every desired service, and the
    // observed spec of every observed service that is neither updated nor removed.
    let mut used = Uses::default();
    for spec in desired.services.values() {
        used.add(spec, &BTreeMap::new(), observed);
    }
    for (name, svc) in &observed.services {
        if !updated.contains(name.as_str())
            && !removed_services.contains(name.as_str())
            && let Some(spec) = &svc.spec
        {
            used.add(spec, &network_names, observed);
        }
    }

    if opts.prune {
        for (name, s) in &observed.secrets {
            let wanted = desired.secrets.contains_key(name) || desired.external_secrets.contains(name);
            let labels = s.spec.as_ref().and_then(|s| s.labels.as_ref());
            prune(("secret", name, labels, wanted), &used.secrets, stack, &mut notes, &mut removes, &removable, || {
                Action::RemoveSecret { name: name.clone(), id: s.id.clone().unwrap_or_default() }
            });
        }
        for (name, c) in &observed.configs {
            let wanted = desired.configs.contains_key(name) || desired.external_configs.contains(name);
            let labels = c.spec.as_ref().and_then(|s| s.labels.as_ref());
            prune(("config", name, labels, wanted), &used.configs, stack, &mut notes, &mut removes, &removable, || {
                Action::RemoveConfig { name: name.clone(), id: c.id.clone().unwrap_or_default() }
            });
        }
        for (name, n) in &observed.networks {
            let wanted = desired.networks.contains_key(name) || desired.external_networks.contains(name);
            prune(
                ("network", name, n.labels.as_ref(), wanted),
                &used.networks,
                stack,
                &mut notes,
                &mut removes,
                &removable,
                || Action::RemoveNetwork { name: name.clone(), id: n.id.clone().unwrap_or_default() },
            );
        }
        // Volumes are not in `desired.volumes` (each node creates a mount's volume): one that a
        // desired service mounts is still in the file.
        let mounted: BTreeSet<&str> = desired
            .services
            .values()
            .filter_map(|s| s.task_template.as_ref()?.container_spec.as_ref()?.mounts.as_ref())
            .flatten()
            .filter_map(|m| m.source.as_deref())
            .collect();
        for (name, v) in &observed.volumes {
            if desired.volumes.contains_key(name)
                || mounted.contains(name.as_str())
                || owner_of(Some(&v.labels), stack) == Owner::Foreign
            {
                continue;
            }
            if let Some(users) = used.volumes.get(name) {
                notes.push(kept_note("volume", name, users));
            } else if !opts.remove_volumes {
                notes.push(format!(
                    "note: volume {name} is no longer used by stack {stack}; its data is kept (remove volumes \
                     explicitly to delete it)"
                ));
            } else if removable(owner_of(Some(&v.labels), stack), "volume", name, &mut notes) {
                removes.push(Action::RemoveVolume { name: name.clone() });
            }
        }
    }

    let mut actions = creates;
    actions.extend(service_creates);
    actions.extend(updates);
    actions.extend(removes);
    Plan { stack: stack.to_string(), actions, notes }
}

/// Whether berth may remove an object of this owner (`kind`, `name`); may add a note saying why not.
type OwnerRule<'a> = dyn Fn(Owner, &str, &str, &mut Vec<String>) -> bool + 'a;

/// Prunes one observed secret, config or network (`kind`, `name`, its labels, whether the files
/// still want it): never a foreign object or one the files name; kept with a note while a
/// remaining service uses it; otherwise removed when `removable` (the owner rule) allows it.
fn prune(
    (kind, name, labels, wanted): (&str, &str, Option<&HashMap<String, String>>, bool),
    used: &BTreeMap<String, BTreeSet<String>>,
    stack: &str,
    notes: &mut Vec<String>,
    removes: &mut Vec<Action>,
    removable: &OwnerRule,
    remove: impl FnOnce() -> Action,
) {
    let owner = owner_of(labels, stack);
    if wanted || owner == Owner::Foreign {
        return;
    }
    if let Some(users) = used.get(name) {
        notes.push(kept_note(kind, name, users));
    } else if removable(owner, kind, name, notes) {
        removes.push(remove());
    }
}

fn kept_note(kind: &str, name: &str, users: &BTreeSet<String>) -> String {
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    format!("note: {kind} {name} is no longer in the file but is still used by {}; not removed", users.join(", "))
}

/// `spec` with its image as the file named it ([`crate::image_pin::unpinned`]), the pin's label removed.
fn unpin(spec: &ServiceSpec) -> ServiceSpec {
    let mut spec = spec.clone();
    if let Some(cs) = spec.task_template.as_mut().and_then(|t| t.container_spec.as_mut())
        && let Some(image) = cs.image.clone()
    {
        cs.image = Some(crate::image_pin::unpinned(&image, cs.labels.as_ref()));
        if let Some(l) = cs.labels.as_mut() {
            l.remove(crate::image_pin::LABEL_IMAGE);
        }
    }
    spec
}

fn image_of(spec: &ServiceSpec) -> &str {
    spec.task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.as_deref())
        .unwrap_or_default()
}

/// Names of secrets, configs, networks and volumes used by services, each with its users.
#[derive(Default)]
struct Uses {
    secrets: BTreeMap<String, BTreeSet<String>>,
    configs: BTreeMap<String, BTreeSet<String>>,
    networks: BTreeMap<String, BTreeSet<String>>,
    volumes: BTreeMap<String, BTreeSet<String>>,
}

impl Uses {
    fn add(&mut self, spec: &ServiceSpec, network_names: &BTreeMap<String, String>, observed: &Observed) {
        let svc = spec.name.clone().unwrap_or_default();
        let by_id = |id: &Option<String>, names: Vec<(Option<String>, Option<String>)>| -> Option<String> {
            let id = id.as_ref()?;
            names.into_iter().find(|(i, _)| i.as_ref() == Some(id)).and_then(|(_, n)| n)
        };
        let tt = spec.task_template.as_ref();
        let cs = tt.and_then(|t| t.container_spec.as_ref());
        for r in cs.and_then(|c| c.secrets.as_ref()).into_iter().flatten() {
            let name = r.secret_name.clone().or_else(|| {
                let ids =
                    observed.secrets.values().map(|s| (s.id.clone(), s.spec.as_ref().and_then(|x| x.name.clone())));
                by_id(&r.secret_id, ids.collect())
            });
            if let Some(n) = name {
                self.secrets.entry(n).or_default().insert(svc.clone());
            }
        }
        for r in cs.and_then(|c| c.configs.as_ref()).into_iter().flatten() {
            let name = r.config_name.clone().or_else(|| {
                let ids =
                    observed.configs.values().map(|s| (s.id.clone(), s.spec.as_ref().and_then(|x| x.name.clone())));
                by_id(&r.config_id, ids.collect())
            });
            if let Some(n) = name {
                self.configs.entry(n).or_default().insert(svc.clone());
            }
        }
        let nets = tt.and_then(|t| t.networks.as_ref()).into_iter().flatten().chain(spec.networks.iter().flatten());
        for n in nets {
            if let Some(t) = &n.target {
                let name = network_names.get(t).cloned().unwrap_or_else(|| t.clone());
                self.networks.entry(name).or_default().insert(svc.clone());
            }
        }
        for m in cs.and_then(|c| c.mounts.as_ref()).into_iter().flatten() {
            let is_volume = m.typ.as_ref().is_none_or(|t| t.to_string() == "volume");
            if is_volume && let Some(src) = m.source.clone().filter(|s| !s.is_empty()) {
                self.volumes.entry(src).or_default().insert(svc.clone());
            }
        }
    }
}

/// For an existing network/volume/secret/config of the desired name: a note if it is foreign or
/// its content differs (Swarm cannot change these objects in place).
fn check_immutable(
    kind: &str,
    name: &str,
    owner: Owner,
    stack: &str,
    mut desired: Value,
    mut observed: Value,
    notes: &mut Vec<String>,
) {
    for v in [&mut desired, &mut observed] {
        if let Some(l) = v.get_mut("Labels").and_then(Value::as_object_mut) {
            l.remove(LABEL_OWNER);
            if owner == Owner::Foreign {
                l.remove(LABEL_NAMESPACE);
            }
        }
        prune_empty(v);
    }
    let mut changes = Vec::new();
    diff_values("", &observed, &desired, &mut changes);
    if changes.is_empty() {
        if owner == Owner::Foreign {
            notes.push(format!(
                "note: {kind} {name} already exists outside stack {stack} (no label {LABEL_NAMESPACE}={stack}); \
                 using it as it is"
            ));
        }
        return;
    }
    let what = describe_changes(&changes);
    notes.push(format!(
        "error: {kind} {name} already exists with different content ({}); {kind}s cannot be changed in place in \
         Swarm: give it a new name in the file (berth's default content-hash names do this for secrets and \
         configs) or remove the existing {kind} first",
        what.join("; ")
    ));
}

/// `path: old -> new` for each change of an object that cannot be updated in place (for notes).
fn describe_changes(changes: &[crate::diff::Change]) -> Vec<String> {
    let show = |v: &Option<Value>| v.as_ref().map_or("(none)".to_string(), |v| v.to_string());
    changes.iter().map(|c| format!("{}: {} -> {}", c.path, show(&c.old), show(&c.new))).collect()
}

/// The length label of a secret the engine generates (`None` for any other secret).
pub fn generated_length(spec: &SecretSpec) -> Option<&str> {
    spec.labels.as_ref().and_then(|l| l.get(LABEL_GENERATED)).map(String::as_str)
}

/// An existing secret of the name of a generated one: it is used as it is, never replaced (its value
/// cannot be compared and would be lost). Labels that differ only give a note.
fn check_generated(name: &str, desired: &SecretSpec, observed: &SecretSpec, stack: &str, notes: &mut Vec<String>) {
    let owner = owner_of(observed.labels.as_ref(), stack);
    if owner == Owner::Foreign {
        notes.push(format!(
            "note: secret {name} already exists outside stack {stack} (no label {LABEL_NAMESPACE}={stack}); \
             using its value instead of generating one"
        ));
        return;
    }
    let mut changes = Vec::new();
    let canon = |s: &SecretSpec| {
        let mut v = canon_secret(&SecretSpec { data: None, ..s.clone() });
        if let Some(l) = v.get_mut("Labels").and_then(Value::as_object_mut) {
            l.remove(LABEL_OWNER);
        }
        prune_empty(&mut v);
        v
    };
    diff_values("", &canon(observed), &canon(desired), &mut changes);
    if !changes.is_empty() {
        let what = describe_changes(&changes);
        notes.push(format!(
            "note: secret {name} was generated earlier and is kept with its value ({}); to generate a new value, \
             remove the secret from the swarm (its value is lost) or give it another name",
            what.join("; ")
        ));
    }
}

fn canon_network_desired(n: &NetworkCreateRequest) -> Value {
    let mut ipam = n.ipam.as_ref().map(sorted_value).unwrap_or(json!({}));
    if ipam.get("Driver").is_none_or(Value::is_null) {
        ipam["Driver"] = json!("default");
    }
    json!({
        "Driver": n.driver.clone().unwrap_or_else(|| "overlay".into()),
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": n.ingress,
        "EnableIPv6": n.enable_ipv6, "ConfigOnly": n.config_only,
        "Options": n.options, "Labels": n.labels, "IPAM": ipam,
    })
}

/// Options the daemon adds to a network on its own.
const DAEMON_NETWORK_OPTIONS: &[&str] = &["com.docker.network.driver.overlay.vxlanid_list"];

fn canon_network_observed(n: &Network, desired: &NetworkCreateRequest) -> Value {
    let mut options = n.options.clone().unwrap_or_default();
    for k in DAEMON_NETWORK_OPTIONS {
        if !desired.options.as_ref().is_some_and(|o| o.contains_key(*k)) {
            options.remove(*k);
        }
    }
    let mut ipam = n.ipam.as_ref().map(sorted_value).unwrap_or(json!({}));
    // Subnets the daemon chose itself are not a difference when the file names none.
    let desired_config = desired.ipam.as_ref().and_then(|i| i.config.as_ref()).is_some_and(|c| !c.is_empty());
    if !desired_config && let Some(m) = ipam.as_object_mut() {
        m.remove("Config");
    }
    json!({
        "Driver": n.driver, "Internal": n.internal, "Attachable": n.attachable, "Ingress": n.ingress,
        "EnableIPv6": n.enable_ipv6, "ConfigOnly": n.config_only,
        "Options": options, "Labels": n.labels, "IPAM": ipam,
    })
}

fn canon_volume_desired(v: &VolumeCreateRequest) -> Value {
    json!({"Driver": v.driver.clone().unwrap_or_else(|| "local".into()), "Options": v.driver_opts, "Labels": v.labels})
}

fn canon_volume_observed(v: &Volume) -> Value {
    json!({"Driver": v.driver, "Options": v.options, "Labels": v.labels})
}

fn canon_secret(s: &SecretSpec) -> Value {
    json!({"Labels": s.labels, "Driver": s.driver, "Templating": s.templating})
}

fn canon_config(c: &ConfigSpec) -> Value {
    json!({"Labels": c.labels, "Templating": c.templating, "Data": c.data.as_deref().map(|d| format!("sha256:{}", short_hash(d)))})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert!(decode_base64("not base64!").is_none());
    }

    #[test]
    fn redacted_shows_hash_of_decoded_data() {
        // sha256("hello") = 2cf24dba...
        assert_eq!(redacted("aGVsbG8="), "(sensitive, sha256:2cf24dba)");
    }
}
