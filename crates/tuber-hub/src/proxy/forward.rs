//! Header work of forwarding, as pure functions: what the upstream is sent
//! and what of its answer the client gets.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Uri, Version};

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus the ones HTTP/1.1 proxies
/// conventionally treat the same way; they describe one connection, not
/// the message, so they never cross the proxy.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Content codings the proxy can undo when it rewrites a page; see
/// [`upstream_request`].
const DECODABLE_CODINGS: &str = "gzip, deflate, br";

/// Everything the request builder needs to know about the hub and upstream.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `http` or `https`: how the upstream is reached.
    pub scheme: http::uri::Scheme,
    /// `host[:port]` of the upstream, sent as `Host` (and, for `https`,
    /// the name its certificate must carry).
    pub authority: http::uri::Authority,
    /// The upstream's origin as made by [`origin_key`].
    pub origin: String,
    /// `http` or `https`: how browsers reach the hub.
    pub forwarded_proto: &'static str,
}

/// `scheme://host[:port]`, lowercased and without a default port, so two
/// spellings of one origin compare equal.
pub fn origin_key(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    Some(match uri.port_u16() {
        Some(port) if port != default => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Removes hop-by-hop headers: the fixed list and every header that
/// `Connection` names.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Whether the request asks to switch to WebSocket (RFC 6455 §4.1).
pub(crate) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
        });
    upgrade && has_token(headers, header::CONNECTION, "upgrade")
}

fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Turns the client's request head into the upstream's: same method, path
/// and end-to-end headers; `Host` of the upstream; `X-Forwarded-*` added;
/// upgrade headers kept when `upgrade` (a WebSocket handshake).
pub(crate) fn upstream_request(
    parts: &mut Parts,
    target: &Target,
    client_addr: Option<SocketAddr>,
    trusted: &super::trust::TrustedProxies,
    upgrade: bool,
) -> Result<(), http::Error> {
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    let forwarded_host = parts.headers.get(header::HOST).cloned().or_else(|| {
        let authority = parts.uri.authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    });
    let upgrade_value = parts.headers.get(header::UPGRADE).cloned();

    parts.uri = Uri::builder()
        .scheme(target.scheme.clone())
        .authority(target.authority.clone())
        .path_and_query(path)
        .build()?;
    // The upstream is spoken to in HTTP/1.1 whatever the browser used.
    parts.version = Version::HTTP_11;

    let headers = &mut parts.headers;
    remove_hop_by_hop(headers);
    // The hub already answered any `100-continue` itself.
    headers.remove(header::EXPECT);
    headers.insert(
        header::HOST,
        HeaderValue::from_str(target.authority.as_str())?,
    );
    if let Some(host) = forwarded_host {
        headers.insert("x-forwarded-host", host);
    }
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(target.forwarded_proto),
    );
    // A client's own forwarding headers are claims about other addresses:
    // passed on from a trusted reverse proxy only.
    if !client_addr.is_some_and(|a| trusted.trusts(a.ip())) {
        headers.remove("x-forwarded-for");
        headers.remove(header::FORWARDED);
    }
    if let Some(addr) = client_addr {
        append_forwarded_for(headers, addr);
    }
    if upgrade {
        if let Some(value) = upgrade_value {
            headers.insert(header::UPGRADE, value);
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    }
    // A page must be decodable to get the script: for requests that want
    // HTML, offer only the codings the rewriter can undo.
    if accepts_html(headers) && headers.contains_key(header::ACCEPT_ENCODING) {
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static(DECODABLE_CODINGS),
        );
    }
    Ok(())
}

/// Appends the client's IP to `X-Forwarded-For` (one header, comma list).
fn append_forwarded_for(headers: &mut HeaderMap, addr: SocketAddr) {
    let mut list: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    list.push(addr.ip().to_string());
    if let Ok(value) = HeaderValue::from_str(&list.join(", ")) {
        headers.insert("x-forwarded-for", value);
    }
}

/// Whether the client's `Accept` mentions HTML (a navigation or a page).
pub(crate) fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("html"))
}

/// Rewrites an absolute `Location` that points at the upstream so that the
/// browser stays on the hub: to `public_origin` when known, else to the
/// path alone (which resolves against whatever host the browser used).
pub(crate) fn rewrite_location(
    headers: &mut HeaderMap,
    upstream_origin: &str,
    public_origin: Option<&str>,
) {
    let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let (without_fragment, fragment) = match location.find('#') {
        Some(i) => location.split_at(i),
        None => (location, ""),
    };
    let Ok(uri) = without_fragment.parse::<Uri>() else {
        return;
    };
    if origin_key(&uri).as_deref() != Some(upstream_origin) {
        return;
    }
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let rewritten = format!("{}{path}{fragment}", public_origin.unwrap_or(""));
    if let Ok(value) = HeaderValue::from_str(&rewritten) {
        headers.insert(header::LOCATION, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_without_default_ports() {
        let key = |s: &str| origin_key(&s.parse().unwrap());
        assert_eq!(key("http://EXAMPLE.org:80/x"), key("http://example.org"));
        assert_eq!(key("https://a:8443/").as_deref(), Some("https://a:8443"));
        assert_eq!(key("/relative"), None);
    }

    #[test]
    fn connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "close, X-Secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn locations() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LOCATION,
            "http://127.0.0.1:9/a?b#c".parse().unwrap(),
        );
        rewrite_location(&mut h, "http://127.0.0.1:9", Some("https://hub.example"));
        assert_eq!(h[header::LOCATION], "https://hub.example/a?b#c");
        h.insert(header::LOCATION, "http://127.0.0.1:9/a".parse().unwrap());
        rewrite_location(&mut h, "http://127.0.0.1:9", None);
        assert_eq!(h[header::LOCATION], "/a");
        h.insert(header::LOCATION, "https://elsewhere/a".parse().unwrap());
        rewrite_location(&mut h, "http://127.0.0.1:9", None);
        assert_eq!(h[header::LOCATION], "https://elsewhere/a");
    }
}
