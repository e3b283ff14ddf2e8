//! The manifest service's side of the index (`index/`): every manifest the
//! service keeps is indexed as it is stored, what the index forgets leaves
//! the database and every map here (piece locations, the piece cache, the
//! current versions, the ETag siblings, the unvalidated manifests), asks are
//! recorded as requests arrive and written in batches, and publication
//! decisions queue up as [`PlannerWork`] for the publication task
//! (`crate::publication`).
//!
//! Lock order: the index first, then any of the service's maps. Every write
//! of a manifest to the database happens under the index lock, so the
//! database and the index never disagree about what is kept.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tuber_proto::{Manifest, ManifestId, PieceHash};

use super::index::{ForgetReason, Forgotten, IndexConfig, ManifestIndex, Stored};
use super::{lock, ManifestServiceError, Manifests, PieceLocation};
use crate::db::{unix_now, DbError};
use crate::network::network_key;
use crate::proxy::distributable::strip_query;

/// Manifests of resources without validator kept in memory at most.
pub const MAX_UNVALIDATED: usize = 1024;

/// What the planner must be told, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannerWork {
    /// Publish this manifest (load it, then `content`).
    Publish { path: String, version: String },
    /// Unassign this manifest; nobody is to be introduced as a holder of
    /// `withdrawn` (an expired signed URL's pieces no other manifest has).
    Unpublish {
        id: ManifestId,
        withdrawn: Vec<PieceHash>,
    },
}

/// The index's figures, for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexFigures {
    pub indexed: u64,
    pub bytes: u64,
    pub published: u64,
    pub published_bytes: u64,
    pub forgotten: [u64; 4],
}

impl Manifests {
    /// Bounds the index (before [`load_index`](Self::load_index); an index
    /// already filled is replaced by an empty one).
    pub fn set_index_config(&self, config: IndexConfig) {
        *lock(&self.inner.index) = ManifestIndex::new(config);
    }

    /// Reads the index from the database at start, as of `now` (Unix
    /// seconds): what expired, aged out or exceeds the bounds meanwhile is
    /// deleted. Blocking.
    pub fn load_index(&self, now: u64) -> Result<(), DbError> {
        let records = self.inner.db.load_manifest_index(now)?;
        let mut ix = lock(&self.inner.index);
        ix.restore(now, records);
        self.settle(&mut ix, None)
    }

    /// The index's figures.
    pub fn index_figures(&self) -> IndexFigures {
        let ix = lock(&self.inner.index);
        let (published, published_bytes) = ix.published();
        IndexFigures {
            indexed: ix.len() as u64,
            bytes: ix.bytes(),
            published: published as u64,
            published_bytes,
            forgotten: ix.forgotten_counts(),
        }
    }

    /// An error when `path` is a signed URL that expired: its manifest
    /// and pieces are not served any more (the origin judges the URL).
    pub(super) fn check_expired(&self, path: &str) -> Result<(), ManifestServiceError> {
        if lock(&self.inner.index).is_expired(unix_now(), path) {
            return Err(ManifestServiceError::Expired);
        }
        Ok(())
    }

    /// `path` was asked for on behalf of `client` (a manifest or a piece).
    pub(super) fn asked(&self, path: &str, client: Option<IpAddr>) {
        if let Some(ip) = client {
            lock(&self.inner.index).handle_asked(unix_now(), path, Some(network_key(ip)));
        }
    }

    /// The hub itself wants `path` distributed (admin API, live segment).
    pub(crate) fn pushed(&self, path: &str) {
        lock(&self.inner.index).handle_pushed(unix_now(), path);
    }

    /// Whether `m` is to be published now (see `ManifestIndex::offer`).
    pub(crate) fn offer(&self, m: &Manifest) -> bool {
        lock(&self.inner.index).offer(&m.path, &m.version)
    }

    /// What the trusted peers can hold, bytes.
    pub(crate) fn set_capacity(&self, bytes: u64) {
        lock(&self.inner.index).handle_capacity(bytes);
    }

    /// The planner work queued so far.
    pub(crate) fn take_planner_work(&self) -> Vec<PlannerWork> {
        lock(&self.inner.planner_work).drain(..).collect()
    }

    /// Resolves when planner work may be waiting.
    pub(crate) async fn planner_work_queued(&self) {
        self.inner.work_queued.notified().await;
    }

