//! The hub's own HTTP endpoints, under `/.tuber/` and `/.well-known/tuber`;
//! everything else falls through to the origin proxy.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tuber_proto::PieceHash;

use crate::manifests::ManifestServiceError;
use crate::metrics::{Gauges, Metrics};
use crate::range::{self, RangeAnswer};
use crate::server::HubState;

/// The browser client (web/), built into the binary so an installed hub
/// needs no other files: its path under `/.tuber/client/` → its text. Every
/// JavaScript file of web/ outside `test/` and `node_modules/` is listed
/// (a test below checks), so the modules can import each other by relative
/// URL exactly as they do in the source tree.
const CLIENT_FILES: &[(&str, &str)] = &[
    ("tuber.js", include_str!("../../../web/tuber.js")),
    ("client.js", include_str!("../../../web/client.js")),
    ("sw.js", include_str!("../../../web/sw.js")),
    ("sw-classic.js", include_str!("../../../web/sw-classic.js")),
    (
        "site-worker.js",
        include_str!("../../../web/site-worker.js"),
    ),
    (
        "site-events.js",
        include_str!("../../../web/site-events.js"),
    ),
    ("fetcher.js", include_str!("../../../web/fetcher.js")),
    ("lru.js", include_str!("../../../web/lru.js")),
    ("peer.js", include_str!("../../../web/peer.js")),
    ("proto.js", include_str!("../../../web/proto.js")),
    ("range.js", include_str!("../../../web/range.js")),
    ("rules.js", include_str!("../../../web/rules.js")),
    ("scheduler.js", include_str!("../../../web/scheduler.js")),
    ("signaling.js", include_str!("../../../web/signaling.js")),
    ("swarm.js", include_str!("../../../web/swarm.js")),
    (
        "wire-session.js",
        include_str!("../../../web/wire-session.js"),
    ),
    (
        "proto/descriptor.js",
        include_str!("../../../web/proto/descriptor.js"),
    ),
    ("proto/json.js", include_str!("../../../web/proto/json.js")),
    (
        "proto/origin.js",
        include_str!("../../../web/proto/origin.js"),
    ),
    (
        "proto/limits.js",
        include_str!("../../../web/proto/limits.js"),
    ),
    (
        "proto/manifest.js",
        include_str!("../../../web/proto/manifest.js"),
    ),
    (
        "proto/signal.js",
        include_str!("../../../web/proto/signal.js"),
    ),
    ("proto/wire.js", include_str!("../../../web/proto/wire.js")),
];

/// `/.tuber/sw.js`: the Service Worker lives beside its modules at
/// `/.tuber/client/sw.js` (that is what pages register); this URL, where
/// earlier versions registered it, loads the same worker as a module.
const SERVICE_WORKER_SHIM: &str =
    "// Tuber Service Worker: see /.tuber/client/sw.js.\nimport './client/sw.js';\n";

/// A plain-text error with a status: what every hub endpoint answers on failure.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
        (self.0, headers, format!("{}\n", self.1)).into_response()
    }
}

