//! The dashboard's calls as Tauri commands: each is forwarded to the core's
//! local API (the same calls as the headless daemon's, plus
//! `/api/desktop/`), where it is one engine call.

use hyper::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tauri::{ipc::Invoke, Runtime, State};
use tuber_peer::daemon::DaemonError;
use tuber_peer::SettingsPatch;

use super::Backend;

/// A failed command, as the dashboard sees it: what went wrong and what to
/// do, and the HTTP status of the API (so one dashboard handles both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// What went wrong.
    pub message: String,
    /// 400 bad input, 404 not joined, 409 already joined, 502 the hub,
    /// 500 else, 0 when the core did not answer.
    pub status: u16,
}

impl From<DaemonError> for CommandError {
    fn from(e: DaemonError) -> Self {
        match e {
            DaemonError::Api { status, message } => Self { message, status },
            other => Self {
                message: format!(
                    "Tuber does not answer ({other}). Quit it from the tray and start it again."
                ),
                status: 0,
            },
        }
    }
}

type Result<T> = std::result::Result<T, CommandError>;

/// Every command, for `Builder::invoke_handler`.
pub fn handler<R: Runtime>() -> impl Fn(Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        status,
        swarms,
        join,
        leave,
        settings,
        update_settings,
        pause,
        resume,
        history,
        cached,
        evict,
        desktop_prefs,
        set_autostart,
        set_data_dir,
        take_join_link,
        events_connected,
    ]
}

async fn get<T: DeserializeOwned>(b: &Backend, path: &str) -> Result<T> {
    Ok(b.client.get(path).await?)
}

async fn send<B: Serialize, T: DeserializeOwned>(
    b: &Backend,
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<T> {
    Ok(b.client.send(method, path, body).await?)
}

#[tauri::command]
async fn status(b: State<'_, Backend>) -> Result<Value> {
    get(&b, "/api/status").await
}

#[tauri::command]
async fn swarms(b: State<'_, Backend>) -> Result<Value> {
    get(&b, "/api/swarms").await
}

#[tauri::command]
async fn join(b: State<'_, Backend>, url: String, invite: Option<String>) -> Result<Value> {
    let body = match invite.filter(|i| !i.trim().is_empty()) {
        Some(i) => json!({ "url": url, "invite": i }),
        None => json!({ "url": url }),
    };
    send(&b, Method::POST, "/api/swarms", Some(&body)).await
}

#[tauri::command]
async fn leave(b: State<'_, Backend>, url: String) -> Result<Value> {
    send(
        &b,
        Method::DELETE,
        "/api/swarms",
        Some(&json!({ "url": url })),
    )
    .await
}

#[tauri::command]
async fn settings(b: State<'_, Backend>) -> Result<Value> {
    get(&b, "/api/settings").await
}

#[tauri::command]
async fn update_settings(b: State<'_, Backend>, patch: SettingsPatch) -> Result<Value> {
    send(&b, Method::PATCH, "/api/settings", Some(&patch)).await
}

#[tauri::command]
async fn pause(b: State<'_, Backend>) -> Result<Value> {
    send(&b, Method::POST, "/api/pause", None::<&()>).await
}

#[tauri::command]
async fn resume(b: State<'_, Backend>) -> Result<Value> {
    send(&b, Method::POST, "/api/resume", None::<&()>).await
}

#[tauri::command]
async fn history(b: State<'_, Backend>) -> Result<Value> {
    get(&b, "/api/history").await
}

#[tauri::command]
async fn cached(b: State<'_, Backend>) -> Result<Value> {
    get(&b, "/api/cached").await
}

#[tauri::command]
async fn evict(b: State<'_, Backend>, swarm: String, resource: String) -> Result<Value> {
    send(
        &b,
        Method::POST,
        "/api/evict",
        Some(&json!({ "swarm": swarm, "resource": resource })),
    )
    .await
}

#[tauri::command]
async fn desktop_prefs(b: State<'_, Backend>) -> Result<Value> {
    get(&b, "/api/desktop").await
}

#[tauri::command]
async fn set_autostart(b: State<'_, Backend>, enabled: bool) -> Result<Value> {
    send(
        &b,
        Method::POST,
        "/api/desktop/autostart",
        Some(&json!({ "enabled": enabled })),
    )
    .await
}

#[tauri::command]
async fn set_data_dir(b: State<'_, Backend>, dir: String) -> Result<Value> {
    send(
        &b,
        Method::POST,
        "/api/desktop/data-dir",
        Some(&json!({ "dir": dir })),
    )
    .await
}

#[tauri::command]
async fn take_join_link(b: State<'_, Backend>) -> Result<Value> {
    send(&b, Method::POST, "/api/desktop/join-link/take", None::<&()>).await
}

/// Whether the engine's events are flowing (the page asks once it listens).
#[tauri::command]
async fn events_connected(b: State<'_, Backend>) -> Result<bool> {
    Ok(b.connected.load(std::sync::atomic::Ordering::Relaxed))
}