    /// Expiries, ageing, and a rank when due; then the deletions. Blocking
    /// (a rank sorts the whole index).
    pub(crate) fn sweep_blocking(&self) -> Result<(), DbError> {
        let now = unix_now();
        let mut ix = lock(&self.inner.index);
        ix.handle_sweep(now);
        ix.rank(now);
        self.settle(&mut ix, None)
    }

    /// Writes the ask times that changed since the last call. Blocking.
    pub(crate) fn flush_asks_blocking(&self) -> Result<(), DbError> {
        let ix = &mut *lock(&self.inner.index);
        let records = ix.take_dirty();
        if records.is_empty() {
            return Ok(());
        }
        self.inner.db.write_index_records(&records)
    }

    /// Forgets manifest `id` (a live segment retired). Blocking.
    pub(crate) fn forget_blocking(&self, id: &ManifestId) -> Result<(), DbError> {
        let mut ix = lock(&self.inner.index);
        ix.forget_id(id, ForgetReason::Retired);
        self.settle(&mut ix, None)
    }

    /// The manifest of `path` at `version` if still kept, to publish it.
    pub(crate) async fn load_kept(&self, path: &str, version: &str) -> Option<Arc<Manifest>> {
        if let Some((_, m)) = lock(&self.inner.unvalidated).get(path) {
            if m.version == version {
                return Some(Arc::clone(m));
            }
        }
        let db = self.inner.db.clone();
        let (p, v) = (path.to_string(), version.to_string());
        let found = tokio::task::spawn_blocking(move || db.cached_manifest(&p, &v));
        found.await.ok()?.ok()?.map(Arc::new)
    }

    /// Indexes `m`, made for `asker`, and keeps it: in the database when
    /// `persisted`, else among the unvalidated manifests in memory. Then
    /// its piece locations. False when the index does not keep it (its
    /// signed URL expired, or it is the least wanted). Blocking.
    pub(super) fn keep_blocking(
        &self,
        m: &Arc<Manifest>,
        persisted: bool,
        asker: Option<IpAddr>,
    ) -> Result<bool, DbError> {
        let now = unix_now();
        let bytes = m.encode().len() as u64;
        let mut ix = lock(&self.inner.index);
        let kept = ix.handle_stored(
            now,
            Stored {
                path: &m.path,
                version: &m.version,
                id: m.id(),
                length: m.length,
                bytes,
                persisted,
                asker: asker.map(network_key),
            },
        );
        let record = ix.record(&m.path).filter(|_| kept && persisted);
        self.settle(&mut ix, record.as_ref().map(|r| (m.as_ref(), r)))?;
        if kept && !persisted {
            let full = {
                let mut unvalidated = lock(&self.inner.unvalidated);
                unvalidated.insert(m.path.clone(), (Instant::now(), Arc::clone(m)));
                (unvalidated.len() > MAX_UNVALIDATED).then(|| oldest(&unvalidated))
            };
            for path in full.unwrap_or_default() {
                ix.forget_path(&path, ForgetReason::Bound);
            }
            self.settle(&mut ix, None)?;
        }
        let kept = ix.contains(&m.path, &m.version);
        if kept {
            self.locate_pieces(m);
        }
        Ok(kept)
    }

    /// Indexes the pieces of `m`, if the index keeps it.
    pub(super) fn index(&self, m: &Manifest) {
        let ix = lock(&self.inner.index);
        if ix.contains(&m.path, &m.version) {
            self.locate_pieces(m);
        }
    }

