//! Signaling with real WebSocket clients against real swarm actors: relay,
//! isolation between swarms, proofs and invites, malformed and oversized
//! frames answered with an error while other clients carry on, and bans for
//! bad pieces counted per network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tuber_hub::config::SignalingConfig;
use tuber_hub::db::HubDb;
use tuber_hub::metrics::Metrics;
use tuber_hub::planner::{BanReporters, PlannerConfig};
use tuber_hub::signaling::{Access, Connector, Signaling, SwarmHandle};
use tuber_proto::signal::{
    self, BadPiece, ClientToHub, ErrorCode, HubToClient, Role, Signature, TrustProof,
};
use tuber_proto::PeerId;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Harness {
    addr: std::net::SocketAddr,
    db: HubDb,
    _dir: tempfile::TempDir,
    _signaling: Signaling,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct AppState {
    connector: Connector,
    swarms: Arc<Vec<SwarmHandle>>,
}

async fn ws_route(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(swarm) = s.swarms.iter().find(|h| h.id() == id).cloned() else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let connector = s.connector.clone();
    upgrade
        .max_message_size(Connector::MAX_WS_MESSAGE)
        .on_upgrade(move |ws| async move { connector.serve(ws, swarm, Some(client)).await })
}

/// As [`ws_route`], but the hub is told the connection came from
/// 203.0.113.9 (documentation range): a client elsewhere on the network,
/// which loopback tests cannot otherwise be. No packet goes there.
async fn remote_route(
    State(s): State<AppState>,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(swarm) = s.swarms.iter().find(|h| h.id() == id).cloned() else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let connector = s.connector.clone();
    let client = SocketAddr::from(([203, 0, 113, 9], 50_000));
    upgrade
        .max_message_size(Connector::MAX_WS_MESSAGE)
        .on_upgrade(move |ws| async move { connector.serve(ws, swarm, Some(client)).await })
}

async fn harness(settings: SignalingConfig) -> Harness {
    harness_with(settings, PlannerConfig::default()).await
}

async fn harness_with(settings: SignalingConfig, planner: PlannerConfig) -> Harness {
    let access = Access {
        origin: HUB_ORIGIN.into(),
        refuse_cleartext_invites: false,
        tls: false,
    };
    harness_access(settings, planner, access).await
}

async fn harness_access(
    settings: SignalingConfig,
    planner: PlannerConfig,
    access: Access,
) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = HubDb::open(dir.path()).expect("db");
    let mut signaling = Signaling::new(
        settings,
        access,
        planner,
        db.clone(),
        Arc::new(Metrics::default()),
    );
    let swarms = vec![signaling.add_swarm("alpha"), signaling.add_swarm("beta")];
    let state = AppState {
        connector: signaling.connector(),
        swarms: Arc::new(swarms),
    };
    let app = Router::new()
        .route("/ws/{id}", get(ws_route))
        .route("/remote/{id}", get(remote_route))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, service).await;
    });
    Harness {
        addr,
        db,
        _dir: dir,
        _signaling: signaling,
        server,
    }
}

async fn recv(ws: &mut Ws) -> HubToClient {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("stream open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return signal::decode(t.as_str()).expect("hub sends valid messages");
        }
    }
}

async fn send(ws: &mut Ws, msg: &ClientToHub) {
    let text = signal::encode(msg).expect("encode");
    ws.send(Message::Text(text.into())).await.expect("send");
}

async fn connect(h: &Harness, swarm: &str) -> (Ws, tuber_proto::Nonce) {
    connect_at(h, "ws", swarm).await
}

async fn connect_at(h: &Harness, route: &str, swarm: &str) -> (Ws, tuber_proto::Nonce) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/{route}/{swarm}", h.addr))
        .await
        .expect("connect");
    let HubToClient::Challenge { version, nonce } = recv(&mut ws).await else {
        panic!("challenge first");
    };
    assert_eq!(version, tuber_proto::limits::PROTOCOL_VERSION);
    (ws, nonce)
}

