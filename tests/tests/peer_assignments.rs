//! The planner's assignments: a trusted peer (joined with an invite) is
//! assigned the swarm's content and holds every assigned piece, pinned,
//! within a bounded time: content published before it joined and content
//! published while it is there. An untrusted peer is assigned nothing.

use std::time::{Duration, Instant};

use tuber_peer::engine::types::SwarmPhase;
use tuber_tests::swarm::{init_tracing, wait_until, Hub, Origin, Peer};

const EARLY: &str = "/files/early-16MiB.bin";
const LATE: &str = "/files/late-24MiB.bin";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trusted_peer_holds_its_assignments_an_untrusted_one_gets_none() {
    init_tracing();
    let origin = Origin::start(&[
        (EARLY, 16 << 20, 0xa551_0001),
        (LATE, 24 << 20, 0xa551_0002),
    ])
    .await;
    let hub = Hub::start(&origin.url(), |c| {
        c.planner.replication = 2;
        c.planner.partition_pieces = 16;
    })
    .await;
    let url = hub.url();
    // Known to the planner before any trusted peer is there.
    let early = hub.manifest(EARLY).await;

    let trusted = Peer::start().await;
    let untrusted = Peer::start().await;
    let invite = hub.invite().await;
    let start = Instant::now();
    trusted.join(&url, Some(&invite)).await;
    untrusted.join(&url, None).await;
    assert!(
        trusted.wait_joined(&url, WAIT).await,
        "the invite makes it trusted"
    );
    assert!(
        !untrusted.wait_joined(&url, WAIT).await,
        "no invite, not trusted"
    );

    // Published while the trusted peer is in the swarm.
    hub.publish(LATE).await;
    let late = hub.manifest(LATE).await;
    let expected = (early.pieces.len() + late.pieces.len()) as u64;

    // One trusted peer and replication 2: every partition is its.
    let t = &trusted;
    let u = url.as_str();
    let took = wait_until(
        Duration::from_secs(60),
        "the trusted peer holds all its assignments",
        move || async move {
            let s = t.swarm(u).await.expect("joined");
            s.assigned_pieces == expected && s.assigned_held == s.assigned_pieces
        },
    )
    .await;
    let s = trusted.swarm(&url).await.expect("joined");
    println!(
        "trusted peer holds {}/{} assigned pieces {took:.2?} after publishing ({:.2?} after joining)",
        s.assigned_held,
        s.assigned_pieces,
        start.elapsed()
    );
    assert_eq!(s.phase, SwarmPhase::Joined { trusted: true });

    // The store has every assigned piece, verified and pinned.
    let store = trusted.engine().store();
    for m in [&early, &late] {
        for (i, hash) in m.pieces.iter().enumerate() {
            let meta = store
                .meta(*hash)
                .await
                .expect("meta")
                .unwrap_or_else(|| panic!("{} piece {i} not held", m.path));
            assert!(meta.pinned, "{} piece {i} is not pinned", m.path);
        }
    }
    assert_eq!(trusted.verify_store(&url).await, expected as usize);
    let totals = store.totals().await.expect("totals");
    assert_eq!(totals.pinned_bytes, early.length + late.length);
    let cached = trusted.engine().cached().await.expect("cached");
    assert!(
        cached.iter().filter(|c| c.assigned).count() == 2,
        "both resources show as assigned: {cached:?}"
    );

    // The untrusted peer, in the swarm the whole time, got nothing.
    let u = untrusted.swarm(&url).await.expect("joined");
    assert_eq!(u.phase, SwarmPhase::Joined { trusted: false });
    assert_eq!(u.assigned_pieces, 0, "{u:?}");
    assert_eq!(u.assigned_held, 0, "{u:?}");
    let ut = untrusted.engine().store().totals().await.expect("totals");
    assert_eq!(ut.pieces, 0, "the untrusted peer prefetched nothing");
    assert_eq!(ut.pinned_bytes, 0);
}
