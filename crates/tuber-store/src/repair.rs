//! Corruption handling: deleting a corrupt piece, and rebuilding the database
//! after a sled checksum failure.
//!
//! Two kinds of damage reach the store. A piece file that is missing, of the
//! wrong length, or whose bytes do not hash to its address (bit rot, a
//! truncated write after a power cut): the piece is deleted like any other.
//! And a sled checksum failure (`sled::Error::Corruption`) in the database,
//! which sled 0.34 cannot get past: the damaged B-tree node can be neither
//! read, written nor freed, so the records in it cannot even be deleted; and
//! sled's segment cleaner later tries to move the node, which fails
//! whichever unrelated write triggered the move and stops sled's background
//! flusher. The only cure is to copy everything readable into a fresh
//! database and switch to it (`layout` makes the switch atomic). The piece
//! files are not touched by that copy: a piece whose metadata survives keeps
//! its file; the files of pieces whose metadata was lost are swept.

use std::collections::HashSet;

use sled::{IVec, Tree};
use tracing::{info, warn};
use tuber_proto::PieceHash;

use crate::core::{is_sled_corruption, StoreCore, Trees};
use crate::error::{Result, StoreError};
use crate::keys::{hash_from_key, lru_key, owner_key, trailing_hash};
use crate::layout;
use crate::meta::PieceMeta;
use crate::totals::{Contents, StatsRecord, TOTALS_KEY};

/// What a [`StoreCore::scrub`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Pieces whose bytes were read and verified.
    pub checked: u64,
    /// Pieces found corrupt and deleted: bytes that do not verify, missing
    /// bytes, undecodable metadata, or lost to a sled checksum failure.
    pub corrupt: Vec<PieceHash>,
    /// Piece bytes with no metadata (never counted in the totals), removed.
    pub orphan_pieces: u64,
    /// Index entries (`lru`, `owners`) added or removed to match `meta`.
    pub index_repairs: u64,
    /// Whether a sled checksum failure made the store rebuild its database.
    pub rebuilt: bool,
    /// Whether the persisted totals differed from a recount and were fixed.
    pub totals_fixed: bool,
}

impl ScrubReport {
    /// Whether the scrub found nothing to repair.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
            && self.orphan_pieces == 0
            && self.index_repairs == 0
            && !self.rebuilt
            && !self.totals_fixed
    }
}

impl StoreCore {
    /// Runs `op`; if sled reports a checksum failure, rebuilds the database
    /// and runs `op` once more on the rebuilt one.
    pub(crate) fn guarded<T>(&mut self, mut op: impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        match op(self) {
            Err(e) if is_sled_corruption(&e) => {
                self.rebuild(&e)?;
                op(self)
            }
            other => other,
        }
    }

    /// Deletes a piece found corrupt, counts and logs it, and returns the
    /// error to hand to the caller. With `meta == None` (the record itself is
    /// bad) the index entries are found by scanning and the totals recounted.
    pub(crate) fn purge_corrupt(
        &mut self,
        hash: &PieceHash,
        meta: Option<&PieceMeta>,
        why: &str,
    ) -> Result<StoreError> {
        warn!(%hash, reason = why, "corrupt piece found; deleting it");
        self.forget_touches(hash);
        let mut rec = self.rec;
        rec.corrupt_detected += 1;
        match meta {
            Some(m) => {
                rec.contents.remove(m, self.footprint(m.size));
                self.apply(|w| {
                    w.remove_piece(hash, m)?;
                    w.write_totals(&rec)
                })?;
            }
            None => {
                let skip = HashSet::from([*hash]);
                let (lru_keys, owner_keys) = self.index_keys_of(&skip)?;
                rec.contents = self.recount_except(&skip)?;
                self.apply(|w| {
                    w.meta.remove(&hash.as_bytes()[..])?;
                    for key in &lru_keys {
                        w.lru.remove(key)?;
                    }
                    for key in &owner_keys {
                        w.owners.remove(key)?;
                    }
                    w.write_totals(&rec)
                })?;
            }
        }
        self.rec = rec;
        // Deleted with the next batch, like an eviction: should a crash undo
        // the removal, the piece is found corrupt once more, not lost.
        self.doom([(*hash, meta.map_or(0, |m| m.size))]);
        Ok(StoreError::Corrupt { hash: *hash })
    }

    /// The `lru` and `owners` keys that end in one of `hashes`, by scanning:
    /// for pieces whose metadata is unreadable.
    fn index_keys_of(&self, hashes: &HashSet<PieceHash>) -> Result<(Vec<IVec>, Vec<IVec>)> {
        let mut found = (Vec::new(), Vec::new());
        for (tree, out) in [(&self.t.lru, &mut found.0), (&self.t.owners, &mut found.1)] {
            for key in tree.iter().keys() {
                let key = key?;
                if trailing_hash(&key).is_some_and(|h| hashes.contains(&h)) {
                    out.push(key);
                }
            }
        }
        Ok(found)
    }

    /// Copies the metadata of every piece that has a file of the right
    /// length, and every readable manifest, into a new database, rebuilds
    /// the indexes and totals from the copied metadata, switches to it,
    /// deletes the old one and sweeps the files nothing refers to any more.
    /// Returns the pieces known to be lost; pieces whose metadata was itself
    /// unreadable are lost too, and counted, but cannot be named. Reads no
    /// piece bytes: a damaged file is found by its next read or scrub.
    pub(crate) fn rebuild(&mut self, cause: &StoreError) -> Result<Vec<PieceHash>> {
        warn!(path = %self.root.display(), %cause, "sled checksum failure; rebuilding the database");
        self.regenerate()
    }

