//! The origin proxy (role Content Origin): the hub's fallback handler, which
//! forwards everything the hub does not answer itself to the site behind it.
//!
//! Bodies stream both ways and are never held whole. HTML pages get the page
//! script injected as they stream; responses the [`Rules`] call
//! distributable, and the segments of HLS playlists and DASH manifests, are
//! reported on a channel as [`SeenResource`]s for the manifest builder.
//! WebSocket upgrades of the site pass through. The site may be `http://` or `https://` (TLS
//! through [`crate::upstream_client`]). An unreachable site, or one whose
//! certificate is refused, gets a clear 502/504 page.
//!
//! ## Layout
//! - `forward` — the request and response heads: hop-by-hop headers,
//!   `X-Forwarded-*`, `Host`, `Location` rewriting.
//! - `inject` — the streaming script injector (lol_html): where the tag goes.
//! - `media_defer` — first visits: media `src` held until the worker controls.
//! - `from_pieces` — a page runtime's fallback Range reads answered from
//!   the hub's pieces, not the origin again.
//! - `decode` — undoing gzip/deflate/br as a stream.
//! - [`distributable`] — the pure rules.
//! - [`playlist`] — the HLS parser and the bounded tee that feeds both.
//! - [`dash`] — the DASH (MPD) parser.
//! - `report` — [`SeenResource`]s onto the channel, playlists' segments.
//! - `upgrade` — WebSocket tunnels.
//! - [`error_page`] — 502/504 pages.

pub mod dash;
mod decode;
pub mod distributable;
pub mod error_page;
mod forward;
mod from_pieces;
mod inject;
mod media_defer;
pub mod playlist;
mod report;
mod trust;
mod upgrade;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use dash::dash_segment_uris;
pub use distributable::{Rules, RulesView};
pub use error_page::UpstreamFailure;
pub use forward::origin_key;
pub(crate) use inject::page_script_tag;
pub use playlist::{hls_segment_uris, is_live_hls, PlaylistKind};
pub use report::{SeenReason, SeenResource};
pub use trust::{Cidr, TrustedProxies};

use crate::config::DistributeConfig;
use crate::manifests::{Manifests, Tee, TeeBody};
use crate::upstream_client::{self, UpstreamClient, UpstreamTls};
use decode::Coding;
use forward::Target;
use report::Reporter;

/// How the proxy is set up.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// The site: `http://host[:port]` or `https://host[:port]`, no path.
    /// An `https://` upstream's certificate must be valid for its host.
    pub upstream: Uri,
    /// The certificates an `https://` upstream may present.
    pub tls: UpstreamTls,
    /// HTML injected into every page before its first script: the hub's is
    /// [`page_script_tag`]'s.
    pub script_tag: String,
    /// Which responses are distributable.
    pub distribute: DistributeConfig,
    /// Time allowed for the TCP connect to the upstream and, for `https://`,
    /// the TLS handshake; past it, 504.
    pub connect_timeout: Duration,
    /// The hub's public origin (`https://video.example.org`), used to
    /// rewrite redirects to the upstream and for `X-Forwarded-Proto`.
    /// Without it, such redirects become path-only.
    pub public_origin: Option<String>,
    /// Counts the body bytes of distributable responses as they stream to
    /// clients (the origin's share of the traffic peers could have carried).
    pub origin_bytes: Option<Arc<AtomicU64>>,
    /// Counts the bytes of page runtimes' fallback reads answered from the
    /// hub's pieces (`from_pieces`).
    pub fallback_bytes: Option<Arc<AtomicU64>>,
    /// Hashes a distributable response as it streams to its viewer (the
    /// first one), so the hub need not download it again for its manifest.
    pub manifests: Option<Manifests>,
    /// Reverse proxies whose forwarding headers are passed on.
    pub trusted_proxies: TrustedProxies,
}

/// Why a proxy could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream is neither `http://` nor `https://`.
    #[error("upstream {0}: only http:// and https:// upstreams are supported")]
    UnsupportedScheme(Uri),
    /// The upstream URL has no host.
    #[error("upstream {0} has no host")]
    NoHost(Uri),
    /// The upstream URL has a path or query; it must be an origin.
    #[error("upstream {0} must be an origin (http://host[:port]) without a path")]
    UpstreamPath(Uri),
    /// The public origin is not `http(s)://host[:port]`.
    #[error("public origin {0:?} must be http(s)://host[:port]")]
    PublicOrigin(String),
}

