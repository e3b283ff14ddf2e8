//! Which responses are distributable: the pure rules, the HLS and DASH
//! parsers, and end to end through a real proxy (large video reported,
//! small CSS not, HLS and DASH segments reported).

mod proxy_support;

use std::time::Duration;

use async_compression::tokio::bufread::GzipEncoder;
use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::{header, HeaderMap, StatusCode};
use proxy_support::{bounded, spawn_proxy, Server};
use tokio::io::AsyncReadExt;
use tuber_hub::config::DistributeConfig;
use tuber_hub::proxy::distributable::{full_length, version};
use tuber_hub::proxy::{
    dash_segment_uris, hls_segment_uris, PlaylistKind, Rules, SeenReason, SeenResource,
};

const MIB: u64 = 1024 * 1024;

fn rules_with(f: impl FnOnce(&mut DistributeConfig)) -> Rules {
    let mut c = DistributeConfig::default();
    f(&mut c);
    Rules::new(&c)
}

#[test]
fn type_or_extension_and_size_qualify() {
    let r = Rules::new(&DistributeConfig::default());
    assert!(r.is_distributable("/v/a.mp4", "video/mp4", Some(2 * MIB)));
    assert!(r.is_distributable("/v/a", "Video/MP4; codecs=x", Some(2 * MIB)));
    assert!(!r.is_distributable("/s.css", "text/css", Some(10 * 1024)));
    // Large but neither a listed type nor extension.
    assert!(!r.is_distributable("/s.css", "text/css", Some(2 * MIB)));
    // Extension alone qualifies, case-insensitive, query ignored.
    assert!(r.is_distributable("/d/file.ISO?x=1.txt", "text/plain", Some(2 * MIB)));
    // Too small, or length unknown.
    assert!(!r.is_distributable("/v/a.mp4", "video/mp4", Some(MIB - 1)));
    assert!(!r.is_distributable("/v/a.mp4", "video/mp4", None));
    assert!(r.is_distributable("/v/a.mp4", "video/mp4", Some(MIB)));
}

#[test]
fn include_and_exclude_patterns() {
    let r = rules_with(|c| {
        c.include = vec!["/always/*".into(), "*.wasm".into()];
        c.exclude = vec![
            "/private/*".into(),
            "/always/not-this*".into(),
            "*?token=*".into(),
        ];
    });
    assert!(r.is_distributable("/always/small.txt", "text/plain", Some(10)));
    assert!(r.is_distributable("/always/x", "", None));
    assert!(r.is_distributable("/app.wasm?v=3", "application/wasm", Some(5)));
    assert!(!r.is_distributable("/private/movie.mp4", "video/mp4", Some(100 * MIB)));
    // Exclude wins over include.
    assert!(!r.is_distributable("/always/not-this.txt", "text/plain", Some(10)));
    // A pattern with `?` sees the query.
    assert!(!r.is_distributable("/v.mp4?token=abc", "video/mp4", Some(100 * MIB)));
    assert!(r.is_distributable("/v.mp4?t=abc", "video/mp4", Some(100 * MIB)));
}

#[test]
fn lengths_and_versions_from_headers() {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_LENGTH, "1234".parse().expect("value"));
    assert_eq!(full_length(StatusCode::OK, &h), Some(1234));
    h.insert(
        header::CONTENT_RANGE,
        "bytes 0-99/5000000".parse().expect("value"),
    );
    assert_eq!(
        full_length(StatusCode::PARTIAL_CONTENT, &h),
        Some(5_000_000)
    );
    h.insert(
        header::CONTENT_RANGE,
        "bytes 0-99/*".parse().expect("value"),
    );
    assert_eq!(full_length(StatusCode::PARTIAL_CONTENT, &h), None);

    h.insert(
        header::LAST_MODIFIED,
        "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("value"),
    );
    h.insert(header::ETAG, "W/\"weak\"".parse().expect("value"));
    assert_eq!(
        version(&h).as_deref(),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    h.insert(header::ETAG, "\"strong\"".parse().expect("value"));
    assert_eq!(version(&h).as_deref(), Some("\"strong\""));
}

