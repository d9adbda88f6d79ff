//! ECR login: the account's registry token (valid 12 hours) as a user name and password, what
//! `aws ecr get-login-password` gives. The CLI hands it to the engine's registry credentials for
//! pushes and for the swarm (`X-Registry-Auth`); a new token changes their fingerprint, so the
//! deploy that uses it refreshes what the swarm pulls with (docs/images.md, "Registry credentials").
//!
//! ECR hands out a new token at every call. The CLI keeps the one it got ([`login_cached`], a file
//! only its user can read) and uses it again while it has more than half its life left, like
//! Amazon's credential helper does: otherwise every `plan` would show each ECR service's
//! fingerprint label changed, and `plan --detailed-exitcode` would never say "no change".

use crate::AwsError;
use aws_types::SdkConfig;
use std::path::Path;

/// One ECR registry's login. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct EcrLogin {
    /// Registry host, `<account>.dkr.ecr.<region>.amazonaws.com` (no scheme).
    pub registry: String,
    pub username: String,
    pub password: String,
    /// When the token expires (seconds since the Unix epoch), if ECR said.
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for EcrLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcrLogin")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"(hidden)")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `GetAuthorizationToken` for the account's registry in the configured region.
pub async fn login(conf: &SdkConfig) -> Result<EcrLogin, AwsError> {
    let out = aws_sdk_ecr::Client::new(conf)
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| AwsError::api("ecr:GetAuthorizationToken", e))?;
    let data = out.authorization_data().first().ok_or_else(|| no_token("ECR returned no authorization data"))?;
    let token = data.authorization_token().ok_or_else(|| no_token("ECR returned no token"))?;
    let endpoint = data.proxy_endpoint().ok_or_else(|| no_token("ECR returned no registry endpoint"))?;
    parse(token, endpoint, data.expires_at().map(|t| t.secs()))
}

/// Seconds a cached token must still be valid to be used again: half of ECR's 12 hours.
pub const CACHE_MIN_LEFT: i64 = 6 * 3600;

/// [`login`], reusing the token cached in `dir` under `key` while it is valid for more than
/// [`CACHE_MIN_LEFT`] seconds; a new token is cached there (the directory 0700, the file 0600).
/// The cache is a convenience: when it cannot be read or written, this is just [`login`].
pub async fn login_cached(conf: &SdkConfig, dir: &Path, key: &str) -> Result<EcrLogin, AwsError> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    if let Some(l) = cache_load(dir, key, now) {
        return Ok(l);
    }
    let l = login(conf).await?;
    let _ = cache_store(dir, key, &l);
    Ok(l)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    registry: String,
    username: String,
    password: String,
    expires_at: i64,
}

fn cache_file(dir: &Path, key: &str) -> std::path::PathBuf {
    use sha2::Digest;
    let h = sha2::Sha256::digest(key.as_bytes());
    dir.join(format!("ecr-{}.json", h[..8].iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

fn cache_load(dir: &Path, key: &str, now: i64) -> Option<EcrLogin> {
    let c: Cached = serde_json::from_slice(&std::fs::read(cache_file(dir, key)).ok()?).ok()?;
    (c.expires_at - now > CACHE_MIN_LEFT).then_some(EcrLogin {
        registry: c.registry,
        username: c.username,
        password: c.password,
        expires_at: Some(c.expires_at),
    })
}

fn cache_store(dir: &Path, key: &str, l: &EcrLogin) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    // A token without an expiry is not kept: there is no telling when it stops working.
    let Some(expires_at) = l.expires_at else { return Ok(()) };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let c =
        Cached { registry: l.registry.clone(), username: l.username.clone(), password: l.password.clone(), expires_at };
    let path = cache_file(dir, key);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(&serde_json::to_vec(&c).map_err(std::io::Error::other)?)?;
    drop(f);
    std::fs::rename(&tmp, &path)
}

fn no_token(message: &str) -> AwsError {
    AwsError::Api { op: "ecr:GetAuthorizationToken", code: None, message: message.into() }
}

/// The token is base64 of `AWS:<password>`; the endpoint `https://<registry host>`.
fn parse(token: &str, endpoint: &str, expires_at: Option<i64>) -> Result<EcrLogin, AwsError> {
    let decoded = aws_smithy_types::base64::decode(token).map_err(|_| no_token("the ECR token is not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| no_token("the ECR token is not text"))?;
    let (username, password) = text.split_once(':').ok_or_else(|| no_token("the ECR token is not user:password"))?;
    let registry = endpoint.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
    Ok(EcrLogin { registry: registry.into(), username: username.into(), password: password.into(), expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_and_endpoint_become_a_login_that_hides_its_password() {
        let token = aws_smithy_types::base64::encode("AWS:s3cr3t-token");
        let l = parse(&token, "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", Some(1)).unwrap();
        assert_eq!(l.registry, "123456789012.dkr.ecr.eu-west-1.amazonaws.com");
        assert_eq!((l.username.as_str(), l.password.as_str()), ("AWS", "s3cr3t-token"));
        assert!(!format!("{l:?}").contains("s3cr3t"));
        assert!(parse("not base64!", "https://x", None).is_err());
    }

    /// Regression: every `plan` against an AWS target showed each ECR service changed, because
    /// each run logged in again and ECR hands out a new token at every call.
    #[test]
    fn a_cached_token_is_used_again_while_it_has_more_than_half_its_life_left() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let now = 1_000_000;
        let login = |exp| EcrLogin {
            registry: "1.dkr.ecr.eu-west-1.amazonaws.com".into(),
            username: "AWS".into(),
            password: "s3cr3t".into(),
            expires_at: Some(exp),
        };
        cache_store(&dir, "eu-west-1 default", &login(now + 12 * 3600)).unwrap();
        assert_eq!(cache_load(&dir, "eu-west-1 default", now), Some(login(now + 12 * 3600)));
        // Another region, profile or endpoint: another entry.
        assert_eq!(cache_load(&dir, "eu-west-2 default", now), None);
        // Half its life gone: a new token is fetched.
        assert_eq!(cache_load(&dir, "eu-west-1 default", now + 6 * 3600), None);
        // Only the user can read it.
        let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        // No expiry: not kept.
        let mut no_exp = login(0);
        no_exp.expires_at = None;
        cache_store(&dir, "x", &no_exp).unwrap();
        assert_eq!(cache_load(&dir, "x", now), None);
    }
}
