//! Release records, kept in the swarm itself (no local state file).
//!
//! A release `N` of stack `S` is a Swarm config `S_berth-release-N` labelled `io.berth.stack=S`,
//! `io.berth.kind=release`, `io.berth.release=N`, whose data is the gzip of a JSON [`ReleaseRecord`]
//! (the desired state with every secret's data removed). Configs are immutable, so a release's
//! outcome is a separate marker config `S_berth-release-N-<status>` (`io.berth.kind=release-status`,
//! `io.berth.status=<status>`).

use crate::api;
use crate::{Engine, EngineError};
use berth_plan::Desired;
use berth_plan::desired::{LABEL_NAMESPACE, LABEL_OWNER};
use bollard::models::ConfigSpec;
use bollard::query_parameters::ListConfigsOptions;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

/// Label with the kind of a berth object that is not part of the stack's file (`release`, `release-status`, `run`).
pub const LABEL_KIND: &str = "io.berth.kind";
/// Label with a release number (on services: the release whose desired state they belong to).
pub const LABEL_RELEASE: &str = "io.berth.release";
/// Label with the status of a release-status marker config.
pub const LABEL_STATUS: &str = "io.berth.status";

/// The outcome of a release, as recorded by its marker config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseStatus {
    /// Converged: every service healthy.
    Ok,
    /// Failed (release command, converge, or timeout); the stack was rolled back if possible.
    Failed,
}

impl ReleaseStatus {
    /// The label/name form (`ok`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Ok => "ok",
            ReleaseStatus::Failed => "failed",
        }
    }
}

/// One release as stored in its config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// Release number, from 1.
    pub number: u64,
    /// When it was recorded (RFC 3339, UTC).
    pub created: String,
    /// The desired state (no secret data).
    pub desired: Desired,
    /// Image of each service (full service name → image as people read it: `name:tag`, with the
    /// first 12 hex digits of the ID or digest it is pinned to; the exact reference is in `desired`).
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    /// The stack files it was deployed from.
    #[serde(default)]
    pub files: Vec<String>,
    /// Status at the time of recording (always absent: see the marker configs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A release as listed: number, creation time and status (from its markers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseInfo {
    /// Release number.
    pub number: u64,
    /// RFC 3339 creation time.
    pub created: String,
    /// `ok`, `failed`, or `None` while it is being deployed (or was interrupted).
    pub status: Option<ReleaseStatus>,
    /// Image of each service.
    pub images: BTreeMap<String, String>,
    /// Whether the stack's services currently carry this release's label (the highest such).
    pub current: bool,
}

/// Name of release `n`'s config.
pub fn release_config_name(stack: &str, n: u64) -> String {
    format!("{stack}_berth-release-{n}")
}

/// True when the error is a 409 conflict (the object exists already).
pub(crate) fn is_conflict(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 409, .. })
        || e.to_string().contains("already exists")
}

/// True when the error is a 404.
pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

/// Labels of a config/secret/service spec, if any.
pub(crate) fn label<'a>(labels: Option<&'a HashMap<String, String>>, key: &str) -> Option<&'a str> {
    labels.and_then(|l| l.get(key)).map(String::as_str)
}