async fn browser(h: &Harness, swarm: &str) -> (Ws, PeerId) {
    let (mut ws, _) = connect(h, swarm).await;
    send(&mut ws, &hello(Role::Browser, None, None)).await;
    match recv(&mut ws).await {
        HubToClient::Welcome {
            peer_id,
            role: Role::Browser,
            trusted: false,
            ..
        } => (ws, peer_id),
        other => panic!("expected welcome, got {other:?}"),
    }
}

fn hello(role: Role, proof: Option<TrustProof>, invite: Option<String>) -> ClientToHub {
    serde_json::from_value(serde_json::json!({
        "type": "hello", "version": tuber_proto::limits::PROTOCOL_VERSION, "role": role, "proof": proof, "invite": invite, "agent": "test"
    }))
    .expect("hello")
}

/// The public origin the test hub is given.
const HUB_ORIGIN: &str = "https://hub.example.org";

fn proof(key: &SigningKey, swarm: &str, nonce: &tuber_proto::Nonce) -> TrustProof {
    proof_for(key, HUB_ORIGIN, swarm, nonce)
}

fn proof_for(
    key: &SigningKey,
    origin: &str,
    swarm: &str,
    nonce: &tuber_proto::Nonce,
) -> TrustProof {
    let sig = key.sign(&signal::hello_signing_payload(origin, swarm, nonce));
    TrustProof {
        public_key: PeerId::from_bytes(key.verifying_key().to_bytes()),
        origin: origin.into(),
        signature: Signature(sig.to_bytes()),
    }
}

fn offer(to: PeerId, conn: u32) -> ClientToHub {
    serde_json::from_value(serde_json::json!({
        "type": "offer", "to": to, "conn": conn, "sdp": "v=0\r\n"
    }))
    .expect("offer")
}

/// The next message on `ws` is an `unknown_peer` error naming `why`.
async fn refused(ws: &mut Ws, why: &str) {
    match recv(ws).await {
        HubToClient::Error {
            code: ErrorCode::UnknownPeer,
            message,
        } => assert!(message.contains(why), "{message}"),
        other => panic!("expected unknown_peer ({why}), got {other:?}"),
    }
}

/// `ws` asks who holds the tab pieces and is sent to `provider`.
async fn introduced_to(ws: &mut Ws, provider: PeerId) {
    let want = ClientToHub::Want {
        req: 1,
        pieces: (0..3).map(tab_piece).collect(),
    };
    send(ws, &want).await;
    match recv(ws).await {
        HubToClient::Providers { providers, .. } => {
            assert!(
                providers.iter().any(|p| p.peer == provider),
                "{providers:?}"
            );
        }
        other => panic!("expected providers, got {other:?}"),
    }
}

#[tokio::test]
async fn offers_are_relayed_within_a_swarm_and_not_across() {
    let h = harness(SignalingConfig::default()).await;
    let (mut a, a_id) = browser(&h, "alpha").await;
    let (mut b, b_id) = browser(&h, "alpha").await;
    let (mut c, c_id) = browser(&h, "beta").await;

    // Nobody sent a to b: a bare offer by id is not passed on, and b hears
    // nothing of it; nor an answer or a candidate.
    send(&mut a, &offer(b_id, 8)).await;
    refused(&mut a, "did not introduce").await;
    let candidate = serde_json::from_value(serde_json::json!({
        "type": "candidate", "to": b_id, "conn": 8, "candidate": null
    }))
    .expect("candidate");
    send(&mut a, &candidate).await;
    refused(&mut a, "did not introduce").await;

    // b holds pieces a asks for: the planner sends a to b, and then a's
    // offer is relayed, and b's answer back.
    hold_tab_pieces(&mut b).await;
    introduced_to(&mut a, b_id).await;
    send(&mut a, &offer(b_id, 9)).await;
    match recv(&mut b).await {
        HubToClient::Offer { from, conn: 9, sdp } => {
            assert_eq!(from, a_id);
            assert_eq!(sdp, "v=0\r\n");
        }
        other => panic!("expected the offer, got {other:?}"),
    }
    let answer = ClientToHub::Answer {
        to: a_id,
        conn: 9,
        sdp: "v=0\r\n".into(),
    };
    send(&mut b, &answer).await;
    match recv(&mut a).await {
        HubToClient::Answer { from, conn: 9, .. } => assert_eq!(from, b_id),
        other => panic!("expected the answer, got {other:?}"),
    }
    // b was never sent to a, so b may answer a but not start offering to it.
    send(&mut b, &offer(a_id, 10)).await;
    refused(&mut b, "did not introduce").await;

    // c is in another swarm: unknown here, and c hears nothing.
    send(
        &mut a,
        &serde_json::from_value(serde_json::json!({
            "type": "candidate", "to": c_id, "conn": 9, "candidate": null
        }))
        .expect("candidate"),
    )
    .await;
    match recv(&mut a).await {
        HubToClient::Error {
            code: ErrorCode::UnknownPeer,
            ..
        } => {}
        other => panic!("expected unknown_peer, got {other:?}"),
    }
    send(&mut c, &ClientToHub::Ping { nonce: 5 }).await;
    assert_eq!(
        recv(&mut c).await,
        HubToClient::Pong { nonce: 5 },
        "nothing else reached c"
    );
}

