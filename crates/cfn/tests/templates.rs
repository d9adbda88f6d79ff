//! Every template variant: snapshot, security properties walked over the whole template, and the
//! real `cfn-lint` with zero errors (and zero warnings; see docs/aws.md, "Templates").

use berth_cfn::{CfnError, RESOURCE_STAR_ACTIONS, TemplateInput, template};
use berth_spec::xberth::{AwsMode, AwsTarget};
use serde_json::Value;
use std::process::Command;

const PUBLIC_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTemplateTestsOnlyxxxxxxxxxxxxxxxx ops@laptop";

fn aws(mode: AwsMode) -> AwsTarget {
    AwsTarget {
        region: "eu-west-1".into(),
        profile: None,
        mode,
        instance_type: "t3.small".into(),
        managers: if mode == AwsMode::Cluster { 3 } else { 1 },
        workers: 0,
        workers_max: 0,
        hosted_zone: None,
        ssh_cidr: None,
        ssh_key: None,
        volume_size: 20,
        cidr: "10.0.0.0/16".into(),
        immutable_tags: false,
        ami: None,
        ssh_user: None,
        socket: None,
    }
}

struct Variant {
    name: &'static str,
    aws: AwsTarget,
    domains: Vec<String>,
    repositories: Vec<String>,
    public_key: Option<String>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Both layouts, bare and with everything (hosted zone, SSH, key pair, repositories).
fn variants() -> Vec<Variant> {
    let single_full = AwsTarget {
        hosted_zone: Some("example.com".into()),
        ssh_cidr: Some("203.0.113.0/24".into()),
        ssh_key: Some("~/.ssh/id_ed25519.pub".into()),
        ..aws(AwsMode::Single)
    };
    let cluster_full = AwsTarget {
        instance_type: "m7i.large".into(),
        managers: 5,
        workers: 2,
        workers_max: 6,
        hosted_zone: Some("example.com".into()),
        ssh_cidr: Some("2001:db8::/48".into()),
        ssh_key: Some("~/.ssh/id_ed25519.pub".into()),
        volume_size: 40,
        cidr: "10.20.0.0/20".into(),
        immutable_tags: true,
        ami: Some("ami-0123456789abcdef0".into()),
        ..aws(AwsMode::Cluster)
    };
    vec![
        Variant {
            name: "single_bare",
            aws: aws(AwsMode::Single),
            domains: vec![],
            repositories: vec![],
            public_key: None,
        },
        Variant {
            name: "single_full",
            aws: single_full,
            domains: strings(&["blog.example.com"]),
            repositories: strings(&["backend", "frontend"]),
            public_key: Some(PUBLIC_KEY.into()),
        },
        // A hosted zone but no domains yet: nothing uses the zone but the output.
        Variant {
            name: "single_zone_without_domains",
            aws: AwsTarget { hosted_zone: Some("example.com".into()), ..aws(AwsMode::Single) },
            domains: vec![],
            repositories: vec![],
            public_key: None,
        },
        Variant {
            name: "cluster_bare",
            aws: aws(AwsMode::Cluster),
            domains: strings(&["blog.example.com"]),
            repositories: vec![],
            public_key: None,
        },
        Variant {
            name: "cluster_full",
            aws: cluster_full,
            domains: strings(&["example.com", "api.example.com"]),
            repositories: strings(&["backend"]),
            public_key: Some(PUBLIC_KEY.into()),
        },
    ]
}

fn build(v: &Variant) -> Value {
    template(&TemplateInput {
        stack: "blog",
        target: "prod",
        aws: &v.aws,
        domains: &v.domains,
        repositories: &v.repositories,
        public_key: v.public_key.clone(),
    })
    .unwrap_or_else(|e| panic!("{}: {e}", v.name))
}

fn all() -> Vec<(&'static str, Value)> {
    variants().iter().map(|v| (v.name, build(v))).collect()
}

fn resources(t: &Value) -> impl Iterator<Item = (&String, &Value)> {
    t["Resources"].as_object().expect("Resources").iter()
}

fn of_type<'a>(t: &'a Value, ty: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    resources(t).filter(move |(_, r)| r["Type"] == ty)
}

/// A string or a list of strings.
fn list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