#[test]
fn playlists_are_recognised() {
    let r = Rules::new(&DistributeConfig::default());
    assert!(r.is_playlist("/a/index.m3u8?x", "text/plain"));
    assert!(r.is_playlist("/live", "application/vnd.apple.mpegURL"));
    assert!(r.is_playlist("/live", "audio/mpegurl; charset=utf-8"));
    assert!(r.is_playlist("/a.mpd", "application/dash+xml"));
    assert_eq!(
        r.playlist_kind("/live", "application/dash+xml; profiles=x"),
        Some(PlaylistKind::Dash)
    );
    assert_eq!(
        r.playlist_kind("/v/stream.MPD?t=1", "application/xml"),
        Some(PlaylistKind::Dash)
    );
    assert_eq!(
        r.playlist_kind("/v/x.m3u8", "text/plain"),
        Some(PlaylistKind::Hls)
    );
    assert_eq!(r.playlist_kind("/v/x.xml", "application/xml"), None);
    let off = rules_with(|c| c.playlists = false);
    assert!(!off.is_playlist("/a/index.m3u8", ""));
    assert!(!off.is_playlist("/a.mpd", "application/dash+xml"));
    let excluded = rules_with(|c| c.exclude = vec!["/private/*".into()]);
    assert!(!excluded.is_playlist("/private/a.mpd", "application/dash+xml"));
}

#[test]
fn hls_uris_resolve_same_origin_only() {
    let own = vec![
        "http://127.0.0.1:8080".to_string(),
        "https://hub.example".to_string(),
    ];
    let text = "#EXTM3U\r\n\
        #EXT-X-VERSION:7\r\n\
        #EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\"\r\n\
        #EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"800@0\"\r\n\
        #EXTINF:4.0,\r\n\
        seg-1.m4s\r\n\
        \r\n\
        #EXTINF:4.0,\r\n\
        ../shared/seg-2.m4s?sig=1\r\n\
        /abs/seg-3.m4s\r\n\
        http://127.0.0.1:8080/own/seg-4.m4s\r\n\
        https://hub.example:443/pub/seg-5.m4s\r\n\
        https://cdn.elsewhere.example/seg-6.m4s\r\n\
        //cdn.elsewhere.example/seg-7.m4s\r\n\
        seg-1.m4s\r\n\
        #EXT-X-ENDLIST\r\n";
    assert_eq!(
        hls_segment_uris("/videos/v1/index.m3u8?token=t", text, &own),
        [
            "/videos/v1/init.mp4",
            "/videos/v1/seg-1.m4s",
            "/videos/shared/seg-2.m4s?sig=1",
            "/abs/seg-3.m4s",
            "/own/seg-4.m4s",
            "/pub/seg-5.m4s",
        ]
    );

    let master = "#EXTM3U\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"audio/index.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=800000\n\
        low/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=3000000\n\
        high/index.m3u8\n";
    assert_eq!(
        hls_segment_uris("/master.m3u8", master, &own),
        ["/low/index.m3u8", "/high/index.m3u8"]
    );
    assert!(hls_segment_uris("/x.m3u8", "", &own).is_empty());
}

/// A small live-style MPD: init and three timeline segments per
/// Representation, one of them cross-origin.
const MPD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT12S">
  <Period>
    <AdaptationSet mimeType="video/mp4">
      <SegmentTemplate timescale="1000" initialization="$RepresentationID$/init.mp4"
          media="$RepresentationID$/$Time$.m4s">
        <SegmentTimeline><S t="0" d="4000" r="2"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="v1" bandwidth="1000000"/>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4">
      <Representation id="a1" bandwidth="64000">
        <BaseURL>https://cdn.elsewhere.example/audio.m4a</BaseURL>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#;

