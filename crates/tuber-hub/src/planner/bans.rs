//! Bans: who is refused, and until when.
//!
//! A ban lasts `ban_duration` (a wrongly banned peer is not out forever, and
//! a real liar that returns is caught again by the same mechanism). When it
//! expires the planner says so ([`Output::BanExpired`]: forget the persisted
//! ban). An operator can lift one at any time ([`Planner::unban`]). At most
//! `max_bans` are kept; beyond that the one expiring first goes first.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use tuber_proto::PeerId;

use super::{DisconnectReason, Output, Planner};

/// Banned peers, by expiry.
#[derive(Debug, Default)]
pub(super) struct Bans {
    until: HashMap<PeerId, Instant>,
    by_expiry: BTreeSet<(Instant, PeerId)>,
}

impl Bans {
    /// Bans `peer` until `until` (evicting the ban expiring first beyond
    /// `max`); false if already banned or `max` is 0.
    pub fn insert(&mut self, peer: PeerId, until: Instant, max: usize) -> bool {
        if self.until.contains_key(&peer) || max == 0 {
            return false;
        }
        while self.until.len() >= max {
            let Some((_, old)) = self.by_expiry.pop_first() else {
                break;
            };
            self.until.remove(&old);
        }
        self.until.insert(peer, until);
        self.by_expiry.insert((until, peer));
        true
    }

    pub fn remove(&mut self, peer: &PeerId) -> bool {
        match self.until.remove(peer) {
            Some(at) => self.by_expiry.remove(&(at, *peer)),
            None => false,
        }
    }

    pub fn contains(&self, peer: &PeerId) -> bool {
        self.until.contains_key(peer)
    }

    /// When `peer`'s ban ends.
    pub fn until(&self, peer: &PeerId) -> Option<Instant> {
        self.until.get(peer).copied()
    }

    /// Removes and returns the bans that ended by `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let mut out = Vec::new();
        while let Some(&(at, peer)) = self.by_expiry.first() {
            if at > now {
                break;
            }
            self.by_expiry.pop_first();
            self.until.remove(&peer);
            out.push(peer);
        }
        out
    }

    /// When the next ban ends.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_expiry.first().map(|(at, _)| *at)
    }

    pub fn iter(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.by_expiry.iter().map(|(_, p)| *p)
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }
}

impl Planner {
    /// Bans `peer` for `ban_duration`: remembered, announced, disconnected,
    /// forgotten.
    pub(super) fn ban(&mut self, now: Instant, peer: PeerId) {
        self.blames.remove(&peer);
        let until = far(now, self.config.ban_duration);
        if !self.bans.insert(peer, until, self.config.max_bans) {
            return;
        }
        tracing::warn!(?peer, "banned for bad pieces");
        self.outputs.push_back(Output::Banned(peer));
        if self.peers.contains_key(&peer) {
            self.outputs
                .push_back(Output::Disconnect(peer, DisconnectReason::Banned));
            self.forget(now, peer);
        }
    }

    /// Re-installs bans saved from an earlier run (at startup, before
    /// joins), each with the time it has left. A restored peer that is
    /// connected is disconnected.
    pub fn restore_bans(
        &mut self,
        now: Instant,
        bans: impl IntoIterator<Item = (PeerId, Duration)>,
    ) {
        for (peer, left) in bans {
            let until = far(now, left);
            if self.bans.insert(peer, until, self.config.max_bans) && self.peers.contains_key(&peer)
            {
                self.outputs
                    .push_back(Output::Disconnect(peer, DisconnectReason::Banned));
                self.forget(now, peer);
            }
        }
    }

    /// Ends the bans due by `now` (each announced as `BanExpired`).
    pub(super) fn expire_bans(&mut self, now: Instant) {
        for peer in self.bans.expire(now) {
            tracing::info!(?peer, "ban expired");
            self.outputs.push_back(Output::BanExpired(peer));
        }
    }

    /// Lifts a ban (operator action); true if `peer` was banned. No
    /// output: the operator's path forgets the persisted ban itself.
    pub fn unban(&mut self, peer: &PeerId) -> bool {
        self.bans.remove(peer)
    }

    /// Banned peers, the ban ending first first.
    pub fn bans(&self) -> Vec<PeerId> {
        self.bans.iter().collect()
    }

    /// When `peer`'s ban ends (None: not banned).
    pub fn ban_expiry(&self, peer: &PeerId) -> Option<Instant> {
        self.bans.until(peer)
    }

    /// How many peers are banned.
    pub fn ban_count(&self) -> usize {
        self.bans.len()
    }

    /// Whether `peer` is banned.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.contains(peer)
    }
}

/// `now + d`, or a century on when that overflows `Instant`.
fn far(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_expire_in_order_and_evict_the_first_to_expire() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = Bans::default();
        let p = |n: u8| PeerId::from_bytes([n; 32]);
        assert!(b.insert(p(1), t0 + s(10), 2));
        assert!(!b.insert(p(1), t0 + s(10), 2));
        assert!(b.insert(p(2), t0 + s(5), 2));
        assert_eq!(b.next_expiry(), Some(t0 + s(5)));
        assert!(b.insert(p(3), t0 + s(20), 2));
        assert_eq!(b.iter().collect::<Vec<_>>(), [p(1), p(3)]);
        assert!(b.expire(t0 + s(9)).is_empty());
        assert_eq!(b.expire(t0 + s(10)), [p(1)]);
        assert!(b.remove(&p(3)));
        assert!(!b.contains(&p(3)));
        assert_eq!(b.len(), 0);
        assert_eq!(b.next_expiry(), None);
    }
}
