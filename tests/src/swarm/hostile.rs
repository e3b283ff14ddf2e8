//! A hostile signaling client: a raw WebSocket to the hub from a chosen
//! source address on loopback (127.0.1.2 and 127.0.0.1 are two networks to
//! the hub), speaking the signaling protocol by hand.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tuber_proto::signal::{self, ClientToHub, HubToClient, Role};

const WAIT: Duration = Duration::from_secs(30);

/// A signaling WebSocket.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket to the hub's signaling from source address `from`, with an
/// `Origin` header if given; Err(status) if the upgrade was refused.
pub async fn connect_from(hub: SocketAddr, from: &str, origin: Option<&str>) -> Result<Ws, u16> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("source address"))
        .expect("bind the client to its network");
    let tcp = tokio::time::timeout(WAIT, socket.connect(hub))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut req = format!("ws://{hub}/.tuber/ws")
        .into_client_request()
        .expect("request");
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", o.parse().expect("origin header"));
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("upgrade answered in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

/// Sends one signaling message.
pub async fn send(ws: &mut Ws, msg: &ClientToHub) {
    let text = signal::encode(msg).expect("encode");
    ws.send(Message::Text(text.into())).await.expect("send");
}

/// The next signaling message (pings and other frames skipped).
pub async fn recv(ws: &mut Ws) -> HubToClient {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = frame {
            return signal::decode(t.as_str()).expect("decode");
        }
    }
}

/// Joins as a browser would (no proof), skipping pings.
pub async fn hostile_browser(hub: SocketAddr, from: &str) -> Ws {
    let mut ws = connect_from(hub, from, None).await.expect("upgrade");
    assert!(matches!(recv(&mut ws).await, HubToClient::Challenge { .. }));
    let hello = ClientToHub::Hello {
        version: tuber_proto::limits::PROTOCOL_VERSION,
        role: Role::Browser,
        proof: None,
        invite: None,
        capacity: None,
        agent: "hostile/1".into(),
    };
    send(&mut ws, &hello).await;
    assert!(matches!(recv(&mut ws).await, HubToClient::Welcome { .. }));
    ws
}
