//! The instances' IAM role: least privilege, every statement scoped to this stack's resources.
//!
//! No action is a wildcard. `Resource: "*"` appears only with the actions in
//! [`RESOURCE_STAR_ACTIONS`], which AWS documents as not supporting resource-level permissions
//! (Service Authorization Reference: "Resource types" column empty).

use crate::storage::repository_ids;
use crate::{Tpl, att, r, sub};
use serde_json::{Value, json};

/// Actions the role may use on `Resource: "*"`, because AWS cannot scope them to a resource:
/// - `ecr:GetAuthorizationToken`: the registry login token is account-wide;
/// - `autoscaling:DescribeAutoScalingGroups`, `autoscaling:DescribeAutoScalingInstances`,
///   `autoscaling:DescribeLifecycleHooks`: auto-scaling's `Describe*` calls take no resource.
pub const RESOURCE_STAR_ACTIONS: &[&str] = &[
    "ecr:GetAuthorizationToken",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLifecycleHooks",
];

fn object_arns(bucket: &str, prefixes: &[&str]) -> Value {
    Value::Array(prefixes.iter().map(|p| sub(&format!("${{{bucket}.Arn}}/{p}"))).collect())
}

fn statements(t: &Tpl) -> Vec<Value> {
    let mut s = vec![
        // Discovery: the agent reads the binary and the swarm's state, writes only under swarm/.
        json!({
            "Sid": "DiscoveryRead",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": object_arns("DiscoveryBucket", &["agent/*", "swarm/*"]),
        }),
        json!({
            "Sid": "DiscoveryWrite",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": object_arns("DiscoveryBucket", &["swarm/*"]),
        }),
        json!({
            "Sid": "DiscoveryTidy",
            "Effect": "Allow",
            "Action": ["s3:DeleteObject"],
            "Resource": object_arns("DiscoveryBucket", &["swarm/members/*"]),
        }),
        // Listing is not limited by prefix: without s3:ListBucket on the bucket itself, S3 answers
        // a GetObject of a missing key with 403 instead of 404, and "no state yet" looks like
        // "access denied" to the agent.
        json!({
            "Sid": "DiscoveryList",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [att("DiscoveryBucket", "Arn")],
        }),
        json!({
            "Sid": "AppObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [sub("${StaticBucket.Arn}/*"), sub("${MediaBucket.Arn}/*")],
        }),
        json!({
            "Sid": "AppList",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [att("StaticBucket", "Arn"), att("MediaBucket", "Arn")],
        }),
        json!({
            "Sid": "RegistryLogin",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": "*",
        }),
    ];
    let repos = repository_ids(t);
    if !repos.is_empty() {
        s.push(json!({
            "Sid": "RegistryPull",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": repos.iter().map(|id| att(id, "Arn")).collect::<Vec<_>>(),
        }));
    }
    if t.cluster() {
        s.push(json!({
            "Sid": "GroupsRead",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLifecycleHooks",
            ],
            "Resource": "*",
        }));
        // The groups have fixed names (`<AWS::StackName>-managers|-workers`) so that this policy
        // can name them without a dependency cycle (group → launch template → profile → role).
        let groups: Vec<Value> = ["managers", "workers"]
            .iter()
            .map(|g| {
                sub(&format!(
                    "arn:${{AWS::Partition}}:autoscaling:${{AWS::Region}}:${{AWS::AccountId}}:autoScalingGroup:*:autoScalingGroupName/${{AWS::StackName}}-{g}"
                ))
            })
            .collect();
        s.push(json!({
            "Sid": "GroupsLifecycle",
            "Effect": "Allow",
            "Action": ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
            "Resource": groups,
        }));
        if t.dns() {
            s.push(json!({"Fn::If": ["HasHostedZone", {
                "Sid": "Records",
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
                "Resource": sub("arn:${AWS::Partition}:route53:::hostedzone/${HostedZoneId}"),
            }, {"Ref": "AWS::NoValue"}]}));
        }
    }
    s
}

pub(crate) fn add(t: &mut Tpl) {
    let props = json!({
        "Description": format!("Instances of {}: swarm discovery, app buckets, image pulls{}", t.name,
            if t.cluster() { ", lifecycle hooks, DNS records" } else { "" }),
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }],
        },
        "Policies": [{
            "PolicyName": "berth-instance",
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements(t)},
        }],
        "Tags": t.tags("instance"),
    });
    t.add("InstanceRole", "AWS::IAM::Role", props);
    t.add("InstanceProfile", "AWS::IAM::InstanceProfile", json!({"Roles": [r("InstanceRole")]}));
}
