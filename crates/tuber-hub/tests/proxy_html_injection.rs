//! The proxy injects the page script into HTML exactly once, decoding
//! compressed pages as a stream, and leaves everything else byte-identical.

mod proxy_support;

use async_compression::tokio::bufread::{BrotliEncoder, DeflateEncoder, GzipEncoder};
use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::header;
use proxy_support::{bounded, spawn_proxy, Server, TAG};
use tokio::io::AsyncReadExt;

const PAGE: &str =
    "<!doctype html><html><head><title>t</title></head><body><p>hi</p></body></html>";
const JSON: &str = r#"{"not":"html","head":"<head></head>"}"#;

async fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzipEncoder::new(data)
        .read_to_end(&mut out)
        .await
        .expect("gzip");
    out
}

async fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    BrotliEncoder::new(data)
        .read_to_end(&mut out)
        .await
        .expect("br");
    out
}

/// HTTP "deflate" as RFC 9110 means it: zlib (header, raw deflate, Adler-32).
async fn zlib(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x9c];
    DeflateEncoder::new(data)
        .read_to_end(&mut out)
        .await
        .expect("deflate");
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn html(body: impl Into<Body>, encoding: Option<&str>) -> Response {
    let mut r = Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::ETAG, "\"v1\"")
        .header("x-custom", "kept");
    if let Some(e) = encoding {
        r = r.header(header::CONTENT_ENCODING, e);
    }
    r.body(body.into()).expect("response")
}

async fn upstream() -> (Server, Vec<u8>) {
    let json_gz = gzip(JSON.as_bytes()).await;
    let (gz, br, df) = (
        gzip(PAGE.as_bytes()).await,
        brotli(PAGE.as_bytes()).await,
        zlib(PAGE.as_bytes()).await,
    );
    // A page far larger than any chunk, to rewrite across many chunks.
    let big = format!(
        "<html><head><title>big</title></head><body>{}</body></html>",
        "<p>filler paragraph</p>".repeat(200_000)
    );
    let json_body = json_gz.clone();
    let router = Router::new()
        .route("/plain", get(|| async { html(PAGE, None) }))
        .route("/gzip", get(move || async move { html(gz, Some("gzip")) }))
        .route("/br", get(move || async move { html(br, Some("br")) }))
        .route(
            "/deflate",
            get(move || async move { html(df, Some("deflate")) }),
        )
        .route("/big", get(move || async move { html(big, None) }))
        .route(
            "/bare",
            get(|| async { html("<p>no head, no body</p>", None) }),
        )
        .route(
            "/nohead",
            get(|| async { html("<body><p>x</p></body>", None) }),
        )
        .route(
            "/missing",
            get(|| async {
                let mut r = html(PAGE, None);
                *r.status_mut() = http::StatusCode::NOT_FOUND;
                r
            }),
        )
        .route(
            "/data.json",
            get(move || async move {
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::CONTENT_ENCODING, "gzip")
                    .header(header::CONTENT_LENGTH, json_body.len())
                    .body(Body::from(json_body))
                    .expect("response")
            }),
        );
    (Server::start(router).await, json_gz)
}

fn injected_page() -> String {
    PAGE.replace("</head>", &format!("{TAG}</head>"))
}

#[tokio::test]
async fn html_gets_the_tag_once_and_everything_else_passes_untouched() {
    let (up, json_gz) = upstream().await;
    let proxy = spawn_proxy(up.addr).await;
    let url = |p: &str| proxy.server.url(p);
    let gzip_ok = [("accept-encoding", "gzip, deflate, br")];

    // Plain page: before </head>, exactly once, validators of the old bytes gone.
    let (parts, body) = proxy_support::get(&url("/plain"), &gzip_ok).await;
    assert_eq!(parts.status, 200);
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert_eq!(text, injected_page());
    assert_eq!(text.matches(TAG).count(), 1);
    assert!(parts.headers.get(header::ETAG).is_none());
    assert!(parts.headers.get(header::CONTENT_LENGTH).is_none());
    assert_eq!(parts.headers["x-custom"], "kept");

    // Compressed pages: decoded, rewritten, sent without Content-Encoding.
    for path in ["/gzip", "/br", "/deflate"] {
        let (parts, body) = proxy_support::get(&url(path), &gzip_ok).await;
        assert_eq!(parts.status, 200, "{path}");
        assert!(
            parts.headers.get(header::CONTENT_ENCODING).is_none(),
            "{path}"
        );
        assert_eq!(String::from_utf8_lossy(&body), injected_page(), "{path}");
    }

    // HEAD of a compressed page: the headers the GET would have.
    let head = http::Request::head(url("/gzip"))
        .header("accept-encoding", "gzip")
        .body(proxy_support::empty())
        .expect("request");
    let (parts, body) = proxy_support::fetch(head).await;
    assert_eq!(parts.status, 200);
    assert!(parts.headers.get(header::CONTENT_ENCODING).is_none());
    assert!(parts.headers.get(header::ETAG).is_none());
    assert!(parts.headers.get(header::CONTENT_LENGTH).is_none());
    assert!(body.is_empty());

    // Large page: rewritten across many chunks.
    let (_, body) = proxy_support::get(&url("/big"), &[]).await;
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(text.starts_with(&format!("<html><head><title>big</title>{TAG}</head>")));
    assert_eq!(text.matches(TAG).count(), 1);
    assert!(text.ends_with("</body></html>"));

    // No head: start of body. Neither: at the end.
    let (_, body) = proxy_support::get(&url("/nohead"), &[]).await;
    assert_eq!(body, format!("<body>{TAG}<p>x</p></body>"));
    let (_, body) = proxy_support::get(&url("/bare"), &[]).await;
    assert_eq!(body, format!("<p>no head, no body</p>{TAG}"));

    // A non-200 page is not touched.
    let (parts, body) = proxy_support::get(&url("/missing"), &[]).await;
    assert_eq!(parts.status, 404);
    assert_eq!(body, PAGE);

    // Non-HTML: byte-identical, still compressed, same length.
    let (parts, body) = proxy_support::get(&url("/data.json"), &gzip_ok).await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(
        parts.headers[header::CONTENT_LENGTH],
        json_gz.len().to_string().as_str()
    );
    assert_eq!(body.as_ref(), json_gz.as_slice());

    bounded(proxy.server.shutdown()).await;
    bounded(up.shutdown()).await;
}
