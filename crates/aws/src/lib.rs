//! berth-aws: the AWS side of berth. Does I/O (AWS APIs through the SDK); prints nothing.
//!
//! - [`config`]: one `SdkConfig` for a target (region, profile, `AWS_ENDPOINT_URL`), typed errors.
//! - [`ecr`]: the registry login (a 12-hour token) for pushes and the swarm's pulls.
//! - [`discovery`], [`asg`], [`route53`]: what the agent on each instance calls (S3 discovery
//!   layout, auto-scaling groups and lifecycle hooks, Route53 records).

pub mod config;
pub mod ecr;
pub mod events;
pub mod preflight;
pub mod stack;

pub mod asg;
pub mod discovery;
pub mod route53;

pub use config::AwsError;

/// The SDK crates, for callers (and tests) that need a client berth-aws does not wrap.
pub mod sdk {
    pub use aws_sdk_autoscaling as autoscaling;
    pub use aws_sdk_cloudformation as cloudformation;
    pub use aws_sdk_ecr as ecr;
    pub use aws_sdk_route53 as route53;
    pub use aws_sdk_s3 as s3;
    pub use aws_types::SdkConfig;
}
