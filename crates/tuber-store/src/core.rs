//! The blocking store: opening, reads, listings, and the transaction
//! plumbing shared by the mutating modules (`write`, `repair`, `manifests`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sled::transaction::{ConflictableTransactionResult, TransactionalTree};
use sled::{Transactional, Tree};
use tracing::warn;
use tuber_proto::PieceHash;

use crate::config::Config;
use crate::error::{Result, StoreError};
use crate::keys::{
    check_resource, check_swarm, hash_from_key, lru_key, owner_key, resource_prefix, swarm_prefix,
    trailing_hash,
};
use crate::layout;
use crate::meta::PieceMeta;
use crate::totals::{Contents, StatsRecord, Totals, TOTALS_KEY};

/// One sled database and its trees.
pub(crate) struct Trees {
    pub(crate) db: sled::Db,
    pub(crate) pieces: Tree,
    pub(crate) meta: Tree,
    pub(crate) lru: Tree,
    pub(crate) owners: Tree,
    pub(crate) manifests: Tree,
    pub(crate) stats: Tree,
}

impl Trees {
    pub(crate) fn open(dir: &Path, config: &Config) -> sled::Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(config.cache_bytes)
            .flush_every_ms(config.flush_every_ms)
            .open()?;
        Ok(Self {
            pieces: db.open_tree("pieces")?,
            meta: db.open_tree("meta")?,
            lru: db.open_tree("lru")?,
            owners: db.open_tree("owners")?,
            manifests: db.open_tree("manifests")?,
            stats: db.open_tree("stats")?,
            db,
        })
    }
}

/// The piece store, driven from one thread. Every method blocks on sled; from
/// async code use [`crate::Store`], which owns a `StoreCore` on a thread of
/// its own.
///
/// Methods that read sled take `&mut self` too: any read may be the one that
/// meets a sled checksum failure, and the store then repairs itself at once
/// (see [`StoreCore::scrub`]). The store also assumes it is the only writer,
/// which lets it plan evictions outside a transaction and keep its totals in
/// memory between them.
pub struct StoreCore {
    pub(crate) root: PathBuf,
    pub(crate) config: Config,
    /// Which `db.<n>` directory is live.
    pub(crate) generation: u64,
    pub(crate) t: Trees,
    /// Mirror of the persisted totals record; replaced only after the
    /// transaction that wrote it has committed.
    pub(crate) rec: StatsRecord,
    pub(crate) budget: u64,
    /// The database could not be opened (damaged) and was started empty.
    reset_at_open: bool,
}

impl std::fmt::Debug for StoreCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCore")
            .field("root", &self.root)
            .field("generation", &self.generation)
            .field("totals", &self.totals())
            .finish_non_exhaustive()
    }
}

/// The trees of one transaction.
pub(crate) struct Tx<'a> {
    pub(crate) pieces: &'a TransactionalTree,
    pub(crate) meta: &'a TransactionalTree,
    pub(crate) lru: &'a TransactionalTree,
    pub(crate) owners: &'a TransactionalTree,
    pub(crate) stats: &'a TransactionalTree,
}

pub(crate) type TxResult<T = ()> = ConflictableTransactionResult<T, ()>;

impl Tx<'_> {
    /// Removes every trace of a piece whose metadata is known.
    pub(crate) fn remove_piece(&self, hash: &PieceHash, meta: &PieceMeta) -> TxResult {
        self.pieces.remove(&hash.as_bytes()[..])?;
        self.meta.remove(&hash.as_bytes()[..])?;
        self.lru
            .remove(&lru_key(meta.pinned, meta.last_access, hash)[..])?;
        for o in &meta.owners {
            self.owners.remove(owner_key(&o.swarm, &o.resource, hash))?;
        }
        Ok(())
    }

    /// Writes a piece's metadata and its index entries.
    pub(crate) fn insert_meta(&self, hash: &PieceHash, meta: &PieceMeta) -> TxResult {
        self.meta.insert(&hash.as_bytes()[..], meta.encode())?;
        self.lru
            .insert(&lru_key(meta.pinned, meta.last_access, hash)[..], &[][..])?;
        for o in &meta.owners {
            self.owners
                .insert(owner_key(&o.swarm, &o.resource, hash), &[][..])?;
        }
        Ok(())
    }

    /// Replaces a stored piece's metadata `old` by `new`: its LRU entry
    /// moves with it, and owner keys are added for owners `new` gained.
    pub(crate) fn replace_meta(
        &self,
        hash: &PieceHash,
        old: &PieceMeta,
        new: &PieceMeta,
    ) -> TxResult {
        self.lru
            .remove(&lru_key(old.pinned, old.last_access, hash)[..])?;
        self.meta.insert(&hash.as_bytes()[..], new.encode())?;
        self.lru
            .insert(&lru_key(new.pinned, new.last_access, hash)[..], &[][..])?;
        for o in new.owners.iter().filter(|o| !old.owners.contains(o)) {
            self.owners
                .insert(owner_key(&o.swarm, &o.resource, hash), &[][..])?;
        }
        Ok(())
    }

    pub(crate) fn write_totals(&self, rec: &StatsRecord) -> TxResult {
        self.stats.insert(TOTALS_KEY, &rec.encode()[..])?;
        Ok(())
    }
}

