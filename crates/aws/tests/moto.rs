//! berth-aws against a real moto server (`moto_server`, PyPI `moto[server]`): config, preflight,
//! change sets, stack create/update/delete, the agent upload, data buckets kept or deleted.
//!
//! One test function: the SDK reads its endpoint and credentials from the process environment,
//! which is set once here. The CLI's tests (crates/berth/tests/aws.rs) run berth as a process.

#[path = "common/moto.rs"]
mod moto;
use moto::Moto;

use berth_aws::AwsError;
use berth_aws::stack::{AgentBinary, PlanRequest, Stacks};
use std::collections::BTreeMap;

/// A small template with the contract's bucket outputs: the discovery bucket, two retained data
/// buckets and a tag on the discovery bucket that the update changes.
fn template(tag: &str) -> String {
    serde_json::json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"AgentVersion": {"Type": "String"}, "HostedZoneId": {"Type": "String", "Default": ""}},
        "Resources": {
            "DiscoveryBucket": {"Type": "AWS::S3::Bucket", "Properties": {"Tags": [{"Key": "t", "Value": tag}]}},
            "StaticBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"},
            "MediaBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
        },
        "Outputs": {
            "DiscoveryBucket": {"Value": {"Ref": "DiscoveryBucket"}},
            "StaticBucket": {"Value": {"Ref": "StaticBucket"}},
            "MediaBucket": {"Value": {"Ref": "MediaBucket"}}
        }
    })
    .to_string()
}

