//! Deleting the files of removed pieces, once their removal is durable.
//!
//! A removal (eviction, delete, budget cut) commits in sled first. sled
//! makes commits durable in the background (every `flush_every_ms`), so a
//! kill -9 right after a commit can undo it; had the file been deleted at
//! once, the store would reopen with metadata whose file is gone, a piece
//! lost for nothing. So files are only "doomed" at commit, and deleted in a
//! batch after an explicit `flush`: when the doomed files reach a
//! thirty-second of the budget (which bounds what they add to the disk use),
//! when the oldest has waited a second, on `flush`, and on drop. A file
//! doomed when the process dies is debris that the sweep at the next open
//! deletes (its metadata is gone) or keeps (the removal was lost, and the
//! piece is intact).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::warn;
use tuber_proto::PieceHash;

use crate::core::StoreCore;
use crate::error::Result;
use crate::totals::CLEAN_KEY;

/// Longest a doomed file waits for its deletion while the store is busy.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Doomed bytes never wait for a reason smaller than this, so that a tiny
/// budget does not turn every put into a flush.
const MIN_BATCH_BYTES: u64 = 256 * 1024;
/// The doomed files may add this fraction of the budget to the disk use.
const BUDGET_FRACTION: u64 = 32;

/// Files of removed pieces awaiting deletion, with their footprints.
#[derive(Debug, Default)]
pub(crate) struct Doomed {
    files: HashMap<PieceHash, u64>,
    bytes: u64,
    since: Option<Instant>,
}

impl Doomed {
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    fn add(&mut self, hash: PieceHash, footprint: u64) {
        if self.files.insert(hash, footprint).is_none() {
            self.bytes += footprint;
        }
        self.since.get_or_insert_with(Instant::now);
    }

    /// A piece stored again keeps its file.
    pub(crate) fn cancel(&mut self, hash: &PieceHash) {
        if let Some(fp) = self.files.remove(hash) {
            self.bytes = self.bytes.saturating_sub(fp);
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

impl StoreCore {
    /// Marks the files of pieces whose removal just committed.
    pub(crate) fn doom(&mut self, hashes: impl IntoIterator<Item = (PieceHash, u64)>) {
        for (hash, size) in hashes {
            let fp = self.footprint(size);
            self.doomed.add(hash, fp);
        }
    }

    /// Reaps if the doomed files are many or old enough.
    pub(crate) fn reap_if_due(&mut self) -> Result<()> {
        let limit = (self.budget / BUDGET_FRACTION).max(MIN_BATCH_BYTES);
        let old = self.doomed.since.is_some_and(|t| t.elapsed() >= MAX_WAIT);
        if self.doomed.bytes >= limit || old {
            self.reap()?;
        }
        Ok(())
    }

    /// Makes every commit durable, then deletes the doomed files.
    pub(crate) fn reap(&mut self) -> Result<()> {
        self.log_touches()?;
        self.t.db.flush()?;
        let doomed = std::mem::take(&mut self.doomed);
        for hash in doomed.files.keys() {
            if let Err(e) = self.files.remove(hash) {
                // Left for the next sweep.
                warn!(%hash, error = %e, "cannot delete a removed piece's file");
            }
        }
        self.measure_overhead();
        Ok(())
    }
}

impl StoreCore {
    /// Flushes everything and marks the database cleanly closed.
    fn close(&mut self) -> Result<()> {
        self.reap()?;
        let rec = self.rec;
        self.apply(|w| w.write_totals(&rec))?;
        self.t.stats.insert(CLEAN_KEY, &[][..])?;
        self.t.db.flush()?;
        Ok(())
    }
}

impl Drop for StoreCore {
    fn drop(&mut self) {
        if self.abandoned {
            return;
        }
        // Without the marker the next open recounts: slower, never wrong.
        if let Err(e) = self.close() {
            warn!(error = %e, "closing the store failed");
        }
    }
}
