//! Manifests of distributable resources, computed from the upstream's bytes.
//!
//! `GET /.tuber/manifest?path=…` asks the upstream for the resource's current
//! version (a HEAD: strong ETag, else Last-Modified) and answers from the
//! sled cache when that version was hashed before; otherwise it streams the
//! body once, hashing piece by piece (memory: one piece), and caches the
//! result. Concurrent requests for the same path share one computation.
//! Resources without a validator are hashed on every miss and cached in
//! memory for [`UNVALIDATED_TTL`], versioned by the SHA-256 of their bytes.
//!
//! Every manifest computed or loaded is indexed piece hash → (path, offset,
//! length), which is what the piece endpoint serves from.
//!
//! **The origin sends each byte once.** Hashing runs on a blocking thread
//! ([`hasher`]) and keeps every piece it hashed in a bounded piece cache
//! ([`cache`]), which the piece endpoint serves from before it asks the
//! origin; a distributable response the proxy streams to a viewer is hashed
//! as it passes ([`tee`]), so the hub does not download it again to make its
//! manifest. At most [`MAX_COMPUTING`] bodies are hashed at once, and a body
//! that stalls for [`BODY_IDLE`] is given up.
//!
//! Which manifests are kept at all, for how long, and which of them the
//! planner assigns to trusted peers is the index's business ([`index`],
//! [`indexing`]): bounded in count and bytes, forgetting what nobody asked
//! for, ranking by how many client networks ask, and ending a signed URL's
//! distribution when it expires.
//!
//! - `cache.rs` — the piece cache (LRU, bounded in bytes).
//! - `compute.rs` — hashing a body from the upstream into a manifest.
//! - `index/` — the manifest index (sans-IO): bounds, demand, expiry,
//!   publication.
//! - `indexing.rs` — the service's side of the index: deletions, asks,
//!   planner work.
//! - `hasher.rs` — piece hashing on a blocking thread, filling the cache.
//! - `tee.rs` — hashing what the proxy streams.
//! - `pieces.rs` — pieces for the piece endpoint.
//! - `upstream.rs` — the requests to the upstream, where the rules apply.

mod budget;
mod cache;
mod compute;
mod hasher;
pub mod index;
mod indexing;
mod pieces;
mod tee;
mod upstream;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use http::{StatusCode, Uri};
use http_body_util::Empty;
use tokio::sync::Semaphore;
use tuber_proto::limits::MAX_PATH_LEN;
use tuber_proto::{Manifest, PieceHash};

pub use budget::OriginBudget;
pub use cache::PieceCache;
pub use index::IndexConfig;
pub use indexing::{IndexFigures, PlannerWork};
pub use tee::{Tee, TeeBody};

use crate::db::HubDb;
use crate::proxy::distributable::strip_query;
use crate::upstream_client::{self, UpstreamClient, UpstreamTls, DEFAULT_CONNECT_TIMEOUT};

/// Bodies hashed at once, at most (the hub's own reads and teed responses
/// together): a burst of requests for new resources cannot make the hub
/// read the whole site at once.
pub const MAX_COMPUTING: usize = 4;
/// A body that sends nothing for this long is given up.
pub const BODY_IDLE: Duration = Duration::from_secs(30);
/// How long a viewer's manifest request waits for a response being teed
/// before the hub reads the resource itself.
pub const TEE_GRACE: Duration = Duration::from_secs(2);
/// The piece cache's size unless configured.
pub const DEFAULT_PIECE_CACHE: u64 = 256 * 1024 * 1024;

/// What a read of a body of unknown length is charged to the client's
/// network before it starts (see `budget.rs`).
pub const UNKNOWN_LENGTH_CHARGE: u64 = 64 * 1024 * 1024;