fn sink() -> impl FnMut(String) + Send {
    |line: String| eprintln!("  {line}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_end_to_end() {
    let moto = Moto::start();
    let url = moto.url.clone();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    std::fs::write(&config, "[profile other]\nregion = eu-west-1\n").unwrap();
    // SAFETY: set before any other thread of this test binary reads the environment.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", &url);
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", &config);
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", home.path().join("credentials"));
        std::env::remove_var("AWS_PROFILE");
    }

    // Config and identity: moto's account.
    let conf = berth_aws::config::load("eu-west-1", None).await.unwrap();
    let account = berth_aws::config::caller_identity(&conf).await.unwrap();

    // ECR login: the account's registry and a user:password token (moto's is a fixed fake).
    let login = berth_aws::ecr::login(&conf).await.unwrap();
    assert!(login.registry.starts_with(&format!("{account}.dkr.ecr.eu-west-1.")), "{login:?}");
    assert!(!login.username.is_empty() && !login.password.is_empty(), "{login:?}");
    assert_eq!(account.len(), 12, "{account}");
    match berth_aws::config::load("eu-west-1", Some("nosuch")).await {
        Err(AwsError::UnknownProfile { profile, known }) => {
            assert_eq!(profile, "nosuch");
            assert!(known.contains("other"), "{known}");
        }
        other => panic!("expected UnknownProfile, got {other:?}"),
    }

    // Zones: eu-west-1 has three, us-west-1 two.
    let zones = berth_aws::preflight::require_zones(&conf, 3).await.unwrap();
    assert_eq!(zones, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
    let west = berth_aws::config::load("us-west-1", None).await.unwrap();
    match berth_aws::preflight::require_zones(&west, 3).await {
        Err(e @ AwsError::TooFewZones { .. }) => {
            assert!(e.to_string().contains("us-west-1a, us-west-1b"), "{e}");
            assert!(e.hint().is_some());
        }
        other => panic!("expected TooFewZones, got {other:?}"),
    }

    // Hosted zones: absent, then present.
    match berth_aws::preflight::hosted_zone_id(&conf, "awst-example.com").await {
        Err(AwsError::NoHostedZone { zone, .. }) => assert_eq!(zone, "awst-example.com"),
        other => panic!("expected NoHostedZone, got {other:?}"),
    }
    let r53 = aws_sdk_route53::Client::new(&conf);
    let made = r53.create_hosted_zone().name("awst-example.com").caller_reference("awst-1").send().await.unwrap();
    let want = made.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_owned();
    assert_eq!(berth_aws::preflight::hosted_zone_id(&conf, "awst-example.com.").await.unwrap(), want);

    // Plan a new stack: Add rows; discarding leaves no stack behind.
    let stacks = Stacks::new(&conf);
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("berth");
    std::fs::write(&bin, b"#!/bin/sh\necho agent v1\n").unwrap();
    let agent = AgentBinary::from_path(&bin).unwrap();
    let mut req = PlanRequest {
        stack: "awst-lib".into(),
        template: template("a"),
        parameters: BTreeMap::from([("AgentVersion".into(), agent.version().into())]),
        tags: BTreeMap::from([("io.berth.stack".into(), "lib".into())]),
    };
    let plan = stacks.plan(&req).await.unwrap();
    assert_eq!(plan.change_type, "CREATE");
    let mut rows: Vec<_> = plan.rows.iter().map(|r| (r.action.as_str(), r.logical_id.as_str())).collect();
    rows.sort();
    assert_eq!(rows, [("Add", "DiscoveryBucket"), ("Add", "MediaBucket"), ("Add", "StaticBucket")]);
    stacks.discard(&plan).await.unwrap();
    assert_eq!(stacks.describe("awst-lib").await.unwrap(), None, "a discarded CREATE plan leaves no stack");

    // Up: created, outputs, the agent binary in the discovery bucket with its hash.
    let plan = stacks.plan(&req).await.unwrap();
    let info = stacks.apply(&plan, Some(&agent), &mut sink()).await.unwrap();
    assert_eq!(info.status, "CREATE_COMPLETE");
    let discovery = info.outputs["DiscoveryBucket"].clone();
    let s3 = berth_aws::config::s3(&conf);
    let obj = s3.get_object().bucket(&discovery).key("agent/berth").send().await.unwrap();
    assert_eq!(obj.metadata().and_then(|m| m.get("sha256")), Some(&agent.sha256), "{obj:?}");
    let body = obj.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"#!/bin/sh\necho agent v1\n");

    // Same input: no changes.
    let again = stacks.plan(&req).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(again.change_set, None);

    // A changed property: a Modify row, applied through the change set.
    req.template = template("b");
    let plan = stacks.plan(&req).await.unwrap();
    assert_eq!(plan.change_type, "UPDATE");
    assert!(plan.rows.iter().any(|r| r.action == "Modify" && r.logical_id == "DiscoveryBucket"), "{:?}", plan.rows);
    let info = stacks.apply(&plan, Some(&agent), &mut sink()).await.unwrap();
    assert_eq!(info.status, "UPDATE_COMPLETE");

    // Down: discovery bucket emptied and gone with the stack, data buckets kept.
    s3.put_object().bucket(&info.outputs["MediaBucket"]).key("a.jpg").body(b"x".to_vec().into()).send().await.unwrap();
    let r = stacks.down("awst-lib", false, &mut sink()).await.unwrap();
    assert!(r.existed);
    assert!(r.discovery_objects >= 1);
    assert_eq!(stacks.describe("awst-lib").await.unwrap(), None);
    assert!(s3.head_bucket().bucket(&discovery).send().await.is_err(), "discovery bucket deleted");
    for k in ["StaticBucket", "MediaBucket"] {
        s3.head_bucket().bucket(&info.outputs[k]).send().await.unwrap_or_else(|e| panic!("{k} kept: {e:?}"));
    }
    assert_eq!(r.kept.len(), 2);

    // Down with delete_data on a stack made again: the data buckets go too.
    req.template = template("c");
    let plan = stacks.plan(&req).await.unwrap();
    let info = stacks.apply(&plan, None, &mut sink()).await.unwrap();
    s3.put_object().bucket(&info.outputs["StaticBucket"]).key("x.css").body(b"x".to_vec().into()).send().await.unwrap();
    let r = stacks.down("awst-lib", true, &mut sink()).await.unwrap();
    assert_eq!(r.deleted.len(), 2);
    for k in ["StaticBucket", "MediaBucket"] {
        assert!(s3.head_bucket().bucket(&info.outputs[k]).send().await.is_err(), "{k} deleted");
    }
    assert!(!stacks.down("awst-lib", true, &mut sink()).await.unwrap().existed);

    // A resource that fails: moto creates synchronously, so the error comes from ExecuteChangeSet.
    let bad = serde_json::json!({"Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "192.168.0.0/24"}}
    }});
    let req = PlanRequest {
        stack: "awst-bad".into(),
        template: bad.to_string(),
        parameters: BTreeMap::new(),
        tags: BTreeMap::new(),
    };
    let plan = stacks.plan(&req).await.unwrap();
    match stacks.apply(&plan, None, &mut sink()).await {
        Err(e @ AwsError::ExecuteFailed { .. }) => {
            let text = e.to_string();
            assert!(text.contains("Subnet (AWS::EC2::Subnet) failed"), "{text}");
            assert!(text.contains("192.168.0.0/24"), "{text}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }

    // No credentials at all: said before anything else.
    unsafe {
        std::env::remove_var("AWS_ACCESS_KEY_ID");
        std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    }
    let conf = berth_aws::config::load("eu-west-1", None).await.unwrap();
    match berth_aws::config::caller_identity(&conf).await {
        Err(e @ AwsError::NoCredentials { .. }) => assert!(e.hint().unwrap().contains("AWS_PROFILE")),
        other => panic!("expected NoCredentials, got {other:?}"),
    }
}
