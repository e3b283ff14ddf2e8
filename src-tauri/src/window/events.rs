//! What reaches the window besides command answers: the engine's events
//! (the core's server-sent events, re-emitted as the `engine` Tauri event
//! with the same JSON; `engine-connection` says whether the stream is up)
//! and the core's requests on stdin (`focus`, `join-link`, `quit`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tauri::{AppHandle, Emitter, Manager};
use tokio::io::AsyncBufReadExt;
use tuber_peer::daemon::client::DaemonClient;

use super::MAIN;
use crate::core::window::control;

/// Largest event accepted (a status-sized JSON is far below).
const MAX_EVENT: usize = 1024 * 1024;

/// Starts both relays; they end with the process.
pub fn start(app: AppHandle, client: Arc<DaemonClient>, connected: Arc<AtomicBool>) {
    tauri::async_runtime::spawn(sse(app.clone(), client, connected));
    tauri::async_runtime::spawn(stdin(app));
}

async fn sse(app: AppHandle, client: Arc<DaemonClient>, connected: Arc<AtomicBool>) {
    let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let url = format!(
        "{}/api/events?token={}",
        client.base(),
        client.token().as_str()
    );
    let mut backoff = Duration::from_millis(250);
    loop {
        let opened = async {
            let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
            let resp = http.get(uri).await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("the event stream answered {}", resp.status()));
            }
            Ok(resp.into_body())
        }
        .await;
        match opened {
            Ok(mut body) => {
                connected.store(true, Ordering::Relaxed);
                let _ = app.emit_to(MAIN, "engine-connection", true);
                backoff = Duration::from_millis(250);
                let mut buf = Vec::new();
                while let Some(frame) = body.frame().await {
                    let Ok(frame) = frame else { break };
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    buf.extend_from_slice(data);
                    while let Some(end) = find_blank_line(&buf) {
                        let block: Vec<u8> = buf.drain(..end).collect();
                        if let Some(json) = event_data(&block) {
                            let _ = app.emit_to(MAIN, "engine", json);
                        }
                    }
                    if buf.len() > MAX_EVENT {
                        tracing::warn!("an event larger than {MAX_EVENT} bytes; reconnecting");
                        break;
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "event stream unavailable"),
        }
        connected.store(false, Ordering::Relaxed);
        let _ = app.emit_to(MAIN, "engine-connection", false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// The end (after the blank line) of the first complete event in `buf`.
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// The JSON of an SSE block's `data:` lines; None for comments (keep-alive).
fn event_data(block: &[u8]) -> Option<serde_json::Value> {
    let text = std::str::from_utf8(block).ok()?;
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("data:")
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
        })
        .collect();
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data.join("\n")).ok()
}

async fn stdin(app: AppHandle) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let window = app.get_webview_window(MAIN);
        match line.trim() {
            control::QUIT => app.exit(0),
            control::JOIN_LINK => {
                let _ = app.emit_to(MAIN, "join-link", ());
                if let Some(w) = window {
                    let _ = w.unminimize();
                    let _ = w.set_focus();
                }
            }
            control::FOCUS => {
                if let Some(w) = window {
                    let _ = w.unminimize();
                    let _ = w.set_focus();
                }
            }
            other => tracing::debug!(line = other, "unknown request on stdin"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks() {
        let mut buf = b"event: rates\ndata: {\"type\":\"rates\",\"at\":1}\n\n: keep-alive\n\nevent: x\ndata: {".to_vec();
        let end = find_blank_line(&buf).unwrap();
        let block: Vec<u8> = buf.drain(..end).collect();
        assert_eq!(event_data(&block).unwrap()["at"], 1);
        let end = find_blank_line(&buf).unwrap();
        let block: Vec<u8> = buf.drain(..end).collect();
        assert_eq!(event_data(&block), None, "a comment");
        assert_eq!(find_blank_line(&buf), None, "incomplete");
    }
}
