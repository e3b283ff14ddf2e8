//! The scrub: read and verify every piece, then make the trees agree.
//!
//! Transactions keep the trees consistent by construction; the scrub is what
//! notices the damage they cannot prevent (bit rot, sled checksum failures)
//! and repairs anything out of step, one small transaction per repair.

use tracing::{info, warn};
use tuber_proto::PieceHash;

use crate::core::{is_sled_corruption, StoreCore};
use crate::error::Result;
use crate::files::Read;
use crate::keys::{hash_from_key, lru_key, owner_key, trailing_hash, LRU_KEY_LEN};
use crate::meta::PieceMeta;
use crate::repair::ScrubReport;

/// A piece to delete, with its metadata if that decoded.
type Bad = (PieceHash, Option<PieceMeta>, &'static str);

impl StoreCore {
    /// Verifies every stored piece and the consistency of all trees.
    ///
    /// Deletes corrupt pieces (files that do not verify or have the wrong
    /// length, metadata that does not decode, metadata without a file),
    /// deletes piece files without metadata,
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
        self.scrub_pieces(report)?;
        self.scrub_meta(report)?;
        self.scrub_indexes(report)?;
        report.totals_fixed = self.fix_totals()?;
        Ok(())
    }

    /// Deletes piece files the database does not know, then reads every
    /// piece the database knows and verifies it against its metadata.
    fn scrub_pieces(&mut self, report: &mut ScrubReport) -> Result<()> {
        // Removals not yet reaped are not orphans: delete them first (and
        // write the reads recorded so far).
        self.reap()?;
        report.orphan_pieces += self.sweep()?;
        let mut bad: Vec<Bad> = Vec::new();
        for item in self.t.meta.iter() {
            let (key, raw) = item?;
            // Keys that are not hashes are scrub_meta's.
            let Some(hash) = hash_from_key(&key) else {
                continue;
            };
            let meta = match PieceMeta::decode(&raw) {
                Ok(m) => m,
                Err(e) => {
                    bad.push((hash, None, e.0));
                    continue;
                }
            };
            let why = match self
                .files
                .read(&hash, meta.size)
                .map_err(sled::Error::from)?
            {
                Read::Bytes(bytes) if hash.verifies(&bytes) => None,
                Read::Bytes(_) => Some("hash mismatch"),
                Read::WrongLength => Some("file of the wrong length"),
                Read::Missing => {
                    bad.push((hash, Some(meta), "file missing"));
                    continue;
                }
            };
            report.checked += 1;
            if let Some(why) = why {
                bad.push((hash, Some(meta), why));
            }
        }
        for (hash, meta, why) in bad {
            self.purge_corrupt(&hash, meta.as_ref(), why)?;
            report.corrupt.push(hash);
        }
        Ok(())
    }

    /// Metadata under keys that are not hashes is removed; metadata with
    /// missing index entries gets them back.
    pub(crate) fn scrub_meta(&mut self, report: &mut ScrubReport) -> Result<()> {
        let mut unindexed = Vec::new();
        let mut junk = Vec::new();
        for item in self.t.meta.iter() {
            let (key, raw) = item?;
            let Some(hash) = hash_from_key(&key) else {
                junk.push(key);
                continue;
            };
            // scrub_pieces has just purged every record that does not decode.
            let Ok(meta) = PieceMeta::decode(&raw) else {
                continue;
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
        for (hash, meta) in unindexed {
            self.apply(|w| w.insert_meta(&hash, &meta))?;
            report.index_repairs += 1;
        }
        Ok(())
    }

    /// Removes index entries that no metadata record accounts for.
    pub(crate) fn scrub_indexes(&mut self, report: &mut ScrubReport) -> Result<()> {
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

    /// After a crash: the indexes made to match the metadata, which is one
    /// record per piece and so never half-written. The totals were recounted
    /// already. Reads no piece.
    pub(crate) fn repair_indexes(&mut self) -> Result<()> {
        let mut report = ScrubReport::default();
        self.scrub_meta(&mut report)?;
        self.scrub_indexes(&mut report)?;
        if report.index_repairs > 0 {
            info!(
                repairs = report.index_repairs,
                "index entries repaired after an unclean shutdown"
            );
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
