//! Issue #14 item 2: an anonymous client cannot make the hub read far more
//! from the origin than it sends or receives itself. Against the real hub
//! behind a trusted reverse proxy (loopback, so `X-Forwarded-For` names
//! the client, standing for clients on different networks):
//!
//! - a new query string per manifest request for one resource reads its
//!   body once: the others have its strong ETag and length, and are made
//!   from the first manifest (a HEAD each);
//! - crawling many resources through the manifest endpoint, or asking for
//!   the last piece again and again on an upstream that ignores `Range`
//!   with no piece cache, stops at the network's origin budget (429 with
//!   Retry-After), while a client on another network is still served.

use std::time::Duration;

use tuber_tests::swarm::{http, init_tracing, Hub, Origin};

const MIB: usize = 1024 * 1024;

/// A GET from the client at `ip` (via the trusted proxy on loopback).
async fn get_as(ip: &str, url: &str) -> (http::StatusCode, http::HeaderMap, bytes::Bytes) {
    let req = http::Request::get(url)
        .header("x-forwarded-for", ip)
        .body(Default::default())
        .expect("request");
    http(req).await
}

fn manifest_url(hub: &Hub, path: &str) -> String {
    format!(
        "{}.tuber/manifest?path={}",
        hub.url(),
        path.replace('?', "%3F").replace('&', "%26")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_query_string_reads_nothing_more() {
    init_tracing();
    const PATH: &str = "/files/q-8MiB.bin";
    let origin = Origin::start(&[(PATH, 8 * MIB, 0xa3b1_0001)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    let mut sent = 0u64;
    let mut first = None;
    for i in 0..20 {
        let url = manifest_url(&hub, &format!("{PATH}?v={i}&cb={}", i * 7919));
        sent += url.len() as u64;
        let (status, _, body) = get_as("203.0.113.7", &url).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let m = tuber_proto::Manifest::decode(&body).expect("a manifest");
        assert_eq!(m.path, format!("{PATH}?v={i}&cb={}", i * 7919));
        let pieces = m.pieces.clone();
        assert_eq!(
            *first.get_or_insert(pieces.clone()),
            pieces,
            "the same bytes"
        );
    }
    let served = origin.bytes_served();
    eprintln!(
        "FIGURE 20 query strings for one 8 MiB resource: origin sent {:.2} copies ({} bytes for {} bytes of requests)",
        served as f64 / (8 * MIB) as f64,
        served,
        sent
    );
    assert_eq!(
        served,
        (8 * MIB) as u64,
        "one body read, HEADs for the rest"
    );
    assert_eq!(hub.metric("tuber_manifests_computed_total").await, 1);
    assert_eq!(hub.metric("tuber_manifests_aliased_total").await, 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crawl_of_the_manifest_endpoint_stops_at_the_budget() {
    init_tracing();
    let paths: Vec<String> = (0..12).map(|i| format!("/files/c{i}-4MiB.bin")).collect();
    let resources: Vec<(&str, usize, u64)> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), 4 * MIB, 0xa3b1_0100 + i as u64))
        .collect();
    let honest_path = "/files/honest-4MiB.bin";
    let mut all = resources.clone();
    all.push((honest_path, 4 * MIB, 0xa3b1_0200));
    let origin = Origin::start(&all).await;
    let hub = Hub::start(&origin.url(), |c| {
        c.origin_budget_per_network = (10 * MIB) as u64;
    })
    .await;
    let mut ok = 0;
    let mut refused = None;
    for p in &paths {
        let (status, headers, _) = get_as("198.51.100.20", &manifest_url(&hub, p)).await;
        match status.as_u16() {
            200 => ok += 1,
            429 => {
                refused = headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            }
            other => panic!("{p}: {other}"),
        }
    }
    let served = origin.bytes_served();
    eprintln!(
        "FIGURE a crawl of 12 x 4 MiB through the manifest endpoint, 10 MiB/h budget: {ok} read, origin sent {:.1} MiB",
        served as f64 / MIB as f64
    );
    // 10 MiB of budget: two reads, the third into debt, then refused.
    assert_eq!(ok, 3, "reads allowed");
    assert!(served <= (12 * MIB) as u64, "origin sent {served}");
    let retry = refused.expect("refused with Retry-After");
    assert!((60..=3600).contains(&retry), "retry after {retry} s");
    // Another network (the same /24 is the same network) is served.
    let (status, _, _) = get_as("198.51.100.77", &manifest_url(&hub, &paths[0])).await;
    assert_eq!(status, 200, "a resource already made costs nothing");
    let (status, _, _) = get_as("198.51.100.77", &manifest_url(&hub, &paths[9])).await;
    assert_eq!(status, 429, "the same /24 shares the budget");
    let (status, _, body) = get_as("192.0.2.5", &manifest_url(&hub, honest_path)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_piece_again_and_again_on_an_upstream_ignoring_range() {
    init_tracing();
    const PATH: &str = "/files/r-16MiB.bin";
    let origin = Origin::start(&[(PATH, 16 * MIB, 0xa3b1_0300)]).await;
    let hub = Hub::start(&origin.url(), |c| {
        c.piece_cache_bytes = 0;
        c.origin_budget_per_network = (40 * MIB) as u64;
    })
    .await;
    // The hub's own publisher makes the manifest (not charged).
    let m = hub.manifest(PATH).await;
    let last = m.pieces.last().expect("pieces");
    origin.ignore_ranges(true);
    let before = origin.bytes_served();
    let url = format!("{}.tuber/piece/{last}", hub.url());
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..20 {
        let (status, _, body) = get_as("203.0.113.50", &url).await;
        match status.as_u16() {
            200 => {
                assert!(last.verifies(&body));
                ok += 1;
            }
            429 => refused += 1,
            other => panic!("{other}"),
        }
    }
    let served = origin.bytes_served() - before;
    eprintln!(
        "FIGURE 20 requests for the last piece, upstream ignores Range, no cache, 40 MiB/h budget: {ok} served, origin sent {:.1} MiB",
        served as f64 / MIB as f64
    );
    // Each read costs the whole 16 MiB: the budget allows three at most.
    assert!(ok <= 3 && refused >= 17, "{ok} served, {refused} refused");
    assert!(served <= (3 * 16 * MIB) as u64, "origin sent {served}");
    // Another network still gets the piece.
    let (status, _, body) = get_as("192.0.2.9", &url).await;
    assert_eq!(status, 200);
    assert!(last.verifies(&body));
    let _ = Duration::ZERO;
}
