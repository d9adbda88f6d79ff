//! CloudFormation templates for berth's AWS targets (`docs/aws.md`, "Templates").
//!
//! Pure: a [`TemplateInput`] (the stack's name and domains, the target's [`AwsTarget`], the
//! services that build images, the public key's contents) becomes a template as JSON. No I/O:
//! the CLI reads the key file, resolves the hosted zone and sends the template
//! (`crates/aws`). The same input always gives the same template, with keys sorted.
//!
//! Two layouts: `single` (one instance behind an Elastic IP, seed 000's DockerEc2) and `cluster`
//! (manager and worker auto-scaling groups over three zones, seeds 003/004). Both share the
//! network, the buckets, the ECR repositories and the instance role. The instances boot the same
//! way (see [`compute`]): Docker, then the berth binary from the discovery bucket, then
//! `berth agent run` as a systemd unit. Nothing secret is in a template.

use berth_spec::xberth::{AwsMode, AwsTarget};
use serde_json::{Map, Value, json};

mod compute;
mod dns;
mod iam;
mod network;
mod storage;

pub use dns::record_names;
pub use iam::RESOURCE_STAR_ACTIONS;
pub use storage::repository_name;

/// What a template is made from.
#[derive(Debug, Clone)]
pub struct TemplateInput<'a> {
    /// The stack's name (`x-berth.name` or the project name).
    pub stack: &'a str,
    /// The target's name in `x-berth.targets`.
    pub target: &'a str,
    pub aws: &'a AwsTarget,
    /// The stack's `x-berth` domains. With a hosted zone, single mode gets A records for each
    /// and for `*.<domain>` (or, when subdomains of it are listed, for those); cluster mode
    /// passes the same names to the managers' agents, which keep the records current.
    pub domains: &'a [String],
    /// Services with `build:`; one ECR repository `<stack>/<service>` each.
    pub repositories: &'a [String],
    /// Contents of the `ssh_key` file (OpenSSH public key), read by the caller.
    pub public_key: Option<String>,
}

/// Why no template could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CfnError {
    #[error("target `{target}` names `ssh_key: {path}` but no public key was read")]
    MissingPublicKey { target: String, path: String },
    #[error("`ssh_key: {path}` holds a private key")]
    PrivateKey { path: String },
    #[error("`ssh_key: {path}` is not an OpenSSH public key")]
    BadPublicKey { path: String },
    #[error("domain `{domain}` is not in the hosted zone `{zone}`")]
    DomainOutsideZone { domain: String, zone: String },
    #[error("service `{service}` gives the ECR repository name `{name}`, which ECR does not accept")]
    BadRepository { service: String, name: String },
    #[error("{what} `{value}` cannot name a CloudFormation stack")]
    BadName { what: &'static str, value: String },
}

impl CfnError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            CfnError::MissingPublicKey { .. } => {
                "the CLI reads the file named by `ssh_key`; check that it exists".into()
            }
            CfnError::PrivateKey { path } => {
                format!("point `ssh_key` at the public half (`{path}.pub`); a private key never leaves this machine")
            }
            CfnError::BadPublicKey { .. } => {
                "expected one line like `ssh-ed25519 AAAA... comment` (`ssh-keygen -y -f KEY` prints it)".into()
            }
            CfnError::DomainOutsideZone { zone, .. } => {
                format!("records can only be made in `{zone}`: set `hosted_zone` to the zone of the domain")
            }
            CfnError::BadRepository { .. } => {
                "ECR repository names are lowercase letters, digits and `._-/`, starting with a letter or digit".into()
            }
            CfnError::BadName { .. } => "use letters, digits and `-` (other characters become `-`)".into(),
        })
    }
}

/// The CloudFormation stack of a berth stack's target: `berth-<stack>-<target>`; characters a
/// stack name cannot hold (anything but ASCII letters, digits and `-`) become `-`, and the name is
/// cut to CloudFormation's 128 characters.
pub fn stack_name(stack: &str, target: &str) -> String {
    let raw = format!("berth-{stack}-{target}");
    let mut s: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    s.truncate(128);
    s
}

/// Tag keys every taggable resource carries (plus `Name`).
pub const TAG_STACK: &str = "io.berth.stack";
pub const TAG_TARGET: &str = "io.berth.target";
/// Instance tag naming the agent version a single-mode instance was last told about.
pub const TAG_AGENT_VERSION: &str = "io.berth.agent-version";
/// Default of the `AmiId` parameter: Debian 12 (amd64) through the public SSM parameter.
pub const DEFAULT_AMI_PARAMETER: &str = "/aws/service/debian/release/12/latest/amd64";
/// Name of the termination lifecycle hook of both groups (cluster mode).
pub const DRAIN_HOOK: &str = "berth-drain";
/// Seconds a terminating instance may stay in `Terminating:Wait` without a heartbeat.
pub const DRAIN_HOOK_TIMEOUT: u32 = 600;

