//! S3 buckets (discovery, static, media) and the ECR repositories of the stack's built services.
//!
//! Every bucket: SSE-S3 encryption, all four public-access blocks, ACLs off (bucket owner
//! enforced), and a bucket policy that refuses requests without TLS. Static and media buckets
//! hold the app's data: `DeletionPolicy`/`UpdateReplacePolicy: Retain`, media versioned. The
//! discovery bucket only holds what the cluster can rebuild (agent binary, swarm state, join
//! tokens): the CLI empties it and CloudFormation deletes it with the stack.

use crate::{CfnError, Tpl, att, logical, r, sub};
use serde_json::{Value, json};

/// Images kept per repository; older ones expire.
pub const KEEP_IMAGES: u32 = 30;
/// Days a replaced or deleted media object stays recoverable.
pub const MEDIA_NONCURRENT_DAYS: u32 = 90;

fn bucket(t: &Tpl, suffix: &str) -> Value {
    json!({
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": true}
        ]},
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": true,
            "BlockPublicPolicy": true,
            "IgnorePublicAcls": true,
            "RestrictPublicBuckets": true,
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "Tags": t.tags(suffix),
    })
}

/// Refuses every request that does not use TLS (the statement denies; it grants nothing).
fn tls_only(t: &mut Tpl, id: &str) {
    t.add(
        &format!("{id}Policy"),
        "AWS::S3::BucketPolicy",
        json!({
            "Bucket": r(id),
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "DenyWithoutTls",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:*",
                    "Resource": [att(id, "Arn"), sub(&format!("${{{id}.Arn}}/*"))],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }],
            },
        }),
    );
}

/// ECR repository name of a service: `<stack>/<service>`, lowercase.
pub fn repository_name(stack: &str, service: &str) -> String {
    format!("{stack}/{service}").to_ascii_lowercase()
}

fn valid_repository(name: &str) -> bool {
    // ECR: (?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*, 2 to 256 characters.
    (2..=256).contains(&name.len())
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .split(['.', '_', '-'])
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        })
}

/// Logical IDs of the repositories, in the order of `repositories`.
pub(crate) fn repository_ids(t: &Tpl) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for service in t.input.repositories {
        let base = logical("Repo", service);
        let mut id = base.clone();
        let mut n = 2;
        while ids.contains(&id) {
            id = format!("{base}{n}");
            n += 1;
        }
        ids.push(id);
    }
    ids
}

pub(crate) fn add(t: &mut Tpl) -> Result<(), CfnError> {
    let discovery = bucket(t, "discovery");
    t.add("DiscoveryBucket", "AWS::S3::Bucket", discovery).insert("DeletionPolicy".into(), "Delete".into());
    tls_only(t, "DiscoveryBucket");

    let stat = bucket(t, "static");
    let res = t.add("StaticBucket", "AWS::S3::Bucket", stat);
    res.insert("DeletionPolicy".into(), "Retain".into());
    res.insert("UpdateReplacePolicy".into(), "Retain".into());
    tls_only(t, "StaticBucket");

    let mut media = bucket(t, "media");
    media["VersioningConfiguration"] = json!({"Status": "Enabled"});
    media["LifecycleConfiguration"] = json!({"Rules": [{
        "Id": "expire-old-versions",
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": MEDIA_NONCURRENT_DAYS},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }]});
    let res = t.add("MediaBucket", "AWS::S3::Bucket", media);
    res.insert("DeletionPolicy".into(), "Retain".into());
    res.insert("UpdateReplacePolicy".into(), "Retain".into());
    tls_only(t, "MediaBucket");

    let lifecycle = json!({"rules": [{
        "rulePriority": 1,
        "description": format!("keep the last {KEEP_IMAGES} images"),
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES},
        "action": {"type": "expire"},
    }]})
    .to_string();
    let ids = repository_ids(t);
    for (service, id) in t.input.repositories.iter().zip(ids) {
        let name = repository_name(t.input.stack, service);
        if !valid_repository(&name) {
            return Err(CfnError::BadRepository { service: service.clone(), name });
        }
        let props = json!({
            "RepositoryName": name,
            "ImageScanningConfiguration": {"ScanOnPush": true},
            "ImageTagMutability": if t.input.aws.immutable_tags { "IMMUTABLE" } else { "MUTABLE" },
            "EncryptionConfiguration": {"EncryptionType": "AES256"},
            "LifecyclePolicy": {"LifecyclePolicyText": lifecycle},
            "EmptyOnDelete": true,
            "Tags": t.tags(&format!("repo-{service}")),
        });
        t.add(&id, "AWS::ECR::Repository", props);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecr_rules() {
        assert!(valid_repository(&repository_name("blog", "Backend")));
        assert!(valid_repository("blog/web-api_v2.x"));
        assert!(!valid_repository("blog/-web"));
        assert!(!valid_repository("blog//web"));
        assert!(!valid_repository("blog/web__x"));
    }
}