/// Every statement of every policy document (identity and bucket policies), `Fn::If` unwrapped.
fn statements(t: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (id, r) in resources(t) {
        let mut docs = Vec::new();
        if let Some(p) = r["Properties"]["Policies"].as_array() {
            docs.extend(p.iter().map(|p| &p["PolicyDocument"]));
        }
        if r["Properties"].get("PolicyDocument").is_some() {
            docs.push(&r["Properties"]["PolicyDocument"]);
        }
        for d in docs {
            for s in d["Statement"].as_array().expect("Statement list") {
                let s = match s.get("Fn::If") {
                    Some(branches) => branches[1].clone(),
                    None => s.clone(),
                };
                out.push((id.clone(), s));
            }
        }
    }
    out
}

#[test]
fn snapshots() {
    for (name, t) in all() {
        insta::assert_json_snapshot!(name, t);
    }
}

#[test]
fn no_wildcard_actions_and_resource_star_only_where_aws_requires_it() {
    for (name, t) in all() {
        let sts = statements(&t);
        assert!(sts.len() >= 8, "{name}: {} statements", sts.len());
        for (id, s) in sts {
            let actions = list(&s["Action"]);
            let star_resource = list(&s["Resource"]).iter().any(|r| *r == "*");
            match s["Effect"].as_str() {
                Some("Allow") => {
                    for a in &actions {
                        assert!(!a.as_str().unwrap().contains('*'), "{name}/{id}: wildcard action {a}");
                        if star_resource {
                            assert!(
                                RESOURCE_STAR_ACTIONS.contains(&a.as_str().unwrap()),
                                "{name}/{id}: {a} on Resource \"*\""
                            );
                        }
                    }
                }
                // The one wildcard: a Deny of everything without TLS (grants nothing).
                Some("Deny") => {
                    assert_eq!(
                        s["Condition"],
                        serde_json::json!({"Bool": {"aws:SecureTransport": "false"}}),
                        "{name}/{id}"
                    );
                    assert!(!star_resource, "{name}/{id}");
                }
                other => panic!("{name}/{id}: effect {other:?}"),
            }
        }
    }
}

#[test]
fn instances_require_imdsv2_and_encrypted_volumes() {
    for (name, t) in all() {
        let lts: Vec<_> = of_type(&t, "AWS::EC2::LaunchTemplate").collect();
        assert_eq!(lts.len(), if name.starts_with("cluster") { 2 } else { 1 }, "{name}");
        for (id, lt) in lts {
            let d = &lt["Properties"]["LaunchTemplateData"];
            assert_eq!(d["MetadataOptions"]["HttpTokens"], "required", "{name}/{id}");
            assert_eq!(d["MetadataOptions"]["HttpPutResponseHopLimit"], 1, "{name}/{id}");
            let bdm = d["BlockDeviceMappings"].as_array().expect("block devices");
            assert!(!bdm.is_empty());
            for b in bdm {
                assert_eq!(b["Ebs"]["Encrypted"], true, "{name}/{id}");
                assert_eq!(b["Ebs"]["VolumeType"], "gp3", "{name}/{id}");
            }
        }
        // Nothing else makes instances or volumes outside a launch template.
        for (id, r) in resources(&t) {
            let ty = r["Type"].as_str().unwrap();
            assert_ne!(ty, "AWS::EC2::Volume", "{name}/{id}");
            if ty == "AWS::EC2::Instance" {
                let p = r["Properties"].as_object().unwrap();
                assert!(p.contains_key("LaunchTemplate") && !p.contains_key("BlockDeviceMappings"), "{name}/{id}");
            }
        }
    }
}

#[test]
fn buckets_are_encrypted_private_and_tls_only() {
    for (name, t) in all() {
        let buckets: Vec<_> = of_type(&t, "AWS::S3::Bucket").map(|(id, b)| (id.clone(), b.clone())).collect();
        assert_eq!(buckets.len(), 3, "{name}");
        for (id, b) in &buckets {
            let p = &b["Properties"];
            let sse = &p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"];
            assert!(sse["SSEAlgorithm"].is_string(), "{name}/{id}: not encrypted");
            for k in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
                assert_eq!(p["PublicAccessBlockConfiguration"][k], true, "{name}/{id}: {k}");
            }
            let policy = of_type(&t, "AWS::S3::BucketPolicy")
                .find(|(_, bp)| bp["Properties"]["Bucket"] == serde_json::json!({"Ref": id}))
                .unwrap_or_else(|| panic!("{name}/{id}: no bucket policy"));
            assert_eq!(policy.1["Properties"]["PolicyDocument"]["Statement"][0]["Effect"], "Deny");
        }
        for data in ["StaticBucket", "MediaBucket"] {
            let b = &t["Resources"][data];
            assert_eq!(
                (b["DeletionPolicy"].as_str(), b["UpdateReplacePolicy"].as_str()),
                (Some("Retain"), Some("Retain"))
            );
        }
        assert_eq!(t["Resources"]["MediaBucket"]["Properties"]["VersioningConfiguration"]["Status"], "Enabled");
    }
}

