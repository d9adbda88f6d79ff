//! One [`SdkConfig`] for a target: its region and profile, `AWS_ENDPOINT_URL` honoured (moto in
//! tests), an HTTPS client on rustls + ring (the tree's TLS stack; no aws-lc build), typed errors
//! for what an operator gets wrong first (no credentials, a profile that does not exist).

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_types::SdkConfig;
use aws_types::os_shim_internal::{Env, Fs};
use std::borrow::Cow;

/// What can go wrong talking to AWS. `Display` is the message; the CLI adds the hint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    #[error("no AWS credentials found{}: {detail}", profile.as_deref().map(|p| format!(" for profile `{p}`")).unwrap_or_default())]
    NoCredentials { profile: Option<String>, detail: String },
    #[error("AWS profile `{profile}` is not in the AWS config or credentials file (profiles there: {known})")]
    UnknownProfile { profile: String, known: String },
    #[error("AWS credentials were rejected: {0}")]
    BadCredentials(String),
    #[error("region `{region}` has {} availability zone(s) ({}); cluster mode needs {needed}", zones.len(), zones.join(", "))]
    TooFewZones { region: String, zones: Vec<String>, needed: usize },
    #[error("no {}Route53 hosted zone named `{zone}` in this account", if *private_only { "public " } else { "" })]
    NoHostedZone { zone: String, private_only: bool },
    #[error("stack {stack} is {status}: {message}")]
    StackState { stack: String, status: String, message: String },
    #[error("CloudFormation refused to run the change set of {stack}: {}{message}", resource.as_ref().map(|(id, ty)| format!("{id} ({ty}) failed: ")).unwrap_or_default())]
    ExecuteFailed {
        stack: String,
        /// Logical ID and type of the resource the message is about, when it can be told.
        resource: Option<(String, String)>,
        kind: crate::events::FailureKind,
        message: String,
    },
    #[error("{}", stack_failed(.0))]
    StackFailed(Box<crate::stack::StackFailure>),
    #[error("{op}: {message}")]
    Api { op: &'static str, code: Option<String>, message: String },
    #[error("{0}")]
    Other(String),
}

impl AwsError {
    /// A hint for the operator, when there is an obvious next step.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            AwsError::NoCredentials { .. } => Some(
                "set AWS_PROFILE (or `profile:` in the target) to a profile made with `aws configure`, \
                 or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ),
            AwsError::UnknownProfile { .. } => {
                Some("create it with `aws configure --profile NAME`, or fix `profile:` in the target")
            }
            AwsError::BadCredentials(_) => Some("check the access key (`aws sts get-caller-identity` tells the same)"),
            AwsError::TooFewZones { .. } => Some(
                "a cluster spreads its managers over three zones: choose a region with three (e.g. eu-west-1), \
                 or `mode: single`",
            ),
            AwsError::NoHostedZone { .. } => Some(
                "create the hosted zone in Route53 and delegate the domain to its name servers, or remove \
                 `hosted_zone:` from the target (then berth makes no DNS records)",
            ),
            AwsError::StackState { status, .. } if status == "ROLLBACK_COMPLETE" => Some(
                "`berth cluster up` deletes the failed stack and creates it again; `berth cluster down` only deletes it",
            ),
            AwsError::StackFailed(f) => f.failure.as_ref().and_then(|x| x.hint()),
            AwsError::ExecuteFailed { kind, .. } => kind_hint(*kind),
            _ => None,
        }
    }

    /// An SDK error with its service error code (if the service answered) and message.
    pub fn api<E, R>(op: &'static str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> AwsError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        use aws_smithy_runtime_api::client::result::SdkError;
        match &err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                AwsError::Api {
                    op,
                    code: e.code().map(str::to_owned),
                    message: e.message().map(str::to_owned).unwrap_or_else(|| e.to_string()),
                }
            }
            _ => AwsError::Api { op, code: None, message: error_chain(&err) },
        }
    }

    /// The service error code, when the service answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

fn stack_failed(f: &crate::stack::StackFailure) -> String {
    let mut s = format!("stack {} ended {}", f.stack, f.status);
    match &f.failure {
        Some(x) => s.push_str(&format!(": {} ({}) failed: {}", x.logical_id, x.resource_type, x.reason)),
        None => s.push_str(": CloudFormation named no failed resource"),
    }
    if !f.rollback.is_empty() {
        s.push_str(&format!("\n{}", f.rollback));
    }
    s
}

fn kind_hint(kind: crate::events::FailureKind) -> Option<&'static str> {
    crate::events::Failure {
        logical_id: String::new(),
        resource_type: String::new(),
        status: String::new(),
        reason: String::new(),
        kind,
    }
    .hint()
}

/// An error and its sources on one line (`a: b: c`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// The endpoint override: `AWS_ENDPOINT_URL` when set and not empty.
pub fn endpoint_url() -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL").ok().filter(|s| !s.is_empty())
}

/// Loads the SDK configuration for `region` and `profile` (None: `AWS_PROFILE` or the default
/// chain). A named profile missing from both files is an error here, not a late credentials failure.
/// Credentials are not fetched yet: [`caller_identity`] checks them.
pub async fn load(region: &str, profile: Option<&str>) -> Result<SdkConfig, AwsError> {
    if let Some(p) = profile {
        check_profile(p).await?;
    }
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned())).http_client(http);
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(url) = endpoint_url() {
        loader = loader.endpoint_url(url);
    }
    Ok(loader.load().await)
}

async fn check_profile(name: &str) -> Result<(), AwsError> {
    let files = aws_runtime::env_config::file::EnvConfigFiles::default();
    let set = aws_config::profile::load(&Fs::real(), &Env::real(), &files, Some(Cow::Owned(name.to_owned())))
        .await
        .map_err(|e| AwsError::Other(format!("reading the AWS config files: {}", error_chain(&e))))?;
    if set.get_profile(name).is_some() {
        return Ok(());
    }
    let mut known: Vec<&str> = set.profiles().collect();
    known.sort_unstable();
    Err(AwsError::UnknownProfile {
        profile: name.to_owned(),
        known: if known.is_empty() { "none".to_owned() } else { known.join(", ") },
    })
}

/// Resolves credentials now (so that "no credentials" is said before anything else happens) and
/// asks STS who they belong to. Returns the account ID.
pub async fn caller_identity(conf: &SdkConfig) -> Result<String, AwsError> {
    let provider = conf.credentials_provider().ok_or_else(|| AwsError::NoCredentials {
        profile: None,
        detail: "no credentials provider configured".into(),
    })?;
    if let Err(e) = provider.provide_credentials().await {
        return Err(AwsError::NoCredentials { profile: std::env::var("AWS_PROFILE").ok(), detail: error_chain(&e) });
    }
    let sts = aws_sdk_sts::Client::new(conf);
    match sts.get_caller_identity().send().await {
        Ok(out) => Ok(out.account().unwrap_or_default().to_owned()),
        Err(e) => {
            let err = AwsError::api("sts:GetCallerIdentity", e);
            match err.code() {
                Some("InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken" | "AccessDenied") => {
                    Err(AwsError::BadCredentials(err.to_string()))
                }
                _ => Err(err),
            }
        }
    }
}

/// An S3 client for `conf`: path-style addressing when an endpoint URL is set (moto cannot route
/// virtual-host bucket names on 127.0.0.1).
pub fn s3(conf: &SdkConfig) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(conf);
    if endpoint_url().is_some() {
        b = b.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}