    /// Deletes what the index forgot (from the database, with `stored`
    /// written in the same batches, and from every map) and queues the
    /// planner work. Called with the index locked.
    fn settle(
        &self,
        ix: &mut ManifestIndex,
        stored: Option<(&Manifest, &super::index::IndexRecord)>,
    ) -> Result<(), DbError> {
        let forgotten: Vec<Forgotten> = std::iter::from_fn(|| ix.poll_forgotten()).collect();
        let db = &self.inner.db;
        let mut gone = Vec::with_capacity(forgotten.len());
        for f in forgotten {
            let m = if f.persisted {
                db.cached_manifest(&f.path, &f.version).ok().flatten()
            } else {
                let mut unvalidated = lock(&self.inner.unvalidated);
                match unvalidated.get(&f.path) {
                    Some((_, m)) if m.version == f.version => {
                        unvalidated.remove(&f.path).map(|(_, m)| (*m).clone())
                    }
                    _ => None,
                }
            };
            gone.push((f, m));
        }
        let deletes: Vec<(String, String)> = gone
            .iter()
            .filter(|(f, _)| f.persisted)
            .map(|(f, _)| (f.path.clone(), f.version.clone()))
            .collect();
        let written = if stored.is_some() || !deletes.is_empty() {
            db.store_indexed(stored, &deletes)
        } else {
            Ok(())
        };
        let mut work: Vec<PlannerWork> = Vec::new();
        for (f, m) in gone {
            let withdrawn = self.unlocate(&f, m.as_ref());
            if f.published || !withdrawn.is_empty() {
                work.push(PlannerWork::Unpublish {
                    id: f.id,
                    withdrawn,
                });
            }
        }
        work.extend(std::iter::from_fn(|| ix.poll_change()).map(|c| match c {
            super::index::Change::Publish { path, version } => {
                PlannerWork::Publish { path, version }
            }
            super::index::Change::Unpublish { id } => PlannerWork::Unpublish {
                id,
                withdrawn: Vec::new(),
            },
        }));
        if !work.is_empty() {
            lock(&self.inner.planner_work).extend(work);
            self.inner.work_queued.notify_one();
        }
        written
    }

    /// Drops a forgotten manifest from the maps. Its piece locations move
    /// to an alias with the same bytes, else go (with the cached bytes);
    /// for an expired signed URL, those are the pieces to withdraw.
    fn unlocate(&self, f: &Forgotten, m: Option<&Manifest>) -> Vec<PieceHash> {
        {
            let mut current = lock(&self.inner.current);
            if current.get(&f.path).is_some_and(|v| *v == f.version) {
                current.remove(&f.path);
            }
        }
        {
            let mut siblings = lock(&self.inner.siblings);
            let key = (strip_query(&f.path).to_string(), f.version.clone());
            if siblings.get(&key).is_some_and(|p| *p == f.path) {
                match &f.alias {
                    Some(alias) => siblings.insert(key, alias.clone()),
                    None => siblings.remove(&key),
                };
            }
        }
        let Some(m) = m else { return Vec::new() };
        let mut withdrawn = Vec::new();
        let mut pieces = lock(&self.inner.pieces);
        for hash in &m.pieces {
            let Some(loc) = pieces.get_mut(hash) else {
                continue;
            };
            if loc.path != f.path {
                continue;
            }
            match &f.alias {
                Some(alias) => loc.path = alias.clone(),
                None => {
                    pieces.remove(hash);
                    self.inner.cache.remove(hash);
                    if f.reason == ForgetReason::Expired {
                        withdrawn.push(*hash);
                    }
                }
            }
        }
        withdrawn
    }

    fn locate_pieces(&self, m: &Manifest) {
        {
            let mut current = lock(&self.inner.current);
            // Bounded: forgetting only costs a HEAD and a database read.
            if current.len() >= 65_536 {
                current.clear();
            }
            current.insert(m.path.clone(), m.version.clone());
        }
        if m.version.starts_with('"') {
            let mut siblings = lock(&self.inner.siblings);
            if siblings.len() >= 65_536 {
                siblings.clear();
            }
            siblings.insert(
                (strip_query(&m.path).to_string(), m.version.clone()),
                m.path.clone(),
            );
        }
        let mut pieces = lock(&self.inner.pieces);
        for (i, hash) in m.pieces.iter().enumerate() {
            if let Some((offset, length)) = m.piece_range(i) {
                let loc = PieceLocation {
                    path: m.path.clone(),
                    version: m.version.clone(),
                    offset,
                    length,
                };
                pieces.insert(*hash, loc);
            }
        }
    }
}

/// The oldest eighth of the unvalidated manifests, by when they were made.
fn oldest(map: &std::collections::HashMap<String, (Instant, Arc<Manifest>)>) -> Vec<String> {
    let mut by_age: Vec<(Instant, &String)> = map.iter().map(|(p, (t, _))| (*t, p)).collect();
    by_age.sort();
    by_age
        .into_iter()
        .take(MAX_UNVALIDATED / 8)
        .map(|(_, p)| p.clone())
        .collect()
}
