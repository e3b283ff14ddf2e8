//! Moving a store of the older layout (piece bytes inside sled, in the
//! `pieces` tree) to piece files, at open.
//!
//! Pieces move in batches: each batch's files are written and fsynced, then
//! its entries are removed from the `pieces` tree. A kill at any point
//! leaves every piece either still in the tree or already in its file (or
//! both), and the next open carries on. A piece whose old bytes do not
//! verify is not moved; its metadata then has no file, and the first read
//! or scrub deletes and counts it, as the old store would have.
//!
//! When the tree is empty, the metadata is copied into a fresh database
//! generation (the repair's copy), so the old database's space (about 2.5x
//! the piece bytes with sled 0.34) is given back at once rather than
//! whenever sled's cleaner gets to it. A `migrating` marker in the `stats`
//! tree makes that step resumable too: the fresh database does not have it.

use tracing::info;

use crate::core::StoreCore;
use crate::error::{Result, StoreError};
use crate::keys::hash_from_key;

/// Entries moved per batch: enough to amortise the fsyncs, few enough to
/// hold in memory (at most 64 x 4 MiB).
const BATCH: usize = 64;
const MARKER: &[u8] = b"migrating";

impl StoreCore {
    /// Moves the old layout's pieces to files, if there are any.
    pub(crate) fn migrate(&mut self) -> Result<()> {
        let pending = !self.t.legacy.is_empty() || self.t.stats.contains_key(MARKER)?;
        if !pending {
            return Ok(());
        }
        info!(path = %self.root.display(), "moving pieces out of the database into files");
        self.t.stats.insert(MARKER, &[][..])?;
        let (mut moved, mut dropped) = (0u64, 0u64);
        let mut last_first = None;
        loop {
            let batch = self
                .t
                .legacy
                .iter()
                .take(BATCH)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let Some((first, _)) = batch.first() else {
                break;
            };
            if last_first.as_ref() == Some(first) {
                // Removals that did not remove: never loop on them.
                return Err(StoreError::Db(sled::Error::ReportableBug(
                    "migration made no progress".into(),
                )));
            }
            last_first = Some(first.clone());
            for (key, bytes) in &batch {
                match hash_from_key(key) {
                    Some(hash) if hash.verifies(bytes) => {
                        self.files
                            .write_synced(&hash, bytes)
                            .map_err(sled::Error::from)?;
                        moved += 1;
                    }
                    _ => dropped += 1,
                }
            }
            for (key, _) in &batch {
                self.t.legacy.remove(key)?;
            }
        }
        self.t.db.flush()?;
        let lost = self.regenerate()?;
        info!(
            moved,
            dropped,
            lost = lost.len(),
            "pieces moved to files; the old database is gone"
        );
        Ok(())
    }
}