#[tokio::test]
async fn one_network_sends_one_peer_a_few_offers_at_a_time() {
    let h = harness(SignalingConfig::default()).await;
    let (mut donor, donor_id) = browser(&h, "alpha").await;
    hold_tab_pieces(&mut donor).await;
    // Many browsers of one host, each introduced to the donor, each offering.
    let mut relayed = 0;
    let mut refused_count = 0;
    let mut tabs = Vec::new();
    for n in 0..12u32 {
        let (mut ws, _) = browser(&h, "alpha").await;
        introduced_to(&mut ws, donor_id).await;
        send(&mut ws, &offer(donor_id, n)).await;
        send(&mut ws, &ClientToHub::Ping { nonce: n }).await;
        match recv(&mut ws).await {
            HubToClient::Pong { .. } => relayed += 1,
            HubToClient::Error {
                code: ErrorCode::UnknownPeer,
                message,
            } => {
                assert!(message.contains("too many offers"), "{message}");
                refused_count += 1;
            }
            other => panic!("expected pong or refusal, got {other:?}"),
        }
        tabs.push(ws);
    }
    assert_eq!(
        (relayed, refused_count),
        (
            tuber_hub::planner::OFFERS_PER_GROUP_TARGET,
            12 - tuber_hub::planner::OFFERS_PER_GROUP_TARGET
        )
    );
    let mut offers = 0;
    while offers < relayed {
        match recv(&mut donor).await {
            HubToClient::Offer { .. } => offers += 1,
            other => panic!("expected offers, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn bad_frames_get_errors_and_everyone_carries_on() {
    let h = harness(SignalingConfig::default()).await;
    let (mut bad, _) = browser(&h, "alpha").await;
    let (mut good, _) = browser(&h, "alpha").await;

    let oversized = format!(
        r#"{{"type":"ping","nonce":1,"pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let cases: Vec<(Message, ErrorCode)> = vec![
        (Message::Text("{not json".into()), ErrorCode::BadMessage),
        (
            Message::Text(r#"{"type":"teleport"}"#.into()),
            ErrorCode::BadMessage,
        ),
        (Message::Text(r#"["ping",1]"#.into()), ErrorCode::BadMessage),
        (Message::Text(oversized.into()), ErrorCode::TooLarge),
        (Message::Binary(vec![0u8; 10].into()), ErrorCode::BadMessage),
        (
            Message::Text(r#"{"type":"have","pieces":["AB"]}"#.into()),
            ErrorCode::BadMessage,
        ),
    ];
    for (frame, code) in cases {
        bad.send(frame).await.expect("send");
        match recv(&mut bad).await {
            HubToClient::Error { code: got, .. } => assert_eq!(got, code),
            other => panic!("expected an error, got {other:?}"),
        }
    }
    // The offender is still served, and so is everyone else.
    send(&mut bad, &ClientToHub::Ping { nonce: 1 }).await;
    assert_eq!(recv(&mut bad).await, HubToClient::Pong { nonce: 1 });
    send(&mut good, &ClientToHub::Ping { nonce: 2 }).await;
    assert_eq!(recv(&mut good).await, HubToClient::Pong { nonce: 2 });

    // A message far past the transport limit closes only that connection.
    let huge = "x".repeat(Connector::MAX_WS_MESSAGE + 1024);
    let _ = bad.send(Message::Text(huge.into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match bad.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("closed in time");
    assert!(closed);
    send(&mut good, &ClientToHub::Ping { nonce: 3 }).await;
    assert_eq!(recv(&mut good).await, HubToClient::Pong { nonce: 3 });
}

#[tokio::test]
async fn floods_are_rate_limited() {
    let settings = SignalingConfig {
        messages_per_second: 5,
        burst: 5,
        ..SignalingConfig::default()
    };
    let h = harness(settings).await;
    let (mut ws, _) = browser(&h, "alpha").await;
    for n in 0..20 {
        send(&mut ws, &ClientToHub::Ping { nonce: n }).await;
    }
    let mut limited = 0;
    for _ in 0..20 {
        if let HubToClient::Error {
            code: ErrorCode::RateLimited,
            ..
        } = recv(&mut ws).await
        {
            limited += 1;
        }
    }
    assert!(limited >= 10, "{limited} of 20 limited");
}

#[tokio::test]
async fn permanent_peers_prove_their_key_and_invites_make_them_trusted() {
    let h = harness(SignalingConfig::default()).await;
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let other = SigningKey::from_bytes(&[8u8; 32]);

    // A wrong signature (another key's) is refused.
    let (mut ws, nonce) = connect(&h, "alpha").await;
    let mut forged = proof(&other, "alpha", &nonce);
    forged.public_key = PeerId::from_bytes(key.verifying_key().to_bytes());
    send(&mut ws, &hello(Role::Permanent, Some(forged), None)).await;
    assert!(matches!(
        recv(&mut ws).await,
        HubToClient::Error {
            code: ErrorCode::Unauthorized,
            ..
        }
    ));

    // A proof for another swarm does not work here.
    let (mut ws, nonce) = connect(&h, "alpha").await;
    send(
        &mut ws,
        &hello(Role::Permanent, Some(proof(&key, "beta", &nonce)), None),
    )
    .await;
    assert!(matches!(
        recv(&mut ws).await,
        HubToClient::Error {
            code: ErrorCode::Unauthorized,
            ..
        }
    ));

    // A valid proof for another origin (a hub relaying our challenge to a
    // peer that joined it) is refused, and says why.
    let (mut ws, nonce) = connect(&h, "alpha").await;
    let relayed = proof_for(&key, "https://evil.example", "alpha", &nonce);
    send(&mut ws, &hello(Role::Permanent, Some(relayed), None)).await;
    match recv(&mut ws).await {
        HubToClient::Error {
            code: ErrorCode::Unauthorized,
            message,
        } => assert!(message.contains("https://evil.example"), "{message}"),
        other => panic!("expected unauthorized, got {other:?}"),
    }

    // A signature over another origin, relabelled with ours, does not verify.
    let (mut ws, nonce) = connect(&h, "alpha").await;
    let mut relabelled = proof_for(&key, "https://evil.example", "alpha", &nonce);
    relabelled.origin = HUB_ORIGIN.into();
    send(&mut ws, &hello(Role::Permanent, Some(relabelled), None)).await;
    assert!(matches!(
        recv(&mut ws).await,
        HubToClient::Error {
            code: ErrorCode::Unauthorized,
            ..
        }
    ));

    // A valid proof without an invite: welcomed, not trusted.
    let (mut ws, nonce) = connect(&h, "alpha").await;
    send(
        &mut ws,
        &hello(Role::Permanent, Some(proof(&key, "alpha", &nonce)), None),
    )
    .await;
    assert!(matches!(
        recv(&mut ws).await,
        HubToClient::Welcome { trusted: false, .. }
    ));
    drop(ws);

    // With an invite: trusted, and still trusted on the next connection.
    let token =
        h.db.create_invite("home pc", 3600, tuber_hub::db::unix_now())
            .expect("invite");
    let (mut ws, nonce) = connect(&h, "alpha").await;
    send(
        &mut ws,
        &hello(
            Role::Permanent,
            Some(proof(&key, "alpha", &nonce)),
            Some(token.clone()),
        ),
    )
    .await;
    match recv(&mut ws).await {
        HubToClient::Welcome {
            peer_id,
            trusted: true,
            role: Role::Permanent,
            ..
        } => {
            assert_eq!(peer_id.as_bytes(), &key.verifying_key().to_bytes());
        }
        other => panic!("expected a trusted welcome, got {other:?}"),
    }
    drop(ws);
    let (mut ws, nonce) = connect(&h, "alpha").await;
    send(
        &mut ws,
        &hello(Role::Permanent, Some(proof(&key, "alpha", &nonce)), None),
    )
    .await;
    assert!(matches!(
        recv(&mut ws).await,
        HubToClient::Welcome { trusted: true, .. }
    ));

    // The same invite replayed by another key is refused.
    let (mut ws2, nonce) = connect(&h, "alpha").await;
    send(
        &mut ws2,
        &hello(
            Role::Permanent,
            Some(proof(&other, "alpha", &nonce)),
            Some(token),
        ),
    )
    .await;
    assert!(matches!(
        recv(&mut ws2).await,
        HubToClient::Error {
            code: ErrorCode::InviteInvalid,
            ..
        }
    ));

    // Messages before hello are unauthorized; a browser without hello in time is dropped.
    let (mut ws3, _) = connect(&h, "alpha").await;
    send(&mut ws3, &ClientToHub::Ping { nonce: 1 }).await;
    assert!(matches!(
        recv(&mut ws3).await,
        HubToClient::Error {
            code: ErrorCode::Unauthorized,
            ..
        }
    ));
}

#[tokio::test]
async fn a_hub_told_so_refuses_invites_that_came_in_cleartext() {
    for tls in [false, true] {
        let access = Access {
            origin: HUB_ORIGIN.into(),
            refuse_cleartext_invites: true,
            tls,
        };
        let h = harness_access(SignalingConfig::default(), PlannerConfig::default(), access).await;
        let key = SigningKey::from_bytes(&[11u8; 32]);
        let token =
            h.db.create_invite("far away", 3600, tuber_hub::db::unix_now())
                .expect("invite");
        // From elsewhere on the network, over plain HTTP: refused, saying why.
        let (mut ws, nonce) = connect_at(&h, "remote", "alpha").await;
        let p = proof(&key, "alpha", &nonce);
        send(
            &mut ws,
            &hello(Role::Permanent, Some(p), Some(token.clone())),
        )
        .await;
        match recv(&mut ws).await {
            HubToClient::Error {
                code: ErrorCode::InviteInvalid,
                message,
            } if !tls => assert!(message.contains("HTTPS"), "{message}"),
            HubToClient::Welcome { trusted: true, .. } if tls => continue,
            other => panic!("tls {tls}: unexpected {other:?}"),
        }
        // The refused invite was not spent: from loopback (a TLS terminator
        // on this host) it still registers the key.
        let (mut ws, nonce) = connect(&h, "alpha").await;
        let p = proof(&key, "alpha", &nonce);
        send(&mut ws, &hello(Role::Permanent, Some(p), Some(token))).await;
        assert!(matches!(
            recv(&mut ws).await,
            HubToClient::Welcome { trusted: true, .. }
        ));
    }
}

#[tokio::test]
async fn a_hello_of_another_version_is_refused_clearly() {
    let h = harness(SignalingConfig::default()).await;
    let (mut ws, _) = connect(&h, "alpha").await;
    ws.send(Message::Text(
        r#"{"type":"hello","version":1,"role":"browser","agent":""}"#.into(),
    ))
    .await
    .expect("send");
    match recv(&mut ws).await {
        HubToClient::Error {
            code: ErrorCode::UnsupportedVersion,
            message,
        } => {
            assert!(message.contains('1') && message.contains('2'), "{message}");
        }
        other => panic!("expected unsupported_version, got {other:?}"),
    }
}

/// A trusted permanent peer (an operator's volunteer) joins `swarm`; `None`
/// means refused, with the error code.
async fn volunteer(h: &Harness, key: &SigningKey, swarm: &str) -> Result<Ws, ErrorCode> {
    let token =
        h.db.create_invite("volunteer", 3600, tuber_hub::db::unix_now())
            .expect("invite");
    let (mut ws, nonce) = connect(h, swarm).await;
    let hello = hello(
        Role::Permanent,
        Some(proof(key, swarm, &nonce)),
        Some(token),
    );
    send(&mut ws, &hello).await;
    match recv(&mut ws).await {
        HubToClient::Welcome { trusted: true, .. } => Ok(ws),
        HubToClient::Error { code, .. } => Err(code),
        other => panic!("expected welcome or error, got {other:?}"),
    }
}

/// The pieces the tabs of [`three_tabs_blame`] ask for.
fn tab_piece(n: u8) -> tuber_proto::PieceHash {
    tuber_proto::PieceHash::from_bytes([n; 32])
}

/// The volunteer on `ws` says it holds the tabs' pieces (and waits until
/// the hub has taken that in).
async fn hold_tab_pieces(ws: &mut Ws) {
    let pieces = (0..3).map(tab_piece).collect();
    send(ws, &ClientToHub::Have { pieces }).await;
    send(ws, &ClientToHub::Ping { nonce: 3 }).await;
    assert_eq!(recv(ws).await, HubToClient::Pong { nonce: 3 });
}

/// Three browsers (three ids, one host: 127.0.0.1) each ask for a piece,
/// are sent to `accused`, and blame it for that piece; each waits until
/// the hub has handled its report.
async fn three_tabs_blame(h: &Harness, accused: PeerId) {
    for n in 0..3u8 {
        let (mut ws, _) = browser(h, "alpha").await;
        let want = ClientToHub::Want {
            req: 1,
            pieces: vec![tab_piece(n)],
        };
        send(&mut ws, &want).await;
        match recv(&mut ws).await {
            HubToClient::Providers { providers, .. } => {
                assert!(providers.iter().any(|p| p.peer == accused), "{providers:?}");
            }
            other => panic!("expected providers, got {other:?}"),
        }
        let report = ClientToHub::Report {
            transfers: vec![],
            bad: vec![BadPiece {
                peer: accused,
                piece: tab_piece(n),
            }],
        };
        send(&mut ws, &report).await;
        // Handled in order: the pong means the report was counted.
        send(&mut ws, &ClientToHub::Ping { nonce: 7 }).await;
        assert_eq!(recv(&mut ws).await, HubToClient::Pong { nonce: 7 });
    }
}

#[tokio::test]
async fn three_browsers_on_one_host_ban_only_when_peers_count_alone() {
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let id = PeerId::from_bytes(key.verifying_key().to_bytes());

    // distinct_peers: every connection counts, so three tabs ban.
    let planner = PlannerConfig {
        ban_reporters: BanReporters::DistinctPeers,
        ..PlannerConfig::default()
    };
    let h = harness_with(SignalingConfig::default(), planner).await;
    let mut ws = volunteer(&h, &key, "alpha").await.expect("welcomed");
    hold_tab_pieces(&mut ws).await;
    three_tabs_blame(&h, id).await;
    match recv(&mut ws).await {
        HubToClient::Error {
            code: ErrorCode::Banned,
            ..
        } => {}
        other => panic!("expected error banned, got {other:?}"),
    }
    assert_eq!(
        volunteer(&h, &key, "alpha").await.err(),
        Some(ErrorCode::Banned),
        "refused on reconnect"
    );

    // distinct_networks (the default): the three tabs are one network.
    let h = harness(SignalingConfig::default()).await;
    let mut ws = volunteer(&h, &key, "alpha").await.expect("welcomed");
    hold_tab_pieces(&mut ws).await;
    three_tabs_blame(&h, id).await;
    send(&mut ws, &ClientToHub::Ping { nonce: 1 }).await;
    assert_eq!(recv(&mut ws).await, HubToClient::Pong { nonce: 1 });
    drop(ws);
    assert!(volunteer(&h, &key, "alpha").await.is_ok(), "not banned");
}
