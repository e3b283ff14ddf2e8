//! Shared by the swarm tests: a real hub (`tuber_hub::server::run`) in
//! front of the demo site, on 127.0.0.1, with its data in a temp dir; it can
//! be stopped and started again on the same port with the same data.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tuber_hub::config::HubConfig;
use tuber_peer::{Identity, SwarmState};

/// Longest any test waits for a state.
pub const WAIT: Duration = Duration::from_secs(30);

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tuber_hub::server::HubError>>,
}

/// A hub and its demo site. Dropping it stops both.
pub struct TestHub {
    pub addr: SocketAddr,
    data: tempfile::TempDir,
    site: SocketAddr,
    site_task: JoinHandle<()>,
    running: Option<Running>,
}

impl TestHub {
    /// A new hub on a free port, with a fresh data dir.
    pub async fn start() -> Self {
        let (site, site_task) = tuber_hub::demo::spawn().await.expect("demo site");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut hub = Self {
            addr: listener.local_addr().expect("addr"),
            data: tempfile::tempdir().expect("tempdir"),
            site,
            site_task,
            running: None,
        };
        hub.run(listener);
        hub.wait_ready().await;
        hub
    }

    /// Waits until the hub serves its descriptor (it has opened its
    /// database and written its admin token by then).
    async fn wait_ready(&self) {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<Bytes>>();
        let url: http::Uri = format!("http://{}/.well-known/tuber", self.addr)
            .parse()
            .expect("url");
        tokio::time::timeout(WAIT, async {
            loop {
                if let Ok(resp) = client.get(url.clone()).await {
                    if resp.status() == 200 {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the hub is ready in time");
    }

    fn run(&mut self, listener: tokio::net::TcpListener) {
        let config = HubConfig {
            upstream: Some(format!("http://{}", self.site)),
            data_dir: Some(self.data.path().to_path_buf()),
            ..HubConfig::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tuber_hub::server::run(config, listener, None, async {
            let _ = stopped.await;
        }));
        self.running = Some(Running { stop, task });
    }

    /// The swarm URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops the hub and waits until it has let go of its port and data.
    pub async fn stop(&mut self) {
        let Some(r) = self.running.take() else { return };
        let _ = r.stop.send(());
        tokio::time::timeout(WAIT, r.task)
            .await
            .expect("hub stops in time")
            .expect("hub task")
            .expect("hub ran cleanly");
    }

    /// Starts the hub again on the same port with the same data.
    pub async fn restart(&mut self) {
        let listener = tokio::time::timeout(WAIT, async {
            loop {
                match tokio::net::TcpListener::bind(self.addr).await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
        .await
        .expect("the port is free again");
        self.run(listener);
    }

    /// A fresh invite from the hub's admin API (the running hub holds its
    /// database, so this is the only way in).
    pub async fn invite(&self) -> String {
        let token = std::fs::read_to_string(self.data.path().join("admin.token")).expect("token");
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        let req = http::Request::post(format!("http://{}/.tuber/admin/invites", self.addr))
            .header("authorization", format!("Bearer {}", token.trim()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(br#"{"name":"test peer"}"#)))
            .expect("request");
        let resp = tokio::time::timeout(WAIT, client.request(req))
            .await
            .expect("admin answers in time")
            .expect("admin");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        v["token"].as_str().expect("token").to_string()
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.task.abort();
        }
        self.site_task.abort();
    }
}

/// A new identity in its own temp dir (kept alive by the returned guard).
pub fn identity() -> (tempfile::TempDir, Arc<Identity>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = Identity::load_or_create(dir.path()).expect("identity");
    (dir, Arc::new(id))
}

/// Waits (at most [`WAIT`]) for a state that `pred` accepts.
pub async fn wait_for(
    rx: &mut watch::Receiver<SwarmState>,
    what: &str,
    pred: impl FnMut(&SwarmState) -> bool,
) -> SwarmState {
    let got =
        tokio::time::timeout(WAIT, async { rx.wait_for(pred).await.map(|s| s.clone()) }).await;
    match got {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => panic!("the client stopped before {what}: {:?}", *rx.borrow()),
        Err(_) => panic!("no {what} within {WAIT:?}: {:?}", *rx.borrow()),
    }
}

/// Whether a state is `Joined`.
pub fn joined(s: &SwarmState) -> bool {
    matches!(s, SwarmState::Joined { .. })
}