/// The origin proxy. Cheap to clone; every clone shares one connection
/// pool. WebSocket tunnels end when the last clone is dropped.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    client: UpstreamClient<Body>,
    target: Target,
    /// The upstream as shown on error pages.
    upstream_display: String,
    script_tag: Arc<str>,
    public_origin: Option<String>,
    origin_bytes: Option<Arc<AtomicU64>>,
    fallback_bytes: Option<Arc<AtomicU64>>,
    manifests: Option<Manifests>,
    trusted_proxies: TrustedProxies,
    reporter: Reporter,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Proxy {
    /// Builds the proxy; fails on an upstream or public origin it cannot use.
    pub fn new(
        settings: ProxySettings,
        seen: mpsc::Sender<SeenResource>,
    ) -> Result<Self, ProxyError> {
        let upstream = &settings.upstream;
        let scheme = match upstream.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => http::uri::Scheme::HTTP,
            Some(s) if s.eq_ignore_ascii_case("https") => http::uri::Scheme::HTTPS,
            _ => return Err(ProxyError::UnsupportedScheme(upstream.clone())),
        };
        let authority = upstream
            .authority()
            .filter(|a| !a.host().is_empty())
            .cloned()
            .ok_or_else(|| ProxyError::NoHost(upstream.clone()))?;
        if !matches!(upstream.path(), "" | "/") || upstream.query().is_some() {
            return Err(ProxyError::UpstreamPath(upstream.clone()));
        }
        let origin = origin_key(upstream).ok_or_else(|| ProxyError::NoHost(upstream.clone()))?;
        let public_origin = settings
            .public_origin
            .as_deref()
            .map(parse_public_origin)
            .transpose()?;
        let mut own_origins = vec![origin.clone()];
        let mut forwarded_proto = "http";
        if let Some((key, _)) = &public_origin {
            if key.starts_with("https:") {
                forwarded_proto = "https";
            }
            own_origins.push(key.clone());
        }

        let client = upstream_client::client(&settings.tls, settings.connect_timeout);

        Ok(Self {
            inner: Arc::new(Inner {
                client,
                upstream_display: format!("{scheme}://{authority}"),
                target: Target {
                    scheme,
                    authority,
                    origin,
                    forwarded_proto,
                },
                script_tag: Arc::from(settings.script_tag.as_str()),
                public_origin: public_origin.map(|(_, shown)| shown),
                origin_bytes: settings.origin_bytes.clone(),
                fallback_bytes: settings.fallback_bytes.clone(),
                manifests: settings.manifests.clone(),
                trusted_proxies: settings.trusted_proxies.clone(),
                reporter: Reporter {
                    seen,
                    rules: Arc::new(Rules::new(&settings.distribute)),
                    own_origins: own_origins.into(),
                    live_seen: Default::default(),
                },
                tasks: TaskTracker::new(),
                cancel: CancellationToken::new(),
            }),
        })
    }

    /// Forwards one request to the upstream and returns its (possibly
    /// rewritten) response, or an error page when the upstream failed.
    pub async fn handle(&self, req: Request, client_addr: Option<SocketAddr>) -> Response {
        let inner = &self.inner;
        let (mut parts, body) = req.into_parts();
        let method = parts.method.clone();
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string());
        let wants_html = forward::accepts_html(&parts.headers);
        // The answer to a request with credentials may be that person's
        // alone: never distributed (the hub's own requests for manifests
        // carry none, so what peers share is what anyone may fetch).
        let credentialed = parts.headers.contains_key(header::COOKIE)
            || parts.headers.contains_key(header::AUTHORIZATION);
        // A page runtime's fallback read of bytes it will verify against a
        // manifest the hub made: from the hub's pieces (see `from_pieces`).
        if let (true, Some(manifests), Some(addr)) = (
            from_pieces::is_fallback_read(&method, &parts.headers),
            inner.manifests.as_ref(),
            client_addr,
        ) {
            let client = inner.trusted_proxies.client_ip(addr.ip(), &parts.headers);
            if let Some(resp) = from_pieces::answer(manifests, &path, &parts.headers, client).await
            {
                if let Some(n) = &inner.fallback_bytes {
                    let len = resp
                        .headers()
                        .get(header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .unwrap_or(0);
                    n.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                }
                return resp;
            }
        }
        // Only an HTTP/1.1 connection can be taken over; without hyper's
        // upgrade handle the request is forwarded as a plain GET.
        let client_upgrade = if forward::is_websocket_upgrade(&parts.headers) {
            parts.extensions.remove::<OnUpgrade>()
        } else {
            None
        };
        if let Err(e) = forward::upstream_request(
            &mut parts,
            &inner.target,
            client_addr,
            &inner.trusted_proxies,
            client_upgrade.is_some(),
        ) {
            tracing::debug!("request not forwardable: {e}");
            return error_page::bad_request("request head cannot be forwarded");
        }
        parts.extensions = http::Extensions::new();
        let request = Request::from_parts(parts, body);
        match inner.client.request(request).await {
            Ok(response) => self.respond(&method, &path, credentialed, response, client_upgrade),
            Err(e) => {
                let failure = UpstreamFailure::classify(&e);
                tracing::warn!(
                    upstream = %inner.upstream_display,
                    error = ?e,
                    "upstream failed: {}",
                    failure.describe()
                );
                error_page::render(failure, &inner.upstream_display, wants_html)
            }
        }
    }

    /// Turns the upstream's response into the client's.
    fn respond(
        &self,
        method: &Method,
        path: &str,
        credentialed: bool,
        mut response: http::Response<Incoming>,
        client_upgrade: Option<OnUpgrade>,
    ) -> Response {
        let inner = &self.inner;
        let status = response.status();
        let switching = status == StatusCode::SWITCHING_PROTOCOLS;
        if let (true, Some(client)) = (switching, client_upgrade) {
            let upstream = hyper::upgrade::on(&mut response);
            upgrade::tunnel(client, upstream, &inner.tasks, inner.cancel.child_token());
        }
        let (parts, body) = response.into_parts();
        let mut headers = parts.headers;
        let upgrade_value = headers.get(header::UPGRADE).cloned();
        forward::remove_hop_by_hop(&mut headers);
        if let (true, Some(value)) = (switching, upgrade_value) {
            headers.insert(header::UPGRADE, value);
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        forward::rewrite_location(
            &mut headers,
            &inner.target.origin,
            inner.public_origin.as_deref(),
        );

        let body = self.client_body(method, path, credentialed, status, &mut headers, body);
        let mut out = Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        out
    }

    /// The client's body: the page with the script injected, a playlist
    /// teed to its reader, or the upstream's body untouched. Reports a
    /// distributable response on the way.
    fn client_body(
        &self,
        method: &Method,
        path: &str,
        credentialed: bool,
        status: StatusCode,
        headers: &mut HeaderMap,
        body: Incoming,
    ) -> Body {
        let inner = &self.inner;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let rules = &inner.reporter.rules;
        if inject::wants_injection(status, headers) {
            // Not reported even if a rule matches: the bytes browsers get
            // differ from the upstream's.
            let coding = Coding::of(headers).unwrap_or(Coding::Identity);
            inject::rewrite_headers(headers);
            if method == Method::HEAD {
                // A body of unknown length, as the GET's would be: an empty
                // `Incoming` would make hyper announce `Content-Length: 0`.
                drop(body);
                Body::from_stream(futures_util::stream::empty::<
                    Result<bytes::Bytes, std::io::Error>,
                >())
            } else {
                let stream = decode::body_stream(body);
                // First visits: media in the page waits for the Service Worker.
                let media = media_defer::MediaDefer::for_page(
                    Arc::clone(rules),
                    path,
                    Arc::clone(&inner.reporter.own_origins),
                    headers,
                );
                Body::from_stream(inject::inject(
                    coding,
                    stream,
                    inner.script_tag.clone(),
                    media,
                ))
            }
        } else {
            let mut counted = false;
            let mut tee = None;
            if distributable::eligible(method, status)
                && !credentialed
                && !distributable::is_private_response(headers)
            {
                let length = distributable::full_length(status, headers);
                if rules.is_distributable(path, &content_type, length) {
                    counted = true;
                    // Before the report, so the publisher waits for it.
                    tee = self.tee_for(path, status, headers, &content_type, length);
                    inner.reporter.report(SeenResource {
                        path: path.to_string(),
                        content_type: content_type.clone(),
                        length,
                        version: distributable::version(headers),
                        reason: SeenReason::Response,
                    });
                }
            }
            let kind = (method == Method::GET && status == StatusCode::OK)
                .then(|| rules.playlist_kind(path, &content_type))
                .flatten();
            let out = match (Coding::of(headers), kind) {
                (Some(coding), Some(kind)) => {
                    let read = inner.reporter.playlist_reader(
                        &inner.tasks,
                        path.to_string(),
                        coding,
                        kind,
                    );
                    Body::new(playlist::Tee::new(body, playlist::PLAYLIST_LIMIT, read))
                }
                _ => match tee {
                    Some(tee) => Body::new(TeeBody::new(body, tee)),
                    None => Body::new(body),
                },
            };
            match (&inner.origin_bytes, counted) {
                (Some(counter), true) => {
                    let counter = Arc::clone(counter);
                    Body::new(http_body_util::BodyExt::map_frame(out, move |frame| {
                        if let Some(data) = frame.data_ref() {
                            counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                        }
                        frame
                    }))
                }
                _ => out,
            }
        }
    }
}