#[test]
fn dash_uris_resolve_same_origin_only() {
    let own = vec!["http://127.0.0.1:8080".to_string()];
    assert_eq!(
        dash_segment_uris("/dash/manifest.mpd?token=t", MPD, &own),
        [
            "/dash/v1/init.mp4",
            "/dash/v1/0.m4s",
            "/dash/v1/4000.m4s",
            "/dash/v1/8000.m4s",
        ]
    );
    // An HLS playlist is not an MPD, nor the other way round.
    assert!(dash_segment_uris("/x.mpd", "#EXTM3U\nseg.ts\n", &own).is_empty());
}

async fn upstream() -> Server {
    let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n\
        #EXTINF:4,\nseg0.ts\n#EXTINF:4,\nseg1.ts\n#EXT-X-ENDLIST\n";
    let mut gz = Vec::new();
    GzipEncoder::new(playlist.as_bytes())
        .read_to_end(&mut gz)
        .await
        .expect("gzip");
    let router = Router::new()
        .route(
            "/media/video.mp4",
            get(|| async {
                Response::builder()
                    .header(header::CONTENT_TYPE, "video/mp4")
                    .header(header::ETAG, "\"vid-1\"")
                    .body(Body::from(vec![7u8; 2 * MIB as usize]))
                    .expect("response")
            }),
        )
        .route(
            "/media/private.mp4",
            get(|| async {
                Response::builder()
                    .header(header::CONTENT_TYPE, "video/mp4")
                    .header(header::ETAG, "\"priv-1\"")
                    .header(header::CACHE_CONTROL, "max-age=60, Private")
                    .body(Body::from(vec![7u8; 2 * MIB as usize]))
                    .expect("response")
            }),
        )
        .route(
            "/media/nostore.mp4",
            get(|| async {
                Response::builder()
                    .header(header::CONTENT_TYPE, "video/mp4")
                    .header(header::ETAG, "\"ns-1\"")
                    .header(header::CACHE_CONTROL, "no-store")
                    .body(Body::from(vec![7u8; 2 * MIB as usize]))
                    .expect("response")
            }),
        )
        .route(
            "/media/cookie.mp4",
            get(|| async {
                Response::builder()
                    .header(header::CONTENT_TYPE, "video/mp4")
                    .header(header::ETAG, "\"ck-1\"")
                    .header(header::SET_COOKIE, "session=abc; HttpOnly")
                    .body(Body::from(vec![7u8; 2 * MIB as usize]))
                    .expect("response")
            }),
        )
        .route(
            "/style.css",
            get(|| async {
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/css")
                    .body(Body::from(vec![b' '; 10 * 1024]))
                    .expect("response")
            }),
        )
        .route(
            "/hls/index.m3u8",
            get(move || async move {
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")
                    .body(Body::from(playlist))
                    .expect("response")
            }),
        )
        .route(
            "/dash/manifest.mpd",
            get(|| async {
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/dash+xml")
                    .body(Body::from(MPD))
                    .expect("response")
            }),
        )
        .route(
            "/hls-gz/index.m3u8",
            get(move || async move {
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/x-mpegURL")
                    .header(header::CONTENT_ENCODING, "gzip")
                    .body(Body::from(gz))
                    .expect("response")
            }),
        );
    Server::start(router).await
}

async fn next_seen(rx: &mut tokio::sync::mpsc::Receiver<SeenResource>) -> SeenResource {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("reported in time")
        .expect("channel open")
}

