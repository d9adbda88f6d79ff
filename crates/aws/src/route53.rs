//! Route53 A records the agent keeps pointing at the cluster's edge nodes (the managers' public
//! addresses).

use crate::AwsError;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use std::collections::BTreeMap;

/// Route53 calls of the agent.
#[derive(Debug, Clone)]
pub struct Dns {
    client: aws_sdk_route53::Client,
}

/// A record name as Route53 returns it: lower case, with the trailing dot.
pub fn fqdn(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

impl Dns {
    pub fn new(conf: &aws_types::SdkConfig) -> Dns {
        Dns { client: aws_sdk_route53::Client::new(conf) }
    }

    /// The current A record values of each of `names` (sorted; empty when there is none), keyed by
    /// the name as given.
    pub async fn a_records(&self, zone: &str, names: &[String]) -> Result<BTreeMap<String, Vec<String>>, AwsError> {
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut start: Option<(String, RrType)> = None;
        loop {
            let mut req = self.client.list_resource_record_sets().hosted_zone_id(zone);
            if let Some((name, ty)) = start.take() {
                req = req.start_record_name(name).start_record_type(ty);
            }
            let out = req.send().await.map_err(|e| AwsError::api("route53:ListResourceRecordSets", e))?;
            for set in out.resource_record_sets() {
                if set.r#type() == &RrType::A {
                    let values = set.resource_records().iter().map(|r| r.value().to_string()).collect();
                    found.insert(set.name().to_ascii_lowercase(), values);
                }
            }
            match (out.is_truncated(), out.next_record_name(), out.next_record_type()) {
                (true, Some(n), Some(t)) => start = Some((n.to_string(), t.clone())),
                _ => break,
            }
        }
        Ok(names
            .iter()
            .map(|n| {
                let mut v = found.get(&fqdn(n)).cloned().unwrap_or_default();
                v.sort();
                (n.clone(), v)
            })
            .collect())
    }

    /// Sets each name's A record to its addresses (UPSERT, one change batch). Names with no
    /// address are left as they are (Route53 has no empty record set).
    pub async fn upsert_a(
        &self,
        zone: &str,
        ttl: u64,
        records: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), AwsError> {
        let mut changes = Vec::new();
        for (name, ips) in records.iter().filter(|(_, ips)| !ips.is_empty()) {
            let rrs: Vec<ResourceRecord> = ips
                .iter()
                .map(|ip| ResourceRecord::builder().value(ip).build())
                .collect::<Result<_, _>>()
                .map_err(|e| AwsError::Other(format!("route53 record {name}: {e}")))?;
            let set = ResourceRecordSet::builder()
                .name(fqdn(name))
                .r#type(RrType::A)
                .ttl(ttl as i64)
                .set_resource_records(Some(rrs))
                .build()
                .map_err(|e| AwsError::Other(format!("route53 record {name}: {e}")))?;
            changes.push(
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(set)
                    .build()
                    .map_err(|e| AwsError::Other(format!("route53 change {name}: {e}")))?,
            );
        }
        if changes.is_empty() {
            return Ok(());
        }
        let batch = ChangeBatch::builder()
            .comment("berth agent: edge nodes")
            .set_changes(Some(changes))
            .build()
            .map_err(|e| AwsError::Other(format!("route53 change batch: {e}")))?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| AwsError::api("route53:ChangeResourceRecordSets", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fqdn_is_lower_case_with_the_dot() {
        assert_eq!(super::fqdn("Example.COM"), "example.com.");
        assert_eq!(super::fqdn("a.example.com."), "a.example.com.");
    }
}
