//! Helpers shared by the `proxy_*` tests and the proxy benchmark: real
//! servers on 127.0.0.1 port 0 (an upstream made of axum routes, the proxy
//! as a Router fallback), a real HTTP client, and bounded waiting.
#![allow(dead_code)] // each test file uses a different subset

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tuber_hub::config::DistributeConfig;
use tuber_hub::proxy::{Proxy, ProxySettings, SeenResource};
use tuber_hub::upstream_client::UpstreamTls;

/// The tag the tests inject.
pub const TAG: &str = r#"<script src="/.tuber/client/tuber.js" defer></script>"#;

/// The longest any single step of a test may take.
pub const STEP: Duration = Duration::from_secs(30);

/// Fails the test instead of hanging when `f` takes longer than [`STEP`].
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(STEP, f)
        .await
        .expect("step finished in time")
}

/// A server task that shuts down gracefully when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `router` on an already bound listener.
    pub fn on(listener: TcpListener, router: Router) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, service)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Binds 127.0.0.1:0 and serves `router`.
    pub async fn start(router: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::on(listener, router)
    }

    /// Stops accepting and waits (bounded) for open connections to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            bounded(task).await.expect("server task");
        }
    }

    /// `http://addr`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Settings for a proxy in front of `upstream`, with the default rules.
pub fn settings(upstream: SocketAddr) -> ProxySettings {
    ProxySettings {
        upstream: format!("http://{upstream}").parse().expect("upstream uri"),
        tls: UpstreamTls::bundled().expect("bundled roots"),
        script_tag: TAG.to_string(),
        distribute: DistributeConfig::default(),
        connect_timeout: Duration::from_secs(2),
        public_origin: None,
        origin_bytes: None,
        fallback_bytes: None,
        manifests: None,
        trusted_proxies: tuber_hub::proxy::TrustedProxies::new(&["127.0.0.0/8".to_string()]),
    }
}

/// A running proxy and the receiving end of its `seen` channel.
pub struct ProxyServer {
    /// The hub's HTTP server.
    pub server: Server,
    /// What the proxy reported as distributable.
    pub seen: mpsc::Receiver<SeenResource>,
}

/// Starts a proxy in front of `upstream` with default settings.
pub async fn spawn_proxy(upstream: SocketAddr) -> ProxyServer {
    spawn_proxy_with(settings(upstream)).await
}

/// Starts a proxy as the fallback of an otherwise empty Router, like the hub.
pub async fn spawn_proxy_with(settings: ProxySettings) -> ProxyServer {
    let (tx, seen) = mpsc::channel(64);
    let proxy = Proxy::new(settings, tx).expect("proxy settings are valid");
    let router = Router::new().fallback(
        move |ConnectInfo(client): ConnectInfo<SocketAddr>, req: Request| {
            let proxy = proxy.clone();
            async move { proxy.handle(req, Some(client)).await }
        },
    );
    ProxyServer {
        server: Server::start(router).await,
        seen,
    }
}

/// The request body type of [`client`].
pub type ReqBody = BoxBody<Bytes, io::Error>;

/// An HTTP/1.1 client that does not decompress, follow redirects or buffer.
pub fn client() -> Client<HttpConnector, ReqBody> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// An empty request body.
pub fn empty() -> ReqBody {
    Empty::<Bytes>::new()
        .map_err(|e: Infallible| match e {})
        .boxed()
}

/// A request body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ReqBody {
    Full::new(bytes.into())
        .map_err(|e: Infallible| match e {})
        .boxed()
}

/// Sends `request` and reads the whole answer (bounded in time).
pub async fn fetch(request: http::Request<ReqBody>) -> (http::response::Parts, Bytes) {
    let response = bounded(client().request(request)).await.expect("response");
    let (parts, body) = response.into_parts();
    (parts, read_all(body).await)
}

/// A plain GET with extra headers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> (http::response::Parts, Bytes) {
    let mut request = http::Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    fetch(request.body(empty()).expect("request")).await
}

/// Reads a body to the end (bounded in time).
pub async fn read_all(body: Incoming) -> Bytes {
    bounded(body.collect()).await.expect("body read").to_bytes()
}

/// A stream of `len` deterministic, non-repeating bytes in 64 KiB chunks,
/// generated as it is read (never held whole).
pub fn generated(len: u64) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send {
    const CHUNK: u64 = 64 * 1024;
    futures_util::stream::iter(0..len.div_ceil(CHUNK)).map(move |i| {
        let n = CHUNK.min(len - i * CHUNK) as usize;
        Ok(Bytes::from(chunk_bytes(i, n)))
    })
}

/// Chunk `i` of [`generated`]: a xorshift sequence seeded by the index.
pub fn chunk_bytes(i: u64, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// `VmRSS` or another `/proc/self/status` field, in KiB.
pub fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("field present")
}