/// Types that take `Tags` (key/value list); each must carry the berth tags.
const TAGGABLE: &[&str] = &[
    "AWS::EC2::VPC",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::RouteTable",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::Instance",
    "AWS::EC2::EIP",
    "AWS::EC2::KeyPair",
    "AWS::IAM::Role",
    "AWS::S3::Bucket",
    "AWS::ECR::Repository",
    "AWS::AutoScaling::AutoScalingGroup",
];

#[test]
fn every_taggable_resource_names_stack_and_target() {
    for (name, t) in all() {
        for (id, r) in resources(&t) {
            let ty = r["Type"].as_str().unwrap();
            let tags = if ty == "AWS::EC2::LaunchTemplate" {
                &r["Properties"]["TagSpecifications"][0]["Tags"]
            } else if TAGGABLE.contains(&ty) {
                &r["Properties"]["Tags"]
            } else {
                continue;
            };
            let get = |k: &str| tags.as_array().and_then(|a| a.iter().find(|t| t["Key"] == k)).map(|t| &t["Value"]);
            assert_eq!(get("io.berth.stack"), Some(&Value::from("blog")), "{name}/{id}");
            assert_eq!(get("io.berth.target"), Some(&Value::from("prod")), "{name}/{id}");
            assert!(get("Name").is_some_and(|n| n.as_str().unwrap().starts_with("berth-blog-prod-")), "{name}/{id}");
        }
    }
}

/// Strings that would be secrets if they ever showed up in UserData or Outputs.
fn looks_secret(s: &str) -> Option<&'static str> {
    let lower = s.to_ascii_lowercase();
    for (needle, what) in [
        ("swmtkn-", "swarm join token"),
        ("private key", "private key"),
        ("aws_secret_access_key", "AWS secret key"),
        ("--token", "token flag"),
        ("password", "password"),
        ("secret=", "secret assignment"),
    ] {
        if lower.contains(needle) {
            return Some(what);
        }
    }
    let bytes = s.as_bytes();
    if bytes
        .windows(20)
        .any(|w| w.starts_with(b"AKIA") && w[4..].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
    {
        return Some("AWS access key ID");
    }
    // Long random-looking runs (keys, tokens): 32+ characters of base64 with digits and both cases.
    for word in s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')) {
        if word.len() >= 32
            && word.bytes().any(|b| b.is_ascii_digit())
            && word.bytes().any(|b| b.is_ascii_uppercase())
            && word.bytes().any(|b| b.is_ascii_lowercase())
        {
            return Some("long random-looking string");
        }
    }
    None
}

fn all_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| all_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| all_strings(x, out)),
        _ => {}
    }
}

#[test]
fn no_secrets_in_user_data_or_outputs() {
    assert_eq!(looks_secret("SWMTKN-1-abc"), Some("swarm join token"));
    assert_eq!(looks_secret("AKIAIOSFODNN7EXAMPLE"), Some("AWS access key ID"));
    assert_eq!(
        looks_secret("x AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTemplateTests y"),
        Some("long random-looking string")
    );
    for (name, t) in all() {
        let mut found = Vec::new();
        for (_, lt) in of_type(&t, "AWS::EC2::LaunchTemplate") {
            all_strings(&lt["Properties"]["LaunchTemplateData"]["UserData"], &mut found);
        }
        assert!(!found.is_empty(), "{name}: no UserData");
        all_strings(&t["Outputs"], &mut found);
        for s in found {
            assert_eq!(looks_secret(s), None, "{name}: {s}");
        }
    }
}

fn user_data(t: &Value, lt: &str) -> String {
    let mut s = Vec::new();
    all_strings(&t["Resources"][lt]["Properties"]["LaunchTemplateData"]["UserData"], &mut s);
    s.join("\n")
}