impl Engine {
    async fn release_configs(&self, stack: &str) -> Result<Vec<bollard::models::Config>, EngineError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_OWNER}={stack}")])]);
        self.docker()
            .list_configs(Some(ListConfigsOptions { filters: Some(filters) }))
            .await
            .map_err(api("list configs"))
            .map(|v| {
                v.into_iter()
                    .filter(|c| {
                        matches!(
                            label(c.spec.as_ref().and_then(|s| s.labels.as_ref()), LABEL_KIND),
                            Some("release" | "release-status")
                        )
                    })
                    .collect()
            })
    }

    /// Every release of the stack, oldest first, with its status and whether it is current.
    pub async fn list_releases(&self, stack: &str) -> Result<Vec<ReleaseInfo>, EngineError> {
        let configs = self.release_configs(stack).await?;
        let mut out: BTreeMap<u64, ReleaseInfo> = BTreeMap::new();
        let mut statuses: BTreeMap<u64, ReleaseStatus> = BTreeMap::new();
        for c in &configs {
            let spec = c.spec.as_ref();
            let labels = spec.and_then(|s| s.labels.as_ref());
            let Some(n) = label(labels, LABEL_RELEASE).and_then(|n| n.parse::<u64>().ok()) else { continue };
            match label(labels, LABEL_KIND) {
                Some("release") => {
                    let record = spec.and_then(|s| s.data.as_deref()).and_then(decode_record);
                    out.insert(
                        n,
                        ReleaseInfo {
                            number: n,
                            created: record.as_ref().map(|r| r.created.clone()).unwrap_or_default(),
                            status: None,
                            images: record.map(|r| r.images).unwrap_or_default(),
                            current: false,
                        },
                    );
                }
                Some("release-status") => {
                    let st = match label(labels, LABEL_STATUS) {
                        Some("ok") => ReleaseStatus::Ok,
                        _ => ReleaseStatus::Failed,
                    };
                    // An ok marker wins over a failed one (a failed release finished by a later deploy);
                    // `live` markers say which release is current, not how one ended.
                    if label(labels, LABEL_STATUS) == Some("live") {
                        continue;
                    }
                    let e = statuses.entry(n).or_insert(st);
                    if st == ReleaseStatus::Ok {
                        *e = st;
                    }
                }
                _ => {}
            }
        }
        for (n, st) in statuses {
            if let Some(r) = out.get_mut(&n) {
                r.status = Some(st);
            }
        }
        if let Some(cur) = self.current_release(stack).await?
            && let Some(r) = out.get_mut(&cur)
        {
            r.current = true;
        }
        Ok(out.into_values().collect())
    }

    /// The release the stack is at: the one of the newest `live` marker (written by every
    /// successful deploy and rollback), else the highest `io.berth.release` label of its services.
    pub async fn current_release(&self, stack: &str) -> Result<Option<u64>, EngineError> {
        let observed = self.observe(stack).await?;
        Ok(current_release_of(stack, &observed))
    }

    /// Records that release `n` is now live (after a successful deploy or rollback). One write.
    pub async fn mark_live(&self, stack: &str, n: u64) -> Result<(), EngineError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let labels = HashMap::from([
            (LABEL_OWNER.to_string(), stack.to_string()),
            (LABEL_KIND.to_string(), "release-status".to_string()),
            (LABEL_RELEASE.to_string(), n.to_string()),
            (LABEL_STATUS.to_string(), "live".to_string()),
        ]);
        let spec = ConfigSpec {
            name: Some(format!("{stack}_berth-live-{nanos:024}")),
            labels: Some(labels),
            data: Some(base64_encode(rfc3339_now().as_bytes())),
            templating: None,
        };
        match self.docker().create_config(spec).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(EngineError::Api { call: "create config", source: e }),
        }
    }

    /// Reads release `n` back.
    pub async fn read_release(&self, stack: &str, n: u64) -> Result<ReleaseRecord, EngineError> {
        let name = release_config_name(stack, n);
        let c = self.docker().inspect_config(&name).await.map_err(|e| {
            if is_not_found(&e) {
                EngineError::NotFound { what: "release", name: n.to_string(), suggestion: None }
            } else {
                EngineError::Api { call: "inspect config", source: e }
            }
        })?;
        c.spec.and_then(|s| s.data).as_deref().and_then(decode_record).ok_or_else(|| EngineError::Refused {
            message: format!("release record {name} cannot be read (corrupt or from a newer berth)"),
            hint: None,
        })
    }

    /// Records a new release (number = highest existing + 1) before anything is applied. One write.
    pub async fn record_release(&self, desired: &Desired, files: &[String]) -> Result<ReleaseRecord, EngineError> {
        let stack = desired.stack.as_str();
        let configs = self.release_configs(stack).await?;
        let highest = configs
            .iter()
            .filter_map(|c| label(c.spec.as_ref().and_then(|s| s.labels.as_ref()), LABEL_RELEASE))
            .filter_map(|n| n.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let images = desired
            .services
            .iter()
            .map(|(name, s)| {
                // As people read it; the exact (pinned) reference is in `desired`.
                let img = s
                    .task_template
                    .as_ref()
                    .and_then(|t| t.container_spec.as_ref())
                    .and_then(|c| Some(berth_plan::image_pin::display(c.image.as_deref()?, c.labels.as_ref())))
                    .unwrap_or_default();
                (name.clone(), img)
            })
            .collect();
        let mut number = highest + 1;
        loop {
            let record = ReleaseRecord {
                number,
                created: rfc3339_now(),
                desired: desired.without_secret_data(),
                images: BTreeMap::clone(&images),
                files: files.to_vec(),
                status: None,
            };
            let data = encode_record(&record);
            let labels = HashMap::from([
                (LABEL_OWNER.to_string(), stack.to_string()),
                (LABEL_KIND.to_string(), "release".to_string()),
                (LABEL_RELEASE.to_string(), number.to_string()),
            ]);
            let spec = ConfigSpec {
                name: Some(release_config_name(stack, number)),
                labels: Some(labels),
                data: Some(data),
                templating: None,
            };
            match self.docker().create_config(spec).await {
                Ok(_) => return Ok(record),
                // Another deploy took this number at the same moment: take the next.
                Err(e) if is_conflict(&e) && number < highest + 20 => number += 1,
                Err(e) => return Err(EngineError::Api { call: "create config", source: e }),
            }
        }
    }

    /// Marks release `n` with a status (idempotent: an existing marker is fine). One write.
    pub async fn mark_release(&self, stack: &str, n: u64, status: ReleaseStatus) -> Result<(), EngineError> {
        let labels = HashMap::from([
            (LABEL_OWNER.to_string(), stack.to_string()),
            (LABEL_KIND.to_string(), "release-status".to_string()),
            (LABEL_RELEASE.to_string(), n.to_string()),
            (LABEL_STATUS.to_string(), status.as_str().to_string()),
        ]);
        let spec = ConfigSpec {
            name: Some(format!("{}-{}", release_config_name(stack, n), status.as_str())),
            labels: Some(labels),
            data: Some(base64_encode(rfc3339_now().as_bytes())),
            templating: None,
        };
        match self.docker().create_config(spec).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(EngineError::Api { call: "create config", source: e }),
        }
    }
}

