//! Persisted totals and counters.
//!
//! They live in the `stats` tree. The totals record is rewritten with every
//! put, delete and eviction, but not atomically with them (see
//! `StoreCore::apply`): it is trusted at open only after a clean close,
//! marked by the `clean` key; after a crash the contents are recounted from
//! the metadata.

use crate::meta::DecodeError;

pub(crate) const TOTALS_KEY: &[u8] = b"totals";
/// Present only between a clean close and the next open: the indexes and
/// the totals can be trusted without a recount.
pub(crate) const CLEAN_KEY: &[u8] = b"clean";

/// Version 2 adds the on-disk sums and the block they were counted in.
/// Version 1 (the layout with piece bytes inside sled) still decodes, for
/// the migration; its contents are recounted.
const TOTALS_VERSION: u8 = 2;
const TOTALS_LEN: usize = 1 + 9 * 8;
const V1_LEN: usize = 1 + 6 * 8;

/// What the store holds: a recount over the `meta` tree must equal the
/// matching part of [`Totals`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contents {
    /// Number of pieces.
    pub pieces: u64,
    /// Sum of piece sizes.
    pub bytes: u64,
    /// Sum of the sizes of pinned pieces.
    pub pinned_bytes: u64,
    /// What the piece files occupy on disk: each size rounded up to the
    /// filesystem block. This is what the budget limits.
    pub disk_bytes: u64,
    /// The part of `disk_bytes` that is pinned.
    pub pinned_disk_bytes: u64,
}

impl Contents {
    /// Counts a piece whose file occupies `footprint` bytes.
    pub(crate) fn add(&mut self, meta: &crate::meta::PieceMeta, footprint: u64) {
        self.pieces += 1;
        self.bytes += meta.size;
        self.disk_bytes += footprint;
        if meta.pinned {
            self.pinned_bytes += meta.size;
            self.pinned_disk_bytes += footprint;
        }
    }

    pub(crate) fn remove(&mut self, meta: &crate::meta::PieceMeta, footprint: u64) {
        self.pieces = self.pieces.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(meta.size);
        self.disk_bytes = self.disk_bytes.saturating_sub(footprint);
        if meta.pinned {
            self.pinned_bytes = self.pinned_bytes.saturating_sub(meta.size);
            self.pinned_disk_bytes = self.pinned_disk_bytes.saturating_sub(footprint);
        }
    }

    /// Moves a piece between pinned and unpinned.
    pub(crate) fn set_pinned(&mut self, size: u64, footprint: u64, pinned: bool) {
        if pinned {
            self.pinned_bytes += size;
            self.pinned_disk_bytes += footprint;
        } else {
            self.pinned_bytes = self.pinned_bytes.saturating_sub(size);
            self.pinned_disk_bytes = self.pinned_disk_bytes.saturating_sub(footprint);
        }
    }
}

/// A snapshot of the store's totals and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Number of pieces.
    pub pieces: u64,
    /// Sum of piece sizes.
    pub bytes: u64,
    /// Sum of the sizes of pinned pieces.
    pub pinned_bytes: u64,
    /// What the piece files occupy on disk (sizes rounded up to the
    /// filesystem block); never above `budget`, less what the database
    /// takes beyond the fixed allowance (see the crate docs).
    pub disk_bytes: u64,
    /// The part of `disk_bytes` that is pinned.
    pub pinned_disk_bytes: u64,
    /// The disk budget, for the whole store directory: the piece files get
    /// what the database and the directories leave of it (see the crate
    /// docs for the bound).
    pub budget: u64,
    /// Pieces found corrupt (by `get`, `scrub` or a database rebuild) and
    /// deleted, since the store was created.
    pub corrupt_detected: u64,
    /// Pieces evicted to make room, since the store was created.
    pub evictions: u64,
}

