//! Manifests computed by the hub match the SHA-256 of the upstream's pieces,
//! are cached by version, recomputed when the version changes, and pieces
//! served by hash are verified against the upstream's current bytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tuber_hub::db::HubDb;
use tuber_hub::manifests::{ManifestServiceError, Manifests};
use tuber_hub::upstream_client::UpstreamTls;
use tuber_proto::Manifest;

#[derive(Default)]
struct Upstream {
    body: Mutex<(Vec<u8>, Option<String>)>,
    gets: AtomicUsize,
}

async fn serve_file(State(up): State<Arc<Upstream>>, headers: HeaderMap) -> Response {
    up.gets.fetch_add(1, Ordering::SeqCst);
    let (body, etag) = up.body.lock().expect("lock").clone();
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, "video/mp4".parse().expect("hv"));
    if let Some(e) = etag {
        h.insert(header::ETAG, e.parse().expect("hv"));
    }
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    if let Some((a, b)) = range.and_then(|r| r.strip_prefix("bytes=")?.split_once('-')) {
        let (a, b): (usize, usize) = (a.parse().expect("a"), b.parse().expect("b"));
        let b = b.min(body.len() - 1);
        let cr = format!("bytes {a}-{b}/{}", body.len());
        h.insert(header::CONTENT_RANGE, cr.parse().expect("hv"));
        return (StatusCode::PARTIAL_CONTENT, h, body[a..=b].to_vec()).into_response();
    }
    (h, body).into_response()
}

async fn head_file(State(up): State<Arc<Upstream>>) -> Response {
    let etag = up.body.lock().expect("lock").1.clone();
    let mut h = HeaderMap::new();
    if let Some(e) = etag {
        h.insert(header::ETAG, e.parse().expect("hv"));
    }
    (h, "").into_response()
}

fn tls() -> UpstreamTls {
    UpstreamTls::bundled().expect("bundled roots")
}

fn bytes(seed: u32, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn start_upstream(up: Arc<Upstream>) -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/video.mp4", get(serve_file).head(head_file))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .with_state(up);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), task)
}

#[tokio::test]
async fn manifests_match_the_upstream_and_follow_its_version() {
    let up = Arc::new(Upstream::default());
    let data = bytes(1, 3 * 1024 * 1024 + 12_345);
    *up.body.lock().expect("lock") = (data.clone(), Some("\"v1\"".into()));
    let (base, server) = start_upstream(Arc::clone(&up)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = HubDb::open(dir.path()).expect("db");
    // No piece cache here: this test is about what the upstream's bytes
    // make (the cache's own test is below).
    let service = Manifests::with_cache(base.parse().expect("uri"), 262_144, db, &tls(), 0, None);

    let timeout = |f| tokio::time::timeout(Duration::from_secs(20), f);
    let m = timeout(service.get("/video.mp4"))
        .await
        .expect("in time")
        .expect("manifest");
    let expected = Manifest::build("/video.mp4", "video/mp4", "\"v1\"", 262_144, &data);
    assert_eq!(*m, expected);
    assert_eq!(up.gets.load(Ordering::SeqCst), 1);

    // Cached: a HEAD, no second GET; concurrent askers share nothing new.
    let (a, b) = tokio::join!(service.get("/video.mp4"), service.get("/video.mp4"));
    assert_eq!(*a.expect("a"), expected);
    assert_eq!(*b.expect("b"), expected);
    assert_eq!(up.gets.load(Ordering::SeqCst), 1, "served from the cache");

    // Pieces by hash are the upstream's bytes, verified.
    let last = expected.pieces.len() - 1;
    let piece = service
        .fetch_piece(&expected.pieces[last])
        .await
        .expect("piece");
    let (off, len) = expected.piece_range(last).expect("range");
    assert_eq!(&piece[..], &data[off as usize..off as usize + len as usize]);

    // The upstream changes its bytes but not its ETag: the piece no longer
    // verifies and is refused, never served.
    let changed = bytes(2, data.len());
    *up.body.lock().expect("lock") = (changed.clone(), Some("\"v1\"".into()));
    let err = service
        .fetch_piece(&expected.pieces[0])
        .await
        .expect_err("changed");
    assert!(matches!(err, ManifestServiceError::Changed), "{err}");

    // A new ETag: recomputed from the new bytes.
    *up.body.lock().expect("lock") = (changed.clone(), Some("\"v2\"".into()));
    let m2 = service.get("/video.mp4").await.expect("manifest v2");
    assert_eq!(
        *m2,
        Manifest::build("/video.mp4", "video/mp4", "\"v2\"", 262_144, &changed)
    );

    // Without validators the version is the content hash.
    *up.body.lock().expect("lock") = (data.clone(), None);
    let m3 = service.get("/video.mp4").await.expect("manifest v3");
    assert!(m3.version.starts_with("sha256:"), "{}", m3.version);
    assert_eq!(m3.pieces, expected.pieces);

    let err = service.get("/missing").await.expect_err("404");
    assert!(
        matches!(err, ManifestServiceError::Upstream(StatusCode::NOT_FOUND)),
        "{err}"
    );
    assert!(service.get("relative").await.is_err());
    server.abort();
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = HubDb::open(dir.path()).expect("db");
    let service = Manifests::new(
        format!("http://{addr}").parse().expect("uri"),
        262_144,
        db,
        &tls(),
    );
    let err = service.get("/x").await.expect_err("down");
    assert!(matches!(err, ManifestServiceError::Unreachable(_)), "{err}");
}

#[tokio::test]
async fn hashed_pieces_are_served_from_the_cache_without_the_upstream() {
    let up = Arc::new(Upstream::default());
    let data = bytes(3, 2 * 1024 * 1024 + 777);
    *up.body.lock().expect("lock") = (data.clone(), Some("\"v1\"".into()));
    let (base, server) = start_upstream(Arc::clone(&up)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = HubDb::open(dir.path()).expect("db");
    let service = Manifests::with_cache(
        base.parse().expect("uri"),
        262_144,
        db,
        &tls(),
        8 << 20,
        None,
    );
    let m = service.get("/video.mp4").await.expect("manifest");
    assert_eq!(up.gets.load(Ordering::SeqCst), 1);
    for (i, p) in m.pieces.iter().enumerate() {
        let piece = service.fetch_piece(p).await.expect("piece");
        let (off, len) = m.piece_range(i).expect("range");
        assert_eq!(&piece[..], &data[off as usize..off as usize + len as usize]);
    }
    assert_eq!(
        up.gets.load(Ordering::SeqCst),
        1,
        "every piece came from the bytes hashed for the manifest"
    );
    assert_eq!(service.cache().bytes(), data.len() as u64);
    assert_eq!(
        service.cache().hits_and_misses(),
        (m.pieces.len() as u64, 0)
    );
    server.abort();
}