/// The release stack `stack` is at, from an observation that includes every config (as
/// [`Engine::observe`] returns it): the release of the stack's newest `live` marker, else the
/// highest `io.berth.release` label among its services.
pub fn current_release_of(stack: &str, observed: &berth_plan::Observed) -> Option<u64> {
    let prefix = format!("{stack}_berth-live-");
    let live = observed
        .configs
        .iter()
        .filter(|(name, c)| {
            let labels = c.spec.as_ref().and_then(|s| s.labels.as_ref());
            name.starts_with(&prefix)
                && label(labels, LABEL_STATUS) == Some("live")
                && label(labels, LABEL_OWNER) == Some(stack)
        })
        .max_by(|a, b| a.0.cmp(b.0))
        .and_then(|(_, c)| label(c.spec.as_ref()?.labels.as_ref(), LABEL_RELEASE)?.parse::<u64>().ok());
    live.or_else(|| highest_service_label(observed))
}

/// The highest `io.berth.release` label among the observed services of the stack.
pub fn highest_service_label(observed: &berth_plan::Observed) -> Option<u64> {
    observed
        .services
        .values()
        .filter_map(|s| label(s.spec.as_ref().and_then(|s| s.labels.as_ref()), LABEL_RELEASE))
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
}

fn encode_record(r: &ReleaseRecord) -> String {
    let json = serde_json::to_vec(r).unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(&json);
    base64_encode(&gz.finish().unwrap_or_default())
}

fn decode_record(data_base64: &str) -> Option<ReleaseRecord> {
    let bytes = berth_plan::plan::decode_base64(data_base64)?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut json).ok()?;
    serde_json::from_slice(&json).ok()
}

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Now as RFC 3339 UTC with seconds (`2026-11-23T11:17:41Z`).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    rfc3339(secs as i64)
}

/// Seconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Parses RFC 3339 (as the engine writes it: `2026-11-23T11:17:41.123456789Z`, or with an offset)
/// into nanoseconds since the epoch.
pub fn parse_rfc3339_nanos(s: &str) -> Option<i128> {
    let (date, time) = s.split_once('T')?;
    let mut dp = date.split('-');
    let (y, m, d): (i64, u32, u32) = (dp.next()?.parse().ok()?, dp.next()?.parse().ok()?, dp.next()?.parse().ok()?);
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0i64)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (c, sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60))
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut tp = hms.split(':');
    let (hh, mm, ss): (i64, i64, i64) = (tp.next()?.parse().ok()?, tp.next()?.parse().ok()?, tp.next()?.parse().ok()?);
    let mut nanos: i128 = 0;
    for (i, c) in frac.chars().take(9).enumerate() {
        nanos += i128::from(c.to_digit(10)?) * 10i128.pow(8 - i as u32);
    }
    let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset_secs;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether an observed object carries the stack's namespace label (used to tell berth's
/// bookkeeping objects apart).
pub(crate) fn has_namespace(labels: Option<&HashMap<String, String>>, stack: &str) -> bool {
    label(labels, LABEL_NAMESPACE) == Some(stack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{SecretSpec, ServiceSpec};

    #[test]
    fn base64_encode_round_trips_through_plan_decoder() {
        for s in [&b""[..], b"h", b"he", b"hel", b"hello world", &[0u8, 255, 128, 7][..]] {
            let enc = base64_encode(s);
            assert_eq!(berth_plan::plan::decode_base64(&enc).unwrap(), s);
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
    }

    #[test]
    fn rfc3339_formats_and_parses_engine_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        let n = parse_rfc3339_nanos("2026-11-18T11:06:40.5Z").unwrap();
        assert_eq!(n, 1_795_000_000 * 1_000_000_000 + 500_000_000);
        let z = parse_rfc3339_nanos("2026-11-18T12:06:40+01:00").unwrap();
        assert_eq!(z, 1_795_000_000 * 1_000_000_000);
    }

    #[test]
    fn record_without_secret_data_round_trips() {
        let mut d = Desired { stack: "s".into(), ..Default::default() };
        d.secrets.insert(
            "s_k_1".into(),
            SecretSpec { name: Some("s_k_1".into()), data: Some("c2VjcmV0".into()), ..Default::default() },
        );
        d.services.insert("s_web".into(), ServiceSpec { name: Some("s_web".into()), ..Default::default() });
        let r = ReleaseRecord {
            number: 3,
            created: rfc3339_now(),
            desired: d.without_secret_data(),
            images: BTreeMap::new(),
            files: vec!["compose.yaml".into()],
            status: None,
        };
        let enc = encode_record(&r);
        let back = decode_record(&enc).unwrap();
        assert_eq!(back, r);
        assert!(back.desired.secrets["s_k_1"].data.is_none());
        assert!(!serde_json::to_string(&back).unwrap().contains("c2VjcmV0"));
    }
}
