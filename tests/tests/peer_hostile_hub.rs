//! A hub a permanent peer joins may be hostile. Against the real hub and a
//! real engine:
//!
//! - **The login relay.** A relaying hub copies the real hub's swarm id,
//!   passes the real hub's challenge to the peer and the peer's `hello`
//!   back (verbatim, then with the origin relabelled as the real hub's).
//!   The real hub refuses both, and the peer's own session with the real
//!   hub stays up, trusted, throughout.
//! - **A descriptor pointing elsewhere.** A hub whose descriptor sends
//!   manifests and pieces to another host is refused before any signaling,
//!   with the field named.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as TMessage;
use tuber_peer::engine::types::SwarmPhase;
use tuber_proto::signal::{self, ClientToHub, HubToClient};
use tuber_proto::SwarmDescriptor;
use tuber_tests::swarm::{http, init_tracing, wait_until, Hub, Origin, Peer};

const WAIT: Duration = Duration::from_secs(30);

/// What the relaying hub saw the real hub answer, attempt by attempt.
#[derive(Default)]
struct Seen {
    answers: Vec<HubToClient>,
    connections: usize,
}

#[derive(Clone)]
struct Relay {
    /// The real hub's signaling URL.
    target: String,
    /// The real hub's origin, for the relabelling attempt.
    target_origin: String,
    descriptor: Arc<Vec<u8>>,
    seen: Arc<Mutex<Seen>>,
}

async fn descriptor(State(r): State<Relay>) -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        r.descriptor.as_ref().clone(),
    )
}

async fn ws(State(r): State<Relay>, upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade.on_upgrade(move |socket| relay(r, socket))
}

/// One relayed login: the real hub's challenge to the peer, the peer's
/// hello to the real hub (relabelled on every second attempt), the real
/// hub's answer recorded and passed back.
async fn relay(r: Relay, mut peer: WebSocket) {
    let attempt = {
        let mut seen = r.seen.lock().unwrap();
        seen.connections += 1;
        seen.connections
    };
    let Ok(Ok((mut hub, _))) =
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(r.target.as_str())).await
    else {
        return;
    };
    let Some(Ok(TMessage::Text(challenge))) = hub.next().await else {
        return;
    };
    if peer
        .send(AxMessage::Text(challenge.as_str().into()))
        .await
        .is_err()
    {
        return;
    }
    let hello = loop {
        match tokio::time::timeout(WAIT, peer.recv()).await {
            Ok(Some(Ok(AxMessage::Text(t)))) => break t.to_string(),
            Ok(Some(Ok(_))) => continue,
            _ => return,
        }
    };
    let hello = if attempt % 2 == 0 {
        let mut msg = signal::decode::<ClientToHub>(&hello).expect("the peer's hello");
        if let ClientToHub::Hello {
            proof: Some(proof), ..
        } = &mut msg
        {
            proof.origin = r.target_origin.clone();
        }
        signal::encode(&msg).expect("encode")
    } else {
        hello
    };
    if hub.send(TMessage::text(hello)).await.is_err() {
        return;
    }
    let answer = loop {
        match tokio::time::timeout(WAIT, hub.next()).await {
            Ok(Some(Ok(TMessage::Text(t)))) => {
                let m: HubToClient = signal::decode(t.as_str()).expect("the hub's answer");
                if matches!(m, HubToClient::Ping { .. }) {
                    continue;
                }
                break m;
            }
            Ok(Some(Ok(_))) => continue,
            _ => return,
        }
    };
    let text = signal::encode(&answer).expect("encode");
    r.seen.lock().unwrap().answers.push(answer);
    let _ = peer.send(AxMessage::Text(text.into())).await;
}

/// Serves `router` on `listener` until aborted.
fn serve(listener: tokio::net::TcpListener, router: Router) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

