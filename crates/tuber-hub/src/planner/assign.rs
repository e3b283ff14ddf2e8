//! Partition assignment by weighted rendezvous (HRW) hashing.
//!
//! Every manifest of `n` pieces is cut into partitions of `P` consecutive
//! pieces (`P` = [`PlannerConfig::partition_pieces`]): partition `i` is the
//! piece range `[i·P, min((i+1)·P, n))`. Each partition is held by the
//! `R` members (trusted permanent peers with a positive weight) with the
//! highest score
//!
//! `score(peer, m, i) = weight(peer) / −ln(u)`, with `u ∈ (0, 1)` from the
//! first 52 bits `k` of `SHA-256(peer id ‖ manifest id ‖ i as u32 big-endian)`:
//! `u = (k + ½) / 2^52`,
//!
//! ties broken by the larger peer id. This is the weighted rendezvous hash of
//! Schindelhauer and Schomaker. For `R = 1` a member's expected share of the
//! partitions is exactly its weight over the sum of weights. For `R > 1` the
//! top R is an exponential race without replacement (Plackett–Luce), and
//! shares are compressed toward uniform, since no peer holds two replicas of
//! a partition: weights 1:2:3:4 with `R = 2` give replica shares of about
//! 11.7 / 22.1 / 30.4 / 35.8 % instead of 10 / 20 / 30 / 40 % (the best-score
//! replicas alone do follow the weights). Exact shares for `R > 1` would need
//! weights corrected for the whole membership, and every join or leave would
//! then move partitions between peers that stayed; we keep minimal movement:
//! a membership change moves only the partitions that the joiner takes or
//! the leaver held. The owners of every partition are always exactly the top
//! `min(R, members)` by score; the functions here keep that invariant
//! incrementally and record each change in `Changes` (`changes.rs`), which nets an
//! assignment out against an unassignment of the same partition (a leave then
//! a rejoin within one input emits nothing).
//!
//! [`PlannerConfig::partition_pieces`]: super::PlannerConfig::partition_pieces

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::changes::Changes;

use sha2::{Digest, Sha256};
use tuber_proto::limits::MAX_PIECES;
use tuber_proto::signal::{HubToClient, Validate};
use tuber_proto::{LimitError, ManifestId, PeerId};

/// Why `handle_content` refused a resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// The resource path would not pass the `assign` message's rules.
    #[error("resource path refused: {0}")]
    BadResource(LimitError),
    /// More pieces than a manifest may have.
    #[error("{0} pieces, more than the limit of {MAX_PIECES}")]
    TooManyPieces(u32),
    /// The planner already tracks `max_partitions` partitions.
    #[error("the planner tracks {0} partitions already, its limit")]
    Full(usize),
}