/// How long a manifest of a resource without ETag or Last-Modified is reused.
pub const UNVALIDATED_TTL: Duration = Duration::from_secs(60);
/// How long the upstream has to answer before a manifest request fails.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a manifest could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ManifestServiceError {
    /// The path is not a valid resource path.
    #[error("invalid path: {0}")]
    BadPath(&'static str),
    /// The upstream answered with this status.
    #[error("upstream answered {0}")]
    Upstream(StatusCode),
    /// The upstream could not be reached or broke off.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// Longer than a manifest can describe.
    #[error("resource too large for one manifest ({0} bytes)")]
    TooLarge(u64),
    /// The hub's database failed.
    #[error("hub database: {0}")]
    Db(String),
    /// No manifest the hub made lists this piece.
    #[error("unknown piece")]
    UnknownPiece,
    /// The upstream's bytes no longer hash to the piece: the resource changed.
    #[error("the resource changed upstream; fetch its manifest again")]
    Changed,
    /// The response being hashed as it passed ended early (its viewer left).
    #[error("the response being hashed ended early")]
    Abandoned,
    /// The upstream marks the resource as one person's (`Set-Cookie`,
    /// `Cache-Control: private` or `no-store`): never distributed.
    #[error(
        "the upstream marks this resource private (Set-Cookie, Cache-Control: private or no-store)"
    )]
    Private,
    /// The `[distribute]` rules do not make this response distributable.
    #[error("not distributable")]
    NotDistributable,
    /// The resource's signed URL expired: the hub no longer distributes it
    /// (the origin judges the URL itself).
    #[error("the signed URL expired; the hub no longer distributes it")]
    Expired,
    /// The client's network made the hub read more from the upstream than
    /// its budget allows (see `budget.rs`): retry after this long.
    #[error("this network made the hub read too much from the site lately; retry in {} s", .0.as_secs())]
    OverBudget(Duration),
}

/// Where a piece lives in the upstream's resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceLocation {
    /// Resource path.
    pub path: String,
    /// Its version when the piece was hashed.
    pub version: String,
    /// Byte offset in the resource.
    pub offset: u64,
    /// Piece length.
    pub length: u32,
}

/// A computation many requests may wait for.
type Computation = Shared<BoxFuture<'static, Result<Arc<Manifest>, ManifestServiceError>>>;

/// The manifest service. Cheap to clone.
#[derive(Clone)]
pub struct Manifests {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manifests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifests")
            .field("upstream", &self.inner.upstream)
            .finish_non_exhaustive()
    }
}

struct Inner {
    upstream: Uri,
    piece_size: u32,
    db: HubDb,
    client: UpstreamClient<Empty<Bytes>>,
    /// Computations in flight, by (path, version).
    inflight: Mutex<HashMap<(String, String), Computation>>,
    /// Responses being hashed as the proxy streams them, by (path,
    /// version). Only the background publisher waits for these: a viewer's
    /// manifest request must not wait for another viewer's playback.
    teeing: Mutex<HashMap<(String, String), Computation>>,
    /// The version of each path's manifest made or loaded (bounded).
    current: Mutex<HashMap<String, String>>,
    /// Bodies being hashed.
    computing: Arc<Semaphore>,
    /// Piece bytes hashed, for the piece endpoint.
    cache: Arc<PieceCache>,
    /// What may have a manifest at all (None: anything, for tests of the
    /// service alone).
    rules: Option<crate::proxy::Rules>,
    /// Manifests of resources without validators: path → (made at, manifest).
    /// Indexed too; bounded by `indexing::MAX_UNVALIDATED`.
    unvalidated: Mutex<HashMap<String, (Instant, Arc<Manifest>)>>,
    /// What is kept, asked for and published (see `index/`). Locked before
    /// any other map here.
    index: Mutex<index::ManifestIndex>,
    /// Publication changes for the planner, in order.
    planner_work: Mutex<VecDeque<PlannerWork>>,
    work_queued: tokio::sync::Notify,
    pieces: Mutex<HashMap<PieceHash, PieceLocation>>,
    /// What each client network may make the hub read from the upstream.
    budget: Mutex<OriginBudget>,
    /// Manifests by strong ETag: (path without query, ETag) → a path whose
    /// manifest has those bytes, so another query string for the same
    /// resource costs a HEAD, not a body read (bounded).
    siblings: Mutex<HashMap<(String, String), String>>,
    /// Manifests hashed from upstream bytes (cache misses), for `/metrics`.
    computed: AtomicU64,
    /// Manifests made from another query's manifest of the same bytes.
    aliased: AtomicU64,
    /// Of those, hashed from a response the proxy streamed.
    teed: AtomicU64,
}

