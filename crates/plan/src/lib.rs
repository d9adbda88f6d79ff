//! berth-plan: what a deploy should change, as data.
//!
//! Pure: no Docker API calls, no terminal. Input is a loaded [`berth_spec`] stack and the
//! [`Observed`] state of the swarm (fetched by `berth-engine`, or read from a JSON snapshot in tests);
//! output is a [`Desired`] state (Engine-API-shaped specs) and a [`Plan`]: ordered actions, each
//! update with a per-field diff.

pub mod convert;
pub mod desired;
pub mod diff;
pub mod edge;
pub mod image_pin;
pub mod observed;
pub mod pin;
pub mod plan;
pub mod registry_auth;
pub mod render;

pub use desired::Desired;
pub use observed::Observed;
pub use plan::{Action, Change, Plan, PlanOptions, plan};
pub use render::render_text;
