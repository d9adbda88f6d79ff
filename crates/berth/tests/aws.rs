//! `berth cluster plan | up | down | status` on AWS targets, against a real moto server
//! (`moto_server`, PyPI `moto[server]`) with fake credentials: change sets, stack create, update
//! and delete, the agent binary upload, data buckets, `--template-only`, and the errors an
//! operator meets first (no credentials, too few zones, no hosted zone, a failing resource).
//!
//! One test function: the checks below read moto through the SDK in this process, whose endpoint
//! and credentials come from the environment set once at the start.

#[path = "../../aws/tests/common/moto.rs"]
mod moto;
use moto::Moto;

use berth_aws::sdk::SdkConfig;
use std::path::Path;
use std::process::Command;

#[path = "common/run.rs"]
mod run;
use run::Run;

/// `berth ARGS` in `dir` with the environment of this process (moto's endpoint, fake keys) but
/// the variables `without`; echoed.
fn berth(dir: &Path, args: &[&str], without: &[&str]) -> Run {
    run::berth_env(dir, args, &[], without)
}

const COMPOSE: &str = r#"
services:
  web:
    image: awst/web:latest
    build: .
x-berth:
  name: awst
  domains: [www.awst-zone.example]
  targets:
    one:
      aws: true
      region: eu-west-1
      mode: single
      instance_type: INSTANCE_ONE
      ami: AMI_ID
    many:
      aws: true
      region: eu-west-1
      mode: cluster
      workers: 1
      workers_max: 2
      instance_type: INSTANCE_MANY
      ami: AMI_ID
    west:
      aws: true
      region: us-west-1
      mode: cluster
    dns:
      aws: true
      region: eu-west-1
      mode: single
      hosted_zone: awst-zone.example
"#;

fn write_compose(dir: &Path, ami: &str, one: &str, many: &str) {
    let text = COMPOSE.replace("INSTANCE_ONE", one).replace("INSTANCE_MANY", many).replace("AMI_ID", ami);
    std::fs::write(dir.join("compose.yaml"), text).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
}

/// SHA-256 of a file, by coreutils' `sha256sum` (independent of berth's own hashing).
fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

