//! Reading CloudFormation's stack events: which resource failed first and why, whether the reason
//! is a quota or capacity problem, and what CloudFormation did about it (rollback). Pure: no I/O.

use serde::Serialize;

/// One stack event, reduced to what berth shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

impl Event {
    /// `CREATE_IN_PROGRESS  AWS::S3::Bucket  DiscoveryBucket  (reason)`: one progress line.
    pub fn line(&self) -> String {
        let mut s = format!("{:<20} {:<38} {}", self.status, self.resource_type, self.logical_id);
        if let Some(r) = self.reason.as_deref().filter(|r| !r.is_empty() && *r != "User Initiated") {
            s.push_str(&format!(" ({r})"));
        }
        s
    }
}

/// What kind of failure a reason describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// An account limit (vCPU, VPCs, Elastic IPs, ...): ask AWS to raise it or free some.
    Quota,
    /// AWS has no capacity for the instance type in a zone right now.
    Capacity,
    /// Anything else.
    Other,
}

/// The resource that failed first, with CloudFormation's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: String,
    pub kind: FailureKind,
}

impl Failure {
    /// What the operator can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self.kind {
            FailureKind::Quota => Some(
                "an account quota is exhausted: free some (e.g. unused Elastic IPs, VPCs) or ask for an increase \
                 in the Service Quotas console, then run `berth cluster up` again",
            ),
            FailureKind::Capacity => Some(
                "AWS has no capacity for this instance type in one of the zones right now: retry later or set another \
                 `instance_type` in the target",
            ),
            FailureKind::Other => None,
        }
    }
}

/// Error codes and phrases of quota and capacity failures, as CloudFormation reports them in a
/// resource status reason (they quote the EC2/IAM/S3 error code).
const QUOTA_MARKERS: &[&str] = &[
    "LimitExceeded",
    "VcpuLimitExceeded",
    "InstanceLimitExceeded",
    "AddressLimitExceeded",
    "VpcLimitExceeded",
    "TooManyBuckets",
    "ServiceQuotaExceeded",
    "QuotaExceeded",
    "exceeded the maximum number",
    "You have requested more vCPU capacity",
];
const CAPACITY_MARKERS: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "Unsupported",
    "is not supported in your requested Availability Zone",
];

/// Classifies a failure reason (or an API error code + message).
pub fn classify(reason: &str) -> FailureKind {
    if CAPACITY_MARKERS.iter().any(|m| reason.contains(m)) {
        FailureKind::Capacity
    } else if QUOTA_MARKERS.iter().any(|m| reason.contains(m)) {
        FailureKind::Quota
    } else {
        FailureKind::Other
    }
}

/// Reasons that only follow another failure (the first failure is the cause).
fn is_consequence(reason: &str) -> bool {
    reason.contains("Resource creation cancelled")
        || reason.contains("Resource update cancelled")
        || reason.contains("The following resource(s) failed to")
}

/// The first resource that failed, from events in the order CloudFormation lists them (newest
/// first). The stack's own events and cancellations caused by another failure are skipped.
pub fn first_failure(events_newest_first: &[Event], stack_name: &str) -> Option<Failure> {
    events_newest_first
        .iter()
        .rev()
        .filter(|e| e.status.ends_with("_FAILED"))
        .filter(|e| !(e.logical_id == stack_name && e.resource_type == "AWS::CloudFormation::Stack"))
        .find(|e| !e.reason.as_deref().is_some_and(is_consequence))
        .map(|e| {
            let reason = e.reason.clone().unwrap_or_default();
            Failure {
                logical_id: e.logical_id.clone(),
                resource_type: e.resource_type.clone(),
                status: e.status.clone(),
                kind: classify(&reason),
                reason,
            }
        })
}

/// The resource an error message is about, when the message quotes one of its literal property
/// values (a name, a CIDR): `(logical ID, type)`. For errors that name no logical ID (moto's
/// synchronous ExecuteChangeSet errors); CloudFormation's own events always name it.
pub fn guess_resource(template: &serde_json::Value, message: &str) -> Option<(String, String)> {
    fn strings<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::String(s) if s.len() >= 4 => out.push(s),
            serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            // Intrinsic functions are not literal values.
            serde_json::Value::Object(o) if o.keys().any(|k| k == "Ref" || k.starts_with("Fn::")) => {}
            serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    let resources = template.get("Resources")?.as_object()?;
    let mut best: Option<(usize, String, String)> = None;
    for (id, r) in resources {
        let mut vals = Vec::new();
        if let Some(p) = r.get("Properties") {
            strings(p, &mut vals);
        }
        for v in vals {
            if message.contains(v) && best.as_ref().is_none_or(|(len, _, _)| v.len() > *len) {
                let ty = r.get("Type").and_then(|t| t.as_str()).unwrap_or_default().to_owned();
                best = Some((v.len(), id.clone(), ty));
            }
        }
    }
    best.map(|(_, id, ty)| (id, ty))
}