impl From<ManifestServiceError> for ApiError {
    fn from(e: ManifestServiceError) -> Self {
        let status = match &e {
            ManifestServiceError::BadPath(_) => StatusCode::BAD_REQUEST,
            ManifestServiceError::Upstream(s) if s.is_client_error() => *s,
            ManifestServiceError::Upstream(_)
            | ManifestServiceError::Unreachable(_)
            | ManifestServiceError::Abandoned => StatusCode::BAD_GATEWAY,
            ManifestServiceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ManifestServiceError::UnknownPiece
            | ManifestServiceError::Private
            | ManifestServiceError::NotDistributable
            | ManifestServiceError::Expired => StatusCode::NOT_FOUND,
            ManifestServiceError::Changed => StatusCode::CONFLICT,
            ManifestServiceError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ManifestServiceError::OverBudget(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        ApiError(status, e.to_string())
    }
}

/// A manifest service error as a response: an [`ApiError`], with
/// `Retry-After` when the client's network is over its budget.
fn service_error(e: ManifestServiceError) -> Response {
    let retry = match &e {
        ManifestServiceError::OverBudget(after) => Some(after.as_secs().max(1)),
        _ => None,
    };
    let mut resp = ApiError::from(e).into_response();
    if let Some(secs) = retry {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// `GET /.well-known/tuber`
pub async fn descriptor(State(state): State<Arc<HubState>>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
            // Desktop apps and other sites' tooling read it cross-origin.
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        state.descriptor.clone(),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct ManifestQuery {
    path: String,
}

/// `GET /.tuber/manifest?path=/some/resource`. A path an `exclude` pattern
/// matches is never published: 404 `{"error":"not distributable"}`.
pub async fn manifest(
    State(state): State<Arc<HubState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ManifestQuery>,
) -> Result<Response, ApiError> {
    let client = state.trusted_proxies.client_ip(peer.ip(), &headers);
    crate::manifests::check_path(&q.path)?;
    if state.rules.is_excluded(&q.path) {
        return Ok((
            StatusCode::NOT_FOUND,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            r#"{"error":"not distributable"}"#,
        )
            .into_response());
    }
    let m = match state.manifests.get_for(&q.path, Some(client)).await {
        Ok(m) => m,
        Err(e) => return Ok(service_error(e)),
    };
    // Asking for a manifest makes the content known to the planner (when
    // the trusted peers can hold it; see `publication.rs`).
    state.publish(&m, false).await;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        m.encode(),
    )
        .into_response())
}

/// `GET /.tuber/rules`: the configured `[distribute]` rules as JSON, which
/// the Service Worker reads to decide what to intercept.
pub async fn rules(State(state): State<Arc<HubState>>) -> Response {
    let body = serde_json::to_vec(&state.rules.view()).unwrap_or_default();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// `GET /.tuber/piece/{hash}`, with Range.
pub async fn piece(
    State(state): State<Arc<HubState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let client = state.trusted_proxies.client_ip(peer.ip(), &headers);
    let hash = PieceHash::from_hex(&hash)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("piece hash: {e}")))?;
    let bytes = match state.manifests.fetch_piece_for(&hash, Some(client)).await {
        Ok(b) => b,
        Err(e) => return Ok(service_error(e)),
    };
    let len = bytes.len() as u64;
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, body, content_range): (StatusCode, Bytes, Option<String>) =
        match range::parse(range_header, len) {
            RangeAnswer::Full => (StatusCode::OK, bytes, None),
            RangeAnswer::Partial { start, end } => (
                StatusCode::PARTIAL_CONTENT,
                bytes.slice(start as usize..=end as usize),
                Some(format!("bytes {start}-{end}/{len}")),
            ),
            RangeAnswer::Unsatisfiable => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                )
                    .into_response())
            }
        };
    Metrics::add(&state.metrics.origin_distributable_bytes, body.len() as u64);
    Metrics::add(&state.metrics.pieces_served, 1);
    let mut resp = (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            // A piece's bytes never change: its name is their hash.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        ],
        body,
    )
        .into_response();
    if let Some(cr) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        resp.headers_mut().insert(header::CONTENT_RANGE, cr);
    }
    Ok(resp)
}

/// `GET /.tuber/register`: the descriptor's registration endpoint, for a
/// person who follows it. Registration itself happens in signaling (an
/// invite in `hello`); this page says how to get there.
pub async fn register(State(state): State<Arc<HubState>>) -> Response {
    let url = crate::proxy::error_page::escape(&state.public_url);
    let link = crate::proxy::error_page::escape(&crate::admin::join_link(&state.public_url, None));
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Help {url} with Tuber</title></head><body>\
         <h1>Share this site's bandwidth with Tuber</h1>\
         <p>Install the Tuber desktop app (or the headless <code>tuber-peer</code>), then \
         <a href=\"{link}\">join this swarm</a> or add <code>{url}</code> in the app.</p>\
         <p>To become a <em>trusted</em> peer, ask the site's operator for an invite and paste \
         it when you join.</p></body></html>"
    );
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        page,
    )
        .into_response()
}

/// `GET /.tuber/client/{file}`: the page script, the Service Worker and
/// their modules. `no-cache` with an ETag: browsers revalidate (a 304) on
/// each use, so the modules a page loads always come from one hub version.
pub async fn client_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match client_file_text(&file) {
        Some(text) => {
            let scope = (file == "sw.js").then_some("/");
            javascript(&file, text, scope, &headers)
        }
        None => ApiError(StatusCode::NOT_FOUND, format!("no client file {file:?}")).into_response(),
    }
}