    /// The copy behind [`StoreCore::rebuild`], also used to leave the old
    /// layout's database behind after a migration.
    pub(crate) fn regenerate(&mut self) -> Result<Vec<PieceHash>> {
        // The copy starts from what sled holds; reads not written are lost
        // with the old database (they only move pieces in the order).
        self.drop_touches();
        let generation = self.generation + 1;
        let dir = layout::db_dir(&self.root, generation);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(sled::Error::from)?;
        }
        let fresh = Trees::open(&dir, &self.config)?;
        let mut lost = Vec::new();
        let mut kept = Contents::default();
        let mut clock = self.rec.clock;
        let mut skipped = scan_readable(&self.t.meta, |key, raw| {
            let Some(hash) = hash_from_key(&key) else {
                return Ok(());
            };
            let len = self.files.len(&hash).map_err(sled::Error::from)?;
            match PieceMeta::decode(&raw) {
                Ok(meta) if len == Some(meta.size) => {
                    copy_meta(&fresh, &hash, &meta)?;
                    kept.add(&meta, self.files.footprint(meta.size));
                    clock = clock.max(meta.last_access);
                }
                _ => lost.push(hash),
            }
            Ok(())
        })?;
        skipped += scan_readable(&self.t.manifests, |key, value| {
            fresh.manifests.insert(key, value)?;
            Ok(())
        })?;
        // Everything the old totals counted and the copy does not hold is
        // lost, named or not.
        let lost_count = self.rec.contents.pieces.saturating_sub(kept.pieces);
        let rec = StatsRecord {
            contents: kept,
            corrupt_detected: self.rec.corrupt_detected + lost_count,
            evictions: self.rec.evictions,
            clock,
            block: self.files.block(),
        };
        fresh.stats.insert(TOTALS_KEY, &rec.encode()[..])?;
        fresh.db.flush()?;
        layout::write_current(&self.root, generation).map_err(sled::Error::from)?;
        let old = std::mem::replace(&mut self.t, fresh);
        let old_dir = layout::db_dir(&self.root, self.generation);
        self.generation = generation;
        self.rec = rec;
        // Close the old database before deleting it; a failure to delete only
        // leaves debris that the next open removes.
        drop(old);
        if let Err(e) = std::fs::remove_dir_all(&old_dir) {
            warn!(dir = %old_dir.display(), error = %e, "cannot remove the old database");
        }
        self.sweep()?;
        for hash in &lost {
            warn!(%hash, "piece lost to a sled checksum failure");
        }
        info!(
            generation,
            kept = kept.pieces,
            lost = lost_count,
            unreadable_ranges = skipped,
            "database rebuilt"
        );
        Ok(lost)
    }

    /// Recounts the contents and rewrites the totals if they differ; whether
    /// they did.
    pub(crate) fn fix_totals(&mut self) -> Result<bool> {
        let counted = self.recount()?;
        if counted == self.rec.contents {
            return Ok(false);
        }
        warn!(?counted, recorded = ?self.rec.contents, "totals out of step with contents; fixed");
        let mut rec = self.rec;
        rec.contents = counted;
        self.apply(|w| w.write_totals(&rec))?;
        self.rec = rec;
        Ok(true)
    }
}

/// Writes a piece's metadata and index entries into the rebuilt database.
fn copy_meta(fresh: &Trees, hash: &PieceHash, meta: &PieceMeta) -> Result<()> {
    fresh.meta.insert(hash.as_bytes(), meta.encode())?;
    fresh
        .lru
        .insert(&lru_key(meta.pinned, meta.last_access, hash)[..], &[][..])?;
    for o in &meta.owners {
        fresh
            .owners
            .insert(owner_key(&o.swarm, &o.resource, hash), &[][..])?;
    }
    Ok(())
}

/// Visits every entry of `tree` that sled can read, in key order, stepping
/// over stretches it cannot; returns how many stretches were skipped.
fn scan_readable(tree: &Tree, mut visit: impl FnMut(IVec, IVec) -> Result<()>) -> Result<u64> {
    let mut skipped = 0;
    let mut from = Some(Vec::new());
    while let Some(start) = from.take() {
        let mut last: Option<IVec> = None;
        for item in tree.range(start.as_slice()..) {
            match item {
                Ok((key, value)) => {
                    visit(key.clone(), value)?;
                    last = Some(key);
                }
                Err(sled::Error::Corruption { .. }) => {
                    skipped += 1;
                    let after = last.as_deref().unwrap_or(&start);
                    from = first_readable_start(tree, after)?;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(skipped)
}

/// The smallest 8-byte key above `after` from which `tree` reads again, by
/// bisection: every start inside a damaged stretch fails and every start past
/// it succeeds. Keys between the stretch and that boundary (a 2^-64 sliver of
/// the key space) are given up with it.
fn first_readable_start(tree: &Tree, after: &[u8]) -> Result<Option<Vec<u8>>> {
    let readable_from = |p: u64| -> Result<bool> {
        match tree.range(p.to_be_bytes()..).next() {
            None | Some(Ok(_)) => Ok(true),
            Some(Err(sled::Error::Corruption { .. })) => Ok(false),
            Some(Err(e)) => Err(e.into()),
        }
    };
    let mut prefix = [0u8; 8];
    let n = after.len().min(8);
    prefix[..n].copy_from_slice(&after[..n]);
    // Starts at or below `after`'s own prefix are known to fail.
    let Some(mut lo) = u64::from_be_bytes(prefix).checked_add(1) else {
        return Ok(None);
    };
    if !readable_from(u64::MAX)? {
        return Ok(None);
    }
    let mut hi = u64::MAX;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if readable_from(mid)? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(Some(lo.to_be_bytes().to_vec()))
}