/// A stack status in which nothing is in progress any more.
pub fn is_settled(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// Whether a settled status means the operation succeeded.
pub fn is_success(status: &str) -> bool {
    matches!(status, "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE")
}

/// What CloudFormation did after a failure, from the stack's final status.
pub fn rollback_note(status: &str) -> &'static str {
    match status {
        "ROLLBACK_COMPLETE" => {
            "CloudFormation rolled the creation back: every resource it had made is deleted; the empty stack stays \
             (ROLLBACK_COMPLETE) until `berth cluster down` or the next `berth cluster up` removes it"
        }
        "ROLLBACK_FAILED" => {
            "CloudFormation could not roll the creation back (ROLLBACK_FAILED): some resources are left; \
             `berth cluster down` deletes what it can"
        }
        "UPDATE_ROLLBACK_COMPLETE" => {
            "CloudFormation rolled the update back: the stack is as it was before (UPDATE_ROLLBACK_COMPLETE)"
        }
        "UPDATE_ROLLBACK_FAILED" => {
            "CloudFormation could not roll the update back (UPDATE_ROLLBACK_FAILED): continue the rollback in the \
             console or with `aws cloudformation continue-update-rollback`"
        }
        "CREATE_FAILED" => "the creation failed and was not rolled back (CREATE_FAILED)",
        "UPDATE_FAILED" => "the update failed (UPDATE_FAILED)",
        "DELETE_FAILED" => "the deletion failed (DELETE_FAILED): some resources are left",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, logical: &str, ty: &str, status: &str, reason: Option<&str>) -> Event {
        Event {
            id: id.into(),
            logical_id: logical.into(),
            resource_type: ty.into(),
            status: status.into(),
            reason: reason.map(Into::into),
        }
    }

    /// A capacity failure as CloudFormation reports it: the instance fails, the others are
    /// cancelled, the stack rolls back. Newest first, as DescribeStackEvents lists them.
    #[test]
    fn first_failure_is_the_cause_not_the_cancellations() {
        let events = vec![
            ev("9", "berth-s-t", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", None),
            ev("8", "Host", "AWS::EC2::Instance", "DELETE_COMPLETE", None),
            ev(
                "7",
                "berth-s-t",
                "AWS::CloudFormation::Stack",
                "ROLLBACK_IN_PROGRESS",
                Some("The following resource(s) failed to create: [Host, StaticBucket]. Rollback requested by user."),
            ),
            ev("6", "StaticBucket", "AWS::S3::Bucket", "CREATE_FAILED", Some("Resource creation cancelled")),
            ev(
                "5",
                "Host",
                "AWS::EC2::Instance",
                "CREATE_FAILED",
                Some(
                    "We currently do not have sufficient t3.small capacity in the Availability Zone you requested (eu-west-1a). (Service: Ec2, Status Code: 500, Error Code: InsufficientInstanceCapacity)",
                ),
            ),
            ev("4", "Host", "AWS::EC2::Instance", "CREATE_IN_PROGRESS", None),
            ev("1", "berth-s-t", "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", Some("User Initiated")),
        ];
        let f = first_failure(&events, "berth-s-t").expect("a failure");
        assert_eq!(f.logical_id, "Host");
        assert_eq!(f.resource_type, "AWS::EC2::Instance");
        assert_eq!(f.kind, FailureKind::Capacity);
        assert!(f.hint().is_some());
    }

    #[test]
    fn resource_guessed_from_a_quoted_value() {
        let t = serde_json::json!({"Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
            "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "192.168.0.0/24"}},
            "Repo": {"Type": "AWS::ECR::Repository", "Properties": {"RepositoryName": "blog/web"}}
        }});
        assert_eq!(
            guess_resource(&t, "InvalidSubnet.Range: The CIDR '192.168.0.0/24' is invalid."),
            Some(("Subnet".into(), "AWS::EC2::Subnet".into()))
        );
        assert_eq!(
            guess_resource(&t, "The repository with name 'blog/web' already exists"),
            Some(("Repo".into(), "AWS::ECR::Repository".into()))
        );
        assert_eq!(guess_resource(&t, "Throttling: Rate exceeded"), None);
    }

    #[test]
    fn quota_reasons() {
        assert_eq!(
            classify(
                "You have requested more vCPU capacity than your current vCPU limit of 8 allows (Error Code: VcpuLimitExceeded)"
            ),
            FailureKind::Quota
        );
        assert_eq!(
            classify("The maximum number of addresses has been reached. (Error Code: AddressLimitExceeded)"),
            FailureKind::Quota
        );
        assert_eq!(classify("LimitExceeded: Cannot exceed quota for RolesPerAccount: 1000"), FailureKind::Quota);
        assert_eq!(classify("Bucket name already exists"), FailureKind::Other);
    }

    #[test]
    fn no_failure_when_all_complete() {
        let events = vec![
            ev("2", "s", "AWS::CloudFormation::Stack", "CREATE_COMPLETE", None),
            ev("1", "Vpc", "AWS::EC2::VPC", "CREATE_COMPLETE", None),
        ];
        assert_eq!(first_failure(&events, "s"), None);
    }

    #[test]
    fn statuses() {
        assert!(is_settled("ROLLBACK_COMPLETE"));
        assert!(!is_settled("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"));
        assert!(is_success("UPDATE_COMPLETE"));
        assert!(!is_success("UPDATE_ROLLBACK_COMPLETE"));
        assert!(rollback_note("ROLLBACK_COMPLETE").contains("rolled the creation back"));
    }
}
