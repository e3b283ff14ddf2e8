//! The [`Engine`]: one handle that the desktop app, the headless daemon and
//! the tests all use. It owns the store, the budgets, the meter, and one
//! actor per joined swarm; every user action is one method here.
//!
//! ## Layout
//! - `types` — settings, status snapshot, events (serde, for UIs).
//! - `shared` — state shared by a swarm's actor, links and fetchers.
//! - `swarm` — a swarm's actor: signaling, connections, announcements.
//! - `link` — one DataChannel driven through the peer wire session.
//! - `fetch` — peers first, then the hub; verify; store.
//! - `duties` — assignments: manifest, prefetch, pin, announce.
//! - `hub_http` — manifests and pieces from the hub over HTTP.
//! - `persist` — settings, swarms and history in the data dir.

mod content;
mod duties;
mod fetch;
mod hub_http;
mod link;
mod persist;
mod shared;
mod support;
mod swarm;
pub mod types;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tuber_proto::signal::Capacity;

pub use fetch::FetchSummary;
pub use hub_http::{HubHttp, HubHttpError};
pub(crate) use persist::{
    load as persist_load, save as persist_save, write_bytes as persist_write_atomically,
};
use persist::{Paths, SavedSwarms};
use shared::{lock, Shared, SwarmShared, SwarmView};
pub use support::normalize_url;
use support::{save_meter, swarm_status, tick, wait_descriptor, wanted_all};
pub use types::*;

use crate::budget::{Budgets, Rate};
use crate::identity::{Identity, IdentityError};
use crate::meter::{HistorySnapshot, Meter, MeterSnapshot};
use crate::swarm_client::{Invite, JoinError, SwarmClient};
use crate::tls::TlsTrust;
use crate::transport::RtcConfig;

/// Events buffered per subscriber; a slower one misses the oldest.
const EVENT_QUEUE: usize = 1024;
/// The smallest disk budget accepted: one piece of the largest size.
pub const MIN_DISK_BUDGET: u64 = tuber_proto::limits::MAX_PIECE_SIZE as u64;
/// How often the meter is saved (and at shutdown).
const SAVE_METER_EVERY: Duration = Duration::from_secs(30);

/// How to start an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the key, store and state files live.
    pub data_dir: PathBuf,
    /// WebRTC settings (bind addresses, buffers).
    pub rtc: RtcConfig,
    /// Software name and version sent to hubs.
    pub agent: String,
    /// Settings to use when none are saved yet.
    pub initial_settings: Settings,
    /// The piece store's page cache; None = the store's default (64 MiB).
    /// The desktop app asks for less: it must idle small in the tray, and
    /// the OS caches the store's file anyway.
    pub store_cache_bytes: Option<u64>,
    /// A PEM file of extra CA certificates an `https://` hub's certificate
    /// may chain to (a private deployment), on top of the bundled Mozilla
    /// roots and the system's. Default none.
    pub ca_file: Option<PathBuf>,
    /// Send invites to `http://` hubs on public addresses, in cleartext.
    /// Default false: such a join stops with `insecure_invite`.
    pub allow_insecure: bool,
    /// Test-only "liar" switch: serve every piece with a byte flipped.
    /// Ignored unless built with the `test-hooks` feature.
    pub corrupt_uploads: bool,
}

impl EngineConfig {
    /// Defaults for a data dir.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            rtc: RtcConfig::default(),
            agent: format!("tuber-peer/{}", env!("CARGO_PKG_VERSION")),
            initial_settings: Settings::default(),
            store_cache_bytes: None,
            ca_file: None,
            allow_insecure: false,
            corrupt_uploads: false,
        }
    }
}

