//! The desktop's own calls, beside the daemon's API and behind its checks
//! (Host, Origin, token):
//!
//! | Method | Path | Body | Answer |
//! |---|---|---|---|
//! | GET | `/api/desktop` | | [`DesktopView`] |
//! | POST | `/api/desktop/autostart` | `{"enabled": bool}` | [`DesktopView`] |
//! | POST | `/api/desktop/data-dir` | `{"dir": "/abs/path"}` | [`DesktopView`] |
//! | POST | `/api/desktop/join-link/take` | | `JoinLink` or `null`, once |
//! | POST | `/api/desktop/open` | [`OpenRequest`] | `{"opened": true}` |

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tuber_peer::daemon::api::{ApiError, JsonBody};
use tuber_peer::desktop::{self, AutostartEntry, DesktopPrefs, JoinLink};
use tuber_peer::Engine;

use super::WindowControl;

/// What the desktop calls share.
pub struct Desktop {
    /// The engine.
    pub engine: Engine,
    /// Where desktop.json lives.
    pub config_dir: PathBuf,
    /// The data folder in use.
    pub data_dir: PathBuf,
    /// The app's preferences (saved on every change).
    pub prefs: Mutex<DesktopPrefs>,
    /// A deep link waiting for the dashboard to take it.
    pub pending_link: Mutex<Option<JoinLink>>,
    /// Start at login.
    pub autostart: AutostartEntry,
    /// The dashboard window's process.
    pub windows: WindowControl,
}

/// The desktop's settings as the Settings view shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesktopView {
    /// The owner's answer about start at login; None until asked.
    pub autostart: Option<bool>,
    /// Whether the autostart entry exists now.
    pub autostart_enabled: bool,
    /// The data folder in use.
    pub data_dir: String,
    /// The data folder chosen for the next start, when it differs.
    pub data_dir_next: Option<String>,
}

/// `POST /api/desktop/open`: a second start's hand-over.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// The `tuber://join` link it was started with, if any.
    #[serde(default)]
    pub link: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutostartRequest {
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataDirRequest {
    dir: String,
}

type Shared = State<Arc<Desktop>>;

/// The routes, for `router_with`.
pub fn routes(desktop: Arc<Desktop>) -> Router {
    Router::new()
        .route("/api/desktop", get(view))
        .route("/api/desktop/autostart", post(set_autostart))
        .route("/api/desktop/data-dir", post(set_data_dir))
        .route("/api/desktop/join-link/take", post(take_join_link))
        .route("/api/desktop/open", post(open))
        .with_state(desktop)
}

fn server_error(message: String) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, message)
}

fn current(d: &Desktop) -> DesktopView {
    let prefs = d.prefs.lock().map(|p| p.clone()).unwrap_or_default();
    let next = prefs.data_dir.filter(|p| *p != d.data_dir);
    DesktopView {
        autostart: prefs.autostart,
        autostart_enabled: d.autostart.enabled(),
        data_dir: d.data_dir.display().to_string(),
        data_dir_next: next.map(|p| p.display().to_string()),
    }
}

fn save_prefs(d: &Desktop, change: impl FnOnce(&mut DesktopPrefs)) -> Result<(), ApiError> {
    let mut prefs = d
        .prefs
        .lock()
        .map_err(|_| server_error("the preferences are unavailable; restart Tuber".into()))?;
    let mut next = prefs.clone();
    change(&mut next);
    next.save(&d.config_dir).map_err(|e| {
        server_error(format!(
            "cannot save the preferences in {}: {e}",
            d.config_dir.display()
        ))
    })?;
    *prefs = next;
    Ok(())
}

async fn view(State(d): Shared) -> Json<DesktopView> {
    Json(current(&d))
}

async fn set_autostart(
    State(d): Shared,
    JsonBody(req): JsonBody<AutostartRequest>,
) -> Result<Json<DesktopView>, ApiError> {
    d.autostart
        .set(req.enabled)
        .map_err(|e| server_error(format!("cannot change {}: {e}", d.autostart.path.display())))?;
    save_prefs(&d, |p| p.autostart = Some(req.enabled))?;
    Ok(Json(current(&d)))
}

async fn set_data_dir(
    State(d): Shared,
    JsonBody(req): JsonBody<DataDirRequest>,
) -> Result<Json<DesktopView>, ApiError> {
    let path =
        desktop::check_data_dir(&req.dir).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    save_prefs(&d, |p| p.data_dir = Some(path))?;
    Ok(Json(current(&d)))
}

async fn take_join_link(State(d): Shared) -> Json<Option<JoinLink>> {
    Json(d.pending_link.lock().ok().and_then(|mut l| l.take()))
}

async fn open(
    State(d): Shared,
    JsonBody(req): JsonBody<OpenRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let link = match req.link.as_deref().map(JoinLink::parse) {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => return Err(ApiError(StatusCode::BAD_REQUEST, e.to_string())),
        None => None,
    };
    let has_link = link.is_some();
    if let Some(l) = link {
        if let Ok(mut pending) = d.pending_link.lock() {
            *pending = Some(l);
        }
    }
    d.windows.open(has_link).await;
    Ok(Json(serde_json::json!({ "opened": true })))
}
