//! Swarm discovery through S3 (docs/aws.md, "The agent"): the objects the agents on a cluster's
//! instances read and write in the stack's discovery bucket, and the calls that do it.
//!
//! - `swarm/state.json` ([`SwarmState`]): written by the leader's agent; read by the other agents
//!   (whom to join) and by the CLI (which managers to deploy through).
//! - `swarm/token-manager`, `swarm/token-worker`: the join tokens (server-side encrypted; never
//!   logged: [`Token`]'s `Debug` hides the value).
//! - `swarm/members/<instance-id>.json` ([`Member`]): written by each instance's agent: which swarm
//!   node it is, its addresses, and whether it is leaving (a termination notice) or has left.

use crate::AwsError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use serde::{Deserialize, Serialize};

/// The berth binary instances fetch at boot.
pub const BINARY_KEY: &str = "agent/berth";
/// The swarm's state, written by the leader.
pub const STATE_KEY: &str = "swarm/state.json";
/// The manager join token.
pub const TOKEN_MANAGER_KEY: &str = "swarm/token-manager";
/// The worker join token.
pub const TOKEN_WORKER_KEY: &str = "swarm/token-worker";
/// Member records, one per instance: `swarm/members/<instance-id>.json`.
pub const MEMBERS_PREFIX: &str = "swarm/members/";

/// `swarm/state.json`: the swarm and its managers, as the leader's agent last saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmState {
    pub swarm_id: String,
    /// RFC 3339, when the leader wrote it.
    #[serde(default)]
    pub updated_at: String,
    /// Managers that are ready, reachable and not leaving, ordered by instance ID.
    #[serde(default)]
    pub managers: Vec<ManagerEntry>,
    /// Instances that are leaving and whose node the leader has drained (no task left on it, none
    /// waiting to start elsewhere): their agents may leave the swarm now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drained: Vec<String>,
}

impl SwarmState {
    /// The same state with `updated_at` cleared (to compare content).
    pub fn without_time(&self) -> SwarmState {
        SwarmState { updated_at: String::new(), ..self.clone() }
    }
}

/// One manager in `swarm/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ManagerEntry {
    pub instance_id: String,
    pub node_id: String,
    pub private_ip: String,
    /// Empty when the instance has no public address.
    #[serde(default)]
    pub public_ip: String,
    #[serde(default)]
    pub zone: String,
    /// The instance's SSH host public keys (`type base64`, from `/etc/ssh/ssh_host_*_key.pub`):
    /// what the CLI checks the host against instead of trusting it on first use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_host_keys: Vec<String>,
}

/// The swarm role an instance's agent is started with (`--role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `swarm/members/<instance-id>.json`: written by the instance's own agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub instance_id: String,
    pub role: Option<Role>,
    /// The swarm node ID (empty before the instance joined).
    #[serde(default)]
    pub node_id: String,
    pub private_ip: String,
    #[serde(default)]
    pub public_ip: String,
    #[serde(default)]
    pub zone: String,
    /// Unix time (seconds) at which the agent saw the termination notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaving_since: Option<u64>,
    /// The node left the swarm and the lifecycle action was completed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
    /// The instance's SSH host public keys (`type base64`, from `/etc/ssh/ssh_host_*_key.pub`):
    /// what the CLI checks the host against instead of trusting it on first use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_host_keys: Vec<String>,
}