impl Totals {
    /// The part of the totals that a recount can check.
    pub fn contents(&self) -> Contents {
        Contents {
            pieces: self.pieces,
            bytes: self.bytes,
            pinned_bytes: self.pinned_bytes,
            disk_bytes: self.disk_bytes,
            pinned_disk_bytes: self.pinned_disk_bytes,
        }
    }
}

/// The persisted record: totals without the budget (which is configuration),
/// plus the logical clock and the block the disk sums were counted in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StatsRecord {
    pub(crate) contents: Contents,
    pub(crate) corrupt_detected: u64,
    pub(crate) evictions: u64,
    /// The logical access clock: bumped by every put and every read hit.
    pub(crate) clock: u64,
    /// The allocation unit of `contents.disk_bytes`; a store opened with
    /// another one recounts.
    pub(crate) block: u64,
}

/// A decoded record, and whether its contents can be trusted as they are.
pub(crate) struct Decoded {
    pub(crate) rec: StatsRecord,
    /// False for a version 1 record: it predates the disk sums.
    pub(crate) contents_valid: bool,
}

impl StatsRecord {
    pub(crate) fn encode(&self) -> [u8; TOTALS_LEN] {
        let mut out = [0u8; TOTALS_LEN];
        out[0] = TOTALS_VERSION;
        let fields = [
            self.contents.pieces,
            self.contents.bytes,
            self.contents.pinned_bytes,
            self.contents.disk_bytes,
            self.contents.pinned_disk_bytes,
            self.corrupt_detected,
            self.evictions,
            self.clock,
            self.block,
        ];
        for (chunk, v) in out[1..].chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
        let v1 = match (bytes.first(), bytes.len()) {
            (Some(&TOTALS_VERSION), TOTALS_LEN) => false,
            (Some(1), V1_LEN) => true,
            _ => return Err(DecodeError("bad totals record")),
        };
        let mut f = bytes[1..]
            .chunks_exact(8)
            .map(|c| c.try_into().map(u64::from_be_bytes).unwrap_or(0));
        let mut next = || f.next().unwrap_or(0);
        let mut contents = Contents {
            pieces: next(),
            bytes: next(),
            pinned_bytes: next(),
            ..Contents::default()
        };
        if !v1 {
            contents.disk_bytes = next();
            contents.pinned_disk_bytes = next();
        }
        let rec = Self {
            contents,
            corrupt_detected: next(),
            evictions: next(),
            clock: next(),
            block: if v1 { 0 } else { next() },
        };
        Ok(Decoded {
            rec,
            contents_valid: !v1,
        })
    }

    pub(crate) fn totals(&self, budget: u64) -> Totals {
        Totals {
            pieces: self.contents.pieces,
            bytes: self.contents.bytes,
            pinned_bytes: self.contents.pinned_bytes,
            disk_bytes: self.contents.disk_bytes,
            pinned_disk_bytes: self.contents.pinned_disk_bytes,
            budget,
            corrupt_detected: self.corrupt_detected,
            evictions: self.evictions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = StatsRecord {
            contents: Contents {
                pieces: 3,
                bytes: 300,
                pinned_bytes: 100,
                disk_bytes: 4096 * 3,
                pinned_disk_bytes: 4096,
            },
            corrupt_detected: 1,
            evictions: 9,
            clock: 77,
            block: 4096,
        };
        let d = StatsRecord::decode(&r.encode()).unwrap();
        assert_eq!(d.rec, r);
        assert!(d.contents_valid);
        assert!(StatsRecord::decode(&r.encode()[1..]).is_err());
    }

    #[test]
    fn a_version_1_record_keeps_its_counters_and_asks_for_a_recount() {
        let mut v1 = vec![1u8];
        for v in [3u64, 300, 100, 1, 9, 77] {
            v1.extend_from_slice(&v.to_be_bytes());
        }
        let d = StatsRecord::decode(&v1).unwrap();
        assert!(!d.contents_valid);
        assert_eq!(
            (d.rec.corrupt_detected, d.rec.evictions, d.rec.clock),
            (1, 9, 77)
        );
    }
}
