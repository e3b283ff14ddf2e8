//! The blocking store: opening, reads, listings, and the transaction
//! plumbing shared by the mutating modules (`write`, `repair`, `manifests`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sled::Tree;
use tracing::{info, warn};
use tuber_proto::PieceHash;

use crate::access::Touches;
use crate::config::Config;
use crate::error::{Result, StoreError};
use crate::files::{PieceFiles, Read};
use crate::keys::{
    check_resource, check_swarm, hash_from_key, lru_key, owner_key, resource_prefix, swarm_prefix,
    trailing_hash,
};
use crate::layout;
use crate::meta::PieceMeta;
use crate::reap::Doomed;
use crate::room::Overhead;
use crate::totals::{Contents, StatsRecord, Totals, CLEAN_KEY, TOTALS_KEY};

/// One sled database and its trees.
pub(crate) struct Trees {
    pub(crate) db: sled::Db,
    /// Piece bytes of the layout before piece files; only ever emptied (by
    /// `migrate`), never written.
    pub(crate) legacy: Tree,
    pub(crate) meta: Tree,
    pub(crate) lru: Tree,
    pub(crate) owners: Tree,
    /// The read log (`access`): records of reads not yet folded into `meta`.
    pub(crate) reads: Tree,
    pub(crate) manifests: Tree,
    pub(crate) stats: Tree,
}

/// How long an open waits for sled's file lock: a store closed a moment ago
/// in this process (a restart) holds it until sled's background threads
/// let go of the old database, which can take a while on a loaded machine.
const LOCK_WAIT: Duration = Duration::from_secs(5);
const LOCK_RETRY: Duration = Duration::from_millis(10);

