//! Getting pieces: from peers first (the planner's providers, trusted
//! permanent peers first), else from the hub's piece endpoint. Every piece
//! is verified before it is stored; a peer whose piece fails verification
//! is reported and not asked again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use tuber_proto::{PeerId, PieceHash};

use super::link::FetchOutcome;
use super::shared::{lock, SwarmShared};

/// The meter's name for the hub's piece endpoint.
const HUB: PeerId = PeerId::from_bytes([0; 32]);

/// Pieces fetched at once by one call of [`fetch_pieces`].
const CONCURRENCY: usize = 48;

/// One piece to fetch: its index in the manifest, hash and size.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub index: u32,
    pub hash: PieceHash,
    pub size: u32,
}

/// What a fetch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FetchSummary {
    /// Pieces asked for.
    pub pieces: u64,
    /// Already held before the fetch.
    pub already_held: u64,
    /// Got from peers.
    pub from_peers: u64,
    /// Got from the hub.
    pub from_hub: u64,
    /// Not got (no source, store refused, or leaving).
    pub failed: u64,
    /// Bytes got from peers.
    pub bytes_from_peers: u64,
    /// Bytes got from the hub.
    pub bytes_from_hub: u64,
}

enum Got {
    Held,
    Peer(u64),
    Hub(u64),
    Failed,
}

/// Fetches `wanted` pieces of `resource` into the store (`pinned` for
/// assignments). Returns when every piece was got or given up on.
pub async fn fetch_pieces(
    swarm: &Arc<SwarmShared>,
    resource: &str,
    wanted: Vec<Wanted>,
    pinned: bool,
) -> FetchSummary {
    let mut summary = FetchSummary {
        pieces: wanted.len() as u64,
        ..FetchSummary::default()
    };
    let me = swarm.engine.identity.peer_id();
    let mut jobs = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(512) {
        let providers = swarm.want(chunk.iter().map(|w| w.hash).collect()).await;
        for (i, w) in chunk.iter().enumerate() {
            let candidates: Vec<PeerId> = providers
                .iter()
                .filter(|p| p.peer != me && p.pieces.contains(&(i as u32)))
                .map(|p| p.peer)
                .collect();
            jobs.push((*w, candidates));
        }
    }
    let results: Vec<Got> = stream::iter(jobs)
        .map(|(w, candidates)| fetch_one(swarm, resource, w, candidates, pinned))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for g in results {
        match g {
            Got::Held => summary.already_held += 1,
            Got::Peer(n) => {
                summary.from_peers += 1;
                summary.bytes_from_peers += n;
            }
            Got::Hub(n) => {
                summary.from_hub += 1;
                summary.bytes_from_hub += n;
            }
            Got::Failed => summary.failed += 1,
        }
    }
    summary
}

async fn fetch_one(
    swarm: &Arc<SwarmShared>,
    resource: &str,
    w: Wanted,
    mut candidates: Vec<PeerId>,
    pinned: bool,
) -> Got {
    let store = &swarm.engine.store;
    if store.has(w.hash).await.unwrap_or(false) {
        if pinned {
            let _ = store.set_pinned(w.hash, true).await;
        }
        // Also owned by this resource now (a put of a held piece adds the
        // owner without rewriting the bytes).
        return Got::Held;
    }
    if !wait_for_budget(swarm, w.size).await {
        return Got::Failed;
    }
    // Spread pieces over providers of equal rank.
    if !candidates.is_empty() {
        let k = w.index as usize % candidates.len();
        candidates.rotate_left(k);
    }
    for peer in candidates {
        if swarm.is_liar(&peer) || swarm.cancel.is_cancelled() {
            continue;
        }
        let Some(link) = swarm.link(peer).await else {
            continue;
        };
        match link.fetch(w.hash, w.size).await {
            FetchOutcome::Data(bytes) => {
                let n = bytes.len() as u64;
                return match swarm.store_piece(resource, w.hash, bytes, pinned).await {
                    Ok(()) => Got::Peer(n),
                    Err(e) => {
                        tracing::warn!(error = %e, piece = %w.hash, "store refused a piece");
                        Got::Failed
                    }
                };
            }
            FetchOutcome::Corrupt => swarm.report_bad(peer, w.hash),
            FetchOutcome::Missing
            | FetchOutcome::Busy
            | FetchOutcome::TimedOut
            | FetchOutcome::Closed => {}
        }
    }
    let Some(desc) = lock(&swarm.view).descriptor.clone() else {
        return Got::Failed;
    };
    match swarm.engine.http.piece(&desc, w.hash).await {
        Ok(bytes) => {
            let n = bytes.len() as u64;
            // Counted in the totals and graphs, under no remote peer (the
            // hub is not one), and not reported as a transfer.
            lock(&swarm.engine.meter).record(
                Instant::now(),
                crate::meter::Direction::Down,
                &swarm.url,
                HUB,
                n,
            );
            match swarm.store_piece(resource, w.hash, bytes, pinned).await {
                Ok(()) => Got::Hub(n),
                Err(e) => {
                    tracing::warn!(error = %e, piece = %w.hash, "store refused a piece");
                    Got::Failed
                }
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, piece = %w.hash, "hub did not give a piece");
            Got::Failed
        }
    }
}

/// Waits while sharing is paused or the download cap is spent. False if
/// the swarm is being left.
async fn wait_for_budget(swarm: &SwarmShared, size: u32) -> bool {
    loop {
        if swarm.cancel.is_cancelled() {
            return false;
        }
        let wait = if swarm.engine.paused() {
            Some(Duration::from_millis(250))
        } else {
            match lock(&swarm.engine.budgets).try_download(Instant::now(), u64::from(size)) {
                Ok(()) => None,
                Err(b) => Some(b.retry_after.unwrap_or(Duration::from_millis(100))),
            }
        };
        match wait {
            None => return true,
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d.min(Duration::from_secs(1))) => {}
                    () = swarm.cancel.cancelled() => return false,
                }
            }
        }
    }
}
