//! berth-spec: compose/stack files in, a validated, normalised [`Stack`] out.
//!
//! Pure: reads the files it is pointed at (compose files, `env_file`s, `.env`) and nothing else.
//! No Docker, no network, no terminal. Every problem is a [`Diagnostic`] with a source position.
//!
//! Pipeline (one function each): [`yaml::parse`] → interpolate → validate (schema) → load (typed
//! model, normalised like docker/cli's loader) → merge (docker/cli's multi-file rules).

pub mod diag;
pub mod env;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod model;
pub mod render;
pub mod replaced;
pub mod schema;
pub mod xberth;
pub mod yaml;

pub use diag::{Diagnostic, Severity, SourceMap};
pub use load::{LoadFailed, LoadOptions, Loaded, load};
pub use model::{Service, Stack};
pub use yaml::{Node, Pos, Value};
