//! Live streams (issue #12, part 3), against the real hub and a real
//! trusted permanent peer: a live HLS playlist passing through the proxy
//! (a viewer polling it) makes the hub push its newest segments to trusted
//! peers as they appear, before any viewer asks for one, so the permanent
//! peer seeds the live edge; each segment is read from the origin once,
//! a playlist polled again unchanged costs nothing more, and segments
//! shorter than `min_size` (2 s of video is well under 1 MiB) count.

use std::time::Duration;

use tuber_proto::limits::DEFAULT_PIECE_SIZE;
use tuber_tests::swarm::{http_get, init_tracing, wait_until, Hub, Origin, Peer};

const SEGMENT: usize = 700_000;
const WAIT: Duration = Duration::from_secs(45);

fn live_playlist(first: usize, last: usize) -> String {
    let mut p = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
    );
    for i in first..=last {
        p.push_str(&format!("#EXTINF:2.000,\nseg{i}.ts\n"));
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_live_segments_reach_the_trusted_peer_before_anyone_asks() {
    init_tracing();
    let paths: Vec<String> = (0..6).map(|i| format!("/live/seg{i}.ts")).collect();
    let resources: Vec<(&str, usize, u64)> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), SEGMENT, 0x11fe_0000 + i as u64))
        .collect();
    let first = live_playlist(0, 2);
    let origin =
        Origin::start_with_texts(&resources, &[("/live/index.m3u8", first.as_str())]).await;
    let hub = Hub::start(&origin.url(), |c| {
        c.planner.replication = 1;
    })
    .await;
    let url = hub.url();
    let peer = Peer::start().await;
    peer.join(&url, Some(&hub.invite().await)).await;
    assert!(peer.wait_joined(&url, WAIT).await, "trusted");

    let pieces_per_segment = SEGMENT.div_ceil(DEFAULT_PIECE_SIZE as usize) as u64;
    let holds = |n: u64| {
        let (peer, url) = (&peer, url.as_str());
        move || async move {
            let s = peer.swarm(url).await.expect("joined");
            s.assigned_pieces == n * pieces_per_segment && s.assigned_held == s.assigned_pieces
        }
    };
    let poll = || async {
        let (status, body) = http_get(&format!("{url}live/index.m3u8")).await;
        assert_eq!(status, 200);
        body.len() as u64
    };

    // A viewer polls the playlist: its three segments are pushed.
    let mut playlist_bytes = poll().await;
    let took = wait_until(WAIT, "the first window held by the peer", holds(3)).await;
    assert_eq!(
        origin.bytes_served(),
        playlist_bytes + 3 * SEGMENT as u64,
        "each listed segment read once, nothing else"
    );

    // The stream moves on: seg2..seg5 listed, three of them new.
    origin.set_text("/live/index.m3u8", &live_playlist(2, 5));
    playlist_bytes += poll().await;
    wait_until(WAIT, "the new segments held by the peer", holds(6)).await;
    // Polled again, unchanged: nothing more is read.
    for _ in 0..3 {
        playlist_bytes += poll().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        origin.bytes_served(),
        playlist_bytes + 6 * SEGMENT as u64,
        "six segments, each read once"
    );
    eprintln!("FIGURE live segments held by the trusted peer {took:.2?} after the playlist passed");

    // The peer holds exactly the origin's bytes.
    for p in &paths {
        let m = hub.manifest(p).await;
        assert_eq!(peer.reassemble(&m).await, origin.bytes(p)[..], "{p}");
    }
}
