//! The swarm harness: everything a cross-component swarm test needs, all of
//! it real and on 127.0.0.1.
//!
//! - [`Origin`]: an upstream site serving deterministic resources (seeded
//!   pseudo-random bytes) with `Content-Length`, a strong `ETag` and single
//!   byte ranges (the hub reads pieces with `Range`).
//! - [`Hub`]: a real hub (`tuber_hub::server::run`) in front of an origin,
//!   with a temp data dir and a config the test chooses; stops and starts
//!   again on the same port with the same data. Invites, manifests and
//!   `/metrics` through its HTTP API.
//! - [`Peer`]: a real [`tuber_peer::Engine`] with a real sled store in a temp
//!   dir, WebRTC bound to 127.0.0.1; restarts on the same dir.
//! - [`wait_until`] and [`wait_provider`]: bounded polling.

pub mod hostile;
mod hub;
mod origin;
mod peer;
mod raw;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc;
use tuber_peer::{Identity, SwarmClient, SwarmState};
use tuber_proto::signal::{ClientToHub, HubToClient, Provider};
use tuber_proto::PieceHash;

pub use hub::Hub;
pub use origin::Origin;
pub use peer::{engine_config, Peer, PeerOptions};
pub use raw::{RawPeer, RawWire};

/// Bound on any single HTTP exchange with the hub or the origin.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Logs to the test's output, filtered by `RUST_LOG` (default: warnings).
/// Safe to call from every test; only the first call installs it.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Polls `cond` every 100 ms until it holds; panics naming `what` after
/// `timeout`. Returns how long it took.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            panic!("{what}: not within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One HTTP request on a fresh client, bounded by [`HTTP_TIMEOUT`]:
/// status, headers and the whole body.
pub async fn http(req: http::Request<Full<Bytes>>) -> (http::StatusCode, http::HeaderMap, Bytes) {
    http_via(None, req).await
}

/// [`http`] from the local address `from` (a loopback address such as
/// 127.0.1.2 standing for a client on another network).
pub async fn http_from(
    from: std::net::IpAddr,
    req: http::Request<Full<Bytes>>,
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    http_via(Some(from), req).await
}

/// `GET url` from the local address `from`: status and body.
pub async fn http_get_from(from: std::net::IpAddr, url: &str) -> (http::StatusCode, Bytes) {
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let (status, _, body) = http_from(from, req).await;
    (status, body)
}

async fn http_via(
    from: Option<std::net::IpAddr>,
    req: http::Request<Full<Bytes>>,
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_local_address(from);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(connector);
    let uri = req.uri().clone();
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((parts.status, parts.headers, body))
    };
    match tokio::time::timeout(HTTP_TIMEOUT, exchange).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => panic!("{uri}: {e}"),
        Err(_) => panic!("{uri}: no answer within {HTTP_TIMEOUT:?}"),
    }
}

/// `GET url`: status and body.
pub async fn http_get(url: &str) -> (http::StatusCode, Bytes) {
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let (status, _, body) = http(req).await;
    (status, body)
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Mebibytes per second for `bytes` in `elapsed`.
pub fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64().max(1e-9)
}

/// Waits until the hub names `peer` (hex id) as a provider of every piece
/// in `pieces`: its `have` announcements reached the planner. Asks the way
/// a requester does (`want` → `providers`), from a throwaway identity.
pub async fn wait_provider(hub_url: &str, peer: &str, pieces: &[PieceHash], timeout: Duration) {
    let (_keys, client, mut inbound) = probe(hub_url, timeout).await;
    let start = Instant::now();
    let mut req = 0u32;
    loop {
        req += 1;
        if provides_all(&client, &mut inbound, req, peer, pieces).await {
            break;
        }
        assert!(
            start.elapsed() < timeout,
            "the hub did not name {peer} as provider of all {} pieces within {timeout:?}",
            pieces.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.leave().await;
}

/// The providers the hub names for `pieces` (the first 512), asked as a
/// requester does (`want` → `providers`) from a throwaway identity.
pub async fn providers_of(hub_url: &str, pieces: &[PieceHash]) -> Vec<Provider> {
    let (_keys, client, mut inbound) = probe(hub_url, HTTP_TIMEOUT).await;
    let chunk = &pieces[..pieces.len().min(512)];
    let answer = ask_providers(&client, &mut inbound, 1, chunk).await;
    client.leave().await;
    answer.expect("the hub answers the probe's want")
}

/// A throwaway identity joined to the swarm at `hub_url` (its key dir with it).
async fn probe(
    hub_url: &str,
    timeout: Duration,
) -> (tempfile::TempDir, SwarmClient, mpsc::Receiver<HubToClient>) {
    let keys = tempfile::tempdir().expect("tempdir");
    let id = std::sync::Arc::new(Identity::load_or_create(keys.path()).expect("identity"));
    let (client, inbound) = SwarmClient::builder(hub_url, id)
        .join()
        .expect("probe join");
    let mut state = client.state();
    tokio::time::timeout(
        timeout,
        state.wait_for(|s| matches!(s, SwarmState::Joined { .. })),
    )
    .await
    .expect("the probe joins in time")
    .expect("probe client");
    (keys, client, inbound)
}

/// One `want` and its `providers` (None: no answer within 5 s).
async fn ask_providers(
    client: &SwarmClient,
    inbound: &mut mpsc::Receiver<HubToClient>,
    req: u32,
    pieces: &[PieceHash],
) -> Option<Vec<Provider>> {
    let want = ClientToHub::Want {
        req,
        pieces: pieces.to_vec(),
    };
    client.send(&want).await.ok()?;
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match inbound.recv().await {
                Some(HubToClient::Providers { req: r, providers }) if r == req => {
                    break Some(providers)
                }
                Some(_) => {}
                None => break None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

async fn provides_all(
    client: &SwarmClient,
    inbound: &mut mpsc::Receiver<HubToClient>,
    req0: u32,
    peer: &str,
    pieces: &[PieceHash],
) -> bool {
    for (n, chunk) in pieces.chunks(512).enumerate() {
        let req = req0 * 1000 + n as u32;
        let Some(providers) = ask_providers(client, inbound, req, chunk).await else {
            return false;
        };
        let covered = providers
            .iter()
            .find(|p| p.peer.to_string() == peer)
            .map_or(0, |p| p.pieces.len());
        if covered < chunk.len() {
            return false;
        }
    }
    true
}