impl StoreCore {
    /// Opens (or creates) the store in directory `path`.
    ///
    /// Deletes what an interrupted repair left behind, and evicts down to
    /// `config.budget_bytes` if the store holds more.
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        let open_err = |source: sled::Error| StoreError::Open {
            path: root.clone(),
            source,
        };
        std::fs::create_dir_all(&root).map_err(|e| open_err(e.into()))?;
        let current = layout::read_current(&root).map_err(|e| open_err(e.into()))?;
        let mut generation = current.unwrap_or(0);
        layout::remove_stale(&root, generation);
        let mut reset_at_open = false;
        let t = match Trees::open(&layout::db_dir(&root, generation), &config) {
            Ok(t) => t,
            // sled 0.34 cannot open past a damaged record that its recovery
            // reads. The store is a cache of verified pieces: start empty
            // in a new generation rather than refuse to start; the damaged
            // one is deleted once CURRENT names the new one.
            Err(sled::Error::Corruption { .. }) => {
                warn!(
                    path = %root.display(),
                    "piece store damaged beyond what sled can open; starting it empty"
                );
                generation += 1;
                reset_at_open = true;
                let t =
                    Trees::open(&layout::db_dir(&root, generation), &config).map_err(open_err)?;
                layout::write_current(&root, generation).map_err(|e| open_err(e.into()))?;
                layout::remove_stale(&root, generation);
                t
            }
            Err(e) => return Err(open_err(e)),
        };
        if current.is_none() {
            layout::write_current(&root, generation).map_err(|e| open_err(e.into()))?;
        }
        let mut core = Self {
            root,
            budget: config.budget_bytes,
            config,
            generation,
            t,
            rec: StatsRecord::default(),
            reset_at_open,
        };
        core.rec = core.load_totals()?;
        core.guarded(|s| s.shrink_to_budget())?;
        Ok(core)
    }

    fn load_totals(&self) -> Result<StatsRecord> {
        let raw = self.t.stats.get(TOTALS_KEY)?;
        if let Some(rec) = raw.as_deref().and_then(|r| StatsRecord::decode(r).ok()) {
            return Ok(rec);
        }
        if raw.is_some() {
            warn!(path = %self.root.display(), "totals record unreadable; recounting");
        }
        let rec = StatsRecord {
            contents: self.recount()?,
            clock: self.max_access()?,
            ..StatsRecord::default()
        };
        self.t.stats.insert(TOTALS_KEY, &rec.encode()[..])?;
        Ok(rec)
    }

    /// The newest access stamp in the `lru` index, to restart a lost clock.
    fn max_access(&self) -> Result<u64> {
        let mut max = 0;
        for item in self.t.lru.iter().keys() {
            let key = item?;
            if let Some(stamp) = key.get(1..9).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                max = max.max(u64::from_be_bytes(stamp));
            }
        }
        Ok(max)
    }

    /// Runs one sled transaction over `pieces`, `meta`, `lru`, `owners` and
    /// `stats`.
    pub(crate) fn transact<A>(&self, f: impl Fn(&Tx<'_>) -> TxResult<A>) -> Result<A> {
        let t = &self.t;
        let trees = (&t.pieces, &t.meta, &t.lru, &t.owners, &t.stats);
        let result = trees.transaction(|(pieces, meta, lru, owners, stats)| {
            f(&Tx {
                pieces,
                meta,
                lru,
                owners,
                stats,
            })
        });
        Ok(result?)
    }

    /// Reads a piece, verifying it. Counts the read (access clock, hits, bytes
    /// served). `Ok(None)` if the piece is not stored; `Err(Corrupt)` if it
    /// was and failed verification, in which case it is gone now.
    pub fn get(&mut self, hash: &PieceHash) -> Result<Option<Vec<u8>>> {
        match self.get_once(hash) {
            Err(e) if is_sled_corruption(&e) => {
                let lost = self.rebuild(&e)?;
                if lost.contains(hash) {
                    return Err(StoreError::Corrupt { hash: *hash });
                }
                self.get_once(hash)
            }
            other => other,
        }
    }

    fn get_once(&mut self, hash: &PieceHash) -> Result<Option<Vec<u8>>> {
        let Some(meta) = self.load_meta(hash)? else {
            return Ok(None);
        };
        let Some(bytes) = self.t.pieces.get(hash.as_bytes())? else {
            return Err(self.purge_corrupt(hash, Some(&meta), "bytes missing")?);
        };
        if bytes.len() as u64 != meta.size || !hash.verifies(&bytes) {
            return Err(self.purge_corrupt(hash, Some(&meta), "hash mismatch")?);
        }
        let mut rec = self.rec;
        rec.clock += 1;
        let read = PieceMeta {
            last_access: rec.clock,
            hits: meta.hits.saturating_add(1),
            bytes_served: meta.bytes_served.saturating_add(meta.size),
            ..meta.clone()
        };
        self.transact(|tx| {
            tx.replace_meta(hash, &meta, &read)?;
            tx.write_totals(&rec)
        })?;
        self.rec = rec;
        Ok(Some(bytes.to_vec()))
    }

    /// A piece's metadata; a record that does not decode deletes the piece
    /// and answers `Err(Corrupt)`.
    pub(crate) fn load_meta(&mut self, hash: &PieceHash) -> Result<Option<PieceMeta>> {
        let Some(raw) = self.t.meta.get(hash.as_bytes())? else {
            return Ok(None);
        };
        match PieceMeta::decode(&raw) {
            Ok(meta) => Ok(Some(meta)),
            Err(e) => Err(self.purge_corrupt(hash, None, e.0)?),
        }
    }

    /// Whether a piece is stored (its bytes are verified only when read).
    pub fn has(&mut self, hash: &PieceHash) -> Result<bool> {
        self.guarded(|s| Ok(s.t.meta.contains_key(hash.as_bytes())?))
    }

    /// A piece's metadata, without counting an access.
    pub fn meta(&mut self, hash: &PieceHash) -> Result<Option<PieceMeta>> {
        self.guarded(|s| s.load_meta(hash))
    }

    /// The pieces owned by any resource of `swarm`, in hash order.
    pub fn list_by_swarm(&mut self, swarm: &str) -> Result<Vec<PieceHash>> {
        check_swarm(swarm)?;
        let mut hashes = self.guarded(|s| s.scan_owner_prefix(&swarm_prefix(swarm)))?;
        hashes.sort_unstable();
        hashes.dedup();
        Ok(hashes)
    }

    /// The pieces owned by one resource, in hash order.
    pub fn list_by_resource(&mut self, swarm: &str, resource: &str) -> Result<Vec<PieceHash>> {
        check_swarm(swarm)?;
        check_resource(resource)?;
        self.guarded(|s| s.scan_owner_prefix(&resource_prefix(swarm, resource)))
    }

    fn scan_owner_prefix(&self, prefix: &[u8]) -> Result<Vec<PieceHash>> {
        let mut hashes = Vec::new();
        for key in self.t.owners.scan_prefix(prefix).keys() {
            hashes.extend(trailing_hash(&key?));
        }
        Ok(hashes)
    }

    /// Totals and counters. Cheap: kept in memory.
    pub fn totals(&self) -> Totals {
        self.rec.totals(self.budget)
    }

    /// Counts what the `meta` tree actually holds, for checking [`Totals`].
    /// Reads every metadata record; records that do not decode are skipped
    /// (`scrub` deletes them).
    pub fn recount(&self) -> Result<Contents> {
        self.recount_except(&HashSet::new())
    }

    pub(crate) fn recount_except(&self, skip: &HashSet<PieceHash>) -> Result<Contents> {
        let mut c = Contents::default();
        for item in self.t.meta.iter() {
            let (key, raw) = item?;
            match hash_from_key(&key) {
                Some(hash) if !skip.contains(&hash) => {}
                // Not a piece key (scrub removes it) or excluded.
                _ => continue,
            }
            if let Ok(meta) = PieceMeta::decode(&raw) {
                c.add(&meta);
            }
        }
        Ok(c)
    }

    /// Makes everything written so far durable.
    pub fn flush(&mut self) -> Result<()> {
        self.guarded(|s| {
            s.t.db.flush()?;
            Ok(())
        })
    }

    /// Bytes sled occupies on disk (log, blobs, snapshots): several times the
    /// piece bytes with sled 0.34.
    pub fn disk_usage(&self) -> Result<u64> {
        Ok(self.t.db.size_on_disk()?)
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The live sled database directory inside [`StoreCore::path`]; it changes
    /// when a repair rebuilds the database.
    pub fn db_path(&self) -> PathBuf {
        layout::db_dir(&self.root, self.generation)
    }

    /// Whether this open found the database too damaged for sled to open,
    /// and started the store empty instead.
    pub fn was_reset_at_open(&self) -> bool {
        self.reset_at_open
    }
}

/// Whether sled reported a checksum failure: the one sled error that the
/// store answers by rebuilding its database.
pub(crate) fn is_sled_corruption(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(sled::Error::Corruption { .. }))
}

#[cfg(feature = "test-hooks")]
impl StoreCore {
    /// Replaces a stored piece's bytes without verification or bookkeeping,
    /// to simulate bit rot. Test-only (`test-hooks` feature).
    pub fn overwrite_piece_bytes_for_test(&mut self, hash: &PieceHash, bytes: &[u8]) -> Result<()> {
        self.t.pieces.insert(hash.as_bytes(), bytes)?;
        Ok(())
    }

    /// Replaces a stored metadata record with raw bytes. Test-only.
    pub fn overwrite_meta_bytes_for_test(&mut self, hash: &PieceHash, bytes: &[u8]) -> Result<()> {
        self.t.meta.insert(hash.as_bytes(), bytes)?;
        Ok(())
    }

    /// Removes a piece's bytes but leaves its metadata. Test-only.
    pub fn remove_piece_bytes_for_test(&mut self, hash: &PieceHash) -> Result<()> {
        self.t.pieces.remove(hash.as_bytes())?;
        Ok(())
    }
}