impl Manifests {
    /// A service for the upstream at `upstream` (an `http://` or `https://`
    /// origin), trusting `tls` for the latter.
    pub fn new(upstream: Uri, piece_size: u32, db: HubDb, tls: &UpstreamTls) -> Self {
        Self::with_cache(upstream, piece_size, db, tls, DEFAULT_PIECE_CACHE, None)
    }

    /// As [`new`](Self::new), with a piece cache of `cache_bytes`, making
    /// manifests only of what `rules` make distributable.
    pub fn with_cache(
        upstream: Uri,
        piece_size: u32,
        db: HubDb,
        tls: &UpstreamTls,
        cache_bytes: u64,
        rules: Option<crate::proxy::Rules>,
    ) -> Self {
        let client = upstream_client::client(tls, DEFAULT_CONNECT_TIMEOUT);
        Self {
            inner: Arc::new(Inner {
                upstream,
                piece_size,
                db,
                client,
                inflight: Mutex::new(HashMap::new()),
                teeing: Mutex::new(HashMap::new()),
                current: Mutex::new(HashMap::new()),
                computing: Arc::new(Semaphore::new(MAX_COMPUTING)),
                cache: Arc::new(PieceCache::new(cache_bytes)),
                rules,
                unvalidated: Mutex::new(HashMap::new()),
                index: Mutex::new(index::ManifestIndex::new(IndexConfig::default())),
                planner_work: Mutex::new(VecDeque::new()),
                work_queued: tokio::sync::Notify::new(),
                pieces: Mutex::new(HashMap::new()),
                budget: Mutex::new(OriginBudget::new(0)),
                siblings: Mutex::new(HashMap::new()),
                computed: AtomicU64::new(0),
                aliased: AtomicU64::new(0),
                teed: AtomicU64::new(0),
            }),
        }
    }

    /// How many manifests were hashed from upstream bytes since start.
    pub fn computed(&self) -> u64 {
        self.inner.computed.load(Ordering::Relaxed)
    }

    /// How many manifests were made from another query string's manifest of
    /// the same bytes (same path, same strong ETag) instead of a read.
    pub fn aliased(&self) -> u64 {
        self.inner.aliased.load(Ordering::Relaxed)
    }

    /// Limits what each client network may make the hub read from the
    /// upstream to `per_hour` bytes per hour (0: no limit; see `budget.rs`).
    pub fn set_origin_budget(&self, per_hour: u64) {
        *lock(&self.inner.budget) = OriginBudget::new(per_hour);
    }

    /// Charges a read of `bytes` made for `client` (none: the hub's own).
    pub(crate) fn charge(
        &self,
        client: Option<IpAddr>,
        bytes: u64,
    ) -> Result<(), ManifestServiceError> {
        let Some(ip) = client else { return Ok(()) };
        lock(&self.inner.budget)
            .try_charge(Instant::now(), ip, bytes)
            .map_err(ManifestServiceError::OverBudget)
    }

    /// Charges bytes read beyond what was charged before the read.
    pub(crate) fn charge_more(&self, client: Option<IpAddr>, bytes: u64) {
        if let Some(ip) = client {
            lock(&self.inner.budget).charge_more(Instant::now(), ip, bytes);
        }
    }

    /// How many of those were hashed from a response the proxy streamed.
    pub fn teed(&self) -> u64 {
        self.inner.teed.load(Ordering::Relaxed)
    }