#[test]
fn user_data_follows_the_contract() {
    let ts: std::collections::BTreeMap<_, _> = all().into_iter().collect();
    let single = user_data(&ts["single_full"], "LaunchTemplate");
    assert!(single.contains("apt-get install -y -q docker.io awscli"), "{single}");
    assert!(single.contains("s3://${DiscoveryBucket}/agent/berth"), "{single}");
    assert!(single.contains(
        "ExecStart=/usr/local/bin/berth agent run --bucket ${DiscoveryBucket} --role manager --region ${AWS::Region} --cfn-stack ${AWS::StackName}\n"
    ));
    assert!(single.contains("Restart=always"));
    assert!(!single.contains("AgentVersion"), "single mode: a new agent must not replace the host");
    // Single mode: no auto-scaling or Route53 rights (CloudFormation keeps its records).
    for (name, t) in &ts {
        let actions: Vec<String> =
            statements(t).iter().flat_map(|(_, s)| list(&s["Action"]).into_iter().map(|a| a.to_string())).collect();
        let cluster_only = actions.iter().filter(|a| a.contains("autoscaling:") || a.contains("route53:")).count();
        match *name {
            "cluster_full" => assert_eq!(cluster_only, 7, "{name}: {actions:?}"),
            "cluster_bare" => assert_eq!(cluster_only, 5, "{name}: {actions:?}"),
            _ => assert_eq!(cluster_only, 0, "{name}: {actions:?}"),
        }
    }
    let manager = user_data(&ts["cluster_full"], "ManagerLaunchTemplate");
    assert!(manager.contains("--role manager --region ${AWS::Region} --cfn-stack ${AWS::StackName} --group ${AWS::StackName}-managers${DnsFlags}"), "{manager}");
    assert!(manager.contains(" --hosted-zone-id ${HostedZoneId} --domains example.com,api.example.com"), "{manager}");
    assert!(manager.contains("grep -q \"^${AgentVersion}\""), "{manager}");
    let worker = user_data(&ts["cluster_full"], "WorkerLaunchTemplate");
    assert!(
        worker.contains(
            "--role worker --region ${AWS::Region} --cfn-stack ${AWS::StackName} --group ${AWS::StackName}-workers\n"
        ),
        "{worker}"
    );
    assert!(!worker.contains("hosted-zone"), "{worker}");
}

