//! IMDSv2 (the instance metadata service): a session token by `PUT /latest/api/token`, then
//! `GET /latest/meta-data/...` with it. Plain HTTP/1.1 to a link-local address (or the `--imds`
//! URL in tests), one short connection per request.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The default endpoint.
pub const DEFAULT_URL: &str = "http://169.254.169.254";

#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    #[error("instance metadata service at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("instance metadata {path}: HTTP {status}")]
    Status { path: String, status: u16 },
    #[error("instance metadata URL `{0}` is not http://HOST[:PORT]")]
    BadUrl(String),
}

/// An IMDSv2 client.
#[derive(Debug, Clone)]
pub struct Imds {
    url: String,
    authority: String,
}

impl Imds {
    pub fn new(url: &str) -> Result<Imds, ImdsError> {
        let rest = url.strip_prefix("http://").ok_or_else(|| ImdsError::BadUrl(url.to_string()))?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(ImdsError::BadUrl(url.to_string()));
        }
        let authority = if host.contains(':') { host.to_string() } else { format!("{host}:80") };
        Ok(Imds { url: url.trim_end_matches('/').to_string(), authority })
    }

    async fn request(&self, method: &str, path: &str, header: (&str, &str)) -> Result<(u16, String), ImdsError> {
        let unreachable = |detail: String| ImdsError::Unreachable { url: self.url.clone(), detail };
        let fut = async {
            let mut s = TcpStream::connect(&self.authority).await.map_err(|e| unreachable(e.to_string()))?;
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\n{}: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.authority, header.0, header.1
            );
            s.write_all(req.as_bytes()).await.map_err(|e| unreachable(e.to_string()))?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.map_err(|e| unreachable(e.to_string()))?;
            parse_response(&buf).ok_or_else(|| unreachable("malformed HTTP answer".into()))
        };
        tokio::time::timeout(Duration::from_secs(3), fut).await.map_err(|_| unreachable("timed out".into()))?
    }

    /// A session token (valid 6 hours; asked for again each round, cheap).
    async fn token(&self) -> Result<String, ImdsError> {
        let path = "/latest/api/token";
        let (status, body) = self.request("PUT", path, ("X-aws-ec2-metadata-token-ttl-seconds", "21600")).await?;
        if status != 200 {
            return Err(ImdsError::Status { path: path.into(), status });
        }
        Ok(body.trim().to_string())
    }

    /// The values of `paths` under `/latest/meta-data/` (`None` for a 404: e.g. no public IPv4).
    pub async fn get_all(&self, paths: &[&str]) -> Result<Vec<Option<String>>, ImdsError> {
        let token = self.token().await?;
        let mut out = Vec::new();
        for p in paths {
            let path = format!("/latest/meta-data/{p}");
            let (status, body) = self.request("GET", &path, ("X-aws-ec2-metadata-token", &token)).await?;
            match status {
                200 => out.push(Some(body.trim().to_string())),
                404 => out.push(None),
                s => return Err(ImdsError::Status { path, status: s }),
            }
        }
        Ok(out)
    }
}

/// Status and body of an HTTP/1.x answer (Content-Length, chunked or read to close).
fn parse_response(buf: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status: u16 = head.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Some((status, body.to_string()));
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            break;
        }
        out.push_str(after.get(..n)?);
        rest = after.get(n + 2..)?;
    }
    Some((status, out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_plain_and_chunked_answers() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ni-abc";
        assert_eq!(super::parse_response(plain), Some((200, "i-abc".into())));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ni-a\r\n2\r\nbc\r\n0\r\n\r\n";
        assert_eq!(super::parse_response(chunked), Some((200, "i-abc".into())));
        assert_eq!(super::parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n"), Some((404, String::new())));
        assert!(super::Imds::new("https://x").is_err());
        assert!(super::Imds::new("http://127.0.0.1:9/").is_ok());
    }
}
