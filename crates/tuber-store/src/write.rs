//! Mutations of pieces: put with eviction, delete, pinning, budget changes.
//!
//! Each mutation is planned outside sled (which pieces to evict, what the new
//! totals are) and then applied as one multi-tree transaction, so a crash
//! leaves either all of it or none of it. A put writes its piece file before
//! that transaction; a removal deletes files only after it (see `reap`).
//! The budget is spent in footprints: piece sizes rounded up to the block.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use sled::IVec;
use tracing::debug;
use tuber_proto::PieceHash;

use crate::core::{StoreCore, WriteResult, Writes};
use crate::error::{Result, StoreError};
use crate::keys::{check_resource, check_swarm, lru_key, trailing_hash, LRU_KEY_LEN};
use crate::meta::{Owner, PieceMeta};
use crate::room::RECORD_BYTES;
use crate::{MAX_OWNERS, MAX_PIECE_BYTES};

/// Rounds a put or a budget cut may take when it finds a corrupt record on
/// its way (each round deletes one, so this is rarely more than two).
const MAX_ATTEMPTS: usize = 4;

/// Victims per transaction when a budget cut evicts many pieces, so one
/// transaction's write set stays small.
const SHRINK_BATCH: usize = 256;

/// What a successful [`StoreCore::put`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// False if the piece was already stored (the owner was added to it).
    pub added: bool,
    /// Pieces evicted to make room, least valuable first. A peer announces
    /// these as lost.
    pub evicted: Vec<PieceHash>,
}

/// Eviction candidates, least valuable first.
#[derive(Default)]
struct Plan {
    /// With their records as stored (whose `lru` keys they remove).
    victims: Vec<(PieceHash, PieceMeta)>,
    /// Candidates read since their records were written, which the plan
    /// found not to be victims after all: their records as stored, and with
    /// the reads counted (moving their `lru` keys to their true place).
    promoted: Vec<(PieceHash, PieceMeta, PieceMeta)>,
    /// `lru` keys with no matching metadata; removed along the way.
    stale: Vec<IVec>,
    /// A candidate whose metadata did not decode; purge it and plan again.
    corrupt: Option<PieceHash>,
    /// Footprint of the victims.
    freed: u64,
}

/// The bytes an owner's names take in a record or a key.
fn owner_bytes(owner: &Owner) -> u64 {
    (owner.swarm.len() + owner.resource.len()) as u64
}

impl Plan {
    fn hashes(&self) -> Vec<PieceHash> {
        self.victims.iter().map(|(h, _)| *h).collect()
    }

    fn doomed(&self) -> Vec<(PieceHash, u64)> {
        self.victims.iter().map(|(h, m)| (*h, m.size)).collect()
    }

    /// Every piece whose pending reads the plan's writes settle.
    fn settled(&self) -> impl Iterator<Item = PieceHash> + '_ {
        self.victims
            .iter()
            .map(|(h, _)| *h)
            .chain(self.promoted.iter().map(|(h, _, _)| *h))
    }

    /// The writes of the victims' removals and the promotions.
    fn write(&self, w: &Writes<'_>) -> WriteResult {
        for (victim, vmeta) in &self.victims {
            w.remove_piece(victim, vmeta)?;
        }
        for (hash, old, new) in &self.promoted {
            w.replace_meta(hash, old, new)?;
        }
        for key in &self.stale {
            w.lru.remove(key)?;
        }
        Ok(())
    }
}

/// Where a piece stands in the eviction order: the order of `lru` keys.
type Place = (bool, u64, PieceHash);

/// Candidates with pending reads, waiting for their true place in the order.
#[derive(Default)]
struct Waiting {
    queue: BinaryHeap<Reverse<Place>>,
    records: HashMap<PieceHash, (PieceMeta, PieceMeta)>,
}

impl Waiting {
    fn push(&mut self, hash: PieceHash, stored: PieceMeta, merged: PieceMeta) {
        self.queue
            .push(Reverse((merged.pinned, merged.last_access, hash)));
        self.records.insert(hash, (stored, merged));
    }

    /// The next waiting candidate whose true place comes before `before`
    /// (any, with `None`).
    fn pop_before(&mut self, before: Option<(bool, u64)>) -> Option<(PieceHash, PieceMeta)> {
        let Reverse((pinned, access, hash)) = *self.queue.peek()?;
        if before.is_some_and(|b| (pinned, access) >= b) {
            return None;
        }
        self.queue.pop();
        let (stored, _) = self.records.remove(&hash)?;
        Some((hash, stored))
    }
}

