//! Pieces of content the hub withdrew: a signed URL expired, so the bytes
//! the origin gave out only behind that signature must not be had from the
//! swarm any more. Their holders' entries are dropped at once and `have`s
//! for them are ignored for [`WITHDRAW_FOR`], so a `want` (from a client
//! still holding the old manifest) finds no provider. Trusted peers delete
//! such pieces when they are unassigned (protocol §4.5); browsers keep
//! theirs in memory until the page closes, but nobody is sent to them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tuber_proto::{PeerId, PieceHash};

use super::Planner;

/// Withdrawn pieces remembered at most (the oldest withdrawal goes first).
pub const MAX_WITHDRAWN: usize = 262_144;
/// How long a withdrawn piece is never indexed: longer than a browser
/// reuses a manifest it was given (minutes).
pub const WITHDRAW_FOR: Duration = Duration::from_secs(3600);

/// The withdrawn pieces and until when each stays withdrawn.
#[derive(Debug, Default)]
pub(super) struct Withdrawn {
    until: HashMap<PieceHash, Instant>,
    /// (until, piece), oldest first; stale entries skipped.
    order: VecDeque<(Instant, PieceHash)>,
}

impl Withdrawn {
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    fn add(&mut self, now: Instant, pieces: &[PieceHash], until: Instant) {
        self.expire(now);
        for p in pieces {
            while self.until.len() >= MAX_WITHDRAWN && !self.until.contains_key(p) {
                let Some((t, h)) = self.order.pop_front() else {
                    break;
                };
                if self.until.get(&h) == Some(&t) {
                    self.until.remove(&h);
                }
            }
            self.until.insert(*p, until);
            self.order.push_back((until, *p));
        }
        if self.order.len() > 2 * MAX_WITHDRAWN {
            // Re-withdrawals left stale entries: rebuild.
            let mut fresh: Vec<(Instant, PieceHash)> =
                self.until.iter().map(|(h, t)| (*t, *h)).collect();
            fresh.sort();
            self.order = fresh.into();
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(t, h)) = self.order.front() {
            if t > now {
                break;
            }
            self.order.pop_front();
            if self.until.get(&h) == Some(&t) {
                self.until.remove(&h);
            }
        }
    }

    /// `pieces` without the withdrawn ones.
    pub fn filter(&mut self, now: Instant, pieces: &[PieceHash]) -> Vec<PieceHash> {
        self.expire(now);
        pieces
            .iter()
            .filter(|p| !self.until.contains_key(p))
            .copied()
            .collect()
    }
}

impl Planner {
    /// The hub withdrew `pieces` (an expired signed URL's, held by no other
    /// manifest it distributes): nobody is indexed as holding them, and
    /// nobody will be for [`WITHDRAW_FOR`].
    pub fn handle_pieces_withdrawn(&mut self, now: Instant, pieces: &[PieceHash]) {
        if pieces.is_empty() {
            return;
        }
        self.withdrawn.add(now, pieces, now + WITHDRAW_FOR);
        for piece in pieces {
            let holders: Vec<PeerId> = match self.holdings.holders(piece) {
                Some(h) => h.pinned.iter().chain(h.others.iter()).copied().collect(),
                None => continue,
            };
            for peer in holders {
                let before = self.holdings.count(&peer);
                self.holdings.remove(peer, std::slice::from_ref(piece));
                let delta = self.holdings.count(&peer) as i64 - before as i64;
                if let Some(group) = self.peers.get(&peer).map(|p| p.group) {
                    Self::count_group(&mut self.group_holdings, group, delta);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::{Output, PlannerConfig};
    use tuber_proto::signal::{HubToClient, Role};

    fn providers(p: &mut Planner, now: Instant, asker: PeerId, pieces: &[PieceHash]) -> usize {
        p.handle_want(now, asker, 1, pieces);
        let mut n = None;
        while let Some(out) = p.poll_output() {
            if let Output::Send(to, HubToClient::Providers { providers, .. }) = out {
                if to == asker {
                    n = Some(providers.len());
                }
            }
        }
        n.expect("answered")
    }

    #[test]
    fn withdrawn_pieces_have_no_providers_until_the_withdrawal_ends() {
        let config = PlannerConfig {
            seed_wait: Duration::ZERO,
            ..PlannerConfig::default()
        };
        let mut p = Planner::new(config);
        let t0 = Instant::now();
        let (holder, asker) = (PeerId::from_bytes([1; 32]), PeerId::from_bytes([2; 32]));
        for who in [holder, asker] {
            assert!(p.handle_join(t0, who, Role::Browser, false, None).is_ok());
        }
        let gone = PieceHash::from_bytes([7; 32]);
        let kept = PieceHash::from_bytes([8; 32]);
        p.handle_have(t0, holder, &[gone, kept]);
        assert_eq!(providers(&mut p, t0, asker, &[gone]), 1);
        p.handle_pieces_withdrawn(t0, &[gone]);
        assert_eq!(providers(&mut p, t0, asker, &[gone]), 0);
        assert_eq!(providers(&mut p, t0, asker, &[kept]), 1, "others stay");
        assert_eq!(p.holdings_count(&holder), 1);
        // Announcing it again does not make it a provider.
        let t1 = t0 + Duration::from_secs(60);
        p.handle_have(t1, holder, &[gone]);
        assert_eq!(providers(&mut p, t1, asker, &[gone]), 0);
        // After the withdrawal, a holder counts again.
        let t2 = t0 + WITHDRAW_FOR + Duration::from_secs(1);
        p.handle_have(t2, holder, &[gone]);
        assert_eq!(providers(&mut p, t2, asker, &[gone]), 1);
    }

    #[test]
    fn the_oldest_withdrawal_goes_when_full() {
        let mut w = Withdrawn::default();
        let t0 = Instant::now();
        let h = |i: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_be_bytes());
            PieceHash::from_bytes(b)
        };
        let first: Vec<PieceHash> = (0..MAX_WITHDRAWN as u32).map(h).collect();
        w.add(t0, &first, t0 + WITHDRAW_FOR);
        w.add(
            t0,
            &[h(u32::MAX)],
            t0 + WITHDRAW_FOR + Duration::from_secs(1),
        );
        assert_eq!(w.until.len(), MAX_WITHDRAWN);
        assert_eq!(w.filter(t0, &[h(0), h(1), h(u32::MAX)]), [h(0)]);
    }
}
