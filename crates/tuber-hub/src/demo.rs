//! The built-in demo site that `tuber-hub demo` puts behind the hub: a page
//! with a real video that plays and seeks, and a 32 MiB download. It is an
//! ordinary upstream on 127.0.0.1 (port 0), so the demo exercises the same
//! proxy path as a real site.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::stream;

use crate::range::{self, RangeAnswer};

/// The demo video (30 s VP9 + Opus WebM, made with ffmpeg's test source).
pub const VIDEO: &[u8] = include_bytes!("../demo/clip.webm");
/// Size of the demo download.
pub const DOWNLOAD_LEN: u64 = 32 * 1024 * 1024;
/// Path of the video.
pub const VIDEO_PATH: &str = "/media/clip.webm";
/// Path of the download.
pub const DOWNLOAD_PATH: &str = "/downloads/tuber-demo-32MiB.bin";

const INDEX: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tuber demo site</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
  video { width: 100%; background: #000; }
</style>
</head>
<body>
<h1>Tuber demo site</h1>
<p>This page is an ordinary website served through a Tuber hub. The hub adds
a small script; large files below are shared between visitors in verified
pieces.</p>
<video id="video" controls preload="metadata" src="/media/clip.webm"></video>
<p><a id="download" href="/downloads/tuber-demo-32MiB.bin" download>Download a 32 MiB file</a></p>
</body>
</html>
"#;

/// The demo site's routes.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(VIDEO_PATH, get(video))
        .route(DOWNLOAD_PATH, get(download))
}

/// Serves the demo site on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}

/// Binds 127.0.0.1:0 and serves the demo site in the background.
pub async fn spawn() -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = serve(listener).await {
            tracing::error!(error = %e, "demo site stopped");
        }
    });
    Ok((addr, task))
}

async fn video(headers: HeaderMap) -> Response {
    ranged(
        &headers,
        VIDEO.len() as u64,
        "video/webm",
        "\"tuber-demo-clip-1\"",
        |s, e| Body::from(Bytes::from_static(&VIDEO[s as usize..=e as usize])),
    )
}

async fn download(headers: HeaderMap) -> Response {
    ranged(
        &headers,
        DOWNLOAD_LEN,
        "application/octet-stream",
        "\"tuber-demo-download-1\"",
        |s, e| {
            // Generated 64 KiB at a time: the file never sits in memory whole.
            let chunks = (s..=e).step_by(64 * 1024).map(move |at| {
                let end = (at + 64 * 1024 - 1).min(e);
                Ok::<_, std::io::Error>(Bytes::from(download_bytes(at, end)))
            });
            Body::from_stream(stream::iter(chunks))
        },
    )
}

/// Bytes `start..=end` of the demo download: a fixed pseudo-random sequence
/// (position-keyed, so any range is computed without the rest).
pub fn download_bytes(start: u64, end: u64) -> Vec<u8> {
    (start..=end)
        .map(|i| {
            let mut x = (i / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
            x ^= x >> 31;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x ^= x >> 29;
            (x >> ((i % 8) * 8)) as u8
        })
        .collect()
}

fn ranged(
    headers: &HeaderMap,
    len: u64,
    content_type: &'static str,
    etag: &'static str,
    body: impl FnOnce(u64, u64) -> Body,
) -> Response {
    let base = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::ETAG, HeaderValue::from_static(etag)),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, base).into_response();
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    match range::parse(range_header, len) {
        RangeAnswer::Full => (
            base,
            [(header::CONTENT_LENGTH, len.to_string())],
            body(0, len - 1),
        )
            .into_response(),
        RangeAnswer::Partial { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            base,
            [
                (header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")),
                (header::CONTENT_LENGTH, (end - start + 1).to_string()),
            ],
            body(start, end),
        )
            .into_response(),
        RangeAnswer::Unsatisfiable => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{len}"))],
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_ranges_agree_with_the_whole() {
        let whole = download_bytes(0, 300_000);
        assert_eq!(download_bytes(70_001, 200_000), whole[70_001..=200_000]);
        // Not constant: the bytes look random enough to defeat compression.
        let zeros = whole.iter().filter(|&&b| b == 0).count();
        assert!(zeros < whole.len() / 100, "{zeros}");
    }

    #[test]
    fn the_video_is_a_webm_over_the_distributable_threshold() {
        assert_eq!(&VIDEO[..4], &[0x1a, 0x45, 0xdf, 0xa3], "EBML magic");
        assert!(VIDEO.len() > 1024 * 1024);
    }
}
