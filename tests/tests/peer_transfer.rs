//! Two permanent peers and a hub: A seeds a 64 MiB resource from the hub,
//! then B gets every piece of it from A over WebRTC, verified, with nothing
//! from the hub's piece endpoint (or the origin) during B's fetch.

use std::time::{Duration, Instant};

use tuber_tests::swarm::{init_tracing, mib_per_s, sha256_hex, wait_provider, Hub, Origin, Peer};

const PATH: &str = "/files/big-64MiB.bin";
const LEN: usize = 64 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_gets_a_whole_resource_from_another_peer() {
    init_tracing();
    let origin = Origin::start(&[(PATH, LEN, 0x7e57_0001)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    let url = hub.url();
    let manifest = hub.manifest(PATH).await;
    assert_eq!(manifest.length, LEN as u64);

    let a = Peer::start().await;
    let b = Peer::start().await;
    a.join(&url, None).await;
    b.join(&url, None).await;
    a.wait_joined(&url, WAIT).await;
    b.wait_joined(&url, WAIT).await;

    let seeded = a.fetch(&url, PATH, Duration::from_secs(60)).await;
    assert_eq!(seeded.failed, 0, "A seeds from the hub: {seeded:?}");
    assert_eq!(
        seeded.from_hub + seeded.from_peers + seeded.already_held,
        manifest.pieces.len() as u64
    );
    wait_provider(&url, &a.id(), &manifest.pieces, WAIT).await;

    let hub_pieces = hub.pieces_served().await;
    let origin_bytes = origin.bytes_served();
    let start = Instant::now();
    let got = b.fetch(&url, PATH, Duration::from_secs(60)).await;
    let elapsed = start.elapsed();
    println!(
        "B fetched {} MiB from A in {elapsed:.2?}: {:.1} MiB/s ({got:?})",
        LEN >> 20,
        mib_per_s(got.bytes_from_peers, elapsed)
    );
    assert_eq!(got.failed, 0, "{got:?}");
    assert_eq!(got.already_held, 0, "{got:?}");
    assert_eq!(got.from_peers, manifest.pieces.len() as u64, "{got:?}");
    assert_eq!(got.bytes_from_peers, LEN as u64, "{got:?}");
    assert_eq!(got.from_hub, 0, "{got:?}");
    assert_eq!(
        hub.pieces_served().await,
        hub_pieces,
        "the hub's piece endpoint served nothing during B's fetch"
    );
    assert_eq!(
        origin.bytes_served(),
        origin_bytes,
        "the origin sent no body bytes during B's fetch"
    );

    let bytes = b.reassemble(&manifest).await;
    assert_eq!(
        sha256_hex(&bytes),
        origin.sha256(PATH),
        "B's bytes are the origin's"
    );
    assert_eq!(b.verify_store(&url).await, manifest.pieces.len());

    let status = b.engine().status().await;
    assert!(
        status.peers.iter().any(|p| p.peer == a.id()),
        "B lists A among its peers: {:?}",
        status.peers
    );
}
