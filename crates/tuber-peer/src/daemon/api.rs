//! The daemon's local HTTP API: the same engine calls the desktop app makes,
//! as JSON over HTTP on a loopback address, plus the event stream as
//! server-sent events.
//!
//! Every request passes [`guard`] before any handler:
//! 1. `Host` must be `127.0.0.1:PORT`, `localhost:PORT` or `[::1]:PORT` for
//!    the port actually bound, and an `Origin`, when sent, must be
//!    `http://` one of those: a page from another site cannot reach the API
//!    through DNS rebinding or a cross-site request (403).
//! 2. Then the token: `Authorization: Bearer TOKEN`, or `?token=TOKEN` on
//!    `GET /api/events` only (an `EventSource` cannot set headers), compared
//!    in constant time (401). The dashboard's static files (`/`, `/NAME`,
//!    `/ui/NAME`, see [`super::ui`]) need no token.
//!
//! | Method | Path | Body | Answer |
//! |---|---|---|---|
//! | GET | `/api/status` | | [`Status`] |
//! | GET | `/api/swarms` | | `[SwarmStatus]` |
//! | POST | `/api/swarms` | [`JoinRequest`] | 201 `{"url"}` |
//! | DELETE | `/api/swarms` | [`LeaveRequest`] | `{"url"}` |
//! | POST | `/api/pause`, `/api/resume` | | [`Settings`] |
//! | GET | `/api/settings` | | [`Settings`] |
//! | PATCH | `/api/settings` | [`SettingsPatch`] | [`Settings`] |
//! | GET | `/api/history` | | `HistorySnapshot` |
//! | GET | `/api/cached` | | `[CachedResource]` |
//! | POST | `/api/evict` | [`EvictRequest`] | `{"evicted": n}` |
//! | GET | `/api/events` | | SSE: one event per `EngineEvent`, named by its `type` |
//! | GET | `/`, `/ui/NAME` | | the dashboard (static, with a strict CSP) |
//!
//! Errors are `{"error": "..."}` with a fitting status. Bodies are limited
//! to 64 KiB.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::Method;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::files::ApiToken;
use super::ui;
use crate::engine::{
    normalize_url, Engine, EngineError, EngineEvent, Settings, SettingsPatch, Status,
};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// How often an idle event stream carries a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    engine: Engine,
    token: ApiToken,
    hosts: Arc<[String; 3]>,
    origins: Arc<[String; 3]>,
    closing: CancellationToken,
}

impl ApiState {
    /// State for an API bound to `port`; `closing` ends the event streams
    /// (so a graceful shutdown is not held open by them).
    pub fn new(engine: Engine, token: ApiToken, port: u16, closing: CancellationToken) -> Self {
        let hosts = [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ];
        let origins = hosts.clone().map(|h| format!("http://{h}"));
        Self {
            engine,
            token,
            hosts: Arc::new(hosts),
            origins: Arc::new(origins),
            closing,
        }
    }
}

/// `POST /api/swarms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The swarm's URL (the site's address).
    pub url: String,
    /// An invite from the site's operator, to be registered as trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
}

/// `DELETE /api/swarms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveRequest {
    /// The swarm's URL.
    pub url: String,
}

/// `POST /api/evict`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvictRequest {
    /// The swarm's URL.
    pub swarm: String,
    /// The resource path.
    pub resource: String,
}

/// The API's routes, behind the Host/Origin and token checks.
pub fn router(state: ApiState) -> Router {
    router_with(state, Router::new())
}

/// The API's routes plus `extra` (the desktop app's own, under
/// `/api/desktop/`), all behind the same checks and body limit.
pub fn router_with(state: ApiState, extra: Router) -> Router {
    Router::new()
        .route("/api/status", get(status))
        .route("/api/swarms", get(swarms).post(join).delete(leave))
        .route("/api/pause", post(pause))
        .route("/api/resume", post(resume))
        .route("/api/settings", get(settings).patch(update_settings))
        .route("/api/history", get(history))
        .route("/api/cached", get(cached))
        .route("/api/evict", post(evict))
        .route("/api/events", get(events))
        .with_state(state.clone())
        .merge(extra)
        .fallback(static_file)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state, guard))
}

/// An error answer: `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::NotJoined(_) => StatusCode::NOT_FOUND,
            EngineError::AlreadyJoined(_) => StatusCode::CONFLICT,
            EngineError::Invalid(_) | EngineError::Join(_) => StatusCode::BAD_REQUEST,
            EngineError::Hub(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, e.to_string())
    }
}

/// A JSON body whose rejections are [`ApiError`]s.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(r) => Err(ApiError(r.status(), r.body_text())),
        }
    }
}

