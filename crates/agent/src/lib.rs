//! berth-agent: the agent on each AWS instance of a berth cluster (`berth agent run`).
//!
//! - [`model`] and [`decide`]: pure. What one round observed ([`Observed`]) → what to do
//!   ([`Action`]s). No I/O, no clock; snapshot-tested.
//! - [`live`]: does I/O. Observes (instance metadata, the local Docker engine through
//!   `berth-engine`, S3/auto-scaling/Route53 through `berth-aws`), carries actions out, loops.
//! - [`imds`]: does I/O. A small IMDSv2 client (token, then metadata).

pub mod decide;
pub mod imds;
pub mod live;
pub mod model;

pub use decide::decide;
pub use model::{Action, Observed};

#[cfg(test)]
mod tests;
