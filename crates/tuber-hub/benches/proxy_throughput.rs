//! Proxy throughput: a large body (default 1 GiB, `TUBER_BENCH_MIB` to
//! change) generated on the fly by an upstream on 127.0.0.1, fetched
//! directly, through the proxy, and through the proxy behind the hub's own
//! TLS listener (`tuber_hub::tls`, a self-signed certificate), each `RUNS`
//! times. Prints MB/s (best and median) for each, the ratios, and the
//! process's peak RSS during the plain proxied fetches.
//!
//! `cargo bench -p tuber-hub --bench proxy_throughput`

#[path = "../tests/proxy_support/mod.rs"]
mod proxy_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use http::header;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use proxy_support::{proc_status_kib, spawn_proxy, ReqBody, Server};
use tuber_hub::proxy::Proxy;
use tuber_hub::tls::cert::{load_pem, CertResolver};
use tuber_hub::tls::listener::{server_config, TlsListener};

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

    let plain = proxy_support::client();
    let direct = measure(&plain, &up.url("/big.bin"), len).await;
    report("direct", &direct);

    // Reset the peak-RSS counter so VmHWM covers the proxied fetches only.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let proxied = measure(&plain, &proxy.server.url("/big.bin"), len).await;
    report("proxy ", &proxied);

    let ratio = median(&proxied) / median(&direct);
    println!("ratio proxy/direct (median): {ratio:.2}");
    let hwm = proc_status_kib("VmHWM");

    let (tls_addr, tls_client, tls_task) = spawn_tls_proxy(up.addr).await;
    let over_tls = measure(&tls_client, &format!("https://{tls_addr}/big.bin"), len).await;
    report("proxy over TLS", &over_tls);
    println!(
        "ratio proxy over TLS/plain proxy (median): {:.2}",
        median(&over_tls) / median(&proxied)
    );
    tls_task.abort();
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

/// The proxy as in `spawn_proxy`, behind the hub's TLS listener with a
/// self-signed certificate for 127.0.0.1; its address, a client trusting
/// it, and the server task.
async fn spawn_tls_proxy(
    upstream: SocketAddr,
) -> (
    SocketAddr,
    Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        ReqBody,
    >,
    tokio::task::JoinHandle<()>,
) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
    let resolver = Arc::new(CertResolver::default());
    resolver.set(
        load_pem(
            cert.cert.pem().as_bytes(),
            cert.signing_key.serialize_pem().as_bytes(),
        )
        .expect("pair"),
    );
    let (tx, seen) = tokio::sync::mpsc::channel(64);
    let proxy = Proxy::new(proxy_support::settings(upstream), tx).expect("proxy");
    let router = Router::new().fallback(
        move |ConnectInfo(client): ConnectInfo<SocketAddr>, req: Request| {
            let proxy = proxy.clone();
            async move { proxy.handle(req, Some(client)).await }
        },
    );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let listener = TlsListener::new(tcp, server_config(resolver).expect("tls config"));
    let task = tokio::spawn(async move {
        let _seen = seen;
        let _ = axum::serve(
            listener.tap_io(|_| {}),
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
    (addr, client, task)
}

/// Fetches `url` `RUNS` times; returns MB/s (10^6 bytes per second) of each.
async fn measure<C>(client: &Client<C, ReqBody>, url: &str, len: u64) -> Vec<f64>
where
    C: Connect + Clone + Send + Sync + 'static,
{
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
