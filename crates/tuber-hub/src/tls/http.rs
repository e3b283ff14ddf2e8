//! The plain-HTTP listener of a hub that terminates TLS: answers ACME
//! HTTP-01 challenges for tokens the hub itself is waiting on, and
//! redirects everything else to the same path and query over HTTPS.
//!
//! Hostile input: a challenge token is answered only when it is one the
//! hub published (charset and length checked first, the map bounded); the
//! redirect goes to the hub's own public host, or to one of the configured
//! domains when the request named it, never to whatever `Host` says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderValue, StatusCode};

/// Challenges pending at most (one per domain of an order).
pub const MAX_CHALLENGES: usize = 256;

const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// HTTP-01 tokens the hub is waiting to be asked for, each with its key
/// authorization. Cheap to clone; bounded.
#[derive(Debug, Clone, Default)]
pub struct Challenges(Arc<Mutex<HashMap<String, String>>>);

impl Challenges {
    /// Publishes a token; false when the token is malformed or the map full.
    pub fn insert(&self, token: &str, key_authorization: String) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !valid_token(token) || (map.len() >= MAX_CHALLENGES && !map.contains_key(token)) {
            return false;
        }
        map.insert(token.to_string(), key_authorization);
        true
    }

    /// Withdraws a token.
    pub fn remove(&self, token: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    fn get(&self, token: &str) -> Option<String> {
        if !valid_token(token) {
            return None;
        }
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }
}

/// An ACME token: base64url, 1-256 characters (RFC 8555 §8.3 asks for at
/// least 128 bits of entropy; CAs send 43).
fn valid_token(token: &str) -> bool {
    (1..=256).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Where redirects go.
#[derive(Debug, Clone)]
pub struct RedirectTarget {
    /// The hub's public HTTPS origin, e.g. `https://hub.example.org` or
    /// `https://hub.example.org:8443`, no trailing slash.
    pub origin: String,
    /// Hosts a request may name to be sent to that host instead (the
    /// configured domains), lowercase; the public origin's port is kept.
    pub hosts: Vec<String>,
    /// The public origin's port when not 443, for the `hosts` case.
    pub port: Option<u16>,
}

impl RedirectTarget {
    /// Builds the target from the public URL (its scheme is made https).
    pub fn new(public_url: &str, hosts: &[String]) -> Result<Self, String> {
        let uri: http::Uri = public_url
            .parse()
            .map_err(|e| format!("public URL {public_url:?}: {e}"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| format!("public URL {public_url:?} has no host"))?;
        let port = uri.port_u16().filter(|&p| p != 443);
        let host = authority.host();
        let origin = match port {
            Some(p) => format!("https://{host}:{p}"),
            None => format!("https://{host}"),
        };
        Ok(Self {
            origin,
            hosts: hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            port,
        })
    }

    fn location(&self, req: &Request) -> String {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| p.starts_with('/'))
            .unwrap_or("/");
        let asked = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
            .map(|a| a.host().to_ascii_lowercase());
        match asked.filter(|h| self.hosts.iter().any(|d| d == h)) {
            Some(host) => match self.port {
                Some(p) => format!("https://{host}:{p}{path}"),
                None => format!("https://{host}{path}"),
            },
            None => format!("{}{path}", self.origin),
        }
    }
}

struct HttpState {
    target: RedirectTarget,
    challenges: Challenges,
}

/// The plain-HTTP router: challenges, then redirects.
pub fn router(target: RedirectTarget, challenges: Challenges) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(Arc::new(HttpState { target, challenges }))
}

async fn handle(State(state): State<Arc<HttpState>>, req: Request) -> Response {
    if let Some(token) = req.uri().path().strip_prefix(CHALLENGE_PREFIX) {
        return match state.challenges.get(token) {
            Some(answer) => (
                [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
                answer,
            )
                .into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let location = state.target.location(&req);
    match HeaderValue::from_str(&location) {
        Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(app: &Router, uri: &str, host: Option<&str>) -> (StatusCode, String, String) {
        let mut req = http::Request::get(uri);
        if let Some(h) = host {
            req = req.header(header::HOST, h);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = resp.status();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().expect("ascii").to_string())
            .unwrap_or_default();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            location,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn known_tokens_are_answered_and_nothing_else() {
        let challenges = Challenges::default();
        assert!(challenges.insert("tok-EN_1", "tok-EN_1.thumb".into()));
        assert!(!challenges.insert("../etc", "x".into()));
        let target = RedirectTarget::new("https://hub.example.org", &[]).expect("target");
        let app = router(target, challenges.clone());
        let (s, _, body) = get(&app, "/.well-known/acme-challenge/tok-EN_1", None).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "tok-EN_1.thumb"));
        for path in [
            "/.well-known/acme-challenge/other",
            "/.well-known/acme-challenge/",
            "/.well-known/acme-challenge/tok-EN_1/x",
            "/.well-known/acme-challenge/tok%2DEN_1",
        ] {
            assert_eq!(
                get(&app, path, None).await.0,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        challenges.remove("tok-EN_1");
        let (s, _, _) = get(&app, "/.well-known/acme-challenge/tok-EN_1", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_challenge_map_is_bounded() {
        let challenges = Challenges::default();
        for i in 0..MAX_CHALLENGES {
            assert!(challenges.insert(&format!("t{i}"), String::new()));
        }
        assert!(!challenges.insert("one-more", String::new()));
        assert!(challenges.insert("t0", "again".into()), "replacing is fine");
        assert!(!challenges.insert(&"a".repeat(257), String::new()));
    }

    #[tokio::test]
    async fn redirects_keep_path_and_query_and_never_follow_a_foreign_host() {
        let domains = vec!["hub.example.org".to_string(), "alt.example.org".to_string()];
        let target = RedirectTarget::new("https://hub.example.org", &domains).expect("target");
        let app = router(target, Challenges::default());
        let (s, loc, _) = get(&app, "/a/b?c=d&e", Some("hub.example.org")).await;
        assert_eq!(s, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(loc, "https://hub.example.org/a/b?c=d&e");
        let (_, loc, _) = get(&app, "/x", Some("ALT.example.org:80")).await;
        assert_eq!(loc, "https://alt.example.org/x");
        for evil in ["evil.example", "hub.example.org.evil", "a@evil", ""] {
            let (_, loc, _) = get(&app, "/x", Some(evil)).await;
            assert_eq!(loc, "https://hub.example.org/x", "Host {evil:?}");
        }
        let (_, loc, _) = get(&app, "http://evil.example//evil.example/p", None).await;
        assert_eq!(loc, "https://hub.example.org//evil.example/p");
        let (_, loc, _) = get(&app, "/", None).await;
        assert_eq!(loc, "https://hub.example.org/");

        let target = RedirectTarget::new("https://hub.example.org:8443/", &domains).expect("t");
        let app = router(target, Challenges::default());
        let (_, loc, _) = get(&app, "/p?q", Some("alt.example.org")).await;
        assert_eq!(loc, "https://alt.example.org:8443/p?q");
        let (_, loc, _) = get(&app, "/p", Some("evil")).await;
        assert_eq!(loc, "https://hub.example.org:8443/p");
    }
}