#[tokio::test]
async fn private_responses_and_answers_to_credentials_are_never_reported() {
    let up = upstream().await;
    let mut proxy = spawn_proxy(up.addr).await;
    let url = |p: &str| proxy.server.url(p);
    for path in [
        "/media/private.mp4",
        "/media/nostore.mp4",
        "/media/cookie.mp4",
    ] {
        let (parts, body) = proxy_support::get(&url(path), &[]).await;
        assert_eq!(parts.status, 200, "{path}");
        assert_eq!(body.len() as u64, 2 * MIB, "{path}: still served");
        assert!(proxy.seen.try_recv().is_err(), "{path} was reported");
    }
    // The same public video, asked for with credentials: that person's.
    for header in [("cookie", "session=abc"), ("authorization", "Bearer t")] {
        let (parts, _) = proxy_support::get(&url("/media/video.mp4"), &[header]).await;
        assert_eq!(parts.status, 200);
        assert!(proxy.seen.try_recv().is_err(), "{header:?}: reported");
    }
    // Without: distributable as before.
    let (parts, _) = proxy_support::get(&url("/media/video.mp4"), &[]).await;
    assert_eq!(parts.status, 200);
    assert_eq!(next_seen(&mut proxy.seen).await.path, "/media/video.mp4");
}

#[tokio::test]
async fn reports_video_and_playlist_segments_but_not_css() {
    let up = upstream().await;
    let mut proxy = spawn_proxy(up.addr).await;
    let url = |p: &str| proxy.server.url(p);

    let (parts, body) = proxy_support::get(&url("/media/video.mp4"), &[]).await;
    assert_eq!(parts.status, 200);
    assert_eq!(body.len() as u64, 2 * MIB);
    assert_eq!(
        next_seen(&mut proxy.seen).await,
        SeenResource {
            path: "/media/video.mp4".into(),
            content_type: "video/mp4".into(),
            length: Some(2 * MIB),
            version: Some("\"vid-1\"".into()),
            reason: SeenReason::Response,
        }
    );

    // The report is sent before the response: none now means none at all.
    let (parts, _) = proxy_support::get(&url("/style.css"), &[]).await;
    assert_eq!(parts.status, 200);
    assert!(
        proxy.seen.try_recv().is_err(),
        "small CSS is not distributable"
    );

    for (dir, encoding) in [("/hls", None), ("/hls-gz", Some("gzip"))] {
        let (parts, body) = proxy_support::get(&url(&format!("{dir}/index.m3u8")), &[]).await;
        assert_eq!(parts.status, 200);
        assert_eq!(
            parts
                .headers
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().expect("ascii")),
            encoding,
            "the playlist itself passes untouched"
        );
        assert!(!body.is_empty());
        let mut got = Vec::new();
        for _ in 0..3 {
            let seen = next_seen(&mut proxy.seen).await;
            assert_eq!(seen.reason, SeenReason::Playlist);
            assert_eq!(seen.length, None);
            got.push(seen.path);
        }
        assert_eq!(
            got,
            [
                format!("{dir}/init.mp4"),
                format!("{dir}/seg0.ts"),
                format!("{dir}/seg1.ts")
            ]
        );
    }

    bounded(proxy.server.shutdown()).await;
    bounded(up.shutdown()).await;
}

#[tokio::test]
async fn reports_dash_segments() {
    let up = upstream().await;
    let mut proxy = spawn_proxy(up.addr).await;

    let (parts, body) = proxy_support::get(&proxy.server.url("/dash/manifest.mpd"), &[]).await;
    assert_eq!(parts.status, 200);
    assert_eq!(body, MPD, "the manifest itself passes untouched");
    let mut got = Vec::new();
    for _ in 0..4 {
        let seen = next_seen(&mut proxy.seen).await;
        assert_eq!(seen.reason, SeenReason::Playlist);
        assert_eq!(seen.length, None);
        got.push((seen.path, seen.content_type));
    }
    let video = |p: &str| (p.to_string(), "video/mp4".to_string());
    assert_eq!(
        got,
        [
            video("/dash/v1/init.mp4"),
            video("/dash/v1/0.m4s"),
            video("/dash/v1/4000.m4s"),
            video("/dash/v1/8000.m4s"),
        ]
    );
    // The cross-origin audio is not reported: all segments are sent in one
    // synchronous loop, so after the last none can still be on its way.
    assert!(proxy.seen.try_recv().is_err());

    bounded(proxy.server.shutdown()).await;
    bounded(up.shutdown()).await;
}
