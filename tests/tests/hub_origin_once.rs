//! The origin sends each byte once (issue #12, part 1), measured by what a
//! real origin served, against the real hub:
//!
//! - A viewer the Service Worker does not control yet gets a resource
//!   through the proxy: the hub hashes those very bytes for the manifest
//!   and serves every piece from its cache afterwards; the origin sends one
//!   copy.
//! - A controlled viewer asks for the manifest first, with another viewer
//!   asking at the same time: one read of the origin, and pieces from the
//!   cache.
//! - A playlist passing through the proxy makes the hub fetch none of the
//!   segments it lists; a segment is read (once) when first asked for.

use std::time::Duration;

use tuber_tests::swarm::{http, init_tracing, wait_until, Hub, Origin};

const MIB: usize = 1024 * 1024;

async fn get(url: &str) -> (http::StatusCode, bytes::Bytes) {
    let req = http::Request::get(url)
        .body(Default::default())
        .expect("request");
    let (status, _, body) = http(req).await;
    (status, body)
}

/// Every piece of `path` from the hub's piece endpoint, checked against
/// the origin's bytes.
async fn all_pieces(hub: &Hub, origin: &Origin, path: &str) {
    let m = hub.manifest(path).await;
    let want = origin.bytes(path);
    let mut got = Vec::with_capacity(want.len());
    for p in &m.pieces {
        let (status, body) = get(&format!("{}.tuber/piece/{p}", hub.url())).await;
        assert_eq!(status, 200, "piece {p}");
        got.extend_from_slice(&body);
    }
    assert!(got == want[..], "the pieces make the resource");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_uncontrolled_viewer_costs_the_origin_one_copy() {
    init_tracing();
    const PATH: &str = "/files/first-8MiB.bin";
    let origin = Origin::start(&[(PATH, 8 * MIB, 0x0ce1_0001)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;

    // A first visit: straight through the proxy, the whole file.
    let (status, body) = get(&format!("{}{}", hub.url().trim_end_matches('/'), PATH)).await;
    assert_eq!(status, 200);
    assert!(
        body == origin.bytes(PATH),
        "the proxied bytes are the origin's"
    );
    // The publisher got its manifest from those bytes.
    let h = &hub;
    wait_until(
        Duration::from_secs(10),
        "the teed manifest",
        || async move { h.metric("tuber_manifests_teed_total").await == 1 },
    )
    .await;
    // The pieces a first peer would ask the hub for: all from the cache.
    all_pieces(&hub, &origin, PATH).await;
    let served = origin.bytes_served();
    assert!(
        served <= (8 * MIB) as u64 * 105 / 100,
        "the origin sent {served} bytes for one 8 MiB viewer"
    );
    assert_eq!(hub.metric("tuber_manifests_computed_total").await, 1);
    assert_eq!(
        hub.metric("tuber_piece_cache_lookups_total{result=\"miss\"}")
            .await,
        0
    );
    eprintln!(
        "FIGURE uncontrolled viewer: origin sent {:.3} copies",
        served as f64 / (8 * MIB) as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_manifest_requests_read_the_origin_once() {
    init_tracing();
    const PATH: &str = "/files/sw-12MiB.bin";
    let origin = Origin::start(&[(PATH, 12 * MIB, 0x0ce1_0002)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    let (a, b, c) = tokio::join!(hub.manifest(PATH), hub.manifest(PATH), hub.manifest(PATH));
    assert!(a == b && b == c);
    all_pieces(&hub, &origin, PATH).await;
    let served = origin.bytes_served();
    assert!(
        served <= (12 * MIB) as u64 * 105 / 100,
        "the origin sent {served} bytes for one 12 MiB resource"
    );
    assert_eq!(hub.metric("tuber_manifests_computed_total").await, 1);
    eprintln!(
        "FIGURE three manifest requests at once: origin sent {:.3} copies",
        served as f64 / (12 * MIB) as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_playlist_makes_the_hub_fetch_nothing_it_lists() {
    init_tracing();
    let segments: Vec<String> = (0..6).map(|i| format!("/hls/seg{i}.ts")).collect();
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n",
    );
    for s in &segments {
        playlist.push_str(&format!(
            "#EXTINF:2.0,\n{}\n",
            s.trim_start_matches("/hls/")
        ));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    let resources: Vec<(&str, usize, u64)> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), 2 * MIB, 0x0ce1_0100 + i as u64))
        .collect();
    let origin =
        Origin::start_with_texts(&resources, &[("/hls/index.m3u8", playlist.as_str())]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;

    let (status, body) = get(&format!("{}hls/index.m3u8", hub.url())).await;
    assert_eq!(status, 200);
    assert_eq!(body, playlist.as_bytes());
    // Time for an eager publisher to have fetched the segments (it used to).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        origin.bytes_served(),
        playlist.len() as u64,
        "the hub fetched segments nobody asked for"
    );
    // The first request for one segment reads that segment, once.
    hub.manifest(&segments[2]).await;
    all_pieces(&hub, &origin, &segments[2]).await;
    assert_eq!(
        origin.bytes_served(),
        (playlist.len() + 2 * MIB) as u64,
        "one segment asked for, one segment read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_only_for_what_the_rules_distribute() {
    init_tracing();
    let page = "<!doctype html><title>home</title>".repeat(100);
    let origin = Origin::start_with_texts(
        &[("/files/ok.bin", 2 * MIB, 0x0ce1_0200)],
        &[("/index.html", page.as_str())],
    )
    .await;
    let hub = Hub::start(&origin.url(), |c| {
        c.distribute.exclude = vec!["/files/private/*".into()];
    })
    .await;
    for path in [
        "/index.html",
        "/./files/ok.bin",
        "/files/x/../ok.bin",
        "/files//ok.bin",
        "/files/%2e/ok.bin",
    ] {
        let (status, body) = get(&format!("{}.tuber/manifest?path={path}", hub.url())).await;
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
    }
    assert_eq!(
        origin.bytes_served(),
        0,
        "asking for manifests of what is not distributable costs the origin no body"
    );
    hub.manifest("/files/ok.bin").await;
    assert_eq!(origin.bytes_served(), (2 * MIB) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_falling_back_reads_the_hubs_pieces_not_the_origin() {
    init_tracing();
    const PATH: &str = "/files/fallback-8MiB.bin";
    const OTHER: &str = "/files/unknown-2MiB.bin";
    let origin =
        Origin::start(&[(PATH, 8 * MIB, 0x0ce1_0300), (OTHER, 2 * MIB, 0x0ce1_0301)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    // The first viewer's manifest request: the hub reads the body once.
    hub.manifest(PATH).await;
    let after_manifest = origin.bytes_served();
    assert_eq!(after_manifest, (8 * MIB) as u64);
    let read = |path: &'static str, range: &'static str| {
        let req = http::Request::get(format!("{}{}", hub.url().trim_end_matches('/'), path))
            .header("range", range)
            .header("x-tuber-origin", "1")
            .body(Default::default())
            .expect("request");
        async move { http(req).await }
    };
    // What no peer had, read the way web/fetcher.js does: 4 MiB runs.
    let want = origin.bytes(PATH);
    for (range, from, to) in [
        ("bytes=0-4194303", 0, 4 * MIB),
        ("bytes=4194304-8388607", 4 * MIB, 8 * MIB),
        ("bytes=1000-300000", 1000, 300_001),
    ] {
        let (status, headers, body) = read(PATH, range).await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(
            headers["content-range"],
            format!("bytes {from}-{}/{}", to - 1, 8 * MIB).as_str()
        );
        assert!(body == want[from..to], "{range}: the origin's bytes");
    }
    assert_eq!(
        origin.bytes_served(),
        after_manifest,
        "the fallback reads cost the origin nothing"
    );
    // A resource the hub has no manifest for is forwarded as before. Seeing
    // it, the hub's publisher also hashes it once, in the background (one
    // copy, so later viewers get it from peers): wait for that to settle,
    // so the count does not depend on which finishes first.
    let (status, _, body) = read(OTHER, "bytes=0-99").await;
    assert_eq!(status, 206);
    assert_eq!(body.len(), 100);
    let settled = std::time::Instant::now();
    while hub.metric("tuber_manifests_computed_total").await < 2
        && settled.elapsed() < std::time::Duration::from_secs(5)
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let hashed = hub.metric("tuber_manifests_computed_total").await - 1;
    assert!(hashed <= 1, "hashed {hashed} times");
    assert_eq!(
        origin.bytes_served(),
        after_manifest + 100 + hashed * (2 * MIB) as u64,
        "the forward cost the origin its 100 bytes (and the manifest, if made, one copy)"
    );
}
