//! A trusted peer's duties: hold what the planner assigns. One worker per
//! swarm takes assignments in order: fetches the manifest (checked against
//! the assigned id), pins the pieces already held, prefetches the rest
//! (pinned, so eviction takes unassigned content first), and announces
//! them. An unassignment unpins; for a signed URL whose expiry has passed
//! (`tuber_proto::expiry`, protocol §4.5) it deletes the resource's pieces
//! and manifest: the origin gave them out only behind that signature. The
//! worker also deletes, at start and every [`PURGE_EVERY`], unassigned
//! signed URLs that expired while no unassign came (the hub was down at the
//! time, or this peer was).

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;
use tuber_proto::signal::PieceRange;
use tuber_proto::{Manifest, ManifestId};

use super::fetch::{fetch_pieces, Wanted};
use super::shared::{lock, SwarmShared};
use super::types::EngineEvent;

/// Queued assignments per swarm.
const QUEUE: usize = 256;

/// How far the hub's clock may run ahead of ours: an unassigned signed URL
/// expiring within this counts as expired (the hub unassigns at expiry by
/// its clock, and the resource is useless a moment later anyway).
pub const CLOCK_SKEW: u64 = 300;

/// How often expired, unassigned signed URLs are looked for in the store.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// One planner message for the worker.
#[derive(Debug)]
pub enum Duty {
    Assign {
        resource: String,
        manifest: ManifestId,
        ranges: Vec<PieceRange>,
    },
    Unassign {
        resource: String,
        manifest: ManifestId,
        ranges: Vec<PieceRange>,
    },
}

/// Starts the worker; it ends when the swarm is left.
pub fn spawn(swarm: Arc<SwarmShared>) -> mpsc::Sender<Duty> {
    let (tx, mut rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        let mut purge = tokio::time::interval(PURGE_EVERY);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let duty = tokio::select! {
                // Leaving first; then the planner's messages, in order.
                biased;
                () = swarm.cancel.cancelled() => break,
                d = rx.recv() => match d { Some(d) => d, None => break },
                _ = purge.tick() => {
                    purge_expired(&swarm).await;
                    continue;
                }
            };
            match duty {
                Duty::Assign {
                    resource,
                    manifest,
                    ranges,
                } => assign(&swarm, &resource, manifest, &ranges).await,
                Duty::Unassign {
                    resource,
                    manifest,
                    ranges,
                } => unassign(&swarm, &resource, manifest, &ranges).await,
            }
        }
    });
    tx
}

/// The manifest of `resource` with id `id`: from the store, else the hub.
async fn manifest(swarm: &SwarmShared, resource: &str, id: ManifestId) -> Option<Manifest> {
    let store = &swarm.engine.store;
    if let Ok(Some(bytes)) = store
        .get_manifest(swarm.url.clone(), resource.to_string())
        .await
    {
        if let Ok(m) = Manifest::decode(&bytes) {
            if m.id() == id {
                return Some(m);
            }
        }
    }
    let desc = lock(&swarm.view).descriptor.clone()?;
    match swarm.engine.http.manifest(&desc, resource, Some(id)).await {
        Ok((m, bytes)) => {
            if let Err(e) = store
                .put_manifest(swarm.url.clone(), resource.to_string(), bytes.to_vec())
                .await
            {
                tracing::warn!(error = %e, "manifest not stored");
            }
            Some(m)
        }
        Err(e) => {
            tracing::warn!(error = %e, %resource, "assigned manifest unavailable");
            None
        }
    }
}

fn indices(ranges: &[PieceRange], count: usize) -> BTreeSet<u32> {
    ranges
        .iter()
        .flat_map(|r| r.start..r.end.min(count as u32))
        .collect()
}

async fn assign(swarm: &Arc<SwarmShared>, resource: &str, id: ManifestId, ranges: &[PieceRange]) {
    if tuber_proto::expiry::has_expired(resource, unix_now()) {
        tracing::info!(%resource, "not fetching an assignment whose signed URL expired");
        return;
    }
    let Some(m) = manifest(swarm, resource, id).await else {
        return;
    };
    let new = indices(ranges, m.pieces.len());
    {
        let mut assigned = lock(&swarm.assigned);
        let a = assigned.entry(resource.to_string()).or_default();
        if a.manifest != Some(id) {
            // A new version of the resource replaces the old assignment.
            a.pieces.clear();
            a.held = 0;
            a.manifest = Some(id);
        }
        a.pieces.extend(new.iter().copied());
    }
    let wanted: Vec<Wanted> = new
        .iter()
        .filter_map(|&i| {
            let (_, size) = m.piece_range(i as usize)?;
            Some(Wanted {
                index: i,
                hash: m.pieces[i as usize],
                size,
            })
        })
        .collect();
    let summary = fetch_pieces(swarm, resource, wanted, true).await;
    tracing::info!(%resource, ?summary, swarm = %swarm.url, "assignment prefetched");
    let held = summary.already_held + summary.from_peers + summary.from_hub;
    if let Some(a) = lock(&swarm.assigned).get_mut(resource) {
        if a.manifest == Some(id) {
            a.held = (a.held + held).min(a.pieces.len() as u64);
        }
    }
    swarm.engine.emit(EngineEvent::Stored {
        swarm: swarm.url.clone(),
        resource: resource.to_string(),
    });
}