/// The real hub's descriptor.
async fn real_descriptor(hub: &Hub) -> SwarmDescriptor {
    let req = http::Request::get(format!("{}.well-known/tuber", hub.url()))
        .body(Default::default())
        .expect("request");
    let (status, _, body) = http(req).await;
    assert_eq!(status, 200);
    SwarmDescriptor::decode(&body).expect("descriptor")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relayed_login_is_refused_and_the_peers_own_session_stays_up() {
    init_tracing();
    let origin = Origin::start(&[("/files/a.bin", 2 << 20, 0x5e1a_0001)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    let peer = Peer::start().await;
    let invite = hub.invite().await;
    peer.join(&hub.url(), Some(&invite)).await;
    assert!(
        peer.wait_joined(&hub.url(), WAIT).await,
        "trusted on the real hub"
    );
    let real = real_descriptor(&hub).await;

    // The relaying hub: the real swarm id, its own origin.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let relay_addr = listener.local_addr().expect("addr");
    let evil = format!("http://{relay_addr}");
    let copied = SwarmDescriptor {
        origin: format!("{evil}/"),
        signaling: format!("ws://{relay_addr}/.tuber/ws"),
        manifest: format!("{evil}/.tuber/manifest"),
        pieces: format!("{evil}/.tuber/piece/"),
        register: format!("{evil}/.tuber/register"),
        ..real.clone()
    };
    let state = Relay {
        target: real.signaling.clone(),
        target_origin: tuber_proto::origin::origin_of(&hub.url()).expect("origin"),
        descriptor: Arc::new(copied.encode()),
        seen: Arc::default(),
    };
    let router = Router::new()
        .route("/.well-known/tuber", get(descriptor))
        .route("/.tuber/ws", get(ws))
        .with_state(state.clone());
    let relay_task = serve(listener, router);

    // The peer is lured to the relay (an ordinary join of another site).
    peer.join(&format!("{evil}/"), None).await;
    let seen = &state.seen;
    wait_until(WAIT, "two relayed logins answered", || async move {
        seen.lock().unwrap().answers.len() >= 2
    })
    .await;
    let answers = std::mem::take(&mut state.seen.lock().unwrap().answers);
    for (i, a) in answers.iter().enumerate() {
        match a {
            HubToClient::Error { code, message } => {
                assert_eq!(
                    *code,
                    signal::ErrorCode::Unauthorized,
                    "attempt {i}: {message}"
                );
            }
            other => panic!("attempt {i}: the real hub let the relay in: {other:?}"),
        }
    }
    // The verbatim relay is named for what it is.
    let HubToClient::Error { message, .. } = &answers[0] else {
        unreachable!()
    };
    assert!(message.contains(&evil), "{message}");

    // The peer's own session with the real hub never dropped.
    assert_eq!(
        peer.phase(&hub.url()).await,
        Some(SwarmPhase::Joined { trusted: true })
    );
    relay_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descriptor_pointing_at_another_host_is_refused_before_signaling() {
    init_tracing();
    let origin = Origin::start(&[("/files/a.bin", 1 << 20, 0x5e1a_0002)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    let real = real_descriptor(&hub).await;
    let seen: Arc<Mutex<Seen>> = Arc::default();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let own = format!("http://{addr}");
    // Signaling on its own origin, manifests and pieces at the real hub.
    let foreign = SwarmDescriptor {
        origin: format!("{own}/"),
        signaling: format!("ws://{addr}/.tuber/ws"),
        register: format!("{own}/.tuber/register"),
        ..real
    };
    let state = Relay {
        target: String::new(),
        target_origin: String::new(),
        descriptor: Arc::new(foreign.encode()),
        seen: Arc::clone(&seen),
    };
    let router = Router::new()
        .route("/.well-known/tuber", get(descriptor))
        .route("/.tuber/ws", get(ws))
        .with_state(state);
    let task = serve(listener, router);

    let peer = Peer::start().await;
    peer.join(&format!("{own}/"), None).await;
    let p = &peer;
    let url = format!("{own}/");
    let u = url.as_str();
    wait_until(WAIT, "the join stops with an error", move || async move {
        matches!(p.phase(u).await, Some(SwarmPhase::Error { .. }))
    })
    .await;
    let Some(SwarmPhase::Error { code, message }) = peer.phase(&url).await else {
        unreachable!()
    };
    assert_eq!(code, "descriptor_refused", "{message}");
    assert!(
        message.contains("manifest") && message.contains(&own),
        "{message}"
    );
    assert_eq!(
        seen.lock().unwrap().connections,
        0,
        "no signaling connection to a hub whose descriptor is refused"
    );
    task.abort();
}
