//! Read bookkeeping: reads cost an append, not a rewrite of the piece's
//! records.
//!
//! Every hit moves a piece in the eviction order and bumps its counters.
//! Written to sled as they happen, a read rewrites the piece's metadata and
//! moves its `lru` key (three sled writes): more than reading and hashing a
//! 16 KiB piece, and that cost stays even when reads are batched, because a
//! peer streaming a file reads each piece once. So a read only goes into an
//! in-memory table of pending reads, and into a read log in sled that costs
//! one record per [`LOG_BATCH`] reads (40 bytes a read). A piece's own
//! records are rewritten ("folded") only when something needs them:
//!
//! - eviction: a candidate at the front of the `lru` index with a pending
//!   read is not the victim it looks like; the planner takes it in its true
//!   place in the order and moves its key there (`write::plan_victims`), so
//!   eviction stays exact least-recently-used while only pieces that reach
//!   the front of the order pay for their reads;
//! - a mutation of that piece (put of a new owner, pinning), which folds it;
//! - when the table holds `Config::pending_reads` pieces, or the log four
//!   times as many reads: everything is folded and the log emptied.
//!
//! [`StoreCore::meta`] answers with the pending reads included. The log is
//! written when a record fills, on `flush` and at close, and replayed at
//! open; a kill -9 loses at most the last record's reads (and what sled had
//! not yet made durable) from the order and the counters, never a piece,
//! and the totals still equal the contents.

use std::collections::HashMap;

use sled::IVec;
use tracing::warn;
use tuber_proto::PieceHash;

use crate::core::StoreCore;
use crate::error::Result;
use crate::keys::hash_from_key;
use crate::meta::PieceMeta;

/// Reads per log record.
const LOG_BATCH: usize = 1024;
/// Logged reads, per pending piece allowed, before everything is folded and
/// the log emptied: bounds the log when a few pieces are read very often.
const LOGGED_PER_PENDING: u64 = 4;
const LOG_VERSION: u8 = 1;
const ENTRY_LEN: usize = 32 + 8;

/// Reads of one piece not yet folded into its records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Touch {
    pub(crate) hits: u64,
    pub(crate) last_access: u64,
}

