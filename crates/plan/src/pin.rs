//! Stateful services on several machines: a named volume with the `local` driver lives on the
//! disk of whichever node runs the task. Without a constraint, Swarm may start the next task on
//! another node — with an empty volume. [`pin_stateful`] gives every such service a placement
//! constraint on a node label that names the volume, so the data stays where it is; the engine
//! labels one node (where the data already is, else the leader) and the CLI warns.

use crate::desired::Desired;
use bollard_stubs::models::{MountType, TaskSpecPlacement};

/// The node label that pins `volume` (a full volume name).
pub fn label_for(volume: &str) -> String {
    format!("io.berth.volume.{volume}")
}

/// One pin: the service, the volume, the constraint added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub service: String,
    pub volume: String,
    pub label: String,
}

/// Adds `node.labels.io.berth.volume.<volume> == true` to every service that mounts a named
/// volume of the local driver and has no placement constraint of its own. Global services and
/// services with constraints are left alone (the user placed them).
pub fn pin_stateful(desired: &mut Desired) -> Vec<Pin> {
    let mut pins = Vec::new();
    for (name, spec) in desired.services.iter_mut() {
        if spec.mode.as_ref().is_some_and(|m| m.global.is_some()) {
            continue;
        }
        let Some(task) = spec.task_template.as_mut() else { continue };
        if task.placement.as_ref().and_then(|p| p.constraints.as_ref()).is_some_and(|c| !c.is_empty()) {
            continue;
        }
        let Some(mounts) = task.container_spec.as_ref().and_then(|c| c.mounts.as_ref()) else { continue };
        let volume = mounts.iter().find_map(|m| {
            let local = m
                .volume_options
                .as_ref()
                .and_then(|o| o.driver_config.as_ref())
                .and_then(|d| d.name.as_deref())
                .is_none_or(|d| d == "local");
            (m.typ == Some(MountType::VOLUME) && local).then(|| m.source.clone()).flatten()
        });
        let Some(volume) = volume.filter(|v| !v.is_empty()) else { continue };
        let label = label_for(&volume);
        let placement = task.placement.get_or_insert_with(TaskSpecPlacement::default);
        placement.constraints = Some(vec![format!("node.labels.{label} == true")]);
        pins.push(Pin { service: name.clone(), volume, label });
    }
    pins
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{ConvertOptions, desired};

    fn stack(yaml: &str) -> Desired {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), yaml).unwrap();
        let opts = berth_spec::LoadOptions {
            files: vec![dir.path().join("compose.yaml")],
            env_files: vec![],
            environ: vec![],
            dotenv: false,
        };
        let loaded = berth_spec::load(&opts).unwrap();
        desired(&loaded.stack, "blog", &ConvertOptions { content_addressed: true }, &|p| std::fs::read(p)).unwrap()
    }

    #[test]
    fn a_database_with_a_local_volume_is_pinned_and_placed_services_are_not() {
        let mut d = stack(
            "services:\n  db:\n    image: postgres\n    volumes: [pgdata:/var/lib/postgresql/data]\n  web:\n    image: app\n    volumes: [/tmp:/tmp]\n  cache:\n    image: redis\n    volumes: [rdata:/data]\n    deploy:\n      placement:\n        constraints: [node.role == manager]\nvolumes:\n  pgdata: {}\n  rdata: {}\n",
        );
        let pins = pin_stateful(&mut d);
        assert_eq!(
            pins,
            vec![Pin {
                service: "blog_db".into(),
                volume: "blog_pgdata".into(),
                label: "io.berth.volume.blog_pgdata".into()
            }]
        );
        let c = d.services["blog_db"].task_template.as_ref().unwrap().placement.as_ref().unwrap();
        assert_eq!(
            c.constraints.as_deref(),
            Some(&["node.labels.io.berth.volume.blog_pgdata == true".to_string()][..])
        );
        let cache = d.services["blog_cache"].task_template.as_ref().unwrap().placement.as_ref().unwrap();
        assert_eq!(cache.constraints.as_deref(), Some(&["node.role == manager".to_string()][..]));
    }
}
