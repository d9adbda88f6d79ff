//! The custom formats of docker/cli's schema: `ports` (go-connections `nat.ParsePortSpec`) and
//! `duration` (Go's `time.ParseDuration`). Hand-written parsers: no regex, no allocation.

use std::net::IpAddr;

/// Checks a port spec like `127.0.0.1:8000-8005:80-85/udp`; `Err` says what is wrong.
pub(crate) fn check_port_spec(raw: &str) -> Result<(), String> {
    let (ip, host_port, container) = split_parts(raw);
    let (proto, container) = split_proto_port(container);
    let mut ip = ip;
    if ip.starts_with('[') {
        // Go: net.SplitHostPort(ip + ":") — a bracketed IPv6 address and nothing else.
        match ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) if !inner.contains(['[', ']']) => ip = inner,
            _ => return Err(format!("`{ip}` is not an IP address")),
        }
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(format!("`{ip}` is not an IP address"));
    }
    if container.is_empty() {
        return Err("no container port given".into());
    }
    let (start, end) = parse_port_range(container).map_err(|e| format!("invalid container port `{container}`: {e}"))?;
    if !host_port.is_empty() {
        let (hstart, hend) =
            parse_port_range(host_port).map_err(|e| format!("invalid published port `{host_port}`: {e}"))?;
        if end - start != hend - hstart && end != start {
            return Err(format!("the port ranges `{host_port}` and `{container}` have different lengths"));
        }
    }
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("unknown protocol `{proto}`"));
    }
    Ok(())
}

/// Checks a port given as a number, the way docker/cli formats it before parsing (`big.Rat`
/// numerator: `8000.0` is `8000`, `0.5` is `1`).
pub(crate) fn check_port_number(n: f64) -> Result<(), String> {
    let bad = || Err("ports are numbers from 0 to 65535".to_string());
    if !n.is_finite() || n < 0.0 {
        return bad();
    }
    let mut x = n;
    for _ in 0..1100 {
        if x.fract() == 0.0 {
            return if x <= 65535.0 { Ok(()) } else { bad() };
        }
        x *= 2.0;
    }
    bad()
}

fn split_parts(raw: &str) -> (&str, &str, &str) {
    let n = raw.matches(':').count() + 1;
    match n {
        1 => ("", "", raw),
        2 => {
            let (a, b) = raw.split_once(':').unwrap_or((raw, ""));
            ("", a, b)
        }
        _ => {
            let (rest, container) = raw.rsplit_once(':').unwrap_or(("", raw));
            let (ip, host) = rest.rsplit_once(':').unwrap_or(("", rest));
            (ip, host, container)
        }
    }
}

fn split_proto_port(raw: &str) -> (&str, &str) {
    let mut parts = raw.split('/');
    let port = parts.next().unwrap_or("");
    if raw.is_empty() || port.is_empty() {
        return ("", "");
    }
    match parts.next() {
        None | Some("") => ("tcp", port),
        Some(proto) => (proto, port),
    }
}

fn parse_port_range(ports: &str) -> Result<(u32, u32), String> {
    if ports.is_empty() {
        return Err("empty".into());
    }
    let Some((a, rest)) = ports.split_once('-') else {
        let p = parse_u16(ports)?;
        return Ok((p, p));
    };
    let b = rest.split('-').next().unwrap_or("");
    let (start, end) = (parse_u16(a)?, parse_u16(b)?);
    if end < start {
        return Err("the range ends before it starts".into());
    }
    Ok((start, end))
}

fn parse_u16(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a number"));
    }
    match s.parse::<u32>() {
        Ok(n) if n <= 65535 => Ok(n),
        _ => Err(format!("`{s}` is above 65535")),
    }
}

/// Checks a Go duration (`1m30s`, `500ms`, `-1.5h`, `0`).
pub(crate) fn check_duration(orig: &str) -> Result<(), String> {
    let invalid = || Err("expected a number followed by a unit".to_string());
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next()
        && (c == '-' || c == '+')
    {
        neg = c == '-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(());
    }
    if s.is_empty() {
        return invalid();
    }
    const LIMIT: u128 = 1 << 63;
    let mut total: u128 = 0;
    while !s.is_empty() {
        let b = s.as_bytes()[0];
        if !(b == b'.' || b.is_ascii_digit()) {
            return invalid();
        }
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut whole: u128 = 0;
        for d in s[..int_len].bytes() {
            whole = whole * 10 + u128::from(d - b'0');
            if whole > LIMIT {
                return Err("it is longer than about 292 years".to_string());
            }
        }
        s = &s[int_len..];
        let mut frac_digits = "";
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_digits = &rest[..n];
            s = &rest[n..];
            if int_len == 0 && n == 0 {
                return invalid();
            }
        }
        let unit_len = s.bytes().take_while(|b| *b != b'.' && !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err("a unit is missing".into());
        }
        let unit: u128 = match &s[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            u => return Err(format!("unknown unit `{u}`")),
        };
        s = &s[unit_len..];
        let mut value = whole * unit;
        if value > LIMIT {
            return Err("it is longer than about 292 years".to_string());
        }
        // Fraction: Go keeps up to ~19 significant digits; enough for range checks.
        let (mut f, mut scale) = (0u128, 1u128);
        for d in frac_digits.bytes().take(18) {
            f = f * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        value += f * unit / scale;
        total += value;
        if total > LIMIT {
            return Err("it is longer than about 292 years".to_string());
        }
    }
    if !neg && total > LIMIT - 1 {
        return Err("it is longer than about 292 years".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_follow_nat_parse_port_spec() {
        for ok in [
            "80",
            "0",
            "8000:8000",
            "8001-8005",
            "8000-9000:80",
            "[::1]:8080:8000",
            "127.0.0.1:8000:8000/udp",
            "1.2.3.4::80",
            "::80",
            "80/sctp",
            "80/TCP",
            "80/",
            "80-81-82",
            "8000:80/tcp/x",
        ] {
            assert!(check_port_spec(ok).is_ok(), "{ok}: {:?}", check_port_spec(ok));
        }
        for bad in [
            "8000:8000/http",
            "-1",
            "65536",
            "invalid",
            "12345678:8000:8000/tcp",
            "8005-8000:8005-8000",
            "8006-8000:8005-8000",
            "",
            "/tcp",
            "a:b:80:80",
            "8000-8010:80-81",
            "1e3",
            "8000:80/tcp:x",
        ] {
            assert!(check_port_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_numbers_use_the_rational_numerator() {
        assert!(check_port_number(8000.0).is_ok());
        assert!(check_port_number(0.5).is_ok());
        assert!(check_port_number(70000.5).is_err());
        assert!(check_port_number(-1.0).is_err());
        assert!(check_port_number(70000.0).is_err());
    }

    #[test]
    fn durations_follow_go_parse_duration() {
        for ok in ["0", "-0", "10s", "1m30s", "1.5h", ".5s", "5.s", "-1ms", "+3us", "3\u{b5}s", "2562047h"] {
            assert!(check_duration(ok).is_ok(), "{ok}");
        }
        for bad in ["", "10", "10x", "s", ".s", "1.2.3s", "-", "2562048h", "1 s", "10S"] {
            assert!(check_duration(bad).is_err(), "{bad}");
        }
    }
}
