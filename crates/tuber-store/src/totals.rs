//! Persisted totals and counters.
//!
//! They live in the `stats` tree. The totals record is rewritten inside the
//! same transaction as every put, delete and eviction, which is what keeps it
//! equal to the contents after a crash.

use crate::meta::DecodeError;

pub(crate) const TOTALS_KEY: &[u8] = b"totals";

const TOTALS_VERSION: u8 = 1;
const TOTALS_LEN: usize = 1 + 6 * 8;

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
}

impl Contents {
    pub(crate) fn add(&mut self, meta: &crate::meta::PieceMeta) {
        self.pieces += 1;
        self.bytes += meta.size;
        if meta.pinned {
            self.pinned_bytes += meta.size;
        }
    }

    pub(crate) fn remove(&mut self, meta: &crate::meta::PieceMeta) {
        self.pieces = self.pieces.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(meta.size);
        if meta.pinned {
            self.pinned_bytes = self.pinned_bytes.saturating_sub(meta.size);
        }
    }
}

/// A snapshot of the store's totals and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Number of pieces.
    pub pieces: u64,
    /// Sum of piece sizes; never above `budget`.
    pub bytes: u64,
    /// Sum of the sizes of pinned pieces.
    pub pinned_bytes: u64,
    /// The disk budget in piece bytes.
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
        }
    }
}

/// The persisted record: totals without the budget (which is configuration),
/// plus the logical clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StatsRecord {
    pub(crate) contents: Contents,
    pub(crate) corrupt_detected: u64,
    pub(crate) evictions: u64,
    /// The logical access clock: bumped by every put and every read hit.
    pub(crate) clock: u64,
}

impl StatsRecord {
    pub(crate) fn encode(&self) -> [u8; TOTALS_LEN] {
        let mut out = [0u8; TOTALS_LEN];
        out[0] = TOTALS_VERSION;
        let fields = [
            self.contents.pieces,
            self.contents.bytes,
            self.contents.pinned_bytes,
            self.corrupt_detected,
            self.evictions,
            self.clock,
        ];
        for (chunk, v) in out[1..].chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() != TOTALS_LEN || bytes[0] != TOTALS_VERSION {
            return Err(DecodeError("bad totals record"));
        }
        let mut f = bytes[1..]
            .chunks_exact(8)
            .map(|c| c.try_into().map(u64::from_be_bytes).unwrap_or(0));
        let mut next = || f.next().unwrap_or(0);
        Ok(Self {
            contents: Contents {
                pieces: next(),
                bytes: next(),
                pinned_bytes: next(),
            },
            corrupt_detected: next(),
            evictions: next(),
            clock: next(),
        })
    }

    pub(crate) fn totals(&self, budget: u64) -> Totals {
        Totals {
            pieces: self.contents.pieces,
            bytes: self.contents.bytes,
            pinned_bytes: self.contents.pinned_bytes,
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
            },
            corrupt_detected: 1,
            evictions: 9,
            clock: 77,
        };
        assert_eq!(StatsRecord::decode(&r.encode()), Ok(r));
        assert!(StatsRecord::decode(&r.encode()[1..]).is_err());
    }
}
