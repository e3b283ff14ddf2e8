//! A trusted peer's duties: hold what the planner assigns. One worker per
//! swarm takes assignments in order: fetches the manifest (checked against
//! the assigned id), pins the pieces already held, prefetches the rest
//! (pinned, so eviction takes unassigned content first), and announces
//! them. An unassignment unpins.

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
        loop {
            let duty = tokio::select! {
                d = rx.recv() => match d { Some(d) => d, None => break },
                () = swarm.cancel.cancelled() => break,
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
