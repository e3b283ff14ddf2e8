//! A 512 MiB response streams through the proxy intact while the process's
//! resident memory stays flat: proof that no body is buffered whole.

mod proxy_support;

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::header;
use http_body_util::BodyExt;
use proxy_support::{generated, proc_status_kib, spawn_proxy, Server};
use sha2::{Digest, Sha256};

const LEN: u64 = 512 * 1024 * 1024;
const MAX_GROWTH_KIB: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_gigabyte_streams_through_without_buffering() {
    let router = Router::new().route(
        "/big.bin",
        get(|| async {
            Response::builder()
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, LEN)
                .body(Body::from_stream(generated(LEN)))
                .expect("response")
        }),
    );
    let up = Server::start(router).await;
    let mut proxy = spawn_proxy(up.addr).await;

    let before = proc_status_kib("VmRSS");
    let fetch = async {
        let request = http::Request::get(proxy.server.url("/big.bin"))
            .body(proxy_support::empty())
            .expect("request");
        let response = proxy_support::client()
            .request(request)
            .await
            .expect("response");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()[header::CONTENT_LENGTH],
            LEN.to_string().as_str()
        );
        let mut body = response.into_body();
        let mut hasher = Sha256::new();
        let (mut got, mut peak, mut next_sample) = (0u64, before, 0u64);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("frame").into_data() {
                hasher.update(&data);
                got += data.len() as u64;
            }
            if got >= next_sample {
                peak = peak.max(proc_status_kib("VmRSS"));
                next_sample = got + 8 * 1024 * 1024;
            }
        }
        (got, hasher.finalize(), peak)
    };
    let (got, digest, peak) = tokio::time::timeout(Duration::from_secs(300), fetch)
        .await
        .expect("512 MiB through the proxy within 5 minutes");
    assert_eq!(got, LEN);

    // The same bytes, generated again, hashed directly.
    let mut expected = Sha256::new();
    let mut chunks = std::pin::pin!(generated(LEN));
    while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut chunks).await {
        expected.update(&chunk);
    }
    assert_eq!(
        digest,
        expected.finalize(),
        "digest through the proxy differs"
    );

    let growth = peak.saturating_sub(before);
    eprintln!("VmRSS before {before} KiB, peak during {peak} KiB, growth {growth} KiB");
    assert!(
        growth < MAX_GROWTH_KIB,
        "RSS grew by {growth} KiB while streaming; the body is being buffered"
    );

    // The resource was large and binary: it was reported.
    let seen = proxy.seen.try_recv().expect("reported as distributable");
    assert_eq!(seen.length, Some(LEN));

    proxy_support::bounded(proxy.server.shutdown()).await;
    proxy_support::bounded(up.shutdown()).await;
}
