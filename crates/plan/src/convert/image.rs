//! Image references normalised like the Docker client does before `POST /services/create`:
//! `reference.FamiliarString(reference.TagNameOnly(reference.ParseNormalizedNamed(image)))`.
//!
//! `nginx` → `nginx:latest`, `docker.io/library/redis` → `redis:latest`,
//! `index.docker.io/foo/bar:1` → `foo/bar:1`, digests kept. A reference that does not parse is
//! sent unchanged (the daemon then rejects it, as it does for `docker stack deploy`).

/// The image string `docker stack deploy` sends for `image` (see the module docs).
pub fn normalize_image(image: &str) -> String {
    parse_normalized(image).map(|r| r.familiar_with_default_tag()).unwrap_or_else(|| image.to_string())
}

struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    fn familiar_with_default_tag(&self) -> String {
        let mut out = if self.domain == "docker.io" {
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            format!("{}/{}", self.domain, self.path)
        };
        match (&self.tag, &self.digest) {
            (None, None) => out.push_str(":latest"),
            (tag, digest) => {
                if let Some(t) = tag {
                    out.push(':');
                    out.push_str(t);
                }
                if let Some(d) = digest {
                    out.push('@');
                    out.push_str(d);
                }
            }
        }
        out
    }
}

fn parse_normalized(s: &str) -> Option<Reference> {
    // A bare 64-hex string is an image ID, not a reference.
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let (domain, remainder) = split_docker_domain(s);
    let remote = match remainder.find(':') {
        Some(i) => &remainder[..i],
        None => remainder.as_str(),
    };
    if remote.to_lowercase() != remote {
        return None;
    }
    parse(&format!("{domain}/{remainder}"))
}

fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first {
                ("docker.io".to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => ("docker.io".to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = "docker.io".into();
    }
    if domain == "docker.io" && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    (domain, remainder)
}

/// `reference.Parse` on `domain/path[:tag][@digest]`.
fn parse(s: &str) -> Option<Reference> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest
        && !valid_digest(d)
    {
        return None;
    }
    // The tag follows the last ':' after the last '/'.
    let slash = rest.rfind('/').unwrap_or(0);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag
        && !valid_tag(t)
    {
        return None;
    }
    if name.len() > 255 {
        return None;
    }
    let (domain, path) = name.split_once('/')?;
    if !valid_domain(domain) || path.is_empty() || !path.split('/').all(valid_component) {
        return None;
    }
    Some(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// Host (`[a-zA-Z0-9-]` labels joined by '.', or a bracketed IPv6) with an optional `:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, after)) => {
                if ip.is_empty() || !ip.bytes().all(|x| x.is_ascii_hexdigit() || x == b':' || x == b'.') {
                    return false;
                }
                match after {
                    "" => return true,
                    p => {
                        return p
                            .strip_prefix(':')
                            .is_some_and(|p| !p.is_empty() && p.bytes().all(|x| x.is_ascii_digit()));
                    }
                }
            }
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|x| x.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty() && b.len() <= 128 && word(b[0]) && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else { return false };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|x| x.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_get_the_tag_and_short_name_the_docker_client_sends() {
        let cases = [
            ("redis", "redis:latest"),
            ("redis:7", "redis:7"),
            ("docker.io/library/redis", "redis:latest"),
            ("index.docker.io/foo/bar:1", "foo/bar:1"),
            ("library/redis:alpine", "redis:alpine"),
            ("dockersamples/examplevotingapp_vote", "dockersamples/examplevotingapp_vote:latest"),
            ("registry:5000/alpine:frozen", "registry:5000/alpine:frozen"),
            ("localhost/app", "localhost/app:latest"),
            ("ghcr.io/a/b/c", "ghcr.io/a/b/c:latest"),
            ("[::1]:5000/x", "[::1]:5000/x:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_image(input), want, "{input}");
        }
    }

    #[test]
    fn digests_are_kept_without_adding_latest() {
        let d = "busybox@sha256:38a203e1986cf79639cfb9b2e1d6e773de84002feea2d4eb006b52004ee8502d";
        assert_eq!(normalize_image(d), d);
        let td = "redis:7@sha256:38a203e1986cf79639cfb9b2e1d6e773de84002feea2d4eb006b52004ee8502d";
        assert_eq!(normalize_image(td), td);
    }

    #[test]
    fn invalid_references_are_sent_unchanged() {
        for bad in ["Redis", "", "a b", "redis:", "-x/y", "${IMAGE}"] {
            assert_eq!(normalize_image(bad), bad, "{bad}");
        }
    }
}
