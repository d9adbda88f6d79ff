//! Image pinning: every service runs exactly the image its tag named when it was deployed.
//!
//! Swarm's executor pulls a task's image before starting it, unless `ContainerSpec.Image` is an
//! image ID (`sha256:<hex>`) or a `name@sha256:<repo digest>` present on the node. An image named
//! by tag alone therefore costs a registry round trip per task (it fails for an image that exists
//! only locally, then the local one is used), and the tag may move between deploy and rollback.
//! The engine inspects each distinct image once ([`ImageIndex`]); [`pin_images`] rewrites the
//! desired specs with it:
//!
//! - the image has a repo digest for its own repository (it was pulled or pushed) →
//!   `name:tag@sha256:<repo digest>`: every node can pull it, and a node that has it starts it
//!   without asking a registry (what `docker stack deploy` sends with `--resolve-image always`);
//! - the image has no repo digest for its repository (built here, `docker load`, `docker import`,
//!   or pushed under another name only; berth's SSH image distribution keeps its ID) → its ID
//!   `sha256:<hex>`, the name kept in the container label `io.berth.image` (`berth status`, `ps`
//!   and `releases` show it);
//! - the image is not on the engine, or the file already names a digest or an ID → unchanged.
//!
//! A pinned reference is stable while the tag does not move, so a redeploy stays a no-op; when the
//! tag moves (a rebuild), the ID or digest changes and the service is updated.

use crate::convert::normalize_image;
use crate::desired::Desired;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Container label naming the image a service pinned by ID was deployed from (`name:tag`).
pub const LABEL_IMAGE: &str = "io.berth.image";

/// What the engine has for one image reference (`docker image inspect`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalImage {
    /// The image ID, `sha256:<hex>`.
    pub id: String,
    /// `RepoDigests` as the engine lists them (`name@sha256:<hex>`, familiar names).
    pub repo_digests: Vec<String>,
}

/// Image reference (as the desired spec names it) → what the engine has; `None`: not present.
pub type ImageIndex = BTreeMap<String, Option<LocalImage>>;

/// How one image reference is pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// `name:tag@sha256:<repo digest>`.
    Digest(String),
    /// The image ID (`sha256:<hex>`); `name` is the reference it was resolved from.
    Id { id: String, name: String },
    /// Left as it is.
    Unchanged,
}

/// Whether `image` already names exactly one image: a digest, or an image ID.
pub fn is_pinned(image: &str) -> bool {
    image.contains('@') || is_image_id(image)
}