    /// The piece cache (for `/metrics`).
    pub fn cache(&self) -> &PieceCache {
        &self.inner.cache
    }

    /// Where piece `hash` is, if a manifest listing it was made or served.
    pub fn locate(&self, hash: &PieceHash) -> Option<PieceLocation> {
        lock(&self.inner.pieces).get(hash).cloned()
    }

    /// The current manifest of `path`.
    pub async fn get(&self, path: &str) -> Result<Arc<Manifest>, ManifestServiceError> {
        self.get_inner(path, false, None).await
    }

    /// As [`get`](Self::get), on behalf of `client`: every upstream request
    /// made for it names the client in `X-Forwarded-For`, so the upstream's
    /// IP rules apply to what the hub fetches for it (the version check is
    /// made for every client; a computation shared with others is made as
    /// the first one that asked).
    pub async fn get_for(
        &self,
        path: &str,
        client: Option<IpAddr>,
    ) -> Result<Arc<Manifest>, ManifestServiceError> {
        self.get_inner(path, false, client).await
    }

    /// As [`get`](Self::get), but also waits for a response the proxy is
    /// hashing as it streams it (for the background publisher: a tee ends
    /// when its viewer has read the whole body, and a viewer's manifest
    /// request must not wait for another viewer's playback).
    pub async fn get_or_wait(&self, path: &str) -> Result<Arc<Manifest>, ManifestServiceError> {
        self.get_inner(path, true, None).await
    }

    async fn get_inner(
        &self,
        path: &str,
        wait_for_tee: bool,
        client: Option<IpAddr>,
    ) -> Result<Arc<Manifest>, ManifestServiceError> {
        check_path(path)?;
        self.check_expired(path)?;
        let m = self.resolve(path, wait_for_tee, client).await?;
        self.asked(&m.path, client);
        Ok(m)
    }

    async fn resolve(
        &self,
        path: &str,
        wait_for_tee: bool,
        client: Option<IpAddr>,
    ) -> Result<Arc<Manifest>, ManifestServiceError> {
        let (version, length) = self.upstream_version(path, client).await?;
        let Some(version) = version else {
            return self.unvalidated(path, client, length).await;
        };
        let db = self.inner.db.clone();
        let (p, v) = (path.to_string(), version.clone());
        let cached = tokio::task::spawn_blocking(move || db.cached_manifest(&p, &v))
            .await
            .map_err(|e| ManifestServiceError::Db(e.to_string()))?
            .map_err(|e| ManifestServiceError::Db(e.to_string()))?;
        if let Some(m) = cached {
            let m = Arc::new(m);
            self.index(&m);
            return Ok(m);
        }
        if let Some(m) = self.alias(path, &version, length, client).await? {
            return Ok(m);
        }
        let key = (path.to_string(), version.clone());
        let teeing = lock(&self.inner.teeing).get(&key).cloned();
        if let Some(tee) = teeing {
            // The publisher waits for the whole stream; a viewer only for a
            // tee about to end (its bytes all sent), not for another
            // viewer's playback.
            let grace = if wait_for_tee {
                BODY_IDLE * 4
            } else {
                TEE_GRACE
            };
            if let Ok(Ok(m)) = tokio::time::timeout(grace, tee).await {
                return Ok(m);
            }
        }
        // Joining a computation in flight costs the upstream nothing more;
        // starting one is charged to the client's network.
        if !lock(&self.inner.inflight).contains_key(&key) {
            self.charge(client, length.unwrap_or(UNKNOWN_LENGTH_CHARGE))?;
        }
        self.computed_once(path, version, client).await
    }