/// Host and Origin first, then the token; then the handler. Every answer
/// is marked not to be cached or sniffed, and never to leak a referrer.
async fn guard(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    let mut response = match check(&st, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn check(st: &ApiState, req: &Request) -> Result<(), ApiError> {
    check_host(st, req.headers(), req.uri())?;
    check_origin(st, req.headers())?;
    if ui::lookup(req.uri().path()).is_some() {
        return Ok(());
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let query = (req.uri().path() == "/api/events")
        .then(|| query_token(req.uri()))
        .flatten();
    match bearer.or(query) {
        Some(given) if st.token.matches(given.trim()) => Ok(()),
        _ => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "the API token is missing or wrong (Authorization: Bearer TOKEN, from api.token in the data dir)".into(),
        )),
    }
}

fn check_host(st: &ApiState, headers: &HeaderMap, uri: &Uri) -> Result<(), ApiError> {
    let allowed = |h: &str| st.hosts.iter().any(|a| a.eq_ignore_ascii_case(h));
    let host = headers.get(header::HOST).map(|v| v.to_str().unwrap_or(""));
    let ok = match (host, uri.authority()) {
        (Some(h), a) => allowed(h) && a.is_none_or(|a| allowed(a.as_str())),
        (None, Some(a)) => allowed(a.as_str()),
        (None, None) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "this API answers only to the Host 127.0.0.1, localhost or [::1] with its port".into(),
        ))
    }
}

fn check_origin(st: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let ok = origins.all(|o| {
        o.to_str()
            .is_ok_and(|o| st.origins.iter().any(|a| a.eq_ignore_ascii_case(o)))
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "requests from other origins are refused".into(),
        ))
    }
}

fn query_token(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

/// The dashboard's files; anything else is a 404.
async fn static_file(method: Method, uri: Uri) -> Response {
    match ui::lookup(uri.path()) {
        Some(file) if method == Method::GET || method == Method::HEAD => ui::response(file),
        Some(_) => method_not_allowed().await.into_response(),
        None => not_found().await.into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such endpoint".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint".into(),
    )
}

async fn status(State(st): State<ApiState>) -> Json<Status> {
    Json(st.engine.status().await)
}

async fn swarms(State(st): State<ApiState>) -> impl IntoResponse {
    Json(st.engine.swarms().await)
}

async fn join(
    State(st): State<ApiState>,
    JsonBody(req): JsonBody<JoinRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let invite = req
        .invite
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty());
    st.engine.join(&req.url, invite).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "url": normalize_url(&req.url) })),
    ))
}

async fn leave(
    State(st): State<ApiState>,
    JsonBody(req): JsonBody<LeaveRequest>,
) -> Result<impl IntoResponse, ApiError> {
    st.engine.leave(&req.url).await?;
    Ok(Json(json!({ "url": normalize_url(&req.url) })))
}

async fn pause(State(st): State<ApiState>) -> Result<Json<Settings>, ApiError> {
    Ok(Json(st.engine.pause().await?))
}

async fn resume(State(st): State<ApiState>) -> Result<Json<Settings>, ApiError> {
    Ok(Json(st.engine.resume().await?))
}

async fn settings(State(st): State<ApiState>) -> Json<Settings> {
    Json(st.engine.settings())
}

async fn update_settings(
    State(st): State<ApiState>,
    JsonBody(patch): JsonBody<SettingsPatch>,
) -> Result<Json<Settings>, ApiError> {
    Ok(Json(st.engine.update_settings(patch).await?))
}

async fn history(State(st): State<ApiState>) -> impl IntoResponse {
    Json(st.engine.history())
}

async fn cached(State(st): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(st.engine.cached().await?))
}

async fn evict(
    State(st): State<ApiState>,
    JsonBody(req): JsonBody<EvictRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let evicted = st.engine.evict(&req.swarm, &req.resource).await?;
    Ok(Json(json!({ "evicted": evicted })))
}

async fn events(State(st): State<ApiState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = st.engine.subscribe();
    let stream = futures_util::stream::unfold((rx, st.closing), |(mut rx, closing)| async move {
        let next = tokio::select! {
            () = closing.cancelled() => return None,
            next = rx.recv() => next,
        };
        let event = match next {
            Ok(e) => sse_event(&e),
            Err(RecvError::Lagged(missed)) => sse_event(&EngineEvent::Lagged { missed }),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, closing)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// One engine event as SSE: named by its `type`, its JSON as the data.
fn sse_event(e: &EngineEvent) -> Event {
    match serde_json::to_value(e) {
        Ok(v) => {
            let name = v
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("message")
                .to_string();
            Event::default().event(name).data(v.to_string())
        }
        Err(err) => Event::default().comment(format!("unserializable event: {err}")),
    }
}
