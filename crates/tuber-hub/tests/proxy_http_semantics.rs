//! HTTP semantics survive the proxy: ranges, HEAD, conditional requests,
//! redirects (not followed, Location rewritten), multiple Set-Cookie headers,
//! streamed request bodies, and the X-Forwarded-* headers.

mod proxy_support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderMap, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use proxy_support::{bounded, fetch, get as fetch_get, settings, spawn_proxy_with, Server};

const FILE_LEN: usize = 100_000;
const ETAG: &str = "\"file-v1\"";

fn file() -> Vec<u8> {
    (0..FILE_LEN).map(|i| (i % 251) as u8).collect()
}

/// A byte-range file server for one `bytes=a-b` range.
async fn serve_file(headers: HeaderMap) -> Response {
    let data = file();
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == ETAG.as_bytes())
    {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, ETAG)
            .body(Body::empty())
            .expect("response");
    }
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ETAG, ETAG)
        .header(header::ACCEPT_RANGES, "bytes");
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
    match range {
        Some((a, b)) => builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{FILE_LEN}"))
            .body(Body::from(data[a..=b].to_vec())),
        None => builder.body(Body::from(data)),
    }
    .expect("response")
}

/// Echoes the request body as a stream and what the upstream was told.
async fn echo(req: Request) -> Response {
    let mut builder = Response::builder();
    for name in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "host",
    ] {
        if let Some(v) = req.headers().get(name) {
            builder = builder.header(format!("x-seen-{name}"), v);
        }
    }
    builder
        .body(Body::from_stream(req.into_body().into_data_stream()))
        .expect("response")
}

async fn upstream() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new()
        .route("/file", get(serve_file))
        .route("/echo", post(echo))
        .route(
            "/redirect",
            get(|State(addr): State<SocketAddr>| async move {
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, format!("http://{addr}/target?x=1"))
                    .body(Body::empty())
                    .expect("response")
            }),
        )
        .route(
            "/away",
            get(|| async {
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, "https://elsewhere.example/x")
                    .body(Body::empty())
                    .expect("response")
            }),
        )
        .route(
            "/cookies",
            get(|| async {
                Response::builder()
                    .header(header::SET_COOKIE, "a=1; Path=/")
                    .header(header::SET_COOKIE, "b=2; Path=/; HttpOnly")
                    .body(Body::from("ok"))
                    .expect("response")
            }),
        )
        .with_state(addr);
    Server::on(listener, router)
}

#[tokio::test]
async fn http_semantics_pass_through() {
    let up = upstream().await;
    let mut s = settings(up.addr);
    s.public_origin = Some("https://hub.example".into());
    let proxy = spawn_proxy_with(s).await;
    let url = |p: &str| proxy.server.url(p);
    let data = file();

    // Range → 206 with the upstream's Content-Range and exact bytes.
    let (parts, body) = fetch_get(&url("/file"), &[("range", "bytes=1000-1999")]).await;
    assert_eq!(parts.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        parts.headers[header::CONTENT_RANGE],
        format!("bytes 1000-1999/{FILE_LEN}").as_str()
    );
    assert_eq!(body.as_ref(), &data[1000..2000]);

    // Full GET, then HEAD: same length, no body.
    let (parts, body) = fetch_get(&url("/file"), &[]).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body.as_ref(), data.as_slice());
    let head = http::Request::head(url("/file"))
        .body(proxy_support::empty())
        .expect("request");
    let (parts, body) = fetch(head).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(
        parts.headers[header::CONTENT_LENGTH],
        FILE_LEN.to_string().as_str()
    );
    assert!(body.is_empty());

    // If-None-Match → 304 passes through.
    let (parts, body) = fetch_get(&url("/file"), &[("if-none-match", ETAG)]).await;
    assert_eq!(parts.status, StatusCode::NOT_MODIFIED);
    assert_eq!(parts.headers[header::ETAG], ETAG);
    assert!(body.is_empty());

    // Redirects are not followed; one to the upstream stays on the hub.
    let (parts, _) = fetch_get(&url("/redirect"), &[]).await;
    assert_eq!(parts.status, StatusCode::FOUND);
    assert_eq!(
        parts.headers[header::LOCATION],
        "https://hub.example/target?x=1"
    );
    let (parts, _) = fetch_get(&url("/away"), &[]).await;
    assert_eq!(
        parts.headers[header::LOCATION],
        "https://elsewhere.example/x"
    );

    // Both Set-Cookie headers arrive.
    let (parts, _) = fetch_get(&url("/cookies"), &[]).await;
    let cookies: Vec<_> = parts.headers.get_all(header::SET_COOKIE).iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/; HttpOnly"]);

    // A streamed POST body (no Content-Length) reaches the upstream whole.
    let chunks: Vec<Bytes> = (0..64u64)
        .map(|i| Bytes::from(proxy_support::chunk_bytes(i, 64 * 1024)))
        .collect();
    let sent: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
    let stream =
        futures_util::stream::iter(chunks).map(|c| Ok::<_, std::io::Error>(Frame::data(c)));
    let request = http::Request::post(url("/echo"))
        .header("x-forwarded-for", "203.0.113.9")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("request");
    let (parts, body) = fetch(request).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body.len(), sent.len());
    assert!(body.as_ref() == sent.as_slice(), "echo differs");

    // The upstream saw its own Host and the X-Forwarded-* headers.
    let seen = |name: &str| {
        parts
            .headers
            .get(format!("x-seen-{name}"))
            .map(|v| v.to_str().expect("ascii").to_string())
    };
    assert_eq!(seen("host"), Some(up.addr.to_string()));
    assert_eq!(
        seen("x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(seen("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(
        seen("x-forwarded-host"),
        Some(proxy.server.addr.to_string())
    );

    drop(proxy.seen);
    bounded(proxy.server.shutdown()).await;
    bounded(up.shutdown()).await;
}

#[tokio::test]
async fn a_clients_forwarding_headers_pass_only_from_a_trusted_proxy() {
    let up = upstream().await;
    let mut settings = proxy_support::settings(up.addr);
    settings.trusted_proxies = tuber_hub::proxy::TrustedProxies::new(&[]);
    let proxy = proxy_support::spawn_proxy_with(settings).await;
    let request = http::Request::post(proxy.server.url("/echo"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("forwarded", "for=203.0.113.9")
        .body(proxy_support::full("x"))
        .expect("request");
    let (parts, _) = fetch(request).await;
    assert_eq!(parts.status, StatusCode::OK);
    // The hub names the client itself; the claimed address is gone.
    assert_eq!(
        parts
            .headers
            .get("x-seen-x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
        Some("127.0.0.1")
    );
    assert!(parts.headers.get("x-seen-forwarded").is_none());
    drop(proxy.seen);
    bounded(proxy.server.shutdown()).await;
    bounded(up.shutdown()).await;
}
