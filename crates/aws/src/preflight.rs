//! Checks before a change set is made: the region has the zones the mode needs, the hosted zone
//! exists (its ID becomes the `HostedZoneId` parameter).
//!
//! The zones come from one SigV4-signed EC2 Query call (`DescribeAvailabilityZones`): the EC2 SDK
//! crate costs minutes of build for this one call.

use crate::config::{AwsError, endpoint_url, error_chain};
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_types::SdkConfig;
use std::time::{Duration, SystemTime};

/// Zones a cluster spreads its managers over.
pub const CLUSTER_ZONES: usize = 3;

/// The region's availability zones (state `available`, zone type `availability-zone`: no Local
/// or Wavelength zones), sorted.
pub async fn availability_zones(conf: &SdkConfig) -> Result<Vec<String>, AwsError> {
    let region = conf.region().map(|r| r.to_string()).unwrap_or_default();
    let base = match endpoint_url() {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => format!("https://ec2.{region}.amazonaws.com"),
    };
    let query = "Action=DescribeAvailabilityZones&Version=2016-11-15\
                 &Filter.1.Name=zone-type&Filter.1.Value.1=availability-zone\
                 &Filter.2.Name=state&Filter.2.Value.1=available";
    let url = format!("{base}/?{query}");
    let provider = conf.credentials_provider().ok_or_else(|| AwsError::NoCredentials {
        profile: None,
        detail: "no credentials provider configured".into(),
    })?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| AwsError::NoCredentials { profile: std::env::var("AWS_PROFILE").ok(), detail: error_chain(&e) })?;
    let identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("ec2")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| AwsError::Other(format!("signing DescribeAvailabilityZones: {e}")))?
        .into();
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| AwsError::Other(format!("signing DescribeAvailabilityZones: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| AwsError::Other(format!("signing DescribeAvailabilityZones: {e}")))?
        .into_parts();
    let mut req = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(SdkBody::empty())
        .map_err(|e| AwsError::Other(format!("DescribeAvailabilityZones request: {e}")))?;
    instructions.apply_to_request_http1x(&mut req);
    let req = HttpRequest::try_from(req).map_err(|e| AwsError::Other(format!("DescribeAvailabilityZones: {e}")))?;
    let connector =
        aws_smithy_http_client::Connector::builder().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build();
    let op = "ec2:DescribeAvailabilityZones";
    let resp = tokio::time::timeout(Duration::from_secs(30), connector.call(req))
        .await
        .map_err(|_| AwsError::Api { op, code: None, message: format!("no answer from {base} in 30 s") })?
        .map_err(|e| AwsError::Api { op, code: None, message: error_chain(&e) })?;
    let status = resp.status().as_u16();
    let body = ByteStream::new(resp.into_body())
        .collect()
        .await
        .map_err(|e| AwsError::Api { op, code: None, message: error_chain(&e) })?
        .into_bytes();
    let text = String::from_utf8_lossy(&body);
    if status != 200 {
        let code = tag_values(&text, "Code").into_iter().next();
        let message = tag_values(&text, "Message").into_iter().next().unwrap_or_else(|| format!("HTTP {status}"));
        return Err(match code.as_deref() {
            Some("AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch") => {
                AwsError::BadCredentials(format!("{op}: {message}"))
            }
            _ => AwsError::Api { op, code, message },
        });
    }
    let mut zones = tag_values(&text, "zoneName");
    zones.sort();
    zones.dedup();
    Ok(zones)
}

/// The text of every `<tag>...</tag>` element (EC2 Query answers are flat enough for this).
fn tag_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(rest[..j].trim().to_owned());
        rest = &rest[j + close.len()..];
    }
    out
}

/// Cluster mode needs [`CLUSTER_ZONES`] zones.
pub async fn require_zones(conf: &SdkConfig, needed: usize) -> Result<Vec<String>, AwsError> {
    let zones = availability_zones(conf).await?;
    if zones.len() < needed {
        return Err(AwsError::TooFewZones {
            region: conf.region().map(|r| r.to_string()).unwrap_or_default(),
            zones,
            needed,
        });
    }
    Ok(zones)
}

/// The ID (`Z...`, without `/hostedzone/`) of the public hosted zone named `zone`.
pub async fn hosted_zone_id(conf: &SdkConfig, zone: &str) -> Result<String, AwsError> {
    let want = format!("{}.", zone.trim_end_matches('.')).to_ascii_lowercase();
    let r53 = aws_sdk_route53::Client::new(conf);
    let out = r53
        .list_hosted_zones_by_name()
        .dns_name(&want)
        .max_items(10)
        .send()
        .await
        .map_err(|e| AwsError::api("route53:ListHostedZonesByName", e))?;
    let mut found: Vec<_> = out.hosted_zones().iter().filter(|z| z.name().eq_ignore_ascii_case(&want)).collect();
    // A public zone serves the records the world resolves; a private one only the VPC.
    found.sort_by_key(|z| z.config().is_some_and(|c| c.private_zone()));
    match found.first() {
        Some(z) if !z.config().is_some_and(|c| c.private_zone()) => {
            Ok(z.id().trim_start_matches("/hostedzone/").to_owned())
        }
        Some(_) => Err(AwsError::NoHostedZone { zone: zone.to_owned(), private_only: true }),
        None => Err(AwsError::NoHostedZone { zone: zone.to_owned(), private_only: false }),
    }
}

#[cfg(test)]
mod tests {
    use super::tag_values;

    #[test]
    fn zone_names_from_the_query_answer() {
        let xml = "<DescribeAvailabilityZonesResponse><availabilityZoneInfo>\
                   <item><zoneName>eu-west-1a</zoneName><zoneState>available</zoneState></item>\
                   <item><zoneName>eu-west-1b</zoneName></item></availabilityZoneInfo></DescribeAvailabilityZonesResponse>";
        assert_eq!(tag_values(xml, "zoneName"), ["eu-west-1a", "eu-west-1b"]);
        assert!(tag_values(xml, "nothing").is_empty());
    }
}
