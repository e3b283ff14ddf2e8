//! The scrub: read and verify every piece, then make the trees agree.
//!
//! Transactions keep the trees consistent by construction; the scrub is what
//! notices the damage they cannot prevent (bit rot, sled checksum failures)
//! and repairs anything out of step, one small transaction per repair.

use std::collections::HashSet;

use sled::IVec;
use tracing::{info, warn};
use tuber_proto::PieceHash;

use crate::core::{is_sled_corruption, StoreCore};
use crate::error::Result;
use crate::keys::{hash_from_key, lru_key, owner_key, trailing_hash, LRU_KEY_LEN};
use crate::meta::PieceMeta;
use crate::repair::ScrubReport;

/// A piece to delete, with its metadata if that decoded.
type Bad = (PieceHash, Option<PieceMeta>, &'static str);

impl StoreCore {
    /// Verifies every stored piece and the consistency of all trees.
    ///
    /// Deletes corrupt pieces (bytes that do not verify, metadata that does
    /// not decode, metadata without bytes), removes bytes without metadata,
    /// repairs the `lru` and `owners` indexes, and fixes the totals if a
    /// recount disagrees. A sled checksum failure anywhere makes the store
    /// rebuild its database, which copies only what verifies. Blocks for a
    /// full read of the store.
    pub fn scrub(&mut self) -> Result<ScrubReport> {
        let mut report = ScrubReport::default();
        match self.scrub_once(&mut report) {
            Err(e) if is_sled_corruption(&e) => {
                report.corrupt.extend(self.rebuild(&e)?);
                report.rebuilt = true;
                // The copy holds only verified pieces; walk it once more so
                // the report covers the store as it is now.
                let mut after = ScrubReport::default();
                self.scrub_once(&mut after)?;
                report.checked = after.checked;
                report.corrupt.extend(after.corrupt);
                report.orphan_pieces += after.orphan_pieces;
                report.index_repairs += after.index_repairs;
                report.totals_fixed |= after.totals_fixed;
            }
            other => other?,
        }
        if report.is_clean() {
            info!(checked = report.checked, "scrub found nothing to repair");
        } else {
            warn!(
                checked = report.checked,
                corrupt = report.corrupt.len(),
                orphan_pieces = report.orphan_pieces,
                index_repairs = report.index_repairs,
                rebuilt = report.rebuilt,
                totals_fixed = report.totals_fixed,
                "scrub repaired the store"
            );
        }
        Ok(report)
    }

    fn scrub_once(&mut self, report: &mut ScrubReport) -> Result<()> {
        let seen = self.scrub_pieces(report)?;
        self.scrub_meta(&seen, report)?;
        self.scrub_indexes(report)?;
        report.totals_fixed = self.fix_totals()?;
        Ok(())
    }

    /// Verifies every piece against its metadata; returns the pieces seen.
    fn scrub_pieces(&mut self, report: &mut ScrubReport) -> Result<HashSet<PieceHash>> {
        let mut bad: Vec<Bad> = Vec::new();
        let mut orphans: Vec<IVec> = Vec::new();
        let mut seen = HashSet::new();
        for item in self.t.pieces.iter() {
            let (key, bytes) = item?;
            let Some(hash) = hash_from_key(&key) else {
                orphans.push(key);
                continue;
            };
            let Some(raw) = self.t.meta.get(&key)? else {
                orphans.push(key);
                continue;
            };
            seen.insert(hash);
            match PieceMeta::decode(&raw) {
                Ok(m) if m.size == bytes.len() as u64 && hash.verifies(&bytes) => {}
                Ok(m) => bad.push((hash, Some(m), "hash mismatch")),
                Err(e) => bad.push((hash, None, e.0)),
            }
        }
        report.checked += seen.len() as u64;
        for key in orphans {
            warn!("piece bytes without metadata; removing them");
            self.t.pieces.remove(&key)?;
            report.orphan_pieces += 1;
        }
        for (hash, meta, why) in bad {
            self.purge_corrupt(&hash, meta.as_ref(), why)?;
            report.corrupt.push(hash);
        }
        Ok(seen)
    }
    /// Metadata without bytes is a lost piece; metadata with missing index
    /// entries gets them back.
    fn scrub_meta(&mut self, seen: &HashSet<PieceHash>, report: &mut ScrubReport) -> Result<()> {
        let mut missing: Vec<Bad> = Vec::new();
        let mut unindexed = Vec::new();
        let mut junk = Vec::new();
        for item in self.t.meta.iter() {
            let (key, raw) = item?;
            let Some(hash) = hash_from_key(&key) else {
                junk.push(key);
                continue;
            };
            let meta = PieceMeta::decode(&raw);
            let meta = match meta {
                Ok(m) if seen.contains(&hash) => m,
                Ok(m) => {
                    missing.push((hash, Some(m), "bytes missing"));
                    continue;
                }
                Err(e) => {
                    missing.push((hash, None, e.0));
                    continue;
                }
            };
            let mut indexed =
                self.t
                    .lru
                    .contains_key(lru_key(meta.pinned, meta.last_access, &hash))?;
            for o in &meta.owners {
                indexed &= self
                    .t
                    .owners
                    .contains_key(owner_key(&o.swarm, &o.resource, &hash))?;
            }
            if !indexed {
                unindexed.push((hash, meta));
            }
        }
        for key in junk {
            self.t.meta.remove(key)?;
            report.index_repairs += 1;
        }
        for (hash, meta, why) in missing {
            self.purge_corrupt(&hash, meta.as_ref(), why)?;
            report.corrupt.push(hash);
        }
        for (hash, meta) in unindexed {
            self.transact(|tx| tx.insert_meta(&hash, &meta))?;
            report.index_repairs += 1;
        }
        Ok(())
    }

    /// Removes index entries that no metadata record accounts for.
    fn scrub_indexes(&mut self, report: &mut ScrubReport) -> Result<()> {
        let mut stale_lru = Vec::new();
        for key in self.t.lru.iter().keys() {
            let key = key?;
            let wanted = match trailing_hash(&key) {
                Some(hash) if key.len() == LRU_KEY_LEN => self
                    .decoded_meta(&hash)?
                    .is_some_and(|m| lru_key(m.pinned, m.last_access, &hash)[..] == key[..]),
                _ => false,
            };
            if !wanted {
                stale_lru.push(key);
            }
        }
        let mut stale_owners = Vec::new();
        for key in self.t.owners.iter().keys() {
            let key = key?;
            let wanted = match trailing_hash(&key) {
                Some(hash) => self.decoded_meta(&hash)?.is_some_and(|m| {
                    m.owners
                        .iter()
                        .any(|o| owner_key(&o.swarm, &o.resource, &hash)[..] == key[..])
                }),
                None => false,
            };
            if !wanted {
                stale_owners.push(key);
            }
        }
        report.index_repairs += (stale_lru.len() + stale_owners.len()) as u64;
        for key in stale_lru {
            self.t.lru.remove(key)?;
        }
        for key in stale_owners {
            self.t.owners.remove(key)?;
        }
        Ok(())
    }

    fn decoded_meta(&self, hash: &PieceHash) -> Result<Option<PieceMeta>> {
        Ok(self
            .t
            .meta
            .get(hash.as_bytes())?
            .and_then(|raw| PieceMeta::decode(&raw).ok()))
    }
}