/// `GET /.tuber/sw.js`: allowed to control the whole origin.
pub async fn service_worker_js(headers: HeaderMap) -> Response {
    javascript("../sw.js", SERVICE_WORKER_SHIM, Some("/"), &headers)
}

/// The text of the client file at `path` (relative to `/.tuber/client/`).
pub fn client_file_text(path: &str) -> Option<&'static str> {
    CLIENT_FILES
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, text)| *text)
}

/// Strong ETags of the client files, computed once.
fn etag_of(key: &str, body: &'static str) -> HeaderValue {
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static TAGS: OnceLock<Mutex<HashMap<String, HeaderValue>>> = OnceLock::new();
    let tags = TAGS.get_or_init(Default::default);
    let mut tags = tags.lock().unwrap_or_else(|e| e.into_inner());
    tags.entry(key.to_string())
        .or_insert_with(|| {
            let digest = Sha256::digest(body.as_bytes());
            let tag = format!("\"{}\"", hex::encode(&digest[..16]));
            HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
        })
        .clone()
}

fn javascript(
    key: &str,
    body: &'static str,
    sw_scope: Option<&'static str>,
    request: &HeaderMap,
) -> Response {
    let etag = etag_of(key, body);
    let tag = etag.to_str().unwrap_or_default();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim())
                .any(|t| t == "*" || t.trim_start_matches("W/") == tag)
        });
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            )],
            body,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag);
    // Revalidated on every use (cheap: a 304), so a new hub version's client
    // reaches browsers at once and a page never mixes two versions' modules.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(scope) = sw_scope {
        h.insert("service-worker-allowed", HeaderValue::from_static(scope));
    }
    resp
}

/// `GET /metrics`
pub async fn metrics(State(state): State<Arc<HubState>>) -> Response {
    let (piece_cache_hits, piece_cache_misses) = state.manifests.cache().hits_and_misses();
    let index = state.manifests.index_figures();
    let gauges = Gauges {
        manifests_indexed: index.indexed,
        manifest_index_bytes: index.bytes,
        manifests_published: index.published,
        manifests_published_bytes: index.published_bytes,
        manifests_forgotten: index.forgotten,
        manifests_computed: state.manifests.computed(),
        manifests_teed: state.manifests.teed(),
        manifests_aliased: state.manifests.aliased(),
        piece_cache_bytes: state.manifests.cache().bytes(),
        piece_cache_hits,
        piece_cache_misses,
        ..state.swarm.gauges().await
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(gauges),
    )
        .into_response()
}

pub use crate::signaling::route::ws;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path as FsPath;

    /// JavaScript files under web/ (not tests, not node_modules), relative.
    fn web_files(dir: &FsPath, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if path.is_dir() {
                if name != "test" && name != "node_modules" && !name.starts_with('.') {
                    web_files(&path, &format!("{prefix}{name}/"), out);
                }
            } else if name.ends_with(".js") {
                out.push(format!("{prefix}{name}"));
            }
        }
    }

    #[test]
    fn every_client_file_is_built_in() {
        let web = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
        let mut files = Vec::new();
        web_files(&web, "", &mut files);
        assert!(files.contains(&"tuber.js".to_string()), "{files:?}");
        for f in &files {
            assert!(
                client_file_text(f).is_some(),
                "web/{f} is not in CLIENT_FILES (crates/tuber-hub/src/routes.rs)"
            );
        }
        for (name, text) in CLIENT_FILES {
            let on_disk = std::fs::read_to_string(web.join(name)).expect("listed file exists");
            assert!(
                on_disk == *text,
                "web/{name} changed after this binary was built: rebuild"
            );
        }
    }

    #[tokio::test]
    async fn client_files_are_javascript_with_etags() {
        let resp = client_file(Path("proto/wire.js".into()), HeaderMap::new()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert!(h.get("service-worker-allowed").is_none());
        let etag = h[header::ETAG].clone();

        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag.clone());
        let resp = client_file(Path("proto/wire.js".into()), again).await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(resp.headers()[header::ETAG], etag);

        let resp = client_file(Path("sw.js".into()), HeaderMap::new()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["service-worker-allowed"], "/");

        let resp = service_worker_js(HeaderMap::new()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["service-worker-allowed"], "/");
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );

        for missing in ["nope.js", "../Cargo.toml", "test/vectors.test.js", ""] {
            let resp = client_file(Path(missing.into()), HeaderMap::new()).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{missing}");
        }
    }
}
