//! An unreachable upstream gets a clear 502 (504 on a connect timeout) in
//! the client's preferred form, and the proxy keeps serving once the
//! upstream is back.

mod proxy_support;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http::{header, StatusCode};
use proxy_support::{bounded, settings, spawn_proxy, spawn_proxy_with, Server};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tuber_hub::proxy::error_page::HEADLINE;

#[tokio::test]
async fn closed_port_gives_502_and_the_proxy_recovers() {
    // A port that was free a moment ago and now has no listener.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let proxy = spawn_proxy(upstream).await;
    let url = proxy.server.url("/page");

    let (parts, body) = proxy_support::get(&url, &[("accept", "text/html,*/*;q=0.8")]).await;
    assert_eq!(parts.status, StatusCode::BAD_GATEWAY);
    assert!(parts.headers[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let page = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(page.contains(HEADLINE), "{page}");
    assert!(page.contains("connection refused"), "{page}");
    assert!(page.len() < 2048, "a small page");

    let (parts, body) = proxy_support::get(&url, &[("accept", "application/json")]).await;
    assert_eq!(parts.status, StatusCode::BAD_GATEWAY);
    assert!(parts.headers[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain"));
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(text.starts_with(HEADLINE), "{text}");

    // The upstream comes up on the same port: the same proxy serves it.
    let listener = TcpListener::bind(upstream).await.expect("rebind the port");
    let up = Server::on(
        listener,
        Router::new().route("/page", get(|| async { "back" })),
    );
    let (parts, body) = proxy_support::get(&url, &[]).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "back");

    bounded(proxy.server.shutdown()).await;
    bounded(up.shutdown()).await;
}

#[tokio::test]
async fn connect_timeout_gives_504() {
    // A listener that never accepts, with its accept queue filled: the
    // kernel then ignores new SYNs and a connect hangs until it times out.
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut held = Vec::new();
    let mut saturated = false;
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => panic!("connect failed: {e}"),
            Err(_) => {
                saturated = true;
                break;
            }
        }
    }
    assert!(saturated, "accept queue never filled");

    let mut s = settings(addr);
    s.connect_timeout = Duration::from_millis(300);
    let proxy = spawn_proxy_with(s).await;
    let (parts, body) = proxy_support::get(&proxy.server.url("/"), &[]).await;
    assert_eq!(parts.status, StatusCode::GATEWAY_TIMEOUT);
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(text.contains("timed out"), "{text}");

    bounded(proxy.server.shutdown()).await;
    drop((held, listener));
}
