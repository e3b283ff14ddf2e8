//! Issue #14, "ban anyone": a hostile client on three networks (sockets
//! bound to 127.0.0.2, 127.0.1.2 and 127.0.2.2: three /24s to the hub)
//! blames an honest trusted peer for every piece it holds, without ever
//! having been sent to it. The hub (default rules: three networks ban)
//! does not ban the honest peer, which goes on serving an honest
//! requester. A page of a foreign site cannot even open signaling: its
//! `Origin` is refused with 403 before the upgrade.

use std::time::Duration;

use tuber_peer::engine::types::SwarmPhase;
use tuber_proto::signal::{BadPiece, ClientToHub, HubToClient};
use tuber_proto::{PeerId, PieceHash};
use tuber_tests::swarm::hostile::{connect_from, hostile_browser, recv, send, Ws};
use tuber_tests::swarm::{init_tracing, wait_provider, Hub, Origin, Peer};

const PATH: &str = "/files/honest-4MiB.bin";
const LEN: usize = 4 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(30);

/// Blames `victim` for `pieces` (64 a report) and waits until the hub
/// handled it (the pong after it).
async fn blame_all(ws: &mut Ws, victim: PeerId, pieces: &[PieceHash]) {
    for chunk in pieces.chunks(64) {
        let bad = chunk
            .iter()
            .map(|p| BadPiece {
                peer: victim,
                piece: *p,
            })
            .collect();
        send(
            ws,
            &ClientToHub::Report {
                transfers: vec![],
                bad,
            },
        )
        .await;
    }
    send(ws, &ClientToHub::Ping { nonce: 42 }).await;
    loop {
        match recv(ws).await {
            HubToClient::Pong { nonce: 42 } => return,
            HubToClient::Error { code, message } => panic!("hub refused: {code:?} {message}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blames_from_a_client_never_sent_to_a_peer_do_not_ban_it() {
    init_tracing();
    let origin = Origin::start(&[(PATH, LEN, 0xfa15e)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    let url = hub.url();
    let manifest = hub.manifest(PATH).await;

    let honest = Peer::start().await;
    honest.join(&url, Some(&hub.invite().await)).await;
    assert!(honest.wait_joined(&url, WAIT).await, "trusted");
    let s = honest.fetch(&url, PATH, Duration::from_secs(60)).await;
    assert_eq!(s.failed, 0, "{s:?}");
    wait_provider(&url, &honest.id(), &manifest.pieces, WAIT).await;
    let victim = PeerId::from_hex(&honest.id()).expect("peer id");

    // A foreign page cannot open signaling; the hub's own page can.
    let foreign = connect_from(hub.addr, "127.0.0.1", Some("https://evil.example")).await;
    assert_eq!(foreign.err(), Some(403), "a foreign Origin is refused");
    let own = format!("http://{}", hub.addr);
    assert!(connect_from(hub.addr, "127.0.0.1", Some(&own))
        .await
        .is_ok());

    // Three networks, each blaming the honest peer for every piece.
    let mut hostile = Vec::new();
    for from in ["127.0.0.2", "127.0.1.2", "127.0.2.2"] {
        let mut ws = hostile_browser(hub.addr, from).await;
        blame_all(&mut ws, victim, &manifest.pieces).await;
        hostile.push(ws);
    }
    assert_eq!(hub.metric("tuber_bans").await, 0, "nobody banned");
    assert!(
        matches!(honest.phase(&url).await, Some(SwarmPhase::Joined { .. })),
        "the honest peer stays: {:?}",
        honest.phase(&url).await
    );

    // It goes on serving an honest requester, peer to peer.
    let requester = Peer::start().await;
    requester.join(&url, None).await;
    assert!(!requester.wait_joined(&url, WAIT).await, "not trusted");
    let got = requester.fetch(&url, PATH, Duration::from_secs(60)).await;
    println!("requester fetched: {got:?}");
    assert_eq!(got.failed, 0, "{got:?}");
    assert_eq!(got.from_peers, manifest.pieces.len() as u64, "{got:?}");
    assert_eq!(hub.metric("tuber_bans").await, 0);
    drop(hostile);
}