fn bug(what: &str) -> StoreError {
    StoreError::Db(sled::Error::ReportableBug(what.to_owned()))
}

impl StoreCore {
    /// Stores a piece after checking that `bytes` hash to `hash`.
    ///
    /// If the piece is already stored, adds `owner` to it (and pins it if
    /// `pinned`). Otherwise makes room by evicting the least valuable pieces:
    /// an unpinned put evicts only unpinned pieces, a pinned put evicts
    /// unpinned ones first and then the least recently used pinned ones. If
    /// the piece cannot fit, fails with [`StoreError::Full`] before evicting
    /// anything.
    pub fn put(
        &mut self,
        hash: &PieceHash,
        bytes: &[u8],
        owner: &Owner,
        pinned: bool,
    ) -> Result<PutOutcome> {
        let size = bytes.len() as u64;
        if size > MAX_PIECE_BYTES {
            return Err(StoreError::PieceTooLarge {
                size,
                max: MAX_PIECE_BYTES,
            });
        }
        check_swarm(&owner.swarm)?;
        check_resource(&owner.resource)?;
        let actual = PieceHash::of(bytes);
        if actual != *hash {
            return Err(StoreError::HashMismatch {
                expected: *hash,
                actual,
            });
        }
        self.guarded(|s| {
            for _ in 0..MAX_ATTEMPTS {
                if let Some(outcome) = s.try_put(hash, bytes, owner, pinned)? {
                    return Ok(outcome);
                }
            }
            Err(bug("put kept finding corrupt records"))
        })
    }

