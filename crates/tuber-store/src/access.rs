//! Read bookkeeping in batches.
//!
//! Every hit moves a piece in the eviction order and bumps its counters.
//! Writing that to sled on every read (one transaction: metadata, the `lru`
//! key twice, the totals) cost more than reading and hashing a 16 KiB piece,
//! so reads are recorded here, in memory, and written as one transaction:
//! before any operation that reads the eviction order or the metadata they
//! change (every mutation, `meta`, `scrub`, `flush`), and when
//! [`MAX_TOUCHES`] pieces have been read. A kill -9 loses at most the
//! unwritten reads' effect on the order and the counters; no piece, and the
//! totals still equal the contents.

use std::collections::HashMap;

use tuber_proto::PieceHash;

use crate::core::StoreCore;
use crate::error::Result;
use crate::meta::PieceMeta;

/// Distinct pieces read before their reads are written.
const MAX_TOUCHES: usize = 1024;

/// Reads of one piece not written yet, with its record as sled holds it
/// (nothing changes a record while reads of it are pending: every mutation
/// writes them first, and a purge forgets them).
#[derive(Debug, Clone)]
struct Touch {
    stored: PieceMeta,
    hits: u64,
    last_access: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Touches(HashMap<PieceHash, Touch>);

impl StoreCore {
    /// Records a read of `hash`, whose stored record is `stored`, at the
    /// next tick of the clock.
    pub(crate) fn touch(&mut self, hash: &PieceHash, stored: PieceMeta) -> Result<()> {
        self.rec.clock += 1;
        let clock = self.rec.clock;
        let t = self.touches.0.entry(*hash).or_insert(Touch {
            stored,
            hits: 0,
            last_access: clock,
        });
        t.hits += 1;
        t.last_access = clock;
        if self.touches.0.len() >= MAX_TOUCHES {
            self.apply_touches()?;
        }
        Ok(())
    }

    /// Writes the recorded reads into the metadata and the `lru` index.
    pub(crate) fn apply_touches(&mut self) -> Result<()> {
        if self.touches.0.is_empty() {
            return Ok(());
        }
        let changes: Vec<(PieceHash, &PieceMeta, PieceMeta)> = self
            .touches
            .0
            .iter()
            .map(|(hash, t)| {
                let old = &t.stored;
                let new = PieceMeta {
                    last_access: t.last_access.max(old.last_access),
                    hits: old.hits.saturating_add(t.hits),
                    bytes_served: old
                        .bytes_served
                        .saturating_add(t.hits.saturating_mul(old.size)),
                    ..old.clone()
                };
                (*hash, old, new)
            })
            .collect();
        let rec = self.rec;
        self.apply(|w| {
            for (hash, old, new) in &changes {
                w.replace_meta(hash, old, new)?;
            }
            w.write_totals(&rec)
        })?;
        drop(changes);
        self.touches.0.clear();
        Ok(())
    }

    /// Forgets recorded reads: after a rebuild, which starts from what sled
    /// holds.
    pub(crate) fn drop_touches(&mut self) {
        self.touches.0.clear();
    }

    /// Forgets the reads of a piece being purged, so they cannot bring its
    /// record back.
    pub(crate) fn forget_touches(&mut self, hash: &PieceHash) {
        self.touches.0.remove(hash);
    }
}