impl Proxy {
    /// A tee for a distributable response that is the whole resource, as
    /// stored (no content coding), with a version: 200, or 206 for the
    /// whole range (a player's `Range: bytes=0-`).
    fn tee_for(
        &self,
        path: &str,
        status: StatusCode,
        headers: &HeaderMap,
        content_type: &str,
        length: Option<u64>,
    ) -> Option<Tee> {
        let manifests = self.inner.manifests.as_ref()?;
        let length = length?;
        if headers.contains_key(header::CONTENT_ENCODING) {
            return None;
        }
        if status == StatusCode::PARTIAL_CONTENT {
            let range = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
            let whole = format!("bytes 0-{}/{length}", length.checked_sub(1)?);
            if range.trim() != whole {
                return None;
            }
        } else if status != StatusCode::OK {
            return None;
        }
        let version = distributable::version(headers)?;
        manifests.tee(path, &version, content_type, length)
    }
}

/// Checks a public origin; returns its [`origin_key`] and the form used in
/// rewritten `Location`s (`scheme://authority`, no trailing slash).
fn parse_public_origin(text: &str) -> Result<(String, String), ProxyError> {
    let bad = || ProxyError::PublicOrigin(text.to_string());
    let uri: Uri = text.trim().parse().map_err(|_| bad())?;
    let key = origin_key(&uri).ok_or_else(bad)?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad());
    }
    let scheme = uri.scheme_str().ok_or_else(bad)?;
    let authority = uri.authority().ok_or_else(bad)?;
    Ok((key, format!("{scheme}://{authority}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(upstream: &str, public_origin: Option<&str>) -> ProxySettings {
        ProxySettings {
            upstream: upstream.parse().unwrap(),
            tls: UpstreamTls::bundled().unwrap(),
            script_tag: String::new(),
            distribute: DistributeConfig::default(),
            connect_timeout: Duration::from_secs(1),
            public_origin: public_origin.map(str::to_string),
            origin_bytes: None,
            fallback_bytes: None,
            manifests: None,
            trusted_proxies: TrustedProxies::default(),
        }
    }

    #[tokio::test]
    async fn construction_refuses_what_it_cannot_serve() {
        let (tx, _rx) = mpsc::channel(1);
        let new = |u: &str, p: Option<&str>| Proxy::new(settings(u, p), tx.clone());
        assert!(matches!(
            new("ftp://example.org", None),
            Err(ProxyError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            new("http://example.org/app", None),
            Err(ProxyError::UpstreamPath(_))
        ));
        assert!(matches!(
            new("http://example.org", Some("hub.example")),
            Err(ProxyError::PublicOrigin(_))
        ));
        assert!(new("http://127.0.0.1:3000/", Some("https://hub.example/")).is_ok());
        assert!(new("https://example.org", None).is_ok());
        assert!(new("HTTPS://example.org:8443/", None).is_ok());
        let e = new("ws://example.org", None).err().unwrap().to_string();
        assert!(e.contains("only http:// and https://"), "{e}");
    }
}
