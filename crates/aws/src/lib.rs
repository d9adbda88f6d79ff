//! berth-aws: the AWS side of berth. Does I/O (AWS APIs through the SDK); prints nothing.
//!
//! - [`config`]: one `SdkConfig` for a target (region, profile, `AWS_ENDPOINT_URL`), typed errors.
//! - [`discovery`], [`asg`], [`route53`]: what the agent on each instance calls (S3 discovery
//!   layout, auto-scaling groups and lifecycle hooks, Route53 records).

pub mod config;
pub mod events;
pub mod preflight;
pub mod stack;

pub mod asg;
pub mod discovery;
pub mod route53;

pub use config::AwsError;
