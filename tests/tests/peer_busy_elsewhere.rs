//! A peer over its budget answers `busy`, and the requester completes
//! elsewhere at once: from another peer holding the same pieces, never the
//! hub, with correct bytes. Twice: A paused, then A with a tiny upload cap.

use std::time::Duration;

use tuber_peer::SettingsPatch;
use tuber_tests::swarm::{init_tracing, sha256_hex, wait_provider, Hub, Origin, Peer};

const PATH: &str = "/files/shared-16MiB.bin";
const LEN: usize = 16 * 1024 * 1024;
const PIECE: u64 = 256 * 1024;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_peer_sends_the_requester_elsewhere() {
    init_tracing();
    let origin = Origin::start(&[(PATH, LEN, 0xb5_0001)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    let url = hub.url();
    let manifest = hub.manifest(PATH).await;
    let n = manifest.pieces.len() as u64;

    let a = Peer::start().await;
    let c = Peer::start().await;
    for p in [&a, &c] {
        p.join(&url, None).await;
        p.wait_joined(&url, WAIT).await;
        let s = p.fetch(&url, PATH, Duration::from_secs(60)).await;
        assert_eq!(s.failed, 0, "seeding: {s:?}");
    }
    wait_provider(&url, &a.id(), &manifest.pieces, WAIT).await;
    wait_provider(&url, &c.id(), &manifest.pieces, WAIT).await;

    // 1. A paused: every request to A is answered busy.
    a.engine().pause().await.expect("pause");
    let requester = Peer::start().await;
    requester.join(&url, None).await;
    requester.wait_joined(&url, WAIT).await;
    let (a_up, c_up) = (up(&a).await, up(&c).await);
    let hub_pieces = hub.pieces_served().await;
    let got = requester.fetch(&url, PATH, Duration::from_secs(60)).await;
    let (a_sent, c_sent) = (up(&a).await - a_up, up(&c).await - c_up);
    println!("paused A: {got:?}; A sent {a_sent} B, C sent {c_sent} B");
    assert_eq!(got.failed, 0, "{got:?}");
    assert_eq!(got.from_peers, n, "all from peers: {got:?}");
    assert_eq!(got.from_hub, 0, "{got:?}");
    assert_eq!(
        hub.pieces_served().await,
        hub_pieces,
        "nothing from the hub"
    );
    assert!(
        a_sent < PIECE,
        "paused A sent no piece, only busy answers ({a_sent} B)"
    );
    assert!(
        c_sent >= LEN as u64,
        "C served the whole resource ({c_sent} B)"
    );
    assert!(
        a.engine()
            .status()
            .await
            .peers
            .iter()
            .any(|p| p.peer == requester.id()),
        "the requester did ask A (they are connected)"
    );
    let bytes = requester.reassemble(&manifest).await;
    assert_eq!(sha256_hex(&bytes), origin.sha256(PATH));
    requester.verify_store(&url).await;

    // 2. A resumed with a tiny upload cap: its bucket holds one piece, then
    // it is busy for hours.
    a.engine().resume().await.expect("resume");
    a.engine()
        .update_settings(SettingsPatch {
            upload_bps: Some(1_000),
            ..SettingsPatch::default()
        })
        .await
        .expect("cap");
    let second = Peer::start().await;
    second.join(&url, None).await;
    second.wait_joined(&url, WAIT).await;
    let (a_up, c_up) = (up(&a).await, up(&c).await);
    let hub_pieces = hub.pieces_served().await;
    let got = second.fetch(&url, PATH, Duration::from_secs(60)).await;
    let (a_sent, c_sent) = (up(&a).await - a_up, up(&c).await - c_up);
    println!("capped A: {got:?}; A sent {a_sent} B, C sent {c_sent} B");
    assert_eq!(got.failed, 0, "{got:?}");
    assert_eq!(got.from_peers, n, "all from peers: {got:?}");
    assert_eq!(got.from_hub, 0, "{got:?}");
    assert_eq!(
        hub.pieces_served().await,
        hub_pieces,
        "nothing from the hub"
    );
    assert!(
        a_sent < 3 * PIECE,
        "A capped at 1000 B/s sent at most its one-piece burst ({a_sent} B)"
    );
    assert!(
        a.engine()
            .status()
            .await
            .peers
            .iter()
            .any(|p| p.peer == second.id()),
        "the second requester did ask A"
    );
    let bytes = second.reassemble(&manifest).await;
    assert_eq!(sha256_hex(&bytes), origin.sha256(PATH));
    second.verify_store(&url).await;
}

async fn up(p: &Peer) -> u64 {
    p.engine().status().await.total.up
}