/// `sha256:<64 hex>` (or a bare 64-hex ID).
pub fn is_image_id(image: &str) -> bool {
    let hex = image.strip_prefix("sha256:").unwrap_or(image);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The repository of a reference, normalised (`docker.io/library/redis:7` → `redis`).
fn repository(image: &str) -> String {
    let n = normalize_image(image);
    let n = n.split('@').next().unwrap_or(&n);
    let slash = n.rfind('/').map_or(0, |i| i + 1);
    match n[slash..].rfind(':') {
        Some(i) => n[..slash + i].to_string(),
        None => n.to_string(),
    }
}

/// The pin for `image` given what the engine has (see the module docs for the rules).
pub fn resolve(image: &str, local: Option<&LocalImage>) -> Pin {
    let Some(local) = local else { return Pin::Unchanged };
    if is_pinned(image) || !is_image_id(&local.id) {
        return Pin::Unchanged;
    }
    let repo = repository(image);
    let own = local.repo_digests.iter().find_map(|rd| {
        let (name, digest) = rd.split_once('@')?;
        (repository(name) == repo && digest.starts_with("sha256:")).then_some(digest)
    });
    match own {
        Some(digest) => Pin::Digest(format!("{}@{digest}", normalize_image(image))),
        None => Pin::Id { id: local.id.clone(), name: image.to_string() },
    }
}

/// The images of `desired`'s services that are not pinned yet: what the engine must inspect.
pub fn images_to_resolve(desired: &Desired) -> BTreeSet<String> {
    desired
        .services
        .values()
        .filter_map(|s| s.task_template.as_ref()?.container_spec.as_ref()?.image.clone())
        .filter(|i| !i.is_empty() && !is_pinned(i))
        .collect()
}

/// Pins every service image found in `index` (see the module docs). Returns, per full service
/// name, the reference the file named and the pin applied (services left unchanged are not listed).
pub fn pin_images(desired: &mut Desired, index: &ImageIndex) -> BTreeMap<String, (String, Pin)> {
    let mut pinned = BTreeMap::new();
    for (name, spec) in desired.services.iter_mut() {
        let Some(cs) = spec.task_template.as_mut().and_then(|t| t.container_spec.as_mut()) else { continue };
        let Some(image) = cs.image.clone() else { continue };
        let pin = resolve(&image, index.get(&image).and_then(Option::as_ref));
        match &pin {
            Pin::Unchanged => continue,
            Pin::Digest(r) => cs.image = Some(r.clone()),
            Pin::Id { id, name } => {
                cs.image = Some(id.clone());
                cs.labels.get_or_insert_with(HashMap::new).insert(LABEL_IMAGE.into(), name.clone());
            }
        }
        pinned.insert(name.clone(), (image, pin));
    }
    pinned
}

/// The reference a pinned spec image was resolved from: the `io.berth.image` label of an image
/// pinned by ID, the reference without its digest otherwise. What `plan` compares when it must
/// not count the pin as a change (a `docker stack deploy` stack berth does not own).
pub fn unpinned(image: &str, container_labels: Option<&HashMap<String, String>>) -> String {
    if is_image_id(image)
        && let Some(name) = container_labels.and_then(|l| l.get(LABEL_IMAGE))
    {
        return name.clone();
    }
    image.split('@').next().unwrap_or(image).to_string()
}

/// The image as people read it: the name, and for a pinned image the first 12 hex digits of its
/// ID or digest: `app:v1 (id 3f2a9c1b7d4e)`, `redis:7 (digest 38a203e1986c)`.
pub fn display(image: &str, container_labels: Option<&HashMap<String, String>>) -> String {
    let short = |h: &str| h.strip_prefix("sha256:").unwrap_or(h).chars().take(12).collect::<String>();
    if is_image_id(image) {
        return match container_labels.and_then(|l| l.get(LABEL_IMAGE)) {
            Some(name) => format!("{name} (id {})", short(image)),
            None => format!("sha256:{}", short(image)),
        };
    }
    match image.split_once('@') {
        Some((name, digest)) => format!("{name} (digest {})", short(digest)),
        None => image.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{ServiceSpec, TaskSpec, TaskSpecContainerSpec};

    const ID: &str = "sha256:3f2a9c1b7d4e00000000000000000000000000000000000000000000000000aa";
    const DIGEST: &str = "sha256:38a203e1986cf79639cfb9b2e1d6e773de84002feea2d4eb006b52004ee8502d";

    fn local(repo_digests: &[&str]) -> LocalImage {
        LocalImage { id: ID.into(), repo_digests: repo_digests.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn a_local_only_image_is_pinned_by_id_keeping_its_name() {
        assert_eq!(
            resolve("berth-test/app:v1", Some(&local(&[]))),
            Pin::Id { id: ID.into(), name: "berth-test/app:v1".into() }
        );
    }

    #[test]
    fn a_pulled_image_is_pinned_by_the_repo_digest_of_its_own_repository() {
        let l = local(&[&format!("redis@{DIGEST}")]);
        assert_eq!(resolve("redis:7", Some(&l)), Pin::Digest(format!("redis:7@{DIGEST}")));
        // The engine lists familiar names; the spec may hold any spelling of the same repository.
        let l = local(&[&format!("registry:5000/team/app@{DIGEST}")]);
        assert_eq!(
            resolve("registry:5000/team/app:1.2", Some(&l)),
            Pin::Digest(format!("registry:5000/team/app:1.2@{DIGEST}"))
        );
    }

    #[test]
    fn an_image_pushed_under_another_name_only_is_pinned_by_id() {
        // No registry is known to hold `app:v1`: the name is local (regression: the test image
        // pushed to a test registry by another test was left unpinned).
        let l = local(&[&format!("127.0.0.1:5077/t/app@{DIGEST}")]);
        assert_eq!(resolve("app:v1", Some(&l)), Pin::Id { id: ID.into(), name: "app:v1".into() });
    }

    #[test]
    fn missing_or_already_pinned_images_are_left_alone() {
        assert_eq!(resolve("app:v1", None), Pin::Unchanged);
        assert_eq!(resolve(&format!("redis:7@{DIGEST}"), Some(&local(&[]))), Pin::Unchanged);
        assert_eq!(resolve(ID, Some(&local(&[]))), Pin::Unchanged);
        assert_eq!(resolve("app:v1", Some(&LocalImage { id: "weird".into(), repo_digests: vec![] })), Pin::Unchanged);
    }

    fn desired(images: &[(&str, &str)]) -> Desired {
        let mut d = Desired { stack: "s".into(), ..Default::default() };
        for (svc, image) in images {
            d.services.insert(
                svc.to_string(),
                ServiceSpec {
                    name: Some(svc.to_string()),
                    task_template: Some(TaskSpec {
                        container_spec: Some(TaskSpecContainerSpec {
                            image: Some(image.to_string()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            );
        }
        d
    }

    fn image(d: &Desired, svc: &str) -> (String, Option<String>) {
        let cs = d.services[svc].task_template.as_ref().unwrap().container_spec.as_ref().unwrap();
        (cs.image.clone().unwrap(), cs.labels.as_ref().and_then(|l| l.get(LABEL_IMAGE).cloned()))
    }

    #[test]
    fn pin_images_rewrites_each_service_and_labels_id_pins() {
        let mut d = desired(&[("s_a", "app:v1"), ("s_b", "app:v1"), ("s_c", "redis:7"), ("s_d", "gone:1")]);
        assert_eq!(
            images_to_resolve(&d).into_iter().collect::<Vec<_>>(),
            ["app:v1", "gone:1", "redis:7"].map(String::from)
        );
        let index = ImageIndex::from([
            ("app:v1".to_string(), Some(local(&[]))),
            ("redis:7".to_string(), Some(local(&[&format!("redis@{DIGEST}")]))),
            ("gone:1".to_string(), None),
        ]);
        let pinned = pin_images(&mut d, &index);
        assert_eq!(pinned.keys().collect::<Vec<_>>(), ["s_a", "s_b", "s_c"]);
        assert_eq!(image(&d, "s_a"), (ID.to_string(), Some("app:v1".to_string())));
        assert_eq!(image(&d, "s_b"), (ID.to_string(), Some("app:v1".to_string())));
        assert_eq!(image(&d, "s_c"), (format!("redis:7@{DIGEST}"), None));
        assert_eq!(image(&d, "s_d"), ("gone:1".to_string(), None));
        // Pinning again changes nothing; only the missing image is left to resolve.
        let again = d.clone();
        pin_images(&mut d, &index);
        assert_eq!(d, again);
        assert_eq!(images_to_resolve(&d).into_iter().collect::<Vec<_>>(), ["gone:1"]);
    }

    #[test]
    fn unpinned_and_display_name_the_image_people_chose() {
        let labels = HashMap::from([(LABEL_IMAGE.to_string(), "app:v1".to_string())]);
        assert_eq!(unpinned(ID, Some(&labels)), "app:v1");
        assert_eq!(unpinned(&format!("redis:7@{DIGEST}"), None), "redis:7");
        assert_eq!(unpinned("app:v1", None), "app:v1");
        assert_eq!(display(ID, Some(&labels)), "app:v1 (id 3f2a9c1b7d4e)");
        assert_eq!(display(ID, None), "sha256:3f2a9c1b7d4e");
        assert_eq!(display(&format!("redis:7@{DIGEST}"), None), "redis:7 (digest 38a203e1986c)");
        assert_eq!(display("app:v1", None), "app:v1");
    }

    /// The observed side: `desired`'s service `svc` as the swarm holds it with `image` and `labels`.
    fn observed_with(svc: &str, image: &str, labels: &[(&str, &str)]) -> crate::Observed {
        let mut spec = desired(&[(svc, image)]).services.remove(svc).unwrap();
        spec.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let mut o = crate::Observed::default();
        o.services.insert(
            svc.to_string(),
            bollard_stubs::models::Service {
                id: Some("id1".into()),
                version: Some(bollard_stubs::models::ObjectVersion { index: Some(7) }),
                spec: Some(spec),
                ..Default::default()
            },
        );
        o
    }

    fn plan_of(d: &Desired, o: &crate::Observed, adopt: bool) -> crate::Plan {
        crate::plan(d, o, &crate::PlanOptions { prune: true, remove_volumes: false, adopt })
    }

    #[test]
    fn a_stack_deployed_by_tag_is_updated_once_to_its_pin_then_stays_up_to_date() {
        let berth = [("com.docker.stack.namespace", "s"), ("io.berth.stack", "s")];
        let index = ImageIndex::from([("app:v1".to_string(), Some(local(&[])))]);
        let mut d = desired(&[("s_a", "app:v1")]);
        for (_, spec) in d.services.iter_mut() {
            spec.labels = Some(berth.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        }
        pin_images(&mut d, &index);
        // Deployed by an older berth (tag only): one update, the image and the label.
        let p = plan_of(&d, &observed_with("s_a", "app:v1", &berth), false);
        let [crate::Action::UpdateService { changes, .. }] = p.actions.as_slice() else { panic!("{p:?}") };
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["TaskTemplate.ContainerSpec.Image", "TaskTemplate.ContainerSpec.Labels"]);
        // Once pinned: nothing to do.
        let spec = d.services["s_a"].clone();
        let mut o = observed_with("s_a", ID, &berth);
        o.services.get_mut("s_a").unwrap().spec = Some(spec);
        assert!(plan_of(&d, &o, false).is_empty());
        // The tag moved (rebuilt): the service is updated to the new ID.
        let moved = "sha256:9999999999990000000000000000000000000000000000000000000000000000";
        let index =
            ImageIndex::from([("app:v1".to_string(), Some(LocalImage { id: moved.into(), repo_digests: vec![] }))]);
        let mut d2 = desired(&[("s_a", "app:v1")]);
        d2.services.get_mut("s_a").unwrap().labels = d.services["s_a"].labels.clone();
        pin_images(&mut d2, &index);
        let p = plan_of(&d2, &o, false);
        let [crate::Action::UpdateService { changes, .. }] = p.actions.as_slice() else { panic!("{p:?}") };
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].new, Some(serde_json::json!(moved)));
    }

    #[test]
    fn a_docker_stack_deploy_stack_is_not_changed_by_the_pin_alone() {
        let docker = [("com.docker.stack.namespace", "s")];
        let mut d = desired(&[("s_a", "app:v1"), ("s_r", "redis:7")]);
        for (_, spec) in d.services.iter_mut() {
            spec.labels = Some(
                [("com.docker.stack.namespace", "s"), ("io.berth.stack", "s")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        let index = ImageIndex::from([
            ("app:v1".to_string(), Some(local(&[]))),
            ("redis:7".to_string(), Some(local(&[&format!("redis@{DIGEST}")]))),
        ]);
        pin_images(&mut d, &index);
        // `--resolve-image never` (the tag) and the default (the tag pinned by the registry's digest).
        let mut o = observed_with("s_a", "app:v1", &docker);
        let r = observed_with("s_r", &format!("redis:7@{DIGEST}"), &docker);
        o.services.extend(r.services);
        let p = plan_of(&d, &o, false);
        assert!(p.is_empty(), "{p:?}");
        // Adopting it labels it as berth's and pins it.
        let p = plan_of(&d, &o, true);
        assert_eq!(p.actions.len(), 2);
    }
}
