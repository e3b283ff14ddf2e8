//! `GET /.tuber/ws`, the HTTP side of signaling: who may open a WebSocket.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Connector;
use crate::metrics::Metrics;
use crate::routes::ApiError;
use crate::server::HubState;

/// `GET /.tuber/ws`: signaling. The client's address (behind a trusted
/// proxy, the one it names) decides whom its blames for bad pieces count as
/// (see `signaling/reporter_group.rs`), and one network may hold at most
/// `signaling.max_connections_per_network` connections (`per_network.rs`).
///
/// A browser names the page that opens a WebSocket in `Origin`, and no
/// page can hide it; a WebSocket is not subject to CORS, so without this
/// check any web page could make its visitors' browsers (on many networks)
/// join this swarm and report. A request with an `Origin` that is not one
/// of the hub's own (`HubState::ws_origins`) is refused with 403 before
/// the upgrade. No `Origin` at all is a non-browser client (a permanent
/// peer, a tool), which is allowed: its own network is all it can report
/// from.
pub async fn ws(
    State(state): State<Arc<HubState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin_allowed(origin, &state.ws_origins) {
            tracing::info!(%client, origin = ?origin, "signaling from a foreign page refused");
            Metrics::add(&state.metrics.signaling_refused, 1);
            return ApiError(
                StatusCode::FORBIDDEN,
                "signaling is only for pages of this site".into(),
            )
            .into_response();
        }
    }
    // The client's own address: behind a trusted reverse proxy, the one it
    // names (every connection would otherwise be the proxy's, one network).
    let client = SocketAddr::new(
        state.trusted_proxies.client_ip(client.ip(), &headers),
        client.port(),
    );
    let Some(network_permit) = state.per_network.admit(client.ip()) else {
        tracing::debug!(%client, "signaling refused: too many connections from its network");
        Metrics::add(&state.metrics.signaling_refused, 1);
        return ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections from your network; try later".into(),
        )
        .into_response();
    };
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
            connector
                .serve_limited(socket, swarm, Some(client), Some(network_permit))
                .await;
            drop(permit);
        })
}

/// Whether an `Origin` header names one of `allowed` (serialised origins).
fn origin_allowed(origin: &HeaderValue, allowed: &[String]) -> bool {
    origin
        .to_str()
        .ok()
        .and_then(|o| tuber_proto::origin::origin_of(o).ok())
        .is_some_and(|o| allowed.contains(&o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hubs_own_origins_may_signal() {
        let allowed = vec![
            "https://video.example.org".to_string(),
            "http://127.0.0.1:8080".to_string(),
        ];
        let ok = |o: &str| origin_allowed(&HeaderValue::from_str(o).expect("header"), &allowed);
        assert!(ok("https://video.example.org"));
        assert!(ok("https://VIDEO.example.org:443"));
        assert!(ok("http://127.0.0.1:8080"));
        assert!(!ok("https://evil.example"));
        assert!(!ok("http://video.example.org"), "scheme matters");
        assert!(!ok("https://video.example.org.evil.example"));
        assert!(!ok("null"));
        assert!(!ok(""));
    }
}
