//! State shared by everything one engine runs, and by everything one swarm
//! runs (its actor, link tasks, fetchers): serving a request, counting
//! bytes, announcing holdings, asking the actor for providers and links.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tuber_proto::signal::{BadPiece, Provider};
use tuber_proto::{ManifestId, PeerId, PieceHash, SwarmDescriptor};
use tuber_store::Store;

use super::hub_http::HubHttp;
use super::link::{self, LinkHandle, Serve};
use super::persist::Paths;
use super::types::{EngineEvent, Settings, SwarmPhase};
use crate::budget::Budgets;
use crate::identity::Identity;
use crate::meter::{Direction, Meter, UpDown};
use crate::transport::RtcConfig;

/// Locks a std mutex, ignoring poisoning: every critical section here is
/// a few field updates that leave the data consistent even mid-panic.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Engine-wide state.
pub struct Shared {
    pub identity: Arc<Identity>,
    pub store: Store,
    pub rtc: RtcConfig,
    pub agent: String,
    pub http: HubHttp,
    /// What `https://` hubs' certificates must chain to.
    pub tls: crate::tls::TlsTrust,
    /// Invites may go to public `http://` hubs.
    pub allow_insecure: bool,
    pub paths: Paths,
    pub budgets: Mutex<Budgets>,
    pub meter: Mutex<Meter>,
    pub settings: Mutex<Settings>,
    pub events: broadcast::Sender<EngineEvent>,
    /// Test-only: serve every piece with one byte flipped.
    pub corrupt_uploads: bool,
}

impl Shared {
    pub fn emit(&self, event: EngineEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }

    pub fn paused(&self) -> bool {
        lock(&self.settings).paused
    }
}

/// What a fetcher or the engine asks a swarm's actor.
pub enum SwarmCmd {
    /// `want` → `providers`.
    Want {
        pieces: Vec<PieceHash>,
        reply: oneshot::Sender<Vec<Provider>>,
    },
    /// An open link to `peer`, connecting if needed.
    Link {
        peer: PeerId,
        reply: oneshot::Sender<Option<LinkHandle>>,
    },
}

/// The actor's view, for status snapshots.
#[derive(Debug, Clone)]
pub struct SwarmView {
    pub phase: SwarmPhase,
    pub descriptor: Option<Arc<SwarmDescriptor>>,
    pub peers: Vec<(PeerId, Option<Provider>)>,
}

/// What the planner asked this peer to hold, by resource.
#[derive(Debug, Clone, Default)]
pub struct Assigned {
    pub manifest: Option<ManifestId>,
    pub pieces: BTreeSet<u32>,
    /// Of them, how many are known held.
    pub held: u64,
}

/// Per-swarm shared state.
pub struct SwarmShared {
    pub url: String,
    pub engine: Arc<Shared>,
    pub cmds: mpsc::Sender<SwarmCmd>,
    pub cancel: CancellationToken,
    pub view: Mutex<SwarmView>,
    pub assigned: Mutex<HashMap<String, Assigned>>,
    /// Bytes per remote since the last `report`.
    pub transfers: Mutex<HashMap<PeerId, UpDown>>,
    /// Bad pieces since the last `report`.
    pub bad: Mutex<Vec<BadPiece>>,
    /// Pieces stored since the last `have`.
    pub have: Mutex<Vec<PieceHash>>,
    /// Pieces evicted or found corrupt since the last `lost`.
    pub lost: Mutex<Vec<PieceHash>>,
    /// Peers that sent a corrupt piece: never asked again in this run.
    pub liars: Mutex<BTreeSet<PeerId>>,
}

