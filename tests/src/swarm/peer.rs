//! Engines on temp data dirs, WebRTC on loopback.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tuber_peer::engine::types::{SwarmPhase, SwarmStatus};
use tuber_peer::engine::FetchSummary;
use tuber_peer::{Engine, EngineConfig, Settings};
use tuber_proto::Manifest;

use super::wait_until;

/// An engine config for `dir`: WebRTC bound to 127.0.0.1 only.
pub fn engine_config(dir: &Path) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.rtc.udp_addrs = vec!["127.0.0.1:0".into()];
    config
}

/// How to start a [`Peer`].
#[derive(Debug, Clone, Default)]
pub struct PeerOptions {
    /// Settings for a fresh data dir (upload cap, paused…).
    pub settings: Settings,
    /// The test-only liar switch: serve every piece corrupted.
    pub corrupt_uploads: bool,
}

/// A running engine on its own temp data dir.
pub struct Peer {
    engine: Option<Engine>,
    options: PeerOptions,
    dir: PathBuf,
    _guard: tempfile::TempDir,
}

impl Peer {
    /// An engine with default settings.
    pub async fn start() -> Self {
        Self::start_with(PeerOptions::default()).await
    }

    /// An engine with `options`.
    pub async fn start_with(options: PeerOptions) -> Self {
        let guard = tempfile::tempdir().expect("peer data dir");
        let dir = guard.path().to_path_buf();
        let engine = start_engine(&dir, &options).await;
        Self {
            engine: Some(engine),
            options,
            dir,
            _guard: guard,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("the engine runs")
    }

    /// Its data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its peer id (hex).
    pub fn id(&self) -> String {
        self.engine().peer_id()
    }

    /// Shuts the engine down (bounded by 30 s).
    pub async fn shutdown(&mut self) {
        if let Some(e) = self.engine.take() {
            tokio::time::timeout(Duration::from_secs(30), e.shutdown())
                .await
                .expect("the engine shuts down in time");
        }
    }

    /// Shuts the engine down and starts a new one on the same data dir.
    pub async fn restart(&mut self) {
        self.shutdown().await;
        self.engine = Some(start_engine(&self.dir, &self.options).await);
    }

    /// Joins `url` (with an invite for a trusted peer).
    pub async fn join(&self, url: &str, invite: Option<&str>) {
        self.engine().join(url, invite).await.expect("join");
    }

    /// The status of the swarm joined by `url`, if joined.
    pub async fn swarm(&self, url: &str) -> Option<SwarmStatus> {
        let url = tuber_peer::engine::normalize_url(url);
        self.engine()
            .swarms()
            .await
            .into_iter()
            .find(|s| s.url == url)
    }

    /// The phase of the swarm joined by `url`, if joined.
    pub async fn phase(&self, url: &str) -> Option<SwarmPhase> {
        self.swarm(url).await.map(|s| s.phase)
    }

    /// Waits until the swarm at `url` is `Joined`; returns `trusted`.
    pub async fn wait_joined(&self, url: &str, timeout: Duration) -> bool {
        let trusted = AtomicBool::new(false);
        let (t, me) = (&trusted, self);
        let what = format!("{} joins {url}", self.id());
        wait_until(timeout, &what, move || async move {
            match me.phase(url).await {
                Some(SwarmPhase::Joined { trusted: x }) => {
                    t.store(x, Ordering::SeqCst);
                    true
                }
                _ => false,
            }
        })
        .await;
        trusted.load(Ordering::SeqCst)
    }

    /// Fetches a whole resource, bounded by `timeout`.
    pub async fn fetch(&self, url: &str, path: &str, timeout: Duration) -> FetchSummary {
        tokio::time::timeout(timeout, self.engine().fetch_resource(url, path))
            .await
            .unwrap_or_else(|_| panic!("{} fetches {path} within {timeout:?}", self.id()))
            .unwrap_or_else(|e| panic!("{} fetches {path}: {e}", self.id()))
    }

    /// Fetches `manifest`'s resource, asserting every piece came from peers
    /// (none from the hub, none failed); returns the SHA-256 (hex) of the
    /// bytes reassembled from the store.
    pub async fn fetch_from_peers(
        &self,
        url: &str,
        manifest: &Manifest,
        timeout: Duration,
    ) -> String {
        let got = self.fetch(url, &manifest.path, timeout).await;
        assert_eq!(
            (got.from_peers, got.from_hub, got.failed),
            (manifest.pieces.len() as u64, 0, 0),
            "{} fetches {} from peers only: {got:?}",
            self.id(),
            manifest.path
        );
        super::sha256_hex(&self.reassemble(manifest).await)
    }

    /// The resource reassembled from the store, piece by piece (each piece
    /// is verified by the store as it is read). Panics on a missing piece.
    pub async fn reassemble(&self, manifest: &Manifest) -> Vec<u8> {
        let store = self.engine().store();
        let mut out = Vec::with_capacity(manifest.length as usize);
        for (i, hash) in manifest.pieces.iter().enumerate() {
            let bytes = store
                .get(*hash)
                .await
                .unwrap_or_else(|e| panic!("piece {i} unreadable: {e}"))
                .unwrap_or_else(|| panic!("piece {i} of {} not held", manifest.path));
            assert!(hash.verifies(&bytes), "piece {i} does not verify");
            out.extend_from_slice(&bytes);
        }
        out
    }

    /// Waits until every piece of `manifest` is stored and pinned (an
    /// assignment held).
    pub async fn wait_pinned(&self, manifest: &Manifest, timeout: Duration) -> Duration {
        let what = format!("{} holds {} pinned", self.id(), manifest.path);
        wait_until(timeout, &what, || async move {
            let store = self.engine().store();
            for hash in &manifest.pieces {
                match store.meta(*hash).await {
                    Ok(Some(meta)) if meta.pinned => {}
                    _ => return false,
                }
            }
            true
        })
        .await
    }

    /// Checks every piece stored for the swarm `url`: readable, and hashing
    /// to its name; and that the store never found a corrupt piece. Returns
    /// how many pieces it checked.
    pub async fn verify_store(&self, url: &str) -> usize {
        let url = tuber_peer::engine::normalize_url(url);
        let store = self.engine().store();
        let held = store.list_by_swarm(url).await.expect("list pieces");
        for hash in &held {
            let bytes = store
                .get(*hash)
                .await
                .unwrap_or_else(|e| panic!("{}: piece {hash} corrupt in store: {e}", self.id()))
                .unwrap_or_else(|| panic!("{}: listed piece {hash} missing", self.id()));
            assert!(
                hash.verifies(&bytes),
                "{}: piece {hash} does not verify",
                self.id()
            );
        }
        let totals = store.totals().await.expect("totals");
        assert_eq!(
            totals.corrupt_detected,
            0,
            "{}: the store found corrupt pieces",
            self.id()
        );
        held.len()
    }
}

async fn start_engine(dir: &Path, options: &PeerOptions) -> Engine {
    let mut config = engine_config(dir);
    config.initial_settings = options.settings.clone();
    config.corrupt_uploads = options.corrupt_uploads;
    tokio::time::timeout(Duration::from_secs(30), Engine::start(config))
        .await
        .expect("the engine starts in time")
        .expect("the engine starts")
}
