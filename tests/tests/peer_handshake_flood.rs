//! Issue #14 item 6, "exhaust a permanent peer": one network (signaling
//! sockets bound to 127.0.1.2) opens 70 browser sessions, has each
//! introduced to permanent peer A (a `want` for a piece A holds), and sends
//! A a real SDP offer from each that it never follows up: no candidates,
//! so A's side of each handshake waits for its full timeout. A permanent
//! peer takes at most 64 handshakes others started; before, all 70 offers
//! reached A and an honest peer B (another network, 127.0.0.1) could not
//! link to A while they waited. Now the hub passes one network only a few
//! offers to one peer at a time (`planner/relay.rs`), and B fetches the
//! whole resource from A, verified, while the flood's handshakes are still
//! open. The hub cannot serve the pieces itself here (no piece cache, the
//! origin refuses ranges), so every piece B gets came from A.

use std::time::Duration;

use tokio::sync::mpsc;
use tuber_peer::transport::{self, RtcConfig, Signal};
use tuber_proto::signal::{ClientToHub, HubToClient};
use tuber_proto::PeerId;
use tuber_tests::swarm::hostile::{hostile_browser, recv, send};
use tuber_tests::swarm::{init_tracing, wait_provider, Hub, Origin, Peer};

const PATH: &str = "/files/flooded-4MiB.bin";
const LEN: usize = 4 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(30);
const FLOOD: u32 = 70;

/// A real offer SDP (a data channel, real fingerprints), from a connection
/// that is dropped at once: it never answers anything.
async fn abandoned_offer() -> String {
    let cfg = RtcConfig {
        udp_addrs: vec!["127.0.0.1:0".into()],
        ..RtcConfig::default()
    };
    let (out, mut signals) = mpsc::channel::<Signal>(64);
    let (_keep_inbound, inbound) = mpsc::channel::<Signal>(64);
    let dialer =
        tokio::spawn(async move { transport::connect_offer(&cfg, out, inbound, WAIT).await });
    let sdp = loop {
        match tokio::time::timeout(WAIT, signals.recv()).await {
            Ok(Some(Signal::Description(sdp))) => break sdp,
            Ok(Some(_)) => continue,
            other => panic!("no offer: {other:?}"),
        }
    };
    dialer.abort();
    sdp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_network_cannot_fill_a_permanent_peers_handshakes() {
    init_tracing();
    let origin = Origin::start(&[(PATH, LEN, 0xf100_d001)]).await;
    let hub = Hub::start(&origin.url(), |c| c.piece_cache_bytes = 0).await;
    let url = hub.url();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("hub address");
    let manifest = hub.manifest(PATH).await;

    let a = Peer::start().await;
    a.join(&url, None).await;
    a.wait_joined(&url, WAIT).await;
    let s = a.fetch(&url, PATH, Duration::from_secs(60)).await;
    assert_eq!(s.failed, 0, "A holds {PATH}: {s:?}");
    wait_provider(&url, &a.id(), &manifest.pieces, WAIT).await;
    let a_id: PeerId = a.id().parse().expect("peer id");
    origin.refuse_ranges(true);

    let sdp = abandoned_offer().await;
    let refused_before = hub.metric("tuber_relays_refused_total").await;
    let mut flood = Vec::new();
    let (mut relayed, mut refused) = (0u32, 0u32);
    for n in 0..FLOOD {
        let mut ws = hostile_browser(addr, "127.0.1.2").await;
        send(
            &mut ws,
            &ClientToHub::Want {
                req: 1,
                pieces: vec![manifest.pieces[0]],
            },
        )
        .await;
        loop {
            match recv(&mut ws).await {
                HubToClient::Providers { providers, .. } => {
                    assert!(providers.iter().any(|p| p.peer == a_id), "{providers:?}");
                    break;
                }
                HubToClient::Ping { nonce } => send(&mut ws, &ClientToHub::Pong { nonce }).await,
                other => panic!("expected providers, got {other:?}"),
            }
        }
        send(
            &mut ws,
            &ClientToHub::Offer {
                to: a_id,
                conn: n,
                sdp: sdp.clone(),
            },
        )
        .await;
        send(&mut ws, &ClientToHub::Ping { nonce: n }).await;
        loop {
            match recv(&mut ws).await {
                HubToClient::Pong { .. } => {
                    relayed += 1;
                    break;
                }
                HubToClient::Error { message, .. } => {
                    assert!(message.contains("too many offers"), "{message}");
                    refused += 1;
                    break;
                }
                HubToClient::Ping { nonce } => send(&mut ws, &ClientToHub::Pong { nonce }).await,
                // A's answer and candidates, relayed back: left unanswered.
                _ => {}
            }
        }
        flood.push(ws);
    }
    println!(
        "{FLOOD} offers from one network to A: {relayed} relayed, {refused} refused \
         (tuber_relays_refused_total +{})",
        hub.metric("tuber_relays_refused_total").await - refused_before
    );

    // B, on another network, fetches from A while those handshakes wait.
    let b = Peer::start().await;
    b.join(&url, None).await;
    b.wait_joined(&url, WAIT).await;
    let s = b.fetch(&url, PATH, WAIT).await;
    println!("B's fetch during the flood: {s:?}");
    assert_eq!(s.failed, 0, "B got every piece: {s:?}");
    assert_eq!(
        s.from_peers,
        manifest.pieces.len() as u64,
        "every piece from A: {s:?}"
    );
    assert!(
        relayed <= tuber_hub::planner::OFFERS_PER_GROUP_TARGET as u32,
        "{relayed} of the flood's offers reached A"
    );
    let got = b.reassemble(&manifest).await;
    assert!(got == origin.bytes(PATH), "B's copy is the origin's bytes");
    drop(flood);
}