fn is_lock_busy(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

impl Trees {
    pub(crate) fn open(dir: &Path, config: &Config) -> sled::Result<Self> {
        let sled_config = sled::Config::new()
            .path(dir)
            .cache_capacity(config.cache_bytes)
            .flush_every_ms(config.flush_every_ms);
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled_config.open() {
                Err(e) if is_lock_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(LOCK_RETRY);
                }
                other => break other?,
            }
        };
        Ok(Self {
            legacy: db.open_tree("pieces")?,
            meta: db.open_tree("meta")?,
            lru: db.open_tree("lru")?,
            owners: db.open_tree("owners")?,
            reads: db.open_tree("reads")?,
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
    /// The piece bytes.
    pub(crate) files: PieceFiles,
    /// Files of removed pieces, deleted once their removal is durable.
    pub(crate) doomed: Doomed,
    /// Reads not yet folded into the metadata.
    pub(crate) touches: Touches,
    /// Mirror of the persisted totals record; replaced only after the
    /// transaction that wrote it has committed.
    pub(crate) rec: StatsRecord,
    pub(crate) budget: u64,
    /// The store's disk use beside the piece files, last measured.
    pub(crate) overhead: Overhead,
    /// The database could not be opened (damaged) and was started empty.
    reset_at_open: bool,
    /// Dropped without the clean close (a test's simulated crash).
    pub(crate) abandoned: bool,
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

/// The index trees, for one group of writes ([`StoreCore::apply`]).
pub(crate) struct Writes<'a> {
    pub(crate) meta: &'a Tree,
    pub(crate) lru: &'a Tree,
    pub(crate) owners: &'a Tree,
    pub(crate) stats: &'a Tree,
}

pub(crate) type WriteResult<T = ()> = sled::Result<T>;

impl Writes<'_> {
    /// Removes every record of a piece whose metadata is known (its file is
    /// the caller's to delete, after the commit).
    pub(crate) fn remove_piece(&self, hash: &PieceHash, meta: &PieceMeta) -> WriteResult {
        self.meta.remove(&hash.as_bytes()[..])?;
        self.lru
            .remove(&lru_key(meta.pinned, meta.last_access, hash)[..])?;
        for o in &meta.owners {
            self.owners.remove(owner_key(&o.swarm, &o.resource, hash))?;
        }
        Ok(())
    }

    /// Writes a piece's metadata and its index entries.
    pub(crate) fn insert_meta(&self, hash: &PieceHash, meta: &PieceMeta) -> WriteResult {
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
    ) -> WriteResult {
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

    pub(crate) fn write_totals(&self, rec: &StatsRecord) -> WriteResult {
        self.stats.insert(TOTALS_KEY, &rec.encode()[..])?;
        Ok(())
    }
}

impl StoreCore {
    /// Opens (or creates) the store in directory `path`.
    ///
    /// Moves the pieces of a store of the older layout (bytes inside sled)
    /// out into piece files, deletes what an interrupted write or repair
    /// left behind, and evicts down to `config.budget_bytes` if the store
    /// holds more.
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
        let files = PieceFiles::open(&root, config.block_bytes, config.sync_pieces)
            .map_err(|e| open_err(e.into()))?;
        let mut core = Self {
            root,
            budget: config.budget_bytes,
            config,
            generation,
            t,
            files,
            doomed: Doomed::default(),
            overhead: Overhead::default(),
            touches: Touches::default(),
            rec: StatsRecord::default(),
            reset_at_open,
            abandoned: false,
        };
        // The marker goes, durably, before anything changes: from here on a
        // crash must look unclean.
        let clean = core.t.stats.remove(CLEAN_KEY)?.is_some();
        core.t.db.flush()?;
        // Totals first: a migration copies the counters on.
        core.rec = core.load_totals(clean)?;
        core.guarded(|s| s.migrate())?;
        if !clean {
            core.guarded(|s| s.repair_indexes())?;
        }
        core.guarded(|s| s.sweep().map(drop))?;
        core.guarded(|s| s.replay_touches())?;
        core.measure_overhead();
        core.guarded(|s| s.shrink_to_budget())?;
        Ok(core)
    }

    /// The totals record, trusted as it is only after a clean close in the
    /// same block size; otherwise the contents are counted again (and the
    /// clock is restarted past every stamp in the index).
    fn load_totals(&self, clean: bool) -> Result<StatsRecord> {
        let raw = self.t.stats.get(TOTALS_KEY)?;
        let decoded = raw.as_deref().and_then(|r| StatsRecord::decode(r).ok());
        let block = self.files.block();
        let rec = match decoded {
            Some(d) if clean && d.contents_valid && d.rec.block == block => return Ok(d.rec),
            // Counters carry over (after a crash, without their last
            // increments); the contents are counted again.
            Some(d) => StatsRecord {
                contents: self.recount()?,
                clock: d.rec.clock.max(self.max_access()?),
                block,
                ..d.rec
            },
            None => {
                if raw.is_some() {
                    warn!(path = %self.root.display(), "totals record unreadable; recounting");
                }
                StatsRecord {
                    contents: self.recount()?,
                    clock: self.max_access()?,
                    block,
                    ..StatsRecord::default()
                }
            }
        };
        self.t.stats.insert(TOTALS_KEY, &rec.encode()[..])?;
        Ok(rec)
    }

    /// Deletes piece files the database does not know: the debris of a put
    /// whose transaction a crash lost, or of a removal whose file had not
    /// been deleted yet. A lookup that fails keeps the file.
    pub(crate) fn sweep(&mut self) -> Result<u64> {
        let meta = &self.t.meta;
        let sweep = self
            .files
            .sweep(|h| meta.contains_key(h.as_bytes()).unwrap_or(true))
            .map_err(sled::Error::from)?;
        // Whatever was doomed is gone now, or known again.
        self.doomed.clear();
        if sweep.orphans + sweep.debris > 0 {
            info!(
                orphans = sweep.orphans,
                debris = sweep.debris,
                "deleted piece files the database does not know"
            );
        }
        Ok(sweep.orphans)
    }

    /// A piece's footprint on disk.
    pub(crate) fn footprint(&self, size: u64) -> u64 {
        self.files.footprint(size)
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

    /// Applies one group of writes to `meta`, `lru`, `owners` and `stats`.
    ///
    /// Not a sled transaction: every sled batch or transaction writes out
    /// and syncs sled's log buffer (`pin_log`), about a millisecond on a
    /// virtual disk, which capped puts of 16 KiB at 20 MB/s. Plain writes
    /// only append to sled's buffer. A crash can then keep part of a group;
    /// the `clean` marker (see `open`) tells the next open to rebuild the
    /// indexes and totals from the metadata, which is the truth. Each piece's
    /// metadata is one record, so it is all there or not at all.
    pub(crate) fn apply<A>(&self, f: impl FnOnce(&Writes<'_>) -> WriteResult<A>) -> Result<A> {
        let t = &self.t;
        Ok(f(&Writes {
            meta: &t.meta,
            lru: &t.lru,
            owners: &t.owners,
            stats: &t.stats,
        })?)
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
        let Some(size) = self.load_size(hash)? else {
            return Ok(None);
        };
        let damage = match self.files.read(hash, size).map_err(sled::Error::from)? {
            Read::Bytes(bytes) if hash.verifies(&bytes) => {
                self.touch(hash)?;
                return Ok(Some(bytes));
            }
            Read::Bytes(_) => "hash mismatch",
            Read::Missing => "file missing",
            Read::WrongLength => "file of the wrong length",
        };
        let meta = self.load_meta(hash)?;
        Err(self.purge_corrupt(hash, meta.as_ref(), damage)?)
    }

    /// A piece's size from its metadata, checked as [`Self::load_meta`]
    /// checks it but without copying the record out: the read path.
    fn load_size(&mut self, hash: &PieceHash) -> Result<Option<u64>> {
        let Some(raw) = self.t.meta.get(hash.as_bytes())? else {
            return Ok(None);
        };
        match PieceMeta::checked_size(&raw) {
            Ok(size) => Ok(Some(size)),
            Err(e) => Err(self.purge_corrupt(hash, None, e.0)?),
        }
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

    /// A piece's metadata, reads not yet folded in included; without
    /// counting an access.
    pub fn meta(&mut self, hash: &PieceHash) -> Result<Option<PieceMeta>> {
        self.guarded(|s| {
            let stored = s.load_meta(hash)?;
            Ok(stored.map(|m| s.with_pending(hash, &m)))
        })
    }

    /// Where a piece's file is and how long it is, counting a read: for a
    /// caller that reads and verifies the file itself (the async handle, so
    /// that 50 links' reads run in parallel), and comes back to
    /// [`StoreCore::get`] if that fails.
    pub(crate) fn locate(&mut self, hash: &PieceHash) -> Result<Option<(PathBuf, u64)>> {
        self.guarded(|s| {
            let Some(size) = s.load_size(hash)? else {
                return Ok(None);
            };
            s.touch(hash)?;
            Ok(Some((s.files.path(hash), size)))
        })
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
                c.add(&meta, self.footprint(meta.size));
            }
        }
        Ok(c)
    }

    /// Makes everything written so far durable, and deletes the files of
    /// removed pieces. If the database, measured once durable, has grown
    /// into the pieces' room, evicts down to it first.
    pub fn flush(&mut self) -> Result<()> {
        self.guarded(|s| {
            s.reap()?;
            if !s.shrink_to_budget()?.is_empty() {
                s.reap()?;
            }
            Ok(())
        })
    }

    /// What the store directory occupies on disk, as `du` would count it:
    /// the piece files (counted, not walked: see [`Totals::disk_bytes`]),
    /// files of removed pieces not deleted yet, the database's files, and
    /// the fan-out directories at their present size. Stats the database's
    /// files and the 256 piece directories; it does not read the pieces.
    pub fn disk_usage(&self) -> Result<u64> {
        Ok(self.rec.contents.disk_bytes + self.doomed.bytes() + self.overhead_on_disk())
    }

    /// Where a piece's file is (or would be): `pieces/<h0h1>/<hash hex>`.
    pub fn piece_path(&self, hash: &PieceHash) -> PathBuf {
        self.files.path(hash)
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
    /// Replaces a stored piece's file without verification or bookkeeping,
    /// to simulate bit rot; for a piece not stored, makes an orphan file.
    /// Test-only (`test-hooks` feature).
    pub fn overwrite_piece_bytes_for_test(&mut self, hash: &PieceHash, bytes: &[u8]) -> Result<()> {
        std::fs::write(self.files.path(hash), bytes).map_err(sled::Error::from)?;
        Ok(())
    }

    /// Replaces a stored metadata record with raw bytes. Test-only.
    pub fn overwrite_meta_bytes_for_test(&mut self, hash: &PieceHash, bytes: &[u8]) -> Result<()> {
        self.t.meta.insert(hash.as_bytes(), bytes)?;
        Ok(())
    }

    /// Ends the store as a kill -9 would once sled had made its writes
    /// durable: no clean close, so the next open recovers. Test-only.
    pub fn crash_for_test(mut self) -> Result<()> {
        self.t.db.flush()?;
        self.abandoned = true;
        Ok(())
    }

    /// Removes a piece's file but leaves its metadata. Test-only.
    pub fn remove_piece_bytes_for_test(&mut self, hash: &PieceHash) -> Result<()> {
        self.files.remove(hash).map_err(sled::Error::from)?;
        Ok(())
    }
}
