//! Introductions: which providers the planner named to a peer for which
//! piece (its `want` answered by `providers`).
//!
//! A `report` may blame any peer id for any piece; the planner cannot see
//! the transfer, but it knows whom it sent the reporter to. So a blame
//! counts only for a (provider, piece) pair the planner introduced that
//! reporter to, recently: a client that was never sent to an honest peer
//! cannot blame it, however many networks it reports from.
//!
//! Each connected peer keeps its own record, bounded by
//! `max_introductions_per_peer` pairs (its oldest pieces forgotten first)
//! and `introduction_memory` of age, and dropped when it leaves. A peer
//! that asks for a flood of pieces only forgets its own introductions.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use tuber_proto::limits::MAX_PROVIDERS;
use tuber_proto::{PeerId, PieceHash};

/// Providers remembered per piece: two full answers' worth, so asking
/// again (after a busy provider) adds the new ones without unbounded growth.
pub(super) const MAX_PROVIDERS_PER_PIECE: usize = 2 * MAX_PROVIDERS;

#[derive(Debug)]
struct Intro {
    at: Instant,
    providers: Vec<PeerId>,
}

/// One peer's introductions, with an age index for expiry and eviction.
#[derive(Debug, Default)]
pub(super) struct Introductions {
    by_piece: HashMap<PieceHash, Intro>,
    by_age: BTreeSet<(Instant, PieceHash)>,
    /// Sum of `providers.len()` over all pieces.
    pairs: usize,
    /// Per named provider: for how many pieces, and when it was last named
    /// (what the hub's relay asks: may this peer dial that one?).
    named: HashMap<PeerId, (usize, Instant)>,
}

impl Introductions {
    /// The planner named `providers` for `piece` at `now`. Keeps at most
    /// `max_pairs` pairs, forgetting the pieces introduced longest ago.
    pub fn record(
        &mut self,
        now: Instant,
        piece: PieceHash,
        providers: impl IntoIterator<Item = PeerId>,
        max_pairs: usize,
    ) {
        let intro = self.by_piece.entry(piece).or_insert_with(|| Intro {
            at: now,
            providers: Vec::new(),
        });
        self.by_age.remove(&(intro.at, piece));
        intro.at = intro.at.max(now);
        let at = intro.at;
        let before = intro.providers.len();
        for p in providers {
            if !intro.providers.contains(&p) {
                if intro.providers.len() >= MAX_PROVIDERS_PER_PIECE {
                    // The oldest named provider makes room for the newest.
                    let old = intro.providers.remove(0);
                    unname(&mut self.named, &old);
                }
                intro.providers.push(p);
                self.named.entry(p).or_insert((0, at)).0 += 1;
            }
            if let Some(n) = self.named.get_mut(&p) {
                n.1 = n.1.max(at);
            }
        }
        self.pairs = self.pairs - before + intro.providers.len();
        self.by_age.insert((intro.at, piece));
        while self.pairs > max_pairs {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.forget(&oldest);
        }
    }

    /// Whether `provider` was named for any piece within `memory` of `now`.
    pub fn names(&self, now: Instant, provider: &PeerId, memory: Duration) -> bool {
        self.named
            .get(provider)
            .is_some_and(|&(_, at)| now.saturating_duration_since(at) <= memory)
    }

    fn forget(&mut self, piece: &PieceHash) {
        if let Some(gone) = self.by_piece.remove(piece) {
            self.pairs -= gone.providers.len();
            for p in &gone.providers {
                unname(&mut self.named, p);
            }
        }
    }

    /// Whether `provider` was named for `piece` within `memory` of `now`.
    pub fn contains(
        &self,
        now: Instant,
        provider: &PeerId,
        piece: &PieceHash,
        memory: Duration,
    ) -> bool {
        self.by_piece.get(piece).is_some_and(|i| {
            now.saturating_duration_since(i.at) <= memory && i.providers.contains(provider)
        })
    }

    /// Forgets introductions older than `memory`.
    pub fn prune(&mut self, now: Instant, memory: Duration) {
        while let Some(&(at, piece)) = self.by_age.first() {
            if now.saturating_duration_since(at) <= memory {
                break;
            }
            self.by_age.pop_first();
            self.forget(&piece);
        }
    }

    /// (provider, piece) pairs remembered.
    pub fn len(&self) -> usize {
        self.pairs
    }
}

/// One piece fewer names `provider`.
fn unname(named: &mut HashMap<PeerId, (usize, Instant)>, provider: &PeerId) {
    if let Some(n) = named.get_mut(provider) {
        n.0 -= 1;
        if n.0 == 0 {
            named.remove(provider);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn x(n: u8) -> PieceHash {
        PieceHash::from_bytes([n; 32])
    }

    #[test]
    fn remembers_pairs_and_forgets_by_age_and_volume() {
        let t0 = Instant::now();
        let mem = Duration::from_secs(60);
        let mut i = Introductions::default();
        i.record(t0, x(1), [p(1), p(2)], 64);
        assert!(i.contains(t0, &p(1), &x(1), mem));
        assert!(!i.contains(t0, &p(3), &x(1), mem), "not named");
        assert!(!i.contains(t0, &p(1), &x(2), mem), "not for that piece");
        assert!(!i.contains(t0 + Duration::from_secs(61), &p(1), &x(1), mem));
        // Asking again adds providers and refreshes the age.
        let t1 = t0 + Duration::from_secs(30);
        i.record(t1, x(1), [p(2), p(3)], 64);
        assert_eq!(i.len(), 3);
        assert!(i.contains(t1 + mem, &p(1), &x(1), mem));
        // Volume: the oldest piece goes first.
        for n in 2..=40u8 {
            i.record(
                t1 + Duration::from_millis(u64::from(n)),
                x(n),
                [p(1), p(2)],
                64,
            );
        }
        assert!(i.len() <= 64);
        assert!(!i.contains(t1, &p(1), &x(1), mem), "oldest forgotten");
        assert!(i.contains(t1, &p(1), &x(40), mem));
        assert!(i.names(t1, &p(2), mem));
        assert!(!i.names(t1, &p(3), mem), "its only piece was forgotten");
        i.prune(t1 + Duration::from_secs(120), mem);
        assert_eq!(i.len(), 0);
        assert!(!i.names(t1, &p(1), mem) && i.named.is_empty());
    }

    #[test]
    fn providers_per_piece_are_capped() {
        let t0 = Instant::now();
        let mut i = Introductions::default();
        for n in 0..200u8 {
            i.record(t0, x(1), [p(n)], 10_000);
        }
        assert_eq!(i.len(), MAX_PROVIDERS_PER_PIECE);
        assert!(i.contains(t0, &p(199), &x(1), Duration::from_secs(1)));
        assert_eq!(i.named.len(), MAX_PROVIDERS_PER_PIECE);
        assert!(!i.names(t0, &p(0), Duration::from_secs(1)), "pushed out");
    }
}