impl Touch {
    /// `stored` with these reads counted.
    pub(crate) fn merged(self, stored: &PieceMeta) -> PieceMeta {
        PieceMeta {
            last_access: self.last_access.max(stored.last_access),
            hits: stored.hits.saturating_add(self.hits),
            bytes_served: stored
                .bytes_served
                .saturating_add(self.hits.saturating_mul(stored.size)),
            ..stored.clone()
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Touches {
    pending: HashMap<PieceHash, Touch>,
    /// Reads not yet in a log record: hash and clock.
    unlogged: Vec<(PieceHash, u64)>,
    /// Key of the next log record.
    next_seq: u64,
    /// Reads in log records.
    logged: u64,
}

impl Touches {
    /// The pending reads of a piece.
    pub(crate) fn get(&self, hash: &PieceHash) -> Option<Touch> {
        self.pending.get(hash).copied()
    }

    fn add(&mut self, hash: PieceHash, clock: u64) {
        let t = self.pending.entry(hash).or_insert(Touch {
            hits: 0,
            last_access: clock,
        });
        t.hits += 1;
        t.last_access = t.last_access.max(clock);
    }
}

fn encode_record(reads: &[(PieceHash, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + reads.len() * ENTRY_LEN);
    out.push(LOG_VERSION);
    for (hash, clock) in reads {
        out.extend_from_slice(hash.as_bytes());
        out.extend_from_slice(&clock.to_be_bytes());
    }
    out
}

fn decode_record(raw: &[u8]) -> Option<Vec<(PieceHash, u64)>> {
    let (&version, body) = raw.split_first()?;
    if version != LOG_VERSION || body.len() % ENTRY_LEN != 0 {
        return None;
    }
    body.chunks_exact(ENTRY_LEN)
        .map(|e| {
            let hash = hash_from_key(&e[..32])?;
            let clock = u64::from_be_bytes(e[32..].try_into().ok()?);
            Some((hash, clock))
        })
        .collect()
}

fn seq_of(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

impl StoreCore {
    /// Records a read of `hash` at the next tick of the clock.
    pub(crate) fn touch(&mut self, hash: &PieceHash) -> Result<()> {
        self.rec.clock += 1;
        let clock = self.rec.clock;
        self.touches.add(*hash, clock);
        self.touches.unlogged.push((*hash, clock));
        if self.touches.unlogged.len() >= LOG_BATCH {
            self.log_touches()?;
        }
        if self.fold_due() {
            self.fold_all()?;
        }
        Ok(())
    }

    fn fold_due(&self) -> bool {
        let max = self.config.pending_reads.max(1);
        self.touches.pending.len() >= max
            || self.touches.logged >= LOGGED_PER_PENDING.saturating_mul(max as u64)
    }

    /// Writes the reads not yet logged as one log record (with the totals,
    /// whose clock they advanced).
    pub(crate) fn log_touches(&mut self) -> Result<()> {
        if self.touches.unlogged.is_empty() {
            return Ok(());
        }
        let record = encode_record(&self.touches.unlogged);
        let seq = self.touches.next_seq;
        let rec = self.rec;
        self.t.reads.insert(seq.to_be_bytes(), record)?;
        self.apply(|w| w.write_totals(&rec))?;
        self.touches.next_seq += 1;
        self.touches.logged += self.touches.unlogged.len() as u64;
        self.touches.unlogged.clear();
        Ok(())
    }

    /// A piece's stored metadata with its pending reads counted: what a
    /// mutation writes (and then calls [`StoreCore::folded`]).
    pub(crate) fn with_pending(&self, hash: &PieceHash, stored: &PieceMeta) -> PieceMeta {
        match self.touches.get(hash) {
            Some(t) => t.merged(stored),
            None => stored.clone(),
        }
    }

    /// The pending reads of pieces whose records were just rewritten with
    /// them counted (or removed) are done.
    pub(crate) fn folded(&mut self, hashes: impl IntoIterator<Item = PieceHash>) {
        for h in hashes {
            self.touches.pending.remove(&h);
        }
    }

    /// Writes every pending read into the metadata and the `lru` index, then
    /// empties the log.
    pub(crate) fn fold_all(&mut self) -> Result<()> {
        self.log_touches()?;
        let mut changes = Vec::with_capacity(self.touches.pending.len());
        for (hash, t) in &self.touches.pending {
            // A piece removed since its reads were pending has nothing to fold.
            let Some(raw) = self.t.meta.get(hash.as_bytes())? else {
                continue;
            };
            // An undecodable record is the next read's or scrub's to purge.
            if let Ok(stored) = PieceMeta::decode(&raw) {
                let new = t.merged(&stored);
                changes.push((*hash, stored, new));
            }
        }
        let rec = self.rec;
        self.apply(|w| {
            for (hash, old, new) in &changes {
                w.replace_meta(hash, old, new)?;
            }
            w.write_totals(&rec)
        })?;
        self.touches.pending.clear();
        let keys: Vec<IVec> = self.t.reads.iter().keys().collect::<sled::Result<_>>()?;
        for key in keys {
            self.t.reads.remove(key)?;
        }
        self.touches.logged = 0;
        Ok(())
    }

    /// Reads the log back at open: the reads of the last session (or of one
    /// that crashed) become pending again.
    ///
    /// A logged read is pending if it came after the piece's record was
    /// last written: every write of a record (a fold, a mutation, a new put
    /// of the piece) stamps it with the clock of that moment, which is past
    /// every read it counted; so a read the record already counts, or one
    /// of an earlier copy of the piece, is not counted again, whether or not
    /// a crash kept its log record.
    pub(crate) fn replay_touches(&mut self) -> Result<()> {
        let mut next_seq = 0;
        let mut logged = 0;
        let mut bad = 0u64;
        // Each piece's record stamp, looked up once.
        let mut stamps: HashMap<PieceHash, Option<u64>> = HashMap::new();
        for item in self.t.reads.iter() {
            let (key, raw) = item?;
            let Some(seq) = seq_of(&key) else {
                bad += 1;
                continue;
            };
            next_seq = seq.saturating_add(1).max(next_seq);
            let Some(reads) = decode_record(&raw) else {
                bad += 1;
                continue;
            };
            for (hash, clock) in reads {
                let stamp = match stamps.get(&hash) {
                    Some(s) => *s,
                    None => {
                        let raw = self.t.meta.get(hash.as_bytes())?;
                        let s = raw
                            .and_then(|r| PieceMeta::decode(&r).ok())
                            .map(|m| m.last_access);
                        stamps.insert(hash, s);
                        s
                    }
                };
                if stamp.is_some_and(|s| clock > s) {
                    self.touches.add(hash, clock);
                    self.rec.clock = self.rec.clock.max(clock);
                }
                logged += 1;
            }
        }
        if bad > 0 {
            // Only reads' effect on the order is lost with them.
            warn!(records = bad, "read log records unreadable; skipped");
        }
        self.touches.next_seq = next_seq;
        self.touches.logged = logged;
        if self.fold_due() {
            self.fold_all()?;
        }
        Ok(())
    }

    /// Forgets pending reads: after a rebuild, which starts from what sled
    /// holds (its log is not copied).
    pub(crate) fn drop_touches(&mut self) {
        self.touches = Touches::default();
    }

    /// Forgets the reads of a piece being removed (its log entries are older
    /// than any record it may get again).
    pub(crate) fn forget_touches(&mut self, hash: &PieceHash) {
        self.touches.pending.remove(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_round_trip_and_damage_is_refused() {
        let reads = vec![(PieceHash::of(b"a"), 7), (PieceHash::of(b"b"), u64::MAX)];
        let raw = encode_record(&reads);
        assert_eq!(decode_record(&raw), Some(reads));
        assert_eq!(decode_record(&raw[..raw.len() - 1]), None);
        assert_eq!(decode_record(&[]), None);
        let mut other = raw.clone();
        other[0] = 2;
        assert_eq!(decode_record(&other), None);
        assert_eq!(decode_record(&[LOG_VERSION]), Some(vec![]));
    }
}
