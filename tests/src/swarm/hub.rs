//! A real hub in front of an origin, restartable on the same port and data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tuber_hub::config::HubConfig;
use tuber_proto::Manifest;

use super::{http, http_get, wait_until, HTTP_TIMEOUT};

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tuber_hub::server::HubError>>,
}

/// A hub on 127.0.0.1 with its data in a temp dir. Dropping it stops it.
pub struct Hub {
    /// Where it listens (the same after a restart).
    pub addr: SocketAddr,
    data: tempfile::TempDir,
    config: HubConfig,
    running: Option<Running>,
}

impl Hub {
    /// A hub in front of `upstream` (e.g. [`super::Origin::url`]) on a free
    /// port with a fresh data dir; `tune` adjusts the config (planner,
    /// distribute rules…) before it starts. No STUN: on loopback peers
    /// need none. Returns once the hub answers.
    pub async fn start(upstream: &str, tune: impl FnOnce(&mut HubConfig)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the hub");
        let data = tempfile::tempdir().expect("hub data dir");
        let mut config = HubConfig {
            upstream: Some(upstream.to_string()),
            data_dir: Some(data.path().to_path_buf()),
            ..HubConfig::default()
        };
        config.stun.enabled = false;
        tune(&mut config);
        let mut hub = Self {
            addr: listener.local_addr().expect("hub addr"),
            data,
            config,
            running: None,
        };
        hub.run(listener).await;
        hub
    }

    async fn run(&mut self, listener: tokio::net::TcpListener) {
        let mut config = self.config.clone();
        config.listen = self.addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tuber_hub::server::run(config, listener, None, async {
            let _ = stopped.await;
        }));
        self.running = Some(Running { stop, task });
        let url = format!("http://{}/.well-known/tuber", self.addr);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        wait_until(HTTP_TIMEOUT, "the hub serves its descriptor", || {
            let req = http::Request::get(url.as_str())
                .body(Full::new(Bytes::new()))
                .expect("request");
            let fut = client.request(req);
            async move { matches!(fut.await, Ok(r) if r.status() == 200) }
        })
        .await;
    }

    /// The swarm URL (`http://127.0.0.1:PORT/`).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The hub's data dir.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    /// Stops the hub (graceful) and waits until it let go of port and data.
    pub async fn stop(&mut self) {
        let Some(r) = self.running.take() else { return };
        let _ = r.stop.send(());
        tokio::time::timeout(HTTP_TIMEOUT, r.task)
            .await
            .expect("the hub stops in time")
            .expect("hub task")
            .expect("the hub ran cleanly");
    }

    /// Starts the stopped hub again on the same port with the same data.
    pub async fn restart(&mut self) {
        assert!(self.running.is_none(), "stop the hub first");
        let addr = self.addr;
        let listener = tokio::time::timeout(HTTP_TIMEOUT, async move {
            loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
        .await
        .expect("the hub's port is free again");
        self.run(listener).await;
    }

    /// An admin API request with the hub's token.
    async fn admin(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let token = std::fs::read_to_string(self.data.path().join(tuber_hub::admin::TOKEN_FILE))
            .expect("admin token");
        let req = http::Request::post(format!("http://{}{path}", self.addr))
            .header("authorization", format!("Bearer {}", token.trim()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        let (status, _, body) = http(req).await;
        assert_eq!(
            status,
            200,
            "admin {path}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).expect("admin answer is JSON")
    }

    /// A fresh invite for a trusted peer.
    pub async fn invite(&self) -> String {
        let v = self
            .admin(
                "/.tuber/admin/invites",
                serde_json::json!({"name": "test peer"}),
            )
            .await;
        v["token"].as_str().expect("invite token").to_string()
    }

    /// Makes `path` known to the planner ahead of demand (the admin content
    /// webhook); the planner assigns it to trusted peers.
    pub async fn publish(&self, path: &str) {
        self.admin("/.tuber/admin/content", serde_json::json!({"path": path}))
            .await;
    }

    /// The manifest of `path` (asking also publishes it to the planner).
    pub async fn manifest(&self, path: &str) -> Manifest {
        let (status, body) =
            http_get(&format!("http://{}/.tuber/manifest?path={path}", self.addr)).await;
        assert_eq!(
            status,
            200,
            "manifest of {path}: {}",
            String::from_utf8_lossy(&body)
        );
        Manifest::decode(&body).expect("the hub's manifest decodes")
    }

    /// The manifest endpoint's URL for `path` (its query percent-encoded).
    pub fn manifest_url(&self, path: &str) -> String {
        let encoded = path
            .replace('%', "%25")
            .replace('?', "%3F")
            .replace('&', "%26")
            .replace('=', "%3D");
        format!("http://{}/.tuber/manifest?path={encoded}", self.addr)
    }

    /// The manifest of `path` as a client at `from` (a loopback address
    /// standing for its network) gets it; panics unless it is served.
    pub async fn manifest_from(&self, path: &str, from: std::net::IpAddr) -> Manifest {
        let (status, body) = super::http_get_from(from, &self.manifest_url(path)).await;
        assert_eq!(
            status,
            200,
            "manifest of {path} for {from}: {}",
            String::from_utf8_lossy(&body)
        );
        Manifest::decode(&body).expect("the hub's manifest decodes")
    }

    /// Every sample of `/metrics`, by name with labels.
    pub async fn metrics(&self) -> BTreeMap<String, u64> {
        let (status, body) = http_get(&format!("http://{}/metrics", self.addr)).await;
        assert_eq!(status, 200);
        String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_string(), value.parse().ok()?))
            })
            .collect()
    }

    /// One counter or gauge (0 when absent).
    pub async fn metric(&self, name: &str) -> u64 {
        self.metrics().await.get(name).copied().unwrap_or(0)
    }

    /// Pieces served by the hub's piece endpoint since it (re)started.
    pub async fn pieces_served(&self) -> u64 {
        self.metric("tuber_pieces_served_total").await
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.task.abort();
        }
    }
}