    /// The manifest of `path` made from a manifest of the same bytes under
    /// another query string: same path, same strong ETag, same length.
    /// Only a strong ETag says "these bytes" firmly enough (a date does not).
    async fn alias(
        &self,
        path: &str,
        version: &str,
        length: Option<u64>,
        client: Option<IpAddr>,
    ) -> Result<Option<Arc<Manifest>>, ManifestServiceError> {
        if !version.starts_with('"') {
            return Ok(None);
        }
        let key = (strip_query(path).to_string(), version.to_string());
        let Some(source) = lock(&self.inner.siblings).get(&key).cloned() else {
            return Ok(None);
        };
        if source == path {
            return Ok(None);
        }
        let db = self.inner.db.clone();
        let v = version.to_string();
        let found = tokio::task::spawn_blocking(move || db.cached_manifest(&source, &v))
            .await
            .map_err(|e| ManifestServiceError::Db(e.to_string()))?
            .map_err(|e| ManifestServiceError::Db(e.to_string()))?;
        let Some(found) = found else { return Ok(None) };
        if length.is_some_and(|n| n != found.length) {
            return Ok(None);
        }
        let m = Arc::new(Manifest {
            path: path.to_string(),
            ..found
        });
        self.store(&m, client).await?;
        self.inner.aliased.fetch_add(1, Ordering::Relaxed);
        Ok(Some(m))
    }

    /// The manifest of `path` at `version`: from the database, else from
    /// one computation shared by every request for it, which runs to its
    /// end even if they all leave (its bytes are then read anyway).
    async fn computed_once(
        &self,
        path: &str,
        version: String,
        client: Option<IpAddr>,
    ) -> Result<Arc<Manifest>, ManifestServiceError> {
        let key = (path.to_string(), version);
        let computation = {
            let mut inflight = lock(&self.inner.inflight);
            if let Some(c) = inflight.get(&key) {
                c.clone()
            } else {
                let this = self.clone();
                let (p, v) = key.clone();
                let c: Computation = async move {
                    let result = this.compute_and_store(&p, client).await;
                    lock(&this.inner.inflight).remove(&(p, v));
                    result
                }
                .boxed()
                .shared();
                inflight.insert(key.clone(), c.clone());
                // Driven to its end whoever waits.
                tokio::spawn(c.clone());
                c
            }
        };
        computation.await
    }

    /// Hashes `path` from the upstream, stores and indexes the manifest.
    async fn compute_and_store(
        &self,
        path: &str,
        client: Option<IpAddr>,
    ) -> Result<Arc<Manifest>, ManifestServiceError> {
        let m = self.compute(path, client).await?;
        self.store(&m, client).await?;
        Ok(m)
    }

    /// Keeps a manifest made for `asker`: indexed, in the database (by path
    /// and version) and the piece index. Kept or not (the index may find it
    /// the least wanted, or expired), the caller still gets it.
    async fn store(
        &self,
        m: &Arc<Manifest>,
        asker: Option<IpAddr>,
    ) -> Result<bool, ManifestServiceError> {
        self.keep(m, true, asker).await
    }

    async fn keep(
        &self,
        m: &Arc<Manifest>,
        persisted: bool,
        asker: Option<IpAddr>,
    ) -> Result<bool, ManifestServiceError> {
        let this = self.clone();
        let stored = Arc::clone(m);
        tokio::task::spawn_blocking(move || this.keep_blocking(&stored, persisted, asker))
            .await
            .map_err(|e| ManifestServiceError::Db(e.to_string()))?
            .map_err(|e| ManifestServiceError::Db(e.to_string()))
    }
}

/// Whether `path` can name a resource at all (a malformed one is the
/// caller's error, not a question of distribution).
pub fn check_path(path: &str) -> Result<(), ManifestServiceError> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(ManifestServiceError::BadPath("must start with a single /"));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(ManifestServiceError::BadPath("too long"));
    }
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ManifestServiceError::BadPath(
            "control characters or spaces",
        ));
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these maps cannot leave it inconsistent
    // (each update is a single insert or remove), so keep serving.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert!(check_path("/a/b.mp4?x=1").is_ok());
        for bad in ["a", "//evil.example/x", "/a b", "/a\n", ""] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }
}