impl SwarmShared {
    /// Reads the answer to a remote's request for `length` bytes of `piece`
    /// at `offset`. Nothing is charged here: the link charges the upload cap
    /// when it queues the data ([`SwarmShared::charge_upload`]) and gives
    /// back what never goes out, so a request for a piece we lack, or one
    /// cancelled at once, costs the cap nothing. The check before the read
    /// only spares the disk when the budget is spent anyway.
    pub async fn serve(&self, piece: PieceHash, offset: u32, length: u32) -> Serve {
        let e = &self.engine;
        if e.paused() {
            return Serve::Busy(0);
        }
        if let Err(busy) = lock(&e.budgets).check_upload(Instant::now(), u64::from(length)) {
            return Serve::Busy(busy.retry_after_ms());
        }
        let bytes = match e.store.get(piece).await {
            Ok(Some(b)) => Bytes::from(b),
            Ok(None) => return Serve::Missing,
            Err(err) => {
                tracing::warn!(%piece, error = %err, "piece unreadable; answered missing");
                lock(&self.lost).push(piece);
                return Serve::Missing;
            }
        };
        let (start, end) = (offset as usize, offset as usize + length as usize);
        if end > bytes.len() {
            return Serve::Missing;
        }
        let slice = bytes.slice(start..end);
        if e.corrupt_uploads {
            return Serve::Data(link::corrupt(slice));
        }
        Serve::Data(slice)
    }

    /// Takes `bytes` about to be queued for a remote from the upload cap, or
    /// says when to ask again (the wire's `retry_after_ms`).
    pub fn charge_upload(&self, bytes: u64) -> Result<(), u32> {
        lock(&self.engine.budgets)
            .try_upload(Instant::now(), bytes)
            .map_err(|busy| busy.retry_after_ms())
    }

    /// Gives back upload charged for bytes that were never sent.
    pub fn refund_upload(&self, bytes: u64) {
        if bytes > 0 {
            lock(&self.engine.budgets).refund_upload(bytes);
        }
    }

    /// Counts bytes moved with `peer` in the meter (all traffic: graphs
    /// and totals); bytes sent also count towards the next `report`.
    pub fn record(&self, peer: PeerId, dir: Direction, bytes: u64) {
        lock(&self.engine.meter).record(Instant::now(), dir, &self.url, peer, bytes);
        if dir == Direction::Up {
            lock(&self.transfers).entry(peer).or_default().up += bytes;
        }
    }

    /// A verified piece of `bytes` came from `peer`: what `report`'s `down`
    /// counts (protocol §5.4), so a sender of junk earns no credit.
    pub fn credit_verified(&self, peer: PeerId, bytes: u64) {
        lock(&self.transfers).entry(peer).or_default().down += bytes;
    }

    /// Providers for `pieces` (at most 512), or none within 10 s.
    pub async fn want(&self, pieces: Vec<PieceHash>) -> Vec<Provider> {
        let (reply, rx) = oneshot::channel();
        if self
            .cmds
            .send(SwarmCmd::Want { pieces, reply })
            .await
            .is_err()
        {
            return Vec::new();
        }
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    /// An open link to `peer`, or none if it cannot be had now.
    pub async fn link(&self, peer: PeerId) -> Option<LinkHandle> {
        let (reply, rx) = oneshot::channel();
        self.cmds.send(SwarmCmd::Link { peer, reply }).await.ok()?;
        rx.await.ok().flatten()
    }

    /// A piece from `peer` failed verification.
    pub fn report_bad(&self, peer: PeerId, piece: PieceHash) {
        tracing::warn!(%peer, %piece, swarm = %self.url, "peer sent a corrupt piece; reporting it");
        lock(&self.liars).insert(peer);
        let mut bad = lock(&self.bad);
        if bad.len() < 64 {
            bad.push(BadPiece { peer, piece });
        }
        self.engine.emit(EngineEvent::BadPiece {
            swarm: self.url.clone(),
            peer: peer.to_string(),
        });
    }

    pub fn is_liar(&self, peer: &PeerId) -> bool {
        lock(&self.liars).contains(peer)
    }

    /// Stores a verified piece (announced with the next `have`).
    pub async fn store_piece(
        &self,
        resource: &str,
        hash: PieceHash,
        bytes: Bytes,
        pinned: bool,
    ) -> Result<(), tuber_store::StoreError> {
        let owner = tuber_store::Owner::new(self.url.clone(), resource.to_string());
        let outcome = self
            .engine
            .store
            .put(hash, bytes.to_vec(), owner, pinned)
            .await?;
        lock(&self.have).push(hash);
        if !outcome.evicted.is_empty() {
            self.engine.emit(EngineEvent::BudgetReached {
                evicted: outcome.evicted.len() as u64,
            });
            lock(&self.lost).extend(outcome.evicted);
        }
        Ok(())
    }

    pub fn set_phase(&self, phase: SwarmPhase) {
        lock(&self.view).phase = phase;
    }
}