    /// One attempt; `None` means a corrupt record was deleted on the way and
    /// the put must be planned again.
    fn try_put(
        &mut self,
        hash: &PieceHash,
        bytes: &[u8],
        owner: &Owner,
        pinned: bool,
    ) -> Result<Option<PutOutcome>> {
        match self.load_meta(hash) {
            Ok(Some(meta)) => return self.add_owner(hash, meta, owner, pinned).map(Some),
            Ok(None) => {}
            // The stored copy's record was bad and is gone now: store afresh.
            Err(StoreError::Corrupt { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let size = bytes.len() as u64;
        let need = self.footprint(size);
        let c = self.rec.contents;
        // The room can shrink under the pieces (the database grew), so
        // what is over it is evicted too.
        let room = self.piece_room();
        let free = room.saturating_sub(c.disk_bytes);
        let over = c.disk_bytes.saturating_sub(room);
        let evictable = if pinned {
            c.disk_bytes
        } else {
            c.disk_bytes.saturating_sub(c.pinned_disk_bytes)
        };
        let available = room
            .saturating_add(evictable)
            .saturating_sub(c.disk_bytes)
            .min(room);
        if need > available {
            return Err(StoreError::Full {
                needed: need,
                available,
                budget: self.budget,
            });
        }
        let plan = if need > free {
            self.plan_victims(need - free + over, pinned, usize::MAX)?
        } else {
            Plan::default()
        };
        if let Some(bad) = plan.corrupt {
            self.purge_corrupt(&bad, None, "metadata does not decode")?;
            return Ok(None);
        }
        if free.saturating_add(plan.freed) < need {
            // Totals promised room that the index cannot find; scrub repairs.
            return Err(StoreError::Full {
                needed: need,
                available: free.saturating_add(plan.freed),
                budget: self.budget,
            });
        }
        let mut rec = self.rec;
        rec.clock += 1;
        for (_, victim) in &plan.victims {
            rec.contents.remove(victim, self.footprint(victim.size));
        }
        rec.evictions += plan.victims.len() as u64;
        let meta = PieceMeta {
            size,
            owners: vec![owner.clone()],
            last_access: rec.clock,
            hits: 0,
            bytes_served: 0,
            pinned,
        };
        rec.contents.add(&meta, need);
        // The file first: once the transaction commits, the file is whole.
        self.doomed.cancel(hash);
        self.files.write(hash, bytes).map_err(sled::Error::from)?;
        let committed = self.apply(|w| {
            plan.write(w)?;
            w.insert_meta(hash, &meta)?;
            w.write_totals(&rec)
        });
        if let Err(e) = committed {
            // Not recorded, so not kept (the sweep would delete it anyway).
            let _ = self.files.remove(hash);
            return Err(e);
        }
        self.rec = rec;
        self.folded(plan.settled());
        self.doom(plan.doomed());
        // Over the room after a measurement: the next put evicts for it.
        self.note_written(RECORD_BYTES + 2 * owner_bytes(owner));
        self.reap_if_due()?;
        let evicted = plan.hashes();
        if !evicted.is_empty() {
            debug!(%hash, evicted = evicted.len(), "evicted to make room");
        }
        Ok(Some(PutOutcome {
            added: true,
            evicted,
        }))
    }

    fn add_owner(
        &mut self,
        hash: &PieceHash,
        meta: PieceMeta,
        owner: &Owner,
        pinned: bool,
    ) -> Result<PutOutcome> {
        let mut new = self.with_pending(hash, &meta);
        let grows = !new.owners.contains(owner);
        if grows {
            if new.owners.len() >= MAX_OWNERS {
                return Err(StoreError::TooManyOwners {
                    hash: *hash,
                    max: MAX_OWNERS,
                });
            }
            new.owners.push(owner.clone());
        }
        let mut rec = self.rec;
        rec.clock += 1;
        new.last_access = rec.clock;
        if pinned && !meta.pinned {
            new.pinned = true;
            rec.contents
                .set_pinned(meta.size, self.footprint(meta.size), true);
        }
        self.apply(|w| {
            w.replace_meta(hash, &meta, &new)?;
            w.write_totals(&rec)
        })?;
        self.rec = rec;
        self.folded([*hash]);
        // Owners grow the database without a put to evict for them: the
        // record is written again whole, with every owner's names, and the
        // new owner's key.
        let evicted = if grows {
            self.note_written(
                RECORD_BYTES + new.owners.iter().map(owner_bytes).sum::<u64>() + owner_bytes(owner),
            );
            self.shrink_to_budget()?
        } else {
            Vec::new()
        };
        Ok(PutOutcome {
            added: false,
            evicted,
        })
    }

    /// Collects eviction victims until `need` bytes would be freed, or
    /// `max_victims` are found, or the allowed part of the index ends.
    ///
    /// The `lru` index places each piece by its record as stored; a piece
    /// read since then (`access`) belongs further back. Such a candidate
    /// waits, in its true place, while the scan goes on, and is taken only
    /// if the pieces before that place do not free enough; otherwise its
    /// key moves there with the plan's writes. The victims are exactly the
    /// least recently used, while only reads of pieces that reach the front
    /// of the order cost a write.
    fn plan_victims(&self, need: u64, allow_pinned: bool, max_victims: usize) -> Result<Plan> {
        let mut plan = Plan::default();
        let mut waiting = Waiting::default();
        let full = |plan: &Plan| plan.freed >= need || plan.victims.len() >= max_victims;
        let take = |plan: &mut Plan, hash: PieceHash, meta: PieceMeta| {
            plan.freed += self.footprint(meta.size);
            plan.victims.push((hash, meta));
        };
        for key in self.t.lru.iter().keys() {
            if full(&plan) {
                break;
            }
            let key = key?;
            if key.len() == LRU_KEY_LEN && key[0] != 0 && !allow_pinned {
                break;
            }
            let hash = match trailing_hash(&key) {
                Some(hash) if key.len() == LRU_KEY_LEN => hash,
                _ => {
                    plan.stale.push(key);
                    continue;
                }
            };
            let Some(raw) = self.t.meta.get(hash.as_bytes())? else {
                plan.stale.push(key);
                continue;
            };
            let meta = match PieceMeta::decode(&raw) {
                Err(_) => {
                    plan.corrupt = Some(hash);
                    break;
                }
                Ok(meta) if lru_key(meta.pinned, meta.last_access, &hash)[..] != key[..] => {
                    plan.stale.push(key);
                    continue;
                }
                Ok(meta) => meta,
            };
            let here = (meta.pinned, meta.last_access);
            while !full(&plan) {
                let Some((h, m)) = waiting.pop_before(Some(here)) else {
                    break;
                };
                take(&mut plan, h, m);
            }
            if full(&plan) {
                break;
            }
            match self.touches.get(&hash) {
                Some(t) if t.last_access > meta.last_access => {
                    let merged = t.merged(&meta);
                    waiting.push(hash, meta, merged);
                }
                _ => take(&mut plan, hash, meta),
            }
        }
        // The index (or its allowed part) ended: the waiting come next.
        while plan.corrupt.is_none() && !full(&plan) {
            let Some((h, m)) = waiting.pop_before(None) else {
                break;
            };
            take(&mut plan, h, m);
        }
        plan.promoted = waiting
            .records
            .into_iter()
            .map(|(h, (stored, merged))| (h, stored, merged))
            .collect();
        Ok(plan)
    }

    /// Deletes a piece; whether it was stored.
    pub fn delete(&mut self, hash: &PieceHash) -> Result<bool> {
        self.guarded(|s| {
            let meta = match s.load_meta(hash) {
                Ok(Some(meta)) => meta,
                Ok(None) => return Ok(false),
                // Undecodable: deleted (and counted) on the way.
                Err(StoreError::Corrupt { .. }) => return Ok(true),
                Err(e) => return Err(e),
            };
            let mut rec = s.rec;
            rec.contents.remove(&meta, s.footprint(meta.size));
            s.apply(|w| {
                w.remove_piece(hash, &meta)?;
                w.write_totals(&rec)
            })?;
            s.rec = rec;
            s.forget_touches(hash);
            s.doom([(*hash, meta.size)]);
            s.reap_if_due()?;
            Ok(true)
        })
    }

    /// Pins or unpins a stored piece. Pinned pieces survive unpinned puts.
    pub fn set_pinned(&mut self, hash: &PieceHash, pinned: bool) -> Result<()> {
        self.guarded(|s| s.set_pinned_once(hash, pinned))
    }

    fn set_pinned_once(&mut self, hash: &PieceHash, pinned: bool) -> Result<()> {
        let meta = self
            .load_meta(hash)?
            .ok_or(StoreError::NotFound { hash: *hash })?;
        if meta.pinned == pinned {
            return Ok(());
        }
        let new = PieceMeta {
            pinned,
            ..self.with_pending(hash, &meta)
        };
        let mut rec = self.rec;
        rec.contents
            .set_pinned(meta.size, self.footprint(meta.size), pinned);
        self.apply(|w| {
            w.replace_meta(hash, &meta, &new)?;
            w.write_totals(&rec)
        })?;
        self.rec = rec;
        self.folded([*hash]);
        Ok(())
    }

    /// Changes the budget. Shrinking evicts unpinned pieces, then pinned ones,
    /// least recently used first, until the store fits; returns the evicted.
    pub fn set_budget(&mut self, budget_bytes: u64) -> Result<Vec<PieceHash>> {
        self.budget = budget_bytes;
        self.guarded(|s| s.shrink_to_budget())
    }

    pub(crate) fn shrink_to_budget(&mut self) -> Result<Vec<PieceHash>> {
        let mut evicted = Vec::new();
        let mut setbacks = 0;
        while self.rec.contents.disk_bytes > self.piece_room() {
            if setbacks >= MAX_ATTEMPTS {
                return Err(bug("eviction index out of step with totals; run scrub"));
            }
            let plan = self.plan_victims(
                self.rec.contents.disk_bytes - self.piece_room(),
                true,
                SHRINK_BATCH,
            )?;
            if let Some(bad) = plan.corrupt {
                self.purge_corrupt(&bad, None, "metadata does not decode")?;
                setbacks += 1;
                continue;
            }
            let touched = plan.hashes();
            if touched.is_empty() && plan.stale.is_empty() {
                setbacks += 1;
                self.fix_totals()?;
                continue;
            }
            let mut rec = self.rec;
            for (_, victim) in &plan.victims {
                rec.contents.remove(victim, self.footprint(victim.size));
            }
            rec.evictions += plan.victims.len() as u64;
            self.apply(|w| {
                plan.write(w)?;
                w.write_totals(&rec)
            })?;
            self.rec = rec;
            self.folded(plan.settled());
            self.doom(plan.doomed());
            self.reap_if_due()?;
            evicted.extend(touched);
        }
        if !evicted.is_empty() {
            debug!(
                evicted = evicted.len(),
                budget = self.budget,
                "evicted down to the budget"
            );
        }
        Ok(evicted)
    }
}