/// The template for `input`, keys sorted. Errors only for inputs the spec cannot check alone
/// (key contents, domains against the zone, repository names).
pub fn template(input: &TemplateInput) -> Result<Value, CfnError> {
    check(input)?;
    let mut t = Tpl::new(input);
    t.parameters();
    network::add(&mut t);
    storage::add(&mut t)?;
    iam::add(&mut t);
    compute::add(&mut t)?;
    dns::add(&mut t);
    t.outputs();
    Ok(canonical(t.finish()))
}

fn check(input: &TemplateInput) -> Result<(), CfnError> {
    for (what, value) in [("stack", input.stack), ("target", input.target)] {
        if value.is_empty() || !value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err(CfnError::BadName { what, value: value.into() });
        }
    }
    if let Some(zone) = &input.aws.hosted_zone {
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        for d in input.domains {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            let base = d.strip_prefix("*.").unwrap_or(&d);
            if base != zone && !base.ends_with(&format!(".{zone}")) {
                return Err(CfnError::DomainOutsideZone { domain: d.clone(), zone });
            }
        }
    }
    Ok(())
}

/// A template being built.
pub(crate) struct Tpl<'a> {
    pub input: &'a TemplateInput<'a>,
    pub name: String,
    resources: Map<String, Value>,
    outputs: Map<String, Value>,
    conditions: Map<String, Value>,
    parameters: Map<String, Value>,
    rules: Map<String, Value>,
}

