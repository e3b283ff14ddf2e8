//! The hub's own HTTP endpoints, under `/.tuber/` and `/.well-known/tuber`;
//! everything else falls through to the origin proxy.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tuber_proto::PieceHash;

use crate::manifests::ManifestServiceError;
use crate::metrics::{Gauges, Metrics};
use crate::range::{self, RangeAnswer};
use crate::server::HubState;
use crate::signaling::Connector;

/// The page script and the Service Worker (web/), built into the binary so
/// an installed hub needs no other files.
const CLIENT_JS: &str = include_str!("../../../web/tuber.js");
const SERVICE_WORKER_JS: &str = include_str!("../../../web/sw.js");

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
            ManifestServiceError::Upstream(_) | ManifestServiceError::Unreachable(_) => {
                StatusCode::BAD_GATEWAY
            }
            ManifestServiceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ManifestServiceError::UnknownPiece => StatusCode::NOT_FOUND,
            ManifestServiceError::Changed => StatusCode::CONFLICT,
            ManifestServiceError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
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

/// `GET /.tuber/manifest?path=/some/resource`
pub async fn manifest(
    State(state): State<Arc<HubState>>,
    Query(q): Query<ManifestQuery>,
) -> Result<Response, ApiError> {
    let m = state.manifests.get(&q.path).await?;
    // Asking for a manifest makes the content known to the planner.
    state.publish(&m).await;
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

/// `GET /.tuber/piece/{hash}`, with Range.
pub async fn piece(
    State(state): State<Arc<HubState>>,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let hash = PieceHash::from_hex(&hash)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("piece hash: {e}")))?;
    let bytes = state.manifests.fetch_piece(&hash).await?;
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

/// `GET /.tuber/client/tuber.js`
pub async fn client_js() -> Response {
    javascript(CLIENT_JS, None)
}

/// `GET /.tuber/sw.js`: allowed to control the whole origin.
pub async fn service_worker_js() -> Response {
    javascript(SERVICE_WORKER_JS, Some("/"))
}

fn javascript(body: &'static str, sw_scope: Option<&'static str>) -> Response {
    let mut resp = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            // Short: a new hub version's client reaches browsers within minutes.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response();
    if let Some(scope) = sw_scope {
        resp.headers_mut()
            .insert("service-worker-allowed", HeaderValue::from_static(scope));
    }
    resp
}

/// `GET /metrics`
pub async fn metrics(State(state): State<Arc<HubState>>) -> Response {
    let gauges = Gauges {
        manifests_computed: state.manifests.computed(),
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

/// `GET /.tuber/ws`: signaling. The client's address decides whom its
/// blames for bad pieces count as (see `signaling/reporter_group.rs`).
pub async fn ws(
    State(state): State<Arc<HubState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Ok(permit) = Arc::clone(&state.connections).try_acquire_owned() else {
        return ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections; try later".into(),
        )
        .into_response();
    };
    let connector = state.connector.clone();
    let swarm = state.swarm.clone();
    upgrade
        .max_message_size(Connector::MAX_WS_MESSAGE)
        .max_frame_size(Connector::MAX_WS_MESSAGE)
        .on_upgrade(move |socket| async move {
            connector.serve(socket, swarm, Some(client)).await;
            drop(permit);
        })
}
