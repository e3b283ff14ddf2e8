//! Proxy throughput: a large body (default 1 GiB, `TUBER_BENCH_MIB` to
//! change) generated on the fly by an upstream on 127.0.0.1, fetched
//! directly and through the proxy, each `RUNS` times. Prints MB/s (best and
//! median) for both, the ratio proxy/direct, and the process's peak RSS
//! during the proxied fetches.
//!
//! `cargo bench -p tuber-hub --bench proxy_throughput`

#[path = "../tests/proxy_support/mod.rs"]
mod proxy_support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use http::header;
use http_body_util::BodyExt;
use proxy_support::{proc_status_kib, spawn_proxy, Server};

const RUNS: usize = 3;
const DEFAULT_MIB: u64 = 1024;

fn main() {
    let mib = std::env::var("TUBER_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&m| m > 0)
        .unwrap_or(DEFAULT_MIB);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(mib * 1024 * 1024));
}

/// A body of `len` bytes made of one shared 64 KiB chunk: the upstream's
/// cost stays near zero, so the numbers measure the transport, not the
/// generator.
fn body(len: u64) -> Body {
    const CHUNK: u64 = 64 * 1024;
    let chunk = Bytes::from(proxy_support::chunk_bytes(0, CHUNK as usize));
    let chunks = futures_util::stream::iter(0..len.div_ceil(CHUNK)).map(move |i| {
        let n = CHUNK.min(len - i * CHUNK) as usize;
        Ok::<_, std::convert::Infallible>(chunk.slice(..n))
    });
    Body::from_stream(chunks)
}

async fn run(len: u64) {
    let router = Router::new().route(
        "/big.bin",
        get(move || async move {
            Response::builder()
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, len)
                .body(body(len))
                .expect("response")
        }),
    );
    let up = Server::start(router).await;
    let proxy = spawn_proxy(up.addr).await;
    println!(
        "proxy_throughput: {} MiB body, {RUNS} runs each",
        len / (1024 * 1024)
    );

    let direct = measure(&up.url("/big.bin"), len).await;
    report("direct", &direct);

    // Reset the peak-RSS counter so VmHWM covers the proxied fetches only.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let proxied = measure(&proxy.server.url("/big.bin"), len).await;
    report("proxy ", &proxied);

    let ratio = median(&proxied) / median(&direct);
    println!("ratio proxy/direct (median): {ratio:.2}");
    let hwm = proc_status_kib("VmHWM");
    println!(
        "peak RSS (VmHWM) {} proxied fetches: {:.1} MiB",
        if reset {
            "during"
        } else {
            "up to and including"
        },
        hwm as f64 / 1024.0
    );

    drop(proxy);
    drop(up);
}

/// Fetches `url` `RUNS` times; returns MB/s (10^6 bytes per second) of each.
async fn measure(url: &str, len: u64) -> Vec<f64> {
    let client = proxy_support::client();
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let request = http::Request::get(url)
            .body(proxy_support::empty())
            .expect("request");
        let response = tokio::time::timeout(Duration::from_secs(60), client.request(request))
            .await
            .expect("headers in time")
            .expect("response");
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut got = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("frame").into_data() {
                got += data.len() as u64;
            }
        }
        assert_eq!(got, len, "whole body received");
        rates.push(len as f64 / started.elapsed().as_secs_f64() / 1e6);
    }
    rates
}

fn median(rates: &[f64]) -> f64 {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn report(name: &str, rates: &[f64]) {
    let best = rates.iter().copied().fold(0.0, f64::max);
    let all: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "{name}: best {best:.0} MB/s, median {:.0} MB/s  (runs: {})",
        median(rates),
        all.join(", ")
    );
}