fn stack_status(dir: &Path, target: &str) -> Option<serde_json::Value> {
    let r = berth(dir, &["cluster", "status", "--target", target, "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    (!v.is_null()).then_some(v)
}

fn plan_rows(dir: &Path, target: &str) -> Vec<(String, String, String)> {
    let r = berth(dir, &["cluster", "plan", "--target", target, "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["logical_id"].as_str().unwrap().to_owned(),
                r["resource_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// One full life of a target: plan, up, no-change plan, a changed key planned and applied,
/// down keeping data, up again, down deleting data.
async fn lifecycle(dir: &Path, conf: &SdkConfig, target: &str, compute: &str, berth_sha: &str, ami: &str) {
    let cfn_stack = berth_cfn::stack_name("awst", target);

    // Plan of a new stack: every resource added, nothing left behind.
    let rows = plan_rows(dir, target);
    assert!(rows.iter().all(|(a, _, _)| a == "Add"), "{rows:?}");
    for ty in ["AWS::S3::Bucket", "AWS::ECR::Repository", compute] {
        assert!(rows.iter().any(|(_, _, t)| t == ty), "{ty} in {rows:?}");
    }
    assert!(stack_status(dir, target).is_none(), "plan made no stack");
    let table = berth(dir, &["cluster", "plan", "--target", target], &[]);
    assert_eq!(table.code, 0);
    assert!(table.stdout.contains("ACTION") && table.stdout.contains("DiscoveryBucket"), "{}", table.stdout);
    assert!(table.stderr.contains(&format!("stack {cfn_stack} (new):")), "{}", table.stderr);

    // Up without --yes and without a terminal: refused, nothing made.
    let r = berth(dir, &["cluster", "up", "--target", target], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(stack_status(dir, target).is_none());

    // Up: the stack made, the agent binary in its discovery bucket with its SHA-256.
    let info = up(dir, target);
    assert_eq!(info["status"], "CREATE_COMPLETE", "{info}");
    let discovery = info["outputs"]["DiscoveryBucket"].as_str().expect("DiscoveryBucket output").to_owned();
    let (static_b, media_b) = (output(&info, "StaticBucket"), output(&info, "MediaBucket"));
    assert_agent(conf, &discovery, berth_sha).await;
    // Status: the same stack, its parameters (the pinned AMI is the template's default).
    let status = stack_status(dir, target).expect("a stack after up");
    assert_eq!((&status["status"], &status["outputs"]), (&info["status"], &info["outputs"]));
    assert!(status["parameters"]["AgentVersion"].as_str().is_some_and(|v| berth_sha.starts_with(v)), "{status}");
    let text = berth(dir, &["cluster", "status", "--target", target], &[]);
    assert!(text.stdout.starts_with(&format!("{cfn_stack} CREATE_COMPLETE")), "{}", text.stdout);

    // Nothing changed: an empty plan, and `up` says so.
    assert_eq!(plan_rows(dir, target), vec![]);
    let r = berth(dir, &["cluster", "up", "--target", target, "--yes"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("is up to date: no changes"), "{}", r.stderr);

    // A changed key (the instance type): planned as a Modify of the launch template(s), applied.
    write_compose(dir, ami, "t3.medium", "t3.medium");
    let rows = plan_rows(dir, target);
    assert!(
        !rows.is_empty() && rows.iter().all(|(a, _, t)| a == "Modify" && t == "AWS::EC2::LaunchTemplate"),
        "{rows:?}"
    );
    let info = up(dir, target);
    assert_eq!(info["status"], "UPDATE_COMPLETE", "{info}");
    assert_eq!(plan_rows(dir, target), vec![], "applied: nothing left to change");
    write_compose(dir, ami, "t3.small", "t3.small");

    // Down: the discovery bucket emptied and gone, the data buckets kept.
    let r = down(dir, conf, target, false).await;
    assert_eq!(r["kept"], serde_json::json!([static_b, media_b]), "{r}");
    assert!(stack_status(dir, target).is_none(), "no stack after down");
    assert!(!bucket_exists(conf, &discovery).await);
    assert!(bucket_exists(conf, &static_b).await && bucket_exists(conf, &media_b).await);

    // Up again (a new discovery bucket, the binary uploaded to it), then down with the data.
    let info = up(dir, target);
    assert_eq!(info["status"], "CREATE_COMPLETE", "{info}");
    let discovery = output(&info, "DiscoveryBucket");
    assert_agent(conf, &discovery, berth_sha).await;
    let (static2, media2) = (output(&info, "StaticBucket"), output(&info, "MediaBucket"));
    let r = down(dir, conf, target, true).await;
    assert_eq!(r["deleted"], serde_json::json!([static2, media2]), "{r}");
    assert!(stack_status(dir, target).is_none());
    for b in [&discovery, &static2, &media2] {
        assert!(!bucket_exists(conf, b).await, "{b} deleted");
    }
    // The first life's data buckets are still there (a down never touches other stacks' buckets).
    assert!(bucket_exists(conf, &static_b).await && bucket_exists(conf, &media_b).await);
}

fn output(info: &serde_json::Value, key: &str) -> String {
    info["outputs"][key].as_str().unwrap_or_else(|| panic!("output {key} in {info}")).to_owned()
}

/// `cluster up --yes --json`: the stack's info.
fn up(dir: &Path, target: &str) -> serde_json::Value {
    let r = berth(dir, &["cluster", "up", "--target", target, "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// `cluster down --yes --json [--delete-data]`: what it did. moto's CloudFormation never deletes
/// an `AWS::EC2::VPCGatewayAttachment`, `SubnetRouteTableAssociation` or `RouteTable` (their
/// models have no delete), so the VPC could never go (DependencyViolation): the test undoes
/// those three in moto first, which AWS does itself (docs/aws.md, "Tested without AWS").
async fn down(dir: &Path, conf: &SdkConfig, target: &str, delete_data: bool) -> serde_json::Value {
    let cfn = berth_aws::sdk::cloudformation::Client::new(conf);
    let res = cfn.describe_stack_resources().stack_name(berth_cfn::stack_name("awst", target)).send().await.unwrap();
    let id = |logical: &str| {
        res.stack_resources()
            .iter()
            .find(|r| r.logical_resource_id() == Some(logical))
            .and_then(|r| r.physical_resource_id())
            .unwrap_or_else(|| panic!("{logical} in the stack"))
            .to_owned()
    };
    ec2_query(&format!("Action=DetachInternetGateway&InternetGatewayId={}&VpcId={}", id("InternetGateway"), id("Vpc")));
    let table = id("RouteTable");
    let xml = ec2_query(&format!("Action=DescribeRouteTables&RouteTableId.1={table}"));
    for a in xml_values(&xml, "routeTableAssociationId") {
        ec2_query(&format!("Action=DisassociateRouteTable&AssociationId={a}"));
    }
    ec2_query(&format!("Action=DeleteRouteTable&RouteTableId={table}"));
    let mut args = vec!["cluster", "down", "--target", target, "--yes", "--json"];
    if delete_data {
        args.push("--delete-data");
    }
    let r = berth(dir, &args, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["existed"], true, "{v}");
    v
}

async fn bucket_exists(conf: &SdkConfig, bucket: &str) -> bool {
    berth_aws::config::s3(conf).head_bucket().bucket(bucket).send().await.is_ok()
}

async fn assert_agent(conf: &SdkConfig, bucket: &str, sha: &str) {
    let obj = berth_aws::config::s3(conf).head_object().bucket(bucket).key("agent/berth").send().await.unwrap();
    assert_eq!(obj.metadata().and_then(|m| m.get("sha256")).map(String::as_str), Some(sha), "{obj:?}");
}

/// One EC2 Query call to moto (eu-west-1), answered XML. The test has no EC2 SDK crate (nor does
/// berth); moto checks no signature, only the region in the credential scope.
fn ec2_query(query: &str) -> String {
    use std::io::{Read, Write};
    let url = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET /?{query}&Version=2016-11-15 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"), "{query}: {out}");
    out
}

/// The text of every `<tag>` element.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    xml.split(&open).skip(1).filter_map(|rest| rest.split_once('<').map(|(v, _)| v.to_owned())).collect()
}

/// An x86_64 Linux AMI that moto knows (its DescribeImages), for the targets' `ami`.
fn moto_ami() -> String {
    let xml = ec2_query(
        "Action=DescribeImages&Filter.1.Name=name&Filter.1.Value.1=ubuntu*&Filter.2.Name=architecture&Filter.2.Value.1=x86_64",
    );
    let id = xml_values(&xml, "imageId").into_iter().next().expect("an ubuntu image in moto");
    assert!(id.starts_with("ami-"), "{id}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_targets_against_moto() {
    let moto = Moto::start();
    let url = moto.url.clone();
    let home = tempfile::tempdir().unwrap();
    // SAFETY: set before anything else in this one-test binary reads the environment.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", &url);
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", home.path().join("config"));
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", home.path().join("credentials"));
        std::env::remove_var("AWS_PROFILE");
        std::env::remove_var("BERTH_TARGET");
        std::env::remove_var("BERTH_AWS_AMI_PARAMETER");
    }
    let dir = tempfile::tempdir().unwrap();
    // The targets pin an AMI moto has: with the Debian SSM default, moto cannot execute the
    // change set (it resolves the reserved `/aws/service/debian/...` name it does not have).
    let ami = moto_ami();
    write_compose(dir.path(), &ami, "t3.small", "t3.small");
    let conf = berth_aws::config::load("eu-west-1", None).await.unwrap();
    let berth_sha = sha256_hex(Path::new(env!("CARGO_BIN_EXE_berth")));

    // --template-only: exactly the JSON berth-cfn generates, without any AWS call.
    for (target, mode) in [("one", "single"), ("many", "cluster")] {
        let file = dir.path().join(format!("{target}.json"));
        let r = berth(
            dir.path(),
            &["cluster", "up", "--target", target, "--template-only", file.to_str().unwrap()],
            &["AWS_ENDPOINT_URL"],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(written["Resources"].as_object().is_some_and(|r| !r.is_empty()), "{mode}: resources");
        let stdout = berth(dir.path(), &["cluster", "up", "--target", target, "--template-only", "-"], &[]);
        assert_eq!(stdout.code, 0);
        let again: serde_json::Value = serde_json::from_str(&stdout.stdout).unwrap();
        assert_eq!(again, written, "{mode}: same template on stdout and in the file");
        assert_eq!(written, expected_template(dir.path(), target), "{mode}: the template berth-cfn generates");
    }

    lifecycle(dir.path(), &conf, "one", "AWS::EC2::Instance", &berth_sha, &ami).await;
    lifecycle(dir.path(), &conf, "many", "AWS::AutoScaling::AutoScalingGroup", &berth_sha, &ami).await;

    // Errors, each with its hint.
    // No credentials anywhere.
    let r = berth(dir.path(), &["cluster", "plan", "--target", "one"], &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no AWS credentials found"), "{}", r.stderr);
    assert!(r.stderr.contains("hint:") && r.stderr.contains("AWS_PROFILE"), "{}", r.stderr);
    // A region with two zones for a cluster.
    let r = berth(dir.path(), &["cluster", "plan", "--target", "west"], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("region `us-west-1` has 2 availability zone(s) (us-west-1a, us-west-1b)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
    // A hosted zone that does not exist; then one that does (its ID becomes the parameter).
    let r = berth(dir.path(), &["cluster", "plan", "--target", "dns"], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no Route53 hosted zone named `awst-zone.example`"), "{}", r.stderr);
    let r53 = berth_aws::sdk::route53::Client::new(&conf);
    let zone = r53.create_hosted_zone().name("awst-zone.example").caller_reference("awst").send().await.unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_owned();
    let r = berth(dir.path(), &["cluster", "plan", "--target", "dns", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(plan["parameters"]["HostedZoneId"], zone_id.as_str());
    assert!(plan["rows"].as_array().unwrap().iter().any(|r| r["resource_type"] == "AWS::Route53::RecordSet"), "{plan}");
}

/// The template berth-cfn makes for `target` of the compose file in `dir`.
fn expected_template(dir: &Path, target: &str) -> serde_json::Value {
    let opts = berth_spec::load::LoadOptions { files: vec![dir.join("compose.yaml")], ..Default::default() };
    let loaded = berth_spec::load::load(&opts).map_err(|_| "load").unwrap();
    let xb = berth_spec::xberth::XBerth::from_json(loaded.stack.extras.get("x-berth").unwrap());
    let Some(berth_spec::xberth::TargetSpec::Aws(aws)) = xb.targets.get(target) else { panic!("aws target") };
    berth_cfn::template(&berth_cfn::TemplateInput {
        stack: "awst",
        target,
        aws,
        domains: &xb.domains,
        repositories: &["web".to_owned()],
        public_key: None,
    })
    .unwrap()
}
