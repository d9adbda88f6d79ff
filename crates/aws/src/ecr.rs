//! ECR login: the account's registry token (valid 12 hours) as a user name and password, what
//! `aws ecr get-login-password` gives. The CLI hands it to the engine's registry credentials for
//! pushes and for the swarm (`X-Registry-Auth`); a new token changes their fingerprint, so every
//! deploy refreshes what the swarm pulls with (docs/images.md, "Registry credentials").

use crate::AwsError;
use aws_types::SdkConfig;

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
}