/// Why an engine action failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("piece store: {0}")]
    Store(#[from] tuber_store::StoreError),
    #[error(transparent)]
    Join(#[from] JoinError),
    /// The extra CA file is unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsTrustError),
    #[error("another tuber-peer already uses the data dir {0}")]
    DataDirInUse(String),
    #[error("not joined to {0}")]
    NotJoined(String),
    #[error("already joined to {0}")]
    AlreadyJoined(String),
    #[error("cannot save {what}: {error}")]
    Save { what: &'static str, error: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Hub(#[from] HubHttpError),
}

struct SwarmEntry {
    shared: Arc<SwarmShared>,
    _task: AbortOnDropHandle<()>,
}

/// The running engine. Clone it freely; [`Engine::shutdown`] stops it.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    swarms: Arc<tokio::sync::Mutex<BTreeMap<String, SwarmEntry>>>,
    cancel: CancellationToken,
    _ticker: Arc<AbortOnDropHandle<()>>,
}

impl Engine {
    /// Opens (or creates) the data dir, starts the engine and rejoins the
    /// saved swarms.
    pub async fn start(config: EngineConfig) -> Result<Self, EngineError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| EngineError::Save {
            what: "the data dir",
            error: e.to_string(),
        })?;
        let paths = Paths::new(&config.data_dir);
        let identity = Arc::new(Identity::load_or_create(&config.data_dir)?);
        // Reads the system's roots and the CA file: off the async workers.
        let tls = {
            let ca_file = config.ca_file.clone();
            tokio::task::spawn_blocking(move || TlsTrust::load(ca_file.as_deref()))
                .await
                .map_err(|e| EngineError::Save {
                    what: "the TLS trust store",
                    error: e.to_string(),
                })??
        };
        let settings: Settings =
            persist::load(&paths.settings).unwrap_or(config.initial_settings.clone());
        let store = tuber_store::Store::open(&paths.store, {
            let mut c = tuber_store::Config::new(settings.disk_budget);
            if let Some(cache) = config.store_cache_bytes {
                c.cache_bytes = cache;
            }
            c
        })
        .await
        .map_err(|e| match e {
            // sled's own lock file says another process has the store.
            tuber_store::StoreError::Open { ref source, .. }
                if source.to_string().contains("could not acquire lock") =>
            {
                EngineError::DataDirInUse(config.data_dir.display().to_string())
            }
            e => EngineError::Store(e),
        })?;
        let now = Instant::now();
        let meter = match persist::load::<MeterSnapshot>(&paths.meter) {
            Some(snap) => Meter::restore(&snap, now, SystemTime::now()),
            None => Meter::new(now, SystemTime::now()),
        };
        let mut budgets = Budgets::new(
            now,
            Rate::from_bytes_per_sec(settings.upload_bps),
            Rate::from_bytes_per_sec(settings.download_bps),
        );
        if settings.paused {
            budgets.pause();
        }
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let shared = Arc::new(Shared {
            identity,
            store,
            rtc: config.rtc,
            agent: config.agent,
            http: HubHttp::new(&tls),
            tls,
            allow_insecure: config.allow_insecure,
            paths,
            budgets: Mutex::new(budgets),
            meter: Mutex::new(meter),
            settings: Mutex::new(settings),
            events,
            corrupt_uploads: cfg!(feature = "test-hooks") && config.corrupt_uploads,
        });
        let cancel = CancellationToken::new();
        let ticker =
            AbortOnDropHandle::new(tokio::spawn(tick(Arc::clone(&shared), cancel.clone())));
        let engine = Self {
            shared,
            swarms: Arc::default(),
            cancel,
            _ticker: Arc::new(ticker),
        };
        let saved: SavedSwarms = persist::load(&engine.shared.paths.swarms).unwrap_or_default();
        for url in saved.urls {
            if let Err(e) = engine.start_swarm(&url, None).await {
                tracing::warn!(%url, error = %e, "saved swarm not rejoined");
            }
        }
        Ok(engine)
    }

    /// This installation's peer id (hex).
    pub fn peer_id(&self) -> String {
        self.shared.identity.peer_id().to_string()
    }

    /// The piece store (for inspection by tools and tests).
    pub fn store(&self) -> &tuber_store::Store {
        &self.shared.store
    }

    /// Joins the swarm at `url`, registering as trusted with `invite`.
    /// Saved: the engine rejoins it at every start until it is left.
    /// Joining a swarm already joined is `AlreadyJoined`, unless an invite
    /// comes with it: then the swarm reconnects to present it.
    pub async fn join(&self, url: &str, invite: Option<&str>) -> Result<(), EngineError> {
        let url = normalize_url(url);
        let existing = self.swarms.lock().await.remove(&url);
        if let Some(entry) = existing {
            if invite.is_none() {
                self.swarms.lock().await.insert(url.clone(), entry);
                return Err(EngineError::AlreadyJoined(url));
            }
            entry.shared.cancel.cancel();
        }
        self.start_swarm(&url, invite.map(Invite::new)).await?;
        self.save_swarms().await
    }

    /// Leaves the swarm at `url`: closes its connections and forgets it.
    /// Its pieces stay in the store (evicted first when room is needed).
    pub async fn leave(&self, url: &str) -> Result<(), EngineError> {
        let url = normalize_url(url);
        let entry = self.swarms.lock().await.remove(&url);
        let Some(entry) = entry else {
            return Err(EngineError::NotJoined(url));
        };
        entry.shared.cancel.cancel();
        self.save_swarms().await?;
        self.shared.emit(EngineEvent::Swarm { url, status: None });
        Ok(())
    }

    async fn start_swarm(&self, url: &str, invite: Option<Invite>) -> Result<(), EngineError> {
        let settings = self.settings();
        let mut builder = SwarmClient::builder(url, Arc::clone(&self.shared.identity))
            .agent(self.shared.agent.clone())
            .tls(self.shared.tls.clone())
            .allow_insecure(self.shared.allow_insecure)
            .capacity(Capacity {
                disk_bytes: settings.disk_budget.min((1 << 53) - 1),
                upload_bps: settings.upload_bps.min((1 << 53) - 1),
            });
        if let Some(i) = invite {
            builder = builder.invite(i);
        }
        let (client, inbound) = builder.join()?;
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let shared = Arc::new(SwarmShared {
            url: url.to_string(),
            engine: Arc::clone(&self.shared),
            cmds: cmd_tx,
            cancel: self.cancel.child_token(),
            view: Mutex::new(SwarmView {
                phase: SwarmPhase::Connecting,
                descriptor: None,
                peers: Vec::new(),
            }),
            assigned: Mutex::default(),
            transfers: Mutex::default(),
            bad: Mutex::default(),
            have: Mutex::default(),
            lost: Mutex::default(),
            liars: Mutex::default(),
        });
        let actor = swarm::SwarmActor::new(Arc::clone(&shared), client, inbound, cmd_rx);
        let task = AbortOnDropHandle::new(tokio::spawn(actor.run()));
        self.swarms.lock().await.insert(
            url.to_string(),
            SwarmEntry {
                shared,
                _task: task,
            },
        );
        Ok(())
    }

    async fn save_swarms(&self) -> Result<(), EngineError> {
        let urls = self.swarms.lock().await.keys().cloned().collect();
        persist::save(&self.shared.paths.swarms, &SavedSwarms { urls }).map_err(|e| {
            EngineError::Save {
                what: "the swarm list",
                error: e.to_string(),
            }
        })
    }

    /// The joined swarms.
    pub async fn swarms(&self) -> Vec<SwarmStatus> {
        let now = Instant::now();
        let swarms = self.swarms.lock().await;
        let meter = lock(&self.shared.meter);
        swarms
            .values()
            .map(|e| swarm_status(&e.shared, &meter, now))
            .collect()
    }

    /// Everything a dashboard shows.
    pub async fn status(&self) -> Status {
        let now = Instant::now();
        let swarms = self.swarms().await;
        let mut peers = Vec::new();
        {
            let list = self.swarms.lock().await;
            let meter = lock(&self.shared.meter);
            for e in list.values() {
                let view = lock(&e.shared.view);
                for (peer, provider) in &view.peers {
                    let t = meter.peer(now, peer).unwrap_or_default();
                    peers.push(PeerStatus {
                        peer: peer.to_string(),
                        swarm: e.shared.url.clone(),
                        role: provider.as_ref().map(|p| {
                            serde_json::to_value(p.role)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default()
                        }),
                        trusted: provider.as_ref().map(|p| p.trusted),
                        rate: t.rate,
                        bytes: t.bytes,
                    });
                }
            }
        }
        let total = lock(&self.shared.meter).total(now);
        // A failed disk figure is shown as 0 rather than hiding the totals.
        let disk_bytes = self.shared.store.disk_usage().await.unwrap_or(0);
        let store = match self.shared.store.totals().await {
            Ok(t) => StoreStatus {
                pieces: t.pieces,
                bytes: t.bytes,
                disk_bytes,
                pinned_bytes: t.pinned_bytes,
                budget: t.budget,
                corrupt_detected: t.corrupt_detected,
                evictions: t.evictions,
            },
            Err(_) => StoreStatus::default(),
        };
        let network = NetworkStatus {
            socket_buffer_requested: self.shared.rtc.socket_buffer as u64,
            socket_buffer_granted: crate::transport::socket_buffer_report().map(|r| r.recv as u64),
        };
        Status {
            peer_id: self.peer_id(),
            settings: self.settings(),
            rate: total.rate,
            total: total.bytes,
            swarms,
            peers,
            store,
            network,
        }
    }

    /// Pushed updates. A subscriber that falls behind by more than 1024
    /// events misses the oldest (`RecvError::Lagged`) and should re-read
    /// the status.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.shared.events.subscribe()
    }

    /// Bytes per second for the graphs: the last hour in seconds and the
    /// last week in minutes.
    pub fn history(&self) -> HistorySnapshot {
        let mut meter = lock(&self.shared.meter);
        meter.handle_timeout(Instant::now());
        meter.history().snapshot()
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        lock(&self.shared.settings).clone()
    }

    /// Changes settings; saved before the answer. A lower disk budget
    /// evicts at once.
    pub async fn update_settings(&self, patch: SettingsPatch) -> Result<Settings, EngineError> {
        if patch.disk_budget.is_some_and(|b| b < MIN_DISK_BUDGET) {
            return Err(EngineError::Invalid(format!(
                "the disk budget must be at least {} MiB (one largest piece)",
                MIN_DISK_BUDGET >> 20
            )));
        }
        if let Some(b) = patch.disk_budget {
            let evicted = self.shared.store.set_budget(b).await?;
            if !evicted.is_empty() {
                self.shared.emit(EngineEvent::BudgetReached {
                    evicted: evicted.len() as u64,
                });
            }
        }
        let now = Instant::now();
        let new = {
            let mut s = lock(&self.shared.settings);
            let mut b = lock(&self.shared.budgets);
            if let Some(v) = patch.upload_bps {
                s.upload_bps = v;
                b.set_upload(now, Rate::from_bytes_per_sec(v));
            }
            if let Some(v) = patch.download_bps {
                s.download_bps = v;
                b.set_download(now, Rate::from_bytes_per_sec(v));
            }
            if let Some(v) = patch.disk_budget {
                s.disk_budget = v;
            }
            if let Some(p) = patch.paused {
                s.paused = p;
                if p {
                    b.pause();
                } else {
                    b.resume();
                }
            }
            s.clone()
        };
        persist::save(&self.shared.paths.settings, &new).map_err(|e| EngineError::Save {
            what: "the settings",
            error: e.to_string(),
        })?;
        self.shared.emit(EngineEvent::Settings {
            settings: new.clone(),
        });
        Ok(new)
    }

    /// Pauses sharing: every request is answered `busy`, prefetch waits.
    pub async fn pause(&self) -> Result<Settings, EngineError> {
        self.update_settings(SettingsPatch {
            paused: Some(true),
            ..SettingsPatch::default()
        })
        .await
    }

    /// Resumes sharing.
    pub async fn resume(&self) -> Result<Settings, EngineError> {
        self.update_settings(SettingsPatch {
            paused: Some(false),
            ..SettingsPatch::default()
        })
        .await
    }

    /// Fetches a whole resource of a joined swarm into the store (peers
    /// first, then the hub), unpinned. For tools, tests and benchmarks.
    pub async fn fetch_resource(&self, url: &str, path: &str) -> Result<FetchSummary, EngineError> {
        let url = normalize_url(url);
        let shared = self
            .swarms
            .lock()
            .await
            .get(&url)
            .map(|e| Arc::clone(&e.shared))
            .ok_or_else(|| EngineError::NotJoined(url.clone()))?;
        let desc = wait_descriptor(&shared).await?;
        let (manifest, bytes) = self.shared.http.manifest(&desc, path, None).await?;
        self.shared
            .store
            .put_manifest(url.clone(), path.to_string(), bytes.to_vec())
            .await?;
        let wanted = wanted_all(&manifest);
        Ok(fetch::fetch_pieces(&shared, path, wanted, false).await)
    }

    /// Stops everything: closes connections, saves the history, closes the
    /// store. Other clones of this handle fail afterwards.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let entries: Vec<SwarmEntry> = std::mem::take(&mut *self.swarms.lock().await)
            .into_values()
            .collect();
        drop(entries);
        save_meter(&self.shared);
        if let Err(e) = self.shared.store.flush().await {
            tracing::warn!(error = %e, "store flush at shutdown failed");
        }
        // Close the store (and release its lock, so the same data dir can be
        // opened again) once the swarms' tasks have let go of it.
        let Self { shared, .. } = self;
        let mut shared = shared;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match Arc::try_unwrap(shared) {
                Ok(s) => {
                    if let Err(e) = s.store.shutdown().await {
                        tracing::warn!(error = %e, "store close failed");
                    }
                    return;
                }
                Err(still) if Instant::now() < deadline => {
                    shared = still;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    tracing::warn!("engine still in use at shutdown; store left open");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized() {
        assert_eq!(normalize_url(" http://a:1 "), "http://a:1/");
        assert_eq!(normalize_url("http://a/x"), "http://a/x");
    }
}
