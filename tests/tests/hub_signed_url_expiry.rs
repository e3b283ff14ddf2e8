//! Issue #14 item 4: a signed URL stops being distributed when its
//! signature expires. Against the real hub and real peers, loopback
//! addresses standing for networks: a viewer on 127.1.0.2 asks for a video
//! behind a CloudFront-style signed URL (`Expires=<unix>`, a few seconds
//! ahead) and another resource; the trusted peer is assigned both and an
//! honest downloader gets the signed one from it. After the expiry the hub
//! no longer answers the signed URL's manifest or pieces (the request goes
//! to the origin, which refuses the expired signature), the trusted peer
//! deletes its pieces, the planner names nobody for them (the downloader
//! still holds them), and the other resource is served as before.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tuber_tests::swarm::{
    http_get_from, init_tracing, providers_of, wait_until, Hub, Origin, Peer,
};

const MIB: usize = 1 << 20;
const FILE: &str = "/media/private-4MiB.bin";
const OTHER: &str = "/media/public-4MiB.bin";
/// How long the signature lasts: enough to assign and fetch first.
const LIFETIME: u64 = 8;
const WAIT: Duration = Duration::from_secs(30);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_signed_url_leaves_the_hub_and_the_donors() {
    init_tracing();
    let origin =
        Origin::start(&[(FILE, 4 * MIB, 0x51ed_0001), (OTHER, 4 * MIB, 0x51ed_0002)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    let url = hub.url();
    let expires = unix_now() + LIFETIME;
    let signed = format!("{FILE}?Expires={expires}&Signature=c2lnbmVk&Key-Pair-Id=K2TEST");
    let viewer_ip: IpAddr = "127.1.0.2".parse().expect("ip");
    let other_ip: IpAddr = "127.2.0.2".parse().expect("ip");

    let donor = Peer::start().await;
    donor.join(&url, Some(&hub.invite().await)).await;
    assert!(donor.wait_joined(&url, WAIT).await, "the donor is trusted");
    let viewer = Peer::start().await;
    viewer.join(&url, None).await;
    assert!(!viewer.wait_joined(&url, WAIT).await);

    // Before the expiry: distributed like anything else.
    let m = hub.manifest_from(&signed, viewer_ip).await;
    let other = hub.manifest_from(OTHER, other_ip).await;
    donor.wait_pinned(&m, WAIT).await;
    donor.wait_pinned(&other, WAIT).await;
    let sha = viewer.fetch_from_peers(&url, &m, WAIT).await;
    assert_eq!(sha, origin.sha256(FILE));
    let piece_url = format!("{url}.tuber/piece/{}", m.pieces[0]);
    assert_eq!(http_get_from(viewer_ip, &piece_url).await.0, 200);
    let left = expires.saturating_sub(unix_now());
    assert!(
        left > 0,
        "setting up took longer than the signature's {LIFETIME} s: raise LIFETIME"
    );
    eprintln!("FIGURE signed URL assigned, held and fetched with {left} s of its life left");

    // After: the donor deletes it, the hub forgets it, nobody is named.
    tokio::time::sleep(Duration::from_secs(left + 1)).await;
    let d = &donor;
    let pieces = &m.pieces;
    let took = wait_until(
        WAIT,
        "the donor deleted the expired pieces",
        || async move {
            let store = d.engine().store();
            for hash in pieces {
                if !matches!(store.meta(*hash).await, Ok(None)) {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let h = &hub;
    wait_until(WAIT, "the hub counts the expiry", || async move {
        h.metric("tuber_manifests_forgotten_total{reason=\"expired\"}")
            .await
            == 1
    })
    .await;
    let (status, body) = http_get_from(viewer_ip, &hub.manifest_url(&signed)).await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        http_get_from(viewer_ip, &piece_url).await.0,
        404,
        "no piece of it from the hub's cache"
    );
    // The resource itself goes to the origin, which judges the signature.
    let (status, _) = http_get_from(viewer_ip, &format!("{url}{}", &signed[1..])).await;
    assert_eq!(status, 403, "the origin refuses the expired signature");
    // The downloader still holds the pieces; the planner names nobody.
    assert!(viewer
        .engine()
        .store()
        .meta(m.pieces[0])
        .await
        .ok()
        .flatten()
        .is_some());
    let named = providers_of(&url, &m.pieces).await;
    assert!(named.is_empty(), "providers of expired pieces: {named:?}");
    let cached = donor.engine().cached().await.expect("cached");
    assert!(
        cached.iter().all(|c| c.resource != signed),
        "the donor lists nothing of it: {cached:?}"
    );
    let s = donor.swarm(&url).await.expect("joined");
    assert_eq!(s.assigned_pieces, other.pieces.len() as u64, "{s:?}");

    // The other resource is served as before.
    assert_eq!(hub.manifest_from(OTHER, other_ip).await, other);
    let sha = viewer.fetch_from_peers(&url, &other, WAIT).await;
    assert_eq!(sha, origin.sha256(OTHER));
    eprintln!(
        "FIGURE after the expiry the donor deleted the signed URL's pieces within {took:.1?}"
    );
}
