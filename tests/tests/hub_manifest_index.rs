//! Issue #14 item 3: a client cannot grow the hub's state without bound,
//! nor fill the trusted peers with what nobody watches. Against the real
//! hub and real peers, loopback addresses standing for networks: a crawler
//! on 127.0.0.2 asks for the manifests of 200 distinct distributable paths
//! (a site of many small files) while two viewers on 127.1.x and 127.2.x
//! networks ask for one video. The hub keeps at most `manifests.max_count`
//! manifests (in its index and its database, across a restart), the least
//! wanted first; the trusted peer, whose disk holds a fraction of what the
//! crawl touched, is assigned the video the viewers ask for and never more
//! than its disk; an honest downloader gets the video from the trusted peer
//! while the crawl goes on. (Forgetting by age, with an injected clock:
//! `manifests/index/tests.rs` and `db/manifest_index.rs` in tuber-hub.)

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tuber_peer::Settings;
use tuber_tests::swarm::{http_get_from, init_tracing, wait_until, Hub, Origin, Peer, PeerOptions};

const MIB: usize = 1 << 20;
const JUNK: usize = 200;
const JUNK_LEN: usize = 256 << 10;
const HONEST: &str = "/media/honest-4MiB.bin";
const BOUND: usize = 60;
const DONOR_DISK: u64 = 8 << 20;
const WAIT: Duration = Duration::from_secs(30);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// Asks for every path from `from`, eight at a time; how many were answered.
async fn crawl(hub: String, paths: Vec<String>, from: IpAddr) -> usize {
    futures_util::stream::iter(paths)
        .map(|p| {
            let url = format!("{hub}.tuber/manifest?path={p}");
            async move { http_get_from(from, &url).await.0 == 200 }
        })
        .buffer_unordered(8)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crawl_stays_bounded_and_the_donor_keeps_what_viewers_watch() {
    init_tracing();
    let started = Instant::now();
    let junk: Vec<String> = (0..JUNK).map(|i| format!("/crawl/{i:03}.bin")).collect();
    let mut resources: Vec<(&str, usize, u64)> = junk
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), JUNK_LEN, 0x1de0_0000 + i as u64))
        .collect();
    resources.push((HONEST, 4 * MIB, 0x1de1_0001));
    let origin = Origin::start(&resources).await;
    let mut hub = Hub::start(&origin.url(), |c| {
        c.distribute.min_size = 128 << 10;
        c.manifests.max_count = BOUND;
    })
    .await;
    let url = hub.url();

    let donor = Peer::start_with(PeerOptions {
        settings: Settings {
            disk_budget: DONOR_DISK,
            ..Settings::default()
        },
        ..PeerOptions::default()
    })
    .await;
    donor.join(&url, Some(&hub.invite().await)).await;
    assert!(donor.wait_joined(&url, WAIT).await, "the donor is trusted");
    let h = &hub;
    wait_until(WAIT, "the hub counts the donor's disk", || async move {
        h.metric("tuber_donor_capacity_bytes").await == DONOR_DISK
    })
    .await;

    // The crawl's first half fills the donor's disk with junk.
    let crawler = ip("127.0.0.2");
    let half = JUNK / 2;
    let first = crawl(url.clone(), junk[..half].to_vec(), crawler).await;
    assert_eq!(
        first, half,
        "the hub answers the crawler (it is not refused)"
    );

    // Two viewers' networks ask for the video; then the crawl goes on
    // while one of them downloads it.
    let (a, b) = (ip("127.1.0.2"), ip("127.2.0.2"));
    let honest = hub.manifest_from(HONEST, a).await;
    assert_eq!(hub.manifest_from(HONEST, b).await, honest);
    let rest = tokio::spawn(crawl(url.clone(), junk[half..].to_vec(), crawler));
    let took = donor.wait_pinned(&honest, WAIT).await;
    let viewer = Peer::start().await;
    viewer.join(&url, None).await;
    assert!(!viewer.wait_joined(&url, WAIT).await);
    // The honest download comes from the donor, during the crawl.
    let sha = viewer.fetch_from_peers(&url, &honest, WAIT).await;
    assert_eq!(sha, origin.sha256(HONEST));
    let second = rest.await.expect("crawl");
    assert_eq!(second, JUNK - half);
    for v in [a, b] {
        assert_eq!(hub.manifest_from(HONEST, v).await, honest, "still served");
    }

    // Bounded: the index, the database, and what the donor must hold.
    let indexed = hub.metric("tuber_manifests_indexed").await;
    let forgotten = hub
        .metric("tuber_manifests_forgotten_total{reason=\"bound\"}")
        .await;
    let published = hub.metric("tuber_manifests_published_bytes").await;
    assert!(indexed <= BOUND as u64, "{indexed} manifests indexed");
    assert!(
        forgotten >= (JUNK + 1 - BOUND) as u64,
        "{forgotten} forgotten"
    );
    assert!(published <= DONOR_DISK, "{published} bytes published");
    let d = &donor;
    let u = url.as_str();
    wait_until(
        WAIT,
        "the donor's assignments fit its disk",
        || async move {
            let s = d.swarm(u).await.expect("joined");
            let pinned = d
                .engine()
                .store()
                .totals()
                .await
                .expect("totals")
                .pinned_bytes;
            s.assigned_pieces <= DONOR_DISK / JUNK_LEN as u64 && pinned <= DONOR_DISK
        },
    )
    .await;
    let cached = donor.engine().cached().await.expect("cached");
    assert!(
        cached.iter().any(|c| c.resource == HONEST && c.assigned),
        "the video stays assigned: {cached:?}"
    );
    eprintln!(
        "FIGURE crawl of {JUNK} paths against a bound of {BOUND}: {indexed} indexed, {forgotten} forgotten, \
         {:.1} MiB published for a {:.0} MiB donor; donor held the video {took:.1?} after the viewers asked; \
         viewer got all {} pieces from the donor; {:.1?} in all",
        published as f64 / MIB as f64,
        DONOR_DISK as f64 / MIB as f64,
        honest.pieces.len(),
        started.elapsed()
    );

    // Across a restart: the database holds what the index held.
    hub.stop().await;
    {
        let db = tuber_hub::db::HubDb::open(hub.data_dir()).expect("open the hub's database");
        let (n, records) = (db.manifest_count(), db.manifest_index_count());
        assert!(n <= BOUND, "{n} manifests in the database");
        assert_eq!(n, records, "one index record per manifest");
    }
    hub.restart().await;
    let after = hub.metric("tuber_manifests_indexed").await;
    assert!(
        after <= BOUND as u64 && after > 0,
        "{after} indexed after restart"
    );
    assert_eq!(hub.manifest_from(HONEST, a).await, honest);
    assert_eq!(
        hub.metric("tuber_manifests_computed_total").await,
        0,
        "the video's manifest was kept, not made again"
    );
}
