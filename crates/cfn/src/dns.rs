//! Route53 records. Single mode: A records to the Elastic IP, made by CloudFormation. Cluster
//! mode: none in the template; the managers' agents keep the same names pointed at the edge
//! nodes (`--hosted-zone-id`, `--domains`). Both only when the target names a hosted zone and
//! the stack has domains; the records also wait for the `HostedZoneId` parameter
//! (condition `HasHostedZone`), so an empty ID makes none.

use crate::{Tpl, logical, r};
use serde_json::json;

/// TTL of the records the template makes (the Elastic IP does not move).
pub const RECORD_TTL: u32 = 300;

/// The record names for `domains`: each domain, and `*.<domain>` unless the list also holds
/// subdomains of it (then those are the records), it is a subdomain of another listed domain, or
/// it is a wildcard itself. Lowercase, no
/// trailing dot, in order, without repeats.
pub fn record_names(domains: &[String]) -> Vec<String> {
    let clean: Vec<String> = domains.iter().map(|d| d.trim_end_matches('.').to_ascii_lowercase()).collect();
    let mut out: Vec<String> = Vec::new();
    let mut push = |n: String| {
        if !out.contains(&n) {
            out.push(n);
        }
    };
    for d in &clean {
        push(d.clone());
        if d.starts_with("*.") {
            continue;
        }
        let related = clean.iter().any(|o| o != d && (o.ends_with(&format!(".{d}")) || d.ends_with(&format!(".{o}"))));
        if !related {
            push(format!("*.{d}"));
        }
    }
    out
}

pub(crate) fn add(t: &mut Tpl) {
    if t.cluster() || !t.dns() {
        return;
    }
    for name in record_names(t.input.domains) {
        let base = match name.strip_prefix("*.") {
            Some(rest) => logical("DnsWildcard", rest),
            None => logical("Dns", &name),
        };
        let mut id = base.clone();
        let mut n = 2;
        while t.has(&id) {
            id = format!("{base}{n}");
            n += 1;
        }
        t.add(
            &id,
            "AWS::Route53::RecordSet",
            json!({
                "HostedZoneId": r("HostedZoneId"),
                "Name": format!("{name}."),
                "Type": "A",
                "TTL": RECORD_TTL.to_string(),
                "ResourceRecords": [r("ElasticIp")],
            }),
        )
        .insert("Condition".into(), "HasHostedZone".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(d: &[&str]) -> Vec<String> {
        record_names(&d.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_domain_gets_its_wildcard_unless_subdomains_are_listed() {
        assert_eq!(names(&["blog.example.com"]), ["blog.example.com", "*.blog.example.com"]);
        assert_eq!(
            names(&["Example.com.", "api.example.com", "*.cdn.example.com"]),
            ["example.com", "api.example.com", "*.cdn.example.com"]
        );
        assert_eq!(names(&["a.com", "b.org", "a.com"]), ["a.com", "*.a.com", "b.org", "*.b.org"]);
    }
}
