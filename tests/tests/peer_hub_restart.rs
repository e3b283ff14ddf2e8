//! The hub restarts (same port, same data) under two running engines: they
//! notice, reconnect by themselves, announce what they hold again, and carry
//! on peer to peer, without anyone restarting them. A peer that joins after
//! the restart reaches them through the new hub (offers relayed to their
//! new sessions).

use std::time::{Duration, Instant};

use tuber_peer::engine::types::SwarmPhase;
use tuber_tests::swarm::{init_tracing, sha256_hex, wait_provider, wait_until, Hub, Origin, Peer};

const R1: &str = "/files/before-16MiB.bin";
const R2: &str = "/files/after-16MiB.bin";
const LEN: usize = 16 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peers_carry_on_after_a_hub_restart() {
    init_tracing();
    let origin = Origin::start(&[(R1, LEN, 0x4e5_0001), (R2, LEN, 0x4e5_0002)]).await;
    let mut hub = Hub::start(&origin.url(), |_| {}).await;
    let url = hub.url();
    let m1 = hub.manifest(R1).await;
    let m2 = hub.manifest(R2).await;

    let a = Peer::start().await;
    let b = Peer::start().await;
    for p in [&a, &b] {
        p.join(&url, None).await;
        p.wait_joined(&url, WAIT).await;
    }
    for path in [R1, R2] {
        let s = a.fetch(&url, path, Duration::from_secs(60)).await;
        assert_eq!(s.failed, 0, "A seeds {path}: {s:?}");
    }
    wait_provider(&url, &a.id(), &m1.pieces, WAIT).await;
    let before = b.fetch(&url, R1, Duration::from_secs(60)).await;
    assert_eq!(
        before.from_peers,
        m1.pieces.len() as u64,
        "before the restart: {before:?}"
    );

    hub.stop().await;
    let (pa, pb) = (&a, &b);
    let u = url.as_str();
    wait_until(
        WAIT,
        "both peers notice the hub is gone",
        move || async move {
            !matches!(pa.phase(u).await, Some(SwarmPhase::Joined { .. }))
                && !matches!(pb.phase(u).await, Some(SwarmPhase::Joined { .. }))
        },
    )
    .await;
    println!(
        "while down: A {:?}, B {:?}",
        a.phase(&url).await,
        b.phase(&url).await
    );
    let restarted = Instant::now();
    hub.restart().await;
    a.wait_joined(&url, WAIT).await;
    b.wait_joined(&url, WAIT).await;
    println!(
        "both rejoined {:.2?} after the restart",
        restarted.elapsed()
    );
    // A's holdings reach the new hub without being asked.
    wait_provider(&url, &a.id(), &m2.pieces, WAIT).await;
    println!(
        "A re-announced its pieces {:.2?} after the restart",
        restarted.elapsed()
    );

    // B carries on with A.
    let hub_pieces = hub.pieces_served().await;
    let got = b.fetch(&url, R2, Duration::from_secs(60)).await;
    println!("B after the restart: {got:?}");
    assert_eq!(got.failed, 0, "{got:?}");
    assert_eq!(
        got.from_peers,
        m2.pieces.len() as u64,
        "peer to peer: {got:?}"
    );
    assert_eq!(got.from_hub, 0, "{got:?}");
    assert_eq!(
        hub.pieces_served().await,
        hub_pieces,
        "nothing from the hub"
    );
    assert_eq!(sha256_hex(&b.reassemble(&m2).await), origin.sha256(R2));

    // A newcomer connects to them through the restarted hub.
    let c = Peer::start().await;
    c.join(&url, None).await;
    c.wait_joined(&url, WAIT).await;
    let got = c.fetch(&url, R1, Duration::from_secs(60)).await;
    println!("newcomer C: {got:?}");
    assert_eq!(got.failed, 0, "{got:?}");
    assert_eq!(
        got.from_peers,
        m1.pieces.len() as u64,
        "peer to peer: {got:?}"
    );
    assert_eq!(
        hub.pieces_served().await,
        hub_pieces,
        "nothing from the hub"
    );
    assert_eq!(sha256_hex(&c.reassemble(&m1).await), origin.sha256(R1));
}
