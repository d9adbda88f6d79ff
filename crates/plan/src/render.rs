//! Human-readable rendering of a [`Plan`], in the style of `terraform plan`.

use crate::plan::{Action, Change, Plan, config_text, generated_length, redacted, short_hash};
use std::fmt::Write;

/// Render a plan as text: one line per action (`+ create network demo_default`,
/// `~ update service demo_web` followed by indented `- old` / `+ new` lines per changed field,
/// `- remove secret demo_pw_1a2b3c4d`), then the notes, then a summary line. Secret data never
/// appears (only `(sensitive, sha256:xxxxxxxx)`, or `(generated, 50 characters)` for a secret the
/// engine generates); config data only as its size and hash.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let (mut create, mut update, mut remove) = (0, 0, 0);
    for a in &plan.actions {
        match a {
            Action::CreateNetwork { name, spec } => {
                create += 1;
                let driver = spec.driver.as_deref().unwrap_or("overlay");
                let _ = writeln!(out, "+ create network {name} (driver {driver})");
            }
            Action::CreateVolume { name, spec } => {
                create += 1;
                let driver = spec.driver.as_deref().unwrap_or("local");
                let _ = writeln!(out, "+ create volume {name} (driver {driver})");
            }
            Action::CreateSecret { name, spec } => {
                create += 1;
                let what = match (&spec.data, &spec.driver) {
                    (None, None) if let Some(len) = generated_length(spec) => {
                        format!("(generated, {len} characters)")
                    }
                    (Some(d), _) => redacted(d),
                    (None, Some(drv)) => format!("(from driver {})", drv.name),
                    (None, None) => "(no data)".to_string(),
                };
                let _ = writeln!(out, "+ create secret {name} {what}");
            }
            Action::CreateConfig { name, spec } => {
                create += 1;
                let what = match spec.data.as_deref() {
                    Some(d) => {
                        let len = crate::plan::decode_base64(d).map_or(d.len(), |b| b.len());
                        let kind = if config_text(d).is_some() { "" } else { "sensitive, " };
                        format!("({kind}{len} bytes, sha256:{})", short_hash(d))
                    }
                    None => "(no data)".to_string(),
                };
                let _ = writeln!(out, "+ create config {name} {what}");
            }
            Action::CreateService { name, spec } => {
                create += 1;
                let image = spec
                    .task_template
                    .as_ref()
                    .and_then(|t| t.container_spec.as_ref())
                    .and_then(|c| c.image.as_deref())
                    .unwrap_or("?");
                let _ = writeln!(out, "+ create service {name} (image {image})");
            }
            Action::UpdateService { name, changes, .. } => {
                update += 1;
                let _ = writeln!(out, "~ update service {name}");
                for c in changes {
                    render_change(&mut out, c);
                }
            }
            Action::RemoveService { name, .. } => {
                remove += 1;
                let _ = writeln!(out, "- remove service {name}");
            }
            Action::RemoveSecret { name, .. } => {
                remove += 1;
                let _ = writeln!(out, "- remove secret {name}");
            }
            Action::RemoveConfig { name, .. } => {
                remove += 1;
                let _ = writeln!(out, "- remove config {name}");
            }
            Action::RemoveNetwork { name, .. } => {
                remove += 1;
                let _ = writeln!(out, "- remove network {name}");
            }
            Action::RemoveVolume { name } => {
                remove += 1;
                let _ = writeln!(out, "- remove volume {name} (its data is lost)");
            }
        }
    }
    if !plan.notes.is_empty() {
        if !plan.actions.is_empty() {
            out.push('\n');
        }
        for n in &plan.notes {
            let _ = writeln!(out, "{n}");
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let errors = plan.notes.iter().filter(|n| n.starts_with("error:")).count();
    if plan.is_empty() && errors > 0 {
        let _ = writeln!(out, "Nothing planned for stack {}, but {errors} error(s) above must be fixed.", plan.stack);
    } else if plan.is_empty() {
        let _ = writeln!(out, "No changes: stack {} is up to date.", plan.stack);
    } else {
        let _ =
            write!(out, "Plan for stack {}: {create} to create, {update} to update, {remove} to remove.", plan.stack);
        if errors > 0 {
            let _ = write!(out, " {errors} error(s) above must be fixed.");
        }
        out.push('\n');
    }
    out
}

fn render_change(out: &mut String, c: &Change) {
    let _ = writeln!(out, "    {}", c.path);
    if let Some(old) = &c.old {
        let _ = writeln!(out, "      - {old}");
    }
    if let Some(new) = &c.new {
        let _ = writeln!(out, "      + {new}");
    }
}