#[test]
fn cluster_groups_keep_quorum_and_drain_before_termination() {
    let ts: std::collections::BTreeMap<_, _> = all().into_iter().collect();
    let t = &ts["cluster_full"];
    let m = &t["Resources"]["ManagerGroup"];
    let p = &m["Properties"];
    assert_eq!(
        (p["MinSize"].as_str(), p["MaxSize"].as_str(), p["DesiredCapacity"].as_str()),
        (Some("5"), Some("5"), Some("5"))
    );
    assert_eq!(p["VPCZoneIdentifier"].as_array().unwrap().len(), 3);
    assert_eq!(m["UpdatePolicy"]["AutoScalingRollingUpdate"]["MaxBatchSize"], 1);
    assert_eq!(m["UpdatePolicy"]["AutoScalingRollingUpdate"]["MinInstancesInService"], 4);
    let w = &t["Resources"]["WorkerGroup"]["Properties"];
    assert_eq!(
        (w["MinSize"].as_str(), w["MaxSize"].as_str(), w["DesiredCapacity"].as_str()),
        (Some("2"), Some("6"), Some("2"))
    );
    for g in ["ManagerGroup", "WorkerGroup"] {
        let hook = &t["Resources"][g]["Properties"]["LifecycleHookSpecificationList"][0];
        assert_eq!(hook["LifecycleTransition"], "autoscaling:EC2_INSTANCE_TERMINATING");
        assert_eq!(hook["DefaultResult"], "CONTINUE");
        assert_eq!(hook["HeartbeatTimeout"], 600);
    }
    let swarm: Vec<_> = of_type(t, "AWS::EC2::SecurityGroupIngress")
        .map(|(_, r)| {
            (r["Properties"]["IpProtocol"].as_str().unwrap().to_string(), r["Properties"]["FromPort"].clone())
        })
        .collect();
    for want in [("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789)] {
        assert!(swarm.contains(&(want.0.to_string(), Value::from(want.1))), "{want:?} in {swarm:?}");
    }
    // Single mode: SSH only from the operator CIDR, closed without one.
    let ssh = |t: &Value| {
        t["Resources"]["SecurityGroup"]["Properties"]["SecurityGroupIngress"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["FromPort"] == 22)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(ssh(&ts["single_bare"]).is_empty());
    assert_eq!(ssh(&ts["single_full"])[0]["CidrIp"], "203.0.113.0/24");
    assert_eq!(ssh(&ts["cluster_full"])[0]["CidrIpv6"], "2001:db8::/48");
}

#[test]
fn ami_is_pinned_or_resolved_through_ssm() {
    for (name, t) in all() {
        let p = &t["Parameters"]["AmiId"];
        if name == "cluster_full" {
            // Pinned: a plain image ID, no SSM lookup (what moto can execute, and reproducible instances).
            assert_eq!(
                (p["Type"].as_str(), p["Default"].as_str()),
                (Some("AWS::EC2::Image::Id"), Some("ami-0123456789abcdef0"))
            );
        } else {
            assert_eq!(p["Type"], "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", "{name}");
            assert_eq!(p["Default"], berth_cfn::DEFAULT_AMI_PARAMETER, "{name}");
        }
        for (id, lt) in of_type(&t, "AWS::EC2::LaunchTemplate") {
            assert_eq!(
                lt["Properties"]["LaunchTemplateData"]["ImageId"],
                serde_json::json!({"Ref": "AmiId"}),
                "{name} {id}"
            );
        }
    }
}

#[test]
fn templates_fit_cloudformations_inline_limit() {
    for (name, t) in all() {
        let len = serde_json::to_string(&t).unwrap().len();
        assert!(len < 51_200, "{name}: {len} bytes");
    }
}

#[test]
fn inputs_the_spec_cannot_check_are_refused() {
    let v = &variants()[1];
    let input = |key: Option<&str>, domains: &[&str], repos: &[&str]| {
        let domains = strings(domains);
        let repos = strings(repos);
        template(&TemplateInput {
            stack: "blog",
            target: "prod",
            aws: &v.aws,
            domains: &domains,
            repositories: &repos,
            public_key: key.map(str::to_string),
        })
    };
    assert!(matches!(input(None, &[], &[]), Err(CfnError::MissingPublicKey { .. })));
    let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    assert!(matches!(input(Some(private), &[], &[]), Err(CfnError::PrivateKey { .. })));
    assert!(matches!(input(Some("hello"), &[], &[]), Err(CfnError::BadPublicKey { .. })));
    assert_eq!(
        input(Some(PUBLIC_KEY), &["blog.example.org"], &[]),
        Err(CfnError::DomainOutsideZone { domain: "blog.example.org".into(), zone: "example.com".into() })
    );
    assert!(matches!(input(Some(PUBLIC_KEY), &["example.com"], &["web__x"]), Err(CfnError::BadRepository { .. })));
    // The key's comment (user@host) stays on this machine.
    let ok = input(Some(PUBLIC_KEY), &["example.com"], &[]).unwrap();
    let material = ok["Resources"]["KeyPair"]["Properties"]["PublicKeyMaterial"].as_str().unwrap();
    assert!(material.starts_with("ssh-ed25519 AAAA") && !material.contains("ops@laptop"));
}

/// Warnings of cfn-lint that are accepted (rule, a part of its message), each explained in
/// docs/aws.md ("Templates").
const ACCEPTED_WARNINGS: &[(&str, &str)] = &[
    // The ESP rule's ports (-1): AWS ignores them; moto cannot create the rule without them.
    ("W3687", "are ignored when using 'IpProtocol' value '50'"),
];

#[test]
fn cfn_lint_finds_no_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, t) in all() {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&t).unwrap()).unwrap();
        files.push(path);
    }
    let bin = std::env::var("CFN_LINT").unwrap_or_else(|_| "cfn-lint".into());
    let out = Command::new(&bin)
        .args(["-f", "json", "--regions", "eu-west-1", "us-east-1", "--"])
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{bin}` ({e}): install it with scripts/host-setup.sh (pip install cfn-lint)")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let matches: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("cfn-lint output is not JSON ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    let mut bad = Vec::new();
    for m in &matches {
        let level = m["Level"].as_str().unwrap_or("");
        let rule = m["Rule"]["Id"].as_str().unwrap_or("");
        let line = format!(
            "{level} {rule} {}:{} {}",
            m["Filename"].as_str().unwrap_or("").rsplit('/').next().unwrap_or(""),
            m["Location"]["Start"]["LineNumber"],
            m["Message"].as_str().unwrap_or("")
        );
        eprintln!("{line}");
        let message = m["Message"].as_str().unwrap_or("");
        let accepted = ACCEPTED_WARNINGS.iter().any(|(r, part)| *r == rule && message.contains(part));
        if level == "Error" || (level == "Warning" && !accepted) {
            bad.push(line);
        }
    }
    assert!(bad.is_empty(), "cfn-lint:\n{}", bad.join("\n"));
}
