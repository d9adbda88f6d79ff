//! The agent (`berth agent run`) against a real moto server and a lab of five Docker hosts.
//!
//! moto stands in for AWS: an S3 discovery bucket, a manager group (3 instances) and a worker
//! group (2) tagged with a CloudFormation stack name, a termination lifecycle hook on each, and a
//! Route53 zone. Each lab host plays one moto instance: its agent runs on this machine with
//! `--docker` pointing at the host's engine, `--instance-id` its moto ID, and `--imds` a small
//! IMDSv2 server of this test (moto has none) that also plays the termination notice
//! (`autoscaling/target-lifecycle-state` = `Terminated`, which moto cannot produce).
//!
//! Checked, in order: the lowest-ID manager initialises and the others join through S3 (5 nodes,
//! 3 managers), `state.json` and the Route53 records name the managers, tokens never appear in
//! agent output; a worker's termination notice drains it (its task runs elsewhere), it leaves,
//! and completes the hook (moto's request recorder saw the call: moto does not implement it);
//! once its instance left the group the leader removes its node; a crashed worker stays listed
//! while its instance is in service and is removed when it leaves the group; a crashed manager
//! drops out of `state.json` and the records; a manager's termination waits while another manager
//! is down (quorum guard) and goes through once it is back. One test: the hosts are shared state.

#[path = "../../aws/tests/common/moto.rs"]
mod moto;
#[path = "common/run.rs"]
mod run;
use moto::Moto;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NET: &str = "192.168.88";
const REGION: &str = "eu-west-1";
const BUCKET: &str = "agt-discovery";
const CFN_STACK: &str = "agt-stack";
const DOMAINS: &str = "agt.example.com,www.agt.example.com";

fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh")
}

fn images_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/images/build.sh")
}

fn lab_cmd() -> Command {
    let mut c = Command::new("bash");
    c.arg(lab_script())
        .env("LAB_PREFIX", "alab")
        .env("LAB_NET", NET)
        .env("LAB_BASE", "/var/lib/alab")
        .env("LAB_RUN", "/run/alab");
    c
}

struct Lab;

impl Lab {
    fn up(n: usize) -> Lab {
        let ok = Command::new("bash").arg(images_script()).status().expect("build test images").success();
        assert!(ok, "test images");
        let out =
            lab_cmd().args(["up", &n.to_string()]).env("LAB_IMAGES", "berth-test/app:v1").output().expect("run lab.sh");
        assert!(out.status.success(), "lab up: {}", String::from_utf8_lossy(&out.stderr));
        Lab
    }
    fn run(&self, verb: &str, i: usize) {
        assert!(lab_cmd().args([verb, &i.to_string()]).status().unwrap().success(), "lab {verb} {i}");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = lab_cmd().arg("down").status();
    }
}

fn ip(i: usize) -> String {
    format!("{NET}.{}", 10 + i)
}

/// The public address the metadata service gives instance i: the lab host's own, so that
/// `berth deploy` reaches it through `state.json` like it reaches an instance's public IP.
fn public_ip(i: usize) -> String {
    ip(i)
}

