//! The upstream app's own WebSockets keep working through the proxy.

mod proxy_support;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use proxy_support::{bounded, spawn_proxy, Server};
use tokio_tungstenite::tungstenite::Message as ClientMessage;

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let echo = match msg {
            Message::Text(_) | Message::Binary(_) => msg,
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(echo).await.is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    let router = Router::new()
        .route(
            "/ws",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(echo) }),
        )
        .route("/", get(|| async { "plain" }));
    let up = Server::start(router).await;
    let proxy = spawn_proxy(up.addr).await;

    let (mut ws, response) = bounded(tokio_tungstenite::connect_async(format!(
        "ws://{}/ws",
        proxy.server.addr
    )))
    .await
    .expect("handshake through the proxy");
    assert_eq!(response.status(), 101);

    for i in 0..5 {
        let text = format!("hello {i}");
        bounded(ws.send(ClientMessage::text(text.clone())))
            .await
            .expect("send");
        let back = bounded(ws.next()).await.expect("open").expect("frame");
        assert_eq!(back, ClientMessage::text(text));
    }
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i % 256) as u8).collect();
    bounded(ws.send(ClientMessage::binary(blob.clone())))
        .await
        .expect("send");
    let back = bounded(ws.next()).await.expect("open").expect("frame");
    assert_eq!(back.into_data().as_ref(), blob.as_slice());

    bounded(ws.close(None)).await.expect("close");
    // The server answers the close; the stream then ends.
    while let Some(Ok(_)) = bounded(ws.next()).await {}

    // Plain HTTP still works on the same proxy.
    let (parts, body) = proxy_support::get(&proxy.server.url("/"), &[]).await;
    assert_eq!(parts.status, 200);
    assert_eq!(body, "plain");

    // Shutting the proxy down ends it even with a tunnel that was open.
    bounded(proxy.server.shutdown()).await;
    bounded(up.shutdown()).await;
}

/// An idle tunnel must not keep a shut-down proxy alive: dropping the proxy
/// (with the server) closes the client's socket.
#[tokio::test]
async fn open_tunnel_closes_when_the_proxy_goes() {
    let router = Router::new().route(
        "/ws",
        get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(echo) }),
    );
    let up = Server::start(router).await;
    let proxy = spawn_proxy(up.addr).await;
    let (mut ws, _) = bounded(tokio_tungstenite::connect_async(format!(
        "ws://{}/ws",
        proxy.server.addr
    )))
    .await
    .expect("handshake");
    bounded(ws.send(ClientMessage::text("x")))
        .await
        .expect("send");
    assert!(bounded(ws.next()).await.is_some());

    bounded(proxy.server.shutdown()).await;
    // Closed (error or end), not hanging.
    let next = bounded(ws.next()).await;
    assert!(!matches!(next, Some(Ok(ClientMessage::Text(_)))));
    bounded(up.shutdown()).await;
}