async fn unassign(swarm: &Arc<SwarmShared>, resource: &str, id: ManifestId, ranges: &[PieceRange]) {
    if expired(resource) {
        // The hub no longer serves its manifest: the stored copy or none.
        if let Some(m) = stored_manifest(swarm, resource, id).await {
            drop_expired(swarm, resource, &m).await;
        }
        return;
    }
    let Some(m) = manifest(swarm, resource, id).await else {
        return;
    };
    let gone = indices(ranges, m.pieces.len());
    {
        let mut assigned = lock(&swarm.assigned);
        if let Some(a) = assigned.get_mut(resource) {
            let before = a.pieces.len() as u64;
            a.pieces.retain(|i| !gone.contains(i));
            let removed = before - a.pieces.len() as u64;
            a.held = a.held.saturating_sub(removed);
            if a.pieces.is_empty() {
                assigned.remove(resource);
            }
        }
    }
    for i in gone {
        if let Some(hash) = m.pieces.get(i as usize) {
            let _ = swarm.engine.store.set_pinned(*hash, false).await;
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether `resource` is a signed URL expired by now (give or take the
/// hub's clock, [`CLOCK_SKEW`]).
fn expired(resource: &str) -> bool {
    tuber_proto::expiry::has_expired(resource, unix_now().saturating_add(CLOCK_SKEW))
}

/// The manifest of `resource` with id `id`, if the store has it.
async fn stored_manifest(swarm: &SwarmShared, resource: &str, id: ManifestId) -> Option<Manifest> {
    let bytes = swarm
        .engine
        .store
        .get_manifest(swarm.url.clone(), resource.to_string())
        .await
        .ok()??;
    Manifest::decode(&bytes).ok().filter(|m| m.id() == id)
}

/// Deletes the stored signed URLs of this swarm that expired and are not
/// assigned.
async fn purge_expired(swarm: &SwarmShared) {
    let now = unix_now();
    let Ok(stored) = swarm.engine.store.list_manifests(swarm.url.clone()).await else {
        return;
    };
    for (resource, bytes) in stored {
        if !tuber_proto::expiry::has_expired(&resource, now)
            || lock(&swarm.assigned).contains_key(&resource)
        {
            continue;
        }
        if let Ok(m) = Manifest::decode(&bytes) {
            drop_expired(swarm, &resource, &m).await;
        }
    }
}

/// Deletes an expired signed URL's pieces (but those another resource
/// owns too, such as another signature of the same file) and its manifest,
/// and announces them `lost`.
async fn drop_expired(swarm: &SwarmShared, resource: &str, m: &Manifest) {
    let store = &swarm.engine.store;
    lock(&swarm.assigned).remove(resource);
    let mut deleted = Vec::new();
    let unique: BTreeSet<_> = m.pieces.iter().copied().collect();
    for hash in unique {
        let owners = match store.meta(hash).await {
            Ok(Some(meta)) => meta.owners,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(%hash, error = %e, "cannot read a piece's owners; kept");
                continue;
            }
        };
        let others: Vec<_> = owners
            .iter()
            .filter(|o| o.swarm != swarm.url || o.resource != resource)
            .collect();
        if others.is_empty() {
            if store.delete(hash).await.unwrap_or(false) {
                deleted.push(hash);
            }
            continue;
        }
        // Kept for the other resources; pinned only while one of them is
        // assigned here.
        let still = {
            let assigned = lock(&swarm.assigned);
            others
                .iter()
                .any(|o| o.swarm == swarm.url && assigned.contains_key(&o.resource))
        };
        if !still {
            let _ = store.set_pinned(hash, false).await;
        }
    }
    if let Err(e) = store
        .delete_manifest(swarm.url.clone(), resource.to_string())
        .await
    {
        tracing::warn!(error = %e, %resource, "expired manifest not deleted");
    }
    tracing::info!(%resource, pieces = deleted.len(), swarm = %swarm.url, "expired signed URL deleted");
    lock(&swarm.lost).extend(deleted);
    swarm.engine.emit(EngineEvent::Stored {
        swarm: swarm.url.clone(),
        resource: resource.to_string(),
    });
}