/// A join token. Its `Debug` never shows the value; [`Token::expose`] is the only way to it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Token {
        Token(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Both join tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTokens {
    pub manager: Token,
    pub worker: Token,
}

impl JoinTokens {
    pub fn for_role(&self, role: Role) -> &Token {
        match role {
            Role::Manager => &self.manager,
            Role::Worker => &self.worker,
        }
    }
}

/// The discovery bucket.
#[derive(Debug, Clone)]
pub struct Discovery {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Discovery {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Discovery {
        Discovery { s3, bucket: bucket.into() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// An object's bytes; `None` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        match self.s3.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| AwsError::Other(format!("s3:GetObject {key}: reading the body: {e}")))?;
                Ok(Some(body.into_bytes().to_vec()))
            }
            Err(e) => {
                let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key());
                let err = AwsError::api("s3:GetObject", e);
                if missing || err.code() == Some("NoSuchKey") { Ok(None) } else { Err(err) }
            }
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), AwsError> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| AwsError::api("s3:PutObject", e))?;
        Ok(())
    }

    /// `swarm/state.json`; `None` when no leader wrote it yet.
    pub async fn state(&self) -> Result<Option<SwarmState>, AwsError> {
        let Some(bytes) = self.get(STATE_KEY).await? else { return Ok(None) };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AwsError::Other(format!("s3://{}/{STATE_KEY} is not a swarm state: {e}", self.bucket)))
    }

    pub async fn put_state(&self, state: &SwarmState) -> Result<(), AwsError> {
        let body = serde_json::to_vec_pretty(state).expect("serialisable");
        self.put(STATE_KEY, body, "application/json").await
    }

    /// Both join tokens; `None` unless both are there.
    pub async fn tokens(&self) -> Result<Option<JoinTokens>, AwsError> {
        let manager = self.get(TOKEN_MANAGER_KEY).await?;
        let worker = self.get(TOKEN_WORKER_KEY).await?;
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).trim().to_string();
        Ok(match (manager, worker) {
            (Some(m), Some(w)) if !m.is_empty() && !w.is_empty() => {
                Some(JoinTokens { manager: Token(text(m)), worker: Token(text(w)) })
            }
            _ => None,
        })
    }

    pub async fn put_tokens(&self, tokens: &JoinTokens) -> Result<(), AwsError> {
        self.put(TOKEN_MANAGER_KEY, tokens.manager.0.clone().into_bytes(), "text/plain").await?;
        self.put(TOKEN_WORKER_KEY, tokens.worker.0.clone().into_bytes(), "text/plain").await
    }

    /// Every member record (unreadable ones are skipped: a half-written record is rewritten by
    /// its agent on its next round).
    pub async fn members(&self) -> Result<Vec<Member>, AwsError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(MEMBERS_PREFIX)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::api("s3:ListObjectsV2", e))?;
            keys.extend(out.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        let mut members = Vec::new();
        for key in keys.iter().filter(|k| k.ends_with(".json")) {
            if let Some(bytes) = self.get(key).await?
                && let Ok(m) = serde_json::from_slice::<Member>(&bytes)
            {
                members.push(m);
            }
        }
        members.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(members)
    }

    /// This instance's member record.
    pub async fn member(&self, instance_id: &str) -> Result<Option<Member>, AwsError> {
        let key = format!("{MEMBERS_PREFIX}{instance_id}.json");
        Ok(self.get(&key).await?.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    pub async fn put_member(&self, member: &Member) -> Result<(), AwsError> {
        let key = format!("{MEMBERS_PREFIX}{}.json", member.instance_id);
        self.put(&key, serde_json::to_vec_pretty(member).expect("serialisable"), "application/json").await
    }
}

/// RFC 3339 (UTC, seconds) of a Unix time, for `updated_at`.
pub fn rfc3339(unix_secs: u64) -> String {
    aws_smithy_types::DateTime::from_secs(unix_secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_json_has_the_contract_shape() {
        let s = SwarmState {
            swarm_id: "abc".into(),
            updated_at: rfc3339(1_764_000_000),
            managers: vec![ManagerEntry {
                instance_id: "i-1".into(),
                node_id: "n1".into(),
                private_ip: "10.0.1.5".into(),
                public_ip: "203.0.113.7".into(),
                zone: "eu-west-1a".into(),
                ssh_host_keys: vec![],
            }],
            drained: vec![],
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"swarm_id": "abc", "updated_at": "2025-11-24T16:00:00Z",
                "managers": [{"instance_id": "i-1", "node_id": "n1", "private_ip": "10.0.1.5",
                              "public_ip": "203.0.113.7", "zone": "eu-west-1a"}]})
        );
        let back: SwarmState = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn tokens_never_show_in_debug() {
        let t = JoinTokens { manager: Token::new("SWMTKN-1-secret-m"), worker: Token::new("SWMTKN-1-secret-w") };
        let s = format!("{t:?}");
        assert!(!s.contains("SWMTKN"), "{s}");
    }
}