impl<'a> Tpl<'a> {
    fn new(input: &'a TemplateInput<'a>) -> Tpl<'a> {
        Tpl {
            input,
            name: stack_name(input.stack, input.target),
            resources: Map::new(),
            outputs: Map::new(),
            conditions: Map::new(),
            parameters: Map::new(),
            rules: Map::new(),
        }
    }

    pub fn cluster(&self) -> bool {
        self.input.aws.mode == AwsMode::Cluster
    }

    /// Records and the agents' DNS upkeep exist only with a hosted zone and at least one domain.
    pub fn dns(&self) -> bool {
        self.input.aws.hosted_zone.is_some() && !self.input.domains.is_empty()
    }

    /// Adds a resource; returns it for attributes (`DependsOn`, `DeletionPolicy`, ...).
    pub fn add(&mut self, id: &str, ty: &str, props: Value) -> &mut Map<String, Value> {
        assert!(!self.resources.contains_key(id), "logical ID {id} twice");
        let mut r = Map::new();
        r.insert("Type".into(), ty.into());
        r.insert("Properties".into(), props);
        self.resources.insert(id.into(), Value::Object(r));
        self.resources[id].as_object_mut().expect("object")
    }

    pub fn has(&self, id: &str) -> bool {
        self.resources.contains_key(id)
    }

    pub fn condition(&mut self, id: &str, v: Value) {
        self.conditions.insert(id.into(), v);
    }

    /// `Name`, `io.berth.stack`, `io.berth.target` tags; `Name` is `<stack name>-<suffix>`.
    pub fn tags(&self, suffix: &str) -> Value {
        Value::Array(self.tag_list(suffix).into_iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect())
    }

    pub fn tag_list(&self, suffix: &str) -> Vec<(String, String)> {
        vec![
            ("Name".into(), format!("{}-{suffix}", self.name)),
            (TAG_STACK.into(), self.input.stack.into()),
            (TAG_TARGET.into(), self.input.target.into()),
        ]
    }

    fn parameters(&mut self) {
        // A pinned AMI is a plain image ID: no SSM lookup, the same image for every instance ever made.
        let ami = match &self.input.aws.ami {
            Some(id) => json!({
                "Type": "AWS::EC2::Image::Id",
                "Default": id,
                "Description": "Image of every instance, pinned by the target's `ami`",
            }),
            None => json!({
                "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                "Default": DEFAULT_AMI_PARAMETER,
                "Description": "Image of every instance: Debian 12 amd64 (login user `admin`), resolved through SSM",
            }),
        };
        self.parameters.insert("AmiId".into(), ami);
        self.parameters.insert(
            "HostedZoneId".into(),
            json!({
                "Type": "String",
                "Default": "",
                "AllowedPattern": "^[A-Z0-9]{0,32}$",
                "Description": "Route53 hosted zone ID of the domains (resolved by berth), empty for none",
            }),
        );
        self.parameters.insert(
            "AgentVersion".into(),
            json!({
                "Type": "String",
                "Default": "",
                "AllowedPattern": "^[0-9a-f]{0,64}$",
                "Description": "sha256 prefix of the berth binary in the discovery bucket (agent/berth)",
            }),
        );
        if self.dns() {
            self.condition("HasHostedZone", json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "HostedZoneId"}, ""]}]}));
        } else if self.input.aws.hosted_zone.is_none() {
            // The CLI always passes the parameter; without `hosted_zone` it must stay empty.
            self.rules.insert(
                "NoHostedZone".into(),
                json!({"Assertions": [{
                    "Assert": {"Fn::Equals": [{"Ref": "HostedZoneId"}, ""]},
                    "AssertDescription": "this target names no hosted_zone: HostedZoneId must be empty",
                }]}),
            );
        }
    }

    fn output(&mut self, id: &str, value: Value, description: &str) {
        self.outputs.insert(id.into(), json!({"Value": value, "Description": description}));
    }

    fn outputs(&mut self) {
        self.output("DiscoveryBucket", r("DiscoveryBucket"), "Swarm discovery: agent binary, state, join tokens");
        self.output("StaticBucket", r("StaticBucket"), "Static files of the app (kept when the stack is deleted)");
        self.output(
            "MediaBucket",
            r("MediaBucket"),
            "Uploaded media of the app (versioned, kept when the stack is deleted)",
        );
        self.output(
            "RegistryUri",
            sub("${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}"),
            "ECR registry of the stack's repositories",
        );
        self.output("InstanceRole", att("InstanceRole", "Arn"), "IAM role of the instances");
        if self.input.aws.hosted_zone.is_some() {
            self.output("HostedZoneId", r("HostedZoneId"), "Route53 hosted zone of the domains");
        }
        if self.cluster() {
            self.output("ManagerGroup", r("ManagerGroup"), "Auto-scaling group of the swarm managers");
            self.output("WorkerGroup", r("WorkerGroup"), "Auto-scaling group of the swarm workers");
        } else {
            self.output("PublicIp", r("ElasticIp"), "Elastic IP of the instance");
            self.output("Instance", r("Instance"), "ID of the instance");
        }
    }

    fn finish(self) -> Value {
        let aws = self.input.aws;
        let mut t = Map::new();
        t.insert("AWSTemplateFormatVersion".into(), "2010-09-09".into());
        t.insert(
            "Description".into(),
            format!(
                "berth stack `{}`, target `{}`: {} ({}). Generated by berth; edit the stack file, not this template.",
                self.input.stack,
                self.input.target,
                aws.mode,
                match aws.mode {
                    AwsMode::Single => "one instance with an Elastic IP".to_string(),
                    AwsMode::Cluster => format!(
                        "{} managers over three zones, {} to {} workers",
                        aws.managers, aws.workers, aws.workers_max
                    ),
                }
            )
            .into(),
        );
        t.insert("Parameters".into(), Value::Object(self.parameters));
        if !self.rules.is_empty() {
            t.insert("Rules".into(), Value::Object(self.rules));
        }
        if !self.conditions.is_empty() {
            t.insert("Conditions".into(), Value::Object(self.conditions));
        }
        t.insert("Resources".into(), Value::Object(self.resources));
        t.insert("Outputs".into(), Value::Object(self.outputs));
        Value::Object(t)
    }
}

/// `{"Ref": id}`.
pub(crate) fn r(id: &str) -> Value {
    json!({ "Ref": id })
}

/// `{"Fn::GetAtt": [id, attr]}`.
pub(crate) fn att(id: &str, attr: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attr] })
}

/// `{"Fn::Sub": s}`.
pub(crate) fn sub(s: &str) -> Value {
    json!({ "Fn::Sub": s })
}

/// A logical ID from free text: ASCII letters and digits, each word capitalised.
pub(crate) fn logical(prefix: &str, text: &str) -> String {
    let mut out = prefix.to_string();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let mut cs = word.chars();
        if let Some(first) = cs.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(cs);
        }
    }
    out
}

/// The same value with every object's keys in sorted order, whatever map serde_json was built
/// with (`preserve_order` may be switched on by another crate in the build).
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_are_valid_for_cloudformation() {
        assert_eq!(stack_name("blog", "prod"), "berth-blog-prod");
        assert_eq!(stack_name("my_app", "eu.west"), "berth-my-app-eu-west");
        assert_eq!(stack_name(&"x".repeat(200), "p").len(), 128);
    }

    #[test]
    fn logical_ids_are_alphanumeric() {
        assert_eq!(logical("Dns", "*.blog.example.com"), "DnsBlogExampleCom");
        assert_eq!(logical("Repo", "web-api_v2"), "RepoWebApiV2");
    }
}