/// Lab host i's SSH host public key (`type base64`), as its agent publishes it.
fn host_key(i: usize) -> String {
    let text = std::fs::read_to_string(format!("/var/lib/alab/ssh/host_n{i}.pub")).unwrap();
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn docker(i: usize, args: &[&str]) -> String {
    let out = Command::new("docker")
        .arg("-H")
        .arg(format!("unix:///run/alab/{}/docker.sock", ip(i)))
        .args(args)
        .output()
        .expect("docker");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// boto3 against the test's moto (what the agent does not do itself: create groups, hooks, zones).
trait MotoPy {
    fn py(&self, script: &str) -> String;
}

impl MotoPy for Moto {
    /// Runs a boto3 script (`c(name)` makes a client) and returns its stdout.
    fn py(&self, script: &str) -> String {
        let prelude = "import boto3, json, os, base64, urllib.request\n\
            kw = dict(endpoint_url=os.environ['EP'], region_name=os.environ['RG'], aws_access_key_id='testing', aws_secret_access_key='testing')\n\
            c = lambda n: boto3.client(n, **kw)\n";
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .env("EP", &self.url)
            .env("RG", REGION)
            .output()
            .expect("python3");
        assert!(out.status.success(), "python: {}\n{script}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A tiny IMDSv2: `PUT /latest/api/token`, then `GET /latest/meta-data/...` with the token.
#[derive(Clone)]
struct Imds {
    url: String,
    values: Arc<Mutex<HashMap<String, String>>>,
}

impl Imds {
    fn start(values: HashMap<String, String>) -> Imds {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let values = Arc::new(Mutex::new(values));
        let v = values.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut token = None;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, val)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("x-aws-ec2-metadata-token")
                    {
                        token = Some(val.trim().to_string());
                    }
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, body) = if method == "PUT" && path == "/latest/api/token" {
                    (200, "agt-imds-token".to_string())
                } else if token.as_deref() != Some("agt-imds-token") {
                    (401, String::new())
                } else {
                    match path.strip_prefix("/latest/meta-data/").and_then(|p| v.lock().unwrap().get(p).cloned()) {
                        Some(b) => (200, b),
                        None => (404, String::new()),
                    }
                };
                let mut s = stream;
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Imds { url, values }
    }

    fn set(&self, key: &str, value: &str) {
        self.values.lock().unwrap().insert(key.into(), value.into());
    }
}

/// One agent process; its output goes to a file the test reads.
struct AgentProc {
    child: Child,
    log: PathBuf,
}

impl AgentProc {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    start.elapsed()
}

/// `docker node ls` through host `via`: (hostname, role, status, availability, manager status).
fn nodes(via: usize) -> Vec<(String, String, String, String, String)> {
    let text =
        docker(via, &["node", "ls", "--format", "{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}"]);
    text.lines()
        .filter_map(|l| {
            let p: Vec<&str> = l.split('|').collect();
            (p.len() == 4).then(|| {
                let role = if p[3].is_empty() { "worker" } else { "manager" };
                (p[0].to_string(), role.to_string(), p[1].to_lowercase(), p[2].to_lowercase(), p[3].to_lowercase())
            })
        })
        .collect()
}

fn node_of(via: usize, i: usize) -> Option<(String, String, String, String, String)> {
    nodes(via).into_iter().find(|n| n.0 == format!("alab-n{i}"))
}

fn local_state(i: usize) -> String {
    docker(i, &["info", "--format", "{{.Swarm.LocalNodeState}}"])
}

#[test]
fn agents_form_the_swarm_drain_leave_tidy_and_guard_quorum() {
    if unsafe { libc_geteuid() } != 0 {
        panic!("the agent test needs root (network namespaces for the lab hosts); CI runs as root");
    }
    let t0 = Instant::now();
    let lab = Lab::up(5);
    let moto = Moto::start();
    let mut table: Vec<(String, String)> =
        vec![("lab: 5 hosts + moto".into(), format!("{:.1} s", t0.elapsed().as_secs_f64()))];

    // AWS in moto: bucket, groups (tagged with the CloudFormation stack), hooks, a zone.
    let setup = moto.py(&format!(
        r#"
c('s3').create_bucket(Bucket='{BUCKET}', CreateBucketConfiguration={{'LocationConstraint': os.environ['RG']}})
ec2 = c('ec2'); asg = c('autoscaling')
ami = ec2.describe_images()['Images'][0]['ImageId']
ec2.create_launch_template(LaunchTemplateName='agt-lt', LaunchTemplateData={{'ImageId': ami, 'InstanceType': 't3.micro'}})
for name, n in (('agt-managers', 3), ('agt-workers', 2)):
    asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchTemplate={{'LaunchTemplateName': 'agt-lt'}},
        MinSize=0, MaxSize=5, DesiredCapacity=n, AvailabilityZones=['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
        Tags=[{{'Key': 'aws:cloudformation:stack-name', 'Value': '{CFN_STACK}', 'PropagateAtLaunch': True}}])
    asg.put_lifecycle_hook(LifecycleHookName='agt-drain', AutoScalingGroupName=name,
        LifecycleTransition='autoscaling:EC2_INSTANCE_TERMINATING', HeartbeatTimeout=600, DefaultResult='CONTINUE')
zone = c('route53').create_hosted_zone(Name='agt.example.com', CallerReference='agt')['HostedZone']['Id']
groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=['agt-managers', 'agt-workers'])['AutoScalingGroups']
ids = {{g['AutoScalingGroupName']: sorted((i['InstanceId'], i['AvailabilityZone']) for i in g['Instances']) for g in groups}}
print(json.dumps({{'zone': zone.split('/')[-1], 'managers': ids['agt-managers'], 'workers': ids['agt-workers']}}))
"#
    ));
    let setup: serde_json::Value = serde_json::from_str(&setup).unwrap();
    let zone = setup["zone"].as_str().unwrap().to_string();
    // Host i plays instance i (managers sorted by ID first: host 1 has the lowest manager ID).
    let instances: Vec<(String, String)> = setup["managers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(setup["workers"].as_array().unwrap())
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(instances.len(), 5);
    let id = |i: usize| instances[i - 1].0.clone();

    let tmp = tempfile::tempdir().unwrap();
    let mut imds = Vec::new();
    let mut agents: Vec<AgentProc> = Vec::new();
    for i in 1..=5 {
        let server = Imds::start(HashMap::from([
            ("instance-id".to_string(), "i-from-imds".to_string()),
            ("local-ipv4".to_string(), ip(i)),
            ("public-ipv4".to_string(), public_ip(i)),
            ("placement/availability-zone".to_string(), instances[i - 1].1.clone()),
            ("autoscaling/target-lifecycle-state".to_string(), "InService".to_string()),
        ]));
        let (role, group) = if i <= 3 { ("manager", "agt-managers") } else { ("worker", "agt-workers") };
        let log = tmp.path().join(format!("agent-{i}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["agent", "run", "--bucket", BUCKET, "--role", role, "--region", REGION, "--cfn-stack", CFN_STACK])
            .args(["--group", group, "--hosted-zone-id", &zone, "--domains", DOMAINS])
            .args(["--instance-id", &id(i), "--imds", &server.url, "--interval", "1s", "--dns-ttl", "3s"])
            .args(["--ssh-host-keys", &format!("/var/lib/alab/ssh/host_n{i}.pub")])
            .arg("--docker")
            .arg(format!("unix:///run/alab/{}/docker.sock", ip(i)))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", &moto.url)
            .env_remove("AWS_PROFILE")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("berth agent run");
        imds.push(server);
        agents.push(AgentProc { child, log });
    }
    let dump = |agents: &[AgentProc]| {
        agents.iter().enumerate().map(|(i, a)| format!("--- agent {}:\n{}", i + 1, a.output())).collect::<String>()
    };

    // 1. The swarm forms: host 1 (lowest manager ID) initialises, the others join.
    let start = Instant::now();
    let formed = || {
        let n = nodes(1);
        n.len() == 5 && n.iter().filter(|n| n.1 == "manager").count() == 3 && n.iter().all(|n| n.2 == "ready")
    };
    let mut waited = Duration::ZERO;
    while !formed() {
        assert!(waited < Duration::from_secs(120), "swarm of 5 not formed: {:?}\n{}", nodes(1), dump(&agents));
        std::thread::sleep(Duration::from_millis(500));
        waited = start.elapsed();
    }
    table.push(("5 agents: swarm formed (1 init, 4 joins)".into(), format!("{:.1} s", waited.as_secs_f64())));
    assert!(agents[0].output().contains("initialising the swarm"), "{}", dump(&agents));
    for (i, a) in agents.iter().enumerate().skip(1) {
        assert!(!a.output().contains("initialising the swarm"), "agent {} initialised too:\n{}", i + 1, dump(&agents));
    }
    for i in 1..=5 {
        let want = if i <= 3 { "manager" } else { "worker" };
        assert_eq!(node_of(1, i).map(|n| n.1), Some(want.to_string()), "host {i}");
    }

    let state = || -> serde_json::Value {
        let s = moto.py(&format!(
            "print(c('s3').get_object(Bucket='{BUCKET}', Key='swarm/state.json')['Body'].read().decode())"
        ));
        serde_json::from_str(&s).unwrap()
    };
    let state_managers = |s: &serde_json::Value| -> Vec<String> {
        let mut v: Vec<String> =
            s["managers"].as_array().unwrap().iter().map(|m| m["private_ip"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    let records = || -> Vec<(String, Vec<String>)> {
        let s = moto.py(&format!(
            r#"
sets = c('route53').list_resource_record_sets(HostedZoneId='{zone}')['ResourceRecordSets']
print(json.dumps(sorted((s['Name'], sorted(r['Value'] for r in s['ResourceRecords'])) for s in sets if s['Type'] == 'A')))
"#
        ));
        serde_json::from_str(&s).unwrap()
    };
    let want_records = |hosts: &[usize]| -> Vec<(String, Vec<String>)> {
        let ips: Vec<String> = hosts.iter().map(|i| public_ip(*i)).collect();
        vec![("agt.example.com.".into(), ips.clone()), ("www.agt.example.com.".into(), ips)]
    };
    wait_for("state.json names the 3 managers", Duration::from_secs(30), || {
        state_managers(&state()) == vec![ip(1), ip(2), ip(3)]
    });
    let s = state();
    let m1 = s["managers"].as_array().unwrap().iter().find(|m| m["private_ip"] == ip(1)).unwrap().clone();
    assert_eq!(m1["instance_id"], id(1));
    assert_eq!(m1["public_ip"], public_ip(1));
    assert_eq!(m1["zone"], instances[0].1);
    assert_eq!(s["swarm_id"].as_str().unwrap(), docker(1, &["info", "--format", "{{.Swarm.Cluster.ID}}"]));
    wait_for("Route53 names the 3 managers", Duration::from_secs(30), || records() == want_records(&[1, 2, 3]));
    let tokens = moto.py(&format!(
        "s3 = c('s3')\nfor k in ('swarm/token-manager', 'swarm/token-worker'):\n    o = s3.get_object(Bucket='{BUCKET}', Key=k)\n    print(o.get('ServerSideEncryption'), o['Body'].read().decode())"
    ));
    assert_eq!(tokens.lines().count(), 2, "{tokens}");
    for line in tokens.lines() {
        assert!(
            line.starts_with("AES256 SWMTKN-1-"),
            "token objects are encrypted join tokens: {}",
            line.split(' ').next().unwrap()
        );
    }
    // Each manager's SSH host key, as its agent read it.
    wait_for("state.json carries the managers' SSH host keys", Duration::from_secs(30), || {
        state()["managers"].as_array().unwrap().iter().all(|m| {
            let i = (1..=3).find(|i| m["private_ip"] == ip(*i)).unwrap();
            m["ssh_host_keys"] == serde_json::json!([host_key(i)])
        })
    });

    // `berth deploy --target <aws>`: the managers from state.json, their host keys from there too.
    let start = Instant::now();
    deploy_through_state_json(&moto, tmp.path(), &dump(&agents), agents[0].child.id());
    table.push((
        "berth deploy + status --target <aws> (1 service)".into(),
        format!("{:.1} s", start.elapsed().as_secs_f64()),
    ));

    // The leader's agent sends its ECR token (moto's) to a berth service whose image is on the
    // account's registry: the fingerprint label appears (no replicas: nothing pulls), the log names
    // the service and never the token.
    let start = Instant::now();
    let ecr = moto.py(
        "d = c('ecr').get_authorization_token()['authorizationData'][0]\n\
         print(d['proxyEndpoint'].split('://')[-1] + ' ' + base64.b64decode(d['authorizationToken']).decode().split(':', 1)[1])",
    );
    let (ecr_host, ecr_password) = ecr.split_once(' ').unwrap();
    let image = format!("{ecr_host}/awsx/app:v1");
    docker(
        1,
        &[
            "service",
            "create",
            "--detach",
            "--quiet",
            "--no-resolve-image",
            "--replicas",
            "0",
            "--name",
            "awsx_ecr",
            "--label",
            "io.berth.stack=awsx",
            &image,
        ],
    );
    let label = || {
        docker(1, &["service", "inspect", "awsx_ecr", "--format", "{{index .Spec.Labels \"io.berth.registry-auth\"}}"])
    };
    wait_for("the leader's agent refreshes the ECR credentials of awsx_ecr", Duration::from_secs(30), || {
        label().len() == 16
    });
    let log = dump(&agents);
    assert!(log.contains("sending a fresh ECR token to the swarm for awsx_ecr"), "{log}");
    assert!(!log.contains(ecr_password), "an agent printed the ECR token");
    table.push((
        "leader's agent sends the ECR token to a new ECR service".into(),
        format!("{:.1} s", start.elapsed().as_secs_f64()),
    ));
    let _ = docker(1, &["service", "rm", "awsx_ecr"]);

    // Node labels name the instances.
    assert_eq!(
        docker(1, &["node", "inspect", "alab-n4", "--format", "{{index .Spec.Labels \"io.berth.instance\"}}"]),
        id(4)
    );

    // 2. A worker's termination notice: drained (its task runs elsewhere), left, hook completed.
    let out = Command::new("docker")
        .args(["-H", &format!("unix:///run/alab/{}/docker.sock", ip(1))])
        .args(["service", "create", "--detach", "--name", "agt-web", "--replicas", "5"])
        .args(["--update-delay", "0s", "berth-test/app:v1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "service create: {}", String::from_utf8_lossy(&out.stderr));
    let running_on = |host: &str| -> (usize, usize) {
        let ps = docker(
            1,
            &[
                "service",
                "ps",
                "agt-web",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}}|{{.CurrentState}}",
            ],
        );
        let running: Vec<&str> = ps.lines().filter(|l| l.contains("|Running")).collect();
        (running.len(), running.iter().filter(|l| l.starts_with(&format!("{host}|"))).count())
    };
    wait_for("agt-web: 5 running, one on alab-n5", Duration::from_secs(60), || running_on("alab-n5") == (5, 1));
    moto.py("urllib.request.urlopen(urllib.request.Request(os.environ['EP'] + '/moto-api/recorder/start-recording', method='POST'))");
    let start = Instant::now();
    imds[4].set("autoscaling/target-lifecycle-state", "Terminated");
    wait_for("worker 5 completes its lifecycle action", Duration::from_secs(90), || {
        agents[4].output().contains("completing lifecycle action agt-drain of agt-workers")
    });
    table.push((
        "worker termination notice → drained, left, hook completed".into(),
        format!("{:.1} s", start.elapsed().as_secs_f64()),
    ));
    assert_eq!(local_state(5), "inactive", "host 5 left the swarm");
    assert_eq!(running_on("alab-n5"), (5, 0), "its task runs elsewhere");
    let out5 = agents[4].output();
    let i_drain = out5.find("waiting: termination notice").expect(&out5);
    let i_leave = out5.find("leaving the swarm").expect(&out5);
    assert!(i_drain < i_leave, "{out5}");
    assert!(agents[0].output().contains("draining node"), "{}", agents[0].output());
    let recorded = moto.py(
        "rec = urllib.request.urlopen(os.environ['EP'] + '/moto-api/recorder/download-recording').read().decode()\n\
         for line in rec.splitlines():\n    d = json.loads(line)\n    b = d.get('body') or ''\n    b = base64.b64decode(b).decode() if d.get('body_encoded') else b\n    print(b) if 'CompleteLifecycleAction' in b else None",
    );
    assert!(
        recorded.contains(&format!("InstanceId={}", id(5)))
            && recorded.contains("LifecycleHookName=agt-drain")
            && recorded.contains("LifecycleActionResult=CONTINUE"),
        "moto saw no CompleteLifecycleAction for {}: {recorded}",
        id(5)
    );
    agents[4].stop();
    // The group terminates it; the leader removes its (down) node.
    moto.py(&format!(
        "c('autoscaling').terminate_instance_in_auto_scaling_group(InstanceId='{}', ShouldDecrementDesiredCapacity=True)",
        id(5)
    ));
    let took = wait_for("node of the terminated worker removed", Duration::from_secs(60), || node_of(1, 5).is_none());
    table.push(("terminated worker's node removed by the leader".into(), format!("{:.1} s", took.as_secs_f64())));

    // 3. A crashed worker stays while its instance is in service; removed once it leaves the group.
    lab.run("kill", 4);
    agents[3].stop();
    wait_for("crashed worker is down", Duration::from_secs(60), || node_of(1, 4).is_some_and(|n| n.2 == "down"));
    std::thread::sleep(Duration::from_secs(4));
    assert!(node_of(1, 4).is_some(), "a down node whose instance is in service is kept");
    let start = Instant::now();
    moto.py(&format!(
        "c('autoscaling').detach_instances(InstanceIds=['{}'], AutoScalingGroupName='agt-workers', ShouldDecrementDesiredCapacity=True)",
        id(4)
    ));
    wait_for("crashed worker removed", Duration::from_secs(60), || node_of(1, 4).is_none());
    table.push((
        "crashed worker removed after leaving its group".into(),
        format!("{:.1} s", start.elapsed().as_secs_f64()),
    ));

    // 4. A crashed manager drops out of state.json and the records; a manager's termination
    //    waits while it is down, and goes through once it is back.
    lab.run("kill", 3);
    let start = Instant::now();
    wait_for("state.json and Route53 drop the crashed manager", Duration::from_secs(60), || {
        state_managers(&state()) == vec![ip(1), ip(2)] && records() == want_records(&[1, 2])
    });
    table.push((
        "crashed manager out of state.json + Route53".into(),
        format!("{:.1} s", start.elapsed().as_secs_f64()),
    ));
    imds[1].set("autoscaling/target-lifecycle-state", "Terminated");
    wait_for("manager 2 holds on the quorum guard", Duration::from_secs(60), || {
        agents[1].output().contains("quorum guard: manager alab-n3")
    });
    wait_for("records without the leaving manager", Duration::from_secs(30), || records() == want_records(&[1]));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(node_of(1, 2).map(|n| n.1), Some("manager".to_string()), "{}", agents[1].output());
    assert_eq!(local_state(2), "active");
    assert!(!agents[1].output().contains("demoting"), "{}", agents[1].output());
    let start = Instant::now();
    lab.run("start", 3);
    wait_for("manager 2 leaves once manager 3 is back", Duration::from_secs(120), || {
        agents[1].output().contains("completing lifecycle action agt-drain of agt-managers")
    });
    table.push((
        "manager termination after the quorum guard released".into(),
        format!("{:.1} s", start.elapsed().as_secs_f64()),
    ));
    assert_eq!(local_state(2), "inactive");
    wait_for("state.json and records follow: managers 1 and 3", Duration::from_secs(60), || {
        state_managers(&state()) == vec![ip(1), ip(3)] && records() == want_records(&[1, 3])
    });
    let n3 = node_of(1, 3).unwrap();
    assert_eq!((n3.1.as_str(), n3.2.as_str()), ("manager", "ready"));

    // Join tokens never appear in any agent's output.
    for (i, a) in agents.iter().enumerate() {
        assert!(!a.output().contains("SWMTKN"), "agent {} printed a token", i + 1);
    }
    drop(agents);
    let _ = docker(1, &["service", "rm", "agt-web"]);
    eprintln!("\n| agent test step | time |\n|---|---|");
    for (k, v) in &table {
        eprintln!("| {k} | {v} |");
    }
}

/// The CLI against the swarm the agents formed: a CloudFormation stack in moto whose
/// `DiscoveryBucket` output is the agents' bucket stands in for `berth cluster up`; `deploy` reads
/// `state.json`, connects to the managers' public IPs (the lab hosts) with the lab's key, checks
/// their host keys against `state.json` (known_hosts neither read nor written), gets an ECR token
/// from moto (a fake one: nothing here pulls from ECR), deploys, and `status` sees the service.
fn deploy_through_state_json(moto: &Moto, tmp: &Path, agents: &str, leader_agent: u32) {
    moto.py(r#"
t = {'Resources': {'Handle': {'Type': 'AWS::CloudFormation::WaitConditionHandle'}},
     'Outputs': {'DiscoveryBucket': {'Value': 'agt-discovery'}}}
c('cloudformation').create_stack(StackName='berth-awsx-aws', TemplateBody=json.dumps(t))
"#);
    let dir = tmp.join("awsx");
    let home = tmp.join("home");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"services:
  web:
    image: berth-test/app:v1
x-berth:
  name: awsx
  targets:
    aws:
      aws: true
      region: {REGION}
      ssh_cidr: {NET}.0/24
      ssh_key: /var/lib/alab/ssh/id_ed25519.pub
      ssh_user: root
      socket: /run/alab/{{host}}/docker.sock
"#
        ),
    )
    .unwrap();
    let aws_config = home.join("aws-config");
    let aws_credentials = home.join("aws-credentials");
    let set: [(&str, &std::ffi::OsStr); 7] = [
        ("HOME", home.as_os_str()),
        ("AWS_ACCESS_KEY_ID", "testing".as_ref()),
        ("AWS_SECRET_ACCESS_KEY", "testing".as_ref()),
        ("AWS_ENDPOINT_URL", moto.url.as_ref()),
        ("AWS_EC2_METADATA_DISABLED", "true".as_ref()),
        ("AWS_CONFIG_FILE", aws_config.as_os_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", aws_credentials.as_os_str()),
    ];
    let berth = |args: &[&str]| {
        let r = run::berth_env(&dir, args, &set, &["AWS_PROFILE", "BERTH_TARGET"]);
        (r.code, r.stdout, r.stderr)
    };
    let (code, _, err) = berth(&["deploy", "--target", "aws", "--plain", "--timeout", "120"]);
    assert_eq!(code, 0, "deploy: {err}\n{agents}");
    assert!(!err.contains("trusting"), "host keys came from state.json: {err}");
    assert!(!home.join(".ssh/known_hosts").exists(), "known_hosts neither read nor written");
    let (code, out, err) = berth(&["status", "--target", "aws", "--json"]);
    assert_eq!(code, 0, "status: {err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    eprintln!("{status}");
    assert!(out.contains("awsx_web") || out.contains("\"web\""), "{status}");
    assert_eq!(docker(1, &["service", "ls", "--filter", "name=awsx_web", "--format", "{{.Replicas}}"]), "1/1");
    // A state.json whose keys are not the managers' (here: host 4's for all three): refused,
    // the key named. The leader's agent is paused meanwhile so that it does not rewrite the file.
    let signal =
        |sig: &str| assert!(Command::new("kill").args([sig, &leader_agent.to_string()]).status().unwrap().success());
    signal("-STOP");
    let wrong = host_key(4);
    moto.py(&format!(
        r#"
s3 = c('s3'); k = 'swarm/state.json'
st = json.loads(s3.get_object(Bucket='{BUCKET}', Key=k)['Body'].read())
for m in st['managers']: m['ssh_host_keys'] = ['{wrong}']
s3.put_object(Bucket='{BUCKET}', Key=k, Body=json.dumps(st).encode())
"#
    ));
    let (code, _, err) = berth(&["status", "--target", "aws"]);
    signal("-CONT");
    assert_ne!(code, 0, "keys that are not the hosts' must be refused: {err}");
    assert!(err.contains("that is not one of the 1 expected") && err.contains("SHA256:"), "{err}");
    assert!(!home.join(".ssh/known_hosts").exists());
    wait_for("the leader rewrites state.json with the managers' keys", Duration::from_secs(30), || {
        let (code, _, _) = berth(&["status", "--target", "aws"]);
        code == 0
    });
    // The service must not take part in the drains below.
    let _ = docker(1, &["service", "rm", "awsx_web"]);
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