/// The HRW score of `peer` for partition `partition` of `manifest`:
/// `weight / −ln(u)`, `u = (k + ½) / 2^52` where `k` is the first 52 bits of
/// `SHA-256(peer id ‖ manifest id ‖ partition as u32 big-endian)`. The top
/// `replication` scores among the members hold the partition (ties: larger
/// peer id).
pub fn hrw_score(peer: &PeerId, manifest: &ManifestId, partition: u32, weight: f64) -> f64 {
    let mut h = Sha256::new();
    h.update(peer.as_bytes());
    h.update(manifest.as_bytes());
    h.update(partition.to_be_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 52 bits, so that k + ½ is exact and u < 1 (−ln u > 0).
    let k = u64::from_be_bytes(first) >> 12;
    let u = (k as f64 + 0.5) / (1u64 << 52) as f64;
    weight / -u.ln()
}

#[derive(Debug, Clone, Copy)]
struct Owner {
    peer: PeerId,
    score: f64,
}

/// Orders by score, then peer id: `Greater` wins.
fn rank(a: (f64, &PeerId), b: (f64, &PeerId)) -> Ordering {
    a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

#[derive(Debug)]
struct Entry {
    resource: String,
    piece_count: u32,
    /// Per partition, its owners (unordered, at most R).
    owners: Vec<Vec<Owner>>,
}

impl Entry {
    /// What a message about this entry needs: resource and piece count.
    fn meta(&self) -> (&str, u32) {
        (&self.resource, self.piece_count)
    }
}

/// Content known to the planner, its partitions' owners, and the members.
#[derive(Debug, Default)]
pub(super) struct Content {
    manifests: BTreeMap<ManifestId, Entry>,
    by_resource: HashMap<String, ManifestId>,
    /// Members (eligible peers) and their weights.
    members: BTreeMap<PeerId, f64>,
    /// Per member, the partitions it owns.
    by_peer: HashMap<PeerId, BTreeSet<(ManifestId, u32)>>,
    partitions: usize,
}

impl Content {
    /// Adds (or replaces) a resource's manifest and assigns its partitions.
    pub fn insert(
        &mut self,
        resource: String,
        manifest: ManifestId,
        piece_count: u32,
        cfg: (u32, u32, usize),
        changes: &mut Changes,
    ) -> Result<(), ContentError> {
        let (size, replication, max_partitions) = cfg;
        let probe = HubToClient::Assign {
            partition: 0,
            resource: resource.clone(),
            manifest,
            ranges: Vec::new(),
        };
        probe.validate().map_err(ContentError::BadResource)?;
        if piece_count as usize > MAX_PIECES {
            return Err(ContentError::TooManyPieces(piece_count));
        }
        if self.manifests.contains_key(&manifest) {
            return Ok(());
        }
        let count = piece_count.div_ceil(size) as usize;
        let replaced = self.by_resource.get(&resource).copied();
        let freed = replaced
            .and_then(|m| self.manifests.get(&m))
            .map_or(0, |e| e.owners.len());
        if self.partitions - freed + count > max_partitions {
            return Err(ContentError::Full(self.partitions));
        }
        if let Some(old) = replaced {
            self.remove(&old, changes);
        }
        let mut entry = Entry {
            resource: resource.clone(),
            piece_count,
            owners: Vec::with_capacity(count),
        };
        for i in 0..count as u32 {
            let mut scored: Vec<Owner> = self
                .members
                .iter()
                .map(|(peer, &w)| Owner {
                    peer: *peer,
                    score: hrw_score(peer, &manifest, i, w),
                })
                .collect();
            scored.sort_by(|a, b| rank((b.score, &b.peer), (a.score, &a.peer)));
            scored.truncate(replication as usize);
            for o in &scored {
                self.by_peer
                    .entry(o.peer)
                    .or_default()
                    .insert((manifest, i));
                changes.record(o.peer, manifest, entry.meta(), i, true);
            }
            entry.owners.push(scored);
        }
        self.partitions += count;
        self.by_resource.insert(resource, manifest);
        self.manifests.insert(manifest, entry);
        Ok(())
    }

    /// Forgets a manifest; its owners are told to unassign it.
    pub fn remove(&mut self, manifest: &ManifestId, changes: &mut Changes) -> bool {
        let Some(entry) = self.manifests.remove(manifest) else {
            return false;
        };
        self.partitions -= entry.owners.len();
        if self.by_resource.get(&entry.resource) == Some(manifest) {
            self.by_resource.remove(&entry.resource);
        }
        for (i, owners) in entry.owners.iter().enumerate() {
            for o in owners {
                self.unown(o.peer, *manifest, i as u32);
                changes.record(o.peer, *manifest, entry.meta(), i as u32, false);
            }
        }
        true
    }

    /// Makes `peer` a member of weight `weight` (> 0): it takes every
    /// partition where it now ranks in the top R. A member whose weight
    /// changed is removed and added again (the changes net out).
    pub fn add_member(
        &mut self,
        peer: PeerId,
        weight: f64,
        replication: u32,
        changes: &mut Changes,
    ) {
        match self.members.get(&peer) {
            Some(&w) if w == weight => return,
            Some(_) => self.remove_member(peer, changes),
            None => {}
        }
        self.members.insert(peer, weight);
        let r = replication as usize;
        for (m, entry) in &mut self.manifests {
            for i in 0..entry.owners.len() {
                let score = hrw_score(&peer, m, i as u32, weight);
                let owners = &mut entry.owners[i];
                if owners.len() < r {
                    owners.push(Owner { peer, score });
                } else {
                    let Some((k, weakest)) = owners
                        .iter()
                        .enumerate()
                        .min_by(|a, b| rank((a.1.score, &a.1.peer), (b.1.score, &b.1.peer)))
                        .map(|(k, o)| (k, *o))
                    else {
                        continue;
                    };
                    if rank((score, &peer), (weakest.score, &weakest.peer)) != Ordering::Greater {
                        continue;
                    }
                    owners[k] = Owner { peer, score };
                    if let Some(set) = self.by_peer.get_mut(&weakest.peer) {
                        set.remove(&(*m, i as u32));
                    }
                    changes.record(weakest.peer, *m, entry.meta(), i as u32, false);
                }
                self.by_peer.entry(peer).or_default().insert((*m, i as u32));
                changes.record(peer, *m, entry.meta(), i as u32, true);
            }
        }
    }

    /// Removes `peer` from the members (if it was one): each of its
    /// partitions goes to the best-scoring member that does not hold it yet.
    pub fn remove_member(&mut self, peer: PeerId, changes: &mut Changes) {
        if self.members.remove(&peer).is_none() {
            return;
        }
        let owned = self.by_peer.remove(&peer).unwrap_or_default();
        for (m, i) in owned {
            let Some(entry) = self.manifests.get_mut(&m) else {
                continue;
            };
            let Some(owners) = entry.owners.get_mut(i as usize) else {
                continue;
            };
            owners.retain(|o| o.peer != peer);
            let best = self
                .members
                .iter()
                .filter(|(p, _)| !owners.iter().any(|o| o.peer == **p))
                .map(|(p, &w)| Owner {
                    peer: *p,
                    score: hrw_score(p, &m, i, w),
                })
                .max_by(|a, b| rank((a.score, &a.peer), (b.score, &b.peer)));
            if let Some(b) = best {
                owners.push(b);
                self.by_peer.entry(b.peer).or_default().insert((m, i));
                changes.record(b.peer, m, entry.meta(), i, true);
            }
            // The leaver is gone: no `unassign` for it. Recorded anyway so
            // that a remove-then-add in one input nets out.
            changes.record(peer, m, entry.meta(), i, false);
        }
    }

    fn unown(&mut self, peer: PeerId, m: ManifestId, i: u32) {
        if let Some(set) = self.by_peer.get_mut(&peer) {
            set.remove(&(m, i));
            if set.is_empty() {
                self.by_peer.remove(&peer);
            }
        }
    }

    /// The partitions `peer` owns, in (manifest, partition) order.
    pub fn assignments(&self, peer: &PeerId) -> Vec<(ManifestId, u32)> {
        self.by_peer
            .get(peer)
            .map_or_else(Vec::new, |s| s.iter().copied().collect())
    }

    /// How many partitions `peer` owns.
    pub fn assignment_count(&self, peer: &PeerId) -> usize {
        self.by_peer.get(peer).map_or(0, BTreeSet::len)
    }

    /// The owners of one partition, best score first.
    pub fn owners(&self, manifest: &ManifestId, partition: u32) -> Vec<PeerId> {
        let Some(owners) = self
            .manifests
            .get(manifest)
            .and_then(|e| e.owners.get(partition as usize))
        else {
            return Vec::new();
        };
        let mut v = owners.clone();
        v.sort_by(|a, b| rank((b.score, &b.peer), (a.score, &a.peer)));
        v.into_iter().map(|o| o.peer).collect()
    }

    /// Partitions of `manifest` (None: unknown).
    pub fn partition_count(&self, manifest: &ManifestId) -> Option<u32> {
        self.manifests.get(manifest).map(|e| e.owners.len() as u32)
    }

    /// Partitions over all content.
    pub fn total_partitions(&self) -> usize {
        self.partitions
    }

    /// Manifests known.
    pub fn manifest_count(&self) -> usize {
        self.manifests.len()
    }

    /// Whether `peer` is a member.
    pub fn is_member(&self, peer: &PeerId) -> bool {
        self.members.contains_key(peer)
    }

    /// The members.
    pub fn members(&self) -> impl Iterator<Item = &PeerId> {
        self.members.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_positive_and_finite() {
        let p = PeerId::from_bytes([1; 32]);
        let m = ManifestId::from_bytes([2; 32]);
        for i in 0..1000 {
            let s = hrw_score(&p, &m, i, 1.0);
            assert!(s.is_finite() && s > 0.0);
        }
    }
}
