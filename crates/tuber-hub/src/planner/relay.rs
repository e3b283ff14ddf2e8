//! Which signaling the hub relays. A peer dials only whom the planner sent
//! it to: an `offer` goes to a peer only if the planner named that peer as
//! a provider to the offerer (a `want` answered by `providers`) within
//! `introduction_memory`, and an `answer` or `candidate` only between two
//! peers one of whom was introduced to the other. Without this, anyone
//! could aim bare offers at a permanent peer by id, each holding one of its
//! handshake slots for the whole handshake timeout, so that it answers and
//! dials no one.
//!
//! Introductions alone do not bound one network: its connections may all
//! `want` the same pieces and be introduced to the same donor. So offers
//! from one reporter group (a network's browsers and untrusted peers
//! together; a trusted peer is a group of its own) to one target are capped
//! at [`OFFERS_PER_GROUP_TARGET`] per [`OFFER_WINDOW`], a fraction of a
//! permanent peer's 64 slots for handshakes others start.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tuber_proto::PeerId;

use super::{Planner, ReporterGroup};

/// Offers one group may send one target per [`OFFER_WINDOW`].
pub const OFFERS_PER_GROUP_TARGET: usize = 8;
/// See [`OFFERS_PER_GROUP_TARGET`]: about a handshake's timeout.
pub const OFFER_WINDOW: Duration = Duration::from_secs(10);
/// (group, target) pairs tracked at most; past it, offers from new pairs are
/// refused until old ones age out.
pub const MAX_OFFER_PAIRS: usize = 65_536;

/// A signaling message one peer asks the hub to pass to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    Offer,
    Answer,
    Candidate,
}

/// Why the hub did not pass it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayRefused {
    /// Neither peer was introduced to the other.
    #[error("the planner did not introduce you to that peer: ask for providers (want) first")]
    NotIntroduced,
    /// Its network sent that peer too many offers just now.
    #[error("too many offers from your network to that peer; try again in a few seconds")]
    TooManyOffers,
}

/// Recent offers per (sender's group, target).
#[derive(Debug, Default)]
pub(super) struct OfferWindows {
    recent: HashMap<(ReporterGroup, PeerId), VecDeque<Instant>>,
}

impl OfferWindows {
    /// Counts an offer from `group` to `to` at `now`, if the window allows.
    fn admit(&mut self, now: Instant, group: ReporterGroup, to: PeerId) -> bool {
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < OFFER_WINDOW;
        if self.recent.len() >= MAX_OFFER_PAIRS && !self.recent.contains_key(&(group, to)) {
            self.recent
                .retain(|_, times| times.back().is_some_and(fresh));
            if self.recent.len() >= MAX_OFFER_PAIRS {
                return false;
            }
        }
        let times = self.recent.entry((group, to)).or_default();
        while times.front().is_some_and(|at| !fresh(at)) {
            times.pop_front();
        }
        if times.len() >= OFFERS_PER_GROUP_TARGET {
            return false;
        }
        times.push_back(now);
        true
    }

    #[cfg(test)]
    fn pairs(&self) -> usize {
        self.recent.len()
    }
}

impl Planner {
    /// Whether the hub may pass `kind` from `from` to `to` (both connected;
    /// the caller checks that). An offer that is passed counts against the
    /// window of `from`'s group.
    pub fn check_relay(
        &mut self,
        now: Instant,
        from: PeerId,
        to: PeerId,
        kind: Relay,
    ) -> Result<(), RelayRefused> {
        let memory = self.config.introduction_memory;
        let introduced = |a: &PeerId, b: &PeerId| {
            self.peers
                .get(a)
                .is_some_and(|p| p.intros.names(now, b, memory))
        };
        match kind {
            Relay::Offer => {
                if !introduced(&from, &to) {
                    return Err(RelayRefused::NotIntroduced);
                }
                let group = self
                    .peers
                    .get(&from)
                    .map_or(ReporterGroup::Peer(from), |p| p.group);
                if !self.offers.admit(now, group, to) {
                    return Err(RelayRefused::TooManyOffers);
                }
                Ok(())
            }
            Relay::Answer | Relay::Candidate => {
                if introduced(&from, &to) || introduced(&to, &from) {
                    Ok(())
                } else {
                    Err(RelayRefused::NotIntroduced)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    #[test]
    fn a_group_sends_a_target_a_few_offers_per_window() {
        let t0 = Instant::now();
        let mut w = OfferWindows::default();
        let net = ReporterGroup::Shared(7);
        for _ in 0..OFFERS_PER_GROUP_TARGET {
            assert!(w.admit(t0, net, p(1)));
        }
        assert!(!w.admit(t0, net, p(1)), "the window is full");
        assert!(w.admit(t0, net, p(2)), "another target has its own");
        assert!(
            w.admit(t0, ReporterGroup::Shared(8), p(1)),
            "another network too"
        );
        assert!(!w.admit(t0 + OFFER_WINDOW - Duration::from_millis(1), net, p(1)));
        assert!(
            w.admit(t0 + OFFER_WINDOW, net, p(1)),
            "the old ones aged out"
        );
    }

    #[test]
    fn pairs_are_bounded_and_aged_out_when_full() {
        let t0 = Instant::now();
        let mut w = OfferWindows::default();
        for n in 0..MAX_OFFER_PAIRS as u128 {
            assert!(w.admit(t0, ReporterGroup::Shared(n), p(1)));
        }
        assert!(!w.admit(t0, ReporterGroup::Shared(u128::MAX), p(1)), "full");
        assert!(
            w.admit(t0, ReporterGroup::Shared(0), p(1)),
            "a known pair still counts"
        );
        let later = t0 + OFFER_WINDOW;
        assert!(w.admit(later, ReporterGroup::Shared(u128::MAX), p(1)));
        assert_eq!(w.pairs(), 1, "the aged-out pairs were dropped");
    }
}
