//! Web origins (RFC 6454): the `scheme://host[:port]` a permanent peer joined,
//! which its signed `hello` covers (protocol §5.3) and which every URL of a
//! descriptor must be on (§3).
//!
//! One serialisation for both sides: scheme and host in lower case, the
//! default port (80 for http/ws, 443 for https/wss) left out, an IPv6 host in
//! brackets. No path, query, fragment or user info. Only `http` and `https`
//! are origins a swarm can have; [`same_origin`] also maps `ws`→`http` and
//! `wss`→`https`, because the signaling WebSocket lives on the site's origin.

use crate::limits::MAX_URL_LEN;

/// Why a URL has no origin Tuber accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OriginError {
    /// Longer than [`MAX_URL_LEN`].
    #[error("the URL is longer than {MAX_URL_LEN} bytes")]
    TooLong,
    /// No `scheme://`, or a scheme other than the ones allowed.
    #[error("the scheme must be http or https")]
    Scheme,
    /// No host, a malformed one, or user info (`user@host`).
    #[error("the URL names no valid host")]
    Host,
    /// A port that is not a number in 1–65535.
    #[error("the port is not a number in 1-65535")]
    Port,
}

/// The origin scheme of a URL (ws counts as http, wss as https) and the rest.
fn split_scheme(url: &str) -> Result<(&'static str, &str), OriginError> {
    let (scheme, rest) = url.split_once("://").ok_or(OriginError::Scheme)?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        _ => return Err(OriginError::Scheme),
    };
    Ok((scheme, rest))
}

/// The origin of an `http(s)://` URL, serialised as described above.
pub fn origin_of(url: &str) -> Result<String, OriginError> {
    if url.len() > MAX_URL_LEN {
        return Err(OriginError::TooLong);
    }
    let given = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(given.as_deref(), Some("http" | "https")) {
        return Err(OriginError::Scheme);
    }
    let (scheme, rest) = split_scheme(url)?;
    serialise(scheme, rest)
}

/// Whether `url` (http, https, ws or wss) is on `origin` (as [`origin_of`]
/// gives it), with ws/wss counting as http/https.
pub fn same_origin(url: &str, origin: &str) -> bool {
    if url.len() > MAX_URL_LEN {
        return false;
    }
    split_scheme(url)
        .and_then(|(scheme, rest)| serialise(scheme, rest))
        .is_ok_and(|o| o == origin)
}

fn serialise(scheme: &str, rest: &str) -> Result<String, OriginError> {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains(['@', '\\']) {
        return Err(OriginError::Host);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inner, after) = v6.split_once(']').ok_or(OriginError::Host)?;
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(OriginError::Host);
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(OriginError::Host)?),
        };
        (format!("[{}]", inner.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_';
        if host.is_empty() || !host.bytes().all(ok) {
            return Err(OriginError::Host);
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => {
            if !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 5 {
                return Err(OriginError::Port);
            }
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(OriginError::Port),
                Ok(n) => Some(n),
            }
        }
    };
    let default = if scheme == "https" { 443 } else { 80 };
    Ok(match port {
        Some(p) if p != default => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_serialised_one_way() {
        for (url, want) in [
            ("https://Video.Example.org/", "https://video.example.org"),
            (
                "https://video.example.org:443/x?y#z",
                "https://video.example.org",
            ),
            ("HTTP://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://localhost:80/", "http://localhost"),
            ("https://[::1]:8443/a", "https://[::1]:8443"),
            ("https://[FE80::1]/", "https://[fe80::1]"),
            ("http://hub.example.org:/", "http://hub.example.org"),
        ] {
            assert_eq!(origin_of(url).as_deref(), Ok(want), "{url}");
        }
    }

    #[test]
    fn what_is_no_origin_is_refused() {
        for (url, err) in [
            ("ftp://x/", OriginError::Scheme),
            ("wss://x/", OriginError::Scheme),
            ("video.example.org", OriginError::Scheme),
            ("https:///x", OriginError::Host),
            ("https://user@evil.example/", OriginError::Host),
            ("https://evil.example\\@good.example/", OriginError::Host),
            ("https://[::1/", OriginError::Host),
            ("https://a b/", OriginError::Host),
            ("https://x:0/", OriginError::Port),
            ("https://x:65536/", OriginError::Port),
            ("https://x:+1/", OriginError::Port),
        ] {
            assert_eq!(origin_of(url), Err(err), "{url}");
        }
        let long = format!("https://x/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(origin_of(&long), Err(OriginError::TooLong));
    }

    #[test]
    fn websockets_are_on_the_sites_origin() {
        let o = "https://video.example.org";
        assert!(same_origin("wss://video.example.org/.tuber/ws", o));
        assert!(same_origin(
            "https://VIDEO.example.org:443/.tuber/piece/",
            o
        ));
        assert!(!same_origin("ws://video.example.org/.tuber/ws", o));
        assert!(!same_origin("wss://video.example.org:8443/.tuber/ws", o));
        assert!(!same_origin("https://cdn.example.org/.tuber/manifest", o));
        assert!(!same_origin("https://video.example.org.evil.example/", o));
        assert!(!same_origin("https://video.example.org@evil.example/", o));
    }
}
