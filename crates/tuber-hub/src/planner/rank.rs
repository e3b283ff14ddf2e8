//! Answering `want`: which peers to try, best first.
//!
//! **Candidates**: connected peers other than the asker that hold at least
//! one of the wanted pieces (the first [`MAX_HASHES_PER_MESSAGE`] of the
//! list; the rest is ignored). Every trusted permanent holder is seen; of the
//! other holders of one piece at most [`MAX_SCANNED_PER_PIECE`] are sampled
//! (an arbitrary subset), so that a piece held by a whole stadium costs a
//! bounded amount of work.
//!
//! **Rank key**, compared in this order:
//! 1. tier: trusted permanent peers first, everyone else after;
//! 2. upload bucket, higher first: `floor(log2(1 + U))` where `U` is the
//!    bytes other peers reported receiving from the peer (`down` in their
//!    reports), decayed with a half-life of `upload_half_life`; peers within a
//!    factor of two of each other tie, so that
//! 3. longevity decides: connected longer (earlier join) first;
//! 4. peer id, for determinism.
//!
//! **Selection** (at most [`MAX_PROVIDERS`], and only as many as fit in one
//! signaling frame):
//! 1. coverage pass: candidates in order of tier, then most wanted pieces
//!    held, then rank key; a candidate is taken if it holds a wanted piece that
//!    no candidate taken so far holds. Peers holding many of the wanted pieces
//!    come first, and the only holder of a piece is never starved by
//!    better-ranked peers that hold other pieces;
//! 2. fill pass: the remaining candidates by rank key, while room is left.
//!
//! The answer lists the chosen providers by rank key (trusted permanent
//! first), each with the indices (into the `want` list) of the pieces it
//! holds.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Instant;

use tuber_proto::limits::{MAX_HASHES_PER_MESSAGE, MAX_PROVIDERS, MAX_SIGNAL_FRAME};
use tuber_proto::signal::{Provider, Role};
use tuber_proto::{PeerId, PieceHash};

use super::Planner;

/// Non-trusted holders of one piece looked at per `want`.
pub const MAX_SCANNED_PER_PIECE: usize = 1024;

/// Bytes of a `providers` message besides its providers (≥ the real 52).
const MESSAGE_OVERHEAD: usize = 64;

struct Candidate {
    peer: PeerId,
    role: Role,
    trusted: bool,
    tier: u8,
    bucket: u32,
    joined_at: Instant,
    pieces: Vec<u32>,
}

impl Candidate {
    fn rank_cmp(&self, other: &Self) -> Ordering {
        self.tier
            .cmp(&other.tier)
            .then(other.bucket.cmp(&self.bucket))
            .then(self.joined_at.cmp(&other.joined_at))
            .then(self.peer.cmp(&other.peer))
    }

    fn coverage_cmp(&self, other: &Self) -> Ordering {
        self.tier
            .cmp(&other.tier)
            .then(other.pieces.len().cmp(&self.pieces.len()))
            .then_with(|| self.rank_cmp(other))
    }

    /// Exact length of this provider in compact JSON, plus a separating comma.
    fn json_len(&self) -> usize {
        let role = match self.role {
            Role::Browser => "browser".len(),
            Role::Permanent => "permanent".len(),
        };
        let trusted = if self.trusted { 4 } else { 5 };
        let indices: usize = self.pieces.iter().map(|&i| digits(i) + 1).sum();
        // {"peer":"<64>","role":"<role>","trusted":<bool>,"pieces":[<indices>]},
        9 + 64 + 10 + role + 12 + trusted + 11 + indices + 2 + 1
    }

    fn into_provider(self) -> Provider {
        Provider {
            peer: self.peer,
            role: self.role,
            trusted: self.trusted,
            pieces: self.pieces,
        }
    }
}

fn digits(mut n: u32) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Upload bucket of a decayed byte count.
pub(super) fn upload_bucket(bytes: f64) -> u32 {
    // `as` saturates (and maps NaN to 0).
    (1.0 + bytes.max(0.0)).log2().floor() as u32
}

impl Planner {
    /// The providers for `asker` of `pieces`, ranked (see the module docs).
    pub(super) fn rank_providers(
        &self,
        now: Instant,
        asker: &PeerId,
        pieces: &[PieceHash],
    ) -> Vec<Provider> {
        let pieces = &pieces[..pieces.len().min(MAX_HASHES_PER_MESSAGE)];
        let mut held: HashMap<PeerId, Vec<u32>> = HashMap::new();
        for (i, piece) in pieces.iter().enumerate() {
            let Some(holders) = self.holdings.holders(piece) else {
                continue;
            };
            let others = holders.others.iter().take(MAX_SCANNED_PER_PIECE);
            for peer in holders.pinned.iter().chain(others) {
                if peer != asker {
                    held.entry(*peer).or_default().push(i as u32);
                }
            }
        }
        let half_life = self.config.upload_half_life;
        let mut cands: Vec<Candidate> = held
            .into_iter()
            .filter_map(|(peer, pieces)| {
                let p = self.peers.get(&peer)?;
                let pinned = p.is_pinned();
                Some(Candidate {
                    peer,
                    role: p.role,
                    trusted: p.trusted,
                    tier: u8::from(!pinned),
                    bucket: upload_bucket(p.upload.value(now, half_life)),
                    joined_at: p.joined_at,
                    pieces,
                })
            })
            .collect();
        select(&mut cands)
    }
}

/// Chooses and orders providers among `cands` (see the module docs).
fn select(cands: &mut Vec<Candidate>) -> Vec<Provider> {
    let mut budget = MAX_SIGNAL_FRAME - MESSAGE_OVERHEAD;
    let mut chosen = vec![false; cands.len()];
    let mut taken = 0;
    let mut covered = [false; MAX_HASHES_PER_MESSAGE];
    cands.sort_by(Candidate::coverage_cmp);
    for (k, c) in cands.iter().enumerate() {
        if taken == MAX_PROVIDERS {
            break;
        }
        let new = c.pieces.iter().any(|&i| !covered[i as usize]);
        let len = c.json_len();
        if new && len <= budget {
            for &i in &c.pieces {
                covered[i as usize] = true;
            }
            chosen[k] = true;
            taken += 1;
            budget -= len;
        }
    }
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| cands[a].rank_cmp(&cands[b]));
    for &k in &order {
        if taken == MAX_PROVIDERS {
            break;
        }
        let len = cands[k].json_len();
        if !chosen[k] && len <= budget {
            chosen[k] = true;
            taken += 1;
            budget -= len;
        }
    }
    let mut out: Vec<Candidate> = std::mem::take(cands)
        .into_iter()
        .zip(chosen)
        .filter_map(|(c, keep)| keep.then_some(c))
        .collect();
    out.sort_by(Candidate::rank_cmp);
    out.into_iter().map(Candidate::into_provider).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_buckets() {
        assert_eq!(digits(0), 1);
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
        assert_eq!(digits(511), 3);
        assert_eq!(digits(u32::MAX), 10);
        assert_eq!(upload_bucket(0.0), 0);
        assert_eq!(upload_bucket(1.0), 1);
        assert_eq!(upload_bucket(1023.0), 10);
        assert_eq!(upload_bucket(f64::NAN), 0);
        assert_eq!(upload_bucket(f64::INFINITY), u32::MAX);
    }
}
