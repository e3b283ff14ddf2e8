//! The connection drops after `hello` carried the invite, so the client
//! cannot know whether the hub redeemed it. When the next attempt's invite
//! is refused as `invite_invalid`, the client retries once without it
//! (the key may already be trusted) instead of giving up. A scripted hub
//! plays the three attempts; it also checks that pings are answered.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tuber_peer::{Invite, SwarmClient, SwarmState};
use tuber_proto::signal::{self, ClientToHub, ErrorCode, HubToClient, Role};
use tuber_proto::{Nonce, SwarmDescriptor};

/// The next WebSocket on `listener`, answering the descriptor requests that
/// come before it (a hub serves both on its one origin).
async fn accept_ws(
    listener: &TcpListener,
    descriptor: &[u8],
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    loop {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 4096];
        let n = s.peek(&mut buf).await.expect("peek");
        if !buf[..n].starts_with(b"GET /.well-known/tuber ") {
            return tokio_tungstenite::accept_async(s).await.expect("upgrade");
        }
        let _ = s.read(&mut buf).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            descriptor.len()
        );
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(descriptor).await;
    }
}

async fn next_text<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> ClientToHub
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let msg = tokio::time::timeout(support::WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return signal::decode(t.as_str()).expect("valid message");
        }
    }
}

async fn say<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, msg: &HubToClient)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let text = signal::encode(msg).expect("encode");
    ws.send(Message::text(text)).await.expect("send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_refused_after_an_unclear_attempt_is_retried_without_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let http_addr = listener.local_addr().expect("addr");
    let descriptor = SwarmDescriptor {
        version: tuber_proto::limits::PROTOCOL_VERSION,
        swarm_id: "scripted".into(),
        name: "scripted".into(),
        origin: format!("http://{http_addr}/"),
        signaling: format!("ws://{http_addr}/.tuber/ws"),
        ice_servers: vec![],
        piece_size: 262_144,
        manifest: format!("http://{http_addr}/.tuber/manifest"),
        pieces: format!("http://{http_addr}/.tuber/piece/"),
        register: format!("http://{http_addr}/.tuber/ws"),
    };
    let descriptor = descriptor.encode();

    let (_keys, id) = support::identity();
    let me = id.peer_id();
    let hub = tokio::spawn(async move {
        let mut invites = Vec::new();
        for attempt in 0..3 {
            let mut ws = accept_ws(&listener, &descriptor).await;
            let nonce = Nonce::from_bytes([attempt; 32]);
            let version = tuber_proto::limits::PROTOCOL_VERSION;
            say(&mut ws, &HubToClient::Challenge { version, nonce }).await;
            let ClientToHub::Hello { invite, proof, .. } = next_text(&mut ws).await else {
                panic!("hello expected");
            };
            assert_eq!(proof.expect("a proof").public_key, me);
            invites.push(invite);
            match attempt {
                // Gone without an answer: was the invite redeemed?
                0 => drop(ws),
                1 => {
                    let refusal = HubToClient::Error {
                        code: ErrorCode::InviteInvalid,
                        message: "the invite has already been used".into(),
                    };
                    say(&mut ws, &refusal).await;
                }
                _ => {
                    let welcome = HubToClient::Welcome {
                        peer_id: me,
                        role: Role::Permanent,
                        trusted: true,
                        swarm_id: "scripted".into(),
                        ping_interval_ms: 1000,
                        ice_servers: vec![],
                    };
                    say(&mut ws, &welcome).await;
                    say(&mut ws, &HubToClient::Ping { nonce: 42 }).await;
                    assert_eq!(next_text(&mut ws).await, ClientToHub::Pong { nonce: 42 });
                    return (invites, ws);
                }
            }
        }
        unreachable!()
    });

    let (client, _inbound) = SwarmClient::builder(format!("http://{http_addr}/"), id)
        .invite(Invite::new("inv_once"))
        .join()
        .expect("join");
    let mut state = client.state();
    let s = support::wait_for(&mut state, "Joined", |s| {
        matches!(s, SwarmState::Joined { .. } | SwarmState::Refused { .. })
    })
    .await;
    assert!(
        matches!(s, SwarmState::Joined { trusted: true, .. }),
        "{s:?}"
    );
    let (invites, _ws) = tokio::time::timeout(Duration::from_secs(10), hub)
        .await
        .expect("the script ends")
        .expect("the script passed");
    assert_eq!(
        invites,
        vec![
            Some("inv_once".to_string()),
            Some("inv_once".to_string()),
            None
        ]
    );
    client.leave().await;
}
